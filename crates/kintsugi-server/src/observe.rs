//! Per-call observability: one tracing span and one log line per gRPC call, and call metrics.
//!
//! `ObserveLayer` wraps every service. For each call it opens a `call` span with the method,
//! attaches a `CallTag` to the request so the authenticating interceptor can record the space
//! and device ids, and wraps the response body so the call is finished where gRPC finishes
//! it: at the `grpc-status` of the trailers (or of the headers, for an error without a body),
//! which for a Subscribe stream is when the stream ends. Finishing records the status code and
//! the latency on the span, logs `call finished` at info (health and reflection at debug), and
//! counts the call in `kintsugi_calls_total`. A body dropped before its status counts as
//! `CANCELLED`: the client went away.
//!
//! Only ids, the method, the code and the latency are logged. Never the `authorization`
//! header, a request or response message, a sealed name or any ciphertext: the layer does not
//! look at messages at all, and handlers log ids only.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use prost::Message;
use tonic::Code;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::field::{Empty, display};

use crate::auth::AuthedDevice;
use crate::metrics::Metrics;

/// Wraps services with `Observe`.
#[derive(Debug, Clone)]
pub(crate) struct ObserveLayer {
    metrics: Arc<Metrics>,
    methods: Arc<HashSet<String>>,
}

impl ObserveLayer {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            methods: Arc::new(known_methods()),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            layer: self.clone(),
        }
    }
}

/// The observing service.
#[derive(Debug, Clone)]
pub(crate) struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

/// The call's span, in the request's extensions; the interceptor records who called.
#[derive(Debug, Clone)]
pub(crate) struct CallTag {
    span: tracing::Span,
}

impl CallTag {
    pub(crate) fn caller(&self, who: &AuthedDevice) {
        self.span.record("space", display(who.space_id));
        self.span.record("device", display(who.device_id));
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Observe<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path().trim_start_matches('/');
        let method = if self.layer.methods.contains(path) {
            path.to_owned()
        } else {
            "unknown".to_owned()
        };
        let span = tracing::info_span!(
            "call",
            method = %method,
            space = Empty,
            device = Empty,
            code = Empty,
            latency_ms = Empty,
        );
        request
            .extensions_mut()
            .insert(CallTag { span: span.clone() });
        let finish = Finish {
            span: span.clone(),
            method,
            metrics: self.layer.metrics.clone(),
            started: Instant::now(),
        };
        // The service that was polled ready is the one that must be called.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let future = {
            let _entered = span.enter();
            inner.call(request)
        };
        Box::pin(async move {
            match future.instrument(span).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let code = grpc_status(&parts.headers);
                    let body = ObservedBody {
                        inner: body,
                        finish: Some(finish),
                        code,
                    };
                    Ok(http::Response::from_parts(parts, body))
                }
                Err(error) => {
                    finish.done(Code::Unknown);
                    Err(error)
                }
            }
        })
    }
}

/// What finishing a call needs.
#[derive(Debug)]
struct Finish {
    span: tracing::Span,
    method: String,
    metrics: Arc<Metrics>,
    started: Instant,
}

impl Finish {
    fn done(self, code: Code) {
        let name = code_name(code);
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.span.record("code", name);
        self.span.record("latency_ms", latency_ms);
        if self.method.starts_with("grpc.") {
            tracing::debug!(parent: &self.span, "call finished");
        } else {
            tracing::info!(parent: &self.span, "call finished");
        }
        self.metrics.call_finished(&self.method, name);
    }
}

/// A response body that finishes the call at its gRPC status.
#[derive(Debug)]
pub(crate) struct ObservedBody<B> {
    inner: B,
    finish: Option<Finish>,
    code: Option<Code>,
}

impl<B> ObservedBody<B> {
    fn finish(&mut self, fallback: Code) {
        if let Some(finish) = self.finish.take() {
            finish.done(self.code.unwrap_or(fallback));
        }
    }
}

impl<B> Body for ObservedBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.code = grpc_status(trailers).or(this.code);
                    // Trailers are the last frame of a gRPC response.
                    this.finish(Code::Unknown);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(Code::Internal),
            Poll::Ready(None) => this.finish(Code::Ok),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        // An error status arrives in the headers and the body is never polled; without one,
        // the client went away before the call finished.
        self.finish(Code::Cancelled);
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.trim().parse::<i32>().ok().map(Code::from_i32)
}

/// The canonical name of a gRPC code, as metric labels and logs show it.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Every `package.Service/Method` the server serves, from the descriptors it was built from,
/// so that metric labels cannot be inflated by made-up paths.
fn known_methods() -> HashSet<String> {
    let sets = [
        kintsugi_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    ];
    let mut methods = HashSet::new();
    for encoded in sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
            tracing::warn!("a built-in descriptor set does not decode; its methods log as unknown");
            continue;
        };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let service_name = service.name.unwrap_or_default();
                for method in service.method {
                    let name = method.name.unwrap_or_default();
                    methods.insert(format!("{package}.{service_name}/{name}"));
                }
            }
        }
    }
    methods
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_method_is_known_and_nothing_else() {
        let methods = known_methods();
        for method in [
            "kintsugi.sync.v1.SyncService/Push",
            "kintsugi.sync.v1.SpaceService/LeaveSpace",
            "kintsugi.admin.v1.AdminService/Backup",
            "grpc.health.v1.Health/Check",
            "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(methods.contains(method), "{method}");
        }
        assert!(!methods.contains("kintsugi.sync.v1.SyncService/Nope"));
    }

    #[test]
    fn statuses_are_read_from_headers() {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
        assert_eq!(grpc_status(&headers), Some(Code::ResourceExhausted));
        assert_eq!(code_name(Code::ResourceExhausted), "RESOURCE_EXHAUSTED");
    }
}
