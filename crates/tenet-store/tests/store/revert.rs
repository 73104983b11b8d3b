//! Reverts outside the model test: the diff scan where GC took the log, concurrent
//! writers, the large (SST) path, the commit log record, and bad input.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tenet_store::{
    AsOf, ChangeSource, Error, ErrorKind, RevertScope, RevertTo, Store, StoreOptions, TenantState,
    TenantUpdate, Ts,
};

use crate::common::*;

fn put(store: &Store, tenant: &str, table: &str, k: i64, s: &str) -> Ts {
    store
        .with_txn(tenant, |t| t.put(table, &json!({"k": k, "s": s})))
        .unwrap()
        .1
        .commit_ts
}

/// The tenant's tables now, by name.
fn table_names(store: &Store, tenant: &str) -> Vec<String> {
    let txn = store.read_at(tenant, &AsOf::Latest).unwrap();
    txn.tables()
        .unwrap()
        .iter()
        .map(|t| t.name.clone())
        .collect()
}

fn keys_of(rows: &[Value]) -> Vec<i64> {
    rows.iter().map(|r| r["k"].as_i64().unwrap()).collect()
}

#[test]
fn rollback_to_an_old_snapshot_scans_where_the_log_is_gone() {
    let t = TestStore::new();
    t.tenant("acme", 1);
    t.kv_table("acme", "t");
    for k in 0..5 {
        put(&t.store, "acme", "t", k, "old");
    }
    let snap = t
        .store
        .with_txn("acme", |x| x.create_snapshot("s"))
        .unwrap()
        .0;
    put(&t.store, "acme", "t", 1, "new");
    t.store
        .with_txn("acme", |x| x.delete("t", &json!(2)))
        .unwrap();
    put(&t.store, "acme", "t", 9, "added");
    t.clock.advance(5_000);
    t.store.run_gc().unwrap();
    assert!(
        t.store
            .log_complete_after(t.store.tenant("acme").unwrap().id)
            .unwrap()
            > snap.ts
    );

    let rep = t
        .store
        .revert(
            "acme",
            &RevertTo::AsOf(AsOf::Snapshot("s".into())),
            &RevertScope::Tenant,
        )
        .unwrap();
    assert_eq!(rep.found_by, ChangeSource::DiffScan);
    assert_eq!(rep.target_ts, snap.ts);
    assert_eq!(rep.tables.len(), 1);
    let tr = &rep.tables[0];
    assert_eq!(
        (tr.rows_restored, tr.rows_reverted, tr.rows_removed),
        (1, 1, 1),
        "{rep:?}"
    );
    assert_eq!(
        scan(&t.store, "acme", "t"),
        scan_at(&t.store, "acme", "t", &AsOf::Snapshot("s".into()))
    );
    // The snapshot survives its own rollback.
    assert_eq!(
        t.store
            .read_at("acme", &AsOf::Latest)
            .unwrap()
            .snapshots()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn concurrent_writers_lose_nothing_acknowledged_after_the_revert() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.tenant("other", 3600);
    t.kv_table("acme", "t");
    t.kv_table("other", "t");
    for k in 0..50 {
        put(&t.store, "acme", "t", k, "base");
    }
    let target = t.store.visible_ts();
    for k in 0..50 {
        put(&t.store, "acme", "t", k, "bad");
    }
    // A transaction that read before the revert and writes a key the revert puts back.
    let mut stale = t.store.begin("acme").unwrap();
    stale.put("t", &json!({"k": 3, "s": "stale"})).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3i64)
        .map(|w| {
            let (store, stop) = (t.store.clone(), stop.clone());
            let tenant = if w == 2 { "other" } else { "acme" };
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let k = 1_000 + w * 100_000 + i;
                    i += 1;
                    match store.with_txn(tenant, |x| x.put("t", &json!({"k": k, "s": "w"}))) {
                        Ok((_, c)) => acked.push((k, c.commit_ts)),
                        Err(e) => assert_eq!(e.kind(), ErrorKind::Retryable, "{e}"),
                    }
                }
                (tenant, acked)
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let rep = t
        .store
        .revert(
            "acme",
            &RevertTo::AsOf(AsOf::Ts(target)),
            &RevertScope::Tenant,
        )
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let r = rep.commit_ts.expect("the revert changed rows");
    assert!(
        rep.writes_held < std::time::Duration::from_secs(5),
        "{rep:?}"
    );

    let writes: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let acme: std::collections::BTreeSet<i64> =
        keys_of(&scan(&t.store, "acme", "t")).into_iter().collect();
    let other: std::collections::BTreeSet<i64> =
        keys_of(&scan(&t.store, "other", "t")).into_iter().collect();
    let (mut after, mut before) = (0, 0);
    for (tenant, acked) in writes {
        for (k, ts) in acked {
            let present = if tenant == "acme" {
                acme.contains(&k)
            } else {
                other.contains(&k)
            };
            if tenant == "other" || ts > r {
                assert!(
                    present,
                    "{tenant}: key {k} committed at {ts} is lost (revert at {r})"
                );
                after += 1;
            } else {
                assert!(
                    !present,
                    "key {k} committed at {ts} survived the revert to {target}"
                );
                before += 1;
            }
        }
    }
    assert!(after > 0 && before > 0, "after {after}, before {before}");
    // The base rows are back.
    let row = t
        .store
        .read_at("acme", &AsOf::Latest)
        .unwrap()
        .get("t", &json!(3))
        .unwrap();
    assert_eq!(row.unwrap()["s"], "base");
    // The stale writer conflicts (retryable) instead of overwriting the revert.
    let e = stale.commit().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Retryable, "{e}");
}

#[test]
fn large_reverts_ingest_one_sst_and_are_logged_as_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(tenet_store::ManualClock::new(T0));
    let opts = StoreOptions {
        clock: clock.clone(),
        sync_writes: false,
        replay_ingest_min_bytes: 1,
        ..Default::default()
    };
    let store = Store::open(dir.path(), opts.clone()).unwrap();
    let id = store
        .create_tenant("acme", Default::default())
        .unwrap()
        .0
        .id;
    store
        .with_txn("acme", |x| x.create_table(&kv_spec("t")).map(|_| ()))
        .unwrap();
    let target = put(&store, "acme", "t", 1, "one");
    let cut = put(&store, "acme", "t", 2, "two");
    store
        .with_txn("acme", |x| {
            x.add_column("t", col("extra", tenet_store::ColumnType::Int))?;
            x.create_table(&kv_spec("later"))?;
            x.drop_table("t")
        })
        .unwrap();
    let rep = store
        .revert(
            "acme",
            &RevertTo::AsOf(AsOf::Ts(target)),
            &RevertScope::Tenant,
        )
        .unwrap();
    let r = rep.commit_ts.unwrap();
    let by_name: Vec<_> = rep
        .tables
        .iter()
        .map(|t| (t.table.as_str(), t.catalog))
        .collect();
    assert_eq!(
        by_name,
        [
            ("later", Some(tenet_store::CatalogRevert::Dropped)),
            ("t", Some(tenet_store::CatalogRevert::Restored)),
        ]
    );
    // The table that comes back brings its row at the target with it.
    assert_eq!(rep.tables[1].table_rows_back, 1, "{rep:?}");
    let log = store.read_log(id, cut, usize::MAX).unwrap();
    assert_eq!(log.last().unwrap().commit_ts, r);
    assert!(log.last().unwrap().has_ddl());
    drop(store);
    let store = Store::open(dir.path(), opts).unwrap();
    assert_eq!(table_names(&store, "acme"), ["t"]);
    assert_eq!(keys_of(&scan(&store, "acme", "t")), [1]);
    // Undo brings back the state before the revert.
    store
        .revert("acme", &RevertTo::BeforeCommit(r), &RevertScope::Tenant)
        .unwrap();
    assert_eq!(table_names(&store, "acme"), ["later"]);
}

#[test]
fn bad_input_changes_nothing() {
    let t = TestStore::new();
    t.tenant("acme", 1);
    t.kv_table("acme", "t");
    let first = put(&t.store, "acme", "t", 1, "a");
    t.tenant("other", 1);
    t.kv_table("other", "t");
    let not_acme = put(&t.store, "other", "t", 1, "x");
    put(&t.store, "acme", "t", 2, "b");
    let tenant = || t.store.tenant("acme").unwrap();
    let before = (scan(&t.store, "acme", "t"), t.store.visible_ts());
    let revert = |to: RevertTo, scope: RevertScope| t.store.revert("acme", &to, &scope);
    let at = |ts| RevertTo::AsOf(AsOf::Ts(ts));

    assert_err(
        revert(
            RevertTo::AsOf(AsOf::Snapshot("nope".into())),
            RevertScope::Tenant,
        ),
        ErrorKind::NotFound,
        "nope",
    );
    assert_err(
        revert(at(Ts::from_millis(t.now() + 60_000)), RevertScope::Tenant),
        ErrorKind::InvalidInput,
        "future",
    );
    assert_err(
        revert(RevertTo::AsOf(AsOf::Latest), RevertScope::Tenant),
        ErrorKind::InvalidInput,
        "changes nothing",
    );
    assert_err(
        revert(at(first), RevertScope::Table("missing".into())),
        ErrorKind::NotFound,
        "missing",
    );
    assert_err(
        revert(
            at(first),
            RevertScope::Range {
                table: "t".into(),
                from: Some(json!("not an int")),
                to: None,
            },
        ),
        ErrorKind::InvalidInput,
        "",
    );
    assert_err(
        revert(
            at(first),
            RevertScope::Range {
                table: "t".into(),
                from: Some(json!(5)),
                to: Some(json!(2)),
            },
        ),
        ErrorKind::InvalidInput,
        "empty",
    );
    assert_err(
        revert(RevertTo::BeforeCommit(not_acme), RevertScope::Tenant),
        ErrorKind::InvalidInput,
        "no commit",
    );
    t.store
        .alter_tenant(
            "acme",
            TenantUpdate {
                state: Some(TenantState::ReadOnly),
                ..Default::default()
            },
        )
        .unwrap();
    assert_err(
        revert(at(first), RevertScope::Tenant),
        ErrorKind::FailedPrecondition,
        "--state active",
    );
    t.store
        .alter_tenant(
            "acme",
            TenantUpdate {
                state: Some(TenantState::Active),
                ..Default::default()
            },
        )
        .unwrap();
    // Older than the kept history: names the oldest time and the way out.
    t.clock.advance(10_000);
    put(&t.store, "acme", "t", 3, "c");
    t.store.run_gc().unwrap();
    let e = revert(at(first), RevertScope::Tenant).unwrap_err();
    assert!(matches!(e, Error::TooOld { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("oldest readable time") && msg.contains("--in-place"),
        "{msg}"
    );
    assert_eq!(tenant().state, TenantState::Active);
    let (rows, _) = before;
    let mut expect = rows;
    expect.push(json!({"k": 3, "s": "c", "n": null}));
    assert_eq!(scan(&t.store, "acme", "t"), expect);
    assert!(t.store.pins("acme").unwrap().is_empty());
}

#[test]
fn in_place_commits_are_idempotent_and_lose_no_concurrent_write() {
    let t = TestStore::new();
    let id = t.tenant("acme", 3600).id;
    t.kv_table("acme", "t");
    for k in 0..20 {
        put(&t.store, "acme", "t", k, "base");
    }
    let target = t.store.visible_ts();
    for k in 0..20 {
        put(&t.store, "acme", "t", k, "bad");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (t.store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut k = 1_000;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                if let Ok((_, c)) =
                    store.with_txn("acme", |x| x.put("t", &json!({"k": k, "s": "w"})))
                {
                    acked.push((k, c.commit_ts));
                }
            }
            acked
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(30));
    // The tenant's own past as the source (a scratch tenant has the same ids).
    let rep = t.store.make_equal(id, id, target, "job-1").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().unwrap();
    let r = rep.commit_ts.unwrap();
    assert_eq!(t.store.in_place_done("job-1").unwrap(), Some(r));
    let keys: std::collections::BTreeSet<i64> =
        keys_of(&scan(&t.store, "acme", "t")).into_iter().collect();
    for (k, ts) in &acked {
        assert_eq!(
            keys.contains(k),
            *ts > r,
            "key {k} at {ts}, in-place commit at {r}"
        );
    }
    assert!(
        acked.iter().any(|(_, ts)| *ts > r),
        "no write after the commit"
    );
    let row = t
        .store
        .read_at("acme", &AsOf::Latest)
        .unwrap()
        .get("t", &json!(0))
        .unwrap();
    assert_eq!(row.unwrap()["s"], "base");
    // Again with the same token: nothing is written.
    let visible = t.store.visible_ts();
    let again = t.store.make_equal(id, id, target, "job-1").unwrap();
    assert_eq!(again.commit_ts, Some(r));
    assert_eq!(t.store.read_log(id, visible, 10).unwrap().len(), 0);
}

#[test]
fn a_reverted_schema_names_its_columns() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.kv_table("acme", "t");
    put(&t.store, "acme", "t", 1, "a");
    let before = t.store.visible_ts();
    t.store
        .with_txn("acme", |x| {
            x.add_column("t", col("extra", tenet_store::ColumnType::Int))
        })
        .unwrap();
    let rep = t
        .store
        .revert(
            "acme",
            &RevertTo::AsOf(AsOf::Ts(before)),
            &RevertScope::Table("t".into()),
        )
        .unwrap();
    let tr = &rep.tables[0];
    assert_eq!(tr.catalog, Some(tenet_store::CatalogRevert::SchemaReverted));
    assert_eq!(tr.columns_removed, ["extra"]);
    assert!(tr.columns_back.is_empty());
    // Its undo brings the column back, and says so.
    let undo = t
        .store
        .revert(
            "acme",
            &RevertTo::BeforeCommit(rep.commit_ts.unwrap()),
            &RevertScope::Tenant,
        )
        .unwrap();
    assert_eq!(undo.tables[0].columns_back, ["extra"]);
}
