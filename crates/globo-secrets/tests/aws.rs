//! The AWS provider against a real moto server (started per test on a free loopback port),
//! and against two fake endpoints: one that answers with AWS error codes moto cannot produce
//! (access denied, KMS failure, throttling) and one that never answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::primitives::Blob;
use globo_secrets::seed::{self, SeedOutcome};
use globo_secrets::{
    AwsProvider, CacheConfig, CachingProvider, SecretValue, SecretsError, SecretsProvider,
    VersionSelector, aws_config_loader,
};
use secrecy::{ExposeSecret, SecretString};

/// The standard chain with the emulator's endpoint and test credentials set explicitly (the
/// process environment is not touched).
async fn provider_for(endpoint: &str) -> AwsProvider {
    let config = globo_testkit::emulator_config(aws_config_loader().await, endpoint).await;
    AwsProvider::from_sdk_config(&config).unwrap()
}

#[tokio::test]
async fn reads_text_binary_and_selected_versions() {
    let Some(moto) = globo_testkit::moto() else { return };
    let provider = provider_for(&moto.endpoint_url()).await;
    assert_eq!(provider.endpoint(), moto.endpoint_url());
    let client = provider.client();
    client
        .create_secret()
        .name("PAYMENT_GATEWAY_API_KEY")
        .secret_string("prod-payment-key-9f8e7d6c5b4a3210")
        .send()
        .await
        .unwrap();
    let binary = vec![0u8, 1, 2, 254, 255];
    client
        .create_secret()
        .name("TLS_KEY")
        .secret_binary(Blob::new(binary.clone()))
        .send()
        .await
        .unwrap();

    // Text.
    let key = provider.get("PAYMENT_GATEWAY_API_KEY").await.unwrap();
    assert_eq!(key.expose_secret(), "prod-payment-key-9f8e7d6c5b4a3210");
    // Binary: not text, but available as a value and as bytes.
    let error = provider.get("TLS_KEY").await.unwrap_err();
    assert!(matches!(error, SecretsError::NotText { .. }), "{error:?}");
    match provider.get_value("TLS_KEY").await.unwrap() {
        SecretValue::Binary(bytes) => assert_eq!(bytes.expose_secret(), binary.as_slice()),
        other => panic!("expected binary, got {other:?}"),
    }
    assert_eq!(provider.get_bytes("TLS_KEY").await.unwrap().expose_secret(), binary.as_slice());

    // A pending version does not replace the current one.
    let pending = client
        .put_secret_value()
        .secret_id("PAYMENT_GATEWAY_API_KEY")
        .secret_string("rotated-key-0000")
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    let pending_id = pending.version_id().unwrap().to_owned();
    assert_eq!(
        provider.get("PAYMENT_GATEWAY_API_KEY").await.unwrap().expose_secret(),
        "prod-payment-key-9f8e7d6c5b4a3210"
    );
    let by_stage = provider.clone().with_version(VersionSelector::Stage("AWSPENDING".into()));
    assert_eq!(
        by_stage.get("PAYMENT_GATEWAY_API_KEY").await.unwrap().expose_secret(),
        "rotated-key-0000"
    );
    let by_id = provider.clone().with_version(VersionSelector::Id(pending_id));
    assert_eq!(
        by_id.get("PAYMENT_GATEWAY_API_KEY").await.unwrap().expose_secret(),
        "rotated-key-0000"
    );
    // An unknown stage is "not found", and says which stage.
    let no_stage = provider.clone().with_version(VersionSelector::Stage("NOPE".into()));
    let error = no_stage.get("PAYMENT_GATEWAY_API_KEY").await.unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
    assert!(error.to_string().contains("stage 'NOPE'"), "{error}");
}

#[tokio::test]
async fn missing_and_deleted_secrets() {
    let Some(moto) = globo_testkit::moto() else { return };
    let provider = provider_for(&moto.endpoint_url()).await;
    let error = provider.get("NO_SUCH_SECRET").await.unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
    assert!(
        error.to_string().starts_with(
            "Failed to fetch secret 'NO_SUCH_SECRET' from AWS Secrets Manager: secret not found"
        ),
        "{error}"
    );

    let client = provider.client();
    client.create_secret().name("OLD_KEY").secret_string("old-value-42").send().await.unwrap();
    client.delete_secret().secret_id("OLD_KEY").recovery_window_in_days(7).send().await.unwrap();
    let error = provider.get("OLD_KEY").await.unwrap_err();
    assert!(matches!(error, SecretsError::InvalidState { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("scheduled for deletion"), "{message}");
    assert!(!message.contains("old-value-42"), "{message}");

    client.create_secret().name("GONE_KEY").secret_string("x").send().await.unwrap();
    client
        .delete_secret()
        .secret_id("GONE_KEY")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    assert!(provider.get("GONE_KEY").await.unwrap_err().is_not_found());

    // Names AWS cannot hold are rejected before any call.
    let error = provider.get("bad name!").await.unwrap_err();
    assert!(matches!(error, SecretsError::InvalidName { .. }), "{error:?}");
}

#[tokio::test]
async fn seeding_is_idempotent() {
    let Some(moto) = globo_testkit::moto() else { return };
    let provider = provider_for(&moto.endpoint_url()).await;
    let config = br#"{"database_url": "postgresql://localhost:5432/globomantica",
        "seed_secrets": {"PAYMENT_GATEWAY_API_KEY": "prod-payment-key-9f8e7d6c5b4a3210",
                         "EMAIL_SERVICE_API_KEY": "prod-email-key",
                         "FERNET_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}}"#;
    let entries = seed::seed_entries(config).unwrap();
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["PAYMENT_GATEWAY_API_KEY", "EMAIL_SERVICE_API_KEY", "FERNET_KEY"]);
    for (name, value) in &entries {
        assert_eq!(
            seed::Seeder::unguarded(&provider).seed(name, value).await.unwrap(),
            SeedOutcome::Created
        );
    }
    for (name, value) in &entries {
        assert_eq!(
            seed::Seeder::unguarded(&provider).seed(name, value).await.unwrap(),
            SeedOutcome::Unchanged
        );
    }
    let new_value = SecretString::from("prod-email-key-v2");
    let outcome =
        seed::Seeder::unguarded(&provider).seed("EMAIL_SERVICE_API_KEY", &new_value).await.unwrap();
    assert_eq!(outcome, SeedOutcome::Updated);
    assert_eq!(
        provider.get("EMAIL_SERVICE_API_KEY").await.unwrap().expose_secret(),
        "prod-email-key-v2"
    );

    // Malformed seed lists name the key, never the value.
    let error = seed::seed_entries(br#"{"seed_secrets": {"N": 12345}}"#).unwrap_err();
    assert_eq!(error.to_string(), "malformed configuration: seed_secrets.N must be a string");
    let error = seed::seed_entries(br#"{"seed_secrets": {"N": "hunter2"#).unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(seed::seed_entries(b"{}").is_err());
}

#[tokio::test]
async fn a_stopped_emulator_is_a_clear_error_and_the_cache_bridges_it() {
    let Some(mut moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let provider = provider_for(&endpoint).await;
    provider.client().create_secret().name("API_KEY").secret_string("v1").send().await.unwrap();
    // TTL zero: every get asks the backend, so the stale path is what answers below.
    let config = CacheConfig::default().with_ttl(Duration::ZERO);
    let cache = CachingProvider::with_config(Arc::new(provider.clone()), config);
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v1");

    moto.stop();
    assert!(!moto.is_answering());
    let error = provider.get("API_KEY").await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(
        matches!(&error, SecretsError::BackendUnavailable { endpoint: e, .. } if *e == endpoint)
    );
    assert!(error.to_string().contains(&endpoint), "{error}");
    assert_eq!(cache.get("API_KEY").await.unwrap().expose_secret(), "v1");
}

/// Serves every request with one canned AWS JSON error.
fn canned_error_endpoint(status: &'static str, code: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || answer(stream, status, code));
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn answer(mut stream: TcpStream, status: &str, code: &str) {
    // The whole request first, so the client sees a full exchange.
    if globo_testkit::read_http_request(&mut stream).is_none() {
        return;
    }
    let body = format!(r#"{{"__type":"{code}","message":"canned {code}"}}"#);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: 1\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

#[tokio::test]
async fn aws_error_codes_map_to_error_kinds() {
    type Check = fn(&SecretsError) -> bool;
    let cases: [(&str, &str, Check); 4] = [
        ("400 Bad Request", "AccessDeniedException", |e| {
            matches!(e, SecretsError::AccessDenied { .. })
        }),
        ("400 Bad Request", "DecryptionFailure", |e| {
            matches!(e, SecretsError::AccessDenied { .. }) && e.to_string().contains("KMS")
        }),
        ("400 Bad Request", "ThrottlingException", SecretsError::is_transient),
        ("400 Bad Request", "InvalidRequestException", |e| {
            matches!(e, SecretsError::InvalidState { .. })
        }),
    ];
    for (status, code, expected) in cases {
        let provider = provider_for(&canned_error_endpoint(status, code)).await;
        let error = provider.get("API_KEY").await.unwrap_err();
        assert!(expected(&error), "{code}: {error:?}");
        let message = error.to_string();
        assert!(
            message.starts_with("Failed to fetch secret 'API_KEY' from AWS Secrets Manager: "),
            "{message}"
        );
        assert!(!message.contains("HTTP/1.1"), "{message}");
    }
}

#[tokio::test]
async fn a_silent_endpoint_fails_within_the_operation_timeout() {
    // Accepts connections and never answers.
    let endpoint = globo_testkit::silent_endpoint();
    let provider = provider_for(&endpoint).await;
    // The hang guard is far above OPERATION_TIMEOUT (8 s); it only catches a hang.
    let result = tokio::time::timeout(Duration::from_secs(60), provider.get("API_KEY")).await;
    let error = result.expect("the SDK call hung").unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(error.to_string().contains(&endpoint), "{error}");
}

/// How many versions of `name` carry `stage`, from `ListSecretVersionIds` (moto 5.2 can leave
/// two versions labelled AWSCURRENT, which `GetSecretValue` alone would not show).
async fn versions_with(provider: &AwsProvider, name: &str, stage: &str) -> usize {
    let listed = provider.client().list_secret_version_ids().secret_id(name).send().await.unwrap();
    listed.versions().iter().filter(|v| v.version_stages().iter().any(|s| s == stage)).count()
}

#[tokio::test]
async fn a_guard_keeps_what_its_check_accepts_and_nothing_else() {
    use globo_secrets::seed::{Guard, Seeder};

    let Some(moto) = globo_testkit::moto() else { return };
    let provider = provider_for(&moto.endpoint_url()).await;
    // A caller's guard: values starting with "tok-" are protected; globo-secrets knows no more.
    let tokens = || {
        Guard::new("a protected token", "a token (tok-...)", |v: &SecretString| {
            v.expose_secret().starts_with("tok-")
        })
    };
    let guard = tokens().with_name("TOKEN").recognising("an older description");
    let seeder = Seeder::new(&provider, guard);
    assert!(seeder.is_guarded("TOKEN") && !seeder.is_guarded("OTHER"));

    // By name: only an accepted value may be seeded; a created one gets the description.
    let error = seeder.seed("TOKEN", &SecretString::from("nope")).await.unwrap_err();
    assert!(matches!(&error, SecretsError::SeedValueRejected { name, .. } if name == "TOKEN"));
    assert!(error.to_string().contains("is not a token (tok-...)"), "{error}");
    assert!(!error.to_string().contains("nope"), "{error}");
    let first = SecretString::from("tok-1");
    assert_eq!(seeder.seed("TOKEN", &first).await.unwrap(), SeedOutcome::Created);
    let described = provider.client().describe_secret().secret_id("TOKEN").send().await.unwrap();
    assert_eq!(described.description(), Some("a protected token"));
    // Once it holds an accepted value, another one is kept, not written.
    let second = SecretString::from("tok-2");
    assert_eq!(seeder.seed("TOKEN", &second).await.unwrap(), SeedOutcome::Kept);
    assert_eq!(versions_with(&provider, "TOKEN", "AWSCURRENT").await, 1);

    // By a recognised description, under any name.
    let client = provider.client();
    client
        .create_secret()
        .name("LEGACY")
        .description("an older description")
        .secret_string("placeholder")
        .send()
        .await
        .unwrap();
    let error = seeder.seed("LEGACY", &SecretString::from("v2")).await.unwrap_err();
    assert!(matches!(error, SecretsError::SeedValueRejected { .. }), "{error:?}");
    // Any secret holding an accepted value is kept, whatever its name.
    client.create_secret().name("OTHER").secret_string("tok-9").send().await.unwrap();
    assert_eq!(seeder.seed("OTHER", &first).await.unwrap(), SeedOutcome::Kept);
    // The ordinary constructor takes a guard: a seeder told no name still keeps it.
    let ordinary = Seeder::new(&provider, tokens());
    assert_eq!(ordinary.seed("OTHER", &first).await.unwrap(), SeedOutcome::Kept);
    assert_eq!(ordinary.seed("TOKEN", &second).await.unwrap(), SeedOutcome::Kept);
    assert_eq!(versions_with(&provider, "OTHER", "AWSCURRENT").await, 1);
    // Only the explicitly unguarded seeder overwrites everything.
    let plain = Seeder::unguarded(&provider);
    assert_eq!(plain.seed("OTHER", &first).await.unwrap(), SeedOutcome::Updated);
    assert_eq!(plain.seed("TOKEN", &SecretString::from("v")).await.unwrap(), SeedOutcome::Updated);
}

/// Answers every request like an ordinary web server: `404 Not Found` and an HTML page.
fn web_server_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = stream.read(&mut buf);
                let body = "<html><body><h1>Not Found</h1></body></html>";
                let response = format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn an_endpoint_that_is_not_secrets_manager_is_named_with_its_status() {
    let endpoint = web_server_endpoint();
    let provider = provider_for(&endpoint).await;
    let error = provider.get("API_KEY").await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("{endpoint} did not answer as Secrets Manager (HTTP 404")),
        "{message}"
    );
    assert!(message.contains("AWS_ENDPOINT_URL"), "{message}");
    assert!(!message.contains("unknown") && !message.contains("<html>"), "{message}");
    assert!(!error.is_transient() && !error.is_not_found(), "{error:?}");
}

#[tokio::test]
async fn a_missing_or_malformed_region_or_endpoint_says_what_to_set() {
    use globo_secrets::Region;
    // Built by hand: neither the process environment nor a profile can supply a region.
    let base =
        || aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest());
    let error = AwsProvider::from_sdk_config(&base().build()).unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("no AWS region configured: set AWS_REGION"), "{message}");
    assert!(!message.contains("malformed configuration"), "{message}");

    let config = base().region(Region::new("us east-1")).build();
    let message = AwsProvider::from_sdk_config(&config).unwrap_err().to_string();
    assert!(message.contains("region 'us east-1' is not a region name"), "{message}");

    let config = base().region(Region::new("us-east-1")).endpoint_url("http://[bad").build();
    let message = AwsProvider::from_sdk_config(&config).unwrap_err().to_string();
    assert!(message.contains("endpoint 'http://[bad' is not a valid URL"), "{message}");
}

#[tokio::test]
async fn a_password_in_the_endpoint_url_is_never_repeated() {
    use globo_secrets::Region;
    let base = || {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
    };
    // Unreachable (port 9) and malformed: neither message repeats the password.
    let config = base().endpoint_url("http://user:hunter2-pass@127.0.0.1:9/").build();
    let provider = AwsProvider::from_sdk_config(&config).unwrap();
    assert_eq!(provider.endpoint(), "http://[REDACTED]@127.0.0.1:9/");
    assert!(!format!("{provider:?}").contains("hunter2"));
    let error = provider.get("API_KEY").await.unwrap_err();
    let mut layer: Option<&dyn std::error::Error> = Some(&error);
    while let Some(current) = layer {
        assert!(!current.to_string().contains("hunter2"), "{current}");
        layer = current.source();
    }
    let config = base().endpoint_url("http://user:hunter2-pass@[bad").build();
    let message = AwsProvider::from_sdk_config(&config).unwrap_err().to_string();
    assert!(
        message.contains("'http://[REDACTED]@[bad'") && !message.contains("hunter2"),
        "{message}"
    );
}

#[tokio::test]
async fn a_password_holding_a_slash_in_the_endpoint_url_is_never_repeated() {
    use globo_secrets::{AwsSettings, Environment, Region};
    let endpoint = "http://user:pa/ss-hunter2@127.0.0.1:9";
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .build();
    let mut texts = Vec::new();
    match AwsProvider::from_sdk_config(&config) {
        Ok(provider) => {
            texts.push(provider.endpoint().to_owned());
            texts.push(format!("{provider:?}"));
            let error = provider.get("API_KEY").await.unwrap_err();
            let mut layer: Option<&dyn std::error::Error> = Some(&error);
            while let Some(current) = layer {
                texts.push(current.to_string());
                layer = current.source();
            }
        }
        Err(error) => texts.push(error.to_string()),
    }
    let dir = tempfile::tempdir().unwrap();
    let settings = AwsSettings::resolve(
        &dir.path().join(".env"),
        &Environment::from_pairs([("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint)]),
    )
    .unwrap();
    texts.push(format!("{settings:?}"));
    for text in texts {
        assert!(!text.contains("pa/ss") && !text.contains("hunter2"), "{text}");
    }
}

#[tokio::test]
async fn a_service_error_echoing_the_written_value_is_scrubbed() {
    use globo_secrets::seed::Seeder;

    let provider = provider_for(&globo_testkit::echoing_endpoint()).await;
    let secret = "hunter2\"quoted\\-echo-secret";
    let forms = [
        secret.to_owned(),
        serde_json::to_string(secret).unwrap().trim_matches('"').to_owned(),
        aws_smithy_types::base64::encode(secret.as_bytes()),
    ];
    let error = Seeder::unguarded(&provider)
        .seed("API_KEY", &SecretString::from(secret))
        .await
        .unwrap_err();
    let texts = globo_testkit::error_texts(&error);
    assert!(texts.iter().any(|t| t.contains("[REDACTED]")), "{texts:#?}");
    for text in &texts {
        for form in &forms {
            assert!(!text.contains(form.as_str()), "{form} in {text}");
        }
    }
}

#[tokio::test]
async fn messages_name_the_endpoint_variable_used_and_say_store_for_writes() {
    use globo_secrets::seed::Seeder;
    use globo_secrets::{AwsSettings, Environment};

    let dir = tempfile::tempdir().unwrap();
    let settings_for = |endpoint: &str| {
        let env = Environment::from_pairs([
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]);
        AwsSettings::resolve(&dir.path().join(".env"), &env).unwrap()
    };
    // A web server's 404 names the variable the endpoint came from.
    let provider = AwsProvider::from_settings(&settings_for(&web_server_endpoint())).await.unwrap();
    let message = provider.get("API_KEY").await.unwrap_err().to_string();
    assert!(
        message.contains("check that AWS_ENDPOINT_URL_SECRETS_MANAGER names the Secrets Manager"),
        "{message}"
    );
    // So does a malformed endpoint.
    let message =
        AwsProvider::from_settings(&settings_for("http://[bad")).await.unwrap_err().to_string();
    assert!(message.contains("set AWS_ENDPOINT_URL_SECRETS_MANAGER to a URL"), "{message}");
    // AWS_ENDPOINT_URL when that one is used.
    let config =
        globo_testkit::emulator_config(aws_config_loader().await, &web_server_endpoint()).await;
    let provider = AwsProvider::from_sdk_config(&config).unwrap();
    let message = provider.get("API_KEY").await.unwrap_err().to_string();
    assert!(message.contains("check that AWS_ENDPOINT_URL names"), "{message}");

    // A failed write says "store", a failed read "fetch".
    let provider = provider_for(&globo_testkit::echoing_endpoint()).await;
    let error =
        Seeder::unguarded(&provider).seed("API_KEY", &SecretString::from("v1")).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("Failed to store secret 'API_KEY' in AWS Secrets Manager: "),
        "{message}"
    );
    let message = provider.get("API_KEY").await.unwrap_err().to_string();
    assert!(
        message.starts_with("Failed to fetch secret 'API_KEY' from AWS Secrets Manager: "),
        "{message}"
    );
}

/// Issue 12 point 4: a seed list naming one secret by name and by ARN is its own variant
/// (the second write would undo the first), and nothing is written.
#[tokio::test]
async fn a_seed_list_naming_one_secret_twice_is_typed_and_writes_nothing() {
    use globo_secrets::seed::Seeder;

    let Some(moto) = globo_testkit::moto() else { return };
    let provider = provider_for(&moto.endpoint_url()).await;
    let created = provider
        .client()
        .create_secret()
        .name("TWICE")
        .secret_string("first")
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_owned();
    let entries = vec![
        ("TWICE".to_owned(), SecretString::from("second")),
        (arn.clone(), SecretString::from("third")),
    ];
    let error = Seeder::unguarded(&provider).plan(&entries).await.unwrap_err();
    assert!(matches!(&error, SecretsError::SeedSecretTwice { name } if *name == arn), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "malformed configuration: the seed list names secret '{arn}' twice (by name and by \
             ARN); nothing was written"
        )
    );
    assert_eq!(provider.get("TWICE").await.unwrap().expose_secret(), "first");
}
