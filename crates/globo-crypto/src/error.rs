//! The one error type of globo-crypto.

use std::path::PathBuf;

/// Everything that can go wrong in globo-crypto.
///
/// Decryption failures are deliberately opaque: a wrong key, a tampered or truncated token, a
/// non-canonical encoding and an expired token all give [`CryptoError::Decryption`], which never
/// says which check failed. Operational failures (missing file, permission denied) are precise
/// and name the path. No message ever contains key material or file content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The token could not be decrypted: it is corrupt, was made with another key, or is older
    /// than the maximum age asked for.
    #[error("decryption failed: ciphertext is corrupt or the key is wrong")]
    Decryption,

    /// The data is not a well-formed Fernet token (checked without a key, by `inspect`).
    #[error("not a Fernet token: expected the URL-safe base64 of a version 0x80 token")]
    MalformedToken,

    /// A key string is not a Fernet key.
    #[error("not a Fernet key: expected 44 characters of URL-safe base64 encoding 32 bytes")]
    InvalidKey,

    /// A key file exists but does not hold a Fernet key. Its content is not repeated here.
    #[error(
        "key file '{}' does not hold a Fernet key: expected 44 characters of URL-safe base64 \
         (32 bytes), optionally followed by a newline",
        path.display()
    )]
    InvalidKeyFile {
        /// The key file.
        path: PathBuf,
    },

    /// The key file does not exist.
    #[error("key file '{}' not found", path.display())]
    KeyFileNotFound {
        /// The missing key file.
        path: PathBuf,
    },

    /// Creating a key file was refused because one already exists.
    #[error(
        "key file '{}' already exists; replacing it would make every file encrypted under it \
         unreadable. To change the key, rotate it, which re-encrypts the files first",
        path.display()
    )]
    KeyFileExists {
        /// The existing key file, left untouched.
        path: PathBuf,
    },

    /// The ciphertext file does not exist.
    #[error("ciphertext file '{}' not found", path.display())]
    CiphertextNotFound {
        /// The missing ciphertext file.
        path: PathBuf,
    },

    /// The file to encrypt does not exist.
    #[error("plaintext file '{}' not found", path.display())]
    PlaintextNotFound {
        /// The missing plaintext file.
        path: PathBuf,
    },

    /// The ciphertext would overwrite the plaintext it is made from.
    #[error("refusing to write the ciphertext over its own plaintext '{}': choose another output", path.display())]
    SameFile {
        /// The path given as both input and output.
        path: PathBuf,
    },

    /// The file holds a Fernet key, which this operation would overwrite or delete.
    #[error(
        "refusing to overwrite or delete '{}': it holds a Fernet key, and losing it would make \
         the files encrypted under it unreadable",
        path.display()
    )]
    KeyFileProtected {
        /// The key file, left untouched.
        path: PathBuf,
    },

    /// The plaintext to delete is not a regular file (a pipe such as `/dev/stdin`, a FIFO, a
    /// device, a folder), which is never deleted.
    #[error(
        "refusing to delete '{}': it is not a regular file (a pipe, a device or a folder); only \
         a regular plaintext file is deleted after encryption",
        path.display()
    )]
    NotRegularFile {
        /// The path, left untouched.
        path: PathBuf,
    },

    /// The plaintext to delete has other names (hard links): deleting one name would leave the
    /// content on disk under the others, so nothing is deleted.
    #[error(
        "'{}' has {links} names (hard links); deleting one would leave the plaintext on disk \
         under the others, so it is kept",
        path.display()
    )]
    PlaintextHardLinked {
        /// The plaintext, left untouched.
        path: PathBuf,
        /// How many names the file has.
        links: u64,
    },

    /// The plaintext was kept because the file on disk no longer matches what the ciphertext
    /// decrypts to (it changed after encryption, or the ciphertext was not written correctly).
    #[error(
        "kept '{}': it does not match what '{}' decrypts to; encrypt it again",
        plaintext.display(),
        ciphertext.display()
    )]
    VerificationFailed {
        /// The plaintext file, left in place.
        plaintext: PathBuf,
        /// The ciphertext file that was checked.
        ciphertext: PathBuf,
    },

    /// A file to re-encrypt during rotation cannot be decrypted with the current or next key.
    #[error(
        "'{}' cannot be decrypted with the current or the next key; rotation stopped (every \
         file is still readable with the key files on disk). Remove it from the list or restore \
         its key, then run the rotation again",
        path.display()
    )]
    RotationUndecryptable {
        /// The file that cannot be decrypted.
        path: PathBuf,
    },

    /// The rotation observer asked to stop after a step; rerunning the rotation completes it.
    #[error("key rotation interrupted after step '{step}'; run it again to complete it")]
    RotationInterrupted {
        /// The last step completed.
        step: String,
    },

    /// A key store other than a local key file (e.g. AWS Secrets Manager) failed; its own
    /// error, which says how to fix it, is the source.
    #[error("{operation} failed for the key in {store}")]
    KeyStore {
        /// The store, e.g. `secret 'FERNET_KEY' in AWS Secrets Manager`.
        store: String,
        /// What was being done, e.g. `staging the new key`.
        operation: &'static str,
        /// The store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,

    /// A worker thread of the encryption pipeline stopped (it panicked, e.g. out of memory);
    /// no token was produced.
    #[error(
        "the encryption stopped before completing (a worker thread failed); nothing was produced: retry, and report it if it happens again"
    )]
    Interrupted,

    /// The data is too large for this platform: its token (or the plaintext of a file) would not
    /// fit in the address space (possible only on a 32-bit target).
    #[error("the data is too large to encrypt or decrypt in memory on this platform")]
    TooLarge,

    /// A file operation failed; the cause (with the operation and path) is the source.
    #[error("file operation failed on '{}'", path.display())]
    File {
        /// The path the operation failed on.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: globo_fs::FsError,
    },
}

impl CryptoError {
    /// Wraps a [`globo_fs::FsError`].
    pub(crate) fn fs(source: globo_fs::FsError) -> Self {
        Self::File { path: source.path().to_path_buf(), source }
    }

    /// Wraps an I/O error for `operation` on `path`.
    pub(crate) fn io(operation: &'static str, path: &std::path::Path, e: std::io::Error) -> Self {
        Self::fs(globo_fs::FsError::new(operation, path, e))
    }
}

impl From<globo_fs::FsError> for CryptoError {
    fn from(e: globo_fs::FsError) -> Self {
        Self::fs(e)
    }
}
