//! `mock-aws-seed` holds the seed values (secrets): its process is hardened like `app`'s, and
//! a closed stdout is a reported failure, never a panic (an abort in the release profile).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

const SEED: &str = env!("CARGO_BIN_EXE_mock-aws-seed");

const CONFIG: &str =
    r#"{"seed_secrets": {"PAYMENT_GATEWAY_API_KEY": "prod-payment-key-9f8e7d6c5b4a3210"}}"#;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn aws_env(command: &mut Command, endpoint: &str) {
    command
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
}

#[test]
fn a_closed_stdout_is_exit_1_with_a_message() {
    let Some(moto) = globo_testkit::moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // as `mock-aws-seed | head -c0` once head has exited
    let mut command = globo_testkit::isolated_command(SEED, dir.path());
    aws_env(&mut command, &moto.endpoint_url());
    let out = command.stdout(writer).stderr(Stdio::piped()).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", out.status);
    assert!(stderr.contains("error: cannot write to standard output: Broken pipe"), "{stderr}");
    assert!(!stderr.contains("prod-payment-key"), "{stderr}");
}

/// Seeding is idempotent and a half-applied list is worse than a lost report: with stdout
/// closed, every step is still applied (then the run exits 1).
#[test]
fn a_closed_stdout_still_seeds_every_secret() {
    let Some(moto) = globo_testkit::moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let names = ["SEED_A", "SEED_B", "SEED_C"];
    let config = format!(
        r#"{{"seed_secrets": {{"{}": "value-a", "{}": "value-b", "{}": "value-c"}}}}"#,
        names[0], names[1], names[2]
    );
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = globo_testkit::isolated_command(SEED, dir.path());
    aws_env(&mut command, &moto.endpoint_url());
    let out = command.stdout(writer).stderr(Stdio::piped()).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", out.status);
    assert!(stderr.contains("error: cannot write to standard output: Broken pipe"), "{stderr}");
    // Seeding again finds every secret in place.
    let mut command = globo_testkit::isolated_command(SEED, dir.path());
    aws_env(&mut command, &moto.endpoint_url());
    let again = globo_testkit::output_guarded(&mut command, None);
    let stdout = text(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    for name in names {
        // Before: "created SEED_B" here, the first run having stopped after SEED_A.
        assert!(stdout.contains(&format!("unchanged {name}")), "{stdout}");
    }
}

fn status_field(proc_dir: &str, name: &str) -> String {
    std::fs::read_to_string(format!("{proc_dir}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn the_process_is_not_dumpable() {
    if status_field("/proc/self", "Uid:").split_whitespace().nth(1) != Some("0") {
        assert!(!globo_testkit::in_ci(), "needs root to run the seeder as nobody (CI is root)");
        eprintln!("SKIPPED: needs root to run the seeder as nobody");
        return;
    }
    let outer = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outer.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let dir = outer.path().join("home");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("config.json"), CONFIG).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(dir.join("config.json"), Some(65534), Some(65534)).unwrap();

    // An endpoint that accepts and never answers: the seeder waits there, holding the values.
    let mut command = globo_testkit::isolated_command("setpriv", &dir);
    command
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", SEED])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    aws_env(&mut command, &globo_testkit::silent_endpoint());
    let mut child = command.spawn().unwrap();
    let proc_dir = format!("/proc/{}", child.id());
    // Waiting in the async runtime means main is past the hardening. (A bound on waiting, not
    // a timing assertion.)
    let mut waiting = false;
    for _ in 0..500 {
        let exe = std::fs::read_link(format!("{proc_dir}/exe")).ok();
        let wchan = std::fs::read_to_string(format!("{proc_dir}/wchan")).unwrap_or_default();
        if exe.as_deref() == Some(Path::new(SEED)) && wchan.contains("epoll") {
            waiting = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let limits = std::fs::read_to_string(format!("{proc_dir}/limits")).unwrap_or_default();
    let environ_owner = std::fs::metadata(format!("{proc_dir}/environ")).map(|m| m.uid());
    let _ = child.kill();
    let _ = child.wait();
    assert!(waiting, "the seeder did not reach the endpoint");
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    assert_eq!(core.split_whitespace().collect::<Vec<_>>()[4..6], ["0", "0"], "{core}");
    assert_eq!(environ_owner.unwrap(), 0, "the seeder running as nobody is still dumpable");
}
