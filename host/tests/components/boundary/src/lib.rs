//! A test mapper of the current contract that sends one hand-built batch, so the tests check
//! the host's reading of each `sink` function against the WIT's words, not against the
//! library's own encoder. Config `mode`: `tagged` (`send-tagged`), `packed` (`send-packed`,
//! the same records), or a packed batch that breaks the layout: `bad-kind`, `bad-end`.
#![cfg(target_family = "wasm")]

wit_bindgen::generate!({ world: "rds-mapper", path: "../../../../wit" });

use exports::whatap::rds_mapper::mapper::Guest;
use whatap::rds_mapper::sink;
use whatap::rds_mapper::types::{ErrorKind, FieldValue, Invocation, LogRecord, MapError, MapperInfo, Summary};

struct Component;

fn s(v: &str) -> String {
    v.to_owned()
}

/// Two records of one stream: the second overrides the stream's `level` tag.
fn tagged() -> Result<(), String> {
    let stream = [(s("log_group"), s("/aws/rds/db")), (s("level"), s("info"))];
    let records = [
        LogRecord {
            category: s("#RDS_LOG"),
            time: 1_700_000_000_000,
            tags: vec![],
            fields: vec![
                (s("msg"), FieldValue::Text(s("é ok"))),
                (s("n"), FieldValue::Integer(-42)),
                (s("ratio"), FieldValue::Float(2.5)),
                (s("slow"), FieldValue::Boolean(true)),
            ],
            content: s("first"),
            line: 7,
        },
        LogRecord { category: s("#RDS_LOG"), time: 5, tags: vec![(s("level"), s("error"))], fields: vec![], content: s("second"), line: 0 },
    ];
    sink::send_tagged(&stream, &records)
}

/// The same batch, packed by hand as `wit/mapper.wit` lays it out.
fn packed(kind: i64, last_end: Option<u32>) -> Result<(), String> {
    let strings = [
        "log_group", "/aws/rds/db", "level", "info",
        "#RDS_LOG", "first", "msg", "é ok", "n", "ratio", "slow",
        "#RDS_LOG", "second", "level", "error",
    ];
    let mut text = String::new();
    let mut ends = Vec::new();
    for st in strings {
        text.push_str(st);
        ends.push(text.len() as u32);
    }
    if let Some(end) = last_end {
        *ends.last_mut().unwrap() = end;
    }
    let words = [
        2, 2, //
        1_700_000_000_000, 7, 0, 4, kind, 1, -42, 2, 2.5f64.to_bits() as i64, 3, 1, //
        5, 0, 1, 0,
    ];
    sink::send_packed(&text, &ends, &words)
}

impl Guest for Component {
    fn describe() -> MapperInfo {
        MapperInfo { name: s("boundary-mapper"), version: s("1.0.0-test"), contract: s("1.3.0") }
    }

    fn map_event(_event: Vec<u8>, context: Invocation) -> Result<Summary, MapError> {
        let mode = context.config.iter().find(|(k, _)| k == "mode").map(|(_, v)| v.as_str()).unwrap_or("packed");
        let sent = match mode {
            "tagged" => tagged(),
            // Word 6 is the first field's kind: text, which takes "é ok" as its value.
            "packed" => packed(0, None),
            "bad-kind" => packed(9, None),
            // Past the text: its last string ends at its length.
            "bad-end" => packed(0, Some(1000)),
            other => Err(format!("unknown mode {other}")),
        };
        sent.map_err(|message| MapError { kind: ErrorKind::Delivery, message })?;
        Ok(Summary { event_kind: s("test"), records: 2, batches: 1, skipped: vec![], split: 0 })
    }
}

export!(Component);
