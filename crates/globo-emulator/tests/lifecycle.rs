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
        && globo_emulator::venv_moto_server().is_file()
    {
        assert_eq!(program, globo_emulator::venv_moto_server());
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
    assert!(matches!(error, EmulatorError::ExitedEarly { port: p, .. } if p == port), "{error:?}");
    assert!(error.to_string().contains(&format!("127.0.0.1:{port}")), "{error}");
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    let options =
        Options { program: Some(PathBuf::from("/nonexistent/moto_server")), ..Options::default() };
    let error = Emulator::start(options).unwrap_err();
    assert!(matches!(error, EmulatorError::Spawn { .. }), "{error:?}");
}
