//! `mock-aws-seed`: creates the `seed_secrets` of the lab's configuration in AWS Secrets
//! Manager (usually the local emulator), idempotently: `created NAME`, `unchanged NAME` or
//! `updated NAME` for each. The secret holding the Fernet key (`FERNET_KEY`, or
//! `--key-secret`) is only ever created, from a valid key: once it exists, `init-key` and
//! `rotate-key` manage it, and a different seed value prints `kept NAME: managed by
//! rotate-key` (see `globo_secrets::seed`). Endpoint, region and credentials come from the standard AWS
//! settings (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_PROFILE`, ...) of the process
//! environment; a settings group the process leaves unset is taken from the `.env` file
//! (`--env-file`, default `.env`; a missing file is fine), the same rule as `app ... --mode
//! prod` (see `globo_secrets::AwsSettings`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use globo::crypto::{LoadedKeys, decrypt_file_to_memory};
use globo::secrets::fernet_key::{DEFAULT_KEY_SECRET, KEY_SECRET_VAR};
use globo::secrets::seed::{SeedOutcome, Seeder};
use globo::secrets::{AwsProvider, AwsSettings, Environment, SecretsError, seed};

/// Seed the lab's secrets into AWS Secrets Manager (or the emulator).
#[derive(Debug, Parser)]
#[command(name = "mock-aws-seed", version, about)]
struct Cli {
    /// The plaintext configuration JSON holding `seed_secrets`.
    #[arg(long, default_value = "config.json", conflicts_with = "encrypted")]
    config: PathBuf,
    /// Read the configuration from this Fernet-encrypted file instead (decrypted in memory
    /// only, as `app config show` does).
    #[arg(long)]
    encrypted: Option<PathBuf>,
    /// The key file for --encrypted (a rotation in progress, `<key>.next`, is honoured).
    #[arg(long, default_value = "secret.key", requires = "encrypted")]
    key_file: PathBuf,
    /// The .env file: each group of AWS settings (endpoint, region, identity) the process
    /// environment does not set is taken from it; nothing else is read. A missing file is fine.
    #[arg(long, value_name = "PATH", default_value = ".env")]
    env_file: PathBuf,
    /// The secret holding the Fernet key (as for `app config --mode prod`): created only from
    /// a valid key, never replaced. FERNET_KEY is always treated so.
    #[arg(long, value_name = "NAME", env = KEY_SECRET_VAR, default_value = DEFAULT_KEY_SECRET)]
    key_secret: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mock-aws-seed: {}", globo::with_causes(&*error));
            if let Some(SecretsError::SeedNotAKey { .. }) = error.downcast_ref::<SecretsError>() {
                eprintln!(
                    "hint: put the key in seed_secrets (e.g. the content of secret.key), or \
                     remove the entry and create the key with `app config init-key --mode prod`"
                );
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), Box<dyn Error>> {
    let entries = match &cli.encrypted {
        Some(encrypted) => {
            // A rotate-key may run meanwhile: read_with retries with the keys current now.
            let config = LoadedKeys::read_with(&cli.key_file, |keys| {
                decrypt_file_to_memory(keys.keyring(), encrypted)
            })?;
            seed::seed_entries(&config)?
        }
        None => {
            let config = std::fs::read(&cli.config)
                .map_err(|e| format!("cannot read '{}': {e}", cli.config.display()))?;
            seed::seed_entries(&config)?
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let settings = AwsSettings::resolve(&cli.env_file, &Environment::from_process())?;
        let provider = AwsProvider::from_settings(&settings).await?;
        let seeder = Seeder::new(&provider).with_key_secret(&cli.key_secret);
        // A bad entry (e.g. the key's placeholder) stops the list before anything is written.
        seeder.check(&entries)?;
        for (name, value) in &entries {
            match seeder.seed(name, value).await? {
                SeedOutcome::Kept => println!("kept {name}: managed by rotate-key"),
                outcome => println!("{} {name}", outcome.as_str()),
            }
        }
        Ok(())
    })
}
