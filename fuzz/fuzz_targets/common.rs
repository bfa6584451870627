//! Helpers shared by the fuzz targets (included with `#[path]`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

/// A private folder for the targets that need a file, made once per process.
pub fn scratch(name: &str) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temporary folder")).path().join(name)
}

/// Whether a PHC-looking string asks for little enough work to verify thousands of times a
/// second. The library's own bound (`Limits`, at least 64 MiB) is for production, where one
/// verification may take a second; a fuzzer needs microseconds. Anything above this is still
/// parsed and bounds-checked, just not hashed.
pub fn cheap_phc(hash: &str) -> bool {
    let number = |name: &str| -> Option<u64> {
        let start = hash.find(name)? + name.len();
        let digits: String = hash[start..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let m = number("m=").unwrap_or(u64::MAX);
    let t = number("t=").unwrap_or(u64::MAX);
    let p = number("p=").unwrap_or(u64::MAX);
    // The parser takes the first `m=`, `t=`, `p=`; these may be other ones, which only makes
    // the filter stricter or looser on inputs the parser refuses anyway.
    m <= 256
        && t <= 2
        && p <= 4
        && hash.matches("m=").count() == 1
        && hash.matches("t=").count() == 1
}
