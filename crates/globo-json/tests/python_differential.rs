#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]
//! Differential test: thousands of generated documents (valid, subtly invalid, in every encoding
//! Python detects) through CPython's `json.dumps(json.loads(doc), indent=2)` and through
//! `globo_json::python_pretty`. Every document Python prints must print byte for byte the same;
//! every document Python refuses must be refused.

/// Documents generated per run (deterministic: fixed seed).
const DOCUMENTS: usize = 20_000;

/// The lab's line, applied to each length-prefixed document on stdin; answers are
/// length-prefixed too: `O<text>` printed, `E<exception name>` refused.
const PYTHON: &str = r#"
import json, struct, sys
data = sys.stdin.buffer.read()
out = sys.stdout.buffer
i = 0
while i < len(data):
    (n,) = struct.unpack_from("<I", data, i)
    doc = data[i + 4:i + 4 + n]
    i += 4 + n
    try:
        answer = b"O" + json.dumps(json.loads(doc), indent=2).encode("ascii")
    except (ValueError, RecursionError) as e:
        answer = b"E" + type(e).__name__.encode()
    out.write(struct.pack("<I", len(answer)) + answer)
"#;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn ws(rng: &mut Rng, out: &mut String) {
    if rng.chance(30) {
        for _ in 0..rng.below(3) {
            out.push_str(rng.pick(&[" ", "\t", "\n", "\r\n", "  "]));
        }
    }
}

fn digits(rng: &mut Rng, n: u64, out: &mut String) {
    for _ in 0..n {
        out.push(char::from(b'0' + rng.below(10) as u8));
    }
}

fn number(rng: &mut Rng, out: &mut String) {
    match rng.below(12) {
        0 => out.push_str(rng.pick(&["NaN", "Infinity", "-Infinity", "-0", "0", "-0.0", "0.0"])),
        11 => {
            // Any double, written with more digits than it needs: the printer must find the
            // same shortest digits (and break ties the same way) as Python's repr.
            let x = f64::from_bits(rng.next());
            if x.is_finite() {
                out.push_str(&format!("{x:.25e}"));
            } else {
                out.push_str("1.0");
            }
        }
        1 => {
            // Long integers, around Python's 4,300-digit limit now and then.
            if rng.chance(50) {
                out.push('-');
            }
            out.push(char::from(b'1' + rng.below(9) as u8));
            let n = if rng.chance(10) { 4298 + rng.below(4) } else { 18 + rng.below(40) };
            digits(rng, n, out);
        }
        2..=5 => {
            if rng.chance(30) {
                out.push('-');
            }
            out.push(char::from(b'1' + rng.below(9) as u8));
            let n = rng.below(20);
            digits(rng, n, out);
        }
        _ => {
            // Floats: random digits, fraction and exponent, including ones that overflow,
            // underflow, and sit on rounding boundaries of the shortest representation.
            if rng.chance(30) {
                out.push('-');
            }
            if rng.chance(20) {
                out.push('0');
            } else {
                out.push(char::from(b'1' + rng.below(9) as u8));
                let n = rng.below(18);
                digits(rng, n, out);
            }
            if rng.chance(70) {
                out.push('.');
                let n = 1 + rng.below(20);
                digits(rng, n, out);
            }
            if rng.chance(60) {
                out.push_str(rng.pick(&["e", "E"]));
                out.push_str(rng.pick(&["", "+", "-"]));
                let exp = if rng.chance(10) { 300 + rng.below(30) } else { rng.below(25) };
                out.push_str(&exp.to_string());
            }
        }
    }
}

fn string(rng: &mut Rng, out: &mut String) {
    out.push('"');
    for _ in 0..rng.below(12) {
        match rng.below(20) {
            0 => {
                out.push_str(rng.pick(&["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"]))
            }
            1 => out.push_str(&format!("\\u{:04x}", rng.below(0x10000))),
            2 => out.push_str(&format!("\\u{:04X}", 0xd800 + rng.below(0x800))),
            3 => {
                let v = rng.below(0x100000);
                out.push_str(&format!(
                    "\\ud{:03x}\\ud{:03x}",
                    0x800 | (v >> 10),
                    0xc00 | (v & 0x3ff)
                ));
            }
            4 => out.push(char::from_u32(0xa0 + rng.below(0x2000) as u32).unwrap_or('x')),
            5 => out.push(char::from_u32(0x1f600 + rng.below(0x50) as u32).unwrap_or('x')),
            6 => out.push_str(
                rng.pick(&["\u{7f}", "\u{fe0f}", "\u{200b}", "\u{feff}", "é", "e\u{301}"]),
            ),
            7 if rng.chance(10) => out.push(char::from(rng.below(0x20) as u8)),
            8 if rng.chance(10) => {
                out.push_str(rng.pick(&["\\x", "\\u12", "\\ud800\\u12g4", "\\"]))
            }
            _ => out.push(char::from(b' ' + rng.below(95) as u8)),
        }
    }
    out.push('"');
}

fn value(rng: &mut Rng, depth: u32, out: &mut String) {
    let leaf = depth >= 4 || rng.chance(45);
    match if leaf { rng.below(6) } else { 6 + rng.below(2) } {
        0 | 1 => number(rng, out),
        2 | 3 => string(rng, out),
        4 => out.push_str(rng.pick(&["true", "false", "null"])),
        5 => out.push_str(rng.pick(&["[]", "{}", "[ ]", "{ }"])),
        6 => {
            out.push('[');
            ws(rng, out);
            for i in 0..1 + rng.below(4) {
                if i > 0 {
                    out.push(',');
                    ws(rng, out);
                }
                value(rng, depth + 1, out);
                ws(rng, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            ws(rng, out);
            for i in 0..1 + rng.below(5) {
                if i > 0 {
                    out.push(',');
                    ws(rng, out);
                }
                // A small key alphabet, so duplicate keys are common.
                if rng.chance(70) {
                    out.push_str(rng.pick(&[
                        "\"a\"",
                        "\"b\"",
                        "\"c\"",
                        "\"\\u0061\"",
                        "\"é\"",
                        "\"e\\u0301\"",
                    ]));
                } else {
                    string(rng, out);
                }
                ws(rng, out);
                out.push(':');
                ws(rng, out);
                value(rng, depth + 1, out);
                ws(rng, out);
            }
            out.push('}');
        }
    }
}

/// One document as bytes: usually UTF-8, sometimes with a BOM, in UTF-16 or UTF-32, with a
/// surrogate encoded in the bytes, or corrupted.
fn document(rng: &mut Rng) -> Vec<u8> {
    let mut text = String::new();
    ws(rng, &mut text);
    value(rng, 0, &mut text);
    ws(rng, &mut text);
    if rng.chance(8) {
        // Corrupt one character: trailing commas, missing delimiters, extra data...
        let chars: Vec<char> = text.chars().collect();
        let at = rng.below(chars.len() as u64 + 1) as usize;
        let mut bent: String = chars[..at].iter().collect();
        if rng.chance(50) {
            bent.push_str(rng.pick(&[",", "]", "}", ":", "\"", "x", "0", " 1", "\u{0}"]));
            bent.extend(&chars[at..]);
        } else {
            bent.extend(chars.iter().skip(at + 1));
        }
        text = bent;
    }
    match rng.below(20) {
        0 => [&[0xef, 0xbb, 0xbf][..], text.as_bytes()].concat(),
        1 => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        2 => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        3 => {
            [0xff, 0xfe].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect()
        }
        4 => text.chars().flat_map(|c| u32::from(c).to_le_bytes()).collect(),
        5 => [0, 0, 0xfe, 0xff]
            .into_iter()
            .chain(text.chars().flat_map(|c| u32::from(c).to_be_bytes()))
            .collect(),
        6 => {
            // A lone surrogate encoded in UTF-8 bytes (Python decodes it with surrogatepass),
            // or a byte that is not UTF-8 at all.
            let mut bytes = text.into_bytes();
            let at = bytes.iter().position(|&b| b == b'"').map_or(0, |i| i + 1);
            let insert: &[u8] = if rng.chance(50) { &[0xed, 0xa0, 0x80] } else { &[0xc0, 0xaf] };
            bytes.splice(at..at, insert.iter().copied());
            bytes
        }
        _ => text.into_bytes(),
    }
}

#[test]
fn globo_prints_what_python_prints_for_every_generated_document() {
    let Some(py) = globo_testkit::python(&["json"]) else { return };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut docs: Vec<Vec<u8>> = (0..DOCUMENTS).map(|_| document(&mut rng)).collect();
    // Keys that print alike but differ for Python: an astral character (escaped or raw) and
    // its two surrogate halves decoded separately from raw bytes, which Python does not join.
    docs.extend([
        b"{\"\\ud83d\\ude00\": 1, \"\xed\xa0\xbd\xed\xb8\x80\": 2}".to_vec(),
        b"{\"\xf0\x9f\x98\x80\": 1, \"\\ud83d\xed\xb8\x80\": 2, \"\\ud83d\\ude00\": 3}".to_vec(),
        b"{\"a\": 1, \"\\u0061\": 2}".to_vec(),
    ]);
    let documents = docs.len();
    let mut input = Vec::new();
    for doc in &docs {
        input.extend_from_slice(&(doc.len() as u32).to_le_bytes());
        input.extend_from_slice(doc);
    }
    let answers = py.run_ok(PYTHON, &[], &input);
    let mut at = 0;
    let (mut printed, mut refused, mut differences) = (0, 0, Vec::new());
    for (i, doc) in docs.iter().enumerate() {
        let n = u32::from_le_bytes(answers[at..at + 4].try_into().unwrap()) as usize;
        let answer = &answers[at + 4..at + 4 + n];
        at += 4 + n;
        let ours = globo_json::python_pretty(doc);
        match (answer[0], &ours) {
            (b'O', Ok(text)) if text.as_bytes() == &answer[1..] => printed += 1,
            (b'E', Err(_)) => refused += 1,
            _ => differences.push(format!(
                "document {i} ({:?}): python {:?}, globo {:?}",
                String::from_utf8_lossy(doc),
                String::from_utf8_lossy(answer),
                ours.as_ref().map(|s| s.as_str()).map_err(|e| e.to_string())
            )),
        }
    }
    assert_eq!(at, answers.len(), "one answer per document");
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
    // The generator must exercise both sides.
    assert!(
        printed > documents / 2 && refused > documents / 50,
        "printed {printed}, refused {refused}"
    );
    eprintln!("{documents} documents: {printed} printed identically, {refused} refused by both");
}

#[test]
fn nesting_python_prints_is_printed_up_to_the_limit() {
    let Some(py) = globo_testkit::python(&["json"]) else { return };
    let depth = globo_json::MAX_DEPTH;
    let doc = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let expected = py.run_ok(
        "import json, sys; sys.stdout.write(json.dumps(json.loads(sys.stdin.read()), indent=2))",
        &[],
        doc.as_bytes(),
    );
    assert_eq!(globo_json::python_pretty(doc.as_bytes()).unwrap().as_bytes(), expected.as_slice());
}
