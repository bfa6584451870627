//! Throttling of online guessing (NIST SP 800-63B-4 §3.2.2): per account and per source,
//! growing delays after a few failures, then a lock.
//!
//! The rules (standing, delays, locks, expiry) and the operations (reserve, succeed,
//! release, clear, status) live here and work on any store's records through
//! [`ThrottleBackend`]: the JSON store's state folder (`backend::json::throttle`) or a
//! database's table. Records are keyed by ids derived here from the backend's salt (an
//! account by a salted SHA-256 of its name, so a password typed into the name field is
//! never kept; a source as given, a long one hashed). Each attempt is reserved in one atomic
//! update of its account's and its source's records before the users are read or any
//! hashing is done: a refused attempt costs that update and no Argon2 run, and an accepted
//! one is counted as a failure at once (a success then resets the account), so parallel
//! attempts cannot slip past a limit.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use crate::AuthError;
use crate::backend::{KeyScope, ThrottleBackend, ThrottleKey, ThrottleRecord, UpdateContext};
use crate::username::comparison_key;

/// One key's consecutive failures and the time of the last one.
type Record = ThrottleRecord;

/// How many consecutive failures a policy may allow before the lock: NIST SP 800-63B-4
/// §3.2.2 ("SHALL ... no more than 100 consecutive failed authentication attempts on a
/// single account").
pub const MAX_LOCK_AFTER: u32 = 100;

/// The most records (accounts and sources together) the users file's state folder keeps
/// (a database store has no such bound): each of its 256 shards keeps at most 390 (this
/// bound divided by 256). When a new record would exceed a
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

    pub(crate) fn account_rule(&self) -> Rule {
        Rule {
            free: self.free_failures,
            lock_after: self.lock_after,
            lock_duration: self.lock_duration,
            base: self.base_delay,
            max: self.max_delay,
            window: Some(self.lock_duration.unwrap_or(ACCOUNT_IDLE_WITHOUT_LOCK_END)),
        }
    }

    pub(crate) fn source_rule(&self) -> Rule {
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
pub(crate) struct Rule {
    pub(crate) free: u32,
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

/// Where a record stands at `now_ms` under `rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    Open,
    Delayed(u64),
    Locked(Option<u64>),
    /// Its lock or window is over: the record is forgotten.
    Expired,
}

impl Rule {
    pub(crate) fn standing(&self, record: Record, now_ms: u64) -> Standing {
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

    /// From when `record` is [`Standing::Expired`] (ms since the Unix epoch), `None` when
    /// never: the end of its lock, else the end of its window or of its delay, whichever
    /// comes last.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    fn expires_ms(&self, record: Record) -> Option<u64> {
        if record.failures >= self.lock_after {
            return self.lock_duration.map(|d| record.last_ms.saturating_add(duration_ms(d)));
        }
        let window = record.last_ms.saturating_add(duration_ms(self.window?));
        Some(match self.standing(record, record.last_ms) {
            Standing::Delayed(until) => window.max(until),
            _ => window,
        })
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

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The length of the salt account ids are derived with, in bytes.
const SALT_BYTES: usize = 32;

/// A fresh salt (random bytes from the system) and the text every backend stores it as:
/// its bytes in lower-case hex. The one home of the salt's format.
pub(crate) fn new_salt() -> Result<(Vec<u8>, String), AuthError> {
    let mut salt = vec![0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|e| AuthError::Random { source: Box::new(e) })?;
    let text = hex(&salt);
    Ok((salt, text))
}

/// A stored salt's bytes, `None` unless `text` is [`SALT_BYTES`] bytes in hex.
pub(crate) fn parse_salt(text: &str) -> Option<Vec<u8>> {
    if text.len() != 2 * SALT_BYTES {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

/// The longest source kept as given; a longer one is kept as `sha256:<hex of its hash>`, so
/// a caller's oversized key cannot grow a backend's records. So is one holding a NUL
/// character, which PostgreSQL's text cannot hold: every store keys it alike.
const MAX_SOURCE_KEY_BYTES: usize = 128;

/// The ids of a store's records, derived from its throttle backend's salt
/// ([`ThrottleBackend::salt`]).
#[derive(Debug)]
pub(crate) struct Ids {
    salt: Vec<u8>,
}

impl Ids {
    pub(crate) fn new(salt: Vec<u8>) -> Self {
        Self { salt }
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
    pub(crate) fn account(&self, material: &[u8]) -> ThrottleKey {
        let digest = self.digest(&[material]);
        ThrottleKey { scope: KeyScope::Account, shard: digest[0], id: hex(&digest) }
    }

    /// A source's key: the source as given, in the shard of SHA-256(salt, `s:`, source), so
    /// sources spread over the shards like accounts. A long source, or one holding a control
    /// character, is kept as `sha256:<hex>` instead: every backend can store it as text (a
    /// PostgreSQL `TEXT` refuses NUL) and a log line or file never carries its raw bytes.
    pub(crate) fn source(&self, source: &str) -> ThrottleKey {
        let id = if source.len() <= MAX_SOURCE_KEY_BYTES && !source.chars().any(char::is_control) {
            source.to_owned()
        } else {
            format!("sha256:{}", hex(&Sha256::digest(source.as_bytes())))
        };
        ThrottleKey { scope: KeyScope::Source, shard: self.digest(&[b"s:", id.as_bytes()])[0], id }
    }
}

/// When `record` of `scope` expires under `policy` (ms since the Unix epoch): from then on
/// it is forgotten, as if it did not exist. `None`: never (a lock until an operator unlocks
/// it). A database backend keeps this in its `expires_ms` column and deletes the rows past it.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn forget_after_ms(
    policy: &ThrottlePolicy,
    scope: KeyScope,
    record: ThrottleRecord,
) -> Option<u64> {
    let rule = match scope {
        KeyScope::Account => policy.account_rule(),
        KeyScope::Source => policy.source_rule(),
    };
    rule.expires_ms(record)
}

/// An attempt counted by [`reserve`]: what the outcome needs to settle it.
#[derive(Debug)]
pub(crate) struct Reservation {
    account: ThrottleKey,
    source: Option<ThrottleKey>,
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
    /// name by (the same id its record is found by).
    pub(crate) fn account_label(&self) -> &str {
        self.account.id.get(..LABEL_HEX).unwrap_or(&self.account.id)
    }

    fn keys(&self) -> Vec<ThrottleKey> {
        std::iter::once(self.account.clone()).chain(self.source.clone()).collect()
    }
}

/// How many hex digits of an account's salted id name an unknown name in events (48 bits:
/// enough to tell names apart in a log, too few to test guesses of a name against).
const LABEL_HEX: usize = 12;

/// The label [`Reservation::account_label`] gives, for the account `material` (see
/// [`account_material`]) in `backend`; `None` when it has no salt (nothing was ever
/// counted) or it is unusable.
pub(crate) fn account_label(backend: &dyn ThrottleBackend, material: &[u8]) -> Option<String> {
    let ids = Ids::new(backend.salt(false).ok().flatten()?);
    let id = ids.account(material).id;
    Some(id.get(..LABEL_HEX).unwrap_or(&id).to_owned())
}

/// Checks the account (`material`, see [`account_material`]) and the source; refuses the
/// attempt (counting nothing) when either is delayed or locked, else counts it as a failure
/// of both and returns the reservation. One atomic update of at most two records
/// ([`ThrottleBackend::update`]), whatever the number of records.
pub(crate) fn reserve(
    backend: &dyn ThrottleBackend,
    policy: &ThrottlePolicy,
    material: &[u8],
    source: Option<&str>,
    now: SystemTime,
) -> Result<Reservation, AuthError> {
    let now_ms = millis(now);
    let (account_rule, source_rule) = (policy.account_rule(), policy.source_rule());
    let ids = Ids::new(backend.salt(true)?.ok_or_else(|| no_salt(backend))?);
    let account = ids.account(material);
    let source = source.map(|s| ids.source(s));
    let keys: Vec<ThrottleKey> = std::iter::once(account.clone()).chain(source.clone()).collect();
    let mut reservation = None;
    let context = UpdateContext { policy, now_ms };
    backend.update(&keys, context, &mut |records| {
        let record = records.first().copied().flatten();
        let source_record = records.get(1).copied().flatten();
        let account_standing = record.map_or(Standing::Open, |r| account_rule.standing(r, now_ms));
        let source_standing =
            source_record.map_or(Standing::Open, |r| source_rule.standing(r, now_ms));
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
        records[0] = Some(counted);
        let source_counted = source.as_ref().map(|_| source_rule.fail(source_record, now_ms));
        if let (Some(slot), Some(counted)) = (records.get_mut(1), source_counted) {
            *slot = Some(counted);
        }
        let source_failures = source_counted.map(|r| r.failures);
        reservation = Some(Reservation {
            account: account.clone(),
            source: source.clone(),
            previous,
            account_failures: counted.failures,
            locks_account: counted.failures == policy.lock_after,
            source_failures,
            locks_source: source_failures == Some(policy.source_lock_after),
            account_before: record,
            account_counted: counted,
            source_before: source_record,
            source_counted,
        });
        Ok(true)
    })?;
    // The update ran the closure, which set it, or returned its error.
    reservation.ok_or_else(|| no_salt(backend))
}

/// A backend that broke its contract (no salt after creating one, an update that never ran):
/// its state is unusable.
fn no_salt(backend: &dyn ThrottleBackend) -> AuthError {
    AuthError::UnusableThrottleState {
        path: backend.location().into(),
        reason: "its salt or records could not be read back",
        source: None,
    }
}

/// A success: the account's record is cleared; the source keeps its failures, less the one
/// this attempt was counted as (a success is not a failure, but it must not clear the
/// source: a guesser holding one valid account would clear its own source with it).
pub(crate) fn succeed(
    backend: &dyn ThrottleBackend,
    policy: &ThrottlePolicy,
    reservation: &Reservation,
    now: SystemTime,
) -> Result<(), AuthError> {
    let context = UpdateContext { policy, now_ms: millis(now) };
    backend.update(&reservation.keys(), context, &mut |records| {
        records[0] = None;
        if let Some(Some(record)) = records.get_mut(1) {
            record.failures = record.failures.saturating_sub(1);
            if record.failures == 0 {
                records[1] = None;
            }
        }
        Ok(true)
    })
}

/// An attempt that ended in an operational error (the users unreadable, a pepper missing,
/// Argon2 failing), not in a verdict on the password: it is taken back off the account and,
/// unless `keep_source`, off the source. A record nobody else has counted on since is
/// restored as it was before; otherwise only this attempt's failure is taken off (earlier
/// failures stay).
pub(crate) fn release(
    backend: &dyn ThrottleBackend,
    policy: &ThrottlePolicy,
    reservation: &Reservation,
    keep_source: bool,
    now: SystemTime,
) -> Result<(), AuthError> {
    let context = UpdateContext { policy, now_ms: millis(now) };
    backend.update(&reservation.keys(), context, &mut |records| {
        take_back(&mut records[0], reservation.account_counted, reservation.account_before);
        if let (Some(slot), Some(counted), false) =
            (records.get_mut(1), reservation.source_counted, keep_source)
        {
            take_back(slot, counted, reservation.source_before);
        }
        Ok(true)
    })
}

/// Takes one counted failure back off `slot`: the record as it was `before` when it is
/// still the one counted, else one failure less.
fn take_back(slot: &mut Option<Record>, counted: Record, before: Option<Record>) {
    let Some(record) = *slot else { return };
    let restored = if record == counted {
        before
    } else {
        Some(Record { failures: record.failures.saturating_sub(1), last_ms: record.last_ms })
    };
    *slot = restored.filter(|r| r.failures > 0);
}

/// Clears the account's record (`material`) or, with `source`, that source's; returns
/// whether there was one. Creates and writes nothing when there was none.
pub(crate) fn clear(
    backend: &dyn ThrottleBackend,
    policy: &ThrottlePolicy,
    material: Option<&[u8]>,
    source: Option<&str>,
    now: SystemTime,
) -> Result<bool, AuthError> {
    let Some(salt) = backend.salt(false)? else { return Ok(false) };
    let ids = Ids::new(salt);
    let context = UpdateContext { policy, now_ms: millis(now) };
    let mut removed = false;
    let keys = material.map(|m| ids.account(m)).into_iter().chain(source.map(|s| ids.source(s)));
    for key in keys {
        backend.update(&[key], context, &mut |records| {
            let had = records[0].take().is_some();
            removed |= had;
            Ok(had)
        })?;
    }
    Ok(removed)
}

/// The account's record and standing now, read without the lock (a snapshot).
pub(crate) fn status(
    backend: &dyn ThrottleBackend,
    policy: &ThrottlePolicy,
    material: &[u8],
    now: SystemTime,
) -> Result<ThrottleStatus, AuthError> {
    let now_ms = millis(now);
    let open = ThrottleStatus { failures: 0, state: ThrottleState::Open };
    let Some(salt) = backend.salt(false)? else { return Ok(open) };
    let key = Ids::new(salt).account(material);
    let Some(record) = backend.read(&key)? else { return Ok(open) };
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
    fn records_spread_over_the_shards_and_long_sources_are_hashed() {
        let folder = Ids::new(vec![7; 32]);
        let mut seen = std::collections::HashSet::new();
        for i in 0..4096 {
            seen.insert(folder.account(format!("k:user{i}").as_bytes()).shard);
            seen.insert(folder.source(&format!("10.0.{}.{}", i / 256, i % 256)).shard);
        }
        assert_eq!(seen.len(), 256);
        let long = "x".repeat(MAX_SOURCE_KEY_BYTES + 1);
        let key = folder.source(&long);
        assert!(key.id.starts_with("sha256:") && key.id.len() == 7 + 64, "{}", key.id);
        assert_eq!(folder.source("10.0.0.1").id, "10.0.0.1");
    }

    /// Issue 14 review, point 4: a source with a control character (NUL, which a PostgreSQL
    /// `TEXT` refuses, a newline, an escape) is kept hashed, like a long one, in every backend.
    #[test]
    fn sources_with_control_characters_are_hashed() {
        let folder = Ids::new(vec![7; 32]);
        for source in ["10.0\0.1", "a\nb", "\u{1b}[31m", "x\u{85}y"] {
            let key = folder.source(source);
            let expected = format!("sha256:{}", hex(&Sha256::digest(source.as_bytes())));
            assert_eq!(key.id, expected, "{source:?}");
        }
        assert_eq!(folder.source("caf\u{e9} 10.0.0.1").id, "caf\u{e9} 10.0.0.1");
    }

    /// Decision 3 of issue 14: `forget_after_ms` is the first time at which the rules
    /// forget a record (`standing` is `Expired` from then on, and not a millisecond
    /// earlier), `None` for a lock until an operator unlocks it.
    #[test]
    fn a_salt_is_stored_as_32_bytes_of_hex_by_every_backend() {
        let (salt, text) = new_salt().unwrap();
        assert_eq!((salt.len(), text.len()), (32, 64));
        assert_eq!(parse_salt(&text), Some(salt));
        assert_eq!(parse_salt(&text.to_uppercase()).map(|s| s.len()), Some(32));
        for bad in ["", "00", &text[..62], &format!("{text}00"), &format!("g{}", &text[1..])] {
            assert_eq!(parse_salt(bad), None, "{bad:?}");
        }
        assert_ne!(new_salt().unwrap().1, text, "two salts alike");
    }

    #[test]
    fn forget_after_ms_is_when_the_rules_forget_a_record() {
        let policy = ThrottlePolicy::default();
        let until_unlocked = ThrottlePolicy::default().lock_duration(None);
        let long_delay = ThrottlePolicy::default()
            .lock_duration(None)
            .max_delay(Duration::from_secs(200_000))
            .base_delay(Duration::from_secs(200_000));
        let last = at(1000);
        let cases = [
            // An open source: its window (1 h).
            (&policy, KeyScope::Source, 3, Some(last + at(3600))),
            // A delayed source (21 failures, 2 s) whose window is longer: the window.
            (&policy, KeyScope::Source, 21, Some(last + at(3600))),
            // A locked source: its lock (1 h).
            (&policy, KeyScope::Source, 100, Some(last + at(3600))),
            // An account past its free failures: its idle time (24 h).
            (&policy, KeyScope::Account, 6, Some(last + at(86_400))),
            (&until_unlocked, KeyScope::Account, 6, Some(last + at(86_400))),
            // A delay longer than the idle time: the end of the delay.
            (&long_delay, KeyScope::Account, 6, Some(last + at(200_000))),
            // A lock of 24 h, and one until unlocked: never.
            (&policy, KeyScope::Account, 100, Some(last + at(86_400))),
            (&until_unlocked, KeyScope::Account, 100, None),
        ];
        for (policy, scope, failures, expected) in cases {
            let record = Record { failures, last_ms: last };
            let forget = forget_after_ms(policy, scope, record);
            assert_eq!(forget, expected, "{scope:?} with {failures} failures");
            let rule = match scope {
                KeyScope::Account => policy.account_rule(),
                KeyScope::Source => policy.source_rule(),
            };
            match forget {
                Some(at_ms) => {
                    assert_eq!(rule.standing(record, at_ms), Standing::Expired);
                    assert_ne!(rule.standing(record, at_ms - 1), Standing::Expired);
                }
                None => assert_ne!(rule.standing(record, u64::MAX), Standing::Expired),
            }
        }
    }

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(time_of(951_782_400_000)), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(time_of(1_795_000_000_000)), "2026-11-18 11:06:40 UTC");
    }
}
