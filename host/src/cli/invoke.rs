//! `invoke`: map Lambda event files and print the records as JSON lines, or send them to
//! WhaTap.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use super::forwarding::{DEFAULT_ONAME, MappingArgs, SinkKind};
use super::{file_name, load_mapper};
use crate::sandbox::bindings::Invocation;
use crate::sandbox::{Sandbox, SandboxLimits};
use crate::sink::{RecordSink, stdout::Stdout};
use crate::whatap::config::WhatapConfig;
use crate::whatap::connection::now_ms;
use crate::whatap::sink::WhatapSink;

#[derive(Debug, clap::Args)]
pub(super) struct InvokeArgs {
    #[command(flatten)]
    mapping: MappingArgs,
    /// Where the records go.
    #[arg(long, value_enum, default_value = "stdout")]
    sink: SinkKind,
    /// Use this as the receive time (epoch ms) instead of the clock, for reproducible output.
    #[arg(long, value_name = "EPOCH_MS", hide = true)]
    now_ms: Option<i64>,
    /// Print each event's summary as a JSON line on stderr.
    #[arg(long)]
    summary: bool,
    /// Lambda event files (JSON), one event each.
    #[arg(required = true, value_name = "EVENT_FILE")]
    events: Vec<PathBuf>,
}

pub(super) async fn invoke(args: InvokeArgs) -> Result<ExitCode> {
    let sandbox = Sandbox::new(SandboxLimits::default());
    let mapper = load_mapper(&sandbox, &args.mapping.mapper).await?;
    let mut sink: Box<dyn RecordSink> = match args.sink {
        SinkKind::Stdout => Box::new(Stdout),
        SinkKind::Whatap => {
            let config = WhatapConfig::from_env(DEFAULT_ONAME).context("the WhaTap sink")?;
            Box::new(WhatapSink::new(config))
        }
    };
    let timeout_ms = args.mapping.timeout_ms;
    let budget = Duration::from_millis(timeout_ms);
    let mut settings = args.mapping.config.clone();
    if let Some(text) = args.mapping.rules_text()? {
        settings.push(("rules".into(), text));
    }
    let mut failed = 0usize;
    for path in &args.events {
        let now = args.now_ms.unwrap_or_else(now_ms);
        let invocation = Invocation {
            request_id: format!("cli-{}", file_name(path)),
            function_name: "rds-forwarder-cli".into(),
            deadline_ms: now.saturating_add(timeout_ms as i64),
            received_ms: now,
            config: settings.clone(),
        };
        let event = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("error: {}: cannot read the event: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        let wire_before = sink.wire_bytes();
        let ran = sandbox
            .run(&mapper, &event, &invocation, sink, budget)
            .await;
        sink = ran.sink;
        let wire_bytes = sink
            .wire_bytes()
            .map(|after| after - wire_before.unwrap_or(0));
        // A Kinesis event: the items Lambda would retry (all of them if the event failed).
        let retry = crate::partial_batch::kinesis_items(&event).map(|items| {
            crate::partial_batch::failures(&items, ran.result.is_ok(), &ran.failed_items)
        });
        for f in &ran.failed_items {
            eprintln!("error: {}: item {}: {}", path.display(), f.item, f.reason);
        }
        if ran.result.is_ok() && retry.as_ref().is_some_and(|r| !r.is_empty()) {
            failed += 1;
        }
        if let (Err(_), Some(retry), true) = (&ran.result, &retry, args.summary) {
            let line = json!({
                "file": path.display().to_string(),
                "batchItemFailures": crate::partial_batch::response(retry)["batchItemFailures"],
            });
            eprintln!("{line}");
        }
        match ran.result {
            Ok(summary) => {
                if args.summary {
                    let mut line = json!({
                        "file": path.display().to_string(),
                        "event_kind": summary.event_kind,
                        "records": summary.records,
                        "batches": summary.batches,
                        "skipped": crate::metrics::skipped_json(&summary),
                        "split": summary.split,
                        "mapper": mapper.label(),
                        "guest_memory_bytes": ran.guest_peak_bytes,
                        "event_bytes": event.len(),
                    });
                    if let Some(wire) = wire_bytes {
                        line["wire_bytes"] = json!(wire);
                    }
                    if let Some(retry) = &retry {
                        line["batchItemFailures"] =
                            crate::partial_batch::response(retry)["batchItemFailures"].clone();
                    }
                    eprintln!("{line}");
                }
            }
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                failed += 1;
            }
        }
    }
    sink.close().await;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
