//! How a failed command is reported: one message on stderr, then its causes, then an exit code.

use std::error::Error;
use std::process::ExitCode;

/// Exit code for every failure (documented in the README); clap uses 2 for usage errors.
pub(crate) const EXIT_FAILURE: u8 = 1;

/// A failed command: what to print on stderr and which exit code to return.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// A failure with a plain message and exit code 1.
    pub(crate) fn msg(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: EXIT_FAILURE }
    }

    /// A failure from an error, with its whole `source()` chain on indented lines.
    pub(crate) fn from_error(error: &(dyn Error + 'static)) -> Self {
        Self::msg(with_causes(error))
    }

    /// Prints the message to stderr and returns the exit code.
    pub(crate) fn report(self) -> ExitCode {
        eprintln!("{}", self.message);
        ExitCode::from(self.code)
    }
}

pub(crate) use globo::with_causes;
