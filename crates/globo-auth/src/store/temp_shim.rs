//! TEMP shim (issue 14, developer D's branch only; dropped when developer A's store lands):
//! decision 6's `backend()`, `location()`, `sqlite()` and `postgres()` on today's JSON-only
//! `UserStore`, so that `spec.rs` and `copy.rs` compile and their JSON tests run.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::{UserStore, Users};
use crate::AuthError;
use crate::backend::{
    Entry, LockedUsers, LoginView, RecordsUpdate, ThrottleBackend, ThrottleKey, ThrottleRecord,
    UpdateContext, UsersBackend, UsersTxn,
};
use crate::username::comparison_key;

impl UserStore {
    /// The store's users, through the backend interface.
    pub(crate) fn backend(&self) -> Arc<dyn UsersBackend> {
        Arc::new(ShimJson {
            path: self.path.clone(),
            location: self.path.display().to_string(),
            throttle: ShimThrottle,
        })
    }

    /// The store for messages: the users file's path.
    pub fn location(&self) -> &str {
        self.path.to_str().unwrap_or("users file")
    }

    /// The SQLite store (developer B's backend; not in this branch).
    #[cfg(feature = "sqlite")]
    pub fn sqlite(path: impl Into<PathBuf>) -> Result<Self, AuthError> {
        let path: PathBuf = path.into();
        Err(not_here(format!("sqlite://{}", path.display())))
    }

    /// The PostgreSQL store (developer C's backend; not in this branch).
    #[cfg(feature = "postgres")]
    pub fn postgres(config: postgres::Config, location: String) -> Result<Self, AuthError> {
        let _ = config;
        Err(not_here(location))
    }
}

fn not_here(store: String) -> AuthError {
    AuthError::InvalidStoreSpec { store, reason: "TEMP shim: backend not merged yet".to_owned() }
}

#[derive(Debug)]
struct ShimJson {
    path: PathBuf,
    location: String,
    throttle: ShimThrottle,
}

impl ShimJson {
    fn store(&self) -> UserStore {
        UserStore::new(&self.path)
    }
}

fn entry(value: &Value) -> Entry {
    match value {
        Value::String(text) => Entry::Text(text.clone()),
        _ => Entry::NotText,
    }
}

impl UsersBackend for ShimJson {
    fn location(&self) -> &str {
        &self.location
    }

    fn login_view(&self, _username: &str) -> Result<LoginView, AuthError> {
        Err(not_here(self.location.clone()))
    }

    fn all(&self) -> Result<Vec<(String, Entry)>, AuthError> {
        Ok(self.store().read()?.iter().map(|(name, value)| (name.clone(), entry(value))).collect())
    }

    fn lock(&self) -> Result<Box<dyn LockedUsers>, AuthError> {
        let lock = globo_fs::ExclusiveLock::acquire(&self.path)?;
        Ok(Box::new(ShimLocked { _lock: lock, path: self.path.clone() }))
    }

    fn throttle(&self) -> &dyn ThrottleBackend {
        &self.throttle
    }
}

struct ShimLocked {
    _lock: globo_fs::ExclusiveLock,
    path: PathBuf,
}

impl LockedUsers for ShimLocked {
    fn transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn UsersTxn) -> Result<bool, AuthError>,
    ) -> Result<(), AuthError> {
        let store = UserStore::new(&self.path);
        let mut txn = ShimTxn { users: store.read()?, location: self.path.display().to_string() };
        if f(&mut txn)? {
            store.write(&txn.users)?;
        }
        Ok(())
    }
}

struct ShimTxn {
    users: Users,
    location: String,
}

impl UsersTxn for ShimTxn {
    fn lookup(&mut self, _username: &str) -> Result<crate::backend::Lookup, AuthError> {
        Err(not_here(self.location.clone()))
    }

    fn key_taken(&mut self, key: &str) -> Result<bool, AuthError> {
        Ok(self.users.keys().any(|name| comparison_key(name) == key))
    }

    fn get(&mut self, name: &str) -> Result<Option<Entry>, AuthError> {
        Ok(self.users.get(name).map(entry))
    }

    fn insert(&mut self, name: &str, record: &str) -> Result<(), AuthError> {
        if self.users.contains_key(name) {
            return Err(AuthError::UserExists { username: name.to_owned() });
        }
        self.users.insert(name.to_owned(), Value::String(record.to_owned()));
        Ok(())
    }

    fn replace(&mut self, name: &str, record: &str) -> Result<(), AuthError> {
        self.users.insert(name.to_owned(), Value::String(record.to_owned()));
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<bool, AuthError> {
        Ok(self.users.remove(name).is_some())
    }

    fn pepper_versions(&mut self) -> Result<Vec<(String, String)>, AuthError> {
        Err(not_here(self.location.clone()))
    }

    fn all(&mut self) -> Result<Vec<(String, Entry)>, AuthError> {
        Ok(self.users.iter().map(|(name, value)| (name.clone(), entry(value))).collect())
    }
}

#[derive(Debug)]
struct ShimThrottle;

impl ThrottleBackend for ShimThrottle {
    fn location(&self) -> String {
        "TEMP shim".to_owned()
    }

    fn salt(&self, _create: bool) -> Result<Option<Vec<u8>>, AuthError> {
        Err(not_here(self.location()))
    }

    fn update(
        &self,
        _keys: &[ThrottleKey],
        _context: UpdateContext<'_>,
        _f: &mut RecordsUpdate<'_>,
    ) -> Result<(), AuthError> {
        Err(not_here(self.location()))
    }

    fn read(&self, _key: &ThrottleKey) -> Result<Option<ThrottleRecord>, AuthError> {
        Err(not_here(self.location()))
    }
}
