//! The Fernet token codec: one encoder and one decoder, in pieces, on one thread or two.
//!
//! Modules, each using only those listed before it (no cycle):
//!
//! - `format`: the token's layout, sizes and primitives (version byte, header, tag, the HMAC
//!   and AES-CBC types, the age rule);
//! - `base64`: strict (canonical-only) decoding quad by quad, incremental SIMD encoding;
//! - `io`: where characters come from (a string, a file read in pieces) and go (a string, a
//!   writer), and the codec's internal error;
//! - `pipeline`: the working sizes, the choice of one thread or two ([`Threads`], which the
//!   `parallel` feature sets) and the scoped two-stage pipeline;
//! - `prefault`: the output cut into regions per chunk, faulted in ahead for a token made in
//!   memory;
//! - `encrypt`: the encoder, serial or pipelined (one pipeline for files and memory);
//! - `decrypt`: the one decoder, for decryption, rotation and inspection alike;
//! - `one_decoder_tests` (tests only): every public route that opens a token agrees with the
//!   others, through this one decoder.
//!
//! How the pipeline is laid out and why: `docs/fernet-pipeline.md`.

mod base64;
mod decrypt;
mod encrypt;
mod format;
mod io;
#[cfg(test)]
mod one_decoder_tests;
mod pipeline;
mod prefault;
#[cfg(test)]
mod spec_vectors;
#[cfg(test)]
mod testing;

pub(crate) use self::base64::STRICT_URL_SAFE;
pub(crate) use self::decrypt::{Opened, decrypt_stream, inspect_stream};
#[cfg(test)]
pub(crate) use self::encrypt::encrypt_from_parts;
pub(crate) use self::encrypt::{encrypt_at_time, encrypt_stream};
pub(crate) use self::io::{ReaderSource, StreamError, WriteSink};
#[cfg(test)]
pub(crate) use self::pipeline::PARALLEL_MIN;
pub(crate) use self::pipeline::{CHUNK, Threads};

use self::io::SliceSource;
use crate::{CryptoError, Key};

/// Decrypts a token held in memory with `keys`, checking the age against `(max_age, now)` when
/// given. Every failure is [`CryptoError::Decryption`].
pub(crate) fn open_token(
    keys: &[Key],
    token: &str,
    age: Option<(u64, u64)>,
) -> Result<Opened, CryptoError> {
    let threads = Threads::for_len(Some(token.len() / 4 * 3));
    let source = SliceSource::new(token.as_bytes());
    decrypt_stream(keys, age, token.len(), source, threads).map_err(|_| CryptoError::Decryption)
}

/// A token's timestamp and ciphertext length, checked as the decoder checks it, without a key.
pub(crate) fn inspect_token(token: &str) -> Result<(u64, usize), CryptoError> {
    inspect_stream(token.len(), SliceSource::new(token.as_bytes()))
        .map_err(|_| CryptoError::MalformedToken)
}
