//! The JSON line shape of a record, shared by `invoke`, the collector emulator and
//! `test-mapper`: `{"category","time","tags","fields","content","line"}` in that order, tags and
//! fields in the mapper's order, fields typed (integer, float, bool, text).

use serde_json::{Map, Value, json};

use crate::sandbox::bindings::{FieldValue, LogRecord};

pub fn to_json(r: &LogRecord) -> Value {
    let tags: Map<String, Value> = r
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let fields: Map<String, Value> = r
        .fields
        .iter()
        .map(|(k, v)| {
            let v = match v {
                FieldValue::Text(s) => Value::String(s.clone()),
                FieldValue::Integer(i) => json!(i),
                FieldValue::Float(f) => json!(f),
                FieldValue::Boolean(b) => Value::Bool(*b),
            };
            (k.clone(), v)
        })
        .collect();
    json!({
        "category": r.category,
        "time": r.time,
        "tags": tags,
        "fields": fields,
        "content": r.content,
        "line": r.line,
    })
}
