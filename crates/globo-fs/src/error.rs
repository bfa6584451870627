//! The crate's one error type.

use std::io;
use std::path::{Path, PathBuf};

/// A file operation that failed, with the path it failed on.
///
/// The message names the operation and the path (`cannot read 'users.json'`); the underlying
/// [`io::Error`] is the [`source`](std::error::Error::source), not repeated in the message, so
/// a [`Report`](crate::Report) prints it once, on its own line. File contents never appear in
/// either.
#[derive(Debug, thiserror::Error)]
#[error("cannot {operation} '{}'", path.display())]
pub struct FsError {
    operation: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

impl FsError {
    /// Wraps `source`, recording what was being done (`"read"`, `"write"`, ...) and to which path.
    pub fn new(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self { operation, path: path.into(), source }
    }

    /// The path the operation failed on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What kind of I/O failure this was (for example [`io::ErrorKind::AlreadyExists`]).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// The underlying I/O error, for callers that report the path themselves.
    pub fn into_io_error(self) -> io::Error {
        self.source
    }
}
