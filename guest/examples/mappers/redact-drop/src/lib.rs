//! Example custom mapper: the default mapping, with passwords and e-mail addresses redacted
//! from content and text fields, and RDS's own `rdsadmin` audit noise dropped (counted as
//! `dropped-by-mapper` in the summary).
#![cfg(target_family = "wasm")]

wit_bindgen::generate!({
    world: "rds-mapper",
    path: "../../../../wit",
    // A packed batch is lowered from the guest's own buffers, not copied again (see wrapper.rs).
    ownership: Borrowing { duplicate_if_necessary: false },
});

const MAPPER_NAME: &str = "redact-drop-example";
const MAPPER_VERSION: &str = env!("CARGO_PKG_VERSION");

struct RedactDrop;

fn new_hook() -> RedactDrop {
    RedactDrop
}

fn redact(text: &str) -> String {
    rds_mapper::redact::emails(&rds_mapper::redact::passwords(text))
}

impl rds_mapper::Hook for RedactDrop {
    fn record(&mut self, mut r: rds_mapper::Record) -> Option<rds_mapper::Record> {
        let rdsadmin = matches!(r.field("user"), Some(rds_mapper::FieldValue::Text(u)) if u == "rdsadmin");
        if r.tag("log_type") == Some("audit") && rdsadmin {
            return None;
        }
        r.content = redact(&r.content);
        for (_, value) in r.fields.iter_mut() {
            if let rds_mapper::FieldValue::Text(t) = value {
                *t = redact(t);
            }
        }
        r.set_tag("redacted", "true");
        Some(r)
    }
}

include!("../../../../component/src/wrapper.rs");
