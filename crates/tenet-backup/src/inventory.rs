//! What a repository holds of one tenant, read from the repository alone: its backups
//! (full and incremental, from their manifests) and its archived log segments.
//!
//! # Overview
//! One [`Inventory`] serves every question about restorability, so they all get the
//! same answer: the restore planner's inputs ([`Inventory::plan`]), restore points,
//! the newest restorable point that `archive status` reports and that a (re)started
//! archiver continues from, the chain an incremental backup extends, and what depends
//! on a backup that is to be deleted. Nothing here reads the store, so a fresh store
//! pointed at a repository (the data directory lost) sees what the old one saw.
//!
//! # Consistency
//! A backup exists iff its manifest exists (written last, deleted first), so a listing
//! taken while a backup is written or deleted sees it whole or not at all. Segments are
//! written once under names that carry their range; overlapping segments (an archiver
//! that re-read after a crash) are harmless to the planner.
//!
//! # Cost
//! One delimiter listing of the tenant's backups, one GET per backup manifest, and one
//! listing of the tenant's log directory.

use tenet_store::Ts;

use crate::error::{Error, Result};
use crate::format::{decode_manifest, Manifest};
use crate::planner::{self, FullPoint, LogRange, Plan, PlanError, Restorable, Target};
use crate::repo::{
    backup_dir, backups_prefix, log_prefix, manifest_key, parse_segment_name, Repo, TENANTS_DIR,
};

/// Reads and checks a backup's manifest; a missing one is `BackupNotFound`.
pub async fn load_manifest(repo: &Repo, tenant_id: u64, backup_id: &str) -> Result<Manifest> {
    load_manifest_opt(repo, tenant_id, backup_id)
        .await?
        .ok_or_else(|| {
            Error::BackupNotFound(format!(
                "{backup_id} (no manifest at {}; the backup was deleted or never finished)",
                repo.describe(&manifest_key(tenant_id, backup_id))
            ))
        })
}

async fn load_manifest_opt(
    repo: &Repo,
    tenant_id: u64,
    backup_id: &str,
) -> Result<Option<Manifest>> {
    let key = manifest_key(tenant_id, backup_id);
    let Some(bytes) = repo.get_opt(&key).await? else {
        return Ok(None);
    };
    let m = decode_manifest(&repo.describe(&key), &bytes)?;
    if m.backup_id != backup_id || m.tenant_id != tenant_id {
        return Err(Error::Corrupt {
            object: repo.describe(&key),
            reason: format!(
                "manifest is for backup {} of tenant id {}",
                m.backup_id, m.tenant_id
            ),
        });
    }
    Ok(Some(m))
}

/// A tenant's backups and archived log in one repository.
#[derive(Clone, Debug)]
pub struct Inventory {
    pub tenant_id: u64,
    /// Every backup (full and incremental), oldest first.
    pub backups: Vec<Manifest>,
    /// The archive's segments, by start.
    pub archive: Vec<LogRange>,
}

impl Inventory {
    /// Reads what `repo` holds of tenant `tenant_id`.
    pub async fn load(repo: &Repo, tenant_id: u64) -> Result<Inventory> {
        let mut backups = Vec::new();
        for id in repo.list_dirs(&backups_prefix(tenant_id)).await? {
            // A directory without a manifest is a backup being written or deleted.
            if let Some(m) = load_manifest_opt(repo, tenant_id, &id).await? {
                backups.push(m);
            }
        }
        backups.sort_by(|a, b| (a.backup_ts, &a.backup_id).cmp(&(b.backup_ts, &b.backup_id)));
        let archive = archived_segments(repo, tenant_id, None).await?;
        Ok(Inventory {
            tenant_id,
            backups,
            archive,
        })
    }

    /// Only the backups of one incarnation of the tenant id: the tenant created at
    /// `created` (None: all). Tenant ids are per store, so a repository that two stores
    /// wrote to (e.g. a store rebuilt after its data directory was lost) can hold
    /// another tenant's backups under the same id; they must never extend this one's
    /// chain or restorable range. Manifests from before the field existed are kept.
    pub fn of_incarnation(mut self, created: Option<Ts>) -> Inventory {
        if let Some(c) = created {
            self.backups
                .retain(|m| m.tenant_created_ts.is_none_or(|t| t == c));
        }
        self
    }

    /// The full backups, as the planner sees them.
    pub fn fulls(&self) -> Vec<FullPoint> {
        self.backups
            .iter()
            .filter(|m| m.kind == "full")
            .map(|m| FullPoint {
                backup_id: m.backup_id.clone(),
                ts: m.backup_ts,
            })
            .collect()
    }

    /// Every log range: the archive's segments and the incremental backups' segments.
    pub fn logs(&self) -> Vec<LogRange> {
        let mut logs = self.archive.clone();
        for m in self.backups.iter().filter(|m| m.kind == "incr") {
            let dir = backup_dir(self.tenant_id, &m.backup_id);
            logs.extend(m.segments.iter().map(|s| LogRange {
                key: format!("{dir}/{}", s.path),
                start: s.start,
                end: s.end,
                bytes: s.size,
            }));
        }
        logs
    }

    /// Every restorable range, oldest first.
    pub fn restore_points(&self) -> Vec<Restorable> {
        planner::restore_points(&self.fulls(), &self.logs())
    }

    /// The newest restorable point, if any.
    pub fn restorable_until(&self) -> Option<Ts> {
        self.restore_points().iter().map(|r| r.to).max()
    }

    /// Plans a restore to `target` (see [`planner::plan`]).
    pub fn plan(&self, target: &Target, now: Ts) -> std::result::Result<Plan, PlanError> {
        planner::plan(&self.fulls(), &self.logs(), target, now)
    }

    pub fn manifest(&self, backup_id: &str) -> Option<&Manifest> {
        self.backups.iter().find(|m| m.backup_id == backup_id)
    }

    /// The newest backup (full or incremental) whose end is restorable: the one an
    /// incremental backup continues. A backup whose chain lost its full is skipped.
    pub fn chain_head(&self) -> Option<&Manifest> {
        let points = self.restore_points();
        self.backups.iter().rev().find(|m| {
            points
                .iter()
                .any(|r| r.from <= m.backup_ts && m.backup_ts <= r.to)
        })
    }

    /// The incremental backups chained on `backup_id`, directly or through others.
    pub fn dependents(&self, backup_id: &str) -> Vec<&Manifest> {
        let mut chain = vec![backup_id.to_string()];
        let mut out = Vec::new();
        // Oldest first: a child is always newer than its parent.
        for m in &self.backups {
            if m.parent.as_ref().is_some_and(|p| chain.contains(p)) {
                chain.push(m.backup_id.clone());
                out.push(m);
            }
        }
        out
    }
}

/// The archived log segments of history `tenant_id`, by start; with `from`, only those
/// that start at or after it (listed after it: S3 `start-after`, so the cost is what
/// is new).
pub async fn archived_segments(
    repo: &Repo,
    tenant_id: u64,
    from: Option<Ts>,
) -> Result<Vec<LogRange>> {
    let prefix = log_prefix(tenant_id);
    let offset = from.map(|f| format!("{prefix}{:020}", f.0.saturating_sub(1)));
    let mut ranges: Vec<LogRange> = repo
        .list_after(&prefix, offset.as_deref())
        .await?
        .into_iter()
        .filter_map(|(key, bytes)| {
            let (start, end) = parse_segment_name(key.strip_prefix(&prefix)?)?;
            Some(LogRange {
                key,
                start,
                end,
                bytes,
            })
        })
        .filter(|l| from.is_none_or(|f| l.start >= f))
        .collect();
    ranges.sort_by_key(|l| (l.start, l.end));
    Ok(ranges)
}

/// A tenant as a repository knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoTenant {
    pub tenant_id: u64,
    /// Its name at its newest backup (None: only archived log, no backup).
    pub name: Option<String>,
    /// When that backup's tenant was created (see [`Inventory::of_incarnation`]).
    pub created_ts: Option<Ts>,
    /// The end of its newest backup.
    pub newest_backup_ts: Option<Ts>,
}

/// The tenants `repo` holds anything of, by id.
pub async fn repo_tenants(repo: &Repo) -> Result<Vec<RepoTenant>> {
    let mut out = Vec::new();
    for dir in repo.list_dirs(TENANTS_DIR).await? {
        let Ok(tenant_id) = dir.parse::<u64>() else {
            continue;
        };
        // Backups are sorted oldest first.
        let inventory = Inventory::load(repo, tenant_id).await?;
        let newest = inventory.backups.last();
        out.push(RepoTenant {
            tenant_id,
            name: newest.map(|m| m.tenant_name.clone()),
            created_ts: newest.and_then(|m| m.tenant_created_ts),
            newest_backup_ts: newest.map(|m| m.backup_ts),
        });
    }
    Ok(out)
}
