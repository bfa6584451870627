//! Where the bytes wait before they take the destination's name.
//!
//! On Linux the temporary file is unnamed (`O_TMPFILE`): it exists only as an open descriptor,
//! so a process killed before the end leaves nothing on disk. Elsewhere, or on a filesystem
//! that refuses `O_TMPFILE`, it is a named `.globo-XXXXXX.tmp` file beside the destination.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::{FsError, parent_dir, stale};

/// How the finished file takes the destination's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publish {
    /// Replace whatever is at the destination (`rename(2)`).
    Replace,
    /// Fail with [`std::io::ErrorKind::AlreadyExists`] if anything is at the destination.
    NoClobber,
}

/// Which kind of temporary file a write used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `O_TMPFILE`: no directory entry until the content is complete and flushed.
    Unnamed,
    /// A named `.globo-XXXXXX.tmp` file (the fallback).
    Named,
}

/// A private temporary file in the destination's folder.
#[derive(Debug)]
pub(crate) struct Temp {
    inner: Inner,
    /// The destination: error messages name it, never the temporary file.
    target: PathBuf,
}

#[derive(Debug)]
enum Inner {
    /// The unnamed file and the folder it belongs to (every later step is relative to this
    /// descriptor, so a folder renamed meanwhile cannot redirect the link or the rename).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Unnamed {
        file: File,
        dir: File,
    },
    Named(tempfile::NamedTempFile),
}

impl Temp {
    /// Creates the temporary file for `target`: unnamed where the platform and filesystem
    /// allow it and `prefer_unnamed` is set, named otherwise. Mode `0600` from the start.
    pub(crate) fn create(target: &Path, prefer_unnamed: bool) -> Result<Self, FsError> {
        let dir = parent_dir(target);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if prefer_unnamed && let Some((file, dir)) = unnamed::create(dir)? {
            crate::crash_point("created");
            return Ok(Self { inner: Inner::Unnamed { file, dir }, target: target.into() });
        }
        let _ = prefer_unnamed;
        let tmp = named_temp(dir)?;
        crate::crash_point("created");
        Ok(Self { inner: Inner::Named(tmp), target: target.into() })
    }

    /// Which kind of temporary file this is.
    pub(crate) fn kind(&self) -> Kind {
        match self.inner {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Inner::Unnamed { .. } => Kind::Unnamed,
            Inner::Named(_) => Kind::Named,
        }
    }

    /// The open file, for writing.
    pub(crate) fn file_mut(&mut self) -> &mut File {
        match &mut self.inner {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Inner::Unnamed { file, .. } => file,
            Inner::Named(tmp) => tmp.as_file_mut(),
        }
    }

    /// Writes all of `bytes`; errors name the destination.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<(), FsError> {
        let target = self.target.clone();
        self.file_mut().write_all(bytes).map_err(|e| FsError::new("write", target, e))
    }

    /// Flushes the content to disk, then gives it the destination's name and flushes the
    /// folder. On success, stale temporary files in the folder are removed (best effort, see
    /// [`crate::remove_stale_temp_files`]).
    pub(crate) fn persist(mut self, how: Publish) -> Result<(), FsError> {
        if how == Publish::Replace {
            let target = self.target.clone();
            keep_owner(self.file_mut(), &target);
        }
        let Self { inner, target } = self;
        let operation = match how {
            Publish::Replace => "replace",
            Publish::NoClobber => "create",
        };
        match inner {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Inner::Unnamed { file, dir } => {
                flush(&file, &target)?;
                unnamed::persist(file, &dir, &target, how, operation)?;
            }
            Inner::Named(tmp) => {
                flush(tmp.as_file(), &target)?;
                persist_named(tmp, &target, how, operation)?;
            }
        }
        let _ = stale::remove_stale_temp_files(parent_dir(&target));
        Ok(())
    }
}

/// Gives the new file the owner and group of the regular file it replaces, where this process
/// may (root, or a group it belongs to): an administrator running `app register` as root on a
/// service's `users.json` must not leave the service unable to read it. Best effort: without
/// the right (no `CAP_CHOWN`), the new file belongs to the writer, as any new file does. The
/// mode stays `0600`. `target` is the file at the end of any links ([`crate::resolve_link`]).
fn keep_owner(file: &File, target: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(old) = std::fs::symlink_metadata(target) else { return };
        if !old.file_type().is_file() {
            return;
        }
        adopt_owner(file, old.uid(), old.gid());
    }
    let _ = (file, target);
}

/// Gives `file` the owner `uid` and group `gid` where this process may: the owner and group
/// together, else the group alone (a group of ours). Errors are ignored.
#[cfg(unix)]
pub(crate) fn adopt_owner(file: &File, uid: u32, gid: u32) {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(now) = file.metadata() else { return };
    let uid = (now.uid() != uid).then_some(uid);
    let gid = (now.gid() != gid).then_some(gid);
    if uid.is_some() || gid.is_some() {
        // The owner first and the group alone if that is refused (a group of ours).
        if std::os::unix::fs::fchown(file, uid, gid).is_err() && gid.is_some() {
            let _ = std::os::unix::fs::fchown(file, None, gid);
        }
    }
}

/// `fsync(2)` of the content, before any name points at it.
fn flush(file: &File, target: &Path) -> Result<(), FsError> {
    crate::crash_point("written");
    file.sync_all().map_err(|e| FsError::new("flush", target, e))?;
    crate::crash_point("synced");
    Ok(())
}

/// The fallback: a named private temporary file in `dir`.
fn named_temp(dir: &Path) -> Result<tempfile::NamedTempFile, FsError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(stale::TEMP_PREFIX).suffix(stale::TEMP_SUFFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let tmp =
        builder.tempfile_in(dir).map_err(|e| FsError::new("create a temporary file in", dir, e))?;
    private(tmp.as_file(), dir)?;
    Ok(tmp)
}

/// Sets mode `0600` exactly: the creation mode is reduced by the umask, which could take the
/// owner's read bit away; `fchmod(2)` is not.
fn private(file: &File, dir: &Path) -> Result<(), FsError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| FsError::new("create a temporary file in", dir, e))?;
    }
    let _ = (file, dir);
    Ok(())
}

/// Renames (or, for [`Publish::NoClobber`], links then unlinks) a flushed named temporary
/// file to `target`, then flushes the folder.
fn persist_named(
    tmp: tempfile::NamedTempFile,
    target: &Path,
    how: Publish,
    operation: &'static str,
) -> Result<(), FsError> {
    let persisted = match how {
        Publish::Replace => tmp.persist(target),
        Publish::NoClobber => tmp.persist_noclobber(target),
    };
    // On failure the returned NamedTempFile is dropped here, which removes the temporary name.
    persisted.map_err(|e| FsError::new(operation, target, e.error))?;
    crate::crash_point("published");
    crate::sync_dir(parent_dir(target))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod unnamed {
    //! `O_TMPFILE`, then `linkat(2)` and `renameat(2)` relative to the folder's descriptor.

    use std::ffi::{OsStr, OsString};
    use std::fs::File;
    use std::io::{self, Seek as _, SeekFrom};
    use std::os::fd::AsRawFd as _;
    use std::path::Path;

    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    use rustix::io::Errno;

    use super::{Publish, named_temp, persist_named, private};
    use crate::{FsError, stale};

    /// Attempts at a fresh random temporary name before giving up (a collision needs another
    /// writer to have drawn the same 6 characters out of 62^6).
    const NAME_ATTEMPTS: usize = 16;

    /// Opens an unnamed file in `dir`, or `None` when the kernel or the filesystem does not
    /// support `O_TMPFILE` (the caller falls back to a named file). Other failures (read-only
    /// folder, no space, no permission) are reported: a named file would fail the same way.
    pub(super) fn create(dir: &Path) -> Result<Option<(File, File)>, FsError> {
        let fail = |e: io::Error| FsError::new("create a temporary file in", dir, e);
        let dir_fd = rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail(e.into()))?;
        // No O_EXCL: that flag would forbid ever giving the file a name.
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        match rustix::fs::openat(&dir_fd, ".", flags, Mode::RUSR | Mode::WUSR) {
            Ok(fd) => {
                let file = File::from(fd);
                private(&file, dir)?;
                Ok(Some((file, File::from(dir_fd))))
            }
            // EOPNOTSUPP: the filesystem has no O_TMPFILE (vfat, some network and FUSE
            // filesystems, overlayfs before Linux 6.6). EISDIR: a kernel before 3.11, which
            // reads the flag as O_DIRECTORY. EINVAL: a kernel or filesystem rejecting the flags.
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => Ok(None),
            Err(e) => Err(fail(e.into())),
        }
    }

    /// Gives the flushed unnamed `file` the destination's name.
    ///
    /// - [`Publish::NoClobber`]: one `linkat(2)` straight to the destination; it fails with
    ///   `EEXIST` if anything (even a dangling symbolic link) is there. No window at all: the
    ///   name appears with the complete content, or not at all.
    /// - [`Publish::Replace`]: `linkat(2)` to a fresh `.globo-XXXXXX.tmp` name, then
    ///   `renameat(2)` over the destination (Linux has no call that links over an existing
    ///   name). Between these two consecutive system calls the content has a temporary name; a
    ///   kill exactly there leaves that name behind, private and complete, for
    ///   [`crate::remove_stale_temp_files`].
    ///
    /// Then the folder is flushed, so the new name survives a power loss.
    pub(super) fn persist(
        file: File,
        dir: &File,
        target: &Path,
        how: Publish,
        operation: &'static str,
    ) -> Result<(), FsError> {
        let fail = |e: io::Error| FsError::new(operation, target, e);
        let Some(name) = target.file_name() else {
            return Err(fail(io::Error::new(io::ErrorKind::InvalidInput, "not a file name")));
        };
        match how {
            Publish::NoClobber => match link(&file, dir, name) {
                Ok(()) => {}
                Err(e) if link_unavailable(e) => {
                    return copy_to_named(file, target, how, operation);
                }
                Err(e) => return Err(fail(e.into())),
            },
            Publish::Replace => {
                let temp_name = match link_to_fresh_name(&file, dir) {
                    Ok(temp_name) => temp_name,
                    Err(e) if link_unavailable(e) => {
                        return copy_to_named(file, target, how, operation);
                    }
                    Err(e) => return Err(fail(e.into())),
                };
                // The window opens: the content has a temporary name until renameat returns.
                crate::crash_point("linked");
                if let Err(e) = rustix::fs::renameat(dir, &temp_name, dir, name) {
                    let _ = rustix::fs::unlinkat(dir, &temp_name, AtFlags::empty());
                    return Err(fail(e.into()));
                }
            }
        }
        drop(file);
        crate::crash_point("published");
        dir.sync_all().map_err(|e| FsError::new("flush folder", crate::parent_dir(target), e))
    }

    /// Links `file` at a random `.globo-XXXXXX.tmp` name in `dir`, drawing again on `EEXIST`.
    fn link_to_fresh_name(file: &File, dir: &File) -> Result<OsString, Errno> {
        for _ in 0..NAME_ATTEMPTS {
            let name = random_temp_name()?;
            match link(file, dir, &name) {
                Err(Errno::EXIST) => continue,
                Ok(()) => return Ok(name),
                Err(e) => return Err(e),
            }
        }
        Err(Errno::EXIST)
    }

    /// `.globo-` + 6 random alphanumeric characters + `.tmp`, the name the fallback (and every
    /// earlier globo version) uses, so one sweep covers both.
    fn random_temp_name() -> Result<OsString, Errno> {
        const ALPHABET: &[u8; 62] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).map_err(|_| Errno::IO)?;
        let mut name = String::from(stale::TEMP_PREFIX);
        name.extend(random.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])));
        name.push_str(stale::TEMP_SUFFIX);
        Ok(name.into())
    }

    /// `linkat(2)` of the open unnamed file to `name` in `dir`. First with `AT_EMPTY_PATH`
    /// (allowed for the file's opener since Linux 6.10, and to `CAP_DAC_READ_SEARCH` before),
    /// then through `/proc/self/fd/N` (any kernel with `/proc` mounted).
    fn link(file: &File, dir: &File, name: &OsStr) -> Result<(), Errno> {
        #[cfg(test)]
        if crate::temp_tests::link_unavailable_forced() {
            return Err(Errno::NOENT);
        }
        #[cfg(test)]
        let refused = crate::temp_tests::empty_path_refused_forced();
        #[cfg(not(test))]
        let refused = false;
        if !refused {
            match rustix::fs::linkat(file, "", dir, name, AtFlags::EMPTY_PATH) {
                Err(Errno::NOENT | Errno::PERM) => {}
                other => return other,
            }
        }
        let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        rustix::fs::linkat(CWD, proc_path.as_str(), dir, name, AtFlags::SYMLINK_FOLLOW)
    }

    /// Whether a failed link means "this process cannot link an unnamed file here" (neither
    /// the capability nor `/proc`) rather than a real failure such as `EEXIST` or `ENOSPC`.
    fn link_unavailable(e: Errno) -> bool {
        matches!(e, Errno::NOENT | Errno::PERM | Errno::OPNOTSUPP)
    }

    /// When the unnamed file cannot be linked, its flushed content is copied into a named
    /// temporary file, which is published the fallback way.
    fn copy_to_named(
        mut file: File,
        target: &Path,
        how: Publish,
        operation: &'static str,
    ) -> Result<(), FsError> {
        let dir = crate::parent_dir(target);
        let mut tmp = named_temp(dir)?;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| io::copy(&mut file, tmp.as_file_mut()))
            .map_err(|e| FsError::new("write", target, e))?;
        drop(file);
        super::flush(tmp.as_file(), target)?;
        persist_named(tmp, target, how, operation)
    }
}
