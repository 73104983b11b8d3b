//! Encrypted backups: no row value in the repository, tampering detected, a fresh store
//! with the master key restores and one without it cannot, and destroyed keys make every
//! backup and segment of a history unreadable while other tenants' stay readable.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use serde_json::json;
use tenet_backup::keys::{self, LocalMasterKey, MasterKey};
use tenet_backup::planner::Target;
use tenet_jobs::{JobRecord, JobState};
use tenet_store::{AsOf, Ts};

use crate::common::{col, dump, Env};

fn master(byte: &str) -> Arc<dyn MasterKey> {
    Arc::new(LocalMasterKey::from_hex(&byte.repeat(32), "test").unwrap())
}

/// Tenant `name` with tables `t` and `u` of random, incompressible values (so that a
/// plain data file holds them verbatim); returns them.
fn secret_tenant(env: &Env, name: &str, seed: u64) -> Vec<Vec<u8>> {
    env.store.create_tenant(name, Default::default()).unwrap();
    for table in ["t", "u"] {
        env.store
            .with_txn(name, |txn| {
                txn.create_table(&tenet_store::TableSpec {
                    name: table.into(),
                    columns: vec![
                        col("id", tenet_store::ColumnType::Int),
                        col("v", tenet_store::ColumnType::Bytes),
                    ],
                    primary_key: vec!["id".into()],
                })
            })
            .unwrap();
    }
    put_secrets(env, name, seed, 0).0
}

/// Puts 200 rows of random values; returns them and the commit's ts.
fn put_secrets(env: &Env, name: &str, seed: u64, from: i64) -> (Vec<Vec<u8>>, Ts) {
    use base64::Engine;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut values = Vec::new();
    let ((), info) = env
        .store
        .with_txn(name, |txn| {
            for i in from..from + 200 {
                let v: Vec<u8> = (0..48).map(|_| rng.random()).collect();
                let b64 = base64::engine::general_purpose::STANDARD.encode(&v);
                txn.put(
                    if i % 2 == 0 { "t" } else { "u" },
                    &json!({"id": i, "v": b64}),
                )?;
                values.push(v);
            }
            Ok(())
        })
        .unwrap();
    (values, info.commit_ts)
}

/// The values of `values` some repository object holds.
fn leaked(env: &Env, values: &[Vec<u8>]) -> Vec<String> {
    let mut out = Vec::new();
    for obj in env.objects() {
        let bytes = std::fs::read(env.repo_dir.path().join(&obj)).unwrap();
        let n = values
            .iter()
            .filter(|v| bytes.windows(v.len()).any(|w| w == v.as_slice()))
            .count();
        if n > 0 {
            out.push(format!("{obj}: {n} values"));
        }
    }
    out
}

fn incr(env: &Env, tenant: &str) -> JobRecord {
    let job = env
        .rt
        .block_on(env.backups.start_incr(env.id(tenant), None, None))
        .unwrap();
    env.run(job)
}

fn failed_with(job: &JobRecord, code: &str) -> String {
    assert_eq!(job.state, JobState::Failed, "{:?}", job.result);
    let e = job.error.as_ref().unwrap();
    assert_eq!(e.code, code, "{}", e.message);
    e.message.clone()
}

/// Env B reading env A's repository.
fn reader_of(a: &Env) -> Env {
    let mut b = Env::new();
    b.repo = a.repo.clone();
    b
}

fn restore_latest(env: &Env, source: &str, into: &str) -> JobRecord {
    let subject = env
        .rt
        .block_on(env.backups.resolve(source, Some(&env.repo)))
        .unwrap();
    let job = env
        .rt
        .block_on(env.backups.start_restore_to(
            &subject,
            &Target::Latest,
            into,
            Some(&env.repo),
            None,
        ))
        .unwrap();
    env.run(job)
}

#[test]
fn encrypted_backups_hold_no_row_and_restore_only_with_the_master_key() {
    // The check can fail: a plain backup shows its values.
    let plain = Env::new();
    let values = secret_tenant(&plain, "acme", 1);
    plain.backup("acme");
    assert!(
        !leaked(&plain, &values).is_empty(),
        "the leak check finds nothing in clear"
    );

    let env = Env::new();
    keys::set_master(&env.store, Some(master("ab")));
    let mut values = secret_tenant(&env, "acme", 2);
    let archivers = env.archive("acme");
    let (full, _) = env.backup("acme");
    values.extend(put_secrets(&env, "acme", 3, 1000).0);
    assert_eq!(incr(&env, "acme").state, JobState::Succeeded);
    let (more, last) = put_secrets(&env, "acme", 4, 2000);
    values.extend(more);
    env.wait_archived(&archivers, "acme", last);
    assert_eq!(leaked(&env, &values), Vec::<String>::new());
    let objects = env.objects();
    assert!(
        objects.iter().any(|o| o.ends_with(".tdf")) && objects.iter().any(|o| o.ends_with(".tls"))
    );
    assert!(
        objects.iter().any(|o| o.ends_with("keys/k1.json")),
        "{objects:?}"
    );
    // The manifest names the key, never the key.
    let (_, m) = env.rt.block_on(env.backups.show(&full, None)).unwrap();
    assert!(m
        .tables
        .iter()
        .flat_map(|t| &t.files)
        .all(|f| f.key_id.as_deref() == Some("k1")));
    assert_eq!(env.verify(&full).state, JobState::Succeeded);
    env.assert_restores_as_source("acme", &Target::Latest, "same_store");

    // A fresh store with the master key restores; without it, or with another, not.
    let fresh = reader_of(&env);
    keys::set_master(&fresh.store, Some(master("ab")));
    let job = restore_latest(&fresh, "acme", "acme");
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let t = Ts(job.result.unwrap()["restored_ts"].as_u64().unwrap());
    assert!(t >= last);
    assert_eq!(
        dump(&fresh.store, "acme", &AsOf::Latest),
        dump(&env.store, "acme", &AsOf::Ts(t))
    );
    let without = reader_of(&env);
    let msg = failed_with(&restore_latest(&without, "acme", "acme"), "KEY_UNAVAILABLE");
    assert!(
        msg.contains("master key") && msg.contains("TENET_MASTER_KEY"),
        "{msg}"
    );
    let other = reader_of(&env);
    keys::set_master(&other.store, Some(master("cd")));
    let msg = failed_with(&restore_latest(&other, "acme", "acme"), "KEY_UNAVAILABLE");
    assert!(
        msg.contains(&master("ab").id()) && msg.contains(&master("cd").id()),
        "{msg}"
    );
    archivers.stop(env.id("acme")).unwrap();
    // Restarted without its master key, the store writes nothing in clear into the
    // encrypted history.
    keys::set_master(&env.store, None);
    let job = env.run(env.start_backup("acme").unwrap());
    let msg = failed_with(&job, "KEY_UNAVAILABLE");
    assert!(msg.contains("nothing is written in clear"), "{msg}");
    assert_eq!(leaked(&env, &values), Vec::<String>::new());
}

#[test]
fn swapped_and_flipped_sealed_objects_are_detected() {
    let env = Env::new();
    keys::set_master(&env.store, Some(master("ab")));
    secret_tenant(&env, "acme", 5);
    let archivers = env.archive("acme");
    let (full, _) = env.backup("acme");
    let mut last = Ts(0);
    for i in 0..3 {
        last = put_secrets(&env, "acme", 10 + i, 1000 * (i as i64 + 1)).1;
        std::thread::sleep(std::time::Duration::from_millis(60));
    }
    env.wait_archived(&archivers, "acme", last);
    archivers.stop(env.id("acme")).unwrap();
    let path = |o: &str| env.repo_dir.path().join(o);

    // Two data files swapped, the manifest's checksums made to match: the seal of each
    // binds its path.
    let objects = env.objects();
    let mkey = objects
        .iter()
        .find(|o| o.contains(&full) && o.ends_with("manifest.json"))
        .unwrap();
    let saved = std::fs::read(path(mkey)).unwrap();
    let mut m = tenet_backup::format::decode_manifest("m", &saved).unwrap();
    let dir = mkey.trim_end_matches("manifest.json");
    let (a, b) = (m.tables[0].files[0].clone(), m.tables[1].files[0].clone());
    let (fa, fb) = (
        path(&format!("{dir}{}", a.path)),
        path(&format!("{dir}{}", b.path)),
    );
    let (ba, bb) = (std::fs::read(&fa).unwrap(), std::fs::read(&fb).unwrap());
    std::fs::write(&fa, &bb).unwrap();
    std::fs::write(&fb, &ba).unwrap();
    for (t, other) in [(0, &b), (1, &a)] {
        let f = &mut m.tables[t].files[0];
        f.size = other.size;
        f.blake3 = other.blake3.clone();
    }
    std::fs::write(path(mkey), tenet_backup::format::encode_manifest(&m)).unwrap();
    let job = env.verify(&full);
    let msg = failed_with(&job, "BACKUP_CORRUPT");
    assert!(msg.contains("does not authenticate"), "{msg}");
    std::fs::write(&fa, &ba).unwrap();
    std::fs::write(&fb, &bb).unwrap();
    std::fs::write(path(mkey), &saved).unwrap();
    assert_eq!(env.verify(&full).state, JobState::Succeeded);

    // A flipped byte in an archived segment (no manifest checksum covers it).
    let segments: Vec<String> = env
        .objects()
        .into_iter()
        .filter(|o| o.ends_with(".tls"))
        .collect();
    assert!(segments.len() >= 2, "{segments:?}");
    let big = segments
        .iter()
        .max_by_key(|s| std::fs::metadata(path(s)).unwrap().len())
        .unwrap();
    let original = std::fs::read(path(big)).unwrap();
    let mut flipped = original.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x20;
    std::fs::write(path(big), &flipped).unwrap();
    let msg = failed_with(&restore_latest(&env, "acme", "r1"), "BACKUP_CORRUPT");
    assert!(msg.contains("does not authenticate"), "{msg}");
    std::fs::write(path(big), &original).unwrap();

    // Two segments swapped.
    let other = segments.iter().find(|s| *s != big).unwrap();
    let o2 = std::fs::read(path(other)).unwrap();
    std::fs::write(path(big), &o2).unwrap();
    std::fs::write(path(other), &original).unwrap();
    let msg = failed_with(&restore_latest(&env, "acme", "r2"), "BACKUP_CORRUPT");
    assert!(msg.contains("does not authenticate"), "{msg}");
    std::fs::write(path(big), &original).unwrap();
    std::fs::write(path(other), &o2).unwrap();
    let job = restore_latest(&env, "acme", "r3");
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
}

#[test]
fn destroyed_keys_make_every_backup_of_the_history_unreadable_and_no_other() {
    let env = Env::new();
    keys::set_master(&env.store, Some(master("ab")));
    secret_tenant(&env, "gone", 6);
    secret_tenant(&env, "kept", 7);
    let archivers = env.archive("gone");
    let (g1, _) = env.backup("gone");
    let (_, last) = put_secrets(&env, "gone", 8, 1000);
    assert_eq!(incr(&env, "gone").state, JobState::Succeeded);
    let rotated = env
        .rt
        .block_on(env.backups.rotate_key(&env.subject("gone"), None))
        .unwrap();
    assert_eq!(rotated, "k2");
    let (g2, _) = env.backup("gone");
    let (k1, _) = env.backup("kept");
    env.wait_archived(&archivers, "gone", last);
    archivers.stop(env.id("gone")).unwrap();
    let (_, m2) = env.rt.block_on(env.backups.show(&g2, None)).unwrap();
    assert!(m2
        .tables
        .iter()
        .flat_map(|t| &t.files)
        .all(|f| f.key_id.as_deref() == Some("k2")));

    let subject = env.subject("gone");
    let destroyed = env
        .rt
        .block_on(
            env.backups
                .destroy_keys(&subject, std::slice::from_ref(&env.repo), "test"),
        )
        .unwrap();
    assert_eq!(destroyed.keys, vec!["k1".to_string(), "k2".to_string()]);
    assert!(destroyed.incomplete.is_empty(), "{destroyed:?}");
    let history: Vec<tenet_backup::BackupRecord> = env.backups.list(Some(subject.id)).unwrap();
    assert_eq!(history.len(), 3);
    for r in &history {
        let msg = failed_with(&env.verify(&r.id), "KEY_DESTROYED");
        assert!(msg.contains("was destroyed at 20"), "{msg}");
        let msg = failed_with(
            &env.restore("gone", &r.id, &format!("x{}", r.id.len())),
            "KEY_DESTROYED",
        );
        assert!(msg.contains("shredded"), "{msg}");
    }
    failed_with(&restore_latest(&env, "gone", "pitr"), "KEY_DESTROYED");
    // Nothing is listed as restorable that cannot be restored; the neighbour still is.
    let points = env.rt.block_on(env.backups.restore_points(&subject, None));
    assert!(
        matches!(&points, Err(tenet_backup::Error::KeyDestroyed { .. })),
        "{points:?}"
    );
    let kept = env
        .rt
        .block_on(env.backups.restore_points(&env.subject("kept"), None));
    assert!(!kept.unwrap().is_empty());
    assert!(g1 != g2);
    // The neighbour is untouched.
    assert_eq!(env.verify(&k1).state, JobState::Succeeded);
    let job = env.restore("kept", &k1, "kept2");
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    // Nothing more is sealed for the shredded history.
    let e = env.start_backup("gone").map(|j| env.run(j));
    let failed = match e {
        Err(e) => e.to_string(),
        Ok(j) => j.error.map(|e| e.message).unwrap_or_default(),
    };
    assert!(failed.contains("destroyed"), "{failed}");
}
