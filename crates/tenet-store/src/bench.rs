//! A plain RocksDB database with the store's options, used by `tenet bench` as the
//! baseline Tenet's figures are compared with (this crate is the only one linking
//! RocksDB).

use std::path::Path;

use rocksdb::perf::{set_perf_stats, PerfContext, PerfMetric, PerfStatsLevel};
use rocksdb::{ReadOptions, WriteBatch, WriteOptions, DB};

use crate::error::Result;
use crate::store::rocksdb_options;

/// Raw RocksDB with the same options and durability setting as the store.
#[derive(Debug)]
pub struct RawDb {
    db: DB,
    sync: bool,
}

impl RawDb {
    pub fn open(path: &Path, sync: bool) -> Result<RawDb> {
        // The default column family, configured like the store's `data` family.
        let (_, mut opts) = rocksdb_options(128 << 20);
        opts.create_if_missing(true);
        opts.increase_parallelism(2);
        opts.set_max_background_jobs(2);
        Ok(RawDb {
            db: DB::open(&opts, path)?,
            sync,
        })
    }

    /// Writes all pairs in one write batch.
    pub fn write(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (k, v) in pairs {
            batch.put(k, v);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// The first key at or after `key`, through an iterator (what a versioned read does).
    pub fn seek(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut it = self.db.raw_iterator();
        it.seek(key);
        let found = it.key().map(<[u8]>::to_vec);
        it.status()?;
        Ok(found)
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_opt(key, &ReadOptions::default())?)
    }

    /// Compacts the whole database into its last level (as [`crate::Store::compact_data`]).
    pub fn compact(&self) {
        self.db.compact_range(None::<&[u8]>, None::<&[u8]>);
    }
}

/// Data blocks touched per call of `f` over `n` calls on this thread, from RocksDB's
/// per-thread perf counters: `(read from the file, found in the block cache)`.
pub fn blocks_per_call<E>(
    n: u64,
    mut f: impl FnMut() -> std::result::Result<(), E>,
) -> std::result::Result<(f64, f64), E> {
    set_perf_stats(PerfStatsLevel::EnableCount);
    let mut ctx = PerfContext::default();
    ctx.reset();
    let run = (0..n).try_for_each(|_| f());
    let per = |m| ctx.metric(m) as f64 / n as f64;
    let blocks = (
        per(PerfMetric::BlockReadCount),
        per(PerfMetric::BlockCacheHitCount),
    );
    set_perf_stats(PerfStatsLevel::Disable);
    run.map(|()| blocks)
}
