//! globo keeps data at rest safe: Argon2id password storage, Fernet encryption of local files,
//! and one secrets interface that reads `.env` in development and AWS Secrets Manager in
//! production.
//!
//! This crate only re-exports the three libraries; depend on one of them directly when that is
//! all you need (`cargo add globo-secrets`).
#![forbid(unsafe_code)]

pub use globo_auth as auth;
pub use globo_crypto as crypto;
pub use globo_secrets as secrets;

// The README's Rust examples are compiled and run as doc tests of this crate.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
