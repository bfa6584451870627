//! `app config ...`: the Fernet-encrypted configuration (init-key, encrypt, show, rotate-key,
//! inspect). The key is the key file in local mode, a Secrets Manager secret in prod mode.

use std::io::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use globo::crypto::{self, CryptoError, Key, Keyring, RotationReport, RotationStep, Zeroizing};
use globo::keys::{
    BlockingKeySource, DEFAULT_KEY_SECRET, KEY_SECRET_VAR, KeyLocation, KeySource, KeySourceConfig,
    KeyWarning, KeysError,
};
use globo::secrets::{Environment, Mode};

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
    #[arg(long, value_name = "NAME", env = KEY_SECRET_VAR, hide_env_values = true, default_value = DEFAULT_KEY_SECRET)]
    key_secret: String,
    /// The .env file: APP_MODE, and in prod mode the AWS settings (endpoint, region, profile,
    /// credentials) the process environment does not set. Never the key itself. Not read when
    /// --mode or $APP_MODE says local.
    #[arg(long, value_name = "PATH", default_value = ".env")]
    env_file: PathBuf,
}

impl KeyArgs {
    /// The key's home for this command, resolved by globo-keys from `--mode`, `APP_MODE` and
    /// `.env` (local mode starts no runtime and, when `--mode` or `APP_MODE` says local, does
    /// not read `.env`).
    fn source(&self) -> Result<BlockingKeySource, Failure> {
        let mode = match self.mode.as_deref() {
            Some(text) => Some(text.parse::<Mode>().map_err(|e| Failure::from_error(&e))?),
            None => None,
        };
        let mut config = KeySourceConfig::new()
            .key_file(&self.key_file)
            .key_secret(&self.key_secret)
            .env_file(&self.env_file);
        if let Some(mode) = mode {
            config = config.mode(mode);
        }
        BlockingKeySource::resolve(&config, &Environment::from_process())
            .map_err(|e| keys_failure(&e))
    }
}

/// Maps a globo-keys error to the lab's message (for a decryption failure), the CLI's own
/// sentence where the library's neutral one leaves the command out, or the library's message
/// with its causes and, for an error found anywhere in its source chain (a key store's error
/// arrives inside `CryptoError::KeyStore`), the CLI's hint on its own line.
fn keys_failure(error: &KeysError) -> Failure {
    match error {
        KeysError::Crypto(
            e @ (CryptoError::Decryption | CryptoError::CiphertextNotFound { .. }),
        ) => {
            return failure(e);
        }
        // The key file's own errors (missing, exists, a rotation that cannot decrypt): the
        // library's sentence with the command that fixes it, as `failure` words them.
        KeysError::Crypto(e) if cli_hint(e).is_some() => return failure(e),
        KeysError::AlreadyExists { name } => {
            return Failure::msg(format!(
                "secret '{name}' already exists in AWS Secrets Manager; replacing the key it \
                 holds would make every file encrypted under it unreadable. To change the key, \
                 use `app config rotate-key --mode prod`, which re-encrypts the files first"
            ));
        }
        KeysError::NotAFernetKey { .. } => {
            return Failure::msg(format!("{error}; {INIT_KEY_PROD}"));
        }
        KeysError::Runtime { source } => {
            return Failure::msg(format!("cannot start the async runtime: {source}"));
        }
        _ => {}
    }
    let chain =
        std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |e| e.source());
    let hint = chain.filter_map(|e| e.downcast_ref::<KeysError>()).find_map(|e| match e {
        KeysError::NotAFernetKey { .. } => Some(INIT_KEY_PROD),
        KeysError::PendingKeyReplaced { .. } => Some(
            "the rotation is `app config rotate-key --mode prod`; run it again with the same \
             files",
        ),
        _ => None,
    });
    let message = globo::with_causes(error);
    match hint {
        Some(hint) => Failure::msg(format!("{message}\nhint: {hint}")),
        None => Failure::msg(message),
    }
}

/// How the CLI creates a key secret.
const INIT_KEY_PROD: &str = "create it with `app config init-key --mode prod`";

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
fn load_keys(source: &BlockingKeySource) -> Result<Keyring, Failure> {
    let loaded = source.load().map_err(|e| keys_failure(&e))?;
    for warning in &loaded.warnings {
        warn(warning);
    }
    Ok(loaded.keyring)
}

/// Prints a globo-keys warning as the CLI words it (with the command that fixes it).
fn warn(warning: &KeyWarning) {
    match warning {
        KeyWarning::LoosePermissions { path, bits } => {
            let path = path.display();
            warnln!(
                "warning: key file '{path}' can be accessed by group or others (permission bits \
                 {bits:03o}); fix: chmod 600 '{path}'"
            );
        }
        KeyWarning::RotationInProgress { pending: KeyLocation::File(next) } => warnln!(
            "warning: an unfinished key rotation was found ('{}' exists); both keys are used \
             until `app config rotate-key` (with the same files) completes it.",
            next.display()
        ),
        KeyWarning::RotationInProgress { pending: KeyLocation::Secret { name, stage } } => {
            warnln!(
                "warning: an unfinished key rotation was found (secret '{name}' has an {stage} \
                 version); both keys are used until `app config rotate-key --mode prod` (with \
                 the same files) completes it."
            );
        }
        other => warnln!("warning: {other}"),
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
    let source = args.key.source()?;
    source.create(&key).map_err(|e| keys_failure(&e))?;
    match source.source() {
        KeySource::File(path) => outln!(
            "Wrote a new Fernet key to '{}' (mode 0600). Keep it secret and out of version \
             control: without it, files encrypted under it cannot be read.",
            path.display()
        )?,
        KeySource::SecretsManager(store) => outln!(
            "Created the secret '{}' holding a new Fernet key in AWS Secrets Manager. No key file \
             was written: prod commands read the key from the secret.",
            store.name()
        )?,
        other => outln!("Created a new Fernet key in {}.", other.describe())?,
    }
    Ok(())
}

fn encrypt(args: &EncryptArgs) -> Result<(), Failure> {
    let source = args.key.source()?;
    // Holds the key file's lock throughout: a concurrent local rotate-key cannot retire the
    // key just used. (Secrets Manager has no lock; a prod encryption during a rotation uses
    // the pending key, which the rotation will make current.)
    source.write(warn, |keys: &Keyring| -> Result<(), Failure> {
        if args.remove_plaintext {
            // Refused before anything is written: a pipe, a FIFO or a device is never deleted.
            crypto::removable_plaintext(&args.file).map_err(|e| failure(&e))?;
        }
        crypto::encrypt_file(keys.primary(), &args.file, &args.out).map_err(|e| failure(&e))?;
        outln!("Encrypted '{}' to '{}' (mode 0600).", args.file.display(), args.out.display())?;
        if args.remove_plaintext {
            let removed = crypto::remove_plaintext_verified(keys, &args.file, &args.out)
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
                "The plaintext '{}' is still on disk: delete it (or use --remove-plaintext) so \
                 that only the ciphertext ships.",
                args.file.display()
            )?;
        }
        Ok(())
    })
}

impl From<KeysError> for Failure {
    fn from(error: KeysError) -> Self {
        keys_failure(&error)
    }
}

fn show(args: &ShowArgs) -> Result<(), Failure> {
    let source = args.key.source()?;
    let decrypt = |keys: &Keyring| match args.max_age {
        None => crypto::decrypt_file_to_memory(keys, &args.input),
        Some(max_age) => crypto::decrypt_file_with_max_age(keys, &args.input, max_age),
    };
    // A rotate-key may run meanwhile: the read retries with the keys current now.
    let plaintext = source.read(warn, decrypt);
    let plaintext = plaintext.map_err(|e| match (e, args.max_age) {
        (KeysError::Crypto(CryptoError::Decryption), Some(_)) => Failure::msg(
            "Decryption failed: ciphertext is corrupt, the key is wrong, or it is older than \
             --max-age.",
        ),
        (e, _) => keys_failure(&e),
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
    let mut source = args.key.source()?;
    // Loading first warns about loose permissions and reports an interrupted rotation.
    load_keys(&source)?;
    let names: Vec<String> = args.files.iter().map(|p| format!("'{}'", p.display())).collect();
    let report: RotationReport =
        source.rotate(&args.files, rotation_observer()).map_err(|e| keys_failure(&e))?;
    if report.resumed {
        outln!("Completed the interrupted key rotation.")?;
    }
    match source.source() {
        KeySource::SecretsManager(store) => {
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
        }
        other => {
            let home = match other {
                KeySource::File(path) => format!("'{}'", path.display()),
                other => other.describe(),
            };
            outln!(
                "Rotated the key in {home}; {} file(s) now encrypted under the new key: {}.",
                args.files.len(),
                names.join(", ")
            )?;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A key store's error reaches the CLI inside `CryptoError::KeyStore`: its hint is found
    /// down the source chain.
    #[test]
    fn a_pending_key_replaced_inside_a_key_store_error_gets_its_hint() {
        let replaced =
            KeysError::PendingKeyReplaced { name: "FERNET_KEY".into(), version: "v2".into() };
        let error = KeysError::Crypto(CryptoError::KeyStore {
            store: "secret 'FERNET_KEY' in AWS Secrets Manager".into(),
            operation: "promoting the new key to AWSCURRENT",
            source: Box::new(replaced),
        });
        let shown = format!("{:?}", keys_failure(&error));
        assert!(shown.contains("caused by: the AWSPENDING version"), "{shown}");
        assert!(
            shown.contains(
                "\\nhint: the rotation is `app config rotate-key --mode prod`; run it again with \
                 the same files"
            ),
            "{shown}"
        );
    }
}
