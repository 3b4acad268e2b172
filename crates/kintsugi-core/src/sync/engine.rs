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
/// Envelopes per pull page.
const PULL_PAGE: u32 = 1000;

/// A document's audience and its pending envelopes with their client sequence numbers.
type OutboxBatch = (i32, Vec<(u64, Envelope)>);

/// What one sync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Local changes the server acknowledged.
    pub pushed: usize,
    /// Changes from other devices applied here.
    pub pulled: usize,
}

impl std::ops::AddAssign for SyncReport {
    fn add_assign(&mut self, other: Self) {
        self.pushed += other.pushed;
        self.pulled += other.pulled;
    }
}

impl Device {
    /// Pushes every local change, then pulls and applies every document.
    pub async fn sync(&self) -> Result<SyncReport> {
        let mut conn = self.connect().await?;
        let pushed = self.push_outbox(&mut conn).await?;
        let mut pulled = 0;
        for kind in DocKind::ALL {
            pulled += self.pull(&mut conn, kind).await?;
            self.maybe_put_snapshot(&mut conn, kind).await?;
        }
        Ok(SyncReport { pushed, pulled })
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
            for batch in entries.chunks(PUSH_BATCH) {
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
    async fn pull(&self, conn: &mut Connection, kind: DocKind) -> Result<usize> {
        let doc_id = kind.id(&self.identity.keys);
        let mut applied = 0;
        loop {
            let after_seq = self.store.cursor(doc_id)?;
            let request = PullRequest {
                doc_id: doc_id.as_bytes().to_vec(),
                after_seq,
                limit: PULL_PAGE,
            };
            let page = conn
                .sync
                .pull(request)
                .await
                .map_err(|s| conn.error(s))?
                .into_inner();
            applied += self.apply_page(kind, page.snapshot, &page.envelopes)?;
            if !page.more || page.envelopes.is_empty() {
                return Ok(applied);
            }
        }
    }

    /// Opens, validates and applies a page of envelopes (and a snapshot, if the log before them
    /// was pruned), then stores the new changes and the cursor together. Nothing is stored if
    /// any envelope fails.
    pub(crate) fn apply_page(
        &self,
        kind: DocKind,
        snapshot: Option<Snapshot>,
        envelopes: &[Envelope],
    ) -> Result<usize> {
        let doc_id = kind.id(&self.identity.keys);
        let mut cursor = self.store.cursor(doc_id)?;
        let mut applied = 0;
        if let Some(snapshot) = snapshot
            && snapshot.covers_seq > cursor
        {
            self.load_snapshot(kind, &snapshot)?;
            cursor = snapshot.covers_seq;
        }
        let fresh: Vec<&Envelope> = envelopes.iter().filter(|e| e.server_seq > cursor).collect();
        let Some(last) = fresh.last() else {
            return Ok(applied);
        };
        let key = kind.key(&self.identity.keys);
        let mut plaintexts = Vec::with_capacity(fresh.len());
        let mut previous = cursor;
        for envelope in &fresh {
            if envelope.server_seq <= previous {
                return Err(CoreError::Protocol(
                    "the server sent envelopes out of order".into(),
                ));
            }
            previous = envelope.server_seq;
            let (ctx, plaintext) = open(&key, self.identity.space, doc_id, envelope)?;
            if ctx.kind != EnvelopeKind::Change {
                return Err(CoreError::Tampered(
                    "a snapshot was sent as a change".into(),
                ));
            }
            if ctx.device != self.identity.device {
                applied += 1;
            }
            plaintexts.push(plaintext);
        }
        let mut doc = self.load(kind)?.doc;
        let new_changes = apply_remote_changes(&mut doc, &plaintexts)?;
        self.store
            .apply_pulled(doc_id, &new_changes, last.server_seq)?;
        Ok(applied)
    }
}
