//! Fernet token decoding: `decrypt`, `decrypt_with_max_age` and `inspect` on arbitrary text,
//! plus properties: what encrypts decrypts back, and any other spelling of a valid token fails.
#![no_main]

use globo_crypto::{Key, decrypt, decrypt_with_max_age, encrypt, inspect};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";

fuzz_target!(|data: &[u8]| {
    let key = Key::from_base64(KEY).expect("the fixed key parses");

    // 1. Arbitrary text as a token: never a panic; a decryption implies a valid structure.
    if let Ok(text) = std::str::from_utf8(data) {
        let decrypted = decrypt(&key, text);
        let info = inspect(text);
        if decrypted.is_ok() {
            assert!(info.is_ok(), "a token that decrypts must inspect");
        }
        if let Ok(info) = info {
            assert!(info.ciphertext_len >= 16 && info.ciphertext_len % 16 == 0);
            let range = info.plaintext_len_range();
            if let Ok(plaintext) = &decrypted {
                assert!(range.contains(&plaintext.len()));
            }
            let _ = info.created_utc();
        }
        let _ = decrypt_with_max_age(&key, text, u64::from(data.first().copied().unwrap_or(0)));
        let _ = decrypt_with_max_age(&key, text, u64::MAX);
    }

    // 2. Round trip, and tampering: the data as plaintext, then one edit of the token chosen by
    //    the data must never decrypt (strict decoding: another string is another token).
    let token = encrypt(&key, data).expect("encryption");
    assert_eq!(decrypt(&key, &token).expect("round trip").as_slice(), data);
    if let [a, b, ..] = data {
        let mut bytes = token.clone().into_bytes();
        let at = usize::from(*a) * 7 % bytes.len();
        const ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ \n";
        let replacement = ALPHABET[usize::from(*b) % ALPHABET.len()];
        if bytes[at] != replacement {
            bytes[at] = replacement;
            let tampered = String::from_utf8(bytes).expect("ascii");
            assert!(decrypt(&key, &tampered).is_err(), "a tampered token decrypted");
        }
        let truncated = &token[..at];
        assert!(decrypt(&key, truncated).is_err(), "a truncated token decrypted");
    }
});
