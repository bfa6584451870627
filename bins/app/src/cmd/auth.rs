//! `app register` and `app verify` (alias `login`).

use std::io::{BufRead as _, IsTerminal as _, Read as _};

use globo::auth::{
    AuthError, MAX_LOGIN_PASSWORD_BYTES, MAX_PASSWORD_CHARS, PasswordPolicy, Profile,
    ThrottleScope, UserStore, Username,
};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret as _, SecretString};

use crate::failure::{Failure, with_causes};
use crate::out::{outln, warnln};

/// The longest password line read from stdin, in bytes: the longest password a login accepts
/// (which holds any new password: 1024 code points of at most 4 bytes), plus the line end.
/// Longer input is refused rather than truncated.
const MAX_STDIN_PASSWORD_BYTES: u64 = MAX_LOGIN_PASSWORD_BYTES as u64 + 2;

/// Options shared by `register` and `verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct StoreArgs {
    /// Read the password from standard input instead of a no-echo prompt (each command's
    /// help says how many lines it reads).
    #[arg(long)]
    pub(crate) password_stdin: bool,

    #[command(flatten)]
    users: crate::cmd::store::UsersStoreArgs,

    /// Argon2id parameters for new hashes, and the policy older hashes are upgraded to on
    /// login: rfc9106-low-memory (m=64 MiB, t=3, p=4; the lab's), owasp-min (m=19 MiB, t=2,
    /// p=1), or test-only-insecure (for test suites only).
    #[arg(
        long,
        env = "GLOBO_PASSWORD_PROFILE",
        hide_env_values = true,
        default_value = "rfc9106-low-memory"
    )]
    profile: Profile,

    /// What a new password must be: single-factor (at least 15 characters, NIST SP
    /// 800-63B-4), or with-second-factor (at least 8; only when every login of these users
    /// also needs a second factor). Logins are never held to it.
    #[arg(
        long,
        value_name = "POLICY",
        env = "GLOBO_PASSWORD_POLICY",
        hide_env_values = true,
        default_value = "single-factor"
    )]
    password_policy: PasswordPolicy,

    /// The password pepper, used when it exists.
    #[command(flatten)]
    pepper: crate::cmd::pepper::PepperSourceArgs,
}

/// Arguments of `app register`.
#[derive(Debug, clap::Args)]
#[command(mut_arg("password_stdin", |arg| arg.help(
    "Read the new password from one line of standard input instead of two no-echo prompts"
)))]
pub(crate) struct RegisterArgs {
    /// The new user's name.
    username: String,

    #[command(flatten)]
    store: StoreArgs,
}

/// Arguments of `app verify`.
#[derive(Debug, clap::Args)]
#[command(mut_arg("password_stdin", |arg| arg.help(
    "Read the password from one line of standard input instead of a no-echo prompt"
)))]
pub(crate) struct VerifyArgs {
    /// The user's name.
    username: String,

    #[command(flatten)]
    store: StoreArgs,

    #[command(flatten)]
    source: SourceArgs,
}

/// Where a login comes from, for the commands that check a password (`verify`, `users
/// passwd`).
#[derive(Debug, clap::Args)]
pub(crate) struct SourceArgs {
    /// Where the attempt comes from (a client address, say): failed logins are also counted
    /// per source, and a source with too many is refused for every account.
    #[arg(long, env = "GLOBO_LOGIN_SOURCE", hide_env_values = true, value_name = "KEY")]
    pub(crate) source: Option<String>,
}

impl StoreArgs {
    /// [`failure`], with where the pepper was looked for when a missing pepper (or pepper
    /// version) caused the error.
    pub(crate) fn failure(&self, error: &AuthError) -> Failure {
        match self.pepper.hint_for(error) {
            Some(hint) => Failure::msg(format!("{}\n{hint}", with_causes(error))),
            None => failure(error),
        }
    }

    pub(crate) fn store(&self) -> Result<UserStore, Failure> {
        if self.profile == Profile::TestOnlyInsecure {
            warnln!(
                "warning: using the test-only-insecure Argon2 profile (m=8 KiB, t=1): hashes \
                 made with it are trivially brute-forced. Never use it for real users; unset \
                 GLOBO_PASSWORD_PROFILE or drop --profile."
            );
        }
        let store = self
            .users
            .open(&self.pepper.secrets)?
            .with_profile(self.profile)
            .with_password_policy(self.password_policy);
        // With a pepper, new records are peppered and a login upgrades older ones.
        Ok(match self.pepper.load()? {
            Some(peppers) => store.with_peppers(peppers),
            None => store,
        })
    }
}

/// Reads the password: one stdin line with `--password-stdin`, else a no-echo prompt. A new
/// password (`confirm`) is confirmed at the prompt.
fn read_password(args: &StoreArgs, confirm: bool) -> Result<SecretString, Failure> {
    if args.password_stdin {
        return read_password_line(confirm);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::msg(
            "Standard input is not a terminal: pass --password-stdin to read the password from \
             it (one line), or run the command in a terminal to be prompted.",
        ));
    }
    let prompt = crate::prompt::password;
    let password = prompt("Password: ")?;
    if confirm {
        let again = prompt("Confirm password: ")?;
        if password.expose_secret() != again.expose_secret() {
            return Err(Failure::msg("Passwords do not match."));
        }
    }
    Ok(password)
}

/// Reads one line of stdin; `new` says which limit an overlong line is reported against.
pub(crate) fn read_password_line(new: bool) -> Result<SecretString, Failure> {
    // Room for the whole bounded line up front, so no reallocation leaves an unzeroed copy.
    let mut line = Zeroizing::new(String::with_capacity(MAX_STDIN_PASSWORD_BYTES as usize + 1));
    std::io::stdin()
        .lock()
        .take(MAX_STDIN_PASSWORD_BYTES + 1)
        .read_line(&mut line)
        .map_err(|e| Failure::msg(format!("Cannot read the password from standard input: {e}")))?;
    if line.len() as u64 > MAX_STDIN_PASSWORD_BYTES {
        return Err(Failure::from_error(&if new {
            AuthError::PasswordTooLong { max: MAX_PASSWORD_CHARS }
        } else {
            AuthError::PasswordExceedsLoginLimit { max_bytes: MAX_LOGIN_PASSWORD_BYTES }
        }));
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(SecretString::from(password))
}

/// How an operator names a user the store did not find.
const NAME_EXACTLY: &str = "run `app users list` and name the user exactly as listed (a \
     `\\u{...}` there is an invisible or combining character; bash types `\\u{200b}` as \
     $'\\u200b')";

/// The lab's messages for the outcomes users see; everything else with its causes.
pub(crate) fn failure(error: &AuthError) -> Failure {
    match error {
        AuthError::InvalidCredentials => Failure::msg("Invalid username or password."),
        AuthError::UserExists { username } => {
            Failure::msg(format!("User '{username}' already exists."))
        }
        // Operators' commands: the name as typed, its invisible characters shown, and how
        // to find the exact one.
        AuthError::NoSuchUser { username } => {
            Failure::msg(format!("no user '{}' in the store: {NAME_EXACTLY}", visible(username)))
        }
        AuthError::AmbiguousUser { username, candidates } => Failure::msg(format!(
            "'{}' matches {candidates} stored users whose names differ only in Unicode form, \
             width or invisible characters: {NAME_EXACTLY}",
            visible(username)
        )),
        other => Failure::from_error(other),
    }
}

/// [`StoreArgs::failure`] for a command that checks a password from `source` (`verify`,
/// `users passwd`): a locked account or source gets the library's message with how an
/// operator lifts the lock, the same for a known and an unknown name. The hint never
/// repeats the name as typed (it may be a password typed into the name field, and it would
/// land in a terminal's scrollback or a CI log): `<name>` stands for it.
pub(crate) fn login_failure(error: &AuthError, store: &StoreArgs, source: Option<&str>) -> Failure {
    match error {
        AuthError::Throttled { scope, locked: true, .. } => {
            let unlock = match (scope, source) {
                (ThrottleScope::Source, Some(source)) => {
                    format!("app users unlock --source {}", quoted(source))
                }
                _ => "app users unlock <name>".to_owned(),
            };
            Failure::msg(format!("{error}. An operator can lift the lock now with `{unlock}`."))
        }
        AuthError::ThrottleStateFull { path } => Failure::msg(format!(
            "{}
hint: every record in that file is an account past its free failures; logins \
             that need a new record there are refused until some are forgotten, each at most \
             the lock duration (24 hours by default) after its last failure unless it is \
             locked until an operator unlocks it, or until an operator removes '{}', which \
             lifts the locks and clears the counts it holds",
            with_causes(error),
            path.display()
        )),
        _ => store.failure(error),
    }
}

/// `text` as one shell word (single-quoted unless it is plain).
fn quoted(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@:/".contains(c)) {
        text.to_owned()
    } else {
        format!("'{}'", visible(text).replace('\'', "'\\''"))
    }
}

pub(crate) fn register(args: RegisterArgs) -> Result<(), Failure> {
    // The store (and its pepper) first: a failure to load the pepper is told before any prompt.
    let store = args.store.store()?;
    let password = read_password(&args.store, true)?;
    store.register(&args.username, &password).map_err(|e| args.store.failure(&e))?;
    // The name as stored: NFC, fullwidth letters as ordinary ones (RFC 8265).
    let stored = Username::prepare(&args.username).map_or(args.username, Username::into_string);
    outln!("User '{stored}' registered.")?;
    Ok(())
}

pub(crate) fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let store = args.store.store()?;
    let password = read_password(&args.store, false)?;
    let verified = store
        .verify_from(&args.username, &password, args.source.source.as_deref())
        .map_err(|e| login_failure(&e, &args.store, args.source.source.as_deref()))?;
    // The stored name is who logged in (it may differ from the typed one in Unicode form or
    // invisible characters, which are shown escaped).
    outln!("Password verified for '{}'.", visible(verified.username()))?;
    if let Some(error) = verified.rehash_error() {
        warnln!(
            "warning: the stored hash is obsolete but could not be upgraded: {}",
            with_causes(error)
        );
        if let Some(hint) = args.store.pepper.hint_for(error) {
            warnln!("{hint}");
        }
    }
    Ok(())
}

/// `name` with invisible and control characters written as `\u{...}` (quotes kept as they
/// are), so a stored name that differs from the typed one only invisibly shows how.
pub(crate) fn visible(name: &str) -> String {
    name.chars()
        .map(|c| if c == '\'' || c == '"' { c.to_string() } else { c.escape_debug().to_string() })
        .collect()
}
