//! The one error type of globo-secrets.
//!
//! Messages name the secret, the file or the endpoint involved, never a secret value. Errors
//! from the AWS SDK and I/O are kept out of the public API: they are only reachable as
//! [`source()`](std::error::Error::source), and raw HTTP responses are never part of a message.

use std::path::PathBuf;

/// A boxed underlying error (AWS SDK, I/O), exposed only through `source()`.
pub(crate) type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The text that replaces a layer of an SDK error chain that formatted the request.
#[cfg(feature = "aws")]
pub(crate) const WITHHELD: &str =
    "(detail withheld: it quoted the request, which can hold a secret value)";

/// An AWS SDK error made safe to print: its `source()` chain copied layer by layer as text,
/// with every layer that formats the HTTP request replaced by [`WITHHELD`].
///
/// The SDK's errors are not written for secret-bearing requests: when the endpoint cannot be
/// applied, aws-smithy-runtime reports "failed to apply endpoint ... to request `{request:?}`",
/// whose `Debug` holds the body, i.e. the `SecretString` of a `CreateSecret` or
/// `PutSecretValue`. Every SDK error this crate keeps goes through [`redacted_scrubbing`], so no
/// message chain printed by a caller can carry a request.
#[cfg(feature = "aws")]
#[derive(Debug)]
pub(crate) struct Redacted {
    message: String,
    next: Option<Box<Redacted>>,
}

#[cfg(feature = "aws")]
impl std::fmt::Display for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(feature = "aws")]
impl std::error::Error for Redacted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.next.as_deref().map(|next| next as &(dyn std::error::Error + 'static))
    }
}

/// Whether a message formats an HTTP request or body (`Request { body: SdkBody { ... } }`).
#[cfg(feature = "aws")]
fn quotes_a_request(message: &str) -> bool {
    message.contains("SdkBody") || message.contains("Request {")
}

/// The text that replaces a value being written wherever an error layer repeats it.
#[cfg(feature = "aws")]
pub(crate) const REDACTED: &str = "[REDACTED]";

/// The forms in which a service or proxy can echo `value` back: as sent (the JSON body of
/// `PutSecretValue`/`CreateSecret` holds it JSON-escaped) and base64-encoded.
#[cfg(feature = "aws")]
fn echo_forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    if let Ok(json) = serde_json::to_string(value) {
        forms.push(json.trim_matches('"').to_owned());
    }
    forms.push(aws_smithy_types::base64::encode(value.as_bytes()));
    forms.retain(|form| !form.is_empty());
    forms.sort();
    forms.dedup();
    // Longest first: a form that contains another is replaced whole.
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms
}

/// `text` with every form of `written` (see [`echo_forms`]) replaced by [`REDACTED`].
#[cfg(feature = "aws")]
pub(crate) fn scrub(text: &str, written: Option<&secrecy::SecretString>) -> String {
    use secrecy::ExposeSecret as _;
    let Some(written) = written else { return text.to_owned() };
    let mut text = text.to_owned();
    for form in echo_forms(written.expose_secret()) {
        text = text.replace(&form, REDACTED);
    }
    text
}

/// Copies `error` and its `source()` chain into a [`Redacted`] chain, also replacing in every layer's text the value being written (`written`: the
/// `SecretString` of a `CreateSecret` or `PutSecretValue`) by [`REDACTED`]: a service error
/// (moto, a proxy) may echo the request's input in its message.
#[cfg(feature = "aws")]
pub(crate) fn redacted_scrubbing(
    error: &(dyn std::error::Error + 'static),
    written: Option<&secrecy::SecretString>,
) -> Source {
    let mut layers = Vec::new();
    let mut current = Some(error);
    while let Some(layer) = current {
        let message = layer.to_string();
        layers.push(if quotes_a_request(&message) {
            WITHHELD.to_owned()
        } else {
            scrub(&message, written)
        });
        current = layer.source();
    }
    let mut chain: Option<Box<Redacted>> = None;
    for message in layers.into_iter().rev() {
        chain = Some(Box::new(Redacted { message, next: chain }));
    }
    match chain {
        Some(chain) => chain,
        None => Box::new(Redacted { message: String::new(), next: None }),
    }
}

/// What was being done with a secret when a backend call failed: messages say "Failed to
/// fetch secret ... from" or "Failed to store secret ... in".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Reading it (`GetSecretValue`, `DescribeSecret`, `ListSecretVersionIds`).
    Fetch,
    /// Writing it (`CreateSecret`, `PutSecretValue`, `UpdateSecret`,
    /// `UpdateSecretVersionStage`).
    Store,
}

impl Operation {
    /// `from` or `in`, the preposition before the backend's name.
    pub fn preposition(self) -> &'static str {
        match self {
            Self::Fetch => "from",
            Self::Store => "in",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fetch => "fetch",
            Self::Store => "store",
        })
    }
}

/// Everything that can go wrong while reading or seeding a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// The local provider has no such variable, neither in the process environment nor in
    /// `.env` (the lab's wording).
    #[error(
        "Secret '{name}' not found in environment. Add it to your .env file or switch to prod mode."
    )]
    NotFoundLocal {
        /// The secret's name.
        name: String,
    },
    /// The local provider has no such variable in the process environment, and the `.env`
    /// file it was to read does not exist: most likely the wrong folder or file name.
    #[error(
        "Secret '{name}' not found in environment, and the .env file '{}' does not exist. Create \
         it (the keys are listed in .env.example), point to the right file, or switch to prod mode.",
        env_file.display()
    )]
    NotFoundNoEnvFile {
        /// The secret's name.
        name: String,
        /// The `.env` file that was looked for.
        env_file: PathBuf,
    },
    /// The local provider has no such variable in the process environment, and the `.env`
    /// file was not read because `PYTHON_DOTENV_DISABLED` is set to a true value (as
    /// python-dotenv's `load_dotenv` does; see [`EnvFile::read`](crate::EnvFile::read)).
    #[error(
        "Secret '{name}' not found in environment, and the .env file '{}' was not read because \
         PYTHON_DOTENV_DISABLED is set. Set the secret in the environment, or unset \
         PYTHON_DOTENV_DISABLED.",
        env_file.display()
    )]
    NotFoundEnvFileDisabled {
        /// The secret's name.
        name: String,
        /// The `.env` file that was not read.
        env_file: PathBuf,
    },
    /// The backend (AWS Secrets Manager, or an in-memory store) has no such secret, or not
    /// the requested version.
    #[error(
        "Failed to {operation} secret '{name}' {} {backend}: secret not found{detail}",
        .operation.preposition()
    )]
    NotFound {
        /// Reading or writing.
        operation: Operation,
        /// The secret's name.
        name: String,
        /// The backend's human name, e.g. `AWS Secrets Manager`.
        backend: &'static str,
        /// Extra context, e.g. the version stage that was asked for.
        detail: String,
    },
    /// The secret exists but cannot be read now: scheduled for deletion, or not in a state
    /// that allows reading (`InvalidRequestException`).
    #[error(
        "Failed to {operation} secret '{name}' {} AWS Secrets Manager: the secret cannot be \
         {} in its current state (it may be scheduled for deletion; restore it with \
         'aws secretsmanager restore-secret --secret-id {name}')",
        .operation.preposition(),
        if matches!(operation, Operation::Fetch) { "read" } else { "changed" }
    )]
    InvalidState {
        /// Reading or writing.
        operation: Operation,
        /// The secret's name.
        name: String,
        /// The SDK error.
        #[source]
        source: Source,
    },
    /// The caller's identity may not read the secret, or KMS refused to decrypt it.
    #[error(
        "Failed to {operation} secret '{name}' {} AWS Secrets Manager: access denied{detail}; \
         check the IAM policy of the identity in use (AWS_PROFILE, role or environment \
         credentials)",
        .operation.preposition()
    )]
    AccessDenied {
        /// Reading or writing.
        operation: Operation,
        /// The secret's name.
        name: String,
        /// Which refusal it was (e.g. `: KMS could not decrypt it`).
        detail: String,
        /// The SDK error.
        #[source]
        source: Source,
    },
    /// The backend could not be reached or did not answer in time, or throttled us. Transient:
    /// the caching layer serves the last good value for a bounded time.
    #[error(
        "Failed to {operation} secret '{name}' {} AWS Secrets Manager: {reason} ({endpoint})",
        .operation.preposition()
    )]
    BackendUnavailable {
        /// Reading or writing.
        operation: Operation,
        /// The secret's name.
        name: String,
        /// The endpoint that was tried, e.g. `http://127.0.0.1:5000`.
        endpoint: String,
        /// What happened, e.g. `endpoint unreachable or not answering`.
        reason: String,
        /// The SDK error.
        #[source]
        source: Source,
    },
    /// The AWS SDK failed in a way not covered above (e.g. no credentials could be found).
    #[error(
        "Failed to {operation} secret '{name}' {} AWS Secrets Manager: {reason}",
        .operation.preposition()
    )]
    Backend {
        /// Reading or writing.
        operation: Operation,
        /// The secret's name.
        name: String,
        /// A short description that names no secret value.
        reason: String,
        /// The SDK error.
        #[source]
        source: Source,
    },
    /// The name cannot be a secret name (empty, or has characters neither an environment
    /// variable nor AWS allow).
    #[error("invalid secret name '{name}': {reason}")]
    InvalidName {
        /// The offending name (with control characters escaped).
        name: String,
        /// What rule it breaks.
        reason: &'static str,
    },
    /// The `.env` file has a statement python-dotenv cannot parse (python-dotenv would skip
    /// it; globo refuses the file, see `globo_secrets::dotenv`). Its content is not repeated
    /// (it may hold a secret).
    #[error("malformed line {line} in '{}': fix its syntax (KEY=value)", path.display())]
    MalformedEnvFile {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A key or value of the `.env` file contains a NUL byte, which no environment variable
    /// can hold: the lab's `load_dotenv` fails there (`ValueError: embedded null byte`), and
    /// globo refuses the file. Neither the key nor the value is repeated.
    #[error(
        "line {line} in '{}': a key or value contains a NUL byte, which an environment variable \
         cannot hold: remove it",
        path.display()
    )]
    EnvFileNulByte {
        /// The file.
        path: PathBuf,
        /// 1-based line where the statement starts.
        line: usize,
    },
    /// The `.env` file is not valid UTF-8 (the encoding python-dotenv reads it with).
    #[error("'{}' is not valid UTF-8 (line {line}): save it as UTF-8", path.display())]
    EnvFileNotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
    },
    /// The `.env` file exists but cannot be read (permissions, a folder, larger than
    /// `MAX_ENV_FILE_LEN`, a FIFO with no writer).
    #[error("cannot read '{}'", path.display())]
    EnvFileUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file holding `seed_secrets` cannot be read (missing, permissions, a
    /// folder, larger than [`MAX_SEED_CONFIG_LEN`](crate::seed::MAX_SEED_CONFIG_LEN), a FIFO
    /// with no writer).
    #[error("cannot read the configuration file '{}'", path.display())]
    ConfigUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No AWS region is configured anywhere the SDK looks (environment, `.env`, profile,
    /// instance metadata), so no Secrets Manager endpoint can be chosen.
    #[error(
        "no AWS region configured: set AWS_REGION (or AWS_DEFAULT_REGION) in the environment \
         or, for the emulator, in .env; or set 'region' in the AWS profile in use"
    )]
    NoRegion,
    /// The configured region is not a region name, so no endpoint can be built from it.
    #[error(
        "the AWS region '{region}' is not a region name (letters, digits and '-', e.g. \
         us-east-1): fix AWS_REGION (or AWS_DEFAULT_REGION, or 'region' in the AWS profile)"
    )]
    InvalidRegion {
        /// The region, with control characters escaped.
        region: String,
    },
    /// The Secrets Manager endpoint (from `AWS_ENDPOINT_URL` or
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER`, or built from the region) is not a URL a request can
    /// be sent to.
    #[error(
        "the Secrets Manager endpoint '{endpoint}'{origin} is not a valid URL ({reason}): set \
         {variable} to a URL such as http://127.0.0.1:5000 (the emulator), or leave it unset to \
         use AWS"
    )]
    InvalidEndpoint {
        /// The variable the endpoint is set by (`AWS_ENDPOINT_URL_SECRETS_MANAGER` when that
        /// one is used, else `AWS_ENDPOINT_URL`).
        variable: &'static str,
        /// The endpoint, with control characters escaped.
        endpoint: String,
        /// ` (set in '<file>')` when it came from a `.env` file, else empty.
        origin: String,
        /// What is wrong with it (the URL parser's message, which holds no secret).
        reason: String,
    },
    /// The endpoint answered, but not as AWS Secrets Manager: an HTTP error without an AWS
    /// error code (an ordinary web server, a proxy, a wrong port).
    #[error(
        "Failed to {operation} secret '{name}' {} AWS Secrets Manager: {endpoint} did not answer \
         as Secrets Manager (HTTP {status} without an AWS error code); check that {variable} \
         names the Secrets Manager endpoint (the emulator: http://127.0.0.1:5000)",
        .operation.preposition()
    )]
    NotSecretsManager {
        /// Reading or writing.
        operation: Operation,
        /// The variable the endpoint is set by (`AWS_ENDPOINT_URL_SECRETS_MANAGER` when that
        /// one is used, else `AWS_ENDPOINT_URL`).
        variable: &'static str,
        /// The secret's name.
        name: String,
        /// The endpoint that answered (and the `.env` file it was set in, if it was).
        endpoint: String,
        /// The HTTP status it answered with. (The SDK's error is not kept: it only says that
        /// the body, e.g. an HTML page, is not AWS JSON.)
        status: u16,
    },
    /// A seed value for a guarded secret (see `seed::Guard`, e.g. one holding an encryption
    /// key) does not pass the guard's check (the value is not repeated). Nothing was written.
    #[error(
        "the seed value for secret '{name}' is not {expected}: '{name}' holds {held}, so only a \
         valid one may be written to it; nothing was written"
    )]
    SeedValueRejected {
        /// The secret's name.
        name: String,
        /// What the guard accepts, e.g. `a Fernet key (expected 44 characters of URL-safe
        /// base64 encoding 32 bytes)`.
        expected: String,
        /// What the secret holds, e.g. `the configuration's Fernet key` (`seed::Guard::holding`).
        held: String,
    },
    /// The secret is binary (`SecretBinary`) but text was asked for.
    #[error("secret '{name}' is binary; read it with get_value() (or get_bytes())")]
    NotText {
        /// The secret's name.
        name: String,
    },
    /// A mode is neither `local` nor `prod`. Fails closed: never a fallback to either.
    #[error(
        "malformed configuration: unknown mode{}{}: use 'local' or 'prod'",
        match value { Some(value) => format!(" '{value}'"), None => " (value not shown)".to_owned() },
        origin.words()
    )]
    UnknownMode {
        /// The mode as given, only when it is a short plain word (at most 16 ASCII letters,
        /// digits, `-` or `_`, e.g. `prd`); `None` otherwise, since a mode read from a
        /// malformed `.env` can span the lines after it, secrets included.
        value: Option<String>,
        /// Where the mode came from.
        origin: ModeOrigin,
    },
    /// The mode needs a backend this build of globo-secrets does not include: its cargo
    /// feature is off (e.g. `prod` without the `aws` feature).
    #[error(
        "{mode} mode reads secrets from {backend}, which this build does not include (the \
         '{feature}' feature of globo-secrets is off)"
    )]
    BackendNotBuilt {
        /// The mode that was asked for.
        mode: crate::Mode,
        /// The backend's human name, e.g. `AWS Secrets Manager`.
        backend: &'static str,
        /// The cargo feature that adds it, e.g. `aws`.
        feature: &'static str,
    },
    /// An environment variable that must be read is set, but its value is not UTF-8 (it
    /// does not count as unset: for `APP_MODE` that would fall back to `.env` or local mode).
    #[error(
        "malformed configuration: the environment variable {name} is set but its value is not \
         valid UTF-8: set it to UTF-8 text or unset it"
    )]
    EnvVarNotUtf8 {
        /// The variable's name.
        name: String,
    },
    /// Half a pair of static AWS credentials is set (`AWS_ACCESS_KEY_ID` without
    /// `AWS_SECRET_ACCESS_KEY` or the reverse): a mistake, never a reason to fall back
    /// silently to another identity.
    #[error(
        "malformed configuration: {set} is set{} without {missing}: set both, or neither (and \
         use AWS_PROFILE or a role)",
        match env_file { Some(path) => format!(" in '{}'", path.display()), None => String::new() }
    )]
    IncompleteCredentials {
        /// The variable that is set.
        set: &'static str,
        /// The variable that is missing.
        missing: &'static str,
        /// The `.env` file the pair came from, or `None` for the process environment.
        env_file: Option<PathBuf>,
    },
    /// A configuration holding a seed list is not valid JSON. Only the position is kept:
    /// the parser's message can quote the input, values included.
    #[error(
        "malformed configuration: the configuration is not valid JSON (line {line}, column \
         {column})"
    )]
    SeedConfigNotJson {
        /// The line of the first error (1-based).
        line: usize,
        /// The column of the first error (1-based).
        column: usize,
    },
    /// The configuration has no `seed_secrets` member.
    #[error("malformed configuration: the configuration has no 'seed_secrets' object")]
    SeedConfigMissing,
    /// `seed_secrets` is not a JSON object of name: value.
    #[error("malformed configuration: 'seed_secrets' must be an object of name: value")]
    SeedConfigNotObject,
    /// A value of `seed_secrets` is not a string (the value is not repeated).
    #[error("malformed configuration: seed_secrets.{name} must be a string")]
    SeedValueNotString {
        /// The secret's name (the member's key).
        name: String,
    },
    /// A seed list names one secret twice (by name and by ARN): the second write would undo
    /// the first. Nothing was written.
    #[error(
        "malformed configuration: the seed list names secret '{name}' twice (by name and by \
         ARN); nothing was written"
    )]
    SeedSecretTwice {
        /// The secret's name, as the later entry gives it.
        name: String,
    },
}

/// Where a mode came from, as [`SecretsError::UnknownMode`] names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModeOrigin {
    /// Text given to [`Mode::from_str`](std::str::FromStr::from_str) (a flag, a setting).
    Text,
    /// The process environment's `APP_MODE`.
    Environment,
    /// The last `APP_MODE` of a `.env` file.
    EnvFile {
        /// The file.
        path: PathBuf,
        /// The line it is on, when known.
        line: Option<usize>,
    },
}

impl ModeOrigin {
    /// What follows the mode in [`SecretsError::UnknownMode`]'s message: nothing for text,
    /// else ` in ...`.
    fn words(&self) -> String {
        match self {
            Self::Text => String::new(),
            Self::Environment => " in the environment variable APP_MODE".to_owned(),
            Self::EnvFile { path, line: Some(line) } => {
                format!(" in APP_MODE at '{}' line {line}", path.display())
            }
            Self::EnvFile { path, line: None } => format!(" in APP_MODE at '{}'", path.display()),
        }
    }
}

impl SecretsError {
    /// Whether the failure is transient (backend unreachable, timeout, throttling): the
    /// caching layer keeps serving a stale value only for these.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::BackendUnavailable { .. })
    }

    /// Whether the secret (or the requested version) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::NotFoundLocal { .. }
                | Self::NotFoundNoEnvFile { .. }
                | Self::NotFoundEnvFileDisabled { .. }
                | Self::NotFound { .. }
        )
    }
}

#[cfg(all(test, feature = "aws"))]
mod tests {
    use super::*;

    /// An error shaped like aws-smithy-runtime's endpoint failure: a layer quoting the request.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn redacted_chains_keep_every_layer_but_those_quoting_the_request() {
        let error = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "failed to apply endpoint `http://[bad` to request `Request { body: SdkBody { \
                 inner: Once(Some(b\"{\\\"SecretString\\\":\\\"hunter2-key\\\"}\")) } }`",
                Some(Box::new(Layer("endpoint is not a valid URI", None))),
            ))),
        );
        let safe = redacted_scrubbing(&error, None);
        let mut messages = vec![safe.to_string()];
        let mut next = safe.source();
        while let Some(layer) = next {
            messages.push(layer.to_string());
            next = layer.source();
        }
        assert_eq!(messages, ["dispatch failure", WITHHELD, "endpoint is not a valid URI"]);
    }
}
