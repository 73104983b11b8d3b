//! `tenet bench pitr`: the log side of data protection, on one store with fsync per
//! commit.
//!
//! 1. Foreground commit throughput (4 writers, 10 rows of 1 KiB per commit) with
//!    nothing else running, with the tenant's log archiver on, and with full backups
//!    of a neighbour tenant running back to back, unthrottled and throttled.
//! 2. Archive RPO under that steady load: every 50 ms, now minus the archived
//!    checkpoint; p50/p99/max.
//! 3. Incremental backup after changing 1% of a tenant, vs its full backup.
//! 4. Log replay speed of a point-in-time restore: MiB/s of commit records replayed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;
use tenet_backup::archiver::{ArchiveOptions, Archivers};
use tenet_backup::planner::Target;
use tenet_backup::{Backups, Subject};
use tenet_jobs::{JobManager, JobState};
use tenet_store::{Store, StoreOptions, TenantOptions};

use crate::bench::{bench_table_named, fill, payloads, run_job, temp_dir};
use crate::output::CliError;

const MIB: f64 = 1024.0 * 1024.0;

/// Runs 4 writers for `secs` on `tenant`; returns commits/s.
fn write_load(store: &Store, tenant: &str, secs: f64, payloads: &Arc<Vec<String>>) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4u64)
        .map(|w| {
            let (store, stop, commits, payloads) = (
                store.clone(),
                stop.clone(),
                commits.clone(),
                payloads.clone(),
            );
            let tenant = tenant.to_string();
            std::thread::spawn(move || {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let r = store.with_txn(&tenant, |txn| {
                        for i in 0..10 {
                            let id = (w << 40) | (seq * 10 + i);
                            txn.put(
                                "load",
                                &json!({"id": id, "payload": payloads[(id % 16) as usize]}),
                            )?;
                        }
                        Ok(())
                    });
                    if r.is_ok() {
                        commits.fetch_add(1, Ordering::Relaxed);
                    }
                    seq += 1;
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    commits.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64()
}

pub fn run(seconds: u64, mib: u64) -> Result<(), CliError> {
    let dir = temp_dir("tenet-bench-pitr-")?;
    let repo_dir = temp_dir("tenet-bench-pitr-repo-")?;
    let repo = format!("file://{}", repo_dir.path().display());
    let store = Store::open(dir.path(), StoreOptions::default())?;
    let rt = crate::bench::runtime()?;
    let backups = Backups::new(JobManager::new(store.clone(), 2, rt.handle().clone()));
    let archivers = Archivers::new(store.clone(), rt.handle().clone());
    let payloads = Arc::new(payloads());
    let err = |e: tenet_backup::Error| CliError::other(e);
    let secs = seconds as f64;

    println!("setting up: tenant `fg` (foreground load) and `big` ({mib} MiB)…");
    store.create_tenant("fg", TenantOptions::default())?;
    store.with_txn("fg", |txn| txn.create_table(&bench_table_named("load")))?;
    store.create_tenant("big", TenantOptions::default())?;
    fill(&store, "big", "t", mib * 1024, &mut crate::bench::texts())?;
    let (fg, big) = (store.tenant("fg")?.id, store.tenant("big")?.id);

    // 1 + 2. Foreground throughput with and without the archiver / a backup, in
    // alternating rounds (off on on off, twice) so that compaction debt building up
    // during the run weighs on both sides alike.
    let abba = |switch: &mut dyn FnMut(bool)| -> (f64, f64) {
        let (mut off, mut on) = (0.0, 0.0);
        for c in [false, true, true, false, false, true, true, false] {
            switch(c);
            let r = write_load(&store, "fg", secs / 4.0, &payloads);
            if c {
                on += r / 4.0;
            } else {
                off += r / 4.0;
            }
        }
        switch(false);
        (off, on)
    };
    let opts = ArchiveOptions::default();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (archivers, sampling, store) = (archivers.clone(), sampling.clone(), store.clone());
        std::thread::spawn(move || {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            while sampling.load(Ordering::Relaxed) {
                if let Ok(st) = archivers.state(fg) {
                    // Only while it runs, after its first cut.
                    if archivers.is_running(st.tenant_id) && st.segments > 0 {
                        let now = store.clock().now_millis();
                        let _ = h.record(now.saturating_sub(st.checkpoint.millis()));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            h
        })
    };
    let mut archive_switch = |on: bool| {
        if on && !archivers.is_running(fg) {
            let _ = rt.block_on(archivers.start(fg, &repo, opts.clone()));
        } else if !on {
            let _ = archivers.stop(fg);
        }
    };
    let (base, archiving) = abba(&mut archive_switch);
    sampling.store(false, Ordering::Relaxed);
    let rpo = sampler
        .join()
        .map_err(|_| CliError::other("sampler panicked"))?;

    // Full backups of `big`, back to back while "on".
    let run_backups = Arc::new(AtomicBool::new(false));
    let quit = Arc::new(AtomicBool::new(false));
    let throttle_now = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let looper = {
        let (backups, run, quit, throttle_now, done) = (
            backups.clone(),
            run_backups.clone(),
            quit.clone(),
            throttle_now.clone(),
            done.clone(),
        );
        let repo = repo.clone();
        let handle = rt.handle().clone();
        std::thread::spawn(move || {
            while !quit.load(Ordering::Relaxed) {
                if !run.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let t = throttle_now.load(Ordering::Relaxed);
                let throttle = (t > 0).then_some(t);
                if let Ok(job) = handle.block_on(backups.start_full(big, &repo, throttle)) {
                    let _ = backups.jobs().start(job.id);
                    // Stop promptly when the round ends.
                    while backups.jobs().is_live(job.id) {
                        if !run.load(Ordering::Relaxed) {
                            let _ = backups.jobs().cancel(job.id);
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    if backups
                        .jobs()
                        .get(job.id)
                        .map(|j| j.state == JobState::Succeeded)
                        .unwrap_or(false)
                    {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let mut backup_switch = |on: bool| {
        run_backups.store(on, Ordering::Relaxed);
        if !on {
            // Let a cancelled backup finish its cleanup before the next round.
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let (base_b, with_backup) = abba(&mut backup_switch);
    let backups_done = done.swap(0, Ordering::Relaxed);
    let throttle = 16u64 << 20;
    throttle_now.store(throttle, Ordering::Relaxed);
    let (base_t, with_throttled) = abba(&mut backup_switch);
    let throttled_done = done.swap(0, Ordering::Relaxed);
    quit.store(true, Ordering::Relaxed);
    let _ = looper.join();

    // 3. Incremental after changing 1% vs full.
    let t0 = Instant::now();
    let full = run_job(
        &rt,
        &backups,
        rt.block_on(backups.start_full(big, &repo, None))
            .map_err(err)?,
    )?;
    let full_secs = t0.elapsed().as_secs_f64();
    let rows = mib * 1024;
    let step = 100;
    for chunk in (0..rows).step_by(step * 1000) {
        store.with_txn("big", |txn| {
            for i in (chunk..(chunk + (step * 1000) as u64).min(rows)).step_by(step) {
                txn.put(
                    "t",
                    &json!({"id": i, "payload": payloads[(i as usize + 1) % payloads.len()]}),
                )?;
            }
            Ok(())
        })?;
    }
    let t0 = Instant::now();
    let incr = run_job(
        &rt,
        &backups,
        rt.block_on(backups.start_incr(big, Some(&repo), None))
            .map_err(err)?,
    )?;
    let incr_secs = t0.elapsed().as_secs_f64();

    // 4. Replay: restore `fg` to its latest state (a full backup + the archived load).
    rt.block_on(archivers.start(fg, &repo, opts.clone()))
        .map_err(err)?;
    let fg_full = run_job(
        &rt,
        &backups,
        rt.block_on(backups.start_full(fg, &repo, None))
            .map_err(err)?,
    )?;
    let _ = fg_full;
    // More log after the full, then wait for the archive.
    let replay_load = write_load(&store, "fg", secs, &payloads);
    let target = store.visible_ts();
    let deadline = Instant::now() + Duration::from_secs(60);
    while archivers
        .state(fg)
        .map(|s| s.checkpoint < target)
        .unwrap_or(true)
    {
        if Instant::now() > deadline {
            return Err(CliError::other("the archiver did not catch up within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    archivers.stop(fg).map_err(err)?;
    let t0 = Instant::now();
    let job = rt
        .block_on(backups.start_restore_to(
            &Subject {
                id: fg,
                name: "fg".into(),
                created_ts: Some(store.tenant("fg")?.created_ts),
                tenant_id: Some(fg),
            },
            &Target::At(target),
            "fg_copy",
            None,
            None,
        ))
        .map_err(err)?;
    let restored = run_job(&rt, &backups, job)?;
    let restore_secs = t0.elapsed().as_secs_f64();
    let r = restored.result.clone().unwrap_or_default();
    let replay_bytes = r["replayed_bytes"].as_u64().unwrap_or(0) as f64;
    let replay_secs = r["replay_seconds"].as_f64().unwrap_or(f64::NAN);
    let replayed = r["replayed_records"].clone();

    let drop = |base: f64, x: f64| 100.0 * (1.0 - x / base);
    println!();
    println!(
        "foreground commits/s (4 writers, 10 × 1 KiB rows, fsync; off/on alternating, {secs} s each side):"
    );
    println!(
        "  archiver               off {base:>6.0}  on {archiving:>6.0}  ({:+.1}% drop)",
        drop(base, archiving)
    );
    println!(
        "  full backups, unthrottled  off {base_b:>6.0}  on {with_backup:>6.0}  ({:+.1}% drop; {backups_done} backups of {mib} MiB finished)",
        drop(base_b, with_backup)
    );
    println!(
        "  full backups, 16 MiB/s     off {base_t:>6.0}  on {with_throttled:>6.0}  ({:+.1}% drop; {throttled_done} finished)",
        drop(base_t, with_throttled)
    );
    println!(
        "archive RPO under that load: p50 {} ms, p99 {} ms, max {} ms ({} samples, interval {} ms)",
        rpo.value_at_quantile(0.5),
        rpo.value_at_quantile(0.99),
        rpo.max(),
        rpo.len(),
        opts.interval_ms
    );
    println!(
        "incremental after changing 1% of {mib} MiB: {incr_secs:.2} s vs full {full_secs:.2} s ({:.1}%; {} commits, {:.1} MiB stored vs {:.1} MiB)",
        100.0 * incr_secs / full_secs,
        incr.result.as_ref().map(|r| r["commits"].clone()).unwrap_or_default(),
        incr.result.as_ref().and_then(|r| r["stored_bytes"].as_u64()).unwrap_or(0) as f64 / MIB,
        full.result.as_ref().and_then(|r| r["stored_bytes"].as_u64()).unwrap_or(0) as f64 / MIB,
    );
    println!(
        "log replay: {replayed} commits, {:.1} MiB of rows in {replay_secs:.2} s = {:.1} MiB/s (whole restore {restore_secs:.2} s; the log was written at {replay_load:.0} commits/s)",
        replay_bytes / MIB,
        replay_bytes / MIB / replay_secs
    );
    Ok(())
}
