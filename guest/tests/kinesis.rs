//! Kinesis events (what a CloudWatch Logs destination writes to a stream) map to the same
//! records as the same payloads delivered as `awslogs` events; an item that cannot be decoded
//! is reported by its sequence number while the others are mapped.

use std::path::Path;

use rds_mapper::{Collect, Invocation, Record, awslogs, kinesis, map_event};
use serde_json::Value;

fn events_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/events")
}

fn invocation() -> Invocation {
    Invocation {
        received_ms: 1_700_000_000_000,
        ..Invocation::default()
    }
}

/// Every `awslogs` fixture event's decoded payload, by file name.
fn payloads() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(events_dir())
        .expect("fixtures/events")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("awslogs-"))
        })
        .map(|p| {
            let event: Value = serde_json::from_slice(&std::fs::read(&p).expect("read")).unwrap();
            let data = event["awslogs"]["data"].as_str().expect("awslogs.data");
            let json = awslogs::decode(data, 64 << 20).expect("decodes");
            (p.file_name().unwrap().to_string_lossy().into_owned(), json)
        })
        .collect();
    out.sort();
    out
}

fn map(event: &[u8]) -> (rds_mapper::Summary, Collect) {
    let mut out = Collect::default();
    let summary = map_event(event, &invocation(), &mut out).expect("maps");
    (summary, out)
}

#[test]
fn every_fixture_payload_maps_the_same_through_kinesis() {
    let payloads = payloads();
    assert!(payloads.len() >= 10, "{}", payloads.len());
    // The records of each payload as an awslogs event, in order.
    let mut expected: Vec<Record> = Vec::new();
    let mut controls = 0;
    for (name, json) in &payloads {
        let event = format!(r#"{{"awslogs":{{"data":"{}"}}}}"#, awslogs::encode(json));
        let (summary, out) = map(event.as_bytes());
        if summary.event_kind == "awslogs-control" {
            controls += 1;
        }
        assert!(out.failed_items.is_empty(), "{name}");
        expected.extend(out.records);
    }
    // All of them as the items of one Kinesis event.
    let items: Vec<&[u8]> = payloads.iter().map(|(_, j)| j.as_slice()).collect();
    let event = kinesis::event(&items, 100);
    let (summary, out) = map(event.as_bytes());
    assert_eq!(summary.event_kind, "kinesis");
    assert_eq!(
        out.records, expected,
        "records, ids and all, as awslogs gives them"
    );
    assert_eq!(summary.records as usize, expected.len());
    assert!(out.failed_items.is_empty());
    assert_eq!(
        summary.skipped,
        vec![("control-message".to_string(), controls)],
        "a destination forwards CloudWatch's control message too"
    );
}

#[test]
fn a_corrupt_item_is_reported_and_the_others_are_mapped() {
    let payloads = payloads();
    let good = |name: &str| {
        payloads
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, j)| j.as_slice())
            .expect(name)
    };
    let event = kinesis::event(
        &[
            good("awslogs-postgresql.json"),
            b"not a payload",
            good("awslogs-mysql-error.json"),
        ],
        7,
    );
    // The second item is gzip'd but not a CloudWatch Logs payload, as another producer might
    // write to the stream; and a fourth item is not even base64.
    let mut root: Value = serde_json::from_str(&event).unwrap();
    let mut extra = root["Records"][0].clone();
    extra["kinesis"]["sequenceNumber"] = "10".into();
    extra["kinesis"]["data"] = "!!not base64!!".into();
    root["Records"].as_array_mut().unwrap().push(extra);
    let (summary, out) = map(root.to_string().as_bytes());
    let alone = |name: &str| {
        let event = format!(
            r#"{{"awslogs":{{"data":"{}"}}}}"#,
            awslogs::encode(good(name))
        );
        map(event.as_bytes()).1.records
    };
    let mut expected = alone("awslogs-postgresql.json");
    expected.extend(alone("awslogs-mysql-error.json"));
    assert_eq!(out.records, expected);
    let failed: Vec<(&str, &str)> = out
        .failed_items
        .iter()
        .map(|(i, r)| (i.as_str(), r.as_str()))
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0].0, "8");
    assert!(
        failed[0]
            .1
            .starts_with("kinesis.data is not a CloudWatch Logs payload"),
        "{}",
        failed[0].1
    );
    assert_eq!(failed[1].0, "10");
    assert!(
        failed[1].1.starts_with("kinesis.data is not valid base64"),
        "{}",
        failed[1].1
    );
    assert_eq!(summary.skipped, vec![("item-failed".to_string(), 2)]);
}

#[test]
fn the_fixture_kinesis_events() {
    let read = |name: &str| std::fs::read(events_dir().join(name)).expect(name);
    let (summary, out) = map(&read("kinesis-cloudwatch-logs.json"));
    assert_eq!(
        (
            summary.event_kind.as_str(),
            summary.records,
            out.failed_items.len()
        ),
        ("kinesis", out.records.len() as u32, 0)
    );
    assert_eq!(summary.skipped, vec![("control-message".to_string(), 1)]);
    let partial = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/partial");
    let (summary, out) = map(&std::fs::read(partial.join("kinesis-corrupt-item.json")).unwrap());
    assert_eq!(out.failed_items.len(), 1);
    assert_eq!(
        out.failed_items[0].0,
        "49590338271490256608559692538361571095921575989136588802"
    );
    assert_eq!(summary.skipped, vec![("item-failed".to_string(), 1)]);
    assert!(summary.records > 0);
}

#[test]
fn decode_only_reads_every_item() {
    let event = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/partial/kinesis-corrupt-item.json"),
    )
    .unwrap();
    let mut out = Collect::default();
    let invocation = Invocation {
        config: vec![("decode_only".into(), "true".into())],
        ..invocation()
    };
    let summary = map_event(&event, &invocation, &mut out).unwrap();
    assert_eq!((summary.records, out.records.len()), (0, 0));
    assert_eq!(
        out.failed_items.len(),
        1,
        "decoding alone finds the corrupt item"
    );
    assert_eq!(summary.skipped[0].0, "decode-only");
}
