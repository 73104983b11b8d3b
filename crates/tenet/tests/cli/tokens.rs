//! Who may do what, over real HTTP: every operation of the served OpenAPI document ×
//! {no token, malformed, unknown, revoked, expired, each role with and without a tenant,
//! tenant A's tokens on tenant B's resources}, and the lists a tenant token gets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::common::{add_default_repo, call, kv_tenant, put, tenet, Server};

const A: &str = "alpha";
/// A name no answer to a token of A may contain.
const B: &str = "bravo_secret";
const GHOST: &str = "ghost_tenant";
const GHOST_JOB: u64 = 987_654_321;
const GHOST_BACKUP: &str = "ghost-backup-id";

/// The role each operation needs (the spec of `docs/api.md`), its body, and its query.
fn spec(method: &str, path: &str) -> Option<(&'static str, Value, &'static str)> {
    let t = json!({"id": 1, "v": "x"});
    Some(match (method, path) {
        ("GET", "/v1/tenants") => ("read", Value::Null, ""),
        ("POST", "/v1/tenants") => ("admin", json!({"name": "made_here"}), ""),
        ("GET", "/v1/tenants/{tenant}") => ("read", Value::Null, ""),
        ("PATCH", "/v1/tenants/{tenant}") => {
            ("operator", json!({"history_retention_secs": 3600}), "")
        }
        ("DELETE", "/v1/tenants/{tenant}") => ("admin", Value::Null, ""),
        ("GET", "/v1/tenants/{tenant}/tables") => ("read", Value::Null, ""),
        ("POST", "/v1/tenants/{tenant}/tables") => (
            "write",
            json!({"name": "t2", "columns": [{"name": "id", "type": "int"}], "primary_key": ["id"]}),
            "",
        ),
        ("GET", "/v1/tenants/{tenant}/tables/{table}") => ("read", Value::Null, ""),
        ("PATCH", "/v1/tenants/{tenant}/tables/{table}") => (
            "write",
            json!({"add_columns": [{"name": "c", "type": "string"}]}),
            "",
        ),
        ("DELETE", "/v1/tenants/{tenant}/tables/{table}") => ("write", Value::Null, ""),
        ("GET", "/v1/tenants/{tenant}/tables/{table}/rows") => ("read", Value::Null, ""),
        ("POST", "/v1/tenants/{tenant}/tables/{table}/rows") => ("write", json!({"rows": [t]}), ""),
        ("POST", "/v1/tenants/{tenant}/tables/{table}/rows/delete") => {
            ("write", json!({"keys": [1]}), "")
        }
        ("GET", "/v1/tenants/{tenant}/tables/{table}/row") => ("read", Value::Null, "?key=1"),
        ("POST", "/v1/tenants/{tenant}/txn") => (
            "write",
            json!({"ops": [{"op": "put", "table": "t", "row": {"id": 2, "v": "y"}}]}),
            "",
        ),
        ("GET", "/v1/tenants/{tenant}/snapshots") => ("read", Value::Null, ""),
        ("POST", "/v1/tenants/{tenant}/snapshots") => ("write", json!({"name": "s2"}), ""),
        ("DELETE", "/v1/tenants/{tenant}/snapshots/{snapshot}") => ("write", Value::Null, ""),
        ("POST", "/v1/tenants/{tenant}/snapshots/{snapshot}/rollback") => {
            ("operator", Value::Null, "")
        }
        ("POST", "/v1/tenants/{tenant}/revert") => ("operator", json!({"to": "-1s"}), ""),
        ("POST", "/v1/tenants/{tenant}/clone") => ("admin", json!({"into": "cloned"}), ""),
        ("GET", "/v1/tenants/{tenant}/archive") => ("read", Value::Null, ""),
        ("POST", "/v1/tenants/{tenant}/archive") => ("operator", json!({}), ""),
        ("DELETE", "/v1/tenants/{tenant}/archive") => ("operator", Value::Null, ""),
        ("GET", "/v1/tenants/{tenant}/restore-points") => ("read", Value::Null, ""),
        ("GET", "/v1/tenants/{tenant}/standby") => ("read", Value::Null, ""),
        ("POST", "/v1/tenants/{tenant}/standby/pause") => ("operator", Value::Null, ""),
        ("POST", "/v1/tenants/{tenant}/standby/resume") => ("operator", Value::Null, ""),
        ("POST", "/v1/tenants/{tenant}/promote") => ("operator", json!({}), ""),
        // To another server: a standby in this store is another tenant, which a tenant
        // token cannot name (checked below).
        ("POST", "/v1/tenants/{tenant}/switchover") => (
            "operator",
            json!({"to": "nobody", "to_server": "http://127.0.0.1:9"}),
            "",
        ),
        ("GET", "/v1/tenants/{tenant}/strategy") => ("read", Value::Null, ""),
        ("PUT", "/v1/tenants/{tenant}/strategy") => ("operator", json!({"full": "@daily"}), ""),
        ("DELETE", "/v1/tenants/{tenant}/strategy") => ("operator", Value::Null, ""),
        ("POST", "/v1/tenants/{tenant}/drill") => ("operator", json!({}), ""),
        ("GET", "/v1/backups") => ("read", Value::Null, ""),
        ("POST", "/v1/backups") => ("operator", json!({"tenant": "{tenant}"}), ""),
        ("GET", "/v1/backups/{id}") => ("read", Value::Null, ""),
        ("DELETE", "/v1/backups/{id}") => ("operator", Value::Null, ""),
        ("POST", "/v1/backups/{id}/verify") => ("operator", json!({}), ""),
        ("POST", "/v1/restores") => (
            "operator",
            json!({"source": "{tenant}", "in_place": true, "latest": true}),
            "",
        ),
        ("GET", "/v1/restores/{id}") => ("read", Value::Null, ""),
        ("POST", "/v1/restores/{id}/cancel") => ("operator", Value::Null, ""),
        ("GET", "/v1/jobs") => ("read", Value::Null, ""),
        ("GET", "/v1/jobs/{id}") => ("read", Value::Null, ""),
        ("POST", "/v1/jobs/{id}/cancel") => ("operator", Value::Null, ""),
        ("POST", "/v1/jobs/{id}/resume") => ("operator", Value::Null, ""),
        ("GET", "/v1/repos") => ("admin", Value::Null, ""),
        ("POST", "/v1/repos") => ("admin", json!({"name": "other", "url": "/nonexistent"}), ""),
        ("GET", "/v1/repos/{name}") => ("admin", Value::Null, ""),
        ("DELETE", "/v1/repos/{name}") => ("admin", Value::Null, ""),
        ("GET", "/v1/strategy") => ("read", Value::Null, ""),
        ("PUT", "/v1/strategy") => ("admin", json!({"full": "@daily"}), ""),
        ("DELETE", "/v1/strategy") => ("admin", Value::Null, ""),
        ("POST", "/v1/prune") => (
            "operator",
            json!({"tenant": "{tenant}", "dry_run": true}),
            "",
        ),
        ("GET", "/v1/protection") => ("read", Value::Null, ""),
        ("GET", "/v1/tenants/{tenant}/keys") => ("read", Value::Null, ""),
        ("POST", "/v1/tenants/{tenant}/keys/rotate") => ("operator", json!({}), ""),
        ("POST", "/v1/tenants/{tenant}/shred") => ("admin", Value::Null, ""),
        ("GET", "/v1/audit") => ("admin", Value::Null, ""),
        ("GET", "/v1/whoami") => ("read", Value::Null, ""),
        ("GET", "/v1/tokens") => ("admin", Value::Null, ""),
        ("POST", "/v1/tokens") => ("admin", json!({"role": "read"}), ""),
        ("DELETE", "/v1/tokens/{id}") => ("admin", Value::Null, ""),
        _ => return None,
    })
}

fn rank(role: &str) -> u8 {
    ["read", "write", "operator", "admin"]
        .iter()
        .position(|r| *r == role)
        .unwrap_or_else(|| panic!("role {role}")) as u8
}

/// Whose resources a request names.
#[derive(Clone, Copy)]
struct Owner<'a> {
    tenant: &'a str,
    backup: &'a str,
    job: u64,
}

/// A request: the operation with its placeholders filled for `o`.
fn request(method: &str, path: &str, o: Owner, token_id: u64) -> (String, Value) {
    let (_, body, query) = spec(method, path).unwrap();
    let id = if path.starts_with("/v1/backups") {
        o.backup.to_string()
    } else if path.starts_with("/v1/tokens") {
        token_id.to_string()
    } else {
        o.job.to_string()
    };
    let url = path
        .replace("{tenant}", o.tenant)
        .replace("{table}", "t")
        .replace("{snapshot}", "s1")
        .replace("{name}", "main")
        .replace("{id}", &id);
    let body = serde_json::from_str(&body.to_string().replace("{tenant}", o.tenant)).unwrap();
    (format!("{url}{query}"), body)
}

fn send(
    c: &Client,
    base: &str,
    method: &str,
    url: &str,
    body: &Value,
    auth: Option<&str>,
) -> (u16, Value) {
    let mut req = c.request(method.parse().unwrap(), format!("{base}{url}"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if !body.is_null() {
        req = req.json(body);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Makes a token as the admin; returns (secret, id).
fn token(c: &Client, base: &str, body: Value) -> (String, u64) {
    let (s, v) = call(c, "POST", &format!("{base}/v1/tokens"), Some(body));
    assert_eq!(s, 201, "{v}");
    (
        v["token"].as_str().unwrap().to_string(),
        v["info"]["id"].as_u64().unwrap(),
    )
}

fn wait_job(c: &Client, base: &str, id: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, j) = call(c, "GET", &format!("{base}/v1/jobs/{id}"), None);
        if j["state"] == "succeeded" {
            return;
        }
        assert!(Instant::now() < deadline && j["state"] != "failed", "{j}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A tenant with a table, a snapshot and a full backup; returns (backup id, job id).
fn protected_tenant(d: &std::path::Path, c: &Client, base: &str, name: &str) -> (String, u64) {
    kv_tenant(d, name, &[]);
    put(d, name, &[(1, "one")]);
    assert!(tenet(d, &["snapshot", "create", name, "s1"])
        .status
        .success());
    let (s, job) = call(
        c,
        "POST",
        &format!("{base}/v1/backups"),
        Some(json!({"tenant": name})),
    );
    assert_eq!(s, 202, "{job}");
    let id = job["id"].as_u64().unwrap();
    wait_job(c, base, id);
    let (_, j) = call(c, "GET", &format!("{base}/v1/jobs/{id}"), None);
    (j["result"]["backup_id"].as_str().unwrap().to_string(), id)
}

#[test]
fn every_operation_answers_each_token_as_its_role_and_tenant_allow() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(d);
    let base = server.url.clone();
    let c = Client::builder().pool_max_idle_per_host(0).build().unwrap();
    add_default_repo(&c, &base, "main", d.join("repo").to_str().unwrap());
    let (a_backup, a_job) = protected_tenant(d, &c, &base, A);
    let (b_backup, b_job) = protected_tenant(d, &c, &base, B);
    let b_id = call(&c, "GET", &format!("{base}/v1/tenants/{B}"), None).1["id"]
        .as_u64()
        .unwrap();
    let own = Owner {
        tenant: A,
        backup: &a_backup,
        job: a_job,
    };
    let theirs = Owner {
        tenant: B,
        backup: &b_backup,
        job: b_job,
    };
    let ghost = Owner {
        tenant: GHOST,
        backup: GHOST_BACKUP,
        job: GHOST_JOB,
    };

    // The operations: from the served document.
    let doc: Value = c
        .get(format!("{base}/v1/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let m = method.to_ascii_uppercase();
            if path == "/healthz" || path == "/v1/openapi.json" {
                assert_eq!(item[method]["security"], json!([{}]), "{path} is open");
                continue;
            }
            assert!(
                spec(&m, path).is_some(),
                "{m} {path} is in the API but not in this test's table of roles"
            );
            ops.push((m, path.clone()));
        }
    }
    assert!(ops.len() >= 55, "only {} operations", ops.len());

    // Tokens that are not valid.
    let (revoked, revoked_id) = token(&c, &base, json!({"role": "operator", "tenant": A}));
    call(
        &c,
        "DELETE",
        &format!("{base}/v1/tokens/{revoked_id}"),
        None,
    );
    let (expired, _) = token(&c, &base, json!({"role": "operator", "expires_in_secs": 1}));
    let (victim, victim_id) = token(&c, &base, json!({"role": "read"}));
    std::thread::sleep(Duration::from_millis(1100));
    let unknown = format!("tenet_4242_{}", "0".repeat(64));
    let wrong_secret = format!(
        "{}{}",
        &victim[..victim.len() - 1],
        if victim.ends_with('0') { "1" } else { "0" }
    );
    let invalid: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("malformed", Some("Bearer nonsense".into())),
        ("not bearer", Some(format!("Basic {victim}"))),
        ("unknown", Some(format!("Bearer {unknown}"))),
        ("wrong secret", Some(format!("Bearer {wrong_secret}"))),
        ("revoked", Some(format!("Bearer {revoked}"))),
        ("expired", Some(format!("Bearer {expired}"))),
    ];
    for (m, path) in &ops {
        let (url, body) = request(m, path, own, victim_id);
        for (what, auth) in &invalid {
            let (s, v) = send(&c, &base, m, &url, &body, auth.as_deref());
            assert_eq!(
                (s, v["code"].as_str()),
                (401, Some("UNAUTHENTICATED")),
                "{what}: {m} {url}: {v}"
            );
        }
    }

    // Tenant A's tokens on B's resources answer as on ones that do not exist; in
    // nothing A's tokens get back is B's name, backup or id.
    let leaks = |v: &Value, what: &str| {
        let text = v.to_string();
        assert!(
            !text.contains(B) && !text.contains(&b_backup),
            "{what} leaks B: {text}"
        );
        assert!(
            !text.contains(&format!("\"tenant_id\":{b_id}")),
            "{what} leaks B's id: {text}"
        );
    };
    let mut scoped = Vec::new();
    for role in ["read", "write", "operator"] {
        let (t, _) = token(
            &c,
            &base,
            json!({"role": role, "tenant": A, "name": format!("A {role}")}),
        );
        scoped.push((role, format!("Bearer {t}")));
    }
    for (role, auth) in &scoped {
        for (m, path) in &ops {
            let (their_url, their_body) = request(m, path, theirs, victim_id);
            let (ghost_url, ghost_body) = request(m, path, ghost, victim_id);
            if their_url == ghost_url && their_body == ghost_body {
                continue; // names nothing of a tenant
            }
            let got = send(&c, &base, m, &their_url, &their_body, Some(auth));
            let missing = send(&c, &base, m, &ghost_url, &ghost_body, Some(auth));
            let as_missing = serde_json::from_str::<Value>(
                &missing
                    .1
                    .to_string()
                    .replace(GHOST, B)
                    .replace(GHOST_BACKUP, &b_backup)
                    .replace(&GHOST_JOB.to_string(), &b_job.to_string()),
            )
            .unwrap();
            assert_eq!(
                (got.0, &got.1),
                (missing.0, &as_missing),
                "{role} of A: {m} {their_url}"
            );
            assert!(
                got.0 == 404 || got.0 == 403,
                "{role} of A: {m} {their_url}: {got:?}"
            );
        }
    }

    // Each role on each operation of its own tenant: below the role needed, FORBIDDEN;
    // at or above it, whatever the operation itself answers. Mutations run last
    // (lowest role first), so that reads see the tenant whole.
    let mut unscoped = Vec::new();
    for role in ["read", "write", "operator"] {
        let (t, _) = token(&c, &base, json!({"role": role}));
        unscoped.push((role, format!("Bearer {t}")));
    }
    let admin = vec![("admin", format!("Bearer {}", server.token))];
    let safe = |m: &str| m == "GET";
    let mut answered = BTreeMap::new();
    for (role, auth) in scoped.iter().chain(&unscoped).chain(&admin) {
        for (m, path) in &ops {
            if *role == "admin" && !safe(m) {
                continue; // the rest of the suite runs the admin's mutations
            }
            let (need, _, _) = spec(m, path).unwrap();
            let (url, body) = request(m, path, own, victim_id);
            let (s, v) = send(&c, &base, m, &url, &body, Some(auth));
            if rank(role) < rank(need) {
                assert_eq!(
                    (s, v["code"].as_str()),
                    (403, Some("FORBIDDEN")),
                    "{role}: {m} {url}: {v}"
                );
                assert!(v["message"].as_str().unwrap().contains(need), "{v}");
            } else {
                assert!(s != 401 && s != 403, "{role}: {m} {url}: {s} {v}");
                assert_ne!(v["code"], "TENANT_NOT_FOUND", "{role}: {m} {url}: {v}");
            }
            if scoped.iter().any(|(r, a)| r == role && a == auth) {
                leaks(&v, &format!("{role} of A: {m} {url}"));
            }
            *answered.entry(s).or_insert(0) += 1;
        }
    }
    assert!(
        answered.keys().any(|s| (200..300).contains(s)),
        "{answered:?}"
    );

    // A switchover to a standby in this store names another tenant: B answers as missing.
    let (_, operator_a) = &scoped[2];
    let url = format!("/v1/tenants/{A}/switchover");
    let to_b = send(&c, &base, "POST", &url, &json!({"to": B}), Some(operator_a));
    let to_ghost = send(
        &c,
        &base,
        "POST",
        &url,
        &json!({"to": GHOST}),
        Some(operator_a),
    );
    assert_eq!(to_b.0, 404, "{to_b:?}");
    assert_eq!(to_b.1.to_string(), to_ghost.1.to_string().replace(GHOST, B));

    // Lists a tenant token gets hold its tenant only.
    let (_, read_a) = &scoped[0];
    for url in [
        "/v1/tenants",
        "/v1/jobs",
        "/v1/backups",
        "/v1/protection",
        "/metrics",
    ] {
        let (s, v) = send(&c, &base, "GET", url, &Value::Null, Some(read_a));
        assert_eq!(s, 200, "{url}: {v}");
        leaks(&v, url);
        if ["/v1/tenants", "/v1/protection", "/metrics"].contains(&url) {
            assert!(v.to_string().contains(A), "{url} shows A: {v}");
        }
    }
    let (_, tenants) = send(&c, &base, "GET", "/v1/tenants", &Value::Null, Some(read_a));
    assert_eq!(tenants.as_array().unwrap().len(), 1, "{tenants}");
    let (_, metrics) = send(&c, &base, "GET", "/metrics", &Value::Null, Some(read_a));
    assert!(
        !metrics.to_string().contains("tenet_store_bytes"),
        "store-wide figures: {metrics}"
    );
}

/// The CLI sends a data directory's admin token only to the server of that directory.
#[test]
fn the_admin_token_file_goes_only_to_its_own_server() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(a.path());
    // Another directory that happens to hold a token of this server.
    std::fs::write(
        b.path().join(tenet_server::auth::ADMIN_TOKEN_FILE),
        &server.token,
    )
    .unwrap();
    let o = tenet(
        b.path(),
        &["--json", "--server", &server.url, "tenant", "list"],
    );
    assert!(!o.status.success());
    assert!(
        crate::common::stderr(&o).contains("UNAUTHENTICATED"),
        "{}",
        crate::common::stderr(&o)
    );
    // Its own directory's server gets it; an explicit token goes anywhere.
    crate::common::json_out(&tenet(
        a.path(),
        &["--json", "--server", &server.url, "tenant", "list"],
    ));
    crate::common::json_out(&tenet(
        b.path(),
        &[
            "--json",
            "--server",
            &server.url,
            "--token",
            &server.token,
            "tenant",
            "list",
        ],
    ));
}
