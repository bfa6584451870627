//! Moving accounts between stores: every record copied as it is (hashes are never recomputed,
//! so no password is needed), idempotent, never overwriting.

use crate::backend::Entry;
use crate::events::Event;
use crate::username::comparison_key;
use crate::{AuthError, UserStore};

/// What [`copy_users`] did, name by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyReport {
    /// Users added to the destination.
    pub created: usize,
    /// Users the destination already held with the same record.
    pub unchanged: usize,
    /// Users (as stored in the source) whose name, or a name with the same
    /// [`comparison_key`](crate::username::comparison_key), the destination holds with
    /// another record: left as they are in the destination, never overwritten.
    pub conflicting: Vec<String>,
    /// Source entries that are not text (only a JSON users file can hold them): not copied.
    pub skipped: Vec<String>,
    /// Source names (as stored) that look like an earlier source name: the same
    /// [`comparison_key`](crate::username::comparison_key) (another Unicode form, width, or
    /// invisible characters; only a lab users file can hold such pairs, see
    /// [`UserStore::ambiguous_names`]). Not copied: a store keeps one name per key, so the
    /// source must keep one of them (delete or rename the others) before they can move.
    pub ambiguous: Vec<String>,
}

/// Copies every user of `from` into `to`, records as they are (hashes, pepper versions and
/// parameters unchanged; a login upgrades them later as usual).
///
/// Reads `from` whole, then in one transaction of `to`, under its writer lock, for each
/// user: the same name with the same record is [`unchanged`](CopyReport::unchanged); a
/// name, or a name with the same comparison key, held with another record is
/// [`conflicting`](CopyReport::conflicting) (the destination's record stays); otherwise it
/// is inserted ([`created`](CopyReport::created)). A source name that looks like an earlier
/// source name (the same comparison key, only in a lab users file) is
/// [`ambiguous`](CopyReport::ambiguous) and not copied. Running it again changes nothing, and a
/// failure writes nothing. Peppered records are copied with their `keyid=`: the
/// destination's services need the same pepper to verify them. Names are not re-prepared:
/// a lab name in another Unicode form is copied as stored. Emits one security event,
/// `sys_users_copied`, with the counts.
///
/// ```
/// use globo_auth::secrecy::SecretString;
/// use globo_auth::{AuthError, Profile, UserStore, copy_users};
///
/// # fn main() -> Result<(), AuthError> {
/// # let dir = tempfile::tempdir().map_err(|e| globo_fs::FsError::new("create", ".", e))?;
/// let from = UserStore::new(dir.path().join("old.json")).with_profile(Profile::TestOnlyInsecure);
/// from.register("alice", &SecretString::from("correct horse battery staple"))?;
/// let to = UserStore::new(dir.path().join("new.json"));
/// assert_eq!(copy_users(&from, &to)?.created, 1);
/// assert_eq!(copy_users(&from, &to)?.unchanged, 1);
/// # Ok(()) }
/// ```
pub fn copy_users(from: &UserStore, to: &UserStore) -> Result<CopyReport, AuthError> {
    copy_users_observed(from, to, |_| {})
}

/// [`copy_users`], calling `written` with the number of users written so far after each
/// one is written, inside the transaction (before it commits): progress for an operator's
/// long copy, and the point where crash-safety tests stop a process mid-transaction.
pub fn copy_users_observed(
    from: &UserStore,
    to: &UserStore,
    mut written: impl FnMut(usize),
) -> Result<CopyReport, AuthError> {
    let users = from.backend().all()?;
    // The comparison keys of the source's earlier text entries.
    let mut keys = std::collections::HashSet::new();
    let mut report = CopyReport::default();
    let mut lock = to.backend().lock()?;
    lock.transaction(&mut |txn| {
        // Fresh for each run of the closure, so a backend that retries counts once.
        report = CopyReport::default();
        keys.clear();
        for (name, entry) in &users {
            let Entry::Text(record) = entry else {
                report.skipped.push(name.clone());
                continue;
            };
            let key = comparison_key(name).into_owned();
            let look_alike = !keys.insert(key.clone());
            match txn.get(name)? {
                Some(Entry::Text(existing)) if existing == *record => report.unchanged += 1,
                Some(_) => report.conflicting.push(name.clone()),
                // Not a conflict with the destination: the source itself holds two names
                // that look the same, and copying again would never resolve it.
                None if look_alike => report.ambiguous.push(name.clone()),
                None if txn.key_taken(&key)? => {
                    report.conflicting.push(name.clone());
                }
                None => {
                    txn.insert(name, record)?;
                    report.created += 1;
                    written(report.created);
                }
            }
        }
        Ok(report.created > 0)
    })?;
    drop(lock);
    Event::UsersCopied {
        from: from.location(),
        to: to.location(),
        created: report.created,
        unchanged: report.unchanged,
        conflicting: report.conflicting.len(),
        skipped: report.skipped.len(),
        ambiguous: report.ambiguous.len(),
    }
    .emit();
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use secrecy::SecretString;

    use super::*;
    use crate::Profile;

    const PASSWORD: &str = "correct horse battery staple";

    fn store(dir: &tempfile::TempDir, name: &str) -> UserStore {
        UserStore::new(dir.path().join(name)).with_profile(Profile::TestOnlyInsecure)
    }

    #[test]
    fn copies_every_record_byte_for_byte_and_a_second_run_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let from = store(&dir, "from.json");
        for name in ["alice", "bob", "carol"] {
            from.register(name, &SecretString::from(PASSWORD)).unwrap();
        }
        let to = store(&dir, "to.json");
        let report = copy_users(&from, &to).unwrap();
        assert_eq!(report, CopyReport { created: 3, ..CopyReport::default() });
        assert_eq!(to.backend().all().unwrap(), from.backend().all().unwrap());
        let written = std::fs::read(to.path()).unwrap();
        assert_eq!(written, std::fs::read(from.path()).unwrap());
        assert!(to.verify("bob", &SecretString::from(PASSWORD)).is_ok());

        let again = copy_users(&from, &to).unwrap();
        assert_eq!(again, CopyReport { unchanged: 3, ..CopyReport::default() });
        assert_eq!(std::fs::read(to.path()).unwrap(), written);
    }

    #[test]
    fn a_conflict_is_reported_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let from = store(&dir, "from.json");
        let to = store(&dir, "to.json");
        for name in ["alice", "bob", "jos\u{e9}"] {
            from.register(name, &SecretString::from(PASSWORD)).unwrap();
        }
        to.register("alice", &SecretString::from("another long passphrase here")).unwrap();
        // The same name in another Unicode form (NFD), as a lab file holds it.
        let nfd_record = phc::hash_password(PASSWORD, Profile::TestOnlyInsecure).unwrap();
        let mut lock = to.backend().lock().unwrap();
        lock.transaction(&mut |txn| txn.insert("jose\u{301}", &nfd_record).map(|()| true)).unwrap();
        drop(lock);
        let before = to.backend().all().unwrap();

        let report = copy_users(&from, &to).unwrap();
        assert_eq!(report.created, 1);
        assert_eq!(report.unchanged, 0);
        assert_eq!(report.conflicting, ["alice", "jos\u{e9}"]);
        let after = to.backend().all().unwrap();
        assert_eq!(&after[..2], &before[..]);
        assert_eq!(after.len(), 3);
        assert!(to.verify("alice", &SecretString::from("another long passphrase here")).is_ok());
        assert!(to.verify("bob", &SecretString::from(PASSWORD)).is_ok());
    }

    /// Issue 14 review: a lab file with `josé` in NFC and in NFD reported the second as
    /// conflicting on every run, with a hint about the destination that could not resolve it.
    #[test]
    fn look_alike_names_of_the_source_are_reported_apart_on_every_run() {
        let dir = tempfile::tempdir().unwrap();
        let from = store(&dir, "from.json");
        let nfc = phc::hash_password(PASSWORD, Profile::TestOnlyInsecure).unwrap();
        let nfd = phc::hash_password("another long passphrase", Profile::TestOnlyInsecure).unwrap();
        let json =
            format!("{{\"jos\u{e9}\": \"{nfc}\", \"bob\": \"{nfc}\", \"jose\u{301}\": \"{nfd}\"}}");
        std::fs::write(from.path(), json).unwrap();
        assert_eq!(from.ambiguous_names().unwrap(), [["jos\u{e9}", "jose\u{301}"]]);
        let to = store(&dir, "to.json");
        let report = copy_users(&from, &to).unwrap();
        let expected = CopyReport {
            created: 2,
            ambiguous: vec!["jose\u{301}".into()],
            ..CopyReport::default()
        };
        assert_eq!(report, expected);
        let again = copy_users(&from, &to).unwrap();
        let expected = CopyReport {
            unchanged: 2,
            ambiguous: vec!["jose\u{301}".into()],
            ..CopyReport::default()
        };
        assert_eq!(again, expected);
        assert_eq!(to.usernames().unwrap(), ["jos\u{e9}", "bob"]);
        // The destination itself holding the pair (a copy between two lab files): unchanged.
        std::fs::copy(from.path(), to.path()).unwrap();
        let same = copy_users(&from, &to).unwrap();
        assert_eq!(same, CopyReport { unchanged: 3, ..CopyReport::default() });
    }

    #[test]
    fn a_non_text_entry_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let from = store(&dir, "from.json");
        let record = phc::hash_password(PASSWORD, Profile::TestOnlyInsecure).unwrap();
        let json = format!("{{\"alice\": \"{record}\", \"broken\": 42}}");
        std::fs::write(from.path(), json).unwrap();
        let to = store(&dir, "to.json");
        let report = copy_users(&from, &to).unwrap();
        assert_eq!(report.created, 1);
        assert_eq!(report.skipped, ["broken"]);
        assert_eq!(to.usernames().unwrap(), ["alice"]);
    }

    #[test]
    fn a_source_that_cannot_be_read_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let from = store(&dir, "from.json");
        std::fs::write(from.path(), "[1, 2]").unwrap();
        let to = store(&dir, "to.json");
        assert!(matches!(copy_users(&from, &to), Err(AuthError::NotAnObject { .. })));
        assert!(!to.path().exists());
    }

    use crate::phc;
}
