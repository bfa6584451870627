//! Seed/config JSON: `globo_secrets::seed::seed_entries` on arbitrary bytes. Never a panic;
//! the entries are exactly `seed_secrets`' string values in order; errors never repeat a
//! value (the exact message is checked).
#![no_main]

use globo_secrets::seed::seed_entries;
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;

fuzz_target!(|data: &[u8]| {
    let result = seed_entries(data);
    let json: Option<serde_json::Value> = serde_json::from_slice(data).ok();
    let seeds = json.as_ref().and_then(|v| v.get("seed_secrets")).and_then(|v| v.as_object());
    match result {
        Ok(entries) => {
            let seeds = seeds.expect("entries imply a seed_secrets object");
            assert_eq!(entries.len(), seeds.len());
            for ((name, value), (seed_name, seed_value)) in entries.iter().zip(seeds) {
                assert_eq!(name, seed_name);
                assert_eq!(Some(value.expose_secret()), seed_value.as_str());
            }
        }
        Err(error) => {
            // When the JSON has a seed_secrets object, the only error is the first non-string
            // value, named by its key alone: the message is exactly this, never a value.
            let Some(seeds) = seeds else { return };
            let bad = seeds.iter().find(|(_, v)| !v.is_string()).map(|(k, _)| k);
            let bad = bad.expect("an error implies a non-string value");
            assert_eq!(
                error.to_string(),
                format!("malformed configuration: seed_secrets.{bad} must be a string")
            );
        }
    }
});
