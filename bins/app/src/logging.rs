//! Logs on stderr, for the security events of globo-auth (target `globo_auth::security`)
//! and anything else a library logs: only when `RUST_LOG` enables them (tracing-subscriber's
//! `EnvFilter` syntax, e.g. `RUST_LOG=globo_auth=info`), so with `RUST_LOG` unset `app`
//! prints exactly what it printed before. `--log-format json` writes one JSON object per
//! line, the event's fields at the top level, for a log collector.

use tracing_subscriber::EnvFilter;

use crate::failure::Failure;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the stderr subscriber when `RUST_LOG` is set and not empty; a filter that does
/// not parse is refused (an operator who asked for logs must not silently get none).
pub(crate) fn init(format: LogFormat) -> Result<(), Failure> {
    let Some(directives) = std::env::var_os("RUST_LOG").filter(|value| !value.is_empty()) else {
        return Ok(());
    };
    let directives = directives
        .into_string()
        .map_err(|_| Failure::msg("RUST_LOG is not valid UTF-8: fix or unset it."))?;
    let filter = EnvFilter::try_new(&directives).map_err(|e| {
        Failure::msg(format!("RUST_LOG is not a valid log filter ({e}): fix or unset it."))
    })?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| Failure::msg(format!("cannot start logging: {e}")))
}
