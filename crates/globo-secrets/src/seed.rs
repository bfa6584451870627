//! Idempotent seeding of secrets (the `mock-aws-seed` tool's logic), which never replaces a
//! *guarded* secret's value once it holds one.
//!
//! Some secrets must not be overwritten by a seed list once they exist: a secret holding an
//! encryption key is managed by key rotation (files are encrypted under its current version,
//! so writing another key over it would make them unreadable, and a seed list written before a
//! rotation holds the pre-rotation key). This crate knows nothing of keys: the caller describes
//! such secrets with a [`Guard`] (`globo-keys` supplies the one for Fernet keys), and a
//! [`Seeder`] given it treats these *guarded secrets* apart:
//!
//! - which they are: the guard's names ([`Guard::with_name`]), any existing secret whose name
//!   or ARN (as DescribeSecret returns it) is one of those, and any existing secret whose
//!   description the guard recognises ([`Guard::recognising`]);
//! - a seed value for a guarded secret must pass the guard's check
//!   ([`SecretsError::SeedValueRejected`] otherwise);
//! - an absent guarded secret is created (with the guard's description); an existing one that
//!   holds the same value is [`SeedOutcome::Unchanged`].
//! - **any** existing secret whose `AWSCURRENT` value passes the guard's check and differs from
//!   the seed value is [`SeedOutcome::Kept`], whatever its name or description: nothing is
//!   written. A key secret made by the AWS CLI, Terraform or an older seeder and then rotated
//!   would otherwise get its pre-rotation key back.
//!
//! Other secrets are created, left unchanged or updated to the seed value. Every
//! [`Seeder::new`] is given a guard; only the explicitly named [`Seeder::unguarded`] treats
//! every secret so.
//!
//! Seeding a list is two passes: [`Seeder::plan`] reads every secret and decides every
//! outcome without writing anything, so a failure it finds (a bad entry, a guarded secret whose
//! seed value fails the check, access denied) leaves the whole list unseeded; [`Seeder::apply`]
//! then writes step by step.
//!
//! Reading a seed list ([`read_seed_config`], [`seed_entries`]) needs no backend; the
//! [`Seeder`] and its types need the `aws` feature.

use std::path::Path;
use std::sync::Arc;

#[cfg(feature = "aws")]
use secrecy::ExposeSecret;
use secrecy::SecretString;

use crate::SecretsError;
#[cfg(feature = "aws")]
use crate::{AwsProvider, SecretValue, VersionSelector, aws::check_aws_name};

/// Which secrets a [`Seeder`] must never overwrite once they hold a value that passes `check`
/// (see the [module documentation](self)).
///
/// `Debug` shows the names and descriptions, not the check.
#[derive(Clone)]
pub struct Guard {
    names: Vec<String>,
    description: String,
    recognised: Vec<String>,
    expected: String,
    held: String,
    check: Arc<dyn Fn(&SecretString) -> bool + Send + Sync>,
}

impl Guard {
    /// A guard for the values `check` accepts, described as `expected` in errors (e.g. `a
    /// Fernet key (44 characters of URL-safe base64 encoding 32 bytes)`). Guarded secrets the
    /// seeder creates get `description`, by which it recognises them later whatever their name.
    pub fn new(
        description: impl Into<String>,
        expected: impl Into<String>,
        check: impl Fn(&SecretString) -> bool + Send + Sync + 'static,
    ) -> Self {
        let description = description.into();
        Self {
            names: Vec::new(),
            recognised: vec![description.clone()],
            description,
            expected: expected.into(),
            held: "a guarded value".to_owned(),
            check: Arc::new(check),
        }
    }

    /// Also guards the secret `name` (by name or ARN).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if !self.names.contains(&name) {
            self.names.push(name);
        }
        self
    }

    /// What guarded secrets hold, for the seeder's error (e.g. `the configuration's Fernet
    /// key`; default `a guarded value`).
    #[must_use]
    pub fn holding(mut self, held: impl Into<String>) -> Self {
        self.held = held.into();
        self
    }

    /// Also recognises an existing secret whose description is `description` as guarded (e.g.
    /// the text an earlier version gave such secrets).
    #[must_use]
    pub fn recognising(mut self, description: impl Into<String>) -> Self {
        let description = description.into();
        if !self.recognised.contains(&description) {
            self.recognised.push(description);
        }
        self
    }

    /// Whether `name` is guarded by name (an existing secret can also be by its description).
    pub fn guards_name(&self, name: &str) -> bool {
        self.names.iter().any(|k| k == name)
    }

    /// The description given to guarded secrets the seeder creates.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether an existing secret's `description` marks it as guarded.
    pub fn recognises(&self, description: &str) -> bool {
        self.recognised.iter().any(|d| d == description)
    }

    /// Whether `value` passes the guard's check.
    pub fn accepts(&self, value: &SecretString) -> bool {
        (self.check)(value)
    }

    #[cfg(feature = "aws")]
    /// `Ok` if `value` passes the check, else [`SecretsError::SeedValueRejected`] naming
    /// `name` (never the value).
    fn require(&self, name: &str, value: &SecretString) -> Result<(), SecretsError> {
        if self.accepts(value) {
            Ok(())
        } else {
            Err(SecretsError::SeedValueRejected {
                name: name.to_owned(),
                expected: self.expected.clone(),
                held: self.held.clone(),
            })
        }
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("names", &self.names)
            .field("recognised", &self.recognised)
            .field("expected", &self.expected)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "aws")]
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
    /// The secret holds a value its [`Guard`] protects (e.g. a Fernet key), other than the
    /// seed value: something else (key rotation) manages it, so nothing was written.
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

#[cfg(feature = "aws")]
/// Seeds secrets through one provider, never overwriting the secrets its [`Guard`] protects
/// (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct Seeder<'a> {
    provider: &'a AwsProvider,
    guard: Option<Guard>,
}

#[cfg(feature = "aws")]
impl<'a> Seeder<'a> {
    /// A seeder that never overwrites the secrets `guard` protects (see the
    /// [module documentation](self)). The ordinary constructor: a seeder is given its guard
    /// when it is made, so none can be forgotten.
    pub fn new(provider: &'a AwsProvider, guard: Guard) -> Self {
        Self { provider, guard: Some(guard) }
    }

    /// A seeder that protects nothing: every secret is created, left unchanged or
    /// **overwritten** with its seed value, even one holding an encryption key (files
    /// encrypted under that key become unreadable). For secrets known to hold no such value
    /// (test fixtures, plain settings); otherwise use [`Seeder::new`] with a guard.
    pub fn unguarded(provider: &'a AwsProvider) -> Self {
        Self { provider, guard: None }
    }

    /// Whether `name` is guarded by name (an existing secret can also be by its description).
    pub fn is_guarded(&self, name: &str) -> bool {
        self.guard.as_ref().is_some_and(|guard| guard.guards_name(name))
    }

    /// Checks `value` against the guard when `name` is guarded.
    fn require(&self, guarded: bool, name: &str, value: &SecretString) -> Result<(), SecretsError> {
        match &self.guard {
            Some(guard) if guarded => guard.require(name, value),
            _ => Ok(()),
        }
    }

    /// Checks a whole seed list without contacting AWS: every name is a valid secret name and
    /// every value for a guarded secret (by name) passes the guard. [`Seeder::plan`] does this and
    /// more (it reads every secret); this is the offline part alone.
    pub fn check(&self, entries: &[(String, SecretString)]) -> Result<(), SecretsError> {
        for (name, value) in entries {
            check_aws_name(name)?;
            self.require(self.is_guarded(name), name, value)?;
        }
        Ok(())
    }

    /// The read-only first pass over a whole seed list: checks every entry, then reads every
    /// secret (`DescribeSecret`, and `GetSecretValue` of its `AWSCURRENT` version) and decides
    /// what [`Seeder::apply`] will do with it. Nothing is written: any failure here (a bad
    /// entry, a guarded secret whose seed value fails the guard, access denied, an unreachable
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
        let named = self.is_guarded(name);
        self.require(named, name, value)?;
        let step = |outcome, guarded, arn| SeedStep {
            name: name.to_owned(),
            value: value.clone(),
            outcome,
            guarded,
            arn,
        };
        let current = VersionSelector::Current;
        let described = match self.provider.client().describe_secret().secret_id(name).send().await
        {
            Ok(described) => described,
            Err(e) => {
                let error = self.provider.map_error(name, &current, e);
                return if error.is_not_found() {
                    Ok(step(SeedOutcome::Created, named, None))
                } else {
                    Err(error)
                };
            }
        };
        // Guarded also by the name or ARN AWS has for it, or by a description the guard knows.
        let guarded = named
            || described
                .description()
                .is_some_and(|d| self.guard.as_ref().is_some_and(|guard| guard.recognises(d)))
            || [described.name(), described.arn()]
                .into_iter()
                .flatten()
                .any(|known| self.is_guarded(known));
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
            // Any secret holding a guarded value (a Fernet key), whatever its name or
            // description, may have files encrypted under it (a key secret made by an older
            // seeder, the AWS CLI or Terraform, then rotated): never write over it.
            Some(SecretValue::Text(text))
                if self.guard.as_ref().is_some_and(|guard| guard.accepts(text)) =>
            {
                SeedOutcome::Kept
            }
            _ => {
                // It holds no guarded value, so nothing depends on it: a value passing the
                // guard may be written (e.g. over the placeholder an older seeder stored),
                // nothing else.
                self.require(guarded, name, value)?;
                SeedOutcome::Updated
            }
        };
        Ok(step(outcome, guarded, arn))
    }

    /// Carries out one step of a [`SeedPlan`]: `CreateSecret` (a guarded secret gets the
    /// guard's description), `PutSecretValue`, or nothing. Returns what it did.
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
                if let Some(guard) = self.guard.as_ref().filter(|_| step.guarded) {
                    request = request.description(guard.description());
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
    /// over a guarded value (see the [module documentation](self)): [`Seeder::plan`] and
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

#[cfg(feature = "aws")]
/// What [`Seeder::plan`] decided for a whole seed list, in list order; nothing is written
/// until each step is given to [`Seeder::apply`].
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

    /// The steps that write into a guarded secret (creating it, or replacing a value the
    /// guard does not protect, such as a placeholder): where a caller checks, for example,
    /// that a key about to be written decrypts the files it should.
    pub fn guarded_writes(&self) -> impl Iterator<Item = &SeedStep> {
        self.steps.iter().filter(|step| {
            step.guarded && matches!(step.outcome, SeedOutcome::Created | SeedOutcome::Updated)
        })
    }
}

#[cfg(feature = "aws")]
/// One entry of a [`SeedPlan`]. `Debug` shows the name and the outcome, never the value.
#[derive(Clone)]
pub struct SeedStep {
    name: String,
    value: SecretString,
    outcome: SeedOutcome,
    guarded: bool,
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

    /// Whether the secret is guarded (holds, or will hold, e.g. an encryption key).
    pub fn is_guarded(&self) -> bool {
        self.guarded
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
            .field("guarded", &self.guarded)
            .finish_non_exhaustive()
    }
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
/// order. Allocates by input size (the parsed JSON document, then the pairs). Every value must be a string; errors name the key, never the value.
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
