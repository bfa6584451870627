//! The seed list's parser (`seed::seed_entries`, `seed::read_seed_config`): no backend needed,
//! so these run without the `aws` feature too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use globo_secrets::SecretsError;
use globo_secrets::seed::{read_seed_config, seed_entries};
use secrecy::ExposeSecret;

/// Issue 12 point 4: each way a seed list can be malformed is its own variant, with the
/// message it always had; none repeats a value.
#[test]
fn each_malformed_seed_list_is_its_own_variant_and_names_no_value() {
    let error = seed_entries(br#"{"seed_secrets": {"N": "hunter2"#).unwrap_err();
    assert!(matches!(error, SecretsError::SeedConfigNotJson { line: 1, column: 31 }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "malformed configuration: the configuration is not valid JSON (line 1, column 31)"
    );

    let error = seed_entries(br#"{"database_url": "postgresql://localhost"}"#).unwrap_err();
    assert!(matches!(error, SecretsError::SeedConfigMissing), "{error:?}");
    assert_eq!(
        error.to_string(),
        "malformed configuration: the configuration has no 'seed_secrets' object"
    );

    let error = seed_entries(br#"{"seed_secrets": ["hunter2"]}"#).unwrap_err();
    assert!(matches!(error, SecretsError::SeedConfigNotObject), "{error:?}");
    assert_eq!(
        error.to_string(),
        "malformed configuration: 'seed_secrets' must be an object of name: value"
    );

    let error = seed_entries(br#"{"seed_secrets": {"A": "ok", "N": 12345}}"#).unwrap_err();
    assert!(
        matches!(&error, SecretsError::SeedValueNotString { name } if name == "N"),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "malformed configuration: seed_secrets.N must be a string");

    for error in [
        seed_entries(br#"{"seed_secrets": {"N": "hunter2"#).unwrap_err(),
        seed_entries(br#"{"seed_secrets": ["hunter2"]}"#).unwrap_err(),
        seed_entries(br#"{"seed_secrets": {"N": ["hunter2"]}}"#).unwrap_err(),
    ] {
        assert!(!format!("{error} {error:?}").contains("hunter2"), "{error:?}");
    }
}

#[test]
fn a_seed_list_is_read_in_file_order_without_a_backend() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    globo_fs::write_atomic(
        &path,
        br#"{"seed_secrets": {"PAYMENT_GATEWAY_API_KEY": "p", "EMAIL_SERVICE_API_KEY": "e"}}"#,
    )
    .unwrap();
    let entries = read_seed_config(&path).unwrap();
    let entries: Vec<(&str, &str)> =
        entries.iter().map(|(n, v)| (n.as_str(), v.expose_secret())).collect();
    assert_eq!(entries, [("PAYMENT_GATEWAY_API_KEY", "p"), ("EMAIL_SERVICE_API_KEY", "e")]);
    let missing = read_seed_config(&dir.path().join("none.json")).unwrap_err();
    assert!(matches!(missing, SecretsError::ConfigUnreadable { .. }), "{missing:?}");
}
