//! Running the project's binaries from tests: an isolated environment and a hang guard.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long [`output_guarded`] lets a command run before it calls it hung.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// A command for `program` run in `dir` with a cleared environment plus `PATH` (this
/// process's) and `HOME` (= `dir`), so no setting of the developer's (AWS, `APP_MODE`, ...)
/// leaks in. Add what the test needs with `.env(...)`.
pub fn isolated_command(program: impl AsRef<OsStr>, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir);
    command
}

/// Runs `command` with `stdin` as its input (`None`: no input at all, `/dev/null`) and
/// returns its output. Every command must end on its own: one still running after
/// [`HANG_GUARD`] is killed and the test panics (a hang guard, not a timing assertion).
pub fn output_guarded(command: &mut Command, stdin: Option<&[u8]>) -> Output {
    command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!("{:?} {:?}", command.get_program(), command.get_args().collect::<Vec<_>>());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
    let writer = child.stdin.take().map(|mut pipe| {
        let data = stdin.unwrap_or_default().to_vec();
        std::thread::spawn(move || {
            // The program may exit without reading its input: not this helper's concern.
            let _ = pipe.write_all(&data);
        })
    });
    let stdout = child.stdout.take().map(read_all);
    let stderr = child.stderr.take().map(read_all);
    let status = wait_guarded(&mut child, &what);
    if let Some(writer) = writer {
        writer.join().expect("stdin writer");
    }
    let collect = |reader: Option<JoinHandle<Vec<u8>>>| {
        reader.map(|r| r.join().expect("output reader")).unwrap_or_default()
    };
    Output { status, stdout: collect(stdout), stderr: collect(stderr) }
}

fn wait_guarded(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return status;
        }
        if started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} hung: still running after {} s", HANG_GUARD.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_all(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut data = Vec::new();
        let _ = pipe.read_to_end(&mut data);
        data
    })
}

/// Waits until the process `child` opens the FIFO `fifo` for reading: a thread opens it for
/// writing (which blocks until a reader comes), so the test waits on the child or the open,
/// never on a clock. Returns a sender for the text to write into the FIFO (sent, then the FIFO
/// is closed), or `None` if the child ended without opening it. Used to hold a reader at a
/// known point (after it loaded its keys, before it reads the file).
#[cfg(unix)]
pub fn fifo_opened_by(fifo: &Path, child: &mut Child) -> Option<std::sync::mpsc::Sender<String>> {
    use std::sync::mpsc;
    let (opened_tx, opened) = mpsc::channel();
    let (text, text_rx) = mpsc::channel::<String>();
    let fifo = fifo.to_path_buf();
    std::thread::spawn(move || {
        let Ok(mut writer) = std::fs::OpenOptions::new().write(true).open(&fifo) else { return };
        let _ = opened_tx.send(());
        if let Ok(text) = text_rx.recv() {
            let _ = writer.write_all(text.as_bytes());
        }
    });
    loop {
        match opened.recv_timeout(Duration::from_millis(20)) {
            Ok(()) => return Some(text),
            Err(_) if child.try_wait().ok().flatten().is_some() => return None,
            Err(_) => {}
        }
    }
}
