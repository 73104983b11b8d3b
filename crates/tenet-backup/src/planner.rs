//! The restore planner: a pure function from what a repository holds (full backups
//! and log ranges) and a target to the inputs of a restore, or an error that says what
//! is available.
//!
//! A full backup restores the state at its F. A log range `(start, end]` (an archived
//! segment or an incremental backup) holds every commit with `start < ts ≤ end`.
//! The state at T is restorable iff some full has F ≤ T and log ranges cover (F, T]
//! without a hole. The planner picks the newest such full (least log to replay) and the
//! ranges that cover (F, T], in order, preferring the range that reaches furthest at
//! each step (ranges may overlap: an archiver that resumed re-uploads a little).

use serde::{Deserialize, Serialize};

use tenet_store::Ts;

/// A full backup: the state at `ts` (F).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FullPoint {
    pub backup_id: String,
    pub ts: Ts,
}

/// A log range `(start, end]` and the object holding it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRange {
    pub key: String,
    pub start: Ts,
    pub end: Ts,
    /// The object's size (0 where unknown).
    #[serde(default)]
    pub bytes: u64,
}

/// What to restore to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The state at this ts (every commit ≤ ts).
    At(Ts),
    /// The newest restorable state.
    Latest,
    /// The state a backup holds (its F).
    Backup(String),
    /// The state just before the commit at this ts.
    BeforeCommit(Ts),
}

/// The inputs of a restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub full: FullPoint,
    /// The state restored: every commit ≤ this.
    pub target: Ts,
    /// Log ranges to replay after the full, in order; together they cover (F, target].
    pub logs: Vec<LogRange>,
}

/// A restorable range `[from, to]`: every ts in it can be restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restorable {
    pub from: Ts,
    pub to: Ts,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("there are no full backups of this tenant; take one with `tenet backup full`")]
    NoBackups,
    #[error("no backup `{0}` of this tenant")]
    UnknownBackup(String),
    #[error("{target} ({}) is in the future; the current time is {}", .target.to_rfc3339(), .now.to_rfc3339())]
    Future { target: Ts, now: Ts },
    #[error("{target} ({}) is before the first full backup; restorable: {}", .target.to_rfc3339(), describe(.available))]
    BeforeFirst {
        target: Ts,
        available: Vec<Restorable>,
    },
    #[error("{target} ({}) is not archived yet: the log is archived up to {} ({archived_to}); retry shortly if the archiver is running (or take an incremental backup), or restore to an earlier time; restorable: {}", .target.to_rfc3339(), .archived_to.to_rfc3339(), describe(.available))]
    NotArchivedYet {
        target: Ts,
        archived_to: Ts,
        available: Vec<Restorable>,
    },
    #[error("{target} ({}) is not covered: the log has a gap after {gap_from} ({}); restorable: {}", .target.to_rfc3339(), .gap_from.to_rfc3339(), describe(.available))]
    Gap {
        target: Ts,
        gap_from: Ts,
        available: Vec<Restorable>,
    },
}

fn describe(ranges: &[Restorable]) -> String {
    if ranges.is_empty() {
        return "nothing".into();
    }
    ranges
        .iter()
        .map(|r| {
            if r.from == r.to {
                format!("{} ({})", r.to.to_rfc3339(), r.to)
            } else {
                format!("{} … {}", r.from.to_rfc3339(), r.to.to_rfc3339())
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Walks the log from `from`: the ranges that extend coverage, furthest-reaching
/// first, and the end of contiguous coverage (a standby follows its source with it).
pub fn cover(from: Ts, until: Ts, logs: &[LogRange]) -> (Vec<LogRange>, Ts) {
    let mut at = from;
    let mut used = Vec::new();
    while at < until {
        let next = logs
            .iter()
            .filter(|l| l.start <= at && l.end > at)
            .max_by_key(|l| (l.end, std::cmp::Reverse(l.key.clone())));
        match next {
            Some(l) => {
                at = l.end;
                used.push(l.clone());
            }
            None => break,
        }
    }
    (used, at)
}

/// Every restorable range, oldest first (overlapping ranges merged).
pub fn restore_points(fulls: &[FullPoint], logs: &[LogRange]) -> Vec<Restorable> {
    let mut ranges: Vec<Restorable> = fulls
        .iter()
        .map(|f| Restorable {
            from: f.ts,
            to: cover(f.ts, Ts::MAX, logs).1,
        })
        .collect();
    ranges.sort_by_key(|r| (r.from, r.to));
    let mut merged: Vec<Restorable> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.from <= last.to => last.to = last.to.max(r.to),
            _ => merged.push(r),
        }
    }
    merged
}

/// Plans a restore to `target`, given the time `now` (targets past it are refused).
pub fn plan(
    fulls: &[FullPoint],
    logs: &[LogRange],
    target: &Target,
    now: Ts,
) -> Result<Plan, PlanError> {
    if fulls.is_empty() {
        return Err(PlanError::NoBackups);
    }
    let available = restore_points(fulls, logs);
    let t = match target {
        Target::At(t) => *t,
        Target::BeforeCommit(t) => t.prev(),
        Target::Backup(id) => {
            let f = fulls
                .iter()
                .find(|f| &f.backup_id == id)
                .ok_or_else(|| PlanError::UnknownBackup(id.clone()))?;
            return Ok(Plan {
                full: f.clone(),
                target: f.ts,
                logs: Vec::new(),
            });
        }
        Target::Latest => available.iter().map(|r| r.to).max().unwrap_or(Ts::ZERO),
    };
    if t > now {
        return Err(PlanError::Future { target: t, now });
    }
    let Some(full) = fulls.iter().filter(|f| f.ts <= t).max_by_key(|f| f.ts) else {
        return Err(PlanError::BeforeFirst {
            target: t,
            available,
        });
    };
    let (used, reached) = cover(full.ts, t, logs);
    // Nothing after the end of coverage: the log is simply not archived that far yet.
    if reached < t && !logs.iter().any(|l| l.end > reached) {
        return Err(PlanError::NotArchivedYet {
            target: t,
            archived_to: reached,
            available,
        });
    }
    if reached < t {
        return Err(PlanError::Gap {
            target: t,
            gap_from: reached,
            available,
        });
    }
    Ok(Plan {
        full: full.clone(),
        target: t,
        logs: used,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(id: &str, ts: u64) -> FullPoint {
        FullPoint {
            backup_id: id.into(),
            ts: Ts(ts),
        }
    }

    fn log(start: u64, end: u64) -> LogRange {
        LogRange {
            key: format!("{start}-{end}"),
            start: Ts(start),
            end: Ts(end),
            bytes: 0,
        }
    }

    const NOW: Ts = Ts(10_000);

    #[test]
    fn exactly_at_f_needs_no_log() {
        let p = plan(&[full("a", 100)], &[], &Target::At(Ts(100)), NOW).unwrap();
        assert_eq!(
            (p.full.backup_id.as_str(), p.target, p.logs.len()),
            ("a", Ts(100), 0)
        );
    }

    #[test]
    fn newest_full_and_contiguous_segments() {
        let fulls = [full("a", 100), full("b", 300)];
        let logs = [log(100, 200), log(200, 300), log(300, 350), log(350, 500)];
        let p = plan(&fulls, &logs, &Target::At(Ts(400)), NOW).unwrap();
        assert_eq!(p.full.backup_id, "b");
        assert_eq!(p.logs, vec![log(300, 350), log(350, 500)]);
        // Between the fulls: the older full plus its log.
        let p = plan(&fulls, &logs, &Target::At(Ts(250)), NOW).unwrap();
        assert_eq!(p.full.backup_id, "a");
        assert_eq!(p.logs, vec![log(100, 200), log(200, 300)]);
        // Latest = the end of coverage; before-commit = one tick earlier.
        let p = plan(&fulls, &logs, &Target::Latest, NOW).unwrap();
        assert_eq!(p.target, Ts(500));
        let p = plan(&fulls, &logs, &Target::BeforeCommit(Ts(320)), NOW).unwrap();
        assert_eq!(p.target, Ts(319));
        assert_eq!(p.logs, vec![log(300, 350)]);
    }

    #[test]
    fn overlapping_ranges_and_chains_of_incrementals() {
        // A full, then incrementals (100,150], (150,220], (220,300], and archived
        // segments overlapping them (an archiver that resumed).
        let fulls = [full("f", 100)];
        let logs = [
            log(100, 150),
            log(150, 220),
            log(120, 180),
            log(220, 300),
            log(170, 260),
        ];
        let p = plan(&fulls, &logs, &Target::At(Ts(290)), NOW).unwrap();
        let reached = p.logs.iter().map(|l| l.end).max().unwrap();
        assert!(reached >= Ts(290));
        // Contiguous and in order.
        let mut at = Ts(100);
        for l in &p.logs {
            assert!(l.start <= at && l.end > at, "{l:?} after {at}");
            at = l.end;
        }
    }

    #[test]
    fn gaps_future_and_before_first_are_refused_with_what_is_available() {
        let fulls = [full("a", 100), full("b", 600)];
        let logs = [log(100, 200), log(250, 400), log(600, 700)];
        let e = plan(&fulls, &logs, &Target::At(Ts(300)), NOW).unwrap_err();
        assert_eq!(
            e,
            PlanError::Gap {
                target: Ts(300),
                gap_from: Ts(200),
                available: vec![
                    Restorable {
                        from: Ts(100),
                        to: Ts(200)
                    },
                    Restorable {
                        from: Ts(600),
                        to: Ts(700)
                    },
                ],
            }
        );
        assert!(e.to_string().contains("gap after 200"), "{e}");
        // Exactly at the end of coverage is fine, one tick past is not.
        assert!(plan(&fulls, &logs, &Target::At(Ts(200)), NOW).is_ok());
        assert!(plan(&fulls, &logs, &Target::At(Ts(201)), NOW).is_err());
        let e = plan(&fulls, &logs, &Target::At(Ts(50)), NOW).unwrap_err();
        assert!(matches!(e, PlanError::BeforeFirst { .. }), "{e}");
        let e = plan(&fulls, &logs, &Target::At(Ts(20_000)), NOW).unwrap_err();
        assert!(matches!(e, PlanError::Future { .. }), "{e}");
        assert_eq!(
            plan(&[], &logs, &Target::Latest, NOW).unwrap_err(),
            PlanError::NoBackups
        );
        assert_eq!(
            plan(&fulls, &logs, &Target::Backup("zzz".into()), NOW).unwrap_err(),
            PlanError::UnknownBackup("zzz".into())
        );
        let p = plan(&fulls, &logs, &Target::Backup("a".into()), NOW).unwrap();
        assert_eq!((p.target, p.logs.len()), (Ts(100), 0));
    }

    #[test]
    fn a_target_past_the_end_of_the_archive_is_not_yet_archived_not_a_gap() {
        let fulls = [full("a", 100)];
        let logs = [log(100, 200), log(200, 300)];
        let e = plan(&fulls, &logs, &Target::At(Ts(350)), NOW).unwrap_err();
        assert!(
            matches!(
                e,
                PlanError::NotArchivedYet {
                    archived_to: Ts(300),
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("archived up to") && msg.contains("retry shortly"),
            "{msg}"
        );
        assert!(!msg.contains("gap"), "{msg}");
        // A hole followed by later log is a gap.
        let logs = [log(100, 200), log(250, 300)];
        let e = plan(&fulls, &logs, &Target::At(Ts(280)), NOW).unwrap_err();
        assert!(matches!(e, PlanError::Gap { .. }), "{e:?}");
    }

    #[test]
    fn restore_points_merge() {
        let fulls = [full("a", 100), full("b", 150), full("c", 900)];
        let logs = [log(100, 200), log(150, 400)];
        assert_eq!(
            restore_points(&fulls, &logs),
            vec![
                Restorable {
                    from: Ts(100),
                    to: Ts(400)
                },
                Restorable {
                    from: Ts(900),
                    to: Ts(900)
                },
            ]
        );
    }
}
