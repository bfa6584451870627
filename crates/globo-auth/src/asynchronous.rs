//! The store from async code (feature `tokio`): every call on tokio's blocking pool, with at
//! most a memory budget's worth of Argon2 runs at once.
//!
//! [`UserStore`]'s methods block their thread for an Argon2 run (64 MiB and 80 to 115 ms
//! with the default profile, in release) and the store's I/O. Called inside an async task
//! they stall every other task of that runtime worker: with 4 logins on a 2-worker runtime a
//! health check waited 0.8 to 1.9 s (issue 14, measured; see docs/benchmarks.md). An
//! [`AsyncUserStore`] runs each call with [`tokio::task::spawn_blocking`], after taking
//! permits of a semaphore sized by a memory budget, so the runtime's workers stay free and
//! no burst of requests allocates more than the budget for Argon2.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::store::MemoryGate;
use crate::{AuthError, StoreSpec, ThrottleStatus, UserStore, Verified};

/// One permit of the budget: a mebibyte.
const MIB: u64 = 1024 * 1024;

/// The default budget: four hashes of the default profile (64 MiB each).
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 * MIB;

/// A [`UserStore`] for async code: the same methods, `async`, each run on tokio's blocking
/// pool ([`tokio::task::spawn_blocking`]) once the call's share of a memory budget is free.
///
/// A call takes as many permits as the store's [`Profile`](crate::Profile) costs in MiB (its
/// `m`, rounded up, at least 1, at most the budget) for as long as it runs, so at most
/// budget / `m` Argon2 runs happen at once however many requests arrive; the others wait
/// without holding a thread. A run that costs more than the call's share (a stored hash's
/// `m` above the profile's, up to [`Limits`](crate::Limits); a rehash keeping it; the dummy
/// hash shaped like such records) gives the share back, then waits, on its blocking thread,
/// for its own cost (at most the budget), and frees it after the run: the budget holds
/// whatever the stored hashes cost, and a call never waits for the budget while holding
/// part of it. A hashing call (register, verify, a password change or reset) keeps its share
/// through its database work too, a wait for the writer lock included; the calls that run no
/// Argon2 (`delete`, `find`, `usernames`, `unlock`, `throttle_status`) take none, so they
/// never wait behind hashing calls. The default budget, [`DEFAULT_MEMORY_BUDGET`] (256 MiB), lets
/// four default hashes (64 MiB each) run at once; set it with
/// [`with_memory_budget`](Self::with_memory_budget). Clones share the store and the budget.
///
/// A caller that drops a call's future while it waits for the budget takes nothing; once the
/// call runs, it finishes on the blocking pool (its result is dropped) and then frees its
/// share. A call whose blocking task panics or is cancelled (the runtime shutting down)
/// fails with [`AuthError::BlockingTask`]. The futures must run inside a tokio runtime
/// (either flavour); elsewhere they fail with that error too.
///
/// ```
/// use globo_auth::secrecy::SecretString;
/// use globo_auth::{AsyncUserStore, AuthError, Profile, UserStore};
///
/// # fn main() -> Result<(), AuthError> {
/// # let dir = tempfile::tempdir().map_err(|e| globo_fs::FsError::new("create", ".", e))?;
/// # let path = dir.path().join("users.json");
/// # let runtime = tokio::runtime::Builder::new_current_thread().build()
/// #     .map_err(|e| globo_fs::FsError::new("runtime", ".", e))?;
/// # runtime.block_on(async {
/// let store = AsyncUserStore::new(UserStore::new(&path).with_profile(Profile::TestOnlyInsecure))
///     .with_memory_budget(128 * 1024 * 1024)?;
/// let password = SecretString::from("correct horse battery staple");
/// store.register("alice", &password).await?;
/// let verified = store.verify("alice", &password).await?;
/// assert_eq!(verified.username(), "alice");
/// # Ok(()) })
/// # }
/// ```
#[derive(Clone)]
pub struct AsyncUserStore {
    store: Arc<UserStore>,
    budget: Arc<Semaphore>,
    /// The budget's size in permits (MiB).
    budget_permits: u32,
    /// Runs inside each blocking task before the store's call (tests count and stall runs).
    #[cfg(test)]
    hook: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl fmt::Debug for AsyncUserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncUserStore")
            .field("store", &self.store)
            .field("budget_mib", &self.budget_permits)
            .field("budget_free_mib", &self.budget.available_permits())
            .finish()
    }
}

impl AsyncUserStore {
    /// Wraps `store`, with the default memory budget ([`DEFAULT_MEMORY_BUDGET`], or one hash
    /// of the store's profile when that is larger).
    pub fn new(mut store: UserStore) -> Self {
        store.set_memory_gate(MemoryGate(Arc::new(memory_gate)));
        let per_call = permits_for(&store);
        let budget_permits = permits_in(DEFAULT_MEMORY_BUDGET).max(per_call);
        Self {
            store: Arc::new(store),
            budget: Arc::new(Semaphore::new(budget_permits as usize)),
            budget_permits,
            #[cfg(test)]
            hook: None,
        }
    }

    /// Opens `spec` ([`StoreSpec::open`]: connecting to a database, migrating its schema) on
    /// the blocking pool, and wraps the store with the default budget. The store's clients
    /// may be dropped anywhere, a runtime's worker thread included.
    pub async fn open(spec: StoreSpec, password: Option<SecretString>) -> Result<Self, AuthError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            AuthError::BlockingTask { reason: "it was not run inside a tokio runtime" }
        })?;
        let store = runtime
            .spawn_blocking(move || {
                let _blocking = crate::backend::BlockingAllowed::enter();
                spec.open(password)
            })
            .await
            .map_err(joined)??;
        Ok(Self::new(store))
    }

    /// The same store with a budget of `bytes` for the Argon2 runs of its calls (rounded
    /// down to whole MiB). A budget below one hash of the store's profile (or below 1 MiB)
    /// is refused with [`AuthError::InvalidMemoryBudget`]: no call could ever run. Calls
    /// already running keep the share they took from the previous budget.
    pub fn with_memory_budget(mut self, bytes: u64) -> Result<Self, AuthError> {
        let permits = permits_in(bytes);
        if permits == 0 {
            return Err(AuthError::InvalidMemoryBudget {
                reason: "it is below 1 MiB, the smallest share a call takes",
            });
        }
        if permits < self.permits_per_call() {
            return Err(AuthError::InvalidMemoryBudget {
                reason: "it is below the memory of one hash of the store's profile, so no call could run",
            });
        }
        self.budget = Arc::new(Semaphore::new(permits as usize));
        self.budget_permits = permits;
        Ok(self)
    }

    /// The budget, in bytes (whole MiB).
    pub fn memory_budget(&self) -> u64 {
        u64::from(self.budget_permits) * MIB
    }

    /// The synchronous store (its builders' settings, [`UserStore::path`], ...). Its methods
    /// block the calling thread.
    pub fn store(&self) -> &UserStore {
        &self.store
    }

    /// [`UserStore::register`] on the blocking pool.
    pub async fn register(&self, username: &str, password: &SecretString) -> Result<(), AuthError> {
        let (username, password) = (username.to_owned(), password.clone());
        self.run(move |store| store.register(&username, &password)).await
    }

    /// [`UserStore::verify`] on the blocking pool.
    pub async fn verify(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Verified, AuthError> {
        self.verify_from(username, password, None).await
    }

    /// [`UserStore::verify_from`] on the blocking pool.
    pub async fn verify_from(
        &self,
        username: &str,
        password: &SecretString,
        source: Option<&str>,
    ) -> Result<Verified, AuthError> {
        let (username, password) = (username.to_owned(), password.clone());
        let source = source.map(str::to_owned);
        self.run(move |store| store.verify_from(&username, &password, source.as_deref())).await
    }

    /// [`UserStore::change_password`] on the blocking pool.
    pub async fn change_password(
        &self,
        username: &str,
        current: &SecretString,
        new: &SecretString,
        source: Option<&str>,
    ) -> Result<String, AuthError> {
        let (username, current, new) = (username.to_owned(), current.clone(), new.clone());
        let source = source.map(str::to_owned);
        self.run(move |store| store.change_password(&username, &current, &new, source.as_deref()))
            .await
    }

    /// [`UserStore::reset_password`] on the blocking pool.
    pub async fn reset_password(
        &self,
        username: &str,
        new: &SecretString,
    ) -> Result<String, AuthError> {
        let (username, new) = (username.to_owned(), new.clone());
        self.run(move |store| store.reset_password(&username, &new)).await
    }

    /// [`UserStore::delete`] on the blocking pool.
    pub async fn delete(&self, username: &str) -> Result<String, AuthError> {
        let username = username.to_owned();
        self.run_without_hashing(move |store| store.delete(&username)).await
    }

    /// [`UserStore::find`] on the blocking pool.
    pub async fn find(&self, username: &str) -> Result<String, AuthError> {
        let username = username.to_owned();
        self.run_without_hashing(move |store| store.find(&username)).await
    }

    /// [`UserStore::usernames`] on the blocking pool.
    pub async fn usernames(&self) -> Result<Vec<String>, AuthError> {
        self.run_without_hashing(|store| store.usernames()).await
    }

    /// [`UserStore::unlock`] on the blocking pool.
    pub async fn unlock(&self, username: &str) -> Result<bool, AuthError> {
        let username = username.to_owned();
        self.run_without_hashing(move |store| store.unlock(&username)).await
    }

    /// [`UserStore::throttle_status`] on the blocking pool.
    pub async fn throttle_status(&self, username: &str) -> Result<ThrottleStatus, AuthError> {
        let username = username.to_owned();
        self.run_without_hashing(move |store| store.throttle_status(&username)).await
    }

    /// The permits one call takes: the profile's memory in MiB, rounded up, within the budget.
    fn permits_per_call(&self) -> u32 {
        permits_for(&self.store).min(self.budget_permits.max(1))
    }

    /// Takes the call's permits, then runs `call` on the blocking pool holding them.
    async fn run<T, F>(&self, call: F) -> Result<T, AuthError>
    where
        F: FnOnce(&UserStore) -> Result<T, AuthError> + Send + 'static,
        T: Send + 'static,
    {
        self.run_with(self.permits_per_call(), call).await
    }

    /// Runs `call`, which runs no Argon2 (a lookup, a list, a throttling record), on the
    /// blocking pool without taking any of the budget: it never waits behind hashing calls
    /// (nor they behind its database waits). Were it to hash after all, the memory gate
    /// would still take the run's cost first.
    async fn run_without_hashing<T, F>(&self, call: F) -> Result<T, AuthError>
    where
        F: FnOnce(&UserStore) -> Result<T, AuthError> + Send + 'static,
        T: Send + 'static,
    {
        self.run_with(0, call).await
    }

    async fn run_with<T, F>(&self, share: u32, call: F) -> Result<T, AuthError>
    where
        F: FnOnce(&UserStore) -> Result<T, AuthError> + Send + 'static,
        T: Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            AuthError::BlockingTask { reason: "it was not run inside a tokio runtime" }
        })?;
        // Waiting here holds nothing: a future dropped now takes no permit.
        let permits = Arc::clone(&self.budget)
            .acquire_many_owned(share)
            .await
            .map_err(|_| AuthError::BlockingTask { reason: "the memory budget was closed" })?;
        let store = Arc::clone(&self.store);
        #[cfg(test)]
        let hook = self.hook.clone();
        let reservation = Reservation {
            runtime: runtime.clone(),
            budget: Arc::clone(&self.budget),
            budget_permits: self.budget_permits,
            held: share,
            permits: Some(permits),
        };
        let task = runtime.spawn_blocking(move || {
            // Freed when the call returns or unwinds, or when the task is dropped unstarted;
            // the store's memory gate reads it on this thread.
            let _reserved = Reserved::enter(reservation);
            // A blocking-pool thread: the synchronous PostgreSQL client may block here.
            let _blocking = crate::backend::BlockingAllowed::enter();
            #[cfg(test)]
            if let Some(hook) = hook {
                hook();
            }
            call(&store)
        });
        task.await.map_err(joined)?
    }
}

/// The error of a blocking task that did not return.
fn joined(e: tokio::task::JoinError) -> AuthError {
    if e.is_panic() {
        AuthError::BlockingTask { reason: "the blocking task running it panicked" }
    } else {
        AuthError::BlockingTask {
            reason: "the blocking task running it was cancelled (the runtime is shutting down)",
        }
    }
}

/// What the blocking task running a call holds of the budget, for the store's memory gate on
/// the same thread.
struct Reservation {
    runtime: tokio::runtime::Handle,
    budget: Arc<Semaphore>,
    budget_permits: u32,
    /// How many permits `permits` holds.
    held: u32,
    permits: Option<OwnedSemaphorePermit>,
}

thread_local! {
    /// The reservation of the call running on this blocking thread, if any.
    static RESERVATION: RefCell<Option<Reservation>> = const { RefCell::new(None) };
}

/// The reservation of a call while it runs on this thread; cleared (its permits freed) when
/// the call returns or unwinds.
struct Reserved;

impl Reserved {
    fn enter(reservation: Reservation) -> Self {
        RESERVATION.with(|slot| *slot.borrow_mut() = Some(reservation));
        Self
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let reservation = RESERVATION.with(|slot| slot.borrow_mut().take());
        drop(reservation);
    }
}

/// The memory gate an [`AsyncUserStore`] installs in its store, run right before each Argon2
/// run with its cost: a stored hash may cost up to [`Limits`](crate::Limits) (256 MiB), a
/// rehash keeps a stored cost above the profile's, and the dummy is shaped like the typical
/// record, so the call's share (the profile's `m`) may be short. Then the call RELEASES its
/// share first and waits for the run's whole cost (at most the budget) holding nothing, so
/// two calls never wait for each other while each holds part of the budget (no deadlock);
/// the returned guard gives it back after the run. Outside an `AsyncUserStore` call (the
/// sync API on another thread) it does nothing.
fn memory_gate(m_kib: u32) -> Box<dyn Any + Send> {
    let wait = RESERVATION.with(|slot| {
        let mut slot = slot.borrow_mut();
        let reservation = slot.as_mut()?;
        let needed = m_kib.div_ceil(1024).max(1).min(reservation.budget_permits);
        if needed <= reservation.held {
            return None;
        }
        // Release first: never wait while holding part of the budget.
        reservation.permits = None;
        reservation.held = 0;
        Some((reservation.runtime.clone(), Arc::clone(&reservation.budget), needed))
    });
    let Some((runtime, budget, needed)) = wait else {
        return Box::new(());
    };
    // A blocking-pool thread, not an async task: it may block on the semaphore. The budget
    // is never closed; were it, the run would go ahead unbudgeted rather than fail a login.
    let permits: Option<OwnedSemaphorePermit> =
        runtime.block_on(budget.acquire_many_owned(needed)).ok();
    Box::new(permits)
}

/// Whole MiB in `bytes`, capped to what a semaphore holds.
fn permits_in(bytes: u64) -> u32 {
    let cap = u64::try_from(Semaphore::MAX_PERMITS).unwrap_or(u64::MAX).min(u64::from(u32::MAX));
    u32::try_from((bytes / MIB).min(cap)).unwrap_or(u32::MAX)
}

/// The profile's memory in MiB, rounded up, at least 1.
fn permits_for(store: &UserStore) -> u32 {
    store.profile().params().memory_kib().div_ceil(1024).max(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::Profile;

    const PASSWORD: &str = "correct horse battery staple";

    fn multi_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(16)
            .enable_all()
            .build()
            .unwrap()
    }

    fn store_in(dir: &tempfile::TempDir, profile: Profile) -> UserStore {
        UserStore::new(dir.path().join("users.json")).with_profile(profile).without_throttle()
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        multi_thread().block_on(future)
    }

    /// Counts the Argon2 runs in flight through the store's gate (a test probe around the
    /// real gate): the run starts once the gate returns and ends when its guard drops.
    struct InFlight(Arc<AtomicUsize>);

    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Issue 14 review: a call took the profile's `m` from the budget, but a login runs the
    /// stored hash's `m` (up to `Limits`, 256 MiB), a rehash keeps a higher stored `m`, and
    /// the dummy copies the typical record's. With a budget of one 64 MiB hash, a profile
    /// of 8 KiB and stored hashes of 64 MiB, eight logins at once (known names, wrong
    /// passwords, unknown names: the dummy) never run two Argon2 at once.
    #[test]
    fn argon2_runs_keep_the_budget_whatever_the_stored_cost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let strong = UserStore::new(&path).with_profile(Profile::Rfc9106LowMemory);
        for name in ["alice", "bob", "carol", "dave"] {
            strong.register(name, &SecretString::from(PASSWORD)).unwrap();
        }
        let weak = UserStore::new(&path).with_profile(Profile::TestOnlyInsecure).without_throttle();
        let mut store = AsyncUserStore::new(weak).with_memory_budget(64 * MIB).unwrap();
        let (in_flight, most, runs) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let probe = {
            let (in_flight, most, runs) = (in_flight.clone(), most.clone(), runs.clone());
            MemoryGate(Arc::new(move |m_kib: u32| -> Box<dyn Any + Send> {
                let held = memory_gate(m_kib);
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                runs.fetch_add(1, Ordering::SeqCst);
                // Widens the run so that overlapping runs would be seen (not an assertion).
                std::thread::sleep(Duration::from_millis(20));
                // Counted out before the budget is given back (a tuple drops in order).
                Box::new((InFlight(in_flight.clone()), held))
            }))
        };
        Arc::get_mut(&mut store.store).unwrap().set_memory_gate(probe);
        let logins = [
            ("alice", PASSWORD, true),
            ("bob", PASSWORD, true),
            ("carol", "not the password at all", false),
            ("dave", PASSWORD, true),
            ("mallory", PASSWORD, false),
            ("trudy", PASSWORD, false),
            ("alice", "not the password at all", false),
            ("bob", PASSWORD, true),
        ];
        block_on(async {
            let tasks: Vec<_> = logins
                .iter()
                .map(|&(name, password, _)| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store.verify(name, &SecretString::from(password)).await.is_ok()
                    })
                })
                .collect();
            for (task, (name, _, ok)) in tasks.into_iter().zip(logins) {
                assert_eq!(task.await.unwrap(), ok, "{name}");
            }
        });
        assert!(runs.load(Ordering::SeqCst) >= logins.len());
        assert_eq!(in_flight.load(Ordering::SeqCst), 0);
        assert_eq!(most.load(Ordering::SeqCst), 1, "two 64 MiB runs at once in a 64 MiB budget");
        // The sync API (no budget) passes the gate untouched.
        assert!(store.store().verify("alice", &SecretString::from(PASSWORD)).is_ok());
    }

    #[test]
    fn results_equal_the_sync_apis() {
        let dir = tempfile::tempdir().unwrap();
        let store = AsyncUserStore::new(store_in(&dir, Profile::TestOnlyInsecure));
        let password = SecretString::from(PASSWORD);
        let wrong = SecretString::from("not the password at all");
        let new = SecretString::from("another long passphrase here");
        block_on(async {
            store.register("alice", &password).await.unwrap();
            store.register("bob", &password).await.unwrap();
            assert!(matches!(
                store.register("alice", &password).await,
                Err(AuthError::UserExists { username }) if username == "alice"
            ));
            let sync = store.store();
            let verified = store.verify("alice", &password).await.unwrap();
            assert_eq!(verified.username(), sync.verify("alice", &password).unwrap().username());
            assert!(matches!(
                store.verify_from("alice", &wrong, Some("10.0.0.1")).await,
                Err(AuthError::InvalidCredentials)
            ));
            assert!(matches!(
                store.verify("mallory", &password).await,
                Err(AuthError::InvalidCredentials)
            ));
            assert_eq!(store.usernames().await.unwrap(), sync.usernames().unwrap());
            assert_eq!(store.usernames().await.unwrap(), ["alice", "bob"]);
            assert_eq!(store.find("alice").await.unwrap(), sync.find("alice").unwrap());
            assert_eq!(
                store.change_password("alice", &password, &new, None).await.unwrap(),
                "alice"
            );
            assert!(sync.verify("alice", &new).is_ok());
            assert_eq!(store.reset_password("alice", &password).await.unwrap(), "alice");
            assert!(sync.verify("alice", &password).is_ok());
            assert_eq!(
                store.throttle_status("alice").await.unwrap(),
                sync.throttle_status("alice").unwrap()
            );
            assert!(!store.unlock("alice").await.unwrap());
            assert_eq!(store.delete("bob").await.unwrap(), "bob");
            assert!(matches!(store.find("bob").await, Err(AuthError::NoSuchUser { .. })));
            assert_eq!(sync.usernames().unwrap(), ["alice"]);
        });
    }

    #[test]
    fn a_budget_below_one_hash_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let default = || AsyncUserStore::new(store_in(&dir, Profile::Rfc9106LowMemory));
        assert_eq!(default().memory_budget(), DEFAULT_MEMORY_BUDGET);
        assert_eq!(default().permits_per_call(), 64);
        for bytes in [0, 1, MIB - 1, 63 * MIB, 64 * MIB - 1] {
            let error = default().with_memory_budget(bytes).unwrap_err();
            assert!(matches!(error, AuthError::InvalidMemoryBudget { .. }), "{bytes}: {error:?}");
            assert!(error.is_operational());
        }
        assert_eq!(default().with_memory_budget(64 * MIB).unwrap().memory_budget(), 64 * MIB);
        // Rounded down to whole MiB.
        assert_eq!(default().with_memory_budget(65 * MIB - 1).unwrap().memory_budget(), 64 * MIB);
        // owasp-min (19456 KiB) takes 19 MiB, the test profile (8 KiB) 1.
        let owasp = AsyncUserStore::new(store_in(&dir, Profile::OwaspMinimum));
        assert_eq!(owasp.permits_per_call(), 19);
        let tiny = AsyncUserStore::new(store_in(&dir, Profile::TestOnlyInsecure));
        assert_eq!(tiny.with_memory_budget(MIB).unwrap().permits_per_call(), 1);
    }

    /// A store whose blocking runs pass through `hook`, with a budget of one hash.
    fn hooked(dir: &tempfile::TempDir, hook: impl Fn() + Send + Sync + 'static) -> AsyncUserStore {
        let mut store = AsyncUserStore::new(store_in(dir, Profile::TestOnlyInsecure))
            .with_memory_budget(MIB)
            .unwrap();
        store.hook = Some(Arc::new(hook));
        store
    }

    #[test]
    fn a_budget_of_one_hash_runs_one_call_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let runs = Arc::new(AtomicUsize::new(0));
        let (i, m, r) = (Arc::clone(&in_flight), Arc::clone(&max), Arc::clone(&runs));
        let store = hooked(&dir, move || {
            let now = i.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            r.fetch_add(1, Ordering::SeqCst);
            // Gives the others every chance to overlap (not a timing assertion).
            std::thread::sleep(Duration::from_millis(20));
            i.fetch_sub(1, Ordering::SeqCst);
        });
        store.store().register("alice", &SecretString::from(PASSWORD)).unwrap();
        block_on(async {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store.verify("alice", &SecretString::from(PASSWORD)).await.map(|_| ())
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap().unwrap();
            }
        });
        assert_eq!(runs.load(Ordering::SeqCst), 8);
        assert_eq!(max.load(Ordering::SeqCst), 1);
        assert_eq!(store.budget.available_permits(), 1);
    }

    #[test]
    fn a_panic_in_the_blocking_task_is_an_error_and_frees_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = hooked(&dir, || panic!("boom"));
        let result = block_on(store.usernames());
        assert!(
            matches!(result, Err(AuthError::BlockingTask { reason }) if reason.contains("panicked")),
            "{result:?}"
        );
        assert_eq!(store.budget.available_permits(), 1);
    }

    #[test]
    fn a_future_dropped_while_waiting_takes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = AsyncUserStore::new(store_in(&dir, Profile::TestOnlyInsecure))
            .with_memory_budget(MIB)
            .unwrap();
        block_on(async {
            let held = Arc::clone(&store.budget).acquire_many_owned(1).await.unwrap();
            let password = SecretString::from(PASSWORD);
            let login = store.verify("nobody", &password);
            let waiting = tokio::time::timeout(Duration::from_millis(10), login).await;
            assert!(waiting.is_err(), "ran without the budget: {waiting:?}");
            drop(held);
            assert_eq!(store.budget.available_permits(), 1);
            let login = store.verify("nobody", &SecretString::from(PASSWORD)).await;
            assert!(matches!(login, Err(AuthError::InvalidCredentials)), "{login:?}");
        });
        assert_eq!(store.budget.available_permits(), 1);
    }

    /// Review R2: calls that run no Argon2 take none of the budget, so they never wait behind
    /// hashing calls (which may themselves wait for the writer lock). With the whole budget
    /// held, each still answers (the timeout is a hang guard, not a measurement).
    #[test]
    fn calls_that_hash_nothing_take_none_of_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = AsyncUserStore::new(store_in(&dir, Profile::TestOnlyInsecure))
            .with_memory_budget(MIB)
            .unwrap();
        block_on(async {
            store.register("alice", &SecretString::from(PASSWORD)).await.unwrap();
            let _all = Arc::clone(&store.budget).acquire_many_owned(1).await.unwrap();
            let guard = Duration::from_secs(30);
            let names = tokio::time::timeout(guard, store.usernames()).await;
            assert_eq!(names.expect("usernames waited for the budget").unwrap(), ["alice"]);
            let found = tokio::time::timeout(guard, store.find("alice")).await;
            assert_eq!(found.expect("find waited for the budget").unwrap(), "alice");
            let status = tokio::time::timeout(guard, store.throttle_status("alice")).await;
            assert_eq!(status.expect("throttle_status waited").unwrap().failures, 0);
            let unlocked = tokio::time::timeout(guard, store.unlock("alice")).await;
            assert!(!unlocked.expect("unlock waited for the budget").unwrap());
        });
    }

    #[test]
    fn outside_a_runtime_it_fails_instead_of_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let store = AsyncUserStore::new(store_in(&dir, Profile::TestOnlyInsecure));
        let result = poll_outside_runtime(store.usernames());
        assert!(matches!(result, Err(AuthError::BlockingTask { .. })), "{result:?}");
    }

    /// Polls a future to completion on this thread, outside any tokio runtime.
    fn poll_outside_runtime<F: Future>(future: F) -> F::Output {
        use std::task::{Context, Poll, Wake, Waker};
        struct Noop;
        impl Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn the_runtime_keeps_running_other_tasks_during_logins() {
        let dir = tempfile::tempdir().unwrap();
        let store = AsyncUserStore::new(store_in(&dir, Profile::OwaspMinimum));
        store.store().register("alice", &SecretString::from(PASSWORD)).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let during = runtime.block_on(async {
            let counter = Arc::clone(&ticks);
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::task::yield_now().await;
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            });
            let logins: Vec<_> = (0..4)
                .map(|_| {
                    let store = store.clone();
                    async move { store.verify("alice", &SecretString::from(PASSWORD)).await }
                })
                .collect();
            let before = ticks.load(Ordering::SeqCst);
            for login in logins {
                login.await.unwrap();
            }
            // Read before this task yields again: only ticks made while logins ran count.
            let during = ticks.load(Ordering::SeqCst) - before;
            ticker.abort();
            during
        });
        assert!(during > 0, "the runtime ran nothing else while 4 logins ran");
    }
}
