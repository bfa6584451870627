//! Leaks: every CLI error path runs with known passwords, keys and secret values, and none of
//! them may appear on stdout or stderr; nor in the `Debug` output of the library types that
//! hold them, nor in the message of a panic on their errors (`unwrap()` prints `Debug`).
//! `secrets get` and `config show` print a secret on success, on purpose; their error paths
//! are checked here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use globo::auth::{self, Profile, UserStore};
use globo::crypto::{self, Key, KeyFile, Keyring, LoadedKeys};
use globo::secrets::{
    self, CachingProvider, Environment, InMemoryProvider, LocalProvider, SecretValue,
    SecretsProvider,
};
use secrecy::{ExposeSecret as _, SecretString};

const APP: &str = env!("CARGO_BIN_EXE_app");
const PASSWORD: &str = "Leak-Test-Password-7f3a91";
const SECRET: &str = "leak-secret-value-9c1e77";
const CONFIG_MARKER: &str = "leak-config-marker-4b2d05";
const AWS_SECRET_KEY: &str = "leak-aws-secret-access-key-6e8f";

fn app(dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut command = globo_testkit::isolated_command(APP, dir);
    command
        .args(args)
        .env("GLOBO_PASSWORD_PROFILE", "test-only-insecure")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied());
    globo_testkit::output_guarded(&mut command, Some(stdin.as_bytes()))
}

/// Runs a command that must fail, and checks its output holds none of `secrets`.
fn fails_without_leaking(
    dir: &Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
    secrets: &[&str],
) {
    let out = app(dir, args, stdin, env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "app {args:?} succeeded: {stdout}");
    assert!(!stderr.is_empty(), "app {args:?} failed silently");
    for secret in secrets {
        assert!(!stdout.contains(secret), "app {args:?} leaked {secret:?} on stdout: {stdout}");
        assert!(!stderr.contains(secret), "app {args:?} leaked {secret:?} on stderr: {stderr}");
    }
}

fn key_text(key: &Key) -> String {
    key.to_base64().expose_secret().to_owned()
}

#[test]
fn auth_error_paths_never_print_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = format!("{PASSWORD}\n");
    let none: &[(&str, &str)] = &[];
    assert!(app(d, &["register", "alice", "--password-stdin"], &line, none).status.success());
    let s = &[PASSWORD];
    // Taken name, wrong password, unknown user.
    fails_without_leaking(d, &["register", "alice", "--password-stdin"], &line, none, s);
    let wrong = format!("{PASSWORD}-wrong\n");
    fails_without_leaking(
        d,
        &["verify", "alice", "--password-stdin"],
        &wrong,
        none,
        &[wrong.trim()],
    );
    fails_without_leaking(d, &["verify", "mallory", "--password-stdin"], &line, none, s);
    // Policy failures: too short, too long, too common (the password is the secret here).
    fails_without_leaking(
        d,
        &["register", "bob", "--password-stdin"],
        "Sh0rt!\n",
        none,
        &["Sh0rt!"],
    );
    let long = format!("{}{PASSWORD}\n", "x".repeat(2000));
    fails_without_leaking(d, &["register", "bob", "--password-stdin"], &long, none, s);
    for common in ["password123", "1q2w3e4r5t6y7u8i9o0p"] {
        fails_without_leaking(
            d,
            &["register", "bob", "--password-stdin"],
            &format!("{common}\n"),
            none,
            &[common],
        );
    }
    // A password holding the username: the message names the user, not the password.
    let holds_name = format!("{PASSWORD}-grace");
    fails_without_leaking(
        d,
        &["register", "grace", "--password-stdin"],
        &format!("{holds_name}\n"),
        none,
        &[holds_name.as_str(), PASSWORD],
    );
    // Bad usernames are not secret, but the password still must not appear.
    fails_without_leaking(d, &["register", "bad\u{7}name", "--password-stdin"], &line, none, s);
    // A users entry that is not a hash (here: someone stored the plaintext password).
    std::fs::write(d.join("users.json"), format!("{{\"carol\": \"{PASSWORD}\"}}")).unwrap();
    fails_without_leaking(d, &["verify", "carol", "--password-stdin"], &line, none, s);
    // A corrupt users file whose text holds the password.
    std::fs::write(d.join("users.json"), format!("{{\"carol\": \"{PASSWORD}")).unwrap();
    fails_without_leaking(d, &["register", "dave", "--password-stdin"], &line, none, s);
    fails_without_leaking(d, &["verify", "carol", "--password-stdin"], &line, none, s);
    std::fs::write(d.join("users.json"), format!("[\"{PASSWORD}\"]")).unwrap();
    fails_without_leaking(d, &["verify", "carol", "--password-stdin"], &line, none, s);
    // A hash over the limits and an unsupported one.
    let huge = "$argon2id$v=19$m=4194304,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
    std::fs::write(d.join("users.json"), format!("{{\"erin\": \"{huge}\"}}")).unwrap();
    fails_without_leaking(d, &["verify", "erin", "--password-stdin"], &line, none, s);
    // Unknown profile.
    let env = [("GLOBO_PASSWORD_PROFILE", "no-such-profile")];
    fails_without_leaking(d, &["register", "frank", "--password-stdin"], &line, &env, s);
}

/// Issue 13: the users commands' error paths, and logins, with every log enabled in both
/// formats (the security events on stderr): no password, and no salt or tag of any stored
/// hash, is printed.
#[test]
fn users_commands_and_security_events_never_print_a_password_or_hash() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = format!("{PASSWORD}\n");
    let none: &[(&str, &str)] = &[];
    assert!(app(d, &["register", "alice", "--password-stdin"], &line, none).status.success());
    let record = std::fs::read_to_string(d.join("users.json")).unwrap();
    let hash: serde_json::Value = serde_json::from_str(&record).unwrap();
    let hash = hash["alice"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = hash.rsplitn(3, '$').collect();
    let (tag, salt) = (parts[0], parts[1]);
    let new = "Leak-Test-New-Passphrase-51c0";
    for format in ["text", "json"] {
        let env = [("RUST_LOG", "trace"), ("GLOBO_LOG_FORMAT", format)];
        let s = &[PASSWORD, new, tag, salt];
        let passwd = ["users", "passwd", "alice", "--password-stdin"];
        // Wrong current password, unknown user, refused new passwords.
        fails_without_leaking(d, &passwd, &format!("{PASSWORD}-wrong\n{new}\n"), &env, s);
        let unknown = ["users", "passwd", "mallory", "--password-stdin"];
        fails_without_leaking(d, &unknown, &format!("{PASSWORD}\n{new}\n"), &env, s);
        fails_without_leaking(
            d,
            &passwd,
            &format!("{PASSWORD}\n1q2w3e4r5t6y7u8i9o0p\n"),
            &env,
            &[PASSWORD, "1q2w3e4r5t6y7u8i9o0p", tag, salt],
        );
        fails_without_leaking(d, &passwd, &format!("{PASSWORD}\nalice-{new}\n"), &env, s);
        let reset = ["users", "reset", "mallory", "--password-stdin"];
        fails_without_leaking(d, &reset, &format!("{new}\n"), &env, s);
        let reset = ["users", "reset", "alice", "--password-stdin"];
        fails_without_leaking(d, &reset, "Sh0rt!\n", &env, &["Sh0rt!", PASSWORD, tag, salt]);
        fails_without_leaking(d, &["users", "delete", "mallory", "--yes"], "", &env, s);
        fails_without_leaking(d, &["verify", "alice", "--password-stdin"], "wrong\n", &env, s);
        // A login that succeeds logs its event, and still nothing secret.
        let out = app(d, &["verify", "alice", "--password-stdin"], &line, &env);
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        // After the wrong password just above (throttling counts it), the success after fail.
        assert!(stderr.contains("authn_login_successafterfail:alice,1"), "{stderr}");
        assert_clean("a login's log", &stderr, s);
    }
}

#[test]
fn config_error_paths_never_print_a_key_or_the_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let none: &[(&str, &str)] = &[];
    let key = Key::generate().unwrap();
    let other = Key::generate().unwrap();
    let (key_b64, other_b64) = (key_text(&key), key_text(&other));
    let s = [key_b64.as_str(), other_b64.as_str(), CONFIG_MARKER];
    KeyFile::create_new(&d.join("secret.key"), &key).unwrap();
    let config = format!("{{\"database_url\": \"postgres://u:{CONFIG_MARKER}@localhost/db\"}}");
    std::fs::write(d.join("config.json"), &config).unwrap();

    // Encrypted under another key: wrong key.
    std::fs::write(d.join("config.enc"), crypto::encrypt(&other, config.as_bytes()).unwrap())
        .unwrap();
    fails_without_leaking(d, &["config", "show"], "", none, &s);
    fails_without_leaking(d, &["config", "show", "--raw"], "", none, &s);
    fails_without_leaking(d, &["config", "rotate-key"], "", none, &s);
    // Tampered, and expired.
    let mut token = crypto::encrypt(&key, config.as_bytes()).unwrap().into_bytes();
    token[60] = if token[60] == b'A' { b'B' } else { b'A' };
    std::fs::write(d.join("config.enc"), &token).unwrap();
    fails_without_leaking(d, &["config", "show"], "", none, &s);
    std::fs::write(d.join("config.enc"), crypto::encrypt(&key, config.as_bytes()).unwrap())
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fails_without_leaking(d, &["config", "show", "--max-age", "0"], "", none, &s);
    // Decrypts, but is not JSON: the error names a position, never the content.
    let broken = format!("{{\"database_url\": \"{CONFIG_MARKER}\", oops}}");
    std::fs::write(d.join("config.enc"), crypto::encrypt(&key, broken.as_bytes()).unwrap())
        .unwrap();
    fails_without_leaking(d, &["config", "show"], "", none, &s);
    // A ciphertext file that is the plaintext itself.
    std::fs::write(d.join("plain.enc"), &config).unwrap();
    fails_without_leaking(d, &["config", "show", "--in", "plain.enc"], "", none, &s);
    fails_without_leaking(d, &["config", "inspect", "--in", "plain.enc"], "", none, &s);
    // Key files that are not keys: a key with a typo, a key plus text, the other key's
    // text in a file next to it as a "next" key that is broken.
    let typo = format!("{}!", &key_b64[..43]);
    std::fs::write(d.join("typo.key"), &typo).unwrap();
    fails_without_leaking(
        d,
        &["config", "show", "--key-file", "typo.key"],
        "",
        none,
        &[&typo, &key_b64[..43]],
    );
    let noisy = format!("FERNET_KEY={key_b64}\n");
    std::fs::write(d.join("noisy.key"), &noisy).unwrap();
    fails_without_leaking(d, &["config", "show", "--key-file", "noisy.key"], "", none, &s);
    fails_without_leaking(
        d,
        &["config", "encrypt", "config.json", "--key-file", "noisy.key"],
        "",
        none,
        &s,
    );
    std::fs::write(d.join("secret.key.next"), format!("{other_b64}x")).unwrap();
    fails_without_leaking(d, &["config", "show"], "", none, &s);
    std::fs::remove_file(d.join("secret.key.next")).unwrap();
    // Refusals: an existing key, encrypting onto the key file or onto its own plaintext.
    fails_without_leaking(d, &["config", "init-key"], "", none, &s);
    fails_without_leaking(
        d,
        &["config", "encrypt", "config.json", "--out", "secret.key"],
        "",
        none,
        &s,
    );
    fails_without_leaking(
        d,
        &["config", "encrypt", "config.json", "--out", "config.json"],
        "",
        none,
        &s,
    );
    fails_without_leaking(d, &["config", "encrypt", "missing.json"], "", none, &s);
    // Rotation with a file that the key cannot decrypt.
    std::fs::write(d.join("theirs.enc"), crypto::encrypt(&other, config.as_bytes()).unwrap())
        .unwrap();
    std::fs::write(d.join("config.enc"), crypto::encrypt(&key, config.as_bytes()).unwrap())
        .unwrap();
    fails_without_leaking(d, &["config", "rotate-key", "config.enc", "theirs.enc"], "", none, &s);
    // Nothing was lost by the refused rotation.
    let keys = LoadedKeys::load(&d.join("secret.key")).unwrap();
    let token = std::fs::read_to_string(d.join("config.enc")).unwrap();
    assert_eq!(crypto::decrypt(keys.keyring(), &token).unwrap().as_slice(), config.as_bytes());
}

#[test]
fn secrets_error_paths_never_print_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let none: &[(&str, &str)] = &[];
    std::fs::write(
        d.join(".env"),
        format!("APP_MODE=local\nPAYMENT_GATEWAY_API_KEY={SECRET}\nEMPTY=\n"),
    )
    .unwrap();
    let s = [SECRET, AWS_SECRET_KEY];
    fails_without_leaking(d, &["secrets", "get", "MISSING"], "", none, &s);
    fails_without_leaking(d, &["secrets", "get", "EMPTY"], "", none, &s);
    fails_without_leaking(d, &["secrets", "get", "BAD=NAME"], "", none, &s);
    fails_without_leaking(d, &["secrets", "get", ""], "", none, &s);
    fails_without_leaking(
        d,
        &["secrets", "get", "PAYMENT_GATEWAY_API_KEY", "--mode", "staging"],
        "",
        none,
        &s,
    );
    // A malformed line right after the secret, and one holding it.
    std::fs::write(d.join("bad.env"), format!("A={SECRET}\nB=\"{SECRET}\nC='x\n")).unwrap();
    fails_without_leaking(d, &["secrets", "get", "A", "--env-file", "bad.env"], "", none, &s);
    std::fs::write(d.join("bad2.env"), format!("{SECRET} oops\n")).unwrap();
    fails_without_leaking(d, &["secrets", "get", "A", "--env-file", "bad2.env"], "", none, &s);
    // An unknown APP_MODE is repeated in its error on purpose (a mode is not a secret).
    fails_without_leaking(
        d,
        &["secrets", "get", "PAYMENT_GATEWAY_API_KEY"],
        "",
        &[("APP_MODE", "staging")],
        &s,
    );
    // Prod mode, endpoint down, with credentials in the environment.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIALEAKTEST"),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY),
        ("PAYMENT_GATEWAY_API_KEY", SECRET),
    ];
    fails_without_leaking(
        d,
        &["secrets", "get", "PAYMENT_GATEWAY_API_KEY", "--mode", "prod"],
        "",
        &env,
        &s,
    );
}

/// `Debug` output and the message of a panic on `unwrap()` of each error.
fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
    }
}

fn panic_message<E: std::fmt::Debug>(result: Result<(), E>) -> String {
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| result.unwrap()))
        .expect_err("unwrap of an error panics");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap()
}

#[test]
fn library_types_redact_secrets_in_debug_and_panics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = Key::generate().unwrap();
    let key_b64 = key_text(&key);
    let s = [key_b64.as_str(), PASSWORD, SECRET, CONFIG_MARKER];

    // Keys.
    assert_clean("Key", &format!("{key:?} {key:#?}"), &s);
    let ring = Keyring::new(key.clone()).with_fallback(Key::generate().unwrap());
    assert_clean("Keyring", &format!("{ring:?}"), &s);
    let file = KeyFile::create_new(&d.join("secret.key"), &key).unwrap();
    assert_clean("KeyFile", &format!("{file:?}"), &s);
    let loaded = LoadedKeys::load(&d.join("secret.key")).unwrap();
    assert_clean("LoadedKeys", &format!("{loaded:?}"), &s);
    assert_clean("key secret", &format!("{:?}", key.to_base64()), &s);
    assert_clean(
        "Key::from_base64 error",
        &format!("{:?}", Key::from_base64(&format!("{key_b64}x"))),
        &s,
    );

    // Crypto errors, through unwrap() panics too.
    let token = crypto::encrypt(&key, CONFIG_MARKER.as_bytes()).unwrap();
    let wrong = crypto::decrypt(&Key::generate().unwrap(), &token).map(drop);
    assert_clean("decrypt error", &format!("{wrong:?}"), &s);
    assert_clean("decrypt panic", &panic_message(wrong), &s);
    std::fs::write(d.join("bad.key"), format!("{key_b64}{CONFIG_MARKER}")).unwrap();
    let bad = KeyFile::load(&d.join("bad.key")).map(drop);
    assert_clean("key file panic", &panic_message(bad), &s);
    assert_clean("TokenInfo", &format!("{:?}", crypto::inspect(&token)), &s);

    // Passwords and the store.
    let users = d.join("users.json");
    let store = UserStore::new(&users).with_profile(Profile::TestOnlyInsecure);
    store.register("alice", &SecretString::from(PASSWORD)).unwrap();
    let verified = store.verify("alice", &SecretString::from(PASSWORD)).unwrap();
    assert_clean("Verified", &format!("{verified:?}"), &s);
    let failed = store.verify("alice", &SecretString::from(format!("{PASSWORD}x"))).map(drop);
    assert_clean("verify panic", &panic_message(failed), &s);
    assert_clean("UserStore", &format!("{store:?}"), &s);
    for common in ["password123", "1q2w3e4r5t6y7u8i9o0p"] {
        let policy = auth::check_new_password(&SecretString::from(common));
        assert!(policy.is_err());
        assert_clean("policy error", &format!("{policy:?}"), &[common]);
    }
    let holds_name = SecretString::from(format!("{PASSWORD}-grace"));
    let policy = auth::check_new_password_for_user("grace", &holds_name);
    assert!(policy.is_err());
    assert_clean("username policy error", &format!("{policy:?}"), &s);
    assert_clean("username policy panic", &panic_message(policy), &s);
    std::fs::write(&users, format!("{{\"bob\": \"{PASSWORD}\"}}")).unwrap();
    let entry = store.verify("bob", &SecretString::from(PASSWORD)).map(drop);
    assert_clean("bad entry panic", &panic_message(entry), &s);
    std::fs::write(&users, format!("{{\"bob\": \"{PASSWORD}")).unwrap();
    let corrupt = store.verify("bob", &SecretString::from(PASSWORD)).map(drop);
    assert_clean("corrupt file panic", &panic_message(corrupt), &s);
    let phc = auth::verify_password(PASSWORD, PASSWORD);
    assert_clean("verify_password panic", &panic_message(phc), &s);

    // Secrets and providers.
    let value = SecretValue::Text(SecretString::from(SECRET));
    assert_clean("SecretValue", &format!("{value:?}"), &s);
    let env = Environment::from_pairs([("PAYMENT_GATEWAY_API_KEY", SECRET)]);
    assert_clean("Environment", &format!("{env:?}"), &s);
    std::fs::write(d.join(".env"), format!("OTHER={SECRET}\n")).unwrap();
    let local = LocalProvider::new(d.join(".env"), &env).unwrap();
    assert_clean("LocalProvider", &format!("{local:?}"), &s);
    let memory = InMemoryProvider::new().with("PAYMENT_GATEWAY_API_KEY", SECRET);
    assert_clean("InMemoryProvider", &format!("{memory:?}"), &s);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cached = CachingProvider::new(Arc::new(memory));
    let got = runtime.block_on(cached.get("PAYMENT_GATEWAY_API_KEY")).unwrap();
    assert_eq!(got.expose_secret(), SECRET);
    assert_clean("CachingProvider (filled)", &format!("{cached:?}"), &s);
    let entries = secrets::read_env_file(&d.join(".env")).unwrap();
    assert_clean("read_env_file entries", &format!("{entries:?}"), &s);
    std::fs::write(d.join("bad.env"), format!("A=\"{SECRET}\n")).unwrap();
    let malformed = secrets::read_env_file(&d.join("bad.env")).map(drop);
    assert_clean("malformed .env panic", &panic_message(malformed), &s);
    let seeds = format!("{{\"seed_secrets\": {{\"A\": \"{SECRET}\", \"B\": 5}}}}");
    let seeded = secrets::seed::seed_entries(seeds.as_bytes()).map(drop);
    assert_clean("seed_entries panic", &panic_message(seeded), &s);
    let broken = format!("{{\"seed_secrets\": {{\"A\": \"{SECRET}\" oops");
    let seeded = secrets::seed::seed_entries(broken.as_bytes()).map(drop);
    assert_clean("seed_entries JSON panic", &panic_message(seeded), &s);
    let missing = runtime.block_on(local.get("MISSING")).map(drop);
    assert_clean("missing secret panic", &panic_message(missing), &s);
}

/// Every word of `text` that has the shape of a Fernet key (44 characters of URL-safe base64
/// ending in `=`), wherever it stands (in quotes, in JSON, after a colon).
fn fernet_key_shapes(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '='))
        .filter(|word| word.len() == 44 && word.ends_with('=') && !word[..43].contains('='))
        .collect()
}

#[test]
fn init_key_in_prod_mode_never_prints_the_fresh_key() {
    // The key is generated inside `app`, so its shape is searched for, not its value; and the
    // request that would carry it (SecretString, the SDK's request dump) must not appear.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let malformed = ["http://[bad", "not a url", "ftp://x y", "http://"];
    for endpoint in malformed {
        for (region, origin) in [("us-east-1", "process"), ("us-east-1", ".env")] {
            let mut env = vec![
                ("AWS_REGION", region),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY),
            ];
            if origin == ".env" {
                std::fs::write(d.join(".env"), format!("AWS_ENDPOINT_URL='{endpoint}'\n")).unwrap();
            } else {
                std::fs::remove_file(d.join(".env")).ok();
                env.push(("AWS_ENDPOINT_URL", endpoint));
            }
            let out = app(d, &["config", "init-key", "--mode", "prod"], "", &env);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(!out.status.success(), "{endpoint}: {stdout}");
            for text in [&stdout, &stderr] {
                assert_eq!(fernet_key_shapes(text), Vec::<&str>::new(), "{endpoint}: {text}");
                assert!(!text.contains("SecretString") && !text.contains("SdkBody"), "{text}");
                assert!(!text.contains(AWS_SECRET_KEY), "{text}");
            }
            assert!(stderr.contains(endpoint), "{endpoint}: {stderr}");
            assert!(stderr.contains("is not a valid URL"), "{endpoint}: {stderr}");
        }
    }
}

/// The key a stage of `name` holds in the emulator at `endpoint`, read through the library.
fn moto_stage_key(endpoint: &str, name: &str, stage: &str) -> Key {
    globo_testkit::block_on(async {
        let config =
            globo_testkit::emulator_config(secrets::aws_config_loader().await, endpoint).await;
        let provider = secrets::AwsProvider::from_sdk_config(&config).unwrap();
        match provider.get_version(name, &secrets::VersionSelector::Stage(stage.into())).await {
            Ok(SecretValue::Text(text)) => Key::from_secret(&text).unwrap(),
            other => panic!("{name} {stage}: {other:?}"),
        }
    })
}

/// Every list of decimal bytes in `text` (`Bytes([123, 34, ...])`, how the SDK's traces
/// print a request body), decoded as (lossy) UTF-8, one per line.
fn byte_lists_decoded(text: &str) -> String {
    let mut decoded = String::new();
    for list in text.split('[').skip(1) {
        let Some((inside, _)) = list.split_once(']') else { continue };
        let bytes: Result<Vec<u8>, _> = inside.split(',').map(|b| b.trim().parse::<u8>()).collect();
        if let Ok(bytes) = bytes {
            decoded.push_str(&String::from_utf8_lossy(&bytes));
            decoded.push('\n');
        }
    }
    decoded
}

/// Review (P4f, point 1): with `RUST_LOG=trace`, the AWS SDK traces its requests (body
/// included), and the bodies of `init-key --mode prod` and `rotate-key` carry the new Fernet
/// key. Only globo's own log targets may be written, whatever `RUST_LOG` says.
#[test]
fn trace_logs_of_prod_key_commands_never_hold_the_key() {
    let Some(moto) = globo_testkit::moto() else { return };
    let endpoint = moto.endpoint_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join(".env"),
        format!(
            "APP_MODE=prod\nAWS_ENDPOINT_URL={endpoint}\nAWS_REGION=us-east-1\n\
             AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY={AWS_SECRET_KEY}\n"
        ),
    )
    .unwrap();
    std::fs::write(d.join("config.json"), format!(r#"{{"marker": "{CONFIG_MARKER}"}}"#)).unwrap();
    // The SDK prints request bodies at trace level when LOG_SIGNABLE_BODY=true.
    let trace = [("RUST_LOG", "trace"), ("LOG_SIGNABLE_BODY", "true")];
    let run = |args: &[&str]| {
        let out = app(d, args, "", &trace);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "app {args:?}: {stderr}");
        (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
    };
    let mut outputs = vec![run(&["config", "init-key", "--mode", "prod"])];
    let first = key_text(&moto_stage_key(&endpoint, "FERNET_KEY", "AWSCURRENT"));
    outputs.push(run(&["config", "encrypt", "config.json", "--mode", "prod"]));
    outputs.push(run(&["config", "rotate-key", "config.enc", "--mode", "prod"]));
    let second = key_text(&moto_stage_key(&endpoint, "FERNET_KEY", "AWSCURRENT"));
    assert_ne!(first, second);
    for (stdout, stderr) in &outputs {
        for text in [stdout, stderr, &byte_lists_decoded(stderr)] {
            for secret in [first.as_str(), second.as_str(), AWS_SECRET_KEY, CONFIG_MARKER] {
                assert!(!text.contains(secret), "a secret {secret:?} is in: {text}");
            }
            assert_eq!(fernet_key_shapes(text), Vec::<&str>::new(), "{text}");
        }
        // Nothing but globo's own targets is written.
        for line in stderr.lines().filter(|line| !line.trim().is_empty()) {
            assert!(line.contains(" globo"), "a line from outside globo: {line}");
        }
    }
}

/// The subcommands listed under `Commands:` in a help text (`help` itself left out).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// `--help` of `app` and of every subcommand, depth first.
fn every_help(dir: &Path, env: &[(&str, &str)]) -> Vec<(Vec<String>, String)> {
    let mut pending = vec![Vec::<String>::new()];
    let mut helps = Vec::new();
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = app(dir, &args, "", env);
        assert!(out.status.success(), "app {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let help = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for name in subcommands(&help) {
            let mut child = path.clone();
            child.push(name);
            pending.push(child);
        }
        helps.push((path, help));
    }
    helps
}

/// Issue 14 review: clap printed `[env: GLOBO_USERS_STORE=postgres://globo:PASSWORD@...]` in
/// `--help`. Every environment variable an option reads is set to a marker (a value may hold
/// a secret: a URL's password, a secret's name), and no help text shows it.
#[test]
fn help_never_prints_an_environment_value() {
    let dir = tempfile::tempdir().unwrap();
    let helps = every_help(dir.path(), &[]);
    assert!(helps.len() > 15, "found only {} commands", helps.len());
    let mut variables: Vec<String> = helps
        .iter()
        .flat_map(|(_, help)| help.split("[env:").skip(1))
        .map(|rest| {
            rest.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_' || c.is_ascii_digit())
                .collect()
        })
        .collect();
    variables.sort();
    variables.dedup();
    for expected in [
        "GLOBO_USERS_STORE",
        "GLOBO_LOG_FORMAT",
        "GLOBO_PASSWORD_PROFILE",
        "GLOBO_PASSWORD_POLICY",
        "GLOBO_LOGIN_SOURCE",
        "GLOBO_PEPPER_SECRET",
        "GLOBO_FERNET_KEY_SECRET",
    ] {
        assert!(variables.iter().any(|v| v == expected), "{expected} not found in {variables:?}");
    }
    let marker = "hunter2SECRET-help-marker";
    let values: Vec<(String, String)> = variables
        .iter()
        .map(|name| {
            let value = match name.as_str() {
                "GLOBO_USERS_STORE" => format!("postgres://globo:{marker}@127.0.0.1:1/users"),
                _ => marker.to_owned(),
            };
            (name.clone(), value)
        })
        .collect();
    let env: Vec<(&str, &str)> = values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let helps = every_help(dir.path(), &env);
    assert!(helps.len() > 15);
    for (path, help) in helps {
        let joined: String = help.split_whitespace().collect();
        assert!(!joined.contains(marker), "app {path:?} --help shows an environment value: {help}");
    }
}
