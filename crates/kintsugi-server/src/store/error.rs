//! `StoreError`: why a store call failed, for every part of the store.

use std::path::PathBuf;

use super::{Audience, DumpError};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("another process holds the lock on {}", .0.display())]
    Locked(PathBuf),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("storage i/o failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage failed: {0}")]
    Backend(String),
    #[error("making writes durable failed: {0}")]
    Durability(String),
    #[error("a space with this id already exists")]
    SpaceExists,
    #[error("the space does not exist")]
    UnknownSpace,
    #[error("the document's audience is fixed as {recorded:?}")]
    AudienceFixed { recorded: Audience },
    #[error("the document is private to another member")]
    PrivateDocument,
    #[error("client_seq {client_seq} was reused with different content")]
    ClientSeqReused { client_seq: u64 },
    #[error("the document does not exist")]
    UnknownDocument,
    #[error("covers_seq {covers_seq} is beyond head_seq {head_seq}")]
    SnapshotBeyondHead { covers_seq: u64, head_seq: u64 },
    #[error("the space holds {used} of {quota} bytes; {needed} more do not fit")]
    QuotaExceeded { used: u64, quota: u64, needed: u64 },
    #[error(
        "a member rejected a snapshot at position {rejected_through}; offer one that covers more than that (this one covers {covers_seq})"
    )]
    SnapshotRejected {
        covers_seq: u64,
        rejected_through: u64,
    },
    #[error(
        "the log holds {head_seq} entries, not the {expected} this append follows; pull and append after the last"
    )]
    PositionTaken { expected: u64, head_seq: u64 },
    #[error("the member is not (or no longer) in the space")]
    UnknownMember,
    #[error("the store is unavailable for a moment: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Dump(#[from] DumpError),
}
