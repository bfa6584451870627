//! Fernet key parsing: `Key::from_base64` and `KeyFile::load` over a temporary file. Never a
//! panic; a key that parses is the canonical spelling (round trip); errors never depend on
//! (so never repeat) the file's content.
#![no_main]

#[path = "common.rs"]
mod common;

use globo_crypto::{Key, KeyFile};
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = Key::from_base64(text) {
            assert_eq!(key.to_base64().expose_secret(), text.trim(), "not canonical");
            assert_eq!(format!("{key:?}"), "Key([REDACTED])");
        }
    }
    let path = common::scratch("secret.key");
    std::fs::write(&path, data).expect("write key file");
    match KeyFile::load(&path) {
        Ok(file) => {
            let text = std::str::from_utf8(data).expect("a key file is UTF-8");
            assert_eq!(file.key().to_base64().expose_secret(), text.trim());
        }
        Err(error) => {
            // The error never depends on the content: it is the same as for a file holding
            // just "x" at the same path (a check with no false positives from coincidences
            // between the content and the path or the message text).
            let message = format!("{error} {error:?}");
            std::fs::write(&path, b"x").expect("write key file");
            let reference = KeyFile::load(&path).expect_err("'x' is not a key");
            assert_eq!(
                message,
                format!("{reference} {reference:?}"),
                "the error depends on the content"
            );
        }
    }
});
