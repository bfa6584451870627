//! Deleting exactly the file that was checked.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::FsError;
use crate::link::{self, Resolved};

/// A regular file opened at the end of its path's links, to be read, checked and then deleted:
/// what `encrypt --remove-plaintext` does with the plaintext.
///
/// [`open`](Self::open) walks the path by descriptor like a write ([`resolve_link`]'s rules,
/// the owner rule for every link included) and opens the file once, without following a link;
/// the caller reads the content from [`file`](Self::file). [`remove`](Self::remove) unlinks the
/// name relative to the folder's descriptor from the walk, and only if that name still refers
/// to the very file that was opened (same device and inode): a folder of the path replaced by
/// a link, or the file replaced by another, after the check is refused, never deleted.
///
/// [`resolve_link`]: crate::resolve_link
#[derive(Debug)]
pub struct RemovableFile {
    file: File,
    dir: File,
    name: OsString,
    path: PathBuf,
    dev: u64,
    ino: u64,
    links: u64,
}

impl RemovableFile {
    /// Opens the regular file at `path` (at the end of its links). Anything but a regular
    /// file (a FIFO, a device, a folder) is refused with [`io::ErrorKind::InvalidInput`]; a
    /// missing one with [`io::ErrorKind::NotFound`].
    pub fn open(path: &Path) -> Result<Self, FsError> {
        let Resolved { dir, name, path: shown, .. } = link::resolve(path, true)?;
        link::test_hook("resolved");
        // O_NONBLOCK: a FIFO put there meanwhile is refused below instead of blocking.
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, name.as_os_str(), flags, Mode::empty())
            .map_err(|e| FsError::new("open", &shown, e.into()))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| FsError::new("inspect", &shown, e.into()))?;
        if !FileType::from_raw_mode(st.st_mode).is_file() {
            return Err(FsError::new(
                "open",
                &shown,
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        // Reads block as usual from here on.
        rustix::fs::fcntl_setfl(&fd, OFlags::empty())
            .map_err(|e| FsError::new("open", &shown, e.into()))?;
        Ok(Self {
            file: File::from(fd),
            dir,
            name,
            path: shown,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            links: st.st_nlink as u64,
        })
    }

    /// The file's path (through the links' texts when `path` went through links).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, to read the content that is checked.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// How many names (hard links) the file had when it was opened: deleting one name of a
    /// file with several leaves its content reachable through the others.
    pub fn links(&self) -> u64 {
        self.links
    }

    /// Deletes the file's name, if it still names the file that was opened and the file has
    /// no more names than it had then (a hard link added since is refused: the content would
    /// stay reachable), and flushes the folder so the removal survives a power loss.
    pub fn remove(self) -> Result<(), FsError> {
        link::test_hook("before unlink");
        let fail = |e: io::Error| FsError::new("remove", &self.path, e);
        let now = rustix::fs::statat(&self.dir, self.name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| fail(e.into()))?;
        if now.st_dev as u64 != self.dev || now.st_ino as u64 != self.ino {
            return Err(fail(io::Error::other(
                "it was replaced by another file after it was checked; nothing was removed",
            )));
        }
        // A name added since the check (a hard link made after `open`) would keep the content
        // reachable after a removal reported as done: checked on the open file, last thing
        // before the unlink.
        let names = rustix::fs::fstat(&self.file).map_err(|e| fail(e.into()))?.st_nlink as u64;
        if names > self.links {
            return Err(fail(io::Error::other(
                "it was given another name (a hard link) after it was checked; nothing was \
                 removed",
            )));
        }
        rustix::fs::unlinkat(&self.dir, self.name.as_os_str(), AtFlags::empty())
            .map_err(|e| fail(e.into()))?;
        self.dir
            .sync_all()
            .map_err(|e| FsError::new("flush folder", crate::parent_dir(&self.path), e))
    }
}
