//! The no-echo password prompt, and what Ctrl-C does at it and after it.
//!
//! rpassword reads the terminal in raw mode: no echo and no signals (ISIG off), so a Ctrl-C
//! typed at the prompt reaches only `app`, never the rest of the terminal's foreground job.
//! rpassword answers it by raising SIGINT itself. Under the default disposition that kills
//! the process before rpassword restores the terminal, leaving it without echo. So before the
//! first prompt a SIGINT handler is installed: during a prompt rpassword restores the terminal
//! and returns `Interrupted`, and `app` exits with 130 (128 + SIGINT, what a shell reports
//! for Ctrl-C).
//!
//! A signal handler stays for the rest of the process (removing it needs unsafe code), so a
//! watcher thread gives SIGINT its usual meaning back outside the prompt: a SIGINT while no
//! prompt is open (say, while `app` waits for the lock of `users.json`) prints
//! `error: interrupted` and exits with 130 at once. Exiting there is safe: every file is
//! replaced atomically (the old or the new content, nothing in between) and the kernel
//! releases the lock.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use secrecy::SecretString;

use crate::failure::Failure;

/// Whether a prompt is open; the watcher leaves SIGINT to rpassword while it is.
static PROMPT_OPEN: AtomicBool = AtomicBool::new(false);

/// Whether the SIGINT handler and its watcher thread are installed (once per process).
static WATCHING: OnceLock<bool> = OnceLock::new();

/// Prompts on the terminal without echo and reads one password.
pub(crate) fn password(text: &str) -> Result<SecretString, Failure> {
    watch_interrupts();
    PROMPT_OPEN.store(true, Ordering::SeqCst);
    match rpassword::prompt_password(text) {
        Ok(password) => {
            PROMPT_OPEN.store(false, Ordering::SeqCst);
            Ok(SecretString::from(password))
        }
        // The prompt stays "open": the SIGINT rpassword raised is this one, reported once.
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(Failure::interrupted()),
        Err(e) => {
            PROMPT_OPEN.store(false, Ordering::SeqCst);
            Err(Failure::msg(format!("Cannot read the password from the terminal: {e}")))
        }
    }
}

/// Installs the SIGINT handler (tokio's, already in the build) and starts the thread that
/// exits with 130 on a SIGINT outside the prompt. Without a handler (it could not be
/// installed), Ctrl-C still ends the prompt and the process, by the signal, as before.
fn watch_interrupts() {
    WATCHING.get_or_init(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_io().build() else {
            return false;
        };
        // Registered here, before the prompt opens; only the waiting moves to the thread.
        let signal = {
            let _entered = runtime.enter();
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        };
        let Ok(mut signal) = signal else { return false };
        std::thread::spawn(move || {
            while runtime.block_on(signal.recv()).is_some() {
                if !PROMPT_OPEN.load(Ordering::SeqCst) {
                    Failure::interrupted().exit();
                }
            }
        });
        true
    });
}
