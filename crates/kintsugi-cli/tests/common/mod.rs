//! Helpers shared by the CLI tests: a real `kintsugi serve` on a free loopback port, and the
//! `kintsugi` binary run against a home folder with `--json`.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// A running `kintsugi serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    /// The server's process id, to read its memory from /proc.
    #[allow(dead_code)] // Only some of the test binaries sharing this module use it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
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
    let port = free_port();
    let mut child = everyday_umask()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn server");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Server {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start");
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

/// The run failed with exactly one line on stderr that contains `hint`.
pub fn assert_one_line_error(out: &Output, hint: &str) {
    assert!(!out.status.success(), "expected failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(hint), "{stderr:?} should mention {hint:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
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
