//! `app register` / `app verify` (alias `login`), run as the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Output, Stdio};

const APP: &str = env!("CARGO_BIN_EXE_app");

/// Starts `app <args>` in `dir` with the cheap test profile, feeding `stdin`.
fn spawn(dir: &Path, args: &[&str], stdin: &str) -> Child {
    let mut child = globo_testkit::isolated_command(APP, dir)
        .args(args)
        .env("GLOBO_PASSWORD_PROFILE", "test-only-insecure")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading (a usage error) closes stdin: that is not an error.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child
}

fn run(dir: &Path, args: &[&str], stdin: &str) -> Output {
    spawn(dir, args, stdin).wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

const INSECURE_WARNING: &str = "warning: using the test-only-insecure Argon2 profile";

/// stderr without the warning every command run with the cheap test profile prints.
fn stderr(out: &Output) -> String {
    let all = text(&out.stderr);
    all.lines()
        .filter(|line| !line.starts_with(INSECURE_WARNING))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn users(dir: &Path) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_slice(&std::fs::read(dir.join("users.json")).unwrap()).unwrap()
}

#[test]
fn register_verify_and_login_print_the_labs_messages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &["register", "alice", "--password-stdin"], "a fine passphrase\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "User 'alice' registered.\n");
    assert!(users(d)["alice"].as_str().unwrap().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));

    let out = run(d, &["register", "alice", "--password-stdin"], "another passphrase\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: User 'alice' already exists.\n");
    assert_eq!(text(&out.stdout), "");

    for command in ["verify", "login"] {
        let out = run(d, &[command, "alice", "--password-stdin"], "a fine passphrase\n");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "Password verified for 'alice'.\n");
    }
}

#[test]
fn wrong_password_and_unknown_user_get_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        run(d, &["register", "alice", "--password-stdin"], "a fine passphrase\n").status.success()
    );
    let wrong = run(d, &["verify", "alice", "--password-stdin"], "not the passphrase\n");
    let unknown = run(d, &["verify", "bob", "--password-stdin"], "a fine passphrase\n");
    for out in [&wrong, &unknown] {
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stderr(out), "error: Invalid username or password.\n");
        assert_eq!(text(&out.stdout), "");
    }
}

#[test]
fn rejected_passwords_are_explained_without_being_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The default policy (a single factor) needs 15 characters; with a second factor 8 do,
    // so the shorter common passwords are refused as common there.
    let single: &[&str] = &[];
    let second = &["--password-policy", "with-second-factor"];
    for (password, expected, policy) in [
        ("abc12", "too short", single),
        ("abc12", "too short", second),
        ("Password123", "too short: use at least 15 characters", single),
        ("1q2w3e4r5t6y7u8i9o0p", "too common", single),
        ("Password123", "too common", second),
        ("iloveyou1", "too common", second),
    ] {
        let mut args = vec!["register", "bob", "--password-stdin"];
        args.extend(policy);
        let out = run(d, &args, &format!("{password}\n"));
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.to_lowercase().contains(&password.to_lowercase()), "{stderr}");
    }
    assert!(!d.join("users.json").exists());
}

#[test]
fn a_password_containing_the_username_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        run(d, &["register", "bob", "--password-stdin"], "a fine passphrase\n").status.success()
    );
    let before = std::fs::read(d.join("users.json")).unwrap();
    for password in ["alice-correct-horse", "Correct-ALICE-horse"] {
        let out = run(d, &["register", "alice", "--password-stdin"], &format!("{password}\n"));
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr(&out),
            "error: password contains the username 'alice' (ignoring case): choose one that does not \
             contain it\n"
        );
        assert!(!text(&out.stderr).contains(password), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "");
        assert_eq!(std::fs::read(d.join("users.json")).unwrap(), before);
    }
    let out = run(d, &["register", "rosalindfranklin", "--password-stdin"], "Nilknarfdnilasor\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: password is the username spelled backwards: choose another one\n"
    );
    assert_eq!(std::fs::read(d.join("users.json")).unwrap(), before);
    // Another password for the same name is accepted.
    let out = run(d, &["register", "alice", "--password-stdin"], "correct horse battery\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(users(d).len(), 2);
}

#[test]
fn without_a_terminal_the_password_must_come_from_password_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["register", "alice"], "a fine passphrase\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--password-stdin"), "{}", text(&out.stderr));
    assert!(!dir.path().join("users.json").exists());
}

#[test]
fn users_file_and_profile_options_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(
        d,
        &[
            "register",
            "carol",
            "--password-stdin",
            "--users-file",
            "other.json",
            "--profile",
            "owasp-min",
        ],
        "christmas passphrase\r\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("other.json")).unwrap()).unwrap();
    assert!(file["carol"].as_str().unwrap().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    // The line end (\r\n) is not part of the password.
    let out = run(
        d,
        &["verify", "carol", "--password-stdin", "--users-file", "other.json"],
        "christmas passphrase\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(d, &["verify", "carol", "--password-stdin", "--profile", "fast"], "x\n");
    assert_eq!(out.status.code(), Some(2), "clap rejects an unknown profile");
}

#[test]
fn a_corrupt_users_file_is_reported_with_its_path_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("users.json"), b"{not json").unwrap();
    let out = run(d, &["register", "alice", "--password-stdin"], "a fine passphrase\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("users.json") && stderr.contains("caused by"), "{stderr}");
    assert_eq!(std::fs::read(d.join("users.json")).unwrap(), b"{not json");
}

#[test]
fn thirty_two_concurrent_registrations_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let children: Vec<Child> = (0..32)
        .map(|i| {
            spawn(
                d,
                &["register", &format!("user{i:02}"), "--password-stdin"],
                "a shared passphrase\n",
            )
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let users = users(d);
    assert_eq!(users.len(), 32);
    for i in 0..32 {
        assert!(users.contains_key(&format!("user{i:02}")));
    }
}

#[test]
fn the_insecure_test_profile_is_announced_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &["register", "alice", "--password-stdin"], "a fine passphrase\n");
    assert!(out.status.success());
    assert!(text(&out.stderr).starts_with(INSECURE_WARNING), "{}", text(&out.stderr));
    // The default profile says nothing.
    let out = globo_testkit::isolated_command(APP, d)
        .args(["verify", "bob", "--password-stdin", "--profile", "rfc9106-low-memory"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(text(&out.stderr), "error: Invalid username or password.\n");
}

#[test]
fn lab_users_with_passwords_longer_than_new_ones_log_in() {
    use globo::auth::{MAX_LOGIN_PASSWORD_BYTES, Profile, hash_password};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The lab (passlib) took up to 4096 code points; the longest is 16,384 bytes of UTF-8.
    let long = "x".repeat(2000);
    let widest = "\u{1F511}".repeat(4096);
    let hash = |p: &str| hash_password(p, Profile::TestOnlyInsecure).unwrap();
    let users = serde_json::json!({ "long": hash(&long), "widest": hash(&widest) });
    std::fs::write(d.join("users.json"), users.to_string()).unwrap();
    for (name, password) in [("long", &long), ("widest", &widest)] {
        let out = run(d, &["verify", name, "--password-stdin"], &format!("{password}\n"));
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(text(&out.stdout), format!("Password verified for '{name}'.\n"));
    }
    // A byte more than the login limit is refused, without echoing it.
    let out = run(d, &["verify", "widest", "--password-stdin"], &format!("{widest}x\n"));
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains(&format!(
            "password is longer than the {MAX_LOGIN_PASSWORD_BYTES} bytes accepted at login"
        )),
        "{message}"
    );
    assert!(!message.contains('\u{1F511}'));
    // New passwords keep their own limit, whatever the line length.
    for password in [&long, &format!("{widest}x")] {
        let out = run(d, &["register", "carol", "--password-stdin"], &format!("{password}\n"));
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("password is too long: use at most 1024 characters"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn look_alike_usernames_are_one_user() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The NFD spelling is stored and announced in NFC; the NFC one is then taken.
    let out = run(d, &["register", "jose\u{301}", "--password-stdin"], "a fine passphrase\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(text(&out.stdout), "User 'jos\u{e9}' registered.\n");
    let out = run(d, &["register", "jos\u{e9}", "--password-stdin"], "another passphrase\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("User 'jos\u{e9}' already exists."), "{}", stderr(&out));
    let out = run(d, &["register", "ｊｏｓé", "--password-stdin"], "another passphrase\n");
    assert_eq!(out.status.code(), Some(1));
    // An invisible character is refused, named by its code point.
    let out =
        run(d, &["register", "jos\u{e9}\u{FE0F}", "--password-stdin"], "a long passphrase!\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "invalid username: it contains an invisible (default-ignorable) character (U+FE0F)"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(users(d).keys().collect::<Vec<_>>(), ["jos\u{e9}"]);
    // Either spelling logs in.
    for name in ["jos\u{e9}", "jose\u{301}"] {
        let out = run(d, &["verify", name, "--password-stdin"], "a fine passphrase\n");
        assert!(out.status.success(), "{name:?}: {}", stderr(&out));
    }
}

/// Review A1: the login message names the stored user (invisible characters escaped), not the
/// name typed.
#[test]
fn a_login_prints_the_stored_name_it_matched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &["register", "alice", "--password-stdin"], "a fine passphrase\n");
    assert!(out.status.success(), "{}", stderr(&out));
    // Rename the entry as a lab file could hold it: with a zero-width space.
    let mut map = users(d);
    let hash = map.remove("alice").unwrap();
    map.insert("alice\u{200B}".to_owned(), hash);
    std::fs::write(d.join("users.json"), serde_json::Value::Object(map).to_string()).unwrap();
    let out = run(d, &["verify", "alice", "--password-stdin"], "a fine passphrase\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(text(&out.stdout), "Password verified for 'alice\\u{200b}'.\n");
}

/// A failed file operation is reported as the operation and path, then the operating
/// system's reason, each once (issue 12: the reason was printed on two lines, in the file
/// error's own message and again as its cause).
#[test]
fn a_file_error_shows_the_path_and_the_os_reason_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["register", "alice", "--password-stdin", "--users-file", "missing/users.json"];
    let out = run(d, &args, "a fine passphrase\n");
    assert_eq!(out.status.code(), Some(1));
    let reason = std::io::Error::from_raw_os_error(2).to_string(); // ENOENT
    let stderr = stderr(&out);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.first(), Some(&"error: cannot access the users file"), "{stderr}");
    assert!(lines.get(1).is_some_and(|l| l.contains("missing/users.json")), "{stderr}");
    assert_eq!(lines.last(), Some(&format!("  caused by: {reason}").as_str()), "{stderr}");
    assert_eq!(stderr.matches(&reason).count(), 1, "{stderr}");
}

/// NIST SP 800-63B-4 §3.1.1.2: `--password-policy` (or `GLOBO_PASSWORD_POLICY`) chooses 15
/// characters (single-factor, the default) or 8 (with-second-factor). Before, there was no
/// such option (clap refused it: exit 2) and 8 characters were always enough.
#[test]
fn the_password_policy_option_and_variable_choose_the_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fourteen = "tulip anvil xy\n";
    let out = run(d, &["register", "ann", "--password-stdin"], fourteen);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: password is too short: use at least 15 characters\n");
    let args = ["register", "ann", "--password-stdin", "--password-policy", "with-second-factor"];
    let out = run(d, &args, fourteen);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = globo_testkit::isolated_command(APP, d)
        .args(["register", "ben", "--password-stdin"])
        .env("GLOBO_PASSWORD_PROFILE", "test-only-insecure")
        .env("GLOBO_PASSWORD_POLICY", "with-second-factor")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(b"tulip-an\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let args = ["register", "cid", "--password-stdin", "--password-policy", "with-second-factor"];
    let out = run(d, &args, "tulip-a\n");
    assert_eq!(stderr(&out), "error: password is too short: use at least 8 characters\n");
    // Logins are held to no policy.
    for (name, password) in [("ann", fourteen), ("ben", "tulip-an\n")] {
        assert!(run(d, &["verify", name, "--password-stdin"], password).status.success());
    }
    let out = run(d, &["register", "dan", "--password-stdin", "--password-policy", "2fa"], "x\n");
    assert_eq!(out.status.code(), Some(2), "clap rejects an unknown policy");
    assert!(
        text(&out.stderr).contains("single-factor or with-second-factor"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(users(d).len(), 2);
}

/// NIST SP 800-63B-4 §3.1.1.2 (normalise, NFKC): a password registered in one form logs in
/// typed in another (fullwidth letters, a combining accent). Before, only the same bytes did.
#[test]
fn a_password_logs_in_in_any_form_with_the_same_nfkc() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &["register", "zoe", "--password-stdin"], "ｃａｆｅ\u{301} au lait please\n");
    assert!(out.status.success(), "{}", stderr(&out));
    for typed in ["caf\u{e9} au lait please", "cafe\u{301} au lait please"] {
        let out = run(d, &["verify", "zoe", "--password-stdin"], &format!("{typed}\n"));
        assert!(out.status.success(), "{typed:?}: {}", stderr(&out));
    }
}
