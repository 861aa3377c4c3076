//! `test-mapper`: run a mapper over fixture events and compare with the expected JSON lines.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use super::{MapperArgs, file_name, load_mapper, parse_key_value};
use crate::sandbox::bindings::Invocation;
use crate::sandbox::{Sandbox, SandboxLimits};

#[derive(Debug, clap::Args)]
pub(super) struct TestMapperArgs {
    #[command(flatten)]
    mapper: MapperArgs,
    /// Write the mapper's output as the expected lines instead of comparing (then review them).
    #[arg(long)]
    update: bool,
    /// The receive time (epoch ms) passed to the mapper, so output is reproducible.
    #[arg(long, default_value_t = 1_700_000_000_000, value_name = "EPOCH_MS")]
    now_ms: i64,
    /// Mapper settings, KEY=VALUE (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    config: Vec<(String, String)>,
    /// A directory of `NAME.json` events, each with `NAME.expected.jsonl` beside it (or, when
    /// the events are in `events/`, `expected/NAME.jsonl`).
    #[arg(value_name = "FIXTURES_DIR")]
    fixtures: PathBuf,
}

/// The fixture events of a test-mapper directory, with where their expected lines live.
fn fixture_pairs(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let (events, expected_dir) = if dir.join("events").is_dir() {
        (dir.join("events"), Some(dir.join("expected")))
    } else {
        (dir.to_path_buf(), None)
    };
    let mut pairs = Vec::new();
    for entry in std::fs::read_dir(&events)
        .with_context(|| format!("{}: cannot list fixtures", events.display()))?
    {
        let path = entry?.path();
        let name = file_name(&path);
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        if stem.ends_with(".payload") {
            continue;
        }
        let expected = match &expected_dir {
            Some(d) => d.join(format!("{stem}.jsonl")),
            None => events.join(format!("{stem}.expected.jsonl")),
        };
        pairs.push((path, expected));
    }
    pairs.sort();
    anyhow::ensure!(
        !pairs.is_empty(),
        "{}: no NAME.json fixture events",
        events.display()
    );
    Ok(pairs)
}

/// Where two record lists first differ, in words.
fn first_difference(
    actual: &[serde_json::Value],
    expected: &[serde_json::Value],
) -> Option<String> {
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        if a != e {
            let key = ["category", "time", "tags", "fields", "content", "line"]
                .into_iter()
                .find(|k| a.get(k) != e.get(k))
                .unwrap_or("order of keys");
            return Some(format!(
                "record {i} differs in {key}: got {}, expected {}",
                a.get(key).unwrap_or(&json!(null)),
                e.get(key).unwrap_or(&json!(null))
            ));
        }
    }
    (actual.len() != expected.len())
        .then(|| format!("{} records, expected {}", actual.len(), expected.len()))
}

pub(super) async fn test_mapper(args: TestMapperArgs) -> Result<ExitCode> {
    let sandbox = Sandbox::new(SandboxLimits::default());
    let mapper = load_mapper(&sandbox, &args.mapper).await?;
    let (mut passed, mut failed) = (0usize, 0usize);
    for (event_path, expected_path) in fixture_pairs(&args.fixtures)? {
        let event = std::fs::read(&event_path)
            .with_context(|| format!("{}: cannot read", event_path.display()))?;
        let invocation = Invocation {
            request_id: format!("test-{}", file_name(&event_path)),
            function_name: "rds-forwarder-test-mapper".into(),
            deadline_ms: args.now_ms.saturating_add(60_000),
            received_ms: args.now_ms,
            config: args.config.clone(),
        };
        let ran = sandbox
            .run(
                &mapper,
                &event,
                &invocation,
                Box::new(crate::sink::Memory::default()),
                Duration::from_secs(60),
            )
            .await;
        let fixture = event_path.display().to_string();
        let outcome = match ran.result {
            Err(e) => Err(format!("the mapper failed: {e}")),
            Ok(_) => {
                let records: Vec<serde_json::Value> = crate::sink::into_memory(ran.sink)
                    .map(|m| {
                        m.records()
                            .iter()
                            .map(crate::record_json::to_json)
                            .collect()
                    })
                    .unwrap_or_default();
                if args.update {
                    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
                    std::fs::write(&expected_path, text)
                        .with_context(|| format!("{}: cannot write", expected_path.display()))?;
                    Ok(records.len())
                } else {
                    match std::fs::read_to_string(&expected_path) {
                        Err(e) => Err(format!("{}: {e}", expected_path.display())),
                        Ok(text) => {
                            let expected: Result<Vec<serde_json::Value>, _> = text
                                .lines()
                                .filter(|l| !l.trim().is_empty())
                                .map(serde_json::from_str)
                                .collect();
                            match expected {
                                Err(e) => {
                                    Err(format!("{}: not JSON lines: {e}", expected_path.display()))
                                }
                                Ok(expected) => match first_difference(&records, &expected) {
                                    None => Ok(records.len()),
                                    Some(diff) => Err(diff),
                                },
                            }
                        }
                    }
                }
            }
        };
        match outcome {
            Ok(n) => {
                passed += 1;
                println!(
                    "{}",
                    json!({"fixture": fixture, "status": if args.update { "updated" } else { "pass" }, "records": n})
                );
            }
            Err(why) => {
                failed += 1;
                println!(
                    "{}",
                    json!({"fixture": fixture, "status": "fail", "reason": why})
                );
            }
        }
    }
    println!(
        "{}",
        json!({"mapper": mapper.label(), "passed": passed, "failed": failed})
    );
    println!("test-mapper: {passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
