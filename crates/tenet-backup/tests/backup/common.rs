//! Shared helpers: a real store and repository in temporary directories, a job
//! manager on a tokio runtime, random tenants, and full dumps to compare.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tempfile::TempDir;
use tenet_backup::archiver::{ArchiveOptions, Archivers};
use tenet_backup::{Backups, RestoreRequest, Subject};
use tenet_jobs::{JobManager, JobRecord, JobState};
use tenet_store::{AsOf, Column, ColumnType, ScanRange, Store, StoreOptions, TableSpec, Ts};

pub struct Env {
    pub store: Store,
    pub backups: Backups,
    pub rt: tokio::runtime::Runtime,
    pub repo: String,
    pub repo_dir: TempDir,
    pub dir: TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env::with_options(StoreOptions {
            sync_writes: false,
            ..Default::default()
        })
    }

    pub fn with_options(opts: StoreOptions) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let repo_dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), opts).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let jobs = JobManager::new(store.clone(), 2);
        let backups = Backups::new(jobs);
        let repo = format!("file://{}", repo_dir.path().display());
        Env {
            store,
            backups,
            rt,
            repo,
            repo_dir,
            dir,
        }
    }

    pub fn jobs(&self) -> &JobManager {
        self.backups.jobs()
    }

    /// Runs a created job to its end.
    pub fn run(&self, job: JobRecord) -> JobRecord {
        self.rt.block_on(self.jobs().run(job.id)).unwrap()
    }

    /// The id of a tenant of the store.
    pub fn id(&self, tenant: &str) -> u64 {
        self.store.tenant(tenant).unwrap().id
    }

    /// A tenant as backups and restores see it (it may have been dropped).
    pub fn subject(&self, tenant: &str) -> Subject {
        self.rt
            .block_on(self.backups.resolve(tenant, None))
            .unwrap()
    }

    pub fn start_backup(&self, tenant: &str) -> tenet_backup::Result<JobRecord> {
        self.rt
            .block_on(self.backups.start_full(self.id(tenant), &self.repo, None))
    }

    /// A full backup that must succeed; returns (backup id, F).
    pub fn backup(&self, tenant: &str) -> (String, Ts) {
        let job = self.run(self.start_backup(tenant).unwrap());
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
        let r = job.result.unwrap();
        (
            r["backup_id"].as_str().unwrap().to_string(),
            Ts(r["backup_ts"].as_u64().unwrap()),
        )
    }

    pub fn start_restore(
        &self,
        source: &str,
        id: &str,
        target: &str,
    ) -> tenet_backup::Result<JobRecord> {
        let source = self.rt.block_on(self.backups.resolve(source, None))?;
        self.rt
            .block_on(self.backups.start_restore(&RestoreRequest {
                source: Some(source),
                backup_id: id.into(),
                target: target.into(),
                repo: None,
                throttle_bytes_per_sec: None,
            }))
    }

    pub fn restore(&self, source: &str, id: &str, target: &str) -> JobRecord {
        self.run(self.start_restore(source, id, target).unwrap())
    }

    /// Starts archiving `tenant` into the repository, cutting a segment every 20 ms.
    pub fn archive(&self, tenant: &str) -> Archivers {
        let archivers = Archivers::new(self.store.clone(), self.rt.handle().clone());
        let opts = ArchiveOptions {
            interval_ms: 20,
            ..Default::default()
        };
        self.rt
            .block_on(archivers.start(self.id(tenant), &self.repo, opts))
            .unwrap();
        archivers
    }

    /// Waits (20 s at most) until `archivers` shipped `tenant`'s log up to `at`.
    pub fn wait_archived(&self, archivers: &Archivers, tenant: &str, at: Ts) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while archivers.state(self.id(tenant)).unwrap().checkpoint < at {
            assert!(
                std::time::Instant::now() < deadline,
                "archiver did not catch up: {:?}",
                archivers.state(self.id(tenant))
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Restores `source` (its history in the repository) to `target` into a new
    /// tenant `into` and asserts it equals `source`'s time-travel read at the restored
    /// ts; returns that ts.
    pub fn assert_restores_as_source(
        &self,
        source: &str,
        target: &tenet_backup::planner::Target,
        into: &str,
    ) -> Ts {
        let job = self.run(
            self.rt
                .block_on(self.backups.start_restore_to(
                    &self.subject(source),
                    target,
                    into,
                    None,
                    None,
                ))
                .unwrap(),
        );
        assert_eq!(
            job.state,
            JobState::Succeeded,
            "{target:?}: {:?}",
            job.error
        );
        let t = Ts(job.result.unwrap()["restored_ts"].as_u64().unwrap());
        assert_eq!(
            dump(&self.store, into, &AsOf::Latest),
            dump(&self.store, source, &AsOf::Ts(t)),
            "{target:?}"
        );
        t
    }

    pub fn verify(&self, id: &str) -> JobRecord {
        let job = self
            .rt
            .block_on(self.backups.start_verify(id, None, None))
            .unwrap();
        self.run(job)
    }

    /// Keys of every object in the repository.
    pub fn objects(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in walk(self.repo_dir.path()) {
            out.push(
                e.strip_prefix(self.repo_dir.path())
                    .unwrap()
                    .display()
                    .to_string(),
            );
        }
        out.sort();
        out
    }

    /// Waits until `f` holds for the job's live record.
    pub fn wait_for(&self, id: u64, f: impl Fn(&JobRecord) -> bool) -> JobRecord {
        for _ in 0..600 {
            let j = self.jobs().get(id).unwrap();
            if f(&j) {
                return j;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("job {id} never reached the expected state");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn col(name: &str, ty: ColumnType) -> Column {
    Column {
        name: name.into(),
        ty,
    }
}

/// A table with every column type; the key is (`k` int, `s` string).
pub fn all_types(name: &str) -> TableSpec {
    TableSpec {
        name: name.into(),
        columns: vec![
            col("k", ColumnType::Int),
            col("s", ColumnType::String),
            col("f", ColumnType::Float),
            col("b", ColumnType::Bool),
            col("y", ColumnType::Bytes),
            col("j", ColumnType::Json),
            col("pad", ColumnType::String),
        ],
        primary_key: vec!["k".into(), "s".into()],
    }
}

pub fn random_row(rng: &mut StdRng, k: i64, pad: usize) -> Value {
    let bytes: Vec<u8> = (0..rng.random_range(0..12)).map(|_| rng.random()).collect();
    let b64 = base64_encode(&bytes);
    json!({
        "k": k,
        "s": format!("key-{}", k % 7),
        "f": rng.random_range(-1e6..1e6f64).round() / 8.0,
        "b": rng.random::<bool>(),
        "y": b64,
        "j": {"n": rng.random_range(0..100), "tags": ["a", "b"]},
        "pad": "x".repeat(pad),
    })
}

fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Fills a tenant with random tables and rows: several tables of every column type,
/// updates and deletes, an added column, and a dropped table — all before the backup.
pub fn populate(store: &Store, tenant: &str, seed: u64, rows: i64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let tables = ["alpha", "beta", "gamma", "doomed"];
    for t in tables {
        let mut txn = store.begin(tenant).unwrap();
        txn.create_table(&all_types(t)).unwrap();
        txn.commit().unwrap();
    }
    for batch in 0..4 {
        let mut txn = store.begin(tenant).unwrap();
        for t in tables {
            for _ in 0..rows / 4 {
                let k = rng.random_range(0..rows);
                let pad = rng.random_range(0..200);
                let row = random_row(&mut rng, k, pad);
                txn.put(t, &row).unwrap();
            }
        }
        txn.commit().unwrap();
        if batch == 1 {
            let mut txn = store.begin(tenant).unwrap();
            txn.add_column("beta", col("extra", ColumnType::String))
                .unwrap();
            txn.commit().unwrap();
        }
    }
    let mut txn = store.begin(tenant).unwrap();
    for t in ["alpha", "gamma"] {
        for _ in 0..rows / 5 {
            let k = rng.random_range(0..rows);
            txn.delete(t, &json!([k, format!("key-{}", k % 7)]))
                .unwrap();
        }
    }
    txn.put(
        "beta",
        &json!({"k": -1, "s": "", "f": 0.5, "b": true, "y": "", "j": null, "pad": "", "extra": "new"}),
    )
    .unwrap();
    txn.commit().unwrap();
    let mut txn = store.begin(tenant).unwrap();
    txn.drop_table("doomed").unwrap();
    txn.commit().unwrap();
}

/// Every table and row of a tenant as of `as_of`, by table name.
pub fn dump(store: &Store, tenant: &str, as_of: &AsOf) -> BTreeMap<String, Vec<Value>> {
    let txn = store.read_at(tenant, as_of).unwrap();
    let mut out = BTreeMap::new();
    for t in txn.tables().unwrap() {
        let rows = txn.scan(&t.name, &ScanRange::default()).unwrap();
        let cols: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        let mut all = vec![json!(cols)];
        all.extend(rows);
        out.insert(t.name.clone(), all);
    }
    out
}

/// Table ids of a tenant now, by name.
pub fn table_ids(store: &Store, tenant: &str) -> BTreeMap<String, u64> {
    let txn = store.read_at(tenant, &AsOf::Latest).unwrap();
    txn.tables()
        .unwrap()
        .iter()
        .map(|t| (t.name.clone(), t.id))
        .collect()
}

/// A workload with DDL after a backup, one commit per step: 1 to `max_puts - 1` random
/// rows into `alpha` (and into `late` once it exists); at the given steps `late` is
/// created, `gamma.later` added, `beta` dropped and snapshot `snap` taken; with
/// `deletes`, every third step also deletes a key of `alpha`. Returns the commit ts.
pub struct DdlWorkload {
    pub seed: u64,
    pub steps: usize,
    pub keys: i64,
    pub max_puts: usize,
    pub create_late: usize,
    pub add_column: usize,
    pub drop_beta: usize,
    pub snapshot: Option<usize>,
    pub deletes: bool,
}

impl DdlWorkload {
    pub fn run(&self, store: &Store, tenant: &str) -> Vec<Ts> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut commits = Vec::new();
        for i in 0..self.steps {
            let mut txn = store.begin(tenant).unwrap();
            if i == self.create_late {
                txn.create_table(&all_types("late")).unwrap();
            } else if i == self.add_column {
                txn.add_column("gamma", col("later", ColumnType::Int))
                    .unwrap();
            } else if i == self.drop_beta {
                txn.drop_table("beta").unwrap();
            } else if Some(i) == self.snapshot {
                txn.create_snapshot("snap").unwrap();
            }
            for _ in 0..rng.random_range(1..self.max_puts) {
                let k = rng.random_range(0..self.keys);
                let row = random_row(&mut rng, k, 10);
                txn.put("alpha", &row).unwrap();
                if i > self.create_late {
                    txn.put("late", &row).unwrap();
                }
            }
            if self.deletes && i % 3 == 0 {
                let k = rng.random_range(0..self.keys);
                txn.delete("alpha", &json!([k, format!("key-{}", k % 7)]))
                    .unwrap();
            }
            commits.push(txn.commit().unwrap().commit_ts);
        }
        commits
    }
}
