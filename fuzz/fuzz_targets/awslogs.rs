#![no_main]
//! base64 → gzip → JSON of a CloudWatch Logs payload.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(json) = rds_mapper::awslogs::decode(&text, 1 << 20) {
        let _ = rds_mapper::awslogs::parse(&json);
    }
    let _ = rds_mapper::awslogs::inflate(data, 1 << 20).map(|j| rds_mapper::awslogs::parse(&j).is_ok());
});
