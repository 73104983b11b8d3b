//! Choosing how the CLI reaches the store.
//!
//! 1. `--server URL` (or `TENET_SERVER`): that server.
//! 2. A `server.json` in the data directory whose URL answers `/healthz`: that server
//!    (it owns the directory; RocksDB allows one opener).
//! 3. Otherwise: open the data directory embedded, in this process.

use tenet_server::admin::Admin;
use tenet_server::client::Client;
use tenet_server::server::read_server_file;
use tenet_server::service::Service;
use tenet_store::{Store, StoreOptions};

use crate::output::CliError;
use crate::Global;

pub fn connect(g: &Global) -> Result<Box<dyn Admin>, CliError> {
    if let Some(url) = &g.server {
        return Ok(Box::new(Client::new(url)?));
    }
    if let Some(file) = read_server_file(&g.data_dir) {
        if Client::probe(&file.url).is_some() {
            return Ok(Box::new(Client::new(&file.url)?));
        }
    }
    Ok(Box::new(open_embedded(g)?))
}

pub fn open_embedded(g: &Global) -> Result<Service, CliError> {
    let store = Store::open(&g.data_dir, StoreOptions::default())?;
    Service::new(store).map_err(CliError::other)
}
