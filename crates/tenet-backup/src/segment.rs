//! Log segments (`.tls`): a tenant's commit records `(start, end]`, as the archiver
//! and incremental backups store them (specified in `docs/format.md`).
//!
//! ```text
//! header  magic "TENETLS\0" · version u16 = 1 · 6 zero bytes
//! blocks  as in data files; a record is varint(len) · commit record (commit_log.rs)
//! footer  blocks u32 · 0 u32 · records u64 · start u64 · end u64 · first ts u64 ·
//!         last ts u64 · blake3 of header and blocks (32) · magic "TLSEND\0\0"
//! ```
//!
//! Records are in strictly increasing commit ts order, all with `start < ts ≤ end`.
//! A segment with no records is valid: it says nothing was committed in its range,
//! which is what makes the range restorable.

use tenet_store::{LogRecord, Ts};

use crate::error::{Error, Result};
use crate::format::{for_each_block, get_varint, put_block, put_varint, BLOCK_TARGET};

pub const TLS_MAGIC: &[u8; 8] = b"TENETLS\0";
pub const TLS_END_MAGIC: &[u8; 8] = b"TLSEND\0\0";
pub const TLS_VERSION: u16 = 1;
const HEADER_LEN: usize = 16;
const FOOTER_LEN: usize = 88;

/// What a segment's footer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub start: Ts,
    pub end: Ts,
    pub records: u64,
    /// Commit ts of the first and last record (zero when empty).
    pub first: Ts,
    pub last: Ts,
}

/// Builds a segment in memory.
#[derive(Debug)]
pub struct SegmentWriter {
    out: Vec<u8>,
    block: Vec<u8>,
    block_records: u32,
    blocks: u32,
    info: SegmentInfo,
}

impl SegmentWriter {
    /// A segment of the records after `start`.
    pub fn new(start: Ts) -> Self {
        let mut out = Vec::with_capacity(64 << 10);
        out.extend_from_slice(TLS_MAGIC);
        out.extend_from_slice(&TLS_VERSION.to_le_bytes());
        out.extend_from_slice(&[0u8; HEADER_LEN - 10]);
        SegmentWriter {
            out,
            block: Vec::new(),
            block_records: 0,
            blocks: 0,
            info: SegmentInfo {
                start,
                end: start,
                records: 0,
                first: Ts::ZERO,
                last: Ts::ZERO,
            },
        }
    }

    /// Adds the next record; commit ts must increase and be past `start`.
    pub fn add(&mut self, rec: &LogRecord) -> Result<()> {
        self.add_encoded(rec.commit_ts, &rec.encode())
    }

    /// Adds the next record given as its encoding (as the store keeps it).
    pub fn add_encoded(&mut self, ts: Ts, bytes: &[u8]) -> Result<()> {
        let floor = if self.info.records == 0 {
            self.info.start
        } else {
            self.info.last
        };
        if ts <= floor {
            return Err(Error::Internal(format!(
                "log record {ts} after {floor} is out of order"
            )));
        }
        put_varint(&mut self.block, bytes.len() as u64);
        self.block.extend_from_slice(bytes);
        self.block_records += 1;
        if self.info.records == 0 {
            self.info.first = ts;
        }
        self.info.last = ts;
        self.info.records += 1;
        if self.block.len() >= BLOCK_TARGET {
            self.flush()?;
        }
        Ok(())
    }

    /// Bytes of records added so far (before compression).
    pub fn raw_len(&self) -> usize {
        self.out.len() + self.block.len()
    }

    pub fn records(&self) -> u64 {
        self.info.records
    }

    fn flush(&mut self) -> Result<()> {
        if !self.block.is_empty() {
            put_block(&mut self.out, &self.block, self.block_records)?;
            self.blocks += 1;
            self.block.clear();
            self.block_records = 0;
        }
        Ok(())
    }

    /// Finishes the segment as covering `(start, end]`.
    pub fn finish(mut self, end: Ts) -> Result<(Vec<u8>, SegmentInfo)> {
        if end < self.info.last || end < self.info.start {
            return Err(Error::Internal(format!(
                "segment end {end} is before its last record {}",
                self.info.last
            )));
        }
        self.flush()?;
        self.info.end = end;
        let sum = blake3::hash(&self.out);
        let i = self.info;
        self.out.extend_from_slice(&self.blocks.to_le_bytes());
        self.out.extend_from_slice(&[0u8; 4]);
        for v in [i.records, i.start.0, i.end.0, i.first.0, i.last.0] {
            self.out.extend_from_slice(&v.to_le_bytes());
        }
        self.out.extend_from_slice(sum.as_bytes());
        self.out.extend_from_slice(TLS_END_MAGIC);
        Ok((self.out, i))
    }
}

/// Decodes and checks a whole segment of tenant `tenant_id`; `object` names it in
/// errors.
pub fn read_segment(
    object: &str,
    tenant_id: u64,
    bytes: &[u8],
) -> Result<(SegmentInfo, Vec<LogRecord>)> {
    let corrupt = |reason: String| Error::Corrupt {
        object: object.to_string(),
        reason,
    };
    if bytes.len() < HEADER_LEN + FOOTER_LEN || &bytes[..8] != TLS_MAGIC {
        return Err(corrupt(
            "not a Tenet log segment (bad magic or too short)".into(),
        ));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != TLS_VERSION {
        return Err(Error::UnsupportedVersion {
            object: object.to_string(),
            found: version.to_string(),
            supported: TLS_VERSION.to_string(),
        });
    }
    let (content, footer) = bytes.split_at(bytes.len() - FOOTER_LEN);
    if &footer[80..88] != TLS_END_MAGIC {
        return Err(corrupt("missing end marker (segment truncated?)".into()));
    }
    if blake3::hash(content).as_bytes() != &footer[48..80] {
        return Err(corrupt("checksum mismatch".into()));
    }
    let u = |at: usize| u64::from_le_bytes(footer[at..at + 8].try_into().expect("8 bytes"));
    let blocks = u32::from_le_bytes(footer[0..4].try_into().expect("4 bytes"));
    let info = SegmentInfo {
        records: u(8),
        start: Ts(u(16)),
        end: Ts(u(24)),
        first: Ts(u(32)),
        last: Ts(u(40)),
    };
    let mut records = Vec::new();
    let (count, _) = for_each_block(object, &content[HEADER_LEN..], blocks, |b, raw, n| {
        let mut p = 0;
        for r in 0..n {
            let rec = get_varint(raw, &mut p)
                .map(|len| len as usize)
                .and_then(|len| raw.get(p..p.checked_add(len)?).map(|s| (len, s)))
                .ok_or_else(|| corrupt(format!("record {r} of block {b} is malformed")))?;
            p += rec.0;
            let rec = LogRecord::decode(tenant_id, rec.1)
                .map_err(|e| corrupt(format!("record {r} of block {b}: {e}")))?;
            records.push(rec);
        }
        if p != raw.len() {
            return Err(corrupt(format!("block {b} has trailing bytes")));
        }
        Ok(())
    })?;
    let mut prev = info.start;
    for r in &records {
        if r.commit_ts <= prev || r.commit_ts > info.end {
            return Err(corrupt(format!(
                "record at {} is out of order or outside ({}, {}]",
                r.commit_ts, info.start, info.end
            )));
        }
        prev = r.commit_ts;
    }
    let (first, last) = (
        records.first().map_or(Ts::ZERO, |r| r.commit_ts),
        records.last().map_or(Ts::ZERO, |r| r.commit_ts),
    );
    if count != info.records || first != info.first || last != info.last || info.end < info.start {
        return Err(corrupt(format!(
            "footer says {} records {}..{}, the blocks hold {count} records {first}..{last}",
            info.records, info.first, info.last
        )));
    }
    Ok((info, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenet_store::Mutation;

    fn rec(ts: u64, n: usize) -> LogRecord {
        LogRecord {
            tenant_id: 7,
            commit_ts: Ts(ts),
            mutations: (0..n)
                .map(|i| Mutation {
                    table_id: 1024 + i as u64 % 3,
                    pk_enc: vec![2, i as u8],
                    value: (i % 4 != 0).then(|| vec![b'x'; 300 + i]),
                })
                .collect(),
        }
    }

    #[test]
    fn round_trip_empty_and_damage() {
        let mut w = SegmentWriter::new(Ts(100));
        let recs: Vec<LogRecord> = (0..3000)
            .map(|i| rec(101 + i * 3, (i % 7) as usize))
            .collect();
        for r in &recs {
            w.add(r).unwrap();
        }
        assert!(w.add(&rec(50, 1)).is_err(), "out of order");
        let (bytes, info) = w.finish(Ts(20_000)).unwrap();
        let (got_info, got) = read_segment("seg", 7, &bytes).unwrap();
        assert_eq!((got_info, got), (info, recs.clone()));
        assert_eq!(
            (info.first, info.last, info.records),
            (Ts(101), Ts(101 + 2999 * 3), 3000)
        );

        // Empty: covers a range with no commits.
        let (empty, info) = SegmentWriter::new(Ts(5)).finish(Ts(9)).unwrap();
        let (i2, r2) = read_segment("e", 7, &empty).unwrap();
        assert_eq!((i2, r2.len(), info.records), (info, 0, 0));

        // Any flipped byte is caught, naming the object.
        for at in [0, 9, 20, bytes.len() / 2, bytes.len() - 50, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            let e = read_segment("repo/log/x.tls", 7, &bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("repo/log/x.tls"), "{e}");
        }
        let mut v2 = bytes.clone();
        v2[8] = 2;
        let e = read_segment("s", 7, &v2).unwrap_err().to_string();
        assert!(e.contains("version 2"), "{e}");
    }
}
