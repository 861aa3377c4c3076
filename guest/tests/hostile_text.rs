//! Arbitrary text and truncated real entries, through every log type's parser and the whole
//! mapping: never a panic, never a lost byte (the entries always rejoin to the message).

use proptest::prelude::*;

mod common;

use common::check;

/// Text made of the pieces log lines are made of, so the parsers get past their first checks.
fn log_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("2023-11-28T09:13:22.104678Z ".to_string()),
        Just("2022-07-08 05:42:10.35 ".to_string()),
        Just("2024-01-21 17:56:55 UTC:".to_string()),
        Just("231128  9:13:22 ".to_string()),
        Just("1645164733006686,".to_string()),
        Just("20221201 14:07:05,".to_string()),
        Just("01-NOV-2021 17:19:26 * ".to_string()),
        Just("# Time: ".to_string()),
        Just("# User@Host: ".to_string()),
        Just("[Warning] [MY-010055] ".to_string()),
        Just(":[123]:LOG:  duration: ".to_string()),
        Just("'\\'',".to_string()),
        Just("(PID:".to_string()),
        Just("\n".to_string()),
        Just("\t".to_string()),
        Just("한".to_string()),
        Just("\u{0}".to_string()),
        "[ -~]{0,12}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics_or_loses_bytes(s in ".{0,300}") {
        check(&s);
    }

    #[test]
    fn log_like_text_never_panics_or_loses_bytes(s in log_like()) {
        check(&s);
    }

    #[test]
    fn crlf_text_never_loses_bytes(s in log_like().prop_map(|s| s.replace('\n', "\r\n"))) {
        check(&s);
    }

    #[test]
    fn arbitrary_bytes_as_an_event_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut out = rds_mapper::Collect::default();
        let _ = rds_mapper::map_event(&bytes, &rds_mapper::Invocation::default(), &mut out);
    }
}

#[test]
fn every_truncation_of_every_real_entry_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/logs");
    for entry in std::fs::read_dir(&dir).expect("fixtures/logs") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("sample");
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("#%")).collect();
        let body = body.join("\n");
        for (cut, _) in body.char_indices().step_by(3) {
            check(&body[..cut]);
            check(&body[cut..]);
        }
    }
}

/// A message holding a lone surrogate escape (JSON allows it, UTF-8 cannot hold it) keeps its
/// text, with U+FFFD in the surrogate's place, and says so: never an empty record.
#[test]
fn a_lone_surrogate_keeps_the_message_and_says_it_was_repaired() {
    let payload = br#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/rds/instance/db/postgresql","logStream":"db.0","subscriptionFilters":[],"logEvents":[{"id":"1","timestamp":1700000000000,"message":"2024-01-19 13:20:43 UTC:10.0.0.1(5432):app@db:[7]:LOG:  statement: SELECT '\ud800'"}]}"#;
    let event = format!(
        r#"{{"awslogs":{{"data":"{}"}}}}"#,
        rds_mapper::awslogs::encode(payload)
    );
    let invocation = rds_mapper::Invocation {
        request_id: "t".into(),
        function_name: "f".into(),
        deadline_ms: i64::MAX,
        received_ms: 0,
        config: Vec::new(),
    };
    let mut out = rds_mapper::Collect::default();
    let summary = rds_mapper::map_event(event.as_bytes(), &invocation, &mut out).unwrap();
    assert_eq!(summary.records, 1);
    let record = &out.records[0];
    assert_eq!(
        record.content,
        "2024-01-19 13:20:43 UTC:10.0.0.1(5432):app@db:[7]:LOG:  statement: SELECT '\u{fffd}'"
    );
    let tag = |k: &str| {
        record
            .tags
            .iter()
            .find(|(t, _)| t == k)
            .map(|(_, v)| v.to_string())
    };
    assert_eq!(tag("parse_status").as_deref(), Some("repaired"));
    let field = record
        .fields
        .iter()
        .find(|(k, _)| k == "parse_error")
        .map(|(_, v)| v.clone());
    assert_eq!(
        field,
        Some(rds_mapper::FieldValue::Text(
            rds_mapper::escapes::REPAIRED_ESCAPE.to_owned()
        ))
    );
}

/// The same in an RDS event: the event maps, its text keeps U+FFFD, and the record says so.
#[test]
fn a_lone_surrogate_in_an_rds_event_keeps_the_event() {
    let event = br#"{"source":"aws.rds","detail-type":"RDS DB Instance Event","id":"e1","time":"2024-01-19T13:20:43Z","detail":{"Message":"Finished \ud800 backup","SourceIdentifier":"db1","SourceType":"DB_INSTANCE"}}"#;
    let invocation = rds_mapper::Invocation::default();
    let mut out = rds_mapper::Collect::default();
    let summary = rds_mapper::map_event(event, &invocation, &mut out).unwrap();
    assert_eq!(summary.records, 1);
    let record = &out.records[0];
    assert_eq!(record.content, "Finished \u{fffd} backup");
    assert_eq!(record.tag("parse_status"), Some("repaired"));
}
