//! Documents in the sled backend: the append-only log, its dedup index, snapshots, compaction.
//!
//! An append runs in one transaction over `docs`, `log` and `dedup`: the document record
//! carries `head_seq`, so two concurrent pushes to one document conflict and sled retries one
//! of them, which keeps seqs dense (1, 2, 3 ...) and in commit order.
//!
//! Snapshots live in two slots per document: the *candidate* (`candidates`), the newest one
//! accepted, which must stand the whole retention window before anything it covers may go, and
//! the *serving* one (`snapshots`), which did, and which a device behind the pruned part of the
//! log receives. Compaction promotes a candidate that has stood its window, records
//! `pruned_through` (at most the serving snapshot's `covers_seq`), makes both durable, and only
//! then deletes entries, so a crash in between leaves extra entries, never a gap that the
//! serving snapshot does not explain.

use prost::Message;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::records::{self, DedupRecord, DocRecord, LogRecord, SnapshotRecord};
use super::sled_store::{Opened, abort, settled};
use super::sled_usage::{self, snapshot_record_bytes};
use super::{
    AppendEnvelopes, Appended, DocMeta, EnvelopePage, NewSnapshot, SequencedEnvelope, SnapshotPut,
    StoreError, StoredSnapshot,
};
use crate::ids::{DocId, MemberId, ServerSeq, SpaceId};

fn meta_from_record(record: DocRecord) -> Result<DocMeta, StoreError> {
    Ok(DocMeta {
        audience: records::audience_from_i32(record.audience)?,
        owner: records::member_id("docs", &record.owner_member_id)?,
        head_seq: ServerSeq(record.head_seq),
        pruned_through: ServerSeq(record.pruned_through),
        created_at: record.created_at,
    })
}

fn meta_to_record(meta: &DocMeta) -> Vec<u8> {
    DocRecord {
        audience: records::audience_to_i32(meta.audience),
        owner_member_id: meta.owner.to_vec(),
        head_seq: meta.head_seq.0,
        pruned_through: meta.pruned_through.0,
        created_at: meta.created_at,
    }
    .encode_to_vec()
}

fn decode_meta(bytes: &[u8]) -> Result<DocMeta, StoreError> {
    meta_from_record(records::decode("docs", bytes)?)
}

/// An envelope prepared outside the transaction, because sled may run the closure twice.
struct Prepared {
    log_record: Vec<u8>,
    dedup_key: [u8; 56],
    content_hash: Vec<u8>,
    client_seq: u64,
    bytes: u64,
}

/// The bytes an envelope counts against its space's quota: nonce and ciphertext.
pub(super) fn stored_bytes(nonce: &[u8], ciphertext: &[u8]) -> u64 {
    (nonce.len() as u64).saturating_add(ciphertext.len() as u64)
}

impl Opened {
    pub(super) fn read_doc_meta(
        &self,
        space: SpaceId,
        doc: DocId,
    ) -> Result<Option<DocMeta>, StoreError> {
        match self.trees.docs.get(records::doc_key(space, doc))? {
            Some(bytes) => decode_meta(&bytes).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn scan_docs(&self, space: SpaceId) -> Result<Vec<(DocId, DocMeta)>, StoreError> {
        let mut docs = Vec::new();
        for item in self.trees.docs.scan_prefix(space.as_bytes()) {
            let (key, value) = item?;
            let (_, doc) = records::split_pair_key("docs", &key)?;
            docs.push((DocId(doc), decode_meta(&value)?));
        }
        Ok(docs)
    }

    pub(super) fn append_to_log(&self, append: AppendEnvelopes) -> Result<Appended, StoreError> {
        let AppendEnvelopes {
            space_id: space,
            doc_id: doc,
            audience,
            member_id: member,
            envelopes,
            now,
            quota_bytes,
        } = append;
        let doc_key = records::doc_key(space, doc);
        let prepared: Vec<Prepared> = envelopes
            .iter()
            .map(|envelope| Prepared {
                log_record: LogRecord {
                    device_id: envelope.device_id.to_vec(),
                    client_seq: envelope.client_seq,
                    nonce: envelope.nonce.clone(),
                    ciphertext: envelope.ciphertext.clone(),
                    appended_at: now,
                }
                .encode_to_vec(),
                dedup_key: records::dedup_key(space, doc, envelope.device_id, envelope.client_seq),
                content_hash: records::content_hash(envelope),
                client_seq: envelope.client_seq,
                bytes: stored_bytes(&envelope.nonce, &envelope.ciphertext),
            })
            .collect();
        let t = &self.trees;
        let member_key = records::pair_key(space, member.as_bytes());
        let (server_seqs, fresh_positions, meta) = settled(
            (&t.docs, &t.log, &t.dedup, &t.usage, &t.members).transaction(
                |(docs, log, dedup, usage, members)| {
                    let mut meta = match docs.get(doc_key)? {
                        Some(bytes) => {
                            decode_meta(&bytes).map_err(ConflictableTransactionError::Abort)?
                        }
                        None => DocMeta {
                            audience,
                            owner: member,
                            head_seq: ServerSeq(0),
                            pruned_through: ServerSeq(0),
                            created_at: now,
                        },
                    };
                    // Ownership before audience: a mismatch message would tell a stranger that the
                    // document is private.
                    if !meta.readable_by(member) {
                        return abort(StoreError::PrivateDocument);
                    }
                    if meta.audience != audience {
                        return abort(StoreError::AudienceFixed {
                            recorded: meta.audience,
                        });
                    }
                    // A member who left while this push waited must not recreate their documents.
                    if members.get(member_key)?.is_none() {
                        return abort(StoreError::UnknownMember);
                    }
                    let mut seqs = Vec::with_capacity(prepared.len());
                    let mut fresh = Vec::new();
                    let mut fresh_bytes = 0u64;
                    for (position, item) in prepared.iter().enumerate() {
                        if let Some(bytes) = dedup.get(item.dedup_key)? {
                            let seen: DedupRecord = records::decode("dedup", &bytes)
                                .map_err(ConflictableTransactionError::Abort)?;
                            if seen.content_hash != item.content_hash {
                                return abort(StoreError::ClientSeqReused {
                                    client_seq: item.client_seq,
                                });
                            }
                            seqs.push(ServerSeq(seen.server_seq));
                            continue;
                        }
                        let seq = meta.head_seq.next();
                        meta.head_seq = seq;
                        log.insert(
                            &records::log_key(space, doc, seq)[..],
                            item.log_record.clone(),
                        )?;
                        let seen = DedupRecord {
                            server_seq: seq.0,
                            content_hash: item.content_hash.clone(),
                        };
                        dedup.insert(&item.dedup_key[..], seen.encode_to_vec())?;
                        seqs.push(seq);
                        fresh.push(position);
                        fresh_bytes = fresh_bytes.saturating_add(item.bytes);
                    }
                    if fresh_bytes > 0 {
                        let used = sled_usage::get(usage, space)?;
                        if used.saturating_add(fresh_bytes) > quota_bytes {
                            return abort(StoreError::QuotaExceeded {
                                used,
                                quota: quota_bytes,
                                needed: fresh_bytes,
                            });
                        }
                        sled_usage::set(usage, space, used.saturating_add(fresh_bytes))?;
                    }
                    docs.insert(&doc_key[..], meta_to_record(&meta))?;
                    Ok((seqs, fresh, meta))
                },
            ),
        )?;
        // Fresh envelopes got new seqs, above every earlier one; the others are retries, which
        // got their original seqs back (the same bytes, as the dedup hash proved).
        let mut fresh = Vec::with_capacity(fresh_positions.len());
        let mut retried: Vec<SequencedEnvelope> = Vec::new();
        let mut fresh_positions = fresh_positions.into_iter().peekable();
        for (position, (envelope, &server_seq)) in
            envelopes.into_iter().zip(&server_seqs).enumerate()
        {
            let entry = SequencedEnvelope {
                server_seq,
                envelope,
            };
            if fresh_positions.next_if_eq(&position).is_some() {
                fresh.push(entry);
            } else {
                retried.push(entry);
            }
        }
        // A duplicate inside one push, or of a fresh envelope of this push, is listed once.
        retried.sort_by_key(|e| e.server_seq);
        retried.dedup_by_key(|e| e.server_seq);
        retried.retain(|e| {
            fresh
                .binary_search_by_key(&e.server_seq, |f| f.server_seq)
                .is_err()
        });
        Ok(Appended {
            server_seqs,
            fresh,
            retried,
            meta,
        })
    }

    pub(super) fn read_log(
        &self,
        space: SpaceId,
        doc: DocId,
        after: ServerSeq,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<EnvelopePage, StoreError> {
        let mut page = EnvelopePage::default();
        if after.0 == u64::MAX {
            return Ok(page);
        }
        let start = records::log_key(space, doc, after.next());
        let end = records::log_key(space, doc, ServerSeq(u64::MAX));
        let mut bytes = 0usize;
        for item in self.trees.log.range(start..=end) {
            let (key, value) = item?;
            if page.envelopes.len() >= max_count {
                page.more = true;
                break;
            }
            let envelope = records::decode::<LogRecord>("log", &value)?.envelope()?;
            let size = envelope.wire_size();
            // Always at least one entry, or a client could never get past a big one.
            if !page.envelopes.is_empty() && bytes.saturating_add(size) > max_bytes {
                page.more = true;
                break;
            }
            bytes = bytes.saturating_add(size);
            page.envelopes.push(SequencedEnvelope {
                server_seq: records::seq_of_log_key(&key)?,
                envelope,
            });
        }
        Ok(page)
    }

    pub(super) fn read_snapshot(
        &self,
        space: SpaceId,
        doc: DocId,
        slot: Slot,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let Some(bytes) = self.slot_tree(slot).get(records::doc_key(space, doc))? else {
            return Ok(None);
        };
        let record: SnapshotRecord = records::decode(slot.tree_name(), &bytes)?;
        let (covers_seq, stored_at) = (ServerSeq(record.covers_seq), record.stored_at);
        Ok(Some(StoredSnapshot {
            covers_seq,
            stored_at,
            envelope: record.envelope()?,
        }))
    }

    fn slot_tree(&self, slot: Slot) -> &sled::Tree {
        match slot {
            Slot::Serving => &self.trees.snapshots,
            Slot::Candidate => &self.trees.candidates,
        }
    }

    /// The two-slot rule of `Store::put_snapshot`, in one transaction.
    pub(super) fn store_snapshot(&self, snapshot: NewSnapshot) -> Result<SnapshotPut, StoreError> {
        let key = records::doc_key(snapshot.space_id, snapshot.doc_id);
        let record = SnapshotRecord {
            covers_seq: snapshot.covers_seq.0,
            device_id: snapshot.envelope.device_id.to_vec(),
            client_seq: snapshot.envelope.client_seq,
            nonce: snapshot.envelope.nonce.clone(),
            ciphertext: snapshot.envelope.ciphertext.clone(),
            stored_at: snapshot.now,
        }
        .encode_to_vec();
        let new_bytes = stored_bytes(&snapshot.envelope.nonce, &snapshot.envelope.ciphertext);
        let member_key = records::pair_key(snapshot.space_id, snapshot.member_id.as_bytes());
        let (now, retention) = (snapshot.now, snapshot.retention_secs);
        let t = &self.trees;
        settled(
            (&t.docs, &t.snapshots, &t.candidates, &t.usage, &t.members).transaction(
                |(docs, serving, candidates, usage, members)| {
                    let Some(bytes) = docs.get(key)? else {
                        return abort(StoreError::UnknownDocument);
                    };
                    let meta = decode_meta(&bytes).map_err(ConflictableTransactionError::Abort)?;
                    if !meta.readable_by(snapshot.member_id) {
                        return abort(StoreError::PrivateDocument);
                    }
                    if members.get(member_key)?.is_none() {
                        return abort(StoreError::UnknownMember);
                    }
                    if snapshot.covers_seq > meta.head_seq {
                        return abort(StoreError::SnapshotBeyondHead {
                            covers_seq: snapshot.covers_seq.0,
                            head_seq: meta.head_seq.0,
                        });
                    }
                    let mut outcome = SnapshotPut::default();
                    let used_before = sled_usage::get(usage, snapshot.space_id)?;
                    let mut used = used_before;
                    // The newest snapshot stored: the new one must cover more to be kept.
                    let mut newest = 0;
                    if let Some(bytes) = candidates.get(key)? {
                        let candidate: SnapshotRecord = records::decode("candidates", &bytes)
                            .map_err(ConflictableTransactionError::Abort)?;
                        if !has_stood(candidate.stored_at, now, retention) {
                            // A young candidate stands: a frequent writer cannot restart its
                            // window for ever, and a bad snapshot cannot push out a good one.
                            return Ok(outcome);
                        }
                        if let Some(old) = serving.insert(&key[..], bytes)? {
                            used = used.saturating_sub(snapshot_record_bytes(&old).unwrap_or(0));
                        }
                        candidates.remove(&key[..])?;
                        newest = candidate.covers_seq;
                        outcome.promoted = true;
                    } else if let Some(bytes) = serving.get(key)? {
                        let stored: SnapshotRecord = records::decode("snapshots", &bytes)
                            .map_err(ConflictableTransactionError::Abort)?;
                        newest = stored.covers_seq;
                    }
                    if snapshot.covers_seq.0 > newest {
                        if used.saturating_add(new_bytes) > snapshot.quota_bytes {
                            return abort(StoreError::QuotaExceeded {
                                used,
                                quota: snapshot.quota_bytes,
                                needed: new_bytes,
                            });
                        }
                        used = used.saturating_add(new_bytes);
                        candidates.insert(&key[..], record.clone())?;
                        outcome.kept = true;
                    }
                    if used != used_before {
                        sled_usage::set(usage, snapshot.space_id, used)?;
                    }
                    Ok(outcome)
                },
            ),
        )
    }

    /// Drops the candidate snapshot of a document the member may read, if it covers exactly
    /// `covers_seq` (a newer candidate is not the one that was found wanting).
    pub(super) fn drop_candidate(
        &self,
        space: SpaceId,
        doc: DocId,
        member: MemberId,
        covers_seq: ServerSeq,
    ) -> Result<bool, StoreError> {
        let key = records::doc_key(space, doc);
        let t = &self.trees;
        settled(
            (&t.docs, &t.candidates, &t.usage).transaction(|(docs, candidates, usage)| {
                let Some(bytes) = docs.get(key)? else {
                    return abort(StoreError::UnknownDocument);
                };
                let meta = decode_meta(&bytes).map_err(ConflictableTransactionError::Abort)?;
                if !meta.readable_by(member) {
                    return abort(StoreError::PrivateDocument);
                }
                let Some(bytes) = candidates.get(key)? else {
                    return Ok(false);
                };
                let candidate: SnapshotRecord = records::decode("candidates", &bytes)
                    .map_err(ConflictableTransactionError::Abort)?;
                if candidate.covers_seq != covers_seq.0 {
                    return Ok(false);
                }
                candidates.remove(&key[..])?;
                let freed = snapshot_record_bytes(&bytes).unwrap_or(0);
                let used = sled_usage::get(usage, space)?;
                sled_usage::set(usage, space, used.saturating_sub(freed))?;
                Ok(true)
            }),
        )
    }

    /// Moves a candidate that has stood its window into the serving slot. Returns whether it
    /// did.
    fn promote_candidate(
        &self,
        space: SpaceId,
        doc: DocId,
        now: i64,
        retention_secs: i64,
    ) -> Result<bool, StoreError> {
        let key = records::doc_key(space, doc);
        let t = &self.trees;
        settled((&t.snapshots, &t.candidates, &t.usage).transaction(
            |(serving, candidates, usage)| {
                let Some(bytes) = candidates.get(key)? else {
                    return Ok(false);
                };
                let candidate: SnapshotRecord = records::decode("candidates", &bytes)
                    .map_err(ConflictableTransactionError::Abort)?;
                if !has_stood(candidate.stored_at, now, retention_secs) {
                    return Ok(false);
                }
                if let Some(old) = serving.insert(&key[..], bytes)? {
                    let freed = snapshot_record_bytes(&old).unwrap_or(0);
                    let used = sled_usage::get(usage, space)?;
                    sled_usage::set(usage, space, used.saturating_sub(freed))?;
                }
                candidates.remove(&key[..])?;
                Ok(true)
            },
        ))
    }

    /// Promotes a candidate that stood its window, then prunes what the serving snapshot
    /// covers. Returns the new `pruned_through` and how many entries were deleted.
    pub(super) fn compact_doc(
        &self,
        space: SpaceId,
        doc: DocId,
        now: i64,
        retention_secs: i64,
    ) -> Result<(ServerSeq, u64), StoreError> {
        let Some(meta) = self.read_doc_meta(space, doc)? else {
            return Ok((ServerSeq(0), 0));
        };
        self.promote_candidate(space, doc, now, retention_secs)?;
        let Some(snapshot) = self.read_snapshot(space, doc, Slot::Serving)? else {
            return Ok((meta.pruned_through, 0));
        };
        // A snapshot serves only after standing its window as the candidate, so this holds for
        // every promoted one. It still guards a snapshot kept by an older server, which put a
        // new snapshot straight into the serving slot: nothing it covers goes before it has
        // stood the whole window.
        if !has_stood(snapshot.stored_at, now, retention_secs) {
            return Ok((meta.pruned_through, 0));
        }
        let start = records::log_key(space, doc, meta.pruned_through.next());
        let end = records::log_key(space, doc, snapshot.covers_seq);
        let mut through = meta.pruned_through;
        let mut doomed = Vec::new();
        for item in self.trees.log.range(start..=end).keys() {
            let key = item?;
            through = records::seq_of_log_key(&key)?;
            doomed.push(key);
        }
        if doomed.is_empty() {
            return Ok((meta.pruned_through, 0));
        }
        let key = records::doc_key(space, doc);
        settled(self.trees.docs.transaction(|docs| {
            let Some(bytes) = docs.get(key)? else {
                return abort(StoreError::UnknownDocument);
            };
            let mut meta = decode_meta(&bytes).map_err(ConflictableTransactionError::Abort)?;
            meta.pruned_through = meta.pruned_through.max(through);
            docs.insert(&key[..], meta_to_record(&meta))?;
            Ok(())
        }))?;
        // The promotion and the new `pruned_through` reach the disk before any entry goes, so
        // no crash leaves a pruned log without a serving snapshot that covers it.
        self.commit.request().wait_blocking()?;
        let removed = self.remove_log_entries(space, &doomed)?;
        Ok((through, removed))
    }
}

/// The two snapshot slots of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// Stood its window; the log is pruned through at most its `covers_seq`; served.
    Serving,
    /// The newest accepted, younger than the window; nothing pruned for it; never served.
    Candidate,
}

impl Slot {
    fn tree_name(self) -> &'static str {
        match self {
            Slot::Serving => "snapshots",
            Slot::Candidate => "candidates",
        }
    }
}

/// Whether a snapshot stored at `stored_at` has stood the whole retention window by `now`.
fn has_stood(stored_at: i64, now: i64, retention_secs: i64) -> bool {
    now.saturating_sub(stored_at) > retention_secs
}
