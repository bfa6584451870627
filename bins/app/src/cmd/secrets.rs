//! `app secrets ...`: read a secret through globo-secrets.

use crate::failure::Failure;

/// The `app secrets` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SecretsCommand {
    /// Print a secret's value to stdout.
    Get {
        /// The secret's name.
        name: String,
    },
}

pub(crate) fn run(_command: SecretsCommand) -> Result<(), Failure> {
    Err(Failure::msg("secrets: not built yet"))
}
