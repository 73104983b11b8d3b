//! The clone job (`clone`): a new tenant equal to another tenant of this store at a ts
//! T, built from the source's local MVCC history (no repository) by SST bulk
//! ingestion. When T is older than what the source keeps, the server restores from the
//! repository instead ([`crate::Backups::start_restore_to`]).
//!
//! # Overview
//! At submission: T is pinned in the source (GC keeps it readable until the job ends)
//! and the target is created `restoring` (its name is taken at once).
//! 1. **plan** (checkpointed): the source's catalog at T; one new table id per table;
//!    shards per table from the SST files' split points.
//! 2. **catalog**: the table definitions with their new ids, at their original ts.
//! 3. **copy**: one task per shard, in parallel: scan the shard at T and write the
//!    visible versions (with their original commit ts, new ids) into an SST file,
//!    ingested into the target. Memory is one SST writer's, whatever the size.
//! 4. **activate**: the target's history starts at T; it becomes `active`; the pin is
//!    released.
//!
//! # Crash consistency and cleanup
//! Ingesting a shard twice is harmless (same keys, same values), so a resumed job
//! redoes unfinished shards. Cancel or failure drops the target while it is still
//! `restoring` and releases the pin. Snapshots of the source are not cloned.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use tenet_jobs::{JobContext, RowCounter, Task};
use tenet_store::catalog::{encode_entry, table_key, CATALOG_TABLE};
use tenet_store::{CatalogEntry, Store, TableDef, TenantState, TenantUpdate, Ts};

use crate::backup::SHARD_BYTES;
use crate::error::{Error, Result};
use crate::util::{blocking, from_hex, job_kind, params, to_hex};

pub const KIND: &str = "clone";

/// Parameters of a clone job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CloneParams {
    pub source_tenant_id: u64,
    pub source_tenant: String,
    pub as_of: Ts,
    /// The pin on the source at `as_of` (taken at submission).
    pub pin_id: u64,
    pub target: String,
    pub target_id: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Plan {
    tables: Vec<PlannedTable>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PlannedTable {
    def: TableDef,
    new_id: u64,
    catalog_ts: Ts,
    /// Shard bounds as hex `pk_enc`s; shard i covers `[bounds[i-1], bounds[i])`.
    bounds: Vec<String>,
}

job_kind!(
    /// Runs clones.
    Clone,
    KIND
);

fn tmp_dir(store: &Store, job: u64) -> PathBuf {
    store.path().join("tmp").join(format!("clone-{job}"))
}

async fn run(ctx: JobContext) -> Result<Value> {
    let p: CloneParams = params(&ctx)?;
    let store = ctx.store().clone();
    let target = store.tenant_by_id(p.target_id).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "the clone's target `{}` was dropped; start the clone again",
            p.target
        ))
    })?;
    if target.state != TenantState::Restoring {
        return Err(Error::InvalidArgument(format!(
            "the clone's target `{}` is {}, not being built",
            target.name, target.state
        )));
    }
    ctx.set_phase("plan")?;
    let plan: Plan = match ctx.checkpoint("plan") {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| Error::Internal(format!("clone plan does not decode: {e}")))?,
        None => {
            let plan = make_plan(&store, &p)?;
            ctx.set_checkpoint(
                "plan",
                serde_json::to_value(&plan).expect("plans serialize"),
            )?;
            plan
        }
    };
    let tmp = tmp_dir(&store, ctx.id());
    std::fs::create_dir_all(&tmp)
        .map_err(|e| Error::Internal(format!("cannot create {}: {e}", tmp.display())))?;

    ctx.set_phase("catalog")?;
    {
        let (store, plan, tmp, p) = (store.clone(), plan.clone(), tmp.clone(), p.clone());
        blocking(move || {
            let mut entries: Vec<(Vec<u8>, Ts, Vec<u8>)> = plan
                .tables
                .iter()
                .map(|t| {
                    let mut def = t.def.clone();
                    def.id = t.new_id;
                    (
                        table_key(&def.name),
                        t.catalog_ts,
                        encode_entry(&CatalogEntry::Table(def)),
                    )
                })
                .collect();
            entries.sort();
            let info = store.build_sst(
                &tmp.join("catalog.sst"),
                p.target_id,
                CATALOG_TABLE,
                |emit| {
                    for (k, ts, v) in &entries {
                        emit(k, *ts, Some(v))?;
                    }
                    Ok(())
                },
            )?;
            store.ingest(p.target_id, std::slice::from_ref(&info))?;
            store.reload_catalog(p.target_id, info.max_ts)?;
            Ok(())
        })
        .await?;
    }

    let plan = Arc::new(plan);
    let mut tasks = Vec::new();
    for (ti, t) in plan.tables.iter().enumerate() {
        for shard in 0..=t.bounds.len() {
            let (plan, p, tmp) = (plan.clone(), p.clone(), tmp.clone());
            tasks.push(Task::new(format!("{}-{shard:04}", t.new_id), move |ctx| async move {
                Ok(copy_shard(ctx, &p, &plan.tables[ti], shard, &tmp).await?)
            }));
        }
    }
    ctx.set_totals(tasks.len() as u64, 0, 0)?;
    let outputs = ctx.run_tasks("copy", tasks).await?;
    let sum = |k: &str| outputs.iter().filter_map(|o| o[k].as_u64()).sum::<u64>();

    ctx.set_phase("activate")?;
    ctx.check_cancelled()?;
    store.set_history_start(p.target_id, p.as_of)?;
    store.alter_tenant(
        p.target_id,
        TenantUpdate {
            state: Some(TenantState::Active),
            ..TenantUpdate::default()
        },
    )?;
    store.unpin(p.source_tenant_id, p.pin_id)?;
    let _ = std::fs::remove_dir_all(&tmp);
    let ids: BTreeMap<u64, u64> = plan.tables.iter().map(|t| (t.def.id, t.new_id)).collect();
    Ok(json!({
        "tenant": p.target,
        "tenant_id": p.target_id,
        "source_tenant": p.source_tenant,
        "as_of_ts": p.as_of,
        "as_of_time": p.as_of.to_rfc3339(),
        "tables": plan.tables.len(),
        "rows": sum("rows"),
        "logical_bytes": sum("bytes"),
        "table_ids": ids,
    }))
}

fn make_plan(store: &Store, p: &CloneParams) -> Result<Plan> {
    let catalog = store.catalog_at_ts(p.source_tenant_id, p.as_of)?;
    let first = store.allocate_table_ids(catalog.tables.len() as u64)?;
    let mut tables = Vec::new();
    for (i, def) in catalog.tables.values().enumerate() {
        let mut catalog_ts = Ts::ZERO;
        store.scan_at(
            p.source_tenant_id,
            CATALOG_TABLE,
            p.as_of,
            Some(&table_key(&def.name)),
            None,
            |_, ts, _| {
                catalog_ts = ts;
                Ok(false)
            },
        )?;
        let bounds = store
            .split_points(p.source_tenant_id, def.id, SHARD_BYTES)?
            .iter()
            .map(|b| to_hex(b))
            .collect();
        tables.push(PlannedTable {
            def: (**def).clone(),
            new_id: first + i as u64,
            catalog_ts,
            bounds,
        });
    }
    Ok(Plan { tables })
}

async fn copy_shard(
    ctx: JobContext,
    p: &CloneParams,
    t: &PlannedTable,
    shard: usize,
    tmp: &std::path::Path,
) -> Result<Value> {
    let from = shard.checked_sub(1).map(|j| from_hex(&t.bounds[j]));
    let to = t.bounds.get(shard).map(|b| from_hex(b));
    let sst = tmp.join(format!("{}-{shard:04}.sst", t.new_id));
    let (store, p, t) = (ctx.store().clone(), p.clone(), t.clone());
    let mut counter = RowCounter::new(&ctx, false);
    let cancel = ctx.cancel_token().clone();
    let (rows, bytes) = blocking(move || {
        let info = store.build_sst(&sst, p.target_id, t.new_id, |emit| {
            store.scan_at(
                p.source_tenant_id,
                t.def.id,
                p.as_of,
                from.as_deref(),
                to.as_deref(),
                |pk, ts, row| {
                    emit(pk, ts, Some(row))?;
                    counter
                        .add((pk.len() + row.len()) as u64)
                        .map_err(|e| tenet_store::Error::InvalidArgument(e.to_string()))?;
                    Ok(!cancel.is_cancelled())
                },
            )
        })?;
        cancel.check()?;
        counter.flush()?;
        store.ingest(p.target_id, std::slice::from_ref(&info))?;
        Ok((counter.rows, counter.bytes))
    })
    .await?;
    Ok(json!({ "rows": rows, "bytes": bytes }))
}

async fn cleanup(ctx: JobContext) -> Result<()> {
    let store = ctx.store().clone();
    let p: CloneParams = params(&ctx)?;
    if let Some(t) = store.tenant_by_id(p.target_id) {
        if t.state == TenantState::Restoring {
            store.drop_tenant(t.id)?;
        }
    }
    store.unpin(p.source_tenant_id, p.pin_id)?;
    let _ = std::fs::remove_dir_all(tmp_dir(&store, ctx.id()));
    Ok(())
}
