//! Replays every input in fixtures/fuzz-regressions through every parser and the whole
//! mapping: no panic, and entries rejoin to the message with only line terminators between.

mod common;

#[test]
fn every_regression_input_parses_without_losing_bytes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures/fuzz-regressions") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        seen += 1;
        let bytes = std::fs::read(&path).expect("input");
        let mut out = rds_mapper::Collect::default();
        let _ = rds_mapper::map_event(&bytes, &rds_mapper::Invocation::default(), &mut out);
        common::check(&String::from_utf8_lossy(&bytes));
    }
    assert!(seen >= 2, "the regression inputs are missing");
}
