//! The request and response bodies of the REST API (`/v1`), shared by the server, the
//! HTTP client and the embedded CLI, so both CLI modes print the same thing.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenet_store::{CommitInfo, SnapshotDef, TableDef, TenantRecord, Ts};
use utoipa::{IntoParams, ToSchema};

/// Commit timestamps in JSON. They exceed 2^53, the largest integer JavaScript and `jq`
/// keep exactly, so every `*_ts` field is written as a decimal string
/// (`"commit_ts": "115584906813145088"`); on input a string or a number is accepted.
/// Use as `#[serde(with = "ts_json")]` with `#[schema(value_type = String)]`.
pub mod ts_json {
    use serde::de::{self, Deserializer, Visitor};
    use serde::{Deserialize, Serializer};

    pub fn serialize<S: Serializer>(ts: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(ts)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(TsVisitor)
    }

    struct TsVisitor;

    impl Visitor<'_> for TsVisitor {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a commit ts: a decimal string or a non-negative integer")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.parse()
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }

    /// The same for an optional ts.
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(ts: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
            match ts {
                Some(ts) => s.collect_str(ts),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
            #[derive(Deserialize)]
            struct Ts(#[serde(with = "super")] u64);
            Ok(Option::<Ts>::deserialize(d)?.map(|t| t.0))
        }
    }

    /// A time given as text (RFC 3339 or a commit ts) that may also come as a JSON
    /// number (a commit ts).
    pub mod text {
        use super::*;

        pub fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.serialize_str(v),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Text {
                Ts(u64),
                Text(String),
            }
            Ok(Option::<Text>::deserialize(d)?.map(|t| match t {
                Text::Ts(ts) => ts.to_string(),
                Text::Text(s) => s,
            }))
        }
    }

    /// Rewrites every number under a key ending in `_ts` of a free-form value (job
    /// parameters and results) as a decimal string.
    pub fn stringify(v: &mut serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    match x {
                        Value::Number(n) if k.ends_with("_ts") => {
                            *x = Value::String(n.to_string());
                        }
                        _ => stringify(x),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(stringify),
            _ => {}
        }
    }
}

/// Every error: a stable code and a message that says what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code, e.g. `TENANT_NOT_FOUND` (listed in docs/api.md).
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    /// The data directory (absolute); empty unless the request carries a valid token.
    pub data_dir: String,
    pub version: String,
}

/// Commit timestamp of a write and its wall-clock time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Commit {
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub commit_ts: u64,
    /// RFC 3339, millisecond precision.
    pub commit_time: String,
}

impl From<CommitInfo> for Commit {
    fn from(c: CommitInfo) -> Self {
        Commit {
            commit_ts: c.commit_ts.0,
            commit_time: c.commit_time(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantInfo {
    pub id: u64,
    pub name: String,
    /// `active`, `read_only`, `restoring`, `standby` or `dropping`.
    pub state: String,
    pub history_retention_secs: u64,
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub created_ts: u64,
    pub created_time: String,
}

impl From<TenantRecord> for TenantInfo {
    fn from(r: TenantRecord) -> Self {
        TenantInfo {
            id: r.id,
            name: r.name,
            state: r.state.to_string(),
            history_retention_secs: r.history_retention_secs,
            created_ts: r.created_ts.0,
            created_time: r.created_ts.to_rfc3339(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub name: String,
    /// Seconds of history kept readable (default 3600).
    #[serde(default)]
    pub history_retention_secs: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlterTenant {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `active` or `read_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_retention_secs: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantResponse {
    pub tenant: TenantInfo,
    #[serde(flatten)]
    pub commit: Commit,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnInfo {
    pub name: String,
    /// `int`, `float`, `string`, `bool`, `bytes` or `json`.
    #[serde(rename = "type")]
    pub ty: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TableInfo {
    pub id: u64,
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub primary_key: Vec<String>,
    pub schema_version: u32,
}

impl From<&TableDef> for TableInfo {
    fn from(t: &TableDef) -> Self {
        TableInfo {
            id: t.id,
            name: t.name.clone(),
            columns: t
                .columns
                .iter()
                .map(|c| ColumnInfo {
                    name: c.name.clone(),
                    ty: c.ty.to_string(),
                })
                .collect(),
            primary_key: t.pk_columns().map(|c| c.name.clone()).collect(),
            schema_version: t.schema_version,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTable {
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub primary_key: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlterTable {
    /// Columns to append; existing rows read them as null.
    #[serde(default)]
    pub add_columns: Vec<ColumnInfo>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TableResponse {
    pub table: TableInfo,
    #[serde(flatten)]
    pub commit: Commit,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRows {
    /// JSON objects matching the table's schema; written in one transaction.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteRows {
    /// Primary keys: a value, an array in key order, or an object; one transaction.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<Value>,
}

/// One operation of a batch transaction.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum TxnOp {
    Put {
        table: String,
        #[schema(value_type = Object)]
        row: Value,
    },
    Delete {
        table: String,
        #[schema(value_type = Object)]
        key: Value,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TxnRequest {
    pub ops: Vec<TxnOp>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct WriteResponse {
    /// Rows written or deleted.
    pub writes: usize,
    /// Deletes of keys that did not exist (as the transaction saw them): nothing was
    /// removed for these.
    #[serde(default)]
    pub absent: usize,
    #[serde(flatten)]
    pub commit: Commit,
}

/// Query of a point read.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetQuery {
    /// Primary key as JSON (e.g. `5`, `"x"`, `[1,"a"]`).
    pub key: String,
    /// RFC 3339 time, commit ts, or `@snapshot`; default: latest.
    #[serde(default)]
    pub as_of: Option<String>,
}

/// Query of a range scan.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScanQuery {
    /// Inclusive lower bound, primary key as JSON.
    #[serde(default)]
    pub from: Option<String>,
    /// Exclusive upper bound, primary key as JSON.
    #[serde(default)]
    pub to: Option<String>,
    /// Most rows to return (default 1000, at most 100000).
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub as_of: Option<String>,
}

/// Query with only an as-of.
#[derive(Clone, Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    #[serde(default)]
    pub as_of: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RowResponse {
    #[schema(value_type = Option<Object>)]
    pub row: Option<Value>,
    /// The ts the read saw.
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub read_ts: u64,
    pub read_time: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ScanResponse {
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub read_ts: u64,
    pub read_time: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SnapshotInfo {
    pub name: String,
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub ts: u64,
    pub time: String,
}

impl From<&SnapshotDef> for SnapshotInfo {
    fn from(s: &SnapshotDef) -> Self {
        SnapshotInfo {
            name: s.name.clone(),
            ts: s.ts.0,
            time: s.ts.to_rfc3339(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshot {
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotResponse {
    pub snapshot: SnapshotInfo,
    #[serde(flatten)]
    pub commit: Commit,
}

/// The ts and time of a read.
pub fn read_stamp(ts: Ts) -> (u64, String) {
    (ts.0, ts.to_rfc3339())
}

/// Progress of a job. Totals are 0 while unknown.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProgressInfo {
    pub tasks_done: u64,
    pub tasks_total: u64,
    pub rows_done: u64,
    pub rows_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub bytes_per_sec: u64,
    pub eta_secs: Option<u64>,
    /// Bytes through the job's throttle (what `throttle_bytes_per_sec` limits: read
    /// for a backup, stored bytes downloaded for a restore or verify).
    #[serde(default)]
    pub io_bytes: u64,
    #[serde(default)]
    pub io_bytes_per_sec: u64,
}

/// A durable job (backup, restore, verify).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobInfo {
    pub id: u64,
    /// `backup_full`, `restore` or `verify`.
    pub kind: String,
    pub tenant: String,
    /// `queued`, `running`, `cancelling`, `failing`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// Current phase while running (e.g. `export`, `ingest`, `verify`).
    pub phase: String,
    pub progress: ProgressInfo,
    pub throttle_bytes_per_sec: Option<u64>,
    #[schema(value_type = Object)]
    pub params: Value,
    /// What a succeeded job produced.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    pub error: Option<ErrorBody>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub updated_at: String,
    pub finished_at: Option<String>,
    /// Whether the process answering runs the job now (false for an interrupted job
    /// that waits for `resume`).
    #[serde(default)]
    pub live: bool,
}

impl From<tenet_jobs::JobRecord> for JobInfo {
    fn from(r: tenet_jobs::JobRecord) -> Self {
        let p = r.progress;
        JobInfo {
            id: r.id,
            kind: r.kind,
            tenant: r.tenant,
            state: r.state.to_string(),
            phase: r.phase,
            progress: ProgressInfo {
                tasks_done: p.tasks_done,
                tasks_total: p.tasks_total,
                rows_done: p.rows_done,
                rows_total: p.rows_total,
                bytes_done: p.bytes_done,
                bytes_total: p.bytes_total,
                bytes_per_sec: p.bytes_per_sec,
                eta_secs: p.eta_secs,
                io_bytes: p.io_bytes,
                io_bytes_per_sec: p.io_bytes_per_sec,
            },
            throttle_bytes_per_sec: r.throttle_bytes_per_sec,
            params: {
                let mut p = r.params;
                ts_json::stringify(&mut p);
                // A switchover's token of the other server is the job's, not for show.
                if let Some(t) = p.get_mut("to_token") {
                    *t = Value::String("<hidden>".into());
                }
                p
            },
            result: r.result.map(|mut v| {
                ts_json::stringify(&mut v);
                v
            }),
            error: r.error.map(|e| ErrorBody {
                code: e.code,
                message: e.message,
            }),
            created_at: r.created_at,
            started_at: r.started_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
            live: false,
        }
    }
}

impl JobInfo {
    /// Whether the job has ended.
    pub fn is_final(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

/// Start a backup of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBackup {
    pub tenant: String,
    /// `full` (default) or `incr`: the commit log since the tenant's newest backup.
    #[serde(default)]
    pub kind: Option<String>,
    /// Repository: a directory, `file:///path` or `s3://bucket/prefix`; default
    /// `./tenet-backups` of the server.
    #[serde(default)]
    pub repo: Option<String>,
    /// I/O limit for the job.
    #[serde(default)]
    pub throttle_bytes_per_sec: Option<u64>,
}

/// A finished backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupInfo {
    pub id: String,
    pub kind: String,
    pub tenant_id: u64,
    /// The tenant's current name (for a dropped tenant: its name at the backup).
    pub tenant: String,
    /// The tenant's name when the backup was taken, where it differs from `tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_at_backup: Option<String>,
    /// Whether the tenant still exists in this store.
    #[serde(default)]
    pub tenant_live: bool,
    pub repo: String,
    /// F: the backup holds every commit at or before this ts.
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub backup_ts: u64,
    pub backup_time: String,
    pub tables: u64,
    pub files: u64,
    pub rows: u64,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    pub job_id: u64,
    pub finished_at: String,
}

impl From<tenet_backup::BackupRecord> for BackupInfo {
    fn from(r: tenet_backup::BackupRecord) -> Self {
        BackupInfo {
            id: r.id,
            kind: r.kind,
            tenant_id: r.tenant_id,
            tenant: r.tenant_name,
            tenant_at_backup: None,
            tenant_live: false,
            repo: r.repo,
            backup_ts: r.backup_ts.0,
            backup_time: r.backup_time,
            tables: r.tables,
            files: r.files,
            rows: r.rows,
            logical_bytes: r.logical_bytes,
            stored_bytes: r.stored_bytes,
            job_id: r.job_id,
            finished_at: r.finished_at,
        }
    }
}

/// One table of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupTableInfo {
    pub name: String,
    pub source_table_id: u64,
    pub rows: u64,
    pub logical_bytes: u64,
    pub files: u64,
    pub stored_bytes: u64,
    /// Logical digest (independent of ids).
    pub digest: String,
}

/// A backup with its manifest's contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupDetail {
    pub id: String,
    pub tenant_id: u64,
    /// The tenant's current name (for a dropped tenant: its name at the backup).
    pub tenant: String,
    /// The tenant's name when the backup was taken, where it differs from `tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_at_backup: Option<String>,
    pub repo: String,
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub backup_ts: u64,
    pub backup_time: String,
    pub started_at: String,
    pub finished_at: String,
    pub tool_version: String,
    pub rows: u64,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    /// Whether this store has a record of it (false when found only in the repository).
    pub recorded: bool,
    pub tables: Vec<BackupTableInfo>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListBackupsQuery {
    /// Only backups of this tenant.
    pub tenant: Option<String>,
    /// List what this repository holds (read from it alone, e.g. after losing the data
    /// directory) instead of this store's records.
    pub repo: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteBackupQuery {
    /// Delete even if incremental backups are chained on it.
    #[serde(default)]
    pub force: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RepoQuery {
    /// Look for the backup in this repository if the store has no record of it.
    pub repo: Option<String>,
}

/// Verify a backup (download, checksums, decode, digests).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBackup {
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub throttle_bytes_per_sec: Option<u64>,
}

/// Restore a backup into a new tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRestore {
    /// The tenant to restore (for `backup_id`: the tenant the backup was taken of).
    pub source: String,
    /// Restore exactly this backup (its F). Or give one of `to`, `before_commit`,
    /// `latest` for a point-in-time restore from full backups and the archived log.
    #[serde(default)]
    pub backup_id: Option<String>,
    /// The state at this time: RFC 3339 or a commit ts (every commit ≤ it); a commit
    /// ts may also be given as a JSON number.
    #[serde(default, with = "ts_json::text")]
    pub to: Option<String>,
    /// The state just before the commit with this ts.
    #[serde(default, with = "ts_json::option")]
    #[schema(value_type = Option<String>)]
    pub before_commit: Option<u64>,
    /// The newest restorable state.
    #[serde(default)]
    pub latest: bool,
    /// Name of the new tenant; must not exist. Empty with `in_place`.
    #[serde(default)]
    pub target: String,
    /// Put `source` itself back (it keeps its id, log, backups and snapshots): the
    /// state is restored into a hidden scratch tenant, then `source` is made equal to
    /// it in one commit. A snapshot `before-restore-<ts>` is taken first (the undo).
    #[serde(default)]
    pub in_place: bool,
    /// Repository to find the backup in if this store has no record of it.
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub throttle_bytes_per_sec: Option<u64>,
    /// Restore `source`'s newest state into `target` as a standby: readable, not
    /// writable, and it keeps applying `source`'s archived log until it is promoted.
    #[serde(default)]
    pub standby: bool,
    /// How often a standby lists the repository for new log segments (default 250).
    #[serde(default)]
    pub poll_ms: Option<u64>,
}

/// Where a standby stands against its source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StandbyInfo {
    pub tenant: String,
    pub tenant_id: u64,
    /// The history it follows: `tenants/<id>/` in `repo`.
    pub history_id: u64,
    /// `standby` while it follows.
    pub state: String,
    /// The source's name at the restore.
    pub source: String,
    pub repo: String,
    /// Every source commit at or before this is applied (and readable here).
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub applied_ts: u64,
    pub applied_time: String,
    /// The end of the source's archive: what a promotion reaches now.
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub archived_until_ts: u64,
    pub archived_until_time: String,
    /// Age of the applied state (how stale reads of the standby are).
    pub lag_ms: u64,
    /// Archived but not yet applied.
    pub behind_ms: u64,
    /// How long ago the source's archive last advanced.
    pub archive_idle_ms: u64,
    pub segments: u64,
    pub records: u64,
    /// Whether its follower runs in the process answering.
    pub running: bool,
    pub last_error: Option<String>,
    /// Paused by hand (`POST …/standby/pause`): it applies nothing until resumed.
    pub paused: bool,
    /// What is wrong and the way out (null when all is well).
    pub problem: Option<String>,
}

/// Switch a tenant over to its standby (a planned move).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverRequest {
    /// The standby, by name (on `to_server` if given).
    pub to: String,
    /// The standby's server, e.g. http://10.0.0.2:7070 (default: this one).
    #[serde(default)]
    pub to_server: Option<String>,
    /// A token of `to_server` (operator or above) for the switchover to use there.
    #[serde(default)]
    pub to_token: Option<String>,
}

/// Promote a standby: it stops following and becomes writable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    /// Stop at exactly this time or commit ts (default: everything archived).
    #[serde(default, with = "ts_json::text")]
    pub until: Option<String>,
    /// Promote although the source looks alive (failover); reports what may be lost.
    #[serde(default)]
    pub force: bool,
    /// Take the source's name where the source no longer has it in this store.
    #[serde(default)]
    pub take_name: bool,
}

/// What a promotion did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PromoteResponse {
    pub tenant: String,
    pub tenant_id: u64,
    /// The state it was promoted at: every source commit at or before this.
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub promoted_ts: u64,
    pub promoted_time: String,
    /// It continues its source's history (restore points continue the source's);
    /// false: it forked (promoted before the end of the archive) and starts its own.
    pub continues_history: bool,
    /// Source commits applied by the promotion itself.
    pub applied_records: u64,
    /// After a forced promotion: source commits after this ts may be lost.
    #[serde(with = "ts_json::option")]
    #[schema(value_type = Option<String>)]
    pub may_lose_after: Option<u64>,
    /// The source's last commit, where known (the source is in this store).
    #[serde(with = "ts_json::option")]
    #[schema(value_type = Option<String>)]
    pub source_last_commit: Option<u64>,
    /// How many source commits are lost, where known.
    pub lost_commits: Option<u64>,
    /// Its name before it took its source's name.
    pub renamed_from: Option<String>,
    /// What went wrong after the promotion took effect (taking the name, starting
    /// the archive); null when all is well.
    pub problem: Option<String>,
    /// Its archive, started into the same repository.
    pub archive: Option<ArchiveInfo>,
    /// A full backup job started because it forked (its own history needs one).
    pub backup_job: Option<u64>,
    pub millis: u64,
}

/// Start a tenant's log archiver.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveStart {
    #[serde(default)]
    pub repo: Option<String>,
    /// Also start a full backup into the repository, so what is archived becomes
    /// restorable (needed when the repository holds no backup of the tenant to continue).
    #[serde(default)]
    pub full_backup: bool,
    /// How often a segment is cut (default 1000 ms).
    #[serde(default)]
    pub interval_ms: Option<u64>,
    /// A segment is cut early at this size (default 64 MiB).
    #[serde(default)]
    pub segment_max_bytes: Option<u64>,
    /// How long uploads may fail before the archiver gives up its pin (default 1 h).
    #[serde(default)]
    pub budget_secs: Option<u64>,
}

/// A tenant's log archiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArchiveInfo {
    pub tenant: String,
    pub tenant_id: u64,
    /// `running`, `stopped` or `broken`.
    pub status: String,
    /// Whether it runs in the process answering.
    pub running: bool,
    pub repo: String,
    /// Every commit at or before this is in the archive (shipped so far).
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub checkpoint_ts: u64,
    pub checkpoint_time: String,
    /// The newest point a restore from `repo` can reach now (the restore planner's
    /// answer); null when nothing is restorable.
    #[serde(with = "ts_json::option")]
    #[schema(value_type = Option<String>)]
    pub restorable_until_ts: Option<u64>,
    pub restorable_until_time: Option<String>,
    /// The real RPO: age of the oldest commit that is not yet restorable (0 when every
    /// commit is); null when nothing is restorable.
    pub rpo_ms: Option<u64>,
    /// What is wrong and the way out (null when all is well).
    pub problem: Option<String>,
    /// The full backup job started with the archive (`full_backup: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_job: Option<u64>,
    pub segments: u64,
    pub records: u64,
    pub bytes: u64,
    pub interval_ms: u64,
    pub error: Option<String>,
    pub started_at: String,
}

/// A range of restorable times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RestorePoint {
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub from_ts: u64,
    pub from_time: String,
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub to_ts: u64,
    pub to_time: String,
}

impl From<tenet_backup::planner::Restorable> for RestorePoint {
    fn from(r: tenet_backup::planner::Restorable) -> Self {
        RestorePoint {
            from_ts: r.from.0,
            from_time: r.from.to_rfc3339(),
            to_ts: r.to.0,
            to_time: r.to.to_rfc3339(),
        }
    }
}

/// Body of `POST /v1/tenants/{tenant}/revert`: the state to go back to (exactly one of
/// `to` and `before_commit`) and what to put back (the whole tenant, a `table`, or a key
/// range `from_key`..`to_key` of a table).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertRequest {
    /// RFC 3339 time, commit ts, relative time (`-5m`) or `@snapshot`.
    #[serde(default)]
    pub to: Option<String>,
    /// Undo this commit and every later one: go back to the state just before it.
    #[serde(default, with = "ts_json::option")]
    #[schema(value_type = Option<String>)]
    pub before_commit: Option<u64>,
    /// Only this table (its name at the target time or now).
    #[serde(default)]
    pub table: Option<String>,
    /// Inclusive lower bound of a key range of `table` (primary key as JSON).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub from_key: Option<Value>,
    /// Exclusive upper bound of a key range of `table` (primary key as JSON).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub to_key: Option<Value>,
}

/// What a revert changed in one table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TableRevertInfo {
    pub table: String,
    pub table_id: u64,
    /// `restored` (dropped since, back now), `dropped` (created since), `schema_reverted`
    /// or `replaced` (recreated since; the old table is back); null: rows only.
    pub catalog: Option<String>,
    /// Rows that were gone and are back.
    pub rows_restored: u64,
    /// Rows that hold their old values again.
    pub rows_reverted: u64,
    /// Rows that did not exist then and are deleted.
    pub rows_removed: u64,
    /// Rows visible again because the table came back (`restored`, `replaced`).
    #[serde(default)]
    pub table_rows_back: u64,
    /// Rows no longer visible because the table went (`dropped`, `replaced`).
    #[serde(default)]
    pub table_rows_gone: u64,
    /// With `schema_reverted`: columns added since the target, gone now.
    #[serde(default)]
    pub columns_removed: Vec<String>,
    /// With `schema_reverted`: columns the definition has again.
    #[serde(default)]
    pub columns_back: Vec<String>,
}

/// The outcome of a revert or snapshot rollback.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RevertResponse {
    pub tenant: String,
    /// What was put back: `tenant`, `table <name>` or `table <name>, keys <from>..<to>`.
    #[serde(default)]
    pub scope: String,
    /// The tenant (or scope) now shows its state at this ts.
    #[serde(with = "ts_json")]
    #[schema(value_type = String)]
    pub target_ts: u64,
    pub target_time: String,
    /// The revert's commit; null when nothing differed from the target state.
    #[serde(with = "ts_json::option")]
    #[schema(value_type = Option<String>)]
    pub commit_ts: Option<u64>,
    pub commit_time: Option<String>,
    /// How the changed keys were found: `log` (the commit log since the target; cost ∝
    /// changes) or `diff_scan` (the log was garbage-collected; every key was scanned).
    pub found_by: String,
    /// Keys compared with their state at the target.
    pub keys_examined: u64,
    pub tables: Vec<TableRevertInfo>,
    /// How long the tenant's writes were held (they wait, then go on).
    pub writes_held_ms: f64,
    pub elapsed_ms: f64,
    /// The command that undoes the revert (when it committed).
    #[serde(default)]
    pub undo: Option<String>,
}

impl From<tenet_store::RevertReport> for RevertResponse {
    fn from(r: tenet_store::RevertReport) -> Self {
        let ms = |d: std::time::Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
        let undo = r
            .commit_ts
            .map(|c| format!("tenet revert {} --before-commit {c}", shell_word(&r.tenant)));
        RevertResponse {
            scope: "tenant".into(),
            undo,
            tenant: r.tenant,
            target_ts: r.target_ts.0,
            target_time: r.target_ts.to_rfc3339(),
            commit_ts: r.commit_ts.map(|t| t.0),
            commit_time: r.commit_ts.map(Ts::to_rfc3339),
            found_by: enum_name(&r.found_by),
            keys_examined: r.keys_examined,
            tables: r
                .tables
                .into_iter()
                .map(|t| TableRevertInfo {
                    catalog: t.catalog.as_ref().map(enum_name),
                    table: t.table,
                    table_id: t.table_id,
                    rows_restored: t.rows_restored,
                    rows_reverted: t.rows_reverted,
                    rows_removed: t.rows_removed,
                    table_rows_back: t.table_rows_back,
                    table_rows_gone: t.table_rows_gone,
                    columns_removed: t.columns_removed,
                    columns_back: t.columns_back,
                })
                .collect(),
            writes_held_ms: ms(r.writes_held),
            elapsed_ms: ms(r.elapsed),
        }
    }
}

/// `s` as one shell word (quoted when it needs to be).
pub fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.#".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The snake_case name a unit enum serializes to.
fn enum_name(v: &impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Body of `POST /v1/tenants/{tenant}/clone`: a new tenant equal to this one at a time.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneRequest {
    /// RFC 3339 time, commit ts, relative time (`-5m`), `@snapshot` or `latest`
    /// (default).
    #[serde(default)]
    pub as_of: Option<String>,
    /// Name of the new tenant; must not exist.
    pub into: String,
    /// Repository to restore from when the time is older than the tenant's local
    /// history (default: where its archiver or newest backup writes).
    #[serde(default)]
    pub repo: Option<String>,
}

// ---------------------------------------------------------------------------------
// Protection: named repositories, strategies, prune.

/// Name a repository (`POST /v1/repos`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddRepo {
    /// 1–63 of a-z, 0-9, `-`, `_`, starting with a letter.
    pub name: String,
    /// A directory path, `file:///dir` or `s3://bucket/prefix`.
    pub url: String,
    /// S3: the endpoint of S3-compatible storage (`https://…`).
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// S3: the *name* of the server's environment variable holding the access key id.
    #[serde(default)]
    pub access_key_env: Option<String>,
    /// S3: the *name* of the server's environment variable holding the secret key.
    #[serde(default)]
    pub secret_key_env: Option<String>,
    /// Make it the default repository.
    #[serde(default)]
    pub default: bool,
}

/// A named repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepoInfo {
    pub name: String,
    pub url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_env: Option<String>,
    pub secret_key_env: Option<String>,
    pub default: bool,
    pub added_at: String,
    /// Strategies that use it (tenant names; `(default)` for the default strategy).
    pub used_by: Vec<String>,
}

/// A protection strategy (`PUT /v1/tenants/{tenant}/strategy`, `PUT /v1/strategy`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StrategyBody {
    /// Full backups on this schedule (UTC): 5-field cron or `@daily`.
    #[serde(default)]
    pub full: Option<String>,
    /// An incremental backup this many seconds after the previous backup.
    #[serde(default)]
    pub incr_secs: Option<u64>,
    /// Archive the log continuously.
    #[serde(default)]
    pub archive: bool,
    #[serde(default)]
    pub archive_interval_ms: Option<u64>,
    /// A named repository (default: the default repository).
    #[serde(default)]
    pub repo: Option<String>,
    /// Keep every point of the last this many seconds restorable.
    #[serde(default)]
    pub keep_within_secs: Option<u64>,
    /// Keep this many newest full backups (and every point after the oldest of them).
    #[serde(default)]
    pub keep_full: Option<u32>,
    /// Restore drills on this schedule (UTC): 5-field cron or `@daily`.
    #[serde(default)]
    pub drill: Option<String>,
}

/// The strategy that applies to a tenant (or the default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StrategyInfo {
    /// The tenant (None: the default strategy).
    pub tenant: Option<String>,
    /// The tenant has no strategy of its own: this is the default.
    pub inherited: bool,
    #[serde(flatten)]
    pub strategy: StrategyBody,
    /// The repository's URL.
    pub repo_url: String,
    pub updated_at: String,
    /// The scheduler's runs of this tenant (empty for the default strategy).
    #[serde(default)]
    pub runs: Vec<RunInfo>,
}

/// One kind of scheduled run of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunInfo {
    /// `full`, `incr` or `archive`.
    pub kind: String,
    /// When it is next due (null: not scheduled).
    pub next_due_time: Option<String>,
    /// The job running it now.
    pub job: Option<u64>,
    pub last_started_time: Option<String>,
    pub last_success_time: Option<String>,
    /// `succeeded`, `failed: …`, `skipped at …: …`, `superseded …`.
    pub last_outcome: Option<String>,
    /// Failures since the last success.
    pub failures: u32,
    pub retry_time: Option<String>,
    /// Runs skipped because the previous backup of the tenant was unfinished.
    pub skipped: u64,
    pub problem: Option<String>,
}

/// Prune backups and archived log that no kept restore point needs
/// (`POST /v1/prune`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    /// One tenant (default: every tenant whose strategy has a retention).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Default: the tenant's strategy's repository, else where its backups are.
    #[serde(default)]
    pub repo: Option<String>,
    /// Override the strategy's retention.
    #[serde(default)]
    pub keep_within_secs: Option<u64>,
    #[serde(default)]
    pub keep_full: Option<u32>,
    /// Only say what would be deleted and why.
    #[serde(default)]
    pub dry_run: bool,
}

/// One object prune deletes (or would).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PruneObject {
    /// `full`, `incr` or `segment`.
    pub kind: String,
    /// Backup id, or the segment's key.
    pub id: String,
    pub bytes: u64,
    pub end_time: String,
    pub reason: String,
}

/// What prune does to one tenant's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PrunePlan {
    pub tenant: String,
    pub history_id: u64,
    pub repo: String,
    pub retention: String,
    /// Every point restorable now at or after this stays restorable.
    pub keep_from: Option<String>,
    pub keep_from_reason: String,
    pub delete: Vec<PruneObject>,
    pub delete_bytes: u64,
    pub kept_objects: u64,
    pub kept_bytes: u64,
    pub restorable_after: Vec<RestorePoint>,
    pub notes: Vec<String>,
    /// The prune job (none in a dry run).
    pub job: Option<JobInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PruneResponse {
    pub dry_run: bool,
    pub plans: Vec<PrunePlan>,
}

/// `GET /v1/protection`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProtectionQuery {
    /// Read every repository now instead of answering from what was read last (at most
    /// 30 s ago in a server).
    #[serde(default)]
    pub refresh: bool,
}

/// A backup in the overview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupBrief {
    pub backup_id: String,
    pub time: String,
    pub age_secs: u64,
    pub stored_bytes: u64,
}

/// One tenant's protection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProtectionInfo {
    pub tenant: String,
    pub tenant_id: u64,
    pub state: String,
    /// The strategy that applies (null: none).
    pub strategy: Option<StrategyBody>,
    /// It is the tenant's own (false: the default).
    pub own_strategy: bool,
    /// The repository looked at.
    pub repo: Option<String>,
    pub last_full: Option<BackupBrief>,
    pub last_incr: Option<BackupBrief>,
    /// What a restore can reach, from the planner.
    pub restorable: Vec<RestorePoint>,
    pub restorable_until_time: Option<String>,
    /// How many ms of commits a disaster now would lose (null: nothing restorable).
    pub rpo_ms: Option<u64>,
    /// The archiver: `running`, `stopped`, `broken` (null: never started).
    pub archive: Option<String>,
    pub archive_running: bool,
    pub next_full_time: Option<String>,
    pub next_incr_time: Option<String>,
    pub next_drill_time: Option<String>,
    /// The newest drill that ended: its job, when, whether it proved the restore.
    pub last_drill_job: Option<u64>,
    pub last_drill_time: Option<String>,
    pub last_drill_ok: Option<bool>,
    /// The time the newest successful drill restored and compared.
    pub last_proven_restorable_time: Option<String>,
    pub runs: Vec<RunInfo>,
    /// Bytes and objects of its history in the repository.
    pub repo_bytes: u64,
    pub repo_objects: u64,
    /// When the repository was read.
    pub read_time: String,
    /// What is wrong, in words with the way out (empty: nothing).
    pub problems: Vec<String>,
}

/// A repository's usage by this store's tenants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepoUsage {
    pub url: String,
    /// Its name, if it is a named repository.
    pub name: Option<String>,
    pub bytes: u64,
    pub objects: u64,
    pub tenants: u64,
}

/// The protection of every tenant, worst first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProtectionOverview {
    pub generated_at: String,
    pub tenants: Vec<ProtectionInfo>,
    pub repositories: Vec<RepoUsage>,
}

/// Run a restore drill now (`POST /v1/tenants/{tenant}/drill`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillRequest {
    /// Restore this time (any time expression: RFC 3339, a commit ts, `-1h`,
    /// `@snapshot`); default: a random point of the restorable window.
    #[serde(default)]
    pub at: Option<String>,
    /// Default: the tenant's strategy's repository, else where its backups are.
    #[serde(default)]
    pub repo: Option<String>,
}

/// Make an API token (`POST /v1/tokens`, admin only).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// `read`, `write`, `operator` or `admin`.
    pub role: String,
    /// The one tenant it may see (by name or `#<id>`); none: every tenant. Not for
    /// `admin`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Seconds until it stops working (1 to 315360000); none: it does not expire.
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
    /// What it is for.
    #[serde(default)]
    pub name: Option<String>,
}

/// Who the caller is (`GET /v1/whoami`): what a client, such as the dashboard, may
/// offer. `token` is null for the process itself (embedded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// read, write, operator or admin.
    pub role: String,
    /// The one tenant the caller may see (its name now); null: every tenant.
    pub tenant: Option<String>,
    pub tenant_id: Option<u64>,
    pub token: Option<TokenInfo>,
}

/// A token (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    pub id: u64,
    pub name: String,
    pub role: String,
    /// Its tenant's current name, if it is bound to one.
    pub tenant: Option<String>,
    pub tenant_id: Option<u64>,
    /// `active`, `expired` or `revoked`.
    pub state: String,
    pub created_at: String,
    /// Who made it: `local` (the CLI on the data directory) or `token <id> (<role>)`.
    pub created_by: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A token just made: the secret is shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// Send it as `Authorization: Bearer <token>`; keep it secret.
    pub token: String,
    pub info: TokenInfo,
}

/// One data key of a tenant's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DataKeyInfo {
    /// `k1`, `k2`, …
    pub key_id: String,
    pub created_at: Option<String>,
    /// Set once destroyed (the tenant was shredded).
    pub destroyed_at: Option<String>,
    /// New backups and log are sealed with it.
    pub current: bool,
}

/// A tenant's data keys (`GET /v1/tenants/{tenant}/keys`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantKeys {
    pub tenant: String,
    pub history_id: u64,
    /// The repository they were read from.
    pub repo: String,
    /// Whether this server seals new backups and log (it has a master key).
    pub encryption: bool,
    /// The master key's public fingerprint.
    pub master_key_id: Option<String>,
    pub keys: Vec<DataKeyInfo>,
}

/// Make a new data key current (`POST /v1/tenants/{tenant}/keys/rotate`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// Default: the tenant's repository (its archive's, its backups', its strategy's).
    #[serde(default)]
    pub repo: Option<String>,
}

/// What a shred did (`POST /v1/tenants/{tenant}/shred`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShredResponse {
    pub tenant: String,
    /// None when it was dropped before (a shred run again to finish).
    pub tenant_id: Option<u64>,
    pub history_id: u64,
    /// The drop (None when it was dropped before).
    pub commit: Option<Commit>,
    /// Data keys destroyed, in every repository named below.
    pub keys_destroyed: Vec<String>,
    pub repos: Vec<String>,
    pub destroyed_at: String,
    /// Backups of the tenant with files written before encryption was on: shredding
    /// does not make those unreadable (delete them).
    pub still_readable: Vec<String>,
    /// Repositories where keys could not be destroyed, with why: the shred is not
    /// finished until this is empty (run it again).
    pub incomplete: Vec<String>,
}

/// One entry of the audit log (`GET /v1/audit`): who did what, when, to which tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    pub at: String,
    /// `local` (the data directory's owner) or `token <id> (<role>)`.
    pub by: String,
    /// `shred`, `key_rotate`, `token_create`, `token_revoke`.
    pub action: String,
    pub tenant: Option<String>,
    pub tenant_id: Option<u64>,
    #[schema(value_type = Object)]
    pub detail: Value,
}
