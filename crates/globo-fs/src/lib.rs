//! Crash-safe file primitives shared by globo's crates.
//!
//! Every file globo writes goes through [`write_atomic`], [`create_new`] or [`AtomicFile`]: the
//! bytes land in a private temporary file in the destination's folder, are flushed to disk, and
//! only then take the destination's name. A crash at any instant leaves either the complete old
//! file or the complete new one, never a truncated mix.
//!
//! Read-modify-write cycles hold an [`ExclusiveLock`] on a sidecar `<file>.lock`: the data file
//! itself is replaced by rename, so a lock on its inode would not exclude a process that opened
//! the new one.
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
//! # Temporary files
//!
//! The temporary file can hold a Fernet key (`secret.key`), password hashes (`users.json`) or
//! ciphertext, so a killed writer must not leave it lying around.
//!
//! **Linux: unnamed.** The temporary file is opened with `O_TMPFILE` in the destination's
//! folder, mode `0600` (set with `fchmod`, so the umask cannot change it). It has no name in any
//! folder while it is written and flushed (`fsync`); a process killed (SIGKILL, a crash, a
//! power loss) before the end leaves nothing on disk, and the kernel frees the space. Only then
//! does it get a name, with `linkat(2)` (`AT_EMPTY_PATH`, or `/proc/self/fd/N` where the kernel
//! before 6.10 or a missing capability refuses that), relative to a descriptor of the folder
//! opened at the start:
//! - [`create_new`] links it straight to the destination. The link fails if anything, even a
//!   dangling symbolic link, is there, so an existing file is never replaced, and there is no
//!   moment at which the content has any other name.
//! - [`write_atomic`] and [`AtomicFile::commit`] link it to a random `.globo-XXXXXX.tmp` name,
//!   then `renameat(2)` that over the destination; Linux has no call that links over an
//!   existing name. The two system calls follow each other directly: a kill exactly between
//!   them leaves a complete, private (`0600`) `.globo-*.tmp` file, which the sweep below
//!   removes. A failed rename removes the temporary name at once.
//!
//! Finally the folder is flushed (`fsync`), so the new name survives a power loss. A power
//! loss between the link and the flush of the folder can also leave the temporary name.
//!
//! **Fallback: named.** Where `O_TMPFILE` is not available (not Linux; a filesystem that
//! answers `EOPNOTSUPP`, such as vfat, some network and FUSE filesystems, or overlayfs before
//! Linux 6.6; a kernel before 3.11, which answers `EISDIR`; or `EINVAL`), the temporary file is
//! a named `.globo-XXXXXX.tmp` created with `O_EXCL` and mode `0600`, written, flushed and
//! renamed (or, for [`create_new`], linked without replacing) as before. If the unnamed file
//! cannot be linked (no `/proc` and no permission for `AT_EMPTY_PATH`), its content is copied
//! into such a named file. On this path a killed writer leaves its `.globo-*.tmp` file behind,
//! private and never the data file itself. Other failures (read-only folder, no space, no
//! permission) are reported, never turned into a fallback.
//!
//! **Stale temporary files** (left by the fallback, by a kill between link and rename, or by
//! globo versions before this one) are removed by [`remove_stale_temp_files`], which every
//! successful write runs on its destination's folder (errors ignored: cleaning up never makes
//! a write fail). It removes only regular files of the current user with a globo temporary
//! name that have not been modified for [`STALE_TEMP_AGE`] (one hour), never a symbolic link.
//! A writer that is alive modifies its temporary file as it writes and renames it away right
//! after, so a file another process is using is never removed; no lock is needed, because the
//! locks guard one data file each while a folder's temporary files belong to all of them. A
//! residue therefore lives until the first write in its folder after it is an hour old.
//!
//! # Owner and mode
//!
//! Every file written has mode `0600`. A file that replaces another ([`write_atomic`],
//! [`AtomicFile`]) keeps the replaced file's owner and group where this process may set them
//! (as root, or a group it belongs to), so an administrator running `app register` as root on a
//! service's `users.json` does not leave the service unable to read it; without that right the
//! new file belongs to the writer, like any new file. Only a file that cannot have been planted
//! is inherited from: the very file the walk found (a name created or swapped in before the
//! publish is ignored), with a single name, owned by root or the folder's owner, or in a folder
//! others may not write (`root:app 0770`, `deploy:www 2775`: a service's usual home). Otherwise
//! (a file of another user in `/tmp` or another world-writable folder, a hard-linked file) the
//! new file stays the writer's. A group- or world-readable mode is not kept: `0600` is the
//! point. Lock files get the owner and group of the file they guard (the file the walk found,
//! whatever folder it is in: a lock is empty, so it gives nothing away), else of its folder, so
//! a lock taken as root never locks the data's owner out (see [`ExclusiveLock`]).
//!
//! # Reading small files
//!
//! [`read_small`] reads a small file (a `.env`, a key file) whole, within a size bound, into a
//! zeroized buffer. It opens with `O_NONBLOCK`, so a FIFO nobody writes to is refused at once
//! instead of blocking forever, while a pipe with a writer (`--env-file <(cmd)`) is read to
//! its end within [`SMALL_FILE_PIPE_WAIT`] (a writer silent for longer is an error).
//!
//! # Symbolic links
//!
//! A deployment may link `secret.key`, `config.enc` or `users.json` (or their folder) to shared
//! storage, so a replacing write never detaches a link: [`write_atomic`] and [`AtomicFile`]
//! follow the links and replace the regular file at their end, atomically, with the temporary
//! file in that file's folder; the link stays as it was. The file keeps its owner and group
//! (above).
//!
//! **By descriptor.** The path is walked one component at a time, each folder opened relative
//! to the previous one without following a link (`openat(2)` with `O_NOFOLLOW |
//! O_DIRECTORY`); a link met on the way, to a folder or as the last component, is opened
//! itself (`O_PATH | O_NOFOLLOW`), its owner and text read from that one descriptor (`fstat(2)`,
//! `readlinkat(fd, "")`, so a link swapped meanwhile cannot lend its owner to another's text),
//! and its text walked the same way. The owner rule (below) is checked before the final folder
//! is opened for reading. Every later step (the temporary file,
//! the link and rename that publish it, the lock file, and the unlink of [`RemovableFile`]) is
//! relative to the final folder's descriptor, so a folder of the path renamed or replaced by a
//! link after the walk cannot redirect it.
//!
//! **The owner rule.** Every symbolic link the walk follows, to a folder as much as to the
//! file, must belong to root or to the owner of the file at the end of the path (to the owner
//! of the folder it will be created in, while it does not exist). So a link planted by another
//! user, in any component of the path, cannot make globo, run as root or as the victim, write,
//! lock or delete a file of the victim's. This is globo's own rule, applied in every folder; it
//! is not Linux's `fs.protected_symlinks` (which applies only in sticky world-writable
//! folders and compares the link's owner with the process following it).
//!
//! Refused, with an error naming the path and the reason, and nothing written: a dangling link
//! (its target is not created), a link to anything but a regular file (a folder, a FIFO, a
//! device), more than 40 links (a loop), and a link that breaks the owner rule.
//! [`create_new`] never creates anything through a link as the last component: it fails with
//! [`io::ErrorKind::AlreadyExists`] if the destination is a link, even a dangling one, so a new
//! key is never written where a planted link points. [`ExclusiveLock`] locks `<target>.lock`
//! beside the link's target, so the link and the target exclude each other; it refuses a link
//! that breaks these rules, and a lock file that is a link, or not an empty regular file with a
//! single name (a hard link to another file).
#![forbid(unsafe_code)]
#[cfg(not(unix))]
compile_error!("globo-fs walks paths by descriptor (openat, readlinkat): it needs a Unix system");

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod link;
mod remove;
mod small;
mod stale;
mod temp;

pub use link::resolve_link;
pub use remove::RemovableFile;
pub use small::{RegularFileRead, SMALL_FILE_PIPE_WAIT, read_small, read_small_regular};
pub use stale::{STALE_TEMP_AGE, remove_stale_temp_files};
use temp::{Kind, Publish, Temp};

/// A file operation that failed, with the path it failed on.
///
/// The message names the operation and the path; the underlying [`io::Error`] is the
/// [`source`](std::error::Error::source). File contents never appear in it.
#[derive(Debug, thiserror::Error)]
#[error("cannot {operation} '{}': {source}", path.display())]
pub struct FsError {
    operation: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl FsError {
    /// Wraps `source`, recording what was being done (`"read"`, `"write"`, ...) and to which path.
    pub fn new(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self { operation, path: path.into(), source }
    }

    /// The path the operation failed on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What kind of I/O failure this was (for example [`io::ErrorKind::AlreadyExists`]).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// The underlying I/O error, for callers that report the path themselves.
    pub fn into_io_error(self) -> io::Error {
        self.source
    }
}

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
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    write_with(path, bytes, Publish::Replace, true).map(drop)
}

/// Creates `path` with `bytes` and mode `0600`, failing if anything already exists there.
///
/// The content is complete before the name appears, so a reader never sees a partial file.
/// Fails with [`io::ErrorKind::AlreadyExists`] (see [`FsError::kind`]) when the path exists,
/// including when it is a dangling symbolic link: an existing file (a key) is never replaced.
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
/// file. Mode `0600`.
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
    /// Blocks until this process holds the lock guarding `path`.
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
