//! What the seeder of globo-secrets must know about key secrets: never replace a Fernet key
//! once a secret holds one, and check that a key about to be written decrypts the
//! configuration it belongs to.
//!
//! The seeder itself stays in `globo_secrets::seed`: seeding is generic (every service seeds
//! secrets, few hold Fernet keys), and globo-secrets must not depend on globo-crypto. It
//! offers a neutral hook, [`globo_secrets::seed::Guard`]; this module supplies the Fernet one
//! ([`key_secret_guard`]).

use std::path::Path;

use globo_crypto::Key;
use globo_secrets::AwsProvider;
use globo_secrets::seed::{Guard, SeedPlan, Seeder};
use secrecy::SecretString;

use crate::KeysError;
use crate::secrets_manager::{
    DEFAULT_KEY_SECRET, KEY_SECRET_DESCRIPTION, LEGACY_KEY_SECRET_DESCRIPTIONS,
};

/// What a key secret's seed value must be, for the seeder's error.
const EXPECTED: &str = "a Fernet key (44 characters of URL-safe base64 encoding 32 bytes)";

/// The guard for secrets holding a Fernet key: [`DEFAULT_KEY_SECRET`] and `key_secret` by
/// name, any secret described by [`KEY_SECRET_DESCRIPTION`] or one of the
/// [`LEGACY_KEY_SECRET_DESCRIPTIONS`], and any secret whose current value is a Fernet key.
/// Secrets it creates get [`KEY_SECRET_DESCRIPTION`].
pub fn key_secret_guard(key_secret: &str) -> Guard {
    let guard = Guard::new(KEY_SECRET_DESCRIPTION, EXPECTED, |value: &SecretString| {
        Key::from_secret(value).is_ok()
    })
    .with_name(DEFAULT_KEY_SECRET)
    .with_name(key_secret);
    LEGACY_KEY_SECRET_DESCRIPTIONS.iter().fold(guard, |guard, old| guard.recognising(*old))
}

/// A seeder through `provider` that never replaces a Fernet key ([`key_secret_guard`]).
pub fn key_seeder<'a>(provider: &'a AwsProvider, key_secret: &str) -> Seeder<'a> {
    Seeder::new(provider).with_guard(key_secret_guard(key_secret))
}

/// Checks that every key `plan` would write into a key secret (creating it, or replacing the
/// placeholder it holds) decrypts `encrypted`, the configuration file the seed list was read
/// from: a seed list holding another key than the one the file is encrypted under would leave
/// the configuration unreadable in prod mode. Reads the file only;
/// [`KeysError::SeedKeyMismatch`] names the secret and the file, never the key.
pub fn check_seed_keys_decrypt(plan: &SeedPlan, encrypted: &Path) -> Result<(), KeysError> {
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
