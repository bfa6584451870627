//! JSON read and printed exactly as Python's `json` module does it.
//!
//! The lab prints its decrypted configuration with
//! `print(json.dumps(json.loads(plaintext), indent=2))`. [`python_pretty`] returns the same text,
//! byte for byte, for every document Python accepts, and an error for every document it
//! refuses:
//!
//! ```
//! let shown = globo_json::python_pretty(br#"{"id": 123456789012345678901234567890, "ratio": 1e16,
//!     "owner": "Zo\u00eb", "id": 7}"#)?;
//! assert_eq!(*shown, "{\n  \"id\": 7,\n  \"ratio\": 1e+16,\n  \"owner\": \"Zo\\u00eb\"\n}");
//! # Ok::<(), globo_json::JsonError>(())
//! ```
//!
//! What "exactly" covers, each point checked against CPython by the differential test
//! (`tests/python_differential.rs`):
//! - **Numbers**: integers of any size are printed digit for digit (`serde_json` and every
//!   `f64`-based printer round them); Python's limit of 4,300 digits per integer
//!   ([`JsonError::IntegerTooLong`]) holds. Numbers with a fraction or an exponent are
//!   Python floats: parsed with correct rounding and printed as `float.__repr__` does (shortest
//!   round-trip digits; exponent form `1e+16`, `1e-05` outside 1e-4 <= |x| < 1e16, otherwise
//!   `1000000000000000.0`), overflowing to `Infinity`. `NaN`, `Infinity` and `-Infinity` are
//!   read and written as Python does; `-0` is the integer `0`.
//! - **Strings**: `ensure_ascii`: everything outside printable ASCII is escaped as lowercase
//!   `\uXXXX` (astral characters as a surrogate pair, DEL as `\u007f`); `\n`, `\t`... keep their
//!   short escapes; `/` is not escaped. Lone surrogates (`"\ud800"`, or encoded in the bytes,
//!   which Python decodes with `surrogatepass`) are kept. Control characters inside strings
//!   are refused (Python's `strict=True`).
//! - **Objects**: key order kept; a duplicate key keeps its first position and takes the last
//!   value, as a Python `dict` does.
//! - **Encodings**: Python's `json.detect_encoding`: UTF-8 (a byte-order mark is skipped),
//!   UTF-16 and UTF-32 by byte-order mark or by the position of zero bytes.
//! - **Layout**: `indent=2`, `", "` becomes `","` at line ends, `": "` after keys, `{}` and `[]`
//!   for empty containers, no trailing newline (`print` adds it).
//!
//! One deliberate difference: nesting deeper than [`MAX_DEPTH`] levels is refused with
//! [`JsonError::TooDeep`], where Python fails with a `RecursionError` at about 995 levels (the
//! exact figure depends on its call stack).
//!
//! Every copy of the content this crate makes (the decoded text, the parsed tree, the output)
//! is zeroized when dropped, and buffers are allocated at their final size (or an upper bound
//! of it) so that no reallocation leaves a stale copy behind. Errors give a position, never
//! content.
#![forbid(unsafe_code)]

mod error;

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};

use zeroize::{Zeroize, Zeroizing};

pub use error::JsonError;

/// The deepest nesting of arrays and objects read (Python stops at about 995).
pub const MAX_DEPTH: usize = 900;

/// The most digits an integer may have: Python's default `sys.get_int_max_str_digits()`.
pub const MAX_INT_DIGITS: usize = 4300;

/// `json.dumps(json.loads(input), indent=2)` as CPython computes it (see the [crate
/// docs](crate) for what that covers). The result has no trailing newline.
pub fn python_pretty(input: &[u8]) -> Result<Zeroizing<String>, JsonError> {
    let text = decode(input)?;
    let mut parser = Parser { s: &text, pos: 0 };
    parser.skip_ws();
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != text.len() {
        return Err(parser.syntax("extra data"));
    }
    let mut out = Zeroizing::new(String::with_capacity(value.printed_len(0)));
    value.print(0, &mut out);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Bytes to code points (Python's json.detect_encoding + bytes.decode(..., 'surrogatepass')).

/// The text as code points; surrogates (U+D800..U+DFFF) may appear alone, as in Python.
fn decode(b: &[u8]) -> Result<Zeroizing<Vec<u32>>, JsonError> {
    let (encoding, body): (&'static str, &[u8]) = if b.starts_with(&[0, 0, 0xfe, 0xff]) {
        ("utf-32-be", &b[4..])
    } else if b.starts_with(&[0xff, 0xfe, 0, 0]) {
        ("utf-32-le", &b[4..])
    } else if b.starts_with(&[0xfe, 0xff]) {
        ("utf-16-be", &b[2..])
    } else if b.starts_with(&[0xff, 0xfe]) {
        ("utf-16-le", &b[2..])
    } else if b.starts_with(&[0xef, 0xbb, 0xbf]) {
        ("utf-8", &b[3..])
    } else if b.len() >= 4 {
        match (b[0], b[1], b[2], b[3]) {
            (0, 0, _, _) => ("utf-32-be", b),
            (0, _, _, _) => ("utf-16-be", b),
            (_, 0, 0, 0) => ("utf-32-le", b),
            (_, 0, _, _) => ("utf-16-le", b),
            _ => ("utf-8", b),
        }
    } else if b.len() == 2 && b[0] == 0 {
        ("utf-16-be", b)
    } else if b.len() == 2 && b[1] == 0 {
        ("utf-16-le", b)
    } else {
        ("utf-8", b)
    };
    let skipped = b.len() - body.len();
    let bad = |at: usize| JsonError::Encoding { encoding, offset: skipped + at };
    let mut out = Zeroizing::new(Vec::with_capacity(body.len()));
    match encoding {
        "utf-8" => decode_utf8(body, &mut out).map_err(bad)?,
        "utf-16-be" | "utf-16-le" => {
            let big = encoding == "utf-16-be";
            let mut units = body.chunks_exact(2);
            let unit = |c: &[u8]| {
                if big {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            };
            let mut at = 0;
            while let Some(c) = units.next() {
                let u = u32::from(unit(c));
                // A high surrogate followed by a low one is one character; any other
                // surrogate passes through alone ('surrogatepass').
                if (0xd800..0xdc00).contains(&u)
                    && let Some(next) = units.clone().next()
                    && (0xdc00..0xe000).contains(&u32::from(unit(next)))
                {
                    units.next();
                    out.push(0x10000 + ((u - 0xd800) << 10) + (u32::from(unit(next)) - 0xdc00));
                    at += 4;
                    continue;
                }
                out.push(u);
                at += 2;
            }
            if !units.remainder().is_empty() {
                return Err(bad(at));
            }
        }
        _ => {
            let big = encoding == "utf-32-be";
            let mut units = body.chunks_exact(4);
            for (i, c) in units.by_ref().enumerate() {
                let u = if big {
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                } else {
                    u32::from_le_bytes([c[0], c[1], c[2], c[3]])
                };
                if u > 0x10ffff {
                    return Err(bad(i * 4));
                }
                out.push(u);
            }
            if !units.remainder().is_empty() {
                return Err(bad(body.len() - units.remainder().len()));
            }
        }
    }
    Ok(out)
}

/// Strict UTF-8 (no overlong forms, nothing above U+10FFFF) that also accepts encoded
/// surrogates, as Python's `surrogatepass` does. Returns the offset of the first bad byte.
fn decode_utf8(b: &[u8], out: &mut Vec<u32>) -> Result<(), usize> {
    let mut i = 0;
    let cont = |i: usize| b.get(i).filter(|&&c| c & 0xc0 == 0x80).map(|&c| u32::from(c & 0x3f));
    while i < b.len() {
        let c = b[i];
        let (cp, len) = match c {
            0x00..=0x7f => (u32::from(c), 1),
            0xc2..=0xdf => (((u32::from(c) & 0x1f) << 6) | cont(i + 1).ok_or(i)?, 2),
            0xe0..=0xef => {
                let cp = ((u32::from(c) & 0x0f) << 12)
                    | (cont(i + 1).ok_or(i)? << 6)
                    | cont(i + 2).ok_or(i)?;
                if cp < 0x800 {
                    return Err(i);
                }
                (cp, 3)
            }
            0xf0..=0xf4 => {
                let cp = ((u32::from(c) & 0x07) << 18)
                    | (cont(i + 1).ok_or(i)? << 12)
                    | (cont(i + 2).ok_or(i)? << 6)
                    | cont(i + 3).ok_or(i)?;
                if !(0x10000..=0x10ffff).contains(&cp) {
                    return Err(i);
                }
                (cp, 4)
            }
            _ => return Err(i),
        };
        out.push(cp);
        i += len;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Code points to a tree (the C scanner of CPython's _json module, strict=True).

/// A parsed value. Scalars and keys are held already printed (ASCII, escaped).
enum Node {
    Scalar(Zeroizing<String>),
    Array(Vec<Node>),
    Object(Vec<(Zeroizing<String>, Node)>),
}

/// A key as Python compares it (its code points) and as it is printed. Printing is not
/// injective: U+1F600 and the two lone surrogates U+D83D U+DE00 (decoded from raw bytes, which
/// Python does not join) both print as `\ud83d\ude00`, yet they are different keys.
struct Key {
    chars: Zeroizing<Vec<u32>>,
    printed: Zeroizing<String>,
}

struct Parser<'a> {
    s: &'a [u32],
    pos: usize,
}

const fn is_digit(c: u32) -> bool {
    c >= b'0' as u32 && c <= b'9' as u32
}

impl Parser<'_> {
    fn peek(&self) -> Option<u32> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(0x20 | 0x09 | 0x0a | 0x0d)) {
            self.pos += 1;
        }
    }

    fn at(&self, literal: &str) -> bool {
        let end = self.pos + literal.len();
        end <= self.s.len()
            && literal.bytes().zip(&self.s[self.pos..end]).all(|(a, &b)| u32::from(a) == b)
    }

    fn line_col(&self, pos: usize) -> (usize, usize) {
        let before = &self.s[..pos.min(self.s.len())];
        let line = before.iter().filter(|&&c| c == 0x0a).count() + 1;
        let line_start = before.iter().rposition(|&c| c == 0x0a).map_or(0, |i| i + 1);
        (line, pos - line_start + 1)
    }

    /// An error at `pos`: the end of the data, or a syntax error there.
    fn error_at(&self, pos: usize, what: &'static str) -> JsonError {
        let (line, column) = self.line_col(pos);
        if pos >= self.s.len() {
            JsonError::Eof { line, column }
        } else {
            JsonError::Syntax { what, line, column }
        }
    }

    fn syntax(&self, what: &'static str) -> JsonError {
        self.error_at(self.pos, what)
    }

    fn value(&mut self, depth: usize) -> Result<Node, JsonError> {
        let literal = |text: &str| Node::Scalar(Zeroizing::new(text.to_owned()));
        match self.peek() {
            Some(0x22) => Ok(Node::Scalar(self.string()?.printed)),
            Some(0x7b) => self.object(depth + 1),
            Some(0x5b) => self.array(depth + 1),
            _ if self.at("null") => {
                self.pos += 4;
                Ok(literal("null"))
            }
            _ if self.at("true") => {
                self.pos += 4;
                Ok(literal("true"))
            }
            _ if self.at("false") => {
                self.pos += 5;
                Ok(literal("false"))
            }
            _ if self.at("NaN") => {
                self.pos += 3;
                Ok(literal("NaN"))
            }
            _ if self.at("Infinity") => {
                self.pos += 8;
                Ok(literal("Infinity"))
            }
            _ if self.at("-Infinity") => {
                self.pos += 9;
                Ok(literal("-Infinity"))
            }
            _ => self.number(),
        }
    }

    /// `_match_number_unicode`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`, where a `.` or
    /// an exponent not followed by digits is not part of the number.
    fn number(&mut self) -> Result<Node, JsonError> {
        let start = self.pos;
        let mut i = start;
        let digit_at = |i: usize| self.s.get(i).is_some_and(|&c| is_digit(c));
        if self.s.get(i) == Some(&0x2d) {
            i += 1;
        }
        match self.s.get(i) {
            Some(&c) if (u32::from(b'1')..=u32::from(b'9')).contains(&c) => {
                while digit_at(i) {
                    i += 1;
                }
            }
            Some(&0x30) => i += 1,
            _ => return Err(self.error_at(start, "expecting value")),
        }
        let mut is_float = false;
        if self.s.get(i) == Some(&0x2e) && digit_at(i + 1) {
            is_float = true;
            i += 2;
            while digit_at(i) {
                i += 1;
            }
        }
        if matches!(self.s.get(i), Some(0x65 | 0x45)) {
            let e_start = i;
            i += 1;
            if matches!(self.s.get(i), Some(0x2b | 0x2d)) {
                i += 1;
            }
            while digit_at(i) {
                i += 1;
            }
            if digit_at(i - 1) { is_float = true } else { i = e_start }
        }
        self.pos = i;
        // The number is ASCII: digits, sign, '.', 'e'.
        let mut literal = Zeroizing::new(String::with_capacity(i - start));
        literal.extend(self.s[start..i].iter().filter_map(|&c| char::from_u32(c)));
        if is_float {
            let value: f64 =
                literal.parse().map_err(|_| self.error_at(start, "expecting value"))?;
            return Ok(Node::Scalar(float_repr(value)));
        }
        let digits = literal.trim_start_matches('-');
        if digits.len() > MAX_INT_DIGITS {
            let (line, column) = self.line_col(start);
            return Err(JsonError::IntegerTooLong { limit: MAX_INT_DIGITS, line, column });
        }
        // Python's int() of "-0" is 0; every other integer literal prints as written.
        if digits == "0" {
            return Ok(Node::Scalar(Zeroizing::new("0".to_owned())));
        }
        Ok(Node::Scalar(literal))
    }

    /// `scanstring` with `strict=True`: the string's code points and its form printed with
    /// `ensure_ascii`.
    fn string(&mut self) -> Result<Key, JsonError> {
        let begin = self.pos;
        self.pos += 1;
        // The decoded string is never longer than its raw form up to the closing quote (an
        // escape is at least two characters for one), so one allocation holds it.
        let mut raw_len = 0;
        while let Some(&c) = self.s.get(self.pos + raw_len) {
            match c {
                0x22 => break,
                0x5c => raw_len += 2,
                _ => raw_len += 1,
            }
        }
        let mut chars = Zeroizing::new(Vec::<u32>::with_capacity(raw_len));
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error_at(begin, "unterminated string"));
            };
            match c {
                0x22 => {
                    self.pos += 1;
                    break;
                }
                0x5c => {
                    let Some(e) = self.s.get(self.pos + 1).copied() else {
                        return Err(self.error_at(begin, "unterminated string"));
                    };
                    let simple = match e {
                        0x22 => Some(0x22),
                        0x5c => Some(0x5c),
                        0x2f => Some(0x2f),
                        0x62 => Some(0x08),
                        0x66 => Some(0x0c),
                        0x6e => Some(0x0a),
                        0x72 => Some(0x0d),
                        0x74 => Some(0x09),
                        _ => None,
                    };
                    if let Some(decoded) = simple {
                        chars.push(decoded);
                        self.pos += 2;
                        continue;
                    }
                    if e != 0x75 {
                        return Err(self.syntax("invalid \\escape"));
                    }
                    let escape = self.pos;
                    let mut u = self.hex4(escape + 2)?;
                    self.pos += 6;
                    // A high surrogate joins a following `\u` low surrogate; Python reads the
                    // second escape's digits (and fails on bad ones) before deciding.
                    if (0xd800..0xdc00).contains(&u)
                        && self.pos + 6 < self.s.len()
                        && self.s[self.pos] == 0x5c
                        && self.s[self.pos + 1] == 0x75
                    {
                        let low = self.hex4(self.pos + 2)?;
                        if (0xdc00..0xe000).contains(&low) {
                            u = 0x10000 + ((u - 0xd800) << 10) + (low - 0xdc00);
                            self.pos += 6;
                        }
                    }
                    chars.push(u);
                }
                0x00..=0x1f => return Err(self.syntax("invalid control character")),
                _ => {
                    chars.push(c);
                    self.pos += 1;
                }
            }
        }
        let printed = escaped(&chars);
        Ok(Key { chars, printed })
    }

    /// Four hex digits at `at` (the `XXXX` of `\uXXXX`).
    fn hex4(&self, at: usize) -> Result<u32, JsonError> {
        let mut u = 0;
        for i in at..at + 4 {
            let digit = self.s.get(i).and_then(|&c| char::from_u32(c)).and_then(|c| c.to_digit(16));
            match digit {
                Some(d) => u = (u << 4) | d,
                None => return Err(self.error_at(at - 1, "invalid \\uXXXX escape")),
            }
        }
        Ok(u)
    }

    fn too_deep(&self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            let (line, column) = self.line_col(self.pos);
            return Err(JsonError::TooDeep { limit: MAX_DEPTH, line, column });
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<Node, JsonError> {
        self.too_deep(depth)?;
        self.pos += 1;
        self.skip_ws();
        let mut members: Vec<(Zeroizing<String>, Node)> = Vec::new();
        // Key hash -> positions in `members`: finds a duplicate without a second copy of the key
        // (the hasher's keys are random, so crafted keys cannot all collide).
        let hasher = RandomState::new();
        let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
        // The code points of each member's key, for comparison (zeroized when dropped).
        let mut keys: Vec<Zeroizing<Vec<u32>>> = Vec::new();
        if self.peek() == Some(0x7d) {
            self.pos += 1;
            return Ok(Node::Object(members));
        }
        loop {
            if self.peek() != Some(0x22) {
                return Err(self.syntax("expecting property name enclosed in double quotes"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(0x3a) {
                return Err(self.syntax("expecting ':' delimiter"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth)?;
            let slots = index.entry(hasher.hash_one(key.chars.as_slice())).or_default();
            match slots.iter().find(|&&at| keys[at].as_slice() == key.chars.as_slice()) {
                Some(&at) => members[at].1 = value,
                None => {
                    slots.push(members.len());
                    keys.push(key.chars);
                    members.push((key.printed, value));
                }
            }
            self.skip_ws();
            match self.peek() {
                Some(0x7d) => {
                    self.pos += 1;
                    return Ok(Node::Object(members));
                }
                Some(0x2c) => {
                    self.pos += 1;
                    self.skip_ws();
                }
                _ => return Err(self.syntax("expecting ',' delimiter")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Node, JsonError> {
        self.too_deep(depth)?;
        self.pos += 1;
        self.skip_ws();
        let mut items = Vec::new();
        if self.peek() == Some(0x5d) {
            self.pos += 1;
            return Ok(Node::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(0x5d) => {
                    self.pos += 1;
                    return Ok(Node::Array(items));
                }
                Some(0x2c) => {
                    self.pos += 1;
                    self.skip_ws();
                }
                _ => return Err(self.syntax("expecting ',' delimiter")),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Printing (json.dumps with indent=2, ensure_ascii=True, allow_nan=True).

/// The printed length of one code point inside a string.
fn escaped_len(c: u32) -> usize {
    match c {
        0x22 | 0x5c | 0x08 | 0x0c | 0x0a | 0x0d | 0x09 => 2,
        0x20..=0x7e => 1,
        0x10000.. => 12,
        _ => 6,
    }
}

/// A string as `json.dumps` prints it with `ensure_ascii=True`, quotes included, in a buffer
/// allocated at its final size.
fn escaped(chars: &[u32]) -> Zeroizing<String> {
    use std::fmt::Write as _;
    let len = 2 + chars.iter().map(|&c| escaped_len(c)).sum::<usize>();
    let mut out = Zeroizing::new(String::with_capacity(len));
    out.push('"');
    for &c in chars {
        match c {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            0x0a => out.push_str("\\n"),
            0x0d => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(c as u8)),
            0x10000.. => {
                let v = c - 0x10000;
                let _ = write!(out, "\\u{:04x}\\u{:04x}", 0xd800 | (v >> 10), 0xdc00 | (v & 0x3ff));
            }
            _ => {
                let _ = write!(out, "\\u{c:04x}");
            }
        }
    }
    out.push('"');
    out
}

/// `float.__repr__`: the shortest digits that read back to the same value, the closest when
/// several qualify and the even one of two equally close, in
/// fixed notation when the decimal exponent is in -4..16, else as `d.ddde+XX`.
fn float_repr(x: f64) -> Zeroizing<String> {
    if x.is_nan() {
        return Zeroizing::new("NaN".to_owned());
    }
    if x.is_infinite() {
        return Zeroizing::new(if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned());
    }
    // Rust's shortest form breaks a tie in the last digit upwards, Python's (David Gay's dtoa)
    // to even: take the length from the shortest form, then the correctly rounded digits of
    // that length (ties to even), unless those no longer read back to `x` (possible only where
    // the rounding interval is lopsided, at a power of two).
    use std::fmt::Write as _;
    // Written into buffers that never grow (an f64 in exponent form takes at most 24
    // characters), so no freed copy of the number is left behind.
    let mut shortest = Zeroizing::new(String::with_capacity(32));
    let _ = write!(shortest, "{x:e}");
    let ndigits =
        shortest.split_once('e').map_or(1, |(m, _)| m.chars().filter(char::is_ascii_digit).count());
    let mut nearest = Zeroizing::new(String::with_capacity(32));
    let _ = write!(nearest, "{x:.prec$e}", prec = ndigits.saturating_sub(1));
    let sci = if nearest.parse::<f64>().is_ok_and(|y| y == x) { nearest } else { shortest };
    let (negative, unsigned) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci.as_str()),
    };
    let (mantissa, exponent) = unsigned.split_once('e').unwrap_or((unsigned, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let mut digits = Zeroizing::new(String::with_capacity(mantissa.len()));
    digits.extend(mantissa.chars().filter(|c| *c != '.'));
    let ndigits = digits.len() as i64;
    let decpt = exponent + 1;
    let mut out = Zeroizing::new(String::with_capacity(digits.len() + 24));
    if negative {
        out.push('-');
    }
    if decpt <= -4 || decpt > 16 {
        out.push_str(&digits[..1]);
        if ndigits > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exponent < 0 { '-' } else { '+' }, exponent.abs());
    } else if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-decpt) as usize));
        out.push_str(&digits);
    } else if decpt >= ndigits {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (decpt - ndigits) as usize));
        out.push_str(".0");
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
    out
}

impl Node {
    /// The length [`Node::print`] writes at nesting `level`.
    fn printed_len(&self, level: usize) -> usize {
        let inner = 2 * (level + 1);
        match self {
            Self::Scalar(text) => text.len(),
            Self::Array(items) if items.is_empty() => 2,
            Self::Object(members) if members.is_empty() => 2,
            // "[\n" + items each "<indent>item" joined by ",\n" + "\n<indent-1>]"
            Self::Array(items) => {
                items.iter().map(|v| inner + v.printed_len(level + 1)).sum::<usize>()
                    + 2 * (items.len() - 1)
                    + 4
                    + 2 * level
            }
            Self::Object(members) => {
                members
                    .iter()
                    .map(|(k, v)| inner + k.len() + 2 + v.printed_len(level + 1))
                    .sum::<usize>()
                    + 2 * (members.len() - 1)
                    + 4
                    + 2 * level
            }
        }
    }

    fn print(&self, level: usize, out: &mut String) {
        let indent =
            |out: &mut String, level: usize| out.extend(std::iter::repeat_n(' ', 2 * level));
        match self {
            Self::Scalar(text) => out.push_str(text),
            Self::Array(items) if items.is_empty() => out.push_str("[]"),
            Self::Object(members) if members.is_empty() => out.push_str("{}"),
            Self::Array(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                    }
                    indent(out, level + 1);
                    item.print(level + 1, out);
                }
                out.push('\n');
                indent(out, level);
                out.push(']');
            }
            Self::Object(members) => {
                out.push_str("{\n");
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                    }
                    indent(out, level + 1);
                    out.push_str(key);
                    out.push_str(": ");
                    value.print(level + 1, out);
                }
                out.push('\n');
                indent(out, level);
                out.push('}');
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Scalars and keys zeroize themselves; the containers hold no content of their own.
        if let Self::Scalar(text) = self {
            text.zeroize();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pretty(input: &str) -> String {
        python_pretty(input.as_bytes())
            .map(|s| s.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn floats_print_like_python_repr() {
        for (input, repr) in [
            ("1e16", "1e+16"),
            ("1e15", "1000000000000000.0"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("-0.0", "-0.0"),
            ("1.5e300", "1.5e+300"),
            ("123456789012345678.0", "1.2345678901234568e+17"),
            ("1e400", "Infinity"),
            ("-1e400", "-Infinity"),
            ("1e-400", "0.0"),
            ("2.5", "2.5"),
            ("100.0", "100.0"),
            ("1E2", "100.0"),
        ] {
            assert_eq!(pretty(input), repr, "{input}");
        }
    }

    #[test]
    fn integers_keep_every_digit() {
        assert_eq!(pretty("123456789012345678901234567890"), "123456789012345678901234567890");
        assert_eq!(pretty("-0"), "0");
        assert_eq!(pretty(&"9".repeat(4300)), "9".repeat(4300));
        assert!(matches!(
            python_pretty("9".repeat(4301).as_bytes()),
            Err(JsonError::IntegerTooLong { .. })
        ));
    }

    #[test]
    fn numbers_end_where_python_ends_them() {
        assert!(pretty("1.").starts_with("error: extra data"));
        assert!(pretty("1e").starts_with("error: extra data"));
        assert!(pretty("01").starts_with("error: extra data"));
        assert!(pretty("-").starts_with("error: expecting value"));
        assert!(pretty("[1,").starts_with("error: unexpected end"));
    }

    #[test]
    fn printed_len_is_exact() {
        for doc in ["{}", "[]", r#"{"a": [1, {"b": []}, "x\u00e9"], "c": {}}"#, r#"[[[["deep"]]]]"#]
        {
            let text = decode(doc.as_bytes()).unwrap();
            let mut p = Parser { s: &text, pos: 0 };
            let node = p.value(0).unwrap();
            let mut out = String::new();
            node.print(0, &mut out);
            assert_eq!(out.len(), node.printed_len(0), "{doc}");
        }
    }

    #[test]
    fn depth_is_bounded() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(python_pretty(ok.as_bytes()).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(matches!(python_pretty(deep.as_bytes()), Err(JsonError::TooDeep { .. })));
    }
}

// The crate page's examples (README.md, shipped in the package) run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
