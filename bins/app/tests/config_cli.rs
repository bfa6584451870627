#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `app config ...` end to end: the real binary in a temporary folder, compared with Python
//! `cryptography` and `json` where the lab's behaviour is defined by them.

use std::path::Path;
use std::process::Output;

const DECRYPTION_FAILED: &str =
    "error: Decryption failed: ciphertext is corrupt or the key is wrong.\n";

fn app(dir: &Path, args: &[&str]) -> Output {
    app_env(dir, args, &[])
}

fn app_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = globo_testkit::isolated_command(env!("CARGO_BIN_EXE_app"), dir);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Asserts a failed run: exit code 1, nothing on stdout; returns stderr.
fn failed(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(1), "stdout: {} stderr: {}", stdout(o), stderr(o));
    assert!(o.stdout.is_empty(), "stdout on failure: {}", stdout(o));
    stderr(o)
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "status {} stderr: {}", o.status, stderr(o));
    stdout(o)
}

const CONFIG: &str = r#"{"internal_endpoint": "https://internal.example", "database_url": "postgresql://localhost:5432/globomantica", "feature_flags": {"new_checkout": true, "experimental_search": false}, "owner": "Zoë 😀", "ratio": 2.5, "list": [], "obj": {}}"#;

fn init(dir: &Path) {
    ok(&app(dir, &["config", "init-key"]));
    std::fs::write(dir.join("config.json"), CONFIG).unwrap();
    ok(&app(dir, &["config", "encrypt", "config.json"]));
}

#[test]
fn init_key_is_private_and_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&app(dir.path(), &["config", "init-key"]));
    assert!(out.contains("secret.key"), "{out}");
    let key = std::fs::read(dir.path().join("secret.key")).unwrap();
    assert_eq!(key.len(), 44);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("secret.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let err = failed(&app(dir.path(), &["config", "init-key"]));
    assert!(err.contains("already exists") && err.contains("unreadable"), "{err}");
    assert!(err.contains("rotate-key"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("secret.key")).unwrap(), key);

    // Encrypting over the key file by mistake is refused too.
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let err =
        failed(&app(dir.path(), &["config", "encrypt", "config.json", "--out", "secret.key"]));
    assert!(err.contains("holds a Fernet key"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("secret.key")).unwrap(), key);

    ok(&app(dir.path(), &["config", "init-key", "--key-file", "other.key"]));
    assert!(dir.path().join("other.key").exists());
}

#[test]
fn encrypt_then_show_prints_json_like_python() {
    let dir = tempfile::tempdir().unwrap();
    ok(&app(dir.path(), &["config", "init-key"]));
    std::fs::write(dir.path().join("config.json"), CONFIG).unwrap();
    let out = ok(&app(dir.path(), &["config", "encrypt", "config.json"]));
    assert!(out.contains("'config.enc'"), "{out}");
    assert!(out.contains("still on disk"), "{out}");
    assert!(dir.path().join("config.json").exists());
    let token = std::fs::read_to_string(dir.path().join("config.enc")).unwrap();
    assert!(!token.contains("globomantica"));

    let shown = ok(&app(dir.path(), &["config", "show"]));
    assert!(shown.starts_with("{\n  \"internal_endpoint\""), "key order kept: {shown}");
    assert!(shown.contains("\"owner\": \"Zo\\u00eb \\ud83d\\ude00\""), "{shown}");
    let raw = app(dir.path(), &["config", "show", "--raw"]);
    assert_eq!(raw.stdout, CONFIG.as_bytes());

    if let Some(py) = globo_testkit::python(&["cryptography"]) {
        let expected = py.run_ok(
            "import json, sys; print(json.dumps(json.loads(sys.stdin.read()), indent=2))",
            &[],
            CONFIG.as_bytes(),
        );
        assert_eq!(shown.as_bytes(), expected.as_slice());
    }
}

/// Issue 11 item 12: Python prints integers of any width exactly and floats with `repr`;
/// `serde_json` printed 123456789012345678901234567890 as 1.2345678901234568e29 and 1e16 as
/// 1e16.
#[test]
fn show_prints_wide_integers_and_floats_exactly_as_python() {
    const NUMBERS: &str = r#"{"account_id": 123456789012345678901234567890, "negative": -98765432109876543210,
"ratio": 1e16, "small": 0.00001, "tie": 1947292239574953.2177224268196, "max": 1e400, "id": 1, "id": 2}"#;
    let dir = tempfile::tempdir().unwrap();
    ok(&app(dir.path(), &["config", "init-key"]));
    std::fs::write(dir.path().join("numbers.json"), NUMBERS).unwrap();
    ok(&app(dir.path(), &["config", "encrypt", "numbers.json", "--out", "numbers.enc"]));
    let shown = ok(&app(dir.path(), &["config", "show", "--in", "numbers.enc"]));
    assert!(shown.contains("\"account_id\": 123456789012345678901234567890,"), "{shown}");
    assert!(shown.contains("\"negative\": -98765432109876543210,"), "{shown}");
    assert!(shown.contains("\"ratio\": 1e+16,"), "{shown}");
    if let Some(py) = globo_testkit::python(&["json"]) {
        let expected = py.run_ok(
            "import json, sys; print(json.dumps(json.loads(sys.stdin.buffer.read()), indent=2))",
            &[],
            NUMBERS.as_bytes(),
        );
        assert_eq!(shown, String::from_utf8(expected).unwrap());
    }
}

#[test]
fn remove_plaintext_after_verification() {
    let dir = tempfile::tempdir().unwrap();
    ok(&app(dir.path(), &["config", "init-key"]));
    std::fs::write(dir.path().join("c.json"), CONFIG).unwrap();
    let out = ok(&app(
        dir.path(),
        &["config", "encrypt", "c.json", "--out", "c.enc", "--remove-plaintext"],
    ));
    assert!(out.contains("Removed the plaintext"), "{out}");
    assert!(!dir.path().join("c.json").exists());
    let raw = app(dir.path(), &["config", "show", "--in", "c.enc", "--raw"]);
    assert_eq!(raw.stdout, CONFIG.as_bytes());
}

#[test]
fn show_failures_use_the_lab_messages_and_print_nothing() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());

    let err = failed(&app(dir.path(), &["config", "show", "--in", "missing.enc"]));
    assert_eq!(err, "error: Ciphertext file 'missing.enc' not found.\n");

    // Wrong key.
    ok(&app(dir.path(), &["config", "init-key", "--key-file", "wrong.key"]));
    let err = failed(&app(dir.path(), &["config", "show", "--key-file", "wrong.key"]));
    assert_eq!(err, DECRYPTION_FAILED);

    // Tampered token: same message.
    let token = std::fs::read_to_string(dir.path().join("config.enc")).unwrap();
    let mut bytes = token.into_bytes();
    bytes[60] = if bytes[60] == b'A' { b'B' } else { b'A' };
    std::fs::write(dir.path().join("tampered.enc"), &bytes).unwrap();
    let err = failed(&app(dir.path(), &["config", "show", "--in", "tampered.enc"]));
    assert_eq!(err, DECRYPTION_FAILED);

    // Missing key file: precise, with the fix.
    let err = failed(&app(dir.path(), &["config", "show", "--key-file", "nokey"]));
    assert!(err.contains("'nokey' not found") && err.contains("init-key"), "{err}");

    // Invalid JSON: position, not content.
    std::fs::write(dir.path().join("bad.json"), "{\"password\": \"hunter2\",\n  oops}").unwrap();
    ok(&app(dir.path(), &["config", "encrypt", "bad.json", "--out", "bad.enc"]));
    let err = failed(&app(dir.path(), &["config", "show", "--in", "bad.enc"]));
    assert!(err.contains("line 2, column 3"), "{err}");
    assert!(!err.contains("hunter2") && !err.contains("oops"), "{err}");
    // --raw does not parse.
    let raw = app(dir.path(), &["config", "show", "--in", "bad.enc", "--raw"]);
    assert_eq!(ok(&raw), "{\"password\": \"hunter2\",\n  oops}");
}

#[test]
fn invalid_key_file_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    std::fs::write(dir.path().join("secret.key"), "TOPSECRET-but-not-a-key\n").unwrap();
    let err = failed(&app(dir.path(), &["config", "show"]));
    assert!(err.contains("'secret.key'"), "{err}");
    assert!(!err.contains("TOPSECRET"), "{err}");
}

#[cfg(unix)]
#[test]
fn loose_key_permissions_warn_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let key = dir.path().join("secret.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = app(dir.path(), &["config", "show"]);
    ok(&out);
    let err = stderr(&out);
    assert!(err.contains("warning: key file 'secret.key'"), "{err}");
    assert!(err.contains("chmod 600 'secret.key'"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(stderr(&app(dir.path(), &["config", "show"])), "");
}

#[test]
fn python_and_app_read_each_others_files() {
    let Some(py) = globo_testkit::python(&["cryptography"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    // What the lab's decrypt_to_memory does, on files made by app; and the reverse.
    let code = "import sys\nfrom cryptography.fernet import Fernet\n\
                f = Fernet(open(sys.argv[1],'rb').read())\n\
                sys.stdout.buffer.write(f.decrypt(open(sys.argv[2],'rb').read()))\n\
                open(sys.argv[3],'wb').write(f.encrypt(b'{\"from\": \"python\"}'))";
    let d = dir.path();
    let out = py.run_ok(
        code,
        &[
            d.join("secret.key").to_str().unwrap(),
            d.join("config.enc").to_str().unwrap(),
            d.join("py.enc").to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out, CONFIG.as_bytes());
    let shown = ok(&app(d, &["config", "show", "--in", "py.enc"]));
    assert_eq!(shown, "{\n  \"from\": \"python\"\n}\n");
}

#[test]
fn max_age_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    ok(&app(dir.path(), &["config", "show", "--max-age", "3600"]));
    let info = ok(&app(dir.path(), &["config", "inspect"]));
    assert!(info.contains("not verified"), "{info}");
    assert!(info.contains("created: 20"), "{info}");
    let ct_len = (CONFIG.len() / 16 + 1) * 16;
    assert!(info.contains(&format!("{ct_len} bytes of ciphertext")), "{info}");
    assert!(info.contains(&format!("to {} bytes", ct_len - 1)), "{info}");
    std::fs::write(dir.path().join("junk.enc"), "junk").unwrap();
    let err = failed(&app(dir.path(), &["config", "inspect", "--in", "junk.enc"]));
    assert!(err.contains("not a Fernet token"), "{err}");

    let Some(py) = globo_testkit::python(&["cryptography"]) else { return };
    // A token made (by Python) one day ago.
    let d = dir.path();
    py.run_ok(
        "import sys, time\nfrom cryptography.fernet import Fernet\n\
         f = Fernet(open(sys.argv[1],'rb').read())\n\
         open(sys.argv[2],'wb').write(f.encrypt_at_time(b'{}', int(time.time()) - 86400))",
        &[d.join("secret.key").to_str().unwrap(), d.join("old.enc").to_str().unwrap()],
        b"",
    );
    ok(&app(d, &["config", "show", "--in", "old.enc"]));
    ok(&app(d, &["config", "show", "--in", "old.enc", "--max-age", "90000"]));
    let err = failed(&app(d, &["config", "show", "--in", "old.enc", "--max-age", "3600"]));
    assert!(err.contains("older than --max-age"), "{err}");
}

/// Kills `rotate-key` (abort, via the debug-only test hook) right after each step, then checks
/// that `show` still decrypts every file with the key files on disk and that running
/// `rotate-key` again completes the rotation.
#[test]
fn rotate_key_survives_a_kill_at_every_step() {
    if !cfg!(debug_assertions) {
        // Release builds have no hook: the variable is ignored and the rotation completes.
        let dir = tempfile::tempdir().unwrap();
        init(dir.path());
        let env = [("GLOBO_TEST_CRASH_AT", "next-key")];
        ok(&app_env(dir.path(), &["config", "rotate-key"], &env));
        assert!(!dir.path().join("secret.key.next").exists());
        return;
    }
    for step in ["next-key", "file-1", "file-2", "retired", "installed", "done"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        init(d);
        std::fs::write(d.join("other.json"), "[1, 2]").unwrap();
        ok(&app(d, &["config", "encrypt", "other.json", "--out", "other.enc"]));
        let old_key = std::fs::read(d.join("secret.key")).unwrap();

        let killed = app_env(
            d,
            &["config", "rotate-key", "config.enc", "other.enc"],
            &[("GLOBO_TEST_CRASH_AT", step)],
        );
        assert!(!killed.status.success(), "{step}: not killed");
        assert_eq!(killed.status.code(), None, "{step}: killed by a signal");

        for (file, content) in [("config.enc", CONFIG), ("other.enc", "[1, 2]")] {
            let raw = app(d, &["config", "show", "--in", file, "--raw"]);
            assert_eq!(ok(&raw), content, "{step}: {file} unreadable after the kill");
            let warned = stderr(&raw).contains("unfinished key rotation");
            assert_eq!(warned, step != "done", "{step}: {}", stderr(&raw));
        }

        let out = ok(&app(d, &["config", "rotate-key", "config.enc", "other.enc"]));
        assert!(out.contains("Rotated the key"), "{step}: {out}");
        assert!(!d.join("secret.key.next").exists(), "{step}");
        let new_key = std::fs::read(d.join("secret.key")).unwrap();
        assert_ne!(new_key, old_key, "{step}");
        let retired: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("secret.key.retired-"))
            .collect();
        assert!(
            retired.iter().any(|n| std::fs::read(d.join(n)).unwrap() == old_key),
            "{step}: old key not retired: {retired:?}"
        );
        for (file, content) in [("config.enc", CONFIG), ("other.enc", "[1, 2]")] {
            let raw = app(d, &["config", "show", "--in", file, "--raw"]);
            assert_eq!(ok(&raw), content, "{step}: {file}");
            // Only the new key is needed now.
            std::fs::write(d.join("only-new.key"), &new_key).unwrap();
            let raw =
                app(d, &["config", "show", "--in", file, "--raw", "--key-file", "only-new.key"]);
            assert_eq!(ok(&raw), content, "{step}: {file} with the new key alone");
        }
    }
}

#[test]
fn rotate_key_default_file_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let out = ok(&app(dir.path(), &["config", "rotate-key"]));
    assert!(out.contains("'config.enc'"), "{out}");
    assert!(out.contains("secret.key.retired-"), "{out}");
    let err = failed(&app(dir.path(), &["config", "rotate-key", "nope.enc"]));
    assert!(err.contains("nope.enc"), "{err}");
    assert!(!dir.path().join("secret.key.next").exists());
}

#[test]
fn the_mode_comes_from_the_flag_then_app_mode_and_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    // .env says local (and holds a FERNET_KEY value, which config never reads): the key file
    // is used.
    std::fs::write(d.join(".env"), "APP_MODE=local\nFERNET_KEY=not-used-by-config\n").unwrap();
    let raw = ok(&app(d, &["config", "show", "--raw"]));
    assert_eq!(raw, CONFIG);
    // An unknown mode, from the flag or from APP_MODE, is an error, never a fallback.
    let err = failed(&app(d, &["config", "show", "--mode", "prd"]));
    assert!(err.contains("unknown mode 'prd'"), "{err}");
    let err = failed(&app_env(d, &["config", "show"], &[("APP_MODE", "Prod")]));
    assert!(err.contains("unknown mode 'Prod'"), "{err}");
    // --mode local wins over APP_MODE=prod in the environment.
    let raw =
        ok(&app_env(d, &["config", "show", "--raw", "--mode", "local"], &[("APP_MODE", "prod")]));
    assert_eq!(raw, CONFIG);
}

/// Issue 11 item 7: `--env-file <(cmd)` is a pipe, readable once. The mode and the AWS
/// settings of prod mode come from that one reading (the second reading used to find the pipe
/// empty, so the endpoint set in it was lost).
#[cfg(unix)]
#[test]
fn config_reads_an_env_file_pipe_once_for_mode_and_aws_settings() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "exec \"$APP\" config show --env-file <(printf 'APP_MODE=prod\\nAWS_ENDPOINT_URL={endpoint}\\n')"
    );
    let mut command = globo_testkit::isolated_command("bash", dir.path());
    command.args(["-c", &script]).env("APP", env!("CARGO_BIN_EXE_app")).envs([
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ]);
    let out = globo_testkit::output_guarded(&mut command, None);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let message = stderr(&out);
    assert!(message.contains("AWS Secrets Manager"), "{message}");
    assert!(message.contains(&endpoint), "{message}");
}

/// Review B7: local mode needs nothing from .env, so when `--mode local` or `APP_MODE=local`
/// in the environment decides the mode, a .env that cannot be read or parsed does not stop a
/// config command; when only the file can tell, it is still read (and its error reported).
#[test]
fn config_in_local_mode_from_the_environment_does_not_read_the_env_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join(".env"), "APP_MODE=local\nBROKEN=\"unclosed\n").unwrap();
    ok(&app_env(d, &["config", "init-key"], &[("APP_MODE", "local")]));
    assert!(d.join("secret.key").is_file());
    std::fs::write(d.join("config.json"), CONFIG).unwrap();
    ok(&app_env(d, &["config", "encrypt", "config.json"], &[("APP_MODE", "local")]));
    let raw = ok(&app(d, &["config", "show", "--raw", "--mode", "local"]));
    assert_eq!(raw, CONFIG);
    let err = failed(&app(d, &["config", "show", "--raw"]));
    assert!(err.contains("line 2"), "{err}");
}
