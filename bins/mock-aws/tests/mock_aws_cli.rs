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

#[test]
fn the_venv_is_the_one_of_the_checkout_it_runs_in() {
    // Another checkout: the markers of a globo workspace and its own venv.
    let tree = tempfile::tempdir().unwrap();
    let checkout = tree.path();
    for file in ["Cargo.toml", "python/requirements.txt", "scripts/python-env"] {
        std::fs::create_dir_all(checkout.join(file).parent().unwrap()).unwrap();
        std::fs::write(checkout.join(file), "").unwrap();
    }
    fake_moto(checkout);
    let sub = checkout.join("docs");
    std::fs::create_dir(&sub).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = globo_testkit::output_guarded(
        globo_testkit::isolated_command(MOCK_AWS, &sub).args(["--port", &port.to_string()]),
        None,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("fake moto of this checkout -H 127.0.0.1 -p"), "{stderr}");
    assert!(!stderr.contains("is up"), "{stderr}");
}
