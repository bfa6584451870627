//! Local development: the process environment over a `.env` file.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::{SecretValue, SecretsError, SecretsProvider, value::check_name};

/// A snapshot of environment variables, injectable so tests never touch the process
/// environment. `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Environment {
    vars: HashMap<String, SecretString>,
}

impl Environment {
    /// The current process environment (variables whose name or value is not UTF-8 are
    /// skipped).
    pub fn from_process() -> Self {
        Self::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// An environment with no variables.
    pub fn empty() -> Self {
        Self::default()
    }

    /// An environment holding exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars =
            pairs.into_iter().map(|(k, v)| (k.into(), SecretString::from(v.into()))).collect();
        Self { vars }
    }

    /// The variable's value, if set.
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.vars.get(name)
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Environment").field("names", &names).finish()
    }
}

/// The largest `.env` file read, in bytes (1 MiB). A larger one is
/// [`SecretsError::EnvFileUnreadable`], and is not read into memory.
pub const MAX_ENV_FILE_LEN: u64 = 1024 * 1024;

/// Reads a `.env` file with dotenvy without touching the process environment. `Ok(None)` when
/// the file does not exist. A line dotenvy rejects is [`SecretsError::MalformedEnvFile`], which
/// names the file and the line number but not the content.
///
/// dotenvy expands `${VAR}` references from earlier lines and from the (read-only) process
/// environment.
pub fn read_env_file(path: &Path) -> Result<Option<Vec<(String, SecretString)>>, SecretsError> {
    use std::io::Read as _;
    let unreadable = |source| SecretsError::EnvFileUnreadable { path: path.to_path_buf(), source };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    // Bounded, so a huge or endless file (a link to /dev/zero) cannot exhaust memory.
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    file.take(MAX_ENV_FILE_LEN + 1).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > MAX_ENV_FILE_LEN {
        return Err(unreadable(io::Error::other(format!(
            "the file is larger than {MAX_ENV_FILE_LEN} bytes; a .env file holds a few settings"
        ))));
    }
    let iter = dotenvy::from_read_iter(bytes.as_slice());
    let mut entries = Vec::new();
    for item in iter {
        match item {
            Ok((key, value)) => entries.push((key, SecretString::from(value))),
            Err(dotenvy::Error::LineParse(text, _)) => {
                return Err(SecretsError::MalformedEnvFile {
                    path: path.to_path_buf(),
                    line: line_number_of(path, &text),
                });
            }
            Err(dotenvy::Error::Io(e)) => return Err(unreadable(e)),
            Err(_) => return Err(unreadable(io::Error::other("unexpected dotenvy error"))),
        }
    }
    Ok(Some(entries))
}

/// The 1-based line where `text` (a logical line dotenvy rejected) starts in the file; 0 when
/// it cannot be found again.
fn line_number_of(path: &Path, text: &str) -> usize {
    let wanted = text.trim_end_matches(['\r', '\n']);
    let Ok(content) = std::fs::read_to_string(path) else { return 0 };
    match content.find(wanted) {
        Some(at) if !wanted.is_empty() => content[..at].matches('\n').count() + 1,
        _ => 0,
    }
}

/// Secrets from the process environment, falling back to a `.env` file (the lab's local mode).
///
/// The file is read once, when the provider is built, with `dotenvy` and without mutating the
/// process environment. A variable set in the environment wins over the file (the lab's
/// `load_dotenv(override=False)`), so values injected by Docker, systemd or the shell take
/// precedence. A missing file is fine; a malformed one is an error naming the file and line.
pub struct LocalProvider {
    values: HashMap<String, SecretString>,
    env_file: PathBuf,
    file_found: bool,
}

impl LocalProvider {
    /// Reads `env_file` (usually `.env`) under the given environment snapshot.
    pub fn new(env_file: impl Into<PathBuf>, env: &Environment) -> Result<Self, SecretsError> {
        let env_file = env_file.into();
        let from_file = read_env_file(&env_file)?;
        let file_found = from_file.is_some();
        let mut values: HashMap<String, SecretString> =
            from_file.unwrap_or_default().into_iter().collect();
        for (name, value) in &env.vars {
            values.insert(name.clone(), value.clone());
        }
        Ok(Self { values, env_file, file_found })
    }

    /// Reads `env_file` under the current process environment.
    pub fn from_process_env(env_file: impl Into<PathBuf>) -> Result<Self, SecretsError> {
        Self::new(env_file, &Environment::from_process())
    }

    /// The `.env` file it was built from, and whether it existed.
    pub fn env_file(&self) -> (&Path, bool) {
        (&self.env_file, self.file_found)
    }
}

impl fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalProvider")
            .field("env_file", &self.env_file)
            .field("file_found", &self.file_found)
            .field("variables", &self.values.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SecretsProvider for LocalProvider {
    async fn get_value(&self, name: &str) -> Result<SecretValue, SecretsError> {
        check_name(name)?;
        if name.contains('=') {
            return Err(SecretsError::InvalidName {
                name: name.to_owned(),
                reason: "an environment variable name cannot contain '='",
            });
        }
        // An empty variable counts as missing: an empty secret is a configuration mistake.
        match self.values.get(name) {
            Some(value) if !value.expose_secret().is_empty() => {
                Ok(SecretValue::Text(value.clone()))
            }
            _ => Err(SecretsError::NotFoundLocal { name: name.to_owned() }),
        }
    }
}
