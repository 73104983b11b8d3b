//! Output that tells the truth and cannot be abused: control characters from arguments
//! are escaped in errors, a mistyped `--data-dir` creates nothing, time expressions.
//! Each check runs embedded and through `tenet serve` with the same result.

use std::path::Path;

use crate::common::{json_out, ok, stderr, stdout, tenet, Server};

/// Runs `f` against a fresh data directory embedded, then against one a server owns.
fn both_modes(f: impl Fn(&Path, &str)) {
    let dir = tempfile::tempdir().unwrap();
    f(dir.path(), "embedded");
    let dir = tempfile::tempdir().unwrap();
    let _server = Server::start(dir.path());
    f(dir.path(), "server");
}

#[test]
fn control_characters_in_arguments_are_escaped_in_errors() {
    both_modes(|dir, mode| {
        assert!(tenet(dir, &["tenant", "create", "acme"]).status.success());
        let evil = "x\u{1b}[31mred\nsecond line\u{7}";
        for args in [
            vec!["tenant", "show", evil],
            vec!["tenant", "create", evil],
            vec!["scan", "acme", evil],
            vec!["get", "acme", "t", "1", "--as-of", evil],
        ] {
            let o = tenet(dir, &args);
            assert!(!o.status.success(), "{mode} {args:?}");
            let err = stderr(&o);
            assert!(
                !err.chars().any(|c| c.is_control() && c != '\n'),
                "{mode} {args:?}: raw control characters in {err:?}"
            );
            assert_eq!(err.lines().count(), 1, "{mode} {args:?}: {err:?}");
            assert!(err.ends_with('\n'), "{mode} {args:?}: {err:?}");
            // (Through a server the newline is lost earlier: the URL of a path
            // segment drops it.)
            let in_path = args[..2] == ["tenant", "show"] || args[0] == "scan";
            let shown = if mode == "server" && in_path {
                r"x\x1b[31mredsecond line\x07"
            } else {
                r"x\x1b[31mred\nsecond line\x07"
            };
            assert!(err.contains(shown), "{mode} {args:?}: {err:?}");
        }
        // clap's own errors (an invalid value) carry no control characters either.
        let o = tenet(
            dir,
            &[
                "tenant",
                "create",
                "b",
                "--history-retention",
                "1\u{1b}[2J\u{7}",
            ],
        );
        assert!(!o.status.success());
        assert!(
            !stderr(&o).chars().any(|c| c.is_control() && c != '\n'),
            "{mode}: {:?}",
            stderr(&o)
        );
    });
}

#[test]
fn read_only_commands_never_create_a_store() {
    let root = tempfile::tempdir().unwrap();
    let typo = root.path().join("tenet-dta");
    let ts = "115584906813145088";
    let read_only: Vec<Vec<&str>> = vec![
        vec!["tenant", "list"],
        vec!["tenant", "show", "acme"],
        vec!["table", "list", "acme"],
        vec!["get", "acme", "t", "1"],
        vec!["scan", "acme", "t"],
        vec!["snapshot", "list", "acme"],
        vec!["backups", "list"],
        vec!["backups", "show", "b1"],
        vec!["jobs", "list"],
        vec!["jobs", "show", "1"],
        vec!["restore-points", "acme"],
        vec!["archive", "status", "acme"],
        vec!["put", "acme", "t", r#"{"id":1}"#],
        vec!["delete", "acme", "t", ts],
    ];
    for args in read_only {
        let o = tenet(&typo, &args);
        assert!(!o.status.success(), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(&format!("no Tenet store at {}", typo.display()))
                && err.contains("tenet tenant create")
                && err.contains("--data-dir")
                && err.contains("[STORE_NOT_FOUND]"),
            "{args:?}: {err}"
        );
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    // A command that writes may start a store, and says so.
    let o = tenet(&typo, &["tenant", "create", "acme"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("created a new store at {}", typo.display())),
        "{}",
        stderr(&o)
    );
    let o = tenet(&typo, &["tenant", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("acme"));
    assert!(!stderr(&o).contains("created"), "{}", stderr(&o));
}

/// A tenant `p` with table `t` (id:int) and row 1.
fn small_tenant(dir: &Path) {
    ok(dir, &["tenant", "create", "p"]);
    ok(
        dir,
        &[
            "table",
            "create",
            "p",
            "t",
            "--column",
            "id:int",
            "--primary-key",
            "id",
        ],
    );
    ok(dir, &["put", "p", "t", r#"{"id":1}"#]);
}

#[test]
fn time_expressions_are_accepted_or_explained() {
    both_modes(|dir, mode| {
        let repo = dir.join("repo");
        let repo = repo.to_str().unwrap();
        small_tenant(dir);
        ok(dir, &["backup", "full", "p", "--repo", repo]);
        let err = |args: &[&str]| {
            let o = tenet(dir, args);
            assert!(!o.status.success(), "{mode} {args:?}: {}", stdout(&o));
            assert_eq!(
                stderr(&o).lines().count(),
                1,
                "{mode} {args:?}: {}",
                stderr(&o)
            );
            stderr(&o)
        };
        // Relative times resolve against the clock: an hour ago is before the backup.
        let e = err(&["restore", "p", "--to", "-1h", "--into", "x", "--repo", repo]);
        assert!(
            e.contains("is before the first full backup") && e.contains("[NOT_RESTORABLE]"),
            "{mode}: {e}"
        );
        let e = err(&["restore", "p", "--to", "-5 parsecs", "--into", "x"]);
        assert!(e.contains("is not a relative time"), "{mode}: {e}");
        // A time where a commit ts belongs, unix seconds, a time without a zone.
        let e = err(&[
            "restore",
            "p",
            "--before-commit",
            "2026-11-23T14:02:59Z",
            "--into",
            "x",
        ]);
        assert!(
            e.contains(
                "`2026-11-23T14:02:59Z` is a time, not a commit ts; use --to 2026-11-23T14:02:59Z"
            ),
            "{mode}: {e}"
        );
        let e = err(&[
            "restore",
            "p",
            "--before-commit",
            "1732370000",
            "--into",
            "x",
        ]);
        assert!(
            e.contains("1732370000 looks like unix seconds (2024-11-23T13:53:20Z)")
                && e.contains("write a time as 2024-11-23T13:53:20Z"),
            "{mode}: {e}"
        );
        let e = err(&["restore", "p", "--to", "1732370000", "--into", "x"]);
        assert!(e.contains("looks like unix seconds"), "{mode}: {e}");
        let e = err(&["restore", "p", "--to", "2026-11-23T14:02:59", "--into", "x"]);
        assert!(e.contains("add Z or an offset"), "{mode}: {e}");
        let e = err(&["get", "p", "t", "1", "--as-of", "2026-11-23T14:02:59"]);
        assert!(e.contains("add Z or an offset"), "{mode}: {e}");
        // Relative reads: now sees the row, an hour ago is before the table existed.
        let now = json_out(&tenet(
            dir,
            &["--json", "get", "p", "t", "1", "--as-of", "-0s"],
        ));
        assert_eq!(now["row"]["id"], 1, "{mode}: {now}");
        let e = err(&["scan", "p", "t", "--as-of", "-1h"]);
        assert!(
            e.contains("not found") || e.contains("older"),
            "{mode}: {e}"
        );
    });
}

#[test]
fn restore_to_a_snapshot_of_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = d.join("repo");
    let repo = repo.to_str().unwrap();
    small_tenant(d);
    let _server = Server::start(d);
    ok(
        d,
        &[
            "archive",
            "start",
            "p",
            "--repo",
            repo,
            "--interval",
            "100ms",
        ],
    );
    ok(d, &["backup", "full", "p", "--repo", repo]);
    ok(d, &["snapshot", "create", "p", "s1"]);
    let w = json_out(&tenet(d, &["--json", "put", "p", "t", r#"{"id":2}"#]));
    let last = crate::common::ts(&w["commit_ts"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while crate::common::ts_opt(
        &json_out(&tenet(d, &["--json", "archive", "status", "p"]))["restorable_until_ts"],
    )
    .is_none_or(|t| t < last)
    {
        assert!(std::time::Instant::now() < deadline, "archive stuck");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = json_out(&tenet(
        d,
        &["--json", "restore", "p", "--to", "@s1", "--into", "p_s1"],
    ));
    assert_eq!(r["state"], "succeeded", "{r}");
    // A restore that replays the log ends with the totals of what it did (it used to
    // count the replayed segments on top of the files: 5/4 tasks).
    let p = &r["progress"];
    for what in ["tasks", "rows", "bytes"] {
        assert_eq!(
            p[format!("{what}_done")],
            p[format!("{what}_total")],
            "{what}: {p}"
        );
    }
    let rows = json_out(&tenet(d, &["--json", "scan", "p_s1", "t"]));
    assert_eq!(rows["rows"], serde_json::json!([{"id": 1}]), "{rows}");
    let o = tenet(d, &["restore", "p", "--to", "@nope", "--into", "x"]);
    assert!(
        stderr(&o).contains("snapshot `nope` not found in tenant `p`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn writes_sizes_and_durations_read_naturally() {
    both_modes(|dir, mode| {
        small_tenant(dir);
        let o = tenet(dir, &["delete", "p", "t", "7"]);
        assert!(
            stdout(&o).starts_with("deleted 0 of 1 row (1 absent), commit_ts"),
            "{mode}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let o = tenet(dir, &["delete", "p", "t", "1", "8"]);
        assert!(
            stdout(&o).starts_with("deleted 1 of 2 rows (1 absent), commit_ts"),
            "{mode}: {}",
            stdout(&o)
        );
        let w = json_out(&tenet(dir, &["--json", "delete", "p", "t", "9"]));
        assert_eq!(
            (w["writes"].as_u64(), w["absent"].as_u64()),
            (Some(1), Some(1))
        );
        let o = tenet(dir, &["put", "p", "t", r#"{"id":1}"#]);
        assert!(
            stdout(&o).starts_with("wrote 1 row, commit_ts"),
            "{mode}: {}",
            stdout(&o)
        );
        let o = tenet(dir, &["delete", "p", "t", "1"]);
        assert!(
            stdout(&o).starts_with("deleted 1 row, commit_ts"),
            "{mode}: {}",
            stdout(&o)
        );
        let o = tenet(dir, &["scan", "p", "t"]);
        assert!(
            stdout(&o).contains("(0 rows as of"),
            "{mode}: {}",
            stdout(&o)
        );
        let o = tenet(dir, &["tenant", "set", "p", "--history-retention", "7200s"]);
        assert!(
            stdout(&o).contains("with 2h of history"),
            "{mode}: {}",
            stdout(&o)
        );
        let o = tenet(dir, &["tenant", "list"]);
        assert!(stdout(&o).contains(" 2h "), "{mode}: {}", stdout(&o));

        let repo = dir.join("repo");
        let o = tenet(
            dir,
            &["backup", "full", "p", "--repo", repo.to_str().unwrap()],
        );
        let out = stdout(&o);
        assert!(
            out.contains("in 1 table,")
                && out.contains(" B logical")
                && out.contains("in 1 file ("),
            "{mode}: {out}{}",
            stderr(&o)
        );
        assert!(
            !out.contains("0.0 MiB") && !out.contains("(s)"),
            "{mode}: {out}"
        );
    });
}
