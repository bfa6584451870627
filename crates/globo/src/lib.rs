//! globo keeps data at rest safe: Argon2id password storage, Fernet encryption of local files,
//! one secrets interface that reads `.env` in development and AWS Secrets Manager in
//! production, and the key's home (a key file, or a Secrets Manager secret) in one call.
//!
//! This crate re-exports the four libraries, plus [`with_causes`] and [`Report`] to report
//! their errors and [`harden_process`] for programs that hold secrets; depend on one of them
//! directly when that is all you need (globo-auth, globo-fs, globo-emulator, globo-crypto,
//! globo-secrets and globo-keys each re-export `Report` and `with_causes` too).
//!
//! # Features
//! | Feature | Default | Adds |
//! | --- | --- | --- |
//! | `aws` | yes | AWS Secrets Manager in [`secrets`] (prod mode, the seeder) and in [`keys`] (the Fernet key held in a secret): globo-secrets' and globo-keys' `aws` features |
//! | `parallel` | no | globo-crypto's `parallel` (tokens of 1 MiB or more over two threads) and globo-auth's `parallel` (an Argon2 hash's lanes on rayon's pool) |
//!
//! With `default-features = false` the secrets backends are off: [`secrets`] reads `.env`
//! and the process environment only, and [`keys`] knows the key file only (see the crate
//! pages of globo-secrets and globo-keys).
#![forbid(unsafe_code)]

mod error;
mod process;

pub use error::HardeningError;
pub use process::harden_process;

pub use globo_auth as auth;
pub use globo_crypto as crypto;
pub use globo_keys as keys;
pub use globo_secrets as secrets;

#[doc(inline)]
pub use globo_report::Report;
/// An error's message followed by its `source()` chain, one indented `caused by:` line each:
/// how the binaries and the demo report a failure. globo's errors never hold a password, key or
/// secret value, so the report is safe to print or log. Re-exported from globo-report, whose
/// [`Report`] is the same as a `Display` adapter (globo-auth, globo-fs, globo-emulator,
/// globo-crypto, globo-secrets and globo-keys re-export both).
///
/// ```
/// let error = globo::crypto::KeyFile::load("no-such.key".as_ref()).unwrap_err();
/// let report = globo::with_causes(&error);
/// assert!(report.starts_with("key file 'no-such.key' not found"));
/// ```
#[doc(inline)]
pub use globo_report::with_causes;

// The crate page's examples (README.md, shipped in the package) run as doc tests. The
// repository's README is outside the package; its examples run as doc tests of globo-testkit.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
