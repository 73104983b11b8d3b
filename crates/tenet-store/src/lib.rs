//! `tenet-store`: the storage engine of Tenet.
//!
//! One RocksDB instance holds every tenant. Rows are MVCC versions keyed by
//! `tenant | table | primary key | !commit_ts`; each commit also writes one record to the
//! tenant's commit log in the same write batch. Each tenant's catalog (tables,
//! snapshots) is MVCC data of the tenant itself, so DDL is transactional, logged and
//! readable as of any time. This is the only crate that links RocksDB.
//!
//! Where things live: `keys.rs` (key encoding and layouts), `clock.rs` + `ts.rs` (time),
//! `schema.rs` + `row.rs` (tables and rows), `catalog.rs`, `tenant.rs` (registry and
//! tenant lifecycle), `store.rs` (open + commit pipeline), `read.rs` (MVCC reads),
//! `txn.rs` (transactions), `lifecycle.rs` (the tenant state machine), `revert.rs`
//! (putting a tenant back in place in one commit), `commit_log.rs`, `gc.rs` (GC, pins), `latency.rs` (the foreground's commit and read
//! latency, which paces background jobs), `bulk.rs` (the narrow
//! interface of backup and restore: scans at a ts, split points, SST ingestion, system
//! tables), `bench.rs` (raw
//! RocksDB baseline for benchmarks).

pub mod bench;
pub mod bulk;
pub mod catalog;
pub mod clock;
pub mod code;
mod codec;
pub mod commit_log;
pub mod error;
pub mod failpoint;
pub mod gc;
pub mod keys;
pub mod latency;
pub mod lifecycle;
mod read;
mod revert;
pub mod row;
mod runtime;
pub mod schema;
mod standby;
mod store;
pub mod tenant;
pub mod ts;
mod txn;

pub use bulk::{
    decode_system_row, encode_system_row, SstInfo, ARCHIVES_TABLE, AUDIT_TABLE, BACKUPS_TABLE,
    DROPPED_TABLE, JOBS_TABLE, JOB_TASKS_TABLE, KEYS_TABLE, REPOS_TABLE, SCHEDULES_TABLE,
    STANDBYS_TABLE, STRATEGIES_TABLE, TOKENS_TABLE,
};
pub use catalog::{Catalog, CatalogEntry, SnapshotDef};
pub use clock::{Clock, ManualClock, SystemClock};
pub use code::Code;
pub use commit_log::{LogRecord, Mutation};
pub use error::{Error, ErrorKind, Result};
pub use gc::{GcHandle, GcStats, PinRecord};
pub use latency::{Foreground, LatencyMeter, LatencyWindow};
pub use revert::{
    CatalogRevert, ChangeSource, RevertReport, RevertScope, RevertTo, TableRevert, REVERT_PIN_OWNER,
};
pub use schema::{Column, ColumnType, TableDef, TableSpec};
pub use store::{CommitInfo, Store, StoreMemory, StoreOptions};
pub use tenant::{
    DroppedTenant, HistoryRef, TenantOptions, TenantRecord, TenantRef, TenantState, TenantUpdate,
};
pub use ts::Ts;
pub use txn::{AsOf, ScanRange, Txn};
