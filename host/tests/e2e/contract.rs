//! The host's side of each `sink` function, checked against a batch a test component builds by
//! hand from the WIT's description (`tests/components/boundary`), not by the library's own
//! encoder: `send-tagged` and `send-packed` deliver the same records, and a packed batch that
//! breaks the layout fails its invocation with the word or string at fault named.

use std::time::Duration;

use crate::common::*;
use rds_forwarder::sandbox::bindings::{FieldValue, LogRecord};
use rds_forwarder::sandbox::{Origin, RunError, Sandbox, SandboxLimits};
use rds_forwarder::sink::{Memory, into_memory};

async fn run(sandbox: &Sandbox, mode: &str) -> Result<Vec<LogRecord>, RunError> {
    let bytes = std::fs::read(test_component("boundary_mapper")).expect("test component");
    let mapper = sandbox
        .load(&bytes, Origin::Local("boundary_mapper.wasm".into()))
        .await
        .expect("loads");
    let ran = sandbox
        .run(
            &mapper,
            b"{}",
            &invocation(&[("mode", mode)]),
            Box::new(Memory::default()),
            Duration::from_secs(10),
        )
        .await;
    ran.result
        .map(|_| into_memory(ran.sink).expect("memory sink").records())
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn send_tagged_and_send_packed_deliver_the_same_records() {
    let sandbox = Sandbox::new(SandboxLimits::default());
    let expected = vec![
        LogRecord {
            category: "#RDS_LOG".into(),
            time: 1_700_000_000_000,
            tags: pairs(&[("log_group", "/aws/rds/db"), ("level", "info")]),
            fields: vec![
                ("msg".into(), FieldValue::Text("é ok".into())),
                ("n".into(), FieldValue::Integer(-42)),
                ("ratio".into(), FieldValue::Float(2.5)),
                ("slow".into(), FieldValue::Boolean(true)),
            ],
            content: "first".into(),
            line: 7,
        },
        LogRecord {
            category: "#RDS_LOG".into(),
            time: 5,
            // The record's own `level` replaces the stream's in its place.
            tags: pairs(&[("log_group", "/aws/rds/db"), ("level", "error")]),
            fields: vec![],
            content: "second".into(),
            line: 0,
        },
    ];
    assert_eq!(run(&sandbox, "tagged").await.unwrap(), expected);
    assert_eq!(run(&sandbox, "packed").await.unwrap(), expected);
}

#[tokio::test(flavor = "current_thread")]
async fn a_packed_batch_against_the_layout_fails_naming_what_is_wrong() {
    let sandbox = Sandbox::new(SandboxLimits::default());
    for (mode, why) in [
        (
            "bad-kind",
            "the mapper's sink.send-packed batch breaks the layout: \
             word 6 is field kind 9, not 0 (text) to 3 (boolean)",
        ),
        (
            "bad-end",
            "the mapper's sink.send-packed batch breaks the layout: \
             string 14 (a tag's value) ends at 1000, past the text's 84 bytes",
        ),
    ] {
        let e = run(&sandbox, mode).await.unwrap_err();
        assert!(matches!(e, RunError::Trap(_)), "{mode}: {e}");
        assert!(e.to_string().contains(why), "{mode}: {e}");
    }
    // The sandbox is not left broken: the next invocation delivers.
    assert_eq!(run(&sandbox, "packed").await.unwrap().len(), 2);
}
