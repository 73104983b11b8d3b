//! The `tenet` binary: `serve`, `demo`, `bench`, and admin/data commands that talk to a
//! running server over HTTP or open the data directory embedded (see `connect.rs`).

mod bench;
mod bench_auth;
mod bench_backup;
mod bench_pitr;
mod bench_protection;
mod bench_revert;
mod bench_standby;
mod commands;
mod connect;
mod debug;
mod demo;
mod duration;
mod jobs_cli;
mod key_cli;
mod output;
mod protection_cli;
mod revert_cli;
mod standby_cli;
mod token_cli;

use std::path::PathBuf;
use std::process::ExitCode;

/// The process allocates with jemalloc: Rust's allocations through this global
/// allocator, and RocksDB's (C and C++) through the `malloc` jemalloc exports in place
/// of glibc's (`unprefixed_malloc_on_supported_platforms`). It is configured
/// (`.cargo/config.toml`) to hand freed memory back within about a second. Under glibc's
/// malloc, the buffers of backup and restore tasks and RocksDB's SST builders stayed
/// resident in per-thread arenas after the jobs, and the process grew with every round
/// and with the data (`tenet bench backup`: 714 / 792 MiB at 8 GiB, now under 450).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "tenet",
    version,
    about = "Tenet: a multi-tenant transactional table store with tenant-level data protection"
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Data directory (one server or one embedded CLI owns it at a time).
    #[arg(
        long,
        global = true,
        default_value = "./tenet-data",
        env = "TENET_DATA_DIR"
    )]
    data_dir: PathBuf,
    /// Talk to this server instead of finding one through the data directory.
    #[arg(long, global = true, env = "TENET_SERVER")]
    server: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// API token for a server (default: the data directory's admin.token, if readable).
    #[arg(long, global = true, env = "TENET_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Trust only this CA certificate (PEM) for a server's TLS.
    #[arg(long, global = true, env = "TENET_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// The master key (a file of 64 hex digits) that wraps the tenants' data keys:
    /// backups and archived log are encrypted with it. Also TENET_MASTER_KEY (the hex).
    #[arg(long, global = true, env = "TENET_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
}

impl Global {
    /// The master key this process is given, if any.
    pub fn master_key(
        &self,
    ) -> Result<Option<std::sync::Arc<dyn tenet_backup::keys::MasterKey>>, output::CliError> {
        Ok(
            tenet_backup::keys::LocalMasterKey::load(self.master_key_file.as_deref())
                .map_err(|e| output::CliError::invalid(e.to_string()))?
                .map(|k| {
                    std::sync::Arc::new(k) as std::sync::Arc<dyn tenet_backup::keys::MasterKey>
                }),
        )
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: own the data directory and serve the REST API.
    Serve {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:7070")]
        listen: String,
        /// How often garbage collection runs.
        #[arg(long, default_value = "30s", value_parser = duration::parse)]
        gc_interval: std::time::Duration,
        /// A job with no progress for this long is a problem in `tenet status`.
        #[arg(long, default_value = "15m", value_parser = duration::parse)]
        stuck_after: std::time::Duration,
        /// I/O budget all jobs share, e.g. 200MiB (per second); each job's --throttle
        /// still caps it. Default: unlimited.
        #[arg(long, value_parser = jobs_cli::parse_size)]
        io_budget: Option<u64>,
        /// Do not pace jobs by the tenants' commit and read latency (the budget is then
        /// --io-budget alone). Jobs run at a lower CPU priority either way.
        #[arg(long)]
        no_adaptive_pacing: bool,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Listen on a non-loopback address without TLS (tokens and data in clear).
        #[arg(long)]
        insecure_listen: bool,
    },
    /// API tokens: create, list, revoke.
    #[command(subcommand)]
    Token(token_cli::TokenCmd),
    /// Data keys of encrypted backups: list, rotate; the audit log.
    #[command(subcommand)]
    Key(key_cli::KeyCmd),
    /// Tenants: create, list, show, rename, set, drop.
    #[command(subcommand)]
    Tenant(commands::TenantCmd),
    /// Tables: create, alter, list, show, drop.
    #[command(subcommand)]
    Table(commands::TableCmd),
    /// Insert or replace rows (one transaction).
    Put {
        tenant: String,
        table: String,
        /// Rows as JSON objects.
        #[arg(required = true)]
        rows: Vec<String>,
    },
    /// Delete rows by primary key (one transaction).
    Delete {
        tenant: String,
        table: String,
        /// Primary keys as JSON: 5, "abc", [1,"a"] or {"id":5}.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Run puts and deletes over several tables atomically, from a JSON-lines file.
    Txn {
        tenant: String,
        /// One op a line: {"op":"put","table":"t","row":{…}} or {"op":"delete","table":"t","key":…}; `-` reads stdin.
        #[arg(long)]
        file: PathBuf,
    },
    /// Read one row by primary key.
    Get {
        tenant: String,
        table: String,
        key: String,
        /// RFC 3339 time, commit ts, relative time (-5m, -1h) or @snapshot.
        #[arg(long, allow_hyphen_values = true)]
        as_of: Option<String>,
    },
    /// Read rows in primary-key order.
    Scan {
        tenant: String,
        table: String,
        /// RFC 3339 time, commit ts, relative time (-5m, -1h) or @snapshot.
        #[arg(long, allow_hyphen_values = true)]
        as_of: Option<String>,
        /// Inclusive lower bound (primary key JSON).
        #[arg(long)]
        from: Option<String>,
        /// Exclusive upper bound (primary key JSON).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Named snapshots: create, list, drop, rollback.
    #[command(subcommand)]
    Snapshot(commands::SnapshotCmd),
    /// Put a tenant (or a table, or a key range) back as it was at an earlier time, in
    /// place and in one commit; other tenants are untouched.
    Revert(revert_cli::RevertArgs),
    /// Backups: `backup full <tenant>`.
    #[command(subcommand)]
    Backup(jobs_cli::BackupCmd),
    /// Backups taken: list, show, delete, verify.
    #[command(subcommand)]
    Backups(jobs_cli::BackupsCmd),
    /// Restore a tenant from backups: into a new tenant (--into), or in place.
    ///
    /// Give exactly one of --backup (that backup's state), --to (a time or commit ts),
    /// --before-commit (the state just before that commit) or --latest; the last three
    /// replay the archived log after the newest suitable full backup.
    Restore {
        /// The tenant to restore (it may have been dropped since, unless --in-place).
        source: String,
        /// Name of the new tenant; must not exist.
        #[arg(
            long,
            required_unless_present = "in_place",
            conflicts_with = "in_place"
        )]
        into: Option<String>,
        /// Restore the newest state as a standby that keeps following the source's
        /// archive (readable, not writable) until `tenet promote`.
        #[arg(long, conflicts_with_all = ["in_place", "backup", "to", "before_commit", "latest"])]
        standby: bool,
        /// How often a standby looks for new log segments (default 250ms).
        #[arg(long, requires = "standby", value_parser = duration::parse)]
        poll: Option<std::time::Duration>,
        /// Put the tenant itself back (it keeps its id, log, backups and snapshots), in
        /// one commit; a snapshot `before-restore-<ts>` is taken first as the undo.
        #[arg(long)]
        in_place: bool,
        /// The backup to restore (see `tenet backups list`).
        #[arg(long)]
        backup: Option<String>,
        /// The state with every commit at or before it: an RFC 3339 time, a commit ts,
        /// a relative time (-5m, -1h30m, -2d) or @snapshot of the source tenant.
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
        /// Commit ts: the state just before that commit (`commit_ts` of `--json` output).
        #[arg(long, allow_hyphen_values = true)]
        before_commit: Option<String>,
        /// The newest restorable state.
        #[arg(long)]
        latest: bool,
        #[command(flatten)]
        opts: jobs_cli::JobOpts,
    },
    /// Every tenant's protection, worst first: strategy, last backups, restorable
    /// window, RPO, archive, next run, problems; repository usage.
    Status {
        /// Read every repository now (a server otherwise answers from its last read,
        /// at most 30 s old).
        #[arg(long)]
        refresh: bool,
    },
    /// Restore drills: `drill run <tenant>` proves a point of its window restores.
    #[command(subcommand)]
    Drill(protection_cli::DrillCmd),
    /// Named repositories held by the server: add, list, show, remove.
    #[command(subcommand)]
    Repo(protection_cli::RepoCmd),
    /// How tenants are protected: set, show, delete (per tenant or --default).
    #[command(subcommand)]
    Strategy(protection_cli::StrategyCmd),
    /// Standby tenants: status, pause, resume.
    #[command(subcommand)]
    Standby(standby_cli::StandbyCmd),
    /// Make a standby writable: it stops following its source.
    Promote(standby_cli::PromoteArgs),
    /// Move a tenant to its standby with no commit lost; it stays behind as a standby.
    Switchover(standby_cli::SwitchoverArgs),
    /// The times a tenant can be restored to.
    RestorePoints {
        tenant: String,
        /// Repository (default: where its archiver or newest backup writes).
        #[arg(long)]
        repo: Option<String>,
    },
    /// Continuous log archiving of a tenant: start, stop, status.
    #[command(subcommand)]
    Archive(jobs_cli::ArchiveCmd),
    /// Jobs: list, show, cancel, resume.
    #[command(subcommand)]
    Jobs(jobs_cli::JobsCmd),
    /// A short guided story on a fresh data directory.
    Demo,
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    #[command(subcommand, hide = true)]
    Debug(debug::DebugCmd),
}

/// A reader that stops early (`tenet backups prune --dry-run | head`) closes the pipe:
/// a command then ends quietly with status 141, as other command-line tools do, instead
/// of panicking in `println!`. (Not for `serve`, whose output is a log.)
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if !e.use_stderr() {
                e.exit(); // --help, --version
            }
            // clap echoes the offending argument: keep control characters from it off
            // the terminal (its own line breaks stay).
            eprint!(
                "{}",
                output::escape_controls_but(&e.render().to_string(), &['\n'])
            );
            return ExitCode::from(2);
        }
    };
    // A server logs what it does (jobs starting and ending) by default; a command only
    // its warnings. Colours only on a terminal, never into a redirected log.
    let default_filter = match cli.command {
        Command::Serve { .. } => "info",
        _ => {
            quiet_on_closed_pipe();
            // The certificate verifier logs what the command reports as its error.
            "warn,rustls_platform_verifier=off"
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let json = cli.global.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(&e, json);
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), output::CliError> {
    use connect::Access::{Existing, MayCreate};
    let g = cli.global;
    match cli.command {
        Command::Serve {
            listen,
            gc_interval,
            stuck_after,
            io_budget,
            no_adaptive_pacing,
            tls_cert,
            tls_key,
            insecure_listen,
        } => {
            if io_budget.is_some_and(|b| b < 1024) {
                return Err(output::CliError::invalid(
                    "--io-budget must be at least 1KiB (per second), e.g. 200MiB",
                ));
            }
            if stuck_after < std::time::Duration::from_secs(1) {
                return Err(output::CliError::invalid(
                    "--stuck-after must be at least 1s (e.g. 15m)",
                ));
            }
            let master_key = g.master_key()?;
            let rt = tokio::runtime::Runtime::new().map_err(output::CliError::other)?;
            rt.block_on(tenet_server::server::serve(
                tenet_server::server::ServeOptions {
                    master_key,
                    data_dir: g.data_dir,
                    listen,
                    gc_interval,
                    stuck_after,
                    io_budget,
                    adaptive_pacing: !no_adaptive_pacing,
                    tls: tls_cert.zip(tls_key),
                    insecure_listen,
                },
            ))
            .map_err(|e| match e {
                tenet_server::server::ServeError::Config(m) => output::CliError::invalid(m),
                e => output::CliError::other(e),
            })
        }
        Command::Token(cmd) => token_cli::run(cmd, connect::connect(&g, Existing)?.as_ref(), &g),
        Command::Key(cmd) => key_cli::run(cmd, connect::connect(&g, Existing)?.as_ref(), &g),
        Command::Demo => demo::run(&g),
        Command::Bench(cmd) => bench::run(cmd, &g),
        Command::Debug(cmd) => debug::run(cmd, &g),
        Command::Backup(cmd) => jobs_cli::backup(cmd, connect::connect(&g, Existing)?.as_ref(), &g),
        Command::Backups(cmd) => {
            jobs_cli::backups(cmd, connect::connect(&g, Existing)?.as_ref(), &g)
        }
        Command::Jobs(cmd) => jobs_cli::jobs(cmd, connect::connect(&g, Existing)?.as_ref(), &g),
        Command::Restore {
            source,
            into,
            in_place: _,
            standby,
            poll,
            backup,
            to,
            before_commit,
            latest,
            opts,
        } => {
            let what = jobs_cli::RestoreWhat {
                backup,
                to,
                before_commit,
                latest,
                standby: standby.then(|| poll.unwrap_or(tenet_backup::standby::DEFAULT_POLL)),
            };
            let admin = connect::connect(&g, MayCreate)?;
            jobs_cli::restore(source, into, what, opts, admin.as_ref(), &g)
        }
        Command::RestorePoints { tenant, repo } => {
            jobs_cli::restore_points(&tenant, repo, connect::connect(&g, Existing)?.as_ref(), &g)
        }
        Command::Standby(cmd) => {
            standby_cli::standby(cmd, connect::connect(&g, Existing)?.as_ref(), &g)
        }
        Command::Promote(args) => {
            standby_cli::promote(args, connect::connect(&g, Existing)?.as_ref(), &g)
        }
        Command::Switchover(args) => {
            standby_cli::switchover(args, connect::connect(&g, Existing)?.as_ref(), &g)
        }
        Command::Status { refresh } => {
            protection_cli::status(refresh, connect::connect(&g, Existing)?.as_ref(), &g)
        }
        Command::Drill(cmd) => {
            protection_cli::drill(cmd, connect::connect(&g, Existing)?.as_ref(), &g)
        }
        Command::Repo(cmd) => {
            protection_cli::repo(cmd, connect::connect(&g, Existing)?.as_ref(), &g)
        }
        Command::Strategy(cmd) => {
            protection_cli::strategy(cmd, connect::connect(&g, Existing)?.as_ref(), &g)
        }
        Command::Archive(cmd) => {
            jobs_cli::archive(cmd, connect::connect(&g, Existing)?.as_ref(), &g)
        }
        other => {
            let access = match &other {
                Command::Tenant(commands::TenantCmd::Create { .. }) => MayCreate,
                _ => Existing,
            };
            let admin = connect::connect(&g, access)?;
            commands::run(other, admin.as_ref(), &g)
        }
    }
}
