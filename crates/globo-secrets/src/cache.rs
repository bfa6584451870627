//! A cache any provider can be wrapped in: TTL, refresh-now, stale values during outages,
//! one backend call per name at a time.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::{SecretValue, SecretsError, SecretsProvider};

/// How long values live and how outages are bridged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// How long a fetched value is served without asking the backend (default 5 minutes).
    pub ttl: Duration,
    /// How long past its TTL a value may still be served while the backend is unreachable,
    /// times out or throttles (default 15 minutes). Not-found and access-denied are never
    /// bridged: they mean the secret was removed or revoked.
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
    /// The defaults with another TTL.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The defaults with another stale window.
    #[must_use]
    pub fn with_max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// The defaults with another wait after a transient failure.
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
    /// Set after a transient failure: serve the stale value without asking until then.
    quiet_until: Option<Instant>,
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
/// The cache holds one entry per name ever asked for; values are zeroized when dropped.
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

    /// The configuration in use.
    pub fn config(&self) -> CacheConfig {
        self.config
    }

    /// Fetches `name` from the backend now, whatever its age, and caches the result. A
    /// transient failure is returned as an error (the old value stays cached).
    pub async fn refresh_now(&self, name: &str) -> Result<SecretValue, SecretsError> {
        let slot = self.slot(name);
        let mut slot = slot.lock().await;
        self.fetch_into(&mut slot, name, false).await
    }

    /// Forgets the cached value of `name`, so the next get asks the backend.
    pub fn invalidate(&self, name: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.remove(name);
    }

    fn slot(&self, name: &str) -> Arc<Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(slots.entry(name.to_owned()).or_default())
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
                slot.quiet_until = None;
                Ok(value)
            }
            Err(error) if error.is_transient() => {
                let now = Instant::now();
                match (&slot.value, slot.fetched_at) {
                    (Some(value), Some(at))
                        if bridge_outage && now < at + self.config.ttl + self.config.max_stale =>
                    {
                        slot.quiet_until = Some(now + self.config.retry_after_failure);
                        Ok(value.clone())
                    }
                    _ => Err(error),
                }
            }
            Err(error) => {
                // Deleted, revoked or renamed: never serve the old value again.
                slot.value = None;
                slot.fetched_at = None;
                slot.quiet_until = None;
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
        let slot = self.slot(name);
        // Holding the slot's lock across the backend call is the single flight: concurrent
        // gets of this name wait here and then find the fresh value.
        let mut slot = slot.lock().await;
        let now = Instant::now();
        if let (Some(value), Some(at)) = (&slot.value, slot.fetched_at) {
            let fresh = now < at + self.config.ttl;
            let quiet = slot.quiet_until.is_some_and(|until| now < until)
                && now < at + self.config.ttl + self.config.max_stale;
            if fresh || quiet {
                return Ok(value.clone());
            }
        }
        self.fetch_into(&mut slot, name, true).await
    }
}
