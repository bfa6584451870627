//! Logs on stderr, for the security events of globo-auth (target `globo_auth::security`)
//! and the other logs of globo's own crates: only when `RUST_LOG` enables them
//! (tracing-subscriber's `EnvFilter` syntax, e.g. `RUST_LOG=globo_auth=info`), so with
//! `RUST_LOG` unset `app` prints exactly what it printed before. `--log-format json` writes
//! one JSON object per line, the event's fields at the top level, for a log collector.
//!
//! Only targets of globo's crates (`globo`, `globo_*`) are ever written, whatever `RUST_LOG`
//! says: the AWS SDK's trace logs dump request bodies, and the body of `config init-key
//! --mode prod` or `rotate-key` is the new Fernet key.
//!
//! The format and `RUST_LOG` are read only when `RUST_LOG` is set and not empty: a stale
//! `GLOBO_LOG_FORMAT` never stops a command that logs nothing. When logging is asked for, a
//! format or filter that does not parse is refused (an operator who asked for logs must not
//! silently get none).

use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, filter};

use crate::failure::Failure;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `text` or `json`, in any case.
    fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("text") {
            Some(Self::Text)
        } else if name.eq_ignore_ascii_case("json") {
            Some(Self::Json)
        } else {
            None
        }
    }
}

/// Whether `target` is one of globo's crates (`globo`, `globo_auth::security`, ...).
fn is_globo_target(target: &str) -> bool {
    target
        .strip_prefix("globo")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('_') || rest.starts_with("::"))
}

/// Installs the stderr subscriber when `RUST_LOG` is set and not empty, writing in `format`
/// (`text` or `json`, any case; the value of `--log-format` / `GLOBO_LOG_FORMAT`).
pub(crate) fn init(format: &str) -> Result<(), Failure> {
    let Some(directives) = std::env::var_os("RUST_LOG").filter(|value| !value.is_empty()) else {
        return Ok(());
    };
    let format = LogFormat::parse(format).ok_or_else(|| {
        Failure::msg(format!(
            "the log format '{}' is not text or json: fix --log-format or GLOBO_LOG_FORMAT.",
            format.escape_debug()
        ))
    })?;
    let directives = directives
        .into_string()
        .map_err(|_| Failure::msg("RUST_LOG is not valid UTF-8: fix or unset it."))?;
    let env_filter = EnvFilter::try_new(&directives).map_err(|e| {
        Failure::msg(format!("RUST_LOG is not a valid log filter ({e}): fix or unset it."))
    })?;
    let only_globo = filter::filter_fn(|metadata| is_globo_target(metadata.target()));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let layer = match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer.json().flatten_event(true).boxed(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(env_filter).with_filter(only_globo))
        .try_init()
        .map_err(|e| Failure::msg(format!("cannot start logging: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_globo_crates_are_globo_targets() {
        for target in ["globo", "globo_auth::security", "globo::x", "globo_secrets"] {
            assert!(is_globo_target(target), "{target}");
        }
        for target in ["aws_smithy_runtime::client", "hyper", "globox", "app", ""] {
            assert!(!is_globo_target(target), "{target}");
        }
    }

    #[test]
    fn formats_are_read_in_any_case() {
        assert_eq!(LogFormat::parse("JSON"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("Text"), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("xml"), None);
    }
}
