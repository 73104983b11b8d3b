//! `tenet demo`: the product's story on a fresh data directory, in one command.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tenet_backup::archiver::ArchiveOptions;
use tenet_server::admin::Admin;
use tenet_server::api::*;
use tenet_store::{Store, StoreOptions};

use crate::commands::print_rows;
use crate::output::{commit_line, CliError};
use crate::Global;

fn step(n: u32, title: &str) {
    println!("\n== {n}. {title}");
}

fn users_table() -> CreateTable {
    let col = |name: &str, ty: &str| ColumnInfo {
        name: name.into(),
        ty: ty.into(),
    };
    CreateTable {
        name: "users".into(),
        columns: vec![
            col("id", "int"),
            col("name", "string"),
            col("plan", "string"),
            col("meta", "json"),
        ],
        primary_key: vec!["id".into()],
    }
}

fn scan_all(
    admin: &dyn Admin,
    tenant: &str,
    as_of: Option<String>,
) -> Result<Vec<Value>, CliError> {
    let q = ScanQuery {
        as_of,
        limit: Some(1000),
        ..Default::default()
    };
    Ok(admin.scan(tenant, "users", &q)?.rows)
}

/// Waits for a job; fails unless it succeeded.
fn finished(admin: &dyn Admin, id: u64) -> Result<JobInfo, CliError> {
    let j = crate::jobs_cli::wait_final(admin, id)?;
    match &j.error {
        None if j.state == "succeeded" => Ok(j),
        Some(e) => Err(CliError {
            code: e.code.clone(),
            message: format!("job {id} failed: {}", e.message),
        }),
        None => Err(CliError::other(format!("job {id} ended {}", j.state))),
    }
}

fn print_tenants_brief(admin: &dyn Admin) -> Result<(), CliError> {
    let list: Vec<String> = admin
        .list_tenants()?
        .into_iter()
        .map(|t| format!("{} (id {}, {})", t.name, t.id, t.state))
        .collect();
    println!("tenants now: {}", list.join(", "));
    Ok(())
}

pub fn run(g: &Global) -> Result<(), CliError> {
    let dir = tempfile::Builder::new()
        .prefix("tenet-demo-")
        .tempdir()
        .map_err(CliError::other)?
        .keep();
    println!("Tenet demo on a fresh data directory: {}", dir.display());
    let store = Store::open(&dir, StoreOptions::default())?;
    let svc = tenet_server::service::Service::new(store).map_err(CliError::other)?;
    let admin: &dyn Admin = &svc;

    step(1, "Two customers (tenants) share one store");
    for name in ["acme", "globex"] {
        let r = admin.create_tenant(&CreateTenant {
            name: name.into(),
            history_retention_secs: None,
        })?;
        println!(
            "created tenant `{}` (id {}), {}",
            r.tenant.name,
            r.tenant.id,
            commit_line(&r.commit)
        );
        let t = admin.create_table(name, &users_table())?;
        println!(
            "  created table `users` (id {}), {}",
            t.table.id,
            commit_line(&t.commit)
        );
    }

    step(
        2,
        "Rows go in with transactions; every write reports its commit time",
    );
    let people = ["ada", "grace", "linus", "barbara", "ken", "margaret"];
    let rows: Vec<Value> = people
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"id": i + 1, "name": n, "plan": if i % 2 == 0 {"pro"} else {"free"}, "meta": {"seats": i + 1}}))
        .collect();
    let w = admin.put_rows("acme", "users", rows)?;
    println!("acme: wrote {} rows, {}", w.writes, commit_line(&w.commit));
    let w = admin.put_rows(
        "globex",
        "users",
        vec![json!({"id": 1, "name": "hank", "plan": "pro"})],
    )?;
    println!("globex: wrote {} row, {}", w.writes, commit_line(&w.commit));

    step(
        3,
        "A named snapshot before a migration (O(1): it only names a timestamp)",
    );
    let snap = admin.create_snapshot(
        "acme",
        &CreateSnapshot {
            name: "before-migration".into(),
        },
    )?;
    println!(
        "snapshot `{}` = ts {} ({})",
        snap.snapshot.name, snap.snapshot.ts, snap.snapshot.time
    );

    step(
        4,
        "The migration: add a column (DDL is transactional and time-travel readable)",
    );
    let t = admin.alter_table(
        "acme",
        "users",
        &AlterTable {
            add_columns: vec![ColumnInfo {
                name: "email".into(),
                ty: "string".into(),
            }],
        },
    )?;
    println!(
        "users is now at schema version {}, {}",
        t.table.schema_version,
        commit_line(&t.commit)
    );
    let w = admin.put_rows(
        "acme",
        "users",
        vec![json!({"id": 1, "name": "ada", "plan": "enterprise", "email": "ada@acme.test"})],
    )?;
    println!("upgraded ada, {}", commit_line(&w.commit));
    let before_accident = w.commit.clone();

    step(5, "An accident: a bulk delete of acme's users");
    let keys: Vec<Value> = (1..=people.len()).map(|i| json!(i)).collect();
    let w = admin.delete_rows("acme", "users", keys)?;
    println!("deleted {} rows, {}", w.writes, commit_line(&w.commit));
    println!(
        "acme now has {} users",
        scan_all(admin, "acme", None)?.len()
    );

    step(
        6,
        "Time travel: read acme as it was just before the accident",
    );
    let just_before = (w.commit.commit_ts - 1).to_string();
    let rows = scan_all(admin, "acme", Some(just_before.clone()))?;
    print_rows(&rows);
    println!(
        "({} rows as of ts {just_before}, one tick before the delete; the upgrade at {} is there)",
        rows.len(),
        before_accident.commit_time
    );

    step(
        7,
        "…and as of the snapshot, before the migration (no `email` column yet)",
    );
    let rows = scan_all(admin, "acme", Some("@before-migration".into()))?;
    print_rows(&rows);

    step(
        8,
        "Put acme back as it was just before the delete: one revert commit, in place",
    );
    let r = admin.revert(
        "acme",
        &RevertRequest {
            before_commit: Some(w.commit.commit_ts),
            ..Default::default()
        },
    )?;
    crate::revert_cli::print(&r, false);
    println!(
        "acme has {} users again",
        scan_all(admin, "acme", None)?.len()
    );

    step(9, "The neighbour tenant never noticed");
    print_rows(&scan_all(admin, "globex", None)?);

    step(
        10,
        "An online full backup of acme alone (a local repository here; s3:// works too), \
         then continuous log archiving from that backup on",
    );
    let repo = format!("{}-backups", dir.display());
    let job = admin.create_backup(&CreateBackup {
        tenant: "acme".into(),
        kind: None,
        repo: Some(repo.clone()),
        throttle_bytes_per_sec: None,
    })?;
    let job = finished(admin, job.id)?;
    let r = job.result.clone().unwrap_or_default();
    let backup_id = r["backup_id"].as_str().unwrap_or_default().to_string();
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    println!(
        "backup {backup_id} (job {}): {} as of {}, {}, {} stored in {repo}",
        job.id,
        crate::output::count(n("rows"), "row", "rows"),
        r["backup_time"].as_str().unwrap_or_default(),
        crate::output::count(n("files"), "file", "files"),
        crate::output::size(n("stored_bytes"))
    );

    svc.runtime()
        .block_on(svc.archivers().start(
            svc.store().tenant("acme")?.id,
            &repo,
            ArchiveOptions {
                interval_ms: 200,
                ..ArchiveOptions::default()
            },
        ))
        .map_err(|e| CliError::from(tenet_server::error::ApiError::from(e)))?;
    let a = admin.archive_status("acme")?;
    println!(
        "archiving acme's commit log every 200 ms to {repo}, continuing from the backup: \
         restorable up to {}",
        a.restorable_until_time.as_deref().unwrap_or("nothing yet")
    );

    step(
        11,
        "Restore that backup into a new tenant (new ids, bulk-loaded, verified by digest)",
    );
    let job = admin.create_restore(&CreateRestore {
        source: "acme".into(),
        backup_id: Some(backup_id.clone()),
        target: "acme_copy".into(),
        ..Default::default()
    })?;
    let job = finished(admin, job.id)?;
    let r = job.result.clone().unwrap_or_default();
    println!(
        "tenant `acme_copy` (id {}) restored from {backup_id}: {} rows, verified (job {})",
        r["tenant_id"], r["rows"], job.id
    );
    print_rows(&scan_all(admin, "acme_copy", None)?);
    print_tenants_brief(admin)?;

    step(
        12,
        "Verify the backup: download, checksums, decode, digests",
    );
    let job = admin.verify_backup(&backup_id, &VerifyBackup::default())?;
    let job = finished(admin, job.id)?;
    let n = |k: &str| job.result.as_ref().and_then(|r| r[k].as_u64()).unwrap_or(0);
    println!(
        "backup {backup_id} is intact: {}, {} (job {})",
        crate::output::count(n("files"), "file", "files"),
        crate::output::count(n("rows"), "row", "rows"),
        job.id
    );

    step(
        13,
        "Live traffic on acme, and another accident: a bulk update downgrades everyone",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (svc, stop) = (svc.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let row = json!({"id": 1000 + n, "name": format!("signup-{n}"), "plan": "pro"});
                if svc.put_rows("acme", "users", vec![row]).is_ok() {
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(15));
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    let ops: Vec<TxnOp> = scan_all(admin, "acme", None)?
        .into_iter()
        .map(|mut row| {
            row["plan"] = json!("free");
            TxnOp::Put {
                table: "users".into(),
                row,
            }
        })
        .collect();
    let accident = admin.txn("acme", TxnRequest { ops })?;
    println!(
        "the bad update changed {} rows, {}",
        accident.writes,
        commit_line(&accident.commit)
    );
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    let signups = traffic.join().unwrap_or(0);
    println!("{signups} signups were committed around it by live traffic");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = admin.archive_status("acme")?;
        let covered = a
            .restorable_until_ts
            .is_some_and(|t| t >= accident.commit.commit_ts);
        if covered || Instant::now() > deadline {
            println!(
                "archive: {} in {}, restorable up to {} (RPO {})",
                crate::output::count(a.records, "commit", "commits"),
                crate::output::count(a.segments, "segment", "segments"),
                a.restorable_until_time.as_deref().unwrap_or("nothing yet"),
                crate::output::duration(Duration::from_millis(a.rpo_ms.unwrap_or(0)))
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    step(
        14,
        "Point-in-time restore of acme alone to just before the bad update, into a new tenant",
    );
    let job = admin.create_restore(&CreateRestore {
        source: "acme".into(),
        before_commit: Some(accident.commit.commit_ts),
        target: "acme_rescued".into(),
        ..Default::default()
    })?;
    let job = finished(admin, job.id)?;
    let r = job.result.clone().unwrap_or_default();
    println!(
        "restored to {} (full backup {} + {} replayed commits from the archive, job {})",
        r["restored_time"].as_str().unwrap_or_default(),
        r["backup_id"].as_str().unwrap_or_default(),
        r["replayed_records"],
        job.id
    );
    let plans = |tenant: &str| -> Result<(usize, usize), CliError> {
        let rows = scan_all(admin, tenant, None)?;
        let paid = rows.iter().filter(|r| r["plan"] != json!("free")).count();
        Ok((rows.len(), paid))
    };
    let (live_rows, live_paid) = plans("acme")?;
    let (rescued_rows, rescued_paid) = plans("acme_rescued")?;
    let (neighbour_rows, _) = plans("globex")?;
    println!("side by side:");
    println!("  acme (live)     {live_rows:>4} users, {live_paid:>4} on a paid plan  <- after the bad update");
    println!("  acme_rescued    {rescued_rows:>4} users, {rescued_paid:>4} on a paid plan  <- one tick before it");
    println!("  globex          {neighbour_rows:>4} users, untouched throughout");
    println!(
        "recovered: {rescued_paid} paid plans, including every signup committed before the accident"
    );

    step(
        15,
        "Put live acme back in place: revert the rows the bad update touched (keys below \
         the first later signup), keeping the signups made since",
    );
    let ids = |as_of: Option<String>| -> Result<Vec<i64>, CliError> {
        Ok(scan_all(admin, "acme", as_of)?
            .iter()
            .filter_map(|r| r["id"].as_i64())
            .collect())
    };
    let before = ids(Some((accident.commit.commit_ts - 1).to_string()))?;
    let first_later = ids(None)?
        .into_iter()
        .filter(|id| !before.contains(id))
        .min();
    let fix = admin.revert(
        "acme",
        &RevertRequest {
            before_commit: Some(accident.commit.commit_ts),
            table: Some("users".into()),
            to_key: first_later.map(|id| json!(id)),
            ..Default::default()
        },
    )?;
    crate::revert_cli::print(&fix, false);
    let (fixed_rows, fixed_paid) = plans("acme")?;
    let (neighbour_after, _) = plans("globex")?;
    println!("  acme (live)     {fixed_rows:>4} users, {fixed_paid:>4} on a paid plan  <- repaired in place, same tenant id");
    println!("  globex          {neighbour_after:>4} users, untouched");

    step(16, "A revert is itself a commit: undo it, and redo it");
    let fix_ts = fix.commit_ts.unwrap_or_default();
    let undo = admin.revert(
        "acme",
        &RevertRequest {
            before_commit: Some(fix_ts),
            ..Default::default()
        },
    )?;
    let (_, paid) = plans("acme")?;
    println!(
        "undo (tenet revert acme --before-commit {fix_ts}): {paid} paid plans, as after the bad update"
    );
    let redo = admin.revert(
        "acme",
        &RevertRequest {
            before_commit: undo.commit_ts,
            ..Default::default()
        },
    )?;
    let (_, paid) = plans("acme")?;
    println!(
        "redo (tenet revert acme --before-commit {}): {paid} paid plans again; writes were held {} ms",
        redo.commit_ts.unwrap_or_default(),
        redo.writes_held_ms
    );

    println!("\nExplore it yourself, e.g.:\n  tenet --data-dir {} scan acme users\n  tenet --data-dir {} snapshot list acme", dir.display(), dir.display());
    if g.json {
        println!("{}", json!({"data_dir": dir}));
    }
    Ok(())
}
