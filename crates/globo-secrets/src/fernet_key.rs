//! A Fernet key held in AWS Secrets Manager instead of a key file, with crash-safe rotation
//! through staging labels.
//!
//! The secret (`FERNET_KEY` by default) holds the 44-character key as its `SecretString`.
//! Rotation ([`globo_crypto::rotate_with_store`] over a [`SecretsManagerKeyStore`]) maps the
//! steps of the key-file rotation onto Secrets Manager's version stages:
//!
//! 1. `next-key`: the new key is written with `PutSecretValue` as a new version labelled
//!    `AWSPENDING` (`AWSCURRENT` is untouched);
//! 2. `file-<n>`: each file is re-encrypted under it;
//! 3. `installed`: `UpdateSecretVersionStage` moves `AWSCURRENT` to the pending version;
//!    Secrets Manager labels the old version `AWSPREVIOUS` itself (the retired key, still
//!    readable with `--version-stage AWSPREVIOUS`);
//! 4. `done`: the `AWSPENDING` label is removed from the new version.
//!
//! Readers load `AWSCURRENT` and, while it exists, `AWSPENDING` as one keyring, so every file
//! decrypts at every instant; rerunning an interrupted rotation reuses the pending key and
//! completes it. Unlike the key file, Secrets Manager offers no lock: run one rotation of a
//! secret at a time (a second one started meanwhile would move `AWSPENDING`; the promotion
//! step checks that the pending version still holds the key the files were re-encrypted
//! under and stops otherwise).

use std::fmt;
use std::future::Future;
use std::path::PathBuf;

use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use globo_crypto::{CryptoError, Key, KeyStore, StoredKeys};
use secrecy::{ExposeSecret, SecretString};

use crate::aws::check_aws_name;
use crate::{AwsProvider, AwsSettings, Environment, SecretsError, VersionSelector};

/// The secret holding the Fernet key when no other name is configured.
pub const DEFAULT_KEY_SECRET: &str = "FERNET_KEY";
/// The environment variable that names the key's secret (`--key-secret` wins over it).
pub const KEY_SECRET_VAR: &str = "GLOBO_FERNET_KEY_SECRET";
/// The description globo gives a secret that holds a Fernet key (set by
/// [`SecretsManagerKeyStore::create`] and by the seeder when it creates a key secret). The
/// seeder recognises key secrets by it, whatever their name, and never replaces their key.
pub const KEY_SECRET_DESCRIPTION: &str =
    "Fernet key of the globo configuration (rotate with app config rotate-key)";
/// The stage of a staged, not yet current, version.
pub const AWS_PENDING: &str = "AWSPENDING";
/// The stage Secrets Manager gives the version `AWSCURRENT` left.
pub const AWS_PREVIOUS: &str = "AWSPREVIOUS";

/// The Fernet key in a Secrets Manager secret: load it for encryption and decryption, create
/// it once, rotate it with [`globo_crypto::rotate_with_store`].
///
/// `Debug` shows the secret's name and endpoint, never a key.
#[derive(Clone)]
pub struct SecretsManagerKeyStore {
    provider: AwsProvider,
    name: String,
    /// The version this rotation staged (or found staged), named if it loses its label.
    staged_version: Option<String>,
}

/// One version of the key secret.
struct Version {
    id: String,
    key: Key,
}

impl SecretsManagerKeyStore {
    /// The key held in secret `name` (e.g. [`DEFAULT_KEY_SECRET`]), reached through
    /// `provider` (see [`AwsProvider::from_settings`]).
    pub fn new(provider: AwsProvider, name: impl Into<String>) -> Result<Self, SecretsError> {
        let name = name.into();
        check_aws_name(&name)?;
        Ok(Self { provider, name, staged_version: None })
    }

    /// The store production mode uses: secret `name` (`None`: [`DEFAULT_KEY_SECRET`]) through
    /// an [`AwsProvider`] built from [`AwsSettings::resolve`] (the process environment `env`,
    /// with `env_file` filling in AWS settings the process leaves unset).
    pub async fn from_settings(
        name: Option<&str>,
        env_file: &(impl crate::EnvFileSource + ?Sized),
        env: &Environment,
    ) -> Result<Self, SecretsError> {
        let provider = AwsProvider::from_settings(&AwsSettings::resolve(env_file, env)?).await?;
        Self::new(provider, name.unwrap_or(DEFAULT_KEY_SECRET))
    }

    /// The secret's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `secret 'NAME' in AWS Secrets Manager (<endpoint>)`, for messages.
    pub fn describe(&self) -> String {
        format!("secret '{}' in AWS Secrets Manager ({})", self.name, self.provider.endpoint())
    }

    /// Creates the secret holding `key` (`CreateSecret`). Refuses with
    /// [`SecretsError::AlreadyExists`] when the secret exists: replacing a key makes every file
    /// encrypted under it unreadable; rotation is the way to change it.
    pub async fn create(&self, key: &Key) -> Result<(), SecretsError> {
        let written = key.to_base64();
        let result = self
            .provider
            .client()
            .create_secret()
            .name(&self.name)
            .description(KEY_SECRET_DESCRIPTION)
            .secret_string(written.expose_secret())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_exists_exception()) => {
                Err(SecretsError::AlreadyExists { name: self.name.clone() })
            }
            Err(e) => Err(self.provider.map_write_error(&self.name, Some(&written), e)),
        }
    }

    /// The current key and, while a rotation is in progress, the pending one. Use
    /// [`StoredKeys::keyring`] to encrypt and decrypt with them.
    pub async fn load_keys(&self) -> Result<StoredKeys, SecretsError> {
        let current = self.version(VersionSelector::Current).await?;
        let pending = self.pending().await?;
        let keys = StoredKeys::new(current.key);
        Ok(match pending {
            Some(pending) => keys.with_next(pending.key),
            None => keys,
        })
    }

    async fn version(&self, selector: VersionSelector) -> Result<Version, SecretsError> {
        let mut request = self.provider.client().get_secret_value().secret_id(&self.name);
        request = match &selector {
            // Asked by name: moto answers an unlabelled request with the version last written,
            // not the one AWSCURRENT points at after UpdateSecretVersionStage.
            VersionSelector::Current => request.version_stage(crate::AWS_CURRENT),
            VersionSelector::Stage(stage) => request.version_stage(stage),
            VersionSelector::Id(id) => request.version_id(id),
        };
        let output: GetSecretValueOutput =
            request.send().await.map_err(|e| self.provider.map_error(&self.name, &selector, e))?;
        let stage = match &selector {
            VersionSelector::Stage(stage) => stage.clone(),
            VersionSelector::Id(id) => format!("version {id}"),
            VersionSelector::Current => crate::AWS_CURRENT.to_owned(),
        };
        let invalid =
            || SecretsError::NotAFernetKey { name: self.name.clone(), stage: stage.clone() };
        let text = output.secret_string.map(SecretString::from).ok_or_else(invalid)?;
        let key = Key::from_secret(&text).map_err(|_| invalid())?;
        let id = output.version_id.ok_or_else(invalid)?;
        Ok(Version { id, key })
    }

    async fn pending(&self) -> Result<Option<Version>, SecretsError> {
        match self.version(VersionSelector::Stage(AWS_PENDING.into())).await {
            Ok(version) => Ok(Some(version)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn wrap(&self, operation: &'static str) -> impl Fn(SecretsError) -> CryptoError + '_ {
        move |source| CryptoError::KeyStore {
            store: self.describe(),
            operation,
            source: Box::new(source),
        }
    }

    /// Gives the secret [`KEY_SECRET_DESCRIPTION`] (`UpdateSecret` with only a description
    /// writes no version), so the seeder recognises it as a key secret whatever its name, even
    /// if it was created by other means. An identity not allowed `UpdateSecret` rotates
    /// anyway: the seeder also keeps any secret that holds a Fernet key.
    async fn mark_as_key_secret(&self) -> Result<(), SecretsError> {
        let result = self
            .provider
            .client()
            .update_secret()
            .secret_id(&self.name)
            .description(KEY_SECRET_DESCRIPTION)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match self.provider.map_write_error(&self.name, None, e) {
                SecretsError::AccessDenied { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn stage_now(&mut self, next: &Key) -> Result<(), SecretsError> {
        self.mark_as_key_secret().await?;
        let written = next.to_base64();
        let output = self
            .provider
            .client()
            .put_secret_value()
            .secret_id(&self.name)
            .secret_string(written.expose_secret())
            .version_stages(AWS_PENDING)
            .send()
            .await
            .map_err(|e| self.provider.map_write_error(&self.name, Some(&written), e))?;
        self.staged_version = output.version_id;
        Ok(())
    }

    /// The pending version, which must hold `expected` (the key the files were re-encrypted
    /// under): anything else means another rotation interfered.
    async fn pending_holding(&self, expected: &Key) -> Result<Version, SecretsError> {
        match self.pending().await? {
            Some(pending) if pending.key.same_as(expected) => Ok(pending),
            _ => Err(SecretsError::PendingVersionMoved {
                name: self.name.clone(),
                staged_version: self.staged_version.clone(),
            }),
        }
    }

    async fn promote_now(&self, next: &Key) -> Result<(), SecretsError> {
        let pending = self.pending_holding(next).await?;
        self.mark_as_key_secret().await?;
        let current = self.version(VersionSelector::Current).await?;
        self.provider
            .client()
            .update_secret_version_stage()
            .secret_id(&self.name)
            .version_stage(crate::AWS_CURRENT)
            .move_to_version_id(&pending.id)
            .remove_from_version_id(&current.id)
            .send()
            .await
            .map_err(|e| self.provider.map_write_error(&self.name, None, e))?;
        Ok(())
    }

    async fn finish_now(&self) -> Result<(), SecretsError> {
        let Some(pending) = self.pending().await? else { return Ok(()) };
        self.provider
            .client()
            .update_secret_version_stage()
            .secret_id(&self.name)
            .version_stage(AWS_PENDING)
            .remove_from_version_id(&pending.id)
            .send()
            .await
            .map_err(|e| self.provider.map_write_error(&self.name, None, e))?;
        Ok(())
    }
}

impl fmt::Debug for SecretsManagerKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManagerKeyStore")
            .field("name", &self.name)
            .field("endpoint", &self.provider.endpoint())
            .finish_non_exhaustive()
    }
}

impl KeyStore for SecretsManagerKeyStore {
    async fn load(&mut self) -> Result<StoredKeys, CryptoError> {
        let keys = self.load_keys().await.map_err(self.wrap("loading the keys"))?;
        if keys.rotation_in_progress() {
            let pending = self.pending().await.map_err(self.wrap("loading the keys"))?;
            self.staged_version = pending.map(|p| p.id);
        }
        Ok(keys)
    }

    fn stage(&mut self, next: &Key) -> impl Future<Output = Result<(), CryptoError>> + Send {
        let next = next.clone();
        async move {
            self.stage_now(&next).await.map_err(self.wrap("staging the new key as AWSPENDING"))
        }
    }

    fn retire(
        &mut self,
        _current: &Key,
    ) -> impl Future<Output = Result<Option<PathBuf>, CryptoError>> + Send {
        // Promotion keeps the old version as AWSPREVIOUS; there is no file to write.
        std::future::ready(Ok(None))
    }

    fn promote(&mut self, next: &Key) -> impl Future<Output = Result<(), CryptoError>> + Send {
        let next = next.clone();
        async move {
            self.promote_now(&next).await.map_err(self.wrap("promoting the new key to AWSCURRENT"))
        }
    }

    async fn finish(&mut self) -> Result<(), CryptoError> {
        self.finish_now().await.map_err(self.wrap("removing the AWSPENDING label"))
    }
}
