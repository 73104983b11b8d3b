//! Errors of the store.
//!
//! [`Error`] carries the context (which tenant, table, time); [`Error::kind`] tells a
//! caller what to do about it; [`Error::code`] is its stable code (and so its HTTP
//! status, see [`crate::code`]).

use crate::ts::Ts;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's input is malformed or out of range.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("tenant `{0}` not found")]
    TenantNotFound(String),
    #[error("tenant `{0}` already exists")]
    TenantExists(String),
    #[error("table `{table}` not found in tenant `{tenant}`")]
    TableNotFound { tenant: String, table: String },
    #[error("table `{table}` already exists in tenant `{tenant}`")]
    TableExists { tenant: String, table: String },
    #[error("column `{column}` already exists in table `{table}`")]
    ColumnExists { table: String, column: String },
    #[error("snapshot `{snapshot}` not found in tenant `{tenant}`{}", known_snapshots(.known))]
    SnapshotNotFound {
        tenant: String,
        snapshot: String,
        /// The tenant's snapshots, to say which exist.
        known: Vec<String>,
    },
    #[error("snapshot `{snapshot}` already exists in tenant `{tenant}`")]
    SnapshotExists { tenant: String, snapshot: String },
    /// The tenant's state forbids the operation (e.g. writes to a `read_only` tenant).
    #[error("tenant `{tenant}` is {state}: {action} is not allowed{hint}")]
    TenantState {
        tenant: String,
        state: String,
        action: String,
        hint: String,
    },
    /// A row does not match its table's schema.
    #[error("invalid row for table `{table}`: {reason}")]
    InvalidRow { table: String, reason: String },
    /// The tenant is being switched over to its standby: its writes are refused until
    /// the switchover ends (then they go to the new primary, or here again if it failed).
    #[error("tenant `{0}` is moving (a switchover to its standby is in progress): writes are refused for a moment; retry, at its new primary if the switchover succeeds")]
    TenantMoving(String),
    /// Another transaction committed a conflicting write first; retry.
    #[error("write conflict: {0}; retry the transaction")]
    Conflict(String),
    /// The requested time is older than what GC keeps.
    #[error(
        "{requested} ({requested_time}) is older than the history kept for tenant `{tenant}`; \
         the oldest readable time is {oldest} ({oldest_time}), or a snapshot{hint}"
    )]
    TooOld {
        tenant: String,
        requested: Ts,
        requested_time: String,
        oldest: Ts,
        oldest_time: String,
        /// What to do instead (`; …`), or empty.
        hint: String,
    },
    /// Persisted data failed to decode.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The data directory is in use or cannot be opened.
    #[error("cannot open data directory {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("storage error: {0}")]
    Storage(#[from] rocksdb::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

fn known_snapshots(known: &[String]) -> String {
    match known {
        [] => "; it has no snapshots".into(),
        names if names.len() <= 10 => format!("; its snapshots are {}", names.join(", ")),
        names => format!(
            "; it has {} snapshots ({}, …; `tenet snapshot list` shows all)",
            names.len(),
            names[..10].join(", ")
        ),
    }
}

/// What a caller can do about an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Fix the input.
    InvalidInput,
    /// The named thing does not exist.
    NotFound,
    /// The named thing exists already.
    AlreadyExists,
    /// Retry the whole transaction.
    Retryable,
    /// The thing is not in a state that allows this; change its state first.
    FailedPrecondition,
    /// The data is damaged; do not retry.
    Corrupt,
    /// Something failed inside; retrying may help.
    Internal,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument(_) | Error::InvalidRow { .. } => ErrorKind::InvalidInput,
            Error::TenantNotFound(_)
            | Error::TableNotFound { .. }
            | Error::SnapshotNotFound { .. } => ErrorKind::NotFound,
            Error::TenantExists(_)
            | Error::TableExists { .. }
            | Error::ColumnExists { .. }
            | Error::SnapshotExists { .. } => ErrorKind::AlreadyExists,
            Error::Conflict(_) | Error::TenantMoving(_) => ErrorKind::Retryable,
            Error::TenantState { .. } | Error::TooOld { .. } | Error::Open { .. } => {
                ErrorKind::FailedPrecondition
            }
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Storage(_) | Error::Io(_) => ErrorKind::Internal,
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> crate::Code {
        use crate::Code as C;
        match self {
            Error::InvalidArgument(_) => C::INVALID_ARGUMENT,
            Error::InvalidRow { .. } => C::INVALID_ROW,
            Error::TenantNotFound(_) => C::TENANT_NOT_FOUND,
            Error::TableNotFound { .. } => C::TABLE_NOT_FOUND,
            Error::SnapshotNotFound { .. } => C::SNAPSHOT_NOT_FOUND,
            Error::TenantExists(_) => C::TENANT_EXISTS,
            Error::TableExists { .. } => C::TABLE_EXISTS,
            Error::ColumnExists { .. } => C::COLUMN_EXISTS,
            Error::SnapshotExists { .. } => C::SNAPSHOT_EXISTS,
            Error::TenantState { .. } => C::TENANT_STATE,
            Error::Conflict(_) => C::CONFLICT,
            Error::TenantMoving(_) => C::TENANT_MOVING,
            Error::TooOld { .. } => C::TOO_OLD,
            Error::Corrupt(_) => C::CORRUPT,
            Error::Open { .. } => C::UNAVAILABLE,
            Error::Storage(_) | Error::Io(_) => C::INTERNAL,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
    }
}
