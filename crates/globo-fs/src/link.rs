//! Which file a write lands on when its path goes through symbolic links, found by descriptor.
//!
//! A deployment may link `secret.key`, `config.enc` or `users.json` (or their folder) to shared
//! storage. Replacing the link by a regular file would silently detach it (the shared file
//! keeps the old content), so a replacing write follows the links and replaces the file at
//! their end, in that file's folder.
//!
//! The path is walked one component at a time, each folder opened relative to the previous
//! one without following a link (`openat(2)` with `O_NOFOLLOW | O_DIRECTORY`); a link met on
//! the way is opened itself (`O_PATH | O_NOFOLLOW` on Linux), its owner and text read from that
//! one descriptor (`fstat(2)`, `readlinkat(fd, "")`), and its text walked the same way. The
//! owner rule is checked before the final folder is opened for reading. The walk ends with a
//! descriptor of the final folder and a name in it, and every later step (the temporary file,
//! the rename, the lock file, an unlink) is relative to that descriptor: renaming or replacing a
//! folder of the path afterwards, by a link or otherwise, cannot redirect it.
//!
//! **The owner rule.** Every symbolic link followed, a link to a folder as much as the last
//! one, must belong to root or to the owner of the file at the end of the path (of the folder
//! the file will be created in, when it does not exist yet). So a link planted by another user
//! cannot make globo, run as root or as the victim, write, lock or delete a file of the
//! victim's, whichever component of the path it hides in. (Linux's `fs.protected_symlinks` is a
//! different rule, applied only in sticky world-writable folders and compared with the follower;
//! globo applies its own rule in every folder.)

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::FsError;

/// Links followed in one walk before giving up: Linux's own limit for one path lookup.
const MAX_LINKS: usize = 40;

/// Where a write lands: a descriptor of the final folder and the file's name in it.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The final folder, opened by the walk (readable, so it can be flushed).
    pub(crate) dir: File,
    /// The file's name in `dir`.
    pub(crate) name: OsString,
    /// The file's path, for messages: the path given when no link was followed, the path
    /// through the links' texts otherwise.
    pub(crate) path: PathBuf,
    /// What is at `name` now (not following a link), if anything.
    pub(crate) stat: Option<Stat>,
}

/// The flags a folder of the path is opened with: no link followed, and on Linux `O_PATH`, so
/// a folder this process may search but not read (mode `0711`) can still be walked through.
fn walk_flags() -> OFlags {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let path = OFlags::PATH;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let path = OFlags::RDONLY;
    path | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Test hook at `step`, between the walk and the act on its result: a test swaps a folder for
/// a link there (see `tests.rs`). Compiled out of every non-test build.
#[cfg(test)]
pub(crate) fn test_hook(step: &str) {
    crate::tests::run_hook(step);
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn test_hook(_step: &str) {}

/// Walks `path` by descriptor (see the module docs). With `follow_last`, a link as the last
/// component is followed to a regular file (a dangling one, one to anything else or a loop is
/// refused); without, the last component is taken as it is (a new file is never created
/// through a link). Every link followed obeys the owner rule.
pub(crate) fn resolve(path: &Path, follow_last: bool) -> Result<Resolved, FsError> {
    let refuse = |kind: io::ErrorKind, why: String| {
        FsError::new("write through", path, io::Error::new(kind, why))
    };
    let walk_error = |e: Errno| FsError::new("open the folders of", path, e.into());
    let open_root = |absolute: bool| {
        rustix::fs::openat(CWD, if absolute { "/" } else { "." }, walk_flags(), Mode::empty())
            .map_err(walk_error)
    };
    let mut todo: VecDeque<OsString> = VecDeque::new();
    let absolute = push_components(&mut todo, path, false);
    let mut dir = open_root(absolute)?;
    let mut shown = PathBuf::from(if absolute { "/" } else { "" });
    // Every link followed and its owner.
    let mut links: Vec<(PathBuf, u32)> = Vec::new();
    // Whether the last component now comes from the text of a link that was itself last.
    let mut last_from_link = false;
    if todo.is_empty() {
        return Err(refuse(io::ErrorKind::InvalidInput, "it names no file".into()));
    }
    let name;
    loop {
        let Some(component) = todo.pop_front() else {
            return Err(refuse(io::ErrorKind::InvalidInput, "it names no file".into()));
        };
        let last = todo.is_empty();
        if component == ".." && !last {
            dir =
                rustix::fs::openat(&dir, "..", walk_flags(), Mode::empty()).map_err(walk_error)?;
            up(&mut shown);
            continue;
        }
        if last && !follow_last {
            name = component;
            break;
        }
        let stat = match rustix::fs::statat(&dir, component.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
        {
            Ok(stat) => Some(stat),
            Err(Errno::NOENT) if last => None,
            Err(e) => return Err(walk_error(e)),
        };
        let is_link =
            stat.as_ref().is_some_and(|s| FileType::from_raw_mode(s.st_mode).is_symlink());
        if !is_link {
            if last {
                name = component;
                break;
            }
            dir = rustix::fs::openat(&dir, component.as_os_str(), walk_flags(), Mode::empty())
                .map_err(walk_error)?;
            shown.push(&component);
            continue;
        }
        test_hook("link found");
        if links.len() == MAX_LINKS {
            return Err(refuse(
                io::ErrorKind::InvalidInput,
                format!("it starts a chain of more than {MAX_LINKS} symbolic links (a loop?)"),
            ));
        }
        // The owner and the text of one and the same link.
        let (uid, text) = read_link(&dir, &component)
            .map_err(|e| FsError::new("read the symbolic link", shown.join(&component), e))?;
        links.push((shown.join(&component), uid));
        if push_components(&mut todo, &text, true) {
            dir = open_root(true)?;
            shown = PathBuf::from("/");
        }
        if last {
            last_from_link = true;
        }
        if todo.is_empty() {
            // A link to "." or "/": not a file.
            return Err(refuse(
                io::ErrorKind::InvalidInput,
                format!(
                    "it is a symbolic link to '{}', which is not a regular file",
                    text.display()
                ),
            ));
        }
    }
    let stat = if follow_last {
        match rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Some(stat),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(walk_error(e)),
        }
    } else {
        rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).ok()
    };
    let target = shown.join(&name);
    if last_from_link {
        match &stat {
            None => {
                return Err(refuse(
                    io::ErrorKind::NotFound,
                    format!(
                        "it is a symbolic link to '{}', which does not exist; create that file \
                         first, or remove the link",
                        target.display()
                    ),
                ));
            }
            Some(s) if !FileType::from_raw_mode(s.st_mode).is_file() => {
                return Err(refuse(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "it is a symbolic link to '{}', which is not a regular file",
                        target.display()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    // The owner rule, before the folder is opened for real.
    if !links.is_empty() {
        // The owner of the file at the end, or of the folder it will be created in.
        let owner = match &stat {
            Some(s) if follow_last || FileType::from_raw_mode(s.st_mode).is_file() => s.st_uid,
            _ => rustix::fs::fstat(&dir).map_err(walk_error)?.st_uid,
        };
        check_link_owners(&links, &target, owner)
            .map_err(|why| refuse(io::ErrorKind::PermissionDenied, why))?;
    }
    // The folder itself, readable (an O_PATH descriptor cannot be flushed or written through).
    let dir = rustix::fs::openat(
        &dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| FsError::new("open the folder of", path, e.into()))?;
    let path = if links.is_empty() { path.to_path_buf() } else { target };
    Ok(Resolved { dir: File::from(dir), name, path, stat })
}

/// The owner and the text of the symbolic link `name` in `dir`. On Linux both come from one
/// descriptor of the link itself (`O_PATH | O_NOFOLLOW`, then `fstat(2)` and
/// `readlinkat(fd, "")`), so a link swapped for another between the two reads cannot lend the
/// first one's owner to the second one's text; a link replaced by anything else meanwhile is an
/// error.
fn read_link(dir: &impl AsFd, name: &OsStr) -> Result<(u32, PathBuf), io::Error> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let link = rustix::fs::openat(dir, name, flags, Mode::empty())?;
        let stat = rustix::fs::fstat(&link)?;
        if !FileType::from_raw_mode(stat.st_mode).is_symlink() {
            return Err(io::Error::other(
                "it was replaced while it was being read (a symbolic link no more)",
            ));
        }
        let text = rustix::fs::readlinkat(&link, "", Vec::new())?;
        Ok((stat.st_uid, PathBuf::from(OsStr::from_bytes(text.as_bytes()))))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // No O_PATH: the owner, then the text, by name.
        let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let text = rustix::fs::readlinkat(dir, name, Vec::new())?;
        Ok((stat.st_uid, PathBuf::from(OsStr::from_bytes(text.as_bytes()))))
    }
}

/// `shown`'s parent, for a `..` component: the last component is dropped only when it is a
/// name (`PathBuf::pop` would also drop a `..`, turning `../..` into nothing); `/..` is `/`.
fn up(shown: &mut PathBuf) {
    match shown.components().next_back() {
        Some(Component::Normal(_)) => {
            shown.pop();
        }
        Some(Component::RootDir | Component::Prefix(_)) => {}
        Some(Component::ParentDir | Component::CurDir) | None => shown.push(".."),
    }
}

/// Appends (or, for a link's text, prepends) the components of `path` to `todo`; returns
/// whether it is absolute (the walk then restarts at `/`). `.` components are dropped.
fn push_components(todo: &mut VecDeque<OsString>, path: &Path, front: bool) -> bool {
    let mut absolute = false;
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::Prefix(_) => absolute = true,
            Component::CurDir => {}
            Component::ParentDir => parts.push(OsString::from("..")),
            Component::Normal(part) => parts.push(part.to_os_string()),
        }
    }
    if front {
        for part in parts.into_iter().rev() {
            todo.push_front(part);
        }
    } else {
        todo.extend(parts);
    }
    absolute
}

/// The file a replacing write to `path` ([`write_atomic`](crate::write_atomic),
/// [`AtomicFile`](crate::AtomicFile)) lands on, and whose sidecar lock
/// ([`ExclusiveLock`](crate::ExclusiveLock)) guards it: `path` itself when no symbolic link is
/// followed (including when nothing is there yet), otherwise the path through the links'
/// texts.
///
/// The answer is for messages and for reading: by the time a path is used again, a folder on
/// it may have been replaced. globo's own writes, locks and removals therefore never reuse it;
/// they walk the path by descriptor and act relative to the final folder (see
/// [`RemovableFile`](crate::RemovableFile) for a removal).
///
/// Refused, with an error naming `path` and the reason:
/// - a dangling link (its target does not exist): creating a file where a link points is how a
///   planted link redirects a write, and the deployment that made the link made its target too;
/// - a link to anything but a regular file (a folder, a FIFO, a device);
/// - a chain of more than 40 links (a loop);
/// - a link, to the file or to any folder on the way, owned by someone other than root or the
///   owner of the file at the end (the owner of its folder while it does not exist).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let shared = dir.path().join("shared.key");
/// std::fs::write(&shared, b"old")?;
/// # #[cfg(unix)] {
/// let link = dir.path().join("secret.key");
/// std::os::unix::fs::symlink(&shared, &link)?;
/// assert_eq!(globo_fs::resolve_link(&link)?, shared);
/// globo_fs::write_atomic(&link, b"new")?;
/// assert_eq!(std::fs::read(&shared)?, b"new");
/// assert!(std::fs::symlink_metadata(&link)?.file_type().is_symlink());
/// # }
/// # Ok(()) }
/// ```
pub fn resolve_link(path: &Path) -> Result<PathBuf, FsError> {
    resolve(path, true).map(|r| r.path)
}

/// Every link followed must belong to root or to `owner`, the owner of the file at the end.
fn check_link_owners(links: &[(PathBuf, u32)], target: &Path, owner: u32) -> Result<(), String> {
    for (link, uid) in links {
        if *uid != 0 && *uid != owner {
            return Err(format!(
                "the symbolic link '{}' (owner uid {uid}) leads to '{}' (owner uid {owner}); a \
                 path is followed through a link only when the link belongs to root or to the \
                 owner of the file at the end",
                link.display(),
                target.display()
            ));
        }
    }
    Ok(())
}
