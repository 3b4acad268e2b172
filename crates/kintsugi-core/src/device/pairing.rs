//! Making a space, inviting a partner or another device, joining, listing and revoking devices.
//!
//! Keys never travel through the server: the space key (and, for a device link, the member key)
//! go from phone to phone inside the invite code. The server sees only sealed names.

use std::path::Path;
use std::sync::Arc;

use kintsugi_proto::v1::{
    AcceptInviteRequest, CreateInviteRequest, CreateSpaceRequest, InviteKind, RevokeDeviceRequest,
};
use tonic::Code;

use super::{Clock, Device, DeviceView, Identity};
use crate::docs::{DocKind, agreement};
use crate::envelope::seal_name;
use crate::error::{CoreError, Result};
use crate::ids::{DeviceId, MemberId, SpaceId};
use crate::invite_code::{CodeKind, InviteCode};
use crate::key_store::{DeviceSecrets, FileKeyStore, KeyStore};
use crate::keys::{Keyring, SecretKey};
use crate::store::{LocalStore, PendingRosterEntry};
use crate::sync::client::{Connection, check_url, status_error};

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
    fn check(&self) -> Result<(LocalStore, Arc<DeviceSecrets>)> {
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
        let response = Connection::pairing(url, enrolment.ca_cert_pem.as_deref())
            .await?
            .create_space(CreateSpaceRequest {
                space_id: space.as_bytes().to_vec(),
                sealed_member_name: seal_name(&names, space, enrolment.member_name.trim()),
                sealed_device_name: seal_name(&names, space, enrolment.device_name.trim()),
            })
            .await
            .map_err(|s| status_error(url, s))?
            .into_inner();
        let identity = Identity {
            server_url: url.to_string(),
            space,
            member: MemberId::from_slice(&response.member_id)?,
            device: DeviceId::from_slice(&response.device_id)?,
            token: response.token,
            member_name: enrolment.member_name.trim().to_string(),
            device_name: enrolment.device_name.trim().to_string(),
            keys,
            secrets,
            ca_cert_pem: enrolment.ca_cert_pem.clone(),
        };
        make_recovery_keys(enrolment.dir)?;
        let pending = PendingRosterEntry {
            genesis: true,
            ..PendingRosterEntry::default()
        };
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
        let member_key = code.member_key.clone().unwrap_or_else(SecretKey::random);
        let names = code.space_key.names_key();
        let response = Connection::pairing(url, enrolment.ca_cert_pem.as_deref())
            .await?
            .accept_invite(AcceptInviteRequest {
                invite_id: code.invite_id.to_vec(),
                secret: code.secret.to_vec(),
                sealed_member_name: seal_name(&names, code.space, enrolment.member_name.trim()),
                sealed_device_name: seal_name(&names, code.space, enrolment.device_name.trim()),
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
        let identity = Identity {
            server_url: url.to_string(),
            space: code.space,
            member: MemberId::from_slice(&response.member_id)?,
            device: DeviceId::from_slice(&response.device_id)?,
            token: response.token,
            member_name: enrolment.member_name.trim().to_string(),
            device_name: enrolment.device_name.trim().to_string(),
            keys: Keyring {
                space: code.space_key.clone(),
                member: member_key,
            },
            secrets,
            ca_cert_pem: enrolment.ca_cert_pem.clone(),
        };
        let partner = code.kind == CodeKind::Partner;
        if partner {
            make_recovery_keys(enrolment.dir)?;
        }
        let pending = PendingRosterEntry {
            genesis: false,
            invite_id: code.invite_id.to_vec(),
            invite_seed: code.invite_seed.to_vec(),
            roster_root: code.roster_root.to_vec(),
        };
        let device = Self::enrolled(store, identity, enrolment.clock, partner, &pending)?;
        device.try_finish_enrolment().await;
        Ok(device)
    }

    fn enrolled(
        store: LocalStore,
        identity: Identity,
        clock: Clock,
        new_member: bool,
        pending: &PendingRosterEntry,
    ) -> Result<Device> {
        // The entry the roster is owed is remembered before the identity that makes the folder
        // a device, so no device exists that forgot it.
        store.set_pending_roster_entry(Some(pending))?;
        store.save_identity(&identity.to_record())?;
        let device = Device::assemble(store, identity, clock);
        let id = &device.replica.identity;
        let (member, device_id, name, now) = (
            id.member_key(),
            id.device.to_string(),
            id.member_name.clone(),
            device.now(),
        );
        let message = if new_member {
            format!("{name} joined")
        } else {
            format!("{name} linked a device")
        };
        device.edit(
            DocKind::Agreement,
            |_: &()| message,
            |tx| {
                if new_member {
                    agreement::add_member(tx, &member, &name, now)?;
                }
                agreement::add_device(tx, &device_id, &member)
            },
        )?;
        Ok(device)
    }

    /// Writes the roster entry `init` or `join` owes; when the network cuts it short, the
    /// next sync writes it.
    async fn try_finish_enrolment(&self) {
        let written = async {
            let mut conn = self.replica.connect().await?;
            self.replica.finish_enrolment(&mut conn).await
        };
        if let Err(error) = written.await {
            tracing::warn!(%error, "this device's roster entry waits for the next sync");
        }
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
            space_key: self.replica.identity.keys.space.clone(),
            member_key: (kind == CodeKind::Device)
                .then(|| self.replica.identity.keys.member.clone()),
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

/// Makes the member's recovery keys and keeps them beside the device's.
fn make_recovery_keys(dir: &Path) -> Result<()> {
    FileKeyStore::recovery_in_dir(dir).save(&DeviceSecrets::generate())
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
