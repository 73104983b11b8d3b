//! Crash safety with real process kills: a child commits and reports each acknowledged
//! commit; we SIGKILL it at a random moment, reopen, and find every acknowledged commit
//! and a clock that moved forward.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rand::Rng;
use serde_json::json;
use tenet_store::{AsOf, Store, StoreOptions, Ts};

use crate::common::bin;

#[test]
fn acknowledged_commits_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut acked: Vec<(Ts, i64, i64)> = Vec::new();
    for round in 0..4i64 {
        let mut child = Command::new(bin())
            .arg("--data-dir")
            .arg(dir.path())
            .args([
                "debug",
                "crash-writer",
                "--start",
                &(round * 1_000_000).to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), "ready");
        std::thread::sleep(Duration::from_millis(rng.random_range(100..800)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let before = acked.len();
        for line in rx.try_iter() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(parts[0], "ack", "unexpected line {line}");
            acked.push((
                Ts(parts[1].parse().unwrap()),
                parts[2].parse().unwrap(),
                parts[3].parse().unwrap(),
            ));
        }
        assert!(
            acked.len() > before,
            "round {round}: the writer acknowledged nothing"
        );

        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let txn = store.read_at("crash", &AsOf::Latest).unwrap();
        for (ts, first, n) in &acked {
            for id in *first..first + n {
                let row = txn.get("t", &json!(id)).unwrap();
                assert_eq!(
                    row,
                    Some(json!({"id": id, "v": format!("row {id}")})),
                    "commit {ts} lost row {id}"
                );
            }
        }
        // The clock moved forward: a new commit is newer than every acknowledged one.
        let max = acked.iter().map(|a| a.0).max().unwrap();
        let ((), info) = store
            .with_txn("crash", |t| {
                t.put("t", &json!({"id": -1 - round, "v": "after"}))
            })
            .unwrap();
        assert!(
            info.commit_ts > max,
            "clock went backwards: {} <= {max}",
            info.commit_ts
        );
    }
}
