//! `SyncService`: push, pull and snapshots of encrypted document logs.
//!
//! Push validates every envelope, appends the batch in one store transaction (idempotent on
//! device and client_seq), waits until it is on disk, and only then replies and relays it to
//! subscribers: an acknowledged change is never lost, and no subscriber sees a change that
//! could be. That work runs in a task of its own, so a client that hangs up cannot stop a
//! stored change from being relayed. Pull pages through the log, puts the serving snapshot
//! first where compaction pruned the entries after the cursor, and waits until what it read
//! is durable before it replies. PutSnapshot offers a snapshot to the store's two slots
//! (candidate, then serving, see `Store::put_snapshot`). The audience check (`DocMeta::readable_by`) guards every
//! call, so a partner's device never reads another member's private journal, even encrypted.

use std::sync::Arc;

use kintsugi_proto::v1 as proto;
use kintsugi_proto::v1::sync_service_server::SyncService;
use prost::Message;
use tonic::{Request, Response, Status};

use super::doc_page::{changes_to_proto, read_doc_page};
use super::{State, parse_id};
use crate::auth::{AuthedDevice, authed};
use crate::error::ServiceError;
use crate::ids::{DeviceId, DocId, ServerSeq};
use crate::store::{AppendEnvelopes, Audience, CandidateVerdict, Envelope, NewSnapshot, Store};

/// The sync handlers.
#[derive(Debug, Clone)]
pub(crate) struct SyncApi {
    state: Arc<State>,
}

/// Checks one envelope of a push or snapshot. `label` names it in messages.
fn check_envelope(
    envelope: &proto::Envelope,
    label: &str,
    caller: DeviceId,
    kind: proto::EnvelopeKind,
    max_bytes: usize,
) -> Result<Envelope, ServiceError> {
    let device = parse_id(
        &envelope.device_id,
        &format!("{label}: device_id"),
        DeviceId::from_slice,
    )?;
    if device != caller {
        return Err(ServiceError::PermissionDenied(format!(
            "{label}: device_id is not the calling device; a device sends only its own envelopes"
        )));
    }
    if envelope.client_seq == 0 {
        return Err(ServiceError::invalid(format!(
            "{label}: client_seq must be at least 1"
        )));
    }
    if envelope.kind != kind as i32 {
        return Err(ServiceError::invalid(format!(
            "{label}: kind must be {}",
            kind.as_str_name()
        )));
    }
    if envelope.nonce.len() != 24 {
        return Err(ServiceError::invalid(format!(
            "{label}: nonce must be 24 bytes, got {}",
            envelope.nonce.len()
        )));
    }
    if envelope.ciphertext.is_empty() {
        return Err(ServiceError::invalid(format!(
            "{label}: ciphertext is empty"
        )));
    }
    if envelope.ciphertext.len() > max_bytes {
        return Err(ServiceError::invalid(format!(
            "{label}: ciphertext is {} bytes, over the limit of {max_bytes}; split the change \
             or store a snapshot",
            envelope.ciphertext.len()
        )));
    }
    Ok(Envelope {
        device_id: device,
        client_seq: envelope.client_seq,
        nonce: envelope.nonce.clone(),
        ciphertext: envelope.ciphertext.clone(),
        signature: envelope.signature.clone(),
        key_epoch: envelope.key_epoch,
    })
}

/// The position a roster push names: one signed entry, whose `seq` must be the log's length
/// for the server to append it (the chain's order is the log's order).
fn roster_position(envelopes: &[proto::Envelope]) -> Result<u64, ServiceError> {
    let [envelope] = envelopes else {
        return Err(ServiceError::invalid(
            "a roster push carries exactly one entry",
        ));
    };
    let entry = proto::SignedRosterEntry::decode(envelope.ciphertext.as_slice())
        .ok()
        .and_then(|signed| proto::RosterEntry::decode(signed.entry.as_slice()).ok())
        .ok_or_else(|| ServiceError::invalid("a roster push carries a signed roster entry"))?;
    Ok(entry.seq)
}

fn audience_name(audience: Audience) -> &'static str {
    match audience {
        Audience::Shared => "shared",
        Audience::Private => "private",
    }
}

/// A member's verdict on a candidate snapshot, from a request's fields.
fn verdict(
    who: &AuthedDevice,
    doc_id: &[u8],
    covers_seq: u64,
    content_hash: &[u8],
) -> Result<CandidateVerdict, ServiceError> {
    let doc_id = parse_id(doc_id, "doc_id", DocId::from_slice)?;
    let content_hash = <[u8; 32]>::try_from(content_hash).map_err(|_| {
        ServiceError::invalid("content_hash must be the 32-byte SHA-256 of the candidate snapshot")
    })?;
    Ok(CandidateVerdict {
        space_id: who.space_id,
        doc_id,
        member_id: who.member_id,
        device_id: who.device_id,
        covers_seq: ServerSeq(covers_seq),
        content_hash,
    })
}

impl SyncApi {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self { state }
    }

    pub(crate) async fn push(
        &self,
        who: AuthedDevice,
        request: proto::PushRequest,
    ) -> Result<proto::PushResponse, ServiceError> {
        let config = &self.state.config;
        let doc = parse_id(&request.doc_id, "doc_id", DocId::from_slice)?;
        let audience = match proto::Audience::try_from(request.audience) {
            Ok(proto::Audience::Shared) => Audience::Shared,
            Ok(proto::Audience::Private) => Audience::Private,
            _ => {
                return Err(ServiceError::invalid(
                    "audience must be AUDIENCE_SHARED or AUDIENCE_PRIVATE",
                ));
            }
        };
        if audience != doc.audience() {
            return Err(ServiceError::PermissionDenied(format!(
                "document {doc} is {}: its id says so, and no push can change that",
                audience_name(doc.audience())
            )));
        }
        let count = request.envelopes.len();
        if count == 0 || count > config.max_envelopes_per_push {
            return Err(ServiceError::invalid(format!(
                "a push carries 1 to {} envelopes, got {count}; split it",
                config.max_envelopes_per_push
            )));
        }
        let (kind, expect_head) = if doc == DocId::ROSTER {
            (
                proto::EnvelopeKind::Roster,
                Some(roster_position(&request.envelopes)?),
            )
        } else {
            (proto::EnvelopeKind::Change, None)
        };
        let envelopes = request
            .envelopes
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let label = format!("envelope {i}");
                check_envelope(e, &label, who.device_id, kind, config.max_envelope_bytes)
            })
            .collect::<Result<Vec<_>, _>>()?;
        drop(request);
        let append = AppendEnvelopes {
            space_id: who.space_id,
            doc_id: doc,
            audience,
            member_id: who.member_id,
            envelopes,
            now: self.state.clock.now(),
            quota_bytes: config.space_quota_bytes,
            expect_head,
        };
        // Once queued the work belongs to the pipeline: a client that goes away cancels only
        // this wait, and what was stored is still made durable and relayed.
        let server_seqs = self.state.pushes.push(who, append).await?;
        Ok(proto::PushResponse { server_seqs })
    }

    pub(crate) async fn pull(
        &self,
        who: AuthedDevice,
        request: proto::PullRequest,
    ) -> Result<proto::PullResponse, ServiceError> {
        let doc = parse_id(&request.doc_id, "doc_id", DocId::from_slice)?;
        let page_limit = self.state.config.pull_page_limit.max(1);
        let limit = if request.limit == 0 {
            page_limit
        } else {
            request.limit.min(page_limit)
        } as usize;
        let budget = self.state.config.page_budget_bytes();
        let after = request.after_seq;
        let key = (who.space_id, doc, who.member_id);
        let page = self
            .state
            .blocking(move |state| read_doc_page(state.store.as_ref(), key, after, limit, budget))
            .await?;
        let Some(page) = page else {
            return Ok(proto::PullResponse::default());
        };
        let candidate = if request.with_candidate {
            let (space, doc) = (who.space_id, doc);
            self.state
                .blocking(move |state| Ok(state.store.candidate_snapshot(space, doc)?))
                .await?
                .as_ref()
                .map(super::doc_page::snapshot_to_proto)
        } else {
            None
        };
        if !page.is_empty() {
            // The page may hold entries whose push is not durable yet; a crash could give their
            // seqs to other envelopes after this device moved its cursor past them.
            self.state.durable().await?;
        }
        Ok(proto::PullResponse {
            snapshot: page.proto_snapshot(),
            envelopes: changes_to_proto(doc, &page.envelopes),
            more: page.more,
            head_seq: page.meta.head_seq.0,
            candidate,
        })
    }

    /// Drops a candidate snapshot a member's device found wanting (docs/protocol.md §8).
    pub(crate) async fn reject_snapshot(
        &self,
        who: AuthedDevice,
        request: proto::RejectSnapshotRequest,
    ) -> Result<proto::RejectSnapshotResponse, ServiceError> {
        let verdict = verdict(
            &who,
            &request.doc_id,
            request.covers_seq,
            &request.content_hash,
        )?;
        let rejected = self
            .record(verdict, |store, v| store.reject_candidate(v))
            .await?;
        if rejected {
            tracing::warn!(space = %who.space_id, doc = %verdict.doc_id, device = %who.device_id, covers_seq = request.covers_seq, "a member's device rejected a candidate snapshot");
        }
        Ok(proto::RejectSnapshotResponse { rejected })
    }

    /// Records a member's endorsement of a candidate snapshot; compacts once every reader
    /// endorsed it and it stood its window (docs/protocol.md §8).
    pub(crate) async fn endorse_snapshot(
        &self,
        who: AuthedDevice,
        request: proto::EndorseSnapshotRequest,
    ) -> Result<proto::EndorseSnapshotResponse, ServiceError> {
        let verdict = verdict(
            &who,
            &request.doc_id,
            request.covers_seq,
            &request.content_hash,
        )?;
        let endorsed = self
            .record(verdict, |store, v| store.endorse_candidate(v))
            .await?;
        if endorsed {
            tracing::debug!(space = %who.space_id, doc = %verdict.doc_id, covers_seq = request.covers_seq, "a member endorsed a candidate snapshot");
            let now = self.state.clock.now();
            let retention = self.state.config.snapshot_retention;
            let (space, doc) = (who.space_id, verdict.doc_id);
            self.state
                .blocking(move |state| Ok(state.store.compact(space, doc, now, retention)?))
                .await?;
        }
        Ok(proto::EndorseSnapshotResponse { endorsed })
    }

    /// Records a verdict with `apply` (reject or endorse) and, when it changed anything, waits
    /// until that is durable. Returns whether it applied to the current candidate.
    async fn record(
        &self,
        verdict: CandidateVerdict,
        apply: fn(&dyn Store, CandidateVerdict) -> Result<bool, crate::store::StoreError>,
    ) -> Result<bool, ServiceError> {
        let applied = self
            .state
            .blocking(move |state| Ok(apply(state.store.as_ref(), verdict)?))
            .await?;
        if applied {
            self.state.durable().await?;
        }
        Ok(applied)
    }

    pub(crate) async fn put_snapshot(
        &self,
        who: AuthedDevice,
        request: proto::PutSnapshotRequest,
    ) -> Result<proto::PutSnapshotResponse, ServiceError> {
        let doc = parse_id(&request.doc_id, "doc_id", DocId::from_slice)?;
        if doc == DocId::ROSTER {
            return Err(ServiceError::FailedPrecondition(
                "the roster log is kept whole: every device verifies it from its first entry"
                    .into(),
            ));
        }
        if request.covers_seq == 0 {
            return Err(ServiceError::invalid("covers_seq must be at least 1"));
        }
        let envelope = request
            .envelope
            .as_ref()
            .ok_or_else(|| ServiceError::invalid("a snapshot needs its envelope"))?;
        let max_bytes = self.state.config.max_snapshot_bytes();
        let envelope = check_envelope(
            envelope,
            "snapshot envelope",
            who.device_id,
            proto::EnvelopeKind::Snapshot,
            max_bytes,
        )?;
        let now = self.state.clock.now();
        let retention = self.state.config.snapshot_retention;
        let snapshot = NewSnapshot {
            space_id: who.space_id,
            doc_id: doc,
            member_id: who.member_id,
            covers_seq: ServerSeq(request.covers_seq),
            envelope,
            now,
            retention,
            quota_bytes: self.state.config.space_quota_bytes,
        };
        // The store applies the two-slot rule in one transaction: a young candidate stands, a
        // candidate that stood its window is promoted to serving, and the new snapshot becomes
        // the candidate if it covers more (see `Store::put_snapshot`).
        let put = self
            .state
            .blocking(move |state| Ok(state.store.put_snapshot(snapshot)?))
            .await?;
        if put.promoted || put.kept {
            self.state.durable().await?;
        }
        if put.promoted {
            // Pruning follows the promotion only once it is durable, so nothing is deleted that
            // only a lost promotion would have covered.
            let pruned = self
                .state
                .blocking(move |state| {
                    Ok(state.store.compact(who.space_id, doc, now, retention)?)
                })
                .await?;
            tracing::debug!(space = %who.space_id, doc = %doc, pruned_through = %pruned, "candidate snapshot promoted");
        }
        if put.kept {
            tracing::debug!(space = %who.space_id, doc = %doc, covers_seq = request.covers_seq, "snapshot stored as the candidate");
        } else {
            tracing::debug!(space = %who.space_id, doc = %doc, covers_seq = request.covers_seq, "a younger candidate stands, or this snapshot is not newer; not kept");
        }
        Ok(proto::PutSnapshotResponse {})
    }
}

#[tonic::async_trait]
impl SyncService for SyncApi {
    async fn push(
        &self,
        request: Request<proto::PushRequest>,
    ) -> Result<Response<proto::PushResponse>, Status> {
        let who = authed(&request)?;
        Ok(Response::new(self.push(who, request.into_inner()).await?))
    }

    async fn pull(
        &self,
        request: Request<proto::PullRequest>,
    ) -> Result<Response<proto::PullResponse>, Status> {
        let who = authed(&request)?;
        Ok(Response::new(self.pull(who, request.into_inner()).await?))
    }

    type SubscribeStream = super::stream_queue::EventStream;

    async fn subscribe(
        &self,
        request: Request<proto::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let who = authed(&request)?;
        let stream = super::subscribe::open(self.state.clone(), who, request.into_inner()).await?;
        Ok(Response::new(stream))
    }

    async fn put_snapshot(
        &self,
        request: Request<proto::PutSnapshotRequest>,
    ) -> Result<Response<proto::PutSnapshotResponse>, Status> {
        let who = authed(&request)?;
        Ok(Response::new(
            self.put_snapshot(who, request.into_inner()).await?,
        ))
    }

    async fn reject_snapshot(
        &self,
        request: Request<proto::RejectSnapshotRequest>,
    ) -> Result<Response<proto::RejectSnapshotResponse>, Status> {
        let who = authed(&request)?;
        Ok(Response::new(
            self.reject_snapshot(who, request.into_inner()).await?,
        ))
    }

    async fn endorse_snapshot(
        &self,
        request: Request<proto::EndorseSnapshotRequest>,
    ) -> Result<Response<proto::EndorseSnapshotResponse>, Status> {
        let who = authed(&request)?;
        Ok(Response::new(
            self.endorse_snapshot(who, request.into_inner()).await?,
        ))
    }
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
