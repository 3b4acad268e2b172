//! Recovery: showing the kit a device keeps, making a new one, and enrolling a new device with
//! a kit after every device was lost.

use kintsugi_proto::v1::{ListDevicesRequest, RecoverMemberRequest, SetRecoveryKeyRequest};
use tonic::Code;

use super::Device;
use super::pairing::Enrolment;
use crate::envelope::{open_name, seal_name};
use crate::epoch_keys::EpochKeys;
use crate::error::{CoreError, Result};
use crate::ids::DeviceId;
use crate::keys::Keyring;
use crate::recovery_kit::{ROSTER_ROOT_LEN, RecoveryKit, RecoveryKitFile};
use crate::roster::{EpochAudience, Recipient};
use crate::store::PendingRosterEntry;
use crate::sync::client::{Connection, status_error};
use crate::sync::{read_roster, recovery_keys};

const RECOVER_SIGNATURE_PREFIX: &[u8] = b"kintsugi/recover-member/v1";

impl Device {
    /// The member's recovery kit, which this device keeps until it is shown: it is erased
    /// here, so a phone lost later holds no kit. The kit names the roster it belongs to.
    pub fn take_recovery_kit(&self) -> Result<String> {
        let file = RecoveryKitFile::in_dir(self.dir());
        let kit = file.load()?.ok_or_else(|| {
            CoreError::InvalidInput(
                "this device no longer keeps a recovery kit (it is shown once); to make a new \
                 one, which voids the old, run `kintsugi recovery show --new` on your first device"
                    .into(),
            )
        })?;
        let kit = self.with_roster_root(kit)?;
        file.erase()?;
        Ok(kit.encode())
    }

    /// Makes a new recovery kit for this device's member and records its key in the roster
    /// and on the server; the old kit stops working. Only the member's first device may.
    pub async fn new_recovery_kit(&self) -> Result<String> {
        let id = &self.replica.identity;
        let kit = RecoveryKit::generate(id.space, id.member, id.keys.space.names_key());
        let kit = self.with_roster_root(kit)?;
        let recovery = recovery_keys(&kit.secrets());
        let mut conn = self.connect().await?;
        self.replica
            .write_set_recovery(&mut conn, &recovery)
            .await?;
        conn.space
            .set_recovery_key(SetRecoveryKeyRequest {
                recovery_key: recovery.signing_key.clone(),
            })
            .await
            .map_err(|s| conn.error(s))?;
        RecoveryKitFile::in_dir(self.dir()).erase()?;
        Ok(kit.encode())
    }

    fn with_roster_root(&self, mut kit: RecoveryKit) -> Result<RecoveryKit> {
        let roster = self.replica.roster()?;
        if !roster.started() {
            return Err(CoreError::InvalidInput(
                "this device has not written the space's first roster entry yet: run \
                 `kintsugi sync` (online), then try again"
                    .into(),
            ));
        }
        kit.roster_root
            .copy_from_slice(&roster.root()[..ROSTER_ROOT_LEN]);
        Ok(kit)
    }

    /// Enrols a new first device of the member `kit_text` belongs to: the server revokes every
    /// other device of the member on seeing the kit's signature, and the roster does the same
    /// with the entry this device writes, signed by the kit's key.
    pub async fn recover(enrolment: Enrolment<'_>, kit_text: &str) -> Result<Device> {
        let kit = RecoveryKit::parse(kit_text)?;
        let (store, secrets) = enrolment.check()?;
        let (device, token) = recover_on_server(&enrolment, &kit).await?;
        let url = enrolment.server_url;
        let mut conn =
            Connection::open(url, enrolment.ca_cert_pem.as_deref(), &token, false).await?;
        let roster = read_roster(&mut conn, kit.space, &kit.roster_root).await?;
        let me = Recipient::Recovery(kit.member);
        let keys = EpochKeys::unlock(&roster, me, kit.secrets().agreement_secret(), []);
        let unreadable = || {
            CoreError::PermissionDenied(
                "the roster holds no key this recovery kit opens: it was replaced by a newer kit"
                    .into(),
            )
        };
        let first = |audience| keys.key(audience, 0).cloned().ok_or_else(unreadable);
        let keyring = Keyring {
            space: first(EpochAudience::Space)?,
            member: first(EpochAudience::Member(kit.member))?,
        };
        let member_name = member_name_on_server(&mut conn, &kit).await;
        let mut identity = enrolment.identity(
            kit.space,
            kit.member,
            device.as_bytes(),
            token,
            keyring,
            secrets,
        )?;
        if let Some(name) = member_name {
            identity.member_name = name;
        }
        let pending = PendingRosterEntry {
            recovery_kit: kit.encode(),
            ..PendingRosterEntry::default()
        };
        store.add_known_keys(&keys.all().collect::<Vec<_>>())?;
        let device = Device::enrolled(store, identity, enrolment.clock, false, &pending)?;
        device.finish_enrolment_now().await?;
        Ok(device)
    }
}

/// The name the kit's member gave itself, as the server keeps it sealed.
async fn member_name_on_server(conn: &mut Connection, kit: &RecoveryKit) -> Option<String> {
    let devices = conn
        .space
        .list_devices(ListDevicesRequest {})
        .await
        .ok()?
        .into_inner();
    devices
        .devices
        .iter()
        .filter(|d| d.member_id == kit.member.as_bytes())
        .find_map(|d| open_name(&kit.names_key, kit.space, &d.sealed_member_name))
}

/// Asks the server for a new device of the kit's member; returns its id and token.
async fn recover_on_server(
    enrolment: &Enrolment<'_>,
    kit: &RecoveryKit,
) -> Result<(DeviceId, String)> {
    let url = enrolment.server_url;
    let sealed_device_name = seal_name(&kit.names_key, kit.space, enrolment.device_name.trim());
    let issued_at = (enrolment.clock)().as_secs();
    let signed = [
        RECOVER_SIGNATURE_PREFIX,
        kit.space.as_bytes(),
        kit.member.as_bytes(),
        &issued_at.to_be_bytes(),
        &sealed_device_name,
    ]
    .concat();
    let request = RecoverMemberRequest {
        space_id: kit.space.as_bytes().to_vec(),
        member_id: kit.member.as_bytes().to_vec(),
        signature: kit.secrets().sign(&signed).to_vec(),
        sealed_device_name,
        issued_at,
    };
    let response = Connection::pairing(url, enrolment.ca_cert_pem.as_deref())
        .await?
        .recover_member(request)
        .await
        .map_err(|status| match status.code() {
            Code::PermissionDenied | Code::FailedPrecondition | Code::NotFound => {
                CoreError::PermissionDenied(status.message().to_string())
            }
            _ => status_error(url, status),
        })?
        .into_inner();
    Ok((DeviceId::from_slice(&response.device_id)?, response.token))
}
