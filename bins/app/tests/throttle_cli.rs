//! Login throttling through `app verify` (`--source`) and `app users unlock`, run as the real
//! binary on a state file the library also reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use globo::auth::{MAX_LOCK_AFTER, Profile, ThrottlePolicy, UserStore};
use secrecy::SecretString;

const APP: &str = env!("CARGO_BIN_EXE_app");
const RIGHT: &str = "a fine long passphrase";
const WRONG: &str = "not the passphrase at all";

fn spawn(dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Child {
    let mut child = globo_testkit::isolated_command(APP, dir)
        .args(args)
        .env("GLOBO_PASSWORD_PROFILE", "test-only-insecure")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child
}

fn run(dir: &Path, args: &[&str], stdin: &str) -> Output {
    spawn(dir, args, stdin, &[]).wait_with_output().unwrap()
}

/// stderr without the warning the cheap test profile prints.
fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|line| !line.starts_with("warning: using the test-only-insecure"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A users file with alice (password [`RIGHT`]).
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    UserStore::new(dir.path().join("users.json"))
        .with_profile(Profile::TestOnlyInsecure)
        .register("alice", &SecretString::from(RIGHT))
        .unwrap();
    dir
}

/// The library, at a fixed second, with no delays (so a test reaches a lock at once); the
/// state it writes is what `app` (default policy) then reads.
fn library_at(dir: &Path, at: SystemTime) -> UserStore {
    let policy = ThrottlePolicy::default()
        .free_failures(MAX_LOCK_AFTER)
        .source_free_failures(MAX_LOCK_AFTER);
    UserStore::new(dir.join("users.json"))
        .with_profile(Profile::TestOnlyInsecure)
        .with_throttle(policy)
        .unwrap()
        .with_clock(Arc::new(move || at))
}

/// Now, to the second.
fn this_second() -> SystemTime {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn a_locked_account_answers_like_a_locked_unknown_name_with_how_to_recover() {
    let dir = setup();
    let d = dir.path();
    let library = library_at(d, this_second());
    for name in ["alice", "zelda"] {
        for _ in 0..MAX_LOCK_AFTER {
            let _ = library.verify(name, &SecretString::from(WRONG));
        }
    }
    let known = run(d, &["verify", "alice", "--password-stdin"], &format!("{RIGHT}\n"));
    let unknown = run(d, &["verify", "zelda", "--password-stdin"], &format!("{RIGHT}\n"));
    for out in [&known, &unknown] {
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stdout(out), "");
    }
    let message = stderr(&known);
    assert!(
        message
            .starts_with("error: too many failed login attempts for this account: locked until "),
        "{message}"
    );
    // Review F, point 9: the hint says `<name>`, never the name as typed (it may be a
    // password typed into the name field). Before, it said `app users unlock alice`.
    assert!(
        message
            .ends_with(" UTC. An operator can lift the lock now with `app users unlock <name>`.\n"),
        "{message}"
    );
    assert!(!message.contains("alice"), "{message}");
    assert_eq!(stderr(&unknown), message);
    // The operator's unlock follows the hint for either name: a name no user has is told
    // so, and its record is cleared all the same (review P2g, point 5: before, it failed
    // with "no user 'zelda' in the store" and the lock stayed, a dead end); then nothing is
    // left to clear, and the name is unknown.
    let out = run(d, &["users", "unlock", "zelda"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "No user 'zelda' in the store; its failed logins were cleared.\n");
    let out = run(d, &["verify", "zelda", "--password-stdin"], &format!("{RIGHT}\n"));
    assert_eq!(stderr(&out), "error: Invalid username or password.\n");
    let out = run(d, &["users", "unlock", "yolanda"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: no user 'yolanda' in the store: run `app users list`")
    );
    let out = run(d, &["users", "unlock", "alice"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "User 'alice' unlocked.\n");
    let out = run(d, &["users", "unlock", "alice"], "");
    assert_eq!(stdout(&out), "User 'alice' had no failed logins.\n");
    let out = run(d, &["verify", "alice", "--password-stdin"], &format!("{RIGHT}\n"));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_locked_source_is_refused_for_every_account_until_unlocked() {
    let dir = setup();
    let d = dir.path();
    let library = library_at(d, this_second());
    for i in 0..MAX_LOCK_AFTER {
        let name = format!("guess{i}");
        let _ = library.verify_from(&name, &SecretString::from(WRONG), Some("198.51.100.7"));
    }
    let by_option = run(
        d,
        &["verify", "alice", "--password-stdin", "--source", "198.51.100.7"],
        &format!("{RIGHT}\n"),
    );
    let by_env = spawn(
        d,
        &["verify", "alice", "--password-stdin"],
        &format!("{RIGHT}\n"),
        &[("GLOBO_LOGIN_SOURCE", "198.51.100.7")],
    )
    .wait_with_output()
    .unwrap();
    for out in [&by_option, &by_env] {
        assert_eq!(out.status.code(), Some(1));
        let message = stderr(out);
        assert!(
            message.starts_with(
                "error: too many failed login attempts from this source: locked until "
            ),
            "{message}"
        );
        assert!(message.ends_with("`app users unlock --source 198.51.100.7`.\n"), "{message}");
    }
    // From another source, or none, alice logs in.
    let out = run(d, &["verify", "alice", "--password-stdin"], &format!("{RIGHT}\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(d, &["users", "unlock", "--source", "198.51.100.7"], "");
    assert_eq!(stdout(&out), "Source '198.51.100.7' unlocked.\n");
    let out = run(
        d,
        &["verify", "alice", "--password-stdin", "--source", "198.51.100.7"],
        &format!("{RIGHT}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // A name and --source together are a usage error.
    let out = run(d, &["users", "unlock", "alice", "--source", "x"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn parallel_app_processes_count_each_accepted_attempt_once() {
    let dir = setup();
    let d = dir.path();
    let children: Vec<Child> = (0..100)
        .map(|_| spawn(d, &["verify", "alice", "--password-stdin"], &format!("{WRONG}\n"), &[]))
        .collect();
    let (mut counted, mut refused) = (0, 0);
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let message = stderr(&out);
        if message == "error: Invalid username or password.\n" {
            counted += 1;
        } else {
            assert!(
                message.starts_with(
                    "error: too many failed login attempts for this account: try again after "
                ),
                "{message}"
            );
            refused += 1;
        }
    }
    // The default policy: five failures pass at once, the rest wait for delays of 1 s, 2 s,
    // 4 s, ... so however the processes are scheduled some are refused; every attempt that
    // ran is counted, and no refused one is.
    assert_eq!(counted + refused, 100);
    assert!(counted >= 5 && refused > 0, "{counted} counted, {refused} refused");
    let status = UserStore::new(d.join("users.json")).throttle_status("alice").unwrap();
    assert_eq!(status.failures, counted);
}

#[test]
fn passwd_counts_its_source_and_tells_how_to_lift_a_lock_like_verify() {
    let dir = setup();
    let d = dir.path();
    let library = library_at(d, this_second());
    for i in 0..MAX_LOCK_AFTER {
        let name = format!("guess{i}");
        let _ = library.verify_from(&name, &SecretString::from(WRONG), Some("198.51.100.7"));
    }
    let two_lines = format!("{RIGHT}\nan even longer new passphrase\n");
    let args = ["users", "passwd", "alice", "--password-stdin"];
    let by_option = run(d, &[&args[..], &["--source", "198.51.100.7"]].concat(), &two_lines);
    let by_env = spawn(d, &args, &two_lines, &[("GLOBO_LOGIN_SOURCE", "198.51.100.7")])
        .wait_with_output()
        .unwrap();
    for out in [&by_option, &by_env] {
        assert_eq!(out.status.code(), Some(1));
        let message = stderr(out);
        assert!(
            message.starts_with(
                "error: too many failed login attempts from this source: locked until "
            ),
            "{message}"
        );
        assert!(message.ends_with("`app users unlock --source 198.51.100.7`.\n"), "{message}");
    }
    // A locked account: the same hint as `app verify` gives, for known and unknown names.
    for name in ["alice", "zelda"] {
        for _ in 0..MAX_LOCK_AFTER {
            let _ = library.verify(name, &SecretString::from(WRONG));
        }
    }
    let known = run(d, &args, &two_lines);
    let unknown = run(d, &["users", "passwd", "zelda", "--password-stdin"], &two_lines);
    let message = stderr(&known);
    assert!(
        message.starts_with("error: too many failed login attempts for this account: locked "),
        "{message}"
    );
    assert!(message.ends_with("`app users unlock <name>`.\n"), "{message}");
    assert_eq!(stderr(&unknown), message);
    assert!(run(d, &["users", "unlock", "alice"], "").status.success());
    let out = run(d, &args, &two_lines);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Review P2g, point 4: a password typed into the name field must not reach the log. A
/// failed login of a name no user has is logged as `unknown:` and 12 hex digits; a known
/// user by the stored name; the answer on stderr's first line is the same for both. Before,
/// the name was logged as typed (escaped: `my\u{20}password\u{20}...`).
#[test]
fn a_name_no_user_has_is_logged_by_a_label_never_as_typed() {
    let dir = setup();
    let d = dir.path();
    let typed = "mypasswordtypedasthename";
    let log = [("RUST_LOG", "globo_auth=info"), ("GLOBO_LOG_FORMAT", "json")];
    let events = |name: &str| {
        let args = ["verify", name, "--password-stdin", "--source", "192.0.2.3"];
        let out = spawn(d, &args, &format!("{WRONG}\n"), &log).wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let text = stderr(&out);
        let answer = text.lines().find(|l| l.starts_with("error:")).unwrap().to_owned();
        let events: Vec<serde_json::Value> = text
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (answer, text, events)
    };
    let (known_answer, _, known) = events("alice");
    let (unknown_answer, text, unknown) = events(typed);
    assert_eq!(known_answer, unknown_answer);
    assert!(!text.contains(typed), "{text}");
    assert_eq!(known.len(), 1, "{known:?}");
    assert_eq!(known[0]["event"], "authn_login_fail:alice");
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    let label = unknown[0]["username"].as_str().unwrap();
    let hex = label.strip_prefix("unknown:").unwrap();
    assert!(hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()), "{label}");
    assert_eq!(unknown[0]["event"], format!("authn_login_fail:{label}"));
    // The same name gets the same label again, so an operator can follow one name.
    let (_, _, again) = events(typed);
    assert_eq!(again[0]["username"], label);
}

/// Review F, point 9: a shard with no room for a new record (every record in it an account
/// past its free failures) refuses the login, and the CLI says how to recover: wait for the
/// records to be forgotten, or remove that shard file. Before, it printed the library's
/// message alone.
#[test]
fn a_full_throttling_shard_is_refused_with_how_to_recover() {
    let dir = setup();
    let d = dir.path();
    // A first attempt creates the state folder and its salt.
    let out = run(d, &["verify", "alice", "--password-stdin"], &format!("{WRONG}\n"));
    assert_eq!(out.status.code(), Some(1));
    let folder = d.join("users.json.throttle");
    // Every shard full of locked accounts (390 each): no new record fits anywhere.
    let now_ms =
        u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
    for shard in 0..=255u8 {
        let accounts: serde_json::Map<String, serde_json::Value> = (0..390)
            .map(|i| (format!("{shard:02x}{i:062x}"), serde_json::json!([MAX_LOCK_AFTER, now_ms])))
            .collect();
        let file = serde_json::json!({"version": 1, "accounts": accounts, "sources": {}});
        std::fs::write(folder.join(format!("{shard:02x}")), file.to_string()).unwrap();
    }
    let out = run(d, &["verify", "zelda", "--password-stdin"], &format!("{RIGHT}\n"));
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.starts_with("error: the throttling state file '"), "{message}");
    assert!(message.contains("has no room for another record"), "{message}");
    assert!(message.contains("\nhint: "), "{message}");
    // Review G, point 1: every record is forgotten in time (an open account past its free
    // failures included) but a lock until unlocked; before, the hint promised the delays
    // and locks would end, which an open account's record and such a lock never did.
    assert!(
        message.contains(
            "until some are forgotten, each at most the lock duration (24 hours by default) \
             after its last failure unless it is locked until an operator unlocks it"
        ),
        "{message}"
    );
    assert!(message.contains("removes '"), "{message}");
    assert!(!message.contains("zelda"), "{message}");
}
