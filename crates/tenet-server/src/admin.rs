//! [`Admin`]: every operation of the API as a blocking call. Implemented by
//! [`crate::service::Service`] (the store in this process; the HTTP handlers call it)
//! and by [`crate::client::Client`] (a running server over HTTP), so the CLI behaves
//! the same in both modes.

use serde_json::Value;

use crate::api::*;
use crate::error::ApiResult;

pub trait Admin: Send + Sync {
    fn health(&self) -> ApiResult<Health>;
    fn list_tenants(&self) -> ApiResult<Vec<TenantInfo>>;
    fn create_tenant(&self, req: &CreateTenant) -> ApiResult<TenantResponse>;
    fn get_tenant(&self, tenant: &str) -> ApiResult<TenantInfo>;
    fn alter_tenant(&self, tenant: &str, req: &AlterTenant) -> ApiResult<TenantResponse>;
    fn drop_tenant(&self, tenant: &str) -> ApiResult<Commit>;

    fn list_tables(&self, tenant: &str, q: &AsOfQuery) -> ApiResult<Vec<TableInfo>>;
    fn create_table(&self, tenant: &str, req: &CreateTable) -> ApiResult<TableResponse>;
    fn get_table(&self, tenant: &str, table: &str, q: &AsOfQuery) -> ApiResult<TableInfo>;
    fn alter_table(&self, tenant: &str, table: &str, req: &AlterTable) -> ApiResult<TableResponse>;
    fn drop_table(&self, tenant: &str, table: &str) -> ApiResult<Commit>;

    fn put_rows(&self, tenant: &str, table: &str, rows: Vec<Value>) -> ApiResult<WriteResponse>;
    fn delete_rows(&self, tenant: &str, table: &str, keys: Vec<Value>) -> ApiResult<WriteResponse>;
    fn txn(&self, tenant: &str, req: TxnRequest) -> ApiResult<WriteResponse>;
    fn get_row(&self, tenant: &str, table: &str, q: &GetQuery) -> ApiResult<RowResponse>;
    fn scan(&self, tenant: &str, table: &str, q: &ScanQuery) -> ApiResult<ScanResponse>;

    fn list_snapshots(&self, tenant: &str) -> ApiResult<Vec<SnapshotInfo>>;
    fn create_snapshot(&self, tenant: &str, req: &CreateSnapshot) -> ApiResult<SnapshotResponse>;
    fn drop_snapshot(&self, tenant: &str, snapshot: &str) -> ApiResult<Commit>;
    /// Puts the tenant back as it was at the snapshot (a revert to its ts).
    fn rollback_snapshot(&self, tenant: &str, snapshot: &str) -> ApiResult<RevertResponse>;
    /// Puts the tenant (or a table, or a key range) back as it was, in one commit.
    fn revert(&self, tenant: &str, req: &RevertRequest) -> ApiResult<RevertResponse>;

    /// Starts a full backup job (runs in the background of whoever owns the store).
    fn create_backup(&self, req: &CreateBackup) -> ApiResult<JobInfo>;
    fn list_backups(&self, q: &ListBackupsQuery) -> ApiResult<Vec<BackupInfo>>;
    fn get_backup(&self, id: &str, q: &RepoQuery) -> ApiResult<BackupDetail>;
    /// Deletes a backup's files, then its record.
    fn delete_backup(&self, id: &str, q: &DeleteBackupQuery) -> ApiResult<BackupInfo>;
    fn verify_backup(&self, id: &str, req: &VerifyBackup) -> ApiResult<JobInfo>;
    fn create_restore(&self, req: &CreateRestore) -> ApiResult<JobInfo>;
    /// Starts a clone job: from local history, or a restore from the repository when
    /// the time is older than what the tenant keeps.
    fn clone_tenant(&self, tenant: &str, req: &CloneRequest) -> ApiResult<JobInfo>;

    fn list_jobs(&self) -> ApiResult<Vec<JobInfo>>;
    fn get_job(&self, id: u64) -> ApiResult<JobInfo>;
    fn cancel_job(&self, id: u64) -> ApiResult<JobInfo>;
    /// Continues an unfinished job (after a crash) in the background.
    fn resume_job(&self, id: u64) -> ApiResult<JobInfo>;
    fn archive_start(&self, tenant: &str, req: &ArchiveStart) -> ApiResult<ArchiveInfo>;
    fn archive_stop(&self, tenant: &str) -> ApiResult<ArchiveInfo>;
    fn archive_status(&self, tenant: &str) -> ApiResult<ArchiveInfo>;
    fn restore_points(&self, tenant: &str, q: &RepoQuery) -> ApiResult<Vec<RestorePoint>>;
    /// Where a standby stands against its source.
    fn standby_status(&self, tenant: &str) -> ApiResult<StandbyInfo>;
    /// Pauses or resumes a standby's following.
    fn standby_pause(&self, tenant: &str, paused: bool) -> ApiResult<StandbyInfo>;
    /// Makes a standby writable (and starts its archive).
    fn promote(&self, tenant: &str, req: &PromoteRequest) -> ApiResult<PromoteResponse>;
    /// Starts a switchover job: the tenant moves to its standby, and stays behind as a
    /// standby of it.
    fn switchover(&self, tenant: &str, req: &SwitchoverRequest) -> ApiResult<JobInfo>;

    /// Named repositories held by the server.
    fn list_repos(&self) -> ApiResult<Vec<RepoInfo>>;
    fn add_repo(&self, req: &AddRepo) -> ApiResult<RepoInfo>;
    fn get_repo(&self, name: &str) -> ApiResult<RepoInfo>;
    /// Forgets a name (the repository's contents stay); refused while a strategy uses it.
    fn remove_repo(&self, name: &str) -> ApiResult<RepoInfo>;
    /// The strategy of a tenant (its own or the default), or with None the default.
    fn get_strategy(&self, tenant: Option<&str>) -> ApiResult<StrategyInfo>;
    fn put_strategy(&self, tenant: Option<&str>, req: &StrategyBody) -> ApiResult<StrategyInfo>;
    fn delete_strategy(&self, tenant: Option<&str>) -> ApiResult<StrategyInfo>;
    /// Deletes (or with `dry_run` lists) what no kept restore point needs.
    fn prune(&self, req: &PruneRequest) -> ApiResult<PruneResponse>;
    /// Starts a restore drill of a tenant: restore a point of its window into a scratch
    /// tenant, compare, drop it.
    fn drill(&self, tenant: &str, req: &DrillRequest) -> ApiResult<JobInfo>;
    /// Every tenant's protection, worst first.
    fn protection(&self, q: &ProtectionQuery) -> ApiResult<ProtectionOverview>;

    /// A tenant's data keys (in its repository, or `repo`).
    fn list_keys(&self, tenant: &str, q: &RepoQuery) -> ApiResult<TenantKeys>;
    /// Makes a new data key the one new backups and log of the tenant are sealed with.
    fn rotate_key(&self, tenant: &str, req: &RotateKey) -> ApiResult<TenantKeys>;
    /// Drops a tenant, then destroys its data keys everywhere (crypto-shredding); an
    /// audit record stays.
    fn shred_tenant(&self, tenant: &str) -> ApiResult<ShredResponse>;

    /// The audit log (admin only): shreds, key rotations, tokens made and revoked.
    fn audit_log(&self) -> ApiResult<Vec<AuditRecord>>;

    /// Who the caller is: its role, tenant and token.
    fn whoami(&self) -> ApiResult<WhoAmI>;
    /// API tokens (admin only; never their secrets).
    fn list_tokens(&self) -> ApiResult<Vec<TokenInfo>>;
    /// Makes a token; its secret is in the answer only.
    fn create_token(&self, req: &CreateToken) -> ApiResult<CreatedToken>;
    /// Revokes a token at once (its record stays).
    fn revoke_token(&self, id: u64) -> ApiResult<TokenInfo>;

    /// Whether jobs keep running after this call returns (a server), or only while
    /// this process lives (embedded).
    fn jobs_run_detached(&self) -> bool;
}
