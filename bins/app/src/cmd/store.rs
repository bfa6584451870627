//! Where the users are (`--users-store`, `GLOBO_USERS_STORE`), where secrets are read from
//! (`--mode`, `--env-file`), and `app users copy`.

use std::path::PathBuf;

use globo::auth::{StoreSpec, UserStore, copy_users_observed};
use globo::secrets::{Environment, Mode, SecretValue, provider_for};
use secrecy::SecretString;

use crate::failure::Failure;
use crate::out::{outln, warnln};

/// The help of every `--users-store`.
const STORE_HELP: &str = "Where the users are: a path (a JSON users file mapping usernames to \
    Argon2 hashes, as the lab writes it), sqlite://PATH (sqlite:///abs/users.db), or a \
    postgres:// URL; a URL's password is never printed, and ?password_secret=NAME reads it \
    from the secrets provider instead (see --mode, --env-file)";

/// The users store of a command.
#[derive(Debug, clap::Args)]
pub(crate) struct UsersStoreArgs {
    #[arg(
        long,
        value_name = "STORE",
        env = "GLOBO_USERS_STORE",
        hide_env_values = true,
        default_value = "users.json",
        help = STORE_HELP
    )]
    users_store: String,

    /// A JSON users file (the option of earlier versions; same as --users-store PATH). It
    /// wins over GLOBO_USERS_STORE; with --users-store on the command line it is a usage
    /// error, checked by [`explicit_conflict`] (clap's `conflicts_with` would count the
    /// environment variable as given).
    #[arg(long, value_name = "PATH", hide = true)]
    users_file: Option<PathBuf>,
}

/// A usage error when a command line gives both `--users-file` and `--users-store` (an
/// environment variable is not a choice made on the command line: the option wins over it).
pub(crate) fn explicit_conflict(matches: &clap::ArgMatches) -> Option<clap::Error> {
    use clap::CommandFactory as _;
    use clap::parser::ValueSource;

    let mut current = matches;
    loop {
        let given = |id: &str| {
            current.try_contains_id(id).unwrap_or(false)
                && current.value_source(id) == Some(ValueSource::CommandLine)
        };
        if given("users_file") && given("users_store") {
            return Some(crate::Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "the argument '--users-file <PATH>' cannot be used with '--users-store <STORE>'",
            ));
        }
        current = current.subcommand()?.1;
    }
}

impl UsersStoreArgs {
    fn spec(&self) -> Result<StoreSpec, Failure> {
        match &self.users_file {
            Some(path) => Ok(StoreSpec::Json(path.clone())),
            None => parse(&self.users_store),
        }
    }

    /// Opens the store, reading its password secret through `secrets` when it names one.
    pub(crate) fn open(&self, secrets: &SecretsArgs) -> Result<UserStore, Failure> {
        open(self.spec()?, secrets)
    }
}

/// Where secrets are read (a database's `password_secret`, the pepper): the options every
/// command that opens a users store shares.
#[derive(Debug, clap::Args)]
pub(crate) struct SecretsArgs {
    /// Where secrets (the password pepper, a database password named by password_secret)
    /// are kept: `local` (the environment, else the .env file) or `prod` (AWS Secrets
    /// Manager); default: $APP_MODE, else the last APP_MODE in the .env file, else local.
    #[arg(long)]
    pub(crate) mode: Option<String>,
    /// The .env file: APP_MODE, the secrets in local mode, the AWS settings in prod mode.
    #[arg(long, value_name = "PATH", default_value = ".env")]
    pub(crate) env_file: PathBuf,
}

impl SecretsArgs {
    pub(crate) fn mode(&self) -> Result<Option<Mode>, Failure> {
        self.mode
            .as_deref()
            .map(|text| text.parse::<Mode>().map_err(|e| Failure::from_error(&e)))
            .transpose()
    }

    /// The text secret `name` from the mode's provider (as `app secrets get` reads it).
    fn read_text(&self, name: &str, store: &str) -> Result<SecretString, Failure> {
        let mode = self.mode()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::msg(format!("cannot start the async runtime: {e}")))?;
        let value = runtime
            .block_on(async {
                let env = Environment::from_process();
                provider_for(mode, &self.env_file, &env).await?.get_value(name).await
            })
            .map_err(|e| {
                Failure::msg(format!(
                    "cannot read the password of users store '{store}' from secret '{}': {}",
                    name.escape_debug(),
                    globo::with_causes(&e)
                ))
            })?;
        match value {
            SecretValue::Text(text) => Ok(text),
            _ => Err(Failure::msg(format!(
                "the secret '{}' holding the password of users store '{store}' is binary, not text",
                name.escape_debug()
            ))),
        }
    }
}

fn parse(text: &str) -> Result<StoreSpec, Failure> {
    StoreSpec::parse(text).map_err(|e| {
        Failure::msg(format!(
            "{}\nhint: --users-store (GLOBO_USERS_STORE) takes a path (a JSON users file), \
             sqlite://PATH or postgres://USER@HOST:PORT/DB (with ?password_secret=NAME to keep \
             the password out of the URL)",
            globo::with_causes(&e)
        ))
    })
}

/// Opens `spec`; `existing`: a store to read from, which must exist (never created).
fn open_spec(spec: StoreSpec, secrets: &SecretsArgs, existing: bool) -> Result<UserStore, Failure> {
    let location = spec.location();
    let password = match spec.password_secret() {
        Some(name) => Some(secrets.read_text(name, &location)?),
        None => None,
    };
    let store = if existing { spec.open_existing(password) } else { spec.open(password) };
    store.map_err(|e| Failure::from_error(&e))
}

fn open(spec: StoreSpec, secrets: &SecretsArgs) -> Result<UserStore, Failure> {
    open_spec(spec, secrets, false)
}

/// Arguments of `app users copy`.
#[derive(Debug, clap::Args)]
pub(crate) struct CopyArgs {
    /// The store to copy users from (a path, sqlite://PATH or a postgres:// URL); it must
    /// exist.
    #[arg(long, value_name = "STORE")]
    from: String,
    /// The store to copy them into (created when missing).
    #[arg(long, value_name = "STORE")]
    to: String,

    #[command(flatten)]
    secrets: SecretsArgs,
}

/// `'name', ...`, each escaped.
fn names(users: &[String]) -> String {
    users.iter().map(|n| format!("'{}'", n.escape_debug())).collect::<Vec<_>>().join(", ")
}

pub(crate) fn copy(args: &CopyArgs) -> Result<(), Failure> {
    let from = open_spec(parse(&args.from)?, &args.secrets, true)?;
    let to = open(parse(&args.to)?, &args.secrets)?;
    let report =
        copy_users_observed(&from, &to, copy_observer()).map_err(|e| Failure::from_error(&e))?;
    if !report.skipped.is_empty() {
        warnln!(
            "warning: {} entries of '{}' are not hashes and were not copied: {}",
            report.skipped.len(),
            from.location(),
            names(&report.skipped)
        );
    }
    let look_alike = if report.ambiguous.is_empty() {
        String::new()
    } else {
        format!(", look-alike names not copied {}", report.ambiguous.len())
    };
    outln!(
        "Copied users from '{}' to '{}': created {}, unchanged {}, conflicting {}{look_alike}.",
        from.location(),
        to.location(),
        report.created,
        report.unchanged,
        report.conflicting.len()
    )?;
    let mut problems = Vec::new();
    if !report.ambiguous.is_empty() {
        problems.push(look_alike_problem(&from, &report.ambiguous)?);
    }
    if !report.conflicting.is_empty() {
        problems.push(format!(
            "{} users of '{}' are in '{}' with another password hash and were left as they are: {}\n\
             hint: nothing was overwritten; decide for each (delete it in '{}' with `app users \
             delete NAME --users-store STORE`, or keep it), then run the copy again",
            report.conflicting.len(),
            from.location(),
            to.location(),
            names(&report.conflicting),
            to.location()
        ));
    }
    if problems.is_empty() { Ok(()) } else { Err(Failure::msg(problems.join("\nerror: "))) }
}

/// The source holds names that look alike (a lab users file can): the groups, shown with
/// `\u{...}` for what cannot be seen, and how to keep one of each.
fn look_alike_problem(from: &UserStore, ambiguous: &[String]) -> Result<String, Failure> {
    use crate::cmd::auth::visible;
    let groups = from.ambiguous_names().map_err(|e| Failure::from_error(&e))?;
    let groups: Vec<String> = groups
        .iter()
        .filter(|group| group.iter().any(|name| ambiguous.contains(name)))
        .map(|group| {
            group.iter().map(|n| format!("'{}'", visible(n))).collect::<Vec<_>>().join(" and ")
        })
        .collect();
    Ok(format!(
        "'{}' holds names that look alike (the same name in another Unicode form, width or with \
         invisible characters): {}. A store keeps one name of each, so {} were not copied.\n\
         hint: copying again will not change this: in '{}' keep one name of each group and \
         delete the others (`app users delete NAME --users-store '{}'`, NAME exactly as stored, \
         \\u{{...}} as shown); their users register again under a distinct name. Then run the \
         copy again",
        from.location(),
        groups.join("; "),
        ambiguous.iter().map(|n| format!("'{}'", visible(n))).collect::<Vec<_>>().join(", "),
        from.location(),
        from.location()
    ))
}

/// The test hook for crash-safety tests. In debug builds only, `GLOBO_TEST_CRASH_AT=copy-<n>`
/// aborts the process right after the n-th user is written, inside the copy's open
/// transaction, as a kill at that instant would (like `config rotate-key`'s steps). Release
/// builds ignore it.
fn copy_observer() -> impl FnMut(usize) {
    #[cfg(debug_assertions)]
    let crash_at: Option<usize> = std::env::var("GLOBO_TEST_CRASH_AT")
        .ok()
        .and_then(|step| step.strip_prefix("copy-")?.parse().ok());
    move |written| {
        #[cfg(debug_assertions)]
        if crash_at == Some(written) {
            std::process::abort();
        }
        let _ = written;
    }
}
