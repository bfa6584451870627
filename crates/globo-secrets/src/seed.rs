//! Idempotent seeding of secrets (the `mock-aws-seed` tool's logic), which never replaces a
//! Fernet key.
//!
//! A secret that holds the configuration's Fernet key is managed by `init-key` and
//! `rotate-key`: files are encrypted under its current version, so writing another key over it
//! would make them unreadable (a seed list written before a rotation holds the pre-rotation
//! key). A [`Seeder`] therefore treats these *key secrets* apart:
//!
//! - which they are: [`DEFAULT_KEY_SECRET`], the names added with [`Seeder::with_key_secret`],
//!   any existing secret whose name or ARN (as DescribeSecret returns it) is one of those, and
//!   any existing secret whose description is [`KEY_SECRET_DESCRIPTION`] (set by `init-key`,
//!   by the seeder when it creates a key secret, and by every rotation);
//! - a seed value for a key secret must be a Fernet key ([`SecretsError::SeedNotAKey`]
//!   otherwise);
//! - an absent key secret is created (with that description); an existing one that holds the
//!   same key is [`SeedOutcome::Unchanged`].
//! - **any** existing secret whose `AWSCURRENT` value is a Fernet key other than the seed
//!   value is [`SeedOutcome::Kept`], whatever its name or description: nothing is written. A
//!   key secret made by the AWS CLI, Terraform or an older seeder and then rotated would
//!   otherwise get its pre-rotation key back.
//!
//! Other secrets are created, left unchanged or updated to the seed value.
//!
//! Seeding a list is two passes: [`Seeder::plan`] reads every secret and decides every
//! outcome without writing anything, so a failure it finds (a bad entry, a key secret whose
//! seed value is not a key, access denied) leaves the whole list unseeded; [`Seeder::apply`]
//! then writes step by step.
//!
//! Reading a seed list ([`read_seed_config`], [`seed_entries`]) needs no backend; the
//! [`Seeder`] and its types need the `aws` feature.

use std::path::Path;

#[cfg(feature = "aws")]
use secrecy::ExposeSecret;
use secrecy::SecretString;

#[cfg(feature = "aws")]
use globo_crypto::Key;

use crate::SecretsError;
#[cfg(feature = "aws")]
use crate::fernet_key::{DEFAULT_KEY_SECRET, KEY_SECRET_DESCRIPTION};
#[cfg(feature = "aws")]
use crate::{AwsProvider, SecretValue, VersionSelector, aws::check_aws_name};

/// What [`Seeder::seed`] did.
#[cfg(feature = "aws")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeedOutcome {
    /// The secret did not exist and was created (`CreateSecret`).
    Created,
    /// The secret already held this value; nothing was written.
    Unchanged,
    /// The secret held another value; a new current version was written (`PutSecretValue`).
    Updated,
    /// The secret holds a Fernet key other than the seed value: key rotation manages it, so
    /// nothing was written.
    Kept,
}

#[cfg(feature = "aws")]
impl SeedOutcome {
    /// `created`, `unchanged`, `updated` or `kept`: what the seeding tool prints before the
    /// name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Unchanged => "unchanged",
            Self::Updated => "updated",
            Self::Kept => "kept",
        }
    }
}

/// Seeds secrets through one provider, guarding the secrets that hold a Fernet key (see the
/// [module documentation](self)).
#[cfg(feature = "aws")]
#[derive(Debug, Clone)]
pub struct Seeder<'a> {
    provider: &'a AwsProvider,
    key_secrets: Vec<String>,
}

#[cfg(feature = "aws")]
impl<'a> Seeder<'a> {
    /// A seeder whose key secret is [`DEFAULT_KEY_SECRET`].
    pub fn new(provider: &'a AwsProvider) -> Self {
        Self { provider, key_secrets: vec![DEFAULT_KEY_SECRET.to_owned()] }
    }

    /// Also treats `name` as a key secret (e.g. the configured `GLOBO_FERNET_KEY_SECRET`).
    #[must_use]
    pub fn with_key_secret(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if !self.key_secrets.contains(&name) {
            self.key_secrets.push(name);
        }
        self
    }

    /// Whether `name` is a key secret by name (an existing secret can also be one by its
    /// description).
    pub fn is_key_secret(&self, name: &str) -> bool {
        self.key_secrets.iter().any(|k| k == name)
    }

    /// Checks a whole seed list without contacting AWS: every name is a valid secret name and
    /// every value for a key secret (by name) is a Fernet key. [`Seeder::plan`] does this and
    /// more (it reads every secret); this is the offline part alone.
    pub fn check(&self, entries: &[(String, SecretString)]) -> Result<(), SecretsError> {
        for (name, value) in entries {
            check_aws_name(name)?;
            if self.is_key_secret(name) {
                fernet_key(name, value)?;
            }
        }
        Ok(())
    }

    /// The read-only first pass over a whole seed list: checks every entry, then reads every
    /// secret (`DescribeSecret`, and `GetSecretValue` of its `AWSCURRENT` version) and decides
    /// what [`Seeder::apply`] will do with it. Nothing is written: any failure here (a bad
    /// entry, a key secret whose seed value is not a key, access denied, an unreachable
    /// endpoint) means nothing of the list is seeded.
    pub async fn plan(&self, entries: &[(String, SecretString)]) -> Result<SeedPlan, SecretsError> {
        self.check(entries)?;
        let mut steps: Vec<SeedStep> = Vec::with_capacity(entries.len());
        let mut seen: Vec<String> = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            let step = self.plan_one(name, value).await?;
            // The same secret by name and by ARN: the second write would undo the first.
            let identity = step.arn.clone().unwrap_or_else(|| name.clone());
            if seen.contains(&identity) {
                return Err(SecretsError::SeedSecretTwice { name: name.clone() });
            }
            seen.push(identity);
            steps.push(step);
        }
        Ok(SeedPlan { steps })
    }

    async fn plan_one(&self, name: &str, value: &SecretString) -> Result<SeedStep, SecretsError> {
        let named_key = self.is_key_secret(name);
        if named_key {
            fernet_key(name, value)?;
        }
        let step = |outcome, key_secret, arn| SeedStep {
            name: name.to_owned(),
            value: value.clone(),
            outcome,
            key_secret,
            arn,
        };
        let current = VersionSelector::Current;
        let described = match self.provider.client().describe_secret().secret_id(name).send().await
        {
            Ok(described) => described,
            Err(e) => {
                let error = self.provider.map_error(name, &current, e);
                return if error.is_not_found() {
                    Ok(step(SeedOutcome::Created, named_key, None))
                } else {
                    Err(error)
                };
            }
        };
        // A key secret also by the name or ARN AWS has for it, or by globo's description.
        let key_secret = named_key
            || described.description() == Some(KEY_SECRET_DESCRIPTION)
            || [described.name(), described.arn()]
                .into_iter()
                .flatten()
                .any(|known| self.is_key_secret(known));
        let arn = described.arn().map(str::to_owned);
        let existing = match self.provider.get_version(name, &current).await {
            Ok(existing) => Some(existing),
            // It exists without an AWSCURRENT version (created with no value): write one.
            Err(error) if error.is_not_found() => None,
            Err(error) => return Err(error),
        };
        let outcome = match &existing {
            Some(SecretValue::Text(text)) if text.expose_secret() == value.expose_secret() => {
                SeedOutcome::Unchanged
            }
            // Any secret holding a Fernet key, whatever its name or description, may have
            // files encrypted under it (a key secret made by an older seeder, the AWS CLI or
            // Terraform, then rotated): never write over it.
            Some(SecretValue::Text(text)) if Key::from_secret(text).is_ok() => SeedOutcome::Kept,
            _ => {
                if key_secret {
                    // It holds no key, so nothing can be encrypted under it: a key may be
                    // written (e.g. over the placeholder an older seeder stored), nothing else.
                    fernet_key(name, value)?;
                }
                SeedOutcome::Updated
            }
        };
        Ok(step(outcome, key_secret, arn))
    }

    /// Carries out one step of a [`SeedPlan`]: `CreateSecret` (a key secret gets
    /// [`KEY_SECRET_DESCRIPTION`]), `PutSecretValue`, or nothing. Returns what it did.
    pub async fn apply(&self, step: &SeedStep) -> Result<SeedOutcome, SecretsError> {
        let name = step.name.as_str();
        match step.outcome {
            SeedOutcome::Created => {
                let mut request = self
                    .provider
                    .client()
                    .create_secret()
                    .name(name)
                    .secret_string(step.value.expose_secret());
                if step.key_secret {
                    request = request.description(KEY_SECRET_DESCRIPTION);
                }
                request
                    .send()
                    .await
                    .map_err(|e| self.provider.map_write_error(name, Some(&step.value), e))?;
            }
            SeedOutcome::Updated => {
                self.provider
                    .client()
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(step.value.expose_secret())
                    .send()
                    .await
                    .map_err(|e| self.provider.map_write_error(name, Some(&step.value), e))?;
            }
            SeedOutcome::Unchanged | SeedOutcome::Kept => {}
        }
        Ok(step.outcome)
    }

    /// Makes `name` hold `value` as its `AWSCURRENT` text, writing only when needed and never
    /// over a Fernet key (see the [module documentation](self)): [`Seeder::plan`] and
    /// [`Seeder::apply`] for one entry. Run twice with the same value it returns
    /// [`SeedOutcome::Unchanged`] (the lab's seeder failed instead).
    pub async fn seed(
        &self,
        name: &str,
        value: &SecretString,
    ) -> Result<SeedOutcome, SecretsError> {
        let plan = self.plan(&[(name.to_owned(), value.clone())]).await?;
        let mut outcome = SeedOutcome::Unchanged;
        for step in plan.steps() {
            outcome = self.apply(step).await?;
        }
        Ok(outcome)
    }
}

/// What [`Seeder::plan`] decided for a whole seed list, in list order; nothing is written
/// until each step is given to [`Seeder::apply`].
#[cfg(feature = "aws")]
#[derive(Debug)]
pub struct SeedPlan {
    steps: Vec<SeedStep>,
}

#[cfg(feature = "aws")]
impl SeedPlan {
    /// The steps, in the order of the seed list.
    pub fn steps(&self) -> &[SeedStep] {
        &self.steps
    }

    /// Checks that every key this plan would write into a key secret (creating it, or
    /// replacing the placeholder it holds) decrypts `encrypted`, the configuration file the
    /// seed list was read from: a seed list holding another key than the one the file is
    /// encrypted under would leave the configuration unreadable in prod mode. Reads the file
    /// only; [`SecretsError::SeedKeyMismatch`] names the secret and the file, never the key.
    pub fn check_keys_decrypt(&self, encrypted: &Path) -> Result<(), SecretsError> {
        for step in &self.steps {
            let writes = matches!(step.outcome, SeedOutcome::Created | SeedOutcome::Updated);
            if !(step.key_secret && writes) {
                continue;
            }
            let key = fernet_key(&step.name, &step.value)?;
            if let Err(source) = globo_crypto::decrypt_file_to_memory(&key, encrypted) {
                return Err(SecretsError::SeedKeyMismatch {
                    name: step.name.clone(),
                    file: encrypted.to_path_buf(),
                    source,
                });
            }
        }
        Ok(())
    }
}

/// One entry of a [`SeedPlan`]. `Debug` shows the name and the outcome, never the value.
#[cfg(feature = "aws")]
#[derive(Clone)]
pub struct SeedStep {
    name: String,
    value: SecretString,
    outcome: SeedOutcome,
    key_secret: bool,
    arn: Option<String>,
}

#[cfg(feature = "aws")]
impl SeedStep {
    /// The secret's name (as the seed list gives it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What [`Seeder::apply`] will do.
    pub fn outcome(&self) -> SeedOutcome {
        self.outcome
    }

    /// Whether the secret holds (or will hold) the configuration's Fernet key.
    pub fn is_key_secret(&self) -> bool {
        self.key_secret
    }

    /// The value that will be written (for [`SeedOutcome::Created`] and
    /// [`SeedOutcome::Updated`]).
    pub fn value(&self) -> &SecretString {
        &self.value
    }
}

#[cfg(feature = "aws")]
impl std::fmt::Debug for SeedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedStep")
            .field("name", &self.name)
            .field("outcome", &self.outcome)
            .field("key_secret", &self.key_secret)
            .finish_non_exhaustive()
    }
}

/// `value` as the Fernet key to seed into `name`, or [`SecretsError::SeedNotAKey`].
#[cfg(feature = "aws")]
fn fernet_key(name: &str, value: &SecretString) -> Result<Key, SecretsError> {
    Key::from_secret(value).map_err(|_| SecretsError::SeedNotAKey { name: name.to_owned() })
}

/// [`Seeder::seed`] with a [`Seeder::new`]: [`DEFAULT_KEY_SECRET`] is the key secret.
#[cfg(feature = "aws")]
pub async fn create_or_update(
    provider: &AwsProvider,
    name: &str,
    value: &SecretString,
) -> Result<SeedOutcome, SecretsError> {
    Seeder::new(provider).seed(name, value).await
}

/// The largest configuration file [`read_seed_config`] reads: 1 MiB, like a `.env` file (a few
/// settings and secrets).
pub const MAX_SEED_CONFIG_LEN: u64 = 1024 * 1024;

/// The `seed_secrets` entries of a configuration file (`config.json`), read with globo-fs's one
/// bounded small-file reader ([`globo_fs::read_small`]): at most [`MAX_SEED_CONFIG_LEN`] bytes
/// into a zeroizing buffer, a FIFO with no writer refused instead of waiting forever, a pipe
/// (`--config <(command)`) read to its end. See [`seed_entries`] for the format.
pub fn read_seed_config(path: &Path) -> Result<Vec<(String, SecretString)>, SecretsError> {
    let unreadable = |source| SecretsError::ConfigUnreadable { path: path.to_path_buf(), source };
    match globo_fs::read_small(path, MAX_SEED_CONFIG_LEN) {
        Ok(Some(bytes)) => seed_entries(&bytes),
        Ok(None) => {
            Err(unreadable(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")))
        }
        Err(e) => Err(unreadable(e.into_io_error())),
    }
}

/// The `seed_secrets` object of the lab's configuration JSON, as (name, value) pairs in file
/// order. Every value must be a string; errors name the key, never the value.
pub fn seed_entries(config_json: &[u8]) -> Result<Vec<(String, SecretString)>, SecretsError> {
    let config: serde_json::Value = serde_json::from_slice(config_json).map_err(|e| {
        // serde_json's message can quote input text; keep only the position.
        SecretsError::SeedConfigNotJson { line: e.line(), column: e.column() }
    })?;
    let Some(seeds) = config.get("seed_secrets") else {
        return Err(SecretsError::SeedConfigMissing);
    };
    let Some(seeds) = seeds.as_object() else {
        return Err(SecretsError::SeedConfigNotObject);
    };
    seeds
        .iter()
        .map(|(name, value)| match value.as_str() {
            Some(text) => Ok((name.clone(), SecretString::from(text))),
            None => Err(SecretsError::SeedValueNotString { name: name.clone() }),
        })
        .collect()
}
