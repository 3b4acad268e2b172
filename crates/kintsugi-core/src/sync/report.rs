//! What one sync did, document by document: the changes pushed and received, the envelopes
//! set aside, the snapshots audited, the documents that failed, and the devices that came and
//! went since the last sync.

use serde::Serialize;

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Local changes the server acknowledged.
    pub pushed: usize,
    /// Changes from other devices applied here.
    pub pulled: usize,
    /// Candidate snapshots this device found not to hold exactly the logged changes, and
    /// rejected.
    pub rejected_snapshots: usize,
    /// Candidate snapshots this device checked against the log and endorsed.
    pub endorsed_snapshots: usize,
    /// Envelopes this device could not accept: kept for inspection and skipped.
    pub set_aside: Vec<SetAside>,
    /// Documents that could not be synced this time (the others were).
    pub failed: Vec<DocFailure>,
    /// Devices added to or revoked from the space since the last sync.
    pub roster: Vec<RosterChange>,
}

impl std::ops::AddAssign for SyncReport {
    fn add_assign(&mut self, other: Self) {
        self.pushed += other.pushed;
        self.pulled += other.pulled;
        self.rejected_snapshots += other.rejected_snapshots;
        self.endorsed_snapshots += other.endorsed_snapshots;
        self.set_aside.extend(other.set_aside);
        self.failed.extend(other.failed);
        self.roster.extend(other.roster);
    }
}

/// An envelope set aside: which document and position, who sent it, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SetAside {
    pub doc: &'static str,
    pub server_seq: u64,
    /// The id of the device that pushed it.
    pub device: String,
    /// Who that device is, as "Member's device-name", when the roster names it.
    pub sender: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for SetAside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sender = self.sender.as_deref().unwrap_or("an unknown device");
        write!(
            f,
            "set aside change {} of the {} from {sender} (device {}): {}; it is kept on this device, and later changes still apply",
            self.server_seq, self.doc, self.device, self.reason
        )
    }
}

/// A document that could not be synced, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocFailure {
    pub doc: &'static str,
    pub error: String,
}

impl std::fmt::Display for DocFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} could not be synced (the other documents were): {}",
            self.doc, self.error
        )
    }
}

/// A device that joined or left the space since this device last looked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RosterChange {
    pub device: String,
    pub name: String,
    pub member: String,
    /// A device of this device's own member.
    pub mine: bool,
    pub change: RosterEvent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RosterEvent {
    Added,
    Revoked,
}

impl std::fmt::Display for RosterChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, device) = (&self.name, &self.device);
        match (self.change, self.mine) {
            (RosterEvent::Added, true) => write!(
                f,
                "a new device was linked to your account: {name} ({device}); if that was not you, revoke it from your first device"
            ),
            (RosterEvent::Added, false) => {
                write!(f, "{} linked a new device: {name} ({device})", self.member)
            }
            (RosterEvent::Revoked, true) => {
                write!(f, "your device {name} ({device}) was revoked")
            }
            (RosterEvent::Revoked, false) => {
                write!(f, "{}'s device {name} ({device}) was revoked", self.member)
            }
        }
    }
}
