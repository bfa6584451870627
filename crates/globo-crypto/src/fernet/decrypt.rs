//! The one Fernet decoder. Every route that opens a token goes through it: `decrypt`,
//! `decrypt_with_max_age`, `Keyring::rotate`, the file functions, the rotation's re-encryption
//! (which needs the token's timestamp and which key matched) and `inspect` (which checks the
//! structure and every quad the same way, without a key and without holding the token).
//!
//! The token is read once, in pieces of whole quads (quads decode independently, so this is
//! exactly as strict as decoding it whole: every quad but the last must give three bytes, and
//! the last one is decoded with the canonical padding rules), into one buffer of exactly the
//! ciphertext's size while the HMACs run; the tags are verified over the whole token, and only
//! then is that buffer decrypted in place. Nothing is decrypted, let alone released, before a
//! tag has been checked, and the bytes decrypted are the very bytes authenticated (they are in
//! memory, not re-read from a file that could have changed in between). On any failure the
//! buffer is zeroized.
//!
//! Several keys: every key's HMAC is computed over the whole token, in one pass, and every
//! key's tag is compared (in constant time each), so the work and the time do not depend on
//! which key matched; the plaintext is then the first key's, in keyring order, whose tag
//! matches and whose padding is valid. That is Python `MultiFernet`'s result on every input,
//! including keys that share a signing half (a `MultiFernet` tries each key in turn and moves on
//! after a padding failure).

use std::io;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut as _, KeyIvInit as _};
use hmac::Mac as _;
use zeroize::Zeroizing;

use super::base64::{decode_full_quads, decode_last_quad};
use super::format::raw_len;
use super::format::{Aes128CbcDec, BLOCK, HEADER_LEN, HmacSha256, TAG_LEN, VERSION, fresh, mac};
use super::io::{CharSource, StreamError};
use super::pipeline::{self, PIECE_CHARS, Threads};
use crate::Key;

/// A decrypted token.
pub(crate) struct Opened {
    /// The token's creation time, in seconds since the Unix epoch.
    pub(crate) timestamp: u64,
    /// The plaintext (zeroized on drop).
    pub(crate) plaintext: Zeroizing<Vec<u8>>,
    /// The position, in the keys given, of the key that decrypted it.
    pub(crate) key_index: usize,
}

/// The first 36 characters of a token, decoded: the 25-byte header and the first 2 bytes of
/// ciphertext (every later character then falls on a quad boundary of the body), and the
/// token's length in bytes.
struct Start {
    first: [u8; 27],
    n_raw: usize,
}

impl Start {
    fn read(chars: usize, source: &mut impl CharSource) -> Result<Self, StreamError> {
        let n_raw = raw_len(chars).ok_or(StreamError::Decryption)?;
        let mut first = [0u8; 27];
        decode_full_quads(source.take(36)?, &mut first)?;
        if first[0] != VERSION {
            return Err(StreamError::Decryption);
        }
        Ok(Self { first, n_raw })
    }

    fn header(&self) -> &[u8] {
        &self.first[..HEADER_LEN]
    }

    fn timestamp(&self) -> u64 {
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&self.first[1..9]);
        u64::from_be_bytes(timestamp)
    }

    /// Ciphertext and tag.
    fn body_len(&self) -> usize {
        self.n_raw - HEADER_LEN
    }
}

/// Where the decoded body goes.
trait Body {
    /// Takes bytes already decoded (the 2 of the first quads, the last quad's).
    fn put(&mut self, bytes: &[u8]) -> Result<(), StreamError>;
    /// Decodes `chars` (whole quads, no padding) as the next bytes of the body.
    fn decode(&mut self, chars: &[u8]) -> Result<(), StreamError>;
}

/// Keeps the body in a buffer of its exact size, handing each piece, in order, to `emit`
/// (which returns `false` to stop).
struct Keep<'b, F> {
    rest: &'b mut [u8],
    emit: F,
}

impl<'b, F: FnMut(&'b [u8]) -> bool> Keep<'b, F> {
    fn next(&mut self, n: usize) -> Result<&'b mut [u8], StreamError> {
        if n > self.rest.len() {
            return Err(StreamError::Decryption);
        }
        let (piece, rest) = std::mem::take(&mut self.rest).split_at_mut(n);
        self.rest = rest;
        Ok(piece)
    }

    fn hand_on(&mut self, piece: &'b [u8]) -> Result<(), StreamError> {
        if (self.emit)(piece) { Ok(()) } else { Err(StreamError::Decryption) }
    }
}

impl<'b, F: FnMut(&'b [u8]) -> bool> Body for Keep<'b, F> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        let piece = self.next(bytes.len())?;
        piece.copy_from_slice(bytes);
        self.hand_on(piece)
    }

    fn decode(&mut self, chars: &[u8]) -> Result<(), StreamError> {
        let piece = self.next(chars.len() / 4 * 3)?;
        decode_full_quads(chars, piece)?;
        self.hand_on(piece)
    }
}

/// Checks the body and keeps nothing (one piece of scratch memory).
struct Discard {
    scratch: Vec<u8>,
}

impl Body for Discard {
    fn put(&mut self, _: &[u8]) -> Result<(), StreamError> {
        Ok(())
    }

    fn decode(&mut self, chars: &[u8]) -> Result<(), StreamError> {
        let n = chars.len() / 4 * 3;
        if self.scratch.len() < n {
            self.scratch.resize(n, 0);
        }
        Ok(decode_full_quads(chars, &mut self.scratch[..n])?)
    }
}

/// Decodes the rest of a token after its [`Start`] into `body`, in pieces of whole quads, the
/// last quad canonically; then checks that nothing follows the token.
fn decode_rest(
    start: &Start,
    chars: usize,
    mut source: impl CharSource,
    body: &mut impl Body,
) -> Result<(), StreamError> {
    body.put(&start.first[HEADER_LEN..])?;
    let middle_chars = chars - 40;
    let mut left = middle_chars;
    while left > 0 {
        let n = left.min(PIECE_CHARS);
        body.decode(source.take(n)?)?;
        left -= n;
    }
    // The last quad, the only one that may hold padding, gives exactly the bytes the length
    // calls for.
    let last_len = start.n_raw - HEADER_LEN - 2 - middle_chars / 4 * 3;
    let last = decode_last_quad(source.take(4)?, last_len)?;
    body.put(&last[..last_len])?;
    source.finish()
}

/// Reads a token's timestamp and ciphertext length from `source` (`chars` characters) without
/// a key and without holding it in memory: the structure and every quad are checked exactly as
/// [`decrypt_stream`] decodes them.
pub(crate) fn inspect_stream(
    chars: usize,
    mut source: impl CharSource,
) -> Result<(u64, usize), StreamError> {
    let start = Start::read(chars, &mut source)?;
    let mut discard = Discard { scratch: Vec::new() };
    decode_rest(&start, chars, source, &mut discard)?;
    Ok((start.timestamp(), start.body_len() - TAG_LEN))
}

/// HMACs, one per key, of the authenticated part of a token.
struct Authenticator {
    macs: Vec<HmacSha256>,
    /// Bytes of the body still to authenticate (the tag at its end is not).
    remaining: usize,
}

impl Authenticator {
    fn update(&mut self, piece: &[u8]) {
        let n = piece.len().min(self.remaining);
        for m in &mut self.macs {
            m.update(&piece[..n]);
        }
        self.remaining -= n;
    }
}

/// Decrypts a token of `chars` characters from `source` with `keys` (see the module
/// documentation for which key), checking the age against `(max_age, now)` when given (as
/// Python `cryptography`: expired, or more than 60 s in the future). `threads`: with two, the
/// HMACs run on a scoped thread while this one decodes.
pub(crate) fn decrypt_stream(
    keys: &[Key],
    age: Option<(u64, u64)>,
    chars: usize,
    mut source: impl CharSource,
    threads: Threads,
) -> Result<Opened, StreamError> {
    let start = Start::read(chars, &mut source)?;

    // Ciphertext and tag, decoded in place: exactly their size, never reallocated. A length
    // that cannot be allocated is an operational failure, not a crash.
    let mut body = Zeroizing::new(Vec::new());
    body.try_reserve_exact(start.body_len())
        .map_err(|_| StreamError::Read(io::ErrorKind::OutOfMemory.into()))?;
    body.resize(start.body_len(), 0);
    let mut auth = Authenticator {
        macs: keys
            .iter()
            .map(|k| {
                let mut m = mac(k);
                m.update(start.header());
                m
            })
            .collect(),
        remaining: start.body_len() - TAG_LEN,
    };

    let auth = match threads {
        Threads::Two => {
            let (auth, decoded) = pipeline::beside(
                move |pieces| {
                    while let Ok(piece) = pieces.recv() {
                        auth.update(piece);
                    }
                    auth
                },
                |tx| {
                    let emit = |p| tx.send(p).is_ok();
                    decode_rest(&start, chars, source, &mut Keep { rest: &mut body, emit })
                },
            )?;
            decoded?;
            auth
        }
        Threads::One => {
            let emit = |p: &[u8]| {
                auth.update(p);
                true
            };
            decode_rest(&start, chars, source, &mut Keep { rest: &mut body, emit })?;
            auth
        }
    };

    let timestamp = start.timestamp();
    if let Some((max_age, now)) = age
        && !fresh(timestamp, max_age, now)
    {
        return Err(StreamError::Decryption);
    }
    let ct_len = body.len() - TAG_LEN;
    let (ciphertext, tag) = body.split_at(ct_len);
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&start.header()[9..]);
    // Every key's tag is checked (in constant time each), so the time taken does not say which
    // matched; among those that match, the first whose padding is valid decrypts.
    let mut matched = None;
    for (i, (key, m)) in keys.iter().zip(auth.macs).enumerate() {
        if m.verify_slice(tag).is_ok() && matched.is_none() && padding_valid(key, &iv, ciphertext) {
            matched = Some(i);
        }
    }
    let key_index = matched.ok_or(StreamError::Decryption)?;
    body.truncate(ct_len);
    let len = Aes128CbcDec::new(keys[key_index].encryption().into(), (&iv).into())
        .decrypt_padded_mut::<Pkcs7>(&mut body)
        .map_err(|_| StreamError::Decryption)?
        .len();
    body.truncate(len);
    Ok(Opened { timestamp, plaintext: body, key_index })
}

/// Whether `ciphertext` (a whole number of blocks, at least one) ends in valid PKCS#7 padding
/// under `key`: only its last block is decrypted, chained to the block before it (or the IV),
/// in a copy that is zeroized.
fn padding_valid(key: &Key, iv: &[u8; 16], ciphertext: &[u8]) -> bool {
    let n = ciphertext.len();
    if n < BLOCK || !n.is_multiple_of(BLOCK) {
        return false;
    }
    let mut chain = [0u8; 16];
    chain.copy_from_slice(if n >= 2 * BLOCK { &ciphertext[n - 2 * BLOCK..n - BLOCK] } else { iv });
    let mut last = Zeroizing::new([0u8; 16]);
    last.copy_from_slice(&ciphertext[n - BLOCK..]);
    Aes128CbcDec::new(key.encryption().into(), (&chain).into())
        .decrypt_padded_mut::<Pkcs7>(last.as_mut_slice())
        .is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    //! The decoder on every path (a string, a reader; one thread, two) against the reference
    //! construction, tampering, the inspection's agreement with decryption, and the file
    //! reader's newline rule.

    use super::*;
    use crate::fernet::encrypt::encrypt_reference;
    use crate::fernet::io::{ReaderSource, SliceSource};
    use crate::fernet::pipeline::{CHUNK, PARALLEL_MIN};
    use crate::fernet::testing::{decrypt_every_way, random};

    /// Flipping a bit anywhere (header, ciphertext, the tag's last byte, the padding) and
    /// changing the length are rejected by every path, with no plaintext.
    #[test]
    fn tampering_anywhere_is_rejected() {
        let key = Key::generate().unwrap();
        for size in [0usize, 5, CHUNK + 7, PARALLEL_MIN + 100] {
            let token = encrypt_reference(&key, &random(size), 9, &[1; 16]);
            let bytes = token.as_bytes();
            let n = bytes.len();
            let mut positions: Vec<usize> = vec![0, 1, 35, 36, 37, n / 2, n - 45, n - 44];
            positions.extend(n - 8..n);
            for i in positions {
                for replacement in [b'A', b'B', b'_', b'=', b'\n'] {
                    if bytes[i] == replacement {
                        continue;
                    }
                    let mut t = bytes.to_vec();
                    t[i] = replacement;
                    let t = String::from_utf8(t).unwrap();
                    for result in decrypt_every_way(&key, &t) {
                        assert!(matches!(result, Err(StreamError::Decryption)), "{size} {i}");
                    }
                }
            }
            for cut in [&token[..n - 4], &token[4..]] {
                for result in decrypt_every_way(&key, cut) {
                    assert!(matches!(result, Err(StreamError::Decryption)));
                }
            }
        }
    }

    /// The streaming inspection accepts and reports exactly what a whole-token structural
    /// check does (`testing::inspect_whole`, the reference), at every boundary size and for
    /// tokens changed anywhere; whatever it refuses, decryption refuses too.
    #[test]
    fn streaming_inspection_agrees_with_the_whole_token() {
        let key = Key::generate().unwrap();
        let whole = crate::fernet::testing::inspect_whole;
        let streamed = |t: &str| {
            let a = inspect_stream(t.len(), SliceSource::new(t.as_bytes())).ok();
            let b = inspect_stream(t.len(), ReaderSource::new(t.as_bytes(), false)).ok();
            assert_eq!(a, b, "{t:.40}");
            if a.is_none() {
                assert!(decrypt_every_way(&key, t).iter().all(Result::is_err), "{t:.40}");
            }
            a
        };
        for size in [0usize, 1, 15, 16, 17, 47, 48, CHUNK - 1, CHUNK, PIECE_CHARS / 4 * 3 + 5] {
            let token = encrypt_reference(&key, &random(size), 77, &[9; 16]);
            assert_eq!(streamed(&token), Some((77, (size / 16 + 1) * 16)), "{size}");
            let bytes = token.as_bytes();
            let n = bytes.len();
            for i in [0, 1, 2, 35, 36, 37, n / 2, n - 5, n - 4, n - 3, n - 2, n - 1] {
                for replacement in [b'A', b'g', b'_', b'=', b'\n', b'+'] {
                    let mut t = bytes.to_vec();
                    t[i] = replacement;
                    let t = String::from_utf8(t).unwrap();
                    assert_eq!(streamed(&t), whole(&t), "{size} {i} {replacement}");
                }
            }
            for cut in [&token[..n - 4], &token[4..], &token[..n - 1]] {
                assert_eq!(streamed(cut), None);
                assert_eq!(whole(cut), None);
            }
        }
    }

    #[test]
    fn file_reader_newline_rules() {
        let key = Key::generate().unwrap();
        let keys = std::slice::from_ref(&key);
        let token = encrypt_reference(&key, b"x", 9, &[1; 16]);
        let with_nl = format!("{token}\n");
        let ok = ReaderSource::new(with_nl.as_bytes(), true);
        assert!(decrypt_stream(keys, None, token.len(), ok, Threads::One).is_ok());
        for (text, newline) in
            [(format!("{token}\n\n"), true), (format!("{token}\r"), true), (with_nl, false)]
        {
            let source = ReaderSource::new(text.as_bytes(), newline);
            let result = decrypt_stream(keys, None, token.len(), source, Threads::One);
            assert!(matches!(result, Err(StreamError::Decryption)), "{text:?}");
        }
    }

    /// A reader whose input ends (`Ok(0)`) after each of its parts but the last, then goes on
    /// with the next: a file rewritten while it is read, a FUSE file system.
    struct Gaps<'a>(Vec<&'a [u8]>);

    impl std::io::Read for Gaps<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some(part) = self.0.first_mut() else { return Ok(0) };
            if part.is_empty() {
                self.0.remove(0);
                return Ok(0);
            }
            let n = buf.len().min(part.len());
            buf[..n].copy_from_slice(&part[..n]);
            *part = &part[n..];
            Ok(n)
        }
    }

    /// A read that ends early in the middle of a token (`Ok(0)`, then more input) ends the
    /// token there: it is refused, by inspection and decryption alike, whatever follows; no
    /// piece is decoded from fewer characters than the token's length calls for, so the last
    /// quad is never taken from the wrong place.
    #[test]
    fn a_read_that_ends_in_the_middle_of_a_token_is_refused() {
        let key = Key::generate().unwrap();
        let keys = std::slice::from_ref(&key);
        for size in [0usize, 5, 100, PIECE_CHARS / 4 * 3 + 100] {
            let token = encrypt_reference(&key, &random(size), 9, &[1; 16]);
            let t = token.as_bytes();
            let n = t.len();
            // Within the first 36 characters, at the start of the middle, at a quad boundary
            // inside it (inside the second piece for the largest), just before the last quad.
            let mut cuts = vec![20, 36, 40, n / 2 / 4 * 4, n / 2 + 1, n - 8, n - 4];
            if n > PIECE_CHARS + 40 {
                cuts.push(36 + PIECE_CHARS + 8);
            }
            for cut in cuts {
                // The input resumes with the rest of the token, or with its last quad only
                // (what the old decoder, sizing each piece from what it got, then took for the
                // last quad, and accepted as a complete token).
                for rest in [&t[cut..], &t[n - 4..]] {
                    let parts = || Gaps(vec![&t[..cut], rest]);
                    let inspected = inspect_stream(n, ReaderSource::new(parts(), false));
                    assert!(matches!(inspected, Err(StreamError::Decryption)), "{size} {cut}");
                    for threads in crate::fernet::testing::THREADS {
                        let source = ReaderSource::new(parts(), false);
                        let result = decrypt_stream(keys, None, n, source, threads);
                        assert!(matches!(result, Err(StreamError::Decryption)), "{size} {cut}");
                    }
                }
            }
            // The same reader with no gap gives the token back.
            let whole = ReaderSource::new(Gaps(vec![t]), false);
            assert!(decrypt_stream(keys, None, n, whole, Threads::One).is_ok());
        }
    }

    /// The padding check on the last block alone agrees with decrypting everything.
    #[test]
    fn padding_check_agrees_with_full_decryption() {
        let key = Key::generate().unwrap();
        let other = Key::generate().unwrap();
        for size in [0usize, 1, 15, 16, 17, 31, 32, 33, 100] {
            let token = encrypt_reference(&key, &random(size), 1, &[4; 16]);
            let raw = <base64::engine::GeneralPurpose as base64::Engine>::decode(
                &crate::fernet::base64::STRICT_URL_SAFE,
                &token,
            )
            .unwrap();
            let iv: [u8; 16] = raw[9..25].try_into().unwrap();
            let ciphertext = &raw[25..raw.len() - 32];
            for k in [&key, &other] {
                let full = Aes128CbcDec::new(k.encryption().into(), (&iv).into())
                    .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
                    .is_ok();
                assert_eq!(padding_valid(k, &iv, ciphertext), full, "{size}");
            }
            assert!(padding_valid(&key, &iv, ciphertext));
        }
    }
}
