//! Throttling of online guessing (NIST SP 800-63B-4 §3.2.2): per account and per source,
//! growing delays after a few failures, then a lock.
//!
//! The counts live in a state file beside the users file (`<users file>.throttle`), so they
//! survive restarts and every process using the same users file shares them. Each attempt is
//! reserved under the state file's lock before the users file is read or any hashing is
//! done: a refused attempt costs a lock, a small read and no Argon2 run, and an accepted one
//! is counted as a failure at once (a success then resets the account), so parallel attempts
//! cannot slip past a limit.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use crate::AuthError;
use crate::username::comparison_key;

/// How many consecutive failures a policy may allow before the lock: NIST SP 800-63B-4
/// §3.2.2 ("SHALL ... no more than 100 consecutive failed authentication attempts on a
/// single account").
pub const MAX_LOCK_AFTER: u32 = 100;

/// The most records (accounts and sources together) the state file keeps; when a write
/// would exceed it, the records idle longest are dropped first.
pub const MAX_THROTTLE_ENTRIES: usize = 100_000;

/// The largest state file read, in bytes (32 MiB: 100,000 records take about 10 MiB).
const MAX_STATE_LEN: u64 = 32 * 1024 * 1024;

/// The state file's format version.
const STATE_VERSION: u64 = 1;

/// What [`UserStore`](crate::UserStore) allows before it delays and then locks logins.
///
/// Failures are counted per account (consecutive: a success resets them) and per source
/// (the key the caller gives to [`verify_from`](crate::UserStore::verify_from), such as a
/// client address). An attempt is refused when its account **or** its source is delayed or
/// locked (django-axes issue 608: counting only the pair lets a botnet spread guesses over
/// accounts, or one guesser spread over sources).
///
/// After `free_failures` failures, each further attempt waits `base_delay` after the last
/// failure, doubling per further failure up to `max_delay`; at `lock_after` failures the
/// account is locked for `lock_duration` (`None`: until an operator unlocks it). The defaults
/// and why:
///
/// | setting | default | why |
/// | --- | --- | --- |
/// | `free_failures` | 5 | typos and a forgotten caps lock never wait |
/// | `base_delay` | 1 s | unnoticeable to a person, it halves a script's rate at once |
/// | `max_delay` | 15 min | reached after 15 failures; a person retries later anyway |
/// | `lock_after` | 100 | NIST SP 800-63B-4 §3.2.2's maximum; the delays already make reaching it take about 21 hours |
/// | `lock_duration` | 24 h | a lock that ends by itself cannot be turned into a lasting denial of service against a user; 100 guesses a day is what NIST accepts |
/// | `source_free_failures` | 20 | a shared address (an office's NAT) has more typing users than one account |
/// | `source_lock_after` | 100 | the account's limit, for guesses spread over accounts |
/// | `source_lock_duration` | 1 h | addresses change hands; an hour stops a burst without shutting out the next user of it for long |
/// | `source_window` | 1 h | a source's record is forgotten an hour after its last failure, so shared addresses do not accumulate |
///
/// A success resets the account's count only, never the source's: a guesser holding one
/// valid account must not clear its source by logging into it.
///
/// ```
/// use std::time::Duration;
/// use globo_auth::ThrottlePolicy;
///
/// # fn main() -> Result<(), globo_auth::AuthError> {
/// let policy = ThrottlePolicy::default()
///     .free_failures(3)
///     .lock_after(50)?
///     .lock_duration(None); // until an operator unlocks the account
/// assert!(ThrottlePolicy::default().lock_after(101).is_err()); // over NIST's 100
/// # let _ = policy; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThrottlePolicy {
    free_failures: u32,
    base_delay: Duration,
    max_delay: Duration,
    lock_after: u32,
    lock_duration: Option<Duration>,
    source_free_failures: u32,
    source_lock_after: u32,
    source_lock_duration: Option<Duration>,
    source_window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            lock_after: MAX_LOCK_AFTER,
            lock_duration: Some(Duration::from_secs(24 * 60 * 60)),
            source_free_failures: 20,
            source_lock_after: MAX_LOCK_AFTER,
            source_lock_duration: Some(Duration::from_secs(60 * 60)),
            source_window: Duration::from_secs(60 * 60),
        }
    }
}

/// `n` if it is a lock limit NIST allows (1 to [`MAX_LOCK_AFTER`]).
fn checked_limit(n: u32) -> Result<u32, AuthError> {
    match n {
        0 => Err(AuthError::InvalidThrottlePolicy { reason: "the lock limit must be at least 1" }),
        n if n > MAX_LOCK_AFTER => Err(AuthError::InvalidThrottlePolicy {
            reason: "the lock limit must be at most 100 failures (NIST SP 800-63B-4)",
        }),
        n => Ok(n),
    }
}

impl ThrottlePolicy {
    /// Failures of an account that cost no delay.
    #[must_use]
    pub fn free_failures(mut self, n: u32) -> Self {
        self.free_failures = n;
        self
    }

    /// The first delay (account and source); it doubles with each further failure.
    #[must_use]
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest delay (account and source).
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Consecutive failures at which the account is locked: 1 to [`MAX_LOCK_AFTER`], else
    /// [`AuthError::InvalidThrottlePolicy`].
    pub fn lock_after(mut self, n: u32) -> Result<Self, AuthError> {
        self.lock_after = checked_limit(n)?;
        Ok(self)
    }

    /// How long an account lock lasts, counted from the failure that set it; `None`: until
    /// [`UserStore::unlock`](crate::UserStore::unlock).
    #[must_use]
    pub fn lock_duration(mut self, duration: Option<Duration>) -> Self {
        self.lock_duration = duration;
        self
    }

    /// Failures from one source that cost no delay.
    #[must_use]
    pub fn source_free_failures(mut self, n: u32) -> Self {
        self.source_free_failures = n;
        self
    }

    /// Failures at which a source is locked: 1 to [`MAX_LOCK_AFTER`], else
    /// [`AuthError::InvalidThrottlePolicy`].
    pub fn source_lock_after(mut self, n: u32) -> Result<Self, AuthError> {
        self.source_lock_after = checked_limit(n)?;
        Ok(self)
    }

    /// How long a source lock lasts; `None`: until
    /// [`UserStore::unlock_source`](crate::UserStore::unlock_source).
    #[must_use]
    pub fn source_lock_duration(mut self, duration: Option<Duration>) -> Self {
        self.source_lock_duration = duration;
        self
    }

    /// How long after its last failure an unlocked source's record is forgotten.
    #[must_use]
    pub fn source_window(mut self, window: Duration) -> Self {
        self.source_window = window;
        self
    }

    fn account_rule(&self) -> Rule {
        Rule {
            free: self.free_failures,
            lock_after: self.lock_after,
            lock_duration: self.lock_duration,
            base: self.base_delay,
            max: self.max_delay,
            window: None,
        }
    }

    fn source_rule(&self) -> Rule {
        Rule {
            free: self.source_free_failures,
            lock_after: self.source_lock_after,
            lock_duration: self.source_lock_duration,
            base: self.base_delay,
            max: self.max_delay,
            window: Some(self.source_window),
        }
    }
}

/// What was throttled: the account named, or the source the attempt came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThrottleScope {
    /// The account (known or not: unknown names are counted alike).
    Account,
    /// The source given to [`verify_from`](crate::UserStore::verify_from).
    Source,
}

impl fmt::Display for ThrottleScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Account => "account",
            Self::Source => "source",
        })
    }
}

/// Where an account or source stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThrottleState {
    /// Attempts are accepted.
    Open,
    /// Attempts are refused until the time given.
    Delayed {
        /// When the next attempt is accepted.
        until: SystemTime,
    },
    /// Attempts are refused until the lock ends.
    Locked {
        /// When the lock ends; `None`: when an operator unlocks it.
        until: Option<SystemTime>,
    },
}

/// An account's throttling record, from [`UserStore::throttle_status`](crate::UserStore::throttle_status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThrottleStatus {
    /// Consecutive failures counted (attempts in progress included).
    pub failures: u32,
    /// Whether attempts are accepted now.
    pub state: ThrottleState,
}

/// The time source of a store: the system clock, or a test's.
#[derive(Clone)]
pub(crate) struct Clock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl Clock {
    pub(crate) fn new(now: Arc<dyn Fn() -> SystemTime + Send + Sync>) -> Self {
        Self(now)
    }

    pub(crate) fn now(&self) -> SystemTime {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self(Arc::new(SystemTime::now))
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// The counting rule of one scope.
struct Rule {
    free: u32,
    lock_after: u32,
    lock_duration: Option<Duration>,
    base: Duration,
    max: Duration,
    /// After how long without failures a record is forgotten (sources only).
    window: Option<Duration>,
}

/// Milliseconds since the Unix epoch (0 before it).
fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn time_of(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One key's consecutive failures and the time of the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    failures: u32,
    last_ms: u64,
}

/// Where a record stands at `now_ms` under `rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Open,
    Delayed(u64),
    Locked(Option<u64>),
    /// Its lock or window is over: the record is forgotten.
    Expired,
}

impl Rule {
    fn standing(&self, record: Record, now_ms: u64) -> Standing {
        if record.failures >= self.lock_after {
            return match self.lock_duration {
                None => Standing::Locked(None),
                Some(d) => {
                    let until = record.last_ms.saturating_add(duration_ms(d));
                    if now_ms < until { Standing::Locked(Some(until)) } else { Standing::Expired }
                }
            };
        }
        let mut standing = Standing::Open;
        if record.failures > 0 && record.failures >= self.free {
            let doublings = record.failures - self.free;
            let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
            let delay = duration_ms(self.base).saturating_mul(factor).min(duration_ms(self.max));
            let until = record.last_ms.saturating_add(delay);
            if now_ms < until {
                standing = Standing::Delayed(until);
            }
        }
        if let Some(window) = self.window
            && standing == Standing::Open
            && now_ms >= record.last_ms.saturating_add(duration_ms(window))
        {
            return Standing::Expired;
        }
        standing
    }

    /// The record after one more failure at `now_ms` (a forgotten one starts again).
    fn fail(&self, record: Option<Record>, now_ms: u64) -> Record {
        let failures = match record {
            Some(r) if self.standing(r, now_ms) != Standing::Expired => r.failures,
            _ => 0,
        };
        Record { failures: failures.saturating_add(1), last_ms: now_ms }
    }
}

/// The error for an attempt refused in `scope`.
fn refusal(scope: ThrottleScope, standing: Standing) -> Option<AuthError> {
    match standing {
        Standing::Open | Standing::Expired => None,
        Standing::Delayed(until) => {
            Some(AuthError::Throttled { scope, until: Some(time_of(until)), locked: false })
        }
        Standing::Locked(until) => {
            Some(AuthError::Throttled { scope, until: until.map(time_of), locked: true })
        }
    }
}

/// What a login needs to identify its account in the state file: the name's comparison key
/// (so every spelling of a name counts together), or for a name longer than
/// [`MAX_LOGIN_USERNAME_BYTES`](crate::MAX_LOGIN_USERNAME_BYTES), which is never normalised,
/// a hash of its bytes.
pub(crate) fn account_material(username: &str) -> Vec<u8> {
    if username.len() > crate::MAX_LOGIN_USERNAME_BYTES {
        let mut material = b"h:".to_vec();
        material.extend_from_slice(&Sha256::digest(username.as_bytes()));
        material
    } else {
        let mut material = b"k:".to_vec();
        material.extend_from_slice(comparison_key(username).as_bytes());
        material
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
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

/// The state file's content.
#[derive(Debug)]
struct State {
    salt: Vec<u8>,
    accounts: HashMap<String, Record>,
    sources: HashMap<String, Record>,
}

impl State {
    fn fresh() -> Result<Self, AuthError> {
        let mut salt = vec![0u8; 32];
        getrandom::fill(&mut salt).map_err(|e| AuthError::Random { source: Box::new(e) })?;
        Ok(Self { salt, accounts: HashMap::new(), sources: HashMap::new() })
    }

    /// The key an account is stored under: hex SHA-256 of the file's salt and the name's
    /// material, so a password typed into the name field is never kept in the clear.
    fn account_id(&self, material: &[u8]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(&self.salt);
        hasher.update(material);
        hex(&hasher.finalize())
    }

    /// Drops the records whose lock or window is over, then the ones idle longest beyond
    /// [`MAX_THROTTLE_ENTRIES`].
    fn prune(&mut self, policy: &ThrottlePolicy, now_ms: u64) {
        let (account, source) = (policy.account_rule(), policy.source_rule());
        self.accounts.retain(|_, r| account.standing(*r, now_ms) != Standing::Expired);
        self.sources.retain(|_, r| source.standing(*r, now_ms) != Standing::Expired);
        let total = self.accounts.len() + self.sources.len();
        if total <= MAX_THROTTLE_ENTRIES {
            return;
        }
        let mut ages: Vec<u64> =
            self.accounts.values().chain(self.sources.values()).map(|r| r.last_ms).collect();
        ages.sort_unstable();
        let mut excess = total - MAX_THROTTLE_ENTRIES;
        let cutoff = ages[excess - 1];
        // Strictly older than the cutoff first, then as many at the cutoff as still needed.
        for map in [&mut self.accounts, &mut self.sources] {
            map.retain(|_, r| {
                if r.last_ms < cutoff {
                    excess -= 1;
                    false
                } else {
                    true
                }
            });
        }
        for map in [&mut self.accounts, &mut self.sources] {
            map.retain(|_, r| {
                if excess > 0 && r.last_ms == cutoff {
                    excess -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }

    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let (accounts, sources) = (sorted_records(&self.accounts), sorted_records(&self.sources));
        let file = StateFileOut {
            version: STATE_VERSION,
            salt: hex(&self.salt),
            accounts: SortedRecords(&accounts),
            sources: SortedRecords(&sources),
        };
        let mut json = serde_json::to_vec(&file)?;
        json.push(b'\n');
        Ok(json)
    }

    fn parse(bytes: &[u8]) -> Result<Self, (&'static str, Option<serde_json::Error>)> {
        let file: StateFileIn = serde_json::from_slice(bytes)
            .map_err(|e| ("it is not the state file's JSON format", Some(e)))?;
        if file.version != STATE_VERSION {
            return Err(("its version is not 1", None));
        }
        let salt = unhex(&file.salt)
            .filter(|salt| salt.len() == 32)
            .ok_or(("its salt is not 32 bytes of hex", None))?;
        let records = |map: HashMap<String, (u32, u64)>| {
            map.into_iter()
                .map(|(k, (failures, last_ms))| (k, Record { failures, last_ms }))
                .collect()
        };
        Ok(Self { salt, accounts: records(file.accounts), sources: records(file.sources) })
    }
}

/// A map's records as (key, (failures, last failure)), sorted by key.
fn sorted_records(map: &HashMap<String, Record>) -> Vec<(&str, (u32, u64))> {
    let mut sorted: Vec<(&str, (u32, u64))> =
        map.iter().map(|(k, r)| (k.as_str(), (r.failures, r.last_ms))).collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    sorted
}

/// The state file as read: every field required, nothing else allowed.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFileIn {
    version: u64,
    salt: String,
    accounts: HashMap<String, (u32, u64)>,
    sources: HashMap<String, (u32, u64)>,
}

/// The state file as written (records sorted, so equal states are equal files).
#[derive(serde::Serialize)]
struct StateFileOut<'a> {
    version: u64,
    salt: String,
    accounts: SortedRecords<'a>,
    sources: SortedRecords<'a>,
}

/// Records written as a JSON object `{"key": [failures, last_failure_ms], ...}`.
struct SortedRecords<'a>(&'a [(&'a str, (u32, u64))]);

impl serde::Serialize for SortedRecords<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The state file of the users file at `users`: `<users>.throttle` beside it.
pub(crate) fn state_path(users: &Path) -> PathBuf {
    let mut name = users.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".throttle");
    users.with_file_name(name)
}

/// An attempt counted by [`reserve`]: what the outcome needs to settle it.
#[derive(Debug)]
pub(crate) struct Reservation {
    account_id: String,
    /// The account's failures before this attempt.
    pub(crate) previous: u32,
    /// The account's failures with this attempt.
    pub(crate) account_failures: u32,
    /// Whether this attempt, if it fails, locks the account (or the source).
    pub(crate) locks_account: bool,
    pub(crate) source_failures: Option<u32>,
    pub(crate) locks_source: bool,
}

/// The state file read under its lock (a fresh state when there is none).
fn read_state(path: &Path) -> Result<State, AuthError> {
    let unusable = |reason, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
        AuthError::UnusableThrottleState { path: path.to_owned(), reason, source }
    };
    match globo_fs::read_small_regular(path, MAX_STATE_LEN) {
        Ok(None) => State::fresh(),
        Ok(Some((bytes, _))) => State::parse(&bytes)
            .map_err(|(reason, e)| unusable(reason, e.map(|e| Box::new(e) as Box<_>))),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            Err(unusable("it is larger than 32 MiB", None))
        }
        Err(e) => Err(AuthError::ThrottleStateAccess { source: e }),
    }
}

fn lock(path: &Path) -> Result<globo_fs::ExclusiveLock, AuthError> {
    globo_fs::ExclusiveLock::acquire(path)
        .map_err(|source| AuthError::ThrottleStateAccess { source })
}

fn write_state(path: &Path, state: &State) -> Result<(), AuthError> {
    // Serialising strings and numbers cannot fail; report it as a write error if it does.
    let json =
        state.to_json().map_err(|e| globo_fs::FsError::new("serialise", path, io::Error::other(e)));
    json.and_then(|json| globo_fs::write_atomic(path, &json))
        .map_err(|source| AuthError::ThrottleStateAccess { source })
}

/// Checks the account (`material`, see [`account_material`]) and the source; refuses the
/// attempt (counting nothing) when either is delayed or locked, else counts it as a failure
/// of both and returns the reservation.
pub(crate) fn reserve(
    path: &Path,
    policy: &ThrottlePolicy,
    material: &[u8],
    source: Option<&str>,
    now: SystemTime,
) -> Result<Reservation, AuthError> {
    let now_ms = millis(now);
    let (account, source_rule) = (policy.account_rule(), policy.source_rule());
    let _lock = lock(path)?;
    let mut state = read_state(path)?;
    let account_id = state.account_id(material);
    let record = state.accounts.get(&account_id).copied();
    let source_record = source.and_then(|s| state.sources.get(s).copied());
    let account_standing = record.map_or(Standing::Open, |r| account.standing(r, now_ms));
    let source_standing = source_record.map_or(Standing::Open, |r| source_rule.standing(r, now_ms));
    // A lock says more than a delay, and the account more than the source.
    let refused = match (account_standing, source_standing) {
        (Standing::Locked(_), _) => refusal(ThrottleScope::Account, account_standing),
        (_, Standing::Locked(_)) => refusal(ThrottleScope::Source, source_standing),
        _ => refusal(ThrottleScope::Account, account_standing)
            .or_else(|| refusal(ThrottleScope::Source, source_standing)),
    };
    if let Some(error) = refused {
        return Err(error);
    }
    let previous = match account_standing {
        Standing::Expired => 0,
        _ => record.map_or(0, |r| r.failures),
    };
    let counted = account.fail(record, now_ms);
    state.accounts.insert(account_id.clone(), counted);
    let mut source_failures = None;
    if let Some(source) = source {
        let counted = source_rule.fail(source_record, now_ms);
        source_failures = Some(counted.failures);
        state.sources.insert(source.to_owned(), counted);
    }
    state.prune(policy, now_ms);
    write_state(path, &state)?;
    Ok(Reservation {
        account_id,
        previous,
        account_failures: counted.failures,
        locks_account: counted.failures == policy.lock_after,
        source_failures,
        locks_source: source_failures == Some(policy.source_lock_after),
    })
}

/// A success: the account's record is cleared; the source keeps its failures, less the one
/// this attempt was counted as (a success is not a failure, but it must not clear the
/// source: a guesser holding one valid account would clear its own source with it).
pub(crate) fn succeed(
    path: &Path,
    reservation: &Reservation,
    source: Option<&str>,
) -> Result<(), AuthError> {
    let _lock = lock(path)?;
    let mut state = read_state(path)?;
    let mut changed = state.accounts.remove(&reservation.account_id).is_some();
    if let Some(source) = source
        && reservation.source_failures.is_some()
        && let Some(record) = state.sources.get_mut(source)
    {
        record.failures = record.failures.saturating_sub(1);
        if record.failures == 0 {
            state.sources.remove(source);
        }
        changed = true;
    }
    if changed {
        write_state(path, &state)?;
    }
    Ok(())
}

/// Clears the account's record (`material`) or, with `source`, that source's; returns
/// whether there was one. Writes nothing when there was none.
pub(crate) fn clear(
    path: &Path,
    material: Option<&[u8]>,
    source: Option<&str>,
) -> Result<bool, AuthError> {
    let _lock = lock(path)?;
    let mut state = read_state(path)?;
    let mut removed = false;
    if let Some(material) = material {
        let id = state.account_id(material);
        removed |= state.accounts.remove(&id).is_some();
    }
    if let Some(source) = source {
        removed |= state.sources.remove(source).is_some();
    }
    if removed {
        write_state(path, &state)?;
    }
    Ok(removed)
}

/// The account's record and standing now, read without the lock (a snapshot).
pub(crate) fn status(
    path: &Path,
    policy: &ThrottlePolicy,
    material: &[u8],
    now: SystemTime,
) -> Result<ThrottleStatus, AuthError> {
    let now_ms = millis(now);
    let state = read_state(path)?;
    let record = state.accounts.get(&state.account_id(material)).copied();
    let open = ThrottleStatus { failures: 0, state: ThrottleState::Open };
    let Some(record) = record else { return Ok(open) };
    Ok(match policy.account_rule().standing(record, now_ms) {
        Standing::Expired => open,
        Standing::Open => ThrottleStatus { failures: record.failures, state: ThrottleState::Open },
        Standing::Delayed(until) => ThrottleStatus {
            failures: record.failures,
            state: ThrottleState::Delayed { until: time_of(until) },
        },
        Standing::Locked(until) => ThrottleStatus {
            failures: record.failures,
            state: ThrottleState::Locked { until: until.map(time_of) },
        },
    })
}

/// `time` as `YYYY-MM-DD HH:MM:SS UTC`, for messages.
pub(crate) fn format_utc(time: SystemTime) -> String {
    let secs = millis(time).div_ceil(1000);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The message of [`AuthError::Throttled`]: neutral, the same for every name.
pub(crate) fn throttled_message(
    scope: ThrottleScope,
    until: Option<SystemTime>,
    locked: bool,
) -> String {
    let whose = match scope {
        ThrottleScope::Account => "for this account",
        ThrottleScope::Source => "from this source",
    };
    match (locked, until) {
        (true, None) => {
            format!("too many failed login attempts {whose}: locked until an operator unlocks it")
        }
        (true, Some(until)) => {
            format!("too many failed login attempts {whose}: locked until {}", format_utc(until))
        }
        (false, until) => format!(
            "too many failed login attempts {whose}: try again after {}",
            until.map_or_else(|| "a delay".to_owned(), format_utc)
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(secs: u64) -> u64 {
        secs * 1000
    }

    #[test]
    fn delays_double_from_the_first_failure_past_the_free_ones_up_to_the_maximum() {
        let rule = ThrottlePolicy::default().account_rule();
        let delay = |failures| match rule.standing(Record { failures, last_ms: at(1000) }, at(1000))
        {
            Standing::Delayed(until) => (until - at(1000)) / 1000,
            Standing::Open => 0,
            other => panic!("{other:?}"),
        };
        let delays: Vec<u64> = (0..=20).map(delay).collect();
        assert_eq!(
            delays,
            [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900, 900, 900]
        );
        assert_eq!(delay(99), 900);
        let locked = rule.standing(Record { failures: 100, last_ms: at(1000) }, at(1000));
        assert_eq!(locked, Standing::Locked(Some(at(1000 + 86_400))));
        assert_eq!(
            rule.standing(Record { failures: 100, last_ms: 0 }, at(86_400)),
            Standing::Expired
        );
    }

    #[test]
    fn a_source_is_forgotten_after_its_window_but_an_account_is_not() {
        let policy = ThrottlePolicy::default();
        let record = Record { failures: 3, last_ms: 0 };
        assert_eq!(policy.source_rule().standing(record, at(3599)), Standing::Open);
        assert_eq!(policy.source_rule().standing(record, at(3600)), Standing::Expired);
        assert_eq!(policy.account_rule().standing(record, at(10_000_000)), Standing::Open);
        assert_eq!(policy.source_rule().fail(Some(record), at(3600)).failures, 1);
        assert_eq!(policy.account_rule().fail(Some(record), at(3600)).failures, 4);
    }

    #[test]
    fn lock_limits_over_nists_100_or_zero_are_refused() {
        assert!(ThrottlePolicy::default().lock_after(100).is_ok());
        for n in [0, 101, u32::MAX] {
            assert!(matches!(
                ThrottlePolicy::default().lock_after(n),
                Err(AuthError::InvalidThrottlePolicy { .. })
            ));
            assert!(ThrottlePolicy::default().source_lock_after(n).is_err());
        }
    }

    #[test]
    fn the_state_round_trips_and_prunes_the_idlest_beyond_the_bound() {
        let mut state = State::fresh().unwrap();
        for i in 0..(MAX_THROTTLE_ENTRIES as u64 + 10) {
            state.sources.insert(format!("s{i}"), Record { failures: 1, last_ms: at(i) });
        }
        state.prune(&ThrottlePolicy::default().source_window(Duration::MAX), at(0));
        assert_eq!(state.sources.len(), MAX_THROTTLE_ENTRIES);
        assert!(!state.sources.contains_key("s9") && state.sources.contains_key("s10"));
        let parsed = State::parse(&state.to_json().unwrap()).unwrap();
        assert_eq!((parsed.salt, parsed.sources), (state.salt, state.sources));
    }

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(time_of(951_782_400_000)), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(time_of(1_795_000_000_000)), "2026-11-18 11:06:40 UTC");
    }
}
