//! The sandbox around a mapper: a guest that traps, loops or allocates without end fails only
//! its own invocation, with the cause named and within its budget, and the next one works; a
//! guest cannot reach files, the environment, sockets or the real clock; a component built for
//! another major contract version is refused by name.

use std::time::{Duration, Instant};

use crate::common::*;
use rds_forwarder::embedded;
use rds_forwarder::sandbox::{
    EpochChecks, LoadError, Origin, RunError, Sandbox, SandboxLimits, precompile,
};
use rds_forwarder::sink::{Memory, into_memory};

async fn load_test_mapper(sandbox: &Sandbox) -> std::sync::Arc<rds_forwarder::sandbox::Mapper> {
    let bytes = std::fs::read(test_component("test_mapper")).expect("test component");
    sandbox
        .load(&bytes, Origin::Local("test_mapper.wasm".into()))
        .await
        .expect("loads")
}

async fn run_mode(
    sandbox: &Sandbox,
    mapper: &rds_forwarder::sandbox::Mapper,
    mode: &str,
    budget: Duration,
) -> (Result<String, RunError>, Duration) {
    let started = Instant::now();
    let ran = sandbox
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
    let sandbox = Sandbox::new(SandboxLimits {
        memory_bytes: 64 << 20,
    });
    let mapper = load_test_mapper(&sandbox).await;
    assert_eq!(mapper.label(), "test-mapper@2.0.0-test");

    let (r, _) = run_mode(&sandbox, &mapper, "trap", Duration::from_secs(10)).await;
    let e = r.unwrap_err();
    assert!(matches!(e, RunError::Trap(_)), "{e}");
    assert!(e.to_string().starts_with("the mapper trapped: "), "{e}");

    let budget = Duration::from_millis(300);
    let (r, took) = run_mode(&sandbox, &mapper, "loop", budget).await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "the mapper ran past its time budget of 300 ms and was stopped"
    );
    // A bound, not a speed goal: the interrupt must come within a few ticks of the budget.
    assert!(took < budget + Duration::from_secs(2), "took {took:?}");

    let (r, _) = run_mode(&sandbox, &mapper, "alloc", Duration::from_secs(20)).await;
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
    let (r, _) = run_mode(&sandbox, &mapper, "echo", Duration::from_secs(10)).await;
    assert_eq!(r.unwrap(), "mapped by test-mapper (2 bytes)");
}

#[tokio::test(flavor = "current_thread")]
async fn the_guest_has_no_files_env_sockets_or_real_clock() {
    let sandbox = sandbox();
    let mapper = load_test_mapper(&sandbox).await;
    let budget = Duration::from_secs(10);
    let (files, _) = run_mode(&sandbox, &mapper, "files", budget).await;
    assert!(
        files.unwrap().starts_with("files: Err("),
        "no preopened directories"
    );
    let (env, _) = run_mode(&sandbox, &mapper, "env", budget).await;
    assert_eq!(env.unwrap(), "env: 0 variables");
    let (socket, _) = run_mode(&sandbox, &mapper, "socket", budget).await;
    assert!(socket.unwrap().starts_with("socket: Err("), "no network");
    let (clock, _) = run_mode(&sandbox, &mapper, "clock", budget).await;
    // The wall clock stands at the invocation's receive time.
    assert_eq!(clock.unwrap(), format!("clock: Ok({NOW_MS})"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_component_of_a_future_major_contract_is_refused_naming_both_versions() {
    let sandbox = sandbox();
    let bytes = std::fs::read(test_component("future_mapper")).expect("future component");
    let err = sandbox
        .load(&bytes, Origin::Local("future_mapper.wasm".into()))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, LoadError::IncompatibleContract { .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the mapper was built for contract whatap:rds-mapper@2.0.0, but this host implements whatap:rds-mapper@1.3.0 (compatible: 1.0.x to 1.3.x)"
    );
}

/// The default mapper runs without epoch checks, every other one with them (and so with a
/// time budget): the origin decides, never the bytes. Precompiled code loads only from an
/// origin as trusted as the executable, and lands only on the engine its origin gives.
#[tokio::test(flavor = "current_thread")]
async fn the_origin_decides_epoch_checks_and_whether_precompiled_code_loads() {
    let sandbox = sandbox();
    let default = sandbox.load_embedded().await.expect("the default loads");
    assert_eq!(
        (default.epoch_checks, &default.origin),
        (EpochChecks::Off, &Origin::Embedded)
    );
    // The same bytes from a file are a mapper like any other.
    let from_file = sandbox
        .load(
            embedded::DEFAULT_MAPPER,
            Origin::Local("mapper.wasm".into()),
        )
        .await
        .expect("loads from a file");
    assert_eq!(from_file.epoch_checks, EpochChecks::On);
    assert_eq!(
        load_test_mapper(&sandbox).await.epoch_checks,
        EpochChecks::On
    );
    let uri = |pinned| Origin::Uri {
        uri: "s3://mappers/mapper.cwasm".into(),
        pinned,
    };

    // The package's artifact (no epoch checks) runs only as the packaged default.
    let packaged = precompile(embedded::DEFAULT_MAPPER, None, EpochChecks::Off).unwrap();
    let loaded = sandbox
        .load(&packaged, Origin::Packaged)
        .await
        .expect("the packaged artifact loads beside the executable");
    assert_eq!(loaded.epoch_checks, EpochChecks::Off);
    for origin in [uri(true), Origin::Local("default.cwasm".into())] {
        let err = sandbox
            .load(&packaged, origin)
            .await
            .err()
            .expect("refused");
        assert!(matches!(err, LoadError::PackagedArtifact), "{err}");
        assert!(
            err.to_string()
                .contains("make one with `rds-forwarder compile --mapper FILE.wasm`"),
            "{err}"
        );
    }
    // Native code from MAPPER_URI loads only when MAPPER_SHA256 pins it; refused by name.
    let checked = precompile(embedded::DEFAULT_MAPPER, None, EpochChecks::On).unwrap();
    for bytes in [&packaged, &checked] {
        let err = sandbox
            .load(bytes, uri(false))
            .await
            .err()
            .expect("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "a precompiled mapper (.cwasm) is native code and is loaded from MAPPER_URI only \
                 when MAPPER_SHA256 pins it (this object's SHA-256 is {}); pin it, or upload the .wasm",
                rds_forwarder::source::sha256_hex(bytes)
            )
        );
    }
    let pinned = sandbox
        .load(&checked, uri(true))
        .await
        .expect("a pinned .cwasm loads");
    assert_eq!(pinned.epoch_checks, EpochChecks::On);
    assert!(pinned.has_time_budget());
    // An artifact with epoch checks is not the packaged default.
    let err = sandbox
        .load(&checked, Origin::Packaged)
        .await
        .err()
        .expect("a checked .cwasm is not the packaged default");
    assert!(matches!(err, LoadError::PrecompiledMismatch(_)), "{err}");
    assert!(err.to_string().contains("epoch"), "{err}");

    // Both engines map the same event to the same records.
    let event = std::fs::read(fixtures().join("events/awslogs-mysql-error.json")).unwrap();
    let mut outputs = Vec::new();
    for mapper in [&default, &from_file] {
        let ran = sandbox
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
    let wasm = dir.path().join("default.wasm");
    std::fs::write(&wasm, embedded::DEFAULT_MAPPER).unwrap();
    let out = dir.path().join("default.cwasm");
    let status = crate::common::forwarder_cmd()
        .args(["compile", "--mapper", wasm.to_str().unwrap(), "--output"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let described = crate::common::forwarder_cmd()
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
    assert_eq!(info["time_budget"], true);
    // `compile` without --mapper makes the package's artifact, which runs only from beside
    // the executable.
    let packaged = dir.path().join("packaged.cwasm");
    let status = crate::common::forwarder_cmd()
        .args(["compile", "--output"])
        .arg(&packaged)
        .output()
        .unwrap();
    assert!(status.status.success());
    let out = crate::common::forwarder_cmd()
        .args(["describe", "--mapper"])
        .arg(&packaged)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("this .cwasm is the default mapper precompiled for the Lambda package"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A .cwasm for another engine configuration (here: one with fuel) is refused clearly.
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    let other = wasmtime::Engine::new(&config).unwrap();
    let foreign = other
        .precompile_component(rds_forwarder::embedded::DEFAULT_MAPPER)
        .unwrap();
    let bad = dir.path().join("foreign.cwasm");
    std::fs::write(&bad, foreign).unwrap();
    let out = crate::common::forwarder_cmd()
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
    let sandbox = sandbox(); // 256 MiB, the Lambda default
    let big = format!(
        "2024-01-19 13:20:43 UTC:h(1):u@d:[7]:LOG:  statement: SELECT '{}'",
        "x".repeat(10 << 20)
    );
    let payload = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/aws/rds/instance/db/postgresql",
        "logStream": "db.0", "subscriptionFilters": [], "logEvents": [{"id": "1", "timestamp": 1, "message": big}]});
    let event = serde_json::json!({"awslogs": {"data": rds_mapper::awslogs::encode(payload.to_string().as_bytes())}}).to_string();
    let (summary, records) = run_wasm(&sandbox, event.as_bytes())
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
    let sandbox = sandbox();
    let mut events =
        vec![serde_json::json!({"id": "0", "timestamp": 1, "message": "x".repeat(900_000)})];
    events.extend((1..2000).map(|i| serde_json::json!({"id": i.to_string(), "timestamp": 1, "message": format!("small {i}")})));
    let payload = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/aws/rds/instance/db/postgresql",
        "logStream": "db.0", "subscriptionFilters": [], "logEvents": events});
    let event = serde_json::json!({"awslogs": {"data": rds_mapper::awslogs::encode(payload.to_string().as_bytes())}}).to_string();
    let (summary, records) = run_wasm(&sandbox, event.as_bytes())
        .await
        .expect("maps within the cap");
    assert_eq!((summary.records, records.len()), (2000, 2000));
    assert_eq!(records[1999]["content"], "small 1999");
}

/// A sink that refuses every batch, counting what reached it.
struct Refusing(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl rds_forwarder::sink::RecordSink for Refusing {
    fn send(
        &mut self,
        _batch: &rds_forwarder::sink::BatchRef<'_>,
    ) -> rds_forwarder::sink::SinkFuture<'_> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async {
            Err(rds_forwarder::sink::SinkError::Delivery(
                "the collector refused the session".into(),
            ))
        })
    }
}

/// The host alone decides delivery: a mapper that ignores a refused send and reports success
/// still fails the event, and its later sends never reach the sink.
#[tokio::test(flavor = "current_thread")]
async fn a_mapper_that_swallows_a_refused_send_fails_as_undelivered() {
    let sandbox = sandbox();
    let mapper = load_test_mapper(&sandbox).await;
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ran = sandbox
        .run(
            &mapper,
            b"{}",
            &invocation(&[("mode", "swallow")]),
            Box::new(Refusing(reached.clone())),
            Duration::from_secs(10),
        )
        .await;
    let err = ran.result.expect_err("the event is not delivered");
    assert!(matches!(err, RunError::Delivery(_)), "{err}");
    assert!(err.is_retryable());
    assert_eq!(
        err.to_string(),
        "delivery failed: the collector refused the session"
    );
    assert_eq!(
        reached.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the second send is refused by the host without reaching the sink"
    );
}

/// A mapper blocked in a host call (a sleep on the WASI clock), which no epoch check reaches,
/// is stopped by the outer timeout and named.
#[tokio::test(flavor = "current_thread")]
async fn a_mapper_sleeping_on_the_clock_is_stopped_at_its_budget_and_slack() {
    let sandbox = sandbox();
    let mapper = load_test_mapper(&sandbox).await;
    let (r, _) = run_mode(&sandbox, &mapper, "sleep", Duration::from_millis(200)).await;
    let e = r.unwrap_err();
    assert!(matches!(e, RunError::Stalled { limit_ms: 1200 }), "{e}");
    assert_eq!(
        e.to_string(),
        "the mapper did not return within 1200 ms (its time budget and slack) and was stopped"
    );
    // The next event runs as usual.
    let (ok, _) = run_mode(&sandbox, &mapper, "echo", Duration::from_secs(5)).await;
    assert!(ok.unwrap().starts_with("mapped by test-mapper"));
}

/// Records that all share one large string or tag list cannot make the host read it once per
/// record: what a send may make the host read is bounded by the guest's memory.
#[tokio::test(flavor = "current_thread")]
async fn a_send_whose_records_share_one_large_string_or_list_is_refused() {
    let sandbox = sandbox();
    let mapper = load_test_mapper(&sandbox).await;
    let (text, _) = run_mode(&sandbox, &mapper, "alias-text", Duration::from_secs(30)).await;
    let e = text.unwrap_err();
    assert!(matches!(e, RunError::Trap(_)), "{e}");
    assert!(
        e.to_string()
            .contains("the mapper's sink.send batch holds more text than its"),
        "{e}"
    );
    let (tags, _) = run_mode(&sandbox, &mapper, "alias-tags", Duration::from_secs(30)).await;
    let e = tags.unwrap_err();
    assert!(
        e.to_string()
            .contains("the mapper's sink.send batch names 1048576 tags and fields, more than its"),
        "{e}"
    );
}

/// The memory limit holds per linear memory, so a component with two could take twice
/// `MAPPER_MEMORY_MB`: a mapper gets one, and a component with more is refused at load.
#[tokio::test(flavor = "current_thread")]
async fn a_component_with_two_memories_is_refused() {
    let two = wat::parse_str(
        r#"(component
            (core module $a (memory (export "m") 1))
            (core module $b (memory (export "m") 1))
            (core instance (instantiate $a))
            (core instance (instantiate $b)))"#,
    )
    .expect("valid component text");
    let err = sandbox()
        .load(&two, Origin::Local("two-memories.wasm".into()))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, LoadError::Compile(_)), "{err}");
    assert!(err.to_string().contains("memories"), "{err}");
}
