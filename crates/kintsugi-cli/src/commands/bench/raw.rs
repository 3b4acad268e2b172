//! Raw devices: each is a space of its own made with `CreateSpace` and a gRPC connection that
//! pushes small envelopes (random bytes the size of a small sealed change, as blind as the
//! server is) one at a time, each waiting for its durable acknowledgement.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use kintsugi_core::key_store::DeviceSecrets;
use kintsugi_proto::v1::pairing_service_client::PairingServiceClient;
use kintsugi_proto::v1::sync_service_client::SyncServiceClient;
use kintsugi_proto::v1::{
    Audience, CreateSpaceRequest, Envelope, EnvelopeKind, PushRequest, SubscribeRequest,
};
use rand::RngCore;
use tokio::task::JoinSet;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use super::server::BenchServer;
use super::{Phase, read_now};

/// Spaces created at once while setting up.
const SETUP_PARALLELISM: usize = 16;
/// Ciphertext bytes of one pushed envelope: with its nonce, signature and ids, about 350 bytes.
const CIPHERTEXT_BYTES: usize = 240;

/// Adds the device's bearer token to every call.
#[derive(Clone, Debug)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert(kintsugi_proto::AUTHORIZATION, self.0.clone());
        Ok(request)
    }
}

/// One device of a space of its own, connected.
#[derive(Debug)]
pub struct RawDevice {
    device_id: Vec<u8>,
    doc_id: Vec<u8>,
    pub sync: SyncServiceClient<InterceptedService<Channel, Bearer>>,
    next_seq: u64,
}

impl RawDevice {
    /// Creates a space on the server at `url` and connects its first device.
    pub async fn create(url: &str) -> anyhow::Result<Self> {
        let channel = Endpoint::from_shared(url.to_string())?.connect().await?;
        let mut pairing = PairingServiceClient::new(channel.clone());
        let created = pairing
            .create_space(CreateSpaceRequest {
                space_id: random_bytes(16),
                sealed_member_name: random_bytes(40),
                sealed_device_name: random_bytes(40),
                recovery_key: DeviceSecrets::generate()
                    .verifying_key()
                    .to_bytes()
                    .to_vec(),
            })
            .await
            .context("the server refused to create a benchmark space")?
            .into_inner();
        let token: MetadataValue<Ascii> = format!("Bearer {}", created.token).parse()?;
        let mut doc_id = random_bytes(16);
        doc_id[0] &= 0x7f; // the top bit clear: a shared document
        Ok(Self {
            device_id: created.device_id,
            doc_id,
            sync: SyncServiceClient::with_interceptor(channel, Bearer(token)),
            next_seq: 1,
        })
    }

    /// Creates `count` devices, a few at a time.
    pub async fn create_many(url: &str, count: usize) -> anyhow::Result<Vec<Self>> {
        let gate = Arc::new(tokio::sync::Semaphore::new(SETUP_PARALLELISM));
        let mut tasks = JoinSet::new();
        for _ in 0..count {
            let (url, gate) = (url.to_string(), gate.clone());
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await?;
                Self::create(&url).await
            });
        }
        let mut devices = Vec::with_capacity(count);
        while let Some(device) = tasks.join_next().await {
            devices.push(device??);
        }
        Ok(devices)
    }

    /// Pushes one envelope and waits for its acknowledgement.
    async fn push_one(&mut self) -> anyhow::Result<()> {
        let envelope = Envelope {
            device_id: self.device_id.clone(),
            client_seq: self.next_seq,
            kind: EnvelopeKind::Change as i32,
            nonce: random_bytes(24),
            ciphertext: random_bytes(CIPHERTEXT_BYTES),
            server_seq: 0,
            signature: random_bytes(64),
            key_epoch: 0,
        };
        self.next_seq += 1;
        let request = PushRequest {
            doc_id: self.doc_id.clone(),
            audience: Audience::Shared as i32,
            envelopes: vec![envelope],
        };
        self.sync
            .push(request)
            .await
            .context("a push was refused")?;
        Ok(())
    }

    /// Opens the live stream and keeps it, doing nothing with it.
    pub async fn subscribe(
        &mut self,
    ) -> anyhow::Result<tonic::Streaming<kintsugi_proto::v1::SubscribeEvent>> {
        let stream = self
            .sync
            .subscribe(SubscribeRequest {
                cursors: Vec::new(),
            })
            .await?;
        Ok(stream.into_inner())
    }
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// `devices` raw devices push for `duration`; the phase counts acknowledged pushes.
pub async fn run(
    server: &BenchServer,
    devices: usize,
    duration: Duration,
) -> anyhow::Result<Phase> {
    let devices = RawDevice::create_many(&server.url, devices).await?;
    let before = read_now(server)?;
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = JoinSet::new();
    for mut device in devices {
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                device.push_one().await?;
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok(latencies)
        });
    }
    let mut phase = Phase::default();
    while let Some(latencies) = tasks.join_next().await {
        phase.latencies_ms.extend(latencies??);
    }
    phase.elapsed = start.elapsed();
    phase.readings = Some((before, read_now(server)?));
    phase.changes = phase.latencies_ms.len() as u64;
    phase.pushes = phase.changes;
    Ok(phase)
}
