//! `app config ...`: the Fernet-encrypted configuration (init-key, encrypt, show, rotate-key,
//! inspect). The key is the key file in local mode, a Secrets Manager secret in prod mode.

use std::io::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use globo::crypto::{
    self, CryptoError, Key, KeyFile, Keyring, LoadedKeys, RotationReport, RotationStep, Zeroizing,
};
use globo::secrets::fernet_key::{DEFAULT_KEY_SECRET, KEY_SECRET_VAR, SecretsManagerKeyStore};
use globo::secrets::{
    EnvFile, Environment, Mode, SecretsError, mode_without_env_file, resolve_mode,
};

use crate::failure::Failure;
use crate::out::{outln, warnln};

/// The lab's message for every decryption failure (wrong key and tampering look the same).
const DECRYPTION_FAILED: &str = "Decryption failed: ciphertext is corrupt or the key is wrong.";

/// The `app config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ConfigCommand {
    /// Create a new Fernet key: the key file, or in prod mode the secret (never replaces one).
    InitKey(InitKeyArgs),
    /// Encrypt a file (e.g. config.json) into a Fernet token file.
    Encrypt(EncryptArgs),
    /// Decrypt the configuration in memory and print it.
    Show(ShowArgs),
    /// Replace the key with a new one, re-encrypting the files under it (crash-safe).
    RotateKey(RotateKeyArgs),
    /// Show a token's creation time and size without decrypting it (no key needed).
    Inspect(InspectArgs),
}

/// Where the key comes from.
#[derive(Debug, clap::Args)]
pub(crate) struct KeyArgs {
    /// `local` (the key file) or `prod` (the key held in AWS Secrets Manager); default:
    /// $APP_MODE, else the last APP_MODE in the .env file, else local.
    #[arg(long)]
    mode: Option<String>,
    /// Local mode: the key file (44-character URL-safe base64 Fernet key).
    #[arg(long, value_name = "PATH", default_value = "secret.key")]
    key_file: PathBuf,
    /// Prod mode: the Secrets Manager secret holding the key.
    #[arg(long, value_name = "NAME", env = KEY_SECRET_VAR, default_value = DEFAULT_KEY_SECRET)]
    key_secret: String,
    /// The .env file: APP_MODE, and in prod mode the AWS settings (endpoint, region, profile,
    /// credentials) the process environment does not set. Never the key itself. Not read when
    /// --mode or $APP_MODE says local.
    #[arg(long, value_name = "PATH", default_value = ".env")]
    env_file: PathBuf,
}

/// The key's home for this command, resolved from `--mode`, `APP_MODE` and `.env`.
enum KeyHome {
    /// The key file of `--key-file`.
    File,
    /// The secret of `--key-secret` in AWS Secrets Manager, and a runtime to reach it.
    Secret(Box<(SecretsManagerKeyStore, tokio::runtime::Runtime)>),
}

impl KeyArgs {
    fn home(&self) -> Result<KeyHome, Failure> {
        let env = Environment::from_process();
        let explicit = match self.mode.as_deref() {
            Some(text) => Some(text.parse::<Mode>().map_err(|e| secrets_failure(&e))?),
            None => None,
        };
        // Local mode needs nothing from the file: when `--mode` or `APP_MODE` says local, it
        // is not read (a broken .env cannot stop a local command). Otherwise it is read once:
        // the mode and the AWS settings come from the same reading, so a pipe
        // (`--env-file <(command)`) works.
        let decided = mode_without_env_file(explicit, &env).map_err(|e| secrets_failure(&e))?;
        if decided == Some(Mode::Local) {
            return Ok(KeyHome::File);
        }
        let file = EnvFile::read(&self.env_file, &env).map_err(|e| secrets_failure(&e))?;
        match resolve_mode(decided, &file, &env).map_err(|e| secrets_failure(&e))? {
            Mode::Prod => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Failure::msg(format!("cannot start the async runtime: {e}")))?;
                let store = runtime
                    .block_on(SecretsManagerKeyStore::from_settings(
                        Some(&self.key_secret),
                        &file,
                        &env,
                    ))
                    .map_err(|e| secrets_failure(&e))?;
                Ok(KeyHome::Secret(Box::new((store, runtime))))
            }
            _ => Ok(KeyHome::File),
        }
    }
}

fn secrets_failure(error: &SecretsError) -> Failure {
    Failure::from_error(error)
}

/// Arguments of `app config init-key`.
#[derive(Debug, clap::Args)]
pub(crate) struct InitKeyArgs {
    #[command(flatten)]
    key: KeyArgs,
}

/// Arguments of `app config encrypt`.
#[derive(Debug, clap::Args)]
pub(crate) struct EncryptArgs {
    /// The plaintext file to encrypt.
    file: PathBuf,
    /// Where to write the ciphertext (replaced atomically, mode 0600).
    #[arg(long, value_name = "PATH", default_value = "config.enc")]
    out: PathBuf,
    #[command(flatten)]
    key: KeyArgs,
    /// Delete the plaintext once the ciphertext is on disk and decrypts back to the same bytes.
    #[arg(long)]
    remove_plaintext: bool,
}

/// Arguments of `app config show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The ciphertext file.
    #[arg(long = "in", value_name = "PATH", default_value = "config.enc")]
    input: PathBuf,
    #[command(flatten)]
    key: KeyArgs,
    /// Print the decrypted bytes unchanged instead of parsing them as JSON.
    #[arg(long)]
    raw: bool,
    /// Refuse a token whose timestamp is older than this many seconds.
    #[arg(long, value_name = "SECONDS")]
    max_age: Option<u64>,
}

/// Arguments of `app config rotate-key`.
#[derive(Debug, clap::Args)]
pub(crate) struct RotateKeyArgs {
    /// The files encrypted under the current key, to re-encrypt under the new one.
    #[arg(value_name = "FILE", default_value = "config.enc")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    key: KeyArgs,
}

/// Arguments of `app config inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// The ciphertext file.
    #[arg(long = "in", value_name = "PATH", default_value = "config.enc")]
    input: PathBuf,
}

pub(crate) fn run(command: ConfigCommand) -> Result<(), Failure> {
    match command {
        ConfigCommand::InitKey(args) => init_key(&args),
        ConfigCommand::Encrypt(args) => encrypt(&args),
        ConfigCommand::Show(args) => show(&args),
        ConfigCommand::RotateKey(args) => rotate_key(&args),
        ConfigCommand::Inspect(args) => inspect(&args),
    }
}

/// Loads the keys for a command: the key file (and its `.next` during a rotation) in local
/// mode; in prod mode the secret's AWSCURRENT version (and AWSPENDING during a rotation).
///
/// Warns on stderr about a key file that group or others can access, and about an interrupted
/// rotation (whose next key is then used as well).
fn load_keys(args: &KeyArgs, home: &KeyHome) -> Result<Keyring, Failure> {
    if let KeyHome::Secret(boxed) = home {
        let (store, runtime) = &**boxed;
        let keys = runtime.block_on(store.load_keys()).map_err(|e| secrets_failure(&e))?;
        if keys.rotation_in_progress() {
            warnln!(
                "warning: an unfinished key rotation was found (secret '{}' has an AWSPENDING \
                 version); both keys are used until `app config rotate-key --mode prod` (with \
                 the same files) completes it.",
                store.name()
            );
        }
        return Ok(keys.keyring());
    }
    let loaded = LoadedKeys::load(&args.key_file).map_err(|e| failure(&e))?;
    warn_about(&loaded);
    Ok(loaded.into_keyring())
}

/// Warns about key files that group or others can access, and about an interrupted rotation.
fn warn_about(loaded: &LoadedKeys) {
    for file in loaded.files() {
        warn_if_loose(file);
    }
    if let [_, next] = loaded.files() {
        warnln!(
            "warning: an unfinished key rotation was found ('{}' exists); both keys are used \
             until `app config rotate-key` (with the same files) completes it.",
            next.path().display()
        );
    }
}

fn warn_if_loose(file: &KeyFile) {
    if let Some(bits) = file.loose_permissions() {
        let path = file.path().display();
        warnln!(
            "warning: key file '{path}' can be accessed by group or others (permission bits \
             {bits:03o}); fix: chmod 600 '{path}'"
        );
    }
}

/// Maps a library error to the message the lab prints (or the library's own message).
fn failure(error: &CryptoError) -> Failure {
    match error {
        CryptoError::Decryption => Failure::msg(DECRYPTION_FAILED),
        CryptoError::CiphertextNotFound { path } => {
            Failure::msg(format!("Ciphertext file '{}' not found.", path.display()))
        }
        other => match cli_hint(other) {
            Some(hint) => Failure::msg(format!("{other}{hint}")),
            None => Failure::from_error(other),
        },
    }
}

/// The `app` command that fixes `error`, for the errors the library words without naming a
/// command (globo-crypto is used by services that have no `app`).
fn cli_hint(error: &CryptoError) -> Option<&'static str> {
    match error {
        CryptoError::KeyFileNotFound { .. } => Some(": create one with `app config init-key`"),
        CryptoError::KeyFileExists { .. } => Some(" (`app config rotate-key`)"),
        CryptoError::RotationUndecryptable { .. } => Some(" (`app config rotate-key`)"),
        _ => None,
    }
}

fn init_key(args: &InitKeyArgs) -> Result<(), Failure> {
    let key = Key::generate().map_err(|e| failure(&e))?;
    if let KeyHome::Secret(boxed) = args.key.home()? {
        let (store, runtime) = *boxed;
        runtime.block_on(store.create(&key)).map_err(|e| secrets_failure(&e))?;
        outln!(
            "Created the secret '{}' holding a new Fernet key in AWS Secrets Manager. No key file \
             was written: prod commands read the key from the secret.",
            store.name()
        )?;
        return Ok(());
    }
    KeyFile::create_new(&args.key.key_file, &key).map_err(|e| failure(&e))?;
    outln!(
        "Wrote a new Fernet key to '{}' (mode 0600). Keep it secret and out of version control: \
         without it, files encrypted under it cannot be read.",
        args.key.key_file.display()
    )?;
    Ok(())
}

fn encrypt(args: &EncryptArgs) -> Result<(), Failure> {
    let home = args.key.home()?;
    // Excludes a concurrent local rotate-key, which could otherwise retire the key just used.
    // (Secrets Manager has no lock; a prod encryption during a rotation uses the pending key,
    // which the rotation will make current.)
    let _lock = match home {
        KeyHome::File => {
            Some(crypto::KeyLock::acquire(&args.key.key_file).map_err(|e| failure(&e))?)
        }
        KeyHome::Secret(..) => None,
    };
    let keys = load_keys(&args.key, &home)?;
    if args.remove_plaintext {
        // Refused before anything is written: a pipe, a FIFO or a device is never deleted.
        crypto::removable_plaintext(&args.file).map_err(|e| failure(&e))?;
    }
    crypto::encrypt_file(keys.primary(), &args.file, &args.out).map_err(|e| failure(&e))?;
    outln!("Encrypted '{}' to '{}' (mode 0600).", args.file.display(), args.out.display())?;
    if args.remove_plaintext {
        let removed = crypto::remove_plaintext_verified(&keys, &args.file, &args.out)
            .map_err(|e| failure(&e))?;
        let what = if removed == args.file {
            format!("'{}'", removed.display())
        } else {
            format!(
                "'{}' (the file the symbolic link '{}' points to; the link is left in place)",
                removed.display(),
                args.file.display()
            )
        };
        outln!(
            "Removed the plaintext {what} after checking that '{}' decrypts to the same bytes.",
            args.out.display()
        )?;
    } else {
        outln!(
            "The plaintext '{}' is still on disk: delete it (or use --remove-plaintext) so that \
             only the ciphertext ships.",
            args.file.display()
        )?;
    }
    Ok(())
}

fn show(args: &ShowArgs) -> Result<(), Failure> {
    let home = args.key.home()?;
    let decrypt = |keys: &Keyring| match args.max_age {
        None => crypto::decrypt_file_to_memory(keys, &args.input),
        Some(max_age) => crypto::decrypt_file_with_max_age(keys, &args.input, max_age),
    };
    let plaintext = match home {
        // A local rotate-key may run meanwhile: read_with retries with the keys current now.
        KeyHome::File => {
            let mut warned = false;
            LoadedKeys::read_with(&args.key.key_file, |loaded| {
                if !std::mem::replace(&mut warned, true) {
                    warn_about(loaded);
                }
                decrypt(loaded.keyring())
            })
        }
        // A prod rotate-key may run meanwhile: retry with the secret's keys current now.
        KeyHome::Secret(..) => {
            crypto::read_with_current_keys(|| load_keys(&args.key, &home), decrypt)?
        }
    };
    let plaintext = plaintext.map_err(|e| match (e, args.max_age) {
        (CryptoError::Decryption, Some(_)) => Failure::msg(
            "Decryption failed: ciphertext is corrupt, the key is wrong, or it is older than \
             --max-age.",
        ),
        (e, _) => failure(&e),
    })?;
    let mut stdout = std::io::stdout().lock();
    let written = if args.raw {
        stdout.write_all(&plaintext)
    } else {
        let text = pretty_json(&plaintext, &args.input)?;
        stdout.write_all(text.as_bytes()).and_then(|()| stdout.write_all(b"\n"))
    };
    written.and_then(|()| stdout.flush()).map_err(|e| crate::out::stdout_failure(&e))
}

/// Prints JSON as the lab's `json.dumps(json.loads(plaintext), indent=2)` does, byte for byte
/// (globo-json: integers of any size, Python's float repr, `ensure_ascii`, duplicate keys). An
/// error names the position only, never the content.
fn pretty_json(plaintext: &[u8], path: &Path) -> Result<Zeroizing<String>, Failure> {
    globo_json::python_pretty(plaintext).map_err(|e| {
        Failure::msg(format!(
            "The decrypted configuration in '{}' is not valid JSON: {e}.",
            path.display()
        ))
    })
}

/// The test hook for crash-safety tests. In debug builds only, `GLOBO_TEST_CRASH_AT=<step>`
/// (`next-key`, `file-<n>`, `retired`, `installed`, `done`; prod mode has no `retired`) aborts
/// the process right after that rotation step is durable, as a kill at that instant would.
/// Release builds ignore it.
fn rotation_observer() -> impl FnMut(&RotationStep) -> ControlFlow<()> {
    #[cfg(debug_assertions)]
    let crash_at = std::env::var("GLOBO_TEST_CRASH_AT").ok();
    move |step| {
        #[cfg(debug_assertions)]
        if crash_at.as_deref() == Some(step.name().as_str()) {
            std::process::abort();
        }
        let _ = step;
        ControlFlow::Continue(())
    }
}

fn rotate_key(args: &RotateKeyArgs) -> Result<(), Failure> {
    let home = args.key.home()?;
    // Loading first warns about loose permissions and reports an interrupted rotation.
    load_keys(&args.key, &home)?;
    let names: Vec<String> = args.files.iter().map(|p| format!("'{}'", p.display())).collect();
    let report: RotationReport = match home {
        KeyHome::File => crypto::rotate_key(&args.key.key_file, &args.files, rotation_observer())
            .map_err(|e| failure(&e))?,
        KeyHome::Secret(boxed) => {
            let (mut store, runtime) = *boxed;
            let report = runtime
                .block_on(crypto::rotate_with_store(&mut store, &args.files, rotation_observer()))
                .map_err(|e| failure(&e))?;
            if report.resumed {
                outln!("Completed the interrupted key rotation.")?;
            }
            outln!(
                "Rotated the key in secret '{}' (AWS Secrets Manager); {} file(s) now encrypted \
                 under the new key: {}.",
                store.name(),
                args.files.len(),
                names.join(", ")
            )?;
            outln!(
                "The old key is kept as the secret's AWSPREVIOUS version until the next rotation; \
                 read it with `aws secretsmanager get-secret-value --secret-id {} --version-stage \
                 AWSPREVIOUS` if an old copy of a file needs it.",
                store.name()
            )?;
            return Ok(());
        }
    };
    if report.resumed {
        outln!("Completed the interrupted key rotation.")?;
    }
    outln!(
        "Rotated the key in '{}'; {} file(s) now encrypted under the new key: {}.",
        args.key.key_file.display(),
        args.files.len(),
        names.join(", ")
    )?;
    if let Some(retired) = report.retired_key {
        outln!(
            "The old key is kept in '{}'. Delete it once no backup or other copy of the old \
             encrypted files needs it.",
            retired.display()
        )?;
    }
    Ok(())
}

fn inspect(args: &InspectArgs) -> Result<(), Failure> {
    let info = crypto::inspect_file(&args.input).map_err(|e| failure(&e))?;
    let range = info.plaintext_len_range();
    outln!("{}: Fernet token, not verified (inspect uses no key)", args.input.display())?;
    outln!("created: {} (unix {})", info.created_utc(), info.timestamp)?;
    outln!(
        "size: {} bytes of ciphertext; plaintext {} to {} bytes",
        info.ciphertext_len,
        range.start(),
        range.end()
    )?;
    Ok(())
}
