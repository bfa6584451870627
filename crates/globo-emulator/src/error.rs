//! The one error type of globo-emulator.

use std::io;
use std::path::PathBuf;

/// Why the emulator could not be found, installed or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// No `moto_server` was found and installing it into the project venv failed.
    #[error(
        "moto_server not found (GLOBO_MOTO_SERVER, {venv}, PATH) and installing it with \
         '{script}' failed: {reason}; run scripts/python-env yourself or set GLOBO_MOTO_SERVER"
    )]
    NotInstalled {
        /// The project venv's `moto_server` that was looked for.
        venv: PathBuf,
        /// The install script that was run.
        script: PathBuf,
        /// What went wrong while installing.
        reason: String,
    },
    /// `GLOBO_MOTO_SERVER` names a file that does not exist.
    #[error("GLOBO_MOTO_SERVER is set to '{}', which does not exist; fix or unset it", .0.display())]
    BadOverride(PathBuf),
    /// The emulator process could not be started.
    #[error("cannot start '{}'", program.display())]
    Spawn {
        /// The program that was run.
        program: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The emulator exited before it answered (often: the port is already in use).
    #[error(
        "moto_server exited during startup on 127.0.0.1:{port} ({status}); its last output: {output}"
    )]
    ExitedEarly {
        /// The port it was asked to listen on.
        port: u16,
        /// Its exit status.
        status: String,
        /// The tail of its stderr.
        output: String,
    },
    /// The emulator did not answer within the startup deadline.
    #[error(
        "moto_server did not answer on http://127.0.0.1:{port}/moto-api/ within {seconds}s; \
             is the machine overloaded? its last output: {output}"
    )]
    NotReady {
        /// The port it was asked to listen on.
        port: u16,
        /// How long we waited.
        seconds: u64,
        /// The tail of its stderr.
        output: String,
    },
    /// Another process listens on the requested port, so the emulator cannot use it. The
    /// message states the fact only; what to do (stop that process, or choose another port
    /// and how) is for the caller to say.
    #[error("127.0.0.1:{port} is already in use by another process")]
    PortInUse {
        /// The requested port.
        port: u16,
    },
    /// The requested port could not be checked (for instance a privileged port).
    #[error("cannot use 127.0.0.1:{port}")]
    PortUnavailable {
        /// The requested port.
        port: u16,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// `moto_server` was not found and there is no project venv to install it into: the
    /// current directory is not inside a globo checkout.
    #[error(
        "moto_server not found (GLOBO_MOTO_SERVER, PATH) and '{}' is not inside a globo \
         checkout (a folder with Cargo.toml, python/requirements.txt and scripts/python-env); \
         run from the checkout, set GLOBO_PROJECT_DIR to it, or set GLOBO_MOTO_SERVER",
        start.display()
    )]
    NoProject {
        /// The directory the search started from.
        start: PathBuf,
    },
    /// The globo checkout found upwards from the current directory could have been planted or
    /// changed by another user, so nothing in it is run.
    #[error(
        "not running anything from '{}', found as the globo checkout above the current \
         directory: '{}' {problem}; use a checkout you own, or name one with \
         GLOBO_PROJECT_DIR, or set GLOBO_MOTO_SERVER",
        dir.display(),
        path.display()
    )]
    UntrustedProject {
        /// The folder that looked like a checkout.
        dir: PathBuf,
        /// The file or folder in it that failed the check.
        path: PathBuf,
        /// What is wrong with it: its owner or its mode.
        problem: String,
    },
    /// No free loopback port could be reserved.
    #[error("cannot reserve a free port on 127.0.0.1")]
    NoFreePort(#[source] io::Error),
}
