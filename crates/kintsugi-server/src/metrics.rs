//! Prometheus metrics: what the server does, never what the data says.
//!
//! `Metrics` holds the counters the services update; `serve` answers `GET /metrics` on its own
//! plain-HTTP listener (OpenMetrics text, which Prometheus reads). Names, all prefixed
//! `kintsugi_`:
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `kintsugi_calls_total{method,code}` | counter | finished gRPC calls |
//! | `kintsugi_call_errors_total{method,code}` | counter | finished calls whose code is not OK |
//! | `kintsugi_pushes_total` | counter | acknowledged pushes |
//! | `kintsugi_pushed_envelopes_total` | counter | envelopes stored by pushes (retries excluded) |
//! | `kintsugi_pushed_bytes_total` | counter | their nonce and ciphertext bytes |
//! | `kintsugi_live_subscribers` | gauge | open Subscribe streams |
//! | `kintsugi_push_to_delivery_seconds` | histogram | from a push being durable to its envelopes being sent on a subscriber's stream |
//! | `kintsugi_store_bytes` | gauge | nonce and ciphertext bytes stored, refreshed every 15 s |
//! | `kintsugi_wire_received_bytes_total` | counter | bytes read from gRPC connections (TLS and HTTP/2 framing included) |
//! | `kintsugi_wire_sent_bytes_total` | counter | bytes written to them |
//!
//! Labels are bounded: `method` is a method the server serves or `unknown`, `code` a gRPC
//! code name. Nothing identifies a space, a device or a person.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State as AxumState;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::service::State;
use crate::wire_bytes::WireCounters;

/// How often the stored-bytes gauge is refreshed from the store.
const STORE_GAUGE_PERIOD: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: String,
    code: String,
}

/// The server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    call_errors: Family<CallLabels, Counter>,
    pub(crate) pushes: Counter,
    pub(crate) pushed_envelopes: Counter,
    pub(crate) pushed_bytes: Counter,
    pub(crate) live_subscribers: Gauge,
    pub(crate) push_to_delivery: Histogram,
    pub(crate) store_bytes: Gauge,
    pub(crate) wire: WireCounters,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("kintsugi");
        let calls = Family::<CallLabels, Counter>::default();
        let call_errors = Family::<CallLabels, Counter>::default();
        let pushes = Counter::default();
        let pushed_envelopes = Counter::default();
        let pushed_bytes = Counter::default();
        let live_subscribers = Gauge::default();
        // 1 ms to about 33 s.
        let push_to_delivery = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let store_bytes = Gauge::default();
        let wire = WireCounters::default();
        registry.register("calls", "Finished gRPC calls", calls.clone());
        registry.register(
            "call_errors",
            "Finished gRPC calls whose code is not OK",
            call_errors.clone(),
        );
        registry.register("pushes", "Acknowledged pushes", pushes.clone());
        registry.register(
            "pushed_envelopes",
            "Envelopes stored by pushes, retries excluded",
            pushed_envelopes.clone(),
        );
        registry.register(
            "pushed_bytes",
            "Nonce and ciphertext bytes stored by pushes",
            pushed_bytes.clone(),
        );
        registry.register(
            "live_subscribers",
            "Open Subscribe streams",
            live_subscribers.clone(),
        );
        registry.register(
            "push_to_delivery_seconds",
            "Seconds from a push being durable to its envelopes being sent to a subscriber",
            push_to_delivery.clone(),
        );
        registry.register(
            "store_bytes",
            "Nonce and ciphertext bytes in the store",
            store_bytes.clone(),
        );
        registry.register(
            "wire_received_bytes",
            "Bytes read from gRPC connections, TLS and HTTP/2 framing included",
            wire.received.clone(),
        );
        registry.register(
            "wire_sent_bytes",
            "Bytes written to gRPC connections, TLS and HTTP/2 framing included",
            wire.sent.clone(),
        );
        Self {
            registry,
            calls,
            call_errors,
            pushes,
            pushed_envelopes,
            pushed_bytes,
            live_subscribers,
            push_to_delivery,
            store_bytes,
            wire,
        }
    }

    /// Counts a finished call.
    pub(crate) fn call_finished(&self, method: &str, code: &str) {
        let labels = CallLabels {
            method: method.to_owned(),
            code: code.to_owned(),
        };
        if code != "OK" {
            self.call_errors.get_or_create(&labels).inc();
        }
        self.calls.get_or_create(&labels).inc();
    }

    /// The metrics in OpenMetrics text.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(%error, "encoding metrics failed");
        }
        text
    }
}

/// The content type of `encode`'s text.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn scrape(AxumState(metrics): AxumState<Arc<Metrics>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, OPENMETRICS)], metrics.encode())
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Keeps `kintsugi_store_bytes` current: at start, then every 15 seconds. It reads the
/// per-space quota counters (`Store::total_usage`), which the store keeps equal to what
/// `Store::stats` would count, without scanning every envelope.
pub(crate) fn spawn_store_gauge(state: Arc<State>) {
    tokio::spawn(async move {
        let mut stop = state.stop.clone();
        loop {
            if state.stopping() {
                break;
            }
            refresh_store_gauge(&state).await;
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(STORE_GAUGE_PERIOD) => {}
            }
        }
    });
}

/// Sets `kintsugi_store_bytes` from the store's statistics now.
pub(crate) async fn refresh_store_gauge(state: &Arc<State>) {
    match state.blocking(|state| Ok(state.store.total_usage()?)).await {
        Ok(bytes) => {
            state
                .metrics
                .store_bytes
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        Err(error) => tracing::warn!(%error, "counting stored bytes failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_has_every_documented_metric() {
        let metrics = Metrics::new();
        metrics.call_finished("kintsugi.sync.v1.SyncService/Push", "OK");
        metrics.call_finished("kintsugi.sync.v1.SyncService/Pull", "PERMISSION_DENIED");
        metrics.pushes.inc();
        let text = metrics.encode();
        for name in [
            "kintsugi_calls_total{method=\"kintsugi.sync.v1.SyncService/Push\",code=\"OK\"} 1",
            "kintsugi_call_errors_total{method=\"kintsugi.sync.v1.SyncService/Pull\",code=\"PERMISSION_DENIED\"} 1",
            "kintsugi_pushes_total 1",
            "kintsugi_pushed_envelopes_total 0",
            "kintsugi_pushed_bytes_total 0",
            "kintsugi_live_subscribers 0",
            "kintsugi_push_to_delivery_seconds_count 0",
            "kintsugi_store_bytes 0",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
