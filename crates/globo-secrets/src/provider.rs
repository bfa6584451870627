//! The provider interface.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::{SecretValue, SecretsError};

/// Where secrets come from: `.env` ([`LocalProvider`](crate::LocalProvider)), AWS Secrets
/// Manager ([`AwsProvider`](crate::AwsProvider)), memory
/// ([`InMemoryProvider`](crate::InMemoryProvider)), or a cache in front of any of them
/// ([`CachingProvider`](crate::CachingProvider)).
///
/// Object safe: services hold an `Arc<dyn SecretsProvider>` and swap the implementation by
/// configuration. Implementors provide [`get_value`](Self::get_value); the text and byte
/// accessors are derived from it.
#[async_trait]
pub trait SecretsProvider: std::fmt::Debug + Send + Sync {
    /// The secret called `name`, text or binary.
    async fn get_value(&self, name: &str) -> Result<SecretValue, SecretsError>;

    /// The text secret called `name` (the lab's `get`). A binary secret is
    /// [`SecretsError::NotText`]: read it with [`get_value`](Self::get_value) or
    /// [`get_bytes`](Self::get_bytes).
    async fn get(&self, name: &str) -> Result<SecretString, SecretsError> {
        match self.get_value(name).await? {
            SecretValue::Text(text) => Ok(text),
            SecretValue::Binary(_) => Err(SecretsError::NotText { name: name.to_owned() }),
        }
    }

    /// The secret called `name` as bytes, whatever its kind (text as UTF-8).
    async fn get_bytes(&self, name: &str) -> Result<SecretSlice<u8>, SecretsError> {
        Ok(match self.get_value(name).await? {
            SecretValue::Text(text) => SecretSlice::from(text.expose_secret().as_bytes().to_vec()),
            SecretValue::Binary(bytes) => bytes,
        })
    }
}
