//! Retention and prune: which backups and archived log segments of a history no kept
//! restore point needs, and the job (`prune`) that deletes them.
//!
//! # What is kept
//! A [`Retention`] names the restore points to keep:
//! * `keep_within` W: every T in `[now − W, newest restorable]` that is restorable now
//!   stays restorable;
//! * `keep_full` N: the N newest full backups stay, and every T from the oldest of
//!   them to the newest restorable point stays restorable (so "keep 4 fulls" keeps
//!   point-in-time recovery back to the 4th newest full, not 4 islands).
//!
//! Both together keep the union. Whatever the policy, the newest full backup and every
//! point after it are kept: a policy can never make the tenant unrestorable (WAL-G's
//! `delete` once removed the log the oldest backup needed; here the decision is the
//! planner's, never a file age). The oldest kept time is `keep_from`.
//!
//! # How it is decided
//! [`decide`] works on the [`Inventory`] alone. For every restorable range that reaches
//! `keep_from` it takes the newest full F0 at or before the range's first kept point
//! and the log ranges the planner's [`cover`] replays from F0 to the range's end; those
//! objects are needed. Every full at or after `keep_from` is kept. An incremental
//! backup is kept when its end is at or after `keep_from` or the cover replays one of
//! its segments; an archive segment when the cover replays it or it ends after
//! `keep_from` (a redundant segment inside the window costs little and deleting it
//! gains nothing). Besides the policy, two things hold objects:
//! * unfinished jobs, through their [`tenet_jobs::JobOwner`] (a restore reading a
//!   segment, an incremental extending a backup);
//! * the history's writer: only the tenant its `primary` record names deletes
//!   archived segments (another store's tenant with the same id shares the directory
//!   and must never delete that tenant's log);
//! * *readers*: standbys following the history ([`crate::standby`]) record their
//!   applied ts in `tenants/<id>/readers/`; segments that end after the oldest fresh
//!   reader's applied ts are kept. A reader not refreshed for [`READER_STALE`] holds
//!   nothing (its standby is gone or stopped) and the decision says so.
//!
//! Before anything is deleted the decision is checked by the planner itself: the
//! restore points of what remains must contain every kept point; otherwise prune fails
//! without deleting (an internal error — it would be a bug).
//!
//! # Deleting (the job)
//! 1. **plan**: the decision the job was given (the dry run shown to whoever asked,
//!    so what was shown is what goes), or one made now and persisted in the
//!    checkpoint. A resumed job deletes what was decided, so a backup whose manifest
//!    is already gone is still finished.
//! 2. **delete**: backups oldest first — manifest first, so a backup is never listed
//!    while its files are partly gone, then its files, then its record — then
//!    segments. Each deletion is idempotent; progress counts objects and bytes.
//!    Objects an unfinished job started using after the decision are skipped and
//!    reported.
//!
//! A dry run is the decision without the job: each object with why it would go.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use tenet_jobs::{JobContext, JobOwner};
use tenet_store::Ts;

use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::planner::{cover, restore_points, FullPoint, LogRange, Restorable};
use crate::records;
use crate::repo::{manifest_key, reader_prefix, Repo};
use crate::util::{job_kind, params};

pub const KIND: &str = "prune";

/// A reader (standby) not refreshed for this long no longer holds segments.
pub const READER_STALE: Duration = Duration::from_secs(24 * 3600);

/// The longest `keep_within` accepted (100 years).
pub const KEEP_WITHIN_MAX_SECS: u64 = 100 * 365 * 24 * 3600;
/// The most fulls `keep_full` may name.
pub const KEEP_FULL_MAX: u32 = 10_000;

/// Which restore points to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Keep every point of the last this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within_secs: Option<u64>,
    /// Keep this many newest full backups and every point after the oldest of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_full: Option<u32>,
}

impl Retention {
    /// Refuses a policy that keeps nothing or is out of range, saying what is allowed.
    pub fn validate(&self) -> Result<()> {
        if self.keep_within_secs.is_none() && self.keep_full.is_none() {
            return Err(Error::InvalidArgument(
                "a retention policy needs --keep-within (e.g. 14d) or --keep-full (e.g. 4), \
                 or both"
                    .into(),
            ));
        }
        if let Some(w) = self.keep_within_secs {
            if w == 0 || w > KEEP_WITHIN_MAX_SECS {
                return Err(Error::InvalidArgument(format!(
                    "keep-within must be between 1s and 100 years, not {w}s"
                )));
            }
        }
        if let Some(n) = self.keep_full {
            if n == 0 || n > KEEP_FULL_MAX {
                return Err(Error::InvalidArgument(format!(
                    "keep-full must be between 1 and {KEEP_FULL_MAX}, not {n} (the newest full \
                     backup is always kept)"
                )));
            }
        }
        Ok(())
    }

    /// In words, for reasons and status.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(w) = self.keep_within_secs {
            parts.push(format!(
                "keep within {}",
                humantime::format_duration(Duration::from_secs(w))
            ));
        }
        if let Some(n) = self.keep_full {
            parts.push(format!("keep {n} full backup(s)"));
        }
        parts.join(", ")
    }
}

/// A standby following a history, as it records itself in the repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reader {
    pub format: String,
    pub version: u32,
    pub store_id: String,
    pub tenant_id: u64,
    /// The standby's name when it last refreshed (for messages).
    pub tenant: String,
    /// Every commit ≤ this is applied; it needs the log after it.
    pub applied_ts: Ts,
    /// When it last refreshed (store clock, ms since the epoch).
    pub refreshed_millis: u64,
}

pub const READER_FORMAT: &str = "tenet-reader";
pub const READER_VERSION: u32 = 1;

impl Reader {
    /// Decodes a reader object, refusing another format or version.
    pub fn decode(object: &str, bytes: &[u8]) -> Result<Reader> {
        let r: Reader = serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
            object: object.to_string(),
            reason: format!("not a reader record: {e}"),
        })?;
        if r.format != READER_FORMAT || r.version != READER_VERSION {
            return Err(Error::Corrupt {
                object: object.to_string(),
                reason: format!(
                    "format {} version {} (this build reads {READER_FORMAT} version \
                     {READER_VERSION})",
                    r.format, r.version
                ),
            });
        }
        Ok(r)
    }
}

/// The readers of history `history_id` recorded in `repo`.
pub async fn readers(repo: &Repo, history_id: u64) -> Result<Vec<Reader>> {
    let mut out = Vec::new();
    for (key, _) in repo.list(&reader_prefix(history_id)).await? {
        if let Some(bytes) = repo.get_opt(&key).await? {
            out.push(Reader::decode(&repo.describe(&key), &bytes)?);
        }
    }
    Ok(out)
}

/// What holds objects besides the policy.
#[derive(Clone, Debug, Default)]
pub struct Holds {
    pub readers: Vec<Reader>,
    /// Unfinished jobs: (id, kind, owner).
    pub jobs: Vec<(u64, String, JobOwner)>,
    /// Another tenant writes this history's log (its `primary` record names it): the
    /// segments are its to prune, so none is deleted from here.
    pub foreign_writer: Option<String>,
}

impl Holds {
    fn job_using(&self, id_or_key: &str) -> Option<(u64, &str)> {
        self.jobs
            .iter()
            .find(|(_, _, o)| o.uses(id_or_key))
            .map(|(id, kind, _)| (*id, kind.as_str()))
    }
}

/// What a repository object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Full,
    Incr,
    Segment,
}

/// An object prune deletes (or would, in a dry run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doomed {
    pub kind: ObjectKind,
    /// The backup id, or the segment's key.
    pub id: String,
    pub bytes: u64,
    /// The newest commit it holds.
    pub end: Ts,
    pub reason: String,
}

/// A prune decision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub retention: Retention,
    pub now: Ts,
    /// Every restorable point at or after this stays restorable (None: nothing is
    /// restorable, so nothing is deleted).
    pub keep_from: Option<Ts>,
    /// Why `keep_from` is where it is.
    pub keep_from_reason: String,
    /// Deleted, backups first (oldest first), then segments.
    pub delete: Vec<Doomed>,
    pub kept_objects: u64,
    pub kept_bytes: u64,
    /// The restorable ranges after prune.
    pub restorable_after: Vec<Restorable>,
    /// Things the user should know (stale readers, objects held by jobs or readers).
    pub notes: Vec<String>,
}

impl Decision {
    pub fn delete_bytes(&self) -> u64 {
        self.delete.iter().map(|d| d.bytes).sum()
    }
}

fn fmt_ts(ts: Ts) -> String {
    ts.to_rfc3339()
}

/// 1st, 2nd, 3rd, 4th, … 11th, 12th, 13th, 21st.
fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Decides what of `inv` to delete under `retention` at time `now` (see the module
/// header). Pure: reads nothing but its arguments.
pub fn decide(inv: &Inventory, retention: &Retention, now: Ts, holds: &Holds) -> Decision {
    let fulls = inv.fulls();
    let logs = inv.logs();
    let points = restore_points(&fulls, &logs);
    let mut d = Decision {
        retention: *retention,
        now,
        ..Decision::default()
    };
    let all_objects = inv.backups.len() as u64 + inv.archive.len() as u64;
    let all_bytes = inv.backups.iter().map(|m| m.stored_bytes).sum::<u64>()
        + inv.archive.iter().map(|l| l.bytes).sum::<u64>();
    let Some(newest_full) = fulls.iter().map(|f| f.ts).max() else {
        d.keep_from_reason = "there is no full backup, so nothing is restorable and nothing is \
                              deleted"
            .into();
        d.kept_objects = all_objects;
        d.kept_bytes = all_bytes;
        d.restorable_after = points;
        return d;
    };

    // keep_from: the oldest of now − W, the N-th newest full, and the newest full.
    let mut keep_from = newest_full;
    let mut why = format!("the newest full backup ({})", fmt_ts(newest_full));
    if let Some(w) = retention.keep_within_secs {
        let t = Ts::from_millis(now.millis().saturating_sub(w.saturating_mul(1000)));
        if t < keep_from {
            keep_from = t;
            why = format!(
                "now − {} ({})",
                humantime::format_duration(Duration::from_secs(w)),
                fmt_ts(t)
            );
        }
    }
    if let Some(n) = retention.keep_full {
        let mut ts: Vec<Ts> = fulls.iter().map(|f| f.ts).collect();
        ts.sort_unstable_by(|a, b| b.cmp(a));
        ts.dedup();
        let nth = ts[(n as usize).min(ts.len()) - 1];
        if nth < keep_from {
            keep_from = nth;
            why = if (n as usize) <= ts.len() {
                format!("the {} newest full backup ({})", ordinal(n), fmt_ts(nth))
            } else {
                format!(
                    "the oldest full backup ({}; there are {} of the {n} to keep)",
                    fmt_ts(nth),
                    ts.len()
                )
            };
        }
    }
    d.keep_from = Some(keep_from);
    d.keep_from_reason = why;

    // What the kept points need.
    let mut needed_fulls: BTreeSet<&str> = BTreeSet::new();
    let mut needed_logs: BTreeSet<String> = BTreeSet::new();
    for r in points.iter().filter(|r| r.to >= keep_from) {
        let start = r.from.max(keep_from);
        let base = newest_full_at(&fulls, start).expect("a restorable range starts at a full");
        needed_fulls.insert(base.backup_id.as_str());
        let (used, _) = cover(base.ts, r.to, &logs);
        needed_logs.extend(used.into_iter().map(|l| l.key));
    }
    // Readers: the log after the oldest fresh reader's applied ts.
    let stale_before = now.millis().saturating_sub(READER_STALE.as_millis() as u64);
    let mut reader_from: Option<Ts> = None;
    for r in &holds.readers {
        if r.refreshed_millis < stale_before {
            d.notes.push(format!(
                "standby `{}` (tenant id {} of store {}) has not refreshed its reader record \
                 since {}; it no longer holds log segments",
                r.tenant,
                r.tenant_id,
                r.store_id,
                fmt_ts(Ts::from_millis(r.refreshed_millis))
            ));
        } else {
            reader_from = Some(reader_from.map_or(r.applied_ts, |f: Ts| f.min(r.applied_ts)));
        }
    }

    let mut kept_objects = 0u64;
    let mut kept_bytes = 0u64;
    let mut held_notes: BTreeMap<String, u64> = BTreeMap::new();
    let mut keep = |bytes: u64| {
        kept_objects += 1;
        kept_bytes += bytes;
    };
    let policy = retention.describe();
    for m in &inv.backups {
        let (kind, needed) = if m.kind == "full" {
            (
                ObjectKind::Full,
                m.backup_ts >= keep_from || needed_fulls.contains(m.backup_id.as_str()),
            )
        } else {
            let dir = crate::repo::backup_dir(inv.tenant_id, &m.backup_id);
            let replayed = m
                .segments
                .iter()
                .any(|s| needed_logs.contains(&format!("{dir}/{}", s.path)));
            (ObjectKind::Incr, m.backup_ts >= keep_from || replayed)
        };
        if needed {
            keep(m.stored_bytes);
            continue;
        }
        if let Some((job, job_kind)) = holds.job_using(&m.backup_id) {
            keep(m.stored_bytes);
            *held_notes
                .entry(format!("job {job} ({job_kind})"))
                .or_default() += 1;
            continue;
        }
        let reason = match kind {
            ObjectKind::Full => format!(
                "full backup of {} is older than {} ({policy}) and no kept restore point \
                 starts from it",
                fmt_ts(m.backup_ts),
                fmt_ts(keep_from)
            ),
            _ => format!(
                "incremental backup ending {} is older than {} ({policy}) and no kept \
                 restore point replays it",
                fmt_ts(m.backup_ts),
                fmt_ts(keep_from)
            ),
        };
        d.delete.push(Doomed {
            kind,
            id: m.backup_id.clone(),
            bytes: m.stored_bytes,
            end: m.backup_ts,
            reason,
        });
    }
    if let Some(w) = &holds.foreign_writer {
        d.notes.push(format!(
            "this history's log is written by {w}, not by this tenant: no archived segment \
             is deleted from here (prune from the tenant that writes it)"
        ));
    }
    for l in &inv.archive {
        if needed_logs.contains(&l.key) || l.end > keep_from || holds.foreign_writer.is_some() {
            keep(l.bytes);
            continue;
        }
        if reader_from.is_some_and(|f| l.end > f) {
            keep(l.bytes);
            *held_notes.entry("standby readers".into()).or_default() += 1;
            continue;
        }
        if let Some((job, job_kind)) = holds.job_using(&l.key) {
            keep(l.bytes);
            *held_notes
                .entry(format!("job {job} ({job_kind})"))
                .or_default() += 1;
            continue;
        }
        d.delete.push(Doomed {
            kind: ObjectKind::Segment,
            id: l.key.clone(),
            bytes: l.bytes,
            end: l.end,
            reason: format!(
                "log of {} … {} ends before {} ({policy}) and no kept restore point replays it",
                fmt_ts(l.start),
                fmt_ts(l.end),
                fmt_ts(keep_from)
            ),
        });
    }
    for (who, n) in held_notes {
        d.notes.push(format!(
            "{n} object(s) the policy would delete are kept for {who}"
        ));
    }
    d.kept_objects = kept_objects;
    d.kept_bytes = kept_bytes;
    d.restorable_after = remaining_points(inv, &d.delete);
    d
}

fn newest_full_at(fulls: &[FullPoint], t: Ts) -> Option<&FullPoint> {
    fulls.iter().filter(|f| f.ts <= t).max_by_key(|f| f.ts)
}

/// What remains of `inv` after deleting `doomed`.
fn without(inv: &Inventory, doomed: &[Doomed]) -> Inventory {
    let gone: BTreeSet<&str> = doomed.iter().map(|d| d.id.as_str()).collect();
    Inventory {
        tenant_id: inv.tenant_id,
        backups: inv
            .backups
            .iter()
            .filter(|m| !gone.contains(m.backup_id.as_str()))
            .cloned()
            .collect(),
        archive: inv
            .archive
            .iter()
            .filter(|l| !gone.contains(l.key.as_str()))
            .cloned()
            .collect::<Vec<LogRange>>(),
    }
}

/// The restorable ranges of what remains after deleting `doomed`.
fn remaining_points(inv: &Inventory, doomed: &[Doomed]) -> Vec<Restorable> {
    without(inv, doomed).restore_points()
}

/// Checks a decision with the planner: every point at or after `keep_from` that is
/// restorable in `inv` is restorable after the deletions.
pub fn check(inv: &Inventory, d: &Decision) -> Result<()> {
    let Some(keep_from) = d.keep_from else {
        return Ok(());
    };
    let after = remaining_points(inv, &d.delete);
    for r in inv.restore_points().iter().filter(|r| r.to >= keep_from) {
        let from = r.from.max(keep_from);
        if !after.iter().any(|a| a.from <= from && r.to <= a.to) {
            return Err(Error::Internal(format!(
                "prune would lose restore points {from} … {} (kept ranges after it: {after:?}); \
                 nothing was deleted",
                r.to
            )));
        }
    }
    Ok(())
}

/// Parameters of a prune job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PruneParams {
    /// The history (`tenants/<id>/`).
    pub history_id: u64,
    /// Only backups of the incarnation created at this ts (see
    /// [`Inventory::of_incarnation`]).
    pub created_ts: Option<Ts>,
    pub repo: String,
    /// The history's tenant in this store, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<u64>,
    pub retention: Retention,
    /// The decision shown to whoever asked (a dry run made just before): the job
    /// deletes exactly it, so what was shown is what goes. Without it the job decides
    /// when it runs (and checkpoints the decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<Decision>,
}

job_kind!(
    /// Runs prunes.
    Prune,
    KIND
);

/// The holds on a history read now: unfinished jobs, readers, and another writer of
/// its log. `tenant_id` is the history's tenant in this store, if it has one.
pub async fn holds(
    jobs: &tenet_jobs::JobManager,
    repo: &Repo,
    history_id: u64,
    tenant_id: Option<u64>,
    except_job: Option<u64>,
) -> Result<Holds> {
    let store = jobs.store();
    let me = store.store_id()?;
    let foreign_writer = match crate::standby::read_primary(repo, history_id).await? {
        Some(p) if p.store_id == me && Some(p.tenant_id) == tenant_id => None,
        // This store's tenant that wrote it was dropped: the history is ours to prune.
        Some(p)
            if p.store_id == me
                && tenant_id.is_none()
                && store.tenant_by_id(p.tenant_id).is_none() =>
        {
            None
        }
        Some(p) => Some(crate::standby::describe_primary(&p)),
        // Never archived with a primary record: nobody else claims the log.
        None => None,
    };
    Ok(Holds {
        readers: readers(repo, history_id).await?,
        jobs: unfinished_owners(jobs, except_job)?,
        foreign_writer,
    })
}

fn unfinished_owners(
    jobs: &tenet_jobs::JobManager,
    except_job: Option<u64>,
) -> Result<Vec<(u64, String, JobOwner)>> {
    Ok(jobs
        .list()?
        .into_iter()
        .filter(|j| !j.state.is_final() && Some(j.id) != except_job)
        .map(|j| (j.id, j.kind, j.owner))
        .collect())
}

/// Decides (no deletion): the dry run, and the job's plan phase.
pub async fn plan(
    jobs: &tenet_jobs::JobManager,
    repo: &Repo,
    p: &PruneParams,
    now: Ts,
    except_job: Option<u64>,
) -> Result<Decision> {
    let inv = Inventory::load(repo, p.history_id)
        .await?
        .of_incarnation(p.created_ts);
    let holds = holds(jobs, repo, p.history_id, p.tenant_id, except_job).await?;
    let d = decide(&inv, &p.retention, now, &holds);
    check(&inv, &d)?;
    Ok(d)
}

async fn run(ctx: JobContext) -> Result<Value> {
    let p: PruneParams = params(&ctx)?;
    let repo = Repo::open(&p.repo)?;
    repo.marker().await?;
    ctx.set_phase("plan")?;
    let d: Decision = match (ctx.checkpoint("decision"), &p.decided) {
        (Some(v), _) => serde_json::from_value(v)
            .map_err(|e| Error::Internal(format!("prune checkpoint does not decode: {e}")))?,
        (None, Some(d)) => d.clone(),
        (None, None) => {
            let store = ctx.store();
            let now = store.now_ts().max(store.visible_ts());
            let d = plan(ctx.jobs(), &repo, &p, now, Some(ctx.id())).await?;
            ctx.set_checkpoint(
                "decision",
                serde_json::to_value(&d).expect("decision serializes"),
            )?;
            d
        }
    };
    let done_before = ctx.checkpoint("done").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
    ctx.set_phase("delete")?;
    ctx.set_totals(d.delete.len() as u64, 0, d.delete_bytes())?;
    let mut skipped: Vec<String> = Vec::new();
    let mut owners = unfinished_owners(ctx.jobs(), Some(ctx.id()))?;
    let mut deleted_bytes = 0u64;
    for (i, item) in d.delete.iter().enumerate() {
        if i < done_before {
            ctx.finish_step();
            ctx.add_progress(0, item.bytes);
            continue;
        }
        ctx.check_cancelled()?;
        // A job that started after the decision may use it now.
        if i % 256 == 0 || item.kind != ObjectKind::Segment {
            owners = unfinished_owners(ctx.jobs(), Some(ctx.id()))?;
        }
        if let Some((job, ..)) = owners.iter().find(|(_, _, o)| o.uses(&item.id)) {
            skipped.push(format!("{} (in use by job {job})", item.id));
        } else {
            match item.kind {
                ObjectKind::Segment => repo.delete(&item.id).await?,
                _ => {
                    // The manifest first: from here on the backup is not listed.
                    repo.delete(&manifest_key(p.history_id, &item.id)).await?;
                    tenet_store::failpoint::hit("prune-after-manifest");
                    records::remove_backup(ctx.store(), &repo, p.history_id, &item.id, None).await?
                }
            }
            deleted_bytes += item.bytes;
        }
        ctx.finish_step();
        ctx.add_progress(0, item.bytes);
        if item.kind != ObjectKind::Segment || i % 256 == 255 {
            ctx.set_checkpoint("done", json!(i + 1))?;
        }
    }
    Ok(json!({
        "deleted": d.delete.len() - skipped.len(),
        "deleted_bytes": deleted_bytes,
        "skipped": skipped,
        "kept_objects": d.kept_objects,
        "kept_bytes": d.kept_bytes,
        // Timestamps as decimal strings (they exceed what JSON numbers keep exactly).
        "keep_from_ts": d.keep_from.map(|t| t.0.to_string()),
        "keep_from_time": d.keep_from.map(fmt_ts),
        "restorable_after": d.restorable_after.iter().map(|r| json!({
            "from_ts": r.from.0.to_string(),
            "from_time": fmt_ts(r.from),
            "to_ts": r.to.0.to_string(),
            "to_time": fmt_ts(r.to),
        })).collect::<Vec<_>>(),
        "notes": d.notes,
    }))
}

async fn cleanup(_ctx: JobContext) -> Result<()> {
    // What was deleted stays deleted (each deletion left the repository consistent);
    // what was not is still there.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Manifest, SegmentEntry};
    use crate::planner::{plan, Target};
    use proptest::prelude::*;

    const SEC: u64 = 1000;

    fn manifest(id: &str, kind: &str, ts: u64, start: Option<u64>) -> Manifest {
        let at = |ms: u64| Ts::from_millis(ms);
        Manifest {
            backup_id: id.into(),
            kind: kind.into(),
            tenant_id: 7,
            tenant_name: "acme".into(),
            backup_ts: at(ts),
            stored_bytes: 100,
            start_ts: start.map(at),
            segments: start
                .map(|s| {
                    vec![SegmentEntry {
                        path: format!("log/{s}-{ts}.tls"),
                        size: 10,
                        blake3: String::new(),
                        start: at(s),
                        end: at(ts),
                        records: 1,
                        key_id: None,
                    }]
                })
                .unwrap_or_default(),
            ..Manifest::empty()
        }
    }

    fn segment(start: u64, end: u64) -> LogRange {
        LogRange {
            key: format!("tenants/7/log/{start:020}-{end:020}.tls"),
            start: Ts::from_millis(start),
            end: Ts::from_millis(end),
            bytes: 10,
        }
    }

    /// A random history over `[0, 100 s]`: fulls, incrementals (each continuing the
    /// previous backup), archive segments with overlaps and gaps.
    fn history() -> impl Strategy<Value = Inventory> {
        let backups = prop::collection::vec((any::<bool>(), 1u64..15), 1..10);
        let segs = prop::collection::vec((0u64..100, 1u64..15, any::<bool>()), 0..30);
        (backups, segs).prop_map(|(backups, segs)| {
            let mut at = 0;
            let mut out = Vec::new();
            for (i, (full, step)) in backups.into_iter().enumerate() {
                let prev = at;
                at += step * SEC;
                let id = format!("b{i:02}");
                out.push(if full || i == 0 {
                    manifest(&id, "full", at, None)
                } else {
                    manifest(&id, "incr", at, Some(prev))
                });
            }
            let archive = segs
                .into_iter()
                // A third of the candidates are dropped: gaps.
                .filter(|(_, _, keep)| *keep)
                .map(|(s, len, _)| segment(s * SEC, (s + len) * SEC))
                .collect();
            Inventory {
                tenant_id: 7,
                backups: out,
                archive,
            }
        })
    }

    fn retention() -> impl Strategy<Value = Retention> {
        (prop::option::of(1u64..120), prop::option::of(1u32..5))
            .prop_filter("a policy", |(w, n)| w.is_some() || n.is_some())
            .prop_map(|(w, n)| Retention {
                keep_within_secs: w,
                keep_full: n,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// After prune every restorable T at or after keep_from is still plannable
        /// (by the planner, the way a restore plans); nothing needed is deleted;
        /// nothing unneeded that ends before keep_from is kept.
        #[test]
        fn prune_keeps_the_window_and_only_it(
            inv in history(),
            r in retention(),
            now_s in 60u64..200,
        ) {
            let now = Ts::from_millis(now_s * SEC);
            let d = decide(&inv, &r, now, &Holds::default());
            check(&inv, &d).unwrap();
            let after = without(&inv, &d.delete);
            let keep_from = d.keep_from.unwrap();
            let newest_full = inv.fulls().iter().map(|f| f.ts).max().unwrap();
            prop_assert!(keep_from <= newest_full);
            if let Some(w) = r.keep_within_secs {
                prop_assert!(keep_from.millis() <= (now_s.saturating_sub(w)) * SEC);
            }
            // Every restorable ms in the window plans the same way after prune.
            for p in inv.restore_points() {
                let from = p.from.max(keep_from).millis();
                for ms in (from..=p.to.millis()).step_by(500) {
                    let t = Ts::from_millis(ms).max(p.from.max(keep_from));
                    prop_assert!(
                        plan(&after.fulls(), &after.logs(), &Target::At(t), Ts::MAX).is_ok(),
                        "{t:?} lost; deleted {:?}", d.delete
                    );
                }
                let t = p.to;
                if t >= keep_from {
                    prop_assert!(plan(&after.fulls(), &after.logs(), &Target::At(t), Ts::MAX).is_ok());
                }
            }
            // Nothing unneeded before the window is kept: a kept object that ends
            // before keep_from must be needed by some kept point (removing it loses one).
            for m in &after.backups {
                if m.backup_ts < keep_from {
                    let mut without = d.clone();
                    without.delete.push(Doomed {
                        kind: ObjectKind::Full,
                        id: m.backup_id.clone(),
                        bytes: 0,
                        end: m.backup_ts,
                        reason: String::new(),
                    });
                    prop_assert!(check(&inv, &without).is_err(), "{} kept for nothing", m.backup_id);
                }
            }
            for l in &after.archive {
                if l.end <= keep_from {
                    let mut without = d.clone();
                    without.delete.push(Doomed {
                        kind: ObjectKind::Segment,
                        id: l.key.clone(),
                        bytes: 0,
                        end: l.end,
                        reason: String::new(),
                    });
                    // Overlapping segments: one of two may be dropped without loss, so
                    // only require that it is used by the planner's cover.
                    let used: BTreeSet<String> = after
                        .restore_points()
                        .iter()
                        .filter(|p| p.to >= keep_from)
                        .flat_map(|p| {
                            let base = newest_full_at(&after.fulls(), p.from.max(keep_from)).unwrap().ts;
                            cover(base, p.to, &after.logs()).0.into_iter().map(|x| x.key)
                        })
                        .collect();
                    prop_assert!(used.contains(&l.key), "{} kept for nothing", l.key);
                }
            }
        }
    }

    #[test]
    fn readers_and_jobs_hold_segments_and_stale_readers_do_not() {
        let inv = Inventory {
            tenant_id: 7,
            backups: vec![
                manifest("f1", "full", 10 * SEC, None),
                manifest("f2", "full", 50 * SEC, None),
            ],
            archive: vec![
                segment(10 * SEC, 20 * SEC),
                segment(20 * SEC, 30 * SEC),
                segment(50 * SEC, 60 * SEC),
            ],
        };
        let r = Retention {
            keep_within_secs: None,
            keep_full: Some(1),
        };
        let now = Ts::from_millis(100 * SEC);
        let d = decide(&inv, &r, now, &Holds::default());
        let ids: Vec<&str> = d.delete.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert!(
            d.delete[0].reason.contains("keep 1 full"),
            "{}",
            d.delete[0].reason
        );
        // A fresh reader at 15 s keeps the segments after it; a job keeps f1.
        let reader = |refreshed: u64| Reader {
            format: READER_FORMAT.into(),
            version: READER_VERSION,
            store_id: "s".into(),
            tenant_id: 9,
            tenant: "acme-standby".into(),
            applied_ts: Ts::from_millis(15 * SEC),
            refreshed_millis: refreshed,
        };
        let holds = Holds {
            readers: vec![reader(99 * SEC)],
            jobs: vec![(
                4,
                "restore".into(),
                JobOwner {
                    backups: vec!["f1".into()],
                    ..JobOwner::default()
                },
            )],
            foreign_writer: None,
        };
        let d = decide(&inv, &r, now, &holds);
        assert!(d.delete.is_empty(), "{:?}", d.delete);
        assert_eq!(d.notes.len(), 2, "{:?}", d.notes);
        // Stale: holds nothing, and says so.
        let holds = Holds {
            readers: vec![reader(0)],
            ..Holds::default()
        };
        let now = Ts::from_millis(READER_STALE.as_millis() as u64 + 100 * SEC);
        let d = decide(&inv, &r, now, &holds);
        assert_eq!(d.delete.len(), 3);
        assert!(d.notes[0].contains("no longer holds"), "{:?}", d.notes);
        // Another tenant writes the log: its segments are not this tenant's to delete.
        let holds = Holds {
            foreign_writer: Some("tenant `acme` (#1) of store 00ff".into()),
            ..Holds::default()
        };
        let d = decide(&inv, &r, now, &holds);
        let kinds: Vec<ObjectKind> = d.delete.iter().map(|o| o.kind).collect();
        assert_eq!(kinds, vec![ObjectKind::Full], "{:?}", d.delete);
        assert!(
            d.notes[0].contains("written by tenant `acme`"),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101].map(ordinal).into();
        assert_eq!(
            got,
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]
        );
    }

    #[test]
    fn no_full_deletes_nothing_and_bad_policies_are_refused() {
        let inv = Inventory {
            tenant_id: 7,
            backups: Vec::new(),
            archive: vec![segment(0, SEC)],
        };
        let r = Retention {
            keep_within_secs: Some(1),
            keep_full: None,
        };
        let d = decide(&inv, &r, Ts::from_millis(100 * SEC), &Holds::default());
        assert!(d.delete.is_empty() && d.keep_from.is_none());
        for bad in [
            Retention::default(),
            Retention {
                keep_within_secs: Some(0),
                keep_full: None,
            },
            Retention {
                keep_within_secs: None,
                keep_full: Some(0),
            },
            Retention {
                keep_within_secs: Some(KEEP_WITHIN_MAX_SECS + 1),
                keep_full: None,
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
