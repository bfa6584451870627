//! [`KeySource`] for synchronous programs (a CLI, a batch job): the same calls, blocking.

use std::ops::ControlFlow;
use std::path::PathBuf;

use globo_crypto::{CryptoError, Key, KeyLock, Keyring, RotationReport, RotationStep};
use globo_secrets::Environment;

use crate::source::{Decided, load_file, read_file};
use crate::{KeySource, KeySourceConfig, KeyWarning, KeysError, LoadedKeyring};

/// A [`KeySource`] with the means to call it from synchronous code.
///
/// Local mode starts no runtime (a key file needs none) and, when `mode` or `APP_MODE` says
/// local, does not read `.env`; prod mode starts one current-thread tokio runtime, used by
/// every call on this value. Do not use it from inside an async runtime (tokio refuses to
/// block there): use [`KeySource`] there.
#[derive(Debug)]
pub struct BlockingKeySource {
    source: KeySource,
    #[cfg(feature = "aws")]
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingKeySource {
    /// [`KeySource::resolve`], blocking.
    pub fn resolve(config: &KeySourceConfig, env: &Environment) -> Result<Self, KeysError> {
        match config.decide(env)? {
            Decided::Local => Ok(Self::local(config.key_file.clone())),
            #[cfg(feature = "aws")]
            Decided::Prod(file) => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| KeysError::Runtime { source })?;
                let source = runtime.block_on(KeySource::prod(config, &file, env))?;
                Ok(Self { source, runtime: Some(runtime) })
            }
            #[cfg(not(feature = "aws"))]
            Decided::Prod(_) => Err(KeysError::BackendNotCompiled),
        }
    }

    /// The key file `path` (local mode), without deciding a mode: for a program that only
    /// ever uses a key file.
    pub fn key_file(path: impl Into<PathBuf>) -> Self {
        Self::local(path.into())
    }

    fn local(path: PathBuf) -> Self {
        Self {
            source: KeySource::File(path),
            #[cfg(feature = "aws")]
            runtime: None,
        }
    }

    /// The source: which kind it is, and its name for messages ([`KeySource::describe`]).
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// [`KeySource::load`], blocking.
    pub fn load(&self) -> Result<LoadedKeyring, KeysError> {
        match &self.source {
            KeySource::File(path) => load_file(path),
            #[cfg(feature = "aws")]
            other => self.block_on(other.load()),
        }
    }

    /// [`KeySource::create`], blocking.
    pub fn create(&self, key: &Key) -> Result<(), KeysError> {
        match &self.source {
            KeySource::File(path) => {
                globo_crypto::KeyFile::create_new(path, key).map(drop).map_err(KeysError::from)
            }
            #[cfg(feature = "aws")]
            other => self.block_on(other.create(key)),
        }
    }

    /// [`KeySource::write_lock`].
    pub fn write_lock(&self) -> Result<Option<KeyLock>, KeysError> {
        self.source.write_lock()
    }

    /// [`KeySource::rotate`], blocking.
    pub fn rotate(
        &mut self,
        files: &[PathBuf],
        observer: impl FnMut(&RotationStep) -> ControlFlow<()>,
    ) -> Result<RotationReport, KeysError> {
        match &mut self.source {
            KeySource::File(path) => Ok(globo_crypto::rotate_key(path, files, observer)?),
            #[cfg(feature = "aws")]
            other => {
                let runtime = self.runtime.as_ref().ok_or_else(no_runtime)?;
                runtime.block_on(other.rotate(files, observer))
            }
        }
    }

    /// [`KeySource::read`], blocking.
    pub fn read<T>(
        &self,
        mut on_warning: impl FnMut(&KeyWarning),
        mut read: impl FnMut(&Keyring) -> Result<T, CryptoError>,
    ) -> Result<T, KeysError> {
        match &self.source {
            KeySource::File(path) => read_file(path, &mut on_warning, &mut read),
            #[cfg(feature = "aws")]
            other => self.block_on(other.read(on_warning, read)),
        }
    }

    #[cfg(feature = "aws")]
    fn block_on<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, KeysError>>,
    ) -> Result<T, KeysError> {
        self.runtime.as_ref().ok_or_else(no_runtime)?.block_on(future)
    }
}

/// A prod source is only ever built with its runtime; kept as an error rather than a panic.
#[cfg(feature = "aws")]
fn no_runtime() -> KeysError {
    KeysError::Runtime {
        source: std::io::Error::other("the key source was resolved without its runtime"),
    }
}
