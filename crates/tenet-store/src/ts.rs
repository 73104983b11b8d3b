//! Commit timestamps: a 64-bit hybrid logical clock value `(unix_millis << 16) | logical`.
//!
//! A [`Ts`] maps to wall-clock time by its upper 48 bits. Parsing a wall-clock time gives
//! the *last* ts of that millisecond, so "as of 14:02:59.123" includes every commit made
//! during that millisecond.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Bits of a ts used by the logical counter.
pub const LOGICAL_BITS: u32 = 16;

/// A commit timestamp.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Ts(pub u64);

impl Ts {
    pub const ZERO: Ts = Ts(0);
    pub const MAX: Ts = Ts(u64::MAX);

    /// The first ts of a millisecond.
    pub fn from_millis(millis: u64) -> Ts {
        Ts(millis << LOGICAL_BITS)
    }

    /// The last ts of a millisecond.
    pub fn end_of_millis(millis: u64) -> Ts {
        Ts((millis << LOGICAL_BITS) | ((1 << LOGICAL_BITS) - 1))
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    pub fn prev(self) -> Ts {
        Ts(self.0.saturating_sub(1))
    }

    pub fn next(self) -> Ts {
        Ts(self.0.saturating_add(1))
    }

    /// Wall-clock time of this ts, with millisecond precision.
    pub fn to_datetime(self) -> DateTime<Utc> {
        i64::try_from(self.millis())
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// RFC 3339 form, e.g. `2026-11-23T14:02:59.123Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Parses an RFC 3339 time into the last ts of its millisecond.
    pub fn parse_rfc3339(s: &str) -> Result<Ts> {
        let dt = DateTime::parse_from_rfc3339(s).map_err(|e| {
            let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .any(|f| chrono::NaiveDateTime::parse_from_str(s, f).is_ok());
            if naive {
                Error::InvalidArgument(format!(
                    "`{s}` has no time zone; add Z or an offset, e.g. {s}Z or {s}+01:00"
                ))
            } else if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() {
                Error::InvalidArgument(format!(
                    "`{s}` is a date without a time; write e.g. {s}T00:00:00Z"
                ))
            } else {
                Error::InvalidArgument(format!(
                    "`{s}` is not an RFC 3339 time ({e}); expected e.g. 2026-11-23T14:02:59Z"
                ))
            }
        })?;
        let millis = u64::try_from(dt.timestamp_millis())
            .map_err(|_| Error::InvalidArgument(format!("`{s}` is before 1970-01-01T00:00:00Z")))?;
        Ok(Ts::end_of_millis(millis))
    }

    /// The smallest ts a store's clock can issue: one of 2000-01-01T00:00:00Z. A smaller
    /// number is a unit mistake (unix seconds or milliseconds), not a commit ts.
    pub const MIN_PLAUSIBLE: Ts = Ts(946_684_800_000 << LOGICAL_BITS);

    /// A number given as a commit ts: refused when it is too small to be one, saying
    /// what it looks like (unix seconds, milliseconds, microseconds).
    pub fn from_number(n: u64) -> Result<Ts> {
        if n >= Ts::MIN_PLAUSIBLE.0 {
            return Ok(Ts(n));
        }
        let (unit, millis) = match n {
            100_000_000..=99_999_999_999 => ("unix seconds", n.saturating_mul(1000)),
            100_000_000_000..=99_999_999_999_999 => ("unix milliseconds", n),
            100_000_000_000_000..=99_999_999_999_999_999 => ("unix microseconds", n / 1000),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "{n} is too small to be a commit ts (a commit ts is the unix time in \
                     milliseconds shifted left by 16 bits, e.g. {}); write a time as \
                     2026-11-23T14:02:59Z",
                    Ts::MIN_PLAUSIBLE.0
                )))
            }
        };
        let time = Ts::from_millis(millis).to_datetime();
        let time = time.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        Err(Error::InvalidArgument(format!(
            "{n} looks like {unit} ({time}); a commit ts looks like {} (that time's); \
             write a time as {time}",
            Ts::from_millis(millis).0
        )))
    }

    /// Parses either a decimal commit ts or an RFC 3339 time.
    pub fn parse(s: &str) -> Result<Ts> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let n = s.parse::<u64>().map_err(|_| {
                Error::InvalidArgument(format!("timestamp `{s}` does not fit in 64 bits"))
            })?;
            return Ts::from_number(n);
        }
        Ts::parse_rfc3339(s)
    }

    /// Parses an exact commit ts (decimal). A time is refused with the way to say it.
    pub fn parse_commit(s: &str) -> Result<Ts> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return Ts::parse(s);
        }
        crate::AsOf::parse(s)?;
        Err(Error::InvalidArgument(format!(
            "`{s}` is a time, not a commit ts; use --to {s} to restore the state at a time, \
             or give the commit ts of the commit to undo (`commit_ts` in the output of \
             `tenet … --json`)"
        )))
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_the_millisecond() {
        let ts = Ts((1_763_900_000_123 << LOGICAL_BITS) | 42);
        let s = ts.to_rfc3339();
        assert_eq!(s, "2025-11-23T12:13:20.123Z");
        let back = Ts::parse(&s).unwrap();
        assert_eq!(back.millis(), ts.millis());
        assert!(back >= ts, "parsed time covers the whole millisecond");
        assert_eq!(
            Ts::parse("115584906813145088").unwrap(),
            Ts(115584906813145088)
        );
        assert!(Ts::parse("yesterday").is_err());
        assert!(Ts::parse("1969-12-31T23:59:59Z").is_err());
        assert!(Ts::parse("99999999999999999999999").is_err());
    }

    #[test]
    fn unit_mistakes_say_what_was_meant() {
        let e = Ts::parse("1732370000").unwrap_err().to_string();
        assert!(
            e.starts_with("1732370000 looks like unix seconds (2024-11-23T13:53:20Z); a commit ts looks like 113532600320000000")
                && e.ends_with("write a time as 2024-11-23T13:53:20Z"),
            "{e}"
        );
        let e = Ts::parse("1732370000123").unwrap_err().to_string();
        assert!(
            e.contains("unix milliseconds (2024-11-23T13:53:20.123Z)"),
            "{e}"
        );
        let e = Ts::parse("42").unwrap_err().to_string();
        assert!(e.contains("too small to be a commit ts"), "{e}");
        let e = Ts::parse("2026-11-23T14:02:59").unwrap_err().to_string();
        assert!(e.contains("has no time zone; add Z or an offset"), "{e}");
        let e = Ts::parse("2026-11-23").unwrap_err().to_string();
        assert!(e.contains("a date without a time"), "{e}");
        let e = Ts::parse_commit("2026-11-23T14:02:59Z")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is a time, not a commit ts; use --to 2026-11-23T14:02:59Z"),
            "{e}"
        );
        assert!(Ts::parse_commit("-5m")
            .unwrap_err()
            .to_string()
            .contains("is a time"));
        assert!(Ts::parse_commit("1732370000")
            .unwrap_err()
            .to_string()
            .contains("unix seconds"));
        assert_eq!(
            Ts::parse_commit("115584906813145088").unwrap(),
            Ts(115584906813145088)
        );
    }
}
