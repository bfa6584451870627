//! `app users init-pepper|pepper|rotate-pepper`, and where `register`, `verify` and `app users`
//! find the password pepper.

use globo::auth::{AuthError, PepperReport, Peppers, UserStore};
use globo::keys::KeysError;
use globo::keys::pepper::{
    DEFAULT_PEPPER_SECRET, PEPPER_SECRET_VAR, PepperSource, PepperSourceConfig,
};
use globo::secrets::Environment;

use crate::cmd::store::{SecretsArgs, UsersStoreArgs};
use crate::failure::Failure;
use crate::out::{outln, warnln};

/// Where the password pepper is: the options `register`, `verify` and `app users` share.
#[derive(Debug, clap::Args)]
pub(crate) struct PepperSourceArgs {
    /// Where secrets are read: the pepper, a database password.
    #[command(flatten)]
    pub(crate) secrets: SecretsArgs,
    /// The secret (prod) or variable (local) holding the password pepper. Use one secret per
    /// users file: a rotation retires the versions its own file no longer uses, which would
    /// lock out the users of another file sharing the secret.
    #[arg(long, value_name = "NAME", env = PEPPER_SECRET_VAR, hide_env_values = true, default_value = DEFAULT_PEPPER_SECRET)]
    pepper_secret: String,
}

/// Arguments of `app users init-pepper`, `pepper` and `rotate-pepper`.
#[derive(Debug, clap::Args)]
pub(crate) struct PepperArgs {
    #[command(flatten)]
    users: UsersStoreArgs,

    #[command(flatten)]
    pepper: PepperSourceArgs,
}

impl PepperSourceArgs {
    /// The pepper's home, resolved by globo-keys from `--mode`, `APP_MODE` and `.env`.
    pub(crate) fn source(&self) -> Result<PepperSource, Failure> {
        let mut config =
            PepperSourceConfig::new().secret(&self.pepper_secret).env_file(&self.secrets.env_file);
        if let Some(mode) = self.secrets.mode()? {
            config = config.mode(mode);
        }
        PepperSource::resolve(&config, &Environment::from_process()).map_err(|e| pepper_failure(&e))
    }

    /// The pepper, when one exists (new records are then peppered and old ones upgraded).
    pub(crate) fn load(&self) -> Result<Option<Peppers>, Failure> {
        self.source()?.load().map_err(|e| pepper_failure(&e))
    }

    /// For an error that a missing pepper or pepper version causes: where the pepper was
    /// looked for, and which options or variables choose that place. `None` for others.
    pub(crate) fn hint_for(&self, error: &AuthError) -> Option<String> {
        let missing = match error {
            AuthError::PepperRequired { .. } => "no password pepper was found".to_owned(),
            AuthError::PepperUnavailable { version } => format!(
                "the password pepper found there has no version '{}'",
                version.escape_debug()
            ),
            AuthError::BadEntry { source, .. } => return self.hint_for(source),
            AuthError::PepperStale { .. } => {
                let place = match self.source() {
                    Ok(source) => source.describe(),
                    Err(_) => format!("'{}'", self.pepper_secret.escape_debug()),
                };
                return Some(format!(
                    "hint: the password pepper found in {place} lacks the version those records \
                     name. Either it is not this users file's pepper: point to the right one \
                     with --pepper-secret NAME (GLOBO_PEPPER_SECRET), --env-file or --mode \
                     (APP_MODE); or those records were copied from another users file: delete \
                     them (`app users delete <name>`) or reset them (`app users reset <name>`); \
                     or the pepper was rotated after a long-running service loaded it: restart \
                     that service"
                ));
            }
            _ => return None,
        };
        let place = match self.source() {
            Ok(source) => source.describe(),
            Err(_) => format!("'{}'", self.pepper_secret.escape_debug()),
        };
        Some(format!(
            "hint: {missing} in {place}; set it there, or point to where it is kept with \
             --pepper-secret NAME (GLOBO_PEPPER_SECRET), --mode (APP_MODE) and --env-file"
        ))
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

fn store(args: &PepperArgs, peppers: Peppers) -> Result<UserStore, Failure> {
    Ok(args.users.open(&args.pepper.secrets)?.with_peppers(peppers))
}

/// `'name', ...`, each escaped.
fn names(users: &[String]) -> String {
    users.iter().map(|n| format!("'{}'", n.escape_debug())).collect::<Vec<_>>().join(", ")
}

fn warn_unusable(report: &PepperReport) {
    if !report.unusable.is_empty() {
        warnln!(
            "warning: {} entries are not usable hashes and were left as they are: {}",
            report.unusable.len(),
            names(&report.unusable)
        );
    }
    if !report.unavailable.is_empty() {
        warnln!(
            "warning: {} records name pepper versions that are not configured and were left \
             as they are (those users cannot log in until the version is configured again): {}",
            report.unavailable.len(),
            names(&report.unavailable)
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
    let store = store(args, peppers)?;
    let report = store.pepper_all().map_err(|e| Failure::from_error(&e))?;
    warn_unusable(&report);
    outln!(
        "Peppered {} records with pepper version {version} ({} already peppered) in '{}'.",
        report.changed,
        report.unchanged,
        store.location()
    )?;
    Ok(())
}

pub(crate) fn rotate_pepper(args: &PepperArgs) -> Result<(), Failure> {
    let source = args.pepper.source()?;
    // Under the users file's lock throughout: a new current version (or the one an
    // unfinished rotation added), read back; every record moved; the versions no entry
    // names any more retired.
    let store = args.users.open(&args.pepper.secrets)?;
    let location = store.location().to_owned();
    let rotation = source.rotate_users(store).map_err(|e| match e {
        KeysError::PepperChanged { .. } | KeysError::PepperMissing { .. } => pepper_failure(&e),
        _ => Failure::msg(format!(
            "{}\nhint: nothing was retired; fix the cause and run `app users rotate-pepper` \
                 again",
            globo::with_causes(&e)
        )),
    })?;
    warn_unusable(&rotation.moved);
    for (version, users) in &rotation.still_in_use {
        warnln!(
            "warning: pepper version {version} is kept: {} entries still name it: {}; run `app \
             users rotate-pepper` again to move them (fix or remove the unusable ones first)",
            users.len(),
            names(users)
        );
    }
    let retired = if rotation.retired.is_empty() {
        "no older version was retired".to_owned()
    } else {
        format!("retired {}", rotation.retired.join(", "))
    };
    if rotation.added {
        outln!("Added pepper version {} as the current one.", rotation.version)?;
    } else {
        outln!(
            "Resumed the rotation to pepper version {} (records were still under an older \
             version; no version added).",
            rotation.version
        )?;
    }
    outln!(
        "Moved {} records to pepper version {} ({} were already under it) in '{}'; {retired}.",
        rotation.moved.changed,
        rotation.version,
        rotation.moved.unchanged,
        location
    )?;
    Ok(())
}
