//! The real `rayo` binary as a child process: on a port the test reserved from the OS and
//! hands over as the server's listening socket (`LISTEN_FDS`), with its settings in the
//! environment and a working directory of its own.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;

use serde_json::Value;

use super::ports::ReservedPort;

/// The binary under test: `RAYO_TEST_BINARY` (CI points it at the release build, the artifact
/// that ships), else the debug build `cargo test` made.
pub fn rayo_binary() -> PathBuf {
    std::env::var_os("RAYO_TEST_BINARY")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_rayo").into())
}

/// Ports reserved for servers that are not running right now: bound, so nothing else takes
/// them between a stop and a restart, and refusing connections, as a stopped server does.
static RESERVED: Mutex<Option<HashMap<u16, ReservedPort>>> = Mutex::new(None);

/// A port for a rayo server, from the OS.
pub fn reserve_port() -> u16 {
    let reserved = ReservedPort::new();
    let port = reserved.port();
    RESERVED
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(port, reserved);
    port
}

/// The socket of `port`, for a server about to start on it.
fn take_socket(port: u16) -> OwnedFd {
    let held = RESERVED
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .remove(&port);
    held.unwrap_or_else(|| ReservedPort::again(port))
        .into_socket()
}

/// Lets go of `port`, for a process that binds it itself (nginx).
pub fn release_for_reuse(port: u16) {
    if let Some(reserved) = RESERVED.lock().unwrap().as_mut() {
        reserved.remove(&port);
    }
}

/// Holds `port` again once its server is gone.
fn release(port: u16) {
    RESERVED
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(port, ReservedPort::again(port));
}

/// Where a rayo server on `port` answers.
pub fn base_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// An HTTP client with a fresh connection for each request: steps between requests (the CLI,
/// restarts) can outlast a server's keep-alive window.
pub fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// A `rayo` command with its settings in the environment and a working directory of its own,
/// so no `.env` from elsewhere leaks in.
pub fn rayo(dir: &Path, port: u16) -> Command {
    let mut command = Command::new(rayo_binary());
    command
        .current_dir(dir)
        .env_remove("RAYO_ADMIN_TOKEN")
        .env_remove("RAYO_ADMIN_URL")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env("RAYO_DATA_DIR", dir.join("data"))
        .env("RAYO_BIND", format!("127.0.0.1:{port}"))
        .env("RAYO_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        // Webhook receivers here listen on loopback.
        .env("RAYO_WEBHOOK_ALLOW_PRIVATE", "all")
        .env("RAYO_LOG", "warn");
    command
}

/// Starts `command` (a `rayo serve`) on `port`'s socket, as fd 3.
fn spawn_on(mut command: Command, port: u16) -> Child {
    let socket = take_socket(port);
    let fd = socket.as_raw_fd();
    command.env("LISTEN_FDS", "1");
    // SAFETY: between fork and exec, only async-signal-safe dup2 on descriptors we own.
    unsafe {
        command.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec: a socket that already is fd 3 (in a test
            // without a runtime holding the low descriptors) must have the flag cleared.
            let ok = if fd == 3 {
                libc::fcntl(fd, libc::F_SETFD, 0) >= 0
            } else {
                libc::dup2(fd, 3) >= 0
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    drop(socket);
    child
}

pub fn run(dir: &Path, port: u16, args: &[&str]) -> Output {
    let output = rayo(dir, port).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "rayo {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn run_json(dir: &Path, port: u16, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_slice(&run(dir, port, &all).stdout).unwrap()
}

/// A command expected to fail: what it said on stderr.
pub fn run_failing(dir: &Path, port: u16, args: &[&str]) -> String {
    let output = rayo(dir, port).args(args).output().unwrap();
    assert!(!output.status.success(), "rayo {args:?} should fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn wait_until_healthy(port: u16) {
    let healthy = super::wait_until(20, || {
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        use std::io::{Read, Write};
        let _ = stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
    });
    assert!(healthy, "rayo did not become healthy on port {port}");
}

fn signal(child: &Child, signal: &str) {
    assert!(Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

/// `rayo serve`, its output thrown away.
pub struct Server {
    pub child: Child,
    port: u16,
}

impl Server {
    pub fn start(dir: &Path, port: u16) -> Self {
        Self::start_with(rayo(dir, port), port)
    }

    /// `command` (from `rayo`, with settings of the test's own) serving on `port`.
    pub fn start_with(mut command: Command, port: u16) -> Self {
        command
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let server = Self {
            child: spawn_on(command, port),
            port,
        };
        wait_until_healthy(port);
        server
    }

    /// SIGTERM, as systemd or Fly would send, then wait for a clean exit.
    pub fn stop(mut self) {
        signal(&self.child, "-TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "rayo exited with {status}");
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub fn kill_hard(self) {
        signal(&self.child, "-KILL");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        release(self.port);
    }
}

/// `rayo serve`, started and healthy, whose logs are drained while it runs (a full pipe would
/// stall its logging) and handed back when it stops.
pub struct LoggedServer {
    child: Child,
    port: u16,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl LoggedServer {
    pub fn start(mut command: Command, port: u16) -> Self {
        command
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_on(command, port);
        let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut all = String::new();
                let _ = pipe.read_to_string(&mut all);
                all
            })
        };
        let stdout = Some(drain(Box::new(child.stdout.take().unwrap())));
        let stderr = Some(drain(Box::new(child.stderr.take().unwrap())));
        let server = Self {
            child,
            port,
            stdout,
            stderr,
        };
        wait_until_healthy(port);
        server
    }

    /// SIGTERM, wait, and everything it logged.
    pub async fn stop(mut self) -> String {
        signal(&self.child, "-TERM");
        tokio::task::spawn_blocking(move || {
            let _ = self.child.wait();
            let out = self.stdout.take().unwrap().join().unwrap();
            let err = self.stderr.take().unwrap().join().unwrap();
            out + &err
        })
        .await
        .unwrap()
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        release(self.port);
    }
}
