//! The real binary in Lambda mode, against the Runtime API emulator on 127.0.0.1, with the
//! collector emulator as WhaTap: events in, records at the collector, summaries (or typed
//! errors) back, JSON log lines out; and the mapper hot-swapped from a local S3 (moto).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::collector::{CollectorProcess, test_license};
use crate::common::*;
use rds_forwarder_tools::runtime_api::{Outcome, RuntimeApi};

const ANSWER_WITHIN: Duration = Duration::from_secs(30);

struct Bootstrap {
    child: Child,
    log: tempfile::NamedTempFile,
    /// Refusals are remembered here (`RDS_FORWARDER_STATE_DIR`) unless a test names its own.
    _state: tempfile::TempDir,
}

impl Bootstrap {
    /// Starts `rds-forwarder` with no arguments, as Lambda starts `bootstrap`.
    fn start(
        api: &RuntimeApi,
        collector: &CollectorProcess,
        extra: &[(&str, String)],
    ) -> Bootstrap {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let state = tempfile::tempdir().expect("state dir");
        let mut cmd = crate::common::forwarder_cmd();
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "rds-forwarder-test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("WHATAP_HOST", collector.addr.ip().to_string())
            .env("WHATAP_PORT", collector.addr.port().to_string())
            .env("WHATAP_LICENSE", test_license())
            .env("LOG_LEVEL", "info")
            .env("RDS_FORWARDER_STATE_DIR", state.path())
            .stdout(Stdio::from(log.reopen().expect("log")))
            .stderr(Stdio::from(log.reopen().expect("log")));
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Bootstrap {
            child: cmd.spawn().expect("starting the bootstrap"),
            log,
            _state: state,
        }
    }

    /// Started against a collector that is stopped at once (its port is closed), with a short
    /// send budget: every delivery fails.
    fn without_a_collector(api: &RuntimeApi) -> Bootstrap {
        let gone = CollectorProcess::start(&test_license());
        let lambda = Bootstrap::start(
            api,
            &gone,
            &[
                ("WHATAP_SEND_BUDGET_MS", "1500".into()),
                ("WHATAP_CONNECT_TIMEOUT_MS", "300".into()),
            ],
        );
        let _ = gone.finish();
        lambda
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Bootstrap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("events").join(name)).expect("fixture")
}

fn response(api: &RuntimeApi, id: &str) -> serde_json::Value {
    match api.outcome(id, ANSWER_WITHIN) {
        Some(Outcome::Response(v)) => v,
        other => panic!("{id}: expected a response, got {other:?}"),
    }
}

/// The last log line containing `what`.
fn line_of(logs: &str, what: &str) -> String {
    logs.lines()
        .rfind(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no {what:?} line in {logs}"))
        .to_owned()
}

/// The error an invocation answered with.
fn error_of(api: &RuntimeApi, id: &str) -> (String, String) {
    match api.outcome(id, ANSWER_WITHIN) {
        Some(Outcome::Error {
            error_type,
            message,
        }) => (error_type, message),
        other => panic!("{id}: expected an error, got {other:?}"),
    }
}

#[test]
fn events_in_records_at_the_collector_summaries_back() {
    let collector = CollectorProcess::start(&test_license());
    let api = RuntimeApi::start();
    // Mapper settings reach the mapper: one record per batch.
    let lambda = Bootstrap::start(
        &api,
        &collector,
        &[("MAPPER_SETTINGS", "batch_max_records=1".into())],
    );
    api.invoke(
        "req-logs",
        &fixture("awslogs-postgresql.json"),
        ANSWER_WITHIN,
    );
    api.invoke(
        "req-event",
        &fixture("rds-db-instance-event.failover.json"),
        ANSWER_WITHIN,
    );
    api.invoke(
        "req-control",
        &fixture("awslogs-control-message.json"),
        ANSWER_WITHIN,
    );
    api.invoke(
        "req-bad",
        &std::fs::read(fixtures().join("bad/invalid-base64.json")).unwrap(),
        ANSWER_WITHIN,
    );

    let logs = response(&api, "req-logs");
    assert_eq!(logs["records"], 3);
    assert_eq!(logs["batches"], 3, "MAPPER_SETTINGS batch_max_records=1");
    assert_eq!(logs["event_kind"], "awslogs");
    assert_eq!(
        logs["mapper"],
        format!("rds-mapper@{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(logs["request_id"], "req-logs");
    assert_eq!(response(&api, "req-event")["records"], 1);
    let control = response(&api, "req-control");
    assert_eq!(
        (
            control["records"].clone(),
            control["skipped"]["control-message"].clone()
        ),
        (0.into(), 1.into())
    );
    let (error_type, message) = error_of(&api, "req-bad");
    assert_eq!(error_type, "BadEvent");
    assert!(
        message.starts_with("awslogs.data is not valid base64"),
        "{message}"
    );

    // What reached the collector is what `invoke` maps (receive time aside: none is used).
    let printed = crate::common::forwarder_cmd()
        .args(["invoke"])
        .arg(fixtures().join("events/awslogs-postgresql.json"))
        .arg(fixtures().join("events/rds-db-instance-event.failover.json"))
        .output()
        .unwrap();
    let expected = json_lines(&String::from_utf8_lossy(&printed.stdout));
    collector.wait_for(expected.len());
    let (received, problems) = collector.finish();
    assert_same_records("lambda → collector", &json_lines(&received), &expected);
    assert!(!problems.contains("collector: "), "{problems}");

    // JSON log lines naming the request and the mapper; never the license.
    let log = lambda.logs();
    let done: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "Invocation mapped and delivered.")
        .collect();
    assert_eq!(done.len(), 3, "{log}");
    assert_eq!(done[0]["request_id"], "req-logs");
    assert_eq!(
        done[0]["mapper"],
        format!("rds-mapper@{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(log.contains("\"error_type\":\"BadEvent\""), "{log}");
    assert!(
        !log.contains(&test_license()),
        "the license leaked into the logs"
    );
}

#[test]
fn an_unreachable_collector_fails_the_invocation_as_retryable_delivery() {
    let api = RuntimeApi::start();
    let lambda = Bootstrap::without_a_collector(&api);
    api.invoke("req-1", &fixture("rds-db-proxy-event.json"), ANSWER_WITHIN);
    let (error_type, message) = error_of(&api, "req-1");
    assert_eq!(error_type, "DeliveryFailed", "{}", lambda.logs());
    assert!(
        message.starts_with("delivery failed: could not deliver 1 records to WhaTap (127.0.0.1)"),
        "{message}"
    );
}

/// A Kinesis event is answered with Lambda's partial batch response: nothing to retry, or
/// only the item that could not be decoded (the others delivered); and every item when
/// delivery fails.
#[test]
fn kinesis_events_get_a_partial_batch_response() {
    let seq = |i: u32| format!("4959033827149025660855969253836157109592157598913658880{i}");
    let collector = CollectorProcess::start(&test_license());
    let api = RuntimeApi::start();
    let lambda = Bootstrap::start(&api, &collector, &[]);
    api.invoke(
        "req-good",
        &fixture("kinesis-cloudwatch-logs.json"),
        ANSWER_WITHIN,
    );
    api.invoke(
        "req-corrupt",
        &std::fs::read(fixtures().join("partial/kinesis-corrupt-item.json")).unwrap(),
        ANSWER_WITHIN,
    );
    let good = response(&api, "req-good");
    assert_eq!(good["batchItemFailures"], serde_json::json!([]), "{good}");
    assert!(good["records"].as_u64().unwrap() > 0);
    let corrupt = response(&api, "req-corrupt");
    assert_eq!(
        corrupt["batchItemFailures"],
        serde_json::json!([{ "itemIdentifier": seq(2) }])
    );
    // What the good items held reached the collector.
    let delivered = good["records"].as_u64().unwrap() + corrupt["records"].as_u64().unwrap();
    collector.wait_for(delivered as usize);
    let logs = lambda.logs();
    let failed = line_of(&logs, "Kinesis item not mapped");
    assert!(
        failed.contains(&seq(2)) && failed.contains("truncated or corrupt"),
        "{failed}"
    );
    drop(lambda);
    let _ = collector.finish();

    let api = RuntimeApi::start();
    let lambda = Bootstrap::without_a_collector(&api);
    api.invoke(
        "req-1",
        &fixture("kinesis-cloudwatch-logs.json"),
        ANSWER_WITHIN,
    );
    let answer = response(&api, "req-1");
    let all: Vec<serde_json::Value> = (1..=3)
        .map(|i| serde_json::json!({ "itemIdentifier": seq(i) }))
        .collect();
    assert_eq!(answer["batchItemFailures"], serde_json::Value::from(all));
    assert_eq!(answer["error_type"], "DeliveryFailed", "{}", lambda.logs());
    assert!(lambda.logs().contains("every Kinesis item will be retried"));
}

/// Checks an Embedded Metric Format document against the specification's rules: `_aws` with a
/// numeric `Timestamp` and `CloudWatchMetrics` directives, each with a `Namespace`, dimension
/// sets (at most 30 keys, each a string member of the root) and metric definitions (at most
/// 100, a `Name` each, a known `Unit` if any), every metric a number (or a list of at most 100
/// numbers) of the root.
fn emf_problems(doc: &serde_json::Value) -> Vec<String> {
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let mut problems = Vec::new();
    let Some(aws) = doc.get("_aws").and_then(|a| a.as_object()) else {
        return vec!["no _aws object".into()];
    };
    if !aws
        .get("Timestamp")
        .is_some_and(|t| t.is_i64() || t.is_u64())
    {
        problems.push("_aws.Timestamp is not a number of epoch ms".into());
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(|d| d.as_array()) else {
        problems.push("_aws.CloudWatchMetrics is not an array".into());
        return problems;
    };
    for d in directives {
        match d["Namespace"].as_str() {
            Some(ns) if !ns.is_empty() && ns.len() <= 255 => {}
            _ => problems.push("a directive's Namespace is missing or out of bounds".into()),
        }
        for set in d["Dimensions"].as_array().into_iter().flatten() {
            let keys = set.as_array().cloned().unwrap_or_default();
            if keys.len() > 30 {
                problems.push("a dimension set has more than 30 keys".into());
            }
            for k in keys {
                let key = k.as_str().unwrap_or_default();
                match doc.get(key).and_then(|v| v.as_str()) {
                    Some(v) if !v.is_empty() && v.len() <= 1024 => {}
                    _ => problems.push(format!("dimension {key} is not a string member")),
                }
            }
        }
        if !d["Dimensions"].is_array() {
            problems.push("a directive has no Dimensions array".into());
        }
        let metrics = d["Metrics"].as_array().cloned().unwrap_or_default();
        if metrics.is_empty() || metrics.len() > 100 {
            problems.push(format!("{} metric definitions", metrics.len()));
        }
        for m in metrics {
            let name = m["Name"].as_str().unwrap_or_default();
            if name.is_empty() || name.len() > 255 {
                problems.push("a metric definition without a valid Name".into());
            }
            if let Some(unit) = m.get("Unit")
                && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
            {
                problems.push(format!("{name}: unknown unit {unit}"));
            }
            let value = &doc[name];
            let ok = value.is_number()
                || value
                    .as_array()
                    .is_some_and(|a| a.len() <= 100 && a.iter().all(|v| v.is_number()));
            if !ok {
                problems.push(format!("metric {name} is not a number of the root"));
            }
        }
    }
    problems
}

/// Each invocation writes one EMF line; it passes the specification's checks, and its values
/// are the invocation's summary.
#[test]
fn each_invocation_writes_one_emf_line_with_the_summarys_values() {
    let collector = CollectorProcess::start(&test_license());
    let api = RuntimeApi::start();
    let lambda = Bootstrap::start(
        &api,
        &collector,
        &[("MAPPER_SETTINGS", "batch_max_records=2".into())],
    );
    let ids = ["req-logs", "req-control", "req-event", "req-bad"];
    let events = [
        fixture("awslogs-postgresql.json"),
        fixture("awslogs-control-message.json"),
        fixture("rds-db-instance-event.failover.json"),
        std::fs::read(fixtures().join("bad/invalid-base64.json")).unwrap(),
    ];
    for (id, event) in ids.iter().zip(&events) {
        api.invoke(id, event, ANSWER_WITHIN);
    }
    let summaries: Vec<serde_json::Value> = ids[..3].iter().map(|id| response(&api, id)).collect();
    let (error_type, _) = error_of(&api, "req-bad");
    let logs = lambda.logs();
    let emf: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 4, "one line per invocation: {logs}");
    for line in &emf {
        assert_eq!(emf_problems(line), Vec::<String>::new(), "{line}");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "RDSForwarder"
        );
        assert_eq!(line["Function"], "rds-forwarder-test");
    }
    for (i, summary) in summaries.iter().enumerate() {
        let line = &emf[i];
        assert_eq!(line["RequestId"], ids[i]);
        assert_eq!(line["Mapper"], summary["mapper"]);
        assert_eq!(line["EventKind"], summary["event_kind"]);
        for (metric, key) in [
            ("Records", "records"),
            ("Batches", "batches"),
            ("Split", "split"),
            ("InputBytes", "input_bytes"),
            ("WireBytes", "wire_bytes"),
            ("DeliveryAttempts", "delivery_attempts"),
            ("FailedDeliveryAttempts", "failed_delivery_attempts"),
        ] {
            assert_eq!(line[metric], summary[key], "{metric} of {}", ids[i]);
        }
        for (reason, count) in summary["skipped"].as_object().unwrap() {
            assert_eq!(&line[format!("Skipped.{reason}")], count);
        }
        assert_eq!(line["Failed"], 0);
        // The event's JSON as Lambda passes it (the file's last newline is not part of it).
        assert_eq!(line["InputBytes"], events[i].trim_ascii().len());
        for phase in [
            "RefreshTime",
            "MapTime",
            "SendTime",
            "ConfirmTime",
            "Duration",
        ] {
            assert!(line[phase].as_f64().is_some_and(|ms| ms >= 0.0), "{phase}");
        }
        assert!(line["Duration"].as_f64() >= line["MapTime"].as_f64());
    }
    // The figures themselves: 3 records in 2 batches reach the wire: a write of each and the
    // confirmation, none failed.
    assert_eq!(
        (
            summaries[0]["records"].clone(),
            summaries[0]["batches"].clone()
        ),
        (3.into(), 2.into())
    );
    assert!(summaries[0]["wire_bytes"].as_u64().unwrap() > 0);
    assert_eq!(summaries[0]["delivery_attempts"], 3);
    assert_eq!(summaries[0]["failed_delivery_attempts"], 0);
    assert_eq!(emf[1]["Skipped.control-message"], 1);
    // A failed invocation counts as failed, with its error type and nothing delivered.
    let failed = &emf[3];
    assert_eq!(
        (
            failed["Failed"].clone(),
            failed["Records"].clone(),
            failed["ErrorType"].clone()
        ),
        (1.into(), 0.into(), error_type.into())
    );
    assert_eq!(failed["Mapper"], summaries[0]["mapper"]);
}

/// Lambda's advanced logging controls: the Text format writes no JSON log line, and the
/// application log level hides info lines; the metrics line is written whatever the level.
#[test]
fn lambdas_log_format_and_level_are_honoured() {
    let collector = CollectorProcess::start(&test_license());
    let api = RuntimeApi::start();
    let text = Bootstrap::start(
        &api,
        &collector,
        &[
            ("AWS_LAMBDA_LOG_FORMAT", "Text".into()),
            ("METRICS_NAMESPACE", "Ops".into()),
        ],
    );
    api.invoke("req-1", &fixture("awslogs-postgresql.json"), ANSWER_WITHIN);
    let _ = response(&api, "req-1");
    let logs = text.logs();
    let line = line_of(&logs, "Invocation mapped and delivered.");
    assert!(
        serde_json::from_str::<serde_json::Value>(&line).is_err(),
        "{line}"
    );
    assert!(
        line.contains(" INFO ") && line.contains("records=3"),
        "{line}"
    );
    assert!(
        !logs.contains('\u{1b}'),
        "no colour in Lambda's log: {logs}"
    );
    let emf = line_of(&logs, "\"_aws\"");
    assert!(emf.contains("\"Namespace\":\"Ops\""), "{emf}");
    drop(text);

    let api = RuntimeApi::start();
    let quiet = Bootstrap::start(
        &api,
        &collector,
        &[
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
            ("AWS_LAMBDA_LOG_LEVEL", "ERROR".into()),
            // The function's own level is overridden by Lambda's.
            ("LOG_LEVEL", "debug".into()),
        ],
    );
    api.invoke("req-2", &fixture("awslogs-postgresql.json"), ANSWER_WITHIN);
    api.invoke(
        "req-3",
        &std::fs::read(fixtures().join("bad/invalid-base64.json")).unwrap(),
        ANSWER_WITHIN,
    );
    let _ = response(&api, "req-2");
    let _ = error_of(&api, "req-3");
    let logs = quiet.logs();
    assert!(!logs.contains("Invocation mapped and delivered."), "{logs}");
    let error: serde_json::Value =
        serde_json::from_str(&line_of(&logs, "Invocation failed.")).unwrap();
    assert_eq!(error["level"], "ERROR");
    assert_eq!(
        logs.lines().filter(|l| l.contains("\"_aws\"")).count(),
        2,
        "{logs}"
    );
    drop(quiet);
    let _ = collector.finish();
}

fn wait_for_refresh() {
    std::thread::sleep(Duration::from_millis(1200));
}

/// A forwarder whose mapper is `s3://BUCKET/mapper.wasm` on a local S3, revalidated every
/// second, the object first holding the embedded default; `extra` adds settings.
struct FromS3 {
    s3: rds_forwarder::s3::S3Client,
    bucket: &'static str,
    collector: CollectorProcess,
    api: RuntimeApi,
    lambda: Bootstrap,
    _moto: crate::common::moto::Moto,
}

impl FromS3 {
    fn start(bucket: &'static str, extra: &[(&'static str, String)]) -> FromS3 {
        let moto = crate::common::moto::Moto::start();
        let s3 = moto.client();
        s3.put(
            bucket,
            "mapper.wasm",
            rds_forwarder::embedded::DEFAULT_MAPPER,
            true,
        )
        .expect("upload the first mapper");
        let collector = CollectorProcess::start(&test_license());
        let api = RuntimeApi::start();
        let mut env = moto.env();
        env.push(("MAPPER_URI", format!("s3://{bucket}/mapper.wasm")));
        env.push(("MAPPER_REFRESH_SECONDS", "1".into()));
        env.extend_from_slice(extra);
        let lambda = Bootstrap::start(&api, &collector, &env);
        FromS3 {
            s3,
            bucket,
            collector,
            api,
            lambda,
            _moto: moto,
        }
    }

    /// Replaces the mapper object, and waits for a refresh to see it.
    fn upload(&self, bytes: &[u8]) {
        self.s3
            .put(self.bucket, "mapper.wasm", bytes, false)
            .expect("upload");
        wait_for_refresh();
    }
}

#[test]
fn the_mapper_is_hot_swapped_from_s3_and_bad_objects_keep_the_previous_one() {
    let mapper_b = std::fs::read(test_component("test_mapper")).unwrap();
    let FromS3 {
        s3,
        collector,
        api,
        lambda,
        _moto,
        ..
    } = FromS3::start("mappers", &[]);
    let event = fixture("rds-db-proxy-event.json");
    let version = env!("CARGO_PKG_VERSION");

    api.invoke("a", &event, ANSWER_WITHIN);
    assert_eq!(
        response(&api, "a")["mapper"],
        format!("rds-mapper@{version}")
    );

    s3.put("mappers", "mapper.wasm", &mapper_b, false)
        .expect("upload B");
    wait_for_refresh();
    api.invoke("b", &event, ANSWER_WITHIN);
    assert_eq!(response(&api, "b")["mapper"], "test-mapper@2.0.0-test");

    let bad: [(&str, Vec<u8>, &str); 3] = [
        (
            "garbage",
            b"this is not a component at all".to_vec(),
            "not a WebAssembly component",
        ),
        (
            "core module",
            b"\0asm\x01\0\0\0".to_vec(),
            "a core WebAssembly module, not a component",
        ),
        (
            "future contract",
            std::fs::read(test_component("future_mapper")).unwrap(),
            "built for contract whatap:rds-mapper@2.0.0, but this host implements whatap:rds-mapper@1.3.0",
        ),
    ];
    for (i, (what, bytes, reason)) in bad.iter().enumerate() {
        s3.put("mappers", "mapper.wasm", bytes, false)
            .expect("upload");
        wait_for_refresh();
        let id = format!("bad-{i}");
        api.invoke(&id, &event, ANSWER_WITHIN);
        assert_eq!(
            response(&api, &id)["mapper"],
            "test-mapper@2.0.0-test",
            "{what}: the previous mapper keeps running"
        );
        let refused: Vec<String> = lambda
            .logs()
            .lines()
            .filter(|l| l.contains("Mapper update refused"))
            .map(str::to_owned)
            .collect();
        assert_eq!(refused.len(), i + 1, "{what}: one error line each");
        assert!(refused[i].contains(reason), "{what}: {}", refused[i]);
        assert!(
            refused[i].contains("\"keeping\":\"test-mapper@2.0.0-test\""),
            "{}",
            refused[i]
        );
    }

    // The package's own .cwasm (no time budget) from S3 is refused, pinned or not.
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("a.cwasm");
    let out = crate::common::forwarder_cmd()
        .args(["compile", "--output", cwasm.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s3.put(
        "mappers",
        "mapper.wasm",
        &std::fs::read(&cwasm).unwrap(),
        false,
    )
    .expect("upload cwasm");
    wait_for_refresh();
    api.invoke("cwasm", &event, ANSWER_WITHIN);
    assert_eq!(response(&api, "cwasm")["mapper"], "test-mapper@2.0.0-test");
    let logs = lambda.logs();
    let refused = logs
        .lines()
        .rfind(|l| l.contains("Mapper update refused"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        refused.contains("a precompiled mapper (.cwasm) is native code and is loaded from MAPPER_URI only when MAPPER_SHA256 pins it"),
        "{refused}"
    );
    // Every mapper from S3 runs with a time budget, even the default's own .wasm.
    assert!(
        line_of(&logs, "Forwarder ready.").contains("\"time_budget\":true"),
        "{logs}"
    );
    for swapped in logs.lines().filter(|l| l.contains("Mapper swapped in.")) {
        assert!(swapped.contains("\"time_budget\":true"), "{swapped}");
    }

    // B's own output reached the collector while it was in use.
    // a, b, three refused uploads (still B), the refused .cwasm (still B): one record each.
    collector.wait_for(6);
    let (received, _) = collector.finish();
    let contents: Vec<String> = json_lines(&received)
        .iter()
        .map(|r| r["content"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(contents.len(), 6, "{contents:?}");
    assert_eq!(
        contents
            .iter()
            .filter(|c| c.starts_with("mapped by test-mapper"))
            .count(),
        5,
        "{contents:?}"
    );
}

#[test]
fn a_mapper_that_fails_its_pinned_sha256_never_runs_and_nothing_maps_in_its_place() {
    let moto = crate::common::moto::Moto::start();
    let s3 = moto.client();
    let mapper_b = std::fs::read(test_component("test_mapper")).unwrap();
    s3.put("pinned", "mapper.wasm", &mapper_b, true)
        .expect("upload");
    let collector = CollectorProcess::start(&test_license());
    let api = RuntimeApi::start();
    let mut env = moto.env();
    env.push(("MAPPER_URI", "s3://pinned/mapper.wasm".into()));
    env.push(("MAPPER_REFRESH_SECONDS", "1".into()));
    // Pins the embedded mapper's hash, not B's.
    env.push((
        "MAPPER_SHA256",
        rds_forwarder::source::sha256_hex(rds_forwarder::embedded::DEFAULT_MAPPER),
    ));
    let lambda = Bootstrap::start(&api, &collector, &env);
    api.invoke("pinned", &fixture("rds-db-proxy-event.json"), ANSWER_WITHIN);
    let (kind, message) = error_of(&api, "pinned");
    assert_eq!(kind, "MapperUnavailable", "{}", lambda.logs());
    assert!(
        message.starts_with("the mapper from s3://pinned/mapper.wasm is unavailable"),
        "{message}"
    );
    assert!(message.ends_with("not mapping with any other"), "{message}");
    let refused = line_of(&lambda.logs(), "Mapper update refused");
    assert!(
        refused.contains(&format!(
            "the object's SHA-256 is {}",
            rds_forwarder::source::sha256_hex(&mapper_b)
        )),
        "{refused}"
    );
    assert!(refused.contains("but MAPPER_SHA256 pins"), "{refused}");
    // At refresh, the pinned object replaces it and serves.
    s3.put(
        "pinned",
        "mapper.wasm",
        rds_forwarder::embedded::DEFAULT_MAPPER,
        false,
    )
    .expect("upload the pinned object");
    wait_for_refresh();
    api.invoke(
        "repinned",
        &fixture("rds-db-proxy-event.json"),
        ANSWER_WITHIN,
    );
    assert_eq!(
        response(&api, "repinned")["mapper"],
        format!("rds-mapper@{}", env!("CARGO_PKG_VERSION"))
    );
    collector.wait_for(1);
    let (received, _) = collector.finish();
    assert_eq!(
        json_lines(&received).len(),
        1,
        "only the pinned mapper's record: nothing was mapped by another mapper before it"
    );
}

/// A hot swap to a mapper that rejects the mapping config in force is refused by its dry run.
#[test]
fn a_hot_swap_to_a_mapper_that_rejects_the_live_rules_is_refused() {
    let f = FromS3::start(
        "rules",
        &[("MAPPER_CONFIG", r#"{"tags": {"team": "dba"}}"#.into())],
    );
    let event = fixture("rds-db-proxy-event.json");
    let default = format!("rds-mapper@{}", env!("CARGO_PKG_VERSION"));
    f.api.invoke("a", &event, ANSWER_WITHIN);
    assert_eq!(response(&f.api, "a")["mapper"], default);
    f.upload(&std::fs::read(test_component("test_mapper")).unwrap());
    f.api.invoke("b", &event, ANSWER_WITHIN);
    assert_eq!(response(&f.api, "b")["mapper"], default);
    let refused = line_of(&f.lambda.logs(), "Mapper update refused");
    assert!(
        refused.contains("test-mapper takes no mapping config (rules)"),
        "{refused}"
    );
    f.collector.wait_for(2);
    let _ = f.collector.finish();
}

/// A missing mapper fails closed, and loads once it is uploaded; an unpinned .cwasm is refused
/// by name and the refusal outlives a cold start; MAPPER_FALLBACK=embedded opts in to the
/// default meanwhile; a pinned .cwasm runs, with a time budget.
#[test]
fn a_missing_or_unpinned_mapper_fails_closed_at_cold_start_and_at_refresh() {
    let moto = crate::common::moto::Moto::start();
    let s3 = moto.client();
    s3.put("cold", "other.wasm", b"unrelated", true)
        .expect("bucket");
    let collector = CollectorProcess::start(&test_license());
    let event = fixture("rds-db-proxy-event.json");
    let mut env = moto.env();
    env.push(("MAPPER_URI", "s3://cold/mapper.wasm".into()));
    env.push(("MAPPER_REFRESH_SECONDS", "1".into()));

    // Missing: each invocation fails until the object is there.
    let api = RuntimeApi::start();
    let missing = Bootstrap::start(&api, &collector, &env);
    api.invoke("missing", &event, ANSWER_WITHIN);
    let (kind, message) = error_of(&api, "missing");
    assert_eq!(kind, "MapperUnavailable");
    assert!(message.contains("answered HTTP 404"), "{message}");
    s3.put(
        "cold",
        "mapper.wasm",
        &std::fs::read(test_component("test_mapper")).unwrap(),
        false,
    )
    .expect("upload");
    wait_for_refresh();
    api.invoke("uploaded", &event, ANSWER_WITHIN);
    assert_eq!(
        response(&api, "uploaded")["mapper"],
        "test-mapper@2.0.0-test"
    );
    drop(missing);

    // Unpinned .cwasm: refused by name, remembered across a cold start (not fetched again).
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("default.wasm");
    std::fs::write(&wasm, rds_forwarder::embedded::DEFAULT_MAPPER).unwrap();
    let cwasm = dir.path().join("default.cwasm");
    let out = crate::common::forwarder_cmd()
        .args(["compile", "--mapper"])
        .arg(&wasm)
        .arg("--output")
        .arg(&cwasm)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cwasm = std::fs::read(&cwasm).unwrap();
    s3.put("cold", "mapper.wasm", &cwasm, false)
        .expect("upload cwasm");
    let state = tempfile::tempdir().unwrap();
    let mut remembered = env.clone();
    remembered.push((
        "RDS_FORWARDER_STATE_DIR",
        state.path().display().to_string(),
    ));
    for cold_start in ["first", "second"] {
        let api = RuntimeApi::start();
        let lambda = Bootstrap::start(&api, &collector, &remembered);
        let id = format!("unpinned-{cold_start}");
        api.invoke(&id, &event, ANSWER_WITHIN);
        let (kind, message) = error_of(&api, &id);
        assert_eq!(kind, "MapperUnavailable", "{cold_start}");
        assert!(
            message.contains("is loaded from MAPPER_URI only when MAPPER_SHA256 pins it"),
            "{cold_start}: {message}"
        );
        let refusals = lambda
            .logs()
            .lines()
            .filter(|l| l.contains("Mapper update refused"))
            .count();
        assert_eq!(
            refusals,
            usize::from(cold_start == "first"),
            "{cold_start}: the refused version is fetched and compiled once: {}",
            lambda.logs()
        );
    }

    // With MAPPER_FALLBACK=embedded the default maps meanwhile.
    let mut fallback = env.clone();
    fallback.push(("MAPPER_FALLBACK", "embedded".into()));
    let api = RuntimeApi::start();
    let lambda = Bootstrap::start(&api, &collector, &fallback);
    api.invoke("fallback", &event, ANSWER_WITHIN);
    assert_eq!(
        response(&api, "fallback")["mapper"],
        format!("rds-mapper@{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        lambda
            .logs()
            .contains("mapping with the embedded default meanwhile (MAPPER_FALLBACK=embedded)"),
        "{}",
        lambda.logs()
    );
    drop(lambda);

    // Pinned, it runs, with a time budget.
    let mut pinned = env.clone();
    pinned.push(("MAPPER_SHA256", rds_forwarder::source::sha256_hex(&cwasm)));
    let api = RuntimeApi::start();
    let lambda = Bootstrap::start(&api, &collector, &pinned);
    api.invoke("pinned", &event, ANSWER_WITHIN);
    assert_eq!(
        response(&api, "pinned")["mapper"],
        format!("rds-mapper@{}", env!("CARGO_PKG_VERSION"))
    );
    let ready = line_of(&lambda.logs(), "Forwarder ready.");
    assert!(ready.contains("\"time_budget\":true"), "{ready}");
    let _ = collector.finish();
}

/// A new mapper is dry-run over the canned events with the live settings before it serves: one
/// that traps or errs there is refused, and the mapper in use keeps serving.
#[test]
fn a_hot_swap_to_a_mapper_that_traps_or_errs_under_the_live_settings_is_refused() {
    // The default mapper ignores `mode`; the test mappers act on it.
    let f = FromS3::start("swap", &[("MAPPER_SETTINGS", "mode=trap".into())]);
    let (api, lambda) = (&f.api, &f.lambda);
    let event = fixture("rds-db-proxy-event.json");
    let default = format!("rds-mapper@{}", env!("CARGO_PKG_VERSION"));
    api.invoke("a", &event, ANSWER_WITHIN);
    assert_eq!(response(api, "a")["mapper"], default);
    let candidates = [
        (
            "test_mapper",
            "the dry run over the canned event awslogs-mysql-error failed: the mapper trapped",
        ),
        (
            "boundary_mapper",
            "the dry run over the canned event awslogs-mysql-error failed: unknown mode trap",
        ),
    ];
    for (i, (name, reason)) in candidates.iter().enumerate() {
        f.upload(&std::fs::read(test_component(name)).unwrap());
        let id = format!("after-{name}");
        api.invoke(&id, &event, ANSWER_WITHIN);
        assert_eq!(response(api, &id)["mapper"], default, "{name}");
        let refused: Vec<String> = lambda
            .logs()
            .lines()
            .filter(|l| l.contains("Mapper update refused"))
            .map(str::to_owned)
            .collect();
        assert_eq!(refused.len(), i + 1, "{name}");
        assert!(refused[i].contains(reason), "{name}: {}", refused[i]);
    }
    f.collector.wait_for(3);
    let _ = f.collector.finish();
}

/// Settings that give up confirmed delivery stop the function at start, reported to the
/// Runtime API's init error, unless explicitly allowed.
#[test]
fn unconfirmed_delivery_is_refused_at_init_and_reported() {
    let collector = CollectorProcess::start(&test_license());
    let api = RuntimeApi::start();
    let mut lambda = Bootstrap::start(&api, &collector, &[("WHATAP_CONFIRM", "off".into())]);
    let exit = lambda.child.wait().expect("wait");
    assert!(!exit.success());
    let reported = api
        .init_error()
        .unwrap_or_else(|| panic!("{}", lambda.logs()));
    assert!(
        reported.contains("WHATAP_CONFIRM=off lets records go unconfirmed or unsent; in Lambda this needs RDS_FORWARDER_UNSAFE_DELIVERY=1"),
        "{reported}"
    );
    let _ = collector.finish();
}

#[test]
fn the_license_can_come_from_secrets_manager() {
    let moto = crate::common::moto::Moto::start();
    let env = moto.env();
    let mut env_sm: Vec<(&str, String)> = env
        .iter()
        .filter(|(k, _)| *k != "AWS_ENDPOINT_URL_S3")
        .cloned()
        .collect();
    env_sm.push(("AWS_ENDPOINT_URL", format!("http://{}", moto.addr)));
    let lookup = |k: &str| env_sm.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let client = rds_forwarder::secrets::SecretsClient::from_env(lookup).expect("client");
    let created = rds_forwarder::aws::AwsJsonClient::from_env(
        lookup,
        &rds_forwarder::aws::SECRETS_MANAGER,
    )
    .expect("client")
    .call("CreateSecret", &serde_json::json!({"Name": "whatap/license", "SecretString": serde_json::json!({"license": test_license()}).to_string()}))
        .expect("create secret");
    let arn = created["ARN"].as_str().expect("ARN").to_owned();
    assert_eq!(client.license(&arn).expect("read back"), test_license());

    let collector = CollectorProcess::start(&test_license());
    let api = RuntimeApi::start();
    let mut extra = env_sm.clone();
    extra.push(("WHATAP_LICENSE", String::new()));
    extra.push(("WHATAP_LICENSE_SECRET_ARN", arn));
    let lambda = Bootstrap::start(&api, &collector, &extra);
    api.invoke(
        "from-secret",
        &fixture("rds-db-proxy-event.json"),
        ANSWER_WITHIN,
    );
    assert_eq!(
        response(&api, "from-secret")["records"],
        1,
        "{}",
        lambda.logs()
    );
    collector.wait_for(1);
    let (received, _) = collector.finish();
    assert_eq!(json_lines(&received).len(), 1);
    assert!(!lambda.logs().contains(&test_license()));
}

#[test]
fn sigterm_closes_the_connection_and_exits_cleanly() {
    let collector = CollectorProcess::start(&test_license());
    let api = RuntimeApi::start();
    let mut lambda = Bootstrap::start(&api, &collector, &[]);
    api.invoke(
        "before-term",
        &fixture("rds-db-proxy-event.json"),
        ANSWER_WITHIN,
    );
    assert_eq!(response(&api, "before-term")["records"], 1);
    let status = Command::new("kill")
        .args(["-TERM", &lambda.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = lambda.child.wait().expect("wait");
    assert!(exit.success(), "{exit:?}");
    let logs = lambda.logs();
    assert!(
        logs.contains("SIGTERM: closing the WhaTap connection."),
        "{logs}"
    );
    // Every line logged during the invocation carries its request id and mapper.
    let during: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["span"]["name"] == "invocation")
        .collect();
    assert!(!during.is_empty(), "{logs}");
    for line in during {
        assert_eq!(line["span"]["request_id"], "before-term", "{line}");
        assert_eq!(
            line["span"]["mapper"],
            format!("rds-mapper@{}", env!("CARGO_PKG_VERSION")),
            "{line}"
        );
    }
    let _ = collector.finish();
}

#[test]
fn the_mapping_config_is_hot_swapped_and_a_bad_one_keeps_the_previous() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rules.json");
    std::fs::write(&config, r#"{"tags": {"team": "dba"}}"#).unwrap();
    let collector = CollectorProcess::start(&test_license());
    let api = RuntimeApi::start();
    let lambda = Bootstrap::start(
        &api,
        &collector,
        &[
            ("MAPPER_CONFIG", config.display().to_string()),
            ("MAPPER_REFRESH_SECONDS", "1".into()),
        ],
    );
    let event = fixture("rds-db-proxy-event.json");
    api.invoke("c1", &event, ANSWER_WITHIN);
    assert_eq!(response(&api, "c1")["records"], 1);

    std::fs::write(&config, "{\n  \"tags\": {\"team\": 7}\n}").unwrap();
    wait_for_refresh();
    api.invoke("c2", &event, ANSWER_WITHIN);
    assert_eq!(
        response(&api, "c2")["records"],
        1,
        "the previous config keeps working"
    );
    let logs = lambda.logs();
    let refused = logs
        .lines()
        .find(|l| l.contains("Mapping config refused"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        refused.contains("rules: tags.team must be a string"),
        "{refused}"
    );

    std::fs::write(&config, r#"{"tags": {"team": "sre"}}"#).unwrap();
    wait_for_refresh();
    api.invoke("c3", &event, ANSWER_WITHIN);
    assert_eq!(response(&api, "c3")["records"], 1);

    collector.wait_for(3);
    let (received, _) = collector.finish();
    let teams: Vec<String> = json_lines(&received)
        .iter()
        .map(|r| r["tags"]["team"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(teams, ["dba", "dba", "sre"]);
}

#[test]
fn without_a_valid_mapping_config_nothing_is_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rules.json");
    std::fs::write(&config, r#"{"redact": ["ssn"]}"#).unwrap();
    let collector = CollectorProcess::start(&test_license());
    let api = RuntimeApi::start();
    let _lambda = Bootstrap::start(
        &api,
        &collector,
        &[("MAPPER_CONFIG", config.display().to_string())],
    );
    api.invoke("c1", &fixture("rds-db-proxy-event.json"), ANSWER_WITHIN);
    let (error_type, message) = error_of(&api, "c1");
    assert_eq!(error_type, "MapperConfig");
    assert!(
        message.starts_with("MAPPER_CONFIG has no valid version yet"),
        "{message}"
    );
    let (received, _) = collector.finish();
    assert!(
        received.is_empty(),
        "nothing may be sent without the configured rules"
    );
}

/// A compilation that outlasts MAPPER_COMPILE_WAIT_SECONDS goes on beside the invocations:
/// they fail as MapperUnavailable (nothing else maps) until it finishes, then it serves.
#[test]
fn a_long_compilation_goes_on_beside_the_invocations() {
    let collector = CollectorProcess::start(&test_license());
    let api = RuntimeApi::start();
    let mapper = test_component("test_mapper");
    let lambda = Bootstrap::start(
        &api,
        &collector,
        &[
            ("MAPPER_URI", mapper.display().to_string()),
            ("MAPPER_COMPILE_WAIT_SECONDS", "0".into()),
        ],
    );
    let event = fixture("rds-db-proxy-event.json");
    let mut served = None;
    for i in 0..300 {
        let id = format!("r{i}");
        api.invoke(&id, &event, ANSWER_WITHIN);
        match api.outcome(&id, ANSWER_WITHIN) {
            Some(Outcome::Response(v)) => {
                served = Some(v);
                break;
            }
            Some(Outcome::Error {
                error_type,
                message,
            }) => {
                assert_eq!(error_type, "MapperUnavailable", "{message}");
                assert!(message.contains("is still compiling"), "{message}");
                std::thread::sleep(Duration::from_millis(100));
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    let served = served.unwrap_or_else(|| panic!("never served: {}", lambda.logs()));
    assert_eq!(served["mapper"], "test-mapper@2.0.0-test");
    let logs = lambda.logs();
    assert!(
        logs.contains("Mapper still compiling; the mapper in use serves meanwhile."),
        "{logs}"
    );
    assert!(logs.contains("Mapper swapped in."), "{logs}");
    collector.wait_for(1);
    let _ = collector.finish();
}

/// The scheduled drain (`RDS_FORWARDER_MODE=replay`): a scheduled event replays the
/// failed-event queue with the forwarder's settings; what cannot be replayed stays.
#[test]
fn the_scheduled_replay_drains_the_failed_event_queue() {
    use crate::operations::{fixture_json, on_failure, queue, remaining};
    let moto = crate::common::moto::Moto::start();
    let env = moto.aws_env();
    let sqs = crate::common::moto::aws_client(&env, &rds_forwarder::aws::SQS);
    let bad = "{}".to_owned();
    let url = queue(
        &sqs,
        "failed",
        &[
            on_failure("r-1", Some(fixture_json("events/awslogs-postgresql.json"))),
            on_failure("r-2", Some(fixture_json("events/rds-db-proxy-event.json"))),
            bad.clone(),
        ],
    );
    let collector = CollectorProcess::start(&test_license());
    let api = RuntimeApi::start();
    let mut extra: Vec<(&str, String)> = env.clone();
    extra.push(("RDS_FORWARDER_MODE", "replay".into()));
    extra.push(("REPLAY_QUEUE_URL", url.clone()));
    let lambda = Bootstrap::start(&api, &collector, &extra);
    let scheduled = br#"{"version":"0","id":"e","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2026-11-30T12:00:00Z","region":"us-east-1","resources":[],"detail":{}}"#;
    api.invoke("drain-1", scheduled, ANSWER_WITHIN);
    let report = response(&api, "drain-1");
    assert_eq!(
        (
            report["received"].clone(),
            report["replayed"].clone(),
            report["deleted"].clone()
        ),
        (3.into(), 2.into(), 2.into()),
        "{}",
        lambda.logs()
    );
    assert_eq!(
        report["kept"][0]["reason"],
        "the message is neither a Lambda on-failure record (requestPayload, KinesisBatchInfo) nor an event"
    );
    assert_eq!(remaining(&sqs, &url), vec![bad]);
    collector.wait_for(4);
    let (received, _) = collector.finish();
    assert_eq!(json_lines(&received).len(), 3 + 1);
    assert!(lambda.logs().contains("Failed event kept in the queue."));
}
