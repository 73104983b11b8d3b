//! Restore drills (`drill`): prove that a tenant's backups restore, by restoring one.
//!
//! 1. **plan**: pick T in the tenant's restorable window — at random, seeded by the job
//!    id (or the time asked for) — and pin the tenant at T when its local history still
//!    holds T, so the source can be read there while the drill runs. Persisted.
//! 2. **restore**: a restore job of T into a hidden scratch tenant `.drill-<job>`, run
//!    to its end by the drill: the planner's full backup (whose digests the restore
//!    checks against the manifest) and the archived log up to T.
//! 3. **compare**: with the source read at T (time travel), table by table: the same
//!    tables, and per table the same row count and logical digest. When the source's
//!    history no longer holds T, the comparison is the restore's own check of the
//!    manifest digests at the full backup's F and its count of replayed commits; the
//!    result says which (`compared_by`).
//! 4. **cleanup**: drop the scratch tenant, release the pin.
//!
//! The result — T, how it was compared, rows and tables, seconds — is what the
//! overview shows as the *last proven restorable time*. A difference fails the job
//! with `VERIFY_FAILED` naming the table; a corrupt object fails it with the restore's
//! error (`BACKUP_CORRUPT`, …). Cancel and failure clean up like step 4.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use tenet_jobs::{JobContext, JobState};
use tenet_store::{Store, Ts};

use crate::error::{Error, Result};
use crate::format::{Digest, DigestKind};
use crate::planner::Target;
use crate::util::{blocking, job_kind, params};
use crate::{Backups, Subject};

pub const KIND: &str = "drill";

/// Parameters of a drill.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DrillParams {
    /// The tenant drilled (of this store).
    pub tenant_id: u64,
    pub repo: String,
    /// Restore exactly this time (default: a random point of the window).
    pub at: Option<Ts>,
}

/// The persisted plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Plan {
    target: Ts,
    /// The pin on the source at T (None: its history no longer holds T).
    pin: Option<u64>,
    scratch: String,
}

job_kind!(
    /// Runs drills.
    Drill,
    KIND
);

/// A random point of `ranges` (weighted by length), from `seed`.
fn pick(ranges: &[crate::planner::Restorable], seed: u64) -> Option<Ts> {
    // splitmix64: a different, stable point for every job id.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let total: u64 = ranges.iter().map(|r| r.to.0 - r.from.0 + 1).sum();
    if total == 0 {
        return None;
    }
    let mut k = z % total;
    for r in ranges {
        let len = r.to.0 - r.from.0 + 1;
        if k < len {
            return Some(Ts(r.from.0 + k));
        }
        k -= len;
    }
    None
}

/// Per table (by name): rows and logical digest of a tenant at `ts`.
fn digests(store: &Store, tenant_id: u64, ts: Ts) -> Result<Vec<(String, u64, String)>> {
    let catalog = store.catalog_at_ts(tenant_id, ts)?;
    let mut out = Vec::new();
    for (name, def) in &catalog.tables {
        let mut d = Digest::default();
        let mut rows = 0u64;
        store.scan_at(tenant_id, def.id, ts, None, None, |pk, _, row| {
            d.add_row(DigestKind::CURRENT, name, pk, row);
            rows += 1;
            Ok(true)
        })?;
        out.push((name.clone(), rows, d.to_hex()));
    }
    Ok(out)
}

async fn run(ctx: JobContext) -> Result<Value> {
    let p: DrillParams = params(&ctx)?;
    let store = ctx.store().clone();
    let started = Instant::now();
    let rec = store.resolve(p.tenant_id)?;
    let subject = Subject::of(&rec);
    let backups = Backups {
        jobs: ctx.jobs().clone(),
    };
    ctx.set_phase("plan")?;
    let plan: Plan = match ctx.checkpoint("plan") {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| Error::Internal(format!("drill checkpoint does not decode: {e}")))?,
        None => {
            let (_, inv) = backups.inventory(&subject, Some(&p.repo)).await?;
            let points = inv.restore_points();
            let target = match p.at {
                Some(t) => t,
                None => pick(&points, ctx.id()).ok_or_else(|| {
                    Error::NotRestorable(format!(
                        "tenant `{}`: nothing is restorable from {}, so there is nothing to \
                         drill; take a full backup first",
                        rec.name, p.repo
                    ))
                })?,
            };
            let pin = store.pin(rec.id, target, KIND).ok().map(|pin| pin.id);
            let plan = Plan {
                target,
                pin,
                scratch: format!(".drill-{}", ctx.id()),
            };
            ctx.set_checkpoint("plan", serde_json::to_value(&plan).expect("plan"))?;
            plan
        }
    };

    ctx.set_phase("restore")?;
    let restore_job = match ctx.checkpoint("restore_job").and_then(|v| v.as_u64()) {
        Some(id) => id,
        None => {
            let (mut params, retention) = backups
                .plan_restore(&subject, &Target::At(plan.target), Some(&p.repo), "")
                .await?;
            params.target = plan.scratch.clone();
            let job = backups
                .create_restore(params, Some(rec.id), retention, None)
                .await?;
            ctx.set_checkpoint("restore_job", json!(job.id))?;
            job.id
        }
    };
    let done = match ctx.jobs().get(restore_job)? {
        j if j.state.is_final() => j,
        _ => ctx.jobs().run(restore_job).await?,
    };
    if done.state != JobState::Succeeded {
        let e = done.error.unwrap_or(tenet_jobs::JobError::new(
            tenet_store::Code::CANCELLED,
            format!("restore job {restore_job} was {}", done.state),
        ));
        return Err(Error::Jobs(tenet_jobs::Error::Failed(
            tenet_jobs::JobError {
                code: e.code,
                message: format!(
                    "the drill's restore of `{}` to {} failed (job {restore_job}): {}",
                    rec.name,
                    plan.target.to_rfc3339(),
                    e.message
                ),
            },
        )));
    }
    let restored = done.result.unwrap_or_default();

    ctx.set_phase("compare")?;
    let scratch = store.tenant(&plan.scratch)?;
    let (compared_by, tables, rows) = match plan.pin {
        Some(_) => {
            let (src, dst, t) = (rec.id, scratch.id, plan.target);
            let s2 = store.clone();
            let source = blocking(move || digests(&s2, src, t)).await?;
            let s2 = store.clone();
            let at = store.visible_ts();
            let copy = blocking(move || digests(&s2, dst, at)).await?;
            if source != copy {
                let diff = source
                    .iter()
                    .zip(copy.iter().map(Some).chain(std::iter::repeat(None)))
                    .find(|(a, b)| Some(*a) != *b)
                    .map(|(a, b)| match b {
                        Some(b) => format!(
                            "table `{}`: the source has {} rows (digest {}), the restore {} rows \
                             (digest {}) as `{}`",
                            a.0, a.1, a.2, b.1, b.2, b.0
                        ),
                        None => format!("table `{}` is missing from the restore", a.0),
                    })
                    .unwrap_or_else(|| {
                        format!(
                            "the restore has {} tables, the source {}",
                            copy.len(),
                            source.len()
                        )
                    });
                return Err(Error::VerifyFailed(format!(
                    "drill of `{}` at {}: {diff}",
                    rec.name,
                    plan.target.to_rfc3339()
                )));
            }
            let rows: u64 = source.iter().map(|t| t.1).sum();
            ("time travel", source.len() as u64, rows)
        }
        None => ("manifest digests", 0, 0),
    };
    ctx.set_phase("cleanup")?;
    cleanup_now(&ctx, &plan)?;
    Ok(json!({
        "tenant": rec.name,
        "target_ts": plan.target.0.to_string(),
        "target_time": plan.target.to_rfc3339(),
        "compared_by": compared_by,
        "tables": tables,
        "rows": rows,
        "backup_id": restored["backup_id"],
        "replayed_records": restored["replayed_records"],
        "restore_job": restore_job,
        "seconds": started.elapsed().as_secs_f64(),
    }))
}

fn cleanup_now(ctx: &JobContext, plan: &Plan) -> Result<()> {
    let store = ctx.store();
    if let Ok(t) = store.tenant(&plan.scratch) {
        store.drop_tenant(t.id)?;
    }
    if let (Some(pin), Ok(p)) = (plan.pin, params::<DrillParams>(ctx)) {
        // Releasing a pin twice is harmless.
        let _ = store.unpin(p.tenant_id, pin);
    }
    Ok(())
}

async fn cleanup(ctx: JobContext) -> Result<()> {
    if let Some(id) = ctx.checkpoint("restore_job").and_then(|v| v.as_u64()) {
        if let Ok(j) = ctx.jobs().get(id) {
            if !j.state.is_final() {
                // A live restore cleans up itself once cancelled; an interrupted one is
                // run here to finish its cleanup.
                let _ = ctx.jobs().cancel(id);
                if !ctx.jobs().is_live(id) {
                    let _ = ctx.jobs().run(id).await;
                }
            }
        }
    }
    if let Some(plan) = ctx
        .checkpoint("plan")
        .and_then(|v| serde_json::from_value::<Plan>(v).ok())
    {
        cleanup_now(&ctx, &plan)?;
    }
    Ok(())
}
