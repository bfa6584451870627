//! Encrypt a service's configuration file at rest, decrypt it into memory at start-up, and
//! rotate the key without a moment when the file cannot be read. Fernet tokens, readable and
//! written by Python `cryptography` both ways.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let key_path = dir.path().join("secret.key");
//! # let (config, config_enc) = (dir.path().join("config.json"), dir.path().join("config.enc"));
//! # std::fs::write(&config, br#"{"database_url": "postgresql://localhost:5432/globomantica"}"#)?;
//! use std::ops::ControlFlow;
//! use globo_crypto::{Key, KeyFile, LoadedKeys, decrypt_file_to_memory, encrypt_file, rotate_key};
//!
//! // Deployment: a key file (mode 0600, never written over) and the encrypted configuration
//! // (written atomically, mode 0600). Ship config.enc; keep secret.key out of version control.
//! let key = Key::generate()?;
//! KeyFile::create_new(&key_path, &key)?;
//! encrypt_file(&key, &config, &config_enc)?;
//!
//! // Start-up: decrypt into memory only (zeroized on drop), with the keys on disk now, retried
//! // if a rotation overtakes the read.
//! let plain = LoadedKeys::read_with(&key_path, |keys| {
//!     decrypt_file_to_memory(keys.keyring(), &config_enc)
//! })?;
//! assert!(plain.starts_with(b"{"));
//!
//! // Key rotation: crash-safe; every file decrypts with the key files on disk at every instant.
//! rotate_key(&key_path, &[config_enc.clone()], |_step| ControlFlow::Continue(()))?;
//! # Ok(()) }
//! ```
//!
//! The same in memory: [`encrypt`] and [`decrypt`] take and give tokens as strings; a
//! [`Keyring`] decrypts with any of its keys and encrypts with the first, and
//! [`Keyring::rotate`] re-encrypts a token under the first.
//!
//! - [`Key`]: 32 bytes from the OS CSPRNG, zeroized on drop, redacted `Debug`; parsed from the
//!   44-character URL-safe base64 form ([`Key::from_base64`], [`Key::from_secret`] for a key from
//!   a secrets manager) or a key file ([`KeyFile`], [`Key::from_file`]).
//! - [`encrypt`], [`decrypt`], [`decrypt_with_max_age`]: tokens as strings. Decryption returns a
//!   zeroizing buffer and fails with one opaque [`CryptoError::Decryption`]. Tokens are decoded
//!   strictly: only the canonical base64 spelling of a token is accepted.
//! - [`encrypt_file`], [`decrypt_file_to_memory`], [`remove_plaintext_verified`]: files, written
//!   atomically with mode `0600` through `globo-fs`; plaintext never goes to disk. Encryption
//!   streams in 96 KiB chunks whatever the file's size; decryption holds the plaintext once
//!   (peak memory about its size) and releases nothing before the whole token is authenticated.
//! - [`Keyring`], [`LoadedKeys`], [`rotate_key`]: several keys and crash-safe rotation (a
//!   reader running meanwhile uses [`LoadedKeys::read_with`], or [`read_with_current_keys`]
//!   for any key source, which retries with the keys current now; a symbolically linked key
//!   file stays linked); [`rotate_with_store`] runs the same rotation over any [`KeyStore`] (a
//!   key file, or a secrets manager as in `globo-keys`).
//! - [`inspect`], [`inspect_file`]: a token's timestamp and size, without the key.
//!
//! # One decoder, several keys
//!
//! Every function that opens a token ([`decrypt`], [`Keyring::rotate`], the file functions,
//! [`rotate_key`]'s re-encryption, and [`inspect`] for the structure) goes through one decoder,
//! so they accept and refuse exactly the same tokens. With several keys, every key's HMAC is
//! computed over the whole token and every tag compared (in constant time each): the work and
//! the time do not depend on which key matched (a token under the old key costs what one under
//! the new key does); the plaintext is that of the first key, in keyring order, whose tag
//! matches and whose padding is valid, which is exactly what Python's `MultiFernet` returns.
//! The cost is one HMAC pass per key: two during a rotation, one otherwise.
//!
//! # Blocking, threads and memory
//!
//! Every function is synchronous. Those taking a path block on file I/O, and [`KeyLock`],
//! [`KeyFileStore::open`] and [`rotate_key`] block until they hold the key file's lock: in an
//! async runtime, call them from a blocking task (`tokio::task::spawn_blocking`). Encryption
//! allocates the token (at most 4/3 of the plaintext's size plus 100 bytes) in memory, or a few
//! chunks for a file; decryption allocates the plaintext's size; each item's documentation
//! says what it holds.
//!
//! What is wiped from memory when dropped: keys, decrypted plaintext, the decoder's buffers, the
//! AES key schedules and the HMAC-SHA256 states (both hash states that absorbed the key, and the
//! block buffer: the `zeroize` features of `aes`, `cbc`, `hmac` and `sha2`). Not wiped: the
//! 64-byte key blocks (the signing key XOR ipad/opad) that `hmac` builds on the stack while an
//! HMAC is set up, once per key per call, and any copy the allocator, the kernel or swap makes.
//!
//! Threads are a build option, the cargo feature **`parallel`** (off by default): with it, a
//! token of 1 MiB or more is pipelined over the calling thread and one scoped thread, joined
//! before the call returns (AES-CBC and the HMAC are each sequential, but run on different
//! threads: with two free cores, 256 MiB are encrypted in 300 ms where one core needs at least
//! 496 ms, see `docs/benchmarks.md`). Off by default, like
//! `globo-auth`'s `parallel`: a library should not start threads a service did not ask for (a
//! service in an async runtime sizes its own blocking pool, and a configuration file is far
//! below 1 MiB, where a thread costs more than it saves). The `app` binary and the benchmarks
//! enable it. Cargo features are additive: if any crate in a build enables it, every user of
//! globo-crypto in that build gets it.
//!
//! How the encoder and decoder are laid out (chunks, base64 groups, page faults, what runs on
//! which thread, and the measured reasons) is described in `docs/fernet-pipeline.md` in the
//! repository; `src/fernet/mod.rs` lists which module owns what.
//!
//! Context: globo ports a Python lab ("Secure Data at Rest"), whose configuration commands
//! (create a key, encrypt the configuration, show it) are this crate's [`KeyFile`],
//! [`encrypt_file`] and [`decrypt_file_to_memory`]; the lab's key and `config.enc` files work
//! unchanged.
#![forbid(unsafe_code)]

mod error;
mod fernet;
mod file;
mod key;
mod keyring;
mod plaintext;
mod rotation;
mod time;

pub use error::CryptoError;
pub use file::{
    decrypt_file_to_memory, decrypt_file_with_max_age, encrypt_file, inspect_file, read_token_file,
    removable_plaintext, remove_plaintext_verified,
};
/// Error reports (an error and its causes, one a line), for services that take this crate alone.
pub use globo_report::{Report, with_causes};
pub use key::{ENCODED_KEY_LEN, Key, KeyFile};
pub use keyring::{KeyLock, KeySet, Keyring, LoadedKeys, next_key_path, read_with_current_keys};
pub use plaintext::Plaintext;
pub use rotation::{
    KeyFileStore, KeyStore, RotationReport, RotationStep, StoredKeys, rotate_key, rotate_with_store,
};
/// `Key::from_secret` and `Key::to_base64` take and return its `SecretString`.
pub use secrecy;

/// The zeroizing buffer decryption returns, re-exported so callers need no `zeroize` dependency.
pub use zeroize::Zeroizing;

/// Encrypts `plaintext` into a Fernet token (URL-safe base64 text) timestamped now, with a
/// fresh random IV. Fails only if the OS random number generator does, or if the token would
/// not fit in the address space ([`CryptoError::TooLarge`], on a 32-bit target).
///
/// Allocates the token: at most 4/3 of the plaintext's size plus 100 bytes (100 bytes for an
/// empty plaintext). With the `parallel` feature, a plaintext of 1 MiB or more is encrypted on
/// this thread and one scoped thread.
pub fn encrypt(key: &Key, plaintext: &[u8]) -> Result<String, CryptoError> {
    fernet::encrypt_at_time(key, plaintext, time::unix_now())
}

/// Decrypts a token with any of `keys` (a [`Key`] or a [`Keyring`]), whatever its age.
///
/// Any failure (wrong key, tampering, truncation, a non-canonical encoding, surrounding
/// whitespace) is [`CryptoError::Decryption`]. With several keys, see the crate documentation
/// ("One decoder, several keys").
///
/// Allocates the plaintext (3/4 of the token's size); computes one HMAC over the token per
/// key. With the `parallel` feature, a token of 1 MiB or more is authenticated on a scoped
/// thread while this one decodes.
pub fn decrypt(keys: &impl KeySet, token: &str) -> Result<Plaintext, CryptoError> {
    fernet::open_token(keys.keys(), token, None).map(|opened| Plaintext::from(opened.plaintext))
}

/// Like [`decrypt`], and also fails (with the same opaque error) when the token's timestamp is
/// more than `max_age_secs` seconds old or more than 60 seconds in the future, as Python's
/// `Fernet.decrypt(token, ttl)`. Allocates and uses threads as [`decrypt`] does.
pub fn decrypt_with_max_age(
    keys: &impl KeySet,
    token: &str,
    max_age_secs: u64,
) -> Result<Plaintext, CryptoError> {
    fernet::open_token(keys.keys(), token, Some((max_age_secs, time::unix_now())))
        .map(|opened| Plaintext::from(opened.plaintext))
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
///
/// Checks every character as decryption does, in a scratch buffer of at most 96 KiB.
pub fn inspect(token: &str) -> Result<TokenInfo, CryptoError> {
    let (timestamp, ciphertext_len) = fernet::inspect_token(token)?;
    Ok(TokenInfo { timestamp, ciphertext_len })
}

// The crate page's examples (README.md, shipped in the package) run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
