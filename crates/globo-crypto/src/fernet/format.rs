//! The token's layout, sizes and primitives: what every other module of the codec builds on.
//!
//! Token: `0x80 || timestamp (u64, big endian) || IV (16) || AES-128-CBC(PKCS#7) || HMAC-SHA256`
//! over everything before the tag, all in URL-safe base64 with padding
//! (<https://github.com/fernet/spec/blob/master/Spec.md>).

use zeroize::Zeroizing;

use crate::Key;

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

/// The HMAC of `key`'s signing half, fed nothing yet.
pub(crate) fn mac(key: &Key) -> HmacSha256 {
    // HMAC zero-pads a key shorter than the hash's block size (RFC 2104 section 2), so the
    // 16-byte signing key padded to 64 bytes is the same key, and this constructor cannot fail.
    let mut padded = Zeroizing::new([0u8; 64]);
    padded[..16].copy_from_slice(key.signing());
    <HmacSha256 as hmac::KeyInit>::new((&*padded).into())
}

/// A token's header: version, timestamp, IV.
pub(crate) fn header(timestamp: u64, iv: &[u8; 16]) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0] = VERSION;
    header[1..9].copy_from_slice(&timestamp.to_be_bytes());
    header[9..].copy_from_slice(iv);
    header
}

/// The length of the token (in characters) for a plaintext of `len` bytes: between
/// `4/3 * len + 77` and `4/3 * len + 100` (100 for an empty plaintext). `None` when no buffer
/// can be that long (more than `isize::MAX` bytes: a plaintext of more than 3/4 of that, which
/// only a 32-bit target can hold), so the caller reports it instead of a wrapped length or a
/// capacity-overflow panic.
pub(crate) fn token_len(len: usize) -> Option<usize> {
    let padded = (len / BLOCK).checked_add(1)?.checked_mul(BLOCK)?;
    let raw = padded.checked_add(HEADER_LEN + TAG_LEN)?;
    raw.div_ceil(3).checked_mul(4).filter(|&n| n <= isize::MAX.unsigned_abs())
}

/// The length in bytes of the only structurally valid token `chars` characters long, if any:
/// `chars / 4 * 3` minus 0 to 2 padding bytes, at least one block, a whole number of blocks.
pub(crate) fn raw_len(chars: usize) -> Option<usize> {
    if !chars.is_multiple_of(4) {
        return None;
    }
    let max = chars / 4 * 3;
    (max.saturating_sub(2)..=max).find(|&n| {
        n >= HEADER_LEN + BLOCK + TAG_LEN && (n - HEADER_LEN - TAG_LEN).is_multiple_of(BLOCK)
    })
}

/// Whether a token made at `timestamp` is acceptable at `now` for a maximum age: not expired,
/// and at most [`MAX_CLOCK_SKEW`] seconds in the future (Python `cryptography`'s rule).
pub(crate) fn fresh(timestamp: u64, max_age: u64, now: u64) -> bool {
    timestamp.saturating_add(max_age) >= now && now.saturating_add(MAX_CLOCK_SKEW) >= timestamp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token's length never wraps, and is never more than a buffer can hold.
    #[test]
    fn token_len_is_checked() {
        let largest_buffer = isize::MAX.unsigned_abs();
        for len in [usize::MAX, usize::MAX / 4 * 3, largest_buffer, largest_buffer / 4 * 3] {
            assert_eq!(token_len(len), None, "{len}");
        }
        let fits = largest_buffer / 4 * 3 - 100;
        assert!(token_len(fits).is_some_and(|n| n <= largest_buffer && n > fits));
    }

    /// An HMAC-SHA256 holds two hash states that absorbed the key (inner and outer) and a block
    /// buffer; all three wipe themselves when dropped (the `zeroize` features of `hmac` and
    /// `sha2`), so the per-key HMACs the decoder keeps leave no key-derived state behind. A
    /// compile-time check: it does not build without those features.
    #[test]
    fn hmac_state_is_zeroized_on_drop() {
        use hmac::block_api::HmacCore;
        use hmac::digest::block_api::Buffer;
        fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroized_on_drop::<<sha2::Sha256 as hmac::EagerHash>::Core>();
        zeroized_on_drop::<Buffer<HmacCore<sha2::Sha256>>>();
    }

    /// What the crate documentation says a token costs: at most `4/3 * n + 100` characters,
    /// 100 for an empty plaintext, and at least `4/3 * n + 77`.
    #[test]
    fn token_len_is_at_most_four_thirds_plus_100() {
        assert_eq!(token_len(0), Some(100));
        for n in 0..10_000usize {
            let len = token_len(n).unwrap_or(0) as f64;
            let base = n as f64 * 4.0 / 3.0;
            assert!(len <= base + 100.0 && len >= base + 77.0, "{n}: {len}");
        }
    }
}
