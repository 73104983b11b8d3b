//! The narrow interface backup and restore use (ARCHITECTURE §3): read a tenant at a
//! ts, find split points for shards, allocate ids, bulk-ingest versions as SST files,
//! and the system tables that hold jobs and backup records.
//!
//! Everything here works on tenant and table *ids* and raw encodings (`pk_enc`, row
//! bytes), so another engine could implement the same operations.
//!
//! # Ingestion
//! A restore builds one SST file per data file with [`Store::build_sst`] (keys in
//! ascending order, one version per key, each with its original commit ts) and hands
//! them to [`Store::ingest`], which only accepts tenants in the `restoring` state — the
//! only tenants nobody else reads or writes. Ingesting the same versions twice is
//! harmless (same keys, same values), which makes a resumed restore simple.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rocksdb::{IngestExternalFileOptions, SstFileWriter, WriteOptions};

use crate::catalog::{Catalog, CATALOG_TABLE, SYSTEM_TENANT, TENANTS_TABLE};
use crate::commit_log::Mutation;
use crate::error::{Error, Result};
use crate::keys::{self, meta, VERSION_DELETE, VERSION_PUT};
use crate::read::ReadAt;
use crate::store::{CommitInfo, CommitRequest, Store};
use crate::ts::Ts;

/// System table of job records (system tenant), keyed by job id.
pub const JOBS_TABLE: u64 = 2;
/// System table of backup records (system tenant), keyed by backup id.
pub const BACKUPS_TABLE: u64 = 3;
/// System table of log archivers (system tenant), keyed by tenant id.
pub const ARCHIVES_TABLE: u64 = 4;
/// System table of dropped tenants (system tenant), keyed by tenant id: the name a
/// tenant had when it was dropped, so its backups stay reachable by that name.
pub const DROPPED_TABLE: u64 = 5;
/// System table of standby followers (system tenant), keyed by the standby's id.
pub const STANDBYS_TABLE: u64 = 6;
/// System table of named repositories (system tenant), keyed by name.
pub const REPOS_TABLE: u64 = 7;
/// System table of protection strategies (system tenant), keyed by tenant id; key 0
/// (the system tenant, which has none) holds the default for every other tenant.
pub const STRATEGIES_TABLE: u64 = 8;
/// System table of the scheduler's runs (system tenant), keyed by (tenant id, kind).
pub const SCHEDULES_TABLE: u64 = 9;
/// System table of API tokens (system tenant), keyed by token id.
pub const TOKENS_TABLE: u64 = 10;
/// System table of the audit log (system tenant), keyed by (ms, seq).
pub const AUDIT_TABLE: u64 = 11;
/// System table of wrapped data keys (system tenant), keyed by (repository, history,
/// key id).
pub const KEYS_TABLE: u64 = 12;
/// System table of finished job tasks' outputs (system tenant), keyed by (job id,
/// phase, task id): rows of their own, so a job of many tasks never rewrites a
/// growing record.
pub const JOB_TASKS_TABLE: u64 = 13;

/// One row of [`Store::system_write`]: (system table, key, value or None to delete).
pub type SystemWrite<'a> = (u64, &'a [u8], Option<&'a [u8]>);

/// Names temporary replay SST files uniquely within the process.
static INGEST_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const SYSTEM_ROW_V1: u8 = 1;

/// Encodes a row of a general system table: `0x01 | JSON`.
pub fn encode_system_row<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![SYSTEM_ROW_V1];
    serde_json::to_writer(&mut out, value).expect("system rows serialize");
    out
}

/// Decodes a row written by [`encode_system_row`]; `what` names it in errors.
pub fn decode_system_row<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&SYSTEM_ROW_V1, json)) => {
            serde_json::from_slice(json).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
        }
        Some((v, _)) => Err(Error::Corrupt(format!(
            "{what} has version {v}; this build reads version {SYSTEM_ROW_V1}"
        ))),
        None => Err(Error::Corrupt(format!("empty {what}"))),
    }
}

/// What [`Store::build_sst`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SstInfo {
    pub path: PathBuf,
    pub entries: u64,
    /// Newest commit ts among the versions.
    pub max_ts: Ts,
}

impl Store {
    /// Calls `f(pk_enc, commit_ts, row)` for every row of table `table_id` of tenant
    /// `tenant_id` visible at `ts` with `from ≤ pk_enc < to`, in key order, until `f`
    /// returns false. Refuses a `ts` that GC has collected (pin it first). Works on
    /// tenants in any state (restore verifies its target while it is `restoring`).
    /// A bulk scan: blocks read do not enter the block cache, and files are read ahead.
    pub fn scan_at(
        &self,
        tenant_id: u64,
        table_id: u64,
        ts: Ts,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        f: impl FnMut(&[u8], Ts, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let name = self.tenant_label(tenant_id);
        self.await_read_barrier(tenant_id, ts)?;
        let rd = ReadAt {
            tenant_id,
            tenant_name: &name,
            ts,
            check: true,
        };
        self.scan_raw_with(&rd, table_id, from, to, true, f)
    }

    /// The catalog of a tenant at `ts` (any state).
    pub fn catalog_at_ts(&self, tenant_id: u64, ts: Ts) -> Result<Arc<Catalog>> {
        let name = self.tenant_label(tenant_id);
        self.await_read_barrier(tenant_id, ts)?;
        self.catalog_at(&ReadAt {
            tenant_id,
            tenant_name: &name,
            ts,
            check: true,
        })
    }

    fn tenant_label(&self, tenant_id: u64) -> String {
        self.tenant_by_id(tenant_id)
            .map(|t| t.name)
            .unwrap_or_else(|| format!("#{tenant_id}"))
    }

    /// Boundaries (`pk_enc`s, ascending) that split a table into pieces of roughly
    /// `target_bytes` on disk, taken from the first keys of the table's SST files. Data
    /// still in memtables is not counted, so a small or fresh table gets no boundary.
    pub fn split_points(
        &self,
        tenant_id: u64,
        table_id: u64,
        target_bytes: u64,
    ) -> Result<Vec<Vec<u8>>> {
        let prefix = keys::table_prefix(tenant_id, table_id);
        let mut starts: Vec<(Vec<u8>, u64)> = Vec::new();
        for f in self.inner.db.live_files()? {
            if f.column_family_name != crate::store::CF_DATA {
                continue;
            }
            let Some(start) = f.start_key.as_deref() else {
                continue;
            };
            let in_table = start.starts_with(&prefix)
                || f.end_key.as_deref().is_some_and(|e| e.starts_with(&prefix));
            if !in_table {
                continue;
            }
            let pk = if start.starts_with(&prefix) && start.len() >= 24 {
                start[16..start.len() - 8].to_vec()
            } else {
                Vec::new()
            };
            starts.push((pk, f.size as u64));
        }
        starts.sort();
        // Walk the files in key order; cut before a file once enough bytes precede it.
        let mut points = Vec::new();
        let mut acc = 0u64;
        for (pk, size) in starts {
            if acc >= target_bytes && !pk.is_empty() && points.last() != Some(&pk) {
                points.push(pk);
                acc = 0;
            }
            acc += size;
        }
        Ok(points)
    }

    /// Allocates `n` new, never used table ids; returns the first.
    pub fn allocate_table_ids(&self, n: u64) -> Result<u64> {
        self.next_seq(meta::SEQ_TABLE, n)
    }

    /// Every table id handed out so far is below this (the table-id sequence; table
    /// ids are store-wide, so this bounds every tenant's).
    pub fn table_ids_below(&self) -> Result<u64> {
        Ok(self
            .get_meta_u64(meta::SEQ_TABLE)?
            .unwrap_or(crate::catalog::FIRST_USER_TABLE_ID))
    }

    /// Makes sure the table-id sequence never hands out `id` or anything below it
    /// (ids a standby's source defined, `standby.rs`).
    pub fn reserve_table_ids_through(&self, id: u64) -> Result<()> {
        let _guard = self.inner.seq.lock();
        let next = self
            .get_meta_u64(meta::SEQ_TABLE)?
            .unwrap_or(crate::catalog::FIRST_USER_TABLE_ID);
        if next <= id {
            let mut wo = WriteOptions::default();
            wo.set_sync(true);
            self.inner.db.put_cf_opt(
                self.cf_meta(),
                meta::SEQ_TABLE,
                (id + 1).to_be_bytes(),
                &wo,
            )?;
        }
        Ok(())
    }

    /// GC has deleted no commit record of the tenant newer than this ts, so the log
    /// after it is complete. GC records this point before it deletes, so a caller that
    /// checks before and after reading knows nothing it read past was missing.
    pub fn log_complete_after(&self, tenant_id: u64) -> Result<Ts> {
        self.runtime(tenant_id)?;
        Ok(Ts(self
            .get_meta_u64(&meta::log_cut(tenant_id))?
            .unwrap_or(0)))
    }

    /// A new, never used job id.
    pub fn next_job_id(&self) -> Result<u64> {
        self.next_seq(meta::SEQ_JOB, 1)
    }

    /// Writes versions of one table of one tenant into a new SST file at `path` for
    /// [`Store::ingest`]. `fill` calls the given emitter once per version, in ascending
    /// `pk_enc` order; `None` as row writes a deletion.
    pub fn build_sst(
        &self,
        path: &Path,
        tenant_id: u64,
        table_id: u64,
        fill: impl FnOnce(&mut dyn FnMut(&[u8], Ts, Option<&[u8]>) -> Result<()>) -> Result<()>,
    ) -> Result<SstInfo> {
        let mut writer = SstFileWriter::create(&self.inner.data_opts);
        writer.open(path)?;
        let mut info = SstInfo {
            path: path.to_path_buf(),
            ..SstInfo::default()
        };
        let mut last: Option<Vec<u8>> = None;
        let mut value = Vec::new();
        fill(&mut |pk_enc, ts, row| {
            let key = keys::data_key(tenant_id, table_id, pk_enc, ts);
            if last.as_ref().is_some_and(|l| *l >= key) {
                return Err(Error::Corrupt(format!(
                    "versions for table id {table_id} are not in ascending key order"
                )));
            }
            value.clear();
            match row {
                Some(r) => {
                    value.push(VERSION_PUT);
                    value.extend_from_slice(r);
                }
                None => value.push(VERSION_DELETE),
            }
            writer.put(&key, &value)?;
            info.entries += 1;
            info.max_ts = info.max_ts.max(ts);
            last = Some(key);
            Ok(())
        })?;
        if info.entries > 0 {
            writer.finish()?;
        }
        Ok(info)
    }

    /// Ingests SST files built by [`Store::build_sst`] into a tenant that is
    /// `restoring` (RocksDB moves the files into the database). Files with no entries
    /// are skipped. If catalog versions were ingested, the tenant's catalog is reloaded.
    pub fn ingest(&self, tenant_id: u64, files: &[SstInfo]) -> Result<()> {
        self.check_restoring(tenant_id)?;
        let paths: Vec<&Path> = files
            .iter()
            .filter(|f| f.entries > 0)
            .map(|f| f.path.as_path())
            .collect();
        if paths.is_empty() {
            return Ok(());
        }
        let mut opts = IngestExternalFileOptions::default();
        opts.set_move_files(true);
        self.inner
            .db
            .ingest_external_file_cf_opts(self.cf_data(), &opts, paths)?;
        Ok(())
    }

    /// Replays commit records (already rewritten to `tenant_id` and its table ids)
    /// into a `restoring` tenant: their versions at their original commit ts, and the
    /// records themselves into the tenant's log, in one write batch. Catalog changes
    /// take effect for reads at once. Re-applying a record is harmless. The batch is
    /// not fsynced: it is durable once any later write is (the caller's progress
    /// record, written with sync, does that).
    pub fn apply_log(
        &self,
        tenant_id: u64,
        records: &[crate::commit_log::LogRecord],
    ) -> Result<()> {
        self.check_restoring(tenant_id)?;
        self.write_replayed(tenant_id, records, None)
    }

    /// Writes replayed records' versions and log entries; with `applied`, also a
    /// standby's applied ts in the same write, synced (`standby.rs`).
    pub(crate) fn write_replayed(
        &self,
        tenant_id: u64,
        records: &[crate::commit_log::LogRecord],
        applied: Option<Ts>,
    ) -> Result<()> {
        // Large batches go in as SST files (no WAL, no memtable); small ones as a
        // write batch.
        let mut data: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut log: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut ddl = Ts::ZERO;
        let mut bytes = 0usize;
        for r in records {
            if r.tenant_id != tenant_id {
                return Err(Error::invalid(format!(
                    "a record of tenant #{} cannot be replayed into #{tenant_id}",
                    r.tenant_id
                )));
            }
            for m in &r.mutations {
                let mut value = Vec::with_capacity(1 + m.value.as_ref().map_or(0, Vec::len));
                match &m.value {
                    Some(row) => {
                        value.push(VERSION_PUT);
                        value.extend_from_slice(row);
                    }
                    None => value.push(VERSION_DELETE),
                }
                let key = keys::data_key(tenant_id, m.table_id, &m.pk_enc, r.commit_ts);
                bytes += key.len() + value.len();
                data.push((key, value));
            }
            let enc = r.encode();
            bytes += enc.len();
            log.push((keys::log_key(tenant_id, r.commit_ts).to_vec(), enc));
            if r.has_ddl() {
                ddl = ddl.max(r.commit_ts);
            }
        }
        let mut batch = rocksdb::WriteBatch::default();
        if bytes >= self.inner.replay_ingest_min_bytes {
            if let Some(ts) = applied {
                // Ingested files are durable before the applied ts is written: a crash
                // in between must be known to a promotion (`standby.rs`).
                let mut wo = WriteOptions::default();
                wo.set_sync(true);
                self.inner.db.put_cf_opt(
                    self.cf_meta(),
                    meta::standby_ingest(tenant_id),
                    ts.0.to_be_bytes(),
                    &wo,
                )?;
            }
            self.ingest_sorted(tenant_id, data, log)?;
        } else {
            for (k, v) in &data {
                batch.put_cf(self.cf_data(), k, v);
            }
            for (k, v) in &log {
                batch.put_cf(self.cf_log(), k, v);
            }
        }
        let mut wo = WriteOptions::default();
        if let Some(ts) = applied {
            batch.put_cf(
                self.cf_meta(),
                meta::standby_applied(tenant_id),
                ts.0.to_be_bytes(),
            );
            wo.set_sync(true);
        }
        // Without `applied`, not fsynced here: the caller persists its progress
        // afterwards with a synced write, which makes every earlier one durable too.
        if !batch.is_empty() {
            self.inner.db.write_opt(batch, &wo)?;
        }
        if ddl > Ts::ZERO {
            self.reload_catalog(tenant_id, ddl)?;
        }
        Ok(())
    }

    /// Refuses bulk writes unless the tenant is `restoring` (see `lifecycle.rs`).
    fn check_restoring(&self, tenant_id: u64) -> Result<()> {
        let rec = self
            .tenant_by_id(tenant_id)
            .ok_or_else(|| Error::TenantNotFound(format!("#{tenant_id}")))?;
        crate::lifecycle::check(&rec, crate::lifecycle::TenantAction::Ingest)
    }

    /// Writes sorted copies of `data` and `log` entries as SST files and ingests them
    /// (files are fsynced by RocksDB when ingested).
    fn ingest_sorted(
        &self,
        tenant_id: u64,
        mut data: Vec<(Vec<u8>, Vec<u8>)>,
        mut log: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<()> {
        let dir = self.path().join("tmp");
        std::fs::create_dir_all(&dir)?;
        let n = INGEST_SEQ.fetch_add(1, Ordering::Relaxed);
        for (rows, cf, opts, name) in [
            (&mut data, self.cf_data(), &self.inner.data_opts, "data"),
            (&mut log, self.cf_log(), &self.inner.log_opts, "log"),
        ] {
            if rows.is_empty() {
                continue;
            }
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            rows.dedup_by(|a, b| a.0 == b.0);
            let path = dir.join(format!("replay-{tenant_id}-{n}-{name}.sst"));
            let mut w = SstFileWriter::create(opts);
            w.open(&path)?;
            for (k, v) in rows.iter() {
                w.put(k, v)?;
            }
            w.finish()?;
            let mut io = IngestExternalFileOptions::default();
            io.set_move_files(true);
            self.inner
                .db
                .ingest_external_file_cf_opts(cf, &io, vec![&path])?;
        }
        Ok(())
    }

    /// After catalog versions were ingested: makes the tenant's catalog cache see them.
    pub fn reload_catalog(&self, tenant_id: u64, ddl_ts: Ts) -> Result<()> {
        let rt = self.runtime(tenant_id)?;
        rt.last_ddl_ts.fetch_max(ddl_ts.0, Ordering::AcqRel);
        *rt.catalog.write() = None;
        Ok(())
    }

    /// Makes every later commit ts larger than `ts` and reads at "latest" see it: used
    /// before activating a restore whose versions came from a store whose clock ran
    /// ahead of this one.
    pub fn advance_clock(&self, ts: Ts) -> Result<()> {
        let st = &mut *self.inner.commit.lock();
        if let Some(lease) = st.hlc.observe(ts) {
            self.persist_lease(lease)?;
        }
        self.publish_visible(st);
        Ok(())
    }

    /// Makes `ts` the oldest readable time of a tenant (a restored tenant has no
    /// history before its backup).
    pub fn set_history_start(&self, tenant_id: u64, ts: Ts) -> Result<()> {
        let rt = self.runtime(tenant_id)?;
        let _gc = rt.gc_lock.lock();
        let ts = ts.max(rt.safe_point());
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.inner.db.put_cf_opt(
            self.cf_meta(),
            meta::gc_safe_point(tenant_id),
            ts.0.to_be_bytes(),
            &wo,
        )?;
        rt.safe_point.store(ts.0, Ordering::Release);
        Ok(())
    }

    /// Writes (`Some`) or deletes (`None`) the row `key` of system table `table`.
    pub fn system_put(&self, table: u64, key: &[u8], value: Option<&[u8]>) -> Result<CommitInfo> {
        check_system_table(table)?;
        self.commit(CommitRequest {
            tenant_id: SYSTEM_TENANT,
            tenant_name: String::new(),
            start_ts: Ts::MAX,
            mutations: vec![Mutation {
                table_id: table,
                pk_enc: key.to_vec(),
                value: value.map(<[u8]>::to_vec),
            }],
            conflict_keys: Vec::new(),
            registry: Vec::new(),
        })
    }

    /// The row `key` of system table `table`.
    pub fn system_get(&self, table: u64, key: &[u8]) -> Result<Option<Vec<u8>>> {
        check_system_table(table)?;
        self.get_raw(&system_read(self.visible_ts()), table, key)
    }

    /// Writes (`Some`) or deletes (`None`) several rows of system tables in one commit:
    /// all or none of them.
    pub fn system_write(&self, rows: &[SystemWrite<'_>]) -> Result<CommitInfo> {
        for (table, _, _) in rows {
            check_system_table(*table)?;
        }
        self.commit(CommitRequest {
            tenant_id: SYSTEM_TENANT,
            tenant_name: String::new(),
            start_ts: Ts::MAX,
            mutations: rows
                .iter()
                .map(|(table, key, value)| Mutation {
                    table_id: *table,
                    pk_enc: key.to_vec(),
                    value: value.map(<[u8]>::to_vec),
                })
                .collect(),
            conflict_keys: Vec::new(),
            registry: Vec::new(),
        })
    }

    /// Every row of system table `table`, in key order.
    pub fn system_scan(&self, table: u64) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.system_scan_prefix(table, &[])
    }

    /// The rows of system table `table` whose key starts with `prefix`, in key order.
    pub fn system_scan_prefix(&self, table: u64, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        check_system_table(table)?;
        let end = crate::keys::prefix_end(prefix);
        let mut rows = Vec::new();
        self.scan_raw(
            &system_read(self.visible_ts()),
            table,
            (!prefix.is_empty()).then_some(prefix),
            if prefix.is_empty() {
                None
            } else {
                end.as_deref()
            },
            |k, _, v| {
                rows.push((k.to_vec(), v.to_vec()));
                Ok(true)
            },
        )?;
        Ok(rows)
    }
}

fn system_read(ts: Ts) -> ReadAt<'static> {
    ReadAt {
        tenant_id: SYSTEM_TENANT,
        tenant_name: "(system)",
        ts,
        check: false,
    }
}

fn check_system_table(table: u64) -> Result<()> {
    if table == CATALOG_TABLE
        || table == TENANTS_TABLE
        || table >= crate::catalog::FIRST_USER_TABLE_ID
    {
        return Err(Error::invalid(format!(
            "{table} is not a general system table; use {JOBS_TABLE} (jobs), {BACKUPS_TABLE} (backups) or {ARCHIVES_TABLE} (archivers)"
        )));
    }
    Ok(())
}
