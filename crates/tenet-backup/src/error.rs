//! Errors of backup and restore, each with a stable [`Code`] (listed in `docs/api.md`).

use tenet_store::Code;

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
    /// The data key an object is sealed with was destroyed (crypto-shredding).
    #[error("data key {key_id} of history #{history_id} was destroyed at {at} (the tenant was shredded): its backups and archived log can no longer be read")]
    KeyDestroyed {
        history_id: u64,
        key_id: String,
        at: String,
    },
    /// A sealed object this process cannot open (the message says what is missing).
    #[error("{0}")]
    KeyUnavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            Error::InvalidRepo { .. } => Code::INVALID_REPOSITORY,
            Error::RepoUnavailable { .. } => Code::REPOSITORY_UNAVAILABLE,
            Error::BackupNotFound(_) => Code::BACKUP_NOT_FOUND,
            Error::RepoNotFound(_) => Code::REPOSITORY_NOT_FOUND,
            Error::TenantNotFound { .. } => Code::TENANT_NOT_FOUND,
            Error::InUse(_) => Code::BACKUP_IN_USE,
            Error::Corrupt { .. } => Code::BACKUP_CORRUPT,
            Error::UnsupportedVersion { .. } => Code::UNSUPPORTED_FORMAT_VERSION,
            Error::VerifyFailed(_) => Code::VERIFY_FAILED,
            Error::NotRestorable(_) => Code::NOT_RESTORABLE,
            Error::NotPrimary(_) => Code::NOT_PRIMARY,
            Error::RepoConflict(_) => Code::REPOSITORY_CONFLICT,
            Error::StrategyNotFound(_) => Code::STRATEGY_NOT_FOUND,
            Error::Jobs(e) => e.code(),
            Error::Store(e) => e.code(),
            Error::KeyDestroyed { .. } => Code::KEY_DESTROYED,
            Error::KeyUnavailable(_) => Code::KEY_UNAVAILABLE,
            Error::Internal(_) => Code::INTERNAL,
        }
    }
}

impl From<Error> for tenet_jobs::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Jobs(j) => j,
            Error::Store(s) => tenet_jobs::Error::Store(s),
            other => tenet_jobs::Error::Failed(tenet_jobs::JobError {
                code: other.code().as_str().into(),
                message: other.to_string(),
            }),
        }
    }
}
