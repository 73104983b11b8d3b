//! Shared helpers: a store in a temporary directory on a manual clock.

use std::sync::Arc;

use serde_json::Value;
use tempfile::TempDir;
use tenet_store::{
    AsOf, Column, ColumnType, ErrorKind, ManualClock, ScanRange, Store, StoreOptions, TableSpec,
    TenantOptions, TenantRecord, Ts,
};

/// The manual clock's starting time: 2023-11-14T22:13:20Z.
pub const T0: u64 = 1_700_000_000_000;

/// A store in a temporary directory, driven by a [`ManualClock`].
pub struct TestStore {
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub dir: TempDir,
}

impl TestStore {
    pub fn new() -> TestStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::new(T0));
        let store = open(&dir, &clock);
        TestStore { store, clock, dir }
    }

    /// Closes the store (every handle must be gone) and opens the same directory.
    pub fn reopen(self) -> TestStore {
        let TestStore { store, clock, dir } = self;
        drop(store);
        let store = open(&dir, &clock);
        TestStore { store, clock, dir }
    }

    pub fn now(&self) -> u64 {
        tenet_store::Clock::now_millis(&*self.clock)
    }

    pub fn tenant(&self, name: &str, retention_secs: u64) -> TenantRecord {
        let opts = TenantOptions {
            history_retention_secs: Some(retention_secs),
            ..Default::default()
        };
        self.store
            .create_tenant(name, opts)
            .expect("create tenant")
            .0
    }

    /// Creates `table` (`k:int` key, `s:string`, `n:int`) in `tenant`.
    pub fn kv_table(&self, tenant: &str, table: &str) -> Ts {
        let mut txn = self.store.begin(tenant).unwrap();
        txn.create_table(&kv_spec(table)).unwrap();
        txn.commit().unwrap().commit_ts
    }
}

pub fn open(dir: &TempDir, clock: &Arc<ManualClock>) -> Store {
    Store::open(dir.path(), options(clock)).expect("open store")
}

pub fn options(clock: &Arc<ManualClock>) -> StoreOptions {
    StoreOptions {
        clock: clock.clone(),
        sync_writes: false,
        ..Default::default()
    }
}

pub fn col(name: &str, ty: ColumnType) -> Column {
    Column {
        name: name.to_string(),
        ty,
    }
}

/// `k:int` (primary key), `s:string`, `n:int`.
pub fn kv_spec(name: &str) -> TableSpec {
    TableSpec {
        name: name.to_string(),
        columns: vec![
            col("k", ColumnType::Int),
            col("s", ColumnType::String),
            col("n", ColumnType::Int),
        ],
        primary_key: vec!["k".to_string()],
    }
}

/// Every row of `table` as of `as_of`.
pub fn scan_at(store: &Store, tenant: &str, table: &str, as_of: &AsOf) -> Vec<Value> {
    store
        .read_at(tenant, as_of)
        .unwrap()
        .scan(table, &ScanRange::default())
        .unwrap()
}

/// Every row of `table` now.
pub fn scan(store: &Store, tenant: &str, table: &str) -> Vec<Value> {
    scan_at(store, tenant, table, &AsOf::Latest)
}

/// Asserts that `r` failed with an error of `kind` whose message contains `needle`.
#[track_caller]
pub fn assert_err<T: std::fmt::Debug>(
    r: tenet_store::Result<T>,
    kind: ErrorKind,
    needle: &str,
) -> tenet_store::Error {
    let e = r.expect_err("expected an error");
    assert_eq!(e.kind(), kind, "wrong kind for error `{e}`");
    assert!(
        e.to_string().contains(needle),
        "`{e}` does not mention `{needle}`"
    );
    e
}
