//! Order-preserving key encoding and the persisted key layouts.
//!
//! # Primary-key encoding (`pk_enc`)
//!
//! A primary key is a tuple of [`KeyValue`]s (one per primary-key column). Each element
//! is written as a one-byte type tag followed by its body; elements are concatenated.
//!
//! | type   | tag    | body                                                          |
//! |--------|--------|---------------------------------------------------------------|
//! | bool   | `0x01` | `0x00` (false) or `0x01` (true)                               |
//! | int    | `0x02` | 8 bytes big-endian of the value with the sign bit flipped     |
//! | string | `0x03` | UTF-8 bytes, each `0x00` escaped as `0x00 0xFF`, then `0x00 0x01` |
//! | bytes  | `0x04` | as string                                                     |
//!
//! Properties (property-tested below): decoding inverts encoding, the encoding is
//! prefix-free (no encoded tuple is a proper prefix of another of the same types), and
//! comparing encodings byte-wise gives the same order as comparing the tuples
//! element-wise. The terminator `0x00 0x01` sorts below the escape `0x00 0xFF` and
//! below every other byte that can follow, so a string sorts before its extensions.
//!
//! # Column family `data`
//!
//! `tenant_id (8B BE) | table_id (8B BE) | pk_enc | !commit_ts (8B BE)` → version value.
//! Inverting the ts makes the newest version of a key come first, so "the version
//! visible at ts" is a single seek to `…pk_enc | !ts`. The value is one tag byte,
//! [`VERSION_PUT`] followed by the encoded row, or [`VERSION_DELETE`] alone.
//!
//! # Column family `log`
//!
//! `tenant_id (8B BE) | commit_ts (8B BE)` → encoded commit record (see `commit_log.rs`).
//!
//! # Column family `meta`
//!
//! Plain string keys outside MVCC; see [`meta`].

use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::ts::Ts;

/// Tag of a data value holding a row.
pub const VERSION_PUT: u8 = 1;
/// Tag of a data value marking a deletion.
pub const VERSION_DELETE: u8 = 2;

const TAG_BOOL: u8 = 0x01;
const TAG_INT: u8 = 0x02;
const TAG_STRING: u8 = 0x03;
const TAG_BYTES: u8 = 0x04;

/// One element of a primary key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyValue {
    Bool(bool),
    Int(i64),
    Str(String),
    Bytes(Vec<u8>),
}

impl KeyValue {
    fn tag(&self) -> u8 {
        match self {
            KeyValue::Bool(_) => TAG_BOOL,
            KeyValue::Int(_) => TAG_INT,
            KeyValue::Str(_) => TAG_STRING,
            KeyValue::Bytes(_) => TAG_BYTES,
        }
    }
}

impl PartialOrd for KeyValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Values of the same type compare naturally; values of different types compare by tag.
impl Ord for KeyValue {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (KeyValue::Bool(a), KeyValue::Bool(b)) => a.cmp(b),
            (KeyValue::Int(a), KeyValue::Int(b)) => a.cmp(b),
            (KeyValue::Str(a), KeyValue::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
            (KeyValue::Bytes(a), KeyValue::Bytes(b)) => a.cmp(b),
            _ => self.tag().cmp(&other.tag()),
        }
    }
}

fn encode_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Appends the order-preserving encoding of `values` to `out`.
pub fn encode_pk(values: &[KeyValue], out: &mut Vec<u8>) {
    for v in values {
        out.push(v.tag());
        match v {
            KeyValue::Bool(b) => out.push(u8::from(*b)),
            KeyValue::Int(i) => out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes()),
            KeyValue::Str(s) => encode_escaped(s.as_bytes(), out),
            KeyValue::Bytes(b) => encode_escaped(b, out),
        }
    }
}

/// Encodes `values` into a new buffer.
pub fn pk_bytes(values: &[KeyValue]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode_pk(values, &mut out);
    out
}

fn decode_escaped(input: &[u8], pos: &mut usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let b = *input
            .get(*pos)
            .ok_or_else(|| Error::Corrupt("unterminated string in key".into()))?;
        *pos += 1;
        if b != 0 {
            out.push(b);
            continue;
        }
        let next = *input
            .get(*pos)
            .ok_or_else(|| Error::Corrupt("truncated escape in key".into()))?;
        *pos += 1;
        match next {
            0xFF => out.push(0),
            0x01 => return Ok(out),
            other => {
                return Err(Error::Corrupt(format!(
                    "bad escape byte {other:#04x} in key"
                )))
            }
        }
    }
}

/// Decodes a whole encoded primary key.
pub fn decode_pk(input: &[u8]) -> Result<Vec<KeyValue>> {
    let mut pos = 0;
    let mut values = Vec::new();
    while pos < input.len() {
        let tag = input[pos];
        pos += 1;
        let v = match tag {
            TAG_BOOL => {
                let b = *input
                    .get(pos)
                    .ok_or_else(|| Error::Corrupt("truncated bool in key".into()))?;
                pos += 1;
                match b {
                    0 => KeyValue::Bool(false),
                    1 => KeyValue::Bool(true),
                    _ => return Err(Error::Corrupt(format!("bad bool byte {b:#04x} in key"))),
                }
            }
            TAG_INT => {
                let raw: [u8; 8] = input
                    .get(pos..pos + 8)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| Error::Corrupt("truncated int in key".into()))?;
                pos += 8;
                KeyValue::Int((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
            }
            TAG_STRING => {
                let bytes = decode_escaped(input, &mut pos)?;
                KeyValue::Str(
                    String::from_utf8(bytes)
                        .map_err(|_| Error::Corrupt("invalid UTF-8 in key".into()))?,
                )
            }
            TAG_BYTES => KeyValue::Bytes(decode_escaped(input, &mut pos)?),
            other => return Err(Error::Corrupt(format!("unknown key tag {other:#04x}"))),
        };
        values.push(v);
    }
    Ok(values)
}

/// `tenant_id | table_id`: the prefix of every version of one table.
pub fn table_prefix(tenant: u64, table: u64) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..8].copy_from_slice(&tenant.to_be_bytes());
    p[8..].copy_from_slice(&table.to_be_bytes());
    p
}

/// `tenant_id`: the prefix of every data version and log record of one tenant.
pub fn tenant_prefix(tenant: u64) -> [u8; 8] {
    tenant.to_be_bytes()
}

/// The data key of the version of `pk_enc` committed at `ts`.
pub fn data_key(tenant: u64, table: u64, pk_enc: &[u8], ts: Ts) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + pk_enc.len() + 8);
    k.extend_from_slice(&table_prefix(tenant, table));
    k.extend_from_slice(pk_enc);
    k.extend_from_slice(&(!ts.0).to_be_bytes());
    k
}

/// A data key split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub struct DataKey<'a> {
    pub tenant: u64,
    pub table: u64,
    pub pk_enc: &'a [u8],
    pub ts: Ts,
}

/// Splits a data key; fails on keys too short to be one.
pub fn parse_data_key(key: &[u8]) -> Result<DataKey<'_>> {
    if key.len() < 24 {
        return Err(Error::Corrupt(format!(
            "data key of {} bytes is shorter than 24",
            key.len()
        )));
    }
    let n = key.len();
    Ok(DataKey {
        tenant: u64::from_be_bytes(key[..8].try_into().expect("8 bytes")),
        table: u64::from_be_bytes(key[8..16].try_into().expect("8 bytes")),
        pk_enc: &key[16..n - 8],
        ts: Ts(!u64::from_be_bytes(
            key[n - 8..].try_into().expect("8 bytes"),
        )),
    })
}

/// The log key of the commit record of `tenant` at `ts`.
pub fn log_key(tenant: u64, ts: Ts) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&tenant.to_be_bytes());
    k[8..].copy_from_slice(&ts.0.to_be_bytes());
    k
}

/// Splits a log key into tenant and commit ts.
pub fn parse_log_key(key: &[u8]) -> Result<(u64, Ts)> {
    if key.len() != 16 {
        return Err(Error::Corrupt(format!(
            "log key of {} bytes, expected 16",
            key.len()
        )));
    }
    Ok((
        u64::from_be_bytes(key[..8].try_into().expect("8 bytes")),
        Ts(u64::from_be_bytes(key[8..].try_into().expect("8 bytes"))),
    ))
}

/// The smallest key strictly greater than every key starting with `prefix`, or `None`
/// when the prefix is all `0xFF` (no such key).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Keys of the `meta` column family. All values are 8-byte big-endian `u64`s unless
/// noted.
pub mod meta {
    /// Millisecond bound that no issued commit ts reaches (see `clock.rs`).
    pub const CLOCK_LEASE: &[u8] = b"clock/lease";
    /// Next tenant id to hand out.
    pub const SEQ_TENANT: &[u8] = b"seq/tenant";
    /// Next table id to hand out (global across tenants).
    pub const SEQ_TABLE: &[u8] = b"seq/table";
    /// Next pin id to hand out.
    pub const SEQ_PIN: &[u8] = b"seq/pin";
    /// Next job id to hand out.
    pub const SEQ_JOB: &[u8] = b"seq/job";

    /// `gc/<tenant BE>`: the tenant's GC safe point (commit ts).
    pub fn gc_safe_point(tenant: u64) -> Vec<u8> {
        let mut k = b"gc/".to_vec();
        k.extend_from_slice(&tenant.to_be_bytes());
        k
    }

    /// `logcut/<tenant BE>`: GC has deleted the tenant's commit records through this
    /// ts, and none after it.
    pub fn log_cut(tenant: u64) -> Vec<u8> {
        let mut k = b"logcut/".to_vec();
        k.extend_from_slice(&tenant.to_be_bytes());
        k
    }

    /// `revert/<tenant BE>`: the commit ts of an in-place commit (revert) whose log
    /// record is written and whose data versions may not all be ingested yet; the
    /// store finishes it from the log record when it reopens (`revert.rs`).
    pub fn revert_marker(tenant: u64) -> Vec<u8> {
        let mut k = REVERT_MARKER_PREFIX.to_vec();
        k.extend_from_slice(&tenant.to_be_bytes());
        k
    }

    /// `inplace/<token>`: the commit ts of the in-place commit (an in-place restore)
    /// that recorded `token`, written in the commit's batch so a resumed job knows it
    /// is done.
    pub fn in_place(token: &str) -> Vec<u8> {
        let mut k = b"inplace/".to_vec();
        k.extend_from_slice(token.as_bytes());
        k
    }

    /// `standby/<tenant BE>`: a standby's applied ts, written in the batch that applies
    /// its source's log through it (`standby.rs`).
    pub fn standby_applied(tenant: u64) -> Vec<u8> {
        let mut k = b"standby/".to_vec();
        k.extend_from_slice(&tenant.to_be_bytes());
        k
    }

    /// `standby-ingest/<tenant BE>`: a standby's records up to this ts may have been
    /// ingested as SST files (written before the ingestion, `standby.rs`).
    pub fn standby_ingest(tenant: u64) -> Vec<u8> {
        let mut k = b"standby-ingest/".to_vec();
        k.extend_from_slice(&tenant.to_be_bytes());
        k
    }

    /// `store/id`: this store's id (16 hex digits, random at creation; 8 raw bytes).
    pub const STORE_ID: &[u8] = b"store/id";

    /// Prefix of every [`revert_marker`].
    pub const REVERT_MARKER_PREFIX: &[u8] = b"revert/";

    /// `pin/<tenant BE>/`: prefix of the tenant's pins.
    pub fn pin_prefix(tenant: u64) -> Vec<u8> {
        let mut k = b"pin/".to_vec();
        k.extend_from_slice(&tenant.to_be_bytes());
        k.push(b'/');
        k
    }

    /// `pin/<tenant BE>/<pin id BE>` → JSON `PinRecord`.
    pub fn pin(tenant: u64, id: u64) -> Vec<u8> {
        let mut k = pin_prefix(tenant);
        k.extend_from_slice(&id.to_be_bytes());
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kv() -> impl Strategy<Value = KeyValue> {
        prop_oneof![
            any::<bool>().prop_map(KeyValue::Bool),
            any::<i64>().prop_map(KeyValue::Int),
            ".{0,6}".prop_map(KeyValue::Str),
            "[\\x00\\x01\\xff]{0,4}".prop_map(KeyValue::Str),
            proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1u8), Just(255u8), any::<u8>()],
                0..6
            )
            .prop_map(KeyValue::Bytes),
        ]
    }

    /// Two tuples with the same element types, as a table's primary keys are.
    fn same_typed_pair() -> impl Strategy<Value = (Vec<KeyValue>, Vec<KeyValue>)> {
        proptest::collection::vec((kv(), kv()), 1..4).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(a, b)| {
                    let b = match (&a, b) {
                        (KeyValue::Bool(_), KeyValue::Int(i)) => KeyValue::Bool(i % 2 == 0),
                        (KeyValue::Int(_), KeyValue::Bool(x)) => KeyValue::Int(i64::from(x)),
                        (x, y) if x.tag() == y.tag() => y,
                        (KeyValue::Bool(_), _) => KeyValue::Bool(true),
                        (KeyValue::Int(_), _) => KeyValue::Int(0),
                        (KeyValue::Str(_), _) => KeyValue::Str("x\0".into()),
                        (KeyValue::Bytes(_), _) => KeyValue::Bytes(vec![0, 0xFF]),
                    };
                    (a, b)
                })
                .unzip()
        })
    }

    proptest! {
        #[test]
        fn round_trip(values in proptest::collection::vec(kv(), 0..5)) {
            let enc = pk_bytes(&values);
            prop_assert_eq!(decode_pk(&enc).unwrap(), values);
        }

        #[test]
        fn byte_order_is_value_order((a, b) in same_typed_pair()) {
            let (ea, eb) = (pk_bytes(&a), pk_bytes(&b));
            prop_assert_eq!(ea.cmp(&eb), a.cmp(&b));
            // Prefix-free: distinct keys of the same types never prefix each other, so
            // appending the commit ts cannot reorder them.
            if a != b {
                prop_assert!(!ea.starts_with(&eb) && !eb.starts_with(&ea));
            }
        }

        #[test]
        fn data_keys_order_by_pk_then_newest_first(
            (a, b) in same_typed_pair(), ta in 1u64.., tb in 1u64..
        ) {
            let ka = data_key(7, 9, &pk_bytes(&a), Ts(ta));
            let kb = data_key(7, 9, &pk_bytes(&b), Ts(tb));
            let expected = a.cmp(&b).then(tb.cmp(&ta));
            prop_assert_eq!(ka.cmp(&kb), expected);
            let parsed = parse_data_key(&ka).unwrap();
            prop_assert_eq!(parsed.ts, Ts(ta));
            prop_assert_eq!(decode_pk(parsed.pk_enc).unwrap(), a);
        }
    }

    #[test]
    fn corrupt_keys_are_refused() {
        assert!(decode_pk(&[0x09]).is_err());
        assert!(decode_pk(&[TAG_INT, 1, 2]).is_err());
        assert!(decode_pk(&[TAG_STRING, b'a']).is_err());
        assert!(decode_pk(&[TAG_STRING, 0, 7]).is_err());
        assert!(parse_data_key(&[0; 10]).is_err());
    }

    #[test]
    fn prefix_end_works() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
    }
}
