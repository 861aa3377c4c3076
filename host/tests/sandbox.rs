//! The sandbox around a mapper: a guest that traps, loops or allocates without end fails only
//! its own invocation, with the cause named and within its budget, and the next one works; a
//! guest cannot reach files, the environment, sockets or the real clock; a component built for
//! another major contract version is refused by name.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rds_forwarder::embedded;
use rds_forwarder::runtime::{LoadError, RunError, Runtime, SandboxLimits, Trust, precompile};
use rds_forwarder::sink::{Memory, into_memory};

async fn load_test_mapper(runtime: &Runtime) -> std::sync::Arc<rds_forwarder::runtime::Mapper> {
    let bytes = std::fs::read(test_component("test_mapper")).expect("test component");
    runtime
        .load(&bytes, "test_mapper.wasm")
        .await
        .expect("loads")
}

async fn run_mode(
    runtime: &Runtime,
    mapper: &rds_forwarder::runtime::Mapper,
    mode: &str,
    budget: Duration,
) -> (Result<String, RunError>, Duration) {
    let started = Instant::now();
    let ran = runtime
        .run(
            mapper,
            b"{}",
            &invocation(&[("mode", mode)]),
            Box::new(Memory::default()),
            budget,
        )
        .await;
    let took = started.elapsed();
    let result = ran.result.map(|_| {
        let sink = into_memory(ran.sink).expect("memory sink");
        sink.records()
            .first()
            .map(|r| r.content.clone())
            .unwrap_or_default()
    });
    (result, took)
}

#[tokio::test(flavor = "current_thread")]
async fn faults_fail_one_invocation_and_the_next_one_works() {
    let runtime = Runtime::new(SandboxLimits {
        memory_bytes: 64 << 20,
    });
    let mapper = load_test_mapper(&runtime).await;
    assert_eq!(mapper.label(), "test-mapper@2.0.0-test");

    let (r, _) = run_mode(&runtime, &mapper, "trap", Duration::from_secs(10)).await;
    let e = r.unwrap_err();
    assert!(matches!(e, RunError::Trap(_)), "{e}");
    assert!(e.to_string().starts_with("the mapper trapped: "), "{e}");

    let budget = Duration::from_millis(300);
    let (r, took) = run_mode(&runtime, &mapper, "loop", budget).await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "the mapper ran past its time budget of 300 ms and was stopped"
    );
    // A bound, not a speed goal: the interrupt must come within a few ticks of the budget.
    assert!(took < budget + Duration::from_secs(2), "took {took:?}");

    let (r, _) = run_mode(&runtime, &mapper, "alloc", Duration::from_secs(20)).await;
    let e = r.unwrap_err();
    assert!(
        matches!(e, RunError::OutOfMemory { limit_mb: 64, .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("the mapper exceeded its memory limit of 64 MiB"),
        "{e}"
    );

    // After each fault the same mapper serves the next invocation.
    let (r, _) = run_mode(&runtime, &mapper, "echo", Duration::from_secs(10)).await;
    assert_eq!(r.unwrap(), "mapped by test-mapper (2 bytes)");
}

#[tokio::test(flavor = "current_thread")]
async fn the_guest_has_no_files_env_sockets_or_real_clock() {
    let runtime = runtime();
    let mapper = load_test_mapper(&runtime).await;
    let budget = Duration::from_secs(10);
    let (files, _) = run_mode(&runtime, &mapper, "files", budget).await;
    assert!(
        files.unwrap().starts_with("files: Err("),
        "no preopened directories"
    );
    let (env, _) = run_mode(&runtime, &mapper, "env", budget).await;
    assert_eq!(env.unwrap(), "env: 0 variables");
    let (socket, _) = run_mode(&runtime, &mapper, "socket", budget).await;
    assert!(socket.unwrap().starts_with("socket: Err("), "no network");
    let (clock, _) = run_mode(&runtime, &mapper, "clock", budget).await;
    // The wall clock stands at the invocation's receive time.
    assert_eq!(clock.unwrap(), format!("clock: Ok({NOW_MS})"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_component_of_a_future_major_contract_is_refused_naming_both_versions() {
    let runtime = runtime();
    let bytes = std::fs::read(test_component("future_mapper")).expect("future component");
    let err = runtime
        .load(&bytes, "future_mapper.wasm")
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, LoadError::IncompatibleContract { .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the mapper was built for contract whatap:rds-mapper@2.0.0, but this host implements whatap:rds-mapper@1.2.0 (compatible: 1.0.x to 1.2.x)"
    );
}

/// The default mapper runs without epoch checks, every other one with them (and so with a
/// time budget); a `.cwasm` carries its engine's settings and lands on the engine it fits.
#[tokio::test(flavor = "current_thread")]
async fn the_default_mapper_runs_built_in_and_every_other_one_bounded() {
    let runtime = runtime();
    let default = runtime
        .load_builtin(embedded::DEFAULT_MAPPER)
        .await
        .expect("the default loads");
    assert_eq!(default.trust, Trust::Builtin);
    // The same bytes from a file are a mapper like any other.
    let from_file = runtime
        .load(embedded::DEFAULT_MAPPER, "mapper.wasm")
        .await
        .expect("loads from a file");
    assert_eq!(from_file.trust, Trust::Bounded);
    assert_eq!(load_test_mapper(&runtime).await.trust, Trust::Bounded);

    // `compile` without `--mapper` makes a built-in artifact, which runs so from anywhere.
    let builtin = precompile(embedded::DEFAULT_MAPPER, None, Trust::Builtin).unwrap();
    let from_s3 = runtime
        .load(&builtin, "s3://mappers/default.cwasm")
        .await
        .expect("a built-in .cwasm loads");
    assert_eq!(from_s3.trust, Trust::Builtin);
    // A bounded artifact is not the packaged default: refused, and the reason says why.
    let bounded = precompile(embedded::DEFAULT_MAPPER, None, Trust::Bounded).unwrap();
    let err = runtime
        .load_builtin(&bounded)
        .await
        .err()
        .expect("a bounded .cwasm is not the built-in default");
    assert!(matches!(err, LoadError::PrecompiledMismatch(_)), "{err}");
    assert!(err.to_string().contains("epoch"), "{err}");
    let bounded = runtime
        .load(&bounded, "mapper.cwasm")
        .await
        .expect("a bounded .cwasm loads as a mapper from a file");
    assert_eq!(bounded.trust, Trust::Bounded);

    // Both engines map the same event to the same records.
    let event = std::fs::read(fixtures().join("events/awslogs-mysql-error.json")).unwrap();
    let mut outputs = Vec::new();
    for mapper in [&default, &from_file] {
        let ran = runtime
            .run(
                mapper,
                &event,
                &invocation(&[]),
                Box::new(Memory::default()),
                Duration::from_secs(10),
            )
            .await;
        ran.result.expect("maps");
        outputs.push(into_memory(ran.sink).expect("memory sink").records());
    }
    assert!(!outputs[0].is_empty());
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn compile_makes_a_cwasm_that_loads_and_refuses_a_foreign_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("default.cwasm");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_rds-forwarder"))
        .args(["compile", "--output", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let described = std::process::Command::new(env!("CARGO_BIN_EXE_rds-forwarder"))
        .args(["describe", "--mapper", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        described.status.success(),
        "{}",
        String::from_utf8_lossy(&described.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&described.stdout).unwrap();
    assert_eq!(info["name"], "rds-mapper");
    // A .cwasm for another engine configuration (here: one with fuel) is refused clearly.
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    let other = wasmtime::Engine::new(&config).unwrap();
    let foreign = other
        .precompile_component(rds_forwarder::embedded::DEFAULT_MAPPER)
        .unwrap();
    let bad = dir.path().join("foreign.cwasm");
    std::fs::write(&bad, foreign).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rds-forwarder"))
        .args(["describe", "--mapper", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("a precompiled mapper (.cwasm) that this host build cannot run"),
        "{err}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_10_mb_message_maps_in_wasm_within_the_default_memory_cap() {
    let runtime = runtime(); // 256 MiB, the Lambda default
    let big = format!(
        "2024-01-19 13:20:43 UTC:h(1):u@d:[7]:LOG:  statement: SELECT '{}'",
        "x".repeat(10 << 20)
    );
    let payload = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/aws/rds/instance/db/postgresql",
        "logStream": "db.0", "subscriptionFilters": [], "logEvents": [{"id": "1", "timestamp": 1, "message": big}]});
    let event = serde_json::json!({"awslogs": {"data": rds_mapper::awslogs::encode(payload.to_string().as_bytes())}}).to_string();
    let (summary, records) = run_wasm(&runtime, event.as_bytes())
        .await
        .expect("maps within the cap");
    assert_eq!(summary.split, 1);
    assert_eq!(
        records.len(),
        big.len()
            .div_ceil(rds_mapper::config::DEFAULT_MAX_CONTENT_BYTES)
    );
    let rejoined: String = records
        .iter()
        .map(|r| r["content"].as_str().unwrap())
        .collect();
    assert_eq!(rejoined, big, "nothing lost across the parts");
}

#[tokio::test(flavor = "current_thread")]
async fn a_large_first_entry_then_many_small_ones_map_within_the_default_memory_cap() {
    // The batch's buffers are sized from its first record: not for a thousand like this one.
    let runtime = runtime();
    let mut events =
        vec![serde_json::json!({"id": "0", "timestamp": 1, "message": "x".repeat(900_000)})];
    events.extend((1..2000).map(|i| serde_json::json!({"id": i.to_string(), "timestamp": 1, "message": format!("small {i}")})));
    let payload = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/aws/rds/instance/db/postgresql",
        "logStream": "db.0", "subscriptionFilters": [], "logEvents": events});
    let event = serde_json::json!({"awslogs": {"data": rds_mapper::awslogs::encode(payload.to_string().as_bytes())}}).to_string();
    let (summary, records) = run_wasm(&runtime, event.as_bytes())
        .await
        .expect("maps within the cap");
    assert_eq!((summary.records, records.len()), (2000, 2000));
    assert_eq!(records[1999]["content"], "small 1999");
}
