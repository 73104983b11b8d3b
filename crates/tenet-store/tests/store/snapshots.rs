//! Snapshots and pins: created, listed, dropped, and holding their state through GC.

use serde_json::{json, Value};
use tenet_store::{AsOf, ColumnType, Error, ErrorKind, ScanRange, Store, Ts, Txn};

use crate::common::*;

/// Everything a read shows: tables with their columns and rows.
fn dump(txn: &Txn) -> Vec<(String, Vec<String>, Vec<Value>)> {
    txn.tables()
        .unwrap()
        .iter()
        .map(|d| {
            let cols = d.columns.iter().map(|c| c.name.clone()).collect();
            (
                d.name.clone(),
                cols,
                txn.scan(&d.name, &ScanRange::default()).unwrap(),
            )
        })
        .collect()
}

fn dump_at(store: &Store, tenant: &str, as_of: AsOf) -> Vec<(String, Vec<String>, Vec<Value>)> {
    dump(&store.read_at(tenant, &as_of).unwrap())
}

/// Asserts that every kind of read at `ts` fails with `TooOld`.
#[track_caller]
fn assert_too_old(store: &Store, tenant: &str, ts: Ts) {
    let txn = store.read_at(tenant, &AsOf::Ts(ts)).unwrap();
    let oldest = store.safe_point(tenant).unwrap();
    let e = txn.tables().unwrap_err();
    match &e {
        Error::TooOld {
            requested,
            oldest: o,
            ..
        } => {
            assert_eq!(*requested, ts);
            assert_eq!(*o, oldest);
        }
        other => panic!("expected TooOld at {ts}, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    assert!(e.to_string().contains("older than the history kept"), "{e}");
    assert!(matches!(
        txn.scan("t", &ScanRange::default()),
        Err(Error::TooOld { .. })
    ));
    assert!(matches!(txn.get("t", &json!(1)), Err(Error::TooOld { .. })));
    assert!(matches!(txn.snapshots(), Err(Error::TooOld { .. })));
}

fn put(store: &Store, tenant: &str, row: Value) -> Ts {
    let mut txn = store.begin(tenant).unwrap();
    txn.put("t", &row).unwrap();
    txn.commit().unwrap().commit_ts
}

#[test]
fn snapshots_are_created_listed_read_and_dropped() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.tenant("globex", 3600);
    t.kv_table("acme", "t");
    let c1 = put(&t.store, "acme", json!({"k": 1, "s": "v1"}));

    let mut txn = t.store.begin("acme").unwrap();
    let a = txn.create_snapshot("a").unwrap();
    assert_eq!(a.ts, txn.start_ts());
    assert!(a.ts >= c1);
    let a_commit = txn.commit().unwrap().commit_ts;
    assert!(a_commit > a.ts);
    let state_a = dump_at(&t.store, "acme", AsOf::Ts(a.ts));

    put(&t.store, "acme", json!({"k": 1, "s": "v2"}));
    put(&t.store, "acme", json!({"k": 2, "s": "x"}));
    let mut txn = t.store.begin("acme").unwrap();
    txn.add_column("t", col("extra", ColumnType::Int)).unwrap();
    let b = txn.create_snapshot("b").unwrap();
    assert_err(
        txn.create_snapshot("a"),
        ErrorKind::AlreadyExists,
        "snapshot `a` already exists",
    );
    txn.commit().unwrap();
    // The snapshot names the state the transaction read, without its own DDL.
    let state_b = dump_at(&t.store, "acme", AsOf::Snapshot("b".into()));
    assert_eq!(state_b[0].1, ["k", "s", "n"]);
    assert_eq!(state_b[0].2.len(), 2);

    let list = t.store.begin("acme").unwrap().snapshots().unwrap();
    assert_eq!(list, [a.clone(), b.clone()]);
    assert!(t
        .store
        .begin("globex")
        .unwrap()
        .snapshots()
        .unwrap()
        .is_empty());
    assert_eq!(
        dump_at(&t.store, "acme", AsOf::Snapshot("a".into())),
        state_a
    );
    assert_eq!(state_a[0].2, [json!({"k": 1, "s": "v1", "n": null})]);
    // The snapshot list is itself time-travel readable.
    let before_a = t.store.read_at("acme", &AsOf::Ts(a_commit.prev())).unwrap();
    assert!(before_a.snapshots().unwrap().is_empty());
    assert_eq!(
        t.store
            .read_at("acme", &AsOf::Ts(a_commit))
            .unwrap()
            .snapshots()
            .unwrap(),
        std::slice::from_ref(&a)
    );

    let mut txn = t.store.begin("acme").unwrap();
    txn.drop_snapshot("a").unwrap();
    assert_eq!(txn.snapshots().unwrap(), std::slice::from_ref(&b));
    assert_err(
        txn.drop_snapshot("a"),
        ErrorKind::NotFound,
        "snapshot `a` not found",
    );
    txn.commit().unwrap();
    assert_eq!(t.store.begin("acme").unwrap().snapshots().unwrap(), [b]);
    assert_err(
        t.store.read_at("acme", &AsOf::Snapshot("a".into())),
        ErrorKind::NotFound,
        "`a`",
    );
    // The name can be used again, for a new state.
    let mut txn = t.store.begin("acme").unwrap();
    let a2 = txn.create_snapshot("a").unwrap();
    txn.commit().unwrap();
    assert!(a2.ts > a.ts);
    let again = dump_at(&t.store, "acme", AsOf::Snapshot("a".into()));
    assert_eq!(again[0].1, ["k", "s", "n", "extra"]);
}

#[test]
fn snapshots_hold_their_state_through_gc() {
    let t = TestStore::new();
    t.tenant("acme", 1);
    t.kv_table("acme", "t");
    t.kv_table("acme", "u");
    let mut txn = t.store.begin("acme").unwrap();
    for k in 1..=3 {
        txn.put("t", &json!({"k": k, "s": format!("v{k}")}))
            .unwrap();
        txn.put("u", &json!({"k": k})).unwrap();
    }
    txn.commit().unwrap();
    let mut txn = t.store.begin("acme").unwrap();
    let snap = txn.create_snapshot("keep").unwrap();
    txn.commit().unwrap();
    let at_snap = dump_at(&t.store, "acme", AsOf::Ts(snap.ts));
    assert_eq!(at_snap.len(), 2);

    // Change everything the snapshot shows.
    let mut txn = t.store.begin("acme").unwrap();
    txn.put("t", &json!({"k": 1, "s": "changed"})).unwrap();
    txn.delete("t", &json!(2)).unwrap();
    txn.add_column("t", col("c", ColumnType::String)).unwrap();
    txn.drop_table("u").unwrap();
    let changed = txn.commit().unwrap().commit_ts;
    // A version that neither the snapshot nor the safe point will see.
    put(&t.store, "acme", json!({"k": 3, "s": "three, briefly"}));
    let c3 = put(&t.store, "acme", json!({"k": 3, "s": "three again"}));
    let at_c3 = dump_at(&t.store, "acme", AsOf::Ts(c3));
    // A transaction that began before GC names its old state as a snapshot.
    let mut late = t.store.begin("acme").unwrap();
    late.create_snapshot("late").unwrap();

    t.clock.advance(10_000);
    let c4 = put(&t.store, "acme", json!({"k": 4}));
    let latest = dump_at(&t.store, "acme", AsOf::Latest);
    let stats = t.store.run_gc().unwrap();
    assert!(stats.versions_deleted > 0, "{stats:?}");
    let safe = t.store.safe_point("acme").unwrap();
    assert!(
        safe > c3 && safe < c4,
        "safe point {safe} between {c3} and {c4}"
    );

    assert_eq!(
        dump_at(&t.store, "acme", AsOf::Snapshot("keep".into())),
        at_snap
    );
    assert_eq!(dump_at(&t.store, "acme", AsOf::Ts(snap.ts)), at_snap);
    assert_eq!(dump_at(&t.store, "acme", AsOf::Ts(safe)), at_c3);
    assert_eq!(dump_at(&t.store, "acme", AsOf::Latest), latest);
    for ts in [changed, c3, snap.ts.prev(), snap.ts.next(), safe.prev()] {
        assert_too_old(&t.store, "acme", ts);
    }
    // GC collected that state before the snapshot was committed: refused.
    assert!(matches!(late.commit(), Err(Error::TooOld { .. })));
    assert_eq!(
        t.store.begin("acme").unwrap().snapshots().unwrap(),
        std::slice::from_ref(&snap)
    );

    // A second round changes nothing that is readable.
    t.store.run_gc().unwrap();
    assert_eq!(
        dump_at(&t.store, "acme", AsOf::Snapshot("keep".into())),
        at_snap
    );
    assert_eq!(t.store.safe_point("acme").unwrap(), safe);

    // Dropping the snapshot releases its state.
    let mut txn = t.store.begin("acme").unwrap();
    txn.drop_snapshot("keep").unwrap();
    txn.commit().unwrap();
    assert_too_old(&t.store, "acme", snap.ts);
    let stats = t.store.run_gc().unwrap();
    assert!(stats.versions_deleted > 0, "{stats:?}");
    assert_too_old(&t.store, "acme", snap.ts);
    assert_eq!(dump_at(&t.store, "acme", AsOf::Latest), latest);
}

#[test]
fn pins_hold_state_and_log_until_released() {
    let t = TestStore::new();
    let id = t.tenant("acme", 1).id;
    t.kv_table("acme", "t");
    let c1 = put(&t.store, "acme", json!({"k": 1, "s": "v1"}));
    let c2 = put(&t.store, "acme", json!({"k": 1, "s": "v2"}));
    t.clock.advance(1);
    let c3 = put(&t.store, "acme", json!({"k": 1, "s": "v3"}));
    assert!(c3.prev() > c2);
    let pin = t.store.pin("acme", c2, "test").unwrap();
    assert_eq!(
        (pin.ts, pin.tenant_id, pin.owner.as_str()),
        (c2, id, "test")
    );
    // A pin between two commits holds the state at that ts.
    let between = t.store.pin("acme", c3.prev(), "backup:1").unwrap();
    assert!(between.id > pin.id);
    assert_eq!(
        t.store.pins("acme").unwrap(),
        [pin.clone(), between.clone()]
    );

    t.clock.advance(10_000);
    let c4 = put(&t.store, "acme", json!({"k": 1, "s": "v4"}));
    let stats = t.store.run_gc().unwrap();
    assert!(
        stats.versions_deleted > 0 && stats.log_records_deleted > 0,
        "{stats:?}"
    );
    let get = |ts: Ts| {
        let txn = t.store.read_at("acme", &AsOf::Ts(ts)).unwrap();
        txn.get("t", &json!(1)).unwrap().unwrap()["s"].clone()
    };
    assert_eq!(get(c2), "v2");
    assert_eq!(get(c3.prev()), "v2");
    assert_eq!(get(c4), "v4");
    for ts in [c1, c3, c2.next()] {
        assert_too_old(&t.store, "acme", ts);
    }
    // The log after the oldest pin is kept; what is older is gone.
    let log: Vec<Ts> = t
        .store
        .read_log(id, Ts::ZERO, 100)
        .unwrap()
        .iter()
        .map(|r| r.commit_ts)
        .collect();
    assert_eq!(log, [c3, c4]);
    // A ts that GC has collected cannot be pinned; a pinned one can be pinned again.
    assert!(matches!(
        t.store.pin("acme", c1, "test"),
        Err(Error::TooOld { .. })
    ));
    let again = t.store.pin("acme", c2, "again").unwrap();
    assert_eq!(t.store.pins("acme").unwrap().len(), 3);

    for p in [&pin, &between] {
        t.store.unpin(id, p.id).unwrap();
    }
    t.store.unpin(id, pin.id).unwrap(); // idempotent
    assert_eq!(t.store.pins("acme").unwrap(), std::slice::from_ref(&again));
    t.store.run_gc().unwrap();
    assert_eq!(get(c2), "v2");
    assert_too_old(&t.store, "acme", c3.prev());
    t.store.unpin(id, again.id).unwrap();
    assert!(t.store.pins("acme").unwrap().is_empty());
    t.store.run_gc().unwrap();
    assert_too_old(&t.store, "acme", c2);
    assert_eq!(get(c4), "v4");
    let log: Vec<Ts> = t
        .store
        .read_log(id, Ts::ZERO, 100)
        .unwrap()
        .iter()
        .map(|r| r.commit_ts)
        .collect();
    assert_eq!(log, [c4]);
}

/// ARCHITECTURE.md §6: only versions superseded *before* `now - history_retention`
/// may be dropped, so every ts from the millisecond `now - retention` on stays readable.
#[test]
fn gc_keeps_every_ts_inside_the_retention_window() {
    let t = TestStore::new();
    t.tenant("acme", 1);
    t.kv_table("acme", "t");
    // Three commits in the same millisecond T0, each superseding the previous.
    let c1 = put(&t.store, "acme", json!({"k": 1, "s": "v1"}));
    let c2 = put(&t.store, "acme", json!({"k": 1, "s": "v2"}));
    let c3 = put(&t.store, "acme", json!({"k": 1, "s": "v3"}));
    assert_eq!((c1.millis(), c3.millis()), (T0, T0));
    let get = |ts: Ts| {
        let txn = t.store.read_at("acme", &AsOf::Ts(ts)).unwrap();
        txn.get("t", &json!(1)).map(|r| r.map(|r| r["s"].clone()))
    };

    // Exactly one retention later: the whole millisecond T0 is inside the window.
    t.clock.set(T0 + 1_000);
    t.store.run_gc().unwrap();
    let safe = t.store.safe_point("acme").unwrap();
    assert!(
        safe <= Ts::from_millis(T0),
        "safe point {safe} is past {}",
        Ts::from_millis(T0)
    );
    for (ts, s) in [
        (c1.prev(), None),
        (c1, Some("v1")),
        (c2, Some("v2")),
        (c3, Some("v3")),
    ] {
        let got = get(ts);
        let ok = matches!(&got, Ok(v) if v.as_ref().map(|v| v.as_str().unwrap()) == s);
        assert!(
            ok,
            "read at {ts} (ms {T0} + {}): {got:?}",
            ts.0 - Ts::from_millis(T0).0
        );
    }

    // One millisecond later, T0 is outside: only the state at its end is kept.
    t.clock.set(T0 + 1_001);
    t.store.run_gc().unwrap();
    assert_eq!(get(c3).unwrap().unwrap(), "v3");
    assert_eq!(get(Ts::end_of_millis(T0)).unwrap().unwrap(), "v3");
    assert!(matches!(get(c1), Err(Error::TooOld { .. })));
}

#[test]
fn snapshots_keep_dropped_tables_through_gc() {
    let t = TestStore::new();
    t.tenant("acme", 1);
    t.kv_table("acme", "t");
    put(&t.store, "acme", json!({"k": 1, "s": "old table"}));
    let mut txn = t.store.begin("acme").unwrap();
    txn.create_snapshot("before-drop").unwrap();
    txn.commit().unwrap();
    let before = dump_at(&t.store, "acme", AsOf::Snapshot("before-drop".into()));
    let old_id = t.store.begin("acme").unwrap().table("t").unwrap().id;
    // Drop and recreate under the same name.
    let mut txn = t.store.begin("acme").unwrap();
    txn.drop_table("t").unwrap();
    let new = txn.create_table(&kv_spec("t")).unwrap();
    txn.put("t", &json!({"k": 1, "s": "new table"})).unwrap();
    txn.commit().unwrap();
    assert!(new.id > old_id);
    t.clock.advance(5_000);
    t.store.run_gc().unwrap();
    assert_eq!(
        dump_at(&t.store, "acme", AsOf::Snapshot("before-drop".into())),
        before
    );
    assert_eq!(before[0].2, [json!({"k": 1, "s": "old table", "n": null})]);
    assert_eq!(
        scan(&t.store, "acme", "t"),
        [json!({"k": 1, "s": "new table", "n": null})]
    );
}

/// Readers racing GC rounds get either the exact state at their ts or `TooOld`, never a
/// half-collected state; a pinned ts always reads.
#[test]
fn reads_racing_gc_see_their_state_or_too_old() {
    const COMMITS: u64 = 300;
    let t = TestStore::new();
    t.tenant("acme", 1);
    t.kv_table("acme", "t");
    // Key 1 holds the commit's number; key 2 exists only at odd commits.
    let mut history = Vec::new();
    for i in 0..COMMITS {
        t.clock.advance(10);
        let mut txn = t.store.begin("acme").unwrap();
        txn.put("t", &json!({"k": 1, "n": i})).unwrap();
        if i % 2 == 1 {
            txn.put("t", &json!({"k": 2, "n": i})).unwrap();
        } else {
            txn.delete("t", &json!(2)).unwrap();
        }
        history.push((txn.commit().unwrap().commit_ts, i));
    }
    let (pinned_ts, pinned_n) = history[COMMITS as usize / 2];
    t.store.pin("acme", pinned_ts, "test").unwrap();
    // GC will sweep its horizon across the whole history.
    t.clock.set(T0 + 1_000);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (ok, too_old) = std::thread::scope(|s| {
        let readers: Vec<_> = (0..4u64)
            .map(|r| {
                let (store, history, done) = (&t.store, &history, &done);
                s.spawn(move || {
                    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ r;
                    let (mut ok, mut too_old) = (0, 0);
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let (ts, n) = history[(rng % COMMITS) as usize];
                        // Half the reads land between two commits.
                        let ts = if rng & 1 == 0 { ts } else { ts.next() };
                        let (ts, n) = if rng % 7 == 3 {
                            (pinned_ts, pinned_n)
                        } else {
                            (ts, n)
                        };
                        let txn = store.read_at("acme", &AsOf::Ts(ts)).unwrap();
                        match txn.scan("t", &ScanRange::default()) {
                            Ok(rows) => {
                                let mut want = vec![json!({"k": 1, "s": null, "n": n})];
                                if n % 2 == 1 {
                                    want.push(json!({"k": 2, "s": null, "n": n}));
                                }
                                assert_eq!(rows, want, "scan at {ts}");
                                ok += 1;
                            }
                            Err(Error::TooOld { .. }) => {
                                assert_ne!(ts, pinned_ts, "the pinned ts became too old");
                                too_old += 1;
                            }
                            Err(e) => panic!("scan at {ts}: {e}"),
                        }
                        match txn.get("t", &json!(1)) {
                            Ok(row) => assert_eq!(row.unwrap()["n"], n, "get at {ts}"),
                            Err(Error::TooOld { .. }) => assert_ne!(ts, pinned_ts),
                            Err(e) => panic!("get at {ts}: {e}"),
                        }
                    }
                    (ok, too_old)
                })
            })
            .collect();
        for _ in 0..(COMMITS / 2) {
            t.clock.advance(20);
            t.store.run_gc().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        readers
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    assert!(ok > 0 && too_old > 0, "{ok} reads, {too_old} too old");
    // In the end only the pinned state and the newest remain readable.
    t.clock.advance(1_000);
    t.store.run_gc().unwrap();
    let last = history.last().unwrap().0;
    assert!(t.store.safe_point("acme").unwrap() >= last);
    assert_eq!(
        scan_at(&t.store, "acme", "t", &AsOf::Ts(pinned_ts))[0]["n"],
        pinned_n
    );
}
