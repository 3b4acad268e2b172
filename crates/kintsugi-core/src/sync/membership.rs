//! The roster entries a device writes: the genesis of a space it made, its own entry when it
//! joins, the invites it issues (with their welcome), revocations, leaving, and the key epochs
//! the roster owes. Each entry's new epochs are drafted by `roster_draft.rs`.
//!
//! The genesis and the joining entry are owed, not optional: `init` and `join` remember them
//! (`PendingRosterEntry`) and every sync writes what is still owed before anything else, so an
//! enrolment the network cut short finishes later instead of leaving a device no one accepts.

use kintsugi_proto::v1::roster_entry::Body;
use kintsugi_proto::v1::{
    AddDevice, Genesis, Invite, InviteKind, Leave, Recover, RecoveryKeys, Revoke, Rotate,
    SetRecovery,
};

use super::client::Connection;
use super::engine::pull_page;
use super::roster_draft::Writer;
use super::roster_log::roster_entry;
use crate::epoch_keys::KnownKey;
use crate::epoch_keys::welcome::{open_welcome, seal_welcome};
use crate::error::{CoreError, Result};
use crate::ids::{DeviceId, MemberId, SpaceId};
use crate::invite_code::{InviteCode, ROSTER_ROOT_LEN};
use crate::key_store::DeviceSecrets;
use crate::recovery_kit::RecoveryKit;
use crate::replica::Replica;
use crate::roster::{ROSTER_DOC, Roster, device_keys, invite_signing_input};
use crate::store::PendingRosterEntry;

/// The Ed25519 key of an invite, from the seed its code carries.
pub(crate) fn invite_signer(seed: &[u8; 32]) -> DeviceSecrets {
    DeviceSecrets::from_seeds(*seed, *seed)
}

/// The public half of a recovery key, as the roster records it.
pub(crate) fn recovery_keys(secrets: &DeviceSecrets) -> RecoveryKeys {
    RecoveryKeys {
        signing_key: secrets.verifying_key().to_bytes().to_vec(),
        agreement_key: secrets.agreement_public().to_vec(),
    }
}

impl Replica {
    /// Writes the entry this device still owes the roster, if any; the roster is pulled first.
    pub(crate) async fn finish_enrolment(&self, conn: &mut Connection) -> Result<()> {
        let Some(pending) = self.store.pending_roster_entry()? else {
            return Ok(());
        };
        let roster = self.pull_roster(conn).await?;
        if !roster.admits(self.identity.device) {
            if pending.genesis {
                self.write_genesis(conn, &pending).await?;
            } else if !pending.recovery_kit.is_empty() {
                self.write_recover(conn, &pending.recovery_kit).await?;
            } else {
                self.write_join(conn, &pending).await?;
            }
        }
        self.store.set_pending_roster_entry(None)
    }

    /// Starts the key epochs the roster owes and this device may start: after a partner left,
    /// or when the newest epoch was not sealed to this device.
    pub(crate) async fn renew_owed_epochs(&self, conn: &mut Connection) -> Result<()> {
        let roster = self.roster()?;
        if !self.owes_rotation(&roster)? {
            return Ok(());
        }
        // Another device may have started it meanwhile: then nothing is written.
        let owed = |roster: &Roster| -> Result<Option<Body>> {
            Ok(self
                .owes_rotation(roster)?
                .then_some(Body::Rotate(Rotate {})))
        };
        self.push_roster_entry_as(conn, Writer::Device, owed)
            .await
            .map(drop)
    }

    async fn write_genesis(
        &self,
        conn: &mut Connection,
        pending: &PendingRosterEntry,
    ) -> Result<()> {
        let recovery = pending
            .recovery
            .clone()
            .ok_or_else(|| self.no_recovery_keys())?;
        let id = &self.identity;
        let genesis = Genesis {
            space_id: id.space.as_bytes().to_vec(),
            member_id: id.member.as_bytes().to_vec(),
            device: Some(device_keys(id.device, &id.secrets)),
            recovery: Some(recovery),
        };
        self.push_roster_entry(conn, |roster: &Roster| {
            if roster.started() {
                return Err(CoreError::RosterRefused(
                    "the new space's roster was already started".into(),
                ));
            }
            Ok(Body::Genesis(genesis.clone()))
        })
        .await
        .map(drop)
    }

    async fn write_join(&self, conn: &mut Connection, pending: &PendingRosterEntry) -> Result<()> {
        let seed: [u8; 32] = pending.invite_seed.as_slice().try_into().map_err(|_| {
            CoreError::damaged(
                self.store.dir(),
                "the pending roster entry has no invite seed",
            )
        })?;
        let invite = invite_signer(&seed);
        let keys = device_keys(self.identity.device, &self.identity.secrets);
        let roster = self.pull_roster(conn).await?;
        let partner = roster.invite_kind(&pending.invite_id) == Some(InviteKind::Partner);
        let recovery = match partner {
            true => Some(
                pending
                    .recovery
                    .clone()
                    .ok_or_else(|| self.no_recovery_keys())?,
            ),
            false => None,
        };
        self.push_roster_entry(conn, |roster: &Roster| {
            if roster.root()[..ROSTER_ROOT_LEN] != pending.roster_root[..] {
                return Err(CoreError::RosterRefused(
                    "the server's roster is not the one of the space the code was made in".into(),
                ));
            }
            let member = self.identity.member.as_bytes();
            let signing_input = invite_signing_input(
                &roster.head(),
                roster.len(),
                &pending.invite_id,
                member,
                &keys,
            );
            Ok(Body::AddDevice(AddDevice {
                invite_id: pending.invite_id.clone(),
                member_id: self.identity.member.as_bytes().to_vec(),
                device: Some(keys.clone()),
                invite_signature: invite.sign(&signing_input).to_vec(),
                recovery: recovery.clone(),
            }))
        })
        .await
        .map(drop)
    }

    fn no_recovery_keys(&self) -> CoreError {
        CoreError::damaged(
            self.store.dir(),
            "the pending roster entry has no recovery keys",
        )
    }

    /// Issues an invite in the roster; returns the seed of its key and the start of the
    /// roster's root, for the code.
    pub(crate) async fn write_invite(
        &self,
        conn: &mut Connection,
        invite_id: [u8; 16],
        kind: InviteKind,
    ) -> Result<([u8; 32], [u8; ROSTER_ROOT_LEN])> {
        // An invite starts no epoch: one the roster owes is started first, so the welcome
        // holds it.
        self.renew_owed_epochs(conn).await?;
        let seed: [u8; 32] = rand::random();
        let member = (kind == InviteKind::Device).then_some(self.identity.member);
        let invite_key = invite_signer(&seed).verifying_key().to_bytes().to_vec();
        // The welcome holds the keys as of the roster the invite is written on: sealed again
        // if another entry takes the position first.
        let roster = self
            .push_roster_entry(conn, |_: &Roster| {
                Ok(Body::Invite(Invite {
                    invite_id: invite_id.to_vec(),
                    kind: kind as i32,
                    invite_key: invite_key.clone(),
                    welcome: self.welcome(&seed, &invite_id, member)?,
                }))
            })
            .await?;
        let mut root = [0; ROSTER_ROOT_LEN];
        root.copy_from_slice(&roster.root()[..ROSTER_ROOT_LEN]);
        Ok((seed, root))
    }

    /// The welcome of an invite with `seed`: the keys this device holds now.
    fn welcome(
        &self,
        seed: &[u8; 32],
        invite_id: &[u8],
        member: Option<MemberId>,
    ) -> Result<Vec<u8>> {
        let keys = self.epoch_keys()?;
        seal_welcome(seed, self.identity.space, invite_id, &keys, member).ok_or_else(|| {
            CoreError::RosterRefused(
                "this device holds no key of the space yet; run `kintsugi sync` and try again"
                    .into(),
            )
        })
    }

    /// Enrols this device in the roster as its member's new first device, signed by the
    /// member's recovery kit; the entry revokes every other device of the member.
    async fn write_recover(&self, conn: &mut Connection, kit: &str) -> Result<()> {
        let kit = RecoveryKit::parse(kit)
            .map_err(|_| CoreError::damaged(self.store.dir(), "the pending recovery kit"))?;
        let secrets = kit.secrets();
        let recover = Recover {
            member_id: self.identity.member.as_bytes().to_vec(),
            device: Some(device_keys(self.identity.device, &self.identity.secrets)),
        };
        let body = |_: &Roster| Ok(Some(Body::Recover(recover.clone())));
        self.push_roster_entry_as(conn, Writer::Recovery(&secrets), body)
            .await
            .map(drop)
    }

    /// Records a new recovery key of this device's member in the roster.
    pub(crate) async fn write_set_recovery(
        &self,
        conn: &mut Connection,
        recovery: &RecoveryKeys,
    ) -> Result<()> {
        let set = SetRecovery {
            recovery: Some(recovery.clone()),
        };
        self.push_roster_entry(conn, |_: &Roster| Ok(Body::SetRecovery(set.clone())))
            .await
            .map(drop)
    }

    /// Revokes `device` (and what it enrolled) in the roster.
    pub(crate) async fn write_revoke(&self, conn: &mut Connection, device: DeviceId) -> Result<()> {
        // A revocation the roster already holds (a retry after the server call failed) is done;
        // a device the roster never admitted (its join did not finish) is the server's alone.
        let roster = self.pull_roster(conn).await?;
        if roster.device(device).is_none_or(|d| d.revoked_at.is_some()) {
            return Ok(());
        }
        let revoke = Revoke {
            device_id: device.as_bytes().to_vec(),
        };
        self.push_roster_entry(conn, |_: &Roster| Ok(Body::Revoke(revoke.clone())))
            .await
            .map(drop)
    }

    /// Starts new epochs of the space and of this device's member.
    pub(crate) async fn write_rotate(&self, conn: &mut Connection) -> Result<()> {
        self.push_roster_entry(conn, |_: &Roster| Ok(Body::Rotate(Rotate {})))
            .await
            .map(drop)
    }

    /// Records in the roster that this device's member leaves.
    pub(crate) async fn write_leave(&self, conn: &mut Connection) -> Result<()> {
        let roster = self.pull_roster(conn).await?;
        if roster.started() && !roster.members().any(|m| m == self.identity.member) {
            return Ok(());
        }
        let leave = Leave {
            member_id: self.identity.member.as_bytes().to_vec(),
        };
        self.push_roster_entry(conn, |_: &Roster| Ok(Body::Leave(leave.clone())))
            .await
            .map(drop)
    }
}

/// The keys the welcome of the invite in `code` opens to, for a joiner of `member`, read from
/// the server's roster, which must be the one of the space the code was made in.
pub(crate) async fn welcome_keys(
    conn: &mut Connection,
    code: &InviteCode,
    member: MemberId,
) -> Result<Vec<KnownKey>> {
    let roster = read_roster(conn, code.space, &code.roster_root).await?;
    let refused = || {
        CoreError::InviteRefused(
            "the invite's keys are not in the space's roster, or the code does not open them; \
             ask for a new code"
                .into(),
        )
    };
    let sealed = roster.invite_welcome(&code.invite_id).ok_or_else(refused)?;
    if roster.invite_superseded(&code.invite_id) {
        return Err(CoreError::InviteRefused(
            "the space's keys changed after this code was made (a device was revoked or \
             joined); ask for a new code"
                .into(),
        ));
    }
    open_welcome(
        &code.invite_seed,
        code.space,
        &code.invite_id,
        sealed,
        member,
    )
    .ok_or_else(refused)
}

/// The server's roster of `space`, which must start with the genesis whose hash begins `root`.
pub(crate) async fn read_roster(
    conn: &mut Connection,
    space: SpaceId,
    root: &[u8; ROSTER_ROOT_LEN],
) -> Result<Roster> {
    let mut roster = Roster::new(space);
    loop {
        let page = pull_page(conn, ROSTER_DOC, roster.len(), false).await?;
        for envelope in &page.envelopes {
            roster.follow(&roster_entry(roster.len(), envelope)?);
        }
        if !page.more || page.envelopes.is_empty() {
            break;
        }
    }
    if roster.root()[..ROSTER_ROOT_LEN] != root[..] {
        return Err(CoreError::RosterRefused(
            "the server's roster is not the one of the space the code was made in".into(),
        ));
    }
    Ok(roster)
}
