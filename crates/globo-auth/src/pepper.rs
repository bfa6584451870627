//! The pepper: a secret key, kept out of the users file, that encrypts every stored tag.
//!
//! OWASP Password Storage Cheat Sheet, "Peppering", second option: the pepper encrypts the
//! hash rather than entering the password hashing, so records can be peppered, re-peppered
//! and un-peppered offline, without any password. A peppered record is the PHC string with
//! `keyid=<base64 of the version id>` after `p=` and its tag XORed with
//! `HMAC-SHA512(pepper, "globo-pepper-v1\0" || head)[..tag length]`, where `head` is the
//! record's text before its last `$` (everything up to and including the salt) without the
//! `keyid` parameter. The salt makes each record's keystream unique; tags are 4 to 64 bytes,
//! within one HMAC-SHA512 output.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, KeyInit as _, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha512;
use zeroize::Zeroizing;

use crate::AuthError;

/// What the HMAC input starts with: names the scheme, so a pepper shared with another use
/// never yields the same keystream.
const DOMAIN: &[u8] = b"globo-pepper-v1\0";

/// A version id: 1 to 8 ASCII letters or digits (8 bytes is the reference decoder's `keyid`
/// bound).
const MAX_ID_LEN: usize = 8;

/// The shortest pepper accepted, in bytes (256 bits, HMAC-SHA512's security level and more).
pub const MIN_PEPPER_BYTES: usize = 32;

/// The longest pepper accepted, in bytes (a bound on what a configuration may hold).
pub const MAX_PEPPER_BYTES: usize = 1024;

/// The bytes [`Peppers::generate`] draws for a new version.
const GENERATED_BYTES: usize = 32;

/// One version of the pepper.
#[derive(Clone)]
struct Version {
    id: String,
    key: Zeroizing<Vec<u8>>,
}

/// The pepper's versions: the current one, which new records use, then older ones, which
/// records not yet re-peppered still name.
///
/// Its text form (a secret's value: `PASSWORD_PEPPER` in `.env` or in AWS Secrets Manager) is
/// `ID:BASE64[,ID:BASE64...]`, the current version first. `Debug` shows the version ids only;
/// the keys are zeroized on drop and never shown.
///
/// ```
/// use globo_auth::Peppers;
/// use globo_auth::secrecy::SecretString;
///
/// let peppers = Peppers::generate("1")?.with_new_current("2")?;
/// assert_eq!(peppers.current_version(), "2");
/// assert_eq!(peppers.versions().collect::<Vec<_>>(), ["2", "1"]);
/// let again = Peppers::parse(&peppers.to_secret())?;
/// assert_eq!(again.versions().collect::<Vec<_>>(), ["2", "1"]);
/// use globo_auth::secrecy::ExposeSecret as _;
/// let key = peppers.to_secret().expose_secret().split(',').next().unwrap()[2..].to_owned();
/// assert!(!format!("{peppers:?}").contains(&key)); // `Debug` shows ids only
/// # Ok::<(), globo_auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct Peppers {
    /// Never empty; the first is current.
    versions: Vec<Version>,
}

impl fmt::Debug for Peppers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peppers")
            .field("versions", &self.versions().collect::<Vec<_>>())
            .field("keys", &"[REDACTED]")
            .finish()
    }
}

fn invalid(reason: &'static str) -> AuthError {
    AuthError::InvalidPepper { reason }
}

/// Whether `id` is a version id: 1 to 8 ASCII letters or digits.
pub(crate) fn is_version_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn check_id(id: &str) -> Result<(), AuthError> {
    if is_version_id(id) {
        Ok(())
    } else {
        Err(invalid("a version id must be 1 to 8 ASCII letters or digits"))
    }
}

/// Decodes standard or URL-safe base64, padded or not (never both alphabets at once).
fn decode_key(text: &str) -> Result<Zeroizing<Vec<u8>>, AuthError> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let url_safe = text.contains(['-', '_']);
    let engine = GeneralPurpose::new(
        if url_safe { &alphabet::URL_SAFE } else { &alphabet::STANDARD },
        config,
    );
    let key = Zeroizing::new(
        engine
            .decode(text)
            .map_err(|_| invalid("a version's key is not valid base64 (standard or URL-safe)"))?,
    );
    if key.len() < MIN_PEPPER_BYTES {
        return Err(invalid("a version's key is shorter than 32 bytes"));
    }
    if key.len() > MAX_PEPPER_BYTES {
        return Err(invalid("a version's key is longer than 1024 bytes"));
    }
    Ok(key)
}

impl Peppers {
    /// Reads `ID:BASE64[,ID:BASE64...]`: each version's id (1 to 8 ASCII letters or digits)
    /// and its key in base64 (standard or URL-safe, padding optional), at least
    /// [`MIN_PEPPER_BYTES`] and at most [`MAX_PEPPER_BYTES`] once decoded; whitespace around
    /// the commas and colons is ignored. The first version is the current one. Fails with
    /// [`AuthError::InvalidPepper`] (which never repeats the value) when empty, malformed, or
    /// when two versions share an id.
    pub fn parse(text: &SecretString) -> Result<Self, AuthError> {
        let text = text.expose_secret().trim();
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        let mut versions: Vec<Version> = Vec::new();
        for part in text.split(',') {
            let (id, key) = part
                .split_once(':')
                .ok_or_else(|| invalid("each version must be written ID:BASE64"))?;
            let (id, key) = (id.trim(), key.trim());
            check_id(id)?;
            if versions.iter().any(|v| v.id == id) {
                return Err(invalid("two versions have the same id"));
            }
            versions.push(Version { id: id.to_owned(), key: decode_key(key)? });
        }
        Ok(Self { versions })
    }

    /// A pepper with one version, `id`, of 32 random bytes from the operating system.
    pub fn generate(id: &str) -> Result<Self, AuthError> {
        check_id(id)?;
        Ok(Self { versions: vec![fresh(id)?] })
    }

    /// These versions with a fresh random version `id` in front, as the new current one
    /// (the others are kept, so records that name them still verify). Refused when `id` is
    /// already a version.
    pub fn with_new_current(&self, id: &str) -> Result<Self, AuthError> {
        check_id(id)?;
        if self.versions.iter().any(|v| v.id == id) {
            return Err(invalid("two versions have the same id"));
        }
        let mut versions = vec![fresh(id)?];
        versions.extend(self.versions.iter().cloned());
        Ok(Self { versions })
    }

    /// The current version alone (once every record names it, the older ones can go).
    #[must_use]
    pub fn retain_current_only(&self) -> Self {
        Self { versions: self.versions[..1].to_vec() }
    }

    /// The text form [`parse`](Self::parse) reads: `ID:BASE64,...` in standard, padded
    /// base64, the current version first.
    pub fn to_secret(&self) -> SecretString {
        let mut text = Zeroizing::new(String::new());
        for (i, version) in self.versions.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&version.id);
            text.push(':');
            STANDARD.encode_string(version.key.as_slice(), &mut text);
        }
        SecretString::from(text.as_str())
    }

    /// The id of the current version, the one new records name.
    pub fn current_version(&self) -> &str {
        &self.versions[0].id
    }

    /// Every version's id, the current one first.
    pub fn versions(&self) -> impl Iterator<Item = &str> {
        self.versions.iter().map(|v| v.id.as_str())
    }

    fn key(&self, id: &str) -> Option<&[u8]> {
        self.versions.iter().find(|v| v.id == id).map(|v| v.key.as_slice())
    }

    /// XORs `tag` with the keystream of version `id` for the record whose head is `head`:
    /// masks an Argon2 tag or unmasks a stored one. [`AuthError::PepperUnavailable`] when
    /// the version is not here.
    pub(crate) fn apply(&self, id: &str, head: &str, tag: &mut [u8]) -> Result<(), AuthError> {
        let key =
            self.key(id).ok_or_else(|| AuthError::PepperUnavailable { version: id.to_owned() })?;
        apply_keystream(key, head, tag)
    }
}

/// `tag ^= HMAC-SHA512(key, DOMAIN || head)[..tag.len()]`.
fn apply_keystream(key: &[u8], head: &str, tag: &mut [u8]) -> Result<(), AuthError> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key)
        .map_err(|_| invalid("the key cannot be used with HMAC-SHA512"))?;
    mac.update(DOMAIN);
    mac.update(head.as_bytes());
    let stream = Zeroizing::new(mac.finalize().into_bytes().to_vec());
    if tag.len() > stream.len() {
        return Err(AuthError::MalformedHash { reason: "the hash is longer than 64 bytes" });
    }
    for (byte, mask) in tag.iter_mut().zip(stream.iter()) {
        *byte ^= mask;
    }
    Ok(())
}

fn fresh(id: &str) -> Result<Version, AuthError> {
    let mut key = Zeroizing::new(vec![0u8; GENERATED_BYTES]);
    getrandom::fill(&mut key).map_err(|e| AuthError::Random { source: Box::new(e) })?;
    Ok(Version { id: id.to_owned(), key })
}

/// What [`UserStore::pepper_all`](crate::UserStore::pepper_all) or
/// [`UserStore::rotate_pepper_all`](crate::UserStore::rotate_pepper_all) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PepperReport {
    /// The records now peppered with the current version that were not before.
    pub changed: usize,
    /// The records left as they were (already under the current version or, for
    /// `pepper_all`, under any version).
    pub unchanged: usize,
    /// The users whose entry is not a usable hash: left as they are (they cannot log in
    /// either; see [`AuthError::BadEntry`]).
    pub unusable: Vec<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"; // 32 bytes, no padding

    fn secret(text: &str) -> SecretString {
        SecretString::from(text)
    }

    fn reason(result: Result<Peppers, AuthError>) -> &'static str {
        match result {
            Err(AuthError::InvalidPepper { reason }) => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parse_reads_versions_in_order_with_either_alphabet_and_optional_padding() {
        let url_safe = "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8=";
        let text = format!(" 2 : {KEY_A}= ,1:{url_safe},\tzz9:{KEY_A}");
        let peppers = Peppers::parse(&secret(&text)).unwrap();
        assert_eq!(peppers.versions().collect::<Vec<_>>(), ["2", "1", "zz9"]);
        assert_eq!(peppers.current_version(), "2");
        assert_eq!(peppers.key("2").unwrap(), (0u8..32).collect::<Vec<_>>());
        assert_eq!(peppers.key("1").unwrap().len(), 32);
        // The text form reads back to the same keys.
        let again = Peppers::parse(&peppers.to_secret()).unwrap();
        for id in ["2", "1", "zz9"] {
            assert_eq!(again.key(id), peppers.key(id));
        }
        assert!(peppers.to_secret().expose_secret().starts_with(&format!("2:{KEY_A}=,1:")));
    }

    #[test]
    fn parse_refuses_bad_text_without_repeating_it() {
        let short = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg"; // 31 bytes
        let long = STANDARD.encode(vec![7u8; MAX_PEPPER_BYTES + 1]);
        let cases = [
            ("", "it is empty"),
            ("  ", "it is empty"),
            (KEY_A, "each version must be written ID:BASE64"),
            (&format!(":{KEY_A}") as &str, "a version id must be 1 to 8 ASCII letters or digits"),
            (&format!("123456789:{KEY_A}"), "a version id must be 1 to 8 ASCII letters or digits"),
            (&format!("v-1:{KEY_A}"), "a version id must be 1 to 8 ASCII letters or digits"),
            (&format!("1:{KEY_A},1:{KEY_A}"), "two versions have the same id"),
            (&format!("1:{short}"), "a version's key is shorter than 32 bytes"),
            (&format!("1:{long}"), "a version's key is longer than 1024 bytes"),
            (
                "1:AAEC+-_/AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
                "a version's key is not valid base64 (standard or URL-safe)",
            ),
            (&format!("1:{KEY_A},"), "each version must be written ID:BASE64"),
        ];
        for (text, expected) in cases {
            let result = Peppers::parse(&secret(text));
            let err = match &result {
                Err(e) => e.to_string(),
                Ok(_) => String::new(),
            };
            assert_eq!(reason(result), expected, "{text:?}");
            assert!(!err.contains(KEY_A), "{err}");
        }
    }

    #[test]
    fn generate_rotate_and_retire() {
        let one = Peppers::generate("1").unwrap();
        assert_eq!(one.key("1").unwrap().len(), 32);
        let two = one.with_new_current("2").unwrap();
        assert_eq!(two.versions().collect::<Vec<_>>(), ["2", "1"]);
        assert_eq!(two.key("1"), one.key("1"));
        assert_ne!(two.key("2"), one.key("1"));
        assert_eq!(reason(two.with_new_current("1")), "two versions have the same id");
        assert_eq!(
            reason(Peppers::generate("")),
            "a version id must be 1 to 8 ASCII letters or digits"
        );
        let retired = two.retain_current_only();
        assert_eq!(retired.versions().collect::<Vec<_>>(), ["2"]);
        assert_eq!(retired.key("2"), two.key("2"));
    }

    #[test]
    fn debug_shows_ids_never_keys() {
        let peppers = Peppers::parse(&secret(&format!("1:{KEY_A}"))).unwrap();
        let debug = format!("{peppers:?}");
        assert_eq!(debug, r#"Peppers { versions: ["1"], keys: "[REDACTED]" }"#);
    }

    #[test]
    fn the_keystream_is_hmac_sha512_over_the_domain_and_the_head() {
        // Independent computation of HMAC-SHA512 (RFC 2104) from SHA-512 alone.
        use sha2::Digest as _;
        let key: Vec<u8> = (0u8..32).collect();
        let head = "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ";
        let mut block = [0u8; 128];
        block[..32].copy_from_slice(&key);
        let pad = |b: u8| block.iter().map(|k| k ^ b).collect::<Vec<u8>>();
        let inner = sha2::Sha512::new()
            .chain_update(pad(0x36))
            .chain_update(b"globo-pepper-v1\0")
            .chain_update(head)
            .finalize();
        let expected = sha2::Sha512::new().chain_update(pad(0x5c)).chain_update(inner).finalize();
        let peppers = Peppers::parse(&secret(&format!("1:{KEY_A}"))).unwrap();
        let mut tag = vec![0u8; 64];
        peppers.apply("1", head, &mut tag).unwrap();
        assert_eq!(tag, expected.to_vec());
        // Applying twice restores the tag; an unknown version is named.
        peppers.apply("1", head, &mut tag).unwrap();
        assert_eq!(tag, vec![0u8; 64]);
        let err = peppers.apply("2", head, &mut tag).unwrap_err();
        assert!(matches!(err, AuthError::PepperUnavailable { ref version } if version == "2"));
    }
}
