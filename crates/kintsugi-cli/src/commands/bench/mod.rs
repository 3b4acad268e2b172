//! `kintsugi bench`: a load generator. It starts a server (a child process, so its CPU, memory
//! and disk writes are measured apart), drives one scenario against it and reports the figures
//! as a table, or as one JSON object with `--json`.
//!
//! Scenarios: `couples` (pairs of phones, each syncing live and editing the agreement at a
//! rate; latency is from an edit until the partner's phone applied it), `raw` (devices pushing
//! small envelopes as fast as the server acknowledges them durably) and `idle` (connected
//! devices doing nothing, for the memory each costs). Every run ends by connecting idle devices
//! to measure the server's memory per idle device.

mod couples;
mod idle;
mod proc_stats;
mod raw;
mod report;
mod server;

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::cli::{BenchArgs, BenchScenario};
use crate::output::Output;
use proc_stats::ProcessStats;
use report::{Latency, Report};
use server::BenchServer;

/// The server's rate limits during a benchmark; the report names them.
#[derive(Clone, Debug, Serialize)]
pub struct RateLimits {
    pub device_calls_per_second: f64,
    pub device_call_burst: u32,
    pub pairing_calls_per_minute: f64,
    pub pairing_call_burst: u32,
}

impl RateLimits {
    fn serve_flags(&self) -> Vec<String> {
        vec![
            "--device-calls-per-second".into(),
            self.device_calls_per_second.to_string(),
            "--device-call-burst".into(),
            self.device_call_burst.to_string(),
            "--pairing-calls-per-minute".into(),
            self.pairing_calls_per_minute.to_string(),
            "--pairing-call-burst".into(),
            self.pairing_call_burst.to_string(),
        ]
    }
}

/// What a scenario measured while it ran.
#[derive(Debug, Default)]
pub struct Phase {
    /// Edits made (couples) or envelopes pushed (raw).
    pub changes: u64,
    /// Pushes the server acknowledged durably.
    pub pushes: u64,
    pub elapsed: Duration,
    /// Partner-visible latency (couples) or acknowledgement latency (raw), in ms.
    pub latencies_ms: Vec<f64>,
    /// Edits the partner had not seen when the run gave up waiting.
    pub unseen: u64,
    /// The server's and this process's readings when the phase began and ended.
    pub readings: Option<(Readings, Readings)>,
}

/// The server's and the load generator's process readings at one moment.
pub type Readings = (ProcessStats, ProcessStats);

/// Reads the server and this process.
pub fn read_now(server: &BenchServer) -> anyhow::Result<Readings> {
    Ok((server.stats()?, ProcessStats::of_self()?))
}

pub async fn run(args: BenchArgs, out: Output) -> anyhow::Result<()> {
    let limits = RateLimits {
        device_calls_per_second: args.device_calls_per_second,
        device_call_burst: args.device_call_burst,
        pairing_calls_per_minute: args.pairing_calls_per_minute,
        pairing_call_burst: args.pairing_call_burst,
    };
    let root = tempfile::Builder::new()
        .prefix("kintsugi-bench-")
        .tempdir()
        .context("cannot make the benchmark's folder (set TMPDIR to a writable one)")?;
    let server = BenchServer::start(&root.path().join("server"), &limits)?;
    let duration = Duration::from_secs_f64(args.duration.max(0.1));
    let devices = args.devices.unwrap_or(match args.scenario {
        BenchScenario::Couples => 10,
        BenchScenario::Raw => 100,
        BenchScenario::Idle => 500,
    });
    out.note(format!(
        "bench: {:?} with {devices} devices on {}",
        args.scenario, server.url
    ));
    let mut phase = match args.scenario {
        BenchScenario::Couples => {
            let plan = couples::Plan {
                pairs: devices.div_ceil(2).max(1),
                edits: args.edits,
                duration,
                rate: args.rate,
            };
            couples::run(&server, root.path(), &plan, out).await?
        }
        BenchScenario::Raw => raw::run(&server, devices, duration).await?,
        BenchScenario::Idle => Phase::default(),
    };
    let readings = match phase.readings.take() {
        Some(readings) => readings,
        None => (read_now(&server)?, read_now(&server)?),
    };
    let idle_devices = match args.scenario {
        BenchScenario::Idle => devices,
        _ => args.idle_devices,
    };
    let idle = idle::measure(&server, idle_devices).await?;
    let report = Report::new(&args, devices, &limits, &phase, readings, idle);
    out.print(&report, || report.table())
}

/// Per-change figure of a total, 0 when nothing changed.
fn per_change(total: f64, changes: u64) -> f64 {
    if changes == 0 {
        0.0
    } else {
        total / changes as f64
    }
}

impl Latency {
    /// p50, p99 and the maximum of `samples` (ms); zeros when there are none.
    fn of(samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| match sorted.len() {
            0 => 0.0,
            n => sorted[((n as f64 * q).ceil() as usize).clamp(1, n) - 1],
        };
        Latency {
            p50: at(0.50),
            p99: at(0.99),
            max: sorted.last().copied().unwrap_or(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_of_the_sorted_samples() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let latency = Latency::of(&samples);
        assert_eq!((latency.p50, latency.p99, latency.max), (50.0, 99.0, 100.0));
        let none = Latency::of(&[]);
        assert_eq!((none.p50, none.p99, none.max), (0.0, 0.0, 0.0));
        assert_eq!(per_change(10.0, 0), 0.0);
    }
}
