//! Helpers shared by the CLI tests: a real `kintsugi serve` on a free loopback port (which a
//! test may kill with SIGKILL and start again), and the `kintsugi` binary run against a home
//! folder with `--json`. Ports and waiting come from `kintsugi_server::testing`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use kintsugi_server::testing::{free_port, wait_until_listening};

/// How long a server has to start accepting connections.
pub const STARTUP: Duration = Duration::from_secs(10);

/// A `kintsugi serve` process, killed when dropped.
pub struct Server {
    child: Child,
    port: u16,
    data: PathBuf,
    pub url: String,
}

impl Server {
    /// Starts `kintsugi serve` over `data` on 127.0.0.1:`port` (under the everyday umask),
    /// without waiting until it accepts connections.
    pub fn spawn(port: u16, data: &Path) -> Server {
        Server {
            child: spawn_serve(port, data),
            port,
            data: data.to_path_buf(),
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's process id, to read its memory from /proc.
    #[allow(dead_code)] // Only some of the test binaries sharing this module use it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server with SIGKILL (no chance to flush or say goodbye) and reaps it.
    #[allow(dead_code)] // Only some of the test binaries sharing this module use it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Starts the server again on the same port and folder, after `kill`, without waiting.
    #[allow(dead_code)] // Only some of the test binaries sharing this module use it.
    pub fn start_again(&mut self) {
        self.child = spawn_serve(self.port, &self.data);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_serve(port: u16, data: &Path) -> Child {
    everyday_umask()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn server")
}

/// `kintsugi` started by a shell with the everyday umask 022, so modes are the program's own.
pub fn everyday_umask() -> Command {
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 022 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_kintsugi"));
    command
}

/// Starts `kintsugi serve` over `data` (under the everyday umask) and waits until it accepts
/// connections.
pub fn serve(data: &Path) -> Server {
    let server = Server::spawn(free_port(), data);
    assert!(
        wait_until_listening(server.address(), STARTUP),
        "server did not start"
    );
    server
}

/// Runs `kintsugi --home HOME --json ARGS...`.
pub fn ks(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kintsugi"))
        .arg("--home")
        .arg(home)
        .arg("--json")
        .args(args)
        .output()
        .expect("run kintsugi")
}

/// The run failed with one error that mentions `hint`: with `--json` the one object
/// `{"error": {"code", "message"}}` on stdout, otherwise exactly one line on stderr.
pub fn assert_one_line_error(out: &Output, hint: &str) {
    let message = error_message(out);
    assert!(
        message.contains(hint),
        "{message:?} should mention {hint:?}"
    );
}

/// The message of the error a failed run reported, checked for its shape.
pub fn error_message(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        let code = value["error"]["code"]
            .as_str()
            .expect("a string .error.code");
        assert!(
            !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{code:?} is a snake_case code"
        );
        let message = value["error"]["message"].as_str().expect(".error.message");
        assert_eq!(message.lines().count(), 1, "one line: {message}");
        return message.to_string();
    }
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr.trim_end().to_string()
}

/// The one JSON value a successful run printed.
pub fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON value on stdout")
}
