//! The typed operations apps call: boundaries, journal entries, exports.
//!
//! Input is validated here, at the edge, before a transaction starts, so a bad input writes
//! nothing.

use autosurgeon::Text;

use super::Device;
use crate::docs::DocKind;
use crate::docs::agreement::{self, BoundaryView, TextSplice};
use crate::docs::journal::{self, Entry, EntryView};
use crate::error::{CoreError, Result};

/// A short random id for a new entry: 12 hex characters.
pub(crate) fn new_entry_id() -> String {
    let bytes: [u8; 6] = rand::random();
    data_encoding::HEXLOWER.encode(&bytes)
}

impl Device {
    /// Proposes a boundary; the proposer's approval of its text is recorded with it.
    pub fn add_boundary(&self, text: &str, category: &str) -> Result<String> {
        let text = agreement::check_text(text)?;
        let category = match category.trim() {
            "" => "general",
            given => given,
        };
        let id = new_entry_id();
        let (member, now) = (self.replica.identity.member_key(), self.now());
        let describe = |_: &()| format!("proposed boundary {id}");
        self.edit(DocKind::Agreement, describe, |tx| {
            agreement::add(tx, &id, &text, category, &member, now)
        })?;
        Ok(id)
    }

    /// Replaces a boundary's text by a character diff, so a concurrent edit merges with it.
    pub fn edit_boundary(&self, id: &str, text: &str) -> Result<String> {
        let text = agreement::check_text(text)?;
        let (member, now) = (self.replica.identity.member_key(), self.now());
        self.edit(
            DocKind::Agreement,
            |id: &String| format!("edited boundary {id}"),
            |tx| {
                let id = agreement::resolve_id(tx, id)?;
                agreement::edit(tx, &id, &text, &member, now)?;
                Ok(id)
            },
        )
    }

    /// Types into a boundary's text what an editor reports (each splice in order, all in one
    /// change), as an app's text field does while its user writes; returns the boundary's id.
    /// The typist approves the text once done (`approve_boundary`).
    pub fn type_into_boundary(&self, id: &str, splices: &[TextSplice]) -> Result<String> {
        self.edit(
            DocKind::Agreement,
            |id: &String| format!("typed into boundary {id}"),
            |tx| {
                let id = agreement::resolve_id(tx, id)?;
                agreement::type_text(tx, &id, splices)?;
                Ok(id)
            },
        )
    }

    /// Approves a boundary's current text.
    pub fn approve_boundary(&self, id: &str) -> Result<String> {
        Ok(self.approve_boundary_once(id)?.0)
    }

    /// Approves a boundary's current text; with `false` when this partner had approved exactly
    /// that text already, and nothing was stored.
    pub fn approve_boundary_once(&self, id: &str) -> Result<(String, bool)> {
        let (member, now) = (self.replica.identity.member_key(), self.now());
        self.edit(
            DocKind::Agreement,
            |(id, _): &(String, bool)| format!("approved boundary {id}"),
            |tx| {
                let id = agreement::resolve_id(tx, id)?;
                let approved = agreement::approve(tx, &id, &member, now)?;
                Ok((id, approved))
            },
        )
    }

    /// Retires a boundary: kept and shown, never deleted.
    pub fn retire_boundary(&self, id: &str) -> Result<String> {
        let now = self.now();
        self.edit(
            DocKind::Agreement,
            |id: &String| format!("retired boundary {id}"),
            |tx| {
                let id = agreement::resolve_id(tx, id)?;
                agreement::retire(tx, &id, now)?;
                Ok(id)
            },
        )
    }

    pub fn boundaries(&self) -> Result<Vec<BoundaryView>> {
        self.replica.read(DocKind::Agreement, agreement::list)
    }

    pub fn boundary(&self, id: &str) -> Result<BoundaryView> {
        self.replica.read(DocKind::Agreement, |doc| {
            let id = agreement::resolve_id(doc, id)?;
            agreement::list(doc)?
                .into_iter()
                .find(|b| b.id == id)
                .ok_or(CoreError::UnknownId {
                    what: "boundary",
                    id,
                    list: "boundary list",
                })
        })
    }

    /// Writes a private journal entry.
    pub fn write_journal(&self, text: &str, mood: Option<i64>, tags: &[String]) -> Result<String> {
        let text = journal::check_entry(text, mood)?;
        let id = new_entry_id();
        let entry = Entry {
            text: Text::with_value(&text),
            mood,
            tags: tags
                .iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            created_at: self.now(),
            shared_at: None,
        };
        self.edit(
            DocKind::Journal,
            |_: &()| format!("wrote entry {id}"),
            |tx| journal::write(tx, &id, &entry),
        )?;
        Ok(id)
    }

    pub fn journal(&self) -> Result<Vec<EntryView>> {
        self.replica.read(DocKind::Journal, journal::list)
    }

    /// The document as JSON, every value as Automerge holds it.
    pub fn export_json(&self, kind: DocKind) -> Result<serde_json::Value> {
        self.replica.read(kind, |doc| {
            serde_json::to_value(automerge::AutoSerde::from(doc))
                .map_err(|e| CoreError::Shape(format!("cannot export: {e}")))
        })
    }

    /// The document in Automerge's binary format, loadable by any Automerge implementation.
    pub fn export_automerge(&self, kind: DocKind) -> Result<Vec<u8>> {
        self.replica.read(kind, |doc| Ok(doc.save()))
    }

    /// The document's current heads, hex; equal heads mean equal documents.
    pub fn heads(&self, kind: DocKind) -> Result<Vec<String>> {
        self.replica.read(kind, |doc| {
            let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
            heads.sort();
            Ok(heads)
        })
    }

    /// The hash (hex) of the newest change this device made to the document since it was
    /// opened, which live sync's `Received` events name on the partner's device once it
    /// arrived there: what an app needs to show an edit as delivered.
    pub fn last_edit(&self, kind: DocKind) -> Option<String> {
        let open = self.replica.lock_documents();
        open.last_edit(kind).map(|hash| hash.to_string())
    }
}
