//! The JSON store: the lab's users file (`{"<username>": "<PHC string>", ...}`) and the
//! throttling state folder beside it (`<users file>.throttle/`).
//!
//! - [`users`]: the users file, read whole, changed under an exclusive lock on
//!   `<file>.lock` and replaced atomically (mode `0600`), in the lab's format.
//! - [`throttle`]: the state folder, a salt and 256 JSON shards, each with its own lock.

use std::path::{Path, PathBuf};

use super::{LockedUsers, LoginView, ThrottleBackend, UsersBackend};
use crate::AuthError;

pub(crate) mod throttle;
pub(crate) mod users;

pub(crate) use throttle::JsonThrottle;

/// The users file at `path` and its state folder ([`state_path`]).
#[derive(Debug)]
pub(crate) struct JsonBackend {
    path: PathBuf,
    location: String,
    throttle: JsonThrottle,
}

impl JsonBackend {
    pub(crate) fn new(path: PathBuf) -> Self {
        let location = path.display().to_string();
        let throttle = JsonThrottle::new(state_path(&path));
        Self { path, location, throttle }
    }
}

impl UsersBackend for JsonBackend {
    fn location(&self) -> &str {
        &self.location
    }

    fn login_view(&self, username: &str) -> Result<LoginView, AuthError> {
        let users = users::read(&self.path)?;
        // Both paths look for the typical entry and compare every name, so those scans cost
        // the same for a known name and an unknown one.
        let typical = users::typical_entry(&users).map(str::to_owned);
        Ok(LoginView { lookup: users::lookup(&users, username), typical })
    }

    fn all(&self) -> Result<Vec<(String, super::Entry)>, AuthError> {
        Ok(users::entries(&users::read(&self.path)?))
    }

    fn lock(&self) -> Result<Box<dyn LockedUsers>, AuthError> {
        Ok(Box::new(users::Locked::acquire(&self.path)?))
    }

    fn throttle(&self) -> &dyn ThrottleBackend {
        &self.throttle
    }
}

/// The state folder of the users file at `users`: `<users>.throttle` beside it.
pub(crate) fn state_path(users: &Path) -> PathBuf {
    let mut name = users.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".throttle");
    users.with_file_name(name)
}
