//! Several keys: decrypt with any, encrypt with the first (Python's `MultiFernet`).

use std::path::{Path, PathBuf};

use crate::{CryptoError, Key, KeyFile};

/// Something that holds the keys a token may be decrypted with: a [`Key`] or a [`Keyring`].
pub trait KeySet {
    /// The keys, tried in order.
    fn keys(&self) -> &[Key];
}

impl KeySet for Key {
    fn keys(&self) -> &[Key] {
        std::slice::from_ref(self)
    }
}

impl KeySet for Keyring {
    fn keys(&self) -> &[Key] {
        &self.keys
    }
}

/// An ordered, non-empty list of keys: encrypts with the first ("primary") key, decrypts with
/// whichever key works. What Python `cryptography`'s `MultiFernet` offers (the `fernet` crate's
/// `MultiFernet` has no `rotate`).
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// A keyring whose primary key is `primary`.
    pub fn new(primary: Key) -> Self {
        Self { keys: vec![primary] }
    }

    /// Adds a key that decrypts but is not used to encrypt (an older key).
    pub fn with_fallback(mut self, key: Key) -> Self {
        self.keys.push(key);
        self
    }

    /// The key new tokens are encrypted with.
    pub fn primary(&self) -> &Key {
        &self.keys[0]
    }

    /// Encrypts with the primary key; allocates and uses threads as [`crate::encrypt`] does.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, CryptoError> {
        crate::encrypt(self.primary(), plaintext)
    }

    /// Re-encrypts a token under the primary key, keeping its timestamp (as Python's
    /// `MultiFernet.rotate`). The token may be under any key of the ring; it is decrypted as
    /// [`crate::decrypt`] decrypts it. Allocates the plaintext and the new token (together
    /// about twice the token's size); uses threads as [`crate::decrypt`] does.
    pub fn rotate(&self, token: &str) -> Result<String, CryptoError> {
        let opened = crate::fernet::open_token(&self.keys, token, None)?;
        crate::fernet::encrypt_at_time(self.primary(), &opened.plaintext, opened.timestamp)
    }
}

impl From<Key> for Keyring {
    fn from(key: Key) -> Self {
        Self::new(key)
    }
}

/// The keyring for a current key and a staged next one, as every reader and writer uses it:
/// the next key first (a rotation in progress always completes, so new files go under the key
/// that will stay), then the current one; a single key once both are the same.
pub(crate) fn ring_for(current: &Key, next: Option<&Key>) -> Keyring {
    match next {
        Some(next) if !next.same_as(current) => {
            let mut ring = Keyring { keys: Vec::with_capacity(2) };
            ring.keys.push(next.clone());
            ring.keys.push(current.clone());
            ring
        }
        _ => Keyring::new(current.clone()),
    }
}

/// The name of the key file a rotation writes first: `secret.key` -> `secret.key.next`.
pub fn next_key_path(key_path: &Path) -> PathBuf {
    let mut name = key_path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".next");
    key_path.with_file_name(name)
}

/// The key file `key_path` stands for: the regular file at the end of its symbolic links
/// ([`globo_fs::resolve_link`]), or `key_path` itself. A rotation writes `secret.key.next` and
/// the retired keys beside that file, so every path to a shared key sees the same rotation.
/// A link that may not be followed for writing is read through as given (reading it changes
/// nothing); a rotation through it fails before anything is written
/// ([`crate::KeyFileStore::open`]).
pub(crate) fn key_file_path(key_path: &Path) -> PathBuf {
    globo_fs::resolve_link(key_path).unwrap_or_else(|_| key_path.to_path_buf())
}

/// How many times [`read_with_current_keys`] runs its reader at most. Each run after the first
/// needs a rotation to have changed the keys since the previous one, so this is only reached
/// by a reader slower than 15 rotations in a row.
const READ_ATTEMPTS: usize = 16;

/// Runs `read` with the keys `load` gives, and again with the keys current now if a key
/// rotation overtook it: the retry of [`LoadedKeys::read_with`] for any key source (a key file,
/// a secret in a secrets manager).
///
/// When `read` fails with [`CryptoError::Decryption`], `load` runs again: if the keys changed
/// (a rotation ran in between), `read` runs again with them; if not, the failure is real (a
/// wrong key, a tampered file) and is returned. Keys are random and never come back, so
/// unchanged keys mean no rotation step happened meanwhile. `read` runs at most 16 times and
/// should only read. Blocks for as long as `load` and `read` do. A failure of `load` is the outer error; the result of the last `read` is
/// the inner result.
///
/// ```
/// # fn main() -> Result<(), globo_crypto::CryptoError> {
/// use globo_crypto::{Key, Keyring, read_with_current_keys};
/// let key = Key::generate()?;
/// let token = globo_crypto::encrypt(&key, b"{}")?;
/// let plain = read_with_current_keys(
///     || Ok::<_, globo_crypto::CryptoError>(Keyring::new(key.clone())),
///     |keys| globo_crypto::decrypt(keys, &token),
/// )??;
/// assert_eq!(plain.as_slice(), b"{}");
/// # Ok(()) }
/// ```
pub fn read_with_current_keys<K: KeySet, T, E>(
    mut load: impl FnMut() -> Result<K, E>,
    mut read: impl FnMut(&K) -> Result<T, CryptoError>,
) -> Result<Result<T, CryptoError>, E> {
    let mut keys = load()?;
    for _ in 1..READ_ATTEMPTS {
        match read(&keys) {
            Err(CryptoError::Decryption) => {
                let now = load()?;
                let (a, b) = (keys.keys(), now.keys());
                if a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y)) {
                    return Ok(Err(CryptoError::Decryption));
                }
                keys = now;
            }
            other => return Ok(other),
        }
    }
    Ok(read(&keys))
}

/// The keys on disk for a key file, as every command should load them.
///
/// Normally just `secret.key`. While a rotation is in progress (`secret.key.next` exists, see
/// [`crate::rotate_key`]) both: the next key is primary, the current one decrypts the files not
/// yet re-encrypted. Every [`KeyFile`] read is kept so the caller can warn about permissions.
#[derive(Debug)]
pub struct LoadedKeys {
    keyring: Keyring,
    files: Vec<KeyFile>,
}

impl KeySet for LoadedKeys {
    fn keys(&self) -> &[Key] {
        self.keyring.keys()
    }
}

impl LoadedKeys {
    /// Loads `key_path` and, if present, its `.next` companion (beside the file at the end of
    /// `key_path`'s symbolic links, if it is one). Blocks on file I/O (two small reads).
    pub fn load(key_path: &Path) -> Result<Self, CryptoError> {
        let key_path = &key_file_path(key_path);
        // The next key is read first: a rotation installs it as the key file before removing
        // it, so a reader racing a rotation that ends sees the new key in one of the two reads.
        let next_path = next_key_path(key_path);
        let next = match KeyFile::load(&next_path) {
            Ok(next) => Some(next),
            Err(CryptoError::KeyFileNotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let current = KeyFile::load(key_path)?;
        let keyring = ring_for(current.key(), next.as_ref().map(KeyFile::key));
        let files = match next {
            Some(next) => vec![current, next],
            None => vec![current],
        };
        Ok(Self { keyring, files })
    }

    /// Loads the keys of `key_path` and calls `read` with them (to decrypt files encrypted
    /// under them), so that the keys and the files read agree even while a rotation
    /// ([`crate::rotate_key`]) replaces the key and re-encrypts the files.
    ///
    /// The files on disk are consistent with the key files at every instant of a rotation, but
    /// a reader that loads the keys just before a step and opens a file just after it holds
    /// keys the file is no longer encrypted under. So when `read` fails with
    /// [`CryptoError::Decryption`], the keys are loaded again: if they changed (a rotation ran
    /// in between), `read` runs again with the keys that are current now; if not, the error is
    /// returned. Keys are random and never come back, so keys unchanged across the read mean no
    /// rotation step happened meanwhile: the failure is real (a wrong key, a tampered file).
    ///
    /// No lock is taken: a reader needs no write access to the folder (a service account that
    /// may only read the key works), never waits for a rotation and never delays one (a shared
    /// `flock(2)` lock would let a steady stream of readers postpone a rotation indefinitely).
    /// `read` may therefore run more than once (at most 16 times); it should only read.
    ///
    /// ```
    /// # fn main() -> Result<(), globo_crypto::CryptoError> {
    /// # let dir = tempfile::tempdir().map_err(|_| globo_crypto::CryptoError::Random)?;
    /// # let key_path = dir.path().join("secret.key");
    /// # let enc = dir.path().join("config.enc");
    /// # let key = globo_crypto::Key::generate()?;
    /// # globo_crypto::KeyFile::create_new(&key_path, &key)?;
    /// # std::fs::write(dir.path().join("config.json"), b"{}").map_err(|_| globo_crypto::CryptoError::Random)?;
    /// # globo_crypto::encrypt_file(&key, &dir.path().join("config.json"), &enc)?;
    /// use globo_crypto::{LoadedKeys, decrypt_file_to_memory};
    /// let config = LoadedKeys::read_with(&key_path, |keys| decrypt_file_to_memory(keys.keyring(), &enc))?;
    /// assert_eq!(config.as_slice(), b"{}");
    /// # Ok(()) }
    /// ```
    pub fn read_with<T>(
        key_path: &Path,
        read: impl FnMut(&LoadedKeys) -> Result<T, CryptoError>,
    ) -> Result<T, CryptoError> {
        read_with_current_keys(|| Self::load(key_path), read)?
    }

    /// The keyring (next key first during a rotation).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Consumes the record, keeping the keyring.
    pub fn into_keyring(self) -> Keyring {
        self.keyring
    }

    /// The key files that were read.
    pub fn files(&self) -> &[KeyFile] {
        &self.files
    }

    /// Whether an interrupted rotation left a `.next` key behind.
    pub fn rotation_in_progress(&self) -> bool {
        self.files.len() > 1
    }
}

/// The exclusive lock of a key file (on `<key file>.lock`), released when dropped.
///
/// [`crate::rotate_key`] holds it throughout. Hold it while loading keys and writing a file
/// encrypted under them, so that a concurrent rotation cannot finish in between and leave the
/// new file under the retired key.
#[derive(Debug)]
#[must_use = "the lock is released when dropped"]
pub struct KeyLock {
    _lock: globo_fs::ExclusiveLock,
}

impl KeyLock {
    /// Blocks until this process holds the lock of `key_path`.
    pub fn acquire(key_path: &Path) -> Result<Self, CryptoError> {
        Ok(Self { _lock: globo_fs::ExclusiveLock::acquire(key_path)? })
    }
}
