//! Oracle OS audit records (`.aud`): a timestamp line, then `NAME :[len] 'value'` lines.
//! No real RDS sample exists; the layout is Oracle's documented traditional one.

use std::borrow::Cow;

use super::Parsed;
use super::oracle_alert::ctime_header;
use super::scan;
use crate::level::Level;

pub fn is_start(line: &str) -> bool {
    ctime_header(line).is_some()
}

/// `ACTION :[7] 'CONNECT'` or `LENGTH : '275'`.
pub fn is_field_line(line: &str) -> bool {
    field(line).is_some()
}

fn field(line: &str) -> Option<(&str, &str)> {
    let (name, rest) = scan::split_once(line, ":")?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase() || b == b' ') {
        return None;
    }
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('[') {
        Some(r) => scan::split_once(r, "]")?.1.trim_start(),
        None => rest,
    };
    let value = rest.strip_prefix('\'')?.strip_suffix('\'')?;
    Some((name, value))
}

/// A field's key: its name lowered, spaces as `_`. The names an `.aud` record usually holds
/// are fixed keys; only another name is built (one allocation per field per record otherwise).
fn field_key(name: &str) -> Cow<'static, str> {
    const KNOWN: [(&str, &str); 7] = [
        ("PRIVILEGE", "privilege"),
        ("CLIENT TERMINAL", "client_terminal"),
        ("DBID", "dbid"),
        ("SESSIONID", "sessionid"),
        ("ENTRYID", "entryid"),
        ("USERHOST", "userhost"),
        ("TERMINAL", "terminal"),
    ];
    match KNOWN.iter().find(|(n, _)| *n == name) {
        Some((_, key)) => Cow::Borrowed(key),
        None => Cow::Owned(name.to_ascii_lowercase().replace(' ', "_")),
    }
}

pub fn parse(entry: &str) -> Parsed<'_> {
    let mut p = Parsed::new(Some("oracle"));
    let mut lines = scan::lines(entry);
    let first = lines.next().unwrap_or("");
    match ctime_header(first) {
        Some(ms) => p.time(ms, false),
        None => {
            if field(first).is_none() {
                return Parsed::unparsed(
                    p.engine,
                    "neither an audit timestamp nor an audit field",
                    entry,
                );
            }
            lines = scan::lines(entry);
        }
    }
    for line in lines {
        let Some((name, value)) = field(line) else {
            continue;
        };
        match name {
            "LENGTH" => {}
            "ACTION" => p.text("action", value),
            "DATABASE USER" => p.text("user", value),
            "CLIENT USER" => p.text("os_user", value),
            "STATUS" => p.number_or_text("retcode", value),
            other => p.number_or_text(field_key(other), value),
        }
    }
    if matches!(p.field("retcode"), Some(crate::record::FieldValue::Integer(rc)) if *rc != 0) {
        p.level = Level::Warning;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;
    use crate::record::FieldValue::{Integer, Text};

    #[test]
    fn known_field_keys_are_the_names_lowered() {
        for name in [
            "PRIVILEGE",
            "CLIENT TERMINAL",
            "DBID",
            "SESSIONID",
            "ENTRYID",
            "USERHOST",
            "TERMINAL",
            "OS$USERID",
        ] {
            assert_eq!(field_key(name), name.to_ascii_lowercase().replace(' ', "_"));
        }
    }

    #[test]
    fn aud_record() {
        let p = parse(
            "Mon Jan 15 03:30:00 2024 +00:00\nLENGTH : '275'\nACTION :[7] 'CONNECT'\nDATABASE USER:[1] '/'\nPRIVILEGE :[6] 'SYSDBA'\nCLIENT USER:[5] 'rdsdb'\nCLIENT TERMINAL:[0] ''\nSTATUS:[1] '0'\nDBID:[10] '1234567890'",
        );
        assert_eq!((p.unparsed, p.time_ms), (None, Some(1_705_289_400_000)));
        assert_eq!(
            fields(&p),
            vec![
                ("action", Text("CONNECT".into())),
                ("user", Text("/".into())),
                ("privilege", Text("SYSDBA".into())),
                ("os_user", Text("rdsdb".into())),
                ("client_terminal", Text("".into())),
                ("retcode", Integer(0)),
                ("dbid", Integer(1234567890)),
            ]
        );
        assert_eq!(p.level, Level::Info);
    }
}
