//! The Kintsugi client core, embedded in each phone app.
//!
//! It keeps one device's state (keys, Automerge documents, the outbox of changes not yet pushed
//! and the pull cursors) in a local sled database, works fully offline, and syncs end-to-end
//! encrypted changes through the blind server. [`Device`] is the API apps use.

mod clock;
mod device;
pub mod docs;
pub mod envelope;
pub mod epoch_keys;
mod error;
mod identity;
pub mod ids;
pub mod invite_code;
pub mod key_store;
pub mod keys;
mod padding;
pub mod progress;
pub mod recovery_kit;
mod replica;
pub mod roster;
pub mod store;
mod sync;
pub mod week;

pub use clock::{Clock, UnixMillis, system_clock};
pub use device::pairing::{Enrolment, LeftSpace};
pub use device::{Device, DeviceView, HistoryEntry, Identity, Verification};
pub use docs::DocKind;
pub use docs::agreement::{BoundaryView, Status, TextSplice};
pub use docs::checkins::{Answers, CheckInView, SessionView};
pub use docs::journal::EntryView;
pub use docs::shared::SharedEntryView;
pub use error::{CoreError, Result};
pub use invite_code::{CodeKind, InviteCode};
pub use progress::{Progress, Verdict};
pub use sync::client::{check_url, read_ca_cert};
pub use sync::{
    DocFailure, RosterChange, RosterEvent, SetAside, SnapshotPayload, SyncReport, WatchEvent,
};
pub use week::IsoWeek;
