//! Backup records: one row per finished backup in the system tenant (table
//! [`tenet_store::BACKUPS_TABLE`]), so backups can be listed without reading the
//! repository, and outlive the tenant they came from.

use serde::{Deserialize, Serialize};

use tenet_store::keys::{pk_bytes, KeyValue};
use tenet_store::{decode_system_row, encode_system_row, Store, Ts, BACKUPS_TABLE};

use crate::error::Result;
use crate::format::Manifest;

/// A backup as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    pub id: String,
    pub kind: String,
    pub tenant_id: u64,
    pub tenant_name: String,
    /// When the tenant was created (with the id, which tenant it is; see
    /// `Manifest::tenant_created_ts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_created_ts: Option<Ts>,
    /// Canonical URL of the repository holding it.
    pub repo: String,
    pub backup_ts: Ts,
    pub backup_time: String,
    pub tables: u64,
    pub files: u64,
    pub rows: u64,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    pub job_id: u64,
    pub finished_at: String,
}

impl BackupRecord {
    pub fn from_manifest(m: &Manifest, repo: &str, job_id: u64) -> Self {
        BackupRecord {
            id: m.backup_id.clone(),
            kind: m.kind.clone(),
            tenant_id: m.tenant_id,
            tenant_name: m.tenant_name.clone(),
            tenant_created_ts: m.tenant_created_ts,
            repo: repo.to_string(),
            backup_ts: m.backup_ts,
            backup_time: m.backup_time.clone(),
            tables: m.tables.len() as u64,
            files: m.tables.iter().map(|t| t.files.len() as u64).sum(),
            rows: m.rows,
            logical_bytes: m.logical_bytes,
            stored_bytes: m.stored_bytes,
            job_id,
            finished_at: m.finished_at.clone(),
        }
    }
}

fn key(id: &str) -> Vec<u8> {
    pk_bytes(&[KeyValue::Str(id.to_string())])
}

pub fn put(store: &Store, rec: &BackupRecord) -> Result<()> {
    store.system_put(BACKUPS_TABLE, &key(&rec.id), Some(&encode_system_row(rec)))?;
    Ok(())
}

pub fn remove(store: &Store, id: &str) -> Result<()> {
    store.system_put(BACKUPS_TABLE, &key(id), None)?;
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<BackupRecord> {
    Ok(decode_system_row("backup record", bytes)?)
}

pub fn get(store: &Store, id: &str) -> Result<Option<BackupRecord>> {
    store
        .system_get(BACKUPS_TABLE, &key(id))?
        .map(|b| decode(&b))
        .transpose()
}

/// Every backup, by id.
pub fn list(store: &Store) -> Result<Vec<BackupRecord>> {
    store
        .system_scan(BACKUPS_TABLE)?
        .into_iter()
        .map(|(_, v)| decode(&v))
        .collect()
}

/// Removes a backup from its repository — the manifest first (so it stops existing),
/// then its files and whatever partial uploads a local directory still holds — and
/// then its record, if this store has one (only the one `job_id` wrote, if given).
pub async fn remove_backup(
    store: &Store,
    repo: &crate::repo::Repo,
    tenant_id: u64,
    id: &str,
    job_id: Option<u64>,
) -> Result<()> {
    let dir = crate::repo::backup_dir(tenant_id, id);
    repo.delete(&crate::repo::manifest_key(tenant_id, id))
        .await?;
    repo.delete_prefix(&format!("{dir}/")).await?;
    repo.remove_local_dir(&dir)?;
    if get(store, id)?.is_some_and(|r| job_id.is_none_or(|j| r.job_id == j)) {
        remove(store, id)?;
    }
    Ok(())
}
