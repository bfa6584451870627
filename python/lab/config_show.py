"""The lab's `app config show`, written the way the Python original does it (cryptography's
Fernet): load `secret.key`, decrypt `config.enc` in memory, parse the JSON and print it with
`json.dumps(indent=2)`. It is the peer globo-crypto's `cli` benchmark compares against
(crates/globo-crypto/benches/cli.rs); it is not part of globo.

    python config_show.py [--in config.enc] [--key-file secret.key] [--raw]

--raw: write the decrypted bytes to stdout unchanged (as `app config show --raw`).
"""
import argparse
import json
import sys

from cryptography.fernet import Fernet, InvalidToken


def decrypt_to_memory(key, ciphertext_path="config.enc"):
    try:
        with open(ciphertext_path, "rb") as f:
            token = f.read()
    except FileNotFoundError:
        raise RuntimeError(f"Ciphertext file '{ciphertext_path}' not found.")
    try:
        return Fernet(key).decrypt(token)
    except InvalidToken:
        raise RuntimeError("Decryption failed: ciphertext is corrupt or the key is wrong.")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--in", dest="input", default="config.enc")
    parser.add_argument("--key-file", default="secret.key")
    parser.add_argument("--raw", action="store_true")
    args = parser.parse_args()
    with open(args.key_file, "rb") as f:
        key = f.read()
    try:
        plaintext = decrypt_to_memory(key, args.input)
    except RuntimeError as e:
        print(e.args[0], file=sys.stderr)
        return 1
    if args.raw:
        sys.stdout.buffer.write(plaintext)
    else:
        print(json.dumps(json.loads(plaintext), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
