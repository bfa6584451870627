//! The README and docs/architecture.md against the repository: dependency lines a user can
//! paste today, examples that are whole programs, and layouts that list what is there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap()
}

/// The fenced blocks of `text`: (info string, body), in order.
fn fenced(text: &str) -> Vec<(&str, String)> {
    let mut found = Vec::new();
    let mut open: Option<(&str, String)> = None;
    for line in text.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim(), String::new())),
            (Some(_), Some("")) => found.push(open.take().unwrap()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    found
}

/// The bodies of the fenced blocks of `text` whose info string is `lang`.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    fenced(text).into_iter().filter(|(info, _)| *info == lang).map(|(_, body)| body).collect()
}

#[test]
fn readme_dependency_lines_work_without_crates_io() {
    let readme = read("README.md");
    // No globo crate is published: `cargo add globo-...` fails for a user today.
    assert!(!readme.contains("cargo add globo"), "README tells users to `cargo add` globo");
    for krate in ["globo-secrets", "globo-auth", "globo-crypto", "globo"] {
        let line = format!("{krate} = {{ path = \"../globo/crates/{krate}\" }}");
        assert!(readme.contains(&line), "README lacks the path dependency line {line}");
        assert!(root().join("crates").join(krate).join("Cargo.toml").is_file());
    }
}

#[test]
fn readme_rust_examples_are_whole_programs_with_their_dependencies() {
    let readme = read("README.md");
    let rust = blocks(&readme, "rust");
    assert!(!rust.is_empty());
    for block in &rust {
        // Rustdoc's hidden lines (`# fn main() {`) vanish on the page and break a paste.
        let hidden: Vec<&str> = block
            .lines()
            .filter(|l| l.trim_start() == "#" || l.trim_start().starts_with("# "))
            .collect();
        assert!(hidden.is_empty(), "hidden doc-test lines {hidden:?} in:\n{block}");
        assert!(block.contains("fn main()"), "not a whole program:\n{block}");
        // Every crate the example names has its line in the [dependencies] block before it.
        let at = readme.find(block.as_str()).unwrap();
        let toml = blocks(&readme[..at], "toml").pop().expect("a [dependencies] block first");
        for (name, dep) in [
            ("globo_secrets::", "globo-secrets"),
            ("globo_auth::", "globo-auth"),
            ("globo_crypto::", "globo-crypto"),
            ("secrecy::", "secrecy"),
            ("tokio::", "tokio"),
            ("tempfile::", "tempfile"),
        ] {
            if block.contains(name) {
                assert!(toml.contains(&format!("{dep} = ")), "{dep} missing for:\n{block}");
            }
        }
    }
}

/// Every `[profile.dev.package.*]` table of the workspace's own `Cargo.toml` (what globo
/// needs optimised in debug builds) is in the README's block for users to copy, with its
/// `opt-level = 3`: a crate added to the workspace's list but not to the README left users'
/// debug builds slow again.
#[test]
fn readme_gives_every_debug_profile_table_of_the_workspace() {
    let manifest = read("Cargo.toml");
    let tables: Vec<&str> = manifest
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("[profile.dev.package."))
        .collect();
    assert!(tables.len() >= 2, "no [profile.dev.package.*] in Cargo.toml: {tables:?}");
    let readme = read("README.md");
    let block = blocks(&readme, "toml")
        .into_iter()
        .find(|b| b.contains("[profile.dev.package."))
        .expect("README has a toml block with [profile.dev.package.*]");
    let lines: Vec<&str> = block.lines().map(str::trim).collect();
    for table in &tables {
        let at = lines.iter().position(|l| l == table);
        assert!(at.is_some(), "README's profile block lacks {table}");
        let next = at.and_then(|i| lines.get(i + 1)).copied();
        assert_eq!(next, Some("opt-level = 3"), "README's {table} has no opt-level = 3");
    }
}

#[test]
fn readme_and_auth_docs_give_the_debug_profile_lines() {
    let readme = read("README.md");
    let auth = read("crates/globo-auth/src/lib.rs");
    for line in ["[profile.dev.package.argon2]", "[profile.dev.package.blake2]"] {
        assert!(readme.contains(line), "README lacks {line}");
        assert!(auth.contains(line), "globo-auth's crate docs lack {line}");
    }
}

#[test]
fn layouts_list_every_script_and_the_fuzz_and_ci_folders() {
    let readme = read("README.md");
    let architecture = read("docs/architecture.md");
    // The layout is the fenced block that lists the folders, bins/ among them.
    let layout = |text: &str| -> String {
        fenced(text)
            .into_iter()
            .map(|(_, body)| body)
            .find(|b| b.lines().any(|l| l.starts_with("bins/")))
            .unwrap()
    };
    let (readme, architecture) = (layout(&readme), layout(&architecture));
    let mut scripts: Vec<String> = std::fs::read_dir(root().join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    scripts.sort();
    for (name, text) in [("README.md", &readme), ("docs/architecture.md", &architecture)] {
        let scripts_line = text.lines().find(|l| l.starts_with("scripts/")).unwrap();
        let scripts_entry = &text[text.find(scripts_line).unwrap()..];
        let scripts_entry =
            &scripts_entry[..scripts_entry.find("\nfuzz/").unwrap_or(scripts_entry.len())];
        for script in &scripts {
            assert!(
                scripts_entry.contains(script.as_str()),
                "{name}'s layout omits scripts/{script}"
            );
        }
        for folder in ["fuzz/", ".ci/"] {
            assert!(text.lines().any(|l| l.starts_with(folder)), "{name}'s layout omits {folder}");
        }
    }
}
