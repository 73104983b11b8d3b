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
            Error::InvalidArgument(format!(
                "`{s}` is not an RFC 3339 time ({e}); expected e.g. 2026-11-23T14:02:59Z"
            ))
        })?;
        let millis = u64::try_from(dt.timestamp_millis())
            .map_err(|_| Error::InvalidArgument(format!("`{s}` is before 1970-01-01T00:00:00Z")))?;
        Ok(Ts::end_of_millis(millis))
    }

    /// Parses either a decimal ts or an RFC 3339 time.
    pub fn parse(s: &str) -> Result<Ts> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse::<u64>().map(Ts).map_err(|_| {
                Error::InvalidArgument(format!("timestamp `{s}` does not fit in 64 bits"))
            });
        }
        Ts::parse_rfc3339(s)
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
        assert_eq!(Ts::parse("12345").unwrap(), Ts(12345));
        assert!(Ts::parse("yesterday").is_err());
        assert!(Ts::parse("1969-12-31T23:59:59Z").is_err());
        assert!(Ts::parse("99999999999999999999999").is_err());
    }
}
