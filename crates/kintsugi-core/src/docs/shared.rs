//! Journal entries a partner chose to share, in the shared document `shared`.
//!
//! Sharing copies one entry out of the private journal; the journal itself stays private, so
//! the partner can read that entry and nothing else of it.

use std::collections::HashMap;

use autosurgeon::{Doc, Hydrate, ReadDoc, Reconcile, Text, reconcile_prop};
use serde::Serialize;

use crate::clock::UnixMillis;
use crate::docs::agreement::reconcile_error;
use crate::docs::root_map;
use crate::error::Result;

#[derive(Clone, Debug, Hydrate, Reconcile)]
pub struct SharedEntry {
    pub text: Text,
    pub mood: Option<i64>,
    pub tags: Vec<String>,
    /// When the entry was written, ms since the epoch.
    pub created_at: UnixMillis,
    /// Member id (hex) of the partner who shared it.
    pub shared_by: String,
    pub shared_at: UnixMillis,
}

/// A shared entry as people see it.
#[derive(Clone, Debug, Serialize)]
pub struct SharedEntryView {
    pub id: String,
    pub text: String,
    pub mood: Option<i64>,
    pub tags: Vec<String>,
    pub created_at: UnixMillis,
    pub shared_by: String,
    pub shared_at: UnixMillis,
}

/// Puts a copy of a journal entry under its journal id (sharing twice updates the copy).
pub fn put(tx: &mut impl Doc, id: &str, entry: &SharedEntry) -> Result<()> {
    let entries = root_map(tx, "entries")?;
    reconcile_prop(tx, &entries, id, entry).map_err(reconcile_error)
}

/// Every shared entry, oldest first; `names` maps member ids to names.
pub fn list(doc: &impl ReadDoc, names: &HashMap<String, String>) -> Result<Vec<SharedEntryView>> {
    let entries: HashMap<String, SharedEntry> = crate::docs::hydrate_entries(doc, "entries")?;
    let mut views: Vec<SharedEntryView> = entries
        .into_iter()
        .map(|(id, e)| SharedEntryView {
            id,
            text: e.text.as_str().to_string(),
            mood: e.mood,
            tags: e.tags,
            created_at: e.created_at,
            shared_by: names.get(&e.shared_by).cloned().unwrap_or(e.shared_by),
            shared_at: e.shared_at,
        })
        .collect();
    views.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(views)
}
