//! The mapping logic of rds-forwarder: one Lambda event in, WhaTap log records out.
//!
//! This crate does no I/O and reads no clock: the host passes the event bytes and an
//! [`Invocation`], and records leave through the [`Output`] trait. That keeps the same code
//! runnable natively (tests, benchmarks) and inside the `rds-mapper-component` wasm component,
//! and lets a custom mapper reuse any layer of it.
//!
//! # Layout
//! - [`map_event`]: tells the event kinds apart and drives the rest.
//! - [`awslogs`]: base64 → gzip → JSON of a CloudWatch Logs subscription payload, size-bounded.
//! - [`log_source`]: what log group and stream names say (scope, db identifier, log type).
//! - [`formats`]: every RDS engine's log formats: entries and typed fields.
//! - [`logs`]: CloudWatch log events → `#RDS_LOG` records.
//! - [`rds_event`]: EventBridge `aws.rds` events → `#RDS_EVENT` records, with severity.
//! - [`output`]: the [`Output`] trait and the batching in front of it.
//! - [`record`], [`level`], [`time`], [`config`], [`error`]: the shared vocabulary.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod awslogs;
pub mod config;
pub mod error;
pub mod formats;
pub mod level;
pub mod log_source;
pub mod logs;
pub mod output;
pub mod rds_event;
pub mod record;
pub mod time;

use serde_json::{Map, Value};

pub use config::Config;
pub use error::MapError;
pub use output::{Batcher, Collect, LogLevel, Output};
pub use record::{FieldValue, Record};

/// This mapper's name, as `describe()` reports it.
pub const MAPPER_NAME: &str = "rds-mapper";
/// This mapper's version.
pub const MAPPER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The version of the WIT package `whatap:rds-mapper` this library implements.
pub const CONTRACT_VERSION: &str = "1.0.0";

/// What the host tells the mapper about one invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    pub request_id: String,
    pub function_name: String,
    pub deadline_ms: i64,
    /// When the host received the event: the time of a record that has no time of its own.
    pub received_ms: i64,
    pub config: Vec<(String, String)>,
}

/// What one call did. Every entry is either in `records` or counted in `skipped`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub event_kind: String,
    pub records: u32,
    pub batches: u32,
    /// Entries deliberately not turned into records, by reason.
    pub skipped: Vec<(String, u32)>,
    /// Entries split into several records because they exceeded `max_content_bytes`.
    pub split: u32,
}

/// Maps one raw Lambda event into records delivered through `output`.
pub fn map_event(
    event: &[u8],
    invocation: &Invocation,
    output: &mut dyn Output,
) -> Result<Summary, MapError> {
    let config = Config::from_pairs(&invocation.config)?;
    let root = parse_root(event)?;
    if let Some(awslogs) = root.get("awslogs") {
        let data = awslogs
            .as_object()
            .and_then(|o| o.get("data"))
            .ok_or_else(|| MapError::decode("awslogs has no \"data\" field"))?;
        let data = data.as_str().ok_or_else(|| {
            MapError::decode(format!(
                "awslogs.data must be a string, got {}",
                json_type(data)
            ))
        })?;
        return map_awslogs(data, &config, output);
    }
    match root.get("source").and_then(Value::as_str) {
        Some("aws.rds") => {
            let mut batcher = Batcher::new(output, &config);
            batcher.push(rds_event::map_rds_event(&root, invocation.received_ms))?;
            batcher.flush()?;
            Ok(Summary {
                event_kind: "rds-event".into(),
                records: batcher.records,
                batches: batcher.batches,
                skipped: Vec::new(),
                split: 0,
            })
        }
        Some(other) => Err(MapError::unsupported(format!(
            "EventBridge event from source {other:?} (detail-type {:?}) is not an RDS event; \
             route only source aws.rds to this function",
            root.get("detail-type")
                .and_then(Value::as_str)
                .unwrap_or("")
        ))),
        None => {
            let keys: Vec<&str> = root.keys().map(String::as_str).take(8).collect();
            Err(MapError::unsupported(format!(
                "not a CloudWatch Logs or RDS event: expected an \"awslogs\" or \"source\" key, \
                 found keys [{}]",
                keys.join(", ")
            )))
        }
    }
}

fn parse_root(event: &[u8]) -> Result<Map<String, Value>, MapError> {
    if event.iter().all(u8::is_ascii_whitespace) {
        return Err(MapError::decode("the event is empty"));
    }
    let value: Value = serde_json::from_slice(event)
        .map_err(|e| MapError::decode(format!("the event is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(MapError::unsupported(format!(
            "the event is a JSON {}, expected an object",
            json_type(&other)
        ))),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn map_awslogs(data: &str, config: &Config, output: &mut dyn Output) -> Result<Summary, MapError> {
    let json = awslogs::decode(data, config.max_decompressed_bytes)?;
    let payload = awslogs::parse(&json)?;
    if payload.is_control() {
        // CloudWatch's reachability check: acknowledge it, count it, send nothing.
        return Ok(Summary {
            event_kind: "awslogs-control".into(),
            records: 0,
            batches: 0,
            skipped: vec![("control-message".into(), payload.log_events.len() as u32)],
            split: 0,
        });
    }
    let stream = logs::StreamTags::new(&payload);
    let mut batcher = Batcher::new(output, config);
    let mut failed = None;
    let mut split = 0;
    for event in &payload.log_events {
        split += stream.records(event, config.max_content_bytes, &mut |record| {
            if failed.is_none()
                && let Err(e) = batcher.push(record)
            {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
    }
    batcher.flush()?;
    Ok(Summary {
        event_kind: "awslogs".into(),
        records: batcher.records,
        batches: batcher.batches,
        skipped: Vec::new(),
        split,
    })
}
