//! API errors: a stable [`Code`] (whose status the answer has) and a message. Codes are
//! made only in `tenet_store::code`; the crates' errors map to them there and here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tenet_store::{Code, Error as StoreError};

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
    /// An error with `code` (its status is the code's).
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status: code.status(),
            code: code.as_str().to_string(),
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::INVALID_ARGUMENT, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::INTERNAL, message)
    }

    /// A transaction over the size limit of [`crate::service::MAX_TXN_OPS`] /
    /// [`crate::service::MAX_TXN_BYTES`].
    pub fn txn_too_large(message: impl Into<String>) -> Self {
        Self::new(Code::TXN_TOO_LARGE, message)
    }

    /// The error of a request hyper refuses before routing (see `listener.rs`), by the
    /// status hyper gives it.
    pub fn transport(status: u16) -> Option<Self> {
        Some(match status {
            400 => Self::new(
                Code::MALFORMED_REQUEST,
                "the request is not valid HTTP/1.1 (request line, method, URI or a header); \
                 send a well-formed request",
            ),
            414 => Self::new(
                Code::URI_TOO_LONG,
                "the request URI is longer than the limit of 65534 bytes; send long input \
                 in a JSON body instead of the query string",
            ),
            431 => Self::new(
                Code::HEADERS_TOO_LARGE,
                "the request head is too large; at most 100 header fields and about 400 KiB \
                 of request line and headers are accepted",
            ),
            _ => return None,
        })
    }

    /// Whether this error has `code`.
    pub fn is(&self, code: Code) -> bool {
        self.code == code.as_str()
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
        ApiError::new(e.code(), e.to_string())
    }
}

impl From<tenet_jobs::Error> for ApiError {
    fn from(e: tenet_jobs::Error) -> Self {
        match e {
            tenet_jobs::Error::Failed(je) => {
                let code = je.code.parse().unwrap_or(Code::INTERNAL);
                ApiError {
                    status: code.status(),
                    code: je.code,
                    message: je.message,
                }
            }
            e => ApiError::new(e.code(), e.to_string()),
        }
    }
}

impl From<tenet_backup::Error> for ApiError {
    fn from(e: tenet_backup::Error) -> Self {
        match e {
            tenet_backup::Error::Jobs(j) => j.into(),
            e => ApiError::new(e.code(), e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tenet_store::Code;

    /// The table of codes in `docs/api.md` lists exactly [`Code::ALL`], each with its
    /// status.
    #[test]
    fn every_code_is_documented_with_its_status() {
        let doc = include_str!("../../../docs/api.md");
        let table = doc.split("## Errors").nth(1).expect("an Errors section");
        let mut documented = BTreeMap::new();
        for line in table.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let status: u16 = cells[2].parse().unwrap_or_else(|_| panic!("{line}"));
            for code in cells[1].split(',') {
                documented.insert(code.trim().trim_matches('`').to_string(), status);
            }
        }
        let all: BTreeMap<String, u16> = Code::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), c.status()))
            .collect();
        assert_eq!(documented, all);
    }
}
