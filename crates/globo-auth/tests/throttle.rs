//! Login throttling (NIST SP 800-63B-4 §3.2.2): delays, locks, per-source limits, unknown
//! names, the shared state folder, and counting under concurrency (threads and processes).
// print_stdout: the process probe reports its outcome to the parent test on stdout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use globo_auth::{
    AuthError, AuthErrorKind, MAX_LOCK_AFTER, Profile, ThrottlePolicy, ThrottleScope,
    ThrottleState, ThrottleStatus, UserStore,
};
use secrecy::SecretString;

const RIGHT: &str = "correct horse battery staple";
const WRONG: &str = "not the password at all";

fn secret(text: &str) -> SecretString {
    SecretString::from(text)
}

/// A fake clock: seconds since the epoch, moved by the test.
#[derive(Clone)]
struct FakeClock(Arc<AtomicU64>);

impl FakeClock {
    fn new() -> Self {
        Self(Arc::new(AtomicU64::new(1_800_000_000)))
    }
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
    fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    fn at(&self, secs: u64) -> SystemTime {
        self.now() + Duration::from_secs(secs)
    }
}

fn store(path: &Path, policy: ThrottlePolicy, clock: &FakeClock) -> UserStore {
    let clock = clock.clone();
    UserStore::new(path)
        .with_profile(Profile::TestOnlyInsecure)
        .with_throttle(policy)
        .unwrap()
        .with_clock(Arc::new(move || clock.now()))
}

/// A users file with alice (password [`RIGHT`]) and bob.
fn users() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let setup = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
    setup.register("alice", &secret(RIGHT)).unwrap();
    setup.register("bob", &secret("builder's own long passphrase")).unwrap();
    (dir, path)
}

/// No delays: only the lock limit counts.
fn no_delays() -> ThrottlePolicy {
    ThrottlePolicy::default().free_failures(MAX_LOCK_AFTER).source_free_failures(MAX_LOCK_AFTER)
}

fn status(failures: u32, state: ThrottleState) -> (u32, ThrottleState) {
    (failures, state)
}

fn of(s: ThrottleStatus) -> (u32, ThrottleState) {
    (s.failures, s.state)
}

fn throttled(error: &AuthError) -> (ThrottleScope, Option<SystemTime>, bool) {
    match error {
        AuthError::Throttled { scope, until, locked } => (*scope, *until, *locked),
        other => panic!("expected Throttled, got {other:?}"),
    }
}

#[test]
fn a_hundred_concurrent_wrong_attempts_on_threads_count_a_hundred_and_lock() {
    let (_dir, path) = users();
    let clock = FakeClock::new();
    let policy = no_delays().lock_duration(None);
    let barrier = Arc::new(Barrier::new(100));
    let outcomes: Vec<AuthError> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let (barrier, store) = (barrier.clone(), store(&path, policy.clone(), &clock));
                scope.spawn(move || {
                    barrier.wait();
                    store.verify("alice", &secret(WRONG)).unwrap_err()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Each was counted before it was checked, so all ran and all are counted.
    assert!(outcomes.iter().all(|e| matches!(e, AuthError::InvalidCredentials)), "{outcomes:?}");
    let store = store(&path, policy.clone(), &clock);
    assert_eq!(
        of(store.throttle_status("alice").unwrap()),
        status(100, ThrottleState::Locked { until: None })
    );
    // The next one, even with the right password, is refused before anything is hashed.
    let error = store.verify("alice", &secret(RIGHT)).unwrap_err();
    assert_eq!(throttled(&error), (ThrottleScope::Account, None, true));
    assert_eq!(error.kind(), AuthErrorKind::Throttled);
    assert_eq!(store.throttle_status("alice").unwrap().failures, 100);
}

/// Environment variable that makes [`a_burst_from_many_processes_never_slips_past_the_limit`]
/// a single attempt in a child process: the users file to try.
const PROBE: &str = "GLOBO_THROTTLE_PROBE_USERS";

#[test]
fn a_burst_from_many_processes_never_slips_past_the_limit() {
    let policy = no_delays().lock_duration(None);
    if let Some(path) = std::env::var_os(PROBE) {
        let store = UserStore::new(PathBuf::from(path))
            .with_profile(Profile::TestOnlyInsecure)
            .with_throttle(policy)
            .unwrap();
        let outcome = match store.verify("alice", &secret(WRONG)) {
            Err(AuthError::InvalidCredentials) => "counted",
            Err(AuthError::Throttled { locked: true, .. }) => "refused",
            other => panic!("unexpected outcome {other:?}"),
        };
        println!("probe-outcome={outcome}");
        return;
    }
    let (_dir, path) = users();
    let this_test = "a_burst_from_many_processes_never_slips_past_the_limit";
    let children: Vec<_> = (0..120)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([this_test, "--exact", "--nocapture", "--test-threads=1"])
                .env(PROBE, &path)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (mut counted, mut refused) = (0, 0);
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        counted += text.matches("probe-outcome=counted").count();
        refused += text.matches("probe-outcome=refused").count();
    }
    // 120 processes at once: exactly the limit ran, every other one was refused.
    assert_eq!((counted, refused), (100, 20));
    let status =
        UserStore::new(&path).with_throttle(policy).unwrap().throttle_status("alice").unwrap();
    assert_eq!(of(status), (100, ThrottleState::Locked { until: None }));
}

#[test]
fn delays_start_after_the_free_failures_and_double() {
    let (_dir, path) = users();
    let clock = FakeClock::new();
    let store = store(&path, ThrottlePolicy::default(), &clock);
    for _ in 0..5 {
        assert!(matches!(
            store.verify("alice", &secret(WRONG)),
            Err(AuthError::InvalidCredentials)
        ));
    }
    // The sixth attempt waits 1 s after the fifth failure; refused attempts are not counted.
    for _ in 0..3 {
        let error = store.verify("alice", &secret(RIGHT)).unwrap_err();
        assert_eq!(throttled(&error), (ThrottleScope::Account, Some(clock.at(1)), false));
    }
    assert_eq!(
        of(store.throttle_status("alice").unwrap()),
        status(5, ThrottleState::Delayed { until: clock.at(1) })
    );
    clock.advance(1);
    assert!(matches!(store.verify("alice", &secret(WRONG)), Err(AuthError::InvalidCredentials)));
    let error = store.verify("alice", &secret(WRONG)).unwrap_err();
    assert_eq!(throttled(&error), (ThrottleScope::Account, Some(clock.at(2)), false));
    clock.advance(1);
    assert!(store.verify("alice", &secret(WRONG)).unwrap_err().kind() == AuthErrorKind::Throttled);
    clock.advance(1);
    assert!(matches!(store.verify("alice", &secret(WRONG)), Err(AuthError::InvalidCredentials)));
    assert_eq!(
        of(store.throttle_status("alice").unwrap()),
        status(7, ThrottleState::Delayed { until: clock.at(4) })
    );
    // The message tells when, and nothing about the name.
    let error = store.verify("alice", &secret(RIGHT)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "too many failed login attempts for this account: try again after 2027-01-15 08:00:07 UTC"
    );
    // Once the delay has passed, the right password logs in and resets the count.
    clock.advance(4);
    assert!(store.verify("alice", &secret(RIGHT)).is_ok());
    assert_eq!(of(store.throttle_status("alice").unwrap()), status(0, ThrottleState::Open));
}

#[test]
fn the_limit_locks_the_account_until_its_cool_off_ends() {
    let (_dir, path) = users();
    let clock = FakeClock::new();
    let policy = no_delays().lock_after(10).unwrap().lock_duration(Some(Duration::from_secs(3600)));
    let store = store(&path, policy, &clock);
    for _ in 0..10 {
        assert!(matches!(
            store.verify("alice", &secret(WRONG)),
            Err(AuthError::InvalidCredentials)
        ));
    }
    clock.advance(3599);
    let error = store.verify("alice", &secret(RIGHT)).unwrap_err();
    assert_eq!(throttled(&error), (ThrottleScope::Account, Some(clock.at(1)), true));
    assert!(error.to_string().contains("locked until 2027-01-15 09:00:00 UTC"), "{error}");
    // Other accounts are not affected.
    assert!(store.verify("bob", &secret("builder's own long passphrase")).is_ok());
    clock.advance(1);
    // The lock is over and forgotten: a fresh start.
    assert_eq!(of(store.throttle_status("alice").unwrap()), status(0, ThrottleState::Open));
    assert!(matches!(store.verify("alice", &secret(WRONG)), Err(AuthError::InvalidCredentials)));
    assert_eq!(store.throttle_status("alice").unwrap().failures, 1);
    assert!(store.verify("alice", &secret(RIGHT)).is_ok());
}

#[test]
fn a_lock_without_cool_off_lasts_until_an_operator_unlocks() {
    let (_dir, path) = users();
    let clock = FakeClock::new();
    let policy = no_delays().lock_after(3).unwrap().lock_duration(None);
    let store = store(&path, policy, &clock);
    for _ in 0..3 {
        let _ = store.verify("alice", &secret(WRONG));
    }
    clock.advance(10 * 365 * 86_400);
    let error = store.verify("alice", &secret(RIGHT)).unwrap_err();
    assert_eq!(throttled(&error), (ThrottleScope::Account, None, true));
    assert_eq!(
        error.to_string(),
        "too many failed login attempts for this account: locked until an operator unlocks it"
    );
    // Unlock by any spelling that finds the user (an event names the stored user); a name
    // nobody has is refused.
    let unlocked = events(|| assert!(store.unlock("ａｌｉｃｅ").unwrap()));
    assert_eq!(unlocked.len(), 1);
    assert_eq!(unlocked[0]["event"], "user_updated:alice");
    assert_eq!(unlocked[0]["what"], "unlocked");
    assert!(!store.unlock("alice").unwrap());
    assert!(
        matches!(store.unlock("mallory"), Err(AuthError::NoSuchUser { username }) if username == "mallory")
    );
    assert!(store.verify("alice", &secret(RIGHT)).is_ok());
}

#[test]
fn a_success_resets_the_account_but_not_the_source() {
    let (_dir, path) = users();
    let clock = FakeClock::new();
    let policy = no_delays().source_lock_after(5).unwrap();
    let store = store(&path, policy, &clock);
    let from = Some("10.0.0.1");
    for _ in 0..4 {
        let _ = store.verify_from("alice", &secret(WRONG), from);
    }
    assert_eq!(store.throttle_status("alice").unwrap().failures, 4);
    // A guesser who holds bob's password logs into bob: alice's count stays, the source's
    // four failures stay (the success itself is not a failure).
    store.verify_from("bob", &secret("builder's own long passphrase"), from).unwrap();
    assert_eq!(store.throttle_status("alice").unwrap().failures, 4);
    store.verify_from("alice", &secret(RIGHT), from).unwrap();
    assert_eq!(store.throttle_status("alice").unwrap().failures, 0);
    // One more failure from the source reaches its limit of five.
    let _ = store.verify_from("bob", &secret(WRONG), from);
    let error = store.verify_from("alice", &secret(RIGHT), from).unwrap_err();
    assert_eq!(throttled(&error).0, ThrottleScope::Source);
    assert!(throttled(&error).2);
    // The account itself is fine from elsewhere.
    store.verify_from("alice", &secret(RIGHT), Some("10.0.0.2")).unwrap();
    // An operator lifts the source's lock.
    assert!(store.unlock_source("10.0.0.1").unwrap());
    store.verify_from("alice", &secret(RIGHT), from).unwrap();
}

#[test]
fn a_source_spreading_guesses_over_many_accounts_is_locked() {
    let (_dir, path) = users();
    let clock = FakeClock::new();
    let policy = no_delays().source_lock_after(20).unwrap();
    let store = store(&path, policy, &clock);
    let from = Some("203.0.113.9");
    for i in 0..20 {
        let name = if i == 0 { "bob".to_owned() } else { format!("user{i}") };
        assert!(matches!(
            store.verify_from(&name, &secret(WRONG), from),
            Err(AuthError::InvalidCredentials)
        ));
    }
    // No account has more than one failure, but the source is locked for every account.
    let error = store.verify_from("alice", &secret(RIGHT), from).unwrap_err();
    assert_eq!(throttled(&error), (ThrottleScope::Source, Some(clock.at(3600)), true));
    assert!(error.to_string().starts_with("too many failed login attempts from this source"));
    // Another source is not.
    store.verify_from("alice", &secret(RIGHT), Some("198.51.100.7")).unwrap();
    // A source is forgotten an hour after its last failure once its lock has ended.
    clock.advance(3600);
    store.verify_from("alice", &secret(RIGHT), from).unwrap();
}

#[test]
fn an_account_guessed_from_many_sources_is_still_locked() {
    let (_dir, path) = users();
    let clock = FakeClock::new();
    let policy = no_delays().lock_after(30).unwrap();
    let store = store(&path, policy, &clock);
    for i in 0..30 {
        let source = format!("192.0.2.{i}");
        let _ = store.verify_from("alice", &secret(WRONG), Some(&source));
    }
    let error = store.verify_from("alice", &secret(RIGHT), Some("192.0.2.200")).unwrap_err();
    assert_eq!(throttled(&error).0, ThrottleScope::Account);
    assert_eq!(store.throttle_status("alice").unwrap().failures, 30);
}

#[path = "support/events.rs"]
mod support;
use support::events;

/// The outcome of each attempt, the status after, and the events, for one name.
fn trace_of(
    path: &Path,
    name: &str,
) -> (Vec<String>, (u32, ThrottleState), Vec<serde_json::Value>) {
    let clock = FakeClock::new();
    let policy = ThrottlePolicy::default().free_failures(2).lock_after(4).unwrap();
    let store = store(path, policy, &clock);
    let mut outcomes = Vec::new();
    let events = events(|| {
        for step in 0..8 {
            outcomes.push(match store.verify_from(name, &secret(WRONG), Some("192.0.2.1")) {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("{e:?}"),
            });
            clock.advance(if step % 2 == 0 { 0 } else { 10 });
        }
    });
    (outcomes, of(store.throttle_status(name).unwrap()), events)
}

#[test]
fn an_unknown_name_is_counted_refused_and_logged_exactly_like_a_known_one() {
    let (_dir, path) = users();
    let (known, known_status, known_events) = trace_of(&path, "alice");
    let (unknown, unknown_status, unknown_events) = trace_of(&path, "zelda");
    assert_eq!(known, unknown);
    assert_eq!(known_status, unknown_status);
    // Only the log differs, for operators: the unknown name is never written as typed (it
    // may be a password typed into the name field) but as `unknown:` and 12 hex digits of
    // its salted id, the same in every event, so attempts on one name still correlate.
    let all = serde_json::Value::from(unknown_events.clone()).to_string();
    assert!(!all.contains("zelda"), "{all}");
    let label = unknown_events[0]["username"].as_str().unwrap().to_owned();
    let hex = label.strip_prefix("unknown:").unwrap();
    assert!(hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()), "{label}");
    // Refused attempts name the account by `account:` and its label, known or not (review
    // F, point 3: a refusal reads no users), with the digits of the `unknown:` label.
    let refused = |events: &[serde_json::Value]| {
        events
            .iter()
            .find(|e| e["event"].as_str().unwrap().starts_with("excess_rate_limit_exceeded"))
            .map(|e| e["username"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let (known_account, unknown_account) = (refused(&known_events), refused(&unknown_events));
    assert_eq!(unknown_account, format!("account:{hex}"));
    assert!(known_account.starts_with("account:") && known_account.len() == unknown_account.len());
    let renamed: Vec<serde_json::Value> = unknown_events
        .iter()
        .map(|e| {
            let text = e.to_string().replace(&unknown_account, &known_account);
            serde_json::from_str(&text.replace(&label, "alice")).unwrap()
        })
        .collect();
    assert_eq!(known_events, renamed);
    // What the sequence was: 2 free failures, a delay honoured, one refused, the lock at 4,
    // then refusals.
    let names: Vec<&str> = known_events
        .iter()
        .map(|e| e["event"].as_str().unwrap().split(':').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "authn_login_fail",
            "authn_login_fail",
            "authn_login_fail",
            "excess_rate_limit_exceeded",
            "authn_login_fail",
            "authn_login_lock",
            "excess_rate_limit_exceeded",
            "excess_rate_limit_exceeded",
            "excess_rate_limit_exceeded",
        ]
    );
    assert_eq!(known_events[5]["attempts"], 4);
    // Locked 24 hours from the fourth failure, 20 s into the run.
    let until = UNIX_EPOCH + Duration::from_secs(1_800_000_000 + 20 + 86_400);
    assert_eq!(known_status, (4, ThrottleState::Locked { until: Some(until) }));
}

#[test]
fn success_events_name_the_stored_user_and_the_failures_before() {
    let (_dir, path) = users();
    let clock = FakeClock::new();
    let store = store(&path, no_delays(), &clock);
    let events = events(|| {
        let _ = store.verify_from("alice", &secret(WRONG), Some("192.0.2.1"));
        let _ = store.verify_from("alice", &secret(WRONG), Some("192.0.2.1"));
        store.verify_from("ａｌｉｃｅ", &secret(RIGHT), Some("192.0.2.1")).unwrap();
        store.verify("alice", &secret(RIGHT)).unwrap();
    });
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| (e["event"].as_str().unwrap().to_owned(), e["source"].to_string()))
        .collect();
    assert_eq!(
        summary,
        [
            ("authn_login_fail:alice".to_owned(), r#""192.0.2.1""#.to_owned()),
            ("authn_login_fail:alice".to_owned(), r#""192.0.2.1""#.to_owned()),
            ("authn_login_successafterfail:alice,2".to_owned(), r#""192.0.2.1""#.to_owned()),
            ("authn_login_success:alice".to_owned(), r#""""#.to_owned()),
        ]
    );
    assert_eq!(events[1]["attempts"], 2);
    // No event carries a password.
    let all = serde_json::Value::from(events).to_string();
    assert!(!all.contains(WRONG) && !all.contains(RIGHT), "{all}");
}

#[test]
fn the_state_survives_a_new_store_and_keeps_no_name_in_the_clear() {
    let (dir, path) = users();
    let clock = FakeClock::new();
    // A password typed into the name field must not end up in the state file.
    let typed = "my secret password by mistake";
    for name in ["alice", "alice", typed] {
        let _ = store(&path, ThrottlePolicy::default(), &clock).verify(name, &secret(WRONG));
    }
    let state_path = dir.path().join("users.json.throttle");
    let fresh = store(&path, ThrottlePolicy::default(), &clock);
    assert_eq!(fresh.throttle_path(), state_path);
    assert_eq!(fresh.throttle_status("alice").unwrap().failures, 2);
    assert_eq!(fresh.throttle_status(typed).unwrap().failures, 1);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    // A private folder: the salt and the two shards written (their lock files beside them).
    assert_eq!(mode(&state_path), 0o700);
    let mut names: Vec<String> = std::fs::read_dir(&state_path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.contains(&"salt".to_owned()), "{names:?}");
    let shards: Vec<&String> = names.iter().filter(|n| n.len() == 2).collect();
    assert!(!shards.is_empty() && shards.len() <= 2, "{names:?}");
    for name in &names {
        let file = state_path.join(name);
        assert_eq!(mode(&file), 0o600, "{name}");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("alice") && !text.contains("secret"), "{name}: {text}");
    }
    // Names longer than the login bound are counted by their bytes, each apart.
    let long_a = "a".repeat(globo_auth::MAX_LOGIN_USERNAME_BYTES + 1);
    let long_b = format!("{long_a}b");
    let _ = fresh.verify(&long_a, &secret(WRONG));
    let _ = fresh.verify(&long_a, &secret(WRONG));
    let _ = fresh.verify(&long_b, &secret(WRONG));
    assert_eq!(fresh.throttle_status(&long_a).unwrap().failures, 2);
    assert_eq!(fresh.throttle_status(&long_b).unwrap().failures, 1);
}

/// The shard files (`00` to `ff`) of the state folder.
fn shard_files(folder: &Path) -> Vec<PathBuf> {
    let mut shards: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().len() == 2)
        .collect();
    shards.sort();
    shards
}

#[test]
fn an_unusable_shard_or_salt_refuses_logins_and_is_kept() {
    let (dir, path) = users();
    let clock = FakeClock::new();
    let state_path = dir.path().join("users.json.throttle");
    // One failure: the folder, its salt and alice's shard exist.
    let _ = store(&path, ThrottlePolicy::default(), &clock).verify("alice", &secret(WRONG));
    let [shard] = &shard_files(&state_path)[..] else { panic!("one shard expected") };
    let salt = state_path.join("salt");
    let (good_shard, good_salt) = (std::fs::read(shard).unwrap(), std::fs::read(&salt).unwrap());
    let oversized = vec![b' '; 1024 * 1024 + 1];
    for (file, content, reason) in [
        (shard, &b"{not json"[..], "it is not the throttling shard's JSON format"),
        (shard, &br#"{"version": 1, "accounts": {}}"#[..], "JSON format"),
        (shard, &br#"{"version": 2, "accounts": {}, "sources": {}}"#[..], "version"),
        (shard, &oversized[..], "larger than 1 MiB"),
        (&salt, &b"00\n"[..], "32 bytes of hex"),
        (&salt, &[b'z'; 64][..], "32 bytes of hex"),
        (&salt, &oversized[..], "32 bytes of hex"),
    ] {
        std::fs::write(shard, &good_shard).unwrap();
        std::fs::write(&salt, &good_salt).unwrap();
        std::fs::write(file, content).unwrap();
        let store = store(&path, ThrottlePolicy::default(), &clock);
        // Even the right password: nothing can be counted, so nothing is let through.
        let error = store.verify("alice", &secret(RIGHT)).unwrap_err();
        assert!(matches!(error, AuthError::UnusableThrottleState { .. }), "{error:?}");
        assert_eq!(error.kind(), AuthErrorKind::Operational);
        let message = error.to_string();
        assert!(
            message.contains(&*file.to_string_lossy()) && message.contains(reason),
            "{message}"
        );
        assert!(store.unlock("alice").is_err());
        assert_eq!(std::fs::read(file).unwrap(), content, "the state was changed");
    }
}

#[test]
fn a_state_folder_that_is_a_file_or_open_to_others_refuses_logins_and_is_kept() {
    use std::os::unix::fs::PermissionsExt as _;
    let (dir, path) = users();
    let clock = FakeClock::new();
    let state_path = dir.path().join("users.json.throttle");
    std::fs::write(&state_path, b"{}").unwrap();
    let store = store(&path, ThrottlePolicy::default(), &clock);
    let report = |e: &AuthError| globo_auth::Report::new(e).to_string();
    let error = store.verify("alice", &secret(RIGHT)).unwrap_err();
    assert!(matches!(error, AuthError::ThrottleStateAccess { .. }), "{error:?}");
    let shown = report(&error);
    assert!(shown.contains("users.json.throttle") && shown.contains("not a folder"), "{shown}");
    assert_eq!(std::fs::read(&state_path).unwrap(), b"{}");
    std::fs::remove_file(&state_path).unwrap();
    std::fs::create_dir(&state_path).unwrap();
    std::fs::set_permissions(&state_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let shown = report(&store.verify("alice", &secret(RIGHT)).unwrap_err());
    assert!(shown.contains("chmod 700"), "{shown}");
    assert_eq!(std::fs::read_dir(&state_path).unwrap().count(), 0, "nothing written in it");
}

/// Locks `name` (3 failures under [`lock_after_three`]).
fn lock(store: &UserStore, name: &str) {
    for _ in 0..3 {
        let _ = store.verify(name, &secret(WRONG));
    }
    assert!(matches!(store.throttle_status(name).unwrap().state, ThrottleState::Locked { .. }));
}

fn lock_after_three() -> ThrottlePolicy {
    no_delays().lock_after(3).unwrap()
}

#[test]
fn deleting_a_user_forgets_its_throttling_record() {
    let (_dir, path) = users();
    let store = store(&path, lock_after_three(), &FakeClock::new());
    lock(&store, "alice");
    // Deleted, then registered again: the new account starts clean.
    store.delete("alice").unwrap();
    assert_eq!(of(store.throttle_status("alice").unwrap()), status(0, ThrottleState::Open));
    store.register("alice", &secret(RIGHT)).unwrap();
    store.verify("alice", &secret(RIGHT)).unwrap();
    // delete_exact too.
    lock(&store, "bob");
    store.delete_exact("bob").unwrap();
    assert_eq!(of(store.throttle_status("bob").unwrap()), status(0, ThrottleState::Open));
}

#[test]
fn an_operators_reset_lifts_the_accounts_lock_once_the_policy_accepts_the_password() {
    let (_dir, path) = users();
    let store = store(&path, lock_after_three(), &FakeClock::new());
    lock(&store, "bob");
    // A reset the policy refuses lifts nothing.
    assert!(store.reset_password("bob", &secret("short")).is_err());
    assert_eq!(store.throttle_status("bob").unwrap().failures, 3);
    // The operator checked the user's identity out of band: the lock goes with the old
    // password.
    let new = "a brand new long passphrase";
    store.reset_password("bob", &secret(new)).unwrap();
    assert_eq!(of(store.throttle_status("bob").unwrap()), status(0, ThrottleState::Open));
    store.verify("bob", &secret(new)).unwrap();
}

#[test]
fn a_refused_attempt_reads_no_users_and_an_off_store_is_not_throttled() {
    let (_dir, path) = users();
    let clock = FakeClock::new();
    let policy = no_delays().lock_after(1).unwrap();
    let store = store(&path, policy, &clock);
    let _ = store.verify("alice", &secret(WRONG));
    // The users file is now corrupt, yet the answer is the throttle's: it was never read.
    std::fs::write(&path, "{").unwrap();
    let error = store.verify("alice", &secret(RIGHT)).unwrap_err();
    assert!(matches!(error, AuthError::Throttled { .. }), "{error:?}");
    // Without throttling the store reads the file (and reports it) and counts nothing.
    let off = UserStore::new(&path).without_throttle();
    assert!(off.throttle_policy().is_none());
    assert!(matches!(off.verify("alice", &secret(RIGHT)), Err(AuthError::CorruptUsersFile { .. })));
    assert_eq!(store.throttle_status("alice").unwrap().failures, 1);
}

/// Review P2g, point 1: an operational error (here the pepper missing, then a corrupt users
/// file) is no verdict on the password, so the attempt is taken back off the account (and,
/// for the corrupt file, the source) and no `authn_login_fail` is logged. Before, each one was counted as a failure
/// (silently): the sixth correct login was refused with `Throttled` (a delay), and the
/// account would have locked for 24 hours at the hundredth.
#[test]
fn operational_errors_are_taken_back_and_never_lock_an_account() {
    let (_dir, path) = users();
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    let peppers = globo_auth::Peppers::parse(&secret(key)).unwrap();
    let peppered = "peppered user's long password";
    UserStore::new(&path)
        .with_profile(Profile::TestOnlyInsecure)
        .with_peppers(peppers)
        .register("carol", &secret(peppered))
        .unwrap();
    let clock = FakeClock::new();
    // The same policy as the default, with the source's delays as the account's.
    let policy = ThrottlePolicy::default().source_free_failures(5);
    let store = store(&path, policy, &clock);
    let logged = events(|| {
        for attempt in 0..150 {
            let result = store.verify_from("carol", &secret(peppered), Some("192.0.2.8"));
            assert!(
                matches!(result, Err(AuthError::PepperUnavailable { .. })),
                "attempt {attempt}: {result:?}"
            );
        }
    });
    assert!(logged.is_empty(), "{logged:?}");
    assert_eq!(of(store.throttle_status("carol").unwrap()), status(0, ThrottleState::Open));
    // Failures before the misconfiguration stay counted; the errors add none.
    for _ in 0..2 {
        assert!(matches!(
            store.verify("alice", &secret(WRONG)),
            Err(AuthError::InvalidCredentials)
        ));
    }
    let users = std::fs::read(&path).unwrap();
    std::fs::write(&path, b"{ not json").unwrap();
    let logged = events(|| {
        for _ in 0..150 {
            let result = store.verify_from("alice", &secret(RIGHT), Some("192.0.2.9"));
            assert!(matches!(result, Err(AuthError::CorruptUsersFile { .. })), "{result:?}");
        }
    });
    assert!(logged.is_empty(), "{logged:?}");
    assert_eq!(of(store.throttle_status("alice").unwrap()), status(2, ThrottleState::Open));
    // Repaired: the source was not delayed either, and the user logs in.
    std::fs::write(&path, users).unwrap();
    store.verify_from("alice", &secret(RIGHT), Some("192.0.2.9")).unwrap();
}

/// Review P2g, point 1: an unusable record is not the user's failure either: the account is
/// never counted (it cannot be locked by it), while the source keeps each attempt (it cost
/// the dummy Argon2 run), so one bad record is not an unthrottled oracle.
#[test]
fn a_bad_entry_never_counts_against_its_account_but_does_against_the_source() {
    let (_dir, path) = users();
    let mut users: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    users.insert("mallory".into(), serde_json::json!(42));
    std::fs::write(&path, serde_json::to_vec(&users).unwrap()).unwrap();
    let clock = FakeClock::new();
    let store = store(&path, ThrottlePolicy::default(), &clock);
    for _ in 0..20 {
        let result = store.verify_from("mallory", &secret(WRONG), Some("192.0.2.9"));
        assert!(matches!(result, Err(AuthError::BadEntry { .. })), "{result:?}");
    }
    assert_eq!(of(store.throttle_status("mallory").unwrap()), status(0, ThrottleState::Open));
    // The source's 20 free failures are used up: the next attempt from it is delayed.
    let result = store.verify_from("alice", &secret(RIGHT), Some("192.0.2.9")).unwrap_err();
    assert_eq!(throttled(&result), (ThrottleScope::Source, Some(clock.at(1)), false));
}

/// Review P2g, point 3: settings that switch the lock off are refused. Before,
/// `with_throttle` took any policy: with `lock_duration(Some(ZERO))` a lock ended as it
/// began, and with `source_window(ZERO)` a source was forgotten after each failure.
#[test]
fn policies_that_would_switch_the_lock_off_are_refused() {
    let (_dir, path) = users();
    let zero = Duration::ZERO;
    let minute = Duration::from_secs(60);
    let bad = [
        ThrottlePolicy::default().lock_duration(Some(zero)),
        ThrottlePolicy::default().lock_duration(Some(minute)), // shorter than the 15 min delay
        ThrottlePolicy::default().source_lock_duration(Some(zero)),
        ThrottlePolicy::default().source_window(zero),
        ThrottlePolicy::default().source_window(Duration::from_secs(15 * 60)), // = max delay
        ThrottlePolicy::default().source_window(Duration::from_secs(30 * 60)), // < source lock
        ThrottlePolicy::default().max_delay(zero), // shorter than the first delay
        ThrottlePolicy::default().base_delay(Duration::from_secs(16 * 60)),
    ];
    for policy in bad {
        let result = UserStore::new(&path).with_throttle(policy.clone());
        assert!(
            matches!(result, Err(AuthError::InvalidThrottlePolicy { .. })),
            "{policy:?} accepted"
        );
    }
    let good = [
        ThrottlePolicy::default(),
        ThrottlePolicy::default().lock_duration(None).source_lock_duration(None),
        // No delays at all: the lock alone (delays are optional in NIST SP 800-63B-4).
        ThrottlePolicy::default().base_delay(zero).max_delay(zero),
        ThrottlePolicy::default().lock_duration(Some(Duration::from_secs(15 * 60))),
    ];
    for policy in good {
        assert!(UserStore::new(&path).with_throttle(policy.clone()).is_ok(), "{policy:?}");
    }
    let error = UserStore::new(&path).with_throttle(bad_lock()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid throttling policy: an account lock must last longer than zero"
    );
    assert_eq!(error.kind(), AuthErrorKind::Operational);
}

fn bad_lock() -> ThrottlePolicy {
    ThrottlePolicy::default().lock_duration(Some(Duration::ZERO))
}

/// Review P2g, point 5: `unlock` finds users as the other operators' commands do (an
/// ambiguous spelling is `AmbiguousUser`, not "no such user"), logs `user_updated` only when
/// it cleared something; `unlock_unknown` lifts the lock of a name no user has (counted like
/// any other, so a lock does not tell names apart); `unlock_source` logs what it did.
#[test]
fn unlocks_name_whom_they_cleared_and_refuse_ambiguous_names() {
    let (_dir, path) = users();
    let mut users: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let record = users["alice"].clone();
    users.insert("jos\u{e9}".into(), record.clone());
    users.insert("jose\u{301}".into(), record);
    std::fs::write(&path, serde_json::to_vec(&users).unwrap()).unwrap();
    let clock = FakeClock::new();
    let store = store(&path, no_delays().lock_duration(None), &clock);
    let error = store.unlock("jos\u{e9}\u{200B}").unwrap_err();
    assert!(matches!(error, AuthError::AmbiguousUser { candidates: 2, .. }), "{error:?}");
    assert!(matches!(store.unlock("zelda"), Err(AuthError::NoSuchUser { .. })));
    for (name, source) in [("alice", Some("198.51.100.7")), ("zelda", None)] {
        for _ in 0..MAX_LOCK_AFTER {
            let _ = store.verify_from(name, &secret(WRONG), source);
        }
    }
    let locked = status(MAX_LOCK_AFTER, ThrottleState::Locked { until: None });
    assert_eq!(of(store.throttle_status("zelda").unwrap()), locked);
    let logged = events(|| {
        assert!(store.unlock("alice").unwrap());
        assert!(!store.unlock("alice").unwrap());
        assert!(store.unlock_unknown("zelda").unwrap());
        assert!(!store.unlock_unknown("zelda").unwrap());
        assert!(store.unlock_source("198.51.100.7").unwrap());
        assert!(!store.unlock_source("198.51.100.7").unwrap());
    });
    let names: Vec<&str> = logged.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "user_updated:alice");
    let label = names[1].strip_prefix("user_updated:unknown:").unwrap();
    assert!(label.len() == 12 && label.chars().all(|c| c.is_ascii_hexdigit()), "{label}");
    assert_eq!(names[2], "authn_login_unlock:198.51.100.7");
    assert_eq!(logged[2]["source"], "198.51.100.7");
    assert_eq!(of(store.throttle_status("zelda").unwrap()), status(0, ThrottleState::Open));
    store.verify("alice", &secret(RIGHT)).unwrap();
}

/// Review F, point 1: a lab file's `josé` and `jose\u{301}` share one comparison key, so one
/// throttling record. A success of one takes back only its own attempt. Before, it cleared
/// the record: an attacker owning one account reset the guesses counted against the other
/// by logging in (`failures` was 0 where 3 are expected).
#[test]
fn a_success_on_a_shared_comparison_key_keeps_the_other_users_failures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let hash = |p: &str| globo_auth::hash_password(p, Profile::TestOnlyInsecure).unwrap();
    let lab = serde_json::json!({
        "jos\u{e9}": hash("the victim's long password"),
        "jose\u{301}": hash(RIGHT),
    });
    std::fs::write(&path, lab.to_string()).unwrap();
    let clock = FakeClock::new();
    let store = store(&path, no_delays(), &clock);
    for _ in 0..3 {
        let result = store.verify_from("jos\u{e9}", &secret(WRONG), Some("192.0.2.1"));
        assert!(matches!(result, Err(AuthError::InvalidCredentials)), "{result:?}");
    }
    let own = store.verify_from("jose\u{301}", &secret(RIGHT), Some("192.0.2.1")).unwrap();
    assert_eq!(own.username(), "jose\u{301}");
    assert_eq!(of(store.throttle_status("jos\u{e9}").unwrap()), status(3, ThrottleState::Open));
    // A user alone under its key still resets its own record.
    let (_dir, path) = users();
    let store = self::store(&path, no_delays(), &clock);
    let _ = store.verify("alice", &secret(WRONG));
    store.verify("alice", &secret(RIGHT)).unwrap();
    assert_eq!(of(store.throttle_status("alice").unwrap()), status(0, ThrottleState::Open));
}

/// Review F, point 3: a refused attempt stays cheap with security logging on: it is named by
/// its account's label (`account:` and 12 hex digits of the salted id), known name or not,
/// and the users file is not read to name it. Before, the refusal read the users file to
/// find the stored name: the event said `alice`.
#[test]
fn a_refused_attempt_is_logged_by_its_label_without_reading_the_users_file() {
    let (_dir, path) = users();
    let clock = FakeClock::new();
    let store = store(&path, lock_after_three(), &clock);
    let logged = events(|| {
        lock(&store, "alice");
        let error = store.verify_from("alice", &secret(RIGHT), Some("192.0.2.7")).unwrap_err();
        assert!(matches!(error, AuthError::Throttled { .. }), "{error:?}");
        // A users file that cannot be read changes nothing: it is not read.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let error = store.verify_from("alice", &secret(RIGHT), Some("192.0.2.7")).unwrap_err();
        assert!(matches!(error, AuthError::Throttled { .. }), "{error:?}");
    });
    let refused: Vec<&serde_json::Value> = logged
        .iter()
        .filter(|e| e["event"].as_str().unwrap().starts_with("excess_rate_limit_exceeded"))
        .collect();
    assert_eq!(refused.len(), 2, "{logged:?}");
    for event in refused {
        let name = event["username"].as_str().unwrap();
        let hex = name.strip_prefix("account:").unwrap_or_else(|| panic!("{event}"));
        assert!(hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
        let summary = event["event"].as_str().unwrap();
        assert_eq!(summary, format!("excess_rate_limit_exceeded:{name},192.0.2.7"));
    }
}

/// Review G, point 3: a record under a pepper version the store does not hold (a stale or
/// misconfigured pepper) is an operational error, taken back off the account and the
/// source: counting it would lock out a shared address whose users did nothing wrong. Before
/// (review F, point 4, kept it on the source), the fourth login from that source, alice's
/// right password, was refused with `Throttled` (scope Source).
#[test]
fn pepper_unavailable_attempts_are_taken_back_off_the_source() {
    let (_dir, path) = users();
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    let peppers = globo_auth::Peppers::parse(&secret(key)).unwrap();
    let peppered = "peppered user's long password";
    UserStore::new(&path)
        .with_profile(Profile::TestOnlyInsecure)
        .with_peppers(peppers)
        .register("carol", &secret(peppered))
        .unwrap();
    let clock = FakeClock::new();
    let policy = no_delays().source_lock_after(3).unwrap();
    let store = store(&path, policy, &clock);
    let logged = events(|| {
        for _ in 0..10 {
            let result = store.verify_from("carol", &secret(WRONG), Some("192.0.2.9"));
            assert!(matches!(result, Err(AuthError::PepperUnavailable { .. })), "{result:?}");
        }
    });
    assert!(logged.is_empty(), "{logged:?}");
    assert_eq!(of(store.throttle_status("carol").unwrap()), status(0, ThrottleState::Open));
    store.verify_from("alice", &secret(RIGHT), Some("192.0.2.9")).unwrap();
}

/// Review F, point 5: a reset that fails after the policy accepted the password (here the
/// file holds peppered records and the store has no pepper: `PepperRequired`) leaves the
/// lock. Before, the record was cleared before the write was refused: status (0, Open).
#[test]
fn a_reset_that_fails_leaves_the_lock() {
    let (_dir, path) = users();
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    let peppers = globo_auth::Peppers::parse(&secret(key)).unwrap();
    UserStore::new(&path)
        .with_profile(Profile::TestOnlyInsecure)
        .with_peppers(peppers)
        .register("carol", &secret("peppered user's long password"))
        .unwrap();
    let store = store(&path, lock_after_three(), &FakeClock::new());
    lock(&store, "bob");
    let before = std::fs::read(&path).unwrap();
    let result = store.reset_password("bob", &secret("a brand new long passphrase"));
    assert!(matches!(result, Err(AuthError::PepperRequired { .. })), "{result:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(matches!(store.throttle_status("bob").unwrap().state, ThrottleState::Locked { .. }));
}
