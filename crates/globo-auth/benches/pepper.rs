//! The pepper's cost (issue 13), globo against the documented Python recipe, in one run with
//! interleaved samples, on the same record:
//!
//! 1. a login (`UserStore::verify`, throttling off) of a peppered record and of the same
//!    record unpeppered (one users file peppered from the other by `pepper_all`: same salt,
//!    same Argon2 tag), against the Python recipe of docs/passwords.md, "Pepper"
//!    (`verify(record, password, peppers)`: unpepper, then argon2-cffi) on the same two
//!    records, timed in one long-lived Python process;
//! 2. the pepper's own work alone, on each side: globo's HMAC-SHA512 keystream over the
//!    record's head and the XOR of the tag (as src/pepper.rs computes it), and the recipe's
//!    `unpepper()`; set against the unpeppered verify of the same side (target: < 1 %).
//!
//! `cargo bench -p globo-auth --bench pepper --features parallel`. `GLOBO_BENCH_SAMPLES` sets
//! the samples per login figure (default 41); the pepper's work alone takes 1,000 times as
//! many.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use globo_auth::{Peppers, Profile, UserStore};
use hmac::{Hmac, KeyInit as _, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha512;

const PASSWORD: &str = "correct horse battery staple";

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

/// The Python recipe of docs/passwords.md, "Pepper" (the first ```python block after the
/// heading), as tests/interop.rs runs it.
fn documented_pepper_recipe() -> String {
    let docs =
        std::fs::read_to_string(globo_testkit::workspace_root().join("docs/passwords.md")).unwrap();
    let section = &docs[docs.find("\n## Pepper\n").expect("a Pepper section")..];
    let start = section.find("```python\n").expect("a python block") + "```python\n".len();
    let end = start + section[start..].find("```").unwrap();
    section[start..end].to_owned()
}

/// After the recipe: argv = [peppered record, unpeppered record]; stdin: the password, then
/// PASSWORD_PEPPER (kept off the command line), one line each. Then one command per line, one answer each, timed with
/// perf_counter_ns around the call alone: `peppered` / `plain` (the recipe's `verify` of
/// either record), `unpepper N` (N calls of `unpepper` on the peppered record; the median
/// of N single calls).
const PY_DRIVER: &str = r#"
import sys, time, statistics
peppered, plain = sys.argv[1], sys.argv[2]
password = sys.stdin.readline().rstrip("\n")
peppers = load_peppers(sys.stdin.readline())
assert unpepper(peppered, peppers) == plain, "the recipe does not unpepper to the same record"
records = {"peppered": peppered, "plain": plain}
print("ready", flush=True)
for line in sys.stdin:
    command = line.split()
    if command[0] == "unpepper":
        times = []
        for _ in range(int(command[1])):
            start = time.perf_counter_ns()
            unpepper(peppered, peppers)
            times.append(time.perf_counter_ns() - start)
        print(statistics.median(times), flush=True)
        continue
    record = records[command[0]]
    start = time.perf_counter_ns()
    ok = verify(record, password, peppers)
    elapsed = time.perf_counter_ns() - start
    assert ok is True, ok
    print(elapsed, flush=True)
"#;

/// The record's one user's hash.
fn record_of(path: &std::path::Path) -> String {
    let users: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    users["alice"].as_str().unwrap().to_owned()
}

/// globo's pepper work on a verify, alone: the keystream
/// `HMAC-SHA512(key, "globo-pepper-v1\0" || head)` XORed into the tag (src/pepper.rs).
fn unmask(key: &[u8], head: &str, tag: &mut [u8]) {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).unwrap();
    mac.update(b"globo-pepper-v1\0");
    mac.update(head.as_bytes());
    let stream = mac.finalize().into_bytes();
    for (byte, key_byte) in tag.iter_mut().zip(stream.iter()) {
        *byte ^= key_byte;
    }
}

fn main() {
    let samples: usize =
        std::env::var("GLOBO_BENCH_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(41);
    let Some(python) = globo_testkit::python(&["argon2"]) else {
        println!("argon2-cffi not available: comparison skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::default();
    let peppers = Peppers::generate().unwrap();
    let pepper_text = peppers.to_secret();
    let plain_path = dir.path().join("plain.json");
    let peppered_path = dir.path().join("peppered.json");
    let plain = UserStore::new(&plain_path).with_profile(profile).without_throttle();
    let right = SecretString::from(PASSWORD);
    plain.register("alice", &right).unwrap();
    std::fs::copy(&plain_path, &peppered_path).unwrap();
    let peppered = UserStore::new(&peppered_path)
        .with_profile(profile)
        .without_throttle()
        .with_peppers(peppers.clone());
    peppered.pepper_all().unwrap();
    let (plain_record, peppered_record) = (record_of(&plain_path), record_of(&peppered_path));
    assert!(peppered_record.contains(",keyid="), "{peppered_record}");

    let program = format!("{}\n{PY_DRIVER}", documented_pepper_recipe());
    let mut child = Command::new(python.exe())
        .env_clear()
        .envs(globo_testkit::python_environment())
        .arg("-c")
        .arg(&program)
        .args([&peppered_record, &plain_record])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    {
        writeln!(stdin, "{PASSWORD}\n{}", pepper_text.expose_secret()).unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "Python: {line}");
    }
    let mut ask = |command: &str| -> f64 {
        writeln!(stdin, "{command}").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the Python process ended (its error is above)");
        line.trim().parse().unwrap()
    };

    // The logins, both records, both sides, in rotating order.
    let globo_verify = |store: &UserStore| {
        // The record stays as it is: no rehash, no re-peppering.
        assert!(!store.verify("alice", &right).unwrap().rehashed());
    };
    globo_verify(&peppered);
    globo_verify(&plain);
    ask("peppered");
    ask("plain");
    let (mut g_pep, mut g_plain, mut p_pep, mut p_plain) = (vec![], vec![], vec![], vec![]);
    for i in 0..samples {
        for k in 0..4 {
            match (i + k) % 4 {
                0 => g_pep.push(time_ns(|| globo_verify(&peppered))),
                1 => p_pep.push(ask("peppered")),
                2 => g_plain.push(time_ns(|| globo_verify(&plain))),
                _ => p_plain.push(ask("plain")),
            }
        }
    }
    // Each round's peppered / unpeppered, per side: the load moves both alike within a round.
    let mut g_paired: Vec<f64> = g_pep.iter().zip(&g_plain).map(|(a, b)| a / b).collect();
    let mut p_paired: Vec<f64> = p_pep.iter().zip(&p_plain).map(|(a, b)| a / b).collect();
    let (g_paired, p_paired) = (median(&mut g_paired), median(&mut p_paired));
    let (g_pep, g_plain) = (median(&mut g_pep), median(&mut g_plain));
    let (p_pep, p_plain) = (median(&mut p_pep), median(&mut p_plain));

    // The pepper's work alone, on the same record, each side (globo's unmasks the tag it
    // decodes from the record, as a verify does).
    let (head, tag) = peppered_record.rsplit_once('$').unwrap();
    let head_without_keyid = plain_record.rsplit_once('$').unwrap().0;
    let key_b64 = pepper_text.expose_secret().split(',').next().unwrap().trim().to_owned();
    let key = base64::engine::general_purpose::STANDARD.decode(&key_b64).unwrap();
    let masked = B64.decode(tag).unwrap();
    let mut unmasked = masked.clone();
    unmask(&key, head_without_keyid, &mut unmasked);
    assert_eq!(B64.encode(&unmasked), plain_record.rsplit_once('$').unwrap().1, "{head}");
    let rounds = samples * 1000;
    let mut g_step: Vec<f64> = (0..rounds)
        .map(|_| {
            let mut tag = masked.clone();
            time_ns(|| unmask(&key, std::hint::black_box(head_without_keyid), &mut tag))
        })
        .collect();
    let g_step = median(&mut g_step);
    let p_step = ask(&format!("unpepper {rounds}"));
    drop(stdin);
    let _ = child.wait();

    let parallel = if cfg!(feature = "parallel") { "on" } else { "off" };
    println!(
        "## peppered verify, globo UserStore::verify vs the documented Python recipe (argon2-cffi), \
         {samples} interleaved samples each; {profile}; globo `parallel` {parallel}"
    );
    println!("| record | globo | Python recipe | globo / Python |");
    println!("| --- | --- | --- | --- |");
    println!("| peppered | {:.3} ms | {:.3} ms | {:.4} |", g_pep / 1e6, p_pep / 1e6, g_pep / p_pep);
    println!(
        "| unpeppered | {:.3} ms | {:.3} ms | {:.4} |",
        g_plain / 1e6,
        p_plain / 1e6,
        g_plain / p_plain
    );
    println!(
        "| peppered / unpeppered (median of paired ratios) | {:.4} ({g_paired:.4}) | {:.4} ({p_paired:.4}) | |",
        g_pep / g_plain,
        p_pep / p_plain
    );
    println!(
        "| the pepper's work alone ({rounds} samples) | {:.2} µs = {:.4} % of a verify | {:.2} µs = {:.4} % of a verify | {:.4} |",
        g_step / 1e3,
        g_step / g_plain * 100.0,
        p_step / 1e3,
        p_step / p_plain * 100.0,
        g_step / p_step
    );
    println!(
        "BENCH pepper kind=verify globo_peppered_ns={g_pep:.0} globo_plain_ns={g_plain:.0} python_peppered_ns={p_pep:.0} python_plain_ns={p_plain:.0} globo_paired={g_paired:.4} python_paired={p_paired:.4}"
    );
    println!("BENCH pepper kind=step globo_ns={g_step:.1} python_ns={p_step:.1}");
}
