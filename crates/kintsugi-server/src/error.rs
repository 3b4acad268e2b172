//! Errors: `ServerError` for start-up, `ServiceError` for one gRPC call.
//!
//! `ServerError` is what `run` returns when the server cannot start or stops abnormally; its
//! messages name the folder or address and what to do. `ServiceError` is the one error type
//! of the handlers; the single `From<ServiceError> for tonic::Status` below is the edge where
//! it becomes a gRPC status. Messages are one line and say what to do; they never contain a
//! token, a secret, a key or ciphertext. Internal failures are logged in full and reach the
//! client only as a generic "try again later".

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::store::{Audience, StoreError};

/// Why the server could not start, or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// sled holds an exclusive lock on its folder; a second process cannot open it.
    #[error("another server is using {}; stop it, or choose another data folder", .0.display())]
    DataDirInUse(PathBuf),
    /// The store could not be read back.
    #[error("data folder {} is damaged ({detail}); restore it from a backup", .dir.display())]
    DataDirDamaged {
        /// The data folder.
        dir: PathBuf,
        /// What the store reported.
        detail: String,
    },
    /// The store could not be opened for another reason (permissions, disk).
    #[error("cannot open data folder {}: {source}", .dir.display())]
    Store {
        /// The data folder.
        dir: PathBuf,
        /// What the store reported.
        source: StoreError,
    },
    /// Plaintext gRPC is only allowed where nobody can listen in.
    #[error(
        "refusing to serve plaintext on {0}: without TLS the server listens on loopback only \
         (for example 127.0.0.1:PORT)"
    )]
    PlaintextNotLoopback(SocketAddr),
    /// The listener or another system call failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The gRPC server failed while serving.
    #[error("the gRPC server failed: {}", crate::tls::error_chain(.0))]
    Transport(#[from] tonic::transport::Error),
    /// The TLS certificate or key cannot be used.
    #[error("TLS {what} {}: {problem}", .file.display())]
    Tls {
        /// "certificate" or "key".
        what: &'static str,
        file: PathBuf,
        problem: String,
    },
    /// Plain-HTTP metrics off loopback need the operator's explicit consent.
    #[error(
        "refusing to serve metrics on {0}: metrics are plain HTTP; listen on loopback, or set \
         metrics.public = true (KINTSUGI_METRICS_PUBLIC=true) to serve them there anyway"
    )]
    MetricsNotLoopback(SocketAddr),
    /// An address could not be bound.
    #[error("cannot listen on {address} for {what}: {source}")]
    Bind {
        what: &'static str,
        address: SocketAddr,
        source: std::io::Error,
    },
    /// The admin token file could not be written or read.
    #[error("admin token {}: {source}; check the data folder's permissions", .file.display())]
    AdminToken {
        file: PathBuf,
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptors.
    #[error("building gRPC reflection failed: {0}")]
    Reflection(String),
}

impl ServerError {
    /// Maps a failure to open the store in `dir` to the message an operator needs.
    pub(crate) fn from_open(dir: PathBuf, error: StoreError) -> Self {
        match error {
            StoreError::Locked(_) => ServerError::DataDirInUse(dir),
            StoreError::Corrupt(detail) => ServerError::DataDirDamaged { dir, detail },
            source => ServerError::Store { dir, source },
        }
    }
}

/// Why one call failed. Each variant maps to one gRPC code; the text goes to the client.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Malformed or oversized input.
    #[error("{0}")]
    InvalidArgument(String),
    /// No, an unknown or a revoked token.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed (another member's private document or device).
    #[error("{0}")]
    PermissionDenied(String),
    /// The thing asked about does not exist (or is hidden from the caller).
    #[error("{0}")]
    NotFound(String),
    /// The id is already taken, or a retry differs from the original.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is well-formed but the state does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Another client's write took the position this one named; pull and try again.
    #[error("{0}")]
    Aborted(String),
    /// Temporarily impossible; the client should retry.
    #[error("{0}")]
    Unavailable(String),
    /// Over a quota or a rate limit.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A bug or a storage failure. The detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// An `InvalidArgument` with the given message.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ServiceError::InvalidArgument(message.into())
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::SpaceExists => ServiceError::AlreadyExists(
                "a space with this id already exists; choose a new random space id".into(),
            ),
            StoreError::UnknownSpace => {
                ServiceError::NotFound("the space no longer exists; create a new one".into())
            }
            StoreError::AudienceFixed { recorded } => {
                let recorded = match recorded {
                    Audience::Shared => "shared",
                    Audience::Private => "private",
                };
                ServiceError::FailedPrecondition(format!(
                    "document audience is fixed as {recorded} by its first push; push with that \
                     audience or use another document"
                ))
            }
            StoreError::PrivateDocument => {
                ServiceError::PermissionDenied("this document is private to another member".into())
            }
            StoreError::ClientSeqReused { client_seq } => ServiceError::AlreadyExists(format!(
                "client_seq {client_seq} reused with different content; every envelope needs a \
                 new client_seq"
            )),
            StoreError::UnknownDocument => ServiceError::NotFound(
                "unknown document; push a change to it before storing a snapshot".into(),
            ),
            StoreError::SnapshotBeyondHead {
                covers_seq,
                head_seq,
            } => ServiceError::InvalidArgument(format!(
                "snapshot covers_seq {covers_seq} is beyond the document's head_seq \
                     {head_seq}; pull first"
            )),
            rejected @ StoreError::SnapshotRejected { .. } => {
                ServiceError::FailedPrecondition(rejected.to_string())
            }
            StoreError::QuotaExceeded {
                used,
                quota,
                needed,
            } => ServiceError::ResourceExhausted(format!(
                "storage quota: this space holds {used} of {quota} bytes and this change needs \
                 {needed} more; store a snapshot so older changes can be compacted, or ask the \
                 server's operator to raise limits.space_quota_bytes"
            )),
            StoreError::UnknownMember => ServiceError::Unauthenticated(
                "you are no longer a member of this space; join it again with a new invite".into(),
            ),
            StoreError::Unavailable(message) => ServiceError::Unavailable(message),
            taken @ StoreError::PositionTaken { .. } => ServiceError::Aborted(taken.to_string()),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ServiceError {
    fn from(error: tokio::task::JoinError) -> Self {
        ServiceError::Internal(format!("a storage task failed: {error}"))
    }
}

impl From<ServiceError> for tonic::Status {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidArgument(m) => tonic::Status::invalid_argument(m),
            ServiceError::Unauthenticated(m) => tonic::Status::unauthenticated(m),
            ServiceError::PermissionDenied(m) => tonic::Status::permission_denied(m),
            ServiceError::NotFound(m) => tonic::Status::not_found(m),
            ServiceError::AlreadyExists(m) => tonic::Status::already_exists(m),
            ServiceError::FailedPrecondition(m) => tonic::Status::failed_precondition(m),
            ServiceError::Aborted(m) => tonic::Status::aborted(m),
            ServiceError::Unavailable(m) => tonic::Status::unavailable(m),
            ServiceError::ResourceExhausted(m) => tonic::Status::resource_exhausted(m),
            ServiceError::Internal(detail) => {
                tracing::error!(%detail, "request failed inside the server");
                tonic::Status::internal("internal server error; try again later")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_do_not_reach_the_client() {
        let status = tonic::Status::from(ServiceError::Internal("disk sector 7 is bad".into()));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("sector"));
    }

    #[test]
    fn store_refusals_keep_their_meaning() {
        let status = tonic::Status::from(ServiceError::from(StoreError::PrivateDocument));
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        let status = tonic::Status::from(ServiceError::from(StoreError::AudienceFixed {
            recorded: Audience::Private,
        }));
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(status.message().starts_with("document audience is fixed"));
        let status = tonic::Status::from(ServiceError::from(StoreError::ClientSeqReused {
            client_seq: 3,
        }));
        assert_eq!(status.code(), tonic::Code::AlreadyExists);
    }

    #[test]
    fn locked_folder_says_another_server_uses_it() {
        let error = ServerError::from_open("/data".into(), StoreError::Locked("/data".into()));
        assert_eq!(
            error.to_string(),
            "another server is using /data; stop it, or choose another data folder"
        );
    }
}
