//! In-place restore: the live tenant put back to a point in time from a full backup and
//! the archived log (DDL included), keeping its id and table ids; the undo snapshot;
//! refusals.

use tenet_backup::planner::Target;
use tenet_jobs::JobState;
use tenet_store::{AsOf, RevertScope, RevertTo, TenantOptions};

use crate::common::{all_types, dump, populate, table_ids, DdlWorkload, Env};

#[test]
fn in_place_restore_to_a_point_in_time_then_undo() {
    let env = Env::new();
    env.store
        .create_tenant("p", TenantOptions::default())
        .unwrap();
    env.store
        .create_tenant("other", TenantOptions::default())
        .unwrap();
    populate(&env.store, "other", 2, 20);
    let archivers = env.archive("p");
    populate(&env.store, "p", 4, 150);
    env.backup("p");
    let commits = DdlWorkload {
        seed: 7,
        steps: 30,
        keys: 200,
        max_puts: 5,
        create_late: 4,
        add_column: 9,
        drop_beta: 14,
        snapshot: None,
        deletes: false,
    }
    .run(&env.store, "p");
    let last = *commits.last().unwrap();
    env.wait_archived(&archivers, "p", last);
    let target = commits[20];
    let id = env.id("p");
    let then = dump(&env.store, "p", &AsOf::Ts(target));
    let ids_then = {
        let txn = env.store.read_at("p", &AsOf::Ts(target)).unwrap();
        txn.tables()
            .unwrap()
            .iter()
            .map(|t| (t.name.clone(), t.id))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let other = dump(&env.store, "other", &AsOf::Latest);
    // Drift after the target: a dropped table, a new one, deletes.
    env.store
        .with_txn("p", |t| {
            t.drop_table("late")?;
            t.create_table(&all_types("extra"))?;
            t.delete("alpha", &serde_json::json!([1, "key-1"]))?;
            Ok(())
        })
        .unwrap();
    let before = dump(&env.store, "p", &AsOf::Latest);

    let job = env
        .rt
        .block_on(env.backups.start_restore_in_place(
            &env.subject("p"),
            &Target::At(target),
            None,
            None,
        ))
        .unwrap();
    let job = env.run(job);
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let r = job.result.unwrap();
    assert_eq!(r["in_place"], true, "{r}");
    assert!(r["replayed_records"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(env.id("p"), id);
    assert_eq!(dump(&env.store, "p", &AsOf::Latest), then);
    assert_eq!(table_ids(&env.store, "p"), ids_then);
    assert_eq!(dump(&env.store, "other", &AsOf::Latest), other);
    assert!(env.store.tenants().iter().all(|t| !t.is_scratch()));

    // The undo: roll back to the snapshot the restore took.
    let snap = r["undo_snapshot"].as_str().unwrap().to_string();
    env.store
        .revert(
            "p",
            &RevertTo::AsOf(AsOf::Snapshot(snap)),
            &RevertScope::Tenant,
        )
        .unwrap();
    assert_eq!(dump(&env.store, "p", &AsOf::Latest), before);

    // A tenant being restored cannot be restored in place.
    let (backup, _) = env.backup("other");
    let pending = env.start_restore("other", &backup, "copy").unwrap();
    let e = env
        .rt
        .block_on(env.backups.start_restore_in_place(
            &env.subject("copy"),
            &Target::Latest,
            None,
            None,
        ))
        .unwrap_err();
    assert!(e.to_string().contains("restoring"), "{e}");
    env.jobs().cancel(pending.id).unwrap();
    env.run(pending);
}
