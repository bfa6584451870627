//! Health-check latency on a tokio runtime while logins run (issue 14), in one run:
//! a multi-thread runtime with 2 workers, a JSON store with one user (default profile),
//! 4 tasks logging in in a loop, and a health-check task every 10 ms that measures how late
//! it runs (from its intended tick to running, plus one trivial await);
//! 1. the sync `UserStore::verify` called inside the tasks (what a naive service does);
//! 2. `AsyncUserStore::verify` (the blocking pool, default memory budget).
//!
//! `cargo bench -p globo-auth --features tokio --bench async_health`.
//! `GLOBO_BENCH_SECONDS` sets each variant's duration (default 5).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use globo_auth::{AsyncUserStore, Profile, UserStore};
use secrecy::SecretString;

const PASSWORD: &str = "correct horse battery staple";
const LOGIN_TASKS: usize = 4;
const HEALTH_PERIOD: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    SyncInTasks,
    Async,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::SyncInTasks => "sync UserStore::verify in tasks",
            Variant::Async => "AsyncUserStore::verify",
        }
    }
}

struct Figures {
    median: f64,
    p99: f64,
    max: f64,
    checks: usize,
    logins: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn run(variant: Variant, store: &AsyncUserStore, duration: Duration) -> Figures {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicUsize::new(0));
    let latencies = runtime.block_on(async {
        let workers: Vec<_> = (0..LOGIN_TASKS)
            .map(|_| {
                let (store, stop, logins) = (store.clone(), Arc::clone(&stop), Arc::clone(&logins));
                tokio::spawn(async move {
                    let password = SecretString::from(PASSWORD);
                    while !stop.load(Ordering::Relaxed) {
                        let verified = match variant {
                            // Blocks this worker thread for the whole Argon2 run.
                            Variant::SyncInTasks => store.store().verify("alice", &password),
                            Variant::Async => store.verify("alice", &password).await,
                        };
                        verified.unwrap();
                        logins.fetch_add(1, Ordering::Relaxed);
                        // A service yields between requests (it awaits the next one).
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        let health = tokio::spawn(async move {
            let end = Instant::now() + duration;
            let mut latencies = Vec::new();
            let mut intended = Instant::now() + HEALTH_PERIOD;
            while intended < end {
                tokio::time::sleep_until(intended.into()).await;
                tokio::task::yield_now().await;
                latencies.push(ms(intended.elapsed()));
                intended = Instant::now() + HEALTH_PERIOD;
            }
            latencies
        });
        let latencies = health.await.unwrap();
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.await.unwrap();
        }
        latencies
    });
    let mut sorted = latencies;
    sorted.sort_by(f64::total_cmp);
    let median = percentile(&sorted, 0.5);
    Figures {
        median,
        p99: percentile(&sorted, 0.99),
        max: *sorted.last().unwrap(),
        checks: sorted.len(),
        logins: logins.load(Ordering::Relaxed),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let seconds =
        std::env::var("GLOBO_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5u64);
    let duration = Duration::from_secs(seconds);
    let dir = tempfile::tempdir().unwrap();
    // Throttling off: every login here succeeds anyway; this measures the runtime.
    let store = UserStore::new(dir.path().join("users.json"))
        .with_profile(Profile::Rfc9106LowMemory)
        .without_throttle();
    store.register("alice", &SecretString::from(PASSWORD)).unwrap();
    let store = AsyncUserStore::new(store);
    // Warm up (the first verify also makes nothing new: one user, known).
    store.store().verify("alice", &SecretString::from(PASSWORD)).unwrap();

    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let parallel = if cfg!(feature = "parallel") { "on" } else { "off" };
    println!(
        "## health-check latency, tokio multi-thread runtime (2 workers), {LOGIN_TASKS} tasks logging in, \
         check every {} ms, {seconds} s per variant",
        HEALTH_PERIOD.as_millis()
    );
    println!(
        "profile {}, budget {} MiB, argon2 `parallel` feature: {parallel}; CPUs: {cpus}",
        Profile::Rfc9106LowMemory,
        store.memory_budget() / (1024 * 1024)
    );
    println!("| variant | checks | median ms | p99 ms | max ms | logins/s |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut figures = Vec::new();
    for variant in [Variant::SyncInTasks, Variant::Async] {
        let f = run(variant, &store, duration);
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.1} |",
            variant.name(),
            f.checks,
            f.median,
            f.p99,
            f.max,
            f.logins as f64 / duration.as_secs_f64()
        );
        figures.push(f);
    }
    let (sync, asynchronous) = (&figures[0], &figures[1]);
    println!(
        "sync / async: median {:.1}x, p99 {:.1}x, max {:.1}x",
        sync.median / asynchronous.median,
        sync.p99 / asynchronous.p99,
        sync.max / asynchronous.max
    );
}
