//! The `rds-forwarder` binary as users and other checks run it.

use std::path::Path;
use std::process::Output;

use crate::common::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn invoke_prints_the_expected_json_lines() {
    let event = fixtures().join("events/awslogs-postgresql.json");
    let out = forwarder(&[
        "invoke",
        "--now-ms",
        &NOW_MS.to_string(),
        event.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = json_lines(&String::from_utf8_lossy(&out.stdout));
    let expected = json_lines(
        &std::fs::read_to_string(fixtures().join("expected/awslogs-postgresql.jsonl")).unwrap(),
    );
    assert_same_records("invoke awslogs-postgresql", &printed, &expected);
    // The documented key order of a line.
    let keys: Vec<&String> = printed[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["category", "time", "tags", "fields", "content", "line"]
    );
}

#[test]
fn invoke_takes_several_files_in_order() {
    let a = fixtures().join("events/rds-db-instance-event.failover.json");
    let b = fixtures().join("events/awslogs-lambda-go-testdata.json");
    let out = forwarder(&["invoke", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&String::from_utf8_lossy(&out.stdout));
    let categories: Vec<&str> = lines
        .iter()
        .map(|l| l["category"].as_str().unwrap())
        .collect();
    assert_eq!(categories, ["#RDS_EVENT", "#RDS_LOG", "#RDS_LOG"]);
}

#[test]
fn every_bad_input_fails_with_one_line_naming_file_and_cause() {
    for path in fixture_files("bad") {
        let expected_path = path.with_extension("error");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let out = forwarder(&["invoke", path.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", path.display());
        assert!(out.stdout.is_empty(), "{}: printed records", path.display());
        assert_eq!(
            err,
            format!("error: {}: {}\n", path.display(), expected.trim_end()),
            "{}",
            path.display()
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_bad_file_does_not_stop_the_good_ones() {
    let bad = fixtures().join("bad/not-gzip.json");
    let good = fixtures().join("events/rds-db-proxy-event.json");
    let out = forwarder(&["invoke", bad.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_lines(&String::from_utf8_lossy(&out.stdout)).len(), 1);
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn a_missing_event_file_is_named() {
    let out = forwarder(&["invoke", "no-such-event.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: no-such-event.json: cannot read the event: No such file or directory (os error 2)\n"
    );
}

fn describe(mapper: Option<&Path>) -> Output {
    match mapper {
        None => forwarder(&["describe"]),
        Some(p) => forwarder(&["describe", "--mapper", p.to_str().unwrap()]),
    }
}

#[test]
fn describe_the_embedded_mapper_and_the_same_one_from_a_file() {
    let out = describe(None);
    assert!(out.status.success(), "{}", stderr(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["name"], "rds-mapper");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["contract"], "1.3.0");
    assert_eq!(info["origin"], "embedded");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rds-mapper.wasm");
    std::fs::write(&file, rds_forwarder::embedded::DEFAULT_MAPPER).unwrap();
    let out = describe(Some(&file));
    assert!(out.status.success(), "{}", stderr(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["name"], "rds-mapper");
    assert_eq!(info["origin"], file.display().to_string());
}

#[test]
fn describe_refuses_what_is_not_a_mapper_of_this_contract() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "text.wasm",
            b"hello, not wasm",
            "not a WebAssembly component: the file does not start with the wasm magic bytes",
        ),
        (
            "core.wasm",
            b"\0asm\x01\0\0\0",
            "a core WebAssembly module, not a component: build the mapper with `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)",
        ),
        // The smallest valid component: it exports nothing.
        (
            "empty.wasm",
            b"\0asm\x0d\0\x01\0",
            "the component does not export whatap:rds-mapper/mapper@… (it exports: nothing)",
        ),
        (
            "truncated.wasm",
            &rds_forwarder::embedded::DEFAULT_MAPPER[..4096],
            "invalid WebAssembly component: ",
        ),
    ];
    for (name, bytes, message) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let out = describe(Some(&file));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        let prefix = format!(
            "error: {}: cannot use it as a mapper: {message}",
            file.display()
        );
        assert!(
            err.starts_with(&prefix),
            "{name}: got {err:?}, want prefix {prefix:?}"
        );
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
    }
}

#[test]
fn test_mapper_passes_the_default_mapper_on_its_fixtures_and_names_a_difference() {
    let out = forwarder(&["test-mapper", fixtures().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let events = fixture_files("events").len();
    assert_eq!(
        text.lines().last(),
        Some(format!("test-mapper: {events} passed, 0 failed").as_str())
    );

    // A mapper that maps differently fails each fixture, naming the first difference.
    let other = test_component("test_mapper");
    let out = forwarder(&[
        "test-mapper",
        "--mapper",
        other.to_str().unwrap(),
        fixtures().to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text.lines().last(),
        Some(format!("test-mapper: 0 passed, {events} failed").as_str())
    );
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["status"], "fail");
    assert!(
        first["reason"]
            .as_str()
            .unwrap()
            .starts_with("record 0 differs in category: got \"#TEST\""),
        "{first}"
    );
}

#[test]
fn test_mapper_update_writes_expected_lines_beside_the_events() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("events/rds-db-proxy-event.json"),
        dir.path().join("proxy.json"),
    )
    .unwrap();
    let out = forwarder(&["test-mapper", "--update", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = std::fs::read_to_string(dir.path().join("proxy.expected.jsonl")).unwrap();
    let expected =
        std::fs::read_to_string(fixtures().join("expected/rds-db-proxy-event.jsonl")).unwrap();
    assert_same_records("update", &json_lines(&written), &json_lines(&expected));
    let out = forwarder(&["test-mapper", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
}

#[test]
fn invoke_applies_a_mapping_config_and_refuses_a_bad_one_with_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"{"exclude": {"audit": ["rdsadmin,localhost,4,1024"]}, "redact": ["ipv4"], "tags": {"team": "dba"},
            "levels": [{"log_type": "audit", "contains": "READ", "level": "notice"}]}"#,
    )
    .unwrap();
    let event = fixtures().join("events/awslogs-aurora-mysql-audit.json");
    let out = forwarder(&[
        "invoke",
        "--rules",
        rules.to_str().unwrap(),
        event.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let records = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r["tags"]["team"] == "dba"));
    assert_eq!(records[0]["tags"]["level"], "notice", "READ → notice");
    assert_eq!(records[1]["tags"]["level"], "info");

    std::fs::write(&rules, "{\n  \"exclude\": {\"audit\": \"not a list\"}\n}").unwrap();
    let out = forwarder(&[
        "invoke",
        "--rules",
        rules.to_str().unwrap(),
        event.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {}: invalid mapper configuration: rules: exclude.audit must be a list of patterns\n",
            event.display()
        )
    );
    std::fs::write(
        &rules,
        "{\n  \"tags\": {\"team\": \"dba\"},\n  \"oops\": 1\n}",
    )
    .unwrap();
    let out = forwarder(&[
        "invoke",
        "--rules",
        rules.to_str().unwrap(),
        event.to_str().unwrap(),
    ]);
    assert!(
        stderr(&out)
            .contains("invalid mapper configuration: rules: line 3 column 8: unknown field `oops`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_readme_quick_start_runs_the_forwarder() {
    // `cargo run -p rds-forwarder -- …` needs to know which of the package's binaries to run.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let quick_start = readme
        .split("## Quick start")
        .nth(1)
        .and_then(|s| s.split("```").nth(1))
        .expect("a Quick start code block");
    let commands: Vec<&str> = quick_start
        .lines()
        .filter(|l| l.starts_with("cargo "))
        .collect();
    assert_eq!(
        commands,
        [
            "cargo run -p rds-forwarder -- invoke fixtures/events/awslogs-postgresql.json",
            "cargo test --workspace --locked"
        ]
    );
    let manifest = std::fs::read_to_string(format!("{root}/host/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("\ndefault-run = \"rds-forwarder\"\n"),
        "host/Cargo.toml must name the default binary"
    );
    // And the command itself does what the README says, on this build of the binary.
    let out = crate::common::forwarder_cmd()
        .current_dir(root)
        .args(["invoke", "fixtures/events/awslogs-postgresql.json"])
        .output()
        .expect("running rds-forwarder");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
}

/// `invoke --sink whatap ARGS` against a collector that accepts every connection and closes
/// it at once (every session refused), with a short send budget.
fn invoke_against_a_refusing_collector<'a>(
    args: impl IntoIterator<Item = &'a std::ffi::OsStr>,
) -> Output {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            drop(stream);
        }
    });
    crate::common::forwarder_cmd()
        .args(["invoke", "--sink", "whatap"])
        .args(args)
        .env("WHATAP_HOST", "127.0.0.1")
        .env("WHATAP_PORT", port.to_string())
        .env("WHATAP_LICENSE", crate::common::collector::test_license())
        .env("WHATAP_SEND_BUDGET_MS", "1000")
        .env("WHATAP_CONNECT_TIMEOUT_MS", "300")
        .env("WHATAP_MAX_ATTEMPTS", "2")
        .output()
        .unwrap()
}

/// A mapper that ignores the refusal of its sends and reports success, against a collector
/// that refuses every session: the host decides, and the run fails naming the delivery.
#[test]
fn invoke_fails_when_sends_are_refused_whatever_the_mapper_returns() {
    let event = fixtures().join("events/rds-db-proxy-event.json");
    let mapper = test_component("test_mapper");
    let out = invoke_against_a_refusing_collector([
        "--config".as_ref(),
        "mode=swallow".as_ref(),
        "--mapper".as_ref(),
        mapper.as_os_str(),
        event.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("rds-db-proxy-event.json: delivery failed: could not deliver 1 records to WhaTap (127.0.0.1)"),
        "{err}"
    );
}

/// `rds-forwarder bench` runs the benchmark from the tools built beside it (not part of the
/// product): the same command, flags and errors as `rds-forwarder-tools bench`.
#[test]
fn bench_hands_off_to_the_tools_beside_the_binary() {
    let tools =
        Path::new(env!("CARGO_BIN_EXE_rds-forwarder")).with_file_name("rds-forwarder-tools");
    let out = forwarder(&["bench", "--seconds", "inf"]);
    if tools.is_file() {
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(
            stderr(&out).trim(),
            "error: --seconds inf: expected 0 to 600"
        );
    } else {
        // `cargo test -p rds-forwarder` alone does not build the tools: the error says how.
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("cargo build --release -p rds-forwarder-tools"),
            "{}",
            stderr(&out)
        );
    }
}

/// The collector takes its key from a file too (off the command line); a bad key is refused
/// naming where it came from, never echoing it.
#[test]
fn the_collector_reads_its_license_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("license");
    std::fs::write(&file, "x4c1p2g0g40o4-SECRET!-xq3gf208h44ok\n").unwrap();
    let out = crate::common::forwarder_cmd()
        .args(["collector", "--listen", "127.0.0.1:0", "--license-file"])
        .arg(&file)
        .env_remove("WHATAP_LICENSE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: --license-file: the license is malformed"),
        "{err}"
    );
    assert!(!err.contains("SECRET"), "{err}");
    let missing = crate::common::forwarder_cmd()
        .args(["collector", "--listen", "127.0.0.1:0", "--license-file"])
        .arg(dir.path().join("none"))
        .env_remove("WHATAP_LICENSE")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("cannot read the license"),
        "{}",
        stderr(&missing)
    );
}

/// `invoke` compiles the embedded mapper once: the first run writes an entry to the compile
/// cache, later runs load it (no JIT). A damaged entry is compiled again and replaced; a cache
/// directory others can write is not used, with a warning; the output never changes.
#[test]
fn invoke_compiles_a_mapper_once_and_keeps_it_in_a_private_cache() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let event = fixtures().join("events/awslogs-postgresql.json");
    let run = |dir: &Path| {
        crate::common::forwarder_cmd()
            .args(["invoke", "--now-ms", &NOW_MS.to_string()])
            .arg(&event)
            .env("RDS_FORWARDER_CACHE_DIR", dir)
            .env("RUST_LOG", "rds_forwarder=debug")
            .output()
            .unwrap()
    };
    let logged = |out: &Output, text: &str| {
        assert!(out.status.success(), "{}", stderr(out));
        assert!(stderr(out).contains(text), "{text}: {}", stderr(out));
    };
    let entries = |dir: &Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    let first = run(&cache);
    logged(&first, "Compiled mapper cached.");
    let files = entries(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].extension().is_some_and(|e| e == "cwasm"));
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    let second = run(&cache);
    logged(&second, "Mapper loaded from the compile cache.");
    assert!(!stderr(&second).contains("Compiled mapper cached."));
    assert_eq!(second.stdout, first.stdout);

    // Damaged: compiled again, and the entry replaced by a good one.
    std::fs::write(&files[0], b"not compiled code").unwrap();
    let third = run(&cache);
    logged(&third, "did not load; compiling it again");
    assert_eq!(third.stdout, first.stdout);
    assert!(std::fs::read(&files[0]).unwrap().len() > 1000);
    logged(&run(&cache), "Mapper loaded from the compile cache.");

    // A directory others may write: not used, said so, nothing written.
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let fourth = run(&shared);
    logged(&fourth, "The compile cache is not used.");
    assert_eq!(fourth.stdout, first.stdout);
    assert!(entries(&shared).is_empty());

    // Turned off: nothing written.
    let off = tmp.path().join("off");
    let out = crate::common::forwarder_cmd()
        .args(["invoke", "--now-ms", &NOW_MS.to_string()])
        .arg(&event)
        .env("RDS_FORWARDER_CACHE_DIR", &off)
        .env("RDS_FORWARDER_CACHE", "off")
        .output()
        .unwrap();
    assert_eq!(out.stdout, first.stdout);
    assert!(!off.exists());
}

/// `--summary` with the WhaTap sink says how many bytes went on the wire, as the collector
/// read them; the compression settings change that, not what arrives.
#[test]
fn invoke_summary_counts_the_bytes_on_the_wire() {
    use crate::common::collector::{CollectorProcess, test_license};
    let event = fixtures().join("events/awslogs-postgresql.json");
    let license = test_license();
    let mut wire = Vec::new();
    for level in ["0", "6"] {
        let collector = CollectorProcess::start(&license);
        let out = crate::common::forwarder_cmd()
            .args(["invoke", "--sink", "whatap", "--summary"])
            .arg(&event)
            .env("WHATAP_HOST", collector.addr.ip().to_string())
            .env("WHATAP_PORT", collector.addr.port().to_string())
            .env("WHATAP_LICENSE", &license)
            .env("WHATAP_COMPRESSION_LEVEL", level)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let summary: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
        assert_eq!(summary["records"], 3, "{summary}");
        assert_eq!(
            summary["event_bytes"].as_u64(),
            Some(std::fs::metadata(&event).unwrap().len())
        );
        collector.wait_for(3);
        let (printed, _) = collector.finish();
        assert_eq!(json_lines(&printed).len(), 3);
        wire.push(summary["wire_bytes"].as_u64().expect("wire_bytes"));
    }
    // One ZipPack in one frame either way; stored (level 0) is the larger.
    assert!(wire[1] < wire[0], "{wire:?}");
    assert!(wire[1] > 22, "{wire:?}");
    // Without a network sink there are no wire bytes to report.
    let out = forwarder(&["invoke", "--summary", event.to_str().unwrap()]);
    let summary: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert!(summary.get("wire_bytes").is_none(), "{summary}");
}

/// The first JSON line of stderr (the `--summary` line), after any `error:` lines.
fn summary_line(out: &Output) -> serde_json::Value {
    let err = stderr(out);
    let line = err
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no summary line in {err}"));
    serde_json::from_str(line).unwrap()
}

/// A Kinesis event prints the records of its items, as the same payloads as `awslogs`
/// events do; `--summary` names the items to retry (none here) and the exit code is 0.
#[test]
fn invoke_maps_a_kinesis_event_like_its_payloads() {
    let events = fixtures().join("events");
    let out = forwarder(&[
        "invoke",
        "--summary",
        events
            .join("kinesis-cloudwatch-logs.json")
            .to_str()
            .unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = summary_line(&out);
    assert_eq!(summary["event_kind"], "kinesis");
    assert_eq!(summary["batchItemFailures"], serde_json::json!([]));
    assert_eq!(summary["skipped"]["control-message"], 1);
    // The same records as the items' payloads delivered as awslogs events.
    let alone = forwarder(&[
        "invoke",
        events.join("awslogs-postgresql.json").to_str().unwrap(),
        events
            .join("awslogs-aurora-mysql-slowquery.json")
            .to_str()
            .unwrap(),
    ]);
    assert_same_records(
        "kinesis",
        &json_lines(&String::from_utf8_lossy(&out.stdout)),
        &json_lines(&String::from_utf8_lossy(&alone.stdout)),
    );
}

/// A corrupt item: the others are printed, the item is named with its reason and in
/// `batchItemFailures`, and the exit code is 1.
#[test]
fn invoke_names_a_corrupt_kinesis_item_and_exits_1() {
    let event = fixtures().join("partial/kinesis-corrupt-item.json");
    let out = forwarder(&["invoke", "--summary", event.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let seq = "49590338271490256608559692538361571095921575989136588802";
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "kinesis-corrupt-item.json: item {seq}: kinesis.data gzip stream is truncated or corrupt"
        )),
        "{err}"
    );
    let summary = summary_line(&out);
    assert_eq!(
        summary["batchItemFailures"],
        serde_json::json!([{ "itemIdentifier": seq }])
    );
    assert_eq!(summary["skipped"]["item-failed"], 1);
    let printed = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(summary["records"], printed.len());
    assert!(!printed.is_empty());
}

/// When delivery fails, nothing of the event is known to be delivered: every item is named.
#[test]
fn invoke_names_every_kinesis_item_when_delivery_fails() {
    let event = fixtures().join("events/kinesis-cloudwatch-logs.json");
    let out = invoke_against_a_refusing_collector(["--summary".as_ref(), event.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("delivery failed"), "{}", stderr(&out));
    let items: Vec<serde_json::Value> = (1..=3)
        .map(|i| {
            serde_json::json!({
                "itemIdentifier": format!("4959033827149025660855969253836157109592157598913658880{i}")
            })
        })
        .collect();
    assert_eq!(
        summary_line(&out)["batchItemFailures"],
        serde_json::Value::from(items)
    );
}
