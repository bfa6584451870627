//! Production: AWS Secrets Manager through the SDK's standard configuration chain.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::imds;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{Credentials, Region};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_types::service_config::ServiceConfigKey;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::error::{redacted_scrubbing, scrub};
use crate::settings::{AwsSettings, SettingSource};
use crate::{Operation, SecretValue, SecretsError, SecretsProvider, value::check_name};

/// The stage read when none is chosen.
pub const AWS_CURRENT: &str = "AWSCURRENT";

/// Connect timeout for Secrets Manager calls.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Read timeout (time to first byte of a response).
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on one attempt of a call.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// Bound on a whole call, retries included: a dead or silent endpoint fails within this.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);
/// Attempts per call (standard retry mode, exponential backoff with jitter).
pub const MAX_ATTEMPTS: u32 = 3;

/// Which version of a secret to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum VersionSelector {
    /// The `AWSCURRENT` stage (the default).
    #[default]
    Current,
    /// A staging label such as `AWSPENDING` or `AWSPREVIOUS`.
    Stage(String),
    /// A version id (a UUID).
    Id(String),
}

/// The timeouts applied to every Secrets Manager call unless the [`SdkConfig`] sets its own.
pub fn bounded_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// An instance-metadata (IMDS) client that gives up quickly: on a machine that is not an EC2
/// instance and has no credentials, the default chain would otherwise spend seconds probing
/// `169.254.169.254` for credentials and region.
fn quick_imds() -> imds::Client {
    imds::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .read_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(1))
        .operation_timeout(Duration::from_secs(2))
        .max_attempts(1)
        .build()
}

/// The AWS standard configuration chain (`aws_config::defaults(BehaviorVersion::latest())`)
/// with bounded timeouts and retries and a quick instance-metadata probe.
///
/// Everything else comes from the standard places: `AWS_ENDPOINT_URL` /
/// `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_REGION`, `AWS_PROFILE` and the profile files,
/// environment credentials, web identity, container and instance roles. No endpoint or
/// credential is built in. Add overrides before `.load()` (tests set an endpoint, a region and
/// static credentials this way).
pub async fn aws_config_loader() -> ConfigLoader {
    standard_loader(None).await
}

/// [`aws_config_loader`] with `settings` applied explicitly: endpoint URL, region, profile
/// name and static credentials, where set. What is unset is left to the standard chain. This
/// is how production mode honours the AWS settings of `.env` without changing the process
/// environment.
pub async fn aws_config_loader_for(settings: &AwsSettings) -> ConfigLoader {
    let mut loader = standard_loader(settings.profile.as_deref()).await;
    if let Some(endpoint) = settings.endpoint() {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
        loader = loader.credentials_provider(Credentials::new(
            id.expose_secret(),
            secret.expose_secret(),
            settings.session_token.as_ref().map(|t| t.expose_secret().to_owned()),
            None,
            "globo-settings",
        ));
    }
    loader
}

async fn standard_loader(profile: Option<&str>) -> ConfigLoader {
    let profile_region = || {
        let mut builder = aws_config::profile::region::ProfileFileRegionProvider::builder();
        if let Some(profile) = profile {
            builder = builder.profile_name(profile);
        }
        builder.build()
    };
    let region = RegionProviderChain::first_try(
        aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(profile_region())
    .or_else(
        aws_config::imds::region::ImdsRegionProvider::builder().imds_client(quick_imds()).build(),
    );
    let mut credentials =
        aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
            .imds_client(quick_imds())
            .region(
                RegionProviderChain::first_try(
                    aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
                )
                .or_else(profile_region()),
            );
    if let Some(profile) = profile {
        credentials = credentials.profile_name(profile);
    }
    let credentials = credentials.build().await;
    aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(credentials)
        .timeout_config(bounded_timeouts())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(1)),
        )
}

/// Secrets from AWS Secrets Manager (`GetSecretValue`): `SecretString` as text,
/// `SecretBinary` as bytes, from the `AWSCURRENT` stage unless another stage or a version id
/// is selected.
#[derive(Clone)]
pub struct AwsProvider {
    client: Client,
    endpoint: String,
    /// The `.env` file the endpoint was read from, if it was (named in error messages).
    endpoint_origin: Option<std::path::PathBuf>,
    /// Why `.env`'s identity settings were not applied, if they were not (for the message
    /// when no credentials are found).
    identity_note: Option<String>,
    /// The variable that sets the endpoint, named in messages about it.
    endpoint_variable: &'static str,
    version: VersionSelector,
}

impl AwsProvider {
    /// Builds a provider from the standard chain ([`aws_config_loader`]): what production
    /// uses.
    pub async fn from_env() -> Result<Self, SecretsError> {
        Self::from_sdk_config(&aws_config_loader().await.load().await)
    }

    /// Builds a provider from resolved settings ([`AwsSettings::resolve`]: the process
    /// environment, with `.env` filling in), applied with [`aws_config_loader_for`]. What
    /// production mode uses. When the endpoint came from a `.env` file, error messages say so.
    pub async fn from_settings(settings: &AwsSettings) -> Result<Self, SecretsError> {
        let origin = match settings.endpoint_source() {
            Some(SettingSource::EnvFile(path)) if settings.endpoint().is_some() => Some(path),
            _ => None,
        };
        let variable = endpoint_variable(settings.endpoint_url_secrets_manager.is_some());
        if let Some(endpoint) = settings.endpoint() {
            let origin = origin.map(|p| format!(" (set in '{}')", p.display())).unwrap_or_default();
            check_endpoint(endpoint, &origin, variable)?;
        }
        let mut provider =
            Self::from_sdk_config(&aws_config_loader_for(settings).await.load().await)?;
        if settings.endpoint().is_some() {
            provider.endpoint_variable = variable;
        }
        provider.endpoint_origin = origin.cloned();
        provider.identity_note = settings.env_identity_dropped_by.map(|selector| {
            format!(
                "; the AWS keys or profile in the .env file were not applied because the \
                 process environment sets {selector}, which selects the identity instead"
            )
        });
        Ok(provider)
    }

    /// Builds a provider from an explicit configuration. Timeouts the configuration leaves
    /// unset are taken from [`bounded_timeouts`], so a call can never hang.
    pub fn from_sdk_config(config: &SdkConfig) -> Result<Self, SecretsError> {
        let Some(region) = config.region() else {
            return Err(SecretsError::NoRegion);
        };
        let region_name = region.as_ref();
        if region_name.is_empty()
            || !region_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(SecretsError::InvalidRegion {
                region: region_name.escape_debug().to_string(),
            });
        }
        let (endpoint, variable) = endpoint_of(config, region.as_ref());
        check_endpoint(&endpoint, "", variable)?;
        let mut timeouts = config.timeout_config().cloned().unwrap_or_else(bounded_timeouts);
        timeouts.take_defaults_from(&bounded_timeouts());
        let service =
            aws_sdk_secretsmanager::config::Builder::from(config).timeout_config(timeouts);
        Ok(Self {
            client: Client::from_conf(service.build()),
            // Only for messages: credentials in the URL are not repeated.
            endpoint: without_userinfo(&endpoint),
            endpoint_origin: None,
            identity_note: None,
            endpoint_variable: variable,
            version: VersionSelector::Current,
        })
    }

    /// Reads this version instead of `AWSCURRENT`.
    #[must_use]
    pub fn with_version(mut self, version: VersionSelector) -> Self {
        self.version = version;
        self
    }

    /// The endpoint calls go to (for messages: where the backend was looked for).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The SDK client, for operations this crate does not wrap.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads one version of a secret.
    pub async fn get_version(
        &self,
        name: &str,
        version: &VersionSelector,
    ) -> Result<SecretValue, SecretsError> {
        check_aws_name(name)?;
        let mut request = self.client.get_secret_value().secret_id(name);
        request = match version {
            // Named explicitly (what AWS does by default): moto answers an unlabelled request
            // with the version written last, even after AWSCURRENT was moved elsewhere.
            VersionSelector::Current => request.version_stage(AWS_CURRENT),
            VersionSelector::Stage(stage) => request.version_stage(stage),
            VersionSelector::Id(id) => request.version_id(id),
        };
        let output = request.send().await.map_err(|e| self.map_error(name, version, e))?;
        if let Some(text) = output.secret_string {
            return Ok(SecretValue::Text(SecretString::from(text)));
        }
        if let Some(blob) = output.secret_binary {
            return Ok(SecretValue::Binary(SecretSlice::from(blob.into_inner())));
        }
        Err(SecretsError::NotFound {
            operation: Operation::Fetch,
            name: name.to_owned(),
            backend: "AWS Secrets Manager",
            detail: " (the version has neither SecretString nor SecretBinary)".into(),
        })
    }

    /// The endpoint, and the `.env` file it was set in if it was: `<url>, set in '<file>'`.
    fn described_endpoint(&self) -> String {
        match &self.endpoint_origin {
            Some(file) => format!("{}, set in '{}'", self.endpoint, file.display()),
            None => self.endpoint.clone(),
        }
    }

    /// Maps an SDK failure of a call made through [`AwsProvider::client`] to this crate's
    /// error kinds; the raw HTTP response is never part of it, and the SDK error is kept only
    /// as a redacted chain of its messages (it can quote the request, and so a secret value
    /// being written).
    pub fn map_error<E>(
        &self,
        name: &str,
        version: &VersionSelector,
        error: SdkError<E, aws_sdk_secretsmanager::config::http::HttpResponse>,
    ) -> SecretsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        self.map_error_for(name, version, error, Operation::Fetch, None)
    }

    /// [`AwsProvider::map_error`] for a call that writes (`CreateSecret`, `PutSecretValue`,
    /// `UpdateSecret`, `UpdateSecretVersionStage`): messages say "Failed to store", and the
    /// value `written`, should the service's answer echo it, is replaced by `[REDACTED]` in
    /// every kept layer.
    ///
    /// Only `written` is redacted: a caller that sends another secret in the same request
    /// (or passes `None` for a call that carries one) gets that text through unredacted if the
    /// service echoes it. Pass the exact value the request carries.
    pub fn map_write_error<E>(
        &self,
        name: &str,
        written: Option<&SecretString>,
        error: SdkError<E, aws_sdk_secretsmanager::config::http::HttpResponse>,
    ) -> SecretsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        self.map_error_for(name, &VersionSelector::Current, error, Operation::Store, written)
    }

    fn map_error_for<E>(
        &self,
        name: &str,
        version: &VersionSelector,
        error: SdkError<E, aws_sdk_secretsmanager::config::http::HttpResponse>,
        operation: Operation,
        written: Option<&SecretString>,
    ) -> SecretsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let redacted = |error: &(dyn StdError + 'static)| redacted_scrubbing(error, written);
        let name = name.to_owned();
        let unavailable = |reason: &str, source| SecretsError::BackendUnavailable {
            operation,
            name: name.clone(),
            endpoint: self.described_endpoint(),
            reason: reason.to_owned(),
            source,
        };
        let error = match error {
            SdkError::ServiceError(service) => {
                // Keep only the service's error (code and message), not the HTTP response.
                let status = service.raw().status().as_u16();
                let service = service.into_err();
                let source = redacted(&service);
                let Some(code) = service.code().map(str::to_owned) else {
                    // No AWS error code: whatever answered is not Secrets Manager (a web
                    // server's 404 page, a proxy). A 5xx may be a transient gateway failure.
                    if status >= 500 {
                        return unavailable(
                            &format!("the endpoint answered HTTP {status} without an AWS error"),
                            source,
                        );
                    }
                    return SecretsError::NotSecretsManager {
                        operation,
                        variable: self.endpoint_variable,
                        name,
                        endpoint: self.described_endpoint(),
                        status,
                    };
                };
                return match code.as_str() {
                    "ResourceNotFoundException" => SecretsError::NotFound {
                        operation,
                        name,
                        backend: "AWS Secrets Manager",
                        detail: match version {
                            VersionSelector::Current => String::new(),
                            VersionSelector::Stage(stage) => {
                                format!(" (no version has stage '{stage}')")
                            }
                            VersionSelector::Id(id) => format!(" (no version with id '{id}')"),
                        },
                    },
                    "InvalidRequestException" => {
                        SecretsError::InvalidState { operation, name, source }
                    }
                    "AccessDeniedException" | "AccessDenied" => SecretsError::AccessDenied {
                        operation,
                        name,
                        detail: String::new(),
                        source,
                    },
                    "DecryptionFailure" => SecretsError::AccessDenied {
                        operation,
                        name,
                        detail: ": KMS could not decrypt it".into(),
                        source,
                    },
                    "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "ExpiredTokenException"
                    | "InvalidClientTokenId" => SecretsError::AccessDenied {
                        operation,
                        name,
                        detail: ": the credentials were rejected".into(),
                        source,
                    },
                    "ThrottlingException" | "TooManyRequestsException" | "RequestLimitExceeded" => {
                        unavailable("throttled by the service; retry later", source)
                    }
                    "InternalServiceError" | "InternalFailure" | "ServiceUnavailable" => {
                        unavailable("the service reported an internal error", source)
                    }
                    _ => SecretsError::Backend {
                        operation,
                        name,
                        reason: format!("the service answered {}", scrub(&code, written)),
                        source,
                    },
                };
            }
            other => other,
        };
        match &error {
            SdkError::TimeoutError(_) => {
                unavailable("no answer within the timeout; is the endpoint up?", redacted(&error))
            }
            SdkError::DispatchFailure(dispatch) if dispatch.is_user() || dispatch.is_other() => {
                SecretsError::Backend {
                    operation,
                    name,
                    reason: format!(
                        "the request could not be sent: are credentials configured? (set \
                         AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use a \
                         role){}",
                        self.identity_note.as_deref().unwrap_or_default()
                    ),
                    source: redacted(&error),
                }
            }
            SdkError::DispatchFailure(_) => {
                unavailable("endpoint unreachable or not answering", redacted(&error))
            }
            SdkError::ResponseError(_) => {
                unavailable("the endpoint sent a response that is not AWS's", redacted(&error))
            }
            _ => SecretsError::Backend {
                operation,
                name,
                reason: format!(
                    "the request could not be built or signed (are credentials configured?){}",
                    self.identity_note.as_deref().unwrap_or_default()
                ),
                source: redacted(&error),
            },
        }
    }
}

/// AWS's rules for a secret name or ARN: letters, digits and `/_+=.@-`, plus `:` in ARNs
/// ([`SecretsError::InvalidName`] otherwise).
pub fn check_aws_name(name: &str) -> Result<(), SecretsError> {
    check_name(name)?;
    if name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-:".contains(c)) {
        Ok(())
    } else {
        Err(SecretsError::InvalidName {
            name: name.escape_debug().to_string(),
            reason: "AWS secret names use only letters, digits and /_+=.@- (ARNs also ':')",
        })
    }
}

/// Checks that `endpoint` is a URL the SDK can send a request to, with the SDK's own parser,
/// before any request is built: the SDK would otherwise fail while applying it to a request
/// whose text (and so the secret it carries) ends up in its error.
fn check_endpoint(
    endpoint: &str,
    origin: &str,
    variable: &'static str,
) -> Result<(), SecretsError> {
    let mut probe = aws_sdk_secretsmanager::config::http::HttpRequest::empty();
    probe.uri_mut().set_endpoint(endpoint).map_err(|error| SecretsError::InvalidEndpoint {
        variable,
        endpoint: without_userinfo(endpoint).escape_debug().to_string(),
        origin: origin.to_owned(),
        reason: error_chain(&error),
    })
}

/// `endpoint` for messages: a user and password in it (`https://user:password@host`) are
/// replaced by `[REDACTED]`. Everything after `://` up to the *last* `@` is treated as user
/// information, even past a `/`, `?` or `#`: a password may contain those characters
/// (`http://user:pa/ss@host`), and a URL parser that reads such a URL otherwise would still
/// have the password in the text repeated.
pub(crate) fn without_userinfo(endpoint: &str) -> String {
    let (scheme, rest) = match endpoint.find("://") {
        Some(at) => endpoint.split_at(at + 3),
        None => ("", endpoint),
    };
    match rest.rfind('@') {
        Some(at) => format!("{scheme}[REDACTED]{}", &rest[at..]),
        None => endpoint.to_owned(),
    }
}

/// `error` and its sources, joined with `: ` (for errors known to hold no secret).
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(layer) = next {
        text.push_str(": ");
        text.push_str(&layer.to_string());
        next = layer.source();
    }
    text
}

/// `AWS_ENDPOINT_URL_SECRETS_MANAGER` when the service-specific endpoint is the one used, else
/// `AWS_ENDPOINT_URL`.
fn endpoint_variable(service_specific: bool) -> &'static str {
    if service_specific { "AWS_ENDPOINT_URL_SECRETS_MANAGER" } else { "AWS_ENDPOINT_URL" }
}

/// The endpoint the Secrets Manager client will use, resolved the way the SDK does it, and
/// the variable that sets it (see [`endpoint_variable`]).
fn endpoint_of(config: &SdkConfig, region: &str) -> (String, &'static str) {
    let service_specific = if config.get_origin("endpoint_url").is_client_config() {
        None
    } else {
        ServiceConfigKey::builder()
            .service_id("Secrets Manager")
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .ok()
            .and_then(|key| config.service_config().and_then(|c| c.load_config(key)))
    };
    let variable = endpoint_variable(service_specific.is_some());
    let endpoint = service_specific
        .or_else(|| config.endpoint_url().map(str::to_owned))
        .unwrap_or_else(|| format!("https://secretsmanager.{region}.amazonaws.com"));
    (endpoint, variable)
}

impl fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsProvider")
            .field("endpoint", &self.endpoint)
            .field("endpoint_origin", &self.endpoint_origin)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SecretsProvider for AwsProvider {
    async fn get_value(&self, name: &str) -> Result<SecretValue, SecretsError> {
        self.get_version(name, &self.version).await
    }
}
