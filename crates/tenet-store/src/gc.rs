//! Garbage collection of old versions and commit-log records, and pins.
//!
//! # Overview
//! Each tenant keeps every version readable for its `history_retention` (default 1 h).
//! A GC round for a tenant picks the safe point `S = min(now - retention, visible ts)`
//! (never lower than the previous one), persists it, and then deletes every version
//! that no read at a ts ≥ `S` or at a *pinned* ts `p < S` can see:
//!
//! * versions newer than `S` are kept;
//! * a version `v` at or below `S` is kept iff it is the newest version `≤ p` for some
//!   `p` in {S} ∪ pins, i.e. `v.ts ≤ p < newer.ts`;
//! * a deletion marker that would be the oldest kept version of its key is dropped too
//!   (a read finds "absent" either way);
//! * versions of a table that exists in the catalog neither at `S` nor at any pin, and
//!   that no catalog version after `S` defines (a revert can bring a dropped table
//!   back with its id), are all dropped (the table was dropped before them).
//!
//! Pins are named snapshots (in the catalog) and explicit pins ([`Store::pin`]) that
//! backups use to hold a ts while they read it. Explicit pins also hold the commit log:
//! log records older than `S` are deleted only below the oldest explicit pin.
//!
//! # Consistency
//! Readers check the safe point after their iterator exists (`read.rs`); GC raises the
//! safe point before deleting. Pins and snapshots are added under the tenant's GC lock
//! after checking the ts is still readable, so GC never collects under a new pin.
//!
//! # Crash consistency
//! Deletions are idempotent; a crashed round leaves some garbage for the next one. The
//! safe point is persisted before any deletion.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rocksdb::{WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};

use crate::catalog::{CATALOG_TABLE, SYSTEM_TENANT, TENANTS_TABLE};
use crate::error::{Error, Result};
use crate::keys::{self, meta, VERSION_DELETE};
use crate::read::ReadAt;
use crate::store::{prefix_read_options, Store};
use crate::tenant::{TenantRef, TenantState, DEFAULT_HISTORY_RETENTION_SECS};
use crate::ts::Ts;

/// Deletions per write batch.
const GC_BATCH: usize = 10_000;

/// An explicit pin: GC keeps the state at `ts` readable and the log after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    pub id: u64,
    pub tenant_id: u64,
    pub ts: Ts,
    /// Who holds it (e.g. `backup:<id>`), for operators.
    pub owner: String,
}

/// What a GC round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcStats {
    pub tenants: u64,
    pub versions_scanned: u64,
    pub versions_deleted: u64,
    pub log_records_deleted: u64,
}

impl GcStats {
    fn add(&mut self, o: GcStats) {
        self.tenants += o.tenants;
        self.versions_scanned += o.versions_scanned;
        self.versions_deleted += o.versions_deleted;
        self.log_records_deleted += o.log_records_deleted;
    }
}

/// Stops the background GC thread when dropped.
#[derive(Debug)]
pub struct GcHandle {
    stop: Arc<(parking_lot::Mutex<bool>, parking_lot::Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for GcHandle {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Store {
    /// Pins `ts` of `tenant` until [`Store::unpin`]: GC keeps the state at `ts` and the
    /// log after it. Fails with `TooOld` if GC already collected below `ts`.
    pub fn pin<'a>(
        &self,
        tenant: impl Into<TenantRef<'a>>,
        ts: Ts,
        owner: &str,
    ) -> Result<PinRecord> {
        let rec = self.resolve(tenant)?;
        let ts = self.read_ts(Some(ts))?;
        let rt = self.runtime(rec.id)?;
        let _gc = rt.gc_lock.lock();
        self.check_readable(&ReadAt {
            tenant_id: rec.id,
            tenant_name: &rec.name,
            ts,
            check: true,
        })?;
        let pin = PinRecord {
            id: self.next_seq(meta::SEQ_PIN, 1)?,
            tenant_id: rec.id,
            ts,
            owner: owner.to_string(),
        };
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.inner.db.put_cf_opt(
            self.cf_meta(),
            meta::pin(rec.id, pin.id),
            serde_json::to_vec(&pin).expect("pins serialize"),
            &wo,
        )?;
        rt.pins.lock().insert(pin.id, pin.clone());
        Ok(pin)
    }

    /// Releases a pin. Unknown pins are ignored (releasing is idempotent).
    pub fn unpin(&self, tenant_id: u64, pin_id: u64) -> Result<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.inner
            .db
            .delete_cf_opt(self.cf_meta(), meta::pin(tenant_id, pin_id), &wo)?;
        if let Ok(rt) = self.runtime(tenant_id) {
            rt.pins.lock().remove(&pin_id);
        }
        Ok(())
    }

    /// The explicit pins of a tenant.
    pub fn pins<'a>(&self, tenant: impl Into<TenantRef<'a>>) -> Result<Vec<PinRecord>> {
        let rec = self.resolve(tenant)?;
        Ok(self
            .runtime(rec.id)?
            .pins
            .lock()
            .values()
            .cloned()
            .collect())
    }

    /// The oldest ts readable in `tenant` (besides pinned ones).
    pub fn safe_point<'a>(&self, tenant: impl Into<TenantRef<'a>>) -> Result<Ts> {
        let rec = self.resolve(tenant)?;
        Ok(self.runtime(rec.id)?.safe_point())
    }

    /// One GC round over every tenant, the system tenant included. Tenants being
    /// restored or dropped are skipped: a restore ingests versions older than the
    /// retention window and reads them back at their backup's ts.
    pub fn run_gc(&self) -> Result<GcStats> {
        let mut total = GcStats::default();
        let mut ids: Vec<u64> = self.tenants().iter().map(|t| t.id).collect();
        ids.push(SYSTEM_TENANT);
        for id in ids {
            match self.gc_tenant(id) {
                Ok(s) => total.add(s),
                // Dropped while we were busy.
                Err(Error::TenantNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Runs [`Store::run_gc`] every `interval` on a background thread.
    pub fn spawn_gc(&self, interval: Duration) -> GcHandle {
        let stop = Arc::new((parking_lot::Mutex::new(false), parking_lot::Condvar::new()));
        let store = self.clone();
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tenet-gc".into())
            .spawn(move || loop {
                {
                    let mut stopped = stop2.0.lock();
                    if !*stopped {
                        stop2.1.wait_for(&mut stopped, interval);
                    }
                    if *stopped {
                        return;
                    }
                }
                match store.run_gc() {
                    Ok(s) => tracing::debug!(?s, "gc round"),
                    Err(e) => tracing::warn!(error = %e, "gc round failed"),
                }
            })
            .expect("spawn gc thread");
        GcHandle {
            stop,
            thread: Some(thread),
        }
    }

    /// One GC round over one tenant (see the module docs).
    pub fn gc_tenant(&self, tenant_id: u64) -> Result<GcStats> {
        let (name, retention_secs) = if tenant_id == SYSTEM_TENANT {
            ("(system)".to_string(), DEFAULT_HISTORY_RETENTION_SECS)
        } else {
            let rec = self
                .tenant_by_id(tenant_id)
                .ok_or_else(|| Error::TenantNotFound(format!("#{tenant_id}")))?;
            if matches!(rec.state, TenantState::Restoring | TenantState::Dropping) {
                return Ok(GcStats::default());
            }
            (rec.name, rec.history_retention_secs)
        };
        let rt = self.runtime(tenant_id)?;
        let _gc = rt.gc_lock.lock();

        let now = self.inner.clock.now_millis();
        // Only versions superseded *before* `now - retention` may go, so the whole
        // millisecond `now - retention` stays readable: the horizon is the last ts of the
        // millisecond before it.
        let horizon =
            Ts::from_millis(now.saturating_sub(retention_secs.saturating_mul(1000))).prev();
        let safe = horizon
            .min(self.tenant_visible_ts(tenant_id))
            .max(rt.safe_point());
        let explicit: Vec<Ts> = rt.pins.lock().values().map(|p| p.ts).collect();
        let rd = |ts| ReadAt {
            tenant_id,
            tenant_name: &name,
            ts,
            check: false,
        };
        let mut points: Vec<Ts> = explicit.clone();
        if tenant_id != SYSTEM_TENANT {
            let latest = self.catalog_at(&rd(self.visible_ts()))?;
            points.extend(latest.snapshots.values().map(|s| s.ts));
        }
        points.retain(|p| *p < safe);
        points.push(safe);
        points.sort_unstable_by(|a, b| b.cmp(a));
        points.dedup();

        // Tables some kept point can see.
        let mut live = vec![CATALOG_TABLE, TENANTS_TABLE];
        if tenant_id != SYSTEM_TENANT {
            live = vec![CATALOG_TABLE];
            for p in &points {
                live.extend(self.catalog_at(&rd(*p))?.tables.values().map(|t| t.id));
            }
            // A table dropped at S may be alive again later: a revert brings a dropped
            // table back with its id and its old versions.
            live.extend(self.tables_defined_after(tenant_id, safe)?);
        }
        live.sort_unstable();
        live.dedup();

        // Raise the safe point before deleting anything.
        self.inner.db.put_cf(
            self.cf_meta(),
            meta::gc_safe_point(tenant_id),
            safe.0.to_be_bytes(),
        )?;
        rt.safe_point.store(safe.0, Ordering::Release);

        let mut stats = GcStats {
            tenants: 1,
            ..Default::default()
        };
        self.collect_versions(tenant_id, safe, &points, &live, &mut stats)?;

        // Log: below the safe point and below every explicit pin.
        let log_cutoff = explicit.iter().copied().fold(safe, Ts::min);
        // Record how far the log is deleted before deleting (never moving back), so
        // `log_complete_after` is exact whatever pins come and go later.
        let previous = Ts(self.get_meta_u64(&meta::log_cut(tenant_id))?.unwrap_or(0));
        if log_cutoff > previous {
            self.inner.db.put_cf(
                self.cf_meta(),
                meta::log_cut(tenant_id),
                log_cutoff.0.to_be_bytes(),
            )?;
        }
        stats.log_records_deleted = self.delete_log_through(tenant_id, log_cutoff)?;
        Ok(stats)
    }

    fn collect_versions(
        &self,
        tenant_id: u64,
        safe: Ts,
        points: &[Ts],
        live: &[u64],
        stats: &mut GcStats,
    ) -> Result<()> {
        let prefix = keys::tenant_prefix(tenant_id);
        let mut it = self.inner.db.raw_iterator_cf_opt(
            self.cf_data(),
            prefix_read_options(prefix.to_vec(), keys::prefix_end(&prefix)),
        );
        it.seek(prefix);
        let mut batch = WriteBatch::default();
        // Versions of the current key, newest first: (key, ts, is_delete).
        let mut versions: Vec<(Vec<u8>, Ts, bool)> = Vec::new();
        let mut current: Vec<u8> = Vec::new();
        loop {
            let next = it.key().map(|k| k.to_vec());
            let same_key =
                matches!(&next, Some(k) if k.len() >= 8 && k[..k.len() - 8] == current[..]);
            if !same_key && !versions.is_empty() {
                let table = u64::from_be_bytes(current[8..16].try_into().expect("16-byte prefix"));
                let table_points: &[Ts] = if live.binary_search(&table).is_ok() {
                    points
                } else {
                    &[]
                };
                let history: Vec<(Ts, bool)> =
                    versions.iter().map(|(_, ts, del)| (*ts, *del)).collect();
                let keep = decide(&history, safe, table_points);
                for ((key, _, _), keep) in versions.drain(..).zip(keep) {
                    if !keep {
                        batch.delete_cf(self.cf_data(), key);
                        stats.versions_deleted += 1;
                    }
                }
                if batch.len() >= GC_BATCH {
                    self.inner.db.write(std::mem::take(&mut batch))?;
                }
            }
            let Some(key) = next else { break };
            let dk = keys::parse_data_key(&key)?;
            let is_delete = it.value().and_then(|v| v.first()) == Some(&VERSION_DELETE);
            let ts = dk.ts;
            if !same_key {
                current = key[..key.len() - 8].to_vec();
            }
            versions.push((key, ts, is_delete));
            stats.versions_scanned += 1;
            it.next();
        }
        it.status()?;
        self.inner.db.write(batch)?;
        Ok(())
    }

    fn delete_log_through(&self, tenant_id: u64, cutoff: Ts) -> Result<u64> {
        let start = keys::log_key(tenant_id, Ts::ZERO);
        let end = keys::log_key(tenant_id, cutoff.next());
        let mut it = self.inner.db.raw_iterator_cf_opt(
            self.cf_log(),
            prefix_read_options(start.to_vec(), Some(end.to_vec())),
        );
        it.seek(start);
        let mut n = 0;
        let mut batch = WriteBatch::default();
        while let Some(k) = it.key() {
            batch.delete_cf(self.cf_log(), k);
            n += 1;
            if batch.len() >= GC_BATCH {
                self.inner.db.write(std::mem::take(&mut batch))?;
            }
            it.next();
        }
        it.status()?;
        self.inner.db.write(batch)?;
        Ok(n)
    }
}

/// Which versions of one key to keep. `versions` are `(ts, is_delete)`, newest first;
impl Store {
    /// Ids of the tables any catalog version newer than `after` defines.
    fn tables_defined_after(&self, tenant_id: u64, after: Ts) -> Result<Vec<u64>> {
        let prefix = keys::table_prefix(tenant_id, CATALOG_TABLE);
        let mut it = self.inner.db.raw_iterator_cf_opt(
            self.cf_data(),
            prefix_read_options(prefix.to_vec(), keys::prefix_end(&prefix)),
        );
        it.seek(prefix);
        let mut ids = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if keys::parse_data_key(k)?.ts > after && v.first() == Some(&keys::VERSION_PUT) {
                if let crate::catalog::CatalogEntry::Table(def) =
                    crate::catalog::decode_entry(&v[1..])?
                {
                    ids.push(def.id);
                }
            }
            it.next();
        }
        it.status()?;
        Ok(ids)
    }
}

/// `points` are the kept read points (`safe` and the pins below it), newest first.
pub(crate) fn decide(versions: &[(Ts, bool)], safe: Ts, points: &[Ts]) -> Vec<bool> {
    let mut keep: Vec<bool> = versions
        .iter()
        .enumerate()
        .map(|(i, &(ts, _))| {
            let newer = if i == 0 { Ts::MAX } else { versions[i - 1].0 };
            ts > safe || points.iter().any(|&p| ts <= p && p < newer)
        })
        .collect();
    // A deletion that is the oldest kept version hides nothing: drop it.
    for (i, &(ts, is_delete)) in versions.iter().enumerate().rev() {
        if !keep[i] {
            continue;
        }
        if is_delete && ts <= safe {
            keep[i] = false;
        } else {
            break;
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_each_point_sees() {
        // Versions at 50 (put), 40 (delete), 30 (put), 20 (put), 10 (put).
        let v = [
            (Ts(50), false),
            (Ts(40), true),
            (Ts(30), false),
            (Ts(20), false),
            (Ts(10), false),
        ];
        // Safe point 45, pin at 25: keep 50 (> safe), 40 (seen at 45), 20 (seen at 25).
        assert_eq!(
            decide(&v, Ts(45), &[Ts(45), Ts(25)]),
            [true, true, false, true, false]
        );
        // No pins: 40 is a deletion with nothing kept below it, so it goes too.
        assert_eq!(
            decide(&v, Ts(45), &[Ts(45)]),
            [true, false, false, false, false]
        );
        // Dropped table: no points, only versions above the safe point stay.
        assert_eq!(decide(&v, Ts(45), &[]), [true, false, false, false, false]);
        // Everything newer than the safe point stays.
        assert_eq!(decide(&v, Ts(5), &[Ts(5)]), [true; 5]);
    }
}
