//! Temporary files left behind by killed writers: recognised by name, removed once old.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::FsError;

/// Every temporary name starts with this...
pub(crate) const TEMP_PREFIX: &str = ".globo-";
/// ...and ends with this.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// How long a `.globo-*.tmp` file must have gone unmodified before
/// [`remove_stale_temp_files`] treats it as abandoned: one hour.
///
/// A live writer modifies its temporary file with every write and renames it away within
/// milliseconds of the last one, so an hour without a change means a writer that was killed (or
/// stopped for an hour, whose final rename then fails cleanly: the destination is untouched).
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);

/// Removes the abandoned temporary files in `dir` and returns their paths.
///
/// A file is removed only if all of these hold: its name is a globo temporary name
/// (`.globo-` followed by 1 to 32 letters or digits, then `.tmp`); it is a regular file (a
/// symbolic link with such a name is left alone, never followed); it belongs to the current
/// user; and it has not been modified for [`STALE_TEMP_AGE`] (a modification time in the
/// future never qualifies). So a temporary file another process is writing is never removed.
/// `dir` is opened once; every entry is listed, inspected and unlinked relative to that
/// descriptor (`statat`/`unlinkat`), never by a path that a folder replaced meanwhile could
/// redirect. After a write, the sweep runs on the very folder written to (the walk's
/// descriptor).
///
/// [`write_atomic`](crate::write_atomic), [`create_new`](crate::create_new) and
/// [`AtomicFile::commit`](crate::AtomicFile::commit) call this on the destination's folder
/// after every successful write, ignoring its errors. Call it directly to report what was
/// removed, for example from a maintenance command. Blocks while it lists the whole folder
/// (time grows with the number of entries); allocates only the paths it returns.
///
/// ```
/// # fn main() -> Result<(), globo_fs::FsError> {
/// let dir = tempfile::tempdir().map_err(|e| globo_fs::FsError::new("create", ".", e))?;
/// let removed = globo_fs::remove_stale_temp_files(dir.path())?;
/// assert!(removed.is_empty());
/// # Ok(()) }
/// ```
pub fn remove_stale_temp_files(dir: &Path) -> Result<Vec<PathBuf>, FsError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(CWD, dir, flags, Mode::empty())
        .map_err(|e| FsError::new("list", dir, e.into()))?;
    remove_stale_in(&fd, dir)
}

/// [`remove_stale_temp_files`] in the open folder `dir` (`shown` in messages and in the paths
/// returned): listed, inspected (not following a link) and unlinked relative to the descriptor,
/// so a folder of the path replaced by a link meanwhile cannot send the sweep elsewhere.
pub(crate) fn remove_stale_in(dir: impl AsFd, shown: &Path) -> Result<Vec<PathBuf>, FsError> {
    let dir = dir.as_fd();
    let list = |e: Errno| FsError::new("list", shown, e.into());
    let entries = Dir::read_from(dir).map_err(list)?;
    let now = SystemTime::now();
    let me = rustix::process::geteuid().as_raw();
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(list)?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if !is_temp_name(name) {
            continue;
        }
        // lstat: a symbolic link is judged as a link, and skipped.
        let Ok(st) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else { continue };
        if !FileType::from_raw_mode(st.st_mode).is_file() || st.st_uid != me {
            continue;
        }
        let old_enough = modified(&st)
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age >= STALE_TEMP_AGE);
        if !old_enough {
            continue;
        }
        let path = shown.join(name);
        match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) => removed.push(path),
            // Another process removed it first.
            Err(Errno::NOENT) => {}
            Err(e) => return Err(FsError::new("remove stale temporary file", &path, e.into())),
        }
    }
    Ok(removed)
}

/// The modification time in `st`, if it is after 1970.
fn modified(st: &Stat) -> Option<SystemTime> {
    let secs = u64::try_from(st.st_mtime).ok()?;
    let nanos = u32::try_from(st.st_mtime_nsec).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Whether `name` is one globo (any version, either kind of temporary file) gives a
/// temporary file: `.globo-` + 1 to 32 ASCII letters or digits + `.tmp`.
pub(crate) fn is_temp_name(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else { return false };
    name.strip_prefix(TEMP_PREFIX).and_then(|rest| rest.strip_suffix(TEMP_SUFFIX)).is_some_and(
        |random| {
            (1..=32).contains(&random.len()) && random.bytes().all(|b| b.is_ascii_alphanumeric())
        },
    )
}
