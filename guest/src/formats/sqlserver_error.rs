//! SQL Server error log: `YYYY-MM-DD HH:MM:SS.ff <source padded to 12> <message>` (2 fractional
//! digits natively, 3 in RDS's CloudWatch events), TAB-indented continuation lines, and
//! `Error: N, Severity: S, State: T.` lines followed by their text line.
//!
//! The timestamp is the server's local time; RDS for SQL Server runs in UTC unless the instance
//! was created with another time zone.

use super::scan::{Scan, starts_with_date_time};
use super::{Entry, Parsed};
use crate::level::Level;
use crate::record::FieldValue;

pub fn is_start(line: &str) -> bool {
    let b = line.as_bytes();
    if !starts_with_date_time(line, b' ') || b.get(19) != Some(&b'.') {
        return false;
    }
    let n = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
    (2..=3).contains(&n) && b.get(20 + n) == Some(&b' ')
}

pub fn parse(entry: &str) -> Parsed<'_> {
    let (mut p, mut s) = match Parsed::timed(
        "sqlserver",
        entry,
        "the entry does not start with a SQL Server timestamp",
    ) {
        Ok(started) => started,
        Err(unparsed) => return unparsed,
    };
    s.spaces();
    let source = s.word();
    if source.is_empty() {
        return Parsed::unparsed(p.engine, "no source after the timestamp", entry);
    }
    p.text("source", source);
    if let Some(spid) = source.strip_prefix("spid") {
        let n = spid.trim_end_matches('s');
        if let Ok(n) = n.parse::<i64>() {
            p.int("spid", n);
        }
    }
    s.spaces();
    let msg = s.rest;
    let mut m = Scan::new(msg);
    if m.eat("Error: ") {
        let code = m.number();
        m.eat(", Severity: ");
        let severity = m.number();
        m.eat(", State: ");
        let state = m.number();
        if let (Some(code), Some(severity), Some(state)) = (code, severity, state) {
            p.int("error_code", code);
            p.int("severity", severity);
            p.int("state", state);
            p.level = severity_level(severity);
            return p;
        }
    }
    if let Some(rest) = msg.strip_prefix("Login failed for user '") {
        if let Some((user, _)) = rest.split_once('\'') {
            p.text("user", user);
        }
        p.level = Level::Warning;
    }
    if let Some(rest) = msg.split("[CLIENT: ").nth(1)
        && let Some((ip, _)) = rest.split_once(']')
    {
        p.text("client_ip", ip);
    }
    p
}

/// Severity 11–16 are user errors, 17 and up resource or fatal errors, 10 and below information.
fn severity_level(severity: i64) -> Level {
    match severity {
        s if s >= 17 => Level::Critical,
        11..=16 => Level::Error,
        _ => Level::Info,
    }
}

/// The text line after `Error: N, Severity: S, State: T.` (same time and source) belongs to it:
/// it gets the error's code and severity, and the more severe of the two levels.
pub fn attach_error_pairs(entries: &mut [Entry<'_>]) {
    for i in 1..entries.len() {
        let (before, after) = entries.split_at_mut(i);
        let (prev, cur) = (&before[i - 1].parsed, &mut after[0].parsed);
        if prev.field("error_code").is_none()
            || cur.field("error_code").is_some()
            || cur.unparsed.is_some()
        {
            continue;
        }
        if prev.time_ms != cur.time_ms || prev.field("source") != cur.field("source") {
            continue;
        }
        for key in ["error_code", "severity", "state"] {
            if let Some(FieldValue::Integer(v)) = prev.field(key) {
                cur.int(key, *v);
            }
        }
        cur.level = cur.level.max(prev.level);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;
    use crate::record::FieldValue::{Integer, Text};

    #[test]
    fn rds_login_failure_with_three_digit_fraction() {
        let p = parse(
            "2024-05-23 06:09:53.813 Logon       Login failed for user 'john'. Reason: Password did not match that for the login provided. [CLIENT: 213.252.232.134]",
        );
        assert_eq!(
            (p.unparsed, p.time_ms, p.precise, p.level),
            (None, Some(1_716_444_593_813), true, Level::Warning)
        );
        assert_eq!(
            fields(&p),
            vec![
                ("source", Text("Logon".into())),
                ("user", Text("john".into())),
                ("client_ip", Text("213.252.232.134".into()))
            ]
        );
    }

    #[test]
    fn error_pairs_and_spids() {
        let entries = super::super::parse_message(
            "error",
            "2022-07-08 05:51:34.07 Logon       Error: 18456, Severity: 14, State: 8.\n2022-07-08 05:51:34.07 Logon       Login failed for user 'sa'. Reason: Password did not match that for the login provided. [CLIENT: 172.20.0.1]",
        );
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].parsed.field("error_code"), Some(&Integer(18456)));
        assert_eq!(entries[0].parsed.level, Level::Error);
        assert_eq!(entries[1].parsed.field("error_code"), Some(&Integer(18456)));
        assert_eq!(entries[1].parsed.field("state"), Some(&Integer(8)));
        assert_eq!(entries[1].parsed.level, Level::Error);
        let p = parse("2022-07-08 05:42:11.01 spid9s      Starting up database 'master'.");
        assert_eq!(p.field("spid"), Some(&Integer(9)));
        let p = parse(
            "2022-07-08 05:42:10.35 Server      Microsoft SQL Server 2019\n\tMay 29 2022 15:55:47 \n\tCopyright (C) 2019 Microsoft Corporation",
        );
        assert_eq!(fields(&p), vec![("source", Text("Server".into()))]);
        assert!(!is_start("\tMay 29 2022 15:55:47") && !is_start("2024-05-23 06:09:53 Logon x"));
    }
}
