//! Shared by the integration tests that check security events (tests/pepper.rs,
//! tests/throttle.rs), included with `#[path]`: the packaged tests need nothing outside the crate.

use std::sync::{Arc, Mutex};

/// Security events as JSON lines (their fields), captured while `run` runs on this thread.
pub(crate) fn events(run: impl FnOnce()) -> Vec<serde_json::Value> {
    #[derive(Clone)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer(Arc::new(Mutex::new(Vec::new())));
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .without_time()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    let bytes = buffer.0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|event| event["target"] == globo_auth::SECURITY_EVENTS_TARGET)
        .map(|event| event["fields"].clone())
        .collect()
}
