//! Backup and restore jobs through the real binary: SIGKILL at random moments during a
//! backup and a restore, then resume; a server that is killed resumes its jobs when it
//! starts again; progress and errors as the CLI shows them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};
use tenet_store::{
    AsOf, Column, ColumnType, ScanRange, Store, StoreOptions, TableSpec, TenantOptions,
};

use crate::common::{bin, json_out, stderr, stdout, tenet, Server};

const TABLES: usize = 6;

/// A tenant of TABLES tables × `rows` rows of ~1 KiB that compress poorly.
fn populate(dir: &Path, tenant: &str, rows: i64) {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    store
        .create_tenant(tenant, TenantOptions::default())
        .unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for t in 0..TABLES {
        let name = format!("t{t}");
        store
            .with_txn(tenant, |txn| {
                txn.create_table(&TableSpec {
                    name: name.clone(),
                    columns: vec![
                        Column {
                            name: "id".into(),
                            ty: ColumnType::Int,
                        },
                        Column {
                            name: "v".into(),
                            ty: ColumnType::String,
                        },
                    ],
                    primary_key: vec!["id".into()],
                })
            })
            .unwrap();
        for chunk in 0..rows / 500 {
            store
                .with_txn(tenant, |txn| {
                    for i in chunk * 500..(chunk + 1) * 500 {
                        let mut v = String::with_capacity(1024);
                        while v.len() < 1000 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            v.push_str(&format!("{x:016x}"));
                        }
                        txn.put(&name, &json!({"id": i, "v": v}))?;
                    }
                    Ok(())
                })
                .unwrap();
        }
    }
}

/// Every row of every table of a tenant (opening the store in this process).
fn dump(dir: &Path, tenant: &str) -> Vec<Vec<Value>> {
    let store = Store::open(dir, StoreOptions::default()).unwrap();
    let txn = store.read_at(tenant, &AsOf::Latest).unwrap();
    (0..TABLES)
        .map(|t| txn.scan(&format!("t{t}"), &ScanRange::default()).unwrap())
        .collect()
}

/// Starts a CLI job command in the background, SIGKILLs it after a random delay, and
/// returns the id of the job it left behind (unfinished) or None if it finished.
fn kill_midway(dir: &Path, args: &[&str], rng: &mut impl Rng) -> Option<u64> {
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(rng.random_range(300..2500)));
    child.kill().unwrap();
    child.wait().unwrap();
    let jobs = json_out(&tenet(dir, &["--json", "jobs", "list"]));
    let last = jobs.as_array().unwrap().last().unwrap().clone();
    match last["state"].as_str().unwrap() {
        "succeeded" => None,
        "running" | "queued" => Some(last["id"].as_u64().unwrap()),
        other => panic!("job left {other}: {last}"),
    }
}

/// No manifest without all its files.
fn check_repo(repo: &Path) {
    let tenants = repo.join("tenants");
    let Ok(entries) = std::fs::read_dir(&tenants) else {
        return;
    };
    for t in entries {
        let backups = t.unwrap().path().join("backups");
        for b in std::fs::read_dir(backups).unwrap() {
            let b = b.unwrap().path();
            let Ok(text) = std::fs::read_to_string(b.join("manifest.json")) else {
                continue;
            };
            let m = tenet_backup::format::decode_manifest("m", text.as_bytes()).unwrap();
            for t in &m.tables {
                for f in &t.files {
                    let len = std::fs::metadata(b.join(&f.path)).map(|m| m.len());
                    assert_eq!(len.ok(), Some(f.size), "{} of a committed backup", f.path);
                }
            }
        }
    }
}

#[test]
fn sigkill_during_backup_and_restore_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let repo_arg = repo.path().display().to_string();
    populate(dir.path(), "src", 1500);
    let mut rng = rand::rng();

    // Backup: kill it twice at random moments, check the repository, resume.
    let mut backup_id = None;
    let mut resumed = 0;
    for _ in 0..2 {
        let args = [
            "backup",
            "full",
            "src",
            "--repo",
            &repo_arg,
            "--throttle",
            "2MiB",
        ];
        let left = kill_midway(dir.path(), &args, &mut rng);
        check_repo(repo.path());
        let job = match left {
            Some(id) => {
                resumed += 1;
                let out = json_out(&tenet(
                    dir.path(),
                    &["--json", "jobs", "resume", &id.to_string()],
                ));
                assert_eq!(out["state"], "succeeded", "{out}");
                out
            }
            None => json_out(&tenet(dir.path(), &["--json", "jobs", "list"]))
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .clone(),
        };
        check_repo(repo.path());
        backup_id = Some(job["result"]["backup_id"].as_str().unwrap().to_string());
    }
    let backup_id = backup_id.unwrap();
    let v = json_out(&tenet(
        dir.path(),
        &["--json", "backups", "verify", &backup_id],
    ));
    assert_eq!(v["state"], "succeeded", "{v}");

    // An uninterrupted restore for reference.
    let r = json_out(&tenet(
        dir.path(),
        &[
            "--json",
            "restore",
            "src",
            "--backup",
            &backup_id,
            "--into",
            "reference",
        ],
    ));
    assert_eq!(r["state"], "succeeded", "{r}");
    let reference = dump(dir.path(), "reference");
    assert_eq!(reference, dump(dir.path(), "src"));

    // Restores killed at random moments, then resumed: the same rows.
    for round in 0..2 {
        let target = format!("killed{round}");
        let args = [
            "restore",
            "src",
            "--backup",
            &backup_id,
            "--into",
            &target,
            "--throttle",
            "1MiB",
        ];
        match kill_midway(dir.path(), &args, &mut rng) {
            Some(id) => {
                resumed += 1;
                let t = json_out(&tenet(dir.path(), &["--json", "tenant", "show", &target]));
                assert_eq!(t["state"], "restoring", "{t}");
                let o = tenet(dir.path(), &["scan", &target, "t0"]);
                assert!(!o.status.success(), "a restoring tenant is not readable");
                let out = json_out(&tenet(
                    dir.path(),
                    &["--json", "jobs", "resume", &id.to_string()],
                ));
                assert_eq!(out["state"], "succeeded", "{out}");
            }
            None => {
                // Killed before the job existed, or after it finished.
                if !tenet(dir.path(), &["tenant", "show", &target])
                    .status
                    .success()
                {
                    let out = json_out(&tenet(
                        dir.path(),
                        &[
                            "--json", "restore", "src", "--backup", &backup_id, "--into", &target,
                        ],
                    ));
                    assert_eq!(out["state"], "succeeded", "{out}");
                }
            }
        }
        assert_eq!(dump(dir.path(), &target), reference, "round {round}");
    }
    assert!(resumed >= 2, "only {resumed} of 4 kills hit a running job");
}

#[test]
fn server_runs_jobs_and_resumes_them_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let repo_arg = repo.path().display().to_string();
    populate(dir.path(), "s", 1000);
    let mut server = Server::start(dir.path());
    let o = tenet(
        dir.path(),
        &[
            "--json",
            "backup",
            "full",
            "s",
            "--repo",
            &repo_arg,
            "--throttle",
            "1MiB",
            "--detach",
        ],
    );
    let job = json_out(&o);
    let id = job["id"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let shown = json_out(&tenet(
        dir.path(),
        &["--json", "jobs", "show", &id.to_string()],
    ));
    assert_eq!(shown["state"], "running", "{shown}");
    assert!(shown["progress"]["tasks_total"].as_u64().unwrap() >= TABLES as u64);

    // SIGKILL the server mid-backup; a new one resumes the job on start.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let _server = Server::start(dir.path());
    let mut last = Value::Null;
    for _ in 0..300 {
        last = json_out(&tenet(
            dir.path(),
            &["--json", "jobs", "show", &id.to_string()],
        ));
        if last["state"] != "running" && last["state"] != "queued" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(last["state"], "succeeded", "{last}");
    check_repo(repo.path());
    let bid = last["result"]["backup_id"].as_str().unwrap().to_string();

    // Restore through the server, then errors as the CLI prints them.
    let r = json_out(&tenet(
        dir.path(),
        &["--json", "restore", "s", "--backup", &bid, "--into", "s2"],
    ));
    assert_eq!(r["state"], "succeeded", "{r}");
    let o = tenet(
        dir.path(),
        &["restore", "s", "--backup", &bid, "--into", "s2"],
    );
    assert!(
        stderr(&o).contains("`s2` already exists") && stderr(&o).contains("[TENANT_EXISTS]"),
        "{}",
        stderr(&o)
    );
    let o = tenet(
        dir.path(),
        &["restore", "s", "--backup", "nope", "--into", "s3"],
    );
    assert!(stderr(&o).contains("[BACKUP_NOT_FOUND]"), "{}", stderr(&o));
    let o = tenet(dir.path(), &["backup", "full", "s", "--repo", "gopher://x"]);
    assert!(
        stderr(&o).contains("unknown scheme `gopher`"),
        "{}",
        stderr(&o)
    );
    let o = tenet(dir.path(), &["jobs", "cancel", &id.to_string()]);
    assert!(stderr(&o).contains("already ended"), "{}", stderr(&o));
    let list = stdout(&tenet(dir.path(), &["backups", "list", "s"]));
    assert!(list.contains(&bid), "{list}");
    let show = stdout(&tenet(dir.path(), &["backups", "show", &bid]));
    assert!(show.contains("t5") && show.contains("1000"), "{show}");
    let del = tenet(dir.path(), &["backups", "delete", &bid]);
    assert!(del.status.success(), "{}", stderr(&del));
    let o = tenet(dir.path(), &["backups", "show", &bid]);
    assert!(stderr(&o).contains("[BACKUP_NOT_FOUND]"), "{}", stderr(&o));
}

#[test]
fn ctrl_c_cancels_an_embedded_job_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let repo_arg = repo.path().display().to_string();
    populate(dir.path(), "c", 1000);
    let child = Command::new(bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "backup",
            "full",
            "c",
            "--repo",
            &repo_arg,
            "--throttle",
            "256KiB",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("[CANCELLED]"), "{}", stderr(&out));
    let jobs = json_out(&tenet(dir.path(), &["--json", "jobs", "list"]));
    assert_eq!(jobs[0]["state"], "cancelled", "{jobs}");
    // Only the repository marker is left.
    let mut left = Vec::new();
    for e in walkdir(repo.path()) {
        left.push(e);
    }
    assert_eq!(left, vec!["tenet-repo.json".to_string()]);
}

fn walkdir(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out
}

#[test]
fn archive_and_point_in_time_restore_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let repo_arg = repo.path().display().to_string();
    populate(dir.path(), "pt", 500);
    // Embedded: the archiver needs a server, and says so.
    let o = tenet(dir.path(), &["archive", "start", "pt", "--repo", &repo_arg]);
    assert!(stderr(&o).contains("[SERVER_REQUIRED]"), "{}", stderr(&o));

    let _server = Server::start(dir.path());
    let a = json_out(&tenet(
        dir.path(),
        &[
            "--json",
            "archive",
            "start",
            "pt",
            "--repo",
            &repo_arg,
            "--interval",
            "100ms",
        ],
    ));
    assert_eq!(a["status"], "running", "{a}");
    let b = json_out(&tenet(
        dir.path(),
        &["--json", "backup", "full", "pt", "--repo", &repo_arg],
    ));
    assert_eq!(b["state"], "succeeded", "{b}");
    // An "accident" after the backup: delete rows, remember the commit.
    let del = json_out(&tenet(
        dir.path(),
        &["--json", "delete", "pt", "t0", "1", "2", "3"],
    ));
    let accident = crate::common::ts(&del["commit_ts"]);
    // The archiver (100 ms interval) catches up with the accident within seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let st = loop {
        let st = json_out(&tenet(dir.path(), &["--json", "archive", "status", "pt"]));
        if crate::common::ts_opt(&st["restorable_until_ts"]).is_some_and(|t| t >= accident) {
            break st;
        }
        assert!(std::time::Instant::now() < deadline, "archive stuck: {st}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(st["rpo_ms"].as_u64().unwrap() < 30_000, "{st}");
    assert!(st["problem"].is_null(), "{st}");
    let points = json_out(&tenet(dir.path(), &["--json", "restore-points", "pt"]));
    assert!(
        crate::common::ts(&points[0]["to_ts"]) >= accident,
        "{points}"
    );

    let r = json_out(&tenet(
        dir.path(),
        &[
            "--json",
            "restore",
            "pt",
            "--before-commit",
            &accident.to_string(),
            "--into",
            "pt_before",
        ],
    ));
    assert_eq!(r["state"], "succeeded", "{r}");
    let before = tenet(dir.path(), &["--json", "get", "pt_before", "t0", "2"]);
    assert!(stdout(&before).contains("\"id\": 2"), "{}", stdout(&before));
    let r = json_out(&tenet(
        dir.path(),
        &["--json", "restore", "pt", "--latest", "--into", "pt_now"],
    ));
    assert_eq!(r["state"], "succeeded", "{r}");
    let now = json_out(&tenet(dir.path(), &["--json", "get", "pt_now", "t0", "2"]));
    assert!(now["row"].is_null(), "{now}");

    let o = tenet(dir.path(), &["restore", "pt", "--into", "x"]);
    assert!(stderr(&o).contains("exactly one of"), "{}", stderr(&o));
    let o = tenet(
        dir.path(),
        &[
            "restore",
            "pt",
            "--to",
            "2001-01-01T00:00:00Z",
            "--into",
            "x",
        ],
    );
    assert!(
        stderr(&o).contains("[NOT_RESTORABLE]")
            && stderr(&o).contains("before the first full backup"),
        "{}",
        stderr(&o)
    );
    let stopped = json_out(&tenet(dir.path(), &["--json", "archive", "stop", "pt"]));
    assert_eq!(stopped["status"], "stopped", "{stopped}");
}

/// A job whose process died says so in `jobs show` as in `jobs list` (no ETA), and a new
/// backup of its tenant points to `jobs resume`; once resumed and done, its progress
/// totals are what it did.
#[test]
fn an_interrupted_job_says_so_and_how_to_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let repo_arg = repo.path().display().to_string();
    let d = dir.path();
    populate(d, "k", 1000);
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(d)
        .args([
            "backup",
            "full",
            "k",
            "--repo",
            &repo_arg,
            "--throttle",
            "1MiB",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    child.kill().unwrap();
    child.wait().unwrap();
    let jobs = json_out(&tenet(d, &["--json", "jobs", "list"]));
    let job = jobs.as_array().unwrap().last().unwrap().clone();
    assert_eq!(job["state"], "running", "the kill came too late: {job}");
    let id = job["id"].as_u64().unwrap().to_string();

    let shown = json_out(&tenet(d, &["--json", "jobs", "show", &id]));
    assert_eq!(shown["live"], false, "{shown}");
    assert!(shown["progress"]["eta_secs"].is_null(), "{shown}");
    let show = stdout(&tenet(d, &["jobs", "show", &id]));
    assert!(show.contains("running (interrupted)"), "{show}");
    assert!(!show.contains("eta"), "{show}");
    assert!(show.contains(&format!("tenet jobs resume {id}")), "{show}");
    let list = stdout(&tenet(d, &["jobs", "list"]));
    assert!(list.contains("running (interrupted)"), "{list}");

    let o = tenet(d, &["backup", "full", "k", "--repo", &repo_arg]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "job {id} (backup_full of tenant `k`) was interrupted"
        )) && e.contains(&format!("resume it with `tenet jobs resume {id}`"))
            && e.contains(&format!("cancel it with `tenet jobs cancel {id}`"))
            && !e.contains("wait"),
        "{e}"
    );

    let done = json_out(&tenet(d, &["--json", "jobs", "resume", &id]));
    assert_eq!(done["state"], "succeeded", "{done}");
    let p = &done["progress"];
    for (what, want) in [("tasks", None), ("rows", Some(6000)), ("bytes", None)] {
        let (n, total) = (
            p[format!("{what}_done")].as_u64().unwrap(),
            p[format!("{what}_total")].as_u64().unwrap(),
        );
        assert_eq!(n, total, "{what}: {p}");
        assert!(n > 0, "{what}: {p}");
        if let Some(want) = want {
            assert_eq!(n, want, "{what}: {p}");
        }
    }
    assert!(p["io_bytes"].as_u64().unwrap() > 0, "{p}");
    let show = stdout(&tenet(d, &["jobs", "show", &id]));
    assert!(show.contains("6000/6000 rows"), "{show}");
    assert!(show.contains("(throttle 1.00 MiB/s)"), "{show}");
}
