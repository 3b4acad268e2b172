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

/// One device of the space.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SpaceDevice {
    pub id: String,
    pub name: String,
    pub member: String,
    pub revoked: bool,
    pub this_device: bool,
    /// A device of this device's own member.
    pub mine: bool,
    /// In the roster when safety numbers were last compared.
    pub verified: bool,
}

/// One partner's weekly check-in.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CheckIn {
    pub name: String,
    pub week: String,
    pub trust: i64,
    pub conversations: i64,
    pub closeness: Option<i64>,
    pub forgiveness: Option<i64>,
    pub note: String,
}

/// One therapy session.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TherapySession {
    pub id: String,
    pub date: String,
    pub attended: Vec<String>,
    pub note: String,
    pub logged_by: String,
}

/// What leaving the space erased.
#[derive(Debug, Clone, uniffi::Record)]
pub struct LeftSpace {
    pub devices_removed: u32,
    pub documents_removed: u32,
    /// This was the last partner: the whole space is gone from the server.
    pub space_erased: bool,
}

impl From<kintsugi_core::DeviceView> for SpaceDevice {
    fn from(view: kintsugi_core::DeviceView) -> Self {
        Self {
            id: view.id,
            name: view.name,
            member: view.member,
            revoked: view.revoked,
            this_device: view.this_device,
            mine: view.mine,
            verified: view.verified,
        }
    }
}

impl From<kintsugi_core::CheckInView> for CheckIn {
    fn from(view: kintsugi_core::CheckInView) -> Self {
        Self {
            name: view.name,
            week: view.week,
            trust: view.trust,
            conversations: view.conversations,
            closeness: view.closeness,
            forgiveness: view.forgiveness,
            note: view.note,
        }
    }
}

impl From<kintsugi_core::SessionView> for TherapySession {
    fn from(view: kintsugi_core::SessionView) -> Self {
        Self {
            id: view.id,
            date: view.date,
            attended: view.attended,
            note: view.note,
            logged_by: view.logged_by,
        }
    }
}

impl From<kintsugi_core::LeftSpace> for LeftSpace {
    fn from(left: kintsugi_core::LeftSpace) -> Self {
        Self {
            devices_removed: left.devices_removed,
            documents_removed: left.documents_removed,
            space_erased: left.space_erased,
        }
    }
}
