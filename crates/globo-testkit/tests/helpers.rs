//! The helpers other suites rely on do what they say, and fail when they should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

#[test]
fn output_guarded_feeds_stdin_and_keeps_both_streams_and_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = globo_testkit::isolated_command("sh", dir.path());
    command.args(["-c", "cat; echo oops >&2; exit 3"]);
    let out = globo_testkit::output_guarded(&mut command, Some(b"hello"));
    assert_eq!(out.stdout, b"hello");
    assert_eq!(out.stderr, b"oops\n");
    assert_eq!(out.status.code(), Some(3));

    // No input at all: the program reads end-of-file at once.
    let mut command = globo_testkit::isolated_command("cat", dir.path());
    let out = globo_testkit::output_guarded(&mut command, None);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
}

#[test]
fn isolated_command_sets_only_path_and_home() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = globo_testkit::isolated_command("env", dir.path());
    let out = globo_testkit::output_guarded(&mut command, None);
    let text = String::from_utf8(out.stdout).unwrap();
    let names: BTreeSet<&str> = text.lines().filter_map(|l| l.split('=').next()).collect();
    assert_eq!(names, BTreeSet::from(["HOME", "PATH"]), "{text}");
    assert!(text.contains(&format!("HOME={}\n", dir.path().display())), "{text}");
}

/// A program a Python script starts (the `app` pty tests `os.execve` it) inherits Python's
/// environment: it must hold none of the developer's settings. This test process always has
/// some beyond the allowed ones (cargo's `CARGO_*`, the runner's, `CI`, `GLOBO_PYTHON`).
#[test]
fn python_runs_in_a_cleared_environment() {
    let Some(py) = globo_testkit::python(&["os"]) else { return };
    let out =
        py.run_ok("import os, sys; sys.stdout.write('\\n'.join(sorted(os.environ)))", &[], b"");
    let text = String::from_utf8(out).unwrap();
    let names: BTreeSet<&str> = text.lines().collect();
    // LC_CTYPE: Python sets it itself when it coerces the C locale (PEP 538).
    let allowed = BTreeSet::from(["HOME", "LC_CTYPE", "PATH", "TMPDIR"]);
    assert!(names.is_subset(&allowed), "python saw {names:?}");
    assert!(names.contains("PATH"), "python saw {names:?}");
}

#[test]
fn fernet_files_both_ways_catches_a_wrong_decryption() {
    let Some(py) = globo_testkit::python(&["cryptography"]) else { return };
    let key = fernet::Fernet::generate_key();
    let fernet = fernet::Fernet::new(&key).unwrap();
    let encrypt = |plain: &std::path::Path, out: &std::path::Path| {
        std::fs::write(out, fernet.encrypt(&std::fs::read(plain).unwrap())).unwrap();
    };
    let decrypt = |path: &std::path::Path| {
        fernet.decrypt(std::str::from_utf8(&std::fs::read(path).unwrap()).unwrap()).unwrap()
    };
    globo_testkit::fernet_files_both_ways(&py, &key, &[0, 1, 100], encrypt, decrypt);

    // A decryption that changes one byte, or an encryption under another key, fails it.
    let flipped = |path: &std::path::Path| {
        let mut plain = decrypt(path);
        plain.push(0);
        plain
    };
    let caught = catch_unwind(AssertUnwindSafe(|| {
        globo_testkit::fernet_files_both_ways(&py, &key, &[0, 100], encrypt, flipped);
    }));
    assert!(caught.is_err(), "a wrong decryption passed");
    let other = fernet::Fernet::new(&fernet::Fernet::generate_key()).unwrap();
    let wrong_key = |plain: &std::path::Path, out: &std::path::Path| {
        std::fs::write(out, other.encrypt(&std::fs::read(plain).unwrap())).unwrap();
    };
    let caught = catch_unwind(AssertUnwindSafe(|| {
        globo_testkit::fernet_files_both_ways(&py, &key, &[10], wrong_key, decrypt);
    }));
    assert!(caught.is_err(), "a token under another key passed");
}

#[cfg(feature = "aws")]
#[test]
fn emulator_config_sets_the_endpoint_region_and_credentials() {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    let config =
        globo_testkit::block_on(globo_testkit::emulator_config(loader, "http://127.0.0.1:9"));
    assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:9"));
    assert_eq!(config.region().map(|r| r.as_ref()), Some(globo_testkit::EMULATOR_REGION));
    assert!(config.credentials_provider().is_some());
}

#[test]
fn silent_endpoint_accepts_and_never_answers() {
    use std::io::{Read, Write};
    let endpoint = globo_testkit::silent_endpoint();
    let address = endpoint.strip_prefix("http://127.0.0.1:").unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", address.parse().unwrap())).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut byte = [0u8; 1];
    let error = stream.read(&mut byte).unwrap_err();
    assert!(
        matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        "{error:?}"
    );
}
