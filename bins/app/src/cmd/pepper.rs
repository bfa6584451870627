//! `app users init-pepper|pepper|rotate-pepper`, and where `register`, `verify` and `app users`
//! find the password pepper.

use std::path::PathBuf;

use globo::auth::{PepperReport, Peppers, UserStore};
use globo::keys::KeysError;
use globo::keys::pepper::{
    DEFAULT_PEPPER_SECRET, PEPPER_SECRET_VAR, PepperSource, PepperSourceConfig,
};
use globo::secrets::{Environment, Mode};

use crate::failure::Failure;
use crate::out::{outln, warnln};

/// Where the password pepper is: the options `register`, `verify` and `app users` share.
#[derive(Debug, clap::Args)]
pub(crate) struct PepperSourceArgs {
    /// Where the password pepper is kept: `local` (the environment, else the .env file) or
    /// `prod` (AWS Secrets Manager); default: $APP_MODE, else the last APP_MODE in the .env
    /// file, else local.
    #[arg(long)]
    mode: Option<String>,
    /// The .env file: APP_MODE, the pepper in local mode, the AWS settings in prod mode.
    #[arg(long, value_name = "PATH", default_value = ".env")]
    env_file: PathBuf,
    /// The secret (prod) or variable (local) holding the password pepper.
    #[arg(long, value_name = "NAME", env = PEPPER_SECRET_VAR, default_value = DEFAULT_PEPPER_SECRET)]
    pepper_secret: String,
}

/// Arguments of `app users init-pepper`, `pepper` and `rotate-pepper`.
#[derive(Debug, clap::Args)]
pub(crate) struct PepperArgs {
    /// The users file (a JSON object mapping usernames to Argon2 hashes).
    #[arg(long, value_name = "PATH", default_value = "users.json")]
    users_file: PathBuf,

    #[command(flatten)]
    pepper: PepperSourceArgs,
}

impl PepperSourceArgs {
    /// The pepper's home, resolved by globo-keys from `--mode`, `APP_MODE` and `.env`.
    pub(crate) fn source(&self) -> Result<PepperSource, Failure> {
        let mut config =
            PepperSourceConfig::new().secret(&self.pepper_secret).env_file(&self.env_file);
        if let Some(text) = self.mode.as_deref() {
            config = config.mode(text.parse::<Mode>().map_err(|e| Failure::from_error(&e))?);
        }
        PepperSource::resolve(&config, &Environment::from_process()).map_err(|e| pepper_failure(&e))
    }

    /// The pepper, when one exists (new records are then peppered and old ones upgraded).
    pub(crate) fn load(&self) -> Result<Option<Peppers>, Failure> {
        self.source()?.load().map_err(|e| pepper_failure(&e))
    }
}

/// The library's message and causes, with the command that fixes a missing pepper.
fn pepper_failure(error: &KeysError) -> Failure {
    let message = globo::with_causes(error);
    match error {
        KeysError::PepperMissing { .. } => {
            Failure::msg(format!("{message}\nhint: create it with `app users init-pepper`"))
        }
        KeysError::PepperExists { .. } => Failure::msg(format!(
            "{message}\nhint: `app users rotate-pepper` adds a new version and moves every record to it"
        )),
        _ => Failure::msg(message),
    }
}

pub(crate) fn init_pepper(args: &PepperArgs) -> Result<(), Failure> {
    let source = args.pepper.source()?;
    let created = source.create().map_err(|e| pepper_failure(&e))?;
    outln!(
        "Created the password pepper (version {}) in {}. New passwords are peppered from now \
         on; run `app users pepper` to pepper the existing ones.",
        created.current_version(),
        source.describe()
    )?;
    Ok(())
}

fn store(args: &PepperArgs, peppers: Peppers) -> UserStore {
    UserStore::new(&args.users_file).with_peppers(peppers)
}

fn warn_unusable(report: &PepperReport) {
    if !report.unusable.is_empty() {
        warnln!(
            "warning: {} entries are not usable hashes and were left as they are: {}",
            report.unusable.len(),
            report
                .unusable
                .iter()
                .map(|n| format!("'{}'", n.escape_debug()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

pub(crate) fn pepper(args: &PepperArgs) -> Result<(), Failure> {
    let source = args.pepper.source()?;
    let peppers = source
        .load()
        .map_err(|e| pepper_failure(&e))?
        .ok_or_else(|| pepper_failure(&KeysError::PepperMissing { location: source.describe() }))?;
    let version = peppers.current_version().to_owned();
    let report = store(args, peppers).pepper_all().map_err(|e| Failure::from_error(&e))?;
    warn_unusable(&report);
    outln!(
        "Peppered {} records with pepper version {version} ({} already peppered) in '{}'.",
        report.changed,
        report.unchanged,
        args.users_file.display()
    )?;
    Ok(())
}

pub(crate) fn rotate_pepper(args: &PepperArgs) -> Result<(), Failure> {
    let source = args.pepper.source()?;
    // 1. A new current version, the old ones kept (or the versions of an unfinished rotation).
    let peppers = source.rotate().map_err(|e| pepper_failure(&e))?;
    let version = peppers.current_version().to_owned();
    // 2. Every record moved to it, in one atomic write of the users file.
    let report = store(args, peppers).rotate_pepper_all().map_err(|e| {
        Failure::msg(format!(
            "{}\nhint: nothing was retired; fix the cause and run `app users rotate-pepper` again",
            globo::with_causes(&e)
        ))
    })?;
    warn_unusable(&report);
    // 3. The old versions dropped, now that no record names them.
    source.retire_old().map_err(|e| pepper_failure(&e))?;
    outln!(
        "Moved {} records to pepper version {version} ({} were already under it) in '{}'; the \
         older versions are retired.",
        report.changed,
        report.unchanged,
        args.users_file.display()
    )?;
    Ok(())
}
