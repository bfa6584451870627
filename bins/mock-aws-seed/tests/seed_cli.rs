//! `mock-aws-seed` against a real moto server: created, then unchanged, then updated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn seed(dir: &Path, args: &[&str], endpoint: &str) -> Output {
    globo_testkit::isolated_command(env!("CARGO_BIN_EXE_mock-aws-seed"), dir)
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

const CONFIG: &str = r#"{
  "database_url": "postgresql://app:app@localhost:5432/globomantica",
  "feature_flags": {"new_checkout": true, "experimental_search": false},
  "seed_secrets": {
    "PAYMENT_GATEWAY_API_KEY": "prod-payment-key-9f8e7d6c5b4a3210",
    "EMAIL_SERVICE_API_KEY": "prod-email-key-1234",
    "FERNET_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
  }
}"#;

#[test]
fn seeding_twice_is_idempotent_and_a_changed_value_is_updated() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();

    let out = seed(dir.path(), &[], &endpoint);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "created PAYMENT_GATEWAY_API_KEY\ncreated EMAIL_SERVICE_API_KEY\ncreated FERNET_KEY\n"
    );

    let out = seed(dir.path(), &["--config", "config.json"], &endpoint);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "unchanged PAYMENT_GATEWAY_API_KEY\nunchanged EMAIL_SERVICE_API_KEY\nunchanged FERNET_KEY\n"
    );

    std::fs::write(dir.path().join("new.json"), CONFIG.replace("prod-email-key-1234", "rotated"))
        .unwrap();
    let out = seed(dir.path(), &["--config", "new.json"], &endpoint);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "unchanged PAYMENT_GATEWAY_API_KEY\nupdated EMAIL_SERVICE_API_KEY\nunchanged FERNET_KEY\n"
    );
}

#[test]
fn failures_go_to_stderr_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = seed(dir.path(), &["--config", "missing.json"], "http://127.0.0.1:9");
    assert_eq!(out.status.code(), Some(1));
    let message = text(&out.stderr);
    assert!(message.contains("cannot read the configuration file 'missing.json'"), "{message}");
    assert!(message.contains("caused by: no such file"), "{message}");

    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let out = seed(dir.path(), &[], "http://127.0.0.1:9");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    let message = text(&out.stderr);
    assert!(
        message.contains("endpoint unreachable or not answering (http://127.0.0.1:9)"),
        "{message}"
    );
    assert!(!message.contains("prod-payment-key"), "{message}");
}

#[test]
fn the_seed_list_can_come_from_the_encrypted_config() {
    use globo::crypto::{Key, KeyFile, encrypt_file};

    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("config.json");
    let key = Key::generate().unwrap();
    // As in the lab, the seeded FERNET_KEY is the key the configuration is encrypted under.
    let config = CONFIG.replace(
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        secrecy::ExposeSecret::expose_secret(&key.to_base64()),
    );
    std::fs::write(&plain, config).unwrap();
    KeyFile::create_new(&dir.path().join("secret.key"), &key).unwrap();
    encrypt_file(&key, &plain, &dir.path().join("config.enc")).unwrap();
    std::fs::remove_file(&plain).unwrap();

    let out =
        seed(dir.path(), &["--encrypted", "config.enc", "--key-file", "secret.key"], &endpoint);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "created PAYMENT_GATEWAY_API_KEY\ncreated EMAIL_SERVICE_API_KEY\ncreated FERNET_KEY\n"
    );

    // Another key: the opaque decryption failure, nothing seeded, exit 1.
    KeyFile::create_new(&dir.path().join("other.key"), &Key::generate().unwrap()).unwrap();
    let out =
        seed(dir.path(), &["--encrypted", "config.enc", "--key-file", "other.key"], &endpoint);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("decryption failed: ciphertext is corrupt or the key is wrong"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn env_file_supplies_the_aws_settings_the_process_leaves_unset() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let dotenv = format!(
        "AWS_ENDPOINT_URL={endpoint}\nAWS_REGION=us-east-1\nAWS_ACCESS_KEY_ID=testing\n\
         AWS_SECRET_ACCESS_KEY=testing\n"
    );
    std::fs::write(dir.path().join(".env"), dotenv).unwrap();
    let run = |extra: &[(&str, &str)]| {
        // No --env-file: `.env` in the working folder is the default, as in the lab.
        globo_testkit::isolated_command(env!("CARGO_BIN_EXE_mock-aws-seed"), dir.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(extra.iter().copied())
            .output()
            .unwrap()
    };
    // Only .env configures AWS: seeding reaches the emulator.
    let out = run(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "created PAYMENT_GATEWAY_API_KEY\ncreated EMAIL_SERVICE_API_KEY\ncreated FERNET_KEY\n"
    );
    // The process's endpoint wins over the file's.
    let out = run(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("(http://127.0.0.1:9)"), "{}", text(&out.stderr));
}

/// The stages of each version of `name`, sorted, from `ListSecretVersionIds` (not only what
/// `GetSecretValue` answers: moto 5.2 can leave two versions labelled AWSCURRENT).
fn version_stages(endpoint: &str, name: &str) -> Vec<(String, Vec<String>)> {
    globo_testkit::block_on(async {
        globo_testkit::version_stages(provider(endpoint).await.client(), name).await
    })
}

async fn provider(endpoint: &str) -> globo::secrets::AwsProvider {
    let loader = globo::secrets::aws_config_loader().await;
    let config = globo_testkit::emulator_config(loader, endpoint).await;
    globo::secrets::AwsProvider::from_sdk_config(&config).unwrap()
}

/// The names of every secret in the emulator.
fn secret_names(endpoint: &str) -> Vec<String> {
    globo_testkit::block_on(async {
        let provider = provider(endpoint).await;
        let listed = provider.client().list_secrets().send().await.unwrap();
        listed.secret_list().iter().filter_map(|s| s.name().map(str::to_owned)).collect()
    })
}

#[test]
fn reseeding_after_a_rotation_keeps_the_rotated_key_and_every_file_readable() {
    use globo::crypto::{Key, decrypt_file_to_memory, encrypt_file, rotate_with_store};
    use globo::keys::SecretsManagerKeyStore;
    use secrecy::ExposeSecret as _;

    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The lab flow: a key, the config encrypted under it, the key seeded as FERNET_KEY.
    let old_key = Key::generate().unwrap();
    let old_text = old_key.to_base64().expose_secret().to_owned();
    let config = CONFIG.replace("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &old_text);
    std::fs::write(d.join("config.json"), &config).unwrap();
    encrypt_file(&old_key, &d.join("config.json"), &d.join("config.enc")).unwrap();
    let out = seed(d, &[], &endpoint);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("created FERNET_KEY\n"), "{}", text(&out.stdout));

    // rotate-key --mode prod: config.enc now under a new key, the old one AWSPREVIOUS.
    let files = vec![d.join("config.enc")];
    let store = globo_testkit::block_on(async {
        let mut store =
            SecretsManagerKeyStore::new(provider(&endpoint).await, "FERNET_KEY").unwrap();
        rotate_with_store(&mut store, &files, |_| std::ops::ControlFlow::Continue(()))
            .await
            .unwrap();
        store
    });
    let rotated = version_stages(&endpoint, "FERNET_KEY");

    // Seeding again from the same (pre-rotation) list must not put the old key back.
    let out = seed(d, &[], &endpoint);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "unchanged PAYMENT_GATEWAY_API_KEY\nunchanged EMAIL_SERVICE_API_KEY\n\
         kept FERNET_KEY: managed by rotate-key\n"
    );
    assert!(!text(&out.stdout).contains(&old_text) && !text(&out.stderr).contains(&old_text));
    let after = version_stages(&endpoint, "FERNET_KEY");
    assert_eq!(after, rotated, "the seeder wrote a version or moved a label");
    let current: Vec<_> =
        after.iter().filter(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT")).collect();
    assert_eq!(current.len(), 1, "{after:?}");

    // config show --mode prod still decrypts.
    let keys = globo_testkit::block_on(store.load_keys()).unwrap();
    let plaintext = decrypt_file_to_memory(&keys.keyring(), &d.join("config.enc")).unwrap();
    assert_eq!(&plaintext[..], config.as_bytes());
}

#[test]
fn a_placeholder_for_the_key_is_an_error_and_nothing_is_seeded() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = tempfile::tempdir().unwrap();
    let placeholder = "REPLACE-WITH-THE-OUTPUT-OF-app-config-init-key";
    let config = CONFIG.replace("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", placeholder);
    std::fs::write(dir.path().join("config.json"), &config).unwrap();
    let out = seed(dir.path(), &[], &endpoint);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "");
    let message = text(&out.stderr);
    assert!(message.contains("'FERNET_KEY' is not a Fernet key"), "{message}");
    assert!(message.contains("init-key --mode prod"), "{message}");
    assert!(!message.contains(placeholder), "{message}");
    assert_eq!(secret_names(&endpoint), Vec::<String>::new(), "something was seeded");

    // The configured key secret is guarded the same way, by flag or by variable.
    let config = CONFIG.replace("FERNET_KEY", "APP_KEY");
    std::fs::write(dir.path().join("other.json"), &config).unwrap();
    let args = ["--config", "other.json", "--key-secret", "EMAIL_SERVICE_API_KEY"];
    let out = seed(dir.path(), &args, &endpoint);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("'EMAIL_SERVICE_API_KEY' is not a Fernet key"));
    assert_eq!(secret_names(&endpoint), Vec::<String>::new(), "something was seeded");
}

#[test]
fn a_failure_found_while_reading_writes_nothing() {
    use globo::keys::KEY_SECRET_DESCRIPTION;

    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = tempfile::tempdir().unwrap();
    // A key secret known only by its description (not by name), holding no key; it comes last
    // in the list, so only reading it reveals that its placeholder cannot be written.
    globo_testkit::block_on(async {
        let provider = provider(&endpoint).await;
        provider
            .client()
            .create_secret()
            .name("APP_KEY")
            .description(KEY_SECRET_DESCRIPTION)
            .secret_string("REPLACE-ME")
            .send()
            .await
            .unwrap();
    });
    let config = CONFIG.replace(
        "\"FERNET_KEY\": \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"",
        "\"APP_KEY\": \"still-a-placeholder\"",
    );
    assert!(config.contains("APP_KEY"));
    std::fs::write(dir.path().join("config.json"), &config).unwrap();
    let out = seed(dir.path(), &[], &endpoint);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "");
    let message = text(&out.stderr);
    assert!(message.contains("'APP_KEY' is not a Fernet key"), "{message}");
    assert!(!message.contains("still-a-placeholder"), "{message}");
    assert_eq!(secret_names(&endpoint), vec!["APP_KEY".to_owned()], "earlier entries were written");
}

#[test]
fn a_seed_key_that_does_not_decrypt_the_encrypted_config_is_refused() {
    use globo::crypto::{Key, KeyFile, encrypt_file};

    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = tempfile::tempdir().unwrap();
    // The seed list's FERNET_KEY (the fixed key of CONFIG) is not the key config.enc is under.
    let plain = dir.path().join("config.json");
    std::fs::write(&plain, CONFIG).unwrap();
    let key = Key::generate().unwrap();
    KeyFile::create_new(&dir.path().join("secret.key"), &key).unwrap();
    encrypt_file(&key, &plain, &dir.path().join("config.enc")).unwrap();
    std::fs::remove_file(&plain).unwrap();

    let out =
        seed(dir.path(), &["--encrypted", "config.enc", "--key-file", "secret.key"], &endpoint);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "");
    let message = text(&out.stderr);
    assert!(
        message
            .contains("secret 'FERNET_KEY' is a Fernet key, but it does not decrypt 'config.enc'"),
        "{message}"
    );
    assert!(!message.contains("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="), "{message}");
    assert_eq!(secret_names(&endpoint), Vec::<String>::new(), "something was seeded");
}

/// `mock-aws-seed --encrypted` overtaken by a whole `rotate-key` between loading the key file
/// and opening the ciphertext retries with the key current now. Deterministic: the ciphertext
/// is a FIFO, so the seeder waits on it while the rotation runs.
#[cfg(unix)]
#[test]
fn an_encrypted_seed_list_read_during_a_rotation_uses_the_new_key() {
    use globo::crypto::{Key, KeyFile, encrypt, encrypt_file, rotate_key};

    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key_path = d.join("secret.key");
    KeyFile::create_new(&key_path, &Key::generate().unwrap()).unwrap();
    std::fs::write(d.join("config.json"), CONFIG).unwrap();
    encrypt_file(&Key::from_file(&key_path).unwrap(), &d.join("config.json"), &d.join("other.enc"))
        .unwrap();
    let fifo = d.join("config.enc");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());

    let mut child = globo_testkit::isolated_command(env!("CARGO_BIN_EXE_mock-aws-seed"), d)
        .args(["--encrypted", "config.enc", "--key-file", "secret.key"])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let feed = globo_testkit::fifo_opened_by(&fifo, &mut child)
        .expect("the seeder ended before opening the file");
    rotate_key(&key_path, &[d.join("other.enc")], |_| std::ops::ControlFlow::Continue(())).unwrap();
    // As in the lab, the seeded FERNET_KEY is the key the configuration is encrypted under:
    // the key current after the rotation.
    let new_key = Key::from_file(&key_path).unwrap();
    let config = CONFIG.replace(
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        secrecy::ExposeSecret::expose_secret(&new_key.to_base64()),
    );
    let token = encrypt(&new_key, config.as_bytes()).unwrap();
    // Before the seeder gets its first bytes, the FIFO's name is given to a regular file with
    // the same token: its retry (the old code failed instead) and its later check that the seed
    // key decrypts the file open that file, never a FIFO without a writer.
    let settled = d.join("config.enc.new");
    std::fs::write(&settled, &token).unwrap();
    std::fs::rename(&settled, &fifo).unwrap();
    feed.send(token).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "created PAYMENT_GATEWAY_API_KEY\ncreated EMAIL_SERVICE_API_KEY\ncreated FERNET_KEY\n"
    );
}

/// Issue 11 item 7: one bounded small-file reader for every small secret file. The seed
/// configuration holds secrets; read with `std::fs::read`, a FIFO without a writer blocked the
/// seeder forever and a huge file was read whole. Nothing is seeded (the endpoint is never
/// reached: a silent one).
#[cfg(unix)]
#[test]
fn a_seed_config_that_is_a_fifo_or_too_large_is_refused_without_waiting() {
    let endpoint = globo_testkit::silent_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("config.json");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let run = |dir: &Path| {
        let mut command = globo_testkit::isolated_command(env!("CARGO_BIN_EXE_mock-aws-seed"), dir);
        command
            .args(["--config", "config.json"])
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing");
        globo_testkit::output_guarded(&mut command, None)
    };
    let out = run(dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let message = text(&out.stderr);
    assert!(message.contains("cannot read the configuration file 'config.json'"), "{message}");
    assert!(out.stdout.is_empty());

    let big = tempfile::tempdir().unwrap();
    let padding = " ".repeat(2 * 1024 * 1024);
    std::fs::write(big.path().join("config.json"), format!("{CONFIG}{padding}")).unwrap();
    let out = run(big.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot read the configuration file"),
        "{}",
        text(&out.stderr)
    );
}

/// The whole stderr for a key secret's placeholder: the library's sentence says what the
/// secret holds (as before globo-keys), the tool adds its hint on its own line.
#[test]
fn a_placeholder_for_the_key_reads_as_one_message_and_one_hint() {
    let Some(moto) = globo_testkit::moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = CONFIG.replace("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "REPLACE-ME");
    std::fs::write(dir.path().join("config.json"), &config).unwrap();
    let out = seed(dir.path(), &[], &moto.endpoint_url());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stderr),
        "mock-aws-seed: error: the seed value for secret 'FERNET_KEY' is not a Fernet key \
         (expected 44 characters of URL-safe base64 encoding 32 bytes): 'FERNET_KEY' holds the \
         configuration's Fernet key, so only a valid one may be written to it; nothing was \
         written\nhint: put the key in seed_secrets (e.g. the content of secret.key), or remove \
         the entry and create the key with `app config init-key --mode prod`\n"
    );
}

/// `--encrypted` without the key file: the library's neutral message, then the CLI's hint
/// naming the command that creates one (the message named it before the library went neutral).
#[test]
fn a_missing_key_file_gets_the_init_key_hint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.enc"), "not read").unwrap();
    let out = seed(
        dir.path(),
        &["--encrypted", "config.enc", "--key-file", "missing.key"],
        "http://127.0.0.1:9",
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("key file 'missing.key' not found"), "{stderr}");
    assert!(stderr.contains("hint: ") && stderr.contains("`app config init-key`"), "{stderr}");
}
