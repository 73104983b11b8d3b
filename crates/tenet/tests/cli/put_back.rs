//! Putting a tenant back in place through the real binary: revert, snapshot rollback,
//! clone, PITR across a revert, bad input over HTTP, and an in-place restore killed
//! with SIGKILL at random moments.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};
use tenet_store::{AsOf, ScanRange, Store, StoreOptions};

use crate::common::{
    archive_start, assert_error, bin, call, json_out, kv_tenant, ok, put, stderr, tenet, ts,
    ts_opt, wait_restorable, Server,
};

/// The rows of `tenant`.t, as of `as_of` (default latest).
fn rows(dir: &Path, tenant: &str, as_of: Option<&str>) -> Vec<Value> {
    let mut a = vec!["--json", "scan", tenant, "t"];
    if let Some(x) = as_of {
        a.extend(["--as-of", x]);
    }
    json_out(&tenet(dir, &a))["rows"]
        .as_array()
        .unwrap()
        .clone()
}

fn revert(dir: &Path, args: &[&str]) -> Value {
    let mut a = vec!["--json", "revert"];
    a.extend_from_slice(args);
    json_out(&tenet(dir, &a))
}

#[test]
fn revert_rollback_clone_and_undo() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    kv_tenant(d, "acme", &[]);
    kv_tenant(d, "globex", &[]);
    put(d, "acme", &[(1, "a"), (2, "b"), (3, "c"), (4, "d")]);
    put(d, "globex", &[(1, "g")]);
    ok(d, &["snapshot", "create", "acme", "good"]);
    let good = rows(d, "acme", Some("@good"));
    let neighbour = rows(d, "globex", None);

    // The accident, and a new table, then a revert of the whole tenant.
    let bad = put(d, "acme", &[(1, "BAD"), (5, "new")]);
    ok(d, &["delete", "acme", "t", "2"]);
    ok(
        d,
        &[
            "table",
            "create",
            "acme",
            "later",
            "--column",
            "id:int",
            "--primary-key",
            "id",
        ],
    );
    let after_bad = rows(d, "acme", None);
    let o = ok(d, &["revert", "acme", "--before-commit", &bad.to_string()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("in one commit at ts"), "{text}");
    assert!(
        text.contains("undo: tenet revert acme --before-commit"),
        "{text}"
    );
    assert_eq!(rows(d, "acme", None), good);
    assert_eq!(rows(d, "globex", None), neighbour);
    let tables = json_out(&tenet(d, &["--json", "table", "list", "acme"]));
    assert_eq!(tables.as_array().unwrap().len(), 1, "{tables}");

    // Undo the revert (its commit ts is the last one): the accident's state is back,
    // `later` too.
    let r1: u64 = text
        .rsplit("--before-commit ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let undo = revert(d, &["acme", "--before-commit", &r1.to_string()]);
    assert!(ts_opt(&undo["commit_ts"]).is_some(), "{undo}");
    assert_eq!(rows(d, "acme", None), after_bad);
    let tables = json_out(&tenet(d, &["--json", "table", "list", "acme"]));
    assert_eq!(tables.as_array().unwrap().len(), 2, "{tables}");

    // Snapshot rollback = revert to the snapshot; it reports per table.
    let rb = json_out(&tenet(
        d,
        &["--json", "snapshot", "rollback", "acme", "good"],
    ));
    assert_eq!(rows(d, "acme", None), good);
    let t = rb["tables"].as_array().unwrap();
    assert!(
        t.iter()
            .any(|x| x["table"] == "later" && x["catalog"] == "dropped"),
        "{rb}"
    );
    assert_eq!(rb["found_by"], "log", "{rb}");

    // A key range: only ids 3..5 of the accident's state come back.
    let k = revert(
        d,
        &[
            "acme",
            "--to",
            &ts(&undo["commit_ts"]).to_string(),
            "--table",
            "t",
            "--from-key",
            "3",
            "--to-key",
            "6",
        ],
    );
    let want: Vec<Value> = after_bad
        .iter()
        .filter(|r| r["id"].as_i64().unwrap() >= 3)
        .chain(good.iter().filter(|r| r["id"].as_i64().unwrap() < 3))
        .cloned()
        .collect();
    let mut want = want;
    want.sort_by_key(|r| r["id"].as_i64());
    assert_eq!(rows(d, "acme", None), want, "{k}");

    // Clone from local history, as of the snapshot.
    let c = json_out(&tenet(
        d,
        &[
            "--json",
            "tenant",
            "clone",
            "acme",
            "--as-of",
            "@good",
            "--into",
            "acme-copy",
        ],
    ));
    assert_eq!(c["state"], "succeeded", "{c}");
    assert_eq!(rows(d, "acme-copy", None), good);
    assert_eq!(rows(d, "globex", None), neighbour);

    // `@name` names the snapshot too.
    ok(d, &["snapshot", "rollback", "acme", "@good"]);
    assert_eq!(rows(d, "acme", None), good);

    // Bad input on the CLI: one line, exit ≠ 0, nothing changed.
    let before = rows(d, "acme", None);
    for (args, needle) in [
        (vec!["revert", "acme", "--to", "-1d"], "did not exist yet"),
        (
            vec!["tenant", "clone", "acme", "--as-of", "-1d", "--into", "x"],
            "did not exist yet",
        ),
        (vec!["revert", "acme", "--to", "5m"], "did you mean -5m"),
        (
            vec!["restore", "acme", "--in-place", "--latest"],
            "tenet revert acme --to",
        ),
        (
            vec!["revert", "acme", "--to", "@nope"],
            "snapshot `nope` not found",
        ),
        (
            vec!["revert", "acme", "--to", "2999-01-01T00:00:00Z"],
            "future",
        ),
        (
            vec!["revert", "acme", "--to", "@good", "--table", "nope"],
            "table `nope` not found",
        ),
        (
            vec![
                "revert",
                "acme",
                "--to",
                "@good",
                "--table",
                "t",
                "--from-key",
                "\"x\"",
            ],
            "int",
        ),
        (
            vec!["revert", "acme", "--before-commit", "-5m"],
            "not a commit ts",
        ),
        (
            vec!["snapshot", "rollback", "acme", "nope"],
            "snapshot `nope` not found in tenant `acme`; its snapshots are good",
        ),
        (
            vec!["tenant", "clone", "acme", "--into", "globex"],
            "already exists",
        ),
    ] {
        let o = tenet(d, &args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = stderr(&o);
        assert!(e.contains(needle), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{e}");
    }
    assert_eq!(rows(d, "acme", None), before);
    // No target: clap's usage error names both ways to give one.
    let e = stderr(&tenet(d, &["revert", "acme"]));
    assert!(e.contains("--to") && e.contains("--before-commit"), "{e}");
}

#[test]
fn http_revert_errors_and_too_old() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    kv_tenant(d, "acme", &["--history-retention", "1s"]);
    let first = put(d, "acme", &[(1, "a")]);
    let server = Server::start(d);
    let c = reqwest::blocking::Client::new();
    let url = |p: &str| format!("{}/v1/tenants/acme/{p}", server.url);
    put(d, "acme", &[(1, "b")]);

    let r = call(
        &c,
        "POST",
        &url("revert"),
        Some(json!({"to": first.to_string()})),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["tables"][0]["rows_reverted"], 1, "{}", r.1);
    assert!(r.1["writes_held_ms"].as_f64().unwrap() < 1000.0, "{}", r.1);
    for (body, status, code) in [
        (json!({}), 400, "INVALID_ARGUMENT"),
        (
            json!({"to": "-1s", "before_commit": first.to_string()}),
            400,
            "INVALID_ARGUMENT",
        ),
        (json!({"to": "@nope"}), 404, "SNAPSHOT_NOT_FOUND"),
        (json!({"to": "-1s", "from_key": 1}), 400, "INVALID_ARGUMENT"),
        (
            json!({"to": first.to_string(), "table": "missing"}),
            404,
            "TABLE_NOT_FOUND",
        ),
        (json!({"to": "-1s", "bogus": 1}), 400, "MALFORMED_JSON"),
    ] {
        assert_error(call(&c, "POST", &url("revert"), Some(body)), status, code);
    }
    assert_error(
        call(&c, "POST", &url("snapshots/nope/rollback"), None),
        404,
        "SNAPSHOT_NOT_FOUND",
    );
    // After GC passed the history retention: TOO_OLD names the oldest time and the way
    // out.
    let deadline = Instant::now() + Duration::from_secs(20);
    let msg = loop {
        put(d, "acme", &[(2, "x")]);
        let r = call(
            &c,
            "POST",
            &url("revert"),
            Some(json!({"to": first.to_string()})),
        );
        if r.0 == 410 {
            break assert_error(r, 410, "TOO_OLD");
        }
        assert!(Instant::now() < deadline, "never too old: {}", r.1);
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        msg.contains("oldest readable time") && msg.contains("restore acme"),
        "{msg}"
    );
    assert!(msg.contains("--in-place"), "{msg}");
}

/// Every row of every table of `tenant`, and its table names (opening the store here).
fn dump(dir: &Path, tenant: &str) -> (Vec<String>, Vec<Vec<Value>>) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let txn = store.read_at(tenant, &AsOf::Latest).unwrap();
    let tables: Vec<String> = txn
        .tables()
        .unwrap()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let rows = tables
        .iter()
        .map(|t| txn.scan(t, &ScanRange::default()).unwrap())
        .collect();
    (tables, rows)
}

/// The names of the hidden scratch tenants of in-place restores.
fn scratch_tenants(dir: &Path) -> Vec<String> {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    store
        .tenants()
        .into_iter()
        .filter(|t| t.is_scratch())
        .map(|t| t.name)
        .collect()
}

#[test]
fn in_place_restore_is_wholly_old_or_new_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path().display().to_string();
    kv_tenant(d, "acme", &[]);
    // Values that do not compress, so the throttle stretches the restore.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let values: Vec<String> = (0..400)
        .map(|_| {
            (0..16)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    format!("{x:016x}")
                })
                .collect()
        })
        .collect();
    let base: Vec<(i64, &str)> = (0..400).map(|i| (i, values[i as usize].as_str())).collect();
    for chunk in base.chunks(100) {
        put(d, "acme", chunk);
    }
    let b = json_out(&tenet(
        d,
        &["--json", "backup", "full", "acme", "--repo", &r],
    ));
    let backup_id = b["result"]["backup_id"].as_str().unwrap().to_string();
    let new = dump(d, "acme");
    // The live state drifts from the backup: updates, deletes, a new table.
    put(d, "acme", &[(1, "changed"), (500, "added")]);
    ok(d, &["delete", "acme", "t", "2", "3"]);
    ok(
        d,
        &[
            "table",
            "create",
            "acme",
            "extra",
            "--column",
            "id:int",
            "--primary-key",
            "id",
        ],
    );
    let old = dump(d, "acme");
    assert_ne!(old, new);

    let mut rng = rand::rng();
    let (mut killed, mut applied_before_kill) = (0, 0);
    for trial in 0..10 {
        let mut child = Command::new(bin())
            .arg("--data-dir")
            .arg(d)
            .args([
                "restore",
                "acme",
                "--in-place",
                "--backup",
                &backup_id,
                "--repo",
                &r,
                "--throttle",
                "32KiB",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The job runs for seconds (throttled); a kill lands before it starts (a slow
        // start on a busy machine), while it runs, or after its commit.
        std::thread::sleep(Duration::from_millis(rng.random_range(100..2000)));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap();
        child.wait().unwrap();
        // Wholly old or wholly new, never mixed.
        let now = dump(d, "acme");
        let scratch = scratch_tenants(d);
        assert!(scratch.len() <= 1, "trial {trial}: {scratch:?}");
        assert!(now == old || now == new, "trial {trial}: a mixed state");
        if now == new {
            applied_before_kill += 1;
        }
        let jobs = json_out(&tenet(d, &["--json", "jobs", "list"]));
        let last = jobs.as_array().unwrap().last().cloned().unwrap_or_default();
        let resumable = last["kind"] == "restore"
            && matches!(last["state"].as_str(), Some("running" | "queued"));
        if resumable {
            killed += 1;
            let out = json_out(&tenet(
                d,
                &[
                    "--json",
                    "jobs",
                    "resume",
                    &last["id"].as_u64().unwrap().to_string(),
                ],
            ));
            assert_eq!(out["state"], "succeeded", "trial {trial}: {out}");
        } else if now == old {
            // Killed before the job existed, or it finished: run it to the end.
            let out = json_out(&tenet(
                d,
                &[
                    "--json",
                    "restore",
                    "acme",
                    "--in-place",
                    "--backup",
                    &backup_id,
                    "--repo",
                    &r,
                ],
            ));
            assert_eq!(out["state"], "succeeded", "trial {trial}: {out}");
        } else {
            assert!(
                finished || last["state"] == "succeeded",
                "trial {trial}: {last}"
            );
        }
        assert_eq!(dump(d, "acme"), new, "trial {trial}: after the job");
        assert!(scratch_tenants(d).is_empty(), "trial {trial}: scratch left");
        // Undo: roll back to the snapshot the restore took.
        let snaps = json_out(&tenet(d, &["--json", "snapshot", "list", "acme"]));
        let undo = snaps
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["name"].as_str())
            .filter(|n| n.starts_with("before-restore-"))
            .max()
            .unwrap()
            .to_string();
        ok(d, &["snapshot", "rollback", "acme", &undo]);
        assert_eq!(dump(d, "acme"), old, "trial {trial}: after the undo");
    }
    eprintln!("in-place restore: {killed} of 10 trials killed a running job, {applied_before_kill} after its commit");
    assert!(killed > 0, "no trial killed a running job");
}

#[test]
fn pitr_before_at_and_after_a_revert() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path().display().to_string();
    kv_tenant(d, "acme", &[]);
    put(d, "acme", &[(1, "a"), (2, "b")]);
    let _server = Server::start(d);
    // A full backup, then the archive (the order users take).
    json_out(&tenet(
        d,
        &["--json", "backup", "full", "acme", "--repo", &r],
    ));
    archive_start(d, "acme", &r, &[]);
    let target = put(d, "acme", &[(3, "c")]);
    put(d, "acme", &[(1, "BAD"), (4, "d")]);
    let rev = revert(d, &["acme", "--to", &target.to_string()]);
    let rts = ts(&rev["commit_ts"]);
    let after = put(d, "acme", &[(5, "e")]);
    wait_restorable(d, "acme", after);
    for (i, at) in [rts - 1, rts, after].into_iter().enumerate() {
        let into = format!("pitr{i}");
        let o = json_out(&tenet(
            d,
            &[
                "--json",
                "restore",
                "acme",
                "--to",
                &at.to_string(),
                "--into",
                &into,
            ],
        ));
        assert_eq!(o["state"], "succeeded", "{o}");
        assert_eq!(
            rows(d, &into, None),
            rows(d, "acme", Some(&at.to_string())),
            "restore to {at} (revert at {rts})"
        );
    }
    // The revert itself restored the target's rows.
    assert_eq!(
        rows(d, "pitr1", None),
        rows(d, "acme", Some(&target.to_string()))
    );
}

/// The large path of an in-place commit (marker, record as SST, versions as SST,
/// marker removed), with the process aborted after each step (`TENET_FAILPOINT`, debug
/// builds): when the store opens again the tenant is wholly before or wholly after.
#[test]
fn large_revert_aborted_at_each_step_is_wholly_old_or_new() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (target, bad) = {
        let store = Store::open(d, StoreOptions::default()).unwrap();
        store
            .create_tenant("acme", tenet_store::TenantOptions::default())
            .unwrap();
        store
            .with_txn("acme", |t| {
                t.create_table(&tenet_store::TableSpec {
                    name: "t".into(),
                    columns: vec![
                        tenet_store::Column {
                            name: "id".into(),
                            ty: tenet_store::ColumnType::Int,
                        },
                        tenet_store::Column {
                            name: "v".into(),
                            ty: tenet_store::ColumnType::String,
                        },
                    ],
                    primary_key: vec!["id".into()],
                })
            })
            .unwrap();
        // 6,000 rows of 1 KiB: a revert of all of them is over the 4 MiB SST threshold.
        let fill = |tag: &str| {
            for chunk in 0..6 {
                store
                    .with_txn("acme", |t| {
                        for i in chunk * 1000..(chunk + 1) * 1000 {
                            t.put(
                                "t",
                                &json!({"id": i, "v": format!("{tag}{}", "x".repeat(1000))}),
                            )?;
                        }
                        Ok(())
                    })
                    .unwrap();
            }
            store.visible_ts()
        };
        (fill("good"), fill("bad"))
    };
    let all = |as_of: Option<u64>| {
        let mut a = vec![
            "--json".to_string(),
            "scan".into(),
            "acme".into(),
            "t".into(),
        ];
        a.extend(["--limit".into(), "100000".into()]);
        if let Some(ts) = as_of {
            a.extend(["--as-of".into(), ts.to_string()]);
        }
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        json_out(&tenet(d, &a))["rows"].as_array().unwrap().clone()
    };
    let (good, bad_rows) = (all(Some(target.0)), all(Some(bad.0)));
    assert_eq!(good.len(), 6000);
    for (point, applied) in [
        ("in-place-after-marker", false),
        ("in-place-after-log", true),
        ("in-place-after-data", true),
    ] {
        let o = Command::new(bin())
            .arg("--data-dir")
            .arg(d)
            .args(["revert", "acme", "--to", &target.0.to_string()])
            .env("TENET_FAILPOINT", point)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{point}: the revert was not aborted");
        assert!(stderr(&o).contains(point), "{point}: {}", stderr(&o));
        // Opening the store finishes (or forgets) the commit.
        let now = all(None);
        assert!(now == good || now == bad_rows, "{point}: a mixed state");
        assert_eq!(now == good, applied, "{point}");
        if applied {
            // Back to the bad state for the next point (a revert to it, not aborted).
            revert(d, &["acme", "--to", &bad.0.to_string()]);
            assert_eq!(all(None), bad_rows);
        }
    }
}

/// A clone to a time the tenant no longer keeps (history retention 1 s) is restored
/// from the repository instead of built from local history.
#[test]
fn clone_older_than_the_local_history_comes_from_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path().display().to_string();
    kv_tenant(d, "old", &["--history-retention", "1s"]);
    put(d, "old", &[(1, "a")]);
    let _server = Server::start(d);
    // A full backup, then the archive (the order users take).
    json_out(&tenet(
        d,
        &["--json", "backup", "full", "old", "--repo", &r],
    ));
    archive_start(d, "old", &r, &[]);
    let at = put(d, "old", &[(2, "b")]);
    let then = rows(d, "old", Some(&at.to_string()));
    put(d, "old", &[(3, "c")]);
    // Wait until GC (every second) has passed `at`, and the archive covers it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = tenet(d, &["scan", "old", "t", "--as-of", &at.to_string()]);
        if !o.status.success() && stderr(&o).contains("TOO_OLD") {
            break;
        }
        assert!(Instant::now() < deadline, "history never passed {at}");
        put(d, "old", &[(4, "d")]);
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_restorable(d, "old", at);
    let c = json_out(&tenet(
        d,
        &[
            "--json",
            "tenant",
            "clone",
            "old",
            "--as-of",
            &at.to_string(),
            "--into",
            "copy",
        ],
    ));
    assert_eq!(c["state"], "succeeded", "{c}");
    assert_eq!(c["kind"], "restore", "{c}");
    assert_eq!(rows(d, "copy", None), then);
}
