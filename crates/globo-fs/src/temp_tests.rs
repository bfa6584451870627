//! Temporary files: unnamed where possible, nothing left behind by a kill, stale ones swept.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use super::*;

thread_local! {
    static LINK_UNAVAILABLE: Cell<bool> = const { Cell::new(false) };
    static EMPTY_PATH_REFUSED: Cell<bool> = const { Cell::new(false) };
}

/// Whether this test thread pretends that `linkat(AT_EMPTY_PATH)` is refused (a kernel before
/// 6.10 without `CAP_DAC_READ_SEARCH`), so that the `/proc/self/fd` way is taken.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn empty_path_refused_forced() -> bool {
    EMPTY_PATH_REFUSED.with(Cell::get)
}

/// Whether this test thread pretends that an unnamed file cannot be linked (no `/proc`, no
/// permission for `AT_EMPTY_PATH`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn link_unavailable_forced() -> bool {
    LINK_UNAVAILABLE.with(Cell::get)
}

/// The `.globo-*` entries in `dir`.
fn temp_entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".globo-"))
        .collect()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

/// Backdates a file's modification time by `age`.
fn age_file(path: &Path, age: Duration) {
    let file = File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn writes_use_an_unnamed_temporary_file_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    assert_eq!(write_with(&path, b"key", Publish::NoClobber, true).unwrap(), Kind::Unnamed);
    assert_eq!(write_with(&path, b"key2", Publish::Replace, true).unwrap(), Kind::Unnamed);
    assert_eq!(fs::read(&path).unwrap(), b"key2");
    assert_eq!(mode(&path), 0o600);

    // While a streamed write is in progress, no directory entry exists for it.
    let mut file = AtomicFile::create(&dir.path().join("config.enc")).unwrap();
    assert_eq!(file.temp.kind(), Kind::Unnamed);
    file.write_all(&vec![b'x'; 1 << 20]).unwrap();
    file.flush().unwrap();
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["secret.key"], "the temporary file has a name");
    // Dropped without commit: nothing appears.
    drop(file);
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["secret.key"]);
}

#[test]
fn a_final_mode_is_0600_whatever_the_umask_or_the_old_file_allows() {
    // A file that already exists with loose bits is replaced by a private one, both ways.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for prefer_unnamed in [true, false] {
        let path = dir.path().join(format!("users-{prefer_unnamed}.json"));
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        write_with(&path, b"new", Publish::Replace, prefer_unnamed).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }
    assert!(temp_entries(dir.path()).is_empty());
    // A umask that takes the owner's bits away (set in a child: the umask is per process)
    // still gives 0600, whose owner can read the key back.
    for job in ["create_new", "create_new-named", "stream", "stream-named"] {
        let path = dir.path().join(job);
        let status = child(job, &path, "none").env("GLOBO_FS_TEST_UMASK", "1").status().unwrap();
        assert!(status.success(), "{job}: {status:?}");
        assert_eq!(mode(&path), 0o600, "{job}");
        assert_eq!(fs::read(&path).unwrap(), NEW, "{job}");
    }
}

#[test]
fn the_named_fallback_replaces_creates_and_never_clobbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    assert_eq!(write_with(&path, b"first", Publish::NoClobber, false).unwrap(), Kind::Named);
    let err = write_with(&path, b"second", Publish::NoClobber, false).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(fs::read(&path).unwrap(), b"first");
    assert_eq!(write_with(&path, b"third", Publish::Replace, false).unwrap(), Kind::Named);
    assert_eq!(fs::read(&path).unwrap(), b"third");
    assert_eq!(mode(&path), 0o600);

    let out = dir.path().join("config.enc");
    let mut file = AtomicFile::create_with(&out, false).unwrap();
    assert_eq!(file.temp.kind(), Kind::Named);
    file.write_all(b"gAAAA").unwrap();
    // The fallback's temporary file has a name while it is written...
    assert_eq!(temp_entries(dir.path()).len(), 1);
    file.commit().unwrap();
    assert_eq!(fs::read(&out).unwrap(), b"gAAAA");
    // ...and none after (nor after a drop without commit).
    drop(AtomicFile::create_with(&out, false).unwrap());
    assert!(temp_entries(dir.path()).is_empty());
    assert_eq!(fs::read(&out).unwrap(), b"gAAAA");
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn an_unnamed_file_is_linked_through_proc_where_at_empty_path_is_refused() {
    EMPTY_PATH_REFUSED.with(|f| f.set(true));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    assert_eq!(write_with(&path, b"first", Publish::NoClobber, true).unwrap(), Kind::Unnamed);
    let err = write_with(&path, b"second", Publish::NoClobber, true).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(write_with(&path, b"third", Publish::Replace, true).unwrap(), Kind::Unnamed);
    EMPTY_PATH_REFUSED.with(|f| f.set(false));
    assert_eq!(fs::read(&path).unwrap(), b"third");
    assert_eq!(mode(&path), 0o600);
    assert!(temp_entries(dir.path()).is_empty());
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn an_unnamed_file_that_cannot_be_linked_is_copied_to_a_named_one() {
    LINK_UNAVAILABLE.with(|f| f.set(true));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    assert_eq!(write_with(&path, b"first", Publish::NoClobber, true).unwrap(), Kind::Unnamed);
    let err = write_with(&path, b"second", Publish::NoClobber, true).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(fs::read(&path).unwrap(), b"first");
    let big = vec![7u8; 3 << 20];
    let mut file = AtomicFile::create(&path).unwrap();
    file.write_all(&big).unwrap();
    file.commit().unwrap();
    LINK_UNAVAILABLE.with(|f| f.set(false));
    assert_eq!(fs::read(&path).unwrap(), big);
    assert_eq!(mode(&path), 0o600);
    assert!(temp_entries(dir.path()).is_empty());
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn create_new_never_clobbers_a_file_a_link_or_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("file"), b"keep").unwrap();
    std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling")).unwrap();
    std::os::unix::fs::symlink(d.join("file"), d.join("link")).unwrap();
    fs::create_dir(d.join("folder")).unwrap();
    for name in ["file", "dangling", "link", "folder"] {
        for prefer_unnamed in [true, false] {
            let err =
                write_with(&d.join(name), b"new", Publish::NoClobber, prefer_unnamed).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{name} {prefer_unnamed}");
        }
    }
    assert_eq!(fs::read(d.join("file")).unwrap(), b"keep");
    assert!(!d.join("nowhere").exists(), "written through a dangling link");
    assert!(temp_entries(d).is_empty());
}

#[test]
fn failures_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // Replacing a non-empty folder fails at the rename; the temporary name is removed.
    let folder = dir.path().join("folder");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("inside"), b"x").unwrap();
    for prefer_unnamed in [true, false] {
        assert!(write_with(&folder, b"new", Publish::Replace, prefer_unnamed).is_err());
    }
    assert!(temp_entries(dir.path()).is_empty());
    // A missing folder is reported with its path.
    let err = write_atomic(&dir.path().join("missing/users.json"), b"{}").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(crate::with_causes(&err).contains("missing"), "{err}");
}

#[test]
fn only_old_regular_globo_temp_files_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hours = |n: u64| Duration::from_secs(n * 3600);
    let old = d.join(".globo-AbC123.tmp");
    let fresh = d.join(".globo-XyZ789.tmp");
    let not_ours = d.join(".globo-notes.txt");
    let data = d.join("users.json");
    let odd = d.join(".globo-a-b.tmp");
    for p in [&old, &fresh, &not_ours, &data, &odd] {
        fs::write(p, b"residue").unwrap();
    }
    for p in [&old, &not_ours, &data, &odd] {
        age_file(p, hours(2));
    }
    // A symbolic link with a temporary name, to an old file: neither is removed.
    let target = d.join("precious");
    fs::write(&target, b"keep").unwrap();
    age_file(&target, hours(2));
    let link = d.join(".globo-link01.tmp");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // A file just under the age limit stays.
    let almost = d.join(".globo-almost.tmp");
    fs::write(&almost, b"residue").unwrap();
    age_file(&almost, STALE_TEMP_AGE - Duration::from_secs(60));
    // A modification time in the future (clock skew) never qualifies.
    let future = d.join(".globo-future.tmp");
    fs::write(&future, b"residue").unwrap();
    File::options()
        .write(true)
        .open(&future)
        .unwrap()
        .set_modified(SystemTime::now() + hours(5))
        .unwrap();

    assert_eq!(remove_stale_temp_files(d).unwrap(), std::slice::from_ref(&old));
    for p in [&fresh, &not_ours, &data, &odd, &target, &link, &almost, &future] {
        assert!(fs::symlink_metadata(p).is_ok(), "{} was removed", p.display());
    }
    assert!(remove_stale_temp_files(d).unwrap().is_empty());

    // Every successful write sweeps its folder, whichever kind of temporary file it used.
    for prefer_unnamed in [true, false] {
        let stale = d.join(format!(".globo-old{prefer_unnamed}.tmp"));
        fs::write(&stale, b"residue").unwrap();
        age_file(&stale, hours(3));
        write_with(&data, b"{}", Publish::Replace, prefer_unnamed).unwrap();
        assert!(!stale.exists(), "not swept ({prefer_unnamed})");
    }
    assert!(fresh.exists());
}

#[test]
fn temp_names_are_recognised_exactly() {
    let yes = [".globo-a.tmp", ".globo-AbC123.tmp", ".globo-0123456789abcdefghijABCDEFGHIJab.tmp"];
    let no = [
        ".globo-.tmp",
        ".globo-0123456789abcdefghijABCDEFGHIJabc.tmp",
        ".globo-a-b.tmp",
        "globo-abc.tmp",
        ".globo-abc.tmp.bak",
        ".globo-abc.TMP",
        "users.json",
    ];
    for name in yes {
        assert!(stale::is_temp_name(std::ffi::OsStr::new(name)), "{name}");
    }
    for name in no {
        assert!(!stale::is_temp_name(std::ffi::OsStr::new(name)), "{name}");
    }
}

// ---- Killed at each step (SIGKILL, in a child process). ----

/// Every write job, as callers use the public functions (`-named` forces the fallback).
const JOBS: [&str; 6] = [
    "write_atomic",
    "create_new",
    "stream",
    "write_atomic-named",
    "create_new-named",
    "stream-named",
];

/// Writes `NEW` to `path` with `job`.
fn run_job(job: &str, path: &Path) {
    match job {
        "write_atomic" => write_atomic(path, NEW).unwrap(),
        "create_new" => create_new(path, NEW).unwrap(),
        "stream" => stream(AtomicFile::create(path).unwrap()),
        "write_atomic-named" => {
            assert_eq!(write_with(path, NEW, Publish::Replace, false).unwrap(), Kind::Named);
        }
        "create_new-named" => {
            assert_eq!(write_with(path, NEW, Publish::NoClobber, false).unwrap(), Kind::Named);
        }
        "stream-named" => stream(AtomicFile::create_with(path, false).unwrap()),
        other => panic!("unknown job {other}"),
    }
}

/// Run as it is, every job writes a whole new file and leaves nothing else in the folder. It is
/// also what the crash tests' child process runs: with `GLOBO_FS_TEST_JOB=<job>`, it writes `NEW`
/// to `GLOBO_FS_TEST_PATH` and is killed at `GLOBO_FS_TEST_CRASH_AT` (see `crash_point`).
#[test]
fn crash_child() {
    let Some(job) = std::env::var_os("GLOBO_FS_TEST_JOB") else {
        for job in JOBS {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("users.json");
            run_job(job, &path);
            assert_eq!(fs::read(&path).unwrap(), NEW, "{job}");
            assert!(temp_entries(dir.path()).is_empty(), "{job}");
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "{job}");
        }
        return;
    };
    let path = PathBuf::from(std::env::var_os("GLOBO_FS_TEST_PATH").unwrap());
    if std::env::var_os("GLOBO_FS_TEST_UMASK").is_some() {
        // Owner write and execute, group and others: everything masked but the owner's read.
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o377));
    }
    // Failures after the crash point are the parent's to judge (it checks the files).
    let job = job.to_str().unwrap().to_owned();
    let _ = std::panic::catch_unwind(|| run_job(&job, &path));
}

fn stream(mut file: AtomicFile) {
    for chunk in NEW.chunks(4096) {
        file.write_all(chunk).unwrap();
    }
    file.commit().unwrap();
}

const OLD: &[u8] = b"the old, complete content";
/// Large enough to span many pages and writes.
const NEW: &[u8] = &[b'n'; 256 * 1024];

/// Runs `job` in a child process that kills itself at `step`; returns whether it was killed by
/// SIGKILL (not every job reaches every step).
fn run_killed_at(job: &str, path: &Path, step: &str) -> bool {
    let status = child(job, path, step).status().unwrap();
    if status.signal() == Some(9) {
        return true;
    }
    assert!(status.success(), "{job} at {step}: {status:?}");
    false
}

/// The command running `job` in a child process (see `crash_child`).
fn child(job: &str, path: &Path, crash_at: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "temp_tests::crash_child", "--test-threads=1", "--quiet"])
        .env("GLOBO_FS_TEST_JOB", job)
        .env("GLOBO_FS_TEST_PATH", path)
        .env("GLOBO_FS_TEST_CRASH_AT", crash_at)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

const STEPS: [&str; 5] = ["created", "written", "synced", "linked", "published"];

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_replacing_write_killed_at_any_step_leaves_no_temporary_file() {
    for job in ["write_atomic", "stream"] {
        for step in STEPS {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("users.json");
            fs::write(&path, OLD).unwrap();
            assert!(run_killed_at(job, &path, step), "{job} was not killed at {step}");
            let content = fs::read(&path).unwrap();
            let left = temp_entries(dir.path());
            match step {
                "published" => {
                    assert_eq!(content, NEW, "{job} at {step}");
                    assert!(left.is_empty(), "{job} at {step}: {left:?}");
                }
                // The documented window between linkat and renameat: a complete, private
                // temporary file, which the next write sweeps once it is old.
                "linked" => {
                    assert_eq!(content, OLD, "{job} at {step}");
                    assert_eq!(left.len(), 1, "{job} at {step}: {left:?}");
                    assert_eq!(fs::read(&left[0]).unwrap(), NEW);
                    assert_eq!(mode(&left[0]), 0o600);
                    assert!(remove_stale_temp_files(dir.path()).unwrap().is_empty());
                    age_file(&left[0], STALE_TEMP_AGE + Duration::from_secs(1));
                    write_atomic(&path, b"later").unwrap();
                    assert!(temp_entries(dir.path()).is_empty(), "{job}: not swept");
                }
                _ => {
                    assert_eq!(content, OLD, "{job} at {step}");
                    assert!(left.is_empty(), "{job} at {step}: residue {left:?}");
                }
            }
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn create_new_killed_at_any_step_leaves_nothing_or_the_whole_file() {
    for step in STEPS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let killed = run_killed_at("create_new", &path, step);
        let left = temp_entries(dir.path());
        assert!(left.is_empty(), "at {step}: {left:?}");
        match step {
            // No temporary name on this path: the link names the destination directly.
            "linked" => {
                assert!(!killed, "create_new has no link-to-temporary step");
                assert_eq!(fs::read(&path).unwrap(), NEW);
            }
            "published" => assert_eq!(fs::read(&path).unwrap(), NEW),
            _ => assert!(!path.exists(), "at {step}: a partial key appeared"),
        }
    }
}

/// The fallback, killed before the rename, leaves its named temporary file (the reason for
/// the sweep): private, never the data file, and swept once old.
#[test]
fn the_named_fallback_killed_mid_write_leaves_a_private_file_that_is_swept() {
    for job in ["write_atomic-named", "stream-named", "create_new-named"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        if !job.starts_with("create_new") {
            fs::write(&path, OLD).unwrap();
        }
        assert!(run_killed_at(job, &path, "written"), "{job} was not killed");
        let left = temp_entries(dir.path());
        assert_eq!(left.len(), 1, "{job}: {left:?}");
        assert_eq!(mode(&left[0]), 0o600);
        if job.starts_with("create_new") {
            assert!(!path.exists());
        } else {
            assert_eq!(fs::read(&path).unwrap(), OLD);
        }
        age_file(&left[0], STALE_TEMP_AGE + Duration::from_secs(1));
        assert_eq!(remove_stale_temp_files(dir.path()).unwrap(), left);
    }
}

// ---- The owner of a replaced file. ----

/// Whether this process is root; the owner tests need it (CI runs as root), and with
/// `CI=true` not being root is a failure, not a skip.
#[allow(clippy::print_stderr)]
fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{test} needs root (CI runs as root)");
    eprintln!("SKIPPED {test}: needs root");
    false
}

#[test]
fn a_replaced_file_keeps_its_owner_and_group_and_mode_0600() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    if !root_or_skip("a_replaced_file_keeps_its_owner_and_group_and_mode_0600") {
        return;
    }
    for job in ["write_atomic", "stream", "write_atomic-named", "stream-named"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        fs::write(&path, OLD).unwrap();
        std::os::unix::fs::chown(&path, Some(4321), Some(8765)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        run_job(job, &path);
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4321, 8765), "{job}");
        assert_eq!(mode(&path), 0o600, "{job}");
        assert_eq!(fs::read(&path).unwrap(), NEW, "{job}");
    }
    // A new file belongs to the writer.
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("secret.key");
    create_new(&fresh, NEW).unwrap();
    assert_eq!(fs::metadata(&fresh).unwrap().uid(), 0);
    // Through a link (root's): the target is replaced and keeps its owner and group.
    let other = dir.path().join("other");
    fs::write(&other, OLD).unwrap();
    std::os::unix::fs::chown(&other, Some(4321), Some(8765)).unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&other, &link).unwrap();
    write_atomic(&link, NEW).unwrap();
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let meta = fs::symlink_metadata(&other).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4321, 8765));
    assert_eq!(fs::read(&other).unwrap(), NEW);
}

/// Runs `command` as uid 4321, gid 8765, no other group (the service account).
fn as_service(command: &str, args: &[&Path]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=4321", "--regid=8765", "--clear-groups", command])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_link_planted_by_another_user_is_not_written_through() {
    if !root_or_skip("a_link_planted_by_another_user_is_not_written_through") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Root's file, and the service's link to it in the service's folder.
    let victim = dir.path().join("victim");
    fs::write(&victim, OLD).unwrap();
    let link = dir.path().join("users.json");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(4321), Some(8765)).unwrap();
    for job in ["write_atomic", "stream"] {
        let err = match job {
            "write_atomic" => write_atomic(&link, NEW).unwrap_err(),
            _ => AtomicFile::create(&link).unwrap_err(),
        };
        assert!(crate::with_causes(&err).contains("owner uid 4321"), "{job}: {err}");
    }
    assert_eq!(fs::read(&victim).unwrap(), OLD);
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    // The same link to a file of the service is followed.
    std::os::unix::fs::chown(&victim, Some(4321), Some(8765)).unwrap();
    write_atomic(&link, NEW).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), NEW);
}

#[test]
fn a_lock_taken_as_root_belongs_to_the_data_owner_who_can_take_it() {
    use std::os::unix::fs::MetadataExt as _;
    if !root_or_skip("a_lock_taken_as_root_belongs_to_the_data_owner_who_can_take_it") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The service's folder; its users.json exists, its secret.key does not yet.
    std::os::unix::fs::chown(d, Some(4321), Some(8765)).unwrap();
    let users = d.join("users.json");
    fs::write(&users, OLD).unwrap();
    std::os::unix::fs::chown(&users, Some(4321), Some(8765)).unwrap();
    // A lock file left by an older version run as root: root-owned, 0600.
    let stale = d.join("config.enc.lock");
    File::create(&stale).unwrap();
    fs::set_permissions(&stale, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    fs::write(d.join("config.enc"), OLD).unwrap();
    std::os::unix::fs::chown(d.join("config.enc"), Some(4321), Some(8765)).unwrap();
    for data in [users, d.join("secret.key"), d.join("config.enc")] {
        let guard = ExclusiveLock::acquire(&data).unwrap();
        let lock = guard.path().to_path_buf();
        drop(guard);
        let meta = fs::symlink_metadata(&lock).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4321, 8765), "{}", lock.display());
        assert_eq!(mode(&lock), 0o600, "{}", lock.display());
        // The service takes the lock root left (flock(1) opens it as the service would).
        let out = as_service("flock", &[&lock, Path::new("true")]);
        assert!(
            out.status.success(),
            "{}: {}",
            lock.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---- Links swapped after the check, hard-linked locks. ----

/// A folder `T/app` of the user 4321 with `d/shadow` (hers) and her link
/// `config.json -> d/shadow`; root's `T/etc/shadow` beside it.
fn planted(t: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::{chown, lchown, symlink};
    let app = t.join("app");
    fs::create_dir_all(app.join("d")).unwrap();
    fs::create_dir_all(t.join("etc")).unwrap();
    fs::write(app.join("d/shadow"), OLD).unwrap();
    fs::write(t.join("etc/shadow"), b"root's secret").unwrap();
    for p in [app.clone(), app.join("d"), app.join("d/shadow")] {
        chown(&p, Some(4321), Some(8765)).unwrap();
    }
    symlink("d/shadow", app.join("config.json")).unwrap();
    lchown(app.join("config.json"), Some(4321), Some(8765)).unwrap();
    (app.join("config.json"), t.join("etc"))
}

/// What the user 4321 does between globo's check and its act: her folder `d` becomes her link
/// to root's folder.
fn swap(app: &Path, etc: &Path) {
    fs::rename(app.join("d"), app.join("d.old")).unwrap();
    std::os::unix::fs::symlink(etc, app.join("d")).unwrap();
    std::os::unix::fs::lchown(app.join("d"), Some(4321), Some(8765)).unwrap();
}

#[test]
fn a_folder_swapped_for_a_link_after_the_check_redirects_no_write_lock_or_removal() {
    if !root_or_skip(
        "a_folder_swapped_for_a_link_after_the_check_redirects_no_write_lock_or_removal",
    ) {
        return;
    }
    for job in ["write_atomic", "stream", "lock", "remove", "remove-replaced"] {
        let dir = tempfile::tempdir().unwrap();
        let (link, etc) = planted(dir.path());
        let app = dir.path().join("app");
        let (app2, etc2) = (app.clone(), etc.clone());
        let step = if job.starts_with("remove") { "before unlink" } else { "resolved" };
        let result = crate::tests::with_hook(
            move |at| {
                if at == step && job == "remove-replaced" {
                    // The checked file itself replaced by another under its name.
                    fs::write(app2.join("d/other"), b"other").unwrap();
                    fs::rename(app2.join("d/other"), app2.join("d/shadow")).unwrap();
                } else if at == step {
                    swap(&app2, &etc2);
                }
            },
            || match job {
                "write_atomic" => write_atomic(&link, NEW).map(drop),
                "stream" => AtomicFile::create(&link).and_then(|mut f| {
                    f.write_all(NEW).unwrap();
                    f.commit()
                }),
                "lock" => ExclusiveLock::acquire(&link).map(drop),
                _ => RemovableFile::open(&link).and_then(RemovableFile::remove),
            },
        );
        assert_eq!(fs::read(etc.join("shadow")).unwrap(), b"root's secret", "{job}: {result:?}");
        assert_eq!(fs::read_dir(&etc).unwrap().count(), 1, "{job}: a file appeared in etc");
        assert_eq!(fs::metadata(etc.join("shadow")).unwrap().uid(), 0, "{job}");
        match job {
            // The write landed in the folder that was checked.
            "write_atomic" | "stream" => {
                result.unwrap();
                assert_eq!(fs::read(app.join("d.old/shadow")).unwrap(), NEW, "{job}");
            }
            "lock" => {
                result.unwrap();
                assert!(app.join("d.old/shadow.lock").exists());
            }
            // The file that was checked is removed, from the folder that was checked.
            "remove" => {
                result.unwrap();
                assert!(!app.join("d.old/shadow").exists());
            }
            _ => {
                let err = crate::with_causes(&result.unwrap_err());
                assert!(err.contains("replaced by another file"), "{job}: {err}");
                assert_eq!(fs::read(app.join("d/shadow")).unwrap(), b"other");
            }
        }
    }
}

#[test]
fn a_folder_link_of_another_user_on_the_path_is_not_followed() {
    if !root_or_skip("a_folder_link_of_another_user_on_the_path_is_not_followed") {
        return;
    }
    for job in ["write_atomic", "stream", "lock", "remove", "create_new"] {
        let dir = tempfile::tempdir().unwrap();
        let (_, etc) = planted(dir.path());
        let app = dir.path().join("app");
        swap(&app, &etc);
        // The path given names her folder link: app/d/shadow is root's etc/shadow.
        let path = app.join("d/shadow");
        let result = match job {
            "write_atomic" => write_atomic(&path, NEW).map(drop),
            "stream" => AtomicFile::create(&path).map(drop),
            "lock" => ExclusiveLock::acquire(&path).map(drop),
            "remove" => RemovableFile::open(&path).and_then(RemovableFile::remove),
            _ => create_new(&app.join("d/new.key"), NEW),
        };
        let err = crate::with_causes(&result.unwrap_err());
        assert!(err.contains("owner uid 4321"), "{job}: {err}");
        assert_eq!(fs::read(etc.join("shadow")).unwrap(), b"root's secret", "{job}");
        assert_eq!(fs::read_dir(&etc).unwrap().count(), 1, "{job}: a file appeared in etc");
    }
}

#[test]
fn a_hard_linked_lock_file_is_refused_and_never_given_away() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    if !root_or_skip("a_hard_linked_lock_file_is_refused_and_never_given_away") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let users = d.join("users.json");
    fs::write(&users, OLD).unwrap();
    std::os::unix::fs::chown(&users, Some(4321), Some(8765)).unwrap();
    // Root's file, hard-linked under the lock's name (`ln /etc/sudoers users.json.lock`).
    for content in [&b"root ALL=(ALL) ALL\n"[..], b""] {
        let sudoers = d.join("sudoers");
        fs::write(&sudoers, content).unwrap();
        fs::set_permissions(&sudoers, fs::Permissions::from_mode(0o440)).unwrap();
        let lock = d.join("users.json.lock");
        let _ = fs::remove_file(&lock);
        fs::hard_link(&sudoers, &lock).unwrap();
        let err = crate::with_causes(&ExclusiveLock::acquire(&users).unwrap_err());
        assert!(err.contains("single name"), "{err}");
        let meta = fs::metadata(&sudoers).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "the hard-linked file was given away");
        assert_eq!(meta.permissions().mode() & 0o777, 0o440);
        assert_eq!(fs::read(&sudoers).unwrap(), content);
    }
}

/// A folder `shared` (mode `1777`, root's, like `/tmp`) in a folder the service may enter.
fn sticky_shared_folder() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let shared = dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    (dir, shared)
}

/// Review: the owner a replaced file keeps was read from the destination's name again at
/// publish time, with no rule. A name another user (uid 4321) creates between the walk and the
/// publish, or plants before it in a folder others may write, or hard-links to a file of its
/// own, never gets the new file (root's new key or hash file): it stays the writer's.
#[test]
fn a_name_planted_by_another_user_never_gets_the_new_file() {
    use std::os::unix::fs::PermissionsExt as _;
    if !root_or_skip("a_name_planted_by_another_user_never_gets_the_new_file") {
        return;
    }
    let owner = |p: &Path| {
        let meta = fs::symlink_metadata(p).unwrap();
        (meta.uid(), meta.gid())
    };
    for job in ["write_atomic", "stream", "write_atomic-named", "stream-named"] {
        // Created by uid 4321 between the walk and the publish.
        let (_dir, shared) = sticky_shared_folder();
        let path = shared.join("secret.key");
        let planted = path.clone();
        crate::tests::with_hook(
            move |step| {
                if step == "resolved" {
                    let out = as_service("touch", &[&planted]);
                    assert!(out.status.success(), "{out:?}");
                }
            },
            || run_job(job, &path),
        );
        assert_eq!(owner(&path), (0, 0), "{job}: a name created after the walk got the file");
        assert_eq!(fs::read(&path).unwrap(), NEW, "{job}");
        // Planted before the walk, in a folder others may write.
        fs::remove_file(&path).unwrap();
        let out = as_service("touch", &[&path]);
        assert!(out.status.success(), "{out:?}");
        run_job(job, &path);
        assert_eq!(owner(&path), (0, 0), "{job}: a name planted in a shared folder got the file");
        // The service's own file in its own folder, but with a second name (a hard link).
        let (_dir, own) = sticky_shared_folder();
        fs::set_permissions(&own, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&own, Some(4321), Some(8765)).unwrap();
        let path = own.join("users.json");
        fs::write(&path, OLD).unwrap();
        std::os::unix::fs::chown(&path, Some(4321), Some(8765)).unwrap();
        fs::hard_link(&path, own.join("copy")).unwrap();
        run_job(job, &path);
        assert_eq!(owner(&path), (0, 0), "{job}: a hard-linked name got the file");
        // Its single-named file is kept as it was.
        fs::remove_file(own.join("copy")).unwrap();
        std::os::unix::fs::chown(&path, Some(4321), Some(8765)).unwrap();
        run_job(job, &path);
        assert_eq!(owner(&path), (4321, 8765), "{job}");
    }
    // The lock file is empty: it goes to the owner of the data file the walk found, even in a
    // shared folder (a root-owned 0600 lock would lock that owner out for good; an empty lock
    // gives nothing away, and a planter could pre-create the lock name anyway).
    let (_dir, shared) = sticky_shared_folder();
    let users = shared.join("users.json");
    let out = as_service("touch", &[&users]);
    assert!(out.status.success(), "{out:?}");
    let guard = ExclusiveLock::acquire(&users).unwrap();
    assert_eq!(owner(guard.path()), (4321, 8765), "the lock locks the data's owner out");
    assert_eq!(fs::metadata(guard.path()).unwrap().len(), 0);
}

/// Review: `create_new_like` took the owner of `like` with `fs::metadata`, following links
/// without the owner rule. A link planted by another user (uid 4321) to a third user's file
/// (uid 5555) made root's new file (a `.next` or retired key) that third user's.
#[test]
fn create_new_like_takes_no_owner_through_a_planted_link() {
    if !root_or_skip("create_new_like_takes_no_owner_through_a_planted_link") {
        return;
    }
    let owner = |p: &Path| {
        let meta = fs::symlink_metadata(p).unwrap();
        (meta.uid(), meta.gid())
    };
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.key");
    fs::write(&victim, OLD).unwrap();
    std::os::unix::fs::chown(&victim, Some(5555), Some(5555)).unwrap();
    let like = dir.path().join("secret.key");
    std::os::unix::fs::symlink(&victim, &like).unwrap();
    std::os::unix::fs::lchown(&like, Some(4321), Some(8765)).unwrap();
    let new = dir.path().join("secret.key.next");
    create_new_like(&new, NEW, &like).unwrap();
    assert_eq!(owner(&new), (0, 0), "the owner came through a planted link");
    // A file planted in a folder others may write gives nothing either.
    let (_shared_dir, shared) = sticky_shared_folder();
    let planted = shared.join("secret.key");
    let out = as_service("touch", &[&planted]);
    assert!(out.status.success(), "{out:?}");
    let new = shared.join("secret.key.next");
    create_new_like(&new, NEW, &planted).unwrap();
    assert_eq!(owner(&new), (0, 0), "the owner came from a planted file");
    // A link of root's to the service's key is followed.
    let key = dir.path().join("service.key");
    fs::write(&key, OLD).unwrap();
    std::os::unix::fs::chown(&key, Some(4321), Some(8765)).unwrap();
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(&key, &link).unwrap();
    let new = dir.path().join("link.key.next");
    create_new_like(&new, NEW, &link).unwrap();
    assert_eq!(owner(&new), (4321, 8765));
}

/// Review: the sweep after a write listed and removed by path. A folder of the path replaced
/// by a link after the walk made it sweep the folder the link points to (another writer's old
/// temporary file, kept there on purpose); it sweeps the folder written to, by descriptor.
#[test]
fn the_sweep_after_a_write_stays_in_the_folder_written_to() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let app = d.join("app");
    let elsewhere = d.join("elsewhere");
    fs::create_dir(&app).unwrap();
    fs::create_dir(&elsewhere).unwrap();
    let kept = elsewhere.join(".globo-Other1.tmp");
    fs::write(&kept, b"someone else's").unwrap();
    age_file(&kept, STALE_TEMP_AGE * 2);
    let ours = app.join(".globo-Ours01.tmp");
    fs::write(&ours, b"residue").unwrap();
    age_file(&ours, STALE_TEMP_AGE * 2);
    let path = app.join("users.json");
    let moved = d.join("moved");
    let (hook_app, hook_moved, hook_elsewhere) = (app.clone(), moved.clone(), elsewhere.clone());
    crate::tests::with_hook(
        move |step| {
            if step == "resolved" {
                fs::rename(&hook_app, &hook_moved).unwrap();
                std::os::unix::fs::symlink(&hook_elsewhere, &hook_app).unwrap();
            }
        },
        || write_atomic(&path, NEW).unwrap(),
    );
    assert_eq!(fs::read(moved.join("users.json")).unwrap(), NEW);
    assert!(kept.exists(), "the sweep followed the link to another folder");
    assert!(!moved.join(".globo-Ours01.tmp").exists(), "the folder written to was not swept");
}

/// Review: the walk took a link's owner from one `statat` and its text from a separate
/// `readlinkat` by name. A link swapped in between (root's link replaced by one of uid 4321's
/// pointing at root's file) was followed under the first link's owner. The owner and the text
/// now come from the same link, opened once (`O_PATH | O_NOFOLLOW`).
#[test]
fn a_link_swapped_while_it_is_read_is_judged_by_the_link_read() {
    if !root_or_skip("a_link_swapped_while_it_is_read_is_judged_by_the_link_read") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let shadow = d.join("shadow");
    fs::write(&shadow, b"root's secret").unwrap();
    let app = d.join("app");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("real.json"), OLD).unwrap();
    let link = app.join("users.json");
    std::os::unix::fs::symlink("real.json", &link).unwrap();
    let (hook_app, hook_shadow) = (app.clone(), shadow.clone());
    let mut swapped = false;
    let result = crate::tests::with_hook(
        move |step| {
            if step == "link found" && !swapped {
                swapped = true;
                let planted = hook_app.join("planted");
                std::os::unix::fs::symlink(&hook_shadow, &planted).unwrap();
                std::os::unix::fs::lchown(&planted, Some(4321), Some(8765)).unwrap();
                fs::rename(&planted, hook_app.join("users.json")).unwrap();
            }
        },
        || write_atomic(&link, NEW),
    );
    let err = crate::with_causes(&result.unwrap_err());
    assert!(err.contains("owner uid 4321"), "{err}");
    assert_eq!(fs::read(&shadow).unwrap(), b"root's secret");
}

/// Run by [`the_owner_rule_is_checked_before_the_final_folder_is_opened`] as uid 4321: with
/// `GLOBO_FS_TEST_OWNER_RULE_PATH` set, writes there and prints the error (run as it is, with
/// the variable unset, it does nothing).
#[test]
fn owner_rule_child() {
    let Some(path) = std::env::var_os("GLOBO_FS_TEST_OWNER_RULE_PATH") else { return };
    let outcome = match write_atomic(Path::new(&path), NEW) {
        Ok(()) => "written".to_string(),
        Err(e) => format!("{:#}", crate::Report::new(&e)),
    };
    writeln!(io::stdout(), "OUTCOME: {outcome}").unwrap();
}

/// Review: the walk opened the final folder for reading before it checked the owner rule of
/// the links followed. A link planted by uid 5555 into a folder the writer (uid 4321) may
/// search but not read was refused only by the failed open ("Permission denied"), after
/// opening whatever the link led to; the owner rule is now checked first, on the walk's
/// `O_PATH` descriptor, and names the link.
#[test]
fn the_owner_rule_is_checked_before_the_final_folder_is_opened() {
    use std::os::unix::fs::{PermissionsExt as _, chown, lchown, symlink};
    if !root_or_skip("the_owner_rule_is_checked_before_the_final_folder_is_opened") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::set_permissions(d, fs::Permissions::from_mode(0o711)).unwrap();
    // The service's folder, and a folder of its it may search and write but not list.
    let s = d.join("s");
    let f = d.join("f");
    for (folder, mode) in [(&s, 0o700), (&f, 0o300)] {
        fs::create_dir(folder).unwrap();
        chown(folder, Some(4321), Some(8765)).unwrap();
        fs::set_permissions(folder, fs::Permissions::from_mode(mode)).unwrap();
    }
    fs::write(f.join("users.json"), OLD).unwrap();
    chown(f.join("users.json"), Some(4321), Some(8765)).unwrap();
    // Uid 5555's link in the service's folder.
    let link = s.join("users.json");
    symlink("../f/users.json", &link).unwrap();
    lchown(&link, Some(5555), Some(5555)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=4321", "--regid=8765", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "temp_tests::owner_rule_child", "--test-threads=1", "--nocapture"])
        .env("GLOBO_FS_TEST_OWNER_RULE_PATH", &link)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let outcome =
        stdout.lines().find_map(|l| l.split_once("OUTCOME: ").map(|(_, o)| o)).unwrap_or_default();
    assert!(outcome.contains("owner uid 5555"), "{outcome:?} ({stdout})");
    assert_eq!(fs::read(f.join("users.json")).unwrap(), OLD);
}

/// A service's files in a folder its group may write (`root:app 0770`, `deploy:www 2775`):
/// root replacing them keeps the service as owner, and the lock it takes is the service's, so
/// the service can still read its data and take the lock afterwards. (A stricter rule once gave
/// such a file to root, mode 0600, and left a root-owned lock: the service was locked out.)
#[test]
fn root_keeps_a_service_owner_in_a_group_writable_folder_and_never_locks_it_out() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    if !root_or_skip("root_keeps_a_service_owner_in_a_group_writable_folder_and_never_locks_it_out")
    {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    fs::set_permissions(base.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for (folder_mode, folder_owner) in [(0o2770, (0, 8765)), (0o2775, (5555, 8765))] {
        let dir = base.path().join(format!("app-{folder_mode:o}"));
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(folder_owner.0), Some(folder_owner.1)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(folder_mode)).unwrap();
        let path = dir.join("users.json");
        fs::write(&path, OLD).unwrap();
        std::os::unix::fs::chown(&path, Some(4321), Some(8765)).unwrap();
        {
            let _lock = ExclusiveLock::acquire(&path).unwrap();
            write_atomic(&path, NEW).unwrap();
        }
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4321, 8765), "data file, folder {folder_mode:o}");
        let lock = fs::symlink_metadata(lock_path_for(&path)).unwrap();
        assert_eq!((lock.uid(), lock.gid()), (4321, 8765), "lock file, folder {folder_mode:o}");
        // The service reads its file and takes its lock (flock(1) as uid 4321).
        let out = as_service("cat", &[&path]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, NEW);
        let out = Command::new("setpriv")
            .args(["--reuid=4321", "--regid=8765", "--clear-groups", "flock", "-n"])
            .arg(lock_path_for(&path))
            .arg("true")
            .output()
            .unwrap();
        assert!(out.status.success(), "flock: {}", String::from_utf8_lossy(&out.stderr));
    }
}
