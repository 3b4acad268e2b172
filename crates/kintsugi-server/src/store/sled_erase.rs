//! Leaving a space in the sled backend: erasing a member, and the space with its last member.
//!
//! A leave first removes, in one transaction, the member from the space (or the space itself),
//! the member, their devices and their token hashes, and records an *erasure* (`erasures`,
//! keyed `space | member`). From then on no token of theirs works and no write of theirs is
//! accepted (appends check membership). The documents go next: log entries in chunks, dedup
//! records, both snapshots, and the document record last, so that a half-erased document never
//! loses its record while entries remain under it. The erasure record goes when all of that
//! is done; a store opened after a crash finds it and finishes the job. `leave_space` runs
//! with writes paused, so nothing is added to a document while it is being deleted.
//!
//! Deleting a sled value does not remove its bytes from sled's files at once; the service
//! calls `vacuum` after a leave for that (see `sled_vacuum.rs`).

use prost::Message;
use sled::Transactional;

use super::records::{self, DeviceRecord, InviteRecord, SpaceRecord};
use super::sled_store::{Opened, SledStore, abort, settled};
use super::sled_usage::{self, snapshot_record_bytes};
use super::{Audience, Departure, StoreError};
use crate::ids::{DeviceId, DocId, MemberId, SpaceId};

/// A device to delete: its key in `devices` and its token hash.
struct Doomed {
    key: sled::IVec,
    device: DeviceId,
    token_hash: Vec<u8>,
}

impl Opened {
    pub(super) fn leave_space(
        &self,
        space: SpaceId,
        member: MemberId,
    ) -> Result<Departure, StoreError> {
        let Some(bytes) = self.trees.spaces.get(space.as_bytes())? else {
            return Err(StoreError::UnknownSpace);
        };
        let record: SpaceRecord = records::decode("spaces", &bytes)?;
        if !record.member_ids.iter().any(|m| m == member.as_bytes()) {
            return Err(StoreError::UnknownMember);
        }
        let whole = record.member_ids.len() == 1;
        let mut doomed = Vec::new();
        for item in self.trees.devices.scan_prefix(space.as_bytes()) {
            let (key, value) = item?;
            let device: DeviceRecord = records::decode("devices", &value)?;
            if whole || device.member_id == member.as_bytes() {
                let (_, id) = records::split_pair_key("devices", &key)?;
                doomed.push(Doomed {
                    key,
                    device: DeviceId(id),
                    token_hash: device.token_hash,
                });
            }
        }
        let member_key = records::pair_key(space, member.as_bytes());
        let erasure_key = member_key;
        let t = &self.trees;
        settled(
            (&t.spaces, &t.members, &t.devices, &t.tokens, &t.erasures).transaction(
                |(spaces, members, devices, tokens, erasures)| {
                    let Some(bytes) = spaces.get(space.as_bytes())? else {
                        return abort(StoreError::UnknownSpace);
                    };
                    let mut record: SpaceRecord = records::decode("spaces", &bytes)
                        .map_err(sled::transaction::ConflictableTransactionError::Abort)?;
                    record.member_ids.retain(|m| m != member.as_bytes());
                    if record.member_ids.is_empty() {
                        spaces.remove(&space.as_bytes()[..])?;
                    } else {
                        spaces.insert(&space.as_bytes()[..], record.encode_to_vec())?;
                    }
                    members.remove(&member_key[..])?;
                    for device in &doomed {
                        devices.remove(device.key.clone())?;
                        tokens.remove(device.token_hash.clone())?;
                    }
                    erasures.insert(&erasure_key[..], &[u8::from(whole)][..])?;
                    Ok(())
                },
            ),
        )?;
        let documents = self.finish_erasure(space, member, whole)?;
        Ok(Departure {
            devices: doomed.into_iter().map(|d| d.device).collect(),
            documents,
            space_erased: whole,
        })
    }

    /// Deletes what an erasure record promises; returns how many documents went.
    fn finish_erasure(
        &self,
        space: SpaceId,
        member: MemberId,
        whole: bool,
    ) -> Result<u64, StoreError> {
        let mut documents = 0;
        for (doc, meta) in self.list_docs(space)? {
            if whole || (meta.audience == Audience::Private && meta.owner == member) {
                self.delete_document(space, doc)?;
                documents += 1;
            }
        }
        let mut invites = sled::Batch::default();
        for item in self.trees.invites.iter() {
            let (key, value) = item?;
            let invite: InviteRecord = records::decode("invites", &value)?;
            if invite.space_id == space.as_bytes()
                && (whole || invite.member_id == member.as_bytes())
            {
                invites.remove(key);
            }
        }
        self.trees.invites.apply_batch(invites)?;
        if whole {
            // Leftovers of members who left before (their rows are gone already) and the counter.
            let mut members = sled::Batch::default();
            for key in self.trees.members.scan_prefix(space.as_bytes()).keys() {
                members.remove(key?);
            }
            self.trees.members.apply_batch(members)?;
            self.trees.usage.remove(space.as_bytes())?;
        }
        let erasure_key = records::pair_key(space, member.as_bytes());
        self.trees.erasures.remove(&erasure_key[..])?;
        Ok(documents)
    }

    /// Deletes one document: log, dedup index, both snapshots, then its record.
    fn delete_document(&self, space: SpaceId, doc: DocId) -> Result<(), StoreError> {
        let prefix = records::doc_key(space, doc);
        let log_keys = self
            .trees
            .log
            .scan_prefix(prefix)
            .keys()
            .collect::<Result<Vec<_>, _>>()?;
        self.remove_log_entries(space, &log_keys)?;
        let mut dedup = sled::Batch::default();
        for key in self.trees.dedup.scan_prefix(prefix).keys() {
            dedup.remove(key?);
        }
        self.trees.dedup.apply_batch(dedup)?;
        let t = &self.trees;
        settled((&t.snapshots, &t.candidates, &t.usage).transaction(
            |(serving, candidates, usage)| {
                let mut bytes = 0;
                for removed in [
                    serving.remove(&prefix[..])?,
                    candidates.remove(&prefix[..])?,
                ]
                .into_iter()
                .flatten()
                {
                    bytes += snapshot_record_bytes(&removed).unwrap_or(0);
                }
                if bytes > 0 {
                    let used = sled_usage::get(usage, space)?;
                    sled_usage::set(usage, space, used.saturating_sub(bytes))?;
                }
                Ok(())
            },
        ))?;
        self.trees.docs.remove(prefix)?;
        Ok(())
    }
}

impl SledStore {
    /// Finishes the erasures a crash interrupted. Runs on open, before anyone can call.
    pub(super) fn finish_erasures(&self) -> Result<(), StoreError> {
        let opened = self.reading()?;
        let pending = opened
            .trees
            .erasures
            .iter()
            .collect::<Result<Vec<_>, _>>()?;
        for (key, value) in pending {
            let (space, member) = records::split_pair_key("erasures", &key)?;
            let whole = value.first() == Some(&1);
            tracing::warn!(space = %space, "finishing an erasure a crash interrupted");
            opened.finish_erasure(space, MemberId(member), whole)?;
        }
        if !opened.trees.erasures.is_empty() {
            return Err(StoreError::Corrupt(
                "an erasure could not be finished".into(),
            ));
        }
        Ok(())
    }
}
