//! Every route that opens a token goes through the one decoder, so they all agree: `decrypt`,
//! `decrypt_with_max_age`, `Keyring::rotate`, `decrypt_file_to_memory` and
//! `decrypt_file_with_max_age` (with and without the trailing newline), and the rotation's
//! re-encryption of a file, over keyrings with the matching key in every position, wrong keys
//! only, a key that shares the matching key's signing half (its tag verifies, its padding does
//! not), tampered tokens, non-canonical spellings, and sizes on both sides of the parallel
//! limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use base64::Engine as _;

use crate::file::reencrypt_file;
use crate::{
    CryptoError, Key, Keyring, decrypt, decrypt_file_to_memory, decrypt_file_with_max_age,
    decrypt_with_max_age,
};

/// A fixed key (the test is deterministic: a wrong AES key yields valid padding for about one
/// token in 256, and these keys and plaintexts are known not to).
fn key(signing: u8, encryption: u8) -> Key {
    let mut bytes = [signing; 32];
    bytes[16..].fill(encryption);
    Key::from_base64(&crate::fernet::STRICT_URL_SAFE.encode(bytes)).unwrap()
}

fn ring(keys: &[Key]) -> Keyring {
    let mut ring = Keyring::new(keys[0].clone());
    for key in &keys[1..] {
        ring = ring.with_fallback(key.clone());
    }
    ring
}

/// The spellings of one token every route must treat alike: the token itself, tampered at
/// several places, truncated, and non-canonical spellings of it.
fn variants(token: &str) -> Vec<String> {
    let bytes = token.as_bytes();
    let n = bytes.len();
    let mut out = vec![token.to_string()];
    for i in [0, 1, 12, 35, 36, 37, n / 2, n - 45, n - 44, n - 2, n - 1] {
        for replacement in [b'A', b'_', b'='] {
            if bytes[i] != replacement {
                let mut t = bytes.to_vec();
                t[i] = replacement;
                out.push(String::from_utf8(t).unwrap());
            }
        }
    }
    let stem = token.trim_end_matches('=');
    out.extend([
        token[..n - 4].to_string(),
        token[4..].to_string(),
        stem.to_string(),
        format!("{token}="),
        format!("{token}AAAA"),
        format!(" {token}"),
        format!("{}\n{}", &token[..n / 2], &token[n / 2..]),
        token.replace('-', "+").replace('_', "/"),
    ]);
    out
}

/// What one route made of a token: the plaintext and the timestamp, or nothing.
type Outcome = Option<(Vec<u8>, u64)>;

fn timestamp_of(token: &str) -> u64 {
    crate::inspect(token).unwrap().timestamp
}

/// Every route's outcome for `token` under `ring`, named.
fn outcomes(ring: &Keyring, token: &str, dir: &Path) -> Vec<(&'static str, Outcome)> {
    let ts = crate::inspect(token).ok().map(|i| i.timestamp);
    let with_ts = |r: Result<crate::Plaintext, CryptoError>| match r {
        Ok(p) => Some((p.to_vec(), ts.unwrap())),
        Err(CryptoError::Decryption) => None,
        Err(e) => panic!("not the opaque error: {e}"),
    };
    let mut v = vec![
        ("decrypt", with_ts(decrypt(ring, token))),
        ("decrypt_with_max_age", with_ts(decrypt_with_max_age(ring, token, u64::MAX))),
    ];
    // Keyring::rotate: the new token is under the primary key, with the old timestamp.
    v.push((
        "rotate",
        match ring.rotate(token) {
            Ok(rotated) => {
                let plain = decrypt(ring.primary(), &rotated).unwrap().to_vec();
                Some((plain, timestamp_of(&rotated)))
            }
            Err(CryptoError::Decryption) => None,
            Err(e) => panic!("rotate: not the opaque error: {e}"),
        },
    ));
    let path = dir.join("config.enc");
    for (name, text) in [("file", token.to_string()), ("file+newline", format!("{token}\n"))] {
        std::fs::write(&path, &text).unwrap();
        v.push((name, with_ts(decrypt_file_to_memory(ring, &path))));
        let aged = decrypt_file_with_max_age(ring, &path, u64::MAX);
        v.push(("decrypt_file_with_max_age", with_ts(aged)));
    }
    // The rotation's re-encryption of a file; "already under the primary key" leaves it as is.
    std::fs::write(&path, token).unwrap();
    v.push((
        "reencrypt_file",
        match reencrypt_file(ring, &path) {
            Ok(changed) => {
                let text = std::fs::read_to_string(&path).unwrap();
                assert_eq!(changed, text != token, "changed means rewritten");
                let plain = decrypt(ring.primary(), &text).unwrap().to_vec();
                Some((plain, timestamp_of(&text)))
            }
            Err(CryptoError::RotationUndecryptable { .. }) => None,
            Err(e) => panic!("reencrypt_file: {e}"),
        },
    ));
    v
}

#[test]
fn every_route_agrees_on_every_keyring_and_token() {
    let dir = tempfile::tempdir().unwrap();
    let right = key(1, 2);
    let (w1, w2) = (key(3, 4), key(5, 6));
    // Shares the right key's signing half: its HMAC accepts the right key's tokens, its AES
    // key does not decrypt them (the padding is invalid), and Python's `MultiFernet` then
    // moves on to the next key.
    let twin = key(1, 7);
    // (keyring, whether it decrypts the right key's tokens)
    let rings: Vec<(Vec<Key>, bool)> = vec![
        (vec![right.clone()], true),
        (vec![right.clone(), w1.clone()], true),
        (vec![w1.clone(), right.clone()], true),
        (vec![w1.clone(), w2.clone(), right.clone()], true),
        (vec![w1.clone(), right.clone(), w2.clone()], true),
        (vec![twin.clone(), right.clone()], true),
        (vec![right.clone(), twin.clone()], true),
        (vec![w1.clone()], false),
        (vec![w1.clone(), w2.clone()], false),
        (vec![twin.clone()], false),
    ];
    let mut compared = 0;
    for size in [0usize, 5, 16, 1000, crate::fernet::PARALLEL_MIN + 7] {
        let plaintext: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let token =
            crate::fernet::encrypt_from_parts(&right, &plaintext, 1_700_000_000, &[9; 16]).unwrap();
        // Large tokens: the valid token and a few edits only (each route reads it whole).
        let tokens = if size > 100_000 {
            vec![token.clone(), variants(&token)[1].clone(), token[..token.len() - 4].into()]
        } else {
            variants(&token)
        };
        for (keys, decrypts) in &rings {
            let ring = ring(keys);
            for (i, t) in tokens.iter().enumerate() {
                let all = outcomes(&ring, t, dir.path());
                let (_, first) = &all[0];
                for (name, outcome) in &all[1..] {
                    assert_eq!(
                        outcome, first,
                        "{name} vs decrypt: size {size}, ring {keys:?}, #{i}"
                    );
                }
                if i == 0 {
                    let expected = decrypts.then(|| (plaintext.clone(), 1_700_000_000));
                    assert_eq!(first, &expected, "size {size}, ring {keys:?}");
                } else if t != &token {
                    assert_eq!(first, &None, "size {size}, ring {keys:?}, #{i}: {t:.60}");
                }
                compared += 1;
            }
        }
    }
    assert!(compared > 300, "{compared}");
}
