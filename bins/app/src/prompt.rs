//! The no-echo password prompt, and what Ctrl-C at it does.
//!
//! rpassword reads the terminal in raw mode (no echo, no signals) and answers Ctrl-C by
//! raising SIGINT itself. Under the default disposition that kills the process before
//! rpassword restores the terminal, leaving it without echo. While the prompt is open a
//! SIGINT handler is installed instead, so rpassword restores the terminal and returns
//! `Interrupted`, and `app` exits with 130 (128 + SIGINT, what a shell reports for Ctrl-C).

use std::io;

use secrecy::SecretString;

use crate::failure::Failure;

/// Prompts on the terminal without echo and reads one password.
pub(crate) fn password(text: &str) -> Result<SecretString, Failure> {
    let _catching = CatchInterrupt::install();
    match rpassword::prompt_password(text) {
        Ok(password) => Ok(SecretString::from(password)),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(Failure::interrupted()),
        Err(e) => Err(Failure::msg(format!("Cannot read the password from the terminal: {e}"))),
    }
}

/// A SIGINT handler (tokio's, already in the build) for as long as it lives. Once installed
/// the handler stays for the rest of the process, which is short: a Ctrl-C after the prompt
/// lets the hash and the write finish, which end within a second.
struct CatchInterrupt {
    _signal: Option<(tokio::runtime::Runtime, tokio::signal::unix::Signal)>,
}

impl CatchInterrupt {
    fn install() -> Self {
        let signal =
            tokio::runtime::Builder::new_current_thread().enable_io().build().ok().and_then(
                |runtime| {
                    let signal = {
                        let _entered = runtime.enter();
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                    };
                    // Without a handler, Ctrl-C still ends the prompt (by the signal, as before).
                    signal.ok().map(|signal| (runtime, signal))
                },
            );
        Self { _signal: signal }
    }
}
