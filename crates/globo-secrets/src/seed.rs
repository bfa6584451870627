//! Idempotent seeding of secrets (the `mock-aws-seed` tool's logic).

use secrecy::{ExposeSecret, SecretString};

use crate::{AwsProvider, SecretValue, SecretsError, VersionSelector, aws::check_aws_name};

/// What [`create_or_update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeedOutcome {
    /// The secret did not exist and was created (`CreateSecret`).
    Created,
    /// The secret already held this value; nothing was written.
    Unchanged,
    /// The secret held another value; a new current version was written (`PutSecretValue`).
    Updated,
}

impl SeedOutcome {
    /// `created`, `unchanged` or `updated`: what the seeding tool prints before the name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Unchanged => "unchanged",
            Self::Updated => "updated",
        }
    }
}

/// Makes `name` hold `value` as its `AWSCURRENT` text, writing only when needed. Run twice with
/// the same value it returns [`SeedOutcome::Unchanged`] (the lab's seeder failed instead).
pub async fn create_or_update(
    provider: &AwsProvider,
    name: &str,
    value: &SecretString,
) -> Result<SeedOutcome, SecretsError> {
    check_aws_name(name)?;
    let current = VersionSelector::Current;
    match provider.get_version(name, &current).await {
        Ok(SecretValue::Text(existing)) if existing.expose_secret() == value.expose_secret() => {
            Ok(SeedOutcome::Unchanged)
        }
        Ok(_) => {
            provider
                .client()
                .put_secret_value()
                .secret_id(name)
                .secret_string(value.expose_secret())
                .send()
                .await
                .map_err(|e| provider.map_error(name, &current, e))?;
            Ok(SeedOutcome::Updated)
        }
        Err(error) if error.is_not_found() => {
            provider
                .client()
                .create_secret()
                .name(name)
                .secret_string(value.expose_secret())
                .send()
                .await
                .map_err(|e| provider.map_error(name, &current, e))?;
            Ok(SeedOutcome::Created)
        }
        Err(error) => Err(error),
    }
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
