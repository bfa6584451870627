//! Starting, probing and stopping the real moto server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;

use globo_emulator::{Emulator, EmulatorError, Options};

fn program() -> Option<PathBuf> {
    match globo_emulator::locate() {
        Ok(Some(program)) => Some(program),
        Ok(None) => {
            globo_testkit::missing("moto_server");
            None
        }
        Err(error) => panic!("{error}"),
    }
}

#[test]
fn the_projects_pinned_moto_is_preferred() {
    let Some(program) = program() else { return };
    if std::env::var_os("GLOBO_MOTO_SERVER").is_none()
        && let Some(venv) =
            globo_emulator::venv_moto_server().unwrap().filter(|venv| venv.is_file())
    {
        assert_eq!(program, venv);
    }
}

#[test]
fn starts_on_loopback_answers_and_is_gone_after_drop() {
    let Some(program) = program() else { return };
    let moto = Emulator::start(Options { program: Some(program), ..Options::default() }).unwrap();
    let port = moto.port();
    assert_eq!(moto.endpoint_url(), format!("http://127.0.0.1:{port}"));
    assert!(moto.is_answering());
    drop(moto);
    // Killed and reaped: nothing listens any more, and the port can be bound again.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    TcpListener::bind(("127.0.0.1", port)).unwrap();
}

#[test]
fn a_busy_port_is_a_clear_startup_error() {
    let Some(program) = program() else { return };
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let options = Options { port: Some(port), program: Some(program), ..Options::default() };
    let error = Emulator::start(options).unwrap_err();
    assert!(matches!(error, EmulatorError::PortInUse { port: p } if p == port), "{error:?}");
    assert!(error.to_string().contains(&format!("127.0.0.1:{port} is already in use")), "{error}");
}

/// A server that answers HTTP on the port (another moto, any web server) is not taken for
/// the emulator: the port is refused before anything starts.
#[test]
fn a_port_held_by_another_http_server_is_refused() {
    let Some(program) = program() else { return };
    let (port, _server) = http_server();
    let options = Options { port: Some(port), program: Some(program), ..Options::default() };
    let error = Emulator::start(options).unwrap_err();
    assert!(matches!(error, EmulatorError::PortInUse { port: p } if p == port), "{error:?}");
}

/// A loopback port answering every connection with an HTTP 200, for as long as the test runs.
fn http_server() -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read as _, Write as _};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (port, server)
}

#[test]
fn the_project_is_found_at_run_time_from_any_folder_inside_it() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().join("checkout");
    for file in ["Cargo.toml", "python/requirements.txt", "scripts/python-env"] {
        std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
        std::fs::write(root.join(file), "").unwrap();
    }
    std::fs::create_dir_all(root.join("crates/deep/src")).unwrap();
    assert_eq!(globo_emulator::find_project_dir(&root.join("crates/deep/src")), Some(root.clone()));
    assert_eq!(globo_emulator::find_project_dir(&root), Some(root.clone()));
    // A Cargo.toml alone (another project) is not a globo checkout.
    std::fs::write(tree.path().join("Cargo.toml"), "").unwrap();
    assert_eq!(globo_emulator::find_project_dir(tree.path()), None);
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    let options =
        Options { program: Some(PathBuf::from("/nonexistent/moto_server")), ..Options::default() };
    let error = Emulator::start(options).unwrap_err();
    assert!(matches!(error, EmulatorError::Spawn { .. }), "{error:?}");
}
