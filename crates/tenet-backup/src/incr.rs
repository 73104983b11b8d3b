//! The incremental backup job (`backup_incr`): a named backup of the tenant's commit
//! log `(E, now]`, where E is the end of the previous backup of the chain (full or
//! incremental) in the same repository.
//!
//! 1. **plan** (checkpoint): the end ts = the visible ts, the backup id.
//! 2. **log**: read the log `(E, end]` and write it as segments of at most 64 MiB
//!    under the backup's `log/` directory. GC must not have deleted anything after E:
//!    that is checked before and after reading ([`Store::log_complete_after`]); a gap
//!    fails the job with a clear error (take a full backup to restart the chain).
//! 3. **commit**: the manifest (kind `incr`, `parent`, `start_ts` = E, `backup_ts` =
//!    end, the segments with sizes and checksums) after checking every segment is in
//!    the repository, then the backup record.
//!
//! Cleanup removes everything under the backup's directory, manifest first.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use tenet_jobs::{JobContext, Task};
use tenet_store::{Store, Ts};

use crate::error::{Error, Result};
use crate::format::{encode_manifest, Manifest, SegmentEntry};
use crate::records::{self, BackupRecord};
use crate::repo::{backup_dir, manifest_key, Repo};
use crate::segment::SegmentWriter;
use crate::util::{job_kind, now, params};

pub const KIND: &str = "backup_incr";
const SEGMENT_MAX: usize = 64 << 20;
const READ_BATCH: usize = 4096;

/// Parameters of an incremental backup job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IncrParams {
    pub tenant_id: u64,
    pub tenant: String,
    pub repo: String,
    /// The previous backup of the chain and its end.
    pub parent: String,
    pub start: Ts,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Plan {
    backup_id: String,
    end: Ts,
    #[serde(default)]
    tenant_created_ts: Option<Ts>,
    /// The history the backup belongs to (None: the tenant's own; see `backup.rs`).
    #[serde(default)]
    history_id: Option<u64>,
    started_at: String,
    history_retention_secs: u64,
}

job_kind!(
    /// Runs incremental backups.
    IncrBackup,
    KIND
);

fn gap(p: &IncrParams, floor: Ts) -> Error {
    Error::NotRestorable(format!(
        "the log of tenant `{}` after the previous backup {} ({}) was garbage-collected \
         (complete only after {}); the chain is broken: take a full backup",
        p.tenant,
        p.parent,
        p.start.to_rfc3339(),
        floor.to_rfc3339()
    ))
}

async fn run(ctx: JobContext) -> Result<Value> {
    let p: IncrParams = params(&ctx)?;
    let store = ctx.store().clone();
    let repo = Repo::open(&p.repo)?;
    ctx.set_phase("plan")?;
    let plan: Plan = match ctx.checkpoint("plan") {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| Error::Internal(format!("job checkpoint does not decode: {e}")))?,
        None => {
            let rec = store
                .tenant_by_id(p.tenant_id)
                .ok_or_else(|| tenet_store::Error::TenantNotFound(p.tenant.clone()))?;
            let end = store.tenant_visible_ts(p.tenant_id);
            let time: String = end
                .to_rfc3339()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            let plan = Plan {
                backup_id: format!(
                    "{}-{}T{}-j{}-incr",
                    rec.name,
                    &time[..8],
                    &time[8..14],
                    ctx.id()
                ),
                end,
                tenant_created_ts: Some(rec.history_ref().created_ts),
                history_id: Some(rec.history_ref().id),
                started_at: now(&store),
                history_retention_secs: rec.history_retention_secs,
            };
            ctx.set_checkpoint(
                "plan",
                serde_json::to_value(&plan).expect("plans serialize"),
            )?;
            plan
        }
    };
    let repo_id = plan.history_id.unwrap_or(p.tenant_id);
    let dir = backup_dir(repo_id, &plan.backup_id);
    let task = {
        let (p, repo, dir, end) = (p.clone(), repo.clone(), dir.clone(), plan.end);
        Task::new("log", move |ctx| async move {
            Ok(write_log(&ctx, &p, &repo, &dir, end).await?)
        })
    };
    let out = ctx.run_tasks("log", vec![task]).await?;
    let segments: Vec<SegmentEntry> = serde_json::from_value(out[0]["segments"].clone())
        .map_err(|e| Error::Internal(format!("task output does not decode: {e}")))?;

    ctx.set_phase("commit")?;
    let present: std::collections::HashMap<String, u64> = repo
        .list(&format!("{dir}/log/"))
        .await?
        .into_iter()
        .collect();
    for s in &segments {
        let key = format!("{dir}/{}", s.path);
        if present.get(&key) != Some(&s.size) {
            return Err(Error::Corrupt {
                object: repo.describe(&key),
                reason: "missing before the manifest was written".into(),
            });
        }
    }
    let m = Manifest {
        backup_id: plan.backup_id.clone(),
        kind: "incr".into(),
        tenant_id: repo_id,
        tenant_name: p.tenant.clone(),
        tenant_created_ts: plan.tenant_created_ts,
        history_retention_secs: plan.history_retention_secs,
        backup_ts: plan.end,
        backup_time: plan.end.to_rfc3339(),
        started_at: plan.started_at.clone(),
        finished_at: now(&store),
        parent: Some(p.parent.clone()),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        snapshots: Vec::new(),
        tables: Vec::new(),
        rows: segments.iter().map(|s| s.records).sum(),
        logical_bytes: out[0]["bytes"].as_u64().unwrap_or(0),
        stored_bytes: segments.iter().map(|s| s.size).sum(),
        start_ts: Some(p.start),
        segments,
        table_ids_below: None,
        row_digest: crate::format::DigestKind::CURRENT,
    };
    repo.put(
        &manifest_key(repo_id, &plan.backup_id),
        Bytes::from(encode_manifest(&m)),
    )
    .await?;
    let mut rec = BackupRecord::from_manifest(&m, repo.url(), ctx.id());
    rec.files = m.segments.len() as u64;
    records::put(&store, &rec)?;
    Ok(json!({
        "backup_id": m.backup_id,
        "kind": "incr",
        "tenant": m.tenant_name,
        "parent": p.parent,
        "start_ts": p.start,
        "backup_ts": m.backup_ts,
        "backup_time": m.backup_time,
        "commits": m.rows,
        "files": m.segments.len(),
        "logical_bytes": m.logical_bytes,
        "stored_bytes": m.stored_bytes,
    }))
}

/// Writes the log `(p.start, end]` as segments; returns them and the raw bytes.
async fn write_log(
    ctx: &JobContext,
    p: &IncrParams,
    repo: &Repo,
    dir: &str,
    end: Ts,
) -> Result<Value> {
    let store: Store = ctx.store().clone();
    let floor = store.log_complete_after(p.tenant_id)?;
    if floor > p.start {
        return Err(gap(p, floor));
    }
    let (tenant_id, start) = (p.tenant_id, p.start);
    let cancel = ctx.cancel_token().clone();
    let s2 = store.clone();
    // Build segments on a blocking thread; upload each as it is cut.
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<(Vec<u8>, crate::segment::SegmentInfo, usize)>(2);
    let producer = tokio::task::spawn_blocking(move || -> Result<()> {
        tenet_jobs::lower_priority();
        let mut at = start;
        let mut w = SegmentWriter::new(at);
        loop {
            cancel.check()?;
            let (recs, covered) = s2.read_log_raw_covered(tenant_id, at, READ_BATCH)?;
            for (ts, bytes) in recs.iter().filter(|r| r.0 <= end) {
                w.add_encoded(*ts, bytes)?;
            }
            let covered = covered.min(end);
            let done = covered >= end || recs.is_empty() && covered <= at;
            at = covered;
            if w.raw_len() >= SEGMENT_MAX || done {
                let raw = w.raw_len();
                let (bytes, info) = w.finish(at)?;
                if tx.blocking_send((bytes, info, raw)).is_err() {
                    return Ok(());
                }
                if done {
                    return Ok(());
                }
                w = SegmentWriter::new(at);
            }
        }
    });
    let mut segments = Vec::new();
    let mut raw_total = 0u64;
    while let Some((bytes, info, raw)) = rx.recv().await {
        ctx.throttle(bytes.len() as u64).await?;
        let path = format!("log/{:020}-{:020}.tls", info.start.0, info.end.0);
        let key = format!("{dir}/{path}");
        let bytes = crate::keys::seal_object(ctx.store(), repo, &key, bytes).await?;
        let size = bytes.len() as u64;
        let sum = blake3::hash(&bytes).to_hex().to_string();
        let key_id = crate::keys::sealed_key_id(&bytes);
        repo.put(&key, Bytes::from(bytes)).await?;
        ctx.add_progress(info.records, raw as u64);
        raw_total += raw as u64;
        segments.push(SegmentEntry {
            path,
            size,
            blake3: sum,
            start: info.start,
            end: info.end,
            records: info.records,
            key_id,
        });
    }
    producer
        .await
        .map_err(|e| Error::Internal(format!("log reader panicked: {e}")))??;
    if segments.last().map(|s| s.end) != Some(end) {
        return Err(Error::Internal(format!(
            "the log was read only up to {:?}, not {end}",
            segments.last().map(|s| s.end)
        )));
    }
    let floor = store.log_complete_after(p.tenant_id)?;
    if floor > p.start {
        return Err(gap(p, floor));
    }
    Ok(json!({ "segments": segments, "bytes": raw_total }))
}

async fn cleanup(ctx: JobContext) -> Result<()> {
    let p: IncrParams = params(&ctx)?;
    let Some(plan) = ctx.checkpoint("plan") else {
        return Ok(());
    };
    let plan: Plan = serde_json::from_value(plan)
        .map_err(|e| Error::Internal(format!("job checkpoint does not decode: {e}")))?;
    let repo = Repo::open(&p.repo)?;
    records::remove_backup(
        ctx.store(),
        &repo,
        plan.history_id.unwrap_or(p.tenant_id),
        &plan.backup_id,
        Some(ctx.id()),
    )
    .await?;
    Ok(())
}
