//! `app users`: an account's life after `register` (list, delete, passwd, reset); the pepper
//! commands are in `pepper`.

use std::io::{BufRead as _, IsTerminal as _, Read as _};

use globo::auth::UserStore;
use secrecy::{ExposeSecret as _, SecretString};

use crate::cmd::auth::{
    SourceArgs, StoreArgs, failure, login_failure, read_password_line, visible,
};
use crate::cmd::pepper::{self, PepperArgs};
use crate::cmd::store::{CopyArgs, SecretsArgs, UsersStoreArgs};
use crate::failure::Failure;
use crate::out::{outln, warnln};

/// The longest name line read back for a confirmation, in bytes (a username is at most 64
/// code points; a lab name may be longer, but not this long).
const MAX_CONFIRMATION_BYTES: u64 = 4096;

/// `app users ...`: operators' and users' commands on the users file.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum UsersCommand {
    /// Print the registered usernames, one per line (control and invisible characters
    /// escaped as \u{...}).
    List(FileArgs),
    /// Delete a user. At a terminal, asks to type the name again; otherwise --yes is needed.
    Delete(DeleteArgs),
    /// Change a user's password: the current one, then the new one (at least 15 characters,
    /// not a common password, not containing the username). With --password-stdin, two
    /// lines: the current password, then the new one.
    Passwd(PasswdArgs),
    /// Set a user's password without the current one (an operator's reset); the new password
    /// follows the same rules. Prompts twice, or reads one line with --password-stdin.
    Reset(ResetArgs),
    /// Create the password pepper (version 1) in the mode's secrets provider: PASSWORD_PEPPER
    /// in .env (local) or AWS Secrets Manager (prod). Never replaces one. New passwords are
    /// peppered from then on; `app users pepper` peppers the existing ones.
    InitPepper(PepperArgs),
    /// Pepper every unpeppered record of the users file with the current pepper, offline (no
    /// password needed); records already peppered are left as they are.
    Pepper(PepperArgs),
    /// Rotate the pepper: add a new version, move every record to it, then drop the old
    /// versions. Each step is crash-safe; run it again to complete an interrupted rotation.
    RotatePepper(PepperArgs),
    /// Copy every user (password hashes as they are) from one store into another, e.g. from
    /// users.json into sqlite://users.db: idempotent, never overwrites; prints how many were
    /// created, unchanged and conflicting, and fails when any conflict.
    Copy(CopyArgs),
    /// Clear a user's failed logins, delay and lock (or a login source's, with --source). A
    /// name no user has is counted and locked like any other; its record is cleared too.
    Unlock(UnlockArgs),
}

/// The users store, for commands that need nothing else.
#[derive(Debug, clap::Args)]
pub(crate) struct FileArgs {
    #[command(flatten)]
    users: UsersStoreArgs,

    #[command(flatten)]
    secrets: SecretsArgs,
}

impl FileArgs {
    fn open(&self) -> Result<UserStore, Failure> {
        self.users.open(&self.secrets)
    }
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

    /// The users store (a JSON file's throttling state is `<file>.throttle` beside it).
    #[command(flatten)]
    file: FileArgs,
}

/// Arguments of `app users delete`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeleteArgs {
    /// The user to delete.
    username: String,

    /// Delete without asking to type the name again (needed when stdin is not a terminal).
    #[arg(long)]
    yes: bool,

    #[command(flatten)]
    file: FileArgs,
}

/// Arguments of `app users passwd`.
#[derive(Debug, clap::Args)]
#[command(mut_arg("password_stdin", |arg| arg.help(
    "Read two lines of standard input, the current password then the new one, instead of \
     no-echo prompts"
)))]
pub(crate) struct PasswdArgs {
    /// The user whose password changes.
    username: String,

    #[command(flatten)]
    store: StoreArgs,

    #[command(flatten)]
    source: SourceArgs,
}

/// Arguments of `app users reset`.
#[derive(Debug, clap::Args)]
#[command(mut_arg("password_stdin", |arg| arg.help(
    "Read the new password from one line of standard input instead of two no-echo prompts"
)))]
pub(crate) struct ResetArgs {
    /// The user whose password is reset.
    username: String,

    #[command(flatten)]
    store: StoreArgs,
}

pub(crate) fn run(command: UsersCommand) -> Result<(), Failure> {
    match command {
        UsersCommand::List(args) => list(&args),
        UsersCommand::Delete(args) => delete(&args),
        UsersCommand::Passwd(args) => passwd(&args),
        UsersCommand::Reset(args) => reset(&args),
        UsersCommand::InitPepper(args) => pepper::init_pepper(&args),
        UsersCommand::Pepper(args) => pepper::pepper(&args),
        UsersCommand::RotatePepper(args) => pepper::rotate_pepper(&args),
        UsersCommand::Unlock(args) => unlock(args),
        UsersCommand::Copy(args) => crate::cmd::store::copy(&args),
    }
}

fn list(args: &FileArgs) -> Result<(), Failure> {
    let names = args.open()?.usernames().map_err(|e| failure(&e))?;
    for name in names {
        outln!("{}", visible(&name))?;
    }
    Ok(())
}

/// Finds the user first (an unknown or ambiguous name fails before any question), asks
/// about the name as stored, then deletes exactly that name (nobody else, even if the file
/// changed meanwhile).
fn delete(args: &DeleteArgs) -> Result<(), Failure> {
    let store = args.file.open()?;
    let stored = store.find(&args.username).map_err(|e| failure(&e))?;
    if !args.yes {
        confirm_deletion(&stored)?;
    }
    store.delete_exact(&stored).map_err(|e| failure(&e))?;
    outln!("User '{}' deleted.", visible(&stored))?;
    Ok(())
}

/// A user cannot be lost by a slip: at a terminal the stored name must be typed again
/// (exactly, or as shown, with `\u{...}` for invisible characters), and without a terminal
/// to ask at, `--yes` must say so.
fn confirm_deletion(username: &str) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::msg(format!(
            "Standard input is not a terminal, so the deletion cannot be confirmed: pass --yes \
             to delete user '{}'.",
            visible(username)
        )));
    }
    warnln!("To delete user '{}', type the name again:", visible(username));
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_CONFIRMATION_BYTES)
        .read_line(&mut line)
        .map_err(|e| Failure::msg(format!("Cannot read the confirmation: {e}")))?;
    let typed = line.strip_suffix('\n').unwrap_or(&line);
    let typed = typed.strip_suffix('\r').unwrap_or(typed);
    if typed != username && typed != visible(username) {
        return Err(Failure::msg("The name typed does not match: nothing was deleted."));
    }
    Ok(())
}

fn passwd(args: &PasswdArgs) -> Result<(), Failure> {
    // The store (and its pepper) first: a missing pepper fails before any prompt.
    let store = args.store.store()?;
    let (current, new) = if args.store.password_stdin {
        let current = read_password_line(false)?;
        let new = read_password_line(true)?;
        if new.expose_secret().is_empty() {
            return Err(Failure::msg(
                "Standard input must hold two lines: the current password, then the new one \
                 (the second is missing or empty). Nothing was changed.",
            ));
        }
        (current, new)
    } else {
        require_terminal()?;
        let current = crate::prompt::password("Current password: ")?;
        (current, prompt_new_password()?)
    };
    // The current password is checked as a login: counted for the account and the source.
    let source = args.source.source.as_deref();
    let changed = store
        .change_password(&args.username, &current, &new, source)
        .map_err(|e| login_failure(&e, &args.store, source))?;
    outln!("Password changed for '{}'.", visible(&changed))?;
    Ok(())
}

fn reset(args: &ResetArgs) -> Result<(), Failure> {
    // The store (and its pepper) first: a missing pepper fails before any prompt.
    let store = args.store.store()?;
    let new = if args.store.password_stdin {
        read_password_line(true)?
    } else {
        require_terminal()?;
        prompt_new_password()?
    };
    let reset = store.reset_password(&args.username, &new).map_err(|e| args.store.failure(&e))?;
    outln!("Password reset for '{}'.", visible(&reset))?;
    Ok(())
}

fn require_terminal() -> Result<(), Failure> {
    if std::io::stdin().is_terminal() {
        return Ok(());
    }
    Err(Failure::msg(
        "Standard input is not a terminal: pass --password-stdin to read the passwords from it, \
         or run the command in a terminal to be prompted.",
    ))
}

/// The new password, typed twice at no-echo prompts.
fn prompt_new_password() -> Result<SecretString, Failure> {
    let new = crate::prompt::password("New password: ")?;
    let again = crate::prompt::password("Confirm new password: ")?;
    if new.expose_secret() != again.expose_secret() {
        return Err(Failure::msg("Passwords do not match. Nothing was changed."));
    }
    Ok(new)
}

fn unlock(args: UnlockArgs) -> Result<(), Failure> {
    let store = args.file.open()?;
    let error = |e: globo::auth::AuthError| failure(&e);
    match (args.username, args.source) {
        (_, Some(source)) => {
            let cleared = store.unlock_source(&source).map_err(error)?;
            if cleared {
                outln!("Source '{}' unlocked.", source.escape_debug())?;
            } else {
                outln!("Source '{}' had no failed logins.", source.escape_debug())?;
            }
        }
        (Some(username), None) => match store.unlock(&username) {
            Ok(true) => outln!("User '{}' unlocked.", username.escape_debug())?,
            Ok(false) => outln!("User '{}' had no failed logins.", username.escape_debug())?,
            // A name no user has is locked like a stored one (so that a lock does not tell
            // which names exist), and the refused login's hint names this command for both:
            // the hint must not lead to a dead end.
            Err(e @ globo::auth::AuthError::NoSuchUser { .. }) => {
                if !store.unlock_unknown(&username).map_err(error)? {
                    return Err(failure(&e));
                }
                outln!(
                    "No user '{}' in the store; its failed logins were cleared.",
                    username.escape_debug()
                )?;
            }
            Err(e) => return Err(failure(&e)),
        },
        // clap requires one of the two.
        (None, None) => return Err(Failure::msg("Name a user, or a source with --source.")),
    }
    Ok(())
}
