//! Streaming Fernet: exactly the tokens of the whole-buffer format (see `token.rs`), produced and
//! checked in bounded working memory, and pipelined over threads for large inputs.
//!
//! A token is `base64(0x80 || timestamp || IV || AES-128-CBC(plaintext) || HMAC-SHA256)`, so it
//! can be made front to back: the header, then each chunk of plaintext encrypted in place,
//! authenticated and encoded as it goes, then the tag. Base64 works on 3-byte groups; the
//! encoder carries the 0 to 2 bytes that do not fill a group over to the next chunk, so the
//! characters do not depend on where the chunks fall.
//!
//! Decryption reads the token once, decoding it into one buffer of exactly the ciphertext's
//! size while the HMAC is computed, verifies the tag over the whole token, and only then
//! decrypts that buffer in place. Nothing is decrypted, let alone released, before the tag has
//! been checked, and the bytes decrypted are the very bytes authenticated (they are in memory,
//! not re-read from a file that could have changed in between). On any failure the buffer is
//! zeroized.
//!
//! Decoding is as strict as the whole-buffer decoder: quads are decoded independently, so the
//! token is decoded in pieces of whole quads; every quad but the last must decode to three
//! bytes (a `=` anywhere else is rejected), and the last one is decoded with the canonical
//! padding rules.

use std::io::{self, Read, Write};
use std::sync::mpsc::{TryRecvError, sync_channel};

use aes::cipher::consts::U16;
use aes::cipher::inout::InOutBuf;
use aes::cipher::{
    BlockDecryptMut as _, BlockEncryptMut as _, KeyIvInit as _, block_padding::Pkcs7,
};
use base64::Engine as _;
use hmac::Mac as _;
use zeroize::Zeroizing;

use crate::Key;
use crate::token::{
    Aes128CbcDec, Aes128CbcEnc, BLOCK, HEADER_LEN, HmacSha256, MAX_CLOCK_SKEW, STRICT_URL_SAFE,
    TAG_LEN, VERSION, mac,
};

/// Plaintext encrypted per step: a multiple of 48 (16-byte blocks and 3-byte base64 groups)
/// small enough that a chunk and its encoding stay in the L2 cache.
pub(crate) const CHUNK: usize = 48 * 2048;
/// Characters decoded per step (a multiple of 4): 96 KiB of bytes.
const PIECE_CHARS: usize = 4 * 32 * 1024;
/// Inputs at least this large are pipelined over threads; below it a thread costs more than
/// it saves.
pub(crate) const PARALLEL_MIN: usize = 1 << 20;
/// Buffers in flight between the pipeline stages.
const IN_FLIGHT: usize = 4;

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
}

/// The length of the token (in characters) for a plaintext of `len` bytes.
pub(crate) fn token_len(len: usize) -> usize {
    let raw = HEADER_LEN + (len / BLOCK + 1) * BLOCK + TAG_LEN;
    raw.div_ceil(3) * 4
}

/// Where encoded characters go.
pub(crate) trait CharSink {
    /// Appends the encoding of `raw` (a multiple of 3 bytes, except for the very last call).
    fn encode(&mut self, raw: &[u8]) -> io::Result<()>;
}

/// Encodes into a string allocated at the token's exact length. Appending to a `String`
/// directly spares a final pass to check that the whole token is ASCII: that check happens
/// piece by piece, in the encoding stage of the pipeline.
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
    pub(crate) fn new(out: W) -> Self {
        Self { out, scratch: vec![0; (CHUNK + 2 * BLOCK).div_ceil(3) * 4 + 4] }
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

/// Encodes `raw` (URL-safe base64, padded) into `out`, which must be exactly its encoded
/// length; returns the characters. Encoding uses the SIMD encoder (`base64-simd`, AVX2 or SSE
/// chosen at run time), several times faster than a scalar one; its output is the same
/// characters (tested against the reference construction, which encodes with `base64`).
fn encode_into<'o>(raw: &[u8], out: &'o mut [u8]) -> io::Result<&'o mut [u8]> {
    if out.len() != raw.len().div_ceil(3) * 4 {
        return Err(io::Error::other("base64 output buffer of the wrong size"));
    }
    Ok(base64_simd::URL_SAFE.encode(raw, base64_simd::Out::from_slice(out)))
}

/// Encodes into consecutive regions of a buffer the size of the whole token (see
/// [`encrypt_to_string`]): the region in use is replaced as each chunk starts, and must be
/// exactly filled by it.
struct RegionSink<'a> {
    region: &'a mut [u8],
    filled: usize,
}

impl<'a> RegionSink<'a> {
    fn new(region: &'a mut [u8]) -> Self {
        Self { region, filled: 0 }
    }

    /// Starts the next region, checking that the last one was exactly filled.
    fn next_region(&mut self, region: &'a mut [u8]) -> Result<(), StreamError> {
        self.check_full()?;
        self.region = region;
        self.filled = 0;
        Ok(())
    }

    fn check_full(&self) -> Result<(), StreamError> {
        if self.filled == self.region.len() { Ok(()) } else { Err(StreamError::Pipeline) }
    }
}

impl CharSink for RegionSink<'_> {
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

/// Incremental base64: carries the bytes that do not complete a 3-byte group to the next call.
struct Base64Stream<S> {
    sink: S,
    carry: [u8; 3],
    carry_len: usize,
}

impl<S: CharSink> Base64Stream<S> {
    fn new(sink: S) -> Self {
        Self { sink, carry: [0; 3], carry_len: 0 }
    }

    fn push(&mut self, mut raw: &[u8]) -> io::Result<()> {
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

    fn finish(mut self) -> io::Result<S> {
        if self.carry_len > 0 {
            self.sink.encode(&self.carry[..self.carry_len])?;
        }
        Ok(self.sink)
    }
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

/// How [`encrypt_stream`] uses threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EncryptMode {
    /// One thread (small inputs: a thread costs more than it saves).
    Serial,
    /// Two threads: encryption and the HMAC on one, encoding and writing on the other (writing
    /// a file costs about as much as the HMAC: measured, 256 MiB to a file takes 0.53 s so
    /// against 0.70 s with the HMAC beside the encoding).
    MacWhileEncrypting,
}

/// One chunk of ciphertext (the plaintext is encrypted in place: the buffer is zeroized when
/// dropped, as it held plaintext).
struct Chunk {
    buf: Zeroizing<Vec<u8>>,
    len: usize,
    last: bool,
}

/// Reads the next chunk of plaintext into `buf` and encrypts it in place (padding the last).
fn encrypt_next(
    cipher: &mut Aes128CbcEnc,
    input: &mut impl Read,
    mut buf: Zeroizing<Vec<u8>>,
    chunk: usize,
) -> Result<Chunk, StreamError> {
    buf.resize(chunk + BLOCK, 0);
    let n = fill(input, &mut buf[..chunk]).map_err(StreamError::Read)?;
    let last = n < chunk;
    let len = if last {
        // PKCS#7: 1 to 16 bytes, each holding the pad length.
        let pad = BLOCK - n % BLOCK;
        buf[n..n + pad].fill(pad as u8);
        n + pad
    } else {
        n
    };
    let (blocks, _) = InOutBuf::from(&mut buf[..len]).into_chunks::<U16>();
    cipher.encrypt_blocks_inout_mut(blocks);
    Ok(Chunk { buf, len, last })
}

/// A token's header, and the HMAC (already fed the header) and cipher that continue it.
fn start_token(
    key: &Key,
    iv: &[u8; 16],
    timestamp: u64,
) -> ([u8; HEADER_LEN], HmacSha256, Aes128CbcEnc) {
    let mut header = [0u8; HEADER_LEN];
    header[0] = VERSION;
    header[1..9].copy_from_slice(&timestamp.to_be_bytes());
    header[9..].copy_from_slice(iv);
    let mut hmac = mac(key);
    hmac.update(&header);
    (header, hmac, Aes128CbcEnc::new(key.encryption().into(), iv.into()))
}

/// Encrypts everything `input` yields into a token for `sink`, with the given timestamp and IV.
///
/// `size_hint`, the expected plaintext size if known, only sizes the buffers (a small input
/// needs no 96 KiB buffer to fill and zeroize). `mode`: one thread, or two (see
/// [`EncryptMode`]) passing chunks along; the token is the same.
pub(crate) fn encrypt_stream<R: Read + Send, S: CharSink>(
    key: &Key,
    iv: &[u8; 16],
    timestamp: u64,
    input: &mut R,
    sink: S,
    size_hint: Option<usize>,
    mode: EncryptMode,
) -> Result<S, StreamError> {
    // A multiple of 48 larger than the expected size, so that one read finds the end.
    let chunk_len = size_hint.map_or(CHUNK, |n| CHUNK.min((n / 48 + 1) * 48));
    let (header, mut hmac, mut cipher) = start_token(key, iv, timestamp);
    let mut b64 = Base64Stream::new(sink);
    b64.push(&header).map_err(StreamError::Write)?;

    if mode == EncryptMode::Serial {
        let mut buf = Zeroizing::new(Vec::with_capacity(chunk_len + BLOCK));
        loop {
            let chunk = encrypt_next(&mut cipher, input, buf, chunk_len)?;
            hmac.update(&chunk.buf[..chunk.len]);
            b64.push(&chunk.buf[..chunk.len]).map_err(StreamError::Write)?;
            if chunk.last {
                break;
            }
            buf = chunk.buf;
        }
        b64.push(&hmac.finalize().into_bytes()).map_err(StreamError::Write)?;
        return b64.finish().map_err(StreamError::Write);
    }

    // Two stages, one per core: reading, encrypting (CBC is sequential by nature) and
    // authenticating each chunk on a second thread; encoding and writing on this one.
    std::thread::scope(|scope| {
        let (free_tx, free_rx) = sync_channel::<Zeroizing<Vec<u8>>>(IN_FLIGHT);
        let (done_tx, done_rx) = sync_channel::<Chunk>(IN_FLIGHT);
        for _ in 0..IN_FLIGHT {
            // Cannot fail: the channel has room for IN_FLIGHT buffers and its receiver is alive.
            let _ = free_tx.send(Zeroizing::new(Vec::with_capacity(chunk_len + BLOCK)));
        }
        let producer = scope.spawn(move || -> Result<_, StreamError> {
            // Stops quietly when the encoder has gone (its error is the one reported).
            while let Ok(buf) = free_rx.recv() {
                let chunk = encrypt_next(&mut cipher, input, buf, chunk_len)?;
                hmac.update(&chunk.buf[..chunk.len]);
                let last = chunk.last;
                if done_tx.send(chunk).is_err() {
                    break;
                }
                if last {
                    return Ok(Some(hmac));
                }
            }
            Ok(None)
        });
        let encoded = (move || -> Result<_, StreamError> {
            while let Ok(chunk) = done_rx.recv() {
                b64.push(&chunk.buf[..chunk.len]).map_err(StreamError::Write)?;
                if chunk.last {
                    return Ok(b64);
                }
                let _ = free_tx.send(chunk.buf);
            }
            // The producer stopped early: its error explains why.
            Err(StreamError::Pipeline)
        })();
        // The encoder's channel ends are dropped here, so the producer cannot block.
        let hmac = producer.join().unwrap_or(Err(StreamError::Pipeline))?;
        let hmac = hmac.ok_or(StreamError::Pipeline)?;
        let mut b64 = encoded?;
        b64.push(&hmac.finalize().into_bytes()).map_err(StreamError::Write)?;
        b64.finish().map_err(StreamError::Write)
    })
}

/// Characters of the token made from one full chunk of ciphertext. The 25-byte header leaves
/// one byte over a 3-byte group, and a chunk (a multiple of 3) keeps it so: every full chunk
/// gives exactly this many characters.
const CHUNK_CHARS: usize = CHUNK / 3 * 4;
/// Characters of the header's first 24 bytes (the 25th goes with the first chunk).
const HEADER_CHARS: usize = HEADER_LEN / 3 * 4;

/// Faults in the pages of a region of the output (one write per 4 KiB page), so that the
/// encoder, when it gets there, writes to memory that is already mapped.
fn touch(region: &mut [u8]) {
    for i in (0..region.len()).step_by(4096) {
        region[i] = 0;
    }
    std::hint::black_box(region);
}

/// Encrypts `plaintext` into a token in memory, with the given timestamp and IV.
///
/// Small inputs take one thread (the streaming encoder, appending to a string of the token's
/// exact length). From [`PARALLEL_MIN`] the work is split over two threads:
///
/// - this thread authenticates each chunk of ciphertext (HMAC) and encodes it into its own
///   region of a buffer allocated at the token's exact size (zeroed by the kernel, not
///   touched until written);
/// - a second thread encrypts the chunks (AES-CBC, sequential by nature) and, whenever the
///   encoder is behind and no buffer is free, faults in the pages of the regions ahead (a
///   large new buffer costs one page fault per 4 KiB: as much as the HMAC, at 256 MiB). The
///   two stages so balance themselves.
///
/// The regions are the token's characters cut where the chunks fall, so the result is the
/// same token, character for character (tested against the whole-buffer construction at every
/// boundary). The buffer becomes the returned `String` after one check that it is ASCII.
pub(crate) fn encrypt_to_string(
    key: &Key,
    iv: &[u8; 16],
    timestamp: u64,
    plaintext: &[u8],
) -> Result<String, StreamError> {
    encrypt_to_string_touching(key, iv, timestamp, plaintext, 0)
}

/// [`encrypt_to_string`], whose encryption thread first faults in `touch_first` regions ahead
/// (tests use it to take the path where the encoder finds regions already touched, which
/// otherwise depends on timing).
fn encrypt_to_string_touching(
    key: &Key,
    iv: &[u8; 16],
    timestamp: u64,
    plaintext: &[u8],
    touch_first: usize,
) -> Result<String, StreamError> {
    let total = token_len(plaintext.len());
    let mut input = plaintext;
    if plaintext.len() < PARALLEL_MIN {
        let sink = StringSink::with_capacity(total);
        let hint = Some(plaintext.len());
        return encrypt_stream(key, iv, timestamp, &mut input, sink, hint, EncryptMode::Serial)
            .map(StringSink::into_string);
    }

    let (header, mut hmac, mut cipher) = start_token(key, iv, timestamp);

    // Zeroed memory from the allocator (`calloc`): for a large buffer, fresh pages that cost
    // nothing until first written.
    let mut out = vec![0u8; total];
    let full_chunks = plaintext.len() / CHUNK;
    let (head, rest) = out.split_at_mut(HEADER_CHARS);
    let (middle, tail) = rest.split_at_mut(full_chunks * CHUNK_CHARS);
    let mut regions = middle.chunks_mut(CHUNK_CHARS).chain(std::iter::once(tail));

    let mut b64 = Base64Stream::new(RegionSink::new(head));
    b64.push(&header).map_err(StreamError::Write)?;

    std::thread::scope(|scope| {
        let (free_tx, free_rx) = sync_channel::<Zeroizing<Vec<u8>>>(IN_FLIGHT);
        let (done_tx, done_rx) = sync_channel::<(Chunk, &mut [u8])>(IN_FLIGHT);
        for _ in 0..IN_FLIGHT {
            // Cannot fail: the channel has room for IN_FLIGHT buffers and its receiver is alive.
            let _ = free_tx.send(Zeroizing::new(Vec::with_capacity(CHUNK + BLOCK)));
        }
        let producer = scope.spawn(move || -> Result<(), StreamError> {
            let mut ahead = std::collections::VecDeque::new();
            for region in regions.by_ref().take(touch_first) {
                touch(region);
                ahead.push_back(region);
            }
            loop {
                // A free buffer; while there is none, the encoder is behind: fault in pages
                // ahead of it instead of waiting.
                let buf = loop {
                    match free_rx.try_recv() {
                        Ok(buf) => break buf,
                        Err(TryRecvError::Disconnected) => return Ok(()),
                        Err(TryRecvError::Empty) => match regions.next() {
                            Some(region) => {
                                touch(region);
                                ahead.push_back(region);
                            }
                            None => match free_rx.recv() {
                                Ok(buf) => break buf,
                                Err(_) => return Ok(()),
                            },
                        },
                    }
                };
                let chunk = encrypt_next(&mut cipher, &mut input, buf, CHUNK)?;
                let region = ahead.pop_front().or_else(|| regions.next());
                let region = region.ok_or(StreamError::Pipeline)?;
                let last = chunk.last;
                // Stops quietly when the encoder has gone (its error is the one reported).
                if done_tx.send((chunk, region)).is_err() || last {
                    return Ok(());
                }
            }
        });
        let encoded = (move || -> Result<(), StreamError> {
            while let Ok((chunk, region)) = done_rx.recv() {
                b64.sink.next_region(region)?;
                let ciphertext = &chunk.buf[..chunk.len];
                hmac.update(ciphertext);
                b64.push(ciphertext).map_err(StreamError::Write)?;
                if chunk.last {
                    b64.push(&hmac.finalize().into_bytes()).map_err(StreamError::Write)?;
                    return b64.finish().map_err(StreamError::Write)?.check_full();
                }
                let _ = free_tx.send(chunk.buf);
            }
            // The producer stopped early: its error explains why.
            Err(StreamError::Pipeline)
        })();
        // The encoder's channel ends are dropped here, so the producer cannot block.
        producer.join().unwrap_or(Err(StreamError::Pipeline))?;
        encoded
    })?;
    String::from_utf8(out).map_err(|_| StreamError::Pipeline)
}

/// Where the characters of a token come from.
pub(crate) trait CharSource {
    /// The next `n` characters (fewer only at the end of the input).
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
        let (head, rest) = self.rest.split_at(n.min(self.rest.len()));
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
        let got = fill(&mut self.input, &mut self.buf).map_err(StreamError::Read)?;
        Ok(&self.buf[..got])
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

/// Decodes a whole number of quads with no padding into `out` (exactly `chars / 4 * 3` bytes).
fn decode_full_quads(chars: &[u8], out: &mut [u8]) -> Result<(), StreamError> {
    if !chars.len().is_multiple_of(4) || chars.len() / 4 * 3 != out.len() {
        return Err(StreamError::Decryption);
    }
    match STRICT_URL_SAFE.decode_slice(chars, out) {
        Ok(n) if n == out.len() => Ok(()),
        _ => Err(StreamError::Decryption),
    }
}

/// The length in bytes of the only structurally valid token `chars` characters long, if any:
/// `chars / 4 * 3` minus 0 to 2 padding bytes, at least one block, a whole number of blocks.
fn raw_len(chars: usize) -> Option<usize> {
    if !chars.is_multiple_of(4) {
        return None;
    }
    let max = chars / 4 * 3;
    (max.saturating_sub(2)..=max).find(|&n| {
        n >= HEADER_LEN + BLOCK + TAG_LEN && (n - HEADER_LEN - TAG_LEN).is_multiple_of(BLOCK)
    })
}

/// Reads a token's timestamp and ciphertext length from `source` (`chars` characters) without
/// decrypting it or holding it in memory: the structure and every quad are checked exactly as
/// [`decrypt_stream`] decodes them (and as the whole-token [`crate::inspect`] does), in pieces.
pub(crate) fn inspect_stream(
    chars: usize,
    mut source: impl CharSource,
) -> Result<(u64, usize), StreamError> {
    let n_raw = raw_len(chars).ok_or(StreamError::Decryption)?;
    let mut first = [0u8; 27];
    decode_full_quads(source.take(36)?, &mut first)?;
    if first[0] != VERSION {
        return Err(StreamError::Decryption);
    }
    let mut timestamp = [0u8; 8];
    timestamp.copy_from_slice(&first[1..9]);
    let mut scratch = vec![0u8; PIECE_CHARS / 4 * 3];
    let middle_chars = chars - 40;
    let mut left = middle_chars;
    while left > 0 {
        let n = left.min(PIECE_CHARS);
        decode_full_quads(source.take(n)?, &mut scratch[..n / 4 * 3])?;
        left -= n;
    }
    // The last quad, canonically, giving exactly the bytes the length calls for.
    let last_len = n_raw - HEADER_LEN - 2 - middle_chars / 4 * 3;
    let mut last = [0u8; 3];
    match STRICT_URL_SAFE.decode_slice(source.take(4)?, &mut last) {
        Ok(n) if n == last_len => {}
        _ => return Err(StreamError::Decryption),
    }
    source.finish()?;
    Ok((u64::from_be_bytes(timestamp), n_raw - HEADER_LEN - TAG_LEN))
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

/// Decodes the body of a token (ciphertext and tag) into `body`, handing each decoded piece,
/// in order, to `emit` (which returns `false` to stop).
fn decode_body<'b, S: CharSource>(
    source: &mut S,
    first: &[u8; 27],
    body: &'b mut [u8],
    middle_chars: usize,
    emit: &mut impl FnMut(&'b [u8]) -> bool,
) -> Result<(), StreamError> {
    let (head, mut rest) = body.split_at_mut(2);
    head.copy_from_slice(&first[HEADER_LEN..]);
    let mut ok = emit(head);
    let mut left = middle_chars;
    while ok && left > 0 {
        let n = left.min(PIECE_CHARS);
        let (piece, after) = std::mem::take(&mut rest).split_at_mut(n / 4 * 3);
        rest = after;
        decode_full_quads(source.take(n)?, piece)?;
        ok = emit(piece);
        left -= n;
    }
    // The last quad is the only one that may hold padding; it is decoded canonically.
    let mut last = [0u8; 3];
    match STRICT_URL_SAFE.decode_slice(source.take(4)?, &mut last) {
        Ok(n) if ok && rest.len() == n => rest.copy_from_slice(&last[..n]),
        _ => return Err(StreamError::Decryption),
    }
    if emit(rest) { Ok(()) } else { Err(StreamError::Decryption) }
}

/// Decrypts a token of `chars` characters from `source` with the first of `keys` whose tag
/// matches, checking the age against `(max_age, now)` when given (as Python `cryptography`).
///
/// `parallel`: authenticate on a second thread while this one decodes.
pub(crate) fn decrypt_stream(
    keys: &[Key],
    age: Option<(u64, u64)>,
    chars: usize,
    mut source: impl CharSource,
    parallel: bool,
) -> Result<Zeroizing<Vec<u8>>, StreamError> {
    let n_raw = raw_len(chars).ok_or(StreamError::Decryption)?;
    // The first 36 characters are the 25-byte header and the first 2 bytes of ciphertext;
    // every later character then falls on a quad boundary of the body.
    let mut first = [0u8; 27];
    decode_full_quads(source.take(36)?, &mut first)?;
    if first[0] != VERSION {
        return Err(StreamError::Decryption);
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&first[..HEADER_LEN]);

    // Ciphertext and tag, decoded in place: exactly their size, never reallocated. A length
    // that cannot be allocated is an operational failure, not a crash.
    let mut body = Zeroizing::new(Vec::new());
    body.try_reserve_exact(n_raw - HEADER_LEN)
        .map_err(|_| StreamError::Read(io::ErrorKind::OutOfMemory.into()))?;
    body.resize(n_raw - HEADER_LEN, 0);
    let middle_chars = chars - 40;
    let mut auth = Authenticator {
        macs: keys
            .iter()
            .map(|k| {
                let mut m = mac(k);
                m.update(&header);
                m
            })
            .collect(),
        remaining: n_raw - HEADER_LEN - TAG_LEN,
    };

    let auth = if parallel {
        std::thread::scope(|scope| {
            let (tx, rx) = sync_channel::<&[u8]>(IN_FLIGHT * 4);
            let authenticator = scope.spawn(move || {
                while let Ok(piece) = rx.recv() {
                    auth.update(piece);
                }
                auth
            });
            let decoded = decode_body(&mut source, &first, &mut body, middle_chars, &mut |p| {
                tx.send(p).is_ok()
            });
            drop(tx);
            let auth = authenticator.join().map_err(|_| StreamError::Pipeline);
            decoded.and(auth)
        })?
    } else {
        decode_body(&mut source, &first, &mut body, middle_chars, &mut |p| {
            auth.update(p);
            true
        })?;
        auth
    };
    source.finish()?;

    if let Some((max_age, now)) = age {
        let timestamp = u64::from_be_bytes(header[1..9].try_into().unwrap_or_default());
        if timestamp.saturating_add(max_age) < now || now.saturating_add(MAX_CLOCK_SKEW) < timestamp
        {
            return Err(StreamError::Decryption);
        }
    }
    let ct_len = body.len() - TAG_LEN;
    let tag = &body[ct_len..];
    // Every key's tag is checked (in constant time each), so the time taken does not say which.
    let mut matched = None;
    for (key, m) in keys.iter().zip(auth.macs) {
        if m.verify_slice(tag).is_ok() && matched.is_none() {
            matched = Some(key);
        }
    }
    let key = matched.ok_or(StreamError::Decryption)?;
    body.truncate(ct_len);
    let iv: [u8; 16] = header[9..].try_into().map_err(|_| StreamError::Decryption)?;
    let len = Aes128CbcDec::new(key.encryption().into(), (&iv).into())
        .decrypt_padded_mut::<Pkcs7>(&mut body)
        .map_err(|_| StreamError::Decryption)?
        .len();
    body.truncate(len);
    Ok(body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    //! The streaming path against the whole-buffer reference construction, at the sizes where
    //! chunks, blocks and base64 groups meet, in serial and pipelined mode, and the fernet/spec
    //! vectors through it.

    use super::*;
    use crate::token::encrypt_reference;

    fn random(len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        getrandom::fill(&mut v).unwrap();
        v
    }

    /// Sizes around every boundary: blocks, base64 groups, chunks, pieces, the parallel limit.
    fn boundary_sizes() -> Vec<usize> {
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

    const MODES: [EncryptMode; 2] = [EncryptMode::Serial, EncryptMode::MacWhileEncrypting];

    fn stream_token(key: &Key, plaintext: &[u8], iv: &[u8; 16], mode: EncryptMode) -> String {
        let mut input = plaintext;
        let sink = StringSink::with_capacity(token_len(plaintext.len()));
        let out =
            encrypt_stream(key, iv, 1_234, &mut input, sink, None, mode).unwrap().into_string();
        assert_eq!(out.len(), token_len(plaintext.len()), "token_len is exact");
        assert_eq!(out.capacity(), out.len(), "never reallocated");
        out
    }

    fn writer_token(key: &Key, plaintext: &[u8], iv: &[u8; 16], mode: EncryptMode) -> String {
        let mut input = plaintext;
        let sink = WriteSink::new(Vec::new());
        // The exact size as the hint here; none in `stream_token`.
        let hint = Some(plaintext.len());
        let out =
            encrypt_stream(key, iv, 1_234, &mut input, sink, hint, mode).unwrap().into_inner();
        String::from_utf8(out).unwrap()
    }

    fn decrypt_both_ways(key: &Key, token: &str) -> Vec<Result<Zeroizing<Vec<u8>>, StreamError>> {
        let mut results = Vec::new();
        for parallel in [false, true] {
            let source = SliceSource::new(token.as_bytes());
            results.push(decrypt_stream(
                std::slice::from_ref(key),
                None,
                token.len(),
                source,
                parallel,
            ));
            let reader = ReaderSource::new(token.as_bytes(), false);
            results.push(decrypt_stream(
                std::slice::from_ref(key),
                None,
                token.len(),
                reader,
                parallel,
            ));
        }
        results
    }

    #[test]
    fn same_tokens_as_the_whole_buffer_construction() {
        let key = Key::generate().unwrap();
        for size in boundary_sizes() {
            let plaintext = random(size);
            let iv: [u8; 16] = random(16).try_into().unwrap();
            let reference = encrypt_reference(&key, &plaintext, 1_234, &iv);
            for mode in MODES {
                assert_eq!(stream_token(&key, &plaintext, &iv, mode), reference, "{size}");
                assert_eq!(writer_token(&key, &plaintext, &iv, mode), reference, "{size}");
            }
            assert_eq!(token_len(size), reference.len());
            for touch_first in [0, 3, usize::MAX] {
                let token = encrypt_to_string_touching(&key, &iv, 1_234, &plaintext, touch_first);
                let token = token.unwrap();
                assert_eq!(token, reference, "{size} {touch_first}");
                assert_eq!(token.capacity(), token.len(), "{size}: never reallocated");
            }
            for result in decrypt_both_ways(&key, &reference) {
                assert!(result.unwrap().as_slice() == plaintext.as_slice(), "{size}");
            }
        }
    }

    /// A reader that returns a few bytes at a time, as pipes and sockets do.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = self.1 % 7 + 1;
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn short_reads_change_nothing() {
        let key = Key::generate().unwrap();
        let plaintext = random(CHUNK + 1_000);
        let iv = [3u8; 16];
        let reference = encrypt_reference(&key, &plaintext, 1_234, &iv);
        let mut input = Trickle(&plaintext, 0);
        // A wrong size hint (files grow) only makes the chunks small.
        let sink = WriteSink::new(Vec::new());
        let mode = EncryptMode::MacWhileEncrypting;
        let out = encrypt_stream(&key, &iv, 1_234, &mut input, sink, Some(10), mode)
            .unwrap()
            .into_inner();
        assert_eq!(out, reference.as_bytes());
        let source = ReaderSource::new(Trickle(reference.as_bytes(), 0), false);
        let plain = decrypt_stream(&[key], None, reference.len(), source, true).unwrap();
        assert!(plain.as_slice() == plaintext.as_slice());
    }

    #[test]
    fn spec_vectors_through_the_stream() {
        let vectors = globo_testkit::load_vectors("fernet/generate.json");
        for v in vectors.as_array().unwrap() {
            let key = Key::from_base64(v["secret"].as_str().unwrap()).unwrap();
            let token = v["token"].as_str().unwrap();
            let src = v["src"].as_str().unwrap().as_bytes();
            let iv: Vec<u8> =
                v["iv"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
            let iv: [u8; 16] = iv.try_into().unwrap();
            let timestamp = crate::inspect(token).unwrap().timestamp;
            for mode in MODES {
                let mut input = src;
                let sink = StringSink::with_capacity(token_len(src.len()));
                let out = encrypt_stream(&key, &iv, timestamp, &mut input, sink, None, mode)
                    .unwrap()
                    .into_string();
                assert_eq!(out, token);
            }
            for result in decrypt_both_ways(&key, token) {
                assert_eq!(result.unwrap().as_slice(), src);
            }
        }
        let invalid = globo_testkit::load_vectors("fernet/invalid.json");
        for v in invalid.as_array().unwrap() {
            let key = Key::from_base64(v["secret"].as_str().unwrap()).unwrap();
            let token = v["token"].as_str().unwrap();
            // The invalid vectors that fail only on age are checked with the vector's clock
            // by token.rs; here: everything else must fail without an age check too.
            let expired = v["desc"].as_str().unwrap().contains("expired")
                || v["desc"].as_str().unwrap().contains("far-future");
            if !expired {
                for result in decrypt_both_ways(&key, token) {
                    assert!(matches!(result, Err(StreamError::Decryption)), "{}", v["desc"]);
                }
            }
        }
    }

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
                    for result in decrypt_both_ways(&key, &t) {
                        assert!(matches!(result, Err(StreamError::Decryption)), "{size} {i}");
                    }
                }
            }
            for cut in [&token[..n - 4], &token[4..]] {
                for result in decrypt_both_ways(&key, cut) {
                    assert!(matches!(result, Err(StreamError::Decryption)));
                }
            }
        }
    }

    /// The streaming inspection accepts and reports exactly what the whole-token one does,
    /// at every boundary size and for tokens changed anywhere.
    #[test]
    fn streaming_inspection_agrees_with_the_whole_token() {
        let key = Key::generate().unwrap();
        let whole = |t: &str| crate::inspect(t).ok().map(|i| (i.timestamp, i.ciphertext_len));
        let streamed = |t: &str| {
            let a = inspect_stream(t.len(), SliceSource::new(t.as_bytes())).ok();
            let b = inspect_stream(t.len(), ReaderSource::new(t.as_bytes(), false)).ok();
            assert_eq!(a, b, "{t:.40}");
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
        let token = encrypt_reference(&key, b"x", 9, &[1; 16]);
        let with_nl = format!("{token}\n");
        let ok = ReaderSource::new(with_nl.as_bytes(), true);
        assert!(decrypt_stream(std::slice::from_ref(&key), None, token.len(), ok, false).is_ok());
        for (text, newline) in
            [(format!("{token}\n\n"), true), (format!("{token}\r"), true), (with_nl, false)]
        {
            let source = ReaderSource::new(text.as_bytes(), newline);
            let result =
                decrypt_stream(std::slice::from_ref(&key), None, token.len(), source, false);
            assert!(matches!(result, Err(StreamError::Decryption)), "{text:?}");
        }
    }
}
