//! Compact binary encoding of rows.
//!
//! ```text
//! row      = version:u8 (=1) | ncols:varint | null_bitmap:ceil(ncols/8) bytes | value*
//! value    = int: zigzag varint | float: 8 bytes LE (IEEE 754 bits) | bool: u8 (0/1)
//!          | string, bytes: varint length + bytes | json: varint length + JSON text
//! ```
//! Values appear in column order, only for columns whose bitmap bit is 0 (not null).
//! Columns are only ever appended to a table (ALTER … ADD COLUMN), so a row written under
//! an older schema version decodes under a newer one with the new columns null. A row
//! with more columns than the schema is corrupt.

use serde_json::Value;

use crate::codec::{put_bytes, put_varint, unzigzag, zigzag, Reader};
use crate::error::{Error, Result};
use crate::schema::{decode_b64, key_value_json, ColumnType, TableDef};

const ROW_FORMAT_V1: u8 = 1;

/// Encodes checked column values (see [`TableDef::check_row`]).
pub fn encode_row(def: &TableDef, values: &[Value]) -> Vec<u8> {
    let n = values.len();
    let mut out = Vec::with_capacity(16 + n * 8);
    out.push(ROW_FORMAT_V1);
    put_varint(&mut out, n as u64);
    let bitmap_at = out.len();
    out.resize(bitmap_at + n.div_ceil(8), 0);
    for (i, (col, v)) in def.columns.iter().zip(values).enumerate() {
        if v.is_null() {
            out[bitmap_at + i / 8] |= 1 << (i % 8);
            continue;
        }
        match col.ty {
            ColumnType::Int => put_varint(&mut out, zigzag(v.as_i64().unwrap_or_default())),
            ColumnType::Float => {
                out.extend_from_slice(&v.as_f64().unwrap_or_default().to_bits().to_le_bytes())
            }
            ColumnType::Bool => out.push(u8::from(v.as_bool().unwrap_or_default())),
            ColumnType::String => put_bytes(&mut out, v.as_str().unwrap_or_default().as_bytes()),
            ColumnType::Bytes => {
                let raw = decode_b64(v.as_str().unwrap_or_default()).unwrap_or_default();
                put_bytes(&mut out, &raw)
            }
            ColumnType::Json => put_bytes(&mut out, v.to_string().as_bytes()),
        }
    }
    out
}

/// Decodes a row into column values in schema order (new columns null).
pub fn decode_row(def: &TableDef, bytes: &[u8]) -> Result<Vec<Value>> {
    let corrupt = |what: String| Error::Corrupt(format!("row of table `{}`: {what}", def.name));
    let mut r = Reader::new(bytes, "row");
    let version = r.u8()?;
    if version != ROW_FORMAT_V1 {
        return Err(corrupt(format!("unknown row format version {version}")));
    }
    let n = r.varint()? as usize;
    if n > def.columns.len() {
        return Err(corrupt(format!(
            "{n} columns but the schema has {}",
            def.columns.len()
        )));
    }
    let bitmap = r.take(n.div_ceil(8))?;
    let mut values = Vec::with_capacity(def.columns.len());
    for (i, col) in def.columns.iter().enumerate() {
        if i >= n || bitmap[i / 8] & (1 << (i % 8)) != 0 {
            values.push(Value::Null);
            continue;
        }
        let v = match col.ty {
            ColumnType::Int => Value::from(unzigzag(r.varint()?)),
            ColumnType::Float => {
                let f = f64::from_bits(u64::from_le_bytes(r.take(8)?.try_into().expect("8")));
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| corrupt(format!("non-finite float in `{}`", col.name)))?
            }
            ColumnType::Bool => match r.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(corrupt(format!("bool byte {b} in `{}`", col.name))),
            },
            ColumnType::String => Value::String(
                String::from_utf8(r.len_prefixed()?.to_vec())
                    .map_err(|_| corrupt(format!("invalid UTF-8 in `{}`", col.name)))?,
            ),
            ColumnType::Bytes => {
                key_value_json(&crate::keys::KeyValue::Bytes(r.len_prefixed()?.to_vec()))
            }
            ColumnType::Json => serde_json::from_slice(r.len_prefixed()?)
                .map_err(|e| corrupt(format!("bad JSON in `{}`: {e}", col.name)))?,
        };
        values.push(v);
    }
    r.finish()?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{row_json, Column, TableSpec};
    use serde_json::json;

    fn all_types() -> TableDef {
        let columns: Vec<Column> = [
            "k:int", "f:float", "s:string", "b:bool", "y:bytes", "j:json",
        ]
        .iter()
        .map(|c| c.parse().unwrap())
        .collect();
        let spec = TableSpec {
            name: "t".into(),
            columns,
            primary_key: vec!["k".into()],
        };
        let primary_key = spec.validate().unwrap();
        TableDef {
            id: 9,
            name: "t".into(),
            columns: spec.columns,
            primary_key,
            schema_version: 1,
        }
    }

    #[test]
    fn round_trip_all_types_and_nulls() {
        let def = all_types();
        for row in [
            json!({"k": -5, "f": 1.5, "s": "hé\u{0}", "b": true, "y": "AAEC", "j": {"a": [1, null]}}),
            json!({"k": i64::MAX, "f": null, "s": null, "b": false, "y": null, "j": null}),
        ] {
            let values = def.check_row(&row).unwrap();
            let bytes = encode_row(&def, &values);
            let back = decode_row(&def, &bytes).unwrap();
            assert_eq!(row_json(&def, back), row);
        }
    }

    #[test]
    fn old_rows_decode_under_new_schema_and_corruption_is_refused() {
        let mut def = all_types();
        let values = def.check_row(&json!({"k": 1, "s": "x"})).unwrap();
        let bytes = encode_row(&def, &values);
        def.columns.push("extra:int".parse().unwrap());
        let back = decode_row(&def, &bytes).unwrap();
        assert_eq!(back.last(), Some(&Value::Null));
        assert!(decode_row(&def, &bytes[..bytes.len() - 1]).is_err());
        let mut bad = bytes.clone();
        bad[0] = 7;
        assert!(decode_row(&def, &bad)
            .unwrap_err()
            .to_string()
            .contains("version 7"));
        let mut longer = bytes;
        longer.push(0);
        assert!(decode_row(&def, &longer).is_err());
    }
}
