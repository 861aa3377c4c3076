#![no_main]
//! License (project access key) parsing.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(l) = rds_forwarder_fuzz::whatap::license::License::parse(&text) {
        assert!(l.pcode != 0);
        let _ = l.master_key();
    }
});
