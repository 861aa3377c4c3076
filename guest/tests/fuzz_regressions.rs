//! Replays every input in fixtures/fuzz-regressions through every parser and the whole
//! mapping: no panic, and entries rejoin to the message with only line terminators between.

use rds_mapper::formats::parse_message;

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
        let text = String::from_utf8_lossy(&bytes);
        for log_type in [
            "error",
            "slowquery",
            "general",
            "audit",
            "postgresql",
            "alert",
            "listener",
            "agent",
            "trace",
        ] {
            let entries = parse_message(log_type, &text);
            let base = text.as_ptr() as usize;
            let mut at = 0;
            for (i, e) in entries.iter().enumerate() {
                let start = e.text.as_ptr() as usize - base;
                let gap = &text[at..start];
                assert!(
                    i == 0 && start == 0 || gap == "\n" || gap == "\r\n",
                    "{}: {log_type}: gap {gap:?}",
                    path.display()
                );
                at = start + e.text.len();
            }
            let tail = &text[at..];
            assert!(
                tail.is_empty() || tail == "\n" || tail == "\r\n",
                "{}: {log_type}: tail {tail:?}",
                path.display()
            );
        }
    }
    assert!(seen >= 2, "the regression inputs are missing");
}
