//! JSON escapes no text can hold: a `\\uXXXX` naming half of a surrogate pair without the other
//! half. JSON's grammar allows it, UTF-8 cannot represent it, and serde_json refuses the string;
//! here it becomes U+FFFD and the rest of the text is kept, so a message or event is never
//! emptied or refused for one escape.

/// What `parse_error` says of a record whose input held such an escape (`parse_status`
/// repaired).
pub const REPAIRED_ESCAPE: &str =
    "the message held a JSON escape no text can hold (a lone surrogate); it became U+FFFD";

/// Unescapes a JSON string literal (quotes included) as JSON defines its escapes, with U+FFFD
/// for a surrogate escape that has no partner. What is not a valid escape is kept as written.
pub(crate) fn unescape_lossy(raw: &str) -> String {
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or(raw);
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let (ch, used) = match rest.as_bytes().get(1) {
            Some(b'"') => ('"', 2),
            Some(b'\\') => ('\\', 2),
            Some(b'/') => ('/', 2),
            Some(b'b') => ('\u{8}', 2),
            Some(b'f') => ('\u{c}', 2),
            Some(b'n') => ('\n', 2),
            Some(b'r') => ('\r', 2),
            Some(b't') => ('\t', 2),
            Some(b'u') => match hex4(rest, 2) {
                Some(high @ 0xd800..=0xdbff) => match (rest.get(6..8), hex4(rest, 8)) {
                    (Some("\\u"), Some(low @ 0xdc00..=0xdfff)) => {
                        let code = 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
                        (char::from_u32(code).unwrap_or('\u{fffd}'), 12)
                    }
                    _ => ('\u{fffd}', 6),
                },
                Some(code) => (char::from_u32(code).unwrap_or('\u{fffd}'), 6),
                None => ('\\', 1),
            },
            _ => ('\\', 1),
        };
        out.push(ch);
        rest = &rest[used..];
    }
    out.push_str(rest);
    out
}

/// The four hex digits at `at` in `s`, as a number.
fn hex4(s: &str, at: usize) -> Option<u32> {
    let digits = s.get(at..at + 4)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// A whole JSON document with every lone surrogate escape replaced by `\\ufffd`, or `None`
/// when it has none (or is not UTF-8): what parsing an event that serde_json refused tries next.
pub fn repair_surrogate_escapes(json: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(json).ok()?;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let used = match (rest.as_bytes().get(1), hex4(rest, 2)) {
            (Some(b'u'), Some(0xd800..=0xdbff))
                if rest.get(6..8) == Some("\\u")
                    && matches!(hex4(rest, 8), Some(0xdc00..=0xdfff)) =>
            {
                12
            }
            (Some(b'u'), Some(0xd800..=0xdfff)) => {
                out.push_str("\\ufffd");
                changed = true;
                rest = &rest[6..];
                continue;
            }
            (Some(b'u'), Some(_)) => 6,
            // Every escape JSON has is ASCII (an escaped backslash included, so its second
            // backslash starts nothing); after anything else only the backslash is taken,
            // never part of a character.
            (Some(b), _) if b.is_ascii() => 2,
            _ => 1,
        };
        out.push_str(&rest[..used]);
        rest = &rest[used..];
    }
    out.push_str(rest);
    changed.then(|| out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_no_escape_is_kept_as_written() {
        assert_eq!(unescape_lossy(r#""a\ud8 \q \""#), "a\\ud8 \\q \\");
        assert_eq!(
            unescape_lossy(r#""\ud800\ud83d\ude00 \u00e9""#),
            "\u{fffd}😀 é"
        );
    }

    #[test]
    fn a_document_loses_only_its_lone_surrogates() {
        let json = br#"{"a":"x\ud800y","b":"\ud83d\ude00","c":"\\ud800","d":"\udc00\n"}"#;
        let repaired = repair_surrogate_escapes(json).expect("changed");
        let value: serde_json::Value = serde_json::from_slice(&repaired).unwrap();
        assert_eq!(value["a"], "x\u{fffd}y");
        assert_eq!(value["b"], "😀");
        // An escaped backslash before `ud800` is text, not an escape.
        assert_eq!(value["c"], "\\ud800");
        assert_eq!(value["d"], "\u{fffd}\n");
        assert_eq!(repair_surrogate_escapes(br#"{"b":"\ud83d\ude00"}"#), None);
        // A backslash before a character of several bytes (not JSON, but what a fuzzer sends).
        let odd = r"\ܪ \ud800 \".as_bytes();
        let repaired = repair_surrogate_escapes(odd).expect("the lone surrogate changed");
        assert_eq!(String::from_utf8(repaired).unwrap(), r"\ܪ \ufffd \");
    }
}
