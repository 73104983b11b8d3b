//! Durations on the command line: `250ms`, `90`, `90s`, `15m`, `1h`, `7d`.

use std::time::Duration;

pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; write e.g. 90s, 15m, 1h or 7d"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("unknown unit in `{s}`; use ms, s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        assert_eq!(super::parse("90").unwrap().as_secs(), 90);
        assert_eq!(super::parse("15m").unwrap().as_secs(), 900);
        assert_eq!(super::parse("1h").unwrap().as_secs(), 3600);
        assert_eq!(super::parse("250ms").unwrap().as_millis(), 250);
        assert!(super::parse("1y").is_err());
        assert!(super::parse("h").is_err());
    }
}
