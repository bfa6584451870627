#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Interop with the real Python `cryptography` package (the lab's library), both ways, with
//! random plaintext sizes from 0 bytes to several MiB. Skipped locally without the venv;
//! fails in CI (`CI=true`) without it.

use globo_crypto::{Key, Keyring, decrypt, decrypt_file_to_memory, encrypt, encrypt_file};
use secrecy::ExposeSecret as _;

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

#[test]
fn random_sizes_both_ways() {
    let Some(py) = globo_testkit::python(&["cryptography"]) else { return };
    // A key made by Python's Fernet.generate_key(), used by globo.
    let key_text = py.run_ok(
        "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())",
        &[],
        b"",
    );
    let key = Key::from_base64(std::str::from_utf8(&key_text).unwrap()).unwrap();

    let mut sizes = vec![0usize, 1, 15, 16, 17, 1024];
    for _ in 0..4 {
        sizes.push((random_u64() % 4096) as usize);
    }
    for _ in 0..3 {
        sizes.push((random_u64() % (6 << 20)) as usize); // up to 6 MiB
    }
    globo_testkit::fernet_files_both_ways(
        &py,
        key.to_base64().expose_secret(),
        &sizes,
        |plain, out| encrypt_file(&key, plain, out).unwrap(),
        |path| decrypt_file_to_memory(&key, path).unwrap().as_slice().to_vec(),
    );
}

fn run_py(py: &globo_testkit::Python, code: &str, args: &[&str]) -> String {
    String::from_utf8(py.run_ok(code, args, b"")).unwrap().trim().to_string()
}

#[test]
fn multifernet_rotation_both_ways() {
    let Some(py) = globo_testkit::python(&["cryptography"]) else { return };
    let old = Key::generate().unwrap();
    let new = Key::generate().unwrap();
    let (old_b64, new_b64) = (old.to_base64(), new.to_base64());
    let (old_s, new_s) = (old_b64.expose_secret(), new_b64.expose_secret());

    // Python rotates a globo token; globo reads the result with the new key only.
    let token = encrypt(&old, b"rotate me").unwrap();
    let rotated = run_py(
        &py,
        "import sys; from cryptography.fernet import Fernet, MultiFernet\n\
         m = MultiFernet([Fernet(sys.argv[1]), Fernet(sys.argv[2])])\n\
         print(m.rotate(sys.argv[3].encode()).decode())",
        &[new_s, old_s, &token],
    );
    assert_eq!(decrypt(&new, &rotated).unwrap().as_slice(), b"rotate me");

    // globo rotates a Python token; Python reads the result with the new key only, and the
    // timestamp is kept on both sides.
    let py_token = run_py(
        &py,
        "import sys; from cryptography.fernet import Fernet\n\
         print(Fernet(sys.argv[1]).encrypt(b'from python').decode())",
        &[old_s],
    );
    let ring = Keyring::new(new.clone()).with_fallback(old.clone());
    let ours = ring.rotate(&py_token).unwrap();
    let check = run_py(
        &py,
        "import sys; from cryptography.fernet import Fernet\n\
         f = Fernet(sys.argv[1])\n\
         assert f.decrypt(sys.argv[2].encode()) == b'from python'\n\
         print(f.extract_timestamp(sys.argv[2].encode()))",
        &[new_s, &ours],
    );
    let ts = globo_crypto::inspect(&py_token).unwrap().timestamp;
    assert_eq!(check, ts.to_string());
}

/// Python's decoder skips characters outside the alphabet, so it accepts a token followed by a
/// newline (and even one split by newlines); globo accepts only the exact token, plus one
/// trailing newline at the end of a token *file*, so a `config.enc` written by a tool that adds
/// a newline still opens.
#[test]
fn newline_handling_compared_with_python() {
    let Some(py) = globo_testkit::python(&["cryptography"]) else { return };
    let key = Key::generate().unwrap();
    let key_b64 = key.to_base64();
    let token = encrypt(&key, b"nl").unwrap();
    let lenient = run_py(
        &py,
        "import sys; from cryptography.fernet import Fernet\n\
         f = Fernet(sys.argv[1]); t = sys.argv[2].encode()\n\
         print(f.decrypt(t + b'\\n') == b'nl', f.decrypt(t[:40] + b'\\n' + t[40:]) == b'nl')",
        &[key_b64.expose_secret(), &token],
    );
    assert_eq!(lenient, "True True");
    assert!(decrypt(&key, &format!("{token}\n")).is_err());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.enc");
    std::fs::write(&path, format!("{token}\n")).unwrap();
    assert_eq!(decrypt_file_to_memory(&key, &path).unwrap().as_slice(), b"nl");
}

/// A keyring whose first key shares the signing half of the key a token was made with: its tag
/// verifies, its padding does not. Python's `MultiFernet` moves on to the next key; so does
/// globo's one decoder, for `decrypt` and `Keyring::rotate` alike. Made with many tokens, since
/// a wrong AES key gives valid padding for about one token in 256 (then both take the first
/// key's garbage, and must still agree).
#[test]
fn keys_sharing_a_signing_half_as_multifernet() {
    let Some(py) = globo_testkit::python(&["cryptography"]) else { return };
    let right = Key::generate().unwrap();
    let right_b64 = right.to_base64();
    let raw = base64_decode(right_b64.expose_secret());
    let mut twin_raw = raw.clone();
    getrandom::fill(&mut twin_raw[16..]).unwrap();
    let twin_b64 = base64_encode(&twin_raw);
    let twin = Key::from_base64(&twin_b64).unwrap();
    let ring = Keyring::new(twin).with_fallback(right.clone());
    let tokens: Vec<String> =
        (0..40).map(|i| encrypt(&right, format!("t{i}").as_bytes()).unwrap()).collect();
    let joined = tokens.join(" ");
    // For each token, what MultiFernet([twin, right]) decrypts it to (hex), or "-".
    let python = run_py(
        &py,
        "import sys; from cryptography.fernet import Fernet, MultiFernet, InvalidToken\n\
         m = MultiFernet([Fernet(sys.argv[1]), Fernet(sys.argv[2])])\n\
         out = []\n\
         for t in sys.argv[3].split():\n\
         \x20   try: out.append(m.decrypt(t.encode()).hex())\n\
         \x20   except InvalidToken: out.append('-')\n\
         print(' '.join(out))",
        &[&twin_b64, right_b64.expose_secret(), &joined],
    );
    let ours: Vec<String> = tokens
        .iter()
        .map(|t| match decrypt(&ring, t) {
            Ok(p) => p.iter().map(|b| format!("{b:02x}")).collect(),
            Err(_) => "-".into(),
        })
        .collect();
    assert_eq!(ours.join(" "), python);
    for t in &tokens {
        let rotated = ring.rotate(t).unwrap();
        assert_eq!(decrypt(ring.primary(), &rotated).unwrap(), decrypt(&ring, t).unwrap());
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE.decode(text).unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}
