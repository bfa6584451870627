//! Fernet encryption of local files, interoperable with Python `cryptography` both ways.
//!
//! ```
//! # fn main() -> Result<(), globo_crypto::CryptoError> {
//! use globo_crypto::{Key, Keyring, decrypt, encrypt};
//!
//! let key = Key::generate()?;
//! let token = encrypt(&key, br#"{"feature_flags": {"new_checkout": true}}"#)?;
//! assert_eq!(decrypt(&key, &token)?.as_slice(), br#"{"feature_flags": {"new_checkout": true}}"#);
//!
//! // A keyring decrypts with any of its keys and encrypts with the first.
//! let ring = Keyring::new(Key::generate()?).with_fallback(key);
//! let rotated = ring.rotate(&token)?;
//! assert!(decrypt(ring.primary(), &rotated).is_ok());
//! # Ok(()) }
//! ```
//!
//! - [`Key`]: 32 bytes from the OS CSPRNG, zeroized on drop, redacted `Debug`; parsed from the
//!   44-character URL-safe base64 form ([`Key::from_base64`], [`Key::from_secret`] for a key from
//!   a secrets manager) or a key file ([`KeyFile`], [`Key::from_file`]).
//! - [`encrypt`], [`decrypt`], [`decrypt_with_max_age`]: tokens as strings. Decryption returns a
//!   zeroizing buffer and fails with one opaque [`CryptoError::Decryption`]. Tokens are decoded
//!   strictly: only the canonical base64 spelling of a token is accepted.
//! - [`encrypt_file`], [`decrypt_file_to_memory`], [`remove_plaintext_verified`]: files, written
//!   atomically with mode `0600` through `globo-fs`; plaintext never goes to disk. Both are
//!   streamed: encryption works in a few 96 KiB chunks whatever the file's size, decryption
//!   reads the token once into a buffer of the ciphertext's size, verifies the HMAC over the
//!   whole token, and only then decrypts in place (peak memory about the plaintext's size).
//!   Tokens are the same as the in-memory functions give; from 1 MiB the work is pipelined over
//!   two threads.
//! - [`Keyring`], [`LoadedKeys`], [`rotate_key`]: several keys and crash-safe rotation (a
//!   reader running meanwhile uses [`LoadedKeys::read_with`], or [`read_with_current_keys`]
//!   for any key source, which retries with the keys current now; a symbolically linked key
//!   file stays linked);
//!   [`rotate_with_store`] runs the same rotation over any [`KeyStore`] (a key file, or a
//!   secrets manager as in `globo-secrets`).
//! - [`inspect`]: a token's timestamp and size, without the key.
#![forbid(unsafe_code)]

mod error;
mod file;
mod key;
mod keyring;
mod plaintext;
mod rotation;
mod stream;
mod time;
mod token;

pub use error::CryptoError;
pub use file::{
    decrypt_file_to_memory, decrypt_file_with_max_age, encrypt_file, inspect_file, read_token_file,
    removable_plaintext, remove_plaintext_verified,
};
pub use key::{ENCODED_KEY_LEN, Key, KeyFile};
pub use keyring::{KeyLock, KeySet, Keyring, LoadedKeys, next_key_path, read_with_current_keys};
pub use plaintext::Plaintext;
pub use rotation::{
    KeyFileStore, KeyStore, RotationReport, RotationStep, StoredKeys, rotate_key, rotate_with_store,
};

/// The zeroizing buffer decryption returns, re-exported so callers need no `zeroize` dependency.
pub use zeroize::Zeroizing;

use crate::token::RawToken;

/// Encrypts `plaintext` into a Fernet token (URL-safe base64 text) timestamped now, with a
/// fresh random IV. Fails only if the OS random number generator does.
pub fn encrypt(key: &Key, plaintext: &[u8]) -> Result<String, CryptoError> {
    token::encrypt_at_time(key, plaintext, token::unix_now())
}

/// Decrypts a token with any of `keys` (a [`Key`] or a [`Keyring`]), whatever its age.
///
/// Any failure (wrong key, tampering, truncation, a non-canonical encoding, surrounding
/// whitespace) is [`CryptoError::Decryption`].
pub fn decrypt(keys: &impl KeySet, token: &str) -> Result<Plaintext, CryptoError> {
    decrypt_str(keys, token, None).map(Plaintext::from)
}

/// Like [`decrypt`], and also fails (with the same opaque error) when the token's timestamp is
/// more than `max_age_secs` seconds old or more than 60 seconds in the future, as Python's
/// `Fernet.decrypt(token, ttl)`.
pub fn decrypt_with_max_age(
    keys: &impl KeySet,
    token: &str,
    max_age_secs: u64,
) -> Result<Plaintext, CryptoError> {
    decrypt_str(keys, token, Some((max_age_secs, token::unix_now()))).map(Plaintext::from)
}

/// Decrypts a token held in memory through the single-pass decoder (`stream.rs`).
pub(crate) fn decrypt_str(
    keys: &impl KeySet,
    token: &str,
    age: Option<(u64, u64)>,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let parallel = token.len() / 4 * 3 >= stream::PARALLEL_MIN;
    let source = stream::SliceSource::new(token.as_bytes());
    stream::decrypt_stream(keys.keys(), age, token.len(), source, parallel)
        .map_err(|_| CryptoError::Decryption)
}

/// What anyone can read from a token without the key: when it was made and how big it is.
///
/// Not authenticated: whoever can write the file can forge these values; only decryption
/// proves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// Creation time, in seconds since the Unix epoch.
    pub timestamp: u64,
    /// Length of the AES-CBC ciphertext in bytes (a multiple of 16).
    pub ciphertext_len: usize,
}

impl TokenInfo {
    /// Creation time as RFC 3339 in UTC, e.g. `2026-11-23T01:02:03Z`.
    pub fn created_utc(&self) -> String {
        time::rfc3339_utc(self.timestamp)
    }

    /// The plaintext length: PKCS#7 padding adds 1 to 16 bytes, so it is between
    /// `ciphertext_len - 16` and `ciphertext_len - 1` (inclusive).
    pub fn plaintext_len_range(&self) -> std::ops::RangeInclusive<usize> {
        self.ciphertext_len - 16..=self.ciphertext_len - 1
    }
}

/// Reads a token's timestamp and size without decrypting it. A string that is not the
/// canonical encoding of a structurally valid token is [`CryptoError::MalformedToken`].
pub fn inspect(token: &str) -> Result<TokenInfo, CryptoError> {
    let raw = RawToken::parse(token).map_err(|_| CryptoError::MalformedToken)?;
    Ok(TokenInfo { timestamp: raw.timestamp(), ciphertext_len: raw.ciphertext_len() })
}

// The crate page's examples (README.md, shipped in the package) run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
