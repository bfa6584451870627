//! `app`: the globo lab CLI. Parsing and printing only; behaviour lives in the libraries.

mod cmd;
mod failure;
mod logging;
mod out;
mod prompt;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::failure::Failure;

/// Examples and exit codes, after the options of `app --help` (and `app -h`).
const AFTER_HELP: &str = "\
Examples:
  app register alice                       prompt for a password (twice), add alice to users.json
  printf '%s\\n' \"$PW\" | app verify alice --password-stdin
  app users passwd alice                   prompt for alice's current password, then a new one
  app users delete bob                     type the name again to delete bob (--yes in scripts)
  RUST_LOG=globo_auth=info app --log-format json verify alice
                                           security events as JSON lines on stderr
  app users unlock alice                   clear alice's failed logins and lock (throttling)
  app users copy --from users.json --to sqlite://users.db
                                           copy every user (hashes as they are) into SQLite
  GLOBO_USERS_STORE='postgres://globo@127.0.0.1:5432/users?password_secret=DB_PASSWORD' app verify alice
                                           users in PostgreSQL, the password read from the
                                           secret DB_PASSWORD (.env, or AWS with --mode prod)
  app config init-key                      write a new Fernet key to secret.key
  app config encrypt config.json --remove-plaintext
  app config show                          decrypt config.enc in memory and print the JSON
  app secrets get PAYMENT_GATEWAY_API_KEY --mode prod
  app completions bash > ~/.local/share/bash-completion/completions/app

Exit codes:
  0    success
  1    any failure, reported on stderr as `error: ...`: wrong password or unknown user, taken
       name, rejected password, decryption failure, missing file or secret, unreachable
       backend, bad configuration, or output that could not be written to stdout (the
       command's effect, such as a registered user, stands)
  2    usage error (unknown command, option or value)
  130  interrupted: Ctrl-C at the password prompt (the terminal's echo is restored) or a
       SIGINT after it; `error: interrupted` on stderr";

/// Secure data at rest: password storage, config encryption and secrets, as in the lab.
#[derive(Debug, Parser)]
#[command(name = "app", version, about, propagate_version = true, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// How security events (and globo's other logs) are written on stderr when RUST_LOG
    /// enables them, e.g. RUST_LOG=globo_auth=info: text or json (any case). With RUST_LOG
    /// unset nothing is logged and this is not read. Only globo's own logs are written.
    #[arg(
        long,
        global = true,
        value_name = "text|json",
        env = "GLOBO_LOG_FORMAT",
        hide_env_values = true,
        default_value = "text"
    )]
    log_format: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register a new user (password from a no-echo prompt or --password-stdin): 15 to 1024
    /// characters (8 with --password-policy with-second-factor), not a common password, not
    /// containing the username.
    Register(cmd::auth::RegisterArgs),
    /// Check a user's password; exit 0 when it matches, 1 otherwise.
    #[command(alias = "login")]
    Verify(cmd::auth::VerifyArgs),
    /// List and delete users, change or reset their passwords, unlock them, copy them
    /// between stores, manage the password pepper.
    #[command(subcommand)]
    Users(cmd::users::UsersCommand),
    /// Encrypt, show and rotate the Fernet-encrypted configuration.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Read secrets from .env (local mode) or AWS Secrets Manager (prod mode).
    #[command(subcommand)]
    Secrets(cmd::secrets::SecretsCommand),
    /// Print a shell completion script for app to stdout.
    #[command(after_help = "Install, e.g.:\n  \
        bash: app completions bash > ~/.local/share/bash-completion/completions/app\n  \
        zsh:  app completions zsh > ~/.zfunc/_app   (with fpath+=~/.zfunc before compinit)\n  \
        fish: app completions fish > ~/.config/fish/completions/app.fish")]
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    // Before anything is read: a process that will hold a password, key or secret value
    // must never leave it in a core file or let another process of the user read its memory.
    if let Err(error) = globo::harden_process() {
        return Failure::from_error(&error).report();
    }
    let matches = Cli::command().get_matches();
    if let Some(error) = cmd::store::explicit_conflict(&matches) {
        error.exit();
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if let Err(failure) = logging::init(&cli.log_format) {
        return failure.report();
    }
    let result = match cli.command {
        Command::Register(args) => cmd::auth::register(args),
        Command::Verify(args) => cmd::auth::verify(args),
        Command::Users(command) => cmd::users::run(command),
        Command::Config(command) => cmd::config::run(command),
        Command::Secrets(command) => cmd::secrets::run(command),
        Command::Completions { shell } => completions(shell),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Generated from the same definitions as the parser, so it never goes stale.
fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "app", &mut script);
    out::bytes(&script)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    /// Every option read from the environment hides the value in `--help`: it may hold a
    /// secret (a database URL's password, say). Checked over the whole command tree, so a
    /// new option cannot forget it.
    #[test]
    fn every_environment_option_hides_its_value() {
        fn walk(command: &clap::Command, path: &str, found: &mut usize) {
            for arg in command.get_arguments() {
                if arg.get_env().is_some() {
                    *found += 1;
                    assert!(
                        arg.is_hide_env_values_set(),
                        "{path} --{}: set hide_env_values = true",
                        arg.get_id()
                    );
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), found);
            }
        }
        let mut found = 0;
        walk(&Cli::command(), "app", &mut found);
        assert!(found >= 7, "only {found} options read the environment");
    }
}
