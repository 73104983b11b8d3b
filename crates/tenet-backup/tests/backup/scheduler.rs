//! The scheduler on a store with a manual clock: exact runs over simulated days, one
//! catch-up run after downtime (a full supersedes an incremental due with it), overlapping runs skipped, failures retried with
//! backoff and then reported, the global limit, and the archive kept running.

use std::sync::Arc;
use std::time::Duration;

use tenet_backup::archiver::Archivers;
use tenet_backup::prune::Retention;
use tenet_backup::scheduler::{next_full_ms, Event, Limits, Scheduler};
use tenet_backup::strategy::{self, RepoConfig, Schedule, Strategy, DEFAULT_KEY};
use tenet_store::{Clock, ManualClock, StoreOptions, TenantOptions};

use crate::common::{populate, Env};

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;
/// 2026-11-25T00:00:00Z
const MIDNIGHT: u64 = 1_795_564_800_000;

struct Sim {
    env: Env,
    clock: Arc<ManualClock>,
    sched: Scheduler,
    archivers: Archivers,
    /// (tick time, event) of every tick so far.
    log: Vec<(u64, Event)>,
}

impl Sim {
    fn new(tenants: &[&str], strategy: Strategy, limits: Limits) -> Sim {
        let clock = Arc::new(ManualClock::new(MIDNIGHT));
        let env = Env::with_options(StoreOptions {
            clock: clock.clone(),
            sync_writes: false,
            ..Default::default()
        });
        for (n, t) in tenants.iter().enumerate() {
            env.store
                .create_tenant(t, TenantOptions::default())
                .unwrap();
            populate(&env.store, t, n as u64, 20);
        }
        strategy::save_repo(
            &env.store,
            &RepoConfig {
                name: "nightly".into(),
                url: env.repo.clone(),
                s3: Default::default(),
                default: true,
                added_at: String::new(),
            },
        )
        .unwrap();
        strategy.validate(&env.store).unwrap();
        strategy::save_strategy(&env.store, DEFAULT_KEY, &strategy).unwrap();
        let archivers = Archivers::new(env.store.clone(), env.rt.handle().clone());
        let sched = Scheduler::new(env.backups.clone(), archivers.clone(), limits);
        Sim {
            env,
            clock,
            sched,
            archivers,
            log: Vec::new(),
        }
    }

    /// One tick at `at`, then waits for the jobs it started to end.
    fn tick(&mut self, at: u64) -> Vec<Event> {
        self.clock.set(at);
        let events = self.env.rt.block_on(self.sched.tick(at)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while self
            .env
            .jobs()
            .list()
            .unwrap()
            .iter()
            .any(|j| !j.state.is_final() && self.env.jobs().is_live(j.id))
        {
            assert!(std::time::Instant::now() < deadline, "jobs did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
        self.log.extend(events.iter().map(|e| (at, e.clone())));
        events
    }

    /// Ticks every `step` from the current time up to (not including) `until`.
    fn run_until(&mut self, until: u64, step: u64) {
        let mut t = self.clock.now_millis();
        while t < until {
            self.tick(t);
            t += step;
        }
        self.clock.set(until);
    }

    fn started(&self, kind: &str) -> Vec<u64> {
        self.log
            .iter()
            .filter_map(|(at, e)| match e {
                Event::Started { kind: k, .. } if k == kind => Some(*at),
                _ => None,
            })
            .collect()
    }

    fn state(&self, tenant: &str, kind: &str) -> tenet_backup::scheduler::RunState {
        let id = self.env.id(tenant);
        self.sched
            .states()
            .into_iter()
            .find(|s| s.tenant_id == id && s.kind == kind)
            .unwrap()
    }
}

fn nightly(incr_secs: Option<u64>, keep_full: Option<u32>) -> Strategy {
    Strategy {
        full: Some("0 2 * * *".into()),
        incr_secs,
        retention: Retention {
            keep_within_secs: None,
            keep_full,
        },
        ..Strategy::default()
    }
}

#[test]
fn runs_over_simulated_days_catch_up_once_and_skip_overlaps() {
    let mut sim = Sim::new(&["a"], nightly(Some(6 * 3600), Some(2)), Limits::default());
    let id = sim.env.id("a");
    let cron = Schedule::parse("full", "0 2 * * *").unwrap();
    // Ten-minute ticks over three days.
    sim.run_until(MIDNIGHT + 3 * DAY, 10 * MIN);

    // The first full at once (the tenant had none), then one a day at 02:00 plus the
    // tenant's spread, each at the first tick at or after it.
    let fulls = sim.started("full");
    let offset = next_full_ms(&cron, id, MIDNIGHT).unwrap() - (MIDNIGHT + 2 * HOUR);
    assert_eq!(fulls.len(), 4, "{fulls:?}");
    assert_eq!(fulls[0], MIDNIGHT);
    for (day, at) in fulls[1..].iter().enumerate() {
        let due = MIDNIGHT + day as u64 * DAY + 2 * HOUR + offset;
        assert!(
            *at >= due && *at < due + 10 * MIN,
            "day {day}: {at} vs {due}"
        );
    }
    // Incrementals every 6 h after the previous one, from the first tick.
    let incrs = sim.started("incr");
    assert_eq!(incrs.len(), 11, "{incrs:?}");
    assert!(
        incrs.windows(2).all(|w| w[1] - w[0] == 6 * HOUR),
        "{incrs:?}"
    );
    // Every scheduled backup succeeded and was followed by a prune.
    let succeeded = sim
        .log
        .iter()
        .filter(|(_, e)| matches!(e, Event::Succeeded { .. }))
        .count();
    let pruned = sim
        .log
        .iter()
        .filter(|(_, e)| matches!(e, Event::Pruning { .. }))
        .count();
    assert_eq!(succeeded, fulls.len() + incrs.len());
    assert_eq!(pruned, succeeded);
    assert!(sim.state("a", "full").problem.is_none());
    // keep_full 2: two fulls remain.
    let fulls_left = sim
        .env
        .backups
        .list(Some(id))
        .unwrap()
        .into_iter()
        .filter(|b| b.kind == "full")
        .count();
    assert_eq!(fulls_left, 2);

    // Down for three days: one catch-up run of each kind, not three.
    let back = MIDNIGHT + 6 * DAY + 12 * HOUR;
    let events = sim.tick(back);
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Started { kind, .. } => Some(kind.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec!["full"], "{events:?}");
    assert!(
        sim.state("a", "incr")
            .last_outcome
            .unwrap()
            .starts_with("superseded"),
        "the incremental due with it waits for the next interval"
    );
    sim.tick(back + MIN);

    // A backup of the tenant still running when the next full is due: skipped and
    // recorded, and the run after it happens.
    let held = sim
        .env
        .rt
        .block_on(sim.env.backups.start_full(id, &sim.env.repo, None))
        .unwrap();
    let due = next_full_ms(&cron, id, back + MIN).unwrap();
    let events = sim.tick(due);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Skipped { kind, held_by, .. }
            if kind == "full" && held_by.contains(&format!("job {}", held.id)))),
        "{events:?}"
    );
    let st = sim.state("a", "full");
    assert_eq!(st.skipped, 1);
    assert!(st.last_outcome.unwrap().starts_with("skipped"));
    sim.env.run(held);
    let next = next_full_ms(&cron, id, due).unwrap();
    assert_eq!(next, due + DAY);
    let events = sim.tick(next);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Started { kind, .. } if kind == "full")),
        "{events:?}"
    );
}

#[test]
fn failures_retry_with_backoff_then_become_a_problem_until_a_success() {
    let mut sim = Sim::new(&["a"], nightly(None, None), Limits::default());
    // The repository's disk goes away (its directory and the parent).
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("repo");
    std::fs::create_dir(&dir).unwrap();
    let url = format!("file://{}", dir.display());
    strategy::save_repo(
        &sim.env.store,
        &RepoConfig {
            name: "usb".into(),
            url,
            s3: Default::default(),
            default: false,
            added_at: String::new(),
        },
    )
    .unwrap();
    let s = Strategy {
        repo: Some("usb".into()),
        ..nightly(None, None)
    };
    strategy::save_strategy(&sim.env.store, DEFAULT_KEY, &s).unwrap();
    sim.sched.changed();
    std::fs::remove_dir_all(parent.path()).unwrap();

    let failed = |e: &[Event]| e.iter().any(|e| matches!(e, Event::Failed { .. }));
    assert!(failed(&sim.tick(MIDNIGHT)));
    assert!(
        sim.tick(MIDNIGHT + 30_000).is_empty(),
        "no retry before 1 min"
    );
    assert!(failed(&sim.tick(MIDNIGHT + MIN)));
    assert!(sim.tick(MIDNIGHT + MIN + 4 * MIN).is_empty());
    assert!(failed(&sim.tick(MIDNIGHT + MIN + 5 * MIN)));
    assert!(sim.state("a", "full").problem.is_none(), "still retrying");
    assert!(failed(&sim.tick(MIDNIGHT + 6 * MIN + 30 * MIN)));
    let st = sim.state("a", "full");
    let problem = st.problem.expect("a problem after the retries");
    assert!(
        problem.contains("4 scheduled full run(s) failed"),
        "{problem}"
    );
    assert!(sim.tick(MIDNIGHT + HOUR).is_empty(), "no more retries");

    // The disk is back: the next regular run succeeds and clears the problem.
    std::fs::create_dir_all(&dir).unwrap();
    sim.run_until(MIDNIGHT + DAY, 10 * MIN);
    let st = sim.state("a", "full");
    assert!(st.problem.is_none(), "{st:?}");
    assert_eq!(st.failures, 0);
    assert_eq!(st.last_outcome.as_deref(), Some("succeeded"));
}

#[test]
fn the_global_limit_queues_due_backups_and_the_archive_is_kept_running() {
    let tenants = ["t1", "t2", "t3", "t4", "t5"];
    let s = Strategy {
        archive: true,
        archive_interval_ms: Some(50),
        ..nightly(None, None)
    };
    let mut sim = Sim::new(
        &tenants,
        s,
        Limits {
            max_concurrent_backups: 2,
        },
    );
    let started = |e: &[Event]| {
        e.iter()
            .filter(|e| matches!(e, Event::Started { .. }))
            .count()
    };
    let first = sim.tick(MIDNIGHT);
    assert_eq!(started(&first), 2, "{first:?}");
    let archives = first
        .iter()
        .filter(|e| matches!(e, Event::ArchiveStarted { .. }))
        .count();
    assert_eq!(archives, 5);
    assert_eq!(started(&sim.tick(MIDNIGHT + 1000)), 2);
    assert_eq!(started(&sim.tick(MIDNIGHT + 2000)), 1);
    assert_eq!(started(&sim.tick(MIDNIGHT + 3000)), 0);
    // An archiver stopped by hand is started again while the strategy says archive.
    let id = sim.env.id("t3");
    sim.archivers.stop(id).unwrap();
    assert!(!sim.archivers.is_running(id));
    let events = sim.tick(MIDNIGHT + 4000);
    assert!(
        events.contains(&Event::ArchiveStarted { tenant_id: id }),
        "{events:?}"
    );
    assert!(sim.archivers.is_running(id));
    for t in tenants {
        sim.archivers.stop(sim.env.id(t)).unwrap();
    }
}

#[test]
fn the_global_io_budget_paces_all_jobs_together() {
    let env = Env::new();
    for (n, t) in ["a", "b"].iter().enumerate() {
        env.store
            .create_tenant(t, TenantOptions::default())
            .unwrap();
        populate(&env.store, t, n as u64, 400);
    }
    // Two full backups at once: how many bytes they throttle, and how long they take.
    let both = |env: &Env| {
        let t = std::time::Instant::now();
        let jobs: Vec<_> = ["a", "b"]
            .iter()
            .map(|t| env.start_backup(t).unwrap())
            .collect();
        for j in &jobs {
            env.jobs().start(j.id).unwrap();
        }
        let mut bytes = 0;
        for j in jobs {
            let done = env.wait_for(j.id, |r| r.state.is_final());
            assert_eq!(
                done.state,
                tenet_jobs::JobState::Succeeded,
                "{:?}",
                done.error
            );
            bytes += done.progress.io_bytes;
        }
        (bytes, t.elapsed())
    };
    let (bytes, free) = both(&env);
    assert!(bytes > 0);
    // A budget of a third of that per second: the two together need about 3 s, less
    // the burst the bucket starts with.
    let budget = bytes / 3;
    env.jobs().set_io_budget(Some(budget));
    assert_eq!(env.jobs().io_budget(), Some(budget));
    let (bytes2, paced) = both(&env);
    let burst = budget as f64 * tenet_jobs::BURST.as_secs_f64();
    let floor = Duration::from_secs_f64((bytes2 as f64 - burst) / budget as f64);
    assert!(
        paced + Duration::from_millis(100) >= floor,
        "{paced:?} for {bytes2} bytes at {budget} B/s (unpaced {free:?})"
    );
    assert!(paced > free, "{paced:?} vs {free:?}");
    env.jobs().set_io_budget(None);
}
