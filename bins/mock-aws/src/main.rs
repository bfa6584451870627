//! `mock-aws`: runs the local AWS emulator (moto) on 127.0.0.1:5000 in the foreground, like the
//! lab's `mock-aws`. Ctrl-C (or SIGTERM) stops it.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use globo_emulator::{Emulator, EmulatorError, LAB_PORT, Options};
use tokio::signal::unix::{SignalKind, signal};

/// Run moto_server on the loopback interface until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "mock-aws", version, about)]
struct Cli {
    /// The port on 127.0.0.1.
    #[arg(long, default_value_t = LAB_PORT)]
    port: u16,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            say(format_args!("error: cannot start the async runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.port))
}

async fn run(port: u16) -> ExitCode {
    // Handlers first, so a Ctrl-C during start-up still stops (and reaps) the emulator.
    let (Ok(mut interrupt), Ok(mut terminate)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        say(format_args!("error: cannot install signal handlers"));
        return ExitCode::FAILURE;
    };
    let options = Options { port: Some(port), inherit_output: true, ..Options::default() };
    let started = tokio::task::spawn_blocking(move || Emulator::start(options)).await;
    let mut emulator = match started {
        Ok(Ok(emulator)) => emulator,
        Ok(Err(error)) => {
            let hint = match error {
                EmulatorError::PortInUse { .. } => {
                    "; stop that process, or choose another port with --port"
                }
                _ => "",
            };
            say(format_args!("error: {}{hint}", globo_emulator::Report::new(&error)));
            return ExitCode::FAILURE;
        }
        Err(error) => {
            say(format_args!("error: {error}"));
            return ExitCode::FAILURE;
        }
    };
    say(format_args!(
        "{} is up ({}); point clients at it with AWS_ENDPOINT_URL={} AWS_REGION=us-east-1 \
         and any credentials. Ctrl-C stops it.",
        emulator.endpoint_url(),
        emulator.program().display(),
        emulator.endpoint_url()
    ));
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            () = tokio::time::sleep(Duration::from_millis(250)) => {
                if let Some(status) = emulator.try_wait() {
                    say(format_args!("error: moto_server exited by itself ({status})"));
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    emulator.stop();
    say(format_args!("stopped"));
    ExitCode::SUCCESS
}

/// One line on stderr, prefixed `mock-aws: `; best effort, so that a closed stderr is no panic.
fn say(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "mock-aws: {message}");
}
