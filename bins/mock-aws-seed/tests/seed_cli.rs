//! `mock-aws-seed` against a real moto server: created, then unchanged, then updated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn seed(dir: &Path, args: &[&str], endpoint: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mock-aws-seed"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
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
    "FERNET_KEY": "placeholder-fernet-key"
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
    assert!(text(&out.stderr).contains("cannot read 'missing.json'"), "{}", text(&out.stderr));

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
    std::fs::write(&plain, CONFIG).unwrap();
    let key = Key::generate().unwrap();
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
        Command::new(env!("CARGO_BIN_EXE_mock-aws-seed"))
            .current_dir(dir.path())
            .env_clear()
            .env("HOME", dir.path())
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
