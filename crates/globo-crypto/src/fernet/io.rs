//! Where token characters come from (a string, a file read in pieces) and where they go (a
//! string, a writer), and why such a stream fails.

use std::io::{self, Read, Write};

use super::base64::{CharSink, NotCanonical, encode_into};
use super::format::BLOCK;

/// Why a stream operation failed; the callers add the paths.
#[derive(Debug)]
pub(crate) enum StreamError {
    /// Reading the input failed.
    Read(io::Error),
    /// Writing the output failed.
    Write(io::Error),
    /// The token is not valid under any of the keys (one opaque reason).
    Decryption,
    /// A pipeline stage stopped without an error of its own (a thread panicked).
    Pipeline,
    /// The token would be longer than the address space allows.
    TooLarge,
}

impl From<NotCanonical> for StreamError {
    fn from(_: NotCanonical) -> Self {
        Self::Decryption
    }
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
pub(crate) fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Where the characters of a token come from.
pub(crate) trait CharSource {
    /// Exactly the next `n` characters; [`StreamError::Decryption`] if the input ends first (a
    /// truncated token, or a reader whose input ended, `Ok(0)`, before the length it was
    /// sized with). Never fewer: the decoder sizes every piece from `n`, so a short piece would
    /// shift where every later character is read from.
    fn take(&mut self, n: usize) -> Result<&[u8], StreamError>;
    /// Checks that nothing is left after the token (a file may end with one `\n`).
    fn finish(self) -> Result<(), StreamError>;
}

/// A token in memory.
pub(crate) struct SliceSource<'a> {
    rest: &'a [u8],
}

impl<'a> SliceSource<'a> {
    pub(crate) fn new(token: &'a [u8]) -> Self {
        Self { rest: token }
    }
}

impl CharSource for SliceSource<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], StreamError> {
        let (head, rest) = self.rest.split_at_checked(n).ok_or(StreamError::Decryption)?;
        self.rest = rest;
        Ok(head)
    }

    fn finish(self) -> Result<(), StreamError> {
        if self.rest.is_empty() { Ok(()) } else { Err(StreamError::Decryption) }
    }
}

/// A token read in pieces from a reader (a file), so the whole text is never in memory.
pub(crate) struct ReaderSource<R> {
    input: R,
    buf: Vec<u8>,
    /// Whether one `\n` must follow the token (the file's length says so).
    newline: bool,
}

impl<R: Read> ReaderSource<R> {
    pub(crate) fn new(input: R, newline: bool) -> Self {
        Self { input, buf: Vec::new(), newline }
    }
}

impl<R: Read> CharSource for ReaderSource<R> {
    fn take(&mut self, n: usize) -> Result<&[u8], StreamError> {
        self.buf.resize(n, 0);
        // `fill` stops early only where the input ends (`Ok(0)`): the token ends there, even if
        // a later read would return more (a file rewritten while it is read).
        let got = fill(&mut self.input, &mut self.buf).map_err(StreamError::Read)?;
        if got == n { Ok(&self.buf) } else { Err(StreamError::Decryption) }
    }

    fn finish(mut self) -> Result<(), StreamError> {
        // The file must end here: one `\n` if its length said so, then nothing (a file that
        // grew while it was read is refused).
        let mut rest = [0u8; 2];
        let got = fill(&mut self.input, &mut rest).map_err(StreamError::Read)?;
        let expected: &[u8] = if self.newline { b"\n" } else { b"" };
        if &rest[..got] == expected { Ok(()) } else { Err(StreamError::Decryption) }
    }
}

/// Encodes into a string allocated at the token's exact length. Appending to a `String`
/// directly spares a final pass to check that the whole token is ASCII.
pub(crate) struct StringSink {
    out: String,
}

impl StringSink {
    pub(crate) fn with_capacity(len: usize) -> Self {
        Self { out: String::with_capacity(len) }
    }

    pub(crate) fn into_string(self) -> String {
        self.out
    }
}

impl CharSink for StringSink {
    fn encode(&mut self, raw: &[u8]) -> io::Result<()> {
        base64_simd::URL_SAFE.encode_append(raw, &mut self.out);
        Ok(())
    }
}

/// Encodes into a scratch buffer and writes it out.
pub(crate) struct WriteSink<W: Write> {
    out: W,
    scratch: Vec<u8>,
}

impl<W: Write> WriteSink<W> {
    /// A sink whose scratch buffer holds the encoding of `chunk` bytes of ciphertext.
    pub(crate) fn new(out: W, chunk: usize) -> Self {
        Self { out, scratch: vec![0; (chunk + 2 * BLOCK).div_ceil(3) * 4 + 4] }
    }

    pub(crate) fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> CharSink for WriteSink<W> {
    fn encode(&mut self, raw: &[u8]) -> io::Result<()> {
        let needed = raw.len().div_ceil(3) * 4;
        if self.scratch.len() < needed {
            self.scratch.resize(needed, 0);
        }
        let chars = encode_into(raw, &mut self.scratch[..needed])?;
        self.out.write_all(chars)
    }
}
