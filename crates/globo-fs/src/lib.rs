//! Crash-safe file primitives shared by globo's crates.
//!
//! Every file globo writes goes through [`write_atomic`] or [`create_new`]: the bytes land in a
//! temporary file in the destination's folder (mode `0600` from the moment it exists), are
//! flushed to disk, and only then take the destination's name with one `rename(2)` (or
//! `link(2)` for [`create_new`]). A crash at any instant leaves either the complete old file or
//! the complete new one, never a truncated mix.
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
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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
}

/// The folder a path lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to a fresh private temporary file beside `path` and flushes it to disk.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile, FsError> {
    let dir = parent_dir(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".globo-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o600));
    }
    let mut tmp =
        builder.tempfile_in(dir).map_err(|e| FsError::new("create a temporary file in", dir, e))?;
    tmp.write_all(bytes).map_err(|e| FsError::new("write", tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| FsError::new("flush", tmp.path(), e))?;
    Ok(tmp)
}

/// Flushes a folder so that a rename or link inside it survives a power loss.
fn sync_dir(dir: &Path) -> Result<(), FsError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| FsError::new("flush folder", dir, e))?;
    }
    let _ = dir;
    Ok(())
}

/// Replaces `path` with `bytes` atomically; the file has mode `0600`.
///
/// Readers see the complete old content or the complete new one. If `path` is a symbolic link,
/// the link itself is replaced by a regular file: globo never writes through a link.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let tmp = write_temp(path, bytes)?;
    tmp.persist(path).map_err(|e| FsError::new("replace", path, e.error))?;
    sync_dir(parent_dir(path))
}

/// Creates `path` with `bytes` and mode `0600`, failing if anything already exists there.
///
/// The content is complete before the name appears, so a reader never sees a partial file.
/// Fails with [`io::ErrorKind::AlreadyExists`] (see [`FsError::kind`]) when the path exists,
/// including when it is a dangling symbolic link.
pub fn create_new(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let tmp = write_temp(path, bytes)?;
    tmp.persist_noclobber(path).map_err(|e| FsError::new("create", path, e.error))?;
    sync_dir(parent_dir(path))
}

/// A file written in pieces that replaces `path` atomically when committed: the streaming form
/// of [`write_atomic`], with the same guarantees.
///
/// The bytes go to a temporary file beside `path` (mode `0600` from the moment it exists);
/// [`AtomicFile::commit`] flushes it to disk, renames it over `path` and flushes the folder.
/// Dropped without `commit` (an error half-way), the temporary file is removed and `path` is
/// untouched. Wrap it in a [`std::io::BufWriter`] for small writes.
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
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file that will replace `path`.
    pub fn create(path: &Path) -> Result<Self, FsError> {
        let tmp = write_temp(path, b"")?;
        Ok(Self { tmp, path: path.to_path_buf() })
    }

    /// The path this file will replace.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the content to disk and atomically replaces `path` with it (mode `0600`).
    pub fn commit(mut self) -> Result<(), FsError> {
        self.tmp.flush().map_err(|e| FsError::new("write", self.tmp.path(), e))?;
        self.tmp.as_file().sync_all().map_err(|e| FsError::new("flush", self.tmp.path(), e))?;
        self.tmp.persist(&self.path).map_err(|e| FsError::new("replace", &self.path, e.error))?;
        sync_dir(parent_dir(&self.path))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// An exclusive advisory lock on `<path>.lock`, released when dropped.
///
/// Every globo process that modifies `path` takes this lock first, so concurrent
/// read-modify-write cycles run one after another. The lock file is empty and stays behind.
#[derive(Debug)]
pub struct ExclusiveLock {
    file: File,
    path: PathBuf,
}

impl ExclusiveLock {
    /// Blocks until this process holds the lock guarding `path`.
    pub fn acquire(path: &Path) -> Result<Self, FsError> {
        let lock_path = lock_path_for(path);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Never through a symbolic link: in a shared folder a planted link would make us
            // create or open a file of the attacker's choosing.
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        let file = options.open(&lock_path).map_err(|e| {
            let hint = if is_symlink(&lock_path) {
                io::Error::other(
                    "it is a symbolic link; remove it (a lock file is always a plain file)",
                )
            } else {
                e
            };
            FsError::new("open lock file", &lock_path, hint)
        })?;
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

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// The sidecar lock file guarding `path`: `users.json` -> `users.json.lock`.
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn write_atomic_replaces_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(loose_permissions(&path).unwrap(), None);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn create_new_refuses_existing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        create_new(&path, b"first").unwrap();
        let err = create_new(&path, b"second").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_replaces_a_symlink_not_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(!fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    }

    #[cfg(unix)]
    #[test]
    fn loose_permissions_reports_group_and_other_bits() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, b"x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(loose_permissions(&path).unwrap(), Some(0o044));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_lock_file_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, lock_path_for(&path)).unwrap();
        let err = ExclusiveLock::acquire(&path).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!target.exists(), "the link's target must not be created");
    }

    #[test]
    fn lock_serialises_holders() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let guard = ExclusiveLock::acquire(&path).unwrap();
        assert_eq!(guard.path(), dir.path().join("users.json.lock"));
        let other = File::options().read(true).write(true).open(guard.path()).unwrap();
        assert!(other.try_lock().is_err(), "a second holder must be excluded");
        drop(guard);
        assert!(other.try_lock().is_ok());
    }
}
