//! The per-tenant commit log: one record per committed transaction.
//!
//! Records are written in the same RocksDB write batch as the data versions they
//! describe, under `log` key `tenant_id | commit_ts`, so the log and the data can never
//! disagree. DDL is in the log as mutations of the catalog table (id 0), so replaying a
//! tenant's log rebuilds its catalog too.
//!
//! ```text
//! record   = version:u8 (=1) | commit_ts:u64 BE | count:varint | mutation*
//! mutation = table_id:varint | pk_enc:len-prefixed | op:u8 | [row:len-prefixed if op=1]
//! op       = 1 put | 2 delete
//! ```

use crate::codec::{put_bytes, put_varint, Reader};
use crate::error::{Error, Result};
use crate::keys::{VERSION_DELETE, VERSION_PUT};
use crate::ts::Ts;

const LOG_FORMAT_V1: u8 = 1;

/// A commit record as stored: its commit ts and its encoding.
pub type RawRecord = (Ts, Vec<u8>);

/// One row version written by a transaction: `value` is `None` for a delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutation {
    pub table_id: u64,
    pub pk_enc: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A committed transaction of one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub tenant_id: u64,
    pub commit_ts: Ts,
    pub mutations: Vec<Mutation>,
}

impl LogRecord {
    /// Whether the transaction changed the catalog (DDL or snapshots).
    pub fn has_ddl(&self) -> bool {
        self.mutations
            .iter()
            .any(|m| m.table_id == crate::catalog::CATALOG_TABLE)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            16 + self
                .mutations
                .iter()
                .map(|m| 16 + m.pk_enc.len() + m.value.as_ref().map_or(0, Vec::len))
                .sum::<usize>(),
        );
        out.push(LOG_FORMAT_V1);
        out.extend_from_slice(&self.commit_ts.0.to_be_bytes());
        put_varint(&mut out, self.mutations.len() as u64);
        for m in &self.mutations {
            put_varint(&mut out, m.table_id);
            put_bytes(&mut out, &m.pk_enc);
            match &m.value {
                Some(row) => {
                    out.push(VERSION_PUT);
                    put_bytes(&mut out, row);
                }
                None => out.push(VERSION_DELETE),
            }
        }
        out
    }

    pub fn decode(tenant_id: u64, bytes: &[u8]) -> Result<LogRecord> {
        let mut r = Reader::new(bytes, "commit record");
        let version = r.u8()?;
        if version != LOG_FORMAT_V1 {
            return Err(Error::Corrupt(format!(
                "commit record of tenant {tenant_id}: unknown format version {version}"
            )));
        }
        let commit_ts = Ts(r.u64_be()?);
        let n = r.varint()?;
        let mut mutations = Vec::with_capacity(n.min(1 << 16) as usize);
        for _ in 0..n {
            let table_id = r.varint()?;
            let pk_enc = r.len_prefixed()?.to_vec();
            let value = match r.u8()? {
                VERSION_PUT => Some(r.len_prefixed()?.to_vec()),
                VERSION_DELETE => None,
                op => {
                    return Err(Error::Corrupt(format!(
                        "commit record {commit_ts} of tenant {tenant_id}: unknown op {op}"
                    )))
                }
            };
            mutations.push(Mutation {
                table_id,
                pk_enc,
                value,
            });
        }
        r.finish()?;
        Ok(LogRecord {
            tenant_id,
            commit_ts,
            mutations,
        })
    }
}

impl crate::store::Store {
    /// Up to `max` commit records of `tenant_id` with `after < commit_ts ≤ visible ts`, in
    /// commit order. Records are returned only once every commit at or below them is
    /// complete, so a caller that continues from the last ts returned never skips one.
    pub fn read_log(
        &self,
        tenant_id: u64,
        after: Ts,
        max: usize,
    ) -> crate::error::Result<Vec<LogRecord>> {
        Ok(self.read_log_covered(tenant_id, after, max)?.0)
    }

    /// [`Store::read_log_covered`] without decoding: each record's commit ts and its
    /// encoded bytes (as stored; `LogRecord::decode` reads them). For archivers, which
    /// ship records as they are.
    pub fn read_log_raw_covered(
        &self,
        tenant_id: u64,
        after: Ts,
        max: usize,
    ) -> crate::error::Result<(Vec<RawRecord>, Ts)> {
        let upto = self.tenant_visible_ts(tenant_id);
        if after >= upto || max == 0 {
            return Ok((Vec::new(), after));
        }
        let lower = crate::keys::log_key(tenant_id, after.next());
        let upper = crate::keys::log_key(tenant_id, upto.next());
        // Not a bulk scan's read-ahead: the archiver and the RPO read a few records at
        // a time, often, where reading 2 MiB ahead would cost more than it saves.
        let mut ro = crate::store::prefix_read_options(lower.to_vec(), Some(upper.to_vec()));
        ro.fill_cache(false);
        let mut it = self.inner.db.raw_iterator_cf_opt(self.cf_log(), ro);
        it.seek(lower);
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if out.len() >= max {
                break;
            }
            let (_, ts) = crate::keys::parse_log_key(k)?;
            out.push((ts, v.to_vec()));
            it.next();
        }
        it.status()?;
        let covered = if out.len() >= max {
            out.last().map_or(after, |r| r.0)
        } else {
            upto
        };
        Ok((out, covered))
    }

    /// [`Store::read_log`], plus the ts the answer is complete up to: every commit of
    /// the tenant with `after < ts ≤ covered` is in the records (the visible ts when
    /// fewer than `max` came back, else the last record's ts). An archiver that cuts a
    /// segment `(after, covered]` therefore never misses a commit.
    pub fn read_log_covered(
        &self,
        tenant_id: u64,
        after: Ts,
        max: usize,
    ) -> crate::error::Result<(Vec<LogRecord>, Ts)> {
        let (raw, covered) = self.read_log_raw_covered(tenant_id, after, max)?;
        let records = raw
            .into_iter()
            .map(|(ts, bytes)| {
                let rec = LogRecord::decode(tenant_id, &bytes)?;
                if rec.commit_ts != ts {
                    return Err(Error::Corrupt(format!(
                        "commit record under key ts {ts} says ts {}",
                        rec.commit_ts
                    )));
                }
                Ok(rec)
            })
            .collect::<crate::error::Result<_>>()?;
        Ok((records, covered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let rec = LogRecord {
            tenant_id: 3,
            commit_ts: Ts(77),
            mutations: vec![
                Mutation {
                    table_id: 0,
                    pk_enc: vec![1, 2],
                    value: Some(vec![9; 5]),
                },
                Mutation {
                    table_id: 1024,
                    pk_enc: vec![3],
                    value: None,
                },
            ],
        };
        let bytes = rec.encode();
        assert_eq!(LogRecord::decode(3, &bytes).unwrap(), rec);
        assert!(rec.has_ddl());
        assert!(LogRecord::decode(3, &bytes[..bytes.len() - 1]).is_err());
        let mut bad = bytes.clone();
        bad[0] = 2;
        assert!(LogRecord::decode(3, &bad)
            .unwrap_err()
            .to_string()
            .contains("version 2"));
    }
}
