//! Throttled logins, globo against what a Python service would otherwise use (issue 13 cites
//! django-axes), in one run with interleaved samples:
//!
//! - globo: `UserStore::verify_from(name, password, Some("127.0.0.1"))`, in process, with
//!   `ThrottlePolicy::default()` (throttling on, the default);
//! - Django 5.2 + django-axes 8 (python/requirements-bench.txt): one long-lived Python process
//!   (benches/python/axes_login.py, no start-up cost in the figures) times
//!   `django.contrib.auth.authenticate(request, ...)` and, on success, the `user_logged_in`
//!   signal of `login()`, where axes clears the username's failures as `verify_from` clears
//!   the account (the session left out; `authenticate()` alone is reported too), with axes's
//!   backend and middleware as its documentation sets them, a SQLite database, and Django's
//!   Argon2 hasher at globo's default profile (rfc9106-low-memory: m=65536, t=3, p=4).
//!
//! Three cases, both sides alike: the right password, a wrong one, and an attempt refused
//! because its account is locked (locked by 100 failures from another address; both refuse
//! it before any Argon2 run, which both sides check). Between rounds the failures of the
//! account and of 127.0.0.1 are cleared on both sides (untimed), so no sample is delayed.
//!
//! `cargo bench -p globo-auth --bench throttle_axes --features parallel` (as `app` ships
//! globo-auth; argon2-cffi runs its lanes on threads too). Needs `pip install -r
//! python/requirements-bench.txt` in the venv (scripts/bench does it). `GLOBO_BENCH_SAMPLES`
//! sets the samples per case and side (default 41).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use globo_auth::{AuthError, Profile, ThrottlePolicy, ThrottleScope, UserStore};
use secrecy::SecretString;

const PASSWORD: &str = "correct horse battery staple";
const WRONG: &str = "not the password at all";
const SOURCE: &str = "127.0.0.1";
const CASES: [&str; 3] = ["right", "wrong", "locked"];

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

fn time_ns(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() * 1e9
}

/// The Django + django-axes process, driven one command per line.
struct Axes {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Axes {
    fn start(python: &globo_testkit::Python, folder: &std::path::Path) -> (Self, String) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/axes_login.py");
        let mut child = Command::new(python.exe())
            .env_clear()
            .envs(globo_testkit::python_environment())
            .arg(script)
            .arg(folder)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Django process");
        let mut stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        writeln!(stdin, "{PASSWORD}").unwrap();
        let mut axes = Self { child, stdin, stdout };
        let ready = axes.line();
        let versions = ready.strip_prefix("ready ").unwrap_or_else(|| panic!("Django: {ready}"));
        (axes, versions.to_owned())
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the Django process ended (its error is above)");
        line.trim_end().to_owned()
    }

    /// Runs one case; returns the times Python measured: the login (`authenticate()`, and
    /// the signal on success), and `authenticate()` alone.
    fn run(&mut self, case: &str) -> (f64, f64) {
        writeln!(self.stdin, "{case}").unwrap();
        let answer = self.line();
        let fields: Vec<&str> = answer.split(' ').collect();
        let (ns, user, argon2_runs, auth_ns) = (fields[0], fields[1], fields[2], fields[3]);
        let expected = match case {
            "right" => ("alice", "1"),
            "wrong" => ("None", "1"),
            _ => ("None", "0"),
        };
        assert_eq!((user, argon2_runs), expected, "Django, {case}: {answer}");
        (ns.parse().unwrap(), auth_ns.parse().unwrap())
    }

    fn reset(&mut self) {
        writeln!(self.stdin, "reset").unwrap();
        assert_eq!(self.line(), "ok");
    }
}

impl Drop for Axes {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    let samples: usize =
        std::env::var("GLOBO_BENCH_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(41);
    let Some(python) = globo_testkit::python(&["django", "axes", "argon2"]) else {
        println!("Django and django-axes not available: comparison skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let django_dir = dir.path().join("django");
    std::fs::create_dir(&django_dir).unwrap();
    let (mut axes, versions) = Axes::start(&python, &django_dir);

    // A clock the benchmark moves on, to lock bob through the default delays.
    let offset = Arc::new(AtomicU64::new(0));
    let clock = {
        let offset = Arc::clone(&offset);
        Arc::new(move || SystemTime::now() + Duration::from_secs(offset.load(Ordering::SeqCst)))
    };
    let policy = ThrottlePolicy::default();
    let profile = Profile::default();
    let store = UserStore::new(dir.path().join("users.json"))
        .with_profile(profile)
        .with_throttle(policy)
        .unwrap()
        .with_clock(clock);
    let right = SecretString::from(PASSWORD);
    let wrong = SecretString::from(WRONG);
    store.register("alice", &right).unwrap();
    store.register("bob", &right).unwrap();
    // bob is locked by 100 failures from another address, each after the delay is over.
    for _ in 0..100 {
        offset.fetch_add(16 * 60, Ordering::SeqCst);
        let refused = store.verify_from("bob", &wrong, Some("10.0.0.2"));
        assert!(matches!(refused, Err(AuthError::InvalidCredentials)), "{refused:?}");
    }
    let globo_case = |case: &str| match case {
        "right" => assert!(store.verify_from("alice", &right, Some(SOURCE)).is_ok()),
        "wrong" => assert!(matches!(
            store.verify_from("alice", &wrong, Some(SOURCE)),
            Err(AuthError::InvalidCredentials)
        )),
        _ => assert!(matches!(
            store.verify_from("bob", &right, Some(SOURCE)),
            Err(AuthError::Throttled { scope: ThrottleScope::Account, locked: true, .. })
        )),
    };
    let reset_globo = || {
        store.unlock("alice").unwrap();
        store.unlock_source(SOURCE).unwrap();
    };
    // Warm up both (file cache, the store's dummy hash, Django's caches).
    for case in CASES {
        globo_case(case);
        axes.run(case);
    }
    reset_globo();
    axes.reset();

    let mut globo = [vec![], vec![], vec![]];
    let mut django = [vec![], vec![], vec![]];
    let mut paired = [vec![], vec![], vec![]];
    let mut authenticate_only = [vec![], vec![], vec![]];
    for i in 0..samples {
        for k in 0..CASES.len() {
            let c = (i + k) % CASES.len();
            let case = CASES[c];
            let (g, (d, a)) = if i % 2 == 0 {
                let g = time_ns(|| globo_case(case));
                (g, axes.run(case))
            } else {
                let d = axes.run(case);
                (time_ns(|| globo_case(case)), d)
            };
            globo[c].push(g);
            django[c].push(d);
            authenticate_only[c].push(a);
            paired[c].push(g / d);
        }
        reset_globo();
        axes.reset();
    }

    let parallel = if cfg!(feature = "parallel") { "on" } else { "off" };
    let (django_version, axes_version) = versions.split_once(' ').unwrap();
    println!(
        "## throttled login, globo verify_from vs Django {django_version} authenticate() with \
         django-axes {axes_version}, {samples} interleaved samples each; Argon2 {profile}; \
         globo `parallel` {parallel}"
    );
    println!("| case | globo | Django + axes | globo / axes | median of paired ratios |");
    println!("| --- | --- | --- | --- | --- |");
    let mut bench_lines = Vec::new();
    for (c, case) in CASES.iter().enumerate() {
        let (g, d, p) = (median(&mut globo[c]), median(&mut django[c]), median(&mut paired[c]));
        let a = median(&mut authenticate_only[c]);
        println!(
            "| {case} | {:.3} ms | {:.3} ms (authenticate() alone {:.3} ms) | {:.4} | {p:.4} |",
            g / 1e6,
            d / 1e6,
            a / 1e6,
            g / d
        );
        bench_lines.push(format!(
            "BENCH axes case={case} globo_ns={g:.0} axes_ns={d:.0} paired={p:.4} \
             authenticate_ns={a:.0} \
             django={django_version} axes={axes_version}"
        ));
    }
    for line in bench_lines {
        println!("{line}");
    }
}
