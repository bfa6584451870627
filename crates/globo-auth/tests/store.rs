//! The users store: registration, verification, rehash on login, file safety, policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use globo_auth::{AuthError, PasswordPolicy, Profile, UserStore, hash_password};
use secrecy::SecretString;

const TEST: Profile = Profile::TestOnlyInsecure;
const WITH_2FA: PasswordPolicy = PasswordPolicy::WithSecondFactor;

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

fn temp_users() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    (dir, path)
}

fn users(path: &Path) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn stored(path: &Path, name: &str) -> String {
    users(path)[name].as_str().unwrap().to_owned()
}

#[test]
fn register_then_verify_in_the_lab_format() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST);
    store.register("alice", &secret("a long enough password")).unwrap();
    let hash = stored(&path, "alice");
    assert!(hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{hash}");
    assert!(!fs::read_to_string(&path).unwrap().contains("a long enough password"));
    store.verify("alice", &secret("a long enough password")).unwrap();
    assert_eq!(store.usernames().unwrap(), ["alice"]);
}

#[test]
fn the_default_profile_is_the_labs_rfc9106_low_memory() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path);
    assert_eq!(store.profile(), Profile::Rfc9106LowMemory);
    store.register("alice", &secret("a long enough password")).unwrap();
    let hash = stored(&path, "alice");
    assert!(hash.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"), "{hash}");
    // 16-byte salt (22 base64 chars) and 32-byte tag (43 chars).
    let fields: Vec<&str> = hash.split('$').collect();
    assert_eq!((fields[4].len(), fields[5].len()), (22, 43));
}

#[test]
fn profiles_have_documented_names_and_parameters() {
    let table: Vec<(String, u32, u32, u32)> = Profile::ALL
        .iter()
        .map(|p| {
            let q = p.params();
            (p.to_string(), q.memory_kib(), q.iterations(), q.lanes())
        })
        .collect();
    assert_eq!(
        table,
        [
            ("rfc9106-low-memory".to_owned(), 65536, 3, 4),
            ("owasp-min".to_owned(), 19456, 2, 1),
            ("test-only-insecure".to_owned(), 8, 1, 1),
        ]
    );
    for p in Profile::ALL {
        assert_eq!(p.name().parse::<Profile>().unwrap(), p);
    }
    let err = "fast".parse::<Profile>().unwrap_err();
    assert!(err.to_string().contains("owasp-min"), "{err}");
}

#[test]
fn a_taken_name_is_refused_and_kept() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST);
    store.register("alice", &secret("first password here")).unwrap();
    let before = fs::read(&path).unwrap();
    let err = store.register("alice", &secret("second password here")).unwrap_err();
    assert!(matches!(err, AuthError::UserExists { ref username } if username == "alice"));
    assert_eq!(err.to_string(), "user 'alice' already exists");
    assert_eq!(fs::read(&path).unwrap(), before);
    store.verify("alice", &secret("first password here")).unwrap();
}

#[test]
fn unknown_user_and_wrong_password_look_the_same() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST);
    // No file at all: every user is unknown, and nothing gets created.
    let missing = store.verify("alice", &secret("whatever password")).unwrap_err();
    assert!(matches!(missing, AuthError::InvalidCredentials));
    assert!(!path.exists());
    store.register("alice", &secret("the right password")).unwrap();
    let wrong = store.verify("alice", &secret("the wrong password")).unwrap_err();
    let unknown = store.verify("mallory", &secret("the right password")).unwrap_err();
    assert!(matches!(wrong, AuthError::InvalidCredentials));
    assert!(matches!(unknown, AuthError::InvalidCredentials));
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert_eq!(wrong.to_string(), "invalid username or password");
}

#[test]
fn an_obsolete_hash_is_replaced_on_successful_login() {
    let (_dir, path) = temp_users();
    UserStore::new(&path)
        .with_profile(Profile::TestOnlyInsecure)
        .register("alice", &secret("wonderland password"))
        .unwrap();
    let old = stored(&path, "alice");
    let store = UserStore::new(&path).with_profile(Profile::OwaspMinimum);

    // A wrong password changes nothing.
    assert!(store.verify("alice", &secret("not the wonderland password")).is_err());
    assert_eq!(stored(&path, "alice"), old);

    let verified = store.verify("alice", &secret("wonderland password")).unwrap();
    assert!(verified.rehashed());
    assert!(verified.rehash_error().is_none());
    let new = stored(&path, "alice");
    assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{new}");
    // Now current: no second rehash, and the new hash still verifies.
    assert!(!store.verify("alice", &secret("wonderland password")).unwrap().rehashed());
    assert_eq!(stored(&path, "alice"), new);
}

#[test]
fn other_variants_and_versions_are_upgraded_but_stronger_hashes_never_downgraded() {
    let (_dir, path) = temp_users();
    let legacy = serde_json::json!({
        // Argon2i, v=19 (passlib's test vector).
        "i19": "$argon2i$v=19$m=256,t=1,p=1$c29tZXNhbHQ$AJFIsNZTMKTAewB4+ETN1A",
        // Argon2i without v= (version 0x10), from the reference test suite.
        "id16": "$argon2i$m=256,t=2,p=1$c29tZXNhbHQ$/U3YPXYsSb3q9XxHvc0MLxur+GP960kN9j7emXX8zwY",
        // Argon2d, with associated data.
        "data": "$argon2d$v=16$m=32,t=2,p=3,data=Dw8PDw8P$AAAAAAAAAAA$KnH4gniiaFnDvlA1xev3yovC4cnrrI6tnHOYtmja90o",
    });
    fs::write(&path, serde_json::to_vec(&legacy).unwrap()).unwrap();
    let store = UserStore::new(&path).with_profile(TEST);
    // Each becomes Argon2id v=19 with the profile's lanes and lengths, but keeps its own memory
    // and time costs where they exceed the profile's: a rehash never lowers the cost.
    for (name, upgraded) in [
        ("i19", "$argon2id$v=19$m=256,t=1,p=1$"),
        ("id16", "$argon2id$v=19$m=256,t=2,p=1$"),
        ("data", "$argon2id$v=19$m=32,t=2,p=1$"),
    ] {
        let verified = store.verify(name, &secret("password")).unwrap();
        assert!(verified.rehashed(), "{name}");
        let new = stored(&path, name);
        assert!(new.starts_with(upgraded), "{name}: {new}");
        store.verify(name, &secret("password")).unwrap();
    }

    // A store on the OWASP minimum leaves an RFC 9106 hash (more memory, more passes) alone.
    let strong = hash_password("bob's password", Profile::Rfc9106LowMemory).unwrap();
    let mut all = users(&path);
    all.insert("bob".into(), strong.clone().into());
    fs::write(&path, serde_json::to_vec(&all).unwrap()).unwrap();
    let owasp = UserStore::new(&path).with_profile(Profile::OwaspMinimum);
    assert!(!owasp.verify("bob", &secret("bob's password")).unwrap().rehashed());
    assert_eq!(stored(&path, "bob"), strong);
    assert!(globo_auth::is_hash_obsolete(&strong, Profile::OwaspMinimum).is_ok_and(|o| !o));
    assert!(globo_auth::is_hash_obsolete(&strong, Profile::Rfc9106LowMemory).is_ok_and(|o| !o));
}

#[test]
fn a_corrupt_or_non_object_users_file_is_reported_and_never_overwritten() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST);
    for (content, is_json) in
        [(&b"{\"alice\": \"$argon2id$"[..], false), (b"[\"alice\"]", true), (b"", false)]
    {
        fs::write(&path, content).unwrap();
        let err = store.register("bob", &secret("builder password")).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(path.to_str().unwrap()), "{message}");
        assert!(message.contains("will not overwrite"), "{message}");
        if is_json {
            assert!(matches!(err, AuthError::NotAnObject { .. }));
        } else {
            assert!(matches!(err, AuthError::CorruptUsersFile { .. }));
            assert!(std::error::Error::source(&err).is_some());
        }
        assert!(store.verify("alice", &secret("x password")).is_err());
        assert_eq!(fs::read(&path).unwrap(), content);
    }
}

#[test]
fn a_bad_entry_is_an_error_naming_the_user() {
    let (_dir, path) = temp_users();
    let file = serde_json::json!({
        "number": 42,
        "garbled": "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ",
        "huge": "$argon2i$v=19$m=1048576,t=2,p=1$c29tZXNhbHQ$0Vh6ygkiw7XWqD7asxvuPE667zQu1hJ6VdGbI1GtH0E",
        "pepper": "$argon2d$v=19$m=65536,t=2,p=1,keyid=8PDw8A$YzI5dFpYTmhiSFFBQUFBQUFBQUFBQQ$Jxy74cswY2mq9y+u+iJcJy8EqOp4t/C7DWDzGwGB3IM",
    });
    fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    let store = UserStore::new(&path).with_profile(TEST);
    for name in ["number", "garbled", "huge", "pepper"] {
        let err = store.verify(name, &secret("password")).unwrap_err();
        let AuthError::BadEntry { username, source, store: location } = &err else {
            panic!("{name}: {err}")
        };
        assert_eq!(username, name);
        assert!(err.to_string().contains(&format!("user '{name}'")), "{err}");
        // Issue 14: the store is named by its location, the users file's path for this one.
        assert_eq!(location, store.location());
        assert_eq!(store.location(), path.display().to_string());
        let named = format!("users store '{}': the entry for user '{name}'", path.display());
        assert!(err.to_string().starts_with(&named), "{err}");
        match name {
            "huge" => assert!(
                matches!(**source, AuthError::HashExceedsLimits { parameter: "memory (KiB)", .. }),
                "{source}"
            ),
            "pepper" => assert!(matches!(**source, AuthError::UnsupportedHash { .. }), "{source}"),
            _ => assert!(matches!(**source, AuthError::MalformedHash { .. }), "{source}"),
        }
    }
    // Other users are unaffected and the file is kept as it was (plus the new user).
    store.register("alice", &secret("wonderland password")).unwrap();
    let now = users(&path);
    assert_eq!(now.len(), 5);
    assert_eq!(now["number"], 42);
}

#[cfg(unix)]
#[test]
fn the_users_file_is_private_and_locked_through_a_sidecar() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, path) = temp_users();
    UserStore::new(&path)
        .with_profile(TEST)
        .register("alice", &secret("wonderland password"))
        .unwrap();
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["users.json", "users.json.lock"]);
}

#[test]
fn concurrent_registrations_in_threads_all_land() {
    let (_dir, path) = temp_users();
    std::thread::scope(|scope| {
        for i in 0..16 {
            let path = &path;
            scope.spawn(move || {
                UserStore::new(path)
                    .with_profile(TEST)
                    .register(&format!("user{i}"), &secret("a shared password"))
                    .unwrap();
            });
        }
    });
    assert_eq!(users(&path).len(), 16);
}

#[test]
fn new_passwords_follow_nist_800_63b() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST);
    let register = |name: &str, password: &str| store.register(name, &secret(password));

    // NIST SP 800-63B-4 §3.1.1.2: 15 characters for a password used as a single factor (the
    // default policy). Length counts Unicode code points, not bytes: 14 characters in 28
    // bytes is too short.
    assert_eq!(store.password_policy(), PasswordPolicy::SingleFactor);
    let err = register("a", &"é".repeat(14)).unwrap_err();
    assert!(matches!(err, AuthError::PasswordTooShort { min: 15 }));
    assert_eq!(err.to_string(), "password is too short: use at least 15 characters");
    for short in ["1234567", "tulip anvil xy"] {
        assert!(matches!(register("a", short).unwrap_err(), AuthError::PasswordTooShort { .. }));
    }
    register("b", &"é".repeat(15)).unwrap();
    register("c", &"🔑".repeat(15)).unwrap();

    // 64 and 1024 characters are accepted; 1025 are not; nothing is truncated.
    register("d", &"x7".repeat(32)).unwrap();
    let long = "ab".repeat(512);
    register("e", &long).unwrap();
    assert!(store.verify("e", &secret(&long[..1023])).is_err());
    store.verify("e", &secret(&long)).unwrap();
    let err = register("f", &"ab".repeat(513)[..1025]).unwrap_err();
    assert!(matches!(err, AuthError::PasswordTooLong { max: 1024 }));

    // No composition rules: lowercase letters and spaces only are fine.
    register("g", "just some lowercase words").unwrap();

    // Common passwords are refused, case-insensitively; the message does not echo them.
    for common in ["1q2w3e4r5t6y7u8i9o0p", "1Q2W3E4R5T6Y7U8I9O0P", " 123456789987654321 "] {
        let err = register("h", common).unwrap_err();
        assert!(matches!(err, AuthError::PasswordTooCommon), "{common}: {err}");
        assert!(!err.to_string().to_lowercase().contains(&common.trim().to_lowercase()));
    }
    // Shorter ones too, where 8 characters are allowed (a second factor).
    let two_factor = UserStore::new(&path).with_profile(TEST).with_password_policy(WITH_2FA);
    for common in ["password123", "PASSWORD123", "Qwertyuiop", "iloveyou1", " 12345678 "] {
        let err = two_factor.register("h", &secret(common)).unwrap_err();
        assert!(matches!(err, AuthError::PasswordTooCommon), "{common}: {err}");
        assert!(!err.to_string().to_lowercase().contains(common.trim()));
    }
    assert!(globo_auth::is_common_password("123456"));
    assert!(!globo_auth::is_common_password("correct horse battery staple"));
    assert!(!store.usernames().unwrap().contains(&"h".to_owned()));
}

#[test]
fn new_passwords_must_not_contain_the_username() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST);
    store.register("bob", &secret("builder password")).unwrap();
    let before = fs::read(&path).unwrap();

    for password in ["alice-correct-horse", "Correct-ALICE-horse"] {
        let err = store.register("alice", &secret(password)).unwrap_err();
        assert!(
            matches!(&err, AuthError::PasswordContainsUsername { username } if username == "alice")
        );
        assert!(!err.to_string().contains("horse"), "{err}");
    }
    let err = store.register("rosalindfranklin", &secret("NILKNARFDNILASOR")).unwrap_err();
    assert!(matches!(err, AuthError::PasswordIsReversedUsername), "{err}");
    // Nothing was written, and the refused users cannot log in.
    assert_eq!(fs::read(&path).unwrap(), before);
    assert!(store.verify("alice", &secret("alice-correct-horse")).is_err());

    // Short names are not checked; other passwords for the same name are fine.
    store.register("al", &secret("al's correct horse")).unwrap();
    store.register("alice", &secret("correct horse battery")).unwrap();
    store.register("rosalindfranklin", &secret("nilknarfdnilasor and more")).unwrap();
    assert_eq!(users(&path).len(), 4);
}

#[test]
fn existing_passwords_containing_the_username_still_log_in() {
    // The lab had no such rule: its users keep logging in, and a weak hash is still upgraded.
    let (_dir, path) = temp_users();
    let hash = hash_password("alice's password", TEST).unwrap();
    fs::write(&path, serde_json::json!({ "alice": hash }).to_string()).unwrap();
    let store = UserStore::new(&path).with_profile(Profile::OwaspMinimum);
    let verified = store.verify("alice", &secret("alice's password")).unwrap();
    assert!(verified.rehashed() && verified.rehash_error().is_none());
    assert!(!store.verify("alice", &secret("alice's password")).unwrap().rehashed());
}

#[test]
fn logins_with_short_legacy_passwords_still_work() {
    // The lab had no policy: a 4-character password from a lab users file must still log in.
    let (_dir, path) = temp_users();
    let hash = hash_password("abcd", TEST).unwrap();
    fs::write(&path, serde_json::json!({ "old": hash }).to_string()).unwrap();
    UserStore::new(&path).with_profile(TEST).verify("old", &secret("abcd")).unwrap();
}

#[test]
fn usernames_are_bounded_and_printable() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST);
    // A space is refused too: RFC 8265's IdentifierClass has none (it was accepted before).
    for bad in ["", "tab\there", "new\nline", "nul\0", &"u".repeat(65), "Zoë O'Brien"] {
        let err = store.register(bad, &secret("a fine password")).unwrap_err();
        assert!(matches!(err, AuthError::InvalidUsername { .. }), "{bad:?}: {err}");
    }
    store.register(&"u".repeat(64), &secret("a fine password")).unwrap();
    store.register("Zoë_O'Brien", &secret("a fine password")).unwrap();
    assert_eq!(store.usernames().unwrap().len(), 2);
}

#[test]
fn login_passwords_are_bounded_in_bytes_not_by_the_registration_policy() {
    use globo_auth::MAX_LOGIN_PASSWORD_BYTES;
    assert_eq!(MAX_LOGIN_PASSWORD_BYTES, 16_384, "4096 code points of 4 bytes, passlib's limit");
    let (_dir, path) = temp_users();
    // Passwords longer than new ones may be (1024 code points) log in: the lab took up to
    // 4096 code points. Made without the store, which would refuse them as new passwords.
    let long = "x".repeat(4097);
    let widest = "\u{1F511}".repeat(4096);
    assert_eq!(widest.len(), MAX_LOGIN_PASSWORD_BYTES);
    let users = serde_json::json!({
        "ascii": hash_password(&long, TEST).unwrap(),
        "emoji": hash_password(&widest, TEST).unwrap(),
    });
    fs::write(&path, users.to_string()).unwrap();
    let store = UserStore::new(&path).with_profile(TEST);
    store.verify("ascii", &secret(&long)).unwrap();
    store.verify("emoji", &secret(&widest)).unwrap();
    assert!(matches!(
        store.verify("emoji", &secret(&widest[4..])),
        Err(AuthError::InvalidCredentials)
    ));

    // One byte more is refused before the file is read, let alone anything hashed: a corrupt
    // file is not even noticed.
    fs::write(&path, "not json").unwrap();
    let too_long = format!("{widest}x");
    let err = store.verify("emoji", &secret(&too_long)).unwrap_err();
    assert!(matches!(err, AuthError::PasswordExceedsLoginLimit { max_bytes: 16_384 }), "{err}");
    assert_eq!(err.to_string(), "password is longer than the 16384 bytes accepted at login");
    assert!(matches!(
        store.verify("emoji", &secret(&widest)),
        Err(AuthError::CorruptUsersFile { .. })
    ));
}

#[test]
fn secrets_do_not_leak_through_debug() {
    let store = UserStore::new("users.json");
    let password = secret("hunter2 hunter2");
    assert!(!format!("{password:?}").contains("hunter2"));
    assert!(!format!("{store:?}").contains("hunter2"));
}

/// NIST SP 800-63B-4 §3.1.1.2 allows 8 characters only for a password that is never the sole
/// factor: a store says so with `with_password_policy`. Before, there was one policy (8).
#[test]
fn a_store_for_a_second_factor_takes_8_characters_and_the_default_15() {
    let (_dir, path) = temp_users();
    let single = UserStore::new(&path).with_profile(TEST);
    let two_factor = UserStore::new(&path).with_profile(TEST).with_password_policy(WITH_2FA);
    assert_eq!(two_factor.password_policy(), WITH_2FA);
    for (name, password) in [("ann", "tulip-an"), ("ben", "tulip anvil xy")] {
        let err = single.register(name, &secret(password)).unwrap_err();
        assert!(matches!(err, AuthError::PasswordTooShort { min: 15 }), "{password}: {err}");
        two_factor.register(name, &secret(password)).unwrap();
        // Logins hold nobody to a policy: the default store lets them in too.
        single.verify(name, &secret(password)).unwrap();
    }
    let err = two_factor.register("cid", &secret("tulip-a")).unwrap_err();
    assert!(matches!(err, AuthError::PasswordTooShort { min: 8 }), "{err}");
    // The other rules stay: the username, the blocklist.
    let err = two_factor.register("alice", &secret("alice-tulip")).unwrap_err();
    assert!(matches!(err, AuthError::PasswordContainsUsername { .. }), "{err}");
    assert_eq!(single.usernames().unwrap(), ["ann", "ben"]);
}

/// NIST SP 800-63B-4 §3.1.1.2 (SHOULD normalise, NFKC): a new password is checked and hashed
/// in its NFKC form, so the same password typed in another form (fullwidth, a ligature, a
/// combining accent) logs in. Before, the raw bytes were hashed: the NFKC spelling failed.
#[test]
fn new_passwords_are_hashed_in_nfkc_and_every_spelling_logs_in() {
    let (_dir, path) = temp_users();
    let store = UserStore::new(&path).with_profile(TEST);
    let typed = "ｃａｆｅ\u{301} au lait, ﬁve sugars";
    let nfkc = "caf\u{e9} au lait, five sugars";
    store.register("alice", &secret(typed)).unwrap();
    let hash = stored(&path, "alice");
    globo_auth::verify_password(nfkc, &hash).unwrap();
    assert!(globo_auth::verify_password(typed, &hash).is_err(), "the raw bytes were hashed");
    for spelling in [typed, nfkc, "cafe\u{301} au lait, ﬁve sugars"] {
        let verified = store.verify("alice", &secret(spelling)).unwrap();
        assert!(!verified.rehashed(), "{spelling:?}");
    }
    assert!(store.verify("alice", &secret("cafe au lait, five sugars")).is_err());
    // The length counted is the NFKC form's: 15 code points typed, 14 after NFKC.
    let err = store.register("bob", &secret("cafe\u{301} au lait x")).unwrap_err();
    assert!(matches!(err, AuthError::PasswordTooShort { min: 15 }), "{err}");
}

/// Hashes of raw bytes (the lab's passlib, globo before normalisation) keep logging in by
/// the same input, and the first such login replaces the hash by one of the NFKC form, as a
/// login replaces an obsolete hash. Before, the raw hash stayed (`rehashed()` was false).
#[test]
fn a_hash_of_the_raw_password_logs_in_and_is_upgraded_to_nfkc() {
    let (_dir, path) = temp_users();
    let raw = "ｗｏｎｄｅｒｌａｎｄ rabbit hole";
    let nfkc = "wonderland rabbit hole";
    fs::write(&path, serde_json::json!({ "alice": hash_password(raw, TEST).unwrap() }).to_string())
        .unwrap();
    let store = UserStore::new(&path).with_profile(TEST);
    // Before the upgrade only the bytes that were hashed match.
    assert!(matches!(store.verify("alice", &secret(nfkc)), Err(AuthError::InvalidCredentials)));
    let verified = store.verify("alice", &secret(raw)).unwrap();
    assert!(verified.rehashed() && verified.rehash_error().is_none());
    let hash = stored(&path, "alice");
    globo_auth::verify_password(nfkc, &hash).unwrap();
    assert!(globo_auth::verify_password(raw, &hash).is_err());
    // Now every spelling logs in, and nothing more is rewritten.
    for spelling in [raw, nfkc] {
        assert!(!store.verify("alice", &secret(spelling)).unwrap().rehashed(), "{spelling}");
    }
    assert_eq!(stored(&path, "alice"), hash);
    assert!(store.verify("alice", &secret("wonderland rabbit")).is_err());
}

/// Found by fuzzing `users_file`: an entry globo does not change keeps its value when the file
/// is rewritten, numbers included. Without serde_json's `float_roundtrip`, a long number was
/// parsed to a float off by one unit in the last place and written back as that other number.
#[test]
fn a_rewrite_keeps_every_entry_it_does_not_change_numbers_included() {
    let (_dir, path) = temp_users();
    let long = "9".repeat(70);
    let text = format!(r#"{{"carol": {long}, "dave": 0.30000000000000004, "erin": 1e-7}}"#);
    fs::write(&path, &text).unwrap();
    let before = users(&path);
    let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure).without_throttle();
    store.register("frank", &secret("a long enough passphrase")).unwrap();
    let after = users(&path);
    for (name, value) in &before {
        assert_eq!(after.get(name), Some(value), "{name} changed");
    }
}
