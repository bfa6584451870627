//! globo-crypto starts a second thread only when built with its `parallel` feature, on every
//! route that can take one: `encrypt_file` reading a large input from a FIFO, and `encrypt`,
//! `decrypt` and `decrypt_file_to_memory` on 2 MiB. Alone in its test binary, and one test
//! function, so no other test's threads are counted. `scripts/test` runs globo-crypto's tests
//! with and without the feature, so both ways are checked in CI.
//!
//! Linux only: the thread count is read from `/proc/self/status`, the FIFO made with `mkfifo`.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use globo_crypto::{Key, decrypt, decrypt_file_to_memory, encrypt, encrypt_file};

/// This process's threads, from `/proc/self/status`.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line["Threads:".len()..].trim().parse().unwrap()
}

/// This process's thread ids, from `/proc/self/task`.
fn thread_ids() -> std::collections::BTreeSet<String> {
    let entries = std::fs::read_dir("/proc/self/task").unwrap();
    entries.map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
}

/// Whether a thread other than those alive (or still exiting) before and a sampler is seen
/// while `call` runs, `rounds` times. Threads are told apart by id, so one that a previous call
/// joined but the kernel still lists is not taken for a new one. The sampler reads the ids
/// without pause; with the feature, the calls are repeated until it has seen the second thread,
/// at most `rounds` times, as a call is over in milliseconds. (How many at once is not asked: a
/// thread the previous round joined may still be listed beside the next round's.)
fn another_thread_seen(rounds: usize, call: &dyn Fn()) -> bool {
    let before = thread_ids();
    let (stop, seen) = (AtomicBool::new(false), AtomicBool::new(false));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // "<pid>/task/<tid>": this sampler's own id.
            let me = std::fs::read_link("/proc/thread-self").unwrap();
            let me = me.file_name().unwrap().to_str().unwrap().to_owned();
            while !stop.load(Ordering::Acquire) {
                if thread_ids().iter().any(|t| !before.contains(t) && *t != me) {
                    seen.store(true, Ordering::Release);
                }
            }
        });
        for _ in 0..rounds {
            call();
            if seen.load(Ordering::Acquire) {
                break;
            }
        }
        stop.store(true, Ordering::Release);
    });
    seen.into_inner()
}

#[test]
fn a_second_thread_only_with_the_parallel_feature() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("plain.fifo");
    let enc = dir.path().join("config.enc");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let key = Key::generate().unwrap();
    let data = globo_testkit::random_bytes(3 << 20);

    // The feeder writes 2 MiB (more than the pipe and the pipeline's buffers hold), so when
    // its write returns, the encryption is reading the FIFO and cannot end before the FIFO is
    // closed: the count taken then includes every thread the encryption runs on.
    let (counted_tx, counted_rx) = std::sync::mpsc::channel();
    let before = threads();
    let feeder = {
        let (fifo, data) = (fifo.clone(), data.clone());
        std::thread::spawn(move || {
            let mut out = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            out.write_all(&data[..2 << 20]).unwrap();
            counted_tx.send(threads()).unwrap();
            out.write_all(&data[2 << 20..]).unwrap();
        })
    };
    encrypt_file(&key, &fifo, &enc).unwrap();
    feeder.join().unwrap();
    let during = counted_rx.recv().unwrap();

    // `before` counts this thread; `during` adds the feeder and the encryption's threads.
    let expected = if cfg!(feature = "parallel") { 2 } else { 1 };
    let added = during as isize - before as isize;
    assert_eq!(added, expected, "threads: {before} before, {during} during");
    assert!(decrypt_file_to_memory(&key, &enc).unwrap().as_slice() == data.as_slice());

    // In memory and from a file, 2 MiB (above the 1 MiB limit): another thread with the
    // feature (seen at least once), none without it (in any call).
    let data = &data[..2 << 20];
    let token = encrypt(&key, data).unwrap();
    let file = dir.path().join("two.enc");
    std::fs::write(&file, &token).unwrap();
    let (expected, rounds) = if cfg!(feature = "parallel") { (true, 200) } else { (false, 3) };
    let cases: [(&str, &dyn Fn()); 3] = [
        ("encrypt", &|| assert!(encrypt(&key, data).is_ok())),
        ("decrypt", &|| assert!(decrypt(&key, &token).unwrap().as_slice() == data)),
        ("decrypt_file_to_memory", &|| {
            assert!(decrypt_file_to_memory(&key, &file).unwrap().as_slice() == data);
        }),
    ];
    for (name, call) in cases {
        assert_eq!(another_thread_seen(rounds, call), expected, "{name}");
    }
}
