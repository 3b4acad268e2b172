//! What Linux's /proc says of a process: CPU time, resident memory (now and at its peak) and
//! bytes it had written to storage.

use anyhow::{Context, bail};

/// Clock ticks per second of /proc/PID/stat's CPU times (USER_HZ, 100 on every Linux port).
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessStats {
    pub cpu_ms: f64,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    pub disk_write_bytes: u64,
    /// Bytes on the server's gRPC connections, from its metrics (0 for other processes).
    pub wire_bytes: u64,
}

impl ProcessStats {
    /// Reads process `pid`.
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        Self::read(&format!("/proc/{pid}"))
    }

    /// Reads this process.
    pub fn of_self() -> anyhow::Result<Self> {
        Self::read("/proc/self")
    }

    fn read(dir: &str) -> anyhow::Result<Self> {
        let unreadable =
            || format!("cannot read {dir}: the benchmark measures through Linux's /proc");
        let stat = std::fs::read_to_string(format!("{dir}/stat")).with_context(unreadable)?;
        let status = std::fs::read_to_string(format!("{dir}/status")).with_context(unreadable)?;
        // `io` needs the same user; a missing one only leaves disk writes unmeasured.
        let io = std::fs::read_to_string(format!("{dir}/io")).unwrap_or_default();
        Ok(Self {
            cpu_ms: cpu_ms(&stat)?,
            rss_kib: field(&status, "VmRSS:").unwrap_or(0),
            peak_rss_kib: field(&status, "VmHWM:").unwrap_or(0),
            disk_write_bytes: field(&io, "write_bytes:").unwrap_or(0),
            wire_bytes: 0,
        })
    }
}

/// User plus system CPU time from /proc/PID/stat (fields 14 and 15, after the command name).
fn cpu_ms(stat: &str) -> anyhow::Result<f64> {
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        bail!("unexpected /proc stat line");
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((user + system) * 1000.0 / TICKS_PER_SECOND),
        _ => bail!("unexpected /proc stat line"),
    }
}

/// The number after `name` in a /proc key-value file.
fn field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_and_fields_are_read() {
        let stat = "42 (kin tsugi) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1 1 1";
        assert_eq!(cpu_ms(stat).expect("parses"), 3000.0);
        assert_eq!(field("VmRSS:\t  1234 kB\n", "VmRSS:"), Some(1234));
        let me = ProcessStats::of_self().expect("reads /proc/self");
        assert!(me.rss_kib > 0 && me.peak_rss_kib >= me.rss_kib);
    }
}
