//! Shared by the guest's integration tests.
#![allow(dead_code)]

use rds_mapper::formats::parse_message;

pub const LOG_TYPES: &[&str] = &[
    "error",
    "slowquery",
    "general",
    "audit",
    "postgresql",
    "upgrade",
    "alert",
    "listener",
    "agent",
    "proxy",
    "diag.log",
    "notify.log",
    "trace",
];

/// Every log type splits `message` into entries that are slices of it, in order, with exactly
/// one line terminator (LF or CRLF) between two and at most one after the last: no byte lost.
pub fn check(message: &str) {
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
