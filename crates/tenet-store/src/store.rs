//! The store: one RocksDB instance holding every tenant, and the commit pipeline.
//!
//! # Overview
//! Column families `data`, `log` and `meta` (layouts in `keys.rs`). A [`Store`] is a
//! cheap handle (`Arc`) shared by all threads.
//!
//! # Commit pipeline and visibility
//! A commit takes the commit lock, checks the tenant's state and write conflicts
//! (first committer wins: any written key with a version newer than the transaction's
//! start ts, or written by a commit still in flight, aborts it), takes the next HLC ts and
//! registers itself as *pending*. It then writes one RocksDB write batch — data
//! versions + the commit-log record (+ registry row) — outside the lock, so concurrent
//! commits share WAL syncs (RocksDB group commit). New transactions read at the
//! *visible* ts: the newest ts below every pending commit, so a reader never sees a
//! later commit without an earlier one. A commit is acknowledged once the visible ts has
//! reached it, so an acknowledged write is seen by every transaction that starts later.
//!
//! # Durability
//! With `sync_writes` (the default) every write batch is fsynced before it is
//! acknowledged. The clock lease is fsynced before a ts at or past it is handed out.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Options,
    ReadOptions, SliceTransform, WriteBatch, WriteOptions, DB,
};

use crate::catalog::{CATALOG_TABLE, FIRST_USER_TABLE_ID, SYSTEM_TENANT, TENANTS_TABLE};
use crate::clock::{Clock, Hlc, SystemClock};
use crate::commit_log::{LogRecord, Mutation};
use crate::error::{Error, Result};
use crate::keys::{self, meta, VERSION_DELETE, VERSION_PUT};
use crate::latency::Foreground;
use crate::lifecycle::{self, TenantAction};
use crate::runtime::TenantRuntime;
use crate::tenant::{decode_record, Registry, RegistryChange, TenantState};
use crate::ts::Ts;

pub(crate) const CF_DATA: &str = "data";
pub(crate) const CF_LOG: &str = "log";
pub(crate) const CF_META: &str = "meta";

/// Options for opening a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Source of physical time.
    pub clock: Arc<dyn Clock>,
    /// fsync every commit before acknowledging it (default true).
    pub sync_writes: bool,
    /// RocksDB block cache size.
    pub block_cache_bytes: usize,
    /// Log replay batches (restores) at least this large are ingested as SST files
    /// instead of written through the WAL and memtable.
    pub replay_ingest_min_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            clock: Arc::new(SystemClock),
            sync_writes: true,
            block_cache_bytes: 128 << 20,
            replay_ingest_min_bytes: 4 << 20,
        }
    }
}

/// How long a commit waits for a tenant's write fence (an in-place commit) before it
/// fails with a retryable conflict.
pub const FENCE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The result of a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    pub commit_ts: Ts,
}

impl CommitInfo {
    pub fn commit_time(&self) -> String {
        self.commit_ts.to_rfc3339()
    }
}

/// A handle to an open store.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

pub(crate) struct Inner {
    pub db: DB,
    /// Options of the `data` family (for building SST files to ingest).
    pub data_opts: Options,
    /// Options of the `log` family (for building SST files to ingest).
    pub log_opts: Options,
    pub clock: Arc<dyn Clock>,
    pub sync: bool,
    pub replay_ingest_min_bytes: usize,
    pub path: PathBuf,
    pub commit: Mutex<CommitState>,
    pub committed: Condvar,
    /// Newest ts at which every commit is complete; what new transactions read.
    pub visible: AtomicU64,
    pub registry: RwLock<Registry>,
    pub runtimes: RwLock<HashMap<u64, Arc<TenantRuntime>>>,
    /// Serializes sequence allocation.
    pub seq: Mutex<()>,
    /// Commits of user tenants since the store opened (for metrics).
    pub commits: AtomicU64,
    /// How long the tenants' commits and reads take (`latency.rs`).
    pub foreground: Foreground,
}

pub(crate) struct CommitState {
    pub hlc: Hlc,
    pending: BTreeSet<Ts>,
    /// Keys (`table_prefix | pk_enc`) written by pending commits, with counts.
    inflight: HashMap<Vec<u8>, u32>,
}

/// See [`Store::memory`].
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreMemory {
    pub memtables: u64,
    pub table_readers: u64,
    pub block_cache: u64,
}

/// What a transaction hands to the commit pipeline.
pub(crate) struct CommitRequest {
    pub tenant_id: u64,
    pub tenant_name: String,
    pub start_ts: Ts,
    /// Sorted by (table, pk), one per key.
    pub mutations: Vec<Mutation>,
    /// Keys read whose change since `start_ts` must abort the commit (catalog rows of
    /// the tables written).
    pub conflict_keys: Vec<(u64, Vec<u8>)>,
    /// Registry changes (system tenant only), applied in order as one commit; the flag
    /// stamps `created_ts`.
    pub registry: Vec<(RegistryChange, bool)>,
}

/// RocksDB options shared by the store and the raw-RocksDB benchmark baseline.
pub fn rocksdb_options(block_cache_bytes: usize) -> (Options, Options) {
    let mut db = Options::default();
    db.create_if_missing(true);
    db.create_missing_column_families(true);
    db.increase_parallelism(2);
    db.set_max_background_jobs(2);
    let mut cf = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&Cache::new_lru_cache(block_cache_bytes));
    table.set_bloom_filter(10.0, false);
    cf.set_block_based_table_factory(&table);
    cf.set_compression_type(DBCompressionType::Lz4);
    cf.set_write_buffer_size(64 << 20);
    (db, cf)
}

impl Store {
    /// Opens (or creates) the store in `path`. Fails with a clear error when another
    /// process holds it.
    pub fn open(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path).map_err(|e| Error::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let (db_opts, cf_opts) = rocksdb_options(opts.block_cache_bytes);
        let data_opts = data_cf_options(&cf_opts);
        let cfs = [CF_DATA, CF_LOG, CF_META].into_iter().map(|name| {
            let opts = if name == CF_DATA {
                data_opts.clone()
            } else {
                cf_opts.clone()
            };
            ColumnFamilyDescriptor::new(name, opts)
        });
        let db = DB::open_cf_descriptors(&db_opts, path.join("db"), cfs).map_err(|e| {
            let msg = e.to_string();
            let reason = if msg.contains("lock") {
                "it is in use by another process (is `tenet serve` running on it? the CLI \
                 talks to it when its server.json answers, or give --server; else stop it)"
                    .to_string()
            } else {
                msg
            };
            Error::Open {
                path: path.display().to_string(),
                reason,
            }
        })?;
        let lease = read_u64(&db, meta::CLOCK_LEASE)?.unwrap_or(0);
        let hlc = Hlc::resume(lease);
        let visible = hlc.last();
        let store = Store {
            inner: Arc::new(Inner {
                db,
                data_opts,
                log_opts: cf_opts.clone(),
                clock: opts.clock,
                sync: opts.sync_writes,
                replay_ingest_min_bytes: opts.replay_ingest_min_bytes,
                path,
                commit: Mutex::new(CommitState {
                    hlc,
                    pending: BTreeSet::new(),
                    inflight: HashMap::new(),
                }),
                committed: Condvar::new(),
                visible: AtomicU64::new(visible.0),
                registry: RwLock::new(Registry::default()),
                runtimes: RwLock::new(HashMap::new()),
                seq: Mutex::new(()),
                commits: AtomicU64::new(0),
                foreground: Foreground::default(),
            }),
        };
        store.load_registry()?;
        store.finish_interrupted_reverts()?;
        // Finish drops that a crash interrupted.
        let dropping: Vec<u64> = store
            .tenants()
            .into_iter()
            .filter(|t| t.state == TenantState::Dropping)
            .map(|t| t.id)
            .collect();
        for id in dropping {
            tracing::info!(tenant_id = id, "finishing interrupted tenant drop");
            store.finish_drop(id)?;
        }
        Ok(store)
    }

    /// Whether `path` holds a store (one [`Store::open`] created). Read-only tools check
    /// this first, so a mistyped directory does not become a new, empty store.
    pub fn exists(path: impl AsRef<Path>) -> bool {
        path.as_ref().join("db").join("CURRENT").is_file()
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The clock the store runs on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    fn load_registry(&self) -> Result<()> {
        let mut records = Vec::new();
        let rd = crate::read::ReadAt {
            tenant_id: SYSTEM_TENANT,
            tenant_name: "(system)",
            ts: Ts::MAX,
            check: false,
        };
        self.scan_raw(&rd, TENANTS_TABLE, None, None, |_, _, row| {
            records.push(decode_record(row)?);
            Ok(true)
        })?;
        let mut reg = self.inner.registry.write();
        for rec in records {
            let runtime = self.load_runtime(rec.id)?;
            if rec.state != crate::tenant::TenantState::Standby {
                // Left by a promotion that a crash interrupted after its state change.
                runtime.applied_cap.store(0, Ordering::Release);
            }
            self.inner
                .runtimes
                .write()
                .insert(rec.id, Arc::new(runtime));
            reg.apply(&RegistryChange::Upsert(rec));
        }
        let system = self.load_runtime(SYSTEM_TENANT)?;
        self.inner
            .runtimes
            .write()
            .insert(SYSTEM_TENANT, Arc::new(system));
        Ok(())
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.inner.db.cf_handle(name).expect("column family exists")
    }
    pub(crate) fn cf_data(&self) -> &ColumnFamily {
        self.cf(CF_DATA)
    }
    pub(crate) fn cf_log(&self) -> &ColumnFamily {
        self.cf(CF_LOG)
    }
    pub(crate) fn cf_meta(&self) -> &ColumnFamily {
        self.cf(CF_META)
    }

    pub(crate) fn write_options(&self) -> WriteOptions {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.inner.sync);
        wo
    }

    /// Allocates `n` consecutive values of a persisted sequence; returns the first.
    pub(crate) fn next_seq(&self, key: &[u8], n: u64) -> Result<u64> {
        let _guard = self.inner.seq.lock();
        let floor = if key == meta::SEQ_TABLE {
            FIRST_USER_TABLE_ID
        } else {
            1
        };
        let next = self.get_meta_u64(key)?.unwrap_or(floor).max(floor);
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.inner
            .db
            .put_cf_opt(self.cf_meta(), key, (next + n).to_be_bytes(), &wo)?;
        Ok(next)
    }

    pub(crate) fn get_meta_u64(&self, key: &[u8]) -> Result<Option<u64>> {
        match self.inner.db.get_cf(self.cf_meta(), key)? {
            None => Ok(None),
            Some(v) => Ok(Some(u64::from_be_bytes(v.as_slice().try_into().map_err(
                |_| {
                    Error::Corrupt(format!(
                        "meta value of {} is not 8 bytes",
                        String::from_utf8_lossy(key)
                    ))
                },
            )?))),
        }
    }

    /// The ts new transactions read at.
    pub fn visible_ts(&self) -> Ts {
        Ts(self.inner.visible.load(Ordering::Acquire))
    }

    /// The newest ts at which every commit of `tenant_id` is complete: the visible ts,
    /// or just below an in-place commit of the tenant that is still being written.
    /// For a standby, its applied ts (`standby.rs`).
    pub fn tenant_visible_ts(&self, tenant_id: u64) -> Ts {
        let visible = self.visible_ts();
        let Ok(rt) = self.runtime(tenant_id) else {
            return visible;
        };
        let visible = rt.applied_cap().map_or(visible, |cap| cap.min(visible));
        match rt.read_barrier() {
            Some(barrier) if barrier <= visible => barrier.prev(),
            _ => visible,
        }
    }

    /// Waits until a read of `tenant_id` at `ts` sees only complete commits: while an
    /// in-place commit at or below `ts` is being written, reads at `ts` wait for it.
    pub(crate) fn await_read_barrier(&self, tenant_id: u64, ts: Ts) -> Result<()> {
        let Ok(rt) = self.runtime(tenant_id) else {
            return Ok(());
        };
        if rt.read_barrier().is_none_or(|b| b > ts) {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + FENCE_WAIT;
        let mut st = self.inner.commit.lock();
        while rt.read_barrier().is_some_and(|b| b <= ts) {
            if std::time::Instant::now() >= deadline {
                return Err(Error::Conflict(format!(
                    "tenant #{tenant_id} is being put back in place at {ts} (for longer than {} \
                     s); read an earlier time or retry",
                    FENCE_WAIT.as_secs()
                )));
            }
            self.inner
                .committed
                .wait_for(&mut st, std::time::Duration::from_millis(50));
        }
        Ok(())
    }

    /// Called under the commit lock: while the tenant's writes are fenced (an in-place
    /// commit is being prepared), waits up to [`FENCE_WAIT`]; then gives up with a
    /// retryable conflict.
    fn wait_write_fence(
        &self,
        tenant_id: u64,
        tenant_name: &str,
        st: &mut parking_lot::MutexGuard<'_, CommitState>,
    ) -> Result<()> {
        let Ok(rt) = self.runtime(tenant_id) else {
            return Ok(());
        };
        // Every commit of every tenant wakes the waiters: measure, do not count wakes.
        let deadline = std::time::Instant::now() + FENCE_WAIT;
        while rt.write_fence.load(Ordering::Acquire) {
            if std::time::Instant::now() >= deadline {
                return Err(Error::Conflict(format!(
                    "tenant `{tenant_name}` is being put back in place (a revert holds its \
                     writes for longer than {} s)",
                    FENCE_WAIT.as_secs()
                )));
            }
            self.inner.committed.wait_until(
                st,
                deadline.min(std::time::Instant::now() + std::time::Duration::from_millis(50)),
            );
        }
        Ok(())
    }

    /// The current time as a ts (the clock's milliseconds, last logical value).
    pub fn now_ts(&self) -> Ts {
        Ts::end_of_millis(self.inner.clock.now_millis())
    }

    /// The time `ago` before the clock's now, as the last ts of its millisecond.
    pub fn ts_ago(&self, ago: std::time::Duration) -> Ts {
        let ago = u64::try_from(ago.as_millis()).unwrap_or(u64::MAX);
        Ts::end_of_millis(self.inner.clock.now_millis().saturating_sub(ago))
    }

    /// A ts to read at: the visible ts, or `as_of` once every commit at or below it is
    /// complete.
    ///
    /// # Reads never push the clock
    /// A read of a time after the current time (the clock, or the newest visible commit
    /// when the clock runs behind it after a crash) is refused: the state of the future
    /// is not known, and accepting it would have to move the commit clock ahead of the
    /// wall clock for every tenant (persisted across restarts). A read of a time up to
    /// the current time that no commit has reached yet makes later commits newer than it
    /// (so reading it again gives the same answer); that moves the clock at most to the
    /// wall clock, where the next commit would take it anyway.
    pub(crate) fn read_ts(&self, as_of: Option<Ts>) -> Result<Ts> {
        let visible = self.visible_ts();
        let Some(ts) = as_of else { return Ok(visible) };
        if ts <= visible {
            return Ok(ts);
        }
        let now = self.inner.clock.now_millis().max(visible.millis());
        let newest = Ts::end_of_millis(now).max(visible);
        if ts > newest {
            return Err(Error::invalid(format!(
                "{ts} ({}) is in the future; the newest readable time is {} ({newest})",
                ts.to_rfc3339(),
                newest.to_rfc3339()
            )));
        }
        // Make every later commit newer than `ts`, then wait for earlier ones.
        let mut st = self.inner.commit.lock();
        if let Some(lease) = st.hlc.observe(ts) {
            self.persist_lease(lease)?;
        }
        self.publish_visible(&st);
        while self.visible_ts() < ts {
            self.inner.committed.wait(&mut st);
        }
        Ok(ts)
    }

    pub(crate) fn persist_lease(&self, lease: u64) -> Result<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.inner
            .db
            .put_cf_opt(self.cf_meta(), meta::CLOCK_LEASE, lease.to_be_bytes(), &wo)?;
        Ok(())
    }

    pub(crate) fn publish_visible(&self, st: &CommitState) {
        let v = st
            .pending
            .first()
            .map(|p| p.prev())
            .unwrap_or(st.hlc.last());
        self.inner.visible.fetch_max(v.0, Ordering::AcqRel);
    }

    /// Runs the commit pipeline (see the module docs).
    pub(crate) fn commit(&self, req: CommitRequest) -> Result<CommitInfo> {
        let user = req.tenant_id != SYSTEM_TENANT;
        let info = self.commit_request(req)?;
        if user {
            self.inner.commits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(info)
    }

    /// The latency of the tenants' commits and point reads, for pacing background
    /// work (`latency.rs`).
    pub fn foreground(&self) -> &Foreground {
        &self.inner.foreground
    }

    /// Commits of user tenants since the store opened.
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// Bytes the store takes on disk: SST files, plus memtables not yet flushed.
    pub fn size_bytes(&self) -> u64 {
        self.sum_property("rocksdb.total-sst-files-size")
            + self.sum_property("rocksdb.cur-size-all-mem-tables")
    }

    /// Compacts the `data` family into its last level, every tenant's versions of a key
    /// side by side (RocksDB does this over time on its own; benchmarks call it to
    /// measure a settled store). Blocks until done; the store stays online.
    pub fn compact_data(&self) {
        self.inner
            .db
            .compact_range_cf(self.cf_data(), None::<&[u8]>, None::<&[u8]>);
    }

    /// Memory RocksDB holds, by what holds it (bytes, over the three families):
    /// memtables, table readers (index and filter blocks outside the block cache) and
    /// the block cache in use (one cache, shared).
    pub fn memory(&self) -> StoreMemory {
        StoreMemory {
            memtables: self.sum_property("rocksdb.cur-size-all-mem-tables"),
            table_readers: self.sum_property("rocksdb.estimate-table-readers-mem"),
            block_cache: self
                .inner
                .db
                .property_int_value_cf(self.cf_data(), "rocksdb.block-cache-usage")
                .ok()
                .flatten()
                .unwrap_or(0),
        }
    }

    fn sum_property(&self, name: &str) -> u64 {
        [self.cf_data(), self.cf_log(), self.cf_meta()]
            .into_iter()
            .map(|cf| {
                self.inner
                    .db
                    .property_int_value_cf(cf, name)
                    .ok()
                    .flatten()
                    .unwrap_or(0)
            })
            .sum()
    }

    fn commit_request(&self, mut req: CommitRequest) -> Result<CommitInfo> {
        let inner = &self.inner;
        let mut st = inner.commit.lock();

        if req.tenant_id != SYSTEM_TENANT {
            self.wait_write_fence(req.tenant_id, &req.tenant_name, &mut st)?;
            if self
                .runtime(req.tenant_id)
                .is_ok_and(|rt| rt.moving.load(Ordering::Acquire))
            {
                return Err(Error::TenantMoving(req.tenant_name.clone()));
            }
            let reg = inner.registry.read();
            let rec = reg
                .get(req.tenant_id)
                .ok_or_else(|| Error::TenantNotFound(req.tenant_name.clone()))?;
            let snapshot_only = req
                .mutations
                .iter()
                .all(|m| m.table_id == CATALOG_TABLE && crate::catalog::is_snapshot_key(&m.pk_enc));
            let action = if snapshot_only {
                TenantAction::WriteSnapshot
            } else {
                TenantAction::Write
            };
            lifecycle::check(rec, action)?;
        }
        if !req.registry.is_empty() {
            // A tenant being put back in place changes state or goes away only after.
            for (change, _) in &req.registry {
                let name = match change {
                    RegistryChange::Upsert(rec) => rec.name.clone(),
                    RegistryChange::Remove(id) => format!("#{id}"),
                };
                self.wait_write_fence(change.tenant_id(), &name, &mut st)?;
            }
            // Each change is checked against the registry the earlier ones leave.
            let mut after = inner.registry.read().clone();
            for (change, _) in &req.registry {
                after.check(change)?;
                after.apply(change);
            }
        }

        // First committer wins.
        let mut conflict_check: Vec<Vec<u8>> = req
            .mutations
            .iter()
            .map(|m| inflight_key(req.tenant_id, m.table_id, &m.pk_enc))
            .chain(
                req.conflict_keys
                    .iter()
                    .map(|(table, pk)| inflight_key(req.tenant_id, *table, pk)),
            )
            .collect();
        conflict_check.sort();
        conflict_check.dedup();
        if req.start_ts != Ts::MAX && !conflict_check.is_empty() {
            let mut it = inner
                .db
                .raw_iterator_cf_opt(self.cf_data(), point_read_options());
            let mut newest = Vec::new();
            for key in &conflict_check {
                if st.inflight.contains_key(key) {
                    return Err(conflict(req.tenant_name.as_str(), key, None));
                }
                // The newest version of `key` sorts first (its ts is stored inverted).
                newest.clear();
                newest.extend_from_slice(key);
                newest.extend_from_slice(&[0; 8]);
                it.seek(&newest);
                if let Some(found) = it.key() {
                    if found.len() == key.len() + 8 && found.starts_with(key) {
                        let ts = keys::parse_data_key(found)?.ts;
                        if ts > req.start_ts {
                            return Err(conflict(req.tenant_name.as_str(), key, Some(ts)));
                        }
                    }
                }
            }
            it.status()?;
        }

        let (ts, lease) = st.hlc.next(inner.clock.now_millis());
        if let Some(lease) = lease {
            self.persist_lease(lease)?;
        }

        let mut undo = Vec::new();
        let registry_changes = !req.registry.is_empty();
        for (mut change, created) in std::mem::take(&mut req.registry) {
            if let (RegistryChange::Upsert(rec), true) = (&mut change, created) {
                rec.created_ts = ts;
            }
            let reverse = inner.registry.write().apply(&change);
            if let RegistryChange::Remove(id) = reverse {
                // A new tenant: give it its runtime before anyone can see it.
                inner
                    .runtimes
                    .write()
                    .entry(id)
                    .or_insert_with(|| Arc::new(TenantRuntime::default()));
            }
            undo.push(reverse);
            req.mutations.push(change.mutation());
        }
        if registry_changes {
            // One version per key, in key order: a later change of a tenant wins.
            let mut by_key = std::collections::BTreeMap::new();
            for m in std::mem::take(&mut req.mutations) {
                by_key.insert((m.table_id, m.pk_enc.clone()), m);
            }
            req.mutations = by_key.into_values().collect();
        }

        let record = LogRecord {
            tenant_id: req.tenant_id,
            commit_ts: ts,
            mutations: std::mem::take(&mut req.mutations),
        };
        let mut batch = WriteBatch::default();
        let cf_data = self.cf_data();
        let mut value = Vec::new();
        for m in &record.mutations {
            value.clear();
            match &m.value {
                Some(row) => {
                    value.push(VERSION_PUT);
                    value.extend_from_slice(row);
                }
                None => value.push(VERSION_DELETE),
            }
            batch.put_cf(
                cf_data,
                keys::data_key(req.tenant_id, m.table_id, &m.pk_enc, ts),
                &value,
            );
        }
        batch.put_cf(
            self.cf_log(),
            keys::log_key(req.tenant_id, ts),
            record.encode(),
        );

        if record.has_ddl() && req.tenant_id != SYSTEM_TENANT {
            if let Some(rt) = inner.runtimes.read().get(&req.tenant_id) {
                rt.last_ddl_ts.store(ts.0, Ordering::Release);
            }
        }
        let written: Vec<Vec<u8>> = record
            .mutations
            .iter()
            .map(|m| inflight_key(req.tenant_id, m.table_id, &m.pk_enc))
            .collect();
        for k in &written {
            *st.inflight.entry(k.clone()).or_insert(0) += 1;
        }
        st.pending.insert(ts);
        drop(st);

        let result = inner.db.write_opt(batch, &self.write_options());

        let mut st = inner.commit.lock();
        st.pending.remove(&ts);
        for k in written {
            if let Some(n) = st.inflight.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    st.inflight.remove(&k);
                }
            }
        }
        if result.is_err() {
            let mut reg = inner.registry.write();
            for change in undo.iter().rev() {
                reg.apply(change);
            }
        }
        self.publish_visible(&st);
        inner.committed.notify_all();
        result?;
        while self.visible_ts() < ts {
            inner.committed.wait(&mut st);
        }
        Ok(CommitInfo { commit_ts: ts })
    }
}

impl Drop for Inner {
    /// Persists the lease as one millisecond past the newest issued ts, so a clean
    /// restart does not jump the clock ahead.
    fn drop(&mut self) {
        let lease = self.commit.get_mut().hlc.last().millis() + 1;
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        if let Some(cf) = self.db.cf_handle(CF_META) {
            if let Err(e) = self
                .db
                .put_cf_opt(cf, meta::CLOCK_LEASE, lease.to_be_bytes(), &wo)
            {
                tracing::warn!(error = %e, "could not persist the clock lease on close");
            }
        }
    }
}

fn inflight_key(tenant: u64, table: u64, pk_enc: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + pk_enc.len());
    k.extend_from_slice(&keys::table_prefix(tenant, table));
    k.extend_from_slice(pk_enc);
    k
}

fn conflict(tenant: &str, key: &[u8], ts: Option<Ts>) -> Error {
    let table = u64::from_be_bytes(key[8..16].try_into().expect("16-byte prefix"));
    let what = if table == CATALOG_TABLE {
        "the catalog (a table or snapshot this transaction uses) was changed".to_string()
    } else {
        let pk = keys::decode_pk(&key[16..])
            .map(|k| crate::schema::pk_json(&k).to_string())
            .unwrap_or_else(|_| "?".into());
        format!("key {pk} of table id {table} was written")
    };
    match ts {
        Some(ts) => Error::Conflict(format!(
            "in tenant `{tenant}`, {what} by a transaction that committed at {ts} after this one started"
        )),
        None => Error::Conflict(format!(
            "in tenant `{tenant}`, {what} by a concurrent transaction that is committing"
        )),
    }
}

fn read_u64(db: &DB, key: &[u8]) -> Result<Option<u64>> {
    let cf = db.cf_handle(CF_META).expect("meta column family");
    match db.get_cf(cf, key)? {
        None => Ok(None),
        Some(v) => {
            Ok(Some(u64::from_be_bytes(v.as_slice().try_into().map_err(
                |_| Error::Corrupt("clock lease is not 8 bytes".into()),
            )?)))
        }
    }
}

/// Options of the `data` family: the shared ones plus bloom filters on
/// `tenant | table | pk` (the key without its ts), so a point read seeks only the files
/// that hold versions of its key. SST files built for ingestion use them too.
fn data_cf_options(shared: &Options) -> Options {
    let mut opts = shared.clone();
    opts.set_prefix_extractor(SliceTransform::create(
        "tenet.strip_ts",
        strip_ts,
        Some(has_ts),
    ));
    opts
}

/// The `data` prefix extractor: a version key without its 8-byte commit ts.
fn strip_ts(key: &[u8]) -> &[u8] {
    &key[..key.len() - 8]
}

fn has_ts(key: &[u8]) -> bool {
    key.len() >= 24
}

/// Read options for seeks that stay within the versions of one key
/// (`tenant | table | pk`); the seek key must be a full version key.
pub(crate) fn point_read_options() -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.set_prefix_same_as_start(true);
    ro
}

/// Read options bounded to `[lower, upper)`, in total order (across keys; the `data`
/// family's prefix extractor must not restrict range scans).
pub(crate) fn prefix_read_options(lower: Vec<u8>, upper: Option<Vec<u8>>) -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.set_total_order_seek(true);
    ro.set_iterate_lower_bound(lower);
    if let Some(upper) = upper {
        ro.set_iterate_upper_bound(upper);
    }
    ro
}

/// How far ahead a bulk scan reads its files: one read of this many bytes instead of
/// one `pread` per 4 KiB block.
pub(crate) const BULK_READAHEAD: usize = 2 << 20;

/// [`prefix_read_options`] for a bulk scan of rows (a backup's export, a restore's
/// verify, a revert's diff): its blocks stay out of the block cache, which holds
/// the tenants' working set, and its files are read [`BULK_READAHEAD`] at a time. The
/// read-ahead matters where the files are not in the page cache: a restore's verify
/// scans SST files that RocksDB's SST writer has just dropped from it (it advises
/// `DONTNEED` as it writes; the C API has no switch), which block by block made the
/// verify the slower half of a restore. `docs/plan-foreground.md` has the figures.
pub(crate) fn bulk_read_options(lower: Vec<u8>, upper: Option<Vec<u8>>) -> ReadOptions {
    let mut ro = prefix_read_options(lower, upper);
    ro.fill_cache(false);
    ro.set_readahead_size(BULK_READAHEAD);
    ro
}
