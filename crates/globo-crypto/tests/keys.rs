#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Keys and key files: generation, parsing, redaction, errors that never echo content.

use globo_crypto::{CryptoError, Key, KeyFile, decrypt, encrypt};
use secrecy::ExposeSecret as _;

const SPEC_KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";

#[test]
fn generated_keys_differ_and_round_trip_through_base64() {
    let a = Key::generate().unwrap();
    let b = Key::generate().unwrap();
    assert!(!a.same_as(&b));
    let encoded = a.to_base64();
    assert_eq!(encoded.expose_secret().len(), 44);
    assert!(encoded.expose_secret().ends_with('='));
    assert!(Key::from_base64(encoded.expose_secret()).unwrap().same_as(&a));
}

#[test]
fn debug_is_redacted() {
    let key = Key::from_base64(SPEC_KEY).unwrap();
    let shown = format!("{key:?}");
    assert_eq!(shown, "Key([REDACTED])");
    assert!(!shown.contains("cw_0x"));
    let secret = key.to_base64();
    assert!(!format!("{secret:?}").contains("cw_0x"));
}

#[test]
fn surrounding_whitespace_is_accepted() {
    let key = Key::from_base64(SPEC_KEY).unwrap();
    for text in [format!("{SPEC_KEY}\n"), format!("  {SPEC_KEY}\r\n"), format!("\t{SPEC_KEY} ")] {
        assert!(Key::from_base64(&text).unwrap().same_as(&key), "{text:?}");
    }
}

#[test]
fn anything_else_is_rejected_without_echo() {
    let bad = [
        "",
        "short",
        &SPEC_KEY[..43],                                // missing padding
        "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4f", // padding replaced
        "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e5=", // non-zero padding bits
        "cw/0x689RpI+jtRR7oE8h/eQsKImvJapLeSbXpwF4e4=", // standard alphabet
        "cw_0x689RpI-jtRR7oE8h_eQsKI vJapLeSbXpwF4e4=", // inner space
        "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=",
        "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4=", // 31 bytes
    ];
    for text in bad {
        let err = Key::from_base64(text).unwrap_err();
        assert!(matches!(err, CryptoError::InvalidKey), "{text:?}");
        assert!(!err.to_string().contains("cw_0x"));
    }
}

#[test]
fn key_from_a_secret_string() {
    let secret = secrecy::SecretString::from(format!("{SPEC_KEY}\n"));
    let key = Key::from_secret(&secret).unwrap();
    assert!(key.same_as(&Key::from_base64(SPEC_KEY).unwrap()));
}

#[test]
fn key_file_with_and_without_newline() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [("a.key", SPEC_KEY.to_string()), ("b.key", format!("{SPEC_KEY}\n"))] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let key = Key::from_file(&path).unwrap();
        assert!(key.same_as(&Key::from_base64(SPEC_KEY).unwrap()));
    }
}

#[test]
fn invalid_key_file_names_the_path_not_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    let content = "SUPERSECRETVALUE-not-a-key";
    std::fs::write(&path, content).unwrap();
    let err = KeyFile::load(&path).unwrap_err();
    assert!(matches!(err, CryptoError::InvalidKeyFile { .. }));
    let message = err.to_string();
    assert!(message.contains("secret.key"), "{message}");
    assert!(!message.contains("SUPERSECRET"), "{message}");

    // Binary junk and a huge file are rejected the same way.
    std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    assert!(matches!(KeyFile::load(&path), Err(CryptoError::InvalidKeyFile { .. })));
    std::fs::write(&path, SPEC_KEY.repeat(1000)).unwrap();
    assert!(matches!(KeyFile::load(&path), Err(CryptoError::InvalidKeyFile { .. })));
}

#[test]
fn missing_key_file_is_precise() {
    let dir = tempfile::tempdir().unwrap();
    let err = KeyFile::load(&dir.path().join("secret.key")).unwrap_err();
    assert!(matches!(err, CryptoError::KeyFileNotFound { .. }));
    // Neutral: names the file, not a command of `app` (which adds its own hint).
    let text = err.to_string();
    assert!(text.contains("secret.key") && text.contains("not found"), "{text}");
    assert!(!text.contains("app ") && !text.contains("init-key"), "{text}");
}

#[cfg(unix)]
#[test]
fn create_new_is_private_and_never_replaces() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    let key = Key::generate().unwrap();
    let file = KeyFile::create_new(&path, &key).unwrap();
    assert_eq!(file.loose_permissions(), None);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read(&path).unwrap().len(), 44, "no trailing newline, as in the lab");

    let other = Key::generate().unwrap();
    let err = KeyFile::create_new(&path, &other).unwrap_err();
    assert!(matches!(err, CryptoError::KeyFileExists { .. }));
    // Says what to do (rotate the key), neutrally: `app` adds the command.
    let text = err.to_string();
    assert!(text.contains("rotate") && text.contains("unreadable"), "{text}");
    assert!(!text.contains("app ") && !text.contains("rotate-key"), "{text}");
    assert!(Key::from_file(&path).unwrap().same_as(&key), "the existing key is untouched");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(KeyFile::load(&path).unwrap().loose_permissions(), Some(0o040));
}

#[test]
fn errors_never_contain_the_key() {
    let key = Key::from_base64(SPEC_KEY).unwrap();
    let other = Key::generate().unwrap();
    let token = encrypt(&key, b"x").unwrap();
    let err = decrypt(&other, &token).unwrap_err();
    assert!(!format!("{err} {err:?}").contains("cw_0x"));
}
