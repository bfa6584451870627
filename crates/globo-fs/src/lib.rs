//! Write files atomically, read small files within a bound, and lock read-modify-write
//! cycles: the file primitives every globo crate uses, for a service that keeps keys,
//! password hashes or ciphertext on disk.
//!
//! - [`write_atomic`] replaces a file: readers, and a crash at any instant, see the complete
//!   old content or the complete new one, never a truncated mix. Mode `0600`.
//! - [`create_new`] creates a file that must not exist yet (a new key): an existing file, or
//!   a symbolic link, is never replaced. [`create_new_like`] also copies another file's owner.
//! - [`AtomicFile`] is [`write_atomic`] written in pieces (a large ciphertext).
//! - [`ExclusiveLock`] serialises read-modify-write cycles on a sidecar `<file>.lock` (the data
//!   file itself is replaced by rename, so a lock on it would not exclude the next writer).
//! - [`read_small`] and [`read_small_regular`] read a `.env`, a key file or a users file whole,
//!   within a size bound, into a zeroized buffer; a FIFO nobody writes to is refused instead
//!   of blocking forever.
//! - [`RemovableFile`] deletes a file only if it is still the one that was checked;
//!   [`loose_permissions`] reports a group- or world-accessible mode; [`resolve_link`] says
//!   where a write through a link would land.
//! - [`create_private_dir`] makes (or checks) a folder of mode `0700` for a data set kept in
//!   many files, refusing a link, or a folder someone else could have planted.
//!
//! ```
//! # fn main() -> Result<(), globo_fs::FsError> {
//! let dir = tempfile::tempdir().map_err(|e| globo_fs::FsError::new("create", ".", e))?;
//! let path = dir.path().join("users.json");
//! let _guard = globo_fs::ExclusiveLock::acquire(&path)?;
//! globo_fs::write_atomic(&path, b"{}")?;
//! assert_eq!(std::fs::read(&path).unwrap(), b"{}");
//! # Ok(()) }
//! ```
//!
//! Errors are one type, [`FsError`]: the operation and the path in its message, the
//! operating system's error as its `source()`; print it with [`Report`] to see both.
//!
//! # Blocking and memory
//!
//! Every function blocks on file-system I/O (call them from `spawn_blocking` in async code);
//! none starts a thread. Writes flush the file and its folder to disk (`fsync`) before they
//! return: milliseconds on a local disk, more on network storage. Every successful write then
//! lists its destination folder once to remove stale temporary files
//! ([`remove_stale_temp_files`]; errors ignored): time grows with the folder's entries, so
//! keep data files out of crowded folders. [`ExclusiveLock::acquire`] waits as long as another
//! process holds the lock. [`read_small`] waits up to [`SMALL_FILE_PIPE_WAIT`] for a pipe's
//! writer and allocates a regular file's size plus one byte (capped at the bound plus one);
//! a pipe's buffer doubles as data comes, and while it grows the old and the new buffer are
//! both held, so the peak stays under twice the bound. Writes hold no copy of the bytes they
//! are given.
//!
//! # Temporary files
//!
//! A write goes to a private temporary file in the destination's folder, unnamed on Linux
//! (`O_TMPFILE`), so a writer killed half-way leaves nothing; elsewhere, or on filesystems
//! without `O_TMPFILE`, a named `.globo-XXXXXX.tmp` (mode `0600`) that later writes in that
//! folder remove once it is [`STALE_TEMP_AGE`] old ([`remove_stale_temp_files`]).
//!
//! # Owner and mode
//!
//! Every file written has mode `0600`. A file that replaces another keeps the replaced
//! file's owner and group where this process may set them (as root, or a group it belongs
//! to), so `app register` run as root on a service's `users.json` leaves the service able to
//! read it; only from a file that cannot have been planted (the very file the walk found,
//! with a single name, owned by root or the folder's owner, or in a folder others may not
//! write). Lock files get the owner and group of the file they guard.
//!
//! # Symbolic links
//!
//! A deployment may link `secret.key`, `config.enc` or `users.json` (or their folder) to
//! shared storage: writes follow the links and replace the regular file at their end, and the
//! link stays. Paths are walked one component at a time by descriptor, and every link must
//! belong to root or to the owner of the file at the end (the owner rule), so a link planted
//! by another user cannot redirect a write, a lock or a delete. Dangling links, links to
//! anything but a regular file, and loops are refused; [`create_new`] never creates through a
//! link.
//!
//! How all of this is done (the system calls, kernel versions and filesystems, the owner
//! rule, the races each step closes) is in
//! [docs/files.md](https://github.com/globo-rs/globo/blob/main/docs/files.md).
#![forbid(unsafe_code)]
#[cfg(not(unix))]
compile_error!("globo-fs walks paths by descriptor (openat, readlinkat): it needs a Unix system");

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod dir;
mod error;
mod link;
mod remove;
mod small;
mod stale;
mod temp;

pub use dir::create_private_dir;
pub use error::FsError;
pub use globo_report::{Report, with_causes};
pub use link::resolve_link;
pub use remove::RemovableFile;
pub use small::{RegularFileRead, SMALL_FILE_PIPE_WAIT, read_small, read_small_regular};
pub use stale::{STALE_TEMP_AGE, remove_stale_temp_files};
use temp::{Kind, Publish, Temp};
/// The `zeroize` crate, whose [`Zeroizing`](zeroize::Zeroizing) buffers [`read_small`] returns.
pub use zeroize;

/// The folder a path lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to a new temporary file and publishes it at `path`; returns which kind of
/// temporary file was used.
fn write_with(
    path: &Path,
    bytes: &[u8],
    how: Publish,
    prefer_unnamed: bool,
) -> Result<Kind, FsError> {
    // A new file is never created through a link (the link's name is taken, so the no-clobber
    // link fails); a replacement replaces the file at the end of the links.
    let target = link::resolve(path, how == Publish::Replace)?;
    link::test_hook("resolved");
    let mut temp = Temp::create(target, prefer_unnamed)?;
    temp.write_all(bytes)?;
    let kind = temp.kind();
    temp.persist(how)?;
    Ok(kind)
}

/// Replaces `path` with `bytes` atomically; the file has mode `0600`.
///
/// Readers see the complete old content or the complete new one. If `path` is a symbolic link,
/// the regular file at the end of the links is replaced, in its own folder, and the link stays
/// (see [`resolve_link`] for the links that are refused).
///
/// Blocks until the file and its folder are flushed to disk (`fsync`), then lists the folder
/// once to remove stale temporary files ([`remove_stale_temp_files`], errors ignored); no copy
/// of `bytes` is made.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    write_with(path, bytes, Publish::Replace, true).map(drop)
}

/// Creates `path` with `bytes` and mode `0600`, failing if anything already exists there.
///
/// The content is complete before the name appears, so a reader never sees a partial file.
/// Fails with [`io::ErrorKind::AlreadyExists`] (see [`FsError::kind`]) when the path exists,
/// including when it is a dangling symbolic link: an existing file (a key) is never replaced.
///
/// Blocks until the file and its folder are flushed to disk (`fsync`), then lists the folder
/// once to remove stale temporary files ([`remove_stale_temp_files`], errors ignored).
pub fn create_new(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    write_with(path, bytes, Publish::NoClobber, true).map(drop)
}

/// [`create_new`], and the new file gets the owner and group of the existing file `like` (the
/// file it derives from, such as the key file a `secret.key.next` or a retired key comes
/// from), where this process may set them (root, or a group it belongs to): the rule of a
/// replaced file, so that a file created as root beside a service's files stays readable by
/// the service. `like` is walked like any path (a symbolic link that may not be followed, see
/// [`resolve_link`], gives nothing) and its owner is taken only where a replaced file's would
/// be (see the [crate docs](crate#owner-and-mode)). Without the right, if `like` cannot be
/// inspected, or if it may have been planted, the file belongs to the writer, like any new
/// file. Mode `0600`. Blocks until the file and its folder are flushed to disk (`fsync`), then
/// lists the folder once to remove stale temporary files ([`remove_stale_temp_files`]).
pub fn create_new_like(path: &Path, bytes: &[u8], like: &Path) -> Result<(), FsError> {
    let target = link::resolve(path, false)?;
    link::test_hook("resolved");
    let mut temp = Temp::create(target, true)?;
    temp.write_all(bytes)?;
    // `like` walked by descriptor, under the owner rule for links, and its owner taken under
    // the rule of a replaced file: a planted link or file gives nothing.
    if let Ok(reference) = link::resolve(like, true)
        && let Some(stat) = &reference.stat
        && rustix::fs::FileType::from_raw_mode(stat.st_mode).is_file()
        && let Some((uid, gid)) = temp::trusted_owner(&reference.dir, &reference.name, stat)
    {
        temp::adopt_owner(temp.file_mut(), uid, gid);
    }
    temp.persist(Publish::NoClobber)
}

/// A file written in pieces that replaces `path` atomically when committed: the streaming form
/// of [`write_atomic`], with the same guarantees.
///
/// The bytes go to a private temporary file in `path`'s folder (unnamed where the platform
/// allows, see the [crate docs](crate#temporary-files)); [`AtomicFile::commit`] flushes it to
/// disk, gives it `path`'s name and flushes the folder. Dropped without `commit` (an error
/// half-way), the temporary file is discarded and `path` is untouched. Wrap it in a
/// [`std::io::BufWriter`] for small writes.
///
/// ```
/// # fn main() -> Result<(), globo_fs::FsError> {
/// use std::io::Write as _;
/// let dir = tempfile::tempdir().map_err(|e| globo_fs::FsError::new("create", ".", e))?;
/// let path = dir.path().join("config.enc");
/// let mut file = globo_fs::AtomicFile::create(&path)?;
/// file.write_all(b"gAAAA").map_err(|e| globo_fs::FsError::new("write", &path, e))?;
/// file.commit()?;
/// assert_eq!(std::fs::read(&path).unwrap(), b"gAAAA");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    temp: Temp,
    path: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file that will replace `path`.
    pub fn create(path: &Path) -> Result<Self, FsError> {
        Self::create_with(path, true)
    }

    fn create_with(path: &Path, prefer_unnamed: bool) -> Result<Self, FsError> {
        let target = link::resolve(path, true)?;
        link::test_hook("resolved");
        Ok(Self { temp: Temp::create(target, prefer_unnamed)?, path: path.to_path_buf() })
    }

    /// The path this file will replace, as given (if it is a symbolic link, the file at the end
    /// of the links is replaced).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the content to disk and atomically replaces `path` with it (mode `0600`).
    /// Blocks until the file and its folder are flushed (`fsync`): for a large file, as long
    /// as the disk takes to write it; then lists the folder once to remove stale temporary
    /// files ([`remove_stale_temp_files`], errors ignored).
    pub fn commit(self) -> Result<(), FsError> {
        self.temp.persist(Publish::Replace)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.file_mut().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.temp.file_mut().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.file_mut().flush()
    }
}

/// An exclusive advisory lock on `<path>.lock`, released when dropped.
///
/// Every globo process that modifies `path` takes this lock first, so concurrent
/// read-modify-write cycles run one after another. The lock file is empty and stays behind.
///
/// - **Symbolic links.** The lock guards the file a write lands on ([`resolve_link`]): when
///   `path` is a link, the lock file lies beside the link's target, so a process going through
///   the link and one naming the target exclude each other. A lock file that is itself a link
///   is refused.
/// - **Owner.** The lock file gets the owner and group of the file it guards (of that file's
///   folder while the file does not exist yet), where this process may set them (root, or a
///   group it belongs to), mode `0600`, under the rule of a replaced file (see the
///   [crate docs](crate#owner-and-mode): a data file another user may have planted, or one
///   with a second name, gives nothing, and the lock stays the writer's). An existing lock file is given to the data's owner
///   the same way only if it belongs to this process's own user (a root-owned lock left by an
///   older version, repaired the next time root takes it); a file planted under the lock's
///   name by someone else is never given away. So an administrator running `app register` as
///   root on a service's files never leaves a lock the service cannot open. A lock file that
///   is not an empty regular file with a single name (a hard link to another file, such as
///   `ln /etc/sudoers users.json.lock`, which `O_NOFOLLOW` does not stop) is refused before
///   anything is done to it. A lock file this process may read but not write
///   is opened read-only (`flock(2)` needs no write access). One it cannot open at all (left
///   by an older version run as another user) is reported with its owner and the fix, never
///   bypassed: locking anything else would not exclude the processes that lock the file.
#[derive(Debug)]
pub struct ExclusiveLock {
    file: File,
    path: PathBuf,
}

impl ExclusiveLock {
    /// Blocks until this process holds the lock guarding `path`: as long as another process
    /// holds it, with no timeout (a lock is held for one read-modify-write cycle).
    ///
    /// Fails, before anything is created, when `path` is a link that may not be followed (see
    /// [`resolve_link`]): a lock beside the link itself would not exclude the processes going
    /// through it, and the write the lock is for would be refused anyway.
    pub fn acquire(path: &Path) -> Result<Self, FsError> {
        let data = link::resolve(path, true)?;
        link::test_hook("resolved");
        let lock_path = lock_path_for(&data.path);
        let mut lock_name = data.name.clone();
        lock_name.push(".lock");
        let (file, created) = open_lock_file(&data.dir, &lock_name, &lock_path)?;
        let ours = check_lock_file(&file, &lock_path)?;
        // Only a lock file this process created, or one of its own user, is given away: a
        // file planted under the lock's name must never be handed to anyone.
        if created || ours {
            give_to_data_owner(&file, &data);
        }
        file.lock().map_err(|e| FsError::new("lock", &lock_path, e))?;
        Ok(Self { file, path: lock_path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ExclusiveLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first just makes it prompt.
        let _ = self.file.unlock();
    }
}

/// Opens the lock file `name` in `dir` (`shown` in messages), never through a symbolic link:
/// created (mode `0600`, `O_EXCL`) if it does not exist, else opened for writing, or read-only
/// when this process may read but not write it. Returns the file and whether it was created.
fn open_lock_file(dir: &File, name: &OsStr, shown: &Path) -> Result<(File, bool), FsError> {
    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;
    // Never through a symbolic link: in a shared folder a planted link would make us create or
    // open a file of the attacker's choosing. O_NONBLOCK: a FIFO planted there cannot block.
    let base = OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    let mode = Mode::RUSR | Mode::WUSR;
    let mut error = Errno::NOENT;
    // A lock file removed between the two opens is created again; a few rounds at most.
    for _ in 0..3 {
        match rustix::fs::openat(
            dir,
            name,
            base | OFlags::RDWR | OFlags::CREATE | OFlags::EXCL,
            mode,
        ) {
            Ok(fd) => return Ok((File::from(fd), true)),
            Err(Errno::EXIST) => {}
            Err(e) => {
                error = e;
                break;
            }
        }
        match rustix::fs::openat(dir, name, base | OFlags::RDWR, Mode::empty()) {
            Ok(fd) => return Ok((File::from(fd), false)),
            Err(Errno::NOENT) => continue,
            Err(Errno::ACCESS) => {}
            Err(e) => {
                error = e;
                break;
            }
        }
        match rustix::fs::openat(dir, name, base | OFlags::RDONLY, Mode::empty()) {
            Ok(fd) => return Ok((File::from(fd), false)),
            Err(Errno::NOENT) => continue,
            Err(e) => {
                error = e;
                break;
            }
        }
    }
    let stat = rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).ok();
    let hint = match stat {
        Some(st) if rustix::fs::FileType::from_raw_mode(st.st_mode).is_symlink() => {
            io::Error::other(
                "it is a symbolic link; remove it (a lock file is always a plain file)",
            )
        }
        Some(st) if error == Errno::ACCESS => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "it belongs to uid {} and this user cannot open it (left by an older version \
                 run as another user?); remove it while no globo process is running, or give it \
                 to the owner of the file it guards",
                st.st_uid
            ),
        ),
        _ => error.into(),
    };
    Err(FsError::new("open lock file", shown, hint))
}

/// A lock file is an empty regular file with one name: anything else (a hard link to another
/// file, which `O_NOFOLLOW` does not stop, a FIFO, a device) is refused, so it is never locked
/// in place of the lock nor given away. Returns whether it belongs to this process's user.
fn check_lock_file(file: &File, shown: &Path) -> Result<bool, FsError> {
    let st =
        rustix::fs::fstat(file).map_err(|e| FsError::new("inspect lock file", shown, e.into()))?;
    if !rustix::fs::FileType::from_raw_mode(st.st_mode).is_file()
        || st.st_nlink != 1
        || st.st_size != 0
    {
        return Err(FsError::new(
            "use lock file",
            shown,
            io::Error::new(
                io::ErrorKind::InvalidData,
                "it is not an empty regular file with a single name (a hard link to another \
                 file?); remove it while no globo process is running",
            ),
        ));
    }
    Ok(st.st_uid == rustix::process::geteuid().as_raw())
}

/// Gives the lock file the owner and group of the data file it guards (of its folder while the
/// data file does not exist, or is no longer the file the walk found), where this process may:
/// a lock must never lock out the owner of the data it protects. Best effort. The lock is
/// empty, so the stricter rule of a replaced file's content ([`temp::trusted_owner`]) is not
/// needed: see [`temp::walked_owner`].
fn give_to_data_owner(lock: &File, data: &link::Resolved) {
    let walked = match &data.stat {
        Some(st) if rustix::fs::FileType::from_raw_mode(st.st_mode).is_file() => {
            temp::walked_owner(&data.dir, &data.name, st)
        }
        _ => None,
    };
    let owner =
        walked.or_else(|| rustix::fs::fstat(&data.dir).ok().map(|st| (st.st_uid, st.st_gid)));
    if let Some((uid, gid)) = owner {
        temp::adopt_owner(lock, uid, gid);
    }
}

/// The sidecar lock file beside `path`: `users.json` -> `users.json.lock`. (For a `path` that
/// is a symbolic link, [`ExclusiveLock`] uses the one beside the link's target.)
pub fn lock_path_for(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

/// Returns the permission bits that let group or others read or write `path`, if any.
///
/// `Ok(None)` means the file is private to its owner (or the platform has no such bits).
/// Callers warn with the path and the fix (`chmod 600 <path>`).
pub fn loose_permissions(path: &Path) -> Result<Option<u32>, FsError> {
    let meta = fs::metadata(path).map_err(|e| FsError::new("inspect", path, e))?;
    Ok(loose_bits(&meta))
}

/// The group and other permission bits of `metadata`, if any are set. Use it with
/// [`File::metadata`] to check the very file that was opened, not whatever its path names now.
pub fn loose_bits(metadata: &fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let loose = metadata.permissions().mode() & 0o077;
        (loose != 0).then_some(loose)
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

/// A test-only crash point: with `GLOBO_FS_TEST_CRASH_AT=<step>` in a test process, the process
/// kills itself with SIGKILL at that step (no destructor, no cleanup: what a real kill does).
/// Compiled out of every non-test build.
#[cfg(test)]
fn crash_point(step: &str) {
    if std::env::var_os("GLOBO_FS_TEST_CRASH_AT").is_some_and(|s| s == step) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}

#[cfg(not(test))]
#[inline(always)]
fn crash_point(_step: &str) {}

#[cfg(test)]
mod tests;

#[cfg(all(test, unix))]
mod temp_tests;

// The crate page's examples (README.md, shipped in the package) run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
