//! Bad requests get clear errors and change nothing.

use tenet_backup::{canonical_url, Repo};
use tenet_store::TenantOptions;

use crate::common::{populate, Env};

#[test]
fn bad_requests() {
    let env = Env::new();
    env.store
        .create_tenant("t", TenantOptions::default())
        .unwrap();
    env.store
        .create_tenant("taken", TenantOptions::default())
        .unwrap();
    populate(&env.store, "t", 9, 50);
    let (id, _) = env.backup("t");

    let e = env.start_restore("t", "no-such-backup", "x").unwrap_err();
    assert_eq!(e.code().as_str(), "BACKUP_NOT_FOUND");
    assert!(e.to_string().contains("no-such-backup"), "{e}");

    let e = env.start_restore("t", &id, "taken").unwrap_err();
    assert!(e.to_string().contains("`taken` already exists"), "{e}");

    let e = env.start_restore("taken", &id, "x").unwrap_err();
    assert!(e.to_string().contains("is of tenant `t`"), "{e}");
    assert!(env.store.tenant("x").is_err());

    let e = env.start_restore("t", &id, "bad name!").unwrap_err();
    assert!(e.to_string().contains("bad name!"), "{e}");

    let e = env.start_restore("t", "../../etc", "x").unwrap_err();
    assert_eq!(e.code().as_str(), "INVALID_ARGUMENT", "{e}");

    let e = env
        .rt
        .block_on(env.backups.start_full(env.id("t"), "ftp://host/x", None))
        .unwrap_err();
    assert_eq!(e.code().as_str(), "INVALID_REPOSITORY");
    assert!(e.to_string().contains("unknown scheme `ftp`"), "{e}");
    assert!(canonical_url("s3://").is_err());

    let e = env
        .rt
        .block_on(env.backups.resolve("nobody", None))
        .unwrap_err();
    assert!(e.to_string().contains("`nobody` not found"), "{e}");
    assert_eq!(e.code().as_str(), "TENANT_NOT_FOUND");

    // A repository path that cannot be a directory.
    let file = env.dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let e = Repo::create(&format!("{}/sub", file.display())).unwrap_err();
    assert_eq!(e.code().as_str(), "REPOSITORY_UNAVAILABLE", "{e}");

    let e = env
        .rt
        .block_on(env.backups.delete("no-such-backup", false))
        .unwrap_err();
    assert_eq!(e.code().as_str(), "BACKUP_NOT_FOUND");

    // Deleting removes the files, then the record.
    let before = env.objects().len();
    env.rt.block_on(env.backups.delete(&id, false)).unwrap();
    assert_eq!(
        env.objects(),
        vec!["tenet-repo.json".to_string()],
        "was {before} objects"
    );
    assert!(env.backups.list(None).unwrap().is_empty());
    let e = env.start_restore("t", &id, "x").unwrap_err();
    assert_eq!(e.code().as_str(), "BACKUP_NOT_FOUND");
}
