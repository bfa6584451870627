//! Where a service's Fernet key lives, in one call: a key file in local mode, an AWS Secrets
//! Manager secret in production, chosen the way the globo CLI chooses it (an explicit mode,
//! else `APP_MODE`, else `.env`, else local).
//!
//! ```
//! use globo_keys::{KeySource, KeySourceConfig, KeyWarning, KeysError};
//! use globo_secrets::{Environment, Mode};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let key_file = dir.path().join("secret.key");
//! # let config_enc = dir.path().join("config.enc");
//! // Without .mode(..): APP_MODE, then .env, decide.
//! let config = KeySourceConfig::new().mode(Mode::Local).key_file(key_file);
//! let source = KeySource::resolve(&config, &Environment::from_process()).await?;
//! source.create(&globo_crypto::Key::generate()?).await?; // once, at deployment
//!
//! let loaded = source.load().await?;
//! for warning in &loaded.warnings {
//!     eprintln!("warning: {warning}"); // e.g. KeyWarning::LoosePermissions { path, bits }
//! }
//! # std::fs::write(dir.path().join("config.json"), b"{}")?;
//! // Writing: the keys loaded under the key file's lock, so no rotation retires them meanwhile.
//! source
//!     .write(|w: &KeyWarning| eprintln!("warning: {w}"), |keys| {
//!         let plain = dir.path().join("config.json");
//!         globo_crypto::encrypt_file(keys.primary(), &plain, &config_enc).map_err(KeysError::from)
//!     })
//!     .await?;
//!
//! // Reading during a rotation: retried with the keys current now if one overtook it.
//! let plaintext = source
//!     .read(|w: &KeyWarning| eprintln!("warning: {w}"), |keys| {
//!         globo_crypto::decrypt_file_to_memory(keys, &config_enc)
//!     })
//!     .await?;
//! assert_eq!(plaintext.as_slice(), b"{}");
//! # Ok(()) }
//! ```
//!
//! # Sources
//! - [`KeySource::File`]: the key file (`secret.key`), plus `secret.key.next` while a rotation
//!   is in progress; rotated with [`globo_crypto::rotate_key`] under the file's lock.
//! - `KeySource::SecretsManager` (feature `aws`, on by default): the secret `FERNET_KEY` (or
//!   [`KEY_SECRET_VAR`]), `AWSCURRENT` plus `AWSPENDING` during a rotation
//!   (`SecretsManagerKeyStore`, rotated through staging labels).
//! - The KMS and Vault Transit sources (planned) will be further variants of [`KeySource`],
//!   each with its own module and cargo feature beside `secrets_manager`.
//!
//! [`KeySource::resolve`] decides the source: local mode needs nothing from `.env`, so when
//! the mode or `APP_MODE` says local the file is not read. [`KeySource::load`] returns the
//! keys with [`KeyWarning`]s as data (loose key file permissions, an interrupted rotation);
//! nothing is printed. [`KeySource::create`] never replaces a key (nor does the seeder: see
//! Seeding); [`KeySource::rotate`] is crash-safe; [`KeySource::read`] retries a read
//! overtaken by a rotation; [`KeySource::write`] loads the keys under the key file's lock, so
//! that no rotation retires them while a file is encrypted.
//!
//! # Password pepper
//! [`pepper`]: the secret `PASSWORD_PEPPER` (globo-auth's [`Peppers`](globo_auth::Peppers))
//! in the same place: the environment or `.env` in local mode, AWS Secrets Manager in prod
//! mode. [`pepper::PepperSource`] loads it, creates it once (never replacing it) and rotates
//! it with the users file ([`pepper::PepperSource::rotate_users`]: one lock across re-runnable
//! steps, and a version is retired only when no record names it); `.env` is edited
//! atomically, other lines untouched.
//!
//! # Blocking
//! With a key file, the `async` calls `load`, `create`, `read`, `write` and `rotate` do their
//! file I/O on the calling thread: they block it, and `write` waits for the key file's lock
//! while a rotation of that key runs. In prod mode, [`KeySource::resolve`] builds the AWS
//! client through the SDK's configuration chain, which may query the EC2 instance metadata
//! service when no region or credentials are set otherwise.
//!
//! # Synchronous callers
//! [`BlockingKeySource`] offers the same calls, blocking. Local mode starts no runtime; prod
//! mode starts one current-thread tokio runtime. (The `app` CLI uses it.)
//!
//! # Seeding
//! `seed` (feature `aws`) supplies globo-secrets' seeder with the guard for key secrets
//! (never replace a Fernet key; recognise key secrets by `KEY_SECRET_DESCRIPTION` and its older
//! wording): `seed::KeySeeder` plans a seed list and checks that a seeded key decrypts the
//! configuration in one call.
//!
//! # Errors
//! One type, [`KeysError`]. Messages name the key file or secret, never a key, and name no
//! command of a particular program.
#![forbid(unsafe_code)]
// The crate page and item docs describe the `aws` feature's items with links, which resolve in
// the default build (the one docs.rs and `cargo doc` show); without the feature those items do
// not exist, and the prose stays as it is instead of losing its links in every build.
#![cfg_attr(not(feature = "aws"), allow(rustdoc::broken_intra_doc_links))]

mod blocking;
mod error;
pub mod pepper;
#[cfg(feature = "aws")]
pub mod secrets_manager;
#[cfg(feature = "aws")]
pub mod seed;
mod source;

pub use blocking::BlockingKeySource;
pub use error::KeysError;
/// Error reports (an error and its causes, one a line), for services that take this crate alone.
pub use globo_report::{Report, with_causes};
/// Keys and seed values travel as its `SecretString`.
pub use secrecy;
#[cfg(feature = "aws")]
pub use secrets_manager::{
    AWS_PENDING, AWS_PREVIOUS, KEY_SECRET_DESCRIPTION, LEGACY_KEY_SECRET_DESCRIPTIONS,
    SecretsManagerKeyStore, is_key_secret_description,
};
pub use source::{
    DEFAULT_KEY_SECRET, KEY_SECRET_VAR, KeyLocation, KeySource, KeySourceConfig, KeyWarning,
    LoadedKeyring,
};

// The crate page's example (README.md, shipped in the package) runs as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
