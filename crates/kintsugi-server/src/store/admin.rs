//! The store as a whole, with the `AdminStore` trait: durability, accounting, backup, vacuum.
//!
//! What is not about one space's members or documents: the promise that writes are on disk,
//! the byte counters behind quotas and metrics, the census behind `kintsugi admin stats`, a
//! consistent copy in the backup format (`dump`) and the rewrite that makes deleted data gone.

use std::io::Write;

use super::{DumpSummary, Durable, StoreError};
use crate::ids::SpaceId;

/// The size of the store's files before and after `vacuum`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VacuumReport {
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Counts of what the store holds, for `kintsugi admin stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub spaces: u64,
    pub devices: u64,
    pub documents: u64,
    /// Log entries plus stored snapshots (serving and candidate).
    pub envelopes: u64,
    /// Nonce and ciphertext bytes of those envelopes.
    pub bytes: u64,
}

/// Operations on the store as a whole. Every method is atomic (see `crate::store`).
pub trait AdminStore {
    /// Counts of what the store holds.
    fn stats(&self) -> Result<StoreStats, StoreError>;
    /// Nonce and ciphertext bytes the space holds, as counted against its quota.
    fn space_usage(&self, space_id: SpaceId) -> Result<u64, StoreError>;
    /// The sum of every space's `space_usage`: what `stats` counts as bytes, read from the
    /// counters instead of a full scan, so it is cheap enough for a metrics gauge.
    fn total_usage(&self) -> Result<u64, StoreError>;
    /// Writes a consistent copy of everything in the `dump` format. Writes wait meanwhile.
    fn export(&self, out: &mut dyn Write) -> Result<DumpSummary, StoreError>;
    /// Rewrites the store's files so that deleted values no longer remain in them.
    fn vacuum(&self) -> Result<VacuumReport, StoreError>;
    /// Resolves once every write that returned before this call is on disk.
    fn durable(&self) -> Durable;
    /// Blocks until every earlier write is on disk.
    fn flush(&self) -> Result<(), StoreError> {
        self.durable().wait_blocking()
    }
}
