//! Users-file loading through `UserStore` over a temporary file: arbitrary bytes as
//! `users.json`. Never a panic; an unknown user is always `InvalidCredentials` when the file
//! loads; registering into a file that loads keeps every existing entry unchanged, and is
//! refused as taken exactly when a stored name has the new name's RFC 8265 comparison key.
#![no_main]

#[path = "common.rs"]
mod common;

use globo_auth::username::comparison_key;
use globo_auth::{AuthError, Profile, UserStore};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

const NEW_USER: &str = "fuzz-new-user";

fuzz_target!(|data: &[u8]| {
    let path = common::scratch("users.json");
    std::fs::write(&path, data).expect("write the users file");
    // Throttling off: its state folder outlives each input (one scratch path), so the
    // unknown-user check below would be refused as throttled after a few inputs (throttling
    // is tested in globo-auth's tests/throttle.rs, its unusable state files included).
    let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure).without_throttle();
    let password = SecretString::from("fuzzing password 1");

    let Ok(names) = store.usernames() else {
        // A file that does not load is refused everywhere and never rewritten.
        assert!(store.register(NEW_USER, &password).is_err());
        assert_eq!(std::fs::read(&path).expect("read"), data, "a corrupt users file changed");
        return;
    };
    let before: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(data).expect("the store loaded it, so it is a JSON object");

    // Stored names are compared by their comparison key (NFC, width, invisible characters).
    if !names.iter().any(|n| comparison_key(n) == "nobody at all") {
        assert!(matches!(
            store.verify("nobody at all", &password),
            Err(AuthError::InvalidCredentials)
        ));
    }
    if let Some(first) = names.first() {
        let cheap = before.get(first).and_then(|v| v.as_str()).is_some_and(common::cheap_phc);
        if cheap {
            let _ = store.verify(first, &password);
        }
    }

    match store.register(NEW_USER, &password) {
        Ok(()) => {
            let after: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("valid JSON");
            for (name, value) in &before {
                assert_eq!(after.get(name), Some(value), "register changed or lost '{name}'");
            }
            assert!(after.contains_key(NEW_USER));
            assert_eq!(after.len(), before.len() + 1);
        }
        Err(AuthError::UserExists { .. }) => {
            assert!(before.keys().any(|n| comparison_key(n) == NEW_USER));
        }
        // A file with peppered records never gets an unpeppered one from a store without
        // the pepper.
        Err(AuthError::PepperRequired { .. }) => {
            assert!(before.values().any(|v| v.as_str().is_some_and(|h| h.contains(",keyid="))));
        }
        Err(e) => panic!("register into a loadable file failed: {e}"),
    }
});
