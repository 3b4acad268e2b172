//! The gRPC stack and its lifecycle: checks, start, serve, and an orderly stop.
//!
//! `start` refuses what must not run (plaintext off loopback, metrics off loopback without
//! consent, unusable TLS files), opens the store, makes sure the admin token exists, and
//! hands over to `serve`. `serve` mounts, behind one `ObserveLayer`: gRPC health (every
//! Kintsugi service SERVING until shutdown), reflection, `PairingService`, and behind the
//! token interceptors `SpaceService`, `SyncService` and `AdminService`; the pairing and space
//! services decode at most `PAIRING_MESSAGE_BYTES` a request. HTTP/2 keepalive pings
//! reap dead mobile connections. On shutdown it marks the services NOT_SERVING, ends the
//! Subscribe streams, lets calls finish for `shutdown_grace` at most, stops the metrics
//! listener, waits for background tasks to let go of the store, and flushes it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kintsugi_proto::admin::v1::admin_service_server::AdminServiceServer;
use kintsugi_proto::v1::pairing_service_server::PairingServiceServer;
use kintsugi_proto::v1::space_service_server::SpaceServiceServer;
use kintsugi_proto::v1::sync_service_server::SyncServiceServer;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::admin_token;
use crate::auth::{AdminAuthenticator, Authenticator};
use crate::clock::Clock;
use crate::error::ServerError;
use crate::metrics::Metrics;
use crate::observe::ObserveLayer;
use crate::service::{AdminApi, PairingApi, SpaceApi, State, SyncApi};
use crate::settings::Config;
use crate::store::{SledStore, Store, StoreError};
use crate::wire_bytes::{CountedStream, WireCounters};
use crate::{is_loopback, metrics, service, tls};

/// How long `serve` waits, after the last connection closed, for streams and background tasks
/// to let go of the store before it closes it anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request `PairingService` and `SpaceService` decode. Their requests are ids, a
/// 32-byte secret and sealed names of at most 1 KiB; tonic refuses a longer one from its
/// length prefix (`OutOfRange`), before buffering it, so callers without a token cannot make
/// the server hold large bodies before any rate limit applies.
pub const PAIRING_MESSAGE_BYTES: usize = 64 * 1024;

/// The services health reports on, besides the server as a whole ("").
const SERVICES: [&str; 4] = [
    <PairingServiceServer<PairingApi> as NamedService>::NAME,
    <SpaceServiceServer<SpaceApi> as NamedService>::NAME,
    <SyncServiceServer<SyncApi> as NamedService>::NAME,
    <AdminServiceServer<AdminApi> as NamedService>::NAME,
];

pub(crate) async fn start(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let address = listener.local_addr()?;
    if config.tls.is_none() && !is_loopback(address) {
        return Err(ServerError::PlaintextNotLoopback(address));
    }
    let metrics_listener = match (metrics_listener, config.metrics_listen) {
        (Some(listener), _) => Some(listener),
        (None, Some(address)) => {
            Some(
                TcpListener::bind(address)
                    .await
                    .map_err(|source| ServerError::Bind {
                        what: "metrics",
                        address,
                        source,
                    })?,
            )
        }
        (None, None) => None,
    };
    if let Some(listener) = &metrics_listener {
        let metrics_address = listener.local_addr()?;
        if !config.metrics_public && !is_loopback(metrics_address) {
            return Err(ServerError::MetricsNotLoopback(metrics_address));
        }
    }
    // Fail on bad TLS files before anything else is touched.
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout));
    if let Some(files) = &config.tls {
        builder = tls::configure(builder, files)?;
    }
    let dir = config.data_dir.clone();
    let opening = dir.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let store =
            SledStore::open(&opening).map_err(|e| ServerError::from_open(opening.clone(), e))?;
        let admin = admin_token::ensure(&opening)?;
        Ok::<_, ServerError>((store, admin))
    })
    .await
    .map_err(|error| ServerError::Io(std::io::Error::other(error)))?;
    let (store, admin) = opened?;
    let store: Arc<dyn Store> = Arc::new(store);
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let metrics = metrics_listener
        .as_ref()
        .and_then(|listener| listener.local_addr().ok())
        .map_or_else(|| "off".to_string(), |address| address.to_string());
    tracing::info!(%address, scheme, %metrics, data = %dir.display(), "kintsugi server listening");
    let parts = Parts {
        builder,
        admin: AdminAuthenticator::new(admin),
        metrics_listener,
    };
    serve(listener, parts, config, store, clock, shutdown).await
}

/// What `start` prepared for `serve`.
struct Parts {
    builder: Server,
    admin: AdminAuthenticator,
    metrics_listener: Option<TcpListener>,
}

/// Sets a service's decode and encode limits on a generated tonic server (their setters are
/// inherent methods, so this is a macro rather than a generic function).
macro_rules! limited {
    ($server:expr, decode: $decode:expr, encode: $encode:expr) => {
        $server
            .max_decoding_message_size($decode)
            .max_encoding_message_size($encode)
    };
}

/// The Kintsugi services, each with its message-size limits.
struct Services {
    pairing: PairingServiceServer<PairingApi>,
    space: SpaceServiceServer<SpaceApi>,
    sync: SyncServiceServer<SyncApi>,
    admin: AdminServiceServer<AdminApi>,
}

impl Services {
    /// Builds the services over `state`; pairing and space decode at most `PAIRING_MESSAGE_BYTES`.
    fn new(state: &Arc<State>, max_message: usize) -> Self {
        Services {
            pairing: limited!(
                PairingServiceServer::new(PairingApi::new(state.clone())),
                decode: PAIRING_MESSAGE_BYTES,
                encode: max_message
            ),
            space: limited!(
                SpaceServiceServer::new(SpaceApi::new(state.clone())),
                decode: PAIRING_MESSAGE_BYTES,
                encode: max_message
            ),
            sync: limited!(
                SyncServiceServer::new(SyncApi::new(state.clone())),
                decode: max_message,
                encode: max_message
            ),
            admin: limited!(
                AdminServiceServer::new(AdminApi::new(state.clone())),
                decode: max_message,
                encode: max_message
            ),
        }
    }
}

async fn serve(
    listener: TcpListener,
    parts: Parts,
    config: Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let dir = config.data_dir.clone();
    let max_message = config.max_message_bytes;
    let grace = config.shutdown_grace;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (alive_tx, alive_rx) = mpsc::channel::<()>(1);
    let state = Arc::new(State::new(
        store.clone(),
        config,
        clock,
        stop_rx.clone(),
        alive_tx,
    )?);
    let metrics = state.metrics.clone();
    let wire = metrics.wire.clone();
    service::spawn_compaction(state.clone());
    metrics::spawn_store_gauge(state.clone());

    let (health, health_service) = tonic_health::server::health_reporter();
    set_status(&health, &SERVICES, ServingStatus::Serving).await;
    let reflection = reflection()?;
    let authenticator = Authenticator::new(state.clone());
    let services = Services::new(&state, max_message);
    drop(state);

    let metrics_task = spawn_metrics(parts.metrics_listener, &metrics, &stop_rx);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: ending streams, finishing requests");
        set_status(&health, &[""], ServingStatus::NotServing).await;
        set_status(&health, &SERVICES, ServingStatus::NotServing).await;
        // Ends the Subscribe streams, which graceful shutdown would otherwise wait on forever.
        let _ = stop_tx.send(true);
    };
    let router = parts
        .builder
        .layer(ObserveLayer::new(metrics))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(services.pairing)
        .add_service(InterceptedService::new(
            services.space,
            authenticator.clone(),
        ))
        .add_service(InterceptedService::new(services.sync, authenticator))
        .add_service(InterceptedService::new(services.admin, parts.admin));
    let served = router.serve_with_incoming_shutdown(accept_counted(listener, wire), signal);
    let overdue = async {
        stopped(stop_rx.clone()).await;
        tokio::time::sleep(grace).await;
    };
    let served = tokio::select! {
        served = served => served,
        () = overdue => {
            tracing::warn!(?grace, "calls still open after the shutdown grace period; closing them");
            Ok(())
        }
    };
    if let Some(task) = metrics_task {
        stop_metrics(task, grace).await;
    }
    let closed = close_store(store, alive_rx).await?;
    served?;
    closed.map_err(|source| ServerError::Store { dir, source })?;
    tracing::info!("kintsugi server stopped");
    Ok(())
}

/// Reports `status` for each named service.
async fn set_status(
    health: &tonic_health::server::HealthReporter,
    names: &[&str],
    status: ServingStatus,
) {
    for name in names {
        health.set_service_status(*name, status).await;
    }
}

/// gRPC reflection over the Kintsugi and health descriptors.
fn reflection() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    ServerError,
> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(kintsugi_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| ServerError::Reflection(error.to_string()))
}

/// Starts the metrics listener, if there is one, until the server stops.
fn spawn_metrics(
    listener: Option<TcpListener>,
    metrics: &Arc<Metrics>,
    stop_rx: &watch::Receiver<bool>,
) -> Option<JoinHandle<std::io::Result<()>>> {
    listener.map(|listener| {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, "metrics at http://{address}/metrics");
        }
        tokio::spawn(metrics::serve(
            listener,
            metrics.clone(),
            stopped(stop_rx.clone()),
        ))
    })
}

/// The listener's connections, with Nagle's algorithm off and their traffic counted.
fn accept_counted(
    listener: TcpListener,
    wire: WireCounters,
) -> impl tokio_stream::Stream<Item = std::io::Result<CountedStream>> {
    // Small gRPC frames must not wait for Nagle's algorithm; tonic sets this itself only for
    // listeners it binds.
    TcpListenerStream::new(listener).map(move |connection| {
        let stream = connection?;
        let _ = stream.set_nodelay(true);
        Ok(CountedStream::new(stream, wire.clone()))
    })
}

/// Waits for the metrics listener to stop, for `grace` at most.
async fn stop_metrics(task: JoinHandle<std::io::Result<()>>, grace: Duration) {
    match tokio::time::timeout(grace, task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => tracing::warn!(%error, "the metrics listener failed"),
        Ok(Err(_)) | Err(_) => tracing::warn!("the metrics listener did not stop in time"),
    }
}

/// Waits for every holder of the state to let go, then flushes and closes the store.
async fn close_store(
    store: Arc<dyn Store>,
    mut alive_rx: mpsc::Receiver<()>,
) -> Result<Result<(), StoreError>, ServerError> {
    // Every stream, blocking task and background loop holds the state; wait until they let go.
    if tokio::time::timeout(DRAIN_TIMEOUT, alive_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not finish in time; closing the store anyway");
    }
    tokio::task::spawn_blocking(move || {
        let flushed = store.flush();
        // Dropping the last handle closes sled and releases the folder's lock.
        drop(store);
        flushed
    })
    .await
    .map_err(|error| ServerError::Io(std::io::Error::other(error)))
}

/// Resolves once the server is stopping (or the sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}
