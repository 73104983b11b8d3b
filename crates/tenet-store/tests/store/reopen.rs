//! Closing and reopening the data directory keeps everything, and time moves on.

use serde_json::{json, Value};
use tenet_store::{
    AsOf, ColumnType, Error, ErrorKind, LogRecord, PinRecord, ScanRange, SnapshotDef, Store,
    TableDef, TenantRecord, Ts,
};

use crate::common::*;

#[derive(Debug, PartialEq)]
struct TenantDump {
    record: TenantRecord,
    tables: Vec<TableDef>,
    rows: Vec<Vec<Value>>,
    snapshots: Vec<SnapshotDef>,
    at_snapshots: Vec<Vec<Vec<Value>>>,
    pins: Vec<PinRecord>,
    at_pins: Vec<Vec<Vec<Value>>>,
    safe_point: Ts,
    log: Vec<LogRecord>,
}

fn rows_at(store: &Store, tenant: &str, as_of: &AsOf) -> Vec<Vec<Value>> {
    let txn = store.read_at(tenant, as_of).unwrap();
    let tables = txn.tables().unwrap();
    tables
        .iter()
        .map(|d| txn.scan(&d.name, &ScanRange::default()).unwrap())
        .collect()
}

fn dump(store: &Store) -> Vec<TenantDump> {
    store
        .tenants()
        .into_iter()
        .map(|record| {
            let name = record.name.clone();
            let txn = store.read_at(&name, &AsOf::Latest).unwrap();
            let tables: Vec<TableDef> = txn
                .tables()
                .unwrap()
                .iter()
                .map(|d| (**d).clone())
                .collect();
            let snapshots = txn.snapshots().unwrap();
            let pins = store.pins(&name).unwrap();
            TenantDump {
                rows: rows_at(store, &name, &AsOf::Latest),
                at_snapshots: snapshots
                    .iter()
                    .map(|s| rows_at(store, &name, &AsOf::Snapshot(s.name.clone())))
                    .collect(),
                at_pins: pins
                    .iter()
                    .map(|p| rows_at(store, &name, &AsOf::Ts(p.ts)))
                    .collect(),
                safe_point: store.safe_point(&name).unwrap(),
                log: store.read_log(record.id, Ts::ZERO, usize::MAX).unwrap(),
                record,
                tables,
                snapshots,
                pins,
            }
        })
        .collect()
}

fn put(store: &Store, tenant: &str, table: &str, row: Value) -> Ts {
    let mut txn = store.begin(tenant).unwrap();
    txn.put(table, &row).unwrap();
    txn.commit().unwrap().commit_ts
}

#[test]
fn everything_survives_a_reopen() {
    let t = TestStore::new();
    t.tenant("acme", 1);
    t.tenant("globex", 3600);
    t.kv_table("acme", "t");
    t.kv_table("acme", "gone");
    t.kv_table("globex", "t");
    let c1 = put(&t.store, "acme", "t", json!({"k": 1, "s": "one"}));
    put(&t.store, "acme", "gone", json!({"k": 1}));
    put(&t.store, "globex", "t", json!({"k": 7, "s": "globex"}));
    let mut txn = t.store.begin("acme").unwrap();
    txn.create_snapshot("snap").unwrap();
    txn.commit().unwrap();
    let c2 = put(&t.store, "acme", "t", json!({"k": 1, "s": "uno"}));
    let pin = t.store.pin("acme", c2, "test").unwrap();
    let mut txn = t.store.begin("acme").unwrap();
    txn.add_column("t", col("b", ColumnType::Bool)).unwrap();
    txn.put("t", &json!({"k": 2, "b": true})).unwrap();
    txn.drop_table("gone").unwrap();
    let c3 = txn.commit().unwrap().commit_ts;
    t.clock.advance(10_000);
    let c4 = put(&t.store, "acme", "t", json!({"k": 3}));
    t.store.run_gc().unwrap();
    let before = dump(&t.store);
    let safe = before[0].safe_point;
    assert!(safe > c3, "GC moved the safe point");
    assert_eq!(before[0].pins, std::slice::from_ref(&pin));
    let max_table_id = before
        .iter()
        .flat_map(|d| d.tables.iter().map(|x| x.id))
        .max()
        .unwrap();
    let last_ts = t.store.visible_ts().max(c4);

    let t = t.reopen();
    let after = dump(&t.store);
    assert_eq!(after, before);
    assert_eq!(after[0].rows[0].len(), 3);
    assert_eq!(
        after[0].at_snapshots[0].len(),
        2,
        "the snapshot still sees `gone`"
    );
    for ts in [c1, c3, pin.ts.next()] {
        let txn = t.store.read_at("acme", &AsOf::Ts(ts)).unwrap();
        assert!(
            matches!(txn.tables(), Err(Error::TooOld { .. })),
            "read at {ts}"
        );
    }

    // The clock went backwards while the store was closed: commits still move forward.
    t.clock.set(T0 - 3_600_000);
    let t = t.reopen();
    let c5 = put(&t.store, "acme", "t", json!({"k": 4}));
    assert!(c5 > last_ts, "{c5} after {last_ts}");
    // And GC does not move the safe point back.
    t.store.run_gc().unwrap();
    assert_eq!(t.store.safe_point("acme").unwrap(), safe);
    // Ids are never reused.
    let mut txn = t.store.begin("acme").unwrap();
    assert!(txn.create_table(&kv_spec("fresh")).unwrap().id > max_table_id);
    txn.commit().unwrap();
    let newer_pin = t.store.pin("acme", c5, "test").unwrap();
    assert!(newer_pin.id > pin.id);
    let tenant = t.tenant("initech", 60);
    assert!(before.iter().all(|d| d.record.id < tenant.id));

    // A second reopen: later still.
    let t = t.reopen();
    let c6 = put(&t.store, "acme", "t", json!({"k": 5}));
    assert!(c6 > c5);
    assert_eq!(scan(&t.store, "acme", "t").len(), 5);
    assert_eq!(t.store.pins("acme").unwrap(), [pin, newer_pin]);
}

#[test]
fn reads_of_the_current_time_stay_repeatable_across_a_reopen() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.kv_table("acme", "t");
    put(&t.store, "acme", "t", json!({"k": 1, "s": "before"}));
    // Read the current millisecond, which no commit has reached: no later commit may
    // change what it saw.
    let now = Ts::end_of_millis(t.now());
    let seen = scan_at(&t.store, "acme", "t", &AsOf::Ts(now));
    let t = t.reopen();
    t.clock.set(T0 - 60_000);
    let c = put(&t.store, "acme", "t", json!({"k": 2, "s": "after"}));
    assert!(c > now, "commit {c} at or before a ts already read ({now})");
    assert_eq!(scan_at(&t.store, "acme", "t", &AsOf::Ts(now)), seen);
}

/// Reads of times ahead of the clock are refused and never move the commit clock: 30
/// of them used to push every later commit (of every tenant) 30 s ahead, persisted.
#[test]
fn reads_of_the_future_never_move_the_commit_clock() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.tenant("globex", 3600);
    t.kv_table("acme", "t");
    t.kv_table("globex", "t");
    for i in 0..30 {
        for ms in [1, 500, 999] {
            let ahead = Ts::end_of_millis(t.now() + ms);
            let e = t.store.read_at("acme", &AsOf::Ts(ahead)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert!(
                e.to_string()
                    .contains("is in the future; the newest readable time is"),
                "{e}"
            );
        }
        // Reads of the current time are allowed (and move nothing past the clock).
        scan_at(&t.store, "acme", "t", &AsOf::Ts(Ts::end_of_millis(t.now())));
        t.clock.advance(if i % 2 == 0 { 0 } else { 1 });
    }
    let wall = t.now();
    let c = put(&t.store, "globex", "t", json!({"k": 1}));
    assert!(
        c.millis() <= wall + 1,
        "commit at {} ms, {} ms past the wall clock",
        c.millis(),
        c.millis() - wall
    );
    let t = t.reopen();
    t.clock.advance(10);
    let c = put(&t.store, "acme", "t", json!({"k": 1}));
    assert_eq!(
        c,
        Ts::from_millis(t.now()),
        "commit ts after a reopen follows the wall clock"
    );
}

#[test]
fn a_store_in_use_is_not_opened_twice() {
    let t = TestStore::new();
    let e = Store::open(t.dir.path(), options(&t.clock)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    assert!(matches!(e, Error::Open { .. }), "{e:?}");
    assert!(e.to_string().contains("in use"), "{e}");
    // The first handle still works.
    t.tenant("acme", 3600);
}

/// A clean close records how far the clock got, so a reopen does not push commit
/// timestamps ahead of the wall clock (only a crash may, by the lease).
#[test]
fn a_clean_reopen_keeps_commit_ts_on_the_wall_clock() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.kv_table("acme", "t");
    let c1 = put(&t.store, "acme", "t", json!({"k": 1}));
    let t = t.reopen();
    t.clock.advance(5);
    let c2 = put(&t.store, "acme", "t", json!({"k": 2}));
    assert!(c2 > c1);
    assert_eq!(
        c2,
        Ts::from_millis(T0 + 5),
        "commit ts after a clean reopen"
    );
}
