//! Fernet keys: generation, parsing, key files.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use secrecy::SecretString;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::CryptoError;
use crate::fernet::STRICT_URL_SAFE;

/// Length of an encoded key: 32 bytes in URL-safe base64 with padding.
pub const ENCODED_KEY_LEN: usize = 44;

/// A key file larger than this is certainly not a key; it is not read into memory.
pub(crate) const MAX_KEY_FILE_LEN: u64 = 4096;

/// A Fernet key: a 128-bit HMAC-SHA256 signing key and a 128-bit AES encryption key.
///
/// Zeroized on drop. `Debug` prints `Key([REDACTED])`; there is no `Display` or `Serialize`.
/// The encoded form is only available through [`Key::to_base64`], which returns a
/// [`SecretString`].
///
/// The key bytes live in one heap allocation that is zeroized when the key is dropped; moving
/// a `Key` (into a `Vec` that then grows, say) moves only the pointer, so no copy of the bytes
/// is left behind in freed memory.
#[derive(Clone)]
pub struct Key {
    bytes: Box<KeyBytes>,
}

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct KeyBytes {
    signing: [u8; 16],
    encryption: [u8; 16],
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([REDACTED])")
    }
}

impl Key {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|_| CryptoError::Random)?;
        Ok(Self::from_array(&bytes))
    }

    fn from_array(bytes: &[u8; 32]) -> Self {
        // Filled in place on the heap, so no stack copy of the key outlives this call.
        let mut key = Box::new(KeyBytes { signing: [0u8; 16], encryption: [0u8; 16] });
        key.signing.copy_from_slice(&bytes[..16]);
        key.encryption.copy_from_slice(&bytes[16..]);
        Self { bytes: key }
    }

    /// Parses the 44-character URL-safe base64 form (what Python's `Fernet.generate_key()`
    /// returns). Surrounding whitespace, such as a trailing newline, is ignored; anything else
    /// that is not the canonical encoding of 32 bytes is [`CryptoError::InvalidKey`].
    ///
    /// This is also the entry point for a key held by a secrets manager.
    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        let encoded = encoded.trim();
        if encoded.len() != ENCODED_KEY_LEN {
            return Err(CryptoError::InvalidKey);
        }
        let mut bytes = Zeroizing::new([0u8; 33]);
        match STRICT_URL_SAFE.decode_slice(encoded, bytes.as_mut_slice()) {
            Ok(32) => {
                let mut key = Zeroizing::new([0u8; 32]);
                key.copy_from_slice(&bytes[..32]);
                Ok(Self::from_array(&key))
            }
            _ => Err(CryptoError::InvalidKey),
        }
    }

    /// Like [`Key::from_base64`], for a key that arrives as a secret (from a secrets manager).
    pub fn from_secret(secret: &SecretString) -> Result<Self, CryptoError> {
        use secrecy::ExposeSecret as _;
        Self::from_base64(secret.expose_secret())
    }

    /// The 44-character URL-safe base64 form, as a secret.
    pub fn to_base64(&self) -> SecretString {
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes[..16].copy_from_slice(&self.bytes.signing);
        bytes[16..].copy_from_slice(&self.bytes.encryption);
        SecretString::from(STRICT_URL_SAFE.encode(bytes.as_slice()))
    }

    /// Reads a key file (see [`KeyFile::load`]) and returns only the key. Blocks on file I/O.
    pub fn from_file(path: &Path) -> Result<Self, CryptoError> {
        Ok(KeyFile::load(path)?.into_key())
    }

    pub(crate) fn signing(&self) -> &[u8; 16] {
        &self.bytes.signing
    }

    pub(crate) fn encryption(&self) -> &[u8; 16] {
        &self.bytes.encryption
    }

    /// Whether two keys are the same, compared in constant time.
    pub fn same_as(&self, other: &Key) -> bool {
        use subtle::ConstantTimeEq as _;
        let a = self.signing().ct_eq(other.signing());
        let b = self.encryption().ct_eq(other.encryption());
        (a & b).into()
    }
}

/// A key loaded from a file, with what globo noticed about the file.
///
/// The file holds the 44-character key, optionally surrounded by whitespace (a trailing newline
/// is common when the key was written by hand or by `echo`); the lab writes none.
#[derive(Debug)]
pub struct KeyFile {
    path: PathBuf,
    key: Key,
    loose_permissions: Option<u32>,
}

impl KeyFile {
    /// Reads the key file at `path`.
    ///
    /// Blocks on file I/O (one read of at most 4 KiB; a FIFO is refused, never waited on).
    ///
    /// A missing file is [`CryptoError::KeyFileNotFound`]; content that is not a key is
    /// [`CryptoError::InvalidKeyFile`], which never repeats the content. Permission bits that let
    /// group or others access the file are recorded in [`KeyFile::loose_permissions`] so the
    /// caller can warn.
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        // A key file is a regular file (or a link to one), checked on the file opened (without
        // blocking: a FIFO swapped in would block a plain open forever), in a zeroized buffer
        // that is never reallocated.
        let invalid = || CryptoError::InvalidKeyFile { path: path.to_path_buf() };
        let (content, metadata) = match globo_fs::read_small_regular(path, MAX_KEY_FILE_LEN) {
            Ok(Some(read)) => read,
            Ok(None) => return Err(CryptoError::KeyFileNotFound { path: path.to_path_buf() }),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return Err(invalid()),
            Err(e) => return Err(CryptoError::io("read key file", path, e.into_io_error())),
        };
        let text = std::str::from_utf8(&content).map_err(|_| invalid())?;
        let key = Key::from_base64(text).map_err(|_| invalid())?;
        // The permissions of the file that was read, not of whatever the path names now.
        let loose_permissions = globo_fs::loose_bits(&metadata);
        Ok(Self { path: path.to_path_buf(), key, loose_permissions })
    }

    /// Writes `key` to a new file at `path` (mode `0600`, complete before the name appears).
    ///
    /// Never replaces anything: an existing file is [`CryptoError::KeyFileExists`] and is left
    /// untouched. Blocks on file I/O (the file and its folder are flushed to disk).
    pub fn create_new(path: &Path, key: &Key) -> Result<Self, CryptoError> {
        Self::create(path, key, None)
    }

    /// [`create_new`](Self::create_new), and the new file gets the owner and group of the key
    /// file `like` it derives from (a rotation's `secret.key.next` and retired keys), where
    /// this process may ([`globo_fs::create_new_like`]): a rotation interrupted while run as
    /// root leaves files the service can still read.
    pub fn create_new_like(path: &Path, key: &Key, like: &Path) -> Result<Self, CryptoError> {
        Self::create(path, key, Some(like))
    }

    fn create(path: &Path, key: &Key, like: Option<&Path>) -> Result<Self, CryptoError> {
        use secrecy::ExposeSecret as _;
        let encoded = key.to_base64();
        let bytes = encoded.expose_secret().as_bytes();
        let created = match like {
            Some(like) => globo_fs::create_new_like(path, bytes, like),
            None => globo_fs::create_new(path, bytes),
        };
        match created {
            Ok(()) => {
                Ok(Self { path: path.to_path_buf(), key: key.clone(), loose_permissions: None })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(CryptoError::KeyFileExists { path: path.to_path_buf() })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Consumes the file record, keeping only the key.
    pub fn into_key(self) -> Key {
        self.key
    }

    /// The permission bits (of `0o077`) that let group or others access the file, if any.
    /// Callers should warn and suggest `chmod 600 <path>`.
    pub fn loose_permissions(&self) -> Option<u32> {
        self.loose_permissions
    }
}
