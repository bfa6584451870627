//! `app secrets get`, end to end: the real binary, a `.env` in a temporary folder, and a real
//! moto server for prod mode. The child processes get a cleared environment (plus what each
//! test sets), so the developer's AWS settings never leak in and the test process's own
//! environment is never modified.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

use globo::secrets::seed;
use globo::secrets::{AwsProvider, aws_config_loader};
use secrecy::SecretString;

const LAB_ENV: &str = "APP_MODE=local\nPAYMENT_GATEWAY_API_KEY=local-dev-payment-key-123456\n";

/// Runs `app` in `dir` with only `env` (and PATH, HOME) set; panics if it runs for over a
/// minute.
fn app(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = globo_testkit::isolated_command(env!("CARGO_BIN_EXE_app"), dir);
    command.args(args).envs(env.iter().copied());
    globo_testkit::output_guarded(&mut command, None)
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn lab_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), LAB_ENV.as_bytes()).unwrap();
    dir
}

#[test]
fn local_mode_prints_the_value_and_a_newline() {
    let dir = lab_dir();
    let out = app(dir.path(), &["secrets", "get", "PAYMENT_GATEWAY_API_KEY"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "local-dev-payment-key-123456\n");
    assert_eq!(stderr(&out), "");
}

#[test]
fn the_process_environment_wins_and_env_file_is_selectable() {
    let dir = lab_dir();
    let env = [("PAYMENT_GATEWAY_API_KEY", "from-the-shell")];
    let out = app(dir.path(), &["secrets", "get", "PAYMENT_GATEWAY_API_KEY"], &env);
    assert_eq!(stdout(&out), "from-the-shell\n");

    std::fs::write(dir.path().join("other.env"), b"OTHER_KEY=other-value\n").unwrap();
    let args = ["secrets", "get", "OTHER_KEY", "--mode", "local", "--env-file", "other.env"];
    let out = app(dir.path(), &args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "other-value\n");
}

#[test]
fn a_missing_secret_is_the_labs_message_on_stderr_and_exit_1() {
    let dir = lab_dir();
    let out = app(dir.path(), &["secrets", "get", "NOPE"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "error: Secret 'NOPE' not found in environment. Add it to your .env file or switch to prod mode.\n"
    );
}

#[test]
fn an_unknown_mode_fails_closed() {
    let dir = lab_dir();
    for (args, env) in [
        (&["secrets", "get", "PAYMENT_GATEWAY_API_KEY"][..], &[("APP_MODE", "prd")][..]),
        (&["secrets", "get", "PAYMENT_GATEWAY_API_KEY", "--mode", "production"][..], &[][..]),
    ] {
        let out = app(dir.path(), args, env);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(stdout(&out), "");
        assert!(stderr(&out).contains("unknown mode"), "{}", stderr(&out));
    }
}

/// Review B1: `APP_MODE='prod` ... `X='` makes python-dotenv read APP_MODE as the lines
/// between, a password included; the error names the file and line, never the value.
#[test]
fn an_unknown_mode_from_the_env_file_never_shows_its_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), b"APP_MODE='prod\nDB_PASSWORD=hunter2\nX='\n").unwrap();
    let out = app(dir.path(), &["secrets", "get", "DB_PASSWORD"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let message = stderr(&out);
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("unknown mode"), "{message}");
    assert!(message.contains("line 1"), "{message}");
    assert!(message.contains("'local' or 'prod'"), "{message}");
}

#[test]
fn a_malformed_env_file_names_the_line_not_the_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), b"A=1\nB hunter2\n").unwrap();
    let out = app(dir.path(), &["secrets", "get", "A"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("line 2"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

fn seed_secret(endpoint: &str, name: &str, value: &str) {
    globo_testkit::block_on(async {
        let config = globo_testkit::emulator_config(aws_config_loader().await, endpoint).await;
        let provider = AwsProvider::from_sdk_config(&config).unwrap();
        seed::Seeder::unguarded(&provider).seed(name, &SecretString::from(value)).await.unwrap();
    });
}

#[test]
fn prod_mode_reads_aws_secrets_manager_through_the_standard_settings() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    seed_secret(&endpoint, "PAYMENT_GATEWAY_API_KEY", "prod-payment-key-9f8e7d6c5b4a3210");
    let dir = lab_dir();
    let env = aws_env(&endpoint);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let out =
        app(dir.path(), &["secrets", "get", "PAYMENT_GATEWAY_API_KEY", "--mode", "prod"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "prod-payment-key-9f8e7d6c5b4a3210\n");

    // APP_MODE=prod from the environment selects it too; .env values are never used in prod.
    let mut with_mode = env.clone();
    with_mode.push(("APP_MODE", "prod"));
    let out = app(dir.path(), &["secrets", "get", "PAYMENT_GATEWAY_API_KEY"], &with_mode);
    assert_eq!(stdout(&out), "prod-payment-key-9f8e7d6c5b4a3210\n");

    // The service-specific endpoint variable works as well.
    let specific: Vec<(&str, &str)> =
        env.iter()
            .map(|&(k, v)| {
                if k == "AWS_ENDPOINT_URL" {
                    ("AWS_ENDPOINT_URL_SECRETS_MANAGER", v)
                } else {
                    (k, v)
                }
            })
            .collect();
    let out = app(
        dir.path(),
        &["secrets", "get", "PAYMENT_GATEWAY_API_KEY", "--mode", "prod"],
        &specific,
    );
    assert_eq!(stdout(&out), "prod-payment-key-9f8e7d6c5b4a3210\n", "{}", stderr(&out));

    // A secret only in .env is not found in prod.
    std::fs::write(dir.path().join(".env"), b"ONLY_LOCAL=dev-value\n").unwrap();
    let out = app(dir.path(), &["secrets", "get", "ONLY_LOCAL", "--mode", "prod"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).starts_with(
        "error: Failed to fetch secret 'ONLY_LOCAL' from AWS Secrets Manager: secret not found"
    ));
}

#[test]
fn prod_mode_takes_aws_settings_from_the_env_file_but_the_process_wins() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    seed_secret(&endpoint, "PAYMENT_GATEWAY_API_KEY", "prod-payment-key-9f8e7d6c5b4a3210");
    let dir = tempfile::tempdir().unwrap();
    let dotenv = format!(
        "APP_MODE=prod\nAWS_ENDPOINT_URL={endpoint}\nAWS_REGION=us-east-1\nAWS_ACCESS_KEY_ID=testing\n\
         AWS_SECRET_ACCESS_KEY=testing\nPAYMENT_GATEWAY_API_KEY=local-dev-payment-key-123456\n\
         ONLY_LOCAL=dev-value\n"
    );
    std::fs::write(dir.path().join(".env"), dotenv.as_bytes()).unwrap();
    let no_imds = [("AWS_EC2_METADATA_DISABLED", "true")];
    // The lab flow: APP_MODE=prod and the emulator settings come from .env (the process sets
    // none); the value comes from Secrets Manager, not from .env.
    let out = app(dir.path(), &["secrets", "get", "PAYMENT_GATEWAY_API_KEY"], &no_imds);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "prod-payment-key-9f8e7d6c5b4a3210\n");

    // A value only in .env is never read in prod.
    let out = app(dir.path(), &["secrets", "get", "ONLY_LOCAL"], &no_imds);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).starts_with(
        "error: Failed to fetch secret 'ONLY_LOCAL' from AWS Secrets Manager: secret not found"
    ));

    // The process environment wins: its endpoint (nothing listening) is used, not the file's.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = format!("http://127.0.0.1:{port}");
    let out = app(
        dir.path(),
        &["secrets", "get", "PAYMENT_GATEWAY_API_KEY"],
        &[("AWS_EC2_METADATA_DISABLED", "true"), ("AWS_ENDPOINT_URL", &dead)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&format!("({dead})")), "{}", stderr(&out));
    assert!(!stderr(&out).contains("testing"), "{}", stderr(&out));
}

#[test]
fn prod_mode_with_the_emulator_down_names_the_endpoint() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let dir = lab_dir();
    let env = aws_env(&endpoint);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out =
        app(dir.path(), &["secrets", "get", "PAYMENT_GATEWAY_API_KEY", "--mode", "prod"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let message = stderr(&out);
    assert!(
        message.starts_with(&format!(
            "error: Failed to fetch secret 'PAYMENT_GATEWAY_API_KEY' from AWS Secrets Manager: endpoint \
             unreachable or not answering ({endpoint})"
        )),
        "{message}"
    );
}

#[test]
fn prod_mode_without_credentials_or_instance_metadata_fails_promptly() {
    // An instance-metadata endpoint that accepts connections and never answers: the worst
    // case for a laptop or CI runner with no credentials. `app` must give up on its own (the
    // helper's one-minute guard only catches a hang).
    let imds = globo_testkit::silent_endpoint();
    let dir = lab_dir();
    let env = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.as_str()),
    ];
    let out =
        app(dir.path(), &["secrets", "get", "PAYMENT_GATEWAY_API_KEY", "--mode", "prod"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("are credentials configured?"), "{}", stderr(&out));
}

/// `--help` text with its wrapping undone.
fn help_text(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = app(dir.path(), args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Issue 11 item 17: `--env-file` is read in both modes; its help said "local mode only".
#[test]
fn env_file_help_says_what_each_mode_reads_from_it() {
    let help = help_text(&["secrets", "get", "--help"]);
    assert!(!help.contains("The .env file of local mode."), "{help}");
    assert!(help.contains("In local mode it holds the secrets"), "{help}");
    assert!(help.contains("in prod mode only the AWS settings"), "{help}");
    assert!(help.contains("never a secret"), "{help}");
}

/// Issue 11 item 17: a missing `.env` was reported only as a missing secret.
#[test]
fn a_missing_env_file_is_named_when_a_secret_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = app(dir.path(), &["secrets", "get", "PAYMENT_GATEWAY_API_KEY"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains("Secret 'PAYMENT_GATEWAY_API_KEY' not found in environment"),
        "{message}"
    );
    assert!(message.contains("the .env file '.env' does not exist"), "{message}");
}

/// Issue 11 item 7: an appended `APP_MODE=prod` switches to prod (python-dotenv: the last
/// definition wins); the first one used to win, leaving the process in local mode printing the
/// `.env` value.
#[test]
fn the_last_app_mode_in_the_env_file_wins() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("{LAB_ENV}AWS_ENDPOINT_URL={endpoint}\nAPP_MODE=prod\n"),
    )
    .unwrap();
    let env = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let out = app(dir.path(), &["secrets", "get", "PAYMENT_GATEWAY_API_KEY"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("from AWS Secrets Manager"), "{}", stderr(&out));
    assert!(stderr(&out).contains(&endpoint), "{}", stderr(&out));
}

/// Issue 11 item 7: an `APP_MODE` that is not UTF-8 is an error, not "unset" (which fell back
/// to the `.env` file's `local`).
#[cfg(unix)]
#[test]
fn an_app_mode_that_is_not_utf8_fails_closed() {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = lab_dir();
    let mut command = globo_testkit::isolated_command(env!("CARGO_BIN_EXE_app"), dir.path());
    command
        .args(["secrets", "get", "PAYMENT_GATEWAY_API_KEY"])
        .env("APP_MODE", std::ffi::OsStr::from_bytes(b"prod\xff"));
    let out = globo_testkit::output_guarded(&mut command, None);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    let message = stderr(&out);
    assert!(message.contains("APP_MODE"), "{message}");
    assert!(message.contains("not valid UTF-8"), "{message}");
}

/// Issue 11 item 7: `--env-file <(cmd)` is a pipe, readable once; the mode and the values
/// come from that one reading, with or without `--mode`.
#[cfg(unix)]
#[test]
fn an_env_file_from_a_pipe_is_read_once_with_or_without_mode() {
    let dir = tempfile::tempdir().unwrap();
    for mode in ["", "--mode local"] {
        let script = format!(
            "exec \"$APP\" secrets get KEY {mode} --env-file <(printf 'APP_MODE=local\\nKEY=from-the-pipe\\n')"
        );
        let mut command = globo_testkit::isolated_command("bash", dir.path());
        command.args(["-c", &script]).env("APP", env!("CARGO_BIN_EXE_app"));
        let out = globo_testkit::output_guarded(&mut command, None);
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        assert_eq!(stdout(&out), "from-the-pipe\n", "{mode}");
    }
}

/// Issue 11 item 7: a `.env` that is a FIFO nobody writes to made `secrets get` block forever
/// in open(); it now fails at once, naming the file.
#[cfg(unix)]
#[test]
fn a_fifo_env_file_without_a_writer_fails_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("mkfifo").arg(dir.path().join(".env")).status().unwrap();
    assert!(made.success());
    let out = app(dir.path(), &["secrets", "get", "KEY"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("'.env'"), "{message}");
    assert!(message.contains("no writer"), "{message}");
}
