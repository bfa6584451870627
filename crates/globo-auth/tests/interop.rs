//! Interoperability with the lab's real libraries: argon2-cffi and passlib, both ways, and the
//! lab's users-file format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use globo_auth::{AuthError, Profile, UserStore, hash_password, verify_password};
use globo_testkit::Python;
use secrecy::SecretString;

const PASSWORDS: [&str; 3] =
    ["correct horse battery staple", "pässwörd-ünïcode-🔑-тест", "trailing space and NUL \0 "];

fn peers() -> Option<Python> {
    globo_testkit::python(&["argon2", "passlib"])
}

/// Verifies `hash` against stdin's password with argon2-cffi and passlib; prints two booleans.
const PY_VERIFY: &str = r#"
import sys, argon2, argon2.exceptions
from passlib.hash import argon2 as passlib_argon2
password = sys.stdin.buffer.read().decode("utf-8")
hash = sys.argv[1]
try:
    cffi = argon2.PasswordHasher().verify(hash, password)
except argon2.exceptions.VerifyMismatchError:
    cffi = False
print(cffi, passlib_argon2.verify(password, hash))
"#;

#[test]
fn hashes_made_by_globo_verify_in_argon2_cffi_and_passlib() {
    let Some(python) = peers() else { return };
    for profile in Profile::ALL {
        for password in PASSWORDS {
            let hash = hash_password(password, profile).unwrap();
            let params = profile.params();
            assert!(hash.starts_with(&format!(
                "$argon2id$v=19$m={},t={},p={}$",
                params.memory_kib(),
                params.iterations(),
                params.lanes()
            )));
            let out = python.run_ok(PY_VERIFY, &[&hash], password.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap().trim(), "True True", "{profile} {hash}");
            let wrong = format!("{password}x");
            let out = python.run_ok(PY_VERIFY, &[&hash], wrong.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap().trim(), "False False", "{profile}");
        }
    }
}

/// Prints hashes of stdin's password made by the Python libraries, one per line.
const PY_HASH: &str = r#"
import sys, argon2
from argon2.low_level import hash_secret, Type
from argon2 import profiles
from passlib.hash import argon2 as passlib_argon2
password = sys.stdin.buffer.read().decode("utf-8")
pw = password.encode("utf-8")
print(passlib_argon2.hash(password))                                        # the lab's call
print(argon2.PasswordHasher().hash(password))                               # argon2-cffi default
print(argon2.PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY).hash(password))
print(argon2.PasswordHasher.from_parameters(profiles.CHEAPEST).hash(password))  # 4-byte tag
print(argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(password))
print(passlib_argon2.using(type="i", memory_cost=512, rounds=2, parallelism=2).hash(password))
print(passlib_argon2.using(type="d", memory_cost=512, rounds=2, parallelism=2).hash(password))
print(hash_secret(pw, b"somesaltsomesalt", 2, 256, 2, 32, Type.I, version=16).decode())
print(hash_secret(pw, b"somesalt", 1, 64, 1, 16, Type.ID).decode())
"#;

#[test]
fn hashes_made_by_argon2_cffi_and_passlib_verify_in_globo() {
    let Some(python) = peers() else { return };
    for password in PASSWORDS {
        let out = python.run_ok(PY_HASH, &[], password.as_bytes());
        let hashes: Vec<String> =
            String::from_utf8(out).unwrap().lines().map(str::to_owned).collect();
        assert_eq!(hashes.len(), 9);
        for hash in &hashes {
            verify_password(password, hash).unwrap_or_else(|e| panic!("{hash}: {e}"));
            assert!(matches!(
                verify_password(format!("{password}x"), hash),
                Err(AuthError::InvalidCredentials)
            ));
        }
        assert!(hashes[7].starts_with("$argon2i$v=16$"));
    }
}

/// Writes a users file the way the lab does (`json.dump` of passlib hashes).
const PY_LAB_REGISTER: &str = r#"
import json, sys
from passlib.hash import argon2
users = {}
for line in sys.stdin.read().splitlines():
    name, password = line.split(":", 1)
    users[name] = argon2.hash(password)
with open(sys.argv[1], "w") as f:
    json.dump(users, f)
"#;

/// Checks a users file the way the lab does; prints one boolean per `name:password` line.
const PY_LAB_VERIFY: &str = r#"
import json, sys
from passlib.hash import argon2
users = json.load(open(sys.argv[1]))
for line in sys.stdin.read().splitlines():
    name, password = line.split(":", 1)
    print(argon2.verify(password, users[name]))
"#;

#[test]
fn users_files_move_between_the_lab_and_globo() {
    let Some(python) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let path_arg = path.to_str().unwrap();

    // The lab registers; globo verifies, with no rehash (same parameters).
    python.run_ok(
        PY_LAB_REGISTER,
        &[path_arg],
        "alice:wonderland rabbit\nbob:builder-of-things\ndave:dave's lab password".as_bytes(),
    );
    let store = UserStore::new(&path);
    let verified = store.verify("alice", &SecretString::from("wonderland rabbit")).unwrap();
    assert!(!verified.rehashed(), "lab hashes use the default profile's parameters");
    store.verify("bob", &SecretString::from("builder-of-things")).unwrap();
    // The lab had no context-specific-word rule: such passwords keep verifying.
    store.verify("dave", &SecretString::from("dave's lab password")).unwrap();
    assert!(matches!(
        store.verify("bob", &SecretString::from("wonderland rabbit")),
        Err(AuthError::InvalidCredentials)
    ));

    // globo registers into the same file; the lab verifies everyone.
    store.register("carol", &SecretString::from("christmas long passphrase")).unwrap();
    let out = python.run_ok(
        PY_LAB_VERIFY,
        &[path_arg],
        "alice:wonderland rabbit\nbob:builder-of-things\ncarol:christmas long passphrase\ncarol:wrong"
            .as_bytes(),
    );
    assert_eq!(String::from_utf8(out).unwrap(), "True\nTrue\nTrue\nFalse\n");
}

/// Issue 13 lifecycle: a password change, a reset and a deletion made by globo leave a file
/// the lab reads and verifies: the new passwords verify in passlib, the old ones do not, the
/// deleted user is gone and the others are untouched.
#[test]
fn lifecycle_changes_leave_a_users_file_the_lab_reads() {
    let Some(python) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let path_arg = path.to_str().unwrap();
    python.run_ok(
        PY_LAB_REGISTER,
        &[path_arg],
        "alice:wonderland rabbit\nbob:builder-of-things\ndave:dave's lab password\nerin:erin's lab password"
            .as_bytes(),
    );
    let store = UserStore::new(&path);
    let secret = SecretString::from;
    store
        .change_password(
            "alice",
            &secret("wonderland rabbit"),
            &secret("through the looking glass"),
            None,
        )
        .unwrap();
    store.reset_password("bob", &secret("an operator's fresh passphrase")).unwrap();
    store.delete("dave").unwrap();
    let out = python.run_ok(
        &format!("{PY_LAB_VERIFY}print(list(users))\n"),
        &[path_arg],
        "alice:through the looking glass\nalice:wonderland rabbit\nbob:an operator's fresh passphrase\n\
         bob:builder-of-things\nerin:erin's lab password"
            .as_bytes(),
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "True\nFalse\nTrue\nFalse\nTrue\n['alice', 'bob', 'erin']\n"
    );
}

/// Prints the name of the exception passlib raises when hashing stdin's password, or `ok`.
const PY_LAB_REFUSES: &str = r#"
import sys
from passlib.hash import argon2
try:
    argon2.using(memory_cost=8, rounds=1, parallelism=1).hash(sys.stdin.buffer.read().decode("utf-8"))
    print("ok")
except Exception as e:
    print(type(e).__name__)
"#;

#[test]
fn lab_users_with_passwords_longer_than_new_ones_may_be_log_in() {
    let Some(python) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    // 2,000 characters, and the longest the lab takes: 4,096 code points (passlib counts the
    // Python string's len()), here of 4 bytes each, 16,384 bytes.
    let long = "correct horse ".repeat(143)[..2000].to_owned();
    let widest = "\u{1F511}".repeat(4096);
    python.run_ok(
        PY_LAB_REGISTER,
        &[path.to_str().unwrap()],
        format!("long:{long}\nwidest:{widest}").as_bytes(),
    );
    let store = UserStore::new(&path);
    assert!(!store.verify("long", &SecretString::from(long.as_str())).unwrap().rehashed());
    store.verify("widest", &SecretString::from(widest.as_str())).unwrap();
    assert!(matches!(
        store.verify("long", &SecretString::from(&long[..1999])),
        Err(AuthError::InvalidCredentials)
    ));
    // That is the lab's limit: one code point more, and passlib refuses it.
    let out = python.run_ok(PY_LAB_REFUSES, &[], format!("{widest}x").as_bytes());
    assert_eq!(String::from_utf8(out).unwrap().trim(), "PasswordSizeError");
    let out = python.run_ok(PY_LAB_REFUSES, &[], widest.as_bytes());
    assert_eq!(String::from_utf8(out).unwrap().trim(), "ok");
}

#[test]
fn a_name_the_lab_stored_in_nfd_is_found_by_its_nfc_spelling() {
    let Some(python) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    // Python stores names as given; macOS input methods, among others, give NFD.
    python.run_ok(
        PY_LAB_REGISTER,
        &[path.to_str().unwrap()],
        "jose\u{301}:jose's lab password".as_bytes(),
    );
    let store = UserStore::new(&path);
    store.verify("jos\u{e9}", &SecretString::from("jose's lab password")).unwrap();
    store.verify("jose\u{301}", &SecretString::from("jose's lab password")).unwrap();
    let err =
        store.register("jos\u{e9}", &SecretString::from("a new long passphrase")).unwrap_err();
    assert!(matches!(err, AuthError::UserExists { .. }), "{err}");
    assert_eq!(store.usernames().unwrap(), ["jose\u{301}"]);
}

/// Checks a users file as a Python peer that follows globo's normalisation does: for each
/// `name:password` line, prints whether passlib verifies the password as typed, then its NFKC
/// form (the one line a peer adds), then argon2-cffi the NFKC form.
const PY_VERIFY_NFKC: &str = r#"
import json, sys, unicodedata
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from passlib.hash import argon2
users = json.load(open(sys.argv[1]))
for line in sys.stdin.read().splitlines():
    name, password = line.split(":", 1)
    normalized = unicodedata.normalize("NFKC", password)  # the one line a peer adds
    try:
        by_cffi = PasswordHasher().verify(users[name], normalized)
    except VerifyMismatchError:
        by_cffi = False
    print(argon2.verify(password, users[name]), argon2.verify(normalized, users[name]), by_cffi)
"#;

/// A password NFKC changes: fullwidth letters, a combining accent, a ligature.
const NOT_NFKC: &str = "ｃａｆｅ\u{301} au lait, ﬁve sugars";
const ITS_NFKC: &str = "caf\u{e9} au lait, five sugars";

/// NIST SP 800-63B-4 §3.1.1.2 normalisation against the lab: a lab user whose password NFKC
/// changes (passlib hashed its raw bytes) still logs in with it, and that login replaces the
/// hash by one of the NFKC form, which Python verifies after `unicodedata.normalize("NFKC")`.
#[test]
fn a_lab_hash_of_a_raw_non_nfkc_password_logs_in_and_is_upgraded() {
    let Some(python) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let path_arg = path.to_str().unwrap();
    python.run_ok(PY_LAB_REGISTER, &[path_arg], format!("alice:{NOT_NFKC}").as_bytes());
    // The lab hashed the raw bytes: passlib takes the typed form only.
    let lines = format!("alice:{NOT_NFKC}\nalice:{ITS_NFKC}");
    let out = python.run_ok(PY_VERIFY_NFKC, &[path_arg], lines.as_bytes());
    assert_eq!(String::from_utf8(out).unwrap(), "True False False\nFalse False False\n");

    let store = UserStore::new(&path);
    assert!(matches!(
        store.verify("alice", &SecretString::from(ITS_NFKC)),
        Err(AuthError::InvalidCredentials)
    ));
    let verified = store.verify("alice", &SecretString::from(NOT_NFKC)).unwrap();
    assert!(verified.rehashed() && verified.rehash_error().is_none(), "{verified:?}");
    // Now the hash is of the NFKC form: Python verifies it after the one-line normalisation,
    // whichever form is typed, and globo takes both forms without rewriting it again.
    let out = python.run_ok(PY_VERIFY_NFKC, &[path_arg], lines.as_bytes());
    assert_eq!(String::from_utf8(out).unwrap(), "False True True\nTrue True True\n");
    for spelling in [NOT_NFKC, ITS_NFKC] {
        assert!(!store.verify("alice", &SecretString::from(spelling)).unwrap().rehashed());
    }
    let out =
        python.run_ok(PY_VERIFY_NFKC, &[path_arg], "alice:cafe au lait, five sugars".as_bytes());
    assert_eq!(String::from_utf8(out).unwrap(), "False False False\n");
}

/// A password globo registers is hashed in its NFKC form: Python verifies it after the
/// one-line normalisation (`unicodedata.normalize("NFKC", pw)`), and only then when the
/// password was typed in another form.
#[test]
fn a_globo_hash_of_an_nfkc_password_verifies_in_python_after_normalising() {
    let Some(python) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let path_arg = path.to_str().unwrap();
    let store = UserStore::new(&path);
    store.register("bob", &SecretString::from(NOT_NFKC)).unwrap();
    store.register("carol", &SecretString::from("plain ascii passphrase")).unwrap();
    let lines =
        format!("bob:{NOT_NFKC}\nbob:{ITS_NFKC}\ncarol:plain ascii passphrase\ncarol:plain ascii");
    let out = python.run_ok(PY_VERIFY_NFKC, &[path_arg], lines.as_bytes());
    // ASCII is its own NFKC form: lab peers without the line keep working for it.
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "False True True\nTrue True True\nTrue True True\nFalse False False\n"
    );
}

/// The Python recipe of docs/passwords.md, "Pepper": the first ```python block after the
/// heading, exactly as documented.
fn documented_pepper_recipe() -> String {
    let docs =
        std::fs::read_to_string(globo_testkit::workspace_root().join("docs/passwords.md")).unwrap();
    let section = &docs[docs.find("\n## Pepper\n").expect("a Pepper section")..];
    let start = section.find("```python\n").expect("a python block") + "```python\n".len();
    let end = start + section[start..].find("```").unwrap();
    section[start..end].to_owned()
}

/// Given argv = [record, PASSWORD_PEPPER] and the password on stdin, prints the recipe's
/// `verify`, then, for the record unpeppered by the recipe, argon2-cffi's and passlib's
/// answers for the NFKC form; then what each says of the raw record and of the record with
/// keyid stripped (its tag still masked).
const PY_PEPPER_CHECK: &str = r#"
import sys, argon2, argon2.exceptions
from passlib.hash import argon2 as passlib_argon2
given = sys.stdin.buffer.read().decode("utf-8")
password = nfkc(given)
record, peppers = sys.argv[1], load_peppers(sys.argv[2])
def cffi(h):
    try:
        return argon2.PasswordHasher().verify(h, password)
    except argon2.exceptions.VerifyMismatchError:
        return False
    except Exception as e:  # the record is refused: which error
        return type(e).__name__
def passlib(h):
    try:
        return passlib_argon2.verify(password, h)
    except Exception as e:
        return type(e).__name__
head, tag = record.rsplit("$", 1)
stripped = "$".join(
    ",".join(f for f in p.split(",") if not f.startswith("keyid=")) for p in head.split("$")
) + "$" + tag
plain = unpepper(record, peppers)
print(verify(record, given, peppers), cffi(plain), passlib(plain), cffi(record), passlib(record), cffi(stripped), passlib(stripped))
"#;

/// Given argv = PASSWORD_PEPPER values, prints for each the version ids the recipe's
/// `load_peppers` derives (comma-separated), or `refused`.
const PY_LOAD: &str = r#"
import sys
for value in sys.argv[1:]:
    try:
        print(",".join(load_peppers(value)))
    except Exception:
        print("refused")
"#;

/// Issue 13: the documented Python recipe verifies peppered records with the lab's libraries
/// (a), both libraries fail on the raw peppered record, and with keyid stripped they answer
/// "no match" for the right password (b); unpeppered records still verify in them (c). A
/// password NFKC changes verifies through the recipe (review point 7: the recipe did not
/// normalise: `NameError: nfkc`, and with the raw password `False`).
#[test]
fn peppered_records_verify_in_python_through_the_documented_recipe_only() {
    let Some(python) = peers() else { return };
    let recipe = documented_pepper_recipe();
    let program = format!("{recipe}\n{PY_PEPPER_CHECK}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    // Two versions, the second written URL-safe and unpadded (both forms are allowed).
    let v1_text = "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8";
    let peppers_text = format!("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=, {v1_text}");
    let peppers = globo_auth::Peppers::parse(&SecretString::from(peppers_text.as_str())).unwrap();
    let v1 = globo_auth::Peppers::parse(&SecretString::from(v1_text)).unwrap();
    let old = UserStore::new(&path).with_profile(Profile::OwaspMinimum).with_peppers(v1);
    let store = UserStore::new(&path).with_profile(Profile::OwaspMinimum).with_peppers(peppers);
    let mut records = Vec::new();
    // Every user under version 1 first (a store with version 1 alone writes nothing once a
    // record names version 2: PepperStale), then each under version 2 (the current one) by
    // a login.
    for (i, password) in PASSWORDS.iter().chain([&NOT_NFKC]).enumerate() {
        old.register(&format!("user{i}"), &SecretString::from(*password)).unwrap();
    }
    for (i, password) in PASSWORDS.iter().chain([&NOT_NFKC]).enumerate() {
        let name = format!("user{i}");
        let users: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        records.push((password, users[&name].as_str().unwrap().to_owned()));
        assert!(store.verify(&name, &SecretString::from(*password)).unwrap().rehashed());
        let users: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        records.push((password, users[&name].as_str().unwrap().to_owned()));
    }
    for (password, record) in &records {
        assert!(record.contains(",keyid="), "{record}");
        let out = python.run_ok(&program, &[record, &peppers_text], password.as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap().trim(),
            "True True True VerificationError NotImplementedError False False",
            "{record}"
        );
        let wrong = format!("{password}x");
        let out = python.run_ok(&program, &[record, &peppers_text], wrong.as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap().trim(),
            "False False False VerificationError NotImplementedError False False",
            "{record}"
        );
    }
    // A lab hash of the raw (non-NFKC) password, peppered offline: the recipe's verify
    // falls back to the raw form, as globo does.
    let lab = String::from_utf8(python.run_ok(PY_HASH, &[], NOT_NFKC.as_bytes())).unwrap();
    let raw_path = dir.path().join("raw.json");
    std::fs::write(&raw_path, serde_json::json!({"lab": lab.lines().next().unwrap()}).to_string())
        .unwrap();
    let raw_store = UserStore::new(&raw_path).with_peppers(
        globo_auth::Peppers::parse(&SecretString::from(peppers_text.as_str())).unwrap(),
    );
    assert_eq!(raw_store.pepper_all().unwrap().changed, 1);
    let users: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&raw_path).unwrap()).unwrap();
    let record = users["lab"].as_str().unwrap();
    let out = python.run_ok(&program, &[record, &peppers_text], NOT_NFKC.as_bytes());
    assert!(String::from_utf8(out).unwrap().starts_with("True False False "), "{record}");
    // (c) Unpeppered records: what a store without a pepper writes, and what the lab writes,
    // verify in passlib (the recipe passes them through unchanged), and in a peppered store.
    let plain_path = dir.path().join("plain.json");
    let plain = UserStore::new(&plain_path).with_profile(Profile::OwaspMinimum);
    plain.register("carol", &SecretString::from(PASSWORDS[0])).unwrap();
    let users: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plain_path).unwrap()).unwrap();
    let record = users["carol"].as_str().unwrap();
    assert!(!record.contains("keyid"));
    let out = python.run_ok(&program, &[record, &peppers_text], PASSWORDS[0].as_bytes());
    assert_eq!(String::from_utf8(out).unwrap().trim(), "True True True True True True True");
    let lab = String::from_utf8(python.run_ok(PY_HASH, &[], PASSWORDS[1].as_bytes())).unwrap();
    let lab = lab.lines().next().unwrap();
    let out = python.run_ok(&program, &[lab, &peppers_text], PASSWORDS[1].as_bytes());
    assert_eq!(String::from_utf8(out).unwrap().trim(), "True True True True True True True");
    globo_auth::verify_password(PASSWORDS[1], lab).unwrap();
}

/// Review point 7: the recipe reads `PASSWORD_PEPPER` exactly as globo does: the same
/// version ids, and the same values refused (mixed alphabets, non-canonical or excess
/// padding, the old `ID:BASE64` form, short keys, a key twice). Before, the recipe took
/// `ID:BASE64` and mapped `-`/`_` over a standard-alphabet value.
#[test]
fn the_recipe_reads_the_pepper_value_as_globo_does() {
    let Some(python) = peers() else { return };
    let program = format!("{}\n{PY_LOAD}", documented_pepper_recipe());
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    let values = [
        key.to_owned(),
        format!(" {key}= , -_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8"),
        "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8".to_owned(),
        format!("{key}=="),
        format!("1:{key}"),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9".to_owned(),
        "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-+8".to_owned(),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg".to_owned(),
        format!("{key},{key}="),
        format!("{key},"),
    ];
    let args: Vec<&str> = values.iter().map(String::as_str).collect();
    let out = String::from_utf8(python.run_ok(&program, &args, b"")).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), values.len(), "{out}");
    let mut refused = 0;
    for (value, line) in values.iter().zip(lines) {
        let expected = match globo_auth::Peppers::parse(&SecretString::from(value.as_str())) {
            Ok(peppers) => peppers.versions().collect::<Vec<_>>().join(","),
            Err(_) => {
                refused += 1;
                "refused".to_owned()
            }
        };
        assert_eq!(line, expected, "{value:?}");
    }
    assert_eq!(refused, 7);
}
