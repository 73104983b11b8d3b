//! `tenet bench protection`: protection on autopilot with many tenants, and prune.
//!
//! 1. `--tenants` tenants (default 1,000), each with a table, one row and one full
//!    backup in a local repository, under a default strategy (full `@daily`, keep 1
//!    full).
//! 2. **Overview**: the first read of every tenant's repository, then `status` as the
//!    server answers it — the service call plus its JSON encoding — 20 times: p50 and
//!    max, against the 200 ms target.
//! 3. **Scheduler idle**: the scheduler ticking every second with nothing due: the
//!    time spent in ticks over the wall time of the ticking windows, against 1 % of a
//!    core, and the process's CPU time (`/proc/self/stat`) in windows with and without
//!    ticks in ABBA order over `--idle-secs`; the cost of one tick and one re-read.
//! 4. **Prune**: a tenant with a full backup, `--segments` archive segments (1 KiB,
//!    written straight into the repository) and a second full; a prune keeping 1 full
//!    deletes the first full and every segment, as a job, end to end (decision
//!    included), against deleting as many files with `std::fs` (the floor), and the 30 s
//!    target.
//! 5. **Drill**: a tenant of `--drill-mib` MiB of 1 KiB rows and its full backup; a
//!    drill (restore into a scratch tenant + comparison with the source + drop) against
//!    a restore of the same backup into a new tenant, in ABBA order, and the 60 s target
//!    for 1 GiB.

use std::time::{Duration, Instant};

use serde_json::json;
use tenet_server::admin::Admin;
use tenet_server::api::{
    AddRepo, CreateBackup, JobInfo, ProtectionQuery, PruneRequest, StrategyBody,
};
use tenet_server::service::Service;
use tenet_store::{Store, StoreOptions, TenantOptions, Ts};

use crate::bench::{bench_table_named, temp_dir};
use crate::output::CliError;

/// The process's user + system CPU time (Linux: `/proc/self/stat`, in clock ticks of
/// 1/100 s).
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn wait_job(admin: &dyn Admin, job: JobInfo) -> Result<JobInfo, CliError> {
    loop {
        let j = admin.get_job(job.id)?;
        match j.state.as_str() {
            "succeeded" => return Ok(j),
            "failed" | "cancelled" => {
                return Err(CliError::other(format!(
                    "job {} {}: {:?}",
                    j.id, j.state, j.error
                )))
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn run(tenants: usize, idle_secs: u64, segments: u64, drill_mib: u64) -> Result<(), CliError> {
    let dir = temp_dir("tenet-bench-protection-")?;
    let repo = temp_dir("tenet-bench-protection-repo-")?;
    let store = Store::open(
        dir.path().join("data"),
        StoreOptions {
            sync_writes: false,
            ..StoreOptions::default()
        },
    )?;
    let svc = Service::new(store.clone()).map_err(CliError::other)?;
    let admin: &dyn Admin = &svc;
    admin.add_repo(&AddRepo {
        name: "bench".into(),
        url: repo.path().display().to_string(),
        default: true,
        ..AddRepo::default()
    })?;
    admin.put_strategy(
        None,
        &StrategyBody {
            full: Some("@daily".into()),
            keep_full: Some(1),
            ..StrategyBody::default()
        },
    )?;

    // 1. Tenants, each with one row and one full backup.
    let t0 = Instant::now();
    for n in 0..tenants {
        let name = format!("t{n:05}");
        store.create_tenant(&name, TenantOptions::default())?;
        store.with_txn(&name, |t| {
            t.create_table(&bench_table_named("t"))?;
            t.put("t", &json!({"id": n, "payload": "x"}))
        })?;
    }
    let mut jobs = Vec::new();
    for n in 0..tenants {
        jobs.push(admin.create_backup(&CreateBackup {
            tenant: format!("t{n:05}"),
            kind: None,
            repo: None,
            throttle_bytes_per_sec: None,
        })?);
    }
    for j in jobs {
        wait_job(admin, j)?;
    }
    println!(
        "setup: {tenants} tenants with a full backup each in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // 2. The overview.
    let t = Instant::now();
    let first = admin.protection(&ProtectionQuery { refresh: true })?;
    let read = t.elapsed();
    let problems: usize = first.tenants.iter().map(|t| t.problems.len()).sum();
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let o = admin.protection(&ProtectionQuery::default())?;
        bytes = serde_json::to_vec(&o).map_err(CliError::other)?.len();
        times.push(t.elapsed());
    }
    times.sort();
    let p50 = times[times.len() / 2];
    let max = *times.last().expect("20 samples");
    println!(
        "overview of {tenants} tenants: first read of every repository {:.0} ms; status \
         answered from it (service + JSON, {} KiB): p50 {:.1} ms, max {:.1} ms (target \
         <= 200 ms: {}); {problems} problems",
        ms(read),
        bytes / 1024,
        ms(p50),
        ms(max),
        if max <= Duration::from_millis(200) {
            "met"
        } else {
            "NOT met"
        }
    );

    // 3. The scheduler idle (every tenant has its backup; nothing is due until midnight
    //    plus the spread... unless the run is near it: then some starts are measured).
    let sched = svc.scheduler().clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::other)?;
    let now = store.clock().now_millis();
    // First tick: creates the run states (and starts whatever is due).
    let started = rt.block_on(sched.tick(now)).map_err(CliError::other)?;
    let t = Instant::now();
    let ticks = 100;
    for i in 0..ticks {
        rt.block_on(sched.tick(now + 1 + i))
            .map_err(CliError::other)?;
    }
    let tick = t.elapsed() / ticks as u32;
    sched.changed();
    let t = Instant::now();
    rt.block_on(sched.tick(now + 1000))
        .map_err(CliError::other)?;
    let reread = t.elapsed();
    // The process's CPU over windows without ticks (A) and with 1 s ticks (B), in
    // ABBA order, so background work of the process (RocksDB, runtimes) weighs on both
    // alike; the scheduler's share is the difference.
    let window = Duration::from_secs(idle_secs.div_ceil(4).max(1));
    let mut at = now + 2000;
    let mut ticking_time = Duration::ZERO;
    let mut ticking_wall = Duration::ZERO;
    let mut measure = |ticking: bool| -> Result<Option<f64>, CliError> {
        let c0 = cpu_secs();
        let w0 = Instant::now();
        rt.block_on(async {
            let end = Instant::now() + window;
            while Instant::now() < end {
                if ticking {
                    let t = Instant::now();
                    sched.tick(at).await?;
                    ticking_time += t.elapsed();
                    at += 1000;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok::<_, tenet_backup::Error>(())
        })
        .map_err(CliError::other)?;
        if ticking {
            ticking_wall += w0.elapsed();
        }
        Ok(match (c0, cpu_secs()) {
            (Some(a), Some(b)) => Some((b - a) / w0.elapsed().as_secs_f64() * 100.0),
            _ => None,
        })
    };
    let (a1, b1, b2, a2) = (
        measure(false)?,
        measure(true)?,
        measure(true)?,
        measure(false)?,
    );
    let own = ticking_time.as_secs_f64() / ticking_wall.as_secs_f64().max(1e-9) * 100.0;
    let process = match (a1, b1, b2, a2) {
        (Some(a1), Some(b1), Some(b2), Some(a2)) => format!(
            "the whole process {:.2} % while ticking, {:.2} % without (10 ms resolution; \
             other background work included)",
            (b1 + b2) / 2.0,
            (a1 + a2) / 2.0
        ),
        _ => "the process's CPU unknown (no /proc/self/stat)".into(),
    };
    let share = format!(
        "{own:.3} % of a core in ticks (target <= 1 %: {}); {process}",
        if own <= 1.0 { "met" } else { "NOT met" }
    );
    println!(
        "scheduler, {tenants} tenants idle: one tick {:.2} ms, a strategy re-read (every \
         10 s) {:.1} ms; ticking every second (ABBA over {idle_secs} s): {share} ({} runs started \
         at the first tick)",
        ms(tick),
        ms(reread),
        started.len()
    );

    // 4. Prune of many segments.
    store.create_tenant("big", TenantOptions::default())?;
    store.with_txn("big", |t| {
        t.create_table(&bench_table_named("t"))?;
        t.put("t", &json!({"id": 0, "payload": "x"}))
    })?;
    let full = |admin: &dyn Admin| {
        wait_job(
            admin,
            admin.create_backup(&CreateBackup {
                tenant: "big".into(),
                kind: None,
                repo: None,
                throttle_bytes_per_sec: None,
            })?,
        )
    };
    full(admin)?;
    let id = store.tenant("big")?.id;
    let from = store.visible_ts();
    let log = repo.path().join(format!("tenants/{id}/log"));
    std::fs::create_dir_all(&log).map_err(CliError::other)?;
    let body = vec![0u8; 1024];
    for k in 0..segments {
        let (a, b) = (Ts(from.0 + k), Ts(from.0 + k + 1));
        std::fs::write(log.join(format!("{:020}-{:020}.tls", a.0, b.0)), &body)
            .map_err(CliError::other)?;
    }
    // The second full comes after every segment.
    store.advance_clock(Ts(from.0 + segments + 1))?;
    full(admin)?;
    let t = Instant::now();
    let r = admin.prune(&PruneRequest {
        tenant: Some("big".into()),
        keep_full: Some(1),
        ..PruneRequest::default()
    })?;
    let decided = t.elapsed();
    let plan = r
        .plans
        .first()
        .ok_or_else(|| CliError::other("no prune plan"))?;
    let deleted = plan.delete.len();
    let job = plan
        .job
        .clone()
        .ok_or_else(|| CliError::other("no prune job"))?;
    wait_job(admin, job)?;
    let pruned = t.elapsed();
    // An emptied directory of a local repository is removed with its last object.
    let left = std::fs::read_dir(&log).map_or(0, |d| d.count());
    // The floor: deleting as many files of the same size with std::fs.
    let floor_dir = temp_dir("tenet-bench-protection-floor-")?;
    for k in 0..segments {
        std::fs::write(floor_dir.path().join(format!("{k:020}.tls")), &body)
            .map_err(CliError::other)?;
    }
    let t = Instant::now();
    for k in 0..segments {
        std::fs::remove_file(floor_dir.path().join(format!("{k:020}.tls")))
            .map_err(CliError::other)?;
    }
    let floor = t.elapsed();
    println!(
        "prune of {segments} segments + 1 full: {deleted} objects deleted in {:.2} s \
         (decision {:.0} ms; target <= 30 s: {}), {left} segments left; std::fs deleting \
         {segments} files: {:.2} s ({:.1}x)",
        pruned.as_secs_f64(),
        ms(decided),
        if pruned <= Duration::from_secs(30) {
            "met"
        } else {
            "NOT met"
        },
        floor.as_secs_f64(),
        pruned.as_secs_f64() / floor.as_secs_f64().max(1e-9)
    );
    // 5. A drill of a large tenant, against a restore of the same backup.
    if drill_mib > 0 {
        let rows = drill_mib * 1024;
        store.create_tenant("drilled", TenantOptions::default())?;
        let payloads = crate::bench::payloads();
        let mut n = 0usize;
        let t = Instant::now();
        crate::bench::fill(&store, "drilled", "t", rows, &mut || {
            n += 1;
            payloads[n % payloads.len()].clone()
        })?;
        let filled = t.elapsed();
        let backup = wait_job(
            admin,
            admin.create_backup(&CreateBackup {
                tenant: "drilled".into(),
                kind: None,
                repo: None,
                throttle_bytes_per_sec: None,
            })?,
        )?;
        let backup_id = backup
            .result
            .as_ref()
            .and_then(|r| r["backup_id"].as_str())
            .unwrap_or_default()
            .to_string();
        let drill = |admin: &dyn Admin| -> Result<Duration, CliError> {
            let t = Instant::now();
            let job = admin.drill("drilled", &tenet_server::api::DrillRequest::default())?;
            wait_job(admin, job)?;
            Ok(t.elapsed())
        };
        let restore = |admin: &dyn Admin, into: &str| -> Result<Duration, CliError> {
            let t = Instant::now();
            let job = admin.create_restore(&tenet_server::api::CreateRestore {
                source: "drilled".into(),
                target: into.into(),
                backup_id: Some(backup_id.clone()),
                ..tenet_server::api::CreateRestore::default()
            })?;
            wait_job(admin, job)?;
            Ok(t.elapsed())
        };
        // ABBA: drill, restore, restore, drill.
        let d1 = drill(admin)?;
        let r1 = restore(admin, "copy1")?;
        let r2 = restore(admin, "copy2")?;
        let d2 = drill(admin)?;
        let mib = drill_mib as f64;
        println!(
            "drill of a {drill_mib} MiB tenant (filled in {:.0} s): {:.1} s and {:.1} s (target <= 60 s: {}); \
             a restore of the same backup into a new tenant: {:.1} s and {:.1} s ({:.0} MiB/s); \
             drill / restore {:.2}",
            filled.as_secs_f64(),
            d1.as_secs_f64(),
            d2.as_secs_f64(),
            if d1.max(d2) <= Duration::from_secs(60) { "met" } else { "NOT met" },
            r1.as_secs_f64(),
            r2.as_secs_f64(),
            mib / ((r1 + r2).as_secs_f64() / 2.0),
            (d1 + d2).as_secs_f64() / (r1 + r2).as_secs_f64()
        );
    }

    Ok(())
}
