//! Prune on a real repository: fulls, an incremental chain and an archive with many
//! segments; after prune every kept point still restores and equals the source's
//! time-travel read, points before the window are refused, and an unfinished restore
//! keeps what it reads.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tenet_backup::planner::Target;
use tenet_backup::prune::Retention;
use tenet_jobs::JobState;
use tenet_store::{TenantOptions, Ts};

use crate::common::{populate, random_row, Env};

/// `n` commits of random rows into `tenant`; their commit ts.
fn commits(env: &Env, tenant: &str, rng: &mut StdRng, n: usize) -> Vec<Ts> {
    (0..n)
        .map(|_| {
            let mut txn = env.store.begin(tenant).unwrap();
            let k = rng.random_range(0..120);
            txn.put("gamma", &random_row(rng, k, 30)).unwrap();
            if rng.random_bool(0.2) {
                txn.delete("alpha", &json!([k, format!("key-{k}")]))
                    .unwrap();
            }
            let ts = txn.commit().unwrap().commit_ts;
            // Spread the commits over several archive segments.
            std::thread::sleep(std::time::Duration::from_millis(3));
            ts
        })
        .collect()
}

#[test]
fn prune_keeps_the_window_restorable_and_equal_to_the_source() {
    let env = Env::new();
    env.store
        .create_tenant("p", TenantOptions::default())
        .unwrap();
    let archivers = env.archive("p");
    populate(&env.store, "p", 11, 120);
    let mut rng = StdRng::seed_from_u64(11);
    let (f1, _) = env.backup("p");
    let mut before = commits(&env, "p", &mut rng, 25);
    let (_f2, t2) = env.backup("p");
    before.extend(commits(&env, "p", &mut rng, 10));
    let incr = env.run(
        env.rt
            .block_on(env.backups.start_incr(env.id("p"), None, None))
            .unwrap(),
    );
    assert_eq!(incr.state, JobState::Succeeded, "{:?}", incr.error);
    let mut after = commits(&env, "p", &mut rng, 15);
    let (_f3, t3) = env.backup("p");
    after.extend(commits(&env, "p", &mut rng, 15));
    let last = *after.last().unwrap();
    env.wait_archived(&archivers, "p", last);

    // Keep 2 fulls: every point from f2 on stays, f1 and the log before f2 go.
    let subject = env.subject("p");
    let retention = Retention {
        keep_within_secs: None,
        keep_full: Some(2),
    };
    let (_, dry) = env
        .rt
        .block_on(env.backups.prune_dry_run(&subject, None, retention))
        .unwrap();
    assert_eq!(dry.keep_from, Some(t2));
    let deleted: Vec<&str> = dry.delete.iter().map(|d| d.id.as_str()).collect();
    assert!(deleted.contains(&f1.as_str()), "{deleted:?}");
    assert!(deleted.len() > 3, "segments before f2 go too: {deleted:?}");
    assert!(dry.delete.iter().all(|d| d.end <= t2), "{:?}", dry.delete);
    let objects_before = env.objects().len();

    let job = env.run(
        env.rt
            .block_on(env.backups.start_prune(&subject, None, retention, None))
            .unwrap(),
    );
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let r = job.result.unwrap();
    assert_eq!(r["deleted"], json!(dry.delete.len()), "{r}");
    assert!(env.objects().len() < objects_before);
    assert!(
        !env.objects().iter().any(|o| o.contains(&f1)),
        "f1's files are gone"
    );

    // Every kept point restores and equals the source's time travel.
    let points = env
        .rt
        .block_on(env.backups.restore_points(&subject, None))
        .unwrap();
    assert_eq!(points.len(), 1, "{points:?}");
    assert_eq!(points[0].from, t2);
    assert!(points[0].to >= last);
    let mut targets = vec![Target::At(t2), Target::At(t3), Target::Latest];
    for _ in 0..3 {
        targets.push(Target::At(after[rng.random_range(0..after.len())]));
    }
    targets.push(Target::At(*before.last().unwrap()));
    for (n, target) in targets.iter().enumerate() {
        env.assert_restores_as_source("p", target, &format!("p_{n}"));
    }
    // Before the window: refused, saying what is restorable.
    let e = env
        .rt
        .block_on(env.backups.start_restore_to(
            &subject,
            &Target::At(before[3]),
            "gone",
            None,
            None,
        ))
        .unwrap_err();
    assert_eq!(e.code().as_str(), "NOT_RESTORABLE", "{e}");

    // A second prune finds nothing more to delete.
    let (_, again) = env
        .rt
        .block_on(env.backups.prune_dry_run(&subject, None, retention))
        .unwrap();
    assert!(again.delete.is_empty(), "{:?}", again.delete);
}

#[test]
fn an_unfinished_restore_keeps_what_it_reads() {
    let env = Env::new();
    env.store
        .create_tenant("q", TenantOptions::default())
        .unwrap();
    populate(&env.store, "q", 3, 50);
    let (old, _) = env.backup("q");
    commits(&env, "q", &mut StdRng::seed_from_u64(4), 5);
    env.backup("q");
    // A restore of the old backup, created but not run (as if queued behind others).
    let job = env.start_restore("q", &old, "q_old").unwrap();
    let dry_run = || {
        let retention = Retention {
            keep_within_secs: None,
            keep_full: Some(1),
        };
        env.rt
            .block_on(
                env.backups
                    .prune_dry_run(&env.subject("q"), None, retention),
            )
            .unwrap()
            .1
    };
    let d = dry_run();
    assert!(d.delete.is_empty(), "{:?}", d.delete);
    assert!(
        d.notes
            .iter()
            .any(|n| n.contains(&format!("job {}", job.id))),
        "{:?}",
        d.notes
    );
    let done = env.run(job);
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    let d = dry_run();
    assert_eq!(d.delete.len(), 1);
    assert_eq!(d.delete[0].id, old);
}
