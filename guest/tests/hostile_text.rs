//! Arbitrary text and truncated real entries, through every log type's parser and the whole
//! mapping: never a panic, never a lost byte (the entries always rejoin to the message).

use proptest::prelude::*;
use rds_mapper::formats::parse_message;

const LOG_TYPES: &[&str] = &[
    "error",
    "slowquery",
    "general",
    "audit",
    "postgresql",
    "upgrade",
    "alert",
    "listener",
    "agent",
    "trace",
];

fn check(message: &str) {
    for log_type in LOG_TYPES {
        let entries = parse_message(log_type, message);
        assert!(!entries.is_empty());
        // Entries are slices of the message, in order; between two of them, and after the
        // last, there is exactly one line terminator (LF or CRLF) and nothing else.
        let base = message.as_ptr() as usize;
        let mut at = 0usize;
        for (i, e) in entries.iter().enumerate() {
            let start = e.text.as_ptr() as usize - base;
            let gap = &message[at..start];
            if i == 0 {
                assert_eq!(start, 0, "{log_type}: the first entry starts the message");
            } else {
                assert!(
                    gap == "\n" || gap == "\r\n",
                    "{log_type}: {gap:?} between entries {}-{i}",
                    i - 1
                );
            }
            at = start + e.text.len();
        }
        let tail = &message[at..];
        assert!(
            tail.is_empty() || tail == "\n" || tail == "\r\n",
            "{log_type}: {tail:?} left after the last entry"
        );
    }
}

/// Text made of the pieces log lines are made of, so the parsers get past their first checks.
fn log_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("2023-11-28T09:13:22.104678Z ".to_string()),
        Just("2022-07-08 05:42:10.35 ".to_string()),
        Just("2024-01-21 17:56:55 UTC:".to_string()),
        Just("231128  9:13:22 ".to_string()),
        Just("1645164733006686,".to_string()),
        Just("20221201 14:07:05,".to_string()),
        Just("01-NOV-2021 17:19:26 * ".to_string()),
        Just("# Time: ".to_string()),
        Just("# User@Host: ".to_string()),
        Just("[Warning] [MY-010055] ".to_string()),
        Just(":[123]:LOG:  duration: ".to_string()),
        Just("'\\'',".to_string()),
        Just("(PID:".to_string()),
        Just("\n".to_string()),
        Just("\t".to_string()),
        Just("한".to_string()),
        Just("\u{0}".to_string()),
        "[ -~]{0,12}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics_or_loses_bytes(s in ".{0,300}") {
        check(&s);
    }

    #[test]
    fn log_like_text_never_panics_or_loses_bytes(s in log_like()) {
        check(&s);
    }

    #[test]
    fn crlf_text_never_loses_bytes(s in log_like().prop_map(|s| s.replace('\n', "\r\n"))) {
        check(&s);
    }

    #[test]
    fn arbitrary_bytes_as_an_event_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut out = rds_mapper::Collect::default();
        let _ = rds_mapper::map_event(&bytes, &rds_mapper::Invocation::default(), &mut out);
    }
}

#[test]
fn every_truncation_of_every_real_entry_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/logs");
    for entry in std::fs::read_dir(&dir).expect("fixtures/logs") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("sample");
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("#%")).collect();
        let body = body.join("\n");
        for (cut, _) in body.char_indices().step_by(3) {
            check(&body[..cut]);
            check(&body[cut..]);
        }
    }
}
