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

/// The value of sample `metric` with label `label=value` in a parsed scrape.
fn sample(scrape: &prometheus_parse::Scrape, metric: &str, label: (&str, &str)) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && s.labels.get(label.0) == Some(label.1))
        .and_then(|s| match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

fn secs(time: &str) -> f64 {
    tenet_store::Ts::parse_rfc3339(time).unwrap().millis() as f64 / 1000.0
}

#[test]
fn metrics_parse_and_agree_with_the_overview() {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    kv_tenant(d, "acme", &[]);
    put(d, "acme", &[(1, "a")]);
    let server = Server::start(d);
    let c = reqwest::blocking::Client::new();
    let u = |p: &str| format!("{}{p}", server.url);
    add_default_repo(
        &c,
        &server.url,
        "nightly",
        repo_dir.path().to_str().unwrap(),
    );
    let r = call(
        &c,
        "PUT",
        &u("/v1/tenants/acme/strategy"),
        Some(json!({"full": "@daily", "archive": true})),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while call(&c, "GET", &u("/v1/protection?refresh=true"), None).1["tenants"][0]["last_full"]
        .is_null()
    {
        assert!(Instant::now() < deadline, "no scheduled full backup");
        std::thread::sleep(Duration::from_millis(200));
    }
    put(d, "acme", &[(2, "b")]);
    let resp = crate::common::authed(c.get(u("/metrics")), &u("/metrics"))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = resp.text().unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let (_, o) = call(&c, "GET", &u("/v1/protection"), None);
    let acme = &o["tenants"][0];
    let until = sample(
        &scrape,
        "tenet_tenant_restorable_until_timestamp_seconds",
        ("tenant", "acme"),
    )
    .expect(&text);
    assert_eq!(until, secs(acme["restorable_until_time"].as_str().unwrap()));
    let full = sample(
        &scrape,
        "tenet_tenant_last_success_timestamp_seconds",
        ("tenant", "acme"),
    )
    .unwrap();
    assert_eq!(full, secs(acme["last_full"]["time"].as_str().unwrap()));
    let rpo = sample(&scrape, "tenet_tenant_rpo_seconds", ("tenant", "acme")).unwrap();
    assert!(
        (rpo - acme["rpo_ms"].as_u64().unwrap() as f64 / 1000.0).abs() < 5.0,
        "{rpo} vs {acme}"
    );
    let bytes = sample(&scrape, "tenet_repository_bytes", ("repo", "nightly")).unwrap();
    assert_eq!(
        bytes,
        o["repositories"][0]["bytes"].as_u64().unwrap() as f64
    );
    assert_eq!(
        sample(&scrape, "tenet_tenant_problems", ("tenant", "acme")),
        Some(acme["problems"].as_array().unwrap().len() as f64)
    );
    // Jobs, commits, store size, HTTP latency by route template.
    assert!(sample(&scrape, "tenet_jobs", ("kind", "backup_full")).unwrap() >= 1.0);
    let commits = scrape
        .samples
        .iter()
        .find(|s| s.metric == "tenet_commits_total")
        .unwrap();
    assert!(matches!(commits.value, prometheus_parse::Value::Counter(v) if v >= 1.0));
    assert!(text.contains("tenet_store_bytes "), "{text}");
    // The job pacer: no job runs, so the budget is unlimited and nothing is slowed.
    assert!(
        text.contains("tenet_jobs_io_budget_bytes_per_second 0\n"),
        "{text}"
    );
    assert!(text.contains("tenet_jobs_pacing_slowed 0"), "{text}");
    // (The parser crate's label pattern does not take `{` in values, so the route
    // template is checked in the text; the histogram itself in the parsed scrape.)
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "tenet_http_request_duration_seconds"
            && matches!(s.value, prometheus_parse::Value::Histogram(_))));
    assert!(
        text.contains(
            r#"method="PUT",route="/v1/tenants/{tenant}/strategy",status="200",le="+Inf"} 1"#
        ),
        "{text}"
    );
}
