//! The CLI gives the same results embedded and through a running server.

use std::path::Path;

use crate::common::{normalize, ok, stderr, stdout, tenet, Server};

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

/// A JSON-lines transaction file of `rows` rows of `row_bytes` bytes each.
fn big_txn_file(path: &Path, rows: usize, row_bytes: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let name = "n".repeat(row_bytes);
    for id in 0..rows {
        writeln!(
            f,
            "{{\"op\":\"put\",\"table\":\"users\",\"row\":{{\"id\":{id},\"name\":\"{name}\"}}}}"
        )
        .unwrap();
    }
}

#[test]
fn a_transaction_has_the_same_size_limit_embedded_and_through_a_server() {
    let files = tempfile::tempdir().unwrap();
    // 41 MB: over the old 16 MiB body limit, within the 64 MiB transaction limit.
    let fits = files.path().join("fits.jsonl");
    big_txn_file(&fits, 410, 100_000);
    // 68 MB: over the transaction limit, under the server's body limit; 80 MB: over
    // both. Each mode gives the same answer for both.
    let over = files.path().join("over.jsonl");
    big_txn_file(&over, 680, 100_000);
    let way_over = files.path().join("way_over.jsonl");
    big_txn_file(&way_over, 800, 100_000);

    let run = |dir: &Path| {
        let setup = [
            vec!["tenant", "create", "acme"],
            vec![
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
            ],
        ];
        for args in setup {
            let o = tenet(dir, &args);
            assert!(o.status.success(), "{}", stderr(&o));
        }
        let ok = tenet(
            dir,
            &["--json", "txn", "acme", "--file", fits.to_str().unwrap()],
        );
        assert!(ok.status.success(), "{}", stderr(&ok));
        let v: serde_json::Value = serde_json::from_str(&stdout(&ok)).unwrap();
        assert_eq!(v["writes"], 410, "{v}");
        let bad = tenet(dir, &["txn", "acme", "--file", over.to_str().unwrap()]);
        assert!(!bad.status.success());
        let worse = tenet(dir, &["txn", "acme", "--file", way_over.to_str().unwrap()]);
        assert!(!worse.status.success());
        assert_eq!(stderr(&bad), stderr(&worse));
        stderr(&bad)
    };
    let embedded_dir = tempfile::tempdir().unwrap();
    let embedded = run(embedded_dir.path());
    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start(server_dir.path());
    let served = run(server_dir.path());
    // The server itself refuses it too (a client that does not check first).
    let ops: Vec<String> = std::fs::read_to_string(&over)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let body = format!("{{\"ops\":[{}]}}", ops.join(","));
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/v1/tenants/acme/txn", server.url))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let v: serde_json::Value = resp.json().unwrap();
    assert_eq!(v["code"], "TXN_TOO_LARGE", "{v}");
    drop(server);
    assert_eq!(embedded, served);
    assert!(embedded.contains("TXN_TOO_LARGE"), "{embedded}");
    assert!(embedded.contains("67108864 bytes"), "{embedded}");
    assert!(!embedded.contains("split"), "{embedded}");
}

/// A command run while a stopping server has already removed its server.json but not
/// yet let go of the directory waits for it (a few seconds) and is answered embedded,
/// instead of being refused as "in use".
#[test]
fn a_command_during_a_server_stop_waits_for_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(dir.path());
    ok(dir.path(), &["tenant", "create", "acme"]);
    // The moment of the race, held open: no server.json, the lock still held.
    std::fs::remove_file(dir.path().join("server.json")).unwrap();
    let d = dir.path().to_path_buf();
    let cmd = std::thread::spawn(move || tenet(&d, &["tenant", "list"]));
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(!cmd.is_finished(), "it did not wait for the directory");
    srv.stop();
    let o = cmd.join().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("acme"));
}
