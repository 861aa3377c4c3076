//! `replay` and `backfill` against a local AWS API (moto) and the collector emulator: the
//! failed-event queue drained of what can be delivered and nothing else, a collector failing
//! mid-replay, a log group's history with the record ids of live delivery, and a checkpoint
//! that resumes without duplicates or gaps.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use rds_forwarder::aws::{AwsJsonClient, CLOUDWATCH_LOGS, SQS};
use serde_json::{Value, json};

use crate::common::collector::{CollectorProcess, test_license};
use crate::common::moto::{Moto, aws_client};
use crate::common::*;

pub(crate) fn fixture_json(name: &str) -> Value {
    let path = fixtures().join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("fixture JSON")
}

/// A Lambda on-failure record (asynchronous invocation) of `payload`, as the failed-event
/// queue receives it.
pub(crate) fn on_failure(request_id: &str, payload: Option<Value>) -> String {
    let mut record = json!({
        "version": "1.0",
        "timestamp": "2026-11-30T12:00:00.000Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:rds-forwarder:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "DeliveryFailed", "errorMessage": "could not deliver"}
    });
    if let Some(p) = payload {
        record["requestPayload"] = p;
    }
    record.to_string()
}

pub(crate) fn queue(sqs: &AwsJsonClient, name: &str, bodies: &[String]) -> String {
    let url = sqs
        .call("CreateQueue", &json!({"QueueName": name}))
        .expect("create queue")["QueueUrl"]
        .as_str()
        .expect("queue URL")
        .to_owned();
    for body in bodies {
        sqs.call(
            "SendMessage",
            &json!({"QueueUrl": url, "MessageBody": body}),
        )
        .expect("send message");
    }
    url
}

/// The bodies left in the queue, sorted (received with a long visibility, so each once).
pub(crate) fn remaining(sqs: &AwsJsonClient, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let got = sqs
            .call(
                "ReceiveMessage",
                &json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 60}),
            )
            .expect("receive");
        let Some(messages) = got["Messages"].as_array().filter(|m| !m.is_empty()) else {
            break;
        };
        bodies.extend(
            messages
                .iter()
                .map(|m| m["Body"].as_str().unwrap().to_owned()),
        );
    }
    bodies.sort();
    bodies
}

/// What `invoke` maps of these events (files under fixtures/).
fn invoked(events: &[&str]) -> Vec<Value> {
    let mut cmd = forwarder_cmd();
    cmd.arg("invoke");
    for e in events {
        cmd.arg(fixtures().join(e));
    }
    let out = cmd.output().expect("invoke");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&String::from_utf8_lossy(&out.stdout))
}

/// The records' ids, sorted.
fn ids(records: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = records
        .iter()
        .map(|r| {
            r["fields"]["record_id"]
                .as_str()
                .expect("record_id")
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

fn sorted(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by_key(|r| r.to_string());
    records
}

/// `rds-forwarder` with the AWS environment of `moto` and the collector's address.
fn command(moto: &Moto, collector: Option<&CollectorProcess>) -> std::process::Command {
    let mut cmd = forwarder_cmd();
    cmd.env_remove("AWS_PROFILE");
    for (k, v) in moto.aws_env() {
        cmd.env(k, v);
    }
    if let Some(c) = collector {
        cmd.env("WHATAP_HOST", c.addr.ip().to_string())
            .env("WHATAP_PORT", c.addr.port().to_string())
            .env("WHATAP_LICENSE", test_license());
    }
    cmd
}

/// The report: the last JSON line on stderr.
fn report(stderr: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
        })
        .unwrap_or_else(|| panic!("no JSON report in {text}"))
}

#[test]
fn replay_delivers_and_deletes_the_good_and_keeps_the_bad_naming_why() {
    let moto = Moto::start();
    let sqs = aws_client(&moto.aws_env(), &SQS);
    let good = [
        "events/awslogs-postgresql.json",
        "events/rds-db-instance-event.failover.json",
    ];
    let dlq_event = "events/rds-db-cluster-event.patched.json";
    let bad_payload = on_failure("bad-1", Some(fixture_json("bad/invalid-base64.json")));
    let no_payload = on_failure("bad-2", None);
    let bodies = vec![
        on_failure("good-1", Some(fixture_json(good[0]))),
        on_failure("good-2", Some(fixture_json(good[1]))),
        // An EventBridge dead-letter queue keeps the event itself.
        fixture_json(dlq_event).to_string(),
        "not JSON at all".to_owned(),
        bad_payload.clone(),
        no_payload.clone(),
    ];
    let url = queue(&sqs, "rds-forwarder-failed", &bodies);
    let collector = CollectorProcess::start(&test_license());

    // A dry run delivers nothing and leaves every message.
    let dry = command(&moto, Some(&collector))
        .args(["replay", "--queue-url", &url, "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(
        dry.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let dry_report = report(&dry.stderr);
    assert_eq!(
        (
            dry_report["received"].clone(),
            dry_report["replayed"].clone(),
            dry_report["deleted"].clone()
        ),
        (json!(6), json!(3), json!(0))
    );
    let mut all = bodies.clone();
    all.sort();
    assert_eq!(remaining(&sqs, &url), all, "a dry run deletes nothing");

    // The messages `remaining` just received become visible again after its 60 s; a fresh
    // queue with the same messages serves the real run.
    let url = queue(&sqs, "rds-forwarder-failed-2", &bodies);
    let run = command(&moto, Some(&collector))
        .args(["replay", "--queue-url", &url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(
        run.status.code(),
        Some(1),
        "messages remain: exit 1; {stderr}"
    );
    let r = report(&run.stderr);
    assert_eq!(r["received"], 6, "{stderr}");
    assert_eq!(r["replayed"], 3, "{stderr}");
    assert_eq!(r["deleted"], 3, "{stderr}");
    assert_eq!(r["stopped"], Value::Null);
    let mut reasons: Vec<String> = r["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["reason"].as_str().unwrap().to_owned())
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].starts_with("BadEvent: awslogs.data is not valid base64"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[1],
        "the message body is not JSON: expected ident at line 1 column 2"
    );
    assert_eq!(
        reasons[2],
        "the on-failure record has no requestPayload (the event was not kept with it)"
    );
    // Each kept message is named on its own line.
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("kept ")).count(),
        3,
        "{stderr}"
    );

    // The bad are kept, visible at once for the next replay; the good are gone.
    let mut bad = vec!["not JSON at all".to_owned(), bad_payload, no_payload];
    bad.sort();
    assert_eq!(remaining(&sqs, &url), bad);

    // What reached the collector is what `invoke` maps of the good events.
    let expected = invoked(&[good[0], good[1], dlq_event]);
    collector.wait_for(expected.len());
    let (received, problems) = collector.finish();
    assert_same_records(
        "replay → collector",
        &sorted(json_lines(&received)),
        &sorted(expected),
    );
    assert!(!problems.contains("collector: "), "{problems}");
}

/// Settings under which delivery is not confirmed are refused before anything is taken from
/// the queue: replay deletes what it delivered, so it must know.
#[test]
fn replay_and_backfill_refuse_unconfirmed_delivery() {
    let moto = Moto::start();
    let sqs = aws_client(&moto.aws_env(), &SQS);
    let body = on_failure("r-1", Some(fixture_json("events/awslogs-postgresql.json")));
    let url = queue(&sqs, "rds-forwarder-failed", std::slice::from_ref(&body));
    let collector = CollectorProcess::start(&test_license());
    for (env, args, setting) in [
        (
            ("WHATAP_TRANSPORT", "oneway"),
            &[][..],
            "WHATAP_TRANSPORT=oneway",
        ),
        (("WHATAP_CONFIRM", "off"), &[][..], "WHATAP_CONFIRM=off"),
        (
            ("X", "y"),
            &["--config", "decode_only=true"][..],
            "MAPPER_SETTINGS decode_only",
        ),
    ] {
        let out = command(&moto, Some(&collector))
            .env(env.0, env.1)
            .args(["replay", "--queue-url", &url])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{setting} lets records go unconfirmed or unsent, and replay and backfill delete a message or move their checkpoint only past what is confirmed delivered")),
            "{err}"
        );
    }
    let out = command(&moto, Some(&collector))
        .env("WHATAP_TRANSPORT", "oneway")
        .args([
            "backfill",
            "--log-group",
            "g",
            "--start",
            "1d",
            "--end",
            "now",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("WHATAP_TRANSPORT=oneway lets records go unconfirmed")
    );
    assert_eq!(remaining(&sqs, &url), vec![body], "nothing was taken");
}

#[test]
fn a_collector_failing_mid_replay_deletes_nothing_unconfirmed() {
    let moto = Moto::start();
    let sqs = aws_client(&moto.aws_env(), &SQS);
    let events = [
        "events/awslogs-postgresql.json",
        "events/rds-db-instance-event.failover.json",
        "events/awslogs-mysql-error.json",
    ];
    let bodies: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, e)| on_failure(&format!("r-{i}"), Some(fixture_json(e))))
        .collect();
    let url = queue(&sqs, "rds-forwarder-failed", &bodies);
    // The second data frame, and every one after it, resets the connection unread.
    let collector = CollectorProcess::start_with(&test_license(), &["--fail-from-data-frame", "2"]);
    let run = command(&moto, Some(&collector))
        .env("WHATAP_SEND_BUDGET_MS", "1500")
        .env("WHATAP_CONNECT_TIMEOUT_MS", "300")
        .args(["replay", "--queue-url", &url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let r = report(&run.stderr);
    assert!(
        r["stopped"].as_str().is_some_and(|s| s.starts_with(
            "delivery failed, so the rest of the queue was left untouched: DeliveryFailed"
        )),
        "{stderr}"
    );
    // The first message's one frame was confirmed; the second's was never read.
    assert_eq!(r["deleted"], 1, "{stderr}");
    assert_eq!(r["kept"].as_array().unwrap().len(), 1, "{stderr}");
    let left = remaining(&sqs, &url);
    assert_eq!(left.len(), 2, "{stderr}");

    // Exactly the deleted message's records reached the collector, and no record of a message
    // still in the queue did.
    let (received, _) = collector.finish();
    let received = sorted(json_lines(&received));
    let deleted: Vec<&str> = events
        .iter()
        .zip(&bodies)
        .filter(|(_, b)| !left.contains(b))
        .map(|(e, _)| *e)
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_same_records(
        "confirmed before the failure",
        &received,
        &sorted(invoked(&deleted)),
    );
}

// ---- backfill ----

const GROUP: &str = "/aws/rds/instance/db1/postgresql";

/// A PostgreSQL log group with three streams of the instance and one that the stream prefix
/// leaves out; events within the last hour (CloudWatch Logs refuses older ones).
fn log_group(moto: &Moto) -> AwsJsonClient {
    let logs = aws_client(&moto.aws_env(), &CLOUDWATCH_LOGS);
    logs.call("CreateLogGroup", &json!({"logGroupName": GROUP}))
        .expect("create group");
    let base = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64)
        - 3_600_000;
    for (s, stream) in ["db1.0", "db1.1", "db1.2", "other"].iter().enumerate() {
        logs.call(
            "CreateLogStream",
            &json!({"logGroupName": GROUP, "logStreamName": stream}),
        )
        .expect("create stream");
        let events: Vec<Value> = (0..7)
            .map(|i| {
                let t = base + (i * 4 + s as i64) * 1000;
                // The second line of every third event is an entry of its own.
                let message = if i % 3 == 0 {
                    format!("2026-11-30 10:00:0{i} UTC:10.0.0.{s}(5432):app@shop:[40{s}]:LOG:  statement: SELECT {i} FROM t\n2026-11-30 10:00:0{i} UTC:10.0.0.{s}(5432):app@shop:[40{s}]:LOG:  duration: 0.{i}1 ms")
                } else {
                    format!("2026-11-30 10:00:0{i} UTC:10.0.0.{s}(5432):app@shop:[40{s}]:ERROR:  relation \"t{i}\" does not exist")
                };
                json!({"timestamp": t, "message": message})
            })
            .collect();
        logs.call(
            "PutLogEvents",
            &json!({"logGroupName": GROUP, "logStreamName": stream, "logEvents": events}),
        )
        .expect("put events");
    }
    logs
}

/// Live delivery of the same events: one subscription payload per stream, shaped here by
/// hand (gzip, base64) from what FilterLogEvents returns, written as event files.
fn subscription_events(logs: &AwsJsonClient, dir: &Path) -> Vec<String> {
    let page = logs
        .call(
            "FilterLogEvents",
            &json!({"logGroupName": GROUP, "startTime": 0, "endTime": i64::MAX / 2}),
        )
        .expect("filter");
    assert!(page["nextToken"].is_null(), "one page holds them all");
    let mut files = Vec::new();
    for stream in ["db1.0", "db1.1", "db1.2"] {
        let events: Vec<Value> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["logStreamName"] == stream)
            .map(|e| json!({"id": e["eventId"], "timestamp": e["timestamp"], "message": e["message"]}))
            .collect();
        let message = json!({
            "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": GROUP,
            "logStream": stream, "subscriptionFilters": ["live"], "logEvents": events,
        });
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(message.to_string().as_bytes()).unwrap();
        let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        let name = format!("live-{stream}.json");
        std::fs::write(
            dir.join(&name),
            json!({"awslogs": {"data": data}}).to_string(),
        )
        .unwrap();
        files.push(dir.join(name).display().to_string());
    }
    files
}

fn backfill(moto: &Moto, extra: &[&str]) -> (Vec<Value>, Value) {
    let out = command(moto, None)
        .args([
            "backfill",
            "--log-group",
            GROUP,
            "--start",
            "2h",
            "--end",
            "now",
        ])
        .args(["--stream-prefix", "db1.", "--sink", "stdout"])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (
        json_lines(&String::from_utf8_lossy(&out.stdout)),
        report(&out.stderr),
    )
}

#[test]
fn backfill_gives_the_record_ids_of_live_delivery() {
    let moto = Moto::start();
    let logs = log_group(&moto);
    let dir = tempfile::tempdir().unwrap();
    let files = subscription_events(&logs, dir.path());
    let live = forwarder_cmd().arg("invoke").args(&files).output().unwrap();
    assert!(live.status.success());
    let live = json_lines(&String::from_utf8_lossy(&live.stdout));
    // 3 streams × 7 events, 3 of them with two entries.
    assert_eq!(live.len(), 3 * (7 + 3));

    let (backfilled, r) = backfill(&moto, &[]);
    assert_eq!(ids(&backfilled), ids(&live));
    assert_eq!(r["events"], 21);
    assert_eq!(r["records"], 30);
    assert_eq!(r["complete"], true);
    // The records are the same too, but for the receive time nothing of them depends on.
    let strip = |records: Vec<Value>| {
        sorted(
            records
                .into_iter()
                .map(|mut r| {
                    r["fields"].as_object_mut().unwrap().remove("received_ms");
                    r
                })
                .collect(),
        )
    };
    assert_eq!(strip(backfilled), strip(live));
}

#[test]
fn a_checkpoint_resumes_without_duplicates_or_gaps() {
    let moto = Moto::start();
    let logs = log_group(&moto);
    let dir = tempfile::tempdir().unwrap();
    let all = {
        let files = subscription_events(&logs, dir.path());
        let out = forwarder_cmd().arg("invoke").args(&files).output().unwrap();
        ids(&json_lines(&String::from_utf8_lossy(&out.stdout)))
    };
    let checkpoint = dir.path().join("db1.checkpoint");
    let cp = checkpoint.to_str().unwrap();
    let paging = ["--checkpoint", cp, "--page-size", "5"];

    // Stopped after the page that passes 6 events, then resumed, then done.
    let (first, r1) = backfill(&moto, &[&paging[..], &["--max-events", "6"]].concat());
    assert_eq!(r1["complete"], false);
    assert_eq!(r1["events"], 10, "two pages of five");
    let saved: Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(saved["events"], 10);
    assert!(saved["next_token"].is_string());
    let (second, r2) = backfill(&moto, &paging);
    assert_eq!(r2["complete"], true);
    assert_eq!(r2["events"], 11);

    let (first, second) = (ids(&first), ids(&second));
    assert!(
        first.iter().all(|id| second.binary_search(id).is_err()),
        "a record was delivered twice"
    );
    let mut both = [first, second].concat();
    both.sort();
    assert_eq!(both, all, "resumed, every record once");

    // Done is done; another query is refused by name.
    let (third, r3) = backfill(&moto, &paging);
    assert!(third.is_empty());
    assert_eq!(
        (r3["events"].clone(), r3["complete"].clone()),
        (json!(0), json!(true))
    );
    let other = command(&moto, None)
        .args([
            "backfill",
            "--log-group",
            GROUP,
            "--start",
            "3h",
            "--end",
            "now",
        ])
        .args([
            "--stream-prefix",
            "db1.",
            "--sink",
            "stdout",
            "--checkpoint",
            cp,
        ])
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(1));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("belongs to another backfill"), "{err}");
}

#[test]
fn backfill_of_a_missing_group_says_so() {
    let moto = Moto::start();
    let out = command(&moto, None)
        .args(["backfill", "--log-group", "/aws/rds/instance/nope/error"])
        .args(["--start", "1d", "--end", "now", "--sink", "stdout"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "log group /aws/rds/instance/nope/error does not exist in this account and region"
        ),
        "{err}"
    );
}

/// An event source mapping's on-failure record names a Kinesis batch without its records:
/// replay reads them back from the stream, and keeps a record whose batch the stream no
/// longer holds.
#[test]
fn replay_reads_a_failed_kinesis_batch_back_from_its_stream() {
    let moto = Moto::start();
    let env = moto.aws_env();
    let sqs = aws_client(&env, &SQS);
    let kinesis = aws_client(&env, &rds_forwarder::aws::KINESIS);
    kinesis
        .call(
            "CreateStream",
            &json!({"StreamName": "rds-logs", "ShardCount": 1}),
        )
        .unwrap();
    let arn = kinesis
        .call("DescribeStream", &json!({"StreamName": "rds-logs"}))
        .unwrap()["StreamDescription"]["StreamARN"]
        .as_str()
        .unwrap()
        .to_owned();
    let payloads = [
        "events/awslogs-postgresql.json",
        "events/awslogs-mysql-error.json",
    ];
    let mut put = Vec::new();
    for p in payloads {
        // A subscription to Kinesis writes the gzipped DATA_MESSAGE, which is what the
        // fixture's `awslogs.data` holds (base64, as the JSON API carries bytes).
        let data = fixture_json(p)["awslogs"]["data"].clone();
        let r = kinesis
            .call(
                "PutRecord",
                &json!({"StreamName": "rds-logs", "Data": data, "PartitionKey": "k"}),
            )
            .unwrap();
        put.push((
            r["ShardId"].as_str().unwrap().to_owned(),
            r["SequenceNumber"].as_str().unwrap().to_owned(),
        ));
    }
    let batch = |start: &str, end: &str| {
        json!({
            "requestContext": {"requestId": "esm-1", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:rds-forwarder", "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": "2026-11-30T12:00:00.000Z",
            "KinesisBatchInfo": {
                "shardId": put[0].0, "startSequenceNumber": start, "endSequenceNumber": end,
                "approximateArrivalOfFirstRecord": "2026-11-30T11:59:00.000Z",
                "approximateArrivalOfLastRecord": "2026-11-30T11:59:01.000Z",
                "batchSize": 2, "streamArn": arn
            }
        })
        .to_string()
    };
    // Past the end of the stream: what a batch trimmed by retention looks like.
    let gone = batch("999999", "1000000");
    let url = queue(
        &sqs,
        "esm-failed",
        &[batch(&put[0].1, &put[1].1), gone.clone()],
    );
    let collector = CollectorProcess::start(&test_license());
    let run = command(&moto, Some(&collector))
        .args(["replay", "--queue-url", &url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let r = report(&run.stderr);
    assert_eq!(
        (r["replayed"].clone(), r["deleted"].clone()),
        (json!(1), json!(1)),
        "{stderr}"
    );
    let reason = r["kept"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the Kinesis batch cannot be read back: "),
        "{reason}"
    );
    assert_eq!(remaining(&sqs, &url), vec![gone]);
    let expected = invoked(&payloads);
    collector.wait_for(expected.len());
    let (received, _) = collector.finish();
    assert_same_records(
        "kinesis batch → collector",
        &sorted(json_lines(&received)),
        &sorted(expected),
    );
}
