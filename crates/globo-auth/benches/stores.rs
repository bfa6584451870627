//! Verify latency per credential store (issue 14), at 10,000 and 100,000 users, in one run,
//! side by side with what users would otherwise use:
//!
//! 1. seeding: a users file of N users written directly (names `user000000`...; a handful of
//!    real default-profile Argon2id records made once with `hash_password`, reused across
//!    names), then `copy_users` into a fresh SQLite file and a fresh PostgreSQL database
//!    (timed: users/s);
//! 2. per store (JSON file, SQLite, PostgreSQL) and N, interleaved rounds of: a known user
//!    with the right password as shipped (default profile, throttling on) and without
//!    throttling (the store's own cost), an unknown user (throttling on, a fresh name per
//!    round, as a guesser's new names are; and off, one name), and the bare
//!    Argon2 verification of the same record (`verify_password`), the baseline; medians, and
//!    "store overhead" = verify − Argon2 (the difference of the medians, and the median of
//!    each round's difference); and the store's own cost alone (`store_costs`: a user whose
//!    record has test-only parameters, both user counts interleaved), with the median
//!    `fsync` of the temporary folder's disk during those rounds (a durable commit waits for
//!    one);
//! 3. the Python side, timed inside one long-lived process per N (`time.perf_counter`, no
//!    process start): the lab's login (users.json loaded on every call, passlib's
//!    `argon2.verify`; an unknown name hashes a dummy password then verifies it, as the lab
//!    does) and argon2-cffi over Python's `sqlite3` (one lookup by primary key, then
//!    `PasswordHasher.verify`), on the same records.
//!
//! Target (issue 14): Argon2 time + <= 2 ms, flat in the user count, for SQLite and
//! PostgreSQL. The JSON file reads the whole file on every login (that is why the issue
//! exists): its overhead grows with N.
//!
//! `cargo bench -p globo-auth --bench stores --features sqlite,postgres,parallel` with a
//! PostgreSQL server named by `GLOBO_TEST_POSTGRES_URL` (`scripts/postgres start`); without
//! one, the PostgreSQL rows print SKIPPED (with `CI=true`, a panic). `GLOBO_BENCH_SAMPLES`
//! sets the rounds per store and N (default 15; ten times as many for the store costs);
//! `GLOBO_BENCH_USERS` the user counts (default `10000,100000`); `GLOBO_BENCH_STORES` the
//! stores (e.g. `sqlite,postgres`; then no Python). About 4 to 6 minutes on 2 shared cores.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use globo_auth::{Profile, UserStore, copy_users, hash_password, verify_password};
use secrecy::SecretString;

const PASSWORD: &str = "correct horse battery staple";
/// Distinct records (distinct salts), reused across names in turn.
const RECORDS: usize = 8;

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

fn name(i: usize) -> String {
    format!("user{i:06}")
}

/// A users file of `n` users, written directly (the lab's format: one JSON object); user
/// `n / 2 + 1` gets `cheap` (see [`store_cost`]).
fn write_users(path: &Path, n: usize, records: &[String], cheap: &str) {
    let mut text = String::with_capacity(n * (records[0].len() + 20));
    text.push('{');
    for i in 0..n {
        if i > 0 {
            text.push_str(", ");
        }
        let record = if i == n / 2 + 1 { cheap } else { &records[i % records.len()] };
        write!(text, "\"{}\": \"{record}\"", name(i)).unwrap();
    }
    text.push('}');
    std::fs::write(path, text).unwrap();
}

/// One store's figures at one N, in ns.
struct Figures {
    store: &'static str,
    users: usize,
    argon2: f64,
    known: f64,
    known_unthrottled: f64,
    unknown: f64,
    unknown_unthrottled: f64,
    /// Median of each round's (known without throttling − Argon2).
    paired: f64,
    /// Median of each round's (known as shipped − Argon2).
    paired_shipped: f64,
    /// The slowest known-user login without throttling (a typical-record refresh, say).
    worst_unthrottled: f64,
    /// [`store_cost`]: as shipped, without throttling.
    cost: (f64, f64),
}

/// The store's own cost, measured without Argon2's noise: a login of the user whose record
/// has test-only parameters (microseconds of Argon2), through the store opened with that
/// profile (so no rehash), throttling on and off, minus `verify_password` of that record.
/// `stores` are one backend at each user count, `(users, as shipped, without throttling)`:
/// their rounds are interleaved, so every user count sees the same machine load. In ns, per
/// entry: (as shipped, no throttling), medians of `rounds` rounds.
fn store_costs(
    stores: &[(usize, UserStore, UserStore)],
    cheap: &str,
    rounds: usize,
    fsyncs: &mut Vec<f64>,
) -> Vec<(f64, f64)> {
    let right = SecretString::from(PASSWORD);
    let login = |s: &UserStore, users: usize| {
        assert!(!s.verify(&name(users / 2 + 1), &right).unwrap().rehashed());
    };
    let argon2 = || verify_password(PASSWORD, cheap).unwrap();
    for (users, on, off) in stores {
        login(on, *users);
        login(off, *users);
    }
    let mut results: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); stores.len()];
    for i in 0..rounds {
        for k in 0..stores.len() {
            let j = (i + k) % stores.len();
            let (users, on, off) = &stores[j];
            let (a, b, c);
            if i % 2 == 0 {
                a = time_ns(|| login(on, *users));
                b = time_ns(|| login(off, *users));
                c = time_ns(argon2);
            } else {
                c = time_ns(argon2);
                b = time_ns(|| login(off, *users));
                a = time_ns(|| login(on, *users));
            }
            results[j].0.push(a - c);
            results[j].1.push(b - c);
        }
        fsyncs.push(fsync_ns());
    }
    results.iter_mut().map(|(on, off)| (median(on), median(off))).collect()
}

/// One `fsync` of a small write to a file in the temporary folder (where the SQLite files
/// are): what a durable commit waits for on this disk, at this moment.
fn fsync_ns() -> f64 {
    use std::io::Write as _;
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&[0u8; 100]).unwrap();
    time_ns(|| file.sync_all().unwrap())
}

/// Interleaved rounds on one store: `shipped` as `app` ships it (throttling on), `bare` the
/// same store without throttling.
fn measure(
    store: &'static str,
    users: usize,
    shipped: &UserStore,
    bare: &UserStore,
    record: &str,
    samples: usize,
) -> Figures {
    let right = SecretString::from(PASSWORD);
    let known_name = name(users / 2);
    let known = |s: &UserStore| assert!(!s.verify(&known_name, &right).unwrap().rehashed());
    let unknown_fixed = || assert!(bare.verify("nobody-here", &right).is_err());
    let mut fresh = 0usize;
    let mut unknown_fresh = || {
        fresh += 1;
        let who = format!("nobody-{fresh}");
        let err = shipped.verify(&who, &right).unwrap_err();
        assert!(matches!(err, globo_auth::AuthError::InvalidCredentials), "{err}");
    };
    let argon2 = || verify_password(PASSWORD, record).unwrap();
    // Warm up: pools, prepared statements, the typical record, the throttling salt.
    known(shipped);
    known(bare);
    unknown_fixed();
    unknown_fresh();
    argon2();

    let mut v: [Vec<f64>; 5] = Default::default();
    for i in 0..samples {
        for k in 0..5 {
            let t = match (i + k) % 5 {
                0 => time_ns(|| known(shipped)),
                1 => time_ns(|| known(bare)),
                2 => time_ns(&mut unknown_fresh),
                3 => time_ns(unknown_fixed),
                _ => time_ns(argon2),
            };
            v[(i + k) % 5].push(t);
        }
    }
    let mut paired: Vec<f64> = v[1].iter().zip(&v[4]).map(|(a, b)| a - b).collect();
    let mut paired_shipped: Vec<f64> = v[0].iter().zip(&v[4]).map(|(a, b)| a - b).collect();
    let worst_unthrottled = v[1].iter().copied().fold(0.0, f64::max);
    let [k, ku, u, uu, a] = &mut v;
    Figures {
        store,
        users,
        argon2: median(a),
        known: median(k),
        known_unthrottled: median(ku),
        unknown: median(u),
        unknown_unthrottled: median(uu),
        paired: median(&mut paired),
        paired_shipped: median(&mut paired_shipped),
        worst_unthrottled,
        cost: (0.0, 0.0),
    }
}

/// argv: users.json, a path for the SQLite database it builds, the known name, samples.
/// Prints `BENCH` lines (ns).
const PY_BENCH: &str = r#"
import json, sqlite3, statistics, sys, time
import argon2
from passlib.hash import argon2 as passlib_argon2

users_file, db, known, samples = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
password = sys.stdin.read()
n = len(json.load(open(users_file)))

# The lab's login (LAB.md, module auth): the users file loaded on every call, passlib's
# verify; an unknown name hashes a dummy password, then verifies it.
def lab_verify(username, password):
    with open(users_file) as f:
        users = json.load(f)
    if username not in users:
        passlib_argon2.verify(password, passlib_argon2.hash("dummy-password"))
        return False
    return passlib_argon2.verify(password, users[username])

# argon2-cffi over sqlite3: one lookup by primary key; an unknown name verifies a dummy hash.
start = time.perf_counter()
con = sqlite3.connect(db)
con.execute("CREATE TABLE users (name TEXT PRIMARY KEY, record TEXT NOT NULL)")
with open(users_file) as f:
    con.executemany("INSERT INTO users VALUES (?, ?)", json.load(f).items())
con.commit()
load_s = time.perf_counter() - start
ph = argon2.PasswordHasher()
dummy = ph.hash("dummy-password")
def sqlite_verify(username, password):
    row = con.execute("SELECT record FROM users WHERE name = ?", (username,)).fetchone()
    try:
        return ph.verify(row[0] if row else dummy, password) and row is not None
    except argon2.exceptions.VerifyMismatchError:
        return False

record = con.execute("SELECT record FROM users WHERE name = ?", (known,)).fetchone()[0]
cases = [
    ("lab_known", lambda: lab_verify(known, password), True),
    ("lab_unknown", lambda: lab_verify("nobody-here", password), False),
    ("sqlite_known", lambda: sqlite_verify(known, password), True),
    ("sqlite_unknown", lambda: sqlite_verify("nobody-here", password), False),
    ("argon2", lambda: ph.verify(record, password), True),
]
for _, f, want in cases:
    assert f() is want
times = {c[0]: [] for c in cases}
for i in range(samples):
    for k in range(len(cases)):
        label, f, _ = cases[(i + k) % len(cases)]
        start = time.perf_counter_ns()
        f()
        times[label].append(time.perf_counter_ns() - start)
m = {k: statistics.median(v) for k, v in times.items()}
paired = lambda k: statistics.median(a - b for a, b in zip(times[k], times["argon2"]))
print(f"BENCH stores kind=python users={n} argon2_ns={m['argon2']:.0f}"
      f" lab_known_ns={m['lab_known']:.0f} lab_unknown_ns={m['lab_unknown']:.0f}"
      f" sqlite_known_ns={m['sqlite_known']:.0f} sqlite_unknown_ns={m['sqlite_unknown']:.0f}"
      f" lab_paired_ns={paired('lab_known'):.0f} sqlite_paired_ns={paired('sqlite_known'):.0f}"
      f" sqlite_load_s={load_s:.3f}")
"#;

fn ms(ns: f64) -> String {
    format!("{:.2}", ns / 1e6)
}

fn main() {
    let samples: usize =
        std::env::var("GLOBO_BENCH_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    let counts: Vec<usize> = std::env::var("GLOBO_BENCH_USERS")
        .ok()
        .map(|s| s.split(',').map(|n| n.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    let profile = Profile::default();
    let records: Vec<String> =
        (0..RECORDS).map(|_| hash_password(PASSWORD, profile).unwrap()).collect();
    let cheap = hash_password(PASSWORD, Profile::TestOnlyInsecure).unwrap();
    let rounds = samples * 10;
    // `GLOBO_BENCH_STORES=sqlite,postgres`: only those stores (and no Python); default all.
    let only = std::env::var("GLOBO_BENCH_STORES").ok();
    let wanted = |store: &str| only.as_deref().is_none_or(|o| o.split(',').any(|s| s == store));
    let python = globo_testkit::python(&["argon2", "passlib"]);
    if python.is_none() {
        println!("SKIPPED Python: no venv with argon2-cffi and passlib");
    }
    let parallel = if cfg!(feature = "parallel") { "on" } else { "off" };
    println!(
        "## credential stores, {profile}, {samples} interleaved rounds per store and N; \
         globo `parallel` {parallel}; load {}",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );

    // Seeding: every user count first, so the store costs can interleave them.
    struct Seeded {
        users: usize,
        dir: tempfile::TempDir,
        database: Option<globo_testkit::TestDatabase>,
    }
    let mut seeded = Vec::new();
    for &n in &counts {
        let dir = tempfile::tempdir().unwrap();
        let json_path = dir.path().join("users.json");
        write_users(&json_path, n, &records, &cheap);
        let json = UserStore::new(&json_path);
        let sqlite = UserStore::sqlite(dir.path().join("users.db")).unwrap();
        let secs = time_ns(|| assert_eq!(copy_users(&json, &sqlite).unwrap().created, n)) / 1e9;
        println!(
            "BENCH stores kind=copy store=sqlite users={n} secs={secs:.3} rate={:.0}",
            n as f64 / secs
        );
        let database = if wanted("postgres") { globo_testkit::postgres() } else { None };
        match &database {
            Some(db) => {
                let store = UserStore::postgres(db.config(), db.location().to_owned()).unwrap();
                let secs =
                    time_ns(|| assert_eq!(copy_users(&json, &store).unwrap().created, n)) / 1e9;
                println!(
                    "BENCH stores kind=copy store=postgres users={n} secs={secs:.3} rate={:.0}",
                    n as f64 / secs
                );
            }
            None if wanted("postgres") => println!(
                "SKIPPED postgres users={n}: no PostgreSQL server (GLOBO_TEST_POSTGRES_URL; scripts/postgres start)"
            ),
            None => {}
        }
        seeded.push(Seeded { users: n, dir, database });
    }
    // One store at one user count, as shipped or not, with the default or the test profile.
    let open =
        |store: &str, s: &Seeded, throttled: bool, cheap_records: bool| -> Option<UserStore> {
            let opened = match store {
                "json" => UserStore::new(s.dir.path().join("users.json")),
                "sqlite" => UserStore::sqlite(s.dir.path().join("users.db")).unwrap(),
                _ => {
                    let db = s.database.as_ref()?;
                    UserStore::postgres(db.config(), db.location().to_owned()).unwrap()
                }
            };
            let opened =
                if cheap_records { opened.with_profile(Profile::TestOnlyInsecure) } else { opened };
            Some(if throttled { opened } else { opened.without_throttle() })
        };

    let mut figures = Vec::new();
    for store in ["json", "sqlite", "postgres"].into_iter().filter(|s| wanted(s)) {
        let mut costs = Vec::new();
        for s in &seeded {
            let (Some(shipped), Some(bare)) =
                (open(store, s, true, false), open(store, s, false, false))
            else {
                continue;
            };
            let record = &records[(s.users / 2) % RECORDS];
            figures.push(measure(store, s.users, &shipped, &bare, record, samples));
            costs.push((
                s.users,
                open(store, s, true, true).unwrap(),
                open(store, s, false, true).unwrap(),
            ));
        }
        let mut fsyncs = Vec::new();
        let measured = store_costs(&costs, &cheap, rounds, &mut fsyncs);
        if !costs.is_empty() {
            println!("BENCH stores kind=fsync store={store} median_ns={:.0}", median(&mut fsyncs));
        }
        for ((users, _, _), cost) in costs.iter().zip(measured) {
            if let Some(f) = figures.iter_mut().find(|f| f.store == store && f.users == *users) {
                f.cost = cost;
            }
        }
    }
    let mut python_lines = Vec::new();
    if let (Some(python), None) = (&python, &only) {
        for s in &seeded {
            let out = python.run_ok(
                PY_BENCH,
                &[
                    s.dir.path().join("users.json").to_str().unwrap(),
                    s.dir.path().join("python.db").to_str().unwrap(),
                    &name(s.users / 2),
                    &samples.to_string(),
                ],
                PASSWORD.as_bytes(),
            );
            let out = String::from_utf8(out).unwrap();
            python_lines.extend(out.lines().filter(|l| l.starts_with("BENCH")).map(str::to_owned));
        }
    }
    for f in &figures {
        println!(
            "BENCH stores kind=verify store={} users={} argon2_ns={:.0} known_ns={:.0} \
             known_unthrottled_ns={:.0} unknown_ns={:.0} unknown_unthrottled_ns={:.0} \
             paired_ns={:.0} paired_shipped_ns={:.0} worst_unthrottled_ns={:.0} \
             cost_ns={:.0} cost_unthrottled_ns={:.0}",
            f.store,
            f.users,
            f.argon2,
            f.known,
            f.known_unthrottled,
            f.unknown,
            f.unknown_unthrottled,
            f.paired,
            f.paired_shipped,
            f.worst_unthrottled,
            f.cost.0,
            f.cost.1
        );
    }
    for line in &python_lines {
        println!("{line}");
    }

    println!();
    println!(
        "| store | users | Argon2 alone | known, as shipped | known, no throttling | unknown, as shipped | unknown, no throttling | verify − Argon2, as shipped | verify − Argon2, no throttling | store cost, as shipped | store cost, no throttling | target |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for f in &figures {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} ({}) | {} | {} | {} |",
            f.store,
            f.users,
            ms(f.argon2),
            ms(f.known),
            ms(f.known_unthrottled),
            ms(f.unknown),
            ms(f.unknown_unthrottled),
            ms(f.known - f.argon2),
            ms(f.paired_shipped),
            ms(f.known_unthrottled - f.argon2),
            ms(f.paired),
            ms(f.cost.0),
            ms(f.cost.1),
            match (f.store, f.cost.0 <= 2e6) {
                ("json", _) => "none",
                (_, true) => "pass",
                (_, false) => "FAIL",
            }
        );
    }
    println!();
    println!(
        "(ms; verify − Argon2: difference of medians (median of paired differences); store cost: \
         {rounds} rounds on the user with a test-only record, login − its Argon2, median)"
    );
    for line in &python_lines {
        let kv: std::collections::HashMap<&str, f64> = line
            .split_whitespace()
            .filter_map(|p| p.split_once('='))
            .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
            .collect();
        println!(
            "Python, {} users: argon2-cffi alone {} ms; lab (passlib over users.json) known {} ms \
             (+{} ms), unknown {} ms; argon2-cffi + sqlite3 known {} ms (+{} ms), unknown {} ms",
            kv["users"],
            ms(kv["argon2_ns"]),
            ms(kv["lab_known_ns"]),
            ms(kv["lab_paired_ns"]),
            ms(kv["lab_unknown_ns"]),
            ms(kv["sqlite_known_ns"]),
            ms(kv["sqlite_paired_ns"]),
            ms(kv["sqlite_unknown_ns"]),
        );
    }
    // Flatness: 100k against 10k, per store (no throttling, paired overheads).
    for store in ["json", "sqlite", "postgres"] {
        let of = |n: usize| figures.iter().find(|f| f.store == store && f.users == n);
        if let (Some(a), Some(b)) = (of(counts[0]), of(*counts.last().unwrap()))
            && a.users != b.users
        {
            println!(
                "{store}: store cost {} → {} users: {} → {} ms as shipped, {} → {} ms without throttling",
                a.users,
                b.users,
                ms(a.cost.0),
                ms(b.cost.0),
                ms(a.cost.1),
                ms(b.cost.1)
            );
        }
    }
    println!(
        "load at the end {}",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
}
