//! A partner's private journal: entries with text, mood, tags and time.
//!
//! The journal document is private: its id and key derive from the member key, which only the
//! member's own devices hold, and the server refuses it to the other partner's devices.

use std::collections::HashMap;

use autosurgeon::{Doc, ReadDoc};
use autosurgeon::{Hydrate, Reconcile, Text, hydrate_prop, reconcile_prop};
use serde::Serialize;

use crate::clock::UnixMillis;
use crate::docs::agreement::{hydrate_error, reconcile_error};
use crate::docs::root_map;
use crate::error::{CoreError, Result};

/// Longest journal entry accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 20_000;

#[derive(Clone, Debug, Hydrate, Reconcile)]
pub struct Entry {
    pub text: Text,
    /// 1 (very low) to 5 (very good), when given.
    pub mood: Option<i64>,
    pub tags: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: UnixMillis,
    pub shared_at: Option<UnixMillis>,
}

/// What a person sees of an entry.
#[derive(Clone, Debug, Serialize)]
pub struct EntryView {
    pub id: String,
    pub text: String,
    pub mood: Option<i64>,
    pub tags: Vec<String>,
    pub created_at: UnixMillis,
    pub shared: bool,
}

/// Validates an entry at the edge, before anything is written.
pub fn check_entry(text: &str, mood: Option<i64>) -> Result<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(CoreError::InvalidInput(
            "a journal entry needs some text".into(),
        ));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(CoreError::InvalidInput(format!(
            "a journal entry is at most {MAX_TEXT_CHARS} characters"
        )));
    }
    if let Some(m) = mood
        && !(1..=5).contains(&m)
    {
        return Err(CoreError::InvalidInput(format!(
            "mood must be 1 to 5, not {m}"
        )));
    }
    Ok(text.to_string())
}

pub fn write(tx: &mut impl Doc, id: &str, entry: &Entry) -> Result<()> {
    let entries = root_map(tx, "entries")?;
    reconcile_prop(tx, &entries, id, entry).map_err(reconcile_error)
}

/// Resolves an entry id or a unique prefix of one.
pub fn resolve_id(doc: &impl ReadDoc, typed: &str) -> Result<String> {
    crate::docs::resolve_key(doc, "entries", typed, "journal entry", "journal list")
}

/// One entry.
pub fn get(doc: &impl ReadDoc, id: &str) -> Result<Entry> {
    let entries = root_map(doc, "entries")?;
    hydrate_prop(doc, &entries, id).map_err(hydrate_error)
}

/// Marks an entry as shared at `now`.
pub fn mark_shared(tx: &mut impl Doc, id: &str, now: UnixMillis) -> Result<()> {
    let entries = root_map(tx, "entries")?;
    let entry = match tx.get(&entries, id) {
        Ok(Some((automerge::Value::Object(_), obj))) => obj,
        _ => {
            return Err(CoreError::UnknownId {
                what: "journal entry",
                id: id.to_string(),
                list: "journal list",
            });
        }
    };
    tx.put(&entry, "shared_at", now)
        .map_err(|e| CoreError::Shape(e.to_string()))
}

/// Every entry, oldest first.
pub fn list(doc: &impl ReadDoc) -> Result<Vec<EntryView>> {
    let entries: HashMap<String, Entry> = crate::docs::hydrate_entries(doc, "entries")?;
    let mut views: Vec<EntryView> = entries
        .into_iter()
        .map(|(id, e)| EntryView {
            id,
            text: e.text.as_str().to_string(),
            mood: e.mood,
            tags: e.tags,
            created_at: e.created_at,
            shared: e.shared_at.is_some(),
        })
        .collect();
    views.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(views)
}
