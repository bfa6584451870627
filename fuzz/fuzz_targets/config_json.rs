//! `config show`'s JSON printer: `globo_json::python_pretty` on arbitrary bytes. Never a panic;
//! the output is ASCII; printing the printed text gives it back unchanged (Python's
//! `dumps(loads(dumps(x)))` is `dumps(x)` too: floats round-trip, integers are exact, escapes
//! read back to the same characters, duplicate keys are gone).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = globo_json::python_pretty(data) {
        assert!(text.is_ascii());
        let again = globo_json::python_pretty(text.as_bytes()).expect("printed JSON reads back");
        assert_eq!(*again, *text);
    }
});
