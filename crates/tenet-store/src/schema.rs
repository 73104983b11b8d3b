//! Table schemas, names, and the mapping between JSON rows/keys and their stored form.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::keys::KeyValue;

/// Longest tenant, table, column or snapshot name.
pub const MAX_NAME_LEN: usize = 63;

/// Checks a name: 1–63 characters from lowercase ASCII letters, digits, `_` and `-`.
pub fn validate_name(kind: &str, name: &str) -> Result<()> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !ok_chars {
        return Err(Error::invalid(format!(
            "invalid {kind} name `{name}`: use 1-{MAX_NAME_LEN} characters from \
             lowercase letters, digits, `_` and `-`"
        )));
    }
    Ok(())
}

/// Type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Int,
    Float,
    String,
    Bool,
    Bytes,
    Json,
}

impl ColumnType {
    pub const ALL: &'static str = "int, float, string, bool, bytes, json";

    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Int => "int",
            ColumnType::Float => "float",
            ColumnType::String => "string",
            ColumnType::Bool => "bool",
            ColumnType::Bytes => "bytes",
            ColumnType::Json => "json",
        }
    }

    /// Whether the type can be part of a primary key.
    pub fn keyable(self) -> bool {
        !matches!(self, ColumnType::Float | ColumnType::Json)
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ColumnType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "int" => ColumnType::Int,
            "float" => ColumnType::Float,
            "string" => ColumnType::String,
            "bool" => ColumnType::Bool,
            "bytes" => ColumnType::Bytes,
            "json" => ColumnType::Json,
            other => {
                return Err(Error::invalid(format!(
                    "unknown column type `{other}`; allowed: {}",
                    ColumnType::ALL
                )))
            }
        })
    }
}

/// A column of a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
}

impl FromStr for Column {
    type Err = Error;
    /// Parses `name:type`.
    fn from_str(s: &str) -> Result<Self> {
        let (name, ty) = s.split_once(':').ok_or_else(|| {
            Error::invalid(format!(
                "column `{s}` must be written `name:type` with type one of {}",
                ColumnType::ALL
            ))
        })?;
        validate_name("column", name)?;
        Ok(Column {
            name: name.to_string(),
            ty: ty.parse()?,
        })
    }
}

/// What a caller gives to create a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSpec {
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
}

/// A table as recorded in its tenant's catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    /// Globally unique, never reused.
    pub id: u64,
    pub name: String,
    pub columns: Vec<Column>,
    /// Indexes into `columns`, in key order.
    pub primary_key: Vec<usize>,
    /// Starts at 1; every ALTER adds one.
    pub schema_version: u32,
}

impl TableSpec {
    /// Validates names, types and the primary key.
    pub fn validate(&self) -> Result<Vec<usize>> {
        validate_name("table", &self.name)?;
        if self.columns.is_empty() {
            return Err(Error::invalid(format!(
                "table `{}` needs at least one column",
                self.name
            )));
        }
        for (i, c) in self.columns.iter().enumerate() {
            validate_name("column", &c.name)?;
            if self.columns[..i].iter().any(|o| o.name == c.name) {
                return Err(Error::invalid(format!(
                    "column `{}` appears twice in table `{}`",
                    c.name, self.name
                )));
            }
        }
        if self.primary_key.is_empty() {
            return Err(Error::invalid(format!(
                "table `{}` needs a primary key (one or more of its columns)",
                self.name
            )));
        }
        let mut pk = Vec::new();
        for name in &self.primary_key {
            let idx = self
                .columns
                .iter()
                .position(|c| &c.name == name)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "primary key column `{name}` is not a column of table `{}`",
                        self.name
                    ))
                })?;
            let ty = self.columns[idx].ty;
            if !ty.keyable() {
                return Err(Error::invalid(format!(
                    "primary key column `{name}` has type {ty}; keys may be int, string, bytes or bool"
                )));
            }
            if pk.contains(&idx) {
                return Err(Error::invalid(format!("primary key names `{name}` twice")));
            }
            pk.push(idx);
        }
        Ok(pk)
    }
}

impl TableDef {
    pub fn column(&self, name: &str) -> Option<(usize, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == name)
    }

    pub fn pk_columns(&self) -> impl Iterator<Item = &Column> {
        self.primary_key.iter().map(|&i| &self.columns[i])
    }

    fn bad_row(&self, reason: impl Into<String>) -> Error {
        Error::InvalidRow {
            table: self.name.clone(),
            reason: reason.into(),
        }
    }

    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| format!("{}:{}", c.name, c.ty))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks a JSON row against the schema; returns its values in column order.
    pub fn check_row(&self, row: &Value) -> Result<Vec<Value>> {
        let obj = row.as_object().ok_or_else(|| {
            self.bad_row(format!(
                "a row must be a JSON object, got {}",
                json_kind(row)
            ))
        })?;
        for key in obj.keys() {
            if self.column(key).is_none() {
                return Err(self.bad_row(format!(
                    "unknown column `{key}`; columns are {}",
                    self.column_list()
                )));
            }
        }
        let mut values = Vec::with_capacity(self.columns.len());
        for (i, col) in self.columns.iter().enumerate() {
            let v = obj.get(&col.name).cloned().unwrap_or(Value::Null);
            if v.is_null() {
                if self.primary_key.contains(&i) {
                    return Err(self.bad_row(format!(
                        "primary key column `{}` is missing or null",
                        col.name
                    )));
                }
            } else {
                check_value(col, &v).map_err(|reason| self.bad_row(reason))?;
            }
            values.push(v);
        }
        Ok(values)
    }

    /// The primary key of a checked row (values in column order).
    pub fn pk_of(&self, values: &[Value]) -> Result<Vec<KeyValue>> {
        self.primary_key
            .iter()
            .map(|&i| key_value(&self.columns[i], &values[i]).map_err(|r| self.bad_row(r)))
            .collect()
    }

    /// Parses a primary key given as JSON: a scalar for a one-column key, an array in key
    /// order, or an object naming the key columns.
    pub fn pk_from_json(&self, key: &Value) -> Result<Vec<KeyValue>> {
        let cols: Vec<&Column> = self.pk_columns().collect();
        // Builds the message only on failure: this runs on every point read.
        let bad = |reason: String| {
            let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
            Error::InvalidArgument(format!(
                "invalid primary key for table `{}`: {reason}; the key is ({})",
                self.name,
                names.join(", ")
            ))
        };
        let parts: Vec<&Value> = match key {
            Value::Array(items) => items.iter().collect(),
            Value::Object(obj) => {
                if obj.len() != cols.len() {
                    return Err(bad(format!(
                        "expected {} field(s), got {}",
                        cols.len(),
                        obj.len()
                    )));
                }
                cols.iter()
                    .map(|c| {
                        obj.get(&c.name)
                            .ok_or_else(|| bad(format!("missing `{}`", c.name)))
                    })
                    .collect::<Result<_>>()?
            }
            scalar => vec![scalar],
        };
        if parts.len() != cols.len() {
            return Err(bad(format!(
                "expected {} value(s), got {}",
                cols.len(),
                parts.len()
            )));
        }
        cols.iter()
            .zip(parts)
            .map(|(c, v)| {
                if v.is_null() {
                    return Err(bad(format!("`{}` is null", c.name)));
                }
                check_value(c, v).map_err(&bad)?;
                key_value(c, v).map_err(&bad)
            })
            .collect()
    }
}

/// The JSON form of a key value, as a row shows it.
pub fn key_value_json(v: &KeyValue) -> Value {
    match v {
        KeyValue::Bool(b) => Value::Bool(*b),
        KeyValue::Int(i) => Value::from(*i),
        KeyValue::Str(s) => Value::String(s.clone()),
        KeyValue::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

/// A primary key as JSON: the value for one column, an array for several.
pub fn pk_json(values: &[KeyValue]) -> Value {
    match values {
        [one] => key_value_json(one),
        many => Value::Array(many.iter().map(key_value_json).collect()),
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_value(col: &Column, v: &Value) -> std::result::Result<(), String> {
    let ok = match col.ty {
        ColumnType::Int => v.as_i64().is_some(),
        ColumnType::Float => v.is_number(),
        ColumnType::String => v.is_string(),
        ColumnType::Bool => v.is_boolean(),
        ColumnType::Bytes => match v.as_str() {
            Some(s) => {
                return decode_b64(s)
                    .map(|_| ())
                    .map_err(|e| format!("column `{}` (bytes) is not valid base64: {e}", col.name))
            }
            None => false,
        },
        ColumnType::Json => true,
    };
    if ok {
        Ok(())
    } else {
        let expected = match col.ty {
            ColumnType::Int => "an integer between -2^63 and 2^63-1",
            ColumnType::Float => "a number",
            ColumnType::String => "a string",
            ColumnType::Bool => "true or false",
            ColumnType::Bytes => "a base64 string",
            ColumnType::Json => "any JSON value",
        };
        Err(format!(
            "column `{}` ({}) must be {expected}, got {}",
            col.name,
            col.ty,
            json_kind(v)
        ))
    }
}

pub(crate) fn decode_b64(s: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(s)
}

fn key_value(col: &Column, v: &Value) -> std::result::Result<KeyValue, String> {
    Ok(match col.ty {
        ColumnType::Int => KeyValue::Int(v.as_i64().ok_or("not an integer")?),
        ColumnType::String => KeyValue::Str(v.as_str().ok_or("not a string")?.to_string()),
        ColumnType::Bool => KeyValue::Bool(v.as_bool().ok_or("not a bool")?),
        ColumnType::Bytes => KeyValue::Bytes(
            decode_b64(v.as_str().ok_or("not a string")?).map_err(|e| e.to_string())?,
        ),
        ColumnType::Float | ColumnType::Json => {
            return Err(format!("column `{}` cannot be part of a key", col.name))
        }
    })
}

/// Builds a JSON object from column values (in column order).
pub fn row_json(def: &TableDef, values: Vec<Value>) -> Value {
    let mut obj = Map::with_capacity(def.columns.len());
    for (col, v) in def.columns.iter().zip(values) {
        obj.insert(col.name.clone(), v);
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn users() -> TableDef {
        let spec = TableSpec {
            name: "users".into(),
            columns: vec!["id:int".parse().unwrap(), "name:string".parse().unwrap()],
            primary_key: vec!["id".into()],
        };
        let primary_key = spec.validate().unwrap();
        TableDef {
            id: 1,
            name: spec.name,
            columns: spec.columns,
            primary_key,
            schema_version: 1,
        }
    }

    #[test]
    fn names() {
        validate_name("tenant", "acme_1-x").unwrap();
        for bad in ["", "Acme", "a b", "ü", &"a".repeat(64)] {
            let e = validate_name("tenant", bad).unwrap_err().to_string();
            assert!(e.contains("lowercase letters"), "{e}");
        }
    }

    #[test]
    fn rows_are_checked() {
        let t = users();
        assert!(t.check_row(&json!({"id": 1, "name": "a"})).is_ok());
        assert!(t.check_row(&json!({"id": 1})).is_ok());
        let e = t.check_row(&json!({"id": "x"})).unwrap_err().to_string();
        assert!(e.contains("column `id` (int) must be an integer"), "{e}");
        let e = t
            .check_row(&json!({"id": 1, "zip": 2}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown column `zip`; columns are id:int, name:string"),
            "{e}"
        );
        assert!(t.check_row(&json!({"name": "a"})).is_err());
        assert!(t.check_row(&json!([1])).is_err());
        assert!(t.check_row(&json!({"id": 1.5})).is_err());
        assert!(t
            .check_row(&json!({"id": 18446744073709551615u64}))
            .is_err());
    }

    #[test]
    fn keys_in_three_forms() {
        let t = users();
        let k = vec![KeyValue::Int(5)];
        assert_eq!(t.pk_from_json(&json!(5)).unwrap(), k);
        assert_eq!(t.pk_from_json(&json!([5])).unwrap(), k);
        assert_eq!(t.pk_from_json(&json!({"id": 5})).unwrap(), k);
        assert!(t.pk_from_json(&json!("5")).is_err());
        assert!(t.pk_from_json(&json!([5, 6])).is_err());
        assert!(t.pk_from_json(&json!(null)).is_err());
    }

    #[test]
    fn specs_are_validated() {
        let mut spec = TableSpec {
            name: "t".into(),
            columns: vec!["f:float".parse().unwrap()],
            primary_key: vec!["f".into()],
        };
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("keys may be"));
        spec.primary_key = vec!["nope".into()];
        assert!(spec.validate().is_err());
        assert!("x:decimal".parse::<Column>().is_err());
        assert!("x".parse::<Column>().is_err());
    }
}
