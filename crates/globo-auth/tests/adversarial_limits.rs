//! Hostile users files: larger than the bound, endless, or not a file at all. Each is refused
//! with a clear error, without exhausting memory, and is never overwritten.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use globo_auth::{AuthError, Profile, UserStore};
use secrecy::SecretString;

fn password() -> SecretString {
    SecretString::from("a perfectly fine passphrase")
}

#[test]
fn an_oversized_users_file_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    // Sparse: MAX_FILE_LEN + 1 bytes of NULs on disk at no cost.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(UserStore::MAX_FILE_LEN + 1).unwrap();
    drop(file);
    let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
    for result in [
        store.usernames().map(drop),
        store.register("alice", &password()),
        store.verify("alice", &password()).map(drop),
    ] {
        match result {
            Err(AuthError::UsersFileTooLarge { path: p, max }) => {
                assert_eq!(p, path);
                assert_eq!(max, UserStore::MAX_FILE_LEN);
            }
            other => panic!("expected UsersFileTooLarge, got {other:?}"),
        }
    }
    let message = store.usernames().unwrap_err().to_string();
    assert!(message.contains("larger than 67108864 bytes"), "{message}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), UserStore::MAX_FILE_LEN + 1);
}

#[test]
fn a_users_file_at_the_bound_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    // `{}` padded with whitespace to exactly the bound: valid, and accepted.
    let mut bytes = vec![b' '; UserStore::MAX_FILE_LEN as usize];
    bytes[0] = b'{';
    bytes[1] = b'}';
    std::fs::write(&path, &bytes).unwrap();
    drop(bytes);
    let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
    assert!(store.usernames().unwrap().is_empty());
}

#[cfg(unix)]
#[test]
fn a_device_or_fifo_users_file_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
    let refused = |store: &UserStore| {
        for result in [store.usernames().map(drop), store.register("alice", &password())] {
            let error = result.unwrap_err();
            assert!(matches!(error, AuthError::File { .. }), "{error:?}");
            let cause = globo_auth::with_causes(std::error::Error::source(&error).unwrap());
            assert!(cause.contains("not a regular file"), "{cause}");
        }
    };
    // Endless: a link to /dev/zero.
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    refused(&store);
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    // A FIFO with no writer: opening it would block forever.
    std::fs::remove_file(&path).unwrap();
    let status = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success());
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        refused(&store);
        let _ = done.send(());
    });
    wait.recv_timeout(std::time::Duration::from_secs(30)).expect("blocked on a FIFO");
}

#[test]
fn a_folder_where_the_users_file_should_be_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    std::fs::create_dir(&path).unwrap();
    let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
    let error = store.register("alice", &password()).unwrap_err();
    assert!(matches!(error, AuthError::File { .. }), "{error:?}");
    assert!(path.is_dir());
}

/// Review B4: the users file's type is checked on the file opened, not on the path before
/// opening it. A thread swaps `users.json` between a regular file and a FIFO with no writer
/// (hard links renamed into place) while reads run: each read lists the users or refuses the
/// FIFO, and none blocks (the run must end within a minute: a hang guard, not a timing
/// assertion).
#[cfg(unix)]
#[test]
fn a_fifo_swapped_in_under_the_users_file_is_refused_never_waited_for() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let regular = dir.path().join("regular.json");
    let fifo = dir.path().join("fifo.json");
    let path = dir.path().join("users.json");
    std::fs::write(&regular, b"{}").unwrap();
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    std::fs::hard_link(&regular, &path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, staged) = (Arc::clone(&stop), dir.path().join("staged"));
        let (regular, fifo, path) = (regular.clone(), fifo.clone(), path.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for source in [&fifo, &regular] {
                    std::fs::hard_link(source, &staged).unwrap();
                    std::fs::rename(&staged, &path).unwrap();
                }
            }
        })
    };
    let (done, wait) = std::sync::mpsc::channel();
    let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
    let reads = std::thread::spawn(move || {
        for _ in 0..20_000 {
            if let Err(error) = store.usernames() {
                assert!(matches!(error, AuthError::File { .. }), "{error:?}");
                let cause = globo_auth::with_causes(std::error::Error::source(&error).unwrap());
                assert!(cause.contains("not a regular file"), "{cause}");
            }
        }
        let _ = done.send(());
    });
    wait.recv_timeout(std::time::Duration::from_secs(60)).expect("a read blocked");
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    reads.join().unwrap();
}
