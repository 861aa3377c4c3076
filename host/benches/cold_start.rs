//! Cold start: process start → first invocation answered, for the forwarder with the embedded
//! mapper (JIT), with its precompiled `.cwasm` beside the binary (no JIT), with a `.wasm` from a
//! file, beside a minimal `lambda_runtime` hello binary built the same way; and the peak RSS of
//! the forwarder mapping a full CloudWatch batch (1 MB of messages, 10,000 events).
//!
//! Run: `cargo bench -p rds-forwarder --bench cold_start` (prints a table).

#[path = "../tests/common/moto.rs"]
mod moto;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rds_mapper::generate;

use rds_forwarder::bench::runtime_api::{Outcome, RuntimeApi};

const RUNS: usize = 15;

fn spawn(binary: &Path, api: &RuntimeApi, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(binary);
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "cold-start")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("WHATAP_HOST", "127.0.0.1")
        .env(
            "WHATAP_LICENSE",
            rds_forwarder::whatap::license::License::build(424242, b"bench-key-012345"),
        )
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn")
}

/// Median and minimum of process start → first response, in ms.
fn cold_start(binary: &Path, env: &[(&str, String)], event: &[u8]) -> (f64, f64) {
    let mut times = Vec::with_capacity(RUNS);
    for i in 0..RUNS {
        let api = RuntimeApi::start();
        let id = format!("cold-{i}");
        api.invoke(&id, event, Duration::from_secs(30));
        let started = Instant::now();
        let mut child = spawn(binary, &api, env);
        let outcome = api.outcome(&id, Duration::from_secs(30));
        let took = started.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            matches!(outcome, Some(Outcome::Response(_))),
            "{}: {outcome:?}",
            binary.display()
        );
        times.push(took.as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    (times[RUNS / 2], times[0])
}

/// A full CloudWatch batch of the PostgreSQL sample (see `rds_mapper::generate`).
fn largest_payload() -> Vec<u8> {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/logs/postgresql.log");
    let text = std::fs::read_to_string(sample).expect("sample");
    let entries = generate::sample_entries("postgresql", &text, generate::Mode::Message);
    generate::awslogs_event(
        "/aws/rds/instance/bench/postgresql",
        "bench.0",
        &entries,
        generate::Size::CloudWatchBatch,
        1_705_670_443_000,
    )
    .expect("entries")
    .event
}

/// Peak RSS (VmHWM) of the forwarder after mapping the largest payload, in MiB.
fn peak_rss(binary: &Path) -> f64 {
    let collector_port = {
        // A collector that accepts and confirms, in this process.
        let rt = Box::leak(Box::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("rt"),
        ));
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let license = rds_forwarder::whatap::license::License::parse(
                &rds_forwarder::whatap::license::License::build(424242, b"bench-key-012345"),
            )
            .expect("license");
            let collector = rds_forwarder::collector::Collector::new(license, Default::default());
            tokio::spawn(collector.serve(
                listener,
                std::sync::Arc::new(rds_forwarder::collector::MemoryReport::default()),
            ));
            port
        })
    };
    let api = RuntimeApi::start();
    api.invoke("big", &largest_payload(), Duration::from_secs(60));
    let mut child = spawn(binary, &api, &[("WHATAP_PORT", collector_port.to_string())]);
    let outcome = api.outcome("big", Duration::from_secs(60));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(matches!(outcome, Some(Outcome::Response(_))), "{outcome:?}");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let forwarder = PathBuf::from(env!("CARGO_BIN_EXE_rds-forwarder"));
    let hello = PathBuf::from(env!("CARGO_BIN_EXE_lambda-hello"));
    let event = br#"{"version":"0","id":"1","detail-type":"RDS DB Instance Event","source":"aws.rds","account":"1","time":"2024-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{"Message":"cold","EventCategories":["notification"],"SourceType":"DB_INSTANCE","SourceIdentifier":"db","EventID":"RDS-EVENT-0088"}}"#;
    // The forwarder with no sink reachable would fail the invocation, so its cold start uses a
    // CONTROL_MESSAGE, which maps to no records and needs no network.
    let control = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/events/awslogs-control-message.json"),
    )
    .expect("fixture");

    // The embedded mapper precompiled, beside a copy of the binary (as in the Lambda zip).
    let dir = tempfile::tempdir().expect("tempdir");
    let packaged = dir.path().join("bootstrap");
    std::fs::copy(&forwarder, &packaged).expect("copy");
    let cwasm = dir
        .path()
        .join(rds_forwarder::mapper_store::embedded_cwasm_name());
    let out = Command::new(&forwarder)
        .args(["compile", "--output"])
        .arg(&cwasm)
        .output()
        .expect("compile");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wasm_file = dir.path().join("mapper.wasm");
    std::fs::write(&wasm_file, rds_forwarder::embedded::DEFAULT_MAPPER).expect("wasm");
    // The bare binary must not find a .cwasm beside it.
    let bare_dir = tempfile::tempdir().expect("tempdir");
    let bare = bare_dir.path().join("bootstrap");
    std::fs::copy(&forwarder, &bare).expect("copy");

    let mut rows = vec![
        (
            "lambda_runtime hello (baseline)",
            cold_start(&hello, &[], event),
        ),
        (
            "forwarder, embedded + .cwasm (as packaged)",
            cold_start(&packaged, &[], &control),
        ),
        ("forwarder, embedded, JIT", cold_start(&bare, &[], &control)),
        (
            "forwarder, MAPPER_URI=file .wasm (JIT)",
            cold_start(
                &bare,
                &[("MAPPER_URI", wasm_file.display().to_string())],
                &control,
            ),
        ),
    ];
    // From a local S3 (moto), when it is installed.
    let moto_available = Command::new("python3")
        .args(["-c", "import moto.server"])
        .status()
        .is_ok_and(|s| s.success());
    let _moto = moto_available.then(|| {
        let moto = moto::Moto::start();
        let s3 = moto.client();
        s3.put(
            "bench",
            "mapper.wasm",
            rds_forwarder::embedded::DEFAULT_MAPPER,
            true,
        )
        .expect("upload");
        s3.put(
            "bench",
            "mapper.cwasm",
            &std::fs::read(&cwasm).expect("cwasm"),
            false,
        )
        .expect("upload");
        for (name, key) in [
            ("forwarder, MAPPER_URI=s3 .wasm (JIT)", "mapper.wasm"),
            ("forwarder, MAPPER_URI=s3 .cwasm", "mapper.cwasm"),
        ] {
            let mut env = moto.env();
            env.push(("MAPPER_URI", format!("s3://bench/{key}")));
            rows.push((name, cold_start(&bare, &env, &control)));
        }
        moto
    });
    if !moto_available {
        println!("(moto not installed: S3 variants skipped; pip install 'moto[server]')");
    }
    println!("\ncold start: process start -> first response ({RUNS} runs each)");
    println!(
        "{:<46} {:>10} {:>10} {:>14}",
        "variant", "median ms", "min ms", "vs hello (ms)"
    );
    let base = rows[0].1.0;
    for (name, (median, min)) in rows {
        println!(
            "{name:<46} {median:>10.1} {min:>10.1} {:>+14.1}",
            median - base
        );
    }
    println!(
        "\npeak RSS mapping a full CloudWatch batch (1 MB of messages): {:.1} MiB",
        peak_rss(&packaged)
    );
}
