//! How a failed command is reported: `error: ` and its message on stderr (the prefix clap
//! uses for usage errors), then its causes on indented lines, then an exit code.

use std::error::Error;
use std::process::ExitCode;

/// Exit code for every failure (documented in the README and `app --help`), including output
/// that could not be written; clap uses 2 for usage errors, and Ctrl-C at the password prompt
/// ends the process by SIGINT (130 in the shell).
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

    /// Prints `error: <message>` to stderr (best effort: a closed stderr is no reason to
    /// panic) and returns the exit code.
    pub(crate) fn report(self) -> ExitCode {
        crate::out::warnln!("error: {}", self.message);
        ExitCode::from(self.code)
    }
}

pub(crate) use globo::with_causes;
