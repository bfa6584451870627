//! The database stores' schema, created and migrated by the library (one list of versioned
//! migrations, each in both dialects). A store records the versions applied in
//! `globo_schema_migrations`; opening a store applies the missing ones in order, in one
//! transaction under the database's writer lock (SQLite `BEGIN IMMEDIATE`, PostgreSQL a
//! migration advisory lock, then the writer's, taken only when a version is missing: an
//! up-to-date PostgreSQL store opens without waiting for a writer), so several processes
//! opening a new store at once apply each migration exactly once. A store whose version is newer than [`LATEST`] is refused
//! ([`AuthError::StoreSchema`]): nothing is read or written.
//!
//! Tables are prefixed `globo_` so they can live in an application's own database.
//!
//! - `globo_users`: one row per user. `name` as stored (RFC 8265 for new names), `name_key`
//!   its [`comparison_key`](crate::username::comparison_key) (unique: a database never holds
//!   two names that look the same), `record` the PHC string exactly as the lab's users file
//!   holds it, `shape` its [`shape_key`](super::shape_key) (the typical shape for unknown
//!   names' dummy hash, found from an index), `pepper` its `keyid` (`NULL` unpeppered), `id`
//!   the insertion order ("store order").
//! - `globo_throttle`: one row per throttled account (salted id) or source; `expires_ms` is
//!   when the record is forgotten (`NULL`: never, a lock without end), so expired rows are
//!   deleted from an index.
//! - `globo_meta`: `throttle_salt` (hex of 32 random bytes, created once, never replaced).

use crate::AuthError;

/// The newest schema version this library knows.
pub(crate) const LATEST: i64 = 1;

/// One migration: its version, what it does, and its SQL in each dialect (several
/// statements, run as one batch inside the migration's transaction).
#[derive(Debug)]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) sqlite: &'static str,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) postgres: &'static str,
}

/// The table of applied versions (created before the first migration, in both dialects).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) const MIGRATIONS_TABLE_SQLITE: &str =
    "CREATE TABLE IF NOT EXISTS globo_schema_migrations (
    version INTEGER PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    applied_ms INTEGER NOT NULL
)";
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const MIGRATIONS_TABLE_POSTGRES: &str =
    "CREATE TABLE IF NOT EXISTS globo_schema_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    applied_ms BIGINT NOT NULL
)";

/// Every migration, in version order (versions 1, 2, ... without gaps).
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "users, throttling records, meta",
    sqlite: "
CREATE TABLE globo_users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    name_key TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    shape TEXT NOT NULL,
    pepper TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX globo_users_shape ON globo_users (shape);
CREATE INDEX globo_users_pepper ON globo_users (pepper) WHERE pepper IS NOT NULL;
CREATE TABLE globo_throttle (
    scope TEXT NOT NULL CHECK (scope IN ('account', 'source')),
    id TEXT NOT NULL,
    failures INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    PRIMARY KEY (scope, id)
);
CREATE INDEX globo_throttle_expiry ON globo_throttle (expires_ms) WHERE expires_ms IS NOT NULL;
CREATE TABLE globo_meta (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
",
    postgres: "
CREATE TABLE globo_users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    name_key TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    shape TEXT NOT NULL,
    pepper TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX globo_users_shape ON globo_users (shape);
CREATE INDEX globo_users_pepper ON globo_users (pepper) WHERE pepper IS NOT NULL;
CREATE TABLE globo_throttle (
    scope TEXT NOT NULL CHECK (scope IN ('account', 'source')),
    id TEXT NOT NULL,
    failures INTEGER NOT NULL,
    last_ms BIGINT NOT NULL,
    expires_ms BIGINT,
    PRIMARY KEY (scope, id)
);
CREATE INDEX globo_throttle_expiry ON globo_throttle (expires_ms) WHERE expires_ms IS NOT NULL;
CREATE TABLE globo_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
",
}];

/// The migrations a store at version `current` (0: none applied) still needs, or
/// [`AuthError::StoreSchema`] when it is newer than [`LATEST`].
pub(crate) fn pending(store: &str, current: i64) -> Result<&'static [Migration], AuthError> {
    if current > LATEST {
        return Err(AuthError::StoreSchema {
            store: store.to_owned(),
            found: current,
            supported: LATEST,
        });
    }
    let applied = usize::try_from(current.max(0)).unwrap_or(usize::MAX).min(MIGRATIONS.len());
    Ok(&MIGRATIONS[applied..])
}

/// The name of the throttling salt in `globo_meta`.
pub(crate) const THROTTLE_SALT: &str = "throttle_salt";

/// The PostgreSQL advisory lock key that serialises writers of one database's globo tables
/// (migrations, user transactions, maintenance): "globo" in ASCII.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const POSTGRES_LOCK_KEY: i64 = 0x0067_6c6f_626f;

/// The PostgreSQL advisory lock key that serialises the migrations of one database's globo
/// tables: "globom" in ASCII. Only an opener that finds versions missing takes it (then the
/// writer lock too), so opening an up-to-date store never waits for a writer.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const POSTGRES_MIGRATION_KEY: i64 = 0x676c_6f62_6f6d;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_one_to_latest_in_order() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=LATEST).collect::<Vec<_>>());
    }

    #[test]
    fn a_newer_store_is_refused_and_an_older_one_gets_the_rest() {
        assert!(matches!(
            pending("s", LATEST + 1),
            Err(AuthError::StoreSchema { found, supported: LATEST, .. }) if found == LATEST + 1
        ));
        assert_eq!(pending("s", 0).map(<[_]>::len).ok(), Some(MIGRATIONS.len()));
        assert_eq!(pending("s", LATEST).map(<[_]>::len).ok(), Some(0));
    }
}
