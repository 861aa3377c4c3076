//! Arbitrary text and truncated real entries, through every log type's parser and the whole
//! mapping: never a panic, never a lost byte (the entries always rejoin to the message).

use proptest::prelude::*;

mod common;

use common::check;

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
