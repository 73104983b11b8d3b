//! `tenet bench revert`: putting a tenant back in place, on one store with fsync per
//! commit, a tenant `big` of `--mib` MiB of 1 KiB rows, and a neighbour tenant `fg`
//! committing one 1 KiB row at a time throughout.
//!
//! Measured, each operation twice:
//! 1. revert of `big` after changing 1% of its rows (end to end, writes held);
//! 2. revert of one table after changing 100,000 of its rows;
//! 3. in-place restore of `big` from a full backup (MiB/s of the tenant), against a
//!    restore of the same backup into a new tenant (the path it builds on);
//! 4. clone of `big` from local history (MiB/s), against a plain scan of the same rows
//!    at the same ts (the read it cannot beat).
//!
//! The neighbour's commit latency p99 during each operation is compared with its p99
//! in quiet windows of the same length taken before and after (baseline, op, op,
//! baseline: ABBA, so drift weighs on both sides alike).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;
use tenet_backup::planner::Target;
use tenet_backup::{Backups, Subject};
use tenet_jobs::JobManager;
use tenet_store::{AsOf, RevertScope, RevertTo, Store, StoreOptions, TenantOptions};

use crate::bench::{bench_table_named, fill, payloads, run_job, temp_dir};
use crate::output::CliError;

const MIB: f64 = 1024.0 * 1024.0;
const QUIET: u8 = 0;
const BASELINE: u8 = 1;
const OP: u8 = 2;

/// The neighbour's commit latencies, by what was going on.
struct Probe {
    phase: AtomicU8,
    hist: Mutex<[Histogram<u64>; 2]>,
}

impl Probe {
    fn take(&self) -> (u64, u64) {
        let mut h = self.hist.lock().expect("probe lock");
        let p99 = |h: &Histogram<u64>| h.value_at_quantile(0.99);
        let out = (p99(&h[0]), p99(&h[1]));
        h[0].reset();
        h[1].reset();
        out
    }
}

/// Changes every `step`-th row of `big`.t (ids below `rows`).
fn change(store: &Store, rows: u64, step: u64, round: u64) -> Result<u64, CliError> {
    let payloads = payloads();
    let mut n = 0;
    for chunk in (0..rows).step_by((step * 1000) as usize) {
        store.with_txn("big", |txn| {
            for i in (chunk..(chunk + step * 1000).min(rows)).step_by(step as usize) {
                let p = &payloads[((i + round) % payloads.len() as u64) as usize];
                txn.put("t", &json!({"id": i, "payload": p}))?;
                n += 1;
            }
            Ok(())
        })?;
    }
    Ok(n)
}

/// Runs `op` twice between two quiet windows of its length (ABBA) and returns its
/// results with the neighbour's p99 in the windows and during the op (µs).
fn abba<T>(
    probe: &Probe,
    mut prepare: impl FnMut(u64) -> Result<(), CliError>,
    mut op: impl FnMut() -> Result<T, CliError>,
) -> Result<(Vec<T>, u64, u64), CliError> {
    let mut out = Vec::new();
    let mut window = Duration::from_secs(1);
    probe.take();
    for (round, phase) in [BASELINE, OP, OP, BASELINE].into_iter().enumerate() {
        if phase == BASELINE {
            probe.phase.store(BASELINE, Ordering::Relaxed);
            std::thread::sleep(window);
            probe.phase.store(QUIET, Ordering::Relaxed);
            continue;
        }
        prepare(round as u64)?;
        probe.phase.store(OP, Ordering::Relaxed);
        let t0 = Instant::now();
        out.push(op()?);
        window = window.max(t0.elapsed());
        probe.phase.store(QUIET, Ordering::Relaxed);
    }
    let (base, during) = probe.take();
    Ok((out, base, during))
}

fn rise(base: u64, during: u64) -> String {
    format!(
        "neighbour commit p99 {:.2} ms -> {:.2} ms ({:+.0}%)",
        base as f64 / 1000.0,
        during as f64 / 1000.0,
        100.0 * (during as f64 / base.max(1) as f64 - 1.0)
    )
}

pub fn run(mib: u64) -> Result<(), CliError> {
    let dir = temp_dir("tenet-bench-revert-")?;
    let repo_dir = temp_dir("tenet-bench-revert-repo-")?;
    let repo = format!("file://{}", repo_dir.path().display());
    let store = Store::open(dir.path(), StoreOptions::default())?;
    let rt = crate::bench::runtime()?;
    let backups = Backups::new(JobManager::new(store.clone(), 2));
    let err = |e: tenet_backup::Error| CliError::other(e);
    let rows = mib * 1024;
    println!("setting up: tenant `big` ({mib} MiB, {rows} rows of 1 KiB) and `fg` (neighbour)…");
    store.create_tenant("big", TenantOptions::default())?;
    fill(&store, "big", "t", rows, &mut crate::bench::texts())?;
    store.create_tenant("fg", TenantOptions::default())?;
    store.with_txn("fg", |txn| txn.create_table(&bench_table_named("load")))?;
    let big = store.tenant("big")?;
    let logical = (rows * 1024) as f64;

    let probe = Arc::new(Probe {
        phase: AtomicU8::new(QUIET),
        hist: Mutex::new([
            Histogram::new(3).map_err(CliError::other)?,
            Histogram::new(3).map_err(CliError::other)?,
        ]),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let neighbour = {
        let (store, probe, stop) = (store.clone(), probe.clone(), stop.clone());
        std::thread::spawn(move || {
            let payloads = payloads();
            let mut id = 0u64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                let phase = probe.phase.load(Ordering::Relaxed);
                let t0 = Instant::now();
                let r = store.with_txn("fg", |txn| {
                    txn.put(
                        "load",
                        &json!({"id": id, "payload": payloads[(id % 16) as usize]}),
                    )
                });
                let us = t0.elapsed().as_micros() as u64;
                if r.is_ok() && phase != QUIET && phase == probe.phase.load(Ordering::Relaxed) {
                    if let Ok(mut h) = probe.hist.lock() {
                        let _ = h[(phase - 1) as usize].record(us);
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    // 1. Revert after changing 1% of the rows.
    let revert_to = std::cell::Cell::new(store.visible_ts());
    let (pct, b1, d1) = abba(
        &probe,
        |round| {
            revert_to.set(store.visible_ts());
            change(&store, rows, 100, round).map(drop)
        },
        || {
            let t0 = Instant::now();
            let r = store.revert(
                big.id,
                &RevertTo::AsOf(AsOf::Ts(revert_to.get())),
                &RevertScope::Tenant,
            )?;
            Ok((t0.elapsed(), r))
        },
    )?;

    // 2. Revert of one table after changing 100,000 of its rows.
    let step = (rows / 100_000).max(1);
    let changed = std::cell::Cell::new(0);
    let (tbl, b2, d2) = abba(
        &probe,
        |round| {
            revert_to.set(store.visible_ts());
            changed.set(change(&store, rows, step, round + 7)?);
            Ok(())
        },
        || {
            let t0 = Instant::now();
            let r = store.revert(
                big.id,
                &RevertTo::AsOf(AsOf::Ts(revert_to.get())),
                &RevertScope::Table("t".into()),
            )?;
            Ok((t0.elapsed(), r))
        },
    )?;

    // 3. In-place restore from a full backup, vs a restore into a new tenant.
    let full = run_job(
        &rt,
        &backups,
        rt.block_on(backups.start_full(big.id, &repo, None))
            .map_err(err)?,
    )?;
    let backup_id = full
        .result
        .as_ref()
        .map(|r| r["backup_id"].clone())
        .unwrap_or_default();
    let backup_id = backup_id.as_str().unwrap_or_default().to_string();
    let subject = Subject {
        id: big.id,
        name: "big".into(),
        created_ts: Some(big.created_ts),
        tenant_id: Some(big.id),
    };
    let (inplace, b3, d3) = abba(
        &probe,
        |round| change(&store, rows, 100, round + 13).map(drop),
        || {
            let t0 = Instant::now();
            let job = rt
                .block_on(backups.start_restore_in_place(
                    &subject,
                    &Target::Backup(backup_id.clone()),
                    Some(&repo),
                    None,
                ))
                .map_err(err)?;
            let j = run_job(&rt, &backups, job)?;
            Ok((t0.elapsed(), j))
        },
    )?;
    let t0 = Instant::now();
    let job = rt
        .block_on(backups.start_restore_to(
            &subject,
            &Target::Backup(backup_id.clone()),
            "big-copy",
            Some(&repo),
            None,
        ))
        .map_err(err)?;
    run_job(&rt, &backups, job)?;
    let new_restore = t0.elapsed();
    store.drop_tenant("big-copy")?;

    // 4. Clone from local history, vs a scan of the same rows.
    let n = std::cell::Cell::new(0);
    let (clones, b4, d4) = abba(
        &probe,
        |_| Ok(()),
        || {
            n.set(n.get() + 1);
            let t0 = Instant::now();
            let into = format!("clone{}", n.get());
            let job = backups
                .start_clone(big.id, store.tenant_visible_ts(big.id), &into)
                .map_err(err)?;
            run_job(&rt, &backups, job)?;
            let secs = t0.elapsed();
            store.drop_tenant(into.as_str())?;
            Ok(secs)
        },
    )?;
    let ts = store.tenant_visible_ts(big.id);
    let t0 = Instant::now();
    let table = store.catalog_at_ts(big.id, ts)?.tables["t"].id;
    let mut scanned = 0u64;
    store.scan_at(big.id, table, ts, None, None, |pk, _, row| {
        scanned += (pk.len() + row.len()) as u64;
        Ok(true)
    })?;
    let scan_secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = neighbour.join();

    println!();
    for (i, (secs, r)) in pct.iter().enumerate() {
        println!(
            "revert after changing 1% ({} rows), run {}: {:.2} s end to end (target ≤ 2 s), writes held {:.1} ms (≤ 1 s), found from the {}",
            r.tables.iter().map(|t| t.rows_reverted + t.rows_restored + t.rows_removed).sum::<u64>(),
            i + 1,
            secs.as_secs_f64(),
            r.writes_held.as_secs_f64() * 1000.0,
            if r.found_by == tenet_store::ChangeSource::Log { "log" } else { "diff scan" },
        );
    }
    println!("  {}", rise(b1, d1));
    for (i, (secs, r)) in tbl.iter().enumerate() {
        println!(
            "revert of table `t` with {} changed rows, run {}: {:.2} s (target ≤ 5 s), writes held {:.1} ms",
            changed.get(),
            i + 1,
            secs.as_secs_f64(),
            r.writes_held.as_secs_f64() * 1000.0
        );
    }
    println!("  {}", rise(b2, d2));
    for (i, (secs, j)) in inplace.iter().enumerate() {
        let r = j.result.clone().unwrap_or_default();
        println!(
            "in-place restore of {mib} MiB from a full backup, run {}: {:.2} s = {:.0} MiB/s (target ≥ 100); {} keys changed, writes held {} ms",
            i + 1,
            secs.as_secs_f64(),
            logical / MIB / secs.as_secs_f64(),
            r["changed_keys"],
            r["writes_held_ms"]
        );
    }
    println!(
        "  restore of the same backup into a new tenant: {:.2} s = {:.0} MiB/s (the path in-place restore builds on)",
        new_restore.as_secs_f64(),
        logical / MIB / new_restore.as_secs_f64()
    );
    println!("  {}", rise(b3, d3));
    for (i, secs) in clones.iter().enumerate() {
        println!(
            "clone of {mib} MiB from local history, run {}: {:.2} s = {:.0} MiB/s (target ≥ 150)",
            i + 1,
            secs.as_secs_f64(),
            logical / MIB / secs.as_secs_f64()
        );
    }
    println!(
        "  ceiling: a scan of the same rows at the same ts: {:.0} MiB/s",
        scanned as f64 / MIB / scan_secs
    );
    println!("  {}", rise(b4, d4));
    Ok(())
}
