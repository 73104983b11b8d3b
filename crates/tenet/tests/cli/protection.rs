//! Data protection in the orders users take, through the real binary: a backup before
//! the archive, archive stop and start, another repository, renames and swapped names
//! while archiving, deleting a backup others depend on, and recovery from the
//! repository alone after the data directory is lost.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::{
    archive_start, json_out, kv_tenant, ok, stderr, tenet, ts_opt, wait_restorable, Server,
};

/// Tenant `name` with table `t` (id int, v string) and row 1.
fn tenant(dir: &Path, name: &str) {
    kv_tenant(dir, name, &[]);
    put(dir, name, 1);
}

/// Puts row `id` into `tenant`.t; returns its commit ts.
fn put(dir: &Path, tenant: &str, id: i64) -> u64 {
    let row = format!(r#"{{"id":{id},"v":"row {id}"}}"#);
    let w = json_out(&tenet(dir, &["--json", "put", tenant, "t", &row]));
    ts_opt(&w["commit_ts"]).expect("commit_ts")
}

fn backup(dir: &Path, args: &[&str]) -> Value {
    let mut a = vec!["--json", "backup"];
    a.extend_from_slice(args);
    let b = json_out(&tenet(dir, &a));
    assert_eq!(b["state"], "succeeded", "{b}");
    b
}

fn status(dir: &Path, tenant: &str) -> Value {
    json_out(&tenet(dir, &["--json", "archive", "status", tenant]))
}

fn points(dir: &Path, args: &[&str]) -> Vec<(u64, u64)> {
    let mut a = vec!["--json", "restore-points"];
    a.extend_from_slice(args);
    json_out(&tenet(dir, &a))
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (ts_opt(&p["from_ts"]).unwrap(), ts_opt(&p["to_ts"]).unwrap()))
        .collect()
}

fn has_row(dir: &Path, tenant: &str, id: i64) -> bool {
    let r = json_out(&tenet(
        dir,
        &["--json", "get", tenant, "t", &id.to_string()],
    ));
    !r["row"].is_null()
}

#[test]
fn backup_first_then_archive_leaves_no_gap_and_status_tells_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path().display().to_string();
    tenant(d, "acme");
    let _server = Server::start(d);

    // The natural order: a full backup, then the archive, then writes.
    let b = backup(d, &["full", "acme", "--repo", &r]);
    let f = ts_opt(&b["result"]["backup_ts"]).unwrap();
    let a = archive_start(d, "acme", &r, &[]);
    assert!(a["problem"].is_null(), "{a}");
    assert!(ts_opt(&a["restorable_until_ts"]).unwrap() >= f, "{a}");
    let c2 = put(d, "acme", 2);
    let st = wait_restorable(d, "acme", c2);
    assert!(st["problem"].is_null(), "{st}");
    let p = points(d, &["acme"]);
    assert_eq!(p.len(), 1, "one range from the backup on: {p:?}");
    assert!(p[0].0 == f && p[0].1 >= c2, "{p:?}");
    let o = ok(d, &["restore", "acme", "--latest", "--into", "acme_latest"]);
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        said.contains("restored `acme` to") && said.contains("from the log"),
        "a PITR says what it restored: {said}"
    );
    assert!(has_row(d, "acme_latest", 2));

    // An idle tenant with everything restorable has an RPO of 0, however old the
    // last segment.
    let st = status(d, "acme");
    assert_eq!(st["rpo_ms"], 0, "{st}");

    // Stop, write, start again: the archive continues where it was restorable.
    ok(d, &["archive", "stop", "acme"]);
    let c3 = put(d, "acme", 3);
    std::thread::sleep(Duration::from_millis(20));
    let st = status(d, "acme");
    assert!(
        st["rpo_ms"].as_u64().unwrap() >= 20,
        "a commit is not restorable: {st}"
    );
    // Not shipped yet: said as such, not as a gap.
    let o = tenet(
        d,
        &["restore", "acme", "--to", &c3.to_string(), "--into", "x"],
    );
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains("archived up to") && !e.contains("gap"), "{e}");
    archive_start(d, "acme", &r, &[]);
    wait_restorable(d, "acme", c3);
    let p = points(d, &["acme"]);
    assert!(p.len() == 1 && p[0].0 == f && p[0].1 >= c3, "{p:?}");

    // Another repository holds no backup: starting there says a full backup is needed,
    // and offers to take it.
    ok(d, &["archive", "stop", "acme"]);
    let other = tempfile::tempdir().unwrap();
    let o = other.path().display().to_string();
    let a = json_out(&tenet(
        d,
        &["--json", "archive", "start", "acme", "--repo", &o],
    ));
    assert!(a["restorable_until_ts"].is_null(), "{a}");
    assert!(a["rpo_ms"].is_null(), "{a}");
    let problem = a["problem"].as_str().unwrap_or_default();
    assert!(problem.contains("tenet backup full acme"), "{a}");
    let text = ok(d, &["archive", "status", "acme"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("PROBLEM") && text.contains("nothing yet"),
        "{text}"
    );
    ok(d, &["archive", "stop", "acme"]);
    let a = archive_start(d, "acme", &o, &["--full-backup"]);
    assert!(a["backup_job"].as_u64().is_some(), "{a}");
    let c4 = put(d, "acme", 4);
    let st = wait_restorable(d, "acme", c4);
    assert!(st["problem"].is_null(), "{st}");
}

#[test]
fn tenants_are_followed_by_id_through_renames_swaps_and_drops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path().display().to_string();
    tenant(d, "a");
    tenant(d, "b");
    let _server = Server::start(d);
    let id_of = |name: &str| -> u64 {
        json_out(&tenet(d, &["--json", "tenant", "show", name]))["id"]
            .as_u64()
            .unwrap()
    };
    let (ida, idb) = (id_of("a"), id_of("b"));
    backup(d, &["full", "a", "--repo", &r]);
    backup(d, &["full", "b", "--repo", &r]);
    archive_start(d, "a", &r, &[]);

    // Rename while archiving: the archiver keeps going under the new name.
    ok(d, &["tenant", "rename", "a", "a2"]);
    let c = put(d, "a2", 7);
    let st = wait_restorable(d, "a2", c);
    assert_eq!(st["status"], "running", "{st}");
    assert!(st["error"].is_null() && st["problem"].is_null(), "{st}");
    assert_eq!(st["tenant"], "a2", "{st}");
    let list = json_out(&tenet(d, &["--json", "backups", "list", "a2"]));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["tenant"], "a2");
    assert_eq!(list[0]["tenant_at_backup"], "a");
    assert_eq!(list[0]["tenant_id"], ida);
    let jobs = json_out(&tenet(d, &["--json", "jobs", "list"]));
    let first = &jobs.as_array().unwrap()[0];
    assert_eq!(first["tenant"], "a2", "jobs show current names: {first}");

    // Swap names: `b` is now called `a`. Every command about `a` is about it.
    ok(d, &["tenant", "rename", "b", "a"]);
    put(d, "a", 8);
    let c = put(d, "a2", 9);
    wait_restorable(d, "a2", c);
    let list = json_out(&tenet(d, &["--json", "backups", "list", "a"]));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["tenant_id"], idb, "{list}");
    let pa = points(d, &["a"]);
    let pa2 = points(d, &["a2"]);
    assert_ne!(pa, pa2);
    assert!(pa2[0].1 >= c, "{pa2:?}");
    ok(d, &["restore", "a2", "--latest", "--into", "a2_copy"]);
    assert!(has_row(d, "a2_copy", 7) && has_row(d, "a2_copy", 9));
    assert!(
        !has_row(d, "a2_copy", 8),
        "a write to the new `a` is not `a2`'s"
    );
    ok(d, &["restore", "a", "--latest", "--into", "a_copy"]);
    assert!(!has_row(d, "a_copy", 7), "`a` is the former `b` now");

    // Drop the archived tenant: its backups and restore points stay reachable by the
    // name it had.
    ok(d, &["archive", "stop", "a2"]);
    ok(d, &["tenant", "drop", "a2"]);
    let list = json_out(&tenet(d, &["--json", "backups", "list", "a2"]));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["tenant_live"], false);
    assert_eq!(points(d, &["a2"]), pa2);
    // And by id.
    let hash = format!("#{ida}");
    assert_eq!(points(d, &[&hash]), pa2);
}

#[test]
fn a_backup_others_depend_on_is_not_deleted_silently() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path().display().to_string();
    tenant(d, "dep");
    let full = backup(d, &["full", "dep", "--repo", &r]);
    let full_id = full["result"]["backup_id"].as_str().unwrap().to_string();
    put(d, "dep", 2);
    let incr = backup(d, &["incr", "dep"]);
    let incr_id = incr["result"]["backup_id"].as_str().unwrap().to_string();

    let o = tenet(d, &["backups", "delete", &full_id]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(
        e.contains("BACKUP_IN_USE") && e.contains(&incr_id) && e.contains("--force"),
        "{e}"
    );
    assert_eq!(points(d, &["dep"]).len(), 1, "nothing was deleted");

    ok(d, &["backups", "delete", &full_id, "--force"]);
    // The incremental's chain lost its full: nothing continues it.
    let o = tenet(d, &["backup", "incr", "dep"]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains("no restorable backup to continue"), "{e}");
    backup(d, &["full", "dep", "--repo", &r]);
    backup(d, &["incr", "dep"]);
}

#[test]
fn a_lost_data_directory_is_recovered_from_the_repository_alone() {
    let dir = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path().display().to_string();
    let old = dir.path().join("old");
    tenant(&old, "acme");
    backup(&old, &["full", "acme", "--repo", &r]);
    let c2 = put(&old, "acme", 2);
    backup(&old, &["incr", "acme"]);
    let before = points(&old, &["acme"]);
    std::fs::remove_dir_all(&old).unwrap();

    // A fresh store pointed at the repository. Its first tenant gets the id `acme`
    // had (ids are per store): it must not inherit acme's backups.
    let new = dir.path().join("new");
    let _server = Server::start(&new);
    tenant(&new, "other");
    assert!(points(&new, &["other", "--repo", &r]).is_empty());
    let o = tenet(&new, &["backup", "incr", "other", "--repo", &r]);
    assert!(
        stderr(&o).contains("no restorable backup"),
        "{}",
        stderr(&o)
    );
    let o = tenet(&new, &["restore-points", "acme"]);
    assert!(stderr(&o).contains("--repo"), "{}", stderr(&o));
    let list = json_out(&tenet(&new, &["--json", "backups", "list", "--repo", &r]));
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[0]["tenant"], "acme");
    assert_eq!(points(&new, &["acme", "--repo", &r]), before);
    ok(
        &new,
        &[
            "restore",
            "acme",
            "--to",
            &(c2 - 1).to_string(),
            "--repo",
            &r,
            "--into",
            "acme_before",
        ],
    );
    assert!(has_row(&new, "acme_before", 1) && !has_row(&new, "acme_before", 2));
    // A name the repository does not know (say the tenant was renamed after its last
    // backup) is refused with the names it does know.
    let o = tenet(
        &new,
        &["restore", "acme2", "--latest", "--repo", &r, "--into", "x"],
    );
    assert!(
        stderr(&o).contains("TENANT_NOT_FOUND") && stderr(&o).contains("`acme` (#1)"),
        "{}",
        stderr(&o)
    );
    // Last, the tenant back under its own name.
    ok(
        &new,
        &[
            "restore", "acme", "--latest", "--repo", &r, "--into", "acme",
        ],
    );
    assert!(has_row(&new, "acme", 2));
}

#[test]
fn a_mistyped_repository_is_never_created() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = tempfile::tempdir().unwrap();
    tenant(d, "m");
    // Reads never create anything.
    let typo = base.path().join("typo");
    let t = typo.display().to_string();
    let o = tenet(d, &["restore-points", "m", "--repo", &t]);
    assert!(
        stderr(&o).contains("REPOSITORY_NOT_FOUND"),
        "{}",
        stderr(&o)
    );
    let o = tenet(d, &["backups", "list", "--repo", &t]);
    assert!(
        stderr(&o).contains("REPOSITORY_NOT_FOUND"),
        "{}",
        stderr(&o)
    );
    assert!(!typo.exists());
    // An existing directory that is not a repository is not read as an empty one.
    let plain = base.path().display().to_string();
    let o = tenet(d, &["restore-points", "m", "--repo", &plain]);
    assert!(
        stderr(&o).contains("not a Tenet repository"),
        "{}",
        stderr(&o)
    );
    // A backup never creates a whole new path (an unmounted disk)…
    let deep = base.path().join("not-mounted").join("backups");
    let o = tenet(
        d,
        &["backup", "full", "m", "--repo", &deep.display().to_string()],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("parent directory"), "{}", stderr(&o));
    assert!(!deep.exists() && !deep.parent().unwrap().exists());
    // …and says so loudly when it creates a repository.
    let o = ok(d, &["backup", "full", "m", "--repo", &t]);
    assert!(stderr(&o).contains("created a new one"), "{}", stderr(&o));
    let o = ok(d, &["backup", "full", "m", "--repo", &t]);
    assert!(!stderr(&o).contains("created"), "{}", stderr(&o));
}

#[test]
fn an_s3_repository_without_credentials_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tenant(d, "s");
    let mut cmd = std::process::Command::new(crate::common::bin());
    cmd.arg("--data-dir")
        .arg(d)
        .args(["backup", "full", "s", "--repo", "s3://bucket/prefix"])
        .env_remove("TENET_SERVER");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("TENET_S3") {
            cmd.env_remove(k);
        }
    }
    // Only the endpoint: the key pair is missing, and no request is made to find one.
    cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let o = cmd.output().unwrap();
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(
        e.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set")
            && e.contains("tenet serve"),
        "{e}"
    );
    assert!(!e.contains("169.254"), "{e}");
}
