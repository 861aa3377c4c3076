//! Shared by the guest's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rds_mapper::awslogs::parse;
use rds_mapper::formats::parse_message;
use rds_mapper::logs::{Emit, StreamTags};
use rds_mapper::packed::Packed;
use rds_mapper::{MapError, Record, RecordParts};
use serde_json::{Value, json};

/// The CloudWatch time of every event the tests make.
pub const CW_TIMESTAMP: i64 = 1_700_000_000_000;

/// `fixtures/logs`.
pub fn logs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/logs")
}

/// Packs records in place, as the default mapping does.
pub struct Packing(pub Packed);

impl Emit for Packing {
    fn emit(&mut self, record: &impl RecordParts) -> Result<(), MapError> {
        self.0
            .push(record)
            .map_err(|e| MapError::Delivery(e.to_string()))
    }
}

/// Maps CloudWatch messages, one event each, as one payload of `group` and `stream`: the
/// records as a hook sees them, after checking that the default mapping packs the same ones
/// in place.
pub fn map_payload(group: &str, stream: &str, messages: &[&str]) -> Vec<Record> {
    let events: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"id": format!("{i}"), "timestamp": CW_TIMESTAMP, "message": m}))
        .collect();
    let payload = json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012",
        "logGroup": group, "logStream": stream,
        "subscriptionFilters": ["f"], "logEvents": events,
    })
    .to_string();
    let data = parse(payload.as_bytes()).expect("payload");
    let tags = StreamTags::new(&data);
    let mut out: Vec<Record> = Vec::new();
    let mut packed = Packing(Packed::default());
    for event in &data.log_events {
        let max = rds_mapper::config::DEFAULT_MAX_CONTENT_BYTES;
        tags.records(event, max, &mut out).expect("records");
        tags.records(event, max, &mut packed).expect("packed");
    }
    assert_eq!(packed.0.unpack().expect("unpacks"), out, "{group}");
    out
}

/// The expected JSON lines at `path`, after writing `actual` there when `UPDATE_EXPECT` is set.
pub fn expected_lines(path: &Path, actual: &[Value]) -> Vec<Value> {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let text: String = actual.iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(path, text).expect("write expected");
    }
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_EXPECT=1 writes it)", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("expected line"))
        .collect()
}

pub const LOG_TYPES: &[&str] = &[
    "error",
    "slowquery",
    "general",
    "audit",
    "postgresql",
    "upgrade",
    "alert",
    "listener",
    "agent",
    "proxy",
    "diag.log",
    "notify.log",
    "trace",
];

/// Every log type splits `message` into entries that are slices of it, in order, with exactly
/// one line terminator (LF or CRLF) between two and at most one after the last: no byte lost.
pub fn check(message: &str) {
    for log_type in LOG_TYPES {
        let entries = parse_message(log_type, message);
        assert!(!entries.is_empty());
        // Entries are slices of the message, in order; between two of them, and after the
        // last, there is exactly one line terminator (LF or CRLF) and nothing else.
        let base = message.as_ptr() as usize;
        let mut at = 0usize;
        for (i, e) in entries.iter().enumerate() {
            let start = e.text.as_ptr() as usize - base;
            let gap = &message[at..start];
            if i == 0 {
                assert_eq!(start, 0, "{log_type}: the first entry starts the message");
            } else {
                assert!(
                    gap == "\n" || gap == "\r\n",
                    "{log_type}: {gap:?} between entries {}-{i}",
                    i - 1
                );
            }
            at = start + e.text.len();
        }
        let tail = &message[at..];
        assert!(
            tail.is_empty() || tail == "\n" || tail == "\r\n",
            "{log_type}: {tail:?} left after the last entry"
        );
    }
}
