//! How `app` prints and what its process allows: a closed stdout is a reported failure (never
//! a panic, which the release profile turns into SIGABRT and a core file holding the
//! password), runtime errors carry clap's `error: ` prefix, the help states examples and exit
//! codes, completions are generated, and the process is neither dumpable nor traceable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const APP: &str = env!("CARGO_BIN_EXE_app");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `app <args>` in `dir` with `stdin`, its stdout a pipe whose read end is closed before
/// `app` starts (as `app ... | head -c0` once head has exited): every write gets EPIPE.
fn run_with_stdout_closed(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = globo_testkit::isolated_command(APP, dir)
        .args(args)
        .env("GLOBO_PASSWORD_PROFILE", "test-only-insecure")
        .stdin(Stdio::piped())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn users(dir: &Path) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_slice(&std::fs::read(dir.join("users.json")).unwrap()).unwrap()
}

#[test]
fn a_closed_stdout_is_exit_1_with_a_message_and_the_user_is_registered() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_stdout_closed(
        dir.path(),
        &["register", "alice", "--password-stdin"],
        "a fine passphrase\n",
    );
    let stderr = text(&out.stderr);
    // Not 101 (a panic in a debug build) nor SIGABRT (a panic in the release build).
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", out.status);
    assert!(stderr.contains("error: cannot write to standard output: Broken pipe"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("a fine passphrase"), "{stderr}");
    // The print comes after the write: the user is registered, only the report was lost.
    assert!(users(dir.path()).contains_key("alice"));
}

#[test]
fn a_secret_that_cannot_be_delivered_is_not_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "PAYMENT_GATEWAY_API_KEY=local-dev-payment-key-123456\n",
    )
    .unwrap();
    let out =
        run_with_stdout_closed(dir.path(), &["secrets", "get", "PAYMENT_GATEWAY_API_KEY"], "");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", out.status);
    assert!(stderr.contains("error: cannot write to standard output"), "{stderr}");
    assert!(!stderr.contains("local-dev-payment-key"), "{stderr}");
}

#[test]
fn runtime_errors_are_prefixed_like_claps() {
    let dir = tempfile::tempdir().unwrap();
    let out = globo_testkit::output_guarded(
        globo_testkit::isolated_command(APP, dir.path()).args(["config", "show"]),
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: key file 'secret.key' not found"), "{stderr}");
    // A usage error comes from clap, with the same prefix and exit code 2.
    let out = globo_testkit::output_guarded(
        globo_testkit::isolated_command(APP, dir.path()).args(["config", "shwo"]),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("error: "), "{}", text(&out.stderr));
}

#[test]
fn help_shows_examples_and_every_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["-h", "--help"] {
        let out = globo_testkit::output_guarded(
            globo_testkit::isolated_command(APP, dir.path()).arg(flag),
            None,
        );
        assert!(out.status.success());
        let help = text(&out.stdout);
        assert!(help.contains("Examples:\n  app register alice"), "{help}");
        assert!(help.contains("app completions bash"), "{help}");
        let codes = &help[help.find("Exit codes:").expect("an exit code section")..];
        for code in ["\n  0 ", "\n  1 ", "\n  2 ", "\n  130 "] {
            assert!(codes.contains(code), "{code:?} missing in {codes}");
        }
    }
}

#[test]
fn completions_are_generated_for_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_app()"),
        ("zsh", "#compdef app"),
        ("fish", "complete -c app"),
        ("elvish", "edit:completion:arg-completer[app]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = globo_testkit::output_guarded(
            globo_testkit::isolated_command(APP, dir.path()).args(["completions", shell]),
            None,
        );
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("rotate-key"), "{shell}: subcommands are completed");
    }
    let out = globo_testkit::output_guarded(
        globo_testkit::isolated_command(APP, dir.path()).args(["completions", "tcsh"]),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// The uid of user `nobody`, for the unprivileged run.
const NOBODY: u32 = 65534;

#[test]
fn the_process_is_not_dumpable_and_writes_files_as_an_unprivileged_user() {
    if !rustix_is_root() {
        assert!(!globo_testkit::in_ci(), "needs root to run app as nobody (CI runs as root)");
        eprintln!("SKIPPED: needs root to run app as nobody");
        return;
    }
    // A folder the unprivileged user owns, below one everyone may enter.
    let outer = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outer.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let dir = outer.path().join("home");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();

    let mut child = globo_testkit::isolated_command("setpriv", &dir)
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(APP)
        .args(["register", "carol", "--password-stdin"])
        .env("GLOBO_PASSWORD_PROFILE", "test-only-insecure")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // setpriv execs app in the same process; wait until it is app, running as nobody, blocked
    // reading its password (stdin stays open).
    // The loop is a bound on waiting, not a timing assertion.
    let proc_dir = format!("/proc/{}", child.id());
    let mut seen_app = false;
    for _ in 0..500 {
        let exe = std::fs::read_link(format!("{proc_dir}/exe")).ok();
        let uid = status_field(&proc_dir, "Uid:");
        if exe.as_deref() == Some(Path::new(APP)) && uid.starts_with("65534") {
            // Hardening is the first thing main does; blocked reading stdin, it is done.
            let wchan = std::fs::read_to_string(format!("{proc_dir}/wchan")).unwrap_or_default();
            if wchan.contains("pipe_read") {
                seen_app = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(seen_app, "app did not start as nobody");
    let limits = std::fs::read_to_string(format!("{proc_dir}/limits")).unwrap();
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
    // A dumpable process's /proc files belong to its user; a non-dumpable one's to root, so
    // other processes of the user can neither ptrace it nor read its memory.
    let environ = std::fs::metadata(format!("{proc_dir}/environ")).unwrap();
    assert_eq!(environ.uid(), 0, "app running as nobody is still dumpable");

    child.stdin.take().unwrap().write_all(b"a fine passphrase\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}: {}", out.status, text(&out.stderr));
    assert_eq!(text(&out.stdout), "User 'carol' registered.\n");
    // The atomic write (an unnamed O_TMPFILE linked into place) works in the hardened process.
    let written = std::fs::metadata(dir.join("users.json")).unwrap();
    assert_eq!((written.uid(), written.mode() & 0o777), (NOBODY, 0o600));
    assert!(users(&dir).contains_key("carol"));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn status_field(proc_dir: &str, name: &str) -> String {
    std::fs::read_to_string(format!("{proc_dir}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

fn rustix_is_root() -> bool {
    // The test's own uid, from /proc (no libc call needed).
    status_field("/proc/self", "Uid:").split_whitespace().nth(1) == Some("0")
}

/// Runs `app register zed` on a pseudo-terminal, types `sec` and Ctrl-C at the prompt once
/// the terminal is in raw mode, and prints how app ended and the terminal's mode afterwards.
const CTRL_C_AT_THE_PROMPT: &str = r#"
import os, pty, select, sys, termios, time
app, folder = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.chdir(folder)
    os.execve(app, [app, "register", "zed"], {"PATH": os.environ["PATH"], "HOME": folder})
seen, deadline = b"", time.time() + 30  # bounds on waiting, not timing assertions
while b"Password: " not in seen and time.time() < deadline:
    if select.select([fd], [], [], 0.5)[0]:
        seen += os.read(fd, 1024)
while termios.tcgetattr(fd)[3] & termios.ICANON and time.time() < deadline:
    time.sleep(0.01)
os.write(fd, b"sec\x03")
_, status = os.waitpid(pid, 0)
lflag = termios.tcgetattr(fd)[3]
how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
print(how, "echo", bool(lflag & termios.ECHO), "canonical", bool(lflag & termios.ICANON))
"#;

#[test]
fn ctrl_c_at_the_prompt_exits_130_and_restores_the_terminal() {
    let Some(python) = globo_testkit::python(&["pty", "termios"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let report = python.run_ok(CTRL_C_AT_THE_PROMPT, &[APP, dir.path().to_str().unwrap()], b"");
    // Before: "signal 2 echo False canonical False", the terminal left without echo.
    assert_eq!(text(&report).trim(), "exit 130 echo True canonical True");
    assert!(!dir.path().join("users.json").exists());
}

/// Runs `app register zed` on a pseudo-terminal while this script holds `users.json.lock`,
/// types the password twice, waits until app blocks on the lock (its waiting `flock` shows in
/// `/proc/locks`), sends it SIGINT and prints how app ended.
const CTRL_C_AFTER_THE_PROMPT: &str = r#"
import fcntl, os, pty, select, signal, sys, termios, time
app, folder = sys.argv[1], sys.argv[2]
held = open(os.path.join(folder, "users.json.lock"), "w")
fcntl.flock(held, fcntl.LOCK_EX)
pid, fd = pty.fork()
if pid == 0:
    os.chdir(folder)
    settings = {"GLOBO_PASSWORD_PROFILE": "test-only-insecure"}
    os.execve(app, [app, "register", "zed"], {"PATH": os.environ["PATH"], "HOME": folder, **settings})
deadline = time.time() + 30  # bounds on waiting, not timing assertions
def wait_for(prompt):
    seen = b""
    while prompt not in seen and time.time() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            seen += os.read(fd, 1024)
    while termios.tcgetattr(fd)[3] & termios.ICANON and time.time() < deadline:
        time.sleep(0.01)
wait_for(b"Password: ")
os.write(fd, b"correct horse battery\n")
wait_for(b"Confirm password: ")
os.write(fd, b"correct horse battery\n")
def blocked():
    with open("/proc/locks") as locks:
        return any("->" in line and f" {pid} " in line for line in locks)
while not blocked() and time.time() < deadline:
    time.sleep(0.01)
print("blocked" if blocked() else "never blocked")
os.kill(pid, signal.SIGINT)
while time.time() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    try:
        os.read(fd, 1024) if select.select([fd], [], [], 0.1)[0] else None
    except OSError:
        pass
else:
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    print("still running after SIGINT")
print(f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}")
"#;

/// The prompt's SIGINT handler stays installed for the rest of the process (a signal handler
/// cannot be removed without unsafe code); a Ctrl-C after the prompt, while `app` waits for
/// the lock of `users.json`, must still end it with 130.
#[test]
fn ctrl_c_after_the_prompt_still_exits_130() {
    let Some(python) = globo_testkit::python(&["pty", "termios", "fcntl"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let report = python.run_ok(CTRL_C_AFTER_THE_PROMPT, &[APP, dir.path().to_str().unwrap()], b"");
    // Before: "blocked\nstill running after SIGINT\nsignal 9": the Ctrl-C was swallowed.
    assert_eq!(text(&report).trim(), "blocked\nexit 130");
    assert!(!dir.path().join("users.json").exists());
}

/// Set in the environment of the test binary's own child run by
/// [`the_developers_settings_never_reach_app`]: that run is the probe.
const ISOLATION_PROBE: &str = "GLOBO_TEST_ISOLATION_PROBE";

/// Every `app` and `mock-aws-seed` test starts its binary through one helper,
/// `globo_testkit::isolated_command` (environment cleared, then `PATH`, `HOME` = the test's
/// folder and what the test sets), so a developer's `APP_MODE=prod` or AWS settings cannot
/// change what a test sees. Proved without touching this process's environment: the test
/// binary runs itself (this test only) with those settings in its environment, and that run
/// starts `app secrets get` through the helper, which must still read `.env` in local mode.
/// With the helper the `app` tests used before (`Command::new(APP).current_dir(dir)`), `app`
/// ran in prod mode against the unreachable endpoint.
#[test]
fn the_developers_settings_never_reach_app() {
    if std::env::var_os(ISOLATION_PROBE).is_some() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "PAYMENT_GATEWAY_API_KEY=local-dev-payment-key-123456\n",
        )
        .unwrap();
        let mut app = globo_testkit::isolated_command(APP, dir.path());
        app.args(["secrets", "get", "PAYMENT_GATEWAY_API_KEY"]);
        let out = globo_testkit::output_guarded(&mut app, None);
        assert!(out.status.success(), "app failed: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "local-dev-payment-key-123456\n");
        return;
    }
    let this_test = "the_developers_settings_never_reach_app";
    let mut probe = Command::new(std::env::current_exe().unwrap());
    probe
        .args([this_test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ISOLATION_PROBE, "1")
        // What a developer's shell may hold: each would change the answer if it leaked.
        .env("APP_MODE", "prod")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "developer")
        .env("AWS_SECRET_ACCESS_KEY", "developer")
        .env("PAYMENT_GATEWAY_API_KEY", "the-developers-own-value");
    let out = globo_testkit::output_guarded(&mut probe, None);
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "the probe failed:\n{report}");
    // The probe really ran (a filter that matched nothing would also succeed).
    assert!(report.contains("1 passed"), "the probe did not run:\n{report}");
}

/// The source side of the same rule: no `app` or `mock-aws-seed` test file (sub-folders
/// included) starts a program with a bare `Command::new` under any name (which inherits the
/// developer's environment), apart from the system tools that set the test up (`mkfifo`,
/// `mount`, `umount`) and the probe above; and no Python script in them starts one other than
/// by `os.execve` with an explicit environment. The rules and their planted examples:
/// `globo_testkit::unisolated_starts`.
#[test]
fn every_test_starts_programs_through_the_isolated_helper() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let probe = globo_testkit::Probe {
        file: "output_and_process.rs",
        function: "the_developers_settings_never_reach_app",
    };
    let mut offenders = Vec::new();
    for folder in ["app/tests", "mock-aws-seed/tests"] {
        offenders.extend(globo_testkit::unisolated_starts_under(&root.join(folder), &[probe]));
    }
    assert!(offenders.is_empty(), "use globo_testkit::isolated_command:\n{}", offenders.join("\n"));
}
