#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Files: encryption to disk, decryption to memory, plaintext removal after verification.

#[cfg(unix)]
use std::os::unix::fs::FileTypeExt as _;

use globo_crypto::{
    CryptoError, Key, decrypt_file_to_memory, encrypt, encrypt_file, read_token_file,
    remove_plaintext_verified,
};

#[test]
fn encrypt_then_decrypt_to_memory() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate().unwrap();
    let plain = dir.path().join("config.json");
    let enc = dir.path().join("config.enc");
    std::fs::write(&plain, b"{\"a\": 1}").unwrap();
    encrypt_file(&key, &plain, &enc).unwrap();
    assert_eq!(decrypt_file_to_memory(&key, &enc).unwrap().as_slice(), b"{\"a\": 1}");
    assert_eq!(std::fs::read(&plain).unwrap(), b"{\"a\": 1}", "plaintext left in place");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&enc).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Replacing an existing ciphertext is atomic: no temporary file is left behind.
    std::fs::write(&plain, b"[]").unwrap();
    encrypt_file(&key, &plain, &enc).unwrap();
    assert_eq!(decrypt_file_to_memory(&key, &enc).unwrap().as_slice(), b"[]");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate().unwrap();
    let err = decrypt_file_to_memory(&key, &dir.path().join("config.enc")).unwrap_err();
    assert!(matches!(err, CryptoError::CiphertextNotFound { .. }));
    assert!(err.to_string().contains("config.enc"));
    let err = encrypt_file(&key, &dir.path().join("nope.json"), &dir.path().join("o")).unwrap_err();
    assert!(matches!(err, CryptoError::PlaintextNotFound { .. }));
}

#[test]
fn refuses_to_overwrite_its_own_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate().unwrap();
    let plain = dir.path().join("config.json");
    std::fs::write(&plain, b"{}").unwrap();
    let same = dir.path().join(".").join("config.json");
    assert!(matches!(encrypt_file(&key, &plain, &same), Err(CryptoError::SameFile { .. })));
    assert_eq!(std::fs::read(&plain).unwrap(), b"{}");
}

/// `read_token_file` refuses a FIFO at once, without waiting for a writer (`std::fs::read` on
/// it blocked forever) and without a read.
#[test]
fn read_token_file_refuses_a_fifo_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.enc");
    let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success());
    let (sender, receiver) = std::sync::mpsc::channel();
    let reader_path = path.clone();
    std::thread::spawn(move || sender.send(read_token_file(&reader_path).map(|_| ())));
    let result = receiver
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("read_token_file blocked on a FIFO with no writer");
    let error = result.unwrap_err();
    let report = globo_crypto::with_causes(&error);
    assert!(report.contains("not a regular file"), "{report}");
    assert!(report.contains("config.enc"), "{report}");
}

/// One trailing newline in the file is accepted (what an editor adds); anything more is not.
#[test]
fn token_file_newline_policy() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate().unwrap();
    let token = encrypt(&key, b"x").unwrap();
    let path = dir.path().join("config.enc");
    std::fs::write(&path, format!("{token}\n")).unwrap();
    assert_eq!(read_token_file(&path).unwrap(), token);
    assert_eq!(decrypt_file_to_memory(&key, &path).unwrap().as_slice(), b"x");
    for bad in
        [format!("{token}\n\n"), format!("{token}\r\n"), format!("{token} "), format!("\n{token}")]
    {
        std::fs::write(&path, bad).unwrap();
        assert!(matches!(decrypt_file_to_memory(&key, &path), Err(CryptoError::Decryption)));
    }
    std::fs::write(&path, [0xffu8, 0x00]).unwrap();
    assert!(matches!(decrypt_file_to_memory(&key, &path), Err(CryptoError::Decryption)));
}

#[test]
fn plaintext_removed_only_after_verification() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate().unwrap();
    let plain = dir.path().join("config.json");
    let enc = dir.path().join("config.enc");
    std::fs::write(&plain, b"{\"v\": 1}").unwrap();
    encrypt_file(&key, &plain, &enc).unwrap();

    // The plaintext changed after encryption: kept.
    std::fs::write(&plain, b"{\"v\": 2}").unwrap();
    let err = remove_plaintext_verified(&key, &plain, &enc).unwrap_err();
    assert!(matches!(err, CryptoError::VerificationFailed { .. }));
    assert!(plain.exists());

    // The ciphertext does not decrypt with this key: kept.
    let other = Key::generate().unwrap();
    encrypt_file(&other, &plain, &enc).unwrap();
    assert!(remove_plaintext_verified(&key, &plain, &enc).is_err());
    assert!(plain.exists());

    // Matches: removed, ciphertext intact.
    encrypt_file(&key, &plain, &enc).unwrap();
    remove_plaintext_verified(&key, &plain, &enc).unwrap();
    assert!(!plain.exists());
    assert_eq!(decrypt_file_to_memory(&key, &enc).unwrap().as_slice(), b"{\"v\": 2}");
}

#[test]
fn key_files_are_never_overwritten_or_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate().unwrap();
    let key_path = dir.path().join("secret.key");
    globo_crypto::KeyFile::create_new(&key_path, &key).unwrap();
    let before = std::fs::read(&key_path).unwrap();
    let plain = dir.path().join("config.json");
    std::fs::write(&plain, b"{}").unwrap();

    // `encrypt config.json --out secret.key`
    let err = encrypt_file(&key, &plain, &key_path).unwrap_err();
    assert!(matches!(err, CryptoError::KeyFileProtected { .. }), "{err}");
    assert_eq!(std::fs::read(&key_path).unwrap(), before);

    // `encrypt secret.key --remove-plaintext`: encrypting works, deleting the key does not.
    let enc = dir.path().join("key.enc");
    encrypt_file(&key, &key_path, &enc).unwrap();
    let err = remove_plaintext_verified(&key, &key_path, &enc).unwrap_err();
    assert!(matches!(err, CryptoError::KeyFileProtected { .. }), "{err}");
    assert_eq!(std::fs::read(&key_path).unwrap(), before);
}

#[cfg(unix)]
#[test]
fn removing_a_plaintext_through_a_link_removes_its_target_and_never_a_device() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate().unwrap();
    let shared = dir.path().join("shared-config.json");
    std::fs::write(&shared, b"{\"v\": 1}").unwrap();
    let link = dir.path().join("config.json");
    symlink(&shared, &link).unwrap();
    let enc = dir.path().join("config.enc");
    encrypt_file(&key, &link, &enc).unwrap();
    remove_plaintext_verified(&key, &link, &enc).unwrap();
    assert!(!shared.exists(), "the plaintext is still on disk behind the link");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(decrypt_file_to_memory(&key, &enc).unwrap().as_slice(), b"{\"v\": 1}");

    // A link to a device, and a device node itself (as root): refused, left in place.
    let mut specials = vec![dir.path().join("to-null")];
    symlink("/dev/null", &specials[0]).unwrap();
    if globo_testkit::in_ci()
        || std::process::Command::new("id").arg("-u").output().unwrap().stdout == b"0\n"
    {
        let node = dir.path().join("null");
        let made = std::process::Command::new("mknod").arg(&node).args(["c", "1", "3"]).status();
        assert!(made.unwrap().success(), "mknod needs root (CI runs as root)");
        specials.push(node);
    }
    for special in &specials {
        encrypt_file(&key, special, &enc).unwrap();
        let err = remove_plaintext_verified(&key, special, &enc).unwrap_err();
        assert!(matches!(err, CryptoError::NotRegularFile { .. }), "{err}");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert!(std::fs::symlink_metadata(special).is_ok(), "{} removed", special.display());
    }
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
}

/// A plaintext with another name (a hard link) is refused before anything is deleted: deleting
/// one name would leave the plaintext on disk under the other while claiming it is gone.
#[test]
fn a_hard_linked_plaintext_is_refused_and_kept_under_every_name() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate().unwrap();
    let plain = dir.path().join("config.json");
    let copy = dir.path().join("backup.json");
    std::fs::write(&plain, b"{\"v\": 1}").unwrap();
    std::fs::hard_link(&plain, &copy).unwrap();
    let err = globo_crypto::removable_plaintext(&plain).unwrap_err();
    assert!(matches!(err, CryptoError::PlaintextHardLinked { links: 2, .. }), "{err}");
    let enc = dir.path().join("config.enc");
    encrypt_file(&key, &plain, &enc).unwrap();
    let err = remove_plaintext_verified(&key, &plain, &enc).unwrap_err();
    assert!(matches!(err, CryptoError::PlaintextHardLinked { .. }), "{err}");
    assert!(err.to_string().contains("2 names"), "{err}");
    assert!(plain.exists() && copy.exists());
    // With one name left, it is deleted.
    std::fs::remove_file(&copy).unwrap();
    remove_plaintext_verified(&key, &plain, &enc).unwrap();
    assert!(!plain.exists());
}
