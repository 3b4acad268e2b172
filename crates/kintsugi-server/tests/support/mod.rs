//! Shared helpers for the server's end-to-end tests: a real server on 127.0.0.1 with a
//! scratch data folder, and devices that talk to it through the generated tonic clients.

#![allow(dead_code, clippy::expect_used)]

use kintsugi_proto::v1::pairing_service_client::PairingServiceClient;
use kintsugi_proto::v1::space_service_client::SpaceServiceClient;
use kintsugi_proto::v1::sync_service_client::SyncServiceClient;
use kintsugi_proto::v1::{
    AcceptInviteRequest, Audience, CreateInviteRequest, CreateSpaceRequest, Envelope, EnvelopeKind,
    InviteKind, PushRequest,
};
use kintsugi_server::{Config, ServerError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// A server running in this process.
#[derive(Debug)]
pub struct TestServer {
    pub url: String,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServerError>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let config = Config::new(dir.path());
        let handle = tokio::spawn(kintsugi_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        TestServer {
            url,
            dir,
            stop: Some(stop),
            handle,
        }
    }

    /// Asks the server to stop and returns what `run` returned, and the data folder.
    pub async fn stop(mut self) -> (Result<(), ServerError>, tempfile::TempDir) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = (&mut self.handle)
            .await
            .expect("the server task does not panic");
        (result, self.dir)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .expect("a valid url")
            .connect()
            .await
            .expect("the server accepts connections")
    }

    pub async fn pairing(&self) -> PairingServiceClient<Channel> {
        PairingServiceClient::new(self.channel().await)
    }

    /// Creates a space; returns its first device.
    pub async fn create_space(&self) -> TestDevice {
        let space_id = random16();
        let created = self
            .pairing()
            .await
            .create_space(CreateSpaceRequest {
                space_id: space_id.clone(),
                sealed_member_name: b"sealed: Alex".to_vec(),
                sealed_device_name: b"sealed: phone".to_vec(),
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
        }
    }

    /// `inviter` invites, and a new device redeems the invite.
    pub async fn invite(&self, inviter: &TestDevice, kind: InviteKind) -> TestDevice {
        let invite = inviter
            .space()
            .create_invite(CreateInviteRequest { kind: kind as i32 })
            .await
            .expect("the invite is created")
            .into_inner();
        let joined = self
            .pairing()
            .await
            .accept_invite(AcceptInviteRequest {
                invite_id: invite.invite_id,
                secret: invite.secret,
                sealed_member_name: b"sealed: Sam".to_vec(),
                sealed_device_name: b"sealed: tablet".to_vec(),
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
        }
    }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

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

/// One device: its ids, its token and a connection.
#[derive(Debug)]
pub struct TestDevice {
    pub space_id: Vec<u8>,
    pub member_id: Vec<u8>,
    pub device_id: Vec<u8>,
    pub token: String,
    pub channel: Channel,
    pub next_client_seq: u64,
}

impl TestDevice {
    fn bearer(&self) -> Bearer {
        let value = format!("Bearer {}", self.token)
            .parse()
            .expect("an ASCII header");
        Bearer(Some(value))
    }

    pub fn sync(&self) -> SyncClient {
        SyncServiceClient::with_interceptor(self.channel.clone(), self.bearer())
    }

    pub fn space(&self) -> SpaceClient {
        SpaceServiceClient::with_interceptor(self.channel.clone(), self.bearer())
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
        }
    }
}

pub fn push_request(doc_id: &[u8], audience: Audience, envelopes: Vec<Envelope>) -> PushRequest {
    PushRequest {
        doc_id: doc_id.to_vec(),
        audience: audience as i32,
        envelopes,
    }
}

pub fn random16() -> Vec<u8> {
    kintsugi_server::ids::DocId::random().to_vec()
}
