//! Crash safety: `app register`, `app config encrypt` and `app config rotate-key` are killed
//! with SIGKILL (`Child::kill`) after a random delay, many times, and every file must then be
//! the complete old or the complete new version: no truncation, no lost user, always
//! decryptable with the key files on disk (including `secret.key.next` mid-rotation).
//!
//! The delays come from a small PRNG seeded by the clock; the seed is printed, and
//! `GLOBO_CRASH_SEED=<n>` replays a run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use globo::auth::{Profile, UserStore};
use globo::crypto::{self, Key, LoadedKeys};
use secrecy::SecretString;

const APP: &str = env!("CARGO_BIN_EXE_app");
const TRIALS: usize = 40;

/// xorshift64*: enough to spread kill instants; not for anything secret.
struct Rng(u64);

impl Rng {
    fn from_env_or_clock(label: &str) -> Self {
        let seed = std::env::var("GLOBO_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{label}: GLOBO_CRASH_SEED={seed}");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A delay in `0..max_us` microseconds.
    fn delay(&mut self, max_us: u64) -> Duration {
        Duration::from_micros(self.next() % max_us)
    }
}

fn spawn(dir: &Path, args: &[&str], stdin: &str) -> Child {
    let mut child = globo_testkit::isolated_command(APP, dir)
        .args(args)
        .env("GLOBO_PASSWORD_PROFILE", "test-only-insecure")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child
}

/// Runs `app` and kills it with SIGKILL after `delay` unless it finished first. Returns
/// whether it was killed before completing.
fn run_and_kill(dir: &Path, args: &[&str], stdin: &str, delay: Duration) -> bool {
    let mut child = spawn(dir, args, stdin);
    let started = Instant::now();
    while started.elapsed() < delay {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "app {args:?} failed without being killed");
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    child.kill().unwrap(); // SIGKILL on unix
    let status = child.wait().unwrap();
    !status.success()
}

/// How long a command takes when left alone, to pick kill delays that cover all of it.
fn duration_of(dir: &Path, args: &[&str], stdin: &str) -> Duration {
    let started = Instant::now();
    let out = spawn(dir, args, stdin).wait_with_output().unwrap();
    assert!(out.status.success(), "app {args:?}");
    started.elapsed()
}

fn users(path: &Path) -> serde_json::Map<String, serde_json::Value> {
    let bytes = std::fs::read(path).unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("users.json is not complete JSON after a kill: {e}"))
}

/// Temporary files a killed writer leaves behind: private, never the data file itself.
fn leftover_temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".globo-"))
        .collect()
}

fn assert_private(paths: &[PathBuf]) {
    use std::os::unix::fs::PermissionsExt as _;
    for path in paths {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is not private", path.display());
    }
}

#[test]
fn register_killed_at_random_moments_never_loses_a_user() {
    let mut rng = Rng::from_env_or_clock("register");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("users.json");
    let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
    // Enough users that the file takes a moment to write.
    for i in 0..20 {
        store
            .register(&format!("seed{i}"), &SecretString::from(format!("password seed {i}")))
            .unwrap();
    }
    let budget =
        duration_of(d, &["register", "probe", "--password-stdin"], "password for timing\n");
    let max_us = (budget.as_micros() as u64).max(1000);

    let mut expected: Vec<String> = users(&path).keys().cloned().collect();
    let (mut killed, mut completed) = (0, 0);
    for trial in 0..TRIALS {
        let name = format!("user{trial}");
        let password = format!("password number {trial}");
        let before = std::fs::read(&path).unwrap();
        let was_killed = run_and_kill(
            d,
            &["register", &name, "--password-stdin"],
            &format!("{password}\n"),
            rng.delay(max_us),
        );
        let after = users(&path);
        for old in &expected {
            assert!(after.contains_key(old), "trial {trial}: lost user '{old}'");
        }
        if after.contains_key(&name) {
            completed += 1;
            expected.push(name.clone());
            // The new entry is complete: the password verifies.
            store.verify(&name, &SecretString::from(password)).unwrap();
        } else {
            assert!(was_killed, "trial {trial}: not killed, yet '{name}' is missing");
            assert_eq!(std::fs::read(&path).unwrap(), before, "trial {trial}: file changed");
        }
        killed += usize::from(was_killed);
        assert_eq!(after.len(), expected.len(), "trial {trial}: unexpected entries");
    }
    assert_private(&leftover_temp_files(d));
    eprintln!("register: {TRIALS} trials, {killed} killed, {completed} registered");
    // The kills must have landed both before and after the write, or the test proved little.
    assert!(killed > 0, "no trial was killed: the delays are too long");
}

#[test]
fn config_encrypt_killed_at_random_moments_leaves_the_old_or_new_ciphertext() {
    let mut rng = Rng::from_env_or_clock("encrypt");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = Key::generate().unwrap();
    crypto::KeyFile::create_new(&d.join("secret.key"), &key).unwrap();
    // Big enough (512 KiB) that encrypting and writing take a measurable time.
    let version = |n: usize| -> Vec<u8> {
        let filler = "x".repeat(512 * 1024);
        format!("{{\"version\": {n}, \"filler\": \"{filler}\"}}").into_bytes()
    };
    std::fs::write(d.join("config.json"), version(0)).unwrap();
    let args = ["config", "encrypt", "config.json", "--out", "config.enc"];
    let budget = duration_of(d, &args, "");
    let max_us = (budget.as_micros() as u64).max(1000);

    let mut current = 0;
    let (mut killed, mut replaced) = (0, 0);
    for trial in 1..=TRIALS {
        std::fs::write(d.join("config.json"), version(trial)).unwrap();
        let was_killed = run_and_kill(d, &args, "", rng.delay(max_us));
        let token = std::fs::read_to_string(d.join("config.enc")).unwrap();
        let plaintext = crypto::decrypt(&key, &token)
            .unwrap_or_else(|_| panic!("trial {trial}: config.enc does not decrypt"));
        if plaintext.as_slice() == version(trial).as_slice() {
            replaced += 1;
            current = trial;
        } else {
            assert!(was_killed, "trial {trial}: completed but config.enc is old");
            assert_eq!(plaintext.as_slice(), version(current).as_slice(), "trial {trial}");
        }
        killed += usize::from(was_killed);
    }
    assert_private(&leftover_temp_files(d));
    eprintln!("encrypt: {TRIALS} trials, {killed} killed, {replaced} replaced");
    assert!(killed > 0, "no trial was killed: the delays are too long");
}

#[test]
fn rotate_key_killed_at_random_moments_always_decrypts_with_the_keys_on_disk() {
    let mut rng = Rng::from_env_or_clock("rotate");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = Key::generate().unwrap();
    crypto::KeyFile::create_new(&d.join("secret.key"), &key).unwrap();
    let files = ["config.enc", "a.enc", "b.enc"];
    let plaintext =
        |name: &str| format!("{{\"file\": \"{name}\", \"pad\": \"{}\"}}", "p".repeat(4096));
    for name in files {
        std::fs::write(d.join(name), crypto::encrypt(&key, plaintext(name).as_bytes()).unwrap())
            .unwrap();
    }
    let mut args = vec!["config", "rotate-key"];
    args.extend(files);
    let budget = duration_of(d, &args, "");
    let max_us = (budget.as_micros() as u64).max(1000);

    let check = |trial: usize| {
        let keys = LoadedKeys::load(&d.join("secret.key"))
            .unwrap_or_else(|e| panic!("trial {trial}: key files unusable: {e}"));
        for name in files {
            let token = std::fs::read_to_string(d.join(name)).unwrap();
            let got = crypto::decrypt(keys.keyring(), &token)
                .unwrap_or_else(|_| panic!("trial {trial}: {name} does not decrypt"));
            assert_eq!(got.as_slice(), plaintext(name).as_bytes(), "trial {trial}: {name}");
        }
        keys.rotation_in_progress()
    };
    let (mut killed, mut interrupted) = (0, 0);
    for trial in 0..TRIALS {
        let was_killed = run_and_kill(d, &args, "", rng.delay(max_us));
        killed += usize::from(was_killed);
        if check(trial) {
            interrupted += 1;
        }
    }
    // A last run completes any interrupted rotation: one key, every file readable.
    let out = spawn(d, &args, "").wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(!check(TRIALS), "the rotation did not complete");
    assert!(!crypto::next_key_path(&d.join("secret.key")).exists());
    // Every retired key backup is a whole key (a kill never leaves half a key file).
    for entry in std::fs::read_dir(d).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("secret.key.retired-") {
            Key::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    assert_private(&leftover_temp_files(d));
    eprintln!("rotate-key: {TRIALS} trials, {killed} killed, {interrupted} left a .next key");
    assert!(killed > 0, "no trial was killed: the delays are too long");
}
