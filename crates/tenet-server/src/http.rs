//! The REST API: axum routes under `/v1`, `/healthz`, and the OpenAPI document at
//! `/v1/openapi.json`, generated from the handlers below (utoipa).
//!
//! Handlers are thin: they extract the request, run the [`Service`] operation on a
//! blocking thread (the store does synchronous I/O), and return its result. Every
//! failure — including malformed JSON, wrong content type, oversized bodies and unknown
//! routes — is an [`ErrorBody`] with a stable code.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, MethodRouter};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::admin::Admin;
use crate::api::*;
use crate::error::{ApiError, ApiResult};
use crate::service::{Service, MAX_TXN_BYTES, MAX_TXN_OPS};
use tenet_store::Code;

/// Largest request body accepted: a transaction of the largest size the service takes
/// ([`MAX_TXN_BYTES`] of operations, [`MAX_TXN_OPS`] commas between them) plus 1 MiB for
/// the rest of the body, so that the limit of a transaction is the same embedded and
/// through a server.
pub const MAX_BODY_BYTES: usize = MAX_TXN_BYTES as usize + MAX_TXN_OPS + (1 << 20);

/// JSON body whose rejections are API errors. Only a JSON object is accepted: serde
/// would also read a struct from an array (`["acme", 3600]`), which no client means.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|rej| body_rejection(rej.status(), rej.body_text()))?;
        // Content type and syntax first (axum's checks), then the shape.
        let req = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
        let Json(v) = Json::<T>::from_request(req, state)
            .await
            .map_err(|rej| body_rejection(rej.status(), rej.body_text()))?;
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Ok(ApiJson(v)),
            _ => Err(ApiError::new(
                Code::MALFORMED_JSON,
                "request body must be a JSON object ({\"field\": value, …}); arrays and other \
                 values are not accepted",
            )),
        }
    }
}

fn body_rejection(status: StatusCode, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            Code::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than the limit of {MAX_BODY_BYTES} bytes; one \
                 transaction holds at most {MAX_TXN_OPS} operations and {MAX_TXN_BYTES} bytes \
                 of operations in compact JSON"
            ),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            Code::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with `Content-Type: application/json`",
        ),
        _ => ApiError::new(
            Code::MALFORMED_JSON,
            format!("request body is not valid: {text}"),
        ),
    }
}

/// Query string whose rejections are API errors.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::invalid(format!("bad query string: {}", e.body_text()))
            })
    }
}

/// Path parameters whose rejections are API errors.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| ApiError::invalid(format!("bad path: {}", e.body_text())))
    }
}

/// The service acting for the request's caller: the `Authorization: Bearer` token,
/// checked (see `auth.rs`). Every handler but `/healthz` and the OpenAPI document takes
/// it first, so a request without a valid token gets `UNAUTHENTICATED` before anything
/// about its path or body is said.
pub struct Authed(pub Service);

impl FromRequestParts<Service> for Authed {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, svc: &Service) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        let caller = svc.tokens().authenticate(header)?;
        Ok(Authed(svc.acting_as(caller)))
    }
}

/// Runs a service call on the blocking pool.
async fn run<T: Send + 'static>(
    svc: Service,
    f: impl FnOnce(&Service) -> ApiResult<T> + Send + 'static,
) -> ApiResult<Json<T>> {
    tokio::task::spawn_blocking(move || f(&svc))
        .await
        .map_err(|e| ApiError::new(Code::INTERNAL, e.to_string()))?
        .map(Json)
}

type R<T> = ApiResult<Json<T>>;
type Created<T> = ApiResult<(StatusCode, Json<T>)>;

async fn created<T: Send + 'static>(
    svc: Service,
    f: impl FnOnce(&Service) -> ApiResult<T> + Send + 'static,
) -> Created<T> {
    run(svc, f).await.map(|j| (StatusCode::CREATED, j))
}

#[utoipa::path(get, path = "/healthz", security(()), responses((status = 200, body = Health)))]
async fn healthz(State(s): State<Service>, headers: axum::http::HeaderMap) -> R<Health> {
    // Open to all (probes), but where the data lives is for callers with a token.
    let known = headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""))
        .is_some_and(|h| s.tokens().authenticate(Some(h)).is_ok());
    let mut h = run(s, |s| s.health()).await?;
    if !known {
        h.0.data_dir = String::new();
    }
    Ok(h)
}

#[utoipa::path(get, path = "/v1/tenants", tag = "tenants",
    responses((status = 200, body = Vec<TenantInfo>)))]
async fn list_tenants(Authed(s): Authed) -> R<Vec<TenantInfo>> {
    run(s, |s| s.list_tenants()).await
}

#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = TenantResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_tenant(
    Authed(s): Authed,
    ApiJson(req): ApiJson<CreateTenant>,
) -> Created<TenantResponse> {
    created(s, move |s| s.create_tenant(&req)).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}", tag = "tenants", params(("tenant" = String, Path, description = "Tenant name")),
    responses((status = 200, body = TenantInfo), (status = 404, body = ErrorBody)))]
async fn get_tenant(Authed(s): Authed, ApiPath(t): ApiPath<String>) -> R<TenantInfo> {
    run(s, move |s| s.get_tenant(&t)).await
}

#[utoipa::path(patch, path = "/v1/tenants/{tenant}", tag = "tenants", params(("tenant" = String, Path, description = "Tenant name")), request_body = AlterTenant,
    responses((status = 200, body = TenantResponse), (status = 404, body = ErrorBody)))]
async fn alter_tenant(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiJson(req): ApiJson<AlterTenant>,
) -> R<TenantResponse> {
    run(s, move |s| s.alter_tenant(&t, &req)).await
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}", tag = "tenants", params(("tenant" = String, Path, description = "Tenant name")),
    responses((status = 200, body = Commit), (status = 404, body = ErrorBody)))]
async fn drop_tenant(Authed(s): Authed, ApiPath(t): ApiPath<String>) -> R<Commit> {
    run(s, move |s| s.drop_tenant(&t)).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/tables", tag = "tables", params(("tenant" = String, Path, description = "Tenant name"), AsOfQuery),
    responses((status = 200, body = Vec<TableInfo>)))]
async fn list_tables(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiQuery(q): ApiQuery<AsOfQuery>,
) -> R<Vec<TableInfo>> {
    run(s, move |s| s.list_tables(&t, &q)).await
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/tables", tag = "tables", params(("tenant" = String, Path, description = "Tenant name")), request_body = CreateTable,
    responses((status = 201, body = TableResponse), (status = 409, body = ErrorBody)))]
async fn create_table(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiJson(req): ApiJson<CreateTable>,
) -> Created<TableResponse> {
    created(s, move |s| s.create_table(&t, &req)).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/tables/{table}", tag = "tables", params(("tenant" = String, Path, description = "Tenant name"), ("table" = String, Path, description = "Table name"), AsOfQuery),
    responses((status = 200, body = TableInfo), (status = 404, body = ErrorBody)))]
async fn get_table(
    Authed(s): Authed,
    ApiPath((t, tb)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<AsOfQuery>,
) -> R<TableInfo> {
    run(s, move |s| s.get_table(&t, &tb, &q)).await
}

#[utoipa::path(patch, path = "/v1/tenants/{tenant}/tables/{table}", tag = "tables", params(("tenant" = String, Path, description = "Tenant name"), ("table" = String, Path, description = "Table name")), request_body = AlterTable,
    responses((status = 200, body = TableResponse)))]
async fn alter_table(
    Authed(s): Authed,
    ApiPath((t, tb)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<AlterTable>,
) -> R<TableResponse> {
    run(s, move |s| s.alter_table(&t, &tb, &req)).await
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}/tables/{table}", tag = "tables", params(("tenant" = String, Path, description = "Tenant name"), ("table" = String, Path, description = "Table name")),
    responses((status = 200, body = Commit)))]
async fn drop_table(Authed(s): Authed, ApiPath((t, tb)): ApiPath<(String, String)>) -> R<Commit> {
    run(s, move |s| s.drop_table(&t, &tb)).await
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/tables/{table}/rows", tag = "rows", params(("tenant" = String, Path, description = "Tenant name"), ("table" = String, Path, description = "Table name")), request_body = PutRows,
    responses((status = 200, body = WriteResponse), (status = 400, body = ErrorBody)))]
async fn put_rows(
    Authed(s): Authed,
    ApiPath((t, tb)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<PutRows>,
) -> R<WriteResponse> {
    run(s, move |s| s.put_rows(&t, &tb, req.rows)).await
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/tables/{table}/rows/delete", tag = "rows", params(("tenant" = String, Path, description = "Tenant name"), ("table" = String, Path, description = "Table name")), request_body = DeleteRows,
    responses((status = 200, body = WriteResponse)))]
async fn delete_rows(
    Authed(s): Authed,
    ApiPath((t, tb)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<DeleteRows>,
) -> R<WriteResponse> {
    run(s, move |s| s.delete_rows(&t, &tb, req.keys)).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/tables/{table}/row", tag = "rows", params(("tenant" = String, Path, description = "Tenant name"), ("table" = String, Path, description = "Table name"), GetQuery),
    responses((status = 200, body = RowResponse), (status = 410, body = ErrorBody)))]
async fn get_row(
    Authed(s): Authed,
    ApiPath((t, tb)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<GetQuery>,
) -> R<RowResponse> {
    run(s, move |s| s.get_row(&t, &tb, &q)).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/tables/{table}/rows", tag = "rows", params(("tenant" = String, Path, description = "Tenant name"), ("table" = String, Path, description = "Table name"), ScanQuery),
    responses((status = 200, body = ScanResponse)))]
async fn scan(
    Authed(s): Authed,
    ApiPath((t, tb)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ScanQuery>,
) -> R<ScanResponse> {
    run(s, move |s| s.scan(&t, &tb, &q)).await
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/txn", tag = "rows", params(("tenant" = String, Path, description = "Tenant name")), request_body = TxnRequest,
    responses((status = 200, body = WriteResponse), (status = 409, body = ErrorBody)))]
async fn txn(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiJson(req): ApiJson<TxnRequest>,
) -> R<WriteResponse> {
    run(s, move |s| s.txn(&t, req)).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/snapshots", tag = "snapshots", params(("tenant" = String, Path, description = "Tenant name")),
    responses((status = 200, body = Vec<SnapshotInfo>)))]
async fn list_snapshots(Authed(s): Authed, ApiPath(t): ApiPath<String>) -> R<Vec<SnapshotInfo>> {
    run(s, move |s| s.list_snapshots(&t)).await
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/snapshots", tag = "snapshots", params(("tenant" = String, Path, description = "Tenant name")), request_body = CreateSnapshot,
    responses((status = 201, body = SnapshotResponse), (status = 409, body = ErrorBody)))]
async fn create_snapshot(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiJson(req): ApiJson<CreateSnapshot>,
) -> Created<SnapshotResponse> {
    created(s, move |s| s.create_snapshot(&t, &req)).await
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}/snapshots/{snapshot}", tag = "snapshots", params(("tenant" = String, Path, description = "Tenant name"), ("snapshot" = String, Path, description = "Snapshot name")),
    responses((status = 200, body = Commit), (status = 404, body = ErrorBody)))]
async fn drop_snapshot(
    Authed(s): Authed,
    ApiPath((t, name)): ApiPath<(String, String)>,
) -> R<Commit> {
    run(s, move |s| s.drop_snapshot(&t, &name)).await
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/snapshots/{snapshot}/rollback", tag = "snapshots", params(("tenant" = String, Path, description = "Tenant name"), ("snapshot" = String, Path, description = "Snapshot name")),
    responses((status = 200, body = RevertResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn rollback_snapshot(
    Authed(s): Authed,
    ApiPath((t, name)): ApiPath<(String, String)>,
) -> R<RevertResponse> {
    run(s, move |s| s.rollback_snapshot(&t, &name)).await
}

/// Starts a clone job: a new tenant equal to this one at a time, from its local
/// history by bulk ingestion (or restored from the repository when older).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/clone", tag = "tenants", params(("tenant" = String, Path, description = "Tenant name")), request_body = CloneRequest,
    responses((status = 202, body = JobInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn clone_tenant(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiJson(req): ApiJson<CloneRequest>,
) -> Accepted<JobInfo> {
    accepted(s, move |s| s.clone_tenant(&t, &req)).await
}

/// Puts a tenant (or a table, or a key range) back as it was at an earlier time, in one
/// new commit that is logged, archived and itself revertible.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/revert", tag = "tenants", params(("tenant" = String, Path, description = "Tenant name")), request_body = RevertRequest,
    responses((status = 200, body = RevertResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
async fn revert(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiJson(req): ApiJson<RevertRequest>,
) -> R<RevertResponse> {
    run(s, move |s| s.revert(&t, &req)).await
}

/// Accepted: the job was created and runs in the background.
type Accepted<T> = ApiResult<(StatusCode, Json<T>)>;

async fn accepted<T: Send + 'static>(
    svc: Service,
    f: impl FnOnce(&Service) -> ApiResult<T> + Send + 'static,
) -> Accepted<T> {
    run(svc, f).await.map(|j| (StatusCode::ACCEPTED, j))
}

#[utoipa::path(post, path = "/v1/backups", tag = "backups", request_body = CreateBackup,
    responses((status = 202, body = JobInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn create_backup(
    Authed(s): Authed,
    ApiJson(req): ApiJson<CreateBackup>,
) -> Accepted<JobInfo> {
    accepted(s, move |s| s.create_backup(&req)).await
}

#[utoipa::path(get, path = "/v1/backups", tag = "backups", params(ListBackupsQuery),
    responses((status = 200, body = Vec<BackupInfo>)))]
async fn list_backups(
    Authed(s): Authed,
    ApiQuery(q): ApiQuery<ListBackupsQuery>,
) -> R<Vec<BackupInfo>> {
    run(s, move |s| s.list_backups(&q)).await
}

#[utoipa::path(get, path = "/v1/backups/{id}", tag = "backups", params(("id" = String, Path, description = "Backup id"), RepoQuery),
    responses((status = 200, body = BackupDetail), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_backup(
    Authed(s): Authed,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RepoQuery>,
) -> R<BackupDetail> {
    run(s, move |s| s.get_backup(&id, &q)).await
}

#[utoipa::path(delete, path = "/v1/backups/{id}", tag = "backups",
    params(("id" = String, Path, description = "Backup id"), DeleteBackupQuery),
    responses((status = 200, body = BackupInfo), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_backup(
    Authed(s): Authed,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeleteBackupQuery>,
) -> R<BackupInfo> {
    run(s, move |s| s.delete_backup(&id, &q)).await
}

#[utoipa::path(post, path = "/v1/backups/{id}/verify", tag = "backups", params(("id" = String, Path, description = "Backup id")), request_body = VerifyBackup,
    responses((status = 202, body = JobInfo), (status = 404, body = ErrorBody)))]
async fn verify_backup(
    Authed(s): Authed,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<VerifyBackup>,
) -> Accepted<JobInfo> {
    accepted(s, move |s| s.verify_backup(&id, &req)).await
}

#[utoipa::path(post, path = "/v1/restores", tag = "restores", request_body = CreateRestore,
    responses((status = 202, body = JobInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_restore(
    Authed(s): Authed,
    ApiJson(req): ApiJson<CreateRestore>,
) -> Accepted<JobInfo> {
    accepted(s, move |s| s.create_restore(&req)).await
}

#[utoipa::path(get, path = "/v1/restores/{id}", tag = "restores", params(("id" = u64, Path, description = "Job id")),
    responses((status = 200, body = JobInfo), (status = 404, body = ErrorBody)))]
async fn get_restore(Authed(s): Authed, ApiPath(id): ApiPath<u64>) -> R<JobInfo> {
    run(s, move |s| s.get_job(id)).await
}

#[utoipa::path(post, path = "/v1/restores/{id}/cancel", tag = "restores", params(("id" = u64, Path, description = "Job id")),
    responses((status = 200, body = JobInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel_restore(Authed(s): Authed, ApiPath(id): ApiPath<u64>) -> R<JobInfo> {
    run(s, move |s| s.cancel_job(id)).await
}

#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", responses((status = 200, body = Vec<JobInfo>)))]
async fn list_jobs(Authed(s): Authed) -> R<Vec<JobInfo>> {
    run(s, |s| s.list_jobs()).await
}

#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", params(("id" = u64, Path, description = "Job id")),
    responses((status = 200, body = JobInfo), (status = 404, body = ErrorBody)))]
async fn get_job(Authed(s): Authed, ApiPath(id): ApiPath<u64>) -> R<JobInfo> {
    run(s, move |s| s.get_job(id)).await
}

#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = u64, Path, description = "Job id")),
    responses((status = 200, body = JobInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel_job(Authed(s): Authed, ApiPath(id): ApiPath<u64>) -> R<JobInfo> {
    run(s, move |s| s.cancel_job(id)).await
}

#[utoipa::path(post, path = "/v1/jobs/{id}/resume", tag = "jobs", params(("id" = u64, Path, description = "Job id")),
    responses((status = 200, body = JobInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resume_job(Authed(s): Authed, ApiPath(id): ApiPath<u64>) -> R<JobInfo> {
    run(s, move |s| s.resume_job(id)).await
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/archive", tag = "archive", params(("tenant" = String, Path, description = "Tenant name")), request_body = ArchiveStart,
    responses((status = 200, body = ArchiveInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn archive_start(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiJson(req): ApiJson<ArchiveStart>,
) -> R<ArchiveInfo> {
    run(s, move |s| s.archive_start(&t, &req)).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/archive", tag = "archive", params(("tenant" = String, Path, description = "Tenant name")),
    responses((status = 200, body = ArchiveInfo), (status = 400, body = ErrorBody)))]
async fn archive_status(Authed(s): Authed, ApiPath(t): ApiPath<String>) -> R<ArchiveInfo> {
    run(s, move |s| s.archive_status(&t)).await
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}/archive", tag = "archive", params(("tenant" = String, Path, description = "Tenant name")),
    responses((status = 200, body = ArchiveInfo), (status = 400, body = ErrorBody)))]
async fn archive_stop(Authed(s): Authed, ApiPath(t): ApiPath<String>) -> R<ArchiveInfo> {
    run(s, move |s| s.archive_stop(&t)).await
}

/// Where a standby stands: applied up to, the source's archive, lag, problems.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/standby", tag = "standby", params(("tenant" = String, Path, description = "Tenant name")),
    responses((status = 200, body = StandbyInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn standby_status(Authed(s): Authed, ApiPath(t): ApiPath<String>) -> R<StandbyInfo> {
    run(s, move |s| s.standby_status(&t)).await
}

/// Pauses a standby's following (it applies nothing until resumed), so that it can be
/// promoted at a time it has not passed yet.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/standby/pause", tag = "standby", params(("tenant" = String, Path, description = "Tenant name")),
    responses((status = 200, body = StandbyInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn standby_pause(Authed(s): Authed, ApiPath(t): ApiPath<String>) -> R<StandbyInfo> {
    run(s, move |s| s.standby_pause(&t, true)).await
}

/// Resumes a paused standby's following.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/standby/resume", tag = "standby", params(("tenant" = String, Path, description = "Tenant name")),
    responses((status = 200, body = StandbyInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn standby_resume(Authed(s): Authed, ApiPath(t): ApiPath<String>) -> R<StandbyInfo> {
    run(s, move |s| s.standby_pause(&t, false)).await
}

/// Promotes a standby: applies its source's log up to `until` (or everything
/// archived), makes it writable and starts its archive.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/promote", tag = "standby", params(("tenant" = String, Path, description = "Tenant name")), request_body = PromoteRequest,
    responses((status = 200, body = PromoteResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn promote(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiJson(req): ApiJson<PromoteRequest>,
) -> R<PromoteResponse> {
    run(s, move |s| s.promote(&t, &req)).await
}

/// Switches a tenant over to its standby (here or on another server), as a job: its
/// writes are refused with `TENANT_MOVING` until the standby is promoted and has taken
/// its name; it stays behind as a standby of the new primary.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/switchover", tag = "standby", params(("tenant" = String, Path, description = "Tenant name")), request_body = SwitchoverRequest,
    responses((status = 202, body = JobInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn switchover(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiJson(req): ApiJson<SwitchoverRequest>,
) -> Accepted<JobInfo> {
    accepted(s, move |s| s.switchover(&t, &req)).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/restore-points", tag = "restores", params(("tenant" = String, Path, description = "Tenant name"), RepoQuery),
    responses((status = 200, body = Vec<RestorePoint>), (status = 404, body = ErrorBody)))]
async fn restore_points(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiQuery(q): ApiQuery<RepoQuery>,
) -> R<Vec<RestorePoint>> {
    run(s, move |s| s.restore_points(&t, &q)).await
}

/// Named repositories held by the server.
#[utoipa::path(get, path = "/v1/repos", tag = "repositories",
    responses((status = 200, body = Vec<RepoInfo>)))]
async fn list_repos(Authed(s): Authed) -> R<Vec<RepoInfo>> {
    run(s, move |s| s.list_repos()).await
}

/// Names a repository (checked reachable and writable with its settings).
#[utoipa::path(post, path = "/v1/repos", tag = "repositories", request_body = AddRepo,
    responses((status = 200, body = RepoInfo), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn add_repo(Authed(s): Authed, ApiJson(req): ApiJson<AddRepo>) -> R<RepoInfo> {
    run(s, move |s| s.add_repo(&req)).await
}

#[utoipa::path(get, path = "/v1/repos/{name}", tag = "repositories", params(("name" = String, Path, description = "Repository name")),
    responses((status = 200, body = RepoInfo), (status = 404, body = ErrorBody)))]
async fn get_repo(Authed(s): Authed, ApiPath(n): ApiPath<String>) -> R<RepoInfo> {
    run(s, move |s| s.get_repo(&n)).await
}

/// Forgets a repository's name (its contents stay); refused while a strategy uses it.
#[utoipa::path(delete, path = "/v1/repos/{name}", tag = "repositories", params(("name" = String, Path, description = "Repository name")),
    responses((status = 200, body = RepoInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_repo(Authed(s): Authed, ApiPath(n): ApiPath<String>) -> R<RepoInfo> {
    run(s, move |s| s.remove_repo(&n)).await
}

/// The strategy that applies to a tenant: its own, else the default.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/strategy", tag = "strategies", params(("tenant" = String, Path, description = "Tenant name")),
    responses((status = 200, body = StrategyInfo), (status = 404, body = ErrorBody)))]
async fn get_strategy(Authed(s): Authed, ApiPath(t): ApiPath<String>) -> R<StrategyInfo> {
    run(s, move |s| s.get_strategy(Some(&t))).await
}

#[utoipa::path(put, path = "/v1/tenants/{tenant}/strategy", tag = "strategies", params(("tenant" = String, Path, description = "Tenant name")), request_body = StrategyBody,
    responses((status = 200, body = StrategyInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn put_strategy(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiJson(req): ApiJson<StrategyBody>,
) -> R<StrategyInfo> {
    run(s, move |s| s.put_strategy(Some(&t), &req)).await
}

/// Removes a tenant's own strategy (the default applies again, if there is one).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/strategy", tag = "strategies", params(("tenant" = String, Path, description = "Tenant name")),
    responses((status = 200, body = StrategyInfo), (status = 404, body = ErrorBody)))]
async fn delete_strategy(Authed(s): Authed, ApiPath(t): ApiPath<String>) -> R<StrategyInfo> {
    run(s, move |s| s.delete_strategy(Some(&t))).await
}

/// The default strategy: every tenant without its own, including future ones.
#[utoipa::path(get, path = "/v1/strategy", tag = "strategies",
    responses((status = 200, body = StrategyInfo), (status = 404, body = ErrorBody)))]
async fn get_default_strategy(Authed(s): Authed) -> R<StrategyInfo> {
    run(s, move |s| s.get_strategy(None)).await
}

#[utoipa::path(put, path = "/v1/strategy", tag = "strategies", request_body = StrategyBody,
    responses((status = 200, body = StrategyInfo), (status = 400, body = ErrorBody)))]
async fn put_default_strategy(
    Authed(s): Authed,
    ApiJson(req): ApiJson<StrategyBody>,
) -> R<StrategyInfo> {
    run(s, move |s| s.put_strategy(None, &req)).await
}

#[utoipa::path(delete, path = "/v1/strategy", tag = "strategies",
    responses((status = 200, body = StrategyInfo), (status = 404, body = ErrorBody)))]
async fn delete_default_strategy(Authed(s): Authed) -> R<StrategyInfo> {
    run(s, move |s| s.delete_strategy(None)).await
}

/// Deletes the backups and archived log no kept restore point needs (one prune job
/// per tenant), or with `dry_run` lists each object and why.
#[utoipa::path(post, path = "/v1/prune", tag = "backups", request_body = PruneRequest,
    responses((status = 200, body = PruneResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn prune(Authed(s): Authed, ApiJson(req): ApiJson<PruneRequest>) -> R<PruneResponse> {
    run(s, move |s| s.prune(&req)).await
}

/// Every tenant's protection, worst first: strategy, last backups, restorable window,
/// RPO, archive, scheduled runs, repository usage, problems.
#[utoipa::path(get, path = "/v1/protection", tag = "protection", params(ProtectionQuery),
    responses((status = 200, body = ProtectionOverview)))]
async fn protection(
    Authed(s): Authed,
    ApiQuery(q): ApiQuery<ProtectionQuery>,
) -> R<ProtectionOverview> {
    run(s, move |s| s.protection(&q)).await
}

/// Starts a restore drill: a point of the tenant's window restored into a scratch
/// tenant, compared with the source (time travel) or the manifest digests, dropped.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/drill", tag = "protection", params(("tenant" = String, Path, description = "Tenant name")), request_body = DrillRequest,
    responses((status = 202, body = JobInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn drill(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiJson(req): ApiJson<DrillRequest>,
) -> Accepted<JobInfo> {
    accepted(s, move |s| s.drill(&t, &req)).await
}

/// A tenant's data keys: which exist, which is current, which were destroyed.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/keys", tag = "keys", params(("tenant" = String, Path, description = "Tenant name"), RepoQuery),
    responses((status = 200, body = TenantKeys), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_keys(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiQuery(q): ApiQuery<RepoQuery>,
) -> R<TenantKeys> {
    run(s, move |s| s.list_keys(&t, &q)).await
}

/// Makes a new data key the one the tenant's new backups and archived log are sealed
/// with (older ones keep reading what they sealed).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/keys/rotate", tag = "keys", params(("tenant" = String, Path, description = "Tenant name")), request_body = RotateKey,
    responses((status = 200, body = TenantKeys), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rotate_key(
    Authed(s): Authed,
    ApiPath(t): ApiPath<String>,
    ApiJson(req): ApiJson<RotateKey>,
) -> R<TenantKeys> {
    run(s, move |s| s.rotate_key(&t, &req)).await
}

/// Drops a tenant, then destroys its data keys in every repository it used: its
/// backups and archived log can never be read again (crypto-shredding).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/shred", tag = "keys", params(("tenant" = String, Path, description = "Tenant name")),
    responses((status = 200, body = ShredResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn shred_tenant(Authed(s): Authed, ApiPath(t): ApiPath<String>) -> R<ShredResponse> {
    run(s, move |s| s.shred_tenant(&t)).await
}

/// The audit log: shreds, key rotations, tokens made and revoked (admin only).
#[utoipa::path(get, path = "/v1/audit", tag = "keys",
    responses((status = 200, body = Vec<AuditRecord>), (status = 403, body = ErrorBody)))]
async fn audit_log(Authed(s): Authed) -> R<Vec<AuditRecord>> {
    run(s, move |s| s.audit_log()).await
}

/// Who the caller is: its role, the tenant it is bound to, and its token.
#[utoipa::path(get, path = "/v1/whoami", tag = "tokens",
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
async fn whoami(Authed(s): Authed) -> R<WhoAmI> {
    run(s, move |s| s.whoami()).await
}

/// API tokens (admin only; never their secrets).
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_tokens(Authed(s): Authed) -> R<Vec<TokenInfo>> {
    run(s, move |s| s.list_tokens()).await
}

/// Makes a token; the answer holds its secret, this once.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_token(
    Authed(s): Authed,
    ApiJson(req): ApiJson<CreateToken>,
) -> Created<CreatedToken> {
    created(s, move |s| s.create_token(&req)).await
}

/// Revokes a token at once (its record stays, with the time).
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = u64, Path, description = "Token id")),
    responses((status = 200, body = TokenInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_token(Authed(s): Authed, ApiPath(id): ApiPath<u64>) -> R<TokenInfo> {
    run(s, move |s| s.revoke_token(id)).await
}

/// The bearer token scheme, required by every operation but `/healthz` and the
/// document itself.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        doc.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tenet management and data API",
        description = "Multi-tenant transactional table store with tenant-level data protection."
    ),
    paths(
        healthz,
        openapi,
        list_tenants,
        create_tenant,
        get_tenant,
        alter_tenant,
        drop_tenant,
        list_tables,
        create_table,
        get_table,
        alter_table,
        drop_table,
        put_rows,
        delete_rows,
        get_row,
        scan,
        txn,
        list_snapshots,
        create_snapshot,
        drop_snapshot,
        rollback_snapshot,
        revert,
        clone_tenant,
        create_backup,
        list_backups,
        get_backup,
        delete_backup,
        verify_backup,
        create_restore,
        get_restore,
        cancel_restore,
        list_jobs,
        get_job,
        cancel_job,
        resume_job,
        archive_start,
        archive_status,
        archive_stop,
        restore_points,
        standby_status,
        standby_pause,
        standby_resume,
        promote,
        switchover,
        list_repos,
        add_repo,
        get_repo,
        remove_repo,
        get_strategy,
        put_strategy,
        delete_strategy,
        get_default_strategy,
        put_default_strategy,
        delete_default_strategy,
        prune,
        protection,
        drill,
        whoami,
        list_tokens,
        create_token,
        revoke_token,
        list_keys,
        rotate_key,
        shred_tenant,
        audit_log,
    ),
    components(schemas(ErrorBody, Commit, TxnOp)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn not_found() -> ApiError {
    ApiError::new(
        Code::NOT_FOUND,
        "no such endpoint; the API is described at /v1/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        Code::METHOD_NOT_ALLOWED,
        "this endpoint does not take that method; see /v1/openapi.json",
    )
}

/// The server's figures in the Prometheus text format (not part of `/v1`).
async fn metrics(
    Authed(s): Authed,
) -> ApiResult<([(axum::http::header::HeaderName, &'static str); 1], String)> {
    let text = tokio::task::spawn_blocking(move || s.metrics_text())
        .await
        .map_err(|e| ApiError::new(Code::INTERNAL, e.to_string()))??;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

/// Every route of the API, as (path, handlers). The router is built from this table,
/// and a test checks that every path and method it answers is in the OpenAPI document.
fn routes() -> Vec<(&'static str, MethodRouter<Service>)> {
    vec![
        ("/healthz", get(healthz)),
        ("/v1/openapi.json", get(openapi)),
        ("/v1/tenants", get(list_tenants).post(create_tenant)),
        (
            "/v1/tenants/{tenant}",
            get(get_tenant).patch(alter_tenant).delete(drop_tenant),
        ),
        (
            "/v1/tenants/{tenant}/tables",
            get(list_tables).post(create_table),
        ),
        (
            "/v1/tenants/{tenant}/tables/{table}",
            get(get_table).patch(alter_table).delete(drop_table),
        ),
        (
            "/v1/tenants/{tenant}/tables/{table}/rows",
            get(scan).post(put_rows),
        ),
        (
            "/v1/tenants/{tenant}/tables/{table}/rows/delete",
            post(delete_rows),
        ),
        ("/v1/tenants/{tenant}/tables/{table}/row", get(get_row)),
        ("/v1/tenants/{tenant}/txn", post(txn)),
        (
            "/v1/tenants/{tenant}/snapshots",
            get(list_snapshots).post(create_snapshot),
        ),
        (
            "/v1/tenants/{tenant}/snapshots/{snapshot}",
            delete(drop_snapshot),
        ),
        (
            "/v1/tenants/{tenant}/snapshots/{snapshot}/rollback",
            post(rollback_snapshot),
        ),
        ("/v1/tenants/{tenant}/revert", post(revert)),
        ("/v1/tenants/{tenant}/clone", post(clone_tenant)),
        (
            "/v1/tenants/{tenant}/archive",
            get(archive_status).post(archive_start).delete(archive_stop),
        ),
        ("/v1/tenants/{tenant}/restore-points", get(restore_points)),
        ("/v1/tenants/{tenant}/standby", get(standby_status)),
        ("/v1/tenants/{tenant}/standby/pause", post(standby_pause)),
        ("/v1/tenants/{tenant}/standby/resume", post(standby_resume)),
        ("/v1/tenants/{tenant}/promote", post(promote)),
        ("/v1/tenants/{tenant}/switchover", post(switchover)),
        ("/v1/backups", get(list_backups).post(create_backup)),
        ("/v1/backups/{id}", get(get_backup).delete(delete_backup)),
        ("/v1/backups/{id}/verify", post(verify_backup)),
        ("/v1/restores", post(create_restore)),
        ("/v1/restores/{id}", get(get_restore)),
        ("/v1/restores/{id}/cancel", post(cancel_restore)),
        ("/v1/jobs", get(list_jobs)),
        ("/v1/jobs/{id}", get(get_job)),
        ("/v1/jobs/{id}/cancel", post(cancel_job)),
        ("/v1/jobs/{id}/resume", post(resume_job)),
        ("/v1/repos", get(list_repos).post(add_repo)),
        ("/v1/repos/{name}", get(get_repo).delete(remove_repo)),
        (
            "/v1/tenants/{tenant}/strategy",
            get(get_strategy).put(put_strategy).delete(delete_strategy),
        ),
        (
            "/v1/strategy",
            get(get_default_strategy)
                .put(put_default_strategy)
                .delete(delete_default_strategy),
        ),
        ("/v1/prune", post(prune)),
        ("/v1/protection", get(protection)),
        ("/v1/tenants/{tenant}/drill", post(drill)),
        ("/v1/tokens", get(list_tokens).post(create_token)),
        ("/v1/tenants/{tenant}/keys", get(list_keys)),
        ("/v1/tenants/{tenant}/keys/rotate", post(rotate_key)),
        ("/v1/tenants/{tenant}/shred", post(shred_tenant)),
        ("/v1/audit", get(audit_log)),
        ("/v1/tokens/{id}", delete(revoke_token)),
        ("/v1/whoami", get(whoami)),
    ]
}

/// The paths of [`routes`] (for the test that compares them with the OpenAPI document).
pub fn route_paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _)| path).collect()
}

/// Where Prometheus scrapes the server.
pub const METRICS_PATH: &str = "/metrics";

/// Where Swagger UI is served (over `/v1/openapi.json`).
pub const DOCS_PATH: &str = "/docs";

/// The whole API, Swagger UI at [`DOCS_PATH`], and the dashboard at `/`.
pub fn router(svc: Service) -> Router {
    let api = routes()
        .into_iter()
        .fold(Router::new(), |r, (path, handlers)| r.route(path, handlers));
    let docs = SwaggerUi::new(DOCS_PATH).config(SwaggerConfig::from("/v1/openapi.json"));
    api.route(METRICS_PATH, get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            svc.clone(),
            crate::metrics::track,
        ))
        .merge(docs)
        .merge(crate::dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(svc)
}
