//! A plain RocksDB database with the store's options, used by `tenet bench` as the
//! baseline Tenet's figures are compared with (this crate is the only one linking
//! RocksDB).

use std::path::Path;

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
}
