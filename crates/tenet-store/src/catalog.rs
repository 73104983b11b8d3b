//! The catalog of a tenant: its tables and snapshots, stored as MVCC data.
//!
//! The catalog lives in the reserved table [`CATALOG_TABLE`] (id 0) of the tenant
//! itself. Its rows are written by ordinary transactions, land in the tenant's commit
//! log, are readable as of any ts and travel with the tenant's backups. DDL is therefore
//! transactional and replayable like any other write.
//!
//! Row keys are the primary key `(kind: string, name: string)` in the usual key
//! encoding, with `kind` = `"table"` or `"snapshot"`. Values are
//! `CATALOG_FORMAT_V1 | JSON(CatalogEntry)`.
//!
//! The global registry of tenants lives in the system tenant [`SYSTEM_TENANT`], table
//! [`TENANTS_TABLE`], keyed by tenant id; see `tenant.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::{pk_bytes, KeyValue};
use crate::schema::TableDef;
use crate::ts::Ts;

/// Table id of each tenant's catalog.
pub const CATALOG_TABLE: u64 = 0;
/// The system tenant: global registry, never a user tenant, never backed up.
pub const SYSTEM_TENANT: u64 = 0;
/// Registry table of the system tenant: one row per tenant.
pub const TENANTS_TABLE: u64 = 1;
/// First id handed to user tables (ids below are reserved for system tables).
pub const FIRST_USER_TABLE_ID: u64 = 1024;

const CATALOG_FORMAT_V1: u8 = 1;

/// A named snapshot: a pinned commit ts of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDef {
    pub name: String,
    /// The state the snapshot shows: every commit with ts ≤ this.
    pub ts: Ts,
}

/// One catalog row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CatalogEntry {
    Table(TableDef),
    Snapshot(SnapshotDef),
}

/// Catalog row key of a table.
pub fn table_key(name: &str) -> Vec<u8> {
    pk_bytes(&[KeyValue::Str("table".into()), KeyValue::Str(name.into())])
}

/// Catalog row key of a snapshot.
pub fn snapshot_key(name: &str) -> Vec<u8> {
    pk_bytes(&[KeyValue::Str("snapshot".into()), KeyValue::Str(name.into())])
}

/// Whether a catalog key names a snapshot (rather than a table).
pub fn is_snapshot_key(key: &[u8]) -> bool {
    key.starts_with(&pk_bytes(&[KeyValue::Str("snapshot".into())]))
}

pub fn encode_entry(entry: &CatalogEntry) -> Vec<u8> {
    let mut out = vec![CATALOG_FORMAT_V1];
    serde_json::to_writer(&mut out, entry).expect("catalog entries serialize");
    out
}

pub fn decode_entry(bytes: &[u8]) -> Result<CatalogEntry> {
    match bytes.split_first() {
        Some((&CATALOG_FORMAT_V1, json)) => {
            serde_json::from_slice(json).map_err(|e| Error::Corrupt(format!("catalog entry: {e}")))
        }
        Some((v, _)) => Err(Error::Corrupt(format!("unknown catalog entry version {v}"))),
        None => Err(Error::Corrupt("empty catalog entry".into())),
    }
}

/// A tenant's catalog as of one ts.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub tables: BTreeMap<String, Arc<TableDef>>,
    pub snapshots: BTreeMap<String, SnapshotDef>,
    by_id: HashMap<u64, Arc<TableDef>>,
}

impl Catalog {
    pub fn from_entries(entries: impl IntoIterator<Item = CatalogEntry>) -> Catalog {
        let mut c = Catalog::default();
        for e in entries {
            match e {
                CatalogEntry::Table(t) => {
                    let t = Arc::new(t);
                    c.by_id.insert(t.id, t.clone());
                    c.tables.insert(t.name.clone(), t);
                }
                CatalogEntry::Snapshot(s) => {
                    c.snapshots.insert(s.name.clone(), s);
                }
            }
        }
        c
    }

    pub fn table_by_id(&self, id: u64) -> Option<&Arc<TableDef>> {
        self.by_id.get(&id)
    }
}
