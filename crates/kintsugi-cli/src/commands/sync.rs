//! `kintsugi sync [--watch]`: push this device's changes and pull everyone else's.

use kintsugi_core::{Device, SyncReport, WatchEvent};

use crate::output::Output;

pub async fn run(device: &Device, watch: bool, out: Output) -> anyhow::Result<()> {
    if !watch {
        let report = device.sync().await?;
        return out.print(&report, || {
            format!(
                "pushed {} change(s), received {} change(s)",
                report.pushed, report.pulled
            )
        });
    }
    out.note("syncing live; press Ctrl-C to stop");
    let mut total = SyncReport::default();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    device
        .watch(shutdown, |event| {
            match &event {
                WatchEvent::Synced(report) => total += *report,
                WatchEvent::Pushed(n) => total.pushed += n,
                WatchEvent::Received { changes, .. } => total.pulled += changes,
                WatchEvent::Disconnected { .. } => {}
            }
            out.note(describe(&event));
        })
        .await?;
    out.print(&total, || {
        format!(
            "stopped: pushed {}, received {}",
            total.pushed, total.pulled
        )
    })
}

fn describe(event: &WatchEvent) -> String {
    match event {
        WatchEvent::Synced(r) => format!("connected: pushed {}, received {}", r.pushed, r.pulled),
        WatchEvent::Pushed(n) => format!("pushed {n} change(s)"),
        WatchEvent::Received { doc, changes } => {
            format!("received {changes} change(s) to the {}", doc.name())
        }
        WatchEvent::Disconnected { reason, retry_in } => {
            format!("{reason}; retrying in {:.1} s", retry_in.as_secs_f32())
        }
    }
}
