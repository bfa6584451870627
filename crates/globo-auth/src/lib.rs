//! Store and verify passwords: [`UserStore::register`] keeps an Argon2id hash of a new
//! user's password (after the password policy), [`UserStore::verify`] checks a login against
//! it and upgrades a weaker hash on the way. Unknown user and wrong password fail alike
//! ([`AuthError::InvalidCredentials`]); [`AuthError::kind`] tells a service which response to
//! give. The store is a JSON users file (`users.json`) that the lab's Python app (passlib over
//! argon2-cffi) reads and writes too; [`hash_password`] and [`verify_password`] work on PHC
//! strings for a service with its own storage.
//!
//! ```
//! use globo_auth::secrecy::SecretString; // re-exported: no `secrecy` dependency needed
//! use globo_auth::{AuthError, Profile, UserStore};
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
//! # What a call costs
//! Hashing and verifying run Argon2, which is slow and memory-hard by design: each
//! [`UserStore::register`], [`UserStore::verify`] (known user or not; two runs for a password
//! that NFKC changes, see "Password policy"), [`hash_password`] and
//! [`verify_password`] blocks the calling thread for one Argon2 run (in a release build about 14 ms
//! with `owasp-min`, 80 to 115 ms with the default profile, see docs/benchmarks.md; seconds
//! in an unoptimised build, see below) and allocates its memory cost, `m` KiB
//! (64 MiB with the default profile; for a stored hash, up to 256 MiB with the default
//! [`Limits`], or what [`UserStore::with_limits`] allows). From async
//! code, see "From async code" below: each one holds its `m` KiB until it returns. With the `parallel` feature, the first computation starts
//! rayon's global thread pool (one thread per CPU, or `RAYON_NUM_THREADS`) and each runs its
//! `p` lanes on it; without it, everything runs on the calling thread and no thread is
//! started. A login reads the users once, known name or not (the name's lookup and the
//! store's typical record together); for the users file, that and the other methods read the
//! file whole (up to [`UserStore::MAX_FILE_LEN`], allocated at its size). Beyond Argon2, a
//! login costs 1 to 2 ms on SQLite and PostgreSQL whatever the number of users (mostly the
//! two throttling transactions it commits, each waiting for the disk's `fsync`; tens to
//! hundreds of microseconds without throttling), and on the users file its read: 4 ms and
//! more at 10,000 users, 50 to 200 ms at 100,000 (docs/benchmarks.md, "Credential stores"). Every change is one
//! transaction under the store's writer lock, which waits for any other writer: for the users
//! file, an exclusive lock and an atomic replacement of the file.
//!
//! # From async code
//! Every method of [`UserStore`] is synchronous: it blocks the calling thread for its Argon2
//! run (or two) and the store's I/O (the users file, or the database's queries). Called
//! inside an async task, it stalls every other task on that runtime worker: with 4
//! concurrent logins on a 2-worker tokio runtime, a health check due every 10 ms ran a median
//! 420 ms late (1.1 ms with `AsyncUserStore`; docs/benchmarks.md, "Health checks under
//! logins"; a service measured 0.8 to 1.9 s). With the feature
//! `tokio`, `AsyncUserStore` runs each call on tokio's blocking pool
//! (`tokio::task::spawn_blocking`), after taking its share of a memory budget
//! (`AsyncUserStore::with_memory_budget`, 256 MiB by default: four default hashes at
//! once), so the workers stay free and a burst of logins never allocates more than the
//! budget for Argon2. Without the feature, call the store from `spawn_blocking` yourself and
//! bound how many calls run at once (a semaphore of budget / `m` permits).
//!
//! # The users file
//! A JSON object mapping each username to a PHC string, exactly as the lab (passlib over
//! argon2-cffi) writes it: `{"alice": "$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>"}`.
//! Hashes written by the lab verify here and hashes written here verify in passlib and
//! argon2-cffi (tested against both). A missing file means no users. A file that is not a
//! JSON object is reported with its path and never overwritten. Changes run under an
//! exclusive lock on `<file>.lock` and replace the file atomically (mode `0600`).
//!
//! The users file is one store among others: [`UserStore`] keeps every protection described
//! here (policy, NFKC, dummy hashes, rehash, pepper, throttling, events) and reaches its users
//! and throttling records only through an internal backend interface, so a database store
//! (features `sqlite` and `postgres`) behaves the same. [`UserStore::new`] is the users file;
//! [`UserStore::location`] names the store in messages (errors about the users, such as
//! [`AuthError::BadEntry`], say `users store '<location>'`).
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
//! Tags are compared in constant time, and an unknown username costs what a wrong password
//! for a typical known user costs: as many Argon2 runs (one, or two for a password that NFKC
//! changes, decided by the input alone) with that user's parameters, against a dummy hash
//! shaped like the file's typical entry, so the response time does not tell which usernames
//! exist. A user whose hash has other parameters than most costs what those parameters cost,
//! which tells an observer that this user exists: keep one parameter set per file (a login
//! upgrades a weaker hash). A user
//! whose entry is unusable gets [`AuthError::BadEntry`] after the same dummy run, but its
//! kind differs from a login failure (see [`AuthErrorKind`]). Why and how: [docs/passwords.md](https://github.com/globo-rs/globo/blob/main/docs/passwords.md).
//!
//! # Password policy
//! A store holds every new password to its [`PasswordPolicy`]
//! ([`UserStore::with_password_policy`]), after NIST SP 800-63B-4 §3.1.1.2 and OWASP ASVS:
//! [`PasswordPolicy::SingleFactor`], the default, asks for at least 15 characters (the SHALL
//! for a password that logs a user in on its own); [`PasswordPolicy::WithSecondFactor`]
//! asks for 8, and is only for services where every login also needs a second factor. Both
//! allow at most 1024 characters, impose no composition rules, never truncate, and refuse,
//! compared case-insensitively, the 19,640 common passwords of Django's list (BSD-3-Clause,
//! shipped in `data/`, see `data/SOURCE.md`). A new password must also not contain the
//! username, nor be the username reversed, compared ignoring case
//! ([`PasswordPolicy::check_for_user`], NIST's "context-specific words"), when the username has
//! at least 3 code points: shorter names are parts of too many good passwords. The username
//! is taken in its RFC 8265 form ([`username::comparison_key`]). [`check_new_password`] and
//! [`check_new_password_for_user`] are the default policy's checks.
//!
//! Characters are Unicode code points of the password's NFKC form
//! ([`normalize_password`], NIST's SHOULD), and that form is what is hashed, so `ｃａｆé` and
//! `cafe` plus a combining accent are one password. At login the NFKC form is tried first
//! and, only when NFKC changes the input, its raw bytes too: hashes the lab (passlib) and
//! earlier globo made of raw bytes keep verifying, and such a login replaces the hash by one
//! of the NFKC form ([`Verified::rehashed`]). Python peers add
//! `unicodedata.normalize("NFKC", password)`; why and what it costs: docs/passwords.md.
//!
//! Logins are held to none of the policy, so lab users with older, shorter passwords, or
//! passwords that contain their name, can still log in. Their only bound is against abuse:
//! [`MAX_LOGIN_PASSWORD_BYTES`] (16,384 bytes of UTF-8), above the longest password the lab
//! could store (passlib takes up to 4,096 code points), checked before anything is read or
//! hashed.
//!
//! # Pepper
//! A [`Peppers`] key, held by the secrets provider (never in the users file), encrypts every
//! stored tag (OWASP Password Storage Cheat Sheet, "Peppering"): the record names its version
//! (`keyid=`, a fingerprint of the key, so no other key can pass for it) and its tag is XORed
//! with an HMAC-SHA512 keystream of the record's salt and parameters. passlib refuses such a record and, with `keyid` removed, its masked tag
//! matches no password: a stolen users file alone cannot be attacked offline. With
//! [`UserStore::with_peppers`], new records are peppered with the current version and a
//! login upgrades unpeppered or older ones; [`UserStore::pepper_all`] and
//! [`UserStore::rotate_pepper_all`] do it for every record offline, without passwords.
//! Unpeppered records always verify. A record under a version that is not configured fails
//! with [`AuthError::PepperUnavailable`] after the same dummy run an unknown user gets, and a
//! store without a pepper writes no new record into a file that holds peppered ones
//! ([`AuthError::PepperRequired`]), nor does a store whose pepper lacks a version the file's
//! records name, the one being replaced excepted (its pepper was loaded before a rotation,
//! is the wrong one, or a record was copied from another users file:
//! [`AuthError::PepperStale`], naming them). [`UserStore::maintenance`] holds the users file's lock
//! across the steps of a rotation ([`UsersMaintenance`]). The
//! format, the reasons and a ten-line Python recipe for argon2-cffi and passlib:
//! [docs/passwords.md, "Pepper"](https://github.com/globo-rs/globo/blob/main/docs/passwords.md#pepper).
//!
//! # Throttling
//! Logins are throttled by default (NIST SP 800-63B-4 §3.2.2: at most 100 consecutive
//! failures per account), per account and per source ([`UserStore::verify_from`]'s key, an
//! address, say), django-axes style: an attempt is refused when either is delayed or locked.
//! With [`ThrottlePolicy::default`], an account's first 5 failures cost nothing, each further
//! one makes the next attempt wait 1 s doubling up to 15 minutes, and the 100th locks it for
//! 24 hours (or until [`UserStore::unlock`]); a source gets 20 free failures, the same
//! delays and a 1-hour lock at 100, and is forgotten an hour after its last failure. A
//! success resets the account only. Refused attempts fail with [`AuthError::Throttled`]
//! (kind [`AuthErrorKind::Throttled`], a 429) before the users file is read or Argon2 runs,
//! and unknown names are counted and answered exactly like known ones. The counts live with
//! the users (account names only as salted SHA-256, each attempt one atomic update of its
//! account's and its source's records), so they survive restarts and every process on the
//! same store shares them. For the users file, that is the folder `<users file>.throttle`
//! (mode `0700`: a salt and 256 small JSON shards, each written atomically under its own
//! lock), and an attempt costs the same with 10 records or 100,000; [`UserStore::throttle_status`] reads them,
//! [`UserStore::without_throttle`] turns throttling off for a service that throttles in front
//! of the store. Deleting a user, or an operator's [`UserStore::reset_password`], clears the
//! account's failures and lock, once the users file is written. A policy that would switch
//! the lock off (a zero lock, a source window no longer than the longest delay) is refused
//! by [`UserStore::with_throttle`] ([`ThrottlePolicy::validate`]). An attempt that ends in an
//! operational error (an unreadable users file) is taken back, so a misconfiguration never
//! locks accounts (an unusable record or a pepper version the store lacks still counts
//! against the source: each costs the dummy Argon2 run). Users that share a comparison key
//! (a lab file's `josé` and `jose\u{301}`) share a record, and a success of one never clears
//! the other's failures. An account that reached its free failures is never evicted to make
//! room for new records (a shard full of them refuses new ones:
//! [`AuthError::ThrottleStateFull`]). Security events name a name no stored user has as
//! `unknown:` and 12 hex digits of its salted id, never as typed (it may be a password), and
//! a refused attempt's account as `account:` and those digits, known or not (a refusal reads
//! no users); [`UserStore::unlock_unknown`] clears such a name's record.
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
//! # Account lifecycle
//! A user changes their own password with [`UserStore::change_password`]: the current
//! password is verified exactly as a login ([`UserStore::verify_from`]: an unknown user and a
//! wrong password are both [`AuthError::InvalidCredentials`]), the new one must pass the
//! new-password policy, and the new hash is written only if the record is still the one
//! verified ([`AuthError::ConcurrentChange`] otherwise; OWASP ASVS 5.0 V6.2.3). An operator
//! resets a password without the current one ([`UserStore::reset_password`]), finds the user
//! a name designates ([`UserStore::find`]), deletes a user ([`UserStore::delete`], or
//! [`UserStore::delete_exact`] for the name as stored, say after a confirmation) and lists
//! them ([`UserStore::usernames`]); an operator's command naming nobody fails with
//! [`AuthError::NoSuchUser`], and one naming a spelling several stored names share with
//! [`AuthError::AmbiguousUser`]. Register, change and reset make every new record in one
//! place (policy, then the hash of the NFKC form). Every change is a read-modify-write under
//! the users file's lock, written atomically in the lab's format.
//!
//! # Security events
//! The store emits `tracing` events named in the OWASP Logging Vocabulary, with the target
//! [`SECURITY_EVENTS_TARGET`] (`globo_auth::security`): `authn_login_success`,
//! `authn_password_change`, `authn_password_change_fail`, `user_created`, `user_deleted`, ...
//! with the username (as stored when known) and the caller's source, both escaped (every
//! character but `A-Z a-z 0-9 . _ @ -` and letters as `\u{XX}`) so that they cannot forge a
//! field of a text log. No event carries a password, a hash or a pepper. Nothing is printed unless the application installs a
//! `tracing` subscriber; the table of events is in
//! [docs/passwords.md](https://github.com/globo-rs/globo/blob/main/docs/passwords.md).
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
//! # Compatibility
//! globo parses PHC strings itself, following the reference C library that argon2-cffi and
//! passlib use where it and the `argon2` crate differ (a hash without `v=` is version 0x10,
//! tags of 4 to 9 bytes are accepted, `data=` is honoured, `keyid=` names a pepper version, see "Pepper"); the list is in
//! [docs/passwords.md](https://github.com/globo-rs/globo/blob/main/docs/passwords.md).
#![forbid(unsafe_code)]

#[cfg(feature = "tokio")]
mod asynchronous;
mod backend;
mod copy;
mod error;
mod events;
mod normalize;
mod params;
mod pepper;
mod phc;
mod policy;
mod spec;
mod store;
mod throttle;
pub mod username;

#[cfg(feature = "tokio")]
pub use asynchronous::{AsyncUserStore, DEFAULT_MEMORY_BUDGET};
pub use copy::{CopyReport, copy_users, copy_users_observed};
pub use error::{AuthError, AuthErrorKind};
pub use events::TARGET as SECURITY_EVENTS_TARGET;
pub use globo_report::{Report, with_causes};
pub use normalize::normalize_password;
pub use params::{HashParams, Limits, Profile};
pub use pepper::{MAX_PEPPER_BYTES, MIN_PEPPER_BYTES, PepperReport, Peppers, VERSION_ID_BYTES};
pub use phc::{hash_password, is_hash_obsolete, verify_password, verify_password_with_limits};
pub use policy::{
    MAX_LOGIN_PASSWORD_BYTES, MAX_PASSWORD_CHARS, MIN_CONTEXT_USERNAME_CHARS, MIN_PASSWORD_CHARS,
    MIN_SECOND_FACTOR_PASSWORD_CHARS, PasswordPolicy, check_new_password,
    check_new_password_for_user, check_username, is_common_password,
};
/// The `secrecy` crate, whose [`SecretString`](secrecy::SecretString) carries every password
/// in and out of this crate: a service needs no dependency of its own to name it.
pub use secrecy;
pub use spec::StoreSpec;
pub use store::{MAX_LOGIN_USERNAME_BYTES, UserStore, UsersMaintenance, Verified};
pub use throttle::{
    MAX_LOCK_AFTER, MAX_THROTTLE_ENTRIES, ThrottlePolicy, ThrottleScope, ThrottleState,
    ThrottleStatus,
};
pub use username::{MAX_USERNAME_CHARS, Username};

// The crate page's examples (README.md, shipped in the package) run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
