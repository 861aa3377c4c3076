//! The MariaDB Audit Plugin CSV, used by RDS for MySQL and RDS for MariaDB, and Aurora MySQL's
//! Advanced Auditing (same fields, a 16-digit microsecond timestamp):
//! `timestamp,serverhost,username,host,connectionid,queryid,operation,database,object,retcode[,connection_type]`.
//!
//! `object` is single-quoted SQL for QUERY events, with `'` escaped as `\'`, and may hold
//! commas and newlines, so fields are read with a quote-aware scanner, never split on `,`.

use std::borrow::Cow;

use super::Parsed;
use crate::level::Level;
use crate::time::digits;

/// `YYYYMMDD HH:MM:SS,` (RDS) or sixteen digits and a comma (Aurora).
pub fn is_start(line: &str) -> bool {
    let b = line.as_bytes();
    let rds = b.len() > 18
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b' '
        && b[11] == b':'
        && b[14] == b':'
        && b[17] == b',';
    let aurora = b.len() > 17 && b[..16].iter().all(u8::is_ascii_digit) && b[16] == b',';
    rds || aurora
}

/// Splits CSV honouring `'…'` quoting with `\` escapes; quoted fields come back unescaped.
/// A quote opens only at the start of a field; what follows its closing quote up to the next
/// comma belongs to the field. Fields borrow from the entry unless they had an escape (this
/// runs for every audit record, and copying each field twice was most of its cost).
fn fields(entry: &str) -> Option<Vec<Cow<'_, str>>> {
    let b = entry.as_bytes();
    let next_comma = |from: usize| memchr::memchr(b',', &b[from..]).map_or(b.len(), |k| from + k);
    let mut out = Vec::with_capacity(12);
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'\'') {
            i += 1;
            let (open, mut piece) = (i, i);
            let mut unescaped: Option<String> = None;
            loop {
                match b.get(i)? {
                    b'\\' => {
                        let o = unescaped.get_or_insert_with(String::new);
                        o.push_str(&entry[piece..i]);
                        let c = entry[i + 1..].chars().next()?;
                        o.push(c);
                        i += 1 + c.len_utf8();
                        piece = i;
                    }
                    b'\'' => break,
                    _ => i += 1,
                }
            }
            let quoted = match unescaped {
                Some(mut o) => {
                    o.push_str(&entry[piece..i]);
                    Cow::Owned(o)
                }
                None => Cow::Borrowed(&entry[open..i]),
            };
            let end = next_comma(i + 1);
            out.push(if end == i + 1 {
                quoted
            } else {
                Cow::Owned(quoted.into_owned() + &entry[i + 1..end])
            });
            i = end;
        } else {
            let end = next_comma(i);
            out.push(Cow::Borrowed(&entry[i..end]));
            i = end;
        }
        if i >= b.len() {
            return Some(out);
        }
        i += 1; // the comma
    }
}

pub fn parse(entry: &str) -> Parsed<'_> {
    let line = entry.trim_end_matches(['\r', '\n']);
    let Some(f) = fields(line) else {
        return Parsed::unparsed(Some("mysql"), "unterminated quoted field", entry);
    };
    if f.len() < 10 || f.len() > 12 {
        return Parsed::unparsed(Some("mysql"), "an audit record has 10 or 11 fields", entry);
    }
    let b = f[0].as_bytes();
    let mut p;
    if b.len() == 16 && b.iter().all(u8::is_ascii_digit) {
        p = Parsed::new(Some("aurora-mysql"));
        let us: i64 = f[0].parse().unwrap_or(0);
        p.time(us / 1000, true);
    } else {
        p = Parsed::new(Some("mysql"));
        let ms = (|| {
            crate::time::epoch_ms(
                digits(b, 0, 4)? as i64,
                digits(b, 4, 2)?,
                digits(b, 6, 2)?,
                digits(b, 9, 2)?,
                digits(b, 12, 2)?,
                digits(b, 15, 2)?,
                0,
            )
        })();
        match ms {
            Some(ms) => p.time(ms, false),
            None => return Parsed::unparsed(Some("mysql"), "invalid audit timestamp", entry),
        }
    }
    let (Ok(connection_id), Ok(query_id)) = (f[4].parse::<i64>(), f[5].parse::<i64>()) else {
        return Parsed::unparsed(p.engine, "connectionid and queryid must be numbers", entry);
    };
    // Up to ten fields here and the record's own two: one allocation.
    p.fields.reserve(12);
    p.text("server_host", f[1].clone());
    p.text("user", f[2].clone());
    p.text("client_host", f[3].clone());
    p.int("connection_id", connection_id);
    p.int("query_id", query_id);
    p.text("operation", f[6].clone());
    let operation = f[6].as_ref();
    if !f[7].is_empty() {
        p.text("database", f[7].clone());
    }
    if !f[8].is_empty() {
        p.text(
            if operation == "QUERY" {
                "statement"
            } else {
                "object"
            },
            f[8].clone(),
        );
    }
    let retcode = f[9].trim().parse::<i64>().ok();
    if let Some(rc) = retcode {
        p.int("retcode", rc);
    }
    if let Some(ct) = f.get(10).filter(|c| !c.is_empty()) {
        p.text("connection_type", ct.clone());
    }
    // A failed login, or a statement the server refused, is worth a look.
    if operation == "FAILED_CONNECT" || retcode.is_some_and(|rc| rc != 0) {
        p.level = Level::Warning;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields as named;
    use super::*;
    use crate::record::FieldValue::{Integer, Text};

    /// The character-by-character splitter `fields` replaced: they must agree.
    fn reference_fields(entry: &str) -> Option<Vec<String>> {
        let mut out = Vec::with_capacity(11);
        let mut field = String::new();
        let mut chars = entry.chars();
        let mut quoted = false;
        let mut was_quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' if quoted => field.push(chars.next()?),
                '\'' if quoted => quoted = false,
                '\'' if field.is_empty() && !was_quoted => {
                    quoted = true;
                    was_quoted = true;
                }
                ',' if !quoted => {
                    out.push(std::mem::take(&mut field));
                    was_quoted = false;
                }
                c => field.push(c),
            }
        }
        if quoted {
            return None;
        }
        out.push(field);
        Some(out)
    }

    #[test]
    fn the_splitter_agrees_with_a_character_by_character_one() {
        let parts = [
            "",
            "a",
            "'q'",
            "'a,b'",
            r"'it\'s'",
            "'x'y",
            "''",
            "'''",
            r"\",
            r"'\",
            "'한,국'",
            "b'c",
            r"'e\\'",
            r"'\한'",
        ];
        let owned = |v: Option<Vec<Cow<'_, str>>>| {
            v.map(|v| v.into_iter().map(Cow::into_owned).collect::<Vec<_>>())
        };
        for a in parts {
            for b in parts {
                for c in parts {
                    for line in [format!("{a},{b},{c}"), format!("{a}{b}{c}")] {
                        assert_eq!(owned(fields(&line)), reference_fields(&line), "{line:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn rds_query_with_escaped_quotes_and_empty_connection_type() {
        let p = parse(
            "20230501 10:02:19,ip-10-1-0-50,rdsadmin,localhost,7,585281,QUERY,,'select * from t where (type <> \\'BACKGROUND\\' or name = \\'a,b\\')',0,,",
        );
        assert_eq!(
            (p.unparsed, p.time_ms, p.engine),
            (None, Some(1_682_935_339_000), Some("mysql"))
        );
        assert_eq!(
            named(&p),
            vec![
                ("server_host", Text("ip-10-1-0-50".into())),
                ("user", Text("rdsadmin".into())),
                ("client_host", Text("localhost".into())),
                ("connection_id", Integer(7)),
                ("query_id", Integer(585281)),
                ("operation", Text("QUERY".into())),
                (
                    "statement",
                    Text("select * from t where (type <> 'BACKGROUND' or name = 'a,b')".into())
                ),
                ("retcode", Integer(0)),
            ]
        );
    }

    #[test]
    fn aurora_table_event_with_empty_retcode() {
        let p = parse(
            "1645164734679365,myaudb-instance-1,rdsadmin,localhost,6,1028,READ,performance_schema,rds_events_threads_waits_current,",
        );
        assert_eq!(
            (p.time_ms, p.precise, p.engine),
            (Some(1_645_164_734_679), true, Some("aurora-mysql"))
        );
        assert_eq!(
            p.field("object"),
            Some(&Text("rds_events_threads_waits_current".into()))
        );
        assert_eq!(p.field("retcode"), None);
    }

    #[test]
    fn connect_with_socket_and_failed_connect() {
        let p =
            parse("20221201 14:07:05,ip-10-22-1-51,rdsadmin,localhost,821,0,CONNECT,,,0,SOCKET");
        assert_eq!(p.field("connection_type"), Some(&Text("SOCKET".into())));
        assert_eq!(p.level, Level::Info);
        let p =
            parse("20240115 03:00:02,ip-10-0-1-23,appuser,10.0.2.15,345,0,FAILED_CONNECT,,,1045");
        assert_eq!(
            (p.level, p.field("retcode")),
            (Level::Warning, Some(&Integer(1045)))
        );
    }

    #[test]
    fn multi_line_sql_and_malformed_lines() {
        let p = parse("20221201 14:07:05,h,u,localhost,1,2,QUERY,db,'SELECT a,\nb FROM t',0");
        assert_eq!(
            p.field("statement"),
            Some(&Text("SELECT a,\nb FROM t".into()))
        );
        assert_eq!(
            parse("20221201 14:07:05,h,u,'unterminated").unparsed,
            Some("unterminated quoted field")
        );
        assert_eq!(
            parse("20221201 14:07:05,too,few").unparsed,
            Some("an audit record has 10 or 11 fields")
        );
        assert!(
            is_start("1645164733006686,x")
                && is_start("20221201 14:07:05,x")
                && !is_start("b FROM t',0")
        );
    }
}
