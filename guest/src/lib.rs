//! The mapping logic of rds-forwarder: one Lambda event in, WhaTap log records out.
//!
//! This crate does no I/O and reads no clock: the host passes the event bytes and an
//! [`Invocation`], and records leave through the [`Output`] trait. That keeps the same code
//! runnable natively (tests, benchmarks) and inside the `rds-mapper-component` wasm component,
//! and lets a custom mapper reuse any layer of it.
//!
//! # Layout
//! - [`map_event`]: tells the event kinds apart and drives the rest; [`map_event_with`] adds a
//!   custom mapper's [`Hook`] between parsing and delivery.
//! - [`awslogs`]: base64 → gzip → JSON of a CloudWatch Logs subscription payload, size-bounded.
//! - [`log_source`]: what log group and stream names say (scope, db identifier, log type).
//! - [`formats`]: every RDS engine's log formats: entries and typed fields.
//! - [`logs`]: CloudWatch log events → `#RDS_LOG` records.
//! - [`rds_event`]: EventBridge `aws.rds` events → `#RDS_EVENT` records, with severity.
//! - [`output`]: the [`Output`] trait and the batching in front of it; [`packed`], a batch as
//!   `sink.send-packed` takes it.
//! - [`rules`]: the mapping config (rules without code), applied as a [`Hook`]; [`redact`].
//! - [`record`], [`level`], [`time`], [`config`], [`error`]: the shared vocabulary.
//! - [`generate`]: realistic Lambda events from sample logs, for benchmarks and load tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod awslogs;
pub mod config;
pub mod error;
pub mod formats;
pub mod generate;
pub mod level;
pub mod log_source;
pub mod logs;
pub mod output;
pub mod packed;
pub mod rds_event;
pub mod record;
pub mod redact;
pub mod rules;
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
pub const CONTRACT_VERSION: &str = "1.2.0";

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

/// Where a custom mapper changes the default mapping: every record passes through it between
/// parsing and delivery. Return the record (changed or not), or `None` to drop it; drops are
/// counted in the summary as `dropped-by-mapper`, never silent.
pub trait Hook {
    fn record(&mut self, record: Record) -> Option<Record>;
}

/// The default mapper's hook: every record as it is.
pub struct Unchanged;

impl Hook for Unchanged {
    fn record(&mut self, record: Record) -> Option<Record> {
        Some(record)
    }
}

/// Maps one raw Lambda event into records delivered through `output`.
pub fn map_event(
    event: &[u8],
    invocation: &Invocation,
    output: &mut dyn Output,
) -> Result<Summary, MapError> {
    map_event_with(event, invocation, output, &mut Unchanged)
}

/// `map_event` with a custom mapper's [`Hook`] between parsing and delivery. The mapping
/// config's rules (the `rules` setting), when given, run before it.
pub fn map_event_with(
    event: &[u8],
    invocation: &Invocation,
    output: &mut dyn Output,
    hook: &mut dyn Hook,
) -> Result<Summary, MapError> {
    // The mapping config (a `rules` setting) applies first, whatever the mapper; a bad one
    // fails the call before anything is decoded.
    let mut rules = rules::from_settings(&invocation.config)?;
    if let Some(r) = &rules {
        let (level, line) = rules::describe(r);
        output.log(level, &line);
    }
    let mut chain = Chain {
        rules: rules.as_mut(),
        hook,
    };
    let mut hooked = Hooked {
        output,
        hook: &mut chain,
        dropped: 0,
        emptied: 0,
    };
    let mut summary = map_unhooked(event, invocation, &mut hooked)?;
    if hooked.dropped > 0 {
        summary
            .skipped
            .push(("dropped-by-mapper".into(), hooked.dropped));
    }
    summary.records -= hooked.dropped.min(summary.records);
    // A batch the hook emptied never reached `sink.send`.
    summary.batches -= hooked.emptied.min(summary.batches);
    Ok(summary)
}

/// The mapping config's rules, then the mapper's own hook.
struct Chain<'a> {
    rules: Option<&'a mut rules::Rules>,
    hook: &'a mut dyn Hook,
}

impl Hook for Chain<'_> {
    fn record(&mut self, record: Record) -> Option<Record> {
        let record = match self.rules.as_deref_mut() {
            Some(rules) => rules.record(record)?,
            None => record,
        };
        self.hook.record(record)
    }
}

/// Runs each batch through the hook on its way to the output.
struct Hooked<'a> {
    output: &'a mut dyn Output,
    hook: &'a mut dyn Hook,
    dropped: u32,
    emptied: u32,
}

impl Output for Hooked<'_> {
    fn send(&mut self, batch: Vec<Record>) -> Result<(), String> {
        let before = batch.len();
        let kept: Vec<Record> = batch
            .into_iter()
            .filter_map(|r| self.hook.record(r))
            .collect();
        self.dropped += (before - kept.len()) as u32;
        if kept.is_empty() {
            self.emptied += 1;
            return Ok(());
        }
        self.output.send(kept)
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.output.log(level, message);
    }
}

fn map_unhooked(
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
        let json = awslogs::decode(data, config.max_decompressed_bytes)?;
        // The base64 text is done with: free it before the payload's records add up.
        drop(root);
        return map_awslogs(&json, &config, output);
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

fn map_awslogs(json: &[u8], config: &Config, output: &mut dyn Output) -> Result<Summary, MapError> {
    let payload = awslogs::parse(json)?;
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
    let mut batcher = Batcher::expecting(output, config, payload.log_events.len());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Drops records whose content mentions `heartbeat` and tags the rest.
    struct Quiet;

    impl Hook for Quiet {
        fn record(&mut self, mut r: Record) -> Option<Record> {
            if r.content.contains("heartbeat") {
                return None;
            }
            r.set_tag("team", "dba");
            Some(r)
        }
    }

    #[test]
    fn a_hook_changes_and_drops_records_and_drops_are_counted() {
        let payload = r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/rds/instance/db/error","logStream":"db","logEvents":[
            {"id":"1","timestamp":1,"message":"rds_heartbeat2 update"},{"id":"2","timestamp":2,"message":"real work"}]}"#;
        let event = format!(
            r#"{{"awslogs":{{"data":"{}"}}}}"#,
            awslogs::encode(payload.as_bytes())
        );
        let mut out = Collect::default();
        let summary = map_event_with(
            event.as_bytes(),
            &Invocation::default(),
            &mut out,
            &mut Quiet,
        )
        .unwrap();
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.records[0].content, "real work");
        assert_eq!(out.records[0].tag("team"), Some("dba"));
        assert_eq!((summary.records, summary.batches, out.batches), (1, 1, 1));
        assert_eq!(summary.skipped, vec![("dropped-by-mapper".to_string(), 1)]);
        // A hook that drops everything sends nothing and says so.
        struct All;
        impl Hook for All {
            fn record(&mut self, _: Record) -> Option<Record> {
                None
            }
        }
        let mut none = Collect::default();
        let summary = map_event_with(
            event.as_bytes(),
            &Invocation::default(),
            &mut none,
            &mut All,
        )
        .unwrap();
        assert_eq!((summary.records, summary.batches, none.batches), (0, 0, 0));
        assert_eq!(summary.skipped, vec![("dropped-by-mapper".to_string(), 2)]);
        // The default hook changes nothing.
        let mut plain = Collect::default();
        assert_eq!(
            map_event(event.as_bytes(), &Invocation::default(), &mut plain)
                .unwrap()
                .records,
            2
        );
    }
}
