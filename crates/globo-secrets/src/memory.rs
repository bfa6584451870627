//! An in-memory provider for tests and examples.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;

use async_trait::async_trait;

use crate::{SecretValue, SecretsError, SecretsProvider, value::check_name};

/// Secrets held in memory: for your own tests (inject it where production code takes an
/// `Arc<dyn SecretsProvider>`) and for examples. A missing name is [`SecretsError::NotFound`].
#[derive(Default)]
pub struct InMemoryProvider {
    secrets: RwLock<HashMap<String, SecretValue>>,
}

impl InMemoryProvider {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a secret (builder style).
    #[must_use]
    pub fn with(self, name: impl Into<String>, value: impl Into<SecretValue>) -> Self {
        self.insert(name, value);
        self
    }

    /// Adds or replaces a secret.
    pub fn insert(&self, name: impl Into<String>, value: impl Into<SecretValue>) {
        let mut secrets = self.secrets.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        secrets.insert(name.into(), value.into());
    }

    /// Removes a secret; returns whether it was there.
    pub fn remove(&self, name: &str) -> bool {
        let mut secrets = self.secrets.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        secrets.remove(name).is_some()
    }
}

impl fmt::Debug for InMemoryProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secrets = self.secrets.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut names: Vec<&String> = secrets.keys().collect();
        names.sort();
        f.debug_struct("InMemoryProvider").field("names", &names).finish()
    }
}

#[async_trait]
impl SecretsProvider for InMemoryProvider {
    async fn get_value(&self, name: &str) -> Result<SecretValue, SecretsError> {
        check_name(name)?;
        let secrets = self.secrets.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        secrets.get(name).cloned().ok_or_else(|| SecretsError::NotFound {
            operation: crate::Operation::Fetch,
            name: name.to_owned(),
            backend: "the in-memory store",
            detail: String::new(),
        })
    }
}
