//! One sync round: push the outbox, then pull and apply every document, each on its own: one
//! document's failure is reported for it, and the others still sync.

use std::collections::BTreeMap;
use std::sync::Arc;

use kintsugi_proto::v1::{Audience, Envelope, PullRequest, PushRequest, Snapshot};

use super::client::Connection;
use super::page::Applied;
use super::report::{DocFailure, SetAside, SyncReport};
use super::roster::DeviceView;
use super::snapshot::Verdict;
use crate::docs::DocKind;
use crate::error::{CoreError, Result};
use crate::ids::DocId;
use crate::replica::Replica;

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
type OutboxBatch = (Audience, Vec<(u64, Envelope)>);

/// Errors that stop the whole sync: the server cannot be reached or does not know this device.
/// Anything else concerns one document and is reported for it while the others sync.
pub(crate) fn stops_everything(error: &CoreError) -> bool {
    matches!(
        error,
        CoreError::Unreachable { .. }
            | CoreError::Unauthenticated(_)
            | CoreError::Untrusted { .. }
            | CoreError::RosterRefused(_)
    )
}

impl Replica {
    /// Pushes every local change, then pulls and applies every document. One document that
    /// fails (a refused push, a page the server garbled) is reported in the result's `failed`
    /// and the others still sync; only losing the server or this device's access fails it all.
    pub async fn sync(self: &Arc<Self>) -> Result<SyncReport> {
        let mut conn = self.connect().await?;
        self.pull_roster(&mut conn).await?;
        self.finish_enrolment(&mut conn).await?;
        self.renew_owed_epochs(&mut conn).await?;
        let mut report = self.push_outbox(&mut conn).await?;
        for kind in DocKind::ALL {
            match self.sync_doc(&mut conn, kind).await {
                Ok(done) => report += done,
                Err(error) if stops_everything(&error) => return Err(error),
                Err(error) => report.failed.push(DocFailure {
                    doc: kind.name(),
                    error: error.to_string(),
                }),
            }
        }
        match self.roster_changes(&mut conn).await {
            Ok((changes, devices)) => {
                report.roster = changes;
                name_senders(&mut report.set_aside, &devices);
            }
            Err(error) if stops_everything(&error) => return Err(error),
            Err(error) => tracing::warn!(%error, "could not read the device list"),
        }
        Ok(report)
    }

    /// Pulls and applies one document, audits its candidate snapshot, and offers one.
    async fn sync_doc(
        self: &Arc<Self>,
        conn: &mut Connection,
        kind: DocKind,
    ) -> Result<SyncReport> {
        let (applied, candidate) = self.pull(conn, kind).await?;
        let mut report = SyncReport {
            pulled: applied.received.len(),
            set_aside: applied.set_aside,
            ..SyncReport::default()
        };
        if let Some(candidate) = candidate {
            match self.audit_candidate(conn, kind, &candidate).await {
                Ok(Verdict::Rejected) => report.rejected_snapshots += 1,
                Ok(Verdict::Endorsed) => report.endorsed_snapshots += 1,
                Ok(Verdict::Skipped) => {}
                Err(error) if stops_everything(&error) => return Err(error),
                Err(error) => {
                    tracing::warn!(doc = kind.name(), %error, "could not audit a candidate snapshot")
                }
            }
        }
        // Compaction is a courtesy to the server: a refused or failed snapshot must not
        // fail the sync, which already did what the user asked.
        if let Err(error) = self.maybe_put_snapshot(conn, kind).await {
            tracing::warn!(doc = kind.name(), %error, "the server did not take a snapshot");
        }
        Ok(report)
    }

    /// Pushes the outbox, document by document, oldest first. A document whose push is
    /// refused is reported in `failed` (its changes stay in the outbox); the others go on.
    pub(crate) async fn push_outbox(self: &Arc<Self>, conn: &mut Connection) -> Result<SyncReport> {
        let by_doc = self.off_runtime(Replica::outbox_by_doc).await?;
        let mut report = SyncReport::default();
        for (doc_id, (audience, entries)) in by_doc {
            match self.push_doc(conn, doc_id, audience, &entries).await {
                Ok(pushed) => report.pushed += pushed,
                Err(error) if stops_everything(&error) => return Err(error),
                Err(error) => report.failed.push(DocFailure {
                    doc: self.doc_name(doc_id),
                    error: error.to_string(),
                }),
            }
        }
        Ok(report)
    }

    /// The outbox by document, each envelope sealed under the newest epoch.
    fn outbox_by_doc(&self) -> Result<BTreeMap<DocId, OutboxBatch>> {
        let mut by_doc: BTreeMap<DocId, OutboxBatch> = BTreeMap::new();
        for (seq, pending) in self.store.outbox()? {
            let envelope = self.under_newest_epoch(seq, pending.doc_id, pending.envelope)?;
            by_doc
                .entry(pending.doc_id)
                .or_insert((pending.audience, Vec::new()))
                .1
                .push((seq, envelope));
        }
        Ok(by_doc)
    }

    /// Pushes one document's pending envelopes in batches; returns how many were acknowledged.
    async fn push_doc(
        self: &Arc<Self>,
        conn: &mut Connection,
        doc_id: DocId,
        audience: Audience,
        entries: &[(u64, Envelope)],
    ) -> Result<usize> {
        let mut pushed = 0;
        for batch in batches(entries) {
            let request = PushRequest {
                doc_id: doc_id.as_bytes().to_vec(),
                audience: audience.into(),
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
            self.off_runtime(move |replica| replica.store.remove_from_outbox(&seqs))
                .await?;
            pushed += batch.len();
        }
        Ok(pushed)
    }

    /// The name of one of this device's documents, by id.
    fn doc_name(&self, doc_id: DocId) -> &'static str {
        self.identity
            .keys
            .kind_of(doc_id.as_bytes())
            .map_or("unknown document", DocKind::name)
    }

    /// Pulls one document page by page from its cursor; returns how many changes from other
    /// devices were applied.
    async fn pull(
        self: &Arc<Self>,
        conn: &mut Connection,
        kind: DocKind,
    ) -> Result<(Applied, Option<Snapshot>)> {
        let doc_id = self.identity.keys.doc_id(kind);
        let mut applied = Applied::default();
        loop {
            let after_seq = self.store.cursor(doc_id)?;
            // The last page tells whether a candidate snapshot stands, for auditing.
            let page = pull_page(conn, doc_id, after_seq, true).await?;
            if !self.knows_epochs_of(kind, &page.envelopes)? {
                self.pull_roster(conn).await?;
            }
            let (more, candidate) = (page.more && !page.envelopes.is_empty(), page.candidate);
            let (snapshot, envelopes) = (page.snapshot, page.envelopes);
            let page_applied = self
                .off_runtime(move |replica| replica.apply_page(kind, snapshot, &envelopes))
                .await?;
            applied.received.extend(page_applied.received);
            applied.set_aside.extend(page_applied.set_aside);
            applied.cursor = page_applied.cursor;
            if !more {
                return Ok((applied, candidate));
            }
        }
    }
}

/// One page of a document's log after `after_seq`, with the candidate snapshot if asked.
pub(crate) async fn pull_page(
    conn: &mut Connection,
    doc_id: crate::ids::DocId,
    after_seq: u64,
    with_candidate: bool,
) -> Result<kintsugi_proto::v1::PullResponse> {
    let request = PullRequest {
        doc_id: doc_id.as_bytes().to_vec(),
        after_seq,
        limit: PULL_PAGE,
        with_candidate,
    };
    let page = conn.sync.pull(request).await.map_err(|s| conn.error(s))?;
    Ok(page.into_inner())
}

/// Names the sender of each set-aside envelope from the device list. Whose device it is comes
/// from its member id, not from a name its owner chose, so a partner cannot pass his device off
/// as one of this member's by naming it so.
fn name_senders(set_aside: &mut [SetAside], devices: &[DeviceView]) {
    for entry in set_aside {
        if let Some(device) = devices.iter().find(|d| d.id == entry.device) {
            let whose = if device.mine {
                "your device"
            } else {
                "your partner's device"
            };
            entry.sender = Some(format!("{whose} {} ({})", device.name, device.member));
        }
    }
}
