//! The server a benchmark measures: `kintsugi serve` as a child process on a free loopback
//! port, so its CPU time, memory and disk writes can be read apart from the load generator's.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};

use super::RateLimits;
use super::proc_stats::ProcessStats;

/// How long the server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server child, killed when dropped.
#[derive(Debug)]
pub struct BenchServer {
    child: Child,
    pub url: String,
}

impl BenchServer {
    /// Starts `kintsugi serve` on `data` with `limits`, and waits until it listens.
    pub fn start(data: &Path, limits: &RateLimits) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the kintsugi binary to run")?;
        let mut child = Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--data")
            .arg(data)
            .args(limits.serve_flags())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the benchmark's server")?;
        let stderr = child
            .stderr
            .take()
            .context("the server's log is not readable")?;
        let (address_tx, address_rx) = mpsc::channel();
        // Reads the log to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = listening_address(&line) {
                    let _ = address_tx.send(address);
                }
            }
        });
        match address_rx.recv_timeout(START_TIMEOUT) {
            Ok(address) => Ok(Self {
                child,
                url: format!("http://{address}"),
            }),
            Err(_) => {
                let _ = child.kill();
                bail!("the benchmark's server did not start listening within 30 s")
            }
        }
    }

    /// The server's CPU time, memory and disk writes so far.
    pub fn stats(&self) -> anyhow::Result<ProcessStats> {
        ProcessStats::of(self.child.id())
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the server's JSON "listening" log line.
fn listening_address(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields")?;
    let message = fields.get("message")?.as_str()?;
    if !message.contains("listening") {
        return None;
    }
    Some(fields.get("address")?.as_str()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        let line = r#"{"timestamp":"t","level":"INFO","fields":{"message":"kintsugi server listening","address":"127.0.0.1:4321","scheme":"http"},"target":"kintsugi_server"}"#;
        assert_eq!(listening_address(line).as_deref(), Some("127.0.0.1:4321"));
        assert_eq!(listening_address("not json"), None);
    }
}
