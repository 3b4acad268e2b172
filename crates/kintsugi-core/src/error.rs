//! The errors of the client core.
//!
//! Every variant's message is one line a person can act on: what went wrong and what to do.
//! Apps map them to their own UI; the CLI prints them as they are.

use std::path::PathBuf;

/// Everything that can go wrong on a device.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("no Kintsugi device in {0}; run `kintsugi init` or `kintsugi join` first")]
    NotInitialised(PathBuf),
    #[error("{0} already holds a Kintsugi device; use another --home, or `kintsugi wipe` it first")]
    AlreadyInitialised(PathBuf),
    #[error(
        "another kintsugi process is using {0} (a running `sync --watch`?); stop it and try again"
    )]
    Busy(PathBuf),
    #[error(
        "the local data in {dir} is damaged ({reason}); nothing was changed: restore the folder from a backup, or `kintsugi wipe` and join again"
    )]
    LocalStoreDamaged { dir: PathBuf, reason: String },
    #[error("cannot read or write {dir}: {source}")]
    LocalIo {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// `kept`: this device kept something to send later (a sync), or nothing was done at all
    /// (an invite, a revoke, a join), so the message says which.
    #[error("cannot reach the sync server at {url} ({reason}); {}", offline_words(*.kept))]
    Unreachable {
        url: String,
        reason: String,
        kept: bool,
    },
    #[error(
        "the server at {url} presented a TLS certificate this device does not trust ({reason}); check the URL, or pass the server's CA certificate with --ca-cert FILE"
    )]
    Untrusted { url: String, reason: String },
    #[error("the server refused this device: {0}")]
    Unauthenticated(String),
    #[error("the server refused: {0}")]
    PermissionDenied(String),
    #[error("{0}")]
    InvalidCode(String),
    #[error("the invite code was refused: {0}")]
    InviteRefused(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("no {what} with id {id}; list them with `kintsugi {list}`")]
    UnknownId {
        what: &'static str,
        id: String,
        list: &'static str,
    },
    #[error(
        "a change from the server failed authentication ({0}); it was refused and nothing was applied: the server or the network may be tampering with data"
    )]
    Tampered(String),
    #[error(
        "a change from the server is not a valid document change ({0}); it was refused and nothing was applied"
    )]
    InvalidChange(String),
    #[error("the {doc} could not be synced (the other documents were): {source}")]
    Document {
        doc: &'static str,
        source: Box<CoreError>,
    },
    #[error(
        "a document does not have the shape this app expects ({0}); nothing was changed: update the app, and if that does not help, report it"
    )]
    Shape(String),
    #[error(
        "the roster does not verify ({0}); this device stopped syncing: the server may be adding a device or hiding a change, so compare safety numbers with your partner (`kintsugi verify`)"
    )]
    RosterRefused(String),
    #[error("the server answered something unexpected: {0}")]
    Protocol(String),
    #[error("the server failed: {0}")]
    Server(String),
}

fn offline_words(kept: bool) -> &'static str {
    if kept {
        "your changes are kept on this device and will sync when it is reachable"
    } else {
        "nothing was done: try again when it is reachable"
    }
}

impl CoreError {
    /// The same error, saying that this device kept its changes for the next sync.
    pub(crate) fn kept_offline(self) -> Self {
        match self {
            Self::Unreachable { url, reason, .. } => Self::Unreachable {
                url,
                reason,
                kept: true,
            },
            other => other,
        }
    }

    /// A stable snake_case code for scripts and apps (`kintsugi --json` prints it); a message may
    /// be reworded, a code is not.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotInitialised(_) => "not_initialised",
            Self::AlreadyInitialised(_) => "already_initialised",
            Self::Busy(_) => "busy",
            Self::LocalStoreDamaged { .. } | Self::LocalIo { .. } => "local_data",
            Self::Unreachable { .. } => "server_unreachable",
            Self::Untrusted { .. } => "server_untrusted",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::PermissionDenied(_) => "permission_denied",
            Self::InvalidCode(_) => "invalid_code",
            Self::InviteRefused(_) => "invite_refused",
            Self::InvalidInput(_) | Self::Shape(_) => "invalid_input",
            Self::UnknownId { .. } => "not_found",
            Self::Tampered(_) | Self::InvalidChange(_) => "tampered",
            Self::Document { source, .. } => source.code(),
            Self::RosterRefused(_) => "roster_refused",
            Self::Protocol(_) | Self::Server(_) => "server_error",
        }
    }

    pub(crate) fn io(dir: &std::path::Path, source: std::io::Error) -> Self {
        Self::LocalIo {
            dir: dir.to_path_buf(),
            source,
        }
    }

    pub(crate) fn damaged(dir: &std::path::Path, reason: impl ToString) -> Self {
        Self::LocalStoreDamaged {
            dir: dir.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
