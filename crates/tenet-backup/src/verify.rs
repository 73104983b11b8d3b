//! The verify job (`verify`): re-reads a backup from its repository without
//! restoring it. Every data file is downloaded, its size and blake3 checked against the
//! manifest, every record decoded (keys against the primary key, rows against the
//! table's schema), and row counts and logical digests recomputed per file and per
//! table. Any difference fails the job with an error naming the object.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use tenet_jobs::{JobContext, RowCounter, Task};
use tenet_store::keys::decode_pk;
use tenet_store::row::decode_row;

use crate::error::{Error, Result};
use crate::format::{check_table_sums, read_data_file, Digest, DigestKind, FileEntry};
use crate::inventory::load_manifest;
use crate::repo::{backup_dir, Repo};
use crate::restore::fetch_file;
use crate::segment::read_segment;
use crate::util::{blocking, job_kind, params};

pub const KIND: &str = "verify";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyParams {
    pub backup_id: String,
    pub repo: String,
    pub tenant_id: u64,
}

job_kind!(
    /// Runs verifications.
    Verify,
    KIND
);

async fn run(ctx: JobContext) -> Result<Value> {
    let p: VerifyParams = params(&ctx)?;
    let repo = Repo::open(&p.repo)?;
    ctx.set_phase("manifest")?;
    let m = load_manifest(&repo, p.tenant_id, &p.backup_id).await?;
    let files: u64 =
        m.tables.iter().map(|t| t.files.len() as u64).sum::<u64>() + m.segments.len() as u64;
    ctx.set_phase("verify")?;
    ctx.set_totals(files, m.rows, m.logical_bytes)?;
    let dir = backup_dir(p.tenant_id, &p.backup_id);
    let mut tasks = Vec::new();
    for t in &m.tables {
        for f in &t.files {
            let (repo, dir, f, def) = (repo.clone(), dir.clone(), f.clone(), t.def.clone());
            let kind = m.row_digest;
            tasks.push(Task::new(f.path.clone(), move |ctx| async move {
                Ok(check_file(&ctx, &repo, &dir, &f, def, kind).await?)
            }));
        }
    }
    for seg in &m.segments {
        let (repo, dir, seg, tid) = (repo.clone(), dir.clone(), seg.clone(), p.tenant_id);
        tasks.push(Task::new(seg.path.clone(), move |ctx| async move {
            let f = FileEntry {
                path: seg.path.clone(),
                size: seg.size,
                blake3: seg.blake3.clone(),
                rows: seg.records,
                logical_bytes: 0,
                digest: String::new(),
                key_id: seg.key_id.clone(),
            };
            let (object, bytes) = fetch_file(&ctx, &repo, &dir, &f).await?;
            let (info, recs) = blocking(move || read_segment(&object, tid, &bytes)).await?;
            if (info.start, info.end, recs.len() as u64) != (seg.start, seg.end, seg.records) {
                return Err(Error::VerifyFailed(format!(
                    "segment {} holds ({}, {}] with {} records, the manifest says ({}, {}] with {}",
                    seg.path,
                    info.start,
                    info.end,
                    recs.len(),
                    seg.start,
                    seg.end,
                    seg.records
                ))
                .into());
            }
            Ok(json!({ "rows": 0, "bytes": 0 }))
        }));
    }
    let outs = ctx.run_tasks("verify", tasks).await?;
    // Per table: the files' rows and digests must add up to the table's.
    let mut outs = outs.iter();
    for t in &m.tables {
        check_table_sums(t, outs.by_ref().take(t.files.len()), "files hold")?;
    }
    Ok(json!({
        "backup_id": m.backup_id,
        "ok": true,
        "tables": m.tables.len(),
        "files": files,
        "rows": m.rows,
        "logical_bytes": m.logical_bytes,
        "stored_bytes": m.stored_bytes,
    }))
}

/// Verification makes nothing, so there is nothing to clean up.
async fn cleanup(_ctx: JobContext) -> Result<()> {
    Ok(())
}

async fn check_file(
    ctx: &JobContext,
    repo: &Repo,
    dir: &str,
    f: &FileEntry,
    def: tenet_store::TableDef,
    kind: DigestKind,
) -> Result<Value> {
    let (object, bytes) = fetch_file(ctx, repo, dir, f).await?;
    let f2 = f.clone();
    let mut counter = RowCounter::new(ctx, false);
    blocking(move || {
        let mut d = Digest::default();
        let mut last: Option<Vec<u8>> = None;
        read_data_file(&object, &bytes, |pk, _ts, row| {
            let n = counter.rows;
            let bad = |reason: String| Error::Corrupt {
                object: object.clone(),
                reason,
            };
            if last.as_deref().is_some_and(|l| l >= pk) {
                return Err(bad(format!("record {n}: keys out of order")));
            }
            decode_pk(pk).map_err(|e| bad(format!("record {n}: key: {e}")))?;
            decode_row(&def, row).map_err(|e| bad(format!("record {n}: row: {e}")))?;
            d.add_row(kind, &def.name, pk, row);
            last = Some(pk.to_vec());
            Ok(counter.add((pk.len() + row.len()) as u64)?)
        })?;
        counter.flush()?;
        let (rows, logical) = (counter.rows, counter.bytes);
        if rows != f2.rows || d.to_hex() != f2.digest || logical != f2.logical_bytes {
            return Err(Error::VerifyFailed(format!(
                "{object}: {rows} rows / digest {} decoded, the manifest says {} rows / digest {}",
                d.to_hex(),
                f2.rows,
                f2.digest
            )));
        }
        Ok(json!({ "rows": rows, "bytes": logical, "digest": d.to_hex() }))
    })
    .await
}
