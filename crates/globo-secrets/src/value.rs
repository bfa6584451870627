//! Secret values and names.

use std::fmt;

use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::SecretsError;

/// A secret as stored: text (`.env` values, AWS `SecretString`) or bytes (AWS `SecretBinary`).
///
/// [`SecretsProvider::get`](crate::SecretsProvider::get) returns the text form, which is what
/// the lab's `get(name) -> str` returned; [`get_value`](crate::SecretsProvider::get_value)
/// returns this enum so binary secrets are not lost. `Debug` never shows the value.
#[derive(Clone)]
#[non_exhaustive]
pub enum SecretValue {
    /// A text secret.
    Text(SecretString),
    /// A binary secret.
    Binary(SecretSlice<u8>),
}

impl SecretValue {
    /// The value's bytes (UTF-8 for text).
    pub fn expose_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.expose_secret().as_bytes(),
            Self::Binary(bytes) => bytes.expose_secret(),
        }
    }

    /// The text, or `None` for a binary secret.
    pub fn as_text(&self) -> Option<&SecretString> {
        match self {
            Self::Text(text) => Some(text),
            Self::Binary(_) => None,
        }
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(_) => f.write_str("SecretValue::Text([REDACTED])"),
            Self::Binary(_) => f.write_str("SecretValue::Binary([REDACTED])"),
        }
    }
}

impl From<SecretString> for SecretValue {
    fn from(text: SecretString) -> Self {
        Self::Text(text)
    }
}

impl From<&str> for SecretValue {
    fn from(text: &str) -> Self {
        Self::Text(SecretString::from(text))
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(SecretSlice::from(bytes))
    }
}

/// Longest name accepted (an AWS secret ARN is at most 2048 characters).
const MAX_NAME: usize = 2048;

/// Rejects names no backend accepts: empty, too long, with whitespace or control characters.
/// Providers add their own rules (no `=` in an environment variable name, AWS's character set).
pub(crate) fn check_name(name: &str) -> Result<(), SecretsError> {
    let invalid =
        |reason| Err(SecretsError::InvalidName { name: name.escape_debug().to_string(), reason });
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > MAX_NAME {
        return invalid("it is longer than 2048 bytes");
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return invalid("it contains whitespace or control characters");
    }
    Ok(())
}
