//! `mock-aws` as a user runs it: it never claims a port another server holds, and it finds
//! the project venv at run time, from the folder it runs in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

const MOCK_AWS: &str = env!("CARGO_BIN_EXE_mock-aws");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A loopback port answering every connection with an HTTP 200 (as another moto or any web
/// server would), for as long as the test runs.
fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    port
}

#[test]
fn a_port_held_by_another_server_is_an_error_never_is_up() {
    // The real moto, so that the old behaviour (start it, probe, reach the other server) shows.
    let moto = match globo_emulator::locate() {
        Ok(Some(moto)) => moto,
        Ok(None) => return globo_testkit::missing("moto_server"),
        Err(error) => panic!("{error}"),
    };
    let port = http_server();
    let dir = tempfile::tempdir().unwrap();
    let out = globo_testkit::output_guarded(
        globo_testkit::isolated_command(MOCK_AWS, dir.path())
            .args(["--port", &port.to_string()])
            .env("GLOBO_MOTO_SERVER", &moto),
        None,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("is up"), "{stderr}");
    assert!(
        stderr.contains(&format!("error: 127.0.0.1:{port} is already in use by another process")),
        "{stderr}"
    );
    assert!(stderr.contains("--port"), "says how to choose another port: {stderr}");
    // The advice once (it was given by the library and again by mock-aws).
    assert_eq!(stderr.matches("choose another").count(), 1, "{stderr}");
}

/// Writes an executable `moto_server` into `dir/.venv/bin` that reports itself and exits 3.
fn fake_moto(project: &Path) {
    let bin = project.join(".venv/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("moto_server");
    std::fs::write(&fake, "#!/bin/sh\necho \"fake moto of this checkout $*\" >&2\nexit 3\n")
        .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A folder that looks like a globo checkout (its markers, and a fake `moto_server` in its
/// `.venv`), with a `docs` folder to run in.
fn checkout_with_fake_moto(checkout: &Path) -> std::path::PathBuf {
    for file in ["Cargo.toml", "python/requirements.txt", "scripts/python-env"] {
        std::fs::create_dir_all(checkout.join(file).parent().unwrap()).unwrap();
        std::fs::write(checkout.join(file), "").unwrap();
    }
    fake_moto(checkout);
    let sub = checkout.join("docs");
    std::fs::create_dir(&sub).unwrap();
    sub
}

/// `mock-aws` copied out of this checkout (as `cargo install` would put it), so that the
/// checkout it was built in is not found from its own path.
fn installed_mock_aws(bin_dir: &Path) -> std::path::PathBuf {
    let copy = bin_dir.join("mock-aws");
    std::fs::copy(MOCK_AWS, &copy).unwrap();
    copy
}

/// Runs an installed `mock-aws` in `dir` on a free port, with no `moto_server` on `PATH`.
fn run_installed_in(bin_dir: &Path, dir: &Path) -> std::process::Output {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    globo_testkit::output_guarded(
        globo_testkit::isolated_command(installed_mock_aws(bin_dir), dir)
            .env("PATH", "/usr/bin:/bin")
            .args(["--port", &port.to_string()]),
        None,
    )
}

#[test]
fn an_installed_binary_uses_the_venv_of_the_checkout_it_runs_in() {
    let bin_dir = tempfile::tempdir().unwrap();
    let tree = tempfile::tempdir().unwrap();
    let sub = checkout_with_fake_moto(tree.path());
    let out = run_installed_in(bin_dir.path(), &sub);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fake moto of this checkout -H 127.0.0.1 -p"), "{stderr}");
    assert!(!stderr.contains("is up"), "{stderr}");
}

/// A checkout planted in a shared folder by another user (uid 4321) is found above the
/// current directory, but nothing in it runs (git's CVE-2022-24765 class).
#[test]
fn a_checkout_owned_by_another_user_is_refused_and_nothing_in_it_runs() {
    if !is_root() {
        return globo_testkit::missing("root (to give files to another uid)");
    }
    let bin_dir = tempfile::tempdir().unwrap();
    let tree = tempfile::tempdir().unwrap();
    let planted = tree.path().join("planted");
    std::fs::create_dir(&planted).unwrap();
    let sub = checkout_with_fake_moto(&planted);
    chown_tree(&planted, 4321);
    let out = run_installed_in(bin_dir.path(), &sub);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("fake moto"), "the planted program ran: {stderr}");
    assert!(
        stderr.contains(&format!("not running anything from '{}'", planted.display())),
        "{stderr}"
    );
    assert!(stderr.contains("is owned by uid 4321"), "{stderr}");
}

/// A checkout the user owns but whose venv program others may replace is refused too.
#[test]
fn a_group_writable_checkout_is_refused_and_nothing_in_it_runs() {
    let bin_dir = tempfile::tempdir().unwrap();
    let tree = tempfile::tempdir().unwrap();
    let sub = checkout_with_fake_moto(tree.path());
    let bin = tree.path().join(".venv/bin");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o775)).unwrap();
    let out = run_installed_in(bin_dir.path(), &sub);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("fake moto"), "the planted program ran: {stderr}");
    assert!(
        stderr.contains(&format!("'{}' is writable by its group (mode 775)", bin.display())),
        "{stderr}"
    );
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1).map(|uid| uid == "0"))
        .unwrap_or(false)
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}
