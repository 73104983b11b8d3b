//! The job manager: creates, runs, cancels and resumes jobs; the context a running job
//! sees; the phase/task executor.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use tenet_store::{Code, Store, Ts, JOBS_TABLE, JOB_TASKS_TABLE};

use crate::pacing::{Pacer, PacingStatus};
use crate::record::{
    decode, encode, job_key, task_key, JobError, JobOwner, JobRecord, JobState, PhaseCounts,
    Progress,
};
use crate::throttle::{CancelToken, Throttle};
use crate::{Error, Result};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How often progress is persisted while tasks run (task ends always persist).
const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// The code of a kind of job.
pub trait JobKind: Send + Sync + 'static {
    /// The `kind` of records this runs, e.g. `backup_full`.
    fn kind(&self) -> &'static str;
    /// Runs the job, or resumes it from `ctx`'s checkpoint; returns its result.
    fn run(&self, ctx: JobContext) -> BoxFuture<'static, Result<Value>>;
    /// Removes what a cancelled or failed job made. Must be idempotent.
    fn cleanup(&self, ctx: JobContext) -> BoxFuture<'static, Result<()>>;
}

/// The work of one task: gets the job context, returns the task's output (stored in
/// the checkpoint). An output object may carry `rows` and `bytes` done by the task.
pub type TaskFn = Box<dyn FnOnce(JobContext) -> BoxFuture<'static, Result<Value>> + Send>;

/// One task of a phase.
pub struct Task {
    /// Unique within its phase; the checkpoint key.
    pub id: String,
    pub run: TaskFn,
}

impl Task {
    /// A task `id` that runs `f`.
    pub fn new<F, Fut>(id: impl Into<String>, f: F) -> Task
    where
        F: FnOnce(JobContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Value>> + Send + 'static,
    {
        Task {
            id: id.into(),
            run: Box::new(move |ctx| Box::pin(f(ctx))),
        }
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").field("id", &self.id).finish()
    }
}

/// Runs jobs. Cheap to clone.
#[derive(Clone)]
pub struct JobManager {
    inner: Arc<ManagerInner>,
}

impl std::fmt::Debug for JobManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobManager").finish()
    }
}

struct ManagerInner {
    store: Store,
    /// Where jobs run: threads of their own, at a lower CPU priority.
    pool: Pool,
    kinds: Mutex<HashMap<&'static str, Arc<dyn JobKind>>>,
    live: Mutex<HashMap<u64, JobContext>>,
    workers: Arc<Semaphore>,
    create: Mutex<()>,
    /// The I/O budget all jobs share, on top of each job's own throttle, and its
    /// controller (`pacing.rs`).
    pacer: Pacer,
}

/// The runtime jobs run on. Its blocking threads — those that scan, compress, seal and
/// build files, through [`lower_priority`] — run at [`JOB_NICE`] on Linux, so the
/// tenants' own threads win the cores when both want them. Its async workers stay at
/// normal priority: they commit the jobs' records, and a commit that waits for the
/// CPU holds back every later commit's visibility (commits become visible in ts
/// order).
struct Pool(Option<tokio::runtime::Runtime>);

/// The nice value of the jobs' threads (0 is normal, 19 the lowest priority).
pub const JOB_NICE: i32 = 10;

/// The name of the job runtime's threads.
const JOB_THREAD: &str = "tenet-job";

impl Pool {
    fn new(workers: usize) -> Pool {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name(JOB_THREAD)
            .enable_all()
            .build()
            .expect("the job runtime starts");
        Pool(Some(rt))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("the job runtime lives").handle()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // The last manager may go away inside a task; never block there.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Lowers the calling thread's CPU priority to [`JOB_NICE`] (Linux nice values are
/// per thread), once per thread, if it is one of the job runtime's threads: for the
/// jobs' bulk work on their blocking threads (`tenet-backup`'s `blocking`). Any other
/// thread is left alone (the archiver's blocking work runs on the server's runtime,
/// whose threads serve requests too, and a nice value cannot be raised again without
/// privilege). Failing to is harmless: the work then competes at normal priority.
pub fn lower_priority() {
    if std::thread::current().name() != Some(JOB_THREAD) {
        return;
    }
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if LOWERED.with(|l| l.replace(true)) {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), JOB_NICE) {
            tracing::debug!(error = %e, "could not lower a job thread's priority");
        }
    }
}

impl JobManager {
    /// A manager whose tasks share `workers` slots. Jobs run on a runtime of its own
    /// (`workers` threads at a lower CPU priority), paced by the controller of
    /// `pacing.rs` on a thread of its own while the manager lives.
    pub fn new(store: Store, workers: usize) -> Self {
        let workers = workers.max(1);
        let manager = JobManager {
            inner: Arc::new(ManagerInner {
                store,
                pool: Pool::new(workers),
                kinds: Mutex::new(HashMap::new()),
                live: Mutex::new(HashMap::new()),
                workers: Arc::new(Semaphore::new(workers)),
                create: Mutex::new(()),
                pacer: Pacer::default(),
            }),
        };
        // The controller runs at normal priority, so it sees and acts in time while
        // the jobs' threads wait for the cores.
        let weak = Arc::downgrade(&manager.inner);
        let spawned = std::thread::Builder::new()
            .name("tenet-pacer".into())
            .spawn(move || loop {
                std::thread::sleep(crate::pacing::TICK);
                let Some(inner) = weak.upgrade() else { return };
                let jobs = inner.live.lock().len();
                inner.pacer.tick(&inner.store, jobs);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the job pacer; jobs run unpaced");
        }
        manager
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Caps the I/O budget every job's throttled bytes also draw from, in bytes per
    /// second over all jobs (None: no cap). The pacer keeps the budget under it.
    pub fn set_io_budget(&self, bytes_per_sec: Option<u64>) {
        self.inner.pacer.set_cap(bytes_per_sec);
    }

    pub fn io_budget(&self) -> Option<u64> {
        self.inner.pacer.cap()
    }

    /// Turns adaptive pacing (`pacing.rs`) on or off; it is on by default. Off, the
    /// budget is the cap alone.
    pub fn set_adaptive_pacing(&self, on: bool) {
        self.inner.pacer.set_adaptive(on);
    }

    /// What the pacer is doing now.
    pub fn pacing(&self) -> PacingStatus {
        self.inner.pacer.status()
    }

    fn budget(&self) -> &Throttle {
        self.inner.pacer.budget()
    }

    pub fn register(&self, kind: Arc<dyn JobKind>) {
        self.inner.kinds.lock().insert(kind.kind(), kind);
    }

    /// Persists a new `queued` job. With `owner.lock`, refuses while an unfinished job
    /// holds the same lock (e.g. one backup per tenant at a time).
    pub fn create(
        &self,
        kind: &str,
        tenant: &str,
        params: Value,
        throttle_bytes_per_sec: Option<u64>,
        owner: JobOwner,
    ) -> Result<JobRecord> {
        if !self.inner.kinds.lock().contains_key(kind) {
            return Err(Error::InvalidArgument(format!("unknown job kind `{kind}`")));
        }
        if throttle_bytes_per_sec == Some(0) {
            return Err(Error::InvalidArgument(
                "a throttle of 0 bytes/s would never finish; give a positive rate or none".into(),
            ));
        }
        let _guard = self.inner.create.lock();
        if let Some(lock) = &owner.lock {
            if let Some(other) = self
                .list()?
                .into_iter()
                .find(|j| !j.state.is_final() && j.lock() == Some(lock.as_str()))
            {
                let what = format!(
                    "job {} ({} of tenant `{}`)",
                    other.id, other.kind, other.tenant
                );
                return Err(Error::Conflict(if self.is_live(other.id) {
                    format!(
                        "{what} is {}; wait for it to finish or cancel it with \
                         `tenet jobs cancel {}`",
                        other.state, other.id
                    )
                } else {
                    // Nothing runs it (its process died): waiting would not help.
                    format!(
                        "{what} was interrupted ({}); resume it with `tenet jobs resume {}` \
                         or cancel it with `tenet jobs cancel {}`",
                        other.state, other.id, other.id
                    )
                }));
            }
        }
        let now = self.now();
        let rec = JobRecord {
            id: self.inner.store.next_job_id()?,
            kind: kind.to_string(),
            tenant: tenant.to_string(),
            params,
            state: JobState::Queued,
            phase: String::new(),
            progress: Progress::default(),
            throttle_bytes_per_sec,
            result: None,
            error: None,
            owner,
            checkpoint: json!({}),
            created_at: now.clone(),
            started_at: None,
            updated_at: now,
            finished_at: None,
        };
        self.put(&rec)?;
        Ok(rec)
    }

    fn now(&self) -> String {
        Ts::from_millis(self.inner.store.clock().now_millis()).to_rfc3339()
    }

    fn put(&self, rec: &JobRecord) -> Result<()> {
        self.inner
            .store
            .system_put(JOBS_TABLE, &job_key(rec.id), Some(&encode(rec)))?;
        Ok(())
    }

    /// The job, with live progress if it runs in this process.
    pub fn get(&self, id: u64) -> Result<JobRecord> {
        if let Some(ctx) = self.inner.live.lock().get(&id) {
            return Ok(ctx.record());
        }
        let bytes = self
            .inner
            .store
            .system_get(JOBS_TABLE, &job_key(id))?
            .ok_or(Error::NotFound(id))?;
        decode(&bytes)
    }

    /// Every job, oldest first, with live progress for those running here.
    pub fn list(&self) -> Result<Vec<JobRecord>> {
        let live = self.inner.live.lock();
        self.inner
            .store
            .system_scan(JOBS_TABLE)?
            .into_iter()
            .map(|(_, v)| {
                let rec = decode(&v)?;
                Ok(live.get(&rec.id).map(|c| c.record()).unwrap_or(rec))
            })
            .collect()
    }

    /// Sets the tenant a job creates or writes, once it exists (set up at submission).
    pub fn set_target_of(&self, id: u64, target_id: u64) -> Result<()> {
        if self.inner.live.lock().contains_key(&id) {
            return Err(Error::Conflict(format!("job {id} is running")));
        }
        let mut rec = self.get(id)?;
        rec.owner.target_id = Some(target_id);
        rec.updated_at = self.now();
        self.put(&rec)
    }

    /// Whether the job runs in this process now.
    pub fn is_live(&self, id: u64) -> bool {
        self.inner.live.lock().contains_key(&id)
    }

    /// Starts (or resumes) an unfinished job in the background, on the jobs' runtime.
    /// Returns at once; a job already running here is left alone.
    pub fn start(&self, id: u64) -> Result<()> {
        let (ctx, kind, fresh) = self.prepare(id)?;
        if fresh {
            let this = self.clone();
            self.inner
                .pool
                .handle()
                .spawn(async move { this.drive(ctx, kind).await });
        }
        Ok(())
    }

    /// Runs (or resumes) an unfinished job to its end, on the jobs' runtime; returns
    /// the final record.
    pub async fn run(&self, id: u64) -> Result<JobRecord> {
        let (ctx, kind, fresh) = self.prepare(id)?;
        if !fresh {
            return Err(Error::Conflict(format!("job {id} is already running")));
        }
        let this = self.clone();
        self.inner
            .pool
            .handle()
            .spawn(async move { this.drive(ctx, kind).await })
            .await
            .map_err(|e| {
                self.inner.live.lock().remove(&id);
                Error::Failed(JobError::new(
                    Code::INTERNAL,
                    format!("job {id} stopped unexpectedly: {e}"),
                ))
            })
    }

    fn prepare(&self, id: u64) -> Result<(JobContext, Arc<dyn JobKind>, bool)> {
        let mut live = self.inner.live.lock();
        if let Some(ctx) = live.get(&id) {
            let kind = self.kind_of(&ctx.record())?;
            return Ok((ctx.clone(), kind, false));
        }
        let bytes = self
            .inner
            .store
            .system_get(JOBS_TABLE, &job_key(id))?
            .ok_or(Error::NotFound(id))?;
        let rec = decode(&bytes)?;
        if rec.state.is_final() {
            return Err(Error::Conflict(format!(
                "job {id} has already ended ({}); nothing to resume",
                rec.state
            )));
        }
        let kind = self.kind_of(&rec)?;
        let ctx = JobContext::new(self.clone(), rec);
        live.insert(id, ctx.clone());
        Ok((ctx, kind, true))
    }

    fn kind_of(&self, rec: &JobRecord) -> Result<Arc<dyn JobKind>> {
        self.inner
            .kinds
            .lock()
            .get(rec.kind.as_str())
            .cloned()
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "job {} is of kind `{}`, which this build cannot run",
                    rec.id, rec.kind
                ))
            })
    }

    /// Runs a job through its states; never fails (failures end in the record).
    ///
    /// A job found `cancelling` or `failing` (a restart during cleanup) only finishes
    /// its cleanup. The cleanup's outcome is persisted before the final state; if the
    /// cleanup itself fails, the job stays `cancelling`/`failing` with the error, so
    /// `resume` (or the next server start) retries it.
    async fn drive(&self, ctx: JobContext, kind: Arc<dyn JobKind>) -> JobRecord {
        let id = ctx.id();
        let state = ctx.record().state;
        let outcome = match state {
            JobState::Cancelling => {
                ctx.trip_cancel();
                Err(Error::Cancelled)
            }
            JobState::Failing => Err(Error::Failed(
                ctx.record()
                    .error
                    .unwrap_or(JobError::new(Code::INTERNAL, "the job failed")),
            )),
            _ => {
                let rec = ctx.record();
                let how = if rec.started_at.is_some() {
                    "resumed"
                } else {
                    "started"
                };
                tracing::info!(job = id, kind = %rec.kind, tenant = %rec.tenant, "job {how}");
                let started = ctx.update(|r| {
                    r.state = JobState::Running;
                    if r.started_at.is_none() {
                        r.started_at = Some(self.now());
                    }
                });
                match started {
                    // A panicking job fails (with cleanup) instead of staying `running`.
                    Ok(()) => {
                        use futures::FutureExt;
                        std::panic::AssertUnwindSafe(kind.run(ctx.clone()))
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|panic| {
                                let what = panic
                                    .downcast_ref::<String>()
                                    .map(String::as_str)
                                    .or_else(|| panic.downcast_ref::<&str>().copied())
                                    .unwrap_or("a panic");
                                Err(Error::Failed(JobError::new(
                                    Code::INTERNAL,
                                    format!("the job panicked: {what}"),
                                )))
                            })
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let end = match outcome {
            Ok(result) => ctx.update(|r| {
                r.state = JobState::Succeeded;
                r.result = Some(result);
                r.progress.finish();
                r.finished_at = Some(self.now());
            }),
            Err(err) => self.clean_up(&ctx, &kind, err).await,
        };
        if let Err(e) = end {
            tracing::error!(job = id, error = %e, "could not persist the end of a job");
        }
        self.inner.live.lock().remove(&id);
        let rec = ctx.record();
        let (kind, tenant) = (&rec.kind, &rec.tenant);
        match (&rec.state, &rec.error) {
            (JobState::Succeeded, _) => tracing::info!(job = id, %kind, %tenant, "job succeeded"),
            (JobState::Cancelled, _) => tracing::info!(job = id, %kind, %tenant, "job cancelled"),
            (state, Some(e)) => {
                tracing::info!(job = id, %kind, %tenant, %state, code = %e.code, error = %e.message, "job failed")
            }
            (state, None) => tracing::info!(job = id, %kind, %tenant, %state, "job stopped"),
        }
        rec
    }

    /// Records why the job stops, runs the kind's cleanup, and ends the job.
    async fn clean_up(&self, ctx: &JobContext, kind: &Arc<dyn JobKind>, err: Error) -> Result<()> {
        let cancelled = ctx.inner.cancel.is_cancelled();
        ctx.inner.stop.cancel();
        ctx.update(|r| {
            r.progress.eta_secs = None;
            r.phase = "cleanup".into();
            if cancelled {
                r.state = JobState::Cancelling;
            } else {
                r.state = JobState::Failing;
                if r.error.is_none() {
                    r.error = Some(job_error(&err, ""));
                }
            }
        })?;
        match kind.cleanup(ctx.clone()).await {
            Ok(()) => ctx.update(|r| {
                r.state = if cancelled {
                    JobState::Cancelled
                } else {
                    JobState::Failed
                };
                r.finished_at = Some(self.now());
            }),
            Err(ce) => {
                tracing::error!(job = ctx.id(), error = %ce, "job cleanup failed");
                ctx.update(|r| {
                    let mut e = r.error.clone().unwrap_or_else(|| job_error(&err, ""));
                    e.message = format!(
                        "{}; cleanup failed and will be retried by `tenet jobs resume {}` or \
                         the next server start: {ce}",
                        e.message, r.id
                    );
                    r.error = Some(e);
                })
            }
        }
    }

    /// Asks a job to stop. A job running here is stopped promptly and cleaned up; an
    /// unfinished job not running here is marked `cancelling` and cleaned up by
    /// [`JobManager::start`]/[`JobManager::run`] (which the caller should call).
    pub fn cancel(&self, id: u64) -> Result<JobRecord> {
        if let Some(ctx) = self.inner.live.lock().get(&id).cloned() {
            ctx.update(|r| {
                if !r.state.is_final() {
                    r.state = JobState::Cancelling;
                }
            })?;
            ctx.trip_cancel();
            return Ok(ctx.record());
        }
        let mut rec = self.get(id)?;
        if rec.state.is_final() {
            return Err(Error::Conflict(format!(
                "job {id} has already ended ({}); there is nothing to cancel",
                rec.state
            )));
        }
        rec.state = JobState::Cancelling;
        rec.updated_at = self.now();
        self.put(&rec)?;
        Ok(rec)
    }

    /// Starts every unfinished job (after a restart); returns their ids.
    pub fn resume_unfinished(&self) -> Result<Vec<u64>> {
        let ids: Vec<u64> = self
            .list()?
            .into_iter()
            .filter(|j| !j.state.is_final())
            .map(|j| j.id)
            .collect();
        for &id in &ids {
            if let Err(e) = self.start(id) {
                tracing::error!(job = id, error = %e, "could not resume job");
            }
        }
        Ok(ids)
    }
}

/// A coded error for the record.
pub(crate) fn job_error(err: &Error, prefix: &str) -> JobError {
    let (code, message) = match err {
        Error::Failed(e) => (e.code.clone(), e.message.clone()),
        other => (other.code().as_str().into(), other.to_string()),
    };
    JobError {
        code,
        message: format!("{prefix}{message}"),
    }
}

/// What a running job sees. Cheap to clone; shared by its tasks.
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<CtxInner>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.id())
            .finish()
    }
}

struct CtxInner {
    manager: JobManager,
    record: Mutex<JobRecord>,
    /// Held across changing and writing the record, so writes land in change order.
    persist: Mutex<()>,
    /// Tripped when someone asks to cancel the job.
    cancel: CancelToken,
    /// Tripped on cancel and when a task fails: tells every task to stop.
    stop: CancelToken,
    throttle: Throttle,
    last_persist: Mutex<Instant>,
    /// Rate measurement: when and at how many bytes the current phase started here.
    rate_base: Mutex<(Instant, u64)>,
    /// Throttled-byte rate: when and at how many I/O bytes the job started here.
    io_base: (Instant, u64),
    /// The phase the record's counts belong to.
    counts: Mutex<PhaseCounts>,
}

impl JobContext {
    fn new(manager: JobManager, rec: JobRecord) -> Self {
        JobContext {
            inner: Arc::new(CtxInner {
                manager,
                throttle: Throttle::new(rec.throttle_bytes_per_sec),
                rate_base: Mutex::new((Instant::now(), rec.progress.bytes_done)),
                io_base: (Instant::now(), rec.progress.io_bytes),
                counts: Mutex::new(PhaseCounts::new(&rec)),
                record: Mutex::new(rec),
                persist: Mutex::new(()),
                cancel: CancelToken::new(),
                stop: CancelToken::new(),
                last_persist: Mutex::new(Instant::now()),
            }),
        }
    }

    pub fn id(&self) -> u64 {
        self.inner.record.lock().id
    }

    pub fn store(&self) -> &Store {
        self.inner.manager.store()
    }

    /// The manager running this job.
    pub fn jobs(&self) -> &JobManager {
        &self.inner.manager
    }

    /// A copy of the record as it is now.
    pub fn record(&self) -> JobRecord {
        let mut r = self.inner.record.lock().clone();
        if !r.state.is_final() {
            self.estimate(&mut r.progress);
        }
        r
    }

    pub fn params(&self) -> Value {
        self.inner.record.lock().params.clone()
    }

    /// Tripped when the job must stop (cancelled, or another task failed).
    pub fn cancel_token(&self) -> &CancelToken {
        &self.inner.stop
    }

    /// `Err(Cancelled)` once the job must stop.
    pub fn check_cancelled(&self) -> Result<()> {
        self.inner.stop.check()
    }

    fn trip_cancel(&self) {
        self.inner.cancel.cancel();
        self.inner.stop.cancel();
    }

    /// [`JobContext::throttle`] for blocking threads.
    pub fn throttle_blocking(&self, bytes: u64) -> Result<()> {
        self.inner
            .throttle
            .acquire_blocking(bytes, &self.inner.stop)?;
        self.inner
            .manager
            .budget()
            .acquire_blocking(bytes, &self.inner.stop)?;
        self.inner.record.lock().progress.io_bytes += bytes;
        Ok(())
    }

    /// Waits until `bytes` more may be moved under the job's throttle and the
    /// manager's I/O budget shared by all jobs.
    pub async fn throttle(&self, bytes: u64) -> Result<()> {
        self.inner.throttle.acquire(bytes, &self.inner.stop).await?;
        self.inner
            .manager
            .budget()
            .acquire(bytes, &self.inner.stop)
            .await?;
        self.inner.record.lock().progress.io_bytes += bytes;
        Ok(())
    }

    /// A value the job stored with [`JobContext::set_checkpoint`].
    pub fn checkpoint(&self, key: &str) -> Option<Value> {
        self.inner.record.lock().checkpoint.get(key).cloned()
    }

    /// Stores `value` under `key` in the checkpoint and persists it at once.
    pub fn set_checkpoint(&self, key: &str, value: Value) -> Result<()> {
        self.update(|r| {
            if let Some(obj) = r.checkpoint.as_object_mut() {
                obj.insert(key.to_string(), value);
            }
        })
    }

    /// Stores several checkpoint values in one write.
    pub fn set_checkpoints(&self, values: &[(&str, Value)]) -> Result<()> {
        self.update(|r| {
            if let Some(obj) = r.checkpoint.as_object_mut() {
                for (k, v) in values {
                    obj.insert((*k).to_string(), v.clone());
                }
            }
        })
    }

    /// Records the tenant the job creates or writes ([`JobOwner::target_id`]).
    pub fn set_target(&self, target_id: u64) -> Result<()> {
        self.update(|r| r.owner.target_id = Some(target_id))
    }

    /// Enters a phase (persisted).
    pub fn set_phase(&self, phase: &str) -> Result<()> {
        self.update(|r| r.phase = phase.to_string())
    }

    /// Sets the totals of the current phase (0 = unknown). Enter the phase first
    /// ([`JobContext::set_phase`]); its counts start here.
    pub fn set_totals(&self, tasks: u64, rows: u64, bytes: u64) -> Result<()> {
        self.update(|r| {
            self.enter_counting(r);
            r.progress.tasks_total = tasks;
            r.progress.rows_total = rows;
            r.progress.bytes_total = bytes;
        })
    }

    /// Counts one step of a phase that runs outside [`JobContext::run_tasks`] as done.
    pub fn finish_step(&self) {
        let mut r = self.inner.record.lock();
        self.enter_counting(&mut r);
        r.progress.tasks_done += 1;
    }

    /// Before counting work: the counts of an earlier phase make way for this one's.
    fn enter_counting(&self, r: &mut JobRecord) {
        if self.inner.counts.lock().enter(r) {
            *self.inner.rate_base.lock() = (Instant::now(), 0);
        }
    }

    /// Counts work done; persisted at most once a second.
    pub fn add_progress(&self, rows: u64, bytes: u64) {
        {
            let mut r = self.inner.record.lock();
            self.enter_counting(&mut r);
            r.progress.rows_done += rows;
            r.progress.bytes_done += bytes;
        }
        let due = {
            let mut last = self.inner.last_persist.lock();
            let due = last.elapsed() >= PERSIST_EVERY;
            if due {
                *last = Instant::now();
            }
            due
        };
        if due {
            if let Err(e) = self.update(|_| {}) {
                tracing::warn!(job = self.id(), error = %e, "could not persist progress");
            }
        }
    }

    fn estimate(&self, p: &mut Progress) {
        p.keep_totals_ahead();
        let (io_since, io_base) = self.inner.io_base;
        let io_secs = io_since.elapsed().as_secs_f64();
        if io_secs >= 0.2 {
            p.io_bytes_per_sec = (p.io_bytes.saturating_sub(io_base) as f64 / io_secs) as u64;
        }
        let (since, base) = *self.inner.rate_base.lock();
        let secs = since.elapsed().as_secs_f64();
        if secs < 0.2 {
            return;
        }
        let moved = p.bytes_done.saturating_sub(base);
        let rate = moved as f64 / secs;
        p.bytes_per_sec = rate as u64;
        p.eta_secs = if p.bytes_total > 0 && rate > 0.0 {
            Some((p.bytes_total.saturating_sub(p.bytes_done) as f64 / rate).ceil() as u64)
        } else if p.tasks_total > 0 && p.tasks_done > 0 {
            // Sizes unknown up front (a backup): estimate from finished tasks.
            let per_task = secs / p.tasks_done as f64;
            Some((per_task * p.tasks_total.saturating_sub(p.tasks_done) as f64).ceil() as u64)
        } else {
            None
        };
    }

    /// Changes the record and persists it.
    pub(crate) fn update(&self, f: impl FnOnce(&mut JobRecord)) -> Result<()> {
        self.update_with(f, None)
    }

    /// [`Self::update`], and in the same commit a finished task's output row
    /// (phase, task id, output).
    fn update_with(
        &self,
        f: impl FnOnce(&mut JobRecord),
        task: Option<(&str, &str, &Value)>,
    ) -> Result<()> {
        let _order = self.inner.persist.lock();
        let rec = {
            let mut r = self.inner.record.lock();
            f(&mut r);
            r.updated_at = self.inner.manager.now();
            // Rate and ETA are derived; they are stored for readers of the record.
            if !r.state.is_final() {
                self.estimate(&mut r.progress);
            }
            r.clone()
        };
        let Some((phase, id, out)) = task else {
            return self.inner.manager.put(&rec);
        };
        let row = tenet_store::encode_system_row(out);
        self.inner.manager.inner.store.system_write(&[
            (JOBS_TABLE, &job_key(rec.id), Some(&encode(&rec))),
            (
                JOB_TASKS_TABLE,
                &task_key(rec.id, phase, Some(id)),
                Some(&row),
            ),
        ])?;
        Ok(())
    }

    /// Runs the tasks of phase `phase` on the worker pool, skipping those the
    /// checkpoint records as done, and returns every task's output in task order.
    /// Stops at the first error (other tasks see the cancel token only if the job was
    /// cancelled; on error they finish their current step and are dropped).
    pub async fn run_tasks(&self, phase: &str, tasks: Vec<Task>) -> Result<Vec<Value>> {
        self.set_phase(phase)?;
        let done = self.finished_tasks(phase)?;
        let count = |key: &str| -> u64 {
            done.values()
                .map(|o| o.get(key).and_then(Value::as_u64).unwrap_or(0))
                .sum()
        };
        let (rows, bytes) = (count("rows"), count("bytes"));
        let total = tasks.len() as u64;
        self.update(|r| {
            self.enter_counting(r);
            r.progress.tasks_total = total;
            r.progress.tasks_done = done.len() as u64;
            r.progress.rows_done = rows;
            r.progress.bytes_done = bytes;
        })?;
        *self.inner.rate_base.lock() = (Instant::now(), bytes);

        let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
        let mut set = tokio::task::JoinSet::new();
        for task in tasks {
            if done.contains_key(&task.id) {
                continue;
            }
            let ctx = self.clone();
            let workers = self.inner.manager.inner.workers.clone();
            let phase = phase.to_string();
            set.spawn(async move {
                let _permit = tokio::select! {
                    p = workers.acquire_owned() => p.expect("worker pool is never closed"),
                    _ = ctx.inner.stop.cancelled() => return Err(Error::Cancelled),
                };
                ctx.check_cancelled()?;
                let out = (task.run)(ctx.clone()).await?;
                ctx.finish_task(&phase, &task.id, &out)?;
                Ok::<_, Error>((task.id, out))
            });
        }
        // Wait for every task. After the first failure the others are told to stop
        // (and are waited for, so none still works when the job cleans up).
        let mut outputs = done;
        let mut first_err: Option<Error> = None;
        while let Some(joined) = set.join_next().await {
            let err = match joined {
                Ok(Ok((id, out))) => {
                    outputs.insert(id, out);
                    continue;
                }
                Ok(Err(e)) => e,
                Err(join) => Error::Failed(JobError::new(
                    Code::INTERNAL,
                    format!("a task of phase {phase} panicked: {join}"),
                )),
            };
            self.inner.stop.cancel();
            // A task that stopped because another failed is not the cause.
            let replace = match &first_err {
                None => true,
                Some(Error::Cancelled) => !matches!(err, Error::Cancelled),
                Some(_) => false,
            };
            if replace {
                first_err = Some(err);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(ids
            .iter()
            .map(|id| outputs.remove(id).unwrap_or(Value::Null))
            .collect())
    }

    /// The outputs of the tasks of `phase` that finished: rows of their own (and, in a
    /// record written before those, its checkpoint's `tasks.<phase>`).
    fn finished_tasks(&self, phase: &str) -> Result<HashMap<String, Value>> {
        let mut done: HashMap<String, Value> = self
            .checkpoint("tasks")
            .and_then(|t| t.get(phase).cloned())
            .and_then(|p| serde_json::from_value(p).ok())
            .unwrap_or_default();
        let store = &self.inner.manager.inner.store;
        let prefix = task_key(self.id(), phase, None);
        for (key, value) in store.system_scan_prefix(JOB_TASKS_TABLE, &prefix)? {
            let id = match tenet_store::keys::decode_pk(&key)?.get(2) {
                Some(tenet_store::keys::KeyValue::Str(id)) => id.clone(),
                _ => {
                    return Err(Error::Store(tenet_store::Error::Corrupt(format!(
                        "a task row of job {} has no task id",
                        self.id()
                    ))))
                }
            };
            done.insert(id, tenet_store::decode_system_row("task output", &value)?);
        }
        Ok(done)
    }

    /// Records a finished task: its output as a row of its own and the record's count,
    /// in one commit.
    fn finish_task(&self, phase: &str, id: &str, out: &Value) -> Result<()> {
        *self.inner.last_persist.lock() = Instant::now();
        self.update_with(|r| r.progress.tasks_done += 1, Some((phase, id, out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::JobOwner;

    /// A job of `tasks` tasks, each returning a 1 KiB output; on its second run the
    /// tasks it finished before must not run again.
    struct Many {
        tasks: usize,
        ran: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl JobKind for Many {
        fn kind(&self) -> &'static str {
            "many"
        }
        fn run(&self, ctx: JobContext) -> BoxFuture<'static, Result<Value>> {
            let (n, ran) = (self.tasks, self.ran.clone());
            Box::pin(async move {
                let tasks = (0..n)
                    .map(|i| {
                        let ran = ran.clone();
                        Task::new(format!("t{i:05}"), move |_| async move {
                            ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            Ok(json!({"i": i, "pad": "x".repeat(1024), "rows": 1}))
                        })
                    })
                    .collect();
                let out = ctx.run_tasks("work", tasks).await?;
                assert!(out.iter().enumerate().all(|(i, o)| o["i"] == i));
                Ok(json!({"tasks": out.len()}))
            })
        }
        fn cleanup(&self, _ctx: JobContext) -> BoxFuture<'static, Result<()>> {
            Box::pin(async { Ok(()) })
        }
    }

    #[test]
    fn task_outputs_are_rows_and_the_record_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let jobs = JobManager::new(store.clone(), 2);
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        jobs.register(Arc::new(Many {
            tasks: 2000,
            ran: ran.clone(),
        }));
        let job = jobs
            .create("many", "t", json!({}), None, JobOwner::default())
            .unwrap();
        let done = rt.block_on(jobs.run(job.id)).unwrap();
        assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
        assert_eq!(done.result.unwrap()["tasks"], 2000);
        assert_eq!(done.progress.tasks_done, 2000);
        // 2 MiB of outputs, none of it in the record.
        let stored = store
            .system_get(JOBS_TABLE, &job_key(job.id))
            .unwrap()
            .unwrap();
        assert!(stored.len() < 4096, "the record is {} bytes", stored.len());
        let rows = store
            .system_scan_prefix(JOB_TASKS_TABLE, &task_key(job.id, "work", None))
            .unwrap();
        assert_eq!(rows.len(), 2000);
        assert_eq!(ran.load(std::sync::atomic::Ordering::Relaxed), 2000);
        // Another phase name or job shares none of them.
        assert!(store
            .system_scan_prefix(JOB_TASKS_TABLE, &task_key(job.id, "wor", None))
            .unwrap()
            .is_empty());
    }
}
