//! One sync round: push the outbox, then pull and apply every document.

use std::collections::BTreeMap;

use kintsugi_proto::v1::{Envelope, EnvelopeKind, PullRequest, PushRequest, Snapshot};
use serde::Serialize;

use super::client::Connection;
use crate::device::Device;
use crate::docs::{DocKind, apply_remote_changes};
use crate::envelope::open;
use crate::error::{CoreError, Result};

/// Envelopes per push; far below the server's limit.
const PUSH_BATCH: usize = 500;
/// Bytes per push, well inside the 16 MiB message limit.
const PUSH_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Envelopes per pull page: small enough that a page arrives well within the call timeout on a
/// slow link.
const PULL_PAGE: u32 = 250;

/// Splits pending envelopes into pushes of at most `PUSH_BATCH` envelopes and about
/// `PUSH_BATCH_BYTES` bytes (a single larger envelope goes alone).
fn batches(entries: &[(u64, Envelope)]) -> Vec<&[(u64, Envelope)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, envelope)) in entries.iter().enumerate() {
        let size = envelope.ciphertext.len() + envelope.nonce.len() + 64;
        if i > start && (i - start == PUSH_BATCH || bytes + size > PUSH_BATCH_BYTES) {
            out.push(&entries[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

/// A document's audience and its pending envelopes with their client sequence numbers.
type OutboxBatch = (i32, Vec<(u64, Envelope)>);

/// What one sync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Local changes the server acknowledged.
    pub pushed: usize,
    /// Changes from other devices applied here.
    pub pulled: usize,
    /// Candidate snapshots this device found to omit changes, and rejected.
    pub rejected_snapshots: usize,
}

impl std::ops::AddAssign for SyncReport {
    fn add_assign(&mut self, other: Self) {
        self.pushed += other.pushed;
        self.pulled += other.pulled;
        self.rejected_snapshots += other.rejected_snapshots;
    }
}

impl Device {
    /// Pushes every local change, then pulls and applies every document.
    pub async fn sync(&self) -> Result<SyncReport> {
        let mut conn = self.connect().await?;
        let pushed = self.push_outbox(&mut conn).await?;
        let (mut pulled, mut rejected_snapshots) = (0, 0);
        let mut failed = None;
        for kind in DocKind::ALL {
            // One document that cannot be applied (a forged or broken envelope) must not stop
            // the others from syncing; the connection failing stops them all.
            match self.pull(&mut conn, kind).await {
                Ok((applied, candidate)) => {
                    pulled += applied;
                    if let Some(candidate) = candidate {
                        match self.audit_candidate(&mut conn, kind, &candidate).await {
                            Ok(rejected) => rejected_snapshots += usize::from(rejected),
                            Err(error) => {
                                tracing::warn!(doc = kind.name(), %error, "could not audit a candidate snapshot")
                            }
                        }
                    }
                }
                Err(error @ (CoreError::Unreachable { .. } | CoreError::Unauthenticated(_))) => {
                    return Err(error);
                }
                Err(error) => {
                    failed.get_or_insert(CoreError::Document {
                        doc: kind.name(),
                        source: Box::new(error),
                    });
                    continue;
                }
            }
            // Compaction is a courtesy to the server: a refused or failed snapshot must not
            // fail the sync, which already did what the user asked.
            if let Err(error) = self.maybe_put_snapshot(&mut conn, kind).await {
                tracing::warn!(doc = kind.name(), %error, "the server did not take a snapshot");
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(SyncReport {
                pushed,
                pulled,
                rejected_snapshots,
            }),
        }
    }

    /// Pushes the outbox, document by document, oldest first; returns how many were acknowledged.
    pub(crate) async fn push_outbox(&self, conn: &mut Connection) -> Result<usize> {
        let mut by_doc: BTreeMap<Vec<u8>, OutboxBatch> = BTreeMap::new();
        for (seq, record) in self.store.outbox()? {
            let envelope = record
                .envelope
                .ok_or_else(|| CoreError::damaged(self.dir(), "outbox entry without envelope"))?;
            by_doc
                .entry(record.doc_id)
                .or_insert((record.audience, Vec::new()))
                .1
                .push((seq, envelope));
        }
        let mut pushed = 0;
        for (doc_id, (audience, entries)) in by_doc {
            for batch in batches(&entries) {
                let request = PushRequest {
                    doc_id: doc_id.clone(),
                    audience,
                    envelopes: batch.iter().map(|(_, e)| e.clone()).collect(),
                };
                let response = conn
                    .sync
                    .push(request)
                    .await
                    .map_err(|s| conn.error(s))?
                    .into_inner();
                if response.server_seqs.len() != batch.len() {
                    return Err(CoreError::Protocol(
                        "push acknowledged a different number of changes".into(),
                    ));
                }
                let seqs: Vec<u64> = batch.iter().map(|(seq, _)| *seq).collect();
                self.store.remove_from_outbox(&seqs)?;
                pushed += batch.len();
            }
        }
        Ok(pushed)
    }

    /// Pulls one document page by page from its cursor; returns how many changes from other
    /// devices were applied.
    async fn pull(
        &self,
        conn: &mut Connection,
        kind: DocKind,
    ) -> Result<(usize, Option<Snapshot>)> {
        let doc_id = kind.id(&self.identity.keys);
        let mut applied = 0;
        loop {
            let after_seq = self.store.cursor(doc_id)?;
            let request = PullRequest {
                doc_id: doc_id.as_bytes().to_vec(),
                after_seq,
                limit: PULL_PAGE,
                // The last page tells whether a candidate snapshot stands, for auditing.
                with_candidate: true,
            };
            let page = conn
                .sync
                .pull(request)
                .await
                .map_err(|s| conn.error(s))?
                .into_inner();
            applied += self.apply_page(kind, page.snapshot, &page.envelopes)?;
            if !page.more || page.envelopes.is_empty() {
                return Ok((applied, page.candidate));
            }
        }
    }

    /// Opens, validates and applies a page of envelopes (after a snapshot, when the log before
    /// them was pruned), then stores the new state and the cursor in one transaction. Nothing is
    /// stored if anything in the page fails.
    pub(crate) fn apply_page(
        &self,
        kind: DocKind,
        snapshot: Option<Snapshot>,
        envelopes: &[Envelope],
    ) -> Result<usize> {
        let doc_id = kind.id(&self.identity.keys);
        let _documents = self.lock_documents();
        let cursor = self.store.cursor(doc_id)?;
        let snapshot = snapshot.filter(|s| s.covers_seq > cursor);
        let fresh: Vec<&Envelope> = envelopes.iter().filter(|e| e.server_seq > cursor).collect();
        if snapshot.is_none() && fresh.is_empty() {
            return Ok(0);
        }
        // Without a snapshot the page must follow on from the cursor; behind one it starts
        // where the server pruned, which only the server knows. Either way: no gaps.
        let mut previous = if snapshot.is_some() {
            None
        } else {
            Some(cursor)
        };
        let key = kind.key(&self.identity.keys);
        let mut changes = Vec::with_capacity(fresh.len());
        let mut applied = 0;
        for envelope in &fresh {
            if previous.is_some_and(|p| envelope.server_seq != p + 1) {
                return Err(CoreError::Protocol(format!(
                    "the server skipped changes before {} of the {}; try again, and if it repeats the server is misbehaving",
                    envelope.server_seq,
                    kind.name()
                )));
            }
            previous = Some(envelope.server_seq);
            let (ctx, plaintext) = open(&key, self.identity.space, doc_id, envelope)?;
            if ctx.kind != EnvelopeKind::Change {
                return Err(CoreError::Tampered(
                    "a snapshot was sent as a change".into(),
                ));
            }
            if ctx.device != self.identity.device {
                applied += 1;
            }
            changes.push((ctx.device, plaintext));
        }
        let mut loaded = self.load(kind)?;
        if let Some(snapshot) = &snapshot {
            let mut remote = self.open_snapshot(kind, snapshot)?;
            loaded
                .doc
                .merge(&mut remote)
                .map_err(|e| CoreError::InvalidChange(format!("snapshot: {e}")))?;
        }
        let new_changes = apply_remote_changes(&mut loaded.doc, &changes)?;
        let last = fresh.last().map(|e| e.server_seq);
        match (&snapshot, last) {
            (Some(snapshot), last) => {
                // Move by the envelopes, never to `covers_seq`: the page may stop short of it,
                // and the entries in between (which the snapshot may wrongly claim) still come.
                let cursor = last.unwrap_or(snapshot.covers_seq);
                self.store.replace_doc(
                    doc_id,
                    &loaded.doc.save(),
                    &loaded.change_keys,
                    Some(cursor),
                )?;
            }
            (None, Some(last)) => self.store.apply_pulled(doc_id, &new_changes, last)?,
            (None, None) => {}
        }
        Ok(applied)
    }
}
