//! Review B4: the key file's type is checked on the file opened, not on the path before
//! opening it. A FIFO swapped in between a check by path and the open blocked the open forever.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use globo_crypto::{Key, KeyFile};

fn mkfifo(path: &Path) {
    assert!(std::process::Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// A thread swaps `secret.key` between a regular file and a FIFO with no writer (hard links
/// renamed into place) while loads run: each load reads the key or refuses the FIFO, and none
/// blocks. The whole run must end within a minute (a hang guard, not a timing assertion).
#[test]
fn a_fifo_swapped_in_under_the_key_file_is_refused_never_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let regular = dir.path().join("regular.key");
    let fifo = dir.path().join("fifo.key");
    let path = dir.path().join("secret.key");
    KeyFile::create_new(&regular, &Key::generate().unwrap()).unwrap();
    mkfifo(&fifo);
    std::fs::hard_link(&regular, &path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, dir) = (Arc::clone(&stop), dir.path().to_path_buf());
        let (regular, fifo, path) = (regular.clone(), fifo.clone(), path.clone());
        std::thread::spawn(move || {
            let staged = dir.join("staged");
            while !stop.load(Ordering::Relaxed) {
                for source in [&fifo, &regular] {
                    std::fs::hard_link(source, &staged).unwrap();
                    std::fs::rename(&staged, &path).unwrap();
                }
            }
        })
    };
    let (done, wait) = std::sync::mpsc::channel();
    let loads = std::thread::spawn(move || {
        let (mut read, mut refused) = (0, 0);
        for _ in 0..20_000 {
            match KeyFile::load(&path) {
                Ok(_) => read += 1,
                Err(error) => {
                    let text = globo_fs::with_causes(&error);
                    assert!(text.contains("not a regular file"), "{text}");
                    refused += 1;
                }
            }
        }
        let _ = done.send((read, refused));
    });
    let (read, refused) = wait.recv_timeout(Duration::from_secs(60)).expect("a load blocked");
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    loads.join().unwrap();
    assert_eq!(read + refused, 20_000);
}
