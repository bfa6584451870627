//! globo-crypto starts a second thread only when built with its `parallel` feature: the
//! thread count of this process is read while `encrypt_file` is in the middle of a large input
//! it reads from a FIFO. Alone in its test binary, so no other test's threads are counted.
//! `scripts/test` runs globo-crypto's tests with and without the feature, so both ways are
//! checked in CI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;

use globo_crypto::{Key, decrypt_file_to_memory, encrypt_file};

/// This process's threads, from `/proc/self/status`.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line["Threads:".len()..].trim().parse().unwrap()
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
}
