//! Crash-safe key rotation of a key file and the files encrypted under it.
//!
//! The steps, each durable on disk before the next begins:
//!
//! 1. the new key is written to `secret.key.next` (created exclusively, mode `0600`);
//! 2. each file is re-encrypted under the new key, atomically (a file already under the new key
//!    is skipped);
//! 3. the old key is copied to `secret.key.retired-<UTC time>`, a backup the user deletes once
//!    no copy of an old file (a backup, another machine) needs it;
//! 4. the new key atomically replaces `secret.key`;
//! 5. `secret.key.next` is removed.
//!
//! At every instant the key files on disk decrypt every file: [`crate::LoadedKeys`] loads
//! `secret.key.next` as well while it exists. Running the rotation again after a crash
//! completes it (it never generates a second new key while `secret.key.next` exists).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::file::{reencrypt_file, sync_parent};
use crate::keyring::{LoadedKeys, next_key_path};
use crate::{CryptoError, Key, KeyFile, Keyring};

/// A rotation step, reported to the observer once it is durable on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationStep {
    /// The new key was written to `secret.key.next`.
    NextKeyWritten,
    /// A file (the `index`-th of the list, from 1) is now encrypted under the new key.
    FileReencrypted {
        /// Position in the list of files, from 1.
        index: usize,
        /// The file.
        path: PathBuf,
    },
    /// The old key is saved in the retired backup file.
    OldKeyRetired {
        /// The backup file.
        path: PathBuf,
    },
    /// The new key replaced the key file.
    KeyInstalled,
    /// `secret.key.next` is gone: the rotation is complete.
    NextKeyRemoved,
}

impl RotationStep {
    /// A short stable name: `next-key`, `file-<index>`, `retired`, `installed`, `done`.
    pub fn name(&self) -> String {
        match self {
            Self::NextKeyWritten => "next-key".into(),
            Self::FileReencrypted { index, .. } => format!("file-{index}"),
            Self::OldKeyRetired { .. } => "retired".into(),
            Self::KeyInstalled => "installed".into(),
            Self::NextKeyRemoved => "done".into(),
        }
    }
}

/// What a completed rotation did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RotationReport {
    /// Whether an interrupted rotation was found and completed.
    pub resumed: bool,
    /// Files re-encrypted under the new key by this run.
    pub reencrypted: Vec<PathBuf>,
    /// Files that were already under the new key (done by the interrupted run).
    pub already_current: Vec<PathBuf>,
    /// The backup holding the old key (`None` when the interrupted run had already installed
    /// the new key, so the old one is no longer known to this run).
    pub retired_key: Option<PathBuf>,
}

fn step(
    observer: &mut impl FnMut(&RotationStep) -> ControlFlow<()>,
    s: RotationStep,
) -> Result<(), CryptoError> {
    match observer(&s) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(CryptoError::RotationInterrupted { step: s.name() }),
    }
}

fn retired_prefix(key_path: &Path) -> String {
    let name = key_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{name}.retired-")
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A retired backup already holding `key` (left by an interrupted run), if any.
fn find_retired(key_path: &Path, key: &Key) -> Result<Option<PathBuf>, CryptoError> {
    let dir = parent(key_path);
    let prefix = retired_prefix(key_path);
    let entries = std::fs::read_dir(dir).map_err(|e| CryptoError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CryptoError::io("list", dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let path = entry.path();
        if let Ok(file) = KeyFile::load(&path)
            && file.key().same_as(key)
        {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Saves `key` to a new `secret.key.retired-<UTC time>` (with `-2`, `-3`... if taken).
fn write_retired(key_path: &Path, key: &Key) -> Result<PathBuf, CryptoError> {
    let base = format!(
        "{}{}",
        retired_prefix(key_path),
        crate::time::compact_utc(crate::token::unix_now())
    );
    for n in 1..1000 {
        let name = if n == 1 { base.clone() } else { format!("{base}-{n}") };
        let path = key_path.with_file_name(name);
        match KeyFile::create_new(&path, key) {
            Ok(_) => return Ok(path),
            Err(CryptoError::KeyFileExists { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(CryptoError::KeyFileExists { path: key_path.with_file_name(base) })
}

/// Rotates the key in `key_path` and re-encrypts `files` under the new one (see the module
/// documentation for the steps and the crash guarantees).
///
/// Holds the exclusive lock of `key_path` throughout. Before changing anything, every file is
/// checked to decrypt with the keys on disk; a file that does not stops the rotation with
/// [`CryptoError::RotationUndecryptable`]. `observer` sees each step once it is durable and
/// may stop the rotation there ([`ControlFlow::Break`], giving
/// [`CryptoError::RotationInterrupted`]), which leaves the same state a crash would; tests use
/// it, a CLI can report progress with it.
pub fn rotate_key(
    key_path: &Path,
    files: &[PathBuf],
    mut observer: impl FnMut(&RotationStep) -> ControlFlow<()>,
) -> Result<RotationReport, CryptoError> {
    let _lock = globo_fs::ExclusiveLock::acquire(key_path)?;
    let mut report = RotationReport::default();
    let loaded = LoadedKeys::load(key_path)?;
    let current = loaded.files()[0].key().clone();
    let next_path = next_key_path(key_path);

    if loaded.rotation_in_progress() && loaded.keyring().primary().same_as(&current) {
        // Interrupted after step 4: only the clean-up is left.
        report.resumed = true;
        std::fs::remove_file(&next_path).map_err(|e| CryptoError::io("remove", &next_path, e))?;
        sync_parent(&next_path)?;
        step(&mut observer, RotationStep::NextKeyRemoved)?;
        return Ok(report);
    }

    // Preflight: every file must decrypt with the keys on disk before anything changes.
    for path in files {
        crate::decrypt_file_to_memory(loaded.keyring(), path).map_err(|e| match e {
            CryptoError::Decryption => CryptoError::RotationUndecryptable { path: path.clone() },
            other => other,
        })?;
    }

    let next = if loaded.rotation_in_progress() {
        report.resumed = true;
        loaded.keyring().primary().clone()
    } else {
        let key = Key::generate()?;
        KeyFile::create_new(&next_path, &key)?;
        step(&mut observer, RotationStep::NextKeyWritten)?;
        key
    };

    let ring = Keyring::new(next.clone()).with_fallback(current.clone());
    for (i, path) in files.iter().enumerate() {
        if reencrypt_file(&ring, path)? {
            report.reencrypted.push(path.clone());
        } else {
            report.already_current.push(path.clone());
        }
        step(&mut observer, RotationStep::FileReencrypted { index: i + 1, path: path.clone() })?;
    }

    let retired = match find_retired(key_path, &current)? {
        Some(path) => path,
        None => write_retired(key_path, &current)?,
    };
    report.retired_key = Some(retired.clone());
    step(&mut observer, RotationStep::OldKeyRetired { path: retired })?;

    {
        use secrecy::ExposeSecret as _;
        globo_fs::write_atomic(key_path, next.to_base64().expose_secret().as_bytes())?;
    }
    step(&mut observer, RotationStep::KeyInstalled)?;

    std::fs::remove_file(&next_path).map_err(|e| CryptoError::io("remove", &next_path, e))?;
    sync_parent(&next_path)?;
    step(&mut observer, RotationStep::NextKeyRemoved)?;
    Ok(report)
}
