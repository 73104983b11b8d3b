//! Encryption of repository objects: a master key, per-history data keys, sealed
//! objects, and crypto-shredding.
//!
//! # Overview
//! A [`MasterKey`] (a 256-bit key from a file or `TENET_MASTER_KEY`; the trait leaves
//! room for a KMS) wraps *data keys*: random 256-bit AES-256-GCM keys, `k1`, `k2`, … per
//! history (`tenants/<id>/` of a repository). A wrapped data key is kept twice: in the
//! repository (`tenants/<id>/keys/<key>.json`, so a fresh store holding the master key
//! can restore) and in the system tenant ([`KEYS_TABLE`], with the repositories it was
//! written to). Nothing holds a data key in clear but this process's memory.
//!
//! With a master key configured, every data file and log segment written is *sealed*
//! (format in `docs/format.md`): `TENETENC` · version · cipher · key id, then the
//! object's bytes in 1 MiB chunks, each `nonce (12, random) · AES-256-GCM ciphertext ·
//! tag (16)`, with associated data binding the object's path in the repository (which
//! names its history and its backup id or log range), the chunk's index and whether it
//! is the last. So a flipped byte, a swapped, reordered, truncated or extended object
//! all fail to open. Readers recognise sealed objects by their magic; plain ones (made
//! before a master key was configured) still read.
//!
//! # Rotation and shredding
//! [`rotate`] makes the next key the one new objects use; old keys keep reading old
//! objects. [`destroy`] (`tenet tenant drop --shred`) deletes every key object of a
//! history from its repositories, leaving a tombstone that names the date, and wipes the
//! wrapped copies in the system tenant: from then on every backup and segment of the
//! history fails with `KEY_DESTROYED`, wherever its objects were copied. (A copy of the
//! repository's key objects taken before the shred can still be opened with the master
//! key; re-wrapping data keys under a new master key is not built yet.)
//!
//! # Crash consistency
//! A new key's object is written to the repository before its record, and before any
//! object is sealed with it: a crash leaves at worst an unused key object. A shred
//! writes the tombstone before deleting the key object, so a crash in between already
//! refuses reads; rerunning it finishes the deletes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tenet_store::keys::{pk_bytes, KeyValue};
use tenet_store::{decode_system_row, encode_system_row, Store, KEYS_TABLE};

use crate::error::{Error, Result};
use crate::repo::{Repo, TENANTS_DIR};
use crate::util::{blocking, to_hex};

pub const SEALED_MAGIC: &[u8; 8] = b"TENETENC";
pub const SEALED_VERSION: u16 = 1;
/// AES-256-GCM (aws-lc-rs), 96-bit random nonces.
const CIPHER_AES_256_GCM: u8 = 1;
pub const CIPHER_NAME: &str = "aes-256-gcm";
/// Plain bytes per chunk.
pub const CHUNK: usize = 1 << 20;
const HEADER_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The environment variable holding the master key (64 hex digits).
pub const MASTER_KEY_ENV: &str = "TENET_MASTER_KEY";

/// Wraps and unwraps data keys. Implemented by [`LocalMasterKey`]; a KMS would be
/// another implementation.
pub trait MasterKey: Send + Sync + std::fmt::Debug {
    /// A short public fingerprint that says which master key wrapped a data key.
    fn id(&self) -> String;
    fn wrap(&self, key: &[u8; 32], ad: &[u8]) -> Result<Vec<u8>>;
    /// None when `wrapped` was not made by this key for `ad`.
    fn unwrap(&self, wrapped: &[u8], ad: &[u8]) -> Option<[u8; 32]>;
}

/// A 256-bit master key held by this process.
pub struct LocalMasterKey {
    id: String,
    cipher: LessSafeKey,
}

impl std::fmt::Debug for LocalMasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalMasterKey({})", self.id)
    }
}

impl LocalMasterKey {
    /// A key from 64 hex digits; `what` says where they came from, in errors.
    pub fn from_hex(text: &str, what: &str) -> Result<LocalMasterKey> {
        let text = text.trim();
        let bytes = from_hex(text).filter(|b| b.len() == 32).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{what} does not hold a master key: give 64 hex digits (256 bits), e.g. \
                 from `openssl rand -hex 32`"
            ))
        })?;
        let key: [u8; 32] = bytes.try_into().expect("32 bytes");
        Ok(LocalMasterKey {
            id: to_hex(&blake3::derive_key("tenet master key id v1", &key)[..8]),
            cipher: aes_256_gcm(&key),
        })
    }

    /// The master key of `file`, else of [`MASTER_KEY_ENV`], else none.
    pub fn load(file: Option<&Path>) -> Result<Option<LocalMasterKey>> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::InvalidArgument(format!(
                    "cannot read the master key file {}: {e}",
                    path.display()
                ))
            })?;
            return Self::from_hex(&text, &format!("master key file {}", path.display())).map(Some);
        }
        match std::env::var(MASTER_KEY_ENV) {
            Ok(v) if !v.is_empty() => Self::from_hex(&v, MASTER_KEY_ENV).map(Some),
            _ => Ok(None),
        }
    }
}

impl MasterKey for LocalMasterKey {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn wrap(&self, key: &[u8; 32], ad: &[u8]) -> Result<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut out = nonce.to_vec();
        out.extend_from_slice(key);
        let tag = self
            .cipher
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(ad),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| Error::Internal("wrapping a data key failed".into()))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8], ad: &[u8]) -> Option<[u8; 32]> {
        let (nonce, sealed) = wrapped.split_at_checked(NONCE_LEN)?;
        let mut buf = sealed.to_vec();
        let key = self
            .cipher
            .open_in_place(
                Nonce::try_assume_unique_for_key(nonce).ok()?,
                Aad::from(ad),
                &mut buf,
            )
            .ok()?;
        key.try_into().ok()
    }
}

/// An AES-256-GCM key (aws-lc-rs).
fn aes_256_gcm(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 256-bit key"))
}

static MASTERS: LazyLock<RwLock<HashMap<PathBuf, Arc<dyn MasterKey>>>> =
    LazyLock::new(Default::default);

/// Sets the master key the jobs, archivers and followers of `store` use (None:
/// encryption off, sealed objects unreadable).
pub fn set_master(store: &Store, key: Option<Arc<dyn MasterKey>>) {
    let mut map = MASTERS.write();
    match key {
        Some(k) => map.insert(store.path().to_path_buf(), k),
        None => map.remove(store.path()),
    };
    forget_keys();
}

pub fn master(store: &Store) -> Option<Arc<dyn MasterKey>> {
    MASTERS.read().get(store.path()).cloned()
}

/// A data key in memory.
#[derive(Clone)]
pub struct DataKey {
    id: String,
    cipher: Arc<LessSafeKey>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.id)
    }
}

fn chunk_ad(path: &str, index: u64, last: bool) -> Vec<u8> {
    let mut ad = Vec::with_capacity(48 + path.len());
    ad.extend_from_slice(b"tenet sealed object v1");
    ad.extend_from_slice(&(path.len() as u64).to_le_bytes());
    ad.extend_from_slice(path.as_bytes());
    ad.extend_from_slice(&index.to_le_bytes());
    ad.push(u8::from(last));
    ad
}

impl DataKey {
    fn new(id: &str, key: &[u8; 32]) -> DataKey {
        DataKey {
            id: id.to_string(),
            cipher: Arc::new(aes_256_gcm(key)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// A random key held only in memory (benchmarks measure sealing with it).
    pub fn ephemeral() -> DataKey {
        DataKey::new("k1", &rand::random())
    }

    /// Seals `plain`, to be stored at `path` (relative to the repository root).
    pub fn seal(&self, path: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let chunks = plain.len().div_ceil(CHUNK).max(1);
        let mut out = Vec::with_capacity(HEADER_LEN + self.id.len() + plain.len() + chunks * 28);
        out.extend_from_slice(SEALED_MAGIC);
        out.extend_from_slice(&SEALED_VERSION.to_le_bytes());
        out.push(CIPHER_AES_256_GCM);
        out.push(self.id.len() as u8);
        out.extend_from_slice(&(CHUNK as u32).to_le_bytes());
        out.extend_from_slice(self.id.as_bytes());
        for i in 0..chunks {
            let part = &plain[(i * CHUNK).min(plain.len())..((i + 1) * CHUNK).min(plain.len())];
            let nonce: [u8; NONCE_LEN] = rand::random();
            let ad = chunk_ad(path, i as u64, i + 1 == chunks);
            out.extend_from_slice(&nonce);
            let start = out.len();
            out.extend_from_slice(part);
            // In place: the object is copied once, not once more per chunk.
            let tag = self
                .cipher
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&ad[..]),
                    &mut out[start..],
                )
                .map_err(|_| Error::Internal("sealing an object failed".into()))?;
            out.extend_from_slice(tag.as_ref());
        }
        Ok(out)
    }

    /// Opens a sealed object read from `path`; `object` names it in errors.
    fn open(&self, path: &str, object: &str, h: &Header, sealed: &[u8]) -> Result<Vec<u8>> {
        let corrupt = |reason: String| Error::Corrupt {
            object: object.to_string(),
            reason,
        };
        let mut body = &sealed[h.body..];
        let mut out = Vec::with_capacity(body.len());
        let mut index = 0u64;
        loop {
            let whole = NONCE_LEN + h.chunk + TAG_LEN;
            let last = body.len() <= whole;
            if body.len() < NONCE_LEN + TAG_LEN {
                return Err(corrupt(format!("sealed chunk {index} is truncated")));
            }
            let (this, rest) = body.split_at(body.len().min(whole));
            let (nonce, sealed) = this.split_at(NONCE_LEN);
            let start = out.len();
            out.extend_from_slice(sealed);
            let opened = self
                .cipher
                .open_in_place(
                    Nonce::try_assume_unique_for_key(nonce).expect("12 bytes"),
                    Aad::from(&chunk_ad(path, index, last)[..]),
                    &mut out[start..],
                )
                .map(|plain| plain.len())
                .map_err(|_| {
                    corrupt(format!(
                        "sealed chunk {index} does not authenticate with key {} (a changed \
                         byte, or an object moved, swapped, cut or extended)",
                        self.id
                    ))
                })?;
            out.truncate(start + opened);
            if last {
                return Ok(out);
            }
            body = rest;
            index += 1;
        }
    }
}

/// What the header of a sealed object says.
#[derive(Debug)]
struct Header {
    key_id: String,
    chunk: usize,
    /// Where the chunks start.
    body: usize,
}

fn header(object: &str, bytes: &[u8]) -> Result<Option<Header>> {
    if bytes.len() < 8 || &bytes[..8] != SEALED_MAGIC {
        return Ok(None);
    }
    let corrupt = |reason: &str| Error::Corrupt {
        object: object.to_string(),
        reason: reason.to_string(),
    };
    if bytes.len() < HEADER_LEN {
        return Err(corrupt("sealed object header is truncated"));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != SEALED_VERSION || bytes[10] != CIPHER_AES_256_GCM {
        return Err(Error::UnsupportedVersion {
            object: object.to_string(),
            found: format!("sealed v{version}, cipher {}", bytes[10]),
            supported: format!(
                "sealed v{SEALED_VERSION}, cipher {CIPHER_AES_256_GCM} ({CIPHER_NAME})"
            ),
        });
    }
    let id_len = usize::from(bytes[11]);
    let chunk = u32::from_le_bytes(bytes[12..16].try_into().expect("4")) as usize;
    if chunk == 0 || chunk > 64 << 20 {
        return Err(corrupt("sealed object has a bad chunk size"));
    }
    let key_id = bytes
        .get(HEADER_LEN..HEADER_LEN + id_len)
        .and_then(|b| std::str::from_utf8(b).ok())
        .filter(|k| parse_key_id(k).is_some())
        .ok_or_else(|| corrupt("sealed object names no valid key"))?;
    Ok(Some(Header {
        key_id: key_id.to_string(),
        chunk,
        body: HEADER_LEN + id_len,
    }))
}

/// The key id a sealed object names (None: a plain object).
pub fn sealed_key_id(bytes: &[u8]) -> Option<String> {
    header("", bytes).ok().flatten().map(|h| h.key_id)
}

/// `k<n>` → n.
fn parse_key_id(id: &str) -> Option<u64> {
    id.strip_prefix('k')?.parse().ok().filter(|n| *n > 0)
}

/// The history a repository path is of (`tenants/<id>/…`).
fn history_of(path: &str) -> Result<u64> {
    path.strip_prefix(TENANTS_DIR)
        .and_then(|r| r.split('/').next())
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| Error::Internal(format!("`{path}` is not under a tenant's directory")))
}

pub fn keys_prefix(history_id: u64) -> String {
    format!("{TENANTS_DIR}{history_id}/keys/")
}

fn key_object_path(history_id: u64, key_id: &str) -> String {
    format!("{}{key_id}.json", keys_prefix(history_id))
}

fn tombstone_path(history_id: u64, key_id: &str) -> String {
    format!("{}{key_id}.destroyed.json", keys_prefix(history_id))
}

const KEY_FORMAT: &str = "tenet-data-key";
const TOMBSTONE_FORMAT: &str = "tenet-data-key-destroyed";
const KEY_OBJECT_VERSION: u32 = 1;

/// A wrapped data key as the repository holds it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeyObject {
    format: String,
    version: u32,
    history_id: u64,
    key_id: String,
    cipher: String,
    master_key_id: String,
    /// nonce · wrapped key · tag, hex.
    wrapped: String,
    created_at: String,
}

/// What is left of a destroyed key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tombstone {
    pub format: String,
    pub version: u32,
    pub history_id: u64,
    pub key_id: String,
    pub destroyed_at: String,
    pub by: String,
}

/// A data key as the system tenant keeps it ([`KEYS_TABLE`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub repo: String,
    pub history_id: u64,
    pub key_id: String,
    pub master_key_id: String,
    /// nonce · wrapped key · tag, hex; None once destroyed.
    pub wrapped: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub destroyed_at: Option<String>,
}

fn record_key(repo: &str, history_id: u64, key_id: &str) -> Vec<u8> {
    pk_bytes(&[
        KeyValue::Str(repo.to_string()),
        KeyValue::Int(history_id as i64),
        KeyValue::Str(key_id.to_string()),
    ])
}

fn wrap_ad(history_id: u64, key_id: &str) -> Vec<u8> {
    format!("tenet data key v1|{history_id}|{key_id}").into_bytes()
}

fn now(store: &Store) -> String {
    tenet_store::Ts::from_millis(store.clock().now_millis()).to_rfc3339()
}

/// A history of a repository as one store sees it (its master key may differ from
/// another store's in the same process): (store, repository URL, history id).
type StoreHistory = (PathBuf, String, u64);

fn store_history(store: &Store, repo: &Repo, history_id: u64) -> StoreHistory {
    (
        store.path().to_path_buf(),
        repo.url().to_string(),
        history_id,
    )
}

/// What this process knows of data keys; forgotten whenever keys or master keys change.
#[derive(Default)]
struct KnownKeys {
    /// The key new objects of a history are sealed with.
    current: HashMap<StoreHistory, DataKey>,
    /// Keys opened for reading, by key id.
    opened: HashMap<(StoreHistory, String), DataKey>,
    /// Histories found to have no live key: written in clear without asking again.
    plain: std::collections::HashSet<StoreHistory>,
}

static KNOWN: LazyLock<Mutex<KnownKeys>> = LazyLock::new(Default::default);

fn forget_keys() {
    *KNOWN.lock() = KnownKeys::default();
}

/// The newest key of `keys` that is not destroyed.
fn newest_live(keys: &KeyObjects) -> Option<u64> {
    keys.iter()
        .rev()
        .find(|(_, (o, t))| o.is_some() && t.is_none())
        .map(|(n, _)| *n)
}

/// Whether a history in `repo` has a data key that is not destroyed.
async fn has_live_keys(store: &Store, repo: &Repo, history_id: u64) -> Result<bool> {
    let k = store_history(store, repo, history_id);
    if KNOWN.lock().plain.contains(&k) {
        return Ok(false);
    }
    let live = newest_live(&list_keys(repo, history_id).await?).is_some();
    if !live {
        KNOWN.lock().plain.insert(k);
    }
    Ok(live)
}

/// Held while a key is made.
static MAKING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn no_master(what: &str) -> Error {
    Error::KeyUnavailable(format!(
        "{what} is encrypted and this process has no master key: give the server (or \
         command) the master key file with --master-key-file, or set {MASTER_KEY_ENV}"
    ))
}

/// Key number → (its object, its tombstone), as repository paths.
type KeyObjects = std::collections::BTreeMap<u64, (Option<String>, Option<String>)>;

/// Every key object and tombstone of a history in `repo`.
async fn list_keys(repo: &Repo, history_id: u64) -> Result<KeyObjects> {
    let mut out = KeyObjects::new();
    for (key, _) in repo.list(&keys_prefix(history_id)).await? {
        let name = key.rsplit('/').next().unwrap_or_default();
        if let Some(id) = name.strip_suffix(".destroyed.json") {
            if let Some(n) = parse_key_id(id) {
                out.entry(n).or_default().1 = Some(key.clone());
            }
        } else if let Some(n) = name.strip_suffix(".json").and_then(parse_key_id) {
            out.entry(n).or_default().0 = Some(key.clone());
        }
    }
    Ok(out)
}

/// The error of a destroyed key, from its tombstone.
async fn destroyed_error(repo: &Repo, key: &str, key_id: &str, history_id: u64) -> Error {
    let at = match repo.get(key).await {
        Ok(b) => serde_json::from_slice::<Tombstone>(&b)
            .map(|t| t.destroyed_at)
            .unwrap_or_else(|_| "an unknown date".into()),
        Err(_) => "an unknown date".into(),
    };
    Error::KeyDestroyed {
        history_id,
        key_id: key_id.to_string(),
        at,
    }
}

fn unwrap_object(
    master: &dyn MasterKey,
    repo: &Repo,
    path: &str,
    history_id: u64,
    key_id: &str,
    bytes: &[u8],
) -> Result<DataKey> {
    let o: KeyObject = serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        object: repo.describe(path),
        reason: format!("not a data key: {e}"),
    })?;
    if o.format != KEY_FORMAT || o.version != KEY_OBJECT_VERSION || o.cipher != CIPHER_NAME {
        return Err(Error::UnsupportedVersion {
            object: repo.describe(path),
            found: format!("{} v{} ({})", o.format, o.version, o.cipher),
            supported: format!("{KEY_FORMAT} v{KEY_OBJECT_VERSION} ({CIPHER_NAME})"),
        });
    }
    if o.master_key_id != master.id() {
        return Err(Error::KeyUnavailable(format!(
            "data key {key_id} of history #{history_id} was wrapped by master key {}; this \
             process has master key {}",
            o.master_key_id,
            master.id()
        )));
    }
    let raw = from_hex(&o.wrapped)
        .and_then(|w| master.unwrap(&w, &wrap_ad(history_id, key_id)))
        .ok_or_else(|| Error::Corrupt {
            object: repo.describe(path),
            reason: "the wrapped key does not open with the master key".into(),
        })?;
    Ok(DataKey::new(key_id, &raw))
}

/// The data key `key_id` of a history, to read objects sealed with it.
pub async fn key_for(
    store: &Store,
    repo: &Repo,
    history_id: u64,
    key_id: &str,
    what: &str,
) -> Result<DataKey> {
    let cache_key = (store_history(store, repo, history_id), key_id.to_string());
    if let Some(k) = KNOWN.lock().opened.get(&cache_key) {
        return Ok(k.clone());
    }
    let tomb = tombstone_path(history_id, key_id);
    if repo.exists(&tomb).await? {
        return Err(destroyed_error(repo, &tomb, key_id, history_id).await);
    }
    let path = key_object_path(history_id, key_id);
    let bytes = repo.get_opt(&path).await?.ok_or_else(|| {
        Error::KeyUnavailable(format!(
            "{what} is sealed with data key {key_id}, which {} does not hold",
            repo.describe(&path)
        ))
    })?;
    let master = master(store).ok_or_else(|| no_master(what))?;
    let key = unwrap_object(master.as_ref(), repo, &path, history_id, key_id, &bytes)?;
    KNOWN.lock().opened.insert(cache_key, key.clone());
    Ok(key)
}

/// The bytes of object `path` of `repo` as written: opened if sealed, as they are if
/// plain.
pub async fn open_object(store: &Store, repo: &Repo, path: &str, bytes: Bytes) -> Result<Bytes> {
    let object = repo.describe(path);
    let Some(h) = header(&object, &bytes)? else {
        return Ok(bytes);
    };
    let key = key_for(store, repo, history_of(path)?, &h.key_id, &object).await?;
    let path = path.to_string();
    blocking(move || Ok(Bytes::from(key.open(&path, &object, &h, &bytes)?))).await
}

/// `plain` as it is to be stored at `path` of `repo`: sealed with the history's current
/// data key when this process has a master key, else as it is.
pub async fn seal_object(
    store: &Store,
    repo: &Repo,
    path: &str,
    plain: Vec<u8>,
) -> Result<Vec<u8>> {
    let history = history_of(path)?;
    if master(store).is_none() {
        if has_live_keys(store, repo, history).await? {
            return Err(Error::KeyUnavailable(format!(
                "history #{history} in {} is encrypted (it has data keys) and this process \
                 has no master key: nothing is written in clear into it; give the master key \
                 with --master-key-file or {MASTER_KEY_ENV}",
                repo.url()
            )));
        }
        return Ok(plain);
    }
    let key = current(store, repo, history).await?;
    let path = path.to_string();
    blocking(move || key.seal(&path, &plain)).await
}

/// The key new objects of a history in `repo` are sealed with: the newest that is not
/// destroyed, else a new one.
pub async fn current(store: &Store, repo: &Repo, history_id: u64) -> Result<DataKey> {
    let cache_key = store_history(store, repo, history_id);
    if let Some(k) = KNOWN.lock().current.get(&cache_key) {
        return Ok(k.clone());
    }
    // One maker of keys at a time in this process (a backup and the archiver may ask
    // for a history's first key together).
    let _making = MAKING.lock().await;
    if let Some(k) = KNOWN.lock().current.get(&cache_key) {
        return Ok(k.clone());
    }
    let keys = list_keys(repo, history_id).await?;
    let key = match newest_live(&keys) {
        Some(n) => {
            key_for(
                store,
                repo,
                history_id,
                &format!("k{n}"),
                "the tenant's newest key",
            )
            .await?
        }
        None if keys.values().any(|(_, t)| t.is_some()) => {
            return Err(Error::InvalidArgument(format!(
                "the keys of history #{history_id} in {} were destroyed (the tenant was \
                 shredded); nothing more is written to it",
                repo.url()
            )))
        }
        None => make_key(store, repo, history_id, 1).await?,
    };
    KNOWN.lock().current.insert(cache_key, key.clone());
    Ok(key)
}

/// Makes data key `k<n>` of a history: repository object first, then its record.
async fn make_key(store: &Store, repo: &Repo, history_id: u64, n: u64) -> Result<DataKey> {
    let master = master(store).ok_or_else(|| no_master("a new data key"))?;
    let key_id = format!("k{n}");
    let raw: [u8; 32] = rand::random();
    let wrapped = to_hex(&master.wrap(&raw, &wrap_ad(history_id, &key_id))?);
    let created_at = now(store);
    let object = KeyObject {
        format: KEY_FORMAT.into(),
        version: KEY_OBJECT_VERSION,
        history_id,
        key_id: key_id.clone(),
        cipher: CIPHER_NAME.into(),
        master_key_id: master.id(),
        wrapped: wrapped.clone(),
        created_at: created_at.clone(),
    };
    let path = key_object_path(history_id, &key_id);
    if repo.exists(&path).await? {
        // Another store made it first (a promoted standby of the same history).
        return key_for(
            store,
            repo,
            history_id,
            &key_id,
            "a data key made elsewhere",
        )
        .await;
    }
    repo.put(
        &path,
        Bytes::from(serde_json::to_vec_pretty(&object).expect("serializes")),
    )
    .await?;
    let rec = KeyRecord {
        repo: repo.url().to_string(),
        history_id,
        key_id: key_id.clone(),
        master_key_id: master.id(),
        wrapped: Some(wrapped),
        created_at,
        destroyed_at: None,
    };
    store.system_put(
        KEYS_TABLE,
        &record_key(&rec.repo, history_id, &key_id),
        Some(&encode_system_row(&rec)),
    )?;
    KNOWN.lock().plain.clear();
    tracing::info!(history = history_id, key = %key_id, repo = %repo.url(), "made a data key");
    Ok(DataKey::new(&key_id, &raw))
}

/// Makes the next data key of a history the one new objects are sealed with; returns
/// its id.
pub async fn rotate(store: &Store, repo: &Repo, history_id: u64) -> Result<String> {
    if master(store).is_none() {
        return Err(no_master("rotating keys"));
    }
    let _making = MAKING.lock().await;
    let keys = list_keys(repo, history_id).await?;
    let next = keys.keys().next_back().map_or(1, |n| n + 1);
    let key = make_key(store, repo, history_id, next).await?;
    KNOWN
        .lock()
        .current
        .insert(store_history(store, repo, history_id), key.clone());
    Ok(key.id)
}

/// A data key as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub key_id: String,
    pub created_at: Option<String>,
    pub destroyed_at: Option<String>,
    pub current: bool,
}

/// The ids of a history's destroyed keys in `repo`, and whether every key it has is
/// destroyed (one listing; [`list`] also reads each key's dates).
pub async fn destroyed(repo: &Repo, history_id: u64) -> Result<(Vec<String>, bool)> {
    let keys = list_keys(repo, history_id).await?;
    let dead: Vec<String> = keys
        .iter()
        .filter(|(_, (_, t))| t.is_some())
        .map(|(n, _)| format!("k{n}"))
        .collect();
    let all = !dead.is_empty() && newest_live(&keys).is_none();
    Ok((dead, all))
}

/// The keys of a history in `repo`, oldest first.
pub async fn list(repo: &Repo, history_id: u64) -> Result<Vec<KeyInfo>> {
    let keys = list_keys(repo, history_id).await?;
    let current = newest_live(&keys);
    let mut out = Vec::new();
    /// The object at `path`, if there is one that decodes.
    async fn read<T: serde::de::DeserializeOwned>(
        repo: &Repo,
        path: &Option<String>,
    ) -> Result<Option<T>> {
        Ok(match path {
            Some(p) => repo
                .get_opt(p)
                .await?
                .and_then(|b| serde_json::from_slice(&b).ok()),
            None => None,
        })
    }
    for (n, (object, tomb)) in keys {
        let created_at = read::<KeyObject>(repo, &object)
            .await?
            .map(|o| o.created_at);
        let destroyed_at = read::<Tombstone>(repo, &tomb)
            .await?
            .map(|t| t.destroyed_at);
        out.push(KeyInfo {
            key_id: format!("k{n}"),
            created_at,
            destroyed_at,
            current: Some(n) == current,
        });
    }
    Ok(out)
}

/// Destroys every data key of a history: in each of `repos` a tombstone, then the key
/// object deleted; in the system tenant the wrapped copies wiped. Returns the key ids
/// destroyed (in any repository).
pub async fn destroy(
    store: &Store,
    repos: &[Repo],
    history_id: u64,
    by: &str,
) -> Result<Destroyed> {
    let at = now(store);
    let mut out = Destroyed::default();
    let mut ids = std::collections::BTreeSet::new();
    for repo in repos {
        // One repository that fails does not stop the others; it is reported, and a
        // shred run again finishes it.
        if let Err(e) = destroy_in(repo, history_id, by, &at, &mut ids).await {
            out.incomplete.push(format!("{}: {e}", repo.url()));
        }
    }
    for (k, v) in store.system_scan(KEYS_TABLE)? {
        let mut r: KeyRecord = decode_system_row("data key", &v)?;
        if r.history_id == history_id
            && r.destroyed_at.is_none()
            && repos.iter().any(|p| p.url() == r.repo)
        {
            r.wrapped = None;
            r.destroyed_at = Some(at.clone());
            ids.insert(r.key_id.clone());
            store.system_put(KEYS_TABLE, &k, Some(&encode_system_row(&r)))?;
        }
    }
    forget_keys();
    out.keys = ids.into_iter().collect();
    Ok(out)
}

/// What [`destroy`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Destroyed {
    /// Key ids destroyed (in any repository).
    pub keys: Vec<String>,
    /// Repositories where it did not finish, with why.
    pub incomplete: Vec<String>,
}

async fn destroy_in(
    repo: &Repo,
    history_id: u64,
    by: &str,
    at: &str,
    ids: &mut std::collections::BTreeSet<String>,
) -> Result<()> {
    for (n, (object, tomb)) in list_keys(repo, history_id).await? {
        let key_id = format!("k{n}");
        if tomb.is_none() {
            let t = Tombstone {
                format: TOMBSTONE_FORMAT.into(),
                version: KEY_OBJECT_VERSION,
                history_id,
                key_id: key_id.clone(),
                destroyed_at: at.to_string(),
                by: by.to_string(),
            };
            repo.put(
                &tombstone_path(history_id, &key_id),
                Bytes::from(serde_json::to_vec_pretty(&t).expect("serializes")),
            )
            .await?;
        }
        if let Some(o) = object {
            repo.delete(&o).await?;
        }
        ids.insert(key_id);
    }
    Ok(())
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::new("k1", &[7u8; 32])
    }

    #[test]
    fn sealed_objects_open_only_where_and_as_they_were_sealed() {
        let k = key();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let sealed = k.seal("tenants/1/log/a.tls", &plain).unwrap();
            let h = header("o", &sealed).unwrap().unwrap();
            assert_eq!(h.key_id, "k1");
            assert_eq!(
                k.open("tenants/1/log/a.tls", "o", &h, &sealed).unwrap(),
                plain
            );
            // Another path (a swapped object).
            assert!(k.open("tenants/1/log/b.tls", "o", &h, &sealed).is_err());
            // A flipped byte anywhere after the header.
            let mut bad = sealed.clone();
            let at = h.body + (len / 2).min(bad.len() - h.body - 1);
            bad[at] ^= 1;
            assert!(k.open("tenants/1/log/a.tls", "o", &h, &bad).is_err());
            // Cut at a chunk boundary, or extended.
            if len > CHUNK {
                let cut = &sealed[..h.body + NONCE_LEN + CHUNK + TAG_LEN];
                assert!(k.open("tenants/1/log/a.tls", "o", &h, cut).is_err());
            }
            let mut longer = sealed.clone();
            longer.extend_from_slice(&[0u8; 40]);
            assert!(k.open("tenants/1/log/a.tls", "o", &h, &longer).is_err());
        }
        // Another key.
        let sealed = k.seal("p", b"rows").unwrap();
        let h = header("o", &sealed).unwrap().unwrap();
        assert!(DataKey::new("k1", &[8u8; 32])
            .open("p", "o", &h, &sealed)
            .is_err());
    }

    #[test]
    fn master_keys_wrap_for_their_history_and_key_only() {
        let m = LocalMasterKey::from_hex(&"ab".repeat(32), "test").unwrap();
        let w = m.wrap(&[9u8; 32], &wrap_ad(3, "k1")).unwrap();
        assert_eq!(m.unwrap(&w, &wrap_ad(3, "k1")), Some([9u8; 32]));
        assert_eq!(m.unwrap(&w, &wrap_ad(4, "k1")), None);
        assert_eq!(m.unwrap(&w, &wrap_ad(3, "k2")), None);
        let other = LocalMasterKey::from_hex(&"cd".repeat(32), "test").unwrap();
        assert_ne!(m.id(), other.id());
        assert_eq!(other.unwrap(&w, &wrap_ad(3, "k1")), None);
        for bad in ["", "abc", &"zz".repeat(32), &"ab".repeat(31)] {
            assert!(LocalMasterKey::from_hex(bad, "test").is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_objects_and_bad_headers() {
        assert!(header("o", b"TENETDF\0rest").unwrap().is_none());
        let mut sealed = key().seal("p", b"x").unwrap();
        sealed[8] = 9;
        assert!(matches!(
            header("o", &sealed),
            Err(Error::UnsupportedVersion { .. })
        ));
        assert!(header("o", b"TENETENC").is_err());
    }
}
