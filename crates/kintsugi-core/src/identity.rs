//! Who a device is: server, space, member, device, token, names and keys.

use std::sync::Arc;

use crate::ids::{DeviceId, MemberId, SpaceId};
use crate::key_store::DeviceSecrets;
use crate::keys::{Keyring, SecretKey};
use crate::store::IdentityRecord;

/// A device's identity, decoded from its record.
#[derive(Clone)]
pub struct Identity {
    pub server_url: String,
    pub space: SpaceId,
    pub member: MemberId,
    pub device: DeviceId,
    pub(crate) token: String,
    pub member_name: String,
    pub device_name: String,
    pub(crate) keys: Keyring,
    /// The device's own signing and agreement keys, from its `KeyStore`.
    pub(crate) secrets: Arc<DeviceSecrets>,
    /// PEM of the CA this device trusts for its server, when it is not in the web PKI.
    pub ca_cert_pem: Option<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token or keys.
        f.debug_struct("Identity")
            .field("server_url", &self.server_url)
            .field("space", &self.space)
            .field("member", &self.member)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl Identity {
    pub(crate) fn from_record(
        r: &IdentityRecord,
        secrets: Arc<DeviceSecrets>,
    ) -> Result<Self, String> {
        let id_error = |what: &str| format!("identity record: bad {what}");
        Ok(Self {
            server_url: r.server_url.clone(),
            space: SpaceId::from_slice(&r.space_id).map_err(|_| id_error("space id"))?,
            member: MemberId::from_slice(&r.member_id).map_err(|_| id_error("member id"))?,
            device: DeviceId::from_slice(&r.device_id).map_err(|_| id_error("device id"))?,
            token: r.token.clone(),
            member_name: r.member_name.clone(),
            device_name: r.device_name.clone(),
            keys: Keyring {
                space: SecretKey::from_slice(&r.space_key).ok_or_else(|| id_error("space key"))?,
                member: SecretKey::from_slice(&r.member_key)
                    .ok_or_else(|| id_error("member key"))?,
            },
            secrets,
            ca_cert_pem: (!r.ca_cert_pem.is_empty()).then(|| r.ca_cert_pem.clone()),
        })
    }

    pub(crate) fn to_record(&self) -> IdentityRecord {
        IdentityRecord {
            server_url: self.server_url.clone(),
            space_id: self.space.as_bytes().to_vec(),
            member_id: self.member.as_bytes().to_vec(),
            device_id: self.device.as_bytes().to_vec(),
            token: self.token.clone(),
            member_name: self.member_name.clone(),
            device_name: self.device_name.clone(),
            space_key: self.keys.space.expose().to_vec(),
            member_key: self.keys.member.expose().to_vec(),
            ca_cert_pem: self.ca_cert_pem.clone().unwrap_or_default(),
        }
    }

    /// The member id as it is written into documents.
    pub(crate) fn member_key(&self) -> String {
        self.member.to_string()
    }
}
