//! The roster entries a device writes: the genesis of a space it made, its own entry when it
//! joins, the invites it issues, revocations and leaving.
//!
//! The genesis and the joining entry are owed, not optional: `init` and `join` remember them
//! (`PendingRosterEntry`) and every sync writes what is still owed before anything else, so an
//! enrolment the network cut short finishes later instead of leaving a device no one accepts.

use kintsugi_proto::v1::roster_entry::Body;
use kintsugi_proto::v1::{AddDevice, Genesis, Invite, InviteKind, Leave, RecoveryKeys, Revoke};

use super::client::Connection;
use crate::error::{CoreError, Result};
use crate::ids::DeviceId;
use crate::invite_code::ROSTER_ROOT_LEN;
use crate::key_store::{DeviceSecrets, FileKeyStore, KeyStore};
use crate::replica::Replica;
use crate::roster::{Roster, device_keys, invite_signing_input};
use crate::store::PendingRosterEntry;

/// The Ed25519 key of an invite, from the seed its code carries.
pub(crate) fn invite_signer(seed: &[u8; 32]) -> DeviceSecrets {
    DeviceSecrets::from_seeds(*seed, *seed)
}

/// The public half of a recovery key, as the roster records it.
fn recovery_keys(secrets: &DeviceSecrets) -> RecoveryKeys {
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
                self.write_genesis(conn).await?;
            } else {
                self.write_join(conn, &pending).await?;
            }
        }
        self.store.set_pending_roster_entry(None)
    }

    /// The member's recovery keys, which `init` and a partner's `join` made.
    fn recovery_secrets(&self) -> Result<DeviceSecrets> {
        let dir = self.store.dir();
        let secrets = FileKeyStore::recovery_in_dir(dir).load()?;
        let secrets =
            secrets.ok_or_else(|| CoreError::damaged(dir, "the recovery keys are missing"))?;
        Ok(secrets)
    }

    async fn write_genesis(&self, conn: &mut Connection) -> Result<()> {
        let recovery = recovery_keys(&self.recovery_secrets()?);
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
        let recovery = partner.then(|| self.recovery_secrets()).transpose()?;
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
                recovery: recovery.as_ref().map(recovery_keys),
            }))
        })
        .await
        .map(drop)
    }

    /// Issues an invite in the roster; returns the seed of its key and the start of the
    /// roster's root, for the code.
    pub(crate) async fn write_invite(
        &self,
        conn: &mut Connection,
        invite_id: [u8; 16],
        kind: InviteKind,
    ) -> Result<([u8; 32], [u8; ROSTER_ROOT_LEN])> {
        let seed: [u8; 32] = rand::random();
        let invite = Invite {
            invite_id: invite_id.to_vec(),
            kind: kind as i32,
            invite_key: invite_signer(&seed).verifying_key().to_bytes().to_vec(),
        };
        let roster = self
            .push_roster_entry(conn, |_: &Roster| Ok(Body::Invite(invite.clone())))
            .await?;
        let mut root = [0; ROSTER_ROOT_LEN];
        root.copy_from_slice(&roster.root()[..ROSTER_ROOT_LEN]);
        Ok((seed, root))
    }

    /// Revokes `device` (and what it enrolled) in the roster.
    pub(crate) async fn write_revoke(&self, conn: &mut Connection, device: DeviceId) -> Result<()> {
        // A revocation the roster already holds (a retry after the server call failed) is done.
        let roster = self.pull_roster(conn).await?;
        if roster
            .device(device)
            .is_some_and(|d| d.revoked_at.is_some())
        {
            return Ok(());
        }
        let revoke = Revoke {
            device_id: device.as_bytes().to_vec(),
        };
        self.push_roster_entry(conn, |_: &Roster| Ok(Body::Revoke(revoke.clone())))
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
