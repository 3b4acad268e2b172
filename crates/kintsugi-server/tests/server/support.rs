//! Shared helpers for the server's end-to-end tests: a real server on 127.0.0.1 with a
//! scratch data folder (optionally TLS, always a metrics listener), and devices that talk to
//! it through the generated tonic clients.

#![allow(dead_code, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kintsugi_proto::admin::v1::admin_service_client::AdminServiceClient;
use kintsugi_proto::v1::pairing_service_client::PairingServiceClient;
use kintsugi_proto::v1::space_service_client::SpaceServiceClient;
use kintsugi_proto::v1::sync_service_client::SyncServiceClient;
use kintsugi_proto::v1::{
    AcceptInviteRequest, Audience, CreateInviteRequest, CreateSpaceRequest, Envelope, EnvelopeKind,
    InviteKind, PushRequest,
};
use kintsugi_server::{Config, ServerError, SystemClock, TlsFiles};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::{Request, Status};

/// A server running in this process.
#[derive(Debug)]
pub struct TestServer {
    pub url: String,
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub metrics: SocketAddr,
    /// The CA a client must trust, when the server serves TLS.
    pub ca_pem: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServerError>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server whose `Config` `adjust` changes first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let data = dir.path().join("data");
        Self::launch(dir, data, None, adjust).await
    }

    /// A server on an existing data folder (a restored one, say).
    pub async fn start_in(data: &Path) -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary folder");
        Self::launch(dir, data.to_path_buf(), None, |_| {}).await
    }

    /// A TLS server with the certificate and key given as PEM; clients trust `ca_pem`.
    pub async fn start_tls(cert_pem: &str, key_pem: &str, ca_pem: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let data = dir.path().join("data");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, cert_pem).expect("written");
        std::fs::write(&key, key_pem).expect("written");
        let tls = TlsFiles { cert, key };
        Self::launch(dir, data, Some(ca_pem.to_owned()), |config| {
            config.tls = Some(tls);
        })
        .await
    }

    async fn launch(
        dir: tempfile::TempDir,
        data: PathBuf,
        ca_pem: Option<String>,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let metrics_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let metrics = metrics_listener.local_addr().expect("an address");
        let address = listener.local_addr().expect("an address");
        let scheme = if ca_pem.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{address}");
        let (stop, stopped) = oneshot::channel::<()>();
        let mut config = Config::new(&data);
        adjust(&mut config);
        let handle = tokio::spawn(kintsugi_server::run_with_listeners(
            listener,
            Some(metrics_listener),
            config,
            Arc::new(SystemClock),
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            url,
            dir,
            data,
            metrics,
            ca_pem,
            stop: Some(stop),
            handle,
        }
    }

    /// Asks the server to stop and returns what `run` returned, and the scratch folder.
    pub async fn stop(mut self) -> (Result<(), ServerError>, tempfile::TempDir) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = (&mut self.handle)
            .await
            .expect("the server task does not panic");
        (result, self.dir)
    }

    pub async fn try_channel(&self) -> Result<Channel, tonic::transport::Error> {
        let mut endpoint = Channel::from_shared(self.url.clone()).expect("a valid url");
        if let Some(ca) = &self.ca_pem {
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost");
            endpoint = endpoint.tls_config(tls).expect("a TLS config");
        }
        endpoint.connect().await
    }

    pub async fn channel(&self) -> Channel {
        self.try_channel()
            .await
            .expect("the server accepts connections")
    }

    pub async fn pairing(&self) -> PairingServiceClient<Channel> {
        PairingServiceClient::new(self.channel().await)
    }

    /// An admin client with the token from the data folder.
    pub async fn admin(&self) -> AdminClient {
        let token =
            kintsugi_server::admin::read_admin_token(&self.data).expect("the server wrote it");
        AdminServiceClient::with_interceptor(self.channel().await, Bearer::of(&token))
    }

    /// The text of `GET /metrics`.
    pub async fn scrape(&self) -> String {
        let mut stream = tokio::net::TcpStream::connect(self.metrics)
            .await
            .expect("the metrics listener accepts");
        let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.expect("sent");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("a response");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response
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

    /// The same device on another server (a restored one): same token, new connection.
    pub async fn reconnect(&self, device: &TestDevice) -> TestDevice {
        TestDevice {
            space_id: device.space_id.clone(),
            member_id: device.member_id.clone(),
            device_id: device.device_id.clone(),
            token: device.token.clone(),
            channel: self.channel().await,
            next_client_seq: device.next_client_seq,
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

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("a readable folder") {
                pending.push(entry.expect("an entry").path());
            }
        } else if std::fs::read(&path)
            .expect("a readable file")
            .windows(needle.len())
            .any(|window| window == needle)
        {
            found.push(path);
        }
    }
    found
}
