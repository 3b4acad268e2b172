//! `kintsugi history`: who changed what and when, from the document's Automerge history.

use kintsugi_core::{Device, DocKind};
use serde_json::json;

use crate::output::{Output, timestamp};

pub fn run(device: &Device, doc: &str, out: Output) -> anyhow::Result<()> {
    let kind = DocKind::parse(doc)?;
    let history = device.history(kind)?;
    let value: Vec<serde_json::Value> = history
        .iter()
        .map(|h| json!({ "at": timestamp(h.at), "who": h.who, "device": h.device, "what": h.what }))
        .collect();
    out.print(&value, || {
        history
            .iter()
            .map(|h| format!("{}  {:<12} {}", timestamp(h.at), h.who, h.what))
            .collect::<Vec<_>>()
            .join("\n")
    })
}
