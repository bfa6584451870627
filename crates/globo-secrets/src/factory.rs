//! Choosing the provider: explicit mode, else `APP_MODE`, else local.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::{
    AwsProvider, AwsSettings, EnvFileSource, Environment, LocalProvider, SecretsError,
    SecretsProvider,
};

/// Where secrets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Development: the process environment over `.env`.
    Local,
    /// Production: AWS Secrets Manager through the standard AWS configuration chain.
    Prod,
}

impl FromStr for Mode {
    type Err = SecretsError;

    /// `local` or `prod`, nothing else: a typo such as `prd` is an error, never a fallback.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "local" => Ok(Self::Local),
            "prod" => Ok(Self::Prod),
            other => Err(SecretsError::Config(format!(
                "unknown mode '{}': use 'local' or 'prod'",
                other.escape_debug()
            ))),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Prod => "prod",
        })
    }
}

/// The mode to use: `explicit` if given, else `APP_MODE` from `env`, else the last
/// `APP_MODE` of the `.env` file (as python-dotenv reads it: a later line wins, so an
/// appended `APP_MODE=prod` takes effect), else [`Mode::Local`].
///
/// Fails closed: an unknown `APP_MODE` is an error, and so is an `APP_MODE` in `env` whose
/// value is not UTF-8 (it is set, so it is not "unset"). `env_file` is a path or an
/// [`EnvFile`](crate::EnvFile) already read (for a pipe, which can be read once).
pub fn resolve_mode(
    explicit: Option<Mode>,
    env_file: &(impl EnvFileSource + ?Sized),
    env: &Environment,
) -> Result<Mode, SecretsError> {
    if let Some(mode) = explicit {
        return Ok(mode);
    }
    if env.is_set_but_not_utf8("APP_MODE") {
        return Err(Environment::not_utf8_error("APP_MODE"));
    }
    if let Some(mode) = env.get("APP_MODE") {
        return mode.expose_secret().parse();
    }
    match env_file.load_env_file(env)?.get("APP_MODE") {
        Some(mode) => mode.expose_secret().parse(),
        None => Ok(Mode::Local),
    }
}

/// Builds the provider for a mode (resolved with [`resolve_mode`]). `env` is the environment
/// local mode reads and where `APP_MODE` is looked up first (pass
/// [`Environment::from_process`] in a program, a hand-made one in tests). `env_file` (a path,
/// or an [`EnvFile`](crate::EnvFile) already read) is read once for the mode, the values and
/// the settings, so a pipe such as `<(cmd)` works with or without an explicit mode.
///
/// - [`Mode::Local`]: a [`LocalProvider`] over `env_file` and `env`.
/// - [`Mode::Prod`]: an [`AwsProvider`] from the standard AWS chain with the settings of
///   [`AwsSettings::resolve`] applied ([`AwsProvider::from_settings`]). Production never reads
///   a secret value from `.env`: a name present in `.env` but absent from Secrets Manager is
///   [`SecretsError::NotFound`]. `.env` may only supply `APP_MODE` and the AWS settings of
///   [`AWS_SETTING_GROUPS`](crate::AWS_SETTING_GROUPS) (endpoint, region, profile,
///   credentials), and only for a group the process environment leaves entirely unset (the
///   lab's `load_dotenv(override=False)` then boto3). A process configured by its deployment
///   (environment, role) is therefore never redirected by a stray `.env`; a host with no AWS
///   settings at all and a development `.env` would follow the file, which is why production
///   hosts should not carry one (see `docs/key-modes.md`).
pub async fn provider_for(
    explicit: Option<Mode>,
    env_file: &(impl EnvFileSource + ?Sized),
    env: &Environment,
) -> Result<Arc<dyn SecretsProvider>, SecretsError> {
    let file = env_file.load_env_file(env)?;
    match resolve_mode(explicit, &*file, env)? {
        Mode::Local => Ok(Arc::new(LocalProvider::from_env_file(&file, env))),
        Mode::Prod => {
            Ok(Arc::new(AwsProvider::from_settings(&AwsSettings::resolve(&*file, env)?).await?))
        }
    }
}
