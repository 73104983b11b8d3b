//! `tenet bench`: benchmarks that print figures (not timed tests).
//!
//! * `write`: 1 KiB rows, single-row and 100-row commits, 1/4/16 writers; commits/s and
//!   p50/p99 latency for Tenet and for raw RocksDB write batches with the same
//!   durability (fsync per commit) in the same run, and their ratio.
//! * `read`: time-travel point reads (as of an older ts, with a newer version present)
//!   vs raw RocksDB gets of the same number of keys.
//! * `snapshot`: snapshot create/list/drop latency at 1 row and at `--rows` rows.
//! * `backup`: see `bench_backup.rs`; `pitr`: see `bench_pitr.rs`; `standby`: see
//!   `bench_standby.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Subcommand;
use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::{json, Value};
use tenet_store::bench::RawDb;
use tenet_store::{AsOf, Column, ColumnType, Store, StoreOptions, TableSpec, TenantOptions, Ts};

use crate::output::CliError;
use crate::Global;

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Commit throughput and latency vs raw RocksDB.
    Write {
        /// Seconds per configuration and engine.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// Time-travel point reads vs raw RocksDB gets.
    Read {
        /// Data sets to measure, in rows of 1 KiB (two versions each): the default's
        /// first fits the block cache, its second does not.
        #[arg(long, value_delimiter = ',', default_values_t = [30_000u64, 100_000])]
        rows: Vec<u64>,
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// Snapshot create/list/drop at 1 row and at many rows.
    Snapshot {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
    },
    /// Commit throughput with the archiver / a backup running, archive RPO, incremental
    /// vs full backup time, log replay MiB/s.
    Pitr {
        /// Seconds of foreground load per configuration.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Size of the tenant for the full/incremental comparison, in MiB.
        #[arg(long, default_value_t = 256)]
        mib: u64,
    },
    /// Revert (1% of rows, a table with 100k changed rows), in-place restore and clone
    /// speed, and a neighbour tenant's commit p99 during each.
    Revert {
        /// Size of the tenant in MiB of 1 KiB rows.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
    },
    /// Standby lag under load, switchover write downtime (between two servers and
    /// within a store), standby apply MiB/s vs reading + decoding the log.
    Standby {
        /// Seconds of load for the lag measurement.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Commits per second on the source.
        #[arg(long, default_value_t = 600)]
        rate: u64,
        /// Switchovers of each kind (between servers, within a store).
        #[arg(long, default_value_t = 20)]
        switchovers: usize,
        /// MiB of rows for the apply throughput.
        #[arg(long, default_value_t = 256)]
        mib: u64,
    },
    /// The protection overview and idle scheduler with many tenants, and a prune of
    /// many archive segments.
    Protection {
        #[arg(long, default_value_t = 1000)]
        tenants: usize,
        /// Seconds the idle scheduler's CPU use is measured over.
        #[arg(long, default_value_t = 20)]
        idle_secs: u64,
        #[arg(long, default_value_t = 10_000)]
        segments: u64,
        /// MiB of the tenant a drill is timed on (0: skip).
        #[arg(long, default_value_t = 1024)]
        drill_mib: u64,
    },
    /// The cost of checking a request's token, against its floor (one blake3 hash).
    Auth {
        /// Tokens in the store.
        #[arg(long, default_value_t = 1000)]
        tokens: u64,
        /// Checks timed per round (4 rounds, ABBA).
        #[arg(long, default_value_t = 200_000)]
        checks: u64,
    },
    /// Full backup and restore MiB/s, repository size, peak RSS, zstd -1 ceiling.
    Backup {
        /// Size of the generated tenant in MiB of 1 KiB rows.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        #[arg(long, default_value_t = 8)]
        tables: usize,
        /// Measured rounds after the warm-up, plain and encrypted in ABBA BAAB order
        /// (1 to 8; fewer for scale runs: 1 measures plain only, 2 one of each; the cost
        /// of encryption is printed for 4 and 8, whose order is balanced).
        #[arg(long, default_value_t = 8)]
        rounds: usize,
    },
    /// Print the rows `bench backup --mib M --tables T` generates, one per line as
    /// `table<TAB>id<TAB>payload` (for scripts/bench-peers, which loads the same rows
    /// into PostgreSQL).
    Rows {
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        #[arg(long, default_value_t = 8)]
        tables: usize,
    },
}

const ROW_BYTES: usize = 1024;

/// A generator of 1000-character lowercase texts, a new one each call (xorshift): about
/// as compressible as natural-language text, unlike a few repeated payloads.
pub(crate) fn texts() -> impl FnMut() -> String {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    move || {
        (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect()
    }
}

pub(crate) fn payloads() -> Vec<String> {
    let mut rng = rand::rng();
    (0..16)
        .map(|_| {
            (0..ROW_BYTES - 24)
                .map(|_| char::from(rng.random_range(b'a'..=b'z')))
                .collect()
        })
        .collect()
}

fn bench_table() -> TableSpec {
    bench_table_named("bench")
}

/// `id int` (primary key), `payload string`.
pub(crate) fn bench_table_named(name: &str) -> TableSpec {
    TableSpec {
        name: name.into(),
        columns: vec![
            Column {
                name: "id".into(),
                ty: ColumnType::Int,
            },
            Column {
                name: "payload".into(),
                ty: ColumnType::String,
            },
        ],
        primary_key: vec!["id".into()],
    }
}

/// Fills `tenant`.`table` (created here, [`bench_table_named`]) with `rows` rows whose
/// payloads `text` makes ([`texts`]), 1000 per commit.
pub(crate) fn fill(
    store: &Store,
    tenant: &str,
    table: &str,
    rows: u64,
    text: &mut impl FnMut() -> String,
) -> Result<(), CliError> {
    store.with_txn(tenant, |txn| txn.create_table(&bench_table_named(table)))?;
    for chunk in 0..rows.div_ceil(1000) {
        store.with_txn(tenant, |txn| {
            for i in chunk * 1000..((chunk + 1) * 1000).min(rows) {
                txn.put(table, &json!({"id": i, "payload": text()}))?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Writes the rows [`fill`] would put in tables `t0`… (`per_table` each, one text
/// generator across them, as `bench backup` fills them) to stdout.
fn print_rows(per_table: u64, tables: usize) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut text = texts();
    let written = (0..tables)
        .flat_map(|t| (0..per_table).map(move |id| (t, id)))
        .try_for_each(|(t, id)| writeln!(out, "t{t}\t{id}\t{}", text()))
        .and_then(|()| out.flush());
    match written {
        // A reader that stops early (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::other(e)),
        _ => Ok(()),
    }
}

/// The tokio runtime the job benchmarks run jobs on (2 workers).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::other)
}

/// Runs a created job to its end; an error unless it succeeded.
pub(crate) fn run_job(
    rt: &tokio::runtime::Runtime,
    backups: &tenet_backup::Backups,
    job: tenet_jobs::JobRecord,
) -> Result<tenet_jobs::JobRecord, CliError> {
    let j = rt
        .block_on(backups.jobs().run(job.id))
        .map_err(CliError::other)?;
    if j.state != tenet_jobs::JobState::Succeeded {
        return Err(CliError::other(format!(
            "job {} failed: {:?}",
            j.id, j.error
        )));
    }
    Ok(j)
}

pub(crate) fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, CliError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(CliError::other)
}

fn open_store(dir: &std::path::Path) -> Result<Store, CliError> {
    let store = Store::open(dir, StoreOptions::default())?;
    store.create_tenant("bench", TenantOptions::default())?;
    store.with_txn("bench", |t| t.create_table(&bench_table()))?;
    Ok(store)
}

/// Result of one configuration on one engine.
struct Run {
    commits: u64,
    elapsed: Duration,
    hist: Histogram<u64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Runs `writers` threads calling `commit(thread, seq)` until `dur` has passed.
fn drive(
    writers: usize,
    dur: Duration,
    commit: impl Fn(usize, u64) -> Result<(), CliError> + Sync,
) -> Result<Run, CliError> {
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let hists = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (stop, commit) = (&stop, &commit);
                s.spawn(move || -> Result<Histogram<u64>, CliError> {
                    let mut h = Histogram::<u64>::new(3).expect("histogram");
                    let mut seq = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        commit(w, seq)?;
                        h.record(t.elapsed().as_micros() as u64).ok();
                        seq += 1;
                    }
                    Ok(h)
                })
            })
            .collect();
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect::<Vec<_>>()
    });
    let elapsed = start.elapsed();
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    for h in hists {
        hist.add(h?).ok();
    }
    Ok(Run {
        commits: hist.len(),
        elapsed,
        hist,
    })
}

fn row_id(writer: usize, seq: u64, i: usize, per: usize) -> i64 {
    ((writer as i64) << 40) | (seq as i64 * per as i64 + i as i64)
}

/// A raw key shaped like Tenet's: 16-byte prefix, 9-byte pk, 8-byte ts.
fn raw_key(id: i64) -> Vec<u8> {
    raw_version_key(id, 0)
}

/// A raw key for version `v` of row `id` (newer versions sort first, as in Tenet).
fn raw_version_key(id: i64, v: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, 0]);
    k.push(2);
    k.extend_from_slice(&((id as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(&(u64::MAX - v).to_be_bytes());
    k
}

fn write_bench(seconds: u64) -> Result<(), CliError> {
    let dur = Duration::from_secs(seconds);
    let payloads = payloads();
    println!("tenet bench write: 1 KiB rows, fsync per commit, {seconds} s per configuration");
    println!(
        "{:<8} {:>7} | {:>10} {:>9} {:>9} | {:>10} {:>9} {:>9} | {:>6}",
        "rows/txn",
        "writers",
        "tenet c/s",
        "p50 ms",
        "p99 ms",
        "raw c/s",
        "p50 ms",
        "p99 ms",
        "ratio"
    );
    for per in [1usize, 100] {
        for writers in [1usize, 4, 16] {
            let dir = temp_dir("tenet-bench-")?;
            let store = open_store(dir.path())?;
            let tenet = drive(writers, dur, |w, seq| {
                store.with_txn("bench", |t| {
                    for i in 0..per {
                        let id = row_id(w, seq, i, per);
                        t.put("bench", &json!({"id": id, "payload": &payloads[(id as usize) % payloads.len()]}))?;
                    }
                    Ok(())
                })?;
                Ok(())
            })?;
            drop(store);
            let raw_dir = temp_dir("tenet-bench-raw-")?;
            let raw = RawDb::open(raw_dir.path(), true)?;
            let raw_run = drive(writers, dur, |w, seq| {
                let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..per)
                    .map(|i| {
                        let id = row_id(w, seq, i, per);
                        let mut v = vec![1u8];
                        v.extend_from_slice(payloads[(id as usize) % payloads.len()].as_bytes());
                        (raw_key(id), v)
                    })
                    .collect();
                raw.write(&pairs)?;
                Ok(())
            })?;
            println!(
                "{:<8} {:>7} | {:>10.0} {:>9.2} {:>9.2} | {:>10.0} {:>9.2} {:>9.2} | {:>5.2}x",
                per,
                writers,
                tenet.rate(),
                tenet.pct(0.5),
                tenet.pct(0.99),
                raw_run.rate(),
                raw_run.pct(0.5),
                raw_run.pct(0.99),
                tenet.rate() / raw_run.rate()
            );
        }
    }
    Ok(())
}

/// The read benchmark's data sets: both engines hold `rows` rows of 1 KiB in two
/// versions each, written in the same order, as loaded (flushed files and the memtable,
/// a key's two versions mostly in different files) and then compacted (a key's versions
/// side by side in the last level). Each case reads random rows as of the older
/// version's ts and as latest, against raw gets of the exact version key the read
/// returns; Tenet and raw alternate in ABBA order, half the time each, and the line ends
/// with the data blocks each read touches (read from the file + found in the cache).
fn read_bench(rows: &[u64], seconds: u64) -> Result<(), CliError> {
    println!(
        "tenet bench read: rows of 1 KiB in two versions each, in both engines (the store's \
         RocksDB options, 128 MiB block cache); Tenet reads as of the older version or \
         latest, raw RocksDB gets (and seeks) the exact key of the version read; ABBA, \
         {seconds} s per engine and case"
    );
    println!(
        "{:>7} | {:<9} | {:<6} | {:>3} | {:>9} | {:>9} | {:>5} | {:>9} | {:<19}",
        "rows",
        "layout",
        "read",
        "thr",
        "tenet/s",
        "raw get/s",
        "ratio",
        "raw seek/s",
        "blocks tenet | get"
    );
    for &n in rows {
        read_bench_rows(n, seconds)?;
    }
    Ok(())
}

fn read_bench_rows(rows: u64, seconds: u64) -> Result<(), CliError> {
    let half = Duration::from_secs(seconds).max(Duration::from_millis(200)) / 2;
    let payloads = payloads();
    let payload = |id: i64, version: usize| &payloads[(id as usize + version) % payloads.len()];
    let dir = temp_dir("tenet-bench-")?;
    let store = open_store(dir.path())?;
    let raw_dir = temp_dir("tenet-bench-raw-")?;
    let raw = RawDb::open(raw_dir.path(), false)?;
    let load = |version: usize| -> Result<Ts, CliError> {
        let mut last = Ts::ZERO;
        for chunk in (0..rows as i64).collect::<Vec<_>>().chunks(1000) {
            let ((), info) = store.with_txn("bench", |t| {
                for &id in chunk {
                    t.put("bench", &json!({"id": id, "payload": payload(id, version)}))?;
                }
                Ok(())
            })?;
            last = info.commit_ts;
            // The baseline stores the same versions under keys of the same shape.
            let pairs: Vec<_> = chunk
                .iter()
                .map(|&id| {
                    let value = payload(id, version).as_bytes().to_vec();
                    (raw_version_key(id, version as u64), value)
                })
                .collect();
            raw.write(&pairs)?;
        }
        Ok(last)
    };
    let old = load(0)?;
    load(1)?;
    let random_id = || rand::rng().random_range(0..rows as i64);
    for layout in ["as loaded", "compacted"] {
        if layout == "compacted" {
            store.compact_data();
            raw.compact();
        }
        for (read, as_of, version) in [("as of", AsOf::Ts(old), 0), ("latest", AsOf::Latest, 1)] {
            let tenet_read = |check: bool| -> Result<(), CliError> {
                let id = random_id();
                let txn = store.read_at("bench", &as_of)?;
                let row = txn.get("bench", &Value::from(id))?;
                match row {
                    Some(row) if !check || row["payload"] == payload(id, version).as_str() => {
                        Ok(())
                    }
                    _ => Err(CliError::other(format!(
                        "row {id} missing or not version {version}"
                    ))),
                }
            };
            // A raw get (or seek, for the seek column) of the version's exact key.
            let raw_read = |seek: bool| -> Result<(), CliError> {
                let id = random_id();
                let key = raw_version_key(id, version as u64);
                match if seek {
                    raw.seek(&key)?
                } else {
                    raw.get(&key)?
                } {
                    Some(_) => Ok(()),
                    None => Err(CliError::other(format!("raw key {id} missing"))),
                }
            };
            let raw_get = || raw_read(false);
            let blocks_tenet = tenet_store::bench::blocks_per_call(5000, || tenet_read(true))?;
            let blocks_get = tenet_store::bench::blocks_per_call(5000, raw_get)?;
            for threads in [1usize, 2] {
                let a1 = drive(threads, half, |_, _| tenet_read(false))?;
                let b1 = drive(threads, half, |_, _| raw_get())?;
                let b2 = drive(threads, half, |_, _| raw_get())?;
                let a2 = drive(threads, half, |_, _| tenet_read(false))?;
                let seek = drive(threads, half, |_, _| raw_read(true))?;
                let rate = |x: &Run, y: &Run| {
                    (x.commits + y.commits) as f64 / (x.elapsed + y.elapsed).as_secs_f64()
                };
                let (tenet, got) = (rate(&a1, &a2), rate(&b1, &b2));
                println!(
                    "{:>7} | {:<9} | {:<6} | {:>3} | {:>9.0} | {:>9.0} | {:>4.2}x | {:>10.0} | \
                     {:.2}+{:.2} | {:.2}+{:.2}",
                    rows,
                    layout,
                    read,
                    threads,
                    tenet,
                    got,
                    tenet / got,
                    seek.rate(),
                    blocks_tenet.0,
                    blocks_tenet.1,
                    blocks_get.0,
                    blocks_get.1
                );
            }
        }
    }
    Ok(())
}

fn time_snapshot_ops(store: &Store, label: &str) -> Result<(), CliError> {
    let mut create = Histogram::<u64>::new(3).expect("histogram");
    let mut list = Histogram::<u64>::new(3).expect("histogram");
    let mut dropt = Histogram::<u64>::new(3).expect("histogram");
    for i in 0..20 {
        let name = format!("s{i}");
        let t = Instant::now();
        store.with_txn("bench", |txn| txn.create_snapshot(&name))?;
        create.record(t.elapsed().as_micros() as u64).ok();
        let t = Instant::now();
        let n = store.read_at("bench", &AsOf::Latest)?.snapshots()?.len();
        list.record(t.elapsed().as_micros() as u64).ok();
        assert!(n >= 1);
        let t = Instant::now();
        store.with_txn("bench", |txn| txn.drop_snapshot(&name))?;
        dropt.record(t.elapsed().as_micros() as u64).ok();
    }
    let ms = |h: &Histogram<u64>| h.value_at_quantile(0.5) as f64 / 1000.0;
    println!(
        "{label:<12} create p50 {:>7.3} ms | list p50 {:>7.3} ms | drop p50 {:>7.3} ms",
        ms(&create),
        ms(&list),
        ms(&dropt)
    );
    Ok(())
}

fn snapshot_bench(rows: u64) -> Result<(), CliError> {
    println!("tenet bench snapshot: median of 20 create/list/drop, fsync per commit");
    let dir = temp_dir("tenet-bench-")?;
    let store = open_store(dir.path())?;
    store.with_txn("bench", |t| {
        t.put("bench", &json!({"id": 0, "payload": "x"}))
    })?;
    time_snapshot_ops(&store, "1 row")?;
    let started = Instant::now();
    for chunk in (1..rows as i64).collect::<Vec<_>>().chunks(5000) {
        store.with_txn("bench", |t| {
            for &id in chunk {
                t.put(
                    "bench",
                    &json!({"id": id, "payload": "0123456789abcdef0123456789abcdef"}),
                )?;
            }
            Ok(())
        })?;
    }
    println!(
        "(loaded {rows} rows in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    time_snapshot_ops(&store, &format!("{rows} rows"))?;
    Ok(())
}

pub fn run(cmd: BenchCmd, _g: &Global) -> Result<(), CliError> {
    match cmd {
        BenchCmd::Write { seconds } => write_bench(seconds),
        BenchCmd::Read { rows, seconds } => {
            if rows.contains(&0) || seconds == 0 {
                return Err(CliError::invalid("--rows and --seconds must be at least 1"));
            }
            read_bench(&rows, seconds)
        }
        BenchCmd::Snapshot { rows } => snapshot_bench(rows),
        BenchCmd::Pitr { seconds, mib } => {
            if seconds == 0 || mib == 0 {
                return Err(CliError::invalid("--seconds and --mib must be at least 1"));
            }
            crate::bench_pitr::run(seconds, mib)
        }
        BenchCmd::Revert { mib } => {
            if mib == 0 {
                return Err(CliError::invalid("--mib must be at least 1"));
            }
            crate::bench_revert::run(mib)
        }
        BenchCmd::Standby {
            seconds,
            rate,
            switchovers,
            mib,
        } => {
            if seconds < 3 || rate == 0 || mib == 0 {
                return Err(CliError::invalid(
                    "--seconds must be at least 3, --rate and --mib at least 1",
                ));
            }
            crate::bench_standby::run(seconds, rate, switchovers, mib)
        }
        BenchCmd::Protection {
            tenants,
            idle_secs,
            segments,
            drill_mib,
        } => {
            if tenants == 0 || idle_secs == 0 || segments == 0 {
                return Err(CliError::invalid(
                    "--tenants, --idle-secs and --segments must be at least 1",
                ));
            }
            crate::bench_protection::run(tenants, idle_secs, segments, drill_mib)
        }
        BenchCmd::Auth { tokens, checks } => {
            if tokens == 0 || checks == 0 {
                return Err(CliError::invalid(
                    "--tokens and --checks must be at least 1",
                ));
            }
            crate::bench_auth::run(tokens, checks)
        }
        BenchCmd::Backup {
            mib,
            tables,
            rounds,
        } => {
            if mib == 0 || tables == 0 {
                return Err(CliError::invalid("--mib and --tables must be at least 1"));
            }
            if !(1..=8).contains(&rounds) {
                return Err(CliError::invalid(format!(
                    "--rounds {rounds} is out of range; use 1 to 8"
                )));
            }
            crate::bench_backup::run(mib, tables, rounds)
        }
        BenchCmd::Rows { mib, tables } => {
            if mib == 0 || tables == 0 {
                return Err(CliError::invalid("--mib and --tables must be at least 1"));
            }
            print_rows(mib * 1024 / tables as u64, tables)
        }
    }
}
