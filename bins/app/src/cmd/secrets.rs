//! `app secrets ...`: read a secret through globo-secrets.

use std::io::Write as _;
use std::path::PathBuf;

use globo::secrets::{Environment, Mode, SecretValue, provider_for};
use secrecy::ExposeSecret;

use crate::failure::Failure;

/// The `app secrets` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SecretsCommand {
    /// Print a secret's value to stdout, followed by a newline (binary secrets: raw bytes).
    Get(GetArgs),
}

/// Arguments of `app secrets get`.
#[derive(Debug, clap::Args)]
pub(crate) struct GetArgs {
    /// The secret's name.
    name: String,
    /// `local` (.env) or `prod` (AWS Secrets Manager); default: $APP_MODE, else the last
    /// APP_MODE in the .env file, else local.
    #[arg(long)]
    mode: Option<String>,
    /// The .env file, read once (a pipe such as <(command) works). It may set APP_MODE. In
    /// local mode it holds the secrets (a variable already set in the environment wins); in
    /// prod mode only the AWS settings (endpoint, region, profile, credentials) the
    /// environment leaves unset are taken from it, never a secret. A missing file is fine.
    #[arg(long, value_name = "PATH", default_value = ".env")]
    env_file: PathBuf,
}

pub(crate) fn run(command: SecretsCommand) -> Result<(), Failure> {
    match command {
        SecretsCommand::Get(args) => get(args),
    }
}

fn get(args: GetArgs) -> Result<(), Failure> {
    let mode = match args.mode.as_deref() {
        Some(text) => Some(text.parse::<Mode>().map_err(|e| Failure::from_error(&e))?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::msg(format!("cannot start the async runtime: {e}")))?;
    let value = runtime
        .block_on(async {
            let env = Environment::from_process();
            provider_for(mode, &args.env_file, &env).await?.get_value(&args.name).await
        })
        .map_err(|e| Failure::from_error(&e))?;
    let mut stdout = std::io::stdout().lock();
    let written = match &value {
        SecretValue::Text(text) => writeln!(stdout, "{}", text.expose_secret()),
        // Raw bytes, no newline: `app secrets get NAME > file` reproduces the secret exactly.
        _ => stdout.write_all(value.expose_bytes()),
    };
    written.and_then(|()| stdout.flush()).map_err(|e| crate::out::stdout_failure(&e))
}
