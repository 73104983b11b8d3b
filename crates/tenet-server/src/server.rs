//! `tenet serve`: one process owns a data directory and serves the API.
//!
//! While it runs, the server writes `server.json` (its URL and pid) into the data
//! directory so the CLI can find it; the file is removed on graceful shutdown (SIGTERM
//! or Ctrl-C). A stale file left by a crash is harmless: the CLI checks that the URL
//! answers before using it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tenet_store::{Store, StoreOptions};

use crate::http::router;
use crate::listener::ApiListener;
use crate::service::Service;

/// Name of the discovery file inside the data directory.
pub const SERVER_FILE: &str = "server.json";

/// Contents of `server.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerFile {
    pub url: String,
    pub pid: u32,
}

/// Reads the discovery file of a data directory, if any.
pub fn read_server_file(data_dir: &Path) -> Option<ServerFile> {
    let bytes = std::fs::read(data_dir.join(SERVER_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write_server_file(data_dir: &Path, file: &ServerFile) -> std::io::Result<()> {
    let tmp = data_dir.join(format!("{SERVER_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(file).expect("serializes"))?;
    std::fs::rename(tmp, data_dir.join(SERVER_FILE))
}

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    /// `host:port`; port 0 picks a free port (see `server.json` for the one chosen).
    pub listen: String,
    pub gc_interval: Duration,
    /// A job with no progress for this long is reported as stuck.
    pub stuck_after: Duration,
    /// Bytes per second all jobs share (None: unlimited).
    pub io_budget: Option<u64>,
    /// Pace jobs by the tenants' latency (`tenet_jobs::pacing`); on by default.
    pub adaptive_pacing: bool,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Listen on a non-loopback address without TLS (refused otherwise).
    pub insecure_listen: bool,
    /// Wraps the data keys backups and archived log are sealed with (None: plain).
    pub master_key: Option<std::sync::Arc<dyn tenet_backup::keys::MasterKey>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] tenet_store::Error),
    #[error(transparent)]
    Jobs(#[from] tenet_jobs::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Config(String),
}

/// Opens the store and serves until SIGTERM or Ctrl-C.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let tls = opts
        .tls
        .as_ref()
        .map(|(cert, key)| crate::listener::tls_config(cert, key).map(Arc::new))
        .transpose()
        .map_err(ServeError::Config)?;
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && tls.is_none() {
        if !opts.insecure_listen {
            return Err(ServeError::Config(format!(
                "refusing to listen on {addr} without TLS: tokens and rows would cross the \
                 network in clear; give --tls-cert and --tls-key, listen on 127.0.0.1, or \
                 give --insecure-listen to do it anyway"
            )));
        }
        tracing::warn!(%addr, "listening WITHOUT TLS on a non-loopback address (--insecure-listen): tokens and data cross the network in clear");
        eprintln!(
            "tenet: WARNING: listening on {addr} WITHOUT TLS (--insecure-listen): tokens and \
             data cross the network in clear"
        );
    }
    let created = !Store::exists(&opts.data_dir);
    let store = Store::open(&opts.data_dir, StoreOptions::default())?;
    if created {
        eprintln!("created a new store at {}", opts.data_dir.display());
    }
    if let Some(k) = &opts.master_key {
        println!(
            "tenet: backups and archived log are encrypted (master key {})",
            k.id()
        );
    }
    tenet_backup::keys::set_master(&store, opts.master_key.clone());
    let _gc = store.spawn_gc(opts.gc_interval);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let file = ServerFile {
        url: format!("{scheme}://{addr}"),
        pid: std::process::id(),
    };
    let svc = Service::with_runtime(store, tokio::runtime::Handle::current())
        .map_err(|e| ServeError::Config(e.to_string()))?;
    // The first start makes the first admin token (shown this once).
    match svc.tokens().first_admin(&opts.data_dir) {
        Ok(Some((path, token))) => {
            println!(
                "tenet: made the first admin token (shown once; also in {}, mode 0600):\n  {token}",
                path.display()
            );
            tracing::info!(file = %path.display(), "made the first admin token");
        }
        Ok(None) => {}
        Err(e) => return Err(ServeError::Config(e.to_string())),
    }
    let archiving = svc
        .archivers()
        .resume_all()
        .map_err(|e| ServeError::Io(std::io::Error::other(e.to_string())))?;
    if !archiving.is_empty() {
        let names: Vec<String> = archiving.iter().map(|id| svc.tenant_label(*id)).collect();
        println!("tenet: archiving the log of {}", names.join(", "));
    }
    // Standbys follow their sources from now on (and new ones once their restore ends).
    svc.standbys()
        .supervise(std::time::Duration::from_millis(250));
    let resumed = svc.jobs().resume_unfinished()?;
    if !resumed.is_empty() {
        tracing::info!(jobs = ?resumed, "resuming unfinished jobs");
        println!("tenet: resuming unfinished jobs {resumed:?}");
    }
    // Strategies run from now on (a run missed while down runs once).
    svc.scheduler().run(
        std::time::Duration::from_secs(1),
        &tokio::runtime::Handle::current(),
    );
    // The overview reads every tenant's repository in the background.
    svc.overview().set_stuck_after(opts.stuck_after);
    svc.jobs().set_io_budget(opts.io_budget);
    svc.jobs().set_adaptive_pacing(opts.adaptive_pacing);
    svc.overview().run(&tokio::runtime::Handle::current());
    let archivers = svc.archivers().clone();
    // Written last: a CLI that finds it finds a server ready, its admin token made.
    write_server_file(&opts.data_dir, &file)?;
    tracing::info!(url = %file.url, data_dir = %opts.data_dir.display(), "serving");
    println!("tenet: serving {} on {}", opts.data_dir.display(), file.url);
    println!("tenet: dashboard at {}/ (log in with a token)", file.url);
    let listener = match tls {
        Some(config) => ApiListener::tls(listener, config)?,
        None => ApiListener::plain(listener)?,
    };
    let result = axum::serve(listener, router(svc))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    // A clean stop ships the last commits (a standby elsewhere may take over next).
    archivers
        .flush_all(std::time::Duration::from_secs(10))
        .await;
    let _ = std::fs::remove_file(opts.data_dir.join(SERVER_FILE));
    tracing::info!("stopped");
    result.map_err(ServeError::Io)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
