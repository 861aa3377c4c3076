//! The example custom mappers (`guest/examples/mappers`), built as components by this test:
//! they pass `describe`, pass `test-mapper` on their fixtures, and do what they promise
//! (redacted text gone, dropped lines absent and counted, added fields present and typed).

use std::path::PathBuf;

use crate::common::*;

fn examples() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest/examples/mappers/fixtures")
}

#[test]
fn both_examples_describe_themselves_and_pass_their_fixtures() {
    for (mapper, name, fixtures) in [
        ("redact_drop_mapper", "redact-drop-example", "redact-drop"),
        ("app_field_mapper", "app-field-example", "app-field"),
    ] {
        let wasm = example_mapper(mapper);
        let out = forwarder(&["describe", "--mapper", wasm.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (
                info["name"].as_str(),
                info["version"].as_str(),
                info["contract"].as_str()
            ),
            (Some(name), Some("1.0.0"), Some("1.3.0"))
        );
        let dir = examples().join(fixtures);
        let out = forwarder(&[
            "test-mapper",
            "--mapper",
            wasm.to_str().unwrap(),
            dir.to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {text}");
        assert!(
            text.lines().last().unwrap().ends_with(" passed, 0 failed"),
            "{text}"
        );
    }
}

#[test]
fn the_redacting_mapper_removes_secrets_and_drops_rds_noise() {
    let wasm = example_mapper("redact_drop_mapper");
    let event = examples().join("redact-drop/events/audit-with-secrets.synthetic.json");
    let out = forwarder(&[
        "invoke",
        "--summary",
        "--mapper",
        wasm.to_str().unwrap(),
        event.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    for secret in ["hunter2", "jane.doe@example.com", "rds_heartbeat2"] {
        assert!(!printed.contains(secret), "{secret} reached the output");
    }
    let records = json_lines(&printed);
    assert_eq!(records.len(), 2, "the rdsadmin heartbeat is dropped");
    assert_eq!(
        records[0]["fields"]["statement"],
        "CREATE USER 'bob'@'%' IDENTIFIED BY '***'"
    );
    assert_eq!(
        records[1]["fields"]["statement"],
        "UPDATE customers SET email = '<email>' WHERE id = 7"
    );
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stderr).lines().last().unwrap()).unwrap();
    assert_eq!(
        summary["skipped"]["dropped-by-mapper"], 1,
        "the drop is counted, not silent"
    );
    assert_eq!(summary["records"], 2);
    // The same event through the default mapper keeps all three (and the secrets).
    let out = forwarder(&["invoke", event.to_str().unwrap()]);
    assert_eq!(json_lines(&String::from_utf8_lossy(&out.stdout)).len(), 3);
}

#[test]
fn the_app_mapper_adds_typed_fields_from_a_custom_log_line() {
    let wasm = example_mapper("app_field_mapper");
    let event = examples().join("app-field/events/app-log.synthetic.json");
    let out = forwarder(&[
        "invoke",
        "--mapper",
        wasm.to_str().unwrap(),
        event.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["fields"]["order_id"], 42);
    assert_eq!(records[0]["fields"]["latency_ms"], 12.5);
    assert_eq!(records[0]["fields"]["msg"], "slow");
    assert_eq!(
        records[0]["tags"]["level"], "warning",
        "level= becomes the record's level"
    );
    assert_eq!(records[1]["tags"]["level"], "info");
}
