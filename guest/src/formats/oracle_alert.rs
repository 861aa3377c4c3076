//! RDS for Oracle alert log: a timestamp header line (`2024-01-15T03:12:45.123456+00:00` since
//! 12.2, `Mon Jan 15 03:20:00 2024` before), then message lines. CloudWatch may deliver the
//! message lines without their header; those are still parsed (the body is free text).

use super::Parsed;
use super::scan::{self, Scan, named_month_time, starts_with_date_time};
use crate::level::Level;

/// A line that is only an ISO-8601 timestamp with an offset.
pub fn iso_header(line: &str) -> Option<(i64, bool)> {
    let t = line.trim();
    if !starts_with_date_time(t, b'T') || t.contains(' ') {
        return None;
    }
    crate::time::parse_rfc3339(t).map(|ms| (ms, t.contains('.')))
}

/// `Mon Jan 15 03:20:00 2024` (optionally followed by an offset such as `+00:00`).
pub fn ctime_header(line: &str) -> Option<i64> {
    let mut parts = scan::words(line);
    let (_dow, mon) = (parts.next()?, parts.next()?);
    // The month first: it is the test most lines fail, and this runs on every line of an
    // Oracle audit log (its entry-start test).
    scan::month(mon)?;
    let (day, time, year) = (parts.next()?, parts.next()?, parts.next()?);
    let offset = parts.next();
    if parts.next().is_some()
        || !matches!(offset, None | Some("+00:00") | Some("-00:00") | Some("UTC"))
    {
        return None;
    }
    named_month_time(year, mon, day, time)
}

pub fn is_start(line: &str) -> bool {
    iso_header(line).is_some() || ctime_header(line).is_some()
}

/// Oracle errors that mean corruption or an internal failure.
const CRITICAL_CODES: [&str; 4] = ["ORA-00600", "ORA-07445", "ORA-01578", "ORA-04031"];

/// Reads the ORA-/TNS- codes, trace file and process out of alert text; shared with the
/// listener parser.
pub fn body<'e>(p: &mut Parsed<'e>, text: &'e str) {
    let codes: Vec<&str> = ["ORA-", "TNS-"]
        .iter()
        .flat_map(|prefix| {
            scan::match_indices(text, prefix).filter_map(move |i| {
                let code = &text[i..];
                let n = code[4..].bytes().take_while(u8::is_ascii_digit).count();
                (n >= 4).then(|| &code[..4 + n])
            })
        })
        .collect();
    if let Some(first) = codes.first() {
        p.text("error_code", *first);
        p.level = if codes.iter().any(|c| CRITICAL_CODES.contains(c)) {
            Level::Critical
        } else {
            Level::Error
        };
    } else if scan::contains(text, "WARNING:") {
        p.level = Level::Warning;
    }
    if let Some(rest) = scan::split(text, "Errors in file ").nth(1)
        && let Some(file) = rest.split(['\n', ' ']).next()
    {
        // `…trc:` and, in a CRLF log, `…trc:\r`.
        p.text("trace_file", file.trim_end_matches([':', '\r']));
    }
    // `ARC0 (PID:11679): …` names the process.
    if let Some(i) = scan::find(text, " (PID:") {
        let process = text[..i]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("");
        let mut s = Scan::new(&text[i + 6..]);
        if let Some(pid) = s.number() {
            if !process.is_empty()
                && process
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                p.text("process", process);
            }
            p.int("pid", pid);
        }
    }
}

pub fn parse(entry: &str) -> Parsed<'_> {
    let mut p = Parsed::new(Some("oracle"));
    let (first, rest) = entry.split_once('\n').unwrap_or((entry, ""));
    let text = if let Some((ms, precise)) = iso_header(first) {
        p.time(ms, precise);
        rest
    } else if let Some(ms) = ctime_header(first) {
        p.time(ms, false);
        rest
    } else {
        entry
    };
    body(&mut p, text);
    p
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;
    use crate::record::FieldValue::{Integer, Text};

    #[test]
    fn iso_header_and_critical_code() {
        let p = parse(
            "2024-01-15T03:14:02.000001+00:00\nErrors in file /rdsdbdata/log/diag/rdbms/orcl_a/ORCL/trace/ORCL_ora_12345.trc:\nORA-01578: ORACLE data block corrupted (file # 7, block # 1234)",
        );
        assert_eq!(
            (p.time_ms, p.precise, p.level),
            (Some(1_705_288_442_000), true, Level::Critical)
        );
        assert_eq!(
            fields(&p),
            vec![
                ("error_code", Text("ORA-01578".into())),
                (
                    "trace_file",
                    Text("/rdsdbdata/log/diag/rdbms/orcl_a/ORCL/trace/ORCL_ora_12345.trc".into())
                ),
            ]
        );
    }

    #[test]
    fn a_crlf_log_gives_the_same_fields() {
        let lf = "2024-01-15T03:14:02.000001+00:00\nErrors in file /rdsdbdata/trace/ORCL_ora_12345.trc:\nORA-00600: internal error code";
        let crlf = lf.replace('\n', "\r\n");
        assert_eq!(fields(&parse(&crlf)), fields(&parse(lf)));
        assert_eq!(
            parse(&crlf).field("trace_file"),
            Some(&Text("/rdsdbdata/trace/ORCL_ora_12345.trc".into()))
        );
    }

    #[test]
    fn header_less_messages_and_processes() {
        let p = parse(
            "ARC0 (PID:11679): Archived Log entry 1090716 added for T-1.S-1090404 ID 0xd2b1e1fd LAD:1",
        );
        assert_eq!((p.unparsed, p.time_ms, p.level), (None, None, Level::Info));
        assert_eq!(
            fields(&p),
            vec![("process", Text("ARC0".into())), ("pid", Integer(11679))]
        );
        let p = parse("('05/19/023 14:02:26', '.... (PID:18003): REDO_TRANSPORT_USER changed')");
        assert_eq!(
            fields(&p),
            vec![("pid", Integer(18003))],
            "no process name from punctuation"
        );
        let p = parse("ORA-12920 signalled during: alter database force logging...");
        assert_eq!(
            (p.level, p.field("error_code")),
            (Level::Error, Some(&Text("ORA-12920".into())))
        );
    }

    #[test]
    fn old_header() {
        let p = parse("Mon Jan 15 03:20:00 2024\nStarting background process CJQ0");
        assert_eq!((p.time_ms, p.precise), (Some(1_705_288_800_000), false));
        assert!(
            is_start("Mon Jan 15 03:20:00 2024") && is_start("2024-01-15T03:12:45.123456+00:00")
        );
        assert!(!is_start("Thread 1 advanced to log sequence 4711"));
    }
}
