//! The users and throttling records in one SQLite database file (feature `sqlite`).
//!
//! - **The file.** [`SqliteBackend::open`] creates it empty with mode `0600` through
//!   `globo_fs` when it does not exist (SQLite would create it with the process umask), and
//!   follows a symbolic link to its target under `globo_fs`'s owner rule. Anything else than
//!   a regular file at the end (a folder, a FIFO) is refused before SQLite touches it, and a
//!   file that is not a database is refused unchanged. SQLite creates its `-wal` and `-shm`
//!   files with the database file's mode, so they are `0600` too.
//! - **Pragmas**, on every connection: `journal_mode=WAL` (readers never wait for the
//!   writer and never block it: logins read while a registration writes), `synchronous=FULL`
//!   (a committed registration, password change or throttling failure survives a power cut:
//!   with `NORMAL` a WAL commit can be lost, which would forget a failure count and give a
//!   guesser attempts back), `busy_timeout=10000` (a writer waits up to 10 s for another,
//!   then fails with [`AuthError::Database`] instead of hanging), `foreign_keys=ON`.
//! - **Schema.** Opening applies the missing migrations of `schema.rs` in one
//!   `BEGIN IMMEDIATE` transaction (so processes opening a new file at once apply each
//!   exactly once) and refuses a file migrated by a newer globo ([`AuthError::StoreSchema`]).
//! - **Writers.** [`UsersBackend::lock`] takes the exclusive lock on `<file>.lock`
//!   (`globo_fs::ExclusiveLock`, the lock of the JSON store), held while the guard lives, so a
//!   maintenance run keeps other writers out across its transactions; each transaction is
//!   also `BEGIN IMMEDIATE`, so SQLite's own write lock is taken before anything is read and a
//!   compare-and-swap never reads a record another writer is about to change. Throttling
//!   updates take only `BEGIN IMMEDIATE` (they do not wait for a maintenance run).
//! - **Pool.** Connections are kept in a small pool (at most [`POOL_SIZE`] idle) and opened
//!   on demand beyond it; one is returned only outside a transaction. The login read is one
//!   cached prepared statement by `name_key`; the typical record is cached for
//!   [`TYPICAL_TTL`] (and dropped when this backend commits a users transaction).
//! - **Throttling.** Each update reads its one or two rows, runs the throttle logic's closure
//!   and writes them back in one `BEGIN IMMEDIATE` transaction; `expires_ms` is when the
//!   policy forgets the row, and rows past it are deleted in an update at most once per
//!   [`PRUNE_INTERVAL`] per backend. There is no bound on the number of rows.
//!
//! Every query is parameterised (`?1`); errors are [`AuthError::Database`] with a fixed
//! operation name and SQLite's error as the source (it never holds a bound value, so no
//! record or salt appears in a message).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, TransactionBehavior, params};

use super::{
    Entry, KeyScope, LockedUsers, LoginView, Lookup, RecordsUpdate, ThrottleBackend, ThrottleKey,
    ThrottleRecord, UpdateContext, UsersBackend, UsersTxn, schema, shape_key,
};
use crate::AuthError;
use crate::username::comparison_key;

/// How long a connection waits for another writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The most idle connections kept.
const POOL_SIZE: usize = 4;
/// How long the typical record is reused before it is read again.
const TYPICAL_TTL: Duration = Duration::from_secs(30);
/// How often (at most) an update deletes the expired throttling rows.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

const LOOKUP_SQL: &str = "SELECT name, record FROM globo_users WHERE name_key = ?1";
const TYPICAL_SQL: &str = "SELECT record FROM globo_users WHERE id = (
    SELECT min(id) FROM globo_users WHERE shape = (
        SELECT shape FROM globo_users GROUP BY shape ORDER BY count(*) DESC, min(id) LIMIT 1))";
const ALL_SQL: &str = "SELECT name, record FROM globo_users ORDER BY id";
const THROTTLE_READ_SQL: &str =
    "SELECT failures, last_ms FROM globo_throttle WHERE scope = ?1 AND id = ?2";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What every handle of one backend shares (the pool returns connections to it).
struct Shared {
    /// The path as given (the lock follows its links itself).
    given: PathBuf,
    /// The database file at the end of the links.
    file: PathBuf,
    location: String,
    pool: Mutex<Vec<Connection>>,
    typical: Mutex<Option<(Instant, Option<String>)>>,
    last_prune: Mutex<Option<Instant>>,
    salt: Mutex<Option<Vec<u8>>>,
}

/// An SQLite users store and its throttling records (see the module docs).
pub(crate) struct SqliteBackend {
    shared: Arc<Shared>,
}

impl fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteBackend").field("location", &self.shared.location).finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are caches and idle connections: a panic elsewhere leaves them valid.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn to_sql_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The error of `operation` on the store at `location`.
fn database(location: &str, operation: &'static str, source: impl Into<BoxError>) -> AuthError {
    AuthError::Database { store: location.to_owned(), operation, source: source.into() }
}

/// A closure mapping SQLite's errors to [`database`].
fn failed<'a>(
    location: &'a str,
    operation: &'static str,
) -> impl Fn(rusqlite::Error) -> AuthError + 'a {
    move |e| database(location, operation, e)
}

fn scope_name(scope: KeyScope) -> &'static str {
    match scope {
        KeyScope::Account => "account",
        KeyScope::Source => "source",
    }
}

/// Opens one configured connection to `file` (which exists: never created here, so SQLite
/// never creates it with the umask's mode).
fn connect(file: &Path, location: &str) -> Result<Connection, AuthError> {
    let open = failed(location, "open");
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn = Connection::open_with_flags(file, flags).map_err(&open)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&open)?;
    // Switching a new file to WAL needs its exclusive lock, and SQLite answers SQLITE_BUSY
    // at once, without the busy handler, when another connection is opening it too (several
    // processes starting on a new store): try again until the busy timeout.
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mode: String = loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Ok(mode) => break mode,
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                ) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(open(e)),
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(database(
            location,
            "open",
            io::Error::other(format!(
                "the database refused write-ahead logging (journal mode {mode})"
            )),
        ));
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(&open)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(&open)?;
    Ok(conn)
}

/// Applies the missing migrations in one `BEGIN IMMEDIATE` transaction.
fn migrate(conn: &mut Connection, location: &str) -> Result<(), AuthError> {
    let fail = failed(location, "migrate");
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&fail)?;
    tx.execute_batch(schema::MIGRATIONS_TABLE_SQLITE).map_err(&fail)?;
    let current: i64 = tx
        .query_row("SELECT coalesce(max(version), 0) FROM globo_schema_migrations", [], |row| {
            row.get(0)
        })
        .map_err(&fail)?;
    for migration in schema::pending(location, current)? {
        tx.execute_batch(migration.sqlite).map_err(&fail)?;
        tx.execute(
            "INSERT INTO globo_schema_migrations (version, description, applied_ms)
             VALUES (?1, ?2, ?3)",
            params![migration.version, migration.description, now_ms()],
        )
        .map_err(&fail)?;
    }
    tx.commit().map_err(&fail)
}

/// Makes sure `file` is a regular file, creating it (empty, `0600`) when nothing is there.
fn create_file(given: &Path, location: &str, create: bool) -> Result<PathBuf, AuthError> {
    let open = |e: globo_fs::FsError| database(location, "open", e);
    let file = globo_fs::resolve_link(given).map_err(open)?;
    match std::fs::symlink_metadata(&file) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound && !create => {
            return Err(AuthError::StoreNotFound { store: location.to_owned() });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => match globo_fs::create_new(&file, b"") {
            Ok(()) => {}
            // Another opener created it first.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(open(e)),
        },
        Err(e) => return Err(open(globo_fs::FsError::new("inspect", &file, e))),
    }
    let meta = std::fs::symlink_metadata(&file)
        .map_err(|e| open(globo_fs::FsError::new("inspect", &file, e)))?;
    if !meta.file_type().is_file() {
        return Err(open(globo_fs::FsError::new(
            "open",
            &file,
            io::Error::new(io::ErrorKind::InvalidInput, "it is not a regular file"),
        )));
    }
    Ok(file)
}

impl SqliteBackend {
    /// Opens the database at `path`, configures it and applies the missing migrations.
    /// Location `sqlite://<path as given>`.
    ///
    /// A missing file is created empty with mode `0600` (SQLite makes an empty file a new
    /// database). A symbolic link is followed to the file at its end under `globo_fs`'s rules
    /// (see `globo_fs::resolve_link`); a dangling one is refused, since nothing is created
    /// through a link. A folder, a FIFO or anything else that is not a regular file is
    /// refused, and so is a file that is not an SQLite database (left as it is), all with
    /// [`AuthError::Database`] (`open`); a store migrated by a newer globo with
    /// [`AuthError::StoreSchema`].
    pub(crate) fn open(path: impl AsRef<Path>) -> Result<Self, AuthError> {
        Self::open_with(path.as_ref(), true)
    }

    /// As [`open`](Self::open), but a missing file is refused with
    /// [`AuthError::StoreNotFound`] instead of created (a store to read from).
    pub(crate) fn open_existing(path: impl AsRef<Path>) -> Result<Self, AuthError> {
        Self::open_with(path.as_ref(), false)
    }

    fn open_with(path: &Path, create: bool) -> Result<Self, AuthError> {
        let given = path.to_path_buf();
        let location = format!("sqlite://{}", given.display());
        let file = create_file(&given, &location, create)?;
        let mut conn = connect(&file, &location)?;
        migrate(&mut conn, &location)?;
        Ok(Self {
            shared: Arc::new(Shared {
                given,
                file,
                location,
                pool: Mutex::new(vec![conn]),
                typical: Mutex::new(None),
                last_prune: Mutex::new(None),
                salt: Mutex::new(None),
            }),
        })
    }

    /// A connection from the pool, or a new one.
    fn conn(&self) -> Result<Pooled, AuthError> {
        Pooled::take(&self.shared)
    }

    /// The typical record, from the cache while it is fresh.
    fn typical(&self, conn: &Connection) -> Result<Option<String>, AuthError> {
        if let Some((at, typical)) = &*lock(&self.shared.typical)
            && at.elapsed() < TYPICAL_TTL
        {
            return Ok(typical.clone());
        }
        let typical = conn
            .prepare_cached(TYPICAL_SQL)
            .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, String>(0)).optional())
            .map_err(failed(&self.shared.location, "read users"))?;
        *lock(&self.shared.typical) = Some((Instant::now(), typical.clone()));
        Ok(typical)
    }
}

/// A pooled connection, returned to the pool when dropped (unless a transaction is still
/// open on it, which cannot happen through this module, or the pool is full).
struct Pooled {
    conn: Option<Connection>,
    shared: Arc<Shared>,
}

impl Pooled {
    fn take(shared: &Arc<Shared>) -> Result<Self, AuthError> {
        let idle = lock(&shared.pool).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => connect(&shared.file, &shared.location)?,
        };
        Ok(Self { conn: Some(conn), shared: Arc::clone(shared) })
    }

    fn get(&mut self) -> Result<&mut Connection, AuthError> {
        self.conn.as_mut().ok_or_else(|| {
            database(&self.shared.location, "open", io::Error::other("the connection is gone"))
        })
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && conn.is_autocommit()
        {
            let mut pool = lock(&self.shared.pool);
            if pool.len() < POOL_SIZE {
                pool.push(conn);
            }
        }
    }
}

fn lookup_in(conn: &Connection, username: &str, location: &str) -> Result<Lookup, AuthError> {
    let key = comparison_key(username);
    let row = conn
        .prepare_cached(LOOKUP_SQL)
        .and_then(|mut stmt| {
            stmt.query_row([key.as_ref()], |row| Ok((row.get(0)?, row.get(1)?))).optional()
        })
        .map_err(failed(location, "read users"))?;
    Ok(match row {
        Some((name, record)) => Lookup::Found { name, entry: Entry::Text(record), shared: false },
        None => Lookup::Missing,
    })
}

fn all_in(conn: &Connection, location: &str) -> Result<Vec<(String, Entry)>, AuthError> {
    let fail = failed(location, "read users");
    let mut stmt = conn.prepare_cached(ALL_SQL).map_err(&fail)?;
    let rows = stmt
        .query_map([], |row| Ok((row.get::<_, String>(0)?, Entry::Text(row.get(1)?))))
        .map_err(&fail)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(&fail)
}

impl UsersBackend for SqliteBackend {
    fn location(&self) -> &str {
        &self.shared.location
    }

    fn login_view(&self, username: &str) -> Result<LoginView, AuthError> {
        let mut pooled = self.conn()?;
        let conn = pooled.get()?;
        let lookup = lookup_in(conn, username, &self.shared.location)?;
        let typical = self.typical(conn)?;
        Ok(LoginView { lookup, typical })
    }

    fn all(&self) -> Result<Vec<(String, Entry)>, AuthError> {
        let mut pooled = self.conn()?;
        all_in(pooled.get()?, &self.shared.location)
    }

    fn lock(&self) -> Result<Box<dyn LockedUsers>, AuthError> {
        let file_lock = globo_fs::ExclusiveLock::acquire(&self.shared.given)
            .map_err(|e| database(&self.shared.location, "write users", e))?;
        let conn = self.conn()?;
        Ok(Box::new(LockedSqlite { conn, _file_lock: file_lock }))
    }

    fn throttle(&self) -> &dyn ThrottleBackend {
        self
    }
}

/// The writer lock: the lock file held, and a connection for the transactions.
struct LockedSqlite {
    // Dropped first: the connection goes back to the pool, then the lock is released.
    conn: Pooled,
    _file_lock: globo_fs::ExclusiveLock,
}

impl LockedUsers for LockedSqlite {
    fn transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn UsersTxn) -> Result<bool, AuthError>,
    ) -> Result<(), AuthError> {
        let shared = Arc::clone(&self.conn.shared);
        let location = shared.location.as_str();
        let fail = failed(location, "write users");
        let conn = self.conn.get()?;
        // Rolled back when dropped without commit (an error, `Ok(false)`, a panic in `f`).
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&fail)?;
        let mut txn = SqliteTxn { tx: &tx, location, now_ms: now_ms() };
        if f(&mut txn)? {
            tx.commit().map_err(&fail)?;
            // The typical record may have changed: read it again at the next login.
            *lock(&shared.typical) = None;
        }
        Ok(())
    }
}

struct SqliteTxn<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    location: &'a str,
    now_ms: i64,
}

impl<'a> SqliteTxn<'a> {
    fn read_error(&self) -> impl Fn(rusqlite::Error) -> AuthError + 'a {
        failed(self.location, "read users")
    }

    fn write_error(&self) -> impl Fn(rusqlite::Error) -> AuthError + 'a {
        failed(self.location, "write users")
    }
}

impl UsersTxn for SqliteTxn<'_> {
    fn lookup(&mut self, username: &str) -> Result<Lookup, AuthError> {
        lookup_in(self.tx, username, self.location)
    }

    fn key_taken(&mut self, key: &str) -> Result<bool, AuthError> {
        self.tx
            .prepare_cached("SELECT 1 FROM globo_users WHERE name_key = ?1")
            .and_then(|mut stmt| stmt.exists([key]))
            .map_err(self.read_error())
    }

    fn get(&mut self, name: &str) -> Result<Option<Entry>, AuthError> {
        self.tx
            .prepare_cached("SELECT record FROM globo_users WHERE name = ?1")
            .and_then(|mut stmt| stmt.query_row([name], |row| row.get(0)).optional())
            .map(|record| record.map(Entry::Text))
            .map_err(self.read_error())
    }

    fn insert(&mut self, name: &str, record: &str) -> Result<(), AuthError> {
        let result = self
            .tx
            .prepare_cached(
                "INSERT INTO globo_users (name, name_key, record, shape, pepper, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    name,
                    comparison_key(name).as_ref(),
                    record,
                    shape_key(record),
                    crate::phc::keyid_of(record),
                    self.now_ms,
                ])
            });
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                Err(AuthError::UserExists { username: name.to_owned() })
            }
            Err(e) => Err(self.write_error()(e)),
        }
    }

    fn replace(&mut self, name: &str, record: &str) -> Result<(), AuthError> {
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE globo_users SET record = ?2, shape = ?3, pepper = ?4, updated_ms = ?5
                 WHERE name = ?1",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    name,
                    record,
                    shape_key(record),
                    crate::phc::keyid_of(record),
                    self.now_ms,
                ])
            })
            .map_err(self.write_error())?;
        if changed == 0 {
            return Err(AuthError::NoSuchUser { username: name.to_owned() });
        }
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<bool, AuthError> {
        self.tx
            .prepare_cached("DELETE FROM globo_users WHERE name = ?1")
            .and_then(|mut stmt| stmt.execute([name]))
            .map(|changed| changed > 0)
            .map_err(self.write_error())
    }

    fn pepper_versions(&mut self) -> Result<Vec<(String, String)>, AuthError> {
        let fail = self.read_error();
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT name, pepper FROM globo_users WHERE pepper IS NOT NULL ORDER BY id",
            )
            .map_err(&fail)?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).map_err(&fail)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&fail)
    }

    fn pepper_version_set(&mut self) -> Result<std::collections::BTreeSet<String>, AuthError> {
        let fail = self.read_error();
        let mut stmt = self.tx.prepare_cached(super::PEPPER_VERSION_SET_SQL).map_err(&fail)?;
        let rows = stmt.query_map([], |row| row.get(0)).map_err(&fail)?;
        rows.collect::<Result<_, _>>().map_err(&fail)
    }

    fn all(&mut self) -> Result<Vec<(String, Entry)>, AuthError> {
        all_in(self.tx, self.location)
    }
}

/// A throttling row's values, checked.
fn throttle_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ThrottleRecord> {
    let failures: i64 = row.get(0)?;
    let last_ms: i64 = row.get(1)?;
    let bad = |column| rusqlite::Error::IntegralValueOutOfRange(column, 0);
    Ok(ThrottleRecord {
        failures: u32::try_from(failures).map_err(|_| bad(0))?,
        last_ms: u64::try_from(last_ms).map_err(|_| bad(1))?,
    })
}

fn read_throttle(conn: &Connection, key: &ThrottleKey) -> rusqlite::Result<Option<ThrottleRecord>> {
    conn.prepare_cached(THROTTLE_READ_SQL)?
        .query_row(params![scope_name(key.scope), key.id], throttle_row)
        .optional()
}

impl SqliteBackend {
    fn read_salt(&self, conn: &Connection) -> Result<Option<Vec<u8>>, AuthError> {
        let location = self.shared.location.as_str();
        let text: Option<String> = conn
            .prepare_cached("SELECT value FROM globo_meta WHERE name = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([schema::THROTTLE_SALT], |row| row.get(0)).optional()
            })
            .map_err(failed(location, "read throttling"))?;
        let Some(text) = text else { return Ok(None) };
        match crate::throttle::parse_salt(&text) {
            Some(salt) => Ok(Some(salt)),
            None => Err(database(
                location,
                "read throttling",
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the throttling salt in globo_meta is not 32 bytes in hex",
                ),
            )),
        }
    }
}

impl ThrottleBackend for SqliteBackend {
    fn location(&self) -> String {
        format!("{} (table globo_throttle)", self.shared.location)
    }

    fn salt(&self, create: bool) -> Result<Option<Vec<u8>>, AuthError> {
        if let Some(salt) = &*lock(&self.shared.salt) {
            return Ok(Some(salt.clone()));
        }
        let mut pooled = self.conn()?;
        let conn = pooled.get()?;
        let mut salt = self.read_salt(conn)?;
        if salt.is_none() && create {
            let (_, fresh) = crate::throttle::new_salt()?;
            // Another process may insert first: its salt is kept, never replaced.
            conn.prepare_cached("INSERT OR IGNORE INTO globo_meta (name, value) VALUES (?1, ?2)")
                .and_then(|mut stmt| stmt.execute(params![schema::THROTTLE_SALT, fresh]))
                .map_err(failed(&self.shared.location, "write throttling"))?;
            salt = self.read_salt(conn)?;
        }
        if let Some(salt) = &salt {
            *lock(&self.shared.salt) = Some(salt.clone());
        }
        Ok(salt)
    }

    fn update(
        &self,
        keys: &[ThrottleKey],
        context: UpdateContext<'_>,
        f: &mut RecordsUpdate<'_>,
    ) -> Result<(), AuthError> {
        let location = self.shared.location.as_str();
        let read = failed(location, "read throttling");
        let write = failed(location, "write throttling");
        let mut pooled = self.conn()?;
        let conn = pooled.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&write)?;
        let prune = lock(&self.shared.last_prune).is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL);
        let now = to_sql_ms(context.now_ms);
        if prune {
            tx.prepare_cached("DELETE FROM globo_throttle WHERE expires_ms < ?1")
                .and_then(|mut stmt| stmt.execute([now]))
                .map_err(&write)?;
        }
        let mut records = keys
            .iter()
            .map(|key| read_throttle(&tx, key))
            .collect::<Result<Vec<_>, _>>()
            .map_err(&read)?;
        if !f(&mut records)? {
            // Only the expired rows were deleted: keep that.
            if prune {
                tx.commit().map_err(&write)?;
                *lock(&self.shared.last_prune) = Some(Instant::now());
            }
            return Ok(());
        }
        for (key, record) in keys.iter().zip(&records) {
            let scope = scope_name(key.scope);
            match record {
                Some(record) => {
                    let expires =
                        crate::throttle::forget_after_ms(context.policy, key.scope, *record)
                            .map(to_sql_ms);
                    tx.prepare_cached(
                        "INSERT INTO globo_throttle (scope, id, failures, last_ms, expires_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (scope, id) DO UPDATE SET failures = excluded.failures,
                             last_ms = excluded.last_ms, expires_ms = excluded.expires_ms",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            scope,
                            key.id,
                            record.failures,
                            to_sql_ms(record.last_ms),
                            expires
                        ])
                    })
                    .map_err(&write)?;
                }
                None => {
                    tx.prepare_cached("DELETE FROM globo_throttle WHERE scope = ?1 AND id = ?2")
                        .and_then(|mut stmt| stmt.execute(params![scope, key.id]))
                        .map_err(&write)?;
                }
            }
        }
        tx.commit().map_err(&write)?;
        if prune {
            *lock(&self.shared.last_prune) = Some(Instant::now());
        }
        Ok(())
    }

    fn read(&self, key: &ThrottleKey) -> Result<Option<ThrottleRecord>, AuthError> {
        let mut pooled = self.conn()?;
        read_throttle(pooled.get()?, key).map_err(failed(&self.shared.location, "read throttling"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::{Barrier, mpsc};
    use std::thread;

    use super::*;
    use crate::ThrottlePolicy;

    const HOUR_MS: u64 = 60 * 60 * 1000;
    const T0: u64 = 1_800_000_000_000;

    /// A record of cost `m` (its shape) and salt `salt`.
    fn record(m: u32, salt: &str) -> String {
        format!("$argon2id$v=19$m={m},t=2,p=1${salt}$aGFzaGhhc2hoYXNoaGFzaA")
    }

    fn peppered(salt: &str) -> String {
        format!("$argon2id$v=19$m=19456,t=2,p=1,keyid=AAAAAAAA${salt}$aGFzaGhhc2hoYXNoaGFzaA")
    }

    fn open(path: &Path) -> SqliteBackend {
        SqliteBackend::open(path).unwrap()
    }

    fn fresh() -> (tempfile::TempDir, PathBuf, SqliteBackend) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        let backend = open(&path);
        (dir, path, backend)
    }

    /// Runs `f` as one transaction under a fresh writer lock.
    fn write(
        backend: &SqliteBackend,
        mut f: impl FnMut(&mut dyn UsersTxn) -> Result<bool, AuthError>,
    ) -> Result<(), AuthError> {
        backend.lock()?.transaction(&mut f)
    }

    fn insert(backend: &SqliteBackend, name: &str, rec: &str) -> Result<(), AuthError> {
        write(backend, |txn| txn.insert(name, rec).map(|()| true))
    }

    fn names(backend: &SqliteBackend) -> Vec<String> {
        backend.all().unwrap().into_iter().map(|(name, _)| name).collect()
    }

    fn found(name: &str, rec: &str) -> Lookup {
        Lookup::Found { name: name.into(), entry: Entry::Text(rec.into()), shared: false }
    }

    fn count(path: &Path, sql: &str) -> i64 {
        Connection::open(path).unwrap().query_row(sql, [], |row| row.get(0)).unwrap()
    }

    fn account(id: &str) -> ThrottleKey {
        ThrottleKey { scope: KeyScope::Account, id: id.into(), shard: 0 }
    }

    fn source(id: &str) -> ThrottleKey {
        ThrottleKey { scope: KeyScope::Source, id: id.into(), shard: 0 }
    }

    /// Sets every record of `keys` to `failures` failures at `now_ms`.
    fn set(backend: &SqliteBackend, keys: &[ThrottleKey], failures: u32, now_ms: u64) {
        let policy = ThrottlePolicy::default();
        backend
            .update(keys, UpdateContext { policy: &policy, now_ms }, &mut |records| {
                for r in records.iter_mut() {
                    *r = Some(ThrottleRecord { failures, last_ms: now_ms });
                }
                Ok(true)
            })
            .unwrap();
    }

    #[test]
    fn a_login_finds_a_name_by_its_comparison_key_and_misses_others() {
        let (_dir, _path, backend) = fresh();
        let rec = record(19456, "c2FsdHNhbHQ");
        insert(&backend, "alice", &rec).unwrap();
        let view = backend.login_view("alice").unwrap();
        assert_eq!(view.lookup, found("alice", &rec));
        assert_eq!(view.typical.as_deref(), Some(rec.as_str()));
        // Fullwidth letters have the same comparison key (RFC 8265 width mapping).
        let view = backend.login_view("ａｌｉｃｅ").unwrap();
        assert_eq!(view.lookup, found("alice", &rec));
        assert_eq!(backend.login_view("Alice").unwrap().lookup, Lookup::Missing);
        assert_eq!(backend.login_view("bob").unwrap().lookup, Lookup::Missing);
        let mut ran = false;
        write(&backend, |txn| {
            assert_eq!(txn.lookup("ａｌｉｃｅ")?, found("alice", &rec));
            assert!(txn.key_taken("alice")?);
            assert!(!txn.key_taken("ａｌｉｃｅ")?, "key_taken takes a key, not a name");
            assert_eq!(txn.get("alice")?, Some(Entry::Text(rec.clone())));
            assert_eq!(txn.get("ａｌｉｃｅ")?, None);
            ran = true;
            Ok(false)
        })
        .unwrap();
        assert!(ran);
    }

    #[test]
    fn a_second_name_with_a_taken_key_is_user_exists_and_changes_nothing() {
        let (_dir, _path, backend) = fresh();
        let rec = record(19456, "c2FsdHNhbHQ");
        insert(&backend, "alice", &rec).unwrap();
        for name in ["alice", "ａｌｉｃｅ"] {
            let err = write(&backend, |txn| {
                txn.insert("carol", &rec)?;
                txn.insert(name, &record(1, "b3RoZXI"))?;
                Ok(true)
            })
            .unwrap_err();
            assert!(
                matches!(&err, AuthError::UserExists { username } if username == name),
                "{err:?}"
            );
        }
        // carol, inserted before the refusal in the same transaction, was rolled back too.
        assert_eq!(backend.all().unwrap(), vec![("alice".into(), Entry::Text(rec))]);
    }

    #[test]
    fn replace_is_seen_only_after_its_transaction_commits() {
        let (_dir, _path, backend) = fresh();
        let (old, new) = (record(19456, "b2xkb2xk"), record(19456, "bmV3bmV3"));
        insert(&backend, "alice", &old).unwrap();
        // Compare-and-swap: the record read is the one replaced.
        let mut guard = backend.lock().unwrap();
        guard
            .transaction(&mut |txn| {
                assert_eq!(txn.get("alice")?, Some(Entry::Text(old.clone())));
                txn.replace("alice", &new)?;
                assert_eq!(txn.get("alice")?, Some(Entry::Text(new.clone())));
                Ok(false)
            })
            .unwrap();
        assert_eq!(backend.login_view("alice").unwrap().lookup, found("alice", &old));
        let err = guard
            .transaction(&mut |txn| {
                txn.replace("alice", &new)?;
                Err(AuthError::ConcurrentChange { username: "x".into() })
            })
            .unwrap_err();
        assert!(matches!(err, AuthError::ConcurrentChange { .. }), "{err:?}");
        assert_eq!(backend.login_view("alice").unwrap().lookup, found("alice", &old));
        // The same guard runs several transactions (a maintenance run).
        guard.transaction(&mut |txn| txn.replace("alice", &new).map(|()| true)).unwrap();
        drop(guard);
        assert_eq!(backend.login_view("alice").unwrap().lookup, found("alice", &new));
        let err = write(&backend, |txn| txn.replace("bob", &new).map(|()| true)).unwrap_err();
        assert!(matches!(&err, AuthError::NoSuchUser { username } if username == "bob"), "{err:?}");
    }

    #[test]
    fn remove_says_whether_the_user_was_there() {
        let (_dir, _path, backend) = fresh();
        insert(&backend, "alice", &record(1, "YWFhYWFh")).unwrap();
        let mut removed = Vec::new();
        write(&backend, |txn| {
            removed.push(txn.remove("alice")?);
            removed.push(txn.remove("alice")?);
            removed.push(txn.remove("bob")?);
            Ok(true)
        })
        .unwrap();
        assert_eq!(removed, [true, false, false]);
        assert!(backend.all().unwrap().is_empty());
        assert_eq!(backend.login_view("alice").unwrap().lookup, Lookup::Missing);
    }

    #[test]
    fn the_pepper_version_set_is_distinct_and_read_from_the_index() {
        let (_dir, path, backend) = fresh();
        insert(&backend, "zed", &peppered("c2FsdDE")).unwrap();
        insert(&backend, "amy", &record(1, "c2FsdDI")).unwrap();
        insert(&backend, "bob", &peppered("c2FsdDM").replace("AAAAAAAA", "BBBBBBBB")).unwrap();
        insert(&backend, "kim", &peppered("c2FsdDQ")).unwrap();
        let mut set = std::collections::BTreeSet::new();
        write(&backend, |txn| {
            set = txn.pepper_version_set()?;
            Ok(false)
        })
        .unwrap();
        assert_eq!(set, ["AAAAAAAA".to_owned(), "BBBBBBBB".to_owned()].into());
        // Every step of the scan is an index search: no step reads the table's rows, so a
        // write's pepper check costs the same with 10 or 100,000 users.
        let connection = Connection::open(&path).unwrap();
        let plan: Vec<String> = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {}", super::super::PEPPER_VERSION_SET_SQL))
            .unwrap()
            .query_map([], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let on_users: Vec<&String> =
            plan.iter().filter(|step| step.contains("globo_users")).collect();
        assert!(!on_users.is_empty(), "{plan:?}");
        assert!(
            on_users
                .iter()
                .all(|step| step.starts_with("SEARCH") && step.contains("globo_users_pepper")),
            "{plan:?}"
        );
    }

    #[test]
    fn pepper_versions_follow_the_records_in_store_order() {
        let (_dir, _path, backend) = fresh();
        insert(&backend, "zed", &peppered("c2FsdDE")).unwrap();
        insert(&backend, "amy", &record(1, "c2FsdDI")).unwrap();
        insert(&backend, "bob", &peppered("c2FsdDM")).unwrap();
        let versions = |backend: &SqliteBackend| {
            let mut out = Vec::new();
            write(backend, |txn| {
                out = txn.pepper_versions()?;
                Ok(false)
            })
            .unwrap();
            out
        };
        let v = String::from("AAAAAAAA");
        assert_eq!(versions(&backend), [("zed".into(), v.clone()), ("bob".into(), v.clone())]);
        write(&backend, |txn| {
            txn.replace("zed", &record(1, "c2FsdDE"))?;
            txn.replace("amy", &peppered("c2FsdDI"))?;
            Ok(true)
        })
        .unwrap();
        assert_eq!(versions(&backend), [("amy".into(), v.clone()), ("bob".into(), v)]);
    }

    #[test]
    fn all_is_insertion_order() {
        let (_dir, _path, backend) = fresh();
        for name in ["carol", "alice", "bob"] {
            insert(&backend, name, &record(1, "c2FsdHNhbHQ")).unwrap();
        }
        assert_eq!(names(&backend), ["carol", "alice", "bob"]);
        write(&backend, |txn| {
            txn.remove("alice")?;
            txn.insert("alice", &record(2, "c2FsdHNhbHQ"))?;
            Ok(true)
        })
        .unwrap();
        assert_eq!(names(&backend), ["carol", "bob", "alice"]);
        let mut inside = Vec::new();
        write(&backend, |txn| {
            inside = txn.all()?;
            Ok(false)
        })
        .unwrap();
        assert_eq!(inside, backend.all().unwrap());
    }

    #[test]
    fn typical_is_the_first_record_of_the_most_common_shape_cached() {
        let (_dir, path, backend) = fresh();
        assert_eq!(backend.login_view("x").unwrap().typical, None);
        let (a1, b1, b2) = (record(1, "YTE"), record(2, "YjE"), record(2, "YjIy"));
        insert(&backend, "a1", &a1).unwrap();
        insert(&backend, "b1", &b1).unwrap();
        // b2's salt is longer: the same cost, another shape.
        insert(&backend, "b2", &b2).unwrap();
        insert(&backend, "b3", &record(2, "YjM")).unwrap();
        // This backend's own commits drop its cache.
        assert_eq!(backend.login_view("x").unwrap().typical.as_deref(), Some(b1.as_str()));
        // Another process's writes are seen within the cache's lifetime only.
        let other = open(&path);
        for name in ["a2", "a3", "a4"] {
            insert(&other, name, &record(1, "YTI")).unwrap();
        }
        assert_eq!(backend.login_view("x").unwrap().typical.as_deref(), Some(b1.as_str()));
        assert_eq!(open(&path).login_view("x").unwrap().typical.as_deref(), Some(a1.as_str()));
    }

    #[test]
    fn the_writer_lock_excludes_another_backend_until_dropped() {
        let (_dir, path, backend) = fresh();
        let guard = backend.lock().unwrap();
        assert!(path.with_file_name("users.db.lock").is_file());
        let (tx, rx) = mpsc::channel();
        let other = thread::spawn({
            let path = path.clone();
            let tx = tx.clone();
            move || {
                let other = open(&path);
                tx.send("other waits").unwrap();
                let _guard = other.lock().unwrap();
                tx.send("other locked").unwrap();
            }
        });
        assert_eq!(rx.recv().unwrap(), "other waits");
        // Gives the other thread time to reach the lock: without it, it would get it now.
        thread::sleep(Duration::from_millis(300));
        tx.send("first released").unwrap();
        drop(guard);
        other.join().unwrap();
        let order: Vec<_> = rx.try_iter().collect();
        assert_eq!(order, ["first released", "other locked"]);
    }

    #[test]
    fn sixty_four_inserts_from_four_backends_all_land() {
        let (_dir, path, _backend) = fresh();
        let start = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (path, start) = (path.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    let backend = open(&path);
                    start.wait();
                    for i in 0..16 {
                        insert(&backend, &format!("user-{t}-{i}"), &record(1, "c2FsdA")).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let mut all = names(&open(&path));
        all.sort();
        let mut expected: Vec<_> =
            (0..4).flat_map(|t| (0..16).map(move |i| format!("user-{t}-{i}"))).collect();
        expected.sort();
        assert_eq!(all, expected);
    }

    #[test]
    fn throttle_updates_from_two_backends_in_threads_never_lose_a_failure() {
        let (_dir, path, _backend) = fresh();
        let backends = [Arc::new(open(&path)), Arc::new(open(&path))];
        let start = Arc::new(Barrier::new(4));
        let policy = ThrottlePolicy::default();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let backend = Arc::clone(&backends[t % 2]);
                let (start, policy) = (Arc::clone(&start), policy.clone());
                thread::spawn(move || {
                    start.wait();
                    for _ in 0..25 {
                        let context = UpdateContext { policy: &policy, now_ms: T0 };
                        backend
                            .update(&[account("a"), source("s")], context, &mut |records| {
                                // Widens the window between the read and the write, where
                                // a lost update would happen without the write lock.
                                thread::sleep(Duration::from_millis(1));
                                for r in records.iter_mut() {
                                    let failures = r.map_or(0, |r| r.failures);
                                    *r = Some(ThrottleRecord {
                                        failures: failures + 1,
                                        last_ms: T0,
                                    });
                                }
                                Ok(true)
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let check = open(&path);
        let hundred = Some(ThrottleRecord { failures: 100, last_ms: T0 });
        assert_eq!(check.read(&account("a")).unwrap(), hundred);
        assert_eq!(check.read(&source("s")).unwrap(), hundred);
        assert_eq!(check.read(&account("s")).unwrap(), None, "scopes are separate maps");
    }

    #[test]
    fn an_update_writes_only_when_told_and_none_removes() {
        let (_dir, _path, backend) = fresh();
        let policy = ThrottlePolicy::default();
        let context = UpdateContext { policy: &policy, now_ms: T0 };
        set(&backend, &[account("a"), source("s")], 3, T0);
        let mut seen = Vec::new();
        backend
            .update(&[source("s"), account("a"), account("b")], context, &mut |records| {
                seen = records.to_vec();
                records[0] = None;
                Ok(false)
            })
            .unwrap();
        let three = Some(ThrottleRecord { failures: 3, last_ms: T0 });
        assert_eq!(seen, [three, three, None]);
        assert_eq!(backend.read(&source("s")).unwrap(), three);
        let err = backend
            .update(&[source("s")], context, &mut |records| {
                records[0] = None;
                Err(AuthError::ConcurrentChange { username: "x".into() })
            })
            .unwrap_err();
        assert!(matches!(err, AuthError::ConcurrentChange { .. }));
        assert_eq!(backend.read(&source("s")).unwrap(), three);
        backend
            .update(&[source("s")], context, &mut |records| {
                records[0] = None;
                Ok(true)
            })
            .unwrap();
        assert_eq!(backend.read(&source("s")).unwrap(), None);
        assert_eq!(backend.read(&account("a")).unwrap(), three);
    }

    #[test]
    fn rows_expire_as_the_policy_says_and_are_deleted_at_most_once_a_minute() {
        let (_dir, path, backend) = fresh();
        set(&backend, &[account("a"), source("s")], 1, T0);
        let expires = |scope: &str| -> Option<i64> {
            Connection::open(&path)
                .unwrap()
                .query_row(
                    "SELECT expires_ms FROM globo_throttle WHERE scope = ?1",
                    [scope],
                    |row| row.get(0),
                )
                .unwrap()
        };
        // Default policy: an account is forgotten 24 h after its last failure, a source 1 h.
        let t0 = i64::try_from(T0).unwrap();
        assert_eq!(expires("account"), Some(t0 + 24 * 3_600_000));
        assert_eq!(expires("source"), Some(t0 + 3_600_000));
        // A lock until an operator unlocks it never expires.
        let forever = ThrottlePolicy::default().lock_duration(None);
        backend
            .update(
                &[account("a")],
                UpdateContext { policy: &forever, now_ms: T0 },
                &mut |records| {
                    records[0] = Some(ThrottleRecord { failures: 100, last_ms: T0 });
                    Ok(true)
                },
            )
            .unwrap();
        assert_eq!(expires("account"), None);

        // A new backend deletes the expired rows in its first update, even one that writes
        // nothing; the source expired, the locked account stays.
        let later = open(&path);
        let policy = ThrottlePolicy::default();
        let context = UpdateContext { policy: &policy, now_ms: T0 + 2 * HOUR_MS };
        later.update(&[account("other")], context, &mut |_| Ok(false)).unwrap();
        assert_eq!(count(&path, "SELECT count(*) FROM globo_throttle"), 1);
        assert_eq!(later.read(&source("s")).unwrap(), None);
        assert!(later.read(&account("a")).unwrap().is_some());
        // Not again within a minute: a row expired since stays until then.
        set(&later, &[source("t")], 1, T0 + 2 * HOUR_MS);
        let context = UpdateContext { policy: &policy, now_ms: T0 + 4 * HOUR_MS };
        later.update(&[account("other")], context, &mut |_| Ok(false)).unwrap();
        assert!(later.read(&source("t")).unwrap().is_some());
        assert_eq!(count(&path, "SELECT count(*) FROM globo_throttle"), 2);
    }

    #[test]
    fn the_salt_is_created_once_and_shared_by_every_opener() {
        let (_dir, path, backend) = fresh();
        assert_eq!(backend.salt(false).unwrap(), None);
        let start = Arc::new(Barrier::new(4));
        let salts: Vec<_> = (0..4)
            .map(|_| {
                let (path, start) = (path.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    let backend = open(&path);
                    start.wait();
                    backend.salt(true).unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let salt = salts[0].clone().unwrap();
        assert_eq!(salt.len(), 32);
        assert!(salts.iter().all(|s| s.as_ref() == Some(&salt)), "one salt for all");
        assert_eq!(backend.salt(false).unwrap(), Some(salt.clone()));
        assert_eq!(backend.salt(true).unwrap(), Some(salt.clone()));
        assert_eq!(count(&path, "SELECT count(*) FROM globo_meta"), 1);
        // A damaged salt is an error, never replaced.
        let damaged = tempfile::tempdir().unwrap();
        let damaged = damaged.path().join("d.db");
        drop(open(&damaged));
        Connection::open(&damaged)
            .unwrap()
            .execute("INSERT INTO globo_meta (name, value) VALUES ('throttle_salt', 'zz')", [])
            .unwrap();
        let err = open(&damaged).salt(true).unwrap_err();
        assert!(matches!(err, AuthError::Database { operation: "read throttling", .. }), "{err:?}");
    }

    #[test]
    fn a_store_of_a_newer_schema_is_refused() {
        let (_dir, path, backend) = fresh();
        drop(backend);
        Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO globo_schema_migrations (version, description, applied_ms)
                 VALUES (?1, 'future', 0)",
                [schema::LATEST + 1],
            )
            .unwrap();
        let err = SqliteBackend::open(&path).unwrap_err();
        assert!(
            matches!(&err, AuthError::StoreSchema { store, found, supported }
                if *found == schema::LATEST + 1 && *supported == schema::LATEST
                    && *store == format!("sqlite://{}", path.display())),
            "{err:?}"
        );
    }

    #[test]
    fn openers_at_once_apply_each_migration_once() {
        // Several rounds: one round of a race can miss it.
        for round in 0..5 {
            openers_at_once_round(&format!("new{round}.db"));
        }
    }

    fn openers_at_once_round(name: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let start = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (path, start) = (path.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    SqliteBackend::open(&path).map(drop)
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap().unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        let mut stmt =
            conn.prepare("SELECT version FROM globo_schema_migrations ORDER BY version").unwrap();
        let versions: Vec<i64> =
            stmt.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(versions, (1..=schema::LATEST).collect::<Vec<_>>());
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn the_database_and_its_wal_and_shm_files_are_private() {
        let (_dir, path, backend) = fresh();
        insert(&backend, "alice", &record(1, "c2FsdA")).unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
        let conn = backend.conn().unwrap();
        let conn = conn.conn.as_ref().unwrap();
        let pragma = |name: &str| -> i64 {
            conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0)).unwrap()
        };
        assert_eq!(pragma("synchronous"), 2, "FULL");
        assert_eq!(pragma("busy_timeout"), 10_000);
        assert_eq!(pragma("foreign_keys"), 1);
    }

    #[test]
    fn a_symlink_is_followed_to_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.db");
        let link = dir.path().join("users.db");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        // A dangling link: nothing is created through it.
        let err = SqliteBackend::open(&link).unwrap_err();
        assert!(matches!(err, AuthError::Database { operation: "open", .. }), "{err:?}");
        assert!(!target.exists());
        drop(open(&target));
        let via_link = open(&link);
        assert_eq!(UsersBackend::location(&via_link), format!("sqlite://{}", link.display()));
        insert(&via_link, "alice", &record(1, "c2FsdA")).unwrap();
        assert_eq!(names(&open(&target)), ["alice"]);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert!(dir.path().join("real.db.lock").is_file(), "the lock lies beside the target");
        assert!(dir.path().join("real.db-wal").is_file());
        assert!(!dir.path().join("users.db-wal").exists());
    }

    #[test]
    fn a_folder_reached_through_a_symlink_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("alias")).unwrap();
        let path = dir.path().join("alias").join("users.db");
        insert(&open(&path), "alice", &record(1, "c2FsdA")).unwrap();
        assert_eq!(names(&open(&dir.path().join("real").join("users.db"))), ["alice"]);
        assert_eq!(names(&open(&path)), ["alice"]);
    }

    #[test]
    fn a_folder_a_fifo_or_a_file_that_is_no_database_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("folder.db");
        std::fs::create_dir(&folder).unwrap();
        let fifo = dir.path().join("fifo.db");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        for path in [&folder, &fifo] {
            let err = SqliteBackend::open(path).unwrap_err();
            assert!(matches!(err, AuthError::Database { operation: "open", .. }), "{err:?}");
            let chain = crate::Report::new(&err).to_string();
            assert!(chain.contains("not a regular file"), "{chain}");
        }
        let json = dir.path().join("users.json");
        let content = br#"{"alice": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"}"#;
        std::fs::write(&json, content).unwrap();
        let err = SqliteBackend::open(&json).unwrap_err();
        assert!(matches!(err, AuthError::Database { operation: "open", .. }), "{err:?}");
        let chain = crate::Report::new(&err).to_string();
        assert!(!chain.contains("argon2id") && !chain.contains("alice"), "{chain}");
        assert_eq!(std::fs::read(&json).unwrap(), content);
        assert!(!dir.path().join("users.json-wal").exists());
    }
}
