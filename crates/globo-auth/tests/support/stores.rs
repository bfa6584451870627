//! The three users stores behind one fixture, for tests/stores.rs (issue 14: the same
//! behavioural suite run against each). Included with `#[macro_use] #[path] mod fixture;`:
//! [`every_store!`] names this module `$crate::fixture`.
//!
//! A [`Fixture`] owns the store's place (a temporary folder; for PostgreSQL a fresh database
//! on the test server, `globo_testkit::postgres()`, which panics with `CI=true` when the
//! server is missing and prints SKIPPED otherwise) and makes [`UserStore`] values over it,
//! each with a backend of its own (its own connections, its own caches), as another process
//! or instance would have. Records go in and come out only through the public API:
//! [`Fixture::seed`] copies a JSON object written by the test into the store with
//! `copy_users`, [`Fixture::records`] copies the store into a fresh JSON file and reads it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use globo_auth::{CopyReport, UserStore, copy_users};

/// Which store a fixture holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The lab's users file (`UserStore::new`).
    Json,
    /// An SQLite database file (`UserStore::sqlite`).
    Sqlite,
    /// A database on the PostgreSQL test server (`UserStore::postgres`).
    Postgres,
}

/// One store of `kind`, empty, and what it lives in; dropped with the fixture.
pub(crate) struct Fixture {
    pub(crate) kind: Kind,
    dir: tempfile::TempDir,
    database: Option<globo_testkit::TestDatabase>,
}

/// A fresh, empty store of `kind`; `None` when PostgreSQL is missing (after testkit's SKIPPED
/// line; with `CI=true` testkit panics instead).
pub(crate) fn open(kind: Kind) -> Option<Fixture> {
    let database = match kind {
        Kind::Postgres => Some(globo_testkit::postgres()?),
        Kind::Json | Kind::Sqlite => None,
    };
    Some(Fixture { kind, dir: tempfile::tempdir().unwrap(), database })
}

/// Runs the behaviour `test` on a fresh store of `kind` (nothing when it is missing locally).
pub(crate) fn run(kind: Kind, test: fn(&Fixture)) {
    if let Some(fixture) = open(kind) {
        test(&fixture);
    }
}

/// Names for scratch files, unique in the process.
static SCRATCH: AtomicUsize = AtomicUsize::new(0);

impl Fixture {
    /// A new store value on the fixture's store, with the library's defaults (profile,
    /// throttling, no pepper): a backend of its own, like another process's.
    pub(crate) fn store(&self) -> UserStore {
        match self.kind {
            Kind::Json => UserStore::new(self.json_path()),
            Kind::Sqlite => UserStore::sqlite(self.dir.path().join("users.db")).unwrap(),
            Kind::Postgres => {
                let database = self.database.as_ref().unwrap();
                UserStore::postgres(database.config(), database.location().to_owned()).unwrap()
            }
        }
    }

    /// The users file of a [`Kind::Json`] fixture (a test that writes what only a file can
    /// hold, such as look-alike names).
    pub(crate) fn json_path(&self) -> PathBuf {
        self.dir.path().join("users.json")
    }

    /// A JSON store at a new path in the fixture's folder.
    pub(crate) fn scratch(&self) -> (UserStore, PathBuf) {
        let n = SCRATCH.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.path().join(format!("scratch-{n}.json"));
        (UserStore::new(&path), path)
    }

    /// Puts `users` (a JSON object, names to records, as a lab file holds them) into the
    /// store with `copy_users`: records as they are, in the object's order.
    pub(crate) fn seed(&self, users: &serde_json::Value) -> CopyReport {
        let (source, path) = self.scratch();
        std::fs::write(&path, users.to_string()).unwrap();
        copy_users(&source, &self.store()).unwrap()
    }

    /// Every user and record of the store, in store order, read back through `copy_users`
    /// into a fresh JSON file.
    pub(crate) fn records(&self) -> serde_json::Map<String, serde_json::Value> {
        let (target, path) = self.scratch();
        let report = copy_users(&self.store(), &target).unwrap();
        assert!(report.conflicting.is_empty() && report.skipped.is_empty(), "{report:?}");
        if !path.exists() {
            return serde_json::Map::new();
        }
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }

    /// Ends every session of the store's database but this one's, as a server restart or a
    /// proxy's idle timeout does (PostgreSQL only; the file stores have no sessions).
    pub(crate) fn end_sessions(&self) {
        let Some(database) = &self.database else { return };
        let config = database.config();
        // The sync client runs a runtime of its own: on a thread of its own, as testkit does.
        std::thread::spawn(move || {
            let mut client = config.connect(postgres::NoTls).unwrap();
            let ended = client
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    &[],
                )
                .unwrap();
            assert!(!ended.is_empty(), "no session to end");
        })
        .join()
        .unwrap();
    }

    /// The record of `name` as stored.
    pub(crate) fn record(&self, name: &str) -> String {
        let records = self.records();
        let record = records.get(name).unwrap_or_else(|| panic!("no {name:?} in {records:?}"));
        record.as_str().unwrap().to_owned()
    }
}

/// A fake clock: seconds since the epoch, moved by the test.
#[derive(Clone)]
pub(crate) struct FakeClock(Arc<AtomicU64>);

impl FakeClock {
    pub(crate) fn new() -> Self {
        Self(Arc::new(AtomicU64::new(1_800_000_000)))
    }
    pub(crate) fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
    pub(crate) fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub(crate) fn at(&self, secs: u64) -> SystemTime {
        self.now() + Duration::from_secs(secs)
    }
    /// The clock for `UserStore::with_clock`.
    pub(crate) fn source(&self) -> Arc<dyn Fn() -> SystemTime + Send + Sync> {
        let clock = self.clone();
        Arc::new(move || clock.now())
    }
}

/// Defines each `fn name(fx) { body }` once, taking `fx: &Fixture`, and a `#[test]` of that
/// name in each of the modules `json`, `sqlite` and `postgres` that runs it on a fresh store
/// of that kind (so nextest lists `stores json::name`, `stores sqlite::name`,
/// `stores postgres::name`).
macro_rules! every_store {
    (@kind $module:ident, $kind:ident, $($name:ident)*) => {
        mod $module {
            $(
                #[test]
                fn $name() {
                    $crate::fixture::run($crate::fixture::Kind::$kind, super::$name);
                }
            )*
        }
    };
    ($($(#[$attr:meta])* fn $name:ident($fx:ident) $body:block)*) => {
        $($(#[$attr])* fn $name($fx: &$crate::fixture::Fixture) $body)*
        every_store!(@kind json, Json, $($name)*);
        every_store!(@kind sqlite, Sqlite, $($name)*);
        every_store!(@kind postgres, Postgres, $($name)*);
    };
}
