"""The lab's `app config encrypt FILE`, written the way the Python original does it
(cryptography's Fernet): read the file as bytes, encrypt, write the token. The peer of
`app config encrypt` in globo-crypto's `cli` benchmark (crates/globo-crypto/benches/cli.rs);
it is not part of globo.

    python config_encrypt.py FILE [--out config.enc] [--key-file secret.key]
"""
import argparse
import sys

from cryptography.fernet import Fernet


def encrypt_file(plaintext_path, key, ciphertext_path="config.enc"):
    with open(plaintext_path, "rb") as f:
        data = f.read()
    token = Fernet(key).encrypt(data)
    with open(ciphertext_path, "wb") as f:
        f.write(token)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--out", default="config.enc")
    parser.add_argument("--key-file", default="secret.key")
    args = parser.parse_args()
    with open(args.key_file, "rb") as f:
        key = f.read()
    encrypt_file(args.file, key, args.out)
    print(f"Encrypted '{args.file}' to '{args.out}'.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
