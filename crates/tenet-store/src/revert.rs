//! Putting a tenant back in place: one commit that makes the visible state of a tenant
//! (or of one table, or of a key range of a table) equal to its state at an earlier ts
//! T, computed from the tenant's own MVCC history. The tenant keeps its identity (id,
//! log, archive chain, backups, snapshots).
//!
//! # Overview
//! 1. **Target.** T comes from a time, a snapshot or "just before commit C". T is
//!    pinned for the duration (GC keeps the state at T and the log after it); a T that
//!    GC already collected fails with `TooOld`, naming the oldest revertable time.
//! 2. **Changed keys.** The keys written since T, from the tenant's commit log `(T,
//!    now]` — cost ∝ changes. Where GC removed that log (a snapshot older than the
//!    history retention), a *diff scan* reads the newest version of every key in scope
//!    instead, and the report says so ([`ChangeSource::DiffScan`]).
//! 3. **Fence.** The tenant's new commits wait ([`crate::store::FENCE_WAIT`] at most);
//!    commits that already have a ts are waited for. The log written between step 2
//!    and the fence adds its keys.
//! 4. **Commit.** A commit ts R is taken. For each changed key in key order, the row at
//!    T is compared with the row now; where they differ, a version at R carries the row
//!    at T (or a deletion). The versions and one commit-log record go in as one commit:
//!    small commits as one write batch; large ones as the log record (plus a marker)
//!    in one synced batch, then the versions as an SST file ingested into RocksDB.
//! 5. **Release.** The catalog cache is refreshed, reads and writes go on.
//!
//! # Scope
//! Whole tenant: every table that existed at T and the catalog's table rows (tables
//! created since T are dropped, tables dropped since T come back with their id and
//! rows, columns added since T go away). Snapshots are never reverted: a rollback keeps
//! the snapshots taken after its target. One table: its catalog row and the rows of
//! the table it named at T. A key range: rows of a table that is the same table (same
//! id) at T and now; the catalog is untouched.
//!
//! # Concurrency
//! The revert fences the tenant's writes from step 3 to 5 and reports how long
//! (`writes_held`). A transaction that started before R and writes a key the revert
//! wrote, or a table whose catalog row it changed, fails at commit with the retryable
//! `Conflict` (first committer wins); its retry sees the reverted state. Other tenants
//! never wait: R is not a pending commit of the store. Instead, the tenant's own
//! reads at or past R wait until R is written (a *read barrier*), "latest" reads of the
//! tenant read just below R meanwhile, and its log is read only below R.
//!
//! # Crash consistency
//! A small revert is one atomic write batch. A large one writes its log record and the
//! marker `revert/<tenant>` = R in one synced batch before ingesting; when the store
//! reopens with a marker, it re-applies the versions from the log record (idempotent)
//! and removes the marker, so the tenant is wholly before or wholly after the revert.
//! A pin a crashed revert held is released at reopen.
//!
//! # Memory
//! The set of changed keys and the commit's one log record are held in memory, so
//! memory is proportional to the change, never to the tenant's size. (Splitting one
//! commit's log record into parts, so that a revert of any size runs in bounded
//! memory, needs a log format change; not done yet.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocksdb::{IngestExternalFileOptions, SstFileWriter, WriteBatch};
use serde::Serialize;
use serde_json::Value;

use crate::catalog::{is_snapshot_key, table_key, Catalog, CATALOG_TABLE};
use crate::commit_log::{LogRecord, Mutation};
use crate::error::{Error, Result};
use crate::keys::{self, meta, pk_bytes, KeyValue, VERSION_DELETE, VERSION_PUT};
use crate::lifecycle::{self, TenantAction};
use crate::read::ReadAt;
use crate::runtime::TenantRuntime;
use crate::store::Store;
use crate::tenant::{TenantRecord, TenantRef};
use crate::ts::Ts;
use crate::txn::AsOf;

/// Owner of the pin a revert holds on its target.
pub const REVERT_PIN_OWNER: &str = "revert";

/// The state to go back to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevertTo {
    /// The state at a time, a commit ts, a snapshot or a relative time.
    AsOf(AsOf),
    /// The state just before the commit with this ts (undoes that commit and every
    /// later one).
    BeforeCommit(Ts),
}

/// What to put back.
#[derive(Clone, Debug, PartialEq)]
pub enum RevertScope {
    /// The whole tenant, catalog included (snapshots excepted).
    Tenant,
    /// One table (by its name at T or now): its definition and rows.
    Table(String),
    /// The rows of one table with `from ≤ pk < to` (primary keys as JSON).
    Range {
        table: String,
        from: Option<Value>,
        to: Option<Value>,
    },
}

/// How the changed keys were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// From the commit log since T (cost ∝ changes).
    Log,
    /// GC had removed the log after T: every key in scope was scanned.
    DiffScan,
}

/// What happened to a table's definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogRevert {
    /// Dropped since T: it is back, with its id and rows.
    Restored,
    /// Created since T: it is dropped.
    Dropped,
    /// Altered since T (e.g. columns added): its definition at T is back.
    SchemaReverted,
    /// Dropped and created again since T: the table of T is back in its place.
    Replaced,
}

/// What a revert changed in one table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TableRevert {
    pub table: String,
    pub table_id: u64,
    pub catalog: Option<CatalogRevert>,
    /// Rows that were gone and are back.
    pub rows_restored: u64,
    /// Rows that changed and hold their old values again.
    pub rows_reverted: u64,
    /// Rows that did not exist at T and are deleted.
    pub rows_removed: u64,
}

/// The outcome of a revert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevertReport {
    pub tenant_id: u64,
    pub tenant: String,
    /// The state the tenant (scope) now shows: the one at this ts.
    pub target_ts: Ts,
    /// The revert's commit; `None` when the scope already equalled its state at T.
    pub commit_ts: Option<Ts>,
    pub found_by: ChangeSource,
    /// Keys compared (changed since T, in scope).
    pub keys_examined: u64,
    /// Tables that changed, by name.
    pub tables: Vec<TableRevert>,
    /// How long the tenant's commits were held.
    pub writes_held: Duration,
    pub elapsed: Duration,
}

impl Store {
    /// Reverts `tenant` (or a table, or a key range) to its state at `to` in one new
    /// commit. See the module docs.
    pub fn revert<'a>(
        &self,
        tenant: impl Into<TenantRef<'a>>,
        to: &RevertTo,
        scope: &RevertScope,
    ) -> Result<RevertReport> {
        let started = Instant::now();
        let rec = self.resolve(tenant)?;
        lifecycle::check(&rec, TenantAction::Revert)?;
        let target = self.revert_target(&rec, to)?;
        let pin = self
            .pin(rec.id, target, REVERT_PIN_OWNER)
            .map_err(|e| match e {
                Error::TooOld {
                    tenant,
                    requested,
                    requested_time,
                    oldest,
                    oldest_time,
                    ..
                } => Error::TooOld {
                    hint: format!(
                        "; to go back further, restore it in place from a backup: `tenet \
                         restore {tenant} --to {requested_time} --in-place`"
                    ),
                    tenant,
                    requested,
                    requested_time,
                    oldest,
                    oldest_time,
                },
                other => other,
            })?;
        let result = self.revert_pinned(&rec, target, scope, started);
        if let Err(e) = self.unpin(rec.id, pin.id) {
            tracing::warn!(tenant_id = rec.id, error = %e, "could not release a revert's pin");
        }
        result
    }

    /// The ts whose state `to` names.
    fn revert_target(&self, rec: &TenantRecord, to: &RevertTo) -> Result<Ts> {
        match to {
            RevertTo::AsOf(AsOf::Latest) => Err(Error::invalid(
                "reverting to the latest state changes nothing; give a past time, a relative \
                 time (-5m), @snapshot or the commit to undo",
            )),
            RevertTo::AsOf(AsOf::Ts(ts)) => Ok(*ts),
            RevertTo::AsOf(AsOf::Ago(d)) => Ok(self.ts_ago(*d)),
            RevertTo::AsOf(AsOf::Snapshot(name)) => self.snapshot_ts(rec, name),
            RevertTo::BeforeCommit(c) => {
                let present = self
                    .inner
                    .db
                    .get_cf(self.cf_log(), keys::log_key(rec.id, *c))?
                    .is_some();
                if !present && self.log_complete_after(rec.id)? < *c {
                    return Err(Error::invalid(format!(
                        "tenant `{}` has no commit at {c}; --before-commit takes the ts of one \
                         of its commits (every write and revert prints its commit ts)",
                        rec.name
                    )));
                }
                Ok(c.prev())
            }
        }
    }

    fn revert_pinned(
        &self,
        rec: &TenantRecord,
        target: Ts,
        scope: &RevertScope,
        started: Instant,
    ) -> Result<RevertReport> {
        let at = |ts| ReadAt {
            tenant_id: rec.id,
            tenant_name: &rec.name,
            ts,
            check: false,
        };
        let cat_t = self.catalog_at(&at(target))?;
        let v0 = self.tenant_visible_ts(rec.id);
        let filter = ScopeFilter::resolve(rec, scope, &cat_t, &*self.catalog_at(&at(v0))?)?;

        // Keys changed since T, before the fence (the bulk of the work)…
        let mut changed = BTreeSet::new();
        let mut found_by = ChangeSource::Log;
        self.changed_since(rec.id, target, v0, &filter, &mut changed, &mut found_by)?;

        // …and after it, with the tenant's writes held.
        let fence = WriteFence::raise(self, rec.id, &rec.name)?;
        let v1 = fence.settled;
        if v1 > v0 {
            self.changed_since(rec.id, v0, v1, &filter, &mut changed, &mut found_by)?;
        }
        let cat_now = self.catalog_at(&at(v1))?;
        ScopeFilter::resolve(rec, scope, &cat_t, &cat_now)?;

        let r = fence.reserve_ts()?;
        let mut tally = Tally::default();
        let mut mutations = Vec::new();
        let mut bytes = 0usize;
        for (table, pk) in &changed {
            let old = self.get_raw(&at(target), *table, pk)?;
            let cur = self.get_raw(&at(v1), *table, pk)?;
            if old == cur {
                continue;
            }
            tally.count(*table, pk, &old, &cur, &cat_t, &cat_now)?;
            bytes += 24 + pk.len() + old.as_ref().map_or(0, Vec::len);
            mutations.push(Mutation {
                table_id: *table,
                pk_enc: pk.clone(),
                value: old,
            });
        }
        let commit_ts = if mutations.is_empty() {
            None
        } else {
            let ddl = mutations.iter().any(|m| m.table_id == CATALOG_TABLE);
            self.write_in_place(rec.id, r, mutations, bytes)?;
            if ddl {
                self.reload_catalog(rec.id, r)?;
            }
            Some(r)
        };
        let writes_held = fence.lower();
        Ok(RevertReport {
            tenant_id: rec.id,
            tenant: rec.name.clone(),
            target_ts: target,
            commit_ts,
            found_by,
            keys_examined: changed.len() as u64,
            tables: tally.tables.into_values().collect(),
            writes_held,
            elapsed: started.elapsed(),
        })
    }

    /// Adds the keys in scope written in `(after, upto]` to `keys`: from the commit log
    /// when GC kept it, else by scanning (and `found_by` says so).
    fn changed_since(
        &self,
        tenant_id: u64,
        after: Ts,
        upto: Ts,
        filter: &ScopeFilter,
        keys: &mut BTreeSet<(u64, Vec<u8>)>,
        found_by: &mut ChangeSource,
    ) -> Result<()> {
        if self.log_complete_after(tenant_id)? <= after {
            let mut from = after;
            while from < upto {
                let (records, covered) = self.read_log_covered(tenant_id, from, 1024)?;
                for m in records.into_iter().flat_map(|r| r.mutations) {
                    if filter.contains(m.table_id, &m.pk_enc) {
                        keys.insert((m.table_id, m.pk_enc));
                    }
                }
                if covered <= from {
                    break;
                }
                from = covered;
            }
            return Ok(());
        }
        *found_by = ChangeSource::DiffScan;
        for table in filter.scanned_tables() {
            let prefix = keys::table_prefix(tenant_id, table);
            let with_prefix = |pk: &[u8]| [prefix.as_slice(), pk].concat();
            let (lower, upper) = match (&filter.range, table) {
                (Some((from, to)), t) if t != CATALOG_TABLE => (
                    from.as_deref().map_or_else(|| prefix.to_vec(), with_prefix),
                    to.as_deref()
                        .map_or_else(|| keys::prefix_end(&prefix), |pk| Some(with_prefix(pk))),
                ),
                _ => (prefix.to_vec(), keys::prefix_end(&prefix)),
            };
            let mut ro = crate::store::prefix_read_options(lower.clone(), upper);
            ro.fill_cache(false);
            let mut it = self.inner.db.raw_iterator_cf_opt(self.cf_data(), ro);
            it.seek(&lower);
            let mut skip = Vec::new();
            while let Some(k) = it.key() {
                // The first version of a key is its newest.
                let dk = keys::parse_data_key(k)?;
                if dk.ts > after && filter.contains(table, dk.pk_enc) {
                    keys.insert((table, dk.pk_enc.to_vec()));
                }
                skip.clear();
                skip.extend_from_slice(&k[..k.len() - 8]);
                skip.extend_from_slice(&[0xFF; 8]);
                it.seek(&skip);
                if it.key() == Some(skip.as_slice()) {
                    it.next();
                }
            }
            it.status()?;
        }
        Ok(())
    }

    /// Writes the versions of an in-place commit at `ts` and its log record (see the
    /// module docs, "Crash consistency").
    fn write_in_place(
        &self,
        tenant_id: u64,
        ts: Ts,
        mutations: Vec<Mutation>,
        bytes: usize,
    ) -> Result<()> {
        let record = LogRecord {
            tenant_id,
            commit_ts: ts,
            mutations,
        };
        let log_key = keys::log_key(tenant_id, ts);
        if bytes < self.inner.replay_ingest_min_bytes {
            let mut batch = WriteBatch::default();
            for m in &record.mutations {
                batch.put_cf(
                    self.cf_data(),
                    keys::data_key(tenant_id, m.table_id, &m.pk_enc, ts),
                    version_value(m.value.as_deref()),
                );
            }
            batch.put_cf(self.cf_log(), log_key, record.encode());
            self.inner.db.write_opt(batch, &synced())?;
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf_log(), log_key, record.encode());
        batch.put_cf(
            self.cf_meta(),
            meta::revert_marker(tenant_id),
            ts.0.to_be_bytes(),
        );
        self.inner.db.write_opt(batch, &synced())?;

        let dir = self.path().join("tmp");
        std::fs::create_dir_all(&dir)?;
        let path: PathBuf = dir.join(format!("revert-{tenant_id}-{}.sst", ts.0));
        let mut w = SstFileWriter::create(&self.inner.data_opts);
        w.open(&path)?;
        for m in &record.mutations {
            w.put(
                keys::data_key(tenant_id, m.table_id, &m.pk_enc, ts),
                version_value(m.value.as_deref()),
            )?;
        }
        w.finish()?;
        let mut io = IngestExternalFileOptions::default();
        io.set_move_files(true);
        self.inner
            .db
            .ingest_external_file_cf_opts(self.cf_data(), &io, vec![&path])?;
        self.inner
            .db
            .delete_cf_opt(self.cf_meta(), meta::revert_marker(tenant_id), &synced())?;
        Ok(())
    }

    /// At open: finishes in-place commits a crash interrupted (their log record is
    /// written; their versions are written again from it) and releases revert pins.
    pub(crate) fn finish_interrupted_reverts(&self) -> Result<()> {
        let prefix = meta::REVERT_MARKER_PREFIX;
        let mut markers = Vec::new();
        let mut it = self.inner.db.raw_iterator_cf_opt(
            self.cf_meta(),
            crate::store::prefix_read_options(prefix.to_vec(), keys::prefix_end(prefix)),
        );
        it.seek(prefix);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let tenant = k[prefix.len()..]
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| Error::Corrupt("revert marker key is not 8 bytes".into()))?;
            let ts = v
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| Error::Corrupt("revert marker is not 8 bytes".into()))?;
            markers.push((tenant, Ts(ts)));
            it.next();
        }
        it.status()?;
        drop(it);
        for (tenant_id, ts) in markers {
            tracing::info!(tenant_id, commit_ts = %ts, "finishing an interrupted revert");
            if let Some(bytes) = self
                .inner
                .db
                .get_cf(self.cf_log(), keys::log_key(tenant_id, ts))?
            {
                let record = LogRecord::decode(tenant_id, &bytes)?;
                for chunk in record.mutations.chunks(10_000) {
                    let mut batch = WriteBatch::default();
                    for m in chunk {
                        batch.put_cf(
                            self.cf_data(),
                            keys::data_key(tenant_id, m.table_id, &m.pk_enc, ts),
                            version_value(m.value.as_deref()),
                        );
                    }
                    self.inner.db.write_opt(batch, &synced())?;
                }
                if record.has_ddl() {
                    self.reload_catalog(tenant_id, ts)?;
                }
            }
            self.inner.db.delete_cf_opt(
                self.cf_meta(),
                meta::revert_marker(tenant_id),
                &synced(),
            )?;
        }
        for t in self.tenants() {
            for pin in self.pins(t.id)? {
                if pin.owner == REVERT_PIN_OWNER {
                    self.unpin(t.id, pin.id)?;
                }
            }
        }
        Ok(())
    }
}

fn synced() -> rocksdb::WriteOptions {
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(true);
    wo
}

fn version_value(row: Option<&[u8]>) -> Vec<u8> {
    match row {
        Some(r) => {
            let mut v = Vec::with_capacity(1 + r.len());
            v.push(VERSION_PUT);
            v.extend_from_slice(r);
            v
        }
        None => vec![VERSION_DELETE],
    }
}

/// Holds a tenant's commits while an in-place commit is prepared and written.
struct WriteFence<'s> {
    store: &'s Store,
    rt: Arc<TenantRuntime>,
    /// Every commit of the tenant is at or below this ts and complete.
    settled: Ts,
    since: Instant,
}

impl<'s> WriteFence<'s> {
    /// Fences the tenant's commits and waits for the ones that already have a ts.
    fn raise(store: &'s Store, tenant_id: u64, name: &str) -> Result<WriteFence<'s>> {
        let rt = store.runtime(tenant_id)?;
        let mut st = store.inner.commit.lock();
        if rt.write_fence.swap(true, Ordering::AcqRel) {
            return Err(Error::Conflict(format!(
                "tenant `{name}` is being put back in place by another revert"
            )));
        }
        let since = Instant::now();
        let settled = st.hlc.last();
        while store.visible_ts() < settled {
            store.inner.committed.wait(&mut st);
        }
        Ok(WriteFence {
            store,
            rt,
            settled,
            since,
        })
    }

    /// Takes the in-place commit's ts and raises the tenant's read barrier at it.
    fn reserve_ts(&self) -> Result<Ts> {
        let inner = &self.store.inner;
        let mut st = inner.commit.lock();
        let (ts, lease) = st.hlc.next(inner.clock.now_millis());
        if let Some(lease) = lease {
            self.store.persist_lease(lease)?;
        }
        self.rt.read_barrier.store(ts.0, Ordering::Release);
        self.store.publish_visible(&st);
        Ok(ts)
    }

    /// Lifts the fence and the barrier; returns how long writes were held.
    fn lower(self) -> Duration {
        self.since.elapsed()
    }
}

impl Drop for WriteFence<'_> {
    fn drop(&mut self) {
        let _st = self.store.inner.commit.lock();
        self.rt.read_barrier.store(0, Ordering::Release);
        self.rt.write_fence.store(false, Ordering::Release);
        self.store.inner.committed.notify_all();
    }
}

/// Which keys a revert puts back.
#[derive(Debug)]
struct ScopeFilter {
    /// Catalog rows in scope: all table rows (`None` key) or one.
    catalog: Option<Option<Vec<u8>>>,
    /// Tables (ids at T) whose rows are in scope.
    tables: BTreeSet<u64>,
    /// `from ≤ pk < to` (encoded) for a key range.
    range: Option<(Option<Vec<u8>>, Option<Vec<u8>>)>,
}

impl ScopeFilter {
    fn resolve(
        rec: &TenantRecord,
        scope: &RevertScope,
        at_t: &Catalog,
        now: &Catalog,
    ) -> Result<ScopeFilter> {
        let not_found = |table: &str| Error::TableNotFound {
            tenant: rec.name.clone(),
            table: table.to_string(),
        };
        Ok(match scope {
            RevertScope::Tenant => ScopeFilter {
                catalog: Some(None),
                tables: at_t.tables.values().map(|t| t.id).collect(),
                range: None,
            },
            RevertScope::Table(name) => {
                let then = at_t.tables.get(name);
                if then.is_none() && !now.tables.contains_key(name) {
                    return Err(not_found(name));
                }
                ScopeFilter {
                    catalog: Some(Some(table_key(name))),
                    tables: then.map(|t| t.id).into_iter().collect(),
                    range: None,
                }
            }
            RevertScope::Range { table, from, to } => {
                let (then, cur) = (at_t.tables.get(table), now.tables.get(table));
                let def = match (then, cur) {
                    (None, None) => return Err(not_found(table)),
                    (Some(a), Some(b)) if a.id == b.id => b,
                    _ => {
                        return Err(Error::invalid(format!(
                            "table `{table}` was created, dropped or replaced since the target \
                             time, so a key range of it cannot be put back; revert the whole \
                             table (--table {table} without a key range)"
                        )))
                    }
                };
                let enc = |v: &Option<Value>| -> Result<Option<Vec<u8>>> {
                    v.as_ref()
                        .map(|k| def.pk_from_json(k).map(|k| pk_bytes(&k)))
                        .transpose()
                };
                let (from, to) = (enc(from)?, enc(to)?);
                if let (Some(f), Some(t)) = (&from, &to) {
                    if f >= t {
                        return Err(Error::invalid(
                            "the key range is empty: its start must be below its end",
                        ));
                    }
                }
                ScopeFilter {
                    catalog: None,
                    tables: BTreeSet::from([def.id]),
                    range: Some((from, to)),
                }
            }
        })
    }

    fn contains(&self, table: u64, pk: &[u8]) -> bool {
        if table == CATALOG_TABLE {
            return !is_snapshot_key(pk)
                && match &self.catalog {
                    None => false,
                    Some(None) => true,
                    Some(Some(k)) => k == pk,
                };
        }
        self.tables.contains(&table)
            && self.range.as_ref().is_none_or(|(from, to)| {
                from.as_deref().is_none_or(|f| pk >= f) && to.as_deref().is_none_or(|t| pk < t)
            })
    }

    /// Tables a diff scan reads (the catalog first).
    fn scanned_tables(&self) -> Vec<u64> {
        let catalog = self.catalog.is_some().then_some(CATALOG_TABLE);
        catalog
            .into_iter()
            .chain(self.tables.iter().copied())
            .collect()
    }
}

/// Per-table counts for the report.
#[derive(Default)]
struct Tally {
    tables: BTreeMap<String, TableRevert>,
}

impl Tally {
    fn count(
        &mut self,
        table: u64,
        pk: &[u8],
        old: &Option<Vec<u8>>,
        cur: &Option<Vec<u8>>,
        at_t: &Catalog,
        now: &Catalog,
    ) -> Result<()> {
        if table == CATALOG_TABLE {
            let name = match keys::decode_pk(pk)?.pop() {
                Some(KeyValue::Str(name)) => name,
                _ => return Err(Error::Corrupt("catalog key without a name".into())),
            };
            let (then, cur_def) = (at_t.tables.get(&name), now.tables.get(&name));
            let change = match (then, cur_def) {
                (Some(_), None) => CatalogRevert::Restored,
                (None, Some(_)) => CatalogRevert::Dropped,
                (Some(a), Some(b)) if a.id != b.id => CatalogRevert::Replaced,
                _ => CatalogRevert::SchemaReverted,
            };
            let id = then.or(cur_def).map_or(0, |t| t.id);
            self.entry(&name, id).catalog = Some(change);
            return Ok(());
        }
        let name = at_t
            .table_by_id(table)
            .or_else(|| now.table_by_id(table))
            .map_or_else(|| format!("#{table}"), |t| t.name.clone());
        let entry = self.entry(&name, table);
        match (old, cur) {
            (Some(_), None) => entry.rows_restored += 1,
            (Some(_), Some(_)) => entry.rows_reverted += 1,
            (None, _) => entry.rows_removed += 1,
        }
        Ok(())
    }

    fn entry(&mut self, name: &str, id: u64) -> &mut TableRevert {
        let e = self
            .tables
            .entry(name.to_string())
            .or_insert_with(|| TableRevert {
                table: name.to_string(),
                table_id: id,
                ..TableRevert::default()
            });
        if e.table_id == 0 {
            e.table_id = id;
        }
        e
    }
}
