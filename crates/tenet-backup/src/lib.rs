//! `tenet-backup`: backups of one tenant to a repository, and restores from them.
//!
//! * `repo.rs` — repositories over `object_store` (local directory, S3) and their layout.
//! * `format.rs` — data files, manifests, the repository marker, the logical digest
//!   (specified in `docs/format.md`).
//! * `backup.rs` — the full backup job; `restore.rs` — restore into a new tenant;
//!   `verify.rs` — re-read and check a backup. All three are [`tenet_jobs`] kinds, so
//!   they report progress, can be cancelled and resume after a crash.
//! * `records.rs` — backup records in the system tenant.
//!
//! [`Backups`] is the entry point the server and the CLI use: it validates a request,
//! creates the job and returns its record; the caller then runs or starts the job with
//! the [`JobManager`].

pub mod archiver;
mod backup;
pub mod error;
pub mod format;
mod incr;
pub mod planner;
pub mod records;
pub mod repo;
mod restore;
pub mod segment;
mod util;
mod verify;

use std::sync::Arc;

use serde_json::json;

use tenet_jobs::{JobManager, JobRecord};
use tenet_store::{TenantOptions, TenantState};

pub use backup::{BackupParams, SHARD_BYTES};
pub use error::{Error, Result};
pub use format::Manifest;
pub use incr::IncrParams;
pub use records::BackupRecord;
pub use repo::{canonical_url, Repo, DEFAULT_REPO};
pub use restore::RestoreParams;
pub use verify::VerifyParams;

/// Job kinds.
pub const KIND_BACKUP_FULL: &str = backup::KIND;
pub const KIND_RESTORE: &str = restore::KIND;
pub const KIND_VERIFY: &str = verify::KIND;
pub const KIND_BACKUP_INCR: &str = incr::KIND;

/// A restore request.
#[derive(Clone, Debug, Default)]
pub struct RestoreRequest {
    /// The tenant the backup was taken of (checked against the backup).
    pub source: String,
    pub backup_id: String,
    /// Name of the new tenant.
    pub target: String,
    /// Where to look for the backup if this store has no record of it.
    pub repo: Option<String>,
    pub throttle_bytes_per_sec: Option<u64>,
}

/// Backups, restores and verification over a job manager.
#[derive(Clone, Debug)]
pub struct Backups {
    jobs: JobManager,
}

/// Where a backup is: its repository, its tenant id, and its record if this store
/// has one.
struct Located {
    repo: Repo,
    tenant_id: u64,
    record: Option<BackupRecord>,
}

impl Backups {
    /// Registers the backup job kinds with `jobs`.
    pub fn new(jobs: JobManager) -> Self {
        jobs.register(Arc::new(backup::FullBackup));
        jobs.register(Arc::new(restore::Restore));
        jobs.register(Arc::new(verify::Verify));
        jobs.register(Arc::new(incr::IncrBackup));
        Backups { jobs }
    }

    pub fn jobs(&self) -> &JobManager {
        &self.jobs
    }

    /// Creates a full backup job of `tenant` into `repo` (checked to be reachable).
    /// Refused while another backup of the tenant is unfinished.
    pub async fn start_full(
        &self,
        tenant: &str,
        repo: &str,
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<JobRecord> {
        let store = self.jobs.store();
        let rec = store.tenant(tenant)?;
        if !rec.state.readable() {
            return Err(Error::InvalidArgument(format!(
                "tenant `{tenant}` is {}; only a readable tenant can be backed up",
                rec.state
            )));
        }
        let repo = Repo::open(repo)?;
        repo.check(&util::now(store)).await?;
        let params = BackupParams {
            tenant_id: rec.id,
            tenant: rec.name.clone(),
            repo: repo.url().to_string(),
        };
        Ok(self.jobs.create(
            KIND_BACKUP_FULL,
            tenant,
            serde_json::to_value(params).expect("params serialize"),
            throttle_bytes_per_sec,
            Some(format!("backup:{}", rec.id)),
        )?)
    }

    /// Creates an incremental backup job of `tenant`: the log since the newest backup
    /// of the tenant in `repo` (default: that backup's repository).
    pub async fn start_incr(
        &self,
        tenant: &str,
        repo: Option<&str>,
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<JobRecord> {
        let store = self.jobs.store();
        let rec = store.tenant(tenant)?;
        let want = repo.map(canonical_url).transpose()?;
        let parent = records::list(store)?
            .into_iter()
            .filter(|r| r.tenant_id == rec.id && want.as_ref().is_none_or(|w| *w == r.repo))
            .max_by_key(|r| r.backup_ts)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "tenant `{tenant}` has no backup to continue{}; take a full backup first \
                     (`tenet backup full {tenant}`)",
                    want.as_ref()
                        .map(|w| format!(" in {w}"))
                        .unwrap_or_default()
                ))
            })?;
        let repo = Repo::open(&parent.repo)?;
        repo.check(&util::now(store)).await?;
        let params = IncrParams {
            tenant_id: rec.id,
            tenant: rec.name.clone(),
            repo: repo.url().to_string(),
            parent: parent.id.clone(),
            start: parent.backup_ts,
        };
        Ok(self.jobs.create(
            KIND_BACKUP_INCR,
            tenant,
            serde_json::to_value(params).expect("params serialize"),
            throttle_bytes_per_sec,
            Some(format!("backup:{}", rec.id)),
        )?)
    }

    /// Finds a backup by id: in this store's records, else in `repo`.
    async fn locate(&self, id: &str, repo: Option<&str>) -> Result<Located> {
        if id.is_empty() || id.contains('/') || id.contains("..") {
            return Err(Error::InvalidArgument(format!(
                "`{id}` is not a backup id; list them with `tenet backups list`"
            )));
        }
        if let Some(rec) = records::get(self.jobs.store(), id)? {
            let r = Repo::open(repo.unwrap_or(&rec.repo))?;
            return Ok(Located {
                repo: r,
                tenant_id: rec.tenant_id,
                record: Some(rec),
            });
        }
        let Some(url) = repo else {
            return Err(Error::BackupNotFound(format!(
                "{id} (this store has no record of it; list backups with `tenet backups list`, \
                 or give the repository that holds it with --repo)"
            )));
        };
        let r = Repo::open(url)?;
        let suffix = format!("/backups/{id}/manifest.json");
        for (key, _) in r.list("tenants/").await? {
            if let Some(tenant) = key
                .strip_suffix(&suffix)
                .and_then(|k| k.strip_prefix("tenants/"))
                .and_then(|t| t.parse::<u64>().ok())
            {
                return Ok(Located {
                    repo: r,
                    tenant_id: tenant,
                    record: None,
                });
            }
        }
        Err(Error::BackupNotFound(format!(
            "{id} (not in this store's records, and {} holds no such backup)",
            r.url()
        )))
    }

    /// Creates a restore job: checks the backup and the target name, then creates the
    /// target tenant in the `restoring` state.
    pub async fn start_restore(&self, req: &RestoreRequest) -> Result<JobRecord> {
        self.check_target(&req.target)?;
        let loc = self.locate(&req.backup_id, req.repo.as_deref()).await?;
        let m = restore::load_manifest(&loc.repo, loc.tenant_id, &req.backup_id).await?;
        if !req.source.is_empty() && req.source != m.tenant_name {
            return Err(Error::InvalidArgument(format!(
                "backup {} is of tenant `{}`, not `{}`",
                m.backup_id, m.tenant_name, req.source
            )));
        }
        if m.kind == "incr" {
            // An incremental backup's state is its chain's full plus the log to its end.
            return self
                .start_restore_to(
                    &m.tenant_name,
                    &planner::Target::At(m.backup_ts),
                    &req.target,
                    Some(loc.repo.url()),
                    req.throttle_bytes_per_sec,
                )
                .await;
        }
        let params = RestoreParams {
            backup_id: m.backup_id.clone(),
            repo: loc.repo.url().to_string(),
            source_tenant_id: m.tenant_id,
            source_tenant: m.tenant_name.clone(),
            target: req.target.clone(),
            target_ts: None,
            logs: Vec::new(),
        };
        self.create_restore(params, m.history_retention_secs, req.throttle_bytes_per_sec)
            .await
    }

    fn check_target(&self, target: &str) -> Result<()> {
        tenet_store::schema::validate_name("tenant", target)?;
        if self.jobs.store().tenant(target).is_ok() {
            return Err(Error::Store(tenet_store::Error::TenantExists(
                target.to_string(),
            )));
        }
        Ok(())
    }

    /// Creates the restore job, then its target tenant in the `restoring` state.
    async fn create_restore(
        &self,
        params: RestoreParams,
        retention_secs: u64,
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<JobRecord> {
        let store = self.jobs.store();
        let target_name = params.target.clone();
        let source = params.source_tenant.clone();
        let job = self.jobs.create(
            KIND_RESTORE,
            &source,
            serde_json::to_value(params).expect("params serialize"),
            throttle_bytes_per_sec,
            Some(format!("restore-target:{target_name}")),
        )?;
        let created = store.create_tenant(
            &target_name,
            TenantOptions {
                history_retention_secs: Some(retention_secs),
                state: Some(TenantState::Restoring),
            },
        );
        let (target, _) = match created {
            Ok(t) => t,
            Err(e) => {
                // The job never got a target: end it as cancelled.
                let _ = self.jobs.cancel(job.id);
                let _ = self.jobs.run(job.id).await;
                return Err(e.into());
            }
        };
        let mut checkpoint = self.jobs.get(job.id)?.checkpoint;
        checkpoint["target_id"] = json!(target.id);
        self.jobs.set_checkpoint_of(job.id, checkpoint)?;
        Ok(self.jobs.get(job.id)?)
    }

    /// What can be restored of a tenant (by name; it may have been dropped): its full
    /// backups and archived log in `repo` (default: where its archiver or its newest
    /// backup writes).
    pub async fn restore_inputs(
        &self,
        tenant: &str,
        repo: Option<&str>,
    ) -> Result<(
        u64,
        Repo,
        Vec<planner::FullPoint>,
        Vec<planner::LogRange>,
        Vec<Manifest>,
    )> {
        let store = self.jobs.store();
        let recs: Vec<BackupRecord> = records::list(store)?
            .into_iter()
            .filter(|r| r.tenant_name == tenant)
            .collect();
        let tenant_id = match store.tenant(tenant) {
            Ok(t) => t.id,
            Err(_) => recs.iter().map(|r| r.tenant_id).max().ok_or_else(|| {
                Error::Store(tenet_store::Error::TenantNotFound(tenant.to_string()))
            })?,
        };
        let repo_url = match repo {
            Some(r) => r.to_string(),
            None => archiver::load(store, tenant_id)?
                .map(|a| a.repo)
                .or_else(|| {
                    recs.iter()
                        .max_by_key(|r| r.backup_ts)
                        .map(|r| r.repo.clone())
                })
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "tenant `{tenant}` has no backups or archive; give --repo"
                    ))
                })?,
        };
        let repo = Repo::open(&repo_url)?;
        let prefix = format!("tenants/{tenant_id}/backups/");
        let mut manifests = Vec::new();
        for (key, _) in repo.list(&prefix).await? {
            let Some(id) = key
                .strip_prefix(&prefix)
                .and_then(|k| k.strip_suffix("/manifest.json"))
            else {
                continue;
            };
            manifests.push(restore::load_manifest(&repo, tenant_id, id).await?);
        }
        let fulls = manifests
            .iter()
            .filter(|m| m.kind == "full")
            .map(|m| planner::FullPoint {
                backup_id: m.backup_id.clone(),
                ts: m.backup_ts,
            })
            .collect();
        // The archive's segments and the incremental backups' segments.
        let mut logs = archiver::list_segments(&repo, tenant_id).await?;
        for m in manifests.iter().filter(|m| m.kind == "incr") {
            let dir = repo::backup_dir(tenant_id, &m.backup_id);
            logs.extend(m.segments.iter().map(|s| planner::LogRange {
                key: format!("{dir}/{}", s.path),
                start: s.start,
                end: s.end,
            }));
        }
        Ok((tenant_id, repo, fulls, logs, manifests))
    }

    /// The restorable ranges of a tenant.
    pub async fn restore_points(
        &self,
        tenant: &str,
        repo: Option<&str>,
    ) -> Result<Vec<planner::Restorable>> {
        let (_, _, fulls, logs, _) = self.restore_inputs(tenant, repo).await?;
        Ok(planner::restore_points(&fulls, &logs))
    }

    /// Creates a point-in-time restore of `source` into a new tenant: the planner
    /// picks a full backup and the archived log up to the target.
    pub async fn start_restore_to(
        &self,
        source: &str,
        target: &planner::Target,
        into: &str,
        repo: Option<&str>,
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<JobRecord> {
        self.check_target(into)?;
        let (tenant_id, repo, fulls, logs, manifests) = self.restore_inputs(source, repo).await?;
        // After a crash the clock may run ahead of the wall clock: commits up to the
        // visible ts are not "in the future".
        let store = self.jobs.store();
        let now = store.now_ts().max(store.visible_ts());
        let plan = planner::plan(&fulls, &logs, target, now)
            .map_err(|e| Error::NotRestorable(format!("tenant `{source}`: {e}")))?;
        let m = manifests
            .iter()
            .find(|m| m.backup_id == plan.full.backup_id)
            .expect("planned fulls come from manifests");
        let params = RestoreParams {
            backup_id: m.backup_id.clone(),
            repo: repo.url().to_string(),
            source_tenant_id: tenant_id,
            source_tenant: m.tenant_name.clone(),
            target: into.to_string(),
            target_ts: Some(plan.target),
            logs: plan.logs,
        };
        self.create_restore(params, m.history_retention_secs, throttle_bytes_per_sec)
            .await
    }

    /// Creates a verify job for a backup.
    pub async fn start_verify(
        &self,
        id: &str,
        repo: Option<&str>,
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<JobRecord> {
        let loc = self.locate(id, repo).await?;
        let tenant = loc
            .record
            .as_ref()
            .map(|r| r.tenant_name.clone())
            .unwrap_or_default();
        let params = VerifyParams {
            backup_id: id.to_string(),
            repo: loc.repo.url().to_string(),
            tenant_id: loc.tenant_id,
        };
        Ok(self.jobs.create(
            KIND_VERIFY,
            &tenant,
            serde_json::to_value(params).expect("params serialize"),
            throttle_bytes_per_sec,
            None,
        )?)
    }

    /// Backups recorded in this store, optionally of one tenant (by name).
    pub fn list(&self, tenant: Option<&str>) -> Result<Vec<BackupRecord>> {
        let mut all = records::list(self.jobs.store())?;
        if let Some(t) = tenant {
            all.retain(|r| r.tenant_name == t);
        }
        all.sort_by_key(|r| r.backup_ts);
        Ok(all)
    }

    /// A backup's record (if this store has one) and its manifest.
    pub async fn show(
        &self,
        id: &str,
        repo: Option<&str>,
    ) -> Result<(Option<BackupRecord>, Manifest)> {
        let loc = self.locate(id, repo).await?;
        let m = restore::load_manifest(&loc.repo, loc.tenant_id, id).await?;
        Ok((loc.record, m))
    }

    /// Deletes a backup: its manifest first (so it stops existing), then its files,
    /// then its record. Returns what was deleted.
    pub async fn delete(&self, id: &str) -> Result<BackupRecord> {
        let store = self.jobs.store();
        let rec = records::get(store, id)?.ok_or_else(|| {
            Error::BackupNotFound(format!("{id} (list backups with `tenet backups list`)"))
        })?;
        let uses = |j: &JobRecord| {
            j.params.get("backup_id").and_then(|v| v.as_str()) == Some(id)
                || j.checkpoint
                    .pointer("/plan/backup_id")
                    .and_then(|v| v.as_str())
                    == Some(id)
        };
        if let Some(j) = self
            .jobs
            .list()?
            .into_iter()
            .find(|j| !j.state.is_final() && uses(j))
        {
            return Err(Error::Jobs(tenet_jobs::Error::Conflict(format!(
                "backup {id} is in use by job {} ({}); wait for it or cancel it first",
                j.id, j.kind
            ))));
        }
        let repo = Repo::open(&rec.repo)?;
        records::remove_backup(store, &repo, rec.tenant_id, id, None).await?;

        Ok(rec)
    }
}
