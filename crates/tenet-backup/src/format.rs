//! Repository file formats (specified in `docs/format.md`): data files (`.tdf`), the
//! backup manifest, the repository marker, and the logical digest.
//!
//! Every reader checks magic and version first and refuses what it does not know; every
//! decode error names the object it came from.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use tenet_store::{TableDef, Ts};

use crate::error::{Error, Result};

/// Magic at the start of a data file.
pub const TDF_MAGIC: &[u8; 8] = b"TENETDF\0";
/// Magic at the end of a data file.
pub const TDF_END_MAGIC: &[u8; 8] = b"TDFEND\0\0";
/// The data file version this build writes and reads.
pub const TDF_VERSION: u16 = 1;
const TDF_HEADER_LEN: usize = 16;
const TDF_FOOTER_LEN: usize = 32;
const BLOCK_HEADER_LEN: usize = 12;
/// Raw bytes per block before compression.
pub const BLOCK_TARGET: usize = 1 << 20;
/// zstd level of data blocks.
pub const ZSTD_LEVEL: i32 = 1;
/// Largest raw block a reader accepts (guards allocations against corrupt lengths).
const MAX_BLOCK: usize = 64 << 20;

pub const MANIFEST_FORMAT: &str = "tenet-backup-manifest";
/// The newest manifest version, the one new backups write (see [`DigestKind`]).
pub const MANIFEST_VERSION: u32 = 2;
pub const REPO_FORMAT: &str = "tenet-repo";
pub const REPO_VERSION: u32 = 1;

/// The logical digest of a set of rows: four 64-bit lanes, each the wrapping sum of the
/// matching lane of a per-row hash over the rows. Each row is hashed as the framed
/// bytes `len(table) | table | len(pk) | pk | len(row) | row` (lengths as u64 little
/// endian), by the manifest's [`DigestKind`]. The sum does not depend on ids, on how
/// rows are split into files or ranges, or on the order parts are combined in, so a
/// restored tenant is checked by scanning it. Printed as 64 hex digits.
///
/// A sum of per-row hashes guards against loss, duplication and corruption by accident
/// (a bug, a bad disk), not against someone who forges rows: the files' blake3 in the
/// manifest, and the AEAD of an encrypted repository, do that.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digest([u64; 4]);

/// How a [`Digest`] hashes one row; a manifest's version says which (`docs/format.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DigestKind {
    /// Manifest version 1: the four lanes of blake3 of the framed row.
    #[serde(rename = "blake3-sum")]
    Blake3,
    /// Manifest version 2: the two lanes of xxh3-128 of the framed row, then the row
    /// count and the framed bytes. About a tenth of blake3's CPU on rows of 1 KiB, which
    /// a backup, a restore's verify and a verify job each spend once per row.
    #[serde(rename = "xxh3-sum")]
    Xxh3,
}

impl DigestKind {
    /// What new backups use.
    pub const CURRENT: DigestKind = DigestKind::Xxh3;

    /// What plans and manifests written before the kind was recorded used.
    pub fn legacy() -> DigestKind {
        DigestKind::Blake3
    }

    /// The kind's name in a manifest's body (its serde spelling, for messages).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .expect("a digest kind serializes as a string")
    }

    /// The manifest version that records this kind.
    pub fn manifest_version(self) -> u32 {
        match self {
            DigestKind::Blake3 => 1,
            DigestKind::Xxh3 => 2,
        }
    }
}

impl Digest {
    pub fn add_row(&mut self, kind: DigestKind, table: &str, pk: &[u8], row: &[u8]) {
        let parts = [table.as_bytes(), pk, row];
        let lanes = match kind {
            DigestKind::Blake3 => {
                let mut h = blake3::Hasher::new();
                for part in parts {
                    h.update(&(part.len() as u64).to_le_bytes());
                    h.update(part);
                }
                let out = h.finalize();
                let b = out.as_bytes();
                std::array::from_fn(|i| {
                    u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
                })
            }
            DigestKind::Xxh3 => {
                let mut h = xxhash_rust::xxh3::Xxh3Default::new();
                for part in parts {
                    h.update(&(part.len() as u64).to_le_bytes());
                    h.update(part);
                }
                let v = h.digest128();
                let framed = parts.iter().map(|p| 8 + p.len() as u64).sum();
                [v as u64, (v >> 64) as u64, 1, framed]
            }
        };
        for (lane, v) in self.0.iter_mut().zip(lanes) {
            *lane = lane.wrapping_add(v);
        }
    }

    pub fn combine(&mut self, other: &Digest) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.wrapping_add(b);
        }
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|l| format!("{l:016x}")).collect()
    }

    pub fn from_hex(s: &str) -> Option<Digest> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut d = Digest::default();
        for (i, lane) in d.0.iter_mut().enumerate() {
            *lane = u64::from_str_radix(&s[i * 16..i * 16 + 16], 16).ok()?;
        }
        Some(d)
    }
}

/// Checks that task outputs `{"rows", "digest"}` (files of a table, or ranges of a
/// restored one) add up to a table of the manifest; `what` says what the rows are
/// ("files hold", "restored") in the error.
pub fn check_table_sums<'a>(
    t: &TableEntry,
    outs: impl IntoIterator<Item = &'a serde_json::Value>,
    what: &str,
) -> Result<()> {
    let (mut rows, mut d, mut complete) = (0u64, Digest::default(), true);
    for out in outs {
        rows += out["rows"].as_u64().unwrap_or(0);
        match out["digest"].as_str().and_then(Digest::from_hex) {
            Some(part) => d.combine(&part),
            None => complete = false,
        }
    }
    if rows != t.rows || !complete || d.to_hex() != t.digest {
        return Err(Error::VerifyFailed(format!(
            "table `{}`: {what} {rows} rows with digest {}, the manifest says {} rows with \
             digest {}",
            t.def.name,
            if complete {
                d.to_hex()
            } else {
                "(missing)".into()
            },
            t.rows,
            t.digest
        )));
    }
    Ok(())
}

/// Writes a data file: header, zstd blocks of records, footer.
///
/// A record is `varint(len pk) | pk_enc | commit_ts (u64 LE) | varint(len row) | row`.
#[derive(Debug)]
pub struct DataFileWriter {
    out: Vec<u8>,
    block: Vec<u8>,
    block_records: u32,
    blocks: u32,
    records: u64,
    raw_bytes: u64,
}

impl Default for DataFileWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl DataFileWriter {
    pub fn new() -> Self {
        let mut out = Vec::with_capacity(BLOCK_TARGET);
        out.extend_from_slice(TDF_MAGIC);
        out.extend_from_slice(&TDF_VERSION.to_le_bytes());
        out.extend_from_slice(&[0u8; TDF_HEADER_LEN - 10]);
        DataFileWriter {
            out,
            block: Vec::with_capacity(BLOCK_TARGET + 4096),
            block_records: 0,
            blocks: 0,
            records: 0,
            raw_bytes: 0,
        }
    }

    pub fn add(&mut self, pk: &[u8], ts: Ts, row: &[u8]) -> Result<()> {
        if pk.len() + row.len() + 32 > MAX_BLOCK - BLOCK_TARGET {
            return Err(Error::InvalidArgument(format!(
                "a row of {} bytes is larger than backups support ({} bytes)",
                pk.len() + row.len(),
                MAX_BLOCK - BLOCK_TARGET - 32
            )));
        }
        put_varint(&mut self.block, pk.len() as u64);
        self.block.extend_from_slice(pk);
        self.block.extend_from_slice(&ts.0.to_le_bytes());
        put_varint(&mut self.block, row.len() as u64);
        self.block.extend_from_slice(row);
        self.block_records += 1;
        self.records += 1;
        if self.block.len() >= BLOCK_TARGET {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        put_block(&mut self.out, &self.block, self.block_records)?;
        self.raw_bytes += self.block.len() as u64;
        self.blocks += 1;
        self.block.clear();
        self.block_records = 0;
        Ok(())
    }

    /// Bytes of the file encoded so far (whole blocks; the open block is not counted).
    pub fn encoded_len(&self) -> usize {
        self.out.len()
    }

    /// Records added so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Finishes the file; returns its bytes.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        self.flush_block()?;
        self.out.extend_from_slice(&self.blocks.to_le_bytes());
        self.out.extend_from_slice(&[0u8; 4]);
        self.out.extend_from_slice(&self.records.to_le_bytes());
        self.out.extend_from_slice(&self.raw_bytes.to_le_bytes());
        self.out.extend_from_slice(TDF_END_MAGIC);
        Ok(self.out)
    }
}

/// Decodes a whole data file, calling `f(pk_enc, commit_ts, row)` per record in order.
/// `object` names the file in errors. Checks structure, lengths and counts; the caller
/// checks the file checksum against the manifest first.
pub fn read_data_file(
    object: &str,
    bytes: &[u8],
    mut f: impl FnMut(&[u8], Ts, &[u8]) -> Result<()>,
) -> Result<u64> {
    let corrupt = |what: String| Error::Corrupt {
        object: object.to_string(),
        reason: what,
    };
    if bytes.len() < TDF_HEADER_LEN + TDF_FOOTER_LEN || &bytes[..8] != TDF_MAGIC {
        return Err(corrupt(
            "not a Tenet data file (bad magic or too short)".into(),
        ));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != TDF_VERSION {
        return Err(Error::UnsupportedVersion {
            object: object.to_string(),
            found: version.to_string(),
            supported: TDF_VERSION.to_string(),
        });
    }
    let footer = &bytes[bytes.len() - TDF_FOOTER_LEN..];
    if &footer[24..32] != TDF_END_MAGIC {
        return Err(corrupt("missing end marker (file truncated?)".into()));
    }
    let blocks = u32::from_le_bytes(footer[0..4].try_into().expect("4"));
    let records = u64::from_le_bytes(footer[8..16].try_into().expect("8"));
    let raw_total = u64::from_le_bytes(footer[16..24].try_into().expect("8"));
    let body = &bytes[TDF_HEADER_LEN..bytes.len() - TDF_FOOTER_LEN];
    let (seen_records, seen_raw) = for_each_block(object, body, blocks, |b, raw, n| {
        let mut p = 0;
        for r in 0..n {
            let rec = parse_record(raw, &mut p)
                .ok_or_else(|| corrupt(format!("record {r} of block {b} is malformed")))?;
            f(rec.0, rec.1, rec.2)?;
        }
        if p != raw.len() {
            return Err(corrupt(format!("block {b} has trailing bytes")));
        }
        Ok(())
    })?;
    if seen_records != records || seen_raw != raw_total {
        return Err(corrupt(format!(
            "footer counts {records} records / {raw_total} bytes, blocks hold {seen_records} / {seen_raw}"
        )));
    }
    Ok(records)
}

/// Appends one block: `raw_len u32 · compressed_len u32 · records u32 · zstd frame`.
pub(crate) fn put_block(out: &mut Vec<u8>, raw: &[u8], records: u32) -> Result<()> {
    let compressed = zstd::bulk::compress(raw, ZSTD_LEVEL)
        .map_err(|e| Error::Internal(format!("zstd compression failed: {e}")))?;
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
    out.extend_from_slice(&records.to_le_bytes());
    out.extend_from_slice(&compressed);
    Ok(())
}

/// Decompresses the `blocks` blocks that make up `body` exactly, calling
/// `f(block index, raw bytes, records)` for each; returns (records, raw bytes) seen.
pub(crate) fn for_each_block(
    object: &str,
    body: &[u8],
    blocks: u32,
    mut f: impl FnMut(u32, &[u8], u32) -> Result<()>,
) -> Result<(u64, u64)> {
    let corrupt = |what: String| Error::Corrupt {
        object: object.to_string(),
        reason: what,
    };
    let (mut pos, mut records, mut raw_total) = (0usize, 0u64, 0u64);
    for b in 0..blocks {
        let hdr = body
            .get(pos..pos + BLOCK_HEADER_LEN)
            .ok_or_else(|| corrupt(format!("block {b} header past the end")))?;
        let raw_len = u32::from_le_bytes(hdr[0..4].try_into().expect("4")) as usize;
        let comp_len = u32::from_le_bytes(hdr[4..8].try_into().expect("4")) as usize;
        let n = u32::from_le_bytes(hdr[8..12].try_into().expect("4"));
        pos += BLOCK_HEADER_LEN;
        if raw_len > MAX_BLOCK {
            return Err(corrupt(format!("block {b} claims {raw_len} bytes")));
        }
        let comp = body
            .get(pos..pos + comp_len)
            .ok_or_else(|| corrupt(format!("block {b} runs past the end")))?;
        pos += comp_len;
        let raw = zstd::bulk::decompress(comp, raw_len)
            .map_err(|e| corrupt(format!("block {b} does not decompress: {e}")))?;
        if raw.len() != raw_len {
            return Err(corrupt(format!(
                "block {b} decompressed to {} bytes, header says {raw_len}",
                raw.len()
            )));
        }
        f(b, &raw, n)?;
        records += u64::from(n);
        raw_total += raw_len as u64;
    }
    if pos != body.len() {
        return Err(corrupt(
            "bytes between the last block and the footer".into(),
        ));
    }
    Ok((records, raw_total))
}

fn parse_record<'a>(raw: &'a [u8], p: &mut usize) -> Option<(&'a [u8], Ts, &'a [u8])> {
    let pk_len = get_varint(raw, p)? as usize;
    let pk = raw.get(*p..p.checked_add(pk_len)?)?;
    *p += pk_len;
    let ts = u64::from_le_bytes(raw.get(*p..*p + 8)?.try_into().ok()?);
    *p += 8;
    let row_len = get_varint(raw, p)? as usize;
    let row = raw.get(*p..p.checked_add(row_len)?)?;
    *p += row_len;
    Some((pk, Ts(ts), row))
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_varint(input: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *input.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// One data file of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the backup's directory, e.g. `data/1024-0003.tdf`.
    pub path: String,
    /// Size in bytes as stored.
    pub size: u64,
    /// blake3 of the stored bytes, hex.
    pub blake3: String,
    pub rows: u64,
    /// Bytes of keys and rows before encoding and compression.
    pub logical_bytes: u64,
    /// Logical digest of the rows in the file.
    pub digest: String,
    /// The data key it is sealed with (`crate::keys`); absent: stored plain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// One table at F.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    /// The table's definition at F (its `id` is the source's).
    pub def: TableDef,
    /// Commit ts of the catalog version that defines it.
    pub catalog_ts: Ts,
    pub rows: u64,
    pub logical_bytes: u64,
    pub digest: String,
    pub files: Vec<FileEntry>,
}

/// What a full backup holds; the commit point of the backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub backup_id: String,
    /// `full` or `incr`.
    pub kind: String,
    pub tenant_id: u64,
    pub tenant_name: String,
    /// When the tenant was created (its registry commit ts). Tenant ids are per store:
    /// (id, created ts) tells one tenant from another that got the same id in another
    /// store writing to the same repository. Absent in manifests written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_created_ts: Option<Ts>,
    /// The tenant's history retention, carried to restored tenants.
    pub history_retention_secs: u64,
    /// F: the backup holds every commit ≤ this ts.
    pub backup_ts: Ts,
    pub backup_time: String,
    pub started_at: String,
    pub finished_at: String,
    pub parent: Option<String>,
    pub tool_version: String,
    /// Named snapshots at F (informational; a restore cannot bring back their state).
    pub snapshots: Vec<Value>,
    pub tables: Vec<TableEntry>,
    pub rows: u64,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    /// Incremental backups: the log range `(start_ts, backup_ts]` they hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ts: Option<Ts>,
    /// Incremental backups: their log segments, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentEntry>,
    /// Every table id the tenant has ever used (dropped tables included) is below
    /// this (a full backup's; absent in older manifests): a standby, which keeps its
    /// source's ids, never hands one of them out again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_ids_below: Option<u64>,
    /// How the digests of `tables` hash rows: always the kind of the manifest's version
    /// (absent in version 1, which is blake3).
    #[serde(default = "DigestKind::legacy", skip_serializing_if = "is_legacy")]
    pub row_digest: DigestKind,
}

#[cfg(test)]
impl Manifest {
    /// A full backup of nothing (tests fill in what they need).
    pub(crate) fn empty() -> Manifest {
        Manifest {
            backup_id: "b".into(),
            kind: "full".into(),
            tenant_id: 1,
            tenant_name: "t".into(),
            tenant_created_ts: None,
            history_retention_secs: 0,
            backup_ts: Ts(1),
            backup_time: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            parent: None,
            tool_version: String::new(),
            snapshots: Vec::new(),
            tables: Vec::new(),
            rows: 0,
            logical_bytes: 0,
            stored_bytes: 0,
            start_ts: None,
            segments: Vec::new(),
            table_ids_below: None,
            row_digest: DigestKind::CURRENT,
        }
    }
}

fn is_legacy(kind: &DigestKind) -> bool {
    *kind == DigestKind::legacy()
}

/// One log segment of an incremental backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// Path relative to the backup's directory, e.g. `log/<start>-<end>.tls`.
    pub path: String,
    pub size: u64,
    pub blake3: String,
    pub start: Ts,
    pub end: Ts,
    pub records: u64,
    /// The data key it is sealed with (`crate::keys`); absent: stored plain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// Encodes a manifest: `{format, version, blake3, body}`, where `blake3` is the hash of
/// the compact JSON of `body` exactly as written, and `version` is the one of its digest
/// kind (a backup begun by a version-1 build and finished by this one stays version 1).
pub fn encode_manifest(m: &Manifest) -> Vec<u8> {
    let body = serde_json::to_vec(m).expect("manifests serialize");
    let version = m.row_digest.manifest_version();
    let sum = blake3::hash(&body).to_hex().to_string();
    let mut out = Vec::with_capacity(body.len() + 128);
    out.extend_from_slice(
        format!(
            "{{\"format\":\"{MANIFEST_FORMAT}\",\"version\":{version},\"blake3\":\"{sum}\",\"body\":"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    out.extend_from_slice(b"}\n");
    out
}

/// Decodes and checks a manifest; `object` names it in errors.
pub fn decode_manifest(object: &str, bytes: &[u8]) -> Result<Manifest> {
    let corrupt = |reason: String| Error::Corrupt {
        object: object.to_string(),
        reason,
    };
    #[derive(Deserialize)]
    struct Head {
        format: String,
        version: Value,
    }
    let head: Head = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(format!("not a manifest (invalid JSON: {e})")))?;
    if head.format != MANIFEST_FORMAT {
        return Err(corrupt(format!(
            "format is `{}`, expected `{MANIFEST_FORMAT}`",
            head.format
        )));
    }
    let version = head
        .version
        .as_u64()
        .filter(|v| (1..=u64::from(MANIFEST_VERSION)).contains(v))
        .ok_or_else(|| Error::UnsupportedVersion {
            object: object.to_string(),
            found: head.version.to_string(),
            supported: format!("1 to {MANIFEST_VERSION}"),
        })?;
    // The body's exact bytes: between `"body":` and the closing brace.
    let marker = b"\"body\":";
    let start = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .map(|p| p + marker.len())
        .ok_or_else(|| corrupt("no body".into()))?;
    let end = bytes
        .iter()
        .rposition(|&b| b == b'}')
        .filter(|&e| e > start)
        .ok_or_else(|| corrupt("no closing brace".into()))?;
    let body = &bytes[start..end];
    #[derive(Deserialize)]
    struct Sum {
        blake3: String,
    }
    let sum: Sum = serde_json::from_slice(bytes).map_err(|e| corrupt(format!("{e}")))?;
    let actual = blake3::hash(body).to_hex().to_string();
    if actual != sum.blake3 {
        return Err(corrupt(format!(
            "checksum mismatch: recorded {}, computed {actual}",
            sum.blake3
        )));
    }
    let m: Manifest =
        serde_json::from_slice(body).map_err(|e| corrupt(format!("body does not decode: {e}")))?;
    if u64::from(m.row_digest.manifest_version()) != version {
        return Err(corrupt(format!(
            "version {version} with row digest `{}`, which version {} records",
            m.row_digest.name(),
            m.row_digest.manifest_version()
        )));
    }
    for t in &m.tables {
        let digests = std::iter::once(&t.digest).chain(t.files.iter().map(|f| &f.digest));
        if let Some(bad) = digests.into_iter().find(|d| Digest::from_hex(d).is_none()) {
            return Err(corrupt(format!(
                "table `{}` has a malformed digest `{bad}`",
                t.def.name
            )));
        }
        if let Some(f) = t
            .files
            .iter()
            .find(|f| f.blake3.len() != 64 || f.path.contains("..") || f.path.starts_with('/'))
        {
            return Err(corrupt(format!("file entry `{}` is malformed", f.path)));
        }
    }
    Ok(m)
}

/// `tenet-repo.json`: marks a directory or bucket prefix as a Tenet repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoMarker {
    pub format: String,
    pub version: u32,
    pub repo_id: String,
    pub created_at: String,
}

pub fn decode_repo_marker(object: &str, bytes: &[u8]) -> Result<RepoMarker> {
    let m: RepoMarker = serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        object: object.to_string(),
        reason: format!("not a repository marker: {e}"),
    })?;
    if m.format != REPO_FORMAT {
        return Err(Error::Corrupt {
            object: object.to_string(),
            reason: format!("format is `{}`, expected `{REPO_FORMAT}`", m.format),
        });
    }
    if m.version != REPO_VERSION {
        return Err(Error::UnsupportedVersion {
            object: object.to_string(),
            found: m.version.to_string(),
            supported: REPO_VERSION.to_string(),
        });
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_round_trip_and_damage() {
        let mut w = DataFileWriter::new();
        let rows: Vec<(Vec<u8>, u64, Vec<u8>)> = (0..5000u64)
            .map(|i| {
                (
                    i.to_be_bytes().to_vec(),
                    i * 7,
                    vec![i as u8; (i % 300) as usize],
                )
            })
            .collect();
        for (pk, ts, row) in &rows {
            w.add(pk, Ts(*ts), row).unwrap();
        }
        let bytes = w.finish().unwrap();
        let mut got = Vec::new();
        let n = read_data_file("f", &bytes, |pk, ts, row| {
            got.push((pk.to_vec(), ts.0, row.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 5000);
        assert_eq!(got, rows);

        // Flips in the magic, version, a block header, the footer counts and the end
        // marker are caught by the structure checks, naming the object. A flip inside
        // compressed data may decode (zstd frames carry no checksum here): the file's
        // blake3 in the manifest is what catches it, checked before decoding.
        let block_len = 16;
        let footer_records = bytes.len() - 24;
        for i in [0, 8, block_len, footer_records, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 0x5A;
            let e = read_data_file("obj/x.tdf", &bad, |_, _, _| Ok(())).unwrap_err();
            assert!(e.to_string().contains("obj/x.tdf"), "flip at {i}: {e}");
        }
        let mut v2 = bytes.clone();
        v2[8] = 2;
        let e = read_data_file("x", &v2, |_, _, _| Ok(())).unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
    }

    /// A manifest's version follows its row digest, both ways: version 1 (blake3) is
    /// still written for a backup planned by a version-1 build, and read; a version
    /// that does not match the body's digest kind, or one this build does not know, is
    /// refused.
    #[test]
    fn manifest_version_follows_the_row_digest() {
        let manifest = |kind| Manifest {
            row_digest: kind,
            ..Manifest::empty()
        };
        for (kind, version) in [(DigestKind::Blake3, 1), (DigestKind::Xxh3, 2)] {
            let bytes = encode_manifest(&manifest(kind));
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(text.contains(&format!("\"version\":{version},")), "{text}");
            // Version 1 bodies do not name their kind (as version-1 builds wrote them).
            assert_eq!(text.contains("row_digest"), version > 1, "{text}");
            if version > 1 {
                let named = format!("\"row_digest\":\"{}\"", kind.name());
                assert!(text.contains(&named), "{text}");
            }
            assert_eq!(decode_manifest("m", &bytes).unwrap().row_digest, kind);
        }
        let v2 = String::from_utf8(encode_manifest(&manifest(DigestKind::Xxh3))).unwrap();
        let e = decode_manifest("m", v2.replace("\"version\":2", "\"version\":1").as_bytes())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("version 1 with row digest `xxh3-sum`"),
            "{e}"
        );
        let e = decode_manifest("m", v2.replace("\"version\":2", "\"version\":3").as_bytes())
            .unwrap_err();
        assert!(
            matches!(e, Error::UnsupportedVersion { .. }) && e.to_string().contains("1 to 2"),
            "{e}"
        );
    }

    #[test]
    fn digest_is_independent_of_order_and_split() {
        for kind in [DigestKind::Blake3, DigestKind::Xxh3] {
            let mut a = Digest::default();
            let mut b1 = Digest::default();
            let mut b2 = Digest::default();
            for i in 0..100u32 {
                a.add_row(kind, "t", &i.to_be_bytes(), b"row");
            }
            for i in (0..100u32).rev() {
                if i % 2 == 0 {
                    b1.add_row(kind, "t", &i.to_be_bytes(), b"row")
                } else {
                    b2.add_row(kind, "t", &i.to_be_bytes(), b"row")
                }
            }
            b1.combine(&b2);
            assert_eq!(a, b1);
            assert_eq!(Digest::from_hex(&a.to_hex()), Some(a));
            // Another table, key or row changes the digest; so does moving bytes from
            // the key to the row (the framing).
            let one = |table: &str, pk: &[u8], row: &[u8]| {
                let mut d = Digest::default();
                d.add_row(kind, table, pk, row);
                d
            };
            let base = one("t", b"k", b"row");
            for other in [
                one("u", b"k", b"row"),
                one("t", b"j", b"row"),
                one("t", b"k", b"rox"),
                one("t", b"kr", b"ow"),
            ] {
                assert_ne!(base, other, "{kind:?}");
            }
        }
        // The kinds differ, and each is pinned: a digest written by one build must be
        // computed the same by every later one.
        let pinned = |kind| {
            let mut d = Digest::default();
            d.add_row(kind, "t", &7u32.to_be_bytes(), b"row");
            d.to_hex()
        };
        assert_ne!(pinned(DigestKind::Blake3), pinned(DigestKind::Xxh3));
        // The reference xxh3-128 (Python `xxhash.xxh3_128_intdigest` of the framed row).
        assert_eq!(
            pinned(DigestKind::Xxh3),
            "c041732357184fdb1965aa09f34c3f8200000000000000010000000000000020"
        );
    }
}
