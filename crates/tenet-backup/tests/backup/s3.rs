//! The round trip against a real S3-protocol server (s3s-fs) started in this process,
//! and a clear error for an S3 endpoint that does not answer.

use tenet_jobs::JobState;
use tenet_store::{AsOf, TenantOptions};

use crate::common::{dump, populate, Env};
use crate::s3_server::start_s3;

#[test]
fn s3_round_trip_and_unreachable_endpoint() {
    let env = Env::new();
    let s3_root = tempfile::tempdir().unwrap();
    let endpoint = start_s3(&env.rt, s3_root.path());
    // The S3 settings come from the usual AWS environment variables; only this test
    // uses s3:// URLs.
    std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
    std::env::set_var("AWS_ACCESS_KEY_ID", "tenet-test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "tenet-test-secret");
    std::env::set_var("AWS_REGION", "us-east-1");

    env.store
        .create_tenant("s3t", TenantOptions::default())
        .unwrap();
    populate(&env.store, "s3t", 11, 300);
    let repo = "s3://tenet/backups/prod";
    let job = env
        .rt
        .block_on(env.backups.start_full(env.id("s3t"), repo, None))
        .unwrap();
    let job = env.run(job);
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let r = job.result.unwrap();
    let (id, f) = (
        r["backup_id"].as_str().unwrap().to_string(),
        tenet_store::Ts(r["backup_ts"].as_u64().unwrap()),
    );
    // The objects are in the bucket, under the prefix.
    let marker = s3_root.path().join("tenet/backups/prod/tenet-repo.json");
    assert!(marker.exists(), "no marker at {}", marker.display());

    let v = env.verify(&id);
    assert_eq!(v.state, JobState::Succeeded, "{:?}", v.error);
    let job = env.restore("s3t", &id, "s3t_copy");
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(
        dump(&env.store, "s3t_copy", &AsOf::Latest),
        dump(&env.store, "s3t", &AsOf::Ts(f))
    );
    // Found through the repository alone, without this store's record.
    let (rec, m) = env.rt.block_on(env.backups.show(&id, Some(repo))).unwrap();
    assert!(rec.is_some());
    assert_eq!(m.backup_id, id);

    // An endpoint where nothing listens: a clear error, quickly.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    std::env::set_var("AWS_ENDPOINT_URL", &dead_url);
    let started = std::time::Instant::now();
    let e = env
        .rt
        .block_on(env.backups.start_full(env.id("s3t"), "s3://tenet/x", None))
        .unwrap_err();
    assert_eq!(e.code().as_str(), "REPOSITORY_UNAVAILABLE", "{e}");
    assert!(e.to_string().contains("s3://tenet/x"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
}
