//! `tenet-server`: the REST API over a [`tenet_store::Store`], the service layer the
//! CLI shares with it, and the HTTP client the CLI uses when a server is running.

pub mod admin;
pub mod api;
pub mod error;
pub mod http;
pub mod service;
