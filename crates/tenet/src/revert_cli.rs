//! `tenet revert` and `tenet snapshot rollback`: put a tenant back as it was, in place,
//! in one commit (see `tenet-store/src/revert.rs`).

use tenet_server::admin::Admin;
use tenet_server::api::{RevertRequest, RevertResponse};

use crate::output::{count, print_json, print_table, CliError};

/// Arguments of `tenet revert`: exactly one of --to and --before-commit.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to", "before_commit"])))]
pub struct RevertArgs {
    tenant: String,
    /// The state to go back to: an RFC 3339 time, a commit ts, a relative time (-5m,
    /// -1h30m) or @snapshot.
    #[arg(long, allow_hyphen_values = true)]
    to: Option<String>,
    /// Undo the commit with this ts and every later one (the state just before it).
    #[arg(long, allow_hyphen_values = true)]
    before_commit: Option<String>,
    /// Only this table (its name then or now): its definition and rows.
    #[arg(long)]
    table: Option<String>,
    /// With --table: only rows with a primary key at or above this one (JSON: 5,
    /// "abc", [1,"a"]).
    #[arg(long, requires = "table", allow_hyphen_values = true)]
    from_key: Option<String>,
    /// With --table: only rows with a primary key below this one.
    #[arg(long, requires = "table", allow_hyphen_values = true)]
    to_key: Option<String>,
}

/// Runs `tenet revert`.
pub fn revert(args: RevertArgs, admin: &dyn Admin, json: bool) -> Result<(), CliError> {
    let key = |what: &str, s: Option<String>| {
        s.map(|s| {
            serde_json::from_str(&s).map_err(|e| {
                CliError::invalid(format!(
                    "{what} `{s}` is not a primary key in JSON ({e}); write e.g. 5, \"abc\" or [1, \"a\"]"
                ))
            })
        })
        .transpose()
    };
    let req = RevertRequest {
        to: args.to,
        before_commit: args
            .before_commit
            .as_deref()
            .map(tenet_store::Ts::parse_commit)
            .transpose()?
            .map(|t| t.0),
        table: args.table,
        from_key: key("--from-key", args.from_key)?,
        to_key: key("--to-key", args.to_key)?,
    };
    print(&admin.revert(&args.tenant, &req)?, json);
    Ok(())
}

/// Prints what a revert or rollback did, and how to undo it.
pub fn print(r: &RevertResponse, json: bool) {
    if json {
        print_json(r);
        return;
    }
    let Some(commit_ts) = r.commit_ts else {
        println!(
            "`{}` already shows its state at {} (ts {}): nothing to change ({} compared)",
            r.tenant,
            r.target_time,
            r.target_ts,
            count(r.keys_examined, "key", "keys")
        );
        return;
    };
    let what = match r.scope.as_str() {
        "tenant" | "" => format!("`{}`", r.tenant),
        scope => format!("{scope} of `{}`", r.tenant),
    };
    println!(
        "put {what} back as it was at {} (ts {}) in one commit at ts {} ({})",
        r.target_time,
        r.target_ts,
        commit_ts,
        r.commit_time.as_deref().unwrap_or("")
    );
    let rows: Vec<Vec<String>> = r
        .tables
        .iter()
        .map(|t| {
            let columns = [("-", &t.columns_removed), ("+", &t.columns_back)]
                .iter()
                .filter(|(_, c)| !c.is_empty())
                .map(|(sign, c)| format!("{sign}{}", c.join(&format!(" {sign}"))))
                .collect::<Vec<_>>()
                .join(" ");
            let with = match (t.table_rows_back, t.table_rows_gone) {
                (0, 0) if !columns.is_empty() => format!(" ({columns})"),
                (0, 0) => String::new(),
                (back, 0) => format!(" ({})", count(back, "row back", "rows back")),
                (0, gone) => format!(" ({})", count(gone, "row gone", "rows gone")),
                (back, gone) => format!(" ({back} rows back, {gone} gone)"),
            };
            vec![
                t.table.clone(),
                t.catalog
                    .as_deref()
                    .map_or("-".into(), |c| format!("{}{with}", c.replace('_', " "))),
                t.rows_restored.to_string(),
                t.rows_reverted.to_string(),
                t.rows_removed.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "TABLE",
            "DEFINITION",
            "ROWS BACK",
            "ROWS CHANGED BACK",
            "ROWS REMOVED",
        ],
        &rows,
    );
    let how = match r.found_by.as_str() {
        "log" => "from the commit log".to_string(),
        other => format!(
            "by a {} (the commit log since then was garbage-collected)",
            other.replace('_', " ")
        ),
    };
    println!(
        "{} written since then, found {how}; the tenant's writes were held {:.1} ms, {:.1} ms in all",
        count(r.keys_examined, "key", "keys"),
        r.writes_held_ms,
        r.elapsed_ms
    );
    if let Some(undo) = &r.undo {
        println!("undo: {undo}");
    }
}
