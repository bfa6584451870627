//! Choosing the provider: explicit mode, else `APP_MODE`, else local.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::error::ModeOrigin;
#[cfg(feature = "aws")]
use crate::{AwsProvider, AwsSettings};
use crate::{EnvFileSource, Environment, LocalProvider, SecretsError, SecretsProvider};

/// Where secrets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Development: the process environment over `.env`.
    Local,
    /// Production: AWS Secrets Manager through the standard AWS configuration chain (the
    /// `aws` feature; without it, [`provider_for`] fails with
    /// [`SecretsError::BackendNotBuilt`]).
    Prod,
}

impl FromStr for Mode {
    type Err = SecretsError;

    /// `local` or `prod`, nothing else: a typo such as `prd` is an error, never a fallback.
    /// The message repeats the text only if it is a short plain word (see `Mode::parse_from`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse_from(text, ModeOrigin::Text)
    }
}

impl Mode {
    /// `text` as a mode; an error ([`SecretsError::UnknownMode`]) says where it came from and
    /// what is allowed. The text itself is repeated only when it is a short plain word
    /// (`prd`): a mode that came from a malformed `.env` can hold the lines after it, secrets
    /// included (`APP_MODE='prod` opens a quote that a later `'` closes), and a mode with
    /// other characters is shown as "(value not shown)".
    fn parse_from(text: &str, origin: ModeOrigin) -> Result<Self, SecretsError> {
        match text {
            "local" => Ok(Self::Local),
            "prod" => Ok(Self::Prod),
            other => Err(SecretsError::UnknownMode {
                value: is_plain_word(other).then(|| other.to_owned()),
                origin,
            }),
        }
    }
}

/// At most 16 ASCII letters, digits, `-` or `_`: a mode value safe to repeat in a message.
fn is_plain_word(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 16
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
/// value is not UTF-8 (it is set, so it is not "unset"). The error names where the mode came
/// from (the variable, or the file and line) and never repeats a value read from the file: a
/// malformed `.env` (`APP_MODE='prod` with a later `'`) makes `APP_MODE` span the lines
/// between, secrets included, exactly as python-dotenv reads it. `env_file` is a path or an
/// [`EnvFile`](crate::EnvFile) already read (for a pipe, which can be read once).
pub fn resolve_mode(
    explicit: Option<Mode>,
    env_file: &(impl EnvFileSource + ?Sized),
    env: &Environment,
) -> Result<Mode, SecretsError> {
    if let Some(mode) = mode_without_env_file(explicit, env)? {
        return Ok(mode);
    }
    let file = env_file.load_env_file(env)?;
    let Some(mode) = file.get("APP_MODE") else { return Ok(Mode::Local) };
    match mode.expose_secret() {
        "local" => Ok(Mode::Local),
        "prod" => Ok(Mode::Prod),
        _ => Err(SecretsError::UnknownMode {
            value: None,
            origin: ModeOrigin::EnvFile {
                path: file.path().to_path_buf(),
                line: file.line_of("APP_MODE"),
            },
        }),
    }
}

/// The mode, if it is decided without the `.env` file: `explicit`, else `APP_MODE` from `env`
/// (with the errors of [`resolve_mode`]); `Ok(None)` when only the file can tell. A program
/// that needs nothing from the file in local mode (its config commands, say) reads it only
/// when this is not [`Mode::Local`].
pub fn mode_without_env_file(
    explicit: Option<Mode>,
    env: &Environment,
) -> Result<Option<Mode>, SecretsError> {
    if let Some(mode) = explicit {
        return Ok(Some(mode));
    }
    if env.is_set_but_not_utf8("APP_MODE") {
        return Err(Environment::not_utf8_error("APP_MODE"));
    }
    match env.get("APP_MODE") {
        Some(mode) => Mode::parse_from(mode.expose_secret(), ModeOrigin::Environment).map(Some),
        None => Ok(None),
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
///   hosts should not carry one (see `docs/key-modes.md`). Without the `aws` feature, prod
///   mode is [`SecretsError::BackendNotBuilt`] (after the mode itself was checked), never a
///   fallback to local.
pub async fn provider_for(
    explicit: Option<Mode>,
    env_file: &(impl EnvFileSource + ?Sized),
    env: &Environment,
) -> Result<Arc<dyn SecretsProvider>, SecretsError> {
    let file = env_file.load_env_file(env)?;
    match resolve_mode(explicit, &*file, env)? {
        Mode::Local => Ok(Arc::new(LocalProvider::from_env_file(&file, env))),
        Mode::Prod => prod_provider(&file, env).await,
    }
}

/// Production's provider: AWS Secrets Manager with the settings of [`AwsSettings::resolve`].
#[cfg(feature = "aws")]
async fn prod_provider(
    file: &crate::EnvFile,
    env: &Environment,
) -> Result<Arc<dyn SecretsProvider>, SecretsError> {
    Ok(Arc::new(AwsProvider::from_settings(&AwsSettings::resolve(file, env)?).await?))
}

/// Production's provider in a build without a production backend: a typed error, never a
/// fallback to local (a Vault backend would be chosen here too, behind its own feature).
#[cfg(not(feature = "aws"))]
async fn prod_provider(
    _file: &crate::EnvFile,
    _env: &Environment,
) -> Result<Arc<dyn SecretsProvider>, SecretsError> {
    Err(SecretsError::BackendNotBuilt {
        mode: Mode::Prod,
        backend: "AWS Secrets Manager",
        feature: "aws",
    })
}
