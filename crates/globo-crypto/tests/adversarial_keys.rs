//! Hostile key files: a FIFO (whose open would block forever) or a device where a key file
//! should be is refused promptly with a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use globo_crypto::{Key, KeyFile, LoadedKeys, next_key_path};

/// Runs `f` on another thread and fails the test if it blocks for 30 s.
fn promptly<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    wait.recv_timeout(Duration::from_secs(30)).expect("blocked")
}

fn mkfifo(path: &Path) {
    assert!(std::process::Command::new("mkfifo").arg(path).status().unwrap().success());
}

fn assert_not_regular(result: Result<impl std::fmt::Debug, globo_crypto::CryptoError>) {
    let error = result.unwrap_err();
    let text = globo_fs::with_causes(&error);
    assert!(text.contains("not a regular file"), "{text}");
}

#[test]
fn a_fifo_or_device_key_file_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("secret.key");
    mkfifo(&path);
    let p = path.clone();
    assert_not_regular(promptly(move || KeyFile::load(&p).map(drop)));
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    assert_not_regular(KeyFile::load(&path).map(drop));
}

#[test]
fn a_fifo_next_key_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    KeyFile::create_new(&path, &Key::generate().unwrap()).unwrap();
    mkfifo(&next_key_path(&path));
    let p = path.clone();
    assert_not_regular(promptly(move || LoadedKeys::load(&p).map(drop)));
    // The key itself is untouched.
    assert!(KeyFile::load(&path).is_ok());
}
