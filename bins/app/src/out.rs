//! Everything `app` prints goes through here. `println!`/`eprintln!` panic when the stream is
//! closed (`app ... | head -c0`), and the release profile aborts on panic; here a failed write
//! to standard output is a [`Failure`] (exit 1, reported on stderr), never a panic.

use std::fmt;
use std::io::{self, Write as _};

use crate::failure::Failure;

/// Writes `bytes` to standard output and flushes them.
pub(crate) fn bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes).and_then(|()| stdout.flush()).map_err(|e| stdout_failure(&e))
}

/// Writes one formatted line to standard output and flushes it (see [`outln!`]).
pub(crate) fn line(args: fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{args}").and_then(|()| stdout.flush()).map_err(|e| stdout_failure(&e))
}

/// The failure for output that could not be delivered: the command's effect (a registered
/// user, a written file) stands, but whoever reads stdout did not get its report or value, so
/// the exit code must not be 0.
pub(crate) fn stdout_failure(error: &io::Error) -> Failure {
    Failure::msg(format!("cannot write to standard output: {error}"))
}

/// Writes one formatted line to standard error, best effort: with stderr closed there is no
/// one left to tell, and that must not turn into a panic (see [`warnln!`]).
pub(crate) fn err_line(args: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{args}");
}

/// `println!` that returns `Result<(), Failure>` instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::out::line(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics.
macro_rules! warnln {
    ($($arg:tt)*) => { $crate::out::err_line(format_args!($($arg)*)) };
}

pub(crate) use {outln, warnln};
