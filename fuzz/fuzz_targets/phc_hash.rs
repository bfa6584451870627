//! PHC hash parsing and bounded verification: `is_hash_obsolete` (parse and bounds only) on
//! arbitrary text, `verify_password_with_limits` when the hash is cheap, and the round trip
//! `hash_password` -> `verify_password`.
#![no_main]

#[path = "common.rs"]
mod common;

use globo_auth::{
    AuthError, Limits, Profile, hash_password, is_hash_obsolete, verify_password,
    verify_password_with_limits,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: how much of the rest is the password.
    let Some((&split, rest)) = data.split_first() else { return };
    let split = usize::from(split).min(rest.len());
    let (password, hash) = rest.split_at(split);
    let Ok(hash) = std::str::from_utf8(hash) else { return };

    let parsed = is_hash_obsolete(hash, Profile::TestOnlyInsecure);
    for profile in Profile::ALL {
        // Parsing does not depend on the profile.
        assert_eq!(is_hash_obsolete(hash, profile).is_ok(), parsed.is_ok());
    }
    let tight = Limits::DEFAULT.with_max_memory_kib(0);
    if common::cheap_phc(hash) {
        match verify_password_with_limits(password, hash, &tight) {
            Ok(()) | Err(AuthError::InvalidCredentials) => {
                assert!(parsed.is_ok(), "verified a hash the parser refuses")
            }
            Err(_) => {}
        }
    }

    // Round trip with the cheap profile, on the first bytes only so most runs stay parsing.
    if password.len() < 64 && split % 8 == 0 {
        let made = hash_password(password, Profile::TestOnlyInsecure).expect("hashing");
        verify_password(password, &made).expect("own hash verifies");
        assert_eq!(is_hash_obsolete(&made, Profile::TestOnlyInsecure).ok(), Some(false));
        let mut other = password.to_vec();
        other.push(b'x');
        assert!(matches!(verify_password(&other, &made), Err(AuthError::InvalidCredentials)));
    }
});
