// The WIT ⇄ library glue every mapper built on `rds-mapper` shares. It is `include!`d after
// `wit_bindgen::generate!` (with `ownership: Borrowing { duplicate_if_necessary: false }`) by a
// crate that defines:
//   const MAPPER_NAME: &str; const MAPPER_VERSION: &str;
//   fn new_hook() -> impl rds_mapper::Hook;
// (see lib.rs here for the default mapper, guest/examples/mappers for custom ones).

use exports::whatap::rds_mapper::mapper::Guest;
use whatap::rds_mapper::types::{
    ErrorKind, Invocation, Level, MapError, MapperInfo, Skipped, Summary,
};
use whatap::rds_mapper::{diagnostics, sink};

struct Component;

/// The host's imports as the library's `Output`.
struct Host;

impl rds_mapper::Output for Host {
    /// One `sink.send-packed` per batch, lowered from the library's own buffers: the batch's
    /// strings were copied once, as its records were mapped, and the host checks them once.
    /// Lowered as `log-record`s, every string of every record was a check on the host's side
    /// and every record's tags and fields a list on ours.
    fn send(&mut self, batch: &rds_mapper::packed::Packed) -> Result<(), String> {
        sink::send_packed(batch.text(), batch.ends(), batch.words())
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

    /// `sink.item-failed` (1.3).
    fn item_failed(&mut self, item: &str, reason: &str) {
        sink::item_failed(item, reason);
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
