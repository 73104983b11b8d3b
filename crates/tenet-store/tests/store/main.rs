//! Integration tests of `tenet-store` against a real RocksDB in a temporary directory.
//!
//! One test binary (`cargo test -p tenet-store --test store`) so RocksDB is linked once.
//!
//! * `model` — property test: random transactions, DDL, snapshots, pins, clock moves, GC
//!   and reopens, checked against an in-memory model of "state at ts".
//! * `txn` — conflicts, read-your-writes, lost updates, commit ts order.
//! * `commit_log` — `read_log` returns exactly the committed transactions.
//! * `bad_input` — invalid names and rows, unknown things, `read_only` tenants, the
//!   future, dropped tenants; nothing is written by a failed call.
//! * `reopen` — everything survives closing and reopening the directory.
//! * `snapshots` — snapshots and pins hold their state through GC.
//! * `revert` — reverts: diff scans, concurrent writers, the SST path, bad input (the
//!   model test reverts at random too).

mod common;

mod bad_input;
mod commit_log;
mod model;
mod reopen;
mod revert;
mod snapshots;
mod txn;
