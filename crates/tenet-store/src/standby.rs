//! Standby tenants, as the store sees them: a tenant in state `standby` receives its
//! source's commit records (from the repository, `tenet-backup`'s `standby.rs`) and is
//! readable, time travel included, up to the ts they are applied through — never past.
//!
//! # The applied ts
//! [`Store::follow_log`] writes a batch of records (their versions at their original
//! commit ts, and the records into the tenant's own log) together with the meta key
//! `standby/<tenant>` = the ts they are applied through, in one synced write. So the
//! applied ts and the data agree after any crash, and a follower resumes after it.
//! (A large batch goes in as SST files first, after a synced mark `standby-ingest/`
//! naming its end; the applied ts is written after them. A crash in between leaves
//! versions above the applied ts that no read of the standby sees and the resumed
//! follower writes again; a promotion below the mark is refused, since promoting
//! would make them visible.)
//!
//! Reads of a standby are capped at the applied ts: "latest" reads read at it
//! ([`Store::tenant_visible_ts`]), and an explicit time past it is refused with the
//! applied ts in the message, because versions up to that time may still arrive.
//!
//! # Ids and clocks
//! A standby keeps its source's table ids (tenants never share table-id space, so this
//! is safe in the source's own store too), and the store's table-id sequence is moved
//! past every id a followed record defines, so a table created after promotion never
//! reuses one. The clock is advanced past every applied ts, so the first commit after
//! promotion is newer than everything the source committed.
//!
//! # Transitions
//! `restoring → standby` ([`Store::begin_standby`], when its restore ends),
//! `standby → active` ([`Store::promote_standby`]), and `active → standby`
//! ([`Store::demote_to_standby`], the old primary in a switchover). Each writes the
//! applied ts and the state so that a crash between the two is harmless: the cap is
//! written before a tenant becomes a standby, and ignored (zeroed at open) once
//! it is not one.

use std::sync::atomic::Ordering;

use rocksdb::WriteOptions;

use crate::catalog::{decode_entry, CatalogEntry, CATALOG_TABLE};
use crate::commit_log::LogRecord;
use crate::error::{Error, Result};
use crate::keys::meta;
use crate::lifecycle::{self, TenantAction};
use crate::store::{CommitInfo, Store};
use crate::tenant::{HistoryRef, RegistryChange, TenantRecord, TenantState};
use crate::ts::Ts;

impl Store {
    /// A standby's applied ts (`None`: the tenant is not a standby).
    pub fn standby_applied(&self, tenant_id: u64) -> Option<Ts> {
        self.runtime(tenant_id).ok()?.applied_cap()
    }

    /// How far a standby's data may reach: its applied ts, or further if a crash
    /// interrupted a large apply after its files were ingested (their versions stay
    /// invisible while it is a standby, and would not once promoted).
    pub fn standby_written_through(&self, tenant_id: u64) -> Ts {
        let mark = self
            .get_meta_u64(&meta::standby_ingest(tenant_id))
            .ok()
            .flatten()
            .map_or(Ts::ZERO, Ts);
        mark.max(self.standby_applied(tenant_id).unwrap_or(Ts::ZERO))
    }

    /// Refuses a read of a standby past its applied ts.
    pub(crate) fn check_applied(&self, rec: &TenantRecord, ts: Ts) -> Result<()> {
        match self.standby_applied(rec.id) {
            Some(applied) if ts > applied => Err(Error::invalid(format!(
                "standby `{}` has applied its source's log up to {applied} ({}); {ts} ({}) \
                 is not applied yet: read at or before {applied}, or wait",
                rec.name,
                applied.to_rfc3339(),
                ts.to_rfc3339()
            ))),
            _ => Ok(()),
        }
    }

    /// Applies a source's commit records (already rewritten to this tenant) to a
    /// standby, through `through` (≥ every record's commit ts): see the module header.
    pub fn follow_log(&self, tenant_id: u64, records: &[LogRecord], through: Ts) -> Result<()> {
        let rec = self
            .tenant_by_id(tenant_id)
            .ok_or_else(|| Error::TenantNotFound(format!("#{tenant_id}")))?;
        lifecycle::check(&rec, TenantAction::Follow)?;
        if let Some(r) = records.iter().find(|r| r.commit_ts > through) {
            return Err(Error::invalid(format!(
                "a record at {} is past the applied ts {through}",
                r.commit_ts
            )));
        }
        let mut max_table = 0u64;
        for m in records.iter().flat_map(|r| &r.mutations) {
            if m.table_id == CATALOG_TABLE {
                if let Some(CatalogEntry::Table(def)) =
                    m.value.as_deref().map(decode_entry).transpose()?
                {
                    max_table = max_table.max(def.id);
                }
            }
        }
        if max_table > 0 {
            self.reserve_table_ids_through(max_table)?;
        }
        self.advance_clock(through)?;
        self.write_replayed(tenant_id, records, Some(through))?;
        self.runtime(tenant_id)?
            .applied_cap
            .fetch_max(through.0, Ordering::AcqRel);
        Ok(())
    }

    /// Makes a `restoring` tenant a standby whose source's log is applied through
    /// `applied`.
    pub fn begin_standby(&self, tenant_id: u64, applied: Ts) -> Result<TenantRecord> {
        let mut rec = self.resolve(tenant_id)?;
        match rec.state {
            TenantState::Standby => return Ok(rec),
            TenantState::Restoring => {}
            other => {
                return Err(Error::invalid(format!(
                    "tenant `{}` is {other}; only a tenant being restored becomes a standby",
                    rec.name
                )))
            }
        }
        self.advance_clock(applied)?;
        self.set_applied(tenant_id, Some(applied))?;
        rec.state = TenantState::Standby;
        self.commit_registry(RegistryChange::Upsert(rec), false)?;
        self.resolve(tenant_id)
    }

    /// Makes a standby `active` (writable) at its applied ts, which it returns; with
    /// `history`, the tenant continues that history from now on (`None` keeps it).
    pub fn promote_standby(
        &self,
        tenant_id: u64,
        history: Option<Option<HistoryRef>>,
    ) -> Result<(TenantRecord, Ts)> {
        let mut rec = self.resolve(tenant_id)?;
        if rec.state != TenantState::Standby {
            return Err(Error::invalid(format!(
                "tenant `{}` is {}, not a standby; only a standby can be promoted",
                rec.name, rec.state
            )));
        }
        let applied = self.standby_applied(tenant_id).unwrap_or(Ts::ZERO);
        self.advance_clock(applied)?;
        rec.state = TenantState::Active;
        if let Some(h) = history {
            rec.history = h;
        }
        // The state first: a crash before the cap is removed leaves an active tenant
        // whose cap the next open ignores.
        self.commit_registry(RegistryChange::Upsert(rec), false)?;
        self.set_applied(tenant_id, None)?;
        self.inner
            .db
            .delete_cf(self.cf_meta(), meta::standby_ingest(tenant_id))?;
        Ok((self.resolve(tenant_id)?, applied))
    }

    /// Makes an `active` tenant a standby of its own history, applied through `at`
    /// (the old primary of a switchover: its writes are fenced and every commit it made
    /// is at or below `at`, which is where its history's archive ends, so the new
    /// primary's commits all come after it). Idempotent.
    pub fn demote_to_standby(&self, tenant_id: u64, at: Ts) -> Result<()> {
        let mut rec = self.resolve(tenant_id)?;
        if rec.state == TenantState::Standby {
            return Ok(());
        }
        lifecycle::check(&rec, TenantAction::Write)?;
        // The cap first: a crash before the state change leaves an active tenant
        // whose cap the next open ignores.
        self.set_applied(tenant_id, Some(at))?;
        rec.state = TenantState::Standby;
        if let Err(e) = self.commit_registry(RegistryChange::Upsert(rec), false) {
            self.set_applied(tenant_id, None)?;
            return Err(e);
        }
        Ok(())
    }

    /// Swaps the names of two tenants in one commit (a promoted standby taking its
    /// source's name from the source that stepped down).
    pub fn swap_names(&self, a: u64, b: u64) -> Result<CommitInfo> {
        let (ra, rb) = (self.resolve(a)?, self.resolve(b)?);
        let rename = |r: &TenantRecord, name: &str| {
            let mut r = r.clone();
            r.name = name.to_string();
            (RegistryChange::Upsert(r), false)
        };
        self.commit_system(
            Vec::new(),
            vec![
                rename(&ra, &format!(".swap-{}", ra.id)),
                rename(&rb, &ra.name),
                rename(&ra, &rb.name),
            ],
        )
    }

    /// Refuses the tenant's commits with `TenantMoving` from now on (a switchover), and
    /// returns a ts that every commit it accepted before is at or below, once they are
    /// all visible.
    pub fn fence_moving(&self, tenant_id: u64) -> Result<Ts> {
        let rt = self.runtime(tenant_id)?;
        rt.moving.store(true, Ordering::Release);
        // Commits and in-place commits (reverts) check the flag under the commit lock:
        // once we hold it, every later one is refused. A revert that got past it first
        // holds the write fence until its commit is written: wait for it. Then the ts
        // of every accepted commit is at most the newest issued.
        let deadline = std::time::Instant::now() + crate::store::FENCE_WAIT;
        let last = {
            let mut st = self.inner.commit.lock();
            while rt.write_fence.load(Ordering::Acquire) {
                if std::time::Instant::now() >= deadline {
                    drop(st);
                    rt.moving.store(false, Ordering::Release);
                    return Err(Error::Conflict(format!(
                        "tenant #{tenant_id} is being put back in place (a revert holds its \
                         writes); switch over when it is done"
                    )));
                }
                self.inner.committed.wait_until(
                    &mut st,
                    std::time::Instant::now() + std::time::Duration::from_millis(50),
                );
            }
            st.hlc.last()
        };
        self.read_ts(Some(last))
    }

    /// Accepts the tenant's commits again (a switchover ended or failed).
    pub fn unfence_moving(&self, tenant_id: u64) {
        if let Ok(rt) = self.runtime(tenant_id) {
            rt.moving.store(false, Ordering::Release);
        }
    }

    /// Persists (synced) and publishes a tenant's applied ts, or removes it.
    fn set_applied(&self, tenant_id: u64, applied: Option<Ts>) -> Result<()> {
        let rt = self.runtime(tenant_id)?;
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        let key = meta::standby_applied(tenant_id);
        match applied {
            Some(ts) => {
                self.inner
                    .db
                    .put_cf_opt(self.cf_meta(), key, ts.0.to_be_bytes(), &wo)?;
                rt.applied_cap.store(ts.0, Ordering::Release);
            }
            None => {
                rt.applied_cap.store(0, Ordering::Release);
                self.inner.db.delete_cf_opt(self.cf_meta(), key, &wo)?;
            }
        }
        Ok(())
    }

    /// This store's id: random, made when it is first asked for, never changed. A
    /// repository names the store that owns a history by it.
    pub fn store_id(&self) -> Result<String> {
        let _guard = self.inner.seq.lock();
        if let Some(id) = self.get_meta_u64(meta::STORE_ID)? {
            return Ok(format!("{id:016x}"));
        }
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        // Randomness, not time: the clock is only one more input to the hash.
        h.write_u64(self.inner.clock.now_millis());
        h.write_u64(self.visible_ts().0);
        h.write(self.path().as_os_str().as_encoded_bytes());
        h.write_u32(std::process::id());
        let id = h.finish().max(1);
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.inner
            .db
            .put_cf_opt(self.cf_meta(), meta::STORE_ID, id.to_be_bytes(), &wo)?;
        Ok(format!("{id:016x}"))
    }
}
