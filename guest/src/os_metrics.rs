//! Enhanced Monitoring: the `RDSOSMetrics` log group, one JSON document per instance and
//! interval (1–60 s) in each CloudWatch event, occasionally several glued together (`{…}{…}`).
//! It is the only source of an RDS instance's OS metrics.
//!
//! Each document becomes `#RDS_OS_METRICS` records, at the document's `timestamp`:
//! - one with `metric_set=os`: every number of the document's top level and of its objects
//!   (`cpuUtilization`, `loadAverageMinute`, `memory`, `tasks`, `swap`, SQL Server's `system`),
//!   named `<object>.<key>` (`cpuUtilization.total`, `memory.free`), and `uptime` with
//!   `uptime_seconds`;
//! - one per element of each list (`network`, `diskIO`, `physicalDeviceIO`, `fileSys`,
//!   `processList`, SQL Server's `disks`), with `metric_set` the list's name, the element named
//!   by a tag (`interface`, `device`, `fs_name` and `mount_point`, `process_name`, `disk`) and
//!   every number of it as a field under its own key.
//!
//! A record's content names it (`os db-1`, `network eth0`, `processList mysqld`): everything
//! the document says is in the tags and typed fields, so the document's text is not sent
//! again, nor each element's (that had more than doubled the bytes). The records of one
//! document share its `record_id`; `line` tells them apart.
//!
//! Every record is tagged with the instance (`db_identifier` from `instanceID`), `engine`,
//! `resource_id` and `standby` (the stream of a Multi-AZ standby ends in `-secondary`). Every
//! number of the document is a typed field of one of its records: none is dropped. A document
//! that is not JSON is forwarded whole, unparsed, with the reason.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::record::{FieldValue, Record, Tags, Text};

/// The WhaTap category of Enhanced Monitoring records.
pub const CATEGORY_OS_METRICS: &str = "#RDS_OS_METRICS";
/// The log group (and so the log type) Enhanced Monitoring writes to.
pub const LOG_GROUP: &str = "RDSOSMetrics";

/// The lists whose elements become records, and the tags that name an element: (tag, key).
fn element_names(set: &str) -> &'static [(&'static str, &'static str)] {
    match set {
        "network" => &[("interface", "interface")],
        "diskIO" | "physicalDeviceIO" => &[("device", "device")],
        "fileSys" => &[("fs_name", "name"), ("mount_point", "mountPoint")],
        "processList" => &[("process_name", "name")],
        "disks" => &[("disk", "name")],
        _ => &[("name", "name")],
    }
}

/// The records of one CloudWatch message of `RDSOSMetrics`. `stream` is the log stream's
/// tags, `standby` whether the stream is a standby's, `cw_time` the event's time (for a
/// document without its own), `id` the record id of the n-th document (or unreadable piece).
pub fn records(
    message: &str,
    stream: &Arc<Tags>,
    standby: bool,
    cw_time: i64,
    id: &dyn Fn(usize) -> String,
) -> Vec<Record> {
    let mut out = Vec::new();
    if message.trim().is_empty() {
        out.push(unparsed(message, "an empty message", stream, cw_time));
    }
    let mut docs = serde_json::Deserializer::from_str(message).into_iter::<Value>();
    let mut start = 0usize;
    // Where each document's records begin in `out`, for their shared id.
    let mut firsts = vec![0usize];
    loop {
        let next = docs.next();
        let end = docs.byte_offset();
        let text = message[start..end.max(start)].trim();
        if !out.is_empty() && firsts.last() != Some(&out.len()) {
            firsts.push(out.len());
        }
        match next {
            None => break,
            Some(Ok(Value::Object(doc))) => document(&doc, stream, standby, cw_time, &mut out),
            Some(Ok(_)) => {
                out.push(unparsed(
                    text,
                    "the document is not a JSON object",
                    stream,
                    cw_time,
                ));
            }
            Some(Err(e)) => {
                // The rest cannot be read as JSON: forwarded whole, with the reason.
                let rest = message[start..].trim();
                let reason = format!("not an Enhanced Monitoring document: {e}");
                out.push(unparsed(rest, &reason, stream, cw_time));
                break;
            }
        }
        start = end;
    }
    if firsts.last() != Some(&out.len()) {
        firsts.push(out.len());
    }
    for (n, bounds) in firsts.windows(2).enumerate() {
        let shared = id(n + 1);
        for r in &mut out[bounds[0]..bounds[1]] {
            r.fields
                .push(("record_id".into(), FieldValue::Text(shared.clone())));
        }
    }
    for (i, r) in out.iter_mut().enumerate() {
        r.line = i as i64 + 1;
    }
    out
}

fn new_record(content: &str, stream: &Arc<Tags>, time: i64) -> Record {
    let mut r = Record::new(CATEGORY_OS_METRICS, time, content.to_owned());
    r.stream_tags = Arc::clone(stream);
    r
}

fn unparsed(content: &str, reason: &str, stream: &Arc<Tags>, time: i64) -> Record {
    let mut r = new_record(content, stream, time);
    r.tags.push(("level".into(), "info".into()));
    r.tags.push(("parse_status".into(), "unparsed".into()));
    r.fields
        .push(("parse_error".into(), FieldValue::Text(reason.to_owned())));
    r
}

/// The records of one document.
fn document(
    doc: &Map<String, Value>,
    stream: &Arc<Tags>,
    standby: bool,
    cw_time: i64,
    out: &mut Vec<Record>,
) {
    let str_of = |k: &str| doc.get(k).and_then(Value::as_str);
    let time = str_of("timestamp")
        .and_then(crate::time::parse_rfc3339)
        .unwrap_or(cw_time);
    // The tags every record of the document carries.
    let mut common: Tags = Vec::with_capacity(6);
    if let Some(id) = str_of("instanceID") {
        common.push(("db_identifier".into(), owned(id)));
    }
    if let Some(engine) = str_of("engine") {
        common.push(("engine".into(), engine_name(engine)));
    }
    if let Some(rid) = str_of("instanceResourceID") {
        common.push(("resource_id".into(), owned(rid)));
    }
    common.push((
        "standby".into(),
        if standby { "true" } else { "false" }.into(),
    ));

    let instance = str_of("instanceID").unwrap_or("");
    let mut os = new_record(format!("os {instance}").trim_end(), stream, time);
    os.tags.push(("metric_set".into(), "os".into()));
    os.tags.extend(common.iter().cloned());
    let mut elements = Vec::new();
    for (key, value) in doc {
        match (key.as_str(), value) {
            // Read as tags and time above.
            ("instanceID" | "instanceResourceID" | "engine" | "timestamp", Value::String(_)) => {}
            ("uptime", Value::String(s)) => {
                os.fields
                    .push(("uptime".into(), FieldValue::Text(s.clone())));
                if let Some(secs) = uptime_seconds(s) {
                    os.fields
                        .push(("uptime_seconds".into(), FieldValue::Integer(secs)));
                }
            }
            (_, Value::Array(items)) => {
                for item in items {
                    elements.push(element(key, item, stream, time, &common));
                }
            }
            _ => flatten(key, value, &mut os.fields),
        }
    }
    os.tags.push(("level".into(), "info".into()));
    os.tags.push(("parse_status".into(), "parsed".into()));
    out.push(os);
    out.extend(elements);
}

/// One element of a list: named by its tags, its numbers as fields.
fn element(set: &str, item: &Value, stream: &Arc<Tags>, time: i64, common: &Tags) -> Record {
    let mut r = new_record(set, stream, time);
    r.tags.push(("metric_set".into(), owned(set)));
    r.tags.extend(common.iter().cloned());
    let names = element_names(set);
    match item {
        Value::Object(fields) => {
            for (tag, key) in names {
                match fields.get(*key) {
                    Some(Value::String(name)) => r.tags.push(((*tag).into(), owned(name))),
                    // Aurora's storage row has no `device`: it is the cluster volume.
                    None if *tag == "device" => r.tags.push(("device".into(), "storage".into())),
                    _ => {}
                }
            }
            for (key, value) in fields {
                let named = names
                    .iter()
                    .any(|(_, k)| *k == key.as_str() && value.is_string());
                if named {
                    continue;
                }
                if key == "vmlimit" {
                    vmlimit(value, &mut r.fields);
                } else {
                    flatten(key, value, &mut r.fields);
                }
            }
        }
        other => flatten("value", other, &mut r.fields),
    }
    // The content names the element: the list, then its naming tags' values.
    for (tag, _) in names {
        if let Some(name) = r.tag(tag) {
            let name = name.to_owned();
            r.content.push(' ');
            r.content.push_str(&name);
        }
    }
    r.tags.push(("level".into(), "info".into()));
    r.tags.push(("parse_status".into(), "parsed".into()));
    r
}

/// `value` as typed fields under `key`: a number, text or boolean as itself; an object's
/// members as `key.member`; a list's items as `key.N`. Nothing is dropped but `null`.
fn flatten(key: &str, value: &Value, fields: &mut Vec<(Text, FieldValue)>) {
    match value {
        Value::Number(n) => fields.push((owned(key), number(n))),
        Value::String(s) => fields.push((owned(key), FieldValue::Text(s.clone()))),
        Value::Bool(b) => fields.push((owned(key), FieldValue::Boolean(*b))),
        Value::Object(members) => {
            for (k, v) in members {
                flatten(&format!("{key}.{k}"), v, fields);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{key}.{i}"), v, fields);
            }
        }
        Value::Null => {}
    }
}

/// A process's virtual memory limit, which Enhanced Monitoring spells three ways: a number
/// (KB), `"unlimited"`, or `""` (not known). The number stays a number (`vmlimit`) and
/// "unlimited" a flag (`vmlimit_unlimited`), so that neither field changes type.
fn vmlimit(value: &Value, fields: &mut Vec<(Text, FieldValue)>) {
    match value {
        Value::Number(n) => fields.push(("vmlimit".into(), number(n))),
        Value::String(s) if s.eq_ignore_ascii_case("unlimited") => {
            fields.push(("vmlimit_unlimited".into(), FieldValue::Boolean(true)));
        }
        Value::String(s) if s.trim().is_empty() => {}
        other => flatten("vmlimit", other, fields),
    }
}

fn number(n: &serde_json::Number) -> FieldValue {
    match n.as_i64() {
        Some(i) => FieldValue::Integer(i),
        None => FieldValue::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

fn owned(s: &str) -> Text {
    Cow::Owned(s.to_owned())
}

/// The engine as the other records name it (`MYSQL` → `mysql`, `Aurora` → `aurora-mysql`).
fn engine_name(engine: &str) -> Text {
    let lower = engine.to_ascii_lowercase();
    let name = match lower.as_str() {
        "mysql" => "mysql",
        "mariadb" => "mariadb",
        "postgres" | "postgresql" => "postgresql",
        "aurora" | "aurora-mysql" => "aurora-mysql",
        "aurora-postgresql" => "aurora-postgresql",
        l if l.starts_with("sqlserver") => "sqlserver",
        l if l.starts_with("oracle") => "oracle",
        l if l.starts_with("db2") => "db2",
        _ => return Cow::Owned(lower),
    };
    name.into()
}

/// `329 days, 05:59:09`, `1 day, 2:03:04` or `0:44:23` in seconds.
pub fn uptime_seconds(uptime: &str) -> Option<i64> {
    let (days, clock) = match uptime.split_once(',') {
        Some((d, c)) => {
            let n = d.split_whitespace().next()?.parse::<i64>().ok()?;
            (n, c.trim())
        }
        None => (0, uptime.trim()),
    };
    let mut parts = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() || m > 59 || s > 59 {
        return None;
    }
    Some(((days * 24 + h) * 60 + m) * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Arc<Tags> {
        Arc::new(vec![("logGroup".into(), LOG_GROUP.into())])
    }

    fn run(message: &str) -> Vec<Record> {
        records(message, &stream(), false, 1, &|i| format!("id{i}"))
    }

    #[test]
    fn uptime_in_its_spellings() {
        assert_eq!(
            uptime_seconds("329 days, 05:59:09"),
            Some(329 * 86400 + 5 * 3600 + 59 * 60 + 9)
        );
        assert_eq!(
            uptime_seconds("1 day, 2:03:04"),
            Some(86400 + 2 * 3600 + 3 * 60 + 4)
        );
        assert_eq!(uptime_seconds("0:44:23"), Some(44 * 60 + 23));
        assert_eq!(uptime_seconds("soon"), None);
        assert_eq!(uptime_seconds("1:99:00"), None);
    }

    #[test]
    fn a_document_is_an_os_record_and_one_record_per_element() {
        let doc = r#"{"engine":"Aurora","instanceID":"db-1","instanceResourceID":"db-ABC","timestamp":"2025-07-02T12:59:15Z","version":1,"uptime":"0:01:02","numVCPUs":2,
            "cpuUtilization":{"user":1.5,"total":2},"network":[{"interface":"eth0","rx":10.5,"tx":3}],
            "diskIO":[{"readLatency":0.5,"diskQueueDepth":1},{"device":"rdstemp","util":0.1}],
            "processList":[{"name":"mysqld","id":7,"vmlimit":"unlimited","rss":100},{"name":"OS processes","id":0,"vmlimit":"","rss":5},{"name":"x","id":9,"vmlimit":1024}]}"#;
        let rs = run(doc);
        assert_eq!(rs.len(), 1 + 1 + 2 + 3);
        let os = &rs[0];
        assert_eq!(os.category, CATEGORY_OS_METRICS);
        assert_eq!(os.time, 1_751_461_155_000);
        assert_eq!(os.tag("metric_set"), Some("os"));
        assert_eq!(os.tag("engine"), Some("aurora-mysql"));
        assert_eq!(os.tag("db_identifier"), Some("db-1"));
        assert_eq!(os.tag("resource_id"), Some("db-ABC"));
        assert_eq!(os.tag("standby"), Some("false"));
        assert_eq!(
            os.field("cpuUtilization.user"),
            Some(&FieldValue::Float(1.5))
        );
        assert_eq!(
            os.field("cpuUtilization.total"),
            Some(&FieldValue::Integer(2))
        );
        assert_eq!(os.field("numVCPUs"), Some(&FieldValue::Integer(2)));
        assert_eq!(os.field("uptime_seconds"), Some(&FieldValue::Integer(62)));
        assert_eq!(os.content, "os db-1");
        // The records of a document share its id.
        for r in &rs {
            assert_eq!(r.field("record_id"), Some(&FieldValue::Text("id1".into())));
        }
        let net = &rs[1];
        assert_eq!(
            (net.tag("metric_set"), net.tag("interface")),
            (Some("network"), Some("eth0"))
        );
        assert_eq!(net.field("rx"), Some(&FieldValue::Float(10.5)));
        assert_eq!(net.content, "network eth0");
        assert_eq!(rs[4].content, "processList mysqld");
        // Aurora's storage row has no device; the iostat row has one.
        assert_eq!(rs[2].tag("device"), Some("storage"));
        assert_eq!(rs[3].tag("device"), Some("rdstemp"));
        // vmlimit's three spellings.
        assert_eq!(rs[4].tag("process_name"), Some("mysqld"));
        assert_eq!(
            rs[4].field("vmlimit_unlimited"),
            Some(&FieldValue::Boolean(true))
        );
        assert_eq!(rs[5].field("vmlimit"), None);
        assert_eq!(rs[5].field("vmlimit_unlimited"), None);
        assert_eq!(rs[6].field("vmlimit"), Some(&FieldValue::Integer(1024)));
        let lines: Vec<i64> = rs.iter().map(|r| r.line).collect();
        assert_eq!(lines, (1..=7).collect::<Vec<_>>());
    }

    #[test]
    fn glued_documents_are_split_and_garbage_is_forwarded() {
        let one = r#"{"instanceID":"a","timestamp":"2025-07-02T12:59:15Z","numVCPUs":1}"#;
        let two = r#"{"instanceID":"a","timestamp":"2025-07-02T12:59:16Z","numVCPUs":1}"#;
        let rs = run(&format!("{one}{two}"));
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[1].time - rs[0].time, 1000);
        // One id per document.
        assert_eq!(
            rs[0].field("record_id"),
            Some(&FieldValue::Text("id1".into()))
        );
        assert_eq!(
            rs[1].field("record_id"),
            Some(&FieldValue::Text("id2".into()))
        );
        let rs = run(&format!("{one} not json"));
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[1].tag("parse_status"), Some("unparsed"));
        assert_eq!(rs[1].content, "not json");
        assert_eq!(
            rs[1].field("record_id"),
            Some(&FieldValue::Text("id2".into()))
        );
        assert!(
            matches!(rs[1].field("parse_error"), Some(FieldValue::Text(t)) if t.starts_with("not an Enhanced Monitoring document: "))
        );
        let rs = run("[1,2]");
        assert_eq!(rs[0].tag("parse_status"), Some("unparsed"));
        let empty = run(" ");
        assert_eq!(empty.len(), 1, "nothing is dropped silently");
        assert_eq!(
            empty[0].field("parse_error"),
            Some(&FieldValue::Text("an empty message".into()))
        );
    }
}
