//! In-memory state the store keeps per tenant: catalog cache, GC safe point, pins.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::catalog::Catalog;
use crate::gc::PinRecord;
use crate::ts::Ts;

/// The newest catalog of a tenant, valid while no newer DDL has been assigned a ts.
#[derive(Debug)]
pub(crate) struct CachedCatalog {
    pub ddl_ts: Ts,
    pub catalog: Arc<Catalog>,
}

#[derive(Debug, Default)]
pub(crate) struct TenantRuntime {
    /// Commit ts of the newest catalog change, set under the commit lock when the ts is
    /// assigned (before the change is visible). A cached catalog is current iff its
    /// `ddl_ts` equals this.
    pub last_ddl_ts: AtomicU64,
    pub catalog: RwLock<Option<CachedCatalog>>,
    /// Reads below this ts are refused unless the ts is pinned.
    pub safe_point: AtomicU64,
    /// Pins by id (mirrors the `meta` column family).
    pub pins: Mutex<BTreeMap<u64, PinRecord>>,
    /// Held by GC while it decides and deletes, and by whoever adds a pin or snapshot.
    pub gc_lock: Mutex<()>,
    /// Set while an in-place commit (revert) is prepared and written: the tenant's
    /// commits wait at the commit lock (`revert.rs`).
    pub write_fence: AtomicBool,
    /// The ts of an in-place commit whose versions are being written (0: none). Reads
    /// of the tenant at or past it wait; "latest" reads read just below it.
    pub read_barrier: AtomicU64,
    /// A standby's applied ts (0: not a standby): its source's log is applied through
    /// it, and reads see nothing newer (`standby.rs`).
    pub applied_cap: AtomicU64,
    /// Set while a switchover moves the tenant: its commits are refused
    /// (`TenantMoving`), not held (`standby.rs`).
    pub moving: AtomicBool,
}

impl TenantRuntime {
    pub fn new(safe_point: Ts, last_ddl_ts: Ts, pins: Vec<PinRecord>) -> Self {
        TenantRuntime {
            last_ddl_ts: AtomicU64::new(last_ddl_ts.0),
            safe_point: AtomicU64::new(safe_point.0),
            pins: Mutex::new(pins.into_iter().map(|p| (p.id, p)).collect()),
            ..Default::default()
        }
    }

    pub fn safe_point(&self) -> Ts {
        Ts(self.safe_point.load(Ordering::Acquire))
    }

    pub fn last_ddl_ts(&self) -> Ts {
        Ts(self.last_ddl_ts.load(Ordering::Acquire))
    }

    /// A standby's applied ts, if the tenant is one.
    pub fn applied_cap(&self) -> Option<Ts> {
        match self.applied_cap.load(Ordering::Acquire) {
            0 => None,
            ts => Some(Ts(ts)),
        }
    }

    /// The ts of an in-place commit being written, if any.
    pub fn read_barrier(&self) -> Option<Ts> {
        match self.read_barrier.load(Ordering::Acquire) {
            0 => None,
            ts => Some(Ts(ts)),
        }
    }
}
