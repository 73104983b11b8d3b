//! `tenet repo …`, `tenet strategy …` and `tenet backups prune`: what the operator
//! says once (named repositories, strategies) and the retention that follows from it.

use std::time::Duration;

use clap::{Args, Subcommand};

use tenet_server::admin::Admin;
use tenet_server::api::{
    AddRepo, ProtectionQuery, PruneRequest, PruneResponse, RepoInfo, StrategyBody, StrategyInfo,
};

use crate::duration;
use crate::output::{count, print_json, print_table, size, CliError};
use crate::Global;

#[derive(Subcommand, Debug)]
pub enum RepoCmd {
    /// Name a repository; the server keeps its settings (checked reachable now).
    Add {
        name: String,
        /// A directory, file:///dir or s3://bucket/prefix.
        url: String,
        /// S3-compatible endpoint, e.g. https://minio.example:9000.
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// The *name* of the server's environment variable that holds the access key id.
        #[arg(long)]
        access_key_env: Option<String>,
        /// The *name* of the server's environment variable that holds the secret key.
        #[arg(long)]
        secret_key_env: Option<String>,
        /// Use it when no repository is named.
        #[arg(long)]
        default: bool,
    },
    /// List named repositories.
    List,
    /// Show one named repository.
    Show { name: String },
    /// Forget a name (the repository's contents stay).
    Remove { name: String },
}

/// Whose strategy: a tenant's, or with --default the one for every tenant without
/// its own.
#[derive(Args, Debug)]
pub struct Whose {
    #[arg(required_unless_present = "default")]
    pub tenant: Option<String>,
    #[arg(long, conflicts_with = "tenant")]
    pub default: bool,
}

/// `tenet strategy set`.
#[derive(Args, Debug)]
pub struct StrategySet {
    #[command(flatten)]
    pub whose: Whose,
    /// Full backups on this schedule (UTC cron, e.g. "0 2 * * *", or @daily).
    #[arg(long)]
    pub full: Option<String>,
    /// An incremental backup this long after the previous backup (e.g. 1h).
    #[arg(long, value_parser = duration::parse)]
    pub incr: Option<Duration>,
    /// Archive the log continuously: on or off.
    #[arg(long, value_parser = ["on", "off"])]
    pub archive: Option<String>,
    #[arg(long, value_parser = duration::parse)]
    pub archive_interval: Option<Duration>,
    /// A named repository (default: the default repository).
    #[arg(long)]
    pub repo: Option<String>,
    /// Keep every point of this last window restorable (e.g. 14d).
    #[arg(long, value_parser = duration::parse)]
    pub keep_within: Option<Duration>,
    /// Keep this many newest full backups (and every point after the oldest of them).
    #[arg(long)]
    pub keep_full: Option<u32>,
    /// Restore drills on this schedule (UTC cron, or daily, weekly).
    #[arg(long)]
    pub drill: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum StrategyCmd {
    /// Set a tenant's strategy, or the default one (replaces it whole).
    Set(StrategySet),
    /// Show the strategy that applies to a tenant (or the default).
    Show(Whose),
    /// Remove a tenant's own strategy (the default applies again), or the default.
    Delete(Whose),
}

/// `tenet backups prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Only this tenant (default: every tenant whose strategy has a retention).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Repository (default: the strategy's, else where the tenant's backups are).
    #[arg(long)]
    pub repo: Option<String>,
    /// Override the strategy: keep every point of this last window (e.g. 14d).
    #[arg(long, value_parser = duration::parse)]
    pub keep_within: Option<Duration>,
    /// Override the strategy: keep this many newest full backups.
    #[arg(long)]
    pub keep_full: Option<u32>,
    /// Say what would be deleted and why; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the job ids and return at once.
    #[arg(long)]
    pub detach: bool,
}

fn print_repo(r: &RepoInfo) {
    println!(
        "repository {}{}",
        r.name,
        if r.default { " (default)" } else { "" }
    );
    println!("  url:      {}", r.url);
    if let Some(e) = &r.endpoint {
        println!("  endpoint: {e}");
    }
    if let Some(e) = &r.region {
        println!("  region:   {e}");
    }
    if let (Some(a), Some(s)) = (&r.access_key_env, &r.secret_key_env) {
        println!("  keys from the server's ${a} and ${s}");
    }
    println!(
        "  used by:  {}",
        if r.used_by.is_empty() {
            "no strategy".to_string()
        } else {
            r.used_by.join(", ")
        }
    );
}

pub fn repo(cmd: RepoCmd, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    let one = match cmd {
        RepoCmd::Add {
            name,
            url,
            endpoint,
            region,
            access_key_env,
            secret_key_env,
            default,
        } => {
            // A path is relative to this command's directory, not the server's.
            let url = tenet_backup::canonical_url(&url)
                .map_err(|e| CliError::from(tenet_server::error::ApiError::from(e)))?;
            admin.add_repo(&AddRepo {
                name,
                url,
                endpoint,
                region,
                access_key_env,
                secret_key_env,
                default,
            })?
        }
        RepoCmd::Show { name } => admin.get_repo(&name)?,
        RepoCmd::Remove { name } => {
            let r = admin.remove_repo(&name)?;
            if g.json {
                print_json(&r);
            } else {
                println!(
                    "forgot repository {} ({}); its contents stay",
                    r.name, r.url
                );
            }
            return Ok(());
        }
        RepoCmd::List => {
            let all = admin.list_repos()?;
            if g.json {
                print_json(&all);
            } else if all.is_empty() {
                println!("no named repositories; add one with `tenet repo add <name> <url>`");
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            r.url.clone(),
                            if r.default { "yes" } else { "" }.into(),
                            r.used_by.join(", "),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "URL", "DEFAULT", "USED BY"], &rows);
            }
            return Ok(());
        }
    };
    if g.json {
        print_json(&one);
    } else {
        print_repo(&one);
    }
    Ok(())
}

fn print_strategy(s: &StrategyInfo) {
    let who = match (&s.tenant, s.inherited) {
        (None, _) => "default strategy".to_string(),
        (Some(t), false) => format!("strategy of {t}"),
        (Some(t), true) => format!("strategy of {t} (the default; it has none of its own)"),
    };
    let b = &s.strategy;
    let dur = |secs: u64| humantime::format_duration(Duration::from_secs(secs)).to_string();
    println!("{who}");
    println!("  full:      {}", b.full.as_deref().unwrap_or("none"));
    println!(
        "  incr:      {}",
        b.incr_secs
            .map_or("none".into(), |i| format!("every {}", dur(i)))
    );
    println!(
        "  archive:   {}",
        if b.archive {
            format!(
                "on{}",
                b.archive_interval_ms
                    .map(|m| format!(", cut every {m} ms"))
                    .unwrap_or_default()
            )
        } else {
            "off".into()
        }
    );
    println!(
        "  repo:      {} ({})",
        b.repo.as_deref().unwrap_or("the default"),
        s.repo_url
    );
    let mut keep = Vec::new();
    if let Some(w) = b.keep_within_secs {
        keep.push(format!("every point of the last {}", dur(w)));
    }
    if let Some(n) = b.keep_full {
        keep.push(format!("{} newest full backups", n));
    }
    println!(
        "  retention: {}",
        if keep.is_empty() {
            "none: nothing is ever pruned".into()
        } else {
            keep.join(" and ")
        }
    );
    println!("  drill:     {}", b.drill.as_deref().unwrap_or("none"));
    for r in &s.runs {
        let mut line = format!("  {:<5} run: ", r.kind);
        match (&r.job, &r.next_due_time) {
            (Some(j), _) => line.push_str(&format!("running (job {j})")),
            (None, Some(t)) => line.push_str(&format!("next at {t}")),
            (None, None) => line.push_str("kept running"),
        }
        if let Some(o) = &r.last_outcome {
            line.push_str(&format!("; last {o}"));
        }
        if r.skipped > 0 {
            line.push_str(&format!("; {} skipped", r.skipped));
        }
        if let Some(t) = &r.retry_time {
            line.push_str(&format!("; retry at {t}"));
        }
        println!("{line}");
        if let Some(p) = &r.problem {
            println!("  problem: {p}");
        }
    }
}

pub fn strategy(cmd: StrategyCmd, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    let info = match cmd {
        StrategyCmd::Set(a) => {
            let body = StrategyBody {
                full: a.full,
                incr_secs: a.incr.map(|d| d.as_secs()),
                archive: a.archive.as_deref() == Some("on"),
                archive_interval_ms: a.archive_interval.map(|d| d.as_millis() as u64),
                repo: a.repo,
                keep_within_secs: a.keep_within.map(|d| d.as_secs()),
                keep_full: a.keep_full,
                drill: a.drill,
            };
            admin.put_strategy(a.whose.tenant.as_deref(), &body)?
        }
        StrategyCmd::Show(w) => admin.get_strategy(w.tenant.as_deref())?,
        StrategyCmd::Delete(w) => {
            let s = admin.delete_strategy(w.tenant.as_deref())?;
            if g.json {
                print_json(&s);
            } else {
                match &s.tenant {
                    Some(t) => println!("removed the strategy of {t}"),
                    None => println!("removed the default strategy"),
                }
            }
            return Ok(());
        }
    };
    if g.json {
        print_json(&info);
    } else {
        print_strategy(&info);
    }
    Ok(())
}

fn print_prune(r: &PruneResponse) {
    for p in &r.plans {
        println!(
            "{} ({}): {}; keeping every restorable point from {} — {}",
            p.tenant,
            p.repo,
            p.retention,
            p.keep_from.as_deref().unwrap_or("(nothing restorable)"),
            p.keep_from_reason
        );
        let verb = if r.dry_run { "would delete" } else { "deletes" };
        if p.delete.is_empty() {
            println!("  nothing to delete");
        } else {
            println!(
                "  {verb} {} ({}):",
                count(p.delete.len() as u64, "object", "objects"),
                size(p.delete_bytes)
            );
            for o in &p.delete {
                println!("    {} {} ({}): {}", o.kind, o.id, size(o.bytes), o.reason);
            }
        }
        println!(
            "  keeps {} ({})",
            count(p.kept_objects, "object", "objects"),
            size(p.kept_bytes)
        );
        let after: Vec<String> = p
            .restorable_after
            .iter()
            .map(|r| format!("{} … {}", r.from_time, r.to_time))
            .collect();
        println!(
            "  restorable after: {}",
            if after.is_empty() {
                "nothing".into()
            } else {
                after.join(", ")
            }
        );
        for n in &p.notes {
            println!("  note: {n}");
        }
    }
}

pub fn prune(a: PruneArgs, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    if !a.dry_run {
        crate::jobs_cli::check_detach(admin, a.detach)?;
    }
    let repo = crate::jobs_cli::repo_arg(&a.repo)?;
    let resp = admin.prune(&PruneRequest {
        tenant: a.tenant,
        repo,
        keep_within_secs: a.keep_within.map(|d| d.as_secs()),
        keep_full: a.keep_full,
        dry_run: a.dry_run,
    })?;
    if g.json && (a.dry_run || a.detach) {
        print_json(&resp);
        return Ok(());
    }
    if !g.json {
        print_prune(&resp);
    }
    for p in resp.plans {
        if let Some(job) = p.job {
            crate::jobs_cli::follow(admin, job, a.detach, g.json)?;
        }
    }
    Ok(())
}

/// A short age: `42s`, `7m`, `3h`, `2d`.
fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// `tenet status`: every tenant's protection, worst first.
pub fn status(refresh: bool, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    let o = admin.protection(&ProtectionQuery { refresh })?;
    if g.json {
        print_json(&o);
        return Ok(());
    }
    if o.tenants.is_empty() {
        println!("no tenants");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = o
        .tenants
        .iter()
        .map(|t| {
            let brief = |b: &Option<tenet_server::api::BackupBrief>| {
                b.as_ref()
                    .map_or("-".to_string(), |b| format!("{} ago", age(b.age_secs)))
            };
            vec![
                t.tenant.clone(),
                match (&t.strategy, t.own_strategy) {
                    (None, _) => "none".into(),
                    (Some(_), true) => "own".into(),
                    (Some(_), false) => "default".into(),
                },
                brief(&t.last_full),
                brief(&t.last_incr),
                match (&t.archive, t.archive_running) {
                    (None, _) => "-".into(),
                    (Some(_), true) => "running".into(),
                    (Some(s), false) => s.clone(),
                },
                t.restorable
                    .first()
                    .map_or("nothing".into(), |r| r.from_time.clone()),
                t.restorable_until_time.clone().unwrap_or("-".into()),
                t.rpo_ms.map_or("-".into(), |ms| age(ms / 1000)),
                t.next_full_time.clone().unwrap_or("-".into()),
                match (t.last_drill_ok, &t.last_proven_restorable_time) {
                    (None, _) => "-".into(),
                    (Some(false), _) => "FAILED".into(),
                    (Some(true), Some(p)) => format!("ok: {p}"),
                    (Some(true), None) => "ok".into(),
                },
                t.problems.len().to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "TENANT",
            "STRATEGY",
            "LAST FULL",
            "LAST INCR",
            "ARCHIVE",
            "RESTORABLE FROM",
            "TO",
            "RPO",
            "NEXT FULL",
            "LAST DRILL (PROVEN)",
            "PROBLEMS",
        ],
        &rows,
    );
    for t in o.tenants.iter().filter(|t| !t.problems.is_empty()) {
        println!("\n{}:", t.tenant);
        for p in &t.problems {
            println!("  - {p}");
        }
    }
    if !o.repositories.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = o
            .repositories
            .iter()
            .map(|r| {
                vec![
                    r.name.clone().unwrap_or("-".into()),
                    r.url.clone(),
                    r.tenants.to_string(),
                    r.objects.to_string(),
                    size(r.bytes),
                ]
            })
            .collect();
        print_table(&["REPOSITORY", "URL", "TENANTS", "OBJECTS", "SIZE"], &rows);
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum DrillCmd {
    /// Restore a point of the tenant's window into a scratch tenant, compare it with the
    /// source, drop it; prints what was proven.
    Run {
        tenant: String,
        /// This time (RFC 3339, commit ts, -1h, @snapshot); default: a random point.
        #[arg(long, allow_hyphen_values = true)]
        at: Option<String>,
        /// Default: the strategy's repository, else where its backups are.
        #[arg(long)]
        repo: Option<String>,
        /// Print the job id and return at once.
        #[arg(long)]
        detach: bool,
    },
}

pub fn drill(cmd: DrillCmd, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    let DrillCmd::Run {
        tenant,
        at,
        repo,
        detach,
    } = cmd;
    crate::jobs_cli::check_detach(admin, detach)?;
    let repo = crate::jobs_cli::repo_arg(&repo)?;
    let job = admin.drill(&tenant, &tenet_server::api::DrillRequest { at, repo })?;
    crate::jobs_cli::follow(admin, job, detach, g.json)
}
