//! `app users ...`: operators' commands on the users file.

use std::path::PathBuf;

use globo::auth::UserStore;

use crate::failure::Failure;
use crate::out::outln;

/// The `app users` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum UsersCommand {
    /// Clear a user's failed logins, delay and lock (or a login source's, with --source).
    Unlock(UnlockArgs),
}

/// Arguments of `app users unlock`.
#[derive(Debug, clap::Args)]
pub(crate) struct UnlockArgs {
    /// The user to unlock (as `app verify` finds users).
    #[arg(required_unless_present = "source", conflicts_with = "source")]
    username: Option<String>,

    /// Unlock this login source (the key given to `app verify --source`) instead of a user.
    #[arg(long, value_name = "KEY")]
    source: Option<String>,

    /// The users file (its throttling state is `<file>.throttle` beside it).
    #[arg(long, value_name = "PATH", default_value = "users.json")]
    users_file: PathBuf,
}

pub(crate) fn run(command: UsersCommand) -> Result<(), Failure> {
    match command {
        UsersCommand::Unlock(args) => unlock(args),
    }
}

fn unlock(args: UnlockArgs) -> Result<(), Failure> {
    let store = UserStore::new(&args.users_file);
    let error = |e: globo::auth::AuthError| Failure::from_error(&e);
    match (args.username, args.source) {
        (_, Some(source)) => {
            let cleared = store.unlock_source(&source).map_err(error)?;
            if cleared {
                outln!("Source '{}' unlocked.", source.escape_debug())?;
            } else {
                outln!("Source '{}' had no failed logins.", source.escape_debug())?;
            }
        }
        (Some(username), None) => {
            let cleared = store.unlock(&username).map_err(error)?;
            if cleared {
                outln!("User '{}' unlocked.", username.escape_debug())?;
            } else {
                outln!("User '{}' had no failed logins.", username.escape_debug())?;
            }
        }
        // clap requires one of the two.
        (None, None) => return Err(Failure::msg("Name a user, or a source with --source.")),
    }
    Ok(())
}
