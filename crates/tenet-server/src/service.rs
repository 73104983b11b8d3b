//! The API's operations against a store in this process. The HTTP handlers and the
//! embedded CLI both call this, so validation and results are the same everywhere.

use std::sync::Arc;

use serde_json::Value;
use tenet_backup::archiver::{ArchiveOptions, Archivers};
use tenet_backup::planner::Target;
use tenet_backup::standby::Standbys;
use tenet_backup::{Backups, RestoreRequest, Subject};
use tenet_jobs::JobManager;
use tenet_store::{
    AsOf, Column, ColumnType, RevertScope, RevertTo, ScanRange, Store, TableSpec, TenantOptions,
    TenantState, TenantUpdate, Ts,
};
use tokio::runtime::{Handle, Runtime};

use crate::admin::Admin;
use crate::api::*;
use crate::auth::{Caller, Role, Tokens};
use crate::error::{ApiError, ApiResult};
use tenet_store::Code;

/// Default and largest number of rows a scan returns.
pub const DEFAULT_SCAN_LIMIT: usize = 1000;
pub const MAX_SCAN_LIMIT: usize = 100_000;

/// Largest transaction, the same embedded and through a server: at most this many
/// operations, and at most this many bytes of operations in compact JSON (the sum of
/// `{"op":"put","table":…,"row":…}` of each). The server's body limit is larger, so
/// any transaction within these fits in a request.
pub const MAX_TXN_OPS: usize = 1_000_000;
pub const MAX_TXN_BYTES: u64 = 64 << 20;

/// Allowed ranges (inclusive) of the API's durations and sizes; docs/api.md lists them.
pub mod bounds {
    /// Seconds of history a tenant keeps readable: up to 10 years.
    pub const HISTORY_RETENTION_SECS: (u64, u64) = (0, 10 * 365 * 24 * 3600);
    /// I/O limit of a backup, verify or restore job: 1 KiB/s to 1 TiB/s.
    pub const THROTTLE_BYTES_PER_SEC: (u64, u64) = (1 << 10, 1 << 40);
    // The archiver's settings are bounded by `ArchiveOptions::validate`
    // (`tenet_backup::archiver::{INTERVAL_MS_RANGE, SEGMENT_MAX_BYTES_RANGE,
    // BUDGET_SECS_RANGE}`).
    /// Rows a scan returns.
    pub const SCAN_LIMIT: (u64, u64) = (1, super::MAX_SCAN_LIMIT as u64);
}

/// Checks that `value` of parameter `name` lies in `range`.
fn check_range(name: &str, value: u64, (lo, hi): (u64, u64)) -> ApiResult<u64> {
    if value < lo || value > hi {
        return Err(ApiError::invalid(format!(
            "{name} {value} is out of range; use {lo} to {hi}"
        )));
    }
    Ok(value)
}

/// [`check_range`] for an optional parameter.
fn check_opt(name: &str, value: Option<u64>, range: (u64, u64)) -> ApiResult<Option<u64>> {
    value.map(|v| check_range(name, v, range)).transpose()
}

/// Counts bytes written to it.
struct ByteCount(u64);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Refuses a transaction over [`MAX_TXN_OPS`] or [`MAX_TXN_BYTES`]. The HTTP client
/// checks too before sending, so a transaction too large for the body limit gets this
/// answer as well.
pub(crate) fn check_txn_size(ops: &[TxnOp]) -> ApiResult<()> {
    if ops.len() > MAX_TXN_OPS {
        return Err(ApiError::txn_too_large(format!(
            "the transaction has {} operations; a transaction holds at most {MAX_TXN_OPS} \
             operations and {MAX_TXN_BYTES} bytes of operations in compact JSON",
            ops.len()
        )));
    }
    let mut size = ByteCount(0);
    for op in ops {
        serde_json::to_writer(&mut size, op)
            .map_err(|e| ApiError::invalid(format!("operation does not encode: {e}")))?;
        if size.0 > MAX_TXN_BYTES {
            return Err(ApiError::txn_too_large(format!(
                "the transaction is larger than {MAX_TXN_BYTES} bytes of operations in compact \
                 JSON (the limit of one transaction, at most {MAX_TXN_OPS} operations); \
                 a transaction is atomic only within this limit"
            )));
        }
    }
    Ok(())
}

/// The store behind the API, and the jobs running on it.
#[derive(Clone, Debug)]
pub struct Service {
    pub(crate) store: Store,
    pub(crate) backups: Backups,
    pub(crate) archivers: Archivers,
    standbys: Standbys,
    /// Runs the strategies; ticks only in a server (`server.rs` starts it).
    pub(crate) scheduler: tenet_backup::scheduler::Scheduler,
    /// The protection overview (refreshed in the background only in a server).
    pub(crate) overview: tenet_backup::overview::Overview,
    /// HTTP latencies for `/metrics`.
    http: crate::metrics::SharedHttp,
    pub(crate) runtime: Handle,
    /// The API tokens of this store.
    pub(crate) tokens: Tokens,
    /// Who this service acts for ([`Service::acting_as`]).
    pub(crate) caller: Caller,
    /// Set when this service made its own runtime (embedded CLI); keeps it alive.
    _own_runtime: Option<Arc<Runtime>>,
    detached: bool,
}

impl Service {
    /// A service for an embedded CLI: jobs run on a runtime of its own, only while this
    /// process lives.
    pub fn new(store: Store) -> ApiResult<Self> {
        let rt = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("tenet-jobs")
                .enable_all()
                .build()
                .map_err(|e| ApiError::internal(format!("cannot start a runtime: {e}")))?,
        );
        let mut s = Self::with_runtime(store, rt.handle().clone())?;
        s._own_runtime = Some(rt);
        s.detached = false;
        Ok(s)
    }

    /// A service inside a server: jobs run on `runtime` in the background.
    pub fn with_runtime(store: Store, runtime: Handle) -> ApiResult<Self> {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        let jobs = JobManager::new(store.clone(), workers);
        let backups = Backups::new(jobs.clone());
        let archivers = Archivers::new(store.clone(), runtime.clone());
        let scheduler = tenet_backup::scheduler::Scheduler::new(
            backups.clone(),
            archivers.clone(),
            tenet_backup::scheduler::Limits::default(),
        );
        let svc = Service {
            overview: tenet_backup::overview::Overview::new(
                backups.clone(),
                archivers.clone(),
                scheduler.clone(),
            ),
            scheduler,
            http: Default::default(),
            backups,
            archivers,
            standbys: Standbys::new(store.clone(), runtime.clone()),
            tokens: Tokens::load(&store)?,
            caller: Caller::local(),
            store,
            runtime,
            _own_runtime: None,
            detached: true,
        };
        // Not the service itself: that would be a cycle (service → jobs → kind →
        // service) that keeps the store from ever closing cleanly.
        jobs.register(Arc::new(crate::switchover::Switchover {
            archivers: svc.archivers.clone(),
            standbys: svc.standbys.clone(),
        }));
        if let Err(e) = tenet_backup::strategy::register_all(&svc.store) {
            tracing::warn!(error = %e, "cannot read named repositories");
        }
        Ok(svc)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn scheduler(&self) -> &tenet_backup::scheduler::Scheduler {
        &self.scheduler
    }

    pub fn overview(&self) -> &tenet_backup::overview::Overview {
        &self.overview
    }

    pub(crate) fn http_metrics(&self) -> &crate::metrics::HttpMetrics {
        &self.http
    }

    pub fn jobs(&self) -> &JobManager {
        self.backups.jobs()
    }

    pub fn archivers(&self) -> &Archivers {
        &self.archivers
    }

    pub fn standbys(&self) -> &Standbys {
        &self.standbys
    }

    /// Refused unless this is a server: archivers and standby followers live there.
    pub(crate) fn require_server(&self, what: &str) -> ApiResult<()> {
        if self.detached {
            return Ok(());
        }
        Err(ApiError::new(
            Code::SERVER_REQUIRED,
            format!(
                "{what} runs inside `tenet serve`; start a server on this data directory \
                 (`tenet serve --data-dir …`) and run this again"
            ),
        ))
    }

    /// The runtime jobs and archivers run on.
    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Starts a created job in the background and returns its record.
    pub(crate) fn start(&self, job: tenet_jobs::JobRecord) -> ApiResult<JobInfo> {
        self.jobs().start(job.id)?;
        self.job_info(job.id)
    }

    /// Refuses to touch a tenant an unfinished restore is building (its job owns it;
    /// cancelling the job drops it).
    fn check_not_restoring(&self, tenant: &str, action: &str) -> ApiResult<()> {
        let t = self.store.tenant(tenant)?;
        if t.state != TenantState::Restoring {
            return Ok(());
        }
        let owner = self
            .jobs()
            .list()?
            .into_iter()
            .find(|j| !j.state.is_final() && j.owner.target_id == Some(t.id));
        match owner {
            Some(j) => Err(tenet_store::Error::TenantState {
                tenant: t.name,
                state: t.state.to_string(),
                action: action.into(),
                hint: format!(
                    "; restore job {} is building it: cancel it with `tenet jobs cancel {}` \
                     (that drops the tenant)",
                    j.id, j.id
                ),
            }
            .into()),
            None => Ok(()),
        }
    }

    pub(crate) fn info(&self, r: tenet_jobs::JobRecord) -> JobInfo {
        let live = self.jobs().is_live(r.id);
        // A backup names its tenant (of this store) by id: show its current name. (A
        // restore's or verify's source id may be another store's, so those keep the
        // name they were given.)
        let of_this_store = [
            tenet_backup::KIND_BACKUP_FULL,
            tenet_backup::KIND_BACKUP_INCR,
        ]
        .contains(&r.kind.as_str());
        let current = r
            .params
            .get("tenant_id")
            .and_then(serde_json::Value::as_u64)
            .filter(|_| of_this_store)
            .and_then(|id| self.store.tenant_by_id(id));
        let mut info = JobInfo { live, ..r.into() };
        if let Some(t) = current {
            info.tenant = t.name;
        }
        if !live && !info.is_final() {
            // Interrupted: the stored rate and ETA were of a process that is gone.
            info.progress.eta_secs = None;
            info.progress.bytes_per_sec = 0;
            info.progress.io_bytes_per_sec = 0;
        }
        info
    }

    pub(crate) fn job_info(&self, id: u64) -> ApiResult<JobInfo> {
        Ok(self.info(self.jobs().get(id)?))
    }

    /// Resolves a tenant named at the edge to its id; it may be dropped, or known only
    /// to `repo` (see [`Backups::resolve`]).
    pub(crate) fn subject(&self, name: &str, repo: Option<&str>) -> ApiResult<Subject> {
        Ok(self.runtime.block_on(self.backups.resolve(name, repo))?)
    }

    /// The id of a tenant of this store, named at the edge.
    /// The id of a tenant of this store, named at the edge (a name or `#<id>`).
    pub(crate) fn live_tenant(&self, name: &str) -> ApiResult<u64> {
        if let Some(id) = name.strip_prefix('#').and_then(|n| n.parse::<u64>().ok()) {
            return Ok(self.store.resolve(id)?.id);
        }
        Ok(self.store.tenant(name)?.id)
    }

    /// The name to show for a tenant id (its current one if it exists, else the name
    /// recorded), the recorded name where it differs, and whether it exists.
    /// A tenant of this store with that id is the same tenant only if it was created at
    /// `created` (when known): ids are per store.
    fn names(
        &self,
        tenant_id: u64,
        created: Option<tenet_store::Ts>,
        recorded: &str,
    ) -> (String, Option<String>, bool) {
        // Records and manifests name a history: its tenant here is the one whose
        // history it is (a standby or promoted standby continues its source's), the
        // writable one first.
        let live = self
            .store
            .tenants()
            .into_iter()
            .filter(|t| {
                let h = t.history_ref();
                h.id == tenant_id && created.is_none_or(|c| c == h.created_ts)
            })
            .max_by_key(|t| t.state == tenet_store::TenantState::Active);
        match live {
            Some(t) if t.name == recorded => (t.name, None, true),
            Some(t) => (t.name, Some(recorded.to_string()), true),
            None => (recorded.to_string(), None, false),
        }
    }

    fn backup_info(&self, r: tenet_backup::BackupRecord) -> BackupInfo {
        let (tenant, tenant_at_backup, tenant_live) =
            self.names(r.tenant_id, r.tenant_created_ts, &r.tenant_name);
        BackupInfo {
            tenant,
            tenant_at_backup,
            tenant_live,
            ..r.into()
        }
    }

    fn archive_info(&self, tenant_id: u64) -> ApiResult<ArchiveInfo> {
        let r = self.runtime.block_on(self.archivers.status(tenant_id))?;
        let st = r.state;
        let until = r.protection.restorable_until;
        Ok(ArchiveInfo {
            running: r.running,
            tenant: r.tenant,
            tenant_id: st.tenant_id,
            status: serde_json::to_value(st.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            repo: st.repo,
            checkpoint_ts: st.checkpoint.0,
            checkpoint_time: st.checkpoint.to_rfc3339(),
            restorable_until_ts: until.map(|t| t.0),
            restorable_until_time: until.map(|t| t.to_rfc3339()),
            rpo_ms: r.protection.rpo_ms,
            problem: r.problem,
            backup_job: None,
            segments: st.segments,
            records: st.records,
            bytes: st.bytes,
            interval_ms: st.options.interval_ms,
            error: st.error,
            started_at: st.started_at,
        })
    }

    /// `restore --standby`: the source's newest state into a new standby.
    fn create_standby(&self, req: &CreateRestore, repo: Option<&str>) -> ApiResult<JobInfo> {
        if req.to.is_some() || req.before_commit.is_some() || req.backup_id.is_some() {
            return Err(ApiError::invalid(
                "a standby starts at its source's newest restorable state and follows it: \
                 give no `to`, `before_commit` or `backup_id` (promote it with `until` to \
                 stop at a time)",
            ));
        }
        if req.in_place || req.target.is_empty() {
            return Err(ApiError::invalid(
                "a standby is a new tenant: give `target` (its name), not `in_place`",
            ));
        }
        let poll = std::time::Duration::from_millis(
            req.poll_ms
                .unwrap_or(tenet_backup::standby::DEFAULT_POLL.as_millis() as u64),
        );
        if !(10..=60_000).contains(&poll.as_millis()) {
            return Err(ApiError::invalid(format!(
                "`poll_ms` {} is out of range: 10 to 60000",
                poll.as_millis()
            )));
        }
        let source = self.subject(&req.source, repo)?;
        let job =
            self.runtime
                .block_on(self.backups.start_standby(&source, &req.target, repo, poll))?;
        self.start(job)
    }

    /// The repository a request names (by name, path or URL), or the default one.
    fn repo_or_default(&self, repo: &Option<String>) -> ApiResult<String> {
        match self.repo_arg(repo)? {
            Some(url) => Ok(url),
            None => Ok(tenet_backup::strategy::default_repo_url(&self.store)?),
        }
    }

    /// The URL of a repository a request names (by name, path or URL), if it names one.
    pub(crate) fn repo_arg(&self, repo: &Option<String>) -> ApiResult<Option<String>> {
        if let Some(r) = repo {
            self.allow_repo_path(r)?;
        }
        Ok(repo
            .as_deref()
            .map(|r| tenet_backup::strategy::resolve_repo(&self.store, r))
            .transpose()?)
    }
}

/// A standby's report as the API answers it.
fn standby_info(r: tenet_backup::standby::StandbyReport) -> StandbyInfo {
    StandbyInfo {
        tenant: r.tenant,
        tenant_id: r.tenant_id,
        history_id: r.history_id,
        state: r.state.to_string(),
        source: r.source,
        repo: r.repo,
        applied_ts: r.applied_ts.0,
        applied_time: r.applied_time,
        archived_until_ts: r.archived_until_ts.0,
        archived_until_time: r.archived_until_time,
        lag_ms: r.lag_ms,
        behind_ms: r.behind_ms,
        archive_idle_ms: r.archive_idle_ms,
        segments: r.segments,
        records: r.records,
        running: r.running,
        last_error: r.last_error,
        paused: r.paused,
        problem: r.problem,
    }
}

fn parse_as_of(as_of: Option<&str>) -> ApiResult<AsOf> {
    Ok(match as_of {
        None | Some("") => AsOf::Latest,
        Some(s) => AsOf::parse(s)?,
    })
}

fn parse_json(what: &str, s: &str) -> ApiResult<Value> {
    serde_json::from_str(s).map_err(|e| {
        ApiError::invalid(format!(
            "{what} `{s}` is not valid JSON ({e}); write a key as 5, \"abc\" or [1, \"a\"]"
        ))
    })
}

fn column(c: &ColumnInfo) -> ApiResult<Column> {
    tenet_store::schema::validate_name("column", &c.name)?;
    Ok(Column {
        name: c.name.clone(),
        ty: c.ty.parse::<ColumnType>()?,
    })
}

impl Admin for Service {
    fn health(&self) -> ApiResult<Health> {
        Ok(Health {
            status: "ok".into(),
            data_dir: std::fs::canonicalize(self.store.path())
                .unwrap_or_else(|_| self.store.path().to_path_buf())
                .display()
                .to_string(),
            version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    fn list_tenants(&self) -> ApiResult<Vec<TenantInfo>> {
        self.allow(Role::Read, None)?;
        // A job's scratch tenants are its own business.
        Ok(self
            .store
            .tenants()
            .into_iter()
            .filter(|t| !t.is_scratch() && self.sees_tenant(t.id))
            .map(Into::into)
            .collect())
    }

    fn create_tenant(&self, req: &CreateTenant) -> ApiResult<TenantResponse> {
        self.allow(Role::Admin, None)?;
        let retention = check_opt(
            "history_retention_secs",
            req.history_retention_secs,
            bounds::HISTORY_RETENTION_SECS,
        )?;
        let (rec, info) = self.store.create_tenant(
            &req.name,
            TenantOptions {
                history_retention_secs: retention,
                ..Default::default()
            },
        )?;
        Ok(TenantResponse {
            tenant: rec.into(),
            commit: info.into(),
        })
    }

    fn get_tenant(&self, tenant: &str) -> ApiResult<TenantInfo> {
        self.allow(Role::Read, Some(tenant))?;
        Ok(self.store.tenant(tenant)?.into())
    }

    fn alter_tenant(&self, tenant: &str, req: &AlterTenant) -> ApiResult<TenantResponse> {
        // A rename could tell whether another tenant's name is taken: an admin's.
        let need = if req.name.is_some() {
            Role::Admin
        } else {
            Role::Operator
        };
        self.allow(need, Some(tenant))?;
        let state = req
            .state
            .as_deref()
            .map(|s| {
                s.parse::<TenantState>().map_err(|_| {
                    ApiError::invalid(format!(
                        "unknown tenant state `{s}`; a tenant can be set to active or read_only"
                    ))
                })
            })
            .transpose()?;
        if let Some(st) = state.filter(|s| !s.settable_by_hand()) {
            return Err(ApiError::invalid(format!(
                "a tenant cannot be set to `{st}` by hand; allowed: active, read_only"
            )));
        }
        check_opt(
            "history_retention_secs",
            req.history_retention_secs,
            bounds::HISTORY_RETENTION_SECS,
        )?;
        if req.name.is_none() && state.is_none() && req.history_retention_secs.is_none() {
            return Err(ApiError::invalid(
                "nothing to change: give a new name, a state (active, read_only) or history_retention_secs",
            ));
        }
        self.check_not_restoring(tenant, "changing")?;
        if let Some(st) = state {
            tenet_store::lifecycle::check(
                &self.store.tenant(tenant)?,
                tenet_store::lifecycle::TenantAction::SetState(st),
            )?;
        }
        let (rec, info) = self.store.alter_tenant(
            tenant,
            TenantUpdate {
                name: req.name.clone(),
                state,
                history_retention_secs: req.history_retention_secs,
            },
        )?;
        Ok(TenantResponse {
            tenant: rec.into(),
            commit: info.into(),
        })
    }

    fn drop_tenant(&self, tenant: &str) -> ApiResult<Commit> {
        self.allow(Role::Admin, Some(tenant))?;
        self.check_not_restoring(tenant, "dropping")?;
        // What it committed last goes to its archive first: its standbys (and restores
        // of its history) would miss it otherwise.
        let id = self.live_tenant(tenant)?;
        if self.archivers.is_running(id) {
            let upto = self.store.tenant_visible_ts(id);
            self.runtime
                .block_on(
                    self.archivers
                        .flush(id, upto, std::time::Duration::from_secs(30)),
                )
                .map_err(|e| {
                    ApiError::new(
                        Code::ARCHIVE_BEHIND,
                        format!(
                            "`{tenant}` was not dropped: its last commits could not be \
                             archived ({e}); stop its archive (`tenet archive stop {tenant}`) \
                             to drop it without them"
                        ),
                    )
                })?;
            self.archivers.stop(id)?;
        }
        let commit = self.store.drop_tenant(id)?;
        // Its tokens can see nothing any more (ids are never reused): say so.
        for t in self.tokens.list() {
            if t.tenant_id == Some(id) && t.revoked_ms.is_none() {
                self.tokens.revoke(t.id)?;
                self.audit(
                    "token_revoke",
                    Some((tenant, id)),
                    serde_json::json!({ "token_id": t.id, "why": "its tenant was dropped" }),
                )?;
            }
        }
        Ok(commit.into())
    }

    fn list_tables(&self, tenant: &str, q: &AsOfQuery) -> ApiResult<Vec<TableInfo>> {
        self.allow(Role::Read, Some(tenant))?;
        let txn = self
            .store
            .read_at(tenant, &parse_as_of(q.as_of.as_deref())?)?;
        Ok(txn
            .tables()?
            .iter()
            .map(|t| TableInfo::from(&**t))
            .collect())
    }

    fn create_table(&self, tenant: &str, req: &CreateTable) -> ApiResult<TableResponse> {
        self.allow(Role::Write, Some(tenant))?;
        let spec = TableSpec {
            name: req.name.clone(),
            columns: req.columns.iter().map(column).collect::<ApiResult<_>>()?,
            primary_key: req.primary_key.clone(),
        };
        let (def, info) = self.store.with_txn(tenant, |txn| txn.create_table(&spec))?;
        Ok(TableResponse {
            table: TableInfo::from(&*def),
            commit: info.into(),
        })
    }

    fn get_table(&self, tenant: &str, table: &str, q: &AsOfQuery) -> ApiResult<TableInfo> {
        self.allow(Role::Read, Some(tenant))?;
        let txn = self
            .store
            .read_at(tenant, &parse_as_of(q.as_of.as_deref())?)?;
        Ok(TableInfo::from(&*txn.table(table)?))
    }

    fn alter_table(&self, tenant: &str, table: &str, req: &AlterTable) -> ApiResult<TableResponse> {
        self.allow(Role::Write, Some(tenant))?;
        if req.add_columns.is_empty() {
            return Err(ApiError::invalid(
                "nothing to change: give one or more columns to add (add_columns)",
            ));
        }
        let columns = req
            .add_columns
            .iter()
            .map(column)
            .collect::<ApiResult<Vec<_>>>()?;
        let (def, info) = self.store.with_txn(tenant, |txn| {
            let mut def = txn.table(table)?;
            for c in columns {
                def = txn.add_column(table, c)?;
            }
            Ok(def)
        })?;
        Ok(TableResponse {
            table: TableInfo::from(&*def),
            commit: info.into(),
        })
    }

    fn drop_table(&self, tenant: &str, table: &str) -> ApiResult<Commit> {
        self.allow(Role::Write, Some(tenant))?;
        let ((), info) = self.store.with_txn(tenant, |txn| txn.drop_table(table))?;
        Ok(info.into())
    }

    fn put_rows(&self, tenant: &str, table: &str, rows: Vec<Value>) -> ApiResult<WriteResponse> {
        self.txn(
            tenant,
            TxnRequest {
                ops: rows
                    .into_iter()
                    .map(|row| TxnOp::Put {
                        table: table.to_string(),
                        row,
                    })
                    .collect(),
            },
        )
    }

    fn delete_rows(&self, tenant: &str, table: &str, keys: Vec<Value>) -> ApiResult<WriteResponse> {
        self.txn(
            tenant,
            TxnRequest {
                ops: keys
                    .into_iter()
                    .map(|key| TxnOp::Delete {
                        table: table.to_string(),
                        key,
                    })
                    .collect(),
            },
        )
    }

    fn txn(&self, tenant: &str, req: TxnRequest) -> ApiResult<WriteResponse> {
        self.allow(Role::Write, Some(tenant))?;
        if req.ops.is_empty() {
            return Err(ApiError::invalid("the transaction has no operations"));
        }
        check_txn_size(&req.ops)?;
        let writes = req.ops.len();
        let (absent, info) = self.store.with_txn(tenant, |txn| {
            let mut absent = 0;
            for (i, op) in req.ops.iter().enumerate() {
                let r = match op {
                    TxnOp::Put { table, row } => txn.put(table, row),
                    TxnOp::Delete { table, key } => txn.delete(table, key).map(|existed| {
                        absent += usize::from(!existed);
                    }),
                };
                r.map_err(|e| match e {
                    tenet_store::Error::InvalidRow { table, reason } if writes > 1 => {
                        tenet_store::Error::InvalidRow {
                            table,
                            reason: format!("operation {} of {writes}: {reason}", i + 1),
                        }
                    }
                    other => other,
                })?;
            }
            Ok(absent)
        })?;
        Ok(WriteResponse {
            writes,
            absent,
            commit: info.into(),
        })
    }

    fn get_row(&self, tenant: &str, table: &str, q: &GetQuery) -> ApiResult<RowResponse> {
        self.allow(Role::Read, Some(tenant))?;
        let key = parse_json("key", &q.key)?;
        let txn = self
            .store
            .read_at(tenant, &parse_as_of(q.as_of.as_deref())?)?;
        let row = txn.get(table, &key)?;
        let (read_ts, read_time) = read_stamp(txn.start_ts());
        Ok(RowResponse {
            row,
            read_ts,
            read_time,
        })
    }

    fn scan(&self, tenant: &str, table: &str, q: &ScanQuery) -> ApiResult<ScanResponse> {
        self.allow(Role::Read, Some(tenant))?;
        let limit = q.limit.unwrap_or(DEFAULT_SCAN_LIMIT) as u64;
        let limit = check_range("limit", limit, bounds::SCAN_LIMIT)? as usize;
        let range = ScanRange {
            from: q
                .from
                .as_deref()
                .map(|s| parse_json("from", s))
                .transpose()?,
            to: q.to.as_deref().map(|s| parse_json("to", s)).transpose()?,
            limit: Some(limit),
        };
        let txn = self
            .store
            .read_at(tenant, &parse_as_of(q.as_of.as_deref())?)?;
        let rows = txn.scan(table, &range)?;
        let (read_ts, read_time) = read_stamp(txn.start_ts());
        Ok(ScanResponse {
            rows,
            read_ts,
            read_time,
        })
    }

    fn list_snapshots(&self, tenant: &str) -> ApiResult<Vec<SnapshotInfo>> {
        self.allow(Role::Read, Some(tenant))?;
        let txn = self.store.read_at(tenant, &AsOf::Latest)?;
        Ok(txn.snapshots()?.iter().map(Into::into).collect())
    }

    fn create_snapshot(&self, tenant: &str, req: &CreateSnapshot) -> ApiResult<SnapshotResponse> {
        self.allow(Role::Write, Some(tenant))?;
        let (snap, info) = self
            .store
            .with_txn(tenant, |txn| txn.create_snapshot(&req.name))?;
        Ok(SnapshotResponse {
            snapshot: (&snap).into(),
            commit: info.into(),
        })
    }

    fn drop_snapshot(&self, tenant: &str, snapshot: &str) -> ApiResult<Commit> {
        self.allow(Role::Write, Some(tenant))?;
        let ((), info) = self
            .store
            .with_txn(tenant, |txn| txn.drop_snapshot(snapshot))?;
        Ok(info.into())
    }

    fn rollback_snapshot(&self, tenant: &str, snapshot: &str) -> ApiResult<RevertResponse> {
        self.allow(Role::Operator, Some(tenant))?;
        // `@name`, as in time expressions, means the same snapshot.
        let snapshot = snapshot.strip_prefix('@').unwrap_or(snapshot);
        tenet_store::schema::validate_name("snapshot", snapshot)?;
        self.check_not_restoring(tenant, "putting it back in place")?;
        let to = RevertTo::AsOf(AsOf::Snapshot(snapshot.to_string()));
        Ok(self.store.revert(tenant, &to, &RevertScope::Tenant)?.into())
    }

    fn revert(&self, tenant: &str, req: &RevertRequest) -> ApiResult<RevertResponse> {
        self.allow(Role::Operator, Some(tenant))?;
        let to = match (&req.to, req.before_commit) {
            (Some(to), None) => RevertTo::AsOf(AsOf::parse(to)?),
            (None, Some(c)) => RevertTo::BeforeCommit(Ts::from_number(c)?),
            _ => {
                return Err(ApiError::invalid(
                    "give exactly one of `to` (a time, commit ts, relative time like -5m, or \
                     @snapshot) and `before_commit` (the ts of the commit to undo)",
                ))
            }
        };
        let scope = match (&req.table, &req.from_key, &req.to_key) {
            (None, None, None) => RevertScope::Tenant,
            (None, _, _) => {
                return Err(ApiError::invalid(
                    "a key range (from_key, to_key) needs the `table` it belongs to",
                ))
            }
            (Some(t), None, None) => RevertScope::Table(t.clone()),
            (Some(t), from, to) => RevertScope::Range {
                table: t.clone(),
                from: from.clone(),
                to: to.clone(),
            },
        };
        self.check_not_restoring(tenant, "putting it back in place")?;
        let mut out: RevertResponse = self.store.revert(tenant, &to, &scope)?.into();
        out.scope = match &scope {
            RevertScope::Tenant => "tenant".into(),
            RevertScope::Table(t) => format!("table {t}"),
            RevertScope::Range { table, from, to } => format!(
                "table {table}, keys {}..{}",
                from.as_ref().map(Value::to_string).unwrap_or_default(),
                to.as_ref().map(Value::to_string).unwrap_or_default()
            ),
        };
        Ok(out)
    }

    fn create_backup(&self, req: &CreateBackup) -> ApiResult<JobInfo> {
        self.allow(Role::Operator, Some(&req.tenant))?;
        let tenant = self.live_tenant(&req.tenant)?;
        check_opt(
            "throttle_bytes_per_sec",
            req.throttle_bytes_per_sec,
            bounds::THROTTLE_BYTES_PER_SEC,
        )?;
        let job = match req.kind.as_deref().unwrap_or("full") {
            "full" => {
                let repo = self.repo_or_default(&req.repo)?;
                self.runtime.block_on(self.backups.start_full(
                    tenant,
                    &repo,
                    req.throttle_bytes_per_sec,
                ))?
            }
            "incr" => {
                let repo = self.repo_arg(&req.repo)?;
                self.runtime.block_on(self.backups.start_incr(
                    tenant,
                    repo.as_deref(),
                    req.throttle_bytes_per_sec,
                ))?
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown backup kind `{other}`; kinds are full and incr"
                )))
            }
        };
        self.start(job)
    }

    fn list_backups(&self, q: &ListBackupsQuery) -> ApiResult<Vec<BackupInfo>> {
        self.allow(Role::Read, q.tenant.as_deref())?;
        let repo = self.repo_arg(&q.repo)?;
        let tenant = q
            .tenant
            .as_deref()
            .map(|t| self.subject(t, repo.as_deref()))
            .transpose()?;
        let records = match &repo {
            Some(r) => self
                .runtime
                .block_on(self.backups.list_repo(r, tenant.as_ref()))?,
            None => self.backups.list(tenant.as_ref().map(|t| t.id))?,
        };
        Ok(records
            .into_iter()
            .filter(|r| self.sees_history(r.tenant_id, r.tenant_created_ts))
            .map(|r| self.backup_info(r))
            .collect())
    }

    fn get_backup(&self, id: &str, q: &RepoQuery) -> ApiResult<BackupDetail> {
        self.allow_backup(Role::Read, id)?;
        let repo = self.repo_arg(&q.repo)?;
        let (rec, m) = self
            .runtime
            .block_on(self.backups.show(id, repo.as_deref()))?;
        let (tenant, tenant_at_backup, _) =
            self.names(m.tenant_id, m.tenant_created_ts, &m.tenant_name);
        Ok(BackupDetail {
            id: m.backup_id.clone(),
            tenant_id: m.tenant_id,
            tenant,
            tenant_at_backup,
            repo: rec
                .as_ref()
                .map(|r| r.repo.clone())
                .or(repo)
                .unwrap_or_default(),
            backup_ts: m.backup_ts.0,
            backup_time: m.backup_time.clone(),
            started_at: m.started_at.clone(),
            finished_at: m.finished_at.clone(),
            tool_version: m.tool_version.clone(),
            rows: m.rows,
            logical_bytes: m.logical_bytes,
            stored_bytes: m.stored_bytes,
            recorded: rec.is_some(),
            tables: m
                .tables
                .iter()
                .map(|t| BackupTableInfo {
                    name: t.def.name.clone(),
                    source_table_id: t.def.id,
                    rows: t.rows,
                    logical_bytes: t.logical_bytes,
                    files: t.files.len() as u64,
                    stored_bytes: t.files.iter().map(|f| f.size).sum(),
                    digest: t.digest.clone(),
                })
                .collect(),
        })
    }

    fn delete_backup(&self, id: &str, q: &DeleteBackupQuery) -> ApiResult<BackupInfo> {
        self.allow_backup(Role::Operator, id)?;
        let rec = self.runtime.block_on(self.backups.delete(id, q.force))?;
        Ok(self.backup_info(rec))
    }

    fn verify_backup(&self, id: &str, req: &VerifyBackup) -> ApiResult<JobInfo> {
        self.allow_backup(Role::Operator, id)?;
        check_opt(
            "throttle_bytes_per_sec",
            req.throttle_bytes_per_sec,
            bounds::THROTTLE_BYTES_PER_SEC,
        )?;
        let repo = self.repo_arg(&req.repo)?;
        let job = self.runtime.block_on(self.backups.start_verify(
            id,
            repo.as_deref(),
            req.throttle_bytes_per_sec,
        ))?;
        self.start(job)
    }

    fn create_restore(&self, req: &CreateRestore) -> ApiResult<JobInfo> {
        // In place, a tenant's operator puts its tenant back; a new tenant is an admin's.
        match req.in_place && !req.standby {
            true => self.allow(Role::Operator, Some(&req.source))?,
            false => self.allow(Role::Admin, None)?,
        }
        check_opt(
            "throttle_bytes_per_sec",
            req.throttle_bytes_per_sec,
            bounds::THROTTLE_BYTES_PER_SEC,
        )?;
        let repo = self.repo_arg(&req.repo)?;
        if req.standby {
            return self.create_standby(req, repo.as_deref());
        }
        if req.poll_ms.is_some() {
            return Err(ApiError::invalid(
                "`poll_ms` is for a standby: give `standby: true`",
            ));
        }
        let mut targets = Vec::new();
        if let Some(to) = &req.to {
            // The same expressions as an as-of: a time, a commit ts, a relative time
            // (against this store's clock), @snapshot (of the source tenant), latest.
            targets.push(match AsOf::parse(to)? {
                AsOf::Ts(ts) => Target::At(ts),
                AsOf::Ago(d) => Target::At(self.store.ts_ago(d)),
                AsOf::Latest => Target::Latest,
                snap @ AsOf::Snapshot(_) => {
                    Target::At(self.store.read_at(&req.source, &snap)?.start_ts())
                }
            });
        }
        if let Some(ts) = req.before_commit {
            targets.push(Target::BeforeCommit(tenet_store::Ts::from_number(ts)?));
        }
        if req.latest {
            targets.push(Target::Latest);
        }
        if let Some(id) = &req.backup_id {
            targets.push(Target::Backup(id.clone()));
        }
        let [target] = targets.as_slice() else {
            return Err(ApiError::invalid(
                "say what to restore with exactly one of: backup_id, to, before_commit, latest",
            ));
        };
        let job = match (req.in_place, req.target.is_empty()) {
            (true, true) => {
                let source = self.subject(&req.source, repo.as_deref())?;
                self.check_not_restoring(&req.source, "restoring it in place")?;
                self.runtime.block_on(self.backups.start_restore_in_place(
                    &source,
                    target,
                    repo.as_deref(),
                    req.throttle_bytes_per_sec,
                ))?
            }
            (true, false) => {
                return Err(ApiError::invalid(
                    "an in-place restore puts `source` itself back: give no `target`",
                ))
            }
            (false, true) => {
                return Err(ApiError::invalid(
                    "give `target` (the name of a new tenant), or `in_place: true` to put \
                     `source` itself back",
                ))
            }
            (false, false) => match target {
                Target::Backup(id) => {
                    let source = (!req.source.is_empty())
                        .then(|| self.subject(&req.source, repo.as_deref()))
                        .transpose()?;
                    self.runtime
                        .block_on(self.backups.start_restore(&RestoreRequest {
                            source,
                            backup_id: id.clone(),
                            target: req.target.clone(),
                            repo,
                            throttle_bytes_per_sec: req.throttle_bytes_per_sec,
                        }))?
                }
                t => {
                    let source = self.subject(&req.source, repo.as_deref())?;
                    self.runtime.block_on(self.backups.start_restore_to(
                        &source,
                        t,
                        &req.target,
                        repo.as_deref(),
                        req.throttle_bytes_per_sec,
                    ))?
                }
            },
        };
        self.start(job)
    }

    fn clone_tenant(&self, tenant: &str, req: &CloneRequest) -> ApiResult<JobInfo> {
        self.allow(Role::Admin, Some(tenant))?;
        let src = self.live_tenant(tenant)?;
        tenet_store::schema::validate_name("tenant", &req.into)?;
        let as_of = match parse_as_of(req.as_of.as_deref())? {
            AsOf::Latest => self.store.tenant_visible_ts(src),
            AsOf::Ts(ts) => ts,
            AsOf::Ago(d) => self.store.ts_ago(d),
            snap @ AsOf::Snapshot(_) => self.store.read_at(src, &snap)?.start_ts(),
        };
        let job = match self.backups.start_clone(src, as_of, &req.into) {
            // Older than the local history: from the repository.
            Err(tenet_backup::Error::Store(tenet_store::Error::TooOld { .. })) => {
                let repo = self.repo_arg(&req.repo)?;
                let source = self.subject(tenant, repo.as_deref())?;
                self.runtime.block_on(self.backups.start_restore_to(
                    &source,
                    &Target::At(as_of),
                    &req.into,
                    repo.as_deref(),
                    None,
                ))?
            }
            other => other?,
        };
        self.start(job)
    }

    fn archive_start(&self, tenant: &str, req: &ArchiveStart) -> ApiResult<ArchiveInfo> {
        self.allow(Role::Operator, Some(tenant))?;
        let d = ArchiveOptions::default();
        let opts = ArchiveOptions {
            interval_ms: req.interval_ms.unwrap_or(d.interval_ms),
            segment_max_bytes: req.segment_max_bytes.unwrap_or(d.segment_max_bytes),
            budget_secs: req.budget_secs.unwrap_or(d.budget_secs),
        };
        // Checked before SERVER_REQUIRED, so both modes refuse bad values alike.
        opts.validate()?;
        self.require_server("the log archiver")?;
        let tenant = self.live_tenant(tenant)?;
        // Without --repo, where it archived before (a restart must not move the archive
        // to the default repository).
        let repo = match (
            &req.repo,
            tenet_backup::archiver::load(&self.store, tenant)?,
        ) {
            (None, Some(old)) => old.repo,
            _ => self.repo_or_default(&req.repo)?,
        };
        self.runtime
            .block_on(self.archivers.start(tenant, &repo, opts))?;
        // The backup starts after the archive, so the archive covers everything after
        // the backup's F.
        let backup = req.full_backup.then(|| {
            self.runtime
                .block_on(self.backups.start_full(tenant, &repo, None))
                .map_err(ApiError::from)
                .and_then(|job| self.start(job))
        });
        let mut info = self.archive_info(tenant)?;
        match backup {
            // Until it finishes, status keeps saying that nothing is restorable yet.
            Some(Ok(job)) => info.backup_job = Some(job.id),
            Some(Err(e)) => {
                info.problem = Some(format!(
                    "the archive started, but the full backup did not: {}",
                    e.body().message
                ))
            }
            None => {}
        }
        Ok(info)
    }

    fn archive_stop(&self, tenant: &str) -> ApiResult<ArchiveInfo> {
        self.allow(Role::Operator, Some(tenant))?;
        let tenant = self.live_tenant(tenant)?;
        self.archivers.stop(tenant)?;
        self.archive_info(tenant)
    }

    fn standby_status(&self, tenant: &str) -> ApiResult<StandbyInfo> {
        self.allow(Role::Read, Some(tenant))?;
        let id = self.live_tenant(tenant)?;
        let r = self.runtime.block_on(self.standbys.status(id))?;
        Ok(standby_info(r))
    }

    fn standby_pause(&self, tenant: &str, paused: bool) -> ApiResult<StandbyInfo> {
        self.allow(Role::Operator, Some(tenant))?;
        let id = self.live_tenant(tenant)?;
        self.require_server("a standby's follower")?;
        let r = self
            .runtime
            .block_on(self.standbys.set_paused(id, paused))?;
        Ok(standby_info(r))
    }

    fn promote(&self, tenant: &str, req: &PromoteRequest) -> ApiResult<PromoteResponse> {
        self.allow(Role::Operator, Some(tenant))?;
        let until = match req.until.as_deref() {
            None | Some("") => None,
            Some(u) => Some(match AsOf::parse(u)? {
                AsOf::Ts(ts) => ts,
                AsOf::Ago(d) => self.store.ts_ago(d),
                _ => {
                    return Err(ApiError::invalid(format!(
                        "`until` {u:?} is not a time: give an RFC 3339 time, a commit ts or a \
                         relative time like -5m"
                    )))
                }
            }),
        };
        let id = self.live_tenant(tenant)?;
        self.require_server("promoting a standby (its archive starts there)")?;
        let r = self.runtime.block_on(self.standbys.promote_and_archive(
            &self.archivers,
            id,
            until,
            req.force,
            req.take_name,
        ))?;
        // A fork starts a history of its own, which needs a full backup. The promotion
        // has taken effect: what fails now is reported, not returned.
        let mut problem = r.problem;
        let backup_job = if r.continues_history {
            None
        } else {
            let job = self
                .runtime
                .block_on(self.backups.start_full(id, &r.repo, None))
                .map_err(ApiError::from)
                .and_then(|job| self.start(job));
            match job {
                Ok(j) => Some(j.id),
                Err(e) => {
                    problem = Some(format!(
                        "{}its first full backup did not start: {}",
                        problem.map(|p| format!("{p}; ")).unwrap_or_default(),
                        e.message
                    ));
                    None
                }
            }
        };
        let archive = self.archive_info(id).ok();
        Ok(PromoteResponse {
            tenant: r.tenant,
            tenant_id: r.tenant_id,
            promoted_ts: r.promoted_ts.0,
            promoted_time: r.promoted_time,
            continues_history: r.continues_history,
            applied_records: r.applied_records,
            may_lose_after: r.may_lose_after.map(|t| t.0),
            source_last_commit: r.source_last_commit.map(|t| t.0),
            lost_commits: r.lost_commits,
            renamed_from: r.renamed_from,
            problem,
            archive,
            backup_job,
            millis: r.millis,
        })
    }

    fn switchover(&self, tenant: &str, req: &SwitchoverRequest) -> ApiResult<JobInfo> {
        self.allow(Role::Operator, Some(tenant))?;
        // A standby in this store is another tenant: a tenant token cannot see it (and
        // must not learn from the answer whether it exists).
        if req.to_server.is_none() {
            self.allow(Role::Operator, Some(&req.to))?;
        }
        let id = self.live_tenant(tenant)?;
        self.require_server("a switchover")?;
        if let Some(url) = &req.to_server {
            crate::client::Client::new(url)?;
        }
        let job = crate::switchover::create(
            self,
            id,
            &req.to,
            req.to_server.as_deref(),
            req.to_token.as_deref(),
        )?;
        self.start(job)
    }

    fn archive_status(&self, tenant: &str) -> ApiResult<ArchiveInfo> {
        self.allow(Role::Read, Some(tenant))?;
        self.archive_info(self.live_tenant(tenant)?)
    }

    fn restore_points(&self, tenant: &str, q: &RepoQuery) -> ApiResult<Vec<RestorePoint>> {
        self.allow(Role::Read, Some(tenant))?;
        let repo = self.repo_arg(&q.repo)?;
        let subject = self.subject(tenant, repo.as_deref())?;
        let points = self
            .runtime
            .block_on(self.backups.restore_points(&subject, repo.as_deref()))?;
        Ok(points.into_iter().map(Into::into).collect())
    }

    fn list_jobs(&self) -> ApiResult<Vec<JobInfo>> {
        self.allow(Role::Read, None)?;
        Ok(self
            .jobs()
            .list()?
            .into_iter()
            .filter(|r| self.sees_job(r))
            .map(|r| self.info(r))
            .collect())
    }

    fn get_job(&self, id: u64) -> ApiResult<JobInfo> {
        self.allow_job(Role::Read, id)?;
        self.job_info(id)
    }

    fn cancel_job(&self, id: u64) -> ApiResult<JobInfo> {
        self.allow_job(Role::Operator, id)?;
        self.jobs().cancel(id)?;
        if !self.jobs().is_live(id) {
            // Not running here (interrupted earlier): run its cleanup now. It may also
            // have ended on its own just now, which is fine.
            match self.jobs().start(id) {
                Ok(_) | Err(tenet_jobs::Error::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.job_info(id)
    }

    fn resume_job(&self, id: u64) -> ApiResult<JobInfo> {
        self.allow_job(Role::Operator, id)?;
        self.jobs().start(id)?;
        self.job_info(id)
    }

    fn list_repos(&self) -> ApiResult<Vec<RepoInfo>> {
        self.allow(Role::Admin, None)?;
        self.list_repos_impl()
    }

    fn add_repo(&self, req: &AddRepo) -> ApiResult<RepoInfo> {
        self.allow(Role::Admin, None)?;
        self.add_repo_impl(req)
    }

    fn get_repo(&self, name: &str) -> ApiResult<RepoInfo> {
        self.allow(Role::Admin, None)?;
        self.get_repo_impl(name)
    }

    fn remove_repo(&self, name: &str) -> ApiResult<RepoInfo> {
        self.allow(Role::Admin, None)?;
        self.remove_repo_impl(name)
    }

    fn get_strategy(&self, tenant: Option<&str>) -> ApiResult<StrategyInfo> {
        self.allow(Role::Read, tenant)?;
        self.get_strategy_impl(tenant)
    }

    fn put_strategy(&self, tenant: Option<&str>, req: &StrategyBody) -> ApiResult<StrategyInfo> {
        self.allow(tenant.map_or(Role::Admin, |_| Role::Operator), tenant)?;
        self.put_strategy_impl(tenant, req)
    }

    fn delete_strategy(&self, tenant: Option<&str>) -> ApiResult<StrategyInfo> {
        self.allow(tenant.map_or(Role::Admin, |_| Role::Operator), tenant)?;
        self.delete_strategy_impl(tenant)
    }

    fn prune(&self, req: &PruneRequest) -> ApiResult<PruneResponse> {
        self.allow(Role::Operator, req.tenant.as_deref())?;
        if self.caller.tenant_id.is_some() && req.tenant.is_none() {
            return Err(ApiError::invalid(
                "a tenant token prunes its own tenant: give `tenant`",
            ));
        }
        self.prune_impl(req)
    }

    fn drill(&self, tenant: &str, req: &DrillRequest) -> ApiResult<JobInfo> {
        self.allow(Role::Operator, Some(tenant))?;
        let id = self.live_tenant(tenant)?;
        let at = match req.at.as_deref().map(AsOf::parse).transpose()? {
            None => None,
            Some(AsOf::Ts(ts)) => Some(ts),
            Some(AsOf::Ago(d)) => Some(self.store.ts_ago(d)),
            Some(AsOf::Latest) => Some(self.store.visible_ts()),
            Some(snap @ AsOf::Snapshot(_)) => Some(self.store.read_at(tenant, &snap)?.start_ts()),
        };
        let repo = self.repo_arg(&req.repo)?;
        let job = self
            .runtime
            .block_on(self.backups.start_drill(id, repo.as_deref(), at))?;
        self.start(job)
    }

    fn protection(&self, q: &ProtectionQuery) -> ApiResult<ProtectionOverview> {
        self.allow(Role::Read, None)?;
        self.protection_impl(q)
    }

    fn list_keys(&self, tenant: &str, q: &RepoQuery) -> ApiResult<TenantKeys> {
        self.allow(Role::Read, Some(tenant))?;
        self.tenant_keys(tenant, q.repo.as_ref())
    }

    fn rotate_key(&self, tenant: &str, req: &RotateKey) -> ApiResult<TenantKeys> {
        self.allow(Role::Operator, Some(tenant))?;
        self.rotate_key_impl(tenant, req.repo.as_ref())
    }

    fn shred_tenant(&self, tenant: &str) -> ApiResult<ShredResponse> {
        self.allow(Role::Admin, Some(tenant))?;
        self.shred_impl(tenant)
    }

    fn audit_log(&self) -> ApiResult<Vec<AuditRecord>> {
        self.allow(Role::Admin, None)?;
        self.audit_log_impl()
    }

    fn whoami(&self) -> ApiResult<WhoAmI> {
        let c = self.caller();
        Ok(WhoAmI {
            role: c.role.to_string(),
            tenant: c.tenant_id.map(|id| self.tenant_label(id)),
            tenant_id: c.tenant_id,
            token: c
                .token_id
                .and_then(|id| self.tokens.get(id))
                .map(|r| self.token_info(&r)),
        })
    }

    fn list_tokens(&self) -> ApiResult<Vec<TokenInfo>> {
        self.allow(Role::Admin, None)?;
        Ok(self
            .tokens
            .list()
            .iter()
            .map(|r| self.token_info(r))
            .collect())
    }

    fn create_token(&self, req: &CreateToken) -> ApiResult<CreatedToken> {
        self.allow(Role::Admin, None)?;
        self.create_token_impl(req)
    }

    fn revoke_token(&self, id: u64) -> ApiResult<TokenInfo> {
        self.allow(Role::Admin, None)?;
        let (r, now) = self.tokens.revoke(id)?;
        if !now {
            // Already revoked: the same answer (its time), no second audit entry.
            return Ok(self.token_info(&r));
        }
        tracing::info!(token = id, by = %self.caller.describe(), "token revoked");
        self.audit("token_revoke", None, serde_json::json!({ "token_id": id }))?;
        Ok(self.token_info(&r))
    }

    fn jobs_run_detached(&self) -> bool {
        self.detached
    }
}
