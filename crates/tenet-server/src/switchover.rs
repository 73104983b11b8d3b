//! The switchover job (`switchover`): a planned move of a tenant to its standby — in
//! this store, or on another server — with no commit lost and writes refused only for
//! the moment it takes. It runs on the source's server, as a job, so a crash at any
//! step is resumed (or undone) when the server restarts.
//!
//! # Steps
//! 1. **fence**: the source's commits are refused with the retryable `TENANT_MOVING`
//!    ([`tenet_store::Store::fence_moving`]); L = the newest ts any accepted commit
//!    has.
//! 2. **archive**: the source's archiver cuts its final segment now
//!    ([`Archivers::flush`]); C (≥ L) = where the archive ends.
//! 3. **catch up**: wait until the standby has applied everything through C.
//! 4. **demote**: the source's archiver stops; the source becomes a standby of its
//!    own history applied through C (a follower row, the state, then the history's
//!    primary record says it stepped down). Checkpointed as `demoted`.
//! 5. **promote**: the standby is promoted with everything archived (exactly C), takes
//!    the source's name (in this store the two names are swapped) and starts its
//!    archive, which continues the history at C. The old source now follows that
//!    history as a read-only standby, so switching back is the same command.
//!
//! Write downtime is the time from 1 to the end of 5.
//!
//! # Failure and crash
//! Before 4 nothing durable has changed: a failure unfences the source (a crash does
//! too: the fence lives in memory), and a resumed job starts again at 1. After 4, a
//! resumed job goes on with 5. If 5 fails, the history's primary record decides: if
//! the standby took the history over, the switchover is done; otherwise the demotion
//! is undone (the source is promoted back, its archive restarted) and the job fails
//! with the cause. At every moment at most one side is writable, and after recovery
//! exactly one.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use tenet_backup::archiver::{self, Archivers};
use tenet_backup::repo::Repo;
use tenet_backup::standby::Standbys;
use tenet_backup::standby::{self, StandbyState};
use tenet_jobs::{BoxFuture, JobContext, JobError, JobKind};
use tenet_store::{failpoint, Code, Store, TenantState, Ts};

use crate::admin::Admin;
use crate::api::PromoteRequest;
use crate::client::{Client, ClientOptions};
use crate::error::ApiError;
use crate::service::Service;

pub const KIND: &str = "switchover";
/// How long each wait (final segment, standby catching up) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Parameters of a switchover job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SwitchoverParams {
    pub source_id: u64,
    /// The source's name when asked (the name the new primary takes).
    pub source: String,
    /// The standby, by name on its server.
    pub to: String,
    /// The standby's server; None: this one.
    #[serde(default)]
    pub to_server: Option<String>,
    /// The standby's id on its server: names change (the standby takes the source's),
    /// ids do not, so a resumed job addresses it by id.
    #[serde(default)]
    pub to_id: Option<u64>,
    /// The token for `to_server` (hidden from job listings, see [`crate::api::JobInfo`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_token: Option<String>,
}

impl SwitchoverParams {
    /// The standby as its server resolves it: `#<id>`, else its name.
    fn standby_ref(&self) -> String {
        self.to_id
            .map_or_else(|| self.to.clone(), |id| format!("#{id}"))
    }
}

/// Runs switchovers: the archivers and standby followers of this server.
#[derive(Clone)]
pub struct Switchover {
    pub archivers: Archivers,
    pub standbys: Standbys,
}

impl JobKind for Switchover {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run(&self, ctx: JobContext) -> BoxFuture<'static, tenet_jobs::Result<Value>> {
        let sw = self.clone();
        Box::pin(async move { run(sw, ctx).await.map_err(failed) })
    }

    fn cleanup(&self, ctx: JobContext) -> BoxFuture<'static, tenet_jobs::Result<()>> {
        Box::pin(async move {
            // A cancelled or failed switchover leaves the source writable (or its
            // demotion was undone by `run`).
            if let Ok(p) = serde_json::from_value::<SwitchoverParams>(ctx.params()) {
                ctx.store().unfence_moving(p.source_id);
            }
            Ok(())
        })
    }
}

fn failed(e: ApiError) -> tenet_jobs::Error {
    tenet_jobs::Error::Failed(JobError {
        code: e.code,
        message: e.message,
    })
}

fn internal(msg: String) -> ApiError {
    ApiError::internal(msg)
}

/// Runs a call on the other server, off the async runtime (the client blocks).
async fn on_server<T: Send + 'static>(
    url: &str,
    p: &SwitchoverParams,
    f: impl FnOnce(&Client) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let url = url.to_string();
    let opts = ClientOptions {
        token: p.to_token.clone(),
        ca_cert: None,
    };
    tokio::task::spawn_blocking(move || f(&Client::with_options(&url, &opts)?))
        .await
        .map_err(|e| internal(format!("switchover step panicked: {e}")))?
}

/// The standby's id in this store.
fn local_standby(store: &Store, p: &SwitchoverParams) -> Result<u64, ApiError> {
    Ok(match p.to_id {
        Some(id) => store.resolve(id)?.id,
        None => store.tenant(&p.to)?.id,
    })
}

/// How far the standby has applied, and what is wrong with it.
async fn standby_applied(
    sw: &Switchover,
    store: &Store,
    p: &SwitchoverParams,
) -> Result<(u64, Option<String>), ApiError> {
    match &p.to_server {
        None => {
            let r = sw.standbys.status(local_standby(store, p)?).await?;
            Ok((r.applied_ts.0, r.problem))
        }
        Some(url) => {
            let name = p.standby_ref();
            let info = on_server(url, p, move |c| c.standby_status(&name)).await?;
            Ok((info.applied_ts, info.problem))
        }
    }
}

/// Promotes the standby with everything archived, taking the source's name; returns
/// its name and id.
async fn promote(
    sw: &Switchover,
    store: &Store,
    p: &SwitchoverParams,
) -> Result<(String, u64), ApiError> {
    match &p.to_server {
        None => {
            let id = local_standby(store, p)?;
            let r = sw
                .standbys
                .promote_and_archive(&sw.archivers, id, None, true, true)
                .await?;
            Ok((r.tenant, r.tenant_id))
        }
        Some(url) => {
            let name = p.standby_ref();
            let req = PromoteRequest {
                until: None,
                force: true,
                take_name: true,
            };
            let r = on_server(url, p, move |c| c.promote(&name, &req)).await?;
            Ok((r.tenant, r.tenant_id))
        }
    }
}

async fn run(sw: Switchover, ctx: JobContext) -> Result<Value, ApiError> {
    let p: SwitchoverParams = serde_json::from_value(ctx.params())
        .map_err(|e| internal(format!("switchover params do not decode: {e}")))?;
    let store = ctx.store().clone();
    let src = store.resolve(p.source_id)?;
    let started = Instant::now();
    let demoted = match ctx.checkpoint("demoted").and_then(|v| v.as_u64()) {
        Some(c) => Ts(c),
        // Killed after the demotion, before it was checkpointed.
        None if src.state == TenantState::Standby && ctx.checkpoint("fenced").is_some() => {
            let c = store.standby_applied(src.id).unwrap_or(Ts::ZERO);
            demote(&sw, &ctx, &p, c).await?;
            c
        }
        None => {
            ctx.set_phase("fence")?;
            ctx.set_checkpoint("fenced", json!(true))?;
            let l = store.fence_moving(src.id)?;
            failpoint::hit("switchover-after-fence");
            match prepare(&sw, &ctx, &p, l).await {
                Ok(c) => c,
                Err(e) => {
                    store.unfence_moving(src.id);
                    return Err(e);
                }
            }
        }
    };
    ctx.set_phase("promote")?;
    // From the demotion on, neither side takes writes until the standby is promoted.
    // Promotion is idempotent (a standby that already took over finishes what is
    // left), so it is retried for a while rather than given up at the first error.
    let deadline = Instant::now() + STEP_TIMEOUT;
    let promoted = loop {
        match promote(&sw, &store, &p).await {
            Ok(r) => break Ok(r),
            Err(e)
                if Instant::now() < deadline
                    && !e.is(Code::INVALID_ARGUMENT)
                    && !e.is(Code::TENANT_NOT_FOUND) =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => break Err(e),
        }
    };
    let promoted = match promoted {
        Ok(r) => r,
        Err(e) => {
            // Undone only if the standby certainly did not take the history over.
            let conflict = |message: String| ApiError {
                message,
                ..e.clone()
            };
            let on = p
                .to_server
                .as_ref()
                .map(|u| format!(" on {u}"))
                .unwrap_or_default();
            if !matches!(standby_took_over(&store, &p).await, Ok(false)) {
                return Err(conflict(format!(
                    "switchover of `{}` to `{}`: the standby took the history over but its \
                     promotion did not finish ({}); finish it with `tenet promote {} --force`{on}; \
                     `{}` stays a standby",
                    p.source, p.to, e.message, p.to, p.source
                )));
            }
            return Err(match undo_demotion(&sw, &store, &p).await {
                Ok(()) => conflict(format!(
                    "switchover of `{}` to `{}` failed, and was undone (`{}` is writable \
                     again): {}",
                    p.source, p.to, p.source, e.message
                )),
                Err(u) => conflict(format!(
                    "switchover of `{}` to `{}` failed ({}), and undoing it failed too ({}): \
                     both are standbys now; make one writable with `tenet promote <name> \
                     --force`",
                    p.source, p.to, e.message, u.message
                )),
            });
        }
    };
    failpoint::hit("switchover-after-promote");
    store.unfence_moving(src.id);
    outcome(&ctx, &p, demoted, Some(promoted), started)
}

/// The job's result.
fn outcome(
    ctx: &JobContext,
    p: &SwitchoverParams,
    switched: Ts,
    promoted: Option<(String, u64)>,
    started: Instant,
) -> Result<Value, ApiError> {
    let store = ctx.store();
    let downtime = ctx
        .checkpoint("fenced_at_ms")
        .and_then(|v| v.as_u64())
        .map(|t0| store.clock().now_millis().saturating_sub(t0));
    let now_src = store.resolve(p.source_id)?;
    Ok(json!({
        "source": p.source,
        "to": p.to,
        "to_server": p.to_server,
        "switched_ts": switched,
        "switched_time": switched.to_rfc3339(),
        "new_primary": promoted.as_ref().map_or(p.source.clone(), |r| r.0.clone()),
        "new_primary_id": promoted.as_ref().map(|r| r.1),
        "old_primary_now": now_src.name,
        "old_primary_id": now_src.id,
        "downtime_ms": downtime,
        "job_ms": started.elapsed().as_millis() as u64,
    }))
}

/// Steps 2–4 after the fence at `l`; returns C, the end of the source's history.
async fn prepare(
    sw: &Switchover,
    ctx: &JobContext,
    p: &SwitchoverParams,
    l: Ts,
) -> Result<Ts, ApiError> {
    let store = ctx.store();
    ctx.set_checkpoint("fenced_at_ms", json!(store.clock().now_millis()))?;
    let src = store.resolve(p.source_id)?;
    if src.state != TenantState::Active {
        return Err(ApiError::invalid(format!(
            "tenant `{}` is {}; only an active tenant can be switched over",
            src.name, src.state
        )));
    }
    ctx.set_phase("archive")?;
    let c = sw
        .archivers
        .flush(src.id, l, STEP_TIMEOUT)
        .await
        .map_err(|e| {
            ApiError::new(
                Code::ARCHIVE_BEHIND,
                format!(
                    "the final segment of `{}` could not be archived ({e}); the switchover \
                     was called off and `{}` is writable again",
                    p.source, p.source
                ),
            )
        })?;
    failpoint::hit("switchover-after-flush");
    ctx.set_phase("catch_up")?;
    if p.to_server.is_none() {
        // Here, the follower need not wait for its next poll.
        sw.standbys.nudge(local_standby(store, p)?);
    }
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let (applied, problem) = standby_applied(sw, store, p).await?;
        if applied >= c.0 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(ApiError::new(
                Code::STANDBY_BEHIND,
                format!(
                    "standby `{}` did not apply `{}`'s log up to {c} within {} s (it is at {}{}); \
                     the switchover was called off and `{}` is writable again",
                    p.to,
                    p.source,
                    STEP_TIMEOUT.as_secs(),
                    applied,
                    problem.map(|m| format!("; {m}")).unwrap_or_default(),
                    p.source
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    failpoint::hit("switchover-after-catch-up");
    ctx.set_phase("demote")?;
    demote(sw, ctx, p, c).await?;
    failpoint::hit("switchover-after-demote");
    Ok(c)
}

/// Step 4 (idempotent): the source becomes a standby of its history through `c`.
async fn demote(
    sw: &Switchover,
    ctx: &JobContext,
    p: &SwitchoverParams,
    c: Ts,
) -> Result<(), ApiError> {
    let store = ctx.store();
    let src = store.resolve(p.source_id)?;
    let arch = archiver::load(store, src.id)?.ok_or_else(|| {
        ApiError::invalid(format!("tenant `{}` has no archive to hand over", src.name))
    })?;
    if standby::load(store, src.id)?.is_none() {
        standby::register(
            store,
            &StandbyState::following(
                store,
                src.id,
                &p.source,
                src.history_ref(),
                &arch.repo,
                c,
                standby::DEFAULT_POLL.as_millis() as u64,
            ),
        )?;
    }
    store.demote_to_standby(src.id, c)?;
    // Stopped after the demotion: a crash before it leaves the source writable and
    // still archived.
    if sw.archivers.is_running(src.id) {
        sw.archivers.stop(src.id)?;
    }
    let repo = Repo::open(&arch.repo)?;
    standby::step_down(&repo, store, &store.resolve(src.id)?).await?;
    ctx.set_checkpoint("demoted", json!(c))?;
    Ok(())
}

/// Whether the standby holds the history now (its promotion took effect).
async fn standby_took_over(store: &Store, p: &SwitchoverParams) -> Result<bool, ApiError> {
    let src = store.resolve(p.source_id)?;
    let Some(arch) = archiver::load(store, src.id)? else {
        return Ok(false);
    };
    let repo = Repo::open(&arch.repo)?;
    let primary = standby::read_primary(&repo, src.history_ref().id).await?;
    Ok(primary.is_some_and(|pr| {
        let source_holds =
            pr.tenant_id == src.id && pr.store_id == store.store_id().unwrap_or_default();
        !source_holds && !pr.demoted
    }))
}

/// Undoes step 4: the source is writable again and archives again.
async fn undo_demotion(
    sw: &Switchover,
    store: &Store,
    p: &SwitchoverParams,
) -> Result<(), ApiError> {
    let src = store.resolve(p.source_id)?;
    if src.state == TenantState::Standby {
        store.promote_standby(src.id, None)?;
    }
    standby::forget(store, src.id)?;
    store.unfence_moving(src.id);
    if let Some(arch) = archiver::load(store, src.id)? {
        if !sw.archivers.is_running(src.id) {
            sw.archivers
                .start(src.id, &arch.repo, arch.options.clone())
                .await?;
        }
    }
    Ok(())
}

/// Checks a switchover request and creates its job.
pub fn create(
    svc: &Service,
    source_id: u64,
    to: &str,
    to_server: Option<&str>,
    to_token: Option<&str>,
) -> Result<tenet_jobs::JobRecord, ApiError> {
    let store = svc.store();
    let src = store.resolve(source_id)?;
    tenet_store::lifecycle::check(&src, tenet_store::lifecycle::TenantAction::Write)?;
    let arch = archiver::load(store, src.id)?;
    if !arch.as_ref().is_some_and(|a| {
        a.status == archiver::ArchiveStatus::Running && svc.archivers().is_running(src.id)
    }) {
        return Err(ApiError::invalid(format!(
            "tenant `{}` is not being archived here: a standby follows its archive, so a \
             switchover needs it running (`tenet archive start {}`)",
            src.name, src.name
        )));
    }
    if to_server.is_none() && store.tenant(to).is_ok_and(|t| t.id == src.id) {
        return Err(ApiError::invalid(
            "a tenant cannot be switched over to itself",
        ));
    }
    let mut params = SwitchoverParams {
        source_id: src.id,
        source: src.name.clone(),
        to: to.to_string(),
        to_server: to_server.map(str::to_string),
        to_id: None,
        to_token: to_token.map(str::to_string),
    };
    // The standby must follow this tenant's history, in the same repository.
    let info = match to_server {
        None => svc.standby_status(to)?,
        Some(url) => Client::with_options(
            url,
            &ClientOptions {
                token: to_token.map(str::to_string),
                ca_cert: None,
            },
        )?
        .standby_status(to)
        .map_err(|e| ApiError {
            message: format!("on {url}: {}", e.message),
            ..e
        })?,
    };
    params.to_id = Some(info.tenant_id);
    if let Some(p) = &info.problem {
        return Err(ApiError::new(
            Code::STANDBY_BEHIND,
            format!("standby `{to}` is not ready to take over: {p}"),
        ));
    }
    let arch = arch.expect("checked above");
    if info.history_id != src.history_ref().id || info.repo != arch.repo {
        return Err(ApiError::invalid(format!(
            "`{to}` is not a standby of `{}`: it follows history #{} in {}, and `{}` is \
             archived as history #{} into {}",
            src.name,
            info.history_id,
            info.repo,
            src.name,
            src.history_ref().id,
            arch.repo
        )));
    }
    Ok(svc.jobs().create(
        KIND,
        &src.name,
        serde_json::to_value(params).expect("params serialize"),
        None,
        tenet_jobs::JobOwner::tenant(src.id).with_lock(format!("switchover:{}", src.id)),
    )?)
}
