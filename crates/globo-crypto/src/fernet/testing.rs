//! Test support for the codec's unit tests: sizes at every boundary, random data, every way to
//! decrypt a token, and the whole-token structural check the streaming inspection is compared
//! with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use zeroize::Zeroizing;

use super::base64::STRICT_URL_SAFE;
use super::decrypt::decrypt_stream;
use super::format::{BLOCK, HEADER_LEN, TAG_LEN, VERSION};
use super::io::{ReaderSource, SliceSource, StreamError};
use super::pipeline::{CHUNK, PARALLEL_MIN, PIECE_CHARS, Threads};
use crate::Key;

/// Both thread choices, whatever the crate's features.
pub(crate) const THREADS: [Threads; 2] = [Threads::One, Threads::Two];

pub(crate) fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    getrandom::fill(&mut v).unwrap();
    v
}

/// Sizes around every boundary: blocks, base64 groups, chunks, pieces, the parallel limit.
pub(crate) fn boundary_sizes() -> Vec<usize> {
    let mut sizes = vec![0, 1, 2, 3, 15, 16, 17, 31, 32, 33, 47, 48, 49];
    // The in-memory pipeline cuts the token at every full chunk, and the input may end
    // exactly on one (then the last chunk is the padding alone).
    let first_whole_chunks = PARALLEL_MIN.div_ceil(CHUNK) * CHUNK;
    for edge in [CHUNK, 2 * CHUNK, PIECE_CHARS / 4 * 3, PARALLEL_MIN, first_whole_chunks] {
        for delta in [-49isize, -48, -17, -16, -3, -1, 0, 1, 2, 3, 15, 16, 17, 47, 48, 49] {
            sizes.push(edge.checked_add_signed(delta).unwrap());
        }
    }
    sizes
}

/// Decrypts `token` with `key` from a string and from a reader, with one thread and two.
pub(crate) fn decrypt_every_way(
    key: &Key,
    token: &str,
) -> Vec<Result<Zeroizing<Vec<u8>>, StreamError>> {
    let keys = std::slice::from_ref(key);
    let mut results = Vec::new();
    for threads in THREADS {
        let source = SliceSource::new(token.as_bytes());
        results.push(decrypt_stream(keys, None, token.len(), source, threads));
        let reader = ReaderSource::new(token.as_bytes(), false);
        results.push(decrypt_stream(keys, None, token.len(), reader, threads));
    }
    results.into_iter().map(|r| r.map(|opened| opened.plaintext)).collect()
}

/// The reference structural check: decode the whole token at once, then check the version,
/// a whole number of blocks (at least one) and the tag; the timestamp and ciphertext length.
pub(crate) fn inspect_whole(token: &str) -> Option<(u64, usize)> {
    let bytes = STRICT_URL_SAFE.decode(token).ok()?;
    let body = bytes.len().checked_sub(HEADER_LEN + TAG_LEN)?;
    if bytes[0] != VERSION || body == 0 || body % BLOCK != 0 {
        return None;
    }
    Some((u64::from_be_bytes(bytes[1..9].try_into().unwrap()), body))
}
