//! `tenet bench standby`: standby lag, switchover write downtime and standby apply
//! throughput, on two real servers (this binary, two temporary data directories, one
//! local repository), talked to over HTTP as users do.
//!
//! 1. **Lag**: writers commit one row at a time to the source at `--rate` commits/s
//!    (archive interval 1 s, standby poll 250 ms); a sampler reads the standby's
//!    applied ts every 10 ms. A commit's lag is the time from its commit ts until
//!    the first sample that shows it applied: p50, p99, max.
//! 2. **Switchover downtime** under the same load: `--switchovers` switchovers back
//!    and forth between the two servers, then as many within the source's store
//!    (to a standby there). For each: the job's write downtime (fence to promoted)
//!    and the longest gap between acknowledged writes a client saw around it.
//! 3. **Apply throughput**: the standby's server is stopped, `--mib` MiB of 1 KiB
//!    rows are committed and archived, the server starts again and the time until
//!    the standby applied everything gives MiB/s of archived log. The ceiling is the
//!    rate at which the same segments are read from the repository and decoded
//!    (nothing applied), measured before and after (A B A).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;
use tenet_server::admin::Admin;
use tenet_server::api::{
    ArchiveStart, ColumnInfo, CreateBackup, CreateRestore, CreateTable, CreateTenant,
    SwitchoverRequest,
};
use tenet_server::client::Client;
use tenet_store::{Clock, SystemClock};

use crate::output::CliError;

/// A `tenet serve` child of this binary on a temporary data directory.
struct ServerChild {
    child: Child,
    url: String,
    /// Its first admin token.
    token: String,
}

impl ServerChild {
    fn start(dir: &Path) -> Result<ServerChild, CliError> {
        let _ = std::fs::remove_file(dir.join(tenet_server::server::SERVER_FILE));
        let exe = std::env::current_exe().map_err(CliError::other)?;
        let mut child = Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(CliError::other)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(f) = tenet_server::server::read_server_file(dir) {
                let token = tenet_server::auth::read_token_file(
                    &dir.join(tenet_server::auth::ADMIN_TOKEN_FILE),
                );
                if let (Some(_), Some(token)) = (Client::probe(&f.url), token) {
                    return Ok(ServerChild {
                        child,
                        url: f.url,
                        token,
                    });
                }
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                return Err(CliError::other("a benchmark server did not start"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(s: &ServerChild) -> Result<Client, CliError> {
    Ok(Client::with_options(
        &s.url,
        &tenet_server::client::ClientOptions {
            token: Some(s.token.clone()),
            ca_cert: None,
        },
    )?)
}

/// Waits for a job to end; an error unless it succeeded. Returns its result.
fn wait_job(c: &Client, id: u64) -> Result<serde_json::Value, CliError> {
    loop {
        let j = c.get_job(id)?;
        match j.state.as_str() {
            "succeeded" => return Ok(j.result.unwrap_or_default()),
            "failed" | "cancelled" => {
                return Err(CliError::other(format!(
                    "job {id} ({}) {}: {:?}",
                    j.kind, j.state, j.error
                )))
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Writers committing one row each to whichever server is the primary of `acme`.
struct Load {
    stop: Arc<AtomicBool>,
    /// (commit ts millis, local millis when acknowledged)
    acks: Arc<Mutex<Vec<(u64, u64)>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(servers: &[Client], rate: u64, writers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let threads = (0..writers)
            .map(|w| {
                let (stop, acks, next, clients) =
                    (stop.clone(), acks.clone(), next.clone(), servers.to_vec());
                let every = Duration::from_secs_f64(writers as f64 / rate as f64);
                std::thread::spawn(move || {
                    let mut at = 0usize;
                    let mut due = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        due += every;
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        let row = json!({"id": id, "w": w, "payload": "x".repeat(100)});
                        loop {
                            match clients[at % clients.len()].put_rows(
                                "acme",
                                "t",
                                vec![row.clone()],
                            ) {
                                Ok(r) => {
                                    let c = tenet_store::Ts(r.commit.commit_ts).millis();
                                    acks.lock().unwrap().push((c, SystemClock.now_millis()));
                                    break;
                                }
                                Err(e) if e.code == "TENANT_MOVING" => {
                                    std::thread::sleep(Duration::from_millis(1))
                                }
                                Err(_) if stop.load(Ordering::Relaxed) => break,
                                Err(_) => {
                                    // A standby (or not there): the other server.
                                    at += 1;
                                    std::thread::sleep(Duration::from_millis(1));
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            acks,
            threads,
        }
    }

    fn finish(self) -> Vec<(u64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let mut acks = self.acks.lock().unwrap().clone();
        acks.sort_by_key(|a| a.1);
        acks
    }
}

fn pct(h: &Histogram<u64>) -> String {
    format!(
        "p50 {} ms, p99 {} ms, max {} ms ({} samples)",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max(),
        h.len()
    )
}

/// The longest gap between acknowledged writes in [from, to] (local millis).
fn longest_gap(acks: &[(u64, u64)], from: u64, to: u64) -> u64 {
    let times: Vec<u64> = acks
        .iter()
        .map(|a| a.1)
        .filter(|t| *t + 2_000 >= from && *t <= to + 2_000)
        .collect();
    times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
}

fn setup(a: &Client, repo: &str) -> Result<(), CliError> {
    a.create_tenant(&CreateTenant {
        name: "acme".into(),
        history_retention_secs: None,
    })?;
    let col = |n: &str, t: &str| ColumnInfo {
        name: n.into(),
        ty: t.into(),
    };
    a.create_table(
        "acme",
        &CreateTable {
            name: "t".into(),
            columns: vec![col("id", "int"), col("w", "int"), col("payload", "string")],
            primary_key: vec!["id".into()],
        },
    )?;
    let job = a.create_backup(&CreateBackup {
        tenant: "acme".into(),
        kind: Some("full".into()),
        repo: Some(repo.into()),
        throttle_bytes_per_sec: None,
    })?;
    wait_job(a, job.id)?;
    a.archive_start(
        "acme",
        &ArchiveStart {
            repo: Some(repo.into()),
            interval_ms: Some(1000),
            ..Default::default()
        },
    )?;
    Ok(())
}

fn standby(on: &Client, target: &str, repo: &str) -> Result<(), CliError> {
    let job = on.create_restore(&CreateRestore {
        source: "acme".into(),
        target: target.into(),
        repo: Some(repo.into()),
        standby: true,
        poll_ms: Some(250),
        ..Default::default()
    })?;
    wait_job(on, job.id)?;
    Ok(())
}

/// One switchover; returns (job downtime ms, client-seen longest gap ms).
fn switch(
    from: &Client,
    to: &str,
    to_server: Option<&ServerChild>,
    load: &Load,
) -> Result<(u64, u64), CliError> {
    let t0 = SystemClock.now_millis();
    let job = from.switchover(
        "acme",
        &SwitchoverRequest {
            to: to.into(),
            to_server: to_server.map(|s| s.url.clone()),
            to_token: to_server.map(|s| s.token.clone()),
        },
    )?;
    let r = wait_job(from, job.id)?;
    let t1 = SystemClock.now_millis();
    // Let writes resume at the new primary before the gap is measured.
    std::thread::sleep(Duration::from_millis(1500));
    let acks = load.acks.lock().unwrap().clone();
    let mut times: Vec<(u64, u64)> = acks;
    times.sort_by_key(|a| a.1);
    Ok((
        r["downtime_ms"].as_u64().unwrap_or(0),
        longest_gap(&times, t0, t1),
    ))
}

pub fn run(seconds: u64, rate: u64, switchovers: usize, mib: u64) -> Result<(), CliError> {
    let (da, db, rd) = (
        crate::bench::temp_dir("tenet-bench-standby-a-")?,
        crate::bench::temp_dir("tenet-bench-standby-b-")?,
        crate::bench::temp_dir("tenet-bench-standby-repo-")?,
    );
    let repo = format!("file://{}", rd.path().display());
    let a = ServerChild::start(da.path())?;
    let mut b = ServerChild::start(db.path())?;
    let (ca, cb) = (client(&a)?, client(&b)?);
    println!(
        "two servers: A {} (source), B {} (standby); repository {repo}",
        a.url, b.url
    );
    setup(&ca, &repo)?;
    standby(&cb, "acme", &repo)?;

    // 1. Lag.
    let load = Load::start(&[ca.clone(), cb.clone()], rate, 4);
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (sampling, c) = (sampling.clone(), cb.clone());
        std::thread::spawn(move || -> Vec<(u64, u64)> {
            let mut samples = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                if let Ok(s) = c.standby_status("acme") {
                    let applied = tenet_store::Ts(s.applied_ts).millis();
                    samples.push((SystemClock.now_millis(), applied));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            samples
        })
    };
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    sampling.store(false, Ordering::Relaxed);
    let samples = sampler
        .join()
        .map_err(|_| CliError::other("sampler panicked"))?;
    let elapsed = t0.elapsed().as_secs_f64();
    let acks = load.acks.lock().unwrap().clone();
    let achieved = acks.len() as f64 / elapsed;
    let mut lag = Histogram::<u64>::new(3).expect("histogram");
    // Commits of the first 2 s are warm-up; a commit counts once a sample shows it.
    let start = acks.first().map_or(0, |a| a.0) + 2_000;
    for (c, _) in acks.iter().filter(|a| a.0 >= start) {
        if let Some((t, _)) = samples.iter().find(|(_, applied)| *applied >= *c) {
            let _ = lag.record(t.saturating_sub(*c));
        }
    }
    println!(
        "lag      {achieved:.0} commits/s on the source (target ≥ 500; asked {rate}); standby \
         lag {}; target p99 ≤ 2000 ms",
        pct(&lag)
    );

    // 2. Switchovers under load: between the servers, then within A's store.
    let mut between = (
        Histogram::<u64>::new(3).expect("h"),
        Histogram::<u64>::new(3).expect("h"),
    );
    for i in 0..switchovers {
        let (from, to) = if i % 2 == 0 { (&ca, &b) } else { (&cb, &a) };
        let (job_ms, gap) = switch(from, "acme", Some(to), &load)?;
        let _ = between.0.record(job_ms);
        let _ = between.1.record(gap);
    }
    // An even count leaves A the primary: a standby in its own store.
    if switchovers % 2 == 1 {
        switch(&cb, "acme", Some(&a), &load)?;
    }
    standby(&ca, "acme_sb", &repo)?;
    std::thread::sleep(Duration::from_millis(1500));
    let mut within = (
        Histogram::<u64>::new(3).expect("h"),
        Histogram::<u64>::new(3).expect("h"),
    );
    for _ in 0..switchovers {
        // The names swap each time: `acme` is always the primary, `acme_sb` its standby.
        let (job_ms, gap) = switch(&ca, "acme_sb", None, &load)?;
        let _ = within.0.record(job_ms);
        let _ = within.1.record(gap);
    }
    let acks = load.finish();
    println!(
        "switch   between servers ({switchovers}): write downtime {}; longest client gap {}; \
         target p99 ≤ 5000 ms",
        pct(&between.0),
        pct(&between.1)
    );
    println!(
        "switch   within a store ({switchovers}): write downtime {}; longest client gap {}; \
         target p99 ≤ 2000 ms",
        pct(&within.0),
        pct(&within.1)
    );
    println!("         ({} writes acknowledged in all)", acks.len());

    // 3. Apply throughput: a backlog for B's standby of `acme` (A is primary now).
    drop(b);
    let before = ca.archive_status("acme")?;
    let rows = mib * 1024;
    let mut text = crate::bench::texts();
    let mut last = 0u64;
    for chunk in 0..rows.div_ceil(100) {
        let batch: Vec<serde_json::Value> = (chunk * 100..((chunk + 1) * 100).min(rows))
            .map(|i| json!({"id": 10_000_000 + i, "w": 0, "payload": text()}))
            .collect();
        last = ca.put_rows("acme", "t", batch)?.commit.commit_ts;
    }
    while ca.archive_status("acme")?.checkpoint_ts < last {
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = ca.archive_status("acme")?;
    let stored = after.bytes.saturating_sub(before.bytes);
    let rt = crate::bench::runtime()?;
    let ceiling = |rt: &tokio::runtime::Runtime| -> Result<f64, CliError> {
        decode_rate(rt, &repo, before.checkpoint_ts)
    };
    let c1 = ceiling(&rt)?;
    let t0 = Instant::now();
    b = ServerChild::start(db.path())?;
    let cb = client(&b)?;
    loop {
        if cb
            .standby_status("acme")
            .is_ok_and(|s| s.applied_ts >= last)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let apply_secs = t0.elapsed().as_secs_f64();
    let c2 = ceiling(&rt)?;
    let mib_stored = stored as f64 / (1 << 20) as f64;
    println!(
        "apply    {mib} MiB of rows = {mib_stored:.0} MiB of archived log applied in \
         {apply_secs:.1} s (server start included) = {:.0} MiB/s; ceiling (read + decode the \
         same segments, nothing applied) {:.0} MiB/s (A {c1:.0}, A {c2:.0}); ratio {:.2}",
        mib_stored / apply_secs,
        (c1 + c2) / 2.0,
        (mib_stored / apply_secs) / ((c1 + c2) / 2.0)
    );
    drop(b);
    drop(a);
    Ok(())
}

/// MiB/s of reading and decoding every archived segment of `acme` after `after`.
fn decode_rate(rt: &tokio::runtime::Runtime, repo: &str, after: u64) -> Result<f64, CliError> {
    let r = tenet_backup::repo::Repo::open(repo).map_err(CliError::other)?;
    // `acme` was the first tenant of server A: history id 1.
    let keys: Vec<String> = rt
        .block_on(tenet_backup::inventory::archived_segments(&r, 1, None))
        .map_err(CliError::other)?
        .into_iter()
        .filter(|l| l.end.0 > after)
        .map(|l| l.key)
        .collect();
    let t0 = Instant::now();
    let mut bytes = 0u64;
    for k in &keys {
        let data = rt.block_on(r.get(k)).map_err(CliError::other)?;
        bytes += data.len() as u64;
        tenet_backup::segment::read_segment(k, 1, &data).map_err(CliError::other)?;
    }
    Ok(bytes as f64 / (1 << 20) as f64 / t0.elapsed().as_secs_f64().max(1e-9))
}
