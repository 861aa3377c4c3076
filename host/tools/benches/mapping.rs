//! Mapping throughput per log type: the same ~1 MB CloudWatch payload mapped by the native
//! library, by the embedded component in wasmtime (fresh store per event, as in Lambda), and
//! decoded only (base64 + gunzip + JSON parse: the floor of any forwarder).
//!
//! Payloads are built from `fixtures/logs` by `rds_mapper::generate`. `rds-forwarder bench`
//! prints the same figures (and more) as one table. Run:
//! `cargo bench -p rds-forwarder --bench mapping`

use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rds_forwarder::sandbox::bindings::Invocation;
use rds_forwarder::sandbox::{Sandbox, SandboxLimits};
use rds_forwarder::sink::Count;

/// One full CloudWatch batch per sample of `fixtures/logs`, the payloads `rds-forwarder bench`
/// measures: (name, event JSON, decompressed payload size).
fn payloads() -> Vec<(String, Vec<u8>, usize)> {
    let options = rds_forwarder_tools::bench::Options {
        fixtures: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures"),
        per_cell: Duration::ZERO,
        cold_runs: 0,
        only: None,
        skip_processes: true,
        mapper: None,
        bootstrap: std::path::PathBuf::new(),
    };
    rds_forwarder_tools::bench::throughput::payloads(&options)
        .expect("payloads")
        .into_iter()
        .filter(|(_, log_type, _)| log_type != "rds-event")
        .map(|(name, _, g)| (name, g.event, g.payload_bytes))
        .collect()
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
    let sandbox = Sandbox::new(SandboxLimits::default());
    let mapper = rt.block_on(sandbox.load_embedded()).expect("mapper");
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
                    let payload = rds_mapper::awslogs::parse(&json).expect("parse");
                    // Every message unescaped, as a decoder into structs of strings does.
                    payload
                        .log_events
                        .iter()
                        .map(|e| e.message().len())
                        .sum::<usize>()
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("map_native", &name), &event, |b, event| {
            b.iter(|| {
                let mut out = rds_mapper::Count::default();
                rds_mapper::map_event(event, &native_inv, &mut out)
                    .expect("maps")
                    .records
            })
        });
        group.bench_with_input(BenchmarkId::new("map_wasm", &name), &event, |b, event| {
            b.iter(|| {
                let ran = rt.block_on(sandbox.run(
                    &mapper,
                    event,
                    &inv,
                    Box::new(Count::default()),
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
