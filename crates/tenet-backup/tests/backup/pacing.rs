//! Adaptive pacing (`tenet-jobs`' `pacing.rs`) against a busy foreground: a job the
//! controller slows to its floor still finishes, and cancelling it stays prompt.
//!
//! A real writer saturates the store the whole time. On top of it the test injects
//! the foreground's pain into the store's latency meter: commits recorded at 1 ms while
//! no job runs (the quiet baseline) and at 40 ms while one does, so the controller
//! sees a foreground that suffers as long as any job moves a byte.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tenet_jobs::pacing::MIN_FLOOR;
use tenet_jobs::JobState;
use tenet_store::{ColumnType, TableSpec, TenantOptions};

use crate::common::{col, Env};

fn table(name: &str) -> TableSpec {
    TableSpec {
        name: name.into(),
        columns: vec![
            col("id", ColumnType::Int),
            col("payload", ColumnType::String),
        ],
        primary_key: vec!["id".into()],
    }
}

#[test]
fn a_job_slowed_to_the_floor_still_finishes_and_cancels_promptly() {
    let env = Env::new();
    for t in ["big", "fg"] {
        env.store
            .create_tenant(t, TenantOptions::default())
            .unwrap();
        env.store
            .with_txn(t, |txn| txn.create_table(&table("t")).map(|_| ()))
            .unwrap();
    }
    // 12 MiB: a few seconds at the lowest floor.
    let payload: String = (0..4096)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    for batch in 0..10 {
        env.store
            .with_txn("big", |txn| {
                for i in batch * 300..(batch + 1) * 300 {
                    txn.put("t", &json!({"id": i, "payload": format!("{i}{payload}")}))?;
                }
                Ok(())
            })
            .unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let hurt = Arc::new(AtomicBool::new(false));
    // A real writer, as fast as it can go.
    let writer = {
        let (store, stop) = (env.store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                store
                    .with_txn("fg", |txn| {
                        txn.put("t", &json!({"id": n % 1000, "payload": "x"}))
                    })
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    // The injected pain.
    let injector = {
        let (store, stop, hurt) = (env.store.clone(), stop.clone(), hurt.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let ms = if hurt.load(Ordering::Relaxed) { 40 } else { 1 };
                for _ in 0..50 {
                    store.foreground().commits.record(Duration::from_millis(ms));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let finish = |stop: &AtomicBool| stop.store(true, Ordering::Relaxed);

    // The controller learns the quiet baseline while no job runs.
    let t0 = Instant::now();
    while env.jobs().pacing().commit_baseline_p99_micros.is_none() {
        assert!(t0.elapsed() < Duration::from_secs(10), "no baseline learnt");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A full backup, slowed to the floor, still finishes. Its own throttle (8 MiB/s, a
    // cap the pacer keeps under) only makes it last long enough for the controller to
    // act; the floor is then 2 MiB/s.
    let start = || {
        env.rt
            .block_on(
                env.backups
                    .start_full(env.id("big"), &env.repo, Some(8 << 20)),
            )
            .unwrap()
    };
    let job = start();
    hurt.store(true, Ordering::Relaxed);
    env.jobs().start(job.id).unwrap();
    let started = Instant::now();
    let mut at_floor = false;
    let done = loop {
        let p = env.jobs().pacing();
        at_floor |= p.rate_bytes_per_sec == Some(p.floor_bytes_per_sec);
        let r = env.jobs().get(job.id).unwrap();
        if r.state.is_final() {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the paced job starved: {:?} after {:?}; pacer {p:?}",
            r.progress,
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    hurt.store(false, Ordering::Relaxed);
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert!(at_floor, "the budget never came down to its floor");
    // Slowed, not stalled: it kept at least about the floor's pace (2 MiB/s here).
    let bytes = done.progress.io_bytes;
    let limit = Duration::from_secs_f64(bytes as f64 / MIN_FLOOR * 1.5 + 5.0);
    assert!(took < limit, "{bytes} bytes took {took:?}");

    // Cancelling a job that crawls at the floor takes effect at once.
    let job = start();
    hurt.store(true, Ordering::Relaxed);
    env.jobs().start(job.id).unwrap();
    let t0 = Instant::now();
    loop {
        let p = env.jobs().pacing();
        if p.rate_bytes_per_sec == Some(p.floor_bytes_per_sec) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "never at the floor: {p:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!env.jobs().get(job.id).unwrap().state.is_final());
    let asked = Instant::now();
    env.jobs().cancel(job.id).unwrap();
    let end = env.wait_for(job.id, |r| r.state.is_final());
    let cancel_took = asked.elapsed();
    assert_eq!(end.state, JobState::Cancelled);
    assert!(
        cancel_took < Duration::from_secs(2),
        "cancel took {cancel_took:?}"
    );

    finish(&stop);
    injector.join().unwrap();
    let commits = writer.join().unwrap();
    assert!(
        commits > 100,
        "the writer ran alongside ({commits} commits)"
    );
}
