//! Every error a service can return, and the one place where each becomes a gRPC status.
//!
//! Internal details are logged once here and replaced by a generic message: clients learn what
//! they can act on (the field, the leader's address), never the server's internals.

use sigil_types::{Rejection, RejectionKind, ValidationError};
use tonic::{Code, Status};

/// Metadata key carrying the leader's gRPC address on `Unavailable` answers, when known.
pub const LEADER_HEADER: &str = "x-sigil-leader";

/// A service error, named for the condition.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed; nothing changed.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The token is missing, malformed, expired or signed by an unknown key.
    #[error("{0}")]
    Unauthenticated(String),
    /// The token is valid but does not allow the call.
    #[error("{0}")]
    PermissionDenied(String),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The state does not allow this now.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A concurrent change won; retrying may succeed.
    #[error("{0}")]
    Aborted(String),
    /// No leader, leader unreachable, or the write could not commit; retry later.
    #[error("{reason}")]
    Unavailable {
        /// Why.
        reason: String,
        /// The leader's gRPC address, when known.
        leader: Option<String>,
    },
    /// A bug or an I/O failure on this server.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// An unavailable error without a leader hint.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            leader: None,
        }
    }

    /// An invalid-argument error.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<ValidationError> for ServiceError {
    fn from(err: ValidationError) -> Self {
        Self::InvalidArgument {
            field: err.field,
            reason: err.reason,
        }
    }
}

impl From<Rejection> for ServiceError {
    fn from(rejection: Rejection) -> Self {
        match rejection.kind {
            RejectionKind::NotFound => Self::NotFound(rejection.message),
            RejectionKind::FailedPrecondition => Self::FailedPrecondition(rejection.message),
            RejectionKind::Aborted => Self::Aborted(rejection.message),
        }
    }
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::InvalidArgument { field, reason } => {
                Status::invalid_argument(format!("{field}: {reason}"))
            }
            ServiceError::Unauthenticated(m) => Status::unauthenticated(m),
            ServiceError::PermissionDenied(m) => Status::permission_denied(m),
            ServiceError::NotFound(m) => Status::not_found(m),
            ServiceError::FailedPrecondition(m) => Status::failed_precondition(m),
            ServiceError::Aborted(m) => Status::aborted(m),
            ServiceError::Unavailable { reason, leader } => {
                let mut status = Status::unavailable(reason);
                if let Some(value) = leader.and_then(|l| l.parse().ok()) {
                    status.metadata_mut().insert(LEADER_HEADER, value);
                }
                status
            }
            ServiceError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Status::new(Code::Internal, "internal error; see the server log")
            }
        }
    }
}

/// Result type of service handlers.
pub type ServiceResult<T> = Result<T, ServiceError>;
