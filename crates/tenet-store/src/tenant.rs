//! Tenants: the global registry (system tenant 0, table 1) and tenant lifecycle.
//!
//! Registry rows are MVCC rows of the system tenant, keyed by tenant id, with value
//! `REGISTRY_FORMAT_V1 | JSON(TenantRecord)`. The store keeps an in-memory copy that is
//! changed under the commit lock in the same step that assigns the commit ts, so name
//! uniqueness and tenant states are checked against exactly what is committed.
//!
//! One system commit may carry several registry changes (applied in order, each checked
//! against what the earlier ones leave) and rows of system tables with them.
//!
//! Dropping a tenant is two commits with a range deletion between them: the record goes
//! to `dropping` (no reads, no writes) in the same commit that remembers its name
//! (system table 5), its data, log, pins and GC state are deleted, then the record is
//! removed. A crash in between is finished when the store reopens.
//! Tenant ids come from a persisted sequence and are never reused.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalog::{SYSTEM_TENANT, TENANTS_TABLE};
use crate::commit_log::Mutation;
use crate::error::{Error, Result};
use crate::keys::{self, meta, pk_bytes, KeyValue};
use crate::schema::validate_name;
use crate::store::{CommitInfo, CommitRequest, Store};
use crate::ts::Ts;

/// Default `history_retention`: one hour.
pub const DEFAULT_HISTORY_RETENTION_SECS: u64 = 3600;
const REGISTRY_FORMAT_V1: u8 = 1;

/// Lifecycle state of a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantState {
    /// Readable and writable.
    Active,
    /// Readable; writes refused.
    ReadOnly,
    /// Being built by a restore: neither readable nor writable.
    Restoring,
    /// Follows a source by replaying its log: readable, not writable by users.
    Standby,
    /// Being deleted.
    Dropping,
}

impl TenantState {
    pub fn name(self) -> &'static str {
        match self {
            TenantState::Active => "active",
            TenantState::ReadOnly => "read_only",
            TenantState::Restoring => "restoring",
            TenantState::Standby => "standby",
            TenantState::Dropping => "dropping",
        }
    }

    pub fn readable(self) -> bool {
        matches!(
            self,
            TenantState::Active | TenantState::ReadOnly | TenantState::Standby
        )
    }
}

impl fmt::Display for TenantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TenantState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(TenantState::Active),
            "read_only" => Ok(TenantState::ReadOnly),
            "restoring" => Ok(TenantState::Restoring),
            "standby" => Ok(TenantState::Standby),
            "dropping" => Ok(TenantState::Dropping),
            other => Err(Error::invalid(format!(
                "unknown tenant state `{other}`; states are active, read_only, restoring, standby, dropping"
            ))),
        }
    }
}

/// A tenant as recorded in the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub id: u64,
    pub name: String,
    pub state: TenantState,
    /// How long superseded versions stay readable, in seconds.
    pub history_retention_secs: u64,
    pub created_ts: Ts,
    /// The history (backups and archived log in a repository) this tenant continues,
    /// when it is not its own: a standby, and a standby promoted, write and read the
    /// history of the tenant they were restored from (`tenet-backup`'s `standby.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryRef>,
}

/// Names a tenant's history in a repository: the directory `tenants/<id>/` and the
/// creation ts that tells this history from another store's tenant with the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRef {
    pub id: u64,
    pub created_ts: Ts,
}

impl TenantRecord {
    /// The history this tenant writes its backups and archived log to: its own
    /// (`tenants/<its id>/`), unless it continues another tenant's.
    pub fn history_ref(&self) -> HistoryRef {
        self.history.unwrap_or(HistoryRef {
            id: self.id,
            created_ts: self.created_ts,
        })
    }

    /// Whether this is a job's hidden scratch tenant ([`TenantOptions::scratch`]).
    pub fn is_scratch(&self) -> bool {
        self.name.starts_with('.')
    }
}

/// Options for a new tenant.
#[derive(Clone, Debug, Default)]
pub struct TenantOptions {
    pub history_retention_secs: Option<u64>,
    /// Initial state; `active` unless a restore creates the tenant.
    pub state: Option<TenantState>,
    /// A job's hidden working tenant (an in-place restore's scratch copy): its name
    /// starts with `.`, which no user-given name can, and the API does not list it.
    pub scratch: bool,
    /// The history the tenant continues (a standby's: its source's).
    pub history: Option<HistoryRef>,
}

/// Changes to a tenant; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct TenantUpdate {
    pub name: Option<String>,
    pub state: Option<TenantState>,
    pub history_retention_secs: Option<u64>,
}

/// In-memory copy of the registry.
#[derive(Clone, Debug, Default)]
pub(crate) struct Registry {
    by_id: BTreeMap<u64, Arc<TenantRecord>>,
    by_name: HashMap<String, u64>,
}

impl Registry {
    pub fn get(&self, id: u64) -> Option<&Arc<TenantRecord>> {
        self.by_id.get(&id)
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<TenantRecord>> {
        self.by_name.get(name).and_then(|id| self.by_id.get(id))
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<TenantRecord>> {
        self.by_id.values()
    }

    /// Checks that `change` can be applied (names unique).
    pub fn check(&self, change: &RegistryChange) -> Result<()> {
        if let RegistryChange::Upsert(rec) = change {
            if let Some(&other) = self.by_name.get(&rec.name) {
                if other != rec.id {
                    return Err(Error::TenantExists(rec.name.clone()));
                }
            }
        }
        Ok(())
    }

    /// Applies `change`, returning the change that undoes it.
    pub fn apply(&mut self, change: &RegistryChange) -> RegistryChange {
        let (id, new) = match change {
            RegistryChange::Upsert(rec) => (rec.id, Some(Arc::new(rec.clone()))),
            RegistryChange::Remove(id) => (*id, None),
        };
        let old = match new {
            Some(rec) => self.by_id.insert(id, rec),
            None => self.by_id.remove(&id),
        };
        if let Some(old) = &old {
            self.by_name.remove(&old.name);
        }
        if let Some(rec) = self.by_id.get(&id) {
            self.by_name.insert(rec.name.clone(), id);
        }
        match old {
            Some(old) => RegistryChange::Upsert((*old).clone()),
            None => RegistryChange::Remove(id),
        }
    }
}

/// A change to the registry, committed as a write of the system tenant.
#[derive(Clone, Debug)]
pub(crate) enum RegistryChange {
    Upsert(TenantRecord),
    Remove(u64),
}

impl RegistryChange {
    /// The tenant the change is about.
    pub fn tenant_id(&self) -> u64 {
        match self {
            RegistryChange::Upsert(rec) => rec.id,
            RegistryChange::Remove(id) => *id,
        }
    }

    pub fn mutation(&self) -> Mutation {
        let (id, value) = match self {
            RegistryChange::Upsert(rec) => (rec.id, Some(encode_record(rec))),
            RegistryChange::Remove(id) => (*id, None),
        };
        Mutation {
            table_id: TENANTS_TABLE,
            pk_enc: registry_key(id),
            value,
        }
    }
}

pub(crate) fn registry_key(id: u64) -> Vec<u8> {
    pk_bytes(&[KeyValue::Int(id as i64)])
}

fn encode_record(rec: &TenantRecord) -> Vec<u8> {
    let mut out = vec![REGISTRY_FORMAT_V1];
    serde_json::to_writer(&mut out, rec).expect("tenant records serialize");
    out
}

pub(crate) fn decode_record(bytes: &[u8]) -> Result<TenantRecord> {
    match bytes.split_first() {
        Some((&REGISTRY_FORMAT_V1, json)) => {
            serde_json::from_slice(json).map_err(|e| Error::Corrupt(format!("tenant record: {e}")))
        }
        Some((v, _)) => Err(Error::Corrupt(format!("unknown tenant record version {v}"))),
        None => Err(Error::Corrupt("empty tenant record".into())),
    }
}

/// A tenant that was dropped: its id and the name it had then.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DroppedTenant {
    pub id: u64,
    pub name: String,
    /// When the tenant was created: with the id, which tenant this was.
    #[serde(default)]
    pub created_ts: Ts,
    /// The visible ts when the drop began.
    pub dropped_ts: Ts,
}

/// A tenant as a caller names it: by id inside Tenet (jobs, pins, archivers, backup
/// records), by name only at the edge (API, CLI), where names are resolved once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantRef<'a> {
    Id(u64),
    Name(&'a str),
}

impl From<u64> for TenantRef<'_> {
    fn from(id: u64) -> Self {
        TenantRef::Id(id)
    }
}

impl<'a> From<&'a str> for TenantRef<'a> {
    fn from(name: &'a str) -> Self {
        TenantRef::Name(name)
    }
}

impl<'a> From<&'a String> for TenantRef<'a> {
    fn from(name: &'a String) -> Self {
        TenantRef::Name(name)
    }
}

impl std::fmt::Display for TenantRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenantRef::Id(id) => write!(f, "#{id}"),
            TenantRef::Name(n) => f.write_str(n),
        }
    }
}

impl Store {
    /// The tenant `t` refers to.
    pub fn resolve<'a>(&self, t: impl Into<TenantRef<'a>>) -> Result<TenantRecord> {
        match t.into() {
            TenantRef::Name(name) => self.tenant(name),
            TenantRef::Id(id) => self
                .tenant_by_id(id)
                .ok_or_else(|| Error::TenantNotFound(format!("#{id}"))),
        }
    }

    /// All user tenants, by id.
    pub fn tenants(&self) -> Vec<TenantRecord> {
        self.inner
            .registry
            .read()
            .all()
            .map(|r| (**r).clone())
            .collect()
    }

    /// The tenant called `name`.
    pub fn tenant(&self, name: &str) -> Result<TenantRecord> {
        self.inner
            .registry
            .read()
            .by_name(name)
            .map(|r| (**r).clone())
            .ok_or_else(|| Error::TenantNotFound(name.to_string()))
    }

    /// The tenant with id `id`.
    pub fn tenant_by_id(&self, id: u64) -> Option<TenantRecord> {
        self.inner.registry.read().get(id).map(|r| (**r).clone())
    }

    /// Creates a tenant with a new id.
    pub fn create_tenant(
        &self,
        name: &str,
        opts: TenantOptions,
    ) -> Result<(TenantRecord, CommitInfo)> {
        match name.strip_prefix('.') {
            Some(bare) if opts.scratch => validate_name("tenant", bare)?,
            _ if opts.scratch => {
                return Err(Error::invalid("a scratch tenant's name starts with `.`"))
            }
            _ => validate_name("tenant", name)?,
        }
        if let Some(secs) = opts.history_retention_secs {
            check_retention(secs)?;
        }
        if self.inner.registry.read().by_name(name).is_some() {
            return Err(Error::TenantExists(name.to_string()));
        }
        let id = self.next_seq(meta::SEQ_TENANT, 1)?;
        let rec = TenantRecord {
            id,
            name: name.to_string(),
            state: opts.state.unwrap_or(TenantState::Active),
            history_retention_secs: opts
                .history_retention_secs
                .unwrap_or(DEFAULT_HISTORY_RETENTION_SECS),
            created_ts: Ts::ZERO,
            history: opts.history,
        };
        let info = self.commit_registry(RegistryChange::Upsert(rec), true)?;
        let rec = self.tenant_by_id(id).expect("just created");
        Ok((rec, info))
    }

    /// Renames a tenant, changes its state or its history retention.
    pub fn alter_tenant<'a>(
        &self,
        tenant: impl Into<TenantRef<'a>>,
        update: TenantUpdate,
    ) -> Result<(TenantRecord, CommitInfo)> {
        let mut rec = self.resolve(tenant)?;
        if let Some(new_name) = &update.name {
            validate_name("tenant", new_name)?;
            rec.name = new_name.clone();
        }
        if let Some(secs) = update.history_retention_secs {
            check_retention(secs)?;
            rec.history_retention_secs = secs;
        }
        if let Some(state) = update.state {
            rec.state = state;
        }
        let id = rec.id;
        let info = self.commit_registry(RegistryChange::Upsert(rec), false)?;
        Ok((self.tenant_by_id(id).expect("exists"), info))
    }

    /// Deletes a tenant with its data, log, snapshots and pins. Its id is never reused.
    /// The tenant's last name is remembered ([`Store::dropped_tenants`]).
    pub fn drop_tenant<'a>(&self, tenant: impl Into<TenantRef<'a>>) -> Result<CommitInfo> {
        let mut rec = self.resolve(tenant)?;
        // Remembered in the commit that starts the drop (a drop a crash interrupts is
        // finished at the next open); a restore's unfinished target was never a tenant
        // of its own.
        let mut mutations = Vec::new();
        if rec.state != TenantState::Restoring {
            let gone = DroppedTenant {
                id: rec.id,
                name: rec.name.clone(),
                created_ts: rec.created_ts,
                dropped_ts: self.visible_ts(),
            };
            mutations.push(Mutation {
                table_id: crate::bulk::DROPPED_TABLE,
                pk_enc: registry_key(gone.id),
                value: Some(crate::bulk::encode_system_row(&gone)),
            });
        }
        rec.state = TenantState::Dropping;
        self.commit_system(
            mutations,
            vec![(RegistryChange::Upsert(rec.clone()), false)],
        )?;
        self.finish_drop(rec.id)
    }

    /// Every tenant dropped from this store, with the name it had then.
    pub fn dropped_tenants(&self) -> Result<Vec<DroppedTenant>> {
        self.system_scan(crate::bulk::DROPPED_TABLE)?
            .into_iter()
            .map(|(_, v)| crate::bulk::decode_system_row("dropped tenant", &v))
            .collect()
    }

    pub(crate) fn finish_drop(&self, id: u64) -> Result<CommitInfo> {
        let db = &self.inner.db;
        let start = keys::tenant_prefix(id);
        let end = (id + 1).to_be_bytes();
        db.delete_range_cf(self.cf_data(), start, end)?;
        db.delete_range_cf(self.cf_log(), start, end)?;
        // The tombstones hide the rows at once; files that hold nothing else (a
        // restore's ingested files, flushed files of a busy tenant) go now, with their
        // disk space and their table readers' memory, rather than whenever a compaction
        // reaches them, which for files in the last level may be never. Files shared
        // with neighbours keep their rows until compaction drops them under the
        // tombstones. The tenant is `dropping`: nothing reads it any more.
        db.delete_file_in_range_cf(self.cf_data(), start, end)?;
        db.delete_file_in_range_cf(self.cf_log(), start, end)?;
        let pins = meta::pin_prefix(id);
        let pins_end = keys::prefix_end(&pins).expect("pin prefix is not all 0xFF");
        db.delete_range_cf(self.cf_meta(), &pins, &pins_end)?;
        db.delete_cf(self.cf_meta(), meta::gc_safe_point(id))?;
        db.delete_cf(self.cf_meta(), meta::log_cut(id))?;
        let info = self.commit_registry(RegistryChange::Remove(id), false)?;
        self.inner.runtimes.write().remove(&id);
        Ok(info)
    }

    /// Commits a registry change as a write of the system tenant.
    pub(crate) fn commit_registry(
        &self,
        change: RegistryChange,
        created: bool,
    ) -> Result<CommitInfo> {
        self.commit_system(Vec::new(), vec![(change, created)])
    }

    /// One commit of the system tenant: rows of system tables and registry changes
    /// (applied in order; each checked against what the earlier ones leave).
    pub(crate) fn commit_system(
        &self,
        mutations: Vec<Mutation>,
        registry: Vec<(RegistryChange, bool)>,
    ) -> Result<CommitInfo> {
        self.commit(CommitRequest {
            tenant_id: SYSTEM_TENANT,
            tenant_name: String::new(),
            start_ts: Ts::MAX,
            mutations,
            conflict_keys: Vec::new(),
            registry,
        })
    }
}

fn check_retention(secs: u64) -> Result<()> {
    const MAX: u64 = 10 * 365 * 24 * 3600;
    if secs > MAX {
        return Err(Error::invalid(format!(
            "history retention of {secs} s is longer than the maximum of {MAX} s (10 years)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    fn rename(rec: &TenantRecord, name: &str) -> (RegistryChange, bool) {
        let mut r = rec.clone();
        r.name = name.into();
        (RegistryChange::Upsert(r), false)
    }

    #[test]
    fn one_commit_swaps_two_names_or_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let a = store
            .create_tenant("a", TenantOptions::default())
            .unwrap()
            .0;
        let b = store
            .create_tenant("b", TenantOptions::default())
            .unwrap()
            .0;
        let before = store.visible_ts();
        // Checked in order: `a` → `tmp`, `b` → `a`, then `a` (now `tmp`) → `b`.
        let info = store
            .commit_system(
                Vec::new(),
                vec![rename(&a, "tmp"), rename(&b, "a"), rename(&a, "b")],
            )
            .unwrap();
        assert_eq!(store.tenant("a").unwrap().id, b.id);
        assert_eq!(store.tenant("b").unwrap().id, a.id);
        assert!(store.tenant("tmp").is_err());
        // One commit, one row per tenant, and it survives a reopen.
        let log = store
            .read_log(crate::catalog::SYSTEM_TENANT, before, 10)
            .unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].commit_ts, info.commit_ts);
        assert_eq!(log[0].mutations.len(), 2);
        drop(store);
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(store.tenant("a").unwrap().id, b.id);
        // A clash anywhere refuses the whole commit.
        let a = store.tenant("b").unwrap();
        let e = store
            .commit_system(Vec::new(), vec![rename(&a, "c"), rename(&a, "a")])
            .unwrap_err();
        assert!(matches!(e, Error::TenantExists(_)), "{e}");
        assert_eq!(store.tenant("b").unwrap().id, a.id);
        assert!(store.tenant("c").is_err());
    }
}
