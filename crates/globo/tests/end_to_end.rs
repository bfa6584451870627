//! Runs the `end_to_end` example (built by `cargo test` alongside the tests) and checks that
//! every step of the lab succeeds, that it prints the values the lab prints and no key, and
//! that it leaves nothing behind: no temporary folder, no emulator listening.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output};

/// `target/<profile>/examples/end_to_end`, built with `cargo build --example` if missing.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    let path =
        profile_dir.join("examples").join(format!("end_to_end{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "globo", "--example", "end_to_end"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert!(path.is_file(), "{} not built", path.display());
    path
}

fn run(envs: &[(&str, &str)]) -> Output {
    Command::new(example()).envs(envs.iter().copied()).output().unwrap()
}

/// The folder the demo announced, which must be gone afterwards.
fn workdir(stdout: &str) -> PathBuf {
    let line = stdout.lines().find(|l| l.contains("working in ")).unwrap();
    PathBuf::from(line.split("working in ").nth(1).unwrap())
}

#[test]
fn every_lab_step_succeeds_and_nothing_is_left_behind() {
    let out = run(&[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!workdir(&stdout).exists(), "the temporary folder is still there");
    assert!(stdout.contains("[1/11] register alice ... ok (User 'alice' registered.)"), "{stdout}");
    assert!(stdout.contains("[3/11] verify alice with a wrong password ... ok (rejected"));
    assert!(stdout.contains("\"new_checkout\": true"), "{stdout}");
    assert!(stdout.contains("in local mode (.env) ... ok (local-dev-payment-key-123456)"));
    if stdout.contains("prod steps skipped") {
        // No Python here: the local steps ran; a failure when CI=true.
        globo_testkit::missing("Python 3 for the emulator (the demo's prod steps)");
        return;
    }
    for n in 1..=11 {
        let step = stdout.lines().find(|l| l.starts_with(&format!("[{n}/11] "))).unwrap();
        assert!(step.contains(" ... ok"), "{step}");
    }
    assert!(stdout.contains("(AWS Secrets Manager) ... ok (prod-payment-key-9f8e7d6c5b4a3210)"));
    assert!(stdout.contains("created FERNET_KEY"), "{stdout}");
    assert!(stdout.contains("decrypted with secret 'FERNET_KEY'"), "{stdout}");
    // The emulator it started is stopped.
    let line = stdout.lines().find(|l| l.starts_with("emulator on ")).unwrap();
    let address = line.trim_start_matches("emulator on http://").trim_end_matches(" stopped");
    assert!(TcpStream::connect(address).is_err(), "the emulator still answers on {address}");
    // No key material is printed: no 44-character URL-safe base64 word.
    let keylike = stdout
        .split(|c: char| !(c.is_ascii_alphanumeric() || "-_=".contains(c)))
        .any(|word| word.len() == 44 && word.ends_with('=') && !word.contains("REPLACE"));
    assert!(!keylike, "{stdout}");
}

#[test]
fn a_failing_step_exits_1_and_still_cleans_up() {
    // A broken emulator override is an operational failure, not "Python missing".
    let out = run(&[("GLOBO_MOTO_SERVER", "/nonexistent/moto_server")]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("[8/11] start the AWS emulator (moto) ... FAILED"), "{stdout}");
    assert!(stderr.contains("GLOBO_MOTO_SERVER"), "{stderr}");
    assert!(!workdir(&stdout).exists(), "the temporary folder is still there");
}

/// A closed stdout (`cargo run --example end_to_end | head -c0`) is no panic: every step
/// still runs, the folder is removed, and the exit code says the output was lost.
#[test]
fn a_closed_stdout_is_exit_1_and_still_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(example())
        .env("TMPDIR", tmp.path())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    // Before: exit 101, "failed printing to stdout: Broken pipe", the folder left behind.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write to standard output"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The demo installed outside any checkout (so no venv to install moto into) and no
/// `moto_server` anywhere: the prod steps are skipped with the reason, and fail with CI=true.
#[test]
fn outside_a_checkout_the_prod_steps_are_skipped_but_fail_in_ci() {
    let bin = tempfile::tempdir().unwrap();
    let copy = bin.path().join("end_to_end");
    std::fs::copy(example(), &copy).unwrap();
    let run_in = |ci: Option<&str>| {
        let mut command = globo_testkit::isolated_command(&copy, bin.path());
        command.env("PATH", "/usr/bin:/bin");
        if let Some(ci) = ci {
            command.env("CI", ci);
        }
        globo_testkit::output_guarded(&mut command, None)
    };
    let out = run_in(None);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    // Before: exit 1, "end_to_end: moto_server not found ... is not inside a globo checkout".
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("prod steps skipped"), "{stdout}");
    assert!(stdout.contains("is not inside a globo checkout"), "{stdout}");
    let out = run_in(Some("true"));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not inside a globo checkout"), "{stderr}");
}
