//! The restore job (`restore`): a full backup into a new tenant.
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
//! 3. **verify**: scan every restored table at F; row counts and logical digests must
//!    equal the manifest's.
//! 4. **activate**: the tenant's history starts at F (older reads are `TooOld`); the
//!    state becomes `active`.
//!
//! Cleanup (cancel or failure): drop the target if it is still `restoring`, and remove
//! temporary SST files. A restore never leaves a half-restored tenant `active`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use tenet_jobs::{JobContext, Task};
use tenet_store::catalog::{encode_entry, table_key, CATALOG_TABLE};
use tenet_store::{CatalogEntry, Store, TenantState, TenantUpdate};

use crate::error::{Error, Result};
use crate::format::{decode_manifest, read_data_file, Digest, FileEntry, Manifest};
use crate::repo::{backup_dir, manifest_key, Repo};
use crate::util::{blocking, job_kind, params};

pub const KIND: &str = "restore";

/// Parameters of a restore job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestoreParams {
    pub backup_id: String,
    pub repo: String,
    pub source_tenant_id: u64,
    pub source_tenant: String,
    pub target: String,
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
    Ok((object, bytes))
}

/// Reads and checks a backup's manifest.
pub(crate) async fn load_manifest(
    repo: &Repo,
    tenant_id: u64,
    backup_id: &str,
) -> Result<Manifest> {
    let key = manifest_key(tenant_id, backup_id);
    let bytes = repo.get_opt(&key).await?.ok_or_else(|| {
        Error::BackupNotFound(format!(
            "{backup_id} (no manifest at {}; the backup was deleted or never finished)",
            repo.describe(&key)
        ))
    })?;
    let m = decode_manifest(&repo.describe(&key), &bytes)?;
    if m.backup_id != backup_id || m.tenant_id != tenant_id {
        return Err(Error::Corrupt {
            object: repo.describe(&key),
            reason: format!(
                "manifest is for backup {} of tenant id {}",
                m.backup_id, m.tenant_id
            ),
        });
    }
    Ok(m)
}

fn tmp_dir(store: &Store, job: u64) -> PathBuf {
    store.path().join("tmp").join(format!("restore-{job}"))
}

async fn run(ctx: JobContext) -> Result<Value> {
    let p: RestoreParams = params(&ctx)?;
    let store = ctx.store().clone();
    let target_id = target_of(&ctx, &p)?.ok_or_else(|| {
        Error::InvalidArgument(format!(
            "the restore was interrupted before its target tenant `{}` existed, or the \
             target was dropped; start the restore again",
            p.target
        ))
    })?;
    let target = store.tenant_by_id(target_id).ok_or_else(|| {
        Error::InvalidArgument(format!("the target tenant #{target_id} was dropped"))
    })?;
    let activated = ctx.checkpoint("activated").is_some();
    let done = activated && target.state == TenantState::Active;
    if target.state != TenantState::Restoring && !done {
        return Err(Error::InvalidArgument(format!(
            "target tenant `{}` is {}, not restoring",
            target.name, target.state
        )));
    }

    ctx.set_phase("prepare")?;
    let repo = Repo::open(&p.repo)?;
    let m = load_manifest(&repo, p.source_tenant_id, &p.backup_id).await?;
    let mapping: BTreeMap<u64, u64> = match ctx.checkpoint("mapping") {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| Error::Internal(format!("table id mapping does not decode: {e}")))?,
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
    let result = json!({
        "tenant": target.name,
        "tenant_id": target_id,
        "backup_id": m.backup_id,
        "source_tenant": m.tenant_name,
        "backup_ts": m.backup_ts,
        "backup_time": m.backup_time,
        "tables": m.tables.len(),
        "rows": m.rows,
        "logical_bytes": m.logical_bytes,
        "table_ids": mapping,
    });
    let tmp = tmp_dir(&store, ctx.id());
    if done {
        // Killed after activation, before the job recorded its success.
        let _ = std::fs::remove_dir_all(&tmp);
        return Ok(result);
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
    ctx.set_totals(files, m.rows, m.logical_bytes)?;
    ctx.run_tasks("ingest", tasks).await?;

    ctx.set_phase("verify")?;
    verify_restored(&ctx, &m, &mapping, target_id).await?;

    ctx.set_phase("activate")?;
    ctx.check_cancelled()?;
    store.advance_clock(m.backup_ts)?;
    store.set_history_start(target_id, m.backup_ts)?;
    ctx.set_checkpoint("activated", json!(true))?;
    // By id: the name is what it is now.
    let name = store
        .tenant_by_id(target_id)
        .map(|t| t.name)
        .ok_or_else(|| {
            Error::InvalidArgument(format!("the target tenant #{target_id} was dropped"))
        })?;
    store.alter_tenant(
        &name,
        TenantUpdate {
            state: Some(TenantState::Active),
            ..TenantUpdate::default()
        },
    )?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(result)
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
    let pctx = ctx.clone();
    let cancel = ctx.cancel_token().clone();
    let (rows, logical) = blocking(move || {
        let (mut rows, mut logical, mut pr, mut pb) = (0u64, 0u64, 0u64, 0u64);
        let mut failure = None;
        let built = store.build_sst(&sst, target_id, table_id, |emit| {
            let read = read_data_file(&object, &bytes, |pk, ts, row| {
                emit(pk, ts, Some(row))?;
                let n = (pk.len() + row.len()) as u64;
                rows += 1;
                logical += n;
                pr += 1;
                pb += n;
                if pr == 1024 {
                    pctx.add_progress(pr, pb);
                    (pr, pb) = (0, 0);
                    cancel.check()?;
                }
                Ok(())
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
        pctx.add_progress(pr, pb);
        cancel.check()?;
        store.ingest(target_id, std::slice::from_ref(&info))?;
        Ok((rows, logical))
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

/// Scans the restored tables at F and compares counts and digests with the manifest.
async fn verify_restored(
    ctx: &JobContext,
    m: &Manifest,
    mapping: &BTreeMap<u64, u64>,
    target_id: u64,
) -> Result<()> {
    let store = ctx.store().clone();
    let m = m.clone();
    let mapping = mapping.clone();
    let cancel = ctx.cancel_token().clone();
    blocking(move || {
        for t in &m.tables {
            let mut d = Digest::default();
            let mut rows = 0u64;
            store.scan_at(target_id, mapping[&t.def.id], m.backup_ts, None, None, |pk, _, row| {
                d.add_row(&t.def.name, pk, row);
                rows += 1;
                // Stop a cancelled job promptly (the rows are checked again on resume).
                Ok(!rows.is_multiple_of(4096) || !cancel.is_cancelled())
            })?;
            cancel.check()?;
            if rows != t.rows || d.to_hex() != t.digest {
                return Err(Error::VerifyFailed(format!(
                    "table `{}` restored {rows} rows with digest {}, the backup has {} rows with digest {}",
                    t.def.name,
                    d.to_hex(),
                    t.rows,
                    t.digest
                )));
            }
        }
        Ok(())
    })
    .await
}

/// The target tenant's id: from the checkpoint, or — if the process died between
/// creating the target and recording it — the `restoring` tenant of that name that no
/// other unfinished restore claims (only restores create `restoring` tenants).
fn target_of(ctx: &JobContext, p: &RestoreParams) -> Result<Option<u64>> {
    if let Some(id) = ctx.checkpoint("target_id").and_then(|v| v.as_u64()) {
        return Ok(Some(id));
    }
    let Ok(t) = ctx.store().tenant(&p.target) else {
        return Ok(None);
    };
    if t.state != TenantState::Restoring {
        return Ok(None);
    }
    let claimed = ctx.jobs().list()?.into_iter().any(|j| {
        j.id != ctx.id()
            && !j.state.is_final()
            && j.checkpoint.get("target_id").and_then(|v| v.as_u64()) == Some(t.id)
    });
    if claimed {
        return Ok(None);
    }
    ctx.set_checkpoint("target_id", json!(t.id))?;
    Ok(Some(t.id))
}

async fn cleanup(ctx: JobContext) -> Result<()> {
    let store = ctx.store().clone();
    let p: RestoreParams = params(&ctx)?;
    if let Some(id) = target_of(&ctx, &p)? {
        if let Some(t) = store.tenant_by_id(id) {
            if t.state == TenantState::Restoring {
                store.drop_tenant(&t.name)?;
            }
        }
    }
    let _ = std::fs::remove_dir_all(tmp_dir(&store, ctx.id()));
    Ok(())
}
