//! Backup → restore into a new tenant → identical rows at F.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::json;
use tenet_jobs::JobState;
use tenet_store::{AsOf, TenantOptions, TenantState};

use crate::common::{dump, populate, random_row, table_ids, Env};

#[test]
fn random_tenants_round_trip() {
    let env = Env::new();
    for seed in 0..3u64 {
        let src = format!("src{seed}");
        env.store
            .create_tenant(&src, TenantOptions::default())
            .unwrap();
        populate(&env.store, &src, seed, 400);
        // A neighbour whose rows must not leak into the backup.
        let other = format!("other{seed}");
        env.store
            .create_tenant(&other, TenantOptions::default())
            .unwrap();
        populate(&env.store, &other, seed + 100, 50);

        let (id, f) = env.backup(&src);
        let at_f = dump(&env.store, &src, &AsOf::Ts(f));
        let latest_before = dump(&env.store, &src, &AsOf::Latest);
        assert!(
            !at_f.contains_key("doomed"),
            "the dropped table is not in the backup"
        );
        assert!(at_f["alpha"].len() > 100);

        let target = format!("copy{seed}");
        let job = env.restore(&src, &id, &target);
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
        let t = env.store.tenant(&target).unwrap();
        assert_eq!(t.state, TenantState::Active);

        // Identical rows (full scan) at F, different ids.
        assert_eq!(dump(&env.store, &target, &AsOf::Latest), at_f);
        let (a, b) = (table_ids(&env.store, &src), table_ids(&env.store, &target));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (name, id) in &a {
            assert_ne!(*id, b[name], "table {name} kept its id");
        }
        assert_ne!(t.id, env.store.tenant(&src).unwrap().id);
        // The source is untouched.
        assert_eq!(dump(&env.store, &src, &AsOf::Latest), latest_before);
        // The restored tenant's history starts at F and it is writable.
        let e = env
            .store
            .read_at(&target, &AsOf::Ts(tenet_store::Ts(f.0 - 1)))
            .and_then(|t| t.scan("alpha", &Default::default()))
            .unwrap_err();
        assert!(e.to_string().contains("older than the history"), "{e}");
        let mut txn = env.store.begin(&target).unwrap();
        txn.put(
            "alpha",
            &json!({"k": 99999, "s": "new", "f": 1.0, "b": false, "y": "", "j": 1, "pad": ""}),
        )
        .unwrap();
        txn.commit().unwrap();
        // Digest check by the verify job too.
        let v = env.verify(&id);
        assert_eq!(v.state, JobState::Succeeded, "{:?}", v.error);
    }
    // The backups outlive their tenant: drop the source, restore again.
    let src0 = env.id("src0");
    env.store.drop_tenant("src0").unwrap();
    assert_eq!(
        env.subject("src0").id,
        src0,
        "a dropped tenant resolves by its backups"
    );
    let list = env.backups.list(Some(src0)).unwrap();
    assert_eq!(list.len(), 1);
    let job = env.restore("src0", &list[0].id, "again");
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(
        dump(&env.store, "again", &AsOf::Latest),
        dump(&env.store, "copy0", &AsOf::Ts(env.store.visible_ts()))
            .into_iter()
            .map(|(k, mut v)| {
                if k == "alpha" {
                    v.retain(|r| r.get("k") != Some(&json!(99999)));
                }
                (k, v)
            })
            .collect()
    );
}

#[test]
fn backup_while_a_writer_commits() {
    let env = Env::new();
    env.store
        .create_tenant("busy", TenantOptions::default())
        .unwrap();
    populate(&env.store, "busy", 7, 2000);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (env.store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut txn = store.begin("busy").unwrap();
                for i in 0..20 {
                    let row = random_row(&mut rng, (n * 20 + i) % 3000, 100);
                    txn.put("alpha", &row).unwrap();
                }
                let _ = txn.delete("gamma", &json!([n % 2000, format!("key-{}", n % 7)]));
                if txn.commit().is_ok() {
                    n += 1;
                }
            }
            n
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (id, f) = env.backup("busy");
    std::thread::sleep(std::time::Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let commits = writer.join().unwrap();
    assert!(commits > 5, "the writer committed {commits} times");
    assert!(env.store.visible_ts() > f, "writes went on past F");
    let job = env.restore("busy", &id, "busy_copy");
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(
        dump(&env.store, "busy_copy", &AsOf::Latest),
        dump(&env.store, "busy", &AsOf::Ts(f))
    );
    assert_ne!(
        dump(&env.store, "busy", &AsOf::Latest),
        dump(&env.store, "busy", &AsOf::Ts(f))
    );
    // The backup's pin is gone.
    assert!(env.store.pins("busy").unwrap().is_empty());
}

#[test]
fn two_backups_of_one_tenant_do_not_run_at_once() {
    let env = Env::new();
    env.store
        .create_tenant("t", TenantOptions::default())
        .unwrap();
    env.store
        .create_tenant("u", TenantOptions::default())
        .unwrap();
    populate(&env.store, "t", 1, 40);
    populate(&env.store, "u", 2, 40);
    let first = env.start_backup("t").unwrap();
    let e = env.start_backup("t").unwrap_err();
    assert_eq!(e.code().as_str(), "JOB_CONFLICT", "{e}");
    assert!(
        e.to_string().contains(&format!("job {}", first.id)) && e.to_string().contains("cancel"),
        "{e}"
    );
    // Another tenant's backup runs concurrently.
    let other = env.start_backup("u").unwrap();
    env.jobs().start(first.id).unwrap();
    env.jobs().start(other.id).unwrap();
    let a = env.wait_for(first.id, |j| j.state.is_final());
    let b = env.wait_for(other.id, |j| j.state.is_final());
    assert_eq!(
        (a.state, b.state),
        (JobState::Succeeded, JobState::Succeeded)
    );
    // Once finished, the next backup of `t` is accepted.
    let (id2, _) = env.backup("t");
    assert_eq!(env.backups.list(Some(env.id("t"))).unwrap().len(), 2);
    assert!(env.backups.list(None).unwrap().iter().any(|b| b.id == id2));
}

#[test]
fn restore_of_a_backup_older_than_the_retention_survives_gc() {
    let env = Env::new();
    let _gc = env.store.spawn_gc(std::time::Duration::from_millis(10));
    env.store
        .create_tenant(
            "old",
            TenantOptions {
                history_retention_secs: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
    populate(&env.store, "old", 4, 300);
    let (id, f) = env.backup("old");
    let at_f = dump(&env.store, "old", &AsOf::Ts(f));
    // Change everything, then let F fall out of the source's retention window.
    let mut txn = env.store.begin("old").unwrap();
    txn.drop_table("alpha").unwrap();
    txn.commit().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // The restored tenant inherits the 1 s retention; GC runs all along.
    let job = env.restore("old", &id, "old_copy");
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(dump(&env.store, "old_copy", &AsOf::Latest), at_f);
}

/// Export tasks cut their shard into several data files (here every 16 KiB, as they do
/// every 16 MiB), and the restore verifies the tenant in several ranges: the files'
/// rows and digests, and the ranges', add up to the tables'.
#[test]
fn shards_cut_into_many_files_restore_and_verify_in_ranges() {
    let env = Env::new();
    env.store
        .create_tenant("many", TenantOptions::default())
        .unwrap();
    populate(&env.store, "many", 7, 400);
    // And a table of 12 MB: 12 data blocks of 1 MiB, so a dozen files.
    let mut txn = env.store.begin("many").unwrap();
    txn.create_table(&crate::common::all_types("blob")).unwrap();
    txn.commit().unwrap();
    let mut x = 7u64;
    for batch in 0..6 {
        let mut txn = env.store.begin("many").unwrap();
        for k in 0..1000 {
            let pad: String = (0..128)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    format!("{:016x}", x >> 1)
                })
                .collect();
            txn.put("blob", &json!({"k": batch * 1000 + k, "s": "", "pad": pad}))
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let at_f_id = env.id("many");
    let params = tenet_backup::BackupParams {
        tenant_id: at_f_id,
        tenant: "many".into(),
        repo: env.repo.clone(),
        new_repository: true,
        file_bytes: Some(16 << 10),
    };
    let job = env
        .jobs()
        .create(
            tenet_backup::KIND_BACKUP_FULL,
            "many",
            serde_json::to_value(params).unwrap(),
            None,
            tenet_jobs::JobOwner::tenant(at_f_id),
        )
        .unwrap();
    let job = env.run(job);
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let r = job.result.unwrap();
    let id = r["backup_id"].as_str().unwrap().to_string();
    let f = tenet_store::Ts(r["backup_ts"].as_u64().unwrap());
    assert!(
        r["files"].as_u64().unwrap() >= 3 + 10,
        "one file for each small table, ten or more for the blob: {r}"
    );
    let names = env.objects();
    assert!(
        names.iter().any(|n| n.ends_with("-0000-001.tdf")),
        "a shard's second file: {names:?}"
    );

    let restored = env.restore("many", &id, "many2");
    assert_eq!(restored.state, JobState::Succeeded, "{:?}", restored.error);
    assert_eq!(
        dump(&env.store, "many2", &AsOf::Latest),
        dump(&env.store, "many", &AsOf::Ts(f))
    );
    let bounds = restored.checkpoint["verify_bounds"].as_array().unwrap();
    assert!(
        bounds.iter().any(|t| t.as_array().unwrap().len() >= 2),
        "the blob table verified in 3 ranges or more: {bounds:?}"
    );
    assert_eq!(env.verify(&id).state, JobState::Succeeded);
}

/// Dropping a restored tenant frees its files at once: a restore's ingested files hold
/// that tenant alone, and without being deleted they would wait for a compaction
/// (which, in the last level, may never come), keeping their disk space and memory.
#[test]
fn dropping_a_restored_tenant_frees_its_files() {
    let env = Env::new();
    env.store
        .create_tenant("src", TenantOptions::default())
        .unwrap();
    populate(&env.store, "src", 11, 2000);
    let (id, _) = env.backup("src");
    let before = env.store.size_bytes();
    let restored = env.restore("src", &id, "copy");
    assert_eq!(restored.state, JobState::Succeeded, "{:?}", restored.error);
    let with_copy = env.store.size_bytes();
    assert!(with_copy > before, "{before} → {with_copy}");
    let src = dump(&env.store, "src", &AsOf::Latest);
    env.store.drop_tenant("copy").unwrap();
    let after = env.store.size_bytes();
    assert!(
        after <= before + (with_copy - before) / 4,
        "dropping the copy freed {} of its {} bytes",
        with_copy.saturating_sub(after),
        with_copy - before
    );
    // The source is untouched.
    assert_eq!(dump(&env.store, "src", &AsOf::Latest), src);
}
