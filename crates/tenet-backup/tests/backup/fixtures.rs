//! Repository format fixtures: a repository written by format version 1 (manifest
//! version 1, blake3 row digests) is kept under `tests/fixtures/repo-v1/` and must stay
//! readable. Do not regenerate it: `TENET_WRITE_FIXTURES=1` writes what this build
//! writes (manifest version 2) and the test then fails, since it checks the version.

use std::path::PathBuf;

use serde_json::json;
use tenet_backup::RestoreRequest;
use tenet_jobs::JobState;
use tenet_store::{AsOf, TenantOptions};

use crate::common::{all_types, dump, Env};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repo-v1")
}

const BACKUP_ID: &str = "fixture-20231114T221320-j1";

fn fixture_rows() -> Vec<serde_json::Value> {
    (0..50)
        .map(|k| {
            json!({"k": k, "s": format!("s{k}"), "f": k as f64 / 4.0, "b": k % 2 == 0,
                   "y": "AAEC", "j": {"k": k}, "pad": "p".repeat(k as usize)})
        })
        .collect()
}

#[test]
fn version_1_repository_is_still_readable() {
    let dir = fixture_dir();
    if std::env::var_os("TENET_WRITE_FIXTURES").is_some() {
        write_fixture(&dir);
    }
    let manifest = std::fs::read_to_string(
        dir.join("tenants/1/backups")
            .join(BACKUP_ID)
            .join("manifest.json"),
    )
    .unwrap();
    assert!(manifest.starts_with(r#"{"format":"tenet-backup-manifest","version":1,"#));
    let env = Env::new();
    let repo = format!("file://{}", dir.display());
    // Found by scanning the repository (this store has no record of it).
    let verify = env
        .rt
        .block_on(env.backups.start_verify(BACKUP_ID, Some(&repo), None))
        .unwrap();
    let v = env.run(verify);
    assert_eq!(v.state, JobState::Succeeded, "{:?}", v.error);
    let job = env
        .rt
        .block_on(env.backups.start_restore(&RestoreRequest {
            source: None,
            backup_id: BACKUP_ID.into(),
            target: "from_fixture".into(),
            repo: Some(repo),
            throttle_bytes_per_sec: None,
        }))
        .unwrap();
    let job = env.run(job);
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let d = dump(&env.store, "from_fixture", &AsOf::Latest);
    let mut rows = fixture_rows();
    rows.sort_by_key(|r| (r["k"].as_i64(), r["s"].as_str().map(String::from)));
    assert_eq!(d["items"][1..], rows[..]);
}

/// Writes the fixture with this build (what it writes: see the module header).
fn write_fixture(dir: &std::path::Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let env = Env::new();
    env.store
        .create_tenant("fixture", TenantOptions::default())
        .unwrap();
    let mut txn = env.store.begin("fixture").unwrap();
    txn.create_table(&all_types("items")).unwrap();
    txn.commit().unwrap();
    let mut txn = env.store.begin("fixture").unwrap();
    for r in fixture_rows() {
        txn.put("items", &r).unwrap();
    }
    txn.commit().unwrap();
    let (id, _) = env.backup("fixture");
    // Copy the repository and give the backup a fixed id.
    let src = env.repo_dir.path();
    copy_tree(src, dir);
    let tenants = dir.join("tenants");
    let t = std::fs::read_dir(&tenants)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let from = t.join("backups").join(&id);
    let to = t.join("backups").join(BACKUP_ID);
    std::fs::rename(&from, &to).unwrap();
    let mpath = to.join("manifest.json");
    let text = std::fs::read_to_string(&mpath).unwrap();
    let mut m = tenet_backup::format::decode_manifest("fixture", text.as_bytes()).unwrap();
    m.backup_id = BACKUP_ID.into();
    std::fs::write(&mpath, tenet_backup::format::encode_manifest(&m)).unwrap();
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}
