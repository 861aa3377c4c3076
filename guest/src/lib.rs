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
//! - [`kinesis`]: the items of a Kinesis event, each such a payload (what a CloudWatch Logs
//!   destination writes), mapped alike; one that cannot be decoded is reported, not fatal.
//! - [`log_source`]: what log group and stream names say (scope, db identifier, log type).
//! - [`formats`]: every RDS engine's log formats: entries and typed fields.
//! - [`logs`]: CloudWatch log events → `#RDS_LOG` records; [`os_metrics`], Enhanced
//!   Monitoring's documents → `#RDS_OS_METRICS` records.
//! - [`rds_event`]: EventBridge `aws.rds` events → `#RDS_EVENT` records, with severity.
//! - [`output`]: the [`Output`] trait and the batching in front of it; [`packed`], a batch as
//!   `sink.send-packed` takes it.
//! - [`sql`]: SQL insight (fingerprint, digest, command, tables, trace context) of every
//!   entry that carries a statement, and the `sql-literals` redaction.
//! - [`rules`]: the mapping config (rules without code), applied as a [`Hook`]; [`redact`].
//! - [`record`], [`level`], [`time`], [`config`], [`error`]: the shared vocabulary.
//! - [`generate`]: realistic Lambda events from sample logs, for benchmarks and load tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod awslogs;
pub mod config;
pub mod error;
pub mod escapes;
pub mod formats;
pub mod generate;
pub mod kinesis;
pub mod level;
pub mod log_source;
pub mod logs;
pub mod os_metrics;
pub mod output;
pub mod packed;
pub mod rds_event;
pub mod record;
pub mod redact;
pub mod rules;
pub mod sql;
pub mod time;

use serde_json::{Map, Value};

use logs::Emit;

pub use config::Config;
pub use error::MapError;
pub use output::{Batcher, Collect, Count, LogLevel, Output};
pub use record::{FieldValue, Record, RecordParts};

/// This mapper's name, as `describe()` reports it.
pub const MAPPER_NAME: &str = "rds-mapper";
/// This mapper's version.
pub const MAPPER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The version of the WIT package `whatap:rds-mapper` this library implements.
pub const CONTRACT_VERSION: &str = "1.3.0";

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

    /// Whether this hook returns every record as it is. The mapping then packs each entry
    /// straight from its parse, never building the [`Record`] a hook would see.
    fn passes_all(&self) -> bool {
        false
    }
}

/// The default mapper's hook: every record as it is.
pub struct Unchanged;

impl Hook for Unchanged {
    fn record(&mut self, record: Record) -> Option<Record> {
        Some(record)
    }

    fn passes_all(&self) -> bool {
        true
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
    let passes_all = rules.is_none() && hook.passes_all();
    let mut chain = Chain {
        rules: rules.as_mut(),
        hook,
    };
    let hook: Option<&mut dyn Hook> = if passes_all { None } else { Some(&mut chain) };
    map_with(event, invocation, output, hook)
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

/// Records on their way to the batches: through the hook as [`Record`]s when there is one,
/// packed in place when there is none.
struct Emitter<'b, 'o> {
    batcher: Batcher<'o, dyn Output + 'o>,
    hook: Option<&'b mut dyn Hook>,
    /// Records the hook dropped.
    dropped: u32,
}

impl Emit for Emitter<'_, '_> {
    fn emit(&mut self, record: &impl RecordParts) -> Result<(), MapError> {
        let Some(hook) = self.hook.as_deref_mut() else {
            return self.batcher.push(record);
        };
        match hook.record(record.to_record()) {
            Some(kept) => self.batcher.push(&kept),
            None => {
                self.dropped += 1;
                Ok(())
            }
        }
    }
}

impl Emitter<'_, '_> {
    /// The summary of a call that emitted everything it read.
    fn finish(mut self, event_kind: &str, split: u32) -> Result<Summary, MapError> {
        self.batcher.flush()?;
        let mut skipped = Vec::new();
        if self.dropped > 0 {
            skipped.push(("dropped-by-mapper".into(), self.dropped));
        }
        Ok(Summary {
            event_kind: event_kind.into(),
            records: self.batcher.records,
            batches: self.batcher.batches,
            skipped,
            split,
        })
    }
}

fn map_with(
    event: &[u8],
    invocation: &Invocation,
    output: &mut dyn Output,
    hook: Option<&mut dyn Hook>,
) -> Result<Summary, MapError> {
    let config = Config::from_pairs(&invocation.config)?;
    let (mut root, repaired) = parse_root(event)?;
    if let Some(items) = kinesis::items(&mut root) {
        let items = items?;
        drop(root);
        return map_kinesis(&items, &config, output, hook);
    }
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
        return map_awslogs(&json, &config, output, hook);
    }
    match root.get("source").and_then(Value::as_str) {
        Some("aws.rds") if config.decode_only => Ok(decoded_only("rds-event", 1, 0, output)),
        Some("aws.rds") => {
            let mut emitter = Emitter {
                batcher: Batcher::new(output, &config),
                hook,
                dropped: 0,
            };
            let mut record = rds_event::map_rds_event(&root, invocation.received_ms);
            if repaired {
                record.set_tag("parse_status", "repaired");
                record.set_field(
                    "parse_error",
                    FieldValue::Text(escapes::REPAIRED_ESCAPE.to_owned()),
                );
            }
            emitter.emit(&record)?;
            emitter.finish("rds-event", 0)
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

/// The summary of a `decode_only` run: nothing mapped, every event counted as skipped.
fn decoded_only(
    event_kind: &str,
    events: usize,
    message_bytes: usize,
    output: &mut dyn Output,
) -> Summary {
    output.log(
        LogLevel::Debug,
        &format!("decode only: events {events}, message bytes {message_bytes}"),
    );
    Summary {
        event_kind: event_kind.into(),
        records: 0,
        batches: 0,
        skipped: vec![("decode-only".into(), events as u32)],
        split: 0,
    }
}

/// The event's top-level object, and whether a lone surrogate escape in it had to become
/// U+FFFD for it to parse (see [`escapes`]).
fn parse_root(event: &[u8]) -> Result<(Map<String, Value>, bool), MapError> {
    if event.iter().all(u8::is_ascii_whitespace) {
        return Err(MapError::decode("the event is empty"));
    }
    let (value, repaired) = match serde_json::from_slice::<Value>(event) {
        Ok(value) => (value, false),
        Err(e) => match escapes::repair_surrogate_escapes(event)
            .and_then(|fixed| serde_json::from_slice::<Value>(&fixed).ok())
        {
            Some(value) => (value, true),
            None => {
                return Err(MapError::decode(format!(
                    "the event is not valid JSON: {e}"
                )));
            }
        },
    };
    match value {
        Value::Object(map) => Ok((map, repaired)),
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

fn map_awslogs(
    json: &[u8],
    config: &Config,
    output: &mut dyn Output,
    hook: Option<&mut dyn Hook>,
) -> Result<Summary, MapError> {
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
    if config.decode_only {
        // Every message unescaped, as mapping reads it; the total is logged, so the work is
        // done and seen.
        let bytes = payload.log_events.iter().map(|e| e.message().len()).sum();
        return Ok(decoded_only(
            "awslogs",
            payload.log_events.len(),
            bytes,
            output,
        ));
    }
    let stream = logs::StreamTags::new(&payload)
        .with_event_ids(config.cw_event_id)
        .with_sql_insight(config.sql_insight, config.sql_memo);
    let mut emitter = Emitter {
        batcher: Batcher::expecting(output, config, payload.log_events.len()),
        hook,
        dropped: 0,
    };
    let mut split = 0;
    for event in &payload.log_events {
        split += stream.records(event, config.max_content_bytes, &mut emitter)?;
    }
    emitter.finish("awslogs", split)
}

/// A Kinesis event: each item a CloudWatch Logs payload, mapped as an `awslogs` event's is,
/// into the same batches. An item that cannot be decoded is reported by its sequence number
/// and counted (`item-failed`); control messages are counted (`control-message`).
fn map_kinesis(
    items: &[kinesis::Item],
    config: &Config,
    output: &mut dyn Output,
    hook: Option<&mut dyn Hook>,
) -> Result<Summary, MapError> {
    let mut emitter = Emitter {
        batcher: Batcher::new(output, config),
        hook,
        dropped: 0,
    };
    let (mut split, mut control, mut failed, mut events, mut bytes) = (0, 0, 0, 0, 0);
    for item in items {
        let json = awslogs::decode_field(&item.data, config.max_decompressed_bytes, kinesis::FIELD);
        let parsed = json
            .as_deref()
            .map_err(MapError::clone)
            .and_then(|j| awslogs::parse_field(j, kinesis::FIELD));
        let payload = match parsed {
            Ok(payload) => payload,
            Err(e) => {
                emitter
                    .batcher
                    .item_failed(&item.sequence_number, &e.to_string());
                failed += 1;
                continue;
            }
        };
        if payload.is_control() {
            control += payload.log_events.len() as u32;
            continue;
        }
        if config.decode_only {
            events += payload.log_events.len();
            bytes += payload
                .log_events
                .iter()
                .map(|e| e.message().len())
                .sum::<usize>();
            continue;
        }
        let stream = logs::StreamTags::new(&payload)
            .with_event_ids(config.cw_event_id)
            .with_sql_insight(config.sql_insight, config.sql_memo);
        for event in &payload.log_events {
            split += stream.records(event, config.max_content_bytes, &mut emitter)?;
        }
    }
    let mut summary = if config.decode_only {
        decoded_only("kinesis", events, bytes, emitter.batcher.output())
    } else {
        emitter.finish("kinesis", split)?
    };
    if control > 0 {
        summary.skipped.push(("control-message".into(), control));
    }
    if failed > 0 {
        summary.skipped.push(("item-failed".into(), failed));
    }
    Ok(summary)
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

    /// An awslogs event of an error log with two messages (JSON string contents).
    fn two_messages(first: &str, second: &str) -> String {
        let payload = format!(
            r#"{{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/rds/instance/db/error","logStream":"db","logEvents":[
            {{"id":"1","timestamp":1,"message":"{first}"}},{{"id":"2","timestamp":2,"message":"{second}"}}]}}"#
        );
        format!(
            r#"{{"awslogs":{{"data":"{}"}}}}"#,
            awslogs::encode(payload.as_bytes())
        )
    }

    #[test]
    fn decode_only_reads_every_message_and_maps_nothing() {
        let event = two_messages("tab\\there", "real work");
        let invocation = Invocation {
            config: vec![("decode_only".into(), "true".into())],
            ..Invocation::default()
        };
        let mut out = Collect::default();
        let summary = map_event(event.as_bytes(), &invocation, &mut out).unwrap();
        assert_eq!((summary.records, summary.batches, out.batches), (0, 0, 0));
        assert_eq!(summary.skipped, vec![("decode-only".to_string(), 2)]);
        assert_eq!(
            out.logs,
            vec![(
                LogLevel::Debug,
                "decode only: events 2, message bytes 17".to_string()
            )]
        );
        // Bad data is still an error: only mapping is skipped.
        let bad = map_event(br#"{"awslogs":{"data":"!!"}}"#, &invocation, &mut out);
        assert!(bad.unwrap_err().to_string().contains("not valid base64"));
        let rds = map_event(br#"{"source":"aws.rds"}"#, &invocation, &mut out).unwrap();
        assert_eq!((rds.event_kind.as_str(), rds.records), ("rds-event", 0));
    }

    #[test]
    fn a_hook_changes_and_drops_records_and_drops_are_counted() {
        let event = two_messages("rds_heartbeat2 update", "real work");
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
