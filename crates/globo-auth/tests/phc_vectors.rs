//! Every entry of `testdata/vectors/argon2/phc.json` (see its SOURCE.md) with its expected
//! outcome in globo. Where the file's `valid` flag and globo differ, the reason is a documented
//! decision (docs/passwords.md, "Compatibility decisions"): 1 GiB hashes exceed the memory limit,
//! a `keyid=` that names no globo pepper version is unsupported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use globo_auth::{AuthError, verify_password};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Verifies,
    Mismatch,
    Malformed,
    Unsupported,
    ExceedsLimit(&'static str),
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

fn password_bytes(entry: &Value) -> Option<Vec<u8>> {
    if let Some(hex) = entry["password_hex"].as_str() {
        return Some(unhex(hex));
    }
    entry["password"].as_str().map(|p| p.as_bytes().to_vec())
}

/// What globo must do with this entry.
fn expected(entry: &Value) -> Outcome {
    let hash = entry["hash"].as_str().unwrap();
    let valid = entry["valid"].as_bool().unwrap();
    let reason = entry["reason"].as_str().unwrap_or("");
    if hash.contains("m=1048576") {
        // 1 GiB: beyond Limits::DEFAULT (256 MiB); refused before allocation.
        return Outcome::ExceedsLimit("memory (KiB)");
    }
    if hash.contains("keyid=") && !reason.contains("not B64") {
        return Outcome::Unsupported;
    }
    if valid {
        return Outcome::Verifies;
    }
    if reason.starts_with("mismatch") || reason.contains("digest computed WITHOUT data") {
        return Outcome::Mismatch;
    }
    if reason.contains("p (too big)") {
        return Outcome::ExceedsLimit("lanes");
    }
    if reason.contains("Error::Version") {
        return Outcome::Unsupported;
    }
    Outcome::Malformed
}

fn actual(entry: &Value) -> Outcome {
    let hash = entry["hash"].as_str().unwrap();
    // Parse-only entries have no password; any password shows whether the hash is usable.
    let password = password_bytes(entry).unwrap_or_else(|| b"password".to_vec());
    match verify_password(&password, hash) {
        Ok(()) => Outcome::Verifies,
        Err(AuthError::InvalidCredentials) => Outcome::Mismatch,
        Err(AuthError::MalformedHash { .. }) => Outcome::Malformed,
        Err(AuthError::UnsupportedHash { .. }) => Outcome::Unsupported,
        Err(AuthError::HashExceedsLimits { parameter, .. }) => {
            Outcome::ExceedsLimit(if parameter.starts_with("memory") {
                "memory (KiB)"
            } else if parameter == "lanes" {
                "lanes"
            } else {
                "other"
            })
        }
        Err(other) => panic!("unexpected error for {hash}: {other}"),
    }
}

#[test]
fn every_phc_vector_has_its_expected_outcome() {
    let vectors = globo_testkit::load_vectors("argon2/phc.json");
    let entries = vectors.as_array().unwrap();
    assert_eq!(entries.len(), 78);
    let mut wrong = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for entry in entries {
        let (want, got) = (expected(entry), actual(entry));
        *counts.entry(format!("{want:?}")).or_insert(0) += 1;
        if want != got {
            wrong.push(format!("{}: expected {want:?}, got {got:?}", entry["hash"]));
        }
    }
    assert!(wrong.is_empty(), "{} entries differ:\n{}", wrong.len(), wrong.join("\n"));
    // The categories are what the decisions say; a change in the file shows up here.
    let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        counts.join(" "),
        "ExceedsLimit(\"lanes\")=1 ExceedsLimit(\"memory (KiB)\")=2 Malformed=24 Mismatch=5 \
         Unsupported=3 Verifies=43"
    );
}

#[test]
fn the_lab_disagreements_follow_the_reference() {
    // No v= means v=16 (the argon2 crate assumes 19 and fails this hash).
    verify_password(
        "password",
        "$argon2i$m=65536,t=2,p=4$c29tZXNhbHQAAAAAAAAAAA$QWLzI4TY9HkL2ZTLc8g6SinwdhZewYrzz9zxCo0bkGY",
    )
    .unwrap();
    // A 4-byte tag from argon2-cffi's cheapest profile (password-hash refuses under 10 bytes).
    verify_password("password", "$argon2id$v=19$m=8,t=1,p=1$MTIzNDU2Nzg5MDEyMzQ1Ng$maTa5w")
        .unwrap();
    // A missing t is malformed, as in the reference (the argon2 crate defaults it).
    assert!(matches!(
        verify_password(
            "password",
            "$argon2d$v=16$m=32,p=3$8PDw8PDw8PA$Xv5daH0zPuKO3c9tMBG/WOIUsDrPqq815/xyQTukNxY"
        ),
        Err(AuthError::MalformedHash { .. })
    ));
}

#[test]
fn limits_are_checked_before_allocating() {
    // 4 TiB and 2^32-1 iterations would never finish: the answer must be immediate.
    let huge = "$argon2id$v=19$m=4294967295,t=4294967295,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    let err = verify_password("password", huge).unwrap_err();
    assert!(matches!(err, AuthError::HashExceedsLimits { parameter: "memory (KiB)", .. }));
    assert_eq!(
        err.to_string(),
        "argon2 hash exceeds the limit on memory (KiB): 4294967295 > 262144"
    );
    let slow =
        "$argon2id$v=19$m=64,t=17,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    assert!(matches!(
        verify_password("password", slow),
        Err(AuthError::HashExceedsLimits { parameter: "iterations", value: 17, max: 16 })
    ));
    let long_salt = format!(
        "$argon2id$v=19$m=64,t=1,p=1${}$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "A".repeat(88)
    );
    assert!(matches!(
        verify_password("password", &long_salt),
        Err(AuthError::HashExceedsLimits { parameter: "salt length (bytes)", value: 66, .. })
    ));
    let long_tag = format!("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ${}", "A".repeat(88));
    assert!(matches!(
        verify_password("password", &long_tag),
        Err(AuthError::HashExceedsLimits { parameter: "hash length (bytes)", .. })
    ));
    let too_long = format!("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ${}", "A".repeat(600));
    assert!(matches!(
        verify_password("password", &too_long),
        Err(AuthError::HashExceedsLimits { parameter: "hash string length (bytes)", .. })
    ));
    // A higher limit lets the same hash through to the computation.
    let limits = globo_auth::Limits::DEFAULT.with_max_memory_kib(1 << 20);
    assert_eq!(limits.max_memory_kib(), 1 << 20);
}

#[test]
fn malformed_hashes_are_errors_never_panics() {
    let cases = [
        "",
        "$",
        "$$",
        "argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$maTa5w",
        "$argon2x$v=19$m=8,t=1,p=1$c29tZXNhbHQ$maTa5w",
        "$argon2id$v=$m=8,t=1,p=1$c29tZXNhbHQ$maTa5w",
        "$argon2id$v=19$m=08,t=1,p=1$c29tZXNhbHQ$maTa5w",
        "$argon2id$v=19$m=+8,t=1,p=1$c29tZXNhbHQ$maTa5w",
        "$argon2id$v=19$m=8,t=1,p=1,$c29tZXNhbHQ$maTa5w",
        "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ=$maTa5w",
        "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHR$maTa5w",
        "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$maTa5w$",
        "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$maTa",
        "$argon2id$v=19$m=8,t=1,p=1$c29tZXNh$maTa5w",
        "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$ma\u{e9}a5w",
    ];
    for hash in cases {
        let err = verify_password("password", hash).unwrap_err();
        assert!(
            matches!(err, AuthError::MalformedHash { .. } | AuthError::UnsupportedHash { .. }),
            "{hash:?}: {err}"
        );
    }
}
