//! A repository: where backups live, over the `object_store` crate.
//!
//! URLs: a plain path or `file:///abs/path` (a local directory, created on first use),
//! or `s3://bucket[/prefix]` (S3-compatible storage; endpoint, region and credentials
//! from the usual `AWS_*` environment variables: `AWS_ENDPOINT_URL`/`AWS_ENDPOINT`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`) of the
//! process that opens the repository (the server, when one runs). Without credentials
//! in the environment an S3 repository is refused with what is missing; the EC2
//! instance metadata service is used only with `TENET_S3_INSTANCE_METADATA=1`.
//! S3 requests use path-style addressing unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST` is
//! set.
//!
//! Layout under the repository root (see `docs/format.md`):
//!
//! ```text
//! tenet-repo.json                                      repository marker
//! tenants/<tenant_id>/backups/<backup_id>/manifest.json commit point, written last
//! tenants/<tenant_id>/backups/<backup_id>/data/<table_id>-<shard>[-<part>].tdf
//! tenants/<tenant_id>/backups/<backup_id>/log/<start>-<end>.tls   incremental backups
//! tenants/<tenant_id>/log/<start:020>-<end:020>.tls         archived log segments
//! ```
//!
//! Keys are spelled only by the functions at the end of this file; what a repository
//! holds of a tenant is read through [`crate::inventory::Inventory`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use tenet_store::Ts;

use crate::error::{Error, Result};
use crate::format::{decode_repo_marker, RepoMarker, REPO_FORMAT, REPO_VERSION};

/// The default repository: `./tenet-backups`.
pub const DEFAULT_REPO: &str = "./tenet-backups";
const MARKER: &str = "tenet-repo.json";

/// An open repository.
#[derive(Clone)]
pub struct Repo {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Option<ObjPath>,
    /// The directory of a `file://` repository.
    local_root: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo").field("url", &self.url).finish()
    }
}

/// Turns a user's repository argument into a canonical URL: paths become absolute
/// `file://` URLs (so a server resolves them the same way as the CLI that sent them).
pub fn canonical_url(arg: &str) -> Result<String> {
    let invalid = |reason: &str| Error::InvalidRepo {
        url: arg.to_string(),
        reason: reason.to_string(),
    };
    if arg.is_empty() {
        return Err(invalid(
            "empty; give a directory, file:///path or s3://bucket/prefix",
        ));
    }
    if let Some(c) = arg.chars().find(|c| c.is_control()) {
        return Err(Error::InvalidRepo {
            url: arg.escape_debug().to_string(),
            reason: format!(
                "contains the control character {:?}; a repository path or URL cannot hold \
                 control characters (NUL, newline, tab, …)",
                c
            ),
        });
    }
    if let Some((scheme, rest)) = arg.split_once("://") {
        return match scheme {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(invalid("a file:// URL needs an absolute path (file:///dir)"));
                }
                Ok(format!("file://{}", rest.trim_end_matches('/')))
            }
            "s3" => {
                let bucket = rest.split('/').next().unwrap_or("");
                if bucket.is_empty() {
                    return Err(invalid("an s3:// URL needs a bucket (s3://bucket/prefix)"));
                }
                Ok(format!("s3://{}", rest.trim_end_matches('/')))
            }
            other => Err(invalid(&format!(
                "unknown scheme `{other}`; supported are file:// and s3:// (or a plain directory path)"
            ))),
        };
    }
    let path = std::path::Path::new(arg);
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| invalid(&format!("cannot resolve relative path: {e}")))?
            .join(path)
    };
    let s = abs.to_string_lossy();
    let s = s.trim_end_matches('/');
    Ok(format!("file://{}", s.replace("/./", "/")))
}

impl Repo {
    /// Opens the repository at `url` (see [`canonical_url`]) to read or write what it
    /// holds. Never creates anything: a local directory that does not exist is an
    /// error (a mistyped path, or an unmounted disk). Does not touch the network yet.
    pub fn open(url: &str) -> Result<Repo> {
        Self::open_with(url, false)
    }

    /// Opens the repository at `url` for a writer that may be the first to use it
    /// (`repo init`, a first backup, an archive): a missing local directory is created
    /// if its parent exists — never a whole new path (an unmounted backup disk must not
    /// fill the root disk). The caller learns whether it is new from [`Repo::check`].
    pub fn create(url: &str) -> Result<Repo> {
        Self::open_with(url, true)
    }

    fn open_with(url: &str, create: bool) -> Result<Repo> {
        let url = canonical_url(url)?;
        let unavailable = |reason: String| Error::RepoUnavailable {
            url: url.clone(),
            reason,
        };
        if let Some(dir) = url.strip_prefix("file://") {
            let path = std::path::Path::new(dir);
            if !path.is_dir() {
                let parent = path.parent().filter(|p| p.is_dir());
                match (create, parent) {
                    (true, Some(_)) => std::fs::create_dir(dir)
                        .map_err(|e| unavailable(format!("cannot create directory {dir}: {e}")))?,
                    (true, None) => {
                        return Err(unavailable(format!(
                            "neither {dir} nor its parent directory exists (a mistyped path, \
                             or a backup disk that is not mounted?); create the parent \
                             directory first"
                        )))
                    }
                    (false, _) => {
                        return Err(Error::RepoNotFound(format!(
                            "no repository at {url}: the directory {dir} does not exist; \
                             check the path, or make it a repository by taking a backup into \
                             it: `tenet backup full <tenant> --repo {url}`"
                        )))
                    }
                }
            }
            // fsync: a shard counts as done, and a manifest as the commit point, only
            // once their bytes are on disk.
            let fs = LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| unavailable(e.to_string()))?
                .with_automatic_cleanup(true)
                .with_fsync(true);
            return Ok(Repo {
                url: url.clone(),
                store: Arc::new(fs),
                prefix: None,
                local_root: Some(std::path::PathBuf::from(dir)),
            });
        }
        let rest = url
            .strip_prefix("s3://")
            .expect("canonical URLs are file or s3");
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b, Some(ObjPath::from(p))),
            None => (rest, None),
        };
        let settings = settings_of(&url);
        if settings.as_ref().is_none_or(|s| s.access_key_env.is_none()) {
            check_s3_credentials(&url)?;
        }
        let virtual_hosted = std::env::var("AWS_VIRTUAL_HOSTED_STYLE_REQUEST")
            .is_ok_and(|v| v == "true" || v == "1");
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_virtual_hosted_style_request(virtual_hosted)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(120)),
            );
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            builder = builder.with_endpoint(endpoint);
        }
        let plain_http = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|e| e.starts_with("http://")));
        if plain_http {
            builder = builder.with_allow_http(true);
        }
        if let Some(st) = settings {
            builder = st.apply(builder, &url)?;
        }
        let s3 = builder.build().map_err(|e| Error::InvalidRepo {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        Ok(Repo {
            url: url.clone(),
            store: Arc::new(s3),
            prefix,
            local_root: None,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> ObjPath {
        match &self.prefix {
            Some(p) => ObjPath::from(format!("{p}/{key}")),
            None => ObjPath::from(key),
        }
    }

    /// A failed read: a missing object is damage to the repository.
    fn err(&self, key: &str, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. } => Error::Corrupt {
                object: self.describe(key),
                reason: "missing".into(),
            },
            other => self.unavailable(key, other),
        }
    }

    /// A failed write or listing (e.g. a missing bucket): the repository is unusable.
    fn unavailable(&self, key: &str, e: object_store::Error) -> Error {
        Error::RepoUnavailable {
            url: self.url.clone(),
            reason: format!("{} failed: {e}", self.describe(key)),
        }
    }

    /// `url/key`, for messages.
    pub fn describe(&self, key: &str) -> String {
        format!("{}/{key}", self.url)
    }

    /// Checks the repository marker, writing it if the repository is new. Returns the
    /// marker and whether this call created the repository.
    pub async fn check(&self, now: &str) -> Result<(RepoMarker, bool)> {
        match self.get_opt(MARKER).await? {
            Some(bytes) => Ok((decode_repo_marker(&self.describe(MARKER), &bytes)?, false)),
            None => {
                let marker = RepoMarker {
                    format: REPO_FORMAT.into(),
                    version: REPO_VERSION,
                    repo_id: blake3::hash(format!("{}{now}", self.url).as_bytes()).to_hex()[..16]
                        .to_string(),
                    created_at: now.to_string(),
                };
                let bytes = serde_json::to_vec_pretty(&marker).expect("markers serialize");
                self.put(MARKER, Bytes::from(bytes)).await?;
                tracing::info!(repo = %self.url, "created a new repository");
                Ok((marker, true))
            }
        }
    }

    /// The repository marker of an existing repository; a location without one is not
    /// a repository (`REPOSITORY_NOT_FOUND`: readers never create one).
    pub async fn marker(&self) -> Result<RepoMarker> {
        match self.get_opt(MARKER).await? {
            Some(bytes) => decode_repo_marker(&self.describe(MARKER), &bytes),
            None => Err(Error::RepoNotFound(format!(
                "{} is not a Tenet repository (it has no {MARKER}); check the path, or \
                 take a first full backup into it",
                self.url
            ))),
        }
    }

    /// Whether an object exists.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.store.head(&self.path(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err(key, e)),
        }
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.store
            .put(&self.path(key), PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| self.unavailable(key, e))?;
        Ok(())
    }

    /// The object's bytes; a missing object is an error naming it.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let r = self
            .store
            .get(&self.path(key))
            .await
            .map_err(|e| self.err(key, e))?;
        r.bytes().await.map_err(|e| self.err(key, e))
    }

    /// The object's bytes, or `None` if it does not exist.
    pub async fn get_opt(&self, key: &str) -> Result<Option<Bytes>> {
        match self.store.get(&self.path(key)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| self.err(key, e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// Keys (relative to the repository root) under `prefix`, with sizes.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        self.list_after(prefix, None).await
    }

    /// Keys under `prefix` that sort after `offset` (a key), with sizes: S3 lists
    /// only those (`start-after`), so the cost is bounded by what is new.
    pub async fn list_after(
        &self,
        prefix: &str,
        offset: Option<&str>,
    ) -> Result<Vec<(String, u64)>> {
        let p = self.path(prefix);
        let strip = self.prefix.as_ref().map(|p| format!("{p}/"));
        let stream = match offset {
            Some(o) => self.store.list_with_offset(Some(&p), &self.path(o)),
            None => self.store.list(Some(&p)),
        };
        let metas: Vec<_> = stream
            .try_collect()
            .await
            .map_err(|e| self.unavailable(prefix, e))?;
        Ok(metas
            .into_iter()
            .map(|m| {
                let full = m.location.to_string();
                let key = match &strip {
                    Some(s) => full.strip_prefix(s.as_str()).unwrap_or(&full).to_string(),
                    None => full,
                };
                (key, m.size)
            })
            .collect())
    }

    /// The names of the "directories" directly under `prefix` (which ends with `/`).
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let p = self.path(prefix);
        let listing = self
            .store
            .list_with_delimiter(Some(&p))
            .await
            .map_err(|e| self.unavailable(prefix, e))?;
        let mut out: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|d| d.filename().map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// In a `file://` repository, removes the directory `dir` with whatever is left in
    /// it (partial uploads that listings do not show). No-op for other repositories.
    pub fn remove_local_dir(&self, dir: &str) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        match std::fs::remove_dir_all(root.join(dir)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::RepoUnavailable {
                url: self.url.clone(),
                reason: format!("cannot remove {}: {e}", self.describe(dir)),
            }),
        }
    }

    /// Deletes every object under `prefix`.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let keys = self.list(prefix).await?;
        for (k, _) in &keys {
            self.delete(k).await?;
        }
        Ok(keys.len() as u64)
    }
}

/// How to reach an S3 repository when the process environment alone does not say: a
/// named repository's endpoint, region, and the *names* of the environment variables
/// that hold its keys (never the keys). Registered by the server for the repository's
/// URL, so every job, archiver and follower that opens that URL uses them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct S3Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_env: Option<String>,
}

impl S3Settings {
    /// The value of environment variable `var`, named as the `what` of repository `url`.
    fn var(var: &str, what: &str, url: &str) -> Result<String> {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::InvalidRepo {
                url: url.to_string(),
                reason: format!(
                    "the environment variable {var} ({what}) is not set in the server's \
                     environment; set it for `tenet serve` or change the repository with \
                     `tenet repo add`"
                ),
            })
    }

    /// Checks that the variables it names are set (at `repo add`).
    pub fn check(&self, url: &str) -> Result<()> {
        match (&self.access_key_env, &self.secret_key_env) {
            (Some(a), Some(s)) => {
                Self::var(a, "access key id", url)?;
                Self::var(s, "secret access key", url)?;
                Ok(())
            }
            (None, None) => Ok(()),
            _ => Err(Error::InvalidArgument(
                "give both --access-key-env and --secret-key-env, or neither".into(),
            )),
        }
    }

    fn apply(&self, mut b: AmazonS3Builder, url: &str) -> Result<AmazonS3Builder> {
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        if let Some(r) = &self.region {
            b = b.with_region(r);
        }
        if let (Some(a), Some(s)) = (&self.access_key_env, &self.secret_key_env) {
            b = b
                .with_access_key_id(Self::var(a, "access key id", url)?)
                .with_secret_access_key(Self::var(s, "secret access key", url)?);
        }
        Ok(b)
    }
}

static SETTINGS: std::sync::LazyLock<
    parking_lot::RwLock<std::collections::HashMap<String, S3Settings>>,
> = std::sync::LazyLock::new(Default::default);

/// Registers (or with None, forgets) the settings of the repository at `url`.
pub fn register_settings(url: &str, settings: Option<S3Settings>) {
    let mut map = SETTINGS.write();
    match settings {
        Some(s) => map.insert(url.to_string(), s),
        None => map.remove(url),
    };
}

fn settings_of(url: &str) -> Option<S3Settings> {
    SETTINGS.read().get(url).cloned()
}

/// Environment variables that give S3 credentials other than a static key pair.
const S3_CREDENTIAL_SOURCES: [&str; 3] = [
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];
/// Opt-in to the EC2 instance metadata service for credentials.
const S3_USE_INSTANCE_METADATA: &str = "TENET_S3_INSTANCE_METADATA";

/// Refuses an S3 repository when this process has no credentials for it, naming what
/// is missing — instead of a request to the instance metadata service whose failure
/// says nothing useful (and that goes to 169.254.169.254 off an EC2 machine).
fn check_s3_credentials(url: &str) -> Result<()> {
    let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
    let key_pair = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];
    if key_pair.iter().all(|v| set(v))
        || S3_CREDENTIAL_SOURCES.iter().any(|v| set(v))
        || std::env::var("AWS_SKIP_SIGNATURE").is_ok_and(|v| v == "1" || v == "true")
        || std::env::var(S3_USE_INSTANCE_METADATA).is_ok_and(|v| v == "1" || v == "true")
    {
        return Ok(());
    }
    let missing: Vec<&str> = key_pair.iter().copied().filter(|v| !set(v)).collect();
    Err(Error::InvalidRepo {
        url: url.to_string(),
        reason: format!(
            "no S3 credentials in the environment of the process that opens the \
             repository: {} not set. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
             AWS_ENDPOINT_URL, AWS_REGION for S3-compatible storage), or \
             {S3_USE_INSTANCE_METADATA}=1 on EC2. With a server running it is the server \
             that opens repositories: set them for `tenet serve`, not for the CLI",
            missing.join(" and ")
        ),
    })
}

// Repository layout: the one place keys are spelled (docs/format.md).

/// Where every tenant's directory is.
pub const TENANTS_DIR: &str = "tenants/";

/// The directory of a tenant's backups (ends with `/`).
pub fn backups_prefix(tenant_id: u64) -> String {
    format!("{TENANTS_DIR}{tenant_id}/backups/")
}

/// The directory of a tenant's archived log segments (ends with `/`).
pub fn log_prefix(tenant_id: u64) -> String {
    format!("{TENANTS_DIR}{tenant_id}/log/")
}

/// The archived segment `(start, end]` of a tenant.
pub fn segment_key(tenant_id: u64, start: Ts, end: Ts) -> String {
    format!("{}{:020}-{:020}.tls", log_prefix(tenant_id), start.0, end.0)
}

/// Parses a segment file name `<start:020>-<end:020>.tls` into `(start, end)`.
pub fn parse_segment_name(name: &str) -> Option<(Ts, Ts)> {
    let (a, b) = name.strip_suffix(".tls")?.split_once('-')?;
    Some((Ts(a.parse().ok()?), Ts(b.parse().ok()?)))
}

/// The directory where standbys following a history record what they still need.
pub fn reader_prefix(tenant_id: u64) -> String {
    format!("{TENANTS_DIR}{tenant_id}/readers/")
}

/// The reader record of standby `tenant_id` of store `store_id` following history
/// `history_id`.
pub fn reader_key(history_id: u64, store_id: &str, tenant_id: u64) -> String {
    format!("{}{store_id}-{tenant_id}.json", reader_prefix(history_id))
}

/// Repository keys of a backup.
pub fn backup_dir(tenant_id: u64, backup_id: &str) -> String {
    format!("{}{backup_id}", backups_prefix(tenant_id))
}

pub fn manifest_key(tenant_id: u64, backup_id: &str) -> String {
    format!("{}/manifest.json", backup_dir(tenant_id, backup_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(canonical_url("/tmp/x/").unwrap(), "file:///tmp/x");
        assert_eq!(canonical_url("file:///tmp/x").unwrap(), "file:///tmp/x");
        assert_eq!(canonical_url("s3://b/p/").unwrap(), "s3://b/p");
        let e = canonical_url("ftp://host/x").unwrap_err().to_string();
        assert!(
            e.contains("unknown scheme `ftp`") && e.contains("s3://"),
            "{e}"
        );
        assert!(canonical_url("s3://").is_err());
        assert!(canonical_url("file://rel").is_err());
        assert!(canonical_url("rel/dir").unwrap().ends_with("/rel/dir"));
    }
}
