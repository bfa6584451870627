//! What a new username and a new password must look like (NIST SP 800-63B, OWASP ASVS).

use std::collections::HashSet;
use std::sync::OnceLock;

use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use crate::AuthError;

/// Fewest characters (Unicode code points) in a new password (NIST SP 800-63B §3.1.1.2).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Most characters (Unicode code points) in any password, new or presented at login.
///
/// NIST asks for at least 64; 1024 code points (at most 4 KiB of UTF-8) leaves room for
/// passphrases while bounding what a caller can make globo read and hash.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Most characters (Unicode code points) in a username.
pub const MAX_USERNAME_CHARS: usize = 64;

/// The blocklist, one lowercase password per line (see `data/SOURCE.md`).
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON_PASSWORDS.lines().filter(|l| !l.is_empty()).collect())
}

/// Whether `password`, compared case-insensitively, is on the shipped list of 19,640 common
/// passwords (Django's list, BSD-3-Clause; see `data/SOURCE.md` in the crate).
///
/// Leading and trailing whitespace is ignored for this comparison only.
pub fn is_common_password(password: &str) -> bool {
    let lower = Zeroizing::new(password.to_lowercase());
    let set = common_passwords();
    set.contains(lower.as_str()) || set.contains(lower.trim())
}

/// Checks a new username: non-empty, at most [`MAX_USERNAME_CHARS`] code points, no control
/// characters, no invisible formatting characters (zero-width spaces and joiners, bidirectional
/// overrides, soft hyphen, byte-order mark: they make two different names look alike and can
/// reorder log lines), and no leading or trailing whitespace.
pub fn check_username(username: &str) -> Result<(), AuthError> {
    let reason = if username.is_empty() {
        "it is empty"
    } else if username.chars().count() > MAX_USERNAME_CHARS {
        "it is longer than the 64-character maximum"
    } else if username.chars().any(char::is_control) {
        "it contains control characters"
    } else if username.chars().any(is_invisible_format) {
        "it contains invisible formatting characters (zero-width or bidirectional controls)"
    } else if username.trim() != username {
        "it starts or ends with whitespace"
    } else {
        return Ok(());
    };
    Err(AuthError::InvalidUsername { reason })
}

/// Unicode format characters (category Cf) that render as nothing or reorder text.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Checks a new password, as NIST SP 800-63B asks: at least [`MIN_PASSWORD_CHARS`] and at
/// most [`MAX_PASSWORD_CHARS`] Unicode code points, not a common password. No composition
/// rules; the password is never truncated or normalised.
pub fn check_new_password(password: &SecretString) -> Result<(), AuthError> {
    let password = password.expose_secret();
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AuthError::PasswordTooShort { min: MIN_PASSWORD_CHARS });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AuthError::PasswordTooLong { max: MAX_PASSWORD_CHARS });
    }
    if is_common_password(password) {
        return Err(AuthError::PasswordTooCommon);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_that_look_like_others_are_refused() {
        for bad in
            ["alice\u{200B}", "\u{202E}ecila", "al\u{00AD}ice", " alice", "alice ", "\u{FEFF}a"]
        {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        for good in ["alice", "Zoë", "bob.smith", "李雷", "a b"] {
            assert!(check_username(good).is_ok(), "{good:?}");
        }
        assert_eq!(MAX_USERNAME_CHARS, 64, "the message above says 64");
    }

    #[test]
    fn blocklist_has_the_whole_list() {
        assert_eq!(common_passwords().len(), 19_640);
    }
}
