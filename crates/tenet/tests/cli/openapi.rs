//! The OpenAPI document a real server serves: valid by `openapi-spec-validator` (PyPI;
//! `scripts/ensure-test-deps` installs it), and describing every route the router
//! answers. And Swagger UI over it at `/docs`.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::blocking::Client;
use serde_json::Value;

use crate::common::Server;

/// Validates `doc` with the Python validator; panics (never skips) when it is missing.
fn validate(doc: &str) -> Result<(), String> {
    let script = "import sys, json\n\
                  from openapi_spec_validator import OpenAPIV31SpecValidator\n\
                  errors = list(OpenAPIV31SpecValidator(json.load(sys.stdin)).iter_errors())\n\
                  for e in errors:\n    print(str(e).splitlines()[0])\n\
                  sys.exit(1 if errors else 0)\n";
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; run scripts/ensure-test-deps"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "openapi-spec-validator is not installed; run scripts/ensure-test-deps\n{stderr}"
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)))
    }
}

#[test]
fn the_validator_catches_an_invalid_document() {
    // The check above can fail: a path parameter that is never declared.
    let bad = r#"{"openapi":"3.1.0","info":{"title":"t","version":"1"},
        "paths":{"/x/{id}":{"get":{"responses":{"200":{"description":"ok"}}}}}}"#;
    let err = validate(bad).unwrap_err();
    assert!(err.contains("id"), "{err}");
}

#[test]
fn the_served_document_is_valid_and_covers_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let c = Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let text = c
        .get(format!("{}/v1/openapi.json", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    if let Err(errors) = validate(&text) {
        panic!("the served OpenAPI document is invalid:\n{errors}");
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    let documented = doc["paths"].as_object().unwrap();

    // Every route of the router's table, probed with every method: whatever is not
    // "method not allowed" is routed, and must be documented.
    let routes = tenet_server::http::route_paths();
    for path in &routes {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "probe" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let mut routed = 0;
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let resp = c
                .request(method.parse().unwrap(), format!("{}{concrete}", server.url))
                .send()
                .unwrap();
            if resp.status().as_u16() == 405 {
                continue;
            }
            routed += 1;
            assert!(
                documented
                    .get(*path)
                    .and_then(|p| p.get(method.to_ascii_lowercase()))
                    .is_some(),
                "{method} {path} is routed (answered {}) but not in the OpenAPI document",
                resp.status()
            );
        }
        assert!(routed > 0, "{path} answers no method");
    }
    // And nothing documented that the router does not have.
    for path in documented.keys() {
        assert!(
            routes.contains(&path.as_str()),
            "{path} is documented but not routed"
        );
    }
}

#[test]
fn swagger_ui_is_served_at_docs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    for path in ["/docs", "/docs/"] {
        let resp = reqwest::blocking::get(format!("{}{path}", server.url)).unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ctype.starts_with("text/html"), "{ctype}");
        let body = resp.text().unwrap();
        assert!(body.contains("swagger-ui"), "{body}");
    }
    let config = reqwest::blocking::get(format!("{}/docs/swagger-initializer.js", server.url))
        .unwrap()
        .text()
        .unwrap();
    assert!(config.contains("/v1/openapi.json"), "{config}");
}
