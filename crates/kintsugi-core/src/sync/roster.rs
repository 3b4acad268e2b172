//! Telling the user when a device joins or leaves the space: each sync compares the server's
//! device list with the one this device saw last, and reports what was added or revoked, the
//! partner's devices and this member's own (a device linked by a thief shows up here).

use kintsugi_proto::v1::ListDevicesRequest;
use serde::Serialize;

use super::client::Connection;
use super::report::{RosterChange, RosterEvent};
use crate::envelope::open_name;
use crate::error::Result;
use crate::ids::DeviceId;
use crate::replica::Replica;
use crate::roster::{EpochAudience, Recipient};
use crate::store::{RosterEntry, RosterRecord};

/// A device of the space as the devices list shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceView {
    pub id: String,
    pub name: String,
    pub member: String,
    pub revoked: bool,
    pub this_device: bool,
    /// Whether it is a device of this device's own member.
    pub mine: bool,
    /// The id of the device that linked it, for a member's later devices.
    pub linked_by: Option<String>,
    /// Whether the verified roster holds it (its signing keys are known to this device).
    pub in_roster: bool,
    /// Whether it was in the roster when this device's user last compared safety numbers
    /// (`kintsugi verify --confirm`); a device added since shows `false`.
    pub verified: bool,
    /// The newest key epoch of the space sealed to it: the space's current one for every
    /// device that reads new changes, an older one for a revoked device (`None`: none).
    pub epoch: Option<u64>,
}

impl Replica {
    /// The space's devices, over an open connection, with what the roster this device last
    /// pulled says of each (a sync pulls it first; `Device::devices` pulls it too).
    pub(crate) async fn devices_on(&self, conn: &mut Connection) -> Result<Vec<DeviceView>> {
        let roster = self.roster()?;
        let verified_len = self.store.verified_roster()?.map_or(0, |(len, _)| len);
        let response = conn
            .space
            .list_devices(ListDevicesRequest {})
            .await
            .map_err(|s| conn.error(s))?
            .into_inner();
        let names = self.identity.keys.space.names_key();
        let space = self.identity.space;
        let name = |sealed: &[u8]| {
            open_name(&names, space, sealed).unwrap_or_else(|| "(unreadable)".into())
        };
        response
            .devices
            .into_iter()
            .map(|d| {
                let id = DeviceId::from_slice(&d.device_id)?;
                let linked_by = match d.enrolled_by.as_slice() {
                    [] => None,
                    bytes => Some(DeviceId::from_slice(bytes)?.to_string()),
                };
                let in_roster = roster.device(id);
                Ok(DeviceView {
                    id: id.to_string(),
                    name: name(&d.sealed_device_name),
                    member: name(&d.sealed_member_name),
                    revoked: d.revoked || in_roster.is_some_and(|r| r.revoked_at.is_some()),
                    in_roster: in_roster.is_some(),
                    verified: in_roster.is_some_and(|r| r.added_at < verified_len),
                    epoch: roster
                        .newest_epoch_sealed_to(Recipient::Device(id), EpochAudience::Space),
                    this_device: id == self.identity.device,
                    mine: d.member_id == self.identity.member.as_bytes(),
                    linked_by,
                })
            })
            .collect()
    }

    /// Fetches the device list, reports what changed since the last one, and remembers it.
    /// The first look only remembers: everything would be "new" then.
    pub(crate) async fn roster_changes(
        &self,
        conn: &mut Connection,
    ) -> Result<(Vec<RosterChange>, Vec<DeviceView>)> {
        let devices = self.devices_on(conn).await?;
        let seen = self.store.roster()?;
        let changes = match &seen {
            Some(seen) => diff(seen, &devices),
            None => Vec::new(),
        };
        let record = RosterRecord {
            devices: devices.iter().filter_map(entry).collect(),
        };
        if seen.as_ref() != Some(&record) {
            self.store.save_roster(&record)?;
        }
        Ok((changes, devices))
    }
}

fn entry(device: &DeviceView) -> Option<RosterEntry> {
    let id = DeviceId::parse_hex(&device.id)?;
    Some(RosterEntry {
        device_id: id.as_bytes().to_vec(),
        revoked: device.revoked,
    })
}

/// What is new in `now` against `seen`: devices never seen, and devices revoked since.
fn diff(seen: &RosterRecord, now: &[DeviceView]) -> Vec<RosterChange> {
    let mut changes = Vec::new();
    for device in now.iter().filter(|d| !d.this_device) {
        let Some(current) = entry(device) else {
            continue;
        };
        let before = seen
            .devices
            .iter()
            .find(|e| e.device_id == current.device_id);
        // A device linked and revoked between two looks is still reported: it could read.
        let change = match before {
            None if !device.revoked => RosterEvent::Added,
            None => RosterEvent::Revoked,
            Some(before) if device.revoked && !before.revoked => RosterEvent::Revoked,
            _ => continue,
        };
        changes.push(RosterChange {
            device: device.id.clone(),
            name: device.name.clone(),
            member: device.member.clone(),
            mine: device.mine,
            change,
        });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: DeviceId, revoked: bool, mine: bool) -> DeviceView {
        DeviceView {
            id: id.to_string(),
            name: "phone".into(),
            member: "Bob".into(),
            revoked,
            this_device: false,
            mine,
            linked_by: None,
            in_roster: true,
            verified: false,
            epoch: Some(0),
        }
    }

    #[test]
    fn additions_and_revocations_since_the_last_look_are_reported_once() {
        let (old, new) = (DeviceId::random(), DeviceId::random());
        let seen = RosterRecord {
            devices: vec![RosterEntry {
                device_id: old.as_bytes().to_vec(),
                revoked: false,
            }],
        };
        let now = [view(old, true, false), view(new, false, true)];
        let changes = diff(&seen, &now);
        let events: Vec<(String, RosterEvent)> = changes
            .iter()
            .map(|c| (c.device.clone(), c.change))
            .collect();
        assert_eq!(
            events,
            [
                (old.to_string(), RosterEvent::Revoked),
                (new.to_string(), RosterEvent::Added)
            ]
        );
        assert!(
            changes[1]
                .to_string()
                .starts_with("a new device was linked to your account")
        );
        assert_eq!(
            changes[0].to_string(),
            format!("Bob's device phone ({old}) was revoked")
        );
        let seen = RosterRecord {
            devices: now.iter().filter_map(entry).collect(),
        };
        assert!(diff(&seen, &now).is_empty(), "nothing is reported twice");
    }
}
