//! Reporting an error with its causes: the error's message, then each error of its
//! [`source()`](std::error::Error::source) chain on an indented `caused by:` line.
//!
//! A service logs or returns a globo error with [`Report`] (or [`with_causes`], its
//! `String`); globo's binaries print failures the same way. globo-auth, globo-fs,
//! globo-emulator, globo-crypto, globo-secrets and globo-keys re-export both, as does the
//! facade (`globo_auth::Report`, `globo_fs::Report`, `globo::with_causes`, ...), so a service
//! that takes one crate piecemeal has the formatter without naming this one.
//!
//! ```
//! use std::{error::Error, fmt, io};
//!
//! #[derive(Debug)]
//! struct ReadFailed(io::Error);
//!
//! impl fmt::Display for ReadFailed {
//!     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
//!         f.write_str("cannot read 'users.json'") // the cause is not repeated here
//!     }
//! }
//!
//! impl Error for ReadFailed {
//!     fn source(&self) -> Option<&(dyn Error + 'static)> {
//!         Some(&self.0)
//!     }
//! }
//!
//! let error = ReadFailed(io::Error::new(io::ErrorKind::PermissionDenied, "permission denied"));
//! let report = globo_report::Report::new(&error);
//! assert_eq!(report.to_string(), "cannot read 'users.json'\n  caused by: permission denied");
//! // `{:#}` puts the chain on one line, for a log record.
//! assert_eq!(format!("{report:#}"), "cannot read 'users.json': permission denied");
//! assert_eq!(globo_report::with_causes(&error), report.to_string());
//! ```
//!
//! # The rule every globo error type follows
//!
//! A message whose error has a [`source()`](std::error::Error::source) does not repeat the
//! source's text: the report prints each cause once, on its own line. globo's error types
//! keep that rule (a test runs the report over each crate's errors and fails on a cause
//! printed twice). globo's errors never hold a password, key or secret value, so a report
//! of one is safe to print or log.
//!
//! Formatting walks the chain and allocates nothing beyond the output ([`with_causes`]
//! allocates its `String`); it never blocks.
#![forbid(unsafe_code)]

use std::error::Error;
use std::fmt::{self, Write as _};

/// Displays an error followed by its [`source()`](Error::source) chain: the message, then one
/// `\n  caused by: <cause>` line per cause. A message that spans several lines keeps its
/// shape: its further lines are indented by two spaces (the error's own) or four (a cause's),
/// so they never read as a new cause or a new error. The alternate form (`{:#}`) joins
/// everything on one line with `: ` instead (line breaks inside a message become spaces), for
/// log records. `Debug` prints the same as `Display`, so `{:?}` in logs reads as a report too.
///
/// A `Report` borrows its error, so it is made where the error is handled, not returned; a
/// binary's `main` reports and exits:
///
/// ```
/// # fn run() -> Result<(), std::io::Error> { Ok(()) }
/// fn main() -> std::process::ExitCode {
///     match run() {
///         Ok(()) => std::process::ExitCode::SUCCESS,
///         Err(error) => {
///             eprintln!("error: {}", globo_report::Report::new(&error));
///             std::process::ExitCode::FAILURE
///         }
///     }
/// }
/// ```
#[derive(Clone, Copy)]
pub struct Report<'a> {
    error: &'a (dyn Error + 'static),
}

impl<'a> Report<'a> {
    /// A report of `error` and its causes.
    pub fn new(error: &'a (dyn Error + 'static)) -> Self {
        Self { error }
    }

    /// The error and each of its causes, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = &'a (dyn Error + 'static)> + use<'a> {
        std::iter::successors(Some(self.error), |&error| error.source())
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one_line = f.alternate();
        let (separator, error_indent, cause_indent) =
            if one_line { (": ", " ", " ") } else { ("\n  caused by: ", "\n  ", "\n    ") };
        let mut chain = self.chain();
        if let Some(error) = chain.next() {
            write!(LineBreaks { out: f, replacement: error_indent }, "{error}")?;
        }
        for cause in chain {
            f.write_str(separator)?;
            write!(LineBreaks { out: f, replacement: cause_indent }, "{cause}")?;
        }
        Ok(())
    }
}

/// Writes through to `out`, with every line break replaced by `replacement` (a line break and
/// an indentation, or a space).
struct LineBreaks<'a, 'b> {
    out: &'a mut fmt::Formatter<'b>,
    replacement: &'static str,
}

impl fmt::Write for LineBreaks<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut lines = text.split('\n');
        if let Some(first) = lines.next() {
            self.out.write_str(first)?;
        }
        for line in lines {
            self.out.write_str(self.replacement)?;
            self.out.write_str(line)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An error's message followed by its `source()` chain, one indented `caused by:` line each
/// ([`Report`] as a `String`): how globo's binaries and demo report a failure.
///
/// ```
/// let error = std::io::Error::other("the disk is full");
/// assert_eq!(globo_report::with_causes(&error), "the disk is full");
/// ```
pub fn with_causes(error: &(dyn Error + 'static)) -> String {
    Report::new(error).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn every_cause_gets_its_own_line_once() {
        let error =
            Layer("outer", Some(Box::new(Layer("middle", Some(Box::new(Layer("os", None)))))));
        assert_eq!(with_causes(&error), "outer\n  caused by: middle\n  caused by: os");
        assert_eq!(format!("{:#}", Report::new(&error)), "outer: middle: os");
        assert_eq!(format!("{:?}", Report::new(&error)), with_causes(&error));
        assert_eq!(Report::new(&error).chain().count(), 3);
        assert_eq!(with_causes(&Layer("alone", None)), "alone");
    }

    /// Review: a message with line breaks (a parser's excerpt, say) printed its further lines
    /// at the left margin, where they read as a new error; in the one-line form they broke the
    /// log record.
    #[test]
    fn a_message_on_several_lines_keeps_its_lines_under_it() {
        let error = Layer(
            "cannot parse 'config.json'\nat line 2",
            Some(Box::new(Layer("expected ':'\n  {\"a\" 1}", None))),
        );
        assert_eq!(
            with_causes(&error),
            "cannot parse 'config.json'\n  at line 2\n  caused by: expected ':'\n      {\"a\" 1}"
        );
        assert_eq!(
            format!("{:#}", Report::new(&error)),
            "cannot parse 'config.json' at line 2: expected ':'   {\"a\" 1}"
        );
    }
}

// The crate page's example (README.md, shipped in the package) runs as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
