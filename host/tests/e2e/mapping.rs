//! Every fixture event through the embedded component and through the native library: the
//! same records both ways, equal to the expected records field by field.

use crate::common::*;

#[tokio::test(flavor = "current_thread")]
async fn wasm_and_native_give_identical_records_equal_to_expected() {
    let sandbox = sandbox();
    for event_path in fixture_files("events") {
        let name = event_path.display().to_string();
        let event = std::fs::read(&event_path).expect("fixture");
        let (wasm_summary, wasm) = run_wasm(&sandbox, &event)
            .await
            .unwrap_or_else(|e| panic!("{name}: wasm: {e}"));
        let (native_summary, native) =
            run_native(&event).unwrap_or_else(|e| panic!("{name}: native: {e}"));
        assert_same_records(&format!("{name} (wasm vs native)"), &wasm, &native);
        assert_eq!(
            wasm_summary.records as usize,
            wasm.len(),
            "{name}: summary count"
        );
        assert_eq!(wasm_summary.records, native_summary.records, "{name}");
        assert_eq!(wasm_summary.event_kind, native_summary.event_kind, "{name}");
        let expected = expected_records(&event_path, &wasm);
        assert_same_records(&name, &wasm, &expected);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn control_message_yields_no_records_and_is_counted() {
    let sandbox = sandbox();
    let event = std::fs::read(fixtures().join("events/awslogs-control-message.json")).unwrap();
    let (summary, records) = run_wasm(&sandbox, &event).await.unwrap();
    assert!(records.is_empty());
    assert_eq!(summary.event_kind, "awslogs-control");
    assert_eq!(summary.batches, 0);
    assert_eq!(summary.skipped.len(), 1);
    assert_eq!(
        (summary.skipped[0].reason.as_str(), summary.skipped[0].count),
        ("control-message", 1)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn awslogs_tags_come_from_group_and_stream() {
    let sandbox = sandbox();
    let event = std::fs::read(fixtures().join("events/awslogs-aurora-mysql-audit.json")).unwrap();
    let (_, records) = run_wasm(&sandbox, &event).await.unwrap();
    let r = &records[1];
    assert_eq!(r["category"], "#RDS_LOG");
    assert_eq!(r["time"], 1645164733006i64);
    let tags = &r["tags"];
    assert_eq!(tags["logGroup"], "/aws/rds/cluster/myaudb/audit");
    assert_eq!(tags["logStream"], "myaudb-instance-1.audit.log.1");
    assert_eq!(tags["db_identifier"], "myaudb");
    assert_eq!(tags["scope"], "cluster");
    assert_eq!(tags["log_type"], "audit");
    assert_eq!(tags["instance"], "myaudb-instance-1");
    assert_eq!(tags["account"], "123456789012");
    // The CloudWatch event id only when asked for: `record_id` already tells a redelivery.
    assert!(r["fields"].get("cw_event_id").is_none(), "{r}");
    assert_eq!(r["fields"]["record_id"].as_str().map(str::len), Some(16));
    assert_eq!(
        r["content"],
        "1645164733006789,myaudb-instance-1,rdsadmin,localhost,5,1013,QUERY,mysql,'SELECT count(*) from mysql.plugin WHERE name = \\'AWSAuthenticationPlugin\\'',0"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_cloudwatch_event_id_is_a_field_when_asked_for() {
    let sandbox = sandbox();
    let event = std::fs::read(fixtures().join("events/awslogs-aurora-mysql-audit.json")).unwrap();
    let (_, plain) = run_wasm(&sandbox, &event).await.unwrap();
    let (_, with_ids) = run_wasm_with(&sandbox, &event, &[("cw_event_id", "true")])
        .await
        .unwrap();
    let r = &with_ids[1];
    assert_eq!(
        r["fields"]["cw_event_id"],
        "37000000000000000000000000000000000000000000000000000006"
    );
    assert!(
        r["tags"].get("cw_event_id").is_none(),
        "unique per event: a field, not a tag"
    );
    // Nothing else changes, the record id included.
    assert_eq!(plain.len(), with_ids.len());
    for (a, b) in plain.iter().zip(&with_ids) {
        let mut b = b.clone();
        b["fields"].as_object_mut().unwrap().remove("cw_event_id");
        assert_eq!(*a, b);
    }
    let err = run_wasm_with(&sandbox, &event, &[("cw_event_id", "yes")])
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cw_event_id must be true or false, got \"yes\""),
        "{err}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn rds_event_tags_and_severity() {
    let sandbox = sandbox();
    let event =
        std::fs::read(fixtures().join("events/rds-db-instance-event.failover.json")).unwrap();
    let (summary, records) = run_wasm(&sandbox, &event).await.unwrap();
    assert_eq!(summary.event_kind, "rds-event");
    let r = &records[0];
    assert_eq!(r["category"], "#RDS_EVENT");
    assert_eq!(r["content"], "A Multi-AZ failover has completed.");
    assert_eq!(r["time"], 1538087803292i64); // detail.Date, not the envelope's whole second
    let tags = &r["tags"];
    assert_eq!(tags["event_id"], "RDS-EVENT-0049");
    assert_eq!(tags["source_identifier"], "my-db-instance");
    assert_eq!(tags["source_identifier_raw"], "rds:my-db-instance");
    assert_eq!(tags["source_type"], "DB_INSTANCE");
    assert_eq!(tags["event_categories"], "failover");
    assert_eq!(tags["detail_type"], "RDS DB Instance Event");
    assert_eq!(tags["region"], "us-east-1");
    assert_eq!(
        tags["source_arn"],
        "arn:aws:rds:us-east-1:123456789012:db:my-db-instance"
    );
    assert_eq!(tags["level"], "warning");

    let event =
        std::fs::read(fixtures().join("events/rds-db-instance-event.backup-no-eventid.json"))
            .unwrap();
    let (_, records) = run_wasm(&sandbox, &event).await.unwrap();
    assert!(
        records[0]["tags"].get("event_id").is_none(),
        "a missing EventID adds no tag"
    );
    assert_eq!(records[0]["tags"]["level"], "info");
}

#[test]
fn every_awslogs_event_fixture_decodes_to_its_payload() {
    for payload_path in fixture_files("awslogs") {
        let stem = payload_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".payload.json", "");
        let event_path = fixtures()
            .join("events")
            .join(format!("awslogs-{stem}.json"));
        let event: serde_json::Value = serde_json::from_slice(&std::fs::read(&event_path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", event_path.display()));
        let data = event["awslogs"]["data"].as_str().expect("awslogs.data");
        let decoded = rds_mapper::awslogs::decode(data, 1 << 24).expect("decodes");
        let decoded: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
        let payload: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&payload_path).unwrap()).unwrap();
        assert_eq!(
            decoded,
            payload,
            "{} is stale: re-encode it from {}",
            event_path.display(),
            payload_path.display()
        );
    }
}
