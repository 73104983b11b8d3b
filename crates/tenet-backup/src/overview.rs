//! The protection overview: for every tenant, what is protected and what is wrong —
//! `tenet status` and `GET /v1/protection`.
//!
//! # Where the figures come from
//! The restorable window, the last backups and the repository usage come from the
//! tenant's [`Inventory`] — what the restore planner plans from, so "restorable from
//! A to B" is exactly what a restore can reach. Listing repositories is the expensive
//! part, so each tenant's inventory summary is cached ([`Overview::refresh`]); the
//! server refreshes every [`REFRESH_EVERY`]. A cached reading is kept only while what
//! this store has written of the tenant's history is unchanged ([`Written`]: the
//! archiver's checkpoint and the tenant's backup records): after a segment is shipped
//! or a backup is taken or deleted, the next view reads that tenant's repository
//! again, so the restorable window and the RPO are never older than the last thing
//! written. Readings of several tenants run [`READ_AT_ONCE`] at a time. What changes
//! by the second — the RPO, the scheduler's runs, whether the archiver runs, stuck
//! jobs — is computed when asked, from memory and the store.
//!
//! # Problems
//! No strategy; nothing restorable; a repository that cannot be read; an archiver that
//! should run and does not, or is broken; an RPO over a minute while archiving; a
//! scheduled run that failed (retrying) or failed for good; a job of the tenant with no
//! progress for [`STUCK_AFTER`] (or interrupted with nobody to run it); a restorable
//! window shorter than the strategy's `keep_within` promises; a last restore drill that
//! failed. The newest successful drill's restored time is the *last proven restorable
//! time*. Tenants are sorted worst
//! first: most problems, then the largest RPO.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use serde::Serialize;

use tenet_store::{TenantRecord, TenantState, Ts};

use crate::archiver::{self, ArchiveState, ArchiveStatus, Archivers, Protection};
use crate::inventory::Inventory;
use crate::planner::Restorable;
use crate::scheduler::{RunState, Scheduler};
use crate::strategy::{self, Strategy};
use crate::{Backups, Repo, Subject};

/// How often the server re-reads every tenant's repository for the overview.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// Repositories read at once when several tenants' readings are taken.
const READ_AT_ONCE: usize = 8;
/// A job with no progress for this long is stuck, by default (`tenet serve
/// --stuck-after`).
pub const STUCK_AFTER: Duration = Duration::from_secs(15 * 60);
/// While archiving, an RPO above this is a problem.
pub const RPO_LIMIT: Duration = Duration::from_secs(60);

/// A backup as the overview shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackupView {
    pub backup_id: String,
    pub ts: Ts,
    pub stored_bytes: u64,
}

/// What a repository holds of one tenant, read at `read_ms`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Holdings {
    pub repo: Option<String>,
    pub last_full: Option<BackupView>,
    pub last_incr: Option<BackupView>,
    pub restorable: Vec<Restorable>,
    /// Bytes and objects of the tenant's history in the repository.
    pub bytes: u64,
    pub objects: u64,
    /// Why the repository could not be read.
    pub error: Option<String>,
    pub read_ms: u64,
}

/// What this store has written of a tenant's history into repositories, as far as it
/// knows: the archiver's checkpoint and the tenant's backup records. A repository
/// reading taken when this was different is out of date.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Written {
    archived: Option<(String, Ts)>,
    backups: Vec<String>,
}

impl Written {
    /// A tenant's, from its archiver's state and its backup records.
    fn of(tenant_id: u64, arch: Option<&ArchiveState>, records: &Records) -> Written {
        Written {
            archived: arch.map(|a| (a.repo.clone(), a.checkpoint)),
            backups: records.get(&tenant_id).cloned().unwrap_or_default(),
        }
    }
}

/// The ids of every tenant's backup records, by tenant id.
type Records = HashMap<u64, Vec<String>>;

fn records(backups: &Backups) -> crate::Result<Records> {
    let mut by_tenant = Records::new();
    for r in backups.list(None)? {
        by_tenant.entry(r.tenant_id).or_default().push(r.id);
    }
    Ok(by_tenant)
}

/// One tenant's protection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantView {
    pub tenant_id: u64,
    pub tenant: String,
    pub state: String,
    pub strategy: Option<Strategy>,
    /// The strategy is the tenant's own (not the default).
    pub own_strategy: bool,
    pub holdings: Holdings,
    /// Newest restorable point and the RPO now.
    pub protection: Protection,
    /// The archiver: `running`, `stopped`, `broken` (None: never started).
    pub archive: Option<String>,
    pub archive_running: bool,
    pub runs: Vec<RunState>,
    /// The newest drill that ended (scheduled or by hand).
    pub last_drill: Option<DrillView>,
    /// The restored time of the newest successful drill: proven restorable.
    pub proven_restorable: Option<Ts>,
    pub problems: Vec<String>,
}

/// A drill that ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DrillView {
    pub job: u64,
    pub finished_at: String,
    pub succeeded: bool,
    /// Why it failed.
    pub error: Option<String>,
}

/// The overview of one store.
#[derive(Clone)]
pub struct Overview {
    backups: Backups,
    archivers: Archivers,
    scheduler: Scheduler,
    /// Each tenant's last reading, with what had been written when it was taken.
    cache: Arc<Mutex<HashMap<u64, (Written, Holdings)>>>,
    /// Milliseconds without progress after which a job is stuck.
    stuck_after_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Overview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overview").finish()
    }
}

fn watched(rec: &TenantRecord) -> bool {
    rec.id != tenet_store::catalog::SYSTEM_TENANT
        && !rec.is_scratch()
        && !matches!(rec.state, TenantState::Restoring | TenantState::Dropping)
}

impl Overview {
    pub fn new(backups: Backups, archivers: Archivers, scheduler: Scheduler) -> Overview {
        Overview {
            backups,
            archivers,
            scheduler,
            cache: Arc::new(Mutex::new(HashMap::new())),
            stuck_after_ms: Arc::new(std::sync::atomic::AtomicU64::new(
                STUCK_AFTER.as_millis() as u64
            )),
        }
    }

    /// Sets how long a job may go without progress before it is stuck.
    pub fn set_stuck_after(&self, d: Duration) {
        self.stuck_after_ms
            .store(d.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    fn store(&self) -> &tenet_store::Store {
        self.backups.jobs().store()
    }

    /// The repository a tenant is looked at in: its strategy's, else where it archives
    /// or its newest backup is.
    fn repo_of(&self, rec: &TenantRecord, s: Option<&Strategy>) -> Option<String> {
        if let Some(url) = s.and_then(|s| s.repo_url(self.store()).ok()) {
            return Some(url);
        }
        self.backups.default_repo(&Subject::of(rec)).ok().flatten()
    }

    /// Reads what the repository holds of one tenant.
    async fn holdings(&self, rec: &TenantRecord, s: Option<&Strategy>) -> Holdings {
        let read_ms = self.store().clock().now_millis();
        let Some(url) = self.repo_of(rec, s) else {
            return Holdings {
                read_ms,
                ..Holdings::default()
            };
        };
        let subject = Subject::of(rec);
        let inv = async {
            let repo = Repo::open(&url)?;
            Ok::<_, crate::Error>(
                Inventory::load(&repo, subject.id)
                    .await?
                    .of_incarnation(subject.created_ts),
            )
        }
        .await;
        let view = |kind: &str, inv: &Inventory| {
            inv.backups
                .iter()
                .rev()
                .find(|m| m.kind == kind)
                .map(|m| BackupView {
                    backup_id: m.backup_id.clone(),
                    ts: m.backup_ts,
                    stored_bytes: m.stored_bytes,
                })
        };
        match inv {
            Ok(inv) => Holdings {
                last_full: view("full", &inv),
                last_incr: view("incr", &inv),
                restorable: inv.restore_points(),
                bytes: inv.backups.iter().map(|m| m.stored_bytes).sum::<u64>()
                    + inv.archive.iter().map(|l| l.bytes).sum::<u64>(),
                objects: (inv.backups.len() + inv.archive.len()) as u64,
                repo: Some(url),
                error: None,
                read_ms,
            },
            Err(e) => Holdings {
                repo: Some(url),
                error: Some(e.to_string()),
                read_ms,
                ..Holdings::default()
            },
        }
    }

    /// Re-reads every tenant's repository.
    pub async fn refresh(&self) {
        let store = self.store().clone();
        let all = strategy::Strategies::load(&store).unwrap_or_default();
        let records = records(&self.backups).unwrap_or_default();
        let tenants = store.tenants().into_iter().filter(watched).map(|rec| {
            let arch = archiver::load(&store, rec.id).ok().flatten();
            let written = Written::of(rec.id, arch.as_ref(), &records);
            (rec, written)
        });
        let fresh = self.read(&all, tenants.collect()).await;
        *self.cache.lock() = fresh.into_iter().collect();
    }

    /// Reads the holdings of `tenants`, [`READ_AT_ONCE`] repositories at a time. Each
    /// comes with what had been written before its reading began (a write during it
    /// makes that stamp old, so the next view reads again).
    async fn read(
        &self,
        strategies: &strategy::Strategies,
        tenants: Vec<(TenantRecord, Written)>,
    ) -> Vec<(u64, (Written, Holdings))> {
        futures::stream::iter(tenants)
            .map(|(rec, written)| async move {
                let s = strategies.of(rec.id).map(|(s, _)| s.clone());
                (rec.id, (written, self.holdings(&rec, s.as_ref()).await))
            })
            .buffer_unordered(READ_AT_ONCE)
            .collect()
            .await
    }

    /// Refreshes every [`REFRESH_EVERY`] in the background of `runtime`.
    pub fn run(&self, runtime: &tokio::runtime::Handle) {
        let me = self.clone();
        runtime.spawn(async move {
            loop {
                me.refresh().await;
                tokio::time::sleep(REFRESH_EVERY).await;
            }
        });
    }

    /// Every watched tenant, worst first (tenants not read yet, or written to since
    /// their reading, are read now).
    pub async fn view(&self) -> crate::Result<Vec<TenantView>> {
        let store = self.store().clone();
        let now = store.clock().now_millis();
        let states = self.scheduler.states();
        let jobs = self.backups.jobs().list()?;
        let records = records(&self.backups)?;
        let all = strategy::Strategies::load(&store)?;
        // Each tenant with its archiver's state, read once for the stamp and the view.
        let mut tenants = Vec::new();
        for rec in store.tenants().into_iter().filter(watched) {
            let arch = archiver::load(&store, rec.id)?;
            tenants.push((rec, arch));
        }
        // Cached readings still current, and the tenants to read now: those not read
        // yet and those whose history was written to since.
        let mut current = HashMap::new();
        let mut stale = Vec::new();
        {
            let cache = self.cache.lock();
            for (rec, arch) in &tenants {
                let written = Written::of(rec.id, arch.as_ref(), &records);
                match cache.get(&rec.id) {
                    Some((read_after, h)) if *read_after == written => {
                        current.insert(rec.id, h.clone());
                    }
                    _ => stale.push((rec.clone(), written)),
                }
            }
        }
        for (id, (written, h)) in self.read(&all, stale).await {
            current.insert(id, h.clone());
            self.cache.lock().insert(id, (written, h));
        }
        let mut out = Vec::new();
        for (rec, arch) in tenants {
            let found = all.of(rec.id);
            let s = found.map(|(s, _)| s.clone());
            let holdings = current.remove(&rec.id).unwrap_or_default();
            let until = holdings.restorable.iter().map(|r| r.to).max();
            let protection = Protection::at(&store, rec.id, until)?;
            let running = self.archivers.is_running(rec.id);
            let runs: Vec<RunState> = states
                .iter()
                .filter(|r| r.tenant_id == rec.id)
                .cloned()
                .collect();
            let mut problems = Vec::new();
            let standby = rec.state == TenantState::Standby;
            match &s {
                None if !standby => problems.push(format!(
                    "no strategy: nothing backs it up on a schedule (`tenet strategy set {} …`, \
                     or a default with `--default`)",
                    rec.name
                )),
                _ => {}
            }
            if let Some(e) = &holdings.error {
                problems.push(format!("cannot read its repository: {e}"));
            } else if until.is_none() && !standby {
                problems.push(match &holdings.repo {
                    Some(r) => format!("nothing is restorable from {r}: it holds no full backup"),
                    None => "nothing is restorable: it has no backup".into(),
                });
            }
            let archiving = s.as_ref().is_some_and(|s| s.archive);
            match arch.as_ref().map(|a| a.status) {
                Some(ArchiveStatus::Broken) => problems.push(format!(
                    "the archiver is broken ({})",
                    arch.as_ref()
                        .and_then(|a| a.error.as_deref())
                        .unwrap_or("no detail")
                )),
                _ if archiving && !running => {
                    problems.push("the strategy archives it, but no archiver runs".into())
                }
                _ => {}
            }
            if running || archiving {
                if let Some(rpo) = protection
                    .rpo_ms
                    .filter(|r| *r > RPO_LIMIT.as_millis() as u64)
                {
                    problems.push(format!(
                        "RPO {} s: commits after {} are in no archive",
                        rpo / 1000,
                        until.map(|t| t.to_rfc3339()).unwrap_or_default()
                    ));
                }
            }
            for r in &runs {
                match (&r.problem, r.failures) {
                    (Some(p), _) => problems.push(p.clone()),
                    (None, n) if n > 0 => problems.push(format!(
                        "the last scheduled {} run failed ({}); retrying{}",
                        r.kind,
                        r.last_outcome.as_deref().unwrap_or(""),
                        r.retry_at_ms
                            .map(|t| format!(" at {}", Ts::from_millis(t).to_rfc3339()))
                            .unwrap_or_default()
                    )),
                    _ => {}
                }
            }
            // Drills of the tenant that ended, newest last (job ids grow).
            let drills: Vec<&tenet_jobs::JobRecord> = jobs
                .iter()
                .filter(|j| {
                    j.kind == crate::drill::KIND
                        && j.state.is_final()
                        && j.owner.tenant_id == Some(rec.id)
                })
                .collect();
            let last_drill = drills.last().map(|j| DrillView {
                job: j.id,
                finished_at: j.finished_at.clone().unwrap_or_default(),
                succeeded: j.state == tenet_jobs::JobState::Succeeded,
                error: j
                    .error
                    .as_ref()
                    .map(|e| format!("{} [{}]", e.message, e.code)),
            });
            let proven_restorable = drills
                .iter()
                .rev()
                .filter(|j| j.state == tenet_jobs::JobState::Succeeded)
                .find_map(|j| {
                    let r = j.result.as_ref()?;
                    Some(Ts(r["target_ts"].as_str()?.parse().ok()?))
                });
            if let Some(d) = last_drill.as_ref().filter(|d| !d.succeeded) {
                problems.push(format!(
                    "the last restore drill (job {}, {}) failed: {}",
                    d.job,
                    d.finished_at,
                    d.error.as_deref().unwrap_or("cancelled")
                ));
            }
            for j in jobs
                .iter()
                .filter(|j| !j.state.is_final() && j.owner.tenant_id == Some(rec.id))
            {
                let live = self.backups.jobs().is_live(j.id);
                let last = Ts::parse_rfc3339(&j.updated_at)
                    .map(|t| t.millis())
                    .unwrap_or(now);
                if !live {
                    problems.push(format!(
                        "job {} ({}) was interrupted and nothing runs it; `tenet jobs resume {}` \
                         or `tenet jobs cancel {}`",
                        j.id, j.kind, j.id, j.id
                    ));
                } else if now.saturating_sub(last)
                    > self
                        .stuck_after_ms
                        .load(std::sync::atomic::Ordering::Relaxed)
                {
                    problems.push(format!(
                        "job {} ({}) has made no progress since {}",
                        j.id, j.kind, j.updated_at
                    ));
                }
            }
            if let (Some(s), Some(first)) = (&s, holdings.restorable.first()) {
                if let Some(w) = s.retention.keep_within_secs {
                    let promised = now.saturating_sub(w * 1000);
                    let set_at = Ts::parse_rfc3339(&s.updated_at)
                        .map(|t| t.millis())
                        .unwrap_or(now);
                    // Only once the strategy (and the tenant) are older than the window.
                    if set_at < promised
                        && rec.created_ts.millis() < promised
                        && first.from.millis() > promised + 60_000
                    {
                        problems.push(format!(
                            "restorable only from {}; the strategy keeps {} (from {})",
                            first.from.to_rfc3339(),
                            humantime::format_duration(Duration::from_secs(w)),
                            Ts::from_millis(promised).to_rfc3339()
                        ));
                    }
                }
            }
            out.push(TenantView {
                tenant_id: rec.id,
                tenant: rec.name.clone(),
                state: rec.state.to_string(),
                own_strategy: found.is_some_and(|(_, own)| own),
                strategy: s,
                holdings,
                protection,
                archive: arch.map(|a| {
                    match a.status {
                        ArchiveStatus::Running => "running",
                        ArchiveStatus::Stopped => "stopped",
                        ArchiveStatus::Broken => "broken",
                    }
                    .to_string()
                }),
                archive_running: running,
                runs,
                last_drill,
                proven_restorable,
                problems,
            });
        }
        out.sort_by(|a, b| {
            let rpo = |v: &TenantView| v.protection.rpo_ms.unwrap_or(u64::MAX);
            b.problems
                .len()
                .cmp(&a.problems.len())
                .then(rpo(b).cmp(&rpo(a)))
                .then(a.tenant.cmp(&b.tenant))
        });
        Ok(out)
    }

    /// Forgets what was read, so the next view reads every repository again.
    pub fn invalidate(&self) {
        self.cache.lock().clear();
    }
}
