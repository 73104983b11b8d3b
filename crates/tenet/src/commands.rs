//! The admin and data commands, written once against [`Admin`] so they behave the same
//! embedded and through a server.

use std::io::BufRead;
use std::path::Path;

use clap::Subcommand;
use serde_json::Value;
use tenet_server::admin::Admin;
use tenet_server::api::*;

use crate::duration;
use crate::output::{cell, commit_line, count, print_json, print_table, secs, CliError};
use crate::{Command, Global};

#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Create a tenant.
    Create {
        name: String,
        /// How long old versions stay readable (time travel), e.g. 1h, 7d.
        #[arg(long, value_parser = duration::parse)]
        history_retention: Option<std::time::Duration>,
    },
    /// List tenants.
    List,
    /// Show one tenant.
    Show { name: String },
    /// Rename a tenant.
    Rename { name: String, new_name: String },
    /// Change a tenant's state or history retention.
    Set {
        name: String,
        /// `active` or `read_only`.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, value_parser = duration::parse)]
        history_retention: Option<std::time::Duration>,
    },
    /// Drop a tenant with all its data, log and snapshots.
    Drop {
        name: String,
        /// Also destroy its data keys (crypto-shredding): every backup and archived
        /// segment of it becomes unreadable, wherever it was copied.
        #[arg(long)]
        shred: bool,
    },
    /// A new tenant (new ids) equal to this one at a time: built from its local
    /// history, or restored from the repository when the time is older than that.
    Clone {
        tenant: String,
        /// RFC 3339 time, commit ts, relative time (-5m, -1h), @snapshot or latest.
        #[arg(long, allow_hyphen_values = true, default_value = "latest")]
        as_of: String,
        /// Name of the new tenant; must not exist.
        #[arg(long)]
        into: String,
        /// Repository for times older than the local history.
        #[arg(long, env = "TENET_REPO")]
        repo: Option<String>,
        /// Print the job id and return at once (needs a running server).
        #[arg(long)]
        detach: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TableCmd {
    /// Create a table.
    Create {
        tenant: String,
        table: String,
        /// `name:type`, type one of int, float, string, bool, bytes, json. Repeat.
        #[arg(long = "column", required = true)]
        columns: Vec<String>,
        /// Primary key column(s), comma-separated or repeated.
        #[arg(long, required = true, value_delimiter = ',')]
        primary_key: Vec<String>,
    },
    /// Add columns to a table.
    Alter {
        tenant: String,
        table: String,
        /// `name:type`. Repeat.
        #[arg(long = "add-column", required = true)]
        add_columns: Vec<String>,
    },
    /// List tables.
    List {
        tenant: String,
        /// RFC 3339 time, commit ts, relative time (-5m, -1h) or @snapshot.
        #[arg(long, allow_hyphen_values = true)]
        as_of: Option<String>,
    },
    /// Show a table's schema.
    Show {
        tenant: String,
        table: String,
        /// RFC 3339 time, commit ts, relative time (-5m, -1h) or @snapshot.
        #[arg(long, allow_hyphen_values = true)]
        as_of: Option<String>,
    },
    /// Drop a table (its rows stay readable as of earlier times until GC).
    Drop { tenant: String, table: String },
}

#[derive(Subcommand, Debug)]
pub enum SnapshotCmd {
    /// Name the tenant's current state.
    Create { tenant: String, name: String },
    /// List snapshots.
    List { tenant: String },
    /// Drop a snapshot (its state may then be garbage-collected).
    Drop { tenant: String, name: String },
    /// Put the tenant back as it was at the snapshot, in one commit (undo: revert
    /// --before-commit <its commit ts>).
    Rollback { tenant: String, name: String },
}

fn column_info(spec: &str) -> Result<ColumnInfo, CliError> {
    let (name, ty) = spec.split_once(':').ok_or_else(|| {
        CliError::invalid(format!(
            "column `{spec}` must be written name:type with type one of int, float, string, bool, bytes, json"
        ))
    })?;
    Ok(ColumnInfo {
        name: name.to_string(),
        ty: ty.to_string(),
    })
}

fn parse_json_arg(what: &str, s: &str) -> Result<Value, CliError> {
    serde_json::from_str(s)
        .map_err(|e| CliError::invalid(format!("{what} `{s}` is not valid JSON: {e}")))
}

/// Reads a JSON-lines transaction file (`-` for stdin).
fn read_ops(path: &Path) -> Result<Vec<TxnOp>, CliError> {
    let reader: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(path)
            .map_err(|e| CliError::invalid(format!("cannot open {}: {e}", path.display())))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut ops = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line =
            line.map_err(|e| CliError::invalid(format!("cannot read {}: {e}", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        let op: TxnOp = serde_json::from_str(&line).map_err(|e| {
            CliError::invalid(format!(
                "{} line {}: {e}; each line is {{\"op\":\"put\",\"table\":…,\"row\":{{…}}}} or {{\"op\":\"delete\",\"table\":…,\"key\":…}}",
                path.display(),
                i + 1
            ))
        })?;
        ops.push(op);
    }
    Ok(ops)
}

fn print_tenants(tenants: &[TenantInfo]) {
    let rows: Vec<Vec<String>> = tenants
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.name.clone(),
                t.state.clone(),
                secs(t.history_retention_secs),
                t.created_time.clone(),
            ]
        })
        .collect();
    print_table(&["ID", "NAME", "STATE", "RETENTION", "CREATED"], &rows);
}

fn print_table_info(t: &TableInfo) {
    println!(
        "table `{}` (id {}, schema version {}), primary key ({})",
        t.name,
        t.id,
        t.schema_version,
        t.primary_key.join(", ")
    );
    let rows: Vec<Vec<String>> = t
        .columns
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.ty.clone(),
                if t.primary_key.contains(&c.name) {
                    "yes".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    print_table(&["COLUMN", "TYPE", "KEY"], &rows);
}

/// What a write did: `wrote 2 rows`, `deleted 0 of 1 row (1 absent)`.
fn print_write(w: &WriteResponse, deletes_only: bool, json: bool) {
    if json {
        print_json(w);
        return;
    }
    let what = if deletes_only && w.absent > 0 {
        format!(
            "deleted {} of {} ({} absent)",
            w.writes - w.absent,
            count(w.writes as u64, "row", "rows"),
            w.absent
        )
    } else if deletes_only {
        format!("deleted {}", count(w.writes as u64, "row", "rows"))
    } else if w.absent > 0 {
        format!(
            "wrote {} ({} of absent keys, nothing to remove)",
            count(w.writes as u64, "row", "rows"),
            count(w.absent as u64, "delete", "deletes")
        )
    } else {
        format!("wrote {}", count(w.writes as u64, "row", "rows"))
    };
    println!("{what}, {}", commit_line(&w.commit));
}

fn print_commit(what: &str, c: &Commit, json: bool) {
    if json {
        print_json(c);
    } else {
        println!("{what}, {}", commit_line(c));
    }
}

/// Prints rows as a table with one column per field of the first row.
pub fn print_rows(rows: &[Value]) {
    let header: Vec<String> = rows
        .first()
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            header
                .iter()
                .map(|h| cell(r.get(h).unwrap_or(&Value::Null)))
                .collect()
        })
        .collect();
    if !header.is_empty() {
        print_table(
            &header.iter().map(String::as_str).collect::<Vec<_>>(),
            &cells,
        );
    }
}

pub fn run(cmd: Command, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    let json = g.json;
    match cmd {
        Command::Tenant(t) => match t {
            TenantCmd::Clone {
                tenant,
                as_of,
                into,
                repo,
                detach,
            } => crate::jobs_cli::clone(&tenant, as_of, into, repo, detach, admin, g)?,
            TenantCmd::Create {
                name,
                history_retention,
            } => {
                let r = admin.create_tenant(&CreateTenant {
                    name,
                    history_retention_secs: history_retention.map(|d| d.as_secs()),
                })?;
                if json {
                    print_json(&r);
                } else {
                    println!(
                        "created tenant `{}` (id {}), {}",
                        r.tenant.name,
                        r.tenant.id,
                        commit_line(&r.commit)
                    );
                }
            }
            TenantCmd::List => {
                let ts = admin.list_tenants()?;
                if json {
                    print_json(&ts)
                } else {
                    print_tenants(&ts)
                }
            }
            TenantCmd::Show { name } => {
                let t = admin.get_tenant(&name)?;
                if json {
                    print_json(&t)
                } else {
                    print_tenants(&[t])
                }
            }
            TenantCmd::Rename { name, new_name } => {
                let r = admin.alter_tenant(
                    &name,
                    &AlterTenant {
                        name: Some(new_name),
                        ..Default::default()
                    },
                )?;
                if json {
                    print_json(&r);
                } else {
                    println!(
                        "renamed tenant `{name}` to `{}`, {}",
                        r.tenant.name,
                        commit_line(&r.commit)
                    );
                }
            }
            TenantCmd::Set {
                name,
                state,
                history_retention,
            } => {
                let r = admin.alter_tenant(
                    &name,
                    &AlterTenant {
                        name: None,
                        state,
                        history_retention_secs: history_retention.map(|d| d.as_secs()),
                    },
                )?;
                if json {
                    print_json(&r);
                } else {
                    println!(
                        "tenant `{}` is {} with {} of history, {}",
                        r.tenant.name,
                        r.tenant.state,
                        secs(r.tenant.history_retention_secs),
                        commit_line(&r.commit)
                    );
                }
            }
            TenantCmd::Drop { name, shred: false } => {
                let c = admin.drop_tenant(&name)?;
                print_commit(&format!("dropped tenant `{name}`"), &c, json);
            }
            TenantCmd::Drop { name, shred: true } => {
                let r = admin.shred_tenant(&name)?;
                if json {
                    print_json(&r);
                } else {
                    println!(
                        "dropped tenant `{name}` and destroyed its data keys {} in {} at {}: its \
                         backups and archived log can no longer be read",
                        r.keys_destroyed.join(", "),
                        r.repos.join(", "),
                        r.destroyed_at
                    );
                    if !r.incomplete.is_empty() {
                        println!(
                            "warning: not finished in {}; run the shred again to finish it",
                            r.incomplete.join("; ")
                        );
                    }
                    if !r.still_readable.is_empty() {
                        println!(
                            "warning: backups {} hold files written before encryption and stay \
                             readable; delete them with `tenet backups delete`",
                            r.still_readable.join(", ")
                        );
                    }
                }
            }
        },
        Command::Table(t) => match t {
            TableCmd::Create {
                tenant,
                table,
                columns,
                primary_key,
            } => {
                let columns = columns
                    .iter()
                    .map(|c| column_info(c))
                    .collect::<Result<_, _>>()?;
                let r = admin.create_table(
                    &tenant,
                    &CreateTable {
                        name: table,
                        columns,
                        primary_key,
                    },
                )?;
                if json {
                    print_json(&r);
                } else {
                    println!(
                        "created table `{}` (id {}) in `{tenant}`, {}",
                        r.table.name,
                        r.table.id,
                        commit_line(&r.commit)
                    );
                }
            }
            TableCmd::Alter {
                tenant,
                table,
                add_columns,
            } => {
                let add_columns = add_columns
                    .iter()
                    .map(|c| column_info(c))
                    .collect::<Result<_, _>>()?;
                let r = admin.alter_table(&tenant, &table, &AlterTable { add_columns })?;
                if json {
                    print_json(&r);
                } else {
                    println!(
                        "altered table `{}` (schema version {}), {}",
                        r.table.name,
                        r.table.schema_version,
                        commit_line(&r.commit)
                    );
                }
            }
            TableCmd::List { tenant, as_of } => {
                let tables = admin.list_tables(&tenant, &AsOfQuery { as_of })?;
                if json {
                    print_json(&tables);
                } else {
                    let rows: Vec<Vec<String>> = tables
                        .iter()
                        .map(|t| {
                            vec![
                                t.name.clone(),
                                t.id.to_string(),
                                t.columns
                                    .iter()
                                    .map(|c| format!("{}:{}", c.name, c.ty))
                                    .collect::<Vec<_>>()
                                    .join(" "),
                                t.primary_key.join(","),
                                t.schema_version.to_string(),
                            ]
                        })
                        .collect();
                    print_table(&["NAME", "ID", "COLUMNS", "KEY", "VERSION"], &rows);
                }
            }
            TableCmd::Show {
                tenant,
                table,
                as_of,
            } => {
                let t = admin.get_table(&tenant, &table, &AsOfQuery { as_of })?;
                if json {
                    print_json(&t)
                } else {
                    print_table_info(&t)
                }
            }
            TableCmd::Drop { tenant, table } => {
                let c = admin.drop_table(&tenant, &table)?;
                print_commit(&format!("dropped table `{table}` of `{tenant}`"), &c, json);
            }
        },
        Command::Put {
            tenant,
            table,
            rows,
        } => {
            let rows = rows
                .iter()
                .map(|r| parse_json_arg("row", r))
                .collect::<Result<_, _>>()?;
            print_write(&admin.put_rows(&tenant, &table, rows)?, false, json);
        }
        Command::Delete {
            tenant,
            table,
            keys,
        } => {
            let keys = keys
                .iter()
                .map(|k| parse_json_arg("key", k))
                .collect::<Result<_, _>>()?;
            print_write(&admin.delete_rows(&tenant, &table, keys)?, true, json);
        }
        Command::Txn { tenant, file } => {
            let ops = read_ops(&file)?;
            print_write(&admin.txn(&tenant, TxnRequest { ops })?, false, json);
        }
        Command::Get {
            tenant,
            table,
            key,
            as_of,
        } => {
            let r = admin.get_row(
                &tenant,
                &table,
                &GetQuery {
                    key: key.clone(),
                    as_of,
                },
            )?;
            if json {
                print_json(&r);
            } else {
                match &r.row {
                    Some(row) => print_rows(std::slice::from_ref(row)),
                    None => println!(
                        "no row with key {key} in `{table}` as of {} (ts {})",
                        r.read_time, r.read_ts
                    ),
                }
            }
        }
        Command::Scan {
            tenant,
            table,
            as_of,
            from,
            to,
            limit,
        } => {
            let r = admin.scan(
                &tenant,
                &table,
                &ScanQuery {
                    from,
                    to,
                    limit: Some(limit),
                    as_of,
                },
            )?;
            if json {
                print_json(&r);
            } else {
                print_rows(&r.rows);
                println!(
                    "({} as of {}, ts {})",
                    count(r.rows.len() as u64, "row", "rows"),
                    r.read_time,
                    r.read_ts
                );
            }
        }
        Command::Snapshot(s) => match s {
            SnapshotCmd::Create { tenant, name } => {
                let r = admin.create_snapshot(&tenant, &CreateSnapshot { name })?;
                if json {
                    print_json(&r);
                } else {
                    println!(
                        "created snapshot `{}` of `{tenant}` at ts {} ({}), {}",
                        r.snapshot.name,
                        r.snapshot.ts,
                        r.snapshot.time,
                        commit_line(&r.commit)
                    );
                }
            }
            SnapshotCmd::List { tenant } => {
                let snaps = admin.list_snapshots(&tenant)?;
                if json {
                    print_json(&snaps);
                } else {
                    let rows: Vec<Vec<String>> = snaps
                        .iter()
                        .map(|s| vec![s.name.clone(), s.ts.to_string(), s.time.clone()])
                        .collect();
                    print_table(&["NAME", "TS", "TIME"], &rows);
                }
            }
            SnapshotCmd::Rollback { tenant, name } => {
                crate::revert_cli::print(&admin.rollback_snapshot(&tenant, &name)?, json);
            }
            SnapshotCmd::Drop { tenant, name } => {
                let c = admin.drop_snapshot(&tenant, &name)?;
                print_commit(
                    &format!("dropped snapshot `{name}` of `{tenant}`"),
                    &c,
                    json,
                );
            }
        },
        Command::Revert(args) => crate::revert_cli::revert(args, admin, json)?,
        Command::Serve { .. }
        | Command::Demo
        | Command::Bench(_)
        | Command::Debug(_)
        | Command::Backup(_)
        | Command::Backups(_)
        | Command::Restore { .. }
        | Command::Standby(_)
        | Command::Repo(_)
        | Command::Token(_)
        | Command::Key(_)
        | Command::Drill(_)
        | Command::Status { .. }
        | Command::Strategy(_)
        | Command::Promote(_)
        | Command::Switchover(_)
        | Command::RestorePoints { .. }
        | Command::Archive(_)
        | Command::Jobs(_) => {
            unreachable!("handled in main")
        }
    }
    Ok(())
}
