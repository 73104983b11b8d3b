//! Errors of backup and restore, each with a stable code (listed in `docs/api.md`).

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    /// A repository URL that cannot be used.
    #[error("invalid repository `{url}`: {reason}")]
    InvalidRepo { url: String, reason: String },
    /// The repository did not answer or refused access.
    #[error("repository `{url}` is unreachable: {reason}")]
    RepoUnavailable { url: String, reason: String },
    /// No repository where one was named (reads never create one).
    #[error("{0}")]
    RepoNotFound(String),
    #[error("backup `{0}` not found")]
    BackupNotFound(String),
    /// A tenant named at the edge that neither the store nor the repository knows.
    #[error("tenant `{name}` not found{hint}")]
    TenantNotFound { name: String, hint: String },
    /// Something else depends on it (the message says what, and the way out).
    #[error("{0}")]
    InUse(String),
    /// An object failed its checksum or does not decode.
    #[error("corrupt repository object {object}: {reason}")]
    Corrupt { object: String, reason: String },
    #[error(
        "repository object {object} has format version {found}; this build reads version {supported}"
    )]
    UnsupportedVersion {
        object: String,
        found: String,
        supported: String,
    },
    /// The requested point in time cannot be restored (the message says what can).
    #[error("{0}")]
    NotRestorable(String),
    /// Restored or re-read data does not match the manifest.
    #[error("verification failed: {0}")]
    VerifyFailed(String),
    #[error(transparent)]
    Store(#[from] tenet_store::Error),
    #[error(transparent)]
    Jobs(#[from] tenet_jobs::Error),
    /// Another tenant now writes the history this tenant archives into (a standby of
    /// it was promoted), so this one must not.
    #[error("{0}")]
    NotPrimary(String),
    /// A named repository or strategy that exists where a new one was asked for, or
    /// that something uses where its removal was asked for (the message says which).
    #[error("{0}")]
    RepoConflict(String),
    /// No strategy where one was asked for.
    #[error("{0}")]
    StrategyNotFound(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> String {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::InvalidRepo { .. } => "INVALID_REPOSITORY",
            Error::RepoUnavailable { .. } => "REPOSITORY_UNAVAILABLE",
            Error::BackupNotFound(_) => "BACKUP_NOT_FOUND",
            Error::RepoNotFound(_) => "REPOSITORY_NOT_FOUND",
            Error::TenantNotFound { .. } => "TENANT_NOT_FOUND",
            Error::InUse(_) => "BACKUP_IN_USE",
            Error::Corrupt { .. } => "BACKUP_CORRUPT",
            Error::UnsupportedVersion { .. } => "UNSUPPORTED_FORMAT_VERSION",
            Error::VerifyFailed(_) => "VERIFY_FAILED",
            Error::NotRestorable(_) => "NOT_RESTORABLE",
            Error::NotPrimary(_) => "NOT_PRIMARY",
            Error::RepoConflict(_) => "REPOSITORY_CONFLICT",
            Error::StrategyNotFound(_) => "STRATEGY_NOT_FOUND",
            Error::Jobs(tenet_jobs::Error::Conflict(_)) => "JOB_CONFLICT",
            Error::Jobs(tenet_jobs::Error::NotFound(_)) => "JOB_NOT_FOUND",
            Error::Jobs(tenet_jobs::Error::Cancelled) => "CANCELLED",
            Error::Jobs(tenet_jobs::Error::Failed(e)) => return e.code.clone(),
            Error::Store(e) if e.kind() == tenet_store::ErrorKind::NotFound => "NOT_FOUND",
            Error::Store(e) if e.kind() == tenet_store::ErrorKind::AlreadyExists => {
                "ALREADY_EXISTS"
            }
            Error::Store(_) | Error::Jobs(_) | Error::Internal(_) => "INTERNAL",
        }
        .to_string()
    }
}

impl From<Error> for tenet_jobs::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Jobs(j) => j,
            Error::Store(s) => tenet_jobs::Error::Store(s),
            other => tenet_jobs::Error::Failed(tenet_jobs::JobError {
                code: other.code(),
                message: other.to_string(),
            }),
        }
    }
}
