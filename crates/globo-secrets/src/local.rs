//! Local development: the process environment over a `.env` file.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::{SecretValue, SecretsError, SecretsProvider, dotenv, value::check_name};

/// A snapshot of environment variables, injectable so tests never touch the process
/// environment. `Debug` shows the names only.
///
/// A variable whose value is not UTF-8 has no value here, but is remembered as set
/// ([`Environment::is_set_but_not_utf8`]): it must not count as unset (for `APP_MODE`, that
/// would silently fall back to the `.env` file or to local mode).
#[derive(Clone, Default)]
pub struct Environment {
    vars: HashMap<String, SecretString>,
    not_utf8: BTreeSet<String>,
}

impl Environment {
    /// The current process environment.
    pub fn from_process() -> Self {
        Self::from_os_pairs(std::env::vars_os())
    }

    /// An environment from raw (OS) pairs, as [`from_process`](Self::from_process) reads
    /// them: a value that is not UTF-8 makes its name [`is_set_but_not_utf8`](Self::is_set_but_not_utf8);
    /// a name that is not UTF-8 is skipped (no program can ask for it by a `&str` name).
    pub fn from_os_pairs(pairs: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let mut env = Self::default();
        for (name, value) in pairs {
            let Ok(name) = name.into_string() else { continue };
            match value.into_string() {
                Ok(value) => {
                    env.vars.insert(name, SecretString::from(value));
                }
                Err(_) => {
                    env.not_utf8.insert(name);
                }
            }
        }
        env
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
        Self { vars, not_utf8: BTreeSet::new() }
    }

    /// The variable's value, if set (and UTF-8).
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.vars.get(name)
    }

    /// Whether the variable is set to a value that is not valid UTF-8.
    pub fn is_set_but_not_utf8(&self, name: &str) -> bool {
        self.not_utf8.contains(name)
    }

    /// The error for reading `name` when it is set but not UTF-8.
    pub(crate) fn not_utf8_error(name: &str) -> SecretsError {
        SecretsError::EnvVarNotUtf8 { name: name.to_owned() }
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Environment")
            .field("names", &names)
            .field("not_utf8", &self.not_utf8)
            .finish()
    }
}

/// The largest `.env` file read, in bytes (1 MiB). A larger one is
/// [`SecretsError::EnvFileUnreadable`], and is not read into memory.
pub const MAX_ENV_FILE_LEN: u64 = 1024 * 1024;

/// A `.env` file read once and parsed (see [`dotenv`](crate::dotenv) for the rules, which are
/// python-dotenv's): what the mode resolution, the local provider and the AWS settings all
/// read. Reading it once matters when it is a pipe (`--env-file <(cmd)`), which can be read
/// only once. `Debug` shows the path and the names, never a value.
#[derive(Clone)]
pub struct EnvFile {
    path: PathBuf,
    exists: bool,
    /// Not read: `PYTHON_DOTENV_DISABLED` was set.
    disabled: bool,
    values: Vec<(String, SecretString)>,
    /// For each value, the line it came from.
    lines: Vec<usize>,
}

impl EnvFile {
    /// Reads and parses the file at `path`, with `env` standing for the process environment
    /// in `${VAR}` references (the lab's `load_dotenv(override=False)`: the environment wins).
    ///
    /// A missing file is an empty one ([`exists`](Self::exists) is false). Errors name the
    /// file, and the line where there is one, never the content:
    /// [`SecretsError::EnvFileUnreadable`] (cannot be opened or read, larger than
    /// [`MAX_ENV_FILE_LEN`], a folder, a FIFO with no writer), [`SecretsError::EnvFileNotUtf8`],
    /// [`SecretsError::MalformedEnvFile`] for the first line python-dotenv would skip
    /// (globo fails closed there; see [`dotenv`](crate::dotenv)), and
    /// [`SecretsError::EnvFileNulByte`] for a key or value holding a NUL byte.
    ///
    /// When `env` sets `PYTHON_DOTENV_DISABLED` to `1`, `true`, `t`, `yes` or `y` (in any
    /// case), the file is not read at all and counts as empty ([`disabled`](Self::disabled)):
    /// python-dotenv 1.2's `load_dotenv` then skips `.env`, so the lab takes nothing from it
    /// (no secret, no `APP_MODE`, no AWS setting), and neither does globo.
    pub fn read(path: impl Into<PathBuf>, env: &Environment) -> Result<Self, SecretsError> {
        let path = path.into();
        let empty = |path, disabled| Self {
            path,
            exists: false,
            disabled,
            values: Vec::new(),
            lines: Vec::new(),
        };
        if dotenv_disabled(env) {
            return Ok(empty(path, true));
        }
        let bytes = match globo_fs::read_small(&path, MAX_ENV_FILE_LEN) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(empty(path, false)),
            Err(e) => {
                return Err(SecretsError::EnvFileUnreadable { path, source: e.into_io_error() });
            }
        };
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(e) => {
                let line = line_of(&bytes[..e.valid_up_to()]);
                return Err(SecretsError::EnvFileNotUtf8 { path, line });
            }
        };
        let parsed = dotenv::parse(text, env);
        if let Some(&line) = parsed.invalid_lines().first() {
            return Err(SecretsError::MalformedEnvFile { path, line });
        }
        // What the lab's `load_dotenv` would put in `os.environ`, which refuses a NUL.
        let nul = parsed.entries().iter().find(|(key, value)| {
            value.as_ref().is_some_and(|v| key.contains('\0') || v.expose_secret().contains('\0'))
        });
        if let Some((key, _)) = nul {
            let line = parsed.line_of(key).unwrap_or(1);
            return Err(SecretsError::EnvFileNulByte { path, line });
        }
        let (values, lines) =
            parsed.into_values().into_iter().map(|(key, value, line)| ((key, value), line)).unzip();
        Ok(Self { path, exists: true, disabled: false, values, lines })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file existed (false when it was not read: [`disabled`](Self::disabled)).
    pub fn exists(&self) -> bool {
        self.exists
    }

    /// Whether the file was not read because `PYTHON_DOTENV_DISABLED` is set (see
    /// [`EnvFile::read`]).
    pub fn disabled(&self) -> bool {
        self.disabled
    }

    /// The value the file gives `name` (its last one), if any.
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.values.iter().find(|(key, _)| key == name).map(|(_, value)| value)
    }

    /// The 1-based line the value of `name` came from (where its last statement starts), if
    /// the file gives it one: what messages about a value name instead of the value.
    pub fn line_of(&self, name: &str) -> Option<usize> {
        let at = self.values.iter().position(|(key, _)| key == name)?;
        self.lines.get(at).copied()
    }

    /// Every key with a value, once, in the order of first appearance, with its last value.
    pub fn values(&self) -> &[(String, SecretString)] {
        &self.values
    }
}

impl fmt::Debug for EnvFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.values.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("EnvFile")
            .field("path", &self.path)
            .field("exists", &self.exists)
            .field("disabled", &self.disabled)
            .field("names", &names)
            .finish()
    }
}

/// python-dotenv 1.2's `_load_dotenv_disabled`: `PYTHON_DOTENV_DISABLED` casefolded is one of
/// `1`, `true`, `t`, `yes`, `y` (a value that is not UTF-8 is none of them).
fn dotenv_disabled(env: &Environment) -> bool {
    let Some(value) = env.get("PYTHON_DOTENV_DISABLED") else { return false };
    // `str.casefold` for these words: lower case, and the long s (U+017F) folds to `s`.
    let folded: String = value
        .expose_secret()
        .to_lowercase()
        .chars()
        .map(|c| if c == 'ſ' { 's' } else { c })
        .collect();
    matches!(folded.as_str(), "1" | "true" | "t" | "yes" | "y")
}

/// The 1-based line on which the end of `before` lies (`\r\n`, `\n` and `\r` each end a line).
fn line_of(before: &[u8]) -> usize {
    let mut line = 1;
    let mut bytes = before.iter().peekable();
    while let Some(&b) = bytes.next() {
        if b == b'\r' && bytes.peek() == Some(&&b'\n') {
            bytes.next();
        }
        if b == b'\r' || b == b'\n' {
            line += 1;
        }
    }
    line
}

/// Where a `.env` comes from: a path (read when needed) or an [`EnvFile`] already read.
/// Functions that need the file take `&impl EnvFileSource`, so callers can read a file once
/// ([`EnvFile::read`]) and hand it to several of them.
pub trait EnvFileSource {
    /// The parsed file, reading it if this is a path.
    fn load_env_file(&self, env: &Environment) -> Result<Cow<'_, EnvFile>, SecretsError>;
}

impl EnvFileSource for Path {
    fn load_env_file(&self, env: &Environment) -> Result<Cow<'_, EnvFile>, SecretsError> {
        EnvFile::read(self, env).map(Cow::Owned)
    }
}

/// A path given as text (`".env"`).
impl EnvFileSource for str {
    fn load_env_file(&self, env: &Environment) -> Result<Cow<'_, EnvFile>, SecretsError> {
        Path::new(self).load_env_file(env)
    }
}

impl EnvFileSource for PathBuf {
    fn load_env_file(&self, env: &Environment) -> Result<Cow<'_, EnvFile>, SecretsError> {
        self.as_path().load_env_file(env)
    }
}

impl EnvFileSource for EnvFile {
    fn load_env_file(&self, _env: &Environment) -> Result<Cow<'_, EnvFile>, SecretsError> {
        Ok(Cow::Borrowed(self))
    }
}

/// Reads a `.env` file without touching the process environment: the keys that have a value,
/// each once with its last value. `Ok(None)` when the file does not exist. `${VAR}` references
/// see earlier lines only (no process environment): use [`EnvFile::read`] to give one.
/// Errors as [`EnvFile::read`].
pub fn read_env_file(path: &Path) -> Result<Option<Vec<(String, SecretString)>>, SecretsError> {
    let file = EnvFile::read(path, &Environment::empty())?;
    Ok(file.exists.then_some(file.values))
}

/// Secrets from the process environment, falling back to a `.env` file (the lab's local mode).
///
/// The file is read once, when the provider is built, without mutating the process
/// environment, and parsed as python-dotenv parses it for the lab (see
/// [`dotenv`](crate::dotenv)). A variable set in the environment wins over the file (the lab's
/// `load_dotenv(override=False)`), so values injected by Docker, systemd or the shell take
/// precedence; a key the file defines twice takes its last value. A missing file is fine (a
/// secret then missing says so); a malformed one is an error naming the file and line.
pub struct LocalProvider {
    values: HashMap<String, SecretString>,
    not_utf8: BTreeSet<String>,
    env_file: PathBuf,
    file_found: bool,
    file_disabled: bool,
}

impl LocalProvider {
    /// Reads `env_file` (usually `.env`) under the given environment snapshot.
    pub fn new(env_file: impl Into<PathBuf>, env: &Environment) -> Result<Self, SecretsError> {
        Ok(Self::from_env_file(&EnvFile::read(env_file, env)?, env))
    }

    /// A provider over a file already read (with the same `env`).
    pub fn from_env_file(file: &EnvFile, env: &Environment) -> Self {
        let mut values: HashMap<String, SecretString> = file.values.iter().cloned().collect();
        for (name, value) in &env.vars {
            values.insert(name.clone(), value.clone());
        }
        // A process variable that is set wins even when it cannot be read as text.
        for name in &env.not_utf8 {
            values.remove(name);
        }
        Self {
            values,
            not_utf8: env.not_utf8.clone(),
            env_file: file.path.clone(),
            file_found: file.exists,
            file_disabled: file.disabled,
        }
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
        if self.not_utf8.contains(name) {
            return Err(Environment::not_utf8_error(name));
        }
        // An empty variable counts as missing: an empty secret is a configuration mistake.
        match self.values.get(name) {
            Some(value) if !value.expose_secret().is_empty() => {
                Ok(SecretValue::Text(value.clone()))
            }
            _ if self.file_disabled => Err(SecretsError::NotFoundEnvFileDisabled {
                name: name.to_owned(),
                env_file: self.env_file.clone(),
            }),
            _ if !self.file_found => Err(SecretsError::NotFoundNoEnvFile {
                name: name.to_owned(),
                env_file: self.env_file.clone(),
            }),
            _ => Err(SecretsError::NotFoundLocal { name: name.to_owned() }),
        }
    }
}
