//! One secrets interface for services: `.env` in development, AWS Secrets Manager in
//! production, an optional cache in front of either, and an in-memory store for tests.
//!
//! ```
//! use std::sync::Arc;
//! use globo_secrets::{CachingProvider, InMemoryProvider, SecretsProvider};
//! use secrecy::ExposeSecret;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), globo_secrets::SecretsError> {
//! // In production this would be `globo_secrets::provider_for(None, ".env", &env)`.
//! let backend = InMemoryProvider::new().with("PAYMENT_GATEWAY_API_KEY", "local-dev-payment-key-123456");
//! let secrets: Arc<dyn SecretsProvider> = Arc::new(CachingProvider::new(Arc::new(backend)));
//!
//! let key = secrets.get("PAYMENT_GATEWAY_API_KEY").await?;
//! assert_eq!(key.expose_secret(), "local-dev-payment-key-123456");
//! assert_eq!(format!("{key:?}"), "SecretBox<str>([REDACTED])");
//! assert!(secrets.get("MISSING").await.is_err());
//! # Ok(()) }
//! ```
//!
//! # Providers
//! - [`LocalProvider`]: the process environment over a `.env` file parsed as python-dotenv
//!   parses it for the lab ([`dotenv`]), without mutating the process environment; variables
//!   already set win (the lab's `override=False`); a key defined twice takes its last value.
//! - [`AwsProvider`]: `GetSecretValue` through the SDK's standard configuration chain
//!   ([`aws_config_loader`]), with bounded timeouts and retries; text and binary secrets,
//!   any version stage or id.
//! - [`InMemoryProvider`]: for your own tests.
//! - [`CachingProvider`]: wraps any of them (TTL, refresh-now, stale values during outages,
//!   single flight).
//!
//! [`provider_for`] picks one: an explicit [`Mode`], else `APP_MODE` (process environment,
//! then the last `APP_MODE` of `.env`), else local. It reads `.env` once ([`EnvFile`]) for
//! the mode, the local values and the AWS settings, so a pipe (`<(cmd)`) works; pass an
//! [`EnvFile`] instead of a path to share one reading with other calls. Production fails closed: an unknown mode is an error, and prod
//! never reads a secret value from `.env`. It does take the AWS *settings* of
//! [`AWS_SETTING_GROUPS`] (endpoint, region, profile, credentials) from `.env` when the process
//! environment sets none of a group ([`AwsSettings`]), as the lab's `load_dotenv()` followed by
//! boto3 does; the process environment always wins, and an identity it selects by any
//! mechanism ([`AWS_IDENTITY_SELECTORS`]: container credentials, web identity, profile files)
//! is never replaced by `.env`'s static keys.
//!
//! # `.env` files
//! [`dotenv`] parses them exactly as python-dotenv 1.2 (the lab's loader) does, checked
//! against it by a differential test; where globo differs on purpose (a byte-order mark is
//! skipped, a line python-dotenv would skip makes the file an error) is documented there.
//! [`EnvFile`] is one reading of a file, bounded to [`MAX_ENV_FILE_LEN`], that a FIFO with no
//! writer cannot block.
//!
//! # Keys
//! This crate holds no encryption key logic: the Fernet key held in Secrets Manager (and its
//! rotation) lives in `globo-keys`, which supplies the seeder's guard for key secrets
//! ([`seed::Guard`]).
//!
//! # Text and binary secrets
//! [`SecretsProvider::get`] returns a [`SecretString`](secrecy::SecretString) (the lab's
//! `get`). A binary AWS secret is [`SecretsError::NotText`] there; read it with
//! [`SecretsProvider::get_value`] (a [`SecretValue`]) or [`SecretsProvider::get_bytes`].
//!
//! # Errors
//! One type, [`SecretsError`]. Messages name the secret, file or endpoint, never a value;
//! the lab's wording is kept where it had one. Each condition has its own variant with
//! structured fields (e.g. [`SecretsError::UnknownMode`], [`SecretsError::IncompleteCredentials`]),
//! so a service can match on it; messages name no command of globo's CLI.
//!
//! # Blocking and memory
//! Reading `.env` is synchronous file I/O on the calling thread, also inside the `async`
//! functions: [`EnvFile::read`], [`read_env_file`], [`LocalProvider::new`], [`resolve_mode`]
//! and [`provider_for`] block it for the time of one bounded read (at most
//! [`MAX_ENV_FILE_LEN`] bytes held; a pipe or FIFO is waited for up to 10 seconds, then
//! refused). A service reads `.env` once at start-up, or from `spawn_blocking`. AWS calls are
//! `async` and bounded by the timeouts of `bounded_timeouts` (feature `aws`); a
//! [`CachingProvider`] holds every cached value in memory until it expires.
//!
//! # Features
//! Each backend is a cargo feature, so a service compiles only the backends it uses. With
//! `default-features = false` the crate reads `.env` and the process environment only: 31 crates
//! in all (`cargo tree -e normal`, this crate included), against 150 with `aws`.
//!
//! | Feature | Default | Adds |
//! | --- | --- | --- |
//! | *(none)* | always | [`LocalProvider`], [`dotenv`], [`EnvFile`], [`Environment`], [`Mode`], [`resolve_mode`], [`provider_for`] (prod mode is [`SecretsError::BackendNotBuilt`] without a backend), [`CachingProvider`], [`InMemoryProvider`], [`SecretValue`], [`seed::read_seed_config`] and [`seed::seed_entries`] |
//! | `aws` | yes | AWS Secrets Manager: `AwsProvider`, `AwsSettings`, `aws_config_loader`, prod mode in [`provider_for`], `seed::Seeder` (the AWS SDK with its rustls HTTPS client; the Fernet key held in a secret is globo-keys') |
//! | `vault` | | HashiCorp Vault: not written yet; it will be a feature of its own, like `aws` |
//!
//! ```toml
//! [dependencies]
//! # .env and the environment only (no AWS SDK):
//! globo-secrets = { path = "../globo/crates/globo-secrets", default-features = false }
//! ```
//!
//! The facade `globo` forwards the same features (`globo = { ..., default-features = false }`
//! for a `.env`-only build).
#![forbid(unsafe_code)]
// The crate page and item docs describe the `aws` feature's items with links, which resolve in
// the default build (the one docs.rs and `cargo doc` show); without the feature those items do
// not exist, and the prose stays as it is instead of losing its links in every build.
#![cfg_attr(not(feature = "aws"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(feature = "aws")]
mod aws;
mod cache;
pub mod dotenv;
mod error;
mod factory;
mod local;
mod memory;
mod provider;
pub mod seed;
#[cfg(feature = "aws")]
mod settings;
mod value;
// A Vault backend goes here, as `#[cfg(feature = "vault")] mod vault;`, beside `aws`.

#[cfg(feature = "aws")]
pub use aws::{
    ATTEMPT_TIMEOUT, AWS_CURRENT, AwsProvider, CONNECT_TIMEOUT, MAX_ATTEMPTS, OPERATION_TIMEOUT,
    READ_TIMEOUT, VersionSelector, aws_config_loader, aws_config_loader_for, bounded_timeouts,
    check_aws_name,
};
pub use cache::{CacheConfig, CachingProvider};
pub use error::{ModeOrigin, Operation, SecretsError};
pub use factory::{Mode, mode_without_env_file, provider_for, resolve_mode};
/// Error reports (an error and its causes, one a line), for services that take this crate alone.
pub use globo_report::{Report, with_causes};
pub use local::{
    EnvFile, EnvFileSource, Environment, LocalProvider, MAX_ENV_FILE_LEN, read_env_file,
};
pub use memory::InMemoryProvider;
pub use provider::SecretsProvider;
/// [`SecretsProvider::get`] returns its `SecretString`.
pub use secrecy;
#[cfg(feature = "aws")]
pub use settings::{
    AWS_IDENTITY_SELECTORS, AWS_SETTING_GROUPS, AwsSettings, IGNORE_ENDPOINTS_VAR, SettingSource,
};
pub use value::SecretValue;

/// The AWS configuration types callers need to build an [`AwsProvider`] by hand (see
/// [`aws_config_loader`]).
#[cfg(feature = "aws")]
pub use aws_config::SdkConfig;
/// Static credentials and regions, for building an [`SdkConfig`] by hand.
#[cfg(feature = "aws")]
pub use aws_sdk_secretsmanager::config::{Credentials, Region};

// The crate page's examples (README.md, shipped in the package) run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
