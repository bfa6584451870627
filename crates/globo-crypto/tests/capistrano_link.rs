//! Review: a rotation through `secret.key -> ../../shared/secret.key` (a Capistrano layout),
//! run from the release folder. The link resolved to `./shared/secret.key`, so the rotation
//! loaded and wrote a file beside the link instead of the shared key.
//!
//! This test changes the current folder, so it lives alone in this test binary.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::ControlFlow;
use std::path::Path;

use globo_crypto::{Key, KeyFile};

#[test]
fn a_rotation_through_a_link_going_up_two_folders_replaces_the_shared_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let release = root.join("app/releases/1");
    let shared = root.join("app/shared");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::create_dir_all(&shared).unwrap();
    let old = Key::generate().unwrap();
    KeyFile::create_new(&shared.join("secret.key"), &old).unwrap();
    std::os::unix::fs::symlink("../../shared/secret.key", release.join("secret.key")).unwrap();
    // A decoy where the wrong answer points.
    std::fs::create_dir_all(release.join("shared")).unwrap();
    let decoy = Key::generate().unwrap();
    KeyFile::create_new(&release.join("shared/secret.key"), &decoy).unwrap();
    let decoy_before = std::fs::read(release.join("shared/secret.key")).unwrap();
    let shared_before = std::fs::read(shared.join("secret.key")).unwrap();
    std::env::set_current_dir(&release).unwrap();

    globo_crypto::rotate_key(Path::new("secret.key"), &[], |_| ControlFlow::Continue(())).unwrap();

    // Compared without printing: the files hold keys.
    assert!(
        std::fs::read(shared.join("secret.key")).unwrap() != shared_before,
        "the shared key was not replaced"
    );
    assert!(
        std::fs::read(release.join("shared/secret.key")).unwrap() == decoy_before,
        "the decoy beside the link was written"
    );
    assert!(
        std::fs::symlink_metadata(release.join("secret.key")).unwrap().file_type().is_symlink()
    );
    let names: Vec<_> = std::fs::read_dir(&release)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains("retired") || n.ends_with(".next")), "{names:?}");
}
