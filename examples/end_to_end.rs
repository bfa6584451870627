//! The lab, end to end, through the globo libraries: `cargo run --example end_to_end`.
//!
//! Runs every step of the lab in a temporary folder and prints each step and its outcome:
//! passwords (register, verify), the encrypted configuration (key, encrypt, show), secrets in
//! local mode (`.env`), then production mode against the local AWS emulator (moto, installed
//! into `.venv` on first use): seeding, reading a secret, and decrypting the configuration with
//! the Fernet key held in Secrets Manager. It stops the emulator it started and removes the
//! folder, whatever happens.
//!
//! Exit status: 0 when every step ran, or when only the production steps were skipped
//! because the emulator is not available (Python missing, or the demo runs outside a globo
//! checkout, with no venv to install moto into; the message says what they need); 1 when a
//! step failed, when the emulator is unavailable under `CI=true`, and when the output could
//! not be written to stdout (every step still runs and the folder is still removed).
//!
//! Like `app`, it first hardens its process (`globo::harden_process`: no core file, no
//! tracing by other processes), since it holds a password and keys.
//!
//! The demo reads no AWS setting from your shell: production steps use only the emulator
//! settings of its own `.env`, so it can never touch a real AWS account.

use std::error::Error;
use std::fmt::Display;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::OnceLock;

use globo::auth::{AuthError, UserStore};
use globo::crypto::{Key, KeyFile, decrypt_file_to_memory, encrypt_file};
use globo::keys::{DEFAULT_KEY_SECRET, KeySource, KeySourceConfig};
use globo::secrets::{AwsProvider, AwsSettings, Environment, Mode, provider_for, seed};
use globo_emulator::{Emulator, EmulatorError, Options};
use secrecy::{ExposeSecret, SecretString};

/// The lab's example configuration and `.env` template, from the repository root.
const CONFIG_EXAMPLE: &str = include_str!("../config.example.json");
const ENV_EXAMPLE: &str = include_str!("../.env.example");

const STEPS: usize = 11;
const PASSWORD: &str = "a long passphrase only she knows";
const WRONG_PASSWORD: &str = "not the passphrase alice chose";
const SECRET_NAME: &str = "PAYMENT_GATEWAY_API_KEY";

type Failure = Box<dyn Error>;

/// The first error writing to stdout; the demo goes on (and cleans up) but does not exit 0.
static STDOUT_LOST: OnceLock<String> = OnceLock::new();

/// `print!` that never panics: a failed write (a closed pipe) is remembered in `STDOUT_LOST`.
fn out(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        let _ = STDOUT_LOST.set(error.to_string());
    }
}

/// `println!` that never panics (see [`out`]).
macro_rules! say {
    ($($arg:tt)*) => { out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints `[n/11] what ... ` and then the outcome of `run`: `ok (detail)` or `FAILED`.
struct Steps {
    done: usize,
}

impl Steps {
    fn run<T: Display>(
        &mut self,
        what: &str,
        run: impl FnOnce() -> Result<T, Failure>,
    ) -> Result<(), Failure> {
        self.done += 1;
        out(format_args!("[{}/{STEPS}] {what} ... ", self.done));
        match run() {
            Ok(detail) => {
                let detail = detail.to_string();
                if detail.contains('\n') {
                    say!("ok\n{detail}");
                } else {
                    say!("ok ({detail})");
                }
                Ok(())
            }
            Err(error) => {
                say!("FAILED");
                Err(error)
            }
        }
    }
}

fn main() -> ExitCode {
    if let Err(error) = globo::harden_process() {
        complain(&error);
        return ExitCode::FAILURE;
    }
    let result = run();
    if let Some(lost) = STDOUT_LOST.get() {
        complain(&format!("cannot write to standard output: {lost}"));
    }
    match result {
        Ok(()) if STDOUT_LOST.get().is_none() => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
        Err(error) => {
            complain(&globo::with_causes(&*error));
            ExitCode::FAILURE
        }
    }
}

/// One line on stderr, best effort (`eprintln!` panics on a closed stderr).
fn complain(message: &dyn Display) {
    let _ = writeln!(std::io::stderr().lock(), "end_to_end: {message}");
}

fn run() -> Result<(), Failure> {
    let dir = tempfile::Builder::new().prefix("globo-end-to-end-").tempdir()?;
    let root = dir.path().to_path_buf();
    say!("globo end-to-end demo, working in {}", root.display());
    let result = steps(&root);
    dir.close()?;
    say!("removed {}", root.display());
    result
}

fn steps(dir: &Path) -> Result<(), Failure> {
    let mut steps = Steps { done: 0 };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;

    // 1-3. Passwords: Argon2id with the default (the lab's) parameters.
    let users = UserStore::new(dir.join("users.json"));
    steps.run("register alice", || {
        users.register("alice", &SecretString::from(PASSWORD))?;
        Ok("User 'alice' registered.")
    })?;
    steps.run("verify alice with her password", || {
        users.verify("alice", &SecretString::from(PASSWORD))?;
        Ok("password accepted")
    })?;
    steps.run("verify alice with a wrong password", || {
        match users.verify("alice", &SecretString::from(WRONG_PASSWORD)) {
            Err(AuthError::InvalidCredentials) => Ok("rejected, as it should be"),
            Err(other) => Err(other.into()),
            Ok(_) => Err("a wrong password was accepted".into()),
        }
    })?;

    // 4-6. The encrypted configuration.
    let key_path = dir.join("secret.key");
    let config_json = dir.join("config.json");
    let config_enc = dir.join("config.enc");
    let mut key = None;
    steps.run("create a Fernet key", || {
        let new = Key::generate()?;
        KeyFile::create_new(&key_path, &new)?;
        key = Some(new);
        Ok("secret.key, mode 0600")
    })?;
    let key = key.ok_or("no key")?;
    steps.run("encrypt config.example.json", || {
        std::fs::write(&config_json, CONFIG_EXAMPLE)?;
        encrypt_file(&key, &config_json, &config_enc)?;
        std::fs::remove_file(&config_json)?;
        Ok("config.enc written; the plaintext copy removed")
    })?;
    steps.run("show the configuration, decrypted in memory", || {
        let plaintext = decrypt_file_to_memory(&key, &config_enc)?;
        let value: serde_json::Value = serde_json::from_slice(&plaintext)?;
        Ok(serde_json::to_string_pretty(&value)?)
    })?;

    // 7. Secrets, local mode: the .env of the lab (from .env.example).
    let env_file = dir.join(".env");
    std::fs::write(&env_file, ENV_EXAMPLE)?;
    // The demo's own settings only: nothing from the shell (no real AWS account is touched).
    let env = Environment::empty();
    steps.run(&format!("get {SECRET_NAME} in local mode (.env)"), || {
        let provider = runtime.block_on(provider_for(Some(Mode::Local), &env_file, &env))?;
        let value = runtime.block_on(provider.get(SECRET_NAME))?;
        Ok(value.expose_secret().to_owned())
    })?;

    // 8. The emulator.
    let mut emulator = None;
    let mut skipped = None;
    steps.run("start the AWS emulator (moto)", || {
        if globo_emulator::locate()?.is_none() {
            say!("\n    moto is not installed yet: installing it into .venv (takes a minute)");
        }
        match Emulator::start(Options::default()) {
            Ok(started) => {
                let url = started.endpoint_url();
                emulator = Some(started);
                Ok(url)
            }
            // No Python, or no checkout to install moto into: what a machine without the
            // tooling has. A checkout refused as untrusted is no such case: it fails.
            Err(error @ (EmulatorError::NotInstalled { .. } | EmulatorError::NoProject { .. }))
                if !in_ci() =>
            {
                skipped = Some(error);
                Ok("not available".to_owned())
            }
            Err(error) => Err(error.into()),
        }
    })?;
    let Some(emulator) = emulator else {
        let error = skipped.map(|e| e.to_string()).unwrap_or_default();
        say!(
            "prod steps skipped: run the demo from a globo checkout with Python 3 and pip \
             (scripts/python-env then installs moto[server] into .venv), or set \
             GLOBO_MOTO_SERVER, and run it again. Cause: {error}"
        );
        return Ok(());
    };
    // The lab's .env names the emulator on 127.0.0.1:5000; point it at this run's port.
    let endpoint = emulator.endpoint_url();
    let dotenv = ENV_EXAMPLE
        .replace("AWS_ENDPOINT_URL=http://127.0.0.1:5000", &format!("AWS_ENDPOINT_URL={endpoint}"));
    std::fs::write(&env_file, dotenv)?;

    // 9. Seed it from the configuration's seed_secrets, with the demo's key as FERNET_KEY.
    steps.run("seed the emulator from seed_secrets", || {
        let plaintext = decrypt_file_to_memory(&key, &config_enc)?;
        let entries = seed::seed_entries(&plaintext)?;
        let provider = runtime
            .block_on(AwsProvider::from_settings(&AwsSettings::resolve(&env_file, &env)?))?;
        // The key secret is guarded: created from a valid key, never replaced afterwards.
        let seeder = globo::keys::seed::KeySeeder::new(&provider, DEFAULT_KEY_SECRET);
        let mut done = Vec::new();
        for (name, value) in entries {
            let value = if name == DEFAULT_KEY_SECRET { key.to_base64() } else { value };
            let outcome = runtime.block_on(seeder.seed(&name, &value))?;
            done.push(format!("{} {name}", outcome.as_str()));
        }
        Ok(done.join(", "))
    })?;

    // 10. Secrets, prod mode: the same name, from Secrets Manager.
    steps.run(&format!("get {SECRET_NAME} in prod mode (AWS Secrets Manager)"), || {
        let provider = runtime.block_on(provider_for(Some(Mode::Prod), &env_file, &env))?;
        let value = runtime.block_on(provider.get(SECRET_NAME))?;
        Ok(value.expose_secret().to_owned())
    })?;

    // 11. The configuration, with the key held in Secrets Manager (no key file needed).
    std::fs::remove_file(&key_path)?;
    steps.run("decrypt the configuration with the key in Secrets Manager", || {
        // What a service does: one call finds the key's home (prod: the secret FERNET_KEY).
        let config = KeySourceConfig::new()
            .mode(Mode::Prod)
            .key_secret(DEFAULT_KEY_SECRET)
            .env_file(&env_file);
        let source = runtime.block_on(KeySource::resolve(&config, &env))?;
        let keys = runtime.block_on(source.load())?;
        let plaintext = decrypt_file_to_memory(&keys.keyring, &config_enc)?;
        let value: serde_json::Value = serde_json::from_slice(&plaintext)?;
        let database = value.get("database_url").and_then(|v| v.as_str()).is_some();
        if !database {
            return Err("the decrypted configuration has no database_url".into());
        }
        Ok(format!("config.enc decrypted with secret 'FERNET_KEY', {} bytes", plaintext.len()))
    })?;

    drop(emulator);
    say!("emulator on {endpoint} stopped");
    Ok(())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
