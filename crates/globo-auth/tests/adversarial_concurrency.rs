//! Concurrency: many registrations at once, and registrations racing logins that rehash.
//!
//! Each thread uses its own `UserStore` (as separate processes would): the only coordination
//! is the lock file, an `flock` per open file, which excludes threads as it excludes processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier};

use globo_auth::{Profile, UserStore};
use secrecy::SecretString;

/// A password of its own for each user, which does not contain the name (the policy refuses
/// that): the name's bytes in hex, e.g. "user00" -> "the password of 757365723030".
fn password(name: &str) -> SecretString {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    SecretString::from(format!("the password of {hex}"))
}

fn users(path: &std::path::Path) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn sixty_four_concurrent_registrations_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let start = Arc::new(Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let (path, start) = (path.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                let store = UserStore::new(path).with_profile(Profile::TestOnlyInsecure);
                let name = format!("user{i:02}");
                start.wait();
                store.register(&name, &password(&name)).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stored = users(&path);
    assert_eq!(stored.len(), 64, "lost registrations: {:?}", stored.keys());
    let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
    for i in 0..64 {
        let name = format!("user{i:02}");
        assert!(!store.verify(&name, &password(&name)).unwrap().rehashed());
    }
}

#[test]
fn registrations_racing_rehashing_logins_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    // Old users, hashed with a weak profile.
    let weak = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
    let old: Vec<String> = (0..12).map(|i| format!("old{i:02}")).collect();
    for name in &old {
        weak.register(name, &password(name)).unwrap();
    }
    let new: Vec<String> = (0..24).map(|i| format!("new{i:02}")).collect();

    // Logins with the default profile (each rehashes its user) race new registrations.
    let start = Arc::new(Barrier::new(old.len() + new.len()));
    let mut threads = Vec::new();
    for name in old.clone() {
        let (path, start) = (path.clone(), Arc::clone(&start));
        threads.push(std::thread::spawn(move || {
            let store = UserStore::new(path);
            start.wait();
            let verified = store.verify(&name, &password(&name)).unwrap();
            assert!(verified.rehash_error().is_none(), "{:?}", verified.rehash_error());
            assert!(verified.rehashed(), "{name} was not rehashed");
        }));
    }
    for name in new.clone() {
        let (path, start) = (path.clone(), Arc::clone(&start));
        threads.push(std::thread::spawn(move || {
            let store = UserStore::new(path).with_profile(Profile::TestOnlyInsecure);
            start.wait();
            store.register(&name, &password(&name)).unwrap();
        }));
    }
    for t in threads {
        t.join().unwrap();
    }

    let stored = users(&path);
    assert_eq!(stored.len(), old.len() + new.len(), "{:?}", stored.keys());
    let default = Profile::default().params();
    let upgraded = format!(
        "$argon2id$v=19$m={},t={},p={}$",
        default.memory_kib(),
        default.iterations(),
        default.lanes()
    );
    for name in &old {
        let hash = stored[name].as_str().unwrap();
        assert!(hash.starts_with(&upgraded), "{name} not upgraded: {hash}");
    }
    for name in &new {
        assert!(stored[name].as_str().unwrap().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
    }
    // Every password still verifies, and no upgraded hash is rehashed again.
    let store = UserStore::new(&path);
    for name in &old {
        assert!(!store.verify(name, &password(name)).unwrap().rehashed());
    }
    let weak = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
    for name in &new {
        assert!(!weak.verify(name, &password(name)).unwrap().rehashed());
    }
}
