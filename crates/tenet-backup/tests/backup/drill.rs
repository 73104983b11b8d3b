//! Restore drills: a point of the window restored into a scratch tenant equals the
//! source there; a corrupt backup makes the drill fail and the overview say so; the
//! scratch tenant and the pin never stay behind.

use tenet_backup::archiver::Archivers;
use tenet_backup::overview::Overview;
use tenet_backup::planner::Target;
use tenet_backup::scheduler::{Limits, Scheduler};
use tenet_jobs::JobState;
use tenet_store::TenantOptions;

use crate::common::{populate, Env};

fn scratch_tenants(env: &Env) -> Vec<String> {
    env.store
        .tenants()
        .into_iter()
        .map(|t| t.name)
        .filter(|n| n.starts_with(".drill"))
        .collect()
}

#[test]
fn a_drill_proves_a_point_and_a_corrupt_backup_fails_it_and_shows() {
    let env = Env::new();
    env.store
        .create_tenant("d", TenantOptions::default())
        .unwrap();
    populate(&env.store, "d", 9, 200);
    let (_, f) = env.backup("d");
    let id = env.id("d");
    let pins = env.store.pins("d").unwrap().len();

    // At a given time and at a random one: both compared with the source's time travel.
    for at in [Some(f), None] {
        let job = env.run(
            env.rt
                .block_on(env.backups.start_drill(id, None, at))
                .unwrap(),
        );
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
        let r = job.result.unwrap();
        assert_eq!(r["compared_by"], "time travel", "{r}");
        assert!(r["rows"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["target_ts"], f.0.to_string(), "the window is F alone");
    }
    assert!(scratch_tenants(&env).is_empty());
    assert_eq!(
        env.store.pins("d").unwrap().len(),
        pins,
        "the drill's pin is released"
    );
    // A time outside the window is refused at once.
    let e = env
        .rt
        .block_on(env.backups.start_drill(id, None, Some(f.prev())))
        .unwrap_err();
    assert_eq!(e.code().as_str(), "NOT_RESTORABLE", "{e}");

    // A flipped byte in the full backup's data: the drill fails and says where.
    let data = env
        .objects()
        .into_iter()
        .find(|o| o.ends_with(".tdf"))
        .unwrap();
    let path = env.repo_dir.path().join(&data);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let job = env.run(
        env.rt
            .block_on(env.backups.start_drill(id, None, None))
            .unwrap(),
    );
    assert_eq!(job.state, JobState::Failed);
    let err = job.error.unwrap();
    assert!(
        err.code == "BACKUP_CORRUPT" || err.code == "VERIFY_FAILED",
        "{err:?}"
    );
    assert!(err.message.contains(&data), "{}", err.message);
    assert!(
        scratch_tenants(&env).is_empty(),
        "{:?}",
        scratch_tenants(&env)
    );
    assert_eq!(env.store.pins("d").unwrap().len(), pins);

    // The overview: the failed drill is a problem; the last proven time stays F.
    let archivers = Archivers::new(env.store.clone(), env.rt.handle().clone());
    let sched = Scheduler::new(env.backups.clone(), archivers.clone(), Limits::default());
    let overview = Overview::new(env.backups.clone(), archivers, sched);
    let views = env.rt.block_on(overview.view()).unwrap();
    let d = views.iter().find(|v| v.tenant == "d").unwrap();
    assert!(
        d.problems
            .iter()
            .any(|p| p.contains("the last restore drill") && p.contains(&data)),
        "{:?}",
        d.problems
    );
    assert_eq!(d.proven_restorable, Some(f));
    assert_eq!(d.last_drill.as_ref().map(|l| l.succeeded), Some(false));
    // A restore of the same backup fails the same way: the drill saw what a user would.
    let e = env.run(
        env.rt
            .block_on(env.backups.start_restore_to(
                &env.subject("d"),
                &Target::At(f),
                "d2",
                None,
                None,
            ))
            .unwrap(),
    );
    assert_eq!(e.state, JobState::Failed);
}
