//! Choosing how the CLI reaches the store.
//!
//! 1. `--server URL` (or `TENET_SERVER`): that server.
//! 2. A `server.json` in the data directory whose URL answers `/healthz`: that server
//!    (it owns the directory; RocksDB allows one opener).
//! 3. Otherwise: open the data directory embedded, in this process. Only commands
//!    that can start from nothing (`tenant create`, `restore`) create a store there,
//!    and say so on stderr; every other command refuses a directory without one, so a
//!    mistyped `--data-dir` does not leave an empty store behind.
//!
//! A server gets the token of `--token` or `TENET_TOKEN`, else the data directory's
//! `admin.token` when readable (the first admin token, on the server's machine), and
//! is trusted by the system's CAs or `--ca-cert` alone. Embedded, no token is needed
//! (whoever can open the directory owns it), and the master key of `--master-key-file`
//! or `TENET_MASTER_KEY` is set on the store.

use std::path::Path;

use tenet_server::admin::Admin;
use tenet_server::auth::ADMIN_TOKEN_FILE;
use tenet_server::client::{Client, ClientOptions};
use tenet_server::server::read_server_file;
use tenet_server::service::Service;
use tenet_store::{Store, StoreOptions};

use crate::output::CliError;
use crate::Global;

/// Whether a command may create a new store in an empty data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The command needs an existing store.
    Existing,
    /// The command may start a new store.
    MayCreate,
}

pub fn connect(g: &Global, access: Access) -> Result<Box<dyn Admin>, CliError> {
    if let Some(url) = &g.server {
        return server(g, url);
    }
    // A server that is stopping removes its server.json a moment before its process
    // (and RocksDB's lock) is gone; one that is starting holds the lock a moment before
    // its server.json appears. Either way the directory is free, or served, shortly:
    // ask again for a few seconds before saying it is in use.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match connect_once(g, access) {
            Err(e)
                if e.code == "UNAVAILABLE"
                    && e.message.contains("in use")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            r => return r,
        }
    }
}

/// How long a CLI waits for a data directory another process holds.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn connect_once(g: &Global, access: Access) -> Result<Box<dyn Admin>, CliError> {
    let file = read_server_file(&g.data_dir);
    if let Some(file) = &file {
        if Client::probe_with(&file.url, g.ca_cert.as_deref()).is_some() {
            return server(g, &file.url);
        }
        // A TLS server that answers with a certificate this CLI does not trust (or a
        // CA file it cannot read): that error, not "the directory is in use".
        if file.url.starts_with("https://") {
            let c = Client::with_options(&file.url, &client_options(g, &file.url))?;
            if let Err(e) = c.health() {
                if e.message.contains("certificate") {
                    return Err(e.into());
                }
            }
        }
    }
    match open_embedded(g, access) {
        Ok(svc) => Ok(Box::new(svc)),
        // A server we could not talk to holds it: say which, and the usual reason.
        Err(mut e) if file.is_some() && e.code == "UNAVAILABLE" => {
            let url = file.map(|f| f.url).unwrap_or_default();
            e.message.push_str(&format!(
                "; the server at {url} (its server.json) holds it but did not answer"
            ));
            if url.starts_with("https://") {
                e.message.push_str(
                    " over TLS: if its certificate is signed by your own CA, give it with \
                     --ca-cert (or TENET_CA_CERT)",
                );
            }
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// A client of the server at `url`; says so when a master key was given, which only the
/// embedded CLI uses (the server has its own).
fn server(g: &Global, url: &str) -> Result<Box<dyn Admin>, CliError> {
    if g.master_key_file.is_some() || std::env::var_os(tenet_backup::keys::MASTER_KEY_ENV).is_some()
    {
        eprintln!(
            "note: the master key given here is not used: the server at {url} seals and opens \
             backups with its own (`tenet serve --master-key-file …`)"
        );
    }
    Ok(Box::new(Client::with_options(
        url,
        &client_options(g, url),
    )?))
}

/// The token for the server at `url` (`--token`, `TENET_TOKEN`, else — only for the
/// server that owns the data directory, by its `server.json` — that directory's first
/// admin token when this user can read it) and the CA to trust.
pub fn client_options(g: &Global, url: &str) -> ClientOptions {
    let owner = read_server_file(&g.data_dir).is_some_and(|f| same_url(&f.url, url));
    ClientOptions {
        token: g.token.clone().or_else(|| {
            owner
                .then(|| tenet_server::auth::read_token_file(&g.data_dir.join(ADMIN_TOKEN_FILE)))
                .flatten()
        }),
        ca_cert: g.ca_cert.clone(),
    }
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

pub fn open_embedded(g: &Global, access: Access) -> Result<Service, CliError> {
    let created = !Store::exists(&g.data_dir);
    if created && access == Access::Existing {
        return Err(no_store(&g.data_dir));
    }
    let master = g.master_key()?;
    let store = Store::open(&g.data_dir, StoreOptions::default())?;
    tenet_backup::keys::set_master(&store, master);
    if created {
        announce_new_store(&g.data_dir);
    }
    Service::new(store).map_err(CliError::other)
}

/// The error of a command that needs a store where there is none.
pub fn no_store(dir: &Path) -> CliError {
    CliError {
        code: tenet_store::Code::STORE_NOT_FOUND.as_str().into(),
        message: format!(
            "no Tenet store at {}; create one with `tenet tenant create <name>` or check \
             --data-dir (or TENET_DATA_DIR)",
            dir.display()
        ),
    }
}

/// Tells on stderr that a command made a new store.
pub fn announce_new_store(dir: &Path) {
    eprintln!("created a new store at {}", dir.display());
}
