#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Token behaviour: strict decoding (no malleability), opaque failures, keyrings, max age,
//! inspection, and interop with the `fernet` crate (a second Rust implementation).

use globo_crypto::{CryptoError, Key, Keyring, decrypt, decrypt_with_max_age, encrypt, inspect};
use secrecy::ExposeSecret as _;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn rejected(key: &Key, token: &str) -> bool {
    matches!(decrypt(key, token), Err(CryptoError::Decryption))
}

/// Changing any single character of a token, to any other character (in the alphabet, `=`,
/// outside it), or deleting it, makes it invalid.
#[test]
fn every_single_character_mutation_is_rejected() {
    let key = Key::generate().unwrap();
    for plaintext in [&b""[..], b"hello", b"0123456789abcdef", b"{\"a\": 1}\n"] {
        let token = encrypt(&key, plaintext).unwrap();
        assert_eq!(decrypt(&key, &token).unwrap().as_slice(), plaintext);
        let bytes = token.as_bytes();
        let mut replacements: Vec<u8> = ALPHABET.to_vec();
        replacements.extend_from_slice(b"=+/ \n.*\0");
        for i in 0..bytes.len() {
            for &r in &replacements {
                if r == bytes[i] {
                    continue;
                }
                let mut mutated = bytes.to_vec();
                mutated[i] = r;
                let mutated = String::from_utf8(mutated).unwrap();
                assert!(rejected(&key, &mutated), "accepted {r:?} at {i}: {mutated}");
            }
            let mut deleted = bytes.to_vec();
            deleted.remove(i);
            assert!(rejected(&key, std::str::from_utf8(&deleted).unwrap()), "deleted {i}");
        }
    }
}

/// The non-canonical spellings a lenient decoder accepts (fernet/spec PR #11).
#[test]
fn non_canonical_spellings_are_rejected() {
    let key = Key::generate().unwrap();
    // "hello" gives a 73-byte token: 100 characters ending in "==", with 2 padding bits.
    let token = encrypt(&key, b"hello").unwrap();
    assert!(token.ends_with("=="));
    let stem = token.trim_end_matches('=');
    let last = stem.as_bytes()[stem.len() - 1];
    let pos = ALPHABET.iter().position(|&c| c == last).unwrap();
    let nonzero_bits = ALPHABET[(pos & !0b1111) | 0b0001] as char;
    let cases = [
        stem.to_string(),                                       // missing padding
        format!("{stem}="),                                     // short padding
        format!("{token}="),                                    // extra padding
        format!("{token}\n"),                                   // trailing newline
        format!(" {token}"),                                    // leading space
        format!("{token}junk"),                                 // junk after the token
        format!("{token}AAAA"),                                 // a whole extra quantum
        format!("{}\n{}", &token[..50], &token[50..]),          // newline inside
        format!("{}{nonzero_bits}==", &stem[..stem.len() - 1]), // non-zero padding bits
        token.replace('-', "+").replace('_', "/"),              // standard alphabet
    ];
    for case in cases {
        if case == token {
            continue; // the standard-alphabet case only differs when the token has - or _
        }
        assert!(rejected(&key, &case), "accepted {case:?}");
    }

    // The fernet crate strips and ignores padding, so it accepts the spelling without it: the
    // malleability globo closes.
    let lenient = fernet::Fernet::new(key.to_base64().expose_secret()).unwrap();
    assert_eq!(lenient.decrypt(stem).unwrap(), b"hello");
}

#[test]
fn wrong_key_and_tampering_give_the_same_error() {
    let key = Key::generate().unwrap();
    let token = encrypt(&key, b"secret config").unwrap();
    let wrong = decrypt(&Key::generate().unwrap(), &token).unwrap_err();
    let mut bytes = globo_crypto::inspect(&token).map(|_| token.clone().into_bytes()).unwrap();
    bytes[30] = if bytes[30] == b'A' { b'B' } else { b'A' };
    let tampered = decrypt(&key, std::str::from_utf8(&bytes).unwrap()).unwrap_err();
    assert_eq!(wrong.to_string(), tampered.to_string());
    assert!(matches!(wrong, CryptoError::Decryption));
    assert!(matches!(tampered, CryptoError::Decryption));
}

#[test]
fn keyring_decrypts_with_any_key_and_encrypts_with_the_first() {
    let old = Key::generate().unwrap();
    let new = Key::generate().unwrap();
    let ring = Keyring::new(new.clone()).with_fallback(old.clone());
    let old_token = encrypt(&old, b"v1").unwrap();
    assert_eq!(decrypt(&ring, &old_token).unwrap().as_slice(), b"v1");
    let fresh = ring.encrypt(b"v2").unwrap();
    assert_eq!(decrypt(&new, &fresh).unwrap().as_slice(), b"v2");
    assert!(decrypt(&old, &fresh).is_err());

    let rotated = ring.rotate(&old_token).unwrap();
    assert_eq!(decrypt(&new, &rotated).unwrap().as_slice(), b"v1");
    assert!(decrypt(&old, &rotated).is_err());
    // As in Python's MultiFernet.rotate, the timestamp is kept.
    assert_eq!(inspect(&rotated).unwrap().timestamp, inspect(&old_token).unwrap().timestamp);

    let stranger = Key::generate().unwrap();
    assert!(ring.rotate(&encrypt(&stranger, b"x").unwrap()).is_err());
}

/// A token built independently from the primitives, with a chosen timestamp.
fn token_at(key: &Key, timestamp: u64, plaintext: &[u8]) -> String {
    use aes::cipher::{BlockEncryptMut as _, KeyIvInit as _, block_padding::Pkcs7};
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let raw =
        base64::engine::general_purpose::URL_SAFE.decode(key.to_base64().expose_secret()).unwrap();
    let iv = [9u8; 16];
    let ct = cbc::Encryptor::<aes::Aes128>::new_from_slices(&raw[16..], &iv)
        .unwrap()
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut msg = vec![0x80];
    msg.extend_from_slice(&timestamp.to_be_bytes());
    msg.extend_from_slice(&iv);
    msg.extend_from_slice(&ct);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&raw[..16]).unwrap();
    mac.update(&msg);
    msg.extend_from_slice(&mac.finalize().into_bytes());
    base64::engine::general_purpose::URL_SAFE.encode(msg)
}

#[test]
fn max_age() {
    let key = Key::generate().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let fresh = encrypt(&key, b"fresh").unwrap();
    assert_eq!(decrypt_with_max_age(&key, &fresh, 3600).unwrap().as_slice(), b"fresh");

    let hour_old = token_at(&key, now - 3600, b"old");
    assert_eq!(decrypt(&key, &hour_old).unwrap().as_slice(), b"old");
    assert!(decrypt_with_max_age(&key, &hour_old, 7200).is_ok());
    assert!(matches!(decrypt_with_max_age(&key, &hour_old, 60), Err(CryptoError::Decryption)));

    // More than 60 s in the future is refused when a maximum age is given (as in Python), but
    // not by plain decrypt (a config file must survive a clock that runs behind).
    let future = token_at(&key, now + 3600, b"future");
    assert!(decrypt(&key, &future).is_ok());
    assert!(decrypt_with_max_age(&key, &future, 86_400).is_err());
    assert!(decrypt_with_max_age(&key, &token_at(&key, now + 30, b"x"), 60).is_ok());
    assert!(decrypt_with_max_age(&key, &token_at(&key, u64::MAX, b"x"), u64::MAX).is_err());
}

#[test]
fn inspect_reads_time_and_size_without_the_key() {
    let key = Key::generate().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for len in [0usize, 1, 15, 16, 17, 1000] {
        let token = encrypt(&key, &vec![b'x'; len]).unwrap();
        let info = inspect(&token).unwrap();
        assert!(info.timestamp.abs_diff(now) <= 5);
        assert!(info.plaintext_len_range().contains(&len), "{len}: {info:?}");
        assert_eq!(info.ciphertext_len % 16, 0);
        assert!(info.created_utc().ends_with('Z'));
    }
    assert!(matches!(inspect("not a token"), Err(CryptoError::MalformedToken)));
    let token = encrypt(&key, b"x").unwrap();
    assert!(matches!(inspect(&format!("{token}\n")), Err(CryptoError::MalformedToken)));
}

#[test]
fn interop_with_the_fernet_crate_both_ways() {
    let key = Key::generate().unwrap();
    let other = fernet::Fernet::new(key.to_base64().expose_secret()).unwrap();
    for len in [0usize, 1, 16, 31, 4096, 100_000] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let ours = encrypt(&key, &data).unwrap();
        assert_eq!(other.decrypt(&ours).unwrap(), data);
        let theirs = other.encrypt(&data);
        assert_eq!(decrypt(&key, &theirs).unwrap().as_slice(), data.as_slice());
    }
    let key_text = fernet::Fernet::generate_key();
    assert!(Key::from_base64(&key_text).is_ok());
}
