//! The WhaTap sink against the collector emulator on 127.0.0.x: what arrives equals what
//! `invoke --sink stdout` prints, for every fixture and transport; and the fault matrix
//! (refused host, dropped connection, silent collector, garbage handshake) either delivers
//! every record or fails with a clear error, within the budget.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::collector::{CollectorProcess, test_license};
use crate::common::*;
use rds_forwarder::collector::{Collector, Faults, MemoryReport};
use rds_forwarder::sandbox::bindings::{FieldValue, LogRecord};
use rds_forwarder::sink::{Batch, RecordSink};
use rds_forwarder::whatap::config::WhatapConfig;
use rds_forwarder::whatap::license::License;
use rds_forwarder::whatap::sink::WhatapSink;
use tokio::net::TcpListener;

fn invoke(sink: &str, env: &[(&str, String)], files: &[String]) -> std::process::Output {
    let mut cmd = crate::common::forwarder_cmd();
    cmd.args(["invoke", "--sink", sink, "--now-ms", &NOW_MS.to_string()])
        .args(files);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running invoke")
}

fn event_files() -> Vec<String> {
    fixture_files("events")
        .iter()
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn every_fixture_reaches_the_collector_as_invoke_prints_it() {
    let files = event_files();
    let stdout = invoke("stdout", &[], &files);
    assert!(stdout.status.success());
    let expected = json_lines(&String::from_utf8_lossy(&stdout.stdout));
    assert!(expected.len() > 20, "the fixtures hold records");
    let license = test_license();
    for (transport, protection) in [
        ("secure", "hide"),
        ("secure", "cypher"),
        ("secure", "plain"),
        ("oneway", "hide"),
    ] {
        let collector = CollectorProcess::start(&license);
        let env = [
            ("WHATAP_HOST", collector.addr.ip().to_string()),
            ("WHATAP_PORT", collector.addr.port().to_string()),
            ("WHATAP_LICENSE", license.clone()),
            ("WHATAP_TRANSPORT", transport.to_string()),
            ("WHATAP_PROTECTION", protection.to_string()),
        ];
        let sent = invoke("whatap", &env, &files);
        let sent_err = String::from_utf8_lossy(&sent.stderr).into_owned();
        assert!(
            sent.status.success(),
            "{transport}/{protection}: {sent_err}"
        );
        assert!(sent.stdout.is_empty());
        // Secure sessions confirm each batch before `invoke` returns; one-way cannot.
        collector.wait_for(expected.len());
        let (printed, problems) = collector.finish();
        assert!(
            !problems.lines().any(|l| l.starts_with("collector: ")),
            "{transport}/{protection}: {problems}"
        );
        let received = json_lines(&printed);
        assert_same_records(&format!("{transport}/{protection}"), &received, &expected);
        for text in [&printed, &problems, &sent_err] {
            assert!(!text.contains(&license), "the license leaked");
        }
    }
}

#[test]
fn a_sender_with_another_license_is_refused_and_fails_clearly() {
    let collector = CollectorProcess::start(&test_license());
    let other = License::build(424242, b"a different key!");
    let env = [
        ("WHATAP_HOST", collector.addr.ip().to_string()),
        ("WHATAP_PORT", collector.addr.port().to_string()),
        ("WHATAP_LICENSE", other.clone()),
        ("WHATAP_SEND_BUDGET_MS", "3000".to_string()),
        ("WHATAP_MAX_ATTEMPTS", "2".to_string()),
    ];
    let file = fixtures()
        .join("events/rds-db-proxy-event.json")
        .display()
        .to_string();
    let out = invoke("whatap", &env, std::slice::from_ref(&file));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("error: {file}: delivery failed: could not deliver 1 records to WhaTap (127.0.0.1) after 2 attempts")),
        "{err}"
    );
    assert!(last.contains("closed the connection"), "{last}");
    let (printed, problems) = collector.finish();
    assert!(printed.is_empty());
    assert!(problems.contains("refused the hello: the hello is not a WhaTap hello: it does not decrypt with this license"), "{problems}");
    assert!(!err.contains(&other) && !problems.contains(&other));
}

#[test]
fn a_bad_whatap_configuration_is_named_at_start_up() {
    let file = fixtures()
        .join("events/rds-db-proxy-event.json")
        .display()
        .to_string();
    let secret = "x4c1p2g0g40o4-TOPSECRET-xq3gf208h44ok";
    let out = invoke(
        "whatap",
        &[
            ("WHATAP_HOST", "127.0.0.1".into()),
            ("WHATAP_LICENSE", secret.into()),
        ],
        &[file],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        err,
        "error: the WhaTap sink: WHATAP_LICENSE: the license is malformed: token 2 of 3 is not a Hexa32 or decimal number\n"
    );
    assert!(!err.contains("TOPSECRET"));
}

// ---- fault matrix, in process ----

/// Starts an in-process collector on `ip:port` (port 0 = any).
async fn collector_on(
    ip: &str,
    port: u16,
    faults: Faults,
) -> (SocketAddr, Arc<MemoryReport>, Arc<Collector>) {
    let listener = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), port))
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let report = Arc::new(MemoryReport::default());
    let collector = Collector::new(License::parse(&test_license()).unwrap(), faults);
    tokio::spawn(collector.clone().serve(listener, report.clone()));
    (addr, report, collector)
}

fn sink_config(hosts: &str, port: u16, extra: &[(&str, &str)]) -> WhatapConfig {
    let license = test_license();
    let port = port.to_string();
    let mut vars: Vec<(&str, &str)> = vec![
        ("WHATAP_HOST", hosts),
        ("WHATAP_PORT", &port),
        ("WHATAP_LICENSE", &license),
        ("WHATAP_CONNECT_TIMEOUT_MS", "500"),
        ("WHATAP_WRITE_TIMEOUT_MS", "1000"),
        ("WHATAP_SEND_BUDGET_MS", "4000"),
        // The agents' ZipPack size: several packs, so frames, per batch for the faults below.
        ("WHATAP_ZIP_BYTES", "65536"),
    ];
    vars.extend_from_slice(extra);
    WhatapConfig::from_lookup(
        |k| {
            vars.iter()
                .rev()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        },
        "fault-test",
    )
    .expect("config")
}

/// `n` distinct records of about 120 bytes each, sharing one stream tag.
fn records(batch: usize, n: usize) -> Batch {
    let records = (0..n)
        .map(|i| LogRecord {
            category: "#RDS_LOG".into(),
            time: NOW_MS + i as i64,
            tags: vec![("cw_event_id".into(), format!("{batch}-{i}"))],
            fields: vec![("i".into(), FieldValue::Integer(i as i64))],
            content: format!("batch {batch} record {i} {}", "y".repeat(80)),
            line: 0,
        })
        .collect();
    Batch {
        stream_tags: vec![("logStream".into(), format!("stream-{batch}"))],
        records,
    }
}

/// The ids of the records the collector received, in the order it read them.
fn received_in_order(report: &MemoryReport) -> Vec<String> {
    report
        .records
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            r.record
                .tags
                .iter()
                .find(|(k, _)| k == "cw_event_id")
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect()
}

fn received_ids(report: &MemoryReport) -> Vec<String> {
    let mut ids = received_in_order(report);
    ids.sort();
    ids
}

/// The ids of the records sent, in the order sent.
fn sent_in_order(batches: &[Batch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| &b.records)
        .map(|r| r.tags[0].1.clone())
        .collect()
}

fn sent_ids(batches: &[Batch]) -> Vec<String> {
    let mut ids = sent_in_order(batches);
    ids.sort();
    ids
}

/// At-least-once: every record sent arrived, some perhaps twice (after a re-send).
fn assert_every_record_arrived(report: &MemoryReport, batches: &[Batch]) {
    let mut got = received_ids(report);
    got.dedup();
    assert_eq!(got, sent_ids(batches), "every record arrived at least once");
}

/// Connections the collector accepted (each one a handshake).
fn connections(collector: &Collector) -> usize {
    collector
        .connections
        .load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test]
async fn first_host_refuses_so_the_second_gets_everything() {
    // The second "host" listens; nothing listens on the first at the same port.
    let (addr, report, collector) = collector_on("127.0.0.3", 0, Faults::default()).await;
    let mut sink = WhatapSink::new(sink_config("127.0.0.2/127.0.0.3", addr.port(), &[]));
    let batches: Vec<Batch> = (0..3).map(|b| records(b, 700)).collect();
    for b in &batches {
        sink.deliver(b)
            .await
            .expect("delivered through the second host");
    }
    sink.close().await;
    assert_eq!(
        received_ids(&report),
        sent_ids(&batches),
        "exactly every record, once"
    );
    assert_eq!(sink.stats.failed_attempts, 1, "one refused connect");
    assert_eq!(sink.stats.connects, 1);
    assert_eq!(connections(&collector), 1);
    assert!(report.problems.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_connection_dropped_mid_batch_is_retried_and_every_record_arrives() {
    let faults = Faults {
        drop_at_data_frame: Some(2),
        ..Faults::default()
    };
    let (addr, report, collector) = collector_on("127.0.0.4", 0, faults).await;
    let mut sink = WhatapSink::new(sink_config("127.0.0.4", addr.port(), &[]));
    // 2000 records of ~120 bytes: several 64 KiB ZipPacks per batch.
    let batches: Vec<Batch> = (0..2).map(|b| records(b, 2000)).collect();
    for b in &batches {
        sink.deliver(b).await.expect("delivered after a reconnect");
    }
    sink.close().await;
    assert_every_record_arrived(&report, &batches);
    assert_eq!(sink.stats.failed_attempts, 1);
    assert_eq!(
        connections(&collector),
        2,
        "a fresh handshake after the drop"
    );
}

#[tokio::test]
async fn queued_batches_are_confirmed_once_and_resent_whole_after_a_drop() {
    // As an invocation sends: batches queued without a round trip each, one confirmation at
    // the end; queued whole (`queue`), or as the sandbox hands them over (`send`, compressed
    // on the compressor's thread, then `finish`). The connection drops at the 5th data frame,
    // so the first batches were written to a connection that is gone before anything was
    // confirmed.
    for (ip, through_the_compressor) in [("127.0.0.9", false), ("127.0.0.11", true)] {
        let faults = Faults {
            drop_at_data_frame: Some(5),
            ..Faults::default()
        };
        let (addr, report, collector) = collector_on(ip, 0, faults).await;
        let mut sink = WhatapSink::new(sink_config(ip, addr.port(), &[]));
        let batches: Vec<Batch> = (0..4).map(|b| records(b, 1500)).collect();
        if through_the_compressor {
            send_through_the_compressor(&mut sink, &batches).await;
        } else {
            for b in &batches {
                sink.queue(b).await.expect("queued");
            }
            assert_eq!(
                sink.stats.records, 0,
                "nothing counts as delivered before the confirmation"
            );
            sink.confirm().await.expect("confirmed after re-sending");
        }
        sink.close().await;
        assert_every_record_arrived(&report, &batches);
        assert_eq!(sink.stats.records, 6000);
        assert!(
            connections(&collector) >= 2,
            "a fresh handshake after the drop"
        );
    }
}

/// As the sandbox hands batches over: `send` for each (serialized, then compressed on the
/// compressor's thread), `finish` at the end.
async fn send_through_the_compressor(sink: &mut WhatapSink, batches: &[Batch]) {
    for b in batches {
        b.with_ref(|r| RecordSink::send(sink, r))
            .await
            .expect("sent");
    }
    RecordSink::finish(sink).await.expect("confirmed");
}

#[tokio::test]
async fn sends_compressed_beside_the_mapping_arrive_in_order_and_are_counted_on_the_wire() {
    let (addr, report, collector) = collector_on("127.0.0.10", 0, Faults::default()).await;
    let mut sink = WhatapSink::new(sink_config("127.0.0.10", addr.port(), &[]));
    let batches: Vec<Batch> = (0..5).map(|b| records(b, 1200)).collect();
    send_through_the_compressor(&mut sink, &batches).await;
    sink.close().await;
    // Exactly once, and in the order sent: packs are written as they were submitted.
    assert_eq!(received_in_order(&report), sent_in_order(&batches));
    assert_eq!(sink.stats.records, 6000);
    assert!(sink.stats.packs > 5, "several packs per batch");
    // What the sink counts is what the collector read, frame headers included.
    let read = collector
        .data_bytes
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(sink.stats.wire_bytes, read);
    assert_eq!(RecordSink::wire_bytes(&sink), Some(read));
}

#[tokio::test]
async fn larger_zip_packs_and_higher_levels_put_fewer_bytes_on_the_wire() {
    let batches: Vec<Batch> = (0..3).map(|b| records(b, 2000)).collect();
    let mut wire = Vec::new();
    for (i, (level, zip)) in [("1", "65536"), ("6", "65536"), ("6", "1048576")]
        .into_iter()
        .enumerate()
    {
        let ip = format!("127.0.0.{}", 12 + i);
        let (addr, report, _) = collector_on(&ip, 0, Faults::default()).await;
        let mut sink = WhatapSink::new(sink_config(
            &ip,
            addr.port(),
            &[
                ("WHATAP_COMPRESSION_LEVEL", level),
                ("WHATAP_ZIP_BYTES", zip),
            ],
        ));
        send_through_the_compressor(&mut sink, &batches).await;
        sink.close().await;
        // Every setting delivers the same records; the collector decoded and checked each.
        assert_eq!(
            received_ids(&report),
            sent_ids(&batches),
            "level {level}, {zip}"
        );
        wire.push(sink.stats.wire_bytes);
    }
    assert!(
        wire[1] < wire[0],
        "level 6 is smaller than level 1: {wire:?}"
    );
    assert!(
        wire[2] < wire[1],
        "1 MiB packs are smaller than 64 KiB: {wire:?}"
    );
}

#[tokio::test]
async fn a_silent_collector_fails_the_send_within_its_budget() {
    let faults = Faults {
        stall_handshake: true,
        ..Faults::default()
    };
    let (addr, report, _) = collector_on("127.0.0.5", 0, faults).await;
    let mut sink = WhatapSink::new(sink_config(
        "127.0.0.5",
        addr.port(),
        &[("WHATAP_SEND_BUDGET_MS", "1500")],
    ));
    let started = Instant::now();
    let err = sink.deliver(&records(0, 10)).await.unwrap_err().to_string();
    let took = started.elapsed();
    assert!(
        err.starts_with("could not deliver 10 records to WhaTap (127.0.0.5) after "),
        "{err}"
    );
    assert!(
        err.contains("did not answer the handshake within 500 ms")
            || err.contains("the send budget ran out"),
        "{err}"
    );
    // A bound on the budget (1.5 s), not a speed goal: the send must not hang.
    assert!(took < Duration::from_millis(1500 + 1500), "took {took:?}");
    assert!(report.records.lock().unwrap().is_empty());
}

#[tokio::test]
async fn garbage_in_the_handshake_reply_is_a_clear_error() {
    let faults = Faults {
        garbage_handshake: true,
        ..Faults::default()
    };
    let (addr, _, _) = collector_on("127.0.0.6", 0, faults).await;
    let mut sink = WhatapSink::new(sink_config(
        "127.0.0.6",
        addr.port(),
        &[("WHATAP_MAX_ATTEMPTS", "2")],
    ));
    let err = sink.deliver(&records(0, 1)).await.unwrap_err().to_string();
    assert!(err.contains("after 2 attempts"), "{err}");
    assert!(
        err.contains("the handshake reply cannot be decrypted with this license's key"),
        "{err}"
    );
}

#[tokio::test]
async fn unconfirmed_batches_fail_and_succeed_once_confirmation_is_off() {
    let faults = Faults {
        ignore_time_sync: true,
        ..Faults::default()
    };
    let (addr, report, _) = collector_on("127.0.0.7", 0, faults).await;
    let mut sink = WhatapSink::new(sink_config(
        "127.0.0.7",
        addr.port(),
        &[("WHATAP_MAX_ATTEMPTS", "2")],
    ));
    let err = sink.deliver(&records(0, 5)).await.unwrap_err().to_string();
    assert!(
        err.contains("did not confirm the batch within 1000 ms"),
        "{err}"
    );
    // Queued batches are written at once; the missing confirmation fails them together, at
    // the end, not one by one.
    sink.queue(&records(2, 5)).await.expect("written");
    sink.queue(&records(3, 5)).await.expect("written");
    let err = sink.confirm().await.unwrap_err().to_string();
    assert!(
        err.starts_with("could not deliver 10 records to WhaTap (127.0.0.7) after 2 attempts"),
        "{err}"
    );
    // Given up: nothing is left to re-send with a later invocation's records.
    sink.confirm().await.expect("nothing pending");
    let mut unconfirmed = WhatapSink::new(sink_config(
        "127.0.0.7",
        addr.port(),
        &[("WHATAP_CONFIRM", "off")],
    ));
    unconfirmed
        .deliver(&records(1, 5))
        .await
        .expect("written without confirmation");
    unconfirmed.close().await;
    // Unconfirmed means the sender cannot know when the collector is done: poll (5 s at most).
    let until = Instant::now() + Duration::from_secs(5);
    while received_ids(&report)
        .iter()
        .filter(|i| i.starts_with("1-"))
        .count()
        < 5
        && Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ids = received_ids(&report);
    assert!(
        ids.iter().filter(|i| i.starts_with("1-")).count() == 5,
        "{ids:?}"
    );
}

#[tokio::test]
async fn a_flapping_collector_still_gets_every_record() {
    // Connections 1, 3, 5… die at their 2nd data frame; 2, 4, 6… work.
    let faults = Faults {
        flap_at_data_frame: Some(2),
        ..Faults::default()
    };
    let (addr, report, collector) = collector_on("127.0.0.8", 0, faults).await;
    let mut sink = WhatapSink::new(sink_config("127.0.0.8", addr.port(), &[]));
    let batches: Vec<Batch> = (0..4).map(|b| records(b, 1500)).collect();
    for b in &batches {
        sink.deliver(b)
            .await
            .expect("delivered despite the flapping");
        // Reconnect for the next batch, so every batch meets a flapping connection.
        sink.close().await;
    }
    assert_every_record_arrived(&report, &batches);
    assert_eq!(
        connections(&collector),
        8,
        "each batch: one dropped connection, one good one"
    );
    assert_eq!(sink.stats.failed_attempts, 4);
}

/// A warm connection idle past `WHATAP_IDLE_RECONNECT_MS` is replaced before it carries data:
/// a path that forgot the flow silently costs a new handshake, not a write timeout and a failed
/// attempt.
#[tokio::test]
async fn an_idle_connection_is_replaced_before_it_carries_data() {
    let faults = Faults {
        forget_after_first_confirm: true,
        ..Faults::default()
    };
    let (addr, report, collector) = collector_on("127.0.0.1", 0, faults).await;
    let mut sink = WhatapSink::new(sink_config(
        "127.0.0.1",
        addr.port(),
        &[("WHATAP_IDLE_RECONNECT_MS", "50")],
    ));
    let batches: Vec<Batch> = (0..2).map(|b| records(b, 10)).collect();
    sink.deliver(&batches[0]).await.expect("first batch");
    // Idle for longer than the setting; the collector has forgotten the connection.
    tokio::time::sleep(Duration::from_millis(120)).await;
    sink.deliver(&batches[1]).await.expect("second batch");
    sink.close().await;
    assert_eq!(received_ids(&report), sent_ids(&batches));
    assert_eq!(
        sink.stats.failed_attempts, 0,
        "no write into the forgotten flow"
    );
    assert_eq!((sink.stats.connects, connections(&collector)), (2, 2));
}

/// One-way delivery of an event sent in several batches: every batch arrives (each batch's
/// packs are written as they are compressed; writing one must not forget the next).
#[test]
fn one_way_delivers_every_batch_of_an_event() {
    let license = test_license();
    let collector = CollectorProcess::start(&license);
    let env = [
        ("WHATAP_HOST", collector.addr.ip().to_string()),
        ("WHATAP_PORT", collector.addr.port().to_string()),
        ("WHATAP_LICENSE", license.clone()),
        ("WHATAP_TRANSPORT", "oneway".to_string()),
    ];
    let mut cmd = crate::common::forwarder_cmd();
    cmd.args([
        "invoke",
        "--sink",
        "whatap",
        "--config",
        "batch_max_records=1",
    ])
    .arg(fixtures().join("events/awslogs-postgresql.json"))
    .arg(fixtures().join("events/kinesis-cloudwatch-logs.json"));
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 3 records, then the Kinesis event's 3 + 2, one batch each.
    collector.wait_for(8);
    let (printed, _) = collector.finish();
    assert_eq!(json_lines(&printed).len(), 8);
}
