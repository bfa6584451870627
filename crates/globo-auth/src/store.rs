//! The users file: `{"<username>": "<PHC string>", ...}`, read and written safely.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value};

use crate::phc::{self, ParsedHash};
use crate::policy::{self, MAX_PASSWORD_CHARS};
use crate::{AuthError, Limits, Profile};

type Users = Map<String, Value>;

/// A password store over one users file (the lab's `users.json`).
///
/// `register` and the rehash on login are read-modify-write cycles under a
/// [`globo_fs::ExclusiveLock`] and write with [`globo_fs::write_atomic`], so concurrent
/// processes never lose a user and a crash never leaves a truncated file. A missing file means
/// no users; a corrupt one is reported and never overwritten.
#[derive(Debug)]
pub struct UserStore {
    path: PathBuf,
    profile: Profile,
    limits: Limits,
    dummy: OnceLock<String>,
}

/// A successful verification.
#[derive(Debug)]
pub struct Verified {
    rehashed: bool,
    rehash_error: Option<AuthError>,
}

impl Verified {
    /// Whether the stored hash was obsolete and has been replaced by one made with the store's
    /// profile.
    pub fn rehashed(&self) -> bool {
        self.rehashed
    }

    /// Why an obsolete hash could not be replaced (the login itself still succeeded).
    pub fn rehash_error(&self) -> Option<&AuthError> {
        self.rehash_error.as_ref()
    }
}

impl UserStore {
    /// A store over `path`, hashing with [`Profile::default`] within [`Limits::DEFAULT`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            profile: Profile::default(),
            limits: Limits::DEFAULT,
            dummy: OnceLock::new(),
        }
    }

    /// Uses `profile` for new hashes and as the policy that older hashes are upgraded to.
    #[must_use]
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self.dummy = OnceLock::new();
        self
    }

    /// Uses `limits` to bound the work a stored hash may demand.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The users file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The profile new hashes are made with.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The registered usernames, in file order.
    pub fn usernames(&self) -> Result<Vec<String>, AuthError> {
        Ok(self.read()?.keys().cloned().collect())
    }

    /// Adds `username` with a hash of `password`.
    ///
    /// Fails with [`AuthError::UserExists`] if the name is taken, and with a policy error if
    /// the username or password is not acceptable ([`check_username`](crate::check_username),
    /// [`check_new_password`](crate::check_new_password)).
    pub fn register(&self, username: &str, password: &SecretString) -> Result<(), AuthError> {
        policy::check_username(username)?;
        policy::check_new_password(password)?;
        // Cheap early answer for a taken name; the check that counts is under the lock.
        if self.read()?.contains_key(username) {
            return Err(AuthError::UserExists { username: username.to_owned() });
        }
        // Hash outside the lock: it is the slow part and needs no shared state.
        let hash = phc::hash_password(password.expose_secret(), self.profile)?;
        let _lock = globo_fs::ExclusiveLock::acquire(&self.path)?;
        let mut users = self.read()?;
        if users.contains_key(username) {
            return Err(AuthError::UserExists { username: username.to_owned() });
        }
        users.insert(username.to_owned(), Value::String(hash));
        self.write(&users)
    }

    /// Checks `password` for `username`.
    ///
    /// An unknown user costs the same as a known one: the password is checked against a dummy
    /// hash with the store's current parameters, made once per store without running Argon2.
    /// Both cases fail with [`AuthError::InvalidCredentials`]. When the password matches and
    /// the stored hash is obsolete ([`is_hash_obsolete`](crate::is_hash_obsolete)), it is
    /// replaced, under the lock and only if the entry has not changed meanwhile.
    ///
    /// A user whose entry is not a usable hash gets [`AuthError::BadEntry`], naming the user:
    /// that is an operational problem for the administrator, not a login failure.
    pub fn verify(&self, username: &str, password: &SecretString) -> Result<Verified, AuthError> {
        let secret = password.expose_secret();
        if secret.chars().count() > MAX_PASSWORD_CHARS {
            return Err(AuthError::PasswordTooLong { max: MAX_PASSWORD_CHARS });
        }
        let users = self.read()?;
        let Some(entry) = users.get(username) else {
            let dummy = self.dummy_hash()?;
            let parsed = ParsedHash::parse(dummy, &self.limits)?;
            let _ = parsed.matches(secret.as_bytes())?;
            return Err(AuthError::InvalidCredentials);
        };
        let stored = entry.as_str().ok_or_else(|| {
            self.bad_entry(
                username,
                AuthError::MalformedHash { reason: "the value is not a string" },
            )
        })?;
        let parsed =
            ParsedHash::parse(stored, &self.limits).map_err(|e| self.bad_entry(username, e))?;
        if !parsed.matches(secret.as_bytes())? {
            return Err(AuthError::InvalidCredentials);
        }
        if !parsed.is_obsolete(&self.profile.params()) {
            return Ok(Verified { rehashed: false, rehash_error: None });
        }
        Ok(match self.rehash(username, stored, password) {
            Ok(rehashed) => Verified { rehashed, rehash_error: None },
            Err(e) => Verified { rehashed: false, rehash_error: Some(e) },
        })
    }

    /// Replaces `old` by a fresh hash if the entry still holds `old`; returns whether it did.
    fn rehash(
        &self,
        username: &str,
        old: &str,
        password: &SecretString,
    ) -> Result<bool, AuthError> {
        let hash = phc::hash_password(password.expose_secret(), self.profile)?;
        let _lock = globo_fs::ExclusiveLock::acquire(&self.path)?;
        let mut users = self.read()?;
        match users.get_mut(username) {
            Some(entry) if entry.as_str() == Some(old) => *entry = Value::String(hash),
            // Changed or removed by someone else since we read it: theirs wins.
            _ => return Ok(false),
        }
        self.write(&users)?;
        Ok(true)
    }

    fn dummy_hash(&self) -> Result<&str, AuthError> {
        if let Some(dummy) = self.dummy.get() {
            return Ok(dummy);
        }
        let made = phc::dummy_hash(&self.profile.params())?;
        Ok(self.dummy.get_or_init(|| made))
    }

    fn bad_entry(&self, username: &str, source: AuthError) -> AuthError {
        AuthError::BadEntry {
            path: self.path.clone(),
            username: username.to_owned(),
            source: Box::new(source),
        }
    }

    /// Reads the users file; a missing file is an empty one.
    fn read(&self) -> Result<Users, AuthError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Users::new()),
            Err(e) => return Err(globo_fs::FsError::new("read", &self.path, e).into()),
        };
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            AuthError::CorruptUsersFile { path: self.path.clone(), source: Box::new(e) }
        })?;
        match value {
            Value::Object(users) => Ok(users),
            _ => Err(AuthError::NotAnObject { path: self.path.clone() }),
        }
    }

    fn write(&self, users: &Users) -> Result<(), AuthError> {
        // Serialising a map of strings and JSON values cannot fail; report it as a write error.
        let mut json = serde_json::to_vec_pretty(users)
            .map_err(|e| globo_fs::FsError::new("serialise", &self.path, io::Error::other(e)))?;
        json.push(b'\n');
        globo_fs::write_atomic(&self.path, &json)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rehash_keeps_an_entry_that_changed_since_it_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
        let password = SecretString::from("alice's password");
        store.register("alice", &password).unwrap();
        let before = std::fs::read(&path).unwrap();
        // Another process replaced the hash after we verified the one we read.
        let stale = phc::hash_password("alice's password", Profile::TestOnlyInsecure).unwrap();
        assert!(!store.rehash("alice", &stale, &password).unwrap());
        assert!(!store.rehash("bob", &stale, &password).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // With the entry unchanged, it is replaced.
        let current = store.read().unwrap()["alice"].as_str().unwrap().to_owned();
        assert!(store.rehash("alice", &current, &password).unwrap());
        assert_ne!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn the_dummy_hash_is_made_once_with_the_current_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            UserStore::new(dir.path().join("users.json")).with_profile(Profile::OwaspMinimum);
        assert!(store.dummy.get().is_none());
        let password = SecretString::from("any password");
        assert!(matches!(store.verify("nobody", &password), Err(AuthError::InvalidCredentials)));
        let first = store.dummy.get().unwrap().clone();
        assert!(first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{first}");
        assert!(
            !ParsedHash::parse(&first, &Limits::DEFAULT)
                .unwrap()
                .is_obsolete(&store.profile.params())
        );
        assert!(matches!(store.verify("nobody", &password), Err(AuthError::InvalidCredentials)));
        assert_eq!(store.dummy.get().unwrap(), &first);
        // A new profile gets a new dummy with its own parameters.
        let store = store.with_profile(Profile::TestOnlyInsecure);
        assert!(store.dummy.get().is_none());
    }
}
