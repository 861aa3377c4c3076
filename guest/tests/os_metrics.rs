//! Enhanced Monitoring samples (`fixtures/logs/rdsosmetrics-*.log`, one document per line)
//! through the mapping library as `RDSOSMetrics` events: the records equal the expected lines
//! field by field, the in-place packing gives the same records, and every number of every
//! document is a typed field of one of its records. Property tests: arbitrary text and
//! arbitrary JSON documents never panic, and their numbers are never dropped.

mod common;

use std::path::PathBuf;

use common::{expected_lines, logs_dir, map_payload};
use proptest::prelude::*;
use rds_mapper::{FieldValue, Record};
use serde_json::{Value, json};

/// The samples: each file's documents, one CloudWatch message per line.
fn samples() -> Vec<(String, Vec<String>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(logs_dir())
        .expect("fixtures/logs")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("rdsosmetrics-") && name.ends_with(".log")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("sample");
            let lines = text
                .lines()
                .filter(|l| !l.starts_with("#%") && !l.trim().is_empty())
                .map(str::to_owned)
                .collect();
            (p.file_name().unwrap().to_string_lossy().into_owned(), lines)
        })
        .collect()
}

/// Maps messages as one `RDSOSMetrics` payload of `stream`.
fn map(stream: &str, messages: &[&str]) -> Vec<Record> {
    map_payload(rds_mapper::os_metrics::LOG_GROUP, stream, messages)
}

fn field_json(v: &FieldValue) -> Value {
    match v {
        FieldValue::Text(s) => json!(s),
        FieldValue::Integer(i) => json!(i),
        FieldValue::Float(f) => json!(f),
        FieldValue::Boolean(b) => json!(b),
    }
}

fn summary(r: &Record) -> Value {
    let tags: serde_json::Map<String, Value> = r
        .tags
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let fields: serde_json::Map<String, Value> = r
        .fields
        .iter()
        .map(|(k, v)| (k.to_string(), field_json(v)))
        .collect();
    json!({"category": r.category, "line": r.line, "time": r.time, "tags": tags, "fields": fields, "content": r.content})
}

/// Where a number must be: `None` for the `os` record, or a list's name and the element's
/// index; then the field's name; then the number.
type Place = (Option<(String, usize)>, String, Value);

/// Every number of `doc` with where it must be: the `os` record's field `a.b`, or for a list
/// the n-th record of that `metric_set` and the element's own key.
fn numbers(doc: &Value) -> Vec<Place> {
    fn walk(v: &Value, path: String, set: Option<(String, usize)>, out: &mut Vec<Place>) {
        match v {
            Value::Number(_) => out.push((set, path, v.clone())),
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(v, p, set.clone(), out);
                }
            }
            Value::Array(items) => {
                // Only a list at the document's top level is a set of records.
                let top = set.is_none() && !path.is_empty() && !path.contains('.');
                for (i, item) in items.iter().enumerate() {
                    match &set {
                        // A list at the top: its elements are records of their own, an
                        // object's members under their own keys, anything else as `value`.
                        None if top => {
                            let at = if item.is_object() {
                                String::new()
                            } else {
                                "value".into()
                            };
                            walk(item, at, Some((path.clone(), i)), out)
                        }
                        _ => walk(item, format!("{path}.{i}"), set.clone(), out),
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, String::new(), None, &mut out);
    out
}

/// Asserts that every number of `doc` is a typed field, equal, of the records made from it.
fn assert_every_number_is_a_field(name: &str, doc: &Value, records: &[Record]) {
    let os = records
        .iter()
        .find(|r| r.tag("metric_set") == Some("os"))
        .unwrap_or_else(|| panic!("{name}: no os record"));
    for (set, path, value) in numbers(doc) {
        let record = match &set {
            None => os,
            Some((set, i)) => records
                .iter()
                .filter(|r| r.tag("metric_set") == Some(set.as_str()))
                .nth(*i)
                .unwrap_or_else(|| panic!("{name}: no record {i} of {set}")),
        };
        let got = record
            .field(&path)
            .unwrap_or_else(|| panic!("{name}: {set:?} {path} = {value} is not a field"));
        let got = field_json(got);
        // Integers stay integers, floats floats, with the same value.
        assert_eq!(got, value, "{name}: {set:?} {path}");
        assert_eq!(got.is_f64(), value.is_f64(), "{name}: {set:?} {path} type");
    }
}

#[test]
fn every_sample_document_maps_to_the_expected_records_with_every_number() {
    for (file, lines) in samples() {
        // The Aurora sample as a Multi-AZ standby's stream.
        let stream = if file.contains("aurora") {
            "db-AURORA-secondary"
        } else {
            "db-SAMPLE"
        };
        let messages: Vec<&str> = lines.iter().map(String::as_str).collect();
        let records = map(stream, &messages);
        let actual: Vec<Value> = records.iter().map(summary).collect();
        let expected_path = logs_dir().join(file.replace(".log", ".expected.jsonl"));
        let expected = expected_lines(&expected_path, &actual);
        assert_eq!(actual, expected, "{file}");
        // The documents of each message, and every number of each.
        let mut docs = Vec::new();
        for line in &lines {
            docs.extend(
                serde_json::Deserializer::from_str(line)
                    .into_iter::<Value>()
                    .map(|d| d.expect("a document")),
            );
        }
        let mut rest: &[Record] = &records;
        for doc in &docs {
            // A document's records: its `os` record and the elements after it.
            let end = rest[1..]
                .iter()
                .position(|r| r.tag("metric_set") == Some("os"))
                .map_or(rest.len(), |i| i + 1);
            let (mine, next) = rest.split_at(end);
            assert!(
                numbers(doc).len() > 20,
                "{file}: a real document holds many numbers"
            );
            assert_every_number_is_a_field(&file, doc, mine);
            let os = &mine[0];
            assert_eq!(os.category, "#RDS_OS_METRICS");
            assert_eq!(
                os.tag("db_identifier"),
                doc["instanceID"].as_str(),
                "{file}"
            );
            assert_eq!(
                os.tag("resource_id"),
                doc["instanceResourceID"].as_str(),
                "{file}"
            );
            assert_eq!(
                os.tag("standby"),
                Some(if stream.ends_with("-secondary") {
                    "true"
                } else {
                    "false"
                })
            );
            assert!(
                matches!(os.field("uptime_seconds"), Some(FieldValue::Integer(s)) if *s > 0),
                "{file}"
            );
            assert_eq!(
                Some(os.time),
                rds_mapper::time::parse_rfc3339(doc["timestamp"].as_str().unwrap()),
                "{file}: the document's time"
            );
            for r in mine {
                assert_eq!(r.tag("parse_status"), Some("parsed"), "{file}");
            }
            rest = next;
        }
        assert!(rest.is_empty(), "{file}: records of no document");
    }
}

#[test]
fn the_sql_server_shape_and_the_glued_documents() {
    let samples = samples();
    let lines = |name: &str| {
        samples
            .iter()
            .find(|(f, _)| f.contains(name))
            .unwrap()
            .1
            .clone()
    };
    let sql = map("db-SQL", &[lines("sqlserver")[0].as_str()]);
    assert_eq!(sql[0].tag("engine"), Some("sqlserver"));
    assert!(sql[0].field("system.handles").is_some());
    let disks: Vec<&Record> = sql
        .iter()
        .filter(|r| r.tag("metric_set") == Some("disks"))
        .collect();
    assert_eq!(disks[0].tag("disk"), Some("rdsdbdata"));
    let net: Vec<&Record> = sql
        .iter()
        .filter(|r| r.tag("metric_set") == Some("network"))
        .collect();
    assert_eq!(net[0].tag("interface"), Some("Ethernet 2"));
    // Two documents in one message: two `os` records, a second apart.
    let glued = map("db-PG", &[lines("glued")[0].as_str()]);
    let os: Vec<&Record> = glued
        .iter()
        .filter(|r| r.tag("metric_set") == Some("os"))
        .collect();
    assert_eq!(os.len(), 2);
    assert_eq!(os[1].time - os[0].time, 1000);
    assert_eq!(glued.len() % 2, 0, "the same records for each document");
}

/// An arbitrary JSON value, documents' shapes included.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        "[a-z ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics_and_is_never_dropped(text in "\\PC{0,200}") {
        let records = map("db-X", &[text.as_str()]);
        prop_assert!(!records.is_empty());
    }

    #[test]
    fn every_number_of_an_arbitrary_document_is_kept(
        members in prop::collection::btree_map("[a-zA-Z]{1,6}", json_value(), 0..8),
    ) {
        let mut doc: serde_json::Map<String, Value> = members.into_iter().collect();
        doc.insert("instanceID".into(), json!("db-prop"));
        // Lists of lists would be flattened under their index; the shapes Enhanced
        // Monitoring writes are lists of objects.
        let doc = Value::Object(doc);
        let text = doc.to_string();
        let records = map("db-X", &[text.as_str()]);
        prop_assert_eq!(records[0].tag("metric_set"), Some("os"));
        assert_every_number_is_a_field("proptest", &doc, &records);
    }
}
