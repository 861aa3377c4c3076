#![no_main]
//! Every engine log parser, on the same text.
use libfuzzer_sys::fuzz_target;

const LOG_TYPES: &[&str] = &["error", "slowquery", "general", "audit", "postgresql", "alert", "listener", "agent", "proxy", "diag.log", "notify.log"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for log_type in LOG_TYPES {
        let entries = rds_mapper::formats::parse_message(log_type, &text);
        assert!(!entries.is_empty());
    }
});
