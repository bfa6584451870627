//! Where the bytes wait before they take the destination's name.
//!
//! On Linux the temporary file is unnamed (`O_TMPFILE`): it exists only as an open descriptor,
//! so a process killed before the end leaves nothing on disk. Elsewhere, or on a filesystem
//! that refuses `O_TMPFILE`, it is a named `.globo-XXXXXX.tmp` file beside the destination.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::link::Resolved;
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

/// Attempts at a fresh random temporary name before giving up (a collision needs another
/// writer to have drawn the same 6 characters out of 62^6).
const NAME_ATTEMPTS: usize = 16;

/// A private temporary file in the destination's folder. Every step (creation, link, rename,
/// unlink) is relative to the folder's descriptor from the walk ([`crate::link::resolve`]), so
/// a folder renamed or replaced by a link meanwhile cannot redirect it.
#[derive(Debug)]
pub(crate) struct Temp {
    file: File,
    kind: Kind,
    /// The name of a named temporary file while it has one (removed on drop).
    temp_name: Option<OsString>,
    /// The destination's folder.
    dir: File,
    /// The destination's name in `dir`.
    name: OsString,
    /// The destination: error messages name it, never the temporary file.
    target: PathBuf,
    /// What the walk found at the destination (not following a link), if anything: the only
    /// file whose owner a replacement may keep (see [`trusted_owner`]).
    walked: Option<Stat>,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(temp_name) = self.temp_name.take() {
            let _ = rustix::fs::unlinkat(&self.dir, temp_name.as_os_str(), AtFlags::empty());
        }
    }
}

impl Temp {
    /// Creates the temporary file for the destination `at`: unnamed where the platform and
    /// filesystem allow it and `prefer_unnamed` is set, named otherwise. Mode `0600` from the
    /// start.
    pub(crate) fn create(at: Resolved, prefer_unnamed: bool) -> Result<Self, FsError> {
        let Resolved { dir, name, path: target, stat: walked } = at;
        let shown = parent_dir(&target).to_path_buf();
        let fail = |e: Errno| FsError::new("create a temporary file in", &shown, e.into());
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if prefer_unnamed {
            // No O_EXCL: that flag would forbid ever giving the file a name.
            let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
            match rustix::fs::openat(&dir, ".", flags, Mode::RUSR | Mode::WUSR) {
                Ok(fd) => {
                    let file = File::from(fd);
                    private(&file, &shown)?;
                    crate::crash_point("created");
                    return Ok(Self {
                        file,
                        kind: Kind::Unnamed,
                        temp_name: None,
                        dir,
                        name,
                        target,
                        walked,
                    });
                }
                // EOPNOTSUPP: the filesystem has no O_TMPFILE (vfat, some network and FUSE
                // filesystems, overlayfs before Linux 6.6). EISDIR: a kernel before 3.11, which
                // reads the flag as O_DIRECTORY. EINVAL: a kernel or filesystem rejecting the
                // flags.
                Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {}
                Err(e) => return Err(fail(e)),
            }
        }
        let _ = prefer_unnamed;
        let (file, temp_name) = named_temp(&dir, &shown)?;
        crate::crash_point("created");
        Ok(Self { file, kind: Kind::Named, temp_name: Some(temp_name), dir, name, target, walked })
    }

    /// Which kind of temporary file this is.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// The open file, for writing.
    pub(crate) fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// Writes all of `bytes`; errors name the destination.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<(), FsError> {
        let target = self.target.clone();
        self.file.write_all(bytes).map_err(|e| FsError::new("write", target, e))
    }

    /// Flushes the content to disk, then gives it the destination's name and flushes the
    /// folder. On success, stale temporary files in the folder are removed (best effort, see
    /// [`crate::remove_stale_temp_files`]).
    ///
    /// - [`Publish::NoClobber`]: one `linkat(2)` straight to the destination; it fails with
    ///   `EEXIST` if anything (even a dangling symbolic link) is there. No window at all: the
    ///   name appears with the complete content, or not at all.
    /// - [`Publish::Replace`]: `linkat(2)` to a fresh `.globo-XXXXXX.tmp` name (the unnamed
    ///   file; a named one has it already), then `renameat(2)` over the destination (Linux has
    ///   no call that links over an existing name). Between these two consecutive system calls
    ///   the content has a temporary name; a kill exactly there leaves that name behind,
    ///   private and complete, for [`crate::remove_stale_temp_files`].
    pub(crate) fn persist(mut self, how: Publish) -> Result<(), FsError> {
        if how == Publish::Replace
            && let Some(walked) = &self.walked
            && let Some((uid, gid)) = trusted_owner(&self.dir, &self.name, walked)
        {
            adopt_owner(&self.file, uid, gid);
        }
        let operation = match how {
            Publish::Replace => "replace",
            Publish::NoClobber => "create",
        };
        let target = self.target.clone();
        let fail = |e: Errno| FsError::new(operation, &target, e.into());
        flush(&self.file, &target)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if self.kind == Kind::Unnamed {
            let linked = match how {
                Publish::NoClobber => unnamed::link(&self.file, &self.dir, &self.name),
                Publish::Replace => unnamed::link_to_fresh_name(&self.file, &self.dir)
                    .map(|temp_name| self.temp_name = Some(temp_name)),
            };
            match linked {
                Ok(()) => {}
                Err(e) if unnamed::link_unavailable(e) => self.copy_to_named()?,
                Err(e) => return Err(fail(e)),
            }
        }
        if let Some(temp_name) = self.temp_name.clone() {
            // The window opens: the content has a temporary name until the rename returns.
            crate::crash_point("linked");
            let published = match how {
                Publish::Replace => {
                    rustix::fs::renameat(&self.dir, &temp_name, &self.dir, &self.name)
                }
                Publish::NoClobber => rustix::fs::linkat(
                    &self.dir,
                    &temp_name,
                    &self.dir,
                    &self.name,
                    AtFlags::empty(),
                )
                .and_then(|()| rustix::fs::unlinkat(&self.dir, &temp_name, AtFlags::empty())),
            };
            // On failure, drop removes the temporary name.
            published.map_err(fail)?;
            self.temp_name = None;
        }
        crate::crash_point("published");
        self.dir.sync_all().map_err(|e| FsError::new("flush folder", parent_dir(&target), e))?;
        let _ = stale::remove_stale_in(&self.dir, parent_dir(&target));
        Ok(())
    }

    /// When the unnamed file cannot be linked, its flushed content is copied into a named
    /// temporary file, which is published the fallback way.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn copy_to_named(&mut self) -> Result<(), FsError> {
        use std::io::{Seek as _, SeekFrom};
        let shown = parent_dir(&self.target).to_path_buf();
        let (mut named, temp_name) = named_temp(&self.dir, &shown)?;
        self.temp_name = Some(temp_name);
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| io::copy(&mut self.file, &mut named))
            .map_err(|e| FsError::new("write", &self.target, e))?;
        self.file = named;
        self.kind = Kind::Named;
        flush(&self.file, &self.target)
    }
}

/// The owner and group a new file written as `name` in `dir` may take over from the regular
/// file the walk found there (`walked`), or `None` (the new file then stays the writer's, as
/// any new file does). An administrator running `app register` as root on a service's
/// `users.json` must not leave the service unable to read it; but a name another user created
/// or swapped in must never be handed root's new content (a key, a password hash). So the
/// owner is kept only when all of these hold:
/// - `name` is still the very file the walk found (same device and inode, not following a
///   link): a name created or replaced since is nobody's to inherit;
/// - it is a regular file with a single name (a hard link made by its owner would give that
///   owner the new content under another name);
/// - its owner is root, or the folder's owner, or the folder is not writable by others (mode
///   bit `o+w` clear). Only a folder anyone may write (`/tmp`, a shared upload folder) lets
///   another user plant a name there, so a file of another user in such a folder may be a
///   plant, and does not get the new content. A folder its group may write (`root:app 0770`,
///   `deploy:www 2775`) is the usual home of a service's files: the group's members are the
///   service and its operators, and a service's `users.json` there keeps its owner when root
///   writes it.
pub(crate) fn trusted_owner(dir: &File, name: &OsStr, walked: &Stat) -> Option<(u32, u32)> {
    let now = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    let same = now.st_dev == walked.st_dev && now.st_ino == walked.st_ino;
    if !same || !FileType::from_raw_mode(now.st_mode).is_file() || now.st_nlink != 1 {
        return None;
    }
    let folder = rustix::fs::fstat(dir).ok()?;
    let others_cannot_plant = folder.st_mode & 0o002 == 0;
    (now.st_uid == 0 || now.st_uid == folder.st_uid || others_cannot_plant)
        .then_some((now.st_uid, now.st_gid))
}

/// The owner and group of the file the walk found at `name` in `dir`, if the name still holds
/// that very regular file. For a lock file, which is always empty: handing it to a planted
/// file's owner gives nothing away (that owner could already keep the lock busy), while
/// refusing would leave a root-owned lock that locks the data's owner out for good.
pub(crate) fn walked_owner(dir: &File, name: &OsStr, walked: &Stat) -> Option<(u32, u32)> {
    let now = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    let same = now.st_dev == walked.st_dev && now.st_ino == walked.st_ino;
    (same && FileType::from_raw_mode(now.st_mode).is_file()).then_some((now.st_uid, now.st_gid))
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

/// The fallback: a named private temporary file `.globo-XXXXXX.tmp` in `dir`, created with
/// `O_EXCL` (never through a link); `shown` names the folder in errors.
fn named_temp(dir: &File, shown: &Path) -> Result<(File, OsString), FsError> {
    let fail = |e: Errno| FsError::new("create a temporary file in", shown, e.into());
    let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    for _ in 0..NAME_ATTEMPTS {
        let temp_name = random_temp_name().map_err(fail)?;
        match rustix::fs::openat(dir, temp_name.as_os_str(), flags, Mode::RUSR | Mode::WUSR) {
            Ok(fd) => {
                let file = File::from(fd);
                if let Err(e) = private(&file, shown) {
                    let _ = rustix::fs::unlinkat(dir, temp_name.as_os_str(), AtFlags::empty());
                    return Err(e);
                }
                return Ok((file, temp_name));
            }
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    Err(fail(Errno::EXIST))
}

/// `.globo-` + 6 random alphanumeric characters + `.tmp`, the name every globo version uses
/// for its temporary files, so one sweep covers them all.
fn random_temp_name() -> Result<OsString, Errno> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut random = [0u8; 6];
    getrandom::fill(&mut random).map_err(|_| Errno::IO)?;
    let mut name = String::from(stale::TEMP_PREFIX);
    name.extend(random.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])));
    name.push_str(stale::TEMP_SUFFIX);
    Ok(name.into())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod unnamed {
    //! `linkat(2)` of an `O_TMPFILE` file relative to the folder's descriptor.

    use std::ffi::{OsStr, OsString};
    use std::fs::File;
    use std::os::fd::AsRawFd as _;

    use rustix::fs::{AtFlags, CWD};
    use rustix::io::Errno;

    use super::{NAME_ATTEMPTS, random_temp_name};

    /// Links `file` at a random `.globo-XXXXXX.tmp` name in `dir`, drawing again on `EEXIST`.
    pub(super) fn link_to_fresh_name(file: &File, dir: &File) -> Result<OsString, Errno> {
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

    /// `linkat(2)` of the open unnamed file to `name` in `dir`. First with `AT_EMPTY_PATH`
    /// (allowed for the file's opener since Linux 6.10, and to `CAP_DAC_READ_SEARCH` before),
    /// then through `/proc/self/fd/N` (any kernel with `/proc` mounted).
    pub(super) fn link(file: &File, dir: &File, name: &OsStr) -> Result<(), Errno> {
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
    pub(super) fn link_unavailable(e: Errno) -> bool {
        matches!(e, Errno::NOENT | Errno::PERM | Errno::OPNOTSUPP)
    }
}
