//! Argon2id password storage over the lab's users file (`users.json`).
//!
//! ```
//! use globo_auth::{AuthError, Profile, UserStore};
//! use secrecy::SecretString;
//!
//! # fn main() -> Result<(), AuthError> {
//! # let dir = tempfile::tempdir().map_err(|e| globo_fs::FsError::new("create", ".", e))?;
//! # let path = dir.path().join("users.json");
//! // Profile::TestOnlyInsecure keeps the example fast; real stores use the default profile.
//! let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
//! store.register("alice", &SecretString::from("correct horse battery staple"))?;
//!
//! let verified = store.verify("alice", &SecretString::from("correct horse battery staple"))?;
//! assert!(!verified.rehashed());
//! // A wrong password and an unknown user fail the same way.
//! assert!(matches!(
//!     store.verify("alice", &SecretString::from("wrong password")),
//!     Err(AuthError::InvalidCredentials)
//! ));
//! assert!(matches!(
//!     store.verify("mallory", &SecretString::from("wrong password")),
//!     Err(AuthError::InvalidCredentials)
//! ));
//! # Ok(()) }
//! ```
//!
//! # The users file
//! A JSON object mapping each username to a PHC string, exactly as the lab (passlib over
//! argon2-cffi) writes it: `{"alice": "$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>"}`.
//! Hashes written by the lab verify here and hashes written here verify in passlib and
//! argon2-cffi (tested against both). A missing file means no users. A file that is not a
//! JSON object is reported with its path and never overwritten. Changes run under an
//! exclusive lock on `<file>.lock` and replace the file atomically (mode `0600`).
//!
//! # Parameters
//! New hashes use a [`Profile`]; the default, [`Profile::Rfc9106LowMemory`] (Argon2id,
//! m=65536 KiB, t=3, p=4, 16-byte salt, 32-byte tag), is the lab's own setting, so migrated
//! users need no rehash. When a password verifies against a hash that is weaker than the
//! store's profile (see [`is_hash_obsolete`]), the hash is replaced by a fresh Argon2id one
//! with the profile's parameters, keeping any higher memory or time cost the old one had.
//!
//! Stored hashes are data, so the work they may demand is bounded by [`Limits`] (by default
//! 256 MiB, 16 iterations, 64 lanes, salts of 8 to 64 bytes, tags of 4 to 64 bytes) and
//! checked before any memory is allocated. The reference test suite's 1 GiB hashes
//! (`m=1048576`) are therefore refused with [`AuthError::HashExceedsLimits`].
//!
//! # Timing
//! Tags are compared in constant time (`subtle`). An unknown username is checked against a
//! dummy hash shaped like the file's typical entry (the parameters most users share; the
//! store's profile when the file is empty), made from random bytes (no Argon2 run is needed
//! to make it) and reused while that shape stays the same. So an unknown user costs one Argon2
//! run with the same parameters as a typical known user. The lab hashed then verified, which
//! made unknown users about 1.9 times slower. A user whose hash has other parameters than
//! most costs what those parameters cost, which tells an observer that this user exists: a
//! weaker hash is upgraded at that user's next login (never to lower costs than it had), so
//! keep one parameter set per file.
//!
//! # Password policy
//! Per NIST SP 800-63B and OWASP ASVS ([`check_new_password`]): at least 8 and at most 1024
//! characters, counted as Unicode code points; no composition rules; never truncated or
//! normalised (passlib does not normalise either, so normalising would break lab hashes);
//! refused when, compared case-insensitively, it is one of the 19,640 common passwords of
//! Django's list (BSD-3-Clause, shipped in `data/`, see `data/SOURCE.md`). A new password
//! must also not contain the username, nor be the username reversed, compared ignoring case
//! ([`check_new_password_for_user`], NIST's "context-specific words"), when the username has
//! at least 3 code points: shorter names are parts of too many good passwords. The username
//! is taken in its RFC 8265 form ([`username::comparison_key`]).
//!
//! Logins are held to none of this, so lab users with older, shorter passwords, or passwords
//! that contain their name, can still log in. Their only bound is against abuse:
//! [`MAX_LOGIN_PASSWORD_BYTES`] (16,384 bytes of UTF-8), above the longest password the lab
//! could store (passlib takes up to 4,096 code points), checked before anything is read or
//! hashed.
//!
//! # Usernames
//! New usernames are RFC 8265 identifiers ([`Username::prepare`], profile
//! UsernameCasePreserved: width mapping, NFC, IdentifierClass, bidi rule), with no
//! default-ignorable (invisible) code point and at most 64 code points; they are stored in
//! that form. Stored names in any other form (the lab took any string) are not rewritten:
//! every name is compared by its [`username::comparison_key`], so a name the lab wrote in NFD
//! is found by its NFC spelling and is taken for a new registration. When two stored names
//! share a key, only their exact spellings log in; any other spelling fails as an unknown user
//! ([`AuthError::InvalidCredentials`]), and [`UserStore::ambiguous_names`] lists such names.
//!
//! # Debug builds
//! Argon2 is memory-hard by design and unoptimised code makes it unusable: one
//! [`UserStore::verify`] with the default profile took 3.7 to 4.1 s in a debug build of a crate
//! depending on this one (6 to 22 s have been seen elsewhere) and 0.19 to 0.27 s once
//! `argon2` and `blake2` were optimised (0.14 to 0.17 s in release). globo's workspace
//! optimises them in its own debug builds, but `[profile]` settings are not inherited by
//! dependents, so add to your root `Cargo.toml`:
//!
//! ```toml
//! [profile.dev.package.argon2]
//! opt-level = 3
//! [profile.dev.package.blake2]
//! opt-level = 3
//! ```
//!
//! (or `[profile.dev.package."*"] opt-level = 3` for every dependency). Your own code stays
//! unoptimised and debuggable.
//!
//! # Compatibility decisions
//! globo parses PHC strings itself, following the reference C library (`phc-winner-argon2`,
//! which argon2-cffi and therefore passlib use), where it and the `argon2` crate differ:
//! - A hash without `v=` is version 0x10 (as in the PHC format spec and the reference code);
//!   the `argon2`/`password-hash` crates assume 0x13, which fails such lab-era hashes.
//! - Tags of 4 to 9 bytes are accepted (the reference minimum is 4; argon2-cffi's cheapest
//!   profile makes 4-byte tags); `password-hash` refuses tags under 10 bytes.
//! - Parameters must be `m`, `t`, `p` in this order, all present, as decimal numbers without
//!   leading zeros; `m` must be at least `8·p`; salts at least 8 bytes; base64 without padding
//!   and with zero trailing bits. Versions other than 16 and 19 are refused (the reference
//!   computes something for `v=42`; globo reports it as unsupported).
//! - `keyid=` is refused as unsupported: it names a secret key (pepper) that globo does not
//!   hold, and the reference decoder refuses it too.
//! - `data=` (at most 32 bytes) is honoured as Argon2 associated data, as the PHC spec, the
//!   `argon2` crate and passlib's pure-Python backend do. The reference decoder refuses it, and
//!   passlib over argon2-cffi drops it; globo never writes it and rehashes it away on login.
#![forbid(unsafe_code)]

mod error;
mod params;
mod phc;
mod policy;
mod store;
pub mod username;

pub use error::AuthError;
pub use params::{HashParams, Limits, Profile};
pub use phc::{hash_password, is_hash_obsolete, verify_password, verify_password_with_limits};
pub use policy::{
    MAX_LOGIN_PASSWORD_BYTES, MAX_PASSWORD_CHARS, MIN_CONTEXT_USERNAME_CHARS, MIN_PASSWORD_CHARS,
    check_new_password, check_new_password_for_user, check_username, is_common_password,
};
pub use store::{MAX_LOGIN_USERNAME_BYTES, UserStore, Verified};
pub use username::{MAX_USERNAME_CHARS, Username};

// The crate page's examples (README.md, shipped in the package) run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
