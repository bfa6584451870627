//! The Fernet token format (<https://github.com/fernet/spec/blob/master/Spec.md>), built on the
//! RustCrypto primitives, with strict decoding and zeroized plaintext buffers.
//!
//! Token: `0x80 || timestamp (u64, big endian) || IV (16) || AES-128-CBC(PKCS#7) || HMAC-SHA256`
//! over everything before the tag, all in URL-safe base64 with padding.

use std::time::{SystemTime, UNIX_EPOCH};

use aes::cipher::{BlockDecryptMut as _, KeyIvInit as _, block_padding::Pkcs7};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::Mac as _;
use zeroize::Zeroizing;

use crate::{CryptoError, Key};

/// URL-safe base64 that accepts only the canonical encoding: the alphabet `A-Z a-z 0-9 - _`,
/// exactly the right number of `=`, zero padding bits, nothing else (no whitespace, no junk).
/// Lenient decoders let one token have many spellings (fernet/spec PR #11).
pub(crate) const STRICT_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

pub(crate) const VERSION: u8 = 0x80;
pub(crate) const HEADER_LEN: usize = 1 + 8 + 16;
pub(crate) const TAG_LEN: usize = 32;
pub(crate) const BLOCK: usize = 16;
/// A token's timestamp may be this far in the future when a maximum age is checked (as in
/// Python `cryptography`'s `_MAX_CLOCK_SKEW`).
pub(crate) const MAX_CLOCK_SKEW: u64 = 60;

pub(crate) type HmacSha256 = hmac::Hmac<sha2::Sha256>;
pub(crate) type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;
pub(crate) type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// Seconds since the Unix epoch now (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) fn mac(key: &Key) -> HmacSha256 {
    // HMAC zero-pads a key shorter than the hash's block size (RFC 2104 section 2), so the
    // 16-byte signing key padded to 64 bytes is the same key, and this constructor cannot fail.
    let mut padded = Zeroizing::new([0u8; 64]);
    padded[..16].copy_from_slice(key.signing());
    <HmacSha256 as hmac::digest::KeyInit>::new(padded.as_ref().into())
}

/// Encrypts `plaintext` with an explicit timestamp and IV. Only tests and [`encrypt_at_time`]
/// call this: a reused IV under one key would break confidentiality.
///
/// Built on the streaming encoder (`stream.rs`), writing straight into a buffer of the token's
/// exact length; large inputs are pipelined over threads.
pub(crate) fn encrypt_from_parts(
    key: &Key,
    plaintext: &[u8],
    timestamp: u64,
    iv: &[u8; 16],
) -> Result<String, CryptoError> {
    // Reading a slice and writing to memory cannot fail: only a worker thread can (a panic).
    crate::stream::encrypt_to_string(key, iv, timestamp, plaintext)
        .map_err(|_| CryptoError::Interrupted)
}

/// The whole-buffer construction, kept as the reference the streaming encoder is tested
/// against.
#[cfg(test)]
pub(crate) fn encrypt_reference(
    key: &Key,
    plaintext: &[u8],
    timestamp: u64,
    iv: &[u8; 16],
) -> String {
    use aes::cipher::BlockEncryptMut as _;
    let ciphertext = Aes128CbcEnc::new(key.encryption().into(), iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut buf = Vec::with_capacity(HEADER_LEN + ciphertext.len() + TAG_LEN);
    buf.push(VERSION);
    buf.extend_from_slice(&timestamp.to_be_bytes());
    buf.extend_from_slice(iv);
    buf.extend_from_slice(&ciphertext);
    let tag = mac(key).chain_update(&buf).finalize().into_bytes();
    buf.extend_from_slice(&tag);
    STRICT_URL_SAFE.encode(&buf)
}

/// Encrypts with a fresh random IV and the given timestamp.
pub(crate) fn encrypt_at_time(
    key: &Key,
    plaintext: &[u8],
    timestamp: u64,
) -> Result<String, CryptoError> {
    let mut iv = [0u8; 16];
    getrandom::fill(&mut iv).map_err(|_| CryptoError::Random)?;
    encrypt_from_parts(key, plaintext, timestamp, &iv)
}

/// A token's parts, decoded strictly but not authenticated.
pub(crate) struct RawToken {
    bytes: Vec<u8>,
}

impl RawToken {
    /// Decodes and checks the structure: version byte, header, a whole number of blocks (at
    /// least one), the tag. Fails with [`CryptoError::Decryption`].
    pub(crate) fn parse(token: &str) -> Result<Self, CryptoError> {
        let bytes = STRICT_URL_SAFE.decode(token).map_err(|_| CryptoError::Decryption)?;
        let body = bytes.len().checked_sub(HEADER_LEN + TAG_LEN).ok_or(CryptoError::Decryption)?;
        if bytes[0] != VERSION || body == 0 || body % BLOCK != 0 {
            return Err(CryptoError::Decryption);
        }
        Ok(Self { bytes })
    }

    pub(crate) fn timestamp(&self) -> u64 {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&self.bytes[1..9]);
        u64::from_be_bytes(ts)
    }

    pub(crate) fn ciphertext_len(&self) -> usize {
        self.bytes.len() - HEADER_LEN - TAG_LEN
    }

    /// Checks the age against `(max_age, now)` as Python `cryptography` does (only when a
    /// maximum age is given: expired, or more than 60 s in the future), then the tag, then
    /// decrypts. Every failure is the same [`CryptoError::Decryption`].
    pub(crate) fn decrypt(
        &self,
        key: &Key,
        age: Option<(u64, u64)>,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if let Some((max_age, now)) = age {
            let timestamp = self.timestamp();
            if timestamp.saturating_add(max_age) < now
                || now.saturating_add(MAX_CLOCK_SKEW) < timestamp
            {
                return Err(CryptoError::Decryption);
            }
        }
        let (message, tag) = self.bytes.split_at(self.bytes.len() - TAG_LEN);
        mac(key).chain_update(message).verify_slice(tag).map_err(|_| CryptoError::Decryption)?;
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&message[9..HEADER_LEN]);
        let mut plaintext = Zeroizing::new(message[HEADER_LEN..].to_vec());
        let len = Aes128CbcDec::new(key.encryption().into(), (&iv).into())
            .decrypt_padded_mut::<Pkcs7>(&mut plaintext)
            .map_err(|_| CryptoError::Decryption)?
            .len();
        plaintext.truncate(len);
        Ok(plaintext)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    //! The fernet/spec acceptance vectors (testdata/vectors/fernet, provenance in SOURCE.md),
    //! with time and IV injected as in fernet-rs.

    use super::*;

    /// Parses the vectors' RFC 3339 timestamps (`1985-10-26T01:20:00-07:00`) to Unix seconds.
    fn unix(rfc3339: &str) -> u64 {
        let (date, rest) = rfc3339.split_once('T').unwrap();
        let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
        let (time, offset) = rest.split_at(8);
        let t: Vec<i64> = time.split(':').map(|p| p.parse().unwrap()).collect();
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let o: Vec<i64> = offset[1..].split(':').map(|p| p.parse().unwrap()).collect();
        let days = crate::time::days_from_civil(d[0], d[1] as u32, d[2] as u32);
        let local = days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
        u64::try_from(local - sign * (o[0] * 3600 + o[1] * 60)).unwrap()
    }

    #[test]
    fn timestamp_parser_matches_a_known_instant() {
        assert_eq!(unix("1985-10-26T01:20:00-07:00"), 499_162_800);
        assert_eq!(unix("1970-01-01T00:00:00+00:00"), 0);
    }

    #[test]
    fn generate_vectors() {
        let vectors = globo_testkit::load_vectors("fernet/generate.json");
        let vectors = vectors.as_array().unwrap();
        assert!(!vectors.is_empty());
        for v in vectors {
            let key = Key::from_base64(v["secret"].as_str().unwrap()).unwrap();
            let iv: Vec<u8> =
                v["iv"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
            let token = encrypt_from_parts(
                &key,
                v["src"].as_str().unwrap().as_bytes(),
                unix(v["now"].as_str().unwrap()),
                &iv.try_into().unwrap(),
            )
            .unwrap();
            assert_eq!(token, v["token"].as_str().unwrap());
        }
    }

    #[test]
    fn verify_vectors() {
        let vectors = globo_testkit::load_vectors("fernet/verify.json");
        let vectors = vectors.as_array().unwrap();
        assert!(!vectors.is_empty());
        for v in vectors {
            let key = Key::from_base64(v["secret"].as_str().unwrap()).unwrap();
            let now = unix(v["now"].as_str().unwrap());
            let ttl = v["ttl_sec"].as_u64().unwrap();
            let token = RawToken::parse(v["token"].as_str().unwrap()).unwrap();
            let plaintext = token.decrypt(&key, Some((ttl, now))).unwrap();
            assert_eq!(plaintext.as_slice(), v["src"].as_str().unwrap().as_bytes());
        }
    }

    #[test]
    fn invalid_vectors_are_rejected() {
        let vectors = globo_testkit::load_vectors("fernet/invalid.json");
        let vectors = vectors.as_array().unwrap();
        assert_eq!(vectors.len(), 8);
        for v in vectors {
            let key = Key::from_base64(v["secret"].as_str().unwrap()).unwrap();
            let now = unix(v["now"].as_str().unwrap());
            let ttl = v["ttl_sec"].as_u64().unwrap();
            let result = RawToken::parse(v["token"].as_str().unwrap())
                .and_then(|t| t.decrypt(&key, Some((ttl, now))));
            assert!(
                matches!(result, Err(CryptoError::Decryption)),
                "accepted invalid vector: {}",
                v["desc"]
            );
        }
    }

    #[test]
    fn far_future_timestamp_does_not_overflow() {
        let key = Key::generate().unwrap();
        let token = encrypt_from_parts(&key, b"x", u64::MAX, &[7; 16]).unwrap();
        let raw = RawToken::parse(&token).unwrap();
        assert!(raw.decrypt(&key, Some((u64::MAX, u64::MAX))).is_ok());
        assert!(raw.decrypt(&key, Some((60, 1_000))).is_err());
        // Without a maximum age the timestamp is not checked (as in Python).
        assert_eq!(raw.decrypt(&key, None).unwrap().as_slice(), b"x");
    }

    #[test]
    fn strict_engine_rejects_non_canonical_padding_and_bits() {
        // "QQ==" is canonical for b"A"; "QR==" has non-zero trailing bits; "QQ" lacks padding.
        assert_eq!(STRICT_URL_SAFE.decode("QQ==").unwrap(), b"A");
        for bad in ["QR==", "QQ", "QQ=", "QQ===", "QQ==\n", " QQ==", "Q+==", "Q/==", "QQ==QQ=="] {
            assert!(STRICT_URL_SAFE.decode(bad).is_err(), "{bad:?} accepted");
        }
    }
}
