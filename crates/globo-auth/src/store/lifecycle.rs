//! An account's life after registration: password change (by the user), password reset and
//! deletion (by an operator). Each is one transaction under the store's writer lock (for the
//! users file, a read-modify-write written atomically, in the lab's format), like `register`.

use secrecy::{ExposeSecret as _, SecretString};

use super::{MAX_LOGIN_USERNAME_BYTES, UserStore};
use crate::backend::Lookup;
use crate::events::{self, Event, Subject};
use crate::{AuthError, phc, throttle};

impl UserStore {
    /// The stored name `username` designates, found as [`verify`](Self::verify) finds a
    /// user: the stored name equal to `username`, else the one stored name with the same
    /// [`comparison_key`](crate::username::comparison_key) (a name over
    /// [`MAX_LOGIN_USERNAME_BYTES`] only by its exact spelling). For an operator's command
    /// that shows whom it will act on before it acts (say, a confirmation, then
    /// [`delete_exact`](Self::delete_exact)).
    ///
    /// Fails with [`AuthError::NoSuchUser`] when no stored name matches, and with
    /// [`AuthError::AmbiguousUser`] when several do and none is exactly `username`.
    ///
    /// **Cost:** reads the users file whole (at most [`MAX_FILE_LEN`](Self::MAX_FILE_LEN)).
    pub fn find(&self, username: &str) -> Result<String, AuthError> {
        if username.len() > MAX_LOGIN_USERNAME_BYTES {
            let exact = self.all_users()?.into_iter().find(|(name, _)| name == username);
            return exact.map(|(name, _)| name).ok_or_else(|| no_such_user(username));
        }
        stored_name(self.login_view(username)?.lookup, username)
    }

    /// Removes `username` from the store and returns the name as it was stored.
    ///
    /// The user is found as by [`find`](Self::find), under the users file's lock; when
    /// there is none ([`AuthError::NoSuchUser`]) or the name is ambiguous
    /// ([`AuthError::AmbiguousUser`]), this is an operator's mistake and the file is not
    /// touched. The other entries keep their order and their bytes. Once the file is written,
    /// the account's throttling record (failures, delay, lock) is cleared, so a user
    /// registered again under the name does not start delayed or locked (a delete that fails
    /// leaves it; if only the clearing fails, the user is deleted and the error says why the
    /// record is left: [`unlock_unknown`](Self::unlock_unknown) clears it). Emits
    /// `user_deleted`.
    ///
    /// **Cost:** waits for the users file's exclusive lock, reads the file whole (at most
    /// [`MAX_FILE_LEN`](Self::MAX_FILE_LEN)) and rewrites it with `fsync`. No Argon2 run.
    pub fn delete(&self, username: &str) -> Result<String, AuthError> {
        let mut stored = String::new();
        self.transaction(&mut |txn| {
            stored = if username.len() > MAX_LOGIN_USERNAME_BYTES {
                match txn.get(username)? {
                    Some(_) => username.to_owned(),
                    None => return Err(no_such_user(username)),
                }
            } else {
                stored_name(txn.lookup(username)?, username)?
            };
            txn.remove(&stored)
        })?;
        Event::UserDeleted { username: &stored, source: "" }.emit();
        // Only once the user is gone: a failed write keeps the lock with the account.
        self.forget_throttling(&stored)?;
        Ok(stored)
    }

    /// Removes the user stored exactly as `stored` (a name [`find`](Self::find) returned,
    /// say, after the operator confirmed it). No other spelling designates anyone here: when
    /// the name is no longer stored (someone deleted or renamed it since), nothing is written
    /// and the call fails with [`AuthError::ConcurrentChange`], even if another stored name
    /// now looks the same. Clears the account's throttling record as [`delete`](Self::delete)
    /// does. Emits `user_deleted`.
    ///
    /// **Cost:** as [`delete`](Self::delete).
    pub fn delete_exact(&self, stored: &str) -> Result<(), AuthError> {
        self.transaction(&mut |txn| {
            if !txn.remove(stored)? {
                return Err(AuthError::ConcurrentChange { username: stored.to_owned() });
            }
            Ok(true)
        })?;
        Event::UserDeleted { username: stored, source: "" }.emit();
        self.forget_throttling(stored)
    }

    /// A user's own password change: `current` must verify for `username` (OWASP ASVS 5.0
    /// V6.2.3) and `new` must pass the new-password policy for that user
    /// ([`check_new_password_for_user`](crate::check_new_password_for_user)). Returns the
    /// name as stored.
    ///
    /// `current` is checked by [`verify_from`](Self::verify_from) with `source`, so it costs,
    /// counts and fails exactly as a login does: an unknown user and a wrong current password
    /// are both [`AuthError::InvalidCredentials`] (a user, not an operator, runs this). The
    /// new hash replaces the record under the users file's lock only if the record is still
    /// the one just verified; if someone changed or removed it meanwhile, nothing is written
    /// and the call fails with [`AuthError::ConcurrentChange`]. Emits
    /// `authn_password_change` on success and `authn_password_change_fail` on any failure
    /// (besides the login events of the verification); when throttling refused the attempt
    /// ([`AuthError::Throttled`], [`AuthError::ThrottleStateFull`]), that event names the
    /// account `account:<label>`, as the refusal's, and the users file is not read.
    ///
    /// **Cost:** a [`verify_from`](Self::verify_from), one more Argon2 run for the new hash
    /// (outside the lock), then the lock, a read and a rewrite of the users file.
    pub fn change_password(
        &self,
        username: &str,
        current: &SecretString,
        new: &SecretString,
        source: Option<&str>,
    ) -> Result<String, AuthError> {
        let source_key = source.unwrap_or("");
        let verified = match self.verify_from(username, current, source) {
            Ok(verified) => verified,
            Err(e) => {
                if events::enabled() {
                    // Never the name as typed when no stored user has it (it may be a
                    // password typed into the name field); a refusal by throttling reads
                    // no users and names the account by its label, as verify_from does.
                    let username = &match e {
                        AuthError::Throttled { .. } | AuthError::ThrottleStateFull { .. } => {
                            self.refused_subject(username)
                        }
                        _ => self.subject_for(username, None),
                    };
                    Event::PasswordChangeFail { username, source: source_key }.emit();
                }
                return Err(e);
            }
        };
        let stored = verified.username();
        let result = self.new_record_for(stored, new).and_then(|hash| {
            self.replace_record(stored, Some(verified.record.expose_secret()), hash)
        });
        match result {
            Ok(()) => {
                Event::PasswordChange { username: stored, source: source_key, by_operator: false }
                    .emit();
                Ok(stored.to_owned())
            }
            Err(e) => {
                let username = &Subject::Stored(stored.to_owned());
                Event::PasswordChangeFail { username, source: source_key }.emit();
                Err(e)
            }
        }
    }

    /// An operator's password reset: `username`'s record gets a hash of `new`, which must
    /// pass the new-password policy for that user; no current password is asked for. Returns
    /// the name as stored.
    ///
    /// The user is found as by [`find`](Self::find); an unknown one is
    /// [`AuthError::NoSuchUser`], an ambiguous name [`AuthError::AmbiguousUser`], and the
    /// file is not touched. Once the new record is written, the account's throttling record
    /// (failures, delay, lock) is cleared, as by [`unlock`](Self::unlock): the operator has
    /// checked the user's identity out of band, and the failures were guesses at the old
    /// password. A reset that fails (the policy, a missing or stale pepper, the write) leaves
    /// the record; if only the clearing fails, the password is reset and the error says why
    /// the lock is left ([`unlock`](Self::unlock) lifts it). Emits `authn_password_change` (with `by_operator`) on success and
    /// `authn_password_change_fail` on any failure (with the name as stored once the user
    /// was found, else by its `unknown:` label, never as typed).
    ///
    /// **Cost:** reads the users file, runs Argon2 once (outside the lock), then waits for the
    /// lock, reads and rewrites the file.
    pub fn reset_password(&self, username: &str, new: &SecretString) -> Result<String, AuthError> {
        let stored = match self.find(username) {
            Ok(stored) => stored,
            Err(e) => {
                if events::enabled() {
                    let username = &self.subject_for(username, None);
                    Event::PasswordChangeFail { username, source: "" }.emit();
                }
                return Err(e);
            }
        };
        let result = self
            .new_record_for(&stored, new)
            .and_then(|hash| self.replace_record(&stored, None, hash));
        match result {
            Ok(()) => {
                Event::PasswordChange { username: &stored, source: "", by_operator: true }.emit();
                // The operator checked the user's identity out of band: the account's
                // failures and lock go with the old password, once the new one is written
                // (a reset that fails leaves the lock).
                self.forget_throttling(&stored)?;
                Ok(stored)
            }
            Err(e) => {
                let username = &Subject::Stored(stored.clone());
                Event::PasswordChangeFail { username, source: "" }.emit();
                Err(e)
            }
        }
    }

    /// Clears the throttling record of the account stored as `stored` (its failures, delay
    /// and lock), as [`unlock`](Self::unlock) does; creates nothing when there is none.
    fn forget_throttling(&self, stored: &str) -> Result<(), AuthError> {
        let material = throttle::account_material(stored);
        self.clear_throttling(Some(&material), None).map(drop)
    }

    /// Under the lock, replaces the record of `stored` (a name as stored) by `hash`: only if
    /// it is still `expected` ([`AuthError::ConcurrentChange`] otherwise), or, with no
    /// `expected`, if the user still exists ([`AuthError::NoSuchUser`] otherwise: a reset
    /// never brings a deleted user back).
    fn replace_record(
        &self,
        stored: &str,
        expected: Option<&str>,
        hash: String,
    ) -> Result<(), AuthError> {
        self.transaction(&mut |txn| {
            self.check_pepper_required(txn, Some(stored))?;
            let entry = txn.get(stored)?;
            match (&entry, expected) {
                (Some(_), None) => {}
                (Some(entry), Some(expected)) if entry.as_text() == Some(expected) => {}
                (_, Some(_)) => {
                    return Err(AuthError::ConcurrentChange { username: stored.to_owned() });
                }
                (None, None) => return Err(no_such_user(stored)),
            }
            txn.replace(stored, &hash)?;
            Ok(true)
        })
    }

    /// The record for a new password of `name` (as stored, or as `register` will store it):
    /// the new-password policy for that user, then a hash of the password's NFKC form with
    /// the store's profile, peppered when the store has a pepper. The one place a record is
    /// made for a new password: register, change and reset all call it.
    pub(super) fn new_record_for(
        &self,
        name: &str,
        new: &SecretString,
    ) -> Result<String, AuthError> {
        #[cfg(test)]
        self.records_made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The policy checks, and the hash is of, the NFKC form it returns.
        let normalized = self.check_new(name, new)?;
        let _run = self.argon2_run(self.profile.params().memory_kib());
        phc::new_record(
            normalized.expose_secret().as_bytes(),
            &self.profile.params(),
            self.peppers.as_ref(),
        )
    }
}

fn no_such_user(username: &str) -> AuthError {
    AuthError::NoSuchUser { username: username.to_owned() }
}

/// The stored name an operator's `username` designates, from its `lookup` (a name over
/// [`MAX_LOGIN_USERNAME_BYTES`] is found only by its exact spelling, by the caller);
/// [`AuthError::NoSuchUser`] when there is none, [`AuthError::AmbiguousUser`] when several
/// match and none exactly.
fn stored_name(lookup: Lookup, username: &str) -> Result<String, AuthError> {
    match lookup {
        Lookup::Found { name, .. } => Ok(name),
        Lookup::Ambiguous(candidates) => {
            Err(AuthError::AmbiguousUser { username: username.to_owned(), candidates })
        }
        Lookup::Missing => Err(no_such_user(username)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Profile;

    /// Review (P4f, point 3): register, change and reset each make their record through
    /// `new_record_for` (policy, NFKC, and the pepper once it lands), exactly once.
    #[test]
    fn every_new_password_goes_through_new_record_for() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            UserStore::new(dir.path().join("users.json")).with_profile(Profile::TestOnlyInsecure);
        let made = || store.records_made.load(std::sync::atomic::Ordering::Relaxed);
        store.register("alice", &SecretString::from("wonderland password one")).unwrap();
        assert_eq!(made(), 1, "register");
        store
            .change_password(
                "alice",
                &SecretString::from("wonderland password one"),
                &SecretString::from("wonderland password two"),
                None,
            )
            .unwrap();
        assert_eq!(made(), 2, "change");
        store.reset_password("alice", &SecretString::from("an operator's new passphrase")).unwrap();
        assert_eq!(made(), 3, "reset");
    }

    /// A password change writes only over the record it verified: a record replaced or
    /// removed by someone else in between is kept as it is, and the change fails.
    #[test]
    fn a_record_changed_since_it_was_verified_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let store = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure);
        store.register("alice", &SecretString::from("wonderland password one")).unwrap();
        let verified =
            store.verify("alice", &SecretString::from("wonderland password one")).unwrap();
        let verified_record = verified.record.expose_secret().to_owned();
        // Someone resets alice's password after our verification.
        store.reset_password("alice", &SecretString::from("an operator's new passphrase")).unwrap();
        let before = std::fs::read(&path).unwrap();
        let hash = phc::hash_password("my own new passphrase", Profile::TestOnlyInsecure).unwrap();
        let result = store.replace_record("alice", Some(&verified_record), hash.clone());
        assert!(
            matches!(&result, Err(AuthError::ConcurrentChange { username }) if username == "alice"),
            "{result:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // Unchanged: replaced.
        let record = || {
            let users = store.backend.all().unwrap();
            users
                .into_iter()
                .find(|(n, _)| n == "alice")
                .and_then(|(_, e)| e.as_text().map(str::to_owned))
        };
        let current = record().unwrap();
        store.replace_record("alice", Some(&current), hash.clone()).unwrap();
        assert_eq!(record().as_deref(), Some(hash.as_str()));
        // Removed meanwhile: the same conflict for a change, NoSuchUser for a reset.
        store.delete("alice").unwrap();
        let before = std::fs::read(&path).unwrap();
        let result = store.replace_record("alice", Some(&hash), hash.clone());
        assert!(matches!(result, Err(AuthError::ConcurrentChange { .. })), "{result:?}");
        let result = store.replace_record("alice", None, hash);
        assert!(matches!(result, Err(AuthError::NoSuchUser { .. })), "{result:?}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
