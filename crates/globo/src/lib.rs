//! globo keeps data at rest safe: Argon2id password storage, Fernet encryption of local files,
//! and one secrets interface that reads `.env` in development and AWS Secrets Manager in
//! production.
//!
//! This crate re-exports the three libraries, plus [`with_causes`] to report their errors and
//! [`harden_process`] for programs that hold secrets; depend on one of them directly when that
//! is all you need.
//!
//! # Features
//! | Feature | Default | Adds |
//! | --- | --- | --- |
//! | `aws` | yes | AWS Secrets Manager in [`secrets`] (globo-secrets' `aws` feature: prod mode, the seeder, the Fernet key secret) |
//!
//! With `default-features = false` the secrets backends are off and [`secrets`] reads `.env`
//! and the process environment only (see globo-secrets' crate page).
#![forbid(unsafe_code)]

mod error;
mod process;

pub use error::HardeningError;
pub use process::harden_process;

pub use globo_auth as auth;
pub use globo_crypto as crypto;
pub use globo_secrets as secrets;

use std::error::Error;
use std::fmt::Write as _;

/// An error's message followed by its `source()` chain, one indented `caused by:` line each:
/// how the binaries and the demo report a failure. globo's errors never hold a password, key or
/// secret value, so the report is safe to print or log.
///
/// ```
/// let error = globo::crypto::KeyFile::load("no-such.key".as_ref()).unwrap_err();
/// let report = globo::with_causes(&error);
/// assert!(report.starts_with("key file 'no-such.key' not found"));
/// ```
pub fn with_causes(error: &(dyn Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(message, "\n  caused by: {cause}");
        source = cause.source();
    }
    message
}

// The README's Rust examples are compiled and run as doc tests of this crate.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
