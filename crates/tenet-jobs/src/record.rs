//! The persisted job record and its encoding.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use tenet_store::keys::{pk_bytes, KeyValue};

use crate::Result;

/// Lifecycle state of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    /// Cancel was asked for; cleanup runs (again after a restart) before `cancelled`.
    Cancelling,
    /// The job failed (see `error`); cleanup runs (again after a restart) before `failed`.
    Failing,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Cancelling => "cancelling",
            JobState::Failing => "failing",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job has ended (nothing will change it any more).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Work done and to do. Totals may be 0 while unknown.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub tasks_done: u64,
    pub tasks_total: u64,
    pub rows_done: u64,
    pub rows_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Bytes per second since the job (re)started.
    pub bytes_per_sec: u64,
    /// Seconds left, estimated from the byte rate (or the task rate).
    pub eta_secs: Option<u64>,
}

/// Why a job failed: a stable code and a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A job as persisted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: u64,
    /// What it does, e.g. `backup_full`, `restore`, `verify`.
    pub kind: String,
    /// The tenant it is about (for a restore: the source tenant).
    pub tenant: String,
    /// What was asked for (kind-specific).
    pub params: Value,
    pub state: JobState,
    /// Current phase while running, e.g. `export`, `ingest`.
    pub phase: String,
    pub progress: Progress,
    /// Optional I/O limit in bytes per second.
    pub throttle_bytes_per_sec: Option<u64>,
    /// Outcome of a succeeded job (kind-specific).
    pub result: Option<Value>,
    pub error: Option<JobError>,
    /// Kind-owned state for resume: outputs of finished tasks under `tasks`, plus
    /// whatever the kind stores (pins, id mappings, …).
    pub checkpoint: Value,
    pub created_at: String,
    pub started_at: Option<String>,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

pub(crate) fn job_key(id: u64) -> Vec<u8> {
    pk_bytes(&[KeyValue::Int(id as i64)])
}

pub(crate) fn encode(rec: &JobRecord) -> Vec<u8> {
    tenet_store::encode_system_row(rec)
}

pub(crate) fn decode(bytes: &[u8]) -> Result<JobRecord> {
    Ok(tenet_store::decode_system_row("job record", bytes)?)
}
