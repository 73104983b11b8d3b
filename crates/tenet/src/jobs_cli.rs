//! Backup, restore and job commands. Jobs run inside the server when one owns the data
//! directory, else in this process; either way the command follows the job's progress
//! (a progress bar on a terminal) until it ends, unless `--detach` is given.
//!
//! Ctrl-C while following: embedded, the job is cancelled (and cleaned up); with a
//! server, the command stops following and the job goes on. A second Ctrl-C exits at
//! once.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tenet_server::admin::Admin;
use tenet_server::api::*;

use crate::output::{count, duration, print_json, print_table, rate, secs, size, CliError};
use crate::Global;

#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// Full backup of one tenant (online; writes continue).
    Full {
        tenant: String,
        #[command(flatten)]
        opts: JobOpts,
    },
    /// Incremental backup: the commit log since the tenant's newest backup (in the
    /// same repository), chained to it.
    Incr {
        tenant: String,
        #[command(flatten)]
        opts: JobOpts,
    },
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct JobOpts {
    /// Repository: a directory, file:///path or s3://bucket/prefix (S3 settings from
    /// AWS_* environment variables). Default ./tenet-backups.
    #[arg(long, env = "TENET_REPO")]
    pub repo: Option<String>,
    /// Limit the job's I/O, e.g. 50MiB (per second).
    #[arg(long, value_parser = parse_size)]
    pub throttle: Option<u64>,
    /// Print the job id and return at once (needs a running server).
    #[arg(long)]
    pub detach: bool,
}

#[derive(Subcommand, Debug)]
pub enum BackupsCmd {
    /// List backups (of one tenant): this store's records, or with --repo what a
    /// repository holds (e.g. after losing the data directory).
    List {
        tenant: Option<String>,
        /// List the backups in this repository, read from it alone.
        #[arg(long)]
        repo: Option<String>,
    },
    /// Show a backup and its tables.
    Show {
        id: String,
        /// Look in this repository if this store has no record of the backup.
        #[arg(long)]
        repo: Option<String>,
    },
    /// Delete a backup: its files, then its record. Refused while incremental backups
    /// are chained on it, unless --force.
    Delete {
        id: String,
        /// Delete it even if incremental backups depend on it.
        #[arg(long)]
        force: bool,
    },
    /// Download a backup and check checksums, records and digests.
    Verify {
        id: String,
        #[command(flatten)]
        opts: JobOpts,
    },
    /// Delete the backups and archived log no kept restore point needs (by the
    /// strategy's retention, or --keep-within/--keep-full); --dry-run says what and why.
    Prune(crate::protection_cli::PruneArgs),
}

#[derive(Subcommand, Debug)]
pub enum JobsCmd {
    /// List jobs.
    List,
    /// Show one job with its progress.
    Show { id: u64 },
    /// Cancel a job; what it made is cleaned up.
    Cancel { id: u64 },
    /// Continue an unfinished job (after a crash) and follow it.
    Resume {
        id: u64,
        #[arg(long)]
        detach: bool,
    },
}

/// Parses `1048576`, `64KiB`, `50MiB`, `1GiB`, `10MB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write e.g. 50MiB, 10MB or 1048576"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit `{other}`; use B, KB, KiB, MB, MiB, GB or GiB"
            ))
        }
    };
    let v = (n * mult).round();
    if v < 1.0 {
        return Err(format!("`{s}` must be at least 1 byte"));
    }
    Ok(v as u64)
}

/// Prints `items` as JSON, or as a table with one row each.
fn print_list<T: serde::Serialize>(
    json: bool,
    items: &[T],
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) {
    if json {
        print_json(&items);
    } else {
        let rows: Vec<Vec<String>> = items.iter().map(row).collect();
        print_table(header, &rows);
    }
}

pub fn check_detach(admin: &dyn Admin, detach: bool) -> Result<(), CliError> {
    if detach && !admin.jobs_run_detached() {
        return Err(CliError::invalid(
            "--detach needs a running server (`tenet serve`): without one, jobs run inside \
             this command and stop with it",
        ));
    }
    Ok(())
}

pub fn backup(cmd: BackupCmd, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    let (kind, tenant, opts) = match cmd {
        BackupCmd::Full { tenant, opts } => ("full", tenant, opts),
        BackupCmd::Incr { tenant, opts } => ("incr", tenant, opts),
    };
    check_detach(admin, opts.detach)?;
    // A full backup goes to the default repository (the default named one, else
    // ./tenet-backups); an incremental follows its chain.
    let repo = repo_arg(&opts.repo)?;
    let job = admin.create_backup(&CreateBackup {
        tenant,
        kind: Some(kind.into()),
        repo,
        throttle_bytes_per_sec: opts.throttle,
    })?;
    if job.params["new_repository"] == true {
        eprintln!(
            "note: {} held no repository: created a new one there",
            job.params["repo"].as_str().unwrap_or_default()
        );
    }
    follow(admin, job, opts.detach, g.json)
}

/// A `--repo` argument as sent: a repository name as is (the server knows its URL and
/// settings), a path made absolute here (it is relative to this command's directory).
/// None lets whoever runs the job choose (the default repository, or where the
/// tenant's archive or chain already is).
pub(crate) fn repo_arg(repo: &Option<String>) -> Result<Option<String>, CliError> {
    let Some(arg) = repo.as_deref() else {
        return Ok(None);
    };
    if tenet_backup::strategy::is_repo_name(arg) {
        return Ok(Some(arg.to_string()));
    }
    tenet_backup::canonical_url(arg)
        .map(Some)
        .map_err(|e| CliError::from(tenet_server::error::ApiError::from(e)))
}

/// What a restore brings back (exactly one).
#[derive(Debug, Default)]
pub struct RestoreWhat {
    pub backup: Option<String>,
    pub to: Option<String>,
    pub before_commit: Option<String>,
    pub latest: bool,
    /// A standby, with its poll interval.
    pub standby: Option<Duration>,
}

pub fn restore(
    source: String,
    into: Option<String>,
    what: RestoreWhat,
    opts: JobOpts,
    admin: &dyn Admin,
    g: &Global,
) -> Result<(), CliError> {
    check_detach(admin, opts.detach)?;
    let given = [
        what.backup.is_some(),
        what.to.is_some(),
        what.before_commit.is_some(),
        what.latest,
    ];
    if let Some(p) = what.standby {
        if !(Duration::from_millis(10)..=Duration::from_secs(60)).contains(&p) {
            return Err(CliError::invalid(format!(
                "--poll {} is out of range: 10ms to 60s",
                duration(p)
            )));
        }
    }
    if what.standby.is_none() && given.iter().filter(|b| **b).count() != 1 {
        return Err(CliError::invalid(
            "say what to restore with exactly one of --backup <id>, --to <time|ts>, \
             --before-commit <commit ts>, --latest, or --standby (the newest state, then \
             following the source)",
        ));
    }
    let before_commit = what
        .before_commit
        .as_deref()
        .map(tenet_store::Ts::parse_commit)
        .transpose()?
        .map(|ts| ts.0);
    let repo = repo_arg(&opts.repo)?;
    let job = admin.create_restore(&CreateRestore {
        source,
        backup_id: what.backup,
        to: what.to,
        before_commit,
        latest: what.latest,
        in_place: into.is_none(),
        target: into.unwrap_or_default(),
        repo,
        throttle_bytes_per_sec: opts.throttle,
        standby: what.standby.is_some(),
        poll_ms: what.standby.map(|p| p.as_millis() as u64),
    })?;
    if what.standby.is_some() && !admin.jobs_run_detached() {
        eprintln!(
            "note: a standby follows its source only inside `tenet serve`; until a server \
             runs on this data directory it stays where its restore ends"
        );
    }
    if job.params["new_repository"] == true {
        eprintln!(
            "note: {} held no repository: created a new one there",
            job.params["repo"].as_str().unwrap_or_default()
        );
    }
    follow(admin, job, opts.detach, g.json)
}

/// `tenet tenant clone`.
pub fn clone(
    tenant: &str,
    as_of: String,
    into: String,
    repo: Option<String>,
    detach: bool,
    admin: &dyn Admin,
    g: &Global,
) -> Result<(), CliError> {
    check_detach(admin, detach)?;
    let repo = repo_arg(&repo)?;
    let job = admin.clone_tenant(
        tenant,
        &CloneRequest {
            as_of: Some(as_of),
            into,
            repo,
        },
    )?;
    follow(admin, job, detach, g.json)
}

pub fn restore_points(
    tenant: &str,
    repo: Option<String>,
    admin: &dyn Admin,
    g: &Global,
) -> Result<(), CliError> {
    let repo = repo_arg(&repo)?;
    let points = admin.restore_points(tenant, &RepoQuery { repo })?;
    print_list(g.json, &points, &["FROM", "TO", "FROM TS", "TO TS"], |p| {
        vec![
            p.from_time.clone(),
            p.to_time.clone(),
            p.from_ts.to_string(),
            p.to_ts.to_string(),
        ]
    });
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum ArchiveCmd {
    /// Start shipping the tenant's commit log to a repository (needs `tenet serve`).
    Start {
        tenant: String,
        #[arg(long, env = "TENET_REPO")]
        repo: Option<String>,
        /// How often a segment is cut.
        #[arg(long, default_value = "1s", value_parser = crate::duration::parse)]
        interval: Duration,
        /// Cut a segment early at this size.
        #[arg(long, value_parser = parse_size)]
        segment_max: Option<u64>,
        /// Give up (`broken`, pin released) after uploads fail this long.
        #[arg(long, value_parser = crate::duration::parse)]
        budget: Option<Duration>,
        /// Also take a full backup into the repository now, so that what is archived
        /// is restorable (needed when the repository holds no backup to continue).
        #[arg(long)]
        full_backup: bool,
    },
    /// Stop the archiver; what is archived stays.
    Stop { tenant: String },
    /// What is restorable (up to when) and the real RPO.
    Status { tenant: String },
}

pub fn archive(cmd: ArchiveCmd, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    let info = match cmd {
        ArchiveCmd::Start {
            tenant,
            repo,
            interval,
            segment_max,
            budget,
            full_backup,
        } => admin.archive_start(
            &tenant,
            &ArchiveStart {
                repo: repo_arg(&repo)?,
                full_backup,
                interval_ms: Some(interval.as_millis().max(1) as u64),
                segment_max_bytes: segment_max,
                budget_secs: budget.map(|b| b.as_secs()),
            },
        )?,
        ArchiveCmd::Stop { tenant } => admin.archive_stop(&tenant)?,
        ArchiveCmd::Status { tenant } => admin.archive_status(&tenant)?,
    };
    if g.json {
        print_json(&info);
    } else {
        println!(
            "archiver of tenant `{}`: {}{}",
            info.tenant,
            info.status,
            if info.status == "running" && !info.running {
                " (not running in this process)"
            } else {
                ""
            }
        );
        println!("  repository       {}", info.repo);
        match (&info.restorable_until_time, info.restorable_until_ts) {
            (Some(t), Some(ts)) => println!("  restorable up to {t} (ts {ts})"),
            _ => println!("  restorable up to nothing yet"),
        }
        match info.rpo_ms {
            Some(0) => println!("  RPO              0 s (every commit is restorable)"),
            Some(ms) => println!("  RPO              {}", duration(Duration::from_millis(ms))),
            None => println!("  RPO              unbounded (nothing is restorable)"),
        }
        println!(
            "  shipped up to    {} (ts {})",
            info.checkpoint_time, info.checkpoint_ts
        );
        println!(
            "  shipped          {}, {}, {}",
            count(info.segments, "segment", "segments"),
            count(info.records, "commit", "commits"),
            size(info.bytes)
        );
        if let Some(e) = &info.error {
            println!("  last error       {e}");
        }
        if let Some(job) = info.backup_job {
            println!("  full backup      job {job} started (`tenet jobs show {job}`)");
        }
        if let Some(p) = &info.problem {
            println!("  PROBLEM          {p}");
        }
    }
    Ok(())
}

pub fn backups(cmd: BackupsCmd, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    match cmd {
        BackupsCmd::List { tenant, repo } => {
            let repo = repo_arg(&repo)?;
            let list = admin.list_backups(&ListBackupsQuery { tenant, repo })?;
            print_list(
                g.json,
                &list,
                &[
                    "ID",
                    "TENANT",
                    "KIND",
                    "BACKUP TIME",
                    "ROWS",
                    "LOGICAL",
                    "STORED",
                    "REPO",
                ],
                |b| {
                    vec![
                        b.id.clone(),
                        match (&b.tenant_at_backup, b.tenant_live) {
                            (Some(then), _) => format!("{} (was {then})", b.tenant),
                            (None, false) => format!("{} (not in this store)", b.tenant),
                            (None, true) => b.tenant.clone(),
                        },
                        b.kind.clone(),
                        b.backup_time.clone(),
                        b.rows.to_string(),
                        size(b.logical_bytes),
                        size(b.stored_bytes),
                        b.repo.clone(),
                    ]
                },
            );
        }
        BackupsCmd::Show { id, repo } => {
            let repo = repo_arg(&repo)?;
            let b = admin.get_backup(&id, &RepoQuery { repo })?;
            if g.json {
                print_json(&b);
            } else {
                println!(
                    "backup {} of tenant `{}` (id {})",
                    b.id, b.tenant, b.tenant_id
                );
                println!("  state as of   {} (ts {})", b.backup_time, b.backup_ts);
                println!("  repository    {}", b.repo);
                println!("  taken         {} → {}", b.started_at, b.finished_at);
                println!(
                    "  size          {}, {} logical, {} stored",
                    count(b.rows, "row", "rows"),
                    size(b.logical_bytes),
                    size(b.stored_bytes)
                );
                let rows: Vec<Vec<String>> = b
                    .tables
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.rows.to_string(),
                            t.files.to_string(),
                            size(t.logical_bytes),
                            t.digest.get(..16).unwrap_or(&t.digest).to_string(),
                        ]
                    })
                    .collect();
                print_table(&["TABLE", "ROWS", "FILES", "LOGICAL", "DIGEST"], &rows);
            }
        }
        BackupsCmd::Prune(args) => crate::protection_cli::prune(args, admin, g)?,
        BackupsCmd::Delete { id, force } => {
            let b = admin.delete_backup(&id, &DeleteBackupQuery { force })?;
            if g.json {
                print_json(&b);
            } else {
                println!(
                    "deleted backup {} ({}) from {}",
                    b.id,
                    count(b.files, "file", "files"),
                    b.repo
                );
            }
        }
        BackupsCmd::Verify { id, opts } => {
            check_detach(admin, opts.detach)?;
            let repo = repo_arg(&opts.repo)?;
            let job = admin.verify_backup(
                &id,
                &VerifyBackup {
                    repo,
                    throttle_bytes_per_sec: opts.throttle,
                },
            )?;
            follow(admin, job, opts.detach, g.json)?;
        }
    }
    Ok(())
}

pub fn jobs(cmd: JobsCmd, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    match cmd {
        JobsCmd::List => {
            let jobs = admin.list_jobs()?;
            print_list(
                g.json,
                &jobs,
                &[
                    "ID", "KIND", "TENANT", "STATE", "PHASE", "PROGRESS", "CREATED",
                ],
                |j| {
                    vec![
                        j.id.to_string(),
                        j.kind.clone(),
                        j.tenant.clone(),
                        state_cell(j),
                        j.phase.clone(),
                        progress_cell(j),
                        j.created_at.clone(),
                    ]
                },
            );
            if !g.json && jobs.iter().any(|j| !j.is_final() && !j.live) {
                println!(
                    "note: nothing runs the interrupted jobs; continue one with \
                     `tenet jobs resume <id>`{}",
                    if admin.jobs_run_detached() {
                        ""
                    } else {
                        " or start `tenet serve`"
                    }
                );
            }
        }
        JobsCmd::Show { id } => {
            let j = admin.get_job(id)?;
            if g.json {
                print_json(&j);
            } else {
                print_job(&j);
            }
        }
        JobsCmd::Cancel { id } => {
            let j = admin.cancel_job(id)?;
            let j = if admin.jobs_run_detached() {
                j
            } else {
                // Embedded: the cleanup runs here; wait for it.
                wait_final(admin, j.id)?
            };
            if g.json {
                print_json(&j);
            } else {
                println!("job {} is {}", j.id, j.state);
            }
        }
        JobsCmd::Resume { id, detach } => {
            check_detach(admin, detach)?;
            let j = admin.resume_job(id)?;
            follow(admin, j, detach, g.json)?;
        }
    }
    Ok(())
}

/// Waits until the job ended or stopped running.
pub(crate) fn wait_final(admin: &dyn Admin, id: u64) -> Result<JobInfo, CliError> {
    loop {
        let j = admin.get_job(id)?;
        if j.is_final() || !j.live {
            return Ok(j);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether nothing runs an unfinished job (its process died).
fn interrupted(j: &JobInfo) -> bool {
    !j.is_final() && !j.live
}

/// A job's state as `jobs list` and `jobs show` print it.
fn state_cell(j: &JobInfo) -> String {
    if interrupted(j) {
        format!("{} (interrupted)", j.state)
    } else {
        j.state.clone()
    }
}

/// `3/8`, or `3` when the total is unknown (0).
fn of(done: u64, total: u64) -> String {
    if total > 0 {
        format!("{done}/{total}")
    } else {
        done.to_string()
    }
}

/// `1.00 MiB/4.00 MiB`, or `1.00 MiB` when the total is unknown.
fn bytes_of(done: u64, total: u64) -> String {
    if total > 0 {
        format!("{}/{}", size(done), size(total))
    } else {
        size(done)
    }
}

fn progress_cell(j: &JobInfo) -> String {
    let p = &j.progress;
    if p.bytes_total > 0 {
        format!(
            "{:.0}% of {} logical",
            100.0 * p.bytes_done as f64 / p.bytes_total as f64,
            size(p.bytes_total)
        )
    } else if p.tasks_total > 0 || p.bytes_done > 0 {
        format!(
            "{} tasks, {} logical",
            of(p.tasks_done, p.tasks_total),
            size(p.bytes_done)
        )
    } else {
        String::new()
    }
}

fn print_job(j: &JobInfo) {
    println!(
        "job {} ({} of tenant `{}`): {}",
        j.id,
        j.kind,
        j.tenant,
        state_cell(j)
    );
    if !j.phase.is_empty() {
        println!("  phase     {}", j.phase);
    }
    let p = &j.progress;
    println!(
        "  progress  {} tasks, {} rows, {} logical",
        of(p.tasks_done, p.tasks_total),
        of(p.rows_done, p.rows_total),
        bytes_of(p.bytes_done, p.bytes_total)
    );
    if p.io_bytes > 0 || j.throttle_bytes_per_sec.is_some() {
        println!(
            "  I/O       {}{}{}",
            size(p.io_bytes),
            if j.is_final() || interrupted(j) {
                String::new()
            } else {
                format!(" at {}", rate(p.io_bytes_per_sec))
            },
            match j.throttle_bytes_per_sec {
                Some(t) => format!(" (throttle {})", rate(t)),
                None => String::new(),
            }
        );
    }
    if let Some(eta) = p.eta_secs.filter(|_| !j.is_final() && j.live) {
        println!(
            "  eta       {} at {} logical",
            secs(eta),
            rate(p.bytes_per_sec)
        );
    }
    if interrupted(j) {
        println!(
            "  note      nothing runs it; continue it with `tenet jobs resume {}` or cancel \
             it with `tenet jobs cancel {}`",
            j.id, j.id
        );
    }
    println!("  created   {}", j.created_at);
    if let Some(f) = &j.finished_at {
        println!("  finished  {f}");
    }
    if let Some(e) = &j.error {
        println!("  error     {} [{}]", e.message, e.code);
    }
    if let Some(r) = &j.result {
        println!("  result    {r}");
    }
}

/// Ctrl-C presses seen while following a job.
fn watch_ctrl_c() -> Arc<AtomicU8> {
    let presses = Arc::new(AtomicU8::new(0));
    let p = presses.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            loop {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                if p.fetch_add(1, Ordering::SeqCst) >= 1 {
                    eprintln!("interrupted");
                    std::process::exit(130);
                }
            }
        });
    });
    presses
}

/// Follows a job to its end (or returns at once with `detach`), then prints it.
pub fn follow(admin: &dyn Admin, job: JobInfo, detach: bool, json: bool) -> Result<(), CliError> {
    if detach {
        if json {
            print_json(&job);
        } else {
            println!(
                "job {} ({}) started; follow it with `tenet jobs show {}`",
                job.id, job.kind, job.id
            );
        }
        return Ok(());
    }
    let presses = watch_ctrl_c();
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    // With a byte total: a bar, %, ETA. Without one (a backup does not know its size
    // up front): tasks and bytes so far. Chosen on every poll, since a job learns its
    // totals as it goes (a restore after reading its manifest). The bytes are logical;
    // the rate is of the bytes the throttle counts.
    let sized = ProgressStyle::with_template(
        "{spinner} job {prefix} {msg} [{bar:30}] {bytes}/{total_bytes} logical ({percent}%), eta {eta}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    let open_ended = ProgressStyle::with_template("{spinner} job {prefix} {msg} {bytes} logical")
        .expect("valid template");
    bar.set_prefix(format!("{} {}", job.id, job.kind));
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut has_total = None;
    let mut cancel_sent = false;
    let last = loop {
        let j = admin.get_job(job.id)?;
        let p = &j.progress;
        let known = p.bytes_total > 0;
        if has_total != Some(known) {
            bar.set_style(if known {
                sized.clone()
            } else {
                open_ended.clone()
            });
            has_total = Some(known);
        }
        if known {
            bar.set_length(p.bytes_total);
        }
        let io = if p.io_bytes_per_sec > 0 {
            format!(
                ", I/O {}{}",
                rate(p.io_bytes_per_sec),
                j.throttle_bytes_per_sec
                    .map(|t| format!(" (throttle {})", rate(t)))
                    .unwrap_or_default()
            )
        } else {
            String::new()
        };
        bar.set_message(format!(
            "{} {} tasks{io}",
            j.phase,
            of(p.tasks_done, p.tasks_total)
        ));
        bar.set_position(p.bytes_done);
        // Ended, or stopped without ending (its cleanup failed; it waits for resume).
        if j.is_final() || !j.live {
            break j;
        }
        if presses.load(Ordering::SeqCst) > 0 && !cancel_sent {
            cancel_sent = true;
            if admin.jobs_run_detached() {
                bar.finish_and_clear();
                eprintln!(
                    "stopped following; job {} goes on in the server (cancel it with `tenet jobs cancel {}`)",
                    j.id, j.id
                );
                return Ok(());
            }
            bar.println(
                "cancelling… (Ctrl-C again to exit at once; `tenet jobs resume` then finishes the cleanup)",
            );
            admin.cancel_job(j.id)?;
        }
        std::thread::sleep(Duration::from_millis(150));
    };
    bar.finish_and_clear();
    if json {
        print_json(&last);
    } else {
        print_outcome(&last);
    }
    match (last.state.as_str(), &last.error) {
        ("succeeded", _) => Ok(()),
        (_, Some(e)) => Err(CliError {
            code: e.code.clone(),
            message: format!("job {} failed: {}", last.id, e.message),
        }),
        (state, None) => Err(CliError {
            code: tenet_store::Code::CANCELLED.as_str().into(),
            message: format!("job {} was {state}", last.id),
        }),
    }
}

fn print_outcome(j: &JobInfo) {
    let Some(r) = j.result.as_ref() else {
        return;
    };
    // Timestamps come as decimal strings, counts as numbers.
    let u = |k: &str| {
        r[k].as_u64()
            .or_else(|| r[k].as_str()?.parse().ok())
            .unwrap_or(0)
    };
    let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
    match j.kind.as_str() {
        "backup_incr" => println!(
            "incremental backup {} of tenant `{}` after {}: {} up to {}, {} stored in {} (job {})",
            s("backup_id"),
            s("tenant"),
            s("parent"),
            count(u("commits"), "commit", "commits"),
            s("backup_time"),
            size(u("stored_bytes")),
            count(u("files"), "segment", "segments"),
            j.id
        ),
        "backup_full" => println!(
            "backup {} of tenant `{}` as of {}: {} in {}, {} logical, {} stored in {} ({}, job {})",
            s("backup_id"),
            s("tenant"),
            s("backup_time"),
            count(u("rows"), "row", "rows"),
            count(u("tables"), "table", "tables"),
            size(u("logical_bytes")),
            size(u("stored_bytes")),
            count(u("files"), "file", "files"),
            duration(
                Duration::try_from_secs_f64(r["seconds"].as_f64().unwrap_or(0.0))
                    .unwrap_or_default()
            ),
            j.id
        ),
        "restore" if r["in_place"] == true => {
            let undone = match r["undone_commits"].as_u64() {
                Some(0) => "no later commit of it was undone".to_string(),
                Some(n) => format!("{} made after that time undone", count(n, "commit", "commits")),
                None => "the commits made after that time undone".to_string(),
            };
            match u("commit_ts") {
                commit if commit > 0 => println!(
                    "restored `{}` in place to {} (ts {}) in one commit at ts {commit}: backup {} + {} from the log; {} changed, {undone}; writes held {} ms (job {})\nundo: tenet snapshot rollback {} {}",
                    s("tenant"),
                    s("restored_time"),
                    u("restored_ts"),
                    s("backup_id"),
                    count(u("replayed_records"), "commit", "commits"),
                    count(u("changed_keys"), "key", "keys"),
                    r["writes_held_ms"],
                    j.id,
                    s("tenant"),
                    s("undo_snapshot"),
                ),
                _ => println!(
                    "`{}` already equals its state at {} (ts {}): nothing changed (job {})",
                    s("tenant"),
                    s("restored_time"),
                    u("restored_ts"),
                    j.id
                ),
            }
        }
        "drill" => println!(
            "drill of `{}`: restored {} (backup {} + {}) into a scratch tenant; it equals the \
             source there (compared by {}{}) — {:.1} s (job {})",
            s("tenant"),
            s("target_time"),
            r["backup_id"].as_str().unwrap_or("?"),
            count(u("replayed_records"), "commit", "commits"),
            s("compared_by"),
            if r["compared_by"] == "time travel" {
                format!(
                    ": {}, {}",
                    count(u("tables"), "table", "tables"),
                    count(u("rows"), "row", "rows")
                )
            } else {
                String::new()
            },
            r["seconds"].as_f64().unwrap_or(0.0),
            j.id
        ),
        "prune" => {
            let after: Vec<String> = r["restorable_after"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{} … {}",
                        p["from_time"].as_str().unwrap_or(""),
                        p["to_time"].as_str().unwrap_or("")
                    )
                })
                .collect();
            println!(
                "pruned `{}`: deleted {} ({}), kept {} ({}); restorable: {} (job {})",
                j.tenant,
                count(u("deleted"), "object", "objects"),
                size(u("deleted_bytes")),
                count(u("kept_objects"), "object", "objects"),
                size(u("kept_bytes")),
                if after.is_empty() {
                    "nothing".to_string()
                } else {
                    after.join(", ")
                },
                j.id
            );
            for k in r["skipped"].as_array().into_iter().flatten() {
                println!("  skipped {}", k.as_str().unwrap_or(""));
            }
        }
        "switchover" => println!(
            "switched `{}` over to its standby `{}`{} at ts {} ({}); writes were refused for {} ms\n  primary   `{}`{} (was the standby)\n  standby   `{}` (#{}) here, following it read-only; switch back with `tenet switchover {} --to {}`{} (job {})",
            s("source"),
            s("to"),
            r["to_server"].as_str().map(|u| format!(" on {u}")).unwrap_or_default(),
            u("switched_ts"),
            s("switched_time"),
            u("downtime_ms"),
            s("new_primary"),
            r["to_server"].as_str().map(|u| format!(" on {u}")).unwrap_or_default(),
            s("old_primary_now"),
            u("old_primary_id"),
            s("new_primary"),
            s("old_primary_now"),
            if r["to_server"].is_string() {
                " run against the new primary's server, with --to-server naming this one"
            } else {
                ""
            },
            j.id
        ),
        "restore" if r["standby"] == true => println!(
            "standby `{}` (id {}) of `{}` follows its archive from {} (ts {}): backup {} + {} from the log (job {}); it is readable, not writable, until `tenet promote {}`",
            s("tenant"),
            u("tenant_id"),
            s("source_tenant"),
            s("restored_time"),
            u("restored_ts"),
            s("backup_id"),
            count(u("replayed_records"), "commit", "commits"),
            j.id,
            s("tenant"),
        ),
        "restore" if u("restored_ts") > u("backup_ts") => println!(
            "restored `{}` to {} (ts {}) into tenant `{}` (id {}): backup {} (as of {}, verified by digest) + {} from the log (job {})",
            s("source_tenant"),
            s("restored_time"),
            u("restored_ts"),
            s("tenant"),
            u("tenant_id"),
            s("backup_id"),
            s("backup_time"),
            count(u("replayed_records"), "commit", "commits"),
            j.id
        ),
        "restore" => println!(
            "restored backup {} of `{}` (as of {}) into tenant `{}` (id {}): {} in {}, verified by digest (job {})",
            s("backup_id"),
            s("source_tenant"),
            s("backup_time"),
            s("tenant"),
            u("tenant_id"),
            count(u("rows"), "row", "rows"),
            count(u("tables"), "table", "tables"),
            j.id
        ),
        "clone" => println!(
            "cloned `{}` as of {} (ts {}) into tenant `{}` (id {}): {} in {}, {} from local history (job {})",
            s("source_tenant"),
            s("as_of_time"),
            u("as_of_ts"),
            s("tenant"),
            u("tenant_id"),
            count(u("rows"), "row", "rows"),
            count(u("tables"), "table", "tables"),
            size(u("logical_bytes")),
            j.id
        ),
        "verify" => println!(
            "backup {} is intact: {}, {}, {} stored; checksums, records and digests match (job {})",
            s("backup_id"),
            count(u("files"), "file", "files"),
            count(u("rows"), "row", "rows"),
            size(u("stored_bytes")),
            j.id
        ),
        _ => println!("job {} {}: {r}", j.id, j.state),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1048576));
        assert_eq!(parse_size("50MiB"), Ok(50 << 20));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert!(parse_size("5 parsecs")
            .unwrap_err()
            .contains("unknown size unit"));
        assert!(parse_size("0").is_err());
        assert!(parse_size("x").is_err());
    }
}
