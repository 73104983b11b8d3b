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

/// Work done and to do in the job's current (or last) counted phase: counts start
/// from zero when a phase first counts work, a known total is never below what is done,
/// and a succeeded job's totals are what it did. A total of 0 means unknown.
///
/// `bytes_*` are the bytes the phase processes (logical bytes — keys and rows — for
/// backup, restore and verify; what the job reports for others). `io_bytes` are the
/// bytes that passed the job's throttle (for a backup the bytes read, for a restore or
/// verify the stored bytes downloaded), whether or not a throttle limit is set, so a
/// `--throttle` compares with `io_bytes_per_sec`.
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
    /// Bytes counted by the throttle since the job started.
    #[serde(default)]
    pub io_bytes: u64,
    /// Throttled bytes per second since the job (re)started.
    #[serde(default)]
    pub io_bytes_per_sec: u64,
}

impl Progress {
    /// Raises known totals that fall behind what is done.
    pub(crate) fn keep_totals_ahead(&mut self) {
        for (done, total) in [
            (self.tasks_done, &mut self.tasks_total),
            (self.rows_done, &mut self.rows_total),
            (self.bytes_done, &mut self.bytes_total),
        ] {
            if *total > 0 && done > *total {
                *total = done;
            }
        }
    }

    /// The totals of finished work: what was done.
    pub(crate) fn finish(&mut self) {
        self.tasks_total = self.tasks_done;
        self.rows_total = self.rows_done;
        self.bytes_total = self.bytes_done;
        self.eta_secs = Some(0);
    }

    /// Starts counting a new phase.
    fn reset_counts(&mut self) {
        let io = self.io_bytes;
        *self = Progress {
            io_bytes: io,
            ..Progress::default()
        };
    }
}

/// Which phase a record's counts belong to; counts restart when another phase first
/// counts work (phases that only wait, like `commit`, leave the last counts visible).
#[derive(Debug)]
pub(crate) struct PhaseCounts {
    phase: String,
}

impl PhaseCounts {
    pub(crate) fn new(rec: &JobRecord) -> Self {
        PhaseCounts {
            phase: rec.phase.clone(),
        }
    }

    /// Before counting work of the record's phase: resets the counts when they belong
    /// to an earlier phase. Returns whether it did.
    pub(crate) fn enter(&mut self, rec: &mut JobRecord) -> bool {
        if self.phase == rec.phase {
            return false;
        }
        self.phase = rec.phase.clone();
        rec.progress.reset_counts();
        true
    }
}

/// Why a job failed: a stable code and a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

impl JobError {
    pub fn new(code: tenet_store::Code, message: impl Into<String>) -> Self {
        JobError {
            code: code.as_str().into(),
            message: message.into(),
        }
    }
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
    /// Who and what the job is about, typed so that other modules never read a
    /// kind's params or checkpoint.
    #[serde(default)]
    pub owner: JobOwner,
    /// Kind-owned state for resume: outputs of finished tasks under `tasks`, plus
    /// whatever the kind stores (pins, id mappings, …).
    pub checkpoint: Value,
    pub created_at: String,
    pub started_at: Option<String>,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

/// What a job works on, for the modules that must know without reading its params:
/// prune keeps what unfinished jobs use, lists filter by tenant, and one job per lock
/// runs at a time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOwner {
    /// The tenant (by id) it is about: the one backed up, the source of a restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<u64>,
    /// The tenant it creates or writes (a restore's target), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<u64>,
    /// The repository history (`tenants/<id>/`) it reads or writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_id: Option<u64>,
    /// Backups it reads or extends (kept by prune while it is unfinished).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<String>,
    /// Repository objects it reads besides those backups (log segments).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<String>,
    /// Unfinished jobs with the same lock exclude each other (`backup:<tenant id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
}

impl JobOwner {
    pub fn tenant(tenant_id: u64) -> JobOwner {
        JobOwner {
            tenant_id: Some(tenant_id),
            ..JobOwner::default()
        }
    }

    pub fn with_lock(mut self, lock: impl Into<String>) -> JobOwner {
        self.lock = Some(lock.into());
        self
    }

    /// Whether the job uses this backup or repository object.
    pub fn uses(&self, backup_or_key: &str) -> bool {
        self.backups.iter().any(|b| b == backup_or_key)
            || self.objects.iter().any(|o| o == backup_or_key)
    }
}

impl JobRecord {
    /// Its lock (records written before [`JobOwner`] kept it in params).
    pub fn lock(&self) -> Option<&str> {
        self.owner
            .lock
            .as_deref()
            .or_else(|| self.params.get("lock").and_then(Value::as_str))
    }
}

pub(crate) fn job_key(id: u64) -> Vec<u8> {
    pk_bytes(&[KeyValue::Int(id as i64)])
}

/// The row of a finished task's output (system table `JOB_TASKS_TABLE`), or with
/// `task` None the prefix of a phase's rows.
pub(crate) fn task_key(job: u64, phase: &str, task: Option<&str>) -> Vec<u8> {
    let mut values = vec![KeyValue::Int(job as i64), KeyValue::Str(phase.to_string())];
    values.extend(task.map(|t| KeyValue::Str(t.to_string())));
    pk_bytes(&values)
}

pub(crate) fn encode(rec: &JobRecord) -> Vec<u8> {
    tenet_store::encode_system_row(rec)
}

pub(crate) fn decode(bytes: &[u8]) -> Result<JobRecord> {
    Ok(tenet_store::decode_system_row("job record", bytes)?)
}
