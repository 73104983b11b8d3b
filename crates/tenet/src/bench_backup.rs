//! `tenet bench backup`: full backup and restore throughput of a generated tenant
//! (1 KiB rows over several tables), repository size vs logical size, peak RSS of each
//! phase, and — on the same bytes, in the same run — single-threaded `zstd -1`
//! compression speed as the ceiling proxy.
//!
//! Peak RSS is the kernel's high-water mark (`VmHWM`), reset before each phase through
//! `/proc/self/clear_refs`, so each figure covers one phase only.

use std::time::Instant;

use tenet_backup::{Backups, RestoreRequest};
use tenet_jobs::{JobManager, JobState};
use tenet_store::{Store, StoreOptions, TenantOptions};

use crate::bench::temp_dir;
use crate::output::CliError;

const MIB: f64 = 1024.0 * 1024.0;

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

pub fn run(mib: u64, tables: usize) -> Result<(), CliError> {
    let dir = temp_dir("tenet-bench-backup-")?;
    let repo_dir = temp_dir("tenet-bench-repo-")?;
    let store = Store::open(
        dir.path(),
        StoreOptions {
            sync_writes: false,
            ..Default::default()
        },
    )?;
    let rows_total = mib * 1024;
    let per_table = rows_total / tables as u64;
    println!("generating tenant `big`: {tables} tables × {per_table} rows of 1 KiB (≈{mib} MiB)…");
    store.create_tenant("big", TenantOptions::default())?;
    let mut text = crate::bench::texts();
    let started = Instant::now();
    for t in 0..tables {
        crate::bench::fill(&store, "big", &format!("t{t}"), per_table, &mut text)?;
    }
    println!("generated in {:.1} s", started.elapsed().as_secs_f64());

    let rt = crate::bench::runtime()?;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    let backups = Backups::new(JobManager::new(store.clone(), workers, rt.handle().clone()));
    let repo = format!("file://{}", repo_dir.path().display());
    let err = |e: tenet_backup::Error| CliError::other(e);

    reset_peak_rss();
    let backup_base = rss_mib();
    let t0 = Instant::now();
    let job = rt
        .block_on(backups.start_full(store.tenant("big")?.id, &repo, None))
        .map_err(err)?;
    let job = rt
        .block_on(backups.jobs().run(job.id))
        .map_err(CliError::other)?;
    let backup_secs = t0.elapsed().as_secs_f64();
    let backup_rss = peak_rss_mib();
    if job.state != JobState::Succeeded {
        return Err(CliError::other(format!("backup failed: {:?}", job.error)));
    }
    let r = job.result.unwrap_or_default();
    let logical = r["logical_bytes"].as_u64().unwrap_or(0) as f64;
    let stored = r["stored_bytes"].as_u64().unwrap_or(0) as f64;
    let backup_id = r["backup_id"].as_str().unwrap_or_default().to_string();

    reset_peak_rss();
    let restore_base = rss_mib();
    let t0 = Instant::now();
    let job = rt
        .block_on(backups.start_restore(&RestoreRequest {
            source: None,
            backup_id: backup_id.clone(),
            target: "big_copy".into(),
            repo: None,
            throttle_bytes_per_sec: None,
        }))
        .map_err(err)?;
    let job = rt
        .block_on(backups.jobs().run(job.id))
        .map_err(CliError::other)?;
    let restore_secs = t0.elapsed().as_secs_f64();
    let restore_rss = peak_rss_mib();
    if job.state != JobState::Succeeded {
        return Err(CliError::other(format!("restore failed: {:?}", job.error)));
    }

    // The ceiling proxy: zstd -1 over the same raw bytes (the data files' blocks,
    // decompressed first, then compressed again under the clock).
    let (raw_bytes, zstd_secs) = zstd_ceiling(repo_dir.path())?;

    println!();
    println!(
        "logical size      {:>10.1} MiB ({} rows)",
        logical / MIB,
        r["rows"]
    );
    println!(
        "repository size   {:>10.1} MiB ({:.2} of logical, {} files)",
        stored / MIB,
        stored / logical,
        r["files"]
    );
    println!(
        "full backup       {:>10.1} MiB/s  ({:.1} s, peak RSS {:.0} MiB, {:.0} MiB at its start)",
        logical / MIB / backup_secs,
        backup_secs,
        backup_rss,
        backup_base
    );
    println!(
        "restore           {:>10.1} MiB/s  ({:.1} s incl. verify, peak RSS {:.0} MiB, {:.0} MiB at its start)",
        logical / MIB / restore_secs,
        restore_secs,
        restore_rss,
        restore_base
    );
    println!(
        "zstd -1 ceiling   {:>10.1} MiB/s  (one core, {:.0} MiB of the same bytes)",
        raw_bytes / MIB / zstd_secs,
        raw_bytes / MIB
    );
    println!("cores             {workers:>10}");
    Ok(())
}

fn zstd_ceiling(repo: &std::path::Path) -> Result<(f64, f64), CliError> {
    let mut files = Vec::new();
    collect(repo, &mut files);
    let (mut raw_total, mut secs) = (0f64, 0f64);
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "tdf"))
    {
        let bytes = std::fs::read(f).map_err(CliError::other)?;
        // The records' bytes (keys, commit ts, rows), then zstd alone under the clock.
        let mut raw = Vec::new();
        tenet_backup::format::read_data_file("bench", &bytes, |pk, ts, row| {
            raw.extend_from_slice(pk);
            raw.extend_from_slice(&ts.0.to_le_bytes());
            raw.extend_from_slice(row);
            Ok(())
        })
        .map_err(CliError::other)?;
        for chunk in raw.chunks(tenet_backup::format::BLOCK_TARGET) {
            let t0 = Instant::now();
            let c = zstd::bulk::compress(chunk, 1).map_err(CliError::other)?;
            secs += t0.elapsed().as_secs_f64();
            std::hint::black_box(c);
            raw_total += chunk.len() as f64;
        }
    }
    Ok((raw_total, secs))
}

fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                collect(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}
