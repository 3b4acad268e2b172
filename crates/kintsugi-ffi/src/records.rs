//! The values the device returns, as plain records for the app.

use kintsugi_core::{BoundaryView, EntryView, Status, SyncReport};

/// Where a boundary stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum BoundaryStatus {
    Proposed,
    Agreed,
    Retired,
}

/// One boundary of the agreement.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Boundary {
    pub id: String,
    pub text: String,
    pub category: String,
    pub status: BoundaryStatus,
    pub proposed_by: String,
    pub approved_by: Vec<String>,
    pub created_at_ms: i64,
}

/// One entry of this member's private journal.
#[derive(Debug, Clone, uniffi::Record)]
pub struct JournalEntry {
    pub id: String,
    pub text: String,
    pub mood: Option<i64>,
    pub tags: Vec<String>,
    pub created_at_ms: i64,
    pub shared: bool,
}

/// What one sync did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncSummary {
    pub pushed: u64,
    pub pulled: u64,
    pub set_aside: u64,
    /// One line per document that could not be synced this time (the others were).
    pub failed: Vec<String>,
}

impl From<BoundaryView> for Boundary {
    fn from(view: BoundaryView) -> Self {
        Self {
            id: view.id,
            text: view.text,
            category: view.category,
            status: match view.status {
                Status::Proposed => BoundaryStatus::Proposed,
                Status::Agreed => BoundaryStatus::Agreed,
                Status::Retired => BoundaryStatus::Retired,
            },
            proposed_by: view.proposed_by,
            approved_by: view.approved_by,
            created_at_ms: view.created_at.as_millis(),
        }
    }
}

impl From<EntryView> for JournalEntry {
    fn from(view: EntryView) -> Self {
        Self {
            id: view.id,
            text: view.text,
            mood: view.mood,
            tags: view.tags,
            created_at_ms: view.created_at.as_millis(),
            shared: view.shared,
        }
    }
}

impl From<SyncReport> for SyncSummary {
    fn from(report: SyncReport) -> Self {
        Self {
            pushed: report.pushed as u64,
            pulled: report.pulled as u64,
            set_aside: report.set_aside.len() as u64,
            failed: report
                .failed
                .iter()
                .map(|failure| format!("{}: {}", failure.doc, failure.error))
                .collect(),
        }
    }
}
