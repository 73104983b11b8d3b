//! `tenet-backup`: backups of one tenant to a repository, and restores from them.
//!
//! * `repo.rs` — repositories over `object_store` (local directory, S3) and their layout.
//! * `format.rs` — data files, manifests, the repository marker, the logical digest
//!   (specified in `docs/format.md`).
//! * `backup.rs` — the full backup job; `restore.rs` — restore into a new tenant;
//!   `verify.rs` — re-read and check a backup. All three are [`tenet_jobs`] kinds, so
//!   they report progress, can be cancelled and resume after a crash.
//! * `records.rs` — backup records in the system tenant.
//! * `inventory.rs` — what a repository holds of a tenant, read from it alone: the
//!   one source of restore points, plans, the archive's start point and status, chains
//!   and dependents.
//! * `archiver.rs`, `incr.rs`, `planner.rs`, `segment.rs` — the log archive,
//!   incremental backups, the restore planner, the log segment format.
//!
//! Tenants are ids here; [`Backups::resolve`] turns a name typed at the edge into a
//! [`Subject`] once.
//!
//! [`Backups`] is the entry point the server and the CLI use: it validates a request,
//! creates the job and returns its record; the caller then runs or starts the job with
//! the [`JobManager`].

mod apply;
pub mod archiver;
mod backup;
mod clone;
pub mod drill;
pub mod error;
pub mod format;
mod incr;
pub mod inventory;
pub mod keys;
pub mod overview;
pub mod planner;
pub mod prune;
pub mod records;
pub mod repo;
mod restore;
pub mod scheduler;
pub mod segment;
pub mod standby;
pub mod strategy;
mod util;
mod verify;

use std::sync::Arc;

use tenet_jobs::{JobManager, JobOwner, JobRecord};
use tenet_store::{lifecycle, TenantOptions, TenantState};

pub use backup::{BackupParams, SHARD_BYTES};
pub use clone::CloneParams;
pub use error::{Error, Result};
pub use format::Manifest;
pub use incr::IncrParams;
pub use inventory::Inventory;
pub use records::BackupRecord;
pub use repo::{canonical_url, Repo, S3Settings, DEFAULT_REPO};
pub use restore::RestoreParams;
pub use verify::VerifyParams;

/// Job kinds.
pub const KIND_BACKUP_FULL: &str = backup::KIND;
pub const KIND_RESTORE: &str = restore::KIND;
pub const KIND_VERIFY: &str = verify::KIND;
pub const KIND_BACKUP_INCR: &str = incr::KIND;
pub const KIND_CLONE: &str = clone::KIND;
pub const KIND_PRUNE: &str = prune::KIND;
pub const KIND_DRILL: &str = drill::KIND;

/// A tenant as backups and restores know it: by id, with the name to show. It may
/// have been dropped (its backups outlive it), or exist only in a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The id its history has in repositories (`tenants/<id>/`): its own id, or for a
    /// standby or a promoted standby, its source's ([`tenet_store::HistoryRef`]).
    pub id: u64,
    /// Its current name; for a dropped tenant, its name at its newest backup.
    pub name: String,
    /// When it was created, where known: tenant ids are per store, so (id, created ts)
    /// is what tells it from another store's tenant with the same id in a repository.
    pub created_ts: Option<tenet_store::Ts>,
    /// The tenant of this store it is, if it exists here.
    pub tenant_id: Option<u64>,
}

impl Subject {
    /// A live tenant of this store.
    pub fn of(rec: &tenet_store::TenantRecord) -> Subject {
        let h = rec.history_ref();
        Subject {
            id: h.id,
            name: rec.name.clone(),
            created_ts: Some(h.created_ts),
            tenant_id: Some(rec.id),
        }
    }
}

/// A restore request.
#[derive(Clone, Debug)]
pub struct RestoreRequest {
    /// The tenant the backup was taken of (checked against the backup).
    pub source: Option<Subject>,
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
        jobs.register(Arc::new(clone::Clone));
        jobs.register(Arc::new(prune::Prune));
        jobs.register(Arc::new(drill::Drill));
        Backups { jobs }
    }

    pub fn jobs(&self) -> &JobManager {
        &self.jobs
    }

    /// Resolves a tenant named at the edge (API, CLI) to its id, once:
    /// `#<id>` names an id; otherwise the live tenant of that name, else a dropped
    /// tenant that had that name when it was dropped or at a backup in this store's
    /// records, else (given `repo`) a tenant whose newest backup in that repository had
    /// that name. The newest wins where several dropped tenants had the name.
    pub async fn resolve(&self, name: &str, repo: Option<&str>) -> Result<Subject> {
        let store = self.jobs.store();
        let by_id = name.strip_prefix('#').and_then(|n| n.parse::<u64>().ok());
        if let Some(t) = match by_id {
            Some(id) => store.tenant_by_id(id),
            None => store.tenant(name).ok(),
        } {
            return Ok(Subject::of(&t));
        }
        // Another tenant of this store may have the same id as one a repository knows
        // (ids are per store): only the creation ts tells them apart.
        let gone = |id: u64, created: Option<tenet_store::Ts>| match store.tenant_by_id(id) {
            None => true,
            Some(live) => created.is_some_and(|c| c != live.created_ts),
        };
        let matches = |id: u64, n: &str| by_id.map_or(n == name, |want| want == id);
        // (newest ts, id, name, created) of dropped tenants this store remembers.
        type Candidate = (tenet_store::Ts, u64, String, Option<tenet_store::Ts>);
        let mut candidates: Vec<Candidate> = Vec::new();
        for t in store.dropped_tenants()? {
            let created = (t.created_ts != tenet_store::Ts::ZERO).then_some(t.created_ts);
            candidates.push((t.dropped_ts, t.id, t.name, created));
        }
        for r in records::list(store)? {
            candidates.push((r.backup_ts, r.tenant_id, r.tenant_name, None));
        }
        let pick = |c: &[Candidate]| {
            c.iter()
                .filter(|(_, id, n, created)| matches(*id, n) && gone(*id, *created))
                .max()
                .cloned()
        };
        let mut found = pick(&candidates);
        // What the repository knows, to name in the error when nothing matches.
        let mut in_repo: Vec<String> = Vec::new();
        if found.is_none() {
            if let Some(url) = repo {
                let repo = Repo::open(url)?;
                repo.marker().await?;
                let known: Vec<Candidate> = inventory::repo_tenants(&repo)
                    .await?
                    .into_iter()
                    .filter_map(|t| Some((t.newest_backup_ts?, t.tenant_id, t.name?, t.created_ts)))
                    .collect();
                found = pick(&known);
                in_repo = known
                    .iter()
                    .map(|(_, id, n, _)| format!("`{n}` (#{id})"))
                    .collect();
            }
        }
        match found {
            Some((_, id, name, created_ts)) => Ok(Subject {
                id,
                name,
                created_ts,
                tenant_id: None,
            }),
            None => Err(Error::TenantNotFound {
                name: name.to_string(),
                hint: if repo.is_some() && in_repo.is_empty() {
                    " in this store or in the repository (it holds no backup)".into()
                } else if repo.is_some() {
                    format!(
                        " in this store or in the repository, which knows {} by the name at \
                         their newest backup (a tenant renamed since is found by that name, \
                         or by #id)",
                        in_repo.join(", ")
                    )
                } else {
                    "; for a tenant known only to a repository (a lost data directory), \
                     give --repo"
                        .into()
                },
            }),
        }
    }

    /// Creates a full backup job of tenant `tenant_id` into `repo` (checked to be
    /// reachable). Refused while another backup of the tenant is unfinished.
    pub async fn start_full(
        &self,
        tenant_id: u64,
        repo: &str,
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<JobRecord> {
        let store = self.jobs.store();
        let rec = store.resolve(tenant_id)?;
        tenet_store::lifecycle::check(&rec, tenet_store::lifecycle::TenantAction::Backup)?;
        let repo = Repo::create(repo)?;
        let (_, new_repository) = repo.check(&util::now(store)).await?;
        let params = BackupParams {
            tenant_id: rec.id,
            tenant: rec.name.clone(),
            repo: repo.url().to_string(),
            new_repository,
            file_bytes: None,
        };
        Ok(self.jobs.create(
            KIND_BACKUP_FULL,
            &rec.name,
            serde_json::to_value(params).expect("params serialize"),
            throttle_bytes_per_sec,
            JobOwner {
                history_id: Some(rec.history_ref().id),
                ..JobOwner::tenant(rec.id).with_lock(format!("backup:{}", rec.id))
            },
        )?)
    }

    /// Creates an incremental backup job of tenant `tenant_id`: the log since the end
    /// of the newest restorable backup of its chain in `repo` (default:
    /// [`Backups::default_repo`]). A backup whose chain lost its full is never continued.
    pub async fn start_incr(
        &self,
        tenant_id: u64,
        repo: Option<&str>,
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<JobRecord> {
        let store = self.jobs.store();
        let rec = store.resolve(tenant_id)?;
        let subject = Subject::of(&rec);
        let repo_url = match repo {
            Some(r) => canonical_url(r)?,
            None => self
                .default_repo(&subject)?
                .ok_or_else(|| no_chain(&rec.name, None))?,
        };
        let repo = Repo::open(&repo_url)?;
        repo.marker().await?;
        let inventory = Inventory::load(&repo, subject.id)
            .await?
            .of_incarnation(subject.created_ts);
        let parent = inventory
            .chain_head()
            .ok_or_else(|| no_chain(&rec.name, Some(repo.url())))?;
        let params = IncrParams {
            tenant_id: rec.id,
            tenant: rec.name.clone(),
            repo: repo.url().to_string(),
            parent: parent.backup_id.clone(),
            start: parent.backup_ts,
        };
        Ok(self.jobs.create(
            KIND_BACKUP_INCR,
            &rec.name,
            serde_json::to_value(params).expect("params serialize"),
            throttle_bytes_per_sec,
            JobOwner {
                history_id: Some(subject.id),
                backups: vec![parent.backup_id.clone()],
                ..JobOwner::tenant(rec.id).with_lock(format!("backup:{}", rec.id))
            },
        )?)
    }

    /// Finds a backup by id: in this store's records, else in `repo`. The backup's
    /// manifest must be in the repository it is looked up in.
    async fn locate(&self, id: &str, repo: Option<&str>) -> Result<(Located, Manifest)> {
        if id.is_empty() || id.contains('/') || id.contains("..") {
            return Err(Error::InvalidArgument(format!(
                "`{id}` is not a backup id; list them with `tenet backups list`"
            )));
        }
        let located = if let Some(rec) = records::get(self.jobs.store(), id)? {
            Located {
                repo: Repo::open(repo.unwrap_or(&rec.repo))?,
                tenant_id: rec.tenant_id,
                record: Some(rec),
            }
        } else {
            let Some(url) = repo else {
                return Err(Error::BackupNotFound(format!(
                    "{id} (this store has no record of it; list backups with `tenet backups \
                     list`, or give the repository that holds it with --repo)"
                )));
            };
            let r = Repo::open(url)?;
            r.marker().await?;
            let mut tenant_id = None;
            for t in r.list_dirs(repo::TENANTS_DIR).await? {
                let Ok(t) = t.parse::<u64>() else { continue };
                if r.exists(&repo::manifest_key(t, id)).await? {
                    tenant_id = Some(t);
                    break;
                }
            }
            let Some(tenant_id) = tenant_id else {
                return Err(Error::BackupNotFound(format!(
                    "{id} (not in this store's records, and {} holds no such backup)",
                    r.url()
                )));
            };
            Located {
                repo: r,
                tenant_id,
                record: None,
            }
        };
        let m = inventory::load_manifest(&located.repo, located.tenant_id, id).await?;
        Ok((located, m))
    }

    /// Creates a restore job of one backup: checks the backup and the target name, then
    /// creates the target tenant in the `restoring` state.
    pub async fn start_restore(&self, req: &RestoreRequest) -> Result<JobRecord> {
        self.check_target(&req.target)?;
        let (loc, m) = self.locate(&req.backup_id, req.repo.as_deref()).await?;
        if let Some(source) = &req.source {
            if source.id != m.tenant_id {
                return Err(Error::InvalidArgument(format!(
                    "backup {} is of tenant `{}` (id {}), not of `{}` (id {})",
                    m.backup_id, m.tenant_name, m.tenant_id, source.name, source.id
                )));
            }
        }
        if m.kind == "incr" {
            // An incremental backup's state is its chain's full plus the log to its end.
            let source = Subject {
                id: m.tenant_id,
                name: m.tenant_name.clone(),
                created_ts: m.tenant_created_ts,
                tenant_id: None,
            };
            return self
                .start_restore_to(
                    &source,
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
            in_place: None,
            standby: None,
        };
        let live = req.source.as_ref().and_then(|s| s.tenant_id);
        self.create_restore(
            params,
            live,
            m.history_retention_secs,
            req.throttle_bytes_per_sec,
        )
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

    /// Creates the restore job (owned by `source_live`, the source's tenant in this
    /// store if it has one), then its target tenant in the `restoring` state.
    async fn create_restore(
        &self,
        params: RestoreParams,
        source_live: Option<u64>,
        retention_secs: u64,
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<JobRecord> {
        let store = self.jobs.store();
        let target_name = params.target.clone();
        let source = params.source_tenant.clone();
        let in_place = params.in_place.is_some();
        let history = params.standby.as_ref().map(|s| s.history);
        let owner = JobOwner {
            tenant_id: source_live,
            history_id: Some(params.source_tenant_id),
            backups: vec![params.backup_id.clone()],
            objects: params.logs.iter().map(|l| l.key.clone()).collect(),
            ..JobOwner::default().with_lock(format!("restore-target:{target_name}"))
        };
        let job = self.jobs.create(
            KIND_RESTORE,
            &source,
            serde_json::to_value(params).expect("params serialize"),
            throttle_bytes_per_sec,
            owner,
        )?;
        let created = store.create_tenant(
            &target_name,
            TenantOptions {
                history_retention_secs: Some(retention_secs),
                state: Some(TenantState::Restoring),
                // In place, or a drill's: hidden, and named with a leading dot.
                scratch: in_place || target_name.starts_with('.'),
                history,
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
        self.jobs.set_target_of(job.id, target.id)?;
        Ok(self.jobs.get(job.id)?)
    }

    /// The repository a tenant's restores read by default: where its archiver writes,
    /// else where its newest recorded backup is.
    pub fn default_repo(&self, tenant: &Subject) -> Result<Option<String>> {
        let store = self.jobs.store();
        if let Some(id) = tenant.tenant_id {
            if let Some(a) = archiver::load(store, id)? {
                return Ok(Some(a.repo));
            }
            if let Some(s) = standby::load(store, id)? {
                return Ok(Some(s.repo));
            }
        }
        Ok(records::list(store)?
            .into_iter()
            .filter(|r| r.tenant_id == tenant.id)
            .max_by_key(|r| r.backup_ts)
            .map(|r| r.repo))
    }

    /// The repository a tenant's keys are read from and made in: `repo`, else its
    /// default one (archive, standby, newest backup), else its strategy's, else the
    /// store's default repository.
    async fn keys_repo(&self, tenant: &Subject, repo: Option<&str>) -> Result<Repo> {
        let store = self.jobs.store();
        let url = match repo {
            Some(r) => Some(canonical_url(r)?),
            None => self.default_repo(tenant)?,
        };
        let url = match (url, tenant.tenant_id) {
            (Some(u), _) => u,
            (None, Some(id)) => match strategy::Strategies::load(store)?.of(id) {
                Some((s, _)) => s.repo_url(store)?,
                None => strategy::default_repo_url(store)?,
            },
            (None, None) => strategy::default_repo_url(store)?,
        };
        let repo = Repo::open(&url)?;
        repo.marker().await?;
        Ok(repo)
    }

    /// A tenant's data keys in its repository (see [`Backups::keys_repo`]).
    pub async fn keys(
        &self,
        tenant: &Subject,
        repo: Option<&str>,
    ) -> Result<(String, Vec<keys::KeyInfo>)> {
        let repo = self.keys_repo(tenant, repo).await?;
        let list = keys::list(&repo, tenant.id).await?;
        Ok((repo.url().to_string(), list))
    }

    /// Makes a new data key the one a tenant's new backups and log are sealed with.
    pub async fn rotate_key(&self, tenant: &Subject, repo: Option<&str>) -> Result<String> {
        let repo = self.keys_repo(tenant, repo).await?;
        keys::rotate(self.jobs.store(), &repo, tenant.id).await
    }

    /// Every repository a tenant of this store wrote to or is set to write to: its
    /// backups', its archive's, its standby source's, its strategy's, the default.
    pub fn repos_of(&self, tenant: &Subject) -> Result<Vec<String>> {
        let store = self.jobs.store();
        let mut urls: Vec<String> = records::list(store)?
            .into_iter()
            .filter(|r| r.tenant_id == tenant.id)
            .map(|r| r.repo)
            .collect();
        if let Some(id) = tenant.tenant_id {
            urls.extend(archiver::load(store, id)?.map(|a| a.repo));
            urls.extend(standby::load(store, id)?.map(|s| s.repo));
            if let Some((s, _)) = strategy::Strategies::load(store)?.of(id) {
                urls.extend(s.repo_url(store).ok());
            }
        }
        urls.extend(strategy::default_repo_url(store).ok());
        urls.sort();
        urls.dedup();
        Ok(urls)
    }

    /// Destroys a history's data keys in `repos` (see [`keys::destroy`]); returns the
    /// key ids destroyed.
    pub async fn destroy_keys(
        &self,
        tenant: &Subject,
        repos: &[String],
        by: &str,
    ) -> Result<keys::Destroyed> {
        let mut opened = Vec::new();
        let mut unopened = Vec::new();
        for url in repos {
            match Repo::open(url) {
                Ok(r) => opened.push(r),
                Err(e) => unopened.push(format!("{url}: {e}")),
            }
        }
        let mut done = keys::destroy(self.jobs.store(), &opened, tenant.id, by).await?;
        done.incomplete.extend(unopened);
        Ok(done)
    }

    /// What `repo` (default: [`Backups::default_repo`]) holds of a tenant.
    pub async fn inventory(
        &self,
        tenant: &Subject,
        repo: Option<&str>,
    ) -> Result<(Repo, Inventory)> {
        let repo = self.repo_of(tenant, repo).await?;
        let inventory = Inventory::load(&repo, tenant.id)
            .await?
            .of_incarnation(tenant.created_ts);
        Ok((repo, inventory))
    }

    /// The repository `repo` (default: [`Backups::default_repo`] of `tenant`), opened
    /// and checked to be one.
    async fn repo_of(&self, tenant: &Subject, repo: Option<&str>) -> Result<Repo> {
        let url = match repo {
            Some(r) => canonical_url(r)?,
            None => self.default_repo(tenant)?.ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "tenant `{}` has no backups or archive recorded in this store; give the \
                     repository with --repo",
                    tenant.name
                ))
            })?,
        };
        let repo = Repo::open(&url)?;
        repo.marker().await?;
        Ok(repo)
    }

    /// The prune job's parameters for `tenant`'s history in `repo` (default: its
    /// default repository) under `retention` (validated).
    async fn prune_params(
        &self,
        tenant: &Subject,
        repo: Option<&str>,
        retention: prune::Retention,
    ) -> Result<prune::PruneParams> {
        retention.validate()?;
        let repo = self.repo_of(tenant, repo).await?;
        Ok(prune::PruneParams {
            history_id: tenant.id,
            created_ts: tenant.created_ts,
            repo: repo.url().to_string(),
            tenant_id: tenant.tenant_id,
            retention,
            decided: None,
        })
    }

    /// What a prune of `tenant` would delete and why (a dry run: nothing changes).
    pub async fn prune_dry_run(
        &self,
        tenant: &Subject,
        repo: Option<&str>,
        retention: prune::Retention,
    ) -> Result<(prune::PruneParams, prune::Decision)> {
        let p = self.prune_params(tenant, repo, retention).await?;
        let repo = Repo::open(&p.repo)?;
        let d = prune::plan(&self.jobs, &repo, &p, self.plan_now(), None).await?;
        Ok((p, d))
    }

    /// Creates a prune job of `tenant`'s history (`prune.rs`). One prune per history
    /// at a time. Given `decided` (the dry run just shown to whoever asked), the job
    /// deletes exactly that; otherwise it decides when it runs.
    pub async fn start_prune(
        &self,
        tenant: &Subject,
        repo: Option<&str>,
        retention: prune::Retention,
        decided: Option<prune::Decision>,
    ) -> Result<JobRecord> {
        let mut p = self.prune_params(tenant, repo, retention).await?;
        p.decided = decided;
        let owner = JobOwner {
            tenant_id: tenant.tenant_id,
            history_id: Some(tenant.id),
            ..JobOwner::default().with_lock(format!("prune:{}", tenant.id))
        };
        Ok(self.jobs.create(
            KIND_PRUNE,
            &tenant.name,
            serde_json::to_value(p).expect("params serialize"),
            None,
            owner,
        )?)
    }

    /// Creates a restore drill of tenant `tenant_id` (`drill.rs`): at `at`, or a random
    /// point of its window, from `repo` (default: its strategy's repository, else where
    /// its backups are). One drill per tenant at a time.
    pub async fn start_drill(
        &self,
        tenant_id: u64,
        repo: Option<&str>,
        at: Option<tenet_store::Ts>,
    ) -> Result<JobRecord> {
        let store = self.jobs.store();
        let rec = store.resolve(tenant_id)?;
        lifecycle::check(&rec, lifecycle::TenantAction::Read)?;
        let subject = Subject::of(&rec);
        let url = match repo {
            Some(r) => Some(r.to_string()),
            None => strategy::effective(store, rec.id)?.and_then(|(s, _)| s.repo_url(store).ok()),
        };
        let repo = self.repo_of(&subject, url.as_deref()).await?;
        if let Some(t) = at {
            // Refused now, with what is restorable, rather than in the job.
            let (_, inv) = self.inventory(&subject, Some(repo.url())).await?;
            inv.plan(&planner::Target::At(t), self.plan_now())
                .map_err(|e| Error::NotRestorable(format!("tenant `{}`: {e}", rec.name)))?;
        }
        let params = drill::DrillParams {
            tenant_id: rec.id,
            repo: repo.url().to_string(),
            at,
        };
        Ok(self.jobs.create(
            KIND_DRILL,
            &rec.name,
            serde_json::to_value(params).expect("params serialize"),
            None,
            JobOwner {
                history_id: Some(subject.id),
                ..JobOwner::tenant(rec.id).with_lock(format!("drill:{}", rec.id))
            },
        )?)
    }

    /// The restorable ranges of a tenant.
    pub async fn restore_points(
        &self,
        tenant: &Subject,
        repo: Option<&str>,
    ) -> Result<Vec<planner::Restorable>> {
        let (repo, mut inv) = self.inventory(tenant, repo).await?;
        // What destroyed keys sealed is not restorable (a shred): leave it out, and
        // when nothing is left, say why rather than answer an empty list.
        let (dead, all_dead) = keys::destroyed(&repo, tenant.id).await?;
        if dead.is_empty() {
            return Ok(inv.restore_points());
        }
        let sealed_dead = |k: &Option<String>| k.as_ref().is_some_and(|k| dead.contains(k));
        inv.backups.retain(|m| {
            !m.tables
                .iter()
                .flat_map(|t| &t.files)
                .any(|f| sealed_dead(&f.key_id))
                && !m.segments.iter().any(|s| sealed_dead(&s.key_id))
        });
        let keys = keys::list(&repo, tenant.id).await?;
        if all_dead {
            // Archived segments name no key: those after the first key was made were
            // sealed with one.
            let first = keys
                .iter()
                .filter_map(|k| k.created_at.as_deref())
                .filter_map(|t| tenet_store::Ts::parse_rfc3339(t).ok())
                .min();
            if let Some(t0) = first {
                inv.archive.retain(|l| l.end <= t0);
            }
        }
        let points = inv.restore_points();
        if points.is_empty() {
            let k = keys
                .iter()
                .find(|k| k.destroyed_at.is_some())
                .expect("dead is not empty");
            return Err(Error::KeyDestroyed {
                history_id: tenant.id,
                key_id: k.key_id.clone(),
                at: k.destroyed_at.clone().unwrap_or_default(),
            });
        }
        Ok(points)
    }

    /// The planner's "now": after a crash the clock may run ahead of the wall clock,
    /// so commits up to the visible ts are not "in the future".
    fn plan_now(&self) -> tenet_store::Ts {
        let store = self.jobs.store();
        store.now_ts().max(store.visible_ts())
    }

    /// Creates a point-in-time restore of `source` into a new tenant: the planner
    /// picks a full backup and the archived log up to the target.
    pub async fn start_restore_to(
        &self,
        source: &Subject,
        target: &planner::Target,
        into: &str,
        repo: Option<&str>,
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<JobRecord> {
        self.check_target(into)?;
        let (mut params, retention) = self.plan_restore(source, target, repo, "").await?;
        params.target = into.to_string();
        self.create_restore(params, source.tenant_id, retention, throttle_bytes_per_sec)
            .await
    }

    /// The restore job of the planner's plan for `target` in `source`'s repository (its
    /// target tenant still to set), and the history retention its backup had; `hint`
    /// ends the message when nothing covers `target`.
    async fn plan_restore(
        &self,
        source: &Subject,
        target: &planner::Target,
        repo: Option<&str>,
        hint: &str,
    ) -> Result<(RestoreParams, u64)> {
        let (repo, inventory) = self.inventory(source, repo).await?;
        let plan = inventory
            .plan(target, self.plan_now())
            .map_err(|e| Error::NotRestorable(format!("tenant `{}`: {e}{hint}", source.name)))?;
        let m = inventory
            .manifest(&plan.full.backup_id)
            .expect("planned fulls come from the inventory");
        let params = RestoreParams {
            backup_id: m.backup_id.clone(),
            repo: repo.url().to_string(),
            source_tenant_id: source.id,
            source_tenant: m.tenant_name.clone(),
            target: String::new(),
            target_ts: Some(plan.target),
            logs: plan.logs,
            in_place: None,
            standby: None,
        };
        Ok((params, m.history_retention_secs))
    }

    /// Creates a standby of `source` named `into`: a restore of its newest state (the
    /// newest full backup and everything archived after it) that then keeps following
    /// its archive (`standby.rs`).
    pub async fn start_standby(
        &self,
        source: &Subject,
        into: &str,
        repo: Option<&str>,
        poll: std::time::Duration,
    ) -> Result<JobRecord> {
        self.check_target(into)?;
        let created_ts = source.created_ts.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "the repository's backups of `{}` predate creation times, so the history a \
                 standby would follow cannot be told from another tenant's: take a new full \
                 backup of it",
                source.name
            ))
        })?;
        let (mut params, retention) = self
            .plan_restore(source, &planner::Target::Latest, repo, "")
            .await?;
        params.target = into.to_string();
        params.standby = Some(standby::StandbyParams {
            history: tenet_store::HistoryRef {
                id: source.id,
                created_ts,
            },
            poll_ms: poll.as_millis().clamp(10, 60_000) as u64,
        });
        self.create_restore(params, source.tenant_id, retention, None)
            .await
    }

    /// Creates an in-place restore of `tenant` (a tenant of this store): the planned
    /// state is restored into a hidden scratch tenant, then the live tenant is made
    /// equal to it in one commit (`restore.rs`). The job's first step is a snapshot
    /// `before-restore-<ts>` of the live tenant, so that undoing it is a rollback.
    pub async fn start_restore_in_place(
        &self,
        tenant: &Subject,
        target: &planner::Target,
        repo: Option<&str>,
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<JobRecord> {
        let store = self.jobs.store();
        let live = store.resolve(tenant.tenant_id.unwrap_or(tenant.id))?;
        if tenant
            .created_ts
            .is_some_and(|c| c != live.history_ref().created_ts)
        {
            return Err(Error::InvalidArgument(format!(
                "tenant `{}` of this store is not the tenant those backups were taken of \
                 (it was dropped and created again); restore them into a new tenant instead",
                live.name
            )));
        }
        lifecycle::check(&live, lifecycle::TenantAction::Revert)?;
        // Within its own history a tenant goes back without any backup.
        let revert_hint = format!(
            "; within its own history (back to {}), `tenet revert {} --to <time>` puts it back \
             without a backup",
            store.safe_point(live.id)?.to_rfc3339(),
            live.name
        );
        let (mut params, retention) =
            match self.plan_restore(tenant, target, repo, &revert_hint).await {
                // No repository or backup known for it.
                Err(Error::InvalidArgument(m)) => {
                    return Err(Error::InvalidArgument(format!(
                        "{m}, or take one with `tenet backup full {} --repo <dir>`{revert_hint}",
                        live.name
                    )))
                }
                other => other?,
            };
        params.source_tenant = live.name.clone();
        params.target = format!(".restore-{}", live.id);
        params.in_place = Some(restore::InPlace { tenant_id: live.id });
        self.create_restore(params, Some(live.id), retention, throttle_bytes_per_sec)
            .await
    }

    /// Creates a clone of tenant `source_id` as of `as_of` into a new tenant `into`,
    /// from the source's local history (`clone.rs`). Fails with `TooOld` when the
    /// source no longer keeps `as_of` (restore from the repository instead).
    pub fn start_clone(
        &self,
        source_id: u64,
        as_of: tenet_store::Ts,
        into: &str,
    ) -> Result<JobRecord> {
        let store = self.jobs.store();
        self.check_target(into)?;
        let src = store.resolve(source_id)?;
        lifecycle::check(&src, lifecycle::TenantAction::Read)?;
        let pin = store.pin(src.id, as_of, clone::KIND)?;
        if let Err(e) = store
            .catalog_at_ts(src.id, pin.ts)
            .and_then(|c| store.check_existed(&src, pin.ts, &c))
        {
            store.unpin(src.id, pin.id)?;
            return Err(e.into());
        }
        let created = store.create_tenant(
            into,
            TenantOptions {
                history_retention_secs: Some(src.history_retention_secs),
                state: Some(TenantState::Restoring),
                ..TenantOptions::default()
            },
        );
        let target = match created {
            Ok((t, _)) => t,
            Err(e) => {
                store.unpin(src.id, pin.id)?;
                return Err(e.into());
            }
        };
        let params = clone::CloneParams {
            source_tenant_id: src.id,
            source_tenant: src.name.clone(),
            as_of: pin.ts,
            pin_id: pin.id,
            target: into.to_string(),
            target_id: target.id,
        };
        let job = self.jobs.create(
            clone::KIND,
            &src.name,
            serde_json::to_value(params).expect("params serialize"),
            None,
            JobOwner {
                target_id: Some(target.id),
                ..JobOwner::tenant(src.id).with_lock(format!("restore-target:{into}"))
            },
        );
        match job {
            Ok(job) => Ok(job),
            Err(e) => {
                store.drop_tenant(target.id)?;
                store.unpin(src.id, pin.id)?;
                Err(e.into())
            }
        }
    }

    /// Creates a verify job for a backup (checked to exist where it is looked for).
    pub async fn start_verify(
        &self,
        id: &str,
        repo: Option<&str>,
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<JobRecord> {
        let (loc, m) = self.locate(id, repo).await?;
        let params = VerifyParams {
            backup_id: id.to_string(),
            repo: loc.repo.url().to_string(),
            tenant_id: loc.tenant_id,
        };
        Ok(self.jobs.create(
            KIND_VERIFY,
            &m.tenant_name,
            serde_json::to_value(params).expect("params serialize"),
            throttle_bytes_per_sec,
            JobOwner {
                history_id: Some(loc.tenant_id),
                backups: vec![id.to_string()],
                ..JobOwner::default()
            },
        )?)
    }

    /// Backups recorded in this store, optionally of one tenant (by id), oldest first.
    pub fn list(&self, tenant_id: Option<u64>) -> Result<Vec<BackupRecord>> {
        let mut all = records::list(self.jobs.store())?;
        if let Some(t) = tenant_id {
            all.retain(|r| r.tenant_id == t);
        }
        all.sort_by_key(|r| r.backup_ts);
        Ok(all)
    }

    /// Backups in a repository (read from it alone), optionally of one tenant,
    /// oldest first. Their job id is that of this store's record, 0 if none.
    pub async fn list_repo(
        &self,
        repo: &str,
        tenant: Option<&Subject>,
    ) -> Result<Vec<BackupRecord>> {
        let repo = Repo::open(repo)?;
        repo.marker().await?;
        let tenants: Vec<(u64, Option<tenet_store::Ts>)> = match tenant {
            Some(t) => vec![(t.id, t.created_ts)],
            None => repo
                .list_dirs(repo::TENANTS_DIR)
                .await?
                .iter()
                .filter_map(|d| Some((d.parse().ok()?, None)))
                .collect(),
        };
        let mut out = Vec::new();
        for (id, created) in tenants {
            let inventory = Inventory::load(&repo, id).await?.of_incarnation(created);
            for m in inventory.backups {
                let job_id = records::get(self.jobs.store(), &m.backup_id)?.map_or(0, |r| r.job_id);
                out.push(BackupRecord::from_manifest(&m, repo.url(), job_id));
            }
        }
        out.sort_by_key(|r| r.backup_ts);
        Ok(out)
    }

    /// A backup's record (if this store has one) and its manifest.
    pub async fn show(
        &self,
        id: &str,
        repo: Option<&str>,
    ) -> Result<(Option<BackupRecord>, Manifest)> {
        let (loc, m) = self.locate(id, repo).await?;
        Ok((loc.record, m))
    }

    /// Deletes a backup: its manifest first (so it stops existing), then its files,
    /// then its record. Refused while a job uses it, and — unless `force` — while
    /// incremental backups are chained on it. Returns what was deleted.
    pub async fn delete(&self, id: &str, force: bool) -> Result<BackupRecord> {
        let store = self.jobs.store();
        let rec = records::get(store, id)?.ok_or_else(|| {
            Error::BackupNotFound(format!("{id} (list backups with `tenet backups list`)"))
        })?;
        if let Some(j) = self
            .jobs
            .list()?
            .into_iter()
            .find(|j| !j.state.is_final() && j.owner.uses(id))
        {
            return Err(Error::Jobs(tenet_jobs::Error::Conflict(format!(
                "backup {id} is in use by job {} ({}); wait for it or cancel it first",
                j.id, j.kind
            ))));
        }
        let repo = Repo::open(&rec.repo)?;
        if !force {
            let inventory = Inventory::load(&repo, rec.tenant_id).await?;
            let deps = inventory.dependents(id);
            if !deps.is_empty() {
                let names: Vec<&str> = deps.iter().map(|m| m.backup_id.as_str()).collect();
                return Err(Error::InUse(format!(
                    "backup {id} has {} incremental backup(s) chained on it ({}); without it \
                     they cannot be restored unless an older full backup reaches them. Delete \
                     it anyway with --force, or delete the newest incremental first",
                    deps.len(),
                    names.join(", ")
                )));
            }
        }
        records::remove_backup(store, &repo, rec.tenant_id, id, None).await?;
        Ok(rec)
    }
}

fn no_chain(tenant: &str, repo: Option<&str>) -> Error {
    Error::InvalidArgument(format!(
        "tenant `{tenant}` has no restorable backup to continue{}; take a full backup first \
         (`tenet backup full {tenant}{}`)",
        repo.map(|r| format!(" in {r}")).unwrap_or_default(),
        repo.map(|r| format!(" --repo {r}")).unwrap_or_default(),
    ))
}
