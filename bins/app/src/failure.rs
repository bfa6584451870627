//! How a failed command is reported: `error: ` and its message on stderr (the prefix clap
//! uses for usage errors), then its causes on indented lines, then an exit code.

use std::error::Error;
use std::process::ExitCode;

/// Exit code for every failure (documented in the README and `app --help`), including output
/// that could not be written; clap uses 2 for usage errors.
pub(crate) const EXIT_FAILURE: u8 = 1;

/// Exit code for Ctrl-C at the password prompt (or SIGINT after it): 128 + SIGINT, what a shell reports for a
/// command that Ctrl-C ended.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

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

    /// Ctrl-C at the password prompt, or SIGINT after it (exit code 130).
    pub(crate) fn interrupted() -> Self {
        Self { message: "interrupted".into(), code: EXIT_INTERRUPTED }
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

    /// Like [`Failure::report`], then ends the process at once with the exit code, from any
    /// thread (no destructor runs; for a SIGINT that must not wait for the main thread).
    pub(crate) fn exit(self) -> ! {
        crate::out::warnln!("error: {}", self.message);
        std::process::exit(i32::from(self.code))
    }
}

pub(crate) use globo::with_causes;
