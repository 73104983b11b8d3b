//! Standbys against the model: a random workload with DDL on the source (archived
//! every 20 ms) is followed by a standby in a second store pointed at the same
//! repository; at every commit ts of the source the standby reads exactly what the
//! source reads, and a neighbour tenant of the standby's store is untouched. Then a
//! promotion at an exact ts. The same with an S3 repository (s3s-fs in process).

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tenet_backup::standby::Standbys;
use tenet_jobs::JobState;
use tenet_store::{AsOf, ColumnType, TenantOptions, TenantState, Ts};

use crate::common::{all_types, dump, random_row, Env};

/// One random step on the source: rows, or a catalog change. Returns its commit ts.
fn step(env: &Env, rng: &mut StdRng, n: usize) -> Ts {
    let store = &env.store;
    let mut txn = store.begin("src").unwrap();
    let tables: Vec<String> = txn
        .tables()
        .unwrap()
        .into_iter()
        .map(|t| t.name.clone())
        .collect();
    match rng.random_range(0..10) {
        0 => {
            txn.create_table(&all_types(&format!("t{n}"))).unwrap();
        }
        1 if tables.len() > 1 => {
            let t = &tables[rng.random_range(0..tables.len())];
            txn.drop_table(t).unwrap();
        }
        2 if !tables.is_empty() => {
            let t = &tables[rng.random_range(0..tables.len())];
            let _ = txn.add_column(t, crate::common::col(&format!("c{n}"), ColumnType::Int));
        }
        _ => {
            for t in &tables {
                for _ in 0..rng.random_range(0..6) {
                    let k = rng.random_range(0..40);
                    if rng.random_bool(0.2) {
                        let _ = txn.delete(t, &json!([k, format!("key-{}", k % 7)]));
                    } else {
                        txn.put(t, &random_row(rng, k, 20)).unwrap();
                    }
                }
            }
        }
    }
    if txn.tables().unwrap().is_empty() {
        txn.create_table(&all_types(&format!("t{n}"))).unwrap();
    }
    txn.commit().unwrap().commit_ts
}

fn wait_applied(standbys_store: &tenet_store::Store, id: u64, at: Ts) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while standbys_store.standby_applied(id).unwrap_or(Ts::ZERO) < at {
        assert!(
            Instant::now() < deadline,
            "the standby did not apply up to {at}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn follow_model(source: &Env, other: &Env, repo: &str) {
    let mut rng = StdRng::seed_from_u64(7);
    source
        .store
        .create_tenant("src", TenantOptions::default())
        .unwrap();
    let mut commits = vec![step(source, &mut rng, 0)];
    let job = source.run(
        source
            .rt
            .block_on(source.backups.start_full(source.id("src"), repo, None))
            .unwrap(),
    );
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let f = Ts(job.result.unwrap()["backup_ts"].as_u64().unwrap());
    let archivers =
        tenet_backup::archiver::Archivers::new(source.store.clone(), source.rt.handle().clone());
    let opts = tenet_backup::archiver::ArchiveOptions {
        interval_ms: 20,
        ..Default::default()
    };
    source
        .rt
        .block_on(archivers.start(source.id("src"), repo, opts))
        .unwrap();
    for n in 1..15 {
        commits.push(step(source, &mut rng, n));
    }
    // Archived before the standbys start, so they start past some segments (which a
    // prune below may delete).
    source.wait_archived(&archivers, "src", *commits.last().unwrap());

    // The standby's store has a tenant of its own, which must not change.
    other
        .store
        .create_tenant("neighbour", TenantOptions::default())
        .unwrap();
    other
        .store
        .with_txn("neighbour", |t| {
            t.create_table(&all_types("n"))?;
            t.put("n", &random_row(&mut StdRng::seed_from_u64(1), 1, 5))
        })
        .unwrap();
    let neighbour = dump(&other.store, "neighbour", &AsOf::Latest);
    let subject = other
        .rt
        .block_on(other.backups.resolve("src", Some(repo)))
        .unwrap();
    let job = other
        .rt
        .block_on(other.backups.start_standby(
            &subject,
            "follower",
            Some(repo),
            Duration::from_millis(20),
        ))
        .unwrap();
    let job = other.run(job);
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let sb = other.store.tenant("follower").unwrap();
    assert_eq!(sb.state, TenantState::Standby);
    // A second standby that does not follow (no follower runs for it here): promoted
    // later at an exact ts the archive holds.
    let job = other
        .rt
        .block_on(other.backups.start_standby(
            &subject,
            "exact",
            Some(repo),
            Duration::from_millis(20),
        ))
        .unwrap();
    assert_eq!(other.run(job).state, JobState::Succeeded);
    let exact = other.store.tenant("exact").unwrap();
    let standbys = Standbys::new(other.store.clone(), other.rt.handle().clone());
    standbys.start_due().unwrap();
    other
        .rt
        .block_on(standbys.set_paused(exact.id, true))
        .unwrap();
    for n in 15..60 {
        commits.push(step(source, &mut rng, n));
        if n % 15 == 0 {
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    let last = *commits.last().unwrap();
    wait_applied(&other.store, sb.id, last);
    // Time travel at every commit the history keeps equals the source's.
    let mut compared = 0;
    // Before the full backup (F) the standby has no history.
    for ts in commits.iter().filter(|t| **t >= f) {
        let at = AsOf::Ts(*ts);
        compared += 1;
        assert_eq!(
            dump(&other.store, "follower", &at),
            dump(&source.store, "src", &at),
            "at {ts}"
        );
    }
    assert!(compared >= 59, "only {compared} commits compared");
    assert_eq!(
        dump(&other.store, "follower", &AsOf::Latest),
        dump(&source.store, "src", &AsOf::Ts(last))
    );
    // Not writable, and not readable past what it applied.
    let err = other
        .store
        .with_txn("follower", |t| t.create_table(&all_types("x")));
    assert!(err.unwrap_err().to_string().contains("takes no writes"));
    let future = AsOf::Ts(Ts(other.store.visible_ts().0 + (10_000 << 16)));
    let _ = other
        .store
        .advance_clock(Ts(other.store.visible_ts().0 + (20_000 << 16)));
    let msg = other
        .store
        .read_at("follower", &future)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("applied"), "{msg}");
    assert_eq!(dump(&other.store, "neighbour", &AsOf::Latest), neighbour);

    // The standbys record what they still need: a prune of the source keeps the log
    // after the paused standby's applied ts, and says why.
    other.rt.block_on(standbys.refresh_readers());
    let history = source.subject("src");
    let readers = |env: &Env| {
        let r = tenet_backup::Repo::open(repo).unwrap();
        env.rt
            .block_on(tenet_backup::prune::readers(&r, history.id))
            .unwrap()
    };
    assert_eq!(readers(source).len(), 2);
    let job = source.run(
        source
            .rt
            .block_on(source.backups.start_full(source.id("src"), repo, None))
            .unwrap(),
    );
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let keep_one = tenet_backup::prune::Retention {
        keep_within_secs: None,
        keep_full: Some(1),
    };
    let dry_run = || {
        source
            .rt
            .block_on(source.backups.prune_dry_run(&history, Some(repo), keep_one))
            .unwrap()
            .1
    };
    let d = dry_run();
    let paused_at = other.store.standby_applied(exact.id).unwrap();
    let segments: Vec<_> = d
        .delete
        .iter()
        .filter(|o| o.kind == tenet_backup::prune::ObjectKind::Segment)
        .collect();
    assert!(!segments.is_empty(), "{:?}", d.delete);
    assert!(segments.iter().all(|o| o.end <= paused_at), "{segments:?}");
    assert!(
        d.notes.iter().any(|n| n.contains("standby readers")),
        "{:?}",
        d.notes
    );

    // Promote at an exact commit the archive holds, before its end: the state there,
    // and a history of its own (the archive goes on with the source's other future).
    let at = commits[40];
    let future = Ts(last.0 + (3_600_000 << 16));
    let msg = other
        .rt
        .block_on(standbys.promote(exact.id, Some(future), true, false))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("is in the future"), "{msg}");
    let end = other.rt.block_on(standbys.status(exact.id)).unwrap();
    let beyond = end.archived_until_ts.next();
    let msg = other
        .rt
        .block_on(standbys.promote(exact.id, Some(beyond), true, false))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("is not archived"), "{msg}");
    let r = other
        .rt
        .block_on(standbys.promote(exact.id, Some(at), true, false))
        .unwrap();
    assert_eq!(r.promoted_ts, at);
    assert!(!r.continues_history, "{r:?}");
    // Promoted, it no longer reads the history: its reader record is gone, and what
    // only it held may go.
    assert_eq!(readers(source).len(), 1);
    assert!(dry_run().delete.len() > d.delete.len());
    assert_eq!(
        dump(&other.store, "exact", &AsOf::Latest),
        dump(&source.store, "src", &AsOf::Ts(at))
    );
    // The source is alive: promoting the follower needs --force.
    let msg = other
        .rt
        .block_on(standbys.promote(sb.id, None, false, false))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("still active"), "{msg}");
    // It cannot go back behind what it applied.
    let msg = other
        .rt
        .block_on(standbys.promote(sb.id, Some(commits[40]), true, false))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("cannot go back"), "{msg}");
    let r = other
        .rt
        .block_on(standbys.promote(sb.id, None, true, false))
        .unwrap();
    assert!(r.continues_history, "{r:?}");
    assert!(r.promoted_ts >= last);
    assert_eq!(r.may_lose_after, Some(r.promoted_ts));
    assert_eq!(
        other.store.tenant("follower").unwrap().state,
        TenantState::Active
    );
    other
        .store
        .with_txn("follower", |t| t.create_table(&all_types("after")))
        .unwrap();
    archivers.stop(source.id("src")).unwrap();
}

#[test]
fn a_standby_in_another_store_reads_what_its_source_read_at_every_commit() {
    let (source, other) = (Env::new(), Env::new());
    let repo = source.repo.clone();
    follow_model(&source, &other, &repo);
}

#[test]
fn a_standby_follows_through_s3() {
    let (source, other) = (Env::new(), Env::new());
    let s3_root = tempfile::tempdir().unwrap();
    let endpoint = crate::s3_server::start_s3(&source.rt, s3_root.path());
    for (k, v) in crate::s3_server::s3_env(&endpoint) {
        std::env::set_var(k, v);
    }
    follow_model(&source, &other, "s3://tenet/standby");
}
