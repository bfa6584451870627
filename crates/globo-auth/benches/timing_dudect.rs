//! Does the time of a failed login reveal whether the username exists? A dudect-style test
//! (Reparaz, Balasch, Verbauwhede, "Dude, is my code constant time?", 2017): many samples of
//! two classes, interleaved in random order, then Welch's t-test on the two timing
//! distributions, on all samples and on the samples below several percentiles (cropping the
//! slow tail that scheduling noise adds). |t| above 4.5 means the classes are distinguishable
//! with high confidence; below it, no leak was detected at this sample size.
//!
//! Classes: a known user with a wrong password, and an unknown user (any password). Both fail
//! with the same error; only timing could tell them apart.
//!
//! Two runs, printed side by side:
//! - the default profile (RFC 9106 low-memory, what a deployment uses): Argon2 dominates;
//! - the test-only profile (m=8 KiB): Argon2 costs microseconds, so any difference in the
//!   code around it (file reading, lookup, the dummy hash) is magnified.
//!
//! `cargo bench -p globo-auth --bench timing_dudect`. `GLOBO_DUDECT_SAMPLES` sets the number
//! of samples per class for the default profile (default 200; the test-only run uses 40x).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use globo_auth::{AuthError, Profile, UserStore};
use secrecy::SecretString;

const THRESHOLD: f64 = 4.5;

/// xorshift64*, seeded from the OS: the order of the classes must not be predictable.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).unwrap();
        Self(u64::from_le_bytes(seed) | 1)
    }

    fn bit(&mut self) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 63 == 1
    }
}

/// Welch's t statistic of two samples.
fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let stats = |x: &[f64]| {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (n, mean, var)
    };
    let (na, ma, va) = stats(a);
    let (nb, mb, vb) = stats(b);
    (ma - mb) / (va / na + vb / nb).sqrt()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// Runs the test and prints one block; returns the largest |t| over the crops.
fn run(label: &str, profile: Profile, samples: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    // Throttling off: thousands of wrong logins on one name would be refused after five
    // (delays), and a refusal runs no Argon2, so the test would time the throttle, not the
    // verification it is about (benches/throttle.rs measures throttling).
    let store =
        UserStore::new(dir.path().join("users.json")).with_profile(profile).without_throttle();
    // A realistic small file: several users, all with the profile's parameters.
    for i in 0..8 {
        let password = SecretString::from(format!("password of user {i}"));
        store.register(&format!("user{i}"), &password).unwrap();
    }
    let wrong = SecretString::from("a wrong password, same for both");
    let known = || matches!(store.verify("user3", &wrong), Err(AuthError::InvalidCredentials));
    let unknown = || matches!(store.verify("mallory", &wrong), Err(AuthError::InvalidCredentials));
    // Warm-up: file cache, the store's dummy hash, allocator.
    for _ in 0..5 {
        assert!(known() && unknown());
    }

    let mut rng = Rng::new();
    let (mut a, mut b) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    while a.len() < samples || b.len() < samples {
        let class_a = rng.bit();
        if (class_a && a.len() >= samples) || (!class_a && b.len() >= samples) {
            continue;
        }
        let start = Instant::now();
        let failed = if class_a { known() } else { unknown() };
        let micros = start.elapsed().as_secs_f64() * 1e6;
        assert!(failed);
        if class_a { a.push(micros) } else { b.push(micros) }
    }

    let mut all: Vec<f64> = a.iter().chain(&b).copied().collect();
    all.sort_by(f64::total_cmp);
    println!("{label}: {samples} samples per class, interleaved at random");
    println!(
        "  median: known user (wrong password) {:.1} us, unknown user {:.1} us, ratio unknown/known {:.3}",
        median(&a),
        median(&b),
        median(&b) / median(&a)
    );
    let mut worst: f64 = 0.0;
    for crop in [1.0, 0.99, 0.9, 0.75, 0.5] {
        let limit = percentile(&all, crop);
        let ca: Vec<f64> = a.iter().copied().filter(|&v| v <= limit).collect();
        let cb: Vec<f64> = b.iter().copied().filter(|&v| v <= limit).collect();
        if ca.len() < 10 || cb.len() < 10 {
            continue;
        }
        let t = welch_t(&ca, &cb);
        worst = worst.max(t.abs());
        println!(
            "  samples <= p{:<3} ({:>6} + {:>6}): t = {:+7.2}",
            (crop * 100.0) as u32,
            ca.len(),
            cb.len(),
            t
        );
    }
    let verdict = if worst < THRESHOLD { "no leak detected" } else { "DISTINGUISHABLE" };
    println!("  max |t| = {worst:.2} (threshold {THRESHOLD}): {verdict}");
    worst
}

fn main() {
    let samples: usize =
        std::env::var("GLOBO_DUDECT_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let default = run("default profile (rfc9106-low-memory)", Profile::default(), samples);
    let cheap = run(
        "test-only profile (m=8 KiB, amplifies non-Argon2 code)",
        Profile::TestOnlyInsecure,
        samples * 40,
    );
    println!(
        "BENCH timing_dudect default_max_abs_t={default:.2} test_only_max_abs_t={cheap:.2} threshold={THRESHOLD}"
    );
}
