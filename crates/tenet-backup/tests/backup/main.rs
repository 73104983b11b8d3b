//! Integration tests of backup, restore and verify against a real RocksDB store, a
//! local repository and a real S3-protocol server (s3s-fs, in process).

mod archive;
mod bad_input;
mod bank;
mod cancel;
mod common;
mod corruption;
mod drill;
mod encryption;
mod fixtures;
mod in_place;
mod pacing;
mod pitr;
mod prune;
mod roundtrip;
mod s3;
#[path = "../support/s3_server.rs"]
mod s3_server;
mod scheduler;
mod standby;
