//! Making a space, inviting a partner or another device, joining, listing and revoking devices.
//!
//! Keys never travel through the server in the clear: an invite code carries a one-time seed
//! that opens the welcome the inviter sealed into the roster, and the join starts new key
//! epochs sealed to the new device alone. The server sees only sealed names and keys.

use std::path::Path;
use std::sync::Arc;

use kintsugi_proto::v1::{
    AcceptInviteRequest, AcceptInviteResponse, CreateInviteRequest, CreateSpaceRequest, InviteKind,
    RecoveryKeys, RevokeDeviceRequest,
};
use tonic::Code;

use super::{Clock, Device, DeviceView, Identity};
use crate::docs::{DocKind, agreement};
use crate::envelope::seal_name;
use crate::epoch_keys::KnownKey;
use crate::error::{CoreError, Result};
use crate::ids::{DeviceId, MemberId, SpaceId};
use crate::invite_code::{CodeKind, InviteCode};
use crate::key_store::{DeviceSecrets, FileKeyStore, KeyStore};
use crate::keys::{Keyring, SecretKey};
use crate::recovery_kit::{RecoveryKit, RecoveryKitFile};
use crate::roster::EpochAudience;
use crate::store::{LocalStore, PendingRosterEntry};
use crate::sync::client::{Connection, check_url, status_error};
use crate::sync::{recovery_keys, welcome_keys};

const MAX_NAME_CHARS: usize = 100;

/// What leaving a space erased on the server.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct LeftSpace {
    pub devices_removed: u32,
    pub documents_removed: u32,
    /// True when this was the last partner and the whole space is gone.
    pub space_erased: bool,
}

/// What a new device is called and where its server is.
#[derive(Clone)]
pub struct Enrolment<'a> {
    pub dir: &'a Path,
    pub server_url: &'a str,
    pub member_name: &'a str,
    pub device_name: &'a str,
    /// PEM of the CA to trust for an `https://` server outside the web PKI.
    pub ca_cert_pem: Option<String>,
    pub clock: Clock,
}

impl std::fmt::Debug for Enrolment<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("dir", &self.dir)
            .field("server_url", &self.server_url)
            .finish_non_exhaustive()
    }
}

impl Enrolment<'_> {
    /// Checks the names and the URL, opens the empty store and makes the device's keys.
    pub(super) fn check(&self) -> Result<(LocalStore, Arc<DeviceSecrets>)> {
        for (what, name) in [
            ("name", self.member_name),
            ("device name", self.device_name),
        ] {
            let len = name.trim().chars().count();
            if len == 0 || len > MAX_NAME_CHARS {
                return Err(CoreError::InvalidInput(format!(
                    "the {what} must be 1 to {MAX_NAME_CHARS} characters"
                )));
            }
        }
        check_url(self.server_url)?;
        let store = LocalStore::open(self.dir)?;
        if store.identity()?.is_some() {
            return Err(CoreError::AlreadyInitialised(self.dir.to_path_buf()));
        }
        let secrets = DeviceSecrets::generate();
        FileKeyStore::in_dir(self.dir).save(&secrets)?;
        Ok((store, Arc::new(secrets)))
    }

    /// The identity of the device this enrolment made.
    pub(super) fn identity(
        &self,
        space: SpaceId,
        member: MemberId,
        device: &[u8],
        token: String,
        keys: Keyring,
        secrets: Arc<DeviceSecrets>,
    ) -> Result<Identity> {
        Ok(Identity {
            server_url: self.server_url.to_string(),
            space,
            member,
            device: DeviceId::from_slice(device)?,
            token,
            member_name: self.member_name.trim().to_string(),
            device_name: self.device_name.trim().to_string(),
            keys,
            secrets,
            ca_cert_pem: self.ca_cert_pem.clone(),
        })
    }
}

impl Device {
    /// Creates a new space on the server; this device is its first partner's first device.
    pub async fn init(enrolment: Enrolment<'_>) -> Result<Device> {
        let (store, secrets) = enrolment.check()?;
        let keys = Keyring {
            space: SecretKey::random(),
            member: SecretKey::random(),
        };
        let space = SpaceId::random();
        let names = keys.space.names_key();
        let url = enrolment.server_url;
        let recovery_seed = RecoveryKit::generate(space, MemberId([0; 16]), names.clone());
        let recovery = recovery_keys(&recovery_seed.secrets());
        let response = Connection::pairing(url, enrolment.ca_cert_pem.as_deref())
            .await?
            .create_space(CreateSpaceRequest {
                space_id: space.as_bytes().to_vec(),
                sealed_member_name: seal_name(&names, space, enrolment.member_name.trim()),
                sealed_device_name: seal_name(&names, space, enrolment.device_name.trim()),
                recovery_key: recovery.signing_key.clone(),
            })
            .await
            .map_err(|s| status_error(url, s))?
            .into_inner();
        let member = MemberId::from_slice(&response.member_id)?;
        let first_keys = [
            known(EpochAudience::Space, &keys.space),
            known(EpochAudience::Member(member), &keys.member),
        ];
        let identity = enrolment.identity(
            space,
            member,
            &response.device_id,
            response.token,
            keys,
            secrets,
        )?;
        let pending = PendingRosterEntry {
            genesis: true,
            recovery: Some(recovery),
            ..PendingRosterEntry::default()
        };
        store.add_known_keys(&first_keys)?;
        RecoveryKitFile::in_dir(enrolment.dir).save(&recovery_seed.for_member(member))?;
        let device = Self::enrolled(store, identity, enrolment.clock, true, &pending)?;
        device.try_finish_enrolment().await;
        Ok(device)
    }

    /// Joins a space with a code from a partner (as the second partner) or from one's own other
    /// device (as another device of the same partner).
    pub async fn join(enrolment: Enrolment<'_>, code: &str) -> Result<Device> {
        let code = InviteCode::parse(code)?;
        let (store, secrets) = enrolment.check()?;
        let url = enrolment.server_url;
        let partner = code.kind == CodeKind::Partner;
        let kit = RecoveryKit::generate(code.space, MemberId([0; 16]), code.names_key.clone());
        let recovery = partner.then(|| recovery_keys(&kit.secrets()));
        let response = accept_invite(&enrolment, &code, recovery.as_ref()).await?;
        let member = MemberId::from_slice(&response.member_id)?;
        let mut conn = Connection::open(
            url,
            enrolment.ca_cert_pem.as_deref(),
            &response.token,
            false,
        )
        .await?;
        let mut learned = match welcome_keys(&mut conn, &code, member).await {
            Ok(learned) => learned,
            Err(error) => {
                // The server gave this partner the space's second seat: give it back, so a new
                // code can be used. (A device link leaves only a device the roster never admits,
                // which `revoke` removes.)
                if partner {
                    let _ = conn
                        .space
                        .leave_space(kintsugi_proto::v1::LeaveSpaceRequest {})
                        .await;
                }
                return Err(error);
            }
        };
        let first = |audience| {
            learned
                .iter()
                .find(|k| k.audience == audience && k.epoch == 0)
        };
        let space_key = first(EpochAudience::Space).map(|k| k.key.clone());
        let member_key = match partner {
            true => SecretKey::random(),
            false => first(EpochAudience::Member(member))
                .map(|k| k.key.clone())
                .ok_or_else(welcome_without_keys)?,
        };
        let keys = Keyring {
            space: space_key.ok_or_else(welcome_without_keys)?,
            member: member_key,
        };
        learned.push(known(EpochAudience::Member(member), &keys.member));
        let identity = enrolment.identity(
            code.space,
            member,
            &response.device_id,
            response.token,
            keys,
            secrets,
        )?;
        let pending = PendingRosterEntry {
            genesis: false,
            invite_id: code.invite_id.to_vec(),
            invite_seed: code.invite_seed.to_vec(),
            roster_root: code.roster_root.to_vec(),
            recovery,
            ..PendingRosterEntry::default()
        };
        store.add_known_keys(&learned)?;
        if partner {
            RecoveryKitFile::in_dir(enrolment.dir).save(&kit.for_member(member))?;
        }
        let device = Self::enrolled(store, identity, enrolment.clock, partner, &pending)?;
        device.try_finish_enrolment().await;
        Ok(device)
    }

    /// Stores a new device's identity, remembering first the roster entry and the agreement
    /// entry it owes, so no device exists that forgot them.
    pub(super) fn enrolled(
        store: LocalStore,
        identity: Identity,
        clock: Clock,
        new_member: bool,
        pending: &PendingRosterEntry,
    ) -> Result<Device> {
        store.set_pending_roster_entry(Some(pending))?;
        store.set_owed_announcement(Some(new_member))?;
        store.save_identity(&identity.to_record())?;
        Ok(Device::assemble(store, identity, clock))
    }

    /// Writes in the agreement that this device (and, for a new member, its partner) arrived,
    /// once the roster admits it: what it writes before is sealed under no epoch it may use.
    pub(crate) fn announce_arrival(&self) -> Result<()> {
        let Some(new_member) = self.replica.store.owed_announcement()? else {
            return Ok(());
        };
        if !self.replica.roster()?.admits(self.replica.identity.device) {
            return Ok(());
        }
        let id = &self.replica.identity;
        let (member, device_id, name, now) = (
            id.member_key(),
            id.device.to_string(),
            id.member_name.clone(),
            self.now(),
        );
        let message = if new_member {
            format!("{name} joined")
        } else {
            format!("{name} linked a device")
        };
        self.edit(
            DocKind::Agreement,
            |_: &()| message,
            |tx| {
                if new_member {
                    agreement::add_member(tx, &member, &name, now)?;
                }
                agreement::add_device(tx, &device_id, &member)
            },
        )?;
        self.replica.store.set_owed_announcement(None)
    }

    /// Writes the roster entry `init` or `join` owes; when the network cuts it short, the
    /// next sync writes it.
    async fn try_finish_enrolment(&self) {
        if let Err(error) = self.finish_enrolment_now().await {
            tracing::warn!(%error, "this device's enrolment finishes at the next sync");
        }
    }

    /// Writes the roster entry this new device owes, then its arrival in the agreement.
    pub(super) async fn finish_enrolment_now(&self) -> Result<()> {
        let mut conn = self.replica.connect().await?;
        self.replica.finish_enrolment(&mut conn).await?;
        self.announce_arrival()
    }

    /// Asks the server for a single-use invite and wraps it, with the keys, into a code.
    pub async fn invite(&self, kind: CodeKind) -> Result<InviteCode> {
        let mut conn = self.connect().await?;
        let invite_kind = match kind {
            CodeKind::Partner => InviteKind::Partner,
            CodeKind::Device => InviteKind::Device,
        };
        let response = conn
            .space
            .create_invite(CreateInviteRequest {
                kind: invite_kind as i32,
            })
            .await
            .map_err(|s| conn.error(s))?
            .into_inner();
        let bad = |what: &str| CoreError::Protocol(format!("invite {what} has the wrong length"));
        let invite_id: [u8; 16] = response
            .invite_id
            .as_slice()
            .try_into()
            .map_err(|_| bad("id"))?;
        let (invite_seed, roster_root) = self
            .replica
            .write_invite(&mut conn, invite_id, invite_kind)
            .await?;
        Ok(InviteCode {
            kind,
            invite_id,
            invite_seed,
            roster_root,
            secret: response
                .secret
                .as_slice()
                .try_into()
                .map_err(|_| bad("secret"))?,
            space: self.replica.identity.space,
            names_key: self.replica.identity.keys.space.names_key(),
            server_url: self.replica.identity.server_url.clone(),
        })
    }

    /// Every device of the space, with names opened locally.
    pub async fn devices(&self) -> Result<Vec<DeviceView>> {
        let mut conn = self.connect().await?;
        self.replica.pull_roster(&mut conn).await?;
        self.replica.devices_on(&mut conn).await
    }

    /// The device `typed` (its id or a unique prefix) names, refused if it is this device.
    pub async fn device_to_revoke(&self, typed: &str) -> Result<DeviceView> {
        let devices = self.devices().await?;
        pick_device(&devices, typed)
    }

    /// Revokes one of this partner's devices, named by its id or a unique prefix of it, and
    /// with it every device it linked, transitively. Returns every device this revoked, the
    /// named one first.
    pub async fn revoke(&self, typed: &str) -> Result<Vec<DeviceView>> {
        let mut conn = self.connect().await?;
        let before = self.replica.devices_on(&mut conn).await?;
        let device = pick_device(&before, typed)?;
        let id = DeviceId::parse_hex(&device.id)
            .ok_or_else(|| CoreError::Protocol("device id".into()))?;
        self.replica.write_revoke(&mut conn, id).await?;
        conn.space
            .revoke_device(RevokeDeviceRequest {
                device_id: id.as_bytes().to_vec(),
            })
            .await
            .map_err(|s| conn.error(s))?;
        let after = self.replica.devices_on(&mut conn).await?;
        let was_live = |d: &DeviceView| before.iter().any(|b| b.id == d.id && !b.revoked);
        let mut revoked: Vec<DeviceView> = after
            .into_iter()
            .filter(|d| d.revoked && was_live(d) && d.id != device.id)
            .collect();
        revoked.insert(
            0,
            DeviceView {
                revoked: true,
                ..device
            },
        );
        Ok(revoked)
    }

    /// Starts new key epochs for the space and this device's member: what is written from now
    /// on is sealed with fresh keys, sealed to every device the roster admits. For a user who
    /// fears a key was seen; revocations, departures and joins start new epochs on their own.
    pub async fn rotate_keys(&self) -> Result<()> {
        let mut conn = self.connect().await?;
        self.replica.write_rotate(&mut conn).await
    }

    /// Leaves the space: the server deletes this partner's private documents and revokes and
    /// deletes all of their devices; when the last partner leaves, the whole space is erased.
    /// This device's local copy stays until `wipe`.
    pub async fn leave(&self) -> Result<LeftSpace> {
        let mut conn = self.connect().await?;
        self.replica.write_leave(&mut conn).await?;
        let reply = conn
            .space
            .leave_space(kintsugi_proto::v1::LeaveSpaceRequest {})
            .await
            .map_err(|s| conn.error(s))?
            .into_inner();
        Ok(LeftSpace {
            devices_removed: reply.devices_removed,
            documents_removed: reply.documents_removed,
            space_erased: reply.space_erased,
        })
    }

    /// An authenticated connection to this device's server, for tools and tests that speak the
    /// protocol directly.
    pub async fn connect(&self) -> Result<Connection> {
        self.replica.connect().await
    }
}

/// Redeems the code's invite on the server, with the new member's recovery key for a partner.
async fn accept_invite(
    enrolment: &Enrolment<'_>,
    code: &InviteCode,
    recovery: Option<&RecoveryKeys>,
) -> Result<AcceptInviteResponse> {
    let (url, names) = (enrolment.server_url, &code.names_key);
    let response = Connection::pairing(url, enrolment.ca_cert_pem.as_deref())
        .await?
        .accept_invite(AcceptInviteRequest {
            invite_id: code.invite_id.to_vec(),
            secret: code.secret.to_vec(),
            sealed_member_name: seal_name(names, code.space, enrolment.member_name.trim()),
            sealed_device_name: seal_name(names, code.space, enrolment.device_name.trim()),
            recovery_key: recovery.map(|r| r.signing_key.clone()).unwrap_or_default(),
        })
        .await
        .map_err(|status| match status.code() {
            Code::NotFound
            | Code::FailedPrecondition
            | Code::PermissionDenied
            | Code::ResourceExhausted => CoreError::InviteRefused(status.message().to_string()),
            _ => status_error(url, status),
        })?
        .into_inner();
    if SpaceId::from_slice(&response.space_id)? != code.space {
        return Err(CoreError::Protocol(
            "the server joined a different space than the code names".into(),
        ));
    }
    Ok(response)
}

/// The first epoch key of `audience`, as this device knows it before the roster says so.
fn known(audience: EpochAudience, key: &SecretKey) -> KnownKey {
    KnownKey {
        audience,
        epoch: 0,
        key: key.clone(),
    }
}

fn welcome_without_keys() -> CoreError {
    CoreError::InviteRefused(
        "the invite's welcome holds no key of the space; ask for a new code".into(),
    )
}

/// The one device `typed` names by id or unique prefix; never this device itself.
fn pick_device(devices: &[DeviceView], typed: &str) -> Result<DeviceView> {
    let typed = typed.trim().to_lowercase();
    let matches: Vec<&DeviceView> = devices
        .iter()
        .filter(|d| !typed.is_empty() && d.id.starts_with(&typed))
        .collect();
    let device = match matches.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(CoreError::UnknownId {
                what: "device",
                id: typed,
                list: "devices",
            });
        }
        _ => {
            return Err(CoreError::InvalidInput(format!(
                "{typed} matches several devices; type more of the id"
            )));
        }
    };
    if device.this_device {
        return Err(CoreError::InvalidInput(
            "that is this device, and a device cannot revoke itself: run `kintsugi wipe` to stop \
             using it, or `kintsugi leave` to leave the space"
                .into(),
        ));
    }
    Ok(device)
}
