//! The one error type apps see: each variant is a stable code, each message one line an app
//! can show as it is.

use kintsugi_core::CoreError;

/// What went wrong, by kind (the variant is the stable code); its message, the exception's
/// own, says what to do. Flat: only the message crosses, so Kotlin's `Throwable.message` is it.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum KintsugiError {
    #[error("{message}")]
    NotInitialised { message: String },
    #[error("{message}")]
    AlreadyInitialised { message: String },
    #[error("{message}")]
    Busy { message: String },
    #[error("{message}")]
    LocalData { message: String },
    #[error("{message}")]
    Unreachable { message: String },
    #[error("{message}")]
    Untrusted { message: String },
    #[error("{message}")]
    Refused { message: String },
    #[error("{message}")]
    InvalidCode { message: String },
    #[error("{message}")]
    InvalidInput { message: String },
    #[error("{message}")]
    UnknownId { message: String },
    #[error("{message}")]
    Tampered { message: String },
    #[error("{message}")]
    ServerFailed { message: String },
    /// A bug in the core; what the device holds is unchanged.
    #[error("{message}")]
    Internal { message: String },
}

impl From<CoreError> for KintsugiError {
    fn from(error: CoreError) -> Self {
        let message = error.to_string();
        match error {
            CoreError::NotInitialised(_) => Self::NotInitialised { message },
            CoreError::AlreadyInitialised(_) => Self::AlreadyInitialised { message },
            CoreError::Busy(_) => Self::Busy { message },
            CoreError::LocalStoreDamaged { .. } | CoreError::LocalIo { .. } => {
                Self::LocalData { message }
            }
            CoreError::Unreachable { .. } => Self::Unreachable { message },
            CoreError::Untrusted { .. } => Self::Untrusted { message },
            CoreError::Unauthenticated(_)
            | CoreError::PermissionDenied(_)
            | CoreError::InviteRefused(_)
            | CoreError::RosterRefused(_) => Self::Refused { message },
            CoreError::InvalidCode(_) => Self::InvalidCode { message },
            CoreError::InvalidInput(_) | CoreError::Shape(_) => Self::InvalidInput { message },
            CoreError::UnknownId { .. } => Self::UnknownId { message },
            CoreError::Tampered(_) | CoreError::InvalidChange(_) => Self::Tampered { message },
            CoreError::Document { .. } | CoreError::Protocol(_) | CoreError::Server(_) => {
                Self::ServerFailed { message }
            }
        }
    }
}

/// Runs `work`, turning a panic into `Internal` so none crosses into the app.
pub(crate) fn guarded<T>(
    work: impl FnOnce() -> Result<T, KintsugiError>,
) -> Result<T, KintsugiError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
        Err(KintsugiError::Internal {
            message: "the Kintsugi core failed unexpectedly; nothing was changed, try again and report it if it repeats".into(),
        })
    })
}
