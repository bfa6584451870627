//! Several keys: decrypt with any, encrypt with the first (Python's `MultiFernet`).

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::token::{self, RawToken};
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

    /// Encrypts with the primary key.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, CryptoError> {
        crate::encrypt(self.primary(), plaintext)
    }

    /// Re-encrypts a token under the primary key, keeping its timestamp (as Python's
    /// `MultiFernet.rotate`). The token may be under any key of the ring.
    pub fn rotate(&self, token: &str) -> Result<String, CryptoError> {
        let raw = RawToken::parse(token)?;
        let plaintext = decrypt_raw(self, &raw, None)?;
        token::encrypt_at_time(self.primary(), &plaintext, raw.timestamp())
    }
}

impl From<Key> for Keyring {
    fn from(key: Key) -> Self {
        Self::new(key)
    }
}

pub(crate) fn decrypt_raw(
    keys: &impl KeySet,
    raw: &RawToken,
    age: Option<(u64, u64)>,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    for key in keys.keys() {
        if let Ok(plaintext) = raw.decrypt(key, age) {
            return Ok(plaintext);
        }
    }
    Err(CryptoError::Decryption)
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

impl LoadedKeys {
    /// Loads `key_path` and, if present, its `.next` companion.
    pub fn load(key_path: &Path) -> Result<Self, CryptoError> {
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
pub struct KeyLock {
    _lock: globo_fs::ExclusiveLock,
}

impl KeyLock {
    /// Blocks until this process holds the lock of `key_path`.
    pub fn acquire(key_path: &Path) -> Result<Self, CryptoError> {
        Ok(Self { _lock: globo_fs::ExclusiveLock::acquire(key_path)? })
    }
}
