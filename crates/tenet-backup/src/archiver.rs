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
//! State lives in system table [`ARCHIVES_TABLE`], keyed by tenant id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use tenet_jobs::CancelToken;
use tenet_store::keys::{pk_bytes, KeyValue};
use tenet_store::{decode_system_row, encode_system_row, Store, Ts, ARCHIVES_TABLE};

use crate::error::{Error, Result};
use crate::planner::LogRange;
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

/// Repository key of the segment `(start, end]` of a tenant.
pub fn segment_key(tenant_id: u64, start: Ts, end: Ts) -> String {
    format!("tenants/{tenant_id}/log/{:020}-{:020}.tls", start.0, end.0)
}

/// The archived log ranges of a tenant, from the segment names in the repository.
pub async fn list_segments(repo: &Repo, tenant_id: u64) -> Result<Vec<LogRange>> {
    let prefix = format!("tenants/{tenant_id}/log/");
    let mut out = Vec::new();
    for (k, _) in repo.list(&prefix).await? {
        let Some(name) = k.strip_prefix(&prefix).and_then(|n| n.strip_suffix(".tls")) else {
            continue;
        };
        let parsed = name
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
        if let Some((start, end)) = parsed {
            out.push(LogRange {
                key: k.clone(),
                start: Ts(start),
                end: Ts(end),
            });
        }
    }
    out.sort_by_key(|l| (l.start, l.end));
    Ok(out)
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

    /// Starts archiving `tenant` into `repo` from now on (or continues a stopped or
    /// broken archiver of the same repository from its checkpoint, if the log after
    /// it still exists). Refused while one runs.
    pub async fn start(
        &self,
        tenant: &str,
        repo: &str,
        options: ArchiveOptions,
    ) -> Result<ArchiveState> {
        if options.interval_ms == 0 || options.segment_max_bytes == 0 {
            return Err(Error::InvalidArgument(
                "archive interval and segment size must be positive".into(),
            ));
        }
        let rec = self.store.tenant(tenant)?;
        if self.running.lock().contains_key(&rec.id) {
            return Err(Error::InvalidArgument(format!(
                "the archiver of tenant `{tenant}` is already running; stop it first"
            )));
        }
        let repo = Repo::open(repo)?;
        repo.check(&now(&self.store)).await?;
        // Start from the visible ts: the archive begins now; a full backup taken from
        // now on can be rolled forward with it.
        let start = self.store.visible_ts();
        let pin = self.store.pin(&rec.name, start, &pin_owner(rec.id))?;
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
        };
        save(&self.store, &st)?;
        self.spawn(st.clone(), repo);
        Ok(st)
    }

    fn spawn(&self, mut st: ArchiveState, repo: Repo) {
        // The state is saved before an old pin is released, so a pin of ours that the
        // state does not name is one a crash left behind.
        let owner = pin_owner(st.tenant_id);
        if let Ok(pins) = self.store.pins(&st.tenant) {
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

    /// Stops a tenant's archiver and releases its pin; what is archived stays.
    pub fn stop(&self, tenant: &str) -> Result<ArchiveState> {
        let rec = self.store.tenant(tenant)?;
        let task = self.running.lock().remove(&rec.id);
        let _guard = task.as_ref().map(|t| {
            t.cancel.cancel();
            t.lock.lock()
        });
        // Read the state after the task's last step (it may have moved the pin).
        let mut st = load(&self.store, rec.id)?
            .ok_or_else(|| Error::InvalidArgument(format!("tenant `{tenant}` has no archiver")))?;
        if let Some(p) = st.pin_id.take() {
            self.store.unpin(rec.id, p)?;
        }
        if st.status == ArchiveStatus::Running {
            st.status = ArchiveStatus::Stopped;
        }
        save(&self.store, &st)?;
        Ok(st)
    }

    /// A tenant's archiver state and its lag (RPO) in milliseconds: now minus the
    /// checkpoint's time.
    pub fn status(&self, tenant: &str) -> Result<(ArchiveState, u64)> {
        let rec = self.store.tenant(tenant)?;
        let st = load(&self.store, rec.id)?.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "tenant `{tenant}` has no archiver; start one with `tenet archive start {tenant}`"
            ))
        })?;
        let lag = self
            .store
            .clock()
            .now_millis()
            .saturating_sub(st.checkpoint.millis());
        Ok((st, lag))
    }

    /// Starts the archivers that were running when the process stopped.
    pub fn resume_all(&self) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        for (_, v) in self.store.system_scan(ARCHIVES_TABLE)? {
            let st = decode(&v)?;
            if st.status == ArchiveStatus::Running
                && self.store.tenant_by_id(st.tenant_id).is_some()
            {
                ids.push(st.tenant_id);
                let repo = Repo::open(&st.repo)?;
                self.spawn(st, repo);
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
        // A hole in the log can never be archived: give up at once.
        let hole = matches!(e, Error::NotRestorable(_));
        if hole || now_ms.saturating_sub(st.last_upload_millis) > st.options.budget_secs * 1000 {
            st.status = ArchiveStatus::Broken;
            let pin = st.pin_id.take();
            save(store, &st)?;
            if let Some(p) = pin {
                let _ = store.unpin(st.tenant_id, p);
            }
            tracing::error!(tenant = %st.tenant, "archiver broken: {e}");
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
            st.tenant,
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
    let idle_due = store
        .clock()
        .now_millis()
        .saturating_sub(st.last_upload_millis)
        >= IDLE_CUT.as_millis() as u64;
    if seg_info.end <= st.checkpoint || (records == 0 && !idle_due) {
        return Ok(());
    }
    let key = segment_key(tenant_id, seg_info.start, seg_info.end);
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
    match store.pin(&st.tenant, seg_info.end, &pin_owner(tenant_id)) {
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
