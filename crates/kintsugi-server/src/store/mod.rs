//! Storage behind small traits, so the services do not know which database holds the data.
//!
//! The server stores spaces, members, devices (with the SHA-256 of their tokens), invites (with
//! the SHA-256 of their secrets), and per document a log of encrypted envelopes, a dedup index
//! and two snapshot slots (serving and candidate, see `put_snapshot`). It can read none of the
//! content. `SledStore` is the backend today;
//! a networked database can come later and must pass the same conformance suite
//! (`store_conformance_tests!`, built for tests and with the `testing` feature). Methods are
//! synchronous because sled is; async handlers call them through `spawn_blocking`. Writes are
//! atomic per call, and `durable()` promises that every write that returned before it is on
//! disk once it resolves.
//!
//! The methods are split by concern into four traits, each in its own file with the record
//! types it takes and returns:
//!
//! | Trait           | File           | What it covers                                                   |
//! |-----------------|----------------|------------------------------------------------------------------|
//! | `PairingStore`  | `pairing.rs`   | spaces, members, devices, invites, revocation, recovery, leaving |
//! | `LogStore`      | `log.rs`       | document metadata, appending and reading the log                 |
//! | `SnapshotStore` | `snapshots.rs` | the candidate and serving snapshots, verdicts, compaction        |
//! | `AdminStore`    | `admin.rs`     | durability, byte counters, stats, export, vacuum                 |
//!
//! `Store` is all four at once (with a blanket impl), so the services hold one
//! `Arc<dyn Store>`. Beyond reads and writes, a backend keeps a per-space byte counter for
//! quotas, erases a member (or a whole space) on `leave_space`, writes a consistent copy of
//! itself in the backup format of `dump` on `export`, and on `vacuum` rewrites its files so
//! that deleted ciphertext is really gone (why sled needs that: `sled_vacuum`). Nothing here
//! knows gRPC: the services translate (the test `store_speaks_no_grpc` keeps it so).

pub use crate::clock::UnixSeconds;
pub use crate::ids::{
    DeviceId, DocId, InviteId, MemberId, RecoveryKey, SecretHash, ServerSeq, SpaceId,
};

mod admin;
#[cfg(any(test, feature = "testing"))]
#[macro_use]
pub mod conformance;
pub mod dump;
mod durable;
mod error;
mod log;
mod pairing;
mod records;
mod sled_erase;
mod sled_log;
mod sled_pairing;
mod sled_recovery;
mod sled_snapshots;
mod sled_store;
mod sled_usage;
mod sled_vacuum;
mod snapshots;

pub use admin::{AdminStore, StoreStats, VacuumReport};
pub use dump::{DumpError, DumpSummary};
pub use durable::Durable;
pub use error::StoreError;
pub use log::{
    AppendEnvelopes, Appended, Audience, DocMeta, Envelope, EnvelopePage, LogStore,
    SequencedEnvelope,
};
pub use pairing::{
    Departure, DeviceInfo, InviteKind, MAX_DEVICES_PER_MEMBER, MemberRecovery, NewInvite, NewSpace,
    PairingStore, Recovered, Recovery, RecoveryKeyChange, RedeemInvite, Redeemed, Revocation,
    enrolled_through,
};
pub(crate) use sled_store::MARKER_FILE;
pub use sled_store::SledStore;
pub(crate) use sled_vacuum::BACKUP_TMP_PREFIX;
pub use snapshots::{CandidateVerdict, NewSnapshot, SnapshotPut, SnapshotStore, StoredSnapshot};

/// Storage for the blind server: every part of it at once. Implement the four traits and a
/// backend is a `Store`; see the module docs.
pub trait Store:
    PairingStore + LogStore + SnapshotStore + AdminStore + Send + Sync + std::fmt::Debug + 'static
{
}

impl<T> Store for T where
    T: PairingStore
        + LogStore
        + SnapshotStore
        + AdminStore
        + Send
        + Sync
        + std::fmt::Debug
        + 'static
{
}
