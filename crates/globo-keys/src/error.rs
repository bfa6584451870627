//! The one error type of globo-keys.
//!
//! Messages name the key file or the secret involved, never a key. They name no command of a
//! particular program: a CLI adds its own hints (e.g. which of its commands creates a key).

use std::path::PathBuf;

use globo_crypto::CryptoError;
use globo_secrets::SecretsError;

/// Everything that can go wrong while finding, loading, creating or rotating a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// Resolving the mode or reaching the secrets backend failed (an unknown `APP_MODE`, an
    /// unreadable `.env`, no region, an unreachable endpoint, access denied, a missing
    /// secret...). globo-secrets' own error, shown as it is.
    #[error(transparent)]
    Secrets(SecretsError),
    /// A key file, a token or a rotation failed (a missing or malformed key file, a wrong key
    /// or tampered file, an interrupted rotation...). globo-crypto's own error, shown as it is:
    /// decryption failures stay opaque.
    #[error(transparent)]
    Crypto(CryptoError),
    /// Creating the secret holding a Fernet key was refused because it already exists.
    #[error(
        "secret '{name}' already exists in AWS Secrets Manager; replacing the key it holds would \
         make every file encrypted under it unreadable. To change the key, rotate it instead: a \
         rotation re-encrypts the files first"
    )]
    AlreadyExists {
        /// The secret's name.
        name: String,
    },
    /// The secret that should hold a Fernet key holds something else (its content is not
    /// repeated).
    #[error(
        "secret '{name}' ({stage}) does not hold a Fernet key: expected 44 characters of URL-safe \
         base64 (32 bytes) as its SecretString"
    )]
    NotAFernetKey {
        /// The secret's name.
        name: String,
        /// The version stage read, e.g. `AWSCURRENT`.
        stage: String,
    },
    /// During a rotation, the `AWSPENDING` version of the key secret no longer holds the key
    /// the files were re-encrypted under: another rotation ran meanwhile. Nothing was promoted.
    #[error(
        "the AWSPENDING version of secret '{name}' no longer holds the key this rotation staged \
         (is another rotation running?); nothing was promoted. Files already re-encrypted are \
         under version {version}: once no other rotation runs, give it the label back (aws \
         secretsmanager update-secret-version-stage --secret-id {name} --version-stage \
         AWSPENDING --move-to-version-id {version}) and run the rotation again"
    )]
    PendingKeyReplaced {
        /// The secret's name.
        name: String,
        /// The version this rotation staged (`<unknown>` if the service did not say).
        version: String,
    },
    /// The Fernet key a seed list would write into a key secret does not decrypt the
    /// encrypted configuration the list was read from (the key is not repeated). Nothing was
    /// written.
    #[error(
        "the seed value for secret '{name}' is a Fernet key, but it does not decrypt '{}': \
         writing it would leave the configuration unreadable in prod mode; put the key the file \
         is encrypted under in seed_secrets; nothing was written",
        file.display()
    )]
    SeedKeyMismatch {
        /// The secret's name.
        name: String,
        /// The encrypted configuration.
        file: PathBuf,
        /// Why decryption failed (opaque for a wrong key).
        #[source]
        source: CryptoError,
    },
    /// The password pepper's text is not valid (see
    /// [`Peppers::parse`](globo_auth::Peppers::parse)); the value is never repeated.
    #[error("the password pepper in {location} is not valid")]
    InvalidPepper {
        /// Where the pepper is (a variable or a secret).
        location: String,
        /// What is wrong with it.
        #[source]
        source: globo_auth::AuthError,
    },
    /// Creating the password pepper was refused because one exists: replacing it would make
    /// every peppered record unverifiable.
    #[error(
        "{location} already holds a password pepper; replacing it would make every peppered \
         password unverifiable. To change it, rotate it instead"
    )]
    PepperExists {
        /// Where the pepper is.
        location: String,
    },
    /// During a pepper rotation, the pepper read back is not the one this rotation wrote:
    /// another writer replaced it meanwhile (two rotations at once, in prod mode). Nothing
    /// more was changed: no record was moved and no version retired by this run.
    #[error(
        "the password pepper in {location} changed during the rotation (another rotation or \
         writer replaced it); nothing more was changed. Once no other rotation runs, run the \
         rotation again"
    )]
    PepperChanged {
        /// Where the pepper is.
        location: String,
    },
    /// A pepper rotation found records under pepper versions the pepper does not hold (a
    /// version dropped, or a pepper replaced): they cannot be moved to the new version, and
    /// nothing was moved or retired.
    #[error(
        "{} records name pepper versions that {location} does not hold ({}), so they cannot be \
         moved: {}; nothing was moved or retired. Put those versions back in the pepper, or \
         reset those users' passwords",
        users.len(),
        versions.join(", "),
        list_names(users)
    )]
    PepperRecordsUnmovable {
        /// Where the pepper is.
        location: String,
        /// The version ids the records name.
        versions: Vec<String>,
        /// The users whose records name them.
        users: Vec<String>,
    },
    /// Reading or re-peppering the users file failed (globo-auth's error, shown as it is).
    #[error(transparent)]
    Users(globo_auth::AuthError),
    /// A rotation step found no password pepper.
    #[error("{location} holds no password pepper; create one first")]
    PepperMissing {
        /// Where the pepper was looked for.
        location: String,
    },
    /// The password pepper cannot be written where it is (set in the process environment,
    /// `.env` disabled, or a `.env` statement that cannot be replaced safely). Nothing was
    /// written.
    #[error("cannot write the password pepper in {location}: {reason}")]
    PepperNotWritable {
        /// Where the pepper is.
        location: String,
        /// Why not.
        reason: &'static str,
    },
    /// Locking or replacing the `.env` file failed.
    #[error("cannot write the .env file '{}'", path.display())]
    EnvFileWrite {
        /// The `.env` file.
        path: PathBuf,
        /// The failed operation.
        #[source]
        source: globo_fs::FsError,
    },
    /// Production mode was asked for, but this build has no backend for it (the `aws` feature
    /// is off).
    #[error(
        "production mode keeps the key in AWS Secrets Manager, which this build does not \
         include (globo-keys was compiled without its 'aws' feature)"
    )]
    BackendNotCompiled,
    /// A blocking call ([`crate::BlockingKeySource`]) was made on a thread that runs an async
    /// runtime, where blocking on a future panics (and would stall the runtime): use
    /// [`crate::KeySource`] there, or call from `spawn_blocking`.
    #[error(
        "the blocking key source was called from inside an async runtime, where it must not \
         block; use the asynchronous key source there"
    )]
    InsideAsyncRuntime,
    /// The runtime that reaches the secrets backend could not be started.
    #[error("cannot start the async runtime")]
    Runtime {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Up to 20 names, quoted and escaped, then how many more.
fn list_names(users: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut text =
        users.iter().take(SHOWN).map(|n| format!("'{}'", n.escape_debug())).collect::<Vec<_>>();
    if users.len() > SHOWN {
        text.push(format!("and {} more", users.len() - SHOWN));
    }
    text.join(", ")
}

impl From<SecretsError> for KeysError {
    fn from(error: SecretsError) -> Self {
        Self::Secrets(error)
    }
}

impl From<CryptoError> for KeysError {
    fn from(error: CryptoError) -> Self {
        Self::Crypto(error)
    }
}

impl KeysError {
    /// Whether the key (its file, its secret, or the requested version) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Secrets(e) => e.is_not_found(),
            Self::Crypto(CryptoError::KeyFileNotFound { .. }) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each variant (the match below fails to compile when a variant is added).
    fn every_variant() -> Vec<KeysError> {
        let auth = || globo_auth::AuthError::InvalidPepper { reason: "it is empty" };
        let location = || "variable 'PASSWORD_PEPPER' (the environment, else '.env')".to_owned();
        let samples = vec![
            KeysError::Secrets(SecretsError::EnvVarNotUtf8 { name: "A".into() }),
            KeysError::Crypto(CryptoError::Decryption),
            KeysError::AlreadyExists { name: "k".into() },
            KeysError::NotAFernetKey { name: "k".into(), stage: "AWSCURRENT".into() },
            KeysError::PendingKeyReplaced { name: "k".into(), version: "v".into() },
            KeysError::SeedKeyMismatch {
                name: "k".into(),
                file: "config.enc".into(),
                source: CryptoError::Decryption,
            },
            KeysError::InvalidPepper { location: location(), source: auth() },
            KeysError::PepperExists { location: location() },
            KeysError::PepperChanged { location: location() },
            KeysError::PepperRecordsUnmovable {
                location: location(),
                versions: vec!["AAAAAAAA".into()],
                users: (0..22).map(|i| format!("user {i}")).collect(),
            },
            KeysError::Users(auth()),
            KeysError::PepperMissing { location: location() },
            KeysError::PepperNotWritable { location: location(), reason: "it is set" },
            KeysError::EnvFileWrite {
                path: ".env".into(),
                source: globo_fs::FsError::new("replace", ".env", std::io::Error::other("x")),
            },
            KeysError::BackendNotCompiled,
            KeysError::InsideAsyncRuntime,
            KeysError::Runtime { source: std::io::Error::other("x") },
        ];
        for error in &samples {
            match error {
                KeysError::Secrets(_)
                | KeysError::Crypto(_)
                | KeysError::AlreadyExists { .. }
                | KeysError::NotAFernetKey { .. }
                | KeysError::PendingKeyReplaced { .. }
                | KeysError::SeedKeyMismatch { .. }
                | KeysError::InvalidPepper { .. }
                | KeysError::PepperExists { .. }
                | KeysError::PepperChanged { .. }
                | KeysError::PepperRecordsUnmovable { .. }
                | KeysError::Users(_)
                | KeysError::PepperMissing { .. }
                | KeysError::PepperNotWritable { .. }
                | KeysError::EnvFileWrite { .. }
                | KeysError::BackendNotCompiled
                | KeysError::InsideAsyncRuntime
                | KeysError::Runtime { .. } => {}
            }
        }
        samples
    }

    /// Issue 13 review, point 8: no message has a run of spaces. Before, `PepperExists`
    /// read "every peppered          password" (a line break without its `\`).
    #[test]
    fn no_message_has_two_spaces_in_a_row() {
        for error in every_variant() {
            let message = error.to_string();
            assert!(!message.contains("  "), "{message:?}");
        }
    }

    #[test]
    fn unmovable_records_are_listed_up_to_twenty() {
        let error = &every_variant()[9];
        let message = error.to_string();
        assert!(message.starts_with("22 records name pepper versions that"), "{message}");
        assert!(message.contains("'user 19', and 2 more; nothing was moved"), "{message}");
    }
}
