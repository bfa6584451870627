//! The users file: `{"<username>": "<PHC string>", ...}`, read and written safely.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::backend::{Entry, LockedUsers, Lookup, UsersTxn, shape_key};
use crate::username::comparison_key;
use crate::{AuthError, UserStore, phc};

/// The users file's contents, in file order.
pub(crate) type Users = Map<String, Value>;

/// Reads the users file at `path`; a missing file is an empty one.
pub(crate) fn read(path: &Path) -> Result<Users, AuthError> {
    // Only a regular file is a users file: a FIFO would block a plain open forever and a
    // device (a link to /dev/zero) never ends. The type is checked on the file opened,
    // without blocking, so nothing swapped in after a check is read; the read is bounded.
    let bytes = match globo_fs::read_small_regular(path, UserStore::MAX_FILE_LEN) {
        Ok(Some((bytes, _))) => bytes,
        Ok(None) => return Ok(Users::new()),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(AuthError::UsersFileTooLarge {
                path: path.to_owned(),
                max: UserStore::MAX_FILE_LEN,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| AuthError::CorruptUsersFile { path: path.to_owned(), source: Box::new(e) })?;
    match value {
        Value::Object(users) => Ok(users),
        _ => Err(AuthError::NotAnObject { path: path.to_owned() }),
    }
}

/// Replaces the users file at `path` by `users`, atomically, in the lab's format.
fn write(path: &Path, users: &Users) -> Result<(), AuthError> {
    // Serialising a map of strings and JSON values cannot fail; report it as a write error.
    let mut json = serde_json::to_vec_pretty(users)
        .map_err(|e| globo_fs::FsError::new("serialise", path, io::Error::other(e)))?;
    json.push(b'\n');
    globo_fs::write_atomic(path, &json)?;
    Ok(())
}

fn entry_of(value: &Value) -> Entry {
    match value {
        Value::String(text) => Entry::Text(text.clone()),
        _ => Entry::NotText,
    }
}

/// Every user and entry, in file order.
pub(crate) fn entries(users: &Users) -> Vec<(String, Entry)> {
    users.iter().map(|(name, value)| (name.clone(), entry_of(value))).collect()
}

/// What `username` designates among the stored names (see [`Lookup`]). Every stored name is
/// compared, whether or not one matches exactly.
pub(crate) fn lookup(users: &Users, username: &str) -> Lookup {
    let key = comparison_key(username);
    let mut exact = None;
    let mut alike = Vec::new();
    for (stored, entry) in users {
        if stored == username {
            exact = Some((stored, entry));
        }
        if comparison_key(stored) == key {
            alike.push((stored, entry));
        }
    }
    match (exact, alike.as_slice()) {
        (Some((name, entry)), _) | (None, &[(name, entry)]) => {
            Lookup::Found { name: name.clone(), entry: entry_of(entry), shared: alike.len() > 1 }
        }
        (None, []) => Lookup::Missing,
        (None, many) => Lookup::Ambiguous(many.len()),
    }
}

/// The first entry whose shape (see [`shape_key`]) is the most common in the file.
pub(crate) fn typical_entry(users: &Users) -> Option<&str> {
    let mut counts: HashMap<String, (usize, Reverse<usize>, &str)> = HashMap::new();
    for (index, hash) in users.values().filter_map(Value::as_str).enumerate() {
        counts.entry(shape_key(hash)).or_insert((0, Reverse(index), hash)).0 += 1;
    }
    counts.into_values().max().map(|(_, _, hash)| hash)
}

/// The users file's exclusive lock (on `<file>.lock`), held until dropped.
pub(crate) struct Locked {
    path: PathBuf,
    _lock: globo_fs::ExclusiveLock,
}

impl Locked {
    pub(crate) fn acquire(path: &Path) -> Result<Self, AuthError> {
        let lock = globo_fs::ExclusiveLock::acquire(path)?;
        Ok(Self { path: path.to_owned(), _lock: lock })
    }
}

impl LockedUsers for Locked {
    /// Reads the file, runs `f` on it, and when `f` returns `Ok(true)` replaces the file
    /// with what it left (one atomic write).
    fn transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn UsersTxn) -> Result<bool, AuthError>,
    ) -> Result<(), AuthError> {
        let mut txn = Txn { users: read(&self.path)? };
        if f(&mut txn)? {
            write(&self.path, &txn.users)?;
        }
        Ok(())
    }
}

/// A transaction on the file read under the lock.
struct Txn {
    users: Users,
}

impl UsersTxn for Txn {
    fn lookup(&mut self, username: &str) -> Result<Lookup, AuthError> {
        Ok(lookup(&self.users, username))
    }

    fn key_taken(&mut self, key: &str) -> Result<bool, AuthError> {
        Ok(self.users.keys().any(|stored| comparison_key(stored) == key))
    }

    fn get(&mut self, name: &str) -> Result<Option<Entry>, AuthError> {
        Ok(self.users.get(name).map(entry_of))
    }

    fn insert(&mut self, name: &str, record: &str) -> Result<(), AuthError> {
        if self.users.contains_key(name) {
            return Err(AuthError::UserExists { username: name.to_owned() });
        }
        self.users.insert(name.to_owned(), Value::String(record.to_owned()));
        Ok(())
    }

    fn replace(&mut self, name: &str, record: &str) -> Result<(), AuthError> {
        match self.users.get_mut(name) {
            Some(entry) => {
                *entry = Value::String(record.to_owned());
                Ok(())
            }
            None => Err(AuthError::NoSuchUser { username: name.to_owned() }),
        }
    }

    fn remove(&mut self, name: &str) -> Result<bool, AuthError> {
        // The other entries keep their order.
        Ok(self.users.shift_remove(name).is_some())
    }

    fn pepper_versions(&mut self) -> Result<Vec<(String, String)>, AuthError> {
        Ok(self
            .users
            .iter()
            .filter_map(|(name, entry)| {
                Some((name.clone(), phc::keyid_of(entry.as_str()?)?.to_owned()))
            })
            .collect())
    }

    fn all(&mut self) -> Result<Vec<(String, Entry)>, AuthError> {
        Ok(entries(&self.users))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn typical_entry_prefers_the_most_common_shape_then_the_first() {
        let users: Users = serde_json::from_str(
            r#"{"a": "$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAA",
                "b": "$argon2id$v=19$m=16,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$BBBB",
                "c": "$argon2id$v=19$m=16,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$CCCC"}"#,
        )
        .unwrap();
        assert!(typical_entry(&users).unwrap().ends_with("BBBB"));
        assert_eq!(typical_entry(&Users::new()), None);
    }
}
