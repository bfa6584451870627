//! Where users and throttling records live: one interface, three implementations.
//!
//! [`UserStore`](crate::UserStore) holds every protection (policy, NFKC, dummy hashes for
//! unknown users, rehash on login, pepper, throttling, events) and reaches its data only
//! through the two traits here, so each backend gets the same behaviour:
//!
//! - [`UsersBackend`]: the users (name as stored, its RFC 8265 comparison key, the PHC
//!   record); reads for logins, and transactions under a store-wide writer lock.
//! - [`ThrottleBackend`]: the throttling records (accounts by salted id, sources), read and
//!   changed atomically one or two at a time.
//!
//! Implementations: `json` (the lab's `users.json` and the `<users>.throttle` folder),
//! `sqlite` (feature `sqlite`) and `postgres` (feature `postgres`).

use std::collections::BTreeSet;
use std::fmt;

use crate::AuthError;
use crate::throttle::ThrottlePolicy;

pub(crate) mod json;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
// The database backends' schema.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) mod schema;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// One stored user's record as a backend holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A PHC string (usable or not: parsing is the store's job).
    Text(String),
    /// Something that is not a string (a JSON users file can hold any value; a database
    /// never returns this).
    NotText,
}

impl Entry {
    pub(crate) fn as_text(&self) -> Option<&str> {
        match self {
            Entry::Text(text) => Some(text),
            Entry::NotText => None,
        }
    }
}

/// What a login name designates among the stored users (see `UserStore::verify`): the stored
/// name equal to it, else the only stored name with the same
/// [`comparison_key`](crate::username::comparison_key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The stored name and its entry; `shared` when another stored name has the same
    /// comparison key (only a lab JSON file can hold such names: a database's key is unique).
    Found { name: String, entry: Entry, shared: bool },
    /// This many stored names (two or more) share the key, none exactly the name.
    Ambiguous(usize),
    /// No stored name has the key.
    Missing,
}

/// What a login reads: the lookup of its name and the store's typical record (the first
/// record of the most common shape, see [`shape_key`]), which the dummy hash for unknown
/// names is made like. Both are read for every login, known name or not, so the two paths
/// cost the same. A backend may cache `typical` (a database refreshes it at most every few
/// seconds): it only sets the parameters of the dummy.
#[derive(Clone, Debug)]
pub(crate) struct LoginView {
    pub(crate) lookup: Lookup,
    pub(crate) typical: Option<String>,
}

/// The reads and writes of one transaction, under the store's writer lock (see
/// [`UsersBackend::lock`]). Everything written is committed at once when the transaction's
/// closure returns `Ok(true)`, and nothing when it returns `Ok(false)` or an error.
pub(crate) trait UsersTxn {
    /// As [`UsersBackend::login_view`]'s lookup, inside the transaction.
    fn lookup(&mut self, username: &str) -> Result<Lookup, AuthError>;
    /// Whether a stored name has the comparison key `key`.
    fn key_taken(&mut self, key: &str) -> Result<bool, AuthError>;
    /// The entry stored under exactly `name`.
    fn get(&mut self, name: &str) -> Result<Option<Entry>, AuthError>;
    /// Adds `name` (its comparison key computed by the backend) with `record`. The caller
    /// checked [`key_taken`](Self::key_taken) in this transaction; a backend with a unique
    /// key still refuses a duplicate with [`AuthError::UserExists`].
    fn insert(&mut self, name: &str, record: &str) -> Result<(), AuthError>;
    /// Replaces the record of the existing user `name`.
    fn replace(&mut self, name: &str, record: &str) -> Result<(), AuthError>;
    /// Removes `name`; whether it was there.
    fn remove(&mut self, name: &str) -> Result<bool, AuthError>;
    /// Every user whose entry names a pepper version (`keyid=` in its text, usable or not),
    /// as (name, version), in store order.
    fn pepper_versions(&mut self) -> Result<Vec<(String, String)>, AuthError>;
    /// The distinct pepper versions the records name: what every write checks (under the
    /// writer lock), so a database answers it from its `pepper` index without reading the
    /// records (a loose index scan: one probe per version, whatever the number of users).
    fn pepper_version_set(&mut self) -> Result<BTreeSet<String>, AuthError> {
        Ok(self.pepper_versions()?.into_iter().map(|(_, version)| version).collect())
    }
    /// Every user, in store order (a JSON file's order; a database's insertion order).
    fn all(&mut self) -> Result<Vec<(String, Entry)>, AuthError>;
}

/// A held writer lock (see [`UsersBackend::lock`]); released when dropped.
pub(crate) trait LockedUsers: Send {
    /// Runs `f` as one transaction (see [`UsersTxn`]).
    fn transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn UsersTxn) -> Result<bool, AuthError>,
    ) -> Result<(), AuthError>;
}

/// The users of one store.
pub(crate) trait UsersBackend: Send + Sync + fmt::Debug {
    /// The store for messages and events: the JSON file's path, `sqlite://PATH`, or the
    /// PostgreSQL URL without its password. Never holds a secret.
    fn location(&self) -> &str;
    /// The login read: one file read or one query (see [`LoginView`]).
    fn login_view(&self, username: &str) -> Result<LoginView, AuthError>;
    /// Every user in store order (no lock).
    fn all(&self) -> Result<Vec<(String, Entry)>, AuthError>;
    /// Takes the store-wide writer lock: while the returned guard lives, no other guard on
    /// the same store, in any process, runs a transaction. The guard owns what it needs
    /// (`'static`), so a maintenance run can keep it across several transactions.
    fn lock(&self) -> Result<Box<dyn LockedUsers>, AuthError>;
    /// The throttling records kept with these users.
    fn throttle(&self) -> &dyn ThrottleBackend;
}

/// Which map a throttling record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum KeyScope {
    Account,
    Source,
}

/// A throttling record's key: its scope and id (an account's salted SHA-256 in hex, a
/// source as given or `sha256:<hex>`), and the shard (first byte of a salted digest) a
/// sharded backend files it under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ThrottleKey {
    pub(crate) scope: KeyScope,
    pub(crate) id: String,
    pub(crate) shard: u8,
}

/// One key's consecutive failures and the time of the last one (ms since the Unix epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ThrottleRecord {
    pub(crate) failures: u32,
    pub(crate) last_ms: u64,
}

/// The policy and time an update runs under: a backend uses them to drop expired records
/// ([`ThrottlePolicy`]'s rules; `crate::throttle::forget_after_ms` gives when a record
/// expires) and to bound its size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UpdateContext<'a> {
    pub(crate) policy: &'a ThrottlePolicy,
    pub(crate) now_ms: u64,
}

/// What [`ThrottleBackend::update`] runs on the records read: `Ok(true)` writes them back.
pub(crate) type RecordsUpdate<'a> =
    dyn FnMut(&mut [Option<ThrottleRecord>]) -> Result<bool, AuthError> + 'a;

/// The throttling records of one store.
pub(crate) trait ThrottleBackend: Send + Sync + fmt::Debug {
    /// Where the records are, for messages (the state folder, or the table and store).
    fn location(&self) -> String;
    /// The 32-byte salt account ids are derived with: created once (random) when `create`
    /// and there is none, never replaced; `None` when there is none and `!create`.
    fn salt(&self, create: bool) -> Result<Option<Vec<u8>>, AuthError>;
    /// Atomically for every process sharing the store: reads the records of `keys` (one or
    /// two, `None` when absent), calls `f` on them, and when it returns `Ok(true)` writes
    /// them back (`None` removes). Refuses with [`AuthError::ThrottleStateFull`] when a
    /// bounded backend has no room for a new record.
    fn update(
        &self,
        keys: &[ThrottleKey],
        context: UpdateContext<'_>,
        f: &mut RecordsUpdate<'_>,
    ) -> Result<(), AuthError>;
    /// The record of `key` now (a snapshot, no lock).
    fn read(&self, key: &ThrottleKey) -> Result<Option<ThrottleRecord>, AuthError>;
}

/// The distinct non-NULL values of `globo_users.pepper` by a loose index scan (the same SQL
/// in both dialects): each step finds the next version above the last from the partial
/// index, so the cost grows with the number of versions, not of users.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) const PEPPER_VERSION_SET_SQL: &str = "WITH RECURSIVE v(p) AS (
    SELECT min(pepper) FROM globo_users WHERE pepper IS NOT NULL
    UNION ALL
    SELECT (SELECT min(pepper) FROM globo_users WHERE pepper > v.p) FROM v WHERE v.p IS NOT NULL
) SELECT p FROM v WHERE p IS NOT NULL";

thread_local! {
    /// Whether this thread may block although it has a tokio runtime's handle: set by the
    /// async API on the blocking-pool threads it runs store calls on.
    static BLOCKING_ALLOWED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the current thread as one that may block (a `spawn_blocking` thread running a store
/// call) until dropped. A backend whose client blocks on a runtime of its own (PostgreSQL)
/// checks [`BlockingAllowed::here`] before doing so on a thread that has a tokio handle.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) struct BlockingAllowed(bool);

impl BlockingAllowed {
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn enter() -> Self {
        Self(BLOCKING_ALLOWED.with(|flag| flag.replace(true)))
    }

    /// Whether the current thread was marked.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn here() -> bool {
        BLOCKING_ALLOWED.with(std::cell::Cell::get)
    }
}

impl Drop for BlockingAllowed {
    fn drop(&mut self) {
        BLOCKING_ALLOWED.with(|flag| flag.set(self.0));
    }
}

/// What decides a hash's cost: everything but the salt and tag bytes, plus their lengths.
/// Records of one shape cost the same to verify; a database keeps it in a column so the
/// typical shape is found without reading every record.
pub(crate) fn shape_key(hash: &str) -> String {
    let mut parts = hash.rsplitn(3, '$');
    let (tag, salt, head) = (parts.next(), parts.next(), parts.next());
    match (tag, salt, head) {
        (Some(tag), Some(salt), Some(head)) => format!("{head}${}${}", salt.len(), tag.len()),
        _ => hash.to_owned(),
    }
}
