//! Shared helpers of the end-to-end tests: fixture paths, running the embedded mapper in
//! process, and the native mapping library, in one JSON shape.
#![allow(dead_code)]

pub mod collector;
pub mod moto;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rds_forwarder::record_json;
use rds_forwarder::sandbox::bindings::{FieldValue, Invocation, LogRecord, Summary};
use rds_forwarder::sandbox::{RunError, Sandbox, SandboxLimits};
use rds_forwarder::sink::Memory;
use serde_json::Value;

/// Runs this build's `rds-forwarder` binary with `args`, from the current directory.
pub fn forwarder(args: &[&str]) -> std::process::Output {
    forwarder_cmd()
        .args(args)
        .output()
        .expect("running rds-forwarder")
}

/// This build's `rds-forwarder` binary, its compile cache in the build's own scratch
/// directory rather than the user's.
pub fn forwarder_cmd() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rds-forwarder"));
    cmd.env("RDS_FORWARDER_CACHE_DIR", compile_cache_dir());
    cmd
}

/// Where the tests' CLI runs keep compiled mappers.
pub fn compile_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("compile-cache")
}

/// The receive time every test passes, so records without a time of their own are stable.
pub const NOW_MS: i64 = 1_700_000_000_000;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The `*.json` files of a fixtures subdirectory, sorted.
pub fn fixture_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures().join(dir))
        .unwrap_or_else(|e| panic!("reading fixtures/{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in fixtures/{dir}");
    files
}

pub fn invocation(config: &[(&str, &str)]) -> Invocation {
    Invocation {
        request_id: "test".into(),
        function_name: "rds-forwarder-test".into(),
        deadline_ms: NOW_MS + 60_000,
        received_ms: NOW_MS,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Runs one event through the embedded component, returning its records as JSON.
pub async fn run_wasm(sandbox: &Sandbox, event: &[u8]) -> Result<(Summary, Vec<Value>), RunError> {
    run_wasm_with(sandbox, event, &[]).await
}

/// [`run_wasm`] with mapper settings.
pub async fn run_wasm_with(
    sandbox: &Sandbox,
    event: &[u8],
    settings: &[(&str, &str)],
) -> Result<(Summary, Vec<Value>), RunError> {
    let mapper = sandbox
        .load_embedded()
        .await
        .expect("the embedded mapper loads");
    let ran = sandbox
        .run(
            &mapper,
            event,
            &invocation(settings),
            Box::new(Memory::default()),
            Duration::from_secs(30),
        )
        .await;
    let summary = ran.result?;
    let sink = ran.sink;
    // The sink is the Memory we passed in; read its records back through JSON.
    let records = memory_records(sink);
    Ok((summary, records))
}

fn memory_records(sink: Box<dyn rds_forwarder::sink::RecordSink>) -> Vec<Value> {
    // Box<dyn RecordSink> cannot be downcast directly; Memory exposes its records via drain.
    let sink: Box<Memory> = rds_forwarder::sink::into_memory(sink).expect("the sink is a Memory");
    sink.records().iter().map(record_json::to_json).collect()
}

/// The same mapping compiled natively, in the same JSON shape.
pub fn run_native(event: &[u8]) -> Result<(rds_mapper::Summary, Vec<Value>), rds_mapper::MapError> {
    let mut out = rds_mapper::Collect::default();
    let inv = rds_mapper::Invocation {
        request_id: "test".into(),
        function_name: "rds-forwarder-test".into(),
        deadline_ms: NOW_MS + 60_000,
        received_ms: NOW_MS,
        config: Vec::new(),
    };
    let summary = rds_mapper::map_event(event, &inv, &mut out)?;
    Ok((
        summary,
        out.records
            .into_iter()
            .map(|r| record_json::to_json(&to_wit(r)))
            .collect(),
    ))
}

pub fn to_wit(r: rds_mapper::Record) -> LogRecord {
    LogRecord {
        category: r.category.to_string(),
        time: r.time,
        tags: r
            .all_tags()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        fields: r
            .fields
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    rds_mapper::FieldValue::Text(s) => FieldValue::Text(s),
                    rds_mapper::FieldValue::Integer(i) => FieldValue::Integer(i),
                    rds_mapper::FieldValue::Float(f) => FieldValue::Float(f),
                    rds_mapper::FieldValue::Boolean(b) => FieldValue::Boolean(b),
                };
                (k.into_owned(), v)
            })
            .collect(),
        content: r.content,
        line: r.line,
    }
}

pub fn sandbox() -> Sandbox {
    Sandbox::new(SandboxLimits::default())
}

/// Parses JSON lines.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// Reads the expected records of an event fixture (`fixtures/expected/NAME.jsonl`), or writes
/// them when `UPDATE_EXPECT=1` (then review the diff before committing).
pub fn expected_records(event: &Path, actual: &[Value]) -> Vec<Value> {
    let name = event.file_stem().expect("file name").to_string_lossy();
    let path = fixtures().join("expected").join(format!("{name}.jsonl"));
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let text: String = actual.iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(&path, text).expect("writing expected records");
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_EXPECT=1 to create it)",
            path.display()
        )
    });
    json_lines(&text)
}

/// Compares two record lists field by field, naming the first difference.
pub fn assert_same_records(what: &str, actual: &[Value], expected: &[Value]) {
    assert_eq!(actual.len(), expected.len(), "{what}: record count differs");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let (a, e) = (
            a.as_object().expect("object"),
            e.as_object().expect("object"),
        );
        let keys_a: Vec<&String> = a.keys().collect();
        let keys_e: Vec<&String> = e.keys().collect();
        assert_eq!(keys_a, keys_e, "{what}: record {i} has other keys");
        for key in keys_e {
            assert_eq!(a[key], e[key], "{what}: record {i} differs in {key:?}");
            if let (Some(ma), Some(me)) = (a[key].as_object(), e[key].as_object()) {
                // Order matters for tags and fields: WhaTap keeps insertion order.
                assert_eq!(
                    ma.keys().collect::<Vec<_>>(),
                    me.keys().collect::<Vec<_>>(),
                    "{what}: record {i} {key} order differs"
                );
            }
        }
    }
}

/// Builds a workspace of components for wasm32-wasip2 (release) into `target/<target>`.
fn build_components(manifest: &str, target: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = root.join("../target").join(target);
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join(manifest))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("running cargo for the components");
    assert!(status.success(), "building {manifest} failed");
    target.join("wasm32-wasip2/release")
}

/// Builds the test components (`host/tests/components`) once and returns the path of one:
/// `test_mapper` or `future_mapper`.
pub fn test_component(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| build_components("tests/components/Cargo.toml", "test-components"))
        .join(format!("{name}.wasm"))
}

/// Builds the example custom mappers (`guest/examples/mappers`) once and returns one:
/// `redact_drop_mapper` or `app_field_mapper`.
pub fn example_mapper(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| build_components("../guest/examples/mappers/Cargo.toml", "example-mappers"))
        .join(format!("{name}.wasm"))
}
