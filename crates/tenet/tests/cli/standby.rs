//! Standby tenants end to end, with real servers and real process kills: a standby on
//! a second server follows a tenant through a shared repository (a local directory
//! and S3), switchovers back and forth under a concurrent writer lose no acknowledged
//! commit, a standby server killed while it applies resumes with nothing skipped or
//! doubled, a switchover killed at each step leaves exactly one writable side, and the
//! errors users meet (writes to a standby, promoting too far or while the source
//! lives, the source dropped).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{archive_start, call, json_out, kv_tenant, ok, put, stderr, tenet, ts, Server};

/// Rows of `acme`.`t` on a server (as of `as_of`, or latest): id → v.
fn rows(url: &str, tenant: &str, as_of: Option<u64>) -> Vec<(i64, String)> {
    let c = reqwest::blocking::Client::new();
    let q = as_of.map(|t| format!("&as_of={t}")).unwrap_or_default();
    let (status, body) = call(
        &c,
        "GET",
        &format!("{url}/v1/tenants/{tenant}/tables/t/rows?limit=100000{q}"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["v"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A writer that inserts id 0, 1, 2, … into `tenant`.`t`, one commit each, at
/// whichever server is primary; records every acknowledged commit.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(i64, u64, String)>>,
}

impl Writer {
    fn start(urls: Vec<String>, tenant: &str) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, tenant) = (stop.clone(), tenant.to_string());
        let handle = std::thread::spawn(move || {
            let c = reqwest::blocking::Client::new();
            let (mut at, mut next, mut acked) = (0usize, 0i64, Vec::new());
            while !flag.load(Ordering::Relaxed) {
                let url = &urls[at % urls.len()];
                let (status, body) = call(
                    &c,
                    "POST",
                    &format!("{url}/v1/tenants/{tenant}/tables/t/rows"),
                    Some(json!({"rows": [{"id": next, "v": format!("w{next}")}]})),
                );
                match (status, body["code"].as_str()) {
                    (200, _) => {
                        acked.push((next, ts(&body["commit_ts"]), url.clone()));
                        next += 1;
                        // A steady load, not one that starves the tests running beside it.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    // Moving: wait. A standby here (or the name gone): the other one.
                    (_, Some("TENANT_MOVING")) => std::thread::sleep(Duration::from_millis(2)),
                    (_, Some("TENANT_STATE" | "TENANT_NOT_FOUND")) => {
                        at += 1;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    _ => panic!("write failed: {status} {body}"),
                }
            }
            acked
        });
        Writer { stop, handle }
    }

    fn finish(self) -> Vec<(i64, u64, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// Waits until the standby `tenant` (on `dir`'s server) applied its source up to `at`.
fn wait_applied(dir: &Path, tenant: &str, at: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = json_out(&tenet(dir, &["--json", "standby", "status", tenant]));
        if ts(&st["applied_ts"]) >= at {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "standby never applied {at}: {st}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `restore acme --standby --into <into>` from `repo`, polling every `poll`.
fn standby_of_acme(dir: &Path, into: &str, repo: &str, poll: &str) -> std::process::Output {
    ok(
        dir,
        &[
            "restore",
            "acme",
            "--standby",
            "--into",
            into,
            "--repo",
            repo,
            "--poll",
            poll,
        ],
    )
}

/// A switchover through the CLI; returns its job's result.
fn switchover(dir: &Path, source: &str, to: &str, to_server: Option<&str>) -> Value {
    let mut args = vec!["--json", "switchover", source, "--to", to];
    let token = to_server.map(|u| crate::common::token_for(u).expect("a server of this test"));
    if let (Some(u), Some(t)) = (to_server, token.as_deref()) {
        args.extend(["--to-server", u, "--to-token", t]);
    }
    let job = json_out(&tenet(dir, &args));
    assert_eq!(job["state"], "succeeded", "{job}");
    job["result"].clone()
}

/// Every acknowledged write is in `got`, with its value.
fn assert_all_acked(acked: &[(i64, u64, String)], got: &[(i64, String)]) {
    let have: std::collections::BTreeMap<i64, &str> =
        got.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (k, c, url) in acked {
        assert_eq!(
            have.get(k).copied(),
            Some(format!("w{k}").as_str()),
            "write {k} acknowledged by {url} at {c} is lost"
        );
    }
}

fn two_servers(repo: &str, env: &[(&str, String)]) {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (da, db) = (da.path(), db.path());
    let a = Server::start_with(da, env);
    let b = Server::start_with(db, env);
    kv_tenant(da, "acme", &[]);
    put(da, "acme", &[(-1, "before")]);
    // The order users take: a backup first, then the archive.
    ok(da, &["backup", "full", "acme", "--repo", repo]);
    archive_start(da, "acme", repo, &[]);
    let o = standby_of_acme(db, "acme", repo, "50ms");
    assert!(crate::common::stdout(&o).contains("standby `acme`"));
    let writer = Writer::start(vec![a.url.clone(), b.url.clone()], "acme");
    std::thread::sleep(Duration::from_millis(500));
    // Followed while written.
    let st = json_out(&tenet(db, &["--json", "standby", "status", "acme"]));
    assert_eq!(st["state"], "standby", "{st}");
    assert!(st["problem"].is_null(), "{st}");
    let there = switchover(da, "acme", "acme", Some(&b.url));
    std::thread::sleep(Duration::from_millis(500));
    let back = switchover(db, "acme", "acme", Some(&a.url));
    std::thread::sleep(Duration::from_millis(300));
    let acked = writer.finish();
    for r in [&there, &back] {
        assert!(r["downtime_ms"].as_u64().unwrap() < 5_000, "{r}");
    }
    assert!(
        acked.iter().any(|(_, _, u)| *u == b.url) && acked.len() > 20,
        "the writer should have written to both: {} acks",
        acked.len()
    );
    // A is the primary again and has every acknowledged write; B follows it.
    let final_rows = rows(&a.url, "acme", None);
    assert_all_acked(&acked, &final_rows);
    let last = acked.iter().map(|a| a.1).max().unwrap();
    wait_applied(db, "acme", last);
    assert_eq!(
        rows(&b.url, "acme", Some(last)),
        rows(&a.url, "acme", Some(last))
    );
    // One history across the moves: restorable from before the first switchover up
    // to the end.
    let points = json_out(&tenet(
        da,
        &["--json", "restore-points", "acme", "--repo", repo],
    ));
    let p = points.as_array().unwrap().last().unwrap().clone();
    assert!(
        ts(&p["from_ts"]) < acked[0].1 && ts(&p["to_ts"]) >= last,
        "{points}"
    );
}

#[test]
fn a_standby_on_another_server_follows_and_switches_over_under_writes() {
    let repo = tempfile::tempdir().unwrap();
    two_servers(repo.path().to_str().unwrap(), &[]);
}

#[test]
fn the_same_across_two_servers_and_s3() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let endpoint = crate::s3_server::start_s3(&rt, root.path());
    two_servers("s3://tenet/moves", &crate::s3_server::s3_env(&endpoint));
}

/// A tenant with a standby in the same store, three acknowledged commits, archived.
fn source_with_standby(dir: &Path, repo: &str) -> Vec<u64> {
    kv_tenant(dir, "acme", &[]);
    ok(dir, &["backup", "full", "acme", "--repo", repo]);
    archive_start(dir, "acme", repo, &[]);
    let mut commits = Vec::new();
    for i in 1..=3 {
        commits.push(put(dir, "acme", &[(i, &format!("w{i}"))]));
    }
    standby_of_acme(dir, "sb", repo, "50ms");
    wait_applied(dir, "sb", commits[2]);
    commits
}

#[test]
fn standby_errors_promote_at_an_exact_time_and_a_dropped_source() {
    let (dir, repo) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (dir, repo) = (dir.path(), repo.path().to_str().unwrap());
    let server = Server::start(dir);
    let c = reqwest::blocking::Client::new();
    let commits = source_with_standby(dir, repo);

    // Not writable, over the CLI and HTTP, with the way out.
    let o = tenet(dir, &["put", "sb", "t", r#"{"id":9,"v":"x"}"#]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("write to its primary"),
        "{}",
        stderr(&o)
    );
    let r = call(
        &c,
        "POST",
        &format!("{}/v1/tenants/sb/tables/t/rows", server.url),
        Some(json!({"rows": [{"id": 9, "v": "x"}]})),
    );
    crate::common::assert_error(r, 409, "TENANT_STATE");
    // Time travel, and nothing past what it applied.
    assert_eq!(rows(&server.url, "sb", Some(commits[1])).len(), 2);
    std::thread::sleep(Duration::from_millis(300));
    let now = "-0s";
    let o = tenet(dir, &["scan", "sb", "t", "--as-of", now]);
    assert!(stderr(&o).contains("is not applied yet"), "{}", stderr(&o));
    // The source lives: promotion is refused, and says what to do instead.
    let o = tenet(dir, &["promote", "sb"]);
    assert!(
        stderr(&o).contains("tenet switchover acme --to sb"),
        "{}",
        stderr(&o)
    );
    // Past the archive: refused with what the archive reaches.
    let o = tenet(dir, &["promote", "sb", "--until", now, "--force"]);
    assert!(stderr(&o).contains("is not archived"), "{}", stderr(&o));
    assert!(stderr(&o).contains("NOT_RESTORABLE"), "{}", stderr(&o));

    // A second standby, caught up; then the source is dropped: the standbys stay
    // readable, and one is promoted without --force, taking the source's name and
    // continuing its history.
    standby_of_acme(dir, "sb2", repo, "50ms");
    wait_applied(dir, "sb2", commits[2]);
    // A commit just before the drop: the drop ships it to the archive first.
    put(dir, "acme", &[(4, "w4")]);
    ok(dir, &["tenant", "drop", "acme"]);
    let st = json_out(&tenet(dir, &["--json", "standby", "status", "sb2"]));
    assert_eq!(st["state"], "standby", "{st}");
    let r = json_out(&tenet(dir, &["--json", "promote", "sb2", "--take-name"]));
    assert_eq!(r["tenant"], "acme", "{r}");
    assert_eq!(r["renamed_from"], "sb2", "{r}");
    assert_eq!(r["continues_history"], true, "{r}");
    assert!(r["problem"].is_null(), "{r}");
    assert_eq!(rows(&server.url, "acme", None).len(), 4);
    let after = put(dir, "acme", &[(11, "after")]);

    // The first standby now follows a history that `acme` writes. A forced
    // promotion (a failover: the source declared lost) takes the history over at the
    // end of its archive and reports the commit of `acme` that is not in it; `acme`'s
    // archiver then stops instead of writing a second future into the same history.
    let applied = ts(&wait_applied(dir, "sb", commits[2])["applied_ts"]);
    let o = tenet(dir, &["promote", "sb"]);
    assert!(
        stderr(&o).contains("source `acme` is still active"),
        "{}",
        stderr(&o)
    );
    let r = json_out(&tenet(
        dir,
        &[
            "--json",
            "promote",
            "sb",
            "--until",
            &applied.to_string(),
            "--force",
        ],
    ));
    assert_eq!(ts(&r["promoted_ts"]), applied, "{r}");
    assert_eq!(ts(&r["may_lose_after"]), applied, "{r}");
    assert_eq!(ts(&r["source_last_commit"]), after, "{r}");
    assert_eq!(r["lost_commits"], 1, "{r}");
    assert_eq!(rows(&server.url, "sb", None).len(), 4);
    put(dir, "sb", &[(10, "mine")]);
    // In the same store the live source was set read_only: one writable copy.
    assert!(r["problem"].as_str().unwrap().contains("read_only"), "{r}");
    let o = tenet(dir, &["put", "acme", "t", r#"{"id":12,"v":"x"}"#]);
    assert!(stderr(&o).contains("read_only"), "{}", stderr(&o));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = json_out(&tenet(dir, &["--json", "archive", "status", "acme"]));
        if st["status"] == "broken" {
            assert!(
                st["error"].as_str().unwrap().contains("took it over"),
                "{st}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acme's archiver kept writing: {st}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
}

#[test]
fn a_paused_standby_is_promoted_at_an_exact_earlier_time() {
    let (dir, repo) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (dir, repo) = (dir.path(), repo.path().to_str().unwrap());
    let server = Server::start(dir);
    source_with_standby(dir, repo);
    let st = json_out(&tenet(dir, &["--json", "standby", "pause", "sb"]));
    assert_eq!(st["paused"], true, "{st}");
    let mut at = Vec::new();
    for i in 4..=5 {
        at.push(put(dir, "acme", &[(i, &format!("w{i}"))]));
    }
    crate::common::wait_restorable(dir, "acme", at[1]);
    let st = json_out(&tenet(dir, &["--json", "standby", "status", "sb"]));
    assert!(
        ts(&st["applied_ts"]) < at[0],
        "a paused standby applied: {st}"
    );
    assert!(st["problem"].is_null(), "{st}");
    // Exactly the state after commit 4, not 5: a history of its own from there.
    let r = json_out(&tenet(
        dir,
        &[
            "--json",
            "promote",
            "sb",
            "--until",
            &at[0].to_string(),
            "--force",
        ],
    ));
    assert_eq!(ts(&r["promoted_ts"]), at[0], "{r}");
    assert_eq!(r["continues_history"], false, "{r}");
    let got: Vec<i64> = rows(&server.url, "sb", None).iter().map(|r| r.0).collect();
    assert_eq!(got, vec![1, 2, 3, 4]);
}

#[test]
fn a_standby_of_an_archive_started_before_its_backup_follows() {
    // `archive start --full-backup`: the archive's first segment begins before F.
    let (dir, repo) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (dir, repo) = (dir.path(), repo.path().to_str().unwrap());
    let server = Server::start(dir);
    kv_tenant(dir, "acme", &[]);
    put(dir, "acme", &[(1, "w1")]);
    let a = archive_start(dir, "acme", repo, &["--full-backup"]);
    let job = a["backup_job"].as_u64().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while json_out(&tenet(dir, &["--json", "jobs", "show", &job]))["state"] != "succeeded" {
        assert!(Instant::now() < deadline, "the backup did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    standby_of_acme(dir, "sb", repo, "50ms");
    let c = put(dir, "acme", &[(2, "w2")]);
    let st = wait_applied(dir, "sb", c);
    assert!(st["problem"].is_null(), "{st}");
    assert_eq!(rows(&server.url, "sb", None).len(), 2);
}

#[test]
fn a_standby_server_killed_while_it_applies_resumes_with_nothing_skipped_or_doubled() {
    let (da, db, repo) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (da, db, repo) = (da.path(), db.path(), repo.path().to_str().unwrap());
    let a = Server::start(da);
    kv_tenant(da, "acme", &[]);
    ok(da, &["backup", "full", "acme", "--repo", repo]);
    archive_start(da, "acme", repo, &[]);
    let mut b = Server::start(db);
    standby_of_acme(db, "acme", repo, "20ms");
    let writer = Writer::start(vec![a.url.clone()], "acme");
    for trial in 0..10u64 {
        std::thread::sleep(Duration::from_millis(150 + (trial * 37) % 250));
        b.child.kill().unwrap();
        let _ = b.child.wait();
        b = Server::start(db);
    }
    let acked = writer.finish();
    let last = acked.last().unwrap().1;
    let st = wait_applied(db, "acme", last);
    assert!(st["problem"].is_null(), "{st}");
    // At every 10th acknowledged commit, and at the end, the standby reads what the
    // source read.
    for (_, c, _) in acked.iter().step_by(10).chain(acked.last()) {
        assert_eq!(
            rows(&b.url, "acme", Some(*c)),
            rows(&a.url, "acme", Some(*c))
        );
    }
    assert_all_acked(&acked, &rows(&b.url, "acme", Some(last)));
}

#[test]
fn a_switchover_killed_at_each_step_leaves_exactly_one_writable_side() {
    for point in [
        "switchover-after-fence",
        "switchover-after-flush",
        "switchover-after-catch-up",
        "switchover-after-demote",
        "switchover-after-promote",
    ] {
        let (dir, repo) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (dir, repo) = (dir.path(), repo.path().to_str().unwrap());
        let mut server = Server::start_with(dir, &[("TENET_FAILPOINT", point.to_string())]);
        let commits = source_with_standby(dir, repo);
        let o = tenet(dir, &["switchover", "acme", "--to", "sb"]);
        assert!(!o.status.success(), "{point}: the server should have died");
        let _ = server.child.wait();
        let server = Server::start(dir);
        // The job resumes (or its cleanup runs) when the server starts again.
        let deadline = Instant::now() + Duration::from_secs(30);
        let job = loop {
            let jobs = json_out(&tenet(dir, &["--json", "jobs", "list"]));
            let job = jobs
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["kind"] == "switchover")
                .cloned()
                .unwrap();
            if ["succeeded", "failed", "cancelled"].contains(&job["state"].as_str().unwrap()) {
                break job;
            }
            assert!(
                Instant::now() < deadline,
                "{point}: the job never ended: {job}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let tenants = json_out(&tenet(dir, &["--json", "tenant", "list"]));
        let states: Vec<(String, String)> = tenants
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_string(),
                    t["state"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let active: Vec<&(String, String)> = states.iter().filter(|s| s.1 == "active").collect();
        assert_eq!(active.len(), 1, "{point}: {states:?} after {job}");
        // Whichever it is, it is named `acme`, has every acknowledged commit, and
        // takes writes.
        assert_eq!(active[0].0, "acme", "{point}: {states:?}");
        let got = rows(&server.url, "acme", None);
        let acked: Vec<(i64, u64, String)> = commits
            .iter()
            .enumerate()
            .map(|(i, c)| (i as i64 + 1, *c, String::new()))
            .collect();
        assert_all_acked(&acked, &got);
        put(dir, "acme", &[(100, "w100")]);
    }
}
