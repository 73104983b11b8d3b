//! `tenet bench backup`: full backup and restore throughput of a generated tenant
//! (1 KiB rows over several tables), repository size vs logical size, peak RSS of each
//! phase, and — on the same bytes, in the same run — single-threaded `zstd -1`
//! compression speed as the ceiling proxy. After a warm-up round, eight rounds of
//! backup + restore in ABBA BAAB order, plain and encrypted (a master key set; each kind
//! writes to a repository of its own, since an encrypted history takes nothing in
//! clear); the cost of encryption is the ratio of their medians, printed for 4 or 8
//! rounds (whose order is balanced), next to one core's AES-256-GCM sealing rate on the
//! stored bytes.
//!
//! Peak RSS is the kernel's high-water mark (`VmHWM`), reset before each phase through
//! `/proc/self/clear_refs`, so each figure covers one phase only; beside it, the RSS
//! the phase started from.

use std::time::Instant;

use tenet_backup::{Backups, RestoreRequest};
use tenet_jobs::{JobManager, JobState};
use tenet_store::{Store, StoreOptions, TenantOptions};

use crate::bench::temp_dir;
use crate::output::CliError;

const MIB: f64 = 1024.0 * 1024.0;

/// Resets the peak RSS; returns the RSS now (what the phase starts from).
fn reset_peak_rss() -> f64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_mib("VmRSS:")
}

fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
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

pub fn run(mib: u64, tables: usize, measured: usize) -> Result<(), CliError> {
    let dir = temp_dir("tenet-bench-backup-")?;
    // Plain and encrypted rounds write to repositories of their own: a history that
    // holds data keys takes nothing in clear (`tenet_backup::keys`), so a plain round
    // after an encrypted one would be refused.
    let repo_dir = temp_dir("tenet-bench-repo-")?;
    let sealed_dir = temp_dir("tenet-bench-repo-sealed-")?;
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
    let backups = Backups::new(JobManager::new(store.clone(), workers));
    let url = |dir: &tempfile::TempDir| format!("file://{}", dir.path().display());
    let (plain_repo, sealed_repo) = (url(&repo_dir), url(&sealed_dir));
    let err = |e: tenet_backup::Error| CliError::other(e);

    // A warm-up round (not counted: a fresh store is faster than one that has already
    // taken restores), then eight rounds in ABBA BAAB order, plain and encrypted.
    let master: std::sync::Arc<dyn tenet_backup::keys::MasterKey> = std::sync::Arc::new(
        tenet_backup::keys::LocalMasterKey::from_hex(&"6b".repeat(32), "bench").map_err(err)?,
    );
    let mut rounds: Vec<Round> = Vec::new();
    // The warm-up (plain), then ABBA BAAB, cut to the rounds asked for.
    let abba = [false, true, true, false, true, false, false, true];
    let order = std::iter::once(false).chain(abba.into_iter().take(measured));
    for (n, encrypted) in order.enumerate() {
        tenet_backup::keys::set_master(&store, encrypted.then(|| master.clone()));
        let repo = if encrypted { &sealed_repo } else { &plain_repo };
        rounds.push(round(&rt, &backups, &store, repo, n, encrypted)?);
    }
    tenet_backup::keys::set_master(&store, None);
    let warm_up = rounds.remove(0);
    let first = &warm_up;

    // The ceiling proxy: zstd -1 over the same raw bytes (the plain data files' blocks,
    // decompressed first, then compressed again under the clock).
    let (raw_bytes, zstd_secs) = zstd_ceiling(repo_dir.path())?;

    println!();
    println!(
        "logical size      {:>10.1} MiB ({} rows)",
        first.logical / MIB,
        first.rows
    );
    println!(
        "repository size   {:>10.1} MiB ({:.2} of logical, {} files; sealed: {})",
        first.stored / MIB,
        first.stored / first.logical,
        first.files,
        rounds
            .iter()
            .find(|r| r.encrypted)
            .map_or("no encrypted round".into(), |r| format!(
                "{:.1} MiB",
                r.stored / MIB
            ))
    );
    for r in std::iter::once(&warm_up).chain(&rounds) {
        println!(
            "round {} {:<9}  backup {:>7.1} MiB/s (peak RSS {:>4.0} MiB, from {:>4.0})   restore {:>7.1} MiB/s (incl. verify, peak RSS {:>4.0} MiB, from {:>4.0})",
            r.n,
            match (r.n, r.encrypted) {
                (0, _) => "warm-up",
                (_, true) => "encrypted",
                _ => "plain",
            },
            r.logical / MIB / r.backup.secs,
            r.backup.rss_peak,
            r.backup.rss_start,
            r.logical / MIB / r.restore.secs,
            r.restore.rss_peak,
            r.restore.rss_start,
        );
        let mem = |m: &tenet_store::StoreMemory| {
            format!(
                "memtables {:.0}, table readers {:.0}, block cache {:.0} MiB",
                m.memtables as f64 / MIB,
                m.table_readers as f64 / MIB,
                m.block_cache as f64 / MIB
            )
        };
        println!(
            "        the store's memory at the start: backup {}; restore {}",
            mem(&r.backup.store),
            mem(&r.restore.store)
        );
    }
    // The median of each side's rounds.
    let rate = |enc: bool, f: fn(&Round) -> f64| {
        let mut v: Vec<f64> = rounds
            .iter()
            .filter(|r| r.encrypted == enc)
            .map(|r| r.logical / MIB / f(r))
            .collect();
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0)
    };
    for (what, f) in [
        (
            "full backup",
            (|r: &Round| r.backup.secs) as fn(&Round) -> f64,
        ),
        ("restore", |r: &Round| r.restore.secs),
    ] {
        match (rate(false, f), rate(true, f)) {
            // Only ABBA and ABBA BAAB put each kind as often early as late; with other
            // counts the later kind runs on warmer caches and the difference is order.
            (Some(plain), Some(sealed)) if !matches!(measured, 4 | 8) => println!(
                "{what:<17} {plain:>10.1} MiB/s plain, {sealed:.1} MiB/s encrypted (medians; \
                 --rounds {measured} does not balance their order: the cost of encryption \
                 needs --rounds 4 or 8)"
            ),
            (Some(plain), Some(sealed)) => println!(
                "{what:<17} {:>10.1} MiB/s plain, {:.1} MiB/s encrypted (medians): cost {:.1} % (target ≤ 10 %)",
                plain,
                sealed,
                (1.0 - sealed / plain) * 100.0
            ),
            (Some(plain), None) => {
                println!("{what:<17} {plain:>10.1} MiB/s plain (median; no encrypted round)")
            }
            _ => {}
        }
    }
    println!(
        "zstd -1 ceiling   {:>10.1} MiB/s  (one core, {:.0} MiB of the same bytes)",
        raw_bytes / MIB / zstd_secs,
        raw_bytes / MIB
    );
    let (sealed_bytes, seal_secs) = seal_rate(repo_dir.path())?;
    println!(
        "AES-256-GCM seal  {:>10.1} MiB/s  (one core, {:.0} MiB of the stored data files)",
        sealed_bytes / MIB / seal_secs,
        sealed_bytes / MIB
    );
    println!("cores             {workers:>10}");
    Ok(())
}

/// One backup and restore of `big`.
struct Round {
    n: usize,
    encrypted: bool,
    logical: f64,
    stored: f64,
    rows: u64,
    files: u64,
    backup: Phase,
    restore: Phase,
}

/// One job of a round: its time, its peak RSS, and the RSS and store memory it
/// started from.
struct Phase {
    secs: f64,
    rss_peak: f64,
    rss_start: f64,
    store: tenet_store::StoreMemory,
}

/// Runs the job `start` creates to its end, measured as one phase.
fn phase(
    rt: &tokio::runtime::Runtime,
    backups: &Backups,
    store: &Store,
    what: &str,
    start: impl FnOnce() -> Result<tenet_jobs::JobRecord, CliError>,
) -> Result<(Phase, tenet_jobs::JobRecord), CliError> {
    let memory = store.memory();
    let rss_start = reset_peak_rss();
    let t0 = Instant::now();
    let job = start()?;
    let job = rt
        .block_on(backups.jobs().run(job.id))
        .map_err(CliError::other)?;
    let secs = t0.elapsed().as_secs_f64();
    let rss_peak = peak_rss_mib();
    if job.state != JobState::Succeeded {
        return Err(CliError::other(format!("{what} failed: {:?}", job.error)));
    }
    let measured = Phase {
        secs,
        rss_peak,
        rss_start,
        store: memory,
    };
    Ok((measured, job))
}

fn round(
    rt: &tokio::runtime::Runtime,
    backups: &Backups,
    store: &Store,
    repo: &str,
    n: usize,
    encrypted: bool,
) -> Result<Round, CliError> {
    let err = |e: tenet_backup::Error| CliError::other(e);
    let (backup, job) = phase(rt, backups, store, "backup", || {
        rt.block_on(backups.start_full(store.tenant("big")?.id, repo, None))
            .map_err(err)
    })?;
    let r = job.result.unwrap_or_default();
    let backup_id = r["backup_id"].as_str().unwrap_or_default().to_string();

    let target = format!("big_copy{n}");
    let (restore, _) = phase(rt, backups, store, "restore", || {
        rt.block_on(backups.start_restore(&RestoreRequest {
            source: None,
            backup_id: backup_id.clone(),
            target: target.clone(),
            repo: None,
            throttle_bytes_per_sec: None,
        }))
        .map_err(err)
    })?;
    store.drop_tenant(store.tenant(&target)?.id)?;
    // The warm-up's backup stays for the ceilings below; the others go (disk).
    if n > 0 {
        rt.block_on(backups.delete(&backup_id, true)).map_err(err)?;
    }
    Ok(Round {
        n,
        encrypted,
        logical: r["logical_bytes"].as_u64().unwrap_or(0) as f64,
        stored: r["stored_bytes"].as_u64().unwrap_or(0) as f64,
        rows: r["rows"].as_u64().unwrap_or(0),
        files: r["files"].as_u64().unwrap_or(0),
        backup,
        restore,
    })
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
        if tenet_backup::keys::sealed_key_id(&bytes).is_some() {
            continue; // the plain rounds' files hold the same bytes
        }
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

/// How fast one core seals the plain data files (what encryption adds per byte stored).
fn seal_rate(repo: &std::path::Path) -> Result<(f64, f64), CliError> {
    let mut files = Vec::new();
    collect(repo, &mut files);
    let key = tenet_backup::keys::DataKey::ephemeral();
    let (mut total, mut secs) = (0f64, 0f64);
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "tdf"))
    {
        let bytes = std::fs::read(f).map_err(CliError::other)?;
        if tenet_backup::keys::sealed_key_id(&bytes).is_some() {
            continue;
        }
        let t0 = Instant::now();
        let sealed = key
            .seal("tenants/1/x.tdf", &bytes)
            .map_err(CliError::other)?;
        secs += t0.elapsed().as_secs_f64();
        std::hint::black_box(sealed);
        total += bytes.len() as f64;
    }
    Ok((total, secs.max(1e-9)))
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
