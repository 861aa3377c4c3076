//! Oracle listener log: `31-JUL-2024 02:00:00 * (CONNECT_DATA=…) * (ADDRESS=…) * establish * ptdb * 12516`,
//! shorter `… * service_update * ORCL * 0` lines, an optional ISO timestamp header line before
//! an entry, and `TNS-` error lines that continue it.

use super::Parsed;
use super::oracle_alert::{body, iso_header};
use super::scan::{self, named_month_time};
use crate::level::Level;

/// `DD-MON-YYYY HH:MM:SS`: epoch ms.
fn listener_time(line: &str) -> Option<i64> {
    let b = line.as_bytes();
    if b.len() < 20 || !b[..20].is_ascii() || b[2] != b'-' || b[6] != b'-' || b[11] != b' ' {
        return None;
    }
    named_month_time(&line[7..11], &line[3..6], &line[..2], &line[12..20])
}

pub fn is_start(prev: &str, line: &str) -> bool {
    iso_header(line).is_some()
        || (listener_time(line).is_some()
            && scan::contains(line, " * ")
            && iso_header(prev).is_none())
}

/// The value of `(KEY=value)` inside a descriptor (`key` is ASCII). Found without building
/// the `(KEY=` needle: this runs six times per entry.
fn descriptor<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(i) = scan::find(&text[from..], key) {
        let at = from + i;
        let after = at + key.len();
        if at > 0 && b[at - 1] == b'(' && b.get(after) == Some(&b'=') {
            let value = &text[after + 1..];
            return Some(scan::split_once(value, ")").map_or(value, |(v, _)| v));
        }
        from = at + 1;
    }
    None
}

pub fn parse(entry: &str) -> Parsed<'_> {
    let mut p = Parsed::new(Some("oracle"));
    let mut lines = scan::lines(entry);
    let mut line = lines.next().unwrap_or("");
    if let Some((ms, precise)) = iso_header(line) {
        p.time(ms, precise);
        line = lines.next().unwrap_or("");
    }
    let Some(ms) = listener_time(line) else {
        return Parsed::unparsed(
            p.engine,
            "the entry does not start with a listener timestamp",
            entry,
        );
    };
    if p.time_ms.is_none() {
        p.time(ms, false);
    }
    let parts: Vec<&str> = scan::split(&line[20..], " * ").map(str::trim).collect();
    // `* (CONNECT_DATA=…) * (ADDRESS=…) * event * service * rc`, or `* event * service * rc`.
    let parts: Vec<&str> = parts
        .into_iter()
        .map(|s| s.trim_start_matches("* "))
        .filter(|s| !s.is_empty())
        .collect();
    let (connect, address, tail) = match parts.as_slice() {
        [c, a, tail @ ..] if c.starts_with("(CONNECT_DATA=") => {
            (Some(*c), a.starts_with("(ADDRESS=").then_some(*a), tail)
        }
        tail => (None, None, tail),
    };
    if let Some(c) = connect {
        for (key, name) in [
            ("SERVICE_NAME", "service_name"),
            ("SID", "sid"),
            ("PROGRAM", "program"),
            ("USER", "os_user"),
        ] {
            if let Some(v) = descriptor(c, key) {
                p.text(name, v);
            }
        }
    }
    if let Some(a) = address {
        if let Some(v) = descriptor(a, "PROTOCOL") {
            p.text("protocol", v);
        }
        if let Some(v) = descriptor(a, "HOST") {
            p.text("client_host", v);
        }
        if let Some(v) = descriptor(a, "PORT").and_then(|v| v.parse::<i64>().ok()) {
            p.int("client_port", v);
        }
    }
    match tail {
        [event, service, rc] => {
            p.text("event", *event);
            p.text("service", *service);
            p.number_or_text("retcode", *rc);
        }
        [event, rc] => {
            p.text("event", *event);
            p.number_or_text("retcode", *rc);
        }
        _ => return Parsed::unparsed(p.engine, "unexpected listener fields", entry),
    }
    body(&mut p, lines.remainder());
    if matches!(p.field("retcode"), Some(crate::record::FieldValue::Integer(rc)) if *rc != 0) {
        p.level = p.level.max(Level::Error);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_values_are_found_only_as_keys() {
        let d = "(CONNECT_DATA=(SID=x)(CID=(PROGRAM=SID)(HOST=h)(USER=u)))";
        assert_eq!(descriptor(d, "SID"), Some("x"));
        assert_eq!(descriptor(d, "PROGRAM"), Some("SID"));
        assert_eq!(descriptor(d, "USER"), Some("u"));
        assert_eq!(descriptor("(PROGRAM=SIDE)(SID=y)", "SID"), Some("y"));
        assert_eq!(descriptor("SID=z (SID", "SID"), None);
        assert_eq!(descriptor("", "SID"), None);
    }
    use crate::record::FieldValue::{Integer, Text};

    #[test]
    fn establish_with_tns_error_under_an_iso_header() {
        let p = parse(
            "2024-07-31T02:00:00.006290+08:00\n31-JUL-2024 02:00:00 * (CONNECT_DATA=(CID=(PROGRAM=JDBC Thin Client)(HOST=jdbc)(USER=ptdb))(SERVICE_NAME=ptdb)) * (ADDRESS=(PROTOCOL=tcp)(HOST=192.168.12.27)(PORT=47898)) * establish * ptdb * 12516\nTNS-12516: TNS:listener could not find available handler with matching protocol stack",
        );
        assert_eq!(p.unparsed, None);
        assert_eq!(
            (p.time_ms, p.precise, p.level),
            (Some(1_722_362_400_006), true, Level::Error)
        );
        assert_eq!(p.field("service_name"), Some(&Text("ptdb".into())));
        assert_eq!(p.field("program"), Some(&Text("JDBC Thin Client".into())));
        assert_eq!(p.field("os_user"), Some(&Text("ptdb".into())));
        assert_eq!(p.field("client_host"), Some(&Text("192.168.12.27".into())));
        assert_eq!(p.field("client_port"), Some(&Integer(47898)));
        assert_eq!(p.field("event"), Some(&Text("establish".into())));
        assert_eq!(p.field("retcode"), Some(&Integer(12516)));
        assert_eq!(p.field("error_code"), Some(&Text("TNS-12516".into())));
    }

    #[test]
    fn error_lines_after_the_entry_are_read_in_a_crlf_log_too() {
        let lf = "31-JUL-2024 02:00:00 * (CONNECT_DATA=(SID=x)) * (ADDRESS=(PROTOCOL=tcp)(HOST=h)(PORT=1)) * establish * x * 12516\nTNS-12516: TNS:listener could not find available handler\n TNS-12560: TNS:protocol adapter error";
        let crlf = lf.replace('\n', "\r\n");
        for entry in [lf, crlf.as_str()] {
            let p = parse(entry);
            assert_eq!(p.field("error_code"), Some(&Text("TNS-12516".into())));
            assert_eq!(p.level, Level::Error);
        }
    }

    #[test]
    fn plain_connect_and_starts() {
        let p = parse(
            "12-OCT-2009 10:03:39 * (CONNECT_DATA=(SID=ORCL)) * (ADDRESS=(PROTOCOL=tcp)(HOST=123.456.1.123)(PORT=3158)) * establish * ORCL * 0",
        );
        assert_eq!((p.time_ms, p.level), (Some(1_255_341_819_000), Level::Info));
        assert_eq!(p.field("sid"), Some(&Text("ORCL".into())));
        let p = parse("15-JAN-2024 03:00:00 * service_update * ORCL * 0");
        assert_eq!(p.field("event"), Some(&Text("service_update".into())));
        assert!(!is_start(
            "2024-07-31T02:00:00.006290+08:00",
            "31-JUL-2024 02:00:00 * (CONNECT_DATA=) * x * 0"
        ));
        assert!(is_start(
            "",
            "31-JUL-2024 02:00:00 * (CONNECT_DATA=) * x * 0"
        ));
        assert!(!is_start("", "TNS-12516: TNS:listener could not find"));
    }
}
