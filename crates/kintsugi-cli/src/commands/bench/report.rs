//! The figures a benchmark reports, as JSON (the shape in DESIGN.md) and as a table.

use serde::Serialize;

use super::idle::IdleMemory;
use super::proc_stats::ProcessStats;
use super::{Phase, RateLimits, per_change};
use crate::cli::{BenchArgs, BenchScenario};

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// One benchmark run's figures.
#[derive(Debug, Serialize)]
pub struct Report {
    pub system: &'static str,
    pub scenario: &'static str,
    pub devices: usize,
    /// Edits (couples) or pushed envelopes (raw) made.
    pub changes: u64,
    pub seconds: f64,
    /// Changes made per second; for couples, until the partner had seen the last one.
    pub edits_per_sec: f64,
    /// Pushes the server acknowledged, each after an fdatasync, per second.
    pub pushes_per_sec: f64,
    /// Couples: from an edit until the partner's phone applied it. Raw: push to acknowledgement.
    pub latency_ms: Latency,
    /// Edits the partner had not seen when the run stopped waiting (0 is the only good value).
    pub unseen_changes: u64,
    pub durable_acks: bool,
    pub server_cpu_ms_per_change: f64,
    /// The load generator's CPU: every device's (writing and receiving) together.
    pub client_cpu_ms_per_change: f64,
    pub server_disk_bytes_per_change: f64,
    /// Bytes the server read and wrote on its gRPC connections (TLS and HTTP/2 framing
    /// included), every device's together.
    pub wire_bytes_per_change: f64,
    pub server_peak_rss_kib: u64,
    pub idle_devices: usize,
    pub server_rss_kib_per_idle_device: f64,
    pub rate_limits: RateLimits,
}

impl Report {
    pub fn new(
        args: &BenchArgs,
        devices: usize,
        limits: &RateLimits,
        phase: &Phase,
        (before, after): ((ProcessStats, ProcessStats), (ProcessStats, ProcessStats)),
        idle: IdleMemory,
    ) -> Self {
        let (server_before, client_before) = before;
        let (server_after, client_after) = after;
        let seconds = phase.elapsed.as_secs_f64();
        let rate = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        let changes = phase.changes;
        let disk = server_after
            .disk_write_bytes
            .saturating_sub(server_before.disk_write_bytes);
        let wire = server_after
            .wire_bytes
            .saturating_sub(server_before.wire_bytes);
        Report {
            system: "kintsugi",
            scenario: match args.scenario {
                BenchScenario::Couples => "couples",
                BenchScenario::Raw => "raw",
                BenchScenario::Idle => "idle",
            },
            devices,
            changes,
            seconds,
            edits_per_sec: rate(changes),
            pushes_per_sec: rate(phase.pushes),
            latency_ms: Latency::of(&phase.latencies_ms),
            unseen_changes: phase.unseen,
            durable_acks: true,
            server_cpu_ms_per_change: per_change(
                server_after.cpu_ms - server_before.cpu_ms,
                changes,
            ),
            client_cpu_ms_per_change: per_change(
                client_after.cpu_ms - client_before.cpu_ms,
                changes,
            ),
            server_disk_bytes_per_change: per_change(disk as f64, changes),
            wire_bytes_per_change: per_change(wire as f64, changes),
            server_peak_rss_kib: idle.peak_rss_kib.max(server_after.peak_rss_kib),
            idle_devices: idle.devices,
            server_rss_kib_per_idle_device: idle.kib_per_device,
            rate_limits: limits.clone(),
        }
    }

    /// The report for people.
    pub fn table(&self) -> String {
        let l = &self.latency_ms;
        let r = &self.rate_limits;
        let rows = [
            (
                "scenario",
                format!("{} ({} devices)", self.scenario, self.devices),
            ),
            (
                "changes",
                format!("{} in {:.2} s", self.changes, self.seconds),
            ),
            ("edits per second", format!("{:.0}", self.edits_per_sec)),
            (
                "durable pushes per second",
                format!("{:.0}", self.pushes_per_sec),
            ),
            (
                "latency p50 / p99 / max",
                format!("{:.2} / {:.2} / {:.2} ms", l.p50, l.p99, l.max),
            ),
            ("changes never seen", self.unseen_changes.to_string()),
            (
                "server CPU per change",
                format!("{:.3} ms", self.server_cpu_ms_per_change),
            ),
            (
                "client CPU per change",
                format!("{:.3} ms", self.client_cpu_ms_per_change),
            ),
            (
                "server disk writes per change",
                format!("{:.0} B", self.server_disk_bytes_per_change),
            ),
            (
                "bytes on the wire per change",
                format!("{:.0} B", self.wire_bytes_per_change),
            ),
            (
                "server peak RSS",
                format!("{} KiB", self.server_peak_rss_kib),
            ),
            (
                "server RSS per idle device",
                format!(
                    "{:.1} KiB ({} devices)",
                    self.server_rss_kib_per_idle_device, self.idle_devices
                ),
            ),
            (
                "rate limits",
                format!(
                    "device {}/s burst {}, pairing {}/min burst {}",
                    r.device_calls_per_second,
                    r.device_call_burst,
                    r.pairing_calls_per_minute,
                    r.pairing_call_burst
                ),
            ),
        ];
        rows.iter()
            .map(|(name, value)| format!("{name:<31} {value}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
