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
//! because Python is not available (the message says what they need); 1 when a step failed,
//! and when the emulator is unavailable under `CI=true`.
//!
//! The demo reads no AWS setting from your shell: production steps use only the emulator
//! settings of its own `.env`, so it can never touch a real AWS account.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;
use std::fmt::Display;
use std::path::Path;
use std::process::ExitCode;

use globo::auth::{AuthError, UserStore};
use globo::crypto::{Key, KeyFile, decrypt_file_to_memory, encrypt_file};
use globo::secrets::fernet_key::SecretsManagerKeyStore;
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
        print!("[{}/{STEPS}] {what} ... ", self.done);
        let _ = std::io::Write::flush(&mut std::io::stdout());
        match run() {
            Ok(detail) => {
                let detail = detail.to_string();
                if detail.contains('\n') {
                    println!("ok\n{detail}");
                } else {
                    println!("ok ({detail})");
                }
                Ok(())
            }
            Err(error) => {
                println!("FAILED");
                Err(error)
            }
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("end_to_end: {}", globo::with_causes(&*error));
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Failure> {
    let dir = tempfile::Builder::new().prefix("globo-end-to-end-").tempdir()?;
    let root = dir.path().to_path_buf();
    println!("globo end-to-end demo, working in {}", root.display());
    let result = steps(&root);
    dir.close()?;
    println!("removed {}", root.display());
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
            println!("\n    moto is not installed yet: installing it into .venv (takes a minute)");
        }
        match Emulator::start(Options::default()) {
            Ok(started) => {
                let url = started.endpoint_url();
                emulator = Some(started);
                Ok(url)
            }
            Err(error @ EmulatorError::NotInstalled { .. }) if !in_ci() => {
                skipped = Some(error);
                Ok("not available".to_owned())
            }
            Err(error) => Err(error.into()),
        }
    })?;
    let Some(emulator) = emulator else {
        let error = skipped.map(|e| e.to_string()).unwrap_or_default();
        println!(
            "prod steps skipped: install Python 3 with pip (scripts/python-env then installs \
             moto[server] into .venv), and run the demo again. Cause: {error}"
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
        let mut done = Vec::new();
        for (name, value) in entries {
            let value = if name == "FERNET_KEY" { key.to_base64() } else { value };
            let outcome = runtime.block_on(seed::create_or_update(&provider, &name, &value))?;
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
        let store =
            runtime.block_on(SecretsManagerKeyStore::from_settings(None, &env_file, &env))?;
        let keys = runtime.block_on(store.load_keys())?;
        let plaintext = decrypt_file_to_memory(&keys.keyring(), &config_enc)?;
        let value: serde_json::Value = serde_json::from_slice(&plaintext)?;
        let database = value.get("database_url").and_then(|v| v.as_str()).is_some();
        if !database {
            return Err("the decrypted configuration has no database_url".into());
        }
        Ok(format!("config.enc decrypted with secret 'FERNET_KEY', {} bytes", plaintext.len()))
    })?;

    drop(emulator);
    println!("emulator on {endpoint} stopped");
    Ok(())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
