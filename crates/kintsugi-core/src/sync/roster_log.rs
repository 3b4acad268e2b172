//! Keeping the verified roster in step with the server's roster log, and adding to it.
//!
//! The roster log is the space's document with the reserved id `ROSTER_DOC`. Every sync pulls
//! it first, so the envelopes that follow are checked against the devices it admits. Each
//! entry is checked by `Roster::follow` and stored by position, so the device replays exactly
//! what it checked and never takes the server's word for a position again. An entry that breaks
//! the rules (a forgery, a replay, a partner's junk) is passed over on every device alike; a
//! server that skips positions gets `CoreError::RosterRefused` and the sync stops. An entry
//! this device writes is signed at the position after the last one it knows; when another
//! device's entry took that position first, the server refuses it, and this device pulls and
//! signs it again on top.

use kintsugi_proto::v1::{Audience, Envelope, EnvelopeKind, PushRequest, SignedRosterEntry};
use prost::Message;
use tonic::Code;

use super::client::Connection;
use super::engine::pull_page;
use super::roster_draft::{Writer, refused_here};
use crate::error::{CoreError, Result};
use crate::replica::Replica;
use crate::roster::{EntryBody, ROSTER_DOC, Roster};

/// How many times an entry is signed again after losing its position to another device's.
const RETRIES: usize = 8;

impl Replica {
    /// Pulls the roster log from this device's verified length on; returns the roster.
    pub(crate) async fn pull_roster(&self, conn: &mut Connection) -> Result<Roster> {
        loop {
            let known = self.roster()?.len();
            let page = pull_page(conn, ROSTER_DOC, known, false).await?;
            let roster = self.accept_roster_entries(&page.envelopes)?;
            if !page.more || page.envelopes.is_empty() {
                return Ok(roster);
            }
        }
    }

    /// Verifies and stores the roster log's envelopes after the ones this device has (a page,
    /// or a batch a live stream relayed); returns the roster they make.
    pub(crate) fn accept_roster_entries(&self, envelopes: &[Envelope]) -> Result<Roster> {
        let known = self.roster()?.len();
        let fresh: Vec<&Envelope> = envelopes.iter().filter(|e| e.server_seq > known).collect();
        let mut entries = Vec::with_capacity(fresh.len());
        for (position, envelope) in (known..).zip(&fresh) {
            entries.push(roster_entry(position, envelope)?);
        }
        self.extend_roster(known, &entries)
    }

    /// Signs what `body` makes of the current roster as this device, at the end of the
    /// roster, and pushes it; on losing the position, pulls and tries again on top.
    pub(crate) async fn push_roster_entry(
        &self,
        conn: &mut Connection,
        body: impl Fn(&Roster) -> Result<EntryBody>,
    ) -> Result<Roster> {
        let body = |roster: &Roster| body(roster).map(Some);
        self.push_roster_entry_as(conn, Writer::Device, body).await
    }

    /// `push_roster_entry`, signed by `writer`; a `body` of `None` writes nothing.
    pub(crate) async fn push_roster_entry_as(
        &self,
        conn: &mut Connection,
        writer: Writer<'_>,
        body: impl Fn(&Roster) -> Result<Option<EntryBody>>,
    ) -> Result<Roster> {
        for _ in 0..RETRIES {
            let mut roster = self.pull_roster(conn).await?;
            let Some(body) = body(&roster)? else {
                return Ok(roster);
            };
            let signed = self.draft_entry(&roster, writer, body)?;
            // The same rules every device applies: what they would refuse is not sent.
            roster.apply(&signed).map_err(refused_here)?;
            if self.push_signed_entry(conn, &signed).await? {
                return self.extend_roster(roster.len() - 1, &[signed]);
            }
        }
        Err(CoreError::Server(
            "the roster kept changing while this device tried to add to it; try again".into(),
        ))
    }

    /// Pushes one signed entry; `false` when another device's entry took its position.
    async fn push_signed_entry(
        &self,
        conn: &mut Connection,
        signed: &SignedRosterEntry,
    ) -> Result<bool> {
        let envelope = Envelope {
            device_id: self.identity.device.as_bytes().to_vec(),
            client_seq: self.store.reserve_client_seq()?,
            kind: EnvelopeKind::Roster as i32,
            nonce: rand::random::<[u8; 24]>().to_vec(),
            ciphertext: signed.encode_to_vec(),
            server_seq: 0,
            signature: Vec::new(),
            key_epoch: 0,
        };
        let request = PushRequest {
            doc_id: ROSTER_DOC.as_bytes().to_vec(),
            audience: Audience::Shared.into(),
            envelopes: vec![envelope],
        };
        match conn.sync.push(request).await {
            Ok(_) => Ok(true),
            // Another device's entry took the position first.
            Err(status) if status.code() == Code::Aborted => Ok(false),
            Err(status) => Err(conn.error(status)),
        }
    }
}

/// The signed entry an envelope of the roster log carries, at the position it must hold.
pub(super) fn roster_entry(position: u64, envelope: &Envelope) -> Result<SignedRosterEntry> {
    if envelope.server_seq != position + 1 {
        return Err(CoreError::RosterRefused(format!(
            "the log skips from entry {position} to position {}",
            envelope.server_seq
        )));
    }
    // What does not decode is passed over like any other entry that does not hold.
    Ok(SignedRosterEntry::decode(envelope.ciphertext.as_slice()).unwrap_or_default())
}
