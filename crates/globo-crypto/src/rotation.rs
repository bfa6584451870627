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
//! completes it (it never generates a second new key while `secret.key.next` exists). A reader
//! that loaded the keys just before a step and opens a file just after it holds keys that file
//! is no longer under: readers go through [`LoadedKeys::read_with`], which loads the keys again
//! and retries when a rotation changed them.
//!
//! A `secret.key` that is a symbolic link (to shared storage) stays one: the new key replaces
//! the file at the end of the link, and `.next` and the retired keys lie beside that file.
//!
//! The orchestration is generic over a [`KeyStore`] ([`rotate_with_store`]): the key file
//! ([`KeyFileStore`]) is one store; `globo-keys` implements another on AWS Secrets Manager
//! (staging labels `AWSPENDING` / `AWSCURRENT` / `AWSPREVIOUS`), with the same guarantees.

use std::future::Future;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

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
    /// the new key, so the old one is no longer known to this run, and for stores that keep
    /// the old key themselves, such as Secrets Manager's `AWSPREVIOUS`).
    pub retired_key: Option<PathBuf>,
}

/// The keys a [`KeyStore`] holds: the current key, and the next one while a rotation is in
/// progress.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredKeys {
    /// The key files are encrypted under (outside a rotation).
    pub current: Key,
    /// The staged next key of an unfinished rotation.
    pub next: Option<Key>,
}

impl StoredKeys {
    /// Keys with no rotation in progress.
    pub fn new(current: Key) -> Self {
        Self { current, next: None }
    }

    /// Adds the staged next key of an unfinished rotation.
    #[must_use]
    pub fn with_next(mut self, next: Key) -> Self {
        self.next = Some(next);
        self
    }

    /// Whether a rotation is in progress.
    pub fn rotation_in_progress(&self) -> bool {
        self.next.is_some()
    }

    /// The keyring every reader and writer should use: the next key first (a rotation in
    /// progress always completes, so new files go under the key that will stay), then the
    /// current one.
    pub fn keyring(&self) -> Keyring {
        crate::keyring::ring_for(&self.current, self.next.as_ref())
    }
}

/// Where a Fernet key lives, as seen by a crash-safe rotation ([`rotate_with_store`]).
///
/// Each method must be durable when its future completes. The contract the orchestration
/// relies on:
/// - [`load`](Self::load) returns the current key and the staged next key, if any; after
///   [`promote`](Self::promote) and before [`finish`](Self::finish), both are the new key.
/// - [`stage`](Self::stage) records a next key without changing the current one; it is only
///   called when none is staged.
/// - [`retire`](Self::retire) keeps the old key recoverable (or does nothing when
///   [`promote`](Self::promote) does that itself).
/// - [`promote`](Self::promote) makes the staged key current.
/// - [`finish`](Self::finish) clears the staged marker; afterwards only the new key is loaded.
///
/// The orchestration assumes one rotation per store at a time. [`KeyFileStore`] enforces that
/// with the key file's lock; a store that cannot lock (Secrets Manager) must detect a
/// concurrent rotation before [`promote`](Self::promote) and fail instead of promoting.
pub trait KeyStore {
    /// Loads the current key and the staged next key, if any.
    fn load(&mut self) -> impl Future<Output = Result<StoredKeys, CryptoError>> + Send;
    /// Durably stages `next` as the next key.
    fn stage(&mut self, next: &Key) -> impl Future<Output = Result<(), CryptoError>> + Send;
    /// Keeps `current` recoverable once it is replaced; returns the backup file, if one is
    /// written.
    fn retire(
        &mut self,
        current: &Key,
    ) -> impl Future<Output = Result<Option<PathBuf>, CryptoError>> + Send;
    /// Makes the staged `next` key the current key.
    fn promote(&mut self, next: &Key) -> impl Future<Output = Result<(), CryptoError>> + Send;
    /// Clears the staged marker: the rotation is complete.
    fn finish(&mut self) -> impl Future<Output = Result<(), CryptoError>> + Send;
}

/// The key file store: `secret.key`, `secret.key.next` and `secret.key.retired-<time>`
/// backups. Holds the key file's exclusive lock from [`open`](Self::open) until dropped.
///
/// Its futures complete without waiting (the file operations are synchronous).
#[derive(Debug)]
pub struct KeyFileStore {
    key_path: PathBuf,
    _lock: globo_fs::ExclusiveLock,
}

impl KeyFileStore {
    /// Takes the exclusive lock of `key_path` (blocking until no other rotation or encryption
    /// holds it). When `key_path` is a symbolic link, the store is the key file at its end:
    /// the new key replaces that file (the link stays), and `.next` and the retired keys are
    /// written beside it. A link that may not be followed ([`globo_fs::resolve_link`]) is
    /// refused here, before anything is written.
    pub fn open(key_path: &Path) -> Result<Self, CryptoError> {
        let lock = globo_fs::ExclusiveLock::acquire(key_path)?;
        Ok(Self { key_path: globo_fs::resolve_link(key_path)?, _lock: lock })
    }

    fn load_now(&self) -> Result<StoredKeys, CryptoError> {
        let loaded = LoadedKeys::load(&self.key_path)?;
        let current = StoredKeys::new(loaded.files()[0].key().clone());
        Ok(if loaded.rotation_in_progress() {
            current.with_next(loaded.keyring().primary().clone())
        } else {
            current
        })
    }

    fn retire_now(&self, current: &Key) -> Result<Option<PathBuf>, CryptoError> {
        Ok(Some(match find_retired(&self.key_path, current)? {
            Some(path) => path,
            None => write_retired(&self.key_path, current)?,
        }))
    }

    fn promote_now(&self, next: &Key) -> Result<(), CryptoError> {
        use secrecy::ExposeSecret as _;
        globo_fs::write_atomic(&self.key_path, next.to_base64().expose_secret().as_bytes())?;
        Ok(())
    }

    fn finish_now(&self) -> Result<(), CryptoError> {
        let next_path = next_key_path(&self.key_path);
        std::fs::remove_file(&next_path).map_err(|e| CryptoError::io("remove", &next_path, e))?;
        sync_parent(&next_path)
    }
}

impl KeyStore for KeyFileStore {
    fn load(&mut self) -> impl Future<Output = Result<StoredKeys, CryptoError>> + Send {
        std::future::ready(self.load_now())
    }

    fn stage(&mut self, next: &Key) -> impl Future<Output = Result<(), CryptoError>> + Send {
        let next_path = next_key_path(&self.key_path);
        std::future::ready(KeyFile::create_new_like(&next_path, next, &self.key_path).map(drop))
    }

    fn retire(
        &mut self,
        current: &Key,
    ) -> impl Future<Output = Result<Option<PathBuf>, CryptoError>> + Send {
        std::future::ready(self.retire_now(current))
    }

    fn promote(&mut self, next: &Key) -> impl Future<Output = Result<(), CryptoError>> + Send {
        std::future::ready(self.promote_now(next))
    }

    fn finish(&mut self) -> impl Future<Output = Result<(), CryptoError>> + Send {
        std::future::ready(self.finish_now())
    }
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
        crate::time::compact_utc(crate::time::unix_now())
    );
    for n in 1..1000 {
        let name = if n == 1 { base.clone() } else { format!("{base}-{n}") };
        let path = key_path.with_file_name(name);
        match KeyFile::create_new_like(&path, key, key_path) {
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
///
/// Blocks until it holds the lock, then on file I/O; holds one file's plaintext at a time
/// (decrypted and re-encrypted in memory, with threads as [`crate::decrypt`] uses them).
pub fn rotate_key(
    key_path: &Path,
    files: &[PathBuf],
    observer: impl FnMut(&RotationStep) -> ControlFlow<()>,
) -> Result<RotationReport, CryptoError> {
    let mut store = KeyFileStore::open(key_path)?;
    let future = pin!(rotate_with_store(&mut store, files, observer));
    // The key file store's futures are ready at once, so one poll runs the whole rotation.
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(CryptoError::KeyStore {
            store: key_path.display().to_string(),
            operation: "rotation",
            source: "the key file store did not complete synchronously".into(),
        }),
    }
}

/// Rotates the key held by `store` and re-encrypts `files` under the new one, crash-safely:
///
/// 1. a new key is staged ([`KeyStore::stage`], step `next-key`), unless an interrupted run
///    staged one already (it is reused: a rerun never makes a second new key);
/// 2. each file is re-encrypted under it, atomically (`file-<n>`; a file already under the new
///    key is skipped);
/// 3. the old key is kept recoverable ([`KeyStore::retire`], `retired`, when the store writes
///    a backup);
/// 4. the new key becomes current ([`KeyStore::promote`], `installed`);
/// 5. the staged marker is cleared ([`KeyStore::finish`], `done`).
///
/// Readers that load the current and the staged key ([`StoredKeys::keyring`]) decrypt every
/// file at every instant. Before changing anything, every file is checked to decrypt with the
/// stored keys ([`CryptoError::RotationUndecryptable`] otherwise). `observer` sees each step
/// once it is durable and may stop there ([`CryptoError::RotationInterrupted`]), leaving the
/// state a crash would. File I/O is synchronous (it blocks the calling thread); one file's
/// plaintext is held at a time, and threads are used as [`crate::decrypt`] uses them.
pub async fn rotate_with_store<S: KeyStore>(
    store: &mut S,
    files: &[PathBuf],
    mut observer: impl FnMut(&RotationStep) -> ControlFlow<()>,
) -> Result<RotationReport, CryptoError> {
    let mut report = RotationReport::default();
    let stored = store.load().await?;
    let current = stored.current.clone();

    if stored.next.as_ref().is_some_and(|next| next.same_as(&current)) {
        // Interrupted after step 4: only the clean-up is left.
        report.resumed = true;
        store.finish().await?;
        step(&mut observer, RotationStep::NextKeyRemoved)?;
        return Ok(report);
    }

    // Preflight: every file must decrypt with the stored keys before anything changes.
    let keyring = stored.keyring();
    for path in files {
        crate::decrypt_file_to_memory(&keyring, path).map_err(|e| match e {
            CryptoError::Decryption => CryptoError::RotationUndecryptable { path: path.clone() },
            other => other,
        })?;
    }

    let next = match stored.next {
        Some(next) => {
            report.resumed = true;
            next
        }
        None => {
            let key = Key::generate()?;
            store.stage(&key).await?;
            step(&mut observer, RotationStep::NextKeyWritten)?;
            key
        }
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

    if let Some(retired) = store.retire(&current).await? {
        report.retired_key = Some(retired.clone());
        step(&mut observer, RotationStep::OldKeyRetired { path: retired })?;
    }

    store.promote(&next).await?;
    step(&mut observer, RotationStep::KeyInstalled)?;

    store.finish().await?;
    step(&mut observer, RotationStep::NextKeyRemoved)?;
    Ok(report)
}
