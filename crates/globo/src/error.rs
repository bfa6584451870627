//! The one error type of the `globo` facade (the re-exported crates keep their own).

use std::io;

/// Why [`harden_process`](crate::harden_process) could not make the process safe to hold
/// secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HardeningError {
    /// The core-file size limit could not be set to zero, so a crash could write the process's
    /// memory (passwords, keys, secret values) to a core file.
    #[error("cannot disable core files for this process (setrlimit RLIMIT_CORE)")]
    CoreLimit(#[source] io::Error),
    /// The process could not be marked non-dumpable, so it could still be dumped, and traced by
    /// other processes of the same user.
    #[error("cannot mark this process non-dumpable (prctl PR_SET_DUMPABLE)")]
    NotDumpable(#[source] io::Error),
}
