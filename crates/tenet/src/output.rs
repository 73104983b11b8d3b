//! Printing results: aligned tables for people, JSON for scripts (`--json`), and errors.

use serde::Serialize;
use tenet_server::api::Commit;
use tenet_server::error::ApiError;

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
            code: "INVALID_ARGUMENT".into(),
            message: message.into(),
        }
    }

    pub fn other(e: impl std::fmt::Display) -> Self {
        CliError {
            code: "ERROR".into(),
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
        eprintln!("error: {} [{}]", e.message, e.code);
    }
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
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "null".into(),
        other => other.to_string(),
    }
}
