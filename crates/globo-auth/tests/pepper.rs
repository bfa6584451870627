//! The pepper in the store: new records peppered, upgrade on login, `pepper_all`,
//! `rotate_pepper_all`, versions that are not configured.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use globo_auth::{AuthError, Peppers, Profile, UserStore, hash_password, verify_password};
use secrecy::SecretString;

const TEST: Profile = Profile::TestOnlyInsecure;
const ALICE: &str = "correct horse battery staple";
const BOB: &str = "a different long passphrase";

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

fn temp_users() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    (dir, path)
}

fn stored(path: &Path, name: &str) -> String {
    let users: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    users[name].as_str().unwrap().to_owned()
}

fn write_users(path: &Path, users: &serde_json::Value) {
    fs::write(path, serde_json::to_vec_pretty(users).unwrap()).unwrap();
}

fn peppers(text: &str) -> Peppers {
    Peppers::parse(&secret(text)).unwrap()
}

const KEY_1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// The old version alone, and a new one (current) with the old one, fixed keys.
fn one() -> Peppers {
    peppers(KEY_1)
}
fn two_then_one() -> Peppers {
    peppers(&format!("{KEY_2},{KEY_1}"))
}
/// The versions' ids as records name them (`keyid=`).
fn id1() -> String {
    one().current_version().to_owned()
}
fn id2() -> String {
    two_then_one().current_version().to_owned()
}

/// The record with `,keyid=...` removed: what a thief who strips it would try offline.
fn without_keyid(record: &str) -> String {
    let start = record.find(",keyid=").unwrap();
    let end = record[start + 1..].find(['$', ',']).unwrap() + start + 1;
    format!("{}{}", &record[..start], &record[end..])
}

#[test]
fn a_new_record_is_peppered_with_the_current_version_and_useless_without_it() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST).with_peppers(two_then_one());
    store.register("alice", &secret(ALICE)).unwrap();
    let record = stored(&path, "alice");
    // keyid = the current version's id, right after p=.
    assert!(
        record.starts_with(&format!("$argon2id$v=19$m=8,t=1,p=1,keyid={}$", id2())),
        "{record}"
    );
    let verified = store.verify("alice", &secret(ALICE)).unwrap();
    assert!(!verified.rehashed());
    assert!(matches!(store.verify("alice", &secret(BOB)), Err(AuthError::InvalidCredentials)));
    // Without the pepper: the record names a version that is not there.
    let bare = UserStore::new(&path).with_profile(TEST);
    let err = bare.verify("alice", &secret(ALICE)).unwrap_err();
    assert!(matches!(&err, AuthError::PepperUnavailable { version } if *version == id2()), "{err}");
    assert!(err.is_operational());
    assert!(matches!(
        verify_password(ALICE, &record),
        Err(AuthError::PepperUnavailable { version }) if *version == id2()
    ));
    // With only another version: the same.
    let other = UserStore::new(&path).with_profile(TEST).with_peppers(one());
    assert!(matches!(
        other.verify("alice", &secret(ALICE)),
        Err(AuthError::PepperUnavailable { version }) if *version == id2()
    ));
    // Stripping keyid leaves a masked tag: the right password does not match it.
    assert!(matches!(
        verify_password(ALICE, &without_keyid(&record)),
        Err(AuthError::InvalidCredentials)
    ));
    // The file is unchanged by all of this.
    assert_eq!(stored(&path, "alice"), record);
}

#[test]
fn unpeppered_records_verify_and_a_login_peppers_them() {
    let (_dir, path) = temp_users();
    let lab = hash_password(ALICE, TEST).unwrap();
    write_users(&path, &serde_json::json!({ "alice": lab }));
    let store = UserStore::new(&path).with_profile(TEST).with_peppers(one());
    let verified = store.verify("alice", &secret(ALICE)).unwrap();
    assert!(verified.rehashed());
    assert!(verified.rehash_error().is_none());
    let record = stored(&path, "alice");
    assert!(
        record.starts_with(&format!("$argon2id$v=19$m=8,t=1,p=1,keyid={}$", id1())),
        "{record}"
    );
    // Re-peppered, not rehashed: the salt is the lab's (no Argon2 run was needed).
    let salt = |r: &str| r.rsplit('$').nth(1).unwrap().to_owned();
    assert_eq!(salt(&record), salt(&lab));
    assert!(!store.verify("alice", &secret(ALICE)).unwrap().rehashed());
    // Without a pepper, an unpeppered record is left as it is.
    let (_dir2, path2) = temp_users();
    write_users(&path2, &serde_json::json!({ "alice": lab }));
    let bare = UserStore::new(&path2).with_profile(TEST);
    assert!(!bare.verify("alice", &secret(ALICE)).unwrap().rehashed());
    assert_eq!(stored(&path2, "alice"), lab);
}

#[test]
fn a_login_moves_a_record_to_the_current_version_and_an_obsolete_one_is_rehashed_peppered() {
    let (_dir, path) = temp_users();
    UserStore::new(&path)
        .with_profile(TEST)
        .with_peppers(one())
        .register("alice", &secret(ALICE))
        .unwrap();
    let old = stored(&path, "alice");
    assert!(old.contains(&format!(",keyid={}$", id1())), "{old}");
    let store = UserStore::new(&path).with_profile(TEST).with_peppers(two_then_one());
    assert!(store.verify("alice", &secret(ALICE)).unwrap().rehashed());
    let now = stored(&path, "alice");
    assert!(now.contains(&format!(",keyid={}$", id2())), "{now}");
    assert!(!store.verify("alice", &secret(ALICE)).unwrap().rehashed());
    // A record weaker than the profile is rehashed, and the new hash is peppered too.
    let stronger =
        UserStore::new(&path).with_profile(Profile::OwaspMinimum).with_peppers(two_then_one());
    assert!(stronger.verify("alice", &secret(ALICE)).unwrap().rehashed());
    let rehashed = stored(&path, "alice");
    assert!(
        rehashed.starts_with(&format!("$argon2id$v=19$m=19456,t=2,p=1,keyid={}$", id2())),
        "{rehashed}"
    );
    stronger.verify("alice", &secret(ALICE)).unwrap();
}

#[test]
fn pepper_all_peppers_every_unpeppered_record_offline_and_only_those() {
    let (_dir, path) = temp_users();
    let bob_v2 = {
        let (_d, p) = temp_users();
        let s = UserStore::new(&p).with_profile(TEST).with_peppers(two_then_one());
        s.register("bob", &secret(BOB)).unwrap();
        stored(&p, "bob")
    };
    let carol_lab = hash_password("carol's long passphrase", TEST).unwrap();
    write_users(
        &path,
        &serde_json::json!({
            "alice": hash_password(ALICE, TEST).unwrap(),
            "bob": bob_v2,
            "carol": carol_lab,
            "broken": 42,
            "garbled": "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ",
        }),
    );
    // No pepper configured: refused, nothing written.
    let before = fs::read(&path).unwrap();
    let err = UserStore::new(&path).pepper_all().unwrap_err();
    assert!(matches!(err, AuthError::InvalidPepper { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);

    // Only version 1 configured: bob (under 2) is left as he is, listed apart (not
    // "already peppered": he cannot log in with this configuration).
    let store = UserStore::new(&path).with_profile(TEST).with_peppers(one());
    let report = store.pepper_all().unwrap();
    assert_eq!((report.changed, report.unchanged), (2, 0));
    assert_eq!(report.unavailable, ["bob"]);
    assert_eq!(report.unusable, ["broken", "garbled"]);
    assert!(stored(&path, "alice").contains(&format!(",keyid={}$", id1())));
    assert!(stored(&path, "carol").contains(&format!(",keyid={}$", id1())));
    assert_eq!(stored(&path, "bob"), bob_v2);
    let users: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(users["broken"], 42);
    assert_eq!(users["garbled"], "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ");
    // The salt and cost stay; only keyid and the tag change.
    let carol = stored(&path, "carol");
    assert_eq!(
        carol.replace(&format!(",keyid={}", id1()), "").rsplit_once('$').unwrap().0,
        carol_lab.rsplit_once('$').unwrap().0
    );
    // Everyone verifies (no login was needed), and a second run changes nothing.
    store.verify("alice", &secret(ALICE)).unwrap();
    store.verify("carol", &secret("carol's long passphrase")).unwrap();
    let after = fs::read(&path).unwrap();
    let again = store.pepper_all().unwrap();
    assert_eq!((again.changed, again.unchanged, again.unavailable.len()), (0, 2, 1));
    assert_eq!(fs::read(&path).unwrap(), after);
}

#[test]
fn rotate_pepper_all_moves_every_record_to_the_current_version_then_the_old_one_can_go() {
    let (_dir, path) = temp_users();
    let v1 = UserStore::new(&path).with_profile(TEST).with_peppers(one());
    v1.register("alice", &secret(ALICE)).unwrap();
    v1.register("bob", &secret(BOB)).unwrap();
    let mut users: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    users["carol"] = hash_password("carol's long passphrase", TEST).unwrap().into();
    write_users(&path, &users);

    let rotated = UserStore::new(&path).with_profile(TEST).with_peppers(two_then_one());
    let report = rotated.rotate_pepper_all().unwrap();
    assert_eq!((report.changed, report.unchanged, report.unusable.len()), (3, 0, 0));
    for name in ["alice", "bob", "carol"] {
        assert!(stored(&path, name).contains(&format!(",keyid={}$", id2())), "{name}");
    }
    assert_eq!(rotated.rotate_pepper_all().unwrap().changed, 0);
    // Version 1 retired: everyone still logs in, and nothing needs upgrading.
    let retired =
        UserStore::new(&path).with_profile(TEST).with_peppers(two_then_one().retain_current_only());
    for (name, password) in [("alice", ALICE), ("bob", BOB), ("carol", "carol's long passphrase")] {
        assert!(!retired.verify(name, &secret(password)).unwrap().rehashed(), "{name}");
    }
}

#[test]
fn rotate_pepper_all_refuses_a_record_under_a_version_it_does_not_hold_and_writes_nothing() {
    let (_dir, path) = temp_users();
    UserStore::new(&path)
        .with_profile(TEST)
        .with_peppers(one())
        .register("alice", &secret(ALICE))
        .unwrap();
    let mut users: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    users["bob"] = hash_password(BOB, TEST).unwrap().into();
    write_users(&path, &users);
    let before = fs::read(&path).unwrap();
    // The new version alone (version 1 already dropped by mistake).
    let store =
        UserStore::new(&path).with_profile(TEST).with_peppers(two_then_one().retain_current_only());
    let err = store.rotate_pepper_all().unwrap_err();
    assert!(matches!(&err, AuthError::PepperUnavailable { version } if *version == id1()), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);
    // pepper_all leaves records under any version alone, so it still works.
    assert_eq!(store.pepper_all().unwrap().changed, 1);
}

/// Issue 13 review, point 1: a version's id is its key's fingerprint, so a new key (a lost
/// `.env` and a new pepper, or two rotations each making their own version) never unmasks a
/// record of another key: `PepperUnavailable` naming the record's id, not a wrong password.
/// Before, both keys were version "1" and the right password failed as
/// `InvalidCredentials` (counted toward a lock).
#[test]
fn a_new_key_never_passes_for_the_version_a_record_names() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST).without_throttle();
    store.with_peppers(one()).register("alice", &secret(ALICE)).unwrap();
    let again = Peppers::generate().unwrap();
    assert_ne!(again.current_version(), id1());
    let recreated = UserStore::new(&path).with_profile(TEST).with_peppers(again);
    let err = recreated.verify("alice", &secret(ALICE)).unwrap_err();
    assert!(matches!(&err, AuthError::PepperUnavailable { version } if *version == id1()), "{err}");
    assert!(err.is_operational());
    // Its own key still verifies it.
    UserStore::new(&path)
        .with_profile(TEST)
        .with_peppers(one())
        .verify("alice", &secret(ALICE))
        .unwrap();
}

/// Issue 13 review, point 3: a store without a pepper never writes an unpeppered record
/// into a file that holds peppered ones. Before, register wrote an unpeppered record.
#[test]
fn without_the_pepper_no_new_record_is_written_into_a_peppered_file() {
    let (_dir, path) = temp_users();
    let peppered = UserStore::new(&path).with_profile(TEST).with_peppers(one());
    peppered.register("alice", &secret(ALICE)).unwrap();
    let mut users: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    // An obsolete lab record: a login would rehash it.
    users["bob"] = hash_password(BOB, Profile::TestOnlyInsecure).unwrap().into();
    write_users(&path, &users);
    let before = fs::read(&path).unwrap();
    let bare = UserStore::new(&path).with_profile(Profile::OwaspMinimum).without_throttle();
    let required = |e: &AuthError| matches!(e, AuthError::PepperRequired { store } if *store == path.display().to_string());
    let err = bare.register("carol", &secret("a long passphrase for c")).unwrap_err();
    assert!(required(&err), "{err}");
    assert!(err.is_operational());
    assert!(err.to_string().contains("users.json"), "{err}");
    let err = bare.reset_password("bob", &secret("a brand new passphrase")).unwrap_err();
    assert!(required(&err), "{err}");
    let err = bare
        .change_password("bob", &secret(BOB), &secret("a brand new passphrase"), None)
        .unwrap_err();
    assert!(required(&err), "{err}");
    // A login still succeeds; its rehash is refused and reported.
    let verified = bare.verify("bob", &secret(BOB)).unwrap();
    assert!(!verified.rehashed());
    assert!(matches!(verified.rehash_error(), Some(e) if required(e)), "{verified:?}");
    assert_eq!(fs::read(&path).unwrap(), before);
    // With the pepper, all of it works.
    let with = UserStore::new(&path).with_profile(TEST).with_peppers(one());
    with.register("carol", &secret("a long passphrase for c")).unwrap();
    assert!(stored(&path, "carol").contains(&format!(",keyid={}$", id1())));
}

/// Issue 13 review, point 4: `pepper_all` does not count records under a version that is
/// not configured as peppered: they are listed apart. Before, they were `unchanged`.
#[test]
fn pepper_all_lists_records_under_versions_not_configured_apart() {
    let (_dir, path) = temp_users();
    UserStore::new(&path)
        .with_profile(TEST)
        .with_peppers(one())
        .register("alice", &secret(ALICE))
        .unwrap();
    let mut users: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    users["bob"] = hash_password(BOB, TEST).unwrap().into();
    write_users(&path, &users);
    let other = peppers(KEY_2);
    let report = UserStore::new(&path).with_profile(TEST).with_peppers(other).pepper_all().unwrap();
    assert_eq!((report.changed, report.unchanged), (1, 0));
    assert_eq!(report.unavailable, ["alice"]);
    assert!(report.unusable.is_empty());
}

/// Issue 13 review, point 2: under one lock, a rotation reads which versions records still
/// name after moving them; a record written under the old version after the move (a stale
/// writer that ignores the lock, simulated here) keeps that version in use, by name.
#[test]
fn maintenance_holds_the_lock_and_reports_the_versions_records_name() {
    let (_dir, path) = temp_users();
    let v1 = UserStore::new(&path).with_profile(TEST).with_peppers(one());
    v1.register("alice", &secret(ALICE)).unwrap();
    v1.register("bob", &secret(BOB)).unwrap();
    let stale_bob = stored(&path, "bob");
    let guard = UserStore::new(&path).with_profile(TEST).maintenance().unwrap();
    // The lock is held: another process's writer would wait (checked without blocking).
    let lock_path = path.with_file_name("users.json.lock");
    let lock = fs::File::open(&lock_path).unwrap();
    assert!(matches!(lock.try_lock(), Err(fs::TryLockError::WouldBlock)));
    let report = guard.rotate_pepper_all(&two_then_one()).unwrap();
    assert_eq!(report.changed, 2);
    let in_use = guard.pepper_versions_in_use().unwrap();
    assert_eq!(in_use.keys().cloned().collect::<Vec<_>>(), [id2()]);
    // A stale writer puts bob back under version 1, and an unusable entry names it too.
    let mut users: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    users["bob"] = stale_bob.into();
    users["garbled"] = format!("$argon2id$v=19$m=8,t=1,p=1,keyid={}$c29tZXNhbHQ", id1()).into();
    write_users(&path, &users);
    let in_use = guard.pepper_versions_in_use().unwrap();
    assert_eq!(in_use[&id1()], ["bob", "garbled"]);
    assert_eq!(in_use[&id2()], ["alice"]);
    let store = guard.into_store();
    assert!(lock.try_lock().is_ok());
    lock.unlock().unwrap();
    drop(store);
}

/// Issue 13 review, point 6: each bulk run emits one event with its counts and the version,
/// never a key. Before, no event at all.
#[test]
fn bulk_pepper_runs_emit_one_event_with_counts() {
    let (_dir, path) = temp_users();
    write_users(
        &path,
        &serde_json::json!({"alice": hash_password(ALICE, TEST).unwrap(), "broken": 42}),
    );
    let store = UserStore::new(&path).with_profile(TEST).with_peppers(two_then_one());
    let events = events(|| {
        store.pepper_all().unwrap();
        store.rotate_pepper_all().unwrap();
    });
    let id = id2();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["event"], format!("sys_users_repeppered:peppered,{id}"));
    assert_eq!(events[1]["event"], format!("sys_users_repeppered:rotated,{id}"));
    assert_eq!((events[0]["changed"].as_u64(), events[0]["skipped"].as_u64()), (Some(1), Some(1)));
    assert_eq!(
        (events[1]["changed"].as_u64(), events[1]["unchanged"].as_u64()),
        (Some(0), Some(1))
    );
    let text = serde_json::to_string(&events).unwrap();
    for key in [KEY_1, KEY_2] {
        assert!(!text.contains(key.trim_end_matches('=')), "{text}");
    }
}

#[path = "support/events.rs"]
mod support;
use support::events;

/// Review G, point 5: one record copied from another users file (under a version this
/// store's pepper lacks) no longer blocks its own repair: resetting it replaces it, and the
/// refusal of other writes names how many records hold such a version and which. Before,
/// the reset of that very record failed with `PepperStale`, as did every other write.
#[test]
fn a_foreign_record_is_named_and_can_be_reset() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST).with_peppers(one());
    store.register("alice", &secret(ALICE)).unwrap();
    let (_other_dir, other) = temp_users();
    let foreign = UserStore::new(&other).with_profile(TEST).with_peppers(peppers(KEY_2));
    foreign.register("mallory", &secret(BOB)).unwrap();
    let mut users: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    users["mallory"] = stored(&other, "mallory").into();
    write_users(&path, &users);
    let before = fs::read(&path).unwrap();
    let err = store.register("carol", &secret("a long passphrase for c")).unwrap_err();
    assert!(
        matches!(
            &err,
            AuthError::PepperStale { version, records: 1, usernames, .. }
                if *version == id2() && usernames == &["mallory"]
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("holds 1 record(s) under a pepper version"), "{message}");
    assert!(message.contains(&format!("(version '{}'; user 'mallory')", id2())), "{message}");
    assert_eq!(fs::read(&path).unwrap(), before);
    // The foreign record itself can be reset: it is the one being replaced.
    store.reset_password("mallory", &secret("a brand new passphrase")).unwrap();
    assert!(stored(&path, "mallory").contains(&format!(",keyid={}$", id1())));
    store.register("carol", &secret("a long passphrase for c")).unwrap();
    store.verify("mallory", &secret("a brand new passphrase")).unwrap();
}

/// Many foreign records: the error counts them all and names the first three.
#[test]
fn a_stale_pepper_error_counts_every_record_and_names_the_first_few() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST).with_peppers(one());
    store.register("alice", &secret(ALICE)).unwrap();
    let (_other_dir, other) = temp_users();
    let foreign = UserStore::new(&other).with_profile(TEST).with_peppers(peppers(KEY_2));
    foreign.register("zed", &secret(BOB)).unwrap();
    let mut users: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    for name in ["u1", "u2", "u3", "u4", "u5"] {
        users[name] = stored(&other, "zed").into();
    }
    write_users(&path, &users);
    let err = store.reset_password("u2", &secret("a brand new passphrase")).unwrap_err();
    assert!(
        matches!(&err, AuthError::PepperStale { records: 4, usernames, .. } if usernames == &["u1", "u3", "u4"]),
        "{err:?}"
    );
    assert!(err.to_string().contains("users 'u1', 'u3', 'u4' and 1 more"), "{err}");
}

/// Review F, point 6: a store whose pepper was loaded before a rotation (its pepper lacks the
/// version the file's records now name) writes no record: it would name a version the
/// rotation retires, and nobody could verify it. Before, `register` succeeded with a record
/// under the retired version 1.
#[test]
fn a_store_with_a_stale_pepper_writes_no_record() {
    let (_dir, path) = temp_users();
    let stale = UserStore::new(&path).with_profile(TEST).with_peppers(one());
    stale.register("alice", &secret(ALICE)).unwrap();
    // The rotation, by another process: version 2 added, alice moved, version 1 retired.
    let rotating = UserStore::new(&path).with_profile(TEST).with_peppers(two_then_one());
    rotating.rotate_pepper_all().unwrap();
    // An obsolete lab record imported since: a login would rehash it.
    let mut users: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    users["bob"] = hash_password(BOB, Profile::TestOnlyInsecure).unwrap().into();
    write_users(&path, &users);
    let before = fs::read(&path).unwrap();
    let is_stale = |e: &AuthError| matches!(e, AuthError::PepperStale { store, version, .. } if *store == path.display().to_string() && *version == id2());
    let err = stale.register("carol", &secret("a long passphrase for c")).unwrap_err();
    assert!(is_stale(&err), "{err:?}");
    assert!(err.is_operational());
    let err = stale.reset_password("bob", &secret("a brand new passphrase")).unwrap_err();
    assert!(is_stale(&err), "{err:?}");
    let verified = stale.verify("bob", &secret(BOB)).unwrap();
    assert!(!verified.rehashed());
    assert!(matches!(verified.rehash_error(), Some(e) if is_stale(e)), "{verified:?}");
    assert_eq!(fs::read(&path).unwrap(), before);
    // A store with the pepper as it is now writes.
    let fresh = UserStore::new(&path).with_profile(TEST).with_peppers(peppers(KEY_2));
    fresh.register("carol", &secret("a long passphrase for c")).unwrap();
    fresh.reset_password("bob", &secret("a brand new passphrase")).unwrap();
    assert!(stored(&path, "carol").contains(&format!(",keyid={}$", id2())));
}
