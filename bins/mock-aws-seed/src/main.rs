//! `mock-aws-seed`: creates the `seed_secrets` of the lab's configuration in AWS Secrets
//! Manager (usually the local emulator), idempotently: `created NAME`, `unchanged NAME` or
//! `updated NAME` for each. The secret holding the Fernet key (`FERNET_KEY`, or
//! `--key-secret`) is only ever created, from a valid key: once it exists, `init-key` and
//! `rotate-key` manage it, and a different seed value prints `kept NAME: managed by
//! rotate-key` (see `globo_keys::seed::KeySeeder`). Every secret is read before anything is
//! written; with `--encrypted`, a key about to be written into a key secret must decrypt that
//! file. Endpoint, region and credentials come from the standard AWS
//! settings (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_PROFILE`, ...) of the process
//! environment; a settings group the process leaves unset is taken from the `.env` file
//! (`--env-file`, default `.env`; a missing file is fine), the same rule as `app ... --mode
//! prod` (see `globo_secrets::AwsSettings`).

use std::error::Error;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use globo::crypto::{CryptoError, decrypt_file_to_memory};
use globo::keys::seed::KeySeeder;
use globo::keys::{BlockingKeySource, DEFAULT_KEY_SECRET, KEY_SECRET_VAR, KeysError};
use globo::secrets::seed::SeedOutcome;
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
    // Before anything is read: the seed values are secrets, and must never end up in a core
    // file or be readable by another process of the user (see globo::harden_process).
    if let Err(error) = globo::harden_process() {
        return report(&error);
    }
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = report(&*error);
            if is_missing_key_file(&*error) {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "hint: --encrypted needs the key the file is encrypted under: create one \
                     with `app config init-key`, or pass --key-file"
                );
            }
            if is_rejected_seed_value(&*error) {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "hint: put the key in seed_secrets (e.g. the content of secret.key), or \
                     remove the entry and create the key with `app config init-key --mode prod`"
                );
            }
            code
        }
    }
}

/// Whether `error` (or a cause of it) is a missing key file: globo-crypto words it without
/// naming a command, the seeder adds the CLI's.
fn is_missing_key_file(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        // KeysError::Crypto is transparent (its source is the inner error's source): look inside.
        let crypto = match e.downcast_ref::<KeysError>() {
            Some(KeysError::Crypto(inner)) => Some(inner),
            _ => e.downcast_ref::<CryptoError>(),
        };
        if matches!(crypto, Some(CryptoError::KeyFileNotFound { .. })) {
            return true;
        }
        next = e.source();
    }
    false
}

/// Whether `error` is a seed value a key secret's guard refused, bare or from globo-keys.
fn is_rejected_seed_value(error: &(dyn Error + 'static)) -> bool {
    let secrets = match error.downcast_ref::<KeysError>() {
        Some(KeysError::Secrets(e)) => Some(e),
        _ => error.downcast_ref::<SecretsError>(),
    };
    matches!(secrets, Some(SecretsError::SeedValueRejected { .. }))
}

/// Prints the error and its causes to stderr (best effort: a closed stderr must not become a
/// panic, which the release profile turns into an abort) and returns exit code 1.
fn report(error: &(dyn Error + 'static)) -> ExitCode {
    let _ =
        writeln!(std::io::stderr().lock(), "mock-aws-seed: error: {}", globo::with_causes(error));
    ExitCode::FAILURE
}

fn run(cli: &Cli) -> Result<(), Box<dyn Error>> {
    let entries = match &cli.encrypted {
        Some(encrypted) => {
            // A rotate-key may run meanwhile: the read retries with the keys current now.
            let config = BlockingKeySource::key_file(&cli.key_file)
                .read(|_| {}, |keys| decrypt_file_to_memory(keys, encrypted))?;
            seed::seed_entries(&config)?
        }
        None => {
            // Bounded, zeroized, and a FIFO without a writer is refused (issue 11 item 7).
            seed::read_seed_config(&cli.config)?
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let settings = AwsSettings::resolve(&cli.env_file, &Environment::from_process())?;
        let provider = AwsProvider::from_settings(&settings).await?;
        let seeder = KeySeeder::new(&provider, &cli.key_secret);
        // Every secret is read and every outcome decided before anything is written: a bad
        // entry (e.g. the key's placeholder) or a refused read stops the whole list. With
        // --encrypted, a key written into a key secret must be the one the file is under.
        let plan = seeder.plan(&entries, cli.encrypted.as_deref()).await?;
        // A failed report (a closed stdout) does not stop the seeding: the list is applied
        // whole (it is idempotent, and half of it is worse than a lost report), then the run
        // exits 1 with the write error. A failed step still stops the run at once.
        let mut lost_output = None;
        for step in plan.steps() {
            let name = step.name();
            let line = match seeder.apply(step).await? {
                SeedOutcome::Kept => format!("kept {name}: managed by rotate-key"),
                outcome => format!("{} {name}", outcome.as_str()),
            };
            if lost_output.is_none() {
                // A write error, not a panic (an abort in the release profile).
                let mut stdout = std::io::stdout().lock();
                if let Err(e) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
                    lost_output = Some(format!("cannot write to standard output: {e}"));
                }
            }
        }
        match lost_output {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    })
}
