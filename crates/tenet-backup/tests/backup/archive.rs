//! The log archiver: contiguous segments that hold exactly the tenant's commits, a
//! pin that follows the checkpoint, stop, and `broken` after its budget.

use std::time::{Duration, Instant};

use serde_json::json;
use tenet_backup::archiver::{ArchiveOptions, ArchiveStatus, Archivers};
use tenet_backup::overview::Overview;
use tenet_backup::scheduler::{Limits, Scheduler};
use tenet_backup::segment::read_segment;
use tenet_backup::Inventory;
use tenet_backup::Repo;
use tenet_store::TenantOptions;

use crate::common::{populate, Env};

fn fast() -> ArchiveOptions {
    ArchiveOptions {
        interval_ms: 20,
        segment_max_bytes: 256 << 10,
        budget_secs: 3600,
    }
}

#[test]
fn archiver_ships_every_commit_once_in_order() {
    let env = Env::new();
    env.store
        .create_tenant("a", TenantOptions::default())
        .unwrap();
    env.store
        .create_tenant("quiet", TenantOptions::default())
        .unwrap();
    let archivers = Archivers::new(env.store.clone(), env.rt.handle().clone());
    let st = env
        .rt
        .block_on(archivers.start(env.id("a"), &env.repo, fast()))
        .unwrap();
    let start = st.checkpoint;
    populate(&env.store, "a", 21, 400);
    let last = env.store.visible_ts();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = archivers.state(env.id("a")).unwrap();
        if s.checkpoint >= last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "archiver stuck at {}",
            s.checkpoint
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The pin follows the checkpoint (the old one is released just after the state
    // naming the new one is saved); the quiet neighbour is never pinned.
    let pins = loop {
        let pins = env.store.pins("a").unwrap();
        if pins.len() == 1 || Instant::now() > deadline {
            break pins;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(pins.len(), 1, "{pins:?}");
    assert!(pins[0].ts >= last);
    assert!(env.store.pins("quiet").unwrap().is_empty());

    let stopped = archivers.stop(env.id("a")).unwrap();
    assert_eq!(stopped.status, ArchiveStatus::Stopped);
    assert!(env.store.pins("a").unwrap().is_empty());

    // Segments are contiguous from the start and hold exactly the log.
    let repo = Repo::open(&env.repo).unwrap();
    let tid = env.store.tenant("a").unwrap().id;
    let segs = env
        .rt
        .block_on(Inventory::load(&repo, tid))
        .unwrap()
        .archive;
    assert!(segs.len() >= 2, "{} segments", segs.len());
    let mut at = start;
    let mut archived = Vec::new();
    for s in &segs {
        assert_eq!(s.start, at, "gap or overlap at {at}");
        at = s.end;
        let bytes = env.rt.block_on(repo.get(&s.key)).unwrap();
        let (info, recs) = read_segment(&s.key, tid, &bytes).unwrap();
        assert_eq!((info.start, info.end), (s.start, s.end));
        archived.extend(recs);
    }
    assert!(at >= last);
    let log = env.store.read_log(tid, start, usize::MAX).unwrap();
    let log: Vec<_> = log.into_iter().filter(|r| r.commit_ts <= at).collect();
    assert_eq!(archived, log);
    assert!(archived.len() > 10);
}

#[test]
fn an_archiver_that_cannot_upload_breaks_and_releases_its_pin() {
    let env = Env::new();
    env.store
        .create_tenant("b", TenantOptions::default())
        .unwrap();
    let archivers = Archivers::new(env.store.clone(), env.rt.handle().clone());
    let opts = ArchiveOptions {
        budget_secs: 0,
        ..fast()
    };
    env.rt
        .block_on(archivers.start(env.id("b"), &env.repo, opts))
        .unwrap();
    // Make the repository unwritable: `tenants` becomes a file.
    let tenants = env.repo_dir.path().join("tenants");
    let _ = std::fs::remove_dir_all(&tenants);
    std::fs::write(&tenants, b"not a directory").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    populate(&env.store, "b", 3, 20);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = archivers.state(env.id("b")).unwrap();
        if s.status == ArchiveStatus::Broken {
            assert!(s.error.is_some());
            break;
        }
        assert!(Instant::now() < deadline, "never broke: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(env.store.pins("b").unwrap().is_empty());
    let e = archivers.state(u64::MAX).unwrap_err();
    assert_eq!(e.code().as_str(), "TENANT_NOT_FOUND", "{e}");
}

#[test]
fn an_archiver_whose_log_was_collected_breaks_instead_of_shipping_a_hole() {
    let env = Env::new();
    let opts = TenantOptions {
        history_retention_secs: Some(1),
        ..Default::default()
    };
    env.store.create_tenant("h", opts).unwrap();
    let archivers = Archivers::new(env.store.clone(), env.rt.handle().clone());
    let slow = ArchiveOptions {
        interval_ms: 2500,
        ..fast()
    };
    env.rt
        .block_on(archivers.start(env.id("h"), &env.repo, slow))
        .unwrap();
    // Lose the archiver's pin (as a crash at the wrong moment could), commit, and let
    // GC remove the log before the archiver's next cut.
    for p in env.store.pins("h").unwrap() {
        env.store.unpin(p.tenant_id, p.id).unwrap();
    }
    populate(&env.store, "h", 2, 20);
    std::thread::sleep(Duration::from_millis(1200));
    env.store.run_gc().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = archivers.state(env.id("h")).unwrap();
        if s.status == ArchiveStatus::Broken {
            let e = s.error.unwrap();
            assert!(e.contains("garbage-collected"), "{e}");
            break;
        }
        assert!(Instant::now() < deadline, "never broke: {s:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing with a hole was shipped.
    let repo = Repo::open(&env.repo).unwrap();
    let tid = env.store.tenant("h").unwrap().id;
    let segs = env
        .rt
        .block_on(Inventory::load(&repo, tid))
        .unwrap()
        .archive;
    assert!(segs.is_empty(), "{segs:?}");
}

/// The overview (`tenet status`) caches what it read of repositories, but never shows
/// less than what this store has written since: once a segment is shipped or a backup
/// taken, the next view has it, with no refresh asked for.
#[test]
fn the_overview_follows_shipped_segments_and_new_backups_without_a_refresh() {
    let env = Env::new();
    env.store
        .create_tenant("o", TenantOptions::default())
        .unwrap();
    populate(&env.store, "o", 3, 20);
    let (first, f) = env.backup("o");
    let archivers = env.archive("o");
    let sched = Scheduler::new(env.backups.clone(), archivers.clone(), Limits::default());
    let overview = Overview::new(env.backups.clone(), archivers.clone(), sched);
    let view = || {
        env.rt
            .block_on(overview.view())
            .unwrap()
            .into_iter()
            .find(|v| v.tenant == "o")
            .unwrap()
    };
    let v = view();
    assert!(v.protection.restorable_until >= Some(f), "{v:?}");
    assert_eq!(v.holdings.last_full.unwrap().backup_id, first);

    // A commit, shipped: the next view is restorable up to it, with no RPO.
    let ((), info) = env
        .store
        .with_txn("o", |t| {
            t.put(
                "beta",
                &json!({"k": 1000, "s": "late", "f": 1.5, "b": false, "y": "", "j": null, "pad": "", "extra": "x"}),
            )
        })
        .unwrap();
    env.wait_archived(&archivers, "o", info.commit_ts);
    let v = view();
    assert!(
        v.protection.restorable_until >= Some(info.commit_ts),
        "restorable until {:?}, the archiver has shipped {}: {v:?}",
        v.protection.restorable_until,
        info.commit_ts
    );
    assert_eq!(v.protection.rpo_ms, Some(0), "{v:?}");

    // A new full backup: the next view names it.
    let (second, _) = env.backup("o");
    assert_eq!(view().holdings.last_full.unwrap().backup_id, second);
}
