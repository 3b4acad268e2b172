//! Shared helpers for the server's end-to-end tests: devices that talk to a
//! `kintsugi_server::testing::TestServer` through the generated tonic clients.

#![allow(dead_code, clippy::expect_used)]

use ed25519_dalek::{Signer, SigningKey};
use kintsugi_proto::admin::v1::admin_service_client::AdminServiceClient;
use kintsugi_proto::v1::pairing_service_client::PairingServiceClient;
use kintsugi_proto::v1::space_service_client::SpaceServiceClient;
use kintsugi_proto::v1::sync_service_client::SyncServiceClient;
use kintsugi_proto::v1::{
    AcceptInviteRequest, Audience, CreateInviteRequest, CreateSpaceRequest, Envelope, EnvelopeKind,
    InviteKind, PushRequest, RecoverMemberRequest,
};
use kintsugi_server::testing::TestServer;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// What the server's tests do on a `TestServer` through its gRPC clients: pair devices and
/// call the admin service.
pub trait Clients {
    /// A pairing client (no token).
    async fn pairing(&self) -> PairingServiceClient<Channel>;
    /// An admin client with the token from the data folder.
    async fn admin(&self) -> AdminClient;
    /// Creates a space; returns its first device.
    async fn create_space(&self) -> TestDevice;
    /// `inviter` invites, and a new device redeems the invite.
    async fn invite(&self, inviter: &TestDevice, kind: InviteKind) -> TestDevice;
    /// The same device on another server (a restored one): same token, new connection.
    async fn reconnect(&self, device: &TestDevice) -> TestDevice;
}

impl Clients for TestServer {
    async fn pairing(&self) -> PairingServiceClient<Channel> {
        PairingServiceClient::new(self.channel().await)
    }

    async fn admin(&self) -> AdminClient {
        let token = self.admin_token();
        AdminServiceClient::with_interceptor(self.channel().await, Bearer::of(&token))
    }

    async fn create_space(&self) -> TestDevice {
        let space_id = random16();
        let kit = recovery_kit();
        let created = self
            .pairing()
            .await
            .create_space(CreateSpaceRequest {
                space_id: space_id.clone(),
                sealed_member_name: b"sealed: Alex".to_vec(),
                sealed_device_name: b"sealed: phone".to_vec(),
                recovery_key: public_key(&kit),
            })
            .await
            .expect("the space is created")
            .into_inner();
        TestDevice {
            space_id,
            member_id: created.member_id,
            device_id: created.device_id,
            token: created.token,
            channel: self.channel().await,
            next_client_seq: 1,
            recovery: Some(kit),
        }
    }

    async fn invite(&self, inviter: &TestDevice, kind: InviteKind) -> TestDevice {
        let invite = inviter
            .space()
            .create_invite(CreateInviteRequest { kind: kind as i32 })
            .await
            .expect("the invite is created")
            .into_inner();
        // A partner brings a recovery kit of their own; a linked device shares its member's.
        let recovery = match kind {
            InviteKind::Partner => Some(recovery_kit()),
            _ => inviter.recovery.clone(),
        };
        let recovery_key = match kind {
            InviteKind::Partner => recovery.as_ref().map(public_key).unwrap_or_default(),
            _ => Vec::new(),
        };
        let joined = self
            .pairing()
            .await
            .accept_invite(AcceptInviteRequest {
                invite_id: invite.invite_id,
                secret: invite.secret,
                sealed_member_name: b"sealed: Sam".to_vec(),
                sealed_device_name: b"sealed: tablet".to_vec(),
                recovery_key,
            })
            .await
            .expect("the invite is accepted")
            .into_inner();
        TestDevice {
            space_id: joined.space_id,
            member_id: joined.member_id,
            device_id: joined.device_id,
            token: joined.token,
            channel: self.channel().await,
            next_client_seq: 1,
            recovery,
        }
    }

    async fn reconnect(&self, device: &TestDevice) -> TestDevice {
        TestDevice {
            space_id: device.space_id.clone(),
            member_id: device.member_id.clone(),
            device_id: device.device_id.clone(),
            token: device.token.clone(),
            channel: self.channel().await,
            next_client_seq: device.next_client_seq,
            recovery: device.recovery.clone(),
        }
    }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn of(token: &str) -> Bearer {
        let value = format!("Bearer {token}").parse().expect("an ASCII header");
        Bearer(Some(value))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type SyncClient = SyncServiceClient<InterceptedService<Channel, Bearer>>;
pub type SpaceClient = SpaceServiceClient<InterceptedService<Channel, Bearer>>;
pub type AdminClient = AdminServiceClient<InterceptedService<Channel, Bearer>>;

/// One device: its ids, its token and a connection.
#[derive(Debug)]
pub struct TestDevice {
    pub space_id: Vec<u8>,
    pub member_id: Vec<u8>,
    pub device_id: Vec<u8>,
    pub token: String,
    pub channel: Channel,
    pub next_client_seq: u64,
    /// The recovery kit of the device's member, when the test made it.
    pub recovery: Option<SigningKey>,
}

impl TestDevice {
    pub fn sync(&self) -> SyncClient {
        SyncServiceClient::with_interceptor(self.channel.clone(), Bearer::of(&self.token))
    }

    pub fn space(&self) -> SpaceClient {
        SpaceServiceClient::with_interceptor(self.channel.clone(), Bearer::of(&self.token))
    }

    /// A sync client that sends no token at all.
    pub fn anonymous_sync(&self) -> SyncClient {
        SyncServiceClient::with_interceptor(self.channel.clone(), Bearer(None))
    }

    /// A change envelope from this device with the next client_seq.
    pub fn change(&mut self, ciphertext: &[u8]) -> Envelope {
        let client_seq = self.next_client_seq;
        self.next_client_seq += 1;
        Envelope {
            device_id: self.device_id.clone(),
            client_seq,
            kind: EnvelopeKind::Change as i32,
            nonce: vec![7; 24],
            ciphertext: ciphertext.to_vec(),
            server_seq: 0,
            signature: Vec::new(),
            key_epoch: 0,
        }
    }
}

/// A new recovery kit: the signing key whose public half a member records.
pub fn recovery_kit() -> SigningKey {
    SigningKey::from_bytes(&rand::random())
}

/// The recovery key a request carries for `kit`.
pub fn public_key(kit: &SigningKey) -> Vec<u8> {
    kit.verifying_key().to_bytes().to_vec()
}

/// Unix seconds now, as a recovery kit stamps its request.
pub fn unix_now() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(now.expect("after 1970").as_secs()).expect("in range")
}

/// A `RecoverMember` request signed by `kit`, as docs/protocol.md spells the signed bytes:
/// "kintsugi/recover-member/v1", space id, member id, issued_at (i64 big-endian), device name.
pub fn recover_request(
    kit: &SigningKey,
    space_id: &[u8],
    member_id: &[u8],
    issued_at: i64,
) -> RecoverMemberRequest {
    let sealed_device_name = b"sealed: new phone".to_vec();
    let mut signed = b"kintsugi/recover-member/v1".to_vec();
    signed.extend_from_slice(space_id);
    signed.extend_from_slice(member_id);
    signed.extend_from_slice(&issued_at.to_be_bytes());
    signed.extend_from_slice(&sealed_device_name);
    RecoverMemberRequest {
        space_id: space_id.to_vec(),
        member_id: member_id.to_vec(),
        sealed_device_name,
        issued_at,
        signature: kit.sign(&signed).to_bytes().to_vec(),
    }
}

pub fn push_request(doc_id: &[u8], audience: Audience, envelopes: Vec<Envelope>) -> PushRequest {
    PushRequest {
        doc_id: doc_id.to_vec(),
        audience: audience as i32,
        envelopes,
    }
}

/// 16 random bytes; as a document id, one of a shared document (top bit clear).
pub fn random16() -> Vec<u8> {
    let mut id = kintsugi_server::ids::DocId::random().to_vec();
    id[0] &= 0x7f;
    id
}

/// A random id of a private document (top bit of the first byte set).
pub fn private_doc() -> Vec<u8> {
    let mut id = random16();
    id[0] |= 0x80;
    id
}

/// Bytes nobody else would write: 64 random ones.
pub fn distinctive_bytes() -> Vec<u8> {
    (0..4).flat_map(|_| random16()).collect()
}

/// A test CA and a certificate it signed for `localhost` and `127.0.0.1`:
/// (ca_pem, cert_pem, key_pem).
pub fn test_certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("Kintsugi test CA {}", kintsugi_server::ids::DocId::random()),
    );
    let ca_key = KeyPair::generate().expect("a CA key");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("a CA");
    let leaf_key = KeyPair::generate().expect("a server key");
    let leaf_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server parameters");
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .expect("a server certificate");
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}
