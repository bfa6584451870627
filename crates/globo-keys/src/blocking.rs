//! [`KeySource`] for synchronous programs (a CLI, a batch job): the same calls, blocking.

use std::ops::ControlFlow;
use std::path::PathBuf;

use globo_crypto::{CryptoError, Key, Keyring, RotationReport, RotationStep};
use globo_secrets::Environment;

use crate::source::{Decided, load_file, read_file, write_file};
use crate::{KeySource, KeySourceConfig, KeyWarning, KeysError, LoadedKeyring};

/// A [`KeySource`] with the means to call it from synchronous code.
///
/// Local mode starts no runtime (a key file needs none) and, when `mode` or `APP_MODE` says
/// local, does not read `.env`; prod mode starts one current-thread tokio runtime, used by
/// every call on this value. Every call blocks the calling thread.
///
/// Not for async code: called on a thread that runs a tokio runtime, [`resolve`] in prod mode
/// and every call that would block on the prod runtime return
/// [`KeysError::InsideAsyncRuntime`] instead of panicking; use [`KeySource`] there. (Local
/// mode starts no runtime and works there, blocking the runtime's thread on file I/O.)
/// Dropped there, its runtime is shut down in the background.
///
/// [`resolve`]: BlockingKeySource::resolve
#[derive(Debug)]
pub struct BlockingKeySource {
    source: KeySource,
    #[cfg(feature = "aws")]
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingKeySource {
    /// [`KeySource::resolve`], blocking. In prod mode, [`KeysError::InsideAsyncRuntime`] on a
    /// thread that runs an async runtime.
    pub fn resolve(config: &KeySourceConfig, env: &Environment) -> Result<Self, KeysError> {
        match config.decide(env)? {
            Decided::Local => Ok(Self::local(config.key_file.clone())),
            #[cfg(feature = "aws")]
            Decided::Prod(file) => {
                refuse_inside_runtime()?;
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

    /// [`KeySource::write`], blocking: for a key file, waits for the file's lock while a
    /// rotation runs.
    pub fn write<T, E: From<KeysError>>(
        &self,
        on_warning: impl FnMut(&KeyWarning),
        write: impl FnOnce(&Keyring) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.source {
            KeySource::File(path) => write_file(path, on_warning, write),
            #[cfg(feature = "aws")]
            other => self.block_on(other.write(on_warning, write)),
        }
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
                refuse_inside_runtime()?;
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
    fn block_on<T, E: From<KeysError>>(
        &self,
        future: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        refuse_inside_runtime()?;
        self.runtime.as_ref().ok_or_else(no_runtime)?.block_on(future)
    }
}

#[cfg(feature = "aws")]
impl Drop for BlockingKeySource {
    fn drop(&mut self) {
        // Dropping a runtime where blocking is not allowed panics: let it stop on its own.
        if let Some(runtime) = self.runtime.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            runtime.shutdown_background();
        }
    }
}

/// [`KeysError::InsideAsyncRuntime`] on a thread that runs a tokio runtime, where blocking on
/// a future panics. (Without the `aws` feature there is no runtime to block on.)
#[cfg(feature = "aws")]
fn refuse_inside_runtime() -> Result<(), KeysError> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Err(KeysError::InsideAsyncRuntime),
        Err(_) => Ok(()),
    }
}

/// A prod source is only ever built with its runtime; kept as an error rather than a panic.
#[cfg(feature = "aws")]
fn no_runtime() -> KeysError {
    KeysError::Runtime {
        source: std::io::Error::other("the key source was resolved without its runtime"),
    }
}
