//! Transactions: first committer wins, read-your-writes, no lost updates, commit order.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tenet_store::{AsOf, ColumnType, Error, ErrorKind, ScanRange, Store, TableSpec, Ts};

use crate::common::*;

fn put(store: &Store, tenant: &str, table: &str, row: Value) -> Ts {
    let mut txn = store.begin(tenant).unwrap();
    txn.put(table, &row).unwrap();
    txn.commit().unwrap().commit_ts
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: tenet_store::Result<T>) -> String {
    let e = r.expect_err("expected a write conflict");
    assert_eq!(e.kind(), ErrorKind::Retryable, "{e}");
    assert!(matches!(e, Error::Conflict(_)), "{e:?}");
    e.to_string()
}

#[test]
fn first_committer_wins_on_the_same_key() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.kv_table("acme", "t");
    let log_before = t
        .store
        .read_log(t.store.tenant("acme").unwrap().id, Ts::ZERO, 100)
        .unwrap();

    let mut a = t.store.begin("acme").unwrap();
    let mut b = t.store.begin("acme").unwrap();
    assert_eq!(a.start_ts(), b.start_ts());
    a.put("t", &json!({"k": 1, "s": "a"})).unwrap();
    b.put("t", &json!({"k": 1, "s": "b"})).unwrap();
    let ca = a.commit().unwrap();
    let msg = assert_conflict(b.commit());
    assert!(msg.contains("key 1"), "{msg}");
    assert_eq!(
        scan(&t.store, "acme", "t"),
        [json!({"k": 1, "s": "a", "n": null})]
    );

    // A delete conflicts with a put of the same key, and the other way round.
    let mut a = t.store.begin("acme").unwrap();
    let mut b = t.store.begin("acme").unwrap();
    a.delete("t", &json!(1)).unwrap();
    b.put("t", &json!({"k": 1, "n": 7})).unwrap();
    b.commit().unwrap();
    assert_conflict(a.commit());
    assert_eq!(
        scan(&t.store, "acme", "t"),
        [json!({"k": 1, "s": null, "n": 7})]
    );

    // A transaction that starts after the commit does not conflict with it.
    let mut c = t.store.begin("acme").unwrap();
    assert!(c.start_ts() > ca.commit_ts);
    c.put("t", &json!({"k": 1, "s": "c"})).unwrap();
    c.commit().unwrap();

    // Failed commits left nothing in the log: create, a, b, c.
    let id = t.store.tenant("acme").unwrap().id;
    assert_eq!(
        t.store.read_log(id, Ts::ZERO, 100).unwrap().len(),
        log_before.len() + 3
    );
}

#[test]
fn disjoint_keys_tables_and_tenants_both_commit() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.tenant("globex", 3600);
    t.kv_table("acme", "t");
    t.kv_table("acme", "u");
    t.kv_table("globex", "t");

    let mut txns: Vec<_> = (0..4)
        .map(|i| {
            let tenant = if i == 3 { "globex" } else { "acme" };
            t.store.begin(tenant).unwrap()
        })
        .collect();
    txns[0].put("t", &json!({"k": 1})).unwrap();
    txns[1].put("t", &json!({"k": 2})).unwrap();
    txns[2].put("u", &json!({"k": 1})).unwrap();
    txns[3].put("t", &json!({"k": 1})).unwrap();
    let ts: Vec<Ts> = txns
        .into_iter()
        .map(|x| x.commit().unwrap().commit_ts)
        .collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
    assert_eq!(scan(&t.store, "acme", "t").len(), 2);
    assert_eq!(scan(&t.store, "acme", "u").len(), 1);
    assert_eq!(scan(&t.store, "globex", "t").len(), 1);
}

#[test]
fn writes_to_a_table_changed_concurrently_conflict() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.kv_table("acme", "t");
    put(&t.store, "acme", "t", json!({"k": 1, "s": "x"}));

    // ALTER committed first: a put planned against the old schema must retry.
    let mut a = t.store.begin("acme").unwrap();
    let mut b = t.store.begin("acme").unwrap();
    b.add_column("t", col("extra", ColumnType::Int)).unwrap();
    b.commit().unwrap();
    a.put("t", &json!({"k": 2})).unwrap();
    let msg = assert_conflict(a.commit());
    assert!(msg.contains("catalog"), "{msg}");

    // DROP committed first: puts and deletes into the dropped table must retry.
    let mut a = t.store.begin("acme").unwrap();
    let mut d = t.store.begin("acme").unwrap();
    let mut b = t.store.begin("acme").unwrap();
    b.drop_table("t").unwrap();
    b.commit().unwrap();
    a.put("t", &json!({"k": 3})).unwrap();
    assert_conflict(a.commit());
    d.delete("t", &json!(1)).unwrap();
    assert_conflict(d.commit());
    assert!(t.store.begin("acme").unwrap().tables().unwrap().is_empty());

    // DROP + CREATE with the same name: the new table is another table.
    t.kv_table("acme", "t");
    let mut a = t.store.begin("acme").unwrap();
    let mut b = t.store.begin("acme").unwrap();
    b.drop_table("t").unwrap();
    b.create_table(&kv_spec("t")).unwrap();
    b.commit().unwrap();
    a.put("t", &json!({"k": 4})).unwrap();
    assert_conflict(a.commit());
    assert!(scan(&t.store, "acme", "t").is_empty());

    // Two transactions creating the same table: the second one retries.
    let mut a = t.store.begin("acme").unwrap();
    let mut b = t.store.begin("acme").unwrap();
    a.create_table(&kv_spec("v")).unwrap();
    b.create_table(&kv_spec("v")).unwrap();
    b.put("v", &json!({"k": 1})).unwrap();
    a.commit().unwrap();
    assert_conflict(b.commit());
    assert!(scan(&t.store, "acme", "v").is_empty());

    // A row write committed first does not stop a later ALTER; the row reads the new
    // column as null.
    let mut a = t.store.begin("acme").unwrap();
    let mut b = t.store.begin("acme").unwrap();
    a.put("v", &json!({"k": 9, "s": "nine"})).unwrap();
    a.commit().unwrap();
    b.add_column("v", col("z", ColumnType::String)).unwrap();
    b.commit().unwrap();
    assert_eq!(
        scan(&t.store, "acme", "v"),
        [json!({"k": 9, "s": "nine", "n": null, "z": null})]
    );
}

#[test]
fn a_transaction_reads_its_own_writes() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.kv_table("acme", "t");
    t.kv_table("acme", "gone");
    let mut seed = t.store.begin("acme").unwrap();
    for k in [1, 3, 5, 7] {
        seed.put("t", &json!({"k": k, "s": format!("v{k}")}))
            .unwrap();
    }
    seed.commit().unwrap();

    let mut txn = t.store.begin("acme").unwrap();
    txn.put("t", &json!({"k": 2, "s": "new"})).unwrap();
    txn.put("t", &json!({"k": 3, "s": "changed", "n": 3}))
        .unwrap();
    assert!(txn.delete("t", &json!(5)).unwrap(), "5 existed");
    assert!(
        !txn.delete("t", &json!(6)).unwrap(),
        "absent: no error, and said so"
    );
    assert!(
        !txn.delete("t", &json!(5)).unwrap(),
        "deleted by this transaction"
    );
    txn.put("t", &json!({"k": 8})).unwrap();
    assert!(
        txn.delete("t", &json!(8)).unwrap(),
        "put by this transaction"
    );
    assert_eq!(
        txn.get("t", &json!(2)).unwrap(),
        Some(json!({"k": 2, "s": "new", "n": null}))
    );
    assert_eq!(txn.get("t", &json!(3)).unwrap().unwrap()["s"], "changed");
    assert_eq!(txn.get("t", &json!(5)).unwrap(), None);
    assert_eq!(txn.get("t", &json!(7)).unwrap().unwrap()["s"], "v7");
    let keys = |rows: Vec<Value>| {
        rows.iter()
            .map(|r| r["k"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(txn.scan("t", &ScanRange::default()).unwrap()),
        [1, 2, 3, 7]
    );
    let range = |from: i64, to: i64, limit: Option<usize>| ScanRange {
        from: Some(json!(from)),
        to: Some(json!(to)),
        limit,
    };
    assert_eq!(keys(txn.scan("t", &range(2, 7, None)).unwrap()), [2, 3]);
    assert_eq!(
        keys(txn.scan("t", &range(0, 100, Some(3))).unwrap()),
        [1, 2, 3]
    );
    assert_eq!(keys(txn.scan("t", &range(4, 100, Some(1))).unwrap()), [7]);

    // DDL in the same transaction.
    let def = txn
        .create_table(&TableSpec {
            name: "fresh".into(),
            columns: vec![col("id", ColumnType::String), col("v", ColumnType::Json)],
            primary_key: vec!["id".into()],
        })
        .unwrap();
    txn.put("fresh", &json!({"id": "a", "v": {"x": [1, 2]}}))
        .unwrap();
    txn.add_column("fresh", col("w", ColumnType::Bool)).unwrap();
    txn.put("fresh", &json!({"id": "b", "w": true})).unwrap();
    assert_eq!(
        txn.scan("fresh", &ScanRange::default()).unwrap(),
        [
            json!({"id": "a", "v": {"x": [1, 2]}, "w": null}),
            json!({"id": "b", "v": null, "w": true})
        ]
    );
    txn.drop_table("gone").unwrap();
    assert_eq!(
        txn.get("gone", &json!(1)).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let names: Vec<String> = txn
        .tables()
        .unwrap()
        .iter()
        .map(|d| d.name.clone())
        .collect();
    assert_eq!(names, ["fresh", "t"]);
    assert_eq!(txn.table("fresh").unwrap().id, def.id);
    assert_eq!(txn.table("fresh").unwrap().schema_version, 2);
    let snap = txn.create_snapshot("mid").unwrap();
    assert_eq!(snap.ts, txn.start_ts());
    assert_eq!(txn.snapshots().unwrap(), std::slice::from_ref(&snap));

    // Nobody else sees any of it before the commit.
    let other = t.store.begin("acme").unwrap();
    assert_eq!(
        keys(other.scan("t", &ScanRange::default()).unwrap()),
        [1, 3, 5, 7]
    );
    assert_eq!(
        other.table("fresh").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(other.table("gone").is_ok());
    assert!(other.snapshots().unwrap().is_empty());

    let committed = txn.commit().unwrap();
    let after = t.store.begin("acme").unwrap();
    assert!(after.start_ts() >= committed.commit_ts);
    assert_eq!(
        keys(after.scan("t", &ScanRange::default()).unwrap()),
        [1, 2, 3, 7]
    );
    assert_eq!(after.scan("fresh", &ScanRange::default()).unwrap().len(), 2);
    assert_eq!(after.table("gone").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(after.snapshots().unwrap(), [snap]);
    // The snapshot shows the state the transaction started from.
    let at_snap = t
        .store
        .read_at("acme", &AsOf::Snapshot("mid".into()))
        .unwrap();
    assert_eq!(
        keys(at_snap.scan("t", &ScanRange::default()).unwrap()),
        [1, 3, 5, 7]
    );
}

#[test]
fn concurrent_increments_lose_no_update() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 25;
    const COUNTERS: i64 = 2;
    let t = TestStore::new();
    let id = t.tenant("acme", 3600).id;
    t.kv_table("acme", "counters");
    let mut init = t.store.begin("acme").unwrap();
    for k in 0..COUNTERS {
        init.put("counters", &json!({"k": k, "n": 0})).unwrap();
    }
    let init_ts = init.commit().unwrap().commit_ts;

    let store = Arc::new(t.store.clone());
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut commits = Vec::new();
                let mut conflicts = 0;
                for j in 0..PER_THREAD {
                    let k = ((i + j) as i64) % COUNTERS;
                    loop {
                        let mut txn = store.begin("acme").unwrap();
                        let n = txn.get("counters", &json!(k)).unwrap().unwrap()["n"]
                            .as_i64()
                            .unwrap();
                        txn.put("counters", &json!({"k": k, "n": n + 1})).unwrap();
                        match txn.commit() {
                            Ok(info) => {
                                // Readable by the next transaction at once.
                                let seen = store.begin("acme").unwrap();
                                assert!(seen.start_ts() >= info.commit_ts);
                                let now = seen.get("counters", &json!(k)).unwrap().unwrap()["n"]
                                    .as_i64()
                                    .unwrap();
                                assert!(now > n, "wrote {} but then read {now}", n + 1);
                                commits.push(info.commit_ts);
                                break;
                            }
                            Err(e) if e.kind() == ErrorKind::Retryable => conflicts += 1,
                            Err(e) => panic!("unexpected error {e}"),
                        }
                    }
                }
                (commits, conflicts)
            })
        })
        .collect();
    let mut all_ts = Vec::new();
    let mut conflicts = 0;
    for h in handles {
        let (ts, c) = h.join().unwrap();
        all_ts.extend(ts);
        conflicts += c;
    }
    let total = THREADS * PER_THREAD;
    let sum: i64 = scan(&t.store, "acme", "counters")
        .iter()
        .map(|r| r["n"].as_i64().unwrap())
        .sum();
    assert_eq!(
        sum, total as i64,
        "lost updates ({conflicts} conflicts retried)"
    );
    all_ts.sort();
    all_ts.dedup();
    assert_eq!(all_ts.len(), total, "commit timestamps are unique");

    // The log shows each counter going 1, 2, 3, … in commit order.
    let log = t.store.read_log(id, init_ts, usize::MAX).unwrap();
    assert_eq!(log.len(), total);
    let def = t.store.begin("acme").unwrap().table("counters").unwrap();
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    for rec in &log {
        assert_eq!(rec.mutations.len(), 1);
        let m = &rec.mutations[0];
        let row = tenet_store::row::decode_row(&def, m.value.as_ref().unwrap()).unwrap();
        let (k, n) = (row[0].as_i64().unwrap(), row[2].as_i64().unwrap());
        let prev = last.insert(k, n).unwrap_or(0);
        assert_eq!(n, prev + 1, "counter {k} at {}", rec.commit_ts);
    }
    assert_eq!(log.iter().map(|r| r.commit_ts).collect::<Vec<_>>(), all_ts);
}

#[test]
fn commit_ts_increase_strictly_and_commits_are_readable_at_once() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.kv_table("acme", "t");
    let mut history: Vec<(Ts, i64)> = Vec::new();
    for i in 0..60i64 {
        // Time stands still, jumps ahead, and goes backwards.
        match i % 4 {
            1 => t.clock.set(T0 + i as u64 * 10),
            3 => t.clock.set(T0 - 5_000),
            _ => {}
        }
        let ts = put(&t.store, "acme", "t", json!({"k": 1, "n": i}));
        if let Some((prev, _)) = history.last() {
            assert!(ts > *prev, "commit {i}: {ts} after {prev}");
        }
        assert!(t.store.visible_ts() >= ts);
        if i % 4 == 1 {
            // The clock moved past every earlier commit: the ts follows it.
            let prev_millis = history.last().map_or(0, |(p, _)| p.millis());
            if t.now() > prev_millis {
                assert_eq!(ts, Ts::from_millis(t.now()));
            }
        }
        let latest = t.store.begin("acme").unwrap();
        assert_eq!(latest.get("t", &json!(1)).unwrap().unwrap()["n"], i);
        history.push((ts, i));
    }
    // Every commit stays readable at its ts; the ts before it shows the previous value.
    for (j, (ts, n)) in history.iter().enumerate() {
        let at = t.store.read_at("acme", &AsOf::Ts(*ts)).unwrap();
        assert_eq!(at.get("t", &json!(1)).unwrap().unwrap()["n"], *n);
        let before = t.store.read_at("acme", &AsOf::Ts(ts.prev())).unwrap();
        let expected = if j == 0 {
            Value::Null
        } else {
            json!(history[j - 1].1)
        };
        let got = before
            .get("t", &json!(1))
            .unwrap()
            .map_or(Value::Null, |r| r["n"].clone());
        assert_eq!(got, expected);
    }
}
