//! The default mapping packs each entry straight from its parse; a mapping with a hook builds
//! each record for the hook and packs that. Both must deliver the same records in the same
//! batches, for every fixture event and for arbitrary messages, split and batched small.

use proptest::prelude::*;
use rds_mapper::{Collect, Hook, Invocation, Record, Summary, map_event, map_event_with};
use serde_json::{Value, json};

/// A hook that keeps every record as it is, but does not say so: the mapping builds each
/// record for it.
struct Keep;

impl Hook for Keep {
    fn record(&mut self, record: Record) -> Option<Record> {
        Some(record)
    }
}

fn invocation(config: &[(&str, &str)]) -> Invocation {
    Invocation {
        received_ms: 1_700_000_000_000,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Invocation::default()
    }
}

/// Maps `event` both ways and checks they agree; gives the records.
fn both_ways(event: &[u8], config: &[(&str, &str)]) -> (Summary, Vec<Record>) {
    let inv = invocation(config);
    let mut packed = Collect::default();
    let mut hooked = Collect::default();
    let a = map_event(event, &inv, &mut packed);
    let b = map_event_with(event, &inv, &mut hooked, &mut Keep);
    assert_eq!(a, b, "summaries");
    assert_eq!(packed.records, hooked.records, "records");
    assert_eq!(packed.batches, hooked.batches, "batches");
    let summary = a.expect("maps");
    assert_eq!(summary.records as usize, packed.records.len());
    assert_eq!(summary.batches as usize, packed.batches);
    (summary, packed.records)
}

const SMALL: &[(&str, &str)] = &[("batch_max_records", "3"), ("max_content_bytes", "40")];

#[test]
fn every_fixture_event_maps_the_same_packed_in_place_and_through_a_hook() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/events");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures/events") {
        let path = entry.expect("entry").path();
        let event = std::fs::read(&path).expect("event");
        let (summary, records) = both_ways(&event, &[]);
        let (small, parts) = both_ways(&event, SMALL);
        // Small batches and parts: the same content, cut finer.
        let whole: String = records.iter().map(|r| r.content.as_str()).collect();
        let cut: String = parts.iter().map(|r| r.content.as_str()).collect();
        assert_eq!(cut, whole, "{}", path.display());
        assert!(small.batches >= summary.batches, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 20, "only {seen} fixture events");
}

#[test]
fn parts_of_a_split_entry_keep_its_identity_either_way() {
    let entry = format!(
        "2024-01-19 13:20:43 UTC:h(1):u@d:[7]:LOG:  statement: SELECT '{}'",
        "é".repeat(50)
    );
    let (summary, parts) = both_ways(&awslogs("postgresql", std::slice::from_ref(&entry)), SMALL);
    assert_eq!(summary.split, 1);
    // 163 bytes in parts of at most 40, cut between characters.
    assert_eq!(parts.len(), 5);
    assert!(parts.iter().all(|p| p.content.len() <= 40));
    assert_eq!(
        parts.iter().map(|p| p.content.as_str()).collect::<String>(),
        entry
    );
    assert!(parts[0].field("statement").is_some());
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p.field("record_id"), parts[0].field("record_id"));
        assert_eq!(p.field("cw_event_id"), parts[0].field("cw_event_id"));
        assert_eq!(
            p.field("part"),
            Some(&rds_mapper::FieldValue::Integer(i as i64 + 1))
        );
        if i > 0 {
            assert_eq!(p.field("statement"), None);
        }
    }
}

#[test]
fn a_3_mib_entry_splits_the_same_either_way() {
    let entry = format!(
        "2024-01-19 13:20:43 UTC:h(1):u@d:[7]:LOG:  statement: SELECT '{}'",
        "x".repeat(3 << 20)
    );
    let (summary, parts) = both_ways(&awslogs("postgresql", std::slice::from_ref(&entry)), &[]);
    // 3,145,791 bytes in parts of at most 1,000,000.
    assert_eq!((summary.split, parts.len()), (1, 4));
    assert_eq!(
        parts.iter().map(|p| p.content.as_str()).collect::<String>(),
        entry
    );
    assert_eq!(
        parts[3].field("original_length"),
        Some(&rds_mapper::FieldValue::Integer(entry.len() as i64))
    );
}

fn awslogs(log_type: &str, messages: &[String]) -> Vec<u8> {
    let events: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"id": format!("3{i:055}"), "timestamp": 1_700_000_000_000i64 + i as i64, "message": m}))
        .collect();
    let payload = json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012",
        "logGroup": format!("/aws/rds/instance/db/{log_type}"), "logStream": "db",
        "subscriptionFilters": ["f"], "logEvents": events,
    });
    json!({"awslogs": {"data": rds_mapper::awslogs::encode(payload.to_string().as_bytes())}})
        .to_string()
        .into_bytes()
}

/// Messages made of what log lines are made of.
fn message() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("2023-11-28T09:13:22.104678Z 12 [Warning] [MY-010055] [Server] ".to_string()),
        Just("2024-01-21 17:56:55 UTC:10.0.0.1(5432):u@d:[7]:ERROR:  ".to_string()),
        Just("1645164733006686,host,user,localhost,5,1013,QUERY,db,'SELECT \\'x\\'',0".to_string()),
        Just("01-NOV-2021 17:19:26 * (CONNECT_DATA=(SID=x)) * establish * x * 0".to_string()),
        Just("2022-07-08 05:42:10.35 spid52      Error: 18456, Severity: 14".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("한".to_string()),
        "[ -~]{0,20}",
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_messages_map_the_same_packed_in_place_and_through_a_hook(
        log_type in prop::sample::select(vec!["error", "slowquery", "general", "audit", "postgresql", "alert", "listener", "agent", "proxy", "diag.log", "notify.log", "trace"]),
        messages in proptest::collection::vec(message(), 1..6),
    ) {
        both_ways(&awslogs(log_type, &messages), &[]);
        both_ways(&awslogs(log_type, &messages), SMALL);
    }
}

/// A batch the library packs, for the round-trip property test below.
fn packed_batch(contents: &[String], n: i64) -> rds_mapper::packed::Packed {
    let records: Vec<rds_mapper::Record> = contents
        .iter()
        .map(|c| {
            let mut r = rds_mapper::Record::new("#RDS_LOG", n, c.clone());
            r.set_tag("level", "info");
            r.set_field("text", rds_mapper::FieldValue::Text(c.clone()));
            r.set_field("n", rds_mapper::FieldValue::Integer(n));
            r.set_field("f", rds_mapper::FieldValue::Float(n as f64 / 3.0));
            r.set_field("b", rds_mapper::FieldValue::Boolean(n % 2 == 0));
            r
        })
        .collect();
    let mut p = rds_mapper::packed::Packed::default();
    p.pack(&records).unwrap();
    p
}

proptest::proptest! {
    /// The library's packing reads back as the records it packed; one word or end
    /// changed gives records or an error, never a panic.
    #[test]
    fn the_guest_librarys_packing_reads_back_and_survives_one_change(
        contents in proptest::collection::vec(".{0,12}", 0..6),
        n in proptest::num::i64::ANY,
        at in proptest::num::usize::ANY,
        to in proptest::num::i64::ANY,
    ) {
        let p = packed_batch(&contents, n);
        let u = rds_record::packed::Unpacked::read(p.text(), p.ends(), p.words()).unwrap();
        let records = u.records();
        proptest::prop_assert_eq!(records.len(), contents.len());
        for (r, c) in records.iter().zip(&contents) {
            proptest::prop_assert_eq!((r.content, r.time, r.tags), (c.as_str(), n, &[("level", "info")][..]));
            proptest::prop_assert_eq!(r.fields, &[
                ("text", rds_record::FieldRef::Text(c)),
                ("n", rds_record::FieldRef::Integer(n)),
                ("f", rds_record::FieldRef::Float(n as f64 / 3.0)),
                ("b", rds_record::FieldRef::Boolean(n % 2 == 0)),
            ][..]);
        }
        let mut words = p.words().to_vec();
        let mut ends = p.ends().to_vec();
        if at % 2 == 0 && !words.is_empty() {
            let i = at / 2 % words.len();
            words[i] = to;
        } else if !ends.is_empty() {
            let i = at / 2 % ends.len();
            ends[i] = to as u32;
        }
        let _ = rds_record::packed::Unpacked::read(p.text(), &ends, &words);
    }
}
