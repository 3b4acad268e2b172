//! Couples: pairs of phones (each pair a space of its own), every phone syncing live and
//! editing its own boundary of the shared agreement at a rate. An edit's latency runs from just
//! before the edit on one phone until the partner's phone applied it, which the partner's
//! live-sync event names by the change's hash.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kintsugi_core::{CodeKind, Device, DocKind, Enrolment, WatchEvent, system_clock};
use tokio::task::JoinSet;

use super::server::BenchServer;
use super::{Phase, read_now};
use crate::output::Output;

/// How long, after the last edit, the partners may take to see every edit.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long every phone may take to open its live stream.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub pairs: usize,
    /// Edits per phone; without it, phones edit until `duration` is over.
    pub edits: Option<u64>,
    pub duration: Duration,
    /// Edits per second per phone; 0 edits as fast as the phone can.
    pub rate: f64,
}

/// One phone in the benchmark: its device and the boundary it edits.
struct Phone {
    device: Arc<Device>,
    boundary: String,
}

/// Edits made and edits seen, to time each from the edit to its arrival at the partner.
#[derive(Default)]
struct Tracker {
    sent: HashMap<String, Instant>,
    /// Arrivals whose edit was not recorded yet (the partner can be that quick).
    early: HashMap<String, Instant>,
    latencies_ms: Vec<f64>,
    last_arrival: Option<Instant>,
}

impl Tracker {
    fn sent(&mut self, hash: String, at: Instant) {
        match self.early.remove(&hash) {
            Some(arrived) => self.seen(arrived - at, arrived),
            None => {
                self.sent.insert(hash, at);
            }
        }
    }

    fn arrived(&mut self, hash: String, at: Instant) {
        match self.sent.remove(&hash) {
            Some(sent) => self.seen(at - sent, at),
            None => {
                self.early.insert(hash, at);
            }
        }
    }

    fn seen(&mut self, latency: Duration, at: Instant) {
        self.latencies_ms.push(latency.as_secs_f64() * 1000.0);
        self.last_arrival = Some(self.last_arrival.map_or(at, |last| last.max(at)));
    }
}

/// What the live syncs tell, shared by every phone's callback.
#[derive(Default)]
struct Live {
    tracker: Mutex<Tracker>,
    subscribed: AtomicUsize,
    pushes: AtomicU64,
    problems: AtomicU64,
}

impl Live {
    fn on_event(&self, event: WatchEvent) {
        match event {
            WatchEvent::Subscribed => {
                self.subscribed.fetch_add(1, Ordering::SeqCst);
            }
            WatchEvent::Pushed(n) => {
                self.pushes.fetch_add(n as u64, Ordering::SeqCst);
            }
            WatchEvent::Received { changes, .. } => {
                let now = Instant::now();
                let mut tracker = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
                changes
                    .iter()
                    .for_each(|hash| tracker.arrived(hash.to_string(), now));
            }
            WatchEvent::SetAside(_) | WatchEvent::DocFailed(_) => {
                self.problems.fetch_add(1, Ordering::SeqCst);
            }
            WatchEvent::Synced(_) | WatchEvent::Disconnected { .. } => {}
        }
    }

    fn seen(&self) -> usize {
        let tracker = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
        tracker.latencies_ms.len()
    }
}

/// Runs the plan against the server at `url`, with the phones' folders under `root`.
pub async fn run(
    server: &BenchServer,
    root: &Path,
    plan: &Plan,
    out: Output,
) -> anyhow::Result<Phase> {
    let url = server.url.as_str();
    let mut phones = Vec::with_capacity(plan.pairs * 2);
    for pair in 0..plan.pairs {
        phones.extend(couple(url, root, pair).await?);
    }
    out.note(format!(
        "bench: {} phones paired; syncing live",
        phones.len()
    ));
    let live = Arc::new(Live::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut watches = JoinSet::new();
    for phone in &phones {
        let (device, live, mut stopped) = (phone.device.clone(), live.clone(), stopped.clone());
        watches.spawn(async move {
            let shutdown = async move {
                let _ = stopped.changed().await;
            };
            device.watch(shutdown, |event| live.on_event(event)).await
        });
    }
    wait_until(SUBSCRIBE_TIMEOUT, || {
        live.subscribed.load(Ordering::SeqCst) >= phones.len()
    })
    .await
    .context("the phones' live streams did not open within 30 s")?;
    let pushes_before = live.pushes.load(Ordering::SeqCst);
    let before = read_now(server)?;
    let start = Instant::now();
    let edits = edit_everywhere(&phones, plan, &live, start).await?;
    let all_seen = || live.seen() as u64 >= edits;
    let _ = wait_until(ARRIVAL_TIMEOUT, all_seen).await;
    let readings = Some((before, read_now(server)?));
    let _ = stop.send(true);
    while let Some(watch) = watches.join_next().await {
        watch.context("a live sync stopped")??;
    }
    let problems = live.problems.load(Ordering::SeqCst);
    if problems > 0 {
        bail!("{problems} change(s) were set aside or failed to sync during the benchmark");
    }
    let tracker = std::mem::take(&mut *live.tracker.lock().unwrap_or_else(|p| p.into_inner()));
    let end = tracker.last_arrival.unwrap_or_else(Instant::now);
    Ok(Phase {
        changes: edits,
        pushes: live.pushes.load(Ordering::SeqCst) - pushes_before,
        elapsed: end.saturating_duration_since(start),
        unseen: edits.saturating_sub(tracker.latencies_ms.len() as u64),
        latencies_ms: tracker.latencies_ms,
        readings,
    })
}

/// Every phone edits as planned, each on a task of its own; returns the edits made.
async fn edit_everywhere(
    phones: &[Phone],
    plan: &Plan,
    live: &Arc<Live>,
    start: Instant,
) -> anyhow::Result<u64> {
    let mut editors = JoinSet::new();
    for (index, phone) in phones.iter().enumerate() {
        let (device, boundary) = (phone.device.clone(), phone.boundary.clone());
        let (plan, live) = (plan.clone(), live.clone());
        editors
            .spawn(async move { edit_at_rate(device, boundary, index, &plan, &live, start).await });
    }
    let mut edits = 0;
    while let Some(made) = editors.join_next().await {
        edits += made.context("an editing phone stopped")??;
    }
    Ok(edits)
}

/// One phone's edits: at `plan.rate` a second (or as fast as it can, yielding after each).
async fn edit_at_rate(
    device: Arc<Device>,
    boundary: String,
    index: usize,
    plan: &Plan,
    live: &Live,
    start: Instant,
) -> anyhow::Result<u64> {
    let interval = (plan.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / plan.rate));
    let deadline = start + plan.duration;
    let mut made = 0u64;
    while match plan.edits {
        Some(edits) => made < edits,
        None => Instant::now() < deadline,
    } {
        if let Some(interval) = interval {
            tokio::time::sleep_until((start + interval * made as u32).into()).await;
        }
        let (device, boundary) = (device.clone(), boundary.clone());
        let text = format!("We keep our phones open to each other ({index}, {made})");
        let sent = Instant::now();
        let hash = tokio::task::spawn_blocking(move || {
            device.edit_boundary(&boundary, &text)?;
            anyhow::Ok(device.last_edit(DocKind::Agreement))
        })
        .await??
        .context("an edit made no change")?;
        live.tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sent(hash, sent);
        made += 1;
        tokio::task::yield_now().await;
    }
    Ok(made)
}

/// Two partners' phones in a new space, each with a boundary of its own, both synced.
async fn couple(url: &str, root: &Path, pair: usize) -> anyhow::Result<[Phone; 2]> {
    let (home_a, home_b) = (
        root.join(format!("pair{pair}-a")),
        root.join(format!("pair{pair}-b")),
    );
    let enrolment = |dir, name| Enrolment {
        dir,
        server_url: url,
        member_name: name,
        device_name: "phone",
        ca_cert_pem: None,
        clock: system_clock(),
    };
    let a = Device::init(enrolment(&home_a, "Partner A")).await?;
    let code = a.invite(CodeKind::Partner).await?.encode();
    let b = Device::join(enrolment(&home_b, "Partner B"), &code).await?;
    a.sync().await?;
    let boundary_a = a.add_boundary("We keep our phones open to each other", "bench")?;
    let boundary_b = b.add_boundary("We keep our phones open to each other", "bench")?;
    for device in [&b, &a, &b] {
        device.sync().await?;
    }
    Ok([
        Phone {
            device: Arc::new(a),
            boundary: boundary_a,
        },
        Phone {
            device: Arc::new(b),
            boundary: boundary_b,
        },
    ])
}

/// Polls `done` until it holds, or fails after `timeout`.
async fn wait_until(timeout: Duration, done: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            bail!("timed out");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}
