//! The output of the encryption pipeline, cut into one region per chunk: a token made in memory
//! is a buffer of its exact size whose regions the encryption stage faults in ahead of the
//! encoder whenever the encoder is behind (a large new buffer costs one page fault per 4 KiB:
//! as much as the HMAC, at 256 MiB); a file has no regions to prepare.

use std::collections::VecDeque;
use std::io::{self, Write};

use super::base64::{CharSink, encode_into};
use super::format::HEADER_LEN;
use super::io::{StreamError, StringSink, WriteSink};
use super::pipeline::CHUNK;

/// Characters of the token made from one full chunk of ciphertext. The 25-byte header leaves
/// one byte over a 3-byte group, and a chunk (a multiple of 3) keeps it so: every full chunk
/// gives exactly this many characters.
const CHUNK_CHARS: usize = CHUNK / 3 * 4;
/// Characters of the header's first 24 bytes (the 25th goes with the first chunk).
const HEADER_CHARS: usize = HEADER_LEN / 3 * 4;

/// Where the chunks of a token go, as the encryption stage sees it.
pub(crate) trait Regions: Send {
    /// What the encoding stage needs to place one chunk's characters.
    type Region: Send;
    /// The region of the next chunk, in order.
    fn next_region(&mut self) -> Option<Self::Region>;
    /// Prepares a region ahead while the encoder is behind; `false` when there is nothing to
    /// prepare (then the encryption stage waits).
    fn fault_ahead(&mut self) -> bool;
}

/// A sink that is told where each chunk's characters go, as the encoding stage sees it.
pub(crate) trait RegionSink: CharSink {
    /// See [`Regions::Region`].
    type Region: Send;
    /// The next chunk's characters go to `region`.
    fn start_region(&mut self, region: Self::Region) -> Result<(), StreamError>;
    /// Checks, once the token is complete, that every character went where it should.
    fn check_complete(&self) -> Result<(), StreamError>;
}

/// A stream's output (a file) has no regions: chunks are written one after the other.
pub(crate) struct NoRegions;

impl Regions for NoRegions {
    type Region = ();

    fn next_region(&mut self) -> Option<()> {
        Some(())
    }

    fn fault_ahead(&mut self) -> bool {
        false
    }
}

impl<W: Write> RegionSink for WriteSink<W> {
    type Region = ();

    fn start_region(&mut self, (): ()) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_complete(&self) -> Result<(), StreamError> {
        Ok(())
    }
}

impl RegionSink for StringSink {
    type Region = ();

    fn start_region(&mut self, (): ()) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_complete(&self) -> Result<(), StreamError> {
        Ok(())
    }
}

/// Faults in the pages of a region of the output (one write per 4 KiB page), so that the
/// encoder, when it gets there, writes to memory that is already mapped.
fn touch(region: &mut [u8]) {
    for i in (0..region.len()).step_by(4096) {
        region[i] = 0;
    }
    std::hint::black_box(region);
}

/// The regions of a token buffer after its header: one per full chunk, then the tail (the last
/// chunk, the tag and the padding).
pub(crate) struct TokenRegions<'a> {
    regions: std::iter::Chain<std::slice::ChunksMut<'a, u8>, std::iter::Once<&'a mut [u8]>>,
    ahead: VecDeque<&'a mut [u8]>,
}

impl<'a> TokenRegions<'a> {
    /// Cuts `out` (exactly the token's length for a plaintext of `plaintext_len` bytes, see
    /// [`super::format::token_len`]) into the header's region and the chunks' regions;
    /// [`StreamError::Pipeline`] if `out` is too short for them (never wraps or panics).
    pub(crate) fn cut(
        out: &'a mut [u8],
        plaintext_len: usize,
    ) -> Result<(&'a mut [u8], Self), StreamError> {
        let full_chunks = plaintext_len / CHUNK;
        let middle_len = full_chunks.checked_mul(CHUNK_CHARS).ok_or(StreamError::Pipeline)?;
        let (head, rest) = out.split_at_mut_checked(HEADER_CHARS).ok_or(StreamError::Pipeline)?;
        let (middle, tail) = rest.split_at_mut_checked(middle_len).ok_or(StreamError::Pipeline)?;
        let regions = middle.chunks_mut(CHUNK_CHARS).chain(std::iter::once(tail));
        Ok((head, Self { regions, ahead: VecDeque::new() }))
    }

    /// Faults in the first `n` regions now (tests use it to take the path where the encoder
    /// finds regions already touched, which otherwise depends on timing).
    pub(crate) fn fault_first(&mut self, n: usize) {
        for _ in 0..n {
            if !self.fault_ahead() {
                break;
            }
        }
    }
}

impl<'a> Regions for TokenRegions<'a> {
    type Region = &'a mut [u8];

    fn next_region(&mut self) -> Option<&'a mut [u8]> {
        self.ahead.pop_front().or_else(|| self.regions.next())
    }

    fn fault_ahead(&mut self) -> bool {
        match self.regions.next() {
            Some(region) => {
                touch(region);
                self.ahead.push_back(region);
                true
            }
            None => false,
        }
    }
}

/// Encodes into consecutive regions of a buffer the size of the whole token: the region in use
/// is replaced as each chunk starts, and must be exactly filled by it.
pub(crate) struct BufferSink<'a> {
    region: &'a mut [u8],
    filled: usize,
}

impl<'a> BufferSink<'a> {
    /// A sink that starts with the header's region.
    pub(crate) fn new(head: &'a mut [u8]) -> Self {
        Self { region: head, filled: 0 }
    }
}

impl<'a> RegionSink for BufferSink<'a> {
    type Region = &'a mut [u8];

    fn start_region(&mut self, region: &'a mut [u8]) -> Result<(), StreamError> {
        self.check_complete()?;
        self.region = region;
        self.filled = 0;
        Ok(())
    }

    fn check_complete(&self) -> Result<(), StreamError> {
        if self.filled == self.region.len() { Ok(()) } else { Err(StreamError::Pipeline) }
    }
}

impl CharSink for BufferSink<'_> {
    fn encode(&mut self, raw: &[u8]) -> io::Result<()> {
        let end = self.filled + raw.len().div_ceil(3) * 4;
        let out = self
            .region
            .get_mut(self.filled..end)
            .ok_or_else(|| io::Error::other("token region overflow"))?;
        encode_into(raw, out)?;
        self.filled = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer too short for the plaintext's chunks is an error, never a wrapped length or a
    /// panic.
    #[test]
    fn cutting_a_buffer_too_short_is_an_error() {
        let mut out = vec![0u8; HEADER_CHARS + CHUNK_CHARS];
        assert!(TokenRegions::cut(&mut out, CHUNK).is_ok());
        assert!(TokenRegions::cut(&mut out, 2 * CHUNK).is_err());
        assert!(TokenRegions::cut(&mut out[..HEADER_CHARS - 1], 0).is_err());
        assert!(TokenRegions::cut(&mut out, usize::MAX).is_err());
    }
}
