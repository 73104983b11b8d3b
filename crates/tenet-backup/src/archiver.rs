//! Continuous log archiving, one archiver per tenant (ARCHITECTURE §6, §8).
//!
//! An archiver tails its tenant's commit log from a durable checkpoint C (every
//! commit ≤ C is in the repository). Every `interval` it reads the records after C
//! with [`tenet_store::Store::read_log_covered`], which also says up to which ts U the
//! answer is complete, and — if there were records, or if the last segment is older
//! than [`IDLE_CUT`] — uploads the segment `(C, U]` as
//! `tenants/<tenant_id>/log/<C:020>-<U:020>.tls`, then moves its pin to U and persists
//! C = U. A segment is cut early at `segment_max_bytes`.
//!
//! The pin holds the tenant's log after C against GC; no other tenant is touched. A
//! crash between upload and checkpoint re-reads from C, so the next segment overlaps
//! the last one (the planner handles overlaps); nothing is skipped. The state naming a
//! new pin is saved before the old pin is released. If GC ever removed log after C
//! (`log_complete_after`, checked before and after reading), the archiver marks
//! itself `broken` instead of shipping a segment with a hole. If the archiver cannot upload for
//! longer than its budget, it marks itself `broken`, releases its pin (the log is then
//! GC'd by the tenant's retention) and stops; a new full backup restarts the chain.
//!
//! # Where an archive starts
//! A (re)started archive continues from the newest restorable point R of the tenant
//! in its repository ([`Inventory::restorable_until`]: the end of the newest backup
//! chain or archive there), pinned before the log after R is checked to be complete.
//! So `backup full`, then `archive start`, then writes leaves no hole between the
//! backup's F and the start; nor does `archive stop` + `start`. When the repository
//! holds nothing restorable, or the log after R is gone, it starts at the visible ts
//! and `status` says plainly that a full backup is needed.
//!
//! # Status
//! [`Archivers::status`] reports what a restore could reach — the same inventory and
//! planner — and the real RPO: the age of the oldest commit not yet restorable (0 on
//! an idle tenant with nothing to ship), never the age of the last segment.
//!
//! Everything refers to the tenant by id; a rename changes nothing here. State lives
//! in system table [`ARCHIVES_TABLE`], keyed by tenant id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use tenet_jobs::CancelToken;
use tenet_store::keys::{pk_bytes, KeyValue};
use tenet_store::{decode_system_row, encode_system_row, PinRecord, Store, Ts, ARCHIVES_TABLE};

use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::repo::Repo;
use crate::segment::SegmentWriter;
use crate::util::{blocking, now};

/// An idle tenant still gets a (record-less) segment this often, so its restorable
/// range keeps up with the clock.
pub const IDLE_CUT: Duration = Duration::from_secs(30);
/// Records read from the log per step.
const READ_BATCH: usize = 4096;

/// Lifecycle of an archiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveStatus {
    Running,
    Stopped,
    /// Could not upload within its budget; its pin was released.
    Broken,
}

/// Settings of an archiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveOptions {
    pub interval_ms: u64,
    pub segment_max_bytes: u64,
    /// How long uploads may fail before the archiver gives up its pin.
    pub budget_secs: u64,
}

/// How often an archiver cuts a segment: 10 ms to 1 hour.
pub const INTERVAL_MS_RANGE: (u64, u64) = (10, 3_600_000);
/// Size at which a segment is cut early: 4 KiB to 1 GiB.
pub const SEGMENT_MAX_BYTES_RANGE: (u64, u64) = (4 << 10, 1 << 30);
/// How long uploads may fail before the archiver gives up: 0 (at once) to 30 days.
pub const BUDGET_SECS_RANGE: (u64, u64) = (0, 30 * 24 * 3600);

impl ArchiveOptions {
    /// Refuses settings out of their ranges, naming the range.
    pub fn validate(&self) -> Result<()> {
        let check = |what: &str, v: u64, (lo, hi): (u64, u64)| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(Error::InvalidArgument(format!(
                    "{what} {v} is out of range; use {lo} to {hi}"
                )))
            }
        };
        check("interval_ms", self.interval_ms, INTERVAL_MS_RANGE)?;
        check(
            "segment_max_bytes",
            self.segment_max_bytes,
            SEGMENT_MAX_BYTES_RANGE,
        )?;
        check("budget_secs", self.budget_secs, BUDGET_SECS_RANGE)
    }
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            interval_ms: 1000,
            segment_max_bytes: 64 << 20,
            budget_secs: 3600,
        }
    }
}

/// The persisted state of a tenant's archiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveState {
    pub tenant_id: u64,
    /// The tenant's name when the archiver started (for messages about a dropped
    /// tenant; everything else goes by `tenant_id`).
    pub tenant: String,
    pub repo: String,
    pub status: ArchiveStatus,
    /// Every commit ≤ this is in the repository.
    pub checkpoint: Ts,
    pub pin_id: Option<u64>,
    pub options: ArchiveOptions,
    pub segments: u64,
    pub records: u64,
    pub bytes: u64,
    /// Clock millis of the last successful upload (0: none yet).
    pub last_upload_millis: u64,
    pub error: Option<String>,
    pub started_at: String,
    /// The history it archives into (`tenants/<id>/log/`; None: the tenant's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_id: Option<u64>,
}

impl ArchiveState {
    /// The tenant id the repository files the archive under.
    pub fn repo_id(&self) -> u64 {
        self.history_id.unwrap_or(self.tenant_id)
    }
}

fn no_archiver(name: &str) -> Error {
    Error::InvalidArgument(format!(
        "tenant `{name}` has no archiver; start one with `tenet archive start {name}`"
    ))
}

/// What is protected of a tenant in one repository, computed from its [`Inventory`] —
/// the planner's inputs, so "restorable up to T" is exactly what a restore can reach.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Protection {
    /// The newest restorable point (None: nothing is restorable).
    pub restorable_until: Option<Ts>,
    /// The real RPO: how far back a disaster now would lose commits, i.e. the age of
    /// the oldest commit after `restorable_until` (0 when every commit is restorable;
    /// None when nothing is).
    pub rpo_ms: Option<u64>,
}

impl Protection {
    pub fn of(store: &Store, tenant_id: u64, inventory: &Inventory) -> Result<Protection> {
        Self::at(store, tenant_id, inventory.restorable_until())
    }

    /// The protection now of a tenant restorable up to `restorable_until`.
    pub fn at(store: &Store, tenant_id: u64, restorable_until: Option<Ts>) -> Result<Protection> {
        let Some(r) = restorable_until else {
            return Ok(Protection {
                restorable_until: None,
                rpo_ms: None,
            });
        };
        let now = store.clock().now_millis();
        // If GC removed log after R, commits older than any still in the log are lost
        // too: the RPO is at least the age of R itself.
        let rpo_ms = if store.log_complete_after(tenant_id)? > r {
            now.saturating_sub(r.millis())
        } else {
            match store.read_log_raw_covered(tenant_id, r, 1)?.0.first() {
                None => 0,
                Some((ts, _)) => now.saturating_sub(ts.millis()),
            }
        };
        Ok(Protection {
            restorable_until: Some(r),
            rpo_ms: Some(rpo_ms),
        })
    }
}

/// `archive status`: the archiver's state and what it protects.
#[derive(Clone, Debug)]
pub struct ArchiveReport {
    /// The tenant's current name.
    pub tenant: String,
    pub state: ArchiveState,
    /// Whether it runs in this process.
    pub running: bool,
    pub protection: Protection,
    /// What is wrong, in words, with the way out (None: all is well).
    pub problem: Option<String>,
}

fn pin_owner(tenant_id: u64) -> String {
    format!("archiver of tenant {tenant_id}")
}

fn key(tenant_id: u64) -> Vec<u8> {
    pk_bytes(&[KeyValue::Int(tenant_id as i64)])
}

fn save(store: &Store, st: &ArchiveState) -> Result<()> {
    store.system_put(
        ARCHIVES_TABLE,
        &key(st.tenant_id),
        Some(&encode_system_row(st)),
    )?;
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<ArchiveState> {
    Ok(decode_system_row("archiver state", bytes)?)
}

/// The archiver state of a tenant, if it ever had one.
pub fn load(store: &Store, tenant_id: u64) -> Result<Option<ArchiveState>> {
    store
        .system_get(ARCHIVES_TABLE, &key(tenant_id))?
        .map(|b| decode(&b))
        .transpose()
}

/// Every archiver state this store holds (of live and dropped tenants).
pub fn all(store: &Store) -> Result<Vec<ArchiveState>> {
    store
        .system_scan(ARCHIVES_TABLE)?
        .into_iter()
        .map(|(_, v)| decode(&v))
        .collect()
}

/// One archiver task of this process.
#[derive(Clone)]
struct Running {
    cancel: CancelToken,
    /// Held while the task moves its pin and saves its state, and by `stop`, so a
    /// stop never races a step.
    lock: Arc<Mutex<()>>,
    /// Tells this task's entry from a later one for the same tenant.
    generation: u64,
    /// Wakes the task for a cut now ([`Archivers::flush`]).
    nudge: Arc<tokio::sync::Notify>,
    /// The next step uploads a segment even if it holds no record.
    force: Arc<std::sync::atomic::AtomicBool>,
}

static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The archivers running in this process.
#[derive(Clone)]
pub struct Archivers {
    store: Store,
    runtime: tokio::runtime::Handle,
    running: Arc<Mutex<HashMap<u64, Running>>>,
}

impl std::fmt::Debug for Archivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archivers").finish()
    }
}

impl Archivers {
    pub fn new(store: Store, runtime: tokio::runtime::Handle) -> Self {
        Archivers {
            store,
            runtime,
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Starts archiving tenant `tenant_id` into `repo`, refused while its archiver runs.
    ///
    /// The archive continues from the newest restorable point R of the tenant in that
    /// repository (the end of its newest backup chain, or of the archive there), so
    /// that a full backup taken before the archive started stays rolled forward with
    /// no gap — as long as the store still holds the log after R. Otherwise (nothing
    /// restorable in that repository, or the log after R was garbage-collected) it
    /// starts at the visible ts, and [`Archivers::status`] reports that nothing after
    /// the repository's newest point is restorable until a full backup is taken.
    pub async fn start(
        &self,
        tenant_id: u64,
        repo: &str,
        options: ArchiveOptions,
    ) -> Result<ArchiveState> {
        options.validate()?;
        let rec = self.store.resolve(tenant_id)?;
        if self.running.lock().contains_key(&rec.id) {
            return Err(Error::InvalidArgument(format!(
                "the archiver of tenant `{}` is already running; stop it first",
                rec.name
            )));
        }
        if rec.state == tenet_store::TenantState::Standby {
            return Err(Error::InvalidArgument(format!(
                "tenant `{}` is a standby: its source's archive is its history; promote it \
                 to archive its own commits",
                rec.name
            )));
        }
        let repo = Repo::create(repo)?;
        repo.check(&now(&self.store)).await?;
        let history = rec.history_ref();
        crate::standby::claim_primary(&repo, &self.store, &rec, false).await?;
        let inventory = Inventory::load(&repo, history.id)
            .await?
            .of_incarnation(Some(history.created_ts));
        let (start, pin) = self.start_point(rec.id, inventory.restorable_until())?;
        if let Some(old) = load(&self.store, rec.id)? {
            if let Some(p) = old.pin_id {
                self.store.unpin(rec.id, p)?;
            }
        }
        let st = ArchiveState {
            tenant_id: rec.id,
            tenant: rec.name.clone(),
            repo: repo.url().to_string(),
            status: ArchiveStatus::Running,
            checkpoint: start,
            pin_id: Some(pin.id),
            options,
            segments: 0,
            records: 0,
            bytes: 0,
            last_upload_millis: self.store.clock().now_millis(),
            error: None,
            started_at: now(&self.store),
            history_id: (history.id != rec.id).then_some(history.id),
        };
        save(&self.store, &st)?;
        self.spawn(st.clone(), repo);
        Ok(st)
    }

    /// Where a starting archive begins, pinned: at `restorable` if the store still
    /// holds the log after it, else at the visible ts.
    fn start_point(&self, tenant_id: u64, restorable: Option<Ts>) -> Result<(Ts, PinRecord)> {
        let owner = pin_owner(tenant_id);
        if let Some(r) = restorable.filter(|r| *r <= self.store.visible_ts()) {
            match self.store.pin(tenant_id, r, &owner) {
                // Pinned first, then checked: GC cannot delete log after a pinned ts.
                Ok(pin) if self.store.log_complete_after(tenant_id)? <= r => return Ok((r, pin)),
                Ok(pin) => self.store.unpin(tenant_id, pin.id)?,
                Err(tenet_store::Error::TooOld { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let start = self.store.tenant_visible_ts(tenant_id);
        Ok((start, self.store.pin(tenant_id, start, &owner)?))
    }

    fn spawn(&self, mut st: ArchiveState, repo: Repo) {
        // The state is saved before an old pin is released, so a pin of ours that the
        // state does not name is one a crash left behind.
        let owner = pin_owner(st.tenant_id);
        if let Ok(pins) = self.store.pins(st.tenant_id) {
            for p in pins {
                if p.owner == owner && Some(p.id) != st.pin_id {
                    let _ = self.store.unpin(st.tenant_id, p.id);
                }
            }
        }
        // Time the process was down does not count against the upload budget.
        st.last_upload_millis = self.store.clock().now_millis();
        let me = Running {
            cancel: CancelToken::new(),
            lock: Arc::new(Mutex::new(())),
            generation: GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            nudge: Arc::new(tokio::sync::Notify::new()),
            force: Arc::default(),
        };
        self.running.lock().insert(st.tenant_id, me.clone());
        let (store, running) = (self.store.clone(), self.running.clone());
        self.runtime.spawn(async move {
            let id = st.tenant_id;
            if let Err(e) = run(&store, st, &repo, &me).await {
                tracing::error!(tenant_id = id, error = %e, "archiver stopped");
            }
            let mut map = running.lock();
            if map.get(&id).is_some_and(|r| r.generation == me.generation) {
                map.remove(&id);
            }
        });
    }

    /// Waits until everything the tenant committed up to `upto` is in the repository,
    /// cutting a segment at once instead of at the next tick (a switchover's final
    /// segment). Fails if the archiver is not running or breaks, or after `timeout`.
    pub async fn flush(&self, tenant_id: u64, upto: Ts, timeout: Duration) -> Result<Ts> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let st = load(&self.store, tenant_id)?
                .ok_or_else(|| no_archiver(&format!("#{tenant_id}")))?;
            if st.checkpoint >= upto {
                return Ok(st.checkpoint);
            }
            let task = self.running.lock().get(&tenant_id).cloned();
            let Some(task) = task.filter(|_| st.status == ArchiveStatus::Running) else {
                return Err(Error::InvalidArgument(format!(
                    "the archiver of tenant #{tenant_id} is not running here ({:?}{}); its \
                     log up to {upto} cannot be archived",
                    st.status,
                    st.error.map(|e| format!(": {e}")).unwrap_or_default()
                )));
            };
            if std::time::Instant::now() >= deadline {
                return Err(Error::InvalidArgument(format!(
                    "the archiver of tenant #{tenant_id} did not ship its log up to {upto} \
                     within {} s (it is at {}{})",
                    timeout.as_secs(),
                    st.checkpoint,
                    st.error.map(|e| format!("; {e}")).unwrap_or_default()
                )));
            }
            task.force.store(true, std::sync::atomic::Ordering::Release);
            task.nudge.notify_one();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// At a clean shutdown: ships what every running archiver has not shipped yet
    /// (each within `timeout`), so that a standby elsewhere can take over with
    /// nothing lost. Returns the tenants it could not ship.
    pub async fn flush_all(&self, timeout: Duration) -> Vec<u64> {
        let ids: Vec<u64> = self.running.lock().keys().copied().collect();
        let mut failed = Vec::new();
        for id in ids {
            let upto = self.store.tenant_visible_ts(id);
            if let Err(e) = self.flush(id, upto, timeout).await {
                tracing::warn!(tenant_id = id, error = %e, "last commits not archived at shutdown");
                failed.push(id);
            }
        }
        failed
    }

    /// Stops a tenant's archiver and releases its pin; what is archived stays.
    pub fn stop(&self, tenant_id: u64) -> Result<ArchiveState> {
        let rec = self.store.resolve(tenant_id)?;
        let task = self.running.lock().remove(&rec.id);
        let _guard = task.as_ref().map(|t| {
            t.cancel.cancel();
            t.lock.lock()
        });
        // Read the state after the task's last step (it may have moved the pin).
        let mut st = load(&self.store, rec.id)?.ok_or_else(|| no_archiver(&rec.name))?;
        if let Some(p) = st.pin_id.take() {
            self.store.unpin(rec.id, p)?;
        }
        if st.status == ArchiveStatus::Running {
            st.status = ArchiveStatus::Stopped;
        }
        save(&self.store, &st)?;
        Ok(st)
    }

    /// A tenant's archiver state as persisted (cheap: no repository access).
    pub fn state(&self, tenant_id: u64) -> Result<ArchiveState> {
        let rec = self.store.resolve(tenant_id)?;
        load(&self.store, rec.id)?.ok_or_else(|| no_archiver(&rec.name))
    }

    /// A tenant's archiver state and what is restorable (see [`ArchiveReport`]).
    pub async fn status(&self, tenant_id: u64) -> Result<ArchiveReport> {
        let rec = self.store.resolve(tenant_id)?;
        let state = load(&self.store, rec.id)?.ok_or_else(|| no_archiver(&rec.name))?;
        // An unreadable repository is a problem to report with the state, not an error
        // that hides the state (it is the usual reason an archiver breaks).
        let (repo, inventory) = match Repo::open(&state.repo) {
            Ok(repo) => {
                let inv = Inventory::load(&repo, state.repo_id()).await;
                (Some(repo), inv)
            }
            Err(e) => (None, Err(e)),
        };
        // Another tenant took the history over (a failover): what it holds is not
        // this tenant's, and nothing this tenant commits is archived.
        let me = self.store.store_id()?;
        let taken = match &repo {
            Some(repo) => crate::standby::read_primary(repo, state.repo_id())
                .await
                .ok()
                .flatten()
                .filter(|p| p.store_id != me || p.tenant_id != rec.id),
            None => None,
        };
        if let Some(p) =
            taken.filter(|p| !p.demoted && rec.state != tenet_store::TenantState::Standby)
        {
            return Ok(ArchiveReport {
                running: self.is_running(rec.id),
                problem: Some(format!(
                    "tenant `{}` no longer writes its history: tenant `{}` (#{}) of store {} \
                     took it over on {} (a standby was promoted). Its commits since {} are in \
                     no archive; stop writing to it (`tenet tenant set {} --state \
                     read_only`) or drop it",
                    rec.name,
                    p.tenant,
                    p.tenant_id,
                    p.store_id,
                    p.since,
                    state.checkpoint.to_rfc3339(),
                    rec.name
                )),
                tenant: rec.name,
                state,
                protection: Protection::default(),
            });
        }
        let (protection, unreadable) = match inventory {
            Ok(inv) => (
                Protection::of(
                    &self.store,
                    rec.id,
                    &inv.of_incarnation(Some(rec.history_ref().created_ts)),
                )?,
                None,
            ),
            Err(e) => (Protection::default(), Some(e)),
        };
        let running = self.is_running(rec.id);
        let problem = match (&protection.restorable_until, state.status) {
            _ if unreadable.is_some() => Some(format!(
                "cannot read the repository {}, so what is restorable is unknown: {}",
                state.repo,
                unreadable.as_ref().expect("matched")
            )),
            (_, ArchiveStatus::Broken) => Some(format!(
                "the archiver is broken ({}); start it again with `tenet archive start {}`",
                state.error.as_deref().unwrap_or("no detail"),
                rec.name
            )),
            (None, _) => Some(format!(
                "nothing of tenant `{}` is restorable from {}: it holds no full backup of \
                 it; take one with `tenet backup full {} --repo {}`",
                rec.name, state.repo, rec.name, state.repo
            )),
            (Some(r), _) if *r < state.checkpoint => Some(format!(
                "the archive holds commits up to {} but only {} is restorable: the log \
                 between is not in {}; take a full backup (`tenet backup full {} --repo {}`)",
                state.checkpoint.to_rfc3339(),
                r.to_rfc3339(),
                state.repo,
                rec.name,
                state.repo
            )),
            (_, ArchiveStatus::Running) if !running => Some(
                "the archiver should be running but is not running in this process; start \
                 `tenet serve` on this data directory"
                    .to_string(),
            ),
            _ => None,
        };
        Ok(ArchiveReport {
            running,
            tenant: rec.name,
            state,
            protection,
            problem,
        })
    }

    /// Starts the archivers that were running when the process stopped.
    pub fn resume_all(&self) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        for mut st in all(&self.store)? {
            if st.status != ArchiveStatus::Running
                || self.store.tenant_by_id(st.tenant_id).is_none()
            {
                continue;
            }
            match Repo::open(&st.repo) {
                Ok(repo) => {
                    ids.push(st.tenant_id);
                    self.spawn(st, repo);
                }
                // One unusable repository (an unmounted disk, missing credentials) must
                // not keep the server, or the other archivers, from starting.
                Err(e) => {
                    tracing::error!(tenant_id = st.tenant_id, error = %e, "archiver not resumed");
                    st.error = Some(format!("not resumed: {e}"));
                    save(&self.store, &st)?;
                }
            }
        }
        Ok(ids)
    }

    /// Whether the tenant's archiver runs in this process.
    pub fn is_running(&self, tenant_id: u64) -> bool {
        self.running.lock().contains_key(&tenant_id)
    }
}

/// The archiver loop of one tenant.
async fn run(store: &Store, mut st: ArchiveState, repo: &Repo, me: &Running) -> Result<()> {
    let interval = Duration::from_millis(st.options.interval_ms);
    // Fixed-rate ticks: a slow step does not push the next cut later.
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = me.nudge.notified() => {}
            _ = me.cancel.cancelled() => return Ok(()),
        }
        let Err(e) = step(store, &mut st, repo, me).await else {
            continue;
        };
        let _guard = me.lock.lock();
        if me.cancel.is_cancelled() {
            return Ok(());
        }
        let now_ms = store.clock().now_millis();
        st.error = Some(e.to_string());
        // A hole in the log can never be archived, nor a history another tenant now
        // writes: give up at once.
        let hole = matches!(e, Error::NotRestorable(_) | Error::NotPrimary(_));
        if hole || now_ms.saturating_sub(st.last_upload_millis) > st.options.budget_secs * 1000 {
            st.status = ArchiveStatus::Broken;
            let pin = st.pin_id.take();
            save(store, &st)?;
            if let Some(p) = pin {
                let _ = store.unpin(st.tenant_id, p);
            }
            tracing::error!(tenant_id = st.tenant_id, "archiver broken: {e}");
            return Ok(());
        }
        save(store, &st)?;
    }
}

fn check_log(store: &Store, st: &ArchiveState) -> Result<()> {
    let floor = store.log_complete_after(st.tenant_id)?;
    if floor > st.checkpoint {
        return Err(Error::NotRestorable(format!(
            "the log of tenant `{}` after the archive's checkpoint {} was garbage-collected \
             (complete only after {}); restart the archiver and take a full backup",
            store
                .tenant_by_id(st.tenant_id)
                .map_or_else(|| format!("#{}", st.tenant_id), |t| t.name),
            st.checkpoint.to_rfc3339(),
            floor.to_rfc3339()
        )));
    }
    Ok(())
}

/// Archives what is new, if anything; persists the new checkpoint.
async fn step(store: &Store, st: &mut ArchiveState, repo: &Repo, me: &Running) -> Result<()> {
    let (tenant_id, from, max_bytes) = (st.tenant_id, st.checkpoint, st.options.segment_max_bytes);
    check_log(store, st)?;
    let s2 = store.clone();
    let (seg, info) = blocking(move || {
        let mut w = SegmentWriter::new(from);
        let mut at = from;
        loop {
            let (recs, covered) = s2.read_log_raw_covered(tenant_id, at, READ_BATCH)?;
            for (ts, bytes) in &recs {
                w.add_encoded(*ts, bytes)?;
            }
            at = covered;
            if recs.len() < READ_BATCH || w.raw_len() as u64 >= max_bytes {
                break;
            }
        }
        let recs = w.records();
        Ok((w.finish(at)?, recs))
    })
    .await?;
    // Nothing the reads returned can have been missing (GC only deletes below the cut).
    check_log(store, st)?;
    let ((bytes, seg_info), records) = (seg, info);
    let idle_due = me.force.swap(false, std::sync::atomic::Ordering::AcqRel)
        || store
            .clock()
            .now_millis()
            .saturating_sub(st.last_upload_millis)
            >= IDLE_CUT.as_millis() as u64;
    if seg_info.end <= st.checkpoint || (records == 0 && !idle_due) {
        return Ok(());
    }
    crate::standby::check_primary(repo, store, st.repo_id(), tenant_id).await?;
    let key = crate::repo::segment_key(st.repo_id(), seg_info.start, seg_info.end);
    let bytes = crate::keys::seal_object(store, repo, &key, bytes).await?;
    let size = bytes.len() as u64;
    repo.put(&key, Bytes::from(bytes)).await?;

    let _guard = me.lock.lock();
    if me.cancel.is_cancelled() {
        return Ok(());
    }
    // Pin the new checkpoint, save the state naming it, then release the old pin. If
    // the new ts is already below the safe point (the archiver lagged past the
    // retention), the old pin keeps holding the log and is kept.
    let old = st.pin_id;
    match store.pin(tenant_id, seg_info.end, &pin_owner(tenant_id)) {
        Ok(pin) => st.pin_id = Some(pin.id),
        Err(tenet_store::Error::TooOld { .. }) if old.is_some() => {}
        Err(e) => return Err(e.into()),
    }
    st.checkpoint = seg_info.end;
    st.segments += 1;
    st.records += records;
    st.bytes += size;
    st.last_upload_millis = store.clock().now_millis();
    st.error = None;
    save(store, st)?;
    if let Some(old) = old.filter(|o| Some(*o) != st.pin_id) {
        store.unpin(tenant_id, old)?;
    }
    Ok(())
}
