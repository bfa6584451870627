//! Temporary files left behind by killed writers: recognised by name, removed once old.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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
///
/// [`write_atomic`](crate::write_atomic), [`create_new`](crate::create_new) and
/// [`AtomicFile::commit`](crate::AtomicFile::commit) call this on the destination's folder
/// after every successful write, ignoring its errors. Call it directly to report what was
/// removed, for example from a maintenance command.
///
/// ```
/// # fn main() -> Result<(), globo_fs::FsError> {
/// let dir = tempfile::tempdir().map_err(|e| globo_fs::FsError::new("create", ".", e))?;
/// let removed = globo_fs::remove_stale_temp_files(dir.path())?;
/// assert!(removed.is_empty());
/// # Ok(()) }
/// ```
pub fn remove_stale_temp_files(dir: &Path) -> Result<Vec<PathBuf>, FsError> {
    let entries = fs::read_dir(dir).map_err(|e| FsError::new("list", dir, e))?;
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| FsError::new("list", dir, e))?;
        if !is_temp_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        // lstat: a symbolic link is judged as a link, and skipped.
        let Ok(metadata) = fs::symlink_metadata(&path) else { continue };
        if !metadata.file_type().is_file() || !owned_by_current_user(&metadata) {
            continue;
        }
        let old_enough = metadata
            .modified()
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age >= STALE_TEMP_AGE);
        if !old_enough {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            // Another process removed it first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(FsError::new("remove stale temporary file", &path, e)),
        }
    }
    Ok(removed)
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

fn owned_by_current_user(metadata: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        metadata.uid() == rustix::process::geteuid().as_raw()
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        true
    }
}
