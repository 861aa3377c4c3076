// The WIT ⇄ library glue every mapper built on `rds-mapper` shares. It is `include!`d after
// `wit_bindgen::generate!` by a crate that defines:
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
    fn send(&mut self, batch: Vec<rds_mapper::Record>) -> Result<(), String> {
        let batch: Vec<LogRecord> = batch.into_iter().map(to_wit).collect();
        sink::send(&batch)
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

fn to_wit(r: rds_mapper::Record) -> LogRecord {
    LogRecord {
        category: r.category,
        time: r.time,
        tags: r.tags,
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
                (k, v)
            })
            .collect(),
        content: r.content,
        line: r.line,
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
