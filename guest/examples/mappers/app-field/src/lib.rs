//! Example custom mapper: the default mapping, plus an application's own log lines
//! (`2024-01-02T03:04:05Z level=warn order_id=42 latency_ms=12.5 msg=slow`) parsed into typed
//! fields, and their `level=` taken as the record's level tag.
#![cfg(target_family = "wasm")]

wit_bindgen::generate!({
    world: "rds-mapper",
    path: "../../../../wit",
    // A packed batch is lowered from the guest's own buffers, not copied again (see wrapper.rs).
    ownership: Borrowing { duplicate_if_necessary: false },
});

const MAPPER_NAME: &str = "app-field-example";
const MAPPER_VERSION: &str = env!("CARGO_PKG_VERSION");

struct AppFields;

fn new_hook() -> AppFields {
    AppFields
}

impl rds_mapper::Hook for AppFields {
    fn record(&mut self, mut r: rds_mapper::Record) -> Option<rds_mapper::Record> {
        // Only lines of the application's own log groups (outside /aws/rds/).
        if r.tag("scope") != Some("other") {
            return Some(r);
        }
        let content = r.content.clone();
        for pair in content.split_whitespace() {
            let Some((key, value)) = pair.split_once('=') else { continue };
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                continue;
            }
            if key == "level" {
                if let Some(level) = rds_mapper::level::Level::parse(value) {
                    r.set_tag("level", level.as_str());
                }
                continue;
            }
            let value = if let Ok(i) = value.parse::<i64>() {
                rds_mapper::FieldValue::Integer(i)
            } else if let Ok(f) = value.parse::<f64>() {
                rds_mapper::FieldValue::Float(f)
            } else {
                rds_mapper::FieldValue::Text(value.to_owned())
            };
            r.set_field(key.to_owned(), value);
        }
        r.set_tag("app_parsed", "true");
        Some(r)
    }
}

include!("../../../../component/src/wrapper.rs");
