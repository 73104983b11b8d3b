//! The restore job (`restore`): a full backup, and the archived log after it up to the
//! target time, into a new tenant (or, in place, into a scratch tenant; below).
//!
//! The target tenant is created in the `restoring` state when the job is submitted
//! (so its name is taken at once and nobody can read or write it), and its id is
//! stored in the job's checkpoint.
//!
//! 1. **prepare**: read and check the manifest; allocate one new table id per table
//!    (the mapping source id → new id is persisted in the checkpoint before use).
//! 2. **ingest**: one task for the catalog (table definitions with their new ids, at
//!    their original commit ts) and one per data file: download, check size and
//!    blake3, decode, rewrite tenant and table ids, write an SST file, ingest it
//!    (RocksDB bulk load). Versions keep their original commit ts, so ingesting a file
//!    twice is harmless and a resumed restore just redoes unfinished files.
//! 3. **verify**: scan every restored table at F, in ranges cut at the restored SST
//!    files, one task per range on the worker pool; per table, the ranges' row counts
//!    and logical digests (a digest does not depend on the split) must sum to the
//!    manifest's.
//! 4. **replay** (a point-in-time restore): the planned log ranges after F, applied up
//!    to the target by the log applier (`apply.rs`), resumable from the last applied ts
//!    in the checkpoint.
//! 5. **activate**: the tenant's history starts at F (older reads are `TooOld`); the
//!    state becomes `active`.
//!
//! Cleanup (cancel or failure): drop the target if it is still `restoring`, and remove
//! temporary SST files. A restore never leaves a half-restored tenant `active`.
//!
//! # In place
//! With [`RestoreParams::in_place`], the target is a hidden scratch tenant
//! (`.restore-<live id>`) that keeps the live tenant's table ids (the backup is of the
//! live tenant itself, so no id is rewritten), and step 5 is instead:
//!
//! 5. **apply**: the live tenant is made equal to the scratch tenant at the target ts in
//!    one commit ([`tenet_store::Store::make_equal`]: a diff under a short write fence,
//!    logged and archived like any commit); then the scratch tenant is dropped.
//!
//! The commit records the job's token atomically, so a job resumed after a crash knows
//! whether it is applied: before it, the live tenant is wholly old and the job redoes
//! what is missing; after it, wholly new and the job only drops the scratch tenant.
//! The snapshot `before-restore-<ts>` taken when the job was created is the undo.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use tenet_jobs::{JobContext, RowCounter, Task};
use tenet_store::catalog::{encode_entry, table_key, CATALOG_TABLE};
use tenet_store::{CatalogEntry, Store, TenantState, TenantUpdate};

use crate::apply::{Applied, ApplySink, LogApply};
use crate::error::{Error, Result};
use crate::format::{check_table_sums, read_data_file, Digest, FileEntry, Manifest};
use crate::inventory::load_manifest;
use crate::planner::LogRange;
use crate::repo::{backup_dir, Repo};
use crate::util::{blocking, from_hex, job_kind, params, scan_rows, to_hex};

pub const KIND: &str = "restore";

/// Parameters of a restore job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestoreParams {
    pub backup_id: String,
    pub repo: String,
    pub source_tenant_id: u64,
    pub source_tenant: String,
    pub target: String,
    /// Restore to this ts by replaying `logs` after the full backup (None: its F).
    #[serde(default)]
    pub target_ts: Option<tenet_store::Ts>,
    /// Log ranges covering (F, target_ts], in order (from the planner).
    #[serde(default)]
    pub logs: Vec<LogRange>,
    /// Restore the source tenant in place: `target` is then its scratch tenant.
    #[serde(default)]
    pub in_place: Option<InPlace>,
    /// Restore a standby that then follows the source (`standby.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<crate::standby::StandbyParams>,
}

impl RestoreParams {
    /// Whether the target keeps the source's table ids (no mapping).
    fn keeps_ids(&self) -> bool {
        self.in_place.is_some() || self.standby.is_some()
    }
}

/// The live tenant an in-place restore puts back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InPlace {
    pub tenant_id: u64,
}

/// Takes the snapshot `before-restore-<its ts>` of the live tenant (the undo) once, and
/// checkpoints its name. (Killed between the two, a resumed job takes another one; the
/// live tenant is unchanged by the job until its commit, so both show the same state.)
fn undo_snapshot(ctx: &JobContext, ip: &InPlace) -> Result<String> {
    if let Some(name) = ctx
        .checkpoint("undo_snapshot")
        .and_then(|v| v.as_str().map(String::from))
    {
        return Ok(name);
    }
    let (snap, _) = ctx.store().with_txn(ip.tenant_id, |t| {
        let name = format!("before-restore-{}", t.start_ts());
        t.create_snapshot(&name)
    })?;
    ctx.set_checkpoint("undo_snapshot", json!(snap.name))?;
    Ok(snap.name)
}

/// The token an in-place restore's commit records ([`tenet_store::Store::make_equal`]).
fn in_place_token(job: u64) -> String {
    format!("restore-{job}")
}

job_kind!(
    /// Runs restores.
    Restore,
    KIND
);

/// Downloads a data file and checks its size and checksum against the manifest.
pub(crate) async fn fetch_file(
    ctx: &JobContext,
    repo: &Repo,
    dir: &str,
    f: &FileEntry,
) -> Result<(String, Bytes)> {
    let key = format!("{dir}/{}", f.path);
    let object = repo.describe(&key);
    ctx.throttle(f.size).await?;
    let bytes = repo.get(&key).await?;
    if bytes.len() as u64 != f.size {
        return Err(Error::Corrupt {
            object,
            reason: format!("{} bytes, the manifest says {}", bytes.len(), f.size),
        });
    }
    let sum = blake3::hash(&bytes).to_hex().to_string();
    if sum != f.blake3 {
        return Err(Error::Corrupt {
            object,
            reason: format!("blake3 {sum} does not match the manifest's {}", f.blake3),
        });
    }
    // Sealed exactly as the manifest says (a plain file where a sealed one was written
    // is a substitution).
    let sealed = crate::keys::sealed_key_id(&bytes);
    if sealed != f.key_id {
        return Err(Error::Corrupt {
            object,
            reason: format!(
                "sealed with key {sealed:?}, the manifest says {:?}",
                f.key_id
            ),
        });
    }
    let bytes = crate::keys::open_object(ctx.store(), repo, &key, bytes).await?;
    Ok((object, bytes))
}

fn tmp_dir(store: &Store, job: u64) -> PathBuf {
    store.path().join("tmp").join(format!("restore-{job}"))
}

async fn run(ctx: JobContext) -> Result<Value> {
    let p: RestoreParams = params(&ctx)?;
    let store = ctx.store().clone();
    if let Some(ip) = &p.in_place {
        if store.in_place_done(&in_place_token(ctx.id()))?.is_some() {
            // Killed after the commit, before the scratch tenant was dropped or the job
            // recorded its success.
            return finish_in_place(&ctx, &p, ip, None);
        }
        undo_snapshot(&ctx, ip)?;
    }
    let target_id = match (target_of(&ctx, &p)?, &p.in_place) {
        (Some(id), _) => id,
        // Killed between creating the job and its scratch tenant: create it now.
        (None, Some(ip)) => {
            let live = store.resolve(ip.tenant_id)?;
            let (t, _) = store.create_tenant(
                &p.target,
                tenet_store::TenantOptions {
                    history_retention_secs: Some(live.history_retention_secs),
                    state: Some(TenantState::Restoring),
                    scratch: true,
                    history: None,
                },
            )?;
            ctx.set_target(t.id)?;
            t.id
        }
        (None, None) => {
            return Err(Error::InvalidArgument(format!(
                "the restore was interrupted before its target tenant `{}` existed, or the \
                 target was dropped; start the restore again",
                p.target
            )))
        }
    };
    let target = store.tenant_by_id(target_id).ok_or_else(|| {
        Error::InvalidArgument(format!("the target tenant #{target_id} was dropped"))
    })?;
    let activated = ctx.checkpoint("activated").is_some();
    let done = activated && matches!(target.state, TenantState::Active | TenantState::Standby);
    if target.state != TenantState::Restoring && !done {
        return Err(Error::InvalidArgument(format!(
            "target tenant `{}` is {}, not restoring",
            target.name, target.state
        )));
    }

    ctx.set_phase("prepare")?;
    let repo = Repo::open(&p.repo)?;
    let m = load_manifest(&repo, p.source_tenant_id, &p.backup_id).await?;
    let mut mapping: BTreeMap<u64, u64> = match ctx.checkpoint("mapping") {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| Error::Internal(format!("table id mapping does not decode: {e}")))?,
        // In place, the scratch tenant keeps the live tenant's ids; a standby keeps its
        // source's, so that its source's log (and, once promoted, its own) applies
        // without a mapping.
        None if p.keeps_ids() => {
            // Dropped tables' ids too: their old versions may still be in the source.
            let max = m
                .tables
                .iter()
                .map(|t| t.def.id)
                .chain(m.table_ids_below.map(|b| b.saturating_sub(1)))
                .max()
                .unwrap_or(0);
            if p.standby.is_some() && max > 0 {
                store.reserve_table_ids_through(max)?;
            }
            m.tables.iter().map(|t| (t.def.id, t.def.id)).collect()
        }
        None => {
            let first = store.allocate_table_ids(m.tables.len() as u64)?;
            let map: BTreeMap<u64, u64> = m
                .tables
                .iter()
                .enumerate()
                .map(|(i, t)| (t.def.id, first + i as u64))
                .collect();
            ctx.set_checkpoint("mapping", json!(map))?;
            map
        }
    };
    let target_ts = p.target_ts.unwrap_or(m.backup_ts).max(m.backup_ts);
    let result = |mapping: &BTreeMap<u64, u64>, replayed: u64| {
        json!({
            "tenant": target.name,
            "tenant_id": target_id,
            "backup_id": m.backup_id,
            "source_tenant": m.tenant_name,
            "backup_ts": m.backup_ts,
            "backup_time": m.backup_time,
            "tables": m.tables.len(),
            "rows": m.rows,
            "logical_bytes": m.logical_bytes,
            "restored_ts": target_ts,
            "restored_time": target_ts.to_rfc3339(),
            "replayed_records": replayed,
            "table_ids": mapping,
        })
    };
    let tmp = tmp_dir(&store, ctx.id());
    if done {
        // Killed after activation, before the job recorded its success.
        let _ = std::fs::remove_dir_all(&tmp);
        let replayed = ctx
            .checkpoint("replayed")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        return Ok(result(&mapping, replayed));
    }
    std::fs::create_dir_all(&tmp).map_err(|e| {
        Error::Internal(format!(
            "cannot create temporary directory {}: {e}",
            tmp.display()
        ))
    })?;

    // The catalog first, on its own, so the tenant's tables exist before their rows.
    {
        let (m, mapping, tmp) = (m.clone(), mapping.clone(), tmp.clone());
        let task = Task::new("catalog", move |ctx| async move {
            Ok(ingest_catalog(&ctx, &m, &mapping, target_id, &tmp).await?)
        });
        let outs = ctx.run_tasks("catalog", vec![task]).await?;
        let ddl_ts = outs[0].get("ddl_ts").and_then(Value::as_u64).unwrap_or(0);
        store.reload_catalog(target_id, tenet_store::Ts(ddl_ts))?;
    }

    let files: u64 = m.tables.iter().map(|t| t.files.len() as u64).sum();
    let dir = backup_dir(p.source_tenant_id, &p.backup_id);
    let mut tasks = Vec::new();
    for t in &m.tables {
        let new_id = mapping[&t.def.id];
        for (i, f) in t.files.iter().enumerate() {
            let (repo, dir, f, tmp) = (repo.clone(), dir.clone(), f.clone(), tmp.clone());
            tasks.push(Task::new(f.path.clone(), move |ctx| async move {
                let sst = tmp.join(format!("{new_id}-{i:04}.sst"));
                Ok(ingest_file(&ctx, &repo, &dir, &f, target_id, new_id, sst).await?)
            }));
        }
    }
    ctx.set_phase("ingest")?;
    ctx.set_totals(files, m.rows, m.logical_bytes)?;
    ctx.run_tasks("ingest", tasks).await?;

    // The full backup's state at F is checked by digest, whatever comes after it.
    verify_restored(&ctx, &m, &mapping, target_id).await?;

    let replay_started = std::time::Instant::now();
    let (replayed, replayed_bytes) = if target_ts > m.backup_ts {
        replay(
            &ctx,
            &p,
            &repo,
            &mut mapping,
            target_id,
            m.backup_ts,
            target_ts,
        )
        .await?
    } else {
        (0, 0)
    };
    let replay_secs = replay_started.elapsed().as_secs_f64();

    if let Some(ip) = &p.in_place {
        ctx.set_phase("apply")?;
        ctx.check_cancelled()?;
        // What the restore takes back: the live tenant's commits after the target.
        if ctx.checkpoint("undone_commits").is_none() {
            let undone = count_commits_after(&store, ip.tenant_id, target_ts)?;
            ctx.set_checkpoint("undone_commits", json!(undone))?;
        }
        let (s2, token, live) = (store.clone(), in_place_token(ctx.id()), ip.tenant_id);
        let report =
            blocking(move || Ok(s2.make_equal(live, target_id, target_ts, &token)?)).await?;
        let _ = std::fs::remove_dir_all(&tmp);
        return finish_in_place(&ctx, &p, ip, Some(report));
    }

    ctx.set_phase("activate")?;
    ctx.check_cancelled()?;
    store.advance_clock(target_ts)?;
    store.set_history_start(target_id, m.backup_ts)?;
    if let Some(sb) = &p.standby {
        // The follower's row first: a standby without one would never follow.
        let mut row = crate::standby::StandbyState::following(
            &store,
            target_id,
            &p.source_tenant,
            sb.history,
            &p.repo,
            target_ts,
            sb.poll_ms,
        );
        // Listings begin at the segment that holds the restored point: the last one
        // replayed, else the newest that starts at or before it (an archive started
        // before the backup has one that began before F).
        row.list_from = match p.logs.last() {
            Some(l) => l.start,
            None => crate::inventory::archived_segments(&repo, sb.history.id, None)
                .await?
                .iter()
                .map(|l| l.start)
                .filter(|s| *s <= target_ts)
                .max()
                .unwrap_or(tenet_store::Ts::ZERO),
        };
        row.segments = p.logs.len() as u64;
        row.records = replayed;
        crate::standby::register(&store, &row)?;
        ctx.set_checkpoint("activated", json!(true))?;
        store.begin_standby(target_id, target_ts)?;
    } else {
        ctx.set_checkpoint("activated", json!(true))?;
        store.alter_tenant(
            target_id,
            TenantUpdate {
                state: Some(TenantState::Active),
                ..TenantUpdate::default()
            },
        )?;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let mut out = result(&mapping, replayed);
    out["standby"] = json!(p.standby.is_some());
    out["replayed_bytes"] = json!(replayed_bytes);
    out["replay_seconds"] = json!((replay_secs * 1000.0).round() / 1000.0);
    Ok(out)
}

/// The restore job as the log applier's sink: checkpoints and progress of the job.
struct JobSink<'a>(&'a JobContext);

impl ApplySink for JobSink<'_> {
    async fn throttle(&self, bytes: u64) -> Result<()> {
        Ok(self.0.throttle(bytes).await?)
    }

    fn applied(
        &self,
        applied: tenet_store::Ts,
        records: u64,
        new: u64,
        logical: u64,
    ) -> Result<()> {
        // One synced write records the progress and makes the segment's batch durable.
        self.0
            .set_checkpoints(&[("replayed", json!(records)), ("applied_ts", json!(applied))])?;
        // Progress counts logical bytes, as the other phases (the throttle counted the
        // segment's stored bytes).
        self.0.add_progress(new, logical);
        self.0.finish_step();
        Ok(())
    }

    fn mapping_changed(&self, mapping: &BTreeMap<u64, u64>) -> Result<()> {
        Ok(self.0.set_checkpoint("mapping", json!(mapping))?)
    }
}

/// Replays the log ranges after the full backup up to and including `to`, from where a
/// previous run left off ([`apply`](crate::apply)). Returns the records applied and the
/// logical bytes (keys and rows) applied by this run.
async fn replay(
    ctx: &JobContext,
    p: &RestoreParams,
    repo: &Repo,
    mapping: &mut BTreeMap<u64, u64>,
    target_id: u64,
    from: tenet_store::Ts,
    to: tenet_store::Ts,
) -> Result<(u64, u64)> {
    ctx.set_phase("replay")?;
    let ts_of = |key: &str| ctx.checkpoint(key).and_then(|v| v.as_u64());
    let start = Applied {
        ts: ts_of("applied_ts").map(tenet_store::Ts).unwrap_or(from),
        records: ts_of("replayed").unwrap_or(0),
    };
    let pending = p.logs.iter().filter(|l| l.end > start.ts).count();
    ctx.set_totals(pending as u64, 0, 0)?;
    let apply = LogApply {
        store: ctx.store(),
        repo,
        source_tenant_id: p.source_tenant_id,
        target_id,
        identity: p.keeps_ids(),
        follow: false,
        cancel: ctx.cancel_token(),
    };
    let (at, logical) = apply
        .run(&JobSink(ctx), &p.logs, mapping, start, to)
        .await?;
    if at.ts < to {
        return Err(Error::NotRestorable(format!(
            "the archived log ends at {}, before the target {to}",
            at.ts
        )));
    }
    Ok((at.records, logical))
}

/// After an in-place restore's commit: drops the scratch tenant and describes the
/// outcome (`report` is `None` when a resumed job finds the commit already made).
fn finish_in_place(
    ctx: &JobContext,
    p: &RestoreParams,
    ip: &InPlace,
    report: Option<tenet_store::RevertReport>,
) -> Result<Value> {
    let store = ctx.store();
    let out = match (report, ctx.checkpoint("in_place_result")) {
        (None, Some(saved)) => saved,
        (report, _) => {
            let commit = store
                .in_place_done(&in_place_token(ctx.id()))?
                .filter(|t| *t != tenet_store::Ts::ZERO);
            let target = p.target_ts.unwrap_or_default();
            let mut out = json!({
                "tenant": store.tenant_by_id(ip.tenant_id).map(|t| t.name).unwrap_or_else(|| p.source_tenant.clone()),
                "tenant_id": ip.tenant_id,
                "in_place": true,
                "backup_id": p.backup_id,
                "restored_ts": target,
                "restored_time": target.to_rfc3339(),
                "commit_ts": commit,
                "commit_time": commit.map(|c| c.to_rfc3339()),
                "unchanged": commit.is_none(),
                "undo_snapshot": ctx.checkpoint("undo_snapshot"),
                "undone_commits": ctx.checkpoint("undone_commits"),
                "replayed_records": ctx.checkpoint("replayed").unwrap_or(json!(0)),
            });
            if let Some(r) = report {
                let changed: u64 = r
                    .tables
                    .iter()
                    .map(|t| {
                        t.rows_restored
                            + t.rows_reverted
                            + t.rows_removed
                            + u64::from(t.catalog.is_some())
                    })
                    .sum();
                out["keys_compared"] = json!(r.keys_examined);
                out["changed_keys"] = json!(changed);
                out["tables"] = serde_json::to_value(&r.tables).unwrap_or_default();
                out["writes_held_ms"] =
                    json!((r.writes_held.as_secs_f64() * 10_000.0).round() / 10.0);
            }
            ctx.set_checkpoint("in_place_result", out.clone())?;
            out
        }
    };
    if let Some(t) = recorded_target(ctx).and_then(|id| store.tenant_by_id(id)) {
        if t.is_scratch() {
            store.drop_tenant(t.id)?;
        }
    }
    Ok(out)
}

/// The commits of a tenant after `ts`, from its log (`None` when GC took part of it).
fn count_commits_after(store: &Store, tenant_id: u64, ts: tenet_store::Ts) -> Result<Option<u64>> {
    if store.log_complete_after(tenant_id)? > ts {
        return Ok(None);
    }
    let (mut n, mut after) = (0u64, ts);
    loop {
        let (raw, covered) = store.read_log_raw_covered(tenant_id, after, 4096)?;
        n += raw.len() as u64;
        if raw.is_empty() || covered <= after {
            return Ok(Some(n));
        }
        after = covered;
    }
}

async fn ingest_catalog(
    ctx: &JobContext,
    m: &Manifest,
    mapping: &BTreeMap<u64, u64>,
    target_id: u64,
    tmp: &std::path::Path,
) -> Result<Value> {
    let store = ctx.store().clone();
    let mut entries: Vec<(Vec<u8>, tenet_store::Ts, Vec<u8>)> = m
        .tables
        .iter()
        .map(|t| {
            let mut def = t.def.clone();
            def.id = mapping[&t.def.id];
            (
                table_key(&def.name),
                t.catalog_ts,
                encode_entry(&CatalogEntry::Table(def)),
            )
        })
        .collect();
    entries.sort();
    let path = tmp.join("catalog.sst");
    let ddl_ts = blocking(move || {
        let info = store.build_sst(&path, target_id, CATALOG_TABLE, |emit| {
            for (k, ts, v) in &entries {
                emit(k, *ts, Some(v))?;
            }
            Ok(())
        })?;
        store.ingest(target_id, std::slice::from_ref(&info))?;
        Ok(info.max_ts)
    })
    .await?;
    Ok(json!({ "ddl_ts": ddl_ts }))
}

async fn ingest_file(
    ctx: &JobContext,
    repo: &Repo,
    dir: &str,
    f: &FileEntry,
    target_id: u64,
    table_id: u64,
    sst: PathBuf,
) -> Result<Value> {
    let (object, bytes) = fetch_file(ctx, repo, dir, f).await?;
    let store = ctx.store().clone();
    let mut counter = RowCounter::new(ctx, false);
    let (rows, logical) = blocking(move || {
        let mut failure = None;
        let built = store.build_sst(&sst, target_id, table_id, |emit| {
            let read = read_data_file(&object, &bytes, |pk, ts, row| {
                emit(pk, ts, Some(row))?;
                Ok(counter.add((pk.len() + row.len()) as u64)?)
            });
            read.map(|_| ()).map_err(|e| {
                failure = Some(e);
                tenet_store::Error::InvalidArgument("data file could not be read".into())
            })
        });
        if let Some(e) = failure {
            return Err(e);
        }
        let info = built?;
        counter.flush()?;
        store.ingest(target_id, std::slice::from_ref(&info))?;
        Ok((counter.rows, counter.bytes))
    })
    .await?;
    if rows != f.rows {
        return Err(Error::Corrupt {
            object: repo.describe(&format!("{dir}/{}", f.path)),
            reason: format!("{rows} rows, the manifest says {}", f.rows),
        });
    }
    Ok(json!({ "rows": rows, "bytes": logical }))
}

/// Most bytes of a verify task's range (split at the restored SST files, as a backup
/// splits); a table is cut in about four ranges, where it has files to cut at, so that
/// every worker has work.
const VERIFY_RANGE_BYTES: u64 = 4 * crate::backup::SHARD_BYTES;

/// Scans the restored tables at F and compares counts and digests with the manifest.
/// The digest does not depend on how rows are split, so each table is scanned in
/// ranges, one task per range on the worker pool (in parallel, paced like a backup's
/// reads, with progress); the ranges are planned once and kept in the checkpoint
/// (`verify_bounds`), so a resumed job combines the outputs of the same ranges.
async fn verify_restored(
    ctx: &JobContext,
    m: &Manifest,
    mapping: &BTreeMap<u64, u64>,
    target_id: u64,
) -> Result<()> {
    let store = ctx.store().clone();
    let bounds: Vec<Vec<String>> = match ctx.checkpoint("verify_bounds") {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| Error::Internal(format!("verify_bounds in the checkpoint: {e}")))?,
        None => {
            let mut all = Vec::new();
            for t in &m.tables {
                let stored: u64 = t.files.iter().map(|f| f.size).sum();
                let target = (stored / 4).clamp(1, VERIFY_RANGE_BYTES);
                let points = store.split_points(target_id, mapping[&t.def.id], target)?;
                all.push(points.iter().map(|b| to_hex(b)).collect::<Vec<_>>());
            }
            ctx.set_checkpoint("verify_bounds", json!(all))?;
            all
        }
    };
    if bounds.len() != m.tables.len() {
        return Err(Error::Internal(format!(
            "verify_bounds in the checkpoint has {} tables, the manifest {}",
            bounds.len(),
            m.tables.len()
        )));
    }
    let mut tasks = Vec::new();
    for (t, cuts) in m.tables.iter().zip(&bounds) {
        let (name, table_id) = (t.def.name.clone(), mapping[&t.def.id]);
        for i in 0..=cuts.len() {
            let from = i.checked_sub(1).map(|j| from_hex(&cuts[j]));
            let to = cuts.get(i).map(|b| from_hex(b));
            let (store, name) = (store.clone(), name.clone());
            let (ts, kind) = (m.backup_ts, m.row_digest);
            tasks.push(Task::new(
                format!("{}.{i}", t.def.id),
                move |ctx| async move {
                    let mut counter = RowCounter::new(&ctx, true);
                    let (rows, bytes, digest) = blocking(move || {
                        let mut d = Digest::default();
                        scan_rows(
                            &store,
                            (target_id, table_id, ts),
                            from.as_deref(),
                            to.as_deref(),
                            |pk, _, row| {
                                d.add_row(kind, &name, pk, row);
                                Ok(counter.add((pk.len() + row.len()) as u64)?)
                            },
                        )?;
                        counter.flush()?;
                        Ok((counter.rows, counter.bytes, d))
                    })
                    .await?;
                    Ok(json!({"rows": rows, "bytes": bytes, "digest": digest.to_hex()}))
                },
            ));
        }
    }
    let ranges = tasks.len() as u64;
    ctx.set_totals(ranges, m.rows, m.logical_bytes)?;
    let outs = ctx.run_tasks("verify", tasks).await?;
    let mut outs = outs.iter();
    for (t, cuts) in m.tables.iter().zip(&bounds) {
        check_table_sums(t, outs.by_ref().take(cuts.len() + 1), "restored")?;
    }
    Ok(())
}

/// The target tenant recorded in the job's owner (jobs created before owners kept it
/// in their checkpoint).
fn recorded_target(ctx: &JobContext) -> Option<u64> {
    ctx.record()
        .owner
        .target_id
        .or_else(|| ctx.checkpoint("target_id").and_then(|v| v.as_u64()))
}

/// The target tenant's id: as recorded, or — if the process died between creating the
/// target and recording it — the `restoring` tenant of that name that no other
/// unfinished restore claims (only restores create `restoring` tenants).
fn target_of(ctx: &JobContext, p: &RestoreParams) -> Result<Option<u64>> {
    if let Some(id) = recorded_target(ctx) {
        return Ok(Some(id));
    }
    let Ok(t) = ctx.store().tenant(&p.target) else {
        return Ok(None);
    };
    if t.state != TenantState::Restoring {
        return Ok(None);
    }
    let claimed = ctx
        .jobs()
        .list()?
        .into_iter()
        .any(|j| j.id != ctx.id() && !j.state.is_final() && j.owner.target_id == Some(t.id));
    if claimed {
        return Ok(None);
    }
    ctx.set_target(t.id)?;
    Ok(Some(t.id))
}

async fn cleanup(ctx: JobContext) -> Result<()> {
    let store = ctx.store().clone();
    let p: RestoreParams = params(&ctx)?;
    if let Some(id) = target_of(&ctx, &p)? {
        if let Some(t) = store.tenant_by_id(id) {
            if t.state == TenantState::Restoring {
                store.drop_tenant(t.id)?;
            }
        }
    }
    let _ = std::fs::remove_dir_all(tmp_dir(&store, ctx.id()));
    Ok(())
}
