//! `app secrets get` latency in local and prod mode against the Python lab's equivalent
//! (python-dotenv and boto3, `python/lab/secrets_get.py`) on the same moto server, plus warm
//! in-process gets and the cost of a cache hit. One run, medians side by side.
//!
//! `cargo bench -p globo-secrets --bench get`. The `app` binary measured is `$GLOBO_APP_BIN`,
//! else `target/release/app`, else `target/debug/app` (build it first:
//! `cargo build --release -p globo-app`); which one is printed.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use globo_emulator::{Emulator, Options};
use globo_secrets::seed::Seeder;
use globo_secrets::{
    AwsProvider, CachingProvider, Environment, LocalProvider, SecretsProvider, aws_config_loader,
};
use secrecy::{ExposeSecret, SecretString};

const NAME: &str = "PAYMENT_GATEWAY_API_KEY";
const LOCAL_VALUE: &str = "local-dev-payment-key-123456";
const PROD_VALUE: &str = "prod-payment-key-9f8e7d6c5b4a3210";
const RUNS: usize = 31;
const WARM: usize = 300;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:8.2} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:8.1} µs", d.as_secs_f64() * 1e6)
}

/// Median wall time of running `command` (a closure building it) RUNS times; checks stdout.
fn time_process(build: impl Fn() -> Command, expected: &str) -> Duration {
    let mut samples = Vec::with_capacity(RUNS);
    for i in 0..=RUNS {
        let mut command = build();
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let start = Instant::now();
        let out = command.output().unwrap();
        let elapsed = start.elapsed();
        assert!(
            out.status.success() && out.stdout == format!("{expected}\n").as_bytes(),
            "{:?}: {}",
            command,
            String::from_utf8_lossy(&out.stderr)
        );
        if i > 0 {
            samples.push(elapsed); // the first run warms the page cache
        }
    }
    median(samples)
}

fn main() {
    let root = globo_testkit::workspace_root();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), format!("APP_MODE=local\n{NAME}={LOCAL_VALUE}\n"))
        .unwrap();

    let moto = Emulator::start(Options::default()).expect("the moto emulator (scripts/python-env)");
    let endpoint = moto.endpoint_url();
    let aws_env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let aws = runtime.block_on(async {
        let config = globo_testkit::emulator_config(aws_config_loader().await, &endpoint).await;
        let aws = AwsProvider::from_sdk_config(&config).unwrap();
        Seeder::unguarded(&aws).seed(NAME, &SecretString::from(PROD_VALUE)).await.unwrap();
        aws
    });

    let (app, app_kind) = globo_testkit::app_binary();
    let python = globo_testkit::python(&["dotenv", "boto3"]).expect("the project venv");
    let script = root.join("python/lab/secrets_get.py");
    let command = |program: &Path, args: &[&str], env: &[(&str, &str)]| {
        let mut c = globo_testkit::isolated_command(program, dir.path());
        c.args(args).envs(env.iter().copied());
        c
    };
    let py = |extra: &[&str]| {
        let mut args = vec![script.to_str().unwrap(), NAME];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };

    println!("secrets get latency, median of {RUNS} runs (moto {endpoint}, app: {app_kind})");
    println!("{:<44} {:>12} {:>12} {:>8}", "", "globo (Rust)", "lab (Python)", "speed-up");

    let rust_local = time_process(|| command(&app, &["secrets", "get", NAME], &[]), LOCAL_VALUE);
    let py_local_args = py(&[]);
    let py_local_args: Vec<&str> = py_local_args.iter().map(String::as_str).collect();
    let py_local = time_process(|| command(python.exe(), &py_local_args, &[]), LOCAL_VALUE);
    row("process: `secrets get` local (.env)", rust_local, py_local, ms);

    let rust_prod = time_process(
        || command(&app, &["secrets", "get", NAME, "--mode", "prod"], &aws_env),
        PROD_VALUE,
    );
    let py_prod_args = py(&["--mode", "prod"]);
    let py_prod_args: Vec<&str> = py_prod_args.iter().map(String::as_str).collect();
    let py_prod = time_process(|| command(python.exe(), &py_prod_args, &aws_env), PROD_VALUE);
    row("process: `secrets get --mode prod` (moto)", rust_prod, py_prod, ms);

    // Warm, in process: a provider that already exists, one more get.
    let warm_rust_prod = runtime.block_on(async {
        let mut samples = Vec::with_capacity(WARM);
        for _ in 0..WARM {
            let start = Instant::now();
            let value = aws.get(NAME).await.unwrap();
            samples.push(start.elapsed());
            assert_eq!(value.expose_secret(), PROD_VALUE);
        }
        median(samples)
    });
    let warm_arg = WARM.to_string();
    let py_warm_args = py(&["--mode", "prod", "--warm", &warm_arg]);
    let py_warm_args: Vec<&str> = py_warm_args.iter().map(String::as_str).collect();
    let out = command(python.exe(), &py_warm_args, &aws_env).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let py_warm_us: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let py_warm = Duration::from_secs_f64(py_warm_us / 1e6);
    row("in process: warm GetSecretValue (moto)", warm_rust_prod, py_warm, us);

    // Building the local provider (read and parse .env) and one get, in process.
    let local_build = runtime.block_on(async {
        let env = Environment::empty();
        let path = dir.path().join(".env");
        let mut samples = Vec::with_capacity(WARM);
        for _ in 0..WARM {
            let start = Instant::now();
            let provider = LocalProvider::new(&path, &env).unwrap();
            let value = provider.get(NAME).await.unwrap();
            samples.push(start.elapsed());
            assert_eq!(value.expose_secret(), LOCAL_VALUE);
        }
        median(samples)
    });
    println!("{:<44} {}", "in process: LocalProvider::new + get", us(local_build));

    // A cache hit: batches of gets on a warm CachingProvider over the AWS provider.
    let (hit, miss) = runtime.block_on(async {
        let cache = CachingProvider::new(Arc::new(aws.clone()));
        let start = Instant::now();
        cache.get(NAME).await.unwrap();
        let miss = start.elapsed();
        const BATCH: u32 = 10_000;
        let mut samples = Vec::new();
        for _ in 0..21 {
            let start = Instant::now();
            for _ in 0..BATCH {
                let value = cache.get(NAME).await.unwrap();
                std::hint::black_box(value.expose_secret().len());
            }
            samples.push(start.elapsed() / BATCH);
        }
        (median(samples), miss)
    });
    println!(
        "{:<44} {:>8.0} ns   (first get, a miss: {}; warm backend get / hit: {:.0}x)",
        "in process: CachingProvider hit",
        hit.as_secs_f64() * 1e9,
        us(miss).trim(),
        warm_rust_prod.as_secs_f64() / hit.as_secs_f64()
    );
    drop(moto);
}

fn row(label: &str, rust: Duration, python: Duration, unit: fn(Duration) -> String) {
    println!(
        "{label:<44} {} {} {:>7.1}x",
        unit(rust),
        unit(python),
        python.as_secs_f64() / rust.as_secs_f64()
    );
}
