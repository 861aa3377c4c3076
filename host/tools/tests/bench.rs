//! `rds-forwarder-tools bench` (what `rds-forwarder bench` runs) end to end: one short run,
//! checked for what it measured (the same records native, in wasm and at the collector; every
//! section present), never for how fast. The cold-start rows start the forwarder's binary,
//! built beside this package's (as `cargo test --workspace` builds it).

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// The tools binary, run from the repository root.
fn tools(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rds-forwarder-tools"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args(args)
        .output()
        .expect("running rds-forwarder-tools")
}

/// The forwarder's binary beside the tools binary.
fn forwarder() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rds-forwarder-tools")).with_file_name("rds-forwarder")
}

fn bench(args: &[&str]) -> Value {
    let bootstrap = forwarder();
    let mut all = vec!["bench", "--json", "--seconds", "0", "--bootstrap"];
    all.push(bootstrap.to_str().expect("a UTF-8 path"));
    all.extend_from_slice(args);
    let out = tools(&all);
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON report")
}

#[test]
fn one_run_measures_every_section_of_the_same_work() {
    let report = bench(&["--only", "mysql-error", "--cold-runs", "1"]);
    let rows = report["throughput"].as_array().expect("throughput rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["payload"], "mysql-error");
    assert_eq!(row["log_type"], "error");
    // The fixture's 19 entries, repeated to a full CloudWatch batch: the 1 MiB cap decides.
    let events = row["events"].as_u64().unwrap();
    assert!(events > 1000 && events < 10_000, "{events}");
    assert_eq!(
        row["records"].as_u64(),
        Some(events),
        "one record per entry"
    );
    assert!(row["guest_peak_bytes"].as_u64().unwrap() > row["payload_bytes"].as_u64().unwrap());
    for cell in [
        "decode_only",
        "wasm_decode_only",
        "native",
        "wasm",
        "wasm_whatap",
    ] {
        assert!(row[cell]["runs"].as_u64().unwrap() >= 3, "{cell}");
        assert!(row[cell]["mib_per_s"].as_f64().unwrap() > 0.0, "{cell}");
    }
    let variants: Vec<&str> = report["cold_start"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["variant"].as_str().unwrap())
        .collect();
    assert_eq!(
        variants,
        [
            "lambda_runtime hello (baseline)",
            "embedded + .cwasm beside bootstrap (as packaged)",
            "embedded, JIT (no .cwasm)",
            "MAPPER_URI = file .wasm (JIT)",
            "MAPPER_URI = file .cwasm (pinned)",
        ]
    );
    let rss = report["peak_rss"].as_array().unwrap();
    assert_eq!(rss.len(), 2);
    // The stress payload is the largest a Lambda event can carry once compressed: several
    // CloudWatch batches' worth.
    assert!(rss[1]["event_bytes"].as_u64().unwrap() <= 1_048_576);
    assert!(
        rss[1]["payload_bytes"].as_u64().unwrap() > 3 * rss[0]["payload_bytes"].as_u64().unwrap()
    );

    // Bytes on the wire: the sink's count, CloudWatch's gzip'd payload and the messages.
    assert!(row["data_bytes"].as_u64().unwrap() > 10_000);
    assert!(row["message_bytes"].as_u64().unwrap() > row["data_bytes"].as_u64().unwrap());
    assert!(row["wire_bytes"].as_u64().unwrap() > 10_000);
    let sweep = report["wire"]["sweep"].as_array().unwrap();
    assert_eq!(sweep.len(), 12, "four levels by three ZipPack sizes");
    let defaults: Vec<&Value> = sweep.iter().filter(|c| c["default"] == true).collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(
        (
            defaults[0]["level"].as_u64(),
            defaults[0]["zip_bytes"].as_u64()
        ),
        (Some(6), Some(1 << 20))
    );
    // Level 1 in 64 KiB packs sends more than the default on RDS logs.
    let level1_64k = sweep
        .iter()
        .find(|c| c["level"] == 1 && c["zip_bytes"] == 65536)
        .unwrap();
    assert!(level1_64k["wire_bytes"].as_u64() > defaults[0]["wire_bytes"].as_u64());
    let payloads = report["wire"]["payloads"].as_array().unwrap();
    assert_eq!(payloads.len(), 1);
    // Every record carrying the 56-digit event id costs bytes.
    assert!(
        payloads[0]["wire_bytes_with_cw_event_id"].as_u64()
            > payloads[0]["wire_bytes_default"].as_u64()
    );
    assert!(payloads[0]["printer_ms"].as_f64().unwrap() > 0.0);

    // From process start: `invoke` warm, and the Go baseline where a toolchain is installed.
    let peers = &report["peers"];
    assert!(peers["invoke_startup"]["warm_median_ms"].as_f64().unwrap() > 0.0);
    let peer_rows = peers["rows"].as_array().unwrap();
    assert_eq!(peer_rows.len(), 1);
    assert!(peer_rows[0]["invoke_whatap_ms"].as_f64().unwrap() > 0.0);
    let go = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert_eq!(
        peer_rows[0]["go_process_ms"].is_number(),
        go,
        "{peer_rows:?}"
    );
    let notes = report["notes"].to_string();
    assert_eq!(notes.contains("no Go toolchain"), !go, "{notes}");

    // The cost model: the forwarder, the Go baseline when it ran, CloudWatch's own bytes.
    assert!(
        report["sql"].as_array().unwrap().is_empty(),
        "no statements in error logs"
    );
    let cost = report["cost"]["rows"].as_array().unwrap();
    assert_eq!(cost.len(), if go { 3 } else { 2 });
    assert!(cost[0]["compute"].as_f64().unwrap() > 0.0);
    assert!(cost[0]["transfer_internet"].as_f64().unwrap() > 0.0);

    let goals: Vec<&str> = report["goals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["goal"].as_str().unwrap())
        .collect();
    for goal in [
        "wire bytes <= 1.0x CloudWatch's gzip'd payload on every log type",
        "the JSON-lines printer adds <= 1x the mapping's own time",
        "invoke with the embedded mapper starts in <= 50 ms after its first run",
        "peak RSS <= 64 MiB on the largest payload",
    ] {
        assert!(goals.contains(&goal), "{goal}: {goals:?}");
    }
    assert_eq!(goals.len(), if go { 8 } else { 7 }, "{goals:?}");
    // The two throughput goals say what decoding alone costs in the sandbox.
    for goal in &report["goals"].as_array().unwrap()[..2] {
        let measured = goal["measured"].as_str().unwrap();
        assert!(
            measured.contains("decoding alone in wasm takes"),
            "{measured}"
        );
    }
}

/// SQL insight's cost is measured on payloads whose entries carry statements (and only
/// those: the MySQL error log above has none), on and off over the same records.
#[test]
fn sql_insight_cost_on_a_payload_with_statements() {
    let report = bench(&["--only", "mysql-general", "--no-processes"]);
    let rows = report["sql"].as_array().expect("sql rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["payload"], "mysql-general");
    let (records, statements) = (
        row["records"].as_u64().unwrap(),
        row["statements"].as_u64().unwrap(),
    );
    assert_eq!(
        Some(records),
        report["throughput"][0]["records"].as_u64(),
        "the same records as the throughput row"
    );
    assert!(
        statements > 0 && statements < records,
        "{statements} of {records}"
    );
    for cell in [
        "native_on",
        "native_fresh",
        "native_off",
        "wasm_on",
        "wasm_fresh",
        "wasm_off",
    ] {
        assert!(row[cell]["runs"].as_u64().unwrap() >= 2, "{cell}");
        assert!(row[cell]["mib_per_s"].as_f64().unwrap() > 0.0, "{cell}");
    }
    let goal = report["goals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["goal"].as_str().unwrap().starts_with("SQL insight costs"))
        .expect("the SQL insight goal");
    assert!(
        goal["measured"]
            .as_str()
            .unwrap()
            .contains("(mysql-general, in wasm; with no statement repeating, worst"),
        "{goal}"
    );
}

#[test]
fn an_rds_event_row_and_a_filter_that_matches_nothing() {
    let report = bench(&["--only", "rds-event", "--no-processes"]);
    let rows = report["throughput"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["events"].as_u64(), rows[0]["records"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(report["cold_start"].as_array().unwrap().is_empty());
    // The throughput goals are about CloudWatch payloads, so none is judged on this row.
    assert!(
        report["goals"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| !g["goal"].as_str().unwrap().contains("throughput"))
    );
    let none = bench(&["--only", "no-such-payload", "--no-processes"]);
    assert!(none["throughput"].as_array().unwrap().is_empty());
}

/// What `rds-forwarder-tools ARGS` says on stderr when it fails, as it must, with exit code 1.
fn bench_refusal(args: &[&str]) -> String {
    let out = tools(args);
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

#[test]
fn a_bad_duration_is_named() {
    assert_eq!(
        bench_refusal(&["bench", "--seconds", "inf"]),
        "error: --seconds inf: expected 0 to 600"
    );
}

#[test]
fn a_missing_fixtures_directory_is_named() {
    assert_eq!(
        bench_refusal(&["bench", "--fixtures", "/nonexistent-fixtures"]),
        "error: /nonexistent-fixtures: no logs/MANIFEST.tsv; run from the repository root or pass --fixtures"
    );
}
