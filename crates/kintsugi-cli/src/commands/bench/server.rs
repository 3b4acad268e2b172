//! The server a benchmark measures: `kintsugi serve` as a child process on a free loopback
//! port, so its CPU time, memory and disk writes can be read apart from the load generator's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
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
    /// Where the server answers `GET /metrics`.
    metrics: String,
}

impl BenchServer {
    /// Starts `kintsugi serve` on `data` with `limits`, and waits until it listens.
    pub fn start(data: &Path, limits: &RateLimits) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the kintsugi binary to run")?;
        let mut child = Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--metrics-listen", "127.0.0.1:0"])
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
                if let Some(addresses) = listening_addresses(&line) {
                    let _ = address_tx.send(addresses);
                }
            }
        });
        match address_rx.recv_timeout(START_TIMEOUT) {
            Ok((address, metrics)) => Ok(Self {
                child,
                url: format!("http://{address}"),
                metrics,
            }),
            Err(_) => {
                let _ = child.kill();
                bail!("the benchmark's server did not start listening within 30 s")
            }
        }
    }

    /// The server's CPU time, memory, disk writes and bytes on the wire so far.
    pub fn stats(&self) -> anyhow::Result<ProcessStats> {
        let mut stats = ProcessStats::of(self.child.id())?;
        stats.wire_bytes = self.wire_bytes()?;
        Ok(stats)
    }

    /// The bytes read and written on the server's gRPC connections, from its metrics. A plain
    /// HTTP/1.0 GET on loopback: a client crate would add more than these lines.
    fn wire_bytes(&self) -> anyhow::Result<u64> {
        let unreadable = || format!("cannot read the server's metrics at {}", self.metrics);
        let mut stream = TcpStream::connect(&self.metrics).with_context(unreadable)?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .with_context(unreadable)?;
        let mut text = String::new();
        stream.read_to_string(&mut text).with_context(unreadable)?;
        let counter = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
        };
        match (
            counter("kintsugi_wire_received_bytes_total "),
            counter("kintsugi_wire_sent_bytes_total "),
        ) {
            (Some(received), Some(sent)) => Ok((received + sent) as u64),
            _ => bail!("the server's metrics have no wire byte counters"),
        }
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gRPC and metrics addresses in the server's JSON "listening" log line.
fn listening_addresses(line: &str) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields")?;
    let message = fields.get("message")?.as_str()?;
    if !message.contains("listening") {
        return None;
    }
    let address = |name: &str| Some(fields.get(name)?.as_str()?.to_string());
    Some((address("address")?, address("metrics")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        let line = r#"{"timestamp":"t","level":"INFO","fields":{"message":"kintsugi server listening","address":"127.0.0.1:4321","scheme":"http","metrics":"127.0.0.1:4322"},"target":"kintsugi_server"}"#;
        let expected = ("127.0.0.1:4321".to_string(), "127.0.0.1:4322".to_string());
        assert_eq!(listening_addresses(line), Some(expected));
        assert_eq!(listening_addresses("not json"), None);
    }
}
