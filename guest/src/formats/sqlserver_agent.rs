//! SQL Server Agent log (SQLAGENT.OUT): `YYYY-MM-DD HH:MM:SS - ? [177] text`, where `?` is
//! information, `+` a warning and `!` an error.

use super::Parsed;
use super::scan::{Scan, starts_with_date_time};
use crate::level::Level;

pub fn is_start(line: &str) -> bool {
    starts_with_date_time(line, b' ') && line[19..].starts_with(" - ")
}

pub fn parse(entry: &str) -> Parsed<'_> {
    let (mut p, mut s) = match Parsed::timed(
        "sqlserver",
        entry,
        "the entry does not start with an agent-log timestamp",
    ) {
        Ok(started) => started,
        Err(unparsed) => return unparsed,
    };
    if !s.eat(" - ") {
        return Parsed::unparsed(p.engine, "no ' - ' after the timestamp", entry);
    }
    let (kind, level) = match s.rest.chars().next() {
        Some('?') => ("info", Level::Info),
        Some('+') => ("warning", Level::Warning),
        Some('!') => ("error", Level::Error),
        _ => return Parsed::unparsed(p.engine, "the message type is not ?, + or !", entry),
    };
    s.rest = &s.rest[1..];
    p.text("message_type", kind);
    p.level = level;
    s.spaces();
    if s.eat_char('[')
        && let Some(id) = s.until(']')
    {
        p.number_or_text("message_id", id);
    }
    let text = s.rest;
    if let Some(rest) = text.split("SQLServer Error: ").nth(1) {
        let mut e = Scan::new(rest);
        if let Some(code) = e.number() {
            p.int("error_code", code);
        }
    }
    if let Some(rest) = text.split("[SQLSTATE ").nth(1)
        && let Some((state, _)) = rest.split_once(']')
    {
        p.text("sql_state", state);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;
    use crate::record::FieldValue::{Integer, Text};

    #[test]
    fn agent_lines() {
        let p =
            parse("2025-09-17 14:39:53 - ? [177] Job myjob has been requested to run by User sa");
        assert_eq!(
            (p.unparsed, p.time_ms, p.level),
            (None, Some(1_758_119_993_000), Level::Info)
        );
        assert_eq!(
            fields(&p),
            vec![
                ("message_type", Text("info".into())),
                ("message_id", Integer(177))
            ]
        );
        let p = parse(
            "2024-01-15 03:05:00 - ! [298] SQLServer Error: 18456, Login failed for user 'app'. [SQLSTATE 28000]",
        );
        assert_eq!(p.level, Level::Error);
        assert_eq!(p.field("error_code"), Some(&Integer(18456)));
        assert_eq!(p.field("sql_state"), Some(&Text("28000".into())));
        assert_eq!(
            parse("2024-01-15 03:05:00 - x").unparsed,
            Some("the message type is not ?, + or !")
        );
    }
}
