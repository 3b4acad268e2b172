//! `kintsugi sync [--watch]`: push this device's changes and pull everyone else's.
//!
//! Besides the counts, a sync tells the user what needs their attention: envelopes set aside
//! (with the device that sent them), documents that could not be synced (the others were), and
//! devices added to or revoked from the space since the last sync.

use kintsugi_core::{Device, SyncReport, WatchEvent};

use super::watch_socket;
use crate::output::Output;

pub async fn run(device: &Device, watch: bool, out: Output) -> anyhow::Result<()> {
    if !watch {
        let report = device.sync().await?;
        tell(&report, out);
        out.print(&report, || {
            format!(
                "pushed {} change(s), received {} change(s)",
                report.pushed, report.pulled
            )
        })?;
        return match report.failed.first() {
            None => Ok(()),
            Some(failure) => anyhow::bail!("{failure}"),
        };
    }
    out.note("syncing live; other commands on this home still work; press Ctrl-C to stop");
    let mut total = SyncReport::default();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let watching = device.watch(shutdown, |event| {
        match &event {
            WatchEvent::Synced(report) => {
                tell(report, out);
                total += report.clone();
            }
            WatchEvent::Pushed(n) => total.pushed += n,
            WatchEvent::Received { changes, .. } => total.pulled += changes.len(),
            WatchEvent::SetAside(aside) => total.set_aside.push(aside.clone()),
            WatchEvent::DocFailed(failure) => total.failed.push(failure.clone()),
            WatchEvent::Disconnected { .. } | WatchEvent::Subscribed => {}
        }
        announce(device, &event, out);
    });
    tokio::select! {
        watched = watching => watched?,
        () = watch_socket::serve(device.dir(), device, out) => {}
    }
    out.print(&total, || {
        format!(
            "stopped: pushed {}, received {}",
            total.pushed, total.pulled
        )
    })
}

/// Tells the user what happened live: a line for people, or with `--json` one JSON object per
/// event, as it happens.
fn announce(device: &Device, event: &WatchEvent, out: Output) {
    let what = match event {
        WatchEvent::Received { doc, changes, .. } => device
            .describe_changes(*doc, changes)
            .unwrap_or_default()
            .into_iter()
            .map(|c| format!("{} {}", c.who, c.what))
            .collect(),
        _ => Vec::new(),
    };
    if out.json {
        out.json_line(&event_json(event, &what));
        return;
    }
    out.note(describe(event));
    for line in what {
        out.note(format!("  {line}"));
    }
}

/// One live event as a JSON object: `{"event": ..., ...}`.
fn event_json(event: &WatchEvent, what: &[String]) -> serde_json::Value {
    use serde_json::json;
    match event {
        WatchEvent::Synced(r) => {
            json!({"event": "synced", "pushed": r.pushed, "received": r.pulled})
        }
        WatchEvent::Pushed(n) => json!({"event": "pushed", "changes": n}),
        WatchEvent::Subscribed => json!({"event": "live"}),
        WatchEvent::Received {
            doc,
            changes,
            cursor,
        } => json!({
            "event": "received", "doc": doc.name(), "changes": changes.len(),
            "cursor": cursor, "what": what,
        }),
        WatchEvent::SetAside(aside) => json!({"event": "set_aside", "message": aside.to_string()}),
        WatchEvent::DocFailed(f) => json!({"event": "doc_failed", "message": f.to_string()}),
        WatchEvent::Disconnected { reason, retry_in } => json!({
            "event": "disconnected", "reason": reason, "retry_in_ms": retry_in.as_millis() as u64,
        }),
    }
}

/// Prints, one line each, what in a report needs the user's attention.
fn tell(report: &SyncReport, out: Output) {
    for change in &report.roster {
        out.note(format!("note: {change}"));
    }
    for aside in &report.set_aside {
        out.note(format!("warning: {aside}"));
    }
    if report.rejected_snapshots > 0 {
        out.note(format!(
            "warning: rejected {} snapshot(s) that did not match the log; nothing was lost",
            report.rejected_snapshots
        ));
    }
    for failure in &report.failed {
        out.note(format!("warning: {failure}"));
    }
}

fn describe(event: &WatchEvent) -> String {
    match event {
        WatchEvent::Synced(r) => format!("connected: pushed {}, received {}", r.pushed, r.pulled),
        WatchEvent::Pushed(n) => format!("pushed {n} change(s)"),
        WatchEvent::Subscribed => "live: changes now arrive as they are made".to_string(),
        WatchEvent::Received { doc, changes, .. } => {
            format!("received {} change(s) to the {}", changes.len(), doc.name())
        }
        WatchEvent::SetAside(aside) => format!("warning: {aside}"),
        WatchEvent::DocFailed(failure) => format!("warning: {failure}"),
        WatchEvent::Disconnected { reason, retry_in } => {
            format!("{reason}; retrying in {:.1} s", retry_in.as_secs_f32())
        }
    }
}
