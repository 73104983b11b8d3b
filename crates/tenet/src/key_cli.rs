//! `tenet key …`: a tenant's data keys (list, rotate) and the audit log.

use clap::Subcommand;

use tenet_server::admin::Admin;
use tenet_server::api::{RepoQuery, RotateKey, TenantKeys};

use crate::output::{print_json, print_table, CliError};
use crate::Global;

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// List a tenant's data keys.
    List {
        tenant: String,
        /// Default: the tenant's repository.
        #[arg(long, env = "TENET_REPO")]
        repo: Option<String>,
    },
    /// Make a new data key the one new backups and log are sealed with.
    Rotate {
        tenant: String,
        #[arg(long, env = "TENET_REPO")]
        repo: Option<String>,
    },
    /// The audit log: shreds, key rotations, tokens made and revoked.
    Audit,
}

pub fn run(cmd: KeyCmd, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    let repo = |r: Option<String>| crate::jobs_cli::repo_arg(&r);
    match cmd {
        KeyCmd::List { tenant, repo: r } => {
            let k = admin.list_keys(&tenant, &RepoQuery { repo: repo(r)? })?;
            show(&k, g.json);
        }
        KeyCmd::Rotate { tenant, repo: r } => {
            let k = admin.rotate_key(&tenant, &RotateKey { repo: repo(r)? })?;
            if !g.json {
                let current = k.keys.iter().find(|k| k.current);
                println!(
                    "new backups and log of `{}` are sealed with {} from now on",
                    k.tenant,
                    current.map_or("?", |k| k.key_id.as_str())
                );
            }
            show(&k, g.json);
        }
        KeyCmd::Audit => {
            let log = admin.audit_log()?;
            if g.json {
                print_json(&log);
            } else {
                print_table(
                    &["AT", "BY", "ACTION", "TENANT", "DETAIL"],
                    &log.iter()
                        .map(|r| {
                            vec![
                                r.at.clone(),
                                r.by.clone(),
                                r.action.clone(),
                                r.tenant.clone().unwrap_or_default(),
                                r.detail.to_string(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                );
            }
        }
    }
    Ok(())
}

fn show(k: &TenantKeys, json: bool) {
    if json {
        print_json(k);
        return;
    }
    println!(
        "tenant `{}` (history #{}) in {}; encryption {}",
        k.tenant,
        k.history_id,
        k.repo,
        match &k.master_key_id {
            Some(id) => format!("on (master key {id})"),
            None => "off (no master key)".into(),
        }
    );
    print_table(
        &["KEY", "CREATED", "STATE"],
        &k.keys
            .iter()
            .map(|d| {
                vec![
                    d.key_id.clone(),
                    d.created_at.clone().unwrap_or_default(),
                    match (&d.destroyed_at, d.current) {
                        (Some(at), _) => format!("destroyed {at}"),
                        (None, true) => "current".into(),
                        (None, false) => "reads older objects".into(),
                    },
                ]
            })
            .collect::<Vec<_>>(),
    );
}
