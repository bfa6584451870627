//! The users and throttling records in a PostgreSQL database (feature `postgres`).
//!
//! - **Client.** The synchronous `postgres` crate (tokio-postgres underneath, no libpq), without
//!   TLS (`NoTls`; the URL's password travels as a SCRAM exchange, never in clear, but records
//!   and queries do). So [`check_transport`] refuses, before connecting, a host that is not
//!   this machine (loopback, `localhost` or a Unix socket) unless the configuration says
//!   `sslmode=disable` explicitly (a private network, the operator's choice: libpq's default
//!   `prefer` would fall back to plaintext silently), and refuses `sslmode=require` (no TLS
//!   yet). Each client runs a small runtime of its own and blocks its thread: **never call
//!   this backend from an async task** (it panics inside a tokio runtime, and would stall the
//!   worker anyway); the async API runs every store call on tokio's blocking pool. Dropping
//!   is safe anywhere: inside a runtime, clients are closed on a plain thread ([`dispose`]).
//! - **Bounded waits.** Connecting gives up after [`CONNECT_TIMEOUT`] unless the caller's
//!   configuration sets its own; every session runs `SET statement_timeout` ([`STATEMENT_TIMEOUT`]),
//!   so no query, row lock or advisory lock wait hangs a request for ever.
//! - **Pool.** At most [`MAX_CONNECTIONS`] clients are open at once (at most [`POOL_SIZE`]
//!   kept idle); a caller finding all busy waits for one (a condition variable) up to the
//!   connect timeout, then fails ("all 16 connections busy"). A client whose connection broke
//!   is dropped, never returned. A transaction is always finished (committed or rolled back)
//!   before its client goes back. When the first statement of a call fails on a pooled
//!   client because the server ended its session while it sat idle (a restart, a proxy's
//!   idle timeout), the other idle clients are closed too and the statement runs once more
//!   on a new session (nothing ran on the ended one), so the first logins after a restart do
//!   not fail. Writers of one backend queue in the process
//!   ([`WriterTurn`]): only one holds a connection to wait for the advisory lock, so waiting
//!   writers never take the connections logins need.
//! - **Schema.** [`PostgresBackend::connect`] reads the schema version without a lock; only
//!   when migrations are missing does it take `pg_advisory_xact_lock(POSTGRES_MIGRATION_KEY)`
//!   then the writer's `POSTGRES_LOCK_KEY`, read the version again and apply them in one
//!   transaction, so servers opening a new database at once apply each exactly once, and an
//!   up-to-date store opens while a maintenance run holds the writer lock ([`migrate`]). A
//!   database migrated by a newer globo is refused ([`AuthError::StoreSchema`]).
//! - **Writers** (design decision 2). [`UsersBackend::lock`] takes a client of its own and holds
//!   the session lock `pg_advisory_lock(POSTGRES_LOCK_KEY)` on it while the guard lives (across
//!   several transactions for a maintenance run); each transaction also takes
//!   `pg_advisory_xact_lock` (re-entrant on that session). The guard unlocks when dropped; if
//!   unlocking fails its client is closed, which releases the lock on the server.
//! - **Throttling.** An update locks its rows in one transaction: for each key in a fixed
//!   order (scope, id), one `INSERT ... ON CONFLICT (scope, id) DO UPDATE SET failures =
//!   globo_throttle.failures RETURNING failures, last_ms` inserts a placeholder (0 failures,
//!   read as absent) or locks and reads the existing row. A separate insert-then-`SELECT ...
//!   FOR UPDATE` took no lock when the row existed, so a row deleted meanwhile (a success
//!   clears the account) left nothing to read. Two processes updating the same keys (a new
//!   key included) run one after the other and never deadlock; the records are written back
//!   (or deleted) with their `expires_ms`, from `throttle::forget_after_ms`. Rows past it are
//!   deleted in an update at most once per [`PRUNE_INTERVAL`] per backend, at most
//!   [`PRUNE_BATCH`] at a time (a full batch prunes again at the next update), skipping rows
//!   another transaction holds (`FOR UPDATE SKIP LOCKED`: no wait, so no lock order). There is
//!   no bound on the number of rows.
//! - **NUL.** A `TEXT` value cannot hold NUL (SQLSTATE 22021): a name with one is missing
//!   without a query ([`storable`]); sources with control characters are hashed where their
//!   ids are made (`throttle::Ids::source`).
//!
//! Every query is parameterised (`$1`). Errors are [`AuthError::Database`] with a fixed
//! operation name; the source is the server's SQLSTATE and message, or the client's error,
//! never the server's `DETAIL` (which can quote a row, and so a record).

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postgres::config::{Host, SslMode};
use postgres::error::SqlState;
use postgres::{Client, GenericClient, NoTls, Transaction};

use super::{
    Entry, LockedUsers, LoginView, Lookup, RecordsUpdate, ThrottleBackend, ThrottleKey,
    ThrottleRecord, UpdateContext, UsersBackend, UsersTxn, schema, shape_key,
};
use crate::AuthError;
use crate::backend::KeyScope;
use crate::username::comparison_key;

/// How long connecting may take when the caller's configuration sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest any statement (an advisory or row lock wait included) may run.
const STATEMENT_TIMEOUT: &str = "SET statement_timeout = '30s'";
/// The most idle clients kept.
const POOL_SIZE: usize = 4;
/// The most clients one backend has open at once (idle, in use and being connected); a
/// caller finding all of them busy waits for one, at most the connect timeout.
const MAX_CONNECTIONS: usize = 16;
/// The longest a writer waits for another writer of the same backend (the statement
/// timeout, which bounds the wait for another process's writer the same way).
const WRITER_WAIT: Duration = Duration::from_secs(30);
/// The most expired throttling rows one prune deletes (a full batch prunes again at the next
/// update, so a flood of expired rows is worked off in bounded transactions).
const PRUNE_BATCH: i64 = 1000;
/// How long the typical record is reused before it is read again.
const TYPICAL_TTL: Duration = Duration::from_secs(30);
/// How often (at most) an update deletes the expired throttling rows.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

const LOOKUP_SQL: &str = "SELECT name, record FROM globo_users WHERE name_key = $1";
const TYPICAL_SQL: &str = "SELECT record FROM globo_users WHERE id = (
    SELECT min(id) FROM globo_users WHERE shape = (
        SELECT shape FROM globo_users GROUP BY shape ORDER BY count(*) DESC, min(id) LIMIT 1))";
const ALL_SQL: &str = "SELECT name, record FROM globo_users ORDER BY id";
const LOCK_XACT_SQL: &str = "SELECT pg_advisory_xact_lock($1)";

/// A database failure as it may be shown: the server's SQLSTATE and message (never its
/// `DETAIL` or `WHERE`, which quote values), or the client's own error.
#[derive(Debug)]
struct PgError(String);

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PgError {}

impl PgError {
    fn new(error: &postgres::Error) -> Self {
        match error.as_db_error() {
            Some(db) => Self(format!("{} ({}): {}", db.severity(), db.code().code(), db.message())),
            None => Self(error.to_string()),
        }
    }
}

/// The error of `operation` on the store at `location`.
fn database(location: &str, operation: &'static str, error: &postgres::Error) -> AuthError {
    AuthError::Database {
        store: location.to_owned(),
        operation,
        source: Box::new(PgError::new(error)),
    }
}

/// A closure mapping the client's errors to [`database`].
fn failed<'a>(
    location: &'a str,
    operation: &'static str,
) -> impl Fn(postgres::Error) -> AuthError + 'a {
    move |e| database(location, operation, &e)
}

/// An error of `operation` that is not the client's (a value out of range, a bad salt).
fn invalid(location: &str, operation: &'static str, what: &str) -> AuthError {
    AuthError::Database {
        store: location.to_owned(),
        operation,
        source: Box::new(PgError(what.to_owned())),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are caches and idle clients: a panic elsewhere leaves them valid.
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

fn scope_name(scope: KeyScope) -> &'static str {
    match scope {
        KeyScope::Account => "account",
        KeyScope::Source => "source",
    }
}

/// Drops `clients` where dropping cannot panic. A client's drop closes its session by blocking
/// on the client's own runtime, which panics on a thread that runs a tokio runtime ("Cannot
/// start a runtime from within a runtime"): an async caller dropping its last handle of a
/// store there. So inside a runtime the clients are dropped on a plain thread of their own.
fn dispose(clients: Vec<Client>) {
    if clients.is_empty() {
        return;
    }
    if must_not_block() {
        // If no thread can be started, the closure (and the clients) are dropped here.
        let _ =
            std::thread::Builder::new().name("globo-pg-close".into()).spawn(move || drop(clients));
    } else {
        drop(clients);
    }
}

/// Whether this thread must not block on a client's runtime: it has a tokio runtime's handle
/// and is not a blocking-pool thread the async API runs a store call on (there blocking is
/// what it is for, and closing every session on a thread of its own would cost each async
/// write a new connection: review R2).
fn must_not_block() -> bool {
    tokio::runtime::Handle::try_current().is_ok() && !super::BlockingAllowed::here()
}

/// The clients of one backend: the idle ones, and how many are open in all.
#[derive(Default)]
struct Pool {
    idle: Vec<Client>,
    open: usize,
}

/// The writer of one backend: whether a guard is held (or being taken), and how many wait.
#[derive(Default)]
struct Writer {
    held: bool,
    waiting: usize,
}

/// This backend's writer turn, released when dropped.
struct WriterTurn(Arc<Shared>);

impl WriterTurn {
    fn take(shared: &Arc<Shared>) -> Result<Self, AuthError> {
        let deadline = Instant::now() + WRITER_WAIT;
        let mut writer = lock(&shared.writer);
        writer.waiting += 1;
        while writer.held {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                writer.waiting -= 1;
                return Err(invalid(
                    &shared.location,
                    "write users",
                    "timed out waiting for another writer of this process",
                ));
            }
            writer = shared
                .writer_free
                .wait_timeout(writer, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        writer.waiting -= 1;
        writer.held = true;
        Ok(Self(Arc::clone(shared)))
    }
}

impl Drop for WriterTurn {
    fn drop(&mut self) {
        lock(&self.0.writer).held = false;
        self.0.writer_free.notify_one();
    }
}

/// What every handle of one backend shares (the pool returns clients to it).
struct Shared {
    config: postgres::Config,
    location: String,
    pool: Mutex<Pool>,
    /// Signalled whenever a client goes back to the pool or is closed.
    returned: Condvar,
    max_connections: usize,
    /// This backend's writer: one at a time waits for (or holds) the advisory lock on a
    /// connection; the others wait here, holding none, so waiting writers never take the
    /// connections logins need.
    writer: Mutex<Writer>,
    writer_free: Condvar,
    typical: Mutex<Option<(Instant, Option<String>)>>,
    last_prune: Mutex<Option<Instant>>,
    salt: Mutex<Option<Vec<u8>>>,
}

impl Shared {
    /// A new session with the bounded statement time.
    fn open_client(&self) -> Result<Client, AuthError> {
        let mut client = self.config.connect(NoTls).map_err(failed(&self.location, "connect"))?;
        if let Err(e) = client.batch_execute(STATEMENT_TIMEOUT) {
            dispose(vec![client]);
            return Err(database(&self.location, "connect", &e));
        }
        Ok(client)
    }

    /// Counts a client as closed (it was dropped, or never connected) and wakes a waiter.
    fn closed(&self) {
        let mut pool = lock(&self.pool);
        pool.open = pool.open.saturating_sub(1);
        drop(pool);
        self.returned.notify_one();
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let pool = self.pool.get_mut().unwrap_or_else(PoisonError::into_inner);
        dispose(std::mem::take(&mut pool.idle));
    }
}

/// A PostgreSQL users store and its throttling records (see the module docs). Synchronous:
/// never call it from an async task.
pub(crate) struct PostgresBackend {
    shared: Arc<Shared>,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBackend").field("location", &self.shared.location).finish()
    }
}

impl PostgresBackend {
    /// Connects to the database `config` names and applies the missing migrations.
    /// `location` is how messages and events name the store: the URL without its password
    /// (the caller's; it is never derived from `config`, which holds the password).
    /// `connect_timeout` is 10 s unless `config` sets one.
    pub(crate) fn connect(config: postgres::Config, location: String) -> Result<Self, AuthError> {
        Self::connect_with(config, location, MAX_CONNECTIONS)
    }

    /// [`connect`](Self::connect) to a database that must hold a globo store already (a store
    /// to read from, such as a copy's source): one without the `globo_` tables is refused
    /// with [`AuthError::StoreNotFound`] and left as it is (nothing created).
    pub(crate) fn connect_existing(
        config: postgres::Config,
        location: String,
    ) -> Result<Self, AuthError> {
        Self::open(config, location, MAX_CONNECTIONS, true)
    }

    /// [`connect`](Self::connect) with at most `max_connections` clients open at once.
    pub(crate) fn connect_with(
        config: postgres::Config,
        location: String,
        max_connections: usize,
    ) -> Result<Self, AuthError> {
        Self::open(config, location, max_connections, false)
    }

    fn open(
        mut config: postgres::Config,
        location: String,
        max_connections: usize,
        existing: bool,
    ) -> Result<Self, AuthError> {
        check_transport(&config, &location)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let shared = Arc::new(Shared {
            config,
            location,
            pool: Mutex::new(Pool::default()),
            returned: Condvar::new(),
            max_connections: max_connections.max(1),
            writer: Mutex::new(Writer::default()),
            writer_free: Condvar::new(),
            typical: Mutex::new(None),
            last_prune: Mutex::new(None),
            salt: Mutex::new(None),
        });
        let mut pooled = Pooled::take(&shared)?;
        if existing && schema_version(pooled.get()?, &shared.location)? == 0 {
            return Err(AuthError::StoreNotFound { store: shared.location.clone() });
        }
        migrate(pooled.get()?, &shared.location)?;
        drop(pooled);
        Ok(Self { shared })
    }

    /// A client from the pool, or a new one.
    fn client(&self) -> Result<Pooled, AuthError> {
        Pooled::take(&self.shared)
    }

    /// A client and the outcome of `first`, the first statement run on it, once more on a
    /// new session when the pooled one had been ended by the server
    /// ([`Pooled::ended_while_idle`]). `first` must change nothing when it fails.
    fn first<T>(
        &self,
        mut first: impl FnMut(&mut Client) -> Result<T, AuthError>,
    ) -> Result<(Pooled, T), AuthError> {
        let mut pooled = self.client()?;
        match first(pooled.get()?) {
            Ok(value) => Ok((pooled, value)),
            Err(_) if pooled.ended_while_idle() => {
                drop(pooled);
                let mut pooled = self.client()?;
                let value = first(pooled.get()?)?;
                Ok((pooled, value))
            }
            Err(e) => Err(e),
        }
    }

    /// The typical record, from the cache while it is fresh.
    fn typical(&self, client: &mut Client) -> Result<Option<String>, AuthError> {
        if let Some((at, typical)) = &*lock(&self.shared.typical)
            && at.elapsed() < TYPICAL_TTL
        {
            return Ok(typical.clone());
        }
        let typical = client
            .query_opt(TYPICAL_SQL, &[])
            .map_err(failed(&self.shared.location, "read users"))?
            .map(|row| row.try_get::<_, String>(0))
            .transpose()
            .map_err(failed(&self.shared.location, "read users"))?;
        *lock(&self.shared.typical) = Some((Instant::now(), typical.clone()));
        Ok(typical)
    }
}

/// The schema version `client` sees: 0 before the first migration (no table yet).
fn schema_version(client: &mut impl GenericClient, location: &str) -> Result<i64, AuthError> {
    let fail = failed(location, "migrate");
    let exists: bool = client
        .query_one("SELECT to_regclass('globo_schema_migrations') IS NOT NULL", &[])
        .and_then(|row| row.try_get(0))
        .map_err(&fail)?;
    if !exists {
        return Ok(0);
    }
    client
        .query_one("SELECT coalesce(max(version), 0)::BIGINT FROM globo_schema_migrations", &[])
        .and_then(|row| row.try_get(0))
        .map_err(&fail)
}

/// Applies the missing migrations. A database already at [`schema::LATEST`] (the usual case)
/// is only read, with no lock: opening a store never waits for a writer (a maintenance run
/// holds the writer lock for minutes). When versions are missing, one transaction takes the
/// migration lock (`POSTGRES_MIGRATION_KEY`: openers that found versions missing queue
/// there), then the writer lock (no writer, of this globo or an older one that knows only
/// that key, runs across the change), reads the version again (another opener may have
/// migrated meanwhile) and applies what is still missing.
fn migrate(client: &mut Client, location: &str) -> Result<(), AuthError> {
    let fail = failed(location, "migrate");
    let seen = schema_version(client, location)?;
    if schema::pending(location, seen)?.is_empty() {
        return Ok(());
    }
    let mut tx = client.transaction().map_err(&fail)?;
    tx.execute(LOCK_XACT_SQL, &[&schema::POSTGRES_MIGRATION_KEY]).map_err(&fail)?;
    tx.execute(LOCK_XACT_SQL, &[&schema::POSTGRES_LOCK_KEY]).map_err(&fail)?;
    // Read again through the table itself: an advisory lock does not refresh the session's
    // catalog cache, so `to_regclass` could still miss a table another opener just created,
    // while a statement on the table (which locks it) sees it.
    tx.batch_execute(schema::MIGRATIONS_TABLE_POSTGRES).map_err(&fail)?;
    let current: i64 = tx
        .query_one("SELECT coalesce(max(version), 0)::BIGINT FROM globo_schema_migrations", &[])
        .and_then(|row| row.try_get(0))
        .map_err(&fail)?;
    for migration in schema::pending(location, current)? {
        tx.batch_execute(migration.postgres).map_err(&fail)?;
        tx.execute(
            "INSERT INTO globo_schema_migrations (version, description, applied_ms)
             VALUES ($1, $2, $3)",
            &[&migration.version, &migration.description, &now_ms()],
        )
        .map_err(&fail)?;
    }
    tx.commit().map_err(&fail)
}

/// Whether `host` names this machine: `localhost`, an address in 127.0.0.0/8 or `::1`.
fn loopback_name(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses a configuration whose session would cross a network in the clear. The client
/// has no TLS (`NoTls`), and with libpq's default `sslmode=prefer` it would silently talk
/// plaintext to a remote server: the password exchange is SCRAM, but every record (the
/// password hashes) and query would be readable on the wire. So every host (and `hostaddr`)
/// must be a Unix socket or loopback, unless the configuration says `sslmode=disable`
/// explicitly (the operator's choice for a private network); `sslmode=require` is refused,
/// as TLS is not supported yet.
fn check_transport(config: &postgres::Config, location: &str) -> Result<(), AuthError> {
    let refuse = |reason: &str| {
        Err(AuthError::InvalidStoreSpec { store: location.to_owned(), reason: reason.to_owned() })
    };
    match config.get_ssl_mode() {
        SslMode::Disable => return Ok(()),
        SslMode::Prefer => {}
        _ => {
            return refuse(
                "sslmode=require is not supported yet (the client has no TLS); use a server on this machine, or sslmode=disable on a private network",
            );
        }
    }
    let local_hosts = config.get_hosts().iter().all(|host| match host {
        Host::Tcp(name) => loopback_name(name),
        #[cfg(unix)]
        Host::Unix(_) => true,
    });
    let local_addrs = config.get_hostaddrs().iter().all(IpAddr::is_loopback);
    if local_hosts && local_addrs {
        return Ok(());
    }
    refuse(
        "the client has no TLS, so a host other than this machine (localhost, 127.0.0.0/8, ::1 or a Unix socket) needs sslmode=disable, stated explicitly, for a private network",
    )
}

/// A pooled client, returned to the pool when dropped (unless its connection broke or the
/// pool is full).
struct Pooled {
    client: Option<Client>,
    shared: Arc<Shared>,
    /// Taken from the pool (it may have been idle since before a server restart), not new.
    reused: bool,
}

impl Pooled {
    /// An idle client, else a new one while fewer than the maximum are open, else the next
    /// one returned, waiting at most the connect timeout.
    fn take(shared: &Arc<Shared>) -> Result<Self, AuthError> {
        let wait = shared.config.get_connect_timeout().copied().unwrap_or(CONNECT_TIMEOUT);
        let deadline = Instant::now() + wait;
        let mut pool = lock(&shared.pool);
        loop {
            // A connection the server closed while idle is noticed here, or at its next query.
            let (live, broken): (Vec<Client>, Vec<Client>) =
                std::mem::take(&mut pool.idle).into_iter().partition(|c| !c.is_closed());
            pool.idle = live;
            pool.open = pool.open.saturating_sub(broken.len());
            if !broken.is_empty() {
                drop(pool);
                // Their slots are free: a caller waiting for one may take it now.
                shared.returned.notify_all();
                dispose(broken);
                pool = lock(&shared.pool);
                continue;
            }
            if let Some(client) = pool.idle.pop() {
                return Ok(Self { client: Some(client), shared: Arc::clone(shared), reused: true });
            }
            if pool.open < shared.max_connections {
                pool.open += 1;
                drop(pool);
                // The slot is given back by this value's drop (no client: `closed`) if the
                // connection fails or panics (a sync call on a runtime's worker thread does),
                // so a failed connect never leaks one of the slots.
                let mut pooled = Self { client: None, shared: Arc::clone(shared), reused: false };
                pooled.client = Some(shared.open_client()?);
                return Ok(pooled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let busy = format!("all {} connections busy", shared.max_connections);
                return Err(invalid(&shared.location, "connect", &busy));
            }
            pool =
                shared.returned.wait_timeout(pool, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    fn get(&mut self) -> Result<&mut Client, AuthError> {
        // Always Some until drop: `take` fills it.
        self.client.as_mut().ok_or_else(|| {
            invalid(&self.shared.location, "connect", "the pooled connection is gone")
        })
    }

    /// Whether the first statement that just failed on this client failed because the
    /// server had ended its session while it sat in the pool (a restart, an idle timeout):
    /// the pool's other idle sessions are from before that too, so they are closed, and the
    /// caller runs its first statement once more, on a new session. Nothing ran on the
    /// ended session, so running again changes nothing twice.
    fn ended_while_idle(&mut self) -> bool {
        let ended = self.reused && self.client.as_ref().is_some_and(Client::is_closed);
        if ended {
            self.discard();
            let mut pool = lock(&self.shared.pool);
            let idle = std::mem::take(&mut pool.idle);
            pool.open = pool.open.saturating_sub(idle.len());
            drop(pool);
            dispose(idle);
            self.shared.returned.notify_all();
        }
        ended
    }

    /// Drops the client instead of returning it (a session left in an unknown state).
    fn discard(&mut self) {
        if let Some(client) = self.client.take() {
            dispose(vec![client]);
        }
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            // Discarded: its client is gone already.
            self.shared.closed();
            return;
        };
        let mut pool = lock(&self.shared.pool);
        if !client.is_closed() && pool.idle.len() < POOL_SIZE {
            pool.idle.push(client);
            drop(pool);
            self.shared.returned.notify_one();
        } else {
            drop(pool);
            dispose(vec![client]);
            self.shared.closed();
        }
    }
}

/// Whether PostgreSQL can hold `text`: a `TEXT` value never contains NUL (the server refuses
/// it, SQLSTATE 22021). No stored name or key has one (`Username::prepare` refuses control
/// characters), so a name with NUL is simply not there: it is answered without a query, as
/// any other missing name.
fn storable(text: &str) -> bool {
    !text.contains('\0')
}

fn lookup_in(
    client: &mut impl GenericClient,
    username: &str,
    location: &str,
) -> Result<Lookup, AuthError> {
    let key = comparison_key(username);
    if !storable(&key) {
        return Ok(Lookup::Missing);
    }
    let fail = failed(location, "read users");
    let row = client.query_opt(LOOKUP_SQL, &[&key.as_ref()]).map_err(&fail)?;
    Ok(match row {
        Some(row) => Lookup::Found {
            name: row.try_get(0).map_err(&fail)?,
            entry: Entry::Text(row.try_get(1).map_err(&fail)?),
            shared: false,
        },
        None => Lookup::Missing,
    })
}

fn all_in(
    client: &mut impl GenericClient,
    location: &str,
) -> Result<Vec<(String, Entry)>, AuthError> {
    let fail = failed(location, "read users");
    client
        .query(ALL_SQL, &[])
        .map_err(&fail)?
        .iter()
        .map(|row| {
            Ok((row.try_get(0).map_err(&fail)?, Entry::Text(row.try_get(1).map_err(&fail)?)))
        })
        .collect()
}

impl UsersBackend for PostgresBackend {
    fn location(&self) -> &str {
        &self.shared.location
    }

    fn login_view(&self, username: &str) -> Result<LoginView, AuthError> {
        let location = &self.shared.location;
        let (mut pooled, lookup) = self.first(|client| lookup_in(client, username, location))?;
        let typical = self.typical(pooled.get()?)?;
        Ok(LoginView { lookup, typical })
    }

    fn all(&self) -> Result<Vec<(String, Entry)>, AuthError> {
        self.first(|client| all_in(client, &self.shared.location)).map(|(_, all)| all)
    }

    fn lock(&self) -> Result<Box<dyn LockedUsers>, AuthError> {
        // One writer of this backend at a time takes a connection to wait on the server.
        let turn = WriterTurn::take(&self.shared)?;
        // Waits for another guard (any process) to be dropped, at most the statement timeout.
        let (pooled, _) = self.first(|client| {
            client
                .execute("SELECT pg_advisory_lock($1)", &[&schema::POSTGRES_LOCK_KEY])
                .map_err(failed(&self.shared.location, "write users"))
        })?;
        Ok(Box::new(LockedPostgres { pooled: Some(pooled), _turn: turn }))
    }

    fn throttle(&self) -> &dyn ThrottleBackend {
        self
    }
}

/// The writer lock: a session holding `pg_advisory_lock(POSTGRES_LOCK_KEY)` (always Some
/// until dropped).
struct LockedPostgres {
    pooled: Option<Pooled>,
    /// Released after the lock (fields drop after `drop`).
    _turn: WriterTurn,
}

/// Releases the writer lock of `pooled`'s session and returns its client to the pool.
fn unlock(mut pooled: Pooled) {
    let unlocked = match pooled.client.as_mut() {
        Some(client) => client
            .query_one("SELECT pg_advisory_unlock($1)", &[&schema::POSTGRES_LOCK_KEY])
            .and_then(|row| row.try_get::<_, bool>(0))
            .unwrap_or(false),
        None => false,
    };
    if !unlocked {
        // Closing the session releases every lock it holds.
        pooled.discard();
    }
}

impl Drop for LockedPostgres {
    fn drop(&mut self) {
        let Some(mut pooled) = self.pooled.take() else { return };
        // Unlocking blocks on the client's runtime, which panics on a thread running a tokio
        // runtime (see `dispose`): there the session is closed instead (on a plain thread),
        // which releases its locks; it is never returned to the pool still holding one.
        if must_not_block() {
            pooled.discard();
        } else {
            unlock(pooled);
        }
    }
}

impl LockedUsers for LockedPostgres {
    fn transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn UsersTxn) -> Result<bool, AuthError>,
    ) -> Result<(), AuthError> {
        let pooled = self.pooled.as_mut().ok_or_else(|| {
            invalid("postgres", "write users", "the writer lock's connection is gone")
        })?;
        let shared = Arc::clone(&pooled.shared);
        let location = shared.location.as_str();
        let fail = failed(location, "write users");
        let client = pooled.get()?;
        // Rolled back when dropped without commit (an error, `Ok(false)`, a panic in `f`).
        let mut tx = client.transaction().map_err(&fail)?;
        tx.execute(LOCK_XACT_SQL, &[&schema::POSTGRES_LOCK_KEY]).map_err(&fail)?;
        let write = {
            let mut txn = PostgresTxn { tx: &mut tx, location, now_ms: now_ms() };
            f(&mut txn)?
        };
        if write {
            tx.commit().map_err(&fail)?;
            // The typical record may have changed: read it again at the next login.
            *lock(&shared.typical) = None;
        }
        Ok(())
    }
}

struct PostgresTxn<'t, 'c> {
    tx: &'t mut Transaction<'c>,
    location: &'t str,
    now_ms: i64,
}

impl UsersTxn for PostgresTxn<'_, '_> {
    fn lookup(&mut self, username: &str) -> Result<Lookup, AuthError> {
        lookup_in(self.tx, username, self.location)
    }

    fn key_taken(&mut self, key: &str) -> Result<bool, AuthError> {
        if !storable(key) {
            return Ok(false);
        }
        let fail = failed(self.location, "read users");
        self.tx
            .query_opt("SELECT 1 FROM globo_users WHERE name_key = $1", &[&key])
            .map(|row| row.is_some())
            .map_err(fail)
    }

    fn get(&mut self, name: &str) -> Result<Option<Entry>, AuthError> {
        if !storable(name) {
            return Ok(None);
        }
        let fail = failed(self.location, "read users");
        let row = self
            .tx
            .query_opt("SELECT record FROM globo_users WHERE name = $1", &[&name])
            .map_err(&fail)?;
        row.map(|row| row.try_get(0).map(Entry::Text)).transpose().map_err(&fail)
    }

    fn insert(&mut self, name: &str, record: &str) -> Result<(), AuthError> {
        let key = comparison_key(name);
        let result = self.tx.execute(
            "INSERT INTO globo_users (name, name_key, record, shape, pepper, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
            &[
                &name,
                &key.as_ref(),
                &record,
                &shape_key(record),
                &crate::phc::keyid_of(record),
                &self.now_ms,
            ],
        );
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Err(AuthError::UserExists { username: name.to_owned() })
            }
            Err(e) => Err(database(self.location, "write users", &e)),
        }
    }

    fn replace(&mut self, name: &str, record: &str) -> Result<(), AuthError> {
        if !storable(name) {
            return Err(AuthError::NoSuchUser { username: name.to_owned() });
        }
        let changed = self
            .tx
            .execute(
                "UPDATE globo_users SET record = $2, shape = $3, pepper = $4, updated_ms = $5
                 WHERE name = $1",
                &[&name, &record, &shape_key(record), &crate::phc::keyid_of(record), &self.now_ms],
            )
            .map_err(failed(self.location, "write users"))?;
        if changed == 0 {
            return Err(AuthError::NoSuchUser { username: name.to_owned() });
        }
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<bool, AuthError> {
        if !storable(name) {
            return Ok(false);
        }
        self.tx
            .execute("DELETE FROM globo_users WHERE name = $1", &[&name])
            .map(|changed| changed > 0)
            .map_err(failed(self.location, "write users"))
    }

    fn pepper_versions(&mut self) -> Result<Vec<(String, String)>, AuthError> {
        let fail = failed(self.location, "read users");
        self.tx
            .query("SELECT name, pepper FROM globo_users WHERE pepper IS NOT NULL ORDER BY id", &[])
            .map_err(&fail)?
            .iter()
            .map(|row| Ok((row.try_get(0).map_err(&fail)?, row.try_get(1).map_err(&fail)?)))
            .collect()
    }

    fn pepper_version_set(&mut self) -> Result<std::collections::BTreeSet<String>, AuthError> {
        let fail = failed(self.location, "read users");
        self.tx
            .query(super::PEPPER_VERSION_SET_SQL, &[])
            .map_err(&fail)?
            .iter()
            .map(|row| row.try_get(0).map_err(&fail))
            .collect()
    }

    fn all(&mut self) -> Result<Vec<(String, Entry)>, AuthError> {
        all_in(self.tx, self.location)
    }
}

/// A throttling row's `failures, last_ms`, checked; a placeholder (0 failures) is absent.
fn throttle_row(row: &postgres::Row, location: &str) -> Result<Option<ThrottleRecord>, AuthError> {
    let fail = failed(location, "read throttling");
    let failures: i32 = row.try_get(0).map_err(&fail)?;
    let last_ms: i64 = row.try_get(1).map_err(&fail)?;
    let bad = || invalid(location, "read throttling", "a throttling row holds a negative number");
    let failures = u32::try_from(failures).map_err(|_| bad())?;
    let last_ms = u64::try_from(last_ms).map_err(|_| bad())?;
    Ok((failures > 0).then_some(ThrottleRecord { failures, last_ms }))
}

impl PostgresBackend {
    fn read_salt(&self, client: &mut Client) -> Result<Option<Vec<u8>>, AuthError> {
        let location = self.shared.location.as_str();
        let fail = failed(location, "read throttling");
        let text: Option<String> = client
            .query_opt("SELECT value FROM globo_meta WHERE name = $1", &[&schema::THROTTLE_SALT])
            .map_err(&fail)?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(&fail)?;
        let Some(text) = text else { return Ok(None) };
        match crate::throttle::parse_salt(&text) {
            Some(salt) => Ok(Some(salt)),
            None => Err(invalid(
                location,
                "read throttling",
                "the throttling salt in globo_meta is not 32 bytes in hex",
            )),
        }
    }

    /// The locked records of `keys` (see the module docs), in the order of `keys`.
    fn lock_rows(
        &self,
        tx: &mut Transaction<'_>,
        keys: &[ThrottleKey],
    ) -> Result<Vec<Option<ThrottleRecord>>, AuthError> {
        let location = self.shared.location.as_str();
        let mut order: Vec<usize> = (0..keys.len()).collect();
        // One order for every process: two updates of the same keys never wait for each other
        // in a cycle.
        order.sort_by(|&a, &b| {
            (keys[a].scope, keys[a].id.as_str()).cmp(&(keys[b].scope, keys[b].id.as_str()))
        });
        let mut records = vec![None; keys.len()];
        for index in order {
            let key = &keys[index];
            let scope = scope_name(key.scope);
            // One statement inserts the placeholder or locks the existing row, and returns it:
            // a row deleted by another transaction between an insert that found it and a
            // separate `SELECT ... FOR UPDATE` would leave nothing to read.
            let row = tx
                .query_one(
                    "INSERT INTO globo_throttle (scope, id, failures, last_ms, expires_ms)
                     VALUES ($1, $2, 0, 0, NULL)
                     ON CONFLICT (scope, id) DO UPDATE SET failures = globo_throttle.failures
                     RETURNING failures, last_ms",
                    &[&scope, &key.id],
                )
                .map_err(failed(location, "write throttling"))?;
            records[index] = throttle_row(&row, location)?;
        }
        Ok(records)
    }
}

/// Why [`PostgresBackend::update_on`] failed: its BEGIN (nothing ran), or later.
enum Attempt {
    Begin(postgres::Error),
    Later(AuthError),
}

impl Attempt {
    fn into_error(self, write: &impl Fn(postgres::Error) -> AuthError) -> AuthError {
        match self {
            Attempt::Begin(e) => write(e),
            Attempt::Later(e) => e,
        }
    }
}

impl From<AuthError> for Attempt {
    fn from(e: AuthError) -> Self {
        Attempt::Later(e)
    }
}

impl PostgresBackend {
    /// [`ThrottleBackend::update`] on `client`, in one transaction.
    fn update_on(
        &self,
        client: &mut Client,
        keys: &[ThrottleKey],
        context: UpdateContext<'_>,
        f: &mut RecordsUpdate<'_>,
    ) -> Result<(), Attempt> {
        let location = self.shared.location.as_str();
        let write = failed(location, "write throttling");
        // Rolled back when dropped without commit.
        let mut tx = client.transaction().map_err(Attempt::Begin)?;
        let prune = lock(&self.shared.last_prune).is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL);
        let mut records = self.lock_rows(&mut tx, keys)?;
        if f(&mut records)? {
            for (key, record) in keys.iter().zip(&records) {
                let scope = scope_name(key.scope);
                match record {
                    Some(record) => {
                        let expires =
                            crate::throttle::forget_after_ms(context.policy, key.scope, *record)
                                .map(to_sql_ms);
                        let failures = i32::try_from(record.failures).unwrap_or(i32::MAX);
                        tx.execute(
                            "UPDATE globo_throttle SET failures = $3, last_ms = $4, expires_ms = $5
                             WHERE scope = $1 AND id = $2",
                            &[&scope, &key.id, &failures, &to_sql_ms(record.last_ms), &expires],
                        )
                        .map_err(&write)?;
                    }
                    None => {
                        tx.execute(
                            "DELETE FROM globo_throttle WHERE scope = $1 AND id = $2",
                            &[&scope, &key.id],
                        )
                        .map_err(&write)?;
                    }
                }
            }
        } else if prune {
            // Nothing to write, but keep the expired rows' deletion: remove only the
            // placeholders this update inserted.
            for (key, record) in keys.iter().zip(&records) {
                if record.is_none() {
                    tx.execute(
                        "DELETE FROM globo_throttle WHERE scope = $1 AND id = $2 AND failures = 0",
                        &[&scope_name(key.scope), &key.id],
                    )
                    .map_err(&write)?;
                }
            }
        } else {
            return Ok(tx.rollback().map_err(&write)?);
        }
        let mut pruned_all = true;
        if prune {
            // Last, once this update's own rows are written (fresh expiry) or deleted, and
            // after every lock it waits for: rows another transaction holds are skipped,
            // never waited for, so the prune adds no edge to a lock cycle (run first, it
            // could lock an expired row a second update was about to upsert, then wait for
            // that update's other key: 40P01, review R2). At most a batch per update.
            let deleted = tx
                .execute(
                    "DELETE FROM globo_throttle WHERE (scope, id) IN (
                        SELECT scope, id FROM globo_throttle WHERE expires_ms < $1
                        ORDER BY scope, id LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&to_sql_ms(context.now_ms), &PRUNE_BATCH],
                )
                .map_err(&write)?;
            pruned_all = deleted < u64::try_from(PRUNE_BATCH).unwrap_or(u64::MAX);
        }
        tx.commit().map_err(&write)?;
        // A full batch may have left more: the next update prunes again.
        if prune && pruned_all {
            *lock(&self.shared.last_prune) = Some(Instant::now());
        }
        Ok(())
    }
}

impl ThrottleBackend for PostgresBackend {
    fn location(&self) -> String {
        format!("{} (table globo_throttle)", self.shared.location)
    }

    fn salt(&self, create: bool) -> Result<Option<Vec<u8>>, AuthError> {
        if let Some(salt) = &*lock(&self.shared.salt) {
            return Ok(Some(salt.clone()));
        }
        let (mut pooled, mut salt) = self.first(|client| self.read_salt(client))?;
        let client = pooled.get()?;
        if salt.is_none() && create {
            let (_, fresh) = crate::throttle::new_salt()?;
            // Another process may insert first: its salt is kept, never replaced.
            client
                .execute(
                    "INSERT INTO globo_meta (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING",
                    &[&schema::THROTTLE_SALT, &fresh],
                )
                .map_err(failed(&self.shared.location, "write throttling"))?;
            salt = self.read_salt(client)?;
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
        let write = failed(&self.shared.location, "write throttling");
        let mut pooled = self.client()?;
        match self.update_on(pooled.get()?, keys, context, f) {
            Ok(()) => Ok(()),
            // Its BEGIN failed on a session the server ended while it was idle: nothing ran.
            Err(Attempt::Begin(_)) if pooled.ended_while_idle() => {
                drop(pooled);
                let mut pooled = self.client()?;
                self.update_on(pooled.get()?, keys, context, f).map_err(|a| a.into_error(&write))
            }
            Err(attempt) => Err(attempt.into_error(&write)),
        }
    }

    fn read(&self, key: &ThrottleKey) -> Result<Option<ThrottleRecord>, AuthError> {
        let location = self.shared.location.as_str();
        let (_, row) = self.first(|client| {
            client
                .query_opt(
                    "SELECT failures, last_ms FROM globo_throttle WHERE scope = $1 AND id = $2",
                    &[&scope_name(key.scope), &key.id],
                )
                .map_err(failed(location, "read throttling"))
        })?;
        match row {
            Some(row) => throttle_row(&row, location),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::str::FromStr as _;
    use std::sync::{Barrier, mpsc};
    use std::thread;

    use globo_testkit::TestDatabase;

    use super::*;
    use crate::throttle::ThrottlePolicy;

    const PLAIN: &str = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";
    const SMALL: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";
    const PEPPERED: &str = "$argon2id$v=19$m=65536,t=3,p=4,keyid=AQIDBAUG$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";

    fn open(db: &TestDatabase) -> PostgresBackend {
        PostgresBackend::connect(db.config(), db.location().to_owned()).expect("connect")
    }

    /// A direct session on the test database, to look under the backend.
    fn sql(db: &TestDatabase) -> Client {
        db.config().connect(NoTls).expect("connect directly")
    }

    /// Runs `f` as one transaction under the writer lock.
    fn write(
        backend: &PostgresBackend,
        mut f: impl FnMut(&mut dyn UsersTxn) -> Result<bool, AuthError>,
    ) -> Result<(), AuthError> {
        backend.lock()?.transaction(&mut f)
    }

    fn insert(backend: &PostgresBackend, name: &str, record: &str) -> Result<(), AuthError> {
        write(backend, |txn| txn.insert(name, record).map(|()| true))
    }

    fn names(backend: &PostgresBackend) -> Vec<String> {
        backend.all().unwrap().into_iter().map(|(name, _)| name).collect()
    }

    fn key(scope: KeyScope, id: &str) -> ThrottleKey {
        ThrottleKey { scope, id: id.to_owned(), shard: 0 }
    }

    /// One more failure on each of `keys` at `now_ms`.
    fn fail(backend: &PostgresBackend, keys: &[ThrottleKey], policy: &ThrottlePolicy, now_ms: u64) {
        backend
            .update(keys, UpdateContext { policy, now_ms }, &mut |records| {
                for record in records.iter_mut() {
                    let failures = record.map_or(0, |r| r.failures) + 1;
                    *record = Some(ThrottleRecord { failures, last_ms: now_ms });
                }
                Ok(true)
            })
            .expect("update");
    }

    fn count(client: &mut Client, query: &str) -> i64 {
        client.query_one(query, &[]).unwrap().get(0)
    }

    fn wall_ms() -> u64 {
        u64::try_from(now_ms()).unwrap()
    }

    #[test]
    fn a_name_or_a_look_alike_is_refused_as_user_exists() {
        let Some(db) = globo_testkit::postgres() else { return };
        let backend = open(&db);
        insert(&backend, "alice", PLAIN).unwrap();
        for twin in ["alice", "alice\u{FE0F}"] {
            let refused = insert(&backend, twin, PLAIN);
            assert!(
                matches!(&refused, Err(AuthError::UserExists { username }) if username == twin),
                "{twin:?}: {refused:?}"
            );
        }
        let mut taken = None;
        write(&backend, |txn| {
            taken = Some((txn.key_taken("alice")?, txn.key_taken("bob")?));
            Ok(false)
        })
        .unwrap();
        assert_eq!(taken, Some((true, false)));
        assert_eq!(names(&backend), ["alice"]);
        // The stored row: key, shape and pepper columns as decision 4 says.
        let row = sql(&db)
            .query_one("SELECT name_key, shape, pepper FROM globo_users WHERE name = 'alice'", &[])
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "alice");
        assert_eq!(row.get::<_, String>(1), shape_key(PLAIN));
        assert_eq!(row.get::<_, Option<String>>(2), None);
    }

    #[test]
    fn replace_is_a_compare_and_swap_in_one_transaction() {
        let Some(db) = globo_testkit::postgres() else { return };
        let backend = open(&db);
        insert(&backend, "alice", PLAIN).unwrap();
        // Read, compare, replace: the record read is the one replaced.
        write(&backend, |txn| {
            assert_eq!(txn.get("alice")?, Some(Entry::Text(PLAIN.to_owned())));
            txn.replace("alice", SMALL)?;
            assert_eq!(txn.get("alice")?, Some(Entry::Text(SMALL.to_owned())));
            Ok(true)
        })
        .unwrap();
        // A transaction that declines, or fails, leaves nothing behind.
        write(&backend, |txn| txn.replace("alice", PLAIN).map(|()| false)).unwrap();
        let failed = write(&backend, |txn| {
            txn.replace("alice", PLAIN)?;
            txn.replace("nobody", PLAIN).map(|()| true)
        });
        assert!(matches!(failed, Err(AuthError::NoSuchUser { username }) if username == "nobody"));
        let mut seen = None;
        write(&backend, |txn| {
            seen = txn.get("alice")?;
            Ok(false)
        })
        .unwrap();
        assert_eq!(seen, Some(Entry::Text(SMALL.to_owned())));
        assert_eq!(
            backend.login_view("alice").unwrap().lookup,
            Lookup::Found { name: "alice".into(), entry: Entry::Text(SMALL.into()), shared: false }
        );
    }

    #[test]
    fn remove_says_whether_the_user_was_there() {
        let Some(db) = globo_testkit::postgres() else { return };
        let backend = open(&db);
        insert(&backend, "alice", PLAIN).unwrap();
        insert(&backend, "bob", PLAIN).unwrap();
        let mut removed = Vec::new();
        write(&backend, |txn| {
            removed.push(txn.remove("alice")?);
            removed.push(txn.remove("alice")?);
            Ok(true)
        })
        .unwrap();
        assert_eq!(removed, [true, false]);
        assert_eq!(names(&backend), ["bob"]);
        assert_eq!(backend.login_view("alice").unwrap().lookup, Lookup::Missing);
    }

    #[test]
    fn the_pepper_version_set_is_distinct() {
        let Some(db) = globo_testkit::postgres() else { return };
        let backend = open(&db);
        insert(&backend, "zed", PEPPERED).unwrap();
        insert(&backend, "amy", PLAIN).unwrap();
        insert(&backend, "kim", PEPPERED).unwrap();
        insert(&backend, "bob", &PEPPERED.replace("AQIDBAUG", "BQYHCAkK")).unwrap();
        let mut set = std::collections::BTreeSet::new();
        write(&backend, |txn| {
            set = txn.pepper_version_set()?;
            Ok(false)
        })
        .unwrap();
        assert_eq!(set, ["AQIDBAUG".to_owned(), "BQYHCAkK".to_owned()].into());
    }

    #[test]
    fn pepper_versions_lists_peppered_users_in_store_order() {
        let Some(db) = globo_testkit::postgres() else { return };
        let backend = open(&db);
        insert(&backend, "zed", PEPPERED).unwrap();
        insert(&backend, "amy", PLAIN).unwrap();
        insert(&backend, "kim", PEPPERED).unwrap();
        let mut versions = Vec::new();
        write(&backend, |txn| {
            versions = txn.pepper_versions()?;
            Ok(false)
        })
        .unwrap();
        let version = "AQIDBAUG".to_owned();
        assert_eq!(versions, [("zed".to_owned(), version.clone()), ("kim".to_owned(), version)]);
        // A replaced record's version follows it.
        write(&backend, |txn| txn.replace("zed", PLAIN).map(|()| true)).unwrap();
        write(&backend, |txn| {
            versions = txn.pepper_versions()?;
            Ok(false)
        })
        .unwrap();
        assert_eq!(versions, [("kim".to_owned(), "AQIDBAUG".to_owned())]);
    }

    #[test]
    fn all_is_in_insertion_order_inside_and_outside_transactions() {
        let Some(db) = globo_testkit::postgres() else { return };
        let backend = open(&db);
        for name in ["zed", "amy", "mia", "bob"] {
            insert(&backend, name, PLAIN).unwrap();
        }
        write(&backend, |txn| txn.replace("zed", SMALL).map(|()| true)).unwrap();
        assert_eq!(names(&backend), ["zed", "amy", "mia", "bob"]);
        let mut inside = Vec::new();
        write(&backend, |txn| {
            inside = txn.all()?;
            Ok(false)
        })
        .unwrap();
        assert_eq!(inside, backend.all().unwrap());
        assert_eq!(inside[0], ("zed".to_owned(), Entry::Text(SMALL.to_owned())));
    }

    #[test]
    fn typical_is_the_first_record_of_the_most_common_shape() {
        let Some(db) = globo_testkit::postgres() else { return };
        let backend = open(&db);
        assert_eq!(backend.login_view("anyone").unwrap().typical, None);
        insert(&backend, "one", SMALL).unwrap();
        // A tie (one each) goes to the shape seen first.
        insert(&backend, "two", PEPPERED).unwrap();
        assert_eq!(backend.login_view("x").unwrap().typical.as_deref(), Some(SMALL));
        insert(&backend, "three", PLAIN).unwrap();
        insert(&backend, "four", PLAIN).unwrap();
        let view = backend.login_view("nobody").unwrap();
        assert_eq!(view.lookup, Lookup::Missing);
        assert_eq!(view.typical.as_deref(), Some(PLAIN));
        // Another backend's commit is seen after the cache's lifetime only; this one's own at once.
        let other = open(&db);
        write(&other, |txn| txn.remove("three").map(|_| true)).unwrap();
        write(&other, |txn| txn.remove("four").map(|_| true)).unwrap();
        assert_eq!(other.login_view("x").unwrap().typical.as_deref(), Some(SMALL));
        assert_eq!(backend.login_view("x").unwrap().typical.as_deref(), Some(PLAIN), "cached");
        // A look-alike login name finds the stored one by its comparison key.
        assert!(matches!(
            other.login_view("one\u{FE0F}").unwrap().lookup,
            Lookup::Found { name, shared: false, .. } if name == "one"
        ));
    }

    /// Two backends (two pools of sessions) in two threads add failures to the same two keys,
    /// given in opposite orders: every failure counts, and no update deadlocks.
    #[test]
    fn throttle_updates_are_atomic_across_backends() {
        let Some(db) = globo_testkit::postgres() else { return };
        let backends = [open(&db), open(&db)];
        let policy = ThrottlePolicy::default();
        let rounds = 40u32;
        let account = key(KeyScope::Account, "a1");
        let source = key(KeyScope::Source, "10.0.0.1");
        let start = Barrier::new(2);
        thread::scope(|s| {
            for (i, backend) in backends.iter().enumerate() {
                let keys = if i == 0 {
                    [account.clone(), source.clone()]
                } else {
                    [source.clone(), account.clone()]
                };
                let (policy, start) = (&policy, &start);
                s.spawn(move || {
                    start.wait();
                    for _ in 0..rounds {
                        fail(backend, &keys, policy, wall_ms());
                    }
                });
            }
        });
        for k in [&account, &source] {
            assert_eq!(backends[0].read(k).unwrap().map(|r| r.failures), Some(2 * rounds));
        }
        // A cleared record is deleted, and an update that declines writes nothing (not even
        // its placeholder for a new key).
        let fresh = key(KeyScope::Account, "new");
        backends[1]
            .update(
                &[account.clone(), fresh.clone()],
                UpdateContext { policy: &policy, now_ms: wall_ms() },
                &mut |records| {
                    records[0] = None;
                    Ok(true)
                },
            )
            .unwrap();
        backends[1]
            .update(
                std::slice::from_ref(&fresh),
                UpdateContext { policy: &policy, now_ms: wall_ms() },
                &mut |_| Ok(false),
            )
            .unwrap();
        assert_eq!(backends[0].read(&account).unwrap(), None);
        assert_eq!(count(&mut sql(&db), "SELECT count(*) FROM globo_throttle"), 1);
    }

    #[test]
    fn the_salt_is_created_once_by_two_backends_at_once() {
        let Some(db) = globo_testkit::postgres() else { return };
        let backends = [open(&db), open(&db)];
        assert_eq!(backends[0].salt(false).unwrap(), None);
        let start = Barrier::new(2);
        let salts: Vec<Vec<u8>> = thread::scope(|s| {
            let handles: Vec<_> = backends
                .iter()
                .map(|backend| {
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        backend.salt(true).unwrap().expect("created")
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(salts[0].len(), 32);
        assert_eq!(salts[0], salts[1]);
        let third = open(&db);
        assert_eq!(third.salt(false).unwrap().as_ref(), Some(&salts[0]));
        assert_eq!(count(&mut sql(&db), "SELECT count(*) FROM globo_meta"), 1);
    }

    /// Expired rows go in an update's transaction, at most once a minute per backend.
    #[test]
    fn expired_rows_are_deleted_by_an_update() {
        let Some(db) = globo_testkit::postgres() else { return };
        let policy = ThrottlePolicy::default();
        let writer = open(&db);
        let day_ms = 86_400_000;
        let old = wall_ms() - 30 * day_ms;
        let expired = key(KeyScope::Source, "old");
        fail(&writer, std::slice::from_ref(&expired), &policy, old);
        let live = key(KeyScope::Source, "live");
        fail(&writer, std::slice::from_ref(&live), &policy, wall_ms());
        let mut client = sql(&db);
        let expires: Option<i64> = client
            .query_one("SELECT expires_ms FROM globo_throttle WHERE id = 'old'", &[])
            .unwrap()
            .get(0);
        let record = ThrottleRecord { failures: 1, last_ms: old };
        assert_eq!(
            expires,
            crate::throttle::forget_after_ms(&policy, KeyScope::Source, record).map(to_sql_ms)
        );
        // `writer` pruned at its first update (nothing had expired then): not again yet.
        fail(&writer, &[key(KeyScope::Account, "x")], &policy, wall_ms());
        assert_eq!(count(&mut client, "SELECT count(*) FROM globo_throttle WHERE id = 'old'"), 1);
        // A new backend prunes at its first update.
        let other = open(&db);
        fail(&other, &[key(KeyScope::Account, "y")], &policy, wall_ms());
        assert_eq!(count(&mut client, "SELECT count(*) FROM globo_throttle WHERE id = 'old'"), 0);
        assert_eq!(other.read(&live).unwrap().map(|r| r.failures), Some(1));
    }

    #[test]
    fn a_store_to_read_from_is_neither_created_nor_migrated() {
        let Some(db) = globo_testkit::postgres() else { return };
        let tables = || -> i64 {
            sql(&db)
                .query_one("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'globo\\_%'", &[])
                .unwrap()
                .get(0)
        };
        let error = PostgresBackend::connect_existing(db.config(), db.location().to_owned())
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(&error, AuthError::StoreNotFound { store } if store == db.location()),
            "{error:?}"
        );
        assert_eq!(tables(), 0, "a store to read from got tables");
        drop(open(&db));
        assert_eq!(tables(), 4);
        PostgresBackend::connect_existing(db.config(), db.location().to_owned()).unwrap();
    }

    #[test]
    fn a_database_migrated_by_a_newer_globo_is_refused() {
        let Some(db) = globo_testkit::postgres() else { return };
        drop(open(&db));
        let newer = schema::LATEST + 1;
        sql(&db)
            .execute(
                "INSERT INTO globo_schema_migrations (version, description, applied_ms)
                 VALUES ($1, 'from the future', 0)",
                &[&newer],
            )
            .unwrap();
        let refused = PostgresBackend::connect(db.config(), db.location().to_owned());
        assert!(
            matches!(&refused, Err(AuthError::StoreSchema { store, found, supported })
                if *found == newer && *supported == schema::LATEST && store == db.location()),
            "{refused:?}"
        );
    }

    #[test]
    fn four_backends_opening_a_new_database_at_once_migrate_it_once() {
        let Some(db) = globo_testkit::postgres() else { return };
        let start = Barrier::new(4);
        thread::scope(|s| {
            for _ in 0..4 {
                let (db, start) = (&db, &start);
                s.spawn(move || {
                    start.wait();
                    open(db)
                });
            }
        });
        let mut client = sql(&db);
        let versions: Vec<i64> = client
            .query("SELECT version FROM globo_schema_migrations ORDER BY version", &[])
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(versions, (1..=schema::LATEST).collect::<Vec<_>>());
    }

    /// A second guard (another backend, as another process would) is not granted while the
    /// first lives, and is once it is dropped.
    #[test]
    fn the_writer_lock_excludes_a_second_guard_until_the_first_is_dropped() {
        let Some(db) = globo_testkit::postgres() else { return };
        let (first, second) = (open(&db), open(&db));
        let mut held = first.lock().unwrap();
        // Several transactions under one guard (a maintenance run).
        held.transaction(&mut |txn| txn.insert("alice", PLAIN).map(|()| true)).unwrap();
        held.transaction(&mut |txn| txn.replace("alice", SMALL).map(|()| true)).unwrap();
        let (granted, got) = mpsc::channel();
        thread::scope(|s| {
            s.spawn(|| {
                let mut guard = second.lock().unwrap();
                let mut seen = None;
                guard
                    .transaction(&mut |txn| {
                        seen = txn.get("alice")?;
                        Ok(false)
                    })
                    .unwrap();
                granted.send(seen).unwrap();
            });
            assert!(
                matches!(
                    got.recv_timeout(Duration::from_millis(500)),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ),
                "the second guard was granted while the first was held"
            );
            drop(held);
            assert_eq!(got.recv().unwrap(), Some(Entry::Text(SMALL.to_owned())));
        });
        // Both sessions released the lock: a third guard is granted at once.
        drop(first.lock().unwrap());
    }

    /// A refused connection names the store by the caller's location: neither the password
    /// nor the connection string's `password=` appears anywhere in the error chain.
    #[test]
    fn a_failed_connection_never_shows_the_password() {
        let Some(db) = globo_testkit::postgres() else { return };
        let password = "wrong-pw-7f3a9c";
        let mut config = db.config();
        config.password(password);
        let refused =
            PostgresBackend::connect(config, db.location().to_owned()).expect_err("refused");
        let mut text = format!("{refused} | {refused:?}");
        let mut source = std::error::Error::source(&refused);
        while let Some(error) = source {
            text.push_str(&format!(" | {error} | {error:?}"));
            source = error.source();
        }
        assert!(matches!(refused, AuthError::Database { operation: "connect", .. }), "{text}");
        assert!(text.contains("28P01"), "the server's reason (invalid_password) is kept: {text}");
        let real = postgres::Config::from_str(db.url()).unwrap().get_password().map(<[u8]>::to_vec);
        let real = String::from_utf8(real.unwrap()).unwrap();
        for secret in [password, real.as_str(), "password="] {
            assert!(!text.contains(secret), "the error shows {secret:?}: {text}");
        }
    }

    // Issue 14 hostile review of the PostgreSQL store.

    fn user_store(db: &TestDatabase) -> crate::UserStore {
        crate::UserStore::postgres(db.config(), db.location().to_owned())
            .expect("open")
            .with_profile(crate::Profile::TestOnlyInsecure)
    }

    const RIGHT: &str = "correct horse battery staple";
    const WRONG: &str = "not the password at all";

    fn secret(text: &str) -> secrecy::SecretString {
        secrecy::SecretString::from(text)
    }

    /// Point 1: a success deletes the account's row; an update of another backend that found
    /// the row with its insert must still lock and read it (it read 0 rows: "read throttling
    /// failed").
    #[test]
    fn correct_logins_of_one_user_from_several_backends_all_succeed() {
        let Some(db) = globo_testkit::postgres() else { return };
        let stores: Vec<_> = (0..4).map(|_| user_store(&db)).collect();
        stores[0].register("alice", &secret(RIGHT)).unwrap();
        let start = Barrier::new(stores.len());
        let failures: Vec<String> = thread::scope(|s| {
            let handles: Vec<_> = stores
                .iter()
                .map(|store| {
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        (0..100)
                            .filter_map(|_| store.verify("alice", &secret(RIGHT)).err())
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        assert!(
            failures.is_empty(),
            "{} of 400 logins failed: {:?}",
            failures.len(),
            failures.first()
        );
    }

    /// Point 1: wrong and right passwords of one user from one source, through two backends:
    /// every wrong one counts on the source, every right one takes back only its own attempt.
    #[test]
    fn mixed_logins_from_two_backends_keep_exact_counts() {
        let Some(db) = globo_testkit::postgres() else { return };
        let stores = [user_store(&db), user_store(&db)];
        stores[0].register("alice", &secret(RIGHT)).unwrap();
        let rounds = 8;
        let start = Barrier::new(2);
        thread::scope(|s| {
            for store in &stores {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    for _ in 0..rounds {
                        let wrong = store.verify_from("alice", &secret(WRONG), Some("10.9.8.7"));
                        assert!(matches!(wrong, Err(AuthError::InvalidCredentials)), "{wrong:?}");
                        let right = store.verify_from("alice", &secret(RIGHT), Some("10.9.8.7"));
                        assert!(right.is_ok(), "{right:?}");
                    }
                });
            }
        });
        let source = key(KeyScope::Source, "10.9.8.7");
        let throttle = stores[0].backend().throttle();
        assert_eq!(throttle.read(&source).unwrap().map(|r| r.failures), Some(2 * rounds));
        // Both threads ended with a success: the account's record is gone.
        let accounts = "SELECT count(*) FROM globo_throttle WHERE scope = 'account'";
        assert_eq!(count(&mut sql(&db), accounts), 0);
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    }

    /// Point 2: the last handle of a store dropped on a runtime's worker thread closes its
    /// clients without panicking ("Cannot start a runtime from within a runtime").
    #[cfg(feature = "tokio")]
    /// Review R2: a write on a blocking-pool thread (where the async API runs every call)
    /// unlocks and returns its session to the pool; it used to close it (a thread with a
    /// runtime handle was taken for an async task), so every async write reconnected.
    #[test]
    fn a_write_on_a_blocking_pool_thread_keeps_its_session() {
        let Some(db) = globo_testkit::postgres() else { return };
        let backend = Arc::new(open(&db));
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let writer = Arc::clone(&backend);
        let task = runtime.spawn_blocking(move || {
            let _blocking = super::super::BlockingAllowed::enter();
            insert(&writer, "alice", PLAIN).unwrap();
        });
        runtime.block_on(task).unwrap();
        let pool = lock(&backend.shared.pool);
        assert_eq!((pool.idle.len(), pool.open), (1, 1), "the writer's session was closed");
    }

    #[test]
    fn an_async_store_dropped_inside_a_runtime_closes_its_clients() {
        let Some(db) = globo_testkit::postgres() else { return };
        user_store(&db).register("alice", &secret(RIGHT)).unwrap();
        let spec = crate::StoreSpec::parse(db.url()).unwrap();
        runtime().block_on(async {
            let store = crate::AsyncUserStore::open(spec, None).await.unwrap();
            let wrong = store.verify("alice", &secret(WRONG)).await;
            assert!(matches!(wrong, Err(AuthError::InvalidCredentials)), "{wrong:?}");
            drop(store);
        });
        // The clients were closed: only the direct session remains on the database.
        let mut client = sql(&db);
        let sessions = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()";
        let mut left = count(&mut client, sessions);
        for _ in 0..200 {
            if left == 1 {
                break;
            }
            thread::sleep(Duration::from_millis(50));
            left = count(&mut client, sessions);
        }
        assert_eq!(left, 1, "sessions still open");
    }

    /// Point 2: a writer guard dropped on a runtime's worker thread releases the lock (its
    /// session is closed on a plain thread) without panicking.
    #[test]
    fn a_writer_guard_dropped_inside_a_runtime_releases_the_lock() {
        let Some(db) = globo_testkit::postgres() else { return };
        let backend = Arc::new(open(&db));
        let shared = Arc::clone(&backend);
        runtime().block_on(async move {
            let guard = tokio::task::spawn_blocking(move || shared.lock()).await.unwrap().unwrap();
            drop(guard);
        });
        // Granted once the closed session is gone (the lock wait is bounded by the statement
        // timeout).
        drop(open(&db).lock().unwrap());
    }

    /// Point 3: opening an up-to-date store takes no lock, so it does not wait for a
    /// maintenance run holding the writer lock.
    #[test]
    fn a_store_opens_while_a_maintenance_run_holds_the_writer_lock() {
        let Some(db) = globo_testkit::postgres() else { return };
        let maintenance = user_store(&db).maintenance().unwrap();
        let (opened, got) = mpsc::channel();
        thread::scope(|s| {
            s.spawn(|| {
                opened.send(
                    PostgresBackend::connect(db.config(), db.location().to_owned()).map(|_| ()),
                )
            });
            let result = got.recv_timeout(Duration::from_secs(20));
            assert!(
                matches!(result, Ok(Ok(()))),
                "the open did not finish while the guard was held: {result:?}"
            );
        });
        drop(maintenance);
    }

    /// Point 4: PostgreSQL refuses NUL in text (22021); a name or a source with one is an
    /// ordinary login failure, counted as any other.
    #[test]
    fn names_and_sources_with_nul_are_ordinary_failures() {
        let Some(db) = globo_testkit::postgres() else { return };
        let store = user_store(&db);
        store.register("dave", &secret(RIGHT)).unwrap();
        let unknown = store.verify("da\0ve", &secret(RIGHT));
        assert!(matches!(unknown, Err(AuthError::InvalidCredentials)), "{unknown:?}");
        for _ in 0..2 {
            let wrong = store.verify_from("dave", &secret(WRONG), Some("10.0.0.1\0evil"));
            assert!(matches!(wrong, Err(AuthError::InvalidCredentials)), "{wrong:?}");
        }
        assert!(store.verify_from("dave", &secret(RIGHT), Some("10.0.0.1\0evil")).is_ok());
        let ids =
            crate::throttle::Ids::new(store.backend().throttle().salt(false).unwrap().unwrap());
        let source = ids.source("10.0.0.1\0evil");
        assert!(source.id.starts_with("sha256:"), "{}", source.id);
        assert_eq!(store.backend().throttle().read(&source).unwrap().map(|r| r.failures), Some(2));
        let registered = store.register("nul\0name", &secret(RIGHT));
        assert!(matches!(&registered, Err(e) if e.is_invalid_input()), "{registered:?}");
        let deleted = store.delete("da\0ve");
        assert!(matches!(deleted, Err(AuthError::NoSuchUser { .. })), "{deleted:?}");
    }

    /// Point 5: the client has no TLS; a remote host needs `sslmode=disable` said explicitly.
    #[test]
    fn a_remote_host_without_explicit_sslmode_disable_is_refused() {
        let check = |text: &str| check_transport(&postgres::Config::from_str(text).unwrap(), "pg");
        for local in [
            "host=127.0.0.1",
            "host=127.8.9.10 port=5433",
            "host=localhost",
            "host=::1",
            "host=/var/run/postgresql",
            "host=localhost,127.0.0.1",
            "host=127.0.0.1 sslmode=disable",
            "host=db.example.com sslmode=disable",
            "postgres://u@10.1.2.3/db?sslmode=disable",
        ] {
            assert!(check(local).is_ok(), "{local}");
        }
        for remote in [
            "host=db.example.com",
            "host=10.1.2.3",
            "host=localhost,db.example.com",
            "host=127.0.0.1 hostaddr=10.1.2.3",
            "postgres://u@[2001:db8::1]/db",
            "host=127.0.0.1 sslmode=require",
            "host=db.example.com sslmode=require",
        ] {
            let refused = check(remote);
            assert!(
                matches!(&refused, Err(e @ AuthError::InvalidStoreSpec { store, .. })
                    if store == "pg" && e.kind() == crate::AuthErrorKind::Operational),
                "{remote}: {refused:?}"
            );
        }
        // Refused before any connection is tried (192.0.2.1 is TEST-NET-1).
        let mut config = postgres::Config::from_str("host=192.0.2.1 user=u").unwrap();
        config.connect_timeout(Duration::from_secs(1));
        let refused = PostgresBackend::connect(config, "postgres://u@192.0.2.1".into());
        assert!(matches!(refused, Err(AuthError::InvalidStoreSpec { .. })), "{refused:?}");
    }

    /// Point 6: at most `max_connections` clients are open; callers beyond wait for one, and
    /// past the connect timeout fail with a clear reason.
    #[test]
    fn a_backend_opens_at_most_its_maximum_of_connections() {
        let Some(db) = globo_testkit::postgres() else { return };
        let mut config = db.config();
        config.connect_timeout(Duration::from_secs(20));
        // The server's own count of this backend's sessions, not only the backend's counter
        // (review R2: a counting bug would pass a test of the counter alone).
        config.application_name("globo-bound-test");
        let backend = PostgresBackend::connect_with(config, db.location().to_owned(), 2).unwrap();
        let most = Mutex::new((0usize, 0i64));
        thread::scope(|s| {
            for _ in 0..8 {
                let (backend, most) = (&backend, &most);
                s.spawn(move || {
                    for _ in 0..20 {
                        let mut pooled = backend.client().unwrap();
                        let open = lock(&backend.shared.pool).open;
                        let sessions: i64 = pooled
                            .get()
                            .unwrap()
                            .query_one(
                                "SELECT count(*) FROM pg_stat_activity
                                 WHERE application_name = 'globo-bound-test'",
                                &[],
                            )
                            .unwrap()
                            .get(0);
                        let mut m = lock(most);
                        *m = (m.0.max(open), m.1.max(sessions));
                    }
                });
            }
        });
        let (most, sessions) = *lock(&most);
        assert!((1..=2).contains(&most), "{most} clients were open at once");
        assert!((1..=2).contains(&sessions), "the server saw {sessions} sessions at once");
        // Both busy: the next caller gives up after the connect timeout.
        let mut config = db.config();
        config.connect_timeout(Duration::from_secs(1));
        let backend = PostgresBackend::connect_with(config, db.location().to_owned(), 1).unwrap();
        let held = backend.lock().unwrap();
        let busy = backend.login_view("x");
        match &busy {
            Err(e @ AuthError::Database { operation: "connect", .. }) => {
                let reason = std::error::Error::source(e).map(ToString::to_string);
                assert_eq!(reason.as_deref(), Some("all 1 connections busy"));
            }
            other => panic!("{other:?}"),
        }
        drop(held);
        assert_eq!(backend.login_view("x").unwrap().lookup, Lookup::Missing);
    }

    /// Point 6: writers waiting for the writer lock hold no connection, so logins go on
    /// while a maintenance run holds it, with a pool of 2.
    #[test]
    fn waiting_writers_leave_the_connections_to_logins() {
        let Some(db) = globo_testkit::postgres() else { return };
        let mut config = db.config();
        config.connect_timeout(Duration::from_secs(1));
        let backend = PostgresBackend::connect_with(config, db.location().to_owned(), 2).unwrap();
        let held = backend.lock().unwrap();
        thread::scope(|s| {
            for _ in 0..3 {
                let backend = &backend;
                s.spawn(move || drop(backend.lock().unwrap()));
            }
            let mut tries = 0;
            while lock(&backend.shared.writer).waiting < 3 {
                tries += 1;
                assert!(tries < 2000, "the writers never waited");
                thread::sleep(Duration::from_millis(10));
            }
            for _ in 0..3 {
                assert_eq!(backend.login_view("x").unwrap().lookup, Lookup::Missing);
            }
            drop(held);
        });
        drop(backend.lock().unwrap());
    }
}
