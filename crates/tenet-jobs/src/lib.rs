//! `tenet-jobs`: durable, resumable, cancellable jobs (ARCHITECTURE §9).
//!
//! # Model
//! A job is a persistent [`JobRecord`] (kind, tenant, params, state, phase, progress,
//! checkpoint, result or error, timestamps) stored in the store's system tenant
//! (table [`tenet_store::JOBS_TABLE`]), plus the code of its kind ([`JobKind`]).
//!
//! States: `queued → running → succeeded | failed | cancelled`, with `cancelling` in
//! between when a cancel was asked for. `running` carries a phase name.
//!
//! Work is a DAG of tasks organised in phases: [`JobContext::run_tasks`] runs the
//! tasks of one phase in parallel on the manager's bounded worker pool; a phase starts
//! when the previous one has finished. Each finished task stores its output in the
//! job's checkpoint (persisted at once), so a resumed job skips it and reuses its
//! output. Progress counters are persisted at task boundaries and at most once a second
//! in between.
//!
//! # Cancellation, failure, resume
//! Cancel sets `cancelling` durably and trips the job's [`CancelToken`]; tasks check it
//! between chunks of work and throttled waits wake up on it. The kind's
//! [`JobKind::cleanup`] then removes what the job made (it is idempotent) and the job
//! ends `cancelled`. A failed job is cleaned up the same way and ends `failed` with the
//! error. On restart, [`JobManager::resume_unfinished`] runs every job left `queued` or
//! `running` again from its checkpoint, and finishes the cleanup of jobs left
//! `cancelling`.

mod counter;
mod manager;
pub mod pacing;
mod record;
mod throttle;

pub use counter::RowCounter;
pub use manager::lower_priority;
pub use manager::{BoxFuture, JobContext, JobKind, JobManager, Task, TaskFn, JOB_NICE};
pub use pacing::{PacingState, PacingStatus};
pub use record::{JobError, JobOwner, JobRecord, JobState, Progress};
pub use throttle::{CancelToken, Throttle, BURST};

/// Errors of the job layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("job {0} not found")]
    NotFound(u64),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("job was cancelled")]
    Cancelled,
    /// A job failed with a coded error.
    #[error("{0}")]
    Failed(JobError),
    #[error(transparent)]
    Store(#[from] tenet_store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable code of this error (a failed job's recorded one; a code this build
    /// does not know, from a newer one, counts as `INTERNAL`).
    pub fn code(&self) -> tenet_store::Code {
        use tenet_store::Code as C;
        match self {
            Error::NotFound(_) => C::JOB_NOT_FOUND,
            Error::Conflict(_) => C::JOB_CONFLICT,
            Error::InvalidArgument(_) => C::INVALID_ARGUMENT,
            Error::Cancelled => C::CANCELLED,
            Error::Failed(e) => e.code.parse().unwrap_or(C::INTERNAL),
            Error::Store(e) => e.code(),
        }
    }
}
