#![allow(clippy::unwrap_used)]
use super::*;

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

#[cfg(unix)]
#[test]
fn write_atomic_replaces_a_symlink_not_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    fs::write(&target, b"keep").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    write_atomic(&link, b"new").unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"keep");
    assert!(!fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
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
    assert!(err.to_string().contains("symbolic link"), "{err}");
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
