#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Crash safety of key rotation: the rotation is stopped after every step (the observer's
//! Break leaves exactly what a kill at that instant would), then every file must decrypt with
//! the key files on disk, and running the rotation again must complete it.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use globo_crypto::{
    CryptoError, Key, KeyFile, LoadedKeys, RotationStep, decrypt_file_to_memory, encrypt_file,
    next_key_path, rotate_key,
};

struct Setup {
    dir: tempfile::TempDir,
    key_path: PathBuf,
    files: Vec<(PathBuf, Vec<u8>)>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("secret.key");
    let key = Key::generate().unwrap();
    KeyFile::create_new(&key_path, &key).unwrap();
    let mut files = Vec::new();
    for (i, content) in [&b"{\"a\": 1}"[..], b"second", b""].iter().enumerate() {
        let plain = dir.path().join(format!("p{i}"));
        let enc = dir.path().join(format!("f{i}.enc"));
        std::fs::write(&plain, content).unwrap();
        encrypt_file(&key, &plain, &enc).unwrap();
        std::fs::remove_file(&plain).unwrap();
        files.push((enc, content.to_vec()));
    }
    Setup { dir, key_path, files }
}

fn paths(s: &Setup) -> Vec<PathBuf> {
    s.files.iter().map(|(p, _)| p.clone()).collect()
}

/// Every file decrypts with the keys on disk, as any command loads them.
fn assert_all_readable(s: &Setup) {
    let keys = LoadedKeys::load(&s.key_path).unwrap();
    for (path, content) in &s.files {
        let plain = decrypt_file_to_memory(keys.keyring(), path).unwrap();
        assert_eq!(plain.as_slice(), content.as_slice(), "{}", path.display());
    }
}

fn retired_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("secret.key.retired-"))
        .collect();
    v.sort();
    v
}

#[test]
fn uninterrupted_rotation() {
    let s = setup();
    let old = Key::from_file(&s.key_path).unwrap();
    let mut seen = Vec::new();
    let report = rotate_key(&s.key_path, &paths(&s), |step| {
        seen.push(step.name());
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(seen, ["next-key", "file-1", "file-2", "file-3", "retired", "installed", "done"]);
    assert!(!report.resumed);
    assert_eq!(report.reencrypted.len(), 3);
    let new = Key::from_file(&s.key_path).unwrap();
    assert!(!new.same_as(&old));
    assert!(!next_key_path(&s.key_path).exists());
    for (path, content) in &s.files {
        assert_eq!(decrypt_file_to_memory(&new, path).unwrap().as_slice(), content.as_slice());
        assert!(decrypt_file_to_memory(&old, path).is_err());
    }
    let retired = retired_files(s.dir.path());
    assert_eq!(retired, vec![report.retired_key.clone().unwrap()]);
    assert!(Key::from_file(&retired[0]).unwrap().same_as(&old));
}

#[test]
fn interrupted_after_each_step_stays_readable_and_completes_on_rerun() {
    let steps = ["next-key", "file-1", "file-2", "file-3", "retired", "installed", "done"];
    for stop_at in steps {
        let s = setup();
        let old = Key::from_file(&s.key_path).unwrap();
        let err = rotate_key(&s.key_path, &paths(&s), |step| {
            if step.name() == stop_at { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap_err();
        assert!(matches!(err, CryptoError::RotationInterrupted { ref step } if step == stop_at));
        assert_all_readable(&s);

        let report = rotate_key(&s.key_path, &paths(&s), |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(report.resumed, stop_at != "done", "{stop_at}");
        assert!(!next_key_path(&s.key_path).exists(), "{stop_at}");
        let new = Key::from_file(&s.key_path).unwrap();
        // A rerun after "done" is a second, complete rotation: still a new key.
        assert!(!new.same_as(&old), "{stop_at}");
        for (path, content) in &s.files {
            let plain = decrypt_file_to_memory(&new, path).unwrap();
            assert_eq!(plain.as_slice(), content.as_slice(), "{stop_at}");
        }
        // The old key was retired exactly once (a second rotation after "done" retires the
        // intermediate key too).
        let retired = retired_files(s.dir.path());
        let expected = if stop_at == "done" { 2 } else { 1 };
        assert_eq!(retired.len(), expected, "{stop_at}: {retired:?}");
        assert!(retired.iter().any(|p| Key::from_file(p).unwrap().same_as(&old)), "{stop_at}");
    }
}

#[test]
fn undecryptable_file_stops_before_any_change() {
    let s = setup();
    let stranger = s.dir.path().join("other.enc");
    let plain = s.dir.path().join("o");
    std::fs::write(&plain, b"x").unwrap();
    encrypt_file(&Key::generate().unwrap(), &plain, &stranger).unwrap();
    let before = std::fs::read(&s.key_path).unwrap();
    let mut files = paths(&s);
    files.push(stranger.clone());
    let err = rotate_key(&s.key_path, &files, |_| ControlFlow::Continue(())).unwrap_err();
    assert!(matches!(err, CryptoError::RotationUndecryptable { ref path } if *path == stranger));
    assert_eq!(std::fs::read(&s.key_path).unwrap(), before);
    assert!(!next_key_path(&s.key_path).exists());
    assert!(retired_files(s.dir.path()).is_empty());

    let missing = s.dir.path().join("missing.enc");
    let err = rotate_key(&s.key_path, &[missing], |_| ControlFlow::Continue(())).unwrap_err();
    assert!(matches!(err, CryptoError::CiphertextNotFound { .. }));
    assert!(!next_key_path(&s.key_path).exists());
}

#[test]
fn loaded_keys_during_rotation_use_the_next_key_first() {
    let s = setup();
    let _ = rotate_key(&s.key_path, &paths(&s), |step| match step {
        RotationStep::FileReencrypted { index: 1, .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    });
    let keys = LoadedKeys::load(&s.key_path).unwrap();
    assert!(keys.rotation_in_progress());
    let next = Key::from_file(&next_key_path(&s.key_path)).unwrap();
    assert!(keys.keyring().primary().same_as(&next));
    assert_eq!(keys.files().len(), 2);
}

#[cfg(unix)]
#[test]
fn a_rotation_through_symbolic_links_replaces_the_shared_key_and_files() {
    use std::os::unix::fs::symlink;
    // The deployment: secret.key and f0.enc in `app/` are links into `shared/`.
    let s = setup();
    let app = s.dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let key_link = app.join("secret.key");
    symlink(&s.key_path, &key_link).unwrap();
    let (shared_file, content) = s.files[0].clone();
    let file_link = app.join("config.enc");
    symlink(&shared_file, &file_link).unwrap();
    let old = Key::from_file(&s.key_path).unwrap();

    let report =
        rotate_key(&key_link, std::slice::from_ref(&file_link), |_| ControlFlow::Continue(()))
            .unwrap();
    for link in [&key_link, &file_link] {
        assert!(std::fs::symlink_metadata(link).unwrap().file_type().is_symlink(), "detached");
    }
    // The shared key is the new one and opens the shared file; the old key is retired beside it.
    let new = Key::from_file(&s.key_path).unwrap();
    assert!(!new.same_as(&old), "the shared key kept the old key");
    assert_eq!(decrypt_file_to_memory(&new, &shared_file).unwrap().as_slice(), content);
    assert_eq!(retired_files(s.dir.path()), [report.retired_key.unwrap()]);
    assert!(!next_key_path(&s.key_path).exists() && !next_key_path(&key_link).exists());
    assert_eq!(std::fs::read_dir(&app).unwrap().count(), 2, "only the two links in app/");
}

/// `app config show` while `app config rotate-key` runs: every read of a reader (the library
/// call `show` makes) succeeds, whatever the instant it loads the keys and opens the file.
#[test]
fn readers_never_fail_while_rotations_run() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const ROTATIONS: usize = 150;
    let s = setup();
    let (file, content) = s.files[0].clone();
    let done = AtomicBool::new(false);
    let (reads, failures) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let read = LoadedKeys::read_with(&s.key_path, |keys| {
                        decrypt_file_to_memory(keys.keyring(), &file)
                    });
                    match read {
                        Ok(plain) => assert_eq!(plain.as_slice(), content.as_slice()),
                        Err(CryptoError::Decryption) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for _ in 0..ROTATIONS {
            let report =
                rotate_key(&s.key_path, std::slice::from_ref(&file), |_| ControlFlow::Continue(()))
                    .unwrap();
            // Keep the folder small: the rotation lists it for an earlier retired key.
            std::fs::remove_file(report.retired_key.unwrap()).unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    let reads = reads.into_inner();
    assert!(reads > ROTATIONS, "the readers hardly ran ({reads} reads)");
    assert_eq!(failures.into_inner(), 0, "reads that failed during rotations, of {reads}");
}

/// The deterministic form of the race above: a whole rotation runs between the moment the
/// reader loads the keys and the moment it opens the file (inside the first call of the
/// reader), so a reader that loads the keys once fails every time.
#[test]
fn a_read_that_a_whole_rotation_overtakes_retries_with_the_new_keys() {
    use std::cell::Cell;
    let s = setup();
    let (file, content) = s.files[0].clone();
    let calls = Cell::new(0);
    let plain = LoadedKeys::read_with(&s.key_path, |keys| {
        calls.set(calls.get() + 1);
        if calls.get() == 1 {
            rotate_key(&s.key_path, std::slice::from_ref(&file), |_| ControlFlow::Continue(()))
                .unwrap();
        }
        decrypt_file_to_memory(keys.keyring(), &file)
    })
    .unwrap();
    assert_eq!(plain.as_slice(), content.as_slice());
    assert_eq!(calls.get(), 2);
}

/// Whether this test runs as root (CI does; with CI=true anything else is a failure).
#[cfg(unix)]
fn root_or_skip(test: &str) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() == Some(0) {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{test} needs root (CI runs as root)");
    false
}

/// A key link that may not be followed (it belongs to another user than the key's owner) is
/// refused before anything is written: no `.next` beside the link or the key, no file
/// re-encrypted, and the shared key still opens every file.
#[cfg(unix)]
#[test]
fn a_rotation_through_a_refused_key_link_changes_nothing() {
    if !root_or_skip("a_rotation_through_a_refused_key_link_changes_nothing") {
        return;
    }
    let s = setup();
    let app = s.dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let key_link = app.join("secret.key");
    std::os::unix::fs::symlink(&s.key_path, &key_link).unwrap();
    std::os::unix::fs::lchown(&key_link, Some(4321), Some(8765)).unwrap();
    let before: Vec<Vec<u8>> = s.files.iter().map(|(p, _)| std::fs::read(p).unwrap()).collect();

    let err = rotate_key(&key_link, &paths(&s), |_| ControlFlow::Continue(())).unwrap_err();
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(e) = source {
        chain = format!("{chain}: {e}");
        source = e.source();
    }
    assert!(chain.contains("owner uid 4321"), "{chain}");
    let after: Vec<Vec<u8>> = s.files.iter().map(|(p, _)| std::fs::read(p).unwrap()).collect();
    assert_eq!(before, after, "a file was re-encrypted");
    assert_all_readable(&s);
    assert!(!next_key_path(&s.key_path).exists() && !next_key_path(&key_link).exists());
    assert_eq!(std::fs::read_dir(&app).unwrap().count(), 1, "only the link in app/");
}

/// A rotation run as root on a service's key (uid 4321, gid 8765): the `.next` key it stages
/// and the retired key it keeps belong to the service too, so after a rotation interrupted
/// there the service can still read every key file.
#[cfg(unix)]
#[test]
fn new_key_files_of_a_rotation_run_as_root_belong_to_the_key_owner() {
    use std::os::unix::fs::MetadataExt as _;
    if !root_or_skip("new_key_files_of_a_rotation_run_as_root_belong_to_the_key_owner") {
        return;
    }
    let s = setup();
    std::os::unix::fs::chown(&s.key_path, Some(4321), Some(8765)).unwrap();
    let owner = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    // Interrupted right after staging the next key.
    let err = rotate_key(&s.key_path, &paths(&s), |step| match step.name().as_str() {
        "next-key" => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .unwrap_err();
    assert!(matches!(err, CryptoError::RotationInterrupted { .. }), "{err}");
    assert_eq!(owner(&next_key_path(&s.key_path)), (4321, 8765), "secret.key.next");
    let report = rotate_key(&s.key_path, &paths(&s), |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(owner(&report.retired_key.unwrap()), (4321, 8765), "the retired key");
    assert_eq!(owner(&s.key_path), (4321, 8765), "secret.key");
    assert_all_readable(&s);
}
