//! Where the key lives: resolved once from the mode, then loaded, created and rotated the
//! same way whatever the source.

use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use globo_crypto::{
    CryptoError, Key, KeyFile, KeyLock, Keyring, LoadedKeys, RotationReport, RotationStep,
};
use globo_secrets::{EnvFile, Environment, Mode, mode_without_env_file, resolve_mode};

use crate::KeysError;
#[cfg(feature = "aws")]
use crate::SecretsManagerKeyStore;
#[cfg(feature = "aws")]
use crate::secrets_manager::AWS_PENDING;

/// The secret holding the Fernet key in prod mode when no other name is configured.
pub const DEFAULT_KEY_SECRET: &str = "FERNET_KEY";
/// The environment variable that names the key's secret ([`KeySourceConfig::key_secret`]
/// wins over it).
pub const KEY_SECRET_VAR: &str = "GLOBO_FERNET_KEY_SECRET";

/// What decides where the key lives: the settings the globo CLI takes as `--mode`,
/// `--key-file`, `--key-secret` and `--env-file`. Built from [`KeySourceConfig::new`] (every
/// setting at its default) and the setters; further sources (KMS, Vault) will add settings
/// without breaking callers.
///
/// ```
/// use globo_keys::KeySourceConfig;
/// use globo_secrets::Mode;
///
/// let config = KeySourceConfig::new().mode(Mode::Local).key_file("/etc/app/secret.key");
/// # let _ = config;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySourceConfig {
    mode: Option<Mode>,
    pub(crate) key_file: PathBuf,
    key_secret: Option<String>,
    env_file: PathBuf,
}

impl Default for KeySourceConfig {
    fn default() -> Self {
        Self {
            mode: None,
            key_file: PathBuf::from("secret.key"),
            key_secret: None,
            env_file: PathBuf::from(".env"),
        }
    }
}

impl KeySourceConfig {
    /// Every setting at its default: the mode from `APP_MODE`, else the last `APP_MODE` of
    /// `.env`, else local; the key file `secret.key`; the secret named by [`KEY_SECRET_VAR`],
    /// else [`DEFAULT_KEY_SECRET`]; the `.env` file `.env`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fixes the mode. Unset: `APP_MODE` from the environment, else the last `APP_MODE` of
    /// the `.env` file, else local (see [`globo_secrets::resolve_mode`]).
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Local mode: the key file (default `secret.key`).
    #[must_use]
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = path.into();
        self
    }

    /// Prod mode: the secret holding the key. Unset: the environment variable
    /// [`KEY_SECRET_VAR`], else [`DEFAULT_KEY_SECRET`].
    #[must_use]
    pub fn key_secret(mut self, name: impl Into<String>) -> Self {
        self.key_secret = Some(name.into());
        self
    }

    /// The `.env` file (default `.env`): `APP_MODE`, and in prod mode the AWS settings the
    /// environment does not set. Never the key itself. Not read when the mode or `APP_MODE`
    /// says local.
    #[must_use]
    pub fn env_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.env_file = path.into();
        self
    }
}

/// Where a key lives, resolved from a [`KeySourceConfig`] by [`KeySource::resolve`].
///
/// Each source loads the current key and, during a rotation, the next one as one
/// [`Keyring`]; creates a key once (never replacing one); and rotates crash-safely
/// ([`globo_crypto::rotate_with_store`]). The KMS and Vault Transit sources (planned) will
/// be further variants here, each behind its own cargo feature like `aws`.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeySource {
    /// A key file (local mode), plus `<file>.next` during a rotation.
    File(PathBuf),
    /// A Secrets Manager secret (prod mode): `AWSCURRENT`, plus `AWSPENDING` during a
    /// rotation.
    #[cfg(feature = "aws")]
    SecretsManager(SecretsManagerKeyStore),
}

/// Something a caller should tell its user about the key, found while loading it. Data, not
/// text: the caller decides how to show it (`Display` gives a neutral sentence).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyWarning {
    /// The key file can be accessed by group or others.
    LoosePermissions {
        /// The key file.
        path: PathBuf,
        /// The permission bits it grants group and others (e.g. `0o044` for mode `0644`).
        bits: u32,
    },
    /// An interrupted rotation left a next key behind; both keys are used until the rotation
    /// is run again (with the same files) and completes.
    RotationInProgress {
        /// Where the next key is.
        pending: KeyLocation,
    },
}

/// Where a key (or a version of it) is, for [`KeyWarning`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyLocation {
    /// A key file.
    File(PathBuf),
    /// A version of a secret, by its stage (e.g. `AWSPENDING`).
    Secret {
        /// The secret's name.
        name: String,
        /// The version stage.
        stage: String,
    },
}

impl fmt::Display for KeyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LoosePermissions { path, bits } => write!(
                f,
                "key file '{}' can be accessed by group or others (permission bits {bits:03o})",
                path.display()
            ),
            Self::RotationInProgress { pending: KeyLocation::File(path) } => write!(
                f,
                "an unfinished key rotation was found ('{}' exists); both keys are used until \
                 the rotation is run again with the same files",
                path.display()
            ),
            Self::RotationInProgress { pending: KeyLocation::Secret { name, stage } } => write!(
                f,
                "an unfinished key rotation was found (secret '{name}' has an {stage} version); \
                 both keys are used until the rotation is run again with the same files"
            ),
        }
    }
}

/// The keys a [`KeySource`] holds now, and what to warn about.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoadedKeyring {
    /// The keys: the next one first during a rotation.
    pub keyring: Keyring,
    /// Loose permissions, an interrupted rotation.
    pub warnings: Vec<KeyWarning>,
}

/// How the mode came out, before anything is contacted: local needs nothing more; prod needs
/// the `.env` reading for the AWS settings.
pub(crate) enum Decided {
    Local,
    Prod(EnvFile),
}

impl KeySourceConfig {
    /// Decides the mode. Local mode needs nothing from `.env`: when `mode` or `APP_MODE` says
    /// local, it is not read (a broken `.env` cannot stop a local command). Otherwise it is
    /// read once: the mode and the AWS settings come from the same reading, so a pipe works.
    pub(crate) fn decide(&self, env: &Environment) -> Result<Decided, KeysError> {
        let decided = mode_without_env_file(self.mode, env)?;
        if decided == Some(Mode::Local) {
            return Ok(Decided::Local);
        }
        let file = EnvFile::read(&self.env_file, env)?;
        match resolve_mode(decided, &file, env)? {
            Mode::Prod => Ok(Decided::Prod(file)),
            _ => Ok(Decided::Local),
        }
    }

    /// The secret's name: `key_secret`, else [`KEY_SECRET_VAR`], else [`DEFAULT_KEY_SECRET`].
    #[cfg(feature = "aws")]
    pub(crate) fn secret_name(&self, env: &Environment) -> String {
        use secrecy::ExposeSecret as _;
        match &self.key_secret {
            Some(name) => name.clone(),
            None => env
                .get(KEY_SECRET_VAR)
                .map_or_else(|| DEFAULT_KEY_SECRET.to_owned(), |v| v.expose_secret().to_owned()),
        }
    }
}

impl KeySource {
    /// Where the key lives for `config`, with `env` the process environment
    /// ([`Environment::from_process`]) or a test's. In prod mode this builds the AWS client
    /// (no request is sent to Secrets Manager yet) through the AWS SDK's configuration chain,
    /// which reads the AWS profile files and, when no region or credentials are set otherwise,
    /// may query the EC2 instance metadata service (a network request, with its own
    /// timeouts). Local mode does no I/O beyond reading `.env` (synchronously, bounded) when
    /// the mode is not fixed by [`KeySourceConfig::mode`] or `APP_MODE`.
    pub async fn resolve(config: &KeySourceConfig, env: &Environment) -> Result<Self, KeysError> {
        match config.decide(env)? {
            Decided::Local => Ok(Self::File(config.key_file.clone())),
            Decided::Prod(file) => Self::prod(config, &file, env).await,
        }
    }

    #[cfg(feature = "aws")]
    pub(crate) async fn prod(
        config: &KeySourceConfig,
        file: &EnvFile,
        env: &Environment,
    ) -> Result<Self, KeysError> {
        let name = config.secret_name(env);
        let store = SecretsManagerKeyStore::from_settings(Some(&name), file, env).await?;
        Ok(Self::SecretsManager(store))
    }

    #[cfg(not(feature = "aws"))]
    pub(crate) async fn prod(
        _config: &KeySourceConfig,
        _file: &EnvFile,
        _env: &Environment,
    ) -> Result<Self, KeysError> {
        Err(KeysError::BackendNotCompiled)
    }

    /// `key file 'PATH'` or `secret 'NAME' in AWS Secrets Manager (<endpoint>)`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => format!("key file '{}'", path.display()),
            #[cfg(feature = "aws")]
            Self::SecretsManager(store) => store.describe(),
        }
    }

    /// The current key and, during a rotation, the next one (primary), with warnings. A key
    /// file is read synchronously: the call blocks the calling thread (briefly: two small
    /// files) although it is `async`. A secret is two `GetSecretValue` calls.
    pub async fn load(&self) -> Result<LoadedKeyring, KeysError> {
        match self {
            Self::File(path) => load_file(path),
            #[cfg(feature = "aws")]
            Self::SecretsManager(store) => load_secret(store).await,
        }
    }

    /// Creates the key's home holding `key`: a new key file (mode 0600), or the secret
    /// (`CreateSecret`). Never replaces an existing key: that would make every file encrypted
    /// under it unreadable ([`CryptoError::KeyFileExists`], [`KeysError::AlreadyExists`]).
    /// A key file is written synchronously (atomically, with `fsync`): the call blocks the
    /// calling thread although it is `async`.
    pub async fn create(&self, key: &Key) -> Result<(), KeysError> {
        match self {
            Self::File(path) => KeyFile::create_new(path, key).map(drop).map_err(KeysError::from),
            #[cfg(feature = "aws")]
            Self::SecretsManager(store) => store.create(key).await,
        }
    }

    /// Runs `write` (e.g. an encryption) with the keys current now, excluding a concurrent
    /// rotation meanwhile, so that it cannot retire the key in between and leave the new file
    /// under a retired key: for a key file, under the file's exclusive lock ([`KeyLock`]),
    /// taken before the keys are loaded and released when `write` returns. Secrets Manager
    /// has no lock: an encryption during a rotation uses the pending key, which the rotation
    /// makes current. `on_warning` sees the warnings of the load. `write` encrypts under the
    /// keyring's primary key (the next one during a rotation).
    ///
    /// Blocks: for a key file, the lock, the load and `write` run on the calling thread, and
    /// the lock waits while a rotation of that key runs (which may take as long as
    /// re-encrypting its files). In an async service, call it from `spawn_blocking` if a
    /// rotation may run meanwhile.
    pub async fn write<T, E: From<KeysError>>(
        &self,
        on_warning: impl FnMut(&KeyWarning),
        write: impl FnOnce(&Keyring) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Self::File(path) => write_file(path, on_warning, write),
            #[cfg(feature = "aws")]
            Self::SecretsManager(store) => {
                let loaded = load_secret(store).await?;
                loaded.warnings.iter().for_each(on_warning);
                write(&loaded.keyring)
            }
        }
    }

    /// Replaces the key with a new one and re-encrypts `files` under it, crash-safely (see
    /// [`globo_crypto::rotate_with_store`]; rerun an interrupted rotation to complete it).
    /// `observer` sees each durable step and may stop there. File I/O blocks the calling
    /// thread.
    pub async fn rotate(
        &mut self,
        files: &[PathBuf],
        observer: impl FnMut(&RotationStep) -> ControlFlow<()>,
    ) -> Result<RotationReport, KeysError> {
        match self {
            Self::File(path) => Ok(globo_crypto::rotate_key(path, files, observer)?),
            #[cfg(feature = "aws")]
            Self::SecretsManager(store) => {
                Ok(globo_crypto::rotate_with_store(store, files, observer).await?)
            }
        }
    }

    /// Runs `read` (e.g. a decryption) with the keys current now, and again with the keys
    /// current then if a rotation overtook it (the retry of [`LoadedKeys::read_with`] and
    /// [`globo_crypto::read_with_current_keys`]: at most 16 runs, a real failure returned as
    /// is). `on_warning` sees the warnings of the first load. `read` should only read.
    ///
    /// Blocks: `read` runs on the calling thread, and for a key file so does every load (two
    /// small files each), although the call is `async`. It takes no lock, so it never waits
    /// for a rotation.
    pub async fn read<T>(
        &self,
        mut on_warning: impl FnMut(&KeyWarning),
        mut read: impl FnMut(&Keyring) -> Result<T, CryptoError>,
    ) -> Result<T, KeysError> {
        match self {
            Self::File(path) => read_file(path, &mut on_warning, &mut read),
            #[cfg(feature = "aws")]
            Self::SecretsManager(store) => {
                let mut keys = load_secret(store).await?;
                for warning in &keys.warnings {
                    on_warning(warning);
                }
                // globo_crypto::read_with_current_keys's rule, with an asynchronous `load`.
                for _ in 1..READ_ATTEMPTS {
                    match read(&keys.keyring) {
                        Err(CryptoError::Decryption) => {
                            let now = load_secret(store).await?;
                            if same_keys(&keys.keyring, &now.keyring) {
                                return Err(CryptoError::Decryption.into());
                            }
                            keys = now;
                        }
                        other => return Ok(other?),
                    }
                }
                Ok(read(&keys.keyring)?)
            }
        }
    }
}

/// [`globo_crypto::read_with_current_keys`]'s bound on runs of the reader.
#[cfg(feature = "aws")]
const READ_ATTEMPTS: usize = 16;

#[cfg(feature = "aws")]
fn same_keys(a: &Keyring, b: &Keyring) -> bool {
    use globo_crypto::KeySet as _;
    let (a, b) = (a.keys(), b.keys());
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
}

pub(crate) fn load_file(path: &Path) -> Result<LoadedKeyring, KeysError> {
    let loaded = LoadedKeys::load(path)?;
    let warnings = file_warnings(&loaded);
    Ok(LoadedKeyring { keyring: loaded.into_keyring(), warnings })
}

pub(crate) fn write_file<T, E: From<KeysError>>(
    path: &Path,
    on_warning: impl FnMut(&KeyWarning),
    write: impl FnOnce(&Keyring) -> Result<T, E>,
) -> Result<T, E> {
    let _lock = KeyLock::acquire(path).map_err(KeysError::from)?;
    let loaded = load_file(path)?;
    loaded.warnings.iter().for_each(on_warning);
    write(&loaded.keyring)
}

pub(crate) fn read_file<T>(
    path: &Path,
    on_warning: &mut impl FnMut(&KeyWarning),
    read: &mut impl FnMut(&Keyring) -> Result<T, CryptoError>,
) -> Result<T, KeysError> {
    let mut warned = false;
    Ok(LoadedKeys::read_with(path, |loaded| {
        if !std::mem::replace(&mut warned, true) {
            for warning in file_warnings(loaded) {
                on_warning(&warning);
            }
        }
        read(loaded.keyring())
    })?)
}

fn file_warnings(loaded: &LoadedKeys) -> Vec<KeyWarning> {
    let mut warnings: Vec<KeyWarning> = loaded
        .files()
        .iter()
        .filter_map(|file| {
            file.loose_permissions()
                .map(|bits| KeyWarning::LoosePermissions { path: file.path().to_path_buf(), bits })
        })
        .collect();
    if let [_, next] = loaded.files() {
        warnings.push(KeyWarning::RotationInProgress {
            pending: KeyLocation::File(next.path().to_path_buf()),
        });
    }
    warnings
}

#[cfg(feature = "aws")]
pub(crate) async fn load_secret(
    store: &SecretsManagerKeyStore,
) -> Result<LoadedKeyring, KeysError> {
    let keys = store.load_keys().await?;
    let mut warnings = Vec::new();
    if keys.rotation_in_progress() {
        warnings.push(KeyWarning::RotationInProgress {
            pending: KeyLocation::Secret {
                name: store.name().to_owned(),
                stage: AWS_PENDING.to_owned(),
            },
        });
    }
    Ok(LoadedKeyring { keyring: keys.keyring(), warnings })
}
