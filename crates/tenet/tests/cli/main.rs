//! End-to-end tests of the `tenet` binary: the REST API over real HTTP, the CLI in both
//! modes, and crash safety with real process kills. One test binary keeps link time low.

mod api_input;
mod bench;
mod bench_peers;
mod browser;
mod common;
mod crash;
mod dashboard;
mod ensure_deps;
mod honest;
mod http;
mod jobs;
mod modes;
mod openapi;
mod pitr;
mod protection;
mod prune;
mod put_back;
#[path = "../../../tenet-backup/tests/support/s3_server.rs"]
mod s3_server;
mod server_log;
mod shred;
mod standby;
mod status;
mod tls;
mod tokens;
