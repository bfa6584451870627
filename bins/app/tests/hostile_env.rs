//! Hostile environments: loose permissions, symbolic links, a read-only folder, a full disk,
//! non-UTF-8 paths, an endpoint that accepts connections and never answers. Each gets a clear
//! error or a documented safe behaviour, and nothing is lost.
//!
//! The read-only and full-disk cases need a filesystem of their own: as root (CI) a small
//! tmpfs is mounted and unmounted by a drop guard. Root ignores permission bits, so `chmod`
//! cannot make a folder read-only for it; a read-only remount can. Without root the read-only
//! case uses `chmod 555` (which binds a normal user) and the full-disk case is skipped, loudly,
//! and with `CI=true` it fails instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use globo::auth::{Profile, UserStore};
use globo::crypto::{self, Key, KeyFile, LoadedKeys};
use secrecy::SecretString;

const APP: &str = env!("CARGO_BIN_EXE_app");

fn app_env(dir: &Path, args: &[&OsStr], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut command = globo_testkit::isolated_command(APP, dir);
    command
        .args(args)
        .env("GLOBO_PASSWORD_PROFILE", "test-only-insecure")
        .envs(env.iter().copied());
    // With a hang guard, not a timing assertion: every command here must end on its own.
    globo_testkit::output_guarded(&mut command, Some(stdin.as_bytes()))
}

fn app(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    app_env(dir, &args, stdin, &[])
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", stderr(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "expected a failure: {}", ok(out));
    stderr(out)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn users(path: &Path) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn is_root() -> bool {
    // The owner of a file we just created is our effective user.
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::metadata(dir.path()).unwrap().uid() == 0
}

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one, or returns why it cannot (not root, mounting not permitted).
    fn mount(size: &str) -> Result<Self, String> {
        if !is_root() {
            return Err("not root".into());
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount failed: {}", stderr(&out)));
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Root without mount permission, or a normal user, cannot run the case: say so, and fail
/// in CI, where the runner is root and must be able to.
fn unavailable(case: &str, why: &str) {
    assert!(!globo_testkit::in_ci(), "{case} cannot run in CI: {why}");
    eprintln!("SKIPPED {case}: {why}");
}

#[test]
fn loose_permissions_warn_and_writes_restore_0600() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&app(d, &["config", "init-key"], ""));
    std::fs::write(d.join("config.json"), "{\"a\": 1}").unwrap();
    ok(&app(d, &["config", "encrypt", "config.json"], ""));
    // A key file readable by others still works, with a warning that gives the fix.
    std::fs::set_permissions(d.join("secret.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = app(d, &["config", "show"], "");
    ok(&out);
    assert!(
        stderr(&out)
            .contains("can be accessed by group or others (permission bits 044); fix: chmod 600"),
        "{}",
        stderr(&out)
    );
    // A users file readable by others: the next write replaces it with a private one.
    ok(&app(d, &["register", "alice", "--password-stdin"], "wonderland passphrase\n"));
    std::fs::set_permissions(d.join("users.json"), std::fs::Permissions::from_mode(0o666)).unwrap();
    ok(&app(d, &["register", "bob", "--password-stdin"], "builder passphrase\n"));
    assert_eq!(mode(&d.join("users.json")), 0o600);
    assert_eq!(users(&d.join("users.json")).len(), 2);
    // A ciphertext readable by others is replaced privately too.
    std::fs::set_permissions(d.join("config.enc"), std::fs::Permissions::from_mode(0o644)).unwrap();
    ok(&app(d, &["config", "encrypt", "config.json"], ""));
    assert_eq!(mode(&d.join("config.enc")), 0o600);
}

#[test]
fn symlinks_are_written_through_to_their_target_never_detached() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let elsewhere = tempfile::tempdir().unwrap();
    // users.json -> a file in shared storage: read through; the write replaces the link's
    // target, with every user, and the link stays (it is not detached from the shared file).
    let target = elsewhere.path().join("shared-users.json");
    let store = UserStore::new(&target).with_profile(Profile::TestOnlyInsecure);
    store.register("alice", &SecretString::from("wonderland passphrase")).unwrap();
    std::os::unix::fs::symlink(&target, d.join("users.json")).unwrap();
    ok(&app(d, &["register", "bob", "--password-stdin"], "builder passphrase\n"));
    let link = std::fs::symlink_metadata(d.join("users.json")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced by a file");
    let names: Vec<String> = users(&target).keys().cloned().collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(mode(&target), 0o600);
    assert!(!d.join("users.json.lock").exists(), "the lock lies beside the target");

    // A dangling link where the key should be created: init-key refuses, creates nothing.
    let planted = elsewhere.path().join("attacker-reads-this.key");
    std::os::unix::fs::symlink(&planted, d.join("secret.key")).unwrap();
    let message = failed(&app(d, &["config", "init-key"], ""));
    assert!(message.contains("already exists"), "{message}");
    assert!(!planted.exists(), "a key was written through a dangling link");
    std::fs::remove_file(d.join("secret.key")).unwrap();

    // secret.key -> a key file elsewhere: used (read through), and the encrypted output is a
    // regular private file; `--out` pointing at the link's target key is refused.
    let real_key = elsewhere.path().join("real.key");
    let key = Key::generate().unwrap();
    KeyFile::create_new(&real_key, &key).unwrap();
    std::os::unix::fs::symlink(&real_key, d.join("secret.key")).unwrap();
    std::fs::write(d.join("config.json"), "{\"a\": 1}").unwrap();
    ok(&app(d, &["config", "encrypt", "config.json"], ""));
    let token = std::fs::read_to_string(d.join("config.enc")).unwrap();
    assert_eq!(crypto::decrypt(&key, &token).unwrap().as_slice(), b"{\"a\": 1}");
    failed(&app(d, &["config", "encrypt", "config.json", "--out", real_key.to_str().unwrap()], ""));
    assert!(Key::from_file(&real_key).unwrap().same_as(&key), "the key was overwritten");

    // rotate-key with secret.key and config.enc linked into shared storage: the shared key
    // is replaced and still opens the shared config.enc; both links stay; `.next` and the
    // retired key lie beside the shared key.
    let shared_enc = elsewhere.path().join("shared-config.enc");
    std::fs::rename(d.join("config.enc"), &shared_enc).unwrap();
    std::os::unix::fs::symlink(&shared_enc, d.join("config.enc")).unwrap();
    let rotated = ok(&app(d, &["config", "rotate-key"], ""));
    assert!(rotated.contains("Rotated the key"), "{rotated}");
    for name in ["secret.key", "config.enc"] {
        let meta = std::fs::symlink_metadata(d.join(name)).unwrap();
        assert!(meta.file_type().is_symlink(), "{name} was detached");
    }
    let new_key = Key::from_file(&real_key).unwrap();
    assert!(!new_key.same_as(&key), "the shared key kept the old key");
    let token = std::fs::read_to_string(&shared_enc).unwrap();
    assert_eq!(crypto::decrypt(&new_key, &token).unwrap().as_slice(), b"{\"a\": 1}");
    assert!(ok(&app(d, &["config", "show"], "")).contains("\"a\": 1"));
    let retired = std::fs::read_dir(elsewhere.path())
        .unwrap()
        .filter(|e| {
            e.as_ref().unwrap().file_name().to_string_lossy().starts_with("real.key.retired-")
        })
        .count();
    assert_eq!(retired, 1, "the retired key lies beside the shared key");

    // encrypt --remove-plaintext through a link: the target (the plaintext) is removed, after
    // the verified round trip; the link stays; the message names the file removed.
    let shared_plain = elsewhere.path().join("shared-config.json");
    std::fs::rename(d.join("config.json"), &shared_plain).unwrap();
    std::os::unix::fs::symlink(&shared_plain, d.join("config.json")).unwrap();
    let out = ok(&app(d, &["config", "encrypt", "config.json", "--remove-plaintext"], ""));
    assert!(out.contains("shared-config.json"), "{out}");
    assert!(!shared_plain.exists(), "the plaintext is still on disk behind the link");
    assert!(std::fs::symlink_metadata(d.join("config.json")).unwrap().file_type().is_symlink());
    assert!(ok(&app(d, &["config", "show"], "")).contains("\"a\": 1"));

    // A lock file that is a link is refused (O_NOFOLLOW), with nothing written anywhere.
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let lock = elsewhere.path().join("shared-users.json.lock");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let message =
        failed(&app(d, &["register", "carol", "--password-stdin"], "christmas passphrase\n"));
    assert!(message.contains("users.json.lock"), "{message}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(users(&target).len(), 2);
}

#[test]
fn remove_plaintext_never_deletes_a_pipe_or_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&app(d, &["config", "init-key"], ""));
    // stdin (a pipe here), a link to a device, a FIFO: refused before anything is written.
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    std::os::unix::fs::symlink("/dev/null", d.join("to-null")).unwrap();
    for input in ["/dev/stdin", "to-null", "fifo"] {
        let message = failed(&app(
            d,
            &["config", "encrypt", input, "--out", "out.enc", "--remove-plaintext"],
            "{\"a\": 1}",
        ));
        assert!(message.contains("not a regular file"), "{input}: {message}");
        assert!(!d.join("out.enc").exists(), "{input}: written before refusing");
    }
    assert!(std::fs::symlink_metadata(d.join("to-null")).is_ok());
    assert!(std::fs::symlink_metadata(&fifo).is_ok());
    // Without --remove-plaintext, stdin still encrypts.
    ok(&app(d, &["config", "encrypt", "/dev/stdin", "--out", "out.enc"], "{\"a\": 1}"));
    assert!(ok(&app(d, &["config", "show", "--in", "out.enc"], "")).contains("\"a\": 1"));
}

#[test]
fn a_read_only_folder_fails_clearly_and_loses_nothing() {
    let (guard, dir);
    let d: PathBuf = match Tmpfs::mount("1m") {
        Ok(fs) => {
            guard = Some(fs);
            guard.as_ref().unwrap().path().to_path_buf()
        }
        Err(why) if is_root() => return unavailable("read-only folder (root)", &why),
        Err(_) => {
            dir = tempfile::tempdir().unwrap();
            dir.path().to_path_buf()
        }
    };
    let d = d.as_path();
    ok(&app(d, &["config", "init-key"], ""));
    std::fs::write(d.join("config.json"), "{\"a\": 1}").unwrap();
    ok(&app(d, &["config", "encrypt", "config.json"], ""));
    ok(&app(d, &["register", "alice", "--password-stdin"], "wonderland passphrase\n"));
    let before: Vec<(String, Vec<u8>)> = ["secret.key", "config.enc", "users.json"]
        .iter()
        .map(|n| ((*n).to_owned(), std::fs::read(d.join(n)).unwrap()))
        .collect();

    let restore = ReadOnly::make(d);
    let message = failed(&app(d, &["register", "bob", "--password-stdin"], "builder passphrase\n"));
    assert!(message.contains("users.json"), "{message}");
    let message = failed(&app(d, &["config", "encrypt", "config.json"], ""));
    assert!(message.contains("config.enc") || message.contains("secret.key"), "{message}");
    let message = failed(&app(d, &["config", "rotate-key"], ""));
    assert!(message.contains("secret.key"), "{message}");
    // A login must be counted before it is checked (throttling, NIST SP 800-63B-4 §3.2.2),
    // and the count cannot be written: the login is refused, clearly, rather than let through
    // uncounted (failing closed), and nothing is lost.
    let message =
        failed(&app(d, &["verify", "alice", "--password-stdin"], "wonderland passphrase\n"));
    assert!(message.contains("throttling state folder"), "{message}");
    assert!(message.contains("users.json.throttle"), "{message}");
    assert!(message.contains("must be a folder this user can write"), "{message}");
    // Reading still works.
    ok(&app(d, &["config", "show"], ""));
    drop(restore);
    for (name, bytes) in before {
        assert_eq!(std::fs::read(d.join(&name)).unwrap(), bytes, "{name} changed");
    }
    assert!(!d.join("secret.key.next").exists());
}

/// Makes a folder read-only for the current user, and writable again when dropped: a
/// read-only remount of a tmpfs when `d` is one (root), else `chmod 555`.
struct ReadOnly<'a> {
    dir: &'a Path,
    remounted: bool,
}

impl<'a> ReadOnly<'a> {
    fn make(dir: &'a Path) -> Self {
        if is_root() {
            let out = Command::new("mount").args(["-o", "remount,ro"]).arg(dir).output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            Self { dir, remounted: true }
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
            Self { dir, remounted: false }
        }
    }
}

impl Drop for ReadOnly<'_> {
    fn drop(&mut self) {
        if self.remounted {
            let _ = Command::new("mount").args(["-o", "remount,rw"]).arg(self.dir).status();
        } else {
            let _ = std::fs::set_permissions(self.dir, std::fs::Permissions::from_mode(0o755));
        }
    }
}

#[test]
fn a_full_disk_fails_clearly_and_loses_nothing() {
    let fs = match Tmpfs::mount("64k") {
        Ok(fs) => fs,
        Err(why) => return unavailable("full disk", &why),
    };
    let d = fs.path();
    ok(&app(d, &["config", "init-key"], ""));
    std::fs::write(d.join("config.json"), "{\"version\": 1}").unwrap();
    ok(&app(d, &["config", "encrypt", "config.json"], ""));
    ok(&app(d, &["register", "alice", "--password-stdin"], "wonderland passphrase\n"));
    let key = LoadedKeys::load(&d.join("secret.key")).unwrap().into_keyring();

    // Fill the disk: a plaintext that fits, whose ciphertext (4/3 larger) cannot.
    let big = vec![b'x'; 30 * 1024];
    std::fs::write(d.join("config.json"), &big).unwrap();
    let message = failed(&app(d, &["config", "encrypt", "config.json"], ""));
    assert!(message.contains("No space left on device"), "{message}");
    let token = std::fs::read_to_string(d.join("config.enc")).unwrap();
    assert_eq!(crypto::decrypt(&key, &token).unwrap().as_slice(), b"{\"version\": 1}");

    // Use the rest, then register and rotate: both fail, the old files stay whole.
    let mut filler = std::fs::File::create(d.join("filler")).unwrap();
    let _ = filler.write_all(&vec![0u8; 64 * 1024]);
    drop(filler);
    let users_before = std::fs::read(d.join("users.json")).unwrap();
    let message = failed(&app(d, &["register", "bob", "--password-stdin"], "builder passphrase\n"));
    assert!(message.contains("No space left on device"), "{message}");
    assert_eq!(std::fs::read(d.join("users.json")).unwrap(), users_before);
    let key_before = std::fs::read(d.join("secret.key")).unwrap();
    let message = failed(&app(d, &["config", "rotate-key"], ""));
    assert!(message.contains("No space left on device"), "{message}");
    // Whatever step the rotation reached, the key files on disk still decrypt config.enc.
    let keys = LoadedKeys::load(&d.join("secret.key")).unwrap();
    let token = std::fs::read_to_string(d.join("config.enc")).unwrap();
    assert_eq!(crypto::decrypt(keys.keyring(), &token).unwrap().as_slice(), b"{\"version\": 1}");
    assert_eq!(std::fs::read(d.join("secret.key")).unwrap(), key_before);
    // No temporary file was left behind to hold the space.
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".globo-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Once space is freed, everything works again.
    std::fs::remove_file(d.join("filler")).unwrap();
    std::fs::write(d.join("config.json"), "{\"version\": 2}").unwrap();
    ok(&app(d, &["register", "bob", "--password-stdin"], "builder passphrase\n"));
    ok(&app(d, &["config", "rotate-key"], ""));
    ok(&app(d, &["config", "encrypt", "config.json"], ""));
    assert!(ok(&app(d, &["config", "show"], "")).contains("\"version\": 2"));
}

fn os<'a>(parts: &[&'a OsStr]) -> Vec<&'a OsStr> {
    parts.to_vec()
}

#[test]
fn non_utf8_paths_work_and_are_shown_lossily() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let name = |bytes: &[u8]| OsStr::from_bytes(bytes).to_owned();
    let sub = d.join(name(b"caf\xe9-\xff"));
    std::fs::create_dir(&sub).unwrap();
    let users_file = sub.join(name(b"users-\xfe.json"));
    let key_file = sub.join(name(b"key-\x80.key"));
    let plain = sub.join(name(b"config-\xc3.json"));
    let enc = sub.join(name(b"config-\xc3.enc"));
    std::fs::write(&plain, "{\"a\": 1}").unwrap();
    let register = os(&[
        OsStr::new("register"),
        OsStr::new("alice"),
        OsStr::new("--password-stdin"),
        OsStr::new("--users-file"),
        users_file.as_os_str(),
    ]);
    ok(&app_env(d, &register, "wonderland passphrase\n", &[]));
    let mut verify = register.clone();
    verify[0] = OsStr::new("verify");
    ok(&app_env(d, &verify, "wonderland passphrase\n", &[]));
    ok(&app_env(
        d,
        &os(&[
            OsStr::new("config"),
            OsStr::new("init-key"),
            OsStr::new("--key-file"),
            key_file.as_os_str(),
        ]),
        "",
        &[],
    ));
    let out = app_env(
        d,
        &os(&[
            OsStr::new("config"),
            OsStr::new("encrypt"),
            plain.as_os_str(),
            OsStr::new("--out"),
            enc.as_os_str(),
            OsStr::new("--key-file"),
            key_file.as_os_str(),
        ]),
        "",
        &[],
    );
    // The message shows the path with U+FFFD for the bytes that are not UTF-8.
    assert!(ok(&out).contains("config-\u{fffd}.enc"));
    let shown = ok(&app_env(
        d,
        &os(&[
            OsStr::new("config"),
            OsStr::new("show"),
            OsStr::new("--in"),
            enc.as_os_str(),
            OsStr::new("--key-file"),
            key_file.as_os_str(),
        ]),
        "",
        &[],
    ));
    assert_eq!(shown, "{\n  \"a\": 1\n}\n");
    // An error about such a path is readable too.
    let missing = sub.join(name(b"missing-\xff.enc"));
    let message = failed(&app_env(
        d,
        &os(&[
            OsStr::new("config"),
            OsStr::new("inspect"),
            OsStr::new("--in"),
            missing.as_os_str(),
        ]),
        "",
        &[],
    ));
    assert!(message.contains("missing-\u{fffd}.enc"), "{message}");
}

#[test]
fn a_secrets_endpoint_that_never_answers_fails_within_seconds() {
    // Accepts connections and never answers (the worst case: no connection refused).
    let endpoint = globo_testkit::silent_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let args: Vec<&OsStr> = ["secrets", "get", "PAYMENT_GATEWAY_API_KEY", "--mode", "prod"]
        .iter()
        .map(OsStr::new)
        .collect();
    let started = Instant::now();
    let out = app_env(dir.path(), &args, "", &env);
    let elapsed = started.elapsed();
    let message = failed(&out);
    assert!(message.contains(&endpoint), "{message}");
    assert!(
        message.contains("no answer within the timeout") || message.contains("not answering"),
        "{message}"
    );
    eprintln!("silent endpoint: failed after {elapsed:?}");
}

/// Runs `app` under a 1 GiB address-space limit, so a command that reads without bound fails
/// with "out of memory" instead of exhausting the machine.
fn app_memory_limited(dir: &Path, args: &str) -> Output {
    globo_testkit::isolated_command("bash", dir)
        .arg("-c")
        .arg(format!("ulimit -v 1048576; exec '{APP}' {args}"))
        .output()
        .unwrap()
}

#[test]
fn endless_inputs_fail_clearly_within_bounded_memory() {
    // Each in its own folder: the config commands read .env too (APP_MODE).
    let endless = |name: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(name)).unwrap();
        dir
    };
    // Refused with a clear error, without reading the whole (endless) file.
    let dir = endless("config.enc");
    ok(&app(dir.path(), &["config", "init-key"], ""));
    let message = failed(&app_memory_limited(dir.path(), "config show"));
    assert!(message.starts_with("error: Decryption failed"), "{message}");
    let dir = endless("users.json");
    let message = failed(&app_memory_limited(
        dir.path(),
        "register alice --password-stdin <<< 'a fine passphrase'",
    ));
    assert!(message.contains("not a regular file"), "{message}");
    let dir = endless(".env");
    let message = failed(&app_memory_limited(dir.path(), "secrets get NAME"));
    assert!(message.contains("larger than 1048576 bytes"), "{message}");
}

/// Regression: `config inspect` used to read the whole file, so /dev/zero exhausted memory.
#[test]
fn inspect_of_an_endless_file_fails_clearly_within_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::symlink("/dev/zero", d.join("config.enc")).unwrap();
    let message = failed(&app_memory_limited(d, "config inspect"));
    assert!(!message.contains("out of memory"), "{message}");
}

/// `app` run by the service account (uid 4321, gid 8765, no other group) in `dir`.
fn as_service(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut command = globo_testkit::isolated_command("setpriv", dir);
    command
        .args(["--reuid=4321", "--regid=8765", "--clear-groups", APP])
        .args(args)
        .env("GLOBO_PASSWORD_PROFILE", "test-only-insecure");
    globo_testkit::output_guarded(&mut command, Some(stdin.as_bytes()))
}

#[test]
fn a_command_run_as_root_never_locks_the_service_out() {
    use std::os::unix::fs::MetadataExt as _;
    if !is_root() {
        return unavailable("a_command_run_as_root_never_locks_the_service_out", "needs root");
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The service's folder and files.
    std::os::unix::fs::chown(d, Some(4321), Some(8765)).unwrap();
    ok(&as_service(d, &["register", "alice", "--password-stdin"], "wonderland passphrase\n"));
    ok(&as_service(d, &["config", "init-key"], ""));
    std::fs::write(d.join("config.json"), "{\"a\": 1}").unwrap();
    std::os::unix::fs::chown(d.join("config.json"), Some(4321), Some(8765)).unwrap();
    ok(&as_service(d, &["config", "encrypt", "config.json"], ""));

    // An older version run as root left a root-owned 0600 lock: the service gets an error that
    // names the lock file and its owner, and loses nothing.
    std::os::unix::fs::chown(d.join("users.json.lock"), Some(0), Some(0)).unwrap();
    let message =
        failed(&as_service(d, &["register", "bob", "--password-stdin"], "builder passphrase\n"));
    assert!(message.contains("users.json.lock") && message.contains("uid 0"), "{message}");
    // The operator, as root: register, encrypt, rotate-key on the service's files.
    ok(&app(d, &["register", "bob", "--password-stdin"], "builder passphrase\n"));
    ok(&app(d, &["config", "encrypt", "config.json"], ""));
    ok(&app(d, &["config", "rotate-key"], ""));
    for lock in ["users.json.lock", "secret.key.lock"] {
        let meta = std::fs::metadata(d.join(lock)).unwrap();
        assert_eq!((meta.uid(), meta.gid(), mode(&d.join(lock))), (4321, 8765, 0o600), "{lock}");
    }
    // The service still can do everything.
    ok(&as_service(d, &["register", "carol", "--password-stdin"], "christmas passphrase\n"));
    ok(&as_service(d, &["config", "encrypt", "config.json"], ""));
    ok(&as_service(d, &["config", "rotate-key"], ""));
    assert!(ok(&as_service(d, &["config", "show"], "")).contains("\"a\": 1"));
    assert_eq!(users(&d.join("users.json")).len(), 3);
}
