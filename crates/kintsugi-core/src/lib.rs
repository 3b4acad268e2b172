//! The Kintsugi client core, embedded in each phone app.
//!
//! It keeps one device's state (keys, Automerge documents, the outbox of changes not yet pushed
//! and the pull cursors) in a local sled database, works fully offline, and syncs end-to-end
//! encrypted changes through the blind server. [`Device`] is the API apps use.

pub mod code;
pub mod device;
pub mod docs;
pub mod envelope;
pub mod error;
pub mod identity;
pub mod ids;
pub mod keys;
pub mod progress;
mod replica;
pub mod store;
pub mod sync;
pub mod week;

pub use code::{CodeKind, InviteCode};
pub use device::pairing::{Enrolment, LeftSpace};
pub use device::{Clock, Device, DeviceView, HistoryEntry, Identity, system_clock};
pub use docs::DocKind;
pub use docs::agreement::{BoundaryView, Status};
pub use docs::checkins::{Answers, CheckInView, SessionView};
pub use docs::journal::EntryView;
pub use docs::shared::SharedEntryView;
pub use error::{CoreError, Result};
pub use progress::{Progress, Verdict};
pub use sync::{DocFailure, RosterChange, RosterEvent, SetAside, SyncReport, WatchEvent};
pub use week::IsoWeek;
