//! Mapping throughput per log type: the same ~1 MB CloudWatch payload mapped by the native
//! library, by the embedded component in wasmtime (fresh store per event, as in Lambda), and
//! decoded only (base64 + gunzip + JSON parse: the floor of any forwarder).
//!
//! Payloads are built from `fixtures/logs` (see `payload` below). Run:
//! `cargo bench -p rds-forwarder --bench mapping`

use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rds_forwarder::embedded;
use rds_forwarder::runtime::bindings::Invocation;
use rds_forwarder::runtime::{Runtime, SandboxLimits};
use rds_forwarder::sink::Memory;

/// What one CloudWatch batch holds at most.
const MAX_BATCH_BYTES: usize = 1_000_000;
const MAX_BATCH_EVENTS: usize = 10_000;

/// One realistic awslogs Lambda event per sample: its entries, one per CloudWatch event,
/// repeated until the batch is full. Returns (name, event JSON, decompressed payload size).
fn payloads() -> Vec<(String, Vec<u8>, usize)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/logs");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("manifest");
    let mut out = Vec::new();
    for line in manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, log_type) = (cols[0], cols[1]);
        let text = std::fs::read_to_string(dir.join(file)).expect("sample");
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("#%")).collect();
        let body = body.join("\n");
        let entries: Vec<String> = rds_mapper::formats::parse_message(log_type, &body)
            .into_iter()
            .map(|e| e.text.to_owned())
            .collect();
        let mut events = Vec::new();
        let mut bytes = 0;
        for (i, message) in entries.iter().cycle().enumerate() {
            if bytes + message.len() + 26 > MAX_BATCH_BYTES || events.len() == MAX_BATCH_EVENTS {
                break;
            }
            bytes += message.len() + 26;
            events.push(serde_json::json!({"id": format!("{:056}", i), "timestamp": 1_700_000_000_000i64 + i as i64, "message": message}));
        }
        let payload = serde_json::json!({
            "messageType": "DATA_MESSAGE", "owner": "123456789012",
            "logGroup": format!("/aws/rds/instance/bench-db/{log_type}"), "logStream": "bench-db",
            "subscriptionFilters": ["whatap"], "logEvents": events,
        })
        .to_string();
        let event = serde_json::json!({"awslogs": {"data": rds_mapper::awslogs::encode(payload.as_bytes())}}).to_string();
        out.push((
            file.trim_end_matches(".log").to_owned(),
            event.into_bytes(),
            payload.len(),
        ));
    }
    out
}

fn invocation() -> Invocation {
    Invocation {
        request_id: "bench".into(),
        function_name: "bench".into(),
        deadline_ms: i64::MAX,
        received_ms: 1_700_000_000_000,
        config: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let runtime = Runtime::new(SandboxLimits::default()).expect("engine");
    let mapper = rt
        .block_on(runtime.load(embedded::DEFAULT_MAPPER, embedded::ORIGIN))
        .expect("mapper");
    let inv = invocation();
    let native_inv = rds_mapper::Invocation {
        received_ms: inv.received_ms,
        ..Default::default()
    };
    let mut group = c.benchmark_group("mapping");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for (name, event, decoded) in payloads() {
        group.throughput(Throughput::Bytes(decoded as u64));
        group.bench_with_input(
            BenchmarkId::new("decode_only_native", &name),
            &event,
            |b, event| {
                b.iter(|| {
                    let v: serde_json::Value = serde_json::from_slice(event).expect("json");
                    let json = rds_mapper::awslogs::decode(
                        v["awslogs"]["data"].as_str().expect("data"),
                        64 << 20,
                    )
                    .expect("decode");
                    rds_mapper::awslogs::parse(&json)
                        .expect("parse")
                        .log_events
                        .len()
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("map_native", &name), &event, |b, event| {
            b.iter(|| {
                let mut out = rds_mapper::Collect::default();
                rds_mapper::map_event(event, &native_inv, &mut out)
                    .expect("maps")
                    .records
            })
        });
        group.bench_with_input(BenchmarkId::new("map_wasm", &name), &event, |b, event| {
            b.iter(|| {
                let ran = rt.block_on(runtime.run(
                    &mapper,
                    event,
                    &inv,
                    Box::new(Memory::default()),
                    Duration::from_secs(60),
                ));
                ran.result.expect("maps").records
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
