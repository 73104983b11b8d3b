//! Prune and strategies through the real binary: SIGKILL during prune never leaves a
//! listed backup with missing files and the resumed prune finishes; bad strategies
//! and repositories are refused over HTTP with nothing changed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::Rng;
use serde_json::json;

use crate::common::{
    add_default_repo, assert_error, bin, call, json_out, kv_tenant, ok, put, tenet, Server,
};

/// Every backup a listing of `repo` shows has every file its manifest names.
fn check_listed_backups_whole(repo: &Path) {
    let backups = repo.join("tenants");
    for tenant in std::fs::read_dir(&backups).unwrap() {
        let dir = tenant.unwrap().path().join("backups");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for b in entries {
            let b = b.unwrap().path();
            let Ok(text) = std::fs::read_to_string(b.join("manifest.json")) else {
                continue; // not listed: no manifest
            };
            let m: serde_json::Value = serde_json::from_str(&text).unwrap();
            let body = &m["body"];
            let mut paths: Vec<String> = Vec::new();
            for t in body["tables"].as_array().unwrap() {
                for f in t["files"].as_array().unwrap() {
                    paths.push(f["path"].as_str().unwrap().to_string());
                }
            }
            for s in body["segments"].as_array().into_iter().flatten() {
                paths.push(s["path"].as_str().unwrap().to_string());
            }
            for p in paths {
                assert!(
                    b.join(&p).exists(),
                    "listed backup {} lacks {p}",
                    b.display()
                );
            }
        }
    }
}

#[test]
fn sigkill_during_prune_never_leaves_a_listed_backup_partly_gone() {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = tempfile::tempdir().unwrap();
    let (d, repo) = (dir.path(), repo_dir.path().to_str().unwrap().to_string());
    kv_tenant(d, "acme", &[]);
    let mut rng = rand::rng();
    let mut resumed = 0;
    let prune = &[
        "backups",
        "prune",
        "--tenant",
        "acme",
        "--keep-full",
        "1",
        "--repo",
        &repo,
    ];
    for trial in 0..10 {
        for i in 0..3 {
            put(d, "acme", &[(trial * 10 + i, "v")]);
            ok(d, &["backup", "full", "acme", "--repo", &repo]);
        }
        let mut cmd = Command::new(bin());
        cmd.args(["--data-dir"])
            .arg(d)
            .args(prune)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Half the trials die exactly between a manifest and its files; the others
        // are SIGKILLed at a random moment.
        if trial % 2 == 0 {
            cmd.env("TENET_FAILPOINT", "prune-after-manifest");
        }
        let mut child = cmd.spawn().unwrap();
        if trial % 2 == 1 {
            std::thread::sleep(Duration::from_millis(rng.random_range(50..400)));
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        if trial % 2 == 0 {
            assert!(
                !status.success(),
                "trial {trial}: the failpoint was not reached"
            );
        }
        check_listed_backups_whole(repo_dir.path());
        // Resume what the kill left, then prune again: one backup remains.
        let jobs = json_out(&tenet(d, &["--json", "jobs", "list"]));
        for j in jobs.as_array().unwrap() {
            let state = j["state"].as_str().unwrap();
            if j["kind"] == "prune" && !["succeeded", "failed", "cancelled"].contains(&state) {
                let id = j["id"].to_string();
                ok(d, &["jobs", "resume", &id]);
                resumed += 1;
            }
        }
        ok(d, prune);
        check_listed_backups_whole(repo_dir.path());
        let listed = json_out(&tenet(d, &["--json", "backups", "list", "--repo", &repo]));
        assert_eq!(
            listed.as_array().unwrap().len(),
            1,
            "trial {trial}: {listed}"
        );
    }
    // Every failpoint trial left an interrupted prune that was resumed.
    assert!(
        resumed >= 5,
        "only {resumed} interrupted prunes were resumed"
    );
    // The newest backup still restores.
    ok(
        d,
        &[
            "restore", "acme", "--latest", "--repo", &repo, "--into", "acme2",
        ],
    );
}

#[test]
fn bad_strategies_and_repositories_are_refused_with_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    kv_tenant(d, "acme", &[]);
    let server = Server::start(d);
    let c = reqwest::blocking::Client::new();
    let u = |p: &str| format!("{}{p}", server.url);
    let repo = repo_dir.path().to_str().unwrap();
    add_default_repo(&c, &server.url, "nightly", repo);
    let good = json!({"full": "0 2 * * *", "archive": true, "keep_within_secs": 1_209_600, "keep_full": 4, "repo": "nightly"});
    let r = call(
        &c,
        "PUT",
        &u("/v1/tenants/acme/strategy"),
        Some(good.clone()),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    let before = call(&c, "GET", &u("/v1/tenants/acme/strategy"), None).1;

    let bad = [
        (json!({"full": "0 2 * *"}), 400, "INVALID_ARGUMENT", "field"),
        (
            json!({"full": "0 25 * * *"}),
            400,
            "INVALID_ARGUMENT",
            "cron",
        ),
        (
            json!({"full": "@daily", "keep_within_secs": 0}),
            400,
            "INVALID_ARGUMENT",
            "keep-within",
        ),
        (
            json!({"full": "@daily", "keep_full": 0}),
            400,
            "INVALID_ARGUMENT",
            "keep-full",
        ),
        (
            json!({"full": "@daily", "repo": "weekly"}),
            400,
            "INVALID_ARGUMENT",
            "no repository named `weekly`",
        ),
        (
            json!({"full": "@daily", "incr_secs": 5}),
            400,
            "INVALID_ARGUMENT",
            "1m to 31d",
        ),
        (
            json!({"keep_full": 2}),
            400,
            "INVALID_ARGUMENT",
            "at least one",
        ),
        (
            json!({"full": "@daily", "bogus": 1}),
            400,
            "MALFORMED_JSON",
            "bogus",
        ),
    ];
    for (body, status, code, says) in bad {
        let msg = assert_error(
            call(
                &c,
                "PUT",
                &u("/v1/tenants/acme/strategy"),
                Some(body.clone()),
            ),
            status,
            code,
        );
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let msg = assert_error(
        call(
            &c,
            "PUT",
            &u("/v1/tenants/nobody/strategy"),
            Some(good.clone()),
        ),
        404,
        "TENANT_NOT_FOUND",
    );
    assert!(msg.contains("nobody"), "{msg}");
    assert_eq!(
        call(&c, "GET", &u("/v1/tenants/acme/strategy"), None).1,
        before
    );

    // Repositories: a bad name, a duplicate, one in use, an unknown one.
    assert_error(
        call(
            &c,
            "POST",
            &u("/v1/repos"),
            Some(json!({"name": "Bad/Name", "url": repo})),
        ),
        400,
        "INVALID_ARGUMENT",
    );
    assert_error(
        call(
            &c,
            "POST",
            &u("/v1/repos"),
            Some(json!({"name": "nightly", "url": repo})),
        ),
        409,
        "REPOSITORY_CONFLICT",
    );
    let msg = assert_error(
        call(&c, "DELETE", &u("/v1/repos/nightly"), None),
        409,
        "REPOSITORY_CONFLICT",
    );
    assert!(msg.contains("acme"), "{msg}");
    assert_error(
        call(&c, "GET", &u("/v1/repos/weekly"), None),
        404,
        "REPOSITORY_NOT_FOUND",
    );
    assert_error(
        call(
            &c,
            "POST",
            &u("/v1/repos"),
            Some(
                json!({"name": "s3", "url": "s3://b/p", "access_key_env": "NOT_SET_ANYWHERE_1", "secret_key_env": "NOT_SET_ANYWHERE_2"}),
            ),
        ),
        400,
        "INVALID_REPOSITORY",
    );
    assert_eq!(
        call(&c, "GET", &u("/v1/repos"), None)
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Prune: a zero window is refused; the default strategy covers tenants created later.
    assert_error(
        call(
            &c,
            "POST",
            &u("/v1/prune"),
            Some(json!({"tenant": "acme", "keep_within_secs": 0})),
        ),
        400,
        "INVALID_ARGUMENT",
    );
    let r = call(
        &c,
        "PUT",
        &u("/v1/strategy"),
        Some(json!({"full": "@daily", "keep_full": 2})),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    let r = call(
        &c,
        "POST",
        &u("/v1/tenants"),
        Some(json!({"name": "later"})),
    );
    assert!(r.0 == 200 || r.0 == 201, "{}", r.1);
    let s = call(&c, "GET", &u("/v1/tenants/later/strategy"), None).1;
    assert_eq!(s["inherited"], json!(true), "{s}");
    assert_eq!(s["keep_full"], json!(2), "{s}");
    // Through the CLI, a name is resolved by the server.
    let o = tenet(
        d,
        &[
            "--server",
            &server.url,
            "--json",
            "backups",
            "prune",
            "--tenant",
            "acme",
            "--dry-run",
        ],
    );
    let v = json_out(&o);
    assert_eq!(
        v["plans"][0]["repo"],
        json!(format!("file://{repo}")),
        "{v}"
    );
}
