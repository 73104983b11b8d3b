//! A flipped byte in any kind of repository object is caught by verify and restore,
//! with an error naming the object; nothing half-restored stays `active`.

use tenet_jobs::JobState;
use tenet_store::TenantOptions;

use crate::common::{populate, Env};

fn flip(path: &std::path::Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

#[test]
fn flipped_bytes_are_caught() {
    let env = Env::new();
    env.store
        .create_tenant("t", TenantOptions::default())
        .unwrap();
    populate(&env.store, "t", 5, 300);
    let (id, _) = env.backup("t");
    let objects = env.objects();
    let manifest = objects
        .iter()
        .find(|o| o.ends_with("manifest.json"))
        .unwrap()
        .clone();
    let data = objects
        .iter()
        .find(|o| o.ends_with(".tdf"))
        .unwrap()
        .clone();
    let root = env.repo_dir.path().to_path_buf();

    for (object, at) in [
        (data.clone(), 40),
        (data.clone(), usize::MAX),
        (manifest.clone(), 200),
    ] {
        let path = root.join(&object);
        let good = std::fs::read(&path).unwrap();
        flip(&path, at);

        // Verify refuses a damaged manifest at submission, and fails on a damaged
        // data file while it runs.
        let (code, message) = match env.rt.block_on(env.backups.start_verify(&id, None, None)) {
            Err(e) => (e.code().as_str().to_string(), e.to_string()),
            Ok(job) => {
                let v = env.run(job);
                assert_eq!(v.state, JobState::Failed);
                let err = v.error.unwrap();
                (err.code, err.message)
            }
        };
        assert!(message.contains(&object), "{object}: {message}");
        assert!(
            code == "BACKUP_CORRUPT" || code == "VERIFY_FAILED",
            "{code}"
        );

        // A restore fails at submission (manifest) or while running (data file);
        // either way no tenant is left behind, let alone active.
        match env.start_restore("t", &id, "victim") {
            Err(e) => assert!(e.to_string().contains(&object), "{e}"),
            Ok(job) => {
                let end = env.run(job);
                assert_eq!(end.state, JobState::Failed);
                assert!(end.error.unwrap().message.contains(&object));
            }
        }
        assert!(
            env.store.tenant("victim").is_err(),
            "half-restored tenant left"
        );
        std::fs::write(&path, good).unwrap();
    }

    // The repository marker: a new backup refuses a damaged one.
    let marker = root.join("tenet-repo.json");
    std::fs::write(&marker, b"{\"format\":\"tenet-repo\",\"version\":7}").unwrap();
    let e = env.start_backup("t").unwrap_err().to_string();
    assert!(e.contains("tenet-repo.json"), "{e}");
    std::fs::write(
        &marker,
        br#"{"format":"tenet-repo","version":9,"repo_id":"x","created_at":"now"}"#,
    )
    .unwrap();
    let e = env.start_backup("t").unwrap_err().to_string();
    assert!(
        e.contains("version 9") && e.contains("tenet-repo.json"),
        "{e}"
    );

    // With everything repaired, verify and restore succeed.
    assert_eq!(env.verify(&id).state, JobState::Succeeded);
    assert_eq!(env.restore("t", &id, "fine").state, JobState::Succeeded);
}
