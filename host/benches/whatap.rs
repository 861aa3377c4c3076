//! Encode + send throughput of the WhaTap sink: records → ZipPacks at each compression level
//! and ZipPack size tried (the bytes each puts on the wire are printed beside the times), and
//! records delivered to the collector emulator on 127.0.0.1 over a secure (HIDE) session with
//! confirmation, at the default settings.
//!
//! Run: `cargo bench -p rds-forwarder --bench whatap`

use std::sync::Arc;
use std::sync::atomic::Ordering;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rds_forwarder::collector::{Collector, CountReport, Faults};
use rds_forwarder::sandbox::bindings::{FieldValue, LogRecord};
use rds_forwarder::whatap::config::WhatapConfig;
use rds_forwarder::whatap::encode::{AGENT_ZIP_BYTES, DEFAULT_ZIP_BYTES, zip_packs};
use rds_forwarder::whatap::frame::HEADER_LEN;
use rds_forwarder::whatap::gzip::{DEFAULT_LEVEL, Gzip};
use rds_forwarder::whatap::license::License;
use rds_forwarder::whatap::pack::Header;
use rds_forwarder::whatap::sink::WhatapSink;

const RECORDS: usize = 10_000;

fn records() -> Vec<LogRecord> {
    (0..RECORDS)
        .map(|i| LogRecord {
            category: "#RDS_LOG".into(),
            time: 1_700_000_000_000 + i as i64,
            // As the default mapper makes them: stream tags, then a few own tags that vary
            // from record to record; the record id is a field.
            tags: vec![
                ("logGroup".into(), "/aws/rds/instance/prod-mysql/slowquery".into()),
                ("logStream".into(), "prod-mysql".into()),
                ("db_identifier".into(), "prod-mysql".into()),
                ("log_type".into(), "slowquery".into()),
                ("engine".into(), "mysql".into()),
                ("level".into(), ["info", "warning", "info", "error"][i % 4].into()),
                ("parse_status".into(), "parsed".into()),
            ],
            fields: vec![
                ("query_time_ms".into(), FieldValue::Float(2000.192)),
                ("rows_examined".into(), FieldValue::Integer(95_557_073)),
                ("user".into(), FieldValue::Text("admin".into())),
                (
                    "record_id".into(),
                    FieldValue::Text(format!("{:016x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))),
                ),
            ],
            content: format!(
                "# Time: 2023-11-30T07:22:10.190471Z\n# User@Host: admin[admin] @  [127.0.0.1]  Id:  {i}\n\
                 # Query_time: 2.000192  Lock_time: 0.000000 Rows_sent: 1  Rows_examined: 1\nSET timestamp=1701328928;\nselect sleep(2);"
            ),
            line: 0,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let records = rds_forwarder::sink::Batch::new(records());
    let mut group = c.benchmark_group("whatap");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(20);
    let header = Header {
        pcode: 1,
        oid: 2,
        okind: 0,
        onode: 0,
        time: 3,
    };
    let content: usize = records.records.iter().map(|r| r.content.len()).sum();
    for level in [1, 4, DEFAULT_LEVEL, 9] {
        for zip_bytes in [AGENT_ZIP_BYTES, DEFAULT_ZIP_BYTES] {
            // Borrowed once, as the host receives a batch from the guest; one compressor, as
            // a sink keeps one.
            let mut gzip = Gzip::with_level(level);
            let wire: usize = records.with_ref(|batch| {
                zip_packs(batch, header, &mut gzip, zip_bytes)
                    .expect("encodes")
                    .iter()
                    .map(|p| p.bytes.len() + HEADER_LEN)
                    .sum()
            });
            eprintln!(
                "level {level}, {} KiB ZipPacks: {wire} bytes on the wire for {content} bytes of \
                 content ({:.3} per byte)",
                zip_bytes >> 10,
                wire as f64 / content as f64
            );
            let name = format!("encode_zip_packs/level_{level}/zip_{}k", zip_bytes >> 10);
            group.bench_function(name, |b| {
                records.with_ref(|batch| {
                    b.iter(|| zip_packs(batch, header, &mut gzip, zip_bytes).expect("encodes"))
                })
            });
        }
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let license = License::build(424242, b"bench-key-012345");
    let count = Arc::new(CountReport::default());
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let collector = Collector::new(
            License::parse(&license).expect("license"),
            Faults::default(),
        );
        tokio::spawn(collector.serve(listener, count.clone()));
        addr
    });
    let port = addr.port().to_string();
    let vars = [
        ("WHATAP_HOST", "127.0.0.1"),
        ("WHATAP_PORT", port.as_str()),
        ("WHATAP_LICENSE", license.as_str()),
    ];
    let config = WhatapConfig::from_lookup(
        |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        },
        "bench",
    )
    .expect("config");
    let mut sink = WhatapSink::new(config);
    group.bench_function("encode_send_confirm_collector", |b| {
        b.iter(|| rt.block_on(sink.deliver(&records)).expect("delivered"))
    });
    group.finish();
    eprintln!(
        "collector received {} records",
        count.records.load(Ordering::Relaxed)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
