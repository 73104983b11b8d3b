//! `tenet token …`: API tokens for a server (admin only).

use std::time::Duration;

use clap::Subcommand;

use tenet_server::admin::Admin;
use tenet_server::api::{CreateToken, TokenInfo};

use crate::duration;
use crate::output::{print_json, print_table, CliError};
use crate::Global;

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Make a token; its secret is printed this once.
    Create {
        /// read, write, operator or admin.
        #[arg(long)]
        role: String,
        /// The one tenant it may see (default: every tenant; not for admin).
        #[arg(long)]
        tenant: Option<String>,
        /// It stops working after this long, e.g. 30d, 12h (default: never).
        #[arg(long, value_parser = duration::parse)]
        expires: Option<Duration>,
        /// What it is for.
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token at once.
    Revoke { id: u64 },
}

pub fn run(cmd: TokenCmd, admin: &dyn Admin, g: &Global) -> Result<(), CliError> {
    match cmd {
        TokenCmd::Create {
            role,
            tenant,
            expires,
            name,
        } => {
            if expires.is_some_and(|d| d.as_secs() == 0) {
                return Err(CliError::invalid(
                    "--expires must be at least 1s (e.g. 30d, 12h); leave it out for a token \
                     that does not expire",
                ));
            }
            let made = admin.create_token(&CreateToken {
                role,
                tenant,
                expires_in_secs: expires.map(|d| d.as_secs()),
                name,
            })?;
            if g.json {
                print_json(&made);
            } else {
                println!("{}", made.token);
                eprintln!(
                    "token {} ({}{}) made; keep it secret: it is not shown again",
                    made.info.id,
                    made.info.role,
                    made.info
                        .tenant
                        .as_deref()
                        .map(|t| format!(", tenant {t}"))
                        .unwrap_or_default()
                );
            }
        }
        TokenCmd::List => {
            let tokens = admin.list_tokens()?;
            if g.json {
                print_json(&tokens);
            } else {
                print_table(
                    &[
                        "ID", "NAME", "ROLE", "TENANT", "STATE", "CREATED", "EXPIRES",
                    ],
                    &tokens.iter().map(row).collect::<Vec<_>>(),
                );
            }
        }
        TokenCmd::Revoke { id } => {
            let t = admin.revoke_token(id)?;
            if g.json {
                print_json(&t);
            } else {
                println!(
                    "revoked token {} at {}",
                    t.id,
                    t.revoked_at.as_deref().unwrap_or("?")
                );
            }
        }
    }
    Ok(())
}

fn row(t: &TokenInfo) -> Vec<String> {
    vec![
        t.id.to_string(),
        t.name.clone(),
        t.role.clone(),
        t.tenant.clone().unwrap_or_else(|| "(all)".into()),
        t.state.clone(),
        t.created_at.clone(),
        t.expires_at.clone().unwrap_or_else(|| "never".into()),
    ]
}
