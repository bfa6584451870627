//! Look-alike usernames through the store: one user per RFC 8265 form, lab names in other
//! forms still reachable, colliding lab names refused rather than confused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use globo_auth::{AuthError, MAX_LOCK_AFTER, Profile, ThrottlePolicy, UserStore, hash_password};
use secrecy::SecretString;

const TEST: Profile = Profile::TestOnlyInsecure;
const NFC: &str = "jos\u{e9}";
const NFD: &str = "jose\u{301}";
/// The invisible characters issue 11 names, and the zero-width space.
const INVISIBLE: [char; 5] = ['\u{E0001}', '\u{34F}', '\u{FE0F}', '\u{3164}', '\u{200B}'];

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

fn temp_users() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    (dir, path)
}

fn names(path: &Path) -> Vec<String> {
    let users: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    users.keys().cloned().collect()
}

/// A users file as the lab could have written it: any names, in the order given.
fn lab_file(path: &Path, users: &[(&str, &str)]) {
    let mut map = serde_json::Map::new();
    for (name, password) in users {
        map.insert((*name).to_owned(), hash_password(password, TEST).unwrap().into());
    }
    fs::write(path, serde_json::Value::Object(map).to_string()).unwrap();
}

#[test]
fn nfc_and_nfd_spellings_register_as_one_user() {
    for (first, second) in [(NFC, NFD), (NFD, NFC)] {
        let (_dir, path) = temp_users();
        let store = UserStore::new(&path).with_profile(TEST);
        store.register(first, &secret("a long enough password")).unwrap();
        let err = store.register(second, &secret("another long password")).unwrap_err();
        assert!(matches!(&err, AuthError::UserExists { username } if username == NFC), "{err}");
        // Stored once, in NFC, and reachable by either spelling.
        assert_eq!(names(&path), [NFC]);
        store.verify(NFC, &secret("a long enough password")).unwrap();
        store.verify(NFD, &secret("a long enough password")).unwrap();
    }
    // Fullwidth letters are the same name too.
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST);
    store.register("ａｌｉｃｅ", &secret("a long enough password")).unwrap();
    assert_eq!(names(&path), ["alice"]);
    assert!(matches!(
        store.register("alice", &secret("another long password")),
        Err(AuthError::UserExists { .. })
    ));
    store.verify("ａｌｉｃｅ", &secret("a long enough password")).unwrap();
}

#[test]
fn names_with_invisible_characters_are_refused_and_never_a_second_user() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST);
    store.register("alice", &secret("a long enough password")).unwrap();
    let before = fs::read(&path).unwrap();
    for c in INVISIBLE {
        for name in [format!("alice{c}"), format!("ali{c}ce"), format!("{c}alice")] {
            let err = store.register(&name, &secret("another long password")).unwrap_err();
            assert!(
                matches!(err, AuthError::InvalidUsername { code_point: Some(x), .. } if x == c),
                "{name:?}: {err}"
            );
            assert!(err.to_string().contains("invisible"), "{err}");
            // At login, the invisible character makes no other user.
            store.verify(&name, &secret("a long enough password")).unwrap();
            assert!(matches!(
                store.verify(&name, &secret("another long password")),
                Err(AuthError::InvalidCredentials)
            ));
        }
    }
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn lab_names_in_another_form_stay_reachable_and_taken() {
    let (_dir, path) = temp_users();
    let zwsp = "carol\u{200B}";
    lab_file(
        &path,
        &[(NFD, "jose's password"), ("bob smith", "bob's password"), (zwsp, "carol's password")],
    );
    let store = UserStore::new(&path).with_profile(TEST);
    // Logins by the stored spelling and by any that looks the same.
    for name in [NFD, NFC, "ｊｏｓｅ\u{301}", "jos\u{e9}\u{FE0F}"] {
        store.verify(name, &secret("jose's password")).unwrap();
    }
    store.verify("bob smith", &secret("bob's password")).unwrap();
    store.verify("ｂｏｂ smith", &secret("bob's password")).unwrap();
    store.verify("carol", &secret("carol's password")).unwrap();
    store.verify(zwsp, &secret("carol's password")).unwrap();
    // The names are taken in every form; nothing is written.
    let before = fs::read(&path).unwrap();
    for name in [NFC, NFD, "carol"] {
        let err = store.register(name, &secret("a long enough password")).unwrap_err();
        assert!(matches!(err, AuthError::UserExists { .. }), "{name:?}: {err}");
    }
    assert_eq!(fs::read(&path).unwrap(), before);
    // Unknown users still fail like wrong passwords.
    assert!(matches!(
        store.verify("josef", &secret("jose's password")),
        Err(AuthError::InvalidCredentials)
    ));
}

#[test]
fn a_rehash_on_login_keeps_the_stored_spelling() {
    let (_dir, path) = temp_users();
    lab_file(&path, &[(NFD, "jose's password")]);
    let store = UserStore::new(&path).with_profile(Profile::OwaspMinimum);
    let verified = store.verify(NFC, &secret("jose's password")).unwrap();
    assert!(verified.rehashed() && verified.rehash_error().is_none());
    assert_eq!(names(&path), [NFD]);
    assert!(!store.verify(NFD, &secret("jose's password")).unwrap().rehashed());
}

#[test]
fn colliding_lab_names_never_let_one_user_in_as_the_other() {
    let (_dir, path) = temp_users();
    lab_file(&path, &[(NFC, "first jose password"), (NFD, "second jose password")]);
    // Every spelling here shares one comparison key, so throttling counts the eight wrong
    // logins below against one account; this test is about who logs in, not about delays,
    // so its policy lets all of them through (the delays have their own tests).
    let policy = ThrottlePolicy::default().free_failures(MAX_LOCK_AFTER);
    let store = UserStore::new(&path).with_profile(TEST).with_throttle(policy).unwrap();
    // The exact stored name is unambiguous: each user logs in with their own password only.
    store.verify(NFC, &secret("first jose password")).unwrap();
    store.verify(NFD, &secret("second jose password")).unwrap();
    for (name, other) in [(NFC, "second jose password"), (NFD, "first jose password")] {
        assert!(matches!(store.verify(name, &secret(other)), Err(AuthError::InvalidCredentials)));
    }
    // Any other spelling matches both: refused as an unknown user (review A2: the same answer
    // as for a name nobody has, so nothing is enumerated), whichever password is given.
    for name in ["ｊｏｓ\u{e9}", "jos\u{e9}\u{200B}", "jose\u{34F}\u{301}"] {
        for password in ["first jose password", "second jose password"] {
            let err = store.verify(name, &secret(password)).unwrap_err();
            assert!(matches!(err, AuthError::InvalidCredentials), "{name:?}: {err}");
        }
    }
    // The operator finds them.
    assert_eq!(store.ambiguous_names().unwrap(), [vec![NFC.to_owned(), NFD.to_owned()]]);
    assert!(matches!(
        store.register(NFC, &secret("a third long password")),
        Err(AuthError::UserExists { .. })
    ));
}

/// Review A1: a login by a look-alike spelling says which stored user it matched.
#[test]
fn a_login_reports_the_stored_name_it_matched() {
    let (_dir, path) = temp_users();
    lab_file(&path, &[("alice\u{200B}", "lab password")]);
    let store = UserStore::new(&path).with_profile(TEST);
    let verified = store.verify("alice", &secret("lab password")).unwrap();
    assert_eq!(verified.username(), "alice\u{200B}");
    let verified = store.verify("alice\u{200B}", &secret("lab password")).unwrap();
    assert_eq!(verified.username(), "alice\u{200B}");
}
