//! The connection to the sync server: endpoint checks, the bearer token, and turning transport
//! errors and gRPC statuses into errors a person can act on.

use std::error::Error as _;
use std::time::Duration;

use kintsugi_proto::v1::pairing_service_client::PairingServiceClient;
use kintsugi_proto::v1::space_service_client::SpaceServiceClient;
use kintsugi_proto::v1::sync_service_client::SyncServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use crate::error::{CoreError, Result};

/// A whole call, reply included: generous, because a page of a large document over a slow mobile
/// link takes time; dead connections are found sooner by the connect timeout and keep-alive.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Large snapshots travel in one message; the server accepts the same size.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone, Debug)]
pub struct BearerToken(MetadataValue<Ascii>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request
            .metadata_mut()
            .insert(kintsugi_proto::AUTHORIZATION, self.0.clone());
        Ok(request)
    }
}

pub type Authed = InterceptedService<Channel, BearerToken>;

/// Clients of the three services over one HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub url: String,
    pub pairing: PairingServiceClient<Channel>,
    pub space: SpaceServiceClient<Authed>,
    pub sync: SyncServiceClient<Authed>,
}

impl Connection {
    /// Connects to `url`, trusting `ca_pem` (or the web PKI) for `https://`. Calls time out
    /// after `CALL_TIMEOUT`, except `Subscribe` when `streaming`.
    pub async fn open(
        url: &str,
        ca_pem: Option<&str>,
        token: &str,
        streaming: bool,
    ) -> Result<Self> {
        let endpoint = endpoint(url, ca_pem)?;
        let endpoint = if streaming {
            endpoint.http2_keep_alive_interval(Duration::from_secs(30))
        } else {
            endpoint.timeout(CALL_TIMEOUT)
        };
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| transport_error(url, &e))?;
        let value: MetadataValue<Ascii> = format!("Bearer {token}")
            .parse()
            .map_err(|_| CoreError::Protocol("the stored device token is not valid text".into()))?;
        let auth = BearerToken(value);
        Ok(Self {
            url: url.to_string(),
            pairing: PairingServiceClient::new(channel.clone()),
            space: SpaceServiceClient::with_interceptor(channel.clone(), auth.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            sync: SyncServiceClient::with_interceptor(channel, auth)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        })
    }

    /// A connection for the unauthenticated pairing calls only.
    pub async fn pairing(url: &str, ca_pem: Option<&str>) -> Result<PairingServiceClient<Channel>> {
        let channel = endpoint(url, ca_pem)?
            .timeout(CALL_TIMEOUT)
            .connect()
            .await
            .map_err(|e| transport_error(url, &e))?;
        Ok(PairingServiceClient::new(channel))
    }

    /// Turns a status from this server into an error for people.
    pub fn error(&self, status: Status) -> CoreError {
        status_error(&self.url, status)
    }
}

/// Checks the server URL: plain `http://` is allowed to this machine only.
pub fn check_url(url: &str) -> Result<()> {
    let uri: tonic::codegen::http::Uri = url.parse().map_err(|_| {
        CoreError::InvalidInput(format!(
            "{url} is not a server URL like https://sync.example.org"
        ))
    })?;
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    match uri.scheme_str() {
        Some("http") => {
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(CoreError::InvalidInput(format!(
                    "plain http:// is only allowed to a server on this machine; use https:// for {host}"
                )))
            }
        }
        Some("https") if !host.is_empty() => Ok(()),
        _ => Err(CoreError::InvalidInput(format!(
            "{url} is not a server URL; it must start with https:// (or http:// for this machine)"
        ))),
    }
}

fn endpoint(url: &str, ca_pem: Option<&str>) -> Result<Endpoint> {
    check_url(url)?;
    let endpoint = Endpoint::from_shared(url.to_string())
        .map(|e| e.connect_timeout(Duration::from_secs(5)))
        .map_err(|_| CoreError::InvalidInput(format!("{url} is not a valid server URL")))?;
    if !url.starts_with("https://") {
        return Ok(endpoint);
    }
    // rustls verifies the server against the CA the device was given, else the web PKI roots.
    let tls = match ca_pem {
        Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
        None => ClientTlsConfig::new().with_webpki_roots(),
    };
    endpoint
        .tls_config(tls)
        .map_err(|e| CoreError::InvalidInput(format!("cannot use TLS for {url}: {e}")))
}

/// Reads and checks a CA certificate file given with `--ca-cert`.
pub fn read_ca_cert(path: &std::path::Path) -> Result<String> {
    let pem = std::fs::read_to_string(path).map_err(|e| {
        CoreError::InvalidInput(format!(
            "cannot read the CA certificate {}: {e}",
            path.display()
        ))
    })?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(CoreError::InvalidInput(format!(
            "{} is not a PEM certificate (it should start with -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(pem)
}

/// What a protocol-level failure means for a person, when it means the address is wrong: it
/// points at something that is not a Kintsugi server, or its scheme does not match the
/// server's TLS.
fn wrong_server(url: &str, reason: &str) -> Option<String> {
    if reason.contains("InvalidContentType") || reason.contains("corrupt message") {
        return Some("this server does not speak TLS: use http:// instead of https://".into());
    }
    if reason.contains("h2 protocol error") || reason.contains("http2 error") {
        let tls = match url.starts_with("http://") {
            true => " or it speaks TLS (then use https://)",
            false => "",
        };
        return Some(format!(
            "this is not a Kintsugi server{tls}; check the address and port"
        ));
    }
    // Hyper's word when the connection died under the call: as often as not the protocol
    // failure above, seen from the call's side.
    if reason.contains("operation was canceled") {
        return Some(
            "the connection closed before an answer; if it repeats, check that this is a \
             Kintsugi server and that it expects this scheme (http:// or https://)"
                .into(),
        );
    }
    None
}

/// The innermost cause of a transport error is the one that says what happened.
fn transport_error(url: &str, error: &tonic::transport::Error) -> CoreError {
    let mut reason = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        reason = cause.to_string();
        source = cause.source();
    }
    let reason = wrong_server(url, &reason).unwrap_or(reason);
    if reason.contains("certificate") || reason.contains("tls") || reason.contains("TLS") {
        return CoreError::Untrusted {
            url: url.to_string(),
            reason,
        };
    }
    CoreError::Unreachable {
        url: url.to_string(),
        reason,
        kept: false,
    }
}

/// Maps a gRPC status to the error a person sees.
pub fn status_error(url: &str, status: Status) -> CoreError {
    let message = status.message().to_string();
    if let Some(reason) = wrong_server(url, &message) {
        return CoreError::Unreachable {
            url: url.to_string(),
            reason,
            kept: false,
        };
    }
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
            if message.is_empty() || status.code() != Code::Unknown =>
        {
            let reason = if message.is_empty() {
                status.code().description().to_string()
            } else {
                message
            };
            CoreError::Unreachable {
                url: url.to_string(),
                reason,
                kept: false,
            }
        }
        Code::Unauthenticated => CoreError::Unauthenticated(message),
        Code::PermissionDenied => CoreError::PermissionDenied(message),
        Code::InvalidArgument | Code::OutOfRange => {
            CoreError::InvalidInput(format!("the server refused the request: {message}"))
        }
        _ => CoreError::Server(message),
    }
}

impl crate::replica::Replica {
    /// An authenticated connection to this device's server.
    pub(crate) async fn connect(&self) -> Result<Connection> {
        let id = &self.identity;
        Connection::open(&id.server_url, id.ca_cert_pem.as_deref(), &id.token, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_url("http://127.0.0.1:7878").is_ok());
        assert!(check_url("http://localhost:7878").is_ok());
        assert!(check_url("http://[::1]:7878").is_ok());
        assert!(check_url("http://sync.example.org").is_err());
        assert!(check_url("https://sync.example.org").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("not a url").is_err());
    }
}
