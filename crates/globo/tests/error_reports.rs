//! Error reports print every cause once: a message never repeats the text of its `source()`
//! (issue 12 point 4: `FsError` printed its OS error twice, once in its own message and once
//! as the cause). Runs `with_causes` over representative errors of each crate that has
//! sources: globo-fs, globo-auth, globo-emulator, globo-crypto, globo-secrets, and the
//! facade's own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error;
use std::path::{Path, PathBuf};

use globo::auth::{AuthError, Profile, UserStore};
use secrecy::SecretString;

/// The report's lines: the message, then each cause.
fn lines(report: &str) -> Vec<&str> {
    report.split("\n  caused by: ").collect()
}

/// No line of the report contains the text of a later one (a cause printed twice), and the
/// report is exactly what `Report` displays.
fn assert_each_cause_once(what: &str, error: &(dyn Error + 'static)) -> String {
    let report = globo::with_causes(error);
    assert_eq!(report, globo::Report::new(error).to_string(), "{what}");
    let lines = lines(&report);
    assert!(lines.len() >= 2, "{what}: expected an error with a cause, got: {report}");
    for (i, cause) in lines.iter().enumerate().skip(1) {
        for earlier in &lines[..i] {
            assert!(
                !earlier.contains(cause),
                "{what}: the cause '{cause}' is printed twice:\n{report}"
            );
        }
    }
    report
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success());
}

fn users_file(dir: &Path, content: &str) -> UserStore {
    let path = dir.join("users.json");
    std::fs::write(&path, content).unwrap();
    UserStore::new(&path).with_profile(Profile::TestOnlyInsecure)
}

#[test]
fn file_errors_print_their_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder").join("secret.key");
    let error = globo_fs::write_atomic(&missing, b"x").unwrap_err();
    let report = assert_each_cause_once("write_atomic in a missing folder", &error);
    // What users see stays as clear as before: the path, and the OS's reason exactly once.
    let os = error.source().unwrap().to_string();
    assert_eq!(report.matches(&os).count(), 1, "{report}");
    assert!(report.starts_with("cannot "), "{report}");
    assert!(report.contains(&dir.path().display().to_string()), "{report}");

    let error = globo_fs::read_small(dir.path(), 1024).unwrap_err();
    let report = assert_each_cause_once("read_small of a folder", &error);
    assert!(report.contains("folder"), "{report}");

    let fifo = dir.path().join(".env");
    mkfifo(&fifo);
    let error = globo_fs::read_small_regular(&fifo, 1024).unwrap_err();
    let report = assert_each_cause_once("read_small_regular of a FIFO", &error);
    assert!(report.contains("not a regular file"), "{report}");
    let error = globo_fs::read_small(&fifo, 1024).unwrap_err();
    let report = assert_each_cause_once("read_small of a FIFO with no writer", &error);
    assert_eq!(report.matches("no writer").count(), 1, "{report}");
}

#[test]
fn auth_errors_print_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let password = SecretString::from("correct horse battery staple");

    let store = UserStore::new(dir.path().join("missing").join("users.json"));
    let error = store.register("alice", &password).unwrap_err();
    assert!(matches!(error, AuthError::File { .. }), "{error:?}");
    let report = assert_each_cause_once("register in a missing folder", &error);
    assert_eq!(lines(&report).len(), 3, "{report}");

    let error = users_file(dir.path(), "{").verify("alice", &password).unwrap_err();
    assert!(matches!(error, AuthError::CorruptUsersFile { .. }), "{error:?}");
    assert_each_cause_once("a users file that is not JSON", &error);

    let error =
        users_file(dir.path(), r#"{"alice": "$argon2id$nonsense"}"#).verify("alice", &password);
    let error = error.unwrap_err();
    assert!(matches!(error, AuthError::BadEntry { .. }), "{error:?}");
    assert_each_cause_once("an unusable entry", &error);
}

#[test]
fn emulator_errors_print_their_os_error_once() {
    let options = globo_emulator::Options {
        program: Some(PathBuf::from("/nonexistent/moto_server")),
        ..globo_emulator::Options::default()
    };
    let error = globo_emulator::Emulator::start(options).unwrap_err();
    assert!(matches!(error, globo_emulator::EmulatorError::Spawn { .. }), "{error:?}");
    let report = assert_each_cause_once("a missing emulator program", &error);
    assert!(report.contains("/nonexistent/moto_server"), "{report}");

    let os = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
    let error = globo_emulator::EmulatorError::NoFreePort(os);
    assert_each_cause_once("no free port", &error);
}

#[test]
fn secrets_errors_print_their_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the .env file should be.
    let env = globo::secrets::Environment::empty();
    let error = globo::secrets::LocalProvider::new(dir.path(), &env).unwrap_err();
    let report = assert_each_cause_once("a folder as .env", &error);
    assert!(report.contains(&dir.path().display().to_string()), "{report}");
}

#[test]
fn crypto_file_errors_print_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = globo::crypto::Key::generate().unwrap();
    let out = dir.path().join("config.enc");
    let error = globo::crypto::encrypt_file(&key, dir.path(), &out).unwrap_err();
    assert_each_cause_once("encrypting a folder", &error);
}
