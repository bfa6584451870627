//! `read_small`: the bounded reader for small files (a `.env`, a key file), including pipes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Write as _};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use globo_fs::{FsError, read_small};

/// Runs `read_small` on another thread; panics if it has not returned within a minute (a hang
/// guard, not a timing assertion).
fn read_guarded(path: &Path, max: u64) -> Result<Option<Vec<u8>>, FsError> {
    let path = path.to_path_buf();
    let (done, wait) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(read_small(&path, max).map(|b| b.map(|b| b.to_vec())));
    });
    wait.recv_timeout(Duration::from_secs(60)).expect("read_small hung")
}

#[test]
fn reads_a_regular_file_and_reports_a_missing_one_as_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    assert!(read_small(&path, 16).unwrap().is_none());
    std::fs::write(&path, b"A=1\n").unwrap();
    assert_eq!(read_small(&path, 4).unwrap().unwrap().as_slice(), b"A=1\n");
    let error = read_small(&path, 3).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidData);
    assert!(globo_fs::with_causes(&error).contains("larger than 3 bytes"), "{error}");
    assert!(!globo_fs::with_causes(&error).contains("A=1"), "{error}");
}

#[test]
fn a_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = read_small(dir.path(), 16).unwrap_err();
    assert!(globo_fs::with_causes(&error).contains("folder"), "{error}");
}

#[cfg(unix)]
#[test]
fn an_endless_device_stops_at_the_bound() {
    let error = read_guarded(Path::new("/dev/zero"), 1024).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidData);
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
}

/// A FIFO nobody writes to: a plain open() would wait for a writer forever.
#[cfg(unix)]
#[test]
fn a_fifo_without_a_writer_is_refused_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    mkfifo(&path);
    let error = read_guarded(&path, 1024).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::WouldBlock, "{error}");
    let message = globo_fs::with_causes(&error);
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("no writer"), "{message}");
}

/// A FIFO with a writer (open before the read starts, writing in pieces) is read to its end,
/// whether the reader finds data already there or has to wait for it.
#[cfg(unix)]
#[test]
fn a_fifo_with_a_writer_is_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    mkfifo(&path);
    // O_RDWR opens a FIFO without waiting for a partner (Linux), so the writer exists before
    // the read starts, as with `<(cmd)`. `_keep` (read-only) keeps the written bytes alive
    // even if the writer is done before the reader opens the FIFO.
    let mut fifo = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let _keep = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new().read(true).custom_flags(o_nonblock()).open(&path).unwrap()
    };
    let writer = std::thread::spawn(move || {
        fifo.write_all(b"A=1\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        fifo.write_all(b"B=2\n").unwrap();
        // Dropping the only write end ends the data.
    });
    let bytes = read_guarded(&path, 1024).unwrap().unwrap();
    writer.join().unwrap();
    assert_eq!(bytes, b"A=1\nB=2\n");
}

#[cfg(unix)]
fn o_nonblock() -> i32 {
    rustix::fs::OFlags::NONBLOCK.bits() as i32
}

/// Review B5: a regular file is read into one buffer allocated at its size (plus one byte to
/// see the end), never reallocated: a reallocation frees a copy of the secret unwiped. The
/// capacity is exactly the first allocation's only if no reallocation happened.
#[test]
fn a_regular_file_is_read_into_one_buffer_of_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.key");
    let content = vec![b'k'; 5000];
    std::fs::write(&path, &content).unwrap();
    let bytes = read_small(&path, 1024 * 1024).unwrap().unwrap();
    assert_eq!(bytes.as_slice(), content.as_slice());
    assert_eq!(bytes.capacity(), 5001);
}

/// A pipe longer than the first buffer is read whole (the buffer grows by copying into a new
/// zeroizing one).
#[cfg(unix)]
#[test]
fn a_pipe_longer_than_the_first_buffer_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    mkfifo(&path);
    let mut fifo = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    // Keeps the written bytes alive even if the writer is done before the reader opens.
    let _keep = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new().read(true).custom_flags(o_nonblock()).open(&path).unwrap()
    };
    let content: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let expected = content.clone();
    let writer = std::thread::spawn(move || {
        // Wait until the reader is open, so dropping `fifo` ends the data only then.
        std::thread::sleep(Duration::from_millis(200));
        fifo.write_all(&content).unwrap();
    });
    let bytes = read_guarded(&path, 1024 * 1024).unwrap().unwrap();
    writer.join().unwrap();
    assert_eq!(bytes, expected);
}
