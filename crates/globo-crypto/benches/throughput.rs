//! Encrypt and decrypt throughput of globo-crypto against Python `cryptography` (the lab's
//! library, OpenSSL underneath) at 1 KiB, 1 MiB and 256 MiB, in one run, side by side.
//!
//! Run: `cargo bench -p globo-crypto --features parallel --bench throughput` (as `app` ships
//! it; without `--features parallel` every token is made on one thread). Each figure is the median of several
//! timed operations on tokens in memory (`encrypt` returns the token string, `decrypt` takes it:
//! base64 included, as both libraries' APIs do). Besides the table, one machine-readable line
//! per figure: `BENCH fernet op=<encrypt|decrypt> size=<bytes> impl=<globo|python> median_ns=<n>`
//! (collected by `scripts/bench`). `GLOBO_BENCH_BIG_MIB` changes the large size (default 256).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use globo_crypto::{Key, decrypt, encrypt};
use secrecy::ExposeSecret as _;

const PYTHON: &str = r#"
import sys, time, json, os, statistics
from cryptography.fernet import Fernet
f = Fernet(sys.argv[1].encode())
out = {}
for arg in sys.argv[2:]:
    size, reps = map(int, arg.split(":"))
    data = os.urandom(size)
    enc, dec = [], []
    for _ in range(reps):
        t = time.perf_counter_ns(); token = f.encrypt(data); enc.append(time.perf_counter_ns() - t)
        t = time.perf_counter_ns(); plain = f.decrypt(token); dec.append(time.perf_counter_ns() - t)
        assert plain == data
        del token, plain
    out[str(size)] = [statistics.median(enc), statistics.median(dec)]
print(json.dumps(out))
"#;

fn median(mut v: Vec<u128>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64
}

fn mib_per_s(size: usize, nanos: f64) -> f64 {
    size as f64 / (1024.0 * 1024.0) / (nanos / 1e9)
}

fn fmt_time(nanos: f64) -> String {
    if nanos < 1e6 { format!("{:.1} us", nanos / 1e3) } else { format!("{:.2} ms", nanos / 1e6) }
}

fn label(size: usize) -> String {
    if size >= 1 << 20 { format!("{} MiB", size >> 20) } else { format!("{} KiB", size >> 10) }
}

/// The primitives alone, on warm buffers (16 MiB, already touched), and the cost of the first
/// touch of fresh memory: the figures that bound what a Fernet token can cost.
fn components() {
    use aes::cipher::{BlockEncryptMut as _, KeyIvInit as _, block_padding::NoPadding};
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    const N: usize = 16 << 20;
    let engine = base64::engine::general_purpose::URL_SAFE;
    let mut data = vec![0u8; N];
    getrandom::fill(&mut data).unwrap();
    let mut encoded = vec![0u8; N / 3 * 4 + 4];
    let mut decoded = vec![0u8; N + 3];
    let n_enc = engine.encode_slice(&data, &mut encoded).unwrap();
    let time = |f: &mut dyn FnMut()| {
        let mut v = Vec::new();
        for _ in 0..9 {
            let t = Instant::now();
            f();
            v.push(t.elapsed().as_nanos());
        }
        median(v)
    };
    let figures: [(&str, f64); 6] = [
        (
            "aes128cbc-encrypt",
            time(&mut || {
                let c = cbc::Encryptor::<aes::Aes128>::new(&[1u8; 16].into(), &[2u8; 16].into());
                black_box(c.encrypt_padded_mut::<NoPadding>(&mut data, N).unwrap());
            }),
        ),
        (
            "hmac-sha256",
            time(&mut || {
                let m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&[3u8; 16]).unwrap();
                black_box(m.chain_update(&data).finalize());
            }),
        ),
        (
            // What globo encodes with (SIMD); the scalar `base64` crate for comparison.
            "base64-encode",
            time(&mut || {
                let out = base64_simd::Out::from_slice(&mut encoded[..n_enc]);
                black_box(base64_simd::URL_SAFE.encode(&data, out));
            }),
        ),
        (
            "base64-encode-scalar",
            time(&mut || {
                black_box(engine.encode_slice(&data, &mut encoded).unwrap());
            }),
        ),
        (
            // The check that turns the encoded bytes into a `String` (per byte of input).
            "ascii-check",
            time(&mut || {
                black_box(std::str::from_utf8(&encoded[..n_enc]).unwrap());
            }),
        ),
        (
            "base64-decode",
            time(&mut || {
                black_box(engine.decode_slice(&encoded[..n_enc], &mut decoded).unwrap());
            }),
        ),
    ];
    println!(
        "primitives on warm 16 MiB buffers (RustCrypto aes/cbc/hmac/sha2, base64-simd 0.8, \
         base64 0.22):"
    );
    for (name, ns) in figures {
        println!("  {name:<18} {:>8.0} MiB/s (of input)", mib_per_s(N, ns));
        println!("BENCH component name={name} size={N} median_ns={ns:.0}");
    }
    // Fresh memory: what a new 256 MiB result costs before a single byte is computed.
    let fresh = 256usize << 20;
    let ns = time(&mut || {
        let mut v = vec![0u8; fresh];
        for i in (0..fresh).step_by(4096) {
            v[i] = 1;
        }
        black_box(&v);
    });
    println!("  first touch of a fresh 256 MiB buffer (page faults): {}", fmt_time(ns));
    println!("BENCH component name=first-touch size={fresh} median_ns={ns:.0}");
}

fn main() {
    components();
    let big_mib: usize =
        std::env::var("GLOBO_BENCH_BIG_MIB").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    let sizes: [(usize, usize); 3] = [(1 << 10, 2001), (1 << 20, 41), (big_mib << 20, 5)];
    let key = Key::generate().unwrap();
    let mut ours = Vec::new();
    for (size, reps) in sizes {
        let mut data = vec![0u8; size];
        getrandom::fill(&mut data).unwrap();
        let (mut enc, mut dec) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let t = Instant::now();
            let token = black_box(encrypt(&key, black_box(&data)).unwrap());
            enc.push(t.elapsed().as_nanos());
            let t = Instant::now();
            let plain = black_box(decrypt(&key, black_box(&token)).unwrap());
            dec.push(t.elapsed().as_nanos());
            assert!(plain.as_slice() == data.as_slice());
        }
        ours.push((median(enc), median(dec)));
    }

    let python = globo_testkit::python(&["cryptography"]).map(|py| {
        // Python at 256 MiB takes seconds per operation: 3 repetitions there.
        let args: Vec<String> = sizes
            .iter()
            .map(|(s, r)| format!("{s}:{}", if *s > 1 << 20 { 3 } else { *r }))
            .collect();
        let key_text = key.to_base64();
        let mut argv: Vec<&str> = vec![key_text.expose_secret()];
        argv.extend(args.iter().map(String::as_str));
        let out = py.run_ok(PYTHON, &argv, b"");
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let version = py.run_ok("import cryptography; print(cryptography.__version__)", &[], b"");
        let figures: Vec<(f64, f64)> = sizes
            .iter()
            .map(|(s, _)| {
                let v = &json[s.to_string()];
                (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
            })
            .collect();
        (String::from_utf8_lossy(&version).trim().to_string(), figures)
    });

    println!("Fernet throughput, median per operation (token string in/out, base64 included)");
    let threads = if cfg!(feature = "parallel") { "two from 1 MiB (parallel)" } else { "one" };
    println!("threads per token: {threads}");
    if let Some((version, _)) = &python {
        println!("peer: Python cryptography {version}");
        println!("BENCH version name=python-cryptography value={version}");
    }
    println!(
        "{:<8} {:<8} {:>11} {:>11} {:>11} {:>11} {:>14}",
        "size", "op", "globo", "globo MiB/s", "python", "py MiB/s", "globo/python"
    );
    for (i, (size, _)) in sizes.iter().enumerate() {
        for (j, op) in ["encrypt", "decrypt"].iter().enumerate() {
            let g = if j == 0 { ours[i].0 } else { ours[i].1 };
            println!("BENCH fernet op={op} size={size} impl=globo median_ns={g:.0}");
            let (p_time, p_rate, ratio) = match &python {
                Some((_, figures)) => {
                    let p = if j == 0 { figures[i].0 } else { figures[i].1 };
                    println!("BENCH fernet op={op} size={size} impl=python median_ns={p:.0}");
                    (fmt_time(p), format!("{:.1}", mib_per_s(*size, p)), format!("{:.2}x", p / g))
                }
                None => ("n/a".into(), "n/a".into(), "n/a".into()),
            };
            println!(
                "{:<8} {:<8} {:>11} {:>11.1} {:>11} {:>11} {:>14}",
                label(*size),
                op,
                fmt_time(g),
                mib_per_s(*size, g),
                p_time,
                p_rate,
                ratio
            );
        }
    }
    println!("globo/python > 1x means globo is faster (python time / globo time).");
}
