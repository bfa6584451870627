//! The caching layer, on a scripted backend and a paused tokio clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use globo_secrets::{
    CacheConfig, CachingProvider, InMemoryProvider, SecretValue, SecretsError, SecretsProvider,
};
use secrecy::ExposeSecret;

/// What the scripted backend does on the next call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    Serve,
    Down,
    Gone,
}

/// A backend that counts calls, takes 50 ms per call and can be switched to fail.
#[derive(Debug)]
struct Scripted {
    store: InMemoryProvider,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    behaviour: Mutex<Behaviour>,
}

impl Scripted {
    fn new(value: &str) -> Arc<Self> {
        Arc::new(Self {
            store: InMemoryProvider::new().with("API_KEY", value),
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            behaviour: Mutex::new(Behaviour::Serve),
        })
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }
}

#[async_trait]
impl SecretsProvider for Scripted {
    async fn get_value(&self, name: &str) -> Result<SecretValue, SecretsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let behaviour = *self.behaviour.lock().unwrap();
        match behaviour {
            Behaviour::Serve => self.store.get_value(name).await,
            Behaviour::Down => Err(unavailable(name)),
            Behaviour::Gone => self.store.get_value("NO_SUCH_SECRET").await,
        }
    }
}

/// A transient failure, as an AWS provider reports an unreachable endpoint (the real thing is
/// covered by the moto tests; here only its kind matters).
fn unavailable(name: &str) -> SecretsError {
    SecretsError::BackendUnavailable {
        operation: globo_secrets::Operation::Fetch,
        name: name.to_owned(),
        endpoint: "http://127.0.0.1:9".into(),
        reason: "endpoint unreachable or not answering".into(),
        source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
    }
}

fn text(value: &SecretValue) -> String {
    value.as_text().unwrap().expose_secret().to_owned()
}

#[tokio::test(start_paused = true)]
async fn values_are_cached_for_the_ttl() {
    let backend = Scripted::new("v1");
    let cache = CachingProvider::new(backend.clone());
    assert_eq!(cache.config().ttl, Duration::from_secs(300));
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v1");
    backend.store.insert("API_KEY", "v2");
    tokio::time::advance(Duration::from_secs(299)).await;
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v1");
    assert_eq!(backend.calls(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v2");
    assert_eq!(backend.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn refresh_now_and_invalidate_bypass_the_ttl() {
    let backend = Scripted::new("v1");
    let cache = CachingProvider::new(backend.clone());
    cache.get("API_KEY").await.unwrap();
    backend.store.insert("API_KEY", "v2");
    assert_eq!(text(&cache.refresh_now("API_KEY").await.unwrap()), "v2");
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v2");
    assert_eq!(backend.calls(), 2);
    backend.store.insert("API_KEY", "v3");
    cache.invalidate("API_KEY").await;
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v3");
    assert_eq!(backend.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn concurrent_gets_make_one_backend_call() {
    let backend = Scripted::new("v1");
    let cache = Arc::new(CachingProvider::new(backend.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let cache = Arc::clone(&cache);
        tasks
            .spawn(async move { cache.get("API_KEY").await.map(|v| v.expose_secret().to_owned()) });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap().unwrap(), "v1");
    }
    assert_eq!(backend.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn stale_values_bridge_an_outage_for_a_bounded_time() {
    let backend = Scripted::new("v1");
    let config = CacheConfig::default()
        .with_ttl(Duration::from_secs(60))
        .with_max_stale(Duration::from_secs(600))
        .with_retry_after_failure(Duration::from_secs(30));
    let cache = CachingProvider::with_config(backend.clone(), config);
    cache.get("API_KEY").await.unwrap();
    backend.set(Behaviour::Down);

    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v1");
    assert_eq!(backend.calls(), 2);
    // During the quiet period the stale value is served without waiting for the backend.
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v1");
    assert_eq!(backend.calls(), 2);
    // After it, the backend is asked again (and the stale value still bridges).
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v1");
    assert_eq!(backend.calls(), 3);
    // refresh_now reports the outage instead of hiding it.
    assert!(cache.refresh_now("API_KEY").await.unwrap_err().is_transient());
    // Past TTL + max_stale the error comes through.
    tokio::time::advance(Duration::from_secs(600)).await;
    let error = cache.get("API_KEY").await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    // Recovery.
    backend.set(Behaviour::Serve);
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v1");
}

#[tokio::test(start_paused = true)]
async fn a_deleted_secret_is_never_served_from_cache() {
    let backend = Scripted::new("v1");
    let cache = CachingProvider::new(backend.clone());
    cache.get("API_KEY").await.unwrap();
    backend.set(Behaviour::Gone);
    tokio::time::advance(Duration::from_secs(301)).await;
    assert!(cache.get("API_KEY").await.unwrap_err().is_not_found());
    // Even when the backend then goes down, the removed value does not come back.
    backend.set(Behaviour::Down);
    assert!(cache.get("API_KEY").await.unwrap_err().is_transient());
}

#[tokio::test(start_paused = true)]
async fn names_are_cached_separately_and_errors_are_not_cached() {
    let backend = Scripted::new("v1");
    backend.store.insert("OTHER", vec![0u8, 159, 146, 150]);
    let cache: Arc<dyn SecretsProvider> = Arc::new(CachingProvider::new(backend.clone()));
    assert!(cache.get("MISSING").await.unwrap_err().is_not_found());
    assert!(cache.get("MISSING").await.unwrap_err().is_not_found());
    assert_eq!(backend.calls(), 2);
    assert!(matches!(cache.get("OTHER").await, Err(SecretsError::NotText { .. })));
    assert_eq!(cache.get_bytes("OTHER").await.unwrap().expose_secret(), &[0u8, 159, 146, 150]);
    assert_eq!(backend.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn durations_of_any_size_never_panic() {
    let backend = Scripted::new("v1");
    let config = CacheConfig::default()
        .with_ttl(Duration::MAX)
        .with_max_stale(Duration::MAX)
        .with_retry_after_failure(Duration::MAX);
    let cache = CachingProvider::with_config(backend.clone(), config);
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v1");
    tokio::time::advance(Duration::from_secs(365 * 24 * 3600)).await;
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v1");
    assert_eq!(backend.calls(), 1, "Duration::MAX means never expires");
    backend.set(Behaviour::Down);
    assert!(cache.refresh_now("API_KEY").await.is_err());
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v1");
}

#[tokio::test(start_paused = true)]
async fn invalid_and_missing_names_leave_no_entry_behind() {
    let backend = Scripted::new("v1");
    let cache = CachingProvider::new(backend.clone());
    assert!(matches!(cache.get("").await, Err(SecretsError::InvalidName { .. })));
    assert_eq!(backend.calls(), 0, "an invalid name never reaches the backend");
    for i in 0..100 {
        assert!(cache.get(&format!("MISSING_{i}")).await.is_err());
    }
    assert_eq!(cache.cached_names(), 0);
    cache.get("API_KEY").await.unwrap();
    assert_eq!(cache.cached_names(), 1);
    // A value that disappears from the backend takes its entry with it.
    backend.set(Behaviour::Gone);
    assert!(cache.refresh_now("API_KEY").await.is_err());
    assert_eq!(cache.cached_names(), 0);
}

#[tokio::test(start_paused = true)]
async fn invalidate_during_a_fetch_keeps_one_call_in_flight() {
    let backend = Scripted::new("v1");
    let cache = Arc::new(CachingProvider::new(backend.clone()));
    let first = tokio::spawn({
        let cache = Arc::clone(&cache);
        async move { cache.get("API_KEY").await.map(|v| v.expose_secret().to_owned()) }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    cache.invalidate("API_KEY").await;
    let second = cache.get("API_KEY").await.unwrap();
    assert_eq!(first.await.unwrap().unwrap(), "v1");
    assert_eq!(second.expose_secret(), "v1");
    assert_eq!(backend.calls(), 2, "invalidate makes the next get ask again");
    assert_eq!(backend.most_in_flight.load(Ordering::SeqCst), 1, "never two calls at once");
}
