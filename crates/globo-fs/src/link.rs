//! Which file a replacing write lands on when the destination is a symbolic link.
//!
//! A deployment may link `secret.key`, `config.enc` or `users.json` to shared storage. Replacing
//! the link by a regular file would silently detach it (the shared file keeps the old content),
//! so a replacing write follows the chain of links and replaces the file at its end, in that
//! file's folder. Only a regular file is written through a link, and only a link its target's
//! owner (or root) made: a link planted by another user cannot make globo, run as root or as
//! the victim, overwrite a file of the attacker's choosing (the rule of Linux's
//! `fs.protected_symlinks`, applied in every folder).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::{FsError, parent_dir};

/// Links followed in a row before giving up: Linux's own limit for one path lookup.
const MAX_LINKS: usize = 40;

/// The file a replacing write to `path` ([`write_atomic`](crate::write_atomic),
/// [`AtomicFile`](crate::AtomicFile)) lands on, and whose sidecar lock
/// ([`ExclusiveLock`](crate::ExclusiveLock)) guards it.
///
/// `path` itself when it is not a symbolic link (including when nothing is there yet).
/// Otherwise the chain of links is followed (a relative link is relative to its own folder) to
/// the file at its end, which is returned. Refused, with an error naming `path` and the
/// reason:
/// - a dangling link (its target does not exist): creating a file where a link points is how a
///   planted link redirects a write, and the deployment that made the link made its target too;
/// - a link to anything but a regular file (a folder, a FIFO, a device);
/// - a chain of more than 40 links (a loop);
/// - a link owned by someone other than root or the target's owner (Unix).
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
    let refuse = |why: String| {
        FsError::new("write through", path, io::Error::new(io::ErrorKind::InvalidInput, why))
    };
    let mut current = path.to_path_buf();
    // Every link of the chain and its owner.
    let mut links: Vec<(PathBuf, Option<u32>)> = Vec::new();
    for _ in 0..=MAX_LINKS {
        let metadata = match fs::symlink_metadata(&current) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound && links.is_empty() => {
                return Ok(current);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(FsError::new(
                    "write through",
                    path,
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "it is a symbolic link to '{}', which does not exist; create that \
                             file first, or remove the link",
                            current.display()
                        ),
                    ),
                ));
            }
            Err(e) => return Err(FsError::new("inspect", &current, e)),
        };
        if !metadata.file_type().is_symlink() {
            if links.is_empty() {
                return Ok(current);
            }
            if !metadata.is_file() {
                return Err(refuse(format!(
                    "it is a symbolic link to '{}', which is not a regular file",
                    current.display()
                )));
            }
            check_link_owners(&links, &current, &metadata).map_err(refuse)?;
            return Ok(current);
        }
        links.push((current.clone(), owner(&metadata)));
        let next = fs::read_link(&current)
            .map_err(|e| FsError::new("read the symbolic link", &current, e))?;
        current = if next.is_absolute() { next } else { parent_dir(&current).join(next) };
    }
    Err(refuse(format!("it starts a chain of more than {MAX_LINKS} symbolic links (a loop?)")))
}

#[cfg(unix)]
fn owner(metadata: &fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    Some(metadata.uid())
}

#[cfg(not(unix))]
fn owner(_metadata: &fs::Metadata) -> Option<u32> {
    None
}

/// Every link of the chain must belong to root or to the owner of the file at its end.
fn check_link_owners(
    links: &[(PathBuf, Option<u32>)],
    target: &Path,
    target_metadata: &fs::Metadata,
) -> Result<(), String> {
    let Some(target_owner) = owner(target_metadata) else { return Ok(()) };
    for (link, link_owner) in links {
        if let Some(uid) = *link_owner
            && uid != 0
            && uid != target_owner
        {
            return Err(format!(
                "the symbolic link '{}' (owner uid {uid}) points to '{}' (owner uid \
                 {target_owner}); a file is written through a link only when the link belongs \
                 to root or to the file's owner",
                link.display(),
                target.display()
            ));
        }
    }
    Ok(())
}
