//! The password store: every protection (policy, NFKC, dummy hashes, rehash, pepper,
//! throttling, events) over a backend that holds the users (see `crate::backend`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use secrecy::{ExposeSecret as _, SecretString};

use crate::backend::json::JsonBackend;
use crate::backend::{
    Entry, LockedUsers, LoginView, Lookup, ThrottleBackend, UsersBackend, UsersTxn, shape_key,
};
use crate::events::{self, Event, Subject};
use crate::normalize::{self, Form};
use crate::pepper::{PepperReport, Peppers};
use crate::phc::{self, ParsedHash};
use crate::policy::MAX_LOGIN_PASSWORD_BYTES;
use crate::throttle::{self, Clock, Reservation, ThrottlePolicy, ThrottleStatus};
use crate::username::{Username, comparison_key};
use crate::{AuthError, HashParams, Limits, PasswordPolicy, Profile};

mod lifecycle;

/// The longest username [`UserStore::verify`] looks up, in bytes of UTF-8 (1 KiB, sixteen
/// times the longest new name, [`MAX_USERNAME_CHARS`](crate::MAX_USERNAME_CHARS) code points
/// of up to four bytes each, with room for width-mapped input). A longer name is treated as
/// unknown, after the same dummy verification, without being normalised or compared: a bound
/// on the work a login request can demand. A lab user stored under a longer name cannot log in.
pub const MAX_LOGIN_USERNAME_BYTES: usize = 1024;

/// How many of the records under a version the pepper lacks [`AuthError::PepperStale`] names.
const STALE_NAMES_SHOWN: usize = 3;

/// A password store over one users store: the lab's `users.json` file
/// ([`new`](Self::new)), or a database with the `sqlite` or `postgres` feature.
///
/// Every change (`register`, the rehash on login, ...) is one transaction under the store's
/// writer lock: for the users file, a read-modify-write cycle under a
/// [`globo_fs::ExclusiveLock`] written with [`globo_fs::write_atomic`], so concurrent
/// processes never lose a user and a crash never leaves a truncated file. A missing file means
/// no users; a corrupt one is reported and never overwritten.
#[derive(Debug)]
pub struct UserStore {
    /// Where the users and throttling records are.
    backend: Arc<dyn UsersBackend>,
    /// The users file (a database store: its location as a path).
    path: PathBuf,
    profile: Profile,
    limits: Limits,
    password_policy: PasswordPolicy,
    /// The dummy hash for unknown users, with the shape key it was made for.
    dummy: Mutex<Option<(String, ParsedHash)>>,
    /// Called right before each Argon2 run with its memory cost (KiB); what it returns is
    /// held for the run. [`AsyncUserStore`](crate::AsyncUserStore) keeps its memory budget
    /// with it (a stored hash or a rehash may cost more than the profile).
    memory_gate: Option<MemoryGate>,
    /// How many Argon2 checks logins ran (tests count them per path).
    #[cfg(test)]
    checks: std::sync::atomic::AtomicUsize,
    /// The pepper's versions, when one is configured.
    peppers: Option<Peppers>,
    /// Login throttling; `None` when the caller turned it off.
    throttle: Option<ThrottlePolicy>,
    clock: Clock,
    /// How many records `new_record_for` made (tests check every path goes through it).
    #[cfg(test)]
    records_made: std::sync::atomic::AtomicUsize,
    /// How many times the users were read, `login_view` or `all` (tests check a refusal
    /// reads none).
    #[cfg(test)]
    reads: std::sync::atomic::AtomicUsize,
}

/// A store's memory gate (see `UserStore::memory_gate`): given an Argon2 run's memory cost in
/// KiB, waits until the run may allocate it, and returns what must be held during the run.
#[derive(Clone)]
pub(crate) struct MemoryGate(
    pub(crate) Arc<dyn Fn(u32) -> Box<dyn std::any::Any + Send> + Send + Sync>,
);

impl std::fmt::Debug for MemoryGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryGate")
    }
}

/// A successful verification, and who it was for.
///
/// The name typed at login need not be the stored one (a lab user stored in NFD, or with an
/// invisible character, logs in by any spelling that looks the same; see
/// [`UserStore::verify`]): use [`Verified::username`], never the name given, as the identity
/// of the session, in logs and for authorisation.
#[derive(Debug)]
pub struct Verified {
    username: String,
    rehashed: bool,
    rehash_error: Option<AuthError>,
    /// The user's record as it stood after this verification (the new hash when rehashed):
    /// what a password change may replace. Redacted in `Debug`.
    record: SecretString,
}

impl Verified {
    /// The user who logged in: the name exactly as stored in the users file. This, not the
    /// name given to [`UserStore::verify`], is the identity to use.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Whether the stored record has been replaced by a better one: its hash was obsolete,
    /// or made of the password's raw bytes where NFKC changes them (a lab hash), and is now one
    /// of the NFKC form made with the store's profile; or (with a pepper, see
    /// [`UserStore::with_peppers`]) it was unpeppered or under an older pepper version and has
    /// been re-peppered with the current one.
    pub fn rehashed(&self) -> bool {
        self.rehashed
    }

    /// Why an obsolete hash could not be replaced (the login itself still succeeded).
    pub fn rehash_error(&self) -> Option<&AuthError> {
        self.rehash_error.as_ref()
    }
}

/// A [`UserStore`] whose users file is locked ([`UserStore::maintenance`]) until this is
/// dropped: maintenance steps that must see no writer in between. Each step takes the
/// pepper to use, because a rotation changes it while the lock is held.
pub struct UsersMaintenance {
    store: UserStore,
    locked: Mutex<Box<dyn LockedUsers>>,
}

impl fmt::Debug for UsersMaintenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsersMaintenance").field("store", &self.store).finish_non_exhaustive()
    }
}

impl UsersMaintenance {
    /// Runs `f` as one transaction under the lock held.
    fn transaction(
        &self,
        f: &mut dyn FnMut(&mut dyn UsersTxn) -> Result<bool, AuthError>,
    ) -> Result<(), AuthError> {
        let mut locked = self.locked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        locked.transaction(f)
    }

    /// [`UserStore::pepper_all`] with `peppers`, under the lock held.
    pub fn pepper_all(&self, peppers: &Peppers) -> Result<PepperReport, AuthError> {
        let mut locked = self.locked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.store.repepper_all(&mut **locked, peppers, false)
    }

    /// [`UserStore::rotate_pepper_all`] with `peppers`, under the lock held.
    pub fn rotate_pepper_all(&self, peppers: &Peppers) -> Result<PepperReport, AuthError> {
        let mut locked = self.locked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.store.repepper_all(&mut **locked, peppers, true)
    }

    /// Every pepper version a record names (the file read now, under the lock held), with
    /// the users whose record names it, in file order. Entries that are not usable hashes
    /// count when their text names a version (`keyid=`): a version is retired only when
    /// no entry at all names it.
    pub fn pepper_versions_in_use(&self) -> Result<BTreeMap<String, Vec<String>>, AuthError> {
        let mut in_use: BTreeMap<String, Vec<String>> = BTreeMap::new();
        self.transaction(&mut |txn| {
            in_use.clear();
            for (name, version) in txn.pepper_versions()? {
                in_use.entry(version).or_default().push(name);
            }
            Ok(false)
        })?;
        Ok(in_use)
    }

    /// The pepper versions that usable records name (the file read now, under the lock
    /// held): the versions a rotation can still move records off. Unlike
    /// [`pepper_versions_in_use`](Self::pepper_versions_in_use), an entry that is not a
    /// usable hash does not count, since no rotation can move it.
    pub fn pepper_versions_movable(&self) -> Result<BTreeSet<String>, AuthError> {
        let mut movable = BTreeSet::new();
        let limits = self.store.limits;
        self.transaction(&mut |txn| {
            movable = txn
                .all()?
                .iter()
                .filter_map(|(_, entry)| entry.as_text())
                .filter_map(|text| ParsedHash::parse(text, &limits).ok())
                .filter_map(|parsed| parsed.pepper_version().map(str::to_owned))
                .collect();
            Ok(false)
        })?;
        Ok(movable)
    }

    /// The users file (see [`UserStore::path`]).
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// Releases the lock and gives the store back.
    pub fn into_store(self) -> UserStore {
        self.store
    }
}

impl UserStore {
    /// The largest users file read, in bytes (64 MiB, over half a million users with the
    /// default profile). A larger file is [`AuthError::UsersFileTooLarge`] and is never
    /// overwritten; a store that big belongs in a database.
    pub const MAX_FILE_LEN: u64 = 64 * 1024 * 1024;

    /// A store over the users file at `path` (the lab's `users.json`), hashing with
    /// [`Profile::default`] within [`Limits::DEFAULT`]; its throttling records live in the
    /// folder [`throttle_path`](Self::throttle_path) beside it.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self::with_backend(Arc::new(JsonBackend::new(path.clone())), path)
    }

    /// A store in the SQLite database at `path` (feature `sqlite`): the file is created
    /// (mode `0600`, a symbolic link followed to its target) and its schema created or
    /// migrated when needed; its location is `sqlite://PATH`, and the throttling records live
    /// in the same database. Fails with [`AuthError::Database`] when the file cannot be
    /// opened as a database, and [`AuthError::StoreSchema`] when a newer globo migrated it.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(path: impl Into<PathBuf>) -> Result<Self, AuthError> {
        let path: PathBuf = path.into();
        Ok(Self::from_backend(Arc::new(crate::backend::sqlite::SqliteBackend::open(&path)?)))
    }

    /// As [`sqlite`](Self::sqlite), but the database must exist: a missing file is refused
    /// with [`AuthError::StoreNotFound`] and not created (a store to read from, such as the
    /// source of a copy).
    #[cfg(feature = "sqlite")]
    pub fn sqlite_existing(path: impl Into<PathBuf>) -> Result<Self, AuthError> {
        let path: PathBuf = path.into();
        let backend = crate::backend::sqlite::SqliteBackend::open_existing(&path)?;
        Ok(Self::from_backend(Arc::new(backend)))
    }

    /// A store in the PostgreSQL database `config` connects to (feature `postgres`):
    /// connects (at most 10 s unless `config` sets a connect timeout), creates or migrates
    /// the `globo_` tables, and keeps a few connections open. `location` names the store in
    /// messages and events: the URL without its password (see [`StoreSpec`](crate::StoreSpec)).
    /// The client is synchronous: from async code, use [`AsyncUserStore`](crate::AsyncUserStore)
    /// (or `spawn_blocking`), never call it on a runtime's worker thread (dropping the store
    /// there is fine). At most 16 connections are open at once; a call finding all of them
    /// busy waits up to the connect timeout, then fails with [`AuthError::Database`].
    ///
    /// The client has no TLS. A host that is not this machine (anything but `localhost`,
    /// 127.0.0.0/8, `::1` or a Unix socket folder, `hostaddr` included) is refused with
    /// [`AuthError::InvalidStoreSpec`] unless `config` sets `sslmode=disable` explicitly
    /// (plaintext on a private network, the operator's choice; the default `prefer` would fall
    /// back to it silently); `sslmode=require` is refused, as TLS is not supported yet.
    #[cfg(feature = "postgres")]
    pub fn postgres(config: postgres::Config, location: String) -> Result<Self, AuthError> {
        let backend = crate::backend::postgres::PostgresBackend::connect(config, location)?;
        Ok(Self::from_backend(Arc::new(backend)))
    }

    /// [`postgres`](Self::postgres) for a database that must hold a globo store already (a
    /// store to read from, such as a copy's source): one without the `globo_` tables fails
    /// with [`AuthError::StoreNotFound`] and is left as it is.
    #[cfg(feature = "postgres")]
    pub fn postgres_existing(
        config: postgres::Config,
        location: String,
    ) -> Result<Self, AuthError> {
        let backend =
            crate::backend::postgres::PostgresBackend::connect_existing(config, location)?;
        Ok(Self::from_backend(Arc::new(backend)))
    }

    /// A store over `backend` (a database's; a JSON backend comes from [`new`](Self::new)).
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn from_backend(backend: Arc<dyn UsersBackend>) -> Self {
        let path = PathBuf::from(backend.location());
        Self::with_backend(backend, path)
    }

    /// The backend that holds the users and throttling records.
    pub(crate) fn backend(&self) -> &Arc<dyn UsersBackend> {
        &self.backend
    }

    /// Where the users are, for messages and logs: the users file's path, `sqlite://PATH`
    /// or the PostgreSQL URL without its password. Never holds a secret.
    pub fn location(&self) -> &str {
        self.backend.location()
    }

    /// Installs the gate every Argon2 run of this store passes first (see [`MemoryGate`]).
    #[cfg(feature = "tokio")]
    pub(crate) fn set_memory_gate(&mut self, gate: MemoryGate) {
        self.memory_gate = Some(gate);
    }

    /// Passes the memory gate, if any, for an Argon2 run of `m_kib`; hold the result for
    /// the run.
    pub(crate) fn argon2_run(&self, m_kib: u32) -> Option<Box<dyn std::any::Any + Send>> {
        self.memory_gate.as_ref().map(|gate| (gate.0)(m_kib))
    }

    fn with_backend(backend: Arc<dyn UsersBackend>, path: PathBuf) -> Self {
        Self {
            backend,
            path,
            profile: Profile::default(),
            limits: Limits::DEFAULT,
            password_policy: PasswordPolicy::default(),
            dummy: Mutex::new(None),
            memory_gate: None,
            #[cfg(test)]
            checks: std::sync::atomic::AtomicUsize::new(0),
            peppers: None,
            throttle: Some(ThrottlePolicy::default()),
            clock: Clock::default(),
            #[cfg(test)]
            records_made: std::sync::atomic::AtomicUsize::new(0),
            #[cfg(test)]
            reads: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Peppers records with `peppers` (see [`Peppers`]): every new record (registration,
    /// rehash on login) is peppered with its current version, a login on an unpeppered
    /// record or one under an older version re-peppers it ([`Verified::rehashed`]), and
    /// records under any of its versions verify. Unpeppered records verify with or without a
    /// pepper. [`pepper_all`](Self::pepper_all) and
    /// [`rotate_pepper_all`](Self::rotate_pepper_all) do the same to every record offline.
    #[must_use]
    pub fn with_peppers(mut self, peppers: Peppers) -> Self {
        self.peppers = Some(peppers);
        self
    }

    /// The pepper's versions, when one is configured.
    pub fn peppers(&self) -> Option<&Peppers> {
        self.peppers.as_ref()
    }

    /// Uses `profile` for new hashes and as the policy that older hashes are upgraded to.
    #[must_use]
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self.dummy = Mutex::new(None);
        self
    }

    /// Uses `limits` to bound the work a stored hash may demand.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Holds every new password to `policy` ([`PasswordPolicy::SingleFactor`], 15
    /// characters, by default). Choose [`PasswordPolicy::WithSecondFactor`] only when every
    /// login of this store's users also needs a second factor. Logins are never held to it.
    #[must_use]
    pub fn with_password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.password_policy = policy;
        self
    }

    /// The policy new passwords are held to.
    pub fn password_policy(&self) -> PasswordPolicy {
        self.password_policy
    }

    /// Throttles logins with `policy` instead of [`ThrottlePolicy::default`] (see
    /// [`verify_from`](Self::verify_from)). Fails with [`AuthError::InvalidThrottlePolicy`]
    /// when a setting would switch the lock off ([`ThrottlePolicy::validate`]).
    pub fn with_throttle(mut self, policy: ThrottlePolicy) -> Result<Self, AuthError> {
        policy.validate()?;
        self.throttle = Some(policy);
        Ok(self)
    }

    /// Turns login throttling off: for a service that throttles in front of the store, and
    /// for measurements. Throttling is on by default (NIST SP 800-63B-4 §3.2.2 makes it a
    /// SHALL), and the state folder is left as it is.
    #[must_use]
    pub fn without_throttle(mut self) -> Self {
        self.throttle = None;
        self
    }

    /// Reads the time from `now` instead of the system clock (throttling's delays and
    /// locks): for tests, and services with a clock of their own.
    #[must_use]
    pub fn with_clock(mut self, now: Arc<dyn Fn() -> SystemTime + Send + Sync>) -> Self {
        self.clock = Clock::new(now);
        self
    }

    /// The throttling policy, `None` when throttling is off.
    pub fn throttle_policy(&self) -> Option<&ThrottlePolicy> {
        self.throttle.as_ref()
    }

    /// The throttling state folder: `<users file>.throttle`, beside the users file (mode
    /// `0700`, created by the first counted login). It holds a `salt` file, created once and
    /// never replaced, and up to 256 shard files `00` to `ff`, each a JSON map of the
    /// records whose id starts with that byte (accounts under a salted SHA-256 of the name,
    /// sources as given, one over 128 bytes as its SHA-256), with its own lock file. A login
    /// locks, reads and writes at most two shards, so its cost does not grow with the records
    /// kept (at most [`MAX_THROTTLE_ENTRIES`](crate::MAX_THROTTLE_ENTRIES), 390 per shard).
    /// The folder must be writable by every process that verifies logins.
    ///
    /// For a database store ([`location`](Self::location) is not a file), the records are
    /// in the database and this path names no folder.
    pub fn throttle_path(&self) -> PathBuf {
        crate::backend::json::state_path(&self.path)
    }

    /// The throttling records' backend.
    fn throttling(&self) -> &dyn ThrottleBackend {
        self.backend().throttle()
    }

    /// The store's throttling policy, or the default one when throttling is off (for the
    /// operator's commands, which work on the records either way).
    fn policy_or_default(&self) -> ThrottlePolicy {
        self.throttle.clone().unwrap_or_default()
    }

    /// Clears the throttling record of the account `material` or of `source`.
    fn clear_throttling(
        &self,
        material: Option<&[u8]>,
        source: Option<&str>,
    ) -> Result<bool, AuthError> {
        let policy = self.policy_or_default();
        throttle::clear(self.throttling(), &policy, material, source, self.clock.now())
    }

    /// Clears the throttling record of the stored user `username` (found as
    /// [`find`](Self::find) finds users): its failures, delay and lock. Returns whether
    /// there was a record. [`AuthError::NoSuchUser`] when no stored user has that name and
    /// [`AuthError::AmbiguousUser`] when several do and none exactly (an operator's command:
    /// it may tell which names exist); for a name no user has, see
    /// [`unlock_unknown`](Self::unlock_unknown). Emits `user_updated` when a record was
    /// cleared.
    pub fn unlock(&self, username: &str) -> Result<bool, AuthError> {
        let stored = self.find(username)?;
        let material = throttle::account_material(&stored);
        let cleared = self.clear_throttling(Some(&material), None)?;
        if cleared {
            let subject = Subject::Stored(stored);
            Event::UserUpdated { username: &subject, source: "", what: "unlocked" }.emit();
        }
        Ok(cleared)
    }

    /// Clears the throttling record kept for `username` as given, whether or not a stored
    /// user has that name: unknown names are counted, delayed and locked exactly like known
    /// ones (so that a lock does not tell them apart), and this lifts such a lock, for the
    /// operator who was told how to lift it without being told whether the name exists.
    /// Reads no users. Returns whether there was a record; emits `user_updated` (naming the
    /// name by its `unknown:` label, never as typed) when one was cleared.
    pub fn unlock_unknown(&self, username: &str) -> Result<bool, AuthError> {
        let material = throttle::account_material(username);
        let label = throttle::account_label(self.throttling(), &material);
        let cleared = self.clear_throttling(Some(&material), None)?;
        if cleared {
            let subject = Subject::Unknown(label);
            Event::UserUpdated { username: &subject, source: "", what: "unlocked" }.emit();
        }
        Ok(cleared)
    }

    /// Clears the throttling record of `source` (see [`verify_from`](Self::verify_from));
    /// returns whether there was one. Emits `authn_login_unlock` when one was cleared.
    pub fn unlock_source(&self, source: &str) -> Result<bool, AuthError> {
        let cleared = self.clear_throttling(None, Some(source))?;
        if cleared {
            Event::SourceUnlocked { source }.emit();
        }
        Ok(cleared)
    }

    /// The throttling record of the account `username` would log into, known or not (names
    /// are counted alike), under the store's policy ([`ThrottlePolicy::default`] when
    /// throttling is off). Reads the account's record (for the users file, its shard of the
    /// state folder), not the users.
    pub fn throttle_status(&self, username: &str) -> Result<ThrottleStatus, AuthError> {
        let policy = self.policy_or_default();
        let material = throttle::account_material(username);
        throttle::status(self.throttling(), &policy, &material, self.clock.now())
    }

    /// The users file. For a database store, its [`location`](Self::location) as a path
    /// (names no file).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The login read ([`UsersBackend::login_view`]), counted for tests.
    fn login_view(&self, username: &str) -> Result<LoginView, AuthError> {
        #[cfg(test)]
        self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.backend.login_view(username)
    }

    /// Every user in store order ([`UsersBackend::all`]), counted for tests.
    fn all_users(&self) -> Result<Vec<(String, Entry)>, AuthError> {
        #[cfg(test)]
        self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.backend.all()
    }

    /// Runs `f` as one transaction under the store's writer lock.
    fn transaction(
        &self,
        f: &mut dyn FnMut(&mut dyn UsersTxn) -> Result<bool, AuthError>,
    ) -> Result<(), AuthError> {
        self.backend.lock()?.transaction(f)
    }

    /// The profile new hashes are made with.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The registered usernames, in file order. Reads the users file whole (allocated at its
    /// size, at most [`MAX_FILE_LEN`](Self::MAX_FILE_LEN)).
    pub fn usernames(&self) -> Result<Vec<String>, AuthError> {
        Ok(self.all_users()?.into_iter().map(|(name, _)| name).collect())
    }

    /// Adds `username` with a hash of `password`. The name stored is `username` enforced as an
    /// RFC 8265 username: [`Username::prepare`]`(username)`, width-mapped and in NFC.
    ///
    /// The password is checked against the store's [`PasswordPolicy`] and hashed in its
    /// NFKC form ([`normalize_password`](crate::normalize_password)), which is what the
    /// policy counts: at login, any spelling with the same NFKC form verifies.
    ///
    /// Fails with a policy error if the username or password is not acceptable
    /// ([`Username::prepare`], [`PasswordPolicy::check_for_user`]: among others, a password
    /// shorter than the policy's minimum or containing the username is refused), and with
    /// [`AuthError::UserExists`] if a stored name has the same
    /// [`comparison_key`](crate::username::comparison_key): a name that differs only in
    /// Unicode normalisation, width or invisible characters is taken too, whatever form the
    /// stored one is in. [`verify`](Self::verify) applies no policy besides a bound on the
    /// password's length, so existing users keep logging in.
    ///
    /// **Cost:** normalises the password (linear in its length), runs Argon2 once, taken
    /// name or not (blocking, `m` KiB allocated; with the `parallel` feature its `p` lanes
    /// run on rayon's global pool, one thread per CPU: see the
    /// [crate docs](crate#what-a-call-costs)), then waits for the users file's exclusive
    /// lock (held by any other writer), reads the file whole (at most
    /// [`MAX_FILE_LEN`](Self::MAX_FILE_LEN)) and rewrites it with `fsync`.
    pub fn register(&self, username: &str, password: &SecretString) -> Result<(), AuthError> {
        let username = Username::prepare(username)?;
        // The one place a new record is made (policy, NFKC), as for a change or a reset.
        // Outside the lock: the hash is the slow part and needs no shared state.
        let hash = self.new_record_for(username.as_str(), password)?;
        let key = comparison_key(username.as_str()).into_owned();
        self.transaction(&mut |txn| {
            if txn.key_taken(&key)? {
                return Err(AuthError::UserExists { username: username.as_str().to_owned() });
            }
            self.check_pepper_required(txn, None)?;
            txn.insert(username.as_str(), &hash)?;
            Ok(true)
        })?;
        Event::UserCreated { username: username.as_str(), source: "" }.emit();
        Ok(())
    }

    /// Checks `password` for `username`.
    ///
    /// An unknown user costs the same as a typical known one: the password is checked against
    /// a dummy hash with the parameters most entries of the file share (the store's profile
    /// when the file is empty), made without running Argon2 and kept until those parameters
    /// change. Both cases fail with [`AuthError::InvalidCredentials`]. Users whose hash has
    /// other parameters than most (say, not yet upgraded by a login) cost what their own
    /// parameters cost, so keep one parameter set per file. When the password matches and
    /// the stored hash is obsolete ([`is_hash_obsolete`](crate::is_hash_obsolete)), it is
    /// replaced, under the lock and only if the entry has not changed meanwhile.
    ///
    /// The password is tried in its NFKC form ([`normalize_password`](crate::normalize_password),
    /// the form new hashes are made of) and, only when NFKC changes it, as given: hashes of
    /// raw bytes (the lab's passlib, globo before normalisation) keep verifying, and a match on
    /// the raw bytes replaces the hash by one of the NFKC form, as for an obsolete hash. The
    /// unknown-user and unusable-entry paths run the dummy check once per form too, so the
    /// number of Argon2 runs depends on the input, never on the name.
    ///
    /// The user is the stored name equal to `username`, else the one stored name with the
    /// same [`comparison_key`](crate::username::comparison_key) (so a lab user stored in
    /// NFD, or with an invisible character, logs in by any spelling that looks the same). The
    /// stored name is [`Verified::username`]: use it, not `username`, as the identity.
    ///
    /// When several stored names share the key and none is exactly `username`, no user is
    /// picked: the name is treated as unknown (the dummy verification, then
    /// [`AuthError::InvalidCredentials`]), so a caller learns nothing it would not learn from
    /// an unknown name (OWASP ASVS 5.0 V6.3.8: valid users cannot be deduced from failed
    /// authentication). Each of those users still logs in by their exact stored name; an
    /// operator finds such names with [`ambiguous_names`](Self::ambiguous_names). A name
    /// longer than [`MAX_LOGIN_USERNAME_BYTES`] is treated as unknown too.
    ///
    /// A password longer than [`MAX_LOGIN_PASSWORD_BYTES`](crate::MAX_LOGIN_PASSWORD_BYTES)
    /// is refused ([`AuthError::PasswordExceedsLoginLimit`]) before the file is read or
    /// anything is hashed; no other password policy applies, so lab users log in with any
    /// password the lab accepted. A user whose entry is not a usable hash gets
    /// [`AuthError::BadEntry`], naming the user, after the same dummy verification as an
    /// unknown user: that is an operational problem for the administrator, not a login
    /// failure (its kind does tell that the name exists: see
    /// [`AuthErrorKind`](crate::AuthErrorKind)). So does a record peppered with a version
    /// the store does not hold ([`AuthError::PepperUnavailable`]; see
    /// [`with_peppers`](Self::with_peppers)).
    ///
    /// **Cost:** reads the users file whole (at most [`MAX_FILE_LEN`](Self::MAX_FILE_LEN))
    /// and runs Argon2 once, known user or not, or twice for a password that NFKC changes
    /// unless its NFKC form matches (blocking, the hash's `m` KiB allocated; with the
    /// `parallel` feature its `p` lanes run on rayon's global pool, one thread per CPU: see
    /// the [crate docs](crate#what-a-call-costs)); a rehash runs Argon2 once more and
    /// rewrites the file under its lock.
    pub fn verify(&self, username: &str, password: &SecretString) -> Result<Verified, AuthError> {
        self.verify_from(username, password, None)
    }

    /// [`verify`](Self::verify) for an attempt from `source`: the caller's key for where the
    /// attempt comes from (a client address, say), which throttling counts and security
    /// events name. `None` when the caller has none.
    ///
    /// **Throttling** (on by default, [`ThrottlePolicy`]; NIST SP 800-63B-4 §3.2.2): before
    /// the users file is read or anything hashed, the attempt is checked against its
    /// account's and its source's records in the state folder ([`throttle_path`](Self::throttle_path))
    /// under the locks of their shards. When either is delayed or locked the attempt fails with
    /// [`AuthError::Throttled`] and is not counted; otherwise it is counted as a failure of
    /// both at once (so parallel attempts, from any number of processes, count one each and
    /// none slips past a limit), then verified. A success clears the account's count and
    /// takes its own attempt off the source's; when another stored name shares the user's
    /// comparison key (a lab file's `josé` and `jose\u{301}` share one record), it takes back
    /// only its own attempt, so one user's logins never clear guesses at the other. Unknown names are counted under their
    /// [`comparison_key`](crate::username::comparison_key) (a name longer than
    /// [`MAX_LOGIN_USERNAME_BYTES`], under a hash of its bytes) exactly like known ones, so
    /// delays, locks, errors and events do not tell names apart. An unusable salt or shard
    /// refuses the logins whose records it holds ([`AuthError::UnusableThrottleState`]), and
    /// a state folder that cannot be created or written refuses every login
    /// ([`AuthError::ThrottleStateAccess`]).
    ///
    /// **Events** (target [`SECURITY_EVENTS_TARGET`](crate::SECURITY_EVENTS_TARGET)):
    /// `authn_login_success` or `authn_login_successafterfail` (with the failures before
    /// it), `authn_login_fail` (with the account's failures, 0 when throttling is off),
    /// `authn_login_lock` when this failure reached a lock limit, and
    /// `excess_rate_limit_exceeded` for a refused attempt. Each names the user as stored
    /// when the name designates one; a name no stored user has (or one several share) as
    /// `unknown:` and the first 12 hex digits of its salted account id (the id its record
    /// is kept under), never as typed: it may be a password typed into the name field. A
    /// refused attempt names its account `account:` and the same 12 hex digits, known name
    /// or not: the users file is not read for it, so a refusal stays cheap. Only
    /// the log differs: the caller's answer is the same for both. An operational error (the
    /// users file unreadable or corrupt, a pepper version missing, an unusable entry) is no
    /// verdict on the password: the attempt is taken back off the account, and no
    /// `authn_login_fail` is logged (see the error itself); an unusable entry or a pepper
    /// version the store lacks still counts against the source (each ran the dummy Argon2).
    pub fn verify_from(
        &self,
        username: &str,
        password: &SecretString,
        source: Option<&str>,
    ) -> Result<Verified, AuthError> {
        let secret = password.expose_secret();
        if secret.len() > MAX_LOGIN_PASSWORD_BYTES {
            return Err(AuthError::PasswordExceedsLoginLimit {
                max_bytes: MAX_LOGIN_PASSWORD_BYTES,
            });
        }
        // Throttling first: a refused attempt runs no Argon2 and reads no users.
        let reservation = match &self.throttle {
            Some(policy) => match throttle::reserve(
                self.throttling(),
                policy,
                &throttle::account_material(username),
                source,
                self.clock.now(),
            ) {
                Ok(reservation) => Some(reservation),
                Err(e) => {
                    let refused = matches!(
                        e,
                        AuthError::Throttled { .. } | AuthError::ThrottleStateFull { .. }
                    );
                    if refused && events::enabled() {
                        let subject = self.refused_subject(username);
                        let source = source.unwrap_or("");
                        Event::RateLimitExceeded { username: &subject, source }.emit();
                    }
                    return Err(e);
                }
            },
            None => None,
        };
        let mut found = None;
        let mut shared = false;
        let result = self.check_password(username, password, &mut found, &mut shared);
        self.settle(reservation.as_ref(), username, found, shared, source, &result)?;
        result
    }

    /// Whom an event about an attempt throttling refused names: the account's
    /// `account:<label>`, known name or not. Reading the users file to find the stored name
    /// would make a refusal as costly as a login's read.
    pub(super) fn refused_subject(&self, username: &str) -> Subject {
        let material = throttle::account_material(username);
        Subject::Account(throttle::account_label(self.throttling(), &material))
    }

    /// Whom a failure event for the name `username` names ([`Subject`]): `found` (the stored
    /// name a login found), else the stored user the name designates (the users file read),
    /// else the name's label, from `reservation` or the state folder's salt.
    pub(super) fn subject_for(&self, username: &str, reservation: Option<&Reservation>) -> Subject {
        let stored = if username.len() > MAX_LOGIN_USERNAME_BYTES {
            None
        } else {
            self.login_view(username).ok().and_then(|view| match view.lookup {
                Lookup::Found { name, .. } => Some(name),
                Lookup::Ambiguous(_) | Lookup::Missing => None,
            })
        };
        self.subject_of(username, stored, reservation)
    }

    /// [`subject_for`](Self::subject_for) when the stored name (if any) is known already.
    fn subject_of(
        &self,
        username: &str,
        stored: Option<String>,
        reservation: Option<&Reservation>,
    ) -> Subject {
        match stored {
            Some(name) => Subject::Stored(name),
            None => {
                Subject::Unknown(reservation.map(|r| r.account_label().to_owned()).or_else(|| {
                    let material = throttle::account_material(username);
                    throttle::account_label(self.throttling(), &material)
                }))
            }
        }
    }

    /// Counts a login's outcome: a success clears the account's failures and a wrong
    /// password or unknown name keeps the failure counted, each with its security events.
    /// Any other error is no verdict on the password: the attempt is taken back off the
    /// account (a misconfiguration must not lock every account its users try), with no
    /// `authn_login_fail`, and off the source, except after `BadEntry`: one unusable record
    /// stays unusable until an operator repairs it, and each attempt on it costs the dummy
    /// Argon2 run, which a source must not get for free (it can still never lock the
    /// account; a source lock it completes is logged as `authn_login_lock`).
    /// `PepperUnavailable` is taken back off the source too, though each attempt on such a
    /// record runs the dummy Argon2: a stale or misconfigured pepper concerns every record
    /// under its version, so counting it would lock out a shared address (an office's NAT)
    /// whose users did nothing wrong, and a store in that state already reports the error
    /// to its operator on every such login.
    fn settle(
        &self,
        reservation: Option<&Reservation>,
        username: &str,
        found: Option<String>,
        shared: bool,
        source: Option<&str>,
        result: &Result<Verified, AuthError>,
    ) -> Result<(), AuthError> {
        let source = source.unwrap_or("");
        let policy = self.policy_or_default();
        let now = self.clock.now();
        match result {
            Ok(verified) => {
                let username = verified.username();
                let previous = reservation.map_or(0, |r| r.previous);
                match reservation {
                    // The record is another stored user's too (a lab file's `josé` and
                    // `jose\u{301}`): this success takes back only its own attempt, or one
                    // user's logins would clear the guesses counted against the other.
                    Some(reservation) if shared => {
                        throttle::release(self.throttling(), &policy, reservation, false, now)?;
                    }
                    Some(reservation) => {
                        throttle::succeed(self.throttling(), &policy, reservation, now)?;
                    }
                    None => {}
                }
                if previous == 0 {
                    Event::LoginSuccess { username, source }.emit();
                } else {
                    Event::LoginSuccessAfterFail { username, source, attempts: previous }.emit();
                }
            }
            Err(AuthError::InvalidCredentials) => {
                if !events::enabled() {
                    return Ok(());
                }
                let username = &self.subject_of(username, found, reservation);
                let attempts = reservation.map_or(0, |r| r.account_failures);
                Event::LoginFail { username, source, attempts }.emit();
                if let Some(r) = reservation {
                    if r.locks_account {
                        Event::LoginLock { username, source, attempts }.emit();
                    }
                    if let (true, Some(attempts)) = (r.locks_source, r.source_failures) {
                        Event::LoginLock { username, source, attempts }.emit();
                    }
                }
            }
            Err(error) => {
                let Some(r) = reservation else { return Ok(()) };
                let keep_source = matches!(error, AuthError::BadEntry { .. });
                // The caller is told the original error; a state folder that cannot be
                // written now refuses the next attempt with its own error anyway.
                let _ = throttle::release(self.throttling(), &policy, r, keep_source, now);
                if let (true, true, Some(attempts)) =
                    (keep_source, r.locks_source, r.source_failures)
                {
                    let username = &self.subject_of(username, found, Some(r));
                    Event::LoginLock { username, source, attempts }.emit();
                }
            }
        }
        Ok(())
    }

    /// [`verify`](Self::verify) without throttling or events; `found` is set to the stored
    /// name when the name designates a stored user, and `shared` to whether another stored
    /// name has the same comparison key (then their throttling record is one).
    fn check_password(
        &self,
        username: &str,
        password: &SecretString,
        found_name: &mut Option<String>,
        shared: &mut bool,
    ) -> Result<Verified, AuthError> {
        // One read for every login, known name or not: the lookup and the typical record
        // (which the dummy hash is shaped like). A name over MAX_LOGIN_USERNAME_BYTES is not
        // looked up (it is treated as unknown): the same read runs with the empty name in
        // its place, whose lookup is ignored, so both paths cost the same.
        let overlong = username.len() > MAX_LOGIN_USERNAME_BYTES;
        let view = self.login_view(if overlong { "" } else { username })?;
        let typical = view.typical.as_deref();
        let found = match view.lookup {
            Lookup::Found { name, entry, shared: alike } if !overlong => {
                *shared = alike;
                Some((name, entry))
            }
            _ => None,
        };
        // The user's hash, or why there is none to check: an unknown user (`None`) or an
        // unusable entry.
        *found_name = found.as_ref().map(|(name, _)| name.clone());
        let target = match &found {
            None => Err(None),
            Some((username, entry)) => match entry.as_text() {
                None => Err(Some((
                    username.as_str(),
                    AuthError::MalformedHash { reason: "the value is not a string" },
                ))),
                // A peppered record is unmasked first; a version the store does not hold is
                // reported after the same dummy runs as an unusable entry.
                Some(stored) => ParsedHash::parse(stored, &self.limits)
                    .and_then(|parsed| {
                        let pepper_outdated = self.pepper_outdated(&parsed);
                        parsed
                            .unpeppered(self.peppers.as_ref())
                            .map(|plain| (username.as_str(), stored, plain, pepper_outdated))
                    })
                    .map_err(|e| Some((username.as_str(), e))),
            },
        };
        let dummy;
        let hash = match &target {
            Ok((_, _, parsed, _)) => {
                std::hint::black_box(typical);
                parsed
            }
            Err(_) => {
                dummy = self.dummy_for(typical)?;
                &dummy
            }
        };
        // One loop for every case: the password's NFKC form, then its raw form when NFKC
        // changes it (hashes of raw bytes from the lab, passlib and earlier globo). An
        // unknown user or an unusable entry is checked against the dummy hash as many times
        // (1 or 2, by the input alone) as a wrong password against a real one, so the time
        // taken does not single such a name out (the error kind of an unusable entry still
        // does: see AuthErrorKind).
        let candidates = normalize::candidates(password);
        let mut matched = None;
        for (form, bytes) in candidates.iter() {
            #[cfg(test)]
            self.checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // The stored hash's (or the dummy's) cost, up to `Limits`: not the profile's.
            let _run = self.argon2_run(hash.memory_kib());
            if hash.matches(bytes)? {
                matched = Some(form);
                break;
            }
        }
        let (username, stored, parsed, pepper_outdated) = match target {
            Ok(found) => found,
            Err(None) => return Err(AuthError::InvalidCredentials),
            // A pepper version the store does not hold: reported after the same dummy runs
            // as an unusable entry (an operational problem, not the user's).
            Err(Some((_, e @ AuthError::PepperUnavailable { .. }))) => return Err(e),
            Err(Some((username, e))) => return Err(self.bad_entry(username, e)),
        };
        let Some(form) = matched else {
            return Err(AuthError::InvalidCredentials);
        };
        // A hash of the raw form is replaced by one of the NFKC form, as an obsolete one is.
        let obsolete = form == Form::Raw || parsed.is_obsolete(&self.profile.params());
        if !obsolete && !pepper_outdated {
            return Ok(Verified {
                username: username.to_owned(),
                rehashed: false,
                rehash_error: None,
                record: SecretString::from(stored),
            });
        }
        let params = parsed.rehash_params(self.profile.params());
        let upgraded = if obsolete {
            self.rehash(username, stored, candidates.normalized(), &params)
        } else {
            // Only the pepper is out of date: re-mask the tag, no Argon2 run needed.
            self.repepper(username, stored, &parsed)
        };
        let (record, rehash_error) = match upgraded {
            Ok(record) => (record, None),
            Err(e) => (None, Some(e)),
        };
        let rehashed = record.is_some();
        let record = SecretString::from(record.as_deref().unwrap_or(stored));
        Ok(Verified { username: username.to_owned(), rehashed, rehash_error, record })
    }

    /// The groups of stored names that share a
    /// [`comparison_key`](crate::username::comparison_key) (names that differ only in Unicode
    /// form, width or invisible characters), each in file order, groups in the order of
    /// their first name. Only a lab file can hold such names (registration refuses them).
    /// A login by any spelling but the exact stored one fails for all of them as for an
    /// unknown user ([`verify`](Self::verify)), so this is how an operator finds the names to
    /// rename. Reads the users file whole (at most [`MAX_FILE_LEN`](Self::MAX_FILE_LEN)).
    pub fn ambiguous_names(&self) -> Result<Vec<Vec<String>>, AuthError> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (stored, _) in self.all_users()? {
            let key = comparison_key(&stored).into_owned();
            match index.get(&key) {
                Some(&at) => groups[at].1.push(stored),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, vec![stored]));
                }
            }
        }
        Ok(groups.into_iter().map(|(_, names)| names).filter(|names| names.len() > 1).collect())
    }

    /// Peppers every unpeppered record with the current version of the store's pepper
    /// ([`with_peppers`](Self::with_peppers)); records already peppered under a configured
    /// version are left as they are, and records under a version that is not configured are
    /// left as they are and listed in [`PepperReport::unavailable`] (never counted as
    /// peppered). No password is needed: the pepper masks the stored tag (see [`Peppers`]),
    /// so a users file is peppered offline, in one run.
    ///
    /// Runs under the users file's exclusive lock and replaces the file in one atomic write
    /// (nothing is written when nothing changes): interrupted, it leaves the file as it was,
    /// and running it again is always safe. Entries that are not usable hashes are left as
    /// they are and listed in [`PepperReport::unusable`]. Fails with
    /// [`AuthError::InvalidPepper`] when the store has no pepper. Emits one
    /// `sys_users_repeppered` event with the counts.
    ///
    /// **Cost:** one HMAC-SHA512 per record, no Argon2 run; reads and rewrites the file.
    pub fn pepper_all(&self) -> Result<PepperReport, AuthError> {
        let peppers = self.configured_peppers()?;
        self.repepper_all(&mut *self.backend.lock()?, peppers, false)
    }

    /// Moves every record to the current version of the store's pepper: unpeppered records
    /// and records under an older version are (re-)peppered, offline, as
    /// [`pepper_all`](Self::pepper_all) does. Once it has run, every version no record names
    /// can be retired (see [`UsersMaintenance`] for a rotation that keeps the file locked
    /// from the move to the retirement). A record under a version the store does not hold
    /// fails the whole run with [`AuthError::PepperUnavailable`] before anything is written
    /// (dropping that version would lock its users out).
    pub fn rotate_pepper_all(&self) -> Result<PepperReport, AuthError> {
        let peppers = self.configured_peppers()?;
        self.repepper_all(&mut *self.backend.lock()?, peppers, true)
    }

    /// Takes the users file's exclusive lock and holds it until the returned guard is
    /// dropped, for maintenance that must not interleave with any writer: a pepper rotation
    /// (add a version, move every record, then retire the versions no record names) runs
    /// its steps under one lock, so no record is written between the move and the check.
    /// The guard owns the store, so nothing can take the same lock again from this guard
    /// (a second lock of one file in one process would wait for itself).
    pub fn maintenance(self) -> Result<UsersMaintenance, AuthError> {
        let locked = self.backend.lock()?;
        Ok(UsersMaintenance { store: self, locked: Mutex::new(locked) })
    }

    fn configured_peppers(&self) -> Result<&Peppers, AuthError> {
        self.peppers
            .as_ref()
            .ok_or(AuthError::InvalidPepper { reason: "no pepper is configured for the store" })
    }

    /// [`pepper_all`](Self::pepper_all) (`rotate` false) or
    /// [`rotate_pepper_all`](Self::rotate_pepper_all) with `peppers`; the caller holds the
    /// users file's lock (`locked`): one transaction.
    fn repepper_all(
        &self,
        locked: &mut dyn LockedUsers,
        peppers: &Peppers,
        rotate: bool,
    ) -> Result<PepperReport, AuthError> {
        let mut report = PepperReport::default();
        locked.transaction(&mut |txn| {
            report = PepperReport::default();
            for (name, entry) in txn.all()? {
                let Some(parsed) =
                    entry.as_text().and_then(|t| ParsedHash::parse(t, &self.limits).ok())
                else {
                    report.unusable.push(name);
                    continue;
                };
                match parsed.pepper_version() {
                    Some(version) if !peppers.contains(version) => {
                        if rotate {
                            let version = version.to_owned();
                            return Err(AuthError::PepperUnavailable { version });
                        }
                        report.unavailable.push(name);
                        continue;
                    }
                    Some(version) if !rotate || version == peppers.current_version() => {
                        report.unchanged += 1;
                        continue;
                    }
                    _ => {}
                }
                let record = parsed.unpeppered(Some(peppers))?.peppered_text(peppers)?;
                txn.replace(&name, &record)?;
                report.changed += 1;
            }
            Ok(report.changed > 0)
        })?;
        Event::UsersRepeppered {
            what: if rotate { "rotated" } else { "peppered" },
            version: peppers.current_version(),
            changed: report.changed,
            unchanged: report.unchanged,
            skipped: report.unusable.len() + report.unavailable.len(),
        }
        .emit();
        Ok(report)
    }

    /// [`AuthError::PepperRequired`] when the store has no pepper but `users` holds a
    /// peppered record: a record written now would be unpeppered, in a file whose records
    /// are meant to be useless without the pepper. [`AuthError::PepperStale`] when the
    /// store has a pepper but `users` holds a record under a version it lacks: the store's
    /// pepper is older than the file (loaded before a rotation), and a record written with
    /// it would name a version the rotation may retire. The entry `replacing` (the record
    /// the write replaces) is left out of the second check: a record under a foreign version
    /// (copied from another users file) is then repaired by resetting it, and never blocks
    /// its own replacement. The error names how many records hold such a version and the
    /// first few of them. Every write of a new record checks this, under the users file's
    /// lock.
    fn check_pepper_required(
        &self,
        txn: &mut dyn UsersTxn,
        replacing: Option<&str>,
    ) -> Result<(), AuthError> {
        // The distinct versions only (a database reads them from its index): every write
        // runs this under the writer lock, so its cost must not grow with the users.
        let versions = txn.pepper_version_set()?;
        match &self.peppers {
            None if !versions.is_empty() => {
                Err(AuthError::PepperRequired { store: self.location().to_owned() })
            }
            Some(peppers) if versions.iter().any(|version| !peppers.contains(version)) => {
                // A version the pepper lacks (rare: a rotation this store missed, a copied
                // record): now read which records name one, for the error.
                let named = txn.pepper_versions()?;
                let lacking: Vec<(&String, &str)> = named
                    .iter()
                    .filter(|(name, version)| {
                        replacing != Some(name.as_str()) && !peppers.contains(version)
                    })
                    .map(|(name, version)| (name, version.as_str()))
                    .collect();
                match lacking.first() {
                    Some((_, version)) => Err(AuthError::PepperStale {
                        store: self.location().to_owned(),
                        version: (*version).to_owned(),
                        records: lacking.len(),
                        usernames: lacking
                            .iter()
                            .take(STALE_NAMES_SHOWN)
                            .map(|(name, _)| (*name).clone())
                            .collect(),
                    }),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Whether a login on `parsed` should re-pepper it: a pepper is configured and the record
    /// is not under its current version.
    fn pepper_outdated(&self, parsed: &ParsedHash) -> bool {
        self.peppers
            .as_ref()
            .is_some_and(|peppers| parsed.pepper_version() != Some(peppers.current_version()))
    }

    /// Replaces `old` by `plain` peppered with the current version, if the entry still holds
    /// `old`; returns the new record when it did.
    fn repepper(
        &self,
        username: &str,
        old: &str,
        plain: &ParsedHash,
    ) -> Result<Option<String>, AuthError> {
        let Some(peppers) = &self.peppers else { return Ok(None) };
        let record = plain.peppered_text(peppers)?;
        self.replace_entry(username, old, record)
    }

    /// Replaces `old` by a fresh hash if the entry still holds `old`; returns the new hash
    /// when it did.
    fn rehash(
        &self,
        username: &str,
        old: &str,
        password: &SecretString,
        params: &HashParams,
    ) -> Result<Option<String>, AuthError> {
        // A rehash keeps a stored memory cost above the profile's.
        let run = self.argon2_run(params.memory_kib());
        let hash =
            phc::new_record(password.expose_secret().as_bytes(), params, self.peppers.as_ref())?;
        drop(run);
        self.replace_entry(username, old, hash)
    }

    /// Replaces `old` by `hash` if the entry still holds `old`; returns `hash` when it did.
    fn replace_entry(
        &self,
        username: &str,
        old: &str,
        hash: String,
    ) -> Result<Option<String>, AuthError> {
        let mut replaced = false;
        self.transaction(&mut |txn| {
            self.check_pepper_required(txn, Some(username))?;
            // Changed or removed by someone else since we read it: theirs wins.
            replaced = txn.get(username)?.as_ref().and_then(Entry::as_text) == Some(old);
            if replaced {
                txn.replace(username, &hash)?;
            }
            Ok(replaced)
        })?;
        Ok(replaced.then_some(hash))
    }

    /// The dummy hash shaped like `typical` (or like the profile's hashes when there is no
    /// usable typical entry), reused while the shape stays the same.
    fn dummy_for(&self, typical: Option<&str>) -> Result<ParsedHash, AuthError> {
        let typical = typical.and_then(|hash| {
            ParsedHash::parse(hash, &self.limits).ok().map(|parsed| (shape_key(hash), parsed))
        });
        let key = typical.as_ref().map_or("", |(key, _)| key.as_str());
        let mut cached = self.dummy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((made_for, dummy)) = cached.as_ref()
            && made_for == key
        {
            return Ok(dummy.clone());
        }
        let dummy = match &typical {
            Some((_, parsed)) => parsed.dummy_like()?,
            None => ParsedHash::parse(&phc::dummy_hash(&self.profile.params())?, &self.limits)?,
        };
        *cached = Some((key.to_owned(), dummy.clone()));
        Ok(dummy)
    }

    /// Checks a new password for `username` against the store's policy and returns the form
    /// to hash (its NFKC form). Every path that stores a new password goes through here.
    pub(crate) fn check_new(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<SecretString, AuthError> {
        self.password_policy.checked_for_user(username, password)
    }

    fn bad_entry(&self, username: &str, source: AuthError) -> AuthError {
        AuthError::BadEntry {
            store: self.location().to_owned(),
            username: username.to_owned(),
            source: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The record stored under exactly `name`, if it is text.
    fn record(store: &UserStore, name: &str) -> Option<String> {
        let users = store.backend.all().unwrap();
        users.into_iter().find(|(n, _)| n == name).and_then(|(_, e)| e.as_text().map(str::to_owned))
    }

    #[test]
    fn rehash_keeps_an_entry_that_changed_since_it_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
        let password = SecretString::from("wonderland password");
        store.register("alice", &password).unwrap();
        let before = std::fs::read(&path).unwrap();
        // Another process replaced the hash after we verified the one we read.
        let stale = phc::hash_password("wonderland password", Profile::TestOnlyInsecure).unwrap();
        let params = Profile::TestOnlyInsecure.params();
        assert!(store.rehash("alice", &stale, &password, &params).unwrap().is_none());
        assert!(store.rehash("bob", &stale, &password, &params).unwrap().is_none());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // With the entry unchanged, it is replaced.
        let current = record(&store, "alice").unwrap();
        let new = store.rehash("alice", &current, &password, &params).unwrap().unwrap();
        assert_eq!(record(&store, "alice").as_deref(), Some(new.as_str()));
        assert_ne!(std::fs::read(&path).unwrap(), before);
    }

    fn cached_dummy(store: &UserStore) -> Option<String> {
        store.dummy.lock().unwrap().as_ref().map(|(key, _)| key.clone())
    }

    #[test]
    fn with_no_users_the_dummy_hash_has_the_profile_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            UserStore::new(dir.path().join("users.json")).with_profile(Profile::OwaspMinimum);
        assert!(cached_dummy(&store).is_none());
        let password = SecretString::from("any password");
        assert!(matches!(store.verify("nobody", &password), Err(AuthError::InvalidCredentials)));
        let dummy = store.dummy_for(None).unwrap();
        assert!(!dummy.is_obsolete(&Profile::OwaspMinimum.params()));
        assert!(dummy.is_obsolete(&Profile::Rfc9106LowMemory.params()));
        // A new profile starts without a dummy.
        let store = store.with_profile(Profile::TestOnlyInsecure);
        assert!(cached_dummy(&store).is_none());
    }

    #[test]
    fn the_dummy_hash_takes_the_parameters_most_users_have() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let weak = |p: &str| phc::hash_password(p, Profile::TestOnlyInsecure).unwrap();
        let owasp = phc::hash_password("carol's password", Profile::OwaspMinimum).unwrap();
        let users = serde_json::json!({
            "alice": owasp, "bob": weak("bob's password"), "dave": weak("dave's password"),
        });
        std::fs::write(&path, users.to_string()).unwrap();
        // The store's policy is the default profile, yet most users have the weak shape.
        let store = UserStore::new(&path);
        let password = SecretString::from("any password");
        assert!(matches!(store.verify("nobody", &password), Err(AuthError::InvalidCredentials)));
        let key = cached_dummy(&store).unwrap();
        assert!(key.starts_with("$argon2id$v=19$m=8,t=1,p=1$22$43"), "{key}");
        // Made once: the same shape reuses it.
        let typical = || store.backend.login_view("").unwrap().typical;
        let first = store.dummy_for(typical().as_deref()).unwrap();
        let again = store.dummy_for(typical().as_deref()).unwrap();
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
    }

    /// Review A2 and A3: colliding lab names looked up by another spelling, and a name over
    /// [`MAX_LOGIN_USERNAME_BYTES`], fail as an unknown user does: after the dummy
    /// verification (made and cached on the way), with `InvalidCredentials`.
    #[test]
    fn ambiguous_and_overlong_names_fail_as_unknown_users_after_the_dummy_hash() {
        let long_name = "a".repeat(MAX_LOGIN_USERNAME_BYTES + 1);
        let hash = |p: &str| phc::hash_password(p, Profile::TestOnlyInsecure).unwrap();
        let users = serde_json::json!({
            "jos\u{e9}": hash("first password"),
            "jose\u{301}": hash("second password"),
            long_name.clone(): hash("long password"),
        });
        for (name, password) in
            [("jos\u{e9}\u{200B}", "first password"), (long_name.as_str(), "long password")]
        {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("users.json");
            std::fs::write(&path, users.to_string()).unwrap();
            let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
            assert!(cached_dummy(&store).is_none());
            let result = store.verify(name, &SecretString::from(password));
            assert!(matches!(result, Err(AuthError::InvalidCredentials)), "{result:?}");
            assert!(cached_dummy(&store).is_some(), "no dummy verification for {name:?}");
        }
    }

    /// Review (hostile, point 2): a user whose entry is unusable gets `BadEntry` only after
    /// the dummy verification an unknown user gets, so the work done does not tell such a
    /// name apart. Before, `BadEntry` came back before any Argon2 run (no dummy was made).
    #[test]
    fn a_bad_entry_is_reported_after_the_dummy_verification() {
        let good = phc::hash_password("bob's password", Profile::TestOnlyInsecure).unwrap();
        for bad in [serde_json::json!(42), serde_json::json!("$argon2id$v=19$m=8,t=1,p=1$nonsense")]
        {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("users.json");
            let users = serde_json::json!({"bob": good, "mallory": bad});
            std::fs::write(&path, users.to_string()).unwrap();
            let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
            assert!(cached_dummy(&store).is_none());
            let result = store.verify("mallory", &SecretString::from("any password"));
            assert!(matches!(result, Err(AuthError::BadEntry { .. })), "{result:?}");
            assert!(cached_dummy(&store).is_some(), "no dummy verification for {bad}");
        }
    }

    /// NIST SP 800-63B-4 §3.1.1.2 (normalise) without a new timing signal: a login tries
    /// the NFKC form, then the raw input only when NFKC changes it, and an unknown user or an
    /// unusable entry runs the dummy check as many times as a wrong password runs the real
    /// one: the count depends on the input alone. Before, every path ran exactly one check
    /// (the NFD input below gave 1 where 2 are expected).
    #[test]
    fn every_path_runs_as_many_checks_as_the_input_has_forms() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let raw = "cafe\u{301} au lait, no sugar";
        let lab = phc::hash_password(raw, Profile::TestOnlyInsecure).unwrap();
        let users = serde_json::json!({"alice": lab, "mallory": 42});
        std::fs::write(&path, users.to_string()).unwrap();
        let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
        let checks = |name: &str, password: &str| {
            let before = store.checks.load(std::sync::atomic::Ordering::Relaxed);
            let result = store.verify(name, &SecretString::from(password));
            (store.checks.load(std::sync::atomic::Ordering::Relaxed) - before, result)
        };
        for (password, forms) in [("plain ascii words", 1), ("other cafe\u{301} words", 2)] {
            let (n, result) = checks("alice", password);
            assert!(matches!(result, Err(AuthError::InvalidCredentials)), "{result:?}");
            assert_eq!(n, forms, "wrong password {password:?}");
            let (n, result) = checks("nobody", password);
            assert!(matches!(result, Err(AuthError::InvalidCredentials)), "{result:?}");
            assert_eq!(n, forms, "unknown user {password:?}");
            let (n, result) = checks("mallory", password);
            assert!(matches!(result, Err(AuthError::BadEntry { .. })), "{result:?}");
            assert_eq!(n, forms, "unusable entry {password:?}");
        }
        // The lab's raw hash matches on the second check and is upgraded to the NFKC form;
        // from then on the first check matches.
        let (n, result) = checks("alice", raw);
        assert!(result.unwrap().rehashed());
        assert_eq!(n, 2);
        let upgraded = record(&store, "alice").unwrap();
        phc::verify_password("caf\u{e9} au lait, no sugar", &upgraded).unwrap();
        assert!(phc::verify_password(raw, &upgraded).is_err());
        let (n, result) = checks("alice", raw);
        assert!(!result.unwrap().rehashed());
        assert_eq!(n, 1);
    }

    /// Issue 14, decision 1: a login reads the users exactly once (one `login_view`), known
    /// name, unknown name, overlong name or ambiguous spelling alike, and the dummy of an
    /// overlong name is shaped like the store's typical record, as an unknown name's is.
    #[test]
    fn every_login_reads_the_users_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let weak = |p: &str| phc::hash_password(p, Profile::TestOnlyInsecure).unwrap();
        let users = serde_json::json!({
            "alice": weak("alice's password"), "jos\u{e9}": weak("one"),
            "jose\u{301}": weak("two"),
        });
        std::fs::write(&path, users.to_string()).unwrap();
        let store =
            UserStore::new(&path).with_profile(Profile::TestOnlyInsecure).without_throttle();
        let reads = || store.reads.load(std::sync::atomic::Ordering::Relaxed);
        let long_name = "a".repeat(MAX_LOGIN_USERNAME_BYTES + 1);
        let password = SecretString::from("alice's password");
        for name in ["alice", "nobody", long_name.as_str(), "jos\u{e9}\u{200B}"] {
            let before = reads();
            let _ = store.verify(name, &password);
            assert_eq!(reads() - before, 1, "{name:.8}");
        }
        let key = cached_dummy(&store).unwrap();
        assert!(key.starts_with("$argon2id$v=19$m=8,t=1,p=1$22$43"), "{key}");
    }

    #[test]
    fn a_rehash_never_lowers_the_cost() {
        // A stored hash costlier than the policy keeps its costs when rehashed (say, for its
        // variant); a cheaper one is raised to the policy.
        let stored = phc::hash_password("pw", Profile::OwaspMinimum).unwrap();
        let stored = ParsedHash::parse(&stored, &Limits::DEFAULT).unwrap();
        let params = stored.rehash_params(Profile::TestOnlyInsecure.params());
        assert_eq!((params.memory_kib(), params.iterations()), (19456, 2));
        let params = stored.rehash_params(Profile::Rfc9106LowMemory.params());
        assert_eq!((params.memory_kib(), params.iterations()), (65536, 3));
    }

    /// Review F, point 3: with a subscriber taking security events, a refused attempt still
    /// reads no users (it is logged by its account's label). Before, it read the users file
    /// once to name a known user (`reads` was 1).
    #[test]
    fn a_refused_attempt_reads_no_users_with_security_logging_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let policy = ThrottlePolicy::default().lock_after(1).unwrap();
        let store =
            UserStore::new(&path).with_profile(Profile::TestOnlyInsecure).with_throttle(policy);
        let store = store.unwrap();
        store.register("alice", &SecretString::from("wonderland password")).unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            assert!(events::enabled());
            let wrong = SecretString::from("not the password");
            assert!(matches!(store.verify("alice", &wrong), Err(AuthError::InvalidCredentials)));
            let reads = || store.reads.load(std::sync::atomic::Ordering::Relaxed);
            let before = reads();
            let result = store.verify("alice", &SecretString::from("wonderland password"));
            assert!(matches!(result, Err(AuthError::Throttled { .. })), "{result:?}");
            assert_eq!(reads(), before);
        });
    }

    /// Review G, point 4: a `passwd` refused by throttling reads no users either (its
    /// `authn_password_change_fail` names the account's label, as the refusal does).
    /// Before, the failure event looked the name up in the users file (`reads` was 1).
    #[test]
    fn a_refused_password_change_reads_no_users_with_security_logging_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let policy = ThrottlePolicy::default().lock_after(1).unwrap();
        let store =
            UserStore::new(&path).with_profile(Profile::TestOnlyInsecure).with_throttle(policy);
        let store = store.unwrap();
        store.register("alice", &SecretString::from("wonderland password")).unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let wrong = SecretString::from("not the password");
            assert!(matches!(store.verify("alice", &wrong), Err(AuthError::InvalidCredentials)));
            let reads = || store.reads.load(std::sync::atomic::Ordering::Relaxed);
            let before = reads();
            let right = SecretString::from("wonderland password");
            let new = SecretString::from("a brand new long passphrase");
            let result = store.change_password("alice", &right, &new, None);
            assert!(matches!(result, Err(AuthError::Throttled { .. })), "{result:?}");
            assert_eq!(reads(), before);
        });
    }

    /// A record under a pepper version the store does not hold gets `PepperUnavailable`
    /// only after the dummy verification an unknown user gets (like a bad entry).
    #[test]
    fn an_unavailable_pepper_version_is_reported_after_the_dummy_verification() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        let peppers = Peppers::parse(&SecretString::from(key)).unwrap();
        let peppered =
            UserStore::new(&path).with_profile(Profile::TestOnlyInsecure).with_peppers(peppers);
        peppered.register("alice", &SecretString::from("a long enough password")).unwrap();
        let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
        assert!(cached_dummy(&store).is_none());
        let result = store.verify("alice", &SecretString::from("a long enough password"));
        assert!(matches!(result, Err(AuthError::PepperUnavailable { .. })), "{result:?}");
        assert!(cached_dummy(&store).is_some(), "no dummy verification");
    }
}
