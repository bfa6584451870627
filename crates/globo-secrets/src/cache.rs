//! A cache any provider can be wrapped in: TTL, refresh-now, stale values during outages,
//! one backend call per name at a time.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::value::check_name;
use crate::{SecretValue, SecretsError, SecretsProvider};

/// How long values live and how outages are bridged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// How long a fetched value is served without asking the backend (default 5 minutes).
    pub ttl: Duration,
    /// How long past its TTL a value may still be served while the backend is unreachable,
    /// times out or throttles (default 15 minutes): the errors
    /// [`SecretsError::is_transient`] marks. Any other error (not found, access denied,
    /// deleted, a malformed answer) is never bridged and drops the cached value, since it may
    /// mean the secret was removed or revoked.
    pub max_stale: Duration,
    /// After a transient failure, how long to serve the stale value before asking the backend
    /// again (default 30 seconds), so an outage does not make every `get` wait for a timeout.
    pub retry_after_failure: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            max_stale: Duration::from_secs(900),
            retry_after_failure: Duration::from_secs(30),
        }
    }
}

impl CacheConfig {
    /// This configuration with another TTL.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// This configuration with another stale window.
    #[must_use]
    pub fn with_max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// This configuration with another wait after a transient failure.
    #[must_use]
    pub fn with_retry_after_failure(mut self, wait: Duration) -> Self {
        self.retry_after_failure = wait;
        self
    }
}

#[derive(Default)]
struct Slot {
    value: Option<SecretValue>,
    fetched_at: Option<Instant>,
    /// Set at a transient failure: serve the stale value without asking the backend for
    /// [`CacheConfig::retry_after_failure`] from then.
    failed_at: Option<Instant>,
}

/// Wraps a provider with a time-to-live cache (the shape of the AWS Secrets Manager caching
/// agent: TTL, `refresh_now`, stale values on transient errors).
///
/// - A value is fetched at most once per [`CacheConfig::ttl`].
/// - Concurrent gets of the same name wait for one backend call (single flight); different
///   names do not wait for each other.
/// - When the backend is unreachable, times out or throttles, the last good value is served
///   for at most [`CacheConfig::max_stale`] past its TTL; after that the error is returned.
/// - Time is `tokio::time`, so tests can drive it with `tokio::time::pause`.
///
/// The cache holds one entry per valid name that has had a value; values are zeroized when
/// dropped. Durations of any size work (`Duration::MAX` means "never expires").
pub struct CachingProvider {
    inner: Arc<dyn SecretsProvider>,
    config: CacheConfig,
    slots: SyncMutex<HashMap<String, Arc<Mutex<Slot>>>>,
}

impl CachingProvider {
    /// Caches `inner` with the default configuration (TTL 5 minutes).
    pub fn new(inner: Arc<dyn SecretsProvider>) -> Self {
        Self::with_config(inner, CacheConfig::default())
    }

    /// Caches `inner` with `config`.
    pub fn with_config(inner: Arc<dyn SecretsProvider>, config: CacheConfig) -> Self {
        Self { inner, config, slots: SyncMutex::new(HashMap::new()) }
    }

    /// How many names the cache holds an entry for (a value, or a fetch in flight).
    pub fn cached_names(&self) -> usize {
        self.slots().len()
    }

    /// The configuration in use.
    pub fn config(&self) -> CacheConfig {
        self.config
    }

    /// Fetches `name` from the backend now, whatever its age, and caches the result. A
    /// transient failure is returned as an error (the old value stays cached).
    pub async fn refresh_now(&self, name: &str) -> Result<SecretValue, SecretsError> {
        let slot = self.slot(name)?;
        let mut held = slot.lock().await;
        let result = self.fetch_into(&mut held, name, false).await;
        self.forget_if_empty(name, &slot, &held);
        result
    }

    /// Forgets the cached value of `name`, so the next get asks the backend. Waits for a
    /// fetch of `name` in flight, so that single flight holds across it.
    pub async fn invalidate(&self, name: &str) {
        let slot = self.slots().get(name).map(Arc::clone);
        if let Some(slot) = slot {
            *slot.lock().await = Slot::default();
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Mutex<Slot>>>> {
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn slot(&self, name: &str) -> Result<Arc<Mutex<Slot>>, SecretsError> {
        // Invalid names never get a slot, so callers cannot grow the map with junk.
        check_name(name)?;
        Ok(Arc::clone(self.slots().entry(name.to_owned()).or_default()))
    }

    /// Drops `name`'s slot if it holds no value, so failed lookups leave nothing behind.
    fn forget_if_empty(&self, name: &str, slot: &Arc<Mutex<Slot>>, held: &Slot) {
        if held.value.is_none() {
            let mut slots = self.slots();
            if slots.get(name).is_some_and(|current| Arc::ptr_eq(current, slot)) {
                slots.remove(name);
            }
        }
    }

    /// Whether a value fetched at `at` may still be served during an outage at `now`.
    fn within_stale_window(&self, at: Instant, now: Instant) -> bool {
        now.saturating_duration_since(at) < self.config.ttl.saturating_add(self.config.max_stale)
    }

    async fn fetch_into(
        &self,
        slot: &mut Slot,
        name: &str,
        bridge_outage: bool,
    ) -> Result<SecretValue, SecretsError> {
        match self.inner.get_value(name).await {
            Ok(value) => {
                slot.value = Some(value.clone());
                slot.fetched_at = Some(Instant::now());
                slot.failed_at = None;
                Ok(value)
            }
            Err(error) if error.is_transient() => {
                let now = Instant::now();
                match (&slot.value, slot.fetched_at) {
                    (Some(value), Some(at))
                        if bridge_outage && self.within_stale_window(at, now) =>
                    {
                        slot.failed_at = Some(now);
                        Ok(value.clone())
                    }
                    _ => Err(error),
                }
            }
            Err(error) => {
                // Deleted, revoked or renamed: never serve the old value again.
                *slot = Slot::default();
                Err(error)
            }
        }
    }
}

impl fmt::Debug for CachingProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingProvider")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SecretsProvider for CachingProvider {
    async fn get_value(&self, name: &str) -> Result<SecretValue, SecretsError> {
        let slot = self.slot(name)?;
        // Holding the slot's lock across the backend call is the single flight: concurrent
        // gets of this name wait here and then find the fresh value.
        let mut held = slot.lock().await;
        let now = Instant::now();
        if let (Some(value), Some(at)) = (&held.value, held.fetched_at) {
            let fresh = now.saturating_duration_since(at) < self.config.ttl;
            let quiet = held.failed_at.is_some_and(|failed| {
                now.saturating_duration_since(failed) < self.config.retry_after_failure
            }) && self.within_stale_window(at, now);
            if fresh || quiet {
                return Ok(value.clone());
            }
        }
        let result = self.fetch_into(&mut held, name, true).await;
        self.forget_if_empty(name, &slot, &held);
        result
    }
}
