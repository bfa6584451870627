//! `app users list|delete|passwd|reset` and the security-event log (`RUST_LOG`,
//! `--log-format`), run as the real binary (issue 13).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;

const APP: &str = env!("CARGO_BIN_EXE_app");
const ALICE_PW: &str = "wonderland rabbit hole";
const BOB_PW: &str = "builder of many things";
/// New passwords: at least 15 characters (the single-factor minimum of NIST SP 800-63B-4).
const NEW_PW: &str = "through the looking glass";
/// On the common-passwords list, and long enough for any minimum.
const COMMON_PW: &str = "1q2w3e4r5t6y7u8i9o0p";
const INSECURE_WARNING: &str = "warning: using the test-only-insecure Argon2 profile";

/// Runs `app <args>` in `dir` with the cheap test profile, `stdin` as input and `env` added.
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

/// stderr without the warning every command run with the cheap test profile prints.
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

fn users(dir: &Path) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_slice(&std::fs::read(dir.join("users.json")).unwrap()).unwrap()
}

/// The users file as globo writes it: the lab's JSON object, pretty, with a final newline.
fn lab_format(users: &serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
    let mut json = serde_json::to_vec_pretty(users).unwrap();
    json.push(b'\n');
    json
}

/// alice and bob, registered through `app`.
fn alice_and_bob(dir: &Path) {
    ok(&app(dir, &["register", "alice", "--password-stdin"], &format!("{ALICE_PW}\n")));
    ok(&app(dir, &["register", "bob", "--password-stdin"], &format!("{BOB_PW}\n")));
}

fn verifies(dir: &Path, name: &str, password: &str) -> bool {
    app(dir, &["verify", name, "--password-stdin"], &format!("{password}\n")).status.success()
}

/// Asserts that `out` failed with exactly `message` and left the users file as `before`.
fn refused(dir: &Path, out: &Output, message: &str, before: &[u8]) {
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(stderr(out), format!("error: {message}\n"));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(std::fs::read(dir.join("users.json")).unwrap(), before, "the file changed");
}

/// The hint `app` adds to a name the store does not designate.
const NAME_EXACTLY: &str = "run `app users list` and name the user exactly as listed (a \
     `\\u{...}` there is an invisible or combining character; bash types `\\u{200b}` as \
     $'\\u200b')";

fn no_user(name: &str) -> String {
    format!("no user '{name}' in the store: {NAME_EXACTLY}")
}

#[test]
fn list_prints_one_name_per_line_and_escapes_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No users file: no users.
    assert_eq!(ok(&app(d, &["users", "list"], "")), "");
    alice_and_bob(d);
    assert_eq!(ok(&app(d, &["users", "list"], "")), "alice\nbob\n");
    // A lab name with a line break cannot pass for two users.
    let mut lab = users(d);
    lab.insert("eve\nmallory".into(), lab["bob"].clone());
    std::fs::write(d.join("users.json"), lab_format(&lab)).unwrap();
    assert_eq!(ok(&app(d, &["users", "list"], "")), "alice\nbob\neve\\nmallory\n");
    // Another file, and a corrupt one: a clear error.
    std::fs::write(d.join("other.json"), "{\"carol\": \"x\"}").unwrap();
    assert_eq!(ok(&app(d, &["users", "list", "--users-file", "other.json"], "")), "carol\n");
    std::fs::write(d.join("users.json"), "{not json").unwrap();
    let out = app(d, &["users", "list"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: users file 'users.json' is not valid JSON"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn delete_needs_confirmation_removes_only_that_user_and_refuses_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    alice_and_bob(d);
    let before = std::fs::read(d.join("users.json")).unwrap();
    // stdin is not a terminal: no way to type the name again, so --yes is required, even
    // when the name is piped in.
    let out = app(d, &["users", "delete", "bob"], "bob\n");
    refused(
        d,
        &out,
        "Standard input is not a terminal, so the deletion cannot be confirmed: pass --yes to \
         delete user 'bob'.",
        &before,
    );
    let out = app(d, &["users", "delete", "mallory", "--yes"], "");
    refused(d, &out, &no_user("mallory"), &before);

    assert_eq!(ok(&app(d, &["users", "delete", "bob", "--yes"], "")), "User 'bob' deleted.\n");
    let mut expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&before).unwrap();
    expected.shift_remove("bob");
    assert_eq!(std::fs::read(d.join("users.json")).unwrap(), lab_format(&expected));
    assert!(!verifies(d, "bob", BOB_PW));
    assert!(verifies(d, "alice", ALICE_PW));
    // Gone: a second delete names the missing user.
    let after = std::fs::read(d.join("users.json")).unwrap();
    refused(d, &app(d, &["users", "delete", "bob", "--yes"], ""), &no_user("bob"), &after);
}

#[test]
fn passwd_requires_the_current_password_then_changes_it_in_the_lab_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    alice_and_bob(d);
    let before = std::fs::read(d.join("users.json")).unwrap();
    let passwd = |name: &str, current: &str, new: &str| {
        app(d, &["users", "passwd", name, "--password-stdin"], &format!("{current}\n{new}\n"))
    };
    // A wrong current password and an unknown user: the login failure (a user runs this).
    refused(d, &passwd("alice", BOB_PW, NEW_PW), "Invalid username or password.", &before);
    refused(d, &passwd("mallory", ALICE_PW, NEW_PW), "Invalid username or password.", &before);
    // One line only: the new password is missing.
    let out = app(d, &["users", "passwd", "alice", "--password-stdin"], &format!("{ALICE_PW}\n"));
    refused(
        d,
        &out,
        "Standard input must hold two lines: the current password, then the new one (the \
         second is missing or empty). Nothing was changed.",
        &before,
    );
    // Without --password-stdin, a prompt is needed.
    let out = app(d, &["users", "passwd", "alice"], &format!("{ALICE_PW}\n{NEW_PW}\n"));
    refused(
        d,
        &out,
        "Standard input is not a terminal: pass --password-stdin to read the passwords from it, \
         or run the command in a terminal to be prompted.",
        &before,
    );

    assert_eq!(ok(&passwd("alice", ALICE_PW, NEW_PW)), "Password changed for 'alice'.\n");
    assert!(verifies(d, "alice", NEW_PW));
    assert!(!verifies(d, "alice", ALICE_PW));
    let after = users(d);
    let mut expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&before).unwrap();
    expected["alice"] = after["alice"].clone();
    assert_ne!(
        expected["alice"],
        serde_json::from_slice::<serde_json::Value>(&before).unwrap()["alice"]
    );
    assert!(after["alice"].as_str().unwrap().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
    assert_eq!(std::fs::read(d.join("users.json")).unwrap(), lab_format(&expected));
}

#[test]
fn passwd_and_reset_apply_the_new_password_rules_without_echoing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    alice_and_bob(d);
    let before = std::fs::read(d.join("users.json")).unwrap();
    for (new, message) in [
        ("tiny pw", "password is too short: use at least"),
        (COMMON_PW, "password is too common"),
        ("Alice in a long long passphrase", "password contains the username 'alice'"),
    ] {
        let passwd = app(
            d,
            &["users", "passwd", "alice", "--password-stdin"],
            &format!("{ALICE_PW}\n{new}\n"),
        );
        let reset = app(d, &["users", "reset", "alice", "--password-stdin"], &format!("{new}\n"));
        for out in [passwd, reset] {
            assert_eq!(out.status.code(), Some(1));
            let err = stderr(&out);
            assert!(err.starts_with(&format!("error: {message}")), "{new}: {err}");
            assert!(!err.contains(new) && !err.contains(ALICE_PW), "{err}");
            assert_eq!(std::fs::read(d.join("users.json")).unwrap(), before);
        }
    }
}

#[test]
fn reset_sets_a_password_without_the_current_one_and_refuses_an_unknown_user() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    alice_and_bob(d);
    let before = std::fs::read(d.join("users.json")).unwrap();
    let reset =
        |name: &str, stdin: &str| app(d, &["users", "reset", name, "--password-stdin"], stdin);
    refused(d, &reset("mallory", &format!("{NEW_PW}\n")), &no_user("mallory"), &before);
    let out = app(d, &["users", "reset", "bob"], &format!("{NEW_PW}\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pass --password-stdin"), "{}", stderr(&out));

    assert_eq!(ok(&reset("bob", &format!("{NEW_PW}\n"))), "Password reset for 'bob'.\n");
    assert!(verifies(d, "bob", NEW_PW));
    assert!(!verifies(d, "bob", BOB_PW));
    let before: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&before).unwrap();
    let after = users(d);
    assert_eq!(after["alice"], before["alice"]);
    assert_eq!(after.keys().collect::<Vec<_>>(), ["alice", "bob"]);
}

/// The lab's own file (written by passlib with `json.dump`) after `app users passwd` and
/// `reset`: still read and verified by the lab.
#[test]
fn the_lab_verifies_passwords_changed_and_reset_by_app() {
    let Some(python) = globo_testkit::python(&["passlib"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("users.json");
    python.run_ok(
        "import json, sys\nfrom passlib.hash import argon2\n\
         json.dump({n: argon2.using(memory_cost=8, rounds=1, parallelism=1).hash(p) \
         for n, p in [('alice', sys.argv[2]), ('bob', sys.argv[3])]}, open(sys.argv[1], 'w'))\n",
        &[path.to_str().unwrap(), ALICE_PW, BOB_PW],
        b"",
    );
    let stdin = format!("{ALICE_PW}\n{NEW_PW}\n");
    ok(&app(d, &["users", "passwd", "alice", "--password-stdin"], &stdin));
    ok(&app(d, &["users", "reset", "bob", "--password-stdin"], "an operator's passphrase\n"));
    let out = python.run_ok(
        "import json, sys\nfrom passlib.hash import argon2\nusers = json.load(open(sys.argv[1]))\n\
         print(list(users), argon2.verify(sys.argv[2], users['alice']), \
         argon2.verify(sys.argv[3], users['alice']), argon2.verify(sys.argv[4], users['bob']))\n",
        &[path.to_str().unwrap(), NEW_PW, ALICE_PW, "an operator's passphrase"],
        b"",
    );
    assert_eq!(text(&out), "['alice', 'bob'] True False True\n");
}

/// The JSON objects of stderr, one per line; every other line (besides the test profile's
/// warning) must be the command's `error: ` line.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    let err = stderr(out);
    for line in err.lines().filter(|line| !line.starts_with('{')) {
        assert!(line.starts_with("error: "), "not a log line: {line:?}");
    }
    err.lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect()
}

#[test]
fn with_rust_log_a_login_writes_one_json_security_event_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    alice_and_bob(d);
    let stdin = format!("{ALICE_PW}\n");
    let args = ["--log-format", "json", "verify", "alice", "--password-stdin"];
    let out = app_env(d, &args, &stdin, &[("RUST_LOG", "globo_auth=info")]);
    // stdout is unchanged; the event is on stderr only.
    assert_eq!(ok(&out), "Password verified for 'alice'.\n");
    let events = json_lines(&out);
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["event"], "authn_login_success:alice");
    assert_eq!(event["username"], "alice");
    assert_eq!(event["source"], "");
    assert_eq!(event["level"], "INFO");
    assert_eq!(event["target"], "globo_auth::security");
    assert_eq!(event["message"], "user login successful");
    // The format from the environment, the option after the command.
    for (args, env) in [
        (
            &["verify", "alice", "--password-stdin"][..],
            &[("RUST_LOG", "globo_auth=info"), ("GLOBO_LOG_FORMAT", "json")][..],
        ),
        (
            &["verify", "alice", "--password-stdin", "--log-format", "json"][..],
            &[("RUST_LOG", "globo_auth=info")][..],
        ),
    ] {
        let out = app_env(d, args, &stdin, env);
        ok(&out);
        assert_eq!(json_lines(&out)[0]["event"], "authn_login_success:alice");
    }
    // Text: one line naming the event.
    let out = app_env(
        d,
        &["verify", "alice", "--password-stdin"],
        &stdin,
        &[("RUST_LOG", "globo_auth=info")],
    );
    ok(&out);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(" INFO globo_auth::security: user login successful event=authn_login_success:alice username=alice"),
        "{err}"
    );
    // A filter that leaves the security target out prints nothing.
    let out = app_env(
        d,
        &["verify", "alice", "--password-stdin"],
        &stdin,
        &[("RUST_LOG", "globo_auth=warn")],
    );
    ok(&out);
    assert_eq!(stderr(&out), "");
}

/// With `RUST_LOG` unset (or empty) nothing is logged: `app` prints what it printed before.
#[test]
fn without_rust_log_no_event_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for env in [&[][..], &[("RUST_LOG", "")][..], &[("GLOBO_LOG_FORMAT", "json")][..]] {
        let _ = std::fs::remove_file(d.join("users.json"));
        let runs = [
            app_env(d, &["register", "alice", "--password-stdin"], &format!("{ALICE_PW}\n"), env),
            app_env(
                d,
                &["--log-format", "json", "verify", "alice", "--password-stdin"],
                &format!("{ALICE_PW}\n"),
                env,
            ),
            app_env(d, &["verify", "alice", "--password-stdin"], "wrong password\n", env),
            app_env(
                d,
                &["users", "passwd", "alice", "--password-stdin"],
                &format!("{ALICE_PW}\n{NEW_PW}\n"),
                env,
            ),
            app_env(
                d,
                &["users", "reset", "alice", "--password-stdin"],
                &format!("{BOB_PW}\n"),
                env,
            ),
            app_env(d, &["users", "delete", "alice", "--yes"], "", env),
        ];
        let stderrs: Vec<String> = runs.iter().map(stderr).collect();
        assert_eq!(
            stderrs,
            ["", "", "error: Invalid username or password.\n", "", "", ""],
            "{env:?}"
        );
    }
}

/// Review (P4f, point 7): the log settings are read only when `RUST_LOG` asks for logs, so a
/// stale `GLOBO_LOG_FORMAT` never stops a command; then a bad format or filter is refused.
#[test]
fn bad_log_settings_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let logs = [("RUST_LOG", "globo_auth=info")];
    let out = app_env(d, &["--log-format", "xml", "users", "list"], "", &logs);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: the log format 'xml' is not text or json: fix --log-format or GLOBO_LOG_FORMAT.\n"
    );
    let out = app_env(d, &["users", "list"], "", &[logs[0], ("GLOBO_LOG_FORMAT", "x\ny")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: the log format 'x\\ny' is not"), "{}", stderr(&out));
    // Without RUST_LOG (or with it empty) the format is not read: the command runs.
    for env in
        [&[("GLOBO_LOG_FORMAT", "xml")][..], &[("GLOBO_LOG_FORMAT", "xml"), ("RUST_LOG", "")]]
    {
        let out = app_env(d, &["users", "list"], "", env);
        assert_eq!(ok(&out), "", "{env:?}");
        assert_eq!(stderr(&out), "", "{env:?}");
        let out = app_env(d, &["--log-format", "xml", "users", "list"], "", env);
        assert_eq!(ok(&out), "", "{env:?}");
    }
    // Any case.
    alice_and_bob(d);
    for format in ["JSON", "Json"] {
        let out = app_env(
            d,
            &["verify", "alice", "--password-stdin"],
            &format!("{ALICE_PW}\n"),
            &[logs[0], ("GLOBO_LOG_FORMAT", format)],
        );
        ok(&out);
        assert_eq!(json_lines(&out)[0]["event"], "authn_login_success:alice", "{format}");
    }
    let out = app_env(d, &["users", "list"], "", &[("RUST_LOG", "globo_auth=loud")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: RUST_LOG is not a valid log filter ("),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).ends_with("): fix or unset it.\n"), "{}", stderr(&out));
}

/// Every users command, with every event enabled, in JSON: the events named in the OWASP
/// vocabulary, with the stored name and whether an operator acted; no password and no part
/// of any hash on stderr or stdout.
#[test]
fn each_users_command_logs_its_event_and_no_password_or_hash() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = [("RUST_LOG", "trace"), ("GLOBO_LOG_FORMAT", "json")];
    let mut hashes = Vec::new();
    let mut run = |args: &[&str], stdin: &str| {
        let out = app_env(d, args, stdin, &env);
        if let Ok(bytes) = std::fs::read(d.join("users.json")) {
            let users: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&bytes).unwrap();
            hashes.extend(users.values().map(|v| v.as_str().unwrap().to_owned()));
        }
        out
    };
    let outs = [
        run(&["register", "alice", "--password-stdin"], &format!("{ALICE_PW}\n")),
        run(&["users", "passwd", "alice", "--password-stdin"], &format!("{BOB_PW}\n{NEW_PW}\n")),
        run(
            &["users", "passwd", "alice", "--password-stdin"],
            &format!("{ALICE_PW}\n{COMMON_PW}\n"),
        ),
        run(&["users", "passwd", "alice", "--password-stdin"], &format!("{ALICE_PW}\n{NEW_PW}\n")),
        run(&["users", "reset", "alice", "--password-stdin"], &format!("{BOB_PW}\n")),
        run(&["users", "delete", "alice", "--yes"], ""),
    ];
    let events: Vec<Vec<(String, String)>> = outs
        .iter()
        .map(|out| {
            json_lines(out)
                .into_iter()
                .filter(|e| e["target"] == "globo_auth::security")
                .map(|e| (e["event"].as_str().unwrap().to_owned(), e["by_operator"].to_string()))
                .collect()
        })
        .collect();
    let pair = |event: &str, by: &str| (event.to_owned(), by.to_owned());
    assert_eq!(
        events,
        [
            vec![pair("user_created:alice", "null")],
            // The wrong current password is a failed login (counted by throttling).
            vec![
                pair("authn_login_fail:alice", "null"),
                pair("authn_password_change_fail:alice", "null")
            ],
            vec![
                pair("authn_login_successafterfail:alice,1", "null"),
                pair("authn_password_change_fail:alice", "null")
            ],
            vec![
                pair("authn_login_success:alice", "null"),
                pair("authn_password_change:alice", "false")
            ],
            vec![pair("authn_password_change:alice", "true")],
            vec![pair("user_deleted:alice", "null")],
        ]
    );
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), 3, "{hashes:?}");
    for out in &outs {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        for password in [ALICE_PW, BOB_PW, NEW_PW, COMMON_PW] {
            assert!(!all.contains(password), "{password:?} printed: {all}");
        }
        for hash in &hashes {
            for part in hash.rsplit('$').take(2) {
                assert!(!all.contains(part), "a part of {hash} printed: {all}");
            }
        }
    }
}

/// Runs `app <argv[3] as JSON>` on a pseudo-terminal in folder `argv[2]`, and for each step
/// `[prompt, typed, raw]` of `argv[4]` waits for `prompt` (and, for a no-echo prompt, for the
/// terminal to leave canonical mode), then types `typed` and Enter. Prints the exit code,
/// then everything app wrote on the terminal.
const ON_A_TERMINAL: &str = r#"
import json, os, pty, select, sys, termios, time
app, folder, args, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
pid, fd = pty.fork()
if pid == 0:
    os.chdir(folder)
    env = {"PATH": os.environ["PATH"], "HOME": folder, "GLOBO_PASSWORD_PROFILE": "test-only-insecure"}
    os.execve(app, [app] + args, env)
seen, mark, deadline = b"", 0, time.time() + 30  # bounds on waiting, not timing assertions
def read_some():
    global seen
    if select.select([fd], [], [], 0.2)[0]:
        try:
            data = os.read(fd, 1024)
        except OSError:
            return False
        seen += data.replace(b"\r", b"")  # the terminal writes "\r\n" for "\n"
        return bool(data)
    return True
for prompt, typed, raw in steps:
    while prompt.encode() not in seen[mark:] and time.time() < deadline:
        read_some()
    mark = seen.index(prompt.encode(), mark) + len(prompt)
    while raw and termios.tcgetattr(fd)[3] & termios.ICANON and time.time() < deadline:
        time.sleep(0.01)
    os.write(fd, typed.encode() + b"\n")
while read_some() and time.time() < deadline:
    pass
_, status = os.waitpid(pid, 0)
print(os.WEXITSTATUS(status))
print(seen.decode(), end="")
"#;

/// `app <args>` on a terminal, answering each `(prompt, typed, raw)`; returns the exit code
/// and the terminal's text (typed passwords are not echoed, a typed name is).
fn on_a_terminal(dir: &Path, args: &[&str], steps: &[(&str, &str, bool)]) -> Option<(i32, String)> {
    let python = globo_testkit::python(&["pty", "termios", "json"])?;
    let args = serde_json::to_string(args).unwrap();
    let steps = serde_json::to_string(steps).unwrap();
    let out = python.run_ok(ON_A_TERMINAL, &[APP, dir.to_str().unwrap(), &args, &steps], b"");
    let out = text(&out);
    let (code, shown) = out.split_once('\n').unwrap();
    let shown = shown.lines().filter(|l| !l.starts_with(INSECURE_WARNING)).collect::<Vec<_>>();
    Some((code.parse().unwrap(), shown.join("\n")))
}

#[test]
fn at_a_terminal_delete_asks_for_the_name_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    alice_and_bob(d);
    let before = std::fs::read(d.join("users.json")).unwrap();
    let ask = "To delete user 'bob', type the name again:";
    // The whole line, so that what is typed next is echoed after it.
    let asked = format!("{ask}\n");
    let ask_line = asked.as_str();
    let Some((code, shown)) =
        on_a_terminal(d, &["users", "delete", "bob"], &[(ask_line, "bobby", false)])
    else {
        return;
    };
    assert_eq!(code, 1, "{shown}");
    assert_eq!(
        shown,
        format!("{ask}\nbobby\nerror: The name typed does not match: nothing was deleted.")
    );
    assert_eq!(std::fs::read(d.join("users.json")).unwrap(), before);
    let (code, shown) =
        on_a_terminal(d, &["users", "delete", "bob"], &[(ask_line, "bob", false)]).unwrap();
    assert_eq!((code, shown.as_str()), (0, format!("{ask}\nbob\nUser 'bob' deleted.").as_str()));
    assert_eq!(app(d, &["users", "list"], "").stdout, b"alice\n");

    // Review (P4f, point 5): a lab name is asked for as stored; the spelling given on the
    // command line is not the confirmation, the stored name (as shown) is.
    let hash =
        |p: &str| globo::auth::hash_password(p, globo::auth::Profile::TestOnlyInsecure).unwrap();
    let lab = serde_json::json!({"jose\u{301}": hash("first lab password"), "bob": hash("b")});
    std::fs::write(d.join("users.json"), lab.to_string()).unwrap();
    let before = std::fs::read(d.join("users.json")).unwrap();
    let ask = "To delete user 'jose\\u{301}', type the name again:";
    let asked = format!("{ask}\n");
    let args = ["users", "delete", "jos\u{e9}"];
    let (code, shown) = on_a_terminal(d, &args, &[(&asked, "jos\u{e9}", false)]).unwrap();
    assert_eq!(code, 1, "{shown}");
    assert!(shown.ends_with("error: The name typed does not match: nothing was deleted."));
    assert_eq!(std::fs::read(d.join("users.json")).unwrap(), before);
    let (code, shown) = on_a_terminal(d, &args, &[(&asked, "jose\\u{301}", false)]).unwrap();
    assert_eq!(code, 0, "{shown}");
    assert!(shown.ends_with("User 'jose\\u{301}' deleted."), "{shown}");
    assert_eq!(app(d, &["users", "list"], "").stdout, b"bob\n");
}

#[test]
fn at_a_terminal_passwd_and_reset_prompt_without_echo_and_confirm_the_new_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    alice_and_bob(d);
    let before = std::fs::read(d.join("users.json")).unwrap();
    let steps = [
        ("Current password: ", ALICE_PW, true),
        ("New password: ", NEW_PW, true),
        ("Confirm new password: ", "a different passphrase", true),
    ];
    let Some((code, shown)) = on_a_terminal(d, &["users", "passwd", "alice"], &steps) else {
        return;
    };
    assert_eq!(code, 1, "{shown}");
    assert!(shown.ends_with("error: Passwords do not match. Nothing was changed."), "{shown}");
    assert_eq!(std::fs::read(d.join("users.json")).unwrap(), before);

    let steps = [
        ("Current password: ", ALICE_PW, true),
        ("New password: ", NEW_PW, true),
        ("Confirm new password: ", NEW_PW, true),
    ];
    let (code, shown) = on_a_terminal(d, &["users", "passwd", "alice"], &steps).unwrap();
    assert_eq!(code, 0, "{shown}");
    assert!(shown.ends_with("Password changed for 'alice'."), "{shown}");
    assert!(!shown.contains(ALICE_PW) && !shown.contains(NEW_PW), "{shown}");
    assert!(verifies(d, "alice", NEW_PW));

    let steps = [("New password: ", NEW_PW, true), ("Confirm new password: ", NEW_PW, true)];
    let (code, shown) = on_a_terminal(d, &["users", "reset", "bob"], &steps).unwrap();
    assert_eq!(code, 0, "{shown}");
    assert!(shown.ends_with("Password reset for 'bob'."), "{shown}");
    assert!(!shown.contains(NEW_PW), "{shown}");
    assert!(verifies(d, "bob", NEW_PW));
}

/// Review (P4f, point 2): a name cannot forge log fields, in JSON or in text: everything
/// but `[A-Za-z0-9._@-]` and non-ASCII letters is written as `\u{..}`.
#[test]
fn a_name_cannot_forge_log_fields() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    alice_and_bob(d);
    let forged = "x source=198.51.100.1 by_operator=true";
    let escaped = "x\\u{20}source\\u{3d}198.51.100.1\\u{20}by_operator\\u{3d}true";
    // A stored name (a lab file may hold any; a name no user has is logged by a label only),
    // whose reset fails on the policy (too short).
    let path = d.join("users.json");
    let mut users: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let record = users["alice"].clone();
    users.insert(forged.to_owned(), record);
    std::fs::write(&path, serde_json::to_vec(&users).unwrap()).unwrap();
    let args = ["users", "reset", forged, "--password-stdin"];
    let stdin = "short\n".to_owned();
    let json = [("RUST_LOG", "globo_auth=info"), ("GLOBO_LOG_FORMAT", "json")];
    let out = app_env(d, &args, &stdin, &json);
    assert_eq!(out.status.code(), Some(1));
    let events = json_lines(&out);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], format!("authn_password_change_fail:{escaped}"));
    assert_eq!(events[0]["username"], escaped);
    assert_eq!(events[0]["source"], "");
    assert!(events[0].get("by_operator").is_none(), "{events:?}");
    let out = app_env(d, &args, &stdin, &[("RUST_LOG", "globo_auth=info")]);
    let err = stderr(&out);
    let line = err.lines().find(|line| line.contains("globo_auth::security")).unwrap();
    assert_eq!(line.matches("source=").count(), 1, "{line}");
    assert!(!line.contains("by_operator=") && line.contains(&format!("username={escaped} ")));
}

/// Review (P4f, points 4 and 5): `delete` looks the user up before it asks anything, asks
/// about the name as stored (shown with `\u{..}` for what cannot be seen), and names an
/// ambiguous spelling as such, with a hint to name the user exactly as listed.
#[test]
fn delete_finds_the_stored_name_before_asking() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hash =
        |p: &str| globo::auth::hash_password(p, globo::auth::Profile::TestOnlyInsecure).unwrap();
    let lab = serde_json::json!({
        "jose\u{301}": hash("first lab password"),
        "jo": hash("second lab password"),
        "jo\u{200B}": hash("third lab password"),
    });
    std::fs::write(d.join("users.json"), lab.to_string()).unwrap();
    let before = std::fs::read(d.join("users.json")).unwrap();
    // An unknown name fails before any question (it asked for --yes first).
    let out = app(d, &["users", "delete", "mallory"], "");
    refused(d, &out, &no_user("mallory"), &before);
    // The question names the user as stored (NFD, the accent shown escaped).
    let out = app(d, &["users", "delete", "jos\u{e9}"], "");
    refused(
        d,
        &out,
        "Standard input is not a terminal, so the deletion cannot be confirmed: pass --yes to \
         delete user 'jose\\u{301}'.",
        &before,
    );
    // Two stored names share the spelling's key, neither is it.
    for args in [
        &["users", "delete", "jo\u{2060}"][..],
        &["users", "reset", "jo\u{2060}", "--password-stdin"],
    ] {
        let out = app(d, args, &format!("{NEW_PW}\n"));
        refused(
            d,
            &out,
            &format!(
                "'jo\\u{{2060}}' matches 2 stored users whose names differ only in Unicode form, \
                 width or invisible characters: {NAME_EXACTLY}"
            ),
            &before,
        );
    }
    assert_eq!(ok(&app(d, &["users", "list"], "")), "jose\\u{301}\njo\njo\\u{200b}\n");
    let out = app(d, &["users", "delete", "jos\u{e9}", "--yes"], "");
    assert_eq!(ok(&out), "User 'jose\\u{301}' deleted.\n");
    let out = app(d, &["users", "delete", "jo\u{200B}", "--yes"], "");
    assert_eq!(ok(&out), "User 'jo\\u{200b}' deleted.\n");
    assert_eq!(users(d).keys().collect::<Vec<_>>(), ["jo"]);
}

/// Review (P4f, point 8): `--password-stdin` is shared, but what it reads is not: each
/// command's help says how many lines (passwd read two while its help said one).
#[test]
fn each_commands_help_says_what_password_stdin_reads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (command, reads) in [
        (
            &["users", "passwd"][..],
            "Read two lines of standard input, the current password then the new one",
        ),
        (&["users", "reset"][..], "Read the new password from one line of standard input"),
        (&["register"][..], "Read the new password from one line of standard input"),
        (&["verify"][..], "Read the password from one line of standard input"),
    ] {
        let help = ok(&app(d, &[command, &["--help"]].concat(), ""));
        // The help is wrapped to the terminal's width: compare the words.
        let words = help.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains(&format!("--password-stdin {reads}")), "{command:?}: {help}");
    }
}
