// The WIT ⇄ library glue every mapper built on `rds-mapper` shares. It is `include!`d after
// `wit_bindgen::generate!` (with `ownership: Borrowing { duplicate_if_necessary: false }`) by a
// crate that defines:
//   const MAPPER_NAME: &str; const MAPPER_VERSION: &str;
//   fn new_hook() -> impl rds_mapper::Hook;
// (see lib.rs here for the default mapper, guest/examples/mappers for custom ones).

use exports::whatap::rds_mapper::mapper::Guest;
use whatap::rds_mapper::types::{
    ErrorKind, FieldValue, Invocation, Level, LogRecord, MapError, MapperInfo, Skipped, Summary,
};
use whatap::rds_mapper::{diagnostics, sink};

struct Component;

/// The host's imports as the library's `Output`.
struct Host;

impl rds_mapper::Output for Host {
    /// One `sink.send-tagged` per batch. The records are lowered from borrowed strings, and a
    /// stream's tags go once: building owned WIT records cost an allocation per string, and the
    /// host lifting the same stream tags for every record was most of the boundary's cost.
    fn send(&mut self, batch: Vec<rds_mapper::Record>) -> Result<(), String> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        // A batch is one stream's in the library; records of several streams (a custom
        // mapper's doing) go with their stream tags inlined.
        let shared = batch
            .iter()
            .all(|r| std::sync::Arc::ptr_eq(&r.stream_tags, &first.stream_tags));
        let mut tags: Vec<(&str, &str)> = Vec::new();
        let mut fields: Vec<(&str, FieldValue<'_>)> = Vec::new();
        let mut spans = Vec::with_capacity(batch.len());
        for r in &batch {
            let (t, f) = (tags.len(), fields.len());
            if shared {
                tags.extend(r.tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
            } else {
                tags.extend(r.all_tags());
            }
            fields.extend(r.fields.iter().map(|(k, v)| (k.as_ref(), field_value(v))));
            spans.push((t..tags.len(), f..fields.len()));
        }
        let records: Vec<LogRecord<'_>> = batch
            .iter()
            .zip(spans)
            .map(|(r, (t, f))| LogRecord {
                category: &r.category,
                time: r.time,
                tags: &tags[t],
                fields: &fields[f],
                content: &r.content,
                line: r.line,
            })
            .collect();
        let stream: Vec<(&str, &str)> = if shared {
            first
                .stream_tags
                .iter()
                .map(|(k, v)| (k.as_ref(), v.as_ref()))
                .collect()
        } else {
            Vec::new()
        };
        sink::send_tagged(&stream, &records)
    }

    fn log(&mut self, level: rds_mapper::LogLevel, message: &str) {
        let level = match level {
            rds_mapper::LogLevel::Trace => Level::Trace,
            rds_mapper::LogLevel::Debug => Level::Debug,
            rds_mapper::LogLevel::Info => Level::Info,
            rds_mapper::LogLevel::Warn => Level::Warn,
            rds_mapper::LogLevel::Error => Level::Error,
        };
        diagnostics::log(level, message);
    }
}

fn field_value(v: &rds_mapper::FieldValue) -> FieldValue<'_> {
    match v {
        rds_mapper::FieldValue::Text(s) => FieldValue::Text(s),
        rds_mapper::FieldValue::Integer(i) => FieldValue::Integer(*i),
        rds_mapper::FieldValue::Float(f) => FieldValue::Float(*f),
        rds_mapper::FieldValue::Boolean(b) => FieldValue::Boolean(*b),
    }
}

impl Guest for Component {
    fn describe() -> MapperInfo {
        MapperInfo {
            name: MAPPER_NAME.into(),
            version: MAPPER_VERSION.into(),
            contract: rds_mapper::CONTRACT_VERSION.into(),
        }
    }

    fn map_event(event: Vec<u8>, context: Invocation) -> Result<Summary, MapError> {
        let invocation = rds_mapper::Invocation {
            request_id: context.request_id,
            function_name: context.function_name,
            deadline_ms: context.deadline_ms,
            received_ms: context.received_ms,
            config: context.config,
        };
        match rds_mapper::map_event_with(&event, &invocation, &mut Host, &mut new_hook()) {
            Ok(s) => Ok(Summary {
                event_kind: s.event_kind,
                records: s.records,
                batches: s.batches,
                skipped: s
                    .skipped
                    .into_iter()
                    .map(|(reason, count)| Skipped { reason, count })
                    .collect(),
                split: s.split,
            }),
            Err(e) => {
                let kind = match &e {
                    rds_mapper::MapError::Decode(_) => ErrorKind::Decode,
                    rds_mapper::MapError::Unsupported(_) => ErrorKind::Unsupported,
                    rds_mapper::MapError::Config(_) => ErrorKind::Config,
                    rds_mapper::MapError::Delivery(_) => ErrorKind::Delivery,
                };
                Err(MapError {
                    kind,
                    message: e.to_string(),
                })
            }
        }
    }
}

export!(Component);
