//! The client core for phone apps: one `Device` object and the records it returns, exported to
//! Kotlin, Swift and Python through UniFFI proc-macros. Network calls are async; every error
//! is one typed enum whose variant is a stable code and whose message an app can show.

mod device;
mod domain;
mod error;
mod live;
mod records;

pub use device::{Device, init_device, join_device};
pub use domain::{unsynced_changes, wipe_device};
pub use error::KintsugiError;
pub use live::{ConnectionState, LiveSync, SyncListener};
pub use records::{
    Boundary, BoundaryStatus, CheckIn, JournalEntry, LeftSpace, SpaceDevice, SyncSummary,
    TherapySession,
};

uniffi::setup_scaffolding!();
