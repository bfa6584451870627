//! Review: `..` in a relative path or in a link's text. The walk's path for messages and for
//! [`globo_fs::resolve_link`] popped `..` itself (`PathBuf::pop` on `..` succeeds and leaves
//! an empty path), so `../../x` became `x`, and a link `secret.key -> ../../shared/secret.key`
//! (a Capistrano layout) resolved to `./shared/secret.key`.
//!
//! These tests change the current folder, so they live alone in this test binary.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

#[test]
fn parent_components_in_a_relative_path_and_in_a_link_text_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let release = root.join("app/releases/1");
    let shared = root.join("app/shared");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("secret.key"), b"old").unwrap();
    std::os::unix::fs::symlink("../../shared/secret.key", release.join("secret.key")).unwrap();
    // A decoy where the wrong answer points.
    std::fs::create_dir_all(release.join("shared")).unwrap();
    std::fs::write(release.join("shared/secret.key"), b"decoy").unwrap();
    std::env::set_current_dir(&release).unwrap();

    // A relative start going up, to a link.
    std::os::unix::fs::symlink("secret.key", shared.join("alias.key")).unwrap();
    assert_eq!(
        globo_fs::resolve_link(Path::new("../../shared/alias.key")).unwrap(),
        PathBuf::from("../../shared/secret.key")
    );
    // A link whose text goes up, reached by a relative path.
    let resolved = globo_fs::resolve_link(Path::new("secret.key")).unwrap();
    assert_eq!(resolved, PathBuf::from("../../shared/secret.key"));
    assert_eq!(std::fs::canonicalize(&resolved).unwrap(), shared.join("secret.key"));
    // Down and up again: `x/..` is the folder itself.
    assert_eq!(
        globo_fs::resolve_link(Path::new("shared/../secret.key")).unwrap(),
        PathBuf::from("../../shared/secret.key")
    );
    // Reached by an absolute path.
    assert_eq!(
        globo_fs::resolve_link(&release.join("secret.key")).unwrap(),
        shared.join("secret.key")
    );
    // The write replaces the shared file, never the decoy.
    globo_fs::write_atomic(Path::new("secret.key"), b"new").unwrap();
    assert_eq!(std::fs::read(shared.join("secret.key")).unwrap(), b"new");
    assert_eq!(std::fs::read(release.join("shared/secret.key")).unwrap(), b"decoy");
}
