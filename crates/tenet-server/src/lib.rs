//! `tenet-server`: the REST API over a [`tenet_store::Store`] (`http.rs`), the service
//! layer it shares with the embedded CLI (`service.rs`), the [`admin::Admin`] trait both
//! CLI modes program against, the HTTP client (`client.rs`), the one place errors become
//! HTTP statuses and codes (`error.rs`), the `serve` loop (`server.rs`), and the
//! dashboard's embedded files (`dashboard.rs`, `ui/`).

pub mod admin;
pub mod api;
pub mod auth;
pub mod client;
pub mod dashboard;
pub mod error;
pub mod http;
pub mod keys;
pub mod listener;
pub mod metrics;
pub mod protection;
pub mod server;
pub mod service;
pub mod switchover;
