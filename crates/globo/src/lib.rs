//! globo keeps data at rest safe: Argon2id password storage, Fernet encryption of local files,
//! and one secrets interface that reads `.env` in development and AWS Secrets Manager in
//! production.
//!
//! This crate re-exports the three libraries, plus [`with_causes`] to report their errors and
//! [`harden_process`] for programs that hold secrets; depend on one of them directly when that
//! is all you need.
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

// The crate page's examples (README.md, shipped in the package) run as doc tests. The
// repository's README is outside the package; its examples run as doc tests of globo-testkit.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
