//! What the API refuses and how it says so, over real HTTP against `tenet serve`:
//! unknown fields, non-object bodies, out-of-range parameters, bad repository paths,
//! requests hyper refuses before routing; and commit timestamps as strings.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::common::{assert_error, call, stderr, tenet, ts, Server};

fn setup() -> (tempfile::TempDir, Server, Client, String) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let base = format!("{}/v1", server.url);
    let c = Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let (s, v) = call(
        &c,
        "POST",
        &format!("{base}/tenants"),
        Some(json!({"name": "acme"})),
    );
    assert_eq!(s, 201, "{v}");
    (dir, server, c, base)
}

#[test]
fn unknown_fields_are_refused_naming_the_field_and_the_allowed_ones() {
    let (dir, _server, c, base) = setup();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    for (url, body, allowed) in [
        (
            format!("{base}/backups"),
            json!({"tenant": "acme", "repository": repo}),
            "repo",
        ),
        (
            format!("{base}/restores"),
            json!({"source": "acme", "target": "b", "latest": true, "repository": repo}),
            "repo",
        ),
        (
            format!("{base}/tenants/acme/archive"),
            json!({"repository": repo}),
            "repo",
        ),
        (
            format!("{base}/backups/some-id/verify"),
            json!({"repository": repo}),
            "repo",
        ),
        (
            format!("{base}/tenants/acme/tables"),
            json!({"name": "t", "columns": [{"name": "id", "type": "int", "nullable": true}], "primary_key": ["id"]}),
            "type",
        ),
    ] {
        let msg = assert_error(call(&c, "POST", &url, Some(body)), 400, "MALFORMED_JSON");
        assert!(
            msg.contains("`repository`") || msg.contains("`nullable`"),
            "{msg}"
        );
        assert!(msg.contains(&format!("`{allowed}`")), "{msg}");
    }
    // Nothing was started: no job, no repository.
    assert_eq!(call(&c, "GET", &format!("{base}/jobs"), None).1, json!([]));
    assert!(!dir.path().join("repo").exists());
    // Query strings too: a misspelt filter does not list everything.
    let msg = assert_error(
        call(&c, "GET", &format!("{base}/backups?tenantt=acme"), None),
        400,
        "INVALID_ARGUMENT",
    );
    assert!(msg.contains("tenantt"), "{msg}");
}

#[test]
fn only_json_objects_are_accepted_as_bodies() {
    let (_dir, _server, c, base) = setup();
    let raw = |url: String, body: &str| {
        let resp = crate::common::authed(c.post(&url), &url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().unwrap())
    };
    for (url, body) in [
        (format!("{base}/tenants"), r#"["evil", 7200]"#),
        (format!("{base}/tenants"), r#" ["evil"]"#),
        (format!("{base}/backups"), r#"["acme"]"#),
        (format!("{base}/tenants/acme/snapshots"), r#"["s1"]"#),
        (format!("{base}/tenants/acme/txn"), r#"[[]]"#),
    ] {
        let msg = assert_error(raw(url, body), 400, "MALFORMED_JSON");
        assert!(msg.contains("JSON object"), "{msg}");
    }
    let tenants = call(&c, "GET", &format!("{base}/tenants"), None).1;
    assert_eq!(tenants.as_array().unwrap().len(), 1, "{tenants}");
    assert_eq!(call(&c, "GET", &format!("{base}/jobs"), None).1, json!([]));
}

#[test]
fn durations_and_sizes_are_bounded_with_the_range_in_the_message() {
    let (dir, _server, c, base) = setup();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    let cases = [
        (
            format!("{base}/tenants/acme/archive"),
            json!({"repo": repo, "interval_ms": u64::MAX}),
            "interval_ms 18446744073709551615 is out of range; use 10 to 3600000",
        ),
        (
            format!("{base}/tenants/acme/archive"),
            json!({"repo": repo, "segment_max_bytes": 0}),
            "segment_max_bytes 0 is out of range; use 4096 to 1073741824",
        ),
        (
            format!("{base}/tenants/acme/archive"),
            json!({"repo": repo, "budget_secs": 99_999_999u64}),
            "budget_secs 99999999 is out of range; use 0 to 2592000",
        ),
        (
            format!("{base}/backups"),
            json!({"tenant": "acme", "repo": repo, "throttle_bytes_per_sec": 0}),
            "throttle_bytes_per_sec 0 is out of range; use 1024 to 1099511627776",
        ),
        (
            format!("{base}/backups/x/verify"),
            json!({"throttle_bytes_per_sec": 1}),
            "throttle_bytes_per_sec 1 is out of range",
        ),
        (
            format!("{base}/restores"),
            json!({"source": "acme", "target": "b", "latest": true, "throttle_bytes_per_sec": 5}),
            "throttle_bytes_per_sec 5 is out of range",
        ),
        (
            format!("{base}/tenants"),
            json!({"name": "b", "history_retention_secs": u64::MAX}),
            "history_retention_secs 18446744073709551615 is out of range; use 0 to 315360000",
        ),
    ];
    for (url, body, want) in cases {
        let msg = assert_error(call(&c, "POST", &url, Some(body)), 400, "INVALID_ARGUMENT");
        assert!(msg.contains(want), "{msg}");
    }
    let msg = assert_error(
        call(
            &c,
            "PATCH",
            &format!("{base}/tenants/acme"),
            Some(json!({"history_retention_secs": 400_000_000u64})),
        ),
        400,
        "INVALID_ARGUMENT",
    );
    assert!(msg.contains("use 0 to 315360000"), "{msg}");
    let msg = assert_error(
        call(
            &c,
            "GET",
            &format!("{base}/tenants/acme/tables/t/rows?limit=100001"),
            None,
        ),
        400,
        "INVALID_ARGUMENT",
    );
    assert!(
        msg.contains("limit 100001 is out of range; use 1 to 100000"),
        "{msg}"
    );
    // Nothing started.
    assert_eq!(call(&c, "GET", &format!("{base}/jobs"), None).1, json!([]));
    let st = call(&c, "GET", &format!("{base}/tenants/acme/archive"), None);
    assert_ne!(st.1["status"], "running", "{}", st.1);

    // The embedded CLI gets the same answer from the same check.
    let other = tempfile::tempdir().unwrap();
    let o = tenet(other.path(), &["tenant", "create", "acme"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tenet(
        other.path(),
        &["backup", "full", "acme", "--repo", repo, "--throttle", "1"],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("throttle_bytes_per_sec 1 is out of range; use 1024 to"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_control_character_in_a_repository_path_is_an_invalid_repository() {
    let (dir, _server, c, base) = setup();
    let bad = format!("{}/a\u{0}b", dir.path().display());
    for (method, url, body) in [
        (
            "POST",
            format!("{base}/backups"),
            Some(json!({"tenant": "acme", "repo": bad})),
        ),
        (
            "POST",
            format!("{base}/tenants/acme/archive"),
            Some(json!({"repo": bad})),
        ),
        (
            "POST",
            format!("{base}/tenants/acme/archive"),
            Some(json!({"repo": "file:///tmp/x\ny"})),
        ),
        (
            "GET",
            format!("{base}/tenants/acme/restore-points?repo=%2Ftmp%2Fa%00b"),
            None,
        ),
    ] {
        let msg = assert_error(call(&c, method, &url, body), 400, "INVALID_REPOSITORY");
        assert!(msg.contains("control character"), "{msg}");
    }
}

/// Sends raw bytes and reads the answer until the server closes the connection.
fn raw_http(addr: &str, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if let Some(i) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&out[..i]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse::<usize>().unwrap());
                    if len.is_some_and(|len| out.len() >= i + 4 + len) {
                        break;
                    }
                }
            }
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an answer head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

#[test]
fn requests_hyper_refuses_get_json_errors() {
    let (_dir, server, _c, _base) = setup();
    let addr = server.url.trim_start_matches("http://").to_string();
    let check = |request: Vec<u8>, status: u16, code: &str| {
        let (s, head, body) = raw_http(&addr, &request);
        assert_eq!(s, status, "{head}\n{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
        assert_eq!(v["code"], code, "{v}");
        assert!(!v["message"].as_str().unwrap().is_empty(), "{v}");
    };
    // URI over hyper's 65534 bytes.
    let uri = format!("/v1/tenants?x={}", "a".repeat(70_000));
    check(
        format!("GET {uri} HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes(),
        414,
        "URI_TOO_LONG",
    );
    // More header fields than hyper takes.
    let mut req = String::from("GET /v1/tenants HTTP/1.1\r\nhost: x\r\n");
    for i in 0..150 {
        req.push_str(&format!("x-h{i}: v\r\n"));
    }
    req.push_str("\r\n");
    check(req.into_bytes(), 431, "HEADERS_TOO_LARGE");
    // Not HTTP.
    check(
        b"G\x01T / HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
        400,
        "MALFORMED_REQUEST",
    );
    // The server still serves, and its own errors pass unchanged.
    let (s, _, body) = raw_http(
        &addr,
        b"GET /v1/nothing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(s, 404);
    assert!(body.contains("NOT_FOUND"), "{body}");
}

#[test]
fn timestamps_are_strings_in_answers_and_strings_or_numbers_in_requests() {
    let (dir, _server, c, base) = setup();
    let (_, t) = call(&c, "GET", &format!("{base}/tenants/acme"), None);
    assert!(ts(&t["created_ts"]) > 1 << 53, "{t}");
    let (s, v) = call(
        &c,
        "POST",
        &format!("{base}/tenants/acme/tables"),
        Some(
            json!({"name": "t", "columns": [{"name": "id", "type": "int"}], "primary_key": ["id"]}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let created = ts(&v["commit_ts"]);
    let (_, v) = call(
        &c,
        "POST",
        &format!("{base}/tenants/acme/tables/t/rows"),
        Some(json!({"rows": [{"id": 1}]})),
    );
    let first = ts(&v["commit_ts"]);
    assert!(first > created);
    let (_, v) = call(
        &c,
        "POST",
        &format!("{base}/tenants/acme/snapshots"),
        Some(json!({"name": "s1"})),
    );
    assert!(ts(&v["snapshot"]["ts"]) <= ts(&v["commit_ts"]), "{v}");
    let (_, v) = call(&c, "GET", &format!("{base}/tenants/acme/snapshots"), None);
    ts(&v[0]["ts"]);
    let (_, v) = call(
        &c,
        "GET",
        &format!("{base}/tenants/acme/tables/t/rows?as_of={first}"),
        None,
    );
    assert!(ts(&v["read_ts"]) >= first, "{v}");
    let (_, v) = call(
        &c,
        "GET",
        &format!("{base}/tenants/acme/tables/t/row?key=1"),
        None,
    );
    assert!(ts(&v["read_ts"]) >= first, "{v}");

    // A backup: its job result and record carry string timestamps.
    let repo = dir.path().join("repo");
    let (s, job) = call(
        &c,
        "POST",
        &format!("{base}/backups"),
        Some(json!({"tenant": "acme", "repo": repo})),
    );
    assert_eq!(s, 202, "{job}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let (_, j) = call(&c, "GET", &format!("{base}/jobs/{}", job["id"]), None);
        if j["state"] == "succeeded" {
            break j;
        }
        assert!(Instant::now() < deadline, "{j}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let backup_ts = ts(&job["result"]["backup_ts"]);
    assert!(backup_ts >= first, "{job}");
    let (_, list) = call(&c, "GET", &format!("{base}/backups"), None);
    assert_eq!(ts(&list[0]["backup_ts"]), backup_ts);
    let (_, detail) = call(
        &c,
        "GET",
        &format!("{base}/backups/{}", list[0]["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(ts(&detail["backup_ts"]), backup_ts);

    // A ts in a request: a string or a number, both understood (the restore target
    // parses; the repository has no archived log past the backup, so the planner
    // answers NOT_RESTORABLE or starts, not MALFORMED_JSON).
    for body in [
        json!({"source": "acme", "target": "r1", "before_commit": first.to_string(), "repo": repo}),
        json!({"source": "acme", "target": "r2", "before_commit": first, "repo": repo}),
        json!({"source": "acme", "target": "r3", "to": backup_ts, "repo": repo}),
        json!({"source": "acme", "target": "r4", "to": backup_ts.to_string(), "repo": repo}),
    ] {
        let (s, v) = call(&c, "POST", &format!("{base}/restores"), Some(body.clone()));
        assert!(s == 202 || v["code"] == "NOT_RESTORABLE", "{body}: {s} {v}");
    }
    let msg = assert_error(
        call(
            &c,
            "POST",
            &format!("{base}/restores"),
            Some(json!({"source": "acme", "target": "r5", "before_commit": "soon"})),
        ),
        400,
        "MALFORMED_JSON",
    );
    assert!(msg.contains("commit ts"), "{msg}");
}
