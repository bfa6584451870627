//! The same behavioural suite on the three users stores (issue 14, "Must show"): the JSON
//! users file, SQLite and PostgreSQL. Each behaviour below runs once per store
//! (`json::x`, `sqlite::x`, `postgres::x`) through the public API only, with the assertions
//! of the JSON-only tests it comes from (tests/store.rs, usernames.rs, lifecycle.rs,
//! throttle.rs, pepper.rs). PostgreSQL comes from `scripts/postgres` (scripts/test starts
//! it); with `CI=true` a missing server fails, locally its tests print SKIPPED.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/events.rs"]
mod events_support;
#[macro_use]
#[path = "support/stores.rs"]
mod fixture;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use events_support::events;
use fixture::{FakeClock, Fixture, Kind};
use globo_auth::{
    AuthError, AuthErrorKind, MAX_LOCK_AFTER, Peppers, Profile, ThrottlePolicy, ThrottleScope,
    ThrottleState, ThrottleStatus, UserStore, copy_users, hash_password, verify_password,
};
use secrecy::SecretString;
use serde_json::json;

const TEST: Profile = Profile::TestOnlyInsecure;
const ALICE_PW: &str = "correct horse battery staple";
const BOB_PW: &str = "builder's own long passphrase";
const CAROL_PW: &str = "christmas songs at night";
const NEW_PW: &str = "a brand new passphrase";
const WRONG: &str = "not the password at all";
const NFC: &str = "jos\u{e9}";
const NFD: &str = "jose\u{301}";

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

/// The store value most tests use: the fast profile, default throttling.
fn test_store(fx: &Fixture) -> UserStore {
    fx.store().with_profile(TEST)
}

/// A store value with `policy` and the fake clock.
fn throttled_store(fx: &Fixture, policy: ThrottlePolicy, clock: &FakeClock) -> UserStore {
    test_store(fx).with_throttle(policy).unwrap().with_clock(clock.source())
}

/// alice (password [`ALICE_PW`]), bob and carol, registered in that order.
fn three_users(fx: &Fixture) -> UserStore {
    let store = test_store(fx);
    store.register("alice", &secret(ALICE_PW)).unwrap();
    store.register("bob", &secret(BOB_PW)).unwrap();
    store.register("carol", &secret(CAROL_PW)).unwrap();
    store
}

/// No delays: only the lock limit counts.
fn no_delays() -> ThrottlePolicy {
    ThrottlePolicy::default().free_failures(MAX_LOCK_AFTER).source_free_failures(MAX_LOCK_AFTER)
}

fn of(s: ThrottleStatus) -> (u32, ThrottleState) {
    (s.failures, s.state)
}

fn throttled(error: &AuthError) -> (ThrottleScope, Option<SystemTime>, bool) {
    match error {
        AuthError::Throttled { scope, until, locked } => (*scope, *until, *locked),
        other => panic!("expected Throttled, got {other:?}"),
    }
}

fn invalid(result: Result<globo_auth::Verified, AuthError>) -> bool {
    matches!(result, Err(AuthError::InvalidCredentials))
}

/// An `unknown:` label: 12 hex digits.
fn is_unknown_label(label: &str) -> bool {
    label
        .strip_prefix("unknown:")
        .is_some_and(|hex| hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

const KEY_1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn peppers(text: &str) -> Peppers {
    Peppers::parse(&secret(text)).unwrap()
}
/// Version 1 alone.
fn one() -> Peppers {
    peppers(KEY_1)
}
/// Version 2 (current) and version 1.
fn two_then_one() -> Peppers {
    peppers(&format!("{KEY_2},{KEY_1}"))
}
fn id1() -> String {
    one().current_version().to_owned()
}
fn id2() -> String {
    two_then_one().current_version().to_owned()
}

/// Verifies `hash` against stdin's password with argon2-cffi; prints a boolean.
const PY_VERIFY: &str = r#"
import sys, argon2, argon2.exceptions
password = sys.stdin.buffer.read().decode("utf-8")
try:
    print(argon2.PasswordHasher().verify(sys.argv[1], password))
except argon2.exceptions.VerifyMismatchError:
    print(False)
"#;

/// The security events of a fixed scenario, with the `unknown:` label replaced by
/// `unknown:<label>` (it is salted per store): registration, a login, failures up to a lock,
/// an unknown name, a refusal.
fn scenario_events(fx: &Fixture) -> Vec<serde_json::Value> {
    let clock = FakeClock::new();
    let policy = no_delays().lock_after(3).unwrap();
    let store = throttled_store(fx, policy, &clock);
    let events = events(|| {
        store.register("\u{ff41}lice", &secret(ALICE_PW)).unwrap();
        store.verify_from("alice", &secret(ALICE_PW), Some("192.0.2.1")).unwrap();
        for _ in 0..3 {
            assert!(invalid(store.verify_from("ａｌｉｃｅ", &secret(WRONG), Some("192.0.2.1"))));
        }
        let _ = store.verify_from("alice", &secret(ALICE_PW), Some("192.0.2.2")).unwrap_err();
        assert!(invalid(store.verify_from("zelda", &secret(WRONG), Some("192.0.2.3"))));
    });
    let text = serde_json::Value::from(events).to_string();
    assert!(!text.contains("zelda") && !text.contains(WRONG) && !text.contains(ALICE_PW), "{text}");
    let label = {
        let all: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        let fail = all.iter().rev().find(|e| e["source"] == "192.0.2.3").unwrap();
        fail["username"].as_str().unwrap().to_owned()
    };
    assert!(is_unknown_label(&label), "{label}");
    let refused = text.find("account:").map(|at| text[at..at + 20].to_owned()).unwrap();
    serde_json::from_str(
        &text.replace(&label, "unknown:<label>").replace(&refused, "account:<label>"),
    )
    .unwrap()
}

every_store! {
    // 1. Registration and verification.

    fn register_then_verify(fx) {
        let store = test_store(fx);
        // An empty store: everyone is unknown, and nothing is written.
        assert!(invalid(store.verify("alice", &secret(ALICE_PW))));
        assert!(store.usernames().unwrap().is_empty());
        store.register("alice", &secret(ALICE_PW)).unwrap();
        let record = fx.record("alice");
        assert!(record.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{record}");
        let verified = store.verify("alice", &secret(ALICE_PW)).unwrap();
        assert_eq!(verified.username(), "alice");
        assert!(!verified.rehashed());
        let wrong = store.verify("alice", &secret(WRONG)).unwrap_err();
        let unknown = store.verify("mallory", &secret(ALICE_PW)).unwrap_err();
        assert!(matches!(wrong, AuthError::InvalidCredentials));
        assert!(matches!(unknown, AuthError::InvalidCredentials));
        assert_eq!(wrong.to_string(), unknown.to_string());
        assert_eq!(wrong.to_string(), "invalid username or password");
        assert_eq!(store.usernames().unwrap(), ["alice"]);
        // Another store value (another process) sees the user.
        test_store(fx).verify("alice", &secret(ALICE_PW)).unwrap();
    }

    fn a_taken_or_look_alike_name_is_refused_and_the_stored_one_kept(fx) {
        let store = test_store(fx);
        store.register(NFC, &secret(ALICE_PW)).unwrap();
        store.register("\u{ff41}\u{ff4c}ice", &secret(BOB_PW)).unwrap();
        let before = fx.records();
        assert_eq!(before.keys().collect::<Vec<_>>(), [NFC, "alice"]);
        for (name, stored) in
            [(NFC, NFC), (NFD, NFC), ("ｊｏｓé", NFC), ("alice", "alice"), ("ａｌｉｃｅ", "alice")]
        {
            let err = store.register(name, &secret(CAROL_PW)).unwrap_err();
            assert!(
                matches!(&err, AuthError::UserExists { username } if username == stored),
                "{name}: {err}"
            );
        }
        assert_eq!(
            store.register("alice", &secret(CAROL_PW)).unwrap_err().to_string(),
            "user 'alice' already exists"
        );
        assert_eq!(fx.records(), before);
        // Any spelling that looks the same logs in, as the stored user.
        for (name, password, stored) in
            [(NFD, ALICE_PW, NFC), ("ｊｏｓé", ALICE_PW, NFC), ("ａｌｉｃｅ", BOB_PW, "alice")]
        {
            let verified = store.verify(name, &secret(password)).unwrap();
            assert_eq!(verified.username(), stored, "{name}");
        }
        assert!(invalid(store.verify(NFD, &secret(BOB_PW))));
    }

    fn a_lab_name_stored_in_nfd_logs_in_by_any_spelling_as_stored(fx) {
        let report = fx.seed(&json!({ NFD: hash_password(ALICE_PW, TEST).unwrap() }));
        assert_eq!(report.created, 1);
        assert_eq!(fx.records().keys().collect::<Vec<_>>(), [NFD]);
        let store = test_store(fx);
        for name in [NFD, NFC, "ｊｏｓé"] {
            assert_eq!(store.verify(name, &secret(ALICE_PW)).unwrap().username(), NFD, "{name:?}");
        }
        // The NFC spelling is the same user: it cannot be registered beside it.
        let err = store.register(NFC, &secret(BOB_PW)).unwrap_err();
        assert!(matches!(err, AuthError::UserExists { .. }), "{err}");
        assert_eq!(store.find(NFC).unwrap(), NFD);
    }

    // 2. Rehash on login.

    fn an_obsolete_hash_is_replaced_on_login_and_verifies_in_argon2_cffi(fx) {
        test_store(fx).register("alice", &secret(ALICE_PW)).unwrap();
        test_store(fx).register("bob", &secret(BOB_PW)).unwrap();
        let old = fx.record("alice");
        let bob = fx.record("bob");
        let store = fx.store().with_profile(Profile::OwaspMinimum);
        // A wrong password changes nothing.
        assert!(invalid(store.verify("alice", &secret(WRONG))));
        assert_eq!(fx.record("alice"), old);
        let verified = store.verify("alice", &secret(ALICE_PW)).unwrap();
        assert!(verified.rehashed());
        assert!(verified.rehash_error().is_none());
        let new = fx.record("alice");
        assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{new}");
        // Now current: no second rehash, the new hash still verifies, bob is untouched and
        // the order of the users is kept.
        assert!(!store.verify("alice", &secret(ALICE_PW)).unwrap().rehashed());
        assert_eq!(fx.record("alice"), new);
        assert_eq!(fx.record("bob"), bob);
        assert_eq!(store.usernames().unwrap(), ["alice", "bob"]);
        // The weak store still logs in on the upgraded record (never downgrades it).
        assert!(!test_store(fx).verify("alice", &secret(ALICE_PW)).unwrap().rehashed());
        assert_eq!(fx.record("alice"), new);
        if let Some(python) = globo_testkit::python(&["argon2"]) {
            let out = python.run_ok(PY_VERIFY, &[&new], ALICE_PW.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap().trim(), "True", "{new}");
            let out = python.run_ok(PY_VERIFY, &[&new], WRONG.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap().trim(), "False");
        }
    }

    fn a_hash_of_the_raw_password_logs_in_and_is_upgraded_to_nfkc(fx) {
        let raw = "ｗｏｎｄｅｒｌａｎｄ rabbit hole";
        let nfkc = "wonderland rabbit hole";
        fx.seed(&json!({ "alice": hash_password(raw, TEST).unwrap() }));
        let store = test_store(fx);
        // Before the upgrade only the bytes that were hashed match.
        assert!(invalid(store.verify("alice", &secret(nfkc))));
        let verified = store.verify("alice", &secret(raw)).unwrap();
        assert!(verified.rehashed() && verified.rehash_error().is_none());
        let hash = fx.record("alice");
        verify_password(nfkc, &hash).unwrap();
        assert!(verify_password(raw, &hash).is_err());
        for spelling in [raw, nfkc] {
            assert!(!store.verify("alice", &secret(spelling)).unwrap().rehashed(), "{spelling}");
        }
        assert_eq!(fx.record("alice"), hash);
        assert!(invalid(store.verify("alice", &secret("wonderland rabbit"))));
    }

    fn other_variants_are_upgraded_and_stronger_hashes_never_downgraded(fx) {
        fx.seed(&json!({
            "i19": "$argon2i$v=19$m=256,t=1,p=1$c29tZXNhbHQ$AJFIsNZTMKTAewB4+ETN1A",
            "id16": "$argon2i$m=256,t=2,p=1$c29tZXNhbHQ$/U3YPXYsSb3q9XxHvc0MLxur+GP960kN9j7emXX8zwY",
        }));
        let store = test_store(fx);
        for (name, upgraded) in
            [("i19", "$argon2id$v=19$m=256,t=1,p=1$"), ("id16", "$argon2id$v=19$m=256,t=2,p=1$")]
        {
            assert!(store.verify(name, &secret("password")).unwrap().rehashed(), "{name}");
            let new = fx.record(name);
            assert!(new.starts_with(upgraded), "{name}: {new}");
            assert!(!store.verify(name, &secret("password")).unwrap().rehashed(), "{name}");
        }
    }

    // 3. Unknown users: the dummy path works on any store.

    fn an_unknown_user_fails_like_a_wrong_password_whatever_the_stored_shapes(fx) {
        let store = test_store(fx).without_throttle();
        // No users at all: the dummy hash is the profile's.
        for password in [WRONG, "ｗｒｏｎｇ ｆｕｌｌｗｉｄｔｈ"] {
            assert!(invalid(store.verify("alice", &secret(password))));
        }
        // Every record of one foreign shape (Argon2i, m=256), and two unusable entries: the
        // most common shape is garbled, the dummy falls back to the usable or the profile.
        fx.seed(&json!({
            "g1": "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ",
            "g2": "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ",
            "i19": "$argon2i$v=19$m=256,t=1,p=1$c29tZXNhbHQ$AJFIsNZTMKTAewB4+ETN1A",
        }));
        // Throttling off: the point is the outcome of every attempt, not the count.
        for store in [test_store(fx), fx.store().with_profile(Profile::OwaspMinimum)] {
            let store = store.without_throttle();
            for password in [WRONG, "ｗｒｏｎｇ ｆｕｌｌｗｉｄｔｈ", "password"] {
                let result = store.verify("alice", &secret(password));
                assert!(
                    matches!(result, Err(AuthError::InvalidCredentials)),
                    "{password}: {result:?}"
                );
            }
            let long = "a".repeat(globo_auth::MAX_LOGIN_USERNAME_BYTES + 1);
            assert!(invalid(store.verify(&long, &secret("password"))));
            // An unusable entry is the administrator's problem, named.
            let err = store.verify("g1", &secret("password")).unwrap_err();
            assert!(
                matches!(&err, AuthError::BadEntry { username, store: location, .. } if username == "g1" && *location == store.location()),
                "{err}"
            );
        }
        let names_only: Vec<String> = fx.records().keys().cloned().collect();
        assert_eq!(names_only, ["g1", "g2", "i19"]);
    }

    /// Whatever bytes a name or a source holds, a login's outcome is the same on every
    /// store: PostgreSQL's text cannot hold NUL, the others can.
    fn any_name_or_source_gets_a_login_answer(fx) {
        three_users(fx);
        let clock = FakeClock::new();
        let store = throttled_store(
            fx,
            no_delays().lock_after(3).unwrap().source_lock_after(4).unwrap(),
            &clock,
        );
        for name in ["al\0ice", "\0", "alice\0", "\u{7f}\u{1}x"] {
            let result = store.verify(name, &secret(ALICE_PW));
            assert!(matches!(result, Err(AuthError::InvalidCredentials)), "{name:?}: {result:?}");
            assert!(matches!(store.find(name), Err(AuthError::NoSuchUser { .. })), "{name:?}");
        }
        assert_eq!(store.throttle_status("al\0ice").unwrap().failures, 1);
        let source = Some("192.0.2.1\0forged");
        store.verify_from("alice", &secret(ALICE_PW), source).unwrap();
        for _ in 0..3 {
            assert!(invalid(store.verify_from("bob", &secret(WRONG), source)));
        }
        assert!(invalid(store.verify_from("carol", &secret(WRONG), source)));
        let error = store.verify_from("alice", &secret(ALICE_PW), source).unwrap_err();
        assert_eq!(throttled(&error).0, ThrottleScope::Source);
        // Another source, the same but for the NUL and what follows, is not locked.
        store.verify_from("alice", &secret(ALICE_PW), Some("192.0.2.1")).unwrap();
        assert!(store.unlock_source("192.0.2.1\0forged").unwrap());
        // Names longer than the login bound are counted by their bytes, each apart.
        let long_a = "a".repeat(globo_auth::MAX_LOGIN_USERNAME_BYTES + 1);
        let long_b = format!("{long_a}b");
        for name in [&long_a, &long_a, &long_b] {
            assert!(invalid(store.verify(name, &secret(WRONG))));
        }
        assert_eq!(store.throttle_status(&long_a).unwrap().failures, 2);
        assert_eq!(store.throttle_status(&long_b).unwrap().failures, 1);
    }

    // 4. Pepper.

    fn a_peppered_store_writes_and_verifies_peppered_records(fx) {
        let store = test_store(fx).with_peppers(two_then_one());
        store.register("alice", &secret(ALICE_PW)).unwrap();
        let record = fx.record("alice");
        assert!(
            record.starts_with(&format!("$argon2id$v=19$m=8,t=1,p=1,keyid={}$", id2())),
            "{record}"
        );
        assert!(!store.verify("alice", &secret(ALICE_PW)).unwrap().rehashed());
        assert!(invalid(store.verify("alice", &secret(WRONG))));
        // Without the pepper, or with another version only: the version is unavailable.
        for other in [test_store(fx), test_store(fx).with_peppers(one())] {
            let err = other.verify("alice", &secret(ALICE_PW)).unwrap_err();
            assert!(
                matches!(&err, AuthError::PepperUnavailable { version } if *version == id2()),
                "{err}"
            );
            assert!(err.is_operational());
        }
        // A store without the pepper writes no record into a store that holds peppered ones.
        let before = fx.records();
        let bare = fx.store().with_profile(TEST).without_throttle();
        let required = |e: &AuthError| matches!(e, AuthError::PepperRequired { store } if *store == bare.location());
        let err = bare.register("carol", &secret(CAROL_PW)).unwrap_err();
        assert!(required(&err), "{err}");
        assert!(err.to_string().contains(bare.location()), "{err}");
        assert_eq!(fx.records(), before);
        assert_eq!(fx.record("alice"), record);
    }

    fn pepper_all_and_rotate_pepper_all_through_maintenance(fx) {
        fx.seed(&json!({
            "alice": hash_password(ALICE_PW, TEST).unwrap(),
            "bob": hash_password(BOB_PW, TEST).unwrap(),
        }));
        let lab = fx.records();
        // No peppered record yet: a store without the pepper registers.
        test_store(fx).register("carol", &secret(CAROL_PW)).unwrap();
        let guard = test_store(fx).maintenance().unwrap();
        let report = guard.pepper_all(&one()).unwrap();
        assert_eq!((report.changed, report.unchanged), (3, 0));
        let in_use = guard.pepper_versions_in_use().unwrap();
        assert_eq!(in_use.keys().cloned().collect::<Vec<_>>(), [id1()]);
        assert_eq!(in_use[&id1()], ["alice", "bob", "carol"]);
        drop(guard.into_store());
        let records = fx.records();
        for name in ["alice", "bob", "carol"] {
            let record = records[name].as_str().unwrap();
            assert!(record.contains(&format!(",keyid={}$", id1())), "{name}: {record}");
        }
        // Re-peppered, not rehashed: the lab's salt stays.
        let salt =
            |r: &serde_json::Value| r.as_str().unwrap().rsplit('$').nth(1).unwrap().to_owned();
        assert_eq!(salt(&records["alice"]), salt(&lab["alice"]));
        // Now the store holds peppered records: a store without the pepper writes none.
        let err = test_store(fx).register("dave", &secret(NEW_PW)).unwrap_err();
        assert!(matches!(err, AuthError::PepperRequired { .. }), "{err}");
        let v1 = test_store(fx).with_peppers(one());
        for (name, password) in [("alice", ALICE_PW), ("bob", BOB_PW), ("carol", CAROL_PW)] {
            assert!(!v1.verify(name, &secret(password)).unwrap().rehashed(), "{name}");
        }
        // Rotation to version 2: every record moves, a second run changes nothing.
        let guard = test_store(fx).maintenance().unwrap();
        let report = guard.rotate_pepper_all(&two_then_one()).unwrap();
        assert_eq!((report.changed, report.unchanged, report.unusable.len()), (3, 0, 0));
        assert_eq!(guard.rotate_pepper_all(&two_then_one()).unwrap().changed, 0);
        assert_eq!(
            guard.pepper_versions_in_use().unwrap().keys().cloned().collect::<Vec<_>>(),
            [id2()]
        );
        drop(guard);
        // Version 1 retired: everyone logs in, nothing to upgrade; version 1 alone cannot.
        let retired = test_store(fx).with_peppers(two_then_one().retain_current_only());
        for (name, password) in [("alice", ALICE_PW), ("bob", BOB_PW), ("carol", CAROL_PW)] {
            assert!(!retired.verify(name, &secret(password)).unwrap().rehashed(), "{name}");
        }
        let err = v1.verify("alice", &secret(ALICE_PW)).unwrap_err();
        assert!(
            matches!(&err, AuthError::PepperUnavailable { version } if *version == id2()),
            "{err}"
        );
        // A rotation that lacks a record's version refuses and writes nothing.
        let before = fx.records();
        let err = test_store(fx).with_peppers(one()).rotate_pepper_all().unwrap_err();
        assert!(
            matches!(&err, AuthError::PepperUnavailable { version } if *version == id2()),
            "{err}"
        );
        assert_eq!(fx.records(), before);
    }

    /// Maintenance holds the writer lock across its runs; logins (which write only
    /// throttling records, and no user here) go on meanwhile, from another store value.
    fn logins_go_on_while_maintenance_holds_the_writer_lock(fx) {
        three_users(fx);
        let guard = test_store(fx).maintenance().unwrap();
        assert_eq!(guard.pepper_all(&one()).unwrap().changed, 3);
        let store = test_store(fx).with_peppers(one());
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let right = store.verify("alice", &secret(ALICE_PW)).map(|v| v.rehashed());
            let wrong = store.verify("bob", &secret(WRONG)).map(|v| v.rehashed());
            let status = store.throttle_status("bob").map(|s| s.failures);
            let _ = sender.send(format!("{right:?} {wrong:?} {status:?}"));
        });
        // Not a timing bound: a guard against a hang, were a login to wait for the lock
        // (that lock is only released below, on this thread).
        let outcome = receiver.recv_timeout(Duration::from_secs(60));
        drop(guard);
        assert_eq!(outcome.as_deref(), Ok("Ok(false) Err(InvalidCredentials) Ok(1)"));
    }

    /// A store whose pepper was loaded before a rotation writes no record, and the error
    /// counts the records under the version it lacks, naming the first few in store order.
    fn a_store_with_a_stale_pepper_writes_no_record(fx) {
        let stale = test_store(fx).with_peppers(one());
        stale.register("alice", &secret(ALICE_PW)).unwrap();
        // The rotation, by another process: version 2 added, alice moved.
        test_store(fx).with_peppers(two_then_one()).rotate_pepper_all().unwrap();
        // Lab records imported since: bob's obsolete (a login would rehash it), five under
        // version 2 made elsewhere.
        let (elsewhere, elsewhere_path) = fx.scratch();
        let elsewhere = elsewhere.with_profile(TEST).with_peppers(peppers(KEY_2));
        elsewhere.register("zed", &secret(BOB_PW)).unwrap();
        let users: serde_json::Value =
            serde_json::from_slice(&std::fs::read(elsewhere_path).unwrap()).unwrap();
        let zed = users["zed"].as_str().unwrap().to_owned();
        let mut lab = serde_json::json!({ "bob": hash_password(BOB_PW, TEST).unwrap() });
        for name in ["u1", "u2", "u3", "u4", "u5"] {
            lab[name] = zed.clone().into();
        }
        fx.seed(&lab);
        let before = fx.records();
        let is_stale = |e: &AuthError| matches!(e, AuthError::PepperStale { store, version, .. } if *store == stale.location() && *version == id2());
        let err = stale.register("carol", &secret(CAROL_PW)).unwrap_err();
        assert!(is_stale(&err), "{err:?}");
        assert!(err.is_operational());
        let err = stale.reset_password("bob", &secret(NEW_PW)).unwrap_err();
        assert!(is_stale(&err), "{err:?}");
        let verified = stale.verify("bob", &secret(BOB_PW)).unwrap();
        assert!(!verified.rehashed());
        assert!(matches!(verified.rehash_error(), Some(e) if is_stale(e)), "{verified:?}");
        let err = stale.reset_password("u2", &secret(NEW_PW)).unwrap_err();
        assert!(
            matches!(&err, AuthError::PepperStale { records: 5, usernames, .. } if usernames == &["alice", "u1", "u3"]),
            "{err:?}"
        );
        assert!(err.to_string().contains("users 'alice', 'u1', 'u3' and 2 more"), "{err}");
        assert_eq!(fx.records(), before);
        // A store with the pepper as it is now writes.
        let fresh = test_store(fx).with_peppers(peppers(KEY_2));
        fresh.register("carol", &secret(CAROL_PW)).unwrap();
        fresh.reset_password("bob", &secret(NEW_PW)).unwrap();
        assert!(fx.record("carol").contains(&format!(",keyid={}$", id2())));
        assert!(fx.record("bob").contains(&format!(",keyid={}$", id2())));
    }

    // 5. Throttling.

    fn delays_start_after_the_free_failures_and_double(fx) {
        three_users(fx);
        let clock = FakeClock::new();
        let store = throttled_store(fx, ThrottlePolicy::default(), &clock);
        for _ in 0..5 {
            assert!(invalid(store.verify("alice", &secret(WRONG))));
        }
        for _ in 0..3 {
            let error = store.verify("alice", &secret(ALICE_PW)).unwrap_err();
            assert_eq!(throttled(&error), (ThrottleScope::Account, Some(clock.at(1)), false));
        }
        assert_eq!(
            of(store.throttle_status("alice").unwrap()),
            (5, ThrottleState::Delayed { until: clock.at(1) })
        );
        clock.advance(1);
        assert!(invalid(store.verify("alice", &secret(WRONG))));
        let error = store.verify("alice", &secret(WRONG)).unwrap_err();
        assert_eq!(throttled(&error), (ThrottleScope::Account, Some(clock.at(2)), false));
        clock.advance(1);
        assert_eq!(
            store.verify("alice", &secret(WRONG)).unwrap_err().kind(),
            AuthErrorKind::Throttled
        );
        clock.advance(1);
        assert!(invalid(store.verify("alice", &secret(WRONG))));
        assert_eq!(
            of(store.throttle_status("alice").unwrap()),
            (7, ThrottleState::Delayed { until: clock.at(4) })
        );
        let error = store.verify("alice", &secret(ALICE_PW)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "too many failed login attempts for this account: try again after 2027-01-15 08:00:07 UTC"
        );
        // Once the delay has passed, the right password logs in and resets the count.
        clock.advance(4);
        store.verify("alice", &secret(ALICE_PW)).unwrap();
        assert_eq!(of(store.throttle_status("alice").unwrap()), (0, ThrottleState::Open));
    }

    fn the_limit_locks_the_account_until_its_cool_off_ends(fx) {
        three_users(fx);
        let clock = FakeClock::new();
        let policy =
            no_delays().lock_after(10).unwrap().lock_duration(Some(Duration::from_secs(3600)));
        let store = throttled_store(fx, policy, &clock);
        for _ in 0..10 {
            assert!(invalid(store.verify("alice", &secret(WRONG))));
        }
        assert_eq!(
            of(store.throttle_status("alice").unwrap()),
            (10, ThrottleState::Locked { until: Some(clock.at(3600)) })
        );
        clock.advance(3599);
        let error = store.verify("alice", &secret(ALICE_PW)).unwrap_err();
        assert_eq!(throttled(&error), (ThrottleScope::Account, Some(clock.at(1)), true));
        assert!(error.to_string().contains("locked until 2027-01-15 09:00:00 UTC"), "{error}");
        // Other accounts are not affected.
        store.verify("bob", &secret(BOB_PW)).unwrap();
        clock.advance(1);
        assert_eq!(of(store.throttle_status("alice").unwrap()), (0, ThrottleState::Open));
        assert!(invalid(store.verify("alice", &secret(WRONG))));
        assert_eq!(store.throttle_status("alice").unwrap().failures, 1);
        store.verify("alice", &secret(ALICE_PW)).unwrap();
    }

    fn a_lock_without_cool_off_lasts_until_an_operator_unlocks(fx) {
        three_users(fx);
        let clock = FakeClock::new();
        let policy = no_delays().lock_after(3).unwrap().lock_duration(None);
        let store = throttled_store(fx, policy, &clock);
        for _ in 0..3 {
            assert!(invalid(store.verify("alice", &secret(WRONG))));
            assert!(invalid(store.verify("zelda", &secret(WRONG))));
        }
        clock.advance(10 * 365 * 86_400);
        let error = store.verify("alice", &secret(ALICE_PW)).unwrap_err();
        assert_eq!(throttled(&error), (ThrottleScope::Account, None, true));
        let unlocked = events(|| assert!(store.unlock("ａｌｉｃｅ").unwrap()));
        assert_eq!(unlocked.len(), 1);
        assert_eq!(unlocked[0]["event"], "user_updated:alice");
        assert_eq!(unlocked[0]["what"], "unlocked");
        assert!(!store.unlock("alice").unwrap());
        assert!(
            matches!(store.unlock("zelda"), Err(AuthError::NoSuchUser { username }) if username == "zelda")
        );
        store.verify("alice", &secret(ALICE_PW)).unwrap();
        // The unknown name is locked too, and lifted by unlock_unknown.
        assert_eq!(
            of(store.throttle_status("zelda").unwrap()),
            (3, ThrottleState::Locked { until: None })
        );
        assert!(store.unlock_unknown("zelda").unwrap());
        assert_eq!(of(store.throttle_status("zelda").unwrap()), (0, ThrottleState::Open));
    }

    fn a_success_resets_the_account_but_not_the_source(fx) {
        three_users(fx);
        let clock = FakeClock::new();
        let store = throttled_store(fx, no_delays().source_lock_after(5).unwrap(), &clock);
        let from = Some("10.0.0.1");
        for _ in 0..4 {
            assert!(invalid(store.verify_from("alice", &secret(WRONG), from)));
        }
        assert_eq!(store.throttle_status("alice").unwrap().failures, 4);
        store.verify_from("bob", &secret(BOB_PW), from).unwrap();
        assert_eq!(store.throttle_status("alice").unwrap().failures, 4);
        store.verify_from("alice", &secret(ALICE_PW), from).unwrap();
        assert_eq!(store.throttle_status("alice").unwrap().failures, 0);
        assert!(invalid(store.verify_from("bob", &secret(WRONG), from)));
        let error = store.verify_from("alice", &secret(ALICE_PW), from).unwrap_err();
        assert_eq!(throttled(&error).0, ThrottleScope::Source);
        assert!(throttled(&error).2);
        store.verify_from("alice", &secret(ALICE_PW), Some("10.0.0.2")).unwrap();
        assert!(store.unlock_source("10.0.0.1").unwrap());
        assert!(!store.unlock_source("10.0.0.1").unwrap());
        store.verify_from("alice", &secret(ALICE_PW), from).unwrap();
    }

    fn a_source_spreading_guesses_over_many_names_is_locked(fx) {
        three_users(fx);
        let clock = FakeClock::new();
        let store = throttled_store(fx, no_delays().source_lock_after(20).unwrap(), &clock);
        let from = Some("203.0.113.9");
        for i in 0..20 {
            let name = if i == 0 { "bob".to_owned() } else { format!("user{i}") };
            assert!(invalid(store.verify_from(&name, &secret(WRONG), from)));
        }
        let error = store.verify_from("alice", &secret(ALICE_PW), from).unwrap_err();
        assert_eq!(throttled(&error), (ThrottleScope::Source, Some(clock.at(3600)), true));
        assert!(error.to_string().starts_with("too many failed login attempts from this source"));
        store.verify_from("alice", &secret(ALICE_PW), Some("198.51.100.7")).unwrap();
        clock.advance(3600);
        store.verify_from("alice", &secret(ALICE_PW), from).unwrap();
    }

    fn an_unknown_name_is_counted_and_refused_exactly_like_a_known_one(fx) {
        three_users(fx);
        let trace = |name: &str| {
            let clock = FakeClock::new();
            let policy = ThrottlePolicy::default().free_failures(2).lock_after(4).unwrap();
            let store = throttled_store(fx, policy, &clock);
            let mut outcomes = Vec::new();
            for step in 0..8 {
                outcomes.push(match store.verify_from(name, &secret(WRONG), Some("192.0.2.1")) {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => format!("{e:?}"),
                });
                clock.advance(if step % 2 == 0 { 0 } else { 10 });
            }
            (outcomes, of(store.throttle_status(name).unwrap()))
        };
        let known = trace("alice");
        // The source's failures of the first run count in the second: unlock it between.
        assert!(test_store(fx).unlock_source("192.0.2.1").unwrap());
        let unknown = trace("zelda");
        assert_eq!(known, unknown);
        let until = UNIX_EPOCH + Duration::from_secs(1_800_000_000 + 20 + 86_400);
        assert_eq!(known.1, (4, ThrottleState::Locked { until: Some(until) }));
    }

    fn two_store_values_on_one_store_count_together(fx) {
        three_users(fx);
        let clock = FakeClock::new();
        let policy =
            no_delays().lock_after(6).unwrap().lock_duration(None).source_lock_after(8).unwrap();
        // Two backends: as two processes or instances would have.
        let (first, second) =
            (throttled_store(fx, policy.clone(), &clock), throttled_store(fx, policy, &clock));
        for _ in 0..3 {
            assert!(invalid(first.verify_from("alice", &secret(WRONG), Some("192.0.2.9"))));
            assert!(invalid(second.verify_from("alice", &secret(WRONG), Some("192.0.2.9"))));
        }
        for store in [&first, &second] {
            assert_eq!(
                of(store.throttle_status("alice").unwrap()),
                (6, ThrottleState::Locked { until: None })
            );
            let error = store.verify("alice", &secret(ALICE_PW)).unwrap_err();
            assert_eq!(throttled(&error), (ThrottleScope::Account, None, true));
        }
        // The source's 6 failures from both, plus one each: locked at 8.
        assert!(invalid(first.verify_from("bob", &secret(WRONG), Some("192.0.2.9"))));
        assert!(invalid(second.verify_from("carol", &secret(WRONG), Some("192.0.2.9"))));
        let error = first.verify_from("bob", &secret(BOB_PW), Some("192.0.2.9")).unwrap_err();
        assert_eq!(throttled(&error).0, ThrottleScope::Source);
        // One unlocks, the other sees it.
        assert!(second.unlock("alice").unwrap());
        first.verify("alice", &secret(ALICE_PW)).unwrap();
        assert_eq!(of(second.throttle_status("alice").unwrap()), (0, ThrottleState::Open));
    }

    fn concurrent_wrong_attempts_from_many_store_values_all_count(fx) {
        three_users(fx);
        let clock = FakeClock::new();
        let policy = no_delays().lock_after(100).unwrap().lock_duration(None);
        let outcomes: Vec<AuthError> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let store = throttled_store(fx, policy.clone(), &clock);
                    scope.spawn(move || {
                        (0..5)
                            .map(|_| store.verify("alice", &secret(WRONG)).unwrap_err())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        assert!(
            outcomes.iter().all(|e| matches!(e, AuthError::InvalidCredentials)),
            "{outcomes:?}"
        );
        assert_eq!(
            test_store(fx).with_clock(clock.source()).throttle_status("alice").unwrap().failures,
            40
        );
    }

    // 6. An account's life.

    fn change_password_needs_the_current_password(fx) {
        three_users(fx);
        let store = test_store(fx);
        let before = fx.records();
        for (name, current) in [("alice", WRONG), ("mallory", ALICE_PW)] {
            let result = store.change_password(name, &secret(current), &secret(NEW_PW), None);
            assert!(matches!(result, Err(AuthError::InvalidCredentials)), "{name}: {result:?}");
            assert_eq!(fx.records(), before);
        }
        assert_eq!(
            store.change_password("ａｌｉｃｅ", &secret(ALICE_PW), &secret(NEW_PW), None).unwrap(),
            "alice"
        );
        store.verify("alice", &secret(NEW_PW)).unwrap();
        assert!(invalid(store.verify("alice", &secret(ALICE_PW))));
        // Only alice's record changed, in place.
        let after = fx.records();
        assert_eq!(after.keys().collect::<Vec<_>>(), ["alice", "bob", "carol"]);
        assert_ne!(after["alice"], before["alice"]);
        assert_eq!((&after["bob"], &after["carol"]), (&before["bob"], &before["carol"]));
        assert!(after["alice"].as_str().unwrap().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
    }

    fn a_change_over_a_record_changed_since_its_login_is_refused(fx) {
        three_users(fx);
        // Another process changes alice's password between this store's verification of
        // the current password and its write: the clock is read after the verification
        // (throttling's settling), so the other change runs there.
        let other = Arc::new(test_store(fx).without_throttle());
        let calls = Arc::new(AtomicUsize::new(0));
        let clock = {
            let (other, calls) = (Arc::clone(&other), Arc::clone(&calls));
            move || {
                if calls.fetch_add(1, Ordering::SeqCst) == 1 {
                    other
                        .change_password("alice", &secret(ALICE_PW), &secret(CAROL_PW), None)
                        .unwrap();
                }
                SystemTime::now()
            }
        };
        let store = test_store(fx).with_clock(Arc::new(clock));
        let result = store.change_password("alice", &secret(ALICE_PW), &secret(NEW_PW), None);
        assert!(calls.load(Ordering::SeqCst) >= 2);
        assert!(
            matches!(&result, Err(AuthError::ConcurrentChange { username }) if username == "alice"),
            "{result:?}"
        );
        assert_eq!(result.unwrap_err().kind(), AuthErrorKind::Conflict);
        // The other change stands.
        other.verify("alice", &secret(CAROL_PW)).unwrap();
        assert!(invalid(other.verify("alice", &secret(NEW_PW))));
    }

    fn reset_password_delete_and_find(fx) {
        let store = three_users(fx);
        let before = fx.records();
        assert_eq!(store.reset_password("ｂｏｂ", &secret(NEW_PW)).unwrap(), "bob");
        store.verify("bob", &secret(NEW_PW)).unwrap();
        assert!(invalid(store.verify("bob", &secret(BOB_PW))));
        let after = fx.records();
        assert_eq!(after.keys().collect::<Vec<_>>(), ["alice", "bob", "carol"]);
        assert_eq!((&after["alice"], &after["carol"]), (&before["alice"], &before["carol"]));
        assert_eq!(store.find("ｃａｒｏｌ").unwrap(), "carol");
        // Unknown names: refused, nothing changed.
        let unchanged = fx.records();
        for result in [
            store.delete("mallory"),
            store.reset_password("mallory", &secret(NEW_PW)),
            store.find("mallory"),
        ] {
            let error = result.unwrap_err();
            assert!(
                matches!(&error, AuthError::NoSuchUser { username } if username == "mallory"),
                "{error:?}"
            );
            assert_eq!(error.to_string(), "no user 'mallory' in the store");
            assert_eq!(error.kind(), AuthErrorKind::NotFound);
        }
        assert_eq!(fx.records(), unchanged);
        // Delete keeps the others and their order.
        assert_eq!(store.delete("bob").unwrap(), "bob");
        assert_eq!(store.usernames().unwrap(), ["alice", "carol"]);
        assert!(invalid(store.verify("bob", &secret(NEW_PW))));
        assert!(matches!(store.delete("bob"), Err(AuthError::NoSuchUser { .. })));
        // The name is free again, and comes last.
        store.register("bob", &secret(BOB_PW)).unwrap();
        assert_eq!(store.usernames().unwrap(), ["alice", "carol", "bob"]);
        store.delete("alice").unwrap();
        store.delete("carol").unwrap();
        store.delete("bob").unwrap();
        assert!(store.usernames().unwrap().is_empty());
        assert!(fx.records().is_empty());
    }

    /// A deleted user's lock goes with it, and a reset lifts it: a user registered again
    /// under the name, or given a new password by an operator, does not start locked.
    fn delete_and_reset_clear_the_accounts_lock(fx) {
        three_users(fx);
        let clock = FakeClock::new();
        let store = throttled_store(fx, no_delays().lock_after(2).unwrap(), &clock);
        for name in ["alice", "alice", "bob", "bob"] {
            assert!(invalid(store.verify(name, &secret(WRONG))));
        }
        for name in ["alice", "bob"] {
            assert_eq!(store.throttle_status(name).unwrap().failures, 2, "{name}");
        }
        store.delete("alice").unwrap();
        assert_eq!(of(store.throttle_status("alice").unwrap()), (0, ThrottleState::Open));
        store.register("alice", &secret(NEW_PW)).unwrap();
        store.verify("alice", &secret(NEW_PW)).unwrap();
        store.reset_password("bob", &secret(NEW_PW)).unwrap();
        assert_eq!(of(store.throttle_status("bob").unwrap()), (0, ThrottleState::Open));
        store.verify("bob", &secret(NEW_PW)).unwrap();
    }

    /// Registrations from many store values at once (threads, each with its own backend,
    /// as processes would be) all land; of several look-alike spellings of one name at
    /// once, exactly one lands and the others are `UserExists`.
    fn concurrent_registrations_all_land_and_a_name_is_taken_once(fx) {
        let results: Vec<Result<(), AuthError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let store = test_store(fx);
                    let name = match i % 4 {
                        0 => format!("user{i}"),
                        1 => NFC.to_owned(),
                        2 => NFD.to_owned(),
                        _ => "ｊｏｓé".to_owned(),
                    };
                    scope.spawn(move || store.register(&name, &secret(NEW_PW)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let landed = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(landed, 5, "{results:?}");
        for result in &results {
            assert!(
                match result {
                    Ok(()) => true,
                    Err(AuthError::UserExists { username }) => username == NFC,
                    Err(_) => false,
                },
                "{result:?}"
            );
        }
        let mut names = test_store(fx).usernames().unwrap();
        names.sort();
        assert_eq!(names, [NFC, "user0", "user12", "user4", "user8"]);
    }

    fn usernames_come_in_registration_order(fx) {
        let store = test_store(fx);
        for name in ["zoe", "adam", "mike", NFC, "bea"] {
            store.register(name, &secret(NEW_PW)).unwrap();
        }
        assert_eq!(store.usernames().unwrap(), ["zoe", "adam", "mike", NFC, "bea"]);
        assert_eq!(test_store(fx).usernames().unwrap(), ["zoe", "adam", "mike", NFC, "bea"]);
    }

    fn delete_exact_deletes_that_stored_name_or_nobody(fx) {
        fx.seed(&json!({ NFD: hash_password("first lab password", TEST).unwrap() }));
        let store = test_store(fx);
        let stored = store.find(NFC).unwrap();
        assert_eq!(stored, NFD);
        // Meanwhile another process replaces the NFD user by one stored in NFC.
        let other = test_store(fx);
        other.delete_exact(NFD).unwrap();
        other.register(NFC, &secret(NEW_PW)).unwrap();
        other.register("bob", &secret(BOB_PW)).unwrap();
        let before = fx.records();
        let captured = events(|| {
            let result = store.delete_exact(&stored);
            assert!(
                matches!(&result, Err(AuthError::ConcurrentChange { username }) if username == NFD),
                "{result:?}"
            );
        });
        assert!(captured.is_empty(), "{captured:?}");
        assert_eq!(fx.records(), before);
        store.delete_exact(NFC).unwrap();
        assert_eq!(store.usernames().unwrap(), ["bob"]);
    }

    fn look_alike_stored_names_are_ambiguous_or_refused(fx) {
        let hash = |p: &str| hash_password(p, TEST).unwrap();
        let lab =
            json!({"jo": hash("second lab password"), "jo\u{200B}": hash("third lab password")});
        if fx.kind == Kind::Json {
            // Only a users file can hold two names with one comparison key (a lab file).
            std::fs::write(fx.json_path(), lab.to_string()).unwrap();
            let store = test_store(fx);
            for result in [store.find("jo\u{2060}"), store.delete("jo\u{2060}")] {
                let error = result.unwrap_err();
                assert!(
                    matches!(&error, AuthError::AmbiguousUser { username, candidates: 2 } if username == "jo\u{2060}"),
                    "{error:?}"
                );
            }
            assert!(invalid(store.verify("jo\u{2060}", &secret("second lab password"))));
            assert_eq!(store.ambiguous_names().unwrap(), [["jo", "jo\u{200B}"]]);
            // The exact spelling designates its own user.
            assert_eq!(
                store.verify("jo\u{200B}", &secret("third lab password")).unwrap().username(),
                "jo\u{200B}"
            );
            assert_eq!(store.delete("jo\u{200B}").unwrap(), "jo\u{200B}");
            assert_eq!(store.usernames().unwrap(), ["jo"]);
        } else {
            // A database keeps one name per key (its name_key is unique): copying the lab
            // file lands the first and lists the other as a look-alike of it, never copied,
            // so no ambiguity can arise.
            let report = fx.seed(&lab);
            assert_eq!(
                (report.created, report.conflicting.clone(), report.ambiguous.clone()),
                (1, vec![], vec!["jo\u{200B}".to_owned()])
            );
            let store = test_store(fx);
            assert_eq!(store.usernames().unwrap(), ["jo"]);
            assert!(store.ambiguous_names().unwrap().is_empty());
            assert_eq!(store.find("jo\u{2060}").unwrap(), "jo");
            assert_eq!(
                store.verify("jo\u{200B}", &secret("second lab password")).unwrap().username(),
                "jo"
            );
        }
    }

    /// The async API over each store: calls from tasks of a multi-thread runtime, and the
    /// store dropped inside the runtime (its last reference held by a task), as a service
    /// that moves its store into `async fn main` does.
    fn the_async_api_serves_every_store_and_is_dropped_in_the_runtime(fx) {
        three_users(fx);
        let store = globo_auth::AsyncUserStore::new(test_store(fx));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(async move {
            let tasks: Vec<_> = [("alice", ALICE_PW), ("bob", WRONG), ("ｃａｒｏｌ", CAROL_PW)]
                .into_iter()
                .map(|(name, password)| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        match store.verify(name, &secret(password)).await {
                            Ok(verified) => verified.username().to_owned(),
                            Err(e) => format!("{e:?}"),
                        }
                    })
                })
                .collect();
            let mut outcome = Vec::new();
            for task in tasks {
                outcome.push(task.await.unwrap());
            }
            store.register("dave", &secret(NEW_PW)).await.unwrap();
            outcome.push(store.usernames().await.unwrap().join(","));
            // The last reference goes in a task of the runtime.
            tokio::spawn(async move { drop(store) }).await.unwrap();
            outcome
        });
        assert_eq!(outcome, ["alice", "InvalidCredentials", "carol", "alice,bob,carol,dave"]);
    }

    /// A store whose sessions the server ended (a restart, a proxy's idle timeout) keeps
    /// working: the next calls open new ones.
    fn a_store_outlives_its_sessions(fx) {
        let store = three_users(fx);
        let unthrottled = test_store(fx).without_throttle();
        store.verify("alice", &secret(ALICE_PW)).unwrap();
        unthrottled.verify("alice", &secret(ALICE_PW)).unwrap();
        // Each call below is the first on sessions the server ended meanwhile: a throttling
        // update, a login's read, a writer's lock, a read of every user, a status.
        fx.end_sessions();
        store.verify("alice", &secret(ALICE_PW)).unwrap();
        fx.end_sessions();
        assert!(invalid(unthrottled.verify("bob", &secret(WRONG))));
        fx.end_sessions();
        unthrottled.register("dave", &secret(NEW_PW)).unwrap();
        fx.end_sessions();
        assert_eq!(unthrottled.usernames().unwrap(), ["alice", "bob", "carol", "dave"]);
        assert!(invalid(store.verify("bob", &secret(WRONG))));
        fx.end_sessions();
        assert_eq!(store.throttle_status("bob").unwrap().failures, 1);
    }

    // 7. Events.

    fn security_events_are_the_same_on_every_store(fx) {
        let events = scenario_events(fx);
        let summary: Vec<String> = events
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {}",
                    e["event"].as_str().unwrap(),
                    e["username"],
                    e["source"],
                    e["attempts"]
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                r#"user_created:alice "alice" "" null"#,
                r#"authn_login_success:alice "alice" "192.0.2.1" null"#,
                r#"authn_login_fail:alice "alice" "192.0.2.1" 1"#,
                r#"authn_login_fail:alice "alice" "192.0.2.1" 2"#,
                r#"authn_login_fail:alice "alice" "192.0.2.1" 3"#,
                r#"authn_login_lock:alice,3 "alice" "192.0.2.1" 3"#,
                r#"excess_rate_limit_exceeded:account:<label>,192.0.2.2 "account:<label>" "192.0.2.2" null"#,
                r#"authn_login_fail:unknown:<label> "unknown:<label>" "192.0.2.3" 1"#,
            ]
        );
    }

    // 8. Moving accounts.

    fn copy_from_json_and_back_is_byte_identical_and_idempotent(fx) {
        let (source, source_path) = fx.scratch();
        let source = source.with_profile(TEST);
        source.register("alice", &secret(ALICE_PW)).unwrap();
        source.with_peppers(one()).register("bob", &secret(BOB_PW)).unwrap();
        let mut lab: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&source_path).unwrap()).unwrap();
        lab.insert(NFD.to_owned(), hash_password(CAROL_PW, TEST).unwrap().into());
        lab.insert(
            "i19".to_owned(),
            "$argon2i$v=19$m=256,t=1,p=1$c29tZXNhbHQ$AJFIsNZTMKTAewB4+ETN1A".into(),
        );
        std::fs::write(&source_path, serde_json::to_vec_pretty(&lab).unwrap()).unwrap();
        let source = UserStore::new(&source_path);
        let store = fx.store();
        let first = copy_users(&source, &store).unwrap();
        assert_eq!((first.created, first.unchanged, first.conflicting.len()), (4, 0, 0));
        let again = copy_users(&source, &store).unwrap();
        assert_eq!((again.created, again.unchanged, again.conflicting.len()), (0, 4, 0));
        assert_eq!(store.usernames().unwrap(), ["alice", "bob", NFD, "i19"]);
        let records = fx.records();
        assert_eq!(records, lab);
        // The copied users log in on the destination.
        test_store(fx).verify("alice", &secret(ALICE_PW)).unwrap();
        test_store(fx).verify(NFC, &secret(CAROL_PW)).unwrap();
        test_store(fx).with_peppers(one()).verify("bob", &secret(BOB_PW)).unwrap();
    }
}

/// Issue 14: JSON → SQLite → PostgreSQL → JSON keeps every name and record byte for byte,
/// and a second run of each copy is all unchanged.
#[test]
fn a_copy_json_sqlite_postgres_json_is_byte_identical() {
    let (Some(sqlite), Some(postgres), Some(json)) =
        (fixture::open(Kind::Sqlite), fixture::open(Kind::Postgres), fixture::open(Kind::Json))
    else {
        return;
    };
    let (source, source_path) = json.scratch();
    let source = source.with_profile(TEST);
    // Not in any sorted order: the order is the registrations'.
    source.register("carol", &secret(CAROL_PW)).unwrap();
    source.register("ｂｏｂ", &secret(BOB_PW)).unwrap();
    source.with_peppers(one()).register("alice", &secret(ALICE_PW)).unwrap();
    let mut lab: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&source_path).unwrap()).unwrap();
    lab.insert(NFD.to_owned(), hash_password("lab password", TEST).unwrap().into());
    std::fs::write(&source_path, format!("{}\n", serde_json::to_string_pretty(&lab).unwrap()))
        .unwrap();
    let source_bytes = std::fs::read(&source_path).unwrap();
    let (end, end_path) = json.scratch();
    let chain = [UserStore::new(&source_path), sqlite.store(), postgres.store(), end];
    for pair in chain.windows(2) {
        let report = copy_users(&pair[0], &pair[1]).unwrap();
        assert_eq!(
            (report.created, report.unchanged),
            (4, 0),
            "{} → {}",
            pair[0].location(),
            pair[1].location()
        );
        let report = copy_users(&pair[0], &pair[1]).unwrap();
        assert_eq!((report.created, report.unchanged, report.conflicting.len()), (0, 4, 0));
        assert_eq!(pair[1].usernames().unwrap(), ["carol", "bob", "alice", NFD]);
    }
    assert_eq!(
        String::from_utf8(std::fs::read(&end_path).unwrap()).unwrap(),
        String::from_utf8(source_bytes).unwrap()
    );
}

/// The scenario's events, compared across the stores that are there: identical.
#[test]
fn every_store_emits_the_same_events() {
    let all: Vec<(Kind, Vec<serde_json::Value>)> = [Kind::Json, Kind::Sqlite, Kind::Postgres]
        .into_iter()
        .filter_map(|kind| fixture::open(kind).map(|fx| (kind, scenario_events(&fx))))
        .collect();
    for (kind, events) in &all[1..] {
        assert_eq!(events, &all[0].1, "{kind:?} differs from {:?}", all[0].0);
    }
}
