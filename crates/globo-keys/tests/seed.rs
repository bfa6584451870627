//! The seeder of globo-secrets with the Fernet key guard of globo-keys, against a real moto
//! server: a key secret (by name, by description, old or new, or by holding a key) is never
//! replaced; and a write error echoing a key is scrubbed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use globo_keys::seed::{KeySeeder, key_secret_guard};
use globo_keys::{
    DEFAULT_KEY_SECRET, KEY_SECRET_DESCRIPTION, KeysError, LEGACY_KEY_SECRET_DESCRIPTIONS,
    SecretsManagerKeyStore,
};
use globo_secrets::seed::{SeedOutcome, Seeder};
use globo_secrets::{AwsProvider, SecretsError, aws_config_loader};
use secrecy::{ExposeSecret, SecretString};

/// Standard base64, as the AWS SDK encodes binary values.
fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The standard chain with the emulator's endpoint and test credentials set explicitly (the
/// process environment is not touched).
async fn provider_for(endpoint: &str) -> AwsProvider {
    let config = globo_testkit::emulator_config(aws_config_loader().await, endpoint).await;
    AwsProvider::from_sdk_config(&config).unwrap()
}

/// How many versions of `name` carry `stage`, from `ListSecretVersionIds` (moto 5.2 can leave
/// two versions labelled AWSCURRENT, which `GetSecretValue` alone would not show).
async fn versions_with(provider: &AwsProvider, name: &str, stage: &str) -> usize {
    let listed = provider.client().list_secret_version_ids().secret_id(name).send().await.unwrap();
    listed.versions().iter().filter(|v| v.version_stages().iter().any(|s| s == stage)).count()
}

/// Each version id of `name` with its stages, sorted (`ListSecretVersionIds`).
async fn version_stages(provider: &AwsProvider, name: &str) -> Vec<(String, Vec<String>)> {
    globo_testkit::version_stages(provider.client(), name).await
}

#[tokio::test]
async fn the_seeder_never_replaces_a_fernet_key() {
    use globo_crypto::Key;

    let Some(moto) = globo_testkit::moto() else { return };
    let provider = provider_for(&moto.endpoint_url()).await;
    let key_text = |key: &Key| SecretString::from(key.to_base64().expose_secret().to_owned());

    // A key secret under another name, made by init-key: recognised by its description.
    let key = Key::generate().unwrap();
    let store = SecretsManagerKeyStore::new(provider.clone(), "CUSTOM_KEY").unwrap();
    store.create(&key).await.unwrap();
    let seeder = KeySeeder::new(&provider, DEFAULT_KEY_SECRET);
    assert!(!seeder.is_guarded("CUSTOM_KEY"));
    let other = key_text(&Key::generate().unwrap());
    assert_eq!(seeder.seed("CUSTOM_KEY", &other).await.unwrap(), SeedOutcome::Kept);
    let placeholder = SecretString::from("REPLACE-ME");
    assert_eq!(seeder.seed("CUSTOM_KEY", &placeholder).await.unwrap(), SeedOutcome::Kept);
    assert_eq!(seeder.seed("CUSTOM_KEY", &key_text(&key)).await.unwrap(), SeedOutcome::Unchanged);
    assert_eq!(versions_with(&provider, "CUSTOM_KEY", "AWSCURRENT").await, 1);
    assert!(store.load_keys().await.unwrap().current.same_as(&key));

    // FERNET_KEY holding no key (what an older seeder stored): only a key may replace it.
    let client = provider.client();
    client.create_secret().name("FERNET_KEY").secret_string("REPLACE-ME").send().await.unwrap();
    let error = seeder.seed("FERNET_KEY", &placeholder).await.unwrap_err();
    assert!(
        matches!(&error, KeysError::Secrets(SecretsError::SeedValueRejected { name, .. }) if name == "FERNET_KEY")
    );
    assert!(error.to_string().contains("'FERNET_KEY' is not a Fernet key"), "{error}");
    assert!(
        error.to_string().contains("'FERNET_KEY' holds the configuration's Fernet key"),
        "{error}"
    );
    assert!(!error.to_string().contains("REPLACE-ME"), "{error}");
    assert!(seeder.seeder().check(&[("FERNET_KEY".into(), placeholder.clone())]).is_err());
    assert_eq!(seeder.seed("FERNET_KEY", &key_text(&key)).await.unwrap(), SeedOutcome::Updated);
    assert_eq!(seeder.seed("FERNET_KEY", &other).await.unwrap(), SeedOutcome::Kept);
    let store = SecretsManagerKeyStore::new(provider.clone(), "FERNET_KEY").unwrap();
    assert!(store.load_keys().await.unwrap().current.same_as(&key));
    assert_eq!(versions_with(&provider, "FERNET_KEY", "AWSCURRENT").await, 1);

    // A created key secret carries the description, so a seeder configured for it or not
    // keeps it later.
    let seeder =
        KeySeeder::with_guard(&provider, key_secret_guard(DEFAULT_KEY_SECRET).with_name("APP_KEY"));
    assert_eq!(seeder.seed("APP_KEY", &key_text(&key)).await.unwrap(), SeedOutcome::Created);
    let plain = KeySeeder::new(&provider, DEFAULT_KEY_SECRET);
    assert_eq!(plain.seed("APP_KEY", &other).await.unwrap(), SeedOutcome::Kept);
    // Other secrets are still updated.
    client.create_secret().name("API_KEY").secret_string("v1").send().await.unwrap();
    let v2 = SecretString::from("v2");
    assert_eq!(plain.seed("API_KEY", &v2).await.unwrap(), SeedOutcome::Updated);
}

#[tokio::test]
async fn a_rotated_key_secret_made_without_description_is_kept_under_any_name() {
    use globo_crypto::{Key, encrypt_file, rotate_with_store};

    let Some(moto) = globo_testkit::moto() else { return };
    let provider = provider_for(&moto.endpoint_url()).await;
    // A key secret made by hand (aws CLI, Terraform, an older seeder): no description.
    let old_key = Key::generate().unwrap();
    let old_text = SecretString::from(old_key.to_base64().expose_secret().to_owned());
    let created = provider
        .client()
        .create_secret()
        .name("APP_FERNET")
        .secret_string(old_text.expose_secret())
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("config.json");
    std::fs::write(&plain, b"{}").unwrap();
    let files = vec![dir.path().join("config.enc")];
    encrypt_file(&old_key, &plain, &files[0]).unwrap();
    let mut store = SecretsManagerKeyStore::new(provider.clone(), "APP_FERNET").unwrap();
    rotate_with_store(&mut store, &files, |_| std::ops::ControlFlow::Continue(())).await.unwrap();
    // Rotation marked it as a key secret.
    let described =
        provider.client().describe_secret().secret_id("APP_FERNET").send().await.unwrap();
    assert_eq!(described.description(), Some(KEY_SECRET_DESCRIPTION));
    let rotated = version_stages(&provider, "APP_FERNET").await;

    // Reseeded with the pre-rotation key by a seeder not told its name, by name and by ARN.
    let seeder = KeySeeder::new(&provider, DEFAULT_KEY_SECRET);
    assert!(!seeder.is_guarded("APP_FERNET"));
    for name in ["APP_FERNET", arn.as_str()] {
        assert_eq!(seeder.seed(name, &old_text).await.unwrap(), SeedOutcome::Kept, "{name}");
    }
    assert_eq!(version_stages(&provider, "APP_FERNET").await, rotated, "a version was written");
    assert_eq!(versions_with(&provider, "APP_FERNET", "AWSCURRENT").await, 1);
    let current = store.load_keys().await.unwrap().current;
    assert!(!current.same_as(&old_key));

    // A secret holding a Fernet key is kept even without the description (an identity
    // that could not set it, or a key secret never rotated).
    let fresh = Key::generate().unwrap();
    provider
        .client()
        .create_secret()
        .name("PLAIN_KEY")
        .secret_string(fresh.to_base64().expose_secret())
        .send()
        .await
        .unwrap();
    let before = version_stages(&provider, "PLAIN_KEY").await;
    assert_eq!(seeder.seed("PLAIN_KEY", &old_text).await.unwrap(), SeedOutcome::Kept);
    assert_eq!(version_stages(&provider, "PLAIN_KEY").await, before);
}

#[tokio::test]
async fn a_service_error_echoing_the_written_value_is_scrubbed() {
    use globo_crypto::Key;

    let provider = provider_for(&globo_testkit::echoing_endpoint()).await;
    let key = Key::generate().unwrap();
    let key_text = key.to_base64().expose_secret().to_owned();
    let store = SecretsManagerKeyStore::new(provider, "FERNET_KEY").unwrap();
    let error = store.create(&key).await.unwrap_err();
    for text in globo_testkit::error_texts(&error) {
        assert!(!text.contains(&key_text), "{text}");
        assert!(!text.contains(&b64(key_text.as_bytes())), "{text}");
    }
}

#[tokio::test]
async fn a_key_secret_with_the_old_description_is_still_recognised() {
    use globo_crypto::Key;

    let Some(moto) = globo_testkit::moto() else { return };
    let provider = provider_for(&moto.endpoint_url()).await;
    // The description no longer names a CLI command; the text users' secrets carry still counts.
    assert!(!KEY_SECRET_DESCRIPTION.contains("app config"), "{KEY_SECRET_DESCRIPTION}");
    let old = LEGACY_KEY_SECRET_DESCRIPTIONS[0];
    assert_eq!(old, "Fernet key of the globo configuration (rotate with app config rotate-key)");
    assert!(globo_keys::is_key_secret_description(old));
    assert!(globo_keys::is_key_secret_description(KEY_SECRET_DESCRIPTION));

    // A key secret an earlier globo created under another name (old description), holding a
    // placeholder: guarded by its description alone, so only a key may be written to it.
    let client = provider.client();
    for (name, description) in [("OLD_KEY", old), ("NEW_KEY", KEY_SECRET_DESCRIPTION)] {
        client
            .create_secret()
            .name(name)
            .description(description)
            .secret_string("REPLACE-ME")
            .send()
            .await
            .unwrap();
        let seeder = KeySeeder::new(&provider, DEFAULT_KEY_SECRET);
        assert!(!seeder.is_guarded(name));
        let error = seeder.seed(name, &SecretString::from("REPLACE-ME-TOO")).await.unwrap_err();
        assert!(
            matches!(&error, KeysError::Secrets(SecretsError::SeedValueRejected { name: n, .. }) if n == name),
            "{name}: {error:?}"
        );
        let plan = seeder.plan(&[(name.to_owned(), SecretString::from("x"))], None).await;
        assert!(plan.is_err(), "{name}");
        let key =
            SecretString::from(Key::generate().unwrap().to_base64().expose_secret().to_owned());
        let plan = seeder.plan(&[(name.to_owned(), key)], None).await.unwrap();
        assert!(plan.steps()[0].is_guarded(), "{name}");
        assert_eq!(plan.steps()[0].outcome(), SeedOutcome::Updated, "{name}");
    }
    // Only an explicitly unguarded seeder knows nothing of keys.
    let plain = Seeder::unguarded(&provider);
    assert_eq!(
        plain.seed("OLD_KEY", &SecretString::from("v")).await.unwrap(),
        SeedOutcome::Updated
    );

    // A key secret the guard creates carries the new description.
    let key = Key::generate().unwrap();
    let text = SecretString::from(key.to_base64().expose_secret().to_owned());
    let seeder = KeySeeder::new(&provider, "CREATED_KEY");
    assert_eq!(seeder.seed("CREATED_KEY", &text).await.unwrap(), SeedOutcome::Created);
    let described = client.describe_secret().secret_id("CREATED_KEY").send().await.unwrap();
    assert_eq!(described.description(), Some(KEY_SECRET_DESCRIPTION));
    assert!(key_secret_guard("X").recognises(old));
}

#[tokio::test]
async fn a_seeded_key_must_decrypt_the_encrypted_configuration() {
    use globo_crypto::{Key, encrypt_file};

    let Some(moto) = globo_testkit::moto() else { return };
    let provider = provider_for(&moto.endpoint_url()).await;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("config.json");
    std::fs::write(&plain, b"{}").unwrap();
    let encrypted = dir.path().join("config.enc");
    let key = Key::generate().unwrap();
    encrypt_file(&key, &plain, &encrypted).unwrap();
    let text = |key: &Key| SecretString::from(key.to_base64().expose_secret().to_owned());

    let seeder = KeySeeder::new(&provider, DEFAULT_KEY_SECRET);
    let other = Key::generate().unwrap();
    let list = [("FERNET_KEY".to_owned(), text(&other))];
    let error = seeder.plan(&list, Some(&encrypted)).await.unwrap_err();
    assert!(matches!(&error, KeysError::SeedKeyMismatch { name, .. } if name == "FERNET_KEY"));
    assert!(!error.to_string().contains(text(&other).expose_secret()), "{error}");
    // Without the file there is nothing to check the key against.
    assert_eq!(seeder.plan(&list, None).await.unwrap().steps().len(), 1);
    let plan = seeder.plan(&[("FERNET_KEY".to_owned(), text(&key))], Some(&encrypted)).await;
    assert_eq!(plan.unwrap().steps()[0].outcome(), SeedOutcome::Created);
    // Nothing was written by planning.
    assert!(
        SecretsManagerKeyStore::new(provider, "FERNET_KEY").unwrap().load_keys().await.is_err()
    );
}
