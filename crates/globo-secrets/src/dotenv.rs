//! The `.env` parser: the values python-dotenv 1.2 gives the lab, computed without touching
//! the process environment.
//!
//! ```
//! use globo_secrets::{Environment, dotenv};
//! use secrecy::ExposeSecret;
//!
//! let env = Environment::from_pairs([("HOST", "db.internal")]);
//! let parsed = dotenv::parse("PASSWORD=pa$$word\nURL=\"postgres://${HOST}:5432\"\nA\n", &env);
//! assert!(parsed.invalid_lines().is_empty());
//! let value = |name| parsed.get(name).map(|v| v.expose_secret().to_owned());
//! assert_eq!(value("PASSWORD").as_deref(), Some("pa$$word"));
//! assert_eq!(value("URL").as_deref(), Some("postgres://db.internal:5432"));
//! assert_eq!(value("A"), None); // a key without '=' has no value
//! ```
//!
//! # Why it is hand-written
//! The lab loads `.env` with python-dotenv (`load_dotenv(override=False)`, UTF-8). No Rust
//! crate reads `.env` the same way: dotenvy, for one, expands `$VAR` shell-style (`pa$$word`
//! became `pa`), unescapes backslashes in unquoted values and rejects lines python-dotenv
//! accepts (a byte-order mark, unquoted spaces, `"$"`). A secret read differently from the lab is a wrong secret, so this
//! module follows python-dotenv 1.2.2's `parser.py`, `variables.py` and
//! `main.py::resolve_variables` step by step, and `tests/dotenv_differential.rs` checks it
//! against the real python-dotenv over thousands of generated files.
//!
//! # The rules (python-dotenv's)
//! - The file is UTF-8; `\r\n` and `\r` are read as `\n` (Python's text mode, which the lab's
//!   `open()` uses).
//! - A statement is `[export ]KEY[=VALUE]` with an optional `# comment`; blank lines and
//!   comment lines are skipped. `KEY` is unquoted (up to whitespace, `=` or `#`) or in single
//!   quotes.
//! - Unquoted values run to the end of the line, lose a ` #comment` (a `#` after whitespace)
//!   and trailing whitespace, and are otherwise taken literally: `$`, `\` and quotes inside
//!   are kept.
//! - `'single'` values keep everything but `\\` and `\'`; `"double"` values also decode
//!   `\"`, `\a`, `\b`, `\f`, `\n`, `\r`, `\t`, `\v`. Quoted values may span lines.
//! - Every value (quoted or not) then has `${NAME}` and `${NAME:-default}` replaced: by the
//!   process environment (it wins, as with `override=False`), else by the value of an
//!   earlier line, else by the default, else by nothing. `$NAME` without braces, `$$` and a
//!   lone `$` are literal.
//! - A key given twice takes its last value; a key without `=` has no value (and a later one
//!   without `=` removes an earlier value, as the lab's `load_dotenv` then sets nothing).
//! - With `PYTHON_DOTENV_DISABLED` set to `1`, `true`, `t`, `yes` or `y` (any case) in the
//!   environment, `load_dotenv` reads no file at all; [`EnvFile::read`](crate::EnvFile::read)
//!   does the same (this module's [`parse`] only parses text it is given).
//!
//! # Where globo deliberately differs
//! - **Byte-order mark.** A UTF-8 BOM at the start of the file is skipped. python-dotenv (the
//!   lab opens the file as `utf-8`, not `utf-8-sig`) makes it part of the first key
//!   (`"\u{feff}APP_MODE"`), which no program looks up, so the first setting silently
//!   vanished. globo reads it as python-dotenv does with `encoding="utf-8-sig"`.
//! - **Lines python-dotenv cannot parse.** python-dotenv logs a warning and skips them
//!   (resuming at the next line). globo refuses the file
//!   ([`SecretsError::MalformedEnvFile`](crate::SecretsError::MalformedEnvFile), with the file
//!   and line number, never the content): a skipped line is a secret or an `APP_MODE` that
//!   silently went missing, and failing closed is the safer reading. [`parse`] reports the
//!   same lines python-dotenv skips ([`Parsed::invalid_lines`]) and the same values for the
//!   rest, so the difference is only that globo stops.
//! - **Not UTF-8.** python-dotenv raises `UnicodeDecodeError`; globo reports the file and the
//!   line ([`SecretsError::EnvFileNotUtf8`](crate::SecretsError::EnvFileNotUtf8)).
//! - **Environment variables that are not UTF-8** are not used for `${NAME}` (Python would
//!   substitute their surrogate-escaped text).
//! - **NUL bytes.** A key or value holding a NUL byte makes the lab's `load_dotenv` fail when
//!   it sets `os.environ` (`ValueError: embedded null byte`); [`EnvFile::read`](crate::EnvFile::read)
//!   refuses the file with the line
//!   ([`SecretsError::EnvFileNulByte`](crate::SecretsError::EnvFileNulByte)), never the
//!   content. [`parse`] itself returns such values as python-dotenv's `dotenv_values` does.
//! - **Empty values.** `KEY=` gives `KEY` the empty value here, as in python-dotenv, but
//!   [`LocalProvider`](crate::LocalProvider) treats an empty secret as missing (the lab's
//!   `os.getenv` returns `''`): an empty secret is a configuration mistake, reported as
//!   "not found" rather than used.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::Environment;

/// The result of [`parse`]: the file's values (as the lab's environment would get them, before
/// the process environment is laid over them) and the lines python-dotenv would skip.
///
/// `Debug` shows counts and line numbers only, no name: a stray line holding only a secret
/// (a password pasted without `KEY=`) parses as a key without a value.
#[derive(Clone, Default)]
pub struct Parsed {
    entries: Vec<(String, Option<SecretString>)>,
    /// For each entry, the line where its last statement starts.
    lines: Vec<usize>,
    invalid_lines: Vec<usize>,
}

impl Parsed {
    /// Every key in the order it first appears, with its last value (`None` for a key whose
    /// last statement has no `=`), as python-dotenv's `dotenv_values` dict.
    pub fn entries(&self) -> &[(String, Option<SecretString>)] {
        &self.entries
    }

    /// The value of `name`, if the file gives it one.
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.entries.iter().find(|(key, _)| key == name).and_then(|(_, value)| value.as_ref())
    }

    /// The 1-based line where the last statement for `name` starts (the one that gave it its
    /// value), if the file has one: what an error about a value names instead of the value.
    pub fn line_of(&self, name: &str) -> Option<usize> {
        let at = self.entries.iter().position(|(key, _)| key == name)?;
        self.lines.get(at).copied()
    }

    /// The 1-based lines where a statement python-dotenv cannot parse starts (python-dotenv
    /// warns and skips each; globo's file readers refuse the file).
    pub fn invalid_lines(&self) -> &[usize] {
        &self.invalid_lines
    }

    /// The keys that have a value, with it and the line it came from, in file order
    /// (duplicates resolved).
    pub(crate) fn into_values(self) -> Vec<(String, SecretString, usize)> {
        self.entries
            .into_iter()
            .zip(self.lines)
            .filter_map(|((key, value), line)| Some((key, value?, line)))
            .collect()
    }
}

impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let without_value = self.entries.iter().filter(|(_, value)| value.is_none()).count();
        f.debug_struct("Parsed")
            .field("keys", &self.entries.len())
            .field("keys_without_value", &without_value)
            .field("invalid_lines", &self.invalid_lines)
            .finish()
    }
}

/// Parses `.env` text as python-dotenv 1.2 does for the lab (`load_dotenv(override=False)`,
/// interpolation on), with `env` standing for the process environment. A leading byte-order
/// mark is skipped (see the [module docs](self#where-globo-deliberately-differs)).
pub fn parse(text: &str, env: &Environment) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = universal_newlines(text);
    let mut reader = Reader { text: &text, pos: 0, line: 1 };
    let mut bindings: Vec<(String, Option<Zeroizing<String>>, usize)> = Vec::new();
    let mut invalid_lines = Vec::new();
    while reader.pos < reader.text.len() {
        match parse_binding(&mut reader) {
            Binding::Blank => {}
            Binding::Invalid { line } => invalid_lines.push(line),
            Binding::Statement { key: Some(key), value, line } => bindings.push((key, value, line)),
            Binding::Statement { key: None, .. } => {}
        }
    }
    let (entries, lines) = resolve_variables(bindings, env);
    Parsed { entries, lines, invalid_lines }
}

/// `\r\n` and lone `\r` become `\n`, as Python's text mode reads them.
fn universal_newlines(text: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

/// Python's `\s` (and `str.isspace`) in Unicode mode: Rust's `White_Space` plus the
/// information separators U+001C to U+001F.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{1f}'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// `[^\S\r\n]`: whitespace within a line.
fn is_inline_space(c: char) -> bool {
    is_space(c) && c != '\r' && c != '\n'
}

/// One statement of the file, as python-dotenv's `Binding`.
enum Binding {
    /// Only whitespace was left.
    Blank,
    /// A statement (a comment line has no key).
    Statement { key: Option<String>, value: Option<Zeroizing<String>>, line: usize },
    /// A statement python-dotenv cannot parse, starting at this line.
    Invalid { line: usize },
}

/// python-dotenv's `Reader`: a position in the text and its line number, counted the way
/// `Position.advance` counts (each `\r\n`, `\n` or `\r` in each consumed piece).
struct Reader<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

/// A failed `read_regex`: python-dotenv's `parser.Error`.
struct NoMatch;

impl Reader<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn advance(&mut self, len: usize) {
        let consumed = &self.text[self.pos..self.pos + len];
        let bytes = consumed.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                    self.line += 1;
                    i += 1;
                }
                b'\r' | b'\n' => self.line += 1,
                _ => {}
            }
            i += 1;
        }
        self.pos += len;
    }

    /// The length of the longest prefix of the rest whose characters all satisfy `pred`.
    fn span(&self, pred: impl Fn(char) -> bool) -> usize {
        span_of(self.rest(), pred)
    }
}

fn span_of(text: &str, pred: impl Fn(char) -> bool) -> usize {
    text.char_indices().find(|&(_, c)| !pred(c)).map_or(text.len(), |(i, _)| i)
}

/// python-dotenv's `parse_binding`.
fn parse_binding(reader: &mut Reader<'_>) -> Binding {
    let blank = reader.span(is_space);
    reader.advance(blank);
    if reader.pos == reader.text.len() {
        return Binding::Blank;
    }
    let line = reader.line;
    match parse_statement(reader) {
        Ok((key, value)) => Binding::Statement { key, value, line },
        Err(NoMatch) => {
            // `_rest_of_line`: `[^\r\n]*(?:\r|\n|\r\n)?` (so `\r\n` loses only its `\r`).
            let mut len = reader.span(|c| c != '\r' && c != '\n');
            if matches!(reader.rest()[len..].chars().next(), Some('\r' | '\n')) {
                len += 1;
            }
            reader.advance(len);
            Binding::Invalid { line }
        }
    }
}

type Statement = (Option<String>, Option<Zeroizing<String>>);

fn parse_statement(reader: &mut Reader<'_>) -> Result<Statement, NoMatch> {
    // `_export`: `(?:export[^\S\r\n]+)?`
    if let Some(after) = reader.rest().strip_prefix("export") {
        let spaces = span_of(after, is_inline_space);
        if spaces > 0 {
            reader.advance("export".len() + spaces);
        }
    }
    let key = parse_key(reader)?;
    let spaces = reader.span(is_inline_space);
    reader.advance(spaces);
    let value = if reader.peek() == Some('=') {
        // `_equal_sign`: `(=[^\S\r\n]*)`
        let spaces = span_of(&reader.rest()[1..], is_inline_space);
        reader.advance(1 + spaces);
        Some(parse_value(reader)?)
    } else {
        None
    };
    // `_comment`: `(?:[^\S\r\n]*#[^\r\n]*)?`
    let spaces = reader.span(is_inline_space);
    if reader.rest()[spaces..].starts_with('#') {
        let comment = span_of(&reader.rest()[spaces..], |c| c != '\r' && c != '\n');
        reader.advance(spaces + comment);
    }
    // `_end_of_line`: `[^\S\r\n]*(?:\r\n|\n|\r|$)`
    let spaces = reader.span(is_inline_space);
    let after = &reader.rest()[spaces..];
    let end = if after.starts_with("\r\n") {
        2
    } else if after.starts_with(['\r', '\n']) {
        1
    } else if after.is_empty() {
        0
    } else {
        return Err(NoMatch);
    };
    reader.advance(spaces + end);
    Ok((key, value))
}

/// python-dotenv's `parse_key`: `None` for a comment.
fn parse_key(reader: &mut Reader<'_>) -> Result<Option<String>, NoMatch> {
    match reader.peek() {
        Some('#') => Ok(None),
        Some('\'') => {
            // `'([^']+)'`
            let body = &reader.rest()[1..];
            match body.find('\'') {
                Some(len) if len > 0 => {
                    let key = body[..len].to_owned();
                    reader.advance(len + 2);
                    Ok(Some(key))
                }
                _ => Err(NoMatch),
            }
        }
        _ => {
            // `([^=\#\s]+)`
            let len = reader.span(|c| c != '=' && c != '#' && !is_space(c));
            if len == 0 {
                return Err(NoMatch);
            }
            let key = reader.rest()[..len].to_owned();
            reader.advance(len);
            Ok(Some(key))
        }
    }
}

/// python-dotenv's `parse_value`.
fn parse_value(reader: &mut Reader<'_>) -> Result<Zeroizing<String>, NoMatch> {
    match reader.peek() {
        Some(quote @ ('\'' | '"')) => {
            let (body, len) = quoted_body(&reader.rest()[1..], quote).ok_or(NoMatch)?;
            let escapes: &[char] = if quote == '\'' {
                &['\\', '\'']
            } else {
                &['\\', '\'', '"', 'a', 'b', 'f', 'n', 'r', 't', 'v']
            };
            let value = decode_escapes(body, escapes);
            reader.advance(len + 2);
            Ok(value)
        }
        None | Some('\r' | '\n') => Ok(Zeroizing::new(String::new())),
        Some(_) => {
            // `([^\r\n]*)`, then `re.sub(r"\s+#.*", "", part).rstrip()`
            let len = reader.span(|c| c != '\r' && c != '\n');
            let part = &reader.rest()[..len];
            let value = Zeroizing::new(strip_unquoted(part).to_owned());
            reader.advance(len);
            Ok(value)
        }
    }
}

/// The body of a quoted value as the regex `Q((?:\\Q|[^Q])*)Q` finds it (`text` starts after
/// the opening quote): the body and its length. The body runs to the first quote not
/// preceded by a backslash; with none before the end of the text, the backtracking regex
/// closes at the last `\Q` instead (the backslash stays in the body); with neither, no match.
fn quoted_body(text: &str, quote: char) -> Option<(&str, usize)> {
    let mut last_escaped_quote = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\\' && chars.peek().map(|&(_, next)| next) == Some(quote) {
            last_escaped_quote = Some(i);
            chars.next();
        } else if c == quote {
            return Some((&text[..i], i));
        }
    }
    let backslash = last_escaped_quote?;
    Some((&text[..=backslash], backslash + 1))
}

/// `decode_escapes`: each `\x` with `x` in `escapes` becomes the character Python's
/// `unicode-escape` gives it, scanning left to right without overlap; other backslashes stay.
fn decode_escapes(body: &str, escapes: &[char]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(body.len()));
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match chars.peek() {
            Some(&next) if c == '\\' && escapes.contains(&next) => {
                chars.next();
                out.push(match next {
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    other => other,
                });
            }
            _ => out.push(c),
        }
    }
    out
}

/// An unquoted value without its comment (from the first whitespace run followed by `#`) and
/// trailing whitespace.
fn strip_unquoted(part: &str) -> &str {
    let mut run_start = None;
    let mut cut = part.len();
    for (i, c) in part.char_indices() {
        if is_space(c) {
            run_start.get_or_insert(i);
        } else if c == '#' && run_start.is_some() {
            cut = run_start.unwrap_or(i);
            break;
        } else {
            run_start = None;
        }
    }
    part[..cut].trim_end_matches(is_space)
}

/// python-dotenv's `resolve_variables(values, override=False)`: each value's `${...}` resolved
/// against the environment first, then the values of earlier lines; a repeated key keeps its
/// first position and takes its last value.
type Entries = (Vec<(String, Option<SecretString>)>, Vec<usize>);

fn resolve_variables(
    bindings: Vec<(String, Option<Zeroizing<String>>, usize)>,
    env: &Environment,
) -> Entries {
    let mut entries: Vec<(String, Option<SecretString>)> = Vec::new();
    let mut lines: Vec<usize> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (key, raw, line) in bindings {
        let value = raw.map(|raw| {
            let lookup = |name: &str| -> Option<String> {
                if let Some(value) = env.get(name) {
                    return Some(value.expose_secret().to_owned());
                }
                let at = *index.get(name)?;
                Some(
                    entries[at]
                        .1
                        .as_ref()
                        .map(|v| v.expose_secret().to_owned())
                        .unwrap_or_default(),
                )
            };
            SecretString::from(interpolate(&raw, lookup).to_string())
        });
        match index.get(&key) {
            Some(&at) => {
                entries[at].1 = value;
                lines[at] = line;
            }
            None => {
                index.insert(key.clone(), entries.len());
                entries.push((key, value));
                lines.push(line);
            }
        }
    }
    (entries, lines)
}

/// Replaces each `${NAME}` / `${NAME:-DEFAULT}` (python-dotenv's
/// `\$\{(?P<name>[^\}:]*)(?::-(?P<default>[^\}]*))?\}`, found left to right) by `lookup(NAME)`,
/// else `DEFAULT`, else nothing. A `${` that does not complete such a form is literal.
fn interpolate(raw: &str, lookup: impl Fn(&str) -> Option<String>) -> Zeroizing<String> {
    interpolate_counting(raw, lookup).0
}

/// [`interpolate`], and the number of bytes its searches examined (at most about three times
/// the length of `raw`: every search moves forward only, so a value of a million `${` costs
/// a few million steps, not the 10^11 of rescanning to the end from each `${`).
///
/// Linear because the next `}` and the next `}`-or-`:` at or after a position are cached:
/// the positions asked about only grow (each `${` is after the last), and a cached answer
/// at or after the new position is still the first one there. With no `}` left, no form can
/// complete, so the rest is literal.
fn interpolate_counting(
    raw: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> (Zeroizing<String>, usize) {
    let bytes = raw.as_bytes();
    let mut steps = 0usize;
    let mut next_brace = NextByte::new(|b| b == b'}');
    let mut next_stop = NextByte::new(|b| b == b'}' || b == b':');
    let mut out = Zeroizing::new(String::with_capacity(raw.len()));
    let mut copied = 0; // `raw[..copied]` is in `out` or replaced.
    let mut from = 0; // Where to look for the next `${`.
    while let Some(found) = raw[from..].find("${") {
        steps += found + 2;
        let start = from + found;
        let name_start = start + 2;
        let Some(brace) = next_brace.at_or_after(bytes, name_start, &mut steps) else {
            break; // No `}` left: nothing after this can be a variable.
        };
        // A name runs to the first `}` or `:`; there is a `}`, so there is such a stop.
        let stop = next_stop.at_or_after(bytes, name_start, &mut steps).unwrap_or(brace);
        let form = if bytes[stop] == b'}' {
            Some((&raw[name_start..stop], None, stop + 1))
        } else if bytes.get(stop + 1) == Some(&b'-') {
            // `:-`: the default runs to the first `}` after it, which is `brace` (the name
            // had none, and `:` and `-` are not one).
            Some((&raw[name_start..stop], Some(&raw[stop + 2..brace]), brace + 1))
        } else {
            None
        };
        match form {
            Some((name, default, end)) => {
                out.push_str(&raw[copied..start]);
                match lookup(name) {
                    Some(value) => out.push_str(&Zeroizing::new(value)),
                    None => out.push_str(default.unwrap_or("")),
                }
                copied = end;
                from = end;
            }
            // Not a variable here: the `$` is literal; search again after it.
            None => from = start + 1,
        }
    }
    out.push_str(&raw[copied..]);
    (out, steps)
}

/// The first position at or after a given one where a byte satisfies `pred`, cached for
/// positions that only grow (see [`interpolate_counting`]).
struct NextByte<P> {
    pred: P,
    /// The last answer and the position it was asked for.
    cached: Option<(usize, Option<usize>)>,
}

impl<P: Fn(u8) -> bool> NextByte<P> {
    fn new(pred: P) -> Self {
        Self { pred, cached: None }
    }

    fn at_or_after(&mut self, bytes: &[u8], from: usize, steps: &mut usize) -> Option<usize> {
        if let Some((asked, answer)) = self.cached
            && asked <= from
            && answer.is_none_or(|at| at >= from)
        {
            return answer;
        }
        let found = bytes[from..].iter().position(|&b| (self.pred)(b)).map(|i| from + i);
        *steps += found.map_or(bytes.len(), |at| at + 1) - from;
        self.cached = Some((from, found));
        found
    }
}

/// `text` (a `.env` file) with `name` set to `value`: every one-line statement for `name`
/// (`NAME=...`, `export NAME=...`) is removed and `NAME='value'` put where the first one was,
/// or appended at the end; every other line is kept byte for byte. What a program that
/// keeps a secret in `.env` (a pepper, say) writes back with.
///
/// `None` (the caller changes nothing) when that cannot be done safely: `value` holds a
/// quote, backslash, `$` or line break; the text has a line python-dotenv cannot parse; or
/// the result would not read back as `text` with only `name` changed (a value for `name`
/// spread over several lines, or another line that refers to `${NAME}`). The result is
/// checked by parsing it with `env`, as [`EnvFile::read`](crate::EnvFile::read) would.
///
/// ```
/// use globo_secrets::{Environment, dotenv};
/// use secrecy::{ExposeSecret as _, SecretString};
///
/// let env = Environment::empty();
/// let text = "# keys\nA=1\nPEPPER=old\nB=2\n";
/// let new = dotenv::set_value(text, "PEPPER", &SecretString::from("1:abc"), &env).unwrap();
/// assert_eq!(new.as_str(), "# keys\nA=1\nPEPPER='1:abc'\nB=2\n");
/// ```
pub fn set_value(
    text: &str,
    name: &str,
    value: &SecretString,
    env: &Environment,
) -> Option<Zeroizing<String>> {
    let value = value.expose_secret();
    if name.is_empty() || value.contains(['\'', '\\', '$', '\n', '\r']) {
        return None;
    }
    let before = parse(text, env);
    if !before.invalid_lines().is_empty() {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(text.len() + name.len() + value.len() + 4));
    let mut placed = false;
    for line in text.split_inclusive('\n') {
        if !assigns(line, name) {
            out.push_str(line);
            continue;
        }
        if !placed {
            let ending = if line.ends_with("\r\n") { "\r\n" } else { "\n" };
            out.push_str(&format!("{name}='{value}'{ending}"));
            placed = true;
        }
    }
    if !placed {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{name}='{value}'\n"));
    }
    let after = parse(&out, env);
    let others = |parsed: &Parsed| -> Vec<(String, Option<Zeroizing<String>>)> {
        parsed
            .entries()
            .iter()
            .filter(|(key, _)| key != name)
            .map(|(key, v)| {
                (key.clone(), v.as_ref().map(|v| Zeroizing::new(v.expose_secret().to_owned())))
            })
            .collect()
    };
    let same = after.invalid_lines().is_empty()
        && after.get(name).is_some_and(|v| v.expose_secret() == value)
        && others(&before) == others(&after);
    same.then_some(out)
}

/// Whether `line` starts a statement for `name` (`NAME`, `export NAME` or `'NAME'`, then
/// whitespace, `=` or the end).
fn assigns(line: &str, name: &str) -> bool {
    let rest = line.strip_prefix('\u{feff}').unwrap_or(line).trim_start_matches([' ', '\t']);
    let rest = match rest.strip_prefix("export") {
        Some(after) if after.starts_with([' ', '\t']) => after.trim_start_matches([' ', '\t']),
        _ => rest,
    };
    let quoted = format!("'{name}'");
    let after = rest.strip_prefix(quoted.as_str()).or_else(|| rest.strip_prefix(name));
    after.is_some_and(|after| {
        after.is_empty() || after.starts_with([' ', '\t', '=', '\r', '\n', '#'])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(String, Option<String>)> {
        parse(text, &Environment::empty())
            .entries
            .into_iter()
            .map(|(k, v)| (k, v.map(|v| v.expose_secret().to_owned())))
            .collect()
    }

    #[test]
    fn quoted_body_backtracks_like_the_regex() {
        assert_eq!(quoted_body("abc' rest", '\''), Some(("abc", 3)));
        assert_eq!(quoted_body(r"a\'b' x", '\''), Some((r"a\'b", 4)));
        // No closing quote: the regex closes at the last escaped quote.
        assert_eq!(quoted_body(r"a\'b\'c", '\''), Some((r"a\'b\", 5)));
        assert_eq!(quoted_body("abc", '\''), None);
    }

    #[test]
    fn unquoted_comments_need_whitespace_before_the_hash() {
        assert_eq!(strip_unquoted("a#b"), "a#b");
        assert_eq!(strip_unquoted("a #b #c"), "a");
        assert_eq!(strip_unquoted("a b  "), "a b");
    }

    /// Review B6: interpolation is linear. A 1 MiB value of `${` (and variants whose names or
    /// defaults run to a far `:` or `}`) used to rescan to the end from every `${`: about
    /// 10^11 steps. The bound on the bytes examined guards that without timing anything.
    #[test]
    fn interpolation_examines_each_byte_a_bounded_number_of_times() {
        let n = 1024 * 1024 / 2;
        let variants = [
            "${".repeat(n),
            format!("{}:}}", "${".repeat(n)),
            format!("{}}}", "${:-".repeat(n / 2)),
            format!("{}}}", "${a:".repeat(n / 2)),
        ];
        for raw in &variants {
            let (out, steps) = interpolate_counting(raw, |_| None);
            assert!(steps <= 4 * raw.len() + 16, "{steps} steps for {} bytes", raw.len());
            assert!(!out.is_empty());
        }
        // The values python-dotenv gives (checked with its `parse_variables`; the differential
        // test covers the rest).
        let lookup = |name: &str| (name == "A").then(|| "1".to_owned());
        for (raw, expected) in [
            ("${A}${B:-x}${C}", "1x"),
            ("${${A}", ""),
            ("$${A}$", "$1$"),
            ("${A:x}${A}", "${A:x}1"),
            ("${A:-${B}}}", "1}}"),
            ("${:-d}", "d"),
            ("${", "${"),
        ] {
            assert_eq!(interpolate(raw, lookup).as_str(), expected, "{raw}");
        }
    }

    #[test]
    fn a_value_less_key_after_a_value_removes_it() {
        assert_eq!(values("A=1\nA\n"), [("A".to_owned(), None)]);
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn set_value_replaces_the_statements_for_the_name_and_keeps_every_other_line() {
        let env = Environment::empty();
        let value = SecretString::from("2:abc=,1:def");
        let set = |text: &str| set_value(text, "PEPPER", &value, &env).map(|t| t.to_string());
        // Replaced in place; comments, blank lines and others kept byte for byte.
        assert_eq!(
            set("# c\r\nA=1\r\nexport PEPPER = old # note\r\n\r\nB='x y'\r\nPEPPER=older\r\n")
                .unwrap(),
            "# c\r\nA=1\r\nPEPPER='2:abc=,1:def'\r\n\r\nB='x y'\r\n"
        );
        // Appended when absent, after a final line without a newline; an empty file.
        assert_eq!(set("A=1").unwrap(), "A=1\nPEPPER='2:abc=,1:def'\n");
        assert_eq!(set("").unwrap(), "PEPPER='2:abc=,1:def'\n");
        // A longer name that starts with the same letters is another variable.
        assert_eq!(set("PEPPERS=1\n").unwrap(), "PEPPERS=1\nPEPPER='2:abc=,1:def'\n");
        // A value over several lines, a line that refers to it, an unparsable line: refused.
        assert_eq!(set("PEPPER=\"a\nb\"\nA=1\n"), None);
        assert_eq!(set("PEPPER=old\nCOPY=${PEPPER}\n"), None);
        assert_eq!(set("A=\"unterminated\n"), None);
        // Values that cannot be written single-quoted: refused.
        for bad in ["a'b", "a\\b", "a$b", "a\nb"] {
            assert_eq!(set_value("", "PEPPER", &SecretString::from(bad), &env), None, "{bad:?}");
        }
        // What python-dotenv reads back (checked in set_value) is the value.
        let text = set("A=1\n").unwrap();
        assert_eq!(parse(&text, &env).get("PEPPER").unwrap().expose_secret(), "2:abc=,1:def");
    }
}
