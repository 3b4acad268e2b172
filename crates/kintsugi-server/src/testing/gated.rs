//! `GatedStore`: the sled store with a gate in front of `durable()`, for handler tests.
//!
//! While the gate is closed, every durability promise stays pending and `requested` tells the
//! test that a handler is waiting on one. That turns "does this handler wait until what it
//! serves is on disk?" into a deterministic check: with the gate closed, the handler must be
//! found waiting, never replying. Opening the gate syncs the real store and settles them all.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use crate::clock::UnixSeconds;
use crate::ids::{DeviceId, DocId, MemberId, SecretHash, ServerSeq, SpaceId};
use crate::store::{
    AdminStore, AppendEnvelopes, Appended, CandidateVerdict, Departure, DeviceInfo, DocMeta,
    DumpSummary, Durable, EnvelopePage, LogStore, MemberRecovery, NewInvite, NewSnapshot, NewSpace,
    PairingStore, Recovered, Recovery, RecoveryKey, RecoveryKeyChange, RedeemInvite, Redeemed,
    Revocation, SledStore, SnapshotPut, SnapshotStore, StoreError, StoreStats, StoredSnapshot,
    VacuumReport,
};

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Debug, Default)]
struct Gate {
    closed: bool,
    waiting: Vec<Waiter>,
}

/// A `SledStore` whose durability a test holds back.
#[derive(Debug)]
pub(crate) struct GatedStore {
    inner: SledStore,
    gate: Mutex<Gate>,
    requested: Notify,
}

impl GatedStore {
    pub(crate) fn new(inner: SledStore) -> Self {
        Self {
            inner,
            gate: Mutex::new(Gate::default()),
            requested: Notify::new(),
        }
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on, durability promises stay pending until `open`.
    pub(crate) fn close(&self) {
        self.gate().closed = true;
    }

    /// Syncs the real store and settles every pending promise; later ones settle normally.
    pub(crate) async fn open(&self) {
        let waiting = {
            let mut gate = self.gate();
            gate.closed = false;
            std::mem::take(&mut gate.waiting)
        };
        let synced = self.inner.durable().await.map_err(|e| e.to_string());
        for waiter in waiting {
            let _ = waiter.send(synced.clone());
        }
    }

    /// Resolves once someone waits on a durability promise held at the gate.
    pub(crate) async fn requested(&self) {
        loop {
            let notified = self.requested.notified();
            if !self.gate().waiting.is_empty() {
                return;
            }
            notified.await;
        }
    }
}

impl PairingStore for GatedStore {
    fn create_space(&self, space: NewSpace) -> Result<(), StoreError> {
        self.inner.create_space(space)
    }
    fn device_by_token_hash(&self, hash: &SecretHash) -> Result<Option<DeviceInfo>, StoreError> {
        self.inner.device_by_token_hash(hash)
    }
    fn member_count(&self, space_id: SpaceId) -> Result<usize, StoreError> {
        self.inner.member_count(space_id)
    }
    fn create_invite(&self, invite: NewInvite) -> Result<(), StoreError> {
        self.inner.create_invite(invite)
    }
    fn redeem_invite(&self, redeem: RedeemInvite) -> Result<Redeemed, StoreError> {
        self.inner.redeem_invite(redeem)
    }
    fn device(&self, space: SpaceId, device: DeviceId) -> Result<Option<DeviceInfo>, StoreError> {
        self.inner.device(space, device)
    }
    fn list_devices(&self, space_id: SpaceId) -> Result<Vec<DeviceInfo>, StoreError> {
        self.inner.list_devices(space_id)
    }
    fn revoke_device(
        &self,
        space_id: SpaceId,
        member_id: MemberId,
        by: DeviceId,
        device_id: DeviceId,
    ) -> Result<Revocation, StoreError> {
        self.inner.revoke_device(space_id, member_id, by, device_id)
    }
    fn leave_space(&self, space: SpaceId, member: MemberId) -> Result<Departure, StoreError> {
        self.inner.leave_space(space, member)
    }
    fn recovery_key(
        &self,
        space: SpaceId,
        member: MemberId,
    ) -> Result<Option<MemberRecovery>, StoreError> {
        self.inner.recovery_key(space, member)
    }
    fn set_recovery_key(
        &self,
        space: SpaceId,
        member: MemberId,
        by: DeviceId,
        key: RecoveryKey,
    ) -> Result<RecoveryKeyChange, StoreError> {
        self.inner.set_recovery_key(space, member, by, key)
    }
    fn recover_member(&self, recovery: Recovery) -> Result<Recovered, StoreError> {
        self.inner.recover_member(recovery)
    }
}

impl LogStore for GatedStore {
    fn doc_meta(&self, space_id: SpaceId, doc_id: DocId) -> Result<Option<DocMeta>, StoreError> {
        self.inner.doc_meta(space_id, doc_id)
    }
    fn list_docs(&self, space_id: SpaceId) -> Result<Vec<(DocId, DocMeta)>, StoreError> {
        self.inner.list_docs(space_id)
    }
    fn append_envelopes(&self, append: AppendEnvelopes) -> Result<Appended, StoreError> {
        self.inner.append_envelopes(append)
    }
    fn read_envelopes(
        &self,
        space_id: SpaceId,
        doc_id: DocId,
        after: ServerSeq,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<EnvelopePage, StoreError> {
        self.inner
            .read_envelopes(space_id, doc_id, after, max_count, max_bytes)
    }
}

impl SnapshotStore for GatedStore {
    fn snapshot(&self, space: SpaceId, doc: DocId) -> Result<Option<StoredSnapshot>, StoreError> {
        self.inner.snapshot(space, doc)
    }
    fn candidate_snapshot(
        &self,
        space: SpaceId,
        doc: DocId,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        self.inner.candidate_snapshot(space, doc)
    }
    fn put_snapshot(&self, snapshot: NewSnapshot) -> Result<SnapshotPut, StoreError> {
        self.inner.put_snapshot(snapshot)
    }
    fn reject_candidate(&self, verdict: CandidateVerdict) -> Result<bool, StoreError> {
        self.inner.reject_candidate(verdict)
    }
    fn endorse_candidate(&self, verdict: CandidateVerdict) -> Result<bool, StoreError> {
        self.inner.endorse_candidate(verdict)
    }
    fn compact(
        &self,
        space_id: SpaceId,
        doc_id: DocId,
        now: UnixSeconds,
        retention: Duration,
    ) -> Result<ServerSeq, StoreError> {
        self.inner.compact(space_id, doc_id, now, retention)
    }
    fn compact_all(&self, now: UnixSeconds, retention: Duration) -> Result<u64, StoreError> {
        self.inner.compact_all(now, retention)
    }
}

impl AdminStore for GatedStore {
    fn stats(&self) -> Result<StoreStats, StoreError> {
        self.inner.stats()
    }
    fn space_usage(&self, space_id: SpaceId) -> Result<u64, StoreError> {
        self.inner.space_usage(space_id)
    }
    fn total_usage(&self) -> Result<u64, StoreError> {
        self.inner.total_usage()
    }
    fn export(&self, out: &mut dyn Write) -> Result<DumpSummary, StoreError> {
        self.inner.export(out)
    }
    fn vacuum(&self) -> Result<VacuumReport, StoreError> {
        self.inner.vacuum()
    }
    fn durable(&self) -> Durable {
        let mut gate = self.gate();
        if !gate.closed {
            return self.inner.durable();
        }
        let (waiter, answer) = oneshot::channel();
        gate.waiting.push(waiter);
        drop(gate);
        self.requested.notify_waiters();
        Durable::waiting(answer)
    }
}
