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
//!   otherwise; check a whole list first with [`Seeder::check`]);
//! - an absent key secret is created (with that description); an existing one that holds the
//!   same key is [`SeedOutcome::Unchanged`].
//! - **any** existing secret whose `AWSCURRENT` value is a Fernet key other than the seed
//!   value is [`SeedOutcome::Kept`], whatever its name or description: nothing is written. A
//!   key secret made by the AWS CLI, Terraform or an older seeder and then rotated would
//!   otherwise get its pre-rotation key back.
//!
//! Other secrets are created, left unchanged or updated to the seed value.

use secrecy::{ExposeSecret, SecretString};

use globo_crypto::Key;

use crate::fernet_key::{DEFAULT_KEY_SECRET, KEY_SECRET_DESCRIPTION};
use crate::{AwsProvider, SecretValue, SecretsError, VersionSelector, aws::check_aws_name};

/// What [`Seeder::seed`] did.
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
#[derive(Debug, Clone)]
pub struct Seeder<'a> {
    provider: &'a AwsProvider,
    key_secrets: Vec<String>,
}

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
    /// every value for a key secret (by name) is a Fernet key. Run it before seeding anything,
    /// so that a bad entry stops the list before any write.
    pub fn check(&self, entries: &[(String, SecretString)]) -> Result<(), SecretsError> {
        for (name, value) in entries {
            check_aws_name(name)?;
            if self.is_key_secret(name) {
                fernet_key(name, value)?;
            }
        }
        Ok(())
    }

    /// Makes `name` hold `value` as its `AWSCURRENT` text, writing only when needed and never
    /// over a Fernet key (see the [module documentation](self)). Run twice with the same value
    /// it returns [`SeedOutcome::Unchanged`] (the lab's seeder failed instead).
    pub async fn seed(
        &self,
        name: &str,
        value: &SecretString,
    ) -> Result<SeedOutcome, SecretsError> {
        check_aws_name(name)?;
        let named_key = self.is_key_secret(name);
        if named_key {
            fernet_key(name, value)?;
        }
        let current = VersionSelector::Current;
        match self.provider.get_version(name, &current).await {
            Ok(SecretValue::Text(existing))
                if existing.expose_secret() == value.expose_secret() =>
            {
                Ok(SeedOutcome::Unchanged)
            }
            Ok(existing) => {
                // Any secret holding a Fernet key, whatever its name or description, may have
                // files encrypted under it (a key secret made by an older seeder, the AWS CLI
                // or Terraform, then rotated): never write over it.
                let holds_key = match &existing {
                    SecretValue::Text(text) => Key::from_secret(text).is_ok(),
                    _ => false,
                };
                if holds_key {
                    return Ok(SeedOutcome::Kept);
                }
                if named_key || self.described_as_key(name).await? {
                    // It holds no key, so nothing can be encrypted under it: a key may be
                    // written (e.g. over the placeholder an older seeder stored), nothing else.
                    fernet_key(name, value)?;
                }
                self.provider
                    .client()
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map_err(|e| self.provider.map_error(name, &current, e))?;
                Ok(SeedOutcome::Updated)
            }
            Err(error) if error.is_not_found() => {
                let mut request = self
                    .provider
                    .client()
                    .create_secret()
                    .name(name)
                    .secret_string(value.expose_secret());
                if named_key {
                    request = request.description(KEY_SECRET_DESCRIPTION);
                }
                request.send().await.map_err(|e| self.provider.map_error(name, &current, e))?;
                Ok(SeedOutcome::Created)
            }
            Err(error) => Err(error),
        }
    }

    /// Whether the existing secret `name` is a key secret: it carries globo's key-secret
    /// description, or the name or ARN DescribeSecret returns for it is a configured key
    /// secret (so a seed entry naming `FERNET_KEY` by ARN is recognised).
    async fn described_as_key(&self, name: &str) -> Result<bool, SecretsError> {
        let described = self
            .provider
            .client()
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| self.provider.map_error(name, &VersionSelector::Current, e))?;
        Ok(described.description() == Some(KEY_SECRET_DESCRIPTION)
            || [described.name(), described.arn()]
                .into_iter()
                .flatten()
                .any(|known| self.is_key_secret(known)))
    }
}

/// `value` as the Fernet key to seed into `name`, or [`SecretsError::SeedNotAKey`].
fn fernet_key(name: &str, value: &SecretString) -> Result<Key, SecretsError> {
    Key::from_secret(value).map_err(|_| SecretsError::SeedNotAKey { name: name.to_owned() })
}

/// [`Seeder::seed`] with a [`Seeder::new`]: [`DEFAULT_KEY_SECRET`] is the key secret.
pub async fn create_or_update(
    provider: &AwsProvider,
    name: &str,
    value: &SecretString,
) -> Result<SeedOutcome, SecretsError> {
    Seeder::new(provider).seed(name, value).await
}

/// The `seed_secrets` object of the lab's configuration JSON, as (name, value) pairs in file
/// order. Every value must be a string; errors name the key, never the value.
pub fn seed_entries(config_json: &[u8]) -> Result<Vec<(String, SecretString)>, SecretsError> {
    let config: serde_json::Value = serde_json::from_slice(config_json).map_err(|e| {
        // serde_json's message can quote input text; keep only the position.
        SecretsError::Config(format!(
            "the configuration is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Some(seeds) = config.get("seed_secrets") else {
        return Err(SecretsError::Config("the configuration has no 'seed_secrets' object".into()));
    };
    let Some(seeds) = seeds.as_object() else {
        return Err(SecretsError::Config("'seed_secrets' must be an object of name: value".into()));
    };
    seeds
        .iter()
        .map(|(name, value)| match value.as_str() {
            Some(text) => Ok((name.clone(), SecretString::from(text))),
            None => Err(SecretsError::Config(format!("seed_secrets.{name} must be a string"))),
        })
        .collect()
}
