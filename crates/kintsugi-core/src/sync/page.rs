//! Applying a page from the server: open each envelope, accept what is a valid change by its
//! sender, set aside what is not, and store the new state, what was set aside and the advanced
//! cursor in one transaction.
//!
//! One bad envelope (random bytes, the wrong key, a change under another device's actor, one
//! that depends on a change set aside) must not block a document for ever: it is kept locally
//! for inspection, reported once with the device that sent it, and the cursor moves past it,
//! so every later change still applies. A gap in the server's numbering is another matter: it
//! means the server skipped entries, and the page is refused whole.

use automerge::{Change, ChangeHash};
use kintsugi_proto::v1::{Envelope, EnvelopeKind, Snapshot};

use super::report::SetAside;
use crate::docs::{
    DocKind, Refused, apply_in_log_order, apply_one_by_one, merge_snapshot, parse_change,
};
use crate::envelope::{Authors, open};
use crate::error::{CoreError, Result};
use crate::ids::{DeviceId, DocId};
use crate::keys::SecretKey;
use crate::replica::{LoadedDoc, OpenDocs, Replica};
use crate::store::SetAsideRecord;

/// What applying a page did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// The hashes of the changes from other devices applied, in log order.
    pub received: Vec<ChangeHash>,
    pub set_aside: Vec<SetAside>,
    /// The server position the document's cursor moved to.
    pub cursor: u64,
}

/// A logged envelope opened and checked: the change it carries and the device that sent it.
pub(crate) struct Accepted {
    pub server_seq: u64,
    pub device: DeviceId,
    pub change: Change,
}

/// Opens a logged change envelope of `doc` and parses what it carries as a change written by
/// the device that sent it; the error says why it cannot be accepted.
pub(crate) fn accept(
    keys: &impl Fn(u64) -> Option<SecretKey>,
    authors: &impl Authors,
    space: crate::ids::SpaceId,
    doc: DocId,
    envelope: &Envelope,
) -> Result<Accepted> {
    let (ctx, plaintext) = open(keys, authors, space, doc, envelope)?;
    if ctx.kind != EnvelopeKind::Change {
        return Err(CoreError::Tampered(
            "a snapshot was sent as a change".into(),
        ));
    }
    let change = parse_change(ctx.device, &plaintext)?;
    Ok(Accepted {
        server_seq: envelope.server_seq,
        device: ctx.device,
        change,
    })
}

/// Envelopes larger than this are set aside without their ciphertext, so a partner pushing
/// junk cannot fill the other's phone with copies of it.
const KEEP_ENVELOPES_UP_TO: usize = 64 * 1024;

fn record(doc: DocId, envelope: &Envelope, reason: String) -> SetAsideRecord {
    let kept = (envelope.ciphertext.len() <= KEEP_ENVELOPES_UP_TO).then(|| envelope.clone());
    SetAsideRecord {
        doc_id: doc.as_bytes().to_vec(),
        server_seq: envelope.server_seq,
        device_id: envelope.device_id.clone(),
        reason,
        envelope: kept,
    }
}

fn view(kind: DocKind, record: &SetAsideRecord) -> SetAside {
    let device = DeviceId::from_slice(&record.device_id)
        .map(|d| d.to_string())
        .unwrap_or_else(|_| data_encoding::HEXLOWER.encode(&record.device_id));
    tracing::debug!(doc = kind.name(), server_seq = record.server_seq, %device, reason = %record.reason, "set aside an envelope");
    SetAside {
        doc: kind.name(),
        server_seq: record.server_seq,
        device,
        sender: None,
        reason: record.reason.clone(),
    }
}

impl Replica {
    /// Every envelope this device has set aside, for inspection (senders unnamed).
    pub fn set_aside(&self) -> Result<Vec<SetAside>> {
        let records = self.store.set_aside()?;
        let named = |record: &SetAsideRecord| {
            let kind = self.identity.keys.kind_of(&record.doc_id);
            kind.map(|kind| view(kind, record))
        };
        Ok(records.iter().filter_map(named).collect())
    }

    /// Whether the roster this device holds knows every key epoch `envelopes` (of `kind`) name.
    /// One that names a newer epoch was sealed after a roster entry this device has not pulled
    /// yet: the roster is pulled before the page is applied, or it would be set aside.
    pub(crate) fn knows_epochs_of(&self, kind: DocKind, envelopes: &[Envelope]) -> Result<bool> {
        let epochs = self.roster()?.epochs(self.audience_of(kind)).len() as u64;
        Ok(envelopes.iter().all(|e| e.key_epoch < epochs))
    }

    /// Opens, validates and applies a page of envelopes (after a snapshot, when the log before
    /// them was pruned), then stores the new state, what was set aside and the cursor in one
    /// transaction. Nothing is stored if the page as a whole is refused.
    pub(crate) fn apply_page(
        &self,
        kind: DocKind,
        snapshot: Option<Snapshot>,
        envelopes: &[Envelope],
    ) -> Result<Applied> {
        let doc_id = self.identity.keys.doc_id(kind);
        let mut open = self.lock_documents();
        let cursor = self.store.cursor(doc_id)?;
        let snapshot = snapshot.filter(|s| s.covers_seq > cursor);
        let fresh: Vec<&Envelope> = envelopes.iter().filter(|e| e.server_seq > cursor).collect();
        if snapshot.is_none() && fresh.is_empty() {
            return Ok(Applied::default());
        }
        // Without a snapshot the page must follow on from the cursor; behind one it starts
        // where the server pruned, which only the server knows. Either way: no gaps.
        let start = snapshot.is_none().then_some(cursor);
        check_contiguous(kind, start, &fresh)?;
        let (keys, roster) = (self.opening_keys(kind, doc_id)?, self.roster()?);
        let authors = roster.authors(self.audience_of(kind));
        let mut aside = Vec::new();
        let mut accepted = Vec::with_capacity(fresh.len());
        for envelope in &fresh {
            match accept(&keys, &authors, self.identity.space, doc_id, envelope) {
                Ok(change) => accepted.push(change),
                Err(error) => aside.push(record(doc_id, envelope, error.to_string())),
            }
        }
        let (mut loaded, new_changes, refused) =
            self.apply_accepted(&mut open, kind, snapshot.as_ref(), &accepted)?;
        let refused_hash = |hash: &ChangeHash| refused.iter().any(|(h, _)| h == hash);
        for (hash, reason) in &refused {
            let seq = accepted
                .iter()
                .find(|a| a.change.hash() == *hash)
                .map(|a| a.server_seq);
            if let Some(envelope) = fresh.iter().find(|e| Some(e.server_seq) == seq) {
                aside.push(record(doc_id, envelope, format!("change {hash}: {reason}")));
            }
        }
        aside.sort_by_key(|r| r.server_seq);
        let last = fresh.last().map(|e| e.server_seq);
        let cursor = match (&snapshot, last) {
            (Some(snapshot), last) => {
                // Move by the envelopes, never to `covers_seq`: the page may stop short of it,
                // and the entries in between (which the snapshot may wrongly claim) still come.
                let cursor = last.unwrap_or(snapshot.covers_seq);
                let saved = loaded.doc.save();
                let keys = &loaded.change_keys;
                self.store
                    .replace_doc_setting_aside(doc_id, &saved, keys, &aside, Some(cursor))?;
                loaded.change_keys.clear();
                cursor
            }
            (None, Some(last)) => {
                let keys = self
                    .store
                    .apply_pulled(doc_id, &new_changes, &aside, last)?;
                loaded.change_keys.extend(keys);
                last
            }
            (None, None) => cursor,
        };
        self.put_back(&mut open, kind, loaded)?;
        let set_aside: Vec<SetAside> = aside.iter().map(|r| view(kind, r)).collect();
        let me = self.identity.device;
        let received = accepted
            .iter()
            .map(|a| (a.device, a.change.hash()))
            .filter(|(device, hash)| *device != me && !refused_hash(hash))
            .map(|(_, hash)| hash)
            .collect();
        Ok(Applied {
            received,
            set_aside,
            cursor,
        })
    }

    /// The document with the page's snapshot (if any) merged and its accepted changes applied
    /// in log order; the bytes of the changes applied and those refused. A batch Automerge
    /// refuses as a whole is applied again one change at a time on a fresh copy, so one bad
    /// change (two changes with one actor and sequence number, say) cannot block the rest.
    fn apply_accepted(
        &self,
        open: &mut OpenDocs,
        kind: DocKind,
        snapshot: Option<&Snapshot>,
        accepted: &[Accepted],
    ) -> Result<(LoadedDoc, Vec<Vec<u8>>, Vec<Refused>)> {
        let changes = || {
            accepted
                .iter()
                .map(|a| a.change.clone())
                .collect::<Vec<_>>()
        };
        let mut loaded = self.load_with(open, kind, snapshot)?;
        if let Ok((stored, refused)) = apply_in_log_order(&mut loaded.doc, changes()) {
            return Ok((loaded, stored, refused));
        }
        // Part of the batch may be in: start again from the document as stored.
        drop(loaded);
        let mut loaded = self.load_with(open, kind, snapshot)?;
        let (stored, refused) = apply_one_by_one(&mut loaded.doc, changes());
        Ok((loaded, stored, refused))
    }

    /// The stored document, with `snapshot` merged in when there is one.
    fn load_with(
        &self,
        open: &mut OpenDocs,
        kind: DocKind,
        snapshot: Option<&Snapshot>,
    ) -> Result<LoadedDoc> {
        let mut loaded = self.take_doc(open, kind)?;
        if let Some(snapshot) = snapshot {
            let remote = self.open_snapshot(kind, snapshot)?;
            merge_snapshot(&mut loaded.doc, remote)?;
        }
        Ok(loaded)
    }
}

/// Refuses a page with a gap: each envelope must follow the one before (and the cursor).
fn check_contiguous(kind: DocKind, start: Option<u64>, fresh: &[&Envelope]) -> Result<()> {
    let mut previous = start;
    for envelope in fresh {
        if previous.is_some_and(|p| envelope.server_seq != p + 1) {
            return Err(CoreError::Protocol(format!(
                "the server skipped changes before {} of the {}; try again, and if it repeats the server is misbehaving",
                envelope.server_seq,
                kind.name()
            )));
        }
        previous = Some(envelope.server_seq);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_envelope_is_set_aside_without_its_ciphertext() {
        let envelope = |bytes: usize| Envelope {
            device_id: vec![7; 16],
            server_seq: 3,
            ciphertext: vec![1; bytes],
            ..Envelope::default()
        };
        let doc = DocId([2; 16]);
        let small = record(doc, &envelope(KEEP_ENVELOPES_UP_TO), "bad".into());
        assert!(small.envelope.is_some(), "kept for inspection");
        let large = record(doc, &envelope(KEEP_ENVELOPES_UP_TO + 1), "bad".into());
        assert_eq!(
            (large.envelope, large.server_seq),
            (None, 3),
            "the record stays, the bytes go"
        );
    }
}
