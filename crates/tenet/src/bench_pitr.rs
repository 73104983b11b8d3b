//! `tenet bench pitr`: the log side of data protection, on one store with fsync per
//! commit.
//!
//! 1. Foreground commit throughput (4 writers, 10 rows of 1 KiB per commit) with
//!    nothing else running and with the tenant's log archiver on. Then foreground
//!    isolation: commits/s and p99 commit latency of the foreground tenant with full
//!    backups of a neighbour tenant running back to back, and with restores of it
//!    (into new tenants) back to back — none with a `--throttle` — each with adaptive
//!    pacing on (the default) and off; beside them, the jobs' MiB/s under that load
//!    against their MiB/s alone, measured in the same run.
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

/// What 4 writers did: commits/s and each commit's latency (µs).
struct Load {
    rate: f64,
    latency: Histogram<u64>,
}

/// One isolation measurement: the foreground with jobs off and on, and the jobs alone.
#[derive(Default)]
struct Isolation {
    /// Each round's commits/s and p99 commit latency (ms), in ABBA order: jobs off, on,
    /// on, off, …
    rounds: Vec<(bool, f64, f64)>,
    on_secs: f64,
    on_bytes: u64,
    finished: u64,
    alone_secs: f64,
    alone_bytes: u64,
    pacing: tenet_jobs::PacingStatus,
}

impl Isolation {
    /// Per pair of neighbouring rounds (off+on or on+off), the change of commits/s and
    /// of p99 with the jobs on, in %: the medians and ranges over the pairs, which
    /// this machine's drifting fsync latency moves less than it moves whole sides.
    fn line(&self) -> String {
        let mut commits = Vec::new();
        let mut p99 = Vec::new();
        for pair in self.rounds.chunks(2) {
            if let [a, b] = pair {
                let (on, off) = if a.0 { (a, b) } else { (b, a) };
                commits.push(100.0 * (on.1 / off.1 - 1.0));
                p99.push(100.0 * (on.2 / off.2 - 1.0));
            }
        }
        let side = |on: bool| {
            let r: Vec<_> = self.rounds.iter().filter(|r| r.0 == on).collect();
            let n = r.len().max(1) as f64;
            (
                r.iter().map(|r| r.1).sum::<f64>() / n,
                r.iter().map(|r| r.2).sum::<f64>() / n,
            )
        };
        let ((off_rate, off_p99), (on_rate, on_p99)) = (side(false), side(true));
        let loaded = self.on_bytes as f64 / MIB / self.on_secs.max(1e-9);
        let alone = self.alone_bytes as f64 / MIB / self.alone_secs.max(1e-9);
        format!(
            "commits {:+.0} % [{}], p99 {:+.0} % [{}] (off {off_rate:.0}/s p99 {off_p99:.1} ms, on {on_rate:.0}/s p99 {on_p99:.1} ms); jobs {loaded:.1} MiB/s vs {alone:.1} alone ({:.0} %; {} finished)",
            median(&commits),
            range(&commits),
            median(&p99),
            range(&p99),
            100.0 * loaded / alone,
            self.finished
        )
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn range(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:+.0} … {hi:+.0}")
}

/// Runs 4 writers for `secs` on `tenant`.
fn write_load(store: &Store, tenant: &str, secs: f64, payloads: &Arc<Vec<String>>) -> Load {
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
                let mut h = Histogram::<u64>::new(3).expect("histogram");
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
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
                        let _ = h.record(t0.elapsed().as_micros() as u64);
                    }
                    seq += 1;
                }
                h
            })
        })
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    for t in threads {
        if let Ok(h) = t.join() {
            let _ = latency.add(h);
        }
    }
    Load {
        rate: commits.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64(),
        latency,
    }
}

/// Background jobs one after another while switched on (the one running is cancelled
/// when switched off), counting the bytes they moved.
struct JobLoop {
    run: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    finished: Arc<AtomicU64>,
    /// Set while a job of the loop runs (or is being made or cleaned up after).
    active: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JobLoop {
    /// `make(n)` starts the n-th job; `after` runs when it has ended.
    fn new(
        backups: &Backups,
        make: impl Fn(u64) -> Option<tenet_jobs::JobRecord> + Send + 'static,
        after: impl Fn(&tenet_jobs::JobRecord) + Send + 'static,
    ) -> JobLoop {
        let (run, quit) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (bytes, finished) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let active = Arc::new(AtomicBool::new(false));
        let thread = {
            let (jobs, run, quit, bytes, finished, active) = (
                backups.jobs().clone(),
                run.clone(),
                quit.clone(),
                bytes.clone(),
                finished.clone(),
                active.clone(),
            );
            std::thread::spawn(move || {
                let mut n = 0;
                while !quit.load(Ordering::Relaxed) {
                    if !run.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    n += 1;
                    active.store(true, Ordering::Relaxed);
                    let Some(job) = make(n) else {
                        active.store(false, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    };
                    let _ = jobs.start(job.id);
                    // Stop promptly when the round ends.
                    while jobs.is_live(job.id) {
                        if !run.load(Ordering::Relaxed) {
                            let _ = jobs.cancel(job.id);
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    if let Ok(end) = jobs.get(job.id) {
                        bytes.fetch_add(end.progress.bytes_done, Ordering::Relaxed);
                        if end.state == JobState::Succeeded {
                            finished.fetch_add(1, Ordering::Relaxed);
                        }
                        after(&end);
                    }
                    active.store(false, Ordering::Relaxed);
                }
            })
        };
        JobLoop {
            run,
            quit,
            bytes,
            finished,
            active,
            thread: Some(thread),
        }
    }

    fn switch(&self, on: bool) {
        self.run.store(on, Ordering::Relaxed);
        if !on {
            // Let a cancelled job finish its cleanup before the next round.
            while self.active.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Bytes moved and jobs finished since the last call.
    fn take(&self) -> (u64, u64) {
        (
            self.bytes.swap(0, Ordering::Relaxed),
            self.finished.swap(0, Ordering::Relaxed),
        )
    }
}

impl Drop for JobLoop {
    fn drop(&mut self) {
        self.run.store(false, Ordering::Relaxed);
        self.quit.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn run(seconds: u64, mib: u64) -> Result<(), CliError> {
    let dir = temp_dir("tenet-bench-pitr-")?;
    let repo_dir = temp_dir("tenet-bench-pitr-repo-")?;
    let repo = format!("file://{}", repo_dir.path().display());
    let store = Store::open(dir.path(), StoreOptions::default())?;
    let rt = crate::bench::runtime()?;
    let backups = Backups::new(JobManager::new(store.clone(), 2));
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
            let r = write_load(&store, "fg", secs / 4.0, &payloads).rate;
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

    // Isolation: full backups of `big` back to back, and restores of it into new
    // tenants back to back, with adaptive pacing on and off.
    let source = run_job(
        &rt,
        &backups,
        rt.block_on(backups.start_full(big, &repo, None))
            .map_err(err)?,
    )?;
    let backup_id = source
        .result
        .as_ref()
        .and_then(|r| r["backup_id"].as_str())
        .unwrap_or_default()
        .to_string();
    let backup_loop = {
        let (b, h, repo) = (backups.clone(), rt.handle().clone(), repo.clone());
        JobLoop::new(
            &backups,
            move |_| h.block_on(b.start_full(big, &repo, None)).ok(),
            |_| {},
        )
    };
    let restore_loop = {
        let (b, h, st) = (backups.clone(), rt.handle().clone(), store.clone());
        let subject = Subject {
            id: big,
            name: "big".into(),
            created_ts: Some(store.tenant("big")?.created_ts),
            tenant_id: Some(big),
        };
        let target = Target::Backup(backup_id);
        JobLoop::new(
            &backups,
            move |n| {
                h.block_on(b.start_restore_to(&subject, &target, &format!("copy{n}"), None, None))
                    .ok()
            },
            move |_| {
                for t in st.tenants() {
                    if t.name.starts_with("copy") {
                        let _ = st.drop_tenant(t.id);
                    }
                }
            },
        )
    };
    let isolate = |jobs: &JobLoop, adaptive: bool| -> Isolation {
        backups.jobs().set_adaptive_pacing(adaptive);
        let round = secs / 4.0;
        let alone = |iso: &mut Isolation| {
            let t0 = Instant::now();
            jobs.switch(true);
            std::thread::sleep(Duration::from_secs_f64(round));
            jobs.switch(false);
            iso.alone_secs += t0.elapsed().as_secs_f64();
            iso.alone_bytes += jobs.take().0;
        };
        let mut iso = Isolation::default();
        // Alone, loaded ABBA, alone: the jobs' own speed brackets the loaded rounds.
        alone(&mut iso);
        for on in [false, true, true, false, false, true, true, false] {
            jobs.switch(on);
            let t0 = Instant::now();
            let load = write_load(&store, "fg", round, &payloads);
            let p99 = load.latency.value_at_quantile(0.99) as f64 / 1000.0;
            iso.rounds.push((on, load.rate, p99));
            if on {
                iso.on_secs += t0.elapsed().as_secs_f64();
            }
        }
        jobs.switch(false);
        let (bytes, finished) = jobs.take();
        iso.on_bytes = bytes;
        iso.finished = finished;
        iso.pacing = backups.jobs().pacing();
        alone(&mut iso);
        iso
    };
    let backup_paced = isolate(&backup_loop, true);
    backups.jobs().set_io_budget(Some(16 << 20));
    let backup_capped = isolate(&backup_loop, false);
    backups.jobs().set_io_budget(None);
    let backup_unpaced = isolate(&backup_loop, false);
    let restore_paced = isolate(&restore_loop, true);
    let restore_unpaced = isolate(&restore_loop, false);
    backups.jobs().set_adaptive_pacing(true);
    drop((backup_loop, restore_loop));

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
    let replay_load = write_load(&store, "fg", secs, &payloads).rate;
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
        "foreground isolation: the change of `fg`'s commits/s and p99 commit latency while jobs on `big` ({mib} MiB) run back to back, no --throttle (8 rounds ABBA, {:.1} s each; median [range] over the 4 off/on pairs), and the jobs' MiB/s under that load vs alone (measured before and after). Targets: commits ≥ −15 %, p99 ≤ +30 %, jobs ≥ 50 % of alone:",
        secs / 4.0
    );
    for (what, iso) in [
        ("full backups, adaptive pacing", &backup_paced),
        ("full backups, pacing off     ", &backup_unpaced),
        ("full backups, budget 16 MiB/s", &backup_capped),
        ("restores, adaptive pacing    ", &restore_paced),
        ("restores, pacing off         ", &restore_unpaced),
    ] {
        println!("  {what}  {}", iso.line());
    }
    let p = &backup_paced.pacing;
    println!(
        "  (pacer at the end of the paced backups: {:?}, budget {}, floor {:.0} MiB/s, commit p99 {} µs vs baseline {} µs)",
        p.state,
        p.rate_bytes_per_sec
            .map_or("unlimited".to_string(), |r| format!("{:.0} MiB/s", r as f64 / MIB)),
        p.floor_bytes_per_sec as f64 / MIB,
        p.commit_p99_micros.map_or("-".into(), |v| v.to_string()),
        p.commit_baseline_p99_micros.map_or("-".into(), |v| v.to_string()),
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
