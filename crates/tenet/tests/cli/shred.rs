//! Crypto-shredding through a real server with a master key: `tenant drop --shred`
//! makes every backup of the tenant fail with KEY_DESTROYED (naming the date), leaves
//! its neighbour's readable, and leaves an audit record; a tenant with nothing sealed is
//! refused (and not dropped).

use serde_json::Value;

use crate::common::{add_default_repo, json_out, kv_tenant, put, stderr, tenet, Server};

fn backup(d: &std::path::Path, tenant: &str) -> String {
    let job = json_out(&tenet(d, &["--json", "backup", "full", tenant]));
    assert_eq!(job["state"], "succeeded", "{job}");
    job["result"]["backup_id"].as_str().unwrap().to_string()
}

/// The error a failing command printed with --json.
fn error(o: &std::process::Output) -> Value {
    assert!(!o.status.success());
    serde_json::from_str(stderr(o).trim()).unwrap_or_else(|e| panic!("{e}: {}", stderr(o)))
}

#[test]
fn a_shredded_tenants_backups_cannot_be_read_and_its_neighbours_can() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start_with(d, &[("TENET_MASTER_KEY", "5a".repeat(32))]);
    let c = reqwest::blocking::Client::new();
    add_default_repo(&c, &server.url, "main", d.join("repo").to_str().unwrap());
    for t in ["gone", "kept", "plain"] {
        kv_tenant(d, t, &[]);
        put(d, t, &[(1, "one"), (2, "two")]);
    }
    let g1 = backup(d, "gone");
    let rotated = json_out(&tenet(d, &["--json", "key", "rotate", "gone"]));
    assert_eq!(rotated["keys"].as_array().unwrap().len(), 2, "{rotated}");
    put(d, "gone", &[(3, "three")]);
    let g2 = backup(d, "gone");
    let k1 = backup(d, "kept");
    let keys = json_out(&tenet(d, &["--json", "key", "list", "gone"]));
    assert_eq!(keys["encryption"], true, "{keys}");
    assert_eq!(keys["keys"][1]["current"], true, "{keys}");

    // Nothing sealed yet: refused, and the tenant stays.
    let e = error(&tenet(d, &["--json", "tenant", "drop", "plain", "--shred"]));
    assert_eq!(e["code"], "INVALID_ARGUMENT", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("no data keys"),
        "{e}"
    );
    json_out(&tenet(d, &["--json", "tenant", "show", "plain"]));

    let gone_token = json_out(&tenet(
        d,
        &[
            "--json", "token", "create", "--role", "read", "--tenant", "gone",
        ],
    ));
    let shred = json_out(&tenet(d, &["--json", "tenant", "drop", "gone", "--shred"]));
    // Its tokens are revoked with it.
    let tokens = json_out(&tenet(d, &["--json", "token", "list"]));
    let t = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == gone_token["info"]["id"])
        .unwrap();
    assert_eq!(t["state"], "revoked", "{t}");
    assert_eq!(
        shred["keys_destroyed"],
        serde_json::json!(["k1", "k2"]),
        "{shred}"
    );
    assert_eq!(shred["still_readable"], serde_json::json!([]), "{shred}");
    let at = shred["destroyed_at"].as_str().unwrap().to_string();
    for id in [&g1, &g2] {
        for args in [
            vec!["--json", "backups", "verify", id.as_str()],
            vec![
                "--json",
                "restore",
                "gone",
                "--backup",
                id.as_str(),
                "--into",
                "back",
            ],
        ] {
            let e = error(&tenet(d, &args));
            assert_eq!(e["code"], "KEY_DESTROYED", "{args:?}: {e}");
            assert!(e["message"].as_str().unwrap().contains(&at[..16]), "{e}");
        }
    }
    // Nothing is shown as restorable that cannot be restored.
    let e = error(&tenet(d, &["--json", "restore-points", "gone"]));
    assert_eq!(e["code"], "KEY_DESTROYED", "{e}");
    json_out(&tenet(d, &["--json", "backups", "verify", &k1]));
    let r = json_out(&tenet(
        d,
        &[
            "--json", "restore", "kept", "--backup", &k1, "--into", "kept2",
        ],
    ));
    assert_eq!(r["state"], "succeeded", "{r}");
    let audit = json_out(&tenet(d, &["--json", "key", "audit"]));
    let shreds: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "shred")
        .collect();
    assert_eq!(shreds.len(), 1, "{audit}");
    assert_eq!(shreds[0]["tenant"], "gone");
    assert_eq!(shreds[0]["by"], "token 1 (admin)");
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["action"] == "key_rotate"));
}
