//! Property test: random transactions, DDL, snapshots, pins, clock moves, GC and reopens
//! over a few tenants, checked against an in-memory model of each tenant's state at
//! every commit ts.
//!
//! Rules checked on every read at a ts (exact commit ts, the ts around them, snapshot
//! and pin ts):
//! * a ts after the current time (the clock, or the newest commit if the clock is
//!   behind it) is refused (`InvalidArgument`): reads never push the clock ahead;
//! * a ts at or after the tenant's safe point, a pinned ts and a snapshot's ts show
//!   exactly the model's state (tables, columns in order, rows, snapshots);
//! * any other ts is refused with `TooOld`;
//! * the safe point never passes `now - history_retention` as of the last GC, so every
//!   ts inside the retention window stays readable.
//!
//! Reverts (whole tenant, one table, a key range) to picked times, and undos of them
//! (`--before-commit` of the revert), are ordinary commits in the model: the new state
//! is the model's state at the target for the scope and the state before elsewhere
//! (snapshots are never reverted). Every later read at every ts (before, at and after
//! each revert, in every tenant) is compared, as above.

use std::collections::BTreeMap;
use std::sync::Mutex;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;
use serde_json::{json, Map, Value};
use tenet_store::{
    AsOf, ChangeSource, Column, ColumnType, Error, ErrorKind, PinRecord, RevertScope, RevertTo,
    ScanRange, SnapshotDef, TenantOptions, Ts, Txn,
};

use crate::common::*;

const TENANTS: [&str; 3] = ["ta", "tb", "tc"];
const TABLES: [&str; 3] = ["t0", "t1", "t2"];
const SNAPSHOTS: [&str; 2] = ["s0", "s1"];
/// Keys are drawn from `0..KEYS`.
const KEYS: i64 = 5;

#[derive(Clone, Debug)]
enum Step {
    Put {
        table: usize,
        key: i64,
        s: Option<String>,
        n: Option<i64>,
        extra: Option<i64>,
    },
    Delete {
        table: usize,
        key: i64,
    },
    AddColumn {
        table: usize,
    },
    DropTable {
        table: usize,
    },
    /// Drop (if it exists) and create again with the same name, in one transaction.
    Recreate {
        table: usize,
    },
    CreateTable {
        table: usize,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Txn {
        tenant: usize,
        steps: Vec<Step>,
        abort: bool,
    },
    Snapshot {
        tenant: usize,
        snap: usize,
    },
    DropSnapshot {
        tenant: usize,
        snap: usize,
    },
    Pin {
        tenant: usize,
        at: Index,
        offset: i8,
    },
    Unpin {
        tenant: usize,
        which: Index,
    },
    Advance {
        millis: u64,
    },
    ClockBack {
        millis: u64,
    },
    Gc,
    Read {
        tenant: usize,
        at: Index,
        offset: i8,
        range: (Option<i64>, Option<i64>, Option<usize>),
    },
    Reopen,
    /// Put a tenant (or a table, or a key range) back as it was at a picked ts.
    Revert {
        tenant: usize,
        at: Index,
        offset: i8,
        scope: RScope,
    },
    /// Undo the tenant's newest revert (revert to just before its commit).
    UndoRevert {
        tenant: usize,
    },
    /// Revert a tenant to a snapshot (its log may be collected: a diff scan).
    RollbackSnapshot {
        tenant: usize,
        snap: usize,
    },
}

#[derive(Clone, Debug)]
enum RScope {
    Tenant,
    Table(usize),
    Range(usize, Option<i64>, Option<i64>),
}

fn step() -> impl Strategy<Value = Step> {
    let table = 0..TABLES.len();
    let key = 0..KEYS;
    prop_oneof![
        8 => (
            table.clone(),
            key.clone(),
            proptest::option::of("[a-c]{0,3}"),
            proptest::option::of(-3i64..3),
            proptest::option::of(0i64..100),
        )
            .prop_map(|(table, key, s, n, extra)| Step::Put { table, key, s, n, extra }),
        3 => (table.clone(), key).prop_map(|(table, key)| Step::Delete { table, key }),
        1 => table.clone().prop_map(|table| Step::AddColumn { table }),
        1 => table.clone().prop_map(|table| Step::DropTable { table }),
        1 => table.clone().prop_map(|table| Step::Recreate { table }),
        1 => table.prop_map(|table| Step::CreateTable { table }),
    ]
}

fn op(tenants: usize) -> impl Strategy<Value = Op> {
    let tenant = 0..tenants;
    let offset = prop_oneof![Just(-1i8), Just(0), Just(0), Just(1)];
    let bound = proptest::option::of(-1..=KEYS);
    prop_oneof![
        10 => (tenant.clone(), proptest::collection::vec(step(), 1..5), proptest::bool::weighted(0.1))
            .prop_map(|(tenant, steps, abort)| Op::Txn { tenant, steps, abort }),
        2 => (tenant.clone(), 0..SNAPSHOTS.len()).prop_map(|(tenant, snap)| Op::Snapshot { tenant, snap }),
        1 => (tenant.clone(), 0..SNAPSHOTS.len())
            .prop_map(|(tenant, snap)| Op::DropSnapshot { tenant, snap }),
        1 => (tenant.clone(), any::<Index>(), offset.clone())
            .prop_map(|(tenant, at, offset)| Op::Pin { tenant, at, offset }),
        1 => (tenant.clone(), any::<Index>()).prop_map(|(tenant, which)| Op::Unpin { tenant, which }),
        3 => (0u64..2_500).prop_map(|millis| Op::Advance { millis }),
        1 => (0u64..3_000).prop_map(|millis| Op::ClockBack { millis }),
        3 => Just(Op::Gc),
        6 => (tenant.clone(), any::<Index>(), offset, (bound.clone(), bound, proptest::option::of(0usize..4)))
            .prop_map(|(tenant, at, offset, range)| Op::Read { tenant, at, offset, range }),
        1 => Just(Op::Reopen),
        3 => (tenant.clone(), any::<Index>(), prop_oneof![Just(-1i8), Just(0), Just(1)], rscope())
            .prop_map(|(tenant, at, offset, scope)| Op::Revert { tenant, at, offset, scope }),
        3 => tenant.clone().prop_map(|tenant| Op::UndoRevert { tenant }),
        2 => (tenant, 0..SNAPSHOTS.len()).prop_map(|(tenant, snap)| Op::RollbackSnapshot { tenant, snap }),
    ]
}

fn rscope() -> impl Strategy<Value = RScope> {
    let bound = proptest::option::of(-1..=KEYS);
    prop_oneof![
        2 => Just(RScope::Tenant),
        1 => (0..TABLES.len()).prop_map(RScope::Table),
        1 => (0..TABLES.len(), bound.clone(), bound).prop_map(|(t, f, to)| RScope::Range(t, f, to)),
    ]
}

fn scenario() -> impl Strategy<Value = (Vec<u64>, Vec<Op>)> {
    (2..=TENANTS.len()).prop_flat_map(|n| {
        (
            proptest::collection::vec(1u64..=3, n),
            proptest::collection::vec(op(n), 1..40),
        )
    })
}

/// A table of the model: its store id, columns, and rows (only the non-null values).
#[derive(Clone, Debug, PartialEq)]
struct MTable {
    id: u64,
    columns: Vec<Column>,
    rows: BTreeMap<i64, Map<String, Value>>,
}

impl MTable {
    fn new(id: u64) -> MTable {
        MTable {
            id,
            columns: kv_spec("x").columns,
            rows: BTreeMap::new(),
        }
    }

    /// A row as the store shows it: every column, in order, null when absent.
    fn render(&self, row: &Map<String, Value>) -> Value {
        let obj: Map<String, Value> = self
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    row.get(&c.name).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        Value::Object(obj)
    }
}

/// A tenant's state after one commit.
#[derive(Clone, Debug, Default, PartialEq)]
struct MState {
    tables: BTreeMap<String, MTable>,
    snapshots: BTreeMap<String, Ts>,
}

struct MTenant {
    name: &'static str,
    id: u64,
    retention_ms: u64,
    /// State after each commit of the tenant, by commit ts.
    history: BTreeMap<Ts, MState>,
    pins: Vec<PinRecord>,
    /// Commit ts of the tenant's reverts, oldest first.
    reverts: Vec<Ts>,
    created_ts: Ts,
    /// `now - retention` at the newest GC: reads at or after it must work.
    window_start: Ts,
}

impl MTenant {
    fn at(&self, ts: Ts) -> MState {
        self.history
            .range(..=ts)
            .next_back()
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }

    fn latest(&self) -> MState {
        self.history
            .values()
            .next_back()
            .cloned()
            .unwrap_or_default()
    }
}

/// A scan range `from..to` with a limit; `None` checks only full scans.
type Probe = Option<(Option<i64>, Option<i64>, Option<usize>)>;

/// What a read at a ts must give.
#[derive(Debug, PartialEq)]
enum Expect {
    Future,
    TooOld,
    State(MState),
}

/// How often each interesting outcome happened, to show the test reaches them.
#[derive(Clone, Copy, Debug, Default)]
struct Coverage {
    commits: u64,
    reads: u64,
    /// Reads at a pinned or snapshot ts below the safe point.
    reads_held_below_safe_point: u64,
    reads_too_old: u64,
    reads_in_the_future: u64,
    pins: u64,
    pins_too_old: u64,
    versions_collected: u64,
    reopens: u64,
    /// Reverts that committed, that found nothing to change, and that were refused.
    reverts: u64,
    reverts_noop: u64,
    reverts_refused: u64,
    /// Reverts whose changed keys came from a diff scan (the log was collected).
    reverts_by_scan: u64,
    undos: u64,
}

impl Coverage {
    fn add(&mut self, o: &Coverage) {
        self.commits += o.commits;
        self.reads += o.reads;
        self.reads_held_below_safe_point += o.reads_held_below_safe_point;
        self.reads_too_old += o.reads_too_old;
        self.reads_in_the_future += o.reads_in_the_future;
        self.pins += o.pins;
        self.pins_too_old += o.pins_too_old;
        self.versions_collected += o.versions_collected;
        self.reopens += o.reopens;
        self.reverts += o.reverts;
        self.reverts_noop += o.reverts_noop;
        self.reverts_refused += o.reverts_refused;
        self.reverts_by_scan += o.reverts_by_scan;
        self.undos += o.undos;
    }
}

struct Harness {
    coverage: Coverage,
    t: Option<TestStore>,
    tenants: Vec<MTenant>,
    /// Every commit ts, snapshot ts and pin ts so far (reads pick from these).
    times: Vec<Ts>,
    /// The newest ts committed or read: every later commit must be newer.
    newest_seen: Ts,
}

impl Harness {
    fn new(retention_secs: &[u64]) -> Harness {
        let t = TestStore::new();
        let mut h = Harness {
            coverage: Coverage::default(),
            t: None,
            tenants: Vec::new(),
            times: Vec::new(),
            newest_seen: Ts::ZERO,
        };
        for (i, &secs) in retention_secs.iter().enumerate() {
            let name = TENANTS[i];
            let opts = TenantOptions {
                history_retention_secs: Some(secs),
                ..Default::default()
            };
            let (rec, info) = t.store.create_tenant(name, opts).unwrap();
            h.committed(info.commit_ts);
            let mut txn = t.store.begin(name).unwrap();
            let mut state = MState::default();
            for table in &TABLES[..2] {
                let def = txn.create_table(&kv_spec(table)).unwrap();
                state.tables.insert(table.to_string(), MTable::new(def.id));
            }
            let ts = txn.commit().unwrap().commit_ts;
            h.committed(ts);
            h.tenants.push(MTenant {
                name,
                id: rec.id,
                retention_ms: secs * 1000,
                history: BTreeMap::from([(ts, state)]),
                pins: Vec::new(),
                reverts: Vec::new(),
                created_ts: rec.created_ts,
                window_start: Ts::ZERO,
            });
        }
        h.t = Some(t);
        h
    }

    fn t(&self) -> &TestStore {
        self.t.as_ref().expect("store is open")
    }

    fn committed(&mut self, ts: Ts) {
        self.coverage.commits += 1;
        assert!(
            ts > self.newest_seen,
            "commit ts {ts} is not after {}",
            self.newest_seen
        );
        self.newest_seen = ts;
        self.times.push(ts);
    }

    fn pick(&self, at: &Index, offset: i8) -> Ts {
        let ts = self.times[at.index(self.times.len())];
        match offset {
            -1 => ts.prev(),
            1 => ts.next(),
            _ => ts,
        }
    }

    /// What a read of `tenant` at `ts` must show right now.
    /// The millisecond from which the store measures "the future": the clock, or the
    /// newest visible ts when the clock is behind it.
    fn future_from(&self) -> u64 {
        self.t().now().max(self.t().store.visible_ts().millis())
    }

    fn expect(&self, tenant: usize, ts: Ts) -> Expect {
        let m = &self.tenants[tenant];
        let store = &self.t().store;
        if ts > store.visible_ts() && ts.millis() > self.future_from() {
            return Expect::Future;
        }
        let safe = store.safe_point(m.name).unwrap();
        assert!(
            safe <= m.window_start,
            "tenant {}: safe point {safe} is inside the retention window starting at {}",
            m.name,
            m.window_start
        );
        let pinned = m.pins.iter().any(|p| p.ts == ts);
        let snapshot = m.latest().snapshots.values().any(|s| *s == ts);
        if ts >= safe || pinned || snapshot {
            Expect::State(m.at(ts))
        } else {
            Expect::TooOld
        }
    }

    /// Reads `tenant` at `ts` and compares with the model.
    fn check_read(&mut self, tenant: usize, ts: Ts, probe: Probe) {
        let expect = self.expect(tenant, ts);
        let name = self.tenants[tenant].name;
        let r = self.t().store.read_at(name, &AsOf::Ts(ts));
        let txn = match (&expect, r) {
            (Expect::Future, Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                self.coverage.reads_in_the_future += 1;
                return;
            }
            (Expect::Future, Ok(_)) => panic!("read of {name} at future ts {ts} was accepted"),
            (_, Err(e)) => panic!("read_at {name} at {ts}: {e}"),
            (_, Ok(txn)) => txn,
        };
        self.newest_seen = self.newest_seen.max(ts);
        self.coverage.reads += 1;
        if ts < self.t().store.safe_point(name).unwrap() {
            match expect {
                Expect::TooOld => self.coverage.reads_too_old += 1,
                _ => self.coverage.reads_held_below_safe_point += 1,
            }
        }
        match expect {
            Expect::Future => unreachable!(),
            Expect::TooOld => {
                let e = txn.tables().expect_err("read below the safe point");
                assert!(
                    matches!(e, Error::TooOld { requested, .. } if requested == ts),
                    "{e:?}"
                );
                for table in TABLES {
                    assert!(matches!(
                        txn.scan(table, &ScanRange::default()),
                        Err(Error::TooOld { .. })
                    ));
                    assert!(matches!(
                        txn.get(table, &json!(0)),
                        Err(Error::TooOld { .. })
                    ));
                }
            }
            Expect::State(state) => compare(&txn, &state, probe, &format!("{name} at {ts}")),
        }
    }

    fn check_all(&mut self) {
        let times = self.times.clone();
        for tenant in 0..self.tenants.len() {
            for &ts in &times {
                for ts in [ts.prev(), ts] {
                    self.check_read(tenant, ts, None);
                }
            }
            // Just past everything committed: the newest state. Past the current time:
            // refused as the future.
            let next = self.t().store.visible_ts().next();
            self.check_read(tenant, next, None);
            let future = Ts::from_millis(self.future_from() + 1);
            self.check_read(tenant, future, None);
            // The log holds a suffix of the tenant's commits, all of those after the
            // safe point among them.
            let m = &self.tenants[tenant];
            let store = &self.t().store;
            let log: Vec<Ts> = store
                .read_log(m.id, Ts::ZERO, usize::MAX)
                .unwrap()
                .iter()
                .map(|r| r.commit_ts)
                .collect();
            let commits: Vec<Ts> = m.history.keys().copied().collect();
            assert!(
                commits.ends_with(&log),
                "log of {}: {log:?} is not a suffix of {commits:?}",
                m.name
            );
            let safe = store.safe_point(m.name).unwrap();
            assert!(
                commits.iter().filter(|ts| **ts > safe).count() <= log.len(),
                "log of {} lost commits after the safe point {safe}",
                m.name
            );
        }
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Txn {
                tenant,
                steps,
                abort,
            } => self.txn(*tenant, steps, *abort),
            Op::Snapshot { tenant, snap } => {
                let m = &self.tenants[*tenant];
                let name = SNAPSHOTS[*snap];
                let mut state = m.latest();
                let mut txn = self.t().store.begin(m.name).unwrap();
                if state.snapshots.contains_key(name) {
                    assert_err(txn.create_snapshot(name), ErrorKind::AlreadyExists, name);
                    return;
                }
                let def = txn.create_snapshot(name).unwrap();
                assert_eq!(def.ts, txn.start_ts());
                assert!(def.ts >= *m.history.keys().next_back().unwrap());
                let ts = txn.commit().unwrap().commit_ts;
                state.snapshots.insert(name.to_string(), def.ts);
                self.tenants[*tenant].history.insert(ts, state);
                self.committed(ts);
                self.times.push(def.ts);
            }
            Op::DropSnapshot { tenant, snap } => {
                let m = &self.tenants[*tenant];
                let name = SNAPSHOTS[*snap];
                let mut state = m.latest();
                let mut txn = self.t().store.begin(m.name).unwrap();
                if state.snapshots.remove(name).is_none() {
                    assert_err(txn.drop_snapshot(name), ErrorKind::NotFound, name);
                    return;
                }
                txn.drop_snapshot(name).unwrap();
                let ts = txn.commit().unwrap().commit_ts;
                self.tenants[*tenant].history.insert(ts, state);
                self.committed(ts);
            }
            Op::Pin { tenant, at, offset } => {
                let ts = self.pick(at, *offset);
                let expect = self.expect(*tenant, ts);
                let name = self.tenants[*tenant].name;
                let r = self.t().store.pin(name, ts, "model");
                match (expect, r) {
                    (Expect::Future, Err(e)) => {
                        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}")
                    }
                    (Expect::TooOld, Err(Error::TooOld { .. })) => self.coverage.pins_too_old += 1,
                    (Expect::State(_), Ok(pin)) => {
                        assert_eq!(pin.ts, ts);
                        self.coverage.pins += 1;
                        self.newest_seen = self.newest_seen.max(ts);
                        self.tenants[*tenant].pins.push(pin);
                        self.times.push(ts);
                    }
                    (expect, r) => panic!("pin {name} at {ts}: expected {expect:?}, got {r:?}"),
                }
            }
            Op::Unpin { tenant, which } => {
                let m = &mut self.tenants[*tenant];
                if m.pins.is_empty() {
                    return;
                }
                let pin = m.pins.remove(which.index(m.pins.len()));
                let (id, name) = (m.id, m.name);
                let store = &self.t().store;
                store.unpin(id, pin.id).unwrap();
                let mut held = store.pins(name).unwrap();
                held.sort_by_key(|p| p.id);
                let mut expected = self.tenants[*tenant].pins.clone();
                expected.sort_by_key(|p| p.id);
                assert_eq!(held, expected);
            }
            Op::Advance { millis } => self.t().clock.advance(*millis),
            Op::ClockBack { millis } => {
                let now = self.t().now();
                self.t().clock.set(now - millis);
            }
            Op::Gc => {
                let now = self.t().now();
                let stats = self.t().store.run_gc().unwrap();
                self.coverage.versions_collected += stats.versions_deleted;
                for m in &mut self.tenants {
                    let start = Ts::from_millis(now.saturating_sub(m.retention_ms));
                    m.window_start = m.window_start.max(start);
                }
            }
            Op::Read {
                tenant,
                at,
                offset,
                range,
            } => {
                let ts = self.pick(at, *offset);
                self.check_read(*tenant, ts, Some(*range));
            }
            Op::Reopen => {
                self.coverage.reopens += 1;
                let t = self.t.take().unwrap().reopen();
                self.t = Some(t);
            }
            Op::Revert {
                tenant,
                at,
                offset,
                scope,
            } => {
                let ts = self.pick(at, *offset);
                self.revert(*tenant, RevertTo::AsOf(AsOf::Ts(ts)), ts, scope);
            }
            Op::RollbackSnapshot { tenant, snap } => {
                let name = SNAPSHOTS[*snap];
                let Some(&ts) = self.tenants[*tenant].latest().snapshots.get(name) else {
                    let e = self.t().store.revert(
                        self.tenants[*tenant].name,
                        &RevertTo::AsOf(AsOf::Snapshot(name.into())),
                        &RevertScope::Tenant,
                    );
                    assert_err(e, ErrorKind::NotFound, name);
                    return;
                };
                self.revert(
                    *tenant,
                    RevertTo::AsOf(AsOf::Snapshot(name.into())),
                    ts,
                    &RScope::Tenant,
                );
            }
            Op::UndoRevert { tenant } => {
                if let Some(&r) = self.tenants[*tenant].reverts.last() {
                    self.coverage.undos += 1;
                    self.revert(
                        *tenant,
                        RevertTo::BeforeCommit(r),
                        r.prev(),
                        &RScope::Tenant,
                    );
                }
            }
        }
    }

    /// Reverts `tenant` to `ts` (what `to` names) in `scope`; checks the outcome against
    /// the model and records the new state.
    fn revert(&mut self, tenant: usize, to: RevertTo, ts: Ts, scope: &RScope) {
        let m = &self.tenants[tenant];
        let name = m.name;
        let expect = self.expect(tenant, ts);
        let cur = m.latest();
        let store_scope = match scope {
            RScope::Tenant => RevertScope::Tenant,
            RScope::Table(t) => RevertScope::Table(TABLES[*t].into()),
            RScope::Range(t, from, to) => RevertScope::Range {
                table: TABLES[*t].into(),
                from: from.map(|k| json!(k)),
                to: to.map(|k| json!(k)),
            },
        };
        let r = self.t().store.revert(name, &to, &store_scope);
        let old = match expect {
            Expect::Future => {
                let e = r.expect_err("a revert to the future");
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                self.coverage.reverts_refused += 1;
                return;
            }
            Expect::TooOld => {
                let e = r.expect_err("a revert below the safe point");
                assert!(
                    matches!(&e, Error::TooOld { hint, .. } if hint.contains("--in-place")),
                    "{e:?}"
                );
                self.coverage.reverts_refused += 1;
                return;
            }
            Expect::State(old) => old,
        };
        let what = format!("revert of {name} to {ts} in {scope:?}");
        if ts < self.tenants[tenant].created_ts && old.tables.is_empty() {
            let e = r.expect_err("a revert to before the tenant existed");
            assert!(e.to_string().contains("did not exist yet"), "{what}: {e}");
            self.coverage.reverts_refused += 1;
            return;
        }
        // The model of the new state, or the error kind the store must give.
        let want: Result<MState, ErrorKind> = match scope {
            RScope::Tenant => Ok(MState {
                tables: old.tables.clone(),
                snapshots: cur.snapshots.clone(),
            }),
            RScope::Table(t) => {
                let table = TABLES[*t];
                let mut new = cur.clone();
                match (old.tables.get(table), cur.tables.contains_key(table)) {
                    (None, false) => Err(ErrorKind::NotFound),
                    (Some(then), _) => {
                        new.tables.insert(table.into(), then.clone());
                        Ok(new)
                    }
                    (None, true) => {
                        new.tables.remove(table);
                        Ok(new)
                    }
                }
            }
            RScope::Range(t, from, to) => {
                let table = TABLES[*t];
                let in_range = |k: &i64| from.is_none_or(|f| *k >= f) && to.is_none_or(|t| *k < t);
                match (old.tables.get(table), cur.tables.get(table)) {
                    (None, None) => Err(ErrorKind::NotFound),
                    (Some(a), Some(b)) if a.id == b.id => {
                        if matches!((from, to), (Some(f), Some(t)) if f >= t) {
                            Err(ErrorKind::InvalidInput)
                        } else {
                            let mut new = cur.clone();
                            let nt = new.tables.get_mut(table).unwrap();
                            nt.rows.retain(|k, _| !in_range(k));
                            nt.rows.extend(
                                a.rows
                                    .iter()
                                    .filter(|(k, _)| in_range(k))
                                    .map(|(k, v)| (*k, v.clone())),
                            );
                            Ok(new)
                        }
                    }
                    _ => Err(ErrorKind::InvalidInput),
                }
            }
        };
        match (want, r) {
            (Err(kind), Err(e)) => {
                assert_eq!(e.kind(), kind, "{what}: {e}");
                self.coverage.reverts_refused += 1;
            }
            (Err(kind), Ok(rep)) => panic!("{what}: expected {kind:?}, got {rep:?}"),
            (Ok(_), Err(e)) => panic!("{what}: {e}"),
            (Ok(new), Ok(rep)) => {
                assert_eq!(rep.target_ts, ts, "{what}");
                if rep.found_by == ChangeSource::DiffScan {
                    self.coverage.reverts_by_scan += 1;
                }
                match rep.commit_ts {
                    None => {
                        assert_eq!(new, cur, "{what}: the store found nothing to change");
                        self.coverage.reverts_noop += 1;
                    }
                    Some(r) => {
                        self.coverage.reverts += 1;
                        self.tenants[tenant].reverts.push(r);
                        self.tenants[tenant].history.insert(r, new.clone());
                        self.committed(r);
                    }
                }
                let txn = self.t().store.begin(name).unwrap();
                compare(&txn, &new, Some((None, None, None)), &what);
                // The revert released its pin.
                let pins = self.t().store.pins(name).unwrap();
                assert!(pins.iter().all(|p| p.owner != "revert"), "{what}: {pins:?}");
            }
        }
    }

    fn txn(&mut self, tenant: usize, steps: &[Step], abort: bool) {
        let m = &self.tenants[tenant];
        let mut work = m.latest();
        let mut txn = self.t().store.begin(m.name).unwrap();
        for step in steps {
            apply(&mut txn, &mut work, step);
        }
        compare(
            &txn,
            &work,
            Some((None, None, None)),
            &format!("{} inside a transaction", m.name),
        );
        if abort {
            return;
        }
        if txn.write_count() == 0 {
            assert_err(txn.commit(), ErrorKind::InvalidInput, "no writes");
            return;
        }
        let ts = txn.commit().unwrap().commit_ts;
        self.tenants[tenant].history.insert(ts, work);
        self.committed(ts);
    }
}

/// Applies one step to a transaction and to the model's working state.
fn apply(txn: &mut Txn, work: &mut MState, step: &Step) {
    let table_of = |i: usize| TABLES[i];
    match step {
        Step::Put {
            table,
            key,
            s,
            n,
            extra,
        } => {
            let name = table_of(*table);
            let Some(mt) = work.tables.get_mut(name) else {
                assert_err(txn.put(name, &json!({"k": key})), ErrorKind::NotFound, name);
                return;
            };
            let mut row = Map::new();
            row.insert("k".into(), json!(key));
            if let Some(s) = s {
                row.insert("s".into(), json!(s));
            }
            if let Some(n) = n {
                row.insert("n".into(), json!(n));
            }
            if let (Some(extra), Some(last)) = (extra, mt.columns.get(3..).and_then(|c| c.last())) {
                let v = match last.ty {
                    ColumnType::Int => json!(extra),
                    _ => json!(format!("x{extra}")),
                };
                row.insert(last.name.clone(), v);
            }
            txn.put(name, &Value::Object(row.clone())).unwrap();
            mt.rows.insert(*key, row);
        }
        Step::Delete { table, key } => {
            let name = table_of(*table);
            match work.tables.get_mut(name) {
                Some(mt) => {
                    txn.delete(name, &json!(key)).unwrap();
                    mt.rows.remove(key);
                }
                None => {
                    assert_err(txn.delete(name, &json!(key)), ErrorKind::NotFound, name);
                }
            }
        }
        Step::AddColumn { table } => {
            let name = table_of(*table);
            match work.tables.get_mut(name) {
                Some(mt) => {
                    let i = mt.columns.len();
                    let ty = if i % 2 == 0 {
                        ColumnType::Int
                    } else {
                        ColumnType::String
                    };
                    let column = col(&format!("c{i}"), ty);
                    let def = txn.add_column(name, column.clone()).unwrap();
                    mt.columns.push(column);
                    assert_eq!(def.columns, mt.columns);
                    assert_eq!(def.schema_version as usize, mt.columns.len() - 2);
                }
                None => {
                    assert_err(
                        txn.add_column(name, col("c", ColumnType::Int)),
                        ErrorKind::NotFound,
                        name,
                    );
                }
            }
        }
        Step::DropTable { table } => {
            let name = table_of(*table);
            if work.tables.remove(name).is_some() {
                txn.drop_table(name).unwrap();
            } else {
                assert_err(txn.drop_table(name), ErrorKind::NotFound, name);
            }
        }
        Step::Recreate { table } => {
            let name = table_of(*table);
            if let Some(old) = work.tables.remove(name) {
                txn.drop_table(name).unwrap();
                let def = txn.create_table(&kv_spec(name)).unwrap();
                assert!(def.id > old.id);
                work.tables.insert(name.to_string(), MTable::new(def.id));
            } else {
                let def = txn.create_table(&kv_spec(name)).unwrap();
                work.tables.insert(name.to_string(), MTable::new(def.id));
            }
        }
        Step::CreateTable { table } => {
            let name = table_of(*table);
            if work.tables.contains_key(name) {
                assert_err(
                    txn.create_table(&kv_spec(name)),
                    ErrorKind::AlreadyExists,
                    name,
                );
            } else {
                let def = txn.create_table(&kv_spec(name)).unwrap();
                work.tables.insert(name.to_string(), MTable::new(def.id));
            }
        }
    }
}

/// An object's entries in order (so column order is compared too).
fn entries(v: &Value) -> Vec<(String, Value)> {
    v.as_object()
        .expect("rows are objects")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Compares everything `txn` shows with `state`.
fn compare(txn: &Txn, state: &MState, probe: Probe, what: &str) {
    let tables = txn
        .tables()
        .unwrap_or_else(|e| panic!("{what}: tables: {e}"));
    let got: Vec<(String, u64, Vec<Column>)> = tables
        .iter()
        .map(|d| (d.name.clone(), d.id, d.columns.clone()))
        .collect();
    let want: Vec<(String, u64, Vec<Column>)> = state
        .tables
        .iter()
        .map(|(n, t)| (n.clone(), t.id, t.columns.clone()))
        .collect();
    assert_eq!(got, want, "{what}: tables");
    let snaps = txn.snapshots().unwrap();
    let want: Vec<SnapshotDef> = state
        .snapshots
        .iter()
        .map(|(name, ts)| SnapshotDef {
            name: name.clone(),
            ts: *ts,
        })
        .collect();
    assert_eq!(snaps, want, "{what}: snapshots");

    for name in TABLES {
        let Some(mt) = state.tables.get(name) else {
            assert_err(txn.get(name, &json!(0)), ErrorKind::NotFound, name);
            assert_err(
                txn.scan(name, &ScanRange::default()),
                ErrorKind::NotFound,
                name,
            );
            continue;
        };
        let rows = txn.scan(name, &ScanRange::default()).unwrap();
        let want: Vec<Value> = mt.rows.values().map(|r| mt.render(r)).collect();
        assert_eq!(
            rows.iter().map(entries).collect::<Vec<_>>(),
            want.iter().map(entries).collect::<Vec<_>>(),
            "{what}: scan of {name}"
        );
        let Some((from, to, limit)) = probe else {
            continue;
        };
        let scan_range = ScanRange {
            from: from.map(|k| json!(k)),
            to: to.map(|k| json!(k)),
            limit,
        };
        let ranged = txn.scan(name, &scan_range).unwrap();
        let want_ranged: Vec<Value> = mt
            .rows
            .iter()
            .filter(|(k, _)| from.is_none_or(|f| **k >= f) && to.is_none_or(|t| **k < t))
            .take(limit.unwrap_or(usize::MAX))
            .map(|(_, r)| mt.render(r))
            .collect();
        assert_eq!(
            ranged, want_ranged,
            "{what}: scan of {name} in {scan_range:?}"
        );
        for key in 0..KEYS {
            let got = txn.get(name, &json!(key)).unwrap();
            let want = mt.rows.get(&key).map(|r| mt.render(r));
            assert_eq!(got, want, "{what}: get {key} from {name}");
        }
    }
}

/// Runs one scenario against a fresh store; returns what it covered.
fn run_scenario(retention: &[u64], ops: &[Op]) -> Coverage {
    let mut h = Harness::new(retention);
    for (i, op) in ops.iter().enumerate() {
        h.run(op);
        if i % 20 == 19 {
            h.check_all();
        }
    }
    // A last GC after time has passed, then everything again, also after a reopen.
    h.run(&Op::Advance { millis: 1_500 });
    h.run(&Op::Gc);
    h.check_all();
    h.run(&Op::Reopen);
    h.check_all();
    h.coverage
}

#[test]
fn store_matches_the_model() {
    const CASES: u32 = 40;
    let config = ProptestConfig {
        cases: CASES,
        max_shrink_iters: 200,
        source_file: Some(file!()),
        ..ProptestConfig::default()
    };
    let total = Mutex::new(Coverage::default());
    let mut runner = TestRunner::new(config);
    let result = runner.run(&scenario(), |(retention, ops)| {
        let covered = run_scenario(&retention, &ops);
        total.lock().unwrap().add(&covered);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The outcomes that make the test worth running were reached (each has a chance of
    // well over 10% per case, so missing one in every case means the generator broke).
    let c = total.into_inner().unwrap();
    eprintln!("model coverage over {CASES} cases: {c:?}");
    assert!(c.reads_too_old > 0, "{c:?}");
    assert!(c.reads_held_below_safe_point > 0, "{c:?}");
    assert!(c.versions_collected > 0, "{c:?}");
    assert!(
        c.pins > 0 && c.reopens > 0 && c.reads_in_the_future > 0,
        "{c:?}"
    );
    assert!(
        c.reverts > 0 && c.reverts_noop > 0 && c.reverts_refused > 0 && c.undos > 0,
        "{c:?}"
    );
}
