//! What a new username and a new password must look like (NIST SP 800-63B, OWASP ASVS).

use std::collections::HashSet;
use std::sync::OnceLock;

use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use crate::AuthError;
use crate::username::{Username, comparison_key};

/// Fewest characters (Unicode code points) in a new password (NIST SP 800-63B §3.1.1.2).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Most characters (Unicode code points) in a new password.
///
/// NIST SP 800-63B-4 §3.1.1.2 asks verifiers to allow at least 64; 1024 code points (at most
/// 4 KiB of UTF-8) leaves room for passphrases while bounding what a caller can make globo
/// hash. Logins are not held to it: see [`MAX_LOGIN_PASSWORD_BYTES`].
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Most bytes (of UTF-8) in a password presented at login: a bound against abuse, checked
/// before the users file is read or anything is hashed
/// ([`AuthError::PasswordExceedsLoginLimit`]).
///
/// It is set by what the lab could store, so that no lab user is locked out: passlib refuses
/// passwords longer than its `MAX_PASSWORD_SIZE`, 4096, counted as `len()` of the Python
/// string, that is in code points, so a lab password may have 4096 code points of up to 4
/// bytes each: 16,384 bytes (passlib's limit in bytes applies only to passwords given as
/// bytes). Hashing that much costs Argon2 one pass of BLAKE2b over it, next to its 64 MiB
/// of memory work. A lab run with `PASSLIB_MAX_PASSWORD_SIZE` raised could have stored longer
/// passwords; they are refused here.
pub const MAX_LOGIN_PASSWORD_BYTES: usize = 4 * 4096;

/// The blocklist, one lowercase password per line (see `data/SOURCE.md`).
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON_PASSWORDS.lines().filter(|l| !l.is_empty()).collect())
}

/// Whether `password`, compared case-insensitively, is on the shipped list of 19,640 common
/// passwords (Django's list, BSD-3-Clause; see `data/SOURCE.md` in the crate).
///
/// Leading and trailing whitespace is ignored for this comparison only. Allocates a zeroized
/// lowercase copy of `password` (its size); the first call builds the list's set (about
/// 20,000 entries, kept for the life of the process).
pub fn is_common_password(password: &str) -> bool {
    let lower = Zeroizing::new(password.to_lowercase());
    let set = common_passwords();
    set.contains(lower.as_str()) || set.contains(lower.trim())
}

/// Checks a new username: whether [`Username::prepare`] accepts it (RFC 8265's
/// UsernameCasePreserved profile, no invisible characters, at most
/// [`MAX_USERNAME_CHARS`](crate::MAX_USERNAME_CHARS) code points).
/// [`UserStore::register`](crate::UserStore::register) stores the prepared form.
pub fn check_username(username: &str) -> Result<(), AuthError> {
    Username::prepare(username).map(drop)
}

/// Checks a new password on its own, as NIST SP 800-63B asks: at least
/// [`MIN_PASSWORD_CHARS`] and at most [`MAX_PASSWORD_CHARS`] Unicode code points, not a
/// common password. No composition rules; the password is never truncated or normalised.
///
/// This does not know the username: a new password for a user is checked with
/// [`check_new_password_for_user`], which [`UserStore::register`](crate::UserStore::register)
/// uses. Allocates as [`is_common_password`] does, for a password within the length bounds.
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

/// Shortest username, in Unicode code points, that a new password is checked against (see
/// [`check_new_password_for_user`]). Names of one or two characters are not checked: "al" or
/// "li" are parts of too many good passwords ("tall", "glisten") to refuse them all.
pub const MIN_CONTEXT_USERNAME_CHARS: usize = 3;

/// Checks a new password for `username`: everything [`check_new_password`] checks, then, when
/// the username has at least [`MIN_CONTEXT_USERNAME_CHARS`] code points, that the password
/// neither contains the username nor is the username reversed. NIST SP 800-63B asks verifiers
/// to refuse such "context-specific words".
///
/// The username is taken in its RFC 8265 form ([`comparison_key`]: width-mapped, invisible
/// characters removed, NFC), as stores compare names, so `Zoe` plus a combining diaeresis
/// or a fullwidth `ａｌｉｃｅ` is checked as `Zoë` or `alice`. The password is not normalised
/// (passlib does not normalise either), so a password holding the name in another
/// normalisation form than NFC does not match.
/// Both comparisons ignore case: each code point is mapped to its Unicode lowercase, as for
/// the common-password list, but code point by code point, with the Greek final sigma `ς`
/// taken as `σ` (the one letter whose lowercase depends on its place in a word), so that a
/// name matches wherever it appears. Reversing is code point by code point. Nothing else about the username is
/// refused: a password may contain part of the name, or the reversed name inside longer text.
///
/// Fails with [`AuthError::PasswordContainsUsername`] or
/// [`AuthError::PasswordIsReversedUsername`]; neither message contains the password.
///
/// ```
/// use globo_auth::{AuthError, check_new_password_for_user};
/// use secrecy::SecretString;
///
/// let check = |name: &str, password: &str| {
///     check_new_password_for_user(name, &SecretString::from(password))
/// };
/// assert!(matches!(
///     check("alice", "Alice-correct-horse"),
///     Err(AuthError::PasswordContainsUsername { .. })
/// ));
/// assert!(matches!(
///     check("rosalind", "dnilasor"),
///     Err(AuthError::PasswordIsReversedUsername)
/// ));
/// assert!(check("alice", "correct horse battery staple").is_ok());
/// // Names shorter than 3 characters are not checked.
/// assert!(check("al", "al's correct horse").is_ok());
/// ```
pub fn check_new_password_for_user(
    username: &str,
    password: &SecretString,
) -> Result<(), AuthError> {
    check_new_password(password)?;
    let name = comparison_key(username);
    if name.chars().count() < MIN_CONTEXT_USERNAME_CHARS {
        return Ok(());
    }
    let password = fold_case(password.expose_secret());
    if password.contains(fold_case(&name).as_str()) {
        return Err(AuthError::PasswordContainsUsername { username: username.to_owned() });
    }
    let reversed: String = name.chars().rev().collect();
    if *password == *fold_case(&reversed) {
        return Err(AuthError::PasswordIsReversedUsername);
    }
    Ok(())
}

/// `text` with every code point replaced by its Unicode lowercase, in a zeroizing buffer.
fn fold_case(text: &str) -> Zeroizing<String> {
    // A code point's lowercase takes at most 1.5 times its UTF-8 length (U+023A, 2 bytes,
    // lowercases to U+2C65, 3 bytes): room for twice as much means the buffer never moves, so
    // no copy of a password is left behind unzeroed.
    let mut folded = Zeroizing::new(String::with_capacity(text.len() * 2));
    // The final sigma is the one letter whose lowercase depends on where it stands: fold it
    // to σ so that "Νίκος" matches "ΝΊΚΟΣ" wherever either appears.
    folded
        .extend(text.chars().flat_map(char::to_lowercase).map(|c| if c == 'ς' { 'σ' } else { c }));
    folded
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usernames_that_look_like_others_are_refused() {
        // RFC 8265's IdentifierClass has no spaces: "a b" was accepted before the profile.
        for bad in [
            "alice\u{200B}",
            "\u{202E}ecila",
            "al\u{00AD}ice",
            " alice",
            "alice ",
            "\u{FEFF}a",
            "a b",
        ] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        for good in ["alice", "Zoë", "bob.smith", "李雷"] {
            assert!(check_username(good).is_ok(), "{good:?}");
        }
        assert_eq!(crate::MAX_USERNAME_CHARS, 64, "the message above says 64");
    }

    fn check(username: &str, password: &str) -> Result<(), AuthError> {
        check_new_password_for_user(username, &SecretString::from(password))
    }

    fn contains_username(result: Result<(), AuthError>) -> bool {
        matches!(result, Err(AuthError::PasswordContainsUsername { .. }))
    }

    #[test]
    fn a_password_containing_the_username_is_refused_ignoring_case() {
        for password in [
            "alice-correct-horse",
            "my name is alice ok",
            "horse battery alice",
            "ALICE-correct-horse",
            "correct AlIcE horse",
            "alicealicealice",
        ] {
            assert!(contains_username(check("alice", password)), "{password}");
        }
        // The name with mixed case matches the password in any case too.
        assert!(contains_username(check("McAlice", "the mcalice password")));
        assert!(contains_username(check("bob", "bob's password")));
        let err = check("Alice", "Alice's long password").unwrap_err();
        assert_eq!(
            err.to_string(),
            "password contains the username 'Alice' (ignoring case): choose one that does not \
             contain it"
        );
        assert!(!err.to_string().contains("long password"), "{err}");
        assert!(!format!("{err:?}").contains("long password"), "{err:?}");
    }

    #[test]
    fn a_password_equal_to_the_username_reversed_is_refused() {
        for password in ["dnilasor", "DNILASOR", "dNiLaSoR"] {
            let err = check("rosalind", password).unwrap_err();
            assert!(matches!(err, AuthError::PasswordIsReversedUsername), "{password}: {err}");
            assert!(!err.to_string().contains("rosalind") && !err.to_string().contains(password));
        }
        assert!(matches!(
            check("Rosalind", "dnilasor"),
            Err(AuthError::PasswordIsReversedUsername)
        ));
        // Only equality: the reversed name inside a longer password is allowed.
        assert!(check("rosalind", "dnilasor and more words").is_ok());
        assert!(check("rosalind", "xdnilasor").is_ok());
        // A palindrome reversed is the name itself, so it is refused as containing it.
        assert!(contains_username(check("hannahannah", "hannahannah")));
    }

    #[test]
    fn usernames_shorter_than_three_characters_are_not_checked() {
        assert_eq!(MIN_CONTEXT_USERNAME_CHARS, 3, "the docs say 3");
        assert!(check("al", "al's correct horse").is_ok());
        assert!(check("a", "a password with a in it").is_ok());
        assert!(check("李雷", "李雷的密码很长很长").is_ok(), "2 code points");
        // Three is enough, counted in code points, not bytes.
        assert!(contains_username(check("ali", "tall alibis here")));
        assert!(contains_username(check("李雷雷", "李雷雷的密码很长很长")));
    }

    #[test]
    fn non_ascii_usernames_are_compared_ignoring_case() {
        assert!(contains_username(check("Zoë", "ZOË and a horse")));
        assert!(contains_username(check("ZOË", "my zoë password")));
        assert!(contains_username(check("Ødegård", "ØDEGÅRD-2024-horse")));
        assert!(contains_username(check("李雷雷", "密码李雷雷密码很长")));
        // Capital sigma matches σ and the final ς, wherever it is.
        assert!(contains_username(check("ΝΙΚΟΣ", "νικοσακης password")));
        assert!(contains_username(check("νίκος", "ΝΊΚΟΣ-correct-horse")));
        assert!(contains_username(check("ΝΊΚΟΣ", "νίκος-correct-horse")));
        assert!(contains_username(check("Νίκος", "ΝΊΚΟΣΑΣ correct horse")));
        // Dotted capital I lowercases to two code points, on both sides alike.
        assert!(contains_username(check("İlker", "the İLKER password")));
        assert!(matches!(
            check("İlkerÖzdemir", "RIMEDZÖREKLİ"),
            Err(AuthError::PasswordIsReversedUsername)
        ));
        assert!(matches!(
            check("Zoë-Zoë-Zoë", "ËOZ-ëoz-ëoZ"),
            Err(AuthError::PasswordIsReversedUsername)
        ));
        // No normalisation: a precomposed ë and e + U+0308 are different text.
        assert!(check("Zoë", "Zoe\u{308} and a horse").is_ok());
    }

    #[test]
    fn the_username_is_compared_in_its_rfc_8265_form() {
        // The name as stores compare it: NFC, width-mapped, without invisible characters.
        assert!(contains_username(check("Zoe\u{308}", "ZOË and a horse")));
        assert!(contains_username(check("ａｌｉｃｅ", "alice-correct-horse")));
        assert!(contains_username(check("ali\u{200B}ce", "my alice password")));
        assert!(matches!(
            check("ANDRE\u{301}SDOTTIR", "rittodsérdna"),
            Err(AuthError::PasswordIsReversedUsername)
        ));
        // The invisible character does not make a short name long enough to be checked.
        assert!(check("al\u{200B}", "al's correct horse").is_ok());
        // The message names the user as given.
        let err = check("ａｌｉｃｅ", "alice-correct-horse").unwrap_err();
        assert!(err.to_string().contains("'ａｌｉｃｅ'"), "{err}");
    }

    #[test]
    fn nothing_else_about_the_username_is_refused() {
        // Parts of the name, the name with a letter changed, the reversed name within text.
        for password in ["alic and horses", "lice and horses", "al1ce and horses", "ecila horses"] {
            assert!(check("alice", password).is_ok(), "{password}");
        }
        // The checks without a username are still made first.
        assert!(matches!(check("alice", "alice"), Err(AuthError::PasswordTooShort { .. })));
        assert!(matches!(check("alice", "password123"), Err(AuthError::PasswordTooCommon)));
        assert!(matches!(check("bob", &"x".repeat(1025)), Err(AuthError::PasswordTooLong { .. })));
    }

    #[test]
    fn case_folding_fits_in_the_buffer_it_starts_with() {
        // fold_case relies on no code point's lowercase being more than twice as long in UTF-8.
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let lower: usize = c.to_lowercase().map(char::len_utf8).sum();
            assert!(lower <= 2 * c.len_utf8(), "{c:?}");
        }
        let text = "İȺΣ".repeat(100);
        let folded = fold_case(&text);
        assert_eq!(folded.capacity(), text.len() * 2, "the buffer was reallocated");
    }

    #[test]
    fn blocklist_has_the_whole_list() {
        assert_eq!(common_passwords().len(), 19_640);
    }
}
