//! The JSON store's throttling records: the state folder `<users file>.throttle/` (mode
//! `0700`). It holds a `salt` (created once, never replaced) and up to 256 shard files `00`
//! to `ff`, each a small JSON map with its own lock: a record lives in the shard its
//! [`ThrottleKey::shard`] names. An update locks (in shard order, so processes never
//! deadlock), reads and writes at most two shards, so its cost does not grow with the
//! records kept, and each shard keeps at most [`MAX_SHARD_ENTRIES`] records (see
//! [`MAX_THROTTLE_ENTRIES`]).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::AuthError;
use crate::backend::{
    KeyScope, RecordsUpdate, ThrottleBackend, ThrottleKey, ThrottleRecord as Record, UpdateContext,
};
use crate::throttle::{MAX_THROTTLE_ENTRIES, Standing, ThrottlePolicy, new_salt, parse_salt};

/// The shard files' format version.
const STATE_VERSION: u64 = 1;

/// The number of shard files: a record lives in the shard named by the first byte of its id.
pub(crate) const SHARDS: usize = 256;

/// The most records one shard keeps: [`MAX_THROTTLE_ENTRIES`] spread over the shards.
pub(crate) const MAX_SHARD_ENTRIES: usize = MAX_THROTTLE_ENTRIES / SHARDS;

/// The largest shard file read, in bytes: 390 records take at most about 320 KiB (a source
/// key of 128 bytes, each written as a 6-byte escape).
const MAX_SHARD_LEN: u64 = 1024 * 1024;

/// The salt file's name in the state folder.
const SALT_FILE: &str = "salt";

/// The state folder at a path.
#[derive(Debug)]
pub(crate) struct JsonThrottle {
    folder: PathBuf,
}

impl JsonThrottle {
    pub(crate) fn new(folder: PathBuf) -> Self {
        Self { folder }
    }
}

impl ThrottleBackend for JsonThrottle {
    fn location(&self) -> String {
        self.folder.display().to_string()
    }

    /// The salt, created with the folder (mode `0700`) when `create`. Two processes creating
    /// it at once agree on the one that was published first.
    fn salt(&self, create: bool) -> Result<Option<Vec<u8>>, AuthError> {
        if create { create_folder(&self.folder).map(Some) } else { existing_salt(&self.folder) }
    }

    /// Applies `f` under the locks of the keys' shards. A shard where `f` counted a failure
    /// (a record whose last failure is now) is pruned first ([`Shard::prune`]), and when a
    /// new record finds no room, nothing is written ([`AuthError::ThrottleStateFull`]).
    fn update(
        &self,
        keys: &[ThrottleKey],
        context: UpdateContext<'_>,
        f: &mut RecordsUpdate<'_>,
    ) -> Result<(), AuthError> {
        let Some(first) = keys.first() else { return Ok(()) };
        let path = &self.folder;
        let mut held = Held::acquire(path, first.shard, keys.get(1).map(|k| k.shard))?;
        let before: Vec<Option<Record>> =
            keys.iter().map(|k| held.shard(k.shard).map(k.scope).get(&k.id).copied()).collect();
        let mut records = before.clone();
        if !f(&mut records)? {
            return Ok(());
        }
        // The shards where a failure was counted now (pruned, as an attempt makes room for
        // its records), and those where a record was added (refused when there is no room).
        let (mut counted, mut grew) = (Vec::new(), Vec::new());
        for (key, (record, before)) in keys.iter().zip(records.iter().zip(&before)) {
            if record == before {
                continue;
            }
            let shard = held.shard(key.shard);
            match record {
                Some(record) => {
                    if shard.map(key.scope).insert(key.id.clone(), *record).is_none() {
                        grew.push(key.shard);
                    }
                    if record.last_ms == context.now_ms {
                        counted.push(key.shard);
                    }
                }
                None => {
                    shard.map(key.scope).remove(&key.id);
                }
            }
            shard.changed = true;
        }
        // Room for every record counted, or nothing is written: a delayed or locked account
        // is never evicted to make room (that would lift its delay or lock).
        let id_of = |scope| keys.iter().find(|k| k.scope == scope).map(|k| k.id.as_str());
        let keep = [id_of(KeyScope::Account), id_of(KeyScope::Source)];
        let mut full = None;
        for &shard in &counted {
            if !held.shard(shard).prune(context.policy, context.now_ms, keep)
                && grew.contains(&shard)
            {
                full = Some(shard);
            }
        }
        if let Some(shard) = full {
            return Err(AuthError::ThrottleStateFull { path: shard_path(path, shard) });
        }
        held.write()
    }

    fn read(&self, key: &ThrottleKey) -> Result<Option<Record>, AuthError> {
        let mut shard = read_shard(&self.folder, &shard_path(&self.folder, key.shard))?;
        Ok(shard.map(key.scope).get(&key.id).copied())
    }
}

/// An unusable file of the state folder.
fn unusable(path: &Path, reason: &'static str) -> AuthError {
    AuthError::UnusableThrottleState { path: path.to_owned(), reason, source: None }
}

fn access(folder: &Path) -> impl FnOnce(globo_fs::FsError) -> AuthError + '_ {
    move |source| AuthError::ThrottleStateAccess { path: folder.to_owned(), source }
}

/// The salt at `path` (`None` when there is none).
fn read_salt(folder: &Path, path: &Path) -> Result<Option<Vec<u8>>, AuthError> {
    match globo_fs::read_small_regular(path, 128) {
        Ok(None) => Ok(None),
        Ok(Some((bytes, _))) => {
            let text = std::str::from_utf8(&bytes).ok();
            let salt = text.map(|t| t.strip_suffix('\n').unwrap_or(t)).and_then(parse_salt);
            salt.map(Some).ok_or_else(|| unusable(path, "it is not 32 bytes of hex"))
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            Err(unusable(path, "it is not 32 bytes of hex"))
        }
        Err(e) => Err(access(folder)(e)),
    }
}

/// The state folder at `path`, created (mode `0700`) with its salt if need be; its salt.
/// The salt is created once and never replaced: two processes creating it at once agree on
/// the one that was published first.
fn create_folder(path: &Path) -> Result<Vec<u8>, AuthError> {
    globo_fs::create_private_dir(path).map_err(access(path))?;
    let salt_path = path.join(SALT_FILE);
    if let Some(salt) = read_salt(path, &salt_path)? {
        return Ok(salt);
    }
    let (salt, mut text) = new_salt()?;
    text.push('\n');
    match globo_fs::create_new(&salt_path, text.as_bytes()) {
        Ok(()) => Ok(salt),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_salt(path, &salt_path)?
            .ok_or_else(|| unusable(&salt_path, "it was removed while in use")),
        Err(e) => Err(access(path)(e)),
    }
}

/// The salt of the state folder at `path` as it is, `None` when the folder or its salt does
/// not exist (then no record exists either). Creates nothing.
fn existing_salt(path: &Path) -> Result<Option<Vec<u8>>, AuthError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
    read_salt(path, &path.join(SALT_FILE))
}

/// The shard file `shard` of the state folder `folder`: `00` to `ff`.
pub(crate) fn shard_path(folder: &Path, shard: u8) -> PathBuf {
    folder.join(format!("{shard:02x}"))
}

/// One shard file's records.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    pub(crate) accounts: HashMap<String, Record>,
    pub(crate) sources: HashMap<String, Record>,
    /// Whether this operation changed it (then it is written).
    changed: bool,
}

impl Shard {
    fn map(&mut self, scope: KeyScope) -> &mut HashMap<String, Record> {
        match scope {
            KeyScope::Account => &mut self.accounts,
            KeyScope::Source => &mut self.sources,
        }
    }

    /// Drops the records whose lock or window is over; then, beyond [`MAX_SHARD_ENTRIES`],
    /// evicts open sources (idle longest first), then accounts below their free failures
    /// (fewest failures first, then idle longest), then delayed or locked sources (idle
    /// longest first: lifting a source's delay or lock only frees guesses that each
    /// account's own count still limits). An account that has reached its free failures is
    /// never evicted, open or not: evicting it would reset its count, and a guesser who waits
    /// out each delay would flood the shard to get 99 more guesses. The records of the
    /// attempt being counted (`keep`: its account's and its source's ids) are what room is
    /// made for, never evicted. Returns whether the shard is within its bound.
    pub(crate) fn prune(
        &mut self,
        policy: &ThrottlePolicy,
        now_ms: u64,
        keep: [Option<&str>; 2],
    ) -> bool {
        let (account, source) = (policy.account_rule(), policy.source_rule());
        self.accounts.retain(|_, r| account.standing(*r, now_ms) != Standing::Expired);
        self.sources.retain(|_, r| source.standing(*r, now_ms) != Standing::Expired);
        let total = self.accounts.len() + self.sources.len();
        if total <= MAX_SHARD_ENTRIES {
            return true;
        }
        // (rank, failures, last failure, key): open sources rank 0 and delayed or locked
        // ones 2 (a source's failures do not matter), accounts below their free failures 1.
        let [keep_account, keep_source] = keep;
        let sources =
            self.sources.iter().filter(|(k, _)| keep_source != Some(k.as_str())).map(|(k, r)| {
                let rank = if source.standing(*r, now_ms) == Standing::Open { 0u8 } else { 2 };
                (rank, 0, r.last_ms, k.clone())
            });
        let accounts = self
            .accounts
            .iter()
            .filter(|(k, r)| {
                r.failures < account.free
                    && account.standing(**r, now_ms) == Standing::Open
                    && keep_account != Some(k.as_str())
            })
            .map(|(k, r)| (1u8, r.failures, r.last_ms, k.clone()));
        let mut evictable: Vec<(u8, u32, u64, String)> = sources.chain(accounts).collect();
        evictable.sort_unstable();
        let excess = total - MAX_SHARD_ENTRIES;
        for (rank, _, _, key) in evictable.iter().take(excess) {
            if *rank != 1 {
                self.sources.remove(key);
            } else {
                self.accounts.remove(key);
            }
        }
        evictable.len() >= excess
    }

    pub(crate) fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let (accounts, sources) = (sorted_records(&self.accounts), sorted_records(&self.sources));
        let file = ShardFileOut {
            version: STATE_VERSION,
            accounts: SortedRecords(&accounts),
            sources: SortedRecords(&sources),
        };
        let mut json = serde_json::to_vec(&file)?;
        json.push(b'\n');
        Ok(json)
    }

    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, (&'static str, Option<serde_json::Error>)> {
        let file: ShardFileIn = serde_json::from_slice(bytes)
            .map_err(|e| ("it is not the throttling shard's JSON format", Some(e)))?;
        if file.version != STATE_VERSION {
            return Err(("its version is not 1", None));
        }
        let records = |map: HashMap<String, (u32, u64)>| {
            map.into_iter()
                .map(|(k, (failures, last_ms))| (k, Record { failures, last_ms }))
                .collect()
        };
        Ok(Self {
            accounts: records(file.accounts),
            sources: records(file.sources),
            changed: false,
        })
    }
}

/// A map's records as (key, (failures, last failure)), sorted by key.
fn sorted_records(map: &HashMap<String, Record>) -> Vec<(&str, (u32, u64))> {
    let mut sorted: Vec<(&str, (u32, u64))> =
        map.iter().map(|(k, r)| (k.as_str(), (r.failures, r.last_ms))).collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    sorted
}

/// A shard file as read: every field required, nothing else allowed.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardFileIn {
    version: u64,
    accounts: HashMap<String, (u32, u64)>,
    sources: HashMap<String, (u32, u64)>,
}

/// A shard file as written (records sorted, so equal states are equal files).
#[derive(serde::Serialize)]
struct ShardFileOut<'a> {
    version: u64,
    accounts: SortedRecords<'a>,
    sources: SortedRecords<'a>,
}

/// Records written as a JSON object `{"key": [failures, last_failure_ms], ...}`.
struct SortedRecords<'a>(&'a [(&'a str, (u32, u64))]);

impl serde::Serialize for SortedRecords<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The shard file at `path` (an empty shard when there is none).
pub(crate) fn read_shard(folder: &Path, path: &Path) -> Result<Shard, AuthError> {
    match globo_fs::read_small_regular(path, MAX_SHARD_LEN) {
        Ok(None) => Ok(Shard::default()),
        Ok(Some((bytes, _))) => {
            Shard::parse(&bytes).map_err(|(reason, e)| AuthError::UnusableThrottleState {
                path: path.to_owned(),
                reason,
                source: e.map(|e| Box::new(e) as Box<_>),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            Err(unusable(path, "it is larger than 1 MiB"))
        }
        Err(e) => Err(access(folder)(e)),
    }
}

/// The one or two shards an operation touches, locked and read. The locks are taken in
/// shard order, so two processes needing the same two shards never wait for each other.
struct Held<'a> {
    folder: &'a Path,
    first: (u8, Shard),
    second: Option<(u8, Shard)>,
    _locks: Vec<globo_fs::ExclusiveLock>,
}

impl<'a> Held<'a> {
    fn acquire(folder: &'a Path, a: u8, b: Option<u8>) -> Result<Self, AuthError> {
        let (low, high) = match b {
            Some(b) if b != a => (a.min(b), Some(a.max(b))),
            _ => (a, None),
        };
        let mut locks = Vec::with_capacity(2);
        let mut take = |shard: u8| -> Result<(u8, Shard), AuthError> {
            let path = shard_path(folder, shard);
            locks.push(globo_fs::ExclusiveLock::acquire(&path).map_err(access(folder))?);
            Ok((shard, read_shard(folder, &path)?))
        };
        let first = take(low)?;
        let second = high.map(&mut take).transpose()?;
        Ok(Self { folder, first, second, _locks: locks })
    }

    fn shard(&mut self, shard: u8) -> &mut Shard {
        match &mut self.second {
            Some((n, s)) if *n == shard => s,
            _ => &mut self.first.1,
        }
    }

    /// Writes every shard changed.
    fn write(self) -> Result<(), AuthError> {
        for (n, shard) in std::iter::once(&self.first).chain(self.second.as_ref()) {
            if !shard.changed {
                continue;
            }
            let path = shard_path(self.folder, *n);
            // Serialising strings and numbers cannot fail; report it as a write error if it does.
            let json = shard
                .to_json()
                .map_err(|e| globo_fs::FsError::new("serialise", &path, io::Error::other(e)));
            json.and_then(|json| globo_fs::write_atomic(&path, &json))
                .map_err(access(self.folder))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::throttle::{Ids, ThrottleState, ThrottleStatus};
    use crate::{ThrottlePolicy, throttle};

    fn at(secs: u64) -> u64 {
        secs * 1000
    }

    fn time_of(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// The state folder at `path`, as these tests knew it: its ids.
    struct Folder;

    impl Folder {
        fn existing(path: &Path) -> Result<Option<Ids>, AuthError> {
            Ok(existing_salt(path)?.map(Ids::new))
        }
    }

    fn reserve(
        path: &Path,
        policy: &ThrottlePolicy,
        material: &[u8],
        source: Option<&str>,
        now: SystemTime,
    ) -> Result<throttle::Reservation, AuthError> {
        throttle::reserve(&JsonThrottle::new(path.to_owned()), policy, material, source, now)
    }

    fn status(
        path: &Path,
        policy: &ThrottlePolicy,
        material: &[u8],
        now: SystemTime,
    ) -> Result<ThrottleStatus, AuthError> {
        throttle::status(&JsonThrottle::new(path.to_owned()), policy, material, now)
    }

    /// Review G, point 1: a botnet's few guesses at many unknown names (each account past its
    /// free failures, then idle) no longer fill a shard for good: a day later a new name's
    /// login is accepted, and a lock until unlocked in the same shard is kept. Before, the
    /// new name's attempt failed with `ThrottleStateFull` forever.
    #[test]
    fn idle_accounts_past_their_free_failures_expire_and_make_room() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, shard, mut next) = locked_victim(dir.path());
        let policy = ThrottlePolicy::default().lock_duration(None);
        let victim = Folder::existing(&path).unwrap().unwrap().account(b"k:victim").id;
        let mut filled = read_shard(&path, &shard_path(&path, shard)).unwrap();
        filled.accounts.insert(victim.clone(), Record { failures: 100, last_ms: at(1000) });
        for i in 0..(MAX_SHARD_ENTRIES as u64 - 1) {
            filled
                .accounts
                .insert(format!("guessed{i:03}"), Record { failures: 5, last_ms: at(2000 + i) });
        }
        write_shard(&path, shard, &filled);
        // Within the day the shard is full: failing closed.
        let within = reserve(&path, &policy, &next(), None, time_of(at(80_000)));
        assert!(matches!(within, Err(AuthError::ThrottleStateFull { .. })), "{within:?}");
        let later = time_of(at(2000 + 86_400 + MAX_SHARD_ENTRIES as u64));
        reserve(&path, &policy, &next(), None, later).unwrap();
        let after = read_shard(&path, &shard_path(&path, shard)).unwrap();
        assert_eq!(after.accounts.len(), 2, "{:?}", after.accounts.keys());
        let victim_status = status(&path, &policy, b"k:victim", later).unwrap();
        assert_eq!(victim_status.state, ThrottleState::Locked { until: None });
        assert_eq!(victim_status.failures, 100);
    }

    #[test]
    fn a_shard_round_trips_and_prunes_the_idlest_beyond_its_bound() {
        let mut shard = Shard::default();
        for i in 0..(MAX_SHARD_ENTRIES as u64 + 10) {
            shard.sources.insert(format!("s{i}"), Record { failures: 1, last_ms: at(i) });
        }
        let policy = ThrottlePolicy::default().source_window(Duration::MAX);
        assert!(shard.prune(&policy, at(0), [None, None]));
        assert_eq!(shard.sources.len(), MAX_SHARD_ENTRIES);
        assert!(!shard.sources.contains_key("s9") && shard.sources.contains_key("s10"));
        let parsed = Shard::parse(&shard.to_json().unwrap()).unwrap();
        assert_eq!(parsed.sources, shard.sources);
    }

    /// A state folder (in `dir`) where `victim` is locked until unlocked, with its shard
    /// number, the policy, and a maker of account materials that fall into that shard.
    fn locked_victim(dir: &Path) -> (PathBuf, ThrottlePolicy, u8, impl FnMut() -> Vec<u8>) {
        let path = dir.join("users.json.throttle");
        let policy = ThrottlePolicy::default()
            .free_failures(3)
            .lock_after(3)
            .unwrap()
            .lock_duration(None)
            .source_lock_duration(None);
        for _ in 0..3 {
            reserve(&path, &policy, b"k:victim", None, time_of(at(1000))).unwrap();
        }
        let folder = Folder::existing(&path).unwrap().unwrap();
        let shard = folder.account(b"k:victim").shard;
        let mut i = 0u64;
        let next = move || loop {
            i += 1;
            let material = format!("k:flood{i}").into_bytes();
            if folder.account(&material).shard == shard {
                return material;
            }
        };
        (path, policy, shard, next)
    }

    fn write_shard(path: &Path, shard: u8, records: &Shard) {
        globo_fs::write_atomic(&shard_path(path, shard), &records.to_json().unwrap()).unwrap();
    }

    /// Review P2g, point 2: a flood of new names into a locked account's shard evicts open
    /// records, never the lock. Before, the records idle longest were evicted whatever their
    /// standing, so the victim (its last failure the oldest) was unlocked: its status
    /// became `Open` with 0 failures.
    #[test]
    fn a_locked_account_survives_a_flood_of_new_names_into_its_shard() {
        let dir = tempfile::tempdir().unwrap();
        let (path, policy, shard, mut next) = locked_victim(dir.path());
        let mut filled = read_shard(&path, &shard_path(&path, shard)).unwrap();
        // The shard at its bound with open records idle for less long than the victim.
        for i in 0..(MAX_SHARD_ENTRIES as u64 - 1) {
            filled
                .accounts
                .insert(format!("open{i:03}"), Record { failures: 1, last_ms: at(2000 + i) });
        }
        write_shard(&path, shard, &filled);
        for i in 0..50 {
            let now = time_of(at(5000 + i));
            reserve(&path, &policy, &next(), Some(&format!("10.0.0.{i}")), now).unwrap();
        }
        let victim = status(&path, &policy, b"k:victim", time_of(at(9000))).unwrap();
        assert_eq!(victim.state, ThrottleState::Locked { until: None });
        assert_eq!(victim.failures, 3);
        let after = read_shard(&path, &shard_path(&path, shard)).unwrap();
        assert!(after.accounts.len() + after.sources.len() <= MAX_SHARD_ENTRIES);
        // The open records idle longest made the room.
        assert!(!after.accounts.contains_key("open000") && after.accounts.contains_key("open388"));
    }

    /// Review P2g, point 2: when a shard holds only delayed or locked records, a locked
    /// source is evicted before anything else; with only locked accounts left, the new
    /// record's attempt is refused (failing closed) and nothing is written.
    #[test]
    fn a_shard_of_locked_accounts_refuses_a_new_record_and_keeps_every_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (path, policy, shard, mut next) = locked_victim(dir.path());
        let mut filled = read_shard(&path, &shard_path(&path, shard)).unwrap();
        for i in 0..(MAX_SHARD_ENTRIES as u64 - 2) {
            filled
                .accounts
                .insert(format!("locked{i:03}"), Record { failures: 3, last_ms: at(2000 + i) });
        }
        filled.sources.insert("203.0.113.1".into(), Record { failures: 100, last_ms: at(3000) });
        write_shard(&path, shard, &filled);
        // One more: the locked source makes room.
        reserve(&path, &policy, &next(), None, time_of(at(5000))).unwrap();
        let after = read_shard(&path, &shard_path(&path, shard)).unwrap();
        assert!(after.sources.is_empty() && after.accounts.len() == MAX_SHARD_ENTRIES);
        // The new account locks too; then nothing can make room.
        let newest = after.accounts.iter().find(|(_, r)| r.last_ms == at(5000)).unwrap().0.clone();
        let mut locked = after;
        locked.accounts.insert(newest, Record { failures: 3, last_ms: at(5000) });
        write_shard(&path, shard, &locked);
        let before = std::fs::read(shard_path(&path, shard)).unwrap();
        let error = reserve(&path, &policy, &next(), None, time_of(at(6000))).unwrap_err();
        assert!(
            matches!(&error, AuthError::ThrottleStateFull { path: p } if *p == shard_path(&path, shard)),
            "{error:?}"
        );
        assert_eq!(std::fs::read(shard_path(&path, shard)).unwrap(), before);
        let victim = status(&path, &policy, b"k:victim", time_of(at(9000))).unwrap();
        assert_eq!(victim.state, ThrottleState::Locked { until: None });
    }

    /// Review F, point 2: an account past its free failures whose delay has passed is open,
    /// yet must survive a flood: evicting it would reset its count. Before, open records
    /// were evicted idle longest first whatever their count, so the victim at 99 failures
    /// (its last failure the oldest) was evicted first and came back with 0.
    #[test]
    fn an_open_account_with_many_failures_survives_a_flood_into_its_shard() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, shard, mut next) = locked_victim(dir.path());
        let policy = ThrottlePolicy::default();
        let mut filled = read_shard(&path, &shard_path(&path, shard)).unwrap();
        let victim = Folder::existing(&path).unwrap().unwrap().account(b"k:victim").id;
        // 99 failures, the last long ago: its delay (at most 15 min) is over.
        filled.accounts.insert(victim.clone(), Record { failures: 99, last_ms: at(1000) });
        for i in 0..(MAX_SHARD_ENTRIES as u64 - 1) {
            filled
                .accounts
                .insert(format!("open{i:03}"), Record { failures: 1, last_ms: at(2000 + i) });
        }
        write_shard(&path, shard, &filled);
        let now = 10_000;
        let standing = policy.account_rule().standing(filled.accounts[&victim], at(now));
        assert_eq!(standing, Standing::Open);
        for i in 0..50 {
            reserve(&path, &policy, &next(), None, time_of(at(now + i))).unwrap();
        }
        let after = read_shard(&path, &shard_path(&path, shard)).unwrap();
        assert_eq!(after.accounts.get(&victim).map(|r| r.failures), Some(99));
        assert!(after.accounts.len() + after.sources.len() <= MAX_SHARD_ENTRIES);
    }

    /// Review F, point 2, and review G, point 2: open sources go first (idle longest), then
    /// accounts below their free failures (fewest failures first, then idle longest), then
    /// delayed or locked sources; an account that reached its free failures is never evicted.
    /// Before, every source went first, so the locked `s-old` was evicted before `s-new`.
    #[test]
    fn eviction_takes_sources_then_the_accounts_with_fewest_failures() {
        let policy = ThrottlePolicy::default()
            .source_window(Duration::from_secs(1 << 40))
            .source_lock_duration(None)
            .lock_duration(Some(Duration::from_secs(1 << 40)));
        let now = at(1_000_000);
        let mut shard = Shard::default();
        shard.sources.insert("s-old".into(), Record { failures: 100, last_ms: at(1) });
        shard.sources.insert("s-new".into(), Record { failures: 1, last_ms: at(2) });
        // 21 failures, the last a second ago: delayed for 2 s.
        shard.sources.insert("s-delayed".into(), Record { failures: 21, last_ms: now - 1000 });
        shard.accounts.insert("two".into(), Record { failures: 2, last_ms: at(1) });
        shard.accounts.insert("one-new".into(), Record { failures: 1, last_ms: at(5) });
        shard.accounts.insert("one-old".into(), Record { failures: 1, last_ms: at(4) });
        shard.accounts.insert("five".into(), Record { failures: 5, last_ms: at(0) });
        for i in 0..(MAX_SHARD_ENTRIES - 7) {
            shard.accounts.insert(format!("free{i:03}"), Record { failures: 5, last_ms: at(0) });
        }
        shard.accounts.insert("new".into(), Record { failures: 1, last_ms: now });
        let source_rule = policy.source_rule();
        assert_eq!(
            source_rule.standing(shard.sources["s-delayed"], now),
            Standing::Delayed(now + 1000)
        );
        assert_eq!(source_rule.standing(shard.sources["s-old"], now), Standing::Locked(None));
        let evicted_after = |excess: usize| {
            let mut copy = Shard { accounts: shard.accounts.clone(), ..Shard::default() };
            copy.sources = shard.sources.clone();
            for i in 1..excess {
                copy.accounts.insert(format!("extra{i}"), Record { failures: 6, last_ms: 0 });
            }
            let fits = copy.prune(&policy, now, [Some("new"), None]);
            let named = ["s-old", "s-new", "s-delayed", "one-old", "one-new", "two", "five"];
            let mut gone: Vec<&str> = named
                .into_iter()
                .filter(|k| !copy.accounts.contains_key(*k) && !copy.sources.contains_key(*k))
                .collect();
            gone.sort_unstable();
            (fits, gone)
        };
        assert_eq!(evicted_after(1), (true, vec!["s-new"]));
        assert_eq!(evicted_after(2), (true, vec!["one-old", "s-new"]));
        assert_eq!(evicted_after(3), (true, vec!["one-new", "one-old", "s-new"]));
        assert_eq!(evicted_after(4), (true, vec!["one-new", "one-old", "s-new", "two"]));
        assert_eq!(evicted_after(5), (true, vec!["one-new", "one-old", "s-new", "s-old", "two"]));
        assert_eq!(
            evicted_after(6),
            (true, vec!["one-new", "one-old", "s-delayed", "s-new", "s-old", "two"])
        );
        // Only accounts at their free failures are left: nothing more is evicted.
        assert!(!evicted_after(7).0);
        assert!(!evicted_after(7).1.contains(&"five"));
    }
}
