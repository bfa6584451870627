//! A private folder for a data set kept in many files (say, throttling's shards).

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::{FsError, link, temp};

/// Creates the folder `path` with mode `0700` if it does not exist, and checks the folder
/// that is there: a private place for files [`write_atomic`](crate::write_atomic) and
/// [`ExclusiveLock`](crate::ExclusiveLock) then keep in it.
///
/// The folders leading to `path` are walked as a write's are (links obey the owner rule of
/// [`resolve_link`](crate::resolve_link)); `path` itself is never followed: a symbolic link
/// there, or anything but a folder, is refused. An existing folder must belong to this
/// process's user or to the owner of the folder it is in (who could replace it anyway), and
/// must give group and others no access (`chmod 700` fixes that): anything else may have been
/// planted, and is refused rather than used. A folder this call creates gets the owner and
/// group of the folder it is in where this process may set them (root creating it in a
/// service's folder leaves it to the service), like a lock file.
///
/// Two processes creating the same folder at once both succeed. Blocks on a few system calls
/// (no `fsync`: an empty folder lost in a crash is created again by the next call).
pub fn create_private_dir(path: &Path) -> Result<(), FsError> {
    let refuse = |why: String| {
        FsError::new("use folder", path, io::Error::new(io::ErrorKind::InvalidData, why))
    };
    let at = link::resolve(path, false)?;
    let created = match rustix::fs::mkdirat(&at.dir, at.name.as_os_str(), Mode::RWXU) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(e) => return Err(FsError::new("create folder", path, e.into())),
    };
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let folder = match rustix::fs::openat(&at.dir, at.name.as_os_str(), flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(Errno::LOOP | Errno::NOTDIR) => {
            return Err(refuse(
                "it is not a folder (a symbolic link or a file?); remove it, or move it away"
                    .into(),
            ));
        }
        Err(e) => return Err(FsError::new("open folder", path, e.into())),
    };
    let parent = rustix::fs::fstat(&at.dir).map_err(|e| FsError::new("inspect", path, e.into()))?;
    if created {
        temp::adopt_owner(&folder, parent.st_uid, parent.st_gid);
    }
    let st = rustix::fs::fstat(&folder).map_err(|e| FsError::new("inspect", path, e.into()))?;
    if !FileType::from_raw_mode(st.st_mode).is_dir() {
        return Err(refuse("it is not a folder".into()));
    }
    let me = rustix::process::geteuid().as_raw();
    if st.st_uid != me && st.st_uid != parent.st_uid {
        return Err(refuse(format!(
            "it belongs to uid {}, neither this user nor the owner of the folder it is in (it \
             may have been planted); remove it while no globo process is running",
            st.st_uid
        )));
    }
    let loose = st.st_mode & 0o077;
    if loose != 0 {
        return Err(refuse(format!(
            "group or others may access it (mode {:04o}); make it private with `chmod 700`",
            st.st_mode & 0o7777
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn creates_a_private_folder_and_accepts_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json.throttle");
        create_private_dir(&path).unwrap();
        assert!(path.is_dir());
        assert_eq!(mode(&path), 0o700);
        create_private_dir(&path).unwrap();
        // Racing creators both succeed.
        let racing = dir.path().join("racing");
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| create_private_dir(&racing))).collect();
            for h in handles {
                h.join().unwrap().unwrap();
            }
        });
    }

    #[test]
    fn refuses_a_link_a_file_and_a_folder_others_may_enter() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = create_private_dir(&link).unwrap_err();
        assert!(err.to_string().contains("link"), "{err}");
        assert!(
            crate::with_causes(&err).to_string().contains("not a folder"),
            "{}",
            crate::with_causes(&err)
        );
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());

        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = create_private_dir(&file).unwrap_err();
        assert!(
            crate::with_causes(&err).to_string().contains("not a folder"),
            "{}",
            crate::with_causes(&err)
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"x");

        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = create_private_dir(&open).unwrap_err();
        let shown = crate::with_causes(&err).to_string();
        assert!(shown.contains("mode 0755") && shown.contains("chmod 700"), "{shown}");
        assert_eq!(mode(&open), 0o755, "never changed behind the operator's back");
    }

    #[test]
    fn a_missing_parent_fails_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("users.json.throttle");
        let err = create_private_dir(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!path.exists());
    }
}
