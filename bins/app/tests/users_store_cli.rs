//! `--users-store STORE` / `GLOBO_USERS_STORE` and `app users copy` (issue 14), run as the real
//! binary: a path, `sqlite://PATH` or a `postgres://` URL, whose password is never printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;

const APP: &str = env!("CARGO_BIN_EXE_app");
const ALICE_PW: &str = "wonderland rabbit hole";
const BOB_PW: &str = "builder of many things";
const OTHER_PW: &str = "through the looking glass";
const INSECURE_WARNING: &str = "warning: using the test-only-insecure Argon2 profile";

fn app_env(dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut command = globo_testkit::isolated_command(APP, dir);
    command
        .args(args)
        .env("GLOBO_PASSWORD_PROFILE", "test-only-insecure")
        .envs(env.iter().copied());
    globo_testkit::output_guarded(&mut command, Some(stdin.as_bytes()))
}

fn app(dir: &Path, args: &[&str], stdin: &str) -> Output {
    app_env(dir, args, stdin, &[])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn stderr(out: &Output) -> String {
    text(&out.stderr)
        .lines()
        .filter(|line| !line.starts_with(INSECURE_WARNING))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", text(&out.stderr));
    text(&out.stdout)
}

fn register(dir: &Path, store: &str, name: &str, password: &str) {
    let args = ["register", name, "--password-stdin", "--users-store", store];
    ok(&app(dir, &args, &format!("{password}\n")));
}

#[test]
fn copy_between_json_stores_is_exact_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    register(d, "a.json", "alice", ALICE_PW);
    register(d, "a.json", "bob", BOB_PW);

    let out = ok(&app(d, &["users", "copy", "--from", "a.json", "--to", "b.json"], ""));
    assert_eq!(
        out,
        "Copied users from 'a.json' to 'b.json': created 2, unchanged 0, conflicting 0.\n"
    );
    assert_eq!(std::fs::read(d.join("b.json")).unwrap(), std::fs::read(d.join("a.json")).unwrap());
    let verify = ["verify", "bob", "--password-stdin", "--users-store", "b.json"];
    ok(&app(d, &verify, &format!("{BOB_PW}\n")));

    let again = ok(&app(d, &["users", "copy", "--from", "a.json", "--to", "b.json"], ""));
    assert_eq!(
        again,
        "Copied users from 'a.json' to 'b.json': created 0, unchanged 2, conflicting 0.\n"
    );
}

#[test]
fn a_conflicting_user_is_named_never_overwritten_and_fails_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    register(d, "a.json", "alice", ALICE_PW);
    register(d, "a.json", "bob", BOB_PW);
    register(d, "b.json", "alice", OTHER_PW);
    let before = std::fs::read(d.join("b.json")).unwrap();

    let out = app(d, &["users", "copy", "--from", "a.json", "--to", "b.json"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "Copied users from 'a.json' to 'b.json': created 1, unchanged 0, conflicting 1.\n"
    );
    let err = stderr(&out);
    assert!(
        err.starts_with("error: 1 users of 'a.json' are in 'b.json' with another password hash"),
        "{err}"
    );
    assert!(err.contains(": 'alice'\nhint: nothing was overwritten"), "{err}");
    // alice keeps b.json's password; bob was added.
    let verify = |name: &str, pw: &str| {
        app(d, &["verify", name, "--password-stdin", "--users-store", "b.json"], &format!("{pw}\n"))
    };
    ok(&verify("alice", OTHER_PW));
    ok(&verify("bob", BOB_PW));
    assert_ne!(std::fs::read(d.join("b.json")).unwrap(), before);
}

/// A URL's password appears in no output, whichever command or option carries it.
#[test]
fn the_password_of_a_store_url_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = "postgres://globo:hunter2@127.0.0.1:1/users";
    // A copy's source must exist (it is opened first): an empty users file, so that the
    // copy into the URL reaches the URL.
    std::fs::write(d.join("source.json"), "{}\n").unwrap();
    let runs = [
        app(d, &["users", "list", "--users-store", url], ""),
        app_env(d, &["users", "list"], "", &[("GLOBO_USERS_STORE", url)]),
        app(d, &["verify", "alice", "--password-stdin", "--users-store", url], "x\n"),
        app(d, &["users", "copy", "--from", url, "--to", "b.json"], ""),
        app(d, &["users", "copy", "--from", "source.json", "--to", url], ""),
        app(
            d,
            &[
                "users",
                "list",
                "--users-store",
                "postgres://globo:hunter2@127.0.0.1:notaport/users",
            ],
            "",
        ),
        app(
            d,
            &["users", "list", "--users-store", "postgres://globo:hunter2@db/u?password_secret=X"],
            "",
        ),
    ];
    for out in &runs {
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!all.contains("hunter2"), "{all}");
        assert!(all.contains("postgres://globo@"), "the store is named by its location: {all}");
    }
    assert!(!d.join("b.json").exists());
}

#[test]
fn a_password_secret_is_read_from_the_secrets_provider() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = "postgres://globo@127.0.0.1:1/users?password_secret=GLOBO_DB_PASSWORD";
    // Missing: the secret and the store are named.
    let out = app(d, &["users", "list", "--users-store", store, "--mode", "local"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: cannot read the password of users store 'postgres://globo@127.0.0.1:1/users' from secret 'GLOBO_DB_PASSWORD'"),
        "{err}"
    );
    // Found (in the .env file of local mode): the store is opened with it (nothing listens
    // on port 1, so the open fails), and the password is never printed.
    std::fs::write(d.join(".env"), "GLOBO_DB_PASSWORD=hunter2\n").unwrap();
    let out = app(d, &["users", "list", "--users-store", store], "");
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", text(&out.stdout), stderr(&out));
    assert!(!all.contains("cannot read the password"), "{all}");
    assert!(all.contains("'postgres://globo@127.0.0.1:1/users'"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
}

#[test]
fn an_unknown_scheme_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        app(dir.path(), &["users", "list", "--users-store", "mysql://u:hunter2@db/users"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: invalid users store 'mysql://...': unknown scheme 'mysql'"),
        "{err}"
    );
    assert!(err.contains("\nhint: --users-store (GLOBO_USERS_STORE) takes a path"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn the_store_comes_from_the_environment_and_users_file_stays_a_hidden_alias() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["register", "alice", "--password-stdin"];
    ok(&app_env(d, &args, &format!("{ALICE_PW}\n"), &[("GLOBO_USERS_STORE", "env.json")]));
    assert!(d.join("env.json").exists());
    assert!(!d.join("users.json").exists());
    // The option of earlier versions: a JSON path.
    let list = ok(&app(d, &["users", "list", "--users-file", "env.json"], ""));
    assert_eq!(list, "alice\n");
    // The command line's --users-file wins over the environment's store (it was refused as
    // "cannot be used with --users-store").
    let env = [("GLOBO_USERS_STORE", "sqlite://env.db")];
    let list = ok(&app_env(d, &["users", "list", "--users-file", "env.json"], "", &env));
    assert_eq!(list, "alice\n");
    let args = ["register", "carol", "--password-stdin", "--users-file", "file.json"];
    ok(&app_env(d, &args, &format!("{OTHER_PW}\n"), &env));
    assert_eq!(ok(&app(d, &["users", "list", "--users-store", "file.json"], "")), "carol\n");
    assert!(!d.join("env.db").exists(), "the environment's store was opened");
    // Without either, users.json.
    register(d, "users.json", "bob", BOB_PW);
    assert_eq!(ok(&app(d, &["users", "list"], "")), "bob\n");
    // Both at once: a usage error.
    let both = app(d, &["users", "list", "--users-file", "a.json", "--users-store", "b.json"], "");
    assert_eq!(both.status.code(), Some(2), "{}", text(&both.stderr));
    assert!(text(&both.stderr).contains("cannot be used with"), "{}", text(&both.stderr));
    let both = app_env(
        d,
        &["users", "list", "--users-file", "a.json", "--users-store", "b.json"],
        "",
        &env,
    );
    assert_eq!(both.status.code(), Some(2), "{}", text(&both.stderr));
    let help = ok(&app(d, &["register", "--help"], ""));
    assert!(help.contains("--users-store <STORE>"), "{help}");
    // Named, its value hidden (it may hold a password).
    assert!(help.contains("GLOBO_USERS_STORE]"), "{help}");
    assert!(!help.contains("--users-file"), "{help}");
}

/// Issue 14 review: `--from typo.json` copied nothing and succeeded; `--from sqlite://nope.db`
/// created nope.db. The source must exist, and nothing is created.
#[test]
fn the_source_of_a_copy_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for from in ["typo.json", "sqlite://nope.db"] {
        let out = app(d, &["users", "copy", "--from", from, "--to", "b.json"], "");
        assert_eq!(out.status.code(), Some(1), "{from}: {}", text(&out.stdout));
        assert_eq!(stderr(&out), format!("error: users store '{from}' does not exist\n"));
        assert_eq!(text(&out.stdout), "");
    }
    assert!(!d.join("nope.db").exists(), "the source was created");
    assert!(!d.join("typo.json").exists());
    assert!(!d.join("b.json").exists());
}

/// Issue 14 review: a lab file holding `josé` in NFC and in NFD reported the second as
/// conflicting on every run, with a hint about the target that could not resolve it.
#[test]
fn look_alike_names_of_a_lab_file_are_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    register(d, "lab.json", "jos\u{e9}", ALICE_PW);
    register(d, "lab.json", "bob", BOB_PW);
    // The lab wrote the same name in NFD too (globo's registration refuses it).
    let lab = std::fs::read_to_string(d.join("lab.json")).unwrap();
    let mut users: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&lab).unwrap();
    let bob = users["bob"].clone();
    users.insert("jose\u{301}".into(), bob);
    std::fs::write(d.join("lab.json"), serde_json::to_string(&users).unwrap()).unwrap();

    for _ in 0..2 {
        let out = app(d, &["users", "copy", "--from", "lab.json", "--to", "sqlite://u.db"], "");
        assert_eq!(out.status.code(), Some(1));
        let stdout = text(&out.stdout);
        assert!(
            stdout.starts_with("Copied users from 'lab.json' to 'sqlite://u.db': "),
            "{stdout}"
        );
        assert!(stdout.ends_with("conflicting 0, look-alike names not copied 1.\n"), "{stdout}");
        let err = stderr(&out);
        assert!(
            err.starts_with(
                "error: 'lab.json' holds names that look alike (the same name in another Unicode \
                 form, width or with invisible characters): 'jos\u{e9}' and 'jose\\u{301}'. A \
                 store keeps one name of each, so 'jose\\u{301}' were not copied.\n"
            ),
            "{err}"
        );
        assert!(err.contains("copying again will not change this"), "{err}");
        assert!(err.contains("app users delete NAME --users-store 'lab.json'"), "{err}");
        assert!(!err.contains("another password hash"), "{err}");
    }
    let list = ok(&app(d, &["users", "list", "--users-store", "sqlite://u.db"], ""));
    assert_eq!(list, "jos\u{e9}\nbob\n");
}
