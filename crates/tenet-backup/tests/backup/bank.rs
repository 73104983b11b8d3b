//! In the spirit of Jepsen's bank test: concurrent transfers between accounts while
//! the log is archived and backups are taken; every restored state conserves the
//! total, and equals the source as of the same time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tenet_backup::planner::Target;
use tenet_jobs::JobState;
use tenet_store::{AsOf, Column, ColumnType, ErrorKind, ScanRange, TableSpec, TenantOptions, Ts};

use crate::common::Env;

const ACCOUNTS: i64 = 20;
const START: i64 = 1000;

fn total(store: &tenet_store::Store, tenant: &str, as_of: &AsOf) -> i64 {
    store
        .read_at(tenant, as_of)
        .unwrap()
        .scan("accounts", &ScanRange::default())
        .unwrap()
        .iter()
        .map(|r| r["balance"].as_i64().unwrap())
        .sum()
}

#[test]
fn restored_states_conserve_money() {
    let env = Env::new();
    env.store
        .create_tenant("bank", TenantOptions::default())
        .unwrap();
    env.store
        .with_txn("bank", |txn| {
            txn.create_table(&TableSpec {
                name: "accounts".into(),
                columns: vec![
                    Column {
                        name: "id".into(),
                        ty: ColumnType::Int,
                    },
                    Column {
                        name: "balance".into(),
                        ty: ColumnType::Int,
                    },
                ],
                primary_key: vec!["id".into()],
            })?;
            for id in 0..ACCOUNTS {
                txn.put("accounts", &json!({"id": id, "balance": START}))?;
            }
            Ok(())
        })
        .unwrap();
    let archivers = env.archive("bank");

    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let (store, stop, commits) = (env.store.clone(), stop.clone(), commits.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(w);
                while !stop.load(Ordering::Relaxed) {
                    let (a, b) = (rng.random_range(0..ACCOUNTS), rng.random_range(0..ACCOUNTS));
                    let amount = rng.random_range(1..50);
                    if a == b {
                        continue;
                    }
                    let r = store.with_txn("bank", |txn| {
                        let get = |txn: &tenet_store::Txn, id: i64| {
                            txn.get("accounts", &json!(id))
                                .map(|r| r.unwrap()["balance"].as_i64().unwrap())
                        };
                        let (ba, bb) = (get(txn, a)?, get(txn, b)?);
                        // An overdraft moves nothing (but still writes both rows).
                        let amount = if ba < amount { 0 } else { amount };
                        txn.put("accounts", &json!({"id": a, "balance": ba - amount}))?;
                        txn.put("accounts", &json!({"id": b, "balance": bb + amount}))?;
                        Ok(())
                    });
                    match r {
                        Ok(((), info)) => commits.lock().unwrap().push(info.commit_ts),
                        Err(e) if e.kind() == ErrorKind::Retryable => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (_, f) = env.backup("bank");
    std::thread::sleep(Duration::from_millis(200));
    let incr = env
        .rt
        .block_on(env.backups.start_incr(env.id("bank"), None, None))
        .unwrap();
    assert_eq!(env.run(incr).state, JobState::Succeeded);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let commits = commits.lock().unwrap().clone();
    let last = *commits.iter().max().unwrap();
    env.wait_archived(&archivers, "bank", last);
    let after_f: Vec<Ts> = commits.into_iter().filter(|t| *t > f).collect();
    assert!(
        after_f.len() > 20,
        "only {} transfers after F",
        after_f.len()
    );
    let mut rng = StdRng::seed_from_u64(42);
    for n in 0..6 {
        let t = match n {
            0 => f,
            1 => last,
            _ => {
                let c = after_f[rng.random_range(0..after_f.len())];
                if n % 2 == 0 {
                    c
                } else {
                    c.prev()
                }
            }
        };
        let into = format!("bank_{n}");
        let job = env
            .rt
            .block_on(env.backups.start_restore_to(
                &env.subject("bank"),
                &Target::At(t),
                &into,
                None,
                None,
            ))
            .unwrap();
        let job = env.run(job);
        assert_eq!(job.state, JobState::Succeeded, "{t}: {:?}", job.error);
        assert_eq!(
            total(&env.store, &into, &AsOf::Latest),
            ACCOUNTS * START,
            "at {t}"
        );
        let restored = env
            .store
            .read_at(&into, &AsOf::Latest)
            .unwrap()
            .scan("accounts", &ScanRange::default())
            .unwrap();
        let source = env
            .store
            .read_at("bank", &AsOf::Ts(t))
            .unwrap()
            .scan("accounts", &ScanRange::default())
            .unwrap();
        assert_eq!(restored, source, "at {t}");
    }
}
