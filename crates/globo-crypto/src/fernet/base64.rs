//! Base64 as tokens need it: strict (canonical-only) decoding, quad by quad, and incremental
//! SIMD encoding whose characters do not depend on where the input is cut.

use std::io;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

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

/// Where encoded characters go.
pub(crate) trait CharSink {
    /// Appends the encoding of `raw` (a multiple of 3 bytes, except for the very last call).
    fn encode(&mut self, raw: &[u8]) -> io::Result<()>;
}

/// Encodes `raw` (URL-safe base64, padded) into `out`, which must be exactly its encoded
/// length; returns the characters. Encoding uses the SIMD encoder (`base64-simd`, AVX2 or SSE
/// chosen at run time), several times faster than a scalar one; its output is the same
/// characters (tested against the reference construction, which encodes with `base64`).
pub(crate) fn encode_into<'o>(raw: &[u8], out: &'o mut [u8]) -> io::Result<&'o mut [u8]> {
    if out.len() != raw.len().div_ceil(3) * 4 {
        return Err(io::Error::other("base64 output buffer of the wrong size"));
    }
    Ok(base64_simd::URL_SAFE.encode(raw, base64_simd::Out::from_slice(out)))
}

/// Incremental base64: carries the bytes that do not complete a 3-byte group to the next call.
pub(crate) struct Base64Stream<S> {
    pub(crate) sink: S,
    carry: [u8; 3],
    carry_len: usize,
}

impl<S: CharSink> Base64Stream<S> {
    pub(crate) fn new(sink: S) -> Self {
        Self { sink, carry: [0; 3], carry_len: 0 }
    }

    pub(crate) fn push(&mut self, mut raw: &[u8]) -> io::Result<()> {
        if self.carry_len > 0 {
            let take = (3 - self.carry_len).min(raw.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&raw[..take]);
            self.carry_len += take;
            raw = &raw[take..];
            if self.carry_len < 3 {
                return Ok(());
            }
            self.sink.encode(&self.carry)?;
            self.carry_len = 0;
        }
        let whole = raw.len() / 3 * 3;
        if whole > 0 {
            self.sink.encode(&raw[..whole])?;
        }
        let rest = &raw[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_len = rest.len();
        Ok(())
    }

    pub(crate) fn finish(mut self) -> io::Result<S> {
        if self.carry_len > 0 {
            self.sink.encode(&self.carry[..self.carry_len])?;
        }
        Ok(self.sink)
    }
}

/// Characters that are not the canonical encoding expected there.
#[derive(Debug)]
pub(crate) struct NotCanonical;

/// Decodes a whole number of quads with no padding into `out` (exactly `chars / 4 * 3` bytes).
/// Quads decode independently, so a token decoded in pieces of whole quads is decoded exactly
/// as it would be whole.
pub(crate) fn decode_full_quads(chars: &[u8], out: &mut [u8]) -> Result<(), NotCanonical> {
    if !chars.len().is_multiple_of(4) || chars.len() / 4 * 3 != out.len() {
        return Err(NotCanonical);
    }
    match STRICT_URL_SAFE.decode_slice(chars, out) {
        Ok(n) if n == out.len() => Ok(()),
        _ => Err(NotCanonical),
    }
}

/// Decodes the last quad of a token, the only one that may hold padding, canonically; it must
/// give exactly `len` bytes.
pub(crate) fn decode_last_quad(chars: &[u8], len: usize) -> Result<[u8; 3], NotCanonical> {
    let mut last = [0u8; 3];
    match STRICT_URL_SAFE.decode_slice(chars, &mut last) {
        Ok(n) if n == len => Ok(last),
        _ => Err(NotCanonical),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn strict_engine_rejects_non_canonical_padding_and_bits() {
        // "QQ==" is canonical for b"A"; "QR==" has non-zero trailing bits; "QQ" lacks padding.
        assert_eq!(STRICT_URL_SAFE.decode("QQ==").unwrap(), b"A");
        for bad in ["QR==", "QQ", "QQ=", "QQ===", "QQ==\n", " QQ==", "Q+==", "Q/==", "QQ==QQ=="] {
            assert!(STRICT_URL_SAFE.decode(bad).is_err(), "{bad:?} accepted");
        }
    }
}
