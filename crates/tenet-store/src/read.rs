//! MVCC reads: the version of a key visible at a ts, range scans at a ts, the catalog at
//! a ts, and the check that a ts is still readable after GC.
//!
//! # Consistency with GC
//! Every read first creates its RocksDB iterator (which pins an implicit snapshot of the
//! database), *then* checks the tenant's safe point. GC raises the safe point before it
//! deletes anything. So a read either sees the raised safe point and fails with
//! `TooOld`, or its iterator predates every deletion of that GC round.

use std::sync::Arc;

use rocksdb::DBRawIterator;

use crate::catalog::{decode_entry, Catalog, CATALOG_TABLE};
use crate::error::{Error, Result};
use crate::gc::PinRecord;
use crate::keys::{self, meta, VERSION_PUT};
use crate::runtime::{CachedCatalog, TenantRuntime};
use crate::store::{bulk_read_options, point_read_options, prefix_read_options, Store};
use crate::ts::Ts;

/// Who reads and at which ts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadAt<'a> {
    pub tenant_id: u64,
    pub tenant_name: &'a str,
    pub ts: Ts,
    /// Check the ts against the GC safe point (off for internal reads at the newest ts).
    pub check: bool,
}

impl Store {
    pub(crate) fn runtime(&self, tenant_id: u64) -> Result<Arc<TenantRuntime>> {
        self.inner
            .runtimes
            .read()
            .get(&tenant_id)
            .cloned()
            .ok_or_else(|| Error::TenantNotFound(format!("#{tenant_id}")))
    }

    /// Reads persisted GC state of a tenant into a new runtime.
    pub(crate) fn load_runtime(&self, tenant_id: u64) -> Result<TenantRuntime> {
        let safe_point = Ts(self
            .get_meta_u64(&meta::gc_safe_point(tenant_id))?
            .unwrap_or(0));
        let prefix = meta::pin_prefix(tenant_id);
        let mut pins = Vec::new();
        let mut it = self.inner.db.raw_iterator_cf_opt(
            self.cf_meta(),
            prefix_read_options(prefix.clone(), keys::prefix_end(&prefix)),
        );
        it.seek(&prefix);
        while let (Some(_), Some(v)) = (it.key(), it.value()) {
            pins.push(
                serde_json::from_slice::<PinRecord>(v).map_err(|e| {
                    Error::Corrupt(format!("pin record of tenant {tenant_id}: {e}"))
                })?,
            );
            it.next();
        }
        it.status()?;
        // The newest catalog change: the largest ts among catalog versions.
        let mut last_ddl = Ts::ZERO;
        let cat = keys::table_prefix(tenant_id, CATALOG_TABLE);
        let mut it = self.inner.db.raw_iterator_cf_opt(
            self.cf_data(),
            prefix_read_options(cat.to_vec(), keys::prefix_end(&cat)),
        );
        it.seek(cat);
        while let Some(k) = it.key() {
            last_ddl = last_ddl.max(keys::parse_data_key(k)?.ts);
            it.next();
        }
        it.status()?;
        let rt = TenantRuntime::new(safe_point, last_ddl, pins);
        if let Some(cap) = self.get_meta_u64(&meta::standby_applied(tenant_id))? {
            rt.applied_cap
                .store(cap, std::sync::atomic::Ordering::Release);
        }
        Ok(rt)
    }

    /// Fails with `TooOld` when `rd.ts` is below the safe point and not pinned.
    pub(crate) fn check_readable(&self, rd: &ReadAt<'_>) -> Result<()> {
        if !rd.check {
            return Ok(());
        }
        let rt = self.runtime(rd.tenant_id)?;
        let oldest = rt.safe_point();
        if rd.ts >= oldest || rt.pins.lock().values().any(|p| p.ts == rd.ts) {
            return Ok(());
        }
        let latest = self.catalog_at(&ReadAt {
            ts: self.visible_ts(),
            check: false,
            ..*rd
        })?;
        if latest.snapshots.values().any(|s| s.ts == rd.ts) {
            return Ok(());
        }
        Err(Error::TooOld {
            tenant: rd.tenant_name.to_string(),
            requested: rd.ts,
            requested_time: rd.ts.to_rfc3339(),
            oldest,
            oldest_time: oldest.to_rfc3339(),
            hint: String::new(),
        })
    }

    /// A reader of many keys at one ts with one RocksDB iterator (cheaper than
    /// [`Store::get_raw`] per key; its implicit snapshot is taken now).
    pub(crate) fn point_reader<'s>(&'s self, rd: &ReadAt<'_>) -> Result<PointReader<'s>> {
        let it = self
            .inner
            .db
            .raw_iterator_cf_opt(self.cf_data(), point_read_options());
        self.check_readable(rd)?;
        Ok(PointReader {
            it,
            tenant_id: rd.tenant_id,
            ts: rd.ts,
            seek: Vec::new(),
        })
    }

    /// The row bytes of `pk_enc` visible at `rd.ts`, or `None` if absent or deleted.
    pub(crate) fn get_raw(
        &self,
        rd: &ReadAt<'_>,
        table: u64,
        pk_enc: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        self.get_raw_with(rd, table, pk_enc, |b| Ok(b.to_vec()))
    }

    /// [`Store::get_raw`], handing the row bytes to `f` while they are the engine's.
    pub(crate) fn get_raw_with<R>(
        &self,
        rd: &ReadAt<'_>,
        table: u64,
        pk_enc: &[u8],
        f: impl FnOnce(&[u8]) -> Result<R>,
    ) -> Result<Option<R>> {
        let mut key_prefix = Vec::with_capacity(16 + pk_enc.len() + 9);
        key_prefix.extend_from_slice(&keys::table_prefix(rd.tenant_id, table));
        key_prefix.extend_from_slice(pk_enc);
        let mut it = self
            .inner
            .db
            .raw_iterator_cf_opt(self.cf_data(), point_read_options());
        self.check_readable(rd)?;
        let mut seek = key_prefix;
        seek.extend_from_slice(&(!rd.ts.0).to_be_bytes());
        it.seek(&seek);
        let found = match (it.key(), it.value()) {
            (Some(k), Some(v))
                if k.len() == seek.len() && k[..k.len() - 8] == seek[..seek.len() - 8] =>
            {
                version_row(v)?.map(f).transpose()?
            }
            _ => None,
        };
        it.status()?;
        Ok(found)
    }

    /// Calls `f(pk_enc, commit_ts, row)` for every row of `table` visible at `rd.ts` with
    /// `from ≤ pk_enc < to`, in key order, until `f` returns false.
    pub(crate) fn scan_raw(
        &self,
        rd: &ReadAt<'_>,
        table: u64,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        f: impl FnMut(&[u8], Ts, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        self.scan_raw_with(rd, table, from, to, false, f)
    }

    /// [`Store::scan_raw`]; with `bulk`, a bulk scan ([`bulk_read_options`]: the blocks
    /// read do not enter the block cache, so it does not evict the foreground's working
    /// set, and files are read ahead in large reads).
    pub(crate) fn scan_raw_with(
        &self,
        rd: &ReadAt<'_>,
        table: u64,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        bulk: bool,
        mut f: impl FnMut(&[u8], Ts, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let prefix = keys::table_prefix(rd.tenant_id, table);
        let with_prefix = |pk: &[u8]| [prefix.as_slice(), pk].concat();
        let lower = from.map_or_else(|| prefix.to_vec(), with_prefix);
        let upper = to.map_or_else(|| keys::prefix_end(&prefix), |pk| Some(with_prefix(pk)));
        let ro = if bulk {
            bulk_read_options(lower.clone(), upper)
        } else {
            prefix_read_options(lower.clone(), upper)
        };
        let mut it = self.inner.db.raw_iterator_cf_opt(self.cf_data(), ro);
        self.check_readable(rd)?;
        it.seek(&lower);
        let mut seek = Vec::new();
        while let Some(k) = it.key() {
            let dk = keys::parse_data_key(k)?;
            if dk.ts > rd.ts {
                // Jump to the newest version at or below the read ts.
                seek.clear();
                seek.extend_from_slice(&k[..k.len() - 8]);
                seek.extend_from_slice(&(!rd.ts.0).to_be_bytes());
                it.seek(&seek);
                continue;
            }
            let pk_len = dk.pk_enc.len();
            if let Some(row) = version_row(it.value().unwrap_or_default())? {
                if !f(dk.pk_enc, dk.ts, row)? {
                    return Ok(());
                }
            }
            // Skip the older versions of this key: step once, seek if still on it.
            seek.clear();
            seek.extend_from_slice(&k[..16 + pk_len]);
            it.next();
            if matches!(it.key(), Some(n) if n.len() == seek.len() + 8 && n.starts_with(&seek)) {
                seek.extend_from_slice(&[0xFF; 8]);
                it.seek(&seek);
                skip_exact(&mut it, &seek);
            }
        }
        it.status()?;
        Ok(())
    }

    /// The catalog of a tenant as of `rd.ts`, from the cache when it is current.
    pub(crate) fn catalog_at(&self, rd: &ReadAt<'_>) -> Result<Arc<Catalog>> {
        let rt = self.runtime(rd.tenant_id)?;
        let last = rt.last_ddl_ts();
        if rd.ts >= last {
            if let Some(c) = rt.catalog.read().as_ref().filter(|c| c.ddl_ts == last) {
                if rd.check && rd.ts < rt.safe_point() {
                    self.check_readable(rd)?;
                }
                return Ok(c.catalog.clone());
            }
        }
        let mut entries = Vec::new();
        self.scan_raw(rd, CATALOG_TABLE, None, None, |_, _, v| {
            entries.push(decode_entry(v)?);
            Ok(true)
        })?;
        let catalog = Arc::new(Catalog::from_entries(entries));
        if rd.ts >= last && rt.last_ddl_ts() == last {
            *rt.catalog.write() = Some(CachedCatalog {
                ddl_ts: last,
                catalog: catalog.clone(),
            });
        }
        Ok(catalog)
    }
}

/// See [`Store::point_reader`].
pub(crate) struct PointReader<'s> {
    it: DBRawIterator<'s>,
    tenant_id: u64,
    ts: Ts,
    seek: Vec<u8>,
}

impl PointReader<'_> {
    /// The row bytes of `(table, pk_enc)` at the reader's ts, or `None`.
    pub fn get(&mut self, table: u64, pk_enc: &[u8]) -> Result<Option<Vec<u8>>> {
        self.seek.clear();
        self.seek
            .extend_from_slice(&keys::table_prefix(self.tenant_id, table));
        self.seek.extend_from_slice(pk_enc);
        self.seek.extend_from_slice(&(!self.ts.0).to_be_bytes());
        self.it.seek(&self.seek);
        let n = self.seek.len();
        let found = match (self.it.key(), self.it.value()) {
            (Some(k), Some(v)) if k.len() == n && k[..n - 8] == self.seek[..n - 8] => {
                version_row(v)?.map(<[u8]>::to_vec)
            }
            _ => None,
        };
        self.it.status()?;
        Ok(found)
    }
}

/// The row of a version value, `None` for a deletion.
pub(crate) fn version_row(value: &[u8]) -> Result<Option<&[u8]>> {
    match value.split_first() {
        Some((&VERSION_PUT, row)) => Ok(Some(row)),
        Some((&keys::VERSION_DELETE, [])) => Ok(None),
        _ => Err(Error::Corrupt(format!(
            "version value with tag {:?}",
            value.first()
        ))),
    }
}

fn skip_exact(it: &mut DBRawIterator<'_>, key: &[u8]) {
    if it.key() == Some(key) {
        it.next();
    }
}
