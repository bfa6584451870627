//! Throttling of online guessing (NIST SP 800-63B-4 §3.2.2): per account and per source,
//! growing delays after a few failures, then a lock.
//!
//! The counts live in a state folder beside the users file (`<users file>.throttle/`, mode
//! `0700`), so they survive restarts and every process using the same users file shares them.
//! The folder holds a `salt` (created once, never replaced) and up to 256 shard files `00` to
//! `ff`, each a small JSON map with its own lock: an account's record lives in the shard named
//! by the first byte of its salted SHA-256 id, a source's in the one named by the first byte
//! of SHA-256(salt, source). Each attempt is reserved under the locks of its account's and
//! its source's shards (taken in shard order, so processes never deadlock) before the users
//! file is read or any hashing is done: a refused attempt costs two locks, two small reads and
//! no Argon2 run, the same with ten records or 100,000, and an accepted one is counted as a
//! failure at once (a success then resets the account), so parallel attempts cannot slip past
//! a limit.

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

/// The most records (accounts and sources together) the state folder keeps: each of its 256
/// shards keeps at most 390 (this bound divided by 256). When a new record would exceed a
/// shard's share, that shard's open sources (idle longest first), then its accounts below
/// their free failures (fewest failures first, then idle longest), then its delayed or
/// locked sources (idle longest first) make room; an account that has
/// reached its free failures is never dropped, delayed, locked or open (that would reset its
/// count or lift its lock), so a shard full of them refuses the new record's attempt
/// ([`AuthError::ThrottleStateFull`]: failing closed) until some expire (at most the lock
/// duration, or 24 hours, after their last failure) or are unlocked.
pub const MAX_THROTTLE_ENTRIES: usize = 100_000;

/// How long after its last failure an open account's record is forgotten when the policy's
/// lock lasts until an operator unlocks it (else the lock duration is that time).
const ACCOUNT_IDLE_WITHOUT_LOCK_END: Duration = Duration::from_secs(24 * 60 * 60);

/// The shard files' format version.
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
/// An account's record is forgotten once its last failure is `lock_duration` old (24 hours
/// when the lock lasts until unlocked) and it is not locked until an operator unlocks it;
/// its delay or lock must have ended first. So names guessed a few times each (a botnet
/// trying 5 passwords on 100,000 unknown names) fill the state folder for a day at most,
/// while a lock that lasts until unlocked is never forgotten.
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
/// // A lock that ends as it begins would switch the lock off: refused.
/// let no_lock = ThrottlePolicy::default().lock_duration(Some(Duration::ZERO));
/// assert!(no_lock.validate().is_err());
/// let store = globo_auth::UserStore::new("users.json").with_throttle(policy)?;
/// # let _ = store; Ok(()) }
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
    /// [`UserStore::unlock`](crate::UserStore::unlock). An open account's record is forgotten
    /// this long after its last failure (24 hours with `None`).
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

    /// Checks that no setting switches the lock off or makes it end before its delays:
    /// an account lock (when it ends by itself) lasts longer than zero and at least the
    /// longest delay; a source lock lasts longer than zero; the first delay is not longer
    /// than the longest; and a source's window is longer than the longest delay (else a
    /// guesser who waits out each delay finds the source forgotten, and its count never
    /// reaches the lock) and at least as long as the source lock. Zero delays are allowed
    /// (`base_delay` and `max_delay` both zero, leaving the lock alone): NIST SP 800-63B-4
    /// §3.2.2 requires the limit of 100 consecutive failures, delays are optional.
    /// [`UserStore::with_throttle`](crate::UserStore::with_throttle) runs it.
    pub fn validate(&self) -> Result<(), AuthError> {
        let invalid = |reason| Err(AuthError::InvalidThrottlePolicy { reason });
        if self.base_delay > self.max_delay {
            return invalid("the first delay must not be longer than the longest delay");
        }
        if let Some(lock) = self.lock_duration {
            if lock.is_zero() {
                return invalid("an account lock must last longer than zero");
            }
            if lock < self.max_delay {
                return invalid("an account lock must last at least as long as the longest delay");
            }
        }
        if self.source_lock_duration.is_some_and(|lock| lock.is_zero()) {
            return invalid("a source lock must last longer than zero");
        }
        if self.source_window <= self.max_delay {
            return invalid("a source's window must be longer than the longest delay");
        }
        if self.source_lock_duration.is_some_and(|lock| self.source_window < lock) {
            return invalid("a source's window must last at least as long as its lock");
        }
        Ok(())
    }

    fn account_rule(&self) -> Rule {
        Rule {
            free: self.free_failures,
            lock_after: self.lock_after,
            lock_duration: self.lock_duration,
            base: self.base_delay,
            max: self.max_delay,
            window: Some(self.lock_duration.unwrap_or(ACCOUNT_IDLE_WITHOUT_LOCK_END)),
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
    /// After how long without failures an open record is forgotten (a delayed or locked one
    /// waits for its delay or lock to end first; one locked until unlocked never is).
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

    /// The first time (ms) at which [`standing`](Self::standing) says `Expired` for
    /// `record` and stays so; `None` when it never does (a lock without end).
    fn forget_after_ms(&self, record: Record) -> Option<u64> {
        if record.failures >= self.lock_after {
            return self.lock_duration.map(|d| record.last_ms.saturating_add(duration_ms(d)));
        }
        let mut open_from = record.last_ms;
        if record.failures > 0 && record.failures >= self.free {
            let doublings = record.failures - self.free;
            let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
            let delay = duration_ms(self.base).saturating_mul(factor).min(duration_ms(self.max));
            open_from = record.last_ms.saturating_add(delay);
        }
        self.window.map(|w| open_from.max(record.last_ms.saturating_add(duration_ms(w))))
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

/// TEMP forget_after_ms (developer A's version replaces this at merge): when `record` of
/// `scope` expires under `policy` (ms since the Unix epoch; `None`: never), for the database
/// backends' `expires_ms` column.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn forget_after_ms(
    policy: &ThrottlePolicy,
    scope: crate::backend::KeyScope,
    record: crate::backend::ThrottleRecord,
) -> Option<u64> {
    let rule = match scope {
        crate::backend::KeyScope::Account => policy.account_rule(),
        crate::backend::KeyScope::Source => policy.source_rule(),
    };
    rule.forget_after_ms(Record { failures: record.failures, last_ms: record.last_ms })
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

/// What a login needs to identify its account in the state folder: the name's comparison key
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

/// The number of shard files: a record lives in the shard named by the first byte of its id.
const SHARDS: usize = 256;

/// The most records one shard keeps: [`MAX_THROTTLE_ENTRIES`] spread over the shards.
const MAX_SHARD_ENTRIES: usize = MAX_THROTTLE_ENTRIES / SHARDS;

/// The largest shard file read, in bytes: 390 records take at most about 320 KiB (a source
/// key of 128 bytes, each written as a 6-byte escape).
const MAX_SHARD_LEN: u64 = 1024 * 1024;

/// The salt file's name in the state folder.
const SALT_FILE: &str = "salt";

/// The longest source kept as given; a longer one is kept as `sha256:<hex of its hash>`, so
/// a caller's oversized key cannot grow a shard toward its size bound.
const MAX_SOURCE_KEY_BYTES: usize = 128;

/// Where a record lives: its shard and its key in that shard.
#[derive(Debug, Clone)]
struct Key {
    shard: u8,
    id: String,
}

/// The state folder and its salt.
#[derive(Debug)]
struct Folder {
    salt: Vec<u8>,
}

/// An unusable file of the state folder.
fn unusable(path: &Path, reason: &'static str) -> AuthError {
    AuthError::UnusableThrottleState { path: path.to_owned(), reason, source: None }
}

fn access(folder: &Path) -> impl FnOnce(globo_fs::FsError) -> AuthError + '_ {
    move |source| AuthError::ThrottleStateAccess { path: folder.to_owned(), source }
}

/// The salt at `path` (`None` when there is none).
fn read_salt(folder: &Path, path: &Path) -> Result<Option<Vec<u8>>, AuthError> {
    match globo_fs::read_small_regular(path, 128) {
        Ok(None) => Ok(None),
        Ok(Some((bytes, _))) => {
            let text = std::str::from_utf8(&bytes).ok();
            let salt = text.map(|t| t.strip_suffix('\n').unwrap_or(t)).and_then(unhex);
            match salt {
                Some(salt) if salt.len() == 32 => Ok(Some(salt)),
                _ => Err(unusable(path, "it is not 32 bytes of hex")),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            Err(unusable(path, "it is not 32 bytes of hex"))
        }
        Err(e) => Err(access(folder)(e)),
    }
}

impl Folder {
    /// The state folder at `path`, created (mode `0700`) with its salt if need be. The salt
    /// is created once and never replaced: two processes creating it at once agree on the
    /// one that was published first.
    fn create(path: &Path) -> Result<Self, AuthError> {
        globo_fs::create_private_dir(path).map_err(access(path))?;
        let salt_path = path.join(SALT_FILE);
        if let Some(salt) = read_salt(path, &salt_path)? {
            return Ok(Self { salt });
        }
        let mut salt = vec![0u8; 32];
        getrandom::fill(&mut salt).map_err(|e| AuthError::Random { source: Box::new(e) })?;
        let mut text = hex(&salt);
        text.push('\n');
        match globo_fs::create_new(&salt_path, text.as_bytes()) {
            Ok(()) => Ok(Self { salt }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_salt(path, &salt_path)?
                .map(|salt| Self { salt })
                .ok_or_else(|| unusable(&salt_path, "it was removed while in use")),
            Err(e) => Err(access(path)(e)),
        }
    }

    /// The state folder at `path` as it is, `None` when it or its salt does not exist (then
    /// no record exists either). Creates nothing.
    fn existing(path: &Path) -> Result<Option<Self>, AuthError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        Ok(read_salt(path, &path.join(SALT_FILE))?.map(|salt| Self { salt }))
    }

    fn digest(&self, material: &[&[u8]]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(&self.salt);
        for part in material {
            hasher.update(part);
        }
        hasher.finalize().into()
    }

    /// An account's key: hex SHA-256 of the salt and the name's material, so a password
    /// typed into the name field is never kept in the clear; its first byte is the shard.
    fn account(&self, material: &[u8]) -> Key {
        let digest = self.digest(&[material]);
        Key { shard: digest[0], id: hex(&digest) }
    }

    /// A source's key: the source as given (a long one hashed), in the shard of
    /// SHA-256(salt, `s:`, source), so sources spread over the shards like accounts.
    fn source(&self, source: &str) -> Key {
        let id = if source.len() <= MAX_SOURCE_KEY_BYTES {
            source.to_owned()
        } else {
            format!("sha256:{}", hex(&Sha256::digest(source.as_bytes())))
        };
        Key { shard: self.digest(&[b"s:", id.as_bytes()])[0], id }
    }
}

/// The shard file `shard` of the state folder `folder`: `00` to `ff`.
fn shard_path(folder: &Path, shard: u8) -> PathBuf {
    folder.join(format!("{shard:02x}"))
}

/// One shard file's records.
#[derive(Debug, Default)]
struct Shard {
    accounts: HashMap<String, Record>,
    sources: HashMap<String, Record>,
    /// Whether this operation changed it (then it is written).
    changed: bool,
}

impl Shard {
    /// Drops the records whose lock or window is over; then, beyond [`MAX_SHARD_ENTRIES`],
    /// evicts open sources (idle longest first), then accounts below their free failures
    /// (fewest failures first, then idle longest), then delayed or locked sources (idle
    /// longest first: lifting a source's delay or lock only frees guesses that each
    /// account's own count still limits). An account that has reached its free failures is
    /// never evicted, open or not: evicting it would reset its count, and a guesser who waits
    /// out each delay would flood the shard to get 99 more guesses. The records of the
    /// attempt being counted (`keep`: its account's and its source's ids) are what room is
    /// made for, never evicted. Returns whether the shard is within its bound.
    fn prune(&mut self, policy: &ThrottlePolicy, now_ms: u64, keep: [Option<&str>; 2]) -> bool {
        let (account, source) = (policy.account_rule(), policy.source_rule());
        self.accounts.retain(|_, r| account.standing(*r, now_ms) != Standing::Expired);
        self.sources.retain(|_, r| source.standing(*r, now_ms) != Standing::Expired);
        let total = self.accounts.len() + self.sources.len();
        if total <= MAX_SHARD_ENTRIES {
            return true;
        }
        // (rank, failures, last failure, key): open sources rank 0 and delayed or locked
        // ones 2 (a source's failures do not matter), accounts below their free failures 1.
        let [keep_account, keep_source] = keep;
        let sources =
            self.sources.iter().filter(|(k, _)| keep_source != Some(k.as_str())).map(|(k, r)| {
                let rank = if source.standing(*r, now_ms) == Standing::Open { 0u8 } else { 2 };
                (rank, 0, r.last_ms, k.clone())
            });
        let accounts = self
            .accounts
            .iter()
            .filter(|(k, r)| {
                r.failures < account.free
                    && account.standing(**r, now_ms) == Standing::Open
                    && keep_account != Some(k.as_str())
            })
            .map(|(k, r)| (1u8, r.failures, r.last_ms, k.clone()));
        let mut evictable: Vec<(u8, u32, u64, String)> = sources.chain(accounts).collect();
        evictable.sort_unstable();
        let excess = total - MAX_SHARD_ENTRIES;
        for (rank, _, _, key) in evictable.iter().take(excess) {
            if *rank != 1 {
                self.sources.remove(key);
            } else {
                self.accounts.remove(key);
            }
        }
        evictable.len() >= excess
    }

    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let (accounts, sources) = (sorted_records(&self.accounts), sorted_records(&self.sources));
        let file = ShardFileOut {
            version: STATE_VERSION,
            accounts: SortedRecords(&accounts),
            sources: SortedRecords(&sources),
        };
        let mut json = serde_json::to_vec(&file)?;
        json.push(b'\n');
        Ok(json)
    }

    fn parse(bytes: &[u8]) -> Result<Self, (&'static str, Option<serde_json::Error>)> {
        let file: ShardFileIn = serde_json::from_slice(bytes)
            .map_err(|e| ("it is not the throttling shard's JSON format", Some(e)))?;
        if file.version != STATE_VERSION {
            return Err(("its version is not 1", None));
        }
        let records = |map: HashMap<String, (u32, u64)>| {
            map.into_iter()
                .map(|(k, (failures, last_ms))| (k, Record { failures, last_ms }))
                .collect()
        };
        Ok(Self {
            accounts: records(file.accounts),
            sources: records(file.sources),
            changed: false,
        })
    }
}

/// A map's records as (key, (failures, last failure)), sorted by key.
fn sorted_records(map: &HashMap<String, Record>) -> Vec<(&str, (u32, u64))> {
    let mut sorted: Vec<(&str, (u32, u64))> =
        map.iter().map(|(k, r)| (k.as_str(), (r.failures, r.last_ms))).collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    sorted
}

/// A shard file as read: every field required, nothing else allowed.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardFileIn {
    version: u64,
    accounts: HashMap<String, (u32, u64)>,
    sources: HashMap<String, (u32, u64)>,
}

/// A shard file as written (records sorted, so equal states are equal files).
#[derive(serde::Serialize)]
struct ShardFileOut<'a> {
    version: u64,
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

/// The state folder of the users file at `users`: `<users>.throttle` beside it.
pub(crate) fn state_path(users: &Path) -> PathBuf {
    let mut name = users.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".throttle");
    users.with_file_name(name)
}

/// An attempt counted by [`reserve`]: what the outcome needs to settle it.
#[derive(Debug)]
pub(crate) struct Reservation {
    account: Key,
    source: Option<Key>,
    /// The account's failures before this attempt.
    pub(crate) previous: u32,
    /// The account's failures with this attempt.
    pub(crate) account_failures: u32,
    /// Whether this attempt, if it fails, locks the account (or the source).
    pub(crate) locks_account: bool,
    pub(crate) source_failures: Option<u32>,
    pub(crate) locks_source: bool,
    /// The account's and the source's records before and after this attempt was counted,
    /// so [`release`] can take it back.
    account_before: Option<Record>,
    account_counted: Record,
    source_before: Option<Record>,
    source_counted: Option<Record>,
}

impl Reservation {
    /// The first 12 hex digits of the account's salted id: what events name an unknown
    /// name by (the same id its shard and record are found by).
    pub(crate) fn account_label(&self) -> &str {
        self.account.id.get(..LABEL_HEX).unwrap_or(&self.account.id)
    }
}

/// How many hex digits of an account's salted id name an unknown name in events (48 bits:
/// enough to tell names apart in a log, too few to test guesses of a name against).
const LABEL_HEX: usize = 12;

/// The label [`Reservation::account_label`] gives, for the account `material` (see
/// [`account_material`]) read from the state folder at `path`; `None` when there is no
/// state folder (nothing was ever counted) or it is unusable.
pub(crate) fn account_label(path: &Path, material: &[u8]) -> Option<String> {
    let folder = Folder::existing(path).ok().flatten()?;
    let id = folder.account(material).id;
    Some(id.get(..LABEL_HEX).unwrap_or(&id).to_owned())
}

/// The shard file at `path` (an empty shard when there is none).
fn read_shard(folder: &Path, path: &Path) -> Result<Shard, AuthError> {
    match globo_fs::read_small_regular(path, MAX_SHARD_LEN) {
        Ok(None) => Ok(Shard::default()),
        Ok(Some((bytes, _))) => {
            Shard::parse(&bytes).map_err(|(reason, e)| AuthError::UnusableThrottleState {
                path: path.to_owned(),
                reason,
                source: e.map(|e| Box::new(e) as Box<_>),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            Err(unusable(path, "it is larger than 1 MiB"))
        }
        Err(e) => Err(access(folder)(e)),
    }
}

/// The one or two shards an operation touches, locked and read. The locks are taken in
/// shard order, so two processes needing the same two shards never wait for each other.
struct Held<'a> {
    folder: &'a Path,
    first: (u8, Shard),
    second: Option<(u8, Shard)>,
    _locks: Vec<globo_fs::ExclusiveLock>,
}

impl<'a> Held<'a> {
    fn acquire(folder: &'a Path, a: u8, b: Option<u8>) -> Result<Self, AuthError> {
        let (low, high) = match b {
            Some(b) if b != a => (a.min(b), Some(a.max(b))),
            _ => (a, None),
        };
        let mut locks = Vec::with_capacity(2);
        let mut take = |shard: u8| -> Result<(u8, Shard), AuthError> {
            let path = shard_path(folder, shard);
            locks.push(globo_fs::ExclusiveLock::acquire(&path).map_err(access(folder))?);
            Ok((shard, read_shard(folder, &path)?))
        };
        let first = take(low)?;
        let second = high.map(&mut take).transpose()?;
        Ok(Self { folder, first, second, _locks: locks })
    }

    fn shard(&mut self, shard: u8) -> &mut Shard {
        match &mut self.second {
            Some((n, s)) if *n == shard => s,
            _ => &mut self.first.1,
        }
    }

    /// Writes every shard changed.
    fn write(self) -> Result<(), AuthError> {
        for (n, shard) in std::iter::once(&self.first).chain(self.second.as_ref()) {
            if !shard.changed {
                continue;
            }
            let path = shard_path(self.folder, *n);
            // Serialising strings and numbers cannot fail; report it as a write error if it does.
            let json = shard
                .to_json()
                .map_err(|e| globo_fs::FsError::new("serialise", &path, io::Error::other(e)));
            json.and_then(|json| globo_fs::write_atomic(&path, &json))
                .map_err(access(self.folder))?;
        }
        Ok(())
    }
}

/// Checks the account (`material`, see [`account_material`]) and the source; refuses the
/// attempt (counting nothing) when either is delayed or locked, else counts it as a failure
/// of both and returns the reservation. Touches the state folder's salt and at most two
/// shards, whatever the number of records.
pub(crate) fn reserve(
    path: &Path,
    policy: &ThrottlePolicy,
    material: &[u8],
    source: Option<&str>,
    now: SystemTime,
) -> Result<Reservation, AuthError> {
    let now_ms = millis(now);
    let (account_rule, source_rule) = (policy.account_rule(), policy.source_rule());
    let folder = Folder::create(path)?;
    let account = folder.account(material);
    let source = source.map(|s| folder.source(s));
    let mut held = Held::acquire(path, account.shard, source.as_ref().map(|s| s.shard))?;
    let record = held.shard(account.shard).accounts.get(&account.id).copied();
    let source_record =
        source.as_ref().and_then(|s| held.shard(s.shard).sources.get(&s.id).copied());
    let account_standing = record.map_or(Standing::Open, |r| account_rule.standing(r, now_ms));
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
    let counted = account_rule.fail(record, now_ms);
    let shard = held.shard(account.shard);
    shard.accounts.insert(account.id.clone(), counted);
    shard.changed = true;
    let mut source_counted = None;
    if let Some(source) = &source {
        let counted = source_rule.fail(source_record, now_ms);
        source_counted = Some(counted);
        let shard = held.shard(source.shard);
        shard.sources.insert(source.id.clone(), counted);
        shard.changed = true;
    }
    // Room for both records, or the attempt is refused and nothing is written: a delayed or
    // locked account is never evicted to make room (that would lift its delay or lock).
    let mut full = None;
    for shard in std::iter::once(account.shard).chain(source.as_ref().map(|s| s.shard)) {
        let keep = [Some(account.id.as_str()), source.as_ref().map(|s| s.id.as_str())];
        if !held.shard(shard).prune(policy, now_ms, keep) {
            full = Some(shard);
        }
    }
    if let Some(shard) = full {
        return Err(AuthError::ThrottleStateFull { path: shard_path(path, shard) });
    }
    held.write()?;
    let source_failures = source_counted.map(|r| r.failures);
    Ok(Reservation {
        account,
        source,
        previous,
        account_failures: counted.failures,
        locks_account: counted.failures == policy.lock_after,
        source_failures,
        locks_source: source_failures == Some(policy.source_lock_after),
        account_before: record,
        account_counted: counted,
        source_before: source_record,
        source_counted,
    })
}

/// A success: the account's record is cleared; the source keeps its failures, less the one
/// this attempt was counted as (a success is not a failure, but it must not clear the
/// source: a guesser holding one valid account would clear its own source with it).
pub(crate) fn succeed(path: &Path, reservation: &Reservation) -> Result<(), AuthError> {
    let source = reservation.source.as_ref();
    let mut held = Held::acquire(path, reservation.account.shard, source.map(|s| s.shard))?;
    let shard = held.shard(reservation.account.shard);
    shard.changed |= shard.accounts.remove(&reservation.account.id).is_some();
    if let Some(source) = source {
        let shard = held.shard(source.shard);
        if let Some(record) = shard.sources.get_mut(&source.id) {
            record.failures = record.failures.saturating_sub(1);
            if record.failures == 0 {
                shard.sources.remove(&source.id);
            }
            shard.changed = true;
        }
    }
    held.write()
}

/// An attempt that ended in an operational error (the users file unreadable, a pepper
/// missing, Argon2 failing), not in a verdict on the password: it is taken back off the
/// account and, unless `keep_source`, off the source. A record nobody else has counted on
/// since is restored as it was before; otherwise only this attempt's failure is taken off
/// (earlier failures stay).
pub(crate) fn release(
    path: &Path,
    reservation: &Reservation,
    keep_source: bool,
) -> Result<(), AuthError> {
    let source = reservation.source.as_ref();
    let mut held = Held::acquire(path, reservation.account.shard, source.map(|s| s.shard))?;
    let shard = held.shard(reservation.account.shard);
    shard.changed |= take_back(
        &mut shard.accounts,
        &reservation.account.id,
        reservation.account_counted,
        reservation.account_before,
    );
    if let (Some(source), Some(counted), false) = (source, reservation.source_counted, keep_source)
    {
        let shard = held.shard(source.shard);
        shard.changed |=
            take_back(&mut shard.sources, &source.id, counted, reservation.source_before);
    }
    held.write()
}

/// Takes one counted failure back off `map[id]`: the record as it was `before` when it is
/// still the one counted, else one failure less. Returns whether anything changed.
fn take_back(
    map: &mut HashMap<String, Record>,
    id: &str,
    counted: Record,
    before: Option<Record>,
) -> bool {
    let Some(record) = map.get_mut(id) else { return false };
    let restored = if *record == counted {
        before
    } else {
        Some(Record { failures: record.failures.saturating_sub(1), last_ms: record.last_ms })
    };
    match restored {
        Some(r) if r.failures > 0 => *record = r,
        _ => {
            map.remove(id);
        }
    }
    true
}

/// Clears the account's record (`material`) or, with `source`, that source's; returns
/// whether there was one. Creates and writes nothing when there was none.
pub(crate) fn clear(
    path: &Path,
    material: Option<&[u8]>,
    source: Option<&str>,
) -> Result<bool, AuthError> {
    let Some(folder) = Folder::existing(path)? else { return Ok(false) };
    let mut removed = false;
    if let Some(material) = material {
        let key = folder.account(material);
        let mut held = Held::acquire(path, key.shard, None)?;
        let shard = held.shard(key.shard);
        shard.changed = shard.accounts.remove(&key.id).is_some();
        removed |= shard.changed;
        held.write()?;
    }
    if let Some(source) = source {
        let key = folder.source(source);
        let mut held = Held::acquire(path, key.shard, None)?;
        let shard = held.shard(key.shard);
        shard.changed = shard.sources.remove(&key.id).is_some();
        removed |= shard.changed;
        held.write()?;
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
    let open = ThrottleStatus { failures: 0, state: ThrottleState::Open };
    let Some(folder) = Folder::existing(path)? else { return Ok(open) };
    let key = folder.account(material);
    let shard = read_shard(path, &shard_path(path, key.shard))?;
    let Some(record) = shard.accounts.get(&key.id).copied() else { return Ok(open) };
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

    /// TEMP forget_after_ms: the time it gives is the first at which `standing` says
    /// Expired (and stays so), for open, delayed and locked records of both scopes.
    #[test]
    fn forget_after_is_when_the_standing_becomes_expired() {
        use crate::backend::{KeyScope, ThrottleRecord};
        let endless = ThrottlePolicy::default().lock_duration(None);
        for policy in [ThrottlePolicy::default(), endless] {
            for (scope, rule) in [
                (KeyScope::Account, policy.account_rule()),
                (KeyScope::Source, policy.source_rule()),
            ] {
                for failures in [0, 1, 4, 5, 9, 15, 40, 99, 100, 1000, 5000] {
                    let last_ms = at(1_000_000);
                    let record = Record { failures, last_ms };
                    let forget =
                        forget_after_ms(&policy, scope, ThrottleRecord { failures, last_ms });
                    let Some(forget) = forget else {
                        assert_ne!(rule.standing(record, u64::MAX / 2), Standing::Expired);
                        continue;
                    };
                    assert_ne!(rule.standing(record, forget - 1), Standing::Expired, "{failures}");
                    assert_eq!(rule.standing(record, forget), Standing::Expired, "{failures}");
                    assert_eq!(rule.standing(record, forget + at(86_400)), Standing::Expired);
                }
            }
        }
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

    /// Review G, point 1: an open account is forgotten after `lock_duration` (24 h when the
    /// lock lasts until unlocked) without failures; a lock until unlocked never is. Before,
    /// account records had no window: the one at 6 failures was `Open` a day later.
    #[test]
    fn a_source_is_forgotten_after_its_window_an_account_after_its_lock_duration() {
        let policy = ThrottlePolicy::default();
        let record = Record { failures: 3, last_ms: 0 };
        assert_eq!(policy.source_rule().standing(record, at(3599)), Standing::Open);
        assert_eq!(policy.source_rule().standing(record, at(3600)), Standing::Expired);
        assert_eq!(policy.account_rule().standing(record, at(10_000)), Standing::Open);
        assert_eq!(policy.source_rule().fail(Some(record), at(3600)).failures, 1);
        assert_eq!(policy.account_rule().fail(Some(record), at(3600)).failures, 4);
        let past_free = Record { failures: 6, last_ms: 0 };
        for policy in [policy.clone(), policy.clone().lock_duration(None)] {
            let rule = policy.account_rule();
            assert_eq!(rule.standing(past_free, at(86_399)), Standing::Open);
            assert_eq!(rule.standing(past_free, at(86_400)), Standing::Expired);
            assert_eq!(rule.fail(Some(past_free), at(86_400)).failures, 1);
        }
        let short = policy.clone().lock_duration(Some(Duration::from_secs(3600)));
        assert_eq!(short.account_rule().standing(past_free, at(3600)), Standing::Expired);
        // Delayed past the idle time (a delay longer than a day, lock until unlocked): the
        // delay ends first.
        let long_delay = ThrottlePolicy::default()
            .lock_duration(None)
            .max_delay(Duration::from_secs(200_000))
            .base_delay(Duration::from_secs(200_000));
        let delayed = long_delay.account_rule().standing(past_free, at(86_400));
        assert_eq!(delayed, Standing::Delayed(at(200_000)));
        assert_eq!(long_delay.account_rule().standing(past_free, at(200_000)), Standing::Expired);
        let locked = Record { failures: 100, last_ms: 0 };
        let until_unlocked = ThrottlePolicy::default().lock_duration(None).account_rule();
        assert_eq!(until_unlocked.standing(locked, at(u64::MAX / 1000)), Standing::Locked(None));
    }

    /// Review G, point 1: a botnet's few guesses at many unknown names (each account past its
    /// free failures, then idle) no longer fill a shard for good: a day later a new name's
    /// login is accepted, and a lock until unlocked in the same shard is kept. Before, the
    /// new name's attempt failed with `ThrottleStateFull` forever.
    #[test]
    fn idle_accounts_past_their_free_failures_expire_and_make_room() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, shard, mut next) = locked_victim(dir.path());
        let policy = ThrottlePolicy::default().lock_duration(None);
        let victim = Folder::existing(&path).unwrap().unwrap().account(b"k:victim").id;
        let mut filled = read_shard(&path, &shard_path(&path, shard)).unwrap();
        filled.accounts.insert(victim.clone(), Record { failures: 100, last_ms: at(1000) });
        for i in 0..(MAX_SHARD_ENTRIES as u64 - 1) {
            filled
                .accounts
                .insert(format!("guessed{i:03}"), Record { failures: 5, last_ms: at(2000 + i) });
        }
        write_shard(&path, shard, &filled);
        // Within the day the shard is full: failing closed.
        let within = reserve(&path, &policy, &next(), None, time_of(at(80_000)));
        assert!(matches!(within, Err(AuthError::ThrottleStateFull { .. })), "{within:?}");
        let later = time_of(at(2000 + 86_400 + MAX_SHARD_ENTRIES as u64));
        reserve(&path, &policy, &next(), None, later).unwrap();
        let after = read_shard(&path, &shard_path(&path, shard)).unwrap();
        assert_eq!(after.accounts.len(), 2, "{:?}", after.accounts.keys());
        let victim_status = status(&path, &policy, b"k:victim", later).unwrap();
        assert_eq!(victim_status.state, ThrottleState::Locked { until: None });
        assert_eq!(victim_status.failures, 100);
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
    fn a_shard_round_trips_and_prunes_the_idlest_beyond_its_bound() {
        let mut shard = Shard::default();
        for i in 0..(MAX_SHARD_ENTRIES as u64 + 10) {
            shard.sources.insert(format!("s{i}"), Record { failures: 1, last_ms: at(i) });
        }
        let policy = ThrottlePolicy::default().source_window(Duration::MAX);
        assert!(shard.prune(&policy, at(0), [None, None]));
        assert_eq!(shard.sources.len(), MAX_SHARD_ENTRIES);
        assert!(!shard.sources.contains_key("s9") && shard.sources.contains_key("s10"));
        let parsed = Shard::parse(&shard.to_json().unwrap()).unwrap();
        assert_eq!(parsed.sources, shard.sources);
    }

    /// A state folder (in `dir`) where `victim` is locked until unlocked, with its shard
    /// number, the policy, and a maker of account materials that fall into that shard.
    fn locked_victim(dir: &Path) -> (PathBuf, ThrottlePolicy, u8, impl FnMut() -> Vec<u8>) {
        let path = dir.join("users.json.throttle");
        let policy = ThrottlePolicy::default()
            .free_failures(3)
            .lock_after(3)
            .unwrap()
            .lock_duration(None)
            .source_lock_duration(None);
        for _ in 0..3 {
            reserve(&path, &policy, b"k:victim", None, time_of(at(1000))).unwrap();
        }
        let folder = Folder::existing(&path).unwrap().unwrap();
        let shard = folder.account(b"k:victim").shard;
        let mut i = 0u64;
        let next = move || loop {
            i += 1;
            let material = format!("k:flood{i}").into_bytes();
            if folder.account(&material).shard == shard {
                return material;
            }
        };
        (path, policy, shard, next)
    }

    fn write_shard(path: &Path, shard: u8, records: &Shard) {
        globo_fs::write_atomic(&shard_path(path, shard), &records.to_json().unwrap()).unwrap();
    }

    /// Review P2g, point 2: a flood of new names into a locked account's shard evicts open
    /// records, never the lock. Before, the records idle longest were evicted whatever their
    /// standing, so the victim (its last failure the oldest) was unlocked: its status
    /// became `Open` with 0 failures.
    #[test]
    fn a_locked_account_survives_a_flood_of_new_names_into_its_shard() {
        let dir = tempfile::tempdir().unwrap();
        let (path, policy, shard, mut next) = locked_victim(dir.path());
        let mut filled = read_shard(&path, &shard_path(&path, shard)).unwrap();
        // The shard at its bound with open records idle for less long than the victim.
        for i in 0..(MAX_SHARD_ENTRIES as u64 - 1) {
            filled
                .accounts
                .insert(format!("open{i:03}"), Record { failures: 1, last_ms: at(2000 + i) });
        }
        write_shard(&path, shard, &filled);
        for i in 0..50 {
            let now = time_of(at(5000 + i));
            reserve(&path, &policy, &next(), Some(&format!("10.0.0.{i}")), now).unwrap();
        }
        let victim = status(&path, &policy, b"k:victim", time_of(at(9000))).unwrap();
        assert_eq!(victim.state, ThrottleState::Locked { until: None });
        assert_eq!(victim.failures, 3);
        let after = read_shard(&path, &shard_path(&path, shard)).unwrap();
        assert!(after.accounts.len() + after.sources.len() <= MAX_SHARD_ENTRIES);
        // The open records idle longest made the room.
        assert!(!after.accounts.contains_key("open000") && after.accounts.contains_key("open388"));
    }

    /// Review P2g, point 2: when a shard holds only delayed or locked records, a locked
    /// source is evicted before anything else; with only locked accounts left, the new
    /// record's attempt is refused (failing closed) and nothing is written.
    #[test]
    fn a_shard_of_locked_accounts_refuses_a_new_record_and_keeps_every_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (path, policy, shard, mut next) = locked_victim(dir.path());
        let mut filled = read_shard(&path, &shard_path(&path, shard)).unwrap();
        for i in 0..(MAX_SHARD_ENTRIES as u64 - 2) {
            filled
                .accounts
                .insert(format!("locked{i:03}"), Record { failures: 3, last_ms: at(2000 + i) });
        }
        filled.sources.insert("203.0.113.1".into(), Record { failures: 100, last_ms: at(3000) });
        write_shard(&path, shard, &filled);
        // One more: the locked source makes room.
        reserve(&path, &policy, &next(), None, time_of(at(5000))).unwrap();
        let after = read_shard(&path, &shard_path(&path, shard)).unwrap();
        assert!(after.sources.is_empty() && after.accounts.len() == MAX_SHARD_ENTRIES);
        // The new account locks too; then nothing can make room.
        let newest = after.accounts.iter().find(|(_, r)| r.last_ms == at(5000)).unwrap().0.clone();
        let mut locked = after;
        locked.accounts.insert(newest, Record { failures: 3, last_ms: at(5000) });
        write_shard(&path, shard, &locked);
        let before = std::fs::read(shard_path(&path, shard)).unwrap();
        let error = reserve(&path, &policy, &next(), None, time_of(at(6000))).unwrap_err();
        assert!(
            matches!(&error, AuthError::ThrottleStateFull { path: p } if *p == shard_path(&path, shard)),
            "{error:?}"
        );
        assert_eq!(std::fs::read(shard_path(&path, shard)).unwrap(), before);
        let victim = status(&path, &policy, b"k:victim", time_of(at(9000))).unwrap();
        assert_eq!(victim.state, ThrottleState::Locked { until: None });
    }

    /// Review F, point 2: an account past its free failures whose delay has passed is open,
    /// yet must survive a flood: evicting it would reset its count. Before, open records
    /// were evicted idle longest first whatever their count, so the victim at 99 failures
    /// (its last failure the oldest) was evicted first and came back with 0.
    #[test]
    fn an_open_account_with_many_failures_survives_a_flood_into_its_shard() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, shard, mut next) = locked_victim(dir.path());
        let policy = ThrottlePolicy::default();
        let mut filled = read_shard(&path, &shard_path(&path, shard)).unwrap();
        let victim = Folder::existing(&path).unwrap().unwrap().account(b"k:victim").id;
        // 99 failures, the last long ago: its delay (at most 15 min) is over.
        filled.accounts.insert(victim.clone(), Record { failures: 99, last_ms: at(1000) });
        for i in 0..(MAX_SHARD_ENTRIES as u64 - 1) {
            filled
                .accounts
                .insert(format!("open{i:03}"), Record { failures: 1, last_ms: at(2000 + i) });
        }
        write_shard(&path, shard, &filled);
        let now = 10_000;
        let standing = policy.account_rule().standing(filled.accounts[&victim], at(now));
        assert_eq!(standing, Standing::Open);
        for i in 0..50 {
            reserve(&path, &policy, &next(), None, time_of(at(now + i))).unwrap();
        }
        let after = read_shard(&path, &shard_path(&path, shard)).unwrap();
        assert_eq!(after.accounts.get(&victim).map(|r| r.failures), Some(99));
        assert!(after.accounts.len() + after.sources.len() <= MAX_SHARD_ENTRIES);
    }

    /// Review F, point 2, and review G, point 2: open sources go first (idle longest), then
    /// accounts below their free failures (fewest failures first, then idle longest), then
    /// delayed or locked sources; an account that reached its free failures is never evicted.
    /// Before, every source went first, so the locked `s-old` was evicted before `s-new`.
    #[test]
    fn eviction_takes_sources_then_the_accounts_with_fewest_failures() {
        let policy = ThrottlePolicy::default()
            .source_window(Duration::from_secs(1 << 40))
            .source_lock_duration(None)
            .lock_duration(Some(Duration::from_secs(1 << 40)));
        let now = at(1_000_000);
        let mut shard = Shard::default();
        shard.sources.insert("s-old".into(), Record { failures: 100, last_ms: at(1) });
        shard.sources.insert("s-new".into(), Record { failures: 1, last_ms: at(2) });
        // 21 failures, the last a second ago: delayed for 2 s.
        shard.sources.insert("s-delayed".into(), Record { failures: 21, last_ms: now - 1000 });
        shard.accounts.insert("two".into(), Record { failures: 2, last_ms: at(1) });
        shard.accounts.insert("one-new".into(), Record { failures: 1, last_ms: at(5) });
        shard.accounts.insert("one-old".into(), Record { failures: 1, last_ms: at(4) });
        shard.accounts.insert("five".into(), Record { failures: 5, last_ms: at(0) });
        for i in 0..(MAX_SHARD_ENTRIES - 7) {
            shard.accounts.insert(format!("free{i:03}"), Record { failures: 5, last_ms: at(0) });
        }
        shard.accounts.insert("new".into(), Record { failures: 1, last_ms: now });
        let source_rule = policy.source_rule();
        assert_eq!(
            source_rule.standing(shard.sources["s-delayed"], now),
            Standing::Delayed(now + 1000)
        );
        assert_eq!(source_rule.standing(shard.sources["s-old"], now), Standing::Locked(None));
        let evicted_after = |excess: usize| {
            let mut copy = Shard { accounts: shard.accounts.clone(), ..Shard::default() };
            copy.sources = shard.sources.clone();
            for i in 1..excess {
                copy.accounts.insert(format!("extra{i}"), Record { failures: 6, last_ms: 0 });
            }
            let fits = copy.prune(&policy, now, [Some("new"), None]);
            let named = ["s-old", "s-new", "s-delayed", "one-old", "one-new", "two", "five"];
            let mut gone: Vec<&str> = named
                .into_iter()
                .filter(|k| !copy.accounts.contains_key(*k) && !copy.sources.contains_key(*k))
                .collect();
            gone.sort_unstable();
            (fits, gone)
        };
        assert_eq!(evicted_after(1), (true, vec!["s-new"]));
        assert_eq!(evicted_after(2), (true, vec!["one-old", "s-new"]));
        assert_eq!(evicted_after(3), (true, vec!["one-new", "one-old", "s-new"]));
        assert_eq!(evicted_after(4), (true, vec!["one-new", "one-old", "s-new", "two"]));
        assert_eq!(evicted_after(5), (true, vec!["one-new", "one-old", "s-new", "s-old", "two"]));
        assert_eq!(
            evicted_after(6),
            (true, vec!["one-new", "one-old", "s-delayed", "s-new", "s-old", "two"])
        );
        // Only accounts at their free failures are left: nothing more is evicted.
        assert!(!evicted_after(7).0);
        assert!(!evicted_after(7).1.contains(&"five"));
    }

    #[test]
    fn records_spread_over_the_shards_and_long_sources_are_hashed() {
        let folder = Folder { salt: vec![7; 32] };
        let mut seen = std::collections::HashSet::new();
        for i in 0..4096 {
            seen.insert(folder.account(format!("k:user{i}").as_bytes()).shard);
            seen.insert(folder.source(&format!("10.0.{}.{}", i / 256, i % 256)).shard);
        }
        assert_eq!(seen.len(), SHARDS);
        let long = "x".repeat(MAX_SOURCE_KEY_BYTES + 1);
        let key = folder.source(&long);
        assert!(key.id.starts_with("sha256:") && key.id.len() == 7 + 64, "{}", key.id);
        assert_eq!(folder.source("10.0.0.1").id, "10.0.0.1");
    }

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(time_of(951_782_400_000)), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(time_of(1_795_000_000_000)), "2026-11-18 11:06:40 UTC");
    }
}
