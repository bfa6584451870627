//! The crate's one error type.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::throttle::{ThrottleScope, throttled_message};

/// Everything that can go wrong in globo-auth.
///
/// Authentication failures are opaque: an unknown user and a wrong password are both
/// [`AuthError::InvalidCredentials`]. Operational failures (the users file is missing a folder,
/// unreadable, corrupt, or holds an unusable entry) are precise and name the file and the user.
/// No message ever contains a password or a hash's tag.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The username is unknown or the password does not match; the two are indistinguishable
    /// by design.
    #[error("invalid username or password")]
    InvalidCredentials,

    /// `register` was asked for a name that is already in the users file.
    #[error("user '{username}' already exists")]
    UserExists {
        /// The name that is taken.
        username: String,
    },

    /// The operation names a user who is not in the store (an operator's command: delete,
    /// reset, unlock). Logins never give it: an unknown user fails as
    /// [`AuthError::InvalidCredentials`].
    #[error("no user '{username}' in the store")]
    NoSuchUser {
        /// The name given.
        username: String,
    },

    /// An operator's command names a user by a spelling that several stored names share
    /// (names that differ only in Unicode form, width or invisible characters: only a lab
    /// file holds such names) and none of them is exactly the name given, so no user is
    /// picked. Name the one meant exactly as stored
    /// ([`UserStore::usernames`](crate::UserStore::usernames),
    /// [`UserStore::ambiguous_names`](crate::UserStore::ambiguous_names)). Logins never give
    /// it: such a name fails as an unknown user does.
    #[error(
        "'{username}' matches {candidates} stored users whose names differ only in Unicode form, width or invisible characters; name one exactly as stored"
    )]
    AmbiguousUser {
        /// The name given.
        username: String,
        /// How many stored names it matches (at least two).
        candidates: usize,
    },

    /// A password change, or a deletion of a name as stored
    /// ([`UserStore::delete_exact`](crate::UserStore::delete_exact)), found the user's record
    /// changed or removed by someone else since it was read; nothing was written. Look the
    /// user up (verify) and try again.
    #[error(
        "the record of user '{username}' changed or was removed meanwhile; nothing was changed, try again"
    )]
    ConcurrentChange {
        /// The user, as stored.
        username: String,
    },

    /// A new username does not fit RFC 8265's UsernameCasePreserved profile (see
    /// [`Username::prepare`](crate::Username::prepare)): it is empty, too long, or contains
    /// a space, a control, an invisible (default-ignorable) character or another character
    /// the profile refuses.
    #[error("invalid username: {reason}{}", code_point_suffix(*.code_point))]
    InvalidUsername {
        /// What is wrong with it.
        reason: &'static str,
        /// The first refused character, when one is to blame (shown as `U+XXXX`).
        code_point: Option<char>,
    },

    /// The new password has fewer Unicode code points than the policy's minimum.
    #[error("password is too short: use at least {min} characters")]
    PasswordTooShort {
        /// The minimum number of characters (Unicode code points).
        min: usize,
    },

    /// A new password has more Unicode code points than the policy's maximum (logins have
    /// their own, larger bound: [`AuthError::PasswordExceedsLoginLimit`]).
    #[error("password is too long: use at most {max} characters")]
    PasswordTooLong {
        /// The maximum number of characters (Unicode code points).
        max: usize,
    },

    /// A password presented at login is longer, in UTF-8 bytes, than
    /// [`MAX_LOGIN_PASSWORD_BYTES`](crate::MAX_LOGIN_PASSWORD_BYTES), a bound against abuse
    /// above anything the lab could store; it was refused before any hashing.
    #[error("password is longer than the {max_bytes} bytes accepted at login")]
    PasswordExceedsLoginLimit {
        /// The limit, in bytes of UTF-8.
        max_bytes: usize,
    },

    /// The new password is on the list of common passwords shipped with the crate.
    #[error("password is too common (it is on a list of common passwords): choose another one")]
    PasswordTooCommon,

    /// The new password contains the username, compared ignoring case (a context-specific
    /// word, which NIST SP 800-63B asks verifiers to refuse). Only usernames of at least
    /// [`MIN_CONTEXT_USERNAME_CHARS`](crate::MIN_CONTEXT_USERNAME_CHARS) characters are
    /// checked. The message names the user, never the password.
    #[error(
        "password contains the username '{username}' (ignoring case): choose one that does not contain it"
    )]
    PasswordContainsUsername {
        /// The user the password was meant for.
        username: String,
    },

    /// The new password is the username reversed, compared ignoring case. The message does not
    /// name the user, since the name reversed is the password.
    #[error("password is the username spelled backwards: choose another one")]
    PasswordIsReversedUsername,

    /// A PHC hash string is not a well-formed Argon2 hash.
    #[error("malformed argon2 hash: {reason}")]
    MalformedHash {
        /// Which part is wrong.
        reason: &'static str,
    },

    /// A PHC hash string is well formed but uses a feature globo does not support.
    #[error("unsupported argon2 hash: {reason}")]
    UnsupportedHash {
        /// Which feature.
        reason: &'static str,
    },

    /// A hash asks for more work than the configured [`Limits`](crate::Limits) allow; it was
    /// refused before any memory was allocated.
    #[error("argon2 hash exceeds the limit on {parameter}: {value} > {max}")]
    HashExceedsLimits {
        /// The parameter (`memory (KiB)`, `iterations`, `lanes`, `salt length`, ...).
        parameter: &'static str,
        /// The value the hash asks for.
        value: u64,
        /// The largest value allowed.
        max: u64,
    },

    /// A pepper (its text form, or a new version id) is refused; the message never repeats
    /// the value.
    #[error("invalid pepper: {reason}")]
    InvalidPepper {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A stored hash is peppered with a version of the pepper that is not configured (or no
    /// pepper is configured at all): it cannot be checked until that version is supplied.
    #[error("the hash is peppered with version '{version}' of the pepper, which is not configured")]
    PepperUnavailable {
        /// The version the hash names.
        version: String,
    },

    /// No pepper is configured, but the users store already holds peppered records: a new
    /// record (registration, password change or reset, rehash on login) would be written
    /// unpeppered among them, so none is written. Configure the pepper.
    #[error(
        "users store '{store}' holds peppered records, but no password pepper is configured; \
         no unpeppered record is written into it"
    )]
    PepperRequired {
        /// The users store ([`UserStore::location`](crate::UserStore::location)).
        store: String,
    },

    /// The users store holds records (other than the one being replaced) under a pepper
    /// version the store's pepper does not have: the store's pepper is older than the file
    /// (a process that loaded it before a rotation), it is the wrong pepper, or a record was
    /// copied from another store. A record written with it could name a version that
    /// may be retired, and no one could verify it, so none is written.
    #[error(
        "users store '{store}' holds {records} record(s) under a pepper version the password \
         pepper loaded does not have (version '{version}'; {}); no record is written with this \
         pepper",
        name_list(usernames, *records)
    )]
    PepperStale {
        /// The users store ([`UserStore::location`](crate::UserStore::location)).
        store: String,
        /// A version records name that the store's pepper lacks (the first found).
        version: String,
        /// How many records name a version the store's pepper lacks.
        records: usize,
        /// The first few of those records' names (as stored), in file order.
        usernames: Vec<String>,
    },

    /// The users store holds an entry for this user that cannot be used.
    #[error("users store '{store}': the entry for user '{username}' is unusable; fix or remove it")]
    BadEntry {
        /// The users store ([`UserStore::location`](crate::UserStore::location)).
        store: String,
        /// The user whose entry is bad.
        username: String,
        /// Why (one of the hash variants above, or a non-string value).
        #[source]
        source: Box<AuthError>,
    },

    /// The users file is not valid JSON. globo never overwrites it.
    #[error("users file '{}' is not valid JSON; restore it from a backup or fix it by hand (globo will not overwrite it)", path.display())]
    CorruptUsersFile {
        /// The users file.
        path: PathBuf,
        /// The JSON parser's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The users file is JSON but not an object mapping usernames to hashes.
    #[error("users file '{}' must be a JSON object mapping usernames to hash strings; restore it or fix it by hand (globo will not overwrite it)", path.display())]
    NotAnObject {
        /// The users file.
        path: PathBuf,
    },

    /// The users file is larger than [`UserStore::MAX_FILE_LEN`](crate::UserStore::MAX_FILE_LEN);
    /// it is not read into memory and never overwritten.
    #[error("users file '{}' is larger than {max} bytes; it is not read (globo will not overwrite it)", path.display())]
    UsersFileTooLarge {
        /// The users file.
        path: PathBuf,
        /// The limit, in bytes.
        max: u64,
    },

    /// Reading, locking or writing a file failed.
    #[error("cannot access the users file")]
    File {
        /// The failed operation, with its path.
        #[source]
        source: globo_fs::FsError,
    },

    /// A profile name that is not one of [`Profile::ALL`](crate::Profile::ALL)'s names.
    #[error(
        "unknown password profile '{name}'; use rfc9106-low-memory, owasp-min or test-only-insecure"
    )]
    UnknownProfile {
        /// The name given.
        name: String,
    },

    /// A password policy name that is not one of
    /// [`PasswordPolicy::ALL`](crate::PasswordPolicy::ALL)'s names.
    #[error("unknown password policy '{name}'; use single-factor or with-second-factor")]
    UnknownPasswordPolicy {
        /// The name given.
        name: String,
    },

    /// Too many failed logins for the account, or from the source: the attempt was refused
    /// before the users file was read or anything hashed, and not counted. Unknown names
    /// are counted and refused exactly like known ones. The message is the same for every
    /// name and tells when attempts are accepted again.
    #[error("{}", throttled_message(*scope, *until, *locked))]
    Throttled {
        /// Whether the account or the source is throttled (the account when both are).
        scope: ThrottleScope,
        /// When the next attempt is accepted; `None` for a lock that lasts until an operator
        /// unlocks it.
        until: Option<SystemTime>,
        /// Whether this is a lock (the limit was reached) rather than a delay.
        locked: bool,
    },

    /// A file of the throttling state folder beside the users file (its salt or a shard)
    /// cannot be used (not the format globo writes, or too large). Logins whose records
    /// live in it are refused while it is (failing closed), and globo never overwrites it.
    #[error("throttling state file '{}' is unusable: {reason}; logins whose records it holds are refused until it is restored or removed (globo will not overwrite it)", path.display())]
    UnusableThrottleState {
        /// The file of the state folder (its `salt`, or a shard `00` to `ff`).
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
        /// The JSON parser's error, when that is what failed.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// Creating, locking, reading or writing the throttling state folder failed (logins are
    /// refused while it does: failing closed, since a login is counted before it is checked).
    #[error("cannot use the throttling state folder '{}': logins are counted there before they are checked, so it must be a folder this user can write", path.display())]
    ThrottleStateAccess {
        /// The state folder (`<users file>.throttle`).
        path: PathBuf,
        /// The failed operation, with its path.
        #[source]
        source: globo_fs::FsError,
    },

    /// A shard of the throttling state folder is full of accounts past their free failures,
    /// so a new account or source cannot be counted there: the attempt is refused (failing
    /// closed; evicting such a record would reset its count or lift its lock). Ends as those
    /// records are forgotten (at most the lock duration, or 24 hours, after their last
    /// failure; never a lock until unlocked), or when an operator unlocks accounts.
    #[error("the throttling state file '{}' has no room for another record (it holds only accounts past their free failures): the login is refused", path.display())]
    ThrottleStateFull {
        /// The full shard file.
        path: PathBuf,
    },

    /// A [`ThrottlePolicy`](crate::ThrottlePolicy) setting is out of range.
    #[error("invalid throttling policy: {reason}")]
    InvalidThrottlePolicy {
        /// Which setting, and its range.
        reason: &'static str,
    },

    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random {
        /// The generator's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A database store (SQLite or PostgreSQL) failed: it could not be opened or reached, or
    /// a query failed. `store` names it without any password.
    #[error("users store '{store}': {operation} failed")]
    Database {
        /// The store: `sqlite://PATH`, or the PostgreSQL URL without its password.
        store: String,
        /// What was being done (`connect`, `migrate`, `read users`, `write users`, ...).
        operation: &'static str,
        /// The database client's error (it holds no password).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A database store's schema was migrated by a newer globo than this one: its tables may
    /// mean what this version does not know, so nothing is read or written.
    #[error(
        "users store '{store}' has schema version {found}; this globo knows versions up to {supported} (upgrade globo)"
    )]
    StoreSchema {
        /// The store, without any password.
        store: String,
        /// The store's schema version.
        found: i64,
        /// The newest schema version this globo knows.
        supported: i64,
    },

    /// An `AsyncUserStore` (feature `tokio`) memory budget is too small for one
    /// hash of the store's profile (or below 1 MiB), so no call could ever run.
    #[error("invalid memory budget: {reason}")]
    InvalidMemoryBudget {
        /// Why it is refused.
        reason: &'static str,
    },

    /// An `AsyncUserStore` (feature `tokio`) call could not finish on tokio's
    /// blocking pool: its task panicked (a bug), was cancelled as the runtime shut down, or
    /// the call was not made inside a tokio runtime. Whether the store changed is unknown.
    #[error("the store call did not complete: {reason}")]
    BlockingTask {
        /// What happened to it.
        reason: &'static str,
    },

    /// A store specification ([`StoreSpec::parse`](crate::StoreSpec::parse)) is not one
    /// globo can open: empty, an unknown scheme, an `sqlite://` without a path, a
    /// PostgreSQL URL that does not parse or holds both a password and `password_secret`,
    /// a backend this build lacks, or a named password secret that was not supplied. The
    /// message never holds a password.
    #[error("invalid users store '{store}': {reason}")]
    InvalidStoreSpec {
        /// The specification without any password (or a description of it).
        store: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A store opened to be read from ([`StoreSpec::open_existing`](crate::StoreSpec::open_existing))
    /// does not exist: a missing JSON users file or SQLite database is not taken as an empty
    /// store (and nothing is created).
    #[error("users store '{store}' does not exist")]
    StoreNotFound {
        /// The store's location (no password).
        store: String,
    },

    /// The Argon2 implementation refused inputs that globo had already validated (a bug).
    #[error("argon2 computation failed")]
    Argon2 {
        /// The implementation's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// `users 'a', 'b'` (with `and N more` when `total` is larger), for messages.
fn name_list(names: &[String], total: usize) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{}'", n.escape_debug())).collect();
    let more = total.saturating_sub(names.len());
    let (word, list) = (if total == 1 { "user" } else { "users" }, quoted.join(", "));
    if more == 0 { format!("{word} {list}") } else { format!("{word} {list} and {more} more") }
}

/// ` (U+XXXX)` for the character a username was refused for, or nothing.
fn code_point_suffix(code_point: Option<char>) -> String {
    code_point.map(|c| format!(" (U+{:04X})", u32::from(c))).unwrap_or_default()
}

impl From<globo_fs::FsError> for AuthError {
    fn from(source: globo_fs::FsError) -> Self {
        Self::File { source }
    }
}

/// What kind of failure an [`AuthError`] is, for a service that maps errors to responses
/// (HTTP statuses, say) without listing variants: new variants get a kind, so such a mapping
/// never needs changing. See [`AuthError::kind`].
///
/// | kind | variants | a web service answers |
/// | --- | --- | --- |
/// | [`Credentials`](AuthErrorKind::Credentials) | [`InvalidCredentials`](AuthError::InvalidCredentials) | 401, the same for an unknown user and a wrong password (OWASP ASVS 5.0 V6.3.8) |
/// | [`InvalidInput`](AuthErrorKind::InvalidInput) | a refused username or new password, a login password over the bound | 400 or 422, with the message (it names no password) |
/// | [`Conflict`](AuthErrorKind::Conflict) | [`UserExists`](AuthError::UserExists), [`ConcurrentChange`](AuthError::ConcurrentChange) | 409, where registered names may be known (see below) |
/// | [`NotFound`](AuthErrorKind::NotFound) | [`NoSuchUser`](AuthError::NoSuchUser), [`AmbiguousUser`](AuthError::AmbiguousUser), from operators' commands only | 404 |
/// | [`Throttled`](AuthErrorKind::Throttled) | [`Throttled`](AuthError::Throttled), the same for known and unknown names | 429, with a `Retry-After` from its time when it has one |
/// | [`Operational`](AuthErrorKind::Operational) | the users file, a stored hash, the configuration, the system | 500; log the [`Report`](crate::Report), do not show it |
///
/// Two kinds tell that a name is registered, whatever the status:
/// - A 409 for [`UserExists`](AuthError::UserExists) names a registered user to whoever
///   registers. ASVS 5.0 V6.3.8 extends the anti-enumeration rule to registration: a service
///   that must not reveal registered names answers a registration the same way whether the
///   name is taken or not (say, 202 and "check your e-mail"), and tells the owner out of band.
/// - [`BadEntry`](AuthError::BadEntry) (an unusable stored hash) comes only for a name that
///   is in the users file. [`UserStore::verify`](crate::UserStore::verify) runs the same dummy
///   verification as for an unknown user before returning it, so the time taken does not
///   single the name out, but a distinct 500 does: a service that must not reveal names
///   answers it like [`Credentials`](AuthErrorKind::Credentials) (401) and logs the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// The username is unknown or the password does not match (deliberately one kind).
    Credentials,
    /// What the caller supplied is refused by policy: a new username or password, or a login
    /// password longer than [`MAX_LOGIN_PASSWORD_BYTES`](crate::MAX_LOGIN_PASSWORD_BYTES).
    /// The caller can fix it and try again.
    InvalidInput,
    /// A registration asked for a name that is already taken, or a password change met a
    /// concurrent change of the same record.
    Conflict,
    /// An operator's command named a user who is not in the store
    /// ([`NoSuchUser`](AuthError::NoSuchUser)), or a spelling several stored names share
    /// ([`AmbiguousUser`](AuthError::AmbiguousUser)); never returned by a login.
    NotFound,
    /// Too many failed logins for the account or from the source
    /// ([`Throttled`](AuthError::Throttled)): refused before any hashing; retry later.
    Throttled,
    /// The server side failed: the users file (missing folder, unreadable, corrupt, too
    /// large), a stored hash that cannot be used, an unknown profile or password policy
    /// name in the configuration, the random number generator, or a bug. Not the caller's fault.
    Operational,
}

impl AuthError {
    /// The kind of failure: what a service needs to choose its response (see
    /// [`AuthErrorKind`]).
    ///
    /// ```
    /// use globo_auth::{AuthError, AuthErrorKind};
    /// assert_eq!(AuthError::InvalidCredentials.kind(), AuthErrorKind::Credentials);
    /// assert!(AuthError::PasswordTooCommon.is_invalid_input());
    /// ```
    pub fn kind(&self) -> AuthErrorKind {
        match self {
            Self::InvalidCredentials => AuthErrorKind::Credentials,
            Self::InvalidUsername { .. }
            | Self::PasswordTooShort { .. }
            | Self::PasswordTooLong { .. }
            | Self::PasswordExceedsLoginLimit { .. }
            | Self::PasswordTooCommon
            | Self::PasswordContainsUsername { .. }
            | Self::PasswordIsReversedUsername => AuthErrorKind::InvalidInput,
            Self::UserExists { .. } | Self::ConcurrentChange { .. } => AuthErrorKind::Conflict,
            Self::NoSuchUser { .. } | Self::AmbiguousUser { .. } => AuthErrorKind::NotFound,
            Self::Throttled { .. } => AuthErrorKind::Throttled,
            // A hash reaches globo from storage: when it is unusable, the data is at fault.
            Self::MalformedHash { .. }
            | Self::UnsupportedHash { .. }
            | Self::HashExceedsLimits { .. }
            | Self::BadEntry { .. }
            | Self::CorruptUsersFile { .. }
            | Self::NotAnObject { .. }
            | Self::UsersFileTooLarge { .. }
            | Self::File { .. }
            | Self::UnknownProfile { .. }
            | Self::UnknownPasswordPolicy { .. }
            | Self::InvalidPepper { .. }
            | Self::PepperUnavailable { .. }
            | Self::PepperRequired { .. }
            | Self::PepperStale { .. }
            | Self::UnusableThrottleState { .. }
            | Self::ThrottleStateAccess { .. }
            | Self::ThrottleStateFull { .. }
            | Self::InvalidThrottlePolicy { .. }
            | Self::Database { .. }
            | Self::StoreSchema { .. }
            | Self::InvalidMemoryBudget { .. }
            | Self::BlockingTask { .. }
            | Self::InvalidStoreSpec { .. }
            | Self::StoreNotFound { .. }
            | Self::Random { .. }
            | Self::Argon2 { .. } => AuthErrorKind::Operational,
        }
    }

    /// Whether this is the opaque authentication failure (unknown user or wrong password).
    pub fn is_credentials_failure(&self) -> bool {
        self.kind() == AuthErrorKind::Credentials
    }

    /// Whether the caller's input was refused by policy (see [`AuthErrorKind::InvalidInput`]).
    pub fn is_invalid_input(&self) -> bool {
        self.kind() == AuthErrorKind::InvalidInput
    }

    /// Whether the server side failed (see [`AuthErrorKind::Operational`]).
    pub fn is_operational(&self) -> bool {
        self.kind() == AuthErrorKind::Operational
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// One of each variant with the kind a service must see for it.
    fn every_variant() -> Vec<(AuthError, AuthErrorKind)> {
        use AuthErrorKind::*;
        let path = PathBuf::from("users.json");
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        vec![
            (AuthError::InvalidCredentials, Credentials),
            (AuthError::UserExists { username: "alice".into() }, Conflict),
            (AuthError::NoSuchUser { username: "alice".into() }, NotFound),
            (AuthError::AmbiguousUser { username: "jo".into(), candidates: 2 }, NotFound),
            (AuthError::ConcurrentChange { username: "alice".into() }, Conflict),
            (AuthError::InvalidUsername { reason: "empty", code_point: None }, InvalidInput),
            (AuthError::PasswordTooShort { min: 8 }, InvalidInput),
            (AuthError::PasswordTooLong { max: 1024 }, InvalidInput),
            (AuthError::PasswordExceedsLoginLimit { max_bytes: 16384 }, InvalidInput),
            (AuthError::PasswordTooCommon, InvalidInput),
            (AuthError::PasswordContainsUsername { username: "alice".into() }, InvalidInput),
            (AuthError::PasswordIsReversedUsername, InvalidInput),
            (AuthError::MalformedHash { reason: "salt" }, Operational),
            (AuthError::UnsupportedHash { reason: "keyid" }, Operational),
            (AuthError::HashExceedsLimits { parameter: "lanes", value: 99, max: 64 }, Operational),
            (
                AuthError::BadEntry {
                    store: "users.json".into(),
                    username: "alice".into(),
                    source: Box::new(AuthError::MalformedHash { reason: "salt" }),
                },
                Operational,
            ),
            (
                AuthError::CorruptUsersFile { path: path.clone(), source: Box::new(io()) },
                Operational,
            ),
            (AuthError::NotAnObject { path: path.clone() }, Operational),
            (AuthError::InvalidPepper { reason: "empty" }, Operational),
            (AuthError::PepperUnavailable { version: "1".into() }, Operational),
            (AuthError::PepperRequired { store: "users.json".into() }, Operational),
            (
                AuthError::PepperStale {
                    store: "users.json".into(),
                    version: "x".into(),
                    records: 1,
                    usernames: vec!["a".into()],
                },
                Operational,
            ),
            (AuthError::UsersFileTooLarge { path: path.clone(), max: 1 }, Operational),
            (AuthError::File { source: globo_fs::FsError::new("read", path, io()) }, Operational),
            (AuthError::UnknownProfile { name: "fast".into() }, Operational),
            (AuthError::UnknownPasswordPolicy { name: "two-factor".into() }, Operational),
            (
                AuthError::Throttled {
                    scope: crate::ThrottleScope::Account,
                    until: None,
                    locked: true,
                },
                Throttled,
            ),
            (
                AuthError::UnusableThrottleState { path: "t".into(), reason: "x", source: None },
                Operational,
            ),
            (
                AuthError::ThrottleStateAccess {
                    path: "t".into(),
                    source: globo_fs::FsError::new("lock", "t", io()),
                },
                Operational,
            ),
            (AuthError::InvalidThrottlePolicy { reason: "x" }, Operational),
            (AuthError::ThrottleStateFull { path: "users.json.throttle/00".into() }, Operational),
            (AuthError::Random { source: Box::new(io()) }, Operational),
            (AuthError::Argon2 { source: Box::new(io()) }, Operational),
            (
                AuthError::Database {
                    store: "sqlite://users.db".into(),
                    operation: "read users",
                    source: Box::new(io()),
                },
                Operational,
            ),
            (
                AuthError::StoreSchema {
                    store: "sqlite://users.db".into(),
                    found: 9,
                    supported: 1,
                },
                Operational,
            ),
            (AuthError::InvalidMemoryBudget { reason: "below one hash" }, Operational),
            (AuthError::BlockingTask { reason: "it panicked" }, Operational),
            (
                AuthError::InvalidStoreSpec {
                    store: "mysql://db".into(),
                    reason: "unknown scheme 'mysql'".into(),
                },
                Operational,
            ),
            (AuthError::StoreNotFound { store: "sqlite://users.db".into() }, Operational),
        ]
    }

    /// The variant's position in the enum. No wildcard: a new variant does not compile until
    /// it is listed here, and the coverage check below then asks for a sample with its kind.
    fn variant_index(error: &AuthError) -> usize {
        match error {
            AuthError::InvalidCredentials => 0,
            AuthError::UserExists { .. } => 1,
            AuthError::InvalidUsername { .. } => 2,
            AuthError::PasswordTooShort { .. } => 3,
            AuthError::PasswordTooLong { .. } => 4,
            AuthError::PasswordExceedsLoginLimit { .. } => 5,
            AuthError::PasswordTooCommon => 6,
            AuthError::PasswordContainsUsername { .. } => 7,
            AuthError::PasswordIsReversedUsername => 8,
            AuthError::MalformedHash { .. } => 9,
            AuthError::UnsupportedHash { .. } => 10,
            AuthError::HashExceedsLimits { .. } => 11,
            AuthError::BadEntry { .. } => 12,
            AuthError::CorruptUsersFile { .. } => 13,
            AuthError::NotAnObject { .. } => 14,
            AuthError::UsersFileTooLarge { .. } => 15,
            AuthError::File { .. } => 16,
            AuthError::UnknownProfile { .. } => 17,
            AuthError::Random { .. } => 18,
            AuthError::Argon2 { .. } => 19,
            AuthError::NoSuchUser { .. } => 20,
            AuthError::ConcurrentChange { .. } => 21,
            AuthError::UnknownPasswordPolicy { .. } => 22,
            AuthError::InvalidPepper { .. } => 23,
            AuthError::PepperUnavailable { .. } => 24,
            AuthError::Throttled { .. } => 25,
            AuthError::UnusableThrottleState { .. } => 26,
            AuthError::InvalidThrottlePolicy { .. } => 27,
            AuthError::ThrottleStateAccess { .. } => 28,
            AuthError::AmbiguousUser { .. } => 29,
            AuthError::PepperRequired { .. } => 30,
            AuthError::ThrottleStateFull { .. } => 31,
            AuthError::PepperStale { .. } => 32,
            AuthError::Database { .. } => 33,
            AuthError::StoreSchema { .. } => 34,
            AuthError::InvalidMemoryBudget { .. } => 35,
            AuthError::BlockingTask { .. } => 36,
            AuthError::InvalidStoreSpec { .. } => 37,
            AuthError::StoreNotFound { .. } => 38,
        }
    }
    const VARIANTS: usize = 39;

    /// Issue 13 review, point 8: no message has a run of spaces (a line continuation that
    /// kept the next line's indentation).
    #[test]
    fn no_message_has_two_spaces_in_a_row() {
        for (error, _) in every_variant() {
            let message = error.to_string();
            assert!(!message.contains("  "), "{message:?}");
        }
    }

    #[test]
    fn every_variant_has_the_kind_a_service_maps_to_a_status() {
        let samples = every_variant();
        let mut seen: Vec<usize> = samples.iter().map(|(e, _)| variant_index(e)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..VARIANTS).collect::<Vec<_>>(), "a variant without a sample");
        for (error, kind) in &samples {
            assert_eq!(error.kind(), *kind, "{error:?}");
            assert_eq!(error.is_credentials_failure(), *kind == AuthErrorKind::Credentials);
            assert_eq!(error.is_invalid_input(), *kind == AuthErrorKind::InvalidInput);
            assert_eq!(error.is_operational(), *kind == AuthErrorKind::Operational);
        }
    }
}
