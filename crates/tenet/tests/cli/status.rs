//! The protection overview through a real server: the scheduler protects a tenant with
//! a strategy on its own, the overview says so with the planner's window, and the
//! unprotected tenant comes first with its problems.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{add_default_repo, call, json_out, kv_tenant, put, tenet, Server};

#[test]
fn status_shows_the_scheduler_protecting_a_tenant_and_the_unprotected_one_first() {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    kv_tenant(d, "acme", &[]);
    kv_tenant(d, "beta", &[]);
    put(d, "acme", &[(1, "a"), (2, "b")]);
    let server = Server::start(d);
    let c = reqwest::blocking::Client::new();
    let u = |p: &str| format!("{}{p}", server.url);
    let repo = repo_dir.path().to_str().unwrap();
    add_default_repo(&c, &server.url, "nightly", repo);
    let r = call(
        &c,
        "PUT",
        &u("/v1/tenants/acme/strategy"),
        Some(json!({"full": "0 2 * * *", "archive": true, "keep_within_secs": 604_800})),
    );
    assert_eq!(r.0, 200, "{}", r.1);

    // The scheduler takes acme's first full backup at once and starts its archiver.
    let deadline = Instant::now() + Duration::from_secs(30);
    let overview = loop {
        let (status, o) = call(&c, "GET", &u("/v1/protection?refresh=true"), None);
        assert_eq!(status, 200, "{o}");
        let acme = o["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tenant"] == "acme")
            .cloned()
            .unwrap();
        if !acme["last_full"].is_null() && acme["archive_running"] == true {
            break o;
        }
        assert!(Instant::now() < deadline, "acme was not protected: {acme}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let tenants = overview["tenants"].as_array().unwrap();
    // Worst first: beta has no strategy and nothing restorable.
    assert_eq!(tenants[0]["tenant"], "beta", "{overview}");
    let problems: Vec<&str> = tenants[0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        problems.iter().any(|p| p.starts_with("no strategy")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("nothing is restorable")),
        "{problems:?}"
    );
    let acme = &tenants[1];
    assert_eq!(acme["problems"], json!([]), "{acme}");
    assert_eq!(acme["own_strategy"], true);
    assert_eq!(acme["archive"], "running");
    // 02:00 UTC plus the tenant's spread (less than 2.4 h).
    let next = acme["next_full_time"].as_str().unwrap();
    assert!(
        ["T02:", "T03:", "T04:"].iter().any(|h| next.contains(h)),
        "{acme}"
    );
    // The window is the planner's: the same start as `restore-points`.
    let (_, points) = call(&c, "GET", &u("/v1/tenants/acme/restore-points"), None);
    assert_eq!(
        acme["restorable"][0]["from_ts"], points[0]["from_ts"],
        "{acme} {points}"
    );
    assert!(acme["rpo_ms"].as_u64().is_some());
    // Usage: the repository by name, with acme's objects.
    let repos = overview["repositories"].as_array().unwrap();
    assert_eq!(repos.len(), 1, "{overview}");
    assert_eq!(repos[0]["name"], "nightly");
    assert_eq!(repos[0]["bytes"], acme["repo_bytes"]);
    assert!(acme["repo_objects"].as_u64().unwrap() >= 1);

    // The CLI prints the same, worst first.
    let o = tenet(d, &["--server", &server.url, "status"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{text}");
    let beta_at = text.find("\nbeta ").unwrap();
    let acme_at = text.find("\nacme ").unwrap();
    assert!(beta_at < acme_at, "{text}");
    assert!(text.contains("no strategy"), "{text}");
    let v: Value = json_out(&tenet(d, &["--server", &server.url, "--json", "status"]));
    assert_eq!(v["tenants"].as_array().unwrap().len(), 2);
}
