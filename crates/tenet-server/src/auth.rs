//! Who calls: tokens, roles and the [`Caller`] every service operation acts as.
//!
//! # Tokens
//! A token is `tenet_<id>_<64 hex digits>`. Only `blake3` of the whole token is stored,
//! in system table [`TOKENS_TABLE`] (keyed by id) with its role, tenant, expiry and
//! revocation; the secret is shown once, when made. Checking one parses the id, finds the
//! record in memory (loaded when the service starts, changed only through
//! [`Tokens::create`] and [`Tokens::revoke`] of the one process that owns the store) and
//! compares hashes in constant time (`blake3::Hash`'s `==`). Tokens are never logged;
//! their ids are.
//!
//! # Roles
//! [`Role`]s are ordered: `read` < `write` < `operator` < `admin`. A token may be bound
//! to one tenant (by id, so a rename keeps it); an `admin` token never is. What each
//! operation needs is asked at its start in `service.rs` (`Service::allow`), which
//! answers another tenant's resources exactly like missing ones.
//!
//! # The first admin token
//! A server's first start (no token records at all) makes an admin token, writes it to
//! [`ADMIN_TOKEN_FILE`] in the data directory (mode 0600, never overwritten) and prints
//! it once. The CLI on the same machine reads that file when given no token.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tenet_store::keys::{pk_bytes, KeyValue};
use tenet_store::{decode_system_row, encode_system_row, Code, Store, TOKENS_TABLE};

use crate::error::{ApiError, ApiResult};

/// The file in the data directory that holds the first admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

const PREFIX: &str = "tenet_";

/// What a token may do; each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Get, scan, time travel, tables, snapshots, restore points, status.
    Read,
    /// And: rows, transactions, tables, snapshots.
    Write,
    /// And: backups, verifies, restores and reverts of its tenant, archive, strategy,
    /// drills, prune, cancel and resume of its jobs, promote, switchover.
    Operator,
    /// Every tenant, and: tenant create/drop, restores into new tenants, clones,
    /// standbys, repositories, the default strategy, tokens.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Read, Role::Write, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = ApiError;
    fn from_str(s: &str) -> ApiResult<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "unknown role `{s}`; use read, write, operator or admin"
                ))
            })
    }
}

/// Who a service call acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's id; None: this process itself (embedded CLI, the server's own jobs).
    pub token_id: Option<u64>,
    pub role: Role,
    /// The one tenant (by id) the token may see; None: every tenant.
    pub tenant_id: Option<u64>,
}

impl Caller {
    /// Whoever opened the data directory: an admin (they could read the files anyway).
    pub fn local() -> Caller {
        Caller {
            token_id: None,
            role: Role::Admin,
            tenant_id: None,
        }
    }

    /// Who this is, for audit records and logs (never the secret).
    pub fn describe(&self) -> String {
        match self.token_id {
            None => "local".into(),
            Some(id) => format!("token {id} ({})", self.role),
        }
    }
}

/// A token as stored (system table [`TOKENS_TABLE`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: u64,
    /// What it is for (free text).
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub tenant_id: Option<u64>,
    /// `blake3` of the whole token, hex.
    pub hash: String,
    pub created_ms: u64,
    /// Who made it ([`Caller::describe`]).
    pub created_by: String,
    #[serde(default)]
    pub expires_ms: Option<u64>,
    #[serde(default)]
    pub revoked_ms: Option<u64>,
}

impl TokenRecord {
    fn caller(&self) -> Caller {
        Caller {
            token_id: Some(self.id),
            role: self.role,
            tenant_id: self.tenant_id,
        }
    }
}

/// The token records, cached.
#[derive(Clone, Debug)]
pub struct Tokens {
    store: Store,
    /// By id, with the parsed hash.
    cache: Arc<RwLock<HashMap<u64, (TokenRecord, blake3::Hash)>>>,
}

fn key(id: u64) -> Vec<u8> {
    pk_bytes(&[KeyValue::Int(id as i64)])
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(Code::UNAUTHENTICATED, message)
}

/// `Authorization: Bearer <token>`, or a token given some other way: its id and hash.
fn parse(token: &str) -> Option<(u64, blake3::Hash)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = id.parse().ok()?;
    Some((id, blake3::hash(token.as_bytes())))
}

impl Tokens {
    /// Loads the records of `store`.
    pub fn load(store: &Store) -> ApiResult<Tokens> {
        let mut cache = HashMap::new();
        for (_, v) in store.system_scan(TOKENS_TABLE)? {
            let r: TokenRecord = decode_system_row("token", &v)?;
            let hash = blake3::Hash::from_hex(&r.hash).map_err(|e| {
                ApiError::new(
                    Code::CORRUPT,
                    format!("token {} has an unreadable hash: {e}", r.id),
                )
            })?;
            cache.insert(r.id, (r, hash));
        }
        Ok(Tokens {
            store: store.clone(),
            cache: Arc::new(RwLock::new(cache)),
        })
    }

    fn now_ms(&self) -> u64 {
        self.store.clock().now_millis()
    }

    /// The caller a request's `Authorization` header names.
    pub fn authenticate(&self, header: Option<&str>) -> ApiResult<Caller> {
        let Some(header) = header else {
            return Err(unauthenticated(
                "this server needs a token: send `Authorization: Bearer <token>` (the CLI \
                 takes --token or TENET_TOKEN; the first admin token is in the data \
                 directory's admin.token)",
            ));
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .unwrap_or("");
        let Some((id, hash)) = parse(token) else {
            return Err(unauthenticated(
                "malformed token: send `Authorization: Bearer tenet_<id>_<64 hex digits>`",
            ));
        };
        let cache = self.cache.read();
        // The same answer for an unknown id and a wrong secret.
        let r = match cache.get(&id) {
            Some((r, stored)) if *stored == hash => r,
            _ => return Err(unauthenticated("the token is not valid on this server")),
        };
        if let Some(at) = r.revoked_ms {
            return Err(unauthenticated(&format!(
                "the token was revoked at {}",
                rfc3339(at)
            )));
        }
        if let Some(at) = r.expires_ms.filter(|&at| at <= self.now_ms()) {
            return Err(unauthenticated(&format!(
                "the token expired at {}; ask an admin for a new one",
                rfc3339(at)
            )));
        }
        Ok(r.caller())
    }

    /// Makes a token; returns it (the only time its secret is seen) and its record.
    pub fn create(
        &self,
        name: &str,
        role: Role,
        tenant_id: Option<u64>,
        expires_ms: Option<u64>,
        by: &Caller,
    ) -> ApiResult<(String, TokenRecord)> {
        if role == Role::Admin && tenant_id.is_some() {
            return Err(ApiError::invalid(
                "an admin token acts on every tenant and cannot be bound to one; give a \
                 tenant token the role read, write or operator",
            ));
        }
        let mut cache = self.cache.write();
        let id = cache.keys().max().map_or(1, |m| m + 1);
        let secret: [u8; 32] = rand::random();
        let token = format!("{PREFIX}{id}_{}", hex(&secret));
        let hash = blake3::hash(token.as_bytes());
        let r = TokenRecord {
            id,
            name: name.to_string(),
            role,
            tenant_id,
            hash: hash.to_hex().to_string(),
            created_ms: self.now_ms(),
            created_by: by.describe(),
            expires_ms,
            revoked_ms: None,
        };
        self.store
            .system_put(TOKENS_TABLE, &key(id), Some(&encode_system_row(&r)))?;
        cache.insert(id, (r.clone(), hash));
        Ok((token, r))
    }

    /// Revokes a token (its record stays, to say when); returns it and whether it was
    /// revoked now (false: it was before).
    pub fn revoke(&self, id: u64) -> ApiResult<(TokenRecord, bool)> {
        let mut cache = self.cache.write();
        let Some((r, hash)) = cache.get(&id).cloned() else {
            return Err(ApiError::new(
                Code::TOKEN_NOT_FOUND,
                format!("token {id} not found; `tenet token list` shows them"),
            ));
        };
        if r.revoked_ms.is_some() {
            return Ok((r, false));
        }
        let r = TokenRecord {
            revoked_ms: Some(self.now_ms()),
            ..r
        };
        self.store
            .system_put(TOKENS_TABLE, &key(id), Some(&encode_system_row(&r)))?;
        cache.insert(id, (r.clone(), hash));
        Ok((r, true))
    }

    /// Every token record, by id.
    pub fn list(&self) -> Vec<TokenRecord> {
        let mut v: Vec<TokenRecord> = self.cache.read().values().map(|(r, _)| r.clone()).collect();
        v.sort_by_key(|r| r.id);
        v
    }

    /// One token's record (revoked and expired ones too).
    pub fn get(&self, id: u64) -> Option<TokenRecord> {
        self.cache.read().get(&id).map(|(r, _)| r.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.cache.read().is_empty()
    }

    /// At a server's first start (no token at all): makes an admin token and writes it
    /// to [`ADMIN_TOKEN_FILE`] in `data_dir` (0600). Returns the file and the token.
    pub fn first_admin(&self, data_dir: &Path) -> ApiResult<Option<(std::path::PathBuf, String)>> {
        if !self.is_empty() {
            return Ok(None);
        }
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        let (token, r) = self.create(
            "first admin token",
            Role::Admin,
            None,
            None,
            &Caller::local(),
        )?;
        let written = write_secret_file(&path, &format!("{token}\n"));
        if let Err(e) = written {
            // Without the file nobody could use it: take it back.
            let _ = self.revoke(r.id);
            return Err(ApiError::internal(format!(
                "cannot write the admin token to {}: {e}",
                path.display()
            )));
        }
        Ok(Some((path, token)))
    }
}

/// Writes a new file only its owner can read (never replaces one).
fn write_secret_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// The token in a file (the first admin token), trimmed.
pub fn read_token_file(path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn rfc3339(ms: u64) -> String {
    tenet_store::Ts::from_millis(ms).to_rfc3339()
}

/// What the caller may do, asked at the start of every service operation.
impl crate::service::Service {
    /// This service acting for `caller` (a cheap clone).
    pub fn acting_as(&self, caller: Caller) -> crate::service::Service {
        let mut s = self.clone();
        s.caller = caller;
        s
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Refuses what the caller may not do. Another tenant than a tenant token's own
    /// answers exactly like a tenant that does not exist — before the role is looked
    /// at, so that no answer tells whether it exists. Then a role below `need` is
    /// `FORBIDDEN`.
    pub(crate) fn allow(&self, need: Role, tenant: Option<&str>) -> ApiResult<()> {
        if let (Some(own), Some(name)) = (self.caller.tenant_id, tenant) {
            if self.live_tenant(name).ok() != Some(own) {
                return Err(tenet_store::Error::TenantNotFound(name.to_string()).into());
            }
        }
        self.need(need)
    }

    /// Refuses a role below `need`.
    fn need(&self, need: Role) -> ApiResult<()> {
        if self.caller.role >= need {
            return Ok(());
        }
        Err(ApiError::new(
            Code::FORBIDDEN,
            format!(
                "this token's role is {}; this operation needs {need}{}",
                self.caller.role,
                match need {
                    Role::Admin => " (a token of no tenant)",
                    _ => " or above",
                }
            ),
        ))
    }

    /// [`Self::allow`] for a job: another tenant's job answers like a missing one.
    pub(crate) fn allow_job(&self, need: Role, id: u64) -> ApiResult<()> {
        if let Some(own) = self.caller.tenant_id {
            let r = self.jobs().get(id)?;
            if !self.sees_job(&r) {
                return Err(tenet_jobs::Error::NotFound(id).into());
            }
            // Seeing a restore or clone of its tenant is not acting on the new tenant it
            // builds (cancelling it drops that tenant).
            if need > Role::Read && r.owner.target_id.is_some_and(|t| t != own) {
                return self.need(Role::Admin);
            }
        }
        self.need(need)
    }

    /// [`Self::allow`] for a backup: a tenant token sees the backups this store
    /// recorded of its tenant's history; any other answers like a missing one.
    pub(crate) fn allow_backup(&self, need: Role, id: &str) -> ApiResult<()> {
        if self.caller.tenant_id.is_some() {
            let mine = self
                .backups
                .list(None)?
                .into_iter()
                .any(|r| r.id == id && self.sees_history(r.tenant_id, r.tenant_created_ts));
            if !mine {
                return Err(tenet_backup::Error::BackupNotFound(id.to_string()).into());
            }
        }
        self.need(need)
    }

    /// Whether lists show the caller tenant `id`.
    pub(crate) fn sees_tenant(&self, id: u64) -> bool {
        self.caller.tenant_id.is_none_or(|own| own == id)
    }

    /// Whether lists show the caller a job (one about, or writing, its tenant).
    pub(crate) fn sees_job(&self, r: &tenet_jobs::JobRecord) -> bool {
        self.caller.tenant_id.is_none_or(|own| {
            r.owner.tenant_id == Some(own)
                || r.owner.target_id == Some(own)
                // A job that names only the history it reads (a verify).
                || (r.owner.tenant_id.is_none()
                    && r.owner
                        .history_id
                        .is_some_and(|h| self.sees_history(h, None)))
        })
    }

    /// Whether lists show the caller something of a repository history (its tenant's:
    /// a promoted standby continues its source's).
    pub(crate) fn sees_history(&self, history_id: u64, created: Option<tenet_store::Ts>) -> bool {
        let Some(own) = self.caller.tenant_id else {
            return true;
        };
        self.store.tenant_by_id(own).is_some_and(|t| {
            let h = t.history_ref();
            h.id == history_id && created.is_none_or(|c| c == h.created_ts)
        })
    }

    /// Refuses a repository named by path or URL to a caller below admin: it would
    /// read and write wherever the server can. Named repositories are for everyone.
    pub(crate) fn allow_repo_path(&self, repo: &str) -> ApiResult<()> {
        if self.caller.role == Role::Admin || tenet_backup::strategy::is_repo_name(repo) {
            return Ok(());
        }
        Err(ApiError::new(
            Code::FORBIDDEN,
            format!(
                "`{repo}` is not a named repository; this token names repositories by name \
                 (an admin adds them with `tenet repo add`), paths and URLs need an admin token"
            ),
        ))
    }
}

/// Seconds a token may live: a second to 10 years.
pub const EXPIRES_IN_SECS: (u64, u64) = (1, 10 * 365 * 24 * 3600);

impl crate::service::Service {
    /// A tenant's name now, or `#<id>` once it is dropped (tokens outlive tenants).
    pub(crate) fn tenant_label(&self, id: u64) -> String {
        self.store
            .tenant_by_id(id)
            .map_or(format!("#{id}"), |t| t.name)
    }

    pub(crate) fn token_info(&self, r: &TokenRecord) -> crate::api::TokenInfo {
        let now = self.store.clock().now_millis();
        let state = match (r.revoked_ms, r.expires_ms) {
            (Some(_), _) => "revoked",
            (None, Some(at)) if at <= now => "expired",
            _ => "active",
        };
        crate::api::TokenInfo {
            id: r.id,
            name: r.name.clone(),
            role: r.role.to_string(),
            tenant: r.tenant_id.map(|id| self.tenant_label(id)),
            tenant_id: r.tenant_id,
            state: state.into(),
            created_at: rfc3339(r.created_ms),
            created_by: r.created_by.clone(),
            expires_at: r.expires_ms.map(rfc3339),
            revoked_at: r.revoked_ms.map(rfc3339),
        }
    }

    pub(crate) fn create_token_impl(
        &self,
        req: &crate::api::CreateToken,
    ) -> ApiResult<crate::api::CreatedToken> {
        let role: Role = req.role.parse()?;
        let tenant_id = req
            .tenant
            .as_deref()
            .map(|t| self.live_tenant(t))
            .transpose()?;
        let expires_ms = match req.expires_in_secs {
            None => None,
            Some(s) if (EXPIRES_IN_SECS.0..=EXPIRES_IN_SECS.1).contains(&s) => {
                Some(self.store.clock().now_millis() + s * 1000)
            }
            Some(s) => {
                return Err(ApiError::invalid(format!(
                    "expires_in_secs {s} is out of range; use {} to {} (a second to 10 years), \
                     or none for a token that does not expire",
                    EXPIRES_IN_SECS.0, EXPIRES_IN_SECS.1
                )))
            }
        };
        let name = req.name.clone().unwrap_or_default();
        if name.len() > 200 || name.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "a token's name is at most 200 characters, without control characters",
            ));
        }
        let (token, r) = self
            .tokens
            .create(&name, role, tenant_id, expires_ms, &self.caller)?;
        tracing::info!(token = r.id, role = %r.role, tenant = ?r.tenant_id,
            by = %self.caller.describe(), "token created");
        self.audit(
            "token_create",
            None,
            serde_json::json!({ "token_id": r.id, "role": r.role, "tenant_id": r.tenant_id }),
        )?;
        Ok(crate::api::CreatedToken {
            token,
            info: self.token_info(&r),
        })
    }

    /// The service's tokens (the HTTP layer authenticates with them).
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }
}

impl crate::service::Service {
    /// Appends to the audit log (system table [`tenet_store::AUDIT_TABLE`]).
    pub(crate) fn audit(
        &self,
        action: &str,
        tenant: Option<(&str, u64)>,
        detail: serde_json::Value,
    ) -> ApiResult<()> {
        let ms = self.store.clock().now_millis();
        let r = crate::api::AuditRecord {
            at: rfc3339(ms),
            by: self.caller.describe(),
            action: action.to_string(),
            tenant: tenant.map(|t| t.0.to_string()),
            tenant_id: tenant.map(|t| t.1),
            detail,
        };
        let key = pk_bytes(&[
            KeyValue::Int(ms as i64),
            KeyValue::Int(i64::from(rand::random::<u32>())),
        ]);
        self.store
            .system_put(tenet_store::AUDIT_TABLE, &key, Some(&encode_system_row(&r)))?;
        Ok(())
    }

    /// The audit log, oldest first.
    pub(crate) fn audit_log_impl(&self) -> ApiResult<Vec<crate::api::AuditRecord>> {
        self.store
            .system_scan(tenet_store::AUDIT_TABLE)?
            .into_iter()
            .map(|(_, v)| Ok(decode_system_row("audit record", &v)?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_only_in_their_one_shape() {
        let good = format!("tenet_12_{}", "ab".repeat(32));
        assert_eq!(parse(&good).map(|p| p.0), Some(12));
        for bad in [
            "",
            "tenet_",
            "tenet_12",
            "tenet_x_abc",
            &format!("tenet_12_{}", "ab".repeat(31)),
            &format!("tenet_12_{}", "zz".repeat(32)),
            &format!("other_12_{}", "ab".repeat(32)),
            &format!("tenet_-1_{}", "ab".repeat(32)),
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Read < Role::Write && Role::Write < Role::Operator);
        assert!(Role::Operator < Role::Admin);
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
