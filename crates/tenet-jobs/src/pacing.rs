//! Pacing: background jobs yield to the tenants' own work without a hand-set
//! throttle. `docs/architecture.md` ("Pacing") lists what draws from the budget and
//! what does not.
//!
//! The bytes jobs move are drawn from one budget all jobs share ([`Pacer::budget`]),
//! after the job's own `--throttle`, which stays a cap. A controller sets the
//! budget's rate every [`TICK`] from what the foreground feels: the latency of the
//! tenants' commits and point reads, and the commits under way, which the store
//! records ([`tenet_store::Foreground`]).
//!
//! - **Baseline.** While no job runs, quiet ticks are gathered until they hold
//!   [`MIN_SAMPLES`] operations, one quiet sample (mean and p99); the baseline is the
//!   median of the last [`QUIET_KEEP`]. While jobs run for long, or when there is no
//!   baseline yet, the controller *probes*: it pauses the budget, lets one tick settle,
//!   measures until [`MIN_SAMPLES`] operations or [`PROBE_MAX_TICKS`], resumes, and
//!   starts the baseline again from what it measured — at most every [`REPROBE`]
//!   while it has one, with a growing retry while probes see too little.
//! - **Decisions**, once [`MIN_SAMPLES`] foreground operations were seen: above
//!   [`SLOW_MEAN`]× the baseline's mean or [`SLOW_P99`]× its p99, the rate drops to
//!   [`DECREASE`]× the smaller of itself and twice what the jobs moved; under
//!   [`FAST_MEAN`]× and [`FAST_P99`]× it grows by a quarter plus [`STEP`] when the jobs
//!   use at least half of it; between the two it holds. Commits under way while
//!   hardly any end are a stall: harm. With no foreground at all (hardly any
//!   operation and none under way, or too few to judge within two seconds) the rate
//!   doubles each tick.
//! - **Bounds.** Never below a floor — 1/20 of the fastest rate jobs have moved since
//!   they last all stopped, at least [`MIN_FLOOR`] — so a job always finishes while the
//!   store is saturated; never above the operator's cap (`tenet serve --io-budget`).
//!   Above [`UNLIMITED`] the budget is lifted.
//!
//! CPU: the jobs' bulk work runs at a lower priority (`manager.rs`), so the foreground
//! wins the cores when both want them; the budget then paces the I/O and the work
//! that comes with it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use tenet_store::{LatencyWindow, Store};

use crate::throttle::Throttle;

/// How often the controller looks.
pub const TICK: Duration = Duration::from_millis(250);
/// Foreground operations needed before a decision (accumulated over ticks).
pub const MIN_SAMPLES: u64 = 200;
/// Ticks to accumulate samples before deciding the foreground is idle...
const IDLE_AFTER_TICKS: u32 = 8;
/// ...unless a tick saw fewer operations than this: then it is idle at once.
const FEW: u64 = 4;
/// Quiet samples the baseline is the median of.
pub const QUIET_KEEP: usize = 40;
/// How long a baseline learnt while jobs run lasts before the next probe.
pub const REPROBE: Duration = Duration::from_secs(30);
/// The least time between probes while there is no baseline (doubling, up to
/// [`REPROBE`], after each probe that saw too few operations).
const PROBE_RETRY: Duration = Duration::from_secs(2);
/// The longest probe, in ticks (one settles, the rest measure).
const PROBE_MAX_TICKS: u32 = 8;
/// Quiet ticks a quiet sample may gather over.
const QUIET_GATHER_TICKS: u32 = 40;
/// Limits of the foreground's slowdown: above them the jobs slow down...
pub const SLOW_MEAN: f64 = 1.15;
pub const SLOW_P99: f64 = 1.5;
/// ...and under these they may speed up.
pub const FAST_MEAN: f64 = 1.05;
pub const FAST_P99: f64 = 1.2;
/// The factor of a decrease.
pub const DECREASE: f64 = 0.7;
/// Additive part of an increase, bytes per second.
pub const STEP: f64 = 8.0 * 1024.0 * 1024.0;
/// The lowest floor, bytes per second.
pub const MIN_FLOOR: f64 = 2.0 * 1024.0 * 1024.0;
/// The rate a busy period starts at.
const START: f64 = 64.0 * 1024.0 * 1024.0;
/// Above this the budget is lifted.
pub const UNLIMITED: f64 = 8.0 * 1024.0 * 1024.0 * 1024.0;

/// What the controller is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PacingState {
    /// No job is running.
    #[default]
    Idle,
    /// Adaptive pacing is off: the budget is the operator's cap, if any.
    Fixed,
    /// Jobs run at full speed: the foreground does not feel them, or there is none.
    Free,
    /// Jobs are held to a rate for the foreground's sake.
    Slowed,
    /// Jobs are paused for a moment to measure the foreground alone.
    Probing,
}

/// The controller's state, for status and metrics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PacingStatus {
    pub adaptive: bool,
    pub state: PacingState,
    /// The budget's rate now (None: unlimited).
    pub rate_bytes_per_sec: Option<u64>,
    /// The operator's cap (None: none).
    pub cap_bytes_per_sec: Option<u64>,
    pub floor_bytes_per_sec: u64,
    /// What jobs moved through the budget in the last tick, per second.
    pub moved_bytes_per_sec: u64,
    /// The foreground's commit latency in the last decision, and its baseline (µs).
    pub commit_p99_micros: Option<u64>,
    pub commit_baseline_p99_micros: Option<u64>,
    pub read_p99_micros: Option<u64>,
    pub read_baseline_p99_micros: Option<u64>,
}

/// Mean and p99 of one window, in µs.
#[derive(Clone, Copy, Debug)]
struct Sample {
    mean: f64,
    p99: f64,
}

impl Sample {
    fn of(w: &LatencyWindow) -> Option<Sample> {
        (w.count() >= MIN_SAMPLES).then(|| Sample {
            mean: w.mean_micros(),
            p99: w.quantile_micros(0.99) as f64,
        })
    }
}

/// Foreground windows gathered over ticks until they hold enough to judge by.
#[derive(Debug, Default)]
struct Gathered {
    commits: LatencyWindow,
    reads: LatencyWindow,
    ticks: u32,
}

impl Gathered {
    fn add(&mut self, commits: &LatencyWindow, reads: &LatencyWindow) {
        self.commits.merge(commits);
        self.reads.merge(reads);
        self.ticks += 1;
    }

    /// Each kind's sample, once it holds [`MIN_SAMPLES`] operations.
    fn samples(&self) -> (Option<Sample>, Option<Sample>) {
        (Sample::of(&self.commits), Sample::of(&self.reads))
    }
}

/// Quiet samples of one kind of operation.
#[derive(Debug, Default)]
struct Baseline {
    quiet: VecDeque<Sample>,
}

impl Baseline {
    fn add(&mut self, s: Sample) {
        if self.quiet.len() == QUIET_KEEP {
            self.quiet.pop_front();
        }
        self.quiet.push_back(s);
    }

    fn median(&self) -> Option<Sample> {
        let mid = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        (!self.quiet.is_empty()).then(|| Sample {
            mean: mid(self.quiet.iter().map(|s| s.mean).collect()),
            p99: mid(self.quiet.iter().map(|s| s.p99).collect()),
        })
    }
}

/// What the store's meters saw in one tick.
struct Seen {
    commits: LatencyWindow,
    reads: LatencyWindow,
    /// Commits started and not yet ended when the tick looked.
    in_flight: u64,
}

/// The foreground's verdict over the samples of one decision.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    /// No foreground operations to speak of.
    Absent,
    /// No baseline to compare with.
    Unknown,
    Hurt,
    Fine,
    Between,
}

fn judge(now: Option<Sample>, base: Option<Sample>) -> Verdict {
    match (now, base) {
        (None, _) => Verdict::Absent,
        (Some(_), None) => Verdict::Unknown,
        (Some(n), Some(b)) => {
            let (mean, p99) = (n.mean / b.mean.max(1.0), n.p99 / b.p99.max(1.0));
            if mean > SLOW_MEAN || p99 > SLOW_P99 {
                Verdict::Hurt
            } else if mean < FAST_MEAN && p99 < FAST_P99 {
                Verdict::Fine
            } else {
                Verdict::Between
            }
        }
    }
}

/// The worse of two kinds' verdicts.
fn worse(a: Verdict, b: Verdict) -> Verdict {
    use Verdict::*;
    let rank = |v| match v {
        Absent => 0,
        Fine => 1,
        Between => 2,
        Unknown => 3,
        Hurt => 4,
    };
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

#[derive(Debug)]
struct Control {
    /// The controller's rate, bytes per second.
    rate: f64,
    last_taken: u64,
    last_tick: Instant,
    /// The fastest jobs have moved, bytes per second.
    peak: f64,
    moved: f64,
    commits: Baseline,
    reads: Baseline,
    /// Foreground windows gathered towards the next decision.
    pending: Gathered,
    /// When the baseline was last measured (quiet or probe).
    measured_at: Option<Instant>,
    /// Quiet windows gathered towards the next quiet sample.
    quiet: Gathered,
    /// A running probe (its first tick settles, the others are gathered); when the
    /// last began; how long until the next may (longer after probes that saw too
    /// little).
    probe: Option<Gathered>,
    probe_started: Option<Instant>,
    probe_retry: Duration,
    /// Consecutive ticks with no job.
    idle_ticks: u32,
    state: PacingState,
    last: (Option<Sample>, Option<Sample>),
}

/// The budget all jobs share and the controller that sets it.
#[derive(Debug)]
pub struct Pacer {
    budget: Throttle,
    /// The operator's cap, bytes per second; 0: none.
    cap: AtomicU64,
    adaptive: AtomicBool,
    control: Mutex<Control>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            budget: Throttle::new(None),
            cap: AtomicU64::new(0),
            adaptive: AtomicBool::new(true),
            control: Mutex::new(Control {
                rate: START,
                last_taken: 0,
                last_tick: Instant::now(),
                peak: 0.0,
                moved: 0.0,
                commits: Baseline::default(),
                reads: Baseline::default(),
                pending: Gathered::default(),
                measured_at: None,
                quiet: Gathered::default(),
                probe: None,
                probe_started: None,
                probe_retry: PROBE_RETRY,
                idle_ticks: 0,
                state: PacingState::Idle,
                last: (None, None),
            }),
        }
    }
}

impl Pacer {
    /// The budget jobs draw their bytes from.
    pub fn budget(&self) -> &Throttle {
        &self.budget
    }

    /// Sets the operator's cap (None: none). Without adaptive pacing it is the budget.
    pub fn set_cap(&self, bytes_per_sec: Option<u64>) {
        self.cap
            .store(bytes_per_sec.unwrap_or(0), Ordering::Relaxed);
        let c = self.control.lock();
        self.apply(&c);
    }

    pub fn cap(&self) -> Option<u64> {
        Some(self.cap.load(Ordering::Relaxed)).filter(|c| *c > 0)
    }

    /// Turns adaptive pacing on or off (on by default).
    pub fn set_adaptive(&self, on: bool) {
        self.adaptive.store(on, Ordering::Relaxed);
        let c = self.control.lock();
        self.apply(&c);
    }

    pub fn adaptive(&self) -> bool {
        self.adaptive.load(Ordering::Relaxed)
    }

    fn floor(&self, c: &Control) -> f64 {
        let floor = (c.peak / 20.0).max(MIN_FLOOR);
        match self.cap() {
            Some(cap) => floor.min(cap as f64),
            None => floor,
        }
    }

    /// Sets the budget's rate from the controller's (or the cap alone).
    fn apply(&self, c: &Control) {
        let cap = self.cap();
        let free = !self.adaptive() || c.state == PacingState::Idle || c.rate >= UNLIMITED;
        let rate = if free {
            cap
        } else {
            let r = c.rate as u64;
            Some(cap.map_or(r, |cap| cap.min(r)))
        };
        if self.budget.rate() != rate {
            self.budget.set_rate(rate);
        }
    }

    /// One step of the controller: `jobs` are running now; the store's meters are
    /// drained.
    pub fn tick(&self, store: &Store, jobs: usize) {
        let fg = store.foreground();
        let seen = Seen {
            commits: fg.commits.take(),
            reads: fg.reads.take(),
            in_flight: fg.commits_in_flight(),
        };
        let mut c = self.control.lock();
        let now = Instant::now();
        let dt = now.duration_since(c.last_tick).as_secs_f64().max(1e-3);
        let taken = self.budget.taken();
        c.moved = taken.saturating_sub(c.last_taken) as f64 / dt;
        c.last_taken = taken;
        c.last_tick = now;
        let traced = (seen.commits.count(), seen.commits.quantile_micros(0.99));
        self.step(&mut c, now, jobs, seen);
        self.apply(&c);
        tracing::trace!(
            jobs,
            state = ?c.state,
            rate_mib = c.rate / (1024.0 * 1024.0),
            moved_mib = c.moved / (1024.0 * 1024.0),
            commits = traced.0,
            commit_p99_us = traced.1,
            baseline_p99_us = c.commits.median().map(|b| b.p99),
            "pacing tick"
        );
    }

    fn step(&self, c: &mut Control, now: Instant, jobs: usize, seen: Seen) {
        let Seen {
            commits,
            reads,
            in_flight,
        } = seen;
        let ops = commits.count() + reads.count();
        if c.probe.is_some() {
            self.probe_tick(c, now, &commits, &reads);
            return;
        }
        if jobs == 0 && c.moved == 0.0 {
            c.idle_ticks += 1;
            c.state = PacingState::Idle;
            c.last = (None, None);
            c.peak = 0.0;
            // The next job starts gently if the tenants are working, else at full speed.
            c.rate = if ops >= FEW {
                c.rate.min(START)
            } else {
                UNLIMITED
            };
            // The first quiet tick may still feel the last job's work.
            if c.idle_ticks >= 2 {
                c.quiet.add(&commits, &reads);
                let (qc, qr) = c.quiet.samples();
                if let Some(s) = qc {
                    c.commits.add(s);
                    c.measured_at = Some(now);
                    c.quiet.commits = LatencyWindow::default();
                }
                if let Some(s) = qr {
                    c.reads.add(s);
                    c.measured_at = Some(now);
                    c.quiet.reads = LatencyWindow::default();
                }
                if c.quiet.ticks >= QUIET_GATHER_TICKS {
                    c.quiet = Gathered::default();
                }
            }
            c.pending = Gathered::default();
            return;
        }
        c.idle_ticks = 0;
        c.quiet = Gathered::default();
        if !self.adaptive() {
            c.state = PacingState::Fixed;
            return;
        }
        c.peak = c.peak.max(c.moved);
        // Operations that started and did not end are a foreground that waits, not one
        // that is absent.
        let stalled = ops < FEW && in_flight > 0;
        let absent = ops < FEW && in_flight == 0;
        c.pending.add(&commits, &reads);
        let (pc, pr) = c.pending.samples();
        let enough = pc.is_some() || pr.is_some() || c.pending.ticks >= IDLE_AFTER_TICKS;
        if !stalled && !absent && !enough {
            return;
        }
        c.pending = Gathered::default();
        c.last = (pc, pr);
        let verdict = if stalled {
            Verdict::Hurt
        } else if absent {
            Verdict::Absent
        } else {
            worse(judge(pc, c.commits.median()), judge(pr, c.reads.median()))
        };
        let stale = c
            .measured_at
            .is_none_or(|at| now.duration_since(at) > REPROBE);
        let may_probe = c
            .probe_started
            .is_none_or(|at| now.duration_since(at) > c.probe_retry);
        let wants_probe =
            matches!(verdict, Verdict::Unknown) || (stale && verdict != Verdict::Absent);
        if wants_probe && may_probe && !stalled {
            c.probe = Some(Gathered::default());
            c.probe_started = Some(now);
            c.state = PacingState::Probing;
            // Paused until the probe ends (the deadline only guards against a lost tick).
            self.budget.pause_until(now + TICK * (PROBE_MAX_TICKS + 2));
            return;
        }
        let floor = self.floor(c);
        match verdict {
            Verdict::Absent => c.rate = (c.rate * 2.0).min(UNLIMITED),
            Verdict::Hurt => c.rate = (c.rate.min(2.0 * c.moved) * DECREASE).max(floor),
            Verdict::Fine if c.moved >= 0.5 * c.rate => {
                c.rate = (c.rate * 1.25 + STEP).min(UNLIMITED)
            }
            // No baseline and no probe allowed yet: hold.
            Verdict::Fine | Verdict::Between | Verdict::Unknown => {}
        }
        c.rate = c.rate.max(floor);
        c.state = Self::running_state(c);
    }

    /// Slowed while the budget holds jobs to a rate, free when it does not.
    fn running_state(c: &Control) -> PacingState {
        if c.rate >= UNLIMITED {
            PacingState::Free
        } else {
            PacingState::Slowed
        }
    }

    /// One tick of a probe: the first lets work in flight settle; the next gather the
    /// foreground alone until a decision's worth of operations, or [`PROBE_MAX_TICKS`].
    fn probe_tick(
        &self,
        c: &mut Control,
        now: Instant,
        commits: &LatencyWindow,
        reads: &LatencyWindow,
    ) {
        let Some(probe) = c.probe.as_mut() else {
            return;
        };
        if probe.ticks == 0 {
            // The settling tick counts, its operations do not.
            probe.ticks = 1;
        } else {
            probe.add(commits, reads);
        }
        let (pc, pr) = probe.samples();
        if pc.is_none() && pr.is_none() && probe.ticks < PROBE_MAX_TICKS {
            return;
        }
        c.probe = None;
        self.budget.resume();
        if let Some(s) = pc {
            c.commits = Baseline::default();
            c.commits.add(s);
        }
        if let Some(s) = pr {
            c.reads = Baseline::default();
            c.reads.add(s);
        }
        if pc.is_some() || pr.is_some() {
            c.measured_at = Some(now);
            c.probe_retry = PROBE_RETRY;
        } else {
            // Too few operations to learn from: try again later, then less often.
            c.probe_retry = (c.probe_retry * 2).min(REPROBE);
        }
        c.pending = Gathered::default();
        c.state = Self::running_state(c);
    }

    pub fn status(&self) -> PacingStatus {
        let c = self.control.lock();
        let p99 = |s: Option<Sample>| s.map(|s| s.p99 as u64);
        PacingStatus {
            adaptive: self.adaptive(),
            state: c.state,
            rate_bytes_per_sec: self.budget.rate(),
            cap_bytes_per_sec: self.cap(),
            floor_bytes_per_sec: self.floor(&c) as u64,
            moved_bytes_per_sec: c.moved as u64,
            commit_p99_micros: p99(c.last.0),
            commit_baseline_p99_micros: p99(c.commits.median()),
            read_p99_micros: p99(c.last.1),
            read_baseline_p99_micros: p99(c.reads.median()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenet_store::LatencyMeter;

    fn window(n: u64, micros: u64) -> LatencyWindow {
        let m = LatencyMeter::default();
        for _ in 0..n {
            m.record(Duration::from_micros(micros));
        }
        m.take()
    }

    /// Runs one controller step with `jobs` running, `moved` bytes/s moved, the
    /// foreground's commits at `micros` each and `in_flight` commits under way.
    fn step_with(
        p: &Pacer,
        jobs: usize,
        moved: f64,
        commits: u64,
        micros: u64,
        in_flight: u64,
    ) -> PacingState {
        let mut c = p.control.lock();
        c.moved = moved;
        let seen = Seen {
            commits: window(commits, micros),
            reads: LatencyWindow::default(),
            in_flight,
        };
        p.step(&mut c, Instant::now(), jobs, seen);
        p.apply(&c);
        c.state
    }

    fn step(p: &Pacer, jobs: usize, moved: f64, commits: u64, micros: u64) -> PacingState {
        step_with(p, jobs, moved, commits, micros, 0)
    }

    #[test]
    fn slows_down_when_the_foreground_suffers_and_speeds_up_when_it_recovers() {
        let p = Pacer::default();
        // Quiet: the baseline is learnt (the first quiet tick is skipped).
        for _ in 0..5 {
            assert_eq!(step(&p, 0, 0.0, 500, 1000), PacingState::Idle);
        }
        assert_eq!(p.budget().rate(), None, "no budget while idle");
        // A job runs and commits take twice as long: the rate drops at each decision,
        // down to the floor and no further.
        let mut last = f64::MAX;
        for _ in 0..20 {
            let r = p.budget().rate().map_or(f64::MAX, |r| r as f64);
            step(&p, 1, r.min(400e6), 500, 2000);
            let now = p.budget().rate().unwrap() as f64;
            assert!(now <= last, "the rate rose while the foreground suffered");
            last = now;
        }
        let floor = p.status().floor_bytes_per_sec as f64;
        assert_eq!(last, floor);
        assert!(floor >= 400e6 / 20.0 - 1.0, "1/20 of the peak");
        assert_eq!(p.status().state, PacingState::Slowed);
        // Recovered: it grows again, while the jobs use what they get.
        for _ in 0..10 {
            let r = p.budget().rate().unwrap() as f64;
            step(&p, 1, r, 500, 1000);
        }
        assert!(p.budget().rate().unwrap() as f64 > 4.0 * floor);
        // No foreground at all: full speed soon.
        for _ in 0..(IDLE_AFTER_TICKS as usize * 8) {
            let r = p.budget().rate().map_or(1e9, |r| r as f64);
            step(&p, 1, r, 0, 0);
        }
        assert_eq!(p.budget().rate(), None);
        assert_eq!(p.status().state, PacingState::Free);

        // Commits that started and do not end are a stall, not an absent foreground.
        assert_eq!(step_with(&p, 1, 300e6, 0, 0, 4), PacingState::Slowed);
        assert!((p.budget().rate().unwrap() as f64) < UNLIMITED);
    }

    #[test]
    fn a_moderate_foreground_gathers_its_baseline_over_several_ticks() {
        let p = Pacer::default();
        // 60 commits a tick: no single tick is enough, four together are.
        for _ in 0..3 {
            step(&p, 0, 0.0, 60, 1000);
        }
        assert_eq!(p.status().commit_baseline_p99_micros, None);
        for _ in 0..3 {
            step(&p, 0, 0.0, 60, 1000);
        }
        assert_eq!(p.status().commit_baseline_p99_micros, Some(1023));
        // Jobs then decide on the same gathering, without probing.
        for _ in 0..3 {
            assert_ne!(step(&p, 1, 50e6, 60, 1000), PacingState::Probing);
        }
        // After the jobs, the peak they reached does not outlive them.
        step(&p, 0, 0.0, 60, 1000);
        assert_eq!(p.status().floor_bytes_per_sec, MIN_FLOOR as u64);
    }

    #[test]
    fn probes_for_a_baseline_and_respects_the_cap_and_the_switch() {
        let p = Pacer::default();
        p.set_cap(Some(50 << 20));
        // Jobs run from the start: no baseline, so the first decision is a probe.
        assert_eq!(step(&p, 1, 10e6, 500, 3000), PacingState::Probing);
        // One settling tick, then measured ones at the quiet latency until enough.
        assert_eq!(step(&p, 1, 0.0, 500, 3000), PacingState::Probing);
        assert_eq!(step(&p, 1, 0.0, 150, 1000), PacingState::Probing);
        assert_eq!(step(&p, 1, 0.0, 150, 1000), PacingState::Slowed);
        assert_eq!(p.status().commit_baseline_p99_micros, Some(1023));
        // Fine from now on: the rate grows but never past the cap.
        for _ in 0..30 {
            let r = p.budget().rate().unwrap() as f64;
            step(&p, 1, r, 500, 1000);
        }
        assert_eq!(p.budget().rate(), Some(50 << 20));
        // Off: the budget is the cap alone.
        p.set_adaptive(false);
        assert_eq!(step(&p, 1, 1e6, 500, 9000), PacingState::Fixed);
        assert_eq!(p.budget().rate(), Some(50 << 20));
        p.set_cap(None);
        assert_eq!(p.budget().rate(), None);
    }
}
