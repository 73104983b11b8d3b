//! The REST API over real HTTP against `tenet serve` on a random port.

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::common::{assert_error, call, Server};

#[test]
fn api_round_trip_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let base = format!("{}/v1", server.url);
    // No connection reuse: the server closes the connection after refusing the
    // oversized body, and a pooled dead connection would fail the next request.
    let c = Client::builder().pool_max_idle_per_host(0).build().unwrap();

    let (s, v) = call(
        &c,
        "POST",
        &format!("{base}/tenants"),
        Some(json!({"name": "acme"})),
    );
    assert_eq!(s, 201, "{v}");
    assert!(crate::common::ts(&v["commit_ts"]) > 0);
    assert!(v["commit_time"].as_str().unwrap().ends_with('Z'));
    let (s, _) = call(
        &c,
        "POST",
        &format!("{base}/tenants/acme/tables"),
        Some(
            json!({"name": "users", "columns": [{"name": "id", "type": "int"}, {"name": "name", "type": "string"}], "primary_key": ["id"]}),
        ),
    );
    assert_eq!(s, 201);
    let (s, v) = call(
        &c,
        "POST",
        &format!("{base}/tenants/acme/tables/users/rows"),
        Some(json!({"rows": [{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}]})),
    );
    assert_eq!(s, 200, "{v}");
    let first = crate::common::ts(&v["commit_ts"]);
    let (s, v) = call(
        &c,
        "POST",
        &format!("{base}/tenants/acme/txn"),
        Some(json!({"ops": [
            {"op": "delete", "table": "users", "key": 1},
            {"op": "put", "table": "users", "row": {"id": 3, "name": "cy"}}
        ]})),
    );
    assert_eq!(s, 200, "{v}");
    let (_, v) = call(
        &c,
        "GET",
        &format!("{base}/tenants/acme/tables/users/row?key=1"),
        None,
    );
    assert_eq!(v["row"], Value::Null);
    let (_, v) = call(
        &c,
        "GET",
        &format!("{base}/tenants/acme/tables/users/row?key=1&as_of={first}"),
        None,
    );
    assert_eq!(v["row"], json!({"id": 1, "name": "ada"}));
    let (_, v) = call(
        &c,
        "GET",
        &format!("{base}/tenants/acme/tables/users/rows?from=2&limit=10"),
        None,
    );
    assert_eq!(
        v["rows"],
        json!([{"id": 2, "name": "bob"}, {"id": 3, "name": "cy"}])
    );
    let (s, _) = call(
        &c,
        "POST",
        &format!("{base}/tenants/acme/snapshots"),
        Some(json!({"name": "s1"})),
    );
    assert_eq!(s, 201);
    let (_, v) = call(
        &c,
        "GET",
        &format!("{base}/tenants/acme/tables/users/rows?as_of=%40s1"),
        None,
    );
    assert_eq!(v["rows"].as_array().unwrap().len(), 2);

    // Bad input: clear errors with stable codes, nothing written.
    let rows_before = call(
        &c,
        "GET",
        &format!("{base}/tenants/acme/tables/users/rows"),
        None,
    )
    .1;
    let raw = |body: &str, ctype: &str| {
        let url = format!("{base}/tenants/acme/tables/users/rows");
        let resp = crate::common::authed(c.post(&url), &url)
            .header("content-type", ctype)
            .body(body.to_string())
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().unwrap())
    };
    assert_error(
        raw("{\"rows\": [", "application/json"),
        400,
        "MALFORMED_JSON",
    );
    assert_error(
        raw("{\"rows\": 5}", "application/json"),
        400,
        "MALFORMED_JSON",
    );
    assert_error(
        raw("{\"rows\": []}", "text/plain"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    );
    let big = format!(
        "{{\"rows\": [{{\"id\": 9, \"name\": \"{}\"}}]}}",
        "x".repeat(tenet_server::http::MAX_BODY_BYTES)
    );
    assert_error(raw(&big, "application/json"), 413, "PAYLOAD_TOO_LARGE");
    let msg = assert_error(
        call(
            &c,
            "POST",
            &format!("{base}/tenants/acme/tables/users/rows"),
            Some(json!({"rows": [{"id": 4, "name": "ok"}, {"id": "x"}]})),
        ),
        400,
        "INVALID_ROW",
    );
    assert!(msg.contains("operation 2 of 2"), "{msg}");
    assert_error(
        call(
            &c,
            "POST",
            &format!("{base}/tenants/acme/tables/users/rows"),
            Some(json!({"rows": [{"id": 5, "zip": 1}]})),
        ),
        400,
        "INVALID_ROW",
    );
    assert_error(
        call(&c, "GET", &format!("{base}/tenants/nope/tables"), None),
        404,
        "TENANT_NOT_FOUND",
    );
    assert_error(
        call(&c, "GET", &format!("{base}/tenants/acme/tables/nope"), None),
        404,
        "TABLE_NOT_FOUND",
    );
    assert_error(
        call(
            &c,
            "POST",
            &format!("{base}/tenants"),
            Some(json!({"name": "Bad Name"})),
        ),
        400,
        "INVALID_ARGUMENT",
    );
    assert_error(
        call(
            &c,
            "POST",
            &format!("{base}/tenants"),
            Some(json!({"name": "acme"})),
        ),
        409,
        "TENANT_EXISTS",
    );
    assert_error(
        call(
            &c,
            "POST",
            &format!("{base}/tenants"),
            Some(json!({"name": "x", "bogus": 1})),
        ),
        400,
        "MALFORMED_JSON",
    );
    assert_error(
        call(
            &c,
            "GET",
            &format!("{base}/tenants/acme/tables/users/row?key=%7Bbad"),
            None,
        ),
        400,
        "INVALID_ARGUMENT",
    );
    assert_error(
        call(
            &c,
            "GET",
            &format!("{base}/tenants/acme/tables/users/rows?as_of=yesterday"),
            None,
        ),
        400,
        "INVALID_ARGUMENT",
    );
    assert_error(
        call(
            &c,
            "GET",
            &format!("{base}/tenants/acme/tables/users/rows?as_of=2999-01-01T00:00:00Z"),
            None,
        ),
        400,
        "INVALID_ARGUMENT",
    );
    assert_error(
        call(
            &c,
            "GET",
            &format!("{base}/tenants/acme/tables/users/rows?limit=0"),
            None,
        ),
        400,
        "INVALID_ARGUMENT",
    );
    assert_error(
        call(&c, "GET", &format!("{base}/nothing"), None),
        404,
        "NOT_FOUND",
    );
    assert_error(
        call(&c, "PUT", &format!("{base}/tenants"), None),
        405,
        "METHOD_NOT_ALLOWED",
    );
    assert_error(
        call(
            &c,
            "GET",
            &format!("{base}/tenants/acme/tables/users/rows?as_of=%40nosnap"),
            None,
        ),
        404,
        "SNAPSHOT_NOT_FOUND",
    );

    // Writes to a read_only tenant are refused; reads and snapshots still work.
    let (s, v) = call(
        &c,
        "PATCH",
        &format!("{base}/tenants/acme"),
        Some(json!({"state": "read_only"})),
    );
    assert_eq!(s, 200, "{v}");
    let msg = assert_error(
        call(
            &c,
            "POST",
            &format!("{base}/tenants/acme/tables/users/rows"),
            Some(json!({"rows": [{"id": 7}]})),
        ),
        409,
        "TENANT_STATE",
    );
    assert!(msg.contains("read_only"), "{msg}");
    assert_eq!(
        call(
            &c,
            "POST",
            &format!("{base}/tenants/acme/snapshots"),
            Some(json!({"name": "s2"}))
        )
        .0,
        201
    );
    assert_eq!(
        call(
            &c,
            "GET",
            &format!("{base}/tenants/acme/tables/users/rows"),
            None
        )
        .1["rows"],
        rows_before["rows"]
    );

    // The API document is there and describes the endpoints.
    let (s, doc) = call(&c, "GET", &format!("{base}/openapi.json"), None);
    assert_eq!(s, 200);
    assert!(
        doc["paths"]["/v1/tenants/{tenant}/txn"]["post"].is_object(),
        "{doc}"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    for (path, method) in [
        ("/v1/backups", "post"),
        ("/v1/backups/{id}", "delete"),
        ("/v1/backups/{id}/verify", "post"),
        ("/v1/restores", "post"),
        ("/v1/jobs/{id}", "get"),
        ("/v1/jobs/{id}/cancel", "post"),
        ("/v1/jobs/{id}/resume", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["schemas"]["JobInfo"].is_object());

    // Jobs and backups: bad input gets coded errors.
    let (s, e) = call(&c, "GET", &format!("{base}/jobs/999999"), None);
    assert_eq!((s, e["code"].as_str()), (404, Some("JOB_NOT_FOUND")), "{e}");
    let (s, e) = call(&c, "GET", &format!("{base}/jobs/abc"), None);
    assert_eq!(
        (s, e["code"].as_str()),
        (400, Some("INVALID_ARGUMENT")),
        "{e}"
    );
    let (s, e) = call(
        &c,
        "POST",
        &format!("{base}/backups"),
        Some(json!({"tenant": "nobody"})),
    );
    assert_eq!(
        (s, e["code"].as_str()),
        (404, Some("TENANT_NOT_FOUND")),
        "{e}"
    );
    let (s, e) = call(
        &c,
        "POST",
        &format!("{base}/backups"),
        Some(json!({"tenant": "acme", "repo": "ftp://x/y"})),
    );
    assert_eq!(
        (s, e["code"].as_str()),
        (400, Some("INVALID_REPOSITORY")),
        "{e}"
    );
    let (s, e) = call(
        &c,
        "POST",
        &format!("{base}/restores"),
        Some(json!({"backup_id": "x"})),
    );
    assert_eq!(
        (s, e["code"].as_str()),
        (400, Some("MALFORMED_JSON")),
        "{e}"
    );
    let (s, e) = call(
        &c,
        "POST",
        &format!("{base}/restores"),
        Some(json!({"source": "acme", "backup_id": "nope", "target": "n"})),
    );
    assert_eq!(
        (s, e["code"].as_str()),
        (404, Some("BACKUP_NOT_FOUND")),
        "{e}"
    );
    let (s, e) = call(&c, "GET", &format!("{base}/backups/nope"), None);
    assert_eq!(
        (s, e["code"].as_str()),
        (404, Some("BACKUP_NOT_FOUND")),
        "{e}"
    );

    // Still up; graceful shutdown removes the discovery file.
    assert_eq!(
        call(&c, "GET", &format!("{}/healthz", server.url), None).0,
        200
    );
    assert!(server.stop(), "server did not exit cleanly on SIGTERM");
    assert!(!dir.path().join("server.json").exists());
}
