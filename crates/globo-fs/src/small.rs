//! Reading a small file (a `.env`, a key file) whole, with a size bound, without ever blocking
//! forever on a pipe: neither one that nobody writes to nor one whose writer stays silent.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::FsError;

/// How long [`read_small`] waits, in total, for a pipe's writer to send everything and close
/// (10 s). A `<(cmd)` that prints a few lines is done long before; a writer that is alive but
/// silent (`<(sleep infinity)`) gets an error instead of a process that hangs forever.
pub const SMALL_FILE_PIPE_WAIT: Duration = Duration::from_secs(10);

/// The first buffer for a pipe, whose length is not known in advance (doubled as needed).
const FIRST_PIPE_BUFFER: u64 = 8 * 1024;

/// Reads the whole file at `path`, which must hold at most `max_len` bytes. `Ok(None)` when
/// nothing exists at `path`. The buffer is zeroized on drop (small files here hold secrets),
/// and no unzeroized copy is left behind: a regular file's buffer is allocated once at its
/// size (bounded by `max_len`); a pipe's grows into new zeroizing buffers, the old one wiped.
///
/// What it accepts, and why:
/// - a regular file (a symbolic link to one is followed);
/// - a pipe with a writer, such as `--env-file <(cmd)` (`/dev/fd/N`): read once, to its end;
///   it cannot be read a second time, so callers read it once and share the result. The
///   writer has [`SMALL_FILE_PIPE_WAIT`] in total to finish: a writer that stays silent
///   longer is an error ([`io::ErrorKind::TimedOut`], "no data from the pipe within 10 s"),
///   never a hang;
/// - a named pipe (FIFO) or anonymous pipe **with no writer and nothing in it** is an error
///   ([`io::ErrorKind::WouldBlock`]): opening it normally would block until some other process
///   opens it for writing, possibly forever. It is opened with `O_NONBLOCK` and refused.
/// - a device that has nothing to read now (a terminal) is an error for the same reason;
///   one that never ends (`/dev/zero`) stops at the bound.
///
/// Larger than `max_len` is an error ([`io::ErrorKind::InvalidData`]) and at most
/// `max_len + 1` bytes are read, so an endless or huge file cannot exhaust memory. A folder
/// is an error. Messages name the path, never content.
///
/// ```
/// # fn main() -> Result<(), globo_fs::FsError> {
/// let dir = tempfile::tempdir().map_err(|e| globo_fs::FsError::new("create", ".", e))?;
/// let path = dir.path().join(".env");
/// assert!(globo_fs::read_small(&path, 1024)?.is_none());
/// globo_fs::write_atomic(&path, b"A=1\n")?;
/// assert_eq!(globo_fs::read_small(&path, 1024)?.as_deref().map(|b| b.as_slice()), Some(&b"A=1\n"[..]));
/// assert!(globo_fs::read_small(&path, 2).is_err());
/// # Ok(()) }
/// ```
pub fn read_small(path: &Path, max_len: u64) -> Result<Option<Zeroizing<Vec<u8>>>, FsError> {
    read_small_within(path, max_len, SMALL_FILE_PIPE_WAIT)
}

/// What [`read_small_regular`] returns: the content (zeroized on drop) and the metadata of the
/// file that was read.
pub type RegularFileRead = (Zeroizing<Vec<u8>>, std::fs::Metadata);

/// Like [`read_small`], for files that must be regular files (a key file, a users file):
/// anything else (a FIFO, a device, a folder), even behind a symbolic link, is an error
/// ([`io::ErrorKind::InvalidInput`], "not a regular file") without a read. The type is
/// checked on the file opened (with `O_NONBLOCK`, so opening a FIFO never blocks), not on the
/// path before opening it, so nothing swapped in between is read. Also returns the
/// metadata of the file read (its permissions, say), not of whatever the path names now.
pub fn read_small_regular(path: &Path, max_len: u64) -> Result<Option<RegularFileRead>, FsError> {
    let Some((file, metadata)) = open_small(path)? else { return Ok(None) };
    if !metadata.is_file() {
        let error = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
        return Err(FsError::new("read", path, error));
    }
    let bytes = read_opened(path, &file, &metadata, max_len, SMALL_FILE_PIPE_WAIT)?;
    Ok(Some((bytes, metadata)))
}

/// [`read_small`] with `pipe_wait` for [`SMALL_FILE_PIPE_WAIT`] (tests use a shorter one).
pub(crate) fn read_small_within(
    path: &Path,
    max_len: u64,
    pipe_wait: Duration,
) -> Result<Option<Zeroizing<Vec<u8>>>, FsError> {
    let Some((file, metadata)) = open_small(path)? else { return Ok(None) };
    if metadata.is_dir() {
        let error = io::Error::other("it is a folder, not a file");
        return Err(FsError::new("read", path, error));
    }
    read_opened(path, &file, &metadata, max_len, pipe_wait).map(Some)
}

/// Opens `path` without blocking and reads its metadata; `None` if nothing is there.
fn open_small(path: &Path) -> Result<Option<(File, std::fs::Metadata)>, FsError> {
    let file = match open_nonblocking(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FsError::new("open", path, e)),
    };
    let metadata = file.metadata().map_err(|e| FsError::new("read", path, e))?;
    Ok(Some((file, metadata)))
}

/// Reads the opened `file` whole (see [`read_small`]).
fn read_opened(
    path: &Path,
    file: &File,
    metadata: &std::fs::Metadata,
    max_len: u64,
    pipe_wait: Duration,
) -> Result<Zeroizing<Vec<u8>>, FsError> {
    let read_error = |e| FsError::new("read", path, e);
    let limit = max_len.saturating_add(1);
    let pipe = is_pipe(metadata);
    // A regular file's size is known: one buffer, never reallocated (unless it grows meanwhile).
    let first =
        if metadata.is_file() { metadata.len().min(max_len) + 1 } else { FIRST_PIPE_BUFFER };
    let mut buffer = Zeroizing::new(vec![0u8; to_usize(first.min(limit))]);
    let mut filled = 0usize;
    // Whether the pipe has shown a writer (data, or "nothing yet"): an end of data after that
    // is the writer closing, not a FIFO nobody opened for writing.
    let mut seen_writer = false;
    let deadline = Instant::now() + pipe_wait;
    loop {
        if filled == buffer.len() {
            if filled as u64 >= limit {
                break;
            }
            grow(&mut buffer, filled, to_usize((filled as u64).saturating_mul(2).min(limit)));
        }
        let mut reader = file;
        match reader.read(&mut buffer[filled..]) {
            Ok(0) if pipe && !seen_writer => {
                // End of data at once, before any wait: no process has the pipe open for
                // writing (a FIFO nobody feeds), and nothing was left in it.
                return Err(read_error(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "it is a named pipe (FIFO) with no writer and nothing in it; reading it would \
                     wait for a writer, possibly forever: give a regular file, or start the \
                     process that writes to the pipe first",
                )));
            }
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                seen_writer = true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && pipe => {
                seen_writer = true;
                wait_for_data(file, deadline, pipe_wait).map_err(read_error)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(read_error(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "nothing to read now (a terminal or device?): give a regular file",
                )));
            }
            Err(e) => return Err(read_error(e)),
        }
    }
    buffer.truncate(filled);
    if filled as u64 > max_len {
        return Err(read_error(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the file is larger than {max_len} bytes"),
        )));
    }
    Ok(buffer)
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Moves the first `filled` bytes of `buffer` into a new zeroizing buffer of `len` bytes; the
/// old one is wiped when dropped (a `Vec` reallocation would free it unwiped).
fn grow(buffer: &mut Zeroizing<Vec<u8>>, filled: usize, len: usize) {
    let mut bigger = Zeroizing::new(vec![0u8; len]);
    bigger[..filled].copy_from_slice(&buffer[..filled]);
    *buffer = bigger;
}

/// Opens for reading with `O_NONBLOCK` (and `O_NOCTTY`), so opening a FIFO without a writer
/// returns at once instead of waiting for one.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Small positive constants (0o4000, 0o400): the cast to the C int changes no bit.
        options.custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32);
    }
    options.open(path)
}

#[cfg(unix)]
fn is_pipe(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    metadata.file_type().is_fifo()
}

#[cfg(not(unix))]
fn is_pipe(_metadata: &std::fs::Metadata) -> bool {
    false
}

/// Waits until the pipe has data or its writer closed it, at most until `deadline`.
#[cfg(unix)]
fn wait_for_data(file: &File, deadline: Instant, pipe_wait: Duration) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no data from the pipe within {} s (its writer is alive but has not \
                     finished): give a regular file, or a command that writes and exits",
                    pipe_wait.as_secs_f64()
                ),
            ));
        }
        let timeout = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(file, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            // Ready (data, or the writer closed: the next read says which).
            Ok(n) if n > 0 => return Ok(()),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(not(unix))]
fn wait_for_data(_file: &File, _deadline: Instant, _pipe_wait: Duration) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn mkfifo(path: &Path) {
        use rustix::fs::{CWD, FileType, Mode, mknodat};
        mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
    }

    /// Review B3: a FIFO whose writer is alive but silent (`<(sleep infinity)`) is an error
    /// after the bounded wait, naming the path, not a hang. The test runs the read on another
    /// thread and fails (rather than hangs) if it has not returned within a minute.
    #[test]
    fn a_pipe_whose_writer_stays_silent_is_an_error_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        mkfifo(&path);
        // O_RDWR opens a FIFO without waiting (Linux): this handle is a writer that never writes.
        let _silent_writer = OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let (done, wait) = std::sync::mpsc::channel();
        let reading = path.clone();
        std::thread::spawn(move || {
            let _ = done.send(read_small_within(&reading, 1024, Duration::from_millis(200)));
        });
        let result = wait.recv_timeout(Duration::from_secs(60)).expect("read_small hung");
        let error = result.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("no data from the pipe within 0.2 s"), "{message}");
    }
}
