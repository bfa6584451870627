//! The local AWS emulator (moto) for globo's integration tests and the `mock-aws` tool.
//!
//! One piece of code finds `moto_server` (`$GLOBO_MOTO_SERVER`, then the project venv's
//! `.venv/bin/moto_server`, then `PATH`), installs the pinned `moto[server]` into the project
//! venv with `scripts/python-env` when it is nowhere to be found, starts it on the loopback
//! interface only, waits (bounded) until it answers, and stops it again: dropping an
//! [`Emulator`] kills the process and reaps it.
//!
//! The project (its venv and `scripts/python-env`) is found at run time, never fixed at build
//! time: `$GLOBO_PROJECT_DIR` when set, else the checkout the running binary was built in
//! (from its own path upwards), else the nearest folder from the current directory upwards
//! that holds the workspace's `Cargo.toml`, `python/requirements.txt` and
//! `scripts/python-env`, and only when that folder and what would run from it belong to this
//! user or root and are not group- or world-writable (see [`project_dir`] and
//! [`trusted_project_dir`]). A binary built in one checkout uses that checkout's venv; a
//! binary installed elsewhere uses the checkout it runs in, if the user owns it.
//!
//! A port is only reported ready when it is free before the start and, once it answers, is
//! held by the started process itself or one of its descendants (on Linux, read from `/proc`;
//! a `GLOBO_MOTO_SERVER` wrapper script may run moto with or without `exec`, but must not
//! detach it), so another server on the same port is never mistaken for the emulator
//! ([`EmulatorError::PortInUse`]).
//!
//! ```no_run
//! # fn main() -> Result<(), globo_emulator::EmulatorError> {
//! let moto = globo_emulator::Emulator::start(globo_emulator::Options::default())?;
//! println!("AWS_ENDPOINT_URL={}", moto.endpoint_url());
//! drop(moto); // killed and reaped
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod error;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use error::EmulatorError;
pub use globo_report::{Report, with_causes};

/// The lab's emulator port (`cargo run --bin mock-aws` listens on `127.0.0.1:5000`).
pub const LAB_PORT: u16 = 5000;

/// The variable naming the project folder (the one holding `.venv` and `scripts/python-env`),
/// overriding the search upwards from the current directory.
pub const PROJECT_DIR_VAR: &str = "GLOBO_PROJECT_DIR";

/// How many lines of the emulator's stderr are kept for error messages.
const KEPT_LINES: usize = 20;

/// The globo project folder for this process, or `None` when there is none (then only
/// `$GLOBO_MOTO_SERVER` and `PATH` can provide `moto_server`). In this order:
///
/// 1. `$GLOBO_PROJECT_DIR` when set and not empty: the user's explicit choice, used as is.
/// 2. The checkout this program was built in: [`find_project_dir`] from the folder of
///    [`std::env::current_exe`] upwards (a binary built in a checkout lives in
///    `<checkout>/target/...`).
/// 3. [`trusted_project_dir`] from the current directory: a folder found there is only used
///    when it and the files that would run from it belong to this user or root and are not
///    group- or world-writable ([`EmulatorError::UntrustedProject`] otherwise), so a
///    `.venv/bin/moto_server` or `scripts/python-env` planted in a shared folder such as
///    `/tmp` by another user never runs.
pub fn project_dir() -> Result<Option<PathBuf>, EmulatorError> {
    if let Some(dir) = std::env::var_os(PROJECT_DIR_VAR).filter(|v| !v.is_empty()) {
        return Ok(Some(PathBuf::from(dir)));
    }
    let built_in =
        std::env::current_exe().ok().and_then(|exe| exe.parent().and_then(find_project_dir));
    if built_in.is_some() {
        return Ok(built_in);
    }
    match std::env::current_dir() {
        Ok(cwd) => trusted_project_dir(&cwd),
        Err(_) => Ok(None),
    }
}

/// The nearest folder from `start` upwards that looks like a globo checkout: it holds
/// `Cargo.toml`, `python/requirements.txt` (the pinned peers) and `scripts/python-env` (which
/// installs them). It only says what the folder looks like: see [`trusted_project_dir`]
/// before running anything from it.
pub fn find_project_dir(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| {
            dir.join("Cargo.toml").is_file()
                && dir.join("python/requirements.txt").is_file()
                && dir.join("scripts/python-env").is_file()
        })
        .map(Path::to_path_buf)
}

/// The paths under a project folder that are run (or hold what is run), checked by
/// [`trusted_project_dir`]: the folder, `scripts/python-env` and the venv's programs, with
/// every folder between them and the project folder.
const RUN_FROM_PROJECT: [&str; 7] = [
    "",
    "scripts",
    "scripts/python-env",
    ".venv",
    ".venv/bin",
    ".venv/bin/moto_server",
    ".venv/bin/python",
];

/// [`find_project_dir`] from `start`, accepted only when the folder found, `scripts`,
/// `scripts/python-env`, `.venv`, `.venv/bin` and the venv's `moto_server` and `python` (those
/// that exist; symbolic links are followed and their targets checked) belong to the effective
/// user or root and are not writable by group or others. This is git's rule for repositories
/// found upwards from the current directory (CVE-2022-24765): a folder another user could
/// have planted or could change is never run from. `Ok(None)` when no folder looks like a
/// checkout; [`EmulatorError::UntrustedProject`] when the one found fails the check.
pub fn trusted_project_dir(start: &Path) -> Result<Option<PathBuf>, EmulatorError> {
    let Some(dir) = find_project_dir(start) else { return Ok(None) };
    let me = rustix::process::geteuid().as_raw();
    for relative in RUN_FROM_PROJECT {
        let path = if relative.is_empty() { dir.clone() } else { dir.join(relative) };
        let untrusted = |problem: String| EmulatorError::UntrustedProject {
            dir: dir.clone(),
            path: path.clone(),
            problem,
        };
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !relative.is_empty() => {
                continue;
            }
            Err(e) => return Err(untrusted(format!("cannot be checked ({e})"))),
        };
        if let Some(problem) = ownership_problem(meta.uid(), meta.mode(), me) {
            return Err(untrusted(problem));
        }
    }
    Ok(Some(dir))
}

/// Why a file with owner `uid` and `mode` must not be run from (or hold what is run) for
/// the user `me`: owned by someone else than `me` or root, or writable by group or others.
fn ownership_problem(uid: u32, mode: u32, me: u32) -> Option<String> {
    if uid != me && uid != 0 {
        return Some(format!("is owned by uid {uid}, neither you (uid {me}) nor root"));
    }
    let writable_by = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "its group and everyone",
        (true, false) => "its group",
        (false, true) => "everyone",
        (false, false) => return None,
    };
    Some(format!("is writable by {writable_by} (mode {:o})", mode & 0o7777))
}

/// The project venv's `moto_server` (pinned by `python/requirements.txt`) under
/// [`project_dir`], whether or not it is installed yet; `None` outside a project.
pub fn venv_moto_server() -> Result<Option<PathBuf>, EmulatorError> {
    Ok(project_dir()?.map(|dir| dir.join(".venv/bin/moto_server")))
}

/// Finds `moto_server` without installing anything: `$GLOBO_MOTO_SERVER` (which must exist
/// when set), then the project venv, then `PATH`. `Ok(None)` when there is none.
pub fn locate() -> Result<Option<PathBuf>, EmulatorError> {
    if let Some(over) = std::env::var_os("GLOBO_MOTO_SERVER").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(over);
        return if path.is_file() { Ok(Some(path)) } else { Err(EmulatorError::BadOverride(path)) };
    }
    if let Some(venv) = venv_moto_server()?.filter(|venv| venv.is_file()) {
        return Ok(Some(venv));
    }
    let path_var: OsString = std::env::var_os("PATH").unwrap_or_default();
    Ok(std::env::split_paths(&path_var).map(|dir| dir.join("moto_server")).find(|p| p.is_file()))
}

/// Like [`locate`], but installs the pinned `moto[server]` into the project venv by running
/// the project's `scripts/python-env` (its progress goes to this process's stderr) when
/// `moto_server` is nowhere to be found.
pub fn find_or_install() -> Result<PathBuf, EmulatorError> {
    if let Some(found) = locate()? {
        return Ok(found);
    }
    let Some(project) = project_dir()? else {
        return Err(EmulatorError::NoProject {
            start: std::env::current_dir().unwrap_or_default(),
        });
    };
    let script = project.join("scripts/python-env");
    let venv = project.join(".venv/bin/moto_server");
    let failed = |reason: String| EmulatorError::NotInstalled {
        venv: venv.clone(),
        script: script.clone(),
        reason,
    };
    let status = Command::new(&script)
        .current_dir(&project)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| failed(e.to_string()))?;
    if !status.success() {
        return Err(failed(format!("it exited with {status}")));
    }
    if venv.is_file() { Ok(venv) } else { Err(failed("the venv still has no moto_server".into())) }
}

/// How to start the emulator.
#[derive(Debug, Clone)]
pub struct Options {
    /// The loopback port; `None` picks a free one (what tests want).
    pub port: Option<u16>,
    /// Let the emulator print its request log to this process's stdout/stderr (the foreground
    /// `mock-aws` tool) instead of keeping only the tail of stderr for error messages.
    pub inherit_output: bool,
    /// How long to wait for the first answer; Python start-up can take seconds on a busy machine.
    pub startup_timeout: Duration,
    /// The `moto_server` to run; `None` uses [`find_or_install`].
    pub program: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: None,
            inherit_output: false,
            startup_timeout: Duration::from_secs(60),
            program: None,
        }
    }
}

/// A running `moto_server` on `127.0.0.1`. Dropping it kills the process and reaps it.
#[derive(Debug)]
pub struct Emulator {
    child: Option<Child>,
    port: u16,
    program: PathBuf,
    drain: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Finds (or installs) `moto_server`, starts it on loopback and waits until it answers.
    pub fn start(options: Options) -> Result<Self, EmulatorError> {
        // A port someone else holds is refused before anything is installed or started: the
        // readiness probe would otherwise reach the other server.
        if let Some(port) = options.port {
            ensure_free(port)?;
        }
        let program = match &options.program {
            Some(program) => program.clone(),
            None => find_or_install()?,
        };
        // A free port is reserved by binding and released just before moto binds it; another
        // process may take it in between, so an early exit on a picked port is retried.
        let attempts = if options.port.is_some() { 1 } else { 3 };
        let mut last = None;
        for _ in 0..attempts {
            let port = match options.port {
                Some(port) => port,
                None => free_port()?,
            };
            match Self::start_on(&program, port, &options) {
                Ok(emulator) => return Ok(emulator),
                Err(error @ EmulatorError::ExitedEarly { .. }) => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or(EmulatorError::NoFreePort(std::io::ErrorKind::AddrInUse.into())))
    }

    fn start_on(program: &Path, port: u16, options: &Options) -> Result<Self, EmulatorError> {
        let (stdout, stderr) = if options.inherit_output {
            (Stdio::inherit(), Stdio::inherit())
        } else {
            (Stdio::null(), Stdio::piped())
        };
        let mut child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| EmulatorError::Spawn { program: program.to_path_buf(), source })?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let drain = child.stderr.take().map(|stderr| {
            let tail = Arc::clone(&tail);
            std::thread::spawn(move || keep_tail(stderr, &tail))
        });
        let mut emulator = Self { child: Some(child), port, program: program.to_path_buf(), drain };
        let deadline = Instant::now() + options.startup_timeout;
        // Set once the port answered while our child did not hold it: another server took the
        // port after the check (or holds it in a way the check cannot see).
        let mut foreign = false;
        loop {
            if let Some(child) = emulator.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                emulator.child = None;
                if let Some(drain) = emulator.drain.take() {
                    let _ = drain.join();
                }
                if foreign {
                    return Err(EmulatorError::PortInUse { port });
                }
                return Err(EmulatorError::ExitedEarly {
                    port,
                    status: status.to_string(),
                    output: tail_text(&tail),
                });
            }
            if answers(port) {
                let pid = emulator.child.as_ref().map(Child::id);
                match pid.and_then(|pid| holds_port(pid, port)) {
                    // Ours (or, without /proc, the best that can be known: our child is alive
                    // and was the only one to bind the port, free a moment before).
                    Some(true) | None => return Ok(emulator),
                    Some(false) => foreign = true,
                }
            }
            if Instant::now() >= deadline {
                if foreign {
                    return Err(EmulatorError::PortInUse { port });
                }
                return Err(EmulatorError::NotReady {
                    port,
                    seconds: options.startup_timeout.as_secs(),
                    output: tail_text(&tail),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port it listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`: the value for `AWS_ENDPOINT_URL`.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `moto_server` program that runs.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Whether it still answers HTTP requests.
    pub fn is_answering(&self) -> bool {
        answers(self.port)
    }

    /// Blocks until the emulator exits by itself (e.g. on Ctrl-C) and returns its exit status.
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        match self.child.take() {
            Some(mut child) => child.wait(),
            None => Err(std::io::Error::other("the emulator was already stopped")),
        }
    }

    /// The exit status if the emulator has exited by itself (it is reaped then), else `None`.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten());
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// Kills the emulator and reaps it (what dropping it does).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, EmulatorError> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(EmulatorError::NoFreePort)?;
    listener.local_addr().map(|a| a.port()).map_err(EmulatorError::NoFreePort)
}

/// Fails with [`EmulatorError::PortInUse`] when `127.0.0.1:port` cannot be bound because
/// something listens on it (on `127.0.0.1` or on every address).
fn ensure_free(port: u16) -> Result<(), EmulatorError> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(listener) => {
            drop(listener);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(EmulatorError::PortInUse { port })
        }
        Err(source) => Err(EmulatorError::PortUnavailable { port, source }),
    }
}

/// Whether process `pid` or one of its descendants holds the listening socket on
/// `127.0.0.1:port`: the socket's inode from `/proc/net/tcp`, among the links in
/// `/proc/<pid>/fd` of each. Descendants count because a `GLOBO_MOTO_SERVER` wrapper script
/// that runs moto without `exec` leaves the socket to its child. `None` when `/proc` cannot
/// tell (not Linux, or not readable).
fn holds_port(pid: u32, port: u16) -> Option<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = proc_net_address(Ipv4Addr::LOCALHOST, port);
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ... inode: state 0A is LISTEN.
            (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
                .then(|| fields.get(9).map(|inode| format!("socket:[{inode}]")))
                .flatten()
        })
        .collect();
    // The process itself must be readable; a descendant that vanished meanwhile is skipped.
    let own = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let holds = |fds: std::fs::ReadDir| {
        fds.filter_map(Result::ok).any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| inodes.iter().any(|inode| target.as_os_str() == inode.as_str()))
        })
    };
    Some(
        holds(own)
            || descendants(pid)
                .into_iter()
                .any(|child| std::fs::read_dir(format!("/proc/{child}/fd")).is_ok_and(&holds)),
    )
}

/// How `/proc/net/tcp` writes a local IPv4 address and port: the address as the 32-bit word
/// its network-order bytes make in this machine's byte order (`%08X`; `0100007F` for
/// 127.0.0.1 on little-endian machines, `7F000001` on big-endian ones), the port in hex.
fn proc_net_address(address: Ipv4Addr, port: u16) -> String {
    format!("{:08X}:{port:04X}", u32::from_ne_bytes(address.octets()))
}

/// Every process below `pid` (children, their children, ...), from the parent pid in each
/// `/proc/<pid>/stat`; empty when `/proc` cannot be read.
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|child| {
                    let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
                    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
                    let after_comm = &stat[stat.rfind(')')? + 1..];
                    let ppid = after_comm.split_whitespace().nth(1)?.parse().ok()?;
                    Some((child, ppid))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        for &(child, ppid) in &parents {
            if ppid == parent && child != pid && !found.contains(&child) {
                found.push(child);
                queue.push(child);
            }
        }
    }
    found
}

/// Whether `GET /moto-api/` on the port gets an HTTP answer (plain HTTP/1.0 over a TcpStream).
fn answers(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    head[..read].starts_with(b"HTTP/1.")
}

fn keep_tail(stderr: impl Read, tail: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == KEPT_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    let lines: Vec<String> = tail.lock().map(|t| t.iter().cloned().collect()).unwrap_or_default();
    if lines.is_empty() { "(nothing)".into() } else { lines.join(" | ") }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_listener_of_this_process_is_held_by_it() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(holds_port(std::process::id(), port), Some(true));
    }

    #[test]
    fn a_process_without_the_listener_does_not_hold_it() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut sleep = Command::new("sleep").arg("30").spawn().unwrap();
        let held = holds_port(sleep.id(), port);
        let _ = sleep.kill();
        let _ = sleep.wait();
        assert_eq!(held, Some(false));
    }

    /// As for a wrapper that runs moto without `exec`: the listener belongs to a descendant
    /// of the process asked about (here: this test process, below its parent).
    #[test]
    fn a_listener_of_a_descendant_is_held_by_the_ancestor() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let parent = std::os::unix::process::parent_id();
        assert_eq!(holds_port(parent, port), Some(true));
    }

    #[test]
    fn the_proc_net_address_of_loopback_follows_the_byte_order() {
        let expected =
            if cfg!(target_endian = "little") { "0100007F:1388" } else { "7F000001:1388" };
        assert_eq!(proc_net_address(Ipv4Addr::LOCALHOST, 5000), expected);
    }
}
