//! Throttling's cost, in one run (issue 13: a refused attempt on a locked account must cost
//! under 1 % of a verification):
//! 1. a refused attempt on a locked account against one `UserStore::verify` (default
//!    profile, throttling off), with state folders of 1, 10,000 and 100,000 records spread
//!    over the 256 shards as the store spreads them;
//! 2. a login (right password, and wrong password) with throttling on and off, interleaved.
//!
//! `cargo bench -p globo-auth --bench throttle` (add `--features parallel` for multi-threaded
//! lanes). `GLOBO_BENCH_SAMPLES` sets the number of samples per login figure (default 41);
//! refused attempts take 25 times as many.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use globo_auth::{AuthError, Profile, ThrottlePolicy, UserStore};
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};

const PASSWORD: &str = "correct horse battery staple";
const WRONG: &str = "not the password at all";

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

/// Writes a state folder with `records` source records (the documented layout: a `salt`
/// file and shards `00` to `ff`, a source in the shard of SHA-256(salt, "s:", source)), so a
/// large state can be measured without running that many logins. Returns how many records
/// the fullest shard holds.
fn state_with(folder: &Path, records: usize) -> usize {
    let _ = std::fs::remove_dir_all(folder);
    std::fs::create_dir(folder).unwrap();
    // Private, as the store makes it (it refuses a folder others may enter).
    std::fs::set_permissions(folder, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let salt = [0u8; 32];
    std::fs::write(folder.join("salt"), format!("{}\n", "00".repeat(32))).unwrap();
    let mut shards: Vec<String> = vec![String::new(); 256];
    for i in 0..records {
        let source = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        let shard = usize::from(
            Sha256::new_with_prefix(salt).chain_update(b"s:").chain_update(&source).finalize()[0],
        );
        let sources = &mut shards[shard];
        let sep = if sources.is_empty() { "" } else { "," };
        write!(sources, "{sep}\"{source}\":[1,{}]", 4_000_000_000_000u64).unwrap();
    }
    let mut fullest = 0;
    for (shard, sources) in shards.iter().enumerate() {
        if sources.is_empty() {
            continue;
        }
        fullest = fullest.max(sources.matches(':').count());
        let json = format!("{{\"version\":1,\"accounts\":{{}},\"sources\":{{{sources}}}}}\n");
        std::fs::write(folder.join(format!("{shard:02x}")), json).unwrap();
    }
    fullest
}

fn main() {
    let samples: usize =
        std::env::var("GLOBO_BENCH_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(41);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let profile = Profile::default();
    let off = UserStore::new(&path).with_profile(profile).without_throttle();
    off.register("alice", &SecretString::from(PASSWORD)).unwrap();
    let right = SecretString::from(PASSWORD);
    let wrong = SecretString::from(WRONG);
    // Warm up (the dummy hash, file cache).
    off.verify("alice", &right).unwrap();

    let mut verify: Vec<f64> =
        (0..samples).map(|_| time(|| assert!(off.verify("alice", &wrong).is_err()))).collect();
    let verify_ms = median(&mut verify);
    println!("one verify (throttling off, wrong password), {profile}: {verify_ms:.3} ms");

    // One failure locks, until unlocked.
    let locking = ThrottlePolicy::default().lock_after(1).unwrap().lock_duration(None);
    let locked = UserStore::new(&path).with_profile(profile).with_throttle(locking).unwrap();
    for records in [1usize, 10_000, 100_000] {
        let fullest = state_with(&locked.throttle_path(), records.saturating_sub(1));
        println!("state of {records} records: the fullest shard holds {fullest}");
        assert!(matches!(locked.verify("alice", &wrong), Err(AuthError::InvalidCredentials)));
        let refuse = || {
            assert!(matches!(locked.verify("alice", &right), Err(AuthError::Throttled { .. })));
        };
        refuse();
        let mut refused: Vec<f64> = (0..samples * 25).map(|_| time(refuse)).collect();
        let refused_ms = median(&mut refused);
        println!(
            "refused attempt, locked account, state of {records} records: {refused_ms:.4} ms = {:.3} % of a verify",
            refused_ms / verify_ms * 100.0
        );
        println!(
            "BENCH throttle kind=refused records={records} median_ns={:.0} verify_ns={:.0}",
            refused_ms * 1e6,
            verify_ms * 1e6
        );
        locked.unlock("alice").unwrap();
    }
    std::fs::remove_dir_all(locked.throttle_path()).unwrap();

    // Logins with and without throttling, interleaved (a success with throttling writes the
    // state twice: the reservation, then the reset).
    let on = UserStore::new(&path).with_profile(profile);
    let (mut on_ok, mut off_ok, mut on_bad, mut off_bad) = (vec![], vec![], vec![], vec![]);
    for _ in 0..samples {
        on_ok.push(time(|| assert!(on.verify("alice", &right).is_ok())));
        off_ok.push(time(|| assert!(off.verify("alice", &right).is_ok())));
        on_bad.push(time(|| assert!(on.verify("alice", &wrong).is_err())));
        off_bad.push(time(|| assert!(off.verify("alice", &wrong).is_err())));
        // Keep the wrong-password samples under the free failures (no delay, no refusal).
        on.unlock("alice").unwrap();
    }
    let (on_ok, off_ok) = (median(&mut on_ok), median(&mut off_ok));
    let (on_bad, off_bad) = (median(&mut on_bad), median(&mut off_bad));
    println!(
        "login, right password: with throttling {on_ok:.3} ms, without {off_ok:.3} ms, ratio {:.4}",
        on_ok / off_ok
    );
    println!(
        "login, wrong password: with throttling {on_bad:.3} ms, without {off_bad:.3} ms, ratio {:.4}",
        on_bad / off_bad
    );
    for (outcome, with, without) in [("right", on_ok, off_ok), ("wrong", on_bad, off_bad)] {
        println!(
            "BENCH throttle kind=login outcome={outcome} on_ns={:.0} off_ns={:.0}",
            with * 1e6,
            without * 1e6
        );
    }
}
