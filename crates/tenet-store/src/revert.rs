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
//! A small revert is one atomic write batch. A large one first writes the marker
//! `revert/<tenant>` = R (synced), then ingests its log record and its versions as SST
//! files (no giant WAL write), then removes the marker. When the store reopens with a
//! marker: if R's log record exists, the versions are written again from it
//! (idempotent), else the commit never happened; either way the marker goes. So the
//! tenant is wholly before or wholly after the revert. A pin a crashed revert held is
//! released at reopen. An in-place restore's token is recorded with the marker's
//! removal (or with the small batch).
//!
//! # Memory
//! The changed keys, the rows they go back to (moved, not copied, into the commit's
//! one log record) and that record's encoding are held in memory: proportional to the
//! change, never to the tenant's size (an in-place restore merges the two tenants in
//! chunks). Bounding it for a change of any size needs a commit's record in parts — a
//! log format change that the archiver and replay must follow; not done yet.

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
    /// Rows visible again because the table's definition came back (restored/replaced).
    pub table_rows_back: u64,
    /// Rows no longer visible because the table's definition went (dropped/replaced).
    pub table_rows_gone: u64,
    /// Columns the definition loses (added since T), for `schema_reverted`.
    pub columns_removed: Vec<String>,
    /// Columns the definition gets back (dropped since T), for `schema_reverted`.
    pub columns_back: Vec<String>,
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
                         restore {tenant} --to {requested} --in-place`"
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
                let newest = self.tenant_visible_ts(rec.id);
                if *c > newest {
                    return Err(Error::invalid(format!(
                        "{c} is in the future: the newest commit is at or before {newest} ({})",
                        newest.to_rfc3339()
                    )));
                }
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
        self.check_existed(rec, target, &cat_t)?;
        let v0 = self.tenant_visible_ts(rec.id);
        let filter = ScopeFilter::resolve(rec, scope, &cat_t, &*self.catalog_at(&at(v0))?)?;
        let then = std::cell::RefCell::new(self.point_reader(&at(target))?);
        let want = |table: u64, pk: &[u8]| then.borrow_mut().get(table, pk);

        // Keys changed since T and what they must hold, before the fence (the bulk of
        // the work)…
        let mut keys = BTreeSet::new();
        let mut found_by = ChangeSource::Log;
        self.changed_since(rec.id, target, v0, &filter, &mut keys, &mut found_by)?;
        let mut diff = Diff::default();
        let examined = keys.len() as u64;
        let mut now = self.point_reader(&at(v0))?;
        for (table, pk) in keys {
            let (cur, want) = (now.get(table, &pk)?, want(table, &pk)?);
            diff.settle(table, pk, want, cur);
        }
        // …then only what changed since, with the tenant's writes held.
        let done = self.commit_diff(rec, v0, &filter, &want, diff, None, |cat_now| {
            ScopeFilter::resolve(rec, scope, &cat_t, cat_now).map(drop)
        })?;
        Ok(done.report(
            self,
            rec,
            (rec.id, target),
            found_by,
            &cat_t,
            started,
            examined,
        ))
    }

    /// Refuses a target before the tenant existed (an empty state, most likely a slip
    /// like `-10m` for `-1m`): it would drop every table.
    pub fn check_existed(&self, rec: &TenantRecord, target: Ts, at_t: &Catalog) -> Result<()> {
        if target < rec.created_ts && at_t.tables.is_empty() {
            return Err(Error::invalid(format!(
                "tenant `{}` did not exist yet at {target} ({}): it was created at {} ({}); \
                 give a time at or after that",
                rec.name,
                target.to_rfc3339(),
                rec.created_ts,
                rec.created_ts.to_rfc3339()
            )));
        }
        Ok(())
    }

    /// Makes the live tenant `live` equal to tenant `source` as of `source_ts` in one
    /// commit (an in-place restore: `source` is a scratch tenant restored from backups
    /// with the live tenant's table ids). Snapshots of the live tenant stay. `token`
    /// makes it idempotent: the commit records it atomically, and a second call with the
    /// same token returns the first one's commit without writing.
    pub fn make_equal(
        &self,
        live: u64,
        source: u64,
        source_ts: Ts,
        token: &str,
    ) -> Result<RevertReport> {
        let started = Instant::now();
        let rec = self.resolve(live)?;
        if let Some(ts) = self.in_place_done(token)? {
            return Ok(RevertReport {
                tenant_id: rec.id,
                tenant: rec.name,
                target_ts: source_ts,
                commit_ts: Some(ts).filter(|t| *t != Ts::ZERO),
                found_by: ChangeSource::DiffScan,
                keys_examined: 0,
                tables: Vec::new(),
                writes_held: Duration::ZERO,
                elapsed: started.elapsed(),
            });
        }
        lifecycle::check(&rec, TenantAction::Revert)?;
        let src = ReadAt {
            tenant_id: source,
            tenant_name: "(restore source)",
            ts: source_ts,
            check: false,
        };
        let cat_src = self.catalog_at(&src)?;
        let v0 = self.tenant_visible_ts(rec.id);
        let now = ReadAt {
            tenant_id: rec.id,
            tenant_name: &rec.name,
            ts: v0,
            check: false,
        };
        let filter = ScopeFilter {
            catalog: Some(None),
            tables: cat_src.tables.values().map(|t| t.id).collect(),
            range: None,
        };
        let theirs = std::cell::RefCell::new(self.point_reader(&src)?);
        let want = |table: u64, pk: &[u8]| theirs.borrow_mut().get(table, pk);
        // Every key of the source's tables and of the catalog, by merging scans.
        let mut diff = Diff::default();
        let mut examined = 0u64;
        for table in filter.scanned_tables() {
            // In chunks of at most MERGE_CHUNK rows from each side, so memory stays
            // bounded whatever the size.
            let mut cursor: Option<Vec<u8>> = None;
            loop {
                let chunk = |rd: &ReadAt<'_>| -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
                    let mut rows = Vec::new();
                    self.scan_raw_with(rd, table, cursor.as_deref(), None, true, |pk, _, row| {
                        rows.push((pk.to_vec(), row.to_vec()));
                        Ok(rows.len() < MERGE_CHUNK)
                    })?;
                    Ok(rows)
                };
                let (mut theirs, mut ours) = (chunk(&src)?, chunk(&now)?);
                // Up to the smaller of the two full chunks' last keys.
                let bound = [&theirs, &ours]
                    .into_iter()
                    .filter(|rows| rows.len() == MERGE_CHUNK)
                    .map(|rows| just_after(&rows[MERGE_CHUNK - 1].0))
                    .min();
                if let Some(b) = &bound {
                    theirs.retain(|(pk, _)| pk < b);
                    ours.retain(|(pk, _)| pk < b);
                }
                examined += merge_diff(table, theirs, ours, &filter, &mut diff);
                match bound {
                    Some(b) => cursor = Some(b),
                    None => break,
                }
            }
        }
        let done = self.commit_diff(&rec, v0, &filter, &want, diff, Some(token), |_| Ok(()))?;
        Ok(done.report(
            self,
            &rec,
            (source, source_ts),
            ChangeSource::DiffScan,
            &cat_src,
            started,
            examined,
        ))
    }

    /// Whether the in-place commit with `token` is done: its commit ts, or
    /// `Ts::ZERO` when it found nothing to change; `None` if it was not made.
    pub fn in_place_done(&self, token: &str) -> Result<Option<Ts>> {
        Ok(self
            .inner
            .db
            .get_cf(self.cf_meta(), meta::in_place(token))?
            .and_then(|v| v.as_slice().try_into().ok().map(u64::from_be_bytes))
            .map(Ts))
    }

    /// Fences the tenant, adds the keys it wrote since `v0` to `diff` (what they must
    /// hold comes from `want`), checks `recheck` against the catalog under the fence,
    /// and writes the diff as one commit.
    #[allow(clippy::too_many_arguments)]
    fn commit_diff(
        &self,
        rec: &TenantRecord,
        v0: Ts,
        filter: &ScopeFilter,
        want: &Want<'_>,
        mut diff: Diff,
        token: Option<&str>,
        recheck: impl FnOnce(&Catalog) -> Result<()>,
    ) -> Result<Committed> {
        // A large diff is ingested as an SST file; RocksDB flushes a memtable that
        // overlaps it first, so flush now, before the tenant's writes are held.
        let estimate: usize = diff
            .0
            .iter()
            .map(|((_, pk), (v, _))| pk.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        if estimate >= self.inner.replay_ingest_min_bytes {
            self.inner.db.flush_cf(self.cf_data())?;
        }
        let fence = WriteFence::raise(self, rec.id, &rec.name)?;
        let v1 = fence.settled;
        let at = ReadAt {
            tenant_id: rec.id,
            tenant_name: &rec.name,
            ts: v1,
            check: false,
        };
        let mut fenced_keys = 0;
        if v1 > v0 {
            let mut keys = BTreeSet::new();
            let mut found_by = ChangeSource::Log;
            self.changed_since(rec.id, v0, v1, filter, &mut keys, &mut found_by)?;
            fenced_keys = keys.len() as u64;
            let mut now = self.point_reader(&at)?;
            for (table, pk) in keys {
                let (cur, want) = (now.get(table, &pk)?, want(table, &pk)?);
                diff.settle(table, pk, want, cur);
            }
        }
        let cat_now = self.catalog_at(&at)?;
        recheck(&cat_now)?;
        let r = fence.reserve_ts()?;
        // What changed, for the report; the rows move into the commit record (no copy).
        let mut changes = Vec::with_capacity(diff.0.len());
        let mut mutations = Vec::with_capacity(diff.0.len());
        let mut bytes = 0usize;
        for ((table_id, pk_enc), (value, cur)) in std::mem::take(&mut diff.0) {
            bytes += 24 + pk_enc.len() + value.as_ref().map_or(0, Vec::len);
            changes.push(Change {
                table: table_id,
                pk: pk_enc.clone(),
                want: value.is_some(),
                cur,
            });
            mutations.push(Mutation {
                table_id,
                pk_enc,
                value,
            });
        }
        let commit_ts = if mutations.is_empty() {
            if let Some(token) = token {
                // Applied, with nothing to change (a resumed job must know that too).
                self.inner.db.put_cf_opt(
                    self.cf_meta(),
                    meta::in_place(token),
                    0u64.to_be_bytes(),
                    &synced(),
                )?;
            }
            None
        } else {
            let ddl = changes.iter().any(|c| c.table == CATALOG_TABLE);
            if let Err(failure) = self.write_in_place(rec.id, r, mutations, bytes, token) {
                return Err(match failure {
                    Unwritten::Before(e) => e,
                    Unwritten::After(e) => {
                        // The commit exists (its record is durable) but not all of its
                        // versions: keep the tenant held; reopening finishes it.
                        std::mem::forget(fence);
                        Error::Corrupt(format!(
                            "commit {r} of tenant `{}` is recorded but its versions could not \
                             be written ({e}); the tenant is held until the store is opened \
                             again, which finishes it",
                            rec.name
                        ))
                    }
                });
            }
            if ddl {
                self.reload_catalog(rec.id, r)?;
            }
            Some(r)
        };
        let writes_held = fence.lower();
        Ok(Committed {
            commit_ts,
            changes,
            v1,
            cat_now,
            writes_held,
            fenced_keys,
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
            let ro = crate::store::bulk_read_options(lower.clone(), upper);
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
        token: Option<&str>,
    ) -> std::result::Result<(), Unwritten> {
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
            if let Some(token) = token {
                batch.put_cf(self.cf_meta(), meta::in_place(token), ts.0.to_be_bytes());
            }
            return self
                .inner
                .db
                .write_opt(batch, &synced())
                .map_err(|e| Unwritten::Before(e.into()));
        }
        // Large: no giant WAL write. The marker (with the token) first, then the log
        // record and the versions as SST files (RocksDB syncs ingested files), then the
        // token and the marker's removal in one synced batch.
        let dir = self.path().join("tmp");
        let sst =
            |name: &str| -> PathBuf { dir.join(format!("revert-{tenant_id}-{}-{name}.sst", ts.0)) };
        let (log_path, data_path) = (sst("log"), sst("data"));
        let prepared = (|| -> Result<()> {
            let mut marker = ts.0.to_be_bytes().to_vec();
            marker.extend_from_slice(token.unwrap_or_default().as_bytes());
            self.inner.db.put_cf_opt(
                self.cf_meta(),
                meta::revert_marker(tenant_id),
                &marker,
                &synced(),
            )?;
            crate::failpoint::hit("in-place-after-marker");
            std::fs::create_dir_all(&dir)?;
            let mut w = SstFileWriter::create(&self.inner.log_opts);
            w.open(&log_path)?;
            w.put(log_key, record.encode())?;
            w.finish()?;
            let mut w = SstFileWriter::create(&self.inner.data_opts);
            w.open(&data_path)?;
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
                .ingest_external_file_cf_opts(self.cf_log(), &io, vec![&log_path])?;
            crate::failpoint::hit("in-place-after-log");
            Ok(())
        })();
        let committed = self
            .inner
            .db
            .get_cf(self.cf_log(), log_key)
            .map(|v| v.is_some())
            .unwrap_or(true);
        if let Err(e) = prepared {
            let _ = std::fs::remove_file(&log_path);
            let _ = std::fs::remove_file(&data_path);
            if committed {
                return self.finish_versions(&record, token, &data_path, e);
            }
            let _ = self.finish_marker(tenant_id, ts, None);
            return Err(Unwritten::Before(e));
        }
        // From here on the commit exists (its log record does): its versions must follow.
        let mut io = IngestExternalFileOptions::default();
        io.set_move_files(true);
        if let Err(e) =
            self.inner
                .db
                .ingest_external_file_cf_opts(self.cf_data(), &io, vec![&data_path])
        {
            return self.finish_versions(&record, token, &data_path, e.into());
        }
        crate::failpoint::hit("in-place-after-data");
        self.finish_marker(tenant_id, ts, token)
            .or_else(|e| self.finish_versions(&record, token, &data_path, e))
    }

    /// After a failure once a commit's record is durable: writes its versions from the
    /// record (a few attempts), then finishes the marker.
    fn finish_versions(
        &self,
        record: &LogRecord,
        token: Option<&str>,
        sst: &std::path::Path,
        first: Error,
    ) -> std::result::Result<(), Unwritten> {
        tracing::warn!(tenant_id = record.tenant_id, error = %first, "writing an in-place commit's versions again");
        let _ = std::fs::remove_file(sst);
        let mut last = first;
        for attempt in 0..3u32 {
            std::thread::sleep(Duration::from_millis(100 << attempt));
            match self
                .write_versions(record)
                .and_then(|()| self.finish_marker(record.tenant_id, record.commit_ts, token))
            {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(Unwritten::After(last))
    }

    /// Writes the versions of a commit record in batches (the record is durable, so a
    /// crash in between is finished from it at the next open).
    fn write_versions(&self, record: &LogRecord) -> Result<()> {
        for chunk in record.mutations.chunks(10_000) {
            let mut batch = WriteBatch::default();
            for m in chunk {
                batch.put_cf(
                    self.cf_data(),
                    keys::data_key(record.tenant_id, m.table_id, &m.pk_enc, record.commit_ts),
                    version_value(m.value.as_deref()),
                );
            }
            self.inner.db.write_opt(batch, &synced())?;
        }
        Ok(())
    }

    /// Records `token` (if any) as done at `ts` and removes the tenant's revert marker,
    /// in one synced batch.
    fn finish_marker(&self, tenant_id: u64, ts: Ts, token: Option<&str>) -> Result<()> {
        let mut batch = WriteBatch::default();
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            batch.put_cf(self.cf_meta(), meta::in_place(token), ts.0.to_be_bytes());
        }
        batch.delete_cf(self.cf_meta(), meta::revert_marker(tenant_id));
        self.inner.db.write_opt(batch, &synced())?;
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
            if v.len() < 8 {
                return Err(Error::Corrupt(
                    "revert marker is shorter than 8 bytes".into(),
                ));
            }
            let ts = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
            let token = String::from_utf8_lossy(&v[8..]).into_owned();
            markers.push((tenant, Ts(ts), token));
            it.next();
        }
        it.status()?;
        drop(it);
        for (tenant_id, ts, token) in markers {
            if self.tenant_by_id(tenant_id).is_none() {
                // Dropped since: its data and log are gone with it.
                self.finish_marker(tenant_id, ts, None)?;
                continue;
            }
            tracing::info!(tenant_id, commit_ts = %ts, "finishing an interrupted revert");
            // Without its log record the commit never happened: only the marker goes.
            let mut committed = false;
            if let Some(bytes) = self
                .inner
                .db
                .get_cf(self.cf_log(), keys::log_key(tenant_id, ts))?
            {
                let record = LogRecord::decode(tenant_id, &bytes)?;
                self.write_versions(&record)?;
                if record.has_ddl() {
                    self.reload_catalog(tenant_id, ts)?;
                }
                committed = true;
            }
            self.finish_marker(tenant_id, ts, committed.then_some(token.as_str()))?;
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

/// Why an in-place commit was not written: before its record was durable (nothing
/// happened), or after (it exists, its versions may not all be written).
enum Unwritten {
    Before(Error),
    After(Error),
}

/// A key of a tenant: (table id, `pk_enc`).
type Key = (u64, Vec<u8>);
/// A row's bytes, or `None` for absent.
type Row = Option<Vec<u8>>;
/// `from ≤ pk < to` as encoded keys (`None`: unbounded).
type KeyRange = (Option<Vec<u8>>, Option<Vec<u8>>);
/// What a key must hold after an in-place commit.
type Want<'a> = dyn Fn(u64, &[u8]) -> Result<Row> + 'a;

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
        // The state may have changed since the revert began; while the fence is up,
        // registry changes of the tenant wait (`store.rs`).
        let allowed = match store.inner.registry.read().get(tenant_id) {
            Some(rec) => lifecycle::check(rec, TenantAction::Revert),
            None => Err(Error::TenantNotFound(name.to_string())),
        };
        // A switchover is moving the tenant: refused like any write (`standby.rs`).
        let allowed = allowed.and_then(|()| match rt.moving.load(Ordering::Acquire) {
            true => Err(Error::TenantMoving(name.to_string())),
            false => Ok(()),
        });
        if let Err(e) = allowed {
            rt.write_fence.store(false, Ordering::Release);
            store.inner.committed.notify_all();
            return Err(e);
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
    range: Option<KeyRange>,
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

/// What an in-place commit writes: for each key (table, pk), the row it must hold
/// (`None`: absent) and whether the key holds a row now.
#[derive(Default)]
struct Diff(BTreeMap<Key, (Row, bool)>);

impl Diff {
    /// Records that `(table, pk)` must hold `want`, given that it holds `cur` now.
    fn settle(&mut self, table: u64, pk: Vec<u8>, want: Option<Vec<u8>>, cur: Option<Vec<u8>>) {
        if want == cur {
            self.0.remove(&(table, pk));
        } else {
            self.0.insert((table, pk), (want, cur.is_some()));
        }
    }
}

/// Rows per side and step of an in-place restore's merge of two tenants.
const MERGE_CHUNK: usize = 4096;

/// The smallest `pk_enc` bound above `pk` and below every other key: keys are
/// prefix-free, and `0xFF × 9` sorts after any version suffix of `pk`.
fn just_after(pk: &[u8]) -> Vec<u8> {
    let mut b = pk.to_vec();
    b.extend_from_slice(&[0xFF; 9]);
    b
}

/// Merges two key-ordered row lists of one table (`theirs`: what the keys must hold,
/// `ours`: what they hold) into `diff`; returns the keys compared.
fn merge_diff(
    table: u64,
    theirs: Vec<(Vec<u8>, Vec<u8>)>,
    ours: Vec<(Vec<u8>, Vec<u8>)>,
    filter: &ScopeFilter,
    diff: &mut Diff,
) -> u64 {
    let mut examined = 0;
    let mut a = theirs.into_iter().peekable();
    let mut b = ours.into_iter().peekable();
    loop {
        let (pk, want, cur) = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(x), Some(y)) if x.0 == y.0 => {
                let (x, y) = (a.next().unwrap(), b.next().unwrap());
                (x.0, Some(x.1), Some(y.1))
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                let x = a.next().unwrap();
                (x.0, Some(x.1), None)
            }
            (Some(_), None) => {
                let x = a.next().unwrap();
                (x.0, Some(x.1), None)
            }
            _ => {
                let y = b.next().unwrap();
                (y.0, None, Some(y.1))
            }
        };
        if filter.contains(table, &pk) {
            examined += 1;
            diff.settle(table, pk, want, cur);
        }
    }
    examined
}

/// One key an in-place commit changed: whether it holds a row after and held one before.
struct Change {
    table: u64,
    pk: Vec<u8>,
    want: bool,
    cur: bool,
}

/// An in-place commit that was written (or found nothing to write).
struct Committed {
    commit_ts: Option<Ts>,
    changes: Vec<Change>,
    /// The tenant's state just before the commit.
    v1: Ts,
    cat_now: Arc<Catalog>,
    writes_held: Duration,
    /// Keys written while the diff was computed, compared again under the fence.
    fenced_keys: u64,
}

impl Committed {
    /// The report, with per-table counts (`then`: the catalog of the target state).
    #[allow(clippy::too_many_arguments)]
    fn report(
        self,
        store: &Store,
        rec: &TenantRecord,
        (then_tenant, target): (u64, Ts),
        found_by: ChangeSource,
        then: &Catalog,
        started: Instant,
        examined: u64,
    ) -> RevertReport {
        // Rows that come or go with a table's definition (reads of fixed states).
        let count = |tenant_id: u64, table: u64, ts: Ts| -> u64 {
            let rd = ReadAt {
                tenant_id,
                tenant_name: "",
                ts,
                check: false,
            };
            let mut n = 0;
            let _ = store.scan_raw_with(&rd, table, None, None, true, |_, _, _| {
                n += 1;
                Ok(true)
            });
            n
        };
        let mut tables: BTreeMap<String, TableRevert> = BTreeMap::new();
        let now = &*self.cat_now;
        for Change {
            table,
            pk,
            want,
            cur,
        } in &self.changes
        {
            if *table == CATALOG_TABLE {
                let Some(KeyValue::Str(name)) = keys::decode_pk(pk).ok().and_then(|mut k| k.pop())
                else {
                    continue;
                };
                let (a, b) = (then.tables.get(&name), now.tables.get(&name));
                let change = match (a, b) {
                    (Some(_), None) => CatalogRevert::Restored,
                    (None, Some(_)) => CatalogRevert::Dropped,
                    (Some(a), Some(b)) if a.id != b.id => CatalogRevert::Replaced,
                    _ => CatalogRevert::SchemaReverted,
                };
                let id = a.or(b).map_or(0, |t| t.id);
                let e = entry(&mut tables, &name, id);
                e.catalog = Some(change);
                if let (Some(a), Some(b), CatalogRevert::SchemaReverted) = (a, b, change) {
                    let has = |t: &crate::schema::TableDef, c: &str| t.column(c).is_some();
                    e.columns_removed = b
                        .columns
                        .iter()
                        .filter(|c| !has(a, &c.name))
                        .map(|c| c.name.clone())
                        .collect();
                    e.columns_back = a
                        .columns
                        .iter()
                        .filter(|c| !has(b, &c.name))
                        .map(|c| c.name.clone())
                        .collect();
                }
                if self.commit_ts.is_some() {
                    if let (Some(a), CatalogRevert::Restored | CatalogRevert::Replaced) =
                        (a, change)
                    {
                        e.table_rows_back = count(then_tenant, a.id, target);
                    }
                    if let (Some(b), CatalogRevert::Dropped | CatalogRevert::Replaced) = (b, change)
                    {
                        e.table_rows_gone = count(rec.id, b.id, self.v1);
                    }
                }
                continue;
            }
            let name = then
                .table_by_id(*table)
                .or_else(|| now.table_by_id(*table))
                .map_or_else(|| format!("#{table}"), |t| t.name.clone());
            let e = entry(&mut tables, &name, *table);
            match (want, cur) {
                (true, false) => e.rows_restored += 1,
                (true, true) => e.rows_reverted += 1,
                (false, _) => e.rows_removed += 1,
            }
        }
        RevertReport {
            tenant_id: rec.id,
            tenant: rec.name.clone(),
            target_ts: target,
            commit_ts: self.commit_ts,
            found_by,
            keys_examined: examined + self.fenced_keys,
            tables: tables.into_values().collect(),
            writes_held: self.writes_held,
            elapsed: started.elapsed(),
        }
    }
}

fn entry<'a>(
    tables: &'a mut BTreeMap<String, TableRevert>,
    name: &str,
    id: u64,
) -> &'a mut TableRevert {
    tables
        .entry(name.to_string())
        .or_insert_with(|| TableRevert {
            table: name.to_string(),
            table_id: id,
            ..TableRevert::default()
        })
}
