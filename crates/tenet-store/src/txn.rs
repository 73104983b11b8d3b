//! Transactions: snapshot isolation over one tenant, optimistic, first committer wins.
//!
//! A [`Txn`] reads at its start ts and buffers its writes; reads see the buffered writes
//! (read-your-writes, including its own DDL). `commit` hands the buffer to the commit
//! pipeline (`store.rs`), which aborts with a retryable `Conflict` if any written key —
//! or the catalog row of any table written — changed after the start ts.
//!
//! DDL (create/alter/drop table) and snapshots are writes of catalog rows (`catalog.rs`)
//! and therefore transactional and logged like row writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::catalog::{self, encode_entry, CatalogEntry, SnapshotDef, CATALOG_TABLE};
use crate::commit_log::Mutation;
use crate::error::{Error, Result};
use crate::keys::{meta, pk_bytes};
use crate::lifecycle::{self, TenantAction};
use crate::read::ReadAt;
use crate::row::{decode_row, encode_row};
use crate::schema::{row_json, validate_name, Column, TableDef, TableSpec};
use crate::store::{CommitInfo, CommitRequest, Store};
use crate::tenant::{TenantRecord, TenantRef};
use crate::ts::Ts;

/// When to read.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum AsOf {
    /// The newest committed state.
    #[default]
    Latest,
    /// The state at a commit ts (every commit with ts ≤ it).
    Ts(Ts),
    /// The state of a named snapshot.
    Snapshot(String),
    /// The state this long before the store's clock reads now (`-5m`, `-1h30m`, `-2d`).
    Ago(std::time::Duration),
}

impl AsOf {
    /// Parses `@snapshot`, a decimal commit ts, an RFC 3339 time, a relative time
    /// (`-90s`, `-5m`, `-1h30m`, `-2d`: before now) or `latest`.
    pub fn parse(s: &str) -> Result<AsOf> {
        let s = s.trim();
        if let Some(name) = s.strip_prefix('@') {
            validate_name("snapshot", name)?;
            return Ok(AsOf::Snapshot(name.to_string()));
        }
        if s == "latest" {
            return Ok(AsOf::Latest);
        }
        if let Some(ago) = s.strip_prefix('-') {
            return humantime::parse_duration(ago.trim())
                .map(AsOf::Ago)
                .map_err(|e| {
                    Error::invalid(format!(
                        "`{s}` is not a relative time ({e}); write e.g. -90s, -5m, -1h30m or -2d"
                    ))
                });
        }
        Ts::parse(s).map(AsOf::Ts).map_err(|e| {
            let hint = if humantime::parse_duration(s).is_ok() {
                format!(" (did you mean -{s}, {s} ago?)")
            } else {
                String::new()
            };
            Error::invalid(format!(
                "{e}; an as-of is an RFC 3339 time, a commit ts, a relative time (-5m) or \
                 @snapshot-name{hint}"
            ))
        })
    }
}

/// Bounds and size of a scan.
#[derive(Clone, Debug, Default)]
pub struct ScanRange {
    /// Inclusive lower bound (primary key JSON).
    pub from: Option<Value>,
    /// Exclusive upper bound (primary key JSON).
    pub to: Option<Value>,
    pub limit: Option<usize>,
}

/// A transaction on one tenant.
#[derive(Debug)]
pub struct Txn {
    store: Store,
    tenant_id: u64,
    tenant_name: String,
    start_ts: Ts,
    read_only: bool,
    writes: BTreeMap<(u64, Vec<u8>), Option<Vec<u8>>>,
    /// Catalog rows of the tables this transaction writes to (checked at commit).
    used_tables: BTreeSet<Vec<u8>>,
}

impl Store {
    /// Starts a read-write transaction at the newest committed state.
    pub fn begin<'a>(&self, tenant: impl Into<TenantRef<'a>>) -> Result<Txn> {
        self.start(tenant, &AsOf::Latest, false)
    }

    /// Starts a read-only transaction at `as_of`.
    pub fn read_at<'a>(&self, tenant: impl Into<TenantRef<'a>>, as_of: &AsOf) -> Result<Txn> {
        self.start(tenant, as_of, true)
    }

    /// The ts of snapshot `name` of a tenant (as the newest catalog names it).
    pub(crate) fn snapshot_ts(&self, rec: &TenantRecord, name: &str) -> Result<Ts> {
        let latest = self.catalog_at(&ReadAt {
            tenant_id: rec.id,
            tenant_name: &rec.name,
            ts: self.tenant_visible_ts(rec.id),
            check: false,
        })?;
        latest
            .snapshots
            .get(name)
            .map(|s| s.ts)
            .ok_or_else(|| Error::SnapshotNotFound {
                tenant: rec.name.clone(),
                snapshot: name.to_string(),
                known: latest.snapshots.keys().cloned().collect(),
            })
    }

    fn start<'a>(
        &self,
        tenant: impl Into<TenantRef<'a>>,
        as_of: &AsOf,
        read_only: bool,
    ) -> Result<Txn> {
        let rec = self.resolve(tenant)?;
        lifecycle::check(&rec, TenantAction::Read)?;
        let start_ts = match as_of {
            AsOf::Latest => self.tenant_visible_ts(rec.id),
            AsOf::Ts(ts) => self.read_ts(Some(*ts))?,
            AsOf::Ago(d) => self.read_ts(Some(self.ts_ago(*d)))?,
            AsOf::Snapshot(name) => self.snapshot_ts(&rec, name)?,
        };
        self.check_applied(&rec, start_ts)?;
        self.await_read_barrier(rec.id, start_ts)?;
        Ok(Txn {
            store: self.clone(),
            tenant_id: rec.id,
            tenant_name: rec.name,
            start_ts,
            read_only,
            writes: BTreeMap::new(),
            used_tables: BTreeSet::new(),
        })
    }

    /// Runs `f` in a transaction and commits it.
    pub fn with_txn<'a, R>(
        &self,
        tenant: impl Into<TenantRef<'a>>,
        f: impl FnOnce(&mut Txn) -> Result<R>,
    ) -> Result<(R, CommitInfo)> {
        let mut txn = self.begin(tenant)?;
        let r = f(&mut txn)?;
        let info = txn.commit()?;
        Ok((r, info))
    }
}

impl Txn {
    /// The ts this transaction reads at.
    pub fn start_ts(&self) -> Ts {
        self.start_ts
    }

    pub fn tenant_id(&self) -> u64 {
        self.tenant_id
    }

    pub fn tenant_name(&self) -> &str {
        &self.tenant_name
    }

    fn rd(&self) -> ReadAt<'_> {
        ReadAt {
            tenant_id: self.tenant_id,
            tenant_name: &self.tenant_name,
            ts: self.start_ts,
            check: true,
        }
    }

    fn catalog(&self) -> Result<Arc<catalog::Catalog>> {
        self.store.catalog_at(&self.rd())
    }

    /// A catalog entry as this transaction sees it.
    fn catalog_entry(&self, key: &[u8]) -> Result<Option<CatalogEntry>> {
        match self.writes.get(&(CATALOG_TABLE, key.to_vec())) {
            Some(Some(bytes)) => catalog::decode_entry(bytes).map(Some),
            Some(None) => Ok(None),
            None => Ok(None),
        }
    }

    fn overlaid(&self, key: &[u8]) -> bool {
        self.writes.contains_key(&(CATALOG_TABLE, key.to_vec()))
    }

    /// The table called `name`.
    pub fn table(&self, name: &str) -> Result<Arc<TableDef>> {
        let key = (!self.writes.is_empty()).then(|| catalog::table_key(name));
        let found = if let Some(key) = key.filter(|k| self.overlaid(k)) {
            match self.catalog_entry(&key)? {
                Some(CatalogEntry::Table(t)) => Some(Arc::new(t)),
                _ => None,
            }
        } else {
            self.catalog()?.tables.get(name).cloned()
        };
        found.ok_or_else(|| Error::TableNotFound {
            tenant: self.tenant_name.clone(),
            table: name.to_string(),
        })
    }

    /// Buffered catalog writes: (catalog key, entry or deletion).
    fn catalog_writes(&self) -> impl Iterator<Item = (&Vec<u8>, &Option<Vec<u8>>)> {
        self.writes
            .range((CATALOG_TABLE, Vec::new())..(CATALOG_TABLE + 1, Vec::new()))
            .map(|((_, key), value)| (key, value))
    }

    /// All tables, by name.
    pub fn tables(&self) -> Result<Vec<Arc<TableDef>>> {
        let mut tables = self.catalog()?.tables.clone();
        for bytes in self.catalog_writes().filter_map(|(_, v)| v.as_ref()) {
            if let CatalogEntry::Table(t) = catalog::decode_entry(bytes)? {
                tables.insert(t.name.clone(), Arc::new(t));
            }
        }
        tables.retain(|name, _| {
            !matches!(
                self.writes.get(&(CATALOG_TABLE, catalog::table_key(name))),
                Some(None)
            )
        });
        Ok(tables.into_values().collect())
    }

    /// All snapshots, by name.
    pub fn snapshots(&self) -> Result<Vec<SnapshotDef>> {
        let mut snaps = self.catalog()?.snapshots.clone();
        for (key, value) in self.catalog_writes() {
            match value {
                Some(bytes) => {
                    if let CatalogEntry::Snapshot(s) = catalog::decode_entry(bytes)? {
                        snaps.insert(s.name.clone(), s);
                    }
                }
                None => snaps.retain(|name, _| catalog::snapshot_key(name) != *key),
            }
        }
        Ok(snaps.into_values().collect())
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::invalid(
                "this transaction reads the past (as-of) and cannot write",
            ));
        }
        Ok(())
    }

    fn write(&mut self, table: u64, pk_enc: Vec<u8>, value: Option<Vec<u8>>) -> Result<()> {
        self.check_writable()?;
        self.writes.insert((table, pk_enc), value);
        Ok(())
    }

    /// The row with primary key `pk` (JSON), or `None`.
    pub fn get(&self, table: &str, pk: &Value) -> Result<Option<Value>> {
        let def = self.table(table)?;
        let pk_enc = pk_bytes(&def.pk_from_json(pk)?);
        let decode = |b: &[u8]| Ok(row_json(&def, decode_row(&def, b)?));
        if !self.writes.is_empty() {
            if let Some(buffered) = self.writes.get(&(def.id, pk_enc.clone())) {
                return buffered.as_deref().map(decode).transpose();
            }
        }
        let meter = self.store.foreground();
        let sampled = meter.sample_read().then(Instant::now);
        // Decoded straight from the engine's buffer: no copy of the row.
        let got = self
            .store
            .get_raw_with(&self.rd(), def.id, &pk_enc, decode)?;
        if let Some(t0) = sampled {
            meter.reads.record(t0.elapsed());
        }
        Ok(got)
    }

    /// Rows in primary-key order within `range`.
    pub fn scan(&self, table: &str, range: &ScanRange) -> Result<Vec<Value>> {
        let def = self.table(table)?;
        let from = range
            .from
            .as_ref()
            .map(|k| def.pk_from_json(k).map(|k| pk_bytes(&k)))
            .transpose()?;
        let to = range
            .to
            .as_ref()
            .map(|k| def.pk_from_json(k).map(|k| pk_bytes(&k)))
            .transpose()?;
        let limit = range.limit.unwrap_or(usize::MAX);
        let in_range = |pk: &[u8]| {
            from.as_deref().is_none_or(|f| pk >= f) && to.as_deref().is_none_or(|t| pk < t)
        };
        // Buffered writes in range override stored rows; deletes may hide stored rows,
        // so read that many more from storage.
        let overlay: BTreeMap<&[u8], &Option<Vec<u8>>> = self
            .writes
            .range((def.id, Vec::new())..(def.id + 1, Vec::new()))
            .filter(|((_, pk), _)| in_range(pk))
            .map(|((_, pk), v)| (pk.as_slice(), v))
            .collect();
        let deletes = overlay.values().filter(|v| v.is_none()).count();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let want = limit.saturating_add(deletes);
        self.store.scan_raw(
            &self.rd(),
            def.id,
            from.as_deref(),
            to.as_deref(),
            |pk, _, row| {
                merged.insert(pk.to_vec(), row.to_vec());
                Ok(merged.len() < want)
            },
        )?;
        for (pk, v) in overlay {
            match v {
                Some(row) => merged.insert(pk.to_vec(), row.clone()),
                None => merged.remove(pk),
            };
        }
        merged
            .into_values()
            .take(limit)
            .map(|b| Ok(row_json(&def, decode_row(&def, &b)?)))
            .collect()
    }

    /// Inserts or replaces a row (a JSON object).
    pub fn put(&mut self, table: &str, row: &Value) -> Result<()> {
        let def = self.table(table)?;
        let values = def.check_row(row)?;
        let pk_enc = pk_bytes(&def.pk_of(&values)?);
        let bytes = encode_row(&def, &values);
        self.used_tables.insert(catalog::table_key(&def.name));
        self.write(def.id, pk_enc, Some(bytes))
    }

    /// Deletes the row with primary key `pk` (no error if it does not exist). Returns
    /// whether the row existed as this transaction sees it (its start ts and its own
    /// writes), so callers can say how many rows a delete removed.
    pub fn delete(&mut self, table: &str, pk: &Value) -> Result<bool> {
        let def = self.table(table)?;
        self.check_writable()?;
        let pk_enc = pk_bytes(&def.pk_from_json(pk)?);
        let existed = match self.writes.get(&(def.id, pk_enc.clone())) {
            Some(buffered) => buffered.is_some(),
            None => self.store.get_raw(&self.rd(), def.id, &pk_enc)?.is_some(),
        };
        self.used_tables.insert(catalog::table_key(&def.name));
        self.write(def.id, pk_enc, None)?;
        Ok(existed)
    }

    fn put_entry(&mut self, key: Vec<u8>, entry: &CatalogEntry) -> Result<()> {
        self.write(CATALOG_TABLE, key, Some(encode_entry(entry)))
    }

    /// Creates a table with a new global id.
    pub fn create_table(&mut self, spec: &TableSpec) -> Result<Arc<TableDef>> {
        let primary_key = spec.validate()?;
        if self.table(&spec.name).is_ok() {
            return Err(Error::TableExists {
                tenant: self.tenant_name.clone(),
                table: spec.name.clone(),
            });
        }
        self.check_writable()?;
        let def = TableDef {
            id: self.store.next_seq(meta::SEQ_TABLE, 1)?,
            name: spec.name.clone(),
            columns: spec.columns.clone(),
            primary_key,
            schema_version: 1,
        };
        self.put_entry(
            catalog::table_key(&def.name),
            &CatalogEntry::Table(def.clone()),
        )?;
        Ok(Arc::new(def))
    }

    /// Adds a nullable column; existing rows read it as null.
    pub fn add_column(&mut self, table: &str, column: Column) -> Result<Arc<TableDef>> {
        let mut def = (*self.table(table)?).clone();
        validate_name("column", &column.name)?;
        if def.column(&column.name).is_some() {
            return Err(Error::ColumnExists {
                table: def.name,
                column: column.name,
            });
        }
        def.columns.push(column);
        def.schema_version += 1;
        self.put_entry(
            catalog::table_key(&def.name),
            &CatalogEntry::Table(def.clone()),
        )?;
        Ok(Arc::new(def))
    }

    /// Drops a table. Its rows stay readable as of earlier times until GC.
    pub fn drop_table(&mut self, table: &str) -> Result<()> {
        let def = self.table(table)?;
        self.write(CATALOG_TABLE, catalog::table_key(&def.name), None)
    }

    /// Names the state this transaction reads (its start ts) as a snapshot.
    pub fn create_snapshot(&mut self, name: &str) -> Result<SnapshotDef> {
        validate_name("snapshot", name)?;
        if self.snapshots()?.iter().any(|s| s.name == name) {
            return Err(Error::SnapshotExists {
                tenant: self.tenant_name.clone(),
                snapshot: name.to_string(),
            });
        }
        let snap = SnapshotDef {
            name: name.to_string(),
            ts: self.start_ts,
        };
        self.put_entry(
            catalog::snapshot_key(name),
            &CatalogEntry::Snapshot(snap.clone()),
        )?;
        Ok(snap)
    }

    pub fn drop_snapshot(&mut self, name: &str) -> Result<()> {
        let snapshots = self.snapshots()?;
        if !snapshots.iter().any(|s| s.name == name) {
            return Err(Error::SnapshotNotFound {
                tenant: self.tenant_name.clone(),
                snapshot: name.to_string(),
                known: snapshots.into_iter().map(|s| s.name).collect(),
            });
        }
        self.write(CATALOG_TABLE, catalog::snapshot_key(name), None)
    }

    /// Number of buffered writes.
    pub fn write_count(&self) -> usize {
        self.writes.len()
    }

    /// Commits the buffered writes atomically and durably.
    pub fn commit(self) -> Result<CommitInfo> {
        if self.read_only {
            return Err(Error::invalid("an as-of transaction cannot commit"));
        }
        if self.writes.is_empty() {
            return Err(Error::invalid("the transaction has no writes to commit"));
        }
        let new_snapshot = self.writes.iter().any(|((table, key), v)| {
            *table == CATALOG_TABLE && v.is_some() && catalog::is_snapshot_key(key)
        });
        let rt = self.store.runtime(self.tenant_id)?;
        // A new snapshot must not name a ts that GC is collecting.
        let _gc = new_snapshot.then(|| rt.gc_lock.lock());
        if new_snapshot {
            self.store.check_readable(&self.rd())?;
        }
        let mutations = self
            .writes
            .into_iter()
            .map(|((table_id, pk_enc), value)| Mutation {
                table_id,
                pk_enc,
                value,
            })
            .collect();
        let _timer = self.store.foreground().commit_timer();
        self.store.commit(CommitRequest {
            tenant_id: self.tenant_id,
            tenant_name: self.tenant_name,
            start_ts: self.start_ts,
            mutations,
            conflict_keys: self
                .used_tables
                .into_iter()
                .map(|k| (CATALOG_TABLE, k))
                .collect(),
            registry: Vec::new(),
        })
    }
}
