//! The AWS settings of production mode: an allowlist read from the process environment, with
//! `.env` filling in what the process leaves unset.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use crate::aws::without_userinfo;
use crate::{EnvFileSource, Environment, SecretsError};

/// The variables production mode may take from `.env`, in groups. Nothing else is read from
/// the file in production (in particular no secret value).
///
/// A group comes whole from one place: if the process environment sets any variable of a
/// group, the whole group comes from the process and the file's values for it are ignored.
/// So `.env` can never mix its own credentials with a profile chosen by the process, or
/// redirect a process-configured endpoint. An identity the process selects by any other
/// mechanism ([`AWS_IDENTITY_SELECTORS`]: container credentials, web identity, profile files)
/// counts as setting the identity group: `.env`'s keys never replace it. Likewise
/// [`IGNORE_ENDPOINTS_VAR`] set to `true` in the process counts as setting the endpoint group.
pub const AWS_SETTING_GROUPS: [&[&str]; 3] = [
    &["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"],
    &["AWS_REGION", "AWS_DEFAULT_REGION"],
    &[
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ],
];

/// Variables through which the process environment selects an AWS identity by a mechanism
/// other than static keys: set in the process (never read from `.env`), any one of them makes
/// the identity group of [`AWS_SETTING_GROUPS`] come from the process, so `.env`'s static keys
/// or profile are not applied and the SDK's default chain uses the identity the deployment
/// chose.
///
/// These are the variables aws-config's default credentials chain reads to choose an identity
/// (aws-config 1.x: `ecs.rs`, `web_identity_token.rs`, the profile file locations):
/// - container credentials, used by ECS task roles and EKS Pod Identity:
///   `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, `AWS_CONTAINER_CREDENTIALS_FULL_URI`,
///   `AWS_CONTAINER_AUTHORIZATION_TOKEN`, `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`;
/// - web identity (EKS IRSA and other OIDC federations): `AWS_WEB_IDENTITY_TOKEN_FILE`,
///   `AWS_ROLE_ARN`, `AWS_ROLE_SESSION_NAME`;
/// - profile files: `AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`. (The profile name,
///   `AWS_PROFILE` or `AWS_DEFAULT_PROFILE`, is in the identity group itself.)
pub const AWS_IDENTITY_SELECTORS: &[&str] = &[
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
];

/// The variable with which the process tells the SDK to ignore endpoints configured in the
/// environment and profile (`true`). Set so in the process, it counts as setting the endpoint
/// group: no endpoint is applied, neither `.env`'s nor the process's (an endpoint given to the
/// SDK's loader explicitly would bypass the flag), and the SDK's own resolution, which honours
/// it, decides. (The profile key `ignore_configured_endpoint_urls` is not looked at: a
/// deployment relying on it must carry no `.env` endpoint.)
pub const IGNORE_ENDPOINTS_VAR: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

/// The index of the endpoint group in [`AWS_SETTING_GROUPS`].
const ENDPOINT_GROUP: usize = 0;
/// The index of the identity group in [`AWS_SETTING_GROUPS`].
const IDENTITY_GROUP: usize = 2;

/// Where a group of settings came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingSource {
    /// Nothing set anywhere: the SDK's standard chain decides (profile files, roles...).
    Default,
    /// The process environment.
    Process,
    /// The `.env` file (this path).
    EnvFile(PathBuf),
}

/// The AWS settings production mode applies explicitly to the SDK loader: endpoint, region,
/// profile and static credentials, each from the process environment or, when the process
/// sets none of its group, from `.env` (see [`AWS_SETTING_GROUPS`]).
///
/// `Debug` shows which settings are set and where they came from, never a credential.
#[derive(Clone, Default)]
pub struct AwsSettings {
    /// `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER` (wins over `AWS_ENDPOINT_URL` for Secrets Manager).
    pub endpoint_url_secrets_manager: Option<String>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// `AWS_PROFILE`, else `AWS_DEFAULT_PROFILE`. The Rust SDK reads only `AWS_PROFILE`;
    /// `AWS_DEFAULT_PROFILE` is what the Python lab's boto3 and the AWS CLI v1 honour, so it
    /// is applied here explicitly when `AWS_PROFILE` is unset (boto3 prefers
    /// `AWS_DEFAULT_PROFILE` when both are set; globo, like the AWS CLI v2, `AWS_PROFILE`).
    pub profile: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<SecretString>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<SecretString>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<SecretString>,
    /// Where the endpoint, region and credential groups came from, in that order.
    pub sources: [Option<SettingSource>; 3],
    /// The process variable of [`AWS_IDENTITY_SELECTORS`] that kept `.env`'s identity
    /// settings (static keys, profile) from being applied, when `.env` had some: named in the
    /// error when no credentials are found.
    pub env_identity_dropped_by: Option<&'static str>,
}

impl AwsSettings {
    /// Resolves the settings from `env` (normally [`Environment::from_process`]) and
    /// `env_file` (normally `.env`, or an [`EnvFile`](crate::EnvFile) already read; a missing
    /// file is fine). Only the allowlisted variables are read from the file.
    pub fn resolve(
        env_file: &(impl EnvFileSource + ?Sized),
        env: &Environment,
    ) -> Result<Self, SecretsError> {
        let file = env_file.load_env_file(env)?;
        let env_file = file.path();
        let from_file = |name: &str| file.get(name).cloned();
        let mut values: Vec<Option<SecretString>> = Vec::new();
        let mut sources: [Option<SettingSource>; 3] = [None, None, None];
        let mut env_identity_dropped_by = None;
        for (group, names) in AWS_SETTING_GROUPS.iter().enumerate() {
            let set = |v: &Option<SecretString>| {
                v.as_ref().is_some_and(|s| !s.expose_secret().trim().is_empty())
            };
            let process: Vec<Option<SecretString>> =
                names.iter().map(|name| env.get(name).cloned()).collect();
            let file_values: Vec<Option<SecretString>> =
                names.iter().map(|name| from_file(name)).collect();
            // The deployment may choose the identity by a variable outside the group (a
            // container or web-identity role...): then the file's identity must not apply.
            let selector = AWS_IDENTITY_SELECTORS
                .iter()
                .copied()
                .find(|name| set(&env.get(name).cloned()))
                .filter(|_| group == IDENTITY_GROUP);
            // Told to ignore configured endpoints, the SDK must not get one explicitly.
            let ignore_endpoints = group == ENDPOINT_GROUP
                && env
                    .get(IGNORE_ENDPOINTS_VAR)
                    .is_some_and(|v| v.expose_secret().trim().eq_ignore_ascii_case("true"));
            if ignore_endpoints {
                sources[group] = Some(SettingSource::Process);
                values.extend(std::iter::repeat_n(None, names.len()));
                continue;
            }
            let by_process = process.iter().any(set);
            if !by_process && selector.is_some() && file_values.iter().any(set) {
                env_identity_dropped_by = selector;
            }
            let (chosen, source) = if selector.is_some() || by_process {
                (process, SettingSource::Process)
            } else if file_values.iter().any(set) {
                (file_values, SettingSource::EnvFile(env_file.to_path_buf()))
            } else {
                (vec![None; names.len()], SettingSource::Default)
            };
            sources[group] = Some(source);
            values.extend(
                chosen.into_iter().map(|v| v.filter(|s| !s.expose_secret().trim().is_empty())),
            );
        }
        let text = |v: &Option<SecretString>| v.as_ref().map(|s| s.expose_secret().to_owned());
        let settings = Self {
            endpoint_url: text(&values[0]),
            endpoint_url_secrets_manager: text(&values[1]),
            region: text(&values[2]).or_else(|| text(&values[3])),
            profile: text(&values[4]).or_else(|| text(&values[5])),
            access_key_id: values[6].clone(),
            secret_access_key: values[7].clone(),
            session_token: values[8].clone(),
            sources,
            env_identity_dropped_by,
        };
        settings.check()?;
        Ok(settings)
    }

    /// Half a pair of static credentials is a configuration mistake, not a reason to fall
    /// back silently to another identity.
    fn check(&self) -> Result<(), SecretsError> {
        let incomplete = |set, missing| SecretsError::IncompleteCredentials {
            set,
            missing,
            env_file: self.env_file_of(IDENTITY_GROUP),
        };
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(_), None) => Err(incomplete("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
            (None, Some(_)) => Err(incomplete("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")),
            _ => Ok(()),
        }
    }

    /// The `.env` file group `group` came from, if it came from one.
    fn env_file_of(&self, group: usize) -> Option<PathBuf> {
        match &self.sources[group] {
            Some(SettingSource::EnvFile(path)) => Some(path.clone()),
            _ => None,
        }
    }

    /// The endpoint for Secrets Manager, if one is configured (service-specific first).
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint_url_secrets_manager.as_deref().or(self.endpoint_url.as_deref())
    }

    /// Where the endpoint group came from.
    pub fn endpoint_source(&self) -> Option<&SettingSource> {
        self.sources[0].as_ref()
    }

    /// Whether any setting was taken from the `.env` file.
    pub fn uses_env_file(&self) -> bool {
        self.sources.iter().any(|s| matches!(s, Some(SettingSource::EnvFile(_))))
    }
}

impl fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<SecretString>| if v.is_some() { "[SET]" } else { "[UNSET]" };
        f.debug_struct("AwsSettings")
            .field("endpoint_url", &self.endpoint_url.as_deref().map(without_userinfo))
            .field(
                "endpoint_url_secrets_manager",
                &self.endpoint_url_secrets_manager.as_deref().map(without_userinfo),
            )
            .field("region", &self.region)
            .field("profile", &self.profile)
            .field("access_key_id", &set(&self.access_key_id))
            .field("secret_access_key", &set(&self.secret_access_key))
            .field("session_token", &set(&self.session_token))
            .field("sources", &self.sources)
            .field("env_identity_dropped_by", &self.env_identity_dropped_by)
            .finish()
    }
}
