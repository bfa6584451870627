//! Test support for globo's own test suites (not published).
//!
//! - [`python`] finds the project venv's interpreter with the reference libraries the interop
//!   tests compare against (argon2-cffi, passlib, cryptography, ...). Outside CI a missing peer
//!   skips the test with a visible message; with `CI=true` it fails the test, because a skipped
//!   interop test would hide a missing component.
//! - [`vectors_dir`] is the folder of test vectors copied from `../shared/vectors` (each with
//!   its `SOURCE.md`).
//! - [`fernet_files_both_ways`] exchanges Fernet files of random bytes with Python
//!   `cryptography`, both ways.
//! - [`moto`] starts the local AWS emulator, with the same rule as [`python`] when it cannot;
//!   [`emulator_config`] points an AWS SDK configuration at it (feature `aws`, on by default;
//!   globo-secrets' tests without AWS turn it off); [`silent_endpoint`] is a server that never
//!   answers; [`block_on`] runs async library code from a synchronous test.
//! - [`postgres`] creates a fresh database (a [`TestDatabase`], dropped with it) on the
//!   throwaway PostgreSQL server that `scripts/postgres start` runs and `scripts/test` names in
//!   `GLOBO_TEST_POSTGRES_URL`, with the same rule as [`python`] when there is none.
//! - [`isolated_command`] and [`output_guarded`] run the project's binaries with a cleared
//!   environment and a hang guard; [`unisolated_starts_under`] finds test code that starts a
//!   program any other way.
//!
//! ```no_run
//! # async fn demo() {
//! let Some(moto) = globo_testkit::moto() else { return }; // SKIPPED locally, a panic in CI
//! let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
//! let config = globo_testkit::emulator_config(loader, &moto.endpoint_url()).await;
//! assert_eq!(config.region().map(|r| r.as_ref()), Some(globo_testkit::EMULATOR_REGION));
//! # }
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stderr, clippy::expect_used, clippy::unwrap_used)]

mod aws;
mod echo;
mod fernet;
mod postgres;
mod process;
mod scan;

pub use aws::{EMULATOR_CREDENTIAL, EMULATOR_REGION, block_on, moto, silent_endpoint};
#[cfg(feature = "aws")]
pub use aws::{emulator_config, version_stages};
pub use echo::{echoing_endpoint, error_texts, read_http_request};
pub use fernet::{fernet_files_both_ways, random_bytes};
pub use postgres::{
    POSTGRES_URL_VARIABLE, TestDatabase, postgres, quote_identifier, without_password,
};
#[cfg(unix)]
pub use process::fifo_opened_by;
pub use process::{HANG_GUARD, isolated_command, output_guarded};
pub use scan::{Probe, unisolated_starts, unisolated_starts_under};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The workspace's root folder: the checkout these tests were compiled in, fixed at build
/// time on purpose. A test binary tests the code of its own checkout, so it must also use that
/// checkout's vectors and `.venv`; it is never installed or run from elsewhere. (The emulator,
/// which shipped binaries use, finds its checkout at run time: see `globo_emulator::project_dir`.)
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root exists")
}

/// The `app` binary benchmarks measure, and how it was chosen: `$GLOBO_APP_BIN` (`scripts/bench`
/// sets it to the shipped build from `scripts/build-release`), else `target/release/app`, else
/// `target/debug/app` (not representative: build a release first).
pub fn app_binary() -> (PathBuf, &'static str) {
    if let Some(bin) = std::env::var_os("GLOBO_APP_BIN") {
        return (PathBuf::from(bin), "GLOBO_APP_BIN");
    }
    let root = workspace_root();
    let release = root.join("target/release/app");
    if release.is_file() {
        return (release, "release");
    }
    (root.join("target/debug/app"), "debug (build --release for representative figures)")
}

/// The test-vector folder: `testdata/vectors` (argon2/, fernet/), with provenance in SOURCE.md.
pub fn vectors_dir() -> PathBuf {
    workspace_root().join("testdata/vectors")
}

/// Reads and parses a JSON vector file relative to [`vectors_dir`], e.g. `"fernet/verify.json"`.
pub fn load_vectors(relative: &str) -> serde_json::Value {
    let path = vectors_dir().join(relative);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Whether we run in CI (`CI=true` or `CI=1`), where a missing peer is a failure.
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1" | "TRUE" | "True"))
}

/// Reports a missing component: panics in CI, otherwise prints a SKIPPED line and returns.
pub fn missing(what: &str) {
    missing_because(what, "run scripts/python-env (or scripts/test, which does it)");
}

/// [`missing`] with `fix`, what provides the component.
fn missing_because(what: &str, fix: &str) {
    if in_ci() {
        panic!("CI=true and {what} is missing: {fix}");
    }
    eprintln!("SKIPPED: {what} is missing; {fix}");
}

/// A Python interpreter known to import a set of modules.
#[derive(Debug, Clone)]
pub struct Python {
    exe: PathBuf,
}

/// Finds a Python interpreter that imports every module in `modules` (e.g. `["argon2",
/// "passlib"]`): `$GLOBO_PYTHON`, else `<root>/.venv/bin/python`. Returns `None` (after
/// [`missing`], which panics in CI) when there is none.
pub fn python(modules: &[&str]) -> Option<Python> {
    let exe = std::env::var_os("GLOBO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    if !exe.exists() {
        missing(&format!("the project Python venv ({})", exe.display()));
        return None;
    }
    let python = Python { exe };
    let imports = format!("import {}", modules.join(", "));
    let out = python.run(&imports, &[], b"");
    if !out.status.success() {
        missing(&format!(
            "a Python peer ({}): {}",
            modules.join(", "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return None;
    }
    Some(python)
}

/// The whole environment [`Python::run`] gives the interpreter: this process's `PATH`, `HOME`
/// and `TMPDIR` (where set), nothing else. The venv needs no variable: the interpreter finds
/// it through the `pyvenv.cfg` beside it. (Python may add `LC_CTYPE` itself, PEP 538.)
pub fn python_environment() -> Vec<(&'static str, std::ffi::OsString)> {
    ["PATH", "HOME", "TMPDIR"]
        .into_iter()
        .filter_map(|name| std::env::var_os(name).map(|value| (name, value)))
        .collect()
}

impl Python {
    /// The interpreter's path.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// Runs `code` (a Python program) with `args` as `sys.argv[1:]` and `stdin` as its input,
    /// in a cleared environment plus what Python needs ([`python_environment`]): a program the
    /// script starts (`os.execve`) sees none of the developer's settings (`APP_MODE`,
    /// `GLOBO_PASSWORD_PROFILE`, AWS, ...) unless the script passes them.
    pub fn run(&self, code: &str, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(&self.exe)
            .env_clear()
            .envs(python_environment())
            .arg("-c")
            .arg(code)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.exe.display()));
        let mut input = child.stdin.take().expect("stdin is piped");
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().expect("python runs");
        writer.join().expect("stdin writer");
        out
    }

    /// Like [`Python::run`], but panics with Python's stderr unless it exits 0; returns stdout.
    pub fn run_ok(&self, code: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let out = self.run(code, args, stdin);
        assert!(
            out.status.success(),
            "python failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

// The repository README's Rust examples (each a whole program, for users who depend on the
// crates by path) are compiled and run as doc tests here: this crate is never packaged, so it
// may include a file outside its folder (the globo facade, which ran them before, is packaged,
// and a package holds only its own folder).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
