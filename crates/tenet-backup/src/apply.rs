//! The log applier: a source tenant's archived log segments applied to a target tenant
//! strictly in commit order. Point-in-time restore uses it after ingesting a full
//! backup (`restore.rs`: plan → ingest full → apply log → verify → activate); a standby
//! will use the same applier to follow its source.
//!
//! # Overview
//! Input: the log ranges to apply (from the restore planner's coverage of the
//! repository), the resume point (the last applied ts), the end ts, and the table-id
//! mapping source → target (identity for an in-place restore's scratch tenant).
//! Segments are downloaded and decoded [`AHEAD`] at a time, in parallel, and handed in
//! order (a bounded reorder buffer) to one applier, which rewrites tenant and table ids
//! (a table the log creates gets a new id — or keeps its own, with `identity` — and the
//! mapping is persisted before use) and writes each segment's records in one batch
//! (`Store::apply_log` into a restoring tenant; `Store::follow_log` into a standby,
//! which persists the applied ts in the same write).
//!
//! # Consistency
//! A segment whose start is after the last applied ts is a gap: refused. Records at or
//! below the resume point, or after the end, are skipped. Named snapshots in the log are
//! dropped (an applied tenant has no snapshots of its source).
//!
//! # Crash consistency
//! After every segment the [`ApplySink`] persists the last applied ts (and the count)
//! with one synced write, which also makes the segment's unsynced batch durable.
//! Re-applying a record is harmless (versions carry their commit ts), so a resumed
//! apply continues after the persisted ts and redoes at most one segment.
//!
//! # Cancellation and throttling
//! The sink's `throttle` is awaited before each download's bytes count, and the
//! cancel token is checked between segments.

use std::collections::BTreeMap;
use std::future::Future;

use tenet_jobs::CancelToken;
use tenet_store::catalog::{decode_entry, encode_entry, is_snapshot_key, CATALOG_TABLE};
use tenet_store::{CatalogEntry, LogRecord, Store, Ts};

use crate::error::{Error, Result};
use crate::planner::LogRange;
use crate::repo::Repo;
use crate::segment::read_segment;
use crate::util::blocking;

/// How many segments are downloaded and decoded ahead of the applier.
pub(crate) const AHEAD: usize = 4;

/// Where an apply reports to: throttling, progress and its durable checkpoint.
pub(crate) trait ApplySink: Sync {
    /// Waits until `bytes` more may be read (the job's throttle).
    fn throttle(&self, bytes: u64) -> impl Future<Output = Result<()>> + Send;
    /// Persists, with a synced write, that everything up to `applied` is applied
    /// (`records` in all), and counts `new_records` / `logical_bytes` as progress.
    fn applied(
        &self,
        applied: Ts,
        records: u64,
        new_records: u64,
        logical_bytes: u64,
    ) -> Result<()>;
    /// Persists a changed table-id mapping before it is used.
    fn mapping_changed(&self, mapping: &BTreeMap<u64, u64>) -> Result<()>;
}

/// What to apply, and into what.
pub(crate) struct LogApply<'a> {
    pub store: &'a Store,
    pub repo: &'a Repo,
    pub source_tenant_id: u64,
    pub target_id: u64,
    /// Table ids are kept (an in-place restore's scratch tenant, a standby).
    pub identity: bool,
    /// The target is a standby: records go in with [`Store::follow_log`], which also
    /// persists the applied ts (else [`Store::apply_log`] into a restoring tenant).
    pub follow: bool,
    pub cancel: &'a CancelToken,
}

/// Where an apply stands: the last applied ts and the records applied so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Applied {
    pub ts: Ts,
    pub records: u64,
}

impl LogApply<'_> {
    /// Applies `ranges` in order from `from` (exclusive) through `to`; returns where it
    /// stands and the logical bytes (keys and rows) applied by this call.
    pub async fn run(
        &self,
        sink: &impl ApplySink,
        ranges: &[LogRange],
        mapping: &mut BTreeMap<u64, u64>,
        from: Applied,
        to: Ts,
    ) -> Result<(Applied, u64)> {
        use futures::StreamExt;
        let mut at = from;
        let mut logical_total = 0u64;
        let pending: Vec<LogRange> = ranges.iter().filter(|l| l.end > at.ts).cloned().collect();
        let source = self.source_tenant_id;
        let mut segments = futures::stream::iter(pending.into_iter().map(|l| async move {
            self.cancel.check()?;
            let bytes = self.repo.get(&l.key).await?;
            sink.throttle(bytes.len() as u64).await?;
            let bytes = crate::keys::open_object(self.store, self.repo, &l.key, bytes).await?;
            let object = self.repo.describe(&l.key);
            let (info, recs) = blocking(move || read_segment(&object, source, &bytes)).await?;
            if (info.start, info.end) != (l.start, l.end) {
                return Err(Error::Corrupt {
                    object: self.repo.describe(&l.key),
                    reason: format!(
                        "holds ({}, {}], its name says ({}, {}]",
                        info.start, info.end, l.start, l.end
                    ),
                });
            }
            Ok::<_, Error>((l, recs))
        }))
        .buffered(AHEAD);
        while let Some(next) = segments.next().await {
            let (l, recs) = next?;
            self.cancel.check()?;
            if l.start > at.ts {
                return Err(Error::NotRestorable(format!(
                    "the log has a gap between {} and {}",
                    at.ts, l.start
                )));
            }
            let mut batch = Vec::new();
            for r in recs {
                if r.commit_ts > at.ts && r.commit_ts <= to {
                    batch.push(self.rewrite(sink, r, mapping)?);
                }
            }
            let n = batch.len() as u64;
            let logical = batch
                .iter()
                .flat_map(|r| &r.mutations)
                .map(|m| (m.pk_enc.len() + m.value.as_ref().map_or(0, Vec::len)) as u64)
                .sum::<u64>();
            let (store, target, follow) = (self.store.clone(), self.target_id, self.follow);
            let through = l.end.min(to);
            blocking(move || {
                if follow {
                    store.follow_log(target, &batch, through)?;
                } else {
                    store.apply_log(target, &batch)?;
                }
                Ok(())
            })
            .await?;
            at = Applied {
                ts: through,
                records: at.records + n,
            };
            logical_total += logical;
            sink.applied(at.ts, at.records, n, logical)?;
        }
        Ok((at, logical_total))
    }

    /// Rewrites a source commit record for the target: tenant id, table ids (a table
    /// the log creates gets a new id, or keeps its own with `identity`; the mapping is
    /// persisted before it is used), and drops named snapshots.
    fn rewrite(
        &self,
        sink: &impl ApplySink,
        mut r: LogRecord,
        mapping: &mut BTreeMap<u64, u64>,
    ) -> Result<LogRecord> {
        r.tenant_id = self.target_id;
        let mut out = Vec::with_capacity(r.mutations.len());
        for mut m in std::mem::take(&mut r.mutations) {
            if m.table_id == CATALOG_TABLE {
                if is_snapshot_key(&m.pk_enc) {
                    continue;
                }
                if let Some(v) = &m.value {
                    if let CatalogEntry::Table(mut def) = decode_entry(v)? {
                        def.id = match mapping.get(&def.id) {
                            Some(id) => *id,
                            None => {
                                let id = if self.identity {
                                    def.id
                                } else {
                                    self.store.allocate_table_ids(1)?
                                };
                                mapping.insert(def.id, id);
                                sink.mapping_changed(mapping)?;
                                id
                            }
                        };
                        m.value = Some(encode_entry(&CatalogEntry::Table(def)));
                    }
                }
            } else if !self.identity {
                m.table_id = *mapping.get(&m.table_id).ok_or_else(|| {
                    Error::Internal(format!(
                        "the log at {} writes table id {} that neither the backup nor the log \
                         defines",
                        r.commit_ts, m.table_id
                    ))
                })?;
            }
            out.push(m);
        }
        r.mutations = out;
        Ok(r)
    }
}
