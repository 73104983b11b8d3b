//! The scheduler: runs every tenant's strategy (`strategy.rs`) as jobs, inside the
//! server.
//!
//! # Runs
//! For each tenant with a strategy (its own or the default) and each kind of run it
//! asks for — `full` (cron), `incr` (an interval after the previous backup),
//! `archive` (kept running) — one [`RunState`] in system table [`SCHEDULES_TABLE`],
//! keyed by (tenant id, kind), says when it is next due, which job runs it now, how
//! the last one ended and what is wrong. [`Scheduler::tick`] looks at them all for a
//! given time; the server calls it every second on the store's clock, tests with a
//! manual one.
//!
//! * **Due.** A full run is due at the strategy's next cron time plus the tenant's
//!   *spread*: a fixed offset within the first tenth of the cron period, from a hash of
//!   the tenant id, so 1,000 tenants on `0 2 * * *` start over 2.4 hours, not at once.
//!   A tenant with no full backup recorded gets its first full backup at once. An
//!   incremental run is due its interval after the previous scheduled backup started,
//!   and only once a full backup exists; a full backup due at the same time supersedes
//!   it.
//! * **Missed runs.** The next due time is always computed from *now*, so a run missed
//!   while the server was down runs once when it comes back, not once per missed slot.
//! * **Overlap.** A run due while the previous one (or any backup of the tenant) is
//!   unfinished is *skipped*: counted and recorded with the job that held it.
//! * **Failures.** A run that fails (or cannot start) is retried after 1, 5 and 30
//!   minutes; after that it is a *problem* until a run succeeds. A later regular run
//!   still happens.
//! * **Limits.** At most [`Limits::max_concurrent_backups`] scheduled backups run at
//!   once; the others stay due and start, oldest due first, as those end.
//! * **Drills.** `drill` runs on its cron like a full backup (with the spread), once a
//!   full backup exists (`drill.rs`).
//! * **Prune.** After each scheduled backup succeeds, a prune job applies the
//!   strategy's retention (`prune.rs`).
//! * **Archive.** A strategy with `archive` keeps the tenant's archiver running in its
//!   repository: started when it is not running or was stopped; a broken archiver
//!   (budget exceeded) or one that lost its history (`NOT_PRIMARY`) is left alone and
//!   reported.
//!
//! # Cost
//! Run states live in memory and are written only when they change; strategies and
//! tenants are re-read every [`REFRESH`] (or at once after [`Scheduler::changed`]). An
//! idle tick is a pass over the in-memory states.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use tenet_jobs::JobState;
use tenet_store::keys::{pk_bytes, KeyValue};
use tenet_store::{decode_system_row, encode_system_row, Store, TenantState, Ts, SCHEDULES_TABLE};

use crate::archiver::{self, ArchiveOptions, ArchiveStatus, Archivers};
use crate::error::{Error, Result};
use crate::strategy::{self, Schedule, Strategy};
use crate::{records, Backups, Subject};

/// How often strategies and tenants are re-read.
pub const REFRESH: Duration = Duration::from_secs(10);
/// Waits before the 1st, 2nd and 3rd retry of a failed run; then it is a problem.
pub const RETRY_AFTER: [Duration; 3] = [
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(1800),
];

/// Global limits of scheduled work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_concurrent_backups: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrent_backups: 2,
        }
    }
}

/// What the scheduler knows of one kind of run of one tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub tenant_id: u64,
    /// `full`, `incr` or `archive`.
    pub kind: String,
    /// The schedule `next_due_ms` was computed from (a changed strategy recomputes it).
    pub schedule: String,
    pub next_due_ms: u64,
    /// The job running it now.
    pub job: Option<u64>,
    pub last_started_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    /// The last run that ended.
    pub last_job: Option<u64>,
    /// How it ended, in words (`succeeded`, `failed: …`, `skipped: …`).
    pub last_outcome: Option<String>,
    /// Failures since the last success.
    pub failures: u32,
    pub retry_at_ms: Option<u64>,
    /// Runs skipped because the previous one was unfinished.
    pub skipped: u64,
    /// What is wrong, for the overview (None: nothing).
    pub problem: Option<String>,
}

fn state_key(tenant_id: u64, kind: &str) -> Vec<u8> {
    pk_bytes(&[
        KeyValue::Int(tenant_id as i64),
        KeyValue::Str(kind.to_string()),
    ])
}

/// Every stored run state.
pub fn states(store: &Store) -> Result<Vec<RunState>> {
    store
        .system_scan(SCHEDULES_TABLE)?
        .into_iter()
        .map(|(_, v)| Ok(decode_system_row("schedule", &v)?))
        .collect()
}

fn save(store: &Store, st: &RunState) -> Result<()> {
    store.system_put(
        SCHEDULES_TABLE,
        &state_key(st.tenant_id, &st.kind),
        Some(&encode_system_row(st)),
    )?;
    Ok(())
}

fn forget(store: &Store, tenant_id: u64, kind: &str) -> Result<()> {
    store.system_put(SCHEDULES_TABLE, &state_key(tenant_id, kind), None)?;
    Ok(())
}

/// A well-mixed 64-bit hash of a tenant id (splitmix64), for the spread.
fn mix(id: u64) -> u64 {
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The first cron time of `schedule` after `now_ms`, plus the tenant's spread (within
/// the first tenth of the period that time starts).
pub fn next_full_ms(schedule: &Schedule, tenant_id: u64, now_ms: u64) -> Option<u64> {
    // The slot whose spread time is still ahead: a slot that began up to one spread
    // width ago may still be due for this tenant.
    let slot = schedule.next_after(now_ms)?;
    let period = schedule.next_after(slot)?.saturating_sub(slot).max(1);
    let width = (period / 10).max(1);
    let offset = mix(tenant_id) % width;
    // The previous slot, if this tenant's time in it is still ahead.
    let prev = schedule.next_after(now_ms.saturating_sub(width))?;
    if prev < slot && prev + offset > now_ms {
        return Some(prev + offset);
    }
    Some(slot + offset)
}

/// One kind of run a strategy asks for, with its schedule in words.
fn runs_of(s: &Strategy) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(f) = &s.full {
        out.push(("full", f.clone()));
        if let Some(i) = s.incr_secs {
            out.push(("incr", format!("every {i}s")));
        }
    }
    if let Some(d) = &s.drill {
        out.push(("drill", d.clone()));
    }
    if s.archive {
        out.push((
            "archive",
            format!("on, every {} ms", s.archive_interval_ms.unwrap_or(1000)),
        ));
    }
    out
}

/// What one tick did (for logs and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Started {
        tenant_id: u64,
        kind: String,
        job: u64,
    },
    Skipped {
        tenant_id: u64,
        kind: String,
        held_by: String,
    },
    Failed {
        tenant_id: u64,
        kind: String,
        error: String,
    },
    Succeeded {
        tenant_id: u64,
        kind: String,
        job: u64,
    },
    ArchiveStarted {
        tenant_id: u64,
    },
    Pruning {
        tenant_id: u64,
        job: u64,
    },
}

struct Inner {
    backups: Backups,
    archivers: Archivers,
    limits: Limits,
    states: Mutex<BTreeMap<(u64, String), RunState>>,
    /// (tenant, its effective strategy), re-read every REFRESH.
    strategies: Mutex<Vec<(u64, Strategy)>>,
    refreshed_ms: Mutex<Option<u64>>,
}

/// The scheduler of one store.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").finish()
    }
}

impl Scheduler {
    /// A scheduler over `backups` and `archivers`, with the run states stored before.
    pub fn new(backups: Backups, archivers: Archivers, limits: Limits) -> Scheduler {
        let loaded = match states(backups.jobs().store()) {
            Ok(s) => s
                .into_iter()
                .map(|s| ((s.tenant_id, s.kind.clone()), s))
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "scheduler: stored run states unreadable; starting afresh");
                BTreeMap::new()
            }
        };
        Scheduler {
            inner: Arc::new(Inner {
                backups,
                archivers,
                limits,
                states: Mutex::new(loaded),
                strategies: Mutex::new(Vec::new()),
                refreshed_ms: Mutex::new(None),
            }),
        }
    }

    fn store(&self) -> &Store {
        self.inner.backups.jobs().store()
    }

    /// Strategies or tenants changed: re-read them at the next tick.
    pub fn changed(&self) {
        *self.inner.refreshed_ms.lock() = None;
    }

    /// The run states, by (tenant id, kind).
    pub fn states(&self) -> Vec<RunState> {
        self.inner.states.lock().values().cloned().collect()
    }

    /// Ticks every `every` on the store's clock, in the background of `runtime`.
    pub fn run(&self, every: Duration, runtime: &tokio::runtime::Handle) {
        let me = self.clone();
        runtime.spawn(async move {
            loop {
                let now = me.store().clock().now_millis();
                if let Err(e) = me.tick(now).await {
                    tracing::warn!(error = %e, "scheduler tick failed");
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    fn refresh(&self, now_ms: u64) -> Result<()> {
        let due =
            self.inner.refreshed_ms.lock().is_none_or(|t| {
                now_ms.saturating_sub(t) >= REFRESH.as_millis() as u64 || now_ms < t
            });
        if !due {
            return Ok(());
        }
        let store = self.store();
        let all = strategy::Strategies::load(store)?;
        let mut list = Vec::new();
        for rec in store.tenants() {
            if rec.id == tenet_store::catalog::SYSTEM_TENANT
                || rec.is_scratch()
                || !matches!(rec.state, TenantState::Active | TenantState::ReadOnly)
            {
                continue;
            }
            if let Some((s, _)) = all.of(rec.id) {
                list.push((rec.id, s.clone()));
            }
        }
        // Runs of tenants (or kinds) no strategy asks for any more are forgotten.
        let wanted: std::collections::HashSet<(u64, &str)> = list
            .iter()
            .flat_map(|(id, s)| runs_of(s).into_iter().map(move |(k, _)| (*id, k)))
            .collect();
        let mut states = self.inner.states.lock();
        let stale: Vec<(u64, String)> = states
            .keys()
            .filter(|(id, k)| !wanted.contains(&(*id, k.as_str())))
            .cloned()
            .collect();
        for (id, k) in stale {
            if states
                .get(&(id, k.clone()))
                .is_some_and(|s| s.job.is_none())
            {
                states.remove(&(id, k.clone()));
                forget(store, id, &k)?;
            }
        }
        drop(states);
        *self.inner.strategies.lock() = list;
        *self.inner.refreshed_ms.lock() = Some(now_ms);
        Ok(())
    }

    fn has_full(&self, tenant_id: u64) -> Result<bool> {
        Ok(records::list(self.store())?
            .iter()
            .any(|r| r.tenant_id == tenant_id && r.kind == "full"))
    }

    /// When a run is next due from `now_ms` (None: never, e.g. an unparsable schedule
    /// stored before validation existed).
    fn next_due(&self, tenant_id: u64, kind: &str, s: &Strategy, now_ms: u64) -> Option<u64> {
        match kind {
            "full" => {
                let sched = Schedule::parse("full backup", s.full.as_deref()?).ok()?;
                next_full_ms(&sched, tenant_id, now_ms)
            }
            "drill" => {
                let sched = Schedule::parse("drill", s.drill.as_deref()?).ok()?;
                next_full_ms(&sched, tenant_id, now_ms)
            }
            "incr" => Some(now_ms + s.incr_secs? * 1000),
            _ => Some(now_ms),
        }
    }

    /// Looks at every run for time `now_ms`: records what ended, starts what is due.
    pub async fn tick(&self, now_ms: u64) -> Result<Vec<Event>> {
        self.refresh(now_ms)?;
        let strategies = self.inner.strategies.lock().clone();
        let mut events = Vec::new();
        let mut changed: Vec<RunState> = Vec::new();
        // Due runs, to start oldest due first within the limit.
        let mut due: Vec<(u64, u64, &'static str, Strategy)> = Vec::new();
        for (tenant_id, s) in &strategies {
            for (kind, text) in runs_of(s) {
                let mut st = {
                    let mut states = self.inner.states.lock();
                    states
                        .entry((*tenant_id, kind.to_string()))
                        .or_insert_with(|| RunState {
                            tenant_id: *tenant_id,
                            kind: kind.to_string(),
                            ..RunState::default()
                        })
                        .clone()
                };
                let before = st.clone();
                if st.schedule != text {
                    st.schedule = text.clone();
                    st.next_due_ms = if kind == "full" && !self.has_full(*tenant_id)? {
                        now_ms
                    } else {
                        self.next_due(*tenant_id, kind, s, now_ms)
                            .unwrap_or(u64::MAX)
                    };
                }
                if kind == "archive" {
                    self.keep_archiving(&mut st, s, now_ms, &mut events).await;
                } else {
                    self.check_finished(&mut st, s, now_ms, &mut events).await;
                    let retry = st.retry_at_ms.is_some_and(|r| now_ms >= r);
                    if now_ms >= st.next_due_ms || retry {
                        due.push((
                            st.retry_at_ms.unwrap_or(st.next_due_ms).min(st.next_due_ms),
                            *tenant_id,
                            kind,
                            s.clone(),
                        ));
                    }
                }
                if st != before {
                    self.inner
                        .states
                        .lock()
                        .insert((*tenant_id, kind.to_string()), st.clone());
                    changed.push(st);
                }
            }
        }
        due.sort_by_key(|(at, id, kind, _)| (*at, *id, *kind));
        // A full backup due with an incremental one of the same tenant supersedes it:
        // the incremental interval counts from the full.
        let full_due: std::collections::HashSet<u64> = due
            .iter()
            .filter(|(_, _, k, _)| *k == "full")
            .map(|(_, id, _, _)| *id)
            .collect();
        due.retain(|(_, id, kind, s)| {
            if *kind != "incr" || !full_due.contains(id) {
                return true;
            }
            let key = (*id, kind.to_string());
            let mut states = self.inner.states.lock();
            let st = states.get_mut(&key).expect("due runs have a state");
            st.next_due_ms = self.next_due(*id, kind, s, now_ms).unwrap_or(u64::MAX);
            st.retry_at_ms = None;
            st.last_outcome = Some(format!(
                "superseded at {} by the full backup due then",
                Ts::from_millis(now_ms).to_rfc3339()
            ));
            changed.push(st.clone());
            false
        });
        let mut running = self
            .inner
            .states
            .lock()
            .values()
            .filter(|s| s.kind != "archive" && s.job.is_some())
            .count();
        for (_, tenant_id, kind, s) in due {
            let key = (tenant_id, kind.to_string());
            let mut st = self.inner.states.lock()[&key].clone();
            if let Some(j) = st.job {
                st.skipped += 1;
                let held_by = format!("job {j} of this schedule is still running");
                self.skip(&mut st, &held_by, s, now_ms, &mut events);
            } else if (kind == "incr" || kind == "drill") && !self.has_full(tenant_id)? {
                // Nothing to continue or restore yet: wait for the first full backup.
                st.next_due_ms = self
                    .next_due(tenant_id, kind, &s, now_ms)
                    .unwrap_or(u64::MAX);
                st.retry_at_ms = None;
            } else if running >= self.inner.limits.max_concurrent_backups {
                // Stays due; starts when a running one ends.
                continue;
            } else {
                match self.start_backup(tenant_id, kind, &s).await {
                    Ok(job) => {
                        running += 1;
                        st.job = Some(job);
                        st.last_started_ms = Some(now_ms);
                        st.next_due_ms = self
                            .next_due(tenant_id, kind, &s, now_ms)
                            .unwrap_or(u64::MAX);
                        st.retry_at_ms = None;
                        tracing::info!(tenant_id, kind, job, "scheduled backup started");
                        events.push(Event::Started {
                            tenant_id,
                            kind: kind.to_string(),
                            job,
                        });
                    }
                    // Another backup of the tenant holds it: the same as an overlap.
                    Err(Error::Jobs(tenet_jobs::Error::Conflict(m))) => {
                        st.skipped += 1;
                        self.skip(&mut st, &m, s, now_ms, &mut events);
                    }
                    Err(e) => {
                        let msg = format!("{e} [{}]", e.code());
                        st.next_due_ms = self
                            .next_due(tenant_id, kind, &s, now_ms)
                            .unwrap_or(u64::MAX);
                        self.failed(&mut st, msg, now_ms, &mut events);
                    }
                }
            }
            self.inner.states.lock().insert(key, st.clone());
            changed.push(st);
        }
        for st in changed {
            save(self.store(), &st)?;
        }
        Ok(events)
    }

    fn skip(
        &self,
        st: &mut RunState,
        held_by: &str,
        s: Strategy,
        now_ms: u64,
        events: &mut Vec<Event>,
    ) {
        tracing::info!(tenant_id = st.tenant_id, kind = %st.kind, held_by, "scheduled backup skipped");
        st.last_outcome = Some(format!(
            "skipped at {}: {held_by}",
            Ts::from_millis(now_ms).to_rfc3339()
        ));
        st.next_due_ms = self
            .next_due(st.tenant_id, &st.kind.clone(), &s, now_ms)
            .unwrap_or(u64::MAX);
        st.retry_at_ms = None;
        events.push(Event::Skipped {
            tenant_id: st.tenant_id,
            kind: st.kind.clone(),
            held_by: held_by.to_string(),
        });
    }

    /// Records a failure: a retry after the next backoff, or a problem.
    fn failed(&self, st: &mut RunState, msg: String, now_ms: u64, events: &mut Vec<Event>) {
        st.failures += 1;
        st.last_outcome = Some(format!("failed: {msg}"));
        match RETRY_AFTER.get(st.failures as usize - 1) {
            Some(wait) => st.retry_at_ms = Some(now_ms + wait.as_millis() as u64),
            None => {
                st.retry_at_ms = None;
                st.problem = Some(format!(
                    "{} scheduled {} run(s) failed in a row; last: {msg}",
                    st.failures, st.kind
                ));
            }
        }
        tracing::warn!(tenant_id = st.tenant_id, kind = %st.kind, error = %msg, failures = st.failures, "scheduled run failed");
        events.push(Event::Failed {
            tenant_id: st.tenant_id,
            kind: st.kind.clone(),
            error: msg,
        });
    }

    async fn start_backup(&self, tenant_id: u64, kind: &str, s: &Strategy) -> Result<u64> {
        let url = s.repo_url(self.store())?;
        let b = &self.inner.backups;
        let job = match kind {
            "full" => b.start_full(tenant_id, &url, None).await?,
            "drill" => b.start_drill(tenant_id, Some(&url), None).await?,
            _ => b.start_incr(tenant_id, Some(&url), None).await?,
        };
        b.jobs().start(job.id)?;
        Ok(job.id)
    }

    /// If the run's job ended: records how, and after a success starts the prune.
    async fn check_finished(
        &self,
        st: &mut RunState,
        s: &Strategy,
        now_ms: u64,
        events: &mut Vec<Event>,
    ) {
        let Some(id) = st.job else { return };
        let job = match self.inner.backups.jobs().get(id) {
            Ok(j) => j,
            // The record is gone: nothing runs it.
            Err(_) => {
                st.job = None;
                return;
            }
        };
        if !job.state.is_final() {
            return;
        }
        st.job = None;
        st.last_job = Some(id);
        if job.state == JobState::Succeeded {
            st.last_outcome = Some("succeeded".into());
            st.last_success_ms = Some(now_ms);
            st.failures = 0;
            st.retry_at_ms = None;
            st.problem = None;
            events.push(Event::Succeeded {
                tenant_id: st.tenant_id,
                kind: st.kind.clone(),
                job: id,
            });
            if let Some(r) = s.retention_policy().filter(|_| st.kind != "drill") {
                match self.start_prune(st.tenant_id, s, r).await {
                    Ok(job) => events.push(Event::Pruning {
                        tenant_id: st.tenant_id,
                        job,
                    }),
                    Err(e) => {
                        tracing::warn!(tenant_id = st.tenant_id, error = %e, "scheduled prune not started")
                    }
                }
            }
        } else {
            let msg = job
                .error
                .map(|e| format!("{} [{}]", e.message, e.code))
                .unwrap_or_else(|| job.state.name().to_string());
            self.failed(st, format!("job {id}: {msg}"), now_ms, events);
        }
    }

    async fn start_prune(
        &self,
        tenant_id: u64,
        s: &Strategy,
        retention: crate::prune::Retention,
    ) -> Result<u64> {
        let rec = self.store().resolve(tenant_id)?;
        let url = s.repo_url(self.store())?;
        let b = &self.inner.backups;
        let job = b
            .start_prune(&Subject::of(&rec), Some(&url), retention, None)
            .await?;
        b.jobs().start(job.id)?;
        Ok(job.id)
    }

    /// Keeps the tenant's archiver running (see the module header).
    async fn keep_archiving(
        &self,
        st: &mut RunState,
        s: &Strategy,
        now_ms: u64,
        events: &mut Vec<Event>,
    ) {
        let a = &self.inner.archivers;
        if a.is_running(st.tenant_id) {
            if st.problem.is_some() || st.failures > 0 {
                st.problem = None;
                st.failures = 0;
                st.retry_at_ms = None;
            }
            return;
        }
        if st.retry_at_ms.is_some_and(|r| now_ms < r)
            || (st.problem.is_some() && st.retry_at_ms.is_none())
        {
            return;
        }
        let state = match archiver::load(self.store(), st.tenant_id) {
            Ok(s) => s,
            Err(e) => {
                self.failed(st, e.to_string(), now_ms, events);
                return;
            }
        };
        if let Some(old) = &state {
            if old.status == ArchiveStatus::Broken {
                st.problem = Some(format!(
                    "the archiver is broken ({}); restart it with `tenet archive start`",
                    old.error.as_deref().unwrap_or("no detail")
                ));
                return;
            }
        }
        let url = match s.repo_url(self.store()) {
            Ok(u) => u,
            Err(e) => {
                self.failed(st, e.to_string(), now_ms, events);
                return;
            }
        };
        let opts = ArchiveOptions {
            interval_ms: s
                .archive_interval_ms
                .unwrap_or(ArchiveOptions::default().interval_ms),
            ..ArchiveOptions::default()
        };
        match a.start(st.tenant_id, &url, opts).await {
            Ok(_) => {
                st.last_started_ms = Some(now_ms);
                st.last_outcome = Some("started".into());
                st.failures = 0;
                st.retry_at_ms = None;
                st.problem = None;
                events.push(Event::ArchiveStarted {
                    tenant_id: st.tenant_id,
                });
            }
            Err(e) => {
                let msg = format!("{e} [{}]", e.code());
                self.failed(st, msg, now_ms, events);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_tenants_on_one_cron_are_spread_over_a_tenth_of_the_period() {
        let cron = Schedule::parse("full", "0 2 * * *").unwrap();
        let midnight = 1_795_564_800_000; // 2026-11-25T00:00:00Z
        let two = midnight + 2 * 3_600_000;
        let mut times: Vec<u64> = (1..=1000)
            .map(|id| next_full_ms(&cron, id, midnight).unwrap())
            .collect();
        times.sort_unstable();
        assert!(times[0] >= two, "none before the cron time");
        assert!(
            *times.last().unwrap() < two + 8_640_000,
            "all within 2.4 h of it"
        );
        // No ten-minute bucket holds more than 10 % of them.
        let mut buckets = std::collections::HashMap::new();
        for t in &times {
            *buckets.entry((t - two) / 600_000).or_insert(0) += 1;
        }
        assert!(buckets.values().all(|n| *n <= 100), "{buckets:?}");
        // The next one of a tenant is a day later, at the same offset.
        let t = next_full_ms(&cron, 7, midnight).unwrap();
        assert_eq!(next_full_ms(&cron, 7, t).unwrap(), t + 86_400_000);
        // Just after 02:00, a tenant whose offset is still ahead runs today.
        let late = times[999];
        let id = (1..=1000)
            .find(|id| next_full_ms(&cron, *id, midnight).unwrap() == late)
            .unwrap();
        assert_eq!(next_full_ms(&cron, id, two + 1).unwrap(), late);
    }
}
