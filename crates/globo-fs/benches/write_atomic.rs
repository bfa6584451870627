//! `write_atomic` (unnamed `O_TMPFILE` temporary file on Linux, then the stale sweep) side by
//! side with the previous implementation (a named `tempfile` temporary file, persisted), on the
//! same folder, interleaved. Prints medians and the ratio from one run.
//!
//! `cargo bench -p globo-fs --bench write_atomic`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

const RUNS: usize = 201;

/// What globo-fs did before: named `.globo-XXXXXX.tmp`, fsync, rename, fsync of the folder.
fn previous_write_atomic(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().unwrap();
    let mut tmp = tempfile::Builder::new()
        .prefix(".globo-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .unwrap();
    tmp.write_all(bytes).unwrap();
    tmp.as_file().sync_all().unwrap();
    tmp.persist(path).unwrap();
    std::fs::File::open(dir).unwrap().sync_all().unwrap();
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    // A folder like a project's: a few files besides the one written.
    for name in ["config.json", "secret.key", "users.json.lock", ".env", "README.md"] {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    for size in [4 * 1024, 1024 * 1024] {
        let bytes = vec![b'a'; size];
        let path = dir.path().join("config.enc");
        let (mut new, mut old) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let started = Instant::now();
            globo_fs::write_atomic(&path, &bytes).unwrap();
            new.push(started.elapsed());
            let started = Instant::now();
            previous_write_atomic(&path, &bytes);
            old.push(started.elapsed());
        }
        let (new, old) = (median(new), median(old));
        println!(
            "{:>8} bytes: write_atomic {:>9.1?}  previous (named temp) {:>9.1?}  ratio {:.2}",
            size,
            new,
            old,
            new.as_secs_f64() / old.as_secs_f64()
        );
    }
}
