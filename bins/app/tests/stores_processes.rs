//! Issue 14's process-level points, run as the real binary on each kind of users store (the
//! lab's JSON file, `sqlite://PATH`, a `postgres://` test database): registrations from 4
//! processes at once all land; throttling failures from 2 processes count together; a
//! process killed mid-write loses nothing; `app users copy` round-trips across kinds; and
//! every user command works on every kind. Each store kind is a test of its own, so a
//! failure names it.
//!
//! The PostgreSQL tests need the test server (`scripts/postgres start` and
//! `GLOBO_TEST_POSTGRES_URL`; `scripts/test` does both): SKIPPED without it locally, a
//! failure with `CI=true`. The database URL (with its password) reaches a child through its
//! environment (`GLOBO_USERS_STORE`) or a `.env` secret (`?password_secret=`), never argv.
//!
//! The kill delays come from a small PRNG seeded by the clock (as in `crash_safety.rs`); the
//! seed is printed, and `GLOBO_CRASH_SEED=<n>` replays a run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use globo::auth::{AuthError, MAX_LOCK_AFTER, Profile, ThrottlePolicy, UserStore};
use secrecy::SecretString;

const APP: &str = env!("CARGO_BIN_EXE_app");
const INSECURE_WARNING: &str = "warning: using the test-only-insecure Argon2 profile";
/// The secret (in the test folder's `.env`) holding the PostgreSQL password, for the
/// commands whose store is an argument (`users copy --from/--to`).
const PASSWORD_SECRET: &str = "GLOBO_TEST_DB_PASSWORD";
const WRONG: &str = "certainly not the passphrase";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Sqlite,
    Postgres,
}

/// A users store of one kind in a temporary folder (the children's working directory).
struct Store {
    kind: Kind,
    dir: tempfile::TempDir,
    db: Option<globo_testkit::TestDatabase>,
}

impl Store {
    /// `None` (after a SKIPPED line; a panic with `CI=true`) when PostgreSQL is wanted and the
    /// test server is missing.
    fn new(kind: Kind) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let db = match kind {
            Kind::Postgres => Some(globo_testkit::postgres()?),
            _ => None,
        };
        let store = Self { kind, dir, db };
        if let Some(db) = &store.db {
            // The password for `?password_secret=` (local mode reads the .env file).
            let password = db.config().get_password().map(|p| p.to_vec()).unwrap();
            let mut env = b"GLOBO_TEST_DB_PASSWORD=".to_vec();
            env.extend(password);
            env.push(b'\n');
            write_private(&store.d().join(".env"), &env);
        }
        Some(store)
    }

    fn d(&self) -> &Path {
        self.dir.path()
    }

    /// The store as `GLOBO_USERS_STORE` gives it to a child (with the password).
    fn env_spec(&self) -> String {
        match self.kind {
            Kind::Json => "users.json".to_owned(),
            Kind::Sqlite => "sqlite://users.db".to_owned(),
            Kind::Postgres => self.db.as_ref().unwrap().url().to_owned(),
        }
    }

    /// The store as an argument (`users copy`): no password, a PostgreSQL one named as a
    /// secret of the `.env` file.
    fn arg_spec(&self) -> String {
        match self.kind {
            Kind::Postgres => format!("{}?password_secret={PASSWORD_SECRET}", self.location()),
            _ => self.env_spec(),
        }
    }

    /// What the app and the library call the store.
    fn location(&self) -> String {
        match self.kind {
            Kind::Postgres => self.db.as_ref().unwrap().location().to_owned(),
            _ => self.env_spec(),
        }
    }

    /// `app ARGS` on this store, cheap hashes, nothing of the developer's environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = globo_testkit::isolated_command(APP, self.d());
        command
            .args(args)
            .env("GLOBO_PASSWORD_PROFILE", "test-only-insecure")
            .env("GLOBO_USERS_STORE", self.env_spec());
        command
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        globo_testkit::output_guarded(&mut self.command(args), Some(stdin.as_bytes()))
    }

    /// Runs `app ARGS`, which must succeed, and returns its stdout.
    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(out.status.success(), "{:?} app {args:?}: {}", self.kind, stderr(&out));
        text(&out.stdout)
    }

    /// The same store through the library (cheap hashes, throttling as given).
    fn library(&self) -> UserStore {
        let store = match self.kind {
            Kind::Json => UserStore::new(self.d().join("users.json")),
            Kind::Sqlite => UserStore::sqlite(self.d().join("users.db")).unwrap(),
            Kind::Postgres => {
                let db = self.db.as_ref().unwrap();
                UserStore::postgres(db.config(), db.location().to_owned()).unwrap()
            }
        };
        store.with_profile(Profile::TestOnlyInsecure)
    }

    /// The library without throttling: checks that fail count nothing.
    fn checker(&self) -> UserStore {
        self.library().without_throttle()
    }

    /// `app users list`, which must succeed (the store opens), as a set.
    fn listed(&self) -> BTreeSet<String> {
        self.ok(&["users", "list"], "").lines().map(str::to_owned).collect()
    }
}

fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// stderr without the warning the cheap test profile prints.
fn stderr(out: &Output) -> String {
    text(&out.stderr)
        .lines()
        .filter(|line| !line.starts_with(INSECURE_WARNING))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The password of each test user: long enough, not common, never containing the name.
fn password_of(name: &str) -> String {
    let sum: u32 = name.bytes().map(u32::from).sum();
    format!("a long passphrase {sum} for {}", name.len())
}

fn verifies(store: &UserStore, name: &str, password: &str) -> bool {
    match store.verify(name, &SecretString::from(password.to_owned())) {
        Ok(_) => true,
        Err(AuthError::InvalidCredentials) => false,
        Err(e) => panic!("verify '{name}': {e}"),
    }
}

// --- 1. 64 registrations from 4 processes at once ---------------------------------------

/// 4 workers, released together by a barrier, each run 16 `app register` one after the
/// other: 4 processes write at any moment. Every registration succeeds and lands.
fn registrations_from_4_processes(kind: Kind) {
    let Some(store) = Store::new(kind) else { return };
    let barrier = Barrier::new(4);
    std::thread::scope(|s| {
        for worker in 0..4 {
            let (store, barrier) = (&store, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..16 {
                    let name = format!("w{worker}user{i:02}");
                    let stdin = format!("{}\n", password_of(&name));
                    let out = store.ok(&["register", &name, "--password-stdin"], &stdin);
                    assert_eq!(out, format!("User '{name}' registered.\n"), "{kind:?}");
                }
            });
        }
    });
    let expected: BTreeSet<String> =
        (0..4).flat_map(|w| (0..16).map(move |i| format!("w{w}user{i:02}"))).collect();
    let listed = store.listed();
    assert_eq!(listed.len(), 64, "{kind:?}: {listed:?}");
    assert_eq!(listed, expected, "{kind:?}");
    // Each record is whole: every password verifies (the library), a sample through the app.
    let checker = store.checker();
    for name in &expected {
        assert!(verifies(&checker, name, &password_of(name)), "{kind:?}: {name}");
    }
    for name in ["w0user00", "w1user07", "w2user15", "w3user09"] {
        let out =
            store.ok(&["verify", name, "--password-stdin"], &format!("{}\n", password_of(name)));
        assert_eq!(out, format!("Password verified for '{name}'.\n"), "{kind:?}");
    }
}

#[test]
fn registrations_from_4_processes_at_once_all_land_json() {
    registrations_from_4_processes(Kind::Json);
}

#[test]
fn registrations_from_4_processes_at_once_all_land_sqlite() {
    registrations_from_4_processes(Kind::Sqlite);
}

#[test]
fn registrations_from_4_processes_at_once_all_land_postgres() {
    registrations_from_4_processes(Kind::Postgres);
}

// --- 2. throttling failures from 2 processes count together -----------------------------

/// Whether an `app verify` with a wrong password was counted (`true`) or refused by the
/// account's delay (`false`); anything else fails the test.
fn counted(kind: Kind, out: &Output) -> bool {
    assert_eq!(out.status.code(), Some(1), "{kind:?}");
    let message = stderr(out);
    if message == "error: Invalid username or password.\n" {
        return true;
    }
    assert!(
        message.starts_with(
            "error: too many failed login attempts for this account: try again after "
        ),
        "{kind:?}: {message}"
    );
    false
}

/// Failures each library thread counts (with the app's at most 4 + 10 more: under the
/// lock at [`MAX_LOCK_AFTER`]).
const LIBRARY_FAILURES: u32 = 40;

fn throttling_from_2_processes(kind: Kind) {
    let Some(store) = Store::new(kind) else { return };
    let right = password_of("alice");
    store.library().register("alice", &SecretString::from(right.clone())).unwrap();
    let wrong = format!("{WRONG}\n");
    let verify = ["verify", "alice", "--password-stdin"];

    // Two app processes at once, 2 failures each: under the default policy's 5 free
    // failures, so every one is counted, and the count is their sum.
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (store, barrier, wrong) = (&store, &barrier, &wrong);
            s.spawn(move || {
                barrier.wait();
                for _ in 0..2 {
                    assert!(counted(kind, &store.run(&verify, wrong)), "{kind:?}");
                }
            });
        }
    });
    assert_eq!(store.library().throttle_status("alice").unwrap().failures, 4, "{kind:?}");

    // Then more at once: this process (2 threads, a policy without delays, LIBRARY_FAILURES each)
    // and 2 app processes (5 attempts each, the default policy: some are refused by the
    // delay the others cause, which counts nothing). Every counted failure adds up.
    let permissive = ThrottlePolicy::default()
        .free_failures(MAX_LOCK_AFTER)
        .source_free_failures(MAX_LOCK_AFTER);
    let library = store.library().with_throttle(permissive).unwrap();
    let barrier = Barrier::new(4);
    let app_counted: u32 = std::thread::scope(|s| {
        for _ in 0..2 {
            let (library, barrier) = (&library, &barrier);
            s.spawn(move || {
                barrier.wait();
                for _ in 0..LIBRARY_FAILURES {
                    let e = library.verify("alice", &SecretString::from(WRONG)).unwrap_err();
                    assert!(matches!(e, AuthError::InvalidCredentials), "{kind:?}: {e}");
                }
            });
        }
        let apps: Vec<_> = (0..2)
            .map(|_| {
                let (store, barrier, wrong) = (&store, &barrier, &wrong);
                s.spawn(move || {
                    barrier.wait();
                    (0..5)
                        .map(|_| u32::from(counted(kind, &store.run(&verify, wrong))))
                        .sum::<u32>()
                })
            })
            .collect();
        apps.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let status = store.library().throttle_status("alice").unwrap();
    assert_eq!(
        status.failures,
        4 + 2 * LIBRARY_FAILURES + app_counted,
        "{kind:?}: {app_counted} app failures"
    );
    // The app sees the same record: an unlock clears all of it.
    assert_eq!(store.ok(&["users", "unlock", "alice"], ""), "User 'alice' unlocked.\n");
    assert_eq!(store.library().throttle_status("alice").unwrap().failures, 0, "{kind:?}");
    let out = store.ok(&verify, &format!("{right}\n"));
    assert_eq!(out, "Password verified for 'alice'.\n");
}

#[test]
fn throttling_failures_from_2_processes_count_together_postgres() {
    throttling_from_2_processes(Kind::Postgres);
}

#[test]
fn throttling_failures_from_2_processes_count_together_sqlite() {
    throttling_from_2_processes(Kind::Sqlite);
}

// --- 3. a process killed mid-write loses nothing -----------------------------------------

/// Kill trials per command and store kind.
const REGISTER_TRIALS: usize = 20;
const COPY_TRIALS: usize = 8;
const RESET_TRIALS: usize = 10;
/// Users in each batch `app users copy` moves (one transaction).
const BATCH: usize = 300;

/// xorshift64*: enough to spread kill instants; not for anything secret.
struct Rng(u64);

impl Rng {
    fn from_env_or_clock(label: &str) -> Self {
        let seed = std::env::var("GLOBO_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{label}: GLOBO_CRASH_SEED={seed}");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A delay in `0..max_us` microseconds.
    fn delay(&mut self, max_us: u64) -> Duration {
        Duration::from_micros(self.next() % max_us)
    }
}

impl Store {
    fn spawn(&self, args: &[&str], stdin: &str) -> Child {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child
    }

    /// Runs `app` and kills it with SIGKILL after `delay` unless it finished first. Returns
    /// whether it exited 0.
    fn run_and_kill(&self, args: &[&str], stdin: &str, delay: Duration) -> bool {
        let mut child = self.spawn(args, stdin);
        let started = Instant::now();
        while started.elapsed() < delay {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{:?}: app {args:?} failed without being killed",
                    self.kind
                );
                return true;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap().success()
    }

    /// The longest of 3 undisturbed runs of a command (in microseconds, at least 1 ms), to
    /// pick kill delays that cover all of it; `prepare(i)` gives each run's arguments.
    fn kill_window(&self, runs: &mut dyn FnMut(usize) -> (Vec<String>, String)) -> u64 {
        (0..3)
            .map(|i| {
                let (args, stdin) = runs(i);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let started = Instant::now();
                self.ok(&args, &stdin);
                started.elapsed().as_micros() as u64
            })
            .max()
            .unwrap()
            .max(1000)
    }

    /// The store after a kill: it opens (`app users list`), and for SQLite the database file
    /// passes `PRAGMA integrity_check`.
    fn check_after_kill(
        &self,
        python: Option<&globo_testkit::Python>,
        trial: &str,
    ) -> BTreeSet<String> {
        let listed = self.listed();
        if let (Kind::Sqlite, Some(python)) = (self.kind, python) {
            let db = self.d().join("users.db");
            let out = python.run_ok(
                "import sqlite3, sys\n\
                 c = sqlite3.connect(sys.argv[1])\n\
                 print(c.execute('PRAGMA integrity_check').fetchone()[0])\n\
                 c.close()",
                &[db.to_str().unwrap()],
                b"",
            );
            assert_eq!(text(&out), "ok\n", "{trial}: integrity_check");
        }
        if self.kind == Kind::Sqlite {
            assert_private_database(self.d(), "users.db", trial);
        }
        listed
    }
}

/// Every file of the SQLite database `name` in `dir` (the database, its `-wal`, `-shm` and
/// `.lock`, which a killed process leaves behind) is private.
fn assert_private_database(dir: &Path, name: &str, what: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(name) {
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{what}: {file} is not private");
            seen += 1;
        }
    }
    assert!(seen > 0, "{what}: no {name}");
}

/// A cheap record of the password `password_of("batch")`, for the copied batches.
fn batch_record() -> String {
    let scratch = tempfile::tempdir().unwrap();
    let json =
        UserStore::new(scratch.path().join("u.json")).with_profile(Profile::TestOnlyInsecure);
    json.register("seed", &SecretString::from(password_of("batch"))).unwrap();
    let users: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(scratch.path().join("u.json")).unwrap()).unwrap();
    users["seed"].as_str().unwrap().to_owned()
}

/// A JSON users file (`name` → one record) of `names`, each with the password `password`.
fn batch_file(path: &Path, names: &[String], record: &str) {
    let map: serde_json::Map<String, serde_json::Value> =
        names.iter().map(|n| (n.clone(), serde_json::Value::from(record))).collect();
    std::fs::write(path, serde_json::to_vec_pretty(&map).unwrap()).unwrap();
}

fn killed_writers_lose_nothing(kind: Kind) {
    let Some(store) = Store::new(kind) else { return };
    let python = if kind == Kind::Sqlite { globo_testkit::python(&["sqlite3"]) } else { None };
    let python = python.as_ref();
    let mut rng = Rng::from_env_or_clock(&format!("{kind:?}"));
    let checker = store.checker();
    let started = Instant::now();

    // register: a user whose command exited 0 is there and verifies; one killed is absent
    // or whole; nobody else is lost.
    let window = store.kill_window(&mut |i| {
        let name = format!("probe{i}");
        let stdin = format!("{}\n", password_of(&name));
        (vec!["register".into(), name, "--password-stdin".into()], stdin)
    });
    let mut expected: BTreeSet<String> = (0..3).map(|i| format!("probe{i}")).collect();
    let (mut killed, mut landed) = (0, 0);
    for trial in 0..REGISTER_TRIALS {
        let name = format!("user{trial:02}");
        let stdin = format!("{}\n", password_of(&name));
        let args = ["register", name.as_str(), "--password-stdin"];
        let exited_ok = store.run_and_kill(&args, &stdin, rng.delay(window));
        let what = format!("{kind:?} register trial {trial}");
        let listed = store.check_after_kill(python, &what);
        for old in &expected {
            assert!(listed.contains(old), "{what}: lost user '{old}'");
        }
        if listed.contains(&name) {
            landed += 1;
            expected.insert(name.clone());
        } else {
            assert!(!exited_ok, "{what}: exited 0, yet '{name}' is missing");
        }
        assert_eq!(listed, expected, "{what}: unexpected users");
        killed += usize::from(!exited_ok);
        for user in &expected {
            assert!(verifies(&checker, user, &password_of(user)), "{what}: '{user}' unusable");
        }
    }
    eprintln!("{kind:?} register: {REGISTER_TRIALS} trials, {killed} killed, {landed} landed");
    assert!(killed > 0, "{kind:?}: no register was killed: the delays are too long");

    // users copy of a few hundred users: one transaction, so all of a batch or none.
    let record = batch_record();
    let batch_names =
        |b: usize| -> Vec<String> { (0..BATCH).map(|i| format!("b{b:02}n{i:03}")).collect() };
    let copy_args = |b: usize| -> Vec<String> {
        let from = format!("batch{b:02}.json");
        batch_file(&store.d().join(&from), &batch_names(b), &record);
        ["users", "copy", "--from", &from, "--to", &store.arg_spec()].map(str::to_owned).to_vec()
    };
    // Batches 90.. time the command (they land whole; they are expected from then on).
    let window = store.kill_window(&mut |i| (copy_args(90 + i), String::new()));
    for b in 90..93 {
        expected.extend(batch_names(b));
    }
    let (mut killed, mut landed) = (0, 0);
    for trial in 0..COPY_TRIALS {
        let names = batch_names(trial);
        let args = copy_args(trial);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let exited_ok = store.run_and_kill(&args, "", rng.delay(window));
        let what = format!("{kind:?} copy trial {trial}");
        let listed = store.check_after_kill(python, &what);
        let present = names.iter().filter(|n| listed.contains(*n)).count();
        if exited_ok {
            assert_eq!(present, BATCH, "{what}: exited 0, yet {present} of {BATCH} copied");
        } else {
            assert!(present == 0 || present == BATCH, "{what}: {present} of {BATCH} copied");
        }
        if present == BATCH {
            landed += 1;
            expected.extend(names.iter().cloned());
            for name in [&names[0], &names[BATCH / 2], &names[BATCH - 1]] {
                assert!(verifies(&checker, name, &password_of("batch")), "{what}: {name}");
            }
        }
        assert_eq!(listed, expected, "{what}: users lost or unexpected");
        killed += usize::from(!exited_ok);
    }
    eprintln!("{kind:?} copy: {COPY_TRIALS} trials, {killed} killed, {landed} landed");

    // users reset: the user keeps the old password or has the new one, never neither.
    let reset_password = |n: usize| format!("the reset passphrase number {n}");
    let pat = "pat";
    store.ok(&["register", pat, "--password-stdin"], &format!("{}\n", reset_password(0)));
    let reset_args = |n: usize| {
        let args = ["users", "reset", pat, "--password-stdin"].map(str::to_owned).to_vec();
        (args, format!("{}\n", reset_password(n)))
    };
    // Passwords 1 to 3 time the command; the trials set 4, 5, ...
    let window = store.kill_window(&mut |i| reset_args(i + 1));
    let mut current = 3;
    let mut killed = 0;
    for trial in 0..RESET_TRIALS {
        let next = 4 + trial;
        let (args, stdin) = reset_args(next);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let exited_ok = store.run_and_kill(&args, &stdin, rng.delay(window));
        let what = format!("{kind:?} reset trial {trial}");
        store.check_after_kill(python, &what);
        if verifies(&checker, pat, &reset_password(next)) {
            current = next;
        } else {
            assert!(!exited_ok, "{what}: exited 0, yet the new password fails");
            assert!(verifies(&checker, pat, &reset_password(current)), "{what}: both fail");
        }
        killed += usize::from(!exited_ok);
    }
    eprintln!(
        "{kind:?} reset: {RESET_TRIALS} trials, {killed} killed; all in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A copy stopped inside its open transaction (the debug hook `GLOBO_TEST_CRASH_AT=copy-150`
/// aborts `app` after 150 of 300 users are written, before the commit) leaves none of them,
/// and the store opens and takes the same copy whole afterwards. The random kills above do
/// not show that one landed inside the transaction (review R2); this one always does.
fn a_copy_aborted_inside_its_transaction(kind: Kind) {
    let Some(store) = Store::new(kind) else { return };
    let python = if kind == Kind::Sqlite { globo_testkit::python(&["sqlite3"]) } else { None };
    let record = batch_record();
    let names: Vec<String> = (0..BATCH).map(|i| format!("a{i:03}")).collect();
    batch_file(&store.d().join("batch.json"), &names, &record);
    let to = store.arg_spec();
    let args = ["users", "copy", "--from", "batch.json", "--to", to.as_str()];
    let out = globo_testkit::output_guarded(
        store.command(&args).env("GLOBO_TEST_CRASH_AT", "copy-150"),
        None,
    );
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(out.status.signal(), Some(6), "{kind:?}: not aborted mid-copy: {}", stderr(&out));
    let listed = store.check_after_kill(python.as_ref(), &format!("{kind:?} aborted copy"));
    assert!(listed.is_empty(), "{kind:?}: an aborted copy left {} users", listed.len());
    store.ok(&args, "");
    assert_eq!(store.listed(), names.iter().cloned().collect::<BTreeSet<_>>());
    assert!(verifies(&store.checker(), &names[BATCH - 1], &password_of("batch")));
}

#[test]
fn a_copy_aborted_inside_its_transaction_writes_nothing_sqlite() {
    a_copy_aborted_inside_its_transaction(Kind::Sqlite);
}

#[test]
fn a_copy_aborted_inside_its_transaction_writes_nothing_postgres() {
    a_copy_aborted_inside_its_transaction(Kind::Postgres);
}

#[test]
fn a_process_killed_mid_write_loses_nothing_sqlite() {
    killed_writers_lose_nothing(Kind::Sqlite);
}

#[test]
fn a_process_killed_mid_write_loses_nothing_postgres() {
    killed_writers_lose_nothing(Kind::Postgres);
}

/// A SQLite store's first open (the file created, the schema migrated) killed at random
/// moments: the file left opens, passes `PRAGMA integrity_check`, takes users, and a
/// registration that exited 0 is in it.
#[test]
fn a_first_open_killed_midway_leaves_a_usable_sqlite_store() {
    const TRIALS: usize = 15;
    let Some(store) = Store::new(Kind::Sqlite) else { return };
    let python = globo_testkit::python(&["sqlite3"]);
    let mut rng = Rng::from_env_or_clock("Sqlite first open");
    let register = |t: &str| {
        ["register", "alice", "--password-stdin", "--users-store", t].map(str::to_owned).to_vec()
    };
    let stdin = format!("{}\n", password_of("alice"));
    let window =
        store.kill_window(&mut |i| (register(&format!("sqlite://timing{i}.db")), stdin.clone()));
    let mut killed = 0;
    for trial in 0..TRIALS {
        let (file, spec) = (format!("fresh{trial}.db"), format!("sqlite://fresh{trial}.db"));
        let args = register(&spec);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let exited_ok = store.run_and_kill(&args, &stdin, rng.delay(window));
        killed += usize::from(!exited_ok);
        let what = format!("first open trial {trial}");
        if !store.d().join(&file).exists() {
            assert!(!exited_ok, "{what}: exited 0, yet no database");
            continue;
        }
        assert_private_database(store.d(), &file, &what);
        let listed = store.ok(&["users", "list", "--users-store", &spec], "");
        if exited_ok {
            assert_eq!(listed, "alice\n", "{what}");
        } else {
            assert!(listed.is_empty() || listed == "alice\n", "{what}: {listed}");
        }
        if let Some(python) = &python {
            let out = python.run_ok(
                "import sqlite3, sys\n\
                 c = sqlite3.connect(sys.argv[1])\n\
                 print(c.execute('PRAGMA integrity_check').fetchone()[0])\n\
                 c.close()",
                &[store.d().join(&file).to_str().unwrap()],
                b"",
            );
            assert_eq!(text(&out), "ok\n", "{what}: integrity_check");
        }
        let bob = ["register", "bob", "--password-stdin", "--users-store", &spec];
        assert_eq!(
            store.ok(&bob, &format!("{}\n", password_of("bob"))),
            "User 'bob' registered.\n"
        );
    }
    eprintln!("Sqlite first open: {TRIALS} trials, {killed} killed");
    assert!(killed > 0, "no first open was killed: the delays are too long");
}

// --- 4. users copy across kinds ------------------------------------------------------------

/// JSON → SQLite → PostgreSQL → JSON: the last file is the first, byte for byte (the lab's
/// format, names and records as they were); every copy run again changes nothing.
#[test]
fn copy_json_to_sqlite_to_postgres_to_json_gives_the_same_file() {
    let Some(pg) = Store::new(Kind::Postgres) else { return };
    let d = pg.d();
    let names = ["alice", "Bob", "zoë", "名前", "carol"];
    for name in names {
        let args = ["register", name, "--password-stdin", "--users-store", "users.json"];
        pg.ok(&args, &format!("{}\n", password_of(name)));
    }
    let original = std::fs::read(d.join("users.json")).unwrap();
    let pg_spec = pg.arg_spec();
    let hops = [
        ("users.json", "sqlite://users.db"),
        ("sqlite://users.db", pg_spec.as_str()),
        (pg_spec.as_str(), "back.json"),
    ];
    let shown = |spec: &str| if spec == pg_spec { pg.location() } else { spec.to_owned() };
    for (created, unchanged) in [(5, 0), (0, 5)] {
        for (from, to) in hops {
            let out = pg.ok(&["users", "copy", "--from", from, "--to", to], "");
            assert_eq!(
                out,
                format!(
                    "Copied users from '{}' to '{}': created {created}, unchanged {unchanged}, \
                     conflicting 0.\n",
                    shown(from),
                    shown(to)
                )
            );
        }
        assert_eq!(
            text(&std::fs::read(d.join("back.json")).unwrap()),
            text(&original),
            "the round trip changed the users file"
        );
    }
    let back = ["users", "list", "--users-store", "back.json"];
    assert_eq!(pg.ok(&back, ""), "alice\nBob\nzoë\n名前\ncarol\n");
    for name in names {
        let args = ["verify", name, "--password-stdin", "--users-store", "back.json"];
        pg.ok(&args, &format!("{}\n", password_of(name)));
    }
}

// --- 5. every command on every kind ---------------------------------------------------------

fn commands_work(kind: Kind) {
    let Some(store) = Store::new(kind) else { return };
    let (alice, bob) = (password_of("alice"), password_of("bob"));
    let line = |p: &str| format!("{p}\n");
    let fails = |args: &[&str], stdin: &str| -> String {
        let out = store.run(args, stdin);
        assert_eq!(out.status.code(), Some(1), "{kind:?} {args:?}: {}", text(&out.stdout));
        assert_eq!(text(&out.stdout), "", "{kind:?} {args:?}");
        stderr(&out)
    };
    let verify = |name: &str, p: &str| store.run(&["verify", name, "--password-stdin"], &line(p));
    let verified = |name: &str, p: &str| {
        let out = verify(name, p);
        assert!(out.status.success(), "{kind:?} verify {name}: {}", stderr(&out));
        assert_eq!(text(&out.stdout), format!("Password verified for '{name}'.\n"), "{kind:?}");
    };
    let refused = |name: &str, p: &str| {
        let out = verify(name, p);
        assert_eq!(out.status.code(), Some(1), "{kind:?} verify {name}");
        assert_eq!(stderr(&out), "error: Invalid username or password.\n", "{kind:?}");
    };

    assert_eq!(store.ok(&["users", "list"], ""), "", "{kind:?}");
    let register = ["register", "alice", "--password-stdin"];
    assert_eq!(store.ok(&register, &line(&alice)), "User 'alice' registered.\n");
    assert_eq!(
        store.ok(&["register", "bob", "--password-stdin"], &line(&bob)),
        "User 'bob' registered.\n"
    );
    assert_eq!(fails(&register, &line(&alice)), "error: User 'alice' already exists.\n");
    assert_eq!(store.ok(&["users", "list"], ""), "alice\nbob\n", "{kind:?}");
    verified("alice", &alice);
    refused("alice", WRONG);
    refused("nobody", WRONG);

    // unlock: the failure just counted, then nothing.
    assert_eq!(store.library().throttle_status("alice").unwrap().failures, 1, "{kind:?}");
    assert_eq!(store.ok(&["users", "unlock", "alice"], ""), "User 'alice' unlocked.\n");
    assert_eq!(store.ok(&["users", "unlock", "alice"], ""), "User 'alice' had no failed logins.\n");
    assert_eq!(store.library().throttle_status("alice").unwrap().failures, 0, "{kind:?}");
    assert_eq!(
        store.ok(&["users", "unlock", "nobody"], ""),
        "No user 'nobody' in the store; its failed logins were cleared.\n"
    );

    // passwd: the current password, then the new one.
    let new_alice = "a brand new passphrase for her";
    let passwd = ["users", "passwd", "alice", "--password-stdin"];
    assert_eq!(
        fails(&passwd, &format!("{WRONG}\n{new_alice}\n")),
        "error: Invalid username or password.\n"
    );
    assert_eq!(
        store.ok(&passwd, &format!("{alice}\n{new_alice}\n")),
        "Password changed for 'alice'.\n"
    );
    verified("alice", new_alice);
    refused("alice", &alice);

    // reset: no current password.
    let new_bob = "another passphrase for him";
    assert_eq!(
        store.ok(&["users", "reset", "bob", "--password-stdin"], &line(new_bob)),
        "Password reset for 'bob'.\n"
    );
    verified("bob", new_bob);
    refused("bob", &bob);

    // delete: without a terminal, only with --yes.
    assert_eq!(
        fails(&["users", "delete", "bob"], ""),
        "error: Standard input is not a terminal, so the deletion cannot be confirmed: pass \
         --yes to delete user 'bob'.\n"
    );
    assert_eq!(store.ok(&["users", "list"], ""), "alice\nbob\n", "{kind:?}");
    assert_eq!(store.ok(&["users", "delete", "bob", "--yes"], ""), "User 'bob' deleted.\n");
    assert_eq!(store.ok(&["users", "list"], ""), "alice\n", "{kind:?}");
    let gone = fails(&["users", "delete", "bob", "--yes"], "");
    assert!(gone.starts_with("error: no user 'bob' in the store: "), "{kind:?}: {gone}");
    refused("bob", new_bob);
    verified("alice", new_alice);
}

#[test]
fn every_command_works_on_json() {
    commands_work(Kind::Json);
}

#[test]
fn every_command_works_on_sqlite() {
    commands_work(Kind::Sqlite);
}

#[test]
fn every_command_works_on_postgres() {
    commands_work(Kind::Postgres);
}
