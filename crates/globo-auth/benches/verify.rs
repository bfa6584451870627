//! Verification timing, in one run:
//! 1. `UserStore::verify` for a known user (right and wrong password) and an unknown user,
//!    interleaved, median times and the ratios (the lab's unknown/known ratio was 1.9);
//! 2. globo's `verify_password` against argon2-cffi's `PasswordHasher.verify` on the same hash,
//!    for the OWASP minimum and RFC 9106 low-memory parameters.
//!
//! `cargo bench -p globo-auth --bench verify` (add `--features parallel` for multi-threaded
//! lanes). `GLOBO_BENCH_SAMPLES` sets the number of samples per figure (default 41).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use globo_auth::{Profile, UserStore, hash_password, verify_password};
use secrecy::SecretString;

const PASSWORD: &str = "correct horse battery staple";

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn time(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    ms(start.elapsed())
}

/// Known (right password), known (wrong password) and unknown user, in rotating order.
fn known_vs_unknown(profile: Profile, samples: usize) {
    let dir = tempfile::tempdir().unwrap();
    // Throttling off: the wrong-password samples would be refused (no Argon2 run) after the
    // first five failures; this measures verification, benches/throttle.rs measures throttling.
    let store =
        UserStore::new(dir.path().join("users.json")).with_profile(profile).without_throttle();
    store.register("alice", &SecretString::from(PASSWORD)).unwrap();
    let right = SecretString::from(PASSWORD);
    let wrong = SecretString::from("not the password at all");
    let known_ok = || assert!(!store.verify("alice", &right).unwrap().rehashed());
    let known_bad = || assert!(store.verify("alice", &wrong).is_err());
    let unknown = || assert!(store.verify("mallory", &right).is_err());
    // Warm up (also makes the store's dummy hash, as a long-running server would have).
    known_ok();
    known_bad();
    unknown();

    let (mut ok, mut bad, mut unk) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ratio_ok, mut ratio_bad) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let (a, b, c);
        match i % 3 {
            0 => {
                a = time(known_ok);
                b = time(known_bad);
                c = time(unknown);
            }
            1 => {
                c = time(unknown);
                a = time(known_ok);
                b = time(known_bad);
            }
            _ => {
                b = time(known_bad);
                c = time(unknown);
                a = time(known_ok);
            }
        }
        ok.push(a);
        bad.push(b);
        unk.push(c);
        ratio_ok.push(c / a);
        ratio_bad.push(c / b);
    }
    let (m_ok, m_bad, m_unk) = (median(&mut ok), median(&mut bad), median(&mut unk));
    println!("## UserStore::verify, profile {profile}, {samples} interleaved samples each");
    println!("known user, right password : median {m_ok:8.2} ms");
    println!("known user, wrong password : median {m_bad:8.2} ms");
    println!("unknown user               : median {m_unk:8.2} ms");
    println!(
        "unknown / known (right)    : ratio of medians {:.4}, median of paired ratios {:.4}",
        m_unk / m_ok,
        median(&mut ratio_ok)
    );
    println!(
        "unknown / known (wrong)    : ratio of medians {:.4}, median of paired ratios {:.4}",
        m_unk / m_bad,
        median(&mut ratio_bad)
    );
    println!();
}

/// Times argon2-cffi verifying `hash` `samples` times; prints the median in ms.
const PY_BENCH: &str = r#"
import sys, time, statistics, argon2
hash, samples = sys.argv[1], int(sys.argv[2])
password = sys.stdin.read()
ph = argon2.PasswordHasher()
ph.verify(hash, password)
times = []
for _ in range(samples):
    start = time.perf_counter()
    ph.verify(hash, password)
    times.append((time.perf_counter() - start) * 1e3)
print(statistics.median(times))
"#;

fn globo_vs_argon2_cffi(samples: usize) {
    println!("## verify time at equal parameters, {samples} samples each (median)");
    let Some(python) = globo_testkit::python(&["argon2"]) else {
        println!("argon2-cffi not available: comparison skipped");
        return;
    };
    let parallel = if cfg!(feature = "parallel") { "on" } else { "off" };
    println!("argon2 crate `parallel` feature: {parallel}; CPUs: {}", cpus());
    println!("| parameters | globo ms | argon2-cffi ms | globo / argon2-cffi |");
    println!("| --- | --- | --- | --- |");
    for profile in [Profile::OwaspMinimum, Profile::Rfc9106LowMemory] {
        let hash = hash_password(PASSWORD, profile).unwrap();
        verify_password(PASSWORD, &hash).unwrap();
        let mut globo: Vec<f64> =
            (0..samples).map(|_| time(|| verify_password(PASSWORD, &hash).unwrap())).collect();
        let globo = median(&mut globo);
        let out = python.run_ok(PY_BENCH, &[&hash, &samples.to_string()], PASSWORD.as_bytes());
        let cffi: f64 = String::from_utf8(out).unwrap().trim().parse().unwrap();
        let p = profile.params();
        println!(
            "| {profile} (m={}, t={}, p={}) | {globo:.2} | {cffi:.2} | {:.3} |",
            p.memory_kib(),
            p.iterations(),
            p.lanes(),
            globo / cffi
        );
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let samples =
        std::env::var("GLOBO_BENCH_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(41usize);
    known_vs_unknown(Profile::Rfc9106LowMemory, samples);
    known_vs_unknown(Profile::OwaspMinimum, samples);
    globo_vs_argon2_cffi(samples);
}
