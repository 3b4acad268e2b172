//! The real editing trace in `../shared/data/automerge-paper.json.gz` (259,778 keystrokes
//! typing the Automerge paper), and its replay: typed into one boundary on phone A, synced
//! through the server to phone B in batches, or applied by Automerge alone for comparison.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc};
use kintsugi_core::{Device, DocKind, TextSplice, WatchEvent};

/// The trace as recorded: the text it starts from, every keystroke, the text it ends at.
#[derive(Debug)]
pub struct Trace {
    pub start: String,
    pub keystrokes: Vec<TextSplice>,
    pub end: String,
}

/// Where the trace is: the `shared` folder beside the project's.
pub fn trace_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/automerge-paper.json.gz")
}

impl Trace {
    /// Reads the trace (gzip-compressed JSON).
    pub fn load() -> std::io::Result<Trace> {
        let mut json = String::new();
        let file = std::fs::File::open(trace_path())?;
        flate2::read::GzDecoder::new(file).read_to_string(&mut json)?;
        let value: serde_json::Value = serde_json::from_str(&json)?;
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
        let keystrokes = value["txns"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|txn| txn["patches"].as_array().into_iter().flatten())
            .filter_map(|patch| {
                Some(TextSplice {
                    at: patch[0].as_u64()? as usize,
                    delete: patch[1].as_u64()? as usize,
                    insert: patch[2].as_str()?.to_string(),
                })
            })
            .collect();
        Ok(Trace {
            start: text("startContent"),
            keystrokes,
            end: text("endContent"),
        })
    }

    /// The text after the first `n` keystrokes, by plain string editing.
    pub fn text_after(&self, n: usize) -> String {
        let mut chars: Vec<char> = self.start.chars().collect();
        for splice in &self.keystrokes[..n] {
            let end = splice.at + splice.delete;
            chars.splice(splice.at..end, splice.insert.chars());
        }
        chars.into_iter().collect()
    }
}

/// How a replay groups keystrokes.
#[derive(Clone, Copy, Debug)]
pub struct Batches {
    /// Keystrokes in one change (1: every keystroke is a change of its own).
    pub per_change: usize,
    /// Keystrokes typed between two syncs of A and then B.
    pub per_sync: usize,
}

/// Types `keystrokes` into a new boundary on `a`, syncing `a` then `b` every `per_sync`
/// keystrokes; returns the time it took and the boundary's text on `b`.
pub async fn replay_through_server(
    a: &Device,
    b: &Device,
    start: &str,
    keystrokes: &[TextSplice],
    batches: Batches,
) -> kintsugi_core::Result<(Duration, String)> {
    let id = boundary_holding(a, b, start).await?;
    let began = Instant::now();
    for synced in keystrokes.chunks(batches.per_sync.max(1)) {
        for change in synced.chunks(batches.per_change.max(1)) {
            a.type_into_boundary(&id, change)?;
        }
        a.sync().await?;
        b.sync().await?;
    }
    let took = began.elapsed();
    Ok((took, b.boundary(&id)?.text))
}

/// A new boundary on `a` holding `start`, synced to `b`; returns its id.
async fn boundary_holding(a: &Device, b: &Device, start: &str) -> kintsugi_core::Result<String> {
    let id = a.add_boundary("draft", "trace")?;
    let reset = TextSplice {
        at: 0,
        delete: "draft".len(),
        insert: start.to_string(),
    };
    a.type_into_boundary(&id, &[reset])?;
    a.sync().await?;
    b.sync().await?;
    Ok(id)
}

/// Automerge alone applying the same keystrokes to a text, one transaction per change as the
/// replay makes them; returns the time and the final text.
pub fn replay_in_automerge(
    start: &str,
    keystrokes: &[TextSplice],
    per_change: usize,
) -> (Duration, String) {
    let mut doc = AutoCommit::new();
    let text = doc
        .put_object(ROOT, "text", ObjType::Text)
        .expect("a text object");
    doc.splice_text(&text, 0, 0, start).expect("the start text");
    doc.commit();
    let began = Instant::now();
    for change in keystrokes.chunks(per_change.max(1)) {
        for splice in change {
            doc.splice_text(&text, splice.at, splice.delete as isize, &splice.insert)
                .expect("a keystroke of the trace");
        }
        doc.commit();
    }
    let took = began.elapsed();
    (took, doc.text(&text).expect("the text"))
}

/// Types `keystrokes` into a new boundary on `a` while both phones sync live (`watch`), the
/// typist letting the live sync run every `per_sync` keystrokes; returns the time from the first
/// keystroke until `b` applied the last change, and the boundary's text on `b`.
pub async fn replay_live(
    a: Arc<Device>,
    b: Arc<Device>,
    start: &str,
    keystrokes: &[TextSplice],
    batches: Batches,
) -> kintsugi_core::Result<(Duration, String)> {
    let id = boundary_holding(&a, &b, start).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (events, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    let watches = [&a, &b].map(|device| {
        let (device, events, mut stopped) = (device.clone(), events.clone(), stopped.clone());
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.changed().await;
            };
            device
                .watch(shutdown, |event| drop(events.send(event)))
                .await
        })
    });
    drop(events);
    let mut subscribed = 0;
    while subscribed < 2 {
        match arrived.recv().await {
            Some(WatchEvent::Subscribed) => subscribed += 1,
            Some(_) => {}
            None => break,
        }
    }
    let began = Instant::now();
    for synced in keystrokes.chunks(batches.per_sync.max(1)) {
        for change in synced.chunks(batches.per_change.max(1)) {
            a.type_into_boundary(&id, change)?;
        }
        tokio::task::yield_now().await;
    }
    let last = a.last_edit(DocKind::Agreement);
    while let Some(event) = arrived.recv().await {
        if let WatchEvent::Received { changes, .. } = event
            && changes.iter().any(|hash| Some(hash.to_string()) == last)
        {
            break;
        }
    }
    let took = began.elapsed();
    let _ = stop.send(true);
    for watch in watches {
        watch
            .await
            .map_err(|e| kintsugi_core::CoreError::Server(e.to_string()))??;
    }
    Ok((took, b.boundary(&id)?.text))
}
