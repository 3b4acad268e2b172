//! Sync with the blind server: push the outbox, pull and apply, snapshots, and live mode.
//!
//! The flow of one sync: the roster log is pulled and verified first (`roster_log.rs`), so
//! every envelope after it is checked against the devices it admits; then every outbox entry is pushed (grouped per document) and dropped once
//! the server acknowledged it as durable; then each document is pulled from its cursor, every
//! envelope is opened and validated, and the new changes and the advanced cursor are stored in
//! one transaction. A failure anywhere leaves the local store as it was.

pub mod client;
mod engine;
mod membership;
mod page;
mod report;
mod reseal;
mod roster;
mod roster_draft;
mod roster_log;
mod snapshot;
mod watch;

pub(crate) use membership::{read_roster, recovery_keys, welcome_keys};
pub use report::{DocFailure, RosterChange, RosterEvent, SetAside, SyncReport};
pub use roster::DeviceView;
pub use snapshot::{SNAPSHOT_EVERY, SnapshotPayload};
pub use watch::WatchEvent;
