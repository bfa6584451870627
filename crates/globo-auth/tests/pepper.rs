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

/// Version "1" and version "2" (current), fixed keys.
fn one() -> Peppers {
    peppers("1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
}
fn two_then_one() -> Peppers {
    peppers(
        "2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=,1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    )
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
    // keyid = base64("2") = "Mg", right after p=.
    assert!(record.starts_with("$argon2id$v=19$m=8,t=1,p=1,keyid=Mg$"), "{record}");
    let verified = store.verify("alice", &secret(ALICE)).unwrap();
    assert!(!verified.rehashed());
    assert!(matches!(store.verify("alice", &secret(BOB)), Err(AuthError::InvalidCredentials)));
    // Without the pepper: the record names a version that is not there.
    let bare = UserStore::new(&path).with_profile(TEST);
    let err = bare.verify("alice", &secret(ALICE)).unwrap_err();
    assert!(matches!(&err, AuthError::PepperUnavailable { version } if version == "2"), "{err}");
    assert!(err.is_operational());
    assert!(matches!(
        verify_password(ALICE, &record),
        Err(AuthError::PepperUnavailable { version }) if version == "2"
    ));
    // With only another version: the same.
    let other = UserStore::new(&path).with_profile(TEST).with_peppers(one());
    assert!(matches!(
        other.verify("alice", &secret(ALICE)),
        Err(AuthError::PepperUnavailable { version }) if version == "2"
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
    assert!(record.starts_with("$argon2id$v=19$m=8,t=1,p=1,keyid=MQ$"), "{record}");
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
    assert!(old.contains(",keyid=MQ$"), "{old}");
    let store = UserStore::new(&path).with_profile(TEST).with_peppers(two_then_one());
    assert!(store.verify("alice", &secret(ALICE)).unwrap().rehashed());
    let now = stored(&path, "alice");
    assert!(now.contains(",keyid=Mg$"), "{now}");
    assert!(!store.verify("alice", &secret(ALICE)).unwrap().rehashed());
    // A record weaker than the profile is rehashed, and the new hash is peppered too.
    let stronger =
        UserStore::new(&path).with_profile(Profile::OwaspMinimum).with_peppers(two_then_one());
    assert!(stronger.verify("alice", &secret(ALICE)).unwrap().rehashed());
    let rehashed = stored(&path, "alice");
    assert!(rehashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1,keyid=Mg$"), "{rehashed}");
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

    // Only version 1 configured: bob (under 2) is left as he is.
    let store = UserStore::new(&path).with_profile(TEST).with_peppers(one());
    let report = store.pepper_all().unwrap();
    assert_eq!((report.changed, report.unchanged), (2, 1));
    assert_eq!(report.unusable, ["broken", "garbled"]);
    assert!(stored(&path, "alice").contains(",keyid=MQ$"));
    assert!(stored(&path, "carol").contains(",keyid=MQ$"));
    assert_eq!(stored(&path, "bob"), bob_v2);
    let users: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(users["broken"], 42);
    assert_eq!(users["garbled"], "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ");
    // The salt and cost stay; only keyid and the tag change.
    let carol = stored(&path, "carol");
    assert_eq!(
        carol.replace(",keyid=MQ", "").rsplit_once('$').unwrap().0,
        carol_lab.rsplit_once('$').unwrap().0
    );
    // Everyone verifies (no login was needed), and a second run changes nothing.
    store.verify("alice", &secret(ALICE)).unwrap();
    store.verify("carol", &secret("carol's long passphrase")).unwrap();
    let after = fs::read(&path).unwrap();
    let again = store.pepper_all().unwrap();
    assert_eq!((again.changed, again.unchanged), (0, 3));
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
        assert!(stored(&path, name).contains(",keyid=Mg$"), "{name}");
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
    assert!(matches!(&err, AuthError::PepperUnavailable { version } if version == "1"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);
    // pepper_all leaves records under any version alone, so it still works.
    assert_eq!(store.pepper_all().unwrap().changed, 1);
}
