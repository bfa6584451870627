//! Unicode normalisation of passwords: NFKC, as NIST SP 800-63B-4 §3.1.1.2 recommends
//! ("SHOULD ... apply the Normalization Process for Stabilized Strings using either the NFKC
//! or NFKD normalization"), with the raw input kept as a second candidate at login for the
//! hashes the lab (passlib) and earlier globo made of raw bytes.
//!
//! Why NFKC, why the raw fallback and what it costs: docs/passwords.md, "Unicode
//! normalisation".

use secrecy::{ExposeSecret as _, SecretString};
use unicode_normalization::{IsNormalized, UnicodeNormalization as _, is_nfkc_quick};

/// `password` in Unicode Normalization Form KC (compatibility decomposition, then canonical
/// composition): the form globo checks the policy on and hashes for a new password.
///
/// Fullwidth and halfwidth forms, ligatures (`ﬁ`), superscripts and other compatibility
/// characters become their plain equivalents, and a letter typed as a base letter plus a
/// combining mark (`e` + U+0301, as some keyboards and macOS give it) becomes the precomposed
/// letter (`é`), so one password typed on different systems is one password. Nothing is
/// removed, truncated or case-folded.
///
/// A service that hashes with [`hash_password`](crate::hash_password) (which hashes the
/// bytes it is given) normalises with this first; Python peers do the same with
/// `unicodedata.normalize("NFKC", password)`. [`UserStore`](crate::UserStore) does it itself.
///
/// The result is built in a buffer of exactly its final size (the normalised length is
/// measured first), so no reallocation leaves a copy behind; it is zeroized on drop like any
/// [`SecretString`]. Input that is already in NFKC (all ASCII, for one) is recognised by
/// Unicode's quick check and copied as it is. The normaliser's own working buffers (a few
/// characters, on the heap only for a run of more than four combining marks) are not zeroized.
///
/// **Cost:** linear in the input; the output has at most 18 times as many code points (the
/// largest expansion, U+FDFA) and at most 11 times as many bytes.
///
/// ```
/// use globo_auth::normalize_password;
/// use globo_auth::secrecy::{ExposeSecret as _, SecretString};
///
/// let typed = SecretString::from("ｃａｆｅ\u{301} ﬁle");
/// assert_eq!(normalize_password(&typed).expose_secret(), "café file");
/// ```
pub fn normalize_password(password: &SecretString) -> SecretString {
    nfkc(password.expose_secret()).unwrap_or_else(|| password.clone())
}

/// The NFKC form of `text` when it differs from `text`, else `None`.
fn nfkc(text: &str) -> Option<SecretString> {
    if is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        return None;
    }
    let len: usize = text.nfkc().map(char::len_utf8).sum();
    let mut normalized = String::with_capacity(len);
    normalized.extend(text.nfkc());
    // Exactly full, so turning it into a boxed str does not reallocate (and copy) it.
    debug_assert_eq!(normalized.len(), normalized.capacity());
    let normalized = SecretString::from(normalized);
    (normalized.expose_secret() != text).then_some(normalized)
}

/// Which form of a login password a [`Candidates`] item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// The NFKC form: what globo hashes.
    Normalized,
    /// The input as given, tried only when NFKC changes it: what the lab, passlib and globo
    /// before normalisation hashed.
    Raw,
}

/// The forms of a login password to check against a stored hash, in order: its NFKC form,
/// then, only when NFKC changes the input, the input as given. How many there are (1 or 2)
/// depends on the input alone, never on the user or the stored hash, so an unknown user's
/// dummy verification runs as many times as a known user's failed one.
pub(crate) struct Candidates<'a> {
    raw: &'a SecretString,
    /// `None` when the input is already in NFKC.
    normalized: Option<SecretString>,
}

impl Candidates<'_> {
    /// The form a new hash of this password is made of (the NFKC form).
    pub(crate) fn normalized(&self) -> &SecretString {
        self.normalized.as_ref().unwrap_or(self.raw)
    }

    /// Each form with its bytes, NFKC first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Form, &[u8])> {
        let normalized = (Form::Normalized, self.normalized().expose_secret().as_bytes());
        let raw =
            self.normalized.is_some().then(|| (Form::Raw, self.raw.expose_secret().as_bytes()));
        std::iter::once(normalized).chain(raw)
    }
}

/// The candidates for a login with `password` (see [`Candidates`]).
pub(crate) fn candidates(password: &SecretString) -> Candidates<'_> {
    Candidates { raw: password, normalized: nfkc(password.expose_secret()) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn normalized(text: &str) -> String {
        normalize_password(&SecretString::from(text)).expose_secret().to_owned()
    }

    #[test]
    fn compatibility_and_decomposed_forms_become_one_password() {
        assert_eq!(normalized("ｐａｓｓｗｏｒｄ"), "password");
        assert_eq!(normalized("ﬁsh ﬂour"), "fish flour");
        assert_eq!(normalized("x²"), "x2");
        assert_eq!(normalized("cafe\u{301}"), "caf\u{e9}");
        assert_eq!(normalized("\u{2126}"), "\u{3a9}", "ohm sign to omega");
        // Already NFKC: unchanged, case and spaces kept.
        for text in ["Correct Horse", "caf\u{e9}", "пароль", "密码", "🔑", ""] {
            assert_eq!(normalized(text), text);
        }
    }

    #[test]
    fn the_buffer_is_exactly_the_normalised_size() {
        // U+FDFA expands to 18 code points (33 bytes); the result is exactly that long.
        let text = "\u{FDFA}".repeat(3);
        let out = normalized(&text);
        assert_eq!(out.chars().count(), 54);
        assert_eq!(out.len(), 99);
    }

    fn forms(text: &str) -> Vec<(Form, String)> {
        let secret = SecretString::from(text);
        let candidates = candidates(&secret);
        candidates
            .iter()
            .map(|(form, bytes)| (form, String::from_utf8(bytes.to_vec()).unwrap()))
            .collect()
    }

    #[test]
    fn the_raw_input_is_a_candidate_only_when_nfkc_changes_it() {
        assert_eq!(forms("correct horse"), [(Form::Normalized, "correct horse".to_owned())]);
        assert_eq!(forms("caf\u{e9}"), [(Form::Normalized, "caf\u{e9}".to_owned())]);
        assert_eq!(
            forms("cafe\u{301}"),
            [(Form::Normalized, "caf\u{e9}".to_owned()), (Form::Raw, "cafe\u{301}".to_owned())]
        );
        let secret = SecretString::from("ﬁsh");
        assert_eq!(candidates(&secret).normalized().expose_secret(), "fish");
    }

    /// A quick check that answers "maybe" for text that is in NFKC (a combining mark after
    /// a letter it does not compose with) still gives one candidate.
    #[test]
    fn maybe_normalised_text_that_is_normalised_has_one_candidate() {
        let text = "a\u{301}\u{316}x\u{300}";
        let nfkc: String = text.nfkc().collect();
        assert_eq!(forms(&nfkc).len(), 1, "{nfkc:?}");
    }
}
