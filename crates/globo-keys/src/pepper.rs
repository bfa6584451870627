//! Where the password pepper lives: the secret `PASSWORD_PEPPER` of the current mode's
//! secrets provider, resolved like the Fernet key's home ([`crate::KeySource`]).
//!
//! - Local mode: the environment variable, else the `.env` file's line (the lab's
//!   `load_dotenv(override=False)`: the environment wins). Writes edit `.env` under its lock
//!   and replace it atomically (mode `0600`), every other line kept byte for byte
//!   ([`globo_secrets::dotenv::set_value`]). A pepper set in the process environment is
//!   never written over: it would keep winning over the file.
//! - Prod mode (feature `aws`): the AWS Secrets Manager secret; created with `CreateSecret`,
//!   changed with `PutSecretValue` (Secrets Manager keeps the version it replaces as
//!   `AWSPREVIOUS` until the next change).
//!
//! The value is [`Peppers`]' text form, `BASE64[,BASE64...]`, the current version first;
//! each version's id is a fingerprint of its key, so a re-created pepper or a concurrent
//! rotation can never pass for a version records already name. A rotation
//! ([`PepperSource::rotate_users`]) holds the users file's exclusive lock across its steps,
//! and each step is crash-safe and re-runnable, because the state is what the secret and the
//! users file hold:
//!
//! 1. a new current version is added, keeping the old ones (when the secret already holds
//!    several and a usable record is still under an older one, a rotation is in progress
//!    and none is added; versions kept only for unusable entries do not count); the pepper
//!    is read back, and a pepper another writer replaced meanwhile stops the rotation;
//! 2. every record is moved to it
//!    ([`UsersMaintenance::rotate_pepper_all`](globo_auth::UsersMaintenance::rotate_pepper_all));
//! 3. the file is read again under the same lock, and only the versions no entry names are
//!    dropped ([`PepperSource::retire_unused`]).
//!
//! ```
//! use globo_auth::UserStore;
//! use globo_keys::pepper::{PepperSource, PepperSourceConfig};
//! use globo_secrets::{Environment, Mode};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let config = PepperSourceConfig::new().mode(Mode::Local).env_file(dir.path().join(".env"));
//! let source = PepperSource::resolve(&config, &Environment::empty())?;
//! assert!(source.load()?.is_none());
//! let created = source.create()?; // one version, written to .env
//! assert_eq!(source.load()?.unwrap().current_version(), created.current_version());
//! let rotation = source.rotate_users(UserStore::new(dir.path().join("users.json")))?;
//! assert_eq!(rotation.retired, [created.current_version()]);
//! assert_eq!(source.load()?.unwrap().current_version(), rotation.version);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use globo_auth::{AuthError, PepperReport, Peppers, UserStore};
use globo_fs::zeroize::Zeroizing;
use globo_secrets::{
    EnvFile, Environment, MAX_ENV_FILE_LEN, Mode, SecretsError, dotenv, mode_without_env_file,
    resolve_mode,
};
use secrecy::{ExposeSecret as _, SecretString};

use crate::KeysError;
use crate::source::Decided;

/// The secret holding the pepper when no other name is configured.
pub const DEFAULT_PEPPER_SECRET: &str = "PASSWORD_PEPPER";
/// The environment variable that names the pepper's secret
/// ([`PepperSourceConfig::secret`] wins over it).
pub const PEPPER_SECRET_VAR: &str = "GLOBO_PEPPER_SECRET";
/// The description globo gives a Secrets Manager secret holding the pepper.
pub const PEPPER_SECRET_DESCRIPTION: &str =
    "Password pepper of the globo users file (change it only by a pepper rotation)";

/// What decides where the pepper lives: the mode, the secret's name and the `.env` file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PepperSourceConfig {
    mode: Option<Mode>,
    secret: Option<String>,
    env_file: PathBuf,
}

impl Default for PepperSourceConfig {
    fn default() -> Self {
        Self { mode: None, secret: None, env_file: PathBuf::from(".env") }
    }
}

impl PepperSourceConfig {
    /// Every setting at its default: the mode from `APP_MODE`, else `.env`, else local; the
    /// secret named by [`PEPPER_SECRET_VAR`], else [`DEFAULT_PEPPER_SECRET`]; `.env`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fixes the mode (unset: as [`KeySourceConfig::mode`](crate::KeySourceConfig::mode)).
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The secret (prod) or variable (local) holding the pepper.
    #[must_use]
    pub fn secret(mut self, name: impl Into<String>) -> Self {
        self.secret = Some(name.into());
        self
    }

    /// The `.env` file (default `.env`): the pepper in local mode, `APP_MODE` and the AWS
    /// settings in prod mode.
    #[must_use]
    pub fn env_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.env_file = path.into();
        self
    }

    fn name(&self, env: &Environment) -> String {
        match &self.secret {
            Some(name) => name.clone(),
            None => env
                .get(PEPPER_SECRET_VAR)
                .map_or_else(|| DEFAULT_PEPPER_SECRET.to_owned(), |v| v.expose_secret().to_owned()),
        }
    }
}

/// The pepper's home, resolved from a [`PepperSourceConfig`]. Every call blocks: local mode
/// does file I/O on the calling thread; prod mode runs its requests on a current-thread tokio
/// runtime of its own (so, like [`crate::BlockingKeySource`], not from async code). `Debug`
/// shows where, never a value.
#[derive(Debug)]
pub struct PepperSource {
    home: Home,
    #[cfg(feature = "aws")]
    runtime: Option<tokio::runtime::Runtime>,
}

#[derive(Debug)]
enum Home {
    /// `read`: the `.env` file as read to decide the mode, reused by `load` (a pipe can be
    /// read only once).
    Local { name: String, env_file: PathBuf, env: Environment, read: Option<EnvFile> },
    #[cfg(feature = "aws")]
    Secret { provider: globo_secrets::AwsProvider, name: String },
}

/// What [`PepperSource::rotate_users`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PepperRotation {
    /// Whether this run added [`version`](Self::version); `false` when it resumed a
    /// rotation in progress (records were still under an older version).
    pub added: bool,
    /// The current version now: every record it could move names it.
    pub version: String,
    /// What moving the records did.
    pub moved: PepperReport,
    /// The older versions dropped from the pepper.
    pub retired: Vec<String>,
    /// The older versions kept because entries still name them, with those users (in file
    /// order): run the rotation again once they can be moved, or fix the unusable ones.
    pub still_in_use: BTreeMap<String, Vec<String>>,
}

/// The points of a rotation a test may interleave a writer at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RotationStep {
    /// The new version is in the secret; records not yet moved.
    Added,
    /// Records moved; the file not yet read again.
    Moved,
}

/// What a write step makes of the pepper found.
enum Change {
    /// Nothing to write: this is the pepper.
    Keep(Peppers),
    /// Write this one.
    Write(Peppers),
}

impl PepperSource {
    /// Where the pepper lives for `config`, with `env` the process environment or a test's.
    /// Local mode reads nothing yet; prod mode builds the AWS client (no request sent).
    pub fn resolve(config: &PepperSourceConfig, env: &Environment) -> Result<Self, KeysError> {
        let name = config.name(env);
        // KeySourceConfig::decide's rule, keeping the reading for local mode too.
        let decided = mode_without_env_file(config.mode, env)?;
        let (decided, read) = if decided == Some(Mode::Local) {
            (Decided::Local, None)
        } else {
            let file = EnvFile::read(&config.env_file, env)?;
            match resolve_mode(decided, &file, env)? {
                Mode::Prod => (Decided::Prod(file), None),
                _ => (Decided::Local, Some(file)),
            }
        };
        match decided {
            Decided::Local => {
                if name.is_empty() || name.contains(['=', '\0']) {
                    return Err(SecretsError::InvalidName {
                        name: name.escape_debug().to_string(),
                        reason: "an environment variable name must be non-empty, without '=' or NUL",
                    }
                    .into());
                }
                let env_file = config.env_file.clone();
                let home = Home::Local { name, env_file, env: env.clone(), read };
                Ok(Self {
                    home,
                    #[cfg(feature = "aws")]
                    runtime: None,
                })
            }
            #[cfg(feature = "aws")]
            Decided::Prod(file) => {
                globo_secrets::check_aws_name(&name)?;
                if tokio::runtime::Handle::try_current().is_ok() {
                    return Err(KeysError::InsideAsyncRuntime);
                }
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| KeysError::Runtime { source })?;
                let settings = globo_secrets::AwsSettings::resolve(&file, env)?;
                let provider =
                    runtime.block_on(globo_secrets::AwsProvider::from_settings(&settings))?;
                Ok(Self { home: Home::Secret { provider, name }, runtime: Some(runtime) })
            }
            #[cfg(not(feature = "aws"))]
            Decided::Prod(_) => Err(KeysError::BackendNotCompiled),
        }
    }

    /// `variable 'NAME' (environment, else '.env')` or `secret 'NAME' in AWS Secrets Manager
    /// (<endpoint>)`, for messages.
    pub fn describe(&self) -> String {
        match &self.home {
            Home::Local { name, env_file, .. } => {
                format!("variable '{name}' (the environment, else '{}')", env_file.display())
            }
            #[cfg(feature = "aws")]
            Home::Secret { provider, name } => {
                format!("secret '{name}' in AWS Secrets Manager ({})", provider.endpoint())
            }
        }
    }

    /// The pepper, or `None` when there is none (no variable or line, no secret). Its text
    /// must parse ([`Peppers::parse`]); errors never repeat it.
    pub fn load(&self) -> Result<Option<Peppers>, KeysError> {
        self.load_from(true)
    }

    /// [`load`](Self::load); with `cached` false, a local `.env` is read again even if
    /// resolving read it (a rotation reads back what it wrote).
    fn load_from(&self, cached: bool) -> Result<Option<Peppers>, KeysError> {
        match &self.home {
            Home::Local { name, env_file, env, read } => {
                if let Some(peppers) = self.in_environment(name, env)? {
                    return Ok(Some(peppers));
                }
                match read {
                    Some(file) if cached => self.parse_present(file.get(name)),
                    _ => self.parse_present(EnvFile::read(env_file, env)?.get(name)),
                }
            }
            #[cfg(feature = "aws")]
            Home::Secret { provider, name } => self.block_on(async {
                match provider.get_version(name, &globo_secrets::VersionSelector::Current).await {
                    Ok(globo_secrets::SecretValue::Text(text)) => self.parse_present(Some(&text)),
                    Ok(_) => Err(self.invalid(AuthError::InvalidPepper {
                        reason: "the secret holds binary data, not text",
                    })),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }),
        }
    }

    /// Creates the pepper: one version of 32 random bytes. Never replaces one: that would
    /// make every peppered record unverifiable ([`KeysError::PepperExists`]).
    pub fn create(&self) -> Result<Peppers, KeysError> {
        let created = Peppers::generate().map_err(|e| self.invalid(e))?;
        match &self.home {
            Home::Local { name, env_file, env, .. } => {
                self.update_local(name, env_file, env, |found| match found {
                    Some(_) => Err(KeysError::PepperExists { location: self.describe() }),
                    None => Ok(Change::Write(created)),
                })
            }
            #[cfg(feature = "aws")]
            Home::Secret { provider, name } => self.block_on(async {
                let written = created.to_secret();
                let result = provider
                    .client()
                    .create_secret()
                    .name(name)
                    .description(PEPPER_SECRET_DESCRIPTION)
                    .secret_string(written.expose_secret())
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(created),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_exists_exception()) =>
                    {
                        Err(KeysError::PepperExists { location: self.describe() })
                    }
                    Err(e) => Err(provider.map_write_error(name, Some(&written), e).into()),
                }
            }),
        }
    }

    /// Step 1 of a rotation, without a users file to look at: adds a new current version (a
    /// fresh random key), keeping the others, and returns the new pepper. When the pepper
    /// already has several versions it adds none and returns the pepper as it is (with no
    /// records to look at, several versions are taken for a rotation in progress).
    /// [`KeysError::PepperMissing`] when there is no pepper. Use
    /// [`rotate_users`](Self::rotate_users) for the whole rotation: it adds a version
    /// unless records are still to be moved off an older one.
    pub fn rotate(&self) -> Result<Peppers, KeysError> {
        self.add_version(|found| found.versions().count() > 1).map(|(peppers, _)| peppers)
    }

    /// Adds a new current version unless `in_progress` says a rotation is under way (then
    /// the pepper is kept as it is); returns the pepper and whether a version was added.
    fn add_version(
        &self,
        in_progress: impl FnOnce(&Peppers) -> bool,
    ) -> Result<(Peppers, bool), KeysError> {
        let mut added = false;
        let peppers = self.update(|found| {
            let found =
                found.ok_or_else(|| KeysError::PepperMissing { location: self.describe() })?;
            if in_progress(&found) {
                return Ok(Change::Keep(found));
            }
            added = true;
            Ok(Change::Write(found.with_new_current().map_err(|e| self.invalid(e))?))
        })?;
        Ok((peppers, added))
    }

    /// Step 3 of a rotation: drops every older version that no entry of `in_use` (version
    /// id to the users naming it, as
    /// [`UsersMaintenance::pepper_versions_in_use`](globo_auth::UsersMaintenance::pepper_versions_in_use)
    /// returns) names; the current one always stays. With `current`, the pepper's current
    /// version must still be that one ([`KeysError::PepperChanged`] otherwise, nothing
    /// written). Returns the pepper left.
    pub fn retire_unused(
        &self,
        current: Option<&str>,
        in_use: &BTreeMap<String, Vec<String>>,
    ) -> Result<Peppers, KeysError> {
        self.update(|found| {
            let found =
                found.ok_or_else(|| KeysError::PepperMissing { location: self.describe() })?;
            if current.is_some_and(|id| id != found.current_version()) {
                return Err(KeysError::PepperChanged { location: self.describe() });
            }
            let kept = found.retain_current_and(|id| in_use.contains_key(id));
            if kept.versions().count() == found.versions().count() {
                return Ok(Change::Keep(found));
            }
            Ok(Change::Write(kept))
        })
    }

    /// A whole pepper rotation of the users file of `store`, under that file's exclusive
    /// lock from the first step to the last (see the [module docs](self)): a new current
    /// version (or the one an interrupted rotation added), checked by reading the pepper
    /// back; every record moved to it; then the older versions that no entry of the file,
    /// read again under the same lock, still names are retired. Versions some entry still
    /// names (an unusable entry's `keyid=` included) are kept and listed in
    /// [`PepperRotation::still_in_use`]; running the rotation again moves what it can and
    /// retires what it then may. Records under versions the pepper does not hold stop it
    /// before anything is moved ([`KeysError::PepperRecordsUnmovable`], naming them).
    ///
    /// Interrupted anywhere, a new run completes it: the secret then holds several versions
    /// and records are still under an older one, so no version is added, and the records are
    /// moved and the versions retired. When no usable record is under an older version (the
    /// older ones are kept only for unusable entries), a new version is added:
    /// [`PepperRotation::added`] says which happened.
    ///
    /// One secret serves one users file: retiring a version another users file still uses
    /// would lock its users out. Give each users file its own secret.
    pub fn rotate_users(&self, store: UserStore) -> Result<PepperRotation, KeysError> {
        self.rotate_users_with(store, &mut |_| {})
    }

    /// [`rotate_users`](Self::rotate_users), calling `between` after each step (tests
    /// interleave other writers there).
    fn rotate_users_with(
        &self,
        store: UserStore,
        between: &mut dyn FnMut(RotationStep),
    ) -> Result<PepperRotation, KeysError> {
        let guard = store.maintenance().map_err(KeysError::Users)?;
        // 1. A new current version, read back: a concurrent writer (prod: a rotation from
        //    elsewhere) may have replaced the pepper after our write. A rotation is in
        //    progress (none added) only while a usable record is still under an older
        //    version the pepper holds: versions kept for unusable entries alone must not
        //    stop every later rotation.
        let movable = guard.pepper_versions_movable().map_err(KeysError::Users)?;
        let (peppers, added) =
            self.add_version(|found| found.versions().skip(1).any(|old| movable.contains(old)))?;
        between(RotationStep::Added);
        let stored = self
            .load_from(false)?
            .ok_or_else(|| KeysError::PepperChanged { location: self.describe() })?;
        if stored.current_version() != peppers.current_version() {
            return Err(KeysError::PepperChanged { location: self.describe() });
        }
        let peppers = stored;
        // Records under versions the pepper does not hold cannot be moved: name them.
        let in_use = guard.pepper_versions_in_use().map_err(KeysError::Users)?;
        let missing: Vec<(&String, &Vec<String>)> =
            in_use.iter().filter(|(id, _)| !peppers.contains(id)).collect();
        if !missing.is_empty() {
            return Err(KeysError::PepperRecordsUnmovable {
                location: self.describe(),
                versions: missing.iter().map(|(id, _)| (*id).clone()).collect(),
                users: missing.iter().flat_map(|(_, users)| users.iter().cloned()).collect(),
            });
        }
        // 2. Every record moved, in one atomic write.
        let moved = guard.rotate_pepper_all(&peppers).map_err(KeysError::Users)?;
        between(RotationStep::Moved);
        // 3. Read again under the same lock; retire only what no entry names.
        let in_use = guard.pepper_versions_in_use().map_err(KeysError::Users)?;
        let left = self.retire_unused(Some(peppers.current_version()), &in_use)?;
        let retired =
            peppers.versions().filter(|id| !left.contains(id)).map(str::to_owned).collect();
        let still_in_use = in_use
            .into_iter()
            .filter(|(id, _)| id != peppers.current_version() && left.contains(id))
            .collect();
        Ok(PepperRotation {
            added,
            version: peppers.current_version().to_owned(),
            moved,
            retired,
            still_in_use,
        })
    }

    fn update(
        &self,
        change: impl FnOnce(Option<Peppers>) -> Result<Change, KeysError>,
    ) -> Result<Peppers, KeysError> {
        match &self.home {
            Home::Local { name, env_file, env, .. } => {
                self.update_local(name, env_file, env, change)
            }
            #[cfg(feature = "aws")]
            Home::Secret { provider, name } => {
                let found = self.load()?;
                match change(found)? {
                    Change::Keep(peppers) => Ok(peppers),
                    Change::Write(peppers) => self.block_on(async {
                        let written = peppers.to_secret();
                        provider
                            .client()
                            .put_secret_value()
                            .secret_id(name)
                            .secret_string(written.expose_secret())
                            .send()
                            .await
                            .map_err(|e| provider.map_write_error(name, Some(&written), e))?;
                        Ok(peppers)
                    }),
                }
            }
        }
    }

    /// A read-modify-write of the `.env` line under the file's exclusive lock.
    fn update_local(
        &self,
        name: &str,
        env_file: &PathBuf,
        env: &Environment,
        change: impl FnOnce(Option<Peppers>) -> Result<Change, KeysError>,
    ) -> Result<Peppers, KeysError> {
        if let Some(found) = self.in_environment(name, env)? {
            // The environment wins over the file: a write there would change nothing.
            return match change(Some(found))? {
                Change::Keep(peppers) => Ok(peppers),
                Change::Write(_) => Err(self.not_writable(
                    "it is set in the process environment, which wins over the .env file; \
                     change it where the environment is set",
                )),
            };
        }
        let _lock = globo_fs::ExclusiveLock::acquire(env_file)
            .map_err(|source| KeysError::EnvFileWrite { path: env_file.clone(), source })?;
        let file = EnvFile::read(env_file, env)?;
        if file.disabled() {
            return Err(
                self.not_writable("PYTHON_DOTENV_DISABLED is set, so the .env file is not read")
            );
        }
        let found = self.parse_present(file.get(name))?;
        let peppers = match change(found)? {
            Change::Keep(peppers) => return Ok(peppers),
            Change::Write(peppers) => peppers,
        };
        let bytes = read_bytes(env_file)?;
        // EnvFile::read checked the same file, under the same lock, as UTF-8.
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| SecretsError::EnvFileNotUtf8 { path: env_file.clone(), line: 1 })?;
        let updated =
            dotenv::set_value(text, name, &peppers.to_secret(), env).ok_or_else(|| {
                self.not_writable(
                "its statement in the .env file cannot be replaced safely (a value over several \
                 lines, or another line refers to it); edit the file by hand",
            )
            })?;
        globo_fs::write_atomic(env_file, updated.as_bytes())
            .map_err(|source| KeysError::EnvFileWrite { path: env_file.clone(), source })?;
        Ok(peppers)
    }

    /// The pepper the process environment sets, if it sets one.
    fn in_environment(&self, name: &str, env: &Environment) -> Result<Option<Peppers>, KeysError> {
        if env.is_set_but_not_utf8(name) {
            return Err(SecretsError::EnvVarNotUtf8 { name: name.to_owned() }.into());
        }
        self.parse_present(env.get(name))
    }

    /// The pepper in `text`; `None` for no text or an empty one (an empty secret is missing,
    /// as for every secret of the local provider).
    fn parse_present(&self, text: Option<&SecretString>) -> Result<Option<Peppers>, KeysError> {
        match text {
            Some(text) if !text.expose_secret().trim().is_empty() => {
                Peppers::parse(text).map(Some).map_err(|e| self.invalid(e))
            }
            _ => Ok(None),
        }
    }

    fn invalid(&self, source: AuthError) -> KeysError {
        KeysError::InvalidPepper { location: self.describe(), source }
    }

    fn not_writable(&self, reason: &'static str) -> KeysError {
        KeysError::PepperNotWritable { location: self.describe(), reason }
    }

    #[cfg(feature = "aws")]
    fn block_on<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, KeysError>>,
    ) -> Result<T, KeysError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(KeysError::InsideAsyncRuntime);
        }
        let runtime = self.runtime.as_ref().ok_or_else(|| KeysError::Runtime {
            source: std::io::Error::other("the pepper source was resolved without its runtime"),
        })?;
        runtime.block_on(future)
    }
}

#[cfg(feature = "aws")]
impl Drop for PepperSource {
    fn drop(&mut self) {
        // Dropping a runtime where blocking is not allowed panics: let it stop on its own.
        if let Some(runtime) = self.runtime.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            runtime.shutdown_background();
        }
    }
}

/// The `.env` file's bytes (none when it does not exist), read bounded.
fn read_bytes(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeysError> {
    match globo_fs::read_small(path, MAX_ENV_FILE_LEN) {
        Ok(bytes) => Ok(bytes.unwrap_or_default()),
        Err(e) => Err(SecretsError::EnvFileUnreadable {
            path: path.to_path_buf(),
            source: e.into_io_error(),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use globo_auth::{Profile, UserStore};

    use super::*;

    fn setup() -> (tempfile::TempDir, PepperSource, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let config = PepperSourceConfig::new().mode(Mode::Local).env_file(dir.path().join(".env"));
        let source = PepperSource::resolve(&config, &Environment::empty()).unwrap();
        let users = dir.path().join("users.json");
        (dir, source, users)
    }

    /// Review point 2, as `app` resolves it: the mode read from `.env` (a reading the source
    /// keeps): the read-back after adding the version must read the file again. Before the
    /// fix it saw the cached pepper and stopped with `PepperChanged`.
    #[test]
    fn a_rotation_reads_the_pepper_back_from_the_file_not_the_reading_it_resolved_with() {
        let dir = tempfile::tempdir().unwrap();
        let env_file = dir.path().join(".env");
        std::fs::write(&env_file, "APP_MODE=local\n").unwrap();
        let config = PepperSourceConfig::new().env_file(&env_file);
        let creator = PepperSource::resolve(&config, &Environment::empty()).unwrap();
        let old = creator.create().unwrap();
        let source = PepperSource::resolve(&config, &Environment::empty()).unwrap();
        let users = dir.path().join("users.json");
        store(&users)
            .with_peppers(old.clone())
            .register("alice", &"a long enough passphrase".into())
            .unwrap();
        let rotation = source.rotate_users(store(&users)).unwrap();
        assert_eq!(rotation.retired, [old.current_version()]);
    }

    fn store(users: &Path) -> UserStore {
        UserStore::new(users).with_profile(Profile::TestOnlyInsecure)
    }

    /// Issue 13 review, point 2: a record written under the old version after the records
    /// were moved (a stale writer; here one that ignores the lock) keeps the old version:
    /// it is not retired and the user is named. Before, the old versions were dropped after
    /// the move whatever the file then held, and that record could never verify again.
    #[test]
    fn a_record_under_the_old_version_written_after_the_move_blocks_its_retirement() {
        let (_dir, source, users) = setup();
        let old = source.create().unwrap();
        let stale = store(&users).with_peppers(old.clone());
        stale.register("alice", &"a long enough passphrase".into()).unwrap();
        let mut stale_bob = None;
        let rotation = source
            .rotate_users_with(store(&users), &mut |step| {
                if step == RotationStep::Moved {
                    // What the stale writer makes, put in the file behind the lock's back.
                    let (_d, _s, other) = setup();
                    let writer = store(&other).with_peppers(old.clone());
                    writer.register("bob", &"another long passphrase".into()).unwrap();
                    let mut file: serde_json::Value =
                        serde_json::from_slice(&std::fs::read(&users).unwrap()).unwrap();
                    let theirs: serde_json::Value =
                        serde_json::from_slice(&std::fs::read(&other).unwrap()).unwrap();
                    file["bob"] = theirs["bob"].clone();
                    stale_bob = Some(theirs["bob"].as_str().unwrap().to_owned());
                    std::fs::write(&users, file.to_string()).unwrap();
                }
            })
            .unwrap();
        assert!(rotation.retired.is_empty(), "{rotation:?}");
        let id = old.current_version().to_owned();
        assert_eq!(rotation.still_in_use.get(&id).unwrap(), &["bob"]);
        let now = source.load().unwrap().unwrap();
        assert_eq!(now.versions().collect::<Vec<_>>(), [rotation.version.as_str(), &id]);
        // A second rotation resumes (bob is still under the old version: no version added),
        // moves him and retires the old version; bob still logs in.
        assert!(stale_bob.is_some());
        let again = source.rotate_users(store(&users)).unwrap();
        assert!(!again.added);
        assert_eq!(again.version, rotation.version);
        assert_eq!(again.retired, [id]);
        let now = source.load().unwrap().unwrap();
        store(&users).with_peppers(now).verify("bob", &"another long passphrase".into()).unwrap();
    }

    /// Issue 13 review, point 2: the pepper is read back after the new version is added;
    /// when another writer replaced it meanwhile the rotation stops and changes nothing
    /// more (no record moved, nothing retired).
    #[test]
    fn a_pepper_replaced_during_the_rotation_stops_it() {
        let (_dir, source, users) = setup();
        let old = source.create().unwrap();
        store(&users)
            .with_peppers(old)
            .register("alice", &"a long enough passphrase".into())
            .unwrap();
        let before = std::fs::read(&users).unwrap();
        let theirs = Peppers::generate().unwrap();
        let err = source
            .rotate_users_with(store(&users), &mut |step| {
                if step == RotationStep::Added {
                    // Another rotation's PutSecretValue wins.
                    source.update(|_| Ok(Change::Write(theirs.clone()))).unwrap();
                }
            })
            .unwrap_err();
        assert!(matches!(err, KeysError::PepperChanged { .. }), "{err}");
        assert_eq!(std::fs::read(&users).unwrap(), before);
        let now = source.load().unwrap().unwrap();
        assert_eq!(now.current_version(), theirs.current_version());
        // Retiring against a current version that is no longer current is refused too.
        let err = source.retire_unused(Some("AAAAAAAA"), &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, KeysError::PepperChanged { .. }), "{err}");
    }
}
