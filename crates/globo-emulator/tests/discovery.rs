//! Where the project folder comes from. Alone in its test binary: it changes the current
//! directory of the process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// A binary built in a checkout (this test binary lives in `<checkout>/target/...`) uses that
/// checkout, even when it runs inside another folder that looks like a globo checkout.
#[test]
fn the_checkout_the_binary_was_built_in_comes_before_the_current_directory() {
    let tree = tempfile::tempdir().unwrap();
    for file in ["Cargo.toml", "python/requirements.txt", "scripts/python-env"] {
        std::fs::create_dir_all(tree.path().join(file).parent().unwrap()).unwrap();
        std::fs::write(tree.path().join(file), "").unwrap();
    }
    std::env::set_current_dir(tree.path()).unwrap();
    assert!(
        std::env::var_os(globo_emulator::PROJECT_DIR_VAR).is_none(),
        "unset {} to run this test: it overrides the search",
        globo_emulator::PROJECT_DIR_VAR
    );
    let built_in =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    assert_eq!(globo_emulator::project_dir().unwrap(), Some(built_in));
}
