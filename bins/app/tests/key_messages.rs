//! The exact stderr of `app config` for the key errors and warnings whose wording the CLI
//! owns: the library's neutral message plus the command that fixes it, read as one message
//! (issue 12 point 4), as the lab's CLI printed them before globo-keys existed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;

use globo::secrets::{AwsProvider, aws_config_loader};

fn app(dir: &Path, args: &[&str]) -> Output {
    let mut command = globo_testkit::isolated_command(env!("CARGO_BIN_EXE_app"), dir);
    command.args(args).env("AWS_EC2_METADATA_DISABLED", "true");
    globo_testkit::output_guarded(&mut command, None)
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "status {} stderr: {}", o.status, stderr(o));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn failed(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(o));
    stderr(o)
}

/// A folder whose `.env` points prod mode at the emulator.
fn prod_dir(endpoint: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let dotenv = format!(
        "APP_MODE=prod\nAWS_ENDPOINT_URL={endpoint}\nAWS_REGION=us-east-1\n\
         AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n"
    );
    std::fs::write(dir.path().join(".env"), dotenv).unwrap();
    dir
}

#[test]
fn init_key_over_an_existing_secret_says_to_rotate_once() {
    let Some(moto) = globo_testkit::moto() else { return };
    let dir = prod_dir(&moto.endpoint_url());
    ok(&app(dir.path(), &["config", "init-key"]));
    let err = failed(&app(dir.path(), &["config", "init-key"]));
    assert_eq!(
        err,
        "error: secret 'FERNET_KEY' already exists in AWS Secrets Manager; replacing the key it \
         holds would make every file encrypted under it unreadable. To change the key, use `app \
         config rotate-key --mode prod`, which re-encrypts the files first\n"
    );
}

#[test]
fn a_secret_holding_no_fernet_key_is_one_line_with_the_command() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = prod_dir(&endpoint);
    globo_testkit::block_on(async {
        let config = globo_testkit::emulator_config(aws_config_loader().await, &endpoint).await;
        let provider = AwsProvider::from_sdk_config(&config).unwrap();
        let client = provider.client();
        client.create_secret().name("NOT_A_KEY").secret_string("hunter2").send().await.unwrap();
    });
    let err = failed(&app(dir.path(), &["config", "show", "--key-secret", "NOT_A_KEY"]));
    assert_eq!(
        err,
        "error: secret 'NOT_A_KEY' (AWSCURRENT) does not hold a Fernet key: expected 44 \
         characters of URL-safe base64 (32 bytes) as its SecretString; create it with `app \
         config init-key --mode prod`\n"
    );
}

#[test]
fn an_unfinished_local_rotation_warns_with_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("config.json"), b"{}").unwrap();
    ok(&app(d, &["config", "init-key", "--mode", "local"]));
    ok(&app(d, &["config", "encrypt", "config.json", "--mode", "local"]));
    // The next key an interrupted rotation leaves behind.
    ok(&app(d, &["config", "init-key", "--mode", "local", "--key-file", "secret.key.next"]));
    let out = app(d, &["config", "show", "--mode", "local", "--raw"]);
    assert_eq!(ok(&out), "{}");
    assert_eq!(
        stderr(&out),
        "warning: an unfinished key rotation was found ('secret.key.next' exists); both keys \
         are used until `app config rotate-key` (with the same files) completes it.\n"
    );
}
