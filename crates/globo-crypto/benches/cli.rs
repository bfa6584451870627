//! What users feel, whole processes, in one run against the Python lab's equivalents
//! (`python/lab/*.py`, run with the project venv):
//!
//! 1. `app config show` (load `secret.key`, decrypt `config.enc`, print the JSON) against
//!    `config_show.py`, and `app secrets get` in local mode (`.env`) against `secrets_get.py`:
//!    median wall time of 61 runs each, interleaved (with `$GLOBO_APP_BIN_DYNAMIC`, the
//!    dynamically linked build too, in the same rounds);
//! 2. a large file (256 MiB, `GLOBO_BENCH_BIG_MIB`): `app config encrypt` file to file and
//!    `app config show --raw` (decrypt to memory, written to `/dev/null`) against
//!    `config_encrypt.py` / `config_show.py --raw`: wall time and peak memory (maximum resident
//!    set size of the process, from GNU `time`).
//!
//! `cargo bench -p globo-crypto --bench cli`. The `app` measured is `$GLOBO_APP_BIN` (`scripts/bench`
//! sets it to the shipped build, `scripts/build-release`), else
//! `target/release/app` (build it first: `cargo build --release -p globo-app`), else
//! `target/debug/app`; which one is printed. Machine-readable lines start with `BENCH`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use globo_crypto::{Key, KeyFile, encrypt_file};

const RUNS: usize = 61;
const BIG_RUNS: usize = 3;
const SECRET_NAME: &str = "PAYMENT_GATEWAY_API_KEY";
const SECRET_VALUE: &str = "local-dev-payment-key-123456";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A command run in `dir` with a clean environment (no `APP_MODE` or AWS settings leak in).
fn command(dir: &Path, program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .stdin(Stdio::null());
    c
}

fn run_checked(mut c: Command) -> (Duration, Output) {
    let start = Instant::now();
    let out = c.output().unwrap();
    let elapsed = start.elapsed();
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    (elapsed, out)
}

/// Wall time and peak resident memory (KiB) of one process, through GNU `time`.
fn measured(dir: &Path, program: &Path, args: &[&str]) -> (f64, u64) {
    let report = dir.join("time.out");
    let mut full: Vec<&str> = vec!["-f", "%e %M", "-o", report.to_str().unwrap()];
    full.push(program.to_str().unwrap());
    full.extend_from_slice(args);
    let mut c = command(dir, Path::new("/usr/bin/time"), &full);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let out = c.output().unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&report).unwrap();
    let rss: u64 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    (wall, rss)
}

fn main() {
    let root = globo_testkit::workspace_root();
    let (app, app_kind) = globo_testkit::app_binary();
    let python = globo_testkit::python(&["cryptography", "dotenv", "boto3"])
        .expect("the project venv (scripts/python-env)");
    let lab = root.join("python/lab");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let key = Key::generate().unwrap();
    KeyFile::create_new(&d.join("secret.key"), &key).unwrap();
    std::fs::copy(root.join("config.example.json"), d.join("config.json")).unwrap();
    encrypt_file(&key, &d.join("config.json"), &d.join("config.enc")).unwrap();
    std::fs::remove_file(d.join("config.json")).unwrap();
    std::fs::write(d.join(".env"), format!("APP_MODE=local\n{SECRET_NAME}={SECRET_VALUE}\n"))
        .unwrap();

    println!("# whole processes, median of {RUNS} interleaved runs (app: {app_kind})");
    println!("{:<34} {:>12} {:>12} {:>9}", "", "globo", "python lab", "speed-up");
    let show_py = lab.join("config_show.py");
    let secrets_py = lab.join("secrets_get.py");
    let cases: [(&str, Vec<&str>, Vec<&str>); 2] = [
        ("config-show", vec!["config", "show"], vec![show_py.to_str().unwrap()]),
        (
            "secrets-get-local",
            vec!["secrets", "get", SECRET_NAME],
            vec![secrets_py.to_str().unwrap(), SECRET_NAME],
        ),
    ];
    // The floor: spawning a process that does nothing, and the Python interpreter doing nothing.
    let floor = |program: &Path, args: &[&str]| {
        let mut v = Vec::new();
        for i in 0..=RUNS {
            let (t, _) = run_checked(command(d, program, args));
            if i > 0 {
                v.push(t.as_secs_f64() * 1e9);
            }
        }
        median(v)
    };
    let true_ns = floor(Path::new("/bin/true"), &[]);
    let py_ns = floor(python.exe(), &["-c", "pass"]);
    println!(
        "{:<34} {:>9.2} ms {:>9.2} ms",
        "floor: /bin/true | python -c pass",
        true_ns / 1e6,
        py_ns / 1e6
    );
    println!("BENCH process cmd=floor impl=true median_ns={true_ns:.0}");
    println!("BENCH process cmd=floor impl=python median_ns={py_ns:.0}");
    // The same commands from the dynamically linked build, when given, to show what linking
    // static-pie (scripts/build-release) changes.
    let dynamic = std::env::var_os("GLOBO_APP_BIN_DYNAMIC").map(PathBuf::from);
    for (name, app_args, py_args) in &cases {
        let (mut ours, mut theirs, mut dynamic_runs) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..=RUNS {
            let (t_app, out_app) = run_checked(command(d, &app, app_args));
            let (t_py, out_py) = run_checked(command(d, python.exe(), py_args));
            // The same output: globo prints what the lab prints.
            assert_eq!(out_app.stdout, out_py.stdout, "{name}");
            let t_dyn = dynamic.as_ref().map(|bin| run_checked(command(d, bin, app_args)));
            if i > 0 {
                // The first round warms the page cache.
                ours.push(t_app.as_secs_f64() * 1e9);
                theirs.push(t_py.as_secs_f64() * 1e9);
                if let Some((t, out)) = t_dyn {
                    assert_eq!(out.stdout, out_py.stdout, "{name} (dynamic build)");
                    dynamic_runs.push(t.as_secs_f64() * 1e9);
                }
            }
        }
        let (g, p) = (median(ours), median(theirs));
        println!("{name:<34} {:>9.2} ms {:>9.2} ms {:>8.1}x", g / 1e6, p / 1e6, p / g);
        println!("BENCH process cmd={name} impl=globo median_ns={g:.0}");
        println!("BENCH process cmd={name} impl=python median_ns={p:.0}");
        if !dynamic_runs.is_empty() {
            let g = median(dynamic_runs);
            println!(
                "{:<34} {:>9.2} ms {:>9.2} ms {:>8.1}x",
                "  (dynamic build)",
                g / 1e6,
                p / 1e6,
                p / g
            );
            println!("BENCH process cmd={name} impl=globo-dynamic median_ns={g:.0}");
        }
    }

    let big_mib: u64 =
        std::env::var("GLOBO_BENCH_BIG_MIB").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    let size = big_mib << 20;
    let mut data = vec![0u8; usize::try_from(size).unwrap()];
    getrandom::fill(&mut data).unwrap();
    std::fs::write(d.join("big.bin"), &data).unwrap();
    drop(data);
    let (_, baseline) = measured(d, &app, &["config", "show"]);
    println!();
    println!(
        "# {big_mib} MiB file, median of {BIG_RUNS} runs: wall time and peak memory (max RSS) \
         of the whole process; baseline `app config show` of the small config: {} KiB",
        baseline
    );
    println!("{:<44} {:>9} {:>11} {:>12}", "", "wall s", "max RSS MiB", "RSS / file");
    println!("BENCH bigfile op=baseline impl=globo size=0 wall_ns=0 maxrss_kib={baseline}");
    let encrypt_py = lab.join("config_encrypt.py");
    let cases: [(&str, &str, &Path, Vec<&str>); 4] = [
        ("encrypt", "globo", &app, vec!["config", "encrypt", "big.bin", "--out", "big.enc"]),
        (
            "encrypt",
            "python",
            python.exe(),
            vec![encrypt_py.to_str().unwrap(), "big.bin", "--out", "big.py.enc"],
        ),
        ("decrypt", "globo", &app, vec!["config", "show", "--raw", "--in", "big.enc"]),
        (
            "decrypt",
            "python",
            python.exe(),
            vec![show_py.to_str().unwrap(), "--raw", "--in", "big.py.enc"],
        ),
    ];
    for (op, who, program, args) in &cases {
        let mut walls = Vec::new();
        let mut peak = Vec::new();
        for _ in 0..BIG_RUNS {
            let (wall, rss) = measured(d, program, args);
            walls.push(wall);
            peak.push(rss as f64);
        }
        let (wall, rss) = (median(walls), median(peak));
        let label = match (*op, *who) {
            ("encrypt", "globo") => "`app config encrypt` file to file",
            ("encrypt", _) => "lab encrypt_file (config_encrypt.py)",
            (_, "globo") => "`app config show --raw` (decrypt to memory)",
            _ => "lab decrypt_to_memory (config_show.py --raw)",
        };
        println!(
            "{label:<44} {wall:>9.2} {:>11.1} {:>11.2}x",
            rss / 1024.0,
            rss * 1024.0 / size as f64
        );
        println!(
            "BENCH bigfile op={op} impl={who} size={size} wall_ns={:.0} maxrss_kib={rss:.0}",
            wall * 1e9
        );
    }
    // The two implementations read each other's big files.
    let (_, out) = run_checked({
        let mut c = command(d, &app, &["config", "show", "--raw", "--in", "big.py.enc"]);
        c.stdout(Stdio::piped());
        c
    });
    assert_eq!(out.stdout.len() as u64, size);
}
