//! Point-in-time restore: a full backup plus the archived log, replayed to T.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tenet_backup::archiver::{ArchiveOptions, Archivers};
use tenet_backup::planner::Target;
use tenet_jobs::JobState;
use tenet_store::{AsOf, TenantOptions, Ts};

use crate::common::{all_types, dump, populate, random_row, DdlWorkload, Env};

#[test]
fn restore_to_many_points_in_time_equals_the_source_then() {
    let env = Env::new();
    env.store
        .create_tenant("p", TenantOptions::default())
        .unwrap();
    env.store
        .create_tenant("neighbour", TenantOptions::default())
        .unwrap();
    populate(&env.store, "neighbour", 8, 50);
    let archivers = env.archive("p");
    populate(&env.store, "p", 5, 200);
    let (_, f) = env.backup("p");

    // A workload after F with DDL: new table, new column, dropped table, deletes.
    let commits = DdlWorkload {
        seed: 99,
        steps: 40,
        keys: 250,
        max_puts: 6,
        create_late: 5,
        add_column: 12,
        drop_beta: 20,
        snapshot: Some(25),
        deletes: true,
    }
    .run(&env.store, "p");
    let mut rng = StdRng::seed_from_u64(100);
    let last = *commits.last().unwrap();
    env.wait_archived(&archivers, "p", last);

    let points = env
        .rt
        .block_on(env.backups.restore_points(&env.subject("p"), None))
        .unwrap();
    assert_eq!(points.len(), 1);
    assert!(points[0].from == f && points[0].to >= last, "{points:?}");

    // Exactly at commits, between commits, just before a commit, at F, the latest.
    let mut targets = vec![
        Target::At(f),
        Target::At(commits[4]),
        Target::At(commits[5]),
        Target::BeforeCommit(commits[20]),
        Target::At(commits[20]),
        Target::At(Ts(commits[30].0 + 1)),
        Target::Latest,
    ];
    for _ in 0..3 {
        targets.push(Target::At(commits[rng.random_range(0..commits.len())]));
    }
    for (n, target) in targets.iter().enumerate() {
        env.assert_restores_as_source("p", target, &format!("p_at_{n}"));
    }
    // The neighbour was never touched; the source still archives.
    assert!(env.store.pins("neighbour").unwrap().is_empty());

    // Refusals that say what is available.
    let e = env
        .rt
        .block_on(env.backups.start_restore_to(
            &env.subject("p"),
            &Target::At(Ts(f.0 - 1)),
            "x",
            None,
            None,
        ))
        .unwrap_err();
    assert_eq!(e.code().as_str(), "NOT_RESTORABLE", "{e}");
    assert!(
        e.to_string().contains("before the first full backup"),
        "{e}"
    );
    let future = Ts::from_millis(env.store.clock().now_millis() + 3_600_000);
    let e = env
        .rt
        .block_on(env.backups.start_restore_to(
            &env.subject("p"),
            &Target::At(future),
            "x",
            None,
            None,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("in the future"), "{e}");
    assert!(env.store.tenant("x").is_err());
}

#[test]
fn chains_of_incremental_backups_restore_without_an_archiver() {
    let env = Env::new();
    env.store
        .create_tenant("c", TenantOptions::default())
        .unwrap();
    populate(&env.store, "c", 6, 100);
    let e = env
        .rt
        .block_on(env.backups.start_incr(env.id("c"), None, None))
        .unwrap_err();
    assert!(e.to_string().contains("take a full backup first"), "{e}");
    let (full, f) = env.backup("c");
    let mut rng = StdRng::seed_from_u64(5);
    let mut points = vec![f];
    let mut incrs = Vec::new();
    for round in 0..3 {
        for _ in 0..5 {
            let mut txn = env.store.begin("c").unwrap();
            let k = rng.random_range(0..150);
            let row = random_row(&mut rng, k, 20);
            txn.put("gamma", &row).unwrap();
            if round == 1 {
                txn.delete("alpha", &json!([3, "key-3"])).unwrap();
            }
            points.push(txn.commit().unwrap().commit_ts);
        }
        let job = env
            .rt
            .block_on(env.backups.start_incr(env.id("c"), None, None))
            .unwrap();
        let job = env.run(job);
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
        let r = job.result.unwrap();
        assert_eq!(
            r["parent"],
            json!(incrs.last().cloned().unwrap_or(full.clone()))
        );
        incrs.push(r["backup_id"].as_str().unwrap().to_string());
        points.push(Ts(r["backup_ts"].as_u64().unwrap()));
    }
    // Every commit point and every incremental's end is restorable from the chain.
    for (n, t) in points.iter().enumerate().step_by(3) {
        let into = format!("c_{n}");
        let job = env
            .rt
            .block_on(env.backups.start_restore_to(
                &env.subject("c"),
                &Target::At(*t),
                &into,
                None,
                None,
            ))
            .unwrap();
        let job = env.run(job);
        assert_eq!(job.state, JobState::Succeeded, "{t}: {:?}", job.error);
        assert_eq!(
            dump(&env.store, &into, &AsOf::Latest),
            dump(&env.store, "c", &AsOf::Ts(*t))
        );
    }
    let v = env.verify(incrs.last().unwrap());
    assert_eq!(v.state, JobState::Succeeded, "{:?}", v.error);
    // Restoring an incremental backup by id gives the state at its end.
    let job = env.restore("c", incrs.last().unwrap(), "c_by_id");
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(
        dump(&env.store, "c_by_id", &AsOf::Latest),
        dump(&env.store, "c", &AsOf::Ts(*points.last().unwrap()))
    );
    // Past the chain's end (nothing archived since), restoring is refused.
    let mut txn = env.store.begin("c").unwrap();
    txn.put("gamma", &random_row(&mut rng, 1, 1)).unwrap();
    let after = txn.commit().unwrap().commit_ts;
    let e = env
        .rt
        .block_on(env.backups.start_restore_to(
            &env.subject("c"),
            &Target::At(after),
            "late",
            None,
            None,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("not archived yet"), "{e}");
    // The source tenant may be dropped: its backups still restore it, by name.
    let expected = dump(&env.store, "c", &AsOf::Ts(points[4]));
    env.store.drop_tenant("c").unwrap();
    let job = env
        .rt
        .block_on(env.backups.start_restore_to(
            &env.subject("c"),
            &Target::At(points[4]),
            "c_revived",
            None,
            None,
        ))
        .unwrap();
    assert_eq!(env.run(job).state, JobState::Succeeded);
    assert_eq!(dump(&env.store, "c_revived", &AsOf::Latest), expected);
}

/// Random workloads with DDL over two tenants, both archived, with full and
/// incremental backups of each at random moments; restores of one tenant to random
/// times (at commits, just before them, between them) equal that tenant's own state
/// then, read by time travel, and the other tenant is untouched.
#[test]
fn random_workloads_with_backups_at_random_moments() {
    for seed in 0..3u64 {
        // Seed 1 replays every batch through SST ingestion, the others through writes.
        let env = Env::with_options(tenet_store::StoreOptions {
            sync_writes: false,
            replay_ingest_min_bytes: if seed == 1 { 0 } else { 4 << 20 },
            ..Default::default()
        });
        let archivers = Archivers::new(env.store.clone(), env.rt.handle().clone());
        let tenants = ["ta", "tb"];
        for t in tenants {
            env.store
                .create_tenant(t, TenantOptions::default())
                .unwrap();
            let opts = ArchiveOptions {
                interval_ms: 10,
                ..Default::default()
            };
            env.rt
                .block_on(archivers.start(env.id(t), &env.repo, opts))
                .unwrap();
            let mut txn = env.store.begin(t).unwrap();
            txn.create_table(&all_types("base")).unwrap();
            txn.commit().unwrap();
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut commits = Vec::new();
        let mut tables = vec!["base".to_string()];
        // A first full backup of `ta` early, so most commits are restorable.
        if seed % 2 == 0 {
            env.backup("ta");
        }
        let mut had_full = seed % 2 == 0;
        for step in 0..80 {
            let t = tenants[rng.random_range(0..2)];
            match rng.random_range(0..20) {
                0 if t == "ta" => {
                    let name = format!("tbl{step}");
                    let mut txn = env.store.begin(t).unwrap();
                    txn.create_table(&all_types(&name)).unwrap();
                    commits.push(txn.commit().unwrap().commit_ts);
                    tables.push(name);
                }
                1 if t == "ta" && tables.len() > 1 => {
                    let name = tables.remove(rng.random_range(1..tables.len()));
                    let mut txn = env.store.begin(t).unwrap();
                    txn.drop_table(&name).unwrap();
                    commits.push(txn.commit().unwrap().commit_ts);
                }
                2 => {
                    env.backup(t);
                    had_full |= t == "ta";
                }
                3 if had_full || t == "tb" => {
                    if let Ok(job) = env
                        .rt
                        .block_on(env.backups.start_incr(env.id(t), None, None))
                    {
                        assert_eq!(env.run(job).state, JobState::Succeeded);
                    }
                }
                _ => {
                    let mut txn = env.store.begin(t).unwrap();
                    let table = if t == "ta" {
                        tables[rng.random_range(0..tables.len())].clone()
                    } else {
                        "base".to_string()
                    };
                    for _ in 0..rng.random_range(1..8) {
                        let k = rng.random_range(0..40);
                        if rng.random_bool(0.2) {
                            txn.delete(&table, &json!([k, format!("key-{}", k % 7)]))
                                .unwrap();
                        } else {
                            let pad = rng.random_range(0..50);
                            txn.put(&table, &random_row(&mut rng, k, pad)).unwrap();
                        }
                    }
                    let ts = txn.commit().unwrap().commit_ts;
                    if t == "ta" {
                        commits.push(ts);
                    }
                }
            }
        }
        if !had_full {
            env.backup("ta");
        }
        // The archiver of `ta` cuts segments when `ta` commits (and every 30 s when
        // idle), so it catches up with `ta`'s last commit, not the store's.
        let last = *commits.iter().max().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while archivers.state(env.id("ta")).unwrap().checkpoint < last {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        let points = env
            .rt
            .block_on(env.backups.restore_points(&env.subject("ta"), None))
            .unwrap();
        let (from, to) = (points[0].from, points.last().unwrap().to);
        let tb_before = dump(&env.store, "tb", &AsOf::Latest);
        let candidates: Vec<Ts> = commits
            .iter()
            .flat_map(|c| [*c, c.prev(), Ts(c.0 + 7)])
            .chain([from, to])
            .filter(|t| *t >= from && *t <= to)
            .collect();
        for n in 0..6 {
            let t = candidates[rng.random_range(0..candidates.len())];
            let into = format!("r{n}");
            let job = env
                .rt
                .block_on(env.backups.start_restore_to(
                    &env.subject("ta"),
                    &Target::At(t),
                    &into,
                    None,
                    None,
                ))
                .unwrap();
            let job = env.run(job);
            assert_eq!(
                job.state,
                JobState::Succeeded,
                "seed {seed} T {t}: {:?}",
                job.error
            );
            assert_eq!(
                dump(&env.store, &into, &AsOf::Latest),
                dump(&env.store, "ta", &AsOf::Ts(t)),
                "seed {seed} T {t}"
            );
        }
        assert_eq!(dump(&env.store, "tb", &AsOf::Latest), tb_before);
    }
}
