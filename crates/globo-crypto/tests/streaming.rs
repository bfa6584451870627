#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The streaming file paths (`encrypt_file`, `decrypt_file_to_memory`) differentially against
//! the in-memory API, the `fernet` crate and Python `cryptography`, on random data at the sizes
//! where chunks (96 KiB), base64 groups (3 bytes), blocks (16 bytes) and the pipelined mode
//! (1 MiB) meet; tampering anywhere in a token file gives no plaintext; a failed encryption
//! leaves the old ciphertext in place.

use std::path::Path;

use globo_crypto::{CryptoError, Key, decrypt, decrypt_file_to_memory, encrypt_file};
use secrecy::ExposeSecret as _;

/// The chunk of plaintext the encoder works on (`fernet::pipeline::CHUNK`) and the size from
/// which work is pipelined over threads with the `parallel` feature
/// (`fernet::pipeline::PARALLEL_MIN`).
const CHUNK: usize = 48 * 2048;
const PARALLEL_MIN: usize = 1 << 20;

fn random_below(n: usize) -> usize {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    (u64::from_le_bytes(b) % n as u64) as usize
}

fn sizes() -> Vec<usize> {
    let mut sizes = vec![0, 1, 2, 3, 15, 16, 17, 47, 48, 49, 1024];
    for edge in [CHUNK, 2 * CHUNK, PARALLEL_MIN] {
        for delta in [-48isize, -17, -16, -3, -1, 0, 1, 2, 3, 16, 17, 48] {
            sizes.push(edge.checked_add_signed(delta).unwrap());
        }
    }
    sizes.push(random_below(3 * CHUNK));
    sizes.push(PARALLEL_MIN + random_below(4 << 20)); // a few MiB
    sizes
}

fn write_plain(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn files_agree_with_memory_and_the_fernet_crate() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate().unwrap();
    let other = fernet::Fernet::new(key.to_base64().expose_secret()).unwrap();
    for size in sizes() {
        let data = globo_testkit::random_bytes(size);
        let plain = write_plain(dir.path(), "p", &data);
        let enc = dir.path().join("p.enc");
        encrypt_file(&key, &plain, &enc).unwrap();
        let token = std::fs::read_to_string(&enc).unwrap();
        assert_eq!(token.len(), (25 + (size / 16 + 1) * 16 + 32).div_ceil(3) * 4, "{size}");
        assert!(other.decrypt(&token).unwrap() == data, "fernet crate, {size}");
        assert!(decrypt(&key, &token).unwrap().as_slice() == data.as_slice(), "memory, {size}");
        let from_file = decrypt_file_to_memory(&key, &enc).unwrap();
        assert!(from_file.as_slice() == data.as_slice(), "file, {size}");

        // A token from the fernet crate, with and without the trailing newline a tool may add.
        let theirs = other.encrypt(&data);
        for text in [theirs.clone(), format!("{theirs}\n")] {
            std::fs::write(&enc, text).unwrap();
            let got = decrypt_file_to_memory(&key, &enc).unwrap();
            assert!(got.as_slice() == data.as_slice(), "fernet crate token, {size}");
        }
    }
}

/// Python decrypts the files globo's streaming encoder made, and globo's streaming decoder
/// the files Python made.
#[test]
fn files_agree_with_python_cryptography() {
    let Some(py) = globo_testkit::python(&["cryptography"]) else { return };
    let key = Key::generate().unwrap();
    globo_testkit::fernet_files_both_ways(
        &py,
        key.to_base64().expose_secret(),
        &sizes(),
        |plain, out| encrypt_file(&key, plain, out).unwrap(),
        |path| decrypt_file_to_memory(&key, path).unwrap().as_slice().to_vec(),
    );
}

/// Changing any of a set of characters (the header, a chunk boundary, the middle, the last
/// bytes of the HMAC, the base64 padding), cutting or extending the file: no plaintext, the
/// one opaque error, on both the serial and the pipelined sizes.
#[test]
fn tampered_files_release_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate().unwrap();
    for size in [5usize, 2 * CHUNK + 5, PARALLEL_MIN + 5] {
        let plain = write_plain(dir.path(), "p", &globo_testkit::random_bytes(size));
        let enc = dir.path().join("p.enc");
        encrypt_file(&key, &plain, &enc).unwrap();
        let token = std::fs::read(&enc).unwrap();
        let n = token.len();
        assert!(token.ends_with(b"="), "{size}: the token ends with padding");
        let mut positions = vec![0, 1, 12, 35, 36, CHUNK.min(n / 2) * 4 / 3, n / 2, n - 44];
        positions.extend(n - 6..n);
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for i in positions {
            for r in [b'A', b'Q', b'-', b'=', b'\n', 0xff] {
                if token[i] != r {
                    let mut t = token.clone();
                    t[i] = r;
                    cases.push(t);
                }
            }
        }
        cases.push(token[..n - 1].to_vec());
        cases.push(token[..n - 4].to_vec());
        cases.push([&token[..], b"\n\n"].concat());
        cases.push([&token[..], b"AAAA"].concat());
        cases.push([&b"\n"[..], &token[..]].concat());
        for (c, case) in cases.iter().enumerate() {
            std::fs::write(&enc, case).unwrap();
            let result = decrypt_file_to_memory(&key, &enc);
            assert!(matches!(result, Err(CryptoError::Decryption)), "{size}: case {c}");
        }
        // The original still decrypts (the cases were real changes, not a broken setup).
        std::fs::write(&enc, &token).unwrap();
        assert_eq!(decrypt_file_to_memory(&key, &enc).unwrap().len(), size);
        // Another key: the same error.
        let wrong = decrypt_file_to_memory(&Key::generate().unwrap(), &enc);
        assert!(matches!(wrong, Err(CryptoError::Decryption)));
    }
}

/// A plaintext that cannot be read to the end (a folder) leaves the old ciphertext as it was
/// and no temporary file behind.
#[test]
fn failed_encryption_leaves_the_old_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate().unwrap();
    let plain = write_plain(dir.path(), "config.json", b"{}");
    let enc = dir.path().join("config.enc");
    encrypt_file(&key, &plain, &enc).unwrap();
    let before = std::fs::read(&enc).unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let err = encrypt_file(&key, &folder, &enc).unwrap_err();
    assert!(matches!(err, CryptoError::File { .. }), "{err}");
    assert!(err.to_string().contains("folder"), "{err}");
    assert_eq!(std::fs::read(&enc).unwrap(), before);
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

/// A token arriving through a pipe (no length known in advance) still decrypts.
#[cfg(unix)]
#[test]
fn token_from_a_pipe() {
    let key = Key::generate().unwrap();
    let token = globo_crypto::encrypt(&key, b"{\"piped\": true}").unwrap();
    let mut child = std::process::Command::new("sh")
        .args(["-c", "printf '%s\\n' \"$0\"", &token])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stdout);
    let path = std::path::PathBuf::from(format!("/proc/self/fd/{fd}"));
    let got = decrypt_file_to_memory(&key, &path).unwrap();
    assert_eq!(got.as_slice(), b"{\"piped\": true}");
    drop(stdout);
    child.wait().unwrap();
}

/// Plaintext arriving through a pipe (no size known) is encrypted in full chunks.
#[cfg(unix)]
#[test]
fn plaintext_from_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::generate().unwrap();
    let data = globo_testkit::random_bytes(3 * CHUNK + 5);
    let source = write_plain(dir.path(), "p", &data);
    let mut child = std::process::Command::new("cat")
        .arg(&source)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stdout);
    let enc = dir.path().join("p.enc");
    encrypt_file(&key, Path::new(&format!("/proc/self/fd/{fd}")), &enc).unwrap();
    drop(stdout);
    child.wait().unwrap();
    assert!(decrypt_file_to_memory(&key, &enc).unwrap().as_slice() == data.as_slice());
}

/// An endless device is refused at its first byte, not read into memory.
#[cfg(unix)]
#[test]
fn endless_device_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.enc");
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    let key = Key::generate().unwrap();
    assert!(matches!(decrypt_file_to_memory(&key, &path), Err(CryptoError::Decryption)));
    assert!(matches!(globo_crypto::inspect_file(&path), Err(CryptoError::MalformedToken)));
}
