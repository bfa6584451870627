//! Hostile `.env` files: oversized or endless ones are refused with a clear error before they
//! can exhaust memory; values never appear in the error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::time::Duration;

use globo_secrets::{Environment, LocalProvider, MAX_ENV_FILE_LEN, SecretsError, read_env_file};

fn assert_too_large(result: Result<impl std::fmt::Debug, SecretsError>) {
    match result {
        Err(error @ SecretsError::EnvFileUnreadable { .. }) => {
            // The whole report: the size bound is the cause's text (printed once, as a cause).
            let message = globo_secrets::with_causes(&error);
            assert!(
                message.contains(&format!("larger than {MAX_ENV_FILE_LEN} bytes")),
                "{message}"
            );
            assert!(!message.contains("value-"), "{message}");
        }
        other => panic!("expected a too-large error, got {other:?}"),
    }
}

#[test]
fn an_oversized_env_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut written = 0u64;
    let mut i = 0;
    while written <= MAX_ENV_FILE_LEN {
        let line = format!("KEY_{i}=value-{i}\n");
        file.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        i += 1;
    }
    drop(file);
    assert_too_large(read_env_file(&path));
    assert_too_large(LocalProvider::new(&path, &Environment::empty()));
}

#[test]
fn an_env_file_at_the_bound_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    let mut bytes = b"A=1\n".to_vec();
    bytes.resize(MAX_ENV_FILE_LEN as usize, b'\n');
    std::fs::write(&path, bytes).unwrap();
    let entries = read_env_file(&path).unwrap().unwrap();
    assert_eq!(entries.len(), 1);
}

#[cfg(unix)]
#[test]
fn an_endless_env_file_is_refused_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    // Without the bound this reads forever (one endless line) until memory runs out.
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(read_env_file(&path).map(|e| e.map(|v| v.len())));
    });
    let result = wait.recv_timeout(Duration::from_secs(60)).expect("read_env_file hung");
    assert_too_large(result);
}
