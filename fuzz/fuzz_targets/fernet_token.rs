//! Fernet token decoding on arbitrary text, through every route that opens a token (they share
//! one decoder): `decrypt`, `decrypt_with_max_age` and `inspect` on the text in memory;
//! `Keyring::rotate` with the key in either position of a two-key ring (the rotation's path);
//! `decrypt_file_to_memory` and `inspect_file` on the text as a file (the file reader the
//! rotation's re-encryption uses). All must agree. Plus properties: what encrypts decrypts
//! back, and any other spelling of a valid token fails.
#![no_main]

use std::io::Write as _;

use globo_crypto::{
    Key, Keyring, decrypt, decrypt_file_to_memory, decrypt_with_max_age, encrypt, inspect,
    inspect_file,
};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
/// Another key, and one sharing KEY's signing half (its tag verifies KEY's tokens, its AES key
/// does not decrypt them).
const OTHER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const TWIN: &str = "cw_0x689RpI-jtRR7oE8h2RlZmdoaWprbG1ub3BxcnM=";

/// The routes that open `text` from a file: decryption and inspection.
fn from_file(key: &Key, text: &[u8]) -> (Option<Vec<u8>>, Option<(u64, usize)>) {
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    file.write_all(text).expect("write");
    let plain = decrypt_file_to_memory(key, file.path()).ok().map(|p| p.to_vec());
    let info = inspect_file(file.path()).ok().map(|i| (i.timestamp, i.ciphertext_len));
    (plain, info)
}

fuzz_target!(|data: &[u8]| {
    let key = Key::from_base64(KEY).expect("the fixed key parses");
    let other = Key::from_base64(OTHER).expect("the second key parses");
    let twin = Key::from_base64(TWIN).expect("the twin key parses");

    // 1. Arbitrary text as a token: never a panic; a decryption implies a valid structure.
    if let Ok(text) = std::str::from_utf8(data) {
        let decrypted = decrypt(&key, text);
        let info = inspect(text);
        if decrypted.is_ok() {
            assert!(info.is_ok(), "a token that decrypts must inspect");
        }
        if let Ok(info) = &info {
            assert!(info.ciphertext_len >= 16 && info.ciphertext_len % 16 == 0);
            let range = info.plaintext_len_range();
            if let Ok(plaintext) = &decrypted {
                assert!(range.contains(&plaintext.len()));
            }
            let _ = info.created_utc();
        }
        let _ = decrypt_with_max_age(&key, text, u64::from(data.first().copied().unwrap_or(0)));
        let plain = decrypted.ok().map(|p| p.to_vec());
        assert_eq!(
            decrypt_with_max_age(&key, text, u64::MAX).ok().map(|p| p.to_vec()),
            plain,
            "no age limit decrypts as decrypt does"
        );

        // The rotation's path: a keyring with the key first, or after a twin (which the
        // decoder skips when its padding fails, as MultiFernet does); the result re-encrypted
        // under the primary with the same timestamp, exactly when the ring decrypts.
        let first = Keyring::new(key.clone()).with_fallback(other.clone());
        let after_twin = Keyring::new(twin.clone()).with_fallback(key.clone());
        for ring in [&first, &after_twin] {
            let by_ring = decrypt(ring, text).ok().map(|p| p.to_vec());
            match ring.rotate(text) {
                Ok(rotated) => {
                    let again = decrypt(ring.primary(), &rotated).expect("rotated decrypts");
                    assert_eq!(Some(again.to_vec()), by_ring, "rotate agrees with decrypt");
                    let (before, after) = (inspect(text).expect("inspects"), inspect(&rotated));
                    assert_eq!(after.expect("rotated inspects").timestamp, before.timestamp);
                }
                Err(_) => assert!(by_ring.is_none(), "rotate refused what decrypt opens"),
            }
        }
        assert_eq!(decrypt(&first, text).ok().map(|p| p.to_vec()), plain, "key first");

        // The file reader (as rotation reads each file), without and with the one trailing
        // newline it accepts.
        let info = info.ok().map(|i| (i.timestamp, i.ciphertext_len));
        if !data.ends_with(b"\n") {
            assert_eq!(from_file(&key, data), (plain.clone(), info), "the file reads as the text");
            let mut with_newline = data.to_vec();
            with_newline.push(b'\n');
            assert_eq!(from_file(&key, &with_newline), (plain, info), "one trailing newline");
        }
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
