#![no_main]
//! Enhanced Monitoring's documents (`RDSOSMetrics`): any text gives records, never a panic,
//! and never none.
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let stream = Arc::new(Vec::new());
    let records = rds_mapper::os_metrics::records(&text, &stream, false, 0, &|i| i.to_string());
    assert!(!records.is_empty());
});
