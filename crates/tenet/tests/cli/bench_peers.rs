//! `scripts/bench-peers` end to end on a tiny data set: Tenet's full backup and restore
//! of one tenant against `pg_dump`/`pg_restore` (custom and directory formats) and
//! pgBackRest, with the debug `tenet` binary this suite builds.
//!
//! The script installs PostgreSQL and pgBackRest with apt when they are missing; where
//! it cannot, it prints `SKIPPED: …` naming what is missing and exits 0, and the test
//! checks that message — unless `TENET_PEER_BENCH=require`, when the script exits
//! non-zero and the test fails.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

const TOOLS: [&str; 4] = ["tenet", "pg_dump", "pg_dump_dir", "pgbackrest"];

#[test]
fn bench_peers_compares_every_tool_on_a_tiny_tenant() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench-peers");
    let started = Instant::now();
    let out = Command::new(&script)
        .args(["--mib", "2", "--rounds", "2", "--json", "--tenet"])
        .arg(crate::common::bin())
        .output()
        .expect("run scripts/bench-peers (python3)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let require = std::env::var("TENET_PEER_BENCH").as_deref() == Ok("require");
    assert!(
        out.status.success(),
        "bench-peers failed ({}; TENET_PEER_BENCH=require: {require}):\n{stdout}\n{stderr}",
        out.status
    );

    if let Some(skip) = stdout.lines().find(|l| l.starts_with("SKIPPED: ")) {
        assert!(!require, "skipped although required: {skip}");
        // It names what is missing and how to install it.
        assert!(
            ["initdb", "pg_ctl", "pgbackrest", "postgres"]
                .iter()
                .any(|t| skip.contains(t))
                && skip.contains("missing")
                && skip.contains("apt-get install"),
            "{skip}"
        );
        eprintln!("{skip}");
        return;
    }

    // The table: a row per tool, the ratios, the four targets, what each tool does.
    for label in [
        "Tenet ",
        "pg_dump -Fc ",
        "pg_dump -Fd -j 2 ",
        "pgBackRest zst p2 ",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(label)),
            "no row for {label}:\n{stdout}"
        );
    }
    let verdicts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("PASS ") || l.starts_with("FAIL "))
        .collect();
    assert_eq!(verdicts.len(), 4, "{stdout}");
    assert!(
        stdout.contains("What each does that the others do not"),
        "{stdout}"
    );

    // The figures, as JSON on the last line.
    let json: Value = serde_json::from_str(stdout.lines().last().unwrap()).expect("the JSON line");
    assert_eq!(json["rows"], 2048, "{json}");
    let runs = json["runs"].as_array().unwrap();
    for tool in TOOLS {
        let of_tool: Vec<&Value> = runs.iter().filter(|r| r["tool"] == tool).collect();
        // Tenet runs once per round of each of the three pairs.
        let want = if tool == "tenet" { 6 } else { 2 };
        assert_eq!(of_tool.len(), want, "{tool}: {json}");
        for r in of_tool {
            for phase in ["backup", "restore"] {
                let p = &r[phase];
                for field in ["secs", "mib_per_sec", "peak_rss_mib"] {
                    assert!(
                        p[field].as_f64().unwrap() > 0.0,
                        "{tool} {phase} {field}: {r}"
                    );
                }
                // A command on 2 MiB may use less CPU than `time` shows (0.00 s).
                assert!(
                    p["cpu_client_secs"].as_f64().unwrap() >= 0.0,
                    "{tool} {phase} cpu_client_secs: {r}"
                );
                if tool != "tenet" {
                    assert!(p["cpu_server_secs"].as_f64().unwrap() >= 0.0, "{r}");
                }
            }
            assert!(r["backup"]["size_bytes"].as_u64().unwrap() > 0, "{r}");
        }
    }
    // ABBA: Tenet first in round 1, the peer first in round 2.
    let first = |tool: &str, round: u64| {
        runs.iter()
            .find(|r| r["tool"] == tool && r["round"] == round)
            .map(|r| r["first_in_round"] == true)
    };
    assert_eq!(first("pg_dump", 1), Some(false));
    assert_eq!(first("pg_dump", 2), Some(true));
    assert_eq!(json["targets"].as_array().unwrap().len(), 4);
    eprintln!(
        "bench-peers on 2 MiB: {:.1} s\n{stdout}",
        started.elapsed().as_secs_f64()
    );
}
