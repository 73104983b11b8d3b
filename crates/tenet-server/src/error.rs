//! API errors: the one place where store errors become HTTP statuses and stable codes.
//! The codes are listed in `docs/api.md`; never rename one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tenet_store::Error as StoreError;

use crate::api::ErrorBody;

/// An error as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: status.as_u16(),
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }

    /// A transaction over the size limit of [`crate::service::MAX_TXN_OPS`] /
    /// [`crate::service::MAX_TXN_BYTES`].
    pub fn txn_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "TXN_TOO_LARGE", message)
    }

    /// The error of a request hyper refuses before routing (see `listener.rs`), by the
    /// status hyper gives it.
    pub fn transport(status: u16) -> Option<Self> {
        use StatusCode as S;
        Some(match status {
            400 => Self::new(
                S::BAD_REQUEST,
                "MALFORMED_REQUEST",
                "the request is not valid HTTP/1.1 (request line, method, URI or a header); \
                 send a well-formed request",
            ),
            414 => Self::new(
                S::URI_TOO_LONG,
                "URI_TOO_LONG",
                "the request URI is longer than the limit of 65534 bytes; send long input \
                 in a JSON body instead of the query string",
            ),
            431 => Self::new(
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "HEADERS_TOO_LARGE",
                "the request head is too large; at most 100 header fields and about 400 KiB \
                 of request line and headers are accepted",
            ),
            _ => return None,
        })
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.clone(),
            message: self.message.clone(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            StoreError::InvalidArgument(_) => (S::BAD_REQUEST, "INVALID_ARGUMENT"),
            StoreError::InvalidRow { .. } => (S::BAD_REQUEST, "INVALID_ROW"),
            StoreError::TenantNotFound(_) => (S::NOT_FOUND, "TENANT_NOT_FOUND"),
            StoreError::TableNotFound { .. } => (S::NOT_FOUND, "TABLE_NOT_FOUND"),
            StoreError::SnapshotNotFound { .. } => (S::NOT_FOUND, "SNAPSHOT_NOT_FOUND"),
            StoreError::TenantExists(_) => (S::CONFLICT, "TENANT_EXISTS"),
            StoreError::TableExists { .. } => (S::CONFLICT, "TABLE_EXISTS"),
            StoreError::ColumnExists { .. } => (S::CONFLICT, "COLUMN_EXISTS"),
            StoreError::SnapshotExists { .. } => (S::CONFLICT, "SNAPSHOT_EXISTS"),
            StoreError::TenantState { .. } => (S::CONFLICT, "TENANT_STATE"),
            StoreError::Conflict(_) => (S::CONFLICT, "CONFLICT"),
            StoreError::TenantMoving(_) => (S::SERVICE_UNAVAILABLE, "TENANT_MOVING"),
            StoreError::TooOld { .. } => (S::GONE, "TOO_OLD"),
            StoreError::Corrupt(_) => (S::INTERNAL_SERVER_ERROR, "CORRUPT"),
            StoreError::Open { .. } => (S::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            StoreError::Storage(_) | StoreError::Io(_) => (S::INTERNAL_SERVER_ERROR, "INTERNAL"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<tenet_jobs::Error> for ApiError {
    fn from(e: tenet_jobs::Error) -> Self {
        use tenet_jobs::Error as J;
        use StatusCode as S;
        match e {
            J::Store(s) => s.into(),
            J::NotFound(_) => ApiError::new(S::NOT_FOUND, "JOB_NOT_FOUND", e.to_string()),
            J::Conflict(_) => ApiError::new(S::CONFLICT, "JOB_CONFLICT", e.to_string()),
            J::InvalidArgument(_) => ApiError::invalid(e.to_string()),
            J::Cancelled => ApiError::new(S::CONFLICT, "CANCELLED", e.to_string()),
            J::Failed(je) => ApiError::new(S::INTERNAL_SERVER_ERROR, &je.code, je.message),
        }
    }
}

impl From<tenet_backup::Error> for ApiError {
    fn from(e: tenet_backup::Error) -> Self {
        use tenet_backup::Error as B;
        use StatusCode as S;
        let status = match &e {
            B::Store(_) | B::Jobs(_) => {
                return match e {
                    B::Store(s) => s.into(),
                    B::Jobs(j) => j.into(),
                    _ => unreachable!("matched above"),
                }
            }
            B::InvalidArgument(_) | B::InvalidRepo { .. } => S::BAD_REQUEST,
            B::NotRestorable(_) => S::CONFLICT,
            B::RepoUnavailable { .. } => S::SERVICE_UNAVAILABLE,
            B::BackupNotFound(_) | B::RepoNotFound(_) | B::TenantNotFound { .. } => S::NOT_FOUND,
            B::InUse(_) | B::NotPrimary(_) | B::RepoConflict(_) => S::CONFLICT,
            B::StrategyNotFound(_) => S::NOT_FOUND,
            B::Corrupt { .. } | B::UnsupportedVersion { .. } | B::VerifyFailed(_) => {
                S::UNPROCESSABLE_ENTITY
            }
            B::Internal(_) => S::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, &e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.body())).into_response()
    }
}
