//! Standby tenants: a tenant restored from its source's newest full backup and
//! archived log that keeps applying the source's new archived segments as they appear
//! in the repository, readable but not writable, until it is promoted.
//!
//! # Overview
//! - **Create**: `restore --standby` is a restore job ([`crate::restore`]) whose last
//!   step, instead of activating the tenant, makes it a `standby`
//!   ([`tenet_store::Store::begin_standby`]) and records a follower row in system table
//!   [`STANDBYS_TABLE`] (keyed by the standby's id). The standby continues its
//!   source's *history* ([`tenet_store::HistoryRef`]): the repository directory
//!   `tenants/<source id>/`, which it reads now and — once promoted — writes.
//! - **Follow**: [`Standbys`] runs one follower task per standby row. Every poll
//!   interval it lists the history's log directory *after* the newest applied segment
//!   (S3 `start-after`: the cost is what is new, not the archive's length), chains
//!   the segments from the applied ts with the planner's [`cover`], and applies them
//!   with the shared log applier ([`crate::apply`]) in `follow` mode: each segment's
//!   records and the new applied ts go into the store in one synced write
//!   ([`tenet_store::Store::follow_log`]). A failed step is recorded in the row
//!   (`error`) and retried at the next poll.
//! - **Read**: reads of a standby see its state at the applied ts and never past it
//!   (the store caps them), so time travel at any applied ts equals the source's.
//! - **Promote** ([`Standbys::promote`]): stop the follower; at the end of the archive,
//!   claim the history (below) *before* the last listing, so a source still uploading
//!   stops; apply up to exactly the target (or everything archived), check the chain
//!   has no hole, make the tenant `active`, take the name, drop the follower row (last:
//!   a tenant without one is wholly promoted, and promoting it again finishes what a
//!   crash left). A promotion at the end of the archive continues the source's history,
//!   so the tenant's restore points continue the source's; one at an earlier T forks:
//!   the tenant starts a history of its own. [`Standbys::promote_and_archive`] then
//!   starts its archiver. `standby pause` stops a follower persistently, so a standby
//!   can be promoted at a T it has not passed.
//!
//! # Who writes a history
//! A history has one writer at a time, named by the object `tenants/<id>/primary`
//! ([`Primary`]: store id, tenant id, epoch, and whether it was demoted). An archiver
//! claims it when it starts (refused if another live tenant holds it) and checks it
//! before every upload; a promotion takes it over with the next epoch. So after a
//! failover, the old primary — should it come back — stops archiving with
//! `NOT_PRIMARY` instead of writing a second, diverging log into the same history.
//!
//! # Crash consistency
//! The applied ts lives in the store, written with the data it covers; the row holds
//! only where listings start and counters. A follower killed at any point resumes
//! after the applied ts and applies no commit twice and none never.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use tenet_jobs::CancelToken;
use tenet_store::keys::{pk_bytes, KeyValue};
use tenet_store::{
    decode_system_row, encode_system_row, HistoryRef, Store, TenantRecord, TenantState, Ts,
    STANDBYS_TABLE,
};

use crate::apply::{Applied, ApplySink, LogApply};
use crate::error::{Error, Result};
use crate::inventory::archived_segments;
use crate::planner::{cover, LogRange};
use crate::repo::{Repo, TENANTS_DIR};
use crate::util::now;

/// How often a follower lists the repository for new segments, by default.
pub const DEFAULT_POLL: Duration = Duration::from_millis(250);
/// A source whose archive advanced more recently than this looks alive (an idle
/// archiver still cuts a segment every [`crate::archiver::IDLE_CUT`]).
pub const ALIVE_WITHIN: Duration = Duration::from_secs(65);
/// A follower not running this soon after its standby was made is not a problem yet
/// (the supervisor starts it within a poll).
const START_GRACE: Duration = Duration::from_secs(3);

/// What a restore into a standby adds to a restore job.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct StandbyParams {
    /// The source's history, which the standby follows and continues.
    pub history: HistoryRef,
    pub poll_ms: u64,
}

/// The persisted state of a standby's follower.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandbyState {
    pub tenant_id: u64,
    /// The source's name at the restore (for messages).
    pub source: String,
    pub history: HistoryRef,
    pub repo: String,
    pub poll_ms: u64,
    /// Start of the newest applied segment: listings begin at its key.
    pub list_from: Ts,
    pub segments: u64,
    pub records: u64,
    /// The end of the source's archive when last listed.
    pub archived_until: Ts,
    /// Clock millis when the archive was last seen to advance.
    pub archive_advanced_millis: u64,
    pub error: Option<String>,
    pub started_at: String,
    /// Paused by hand: it applies nothing until resumed (to promote at an earlier T).
    #[serde(default)]
    pub paused: bool,
}

impl StandbyState {
    /// A follower of `history` in `repo` that has applied it through `from`.
    pub fn following(
        store: &Store,
        tenant_id: u64,
        source: &str,
        history: HistoryRef,
        repo: &str,
        from: Ts,
        poll_ms: u64,
    ) -> StandbyState {
        StandbyState {
            tenant_id,
            source: source.to_string(),
            history,
            repo: repo.to_string(),
            poll_ms,
            list_from: from,
            segments: 0,
            records: 0,
            archived_until: from,
            archive_advanced_millis: store.clock().now_millis(),
            error: None,
            started_at: now(store),
            paused: false,
        }
    }
}

fn key(tenant_id: u64) -> Vec<u8> {
    pk_bytes(&[KeyValue::Int(tenant_id as i64)])
}

fn save(store: &Store, st: &StandbyState) -> Result<()> {
    store.system_put(
        STANDBYS_TABLE,
        &key(st.tenant_id),
        Some(&encode_system_row(st)),
    )?;
    Ok(())
}

/// A standby's follower state, if the tenant is a standby.
pub fn load(store: &Store, tenant_id: u64) -> Result<Option<StandbyState>> {
    store
        .system_get(STANDBYS_TABLE, &key(tenant_id))?
        .map(|v| Ok(decode_system_row("standby state", &v)?))
        .transpose()
}

/// Every standby's follower state.
pub fn all(store: &Store) -> Result<Vec<StandbyState>> {
    store
        .system_scan(STANDBYS_TABLE)?
        .into_iter()
        .map(|(_, v)| Ok(decode_system_row("standby state", &v)?))
        .collect()
}

/// Records a new standby (a standby restore's last step, a switchover's demotion).
pub fn register(store: &Store, st: &StandbyState) -> Result<()> {
    save(store, st)
}

/// Removes a standby's follower row (it was promoted, or a demotion was undone).
pub fn forget(store: &Store, tenant_id: u64) -> Result<()> {
    store.system_put(STANDBYS_TABLE, &key(tenant_id), None)?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// Who writes a history.

const PRIMARY_FORMAT: u32 = 1;

/// The object `tenants/<id>/primary`: the tenant that writes the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Primary {
    pub format: u32,
    pub store_id: String,
    pub tenant_id: u64,
    pub tenant: String,
    pub epoch: u64,
    /// Since when (clock time).
    pub since: String,
    /// It stepped down (the old primary of a switchover) and follows the history.
    #[serde(default)]
    pub demoted: bool,
}

fn primary_key(history_id: u64) -> String {
    format!("{TENANTS_DIR}{history_id}/primary")
}

/// Reads a history's primary record (None: no archiver has claimed it yet).
pub async fn read_primary(repo: &Repo, history_id: u64) -> Result<Option<Primary>> {
    let key = primary_key(history_id);
    let Some(bytes) = repo.get_opt(&key).await? else {
        return Ok(None);
    };
    let p: Primary = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        object: repo.describe(&key),
        reason: format!("not a primary record: {e}"),
    })?;
    if p.format != PRIMARY_FORMAT {
        return Err(Error::UnsupportedVersion {
            object: repo.describe(&key),
            found: p.format.to_string(),
            supported: PRIMARY_FORMAT.to_string(),
        });
    }
    Ok(Some(p))
}

fn is_me(p: &Primary, store_id: &str, tenant_id: u64) -> bool {
    p.store_id == store_id && p.tenant_id == tenant_id
}

async fn write_primary(repo: &Repo, history_id: u64, p: &Primary) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(p).expect("primary records serialize");
    repo.put(&primary_key(history_id), Bytes::from(bytes)).await
}

pub(crate) fn describe_primary(p: &Primary) -> String {
    format!(
        "tenant `{}` (#{}) of store {} since {}",
        p.tenant, p.tenant_id, p.store_id, p.since
    )
}

/// Claims `rec`'s history for it (an archiver starting, or with `takeover` a
/// promotion). Without `takeover`, refused while another tenant holds it and has not
/// stepped down.
pub async fn claim_primary(
    repo: &Repo,
    store: &Store,
    rec: &TenantRecord,
    takeover: bool,
) -> Result<Primary> {
    let history = rec.history_ref();
    let store_id = store.store_id()?;
    let current = read_primary(repo, history.id).await?;
    if let Some(p) = &current {
        if is_me(p, &store_id, rec.id) && !p.demoted {
            return Ok(p.clone());
        }
        if !takeover && !p.demoted {
            return Err(Error::NotPrimary(format!(
                "{} holds `tenants/{}/` in {} (the history tenant `{}` would archive into); \
                 a tenant of another store with the same id, or a promoted standby of it, \
                 writes there. Archive this tenant into another repository",
                describe_primary(p),
                history.id,
                repo.url(),
                rec.name
            )));
        }
    }
    let next = Primary {
        format: PRIMARY_FORMAT,
        store_id,
        tenant_id: rec.id,
        tenant: rec.name.clone(),
        epoch: current.map_or(1, |p| p.epoch + 1),
        since: now(store),
        demoted: false,
    };
    write_primary(repo, history.id, &next).await?;
    Ok(next)
}

/// Refuses an archiver's upload when its tenant no longer holds the history.
pub(crate) async fn check_primary(
    repo: &Repo,
    store: &Store,
    history_id: u64,
    tenant_id: u64,
) -> Result<()> {
    match read_primary(repo, history_id).await? {
        Some(p) if !is_me(&p, &store.store_id()?, tenant_id) || p.demoted => {
            Err(Error::NotPrimary(format!(
                "this tenant no longer writes its history: {} took it over (a standby was \
                 promoted){}; nothing more is archived from here",
                describe_primary(&p),
                if p.demoted { " and stepped down" } else { "" }
            )))
        }
        // Renamed since it claimed the history: the record shows the current name
        // (standbys elsewhere name their source by it).
        Some(mut p) => {
            if let Some(rec) = store.tenant_by_id(tenant_id).filter(|r| r.name != p.tenant) {
                p.tenant = rec.name;
                write_primary(repo, history_id, &p).await?;
            }
            Ok(())
        }
        None => Ok(()),
    }
}

/// Marks the history's primary as stepped down (the old primary of a switchover).
pub async fn step_down(repo: &Repo, store: &Store, rec: &TenantRecord) -> Result<()> {
    let history = rec.history_ref();
    if let Some(p) = read_primary(repo, history.id).await? {
        if is_me(&p, &store.store_id()?, rec.id) && p.demoted {
            return Ok(());
        }
    }
    let mut p = claim_primary(repo, store, rec, false).await?;
    p.demoted = true;
    write_primary(repo, history.id, &p).await
}

// ---------------------------------------------------------------------------------
// Following.

/// The source's archived segments after `list_from`, chained from `applied`: the
/// ranges to apply and the end of the contiguous archive.
async fn pending(
    repo: &Repo,
    history_id: u64,
    list_from: Ts,
    applied: Ts,
) -> Result<(Vec<LogRange>, Ts, Option<Ts>)> {
    // Every segment not yet applied starts at or after the newest applied one's start
    // (an archiver's checkpoint never goes back), so the listing starts there.
    let ranges = archived_segments(repo, history_id, Some(list_from)).await?;
    let (used, reached) = cover(applied, Ts::MAX, &ranges);
    // Segments past a hole: the archive continues, but not from here.
    let beyond = ranges.iter().map(|l| l.end).max().filter(|e| *e > reached);
    Ok((used, reached, beyond))
}

/// Progress of a follower as the log applier reports it.
struct FollowSink;

impl ApplySink for FollowSink {
    async fn throttle(&self, _bytes: u64) -> Result<()> {
        Ok(())
    }

    fn applied(&self, _: Ts, _: u64, _: u64, _: u64) -> Result<()> {
        // The store persisted the applied ts with the records (`follow_log`).
        Ok(())
    }

    fn mapping_changed(&self, _: &BTreeMap<u64, u64>) -> Result<()> {
        Ok(())
    }
}

/// Applies the source's archived log to the standby up to `until` (or everything
/// archived); updates and saves `st`. Returns the applied ts.
async fn catch_up(
    store: &Store,
    repo: &Repo,
    st: &mut StandbyState,
    until: Ts,
    cancel: &CancelToken,
) -> Result<Ts> {
    let applied = store.standby_applied(st.tenant_id).unwrap_or(Ts::ZERO);
    let (used, reached, _) = pending(repo, st.history.id, st.list_from, applied).await?;
    let now_ms = store.clock().now_millis();
    if reached > st.archived_until {
        st.archived_until = reached;
        st.archive_advanced_millis = now_ms;
    }
    let used: Vec<LogRange> = used.into_iter().filter(|l| l.start < until).collect();
    if used.is_empty() {
        return Ok(applied);
    }
    let apply = LogApply {
        store,
        repo,
        source_tenant_id: st.history.id,
        target_id: st.tenant_id,
        identity: true,
        follow: true,
        cancel,
    };
    let from = Applied {
        ts: applied,
        records: st.records,
    };
    let (at, _) = apply
        .run(&FollowSink, &used, &mut BTreeMap::new(), from, until)
        .await?;
    st.list_from = used.last().map_or(st.list_from, |l| l.start);
    st.segments += used.len() as u64;
    st.records = at.records;
    st.error = None;
    save(store, st)?;
    Ok(at.ts)
}

/// One follower task of this process.
#[derive(Clone)]
struct Running {
    cancel: CancelToken,
    /// Held for each step, and by whoever stops the follower, so a stop waits for the
    /// step in progress.
    step: Arc<tokio::sync::Mutex<()>>,
    /// Wakes the follower for a step now ([`Standbys::nudge`]).
    nudge: Arc<tokio::sync::Notify>,
    /// Tells this task's entry from a later one for the same standby.
    generation: u64,
}

static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn not_a_standby(rec: &TenantRecord) -> Error {
    Error::InvalidArgument(format!(
        "tenant `{}` is {}, not a standby; make one with `tenet restore <source> --standby \
         --into <name>`",
        rec.name, rec.state
    ))
}

/// Refuses a promotion target the standby cannot reach: before what it applied, or
/// past the archive.
fn check_target(
    rec: &TenantRecord,
    applied: Ts,
    target: Ts,
    reached: Ts,
    beyond: Option<Ts>,
) -> Result<()> {
    if target < applied {
        return Err(Error::NotRestorable(format!(
            "standby `{}` has already applied its source's log up to {applied} ({}); it \
             cannot go back to {target} ({}): promote at or after {applied}, or restore that \
             time into a new tenant",
            rec.name,
            applied.to_rfc3339(),
            target.to_rfc3339()
        )));
    }
    if target > reached {
        return Err(Error::NotRestorable(format!(
            "{target} ({}) is not archived: the source's archive reaches {reached} ({}){}; \
             promote with --until at or before it, or without --until",
            target.to_rfc3339(),
            reached.to_rfc3339(),
            match beyond {
                Some(b) => format!(" and then has a hole (segments resume up to {b})"),
                None => " and nothing later is archived yet".into(),
            }
        )));
    }
    Ok(())
}

/// The standby followers running in this process.
#[derive(Clone)]
pub struct Standbys {
    store: Store,
    runtime: tokio::runtime::Handle,
    running: Arc<Mutex<HashMap<u64, Running>>>,
    /// Standbys being promoted: not to be restarted by the supervisor.
    held: Arc<Mutex<HashSet<u64>>>,
    /// When each standby last refreshed its reader record (clock ms).
    readers: Arc<Mutex<HashMap<u64, u64>>>,
}

/// How often a standby refreshes its reader record in the repository.
pub const READER_REFRESH: Duration = Duration::from_secs(60);
/// How often the supervisor looks for reader records due (a new standby writes its
/// first one within this).
const READER_SCAN: Duration = Duration::from_secs(5);

/// Records in the repository what a standby still needs (the log after its applied
/// ts), so prune keeps it (`prune.rs`).
async fn write_reader(store: &Store, repo: &Repo, st: &StandbyState, name: &str) -> Result<()> {
    let reader = crate::prune::Reader {
        format: crate::prune::READER_FORMAT.into(),
        version: crate::prune::READER_VERSION,
        store_id: store.store_id()?,
        tenant_id: st.tenant_id,
        tenant: name.to_string(),
        applied_ts: store.standby_applied(st.tenant_id).unwrap_or(Ts::ZERO),
        refreshed_millis: store.clock().now_millis(),
    };
    let key = crate::repo::reader_key(st.history.id, &reader.store_id, st.tenant_id);
    let body = serde_json::to_vec_pretty(&reader).expect("reader serializes");
    repo.put(&key, body.into()).await
}

/// Removes a standby's reader record (it was promoted: it now writes the history).
async fn remove_reader(store: &Store, repo: &Repo, st: &StandbyState) -> Result<()> {
    let key = crate::repo::reader_key(st.history.id, &store.store_id()?, st.tenant_id);
    repo.delete(&key).await
}

impl std::fmt::Debug for Standbys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Standbys").finish()
    }
}

/// `standby status`: where a standby stands against its source.
#[derive(Clone, Debug, Serialize)]
pub struct StandbyReport {
    pub tenant: String,
    pub tenant_id: u64,
    /// The history it follows (`tenants/<id>/` in `repo`).
    pub history_id: u64,
    pub state: TenantState,
    pub source: String,
    pub repo: String,
    /// Every source commit ≤ this is applied (and readable here).
    pub applied_ts: Ts,
    pub applied_time: String,
    /// The end of the source's archive (what a promotion can reach now).
    pub archived_until_ts: Ts,
    pub archived_until_time: String,
    /// Wall-clock age of the applied state: how stale reads of the standby are.
    pub lag_ms: u64,
    /// Archived but not yet applied.
    pub behind_ms: u64,
    /// How long ago the source's archive last advanced.
    pub archive_idle_ms: u64,
    pub segments: u64,
    pub records: u64,
    pub running: bool,
    pub last_error: Option<String>,
    /// Paused by hand (`standby pause`).
    pub paused: bool,
    /// What is wrong, in words, with the way out (None: all is well).
    pub problem: Option<String>,
}

/// What a promotion did.
#[derive(Clone, Debug, Serialize)]
pub struct PromoteReport {
    pub tenant: String,
    pub tenant_id: u64,
    /// The state it was promoted at: every source commit ≤ this.
    pub promoted_ts: Ts,
    pub promoted_time: String,
    /// Whether it continues its source's history (else it started its own).
    pub continues_history: bool,
    /// Commits applied by the promotion itself.
    pub applied_records: u64,
    /// After `--force`: source commits that may be lost — those after `promoted_ts`,
    /// up to `source_last_commit` where it is known (the source is in this store).
    pub may_lose_after: Option<Ts>,
    pub source_last_commit: Option<Ts>,
    pub lost_commits: Option<u64>,
    pub renamed_from: Option<String>,
    /// What went wrong after the promotion took effect (taking the name).
    pub problem: Option<String>,
    pub repo: String,
    pub millis: u64,
}

impl Standbys {
    pub fn new(store: Store, runtime: tokio::runtime::Handle) -> Self {
        Standbys {
            store,
            runtime,
            running: Arc::new(Mutex::new(HashMap::new())),
            held: Arc::new(Mutex::new(HashSet::new())),
            readers: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Starts the followers of every standby (at server start), then keeps starting
    /// those whose restore finishes, every `every`.
    pub fn supervise(&self, every: Duration) {
        let me = self.clone();
        self.runtime.spawn(async move {
            let mut readers_due = std::time::Instant::now();
            loop {
                if let Err(e) = me.start_due() {
                    tracing::warn!(error = %e, "cannot start standby followers");
                }
                // Reader records change once a minute: no need to look every tick.
                if std::time::Instant::now() >= readers_due {
                    me.refresh_readers().await;
                    readers_due = std::time::Instant::now() + READER_SCAN;
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    /// Refreshes the reader record of every standby (paused ones too) not refreshed
    /// for [`READER_REFRESH`].
    pub async fn refresh_readers(&self) {
        let now = self.store.clock().now_millis();
        let standbys = match all(&self.store) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list standbys to record their readers");
                return;
            }
        };
        for st in standbys {
            let due = self
                .readers
                .lock()
                .get(&st.tenant_id)
                .is_none_or(|t| now.saturating_sub(*t) >= READER_REFRESH.as_millis() as u64);
            let Some(rec) = self.store.tenant_by_id(st.tenant_id) else {
                continue;
            };
            if !due || rec.state != TenantState::Standby {
                continue;
            }
            let written = match Repo::open(&st.repo) {
                Ok(repo) => write_reader(&self.store, &repo, &st, &rec.name).await,
                Err(e) => Err(e),
            };
            match written {
                Ok(()) => {
                    self.readers.lock().insert(st.tenant_id, now);
                }
                Err(e) => {
                    tracing::warn!(tenant_id = st.tenant_id, error = %e, "cannot record standby reader")
                }
            }
        }
    }

    /// Starts the follower of every standby that has none running; returns their ids.
    pub fn start_due(&self) -> Result<Vec<u64>> {
        let mut started = Vec::new();
        // Checked and started under the `held` lock, so a promotion that holds the
        // standby never races a new follower.
        let held = self.held.lock();
        for st in all(&self.store)? {
            let Some(rec) = self.store.tenant_by_id(st.tenant_id) else {
                // Dropped while it followed.
                forget(&self.store, st.tenant_id)?;
                continue;
            };
            if rec.state != TenantState::Standby
                || st.paused
                || held.contains(&st.tenant_id)
                || self.running.lock().contains_key(&st.tenant_id)
            {
                continue;
            }
            started.push(st.tenant_id);
            self.spawn(st);
        }
        Ok(started)
    }

    /// Makes a standby's follower look for new segments now instead of at its next
    /// poll (a switchover in this store has just cut its source's final segment).
    pub fn nudge(&self, tenant_id: u64) {
        if let Some(t) = self.running.lock().get(&tenant_id) {
            t.nudge.notify_one();
        }
    }

    pub fn is_running(&self, tenant_id: u64) -> bool {
        self.running.lock().contains_key(&tenant_id)
    }

    fn spawn(&self, mut st: StandbyState) {
        let me = Running {
            cancel: CancelToken::new(),
            step: Arc::new(tokio::sync::Mutex::new(())),
            nudge: Arc::new(tokio::sync::Notify::new()),
            generation: GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        self.running.lock().insert(st.tenant_id, me.clone());
        let (store, running) = (self.store.clone(), self.running.clone());
        self.runtime.spawn(async move {
            let id = st.tenant_id;
            let poll = Duration::from_millis(st.poll_ms.max(10));
            let mut repo = None;
            while !me.cancel.is_cancelled() {
                {
                    let _step = me.step.lock().await;
                    if me.cancel.is_cancelled() {
                        break;
                    }
                    let r = match &repo {
                        Some(r) => Ok(r),
                        None => Repo::open(&st.repo).map(|r| &*repo.insert(r)),
                    };
                    let result = match r {
                        Ok(r) => catch_up(&store, r, &mut st, Ts::MAX, &me.cancel).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        if me.cancel.is_cancelled() {
                            break;
                        }
                        let msg = e.to_string();
                        if st.error.as_deref() != Some(&msg) {
                            tracing::warn!(tenant_id = id, error = %msg, "standby cannot apply");
                            st.error = Some(msg);
                            let _ = save(&store, &st);
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = me.nudge.notified() => {}
                    _ = me.cancel.cancelled() => {}
                }
            }
            let mut map = running.lock();
            if map.get(&id).is_some_and(|r| r.generation == me.generation) {
                map.remove(&id);
            }
        });
    }

    /// Stops a standby's follower, waiting for the step in progress.
    async fn stop(&self, tenant_id: u64) {
        let task = self.running.lock().remove(&tenant_id);
        if let Some(t) = task {
            t.cancel.cancel();
            let _ = t.step.lock().await;
        }
    }

    fn standby(&self, tenant_id: u64) -> Result<(TenantRecord, StandbyState)> {
        let rec = self.store.resolve(tenant_id)?;
        let st = load(&self.store, rec.id)?.ok_or_else(|| not_a_standby(&rec))?;
        Ok((rec, st))
    }

    /// Pauses (or resumes) a standby's following, persistently: a paused standby
    /// applies nothing, so it can be promoted at a time it has not passed yet.
    pub async fn set_paused(&self, tenant_id: u64, paused: bool) -> Result<StandbyReport> {
        let (rec, mut st) = self.standby(tenant_id)?;
        if st.paused != paused {
            st.paused = paused;
            save(&self.store, &st)?;
        }
        if paused {
            self.stop(rec.id).await;
        } else {
            self.start_due()?;
        }
        self.status(rec.id).await
    }

    /// Keeps the supervisor from starting the standby's follower.
    fn hold(&self, tenant_id: u64) {
        self.held.lock().insert(tenant_id);
    }

    fn release(&self, tenant_id: u64) {
        self.held.lock().remove(&tenant_id);
    }

    /// Where a standby stands (see [`StandbyReport`]).
    pub async fn status(&self, tenant_id: u64) -> Result<StandbyReport> {
        let (rec, mut st) = self.standby(tenant_id)?;
        let applied = self.store.standby_applied(rec.id).unwrap_or(Ts::ZERO);
        // A fresh listing, so the report is current even between polls; and who writes
        // the history now (after a failover, not the tenant it was restored from).
        let (listed, primary) = match Repo::open(&st.repo) {
            Ok(repo) => (
                pending(&repo, st.history.id, st.list_from, applied).await,
                read_primary(&repo, st.history.id).await.ok().flatten(),
            ),
            Err(e) => (Err(e), None),
        };
        let me = self.store.store_id()?;
        let source = match primary {
            Some(p) if p.store_id == me => p.tenant,
            Some(p) => format!("{} (store {})", p.tenant, p.store_id),
            None => st.source.clone(),
        };
        let now_ms = self.store.clock().now_millis();
        let (beyond, unreadable) = match listed {
            Ok((_, reached, beyond)) => {
                if reached > st.archived_until {
                    st.archived_until = reached;
                    st.archive_advanced_millis = now_ms;
                }
                (beyond, None)
            }
            Err(e) => (None, Some(e.to_string())),
        };
        let running = self.is_running(rec.id);
        let archived = st.archived_until.max(applied);
        let idle = now_ms.saturating_sub(st.archive_advanced_millis);
        let problem = if let Some(e) = unreadable {
            Some(format!(
                "cannot list the source's archive in {}: {e}",
                st.repo
            ))
        } else if let Some(b) = beyond {
            Some(format!(
                "the source's archive has a hole after {} ({}): segments reach {} but not \
                 from here; the standby cannot follow past the hole — restore a new standby \
                 from a newer full backup",
                archived,
                archived.to_rfc3339(),
                b.to_rfc3339()
            ))
        } else if st.paused {
            None
        } else if rec.state == TenantState::Standby
            && !running
            && now_ms.saturating_sub(st.archive_advanced_millis) > START_GRACE.as_millis() as u64
        {
            Some(
                "the follower is not running in this process; start `tenet serve` on this \
                 data directory"
                    .into(),
            )
        } else if let Some(e) = &st.error {
            Some(format!("the last apply failed (retried every poll): {e}"))
        } else if idle > ALIVE_WITHIN.as_millis() as u64 {
            Some(format!(
                "the source's archive has not advanced for {} s: its archiver is stopped or \
                 its server is down (promote with `tenet promote {}` if it is gone)",
                idle / 1000,
                rec.name
            ))
        } else {
            None
        };
        Ok(StandbyReport {
            tenant: rec.name.clone(),
            tenant_id: rec.id,
            history_id: st.history.id,
            state: rec.state,
            source,
            repo: st.repo.clone(),
            applied_ts: applied,
            applied_time: applied.to_rfc3339(),
            archived_until_ts: archived,
            archived_until_time: archived.to_rfc3339(),
            lag_ms: now_ms.saturating_sub(applied.millis()),
            behind_ms: archived.millis().saturating_sub(applied.millis()),
            archive_idle_ms: idle,
            segments: st.segments,
            records: st.records,
            running,
            last_error: st.error.clone(),
            paused: st.paused,
            problem,
        })
    }

    /// Promotes a standby (see the module header): to exactly `until`, or everything
    /// archived. Without `force`, refused while the source looks alive. With
    /// `take_name`, the standby takes its source's name where the source no longer
    /// has it in this store (or has stepped down: the names are swapped).
    ///
    /// Idempotent for a promotion that continues the history: called again after a
    /// crash (or by a switchover that retries), a tenant that already holds its
    /// history finishes what is left and reports success.
    pub async fn promote(
        &self,
        tenant_id: u64,
        until: Option<Ts>,
        force: bool,
        take_name: bool,
    ) -> Result<PromoteReport> {
        let started = std::time::Instant::now();
        let rec = self.store.resolve(tenant_id)?;
        let Some(mut st) = load(&self.store, rec.id)? else {
            if self.holds_history(&rec).await? {
                return Ok(self.report_done(&rec, started));
            }
            return Err(not_a_standby(&rec));
        };
        self.hold(rec.id);
        let out = self
            .promote_held(&rec, &mut st, until, force, take_name)
            .await;
        self.release(rec.id);
        let mut report = out?;
        report.millis = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// [`Standbys::promote`], then starts the promoted tenant's archive into the same
    /// repository (default options). A promotion that took effect is never undone by a
    /// failing archive start: that goes into the report's `problem`.
    pub async fn promote_and_archive(
        &self,
        archivers: &crate::archiver::Archivers,
        tenant_id: u64,
        until: Option<Ts>,
        force: bool,
        take_name: bool,
    ) -> Result<PromoteReport> {
        let mut r = self.promote(tenant_id, until, force, take_name).await?;
        let opts = crate::archiver::ArchiveOptions::default();
        if let Err(e) = archivers.start(tenant_id, &r.repo, opts).await {
            tracing::warn!(tenant_id, error = %e, "promoted, but its archive did not start");
            r.problem = Some(format!(
                "{}its archive did not start: {e}",
                r.problem
                    .take()
                    .map(|p| format!("{p}; "))
                    .unwrap_or_default()
            ));
        }
        Ok(r)
    }

    /// Whether `rec` is active and holds its history (a continuing promotion of it took
    /// effect).
    async fn holds_history(&self, rec: &TenantRecord) -> Result<bool> {
        if rec.state != TenantState::Active || rec.history.is_none() {
            return Ok(false);
        }
        let Some(url) = crate::archiver::load(&self.store, rec.id)?.map(|a| a.repo) else {
            return Ok(false);
        };
        let primary = read_primary(&Repo::open(&url)?, rec.history_ref().id).await?;
        let me = self.store.store_id()?;
        Ok(primary.is_some_and(|p| is_me(&p, &me, rec.id) && !p.demoted))
    }

    fn report_done(&self, rec: &TenantRecord, started: std::time::Instant) -> PromoteReport {
        let at = self.store.tenant_visible_ts(rec.id);
        PromoteReport {
            tenant: rec.name.clone(),
            tenant_id: rec.id,
            promoted_ts: at,
            promoted_time: at.to_rfc3339(),
            continues_history: true,
            applied_records: 0,
            may_lose_after: None,
            source_last_commit: None,
            lost_commits: None,
            renamed_from: None,
            problem: None,
            repo: crate::archiver::load(&self.store, rec.id)
                .ok()
                .flatten()
                .map(|a| a.repo)
                .unwrap_or_default(),
            millis: started.elapsed().as_millis() as u64,
        }
    }

    async fn promote_held(
        &self,
        rec: &TenantRecord,
        st: &mut StandbyState,
        until: Option<Ts>,
        force: bool,
        take_name: bool,
    ) -> Result<PromoteReport> {
        let store = &self.store;
        self.stop(rec.id).await;
        let repo = Repo::open(&st.repo)?;
        let primary = read_primary(&repo, st.history.id).await?;
        let store_id = store.store_id()?;
        let mine = primary
            .as_ref()
            .is_some_and(|p| is_me(p, &store_id, rec.id) && !p.demoted);
        if rec.state == TenantState::Active {
            // A promotion that took effect before a crash: finish it.
            if !mine {
                return Err(not_a_standby(rec));
            }
            remove_reader(store, &repo, st).await?;
            let renamed_from = self.finish(rec, st, take_name)?;
            let mut r = self.report_done(rec, std::time::Instant::now());
            r.renamed_from = renamed_from.0;
            r.problem = renamed_from.1;
            return Ok(r);
        }
        let applied = store.standby_applied(rec.id).unwrap_or(Ts::ZERO);
        let (_, reached, beyond) = pending(&repo, st.history.id, st.list_from, applied).await?;
        let target = until.unwrap_or(reached);
        if target.millis() > store.clock().now_millis() {
            return Err(Error::InvalidArgument(format!(
                "{target} ({}) is in the future; the source's archive reaches {reached} ({})",
                target.to_rfc3339(),
                reached.to_rfc3339()
            )));
        }
        check_target(rec, applied, target, reached, beyond)?;
        // Versions a crash left half-applied past the target must not become visible.
        let written = store.standby_written_through(rec.id);
        if written > target {
            return Err(Error::NotRestorable(format!(
                "standby `{}` may hold part of its source's log up to {written} ({}) from an \
                 apply a crash interrupted; promote at or after it",
                rec.name,
                written.to_rfc3339()
            )));
        }
        // Is the source still writing? In this store we know; elsewhere the primary
        // record and the archive's recent progress tell.
        let local_source = primary
            .as_ref()
            .filter(|p| p.store_id == store_id && p.tenant_id != rec.id)
            .and_then(|p| store.tenant_by_id(p.tenant_id))
            .or_else(|| {
                (st.history.id != rec.id)
                    .then(|| store.tenant_by_id(st.history.id))
                    .flatten()
                    .filter(|t| t.created_ts == st.history.created_ts)
            });
        let stepped_down = primary.as_ref().is_some_and(|p| p.demoted);
        let primary_here = primary.as_ref().is_some_and(|p| p.store_id == store_id);
        let idle_ms = store
            .clock()
            .now_millis()
            .saturating_sub(st.archive_advanced_millis);
        let source_alive = match &local_source {
            _ if mine => false,
            Some(t) => t.state == TenantState::Active && !stepped_down,
            // Its primary was a tenant of this store that is gone (dropped).
            None if primary_here => false,
            None => !stepped_down && primary.is_some() && idle_ms < ALIVE_WITHIN.as_millis() as u64,
        };
        if source_alive && !force {
            let source = local_source
                .as_ref()
                .map_or_else(|| st.source.clone(), |t| t.name.clone());
            let how = match &local_source {
                Some(_) => " in this store".to_string(),
                None => format!(" (its archive advanced {} s ago)", idle_ms / 1000),
            };
            return Err(Error::InvalidArgument(format!(
                "the source `{source}` is still active{how}: promoting now would leave two \
                 writable copies. For a planned move use `tenet switchover {source} --to {}`; \
                 if the source is lost, promote with --force (commits it made after the end \
                 of its archive are lost)",
                rec.name
            )));
        }
        // A promotion at the end of the archive continues the source's history: it
        // takes the history over *before* the last listing, so a source that is still
        // uploading stops (its archiver checks the record before every upload) and
        // nothing it archives later is mistaken for this tenant's past.
        let continues_wanted = until.is_none_or(|t| t >= reached) && beyond.is_none();
        if continues_wanted && !mine {
            claim_primary(&repo, store, rec, true).await?;
        }
        let (_, reached, beyond) = pending(&repo, st.history.id, st.list_from, applied).await?;
        let target = until.unwrap_or(reached);
        let before = st.records;
        let at = catch_up(store, &repo, st, target, &CancelToken::new()).await?;
        if at != target {
            return Err(Error::NotRestorable(format!(
                "the archive reached only {at} while {target} was expected; try again"
            )));
        }
        let continues = continues_wanted && target == reached && beyond.is_none();
        // A failover (the source did not step down) may lose what the source committed
        // after the end of its archive; in this store its log says exactly what.
        let (may_lose_after, source_last_commit, lost_commits) = if stepped_down {
            (None, None, None)
        } else {
            let lost = match &local_source {
                Some(t) => Some(store.read_log_raw_covered(t.id, target, usize::MAX)?.0),
                None => None,
            };
            let last = lost.as_ref().and_then(|l| l.last().map(|(ts, _)| *ts));
            (Some(target), last, lost.map(|l| l.len() as u64))
        };
        let history = if continues { None } else { Some(None) };
        let (promoted, _) = store.promote_standby(rec.id, history)?;
        // A failover within this store: the old primary stops taking writes, so that
        // one writable copy remains.
        let mut demoted_source = None;
        if let Some(t) = local_source.as_ref().filter(|_| source_alive) {
            let update = tenet_store::TenantUpdate {
                state: Some(TenantState::ReadOnly),
                ..Default::default()
            };
            if store.alter_tenant(t.id, update).is_ok() {
                demoted_source = Some(format!(
                    "its source `{}` in this store was set read_only (one writable copy); \
                     its commits after {target} are in `{}` only",
                    t.name, t.name
                ));
            }
        }
        remove_reader(store, &repo, st).await?;
        let (renamed_from, problem) = self.finish(&promoted, st, take_name)?;
        let problem = match (demoted_source, problem) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        Ok(PromoteReport {
            tenant: store.resolve(rec.id)?.name,
            tenant_id: rec.id,
            promoted_ts: target,
            promoted_time: target.to_rfc3339(),
            continues_history: continues,
            applied_records: st.records - before,
            may_lose_after,
            source_last_commit,
            lost_commits,
            renamed_from,
            problem,
            repo: st.repo.clone(),
            millis: 0,
        })
    }

    /// The steps after the state change, each idempotent: the name, then the follower
    /// row (last: a tenant without one is wholly promoted). What goes wrong with the
    /// name is reported, not returned: the promotion has taken effect.
    fn finish(
        &self,
        promoted: &TenantRecord,
        st: &StandbyState,
        take_name: bool,
    ) -> Result<(Option<String>, Option<String>)> {
        let named = if take_name {
            match self.take_name(promoted, &st.source) {
                Ok(r) => (r, None),
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            (None, None)
        };
        forget(&self.store, promoted.id)?;
        Ok(named)
    }

    /// Gives the promoted tenant its source's name: free in this store, or held by the
    /// source that stepped down (a standby now: the names are swapped).
    fn take_name(&self, promoted: &TenantRecord, name: &str) -> Result<Option<String>> {
        let store = &self.store;
        match store.tenant(name) {
            Ok(holder) if holder.id == promoted.id => return Ok(None),
            Err(_) => {
                store.alter_tenant(
                    promoted.id,
                    tenet_store::TenantUpdate {
                        name: Some(name.to_string()),
                        ..Default::default()
                    },
                )?;
            }
            // Only with its own history's old primary, which stepped down.
            Ok(holder)
                if holder.state == TenantState::Standby
                    && holder.history_ref() == promoted.history_ref() =>
            {
                store.swap_names(promoted.id, holder.id)?;
            }
            Ok(holder) => {
                return Err(Error::InvalidArgument(format!(
                    "promoted `{}`, but it cannot take the name `{name}`: tenant #{} has it \
                     and is {}; rename or drop it, then `tenet tenant rename {} {name}`",
                    promoted.name, holder.id, holder.state, promoted.name
                )))
            }
        }
        Ok(Some(promoted.name.clone()))
    }
}
