//! Production mode's AWS settings: the process environment wins, `.env` fills in a group the
//! process leaves unset, and secret values never come from `.env` in production. Checked
//! against a real moto server with injected environments (the process environment is never
//! modified).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use globo_secrets::{
    AwsProvider, AwsSettings, Environment, Mode, SecretsError, SettingSource, provider_for, seed,
};
use secrecy::{ExposeSecret, SecretString};

fn write_env(dir: &Path, content: &str) -> PathBuf {
    let path = dir.join(".env");
    std::fs::write(&path, content).unwrap();
    path
}

/// The lab's `.env` for the emulator, plus a local-only secret value.
fn emulator_env(endpoint: &str) -> String {
    format!(
        "APP_MODE=prod\nAWS_ENDPOINT_URL={endpoint}\nAWS_REGION=us-east-1\n\
         AWS_DEFAULT_REGION=us-east-1\nAWS_ACCESS_KEY_ID=testing\n\
         AWS_SECRET_ACCESS_KEY=testing-secret-access-key\n\
         PAYMENT_GATEWAY_API_KEY=local-dev-payment-key-123456\nONLY_LOCAL=dev-value\n"
    )
}

#[test]
fn env_file_fills_in_groups_the_process_leaves_unset() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_env(dir.path(), &emulator_env("http://127.0.0.1:5000"));
    let settings = AwsSettings::resolve(&path, &Environment::empty()).unwrap();
    assert_eq!(settings.endpoint(), Some("http://127.0.0.1:5000"));
    assert_eq!(settings.region.as_deref(), Some("us-east-1"));
    assert_eq!(settings.access_key_id.as_ref().unwrap().expose_secret(), "testing");
    assert!(settings.uses_env_file());
    assert_eq!(settings.endpoint_source(), Some(&SettingSource::EnvFile(path.clone())));

    // AWS_DEFAULT_REGION alone is a region (boto3 reads it).
    let only_default = write_env(dir.path(), "AWS_DEFAULT_REGION=eu-west-1\n");
    let settings = AwsSettings::resolve(&only_default, &Environment::empty()).unwrap();
    assert_eq!(settings.region.as_deref(), Some("eu-west-1"));
    assert_eq!(settings.endpoint(), None);
    assert_eq!(settings.endpoint_source(), Some(&SettingSource::Default));
}

#[test]
fn the_process_environment_wins_group_by_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_env(dir.path(), &emulator_env("http://127.0.0.1:5000"));
    // The process chose a profile: the file's static credentials are not mixed in, and its
    // endpoint cannot redirect the process's endpoint either.
    let env = Environment::from_pairs([
        ("AWS_PROFILE", "production"),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "https://secretsmanager.example.invalid"),
    ]);
    let settings = AwsSettings::resolve(&path, &env).unwrap();
    assert_eq!(settings.profile.as_deref(), Some("production"));
    assert!(settings.access_key_id.is_none() && settings.secret_access_key.is_none());
    assert_eq!(settings.endpoint(), Some("https://secretsmanager.example.invalid"));
    assert_eq!(settings.endpoint_url, None);
    assert_eq!(settings.sources[0], Some(SettingSource::Process));
    assert_eq!(settings.sources[2], Some(SettingSource::Process));
    // The region group was not set by the process, so it still comes from the file.
    assert_eq!(settings.region.as_deref(), Some("us-east-1"));
    assert_eq!(settings.sources[1], Some(SettingSource::EnvFile(path)));
}

#[test]
fn an_identity_the_process_selects_by_any_mechanism_wins_over_env_file_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_env(dir.path(), &emulator_env("http://127.0.0.1:5000"));
    // Each identity selector of the SDK's default chain, set alone in the process.
    let selectors = [
        ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/task-role"),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials"),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/secrets/pods.eks.amazonaws.com/t"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks.amazonaws.com/token"),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app"),
        ("AWS_CONFIG_FILE", "/etc/aws/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/etc/aws/credentials"),
    ];
    for (name, value) in selectors {
        assert!(globo_secrets::AWS_IDENTITY_SELECTORS.contains(&name), "{name} not listed");
        let settings =
            AwsSettings::resolve(&path, &Environment::from_pairs([(name, value)])).unwrap();
        assert!(
            settings.access_key_id.is_none()
                && settings.secret_access_key.is_none()
                && settings.session_token.is_none()
                && settings.profile.is_none(),
            "{name}: {settings:?}"
        );
        assert_eq!(settings.sources[2], Some(SettingSource::Process), "{name}");
        // The other groups still come from the file (the emulator endpoint and region).
        assert_eq!(settings.endpoint(), Some("http://127.0.0.1:5000"), "{name}");
        assert_eq!(settings.region.as_deref(), Some("us-east-1"), "{name}");
    }
    // A selector written in .env selects nothing: the file's keys still apply there.
    let in_file = format!(
        "{}AWS_WEB_IDENTITY_TOKEN_FILE=/tmp/token\nAWS_ROLE_ARN=arn:aws:iam::1:role/x\n",
        emulator_env("http://127.0.0.1:5000")
    );
    let path = write_env(dir.path(), &in_file);
    let settings = AwsSettings::resolve(&path, &Environment::empty()).unwrap();
    assert_eq!(settings.access_key_id.as_ref().unwrap().expose_secret(), "testing");
}

#[test]
fn aws_default_profile_is_applied_as_the_profile_when_aws_profile_is_unset() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_env(dir.path(), &emulator_env("http://127.0.0.1:5000"));
    // The Rust SDK ignores AWS_DEFAULT_PROFILE; boto3 (the Python lab) honours it. Set in the
    // process, it is the profile applied, and .env's static keys are not.
    let env = Environment::from_pairs([("AWS_DEFAULT_PROFILE", "production")]);
    let settings = AwsSettings::resolve(&path, &env).unwrap();
    assert_eq!(settings.profile.as_deref(), Some("production"), "{settings:?}");
    assert!(settings.access_key_id.is_none() && settings.secret_access_key.is_none());
    assert_eq!(settings.sources[2], Some(SettingSource::Process));
    // AWS_PROFILE wins when both are set (as in the AWS CLI v2 and the Rust SDK).
    let env =
        Environment::from_pairs([("AWS_DEFAULT_PROFILE", "production"), ("AWS_PROFILE", "ops")]);
    let settings = AwsSettings::resolve(&path, &env).unwrap();
    assert_eq!(settings.profile.as_deref(), Some("ops"));
    // From .env (python-dotenv puts it in boto3's environment too), when the process sets no
    // identity.
    let path = write_env(dir.path(), "AWS_DEFAULT_PROFILE=lab\nAWS_REGION=us-east-1\n");
    let settings = AwsSettings::resolve(&path, &Environment::empty()).unwrap();
    assert_eq!(settings.profile.as_deref(), Some("lab"));
    assert_eq!(settings.sources[2], Some(SettingSource::EnvFile(path)));
}

#[test]
fn aws_ignore_configured_endpoint_urls_in_the_process_keeps_env_file_endpoints_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_env(dir.path(), &emulator_env("http://127.0.0.1:5000"));
    for value in ["true", "TRUE"] {
        let env = Environment::from_pairs([
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", value),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:6000"),
        ]);
        let settings = AwsSettings::resolve(&path, &env).unwrap();
        // Neither .env's endpoint nor the process's is given to the SDK explicitly (which
        // would bypass the flag): the SDK's own resolution honours it.
        assert_eq!(settings.endpoint(), None, "{settings:?}");
        assert_eq!(settings.endpoint_source(), Some(&SettingSource::Process));
        let env = Environment::from_pairs([("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", value)]);
        let settings = AwsSettings::resolve(&path, &env).unwrap();
        assert_eq!(settings.endpoint(), None, "{settings:?}");
        // The other groups are unaffected.
        assert_eq!(settings.region.as_deref(), Some("us-east-1"));
    }
    let env = Environment::from_pairs([("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false")]);
    let settings = AwsSettings::resolve(&path, &env).unwrap();
    assert_eq!(settings.endpoint(), Some("http://127.0.0.1:5000"));
}

#[test]
fn the_selector_that_kept_env_file_keys_out_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_env(dir.path(), &emulator_env("http://127.0.0.1:5000"));
    let env = Environment::from_pairs([("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app")]);
    let settings = AwsSettings::resolve(&path, &env).unwrap();
    assert_eq!(settings.env_identity_dropped_by, Some("AWS_ROLE_ARN"));
    // Nothing was dropped when .env has no identity settings.
    let bare = write_env(dir.path(), "AWS_REGION=us-east-1\n");
    let settings = AwsSettings::resolve(&bare, &env).unwrap();
    assert_eq!(settings.env_identity_dropped_by, None);
}

/// Issue 12 point 4: half a pair set in the process environment names no file.
#[test]
fn half_a_credential_pair_in_the_process_is_typed_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let env = Environment::from_pairs([("AWS_ACCESS_KEY_ID", "AKIAHUNTER2")]);
    let error = AwsSettings::resolve(&dir.path().join("none.env"), &env).unwrap_err();
    assert!(
        matches!(
            error,
            SecretsError::IncompleteCredentials {
                set: "AWS_ACCESS_KEY_ID",
                missing: "AWS_SECRET_ACCESS_KEY",
                env_file: None,
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "malformed configuration: AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY: set \
         both, or neither (and use AWS_PROFILE or a role)"
    );
}

#[test]
fn half_a_credential_pair_is_an_error_that_names_no_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_env(dir.path(), "AWS_SECRET_ACCESS_KEY=hunter2-secret-access-key\n");
    let error = AwsSettings::resolve(&path, &Environment::empty()).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            &error,
            SecretsError::IncompleteCredentials {
                set: "AWS_SECRET_ACCESS_KEY",
                missing: "AWS_ACCESS_KEY_ID",
                env_file: Some(file),
            } if *file == path
        ),
        "{error:?}"
    );
    assert!(message.contains("without AWS_ACCESS_KEY_ID") && message.contains(".env"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn debug_never_shows_credentials() {
    let env = Environment::from_pairs([
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret-access-key"),
        ("AWS_SESSION_TOKEN", "session-token-value"),
        ("AWS_ENDPOINT_URL", "https://proxy-user:proxy-password@proxy.example.invalid/"),
    ]);
    let settings = AwsSettings::resolve(Path::new("/nonexistent/.env"), &env).unwrap();
    let debug = format!("{settings:?}");
    for value in ["AKIAEXAMPLEKEYID", "wJalrXUtnFEMI", "session-token-value", "proxy-password"] {
        assert!(!debug.contains(value), "{debug}");
    }
    assert!(debug.contains("[SET]"), "{debug}");
}

#[tokio::test]
async fn prod_mode_reads_the_emulator_configured_in_env_file_but_never_its_values() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = tempfile::tempdir().unwrap();
    let path = write_env(dir.path(), &emulator_env(&endpoint));

    // Seed through the same .env-derived settings.
    let settings = AwsSettings::resolve(&path, &Environment::empty()).unwrap();
    let seeder = AwsProvider::from_settings(&settings).await.unwrap();
    assert!(!format!("{seeder:?}").contains("testing-secret-access-key"));
    let prod_value = SecretString::from("prod-payment-key-9f8e7d6c5b4a3210");
    seed::Seeder::unguarded(&seeder).seed("PAYMENT_GATEWAY_API_KEY", &prod_value).await.unwrap();

    // APP_MODE=prod and every AWS setting come from .env; the value comes from the emulator.
    let provider = provider_for(None, &path, &Environment::empty()).await.unwrap();
    let value = provider.get("PAYMENT_GATEWAY_API_KEY").await.unwrap();
    assert_eq!(value.expose_secret(), "prod-payment-key-9f8e7d6c5b4a3210");

    // A name present in .env but absent from Secrets Manager is not found in prod.
    let error = provider.get("ONLY_LOCAL").await.unwrap_err();
    assert!(matches!(error, SecretsError::NotFound { .. }), "{error:?}");
    assert!(!error.to_string().contains("dev-value"));

    // The local provider over the same file still reads the local value.
    let local = provider_for(Some(Mode::Local), &path, &Environment::empty()).await.unwrap();
    assert_eq!(local.get("ONLY_LOCAL").await.unwrap().expose_secret(), "dev-value");
}

#[tokio::test]
async fn a_process_endpoint_wins_over_the_env_file() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = tempfile::tempdir().unwrap();
    // .env points at a port where nothing listens; the process points at the emulator.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let path = write_env(dir.path(), &emulator_env(&format!("http://127.0.0.1:{dead}")));
    let settings = AwsSettings::resolve(&path, &Environment::empty()).unwrap();
    let seeder = AwsProvider::from_settings(&AwsSettings {
        endpoint_url: Some(endpoint.clone()),
        ..settings
    })
    .await
    .unwrap();
    seed::Seeder::unguarded(&seeder)
        .seed("API_KEY", &SecretString::from("from-emulator"))
        .await
        .unwrap();

    let env = Environment::from_pairs([("AWS_ENDPOINT_URL", endpoint.as_str())]);
    let provider = provider_for(Some(Mode::Prod), &path, &env).await.unwrap();
    assert_eq!(provider.get("API_KEY").await.unwrap().expose_secret(), "from-emulator");

    // Without the process setting, the .env endpoint is used, and the message says where it
    // came from (an endpoint is not a secret); the secret access key is never printed.
    let provider = provider_for(Some(Mode::Prod), &path, &Environment::empty()).await.unwrap();
    let error = provider.get("API_KEY").await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&format!("http://127.0.0.1:{dead}, set in '")), "{message}");
    assert!(!message.contains("testing-secret-access-key"), "{message}");
    assert!(!format!("{error:?}").contains("testing-secret-access-key"));
}
