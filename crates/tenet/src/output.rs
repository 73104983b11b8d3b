//! Printing results: aligned tables for people, JSON for scripts (`--json`), and errors.

use serde::Serialize;
use tenet_server::api::Commit;
use tenet_server::error::ApiError;
use tenet_store::Code;

/// An error of a CLI command: an API error (same code and message in both modes) or a
/// local one (bad file, I/O).
#[derive(Debug)]
pub struct CliError {
    pub code: String,
    pub message: String,
}

impl CliError {
    pub fn invalid(message: impl Into<String>) -> Self {
        CliError {
            code: Code::INVALID_ARGUMENT.as_str().into(),
            message: message.into(),
        }
    }

    pub fn other(e: impl std::fmt::Display) -> Self {
        CliError {
            code: Code::INTERNAL.as_str().into(),
            message: e.to_string(),
        }
    }
}

impl From<ApiError> for CliError {
    fn from(e: ApiError) -> Self {
        CliError {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<tenet_store::Error> for CliError {
    fn from(e: tenet_store::Error) -> Self {
        ApiError::from(e).into()
    }
}

pub fn print_error(e: &CliError, json: bool) {
    if json {
        eprintln!(
            "{}",
            serde_json::json!({"code": e.code, "message": e.message})
        );
    } else {
        eprintln!("error: {} [{}]", escape_controls(&e.message), e.code);
    }
}

/// `s` with control characters (and invisible direction overrides) written as escapes:
/// newline as `\n`, ESC as `\x1b`, …, so text from arguments or data cannot move the
/// cursor, recolour the terminal or split a one-line message.
pub fn escape_controls(s: &str) -> String {
    escape_controls_but(s, &[])
}

/// [`escape_controls`], leaving the characters in `keep` as they are.
pub fn escape_controls_but(s: &str, keep: &[char]) -> String {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(|c| hidden(c) && !keep.contains(&c)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if keep.contains(&c) || !hidden(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out
}

/// A byte count in adaptive binary units: `512 B`, `1.50 KiB`, `3.25 MiB`, `1.00 GiB`.
pub fn size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// A rate: `1.50 MiB/s`.
pub fn rate(bytes_per_sec: u64) -> String {
    format!("{}/s", size(bytes_per_sec))
}

/// A duration for people: `1s 500ms`, `45s`, `1m 30s`, `2h`, `1day 2h` (milliseconds
/// under a minute, whole seconds above).
pub fn duration(d: std::time::Duration) -> String {
    let d = if d.as_secs() < 60 {
        std::time::Duration::from_millis(d.as_millis() as u64)
    } else {
        std::time::Duration::from_secs(d.as_secs())
    };
    humantime::format_duration(d).to_string()
}

/// [`duration`] of whole seconds.
pub fn secs(n: u64) -> String {
    duration(std::time::Duration::from_secs(n))
}

/// `n` and the noun, singular or plural: `1 file`, `0 files`, `2 rows`.
pub fn count(n: impl Into<u64>, singular: &str, plural: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("responses serialize")
    );
}

/// `commit_ts 123 (2026-11-23T14:02:59.123Z)`
pub fn commit_line(c: &Commit) -> String {
    format!("commit_ts {} ({})", c.commit_ts, c.commit_time)
}

/// Prints rows as a table with a header, columns padded to their widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape_controls(c)).collect())
        .collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// A JSON value as a compact cell (strings without quotes).
pub fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => escape_controls(s),
        serde_json::Value::Null => "null".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped() {
        assert_eq!(escape_controls("a\u{1b}[31mb\nc"), "a\\x1b[31mb\\nc");
        assert_eq!(
            escape_controls("tab\there\u{202e}x"),
            "tab\\there\\u{202e}x"
        );
        assert_eq!(escape_controls("plain `name` é"), "plain `name` é");
        assert_eq!(escape_controls_but("a\nb\u{7}", &['\n']), "a\nb\\x07");
    }

    #[test]
    fn human_units() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.50 KiB");
        assert_eq!(size(3 << 20), "3.00 MiB");
        assert_eq!(rate(2 << 20), "2.00 MiB/s");
        assert_eq!(duration(std::time::Duration::from_secs(7200)), "2h");
        assert_eq!(duration(std::time::Duration::from_secs(90)), "1m 30s");
        assert_eq!(duration(std::time::Duration::from_millis(1500)), "1s 500ms");
        assert_eq!(duration(std::time::Duration::from_millis(61_500)), "1m 1s");
        assert_eq!(secs(0), "0s");
        assert_eq!(count(1u64, "file", "files"), "1 file");
        assert_eq!(count(0u64, "file", "files"), "0 files");
    }
}
