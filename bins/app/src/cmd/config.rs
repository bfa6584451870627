//! `app config ...`: the Fernet-encrypted configuration.

use crate::failure::Failure;

/// The `app config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ConfigCommand {
    /// Create a new Fernet key file.
    InitKey,
}

pub(crate) fn run(_command: ConfigCommand) -> Result<(), Failure> {
    Err(Failure::msg("config: not built yet"))
}
