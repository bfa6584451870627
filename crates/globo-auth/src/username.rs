//! Usernames as RFC 8265 identifiers: what a new name must be, and the form every store
//! compares names in.
//!
//! ```
//! use globo_auth::username::{self, Username};
//!
//! # fn main() -> Result<(), globo_auth::AuthError> {
//! // A new name is enforced: width-mapped and put in NFC, so look-alike spellings of the
//! // same name become one string.
//! let nfd = Username::prepare("jose\u{301}")?;
//! assert_eq!(nfd.as_str(), "jos\u{e9}");
//! assert_eq!(Username::prepare("ａｌｉｃｅ")?.as_str(), "alice");
//! // Invisible characters, spaces and controls are refused.
//! assert!(Username::prepare("alice\u{200B}").is_err());
//! assert!(Username::prepare("alice smith").is_err());
//!
//! // Any stored name, even one the profile refuses (the lab allowed any string), has a
//! // comparison key: two names with the same key are the same user.
//! assert_eq!(username::comparison_key("jose\u{301}"), "jos\u{e9}");
//! assert_eq!(username::comparison_key("alice\u{FE0F}"), "alice");
//! # Ok(()) }
//! ```
//!
//! # New names
//! [`Username::prepare`] applies the PRECIS profile *UsernameCasePreserved* (RFC 8265 §3.4):
//! fullwidth and halfwidth characters mapped to their decomposition, NFC, every code point
//! in the *IdentifierClass* (RFC 8264 §4.2: letters, digits, combining marks and printable
//! ASCII; no spaces, controls, symbols, punctuation outside ASCII, compatibility forms or
//! unassigned code points), and the bidi rule (RFC 5893). Case is kept: `Alice` and `alice`
//! are two users, as in the lab. On top of the profile, every default-ignorable code point
//! (Unicode's `Default_Ignorable_Code_Point`, which includes the zero-width joiners the
//! profile allows after a virama) is refused, and the enforced name has at most
//! [`MAX_USERNAME_CHARS`] code points.
//!
//! The profile is the `precis-profiles` crate's: its *IdentifierClass* tables are those of
//! the IANA PRECIS registry (Unicode 6.3), so letters assigned after Unicode 6.3 are refused
//! in new names; its width mapping and NFC follow a current Unicode version.
//!
//! # Comparing names
//! Names already stored (say, by the lab, which took any string) are not rewritten and need
//! not fit the profile. They are found through [`comparison_key`]: the name width-mapped,
//! with every default-ignorable code point removed, in NFC. For a name [`Username::prepare`]
//! accepted, the key is the name itself, so a store may keep the key of each name and compare
//! keys. [`UserStore`](crate::UserStore) finds a user by the exact stored name first, then by
//! key; when several stored names share the key and none is the exact name given, it refuses
//! to choose and answers as for an unknown user
//! ([`UserStore::ambiguous_names`](crate::UserStore::ambiguous_names) lists such names).

use std::borrow::Cow;
use std::fmt;

use precis_profiles::UsernameCasePreserved;
use precis_profiles::precis_core::profile::{PrecisFastInvocation as _, Rules as _};
use precis_profiles::precis_core::{Error as PrecisError, UnexpectedError};

use crate::AuthError;

/// Most characters (Unicode code points) in a new username, counted after enforcement.
pub const MAX_USERNAME_CHARS: usize = 64;

/// Input longer than this many bytes is refused before the profile runs: no name of
/// [`MAX_USERNAME_CHARS`] code points comes from a longer one: width mapping keeps the count
/// of code points and NFC composes at most 4 code points (16 bytes) into one.
const MAX_USERNAME_INPUT_BYTES: usize = MAX_USERNAME_CHARS * 16;

/// A username in the form of RFC 8265's *UsernameCasePreserved* profile (see the
/// [module](self) docs): what [`UserStore::register`](crate::UserStore::register) stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// Enforces the profile on `name`: maps it to its one accepted form, or says why it is
    /// refused ([`AuthError::InvalidUsername`], naming the first refused code point when
    /// there is one). Input over 1 KiB is refused before anything is allocated for it.
    pub fn prepare(name: &str) -> Result<Self, AuthError> {
        if name.is_empty() {
            return Err(invalid("it is empty", None));
        }
        if name.len() > MAX_USERNAME_INPUT_BYTES {
            return Err(too_long());
        }
        if let Some(c) = name.chars().find(|&c| is_default_ignorable(c)) {
            return Err(invalid("it contains an invisible (default-ignorable) character", Some(c)));
        }
        let enforced = UsernameCasePreserved::enforce(name).map_err(|e| refused(&e))?;
        // The width mapping can produce a default-ignorable code point (U+FFA0 maps to U+1160).
        if let Some(c) = enforced.chars().find(|&c| is_default_ignorable(c)) {
            return Err(invalid("it contains an invisible (default-ignorable) character", Some(c)));
        }
        if enforced.chars().count() > MAX_USERNAME_CHARS {
            return Err(too_long());
        }
        Ok(Self(enforced.into_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, as a `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Username> for String {
    fn from(name: Username) -> Self {
        name.0
    }
}

/// The form in which two usernames are compared: `name` width-mapped as RFC 8265 maps it,
/// without default-ignorable code points, in NFC. Defined for any string, so that names
/// stored before the profile (the lab accepted any string) are found by any spelling that
/// looks the same. Case is kept. For a [`Username`] it is the name itself. Borrows an ASCII
/// name; allocates a copy of the size of any other.
pub fn comparison_key(name: &str) -> Cow<'_, str> {
    // ASCII is its own key: no width mapping, no ignorable, already NFC. Most names are.
    if name.is_ascii() {
        return Cow::Borrowed(name);
    }
    let profile = UsernameCasePreserved::new();
    // Neither rule fails for valid UTF-8: width mapping maps code points to code points and
    // NFC is total. Fall back to the unmapped text rather than fail a lookup.
    let mapped = profile.width_mapping_rule(name).unwrap_or(Cow::Borrowed(name));
    let visible: String = mapped.chars().filter(|&c| !is_default_ignorable(c)).collect();
    let key = match profile.normalization_rule(visible.as_str()) {
        Ok(key) => key.into_owned(),
        Err(_) => visible,
    };
    Cow::Owned(key)
}

/// Unicode's `Default_Ignorable_Code_Point` property (DerivedCoreProperties.txt, Unicode
/// 17.0): code points that render as nothing when not supported. A test checks this table
/// against the Python `regex` module's Unicode 17 tables.
pub(crate) fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

fn invalid(reason: &'static str, code_point: Option<char>) -> AuthError {
    AuthError::InvalidUsername { reason, code_point }
}

fn too_long() -> AuthError {
    invalid("it is longer than the 64-character maximum", None)
}

/// Why the profile refused a name, from the profile's error.
fn refused(error: &PrecisError) -> AuthError {
    let info = match error {
        PrecisError::BadCodepoint(info) => info,
        PrecisError::Unexpected(
            UnexpectedError::ContextRuleNotApplicable(info)
            | UnexpectedError::MissingContextRule(info),
        ) => {
            return invalid(
                "it contains a character allowed only next to certain others (RFC 5892), \
                 used elsewhere",
                char::from_u32(info.cp),
            );
        }
        PrecisError::Invalid => {
            return invalid(
                "it mixes right-to-left and left-to-right text in a way the bidi rule \
                 (RFC 5893) forbids",
                None,
            );
        }
        PrecisError::Unexpected(_) => {
            return invalid("it is not a valid RFC 8265 username", None);
        }
    };
    // The profile reports code points of the width-mapped text (U+3000 is reported as U+0020).
    let c = char::from_u32(info.cp);
    let reason = match c {
        Some(c) if c.is_control() => "it contains a control character",
        Some(c) if c.is_whitespace() => "it contains a space",
        _ => {
            "it contains a character usernames may not contain (RFC 8265 allows letters, \
             digits, combining marks and printable ASCII other than space)"
        }
    };
    invalid(reason, c)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn reason(name: &str) -> &'static str {
        match Username::prepare(name) {
            Err(AuthError::InvalidUsername { reason, .. }) => reason,
            other => panic!("{name:?}: {other:?}"),
        }
    }

    #[test]
    fn canonically_equivalent_spellings_become_one_name() {
        let nfc = Username::prepare("jos\u{e9}").unwrap();
        let nfd = Username::prepare("jose\u{301}").unwrap();
        assert_eq!(nfc, nfd);
        assert_eq!(nfc.as_str(), "jos\u{e9}");
        // Fullwidth and halfwidth forms map to the ordinary ones.
        assert_eq!(Username::prepare("ａｌｉｃｅ").unwrap().as_str(), "alice");
        assert_eq!(Username::prepare("ｶﾀｶﾅ").unwrap().as_str(), "カタカナ");
        // Case is kept.
        assert_ne!(Username::prepare("Alice").unwrap(), Username::prepare("alice").unwrap());
    }

    #[test]
    fn every_default_ignorable_code_point_is_refused() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32).filter(|&c| is_default_ignorable(c)) {
            for name in [format!("alice{c}"), format!("{c}alice"), format!("al{c}ice")] {
                let err = Username::prepare(&name).unwrap_err();
                assert!(
                    matches!(err, AuthError::InvalidUsername { code_point: Some(x), .. } if x == c),
                    "{name:?}: {err}"
                );
            }
        }
        // The ones the issue names, and a join control after a virama (which the profile
        // alone would allow).
        for name in ["alice\u{E0001}", "jose\u{34F}\u{301}", "alice\u{FE0F}", "\u{3164}alice"] {
            assert!(reason(name).contains("invisible"), "{name:?}");
        }
        assert!(reason("\u{915}\u{94D}\u{200D}\u{937}").contains("invisible"));
        // A halfwidth Hangul filler maps to a default-ignorable one.
        assert!(reason("a\u{FFA0}b").contains("invisible"));
    }

    /// Prints every code point with Unicode's Default_Ignorable_Code_Point property, one per
    /// line in hex, from the `regex` module's Unicode tables (Unicode 17.0 in the venv's).
    const PY_DEFAULT_IGNORABLES: &str = r#"
import regex
ignorable = regex.compile(r"\p{Default_Ignorable_Code_Point}")
for cp in range(0x110000):
    if ignorable.match(chr(cp)):
        print("%X" % cp)
"#;

    #[test]
    fn the_default_ignorable_table_is_unicodes() {
        let Some(python) = globo_testkit::python(&["regex"]) else { return };
        let out = python.run_ok(PY_DEFAULT_IGNORABLES, &[], b"");
        let expected: Vec<u32> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|line| u32::from_str_radix(line, 16).unwrap())
            .collect();
        assert_eq!(expected.len(), 4174, "Unicode 17 has 4174 default-ignorables");
        let ours: Vec<u32> = (0..=0x10FFFF)
            .filter(|&cp| char::from_u32(cp).is_some_and(is_default_ignorable))
            .collect();
        assert_eq!(ours, expected);
    }

    #[test]
    fn names_outside_the_identifier_class_are_refused() {
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason("alice smith"), "it contains a space");
        assert_eq!(reason("alice\u{3000}smith"), "it contains a space");
        assert_eq!(reason("tab\there"), "it contains a control character");
        assert_eq!(reason("nul\0"), "it contains a control character");
        for name in ["alice\u{2122}", "\u{1F511}key", "\u{2460}", "\u{E000}", "a\u{FDD0}"] {
            assert!(reason(name).contains("RFC 8265"), "{name:?}");
        }
        assert!(reason("\u{5D0}1a").contains("bidi"));
        assert_eq!(reason(&"u".repeat(65)), "it is longer than the 64-character maximum");
        assert_eq!(reason(&"é".repeat(600)), "it is longer than the 64-character maximum");
        // 65 code points in NFD are 64 in NFC: the limit counts the enforced name.
        let name = format!("{}e\u{301}", "u".repeat(63));
        assert_eq!(Username::prepare(&name).unwrap().as_str().chars().count(), 64);
        let err = Username::prepare("alice\u{200B}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid username: it contains an invisible (default-ignorable) character (U+200B)"
        );
    }

    #[test]
    fn ordinary_names_are_accepted_as_they_are() {
        for name in ["alice", "Zoë", "bob.smith", "o'brien", "李雷", "user-01_x@example.org"] {
            assert_eq!(Username::prepare(name).unwrap().as_str(), name);
        }
        assert_eq!(Username::prepare(&"u".repeat(64)).unwrap().as_str().len(), 64);
    }

    #[test]
    fn an_accepted_name_is_its_own_comparison_key() {
        for name in ["alice", "jose\u{301}", "ａｌｉｃｅ", "Zoë", "李雷", "ｶﾀｶﾅ", "Ωmega"]
        {
            let prepared = Username::prepare(name).unwrap();
            assert_eq!(comparison_key(prepared.as_str()), prepared.as_str());
            assert_eq!(comparison_key(name), prepared.as_str(), "{name:?}");
        }
    }

    #[test]
    fn comparison_keys_join_look_alike_names_of_any_form() {
        let same = |a: &str, b: &str| comparison_key(a) == comparison_key(b);
        assert!(same("jos\u{e9}", "jose\u{301}"));
        for invisible in ["\u{E0001}", "\u{34F}", "\u{FE0F}", "\u{3164}", "\u{200B}", "\u{AD}"] {
            assert!(same("alice", &format!("ali{invisible}ce")), "{invisible:?}");
        }
        // Names the profile refuses still have keys: the lab allowed them.
        assert!(same("alice smith", "alice\u{200D} smith"));
        assert!(same("ａｌｉｃｅ smith", "alice smith"));
        assert!(!same("alice", "Alice"));
        assert!(!same("alice", "alice smith"));
        assert!(matches!(comparison_key("plain ascii"), Cow::Borrowed(_)));
    }
}
