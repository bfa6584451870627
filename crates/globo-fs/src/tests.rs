#![allow(clippy::unwrap_used)]
use super::*;
#[cfg(unix)]
use std::os::unix::fs::FileTypeExt as _;

#[test]
fn write_atomic_replaces_and_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.json");
    write_atomic(&path, b"one").unwrap();
    write_atomic(&path, b"two").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"two");
    assert_eq!(loose_permissions(&path).unwrap(), None);
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn create_new_refuses_existing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    create_new(&path, b"first").unwrap();
    let err = create_new(&path, b"second").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(fs::read(&path).unwrap(), b"first");
}

/// The `.globo-*` temporary entries left in `dir`.
#[cfg(unix)]
fn temp_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".globo-"))
        .collect()
}

/// Every replacing writer: unnamed and named temporary files, whole and streamed.
#[cfg(unix)]
fn replace_with(job: usize, path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    match job {
        0 => write_atomic(path, bytes),
        1 => write_with(path, bytes, temp::Publish::Replace, false).map(drop),
        2 | 3 => {
            let mut file = AtomicFile::create_with(path, job == 2)?;
            file.write_all(bytes).unwrap();
            file.commit()
        }
        _ => unreachable!(),
    }
}

#[cfg(unix)]
#[test]
fn a_replacing_write_through_links_replaces_the_target_in_its_folder_and_keeps_the_links() {
    use std::os::unix::fs::symlink;
    for job in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let (app, shared) = (dir.path().join("app"), dir.path().join("shared"));
        fs::create_dir(&app).unwrap();
        fs::create_dir(&shared).unwrap();
        let target = shared.join("secret.key");
        fs::write(&target, b"old").unwrap();
        // app/secret.key -> ../shared/hop (relative) -> shared/secret.key (absolute).
        symlink(&target, shared.join("hop")).unwrap();
        let link = app.join("secret.key");
        symlink("../shared/hop", &link).unwrap();
        replace_with(job, &link, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new", "job {job}: the target was not replaced");
        for l in [&link, &shared.join("hop")] {
            assert!(fs::symlink_metadata(l).unwrap().file_type().is_symlink(), "job {job}");
        }
        assert_eq!(loose_permissions(&target).unwrap(), None);
        assert!(temp_names(&app).is_empty() && temp_names(&shared).is_empty(), "job {job}");
        assert_eq!(fs::read_dir(&app).unwrap().count(), 1, "job {job}");
    }
}

#[cfg(unix)]
#[test]
fn a_write_through_a_dangling_link_a_loop_or_a_link_to_a_non_file_is_refused() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    symlink(d.join("nowhere"), d.join("dangling")).unwrap();
    symlink(d.join("loop-b"), d.join("loop-a")).unwrap();
    symlink(d.join("loop-a"), d.join("loop-b")).unwrap();
    fs::create_dir(d.join("folder")).unwrap();
    symlink(d.join("folder"), d.join("to-folder")).unwrap();
    let fifo = d.join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    symlink(&fifo, d.join("to-fifo")).unwrap();
    symlink("/dev/null", d.join("to-device")).unwrap();
    let cases = [
        ("dangling", "does not exist"),
        ("loop-a", "chain of more than 40"),
        ("to-folder", "not a regular file"),
        ("to-fifo", "not a regular file"),
        ("to-device", "not a regular file"),
    ];
    for (name, why) in cases {
        for job in 0..4 {
            let err = replace_with(job, &d.join(name), b"new").unwrap_err();
            let message = crate::with_causes(&err);
            assert!(message.contains(name) && message.contains(why), "{name} {job}: {message}");
            assert!(fs::symlink_metadata(d.join(name)).unwrap().file_type().is_symlink());
        }
    }
    assert!(!d.join("nowhere").exists(), "a file was created through a dangling link");
    assert_eq!(fs::read_dir(d.join("folder")).unwrap().count(), 0);
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(temp_names(d).is_empty());
}

#[cfg(unix)]
#[test]
fn the_lock_through_a_link_excludes_the_lock_on_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let (app, shared) = (dir.path().join("app"), dir.path().join("shared"));
    fs::create_dir(&app).unwrap();
    fs::create_dir(&shared).unwrap();
    let target = shared.join("users.json");
    fs::write(&target, b"{}").unwrap();
    let link = app.join("users.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let guard = ExclusiveLock::acquire(&link).unwrap();
    assert_eq!(guard.path(), shared.join("users.json.lock"));
    let other = File::open(lock_path_for(&target)).unwrap();
    assert!(other.try_lock().is_err(), "the link's lock must exclude the target's");
    drop(guard);
    assert!(other.try_lock().is_ok());
    assert!(!app.join("users.json.lock").exists());
}

#[cfg(unix)]
#[test]
fn loose_permissions_reports_group_and_other_bits() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    fs::write(&path, b"x").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(loose_permissions(&path).unwrap(), Some(0o044));
}

#[cfg(unix)]
#[test]
fn a_symlinked_lock_file_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let target = dir.path().join("elsewhere");
    std::os::unix::fs::symlink(&target, lock_path_for(&path)).unwrap();
    let err = ExclusiveLock::acquire(&path).unwrap_err();
    assert!(crate::with_causes(&err).contains("symbolic link"), "{err}");
    assert!(!target.exists(), "the link's target must not be created");
}

#[test]
fn lock_serialises_holders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let guard = ExclusiveLock::acquire(&path).unwrap();
    assert_eq!(guard.path(), dir.path().join("users.json.lock"));
    let other = File::options().read(true).write(true).open(guard.path()).unwrap();
    assert!(other.try_lock().is_err(), "a second holder must be excluded");
    drop(guard);
    assert!(other.try_lock().is_ok());
}

/// A test's action at a step between a walk and the act on its result.
type Hook = Box<dyn FnMut(&str)>;

thread_local! {
    /// What [`run_hook`] runs on this test thread, with the step it was called at.
    static HOOK: std::cell::RefCell<Option<Hook>> =
        const { std::cell::RefCell::new(None) };
}

/// Called by `link::test_hook` between a walk and the act on its result.
pub(crate) fn run_hook(step: &str) {
    HOOK.with(|hook| {
        if let Some(hook) = hook.borrow_mut().as_mut() {
            hook(step);
        }
    });
}

/// Runs `job` with `hook` installed on this thread.
pub(crate) fn with_hook<T>(hook: impl FnMut(&str) + 'static, job: impl FnOnce() -> T) -> T {
    HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
    let out = job();
    HOOK.with(|h| *h.borrow_mut() = None);
    out
}

/// Review: `RemovableFile::remove` checked the file's identity but not its names again. A hard
/// link added after the check (the caller refuses a hard-linked plaintext at `open`) would
/// leave the content reachable after the removal reported success; the removal is refused.
#[test]
fn a_hard_link_added_after_open_stops_the_removal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    fs::write(&path, b"plain").unwrap();
    let removable = crate::RemovableFile::open(&path).unwrap();
    assert_eq!(removable.links(), 1);
    fs::hard_link(&path, dir.path().join("kept")).unwrap();
    let err = crate::with_causes(&removable.remove().unwrap_err());
    assert!(err.contains("another name"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"plain");
    // One with a single name again is removed.
    fs::remove_file(dir.path().join("kept")).unwrap();
    crate::RemovableFile::open(&path).unwrap().remove().unwrap();
    assert!(!path.exists());
}
