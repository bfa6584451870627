//! What a new username and a new password must look like (NIST SP 800-63B-4, OWASP ASVS).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use secrecy::{ExposeSecret as _, SecretString};
use unicode_normalization::UnicodeNormalization as _;
use zeroize::Zeroizing;

use crate::AuthError;
use crate::normalize::normalize_password;
use crate::username::{Username, comparison_key};

/// Fewest characters (Unicode code points, counted after NFKC normalisation) in a new password
/// used as a single factor: the default [`PasswordPolicy::SingleFactor`]. NIST SP 800-63B-4
/// §3.1.1.2: "Verifiers and CSPs SHALL require passwords that are used as a single-factor
/// authentication mechanism to be a minimum of 15 characters in length."
pub const MIN_PASSWORD_CHARS: usize = 15;

/// Fewest characters in a new password under [`PasswordPolicy::WithSecondFactor`]: NIST SP
/// 800-63B-4 §3.1.1.2 allows 8 only for passwords that are used as part of multi-factor
/// authentication, never alone.
pub const MIN_SECOND_FACTOR_PASSWORD_CHARS: usize = 8;

/// Most characters (Unicode code points, counted after NFKC normalisation) in a new password.
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
///
/// A new password longer than this is refused as too long before it is normalised: its NFKC
/// form cannot be within [`MAX_PASSWORD_CHARS`] (canonical composition joins at most four
/// code points of at most four bytes into one), so the bound costs no valid password anything.
pub const MAX_LOGIN_PASSWORD_BYTES: usize = 4 * 4096;

// The bound on new passwords before normalising (see above): MAX_PASSWORD_CHARS composed code
// points of at most 4 code points of 4 bytes each fit under it.
const _: () = assert!(MAX_PASSWORD_CHARS * 4 * 4 <= MAX_LOGIN_PASSWORD_BYTES);

/// The blocklist, one lowercase password per line (see `data/SOURCE.md`).
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON_PASSWORDS.lines().filter(|l| !l.is_empty()).collect())
}

/// Whether `password`, compared case-insensitively, is on the shipped list of 19,640 common
/// passwords (Django's list, BSD-3-Clause; see `data/SOURCE.md` in the crate).
///
/// Leading and trailing whitespace is ignored for this comparison only. `password` is
/// compared as given; the policy passes its NFKC form (so `ｑｗｅｒｔｙ` is `qwerty`).
/// Allocates a zeroized lowercase copy of `password` (its size); the first call builds the
/// list's set (about 20,000 entries, kept for the life of the process).
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

/// What a new password must be, by how it is used (NIST SP 800-63B-4 §3.1.1.2).
///
/// | policy | fewest characters | use |
/// | --- | --- | --- |
/// | [`SingleFactor`](PasswordPolicy::SingleFactor) (default) | 15 ([`MIN_PASSWORD_CHARS`]) | the password alone logs a user in (NIST SHALL) |
/// | [`WithSecondFactor`](PasswordPolicy::WithSecondFactor) | 8 ([`MIN_SECOND_FACTOR_PASSWORD_CHARS`]) | **only** when every login also needs a second factor (an OTP, a passkey) |
///
/// Both: at most [`MAX_PASSWORD_CHARS`] characters; not on the common-password list
/// ([`is_common_password`]); for [`check_for_user`](Self::check_for_user), neither
/// containing the username nor being it reversed; no composition rules (no "one digit, one
/// symbol"), never truncated. Characters are Unicode code points of the password's NFKC
/// form ([`normalize_password`](crate::normalize_password)), which is also what a store
/// hashes. Logins are held to none of it: existing users keep logging in.
///
/// The names (`single-factor`, `with-second-factor`) are what [`FromStr`] and
/// [`Display`](fmt::Display) use, e.g. for a `--password-policy` option.
///
/// ```
/// use globo_auth::{AuthError, PasswordPolicy};
/// use globo_auth::secrecy::SecretString;
///
/// let password = SecretString::from("tulip-anvil");   // 11 characters
/// assert!(matches!(
///     PasswordPolicy::SingleFactor.check(&password),
///     Err(AuthError::PasswordTooShort { min: 15 })
/// ));
/// assert!(PasswordPolicy::WithSecondFactor.check(&password).is_ok());
/// assert_eq!("with-second-factor".parse::<PasswordPolicy>()?, PasswordPolicy::WithSecondFactor);
/// # Ok::<(), AuthError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PasswordPolicy {
    /// The password is the only factor: at least 15 characters (NIST SP 800-63B-4 §3.1.1.2,
    /// SHALL). The default.
    #[default]
    SingleFactor,
    /// The password is never the sole factor (the service always asks for a second one as
    /// well): at least 8 characters, which NIST SP 800-63B-4 allows only in that case. Do not
    /// choose it for a service where the password alone logs a user in.
    WithSecondFactor,
}

impl PasswordPolicy {
    /// Every policy, default first.
    pub const ALL: [PasswordPolicy; 2] =
        [PasswordPolicy::SingleFactor, PasswordPolicy::WithSecondFactor];

    /// The policy's name (`single-factor`, `with-second-factor`).
    pub fn name(self) -> &'static str {
        match self {
            PasswordPolicy::SingleFactor => "single-factor",
            PasswordPolicy::WithSecondFactor => "with-second-factor",
        }
    }

    /// The fewest characters (code points of the NFKC form) a new password may have.
    pub fn min_chars(self) -> usize {
        match self {
            PasswordPolicy::SingleFactor => MIN_PASSWORD_CHARS,
            PasswordPolicy::WithSecondFactor => MIN_SECOND_FACTOR_PASSWORD_CHARS,
        }
    }

    /// Checks a new password on its own: between [`min_chars`](Self::min_chars) and
    /// [`MAX_PASSWORD_CHARS`] code points and not a common password, both of its NFKC form.
    ///
    /// This does not know the username: a new password for a user is checked with
    /// [`check_for_user`](Self::check_for_user), which stores use. Allocates the NFKC form
    /// and, within the length bounds, what [`is_common_password`] allocates.
    pub fn check(self, password: &SecretString) -> Result<(), AuthError> {
        self.checked(password).map(drop)
    }

    /// Checks a new password for `username`: everything [`check`](Self::check) checks,
    /// then, when the username has at least [`MIN_CONTEXT_USERNAME_CHARS`] code points, that
    /// the password neither contains the username nor is the username reversed, ignoring
    /// case (see [`check_new_password_for_user`] for the details of the comparison).
    pub fn check_for_user(self, username: &str, password: &SecretString) -> Result<(), AuthError> {
        self.checked_for_user(username, password).map(drop)
    }

    /// [`check_for_user`](Self::check_for_user), returning the NFKC form that passed: the
    /// form to hash.
    pub(crate) fn checked_for_user(
        self,
        username: &str,
        password: &SecretString,
    ) -> Result<SecretString, AuthError> {
        let normalized = self.checked(password)?;
        check_context_words(username, normalized.expose_secret())?;
        Ok(normalized)
    }

    /// [`check`](Self::check), returning the NFKC form that passed.
    fn checked(self, password: &SecretString) -> Result<SecretString, AuthError> {
        // Refused before normalising, so the work is bounded: see MAX_LOGIN_PASSWORD_BYTES.
        if password.expose_secret().len() > MAX_LOGIN_PASSWORD_BYTES {
            return Err(AuthError::PasswordTooLong { max: MAX_PASSWORD_CHARS });
        }
        let normalized = normalize_password(password);
        let text = normalized.expose_secret();
        let chars = text.chars().count();
        if chars < self.min_chars() {
            return Err(AuthError::PasswordTooShort { min: self.min_chars() });
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(AuthError::PasswordTooLong { max: MAX_PASSWORD_CHARS });
        }
        if is_common_password(text) {
            return Err(AuthError::PasswordTooCommon);
        }
        Ok(normalized)
    }
}

impl fmt::Display for PasswordPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PasswordPolicy {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PasswordPolicy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| AuthError::UnknownPasswordPolicy { name: s.to_owned() })
    }
}

/// Checks a new password on its own under the default policy,
/// [`PasswordPolicy::SingleFactor`]: at least [`MIN_PASSWORD_CHARS`] (15) and at most
/// [`MAX_PASSWORD_CHARS`] Unicode code points of its NFKC form, not a common password. No
/// composition rules; the password is never truncated.
///
/// This does not know the username: a new password for a user is checked with
/// [`check_new_password_for_user`], which [`UserStore::register`](crate::UserStore::register)
/// uses. Allocates as [`PasswordPolicy::check`] does.
pub fn check_new_password(password: &SecretString) -> Result<(), AuthError> {
    PasswordPolicy::SingleFactor.check(password)
}

/// Shortest username, in Unicode code points, that a new password is checked against (see
/// [`check_new_password_for_user`]). Names of one or two characters are not checked: "al" or
/// "li" are parts of too many good passwords ("tall", "glisten") to refuse them all.
pub const MIN_CONTEXT_USERNAME_CHARS: usize = 3;

/// Checks a new password for `username` under the default policy,
/// [`PasswordPolicy::SingleFactor`]: everything [`check_new_password`] checks, then, when the
/// username has at least [`MIN_CONTEXT_USERNAME_CHARS`] code points, that the password
/// neither contains the username nor is the username reversed. NIST SP 800-63B-4 asks
/// verifiers to refuse such "context-specific words".
///
/// The username is taken in its RFC 8265 form ([`comparison_key`]: width-mapped, invisible
/// characters removed, NFC) and then in NFKC, and the password in its NFKC form (the form a
/// store hashes), so `Zoe` plus a combining diaeresis, a fullwidth `ａｌｉｃｅ` or a password
/// spelling the name in either way is compared as `Zoë` or `alice`.
/// Both comparisons ignore case: each code point is mapped to its Unicode lowercase, as for
/// the common-password list, but code point by code point, with the Greek final sigma `ς`
/// taken as `σ` (the one letter whose lowercase depends on its place in a word), so that a
/// name matches wherever it appears. Reversing is code point by code point. Nothing else about
/// the username is refused: a password may contain part of the name, or the reversed name
/// inside longer text.
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
///     check("rosalindfranklin", "nilknarfdnilasor"),
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
    PasswordPolicy::SingleFactor.check_for_user(username, password)
}

/// The context-word rules of [`check_new_password_for_user`], on a password already in NFKC.
fn check_context_words(username: &str, password: &str) -> Result<(), AuthError> {
    // The name is no secret: a plain String.
    let name: String = comparison_key(username).nfkc().collect();
    let name = name.as_str();
    if name.chars().count() < MIN_CONTEXT_USERNAME_CHARS {
        return Ok(());
    }
    let password = fold_case(password);
    if password.contains(fold_case(name).as_str()) {
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

    /// The context-word rules with the 8-character minimum, so that short names and
    /// passwords can show them; `check_single` is the default policy.
    fn check(username: &str, password: &str) -> Result<(), AuthError> {
        PasswordPolicy::WithSecondFactor.check_for_user(username, &SecretString::from(password))
    }

    fn check_single(username: &str, password: &str) -> Result<(), AuthError> {
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
        // The password is compared in NFKC: e + U+0308 is the precomposed ë.
        assert!(contains_username(check("Zoë", "Zoe\u{308} and a horse")));
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

    fn policy_check(policy: PasswordPolicy, password: &str) -> Result<(), AuthError> {
        policy.check(&SecretString::from(password))
    }

    /// NIST SP 800-63B-4 §3.1.1.2: 15 characters for a single factor (the default), 8 only
    /// with a second factor. Before, 8 was the only minimum: the 14-character password passed.
    #[test]
    fn a_single_factor_password_needs_15_characters_and_8_with_a_second_factor() {
        use PasswordPolicy::{SingleFactor, WithSecondFactor};
        assert_eq!((MIN_PASSWORD_CHARS, MIN_SECOND_FACTOR_PASSWORD_CHARS), (15, 8));
        assert_eq!(PasswordPolicy::default(), SingleFactor);
        assert_eq!((SingleFactor.min_chars(), WithSecondFactor.min_chars()), (15, 8));
        // Code points, not bytes: 14 é (28 bytes) are too short, 15 are enough.
        let err = check_new_password(&SecretString::from("é".repeat(14))).unwrap_err();
        assert!(matches!(err, AuthError::PasswordTooShort { min: 15 }), "{err}");
        assert_eq!(err.to_string(), "password is too short: use at least 15 characters");
        assert!(check_new_password(&SecretString::from("é".repeat(15))).is_ok());
        assert!(policy_check(SingleFactor, &"🔑".repeat(15)).is_ok());
        for short in ["tulip-anvil-x", "tulip anvil xy", "1234567"] {
            assert!(
                matches!(
                    policy_check(SingleFactor, short),
                    Err(AuthError::PasswordTooShort { min: 15 })
                ),
                "{short}"
            );
        }
        // With a second factor, 8 is the floor.
        assert!(policy_check(WithSecondFactor, "tulip-an").is_ok());
        assert!(policy_check(WithSecondFactor, "tulip-anvil xy").is_ok());
        assert!(matches!(
            policy_check(WithSecondFactor, "tulip-a"),
            Err(AuthError::PasswordTooShort { min: 8 })
        ));
        // Both: 1024 at most, the blocklist, no composition rules.
        for policy in PasswordPolicy::ALL {
            assert!(policy_check(policy, &"ab".repeat(512)).is_ok());
            assert!(matches!(
                policy_check(policy, &"ab".repeat(513)[..1025]),
                Err(AuthError::PasswordTooLong { max: 1024 })
            ));
            assert!(matches!(
                policy_check(policy, "1q2w3e4r5t6y7u8i9o0p"),
                Err(AuthError::PasswordTooCommon)
            ));
            assert!(policy_check(policy, "just some lowercase words").is_ok());
        }
        assert!(matches!(
            policy_check(WithSecondFactor, "Password123"),
            Err(AuthError::PasswordTooCommon)
        ));
    }

    #[test]
    fn policies_have_documented_names() {
        let names: Vec<String> = PasswordPolicy::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["single-factor", "with-second-factor"]);
        for policy in PasswordPolicy::ALL {
            assert_eq!(policy.name().parse::<PasswordPolicy>().unwrap(), policy);
        }
        let err = "two-factor".parse::<PasswordPolicy>().unwrap_err();
        assert!(matches!(&err, AuthError::UnknownPasswordPolicy { name } if name == "two-factor"));
        assert_eq!(
            err.to_string(),
            "unknown password policy 'two-factor'; use single-factor or with-second-factor"
        );
    }

    /// NIST SP 800-63B-4 §3.1.1.2 (SHOULD normalise): lengths, the blocklist and the context
    /// words apply to the NFKC form. Before, the raw form was counted and compared.
    #[test]
    fn the_policy_checks_the_nfkc_form() {
        // 15 code points typed with a combining accent are 14 after NFKC: too short.
        let decomposed = "cafe\u{301} au lait x";
        assert_eq!(decomposed.chars().count(), 15);
        assert!(matches!(
            check_new_password(&SecretString::from(decomposed)),
            Err(AuthError::PasswordTooShort { min: 15 })
        ));
        // 13 code points with two ligatures are 15 after NFKC: long enough.
        let ligatures = "ﬁsh and ﬂour!";
        assert_eq!(ligatures.chars().count(), 13);
        assert!(check_new_password(&SecretString::from(ligatures)).is_ok());
        // U+FDFA is one code point and 18 after NFKC: 57 of them are over 1024.
        assert!(matches!(
            check_new_password(&SecretString::from("\u{FDFA}".repeat(57))),
            Err(AuthError::PasswordTooLong { max: 1024 })
        ));
        // A fullwidth common password is the common password.
        assert!(!is_common_password("１ｑ２ｗ３ｅ４ｒ５ｔ６ｙ７ｕ８ｉ９ｏ０ｐ"));
        assert!(matches!(
            check_new_password(&SecretString::from("１ｑ２ｗ３ｅ４ｒ５ｔ６ｙ７ｕ８ｉ９ｏ０ｐ")),
            Err(AuthError::PasswordTooCommon)
        ));
        // The name spelled in fullwidth letters or with a ligature in the password.
        assert!(contains_username(check_single("alice", "ａｌｉｃｅ-correct-horse")));
        assert!(contains_username(check_single("Sofia", "the soﬁa correct horse")));
    }

    /// The bound taken before normalising refuses nothing whose NFKC form fits: a canonical
    /// composition joins at most 4 code points (of at most 4 bytes), so MAX_PASSWORD_CHARS
    /// normalised code points come from at most 16 bytes each.
    #[test]
    fn the_byte_bound_before_normalising_costs_no_valid_password() {
        let longest = (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .map(|c| std::iter::once(c).nfd().count())
            .max()
            .unwrap();
        assert!(longest <= 4, "{longest}");
        let over = SecretString::from("a".repeat(MAX_LOGIN_PASSWORD_BYTES + 1));
        for policy in PasswordPolicy::ALL {
            assert!(matches!(policy.check(&over), Err(AuthError::PasswordTooLong { max: 1024 })));
        }
    }

    #[test]
    fn the_default_policy_checks_context_words_too() {
        assert!(contains_username(check_single("alice", "alice-correct-horse")));
        assert!(matches!(
            check_single("rosalindfranklin", "NILKNARFDNILASOR"),
            Err(AuthError::PasswordIsReversedUsername)
        ));
        assert!(check_single("alice", "correct horse battery").is_ok());
    }

    #[test]
    fn blocklist_has_the_whole_list() {
        assert_eq!(common_passwords().len(), 19_640);
    }
}
