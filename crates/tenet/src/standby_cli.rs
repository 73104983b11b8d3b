//! `tenet standby status` and `tenet promote`: standby tenants that follow a source
//! through its archive (`restore --standby` creates them, `jobs_cli.rs`).

use std::time::Duration;

use clap::{Args, Subcommand};

use tenet_server::admin::Admin;
use tenet_server::api::{PromoteRequest, PromoteResponse, StandbyInfo, SwitchoverRequest};

use crate::output::{count, duration, print_json, CliError};
use crate::Global;

#[derive(Subcommand, Debug)]
pub enum StandbyCmd {
    /// Where a standby stands: applied up to, the source's archive, lag, problems.
    Status { tenant: String },
    /// Stop applying the source's log (to promote at a time not applied yet).
    Pause { tenant: String },
    /// Apply the source's log again.
    Resume { tenant: String },
}

/// `tenet switchover`.
#[derive(Args, Debug)]
pub struct SwitchoverArgs {
    /// The tenant to move (it must be archived; it stays behind as a standby).
    pub source: String,
    /// Its standby, which becomes the primary and takes the source's name.
    #[arg(long)]
    pub to: String,
    /// The standby's server (default: the source's own), e.g. http://10.0.0.2:7070.
    #[arg(long)]
    pub to_server: Option<String>,
    /// A token of --to-server (operator or above), for the switchover to use there.
    #[arg(long, env = "TENET_TO_TOKEN", hide_env_values = true)]
    pub to_token: Option<String>,
    /// Print the job id and return at once.
    #[arg(long)]
    pub detach: bool,
}

/// `tenet promote`.
#[derive(Args, Debug)]
pub struct PromoteArgs {
    /// The standby to make writable.
    pub standby: String,
    /// Stop at exactly this time or commit ts (default: everything archived). A time
    /// before the end of the archive forks: the tenant starts a history of its own.
    #[arg(long, allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Promote although the source looks alive (failover): reports what may be lost.
    #[arg(long)]
    pub force: bool,
    /// Take the source's name (when the source no longer has it in this store).
    #[arg(long)]
    pub take_name: bool,
}

pub fn standby(cmd: StandbyCmd, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    let info = match cmd {
        StandbyCmd::Status { tenant } => admin.standby_status(&tenant)?,
        StandbyCmd::Pause { tenant } => admin.standby_pause(&tenant, true)?,
        StandbyCmd::Resume { tenant } => admin.standby_pause(&tenant, false)?,
    };
    if g.json {
        print_json(&info);
        return Ok(());
    }
    print_status(&info);
    Ok(())
}

fn print_status(i: &StandbyInfo) {
    println!(
        "standby `{}` of `{}`: {}{}",
        i.tenant,
        i.source,
        i.state,
        if i.paused {
            ", paused (`tenet standby resume` to follow again)"
        } else if i.running {
            ", following"
        } else {
            " (its follower is not running in this process)"
        }
    );
    println!("  repository       {}", i.repo);
    println!(
        "  applied up to    {} (ts {}, {} ago)",
        i.applied_time,
        i.applied_ts,
        duration(Duration::from_millis(i.lag_ms))
    );
    println!(
        "  source archived  {} (ts {})",
        i.archived_until_time, i.archived_until_ts
    );
    println!(
        "  behind archive   {} (the source's archive last advanced {} ago)",
        duration(Duration::from_millis(i.behind_ms)),
        duration(Duration::from_millis(i.archive_idle_ms))
    );
    println!(
        "  applied          {}, {}",
        count(i.segments, "segment", "segments"),
        count(i.records, "commit", "commits")
    );
    if let Some(p) = &i.problem {
        println!("  problem          {p}");
    }
}

pub fn switchover(args: SwitchoverArgs, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    crate::jobs_cli::check_detach(admin, args.detach)?;
    let job = admin.switchover(
        &args.source,
        &SwitchoverRequest {
            to: args.to,
            to_server: args.to_server,
            to_token: args.to_token,
        },
    )?;
    crate::jobs_cli::follow(admin, job, args.detach, g.json)
}

pub fn promote(args: PromoteArgs, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    let r = admin.promote(
        &args.standby,
        &PromoteRequest {
            until: args.until,
            force: args.force,
            take_name: args.take_name,
        },
    )?;
    if g.json {
        print_json(&r);
        return Ok(());
    }
    print_promoted(&r);
    Ok(())
}

fn print_promoted(r: &PromoteResponse) {
    println!(
        "promoted `{}`{} at {} (ts {}) in {} ms: it is writable now",
        r.tenant,
        r.renamed_from
            .as_ref()
            .map(|n| format!(" (was `{n}`)"))
            .unwrap_or_default(),
        r.promoted_time,
        r.promoted_ts,
        r.millis
    );
    if r.continues_history {
        println!("  history          continues its source's (restore points continue)");
    } else {
        println!(
            "  history          its own from now on (it stopped before the end of the \
             source's archive)"
        );
    }
    if let Some(after) = r.may_lose_after {
        match (r.source_last_commit, r.lost_commits) {
            (Some(last), Some(n)) => println!(
                "  lost             {n} commit(s) of the source, ts {after} < ts ≤ {last}, \
                 were not archived"
            ),
            _ => println!(
                "  may be lost      any commit of the source after ts {after} (the end of its \
                 archive); its last commit is unknown here"
            ),
        }
    }
    match &r.archive {
        Some(a) => println!(
            "  archive          {} into {} (every {} ms)",
            a.status, a.repo, a.interval_ms
        ),
        None => println!(
            "  archive          not started: start it with `tenet archive start {}`",
            r.tenant
        ),
    }
    if let Some(j) = r.backup_job {
        println!("  full backup      job {j} (its own history needs one)");
    }
    if let Some(p) = &r.problem {
        println!("  problem          {p}");
    }
}
