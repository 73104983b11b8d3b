//! The commit log: exactly the committed transactions of one tenant, in order.

use serde_json::{json, Value};
use tenet_store::catalog::{self, CatalogEntry, CATALOG_TABLE, SYSTEM_TENANT, TENANTS_TABLE};
use tenet_store::keys::{decode_pk, KeyValue};
use tenet_store::row::decode_row;
use tenet_store::{ColumnType, ErrorKind, LogRecord, Mutation, TableDef, Ts};

use crate::common::*;

/// A readable form of a mutation: (table id, key, row JSON or catalog entry or null).
fn show(m: &Mutation, tables: &[&TableDef]) -> (u64, Vec<KeyValue>, Value) {
    let key = decode_pk(&m.pk_enc).unwrap();
    let value = match &m.value {
        None => Value::Null,
        Some(bytes) if m.table_id == CATALOG_TABLE => match catalog::decode_entry(bytes).unwrap() {
            CatalogEntry::Table(t) => {
                json!({"table": t.name, "id": t.id, "version": t.schema_version})
            }
            CatalogEntry::Snapshot(s) => json!({"snapshot": s.name, "ts": s.ts.0}),
        },
        Some(bytes) => {
            // The first schema version of the table that decodes the row.
            let (def, values) = tables
                .iter()
                .filter(|d| d.id == m.table_id)
                .find_map(|d| decode_row(d, bytes).ok().map(|v| (d, v)))
                .expect("a known table");
            tenet_store::schema::row_json(def, values)
        }
    };
    (m.table_id, key, value)
}

fn int(k: i64) -> Vec<KeyValue> {
    vec![KeyValue::Int(k)]
}

fn cat_key(kind: &str, name: &str) -> Vec<KeyValue> {
    vec![KeyValue::Str(kind.into()), KeyValue::Str(name.into())]
}

#[test]
fn read_log_returns_exactly_the_committed_transactions() {
    let t = TestStore::new();
    let acme = t.tenant("acme", 3600);
    let globex = t.tenant("globex", 3600);
    let s = &t.store;
    let mut commits: Vec<Ts> = Vec::new();

    // 1: DDL.
    let mut txn = s.begin("acme").unwrap();
    let v1 = txn.create_table(&kv_spec("t")).unwrap();
    commits.push(txn.commit().unwrap().commit_ts);
    t.kv_table("globex", "t"); // interleaved commits of another tenant
                               // 2: two rows.
    let mut txn = s.begin("acme").unwrap();
    txn.put("t", &json!({"k": 2, "s": "two"})).unwrap();
    txn.put("t", &json!({"k": 1, "s": "one", "n": 1})).unwrap();
    txn.put("t", &json!({"k": 1, "s": "uno", "n": 1})).unwrap(); // last write wins
    commits.push(txn.commit().unwrap().commit_ts);
    let mut g = s.begin("globex").unwrap();
    g.put("t", &json!({"k": 1, "s": "globex"})).unwrap();
    g.commit().unwrap();
    // A transaction that fails to commit is not in the log.
    let mut loser = s.begin("acme").unwrap();
    loser.put("t", &json!({"k": 3})).unwrap();
    // 3: a delete and a put; the add column with a row under the new schema.
    let mut txn = s.begin("acme").unwrap();
    txn.delete("t", &json!(1)).unwrap();
    txn.put("t", &json!({"k": 3, "s": "three"})).unwrap();
    commits.push(txn.commit().unwrap().commit_ts);
    assert_eq!(loser.commit().unwrap_err().kind(), ErrorKind::Retryable);
    // An aborted transaction is not in the log either.
    let mut aborted = s.begin("acme").unwrap();
    aborted.put("t", &json!({"k": 4})).unwrap();
    drop(aborted);
    // 4: ALTER and a row in one transaction.
    let mut txn = s.begin("acme").unwrap();
    let v2 = txn.add_column("t", col("b", ColumnType::Bool)).unwrap();
    txn.put("t", &json!({"k": 5, "b": true})).unwrap();
    commits.push(txn.commit().unwrap().commit_ts);
    // 5: a snapshot.
    let mut txn = s.begin("acme").unwrap();
    let snap = txn.create_snapshot("snap").unwrap();
    commits.push(txn.commit().unwrap().commit_ts);
    // 6: DROP TABLE.
    let mut txn = s.begin("acme").unwrap();
    txn.drop_table("t").unwrap();
    commits.push(txn.commit().unwrap().commit_ts);

    let log = s.read_log(acme.id, Ts::ZERO, 1000).unwrap();
    assert_eq!(log.iter().map(|r| r.commit_ts).collect::<Vec<_>>(), commits);
    assert!(log.iter().all(|r| r.tenant_id == acme.id));
    let tables = [&*v1, &*v2];
    let shown: Vec<Vec<_>> = log
        .iter()
        .map(|r| r.mutations.iter().map(|m| show(m, &tables)).collect())
        .collect();
    let (v1id, tid) = (v1.id, v1.id);
    let expected = vec![
        vec![(
            0,
            cat_key("table", "t"),
            json!({"table": "t", "id": v1id, "version": 1}),
        )],
        vec![
            (tid, int(1), json!({"k": 1, "s": "uno", "n": 1})),
            (tid, int(2), json!({"k": 2, "s": "two", "n": null})),
        ],
        vec![
            (tid, int(1), Value::Null),
            (tid, int(3), json!({"k": 3, "s": "three", "n": null})),
        ],
        vec![
            (
                0,
                cat_key("table", "t"),
                json!({"table": "t", "id": v1id, "version": 2}),
            ),
            (
                tid,
                int(5),
                json!({"k": 5, "s": null, "n": null, "b": true}),
            ),
        ],
        vec![(
            0,
            cat_key("snapshot", "snap"),
            json!({"snapshot": "snap", "ts": snap.ts.0}),
        )],
        vec![(0, cat_key("table", "t"), Value::Null)],
    ];
    assert_eq!(shown, expected);
    assert!(log
        .iter()
        .map(LogRecord::has_ddl)
        .eq([true, false, false, true, true, true]));

    // Paging: strictly after `after`, at most `max`.
    let page = s.read_log(acme.id, commits[1], 2).unwrap();
    assert_eq!(page, log[2..4]);
    assert_eq!(
        s.read_log(acme.id, commits[1].next(), 100).unwrap(),
        log[2..]
    );
    assert_eq!(
        s.read_log(acme.id, commits[1].prev(), 1).unwrap(),
        log[1..2]
    );
    assert!(s.read_log(acme.id, Ts::ZERO, 0).unwrap().is_empty());
    assert!(s.read_log(acme.id, commits[5], 100).unwrap().is_empty());
    let mut resumed = Vec::new();
    let mut after = Ts::ZERO;
    loop {
        let page = s.read_log(acme.id, after, 1).unwrap();
        let Some(last) = page.last() else { break };
        after = last.commit_ts;
        resumed.extend(page);
    }
    assert_eq!(resumed, log);

    // The other tenant's log holds only its own two commits.
    let other = s.read_log(globex.id, Ts::ZERO, 1000).unwrap();
    assert_eq!(other.len(), 2);
    assert!(other.iter().all(|r| r.tenant_id == globex.id));
    assert!(other.iter().all(|r| !commits.contains(&r.commit_ts)));
    // A tenant id that does not exist has no log.
    assert!(s
        .read_log(globex.id + 100, Ts::ZERO, 1000)
        .unwrap()
        .is_empty());

    // Tenant creation is a registry write of the system tenant.
    let system = s.read_log(SYSTEM_TENANT, Ts::ZERO, 1000).unwrap();
    let created: Vec<(u64, Vec<KeyValue>)> = system
        .iter()
        .flat_map(|r| {
            r.mutations
                .iter()
                .map(|m| (m.table_id, decode_pk(&m.pk_enc).unwrap()))
        })
        .collect();
    assert_eq!(
        created,
        [
            (TENANTS_TABLE, int(acme.id as i64)),
            (TENANTS_TABLE, int(globex.id as i64))
        ]
    );
    assert_eq!(system[0].commit_ts, acme.created_ts);
}
