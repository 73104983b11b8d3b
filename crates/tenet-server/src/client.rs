//! [`Client`]: the API over HTTP, for the CLI when a server owns the data directory.

use std::time::Duration;

use reqwest::blocking::{Client as Http, RequestBuilder};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::admin::Admin;
use crate::api::*;
use crate::error::{ApiError, ApiResult};
use tenet_store::Code;

#[derive(Clone, Debug)]
pub struct Client {
    base: Url,
    http: Http,
    token: Option<Secret>,
}

/// How a client reaches a server: the token it sends, the CA it trusts.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    pub token: Option<String>,
    /// Trust only this CA (a PEM file) instead of the system's roots.
    pub ca_cert: Option<std::path::PathBuf>,
}

/// A token that never shows in `Debug` output or logs.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<token>")
    }
}

/// An HTTP client that trusts `ca_cert` alone when given.
fn http_builder(ca_cert: Option<&std::path::Path>) -> ApiResult<reqwest::blocking::ClientBuilder> {
    let builder = Http::builder();
    let Some(path) = ca_cert else {
        return Ok(builder);
    };
    let pem = std::fs::read(path).map_err(|e| {
        ApiError::invalid(format!(
            "cannot read the CA certificate {}: {e}",
            path.display()
        ))
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        ApiError::invalid(format!(
            "{} is not a PEM certificate ({e}); give the CA that signed the server's \
             certificate",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(ApiError::invalid(format!(
            "{} holds no certificate (expected PEM, -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(builder.tls_certs_only(certs))
}

/// The error of a server that cannot be reached, with the causes (a certificate that
/// is not trusted says so, and what to do).
fn unavailable(url: &str, e: impl std::error::Error) -> ApiError {
    let mut why = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        why.push_str(": ");
        why.push_str(&s.to_string());
        source = s.source();
    }
    let hint = if why.contains("certificate") {
        "; if the server's certificate is signed by your own CA, give it with --ca-cert \
         (or TENET_CA_CERT)"
    } else {
        ""
    };
    ApiError::new(
        Code::UNAVAILABLE,
        format!("cannot reach the tenet server at {url}: {why}{hint}"),
    )
}

impl Client {
    /// A client without a token, trusting the system's CAs.
    pub fn new(base_url: &str) -> ApiResult<Client> {
        Self::with_options(base_url, &ClientOptions::default())
    }

    pub fn with_options(base_url: &str, opts: &ClientOptions) -> ApiResult<Client> {
        let base = Url::parse(base_url).map_err(|e| {
            ApiError::invalid(format!(
                "server URL `{base_url}` is not valid ({e}); e.g. http://127.0.0.1:7070"
            ))
        })?;
        let http = http_builder(opts.ca_cert.as_deref())?
            .timeout(Duration::from_secs(3600))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| unavailable(base_url, e))?;
        Ok(Client {
            base,
            http,
            token: opts.token.clone().map(Secret),
        })
    }

    /// Whether a server answers at `base_url` within a short timeout.
    pub fn probe(base_url: &str) -> Option<Health> {
        Self::probe_with(base_url, None)
    }

    /// [`Self::probe`] trusting `ca_cert` alone.
    pub fn probe_with(base_url: &str, ca_cert: Option<&std::path::Path>) -> Option<Health> {
        let http = http_builder(ca_cert)
            .ok()?
            .timeout(Duration::from_millis(1500))
            .build()
            .ok()?;
        let resp = http.get(format!("{base_url}/healthz")).send().ok()?;
        resp.json().ok()
    }

    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("http URLs have paths")
            .pop_if_empty()
            .extend(segments);
        let req = self.http.request(method, url);
        match &self.token {
            Some(t) => req.bearer_auth(&t.0),
            None => req,
        }
    }

    fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> ApiResult<T> {
        let resp = req.send().map_err(|e| unavailable(self.base.as_str(), e))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .map_err(|e| unavailable(self.base.as_str(), e))?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::new(
                    Code::BAD_RESPONSE,
                    format!("the server sent a response this client cannot read: {e}"),
                )
            })
        } else {
            let body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorBody {
                code: Code::BAD_RESPONSE.as_str().into(),
                message: format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
            });
            Err(ApiError {
                status: status.as_u16(),
                code: body.code,
                message: body.message,
            })
        }
    }

    fn get<T: DeserializeOwned>(&self, segments: &[&str], query: &impl Serialize) -> ApiResult<T> {
        self.send(self.request(Method::GET, segments).query(query))
    }

    fn with_body<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &impl Serialize,
    ) -> ApiResult<T> {
        self.send(self.request(method, segments).json(body))
    }

    fn delete<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &impl Serialize,
    ) -> ApiResult<T> {
        self.send(self.request(Method::DELETE, segments).query(query))
    }
}

const NONE: [(); 0] = [];

impl Admin for Client {
    fn health(&self) -> ApiResult<Health> {
        self.get(&["healthz"], &NONE)
    }

    fn list_tenants(&self) -> ApiResult<Vec<TenantInfo>> {
        self.get(&["v1", "tenants"], &NONE)
    }

    fn create_tenant(&self, req: &CreateTenant) -> ApiResult<TenantResponse> {
        self.with_body(Method::POST, &["v1", "tenants"], req)
    }

    fn get_tenant(&self, tenant: &str) -> ApiResult<TenantInfo> {
        self.get(&["v1", "tenants", tenant], &NONE)
    }

    fn alter_tenant(&self, tenant: &str, req: &AlterTenant) -> ApiResult<TenantResponse> {
        self.with_body(Method::PATCH, &["v1", "tenants", tenant], req)
    }

    fn drop_tenant(&self, tenant: &str) -> ApiResult<Commit> {
        self.delete(&["v1", "tenants", tenant], &NONE)
    }

    fn list_tables(&self, tenant: &str, q: &AsOfQuery) -> ApiResult<Vec<TableInfo>> {
        self.get(&["v1", "tenants", tenant, "tables"], q)
    }

    fn create_table(&self, tenant: &str, req: &CreateTable) -> ApiResult<TableResponse> {
        self.with_body(Method::POST, &["v1", "tenants", tenant, "tables"], req)
    }

    fn get_table(&self, tenant: &str, table: &str, q: &AsOfQuery) -> ApiResult<TableInfo> {
        self.get(&["v1", "tenants", tenant, "tables", table], q)
    }

    fn alter_table(&self, tenant: &str, table: &str, req: &AlterTable) -> ApiResult<TableResponse> {
        self.with_body(
            Method::PATCH,
            &["v1", "tenants", tenant, "tables", table],
            req,
        )
    }

    fn drop_table(&self, tenant: &str, table: &str) -> ApiResult<Commit> {
        self.delete(&["v1", "tenants", tenant, "tables", table], &NONE)
    }

    fn put_rows(&self, tenant: &str, table: &str, rows: Vec<Value>) -> ApiResult<WriteResponse> {
        self.with_body(
            Method::POST,
            &["v1", "tenants", tenant, "tables", table, "rows"],
            &PutRows { rows },
        )
    }

    fn delete_rows(&self, tenant: &str, table: &str, keys: Vec<Value>) -> ApiResult<WriteResponse> {
        self.with_body(
            Method::POST,
            &["v1", "tenants", tenant, "tables", table, "rows", "delete"],
            &DeleteRows { keys },
        )
    }

    fn txn(&self, tenant: &str, req: TxnRequest) -> ApiResult<WriteResponse> {
        crate::service::check_txn_size(&req.ops)?;
        self.with_body(Method::POST, &["v1", "tenants", tenant, "txn"], &req)
    }

    fn get_row(&self, tenant: &str, table: &str, q: &GetQuery) -> ApiResult<RowResponse> {
        self.get(&["v1", "tenants", tenant, "tables", table, "row"], q)
    }

    fn scan(&self, tenant: &str, table: &str, q: &ScanQuery) -> ApiResult<ScanResponse> {
        self.get(&["v1", "tenants", tenant, "tables", table, "rows"], q)
    }

    fn list_snapshots(&self, tenant: &str) -> ApiResult<Vec<SnapshotInfo>> {
        self.get(&["v1", "tenants", tenant, "snapshots"], &NONE)
    }

    fn create_snapshot(&self, tenant: &str, req: &CreateSnapshot) -> ApiResult<SnapshotResponse> {
        self.with_body(Method::POST, &["v1", "tenants", tenant, "snapshots"], req)
    }

    fn drop_snapshot(&self, tenant: &str, snapshot: &str) -> ApiResult<Commit> {
        self.delete(&["v1", "tenants", tenant, "snapshots", snapshot], &NONE)
    }

    fn rollback_snapshot(&self, tenant: &str, snapshot: &str) -> ApiResult<RevertResponse> {
        self.with_body(
            Method::POST,
            &["v1", "tenants", tenant, "snapshots", snapshot, "rollback"],
            &serde_json::json!({}),
        )
    }

    fn clone_tenant(&self, tenant: &str, req: &CloneRequest) -> ApiResult<JobInfo> {
        self.with_body(Method::POST, &["v1", "tenants", tenant, "clone"], req)
    }

    fn revert(&self, tenant: &str, req: &RevertRequest) -> ApiResult<RevertResponse> {
        self.with_body(Method::POST, &["v1", "tenants", tenant, "revert"], req)
    }

    fn create_backup(&self, req: &CreateBackup) -> ApiResult<JobInfo> {
        self.with_body(Method::POST, &["v1", "backups"], req)
    }

    fn list_backups(&self, q: &ListBackupsQuery) -> ApiResult<Vec<BackupInfo>> {
        self.get(&["v1", "backups"], q)
    }

    fn get_backup(&self, id: &str, q: &RepoQuery) -> ApiResult<BackupDetail> {
        self.get(&["v1", "backups", id], q)
    }

    fn delete_backup(&self, id: &str, q: &DeleteBackupQuery) -> ApiResult<BackupInfo> {
        self.delete(&["v1", "backups", id], q)
    }

    fn verify_backup(&self, id: &str, req: &VerifyBackup) -> ApiResult<JobInfo> {
        self.with_body(Method::POST, &["v1", "backups", id, "verify"], req)
    }

    fn create_restore(&self, req: &CreateRestore) -> ApiResult<JobInfo> {
        self.with_body(Method::POST, &["v1", "restores"], req)
    }

    fn list_jobs(&self) -> ApiResult<Vec<JobInfo>> {
        self.get(&["v1", "jobs"], &NONE)
    }

    fn get_job(&self, id: u64) -> ApiResult<JobInfo> {
        self.get(&["v1", "jobs", &id.to_string()], &NONE)
    }

    fn cancel_job(&self, id: u64) -> ApiResult<JobInfo> {
        self.with_body(
            Method::POST,
            &["v1", "jobs", &id.to_string(), "cancel"],
            &NONE,
        )
    }

    fn resume_job(&self, id: u64) -> ApiResult<JobInfo> {
        self.with_body(
            Method::POST,
            &["v1", "jobs", &id.to_string(), "resume"],
            &NONE,
        )
    }

    fn jobs_run_detached(&self) -> bool {
        true
    }

    fn list_repos(&self) -> ApiResult<Vec<RepoInfo>> {
        self.get(&["v1", "repos"], &NONE)
    }

    fn add_repo(&self, req: &AddRepo) -> ApiResult<RepoInfo> {
        self.with_body(Method::POST, &["v1", "repos"], req)
    }

    fn get_repo(&self, name: &str) -> ApiResult<RepoInfo> {
        self.get(&["v1", "repos", name], &NONE)
    }

    fn remove_repo(&self, name: &str) -> ApiResult<RepoInfo> {
        self.delete(&["v1", "repos", name], &NONE)
    }

    fn get_strategy(&self, tenant: Option<&str>) -> ApiResult<StrategyInfo> {
        match tenant {
            Some(t) => self.get(&["v1", "tenants", t, "strategy"], &NONE),
            None => self.get(&["v1", "strategy"], &NONE),
        }
    }

    fn put_strategy(&self, tenant: Option<&str>, req: &StrategyBody) -> ApiResult<StrategyInfo> {
        match tenant {
            Some(t) => self.with_body(Method::PUT, &["v1", "tenants", t, "strategy"], req),
            None => self.with_body(Method::PUT, &["v1", "strategy"], req),
        }
    }

    fn delete_strategy(&self, tenant: Option<&str>) -> ApiResult<StrategyInfo> {
        match tenant {
            Some(t) => self.delete(&["v1", "tenants", t, "strategy"], &NONE),
            None => self.delete(&["v1", "strategy"], &NONE),
        }
    }

    fn prune(&self, req: &PruneRequest) -> ApiResult<PruneResponse> {
        self.with_body(Method::POST, &["v1", "prune"], req)
    }

    fn drill(&self, tenant: &str, req: &DrillRequest) -> ApiResult<JobInfo> {
        self.with_body(Method::POST, &["v1", "tenants", tenant, "drill"], req)
    }

    fn list_keys(&self, tenant: &str, q: &RepoQuery) -> ApiResult<TenantKeys> {
        self.get(&["v1", "tenants", tenant, "keys"], q)
    }

    fn rotate_key(&self, tenant: &str, req: &RotateKey) -> ApiResult<TenantKeys> {
        self.with_body(
            Method::POST,
            &["v1", "tenants", tenant, "keys", "rotate"],
            req,
        )
    }

    fn shred_tenant(&self, tenant: &str) -> ApiResult<ShredResponse> {
        self.with_body(
            Method::POST,
            &["v1", "tenants", tenant, "shred"],
            &serde_json::json!({}),
        )
    }

    fn audit_log(&self) -> ApiResult<Vec<AuditRecord>> {
        self.get(&["v1", "audit"], &NONE)
    }

    fn whoami(&self) -> ApiResult<WhoAmI> {
        self.get(&["v1", "whoami"], &NONE)
    }

    fn list_tokens(&self) -> ApiResult<Vec<TokenInfo>> {
        self.get(&["v1", "tokens"], &NONE)
    }

    fn create_token(&self, req: &CreateToken) -> ApiResult<CreatedToken> {
        self.with_body(Method::POST, &["v1", "tokens"], req)
    }

    fn revoke_token(&self, id: u64) -> ApiResult<TokenInfo> {
        self.delete(&["v1", "tokens", &id.to_string()], &NONE)
    }

    fn protection(&self, q: &ProtectionQuery) -> ApiResult<ProtectionOverview> {
        self.get(&["v1", "protection"], q)
    }

    fn archive_start(&self, tenant: &str, req: &ArchiveStart) -> ApiResult<ArchiveInfo> {
        self.with_body(Method::POST, &["v1", "tenants", tenant, "archive"], req)
    }

    fn standby_status(&self, tenant: &str) -> ApiResult<StandbyInfo> {
        self.get(&["v1", "tenants", tenant, "standby"], &NONE)
    }

    fn standby_pause(&self, tenant: &str, paused: bool) -> ApiResult<StandbyInfo> {
        let what = if paused { "pause" } else { "resume" };
        self.with_body(
            Method::POST,
            &["v1", "tenants", tenant, "standby", what],
            &NONE,
        )
    }

    fn promote(&self, tenant: &str, req: &PromoteRequest) -> ApiResult<PromoteResponse> {
        self.with_body(Method::POST, &["v1", "tenants", tenant, "promote"], req)
    }

    fn switchover(&self, tenant: &str, req: &SwitchoverRequest) -> ApiResult<JobInfo> {
        self.with_body(Method::POST, &["v1", "tenants", tenant, "switchover"], req)
    }

    fn archive_stop(&self, tenant: &str) -> ApiResult<ArchiveInfo> {
        self.delete(&["v1", "tenants", tenant, "archive"], &NONE)
    }

    fn archive_status(&self, tenant: &str) -> ApiResult<ArchiveInfo> {
        self.get(&["v1", "tenants", tenant, "archive"], &NONE)
    }

    fn restore_points(&self, tenant: &str, q: &RepoQuery) -> ApiResult<Vec<RestorePoint>> {
        self.get(&["v1", "tenants", tenant, "restore-points"], q)
    }
}
