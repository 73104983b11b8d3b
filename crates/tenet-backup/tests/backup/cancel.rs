//! Cancelling a running backup or restore stops it promptly and cleans up.

use std::time::{Duration, Instant};

use tenet_backup::RestoreRequest;
use tenet_jobs::JobState;
use tenet_store::TenantOptions;

use crate::common::{populate, Env};

#[test]
fn cancel_backup_and_restore() {
    let env = Env::new();
    env.store
        .create_tenant("t", TenantOptions::default())
        .unwrap();
    populate(&env.store, "t", 3, 2000);

    // A throttled backup (64 KiB/s: minutes of work) cancelled while it exports.
    let job = env
        .rt
        .block_on(
            env.backups
                .start_full(env.id("t"), &env.repo, Some(64 << 10)),
        )
        .unwrap();
    env.jobs().start(job.id).unwrap();
    env.wait_for(job.id, |j| j.phase == "export");
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    env.jobs().cancel(job.id).unwrap();
    let end = env.wait_for(job.id, |j| j.state.is_final());
    assert_eq!(end.state, JobState::Cancelled, "{:?}", end.error);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "cancel took {:?}",
        asked.elapsed()
    );
    let objects = env.objects();
    assert_eq!(
        objects,
        vec!["tenet-repo.json".to_string()],
        "orphans: {objects:?}"
    );
    assert!(
        env.store.pins("t").unwrap().is_empty(),
        "the pin was released"
    );
    assert!(env.backups.list(None).unwrap().is_empty());

    // A throttled restore cancelled while it ingests: the target is dropped.
    let (id, _) = env.backup("t");
    let job = env
        .rt
        .block_on(env.backups.start_restore(&RestoreRequest {
            source: Some(env.subject("t")),
            backup_id: id.clone(),
            target: "t_copy".into(),
            repo: None,
            throttle_bytes_per_sec: Some(64 << 10),
        }))
        .unwrap();
    assert_eq!(
        env.store.tenant("t_copy").unwrap().state,
        tenet_store::TenantState::Restoring
    );
    env.jobs().start(job.id).unwrap();
    env.wait_for(job.id, |j| j.phase == "ingest");
    std::thread::sleep(Duration::from_millis(300));
    env.jobs().cancel(job.id).unwrap();
    let end = env.wait_for(job.id, |j| j.state.is_final());
    assert_eq!(end.state, JobState::Cancelled, "{:?}", end.error);
    assert!(
        env.store.tenant("t_copy").is_err(),
        "the target was dropped"
    );
    assert!(
        !env.dir
            .path()
            .join("tmp")
            .join(format!("restore-{}", job.id))
            .exists(),
        "temporary files were removed"
    );
    // The name is free again and the backup is intact.
    let ok = env.restore("t", &id, "t_copy");
    assert_eq!(ok.state, JobState::Succeeded, "{:?}", ok.error);
    // Cancelling a finished job is refused clearly.
    let e = env.jobs().cancel(ok.id).unwrap_err();
    assert!(e.to_string().contains("already ended"), "{e}");
}
