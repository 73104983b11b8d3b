//! What `tenet serve` writes to its log, and what `/healthz` says about it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{bin, terminate};

#[test]
fn the_server_logs_jobs_without_colours_and_reports_an_absolute_data_dir() {
    let work = tempfile::tempdir().unwrap();
    let log_path = work.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // A relative data directory, and stderr redirected to a file (not a terminal).
    let mut child = Command::new(bin())
        .current_dir(work.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", "data"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let data = work.path().join("data");
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        if let Some(f) = tenet_server::server::read_server_file(&data) {
            if tenet_server::client::Client::probe(&f.url).is_some() {
                break f.url;
            }
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    let token =
        tenet_server::auth::read_token_file(&data.join(tenet_server::auth::ADMIN_TOKEN_FILE))
            .expect("the first admin token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join(tenet_server::auth::ADMIN_TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "admin.token is {mode:o}");
    }
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let c = reqwest::blocking::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let health: Value = c
        .get(format!("{url}/healthz"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let abs = std::fs::canonicalize(&data).unwrap();
    assert_eq!(health["data_dir"], abs.display().to_string(), "{health}");

    let post = |path: &str, body: Value| -> Value {
        c.post(format!("{url}/v1/{path}"))
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    post("tenants", json!({"name": "acme"}));
    let repo = work.path().join("repo");
    let job = post("backups", json!({"tenant": "acme", "repo": repo}));
    let id = job["id"].as_u64().unwrap();
    // A job that fails: verify a backup whose manifest is gone.
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let j: Value = c
            .get(format!("{url}/v1/jobs/{id}"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if j["state"] == "succeeded" {
            break j;
        }
        assert!(Instant::now() < deadline, "{j}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let backup_id = done["result"]["backup_id"].as_str().unwrap().to_string();
    for entry in walk(&repo) {
        if entry.ends_with("manifest.json") {
            std::fs::remove_file(&entry).unwrap();
        }
    }
    let verify = post(&format!("backups/{backup_id}/verify"), json!({}));
    let vid = verify["id"].as_u64();
    if let Some(vid) = vid {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let j: Value = c
                .get(format!("{url}/v1/jobs/{vid}"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            if j["state"] == "failed" {
                break;
            }
            assert!(Instant::now() < deadline, "{j}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    terminate(&child);
    assert!(child.wait().unwrap().success());

    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escapes in a redirected log:\n{text}"
    );
    // The secret is printed once on stdout at the first start, never logged.
    assert!(!text.contains(&token), "the token is in the log:\n{text}");
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle) && l.contains(&format!("job={id}")))
            .unwrap_or_else(|| panic!("no `{needle}` line for job {id}:\n{text}"))
            .to_string()
    };
    let started = line("job started");
    assert!(started.contains("INFO"), "{started}");
    assert!(started.contains("kind=backup_full"), "{started}");
    assert!(started.contains("tenant=acme"), "{started}");
    line("job succeeded");
    if let Some(vid) = vid {
        let failed = text
            .lines()
            .find(|l| l.contains("job failed") && l.contains(&format!("job={vid}")))
            .unwrap_or_else(|| panic!("no failure line for job {vid}:\n{text}"));
        assert!(failed.contains("code="), "{failed}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
