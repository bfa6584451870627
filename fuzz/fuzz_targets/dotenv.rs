//! `.env` parsing: `read_env_file` and `LocalProvider` over a temporary file. Never a panic;
//! the provider agrees with the parsed entries (last one wins, empty means missing); errors
//! never repeat a value.
#![no_main]

#[path = "common.rs"]
mod common;

use globo_secrets::{Environment, LocalProvider, SecretsProvider, read_env_file};
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;

fuzz_target!(|data: &[u8]| {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("runtime"));
    let path = common::scratch(".env");
    std::fs::write(&path, data).expect("write .env");

    static EMPTY: std::sync::OnceLock<LocalProvider> = std::sync::OnceLock::new();
    let empty = EMPTY.get_or_init(|| {
        // An existing, empty file: a missing one gives a different message (it names the file).
        let path = common::scratch("empty.env");
        std::fs::write(&path, b"").expect("write empty.env");
        LocalProvider::new(path, &Environment::empty()).expect("empty")
    });
    let empty = |name: &str| runtime.block_on(empty.get(name));
    let parsed = read_env_file(&path);
    let provider = LocalProvider::new(&path, &Environment::empty());
    assert_eq!(parsed.is_ok(), provider.is_ok(), "the provider and the parser disagree");
    let (Ok(Some(entries)), Ok(provider)) = (parsed, provider) else { return };

    let mut last = std::collections::HashMap::new();
    for (name, value) in &entries {
        last.insert(name.clone(), value.expose_secret().to_owned());
    }
    for (name, value) in &last {
        match runtime.block_on(provider.get(name)) {
            Ok(got) => assert_eq!(got.expose_secret(), value, "wrong value for '{name}'"),
            Err(error) => {
                // The error depends on the name only: it is the one an empty environment
                // with an empty .env file gives (a check free of coincidences with the message).
                let message = error.to_string();
                let reference = empty(name).map(drop).expect_err("nothing is set there");
                assert_eq!(message, reference.to_string(), "the error depends on the value");
            }
        }
    }
});
