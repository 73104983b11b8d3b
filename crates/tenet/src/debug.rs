//! Hidden commands used by the test suite.
//!
//! `tenet debug crash-writer` commits forever and prints `ack <commit_ts> <first_id>
//! <rows>` after each acknowledged commit, so a test can SIGKILL it at a random moment
//! and check that every acknowledged commit survived.

use std::io::Write;

use clap::Subcommand;
use serde_json::json;
use tenet_store::{Column, Store, StoreOptions, TableSpec, TenantOptions};

use crate::output::CliError;
use crate::Global;

#[derive(Subcommand, Debug)]
pub enum DebugCmd {
    /// Commit rows forever, printing each acknowledged commit.
    CrashWriter {
        #[arg(long, default_value = "crash")]
        tenant: String,
        /// First row id to write (use a new range per run).
        #[arg(long, default_value_t = 0)]
        start: i64,
        #[arg(long, default_value_t = 3)]
        rows_per_commit: i64,
    },
}

pub fn run(cmd: DebugCmd, g: &Global) -> Result<(), CliError> {
    match cmd {
        DebugCmd::CrashWriter {
            tenant,
            start,
            rows_per_commit,
        } => {
            let store = Store::open(&g.data_dir, StoreOptions::default())?;
            if store.tenant(&tenant).is_err() {
                store.create_tenant(&tenant, TenantOptions::default())?;
            }
            let spec = TableSpec {
                name: "t".into(),
                columns: vec![
                    Column {
                        name: "id".into(),
                        ty: tenet_store::ColumnType::Int,
                    },
                    Column {
                        name: "v".into(),
                        ty: tenet_store::ColumnType::String,
                    },
                ],
                primary_key: vec!["id".into()],
            };
            let exists = store
                .read_at(&tenant, &tenet_store::AsOf::Latest)?
                .table("t")
                .is_ok();
            if !exists {
                store.with_txn(&tenant, |txn| txn.create_table(&spec))?;
            }
            let mut out = std::io::stdout().lock();
            writeln!(out, "ready").map_err(CliError::other)?;
            out.flush().map_err(CliError::other)?;
            let mut id = start;
            loop {
                let ((), info) = store.with_txn(&tenant, |txn| {
                    for i in id..id + rows_per_commit {
                        txn.put("t", &json!({"id": i, "v": format!("row {i}")}))?;
                    }
                    Ok(())
                })?;
                writeln!(out, "ack {} {id} {rows_per_commit}", info.commit_ts.0)
                    .map_err(CliError::other)?;
                out.flush().map_err(CliError::other)?;
                id += rows_per_commit;
            }
        }
    }
}
