//! The users and throttling records in a PostgreSQL database (feature `postgres`).
//!
//! - **Client.** The synchronous `postgres` crate (tokio-postgres underneath, no libpq), without
//!   TLS (`NoTls`: a server on loopback or a private network; the URL's password travels as a
//!   SCRAM exchange, never in clear). Each client runs a small runtime of its own and blocks
//!   its thread: **never call this backend from an async task** (it panics inside a tokio
//!   runtime, and would stall the worker anyway); the async API runs every store call on
//!   tokio's blocking pool.
//! - **Bounded waits.** Connecting gives up after [`CONNECT_TIMEOUT`] unless the caller's
//!   configuration sets its own; every session runs `SET statement_timeout` ([`STATEMENT_TIMEOUT`]),
//!   so no query, row lock or advisory lock wait hangs a request for ever.
//! - **Pool.** Clients are kept in a small pool (at most [`POOL_SIZE`] idle, more opened on
//!   demand); a client whose connection broke is dropped, never returned. A transaction is
//!   always finished (committed or rolled back) before its client goes back. Each pooled
//!   session keeps the statements of a login (the lookup and the throttling update)
//!   prepared, so a login sends each of them once (a statement given as text costs a
//!   second round trip to prepare it, each time).
//! - **Schema.** [`PostgresBackend::connect`] applies the missing migrations of `schema.rs` in
//!   one transaction under `pg_advisory_xact_lock(POSTGRES_LOCK_KEY)`, so servers opening a new
//!   database at once apply each exactly once; a database migrated by a newer globo is refused
//!   ([`AuthError::StoreSchema`]).
//! - **Writers** (design decision 2). [`UsersBackend::lock`] takes a client of its own and holds
//!   the session lock `pg_advisory_lock(POSTGRES_LOCK_KEY)` on it while the guard lives (across
//!   several transactions for a maintenance run); each transaction also takes
//!   `pg_advisory_xact_lock` (re-entrant on that session). The guard unlocks when dropped; if
//!   unlocking fails its client is closed, which releases the lock on the server.
//! - **Throttling.** An update locks its rows in one transaction: for each key in a fixed
//!   order (scope, id), `INSERT ... ON CONFLICT DO NOTHING` a placeholder (0 failures, read as
//!   absent) then `SELECT ... FOR UPDATE`, so two processes updating the same keys (a new key
//!   included) run one after the other and never deadlock; the records are written back (or
//!   deleted) with their `expires_ms`, from `throttle::forget_after_ms`. Rows past it are
//!   deleted in an update at most once per [`PRUNE_INTERVAL`] per backend. There is no bound on
//!   the number of rows.
//!
//! Every query is parameterised (`$1`). Errors are [`AuthError::Database`] with a fixed
//! operation name; the source is the server's SQLSTATE and message, or the client's error,
//! never the server's `DETAIL` (which can quote a row, and so a record).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postgres::error::SqlState;
use postgres::{Client, GenericClient, NoTls, Statement, Transaction};

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
const PRUNE_SQL: &str = "DELETE FROM globo_throttle WHERE expires_ms < $1";
const PLACEHOLDER_SQL: &str =
    "INSERT INTO globo_throttle (scope, id, failures, last_ms, expires_ms)
                 VALUES ($1, $2, 0, 0, NULL) ON CONFLICT (scope, id) DO NOTHING";
const LOCK_ROW_SQL: &str = "SELECT failures, last_ms FROM globo_throttle
                     WHERE scope = $1 AND id = $2 FOR UPDATE";
const UPDATE_ROW_SQL: &str =
    "UPDATE globo_throttle SET failures = $3, last_ms = $4, expires_ms = $5
                             WHERE scope = $1 AND id = $2";
const DELETE_ROW_SQL: &str = "DELETE FROM globo_throttle WHERE scope = $1 AND id = $2";
const DELETE_PLACEHOLDER_SQL: &str =
    "DELETE FROM globo_throttle WHERE scope = $1 AND id = $2 AND failures = 0";

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

/// What every handle of one backend shares (the pool returns clients to it).
struct Shared {
    config: postgres::Config,
    location: String,
    pool: Mutex<Vec<Session>>,
    typical: Mutex<Option<(Instant, Option<String>)>>,
    last_prune: Mutex<Option<Instant>>,
    salt: Mutex<Option<Vec<u8>>>,
}

impl Shared {
    /// A new session with the bounded statement time.
    fn open_client(&self) -> Result<Client, AuthError> {
        let mut client = self.config.connect(NoTls).map_err(failed(&self.location, "connect"))?;
        client.batch_execute(STATEMENT_TIMEOUT).map_err(failed(&self.location, "connect"))?;
        Ok(client)
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
    pub(crate) fn connect(
        mut config: postgres::Config,
        location: String,
    ) -> Result<Self, AuthError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let shared = Arc::new(Shared {
            config,
            location,
            pool: Mutex::new(Vec::new()),
            typical: Mutex::new(None),
            last_prune: Mutex::new(None),
            salt: Mutex::new(None),
        });
        let mut client = shared.open_client()?;
        migrate(&mut client, &shared.location)?;
        lock(&shared.pool).push(Session::new(client));
        Ok(Self { shared })
    }

    /// A client from the pool, or a new one.
    fn client(&self) -> Result<Pooled, AuthError> {
        Pooled::take(&self.shared)
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

/// Applies the missing migrations in one transaction under the advisory transaction lock.
fn migrate(client: &mut Client, location: &str) -> Result<(), AuthError> {
    let fail = failed(location, "migrate");
    let mut tx = client.transaction().map_err(&fail)?;
    tx.execute(LOCK_XACT_SQL, &[&schema::POSTGRES_LOCK_KEY]).map_err(&fail)?;
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

/// A client and the statements prepared on its session (they live as long as it does).
struct Session {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Session {
    fn new(client: Client) -> Self {
        Self { client, statements: HashMap::new() }
    }
}

/// A pooled client, returned to the pool when dropped (unless its connection broke or the
/// pool is full).
struct Pooled {
    session: Option<Session>,
    shared: Arc<Shared>,
}

impl Pooled {
    fn take(shared: &Arc<Shared>) -> Result<Self, AuthError> {
        let idle = {
            let mut pool = lock(&shared.pool);
            // A connection the server closed while idle is noticed here, or at its next query.
            pool.retain(|session| !session.client.is_closed());
            pool.pop()
        };
        let session = match idle {
            Some(session) => session,
            None => Session::new(shared.open_client()?),
        };
        Ok(Self { session: Some(session), shared: Arc::clone(shared) })
    }

    fn session(&mut self) -> Result<&mut Session, AuthError> {
        // Always Some until drop: `take` fills it.
        self.session.as_mut().ok_or_else(|| {
            invalid(&self.shared.location, "connect", "the pooled connection is gone")
        })
    }

    fn get(&mut self) -> Result<&mut Client, AuthError> {
        Ok(&mut self.session()?.client)
    }

    /// `sql` prepared on this session: prepared at its first use, then reused (one round trip
    /// per use instead of two). `operation` names a failure.
    fn prepared(
        &mut self,
        sql: &'static str,
        operation: &'static str,
    ) -> Result<Statement, AuthError> {
        let location = Arc::clone(&self.shared);
        let session = self.session()?;
        if let Some(statement) = session.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement =
            session.client.prepare(sql).map_err(failed(&location.location, operation))?;
        session.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Drops the client instead of returning it (a session left in an unknown state).
    fn discard(&mut self) {
        self.session = None;
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(session) = self.session.take()
            && !session.client.is_closed()
        {
            let mut pool = lock(&self.shared.pool);
            if pool.len() < POOL_SIZE {
                pool.push(session);
            }
        }
    }
}

/// The user `username` designates; `query` is [`LOOKUP_SQL`], as text or prepared.
fn lookup_in<Q: postgres::ToStatement + ?Sized>(
    client: &mut impl GenericClient,
    query: &Q,
    username: &str,
    location: &str,
) -> Result<Lookup, AuthError> {
    let key = comparison_key(username);
    let fail = failed(location, "read users");
    let row = client.query_opt(query, &[&key.as_ref()]).map_err(&fail)?;
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
        let mut pooled = self.client()?;
        let query = pooled.prepared(LOOKUP_SQL, "read users")?;
        let client = pooled.get()?;
        let lookup = lookup_in(client, &query, username, &self.shared.location)?;
        let typical = self.typical(client)?;
        Ok(LoginView { lookup, typical })
    }

    fn all(&self) -> Result<Vec<(String, Entry)>, AuthError> {
        let mut pooled = self.client()?;
        all_in(pooled.get()?, &self.shared.location)
    }

    fn lock(&self) -> Result<Box<dyn LockedUsers>, AuthError> {
        let mut pooled = self.client()?;
        let client = pooled.get()?;
        // Waits for another guard (any process) to be dropped, at most the statement timeout.
        client
            .execute("SELECT pg_advisory_lock($1)", &[&schema::POSTGRES_LOCK_KEY])
            .map_err(failed(&self.shared.location, "write users"))?;
        Ok(Box::new(LockedPostgres { pooled }))
    }

    fn throttle(&self) -> &dyn ThrottleBackend {
        self
    }
}

/// The writer lock: a session holding `pg_advisory_lock(POSTGRES_LOCK_KEY)`.
struct LockedPostgres {
    pooled: Pooled,
}

impl Drop for LockedPostgres {
    fn drop(&mut self) {
        let unlocked = match self.pooled.session.as_mut() {
            Some(session) => session
                .client
                .query_one("SELECT pg_advisory_unlock($1)", &[&schema::POSTGRES_LOCK_KEY])
                .and_then(|row| row.try_get::<_, bool>(0))
                .unwrap_or(false),
            None => false,
        };
        if !unlocked {
            // Closing the session releases every lock it holds.
            self.pooled.discard();
        }
    }
}

impl LockedUsers for LockedPostgres {
    fn transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn UsersTxn) -> Result<bool, AuthError>,
    ) -> Result<(), AuthError> {
        let shared = Arc::clone(&self.pooled.shared);
        let location = shared.location.as_str();
        let fail = failed(location, "write users");
        let client = self.pooled.get()?;
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
        lookup_in(self.tx, LOOKUP_SQL, username, self.location)
    }

    fn key_taken(&mut self, key: &str) -> Result<bool, AuthError> {
        let fail = failed(self.location, "read users");
        self.tx
            .query_opt("SELECT 1 FROM globo_users WHERE name_key = $1", &[&key])
            .map(|row| row.is_some())
            .map_err(fail)
    }

    fn get(&mut self, name: &str) -> Result<Option<Entry>, AuthError> {
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

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
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
        match unhex(&text) {
            Some(salt) if salt.len() == 32 => Ok(Some(salt)),
            _ => Err(invalid(
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
        statements: &ThrottleStatements,
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
            tx.execute(&statements.placeholder, &[&scope, &key.id])
                .map_err(failed(location, "write throttling"))?;
            let row = tx
                .query_one(&statements.lock_row, &[&scope, &key.id])
                .map_err(failed(location, "read throttling"))?;
            records[index] = throttle_row(&row, location)?;
        }
        Ok(records)
    }
}

/// The statements of a throttling update, prepared on the session that runs it.
struct ThrottleStatements {
    prune: Statement,
    placeholder: Statement,
    lock_row: Statement,
    update_row: Statement,
    delete_row: Statement,
    delete_placeholder: Statement,
}

impl ThrottleStatements {
    fn prepare(pooled: &mut Pooled) -> Result<Self, AuthError> {
        let mut get = |sql| pooled.prepared(sql, "write throttling");
        Ok(Self {
            prune: get(PRUNE_SQL)?,
            placeholder: get(PLACEHOLDER_SQL)?,
            lock_row: get(LOCK_ROW_SQL)?,
            update_row: get(UPDATE_ROW_SQL)?,
            delete_row: get(DELETE_ROW_SQL)?,
            delete_placeholder: get(DELETE_PLACEHOLDER_SQL)?,
        })
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
        let mut pooled = self.client()?;
        let client = pooled.get()?;
        let mut salt = self.read_salt(client)?;
        if salt.is_none() && create {
            let mut fresh = [0u8; 32];
            getrandom::fill(&mut fresh).map_err(|e| AuthError::Random { source: Box::new(e) })?;
            // Another process may insert first: its salt is kept, never replaced.
            client
                .execute(
                    "INSERT INTO globo_meta (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING",
                    &[&schema::THROTTLE_SALT, &hex(&fresh)],
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
        let location = self.shared.location.as_str();
        let write = failed(location, "write throttling");
        let mut pooled = self.client()?;
        let statements = ThrottleStatements::prepare(&mut pooled)?;
        let client = pooled.get()?;
        // Rolled back when dropped without commit.
        let mut tx = client.transaction().map_err(&write)?;
        let prune = lock(&self.shared.last_prune).is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL);
        if prune {
            tx.execute(&statements.prune, &[&to_sql_ms(context.now_ms)]).map_err(&write)?;
        }
        let mut records = self.lock_rows(&mut tx, &statements, keys)?;
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
                            &statements.update_row,
                            &[&scope, &key.id, &failures, &to_sql_ms(record.last_ms), &expires],
                        )
                        .map_err(&write)?;
                    }
                    None => {
                        tx.execute(&statements.delete_row, &[&scope, &key.id]).map_err(&write)?;
                    }
                }
            }
        } else if prune {
            // Nothing to write, but keep the expired rows' deletion: remove only the
            // placeholders this update inserted.
            for (key, record) in keys.iter().zip(&records) {
                if record.is_none() {
                    tx.execute(&statements.delete_placeholder, &[&scope_name(key.scope), &key.id])
                        .map_err(&write)?;
                }
            }
        } else {
            return tx.rollback().map_err(&write);
        }
        tx.commit().map_err(&write)?;
        if prune {
            *lock(&self.shared.last_prune) = Some(Instant::now());
        }
        Ok(())
    }

    fn read(&self, key: &ThrottleKey) -> Result<Option<ThrottleRecord>, AuthError> {
        let location = self.shared.location.as_str();
        let mut pooled = self.client()?;
        let row = pooled
            .get()?
            .query_opt(
                "SELECT failures, last_ms FROM globo_throttle WHERE scope = $1 AND id = $2",
                &[&scope_name(key.scope), &key.id],
            )
            .map_err(failed(location, "read throttling"))?;
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

    /// A login's statements are prepared once per session and reused: a statement sent as
    /// text costs a second round trip each time (prepare, then execute).
    #[test]
    fn a_sessions_login_statements_are_prepared_once_and_reused() {
        let Some(db) = globo_testkit::postgres() else { return };
        let backend = open(&db);
        insert(&backend, "alice", PLAIN).unwrap();
        let policy = ThrottlePolicy::default();
        for at in 0..3 {
            assert!(matches!(backend.login_view("alice").unwrap().lookup, Lookup::Found { .. }));
            fail(&backend, &[key(KeyScope::Account, "a1")], &policy, wall_ms() + at);
        }
        // Calls one after the other use the same pooled session: look into it.
        let mut pooled = backend.client().unwrap();
        let session = pooled.get().unwrap();
        for statement in [LOOKUP_SQL, PLACEHOLDER_SQL, LOCK_ROW_SQL, UPDATE_ROW_SQL] {
            let prepared = session
                .query_one(
                    "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1",
                    &[&statement],
                )
                .unwrap()
                .get::<_, i64>(0);
            assert_eq!(prepared, 1, "{statement}");
        }
        drop(pooled);
        assert_eq!(
            backend.read(&key(KeyScope::Account, "a1")).unwrap().map(|r| r.failures),
            Some(3)
        );
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
}
