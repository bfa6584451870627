//! `app`: the globo lab CLI. Parsing and printing only; behaviour lives in the libraries.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cmd;
mod failure;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Secure data at rest: password storage, config encryption and secrets, as in the lab.
#[derive(Debug, Parser)]
#[command(name = "app", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register a new user (password from a no-echo prompt or --password-stdin): 8 to 1024
    /// characters, not a common password, not containing the username.
    Register(cmd::auth::RegisterArgs),
    /// Check a user's password; exit 0 when it matches, 1 otherwise.
    #[command(alias = "login")]
    Verify(cmd::auth::VerifyArgs),
    /// Encrypt, show and rotate the Fernet-encrypted configuration.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Read secrets from .env (local mode) or AWS Secrets Manager (prod mode).
    #[command(subcommand)]
    Secrets(cmd::secrets::SecretsCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Register(args) => cmd::auth::register(args),
        Command::Verify(args) => cmd::auth::verify(args),
        Command::Config(command) => cmd::config::run(command),
        Command::Secrets(command) => cmd::secrets::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
