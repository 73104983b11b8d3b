//! Bad input is refused with the right error, and a refused call writes nothing.

use serde_json::{json, Value};
use tenet_store::{
    AsOf, Column, ColumnType, Error, ErrorKind, LogRecord, ScanRange, Store, TableSpec,
    TenantOptions, TenantState, TenantUpdate, Ts,
};

use crate::common::*;

use ErrorKind::{AlreadyExists, FailedPrecondition, InvalidInput, NotFound};

/// What a tenant holds, to check that a failed call changed nothing.
fn state(store: &Store, tenant: &str) -> (Vec<LogRecord>, Vec<(String, Vec<Value>)>) {
    let id = store.tenant(tenant).unwrap().id;
    let log = store.read_log(id, Ts::ZERO, usize::MAX).unwrap();
    let txn = store.read_at(tenant, &AsOf::Latest).unwrap();
    let tables = txn
        .tables()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                txn.scan(&d.name, &ScanRange::default()).unwrap(),
            )
        })
        .collect();
    (log, tables)
}

fn spec(name: &str, cols: &[(&str, ColumnType)], pk: &[&str]) -> TableSpec {
    TableSpec {
        name: name.into(),
        columns: cols.iter().map(|(n, t)| col(n, *t)).collect(),
        primary_key: pk.iter().map(|s| s.to_string()).collect(),
    }
}

const BAD_NAMES: [&str; 6] = ["", "Acme", "a b", "ü", "a.b", "a/b"];

#[test]
fn bad_names_are_refused() {
    let t = TestStore::new();
    let long = "a".repeat(64);
    for bad in BAD_NAMES.iter().copied().chain([long.as_str()]) {
        assert_err(
            t.store.create_tenant(bad, TenantOptions::default()),
            InvalidInput,
            "invalid tenant name",
        );
    }
    assert!(t.store.tenants().is_empty());
    t.store
        .create_tenant(&"a".repeat(63), TenantOptions::default())
        .unwrap();
    t.tenant("acme", 3600);
    t.kv_table("acme", "t");
    let before = state(&t.store, "acme");

    let rename = |name: &str| TenantUpdate {
        name: Some(name.into()),
        ..Default::default()
    };
    assert_err(
        t.store.alter_tenant("acme", rename("Bad")),
        InvalidInput,
        "invalid tenant name",
    );
    assert_err(
        t.store.alter_tenant("acme", rename(&"a".repeat(63))),
        AlreadyExists,
        "already exists",
    );
    let too_long = TenantUpdate {
        history_retention_secs: Some(u64::MAX),
        ..Default::default()
    };
    assert_err(
        t.store.alter_tenant("acme", too_long),
        InvalidInput,
        "retention",
    );
    let opts = TenantOptions {
        history_retention_secs: Some(400 * 365 * 86_400),
        ..Default::default()
    };
    assert_err(
        t.store.create_tenant("old", opts),
        InvalidInput,
        "retention",
    );
    assert_eq!(t.store.tenant("acme").unwrap().history_retention_secs, 3600);

    let mut txn = t.store.begin("acme").unwrap();
    for bad in BAD_NAMES {
        assert_err(
            txn.create_table(&spec(bad, &[("k", ColumnType::Int)], &["k"])),
            InvalidInput,
            "invalid table name",
        );
        assert_err(
            txn.create_table(&spec("x", &[(bad, ColumnType::Int)], &[bad])),
            InvalidInput,
            "invalid column name",
        );
        assert_err(
            txn.add_column("t", col(bad, ColumnType::Int)),
            InvalidInput,
            "invalid column name",
        );
        assert_err(
            txn.create_snapshot(bad),
            InvalidInput,
            "invalid snapshot name",
        );
    }
    let bad_specs = [
        (spec("x", &[], &[]), "at least one column"),
        (
            spec("x", &[("k", ColumnType::Int)], &[]),
            "needs a primary key",
        ),
        (spec("x", &[("k", ColumnType::Int)], &["j"]), "not a column"),
        (spec("x", &[("k", ColumnType::Int)], &["k", "k"]), "twice"),
        (
            spec(
                "x",
                &[("k", ColumnType::Int), ("k", ColumnType::String)],
                &["k"],
            ),
            "appears twice",
        ),
        (
            spec("x", &[("f", ColumnType::Float)], &["f"]),
            "keys may be",
        ),
        (spec("x", &[("j", ColumnType::Json)], &["j"]), "keys may be"),
    ];
    for (s, why) in &bad_specs {
        assert_err(txn.create_table(s), InvalidInput, why);
    }
    assert_err(
        txn.create_table(&kv_spec("t")),
        AlreadyExists,
        "already exists",
    );
    assert_err(
        txn.add_column("t", col("s", ColumnType::Int)),
        AlreadyExists,
        "already exists",
    );
    assert_eq!(txn.write_count(), 0);
    assert_err(txn.commit(), InvalidInput, "no writes");

    for bad in ["@Bad", "@", "tomorrow", "-5"] {
        assert_err(AsOf::parse(bad), InvalidInput, "");
    }
    assert_eq!(
        AsOf::parse("@snap-1").unwrap(),
        AsOf::Snapshot("snap-1".into())
    );
    assert_eq!(
        AsOf::parse("115584906813145088").unwrap(),
        AsOf::Ts(Ts(115584906813145088))
    );
    assert_eq!(
        AsOf::parse("-1h30m").unwrap(),
        AsOf::Ago(std::time::Duration::from_secs(5400))
    );
    assert_err(
        AsOf::parse("42"),
        InvalidInput,
        "too small to be a commit ts",
    );
    assert_err(
        AsOf::parse("1732370000"),
        InvalidInput,
        "looks like unix seconds",
    );
    assert_err(
        AsOf::parse("-5 parsecs"),
        InvalidInput,
        "not a relative time",
    );
    assert_eq!(AsOf::parse("latest").unwrap(), AsOf::Latest);
    assert_eq!(state(&t.store, "acme"), before);
}

#[test]
fn unknown_things_are_not_found() {
    let t = TestStore::new();
    let acme = t.tenant("acme", 3600);
    t.kv_table("acme", "t");
    let before = state(&t.store, "acme");
    let s = &t.store;

    assert_err(s.begin("nope"), NotFound, "tenant `nope` not found");
    assert_err(s.read_at("nope", &AsOf::Latest), NotFound, "not found");
    assert_err(s.tenant("nope"), NotFound, "not found");
    assert_err(
        s.alter_tenant("nope", TenantUpdate::default()),
        NotFound,
        "not found",
    );
    assert_err(s.drop_tenant("nope"), NotFound, "not found");
    assert_err(s.pin("nope", Ts::ZERO, "test"), NotFound, "not found");
    assert_err(s.pins("nope"), NotFound, "not found");
    assert_err(s.safe_point("nope"), NotFound, "not found");

    let mut txn = s.begin("acme").unwrap();
    let no_table = "table `nope` not found in tenant `acme`";
    assert_err(txn.table("nope"), NotFound, no_table);
    assert_err(txn.get("nope", &json!(1)), NotFound, no_table);
    assert_err(txn.scan("nope", &ScanRange::default()), NotFound, no_table);
    assert_err(txn.put("nope", &json!({"k": 1})), NotFound, no_table);
    assert_err(txn.delete("nope", &json!(1)), NotFound, no_table);
    assert_err(txn.drop_table("nope"), NotFound, no_table);
    assert_err(
        txn.add_column("nope", col("c", ColumnType::Int)),
        NotFound,
        no_table,
    );
    assert_err(
        txn.drop_snapshot("nope"),
        NotFound,
        "snapshot `nope` not found",
    );
    assert_eq!(txn.write_count(), 0);
    drop(txn);
    assert_err(
        s.read_at("acme", &AsOf::Snapshot("nope".into())),
        NotFound,
        "snapshot `nope`",
    );
    assert_eq!(state(&t.store, "acme"), before);
    assert_eq!(s.tenants(), [acme]);
}

#[test]
fn rows_that_break_the_schema_are_refused() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.kv_table("acme", "t");
    let mut seed = t.store.begin("acme").unwrap();
    seed.put("t", &json!({"k": 1, "s": "one"})).unwrap();
    seed.commit().unwrap();
    let before = state(&t.store, "acme");

    let mut txn = t.store.begin("acme").unwrap();
    let bad_rows = [
        (json!({"k": "1"}), "column `k` (int) must be an integer"),
        (json!({"k": 1.5}), "must be an integer"),
        (json!({"k": 18446744073709551615u64}), "must be an integer"),
        (
            json!({"k": 2, "s": 5}),
            "column `s` (string) must be a string",
        ),
        (json!({"k": 2, "n": "5"}), "column `n` (int)"),
        (json!({"k": 2, "n": true}), "column `n` (int)"),
        (json!({"k": 2, "zip": 1}), "unknown column `zip`"),
        (
            json!({"s": "no key"}),
            "primary key column `k` is missing or null",
        ),
        (json!({"k": null}), "missing or null"),
        (json!([1, "a", 2]), "must be a JSON object"),
        (json!(1), "must be a JSON object"),
        (Value::Null, "must be a JSON object"),
    ];
    for (row, why) in &bad_rows {
        let e = assert_err(txn.put("t", row), InvalidInput, why);
        assert!(
            matches!(e, Error::InvalidRow { ref table, .. } if table == "t"),
            "{e:?}"
        );
    }
    for key in [
        json!("1"),
        json!(null),
        json!([1, 2]),
        json!({"x": 1}),
        json!(1.5),
        json!([]),
    ] {
        assert_err(txn.get("t", &key), InvalidInput, "invalid primary key");
        assert_err(txn.delete("t", &key), InvalidInput, "invalid primary key");
    }
    let bad_range = ScanRange {
        from: Some(json!("a")),
        ..Default::default()
    };
    assert_err(
        txn.scan("t", &bad_range),
        InvalidInput,
        "invalid primary key",
    );
    assert_eq!(txn.write_count(), 0);
    assert_eq!(txn.get("t", &json!(1)).unwrap().unwrap()["s"], "one");
    // A good write in the same transaction still commits, alone.
    txn.put("t", &json!({"k": 2, "s": "two"})).unwrap();
    let ts = txn.commit().unwrap().commit_ts;
    let (log, tables) = state(&t.store, "acme");
    assert_eq!(log.len(), before.0.len() + 1);
    assert_eq!(log.last().unwrap().commit_ts, ts);
    assert_eq!(log.last().unwrap().mutations.len(), 1);
    assert_eq!(
        tables,
        [(
            "t".to_string(),
            vec![
                json!({"k": 1, "s": "one", "n": null}),
                json!({"k": 2, "s": "two", "n": null})
            ]
        )]
    );

    // Columns of every type check their values.
    let mut txn = t.store.begin("acme").unwrap();
    let types = [
        ("f", ColumnType::Float, json!("1.0")),
        ("b", ColumnType::Bool, json!(1)),
        ("y", ColumnType::Bytes, json!("not base64!")),
        ("y2", ColumnType::Bytes, json!(12)),
    ];
    for (name, ty, _) in &types {
        txn.add_column(
            "t",
            Column {
                name: name.to_string(),
                ty: *ty,
            },
        )
        .unwrap();
    }
    for (name, _, bad) in &types {
        assert_err(
            txn.put("t", &json!({"k": 3, *name: bad})),
            InvalidInput,
            &format!("column `{name}`"),
        );
    }
    txn.put(
        "t",
        &json!({"k": 3, "f": 1, "b": false, "y": "AAE=", "y2": ""}),
    )
    .unwrap();
    assert_eq!(
        txn.get("t", &json!(3)).unwrap().unwrap(),
        json!({"k": 3, "s": null, "n": null, "f": 1.0, "b": false, "y": "AAE=", "y2": ""})
    );
}

#[test]
fn read_only_tenants_refuse_writes_but_allow_snapshots_and_reads() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.kv_table("acme", "t");
    t.kv_table("acme", "u");
    let mut seed = t.store.begin("acme").unwrap();
    seed.put("t", &json!({"k": 1, "s": "one"})).unwrap();
    seed.commit().unwrap();
    let pending = {
        let mut txn = t.store.begin("acme").unwrap();
        txn.put("t", &json!({"k": 9})).unwrap();
        txn
    };
    let read_only = TenantUpdate {
        state: Some(TenantState::ReadOnly),
        ..Default::default()
    };
    let (rec, _) = t.store.alter_tenant("acme", read_only).unwrap();
    assert_eq!(rec.state, TenantState::ReadOnly);
    let before = state(&t.store, "acme");

    type Write = fn(&mut tenet_store::Txn) -> tenet_store::Result<()>;
    let writes: [(&str, Write); 6] = [
        ("put", |x| x.put("t", &json!({"k": 2}))),
        ("delete", |x| x.delete("t", &json!(1)).map(|_| ())),
        ("create table", |x| x.create_table(&kv_spec("v")).map(drop)),
        ("add column", |x| {
            x.add_column("t", col("c", ColumnType::Int)).map(drop)
        }),
        ("drop table", |x| x.drop_table("u")),
        ("put and snapshot", |x| {
            x.create_snapshot("mixed")?;
            x.put("t", &json!({"k": 3}))
        }),
    ];
    for (what, write) in writes {
        let mut txn = t.store.begin("acme").unwrap();
        write(&mut txn).unwrap();
        let e = assert_err(txn.commit(), FailedPrecondition, "read_only");
        assert!(matches!(e, Error::TenantState { .. }), "{what}: {e:?}");
        assert!(e.to_string().contains("writing is not allowed"), "{e}");
        assert_eq!(state(&t.store, "acme"), before, "{what} wrote something");
    }
    // A transaction begun while the tenant was writable fails too.
    assert_err(pending.commit(), FailedPrecondition, "read_only");
    assert_eq!(state(&t.store, "acme"), before);

    // Snapshots are allowed, reads work.
    let mut txn = t.store.begin("acme").unwrap();
    let snap = txn.create_snapshot("frozen").unwrap();
    txn.commit().unwrap();
    let at = t
        .store
        .read_at("acme", &AsOf::Snapshot("frozen".into()))
        .unwrap();
    assert_eq!(at.start_ts(), snap.ts);
    assert_eq!(at.scan("t", &ScanRange::default()).unwrap(), before.1[0].1);
    let mut txn = t.store.begin("acme").unwrap();
    txn.drop_snapshot("frozen").unwrap();
    txn.commit().unwrap();
    assert_eq!(
        scan(&t.store, "acme", "t"),
        [json!({"k": 1, "s": "one", "n": null})]
    );

    // Writable again.
    let active = TenantUpdate {
        state: Some(TenantState::Active),
        ..Default::default()
    };
    t.store.alter_tenant("acme", active).unwrap();
    let mut txn = t.store.begin("acme").unwrap();
    txn.put("t", &json!({"k": 2})).unwrap();
    txn.commit().unwrap();
    assert_eq!(scan(&t.store, "acme", "t").len(), 2);
}

#[test]
fn as_of_transactions_and_the_future_are_refused() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    let ts = t.kv_table("acme", "t");
    let before = state(&t.store, "acme");

    let mut past = t.store.read_at("acme", &AsOf::Ts(ts)).unwrap();
    assert_err(
        past.put("t", &json!({"k": 1})),
        InvalidInput,
        "cannot write",
    );
    assert_err(past.delete("t", &json!(1)), InvalidInput, "cannot write");
    assert_err(past.drop_table("t"), InvalidInput, "cannot write");
    assert_err(past.create_snapshot("s"), InvalidInput, "cannot write");
    assert_err(past.commit(), InvalidInput, "cannot commit");
    let mut latest = t.store.read_at("acme", &AsOf::Latest).unwrap();
    assert_err(
        latest.put("t", &json!({"k": 1})),
        InvalidInput,
        "cannot write",
    );

    let future = Ts::from_millis(t.now() + 60_000);
    assert_err(
        t.store.read_at("acme", &AsOf::Ts(future)),
        InvalidInput,
        "in the future",
    );
    assert_err(
        t.store.read_at("acme", &AsOf::Ts(Ts::MAX)),
        InvalidInput,
        "in the future",
    );
    assert_err(
        t.store.pin("acme", future, "test"),
        InvalidInput,
        "in the future",
    );
    assert!(t.store.pins("acme").unwrap().is_empty());
    assert_eq!(state(&t.store, "acme"), before);

    // Even slightly ahead of the clock is the future; the current time is fine, and
    // later commits come after it.
    assert_err(
        t.store
            .read_at("acme", &AsOf::Ts(Ts::from_millis(t.now() + 500))),
        InvalidInput,
        "the newest readable time is",
    );
    let soon = Ts::end_of_millis(t.now());
    let txn = t.store.read_at("acme", &AsOf::Ts(soon)).unwrap();
    assert!(txn.scan("t", &ScanRange::default()).unwrap().is_empty());
    let mut w = t.store.begin("acme").unwrap();
    w.put("t", &json!({"k": 1})).unwrap();
    assert!(w.commit().unwrap().commit_ts > soon);
    assert!(
        txn.scan("t", &ScanRange::default()).unwrap().is_empty(),
        "the read at `soon` changed"
    );
}

#[test]
fn dropped_tenants_leave_nothing_behind() {
    let t = TestStore::new();
    let old = t.tenant("acme", 1);
    let other = t.tenant("globex", 3600);
    t.kv_table("acme", "t");
    t.kv_table("globex", "t");
    let mut txn = t.store.begin("acme").unwrap();
    txn.put("t", &json!({"k": 1, "s": "secret"})).unwrap();
    txn.create_snapshot("s").unwrap();
    txn.commit().unwrap();
    let mut g = t.store.begin("globex").unwrap();
    g.put("t", &json!({"k": 1, "s": "kept"})).unwrap();
    g.commit().unwrap();
    t.store.pin("acme", t.store.visible_ts(), "test").unwrap();
    t.clock.advance(5_000);
    let mut txn = t.store.begin("acme").unwrap();
    txn.put("t", &json!({"k": 2, "s": "after the pin"}))
        .unwrap();
    txn.commit().unwrap();
    t.store.run_gc().unwrap();
    let reader = t.store.read_at("acme", &AsOf::Latest).unwrap();
    // The pin holds the log after it.
    assert_eq!(t.store.read_log(old.id, Ts::ZERO, 100).unwrap().len(), 1);

    t.store.drop_tenant("acme").unwrap();
    assert_err(t.store.tenant("acme"), NotFound, "not found");
    assert_err(t.store.begin("acme"), NotFound, "not found");
    assert!(t.store.tenant_by_id(old.id).is_none());
    assert!(t.store.read_log(old.id, Ts::ZERO, 100).unwrap().is_empty());
    // A reader that started before the drop does not see the data afterwards.
    assert!(reader.scan("t", &ScanRange::default()).is_err());
    drop(reader);
    assert_eq!(t.store.tenants(), std::slice::from_ref(&other));

    let (new, _) = t
        .store
        .create_tenant("acme", TenantOptions::default())
        .unwrap();
    assert!(
        new.id > old.id && new.id > other.id,
        "{} after {}",
        new.id,
        old.id
    );
    assert!(new.created_ts > old.created_ts);
    let txn = t.store.begin("acme").unwrap();
    assert!(txn.tables().unwrap().is_empty());
    assert!(txn.snapshots().unwrap().is_empty());
    assert!(t.store.pins("acme").unwrap().is_empty());
    assert_eq!(t.store.safe_point("acme").unwrap(), Ts::ZERO);
    assert!(t.store.read_log(new.id, Ts::ZERO, 100).unwrap().is_empty());
    // Reading the new tenant at a time from the old one's life shows nothing of it.
    let past = t
        .store
        .read_at("acme", &AsOf::Ts(old.created_ts.next()))
        .unwrap();
    assert!(past.tables().unwrap().is_empty());
    // The other tenant is untouched.
    assert_eq!(
        scan(&t.store, "globex", "t"),
        [json!({"k": 1, "s": "kept", "n": null})]
    );
    // And the name can be used again and again, with ids never reused.
    t.store.drop_tenant("acme").unwrap();
    let (third, _) = t
        .store
        .create_tenant("acme", TenantOptions::default())
        .unwrap();
    assert!(third.id > new.id);
    drop((txn, past));
    // Dropping survives a reopen: nothing of the old tenants comes back.
    let t = t.reopen();
    assert_eq!(t.store.tenants(), [other, third]);
    assert!(t.store.read_log(old.id, Ts::ZERO, 100).unwrap().is_empty());
}

#[test]
fn relative_times_read_against_the_store_clock() {
    let t = TestStore::new();
    t.tenant("acme", 3600);
    t.kv_table("acme", "t");
    let mut w = t.store.begin("acme").unwrap();
    w.put("t", &json!({"k": 1})).unwrap();
    w.commit().unwrap();
    t.clock.advance(10 * 60_000);
    let mut w = t.store.begin("acme").unwrap();
    w.put("t", &json!({"k": 2})).unwrap();
    w.commit().unwrap();
    let ago = |s: &str| {
        let txn = t.store.read_at("acme", &AsOf::parse(s).unwrap()).unwrap();
        (
            txn.start_ts(),
            txn.scan("t", &ScanRange::default()).unwrap().len(),
        )
    };
    let (ts, rows) = ago("-5m");
    assert_eq!(ts, Ts::end_of_millis(t.now() - 5 * 60_000));
    assert_eq!(rows, 1);
    assert_eq!(ago("-0s").1, 2);
    assert_eq!(ago("-9m 59s").1, 1);
}
