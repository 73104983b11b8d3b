//! Crash safety of the log archive and of log replay, with real process kills: a
//! server archiving a tenant under a steady writer is SIGKILLed at random moments and
//! restarted; the archive has no gap the planner does not report, and restores equal
//! the source. A point-in-time restore killed during replay resumes to the same rows.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};
use tenet_server::admin::Admin;

use crate::common::{json_out, tenet, Server};

fn scan(dir: &Path, tenant: &str) -> Value {
    json_out(&tenet(
        dir,
        &["--json", "scan", tenant, "t", "--limit", "100000"],
    ))["rows"]
        .clone()
}

#[test]
fn archive_survives_server_kills_and_replay_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let repo_arg = repo.path().display().to_string();
    let d = dir.path();
    assert!(tenet(d, &["tenant", "create", "w"]).status.success());
    assert!(tenet(
        d,
        &[
            "table",
            "create",
            "w",
            "t",
            "--column",
            "id:int",
            "--column",
            "v:string",
            "--primary-key",
            "id"
        ]
    )
    .status
    .success());

    let mut server = Server::start(d);
    json_out(&tenet(
        d,
        &[
            "--json",
            "archive",
            "start",
            "w",
            "--repo",
            &repo_arg,
            "--interval",
            "50ms",
        ],
    ));
    json_out(&tenet(
        d,
        &["--json", "backup", "full", "w", "--repo", &repo_arg],
    ));

    // A writer that follows the server across restarts and records acknowledged commits.
    let url = Arc::new(Mutex::new(server.url.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let writer = {
        let (url, stop, acked) = (url.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut id = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let u = url.lock().unwrap().clone();
                let c = crate::common::client(&u);
                let row = json!({"id": id, "v": format!("row {id}")});
                if let Ok(w) = c.put_rows("w", "t", vec![row]) {
                    acked.lock().unwrap().push(w.commit.commit_ts);
                    id += 1;
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    let mut rng = rand::rng();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1200)));
        server.child.kill().unwrap(); // SIGKILL, mid-archiving
        server.child.wait().unwrap();
        server = Server::start(d);
        *url.lock().unwrap() = server.url.clone();
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let last = *acked.lock().unwrap().iter().max().expect("some commits");
    assert!(acked.lock().unwrap().len() > 20);

    // The archiver resumed after every kill and catches up; no gap anywhere.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = json_out(&tenet(d, &["--json", "archive", "status", "w"]));
        if crate::common::ts(&st["checkpoint_ts"]) >= last {
            assert_eq!(st["status"], "running", "{st}");
            break;
        }
        assert!(Instant::now() < deadline, "archive stuck: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let points = json_out(&tenet(d, &["--json", "restore-points", "w"]));
    assert_eq!(points.as_array().unwrap().len(), 1, "a gap: {points}");
    assert!(crate::common::ts(&points[0]["to_ts"]) >= last);
    let r = json_out(&tenet(
        d,
        &[
            "--json",
            "restore",
            "w",
            "--to",
            &last.to_string(),
            "--into",
            "w_ref",
        ],
    ));
    assert_eq!(r["state"], "succeeded", "{r}");
    let reference = scan(d, "w_ref");
    assert_eq!(reference, scan(d, "w"));
    assert_eq!(
        reference.as_array().unwrap().len(),
        acked.lock().unwrap().len()
    );

    // Replay killed at random moments (embedded, throttled), then resumed.
    drop(server);
    let mut resumed = 0;
    for round in 0..2 {
        let into = format!("w_killed{round}");
        let mut child = std::process::Command::new(crate::common::bin())
            .arg("--data-dir")
            .arg(d)
            .args([
                "restore",
                "w",
                "--to",
                &last.to_string(),
                "--into",
                &into,
                "--throttle",
                "2KiB",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(400..1500)));
        child.kill().unwrap();
        child.wait().unwrap();
        let jobs = json_out(&tenet(d, &["--json", "jobs", "list"]));
        let job = jobs.as_array().unwrap().last().unwrap().clone();
        if job["state"] == "running" {
            resumed += 1;
            let out = json_out(&tenet(
                d,
                &["--json", "jobs", "resume", &job["id"].to_string()],
            ));
            assert_eq!(out["state"], "succeeded", "{out}");
        }
        assert_eq!(scan(d, &into), reference, "round {round}");
    }
    assert!(resumed >= 1, "no kill landed during a restore");
}
