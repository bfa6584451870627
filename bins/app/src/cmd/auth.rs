//! `app register` and `app verify`.

use crate::failure::Failure;

/// Arguments of `app register`.
#[derive(Debug, clap::Args)]
pub(crate) struct RegisterArgs {
    /// The new user's name.
    username: String,
}

/// Arguments of `app verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The user's name.
    username: String,
}

pub(crate) fn register(_args: RegisterArgs) -> Result<(), Failure> {
    Err(Failure::msg("register: not built yet"))
}

pub(crate) fn verify(_args: VerifyArgs) -> Result<(), Failure> {
    Err(Failure::msg("verify: not built yet"))
}
