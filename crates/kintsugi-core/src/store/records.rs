//! The records the local store keeps, encoded with prost like everything on the wire.

use kintsugi_proto::v1::{Audience, Envelope};

use crate::ids::DocId;

/// Who this device is, where its server is, and its keys.
///
/// On a phone the app would keep the token and keys in the OS keystore; the CLI keeps them here,
/// in a folder only its user can read (see docs/security.md).
#[derive(Clone, PartialEq, prost::Message)]
pub struct IdentityRecord {
    #[prost(string, tag = "1")]
    pub server_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub space_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub member_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub device_id: Vec<u8>,
    #[prost(string, tag = "5")]
    pub token: String,
    #[prost(string, tag = "6")]
    pub member_name: String,
    #[prost(string, tag = "7")]
    pub device_name: String,
    #[prost(bytes = "vec", tag = "8")]
    pub space_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "9")]
    pub member_key: Vec<u8>,
    /// PEM of a CA to trust for this server, when it is not in the web PKI.
    #[prost(string, tag = "10")]
    pub ca_cert_pem: String,
}

/// A sealed local change waiting to be pushed. Sealed at edit time, so a retry after a crash
/// sends exactly the same bytes and the server's idempotency on (device, client_seq) holds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OutboxRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub doc_id: Vec<u8>,
    #[prost(enumeration = "Audience", tag = "2")]
    pub audience: i32,
    #[prost(message, optional, tag = "3")]
    pub envelope: Option<Envelope>,
}

/// A change waiting in the outbox, as the sync engine pushes it.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingChange {
    pub doc_id: DocId,
    pub audience: Audience,
    pub envelope: Envelope,
}

/// An envelope from the server that this device could not accept (it does not open, is not a
/// valid change by its sender, or depends on one that was not), kept for inspection. The
/// cursor moves past it, so later changes still apply.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SetAsideRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub doc_id: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub server_seq: u64,
    /// The device the envelope names as its sender (the server checks it is the pusher).
    #[prost(bytes = "vec", tag = "3")]
    pub device_id: Vec<u8>,
    #[prost(string, tag = "4")]
    pub reason: String,
    #[prost(message, optional, tag = "5")]
    pub envelope: Option<Envelope>,
}

/// A roster entry this device still has to write: the genesis of the space it created, or
/// the entry that adds it through the invite it joined with. Kept until the roster has it, so
/// an enrolment cut off by the network finishes at the next sync.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PendingRosterEntry {
    #[prost(bool, tag = "1")]
    pub genesis: bool,
    #[prost(bytes = "vec", tag = "2")]
    pub invite_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub invite_seed: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub roster_root: Vec<u8>,
    /// The new member's recovery keys (public halves), for a genesis or a partner's join.
    #[prost(message, optional, tag = "5")]
    pub recovery: Option<kintsugi_proto::v1::RecoveryKeys>,
    /// For a device enrolled with a recovery kit: the kit, whose key signs the entry. Kept
    /// only until the entry is written.
    #[prost(string, tag = "6")]
    pub recovery_kit: String,
}

/// The devices of the space as this device last saw them, to tell the user what changed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RosterRecord {
    #[prost(message, repeated, tag = "1")]
    pub devices: Vec<RosterEntry>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RosterEntry {
    #[prost(bytes = "vec", tag = "1")]
    pub device_id: Vec<u8>,
    #[prost(bool, tag = "2")]
    pub revoked: bool,
}

/// An epoch key this device learned outside the roster: its own first keys, or a welcome.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KnownKeyRecord {
    /// Empty for the space's key, else the member whose private documents it reads.
    #[prost(bytes = "vec", tag = "1")]
    pub member_id: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub epoch: u64,
    #[prost(bytes = "vec", tag = "3")]
    pub key: Vec<u8>,
}

/// Every `KnownKeyRecord` of the device.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KnownKeysRecord {
    #[prost(message, repeated, tag = "1")]
    pub keys: Vec<KnownKeyRecord>,
}
