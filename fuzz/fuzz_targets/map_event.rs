#![no_main]
//! A whole Lambda event (RDS events, awslogs envelopes, anything else).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = rds_mapper::Collect::default();
    let _ = rds_mapper::map_event(data, &rds_mapper::Invocation::default(), &mut out);
});
