//! Reading a small file (a `.env`, a key file) whole, with a size bound, without ever blocking
//! forever on a FIFO that nobody writes to.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

use zeroize::Zeroizing;

use crate::FsError;

/// Reads the whole file at `path`, which must hold at most `max_len` bytes. `Ok(None)` when
/// nothing exists at `path`. The buffer is zeroized on drop (small files here hold secrets).
///
/// What it accepts, and why:
/// - a regular file (a symbolic link to one is followed);
/// - a pipe with a writer, such as `--env-file <(cmd)` (`/dev/fd/N`): read once, to its end;
///   it cannot be read a second time, so callers read it once and share the result;
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
    let read_error = |e| FsError::new("read", path, e);
    let file = match open_nonblocking(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FsError::new("open", path, e)),
    };
    let metadata = file.metadata().map_err(read_error)?;
    if metadata.is_dir() {
        return Err(read_error(io::Error::other("it is a folder, not a file")));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    let file = prepare_pipe(file, &metadata, &mut bytes).map_err(read_error)?;
    let room = (max_len + 1).saturating_sub(bytes.len() as u64);
    file.take(room).read_to_end(&mut bytes).map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            read_error(io::Error::new(
                io::ErrorKind::WouldBlock,
                "nothing to read now (a terminal or device?): give a regular file",
            ))
        } else {
            read_error(e)
        }
    })?;
    if bytes.len() as u64 > max_len {
        return Err(read_error(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the file is larger than {max_len} bytes"),
        )));
    }
    Ok(Some(bytes))
}

/// Opens for reading with `O_NONBLOCK` (and `O_NOCTTY`), so opening a FIFO without a writer
/// returns at once instead of waiting for one.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    options.open(path)
}

/// For a pipe: refuses one with no writer and nothing buffered, else switches it to blocking
/// reads (the writer exists, so the data will come and the end will be seen). The first bytes
/// read while checking are appended to `bytes`. Anything else is returned unchanged.
#[cfg(unix)]
fn prepare_pipe(
    mut file: File,
    metadata: &std::fs::Metadata,
    bytes: &mut Zeroizing<Vec<u8>>,
) -> io::Result<File> {
    use std::os::unix::fs::FileTypeExt as _;
    if !metadata.file_type().is_fifo() {
        return Ok(file);
    }
    let mut first = Zeroizing::new([0u8; 4096]);
    loop {
        match file.read(&mut first[..]) {
            // End of data at once: no process has the pipe open for writing (a FIFO nobody
            // feeds), and nothing was left in it.
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "it is a named pipe (FIFO) with no writer and nothing in it; reading it would \
                     wait for a writer, possibly forever: give a regular file, or start the \
                     process that writes to the pipe first",
                ));
            }
            Ok(n) => {
                bytes.extend_from_slice(&first[..n]);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags - rustix::fs::OFlags::NONBLOCK)?;
    Ok(file)
}

#[cfg(not(unix))]
fn prepare_pipe(
    file: File,
    _metadata: &std::fs::Metadata,
    _bytes: &mut Zeroizing<Vec<u8>>,
) -> io::Result<File> {
    Ok(file)
}
