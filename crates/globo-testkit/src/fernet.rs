//! Fernet files exchanged with Python `cryptography`, both ways.

use std::path::Path;

use crate::Python;

/// For each index: Python decrypts `g<i>.enc` (made by the Rust side) and compares it with
/// `p<i>`, then encrypts `p<i>` into `y<i>.enc` for the Rust side to decrypt.
const PY_BOTH_WAYS: &str = r#"
import sys, pathlib
from cryptography.fernet import Fernet
d = pathlib.Path(sys.argv[1]); n = int(sys.argv[3])
f = Fernet(pathlib.Path(sys.argv[2]).read_bytes())
for i in range(n):
    plain = (d / f"p{i}").read_bytes()
    assert f.decrypt((d / f"g{i}.enc").read_bytes()) == plain, f"mismatch at {i}"
    (d / f"y{i}.enc").write_bytes(f.encrypt(plain))
print("ok")
"#;

/// `len` random bytes (from the operating system).
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes
}

/// Files of random bytes, one per size in `sizes`, both ways between Rust and Python
/// `cryptography` (`py` must import it) under the Fernet key `key_base64`: `encrypt_file(plain,
/// out)` encrypts each for Python to decrypt and compare, and `decrypt_file(path)` must give
/// back the plaintext of each file Python encrypted. Panics on any difference, naming the size.
pub fn fernet_files_both_ways(
    py: &Python,
    key_base64: &str,
    sizes: &[usize],
    encrypt_file: impl Fn(&Path, &Path),
    decrypt_file: impl Fn(&Path) -> Vec<u8>,
) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let d = dir.path();
    let key_path = d.join("secret.key");
    std::fs::write(&key_path, key_base64).expect("write the key file");
    for (i, &size) in sizes.iter().enumerate() {
        let plain = d.join(format!("p{i}"));
        std::fs::write(&plain, random_bytes(size)).expect("write a plaintext");
        encrypt_file(&plain, &d.join(format!("g{i}.enc")));
    }
    let out =
        py.run_ok(PY_BOTH_WAYS, &[path_str(d), path_str(&key_path), &sizes.len().to_string()], b"");
    assert_eq!(out, b"ok\n", "sizes {sizes:?}");
    for (i, size) in sizes.iter().enumerate() {
        let expected = std::fs::read(d.join(format!("p{i}"))).expect("read a plaintext");
        let got = decrypt_file(&d.join(format!("y{i}.enc")));
        assert!(got == expected, "size {size}: Python's token decrypts to other bytes");
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}
