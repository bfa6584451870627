//! Seeding a list of secrets that may hold Fernet keys: never replace a key once a secret
//! holds one, and check that a key about to be written decrypts the configuration it belongs
//! to, in one call ([`KeySeeder::plan`]).
//!
//! The seeder itself stays in `globo_secrets::seed`: seeding is generic (every service seeds
//! secrets, few hold Fernet keys), and globo-secrets must not depend on globo-crypto. Its
//! [`Seeder::new`] takes a neutral [`Guard`]; this module supplies the Fernet one
//! ([`key_secret_guard`]) and wraps both in [`KeySeeder`].
//!
//! ```no_run
//! # async fn seed(provider: &globo_secrets::AwsProvider) -> Result<(), globo_keys::KeysError> {
//! use globo_keys::seed::KeySeeder;
//! use globo_keys::DEFAULT_KEY_SECRET;
//!
//! let entries = globo_secrets::seed::read_seed_config("config.json".as_ref())?;
//! let seeder = KeySeeder::new(provider, DEFAULT_KEY_SECRET);
//! // Reads every secret, decides every outcome; writes nothing.
//! let plan = seeder.plan(&entries, None).await?;
//! for step in plan.steps() {
//!     seeder.apply(step).await?; // a key secret holding a key: SeedOutcome::Kept
//! }
//! # Ok(()) }
//! ```

use std::path::Path;

use globo_crypto::Key;
use globo_secrets::AwsProvider;
use globo_secrets::seed::{Guard, SeedOutcome, SeedPlan, SeedStep, Seeder};
use secrecy::SecretString;

use crate::KeysError;
use crate::secrets_manager::{
    DEFAULT_KEY_SECRET, KEY_SECRET_DESCRIPTION, LEGACY_KEY_SECRET_DESCRIPTIONS,
};

/// What a key secret's seed value must be, for the seeder's error.
const EXPECTED: &str = "a Fernet key (expected 44 characters of URL-safe base64 encoding 32 bytes)";
/// What a key secret holds, for the seeder's error.
const HELD: &str = "the configuration's Fernet key";

/// The guard for secrets holding a Fernet key: [`DEFAULT_KEY_SECRET`] and `key_secret` by
/// name, any secret described by [`KEY_SECRET_DESCRIPTION`] or one of the
/// [`LEGACY_KEY_SECRET_DESCRIPTIONS`], and any secret whose current value is a Fernet key.
/// Secrets it creates get [`KEY_SECRET_DESCRIPTION`]. Add names with [`Guard::with_name`].
pub fn key_secret_guard(key_secret: &str) -> Guard {
    let guard = Guard::new(KEY_SECRET_DESCRIPTION, EXPECTED, |value: &SecretString| {
        Key::from_secret(value).is_ok()
    })
    .holding(HELD)
    .with_name(DEFAULT_KEY_SECRET)
    .with_name(key_secret);
    LEGACY_KEY_SECRET_DESCRIPTIONS.iter().fold(guard, |guard, old| guard.recognising(*old))
}

/// A seeder through one provider that never replaces a Fernet key ([`key_secret_guard`]) and
/// refuses to write a key that does not decrypt the configuration ([`KeySeeder::plan`]).
#[derive(Debug, Clone)]
pub struct KeySeeder<'a> {
    seeder: Seeder<'a>,
}

impl<'a> KeySeeder<'a> {
    /// Seeds through `provider`, guarding [`DEFAULT_KEY_SECRET`], `key_secret` and every
    /// secret that holds a Fernet key or carries a key secret's description.
    pub fn new(provider: &'a AwsProvider, key_secret: &str) -> Self {
        Self::with_guard(provider, key_secret_guard(key_secret))
    }

    /// Seeds through `provider` with `guard`, a [`key_secret_guard`] the caller extended
    /// (e.g. [`Guard::with_name`] for more key secrets).
    pub fn with_guard(provider: &'a AwsProvider, guard: Guard) -> Self {
        Self { seeder: Seeder::new(provider, guard) }
    }

    /// The seeder of globo-secrets inside, with the guard.
    pub fn seeder(&self) -> &Seeder<'a> {
        &self.seeder
    }

    /// Whether `name` is guarded by name ([`Seeder::is_guarded`]).
    pub fn is_guarded(&self, name: &str) -> bool {
        self.seeder.is_guarded(name)
    }

    /// The read-only first pass over a seed list ([`Seeder::plan`]): checks every entry and
    /// reads every secret, writing nothing. With `encrypted_config`, the encrypted
    /// configuration the list was read from, also checks that every key the plan would write
    /// into a key secret (creating it, or replacing the placeholder it holds) decrypts that
    /// file: a list holding another key than the one the file is encrypted under would leave
    /// the configuration unreadable in prod mode ([`KeysError::SeedKeyMismatch`], naming the
    /// secret and the file, never the key). Reads the file synchronously (the call blocks
    /// while it decrypts).
    pub async fn plan(
        &self,
        entries: &[(String, SecretString)],
        encrypted_config: Option<&Path>,
    ) -> Result<SeedPlan, KeysError> {
        let plan = self.seeder.plan(entries).await?;
        if let Some(encrypted) = encrypted_config {
            check_keys_decrypt(&plan, encrypted)?;
        }
        Ok(plan)
    }

    /// Carries out one step of a plan ([`Seeder::apply`]).
    pub async fn apply(&self, step: &SeedStep) -> Result<SeedOutcome, KeysError> {
        Ok(self.seeder.apply(step).await?)
    }

    /// Makes `name` hold `value`, writing only when needed and never over a Fernet key
    /// ([`Seeder::seed`]).
    pub async fn seed(&self, name: &str, value: &SecretString) -> Result<SeedOutcome, KeysError> {
        Ok(self.seeder.seed(name, value).await?)
    }
}

/// Every key `plan` writes into a key secret must decrypt `encrypted`.
fn check_keys_decrypt(plan: &SeedPlan, encrypted: &Path) -> Result<(), KeysError> {
    for step in plan.guarded_writes() {
        // The guard let only Fernet keys into a guarded write.
        let key = Key::from_secret(step.value())?;
        if let Err(source) = globo_crypto::decrypt_file_to_memory(&key, encrypted) {
            return Err(KeysError::SeedKeyMismatch {
                name: step.name().to_owned(),
                file: encrypted.to_path_buf(),
                source,
            });
        }
    }
    Ok(())
}
