//! The server's memory per idle connected device: devices that opened their live stream and
//! wait, as phones in a pocket do.

use std::time::Duration;

use super::raw::RawDevice;
use super::server::BenchServer;

/// How long the connected devices sit before the server's memory is read.
const SETTLE: Duration = Duration::from_secs(1);

/// What idle devices cost the server.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdleMemory {
    pub devices: usize,
    pub kib_per_device: f64,
    pub peak_rss_kib: u64,
}

/// Connects `count` devices with a live stream each and reads the server's memory growth.
pub async fn measure(server: &BenchServer, count: usize) -> anyhow::Result<IdleMemory> {
    if count == 0 {
        return Ok(IdleMemory::default());
    }
    let mut devices = RawDevice::create_many(&server.url, count).await?;
    tokio::time::sleep(SETTLE).await;
    let before = server.stats()?;
    let mut streams = Vec::with_capacity(count);
    for device in &mut devices {
        streams.push(device.subscribe().await?);
    }
    tokio::time::sleep(SETTLE).await;
    let after = server.stats()?;
    let growth = after.rss_kib.saturating_sub(before.rss_kib) as f64;
    drop(streams);
    Ok(IdleMemory {
        devices: count,
        kib_per_device: growth / count as f64,
        peak_rss_kib: after.peak_rss_kib,
    })
}
