//! Hostile inputs through the whole mapping: each gives correct records or a clear error
//! naming what is wrong; none panics, hangs or loses a record.

use std::io::Write;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use rds_mapper::{Collect, Invocation, MapError, Summary, map_event};
use serde_json::{Value, json};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn event_from_compressed(compressed: &[u8]) -> Vec<u8> {
    json!({"awslogs": {"data": base64::engine::general_purpose::STANDARD.encode(compressed)}})
        .to_string()
        .into_bytes()
}

fn payload(messages: impl IntoIterator<Item = String>) -> String {
    let events: Vec<Value> = messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| json!({"id": i.to_string(), "timestamp": 1_700_000_000_000i64, "message": m}))
        .collect();
    json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/aws/rds/instance/db/postgresql",
           "logStream": "db.0", "subscriptionFilters": [], "logEvents": events})
    .to_string()
}

fn run(event: &[u8]) -> (Result<Summary, MapError>, Collect) {
    let mut out = Collect::default();
    let result = map_event(
        event,
        &Invocation {
            received_ms: 1,
            ..Invocation::default()
        },
        &mut out,
    );
    (result, out)
}

fn error(event: &[u8]) -> String {
    run(event).0.expect_err("must be refused").to_string()
}

#[test]
fn concatenated_gzip_members_and_trailing_garbage_are_named() {
    let one = payload(["x".to_string()]);
    let mut two = gzip(one.as_bytes());
    two.extend(gzip(one.as_bytes()));
    let e = error(&event_from_compressed(&two));
    assert!(
        e.starts_with("awslogs.data is not a CloudWatch Logs payload: trailing characters"),
        "{e}"
    );
    let mut garbage = gzip(one.as_bytes());
    garbage.extend_from_slice(b"\x00\x01not gzip");
    let e = error(&event_from_compressed(&garbage));
    assert!(
        e.starts_with("awslogs.data gzip stream is truncated or corrupt"),
        "{e}"
    );
}

#[test]
fn duplicate_keys_deep_nesting_and_wrong_types_are_named() {
    let dup = r#"{"messageType":"DATA_MESSAGE","logGroup":"a","logGroup":"b","logStream":"s","logEvents":[]}"#;
    let e = error(&event_from_compressed(&gzip(dup.as_bytes())));
    assert!(e.contains("duplicate field `logGroup`"), "{e}");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        error(deep.as_bytes()),
        "the event is not valid JSON: recursion limit exceeded at line 1 column 128"
    );
    let wrong =
        r#"{"messageType":"DATA_MESSAGE","logGroup":"a","logStream":"s","logEvents":"none"}"#;
    let e = error(&event_from_compressed(&gzip(wrong.as_bytes())));
    assert!(
        e.contains("invalid type: string \"none\", expected a sequence"),
        "{e}"
    );
}

#[test]
fn invalid_utf8_is_an_error_naming_where() {
    let mut bad = payload(["ok".to_string()]).into_bytes();
    let at = bad.windows(2).position(|w| w == b"ok").unwrap();
    bad[at] = 0xff;
    let e = error(&event_from_compressed(&gzip(&bad)));
    assert!(e.starts_with("awslogs.data is not a CloudWatch Logs payload: invalid unicode code point at line 1 column"), "{e}");
    let e = error(b"{\"source\": \"aws.rds\xff\"}");
    assert!(e.starts_with("the event is not valid JSON"), "{e}");
}

#[test]
fn a_10_mb_message_is_split_into_parts_with_nothing_lost() {
    let big = format!(
        "2024-01-19 13:20:43 UTC:h(1):u@d:[7]:LOG:  statement: SELECT '{}'",
        "x".repeat(10 << 20)
    );
    let (result, out) = run(&event_from_compressed(&gzip(
        payload([big.clone()]).as_bytes(),
    )));
    let summary = result.expect("mapped");
    assert_eq!(summary.split, 1);
    let parts = rds_mapper::config::DEFAULT_MAX_CONTENT_BYTES;
    assert_eq!(out.records.len(), big.len().div_ceil(parts));
    assert!(out.records.iter().all(|r| r.content.len() <= parts));
    assert_eq!(
        out.records
            .iter()
            .map(|r| r.content.as_str())
            .collect::<String>(),
        big
    );
    assert_eq!(out.records[0].tag("parse_status"), Some("parsed"));
    assert_eq!(
        out.records[0].field("parts"),
        Some(&rds_mapper::FieldValue::Integer(out.records.len() as i64))
    );
}

#[test]
fn nul_bytes_are_kept_and_100_000_tiny_events_all_arrive() {
    let (result, out) = run(&event_from_compressed(&gzip(
        payload(["a\u{0}b".to_string()]).as_bytes(),
    )));
    assert_eq!(result.unwrap().records, 1);
    assert_eq!(out.records[0].content, "a\u{0}b");
    assert_eq!(out.records[0].tag("parse_status"), Some("unparsed"));
    let (result, out) = run(&event_from_compressed(&gzip(
        payload((0..100_000).map(|i| format!("e{i}"))).as_bytes(),
    )));
    let summary = result.unwrap();
    assert_eq!((summary.records, out.records.len()), (100_000, 100_000));
    assert_eq!(out.records[99_999].content, "e99999");
    assert_eq!(
        summary.batches as usize,
        100_000usize.div_ceil(rds_mapper::config::DEFAULT_BATCH_MAX_RECORDS)
    );
}

#[test]
fn an_eventbridge_event_with_every_field_missing_is_still_one_record() {
    let (result, out) = run(br#"{"source":"aws.rds"}"#);
    assert_eq!(result.unwrap().records, 1);
    let r = &out.records[0];
    assert_eq!((r.time, r.content.as_str()), (1, r#"{"source":"aws.rds"}"#));
    assert_eq!(r.tag("level"), Some("info"));
    assert!(r.field("record_id").is_some());
}
