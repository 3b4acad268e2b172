//! Sealing a queued change again under the newest key epoch before it leaves.
//!
//! A change is sealed when it is made, offline, under the newest epoch the device knew then.
//! If a new epoch began since (a device was revoked, a partner left, someone joined), the
//! change is opened and sealed again under it at push time, so what reaches the server after
//! the device learned of the new epoch is readable by exactly the devices that epoch admits.
//! The new envelope takes a new client sequence number and replaces the old one in the outbox
//! before it is sent: the server refuses other bytes under a number it stored, and a push whose
//! answer was lost may have stored the old envelope. Then the server holds the change twice,
//! which devices apply once (Automerge knows a change by its hash).

use kintsugi_proto::v1::Envelope;

use crate::envelope::{EnvelopeContext, open, seal};
use crate::error::Result;
use crate::ids::DocId;
use crate::replica::Replica;

impl Replica {
    /// `envelope` (this device's own, queued for `doc`) as it should leave now: sealed under
    /// the newest epoch this device may write under.
    pub(crate) fn under_newest_epoch(
        &self,
        outbox_seq: u64,
        doc: DocId,
        envelope: Envelope,
    ) -> Result<Envelope> {
        let Some(kind) = self.identity.keys.kind_of(doc.as_bytes()) else {
            return Ok(envelope);
        };
        let (epoch, key) = self.sealing_key(kind, doc)?;
        if envelope.key_epoch == epoch {
            return Ok(envelope);
        }
        let roster = self.roster()?;
        let authors = roster.authors(self.audience_of(kind));
        let keys = self.opening_keys(kind, doc)?;
        let (ctx, plaintext) = open(keys, &authors, self.identity.space, doc, &envelope)?;
        let client_seq = self.store.reserve_client_seq()?;
        let ctx = EnvelopeContext {
            epoch,
            client_seq,
            ..ctx
        };
        let resealed = seal(&key, &self.identity.secrets, &ctx, &plaintext);
        self.store.replace_outbox_envelope(outbox_seq, &resealed)?;
        Ok(resealed)
    }
}
