//! Documents in the sled backend: the append-only log and its dedup index (snapshots and
//! compaction are in `sled_snapshots.rs`).
//!
//! An append runs in one transaction over `docs`, `log` and `dedup`: the document record
//! carries `head_seq`, so two concurrent pushes to one document conflict and sled retries one
//! of them, which keeps seqs dense (1, 2, 3 ...) and in commit order.

use prost::Message;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::records::{self, DedupRecord, DocRecord, LogRecord};
use super::sled_store::{Opened, Tx, TxResult, abort, settled};
use super::sled_usage;
use super::{
    AppendEnvelopes, Appended, Audience, DocMeta, Envelope, EnvelopePage, SequencedEnvelope,
    StoreError,
};
use crate::clock::UnixSeconds;
use crate::ids::{DocId, MemberId, ServerSeq, SpaceId};

fn meta_from_record(record: DocRecord) -> Result<DocMeta, StoreError> {
    Ok(DocMeta {
        audience: records::audience_from_i32(record.audience)?,
        owner: records::member_id("docs", &record.owner_member_id)?,
        head_seq: ServerSeq(record.head_seq),
        pruned_through: ServerSeq(record.pruned_through),
        created_at: UnixSeconds::from_secs(record.created_at),
        rejected_through: ServerSeq(record.rejected_through),
    })
}

pub(super) fn meta_to_record(meta: &DocMeta) -> Vec<u8> {
    DocRecord {
        audience: records::audience_to_i32(meta.audience),
        owner_member_id: meta.owner.to_vec(),
        head_seq: meta.head_seq.0,
        pruned_through: meta.pruned_through.0,
        created_at: meta.created_at.as_secs(),
        rejected_through: meta.rejected_through.0,
    }
    .encode_to_vec()
}

pub(super) fn decode_meta(bytes: &[u8]) -> Result<DocMeta, StoreError> {
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
    pub(super) fn doc_meta(
        &self,
        space: SpaceId,
        doc: DocId,
    ) -> Result<Option<DocMeta>, StoreError> {
        match self.trees.docs.get(records::doc_key(space, doc))? {
            Some(bytes) => decode_meta(&bytes).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn list_docs(&self, space: SpaceId) -> Result<Vec<(DocId, DocMeta)>, StoreError> {
        let mut docs = Vec::new();
        for item in self.trees.docs.scan_prefix(space.as_bytes()) {
            let (key, value) = item?;
            let (_, doc) = records::split_pair_key("docs", &key)?;
            docs.push((DocId(doc), decode_meta(&value)?));
        }
        Ok(docs)
    }

    pub(super) fn append_envelopes(&self, append: AppendEnvelopes) -> Result<Appended, StoreError> {
        let AppendEnvelopes {
            space_id: space,
            doc_id: doc,
            audience,
            member_id: member,
            envelopes,
            now,
            quota_bytes,
            expect_head,
        } = append;
        let doc_key = records::doc_key(space, doc);
        let prepared = prepare_envelopes(space, doc, &envelopes, now);
        let t = &self.trees;
        let member_key = records::pair_key(space, member.as_bytes());
        let (server_seqs, fresh_positions, meta) = settled(
            (&t.docs, &t.log, &t.dedup, &t.usage, &t.members).transaction(
                |(docs, log, dedup, usage, members)| {
                    let mut meta = meta_or_new(docs, doc_key, audience, member, now)?;
                    check_may_append(&meta, members, member_key, member, audience)?;
                    let target = LogTarget {
                        log,
                        dedup,
                        space,
                        doc,
                        expect_head,
                    };
                    let (seqs, fresh, fresh_bytes) = target.write(&mut meta, &prepared)?;
                    charge_quota(usage, space, fresh_bytes, quota_bytes)?;
                    docs.insert(&doc_key[..], meta_to_record(&meta))?;
                    Ok((seqs, fresh, meta))
                },
            ),
        )?;
        let (fresh, retried) = split_fresh_and_retried(envelopes, &server_seqs, fresh_positions);
        Ok(Appended {
            server_seqs,
            fresh,
            retried,
            meta,
        })
    }

    pub(super) fn read_envelopes(
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
}

/// Encodes each envelope's log and dedup records before the transaction (sled may retry it).
fn prepare_envelopes(
    space: SpaceId,
    doc: DocId,
    envelopes: &[Envelope],
    now: UnixSeconds,
) -> Vec<Prepared> {
    envelopes
        .iter()
        .map(|envelope| Prepared {
            log_record: LogRecord {
                device_id: envelope.device_id.to_vec(),
                client_seq: envelope.client_seq,
                nonce: envelope.nonce.clone(),
                ciphertext: envelope.ciphertext.clone(),
                appended_at: now.as_secs(),
                signature: envelope.signature.clone(),
                key_epoch: envelope.key_epoch,
            }
            .encode_to_vec(),
            dedup_key: records::dedup_key(space, doc, envelope.device_id, envelope.client_seq),
            content_hash: records::content_hash(envelope),
            client_seq: envelope.client_seq,
            bytes: stored_bytes(&envelope.nonce, &envelope.ciphertext),
        })
        .collect()
}

/// The document's recorded metadata, or that of a new document this push creates.
fn meta_or_new(
    docs: &Tx,
    doc_key: [u8; 32],
    audience: Audience,
    member: MemberId,
    now: UnixSeconds,
) -> TxResult<DocMeta> {
    Ok(match docs.get(doc_key)? {
        Some(bytes) => decode_meta(&bytes).map_err(ConflictableTransactionError::Abort)?,
        None => DocMeta {
            audience,
            owner: member,
            head_seq: ServerSeq(0),
            pruned_through: ServerSeq(0),
            rejected_through: ServerSeq(0),
            created_at: now,
        },
    })
}

/// Refuses the push unless `member` may read the document, the audience matches and the member
/// is still in the space.
fn check_may_append(
    meta: &DocMeta,
    members: &Tx,
    member_key: [u8; 32],
    member: MemberId,
    audience: Audience,
) -> TxResult<()> {
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
    Ok(())
}

/// The log and dedup trees of one document, inside an append's transaction.
struct LogTarget<'a> {
    log: &'a Tx,
    dedup: &'a Tx,
    space: SpaceId,
    doc: DocId,
    expect_head: Option<u64>,
}

impl LogTarget<'_> {
    /// Gives each envelope its seq: a retry its original one, a fresh envelope the next one
    /// (written to the log and dedup index). Returns the seqs, the fresh positions and their bytes.
    fn write(
        &self,
        meta: &mut DocMeta,
        prepared: &[Prepared],
    ) -> TxResult<(Vec<ServerSeq>, Vec<usize>, u64)> {
        let mut seqs = Vec::with_capacity(prepared.len());
        let mut fresh = Vec::new();
        let mut fresh_bytes = 0u64;
        for (position, item) in prepared.iter().enumerate() {
            if let Some(seq) = self.seen_seq(item)? {
                seqs.push(seq);
                continue;
            }
            if let Some(expected) = self.expect_head.filter(|e| *e != meta.head_seq.0) {
                return abort(StoreError::PositionTaken {
                    expected,
                    head_seq: meta.head_seq.0,
                });
            }
            let seq = meta.head_seq.next();
            meta.head_seq = seq;
            self.insert(item, seq)?;
            seqs.push(seq);
            fresh.push(position);
            fresh_bytes = fresh_bytes.saturating_add(item.bytes);
        }
        Ok((seqs, fresh, fresh_bytes))
    }

    /// The seq an identical earlier envelope got; refuses a reused client seq with other bytes.
    fn seen_seq(&self, item: &Prepared) -> TxResult<Option<ServerSeq>> {
        let Some(bytes) = self.dedup.get(item.dedup_key)? else {
            return Ok(None);
        };
        let seen: DedupRecord =
            records::decode("dedup", &bytes).map_err(ConflictableTransactionError::Abort)?;
        if seen.content_hash != item.content_hash {
            return abort(StoreError::ClientSeqReused {
                client_seq: item.client_seq,
            });
        }
        Ok(Some(ServerSeq(seen.server_seq)))
    }

    /// Writes a fresh envelope at `seq` into the log and the dedup index.
    fn insert(&self, item: &Prepared, seq: ServerSeq) -> TxResult<()> {
        self.log.insert(
            &records::log_key(self.space, self.doc, seq)[..],
            item.log_record.clone(),
        )?;
        let seen = DedupRecord {
            server_seq: seq.0,
            content_hash: item.content_hash.clone(),
        };
        self.dedup
            .insert(&item.dedup_key[..], seen.encode_to_vec())?;
        Ok(())
    }
}

/// Adds the fresh bytes to the space's usage, refusing the push if they would pass the quota.
fn charge_quota(usage: &Tx, space: SpaceId, fresh_bytes: u64, quota_bytes: u64) -> TxResult<()> {
    if fresh_bytes == 0 {
        return Ok(());
    }
    let used = sled_usage::get(usage, space)?;
    if used.saturating_add(fresh_bytes) > quota_bytes {
        return abort(StoreError::QuotaExceeded {
            used,
            quota: quota_bytes,
            needed: fresh_bytes,
        });
    }
    sled_usage::set(usage, space, used.saturating_add(fresh_bytes))?;
    Ok(())
}

/// Splits the pushed envelopes into fresh ones and retries, each retry listed once.
fn split_fresh_and_retried(
    envelopes: Vec<Envelope>,
    server_seqs: &[ServerSeq],
    fresh_positions: Vec<usize>,
) -> (Vec<SequencedEnvelope>, Vec<SequencedEnvelope>) {
    // Fresh envelopes got new seqs, above every earlier one; the others are retries, which
    // got their original seqs back (the same bytes, as the dedup hash proved).
    let mut fresh = Vec::with_capacity(fresh_positions.len());
    let mut retried: Vec<SequencedEnvelope> = Vec::new();
    let mut fresh_positions = fresh_positions.into_iter().peekable();
    for (position, (envelope, &server_seq)) in envelopes.into_iter().zip(server_seqs).enumerate() {
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
    (fresh, retried)
}
