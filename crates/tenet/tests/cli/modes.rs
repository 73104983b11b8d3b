//! The CLI gives the same results embedded and through a running server.

use std::path::Path;

use crate::common::{normalize, stderr, stdout, tenet, Server};

/// A CLI session: (args, expected to succeed).
fn script() -> Vec<(Vec<&'static str>, bool)> {
    let ok = |a: &[&'static str]| (a.to_vec(), true);
    let bad = |a: &[&'static str]| (a.to_vec(), false);
    vec![
        ok(&["tenant", "create", "acme", "--history-retention", "2h"]),
        ok(&["tenant", "create", "globex"]),
        ok(&["tenant", "list"]),
        ok(&[
            "table",
            "create",
            "acme",
            "users",
            "--column",
            "id:int",
            "--column",
            "name:string",
            "--primary-key",
            "id",
        ]),
        ok(&[
            "put",
            "acme",
            "users",
            r#"{"id":1,"name":"ada"}"#,
            r#"{"id":2,"name":"bob"}"#,
        ]),
        ok(&["snapshot", "create", "acme", "snap1"]),
        ok(&[
            "table",
            "alter",
            "acme",
            "users",
            "--add-column",
            "email:string",
        ]),
        ok(&[
            "put",
            "acme",
            "users",
            r#"{"id":3,"name":"cy","email":"c@x"}"#,
        ]),
        ok(&["delete", "acme", "users", "1"]),
        ok(&["get", "acme", "users", "2"]),
        ok(&["get", "acme", "users", "1"]),
        ok(&["scan", "acme", "users"]),
        ok(&["scan", "acme", "users", "--as-of", "@snap1"]),
        ok(&["--json", "scan", "acme", "users", "--as-of", "@snap1"]),
        ok(&["scan", "acme", "users", "--from", "2", "--to", "3"]),
        ok(&["table", "list", "acme"]),
        ok(&["table", "show", "acme", "users", "--as-of", "@snap1"]),
        ok(&["snapshot", "list", "acme"]),
        ok(&["--json", "tenant", "show", "acme"]),
        ok(&["tenant", "rename", "globex", "initech"]),
        ok(&["tenant", "set", "initech", "--state", "read_only"]),
        bad(&[
            "table",
            "create",
            "initech",
            "t",
            "--column",
            "id:int",
            "--primary-key",
            "id",
        ]),
        bad(&["put", "acme", "users", "{not json"]),
        bad(&["put", "acme", "users", r#"{"id":"x"}"#]),
        bad(&["put", "nope", "users", r#"{"id":1}"#]),
        bad(&["tenant", "create", "Bad"]),
        bad(&[
            "table",
            "create",
            "acme",
            "t2",
            "--column",
            "id:decimal",
            "--primary-key",
            "id",
        ]),
        bad(&["--json", "get", "acme", "nope", "1"]),
        bad(&["scan", "acme", "users", "--as-of", "@missing"]),
        ok(&["snapshot", "drop", "acme", "snap1"]),
        ok(&["tenant", "drop", "initech"]),
        ok(&["--json", "tenant", "list"]),
    ]
}

fn run_script(dir: &Path) -> Vec<String> {
    let txn = dir.join("ops.jsonl");
    std::fs::write(
        &txn,
        "{\"op\":\"put\",\"table\":\"users\",\"row\":{\"id\":9,\"name\":\"z\"}}\n{\"op\":\"delete\",\"table\":\"users\",\"key\":2}\n",
    )
    .unwrap();
    let mut outputs = Vec::new();
    let mut steps = script();
    steps.insert(
        9,
        (vec!["txn", "acme", "--file", txn.to_str().unwrap()], true),
    );
    let bad_file = dir.join("bad.jsonl");
    std::fs::write(&bad_file, "{\"op\":\"upsert\"}\n").unwrap();
    steps.push((
        vec!["txn", "acme", "--file", bad_file.to_str().unwrap()],
        false,
    ));
    for (args, should_succeed) in steps {
        let o = tenet(dir, &args);
        assert_eq!(
            o.status.success(),
            should_succeed,
            "tenet {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        if !should_succeed {
            assert!(
                stderr(&o).len() > 10,
                "tenet {args:?} failed without a message"
            );
        }
        // Embedded, the first write creates the store and says so; a server made it
        // when it started.
        let err = stderr(&o).replace(&format!("created a new store at {}\n", dir.display()), "");
        let text = format!("$ {}\n{}{}", args.join(" "), stdout(&o), err);
        outputs.push(normalize(&text.replace(dir.to_str().unwrap(), "<dir>")));
    }
    outputs
}

#[test]
fn embedded_and_server_modes_print_the_same() {
    let embedded_dir = tempfile::tempdir().unwrap();
    let embedded = run_script(embedded_dir.path());

    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start(server_dir.path());
    let served = run_script(server_dir.path());
    drop(server);

    for (a, b) in embedded.iter().zip(&served) {
        assert_eq!(a, b, "embedded and server outputs differ");
    }
    assert_eq!(embedded.len(), served.len());
    // Spot-check content.
    let all = embedded.join("\n");
    assert!(
        all.contains("created tenant `acme` (id 1), commit_ts <ts> (<time>)"),
        "{all}"
    );
    assert!(all.contains("tenant `initech` is read_only"), "{all}");
    assert!(all.contains("is not valid JSON"), "{all}");
    assert!(all.contains("[TENANT_STATE]"), "{all}");
}

#[test]
fn embedded_mode_refuses_a_directory_a_server_owns_when_told_to_skip_it() {
    // A second opener of a data directory gets a clear error rather than corruption.
    let dir = tempfile::tempdir().unwrap();
    let _server = Server::start(dir.path());
    let file = dir.path().join("server.json");
    let saved = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let o = tenet(dir.path(), &["tenant", "list"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("in use by another process"),
        "{}",
        stderr(&o)
    );
    std::fs::write(&file, saved).unwrap();
}
