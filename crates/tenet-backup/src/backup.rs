//! The full backup job (`backup_full`).
//!
//! 1. **plan** (persisted in the checkpoint, so a resumed job reuses it): pick
//!    F = the visible ts, pin the tenant at F (GC keeps F readable while writes go on),
//!    read the catalog at F, split every table into shards at split points taken from
//!    the SST files (about [`SHARD_BYTES`] each), name the backup.
//! 2. **export**: one task per shard, in parallel on the worker pool: scan the shard at
//!    F, encode data files (zstd blocks), cutting a new file whenever one reaches
//!    [`SHARD_BYTES`] (a shard planned from a large SST file gets several), compute
//!    each file's blake3 and logical digest, upload it as it is cut. A task's output
//!    (per file: path, size, checksum, rows, digest) is a row of the job; finished
//!    shards are not redone after a restart.
//! 3. **commit**: write the manifest (the commit point; reused if a previous run wrote
//!    it), the backup record, release the pin.
//!
//! Cleanup (cancel or failure): delete the manifest first, then every object under the
//! backup's directory, the record if any, and release the pin.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use tenet_jobs::{JobContext, RowCounter, Task};
use tenet_store::catalog::{decode_entry, CATALOG_TABLE};
use tenet_store::{CatalogEntry, Store, TableDef, Ts};

use crate::error::{Error, Result};
use crate::format::{
    decode_manifest, encode_manifest, DataFileWriter, Digest, DigestKind, FileEntry, Manifest,
    TableEntry,
};
use crate::records::{self, BackupRecord};
use crate::repo::{backup_dir, manifest_key, Repo};
use crate::util::{blocking, from_hex, job_kind, now, params, scan_rows, to_hex};

/// Target on-disk size of one shard, and the size at which an export task cuts its
/// data file and starts the next one (a data file is built in memory before upload, so
/// this bounds the memory of each export task, however large the SST files a shard is
/// planned from).
pub const SHARD_BYTES: u64 = 16 << 20;
pub const KIND: &str = "backup_full";

/// Parameters of a full backup job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupParams {
    pub tenant_id: u64,
    /// The tenant's name when the backup was asked for (for messages only).
    pub tenant: String,
    pub repo: String,
    /// The backup's submission created the repository (said loudly by the CLI).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_repository: bool,
    /// Where export tasks cut data files (None: [`SHARD_BYTES`]). Not offered to users;
    /// tests set it to get many files from little data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_bytes: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Plan {
    backup_id: String,
    backup_ts: Ts,
    #[serde(default)]
    tenant_created_ts: Option<Ts>,
    /// The history the backup belongs to (`tenants/<id>/` in the repository; None:
    /// the tenant's own, from a plan made before the field existed).
    #[serde(default)]
    history_id: Option<u64>,
    /// The store's table-id sequence when the plan was made (see the manifest).
    #[serde(default)]
    table_ids_below: Option<u64>,
    /// How the export's digests hash rows (plans made before the field: blake3).
    #[serde(default = "DigestKind::legacy")]
    row_digest: DigestKind,
    pin_id: u64,
    started_at: String,
    history_retention_secs: u64,
    snapshots: Vec<Value>,
    tables: Vec<PlannedTable>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PlannedTable {
    def: TableDef,
    catalog_ts: Ts,
    /// Shard bounds as hex `pk_enc`s; shard i covers `[bounds[i-1], bounds[i])`.
    bounds: Vec<String>,
}

impl PlannedTable {
    fn shards(&self) -> usize {
        self.bounds.len() + 1
    }

    fn shard_range(&self, i: usize) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let from = i.checked_sub(1).map(|j| from_hex(&self.bounds[j]));
        let to = self.bounds.get(i).map(|b| from_hex(b));
        (from, to)
    }
}

job_kind!(
    /// Runs full backups.
    FullBackup,
    KIND
);

async fn run(ctx: JobContext) -> Result<Value> {
    let p: BackupParams = params(&ctx)?;
    let repo = Repo::open(&p.repo)?;
    let store = ctx.store().clone();
    repo.check(&now(&store)).await?;
    ctx.set_phase("plan")?;
    let plan: Plan = match ctx.checkpoint("plan") {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| Error::Internal(format!("job checkpoint does not decode: {e}")))?,
        None => {
            let plan = make_plan(&store, &p, ctx.id())?;
            ctx.set_checkpoint(
                "plan",
                serde_json::to_value(&plan).expect("plans serialize"),
            )?;
            plan
        }
    };
    let started = Instant::now();

    let plan = Arc::new(plan);
    let mut tasks = Vec::new();
    for (ti, t) in plan.tables.iter().enumerate() {
        for shard in 0..t.shards() {
            let (plan, repo, p) = (plan.clone(), repo.clone(), p.clone());
            tasks.push(Task::new(
                format!("{}-{shard:04}", t.def.id),
                move |ctx| async move { Ok(export_shard(ctx, &p, &plan, &repo, ti, shard).await?) },
            ));
        }
    }
    let outputs = ctx.run_tasks("export", tasks).await?;

    ctx.set_phase("commit")?;
    let mkey = manifest_key(plan.repo_id(&p), &plan.backup_id);
    let manifest = match repo.get_opt(&mkey).await? {
        Some(existing) => decode_manifest(&repo.describe(&mkey), &existing)?,
        None => {
            let m = build_manifest(&p, &plan, &outputs, now(&store))?;
            check_files(&repo, &backup_dir(plan.repo_id(&p), &plan.backup_id), &m).await?;
            repo.put(&mkey, Bytes::from(encode_manifest(&m))).await?;
            m
        }
    };
    let rec = BackupRecord::from_manifest(&manifest, repo.url(), ctx.id());
    records::put(&store, &rec)?;
    store.unpin(p.tenant_id, plan.pin_id)?;
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "backup_id": manifest.backup_id,
        "tenant": manifest.tenant_name,
        "backup_ts": manifest.backup_ts,
        "backup_time": manifest.backup_time,
        "repo": repo.url(),
        "tables": manifest.tables.len(),
        "files": rec.files,
        "rows": manifest.rows,
        "logical_bytes": manifest.logical_bytes,
        "stored_bytes": manifest.stored_bytes,
        "seconds": (secs * 1000.0).round() / 1000.0,
    }))
}

fn make_plan(store: &Store, p: &BackupParams, job_id: u64) -> Result<Plan> {
    let rec = store
        .tenant_by_id(p.tenant_id)
        .ok_or_else(|| tenet_store::Error::TenantNotFound(p.tenant.clone()))?;
    tenet_store::lifecycle::check(&rec, tenet_store::lifecycle::TenantAction::Backup)?;
    // A crash between pinning and persisting the plan leaves a pin of this job.
    release_pins(store, rec.id, job_id)?;
    let f = store.tenant_visible_ts(rec.id);
    let pin = store.pin(rec.id, f, &pin_owner(job_id))?;
    let mut tables = Vec::new();
    let mut snapshots = Vec::new();
    store.scan_at(p.tenant_id, CATALOG_TABLE, f, None, None, |_, ts, v| {
        match decode_entry(v)? {
            CatalogEntry::Table(def) => tables.push((def, ts)),
            CatalogEntry::Snapshot(s) => snapshots.push(json!({"name": s.name, "ts": s.ts})),
        }
        Ok(true)
    })?;
    let mut planned = Vec::new();
    for (def, catalog_ts) in tables {
        let bounds = store
            .split_points(p.tenant_id, def.id, SHARD_BYTES)?
            .iter()
            .map(|b| to_hex(b))
            .collect();
        planned.push(PlannedTable {
            def,
            catalog_ts,
            bounds,
        });
    }
    let time = f.to_rfc3339();
    let compact: String = time
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(17)
        .collect();
    Ok(Plan {
        backup_id: format!(
            "{}-{}T{}-j{job_id}",
            rec.name,
            &compact[..8],
            &compact[8..14]
        ),
        backup_ts: f,
        tenant_created_ts: Some(rec.history_ref().created_ts),
        history_id: Some(rec.history_ref().id),
        table_ids_below: Some(store.table_ids_below()?),
        row_digest: DigestKind::CURRENT,
        pin_id: pin.id,
        started_at: now(store),
        history_retention_secs: rec.history_retention_secs,
        snapshots,
        tables: planned,
    })
}

impl Plan {
    /// The tenant id the repository files the backup under.
    fn repo_id(&self, p: &BackupParams) -> u64 {
        self.history_id.unwrap_or(p.tenant_id)
    }
}

/// Part `part` of shard `shard`: `data/<table>-<shard>.tdf`, then
/// `data/<table>-<shard>-<part>.tdf` for the files cut after the first.
fn data_key(
    p: &BackupParams,
    plan: &Plan,
    table_id: u64,
    shard: usize,
    part: usize,
) -> (String, String) {
    let rel = match part {
        0 => format!("data/{table_id}-{shard:04}.tdf"),
        _ => format!("data/{table_id}-{shard:04}-{part:03}.tdf"),
    };
    let key = format!("{}/{rel}", backup_dir(plan.repo_id(p), &plan.backup_id));
    (rel, key)
}

/// One data file being built by an export task.
struct Part {
    w: DataFileWriter,
    digest: Digest,
    logical: u64,
}

impl Part {
    fn new() -> Part {
        Part {
            w: DataFileWriter::new(),
            digest: Digest::default(),
            logical: 0,
        }
    }
}

/// Exports one planned shard: scans it at F into data files, cutting a new file when
/// one reaches [`SHARD_BYTES`] (or the params' `file_bytes`) and uploading each as it
/// is cut (from the scanning thread), so a task holds one file at a time. Its output
/// lists the files.
async fn export_shard(
    ctx: JobContext,
    p: &BackupParams,
    plan: &Arc<Plan>,
    repo: &Repo,
    table: usize,
    shard: usize,
) -> Result<Value> {
    let t = &plan.tables[table];
    let (from, to) = t.shard_range(shard);
    let store = ctx.store().clone();
    let (tenant_id, table_id, ts) = (p.tenant_id, t.def.id, plan.backup_ts);
    let (name, kind) = (t.def.name.clone(), plan.row_digest);
    // The throttle of a backup counts bytes read, as they are read.
    let mut counter = RowCounter::new(&ctx, true);
    let (p, plan, repo) = (p.clone(), plan.clone(), repo.clone());
    let handle = tokio::runtime::Handle::current();
    let cut_at = p.file_bytes.unwrap_or(SHARD_BYTES).max(1);
    let files = blocking(move || {
        let mut files: Vec<FileEntry> = Vec::new();
        let upload = |part: Part, files: &mut Vec<FileEntry>| -> Result<()> {
            ctx.check_cancelled()?;
            let (rel, key) = data_key(&p, &plan, table_id, shard, files.len());
            files.push(handle.block_on(upload_file(&ctx, &repo, rel, key, part))?);
            Ok(())
        };
        let mut part = Part::new();
        scan_rows(
            &store,
            (tenant_id, table_id, ts),
            from.as_deref(),
            to.as_deref(),
            |pk, vts, row| {
                part.w.add(pk, vts, row)?;
                counter.add((pk.len() + row.len()) as u64)?;
                part.digest.add_row(kind, &name, pk, row);
                part.logical += (pk.len() + row.len()) as u64;
                if part.w.encoded_len() as u64 >= cut_at {
                    upload(std::mem::replace(&mut part, Part::new()), &mut files)?;
                }
                Ok(())
            },
        )?;
        counter.flush()?;
        // The last file; an empty shard still has one (empty) file.
        if part.w.records() > 0 || files.is_empty() {
            upload(part, &mut files)?;
        }
        Ok(files)
    })
    .await?;
    // `rows`/`bytes` feed the job's progress when it resumes.
    Ok(json!({
        "rows": files.iter().map(|f| f.rows).sum::<u64>(),
        "bytes": files.iter().map(|f| f.logical_bytes).sum::<u64>(),
        "files": files,
    }))
}

/// Finishes, seals and uploads one data file of an export task.
async fn upload_file(
    ctx: &JobContext,
    repo: &Repo,
    rel: String,
    key: String,
    part: Part,
) -> Result<FileEntry> {
    let rows = part.w.records();
    let bytes = part.w.finish()?;
    let bytes = crate::keys::seal_object(ctx.store(), repo, &key, bytes).await?;
    let size = bytes.len() as u64;
    let blake3 = blake3::hash(&bytes).to_hex().to_string();
    let key_id = crate::keys::sealed_key_id(&bytes);
    repo.put(&key, Bytes::from(bytes)).await?;
    Ok(FileEntry {
        path: rel,
        size,
        blake3,
        rows,
        logical_bytes: part.logical,
        digest: part.digest.to_hex(),
        key_id,
    })
}

/// The commit point's precondition: every file the manifest lists is in the
/// repository with its size.
async fn check_files(repo: &Repo, dir: &str, m: &Manifest) -> Result<()> {
    let present: std::collections::HashMap<String, u64> = repo
        .list(&format!("{dir}/data/"))
        .await?
        .into_iter()
        .collect();
    for f in m.tables.iter().flat_map(|t| &t.files) {
        let key = format!("{dir}/{}", f.path);
        if present.get(&key) != Some(&f.size) {
            return Err(Error::Corrupt {
                object: repo.describe(&key),
                reason: format!(
                    "missing or not {} bytes before the manifest was written",
                    f.size
                ),
            });
        }
    }
    Ok(())
}

fn build_manifest(
    p: &BackupParams,
    plan: &Plan,
    outputs: &[Value],
    finished_at: String,
) -> Result<Manifest> {
    let mut outs = outputs.iter();
    let mut tables = Vec::new();
    for t in &plan.tables {
        let mut files = Vec::new();
        let mut digest = Digest::default();
        for _ in 0..t.shards() {
            let out = outs
                .next()
                .ok_or_else(|| Error::Internal("missing shard output".into()))?;
            // A shard's files; a task finished by an older version output its one file.
            let shard_files: Vec<FileEntry> = match out.get("files") {
                Some(list) => serde_json::from_value(list.clone()),
                None => serde_json::from_value(out.clone()).map(|f| vec![f]),
            }
            .map_err(|e| Error::Internal(format!("shard output does not decode: {e}")))?;
            for f in shard_files {
                digest.combine(
                    &Digest::from_hex(&f.digest)
                        .ok_or_else(|| Error::Internal("bad digest in shard output".into()))?,
                );
                files.push(f);
            }
        }
        tables.push(TableEntry {
            def: t.def.clone(),
            catalog_ts: t.catalog_ts,
            rows: files.iter().map(|f| f.rows).sum(),
            logical_bytes: files.iter().map(|f| f.logical_bytes).sum(),
            digest: digest.to_hex(),
            files,
        });
    }
    Ok(Manifest {
        backup_id: plan.backup_id.clone(),
        kind: "full".into(),
        tenant_id: plan.repo_id(p),
        tenant_name: p.tenant.clone(),
        tenant_created_ts: plan.tenant_created_ts,
        history_retention_secs: plan.history_retention_secs,
        backup_ts: plan.backup_ts,
        backup_time: plan.backup_ts.to_rfc3339(),
        started_at: plan.started_at.clone(),
        finished_at,
        parent: None,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        snapshots: plan.snapshots.clone(),
        rows: tables.iter().map(|t| t.rows).sum(),
        logical_bytes: tables.iter().map(|t| t.logical_bytes).sum(),
        stored_bytes: tables.iter().flat_map(|t| &t.files).map(|f| f.size).sum(),
        tables,
        start_ts: None,
        segments: Vec::new(),
        table_ids_below: plan.table_ids_below,
        row_digest: plan.row_digest,
    })
}

fn pin_owner(job_id: u64) -> String {
    format!("backup job {job_id}")
}

/// Releases every pin this job holds on the tenant.
fn release_pins(store: &Store, tenant_id: u64, job_id: u64) -> Result<()> {
    let owner = pin_owner(job_id);
    for pin in store.pins(tenant_id)? {
        if pin.owner == owner {
            store.unpin(pin.tenant_id, pin.id)?;
        }
    }
    Ok(())
}

async fn cleanup(ctx: JobContext) -> Result<()> {
    let p: BackupParams = params(&ctx)?;
    if ctx.store().tenant_by_id(p.tenant_id).is_some() {
        release_pins(ctx.store(), p.tenant_id, ctx.id())?;
    }
    let Some(plan) = ctx.checkpoint("plan") else {
        return Ok(());
    };
    let plan: Plan = serde_json::from_value(plan)
        .map_err(|e| Error::Internal(format!("job checkpoint does not decode: {e}")))?;
    let store = ctx.store().clone();
    let repo = Repo::open(&p.repo)?;
    records::remove_backup(
        &store,
        &repo,
        plan.repo_id(&p),
        &plan.backup_id,
        Some(ctx.id()),
    )
    .await?;
    store.unpin(p.tenant_id, plan.pin_id)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan checkpointed by a build from before manifest version 2 has no
    /// `row_digest`: when a newer build resumes the job, its remaining export tasks must
    /// hash rows as the finished ones did (blake3), so the manifest is version 1.
    #[test]
    fn a_plan_without_a_row_digest_is_a_version_1_plan() {
        let old = json!({
            "backup_id": "t-20260101T000000-j1", "backup_ts": 1, "pin_id": 1,
            "started_at": "", "history_retention_secs": 0, "snapshots": [], "tables": []
        });
        let plan: Plan = serde_json::from_value(old).unwrap();
        assert_eq!(plan.row_digest, DigestKind::Blake3);
        assert_eq!(plan.row_digest.manifest_version(), 1);
        let mut new = serde_json::to_value(&plan).unwrap();
        new["row_digest"] = json!("xxh3-sum");
        let plan: Plan = serde_json::from_value(new).unwrap();
        assert_eq!(plan.row_digest, DigestKind::CURRENT);
    }
}
