//! `kintsugi journal`: private entries only this partner's devices can read.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use kintsugi_core::Device;
use serde_json::json;

use crate::cli::JournalCommand;
use crate::output::{Output, timestamp};

pub fn run(device: &Device, command: JournalCommand, out: Output) -> anyhow::Result<()> {
    match command {
        JournalCommand::Write {
            text,
            file,
            mood,
            tags,
        } => {
            let text = entry_text(text, file.as_deref())?;
            let id = device.write_journal(&text, mood, &tags)?;
            out.print(&json!({ "id": id }), || id.clone())
        }
        JournalCommand::Share { id } => {
            let id = device.share_journal(&id)?;
            out.print(&json!({ "id": id, "shared": true }), || {
                format!("shared {id}: your partner can read this entry after you sync; the rest stays private")
            })
        }
        JournalCommand::List => {
            let entries = device.journal()?;
            let value: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| {
                    json!({
                        "id": e.id,
                        "text": e.text,
                        "mood": e.mood,
                        "tags": e.tags,
                        "created_at": timestamp(e.created_at),
                        "shared": e.shared,
                    })
                })
                .collect();
            out.print(&value, || {
                if entries.is_empty() {
                    return "no entries yet; write one with `kintsugi journal write TEXT`".into();
                }
                entries
                    .iter()
                    .map(|e| {
                        let mood = e.mood.map(|m| format!(" mood {m}/5")).unwrap_or_default();
                        format!("{}  {}{mood}\n  {}", e.id, timestamp(e.created_at), e.text)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}

/// The entry as given: the argument, stdin for `-`, or the file.
fn entry_text(text: Option<String>, file: Option<&Path>) -> anyhow::Result<String> {
    match (text, file) {
        (_, Some(file)) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the entry from {}", file.display())),
        (Some(text), None) if text == "-" => read_stdin(),
        (Some(text), None) => Ok(text),
        (None, None) => anyhow::bail!("give the entry as TEXT, `-` for stdin, or --file FILE"),
    }
}

/// All of stdin, as text.
pub fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the entry from stdin: give UTF-8 text")?;
    Ok(text)
}
