//! `app config ... --mode prod` end to end: the real binary, a temporary folder with no key
//! file, and the Fernet key held in a real moto server. The child processes get a cleared
//! environment plus what each test sets, so the developer's AWS settings never leak in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;

use globo::crypto::Key;
use globo::secrets::{AwsProvider, SecretValue, VersionSelector, aws_config_loader};

const CONFIG: &str = r#"{"database_url": "postgresql://localhost:5432/globomantica", "feature_flags": {"new_checkout": true}}"#;

fn app(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = globo_testkit::isolated_command(env!("CARGO_BIN_EXE_app"), dir);
    command.args(args).env("AWS_EC2_METADATA_DISABLED", "true").envs(env.iter().copied());
    globo_testkit::output_guarded(&mut command, None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "status {} stderr: {}", o.status, stderr(o));
    stdout(o)
}

fn failed(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "stdout: {} stderr: {}", stdout(o), stderr(o));
    assert!(o.stdout.is_empty(), "stdout on failure: {}", stdout(o));
    stderr(o)
}

/// The emulator's settings, as the lab's `.env` holds them.
fn emulator_dotenv(endpoint: &str, mode: &str) -> String {
    format!(
        "APP_MODE={mode}\nAWS_ENDPOINT_URL={endpoint}\nAWS_REGION=us-east-1\n\
         AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n"
    )
}

/// A folder with the emulator settings in `.env` (APP_MODE=prod) and `config.json`.
fn prod_dir(endpoint: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), emulator_dotenv(endpoint, "prod")).unwrap();
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    dir
}

/// The library's provider for the emulator at `endpoint` (not through `app`).
async fn provider(endpoint: &str) -> AwsProvider {
    let config = globo_testkit::emulator_config(aws_config_loader().await, endpoint).await;
    AwsProvider::from_sdk_config(&config).unwrap()
}

/// The key a stage of `name` holds, read through the library (not through `app`).
fn stage_key(endpoint: &str, name: &str, stage: &str) -> Option<Key> {
    globo_testkit::block_on(async {
        let provider = provider(endpoint).await;
        match provider.get_version(name, &VersionSelector::Stage(stage.into())).await {
            Ok(SecretValue::Text(text)) => Some(Key::from_secret(&text).unwrap()),
            Ok(_) => panic!("binary secret"),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("{e}"),
        }
    })
}

fn no_key_file(dir: &Path) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".key"))
        .collect();
    assert!(names.is_empty(), "a key file was written in prod mode: {names:?}");
}

#[test]
fn prod_keeps_the_key_in_secrets_manager_and_never_on_disk() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = prod_dir(&endpoint);
    let d = dir.path();

    // APP_MODE=prod and the emulator settings come from .env.
    let out = ok(&app(d, &["config", "init-key"], &[]));
    assert!(out.contains("'FERNET_KEY'") && out.contains("AWS Secrets Manager"), "{out}");
    let key = stage_key(&endpoint, "FERNET_KEY", "AWSCURRENT").unwrap();
    assert!(!out.contains(secrecy::ExposeSecret::expose_secret(&key.to_base64())));

    // A second init-key refuses to replace the key.
    let err = failed(&app(d, &["config", "init-key"], &[]));
    assert!(err.contains("already exists") && err.contains("rotate-key"), "{err}");
    assert!(stage_key(&endpoint, "FERNET_KEY", "AWSCURRENT").unwrap().same_as(&key));

    ok(&app(d, &["config", "encrypt", "config.json"], &[]));
    let shown = ok(&app(d, &["config", "show", "--raw"], &[]));
    assert_eq!(shown, CONFIG);
    no_key_file(d);

    // Local mode does not see the secret: it wants the key file.
    let err = failed(&app(d, &["config", "show", "--mode", "local"], &[]));
    assert!(err.contains("secret.key") && err.contains("init-key"), "{err}");

    // Another secret name, by flag or by GLOBO_FERNET_KEY_SECRET: a different key, so the
    // opaque decryption failure.
    ok(&app(d, &["config", "init-key", "--key-secret", "OTHER_KEY"], &[]));
    let err = failed(&app(d, &["config", "show", "--key-secret", "OTHER_KEY"], &[]));
    assert_eq!(err, "error: Decryption failed: ciphertext is corrupt or the key is wrong.\n");
    let err = failed(&app(d, &["config", "show"], &[("GLOBO_FERNET_KEY_SECRET", "OTHER_KEY")]));
    assert_eq!(err, "error: Decryption failed: ciphertext is corrupt or the key is wrong.\n");

    // A missing secret is a precise error naming it.
    let err = failed(&app(d, &["config", "show", "--key-secret", "NO_SUCH_KEY"], &[]));
    assert!(err.contains("'NO_SUCH_KEY'") && err.contains("secret not found"), "{err}");

    // A secret that is not a Fernet key is refused without echoing it.
    globo_testkit::block_on(async {
        provider(&endpoint)
            .await
            .client()
            .create_secret()
            .name("NOT_A_KEY")
            .secret_string("hunter2-not-a-key")
            .send()
            .await
            .unwrap();
    });
    let err = failed(&app(d, &["config", "show", "--key-secret", "NOT_A_KEY"], &[]));
    assert!(err.contains("does not hold a Fernet key") && !err.contains("hunter2"), "{err}");
}

#[test]
fn the_process_environment_chooses_the_mode_and_settings_over_env_file() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // .env says local and points nowhere useful; the process says prod and where moto is.
    std::fs::write(d.join(".env"), emulator_dotenv("http://127.0.0.1:9", "local")).unwrap();
    std::fs::write(d.join("config.json"), CONFIG).unwrap();
    let env = [("APP_MODE", "prod"), ("AWS_ENDPOINT_URL", endpoint.as_str())];
    ok(&app(d, &["config", "init-key"], &env));
    ok(&app(d, &["config", "encrypt", "config.json"], &env));
    assert_eq!(ok(&app(d, &["config", "show", "--raw"], &env)), CONFIG);
    no_key_file(d);
    // Without the process endpoint, the .env endpoint (nothing there) is used, and named.
    let err = failed(&app(d, &["config", "show", "--mode", "prod"], &[]));
    assert!(err.contains("http://127.0.0.1:9, set in '.env'"), "{err}");
    assert!(!err.contains("testing"), "{err}");
    // An unknown mode fails closed.
    let err = failed(&app(d, &["config", "show", "--mode", "prd"], &env));
    assert!(err.contains("unknown mode 'prd'"), "{err}");
}

#[test]
fn prod_rotate_key_survives_a_kill_at_every_step() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    for (n, step) in ["next-key", "file-1", "file-2", "installed", "done"].iter().enumerate() {
        let dir = prod_dir(&endpoint);
        let d = dir.path();
        let secret = format!("FERNET_KEY_{n}");
        let env = [("GLOBO_FERNET_KEY_SECRET", secret.as_str())];
        ok(&app(d, &["config", "init-key"], &env));
        ok(&app(d, &["config", "encrypt", "config.json"], &env));
        std::fs::write(d.join("other.json"), "[1, 2]").unwrap();
        ok(&app(d, &["config", "encrypt", "other.json", "--out", "other.enc"], &env));
        let old = stage_key(&endpoint, &secret, "AWSCURRENT").unwrap();

        let crash = [("GLOBO_TEST_CRASH_AT", *step), env[0]];
        let killed = app(d, &["config", "rotate-key", "config.enc", "other.enc"], &crash);
        if !cfg!(debug_assertions) {
            // Release builds have no hook: the rotation simply completes.
            ok(&killed);
            return;
        }
        assert_eq!(killed.status.code(), None, "{step}: not killed by a signal");

        for (file, content) in [("config.enc", CONFIG), ("other.enc", "[1, 2]")] {
            let raw = app(d, &["config", "show", "--in", file, "--raw"], &env);
            assert_eq!(ok(&raw), content, "{step}: {file} unreadable after the kill");
            let warned = stderr(&raw).contains("unfinished key rotation");
            assert_eq!(warned, *step != "done", "{step}: {}", stderr(&raw));
        }

        let staged = stage_key(&endpoint, &secret, "AWSPENDING");
        if *step != "done" {
            let out = ok(&app(d, &["config", "rotate-key", "config.enc", "other.enc"], &env));
            assert!(out.contains("Completed the interrupted key rotation."), "{step}: {out}");
            assert!(out.contains("AWSPREVIOUS"), "{step}: {out}");
        }
        let current = stage_key(&endpoint, &secret, "AWSCURRENT").unwrap();
        assert!(!current.same_as(&old), "{step}");
        if let Some(staged) = staged {
            assert!(staged.same_as(&current), "{step}: a second new key was made");
        }
        assert!(stage_key(&endpoint, &secret, "AWSPENDING").is_none(), "{step}");
        assert!(stage_key(&endpoint, &secret, "AWSPREVIOUS").unwrap().same_as(&old), "{step}");
        for (file, content) in [("config.enc", CONFIG), ("other.enc", "[1, 2]")] {
            let raw = app(d, &["config", "show", "--in", file, "--raw"], &env);
            assert_eq!(ok(&raw), content, "{step}: {file}");
            assert!(!stderr(&raw).contains("unfinished"), "{step}");
            // Only the new key is needed now.
            let bytes = globo::crypto::decrypt_file_to_memory(&current, &d.join(file)).unwrap();
            assert_eq!(bytes.as_slice(), content.as_bytes());
        }
        no_key_file(d);
    }
}

/// A loopback server playing both a container-credentials endpoint (`GET /creds`, what ECS
/// and EKS Pod Identity serve) and Secrets Manager (`POST /`, answering `CreateSecret`). It
/// records the headers of every Secrets Manager request, so a test can see which credentials
/// signed it.
fn container_role_and_secrets_manager() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let record = record.clone();
            std::thread::spawn(move || {
                let Some((head, _)) = globo_testkit::read_http_request(&mut stream) else {
                    return;
                };
                let body = if head.starts_with("GET /creds") {
                    r#"{"AccessKeyId":"ASIAGLOBOCONTAINERROLE","SecretAccessKey":"container-secret","Token":"container-session-token","Expiration":"2099-01-01T00:00:00Z"}"#
                } else {
                    record.lock().unwrap().push(head);
                    r#"{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:FERNET_KEY-AbCdEf","Name":"FERNET_KEY","VersionId":"11111111-1111-4111-8111-111111111111"}"#
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     x-amzn-RequestId: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            });
        }
    });
    (endpoint, seen)
}

#[test]
fn a_container_role_chosen_by_the_deployment_signs_the_requests_not_env_file_keys() {
    let (endpoint, seen) = container_role_and_secrets_manager();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // .env: the emulator settings, static keys included (AWS_ACCESS_KEY_ID=testing).
    std::fs::write(d.join(".env"), emulator_dotenv(&endpoint, "prod")).unwrap();
    // The deployment (ECS task role, EKS Pod Identity) selects container credentials.
    let creds = format!("{endpoint}/creds");
    let out = app(d, &["config", "init-key"], &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &creds)]);
    ok(&out);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let head = seen[0].to_ascii_lowercase();
    assert!(head.contains("credential=asiaglobocontainerrole/"), "{head}");
    assert!(head.contains("x-amz-security-token: container-session-token"), "{head}");
    assert!(!head.contains("credential=testing/"), "{head}");
}

/// `http://127.0.0.1:<port>` of an ordinary web server: `404 Not Found` and an HTML page.
fn web_server() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let _ = stream.read(&mut [0u8; 8192]);
                let body = "<html><h1>404 Not Found</h1></html>";
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    endpoint
}

#[test]
fn a_missing_region_and_a_web_server_endpoint_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let creds = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")];
    let web = web_server();
    let mut env = creds.to_vec();
    env.push(("AWS_ENDPOINT_URL", web.as_str()));
    let err = failed(&app(d, &["config", "show", "--mode", "prod"], &env));
    assert!(err.contains("no AWS region configured: set AWS_REGION"), "{err}");
    assert!(!err.contains("malformed configuration"), "{err}");

    env.push(("AWS_REGION", "us-east-1"));
    let err = failed(&app(d, &["config", "show", "--mode", "prod"], &env));
    assert!(err.contains(&format!("{web} did not answer as Secrets Manager (HTTP 404")), "{err}");
    assert!(err.contains("AWS_ENDPOINT_URL"), "{err}");
    assert!(!err.contains("unhandled error") && !err.contains("answered unknown"), "{err}");
}

#[test]
fn a_selector_alone_that_leaves_no_credentials_is_named_in_the_error() {
    // AWS_ROLE_ARN without a token file selects nothing in the SDK's chain, but it does keep
    // .env's static keys out (fail closed): the error says so, naming the variable.
    let dir = prod_dir("http://127.0.0.1:9");
    let out = app(
        dir.path(),
        &["config", "show", "--mode", "prod"],
        &[("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app")],
    );
    let message = failed(&out);
    assert!(message.contains("are credentials configured?"), "{message}");
    assert!(message.contains("process environment sets AWS_ROLE_ARN"), "{message}");
    assert!(!message.contains("testing"), "{message}");
}

/// `config show --mode prod` overtaken by a whole prod `rotate-key` between loading the key
/// from the secret and opening the file: it retries with the keys current now (the key is
/// loaded, then the test rotates, then the file arrives under the new key). Deterministic: the
/// file is a FIFO, so `show` waits on it while the rotation runs.
#[cfg(unix)]
#[test]
fn prod_show_overtaken_by_a_rotation_retries_with_the_new_key() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = prod_dir(&endpoint);
    let d = dir.path();
    ok(&app(d, &["config", "init-key"], &[]));
    ok(&app(d, &["config", "encrypt", "config.json", "--out", "other.enc"], &[]));
    let fifo = d.join("config.enc");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());

    let mut command = globo_testkit::isolated_command(env!("CARGO_BIN_EXE_app"), d);
    command
        .args(["config", "show", "--raw"])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut show = command.spawn().unwrap();
    let feed = globo_testkit::fifo_opened_by(&fifo, &mut show)
        .expect("show ended before opening the file");
    // show holds the old key now; the rotation replaces it and re-encrypts other.enc.
    ok(&app(d, &["config", "rotate-key", "other.enc"], &[]));
    let new = stage_key(&endpoint, "FERNET_KEY", "AWSCURRENT").unwrap();
    let token = globo::crypto::encrypt(&new, CONFIG.as_bytes()).unwrap();
    // Before the reader gets its first bytes, the FIFO's name is given to a regular file with
    // the same token: the reader's retry (the old code failed instead) opens that file, so the
    // test never has to guess when the retry opens the name again (a second FIFO writer could
    // pair with the first, still open, read and hang the reader).
    let settled = d.join("config.enc.new");
    std::fs::write(&settled, &token).unwrap();
    std::fs::rename(&settled, &fifo).unwrap();
    feed.send(token).unwrap();
    let out = show.wait_with_output().unwrap();
    assert_eq!(ok(&out), CONFIG);
}
