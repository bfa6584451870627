//! The pepper: a secret key, kept out of the users file, that encrypts every stored tag.
//!
//! OWASP Password Storage Cheat Sheet, "Peppering", second option: the pepper encrypts the
//! hash rather than entering the password hashing, so records can be peppered, re-peppered
//! and un-peppered offline, without any password. A peppered record is the PHC string with
//! `keyid=<the version id>` after `p=` and its tag XORed with
//! `HMAC-SHA512(pepper, "globo-pepper-v1\0" || head)[..tag length]`, where `head` is the
//! record's text before its last `$` (everything up to and including the salt) without the
//! `keyid` parameter. The salt makes each record's keystream unique; tags are 4 to 64 bytes,
//! within one HMAC-SHA512 output.
//!
//! A version's id is a fingerprint of its key, never chosen: the first
//! [`VERSION_ID_BYTES`] bytes of `HMAC-SHA256(key, "globo-pepper-id-v1")` in PHC base64 (8
//! characters, the `keyid` value as written). Two different keys never share an id (but
//! with probability 2^-48), so a record can only be unmasked with the key it was masked
//! with: a re-created or concurrently rotated pepper cannot pass for an older one.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, STANDARD_NO_PAD,
};
use hmac::{Hmac, KeyInit as _, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Sha256, Sha512};
use zeroize::Zeroizing;

use crate::AuthError;

/// What the HMAC input starts with: names the scheme, so a pepper shared with another use
/// never yields the same keystream.
const DOMAIN: &[u8] = b"globo-pepper-v1\0";

/// What a version id is the HMAC of (keyed by the version's key).
const ID_DOMAIN: &[u8] = b"globo-pepper-id-v1";

/// The bytes of a version id (the reference decoder's `keyid` bound is 8): 6 bytes are 8
/// characters of base64 without padding.
pub const VERSION_ID_BYTES: usize = 6;

/// The shortest pepper accepted, in bytes (256 bits, HMAC-SHA512's security level and more).
pub const MIN_PEPPER_BYTES: usize = 32;

/// The longest pepper accepted, in bytes (a bound on what a configuration may hold).
pub const MAX_PEPPER_BYTES: usize = 1024;

/// The bytes [`Peppers::generate`] draws for a new version.
const GENERATED_BYTES: usize = 32;

/// One version of the pepper.
#[derive(Clone)]
struct Version {
    /// The key's fingerprint ([`version_id`]).
    id: String,
    key: Zeroizing<Vec<u8>>,
}

impl Version {
    fn new(key: Zeroizing<Vec<u8>>) -> Result<Self, AuthError> {
        Ok(Self { id: version_id(&key)?, key })
    }
}

/// The pepper's versions: the current one, which new records use, then older ones, which
/// records not yet re-peppered still name.
///
/// Its text form (a secret's value: `PASSWORD_PEPPER` in `.env` or in AWS Secrets Manager) is
/// `BASE64[,BASE64...]`, the keys alone, the current version first; each version's id is
/// derived from its key: the first [`VERSION_ID_BYTES`] bytes of
/// HMAC-SHA256(key, `"globo-pepper-id-v1"`), in base64 without padding (docs/passwords.md,
/// "Pepper", has the record format and the Python recipe). `Debug` shows the version ids only;
/// the keys are zeroized on drop and never shown.
///
/// ```
/// use globo_auth::Peppers;
/// use globo_auth::secrecy::{ExposeSecret as _, SecretString};
///
/// let old = Peppers::generate()?;
/// let peppers = old.with_new_current()?;
/// assert_eq!(peppers.versions().nth(1), Some(old.current_version()));
/// assert_eq!(peppers.current_version().len(), 8); // a fingerprint of the key
/// let again = Peppers::parse(&peppers.to_secret())?;
/// assert_eq!(again.versions().collect::<Vec<_>>(), peppers.versions().collect::<Vec<_>>());
/// let key = peppers.to_secret().expose_secret().split(',').next().unwrap().to_owned();
/// assert!(!format!("{peppers:?}").contains(&key)); // `Debug` shows ids only
/// # Ok::<(), globo_auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct Peppers {
    /// Never empty; the first is current; ids are distinct.
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

/// The id of the version whose key is `key`: `HMAC-SHA256(key, "globo-pepper-id-v1")`, its
/// first [`VERSION_ID_BYTES`] bytes in base64 without padding.
fn version_id(key: &[u8]) -> Result<String, AuthError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|_| invalid("the key cannot be used with HMAC-SHA256"))?;
    mac.update(ID_DOMAIN);
    let digest = mac.finalize().into_bytes();
    Ok(STANDARD_NO_PAD.encode(&digest[..VERSION_ID_BYTES]))
}

/// Decodes standard or URL-safe base64, padding optional (one alphabet per key, and the
/// canonical encoding only: unused trailing bits must be zero).
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
    /// Reads `BASE64[,BASE64...]`: each version's key in base64 (standard or URL-safe, one
    /// alphabet per key, padding optional), at least [`MIN_PEPPER_BYTES`] and at most
    /// [`MAX_PEPPER_BYTES`] once decoded; whitespace around the commas is ignored. The first
    /// version is the current one. Fails with [`AuthError::InvalidPepper`] (which never
    /// repeats the value) when empty, malformed, in the `ID:BASE64` form (ids are derived
    /// from the keys, never written), or when a key is there twice.
    pub fn parse(text: &SecretString) -> Result<Self, AuthError> {
        let text = text.expose_secret().trim();
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        let mut versions: Vec<Version> = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(invalid("a version is empty (a comma too many)"));
            }
            if part.contains(':') {
                return Err(invalid(
                    "a version is written ID:BASE64; write the keys alone, BASE64[,BASE64...] \
                     (version ids are derived from the keys)",
                ));
            }
            let version = Version::new(decode_key(part)?)?;
            if versions.iter().any(|v| v.id == version.id) {
                return Err(invalid("the same key is there twice"));
            }
            versions.push(version);
        }
        Ok(Self { versions })
    }

    /// A pepper with one version of 32 random bytes from the operating system.
    pub fn generate() -> Result<Self, AuthError> {
        Ok(Self { versions: vec![fresh()?] })
    }

    /// These versions with a fresh random version in front, as the new current one (the
    /// others are kept, so records that name them still verify).
    pub fn with_new_current(&self) -> Result<Self, AuthError> {
        let new = fresh()?;
        if self.versions.iter().any(|v| v.id == new.id) {
            // 2^-48 for 32 random bytes: refuse rather than shadow an old version.
            return Err(invalid("the same key is there twice"));
        }
        let mut versions = vec![new];
        versions.extend(self.versions.iter().cloned());
        Ok(Self { versions })
    }

    /// The current version alone (once every record names it, the older ones can go).
    #[must_use]
    pub fn retain_current_only(&self) -> Self {
        self.retain_current_and(|_| false)
    }

    /// The current version and the older versions whose id `keep` accepts, in order: what
    /// to keep when some records still name an older version.
    #[must_use]
    pub fn retain_current_and(&self, keep: impl Fn(&str) -> bool) -> Self {
        let versions = self
            .versions
            .iter()
            .enumerate()
            .filter(|(i, v)| *i == 0 || keep(&v.id))
            .map(|(_, v)| v.clone())
            .collect();
        Self { versions }
    }

    /// The text form [`parse`](Self::parse) reads: `BASE64,...` in standard, padded
    /// base64, the current version first.
    pub fn to_secret(&self) -> SecretString {
        let mut text = Zeroizing::new(String::new());
        for (i, version) in self.versions.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            STANDARD.encode_string(version.key.as_slice(), &mut text);
        }
        SecretString::from(text.as_str())
    }

    /// The id of the current version, the one new records name (`keyid=`).
    pub fn current_version(&self) -> &str {
        &self.versions[0].id
    }

    /// Every version's id, the current one first.
    pub fn versions(&self) -> impl Iterator<Item = &str> {
        self.versions.iter().map(|v| v.id.as_str())
    }

    /// Whether `id` is one of these versions.
    pub fn contains(&self, id: &str) -> bool {
        self.versions.iter().any(|v| v.id == id)
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

fn fresh() -> Result<Version, AuthError> {
    let mut key = Zeroizing::new(vec![0u8; GENERATED_BYTES]);
    getrandom::fill(&mut key).map_err(|e| AuthError::Random { source: Box::new(e) })?;
    Version::new(key)
}

/// What [`UserStore::pepper_all`](crate::UserStore::pepper_all) or
/// [`UserStore::rotate_pepper_all`](crate::UserStore::rotate_pepper_all) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PepperReport {
    /// The records now peppered with the current version that were not before.
    pub changed: usize,
    /// The records left as they were: already under the current version or, for
    /// `pepper_all`, under any configured version.
    pub unchanged: usize,
    /// The users whose record names a pepper version that is not configured: left as they
    /// are (they cannot log in until that version is configured again), never counted as
    /// peppered.
    pub unavailable: Vec<String>,
    /// The users whose entry is not a usable hash: left as they are (they cannot log in
    /// either; see [`AuthError::BadEntry`]).
    pub unusable: Vec<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"; // 32 bytes, no padding
    const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn secret(text: &str) -> SecretString {
        SecretString::from(text)
    }

    fn reason(result: Result<Peppers, AuthError>) -> &'static str {
        match result {
            Err(AuthError::InvalidPepper { reason }) => reason,
            other => panic!("{other:?}"),
        }
    }

    /// HMAC over SHA-2 (RFC 2104) computed from the hash alone, for known answers.
    fn hmac<D: sha2::Digest>(key: &[u8], block: usize, message: &[&[u8]]) -> Vec<u8> {
        let mut padded = vec![0u8; block];
        padded[..key.len()].copy_from_slice(key);
        let pad = |b: u8| padded.iter().map(|k| k ^ b).collect::<Vec<u8>>();
        let mut inner = D::new();
        inner.update(pad(0x36));
        for part in message {
            inner.update(part);
        }
        let inner = inner.finalize();
        let mut outer = D::new();
        outer.update(pad(0x5c));
        outer.update(inner);
        outer.finalize().to_vec()
    }

    /// Issue 13 review, point 1: a version's id is the fingerprint of its key, so the same
    /// key always has the same id and another key another one.
    #[test]
    fn a_version_id_is_the_fingerprint_of_its_key() {
        let key: Vec<u8> = (0u8..32).collect();
        let expected =
            STANDARD_NO_PAD.encode(&hmac::<sha2::Sha256>(&key, 64, &[b"globo-pepper-id-v1"])[..6]);
        let peppers = Peppers::parse(&secret(KEY_A)).unwrap();
        assert_eq!(peppers.current_version(), expected);
        assert_eq!(expected.len(), 8);
        // Padded, unpadded, URL-safe: one key, one id.
        let url = Peppers::parse(&secret(&format!("{KEY_B}, {KEY_A}="))).unwrap();
        assert_eq!(url.versions().nth(1), Some(expected.as_str()));
        assert_ne!(url.current_version(), expected);
        // Two generated keys never share an id.
        let (a, b) = (Peppers::generate().unwrap(), Peppers::generate().unwrap());
        assert_ne!(a.current_version(), b.current_version());
    }

    #[test]
    fn parse_reads_versions_in_order_with_either_alphabet_and_optional_padding() {
        let url_safe = "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8=";
        let text = format!(" {KEY_A}= ,{url_safe},\t{KEY_B}");
        let peppers = Peppers::parse(&secret(&text)).unwrap();
        let ids: Vec<String> = peppers.versions().map(str::to_owned).collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(peppers.current_version(), ids[0]);
        assert_eq!(peppers.key(&ids[0]).unwrap(), (0u8..32).collect::<Vec<_>>());
        assert_eq!(peppers.key(&ids[1]).unwrap().len(), 32);
        // The text form reads back to the same keys.
        let again = Peppers::parse(&peppers.to_secret()).unwrap();
        for id in &ids {
            assert_eq!(again.key(id), peppers.key(id));
        }
        assert!(peppers.to_secret().expose_secret().starts_with(&format!("{KEY_A}=,")));
    }

    #[test]
    fn parse_refuses_bad_text_without_repeating_it() {
        let short = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg"; // 31 bytes
        let long = STANDARD.encode(vec![7u8; MAX_PEPPER_BYTES + 1]);
        let old_form = "a version is written ID:BASE64; write the keys alone, BASE64[,BASE64...] \
                        (version ids are derived from the keys)";
        let not_b64 = "a version's key is not valid base64 (standard or URL-safe)";
        let cases = [
            ("", "it is empty"),
            ("  ", "it is empty"),
            (&format!("1:{KEY_A}") as &str, old_form),
            (&format!("{KEY_B},2:{KEY_A}"), old_form),
            (&format!("{KEY_A},{KEY_A}="), "the same key is there twice"),
            (short, "a version's key is shorter than 32 bytes"),
            (&long, "a version's key is longer than 1024 bytes"),
            ("AAEC+-_/AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", not_b64),
            // Not canonical: the last character's unused bits are not zero.
            ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9", not_b64),
            (&format!("{KEY_A},"), "a version is empty (a comma too many)"),
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
        let one = Peppers::generate().unwrap();
        let first = one.current_version().to_owned();
        assert_eq!(one.key(&first).unwrap().len(), 32);
        let two = one.with_new_current().unwrap();
        let second = two.current_version().to_owned();
        assert_eq!(two.versions().collect::<Vec<_>>(), [second.as_str(), first.as_str()]);
        assert_eq!(two.key(&first), one.key(&first));
        assert_ne!(two.key(&second), one.key(&first));
        let three = two.with_new_current().unwrap();
        let kept = three.retain_current_and(|id| id == first);
        assert_eq!(kept.versions().collect::<Vec<_>>(), [three.current_version(), first.as_str()]);
        let retired = two.retain_current_only();
        assert_eq!(retired.versions().collect::<Vec<_>>(), [second.as_str()]);
        assert_eq!(retired.key(&second), two.key(&second));
        assert!(two.contains(&first) && !retired.contains(&first));
    }

    #[test]
    fn debug_shows_ids_never_keys() {
        let peppers = Peppers::parse(&secret(KEY_A)).unwrap();
        let debug = format!("{peppers:?}");
        let id = peppers.current_version();
        assert_eq!(debug, format!(r#"Peppers {{ versions: ["{id}"], keys: "[REDACTED]" }}"#));
    }

    #[test]
    fn the_keystream_is_hmac_sha512_over_the_domain_and_the_head() {
        let key: Vec<u8> = (0u8..32).collect();
        let head = "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ";
        let expected = hmac::<sha2::Sha512>(&key, 128, &[b"globo-pepper-v1\0", head.as_bytes()]);
        let peppers = Peppers::parse(&secret(KEY_A)).unwrap();
        let id = peppers.current_version().to_owned();
        let mut tag = vec![0u8; 64];
        peppers.apply(&id, head, &mut tag).unwrap();
        assert_eq!(tag, expected);
        // Applying twice restores the tag; an unknown version is named.
        peppers.apply(&id, head, &mut tag).unwrap();
        assert_eq!(tag, vec![0u8; 64]);
        let err = peppers.apply("AAAAAAAA", head, &mut tag).unwrap_err();
        assert!(
            matches!(err, AuthError::PepperUnavailable { ref version } if version == "AAAAAAAA")
        );
    }
}
