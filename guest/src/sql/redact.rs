//! The mapping config's `sql-literals` redaction: every literal of a record's statement
//! replaced by `?`, in its fields and in its content, and nothing else changed.
//!
//! It fails closed. A statement it cannot read with certainty (a quoted name or comment the
//! text ends inside of, where a literal may hide; a control character, as binary garbage
//! has) is withheld whole, and content in which the statement cannot be found is withheld
//! too; the record says so in `redaction`.

use thiserror::Error;

use super::Dialect;
use super::keywords::keyword;
use super::lexer::{Kind, Lexer};
use crate::record::{FieldValue, Record};

/// What a withheld value is replaced by.
pub const WITHHELD: &str = "[withheld by sql-literals]";

/// Why a statement could not be redacted with certainty.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Unreadable {
    #[error("a quoted name is not closed (byte {0})")]
    UnclosedName(usize),
    #[error("a comment is not closed (byte {0})")]
    UnclosedComment(usize),
    #[error("a control character (byte {0})")]
    Control(usize),
}

/// `sql` with every string, number, hex/bit and boolean literal as `?`, and every comment's
/// text too (a comment can hold anything: `/* ? */`, `-- ?`). Names, parameters, optimizer
/// hints and `NULL` stay as they were.
pub fn literals(sql: &str, dialect: Dialect) -> Result<String, Unreadable> {
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for t in Lexer::new(sql, dialect) {
        let start = at;
        at += t.text.len();
        // A comment may hold anything, literals included: only its markers are kept.
        if t.kind == Kind::Comment && !t.unterminated {
            out.push_str(match t.text.as_bytes()[0] {
                b'/' => "/* ? */",
                b'#' => "# ?",
                _ => "-- ?",
            });
            continue;
        }
        let literal = match t.kind {
            Kind::String | Kind::Number | Kind::Binary => true,
            Kind::Word => matches!(keyword(t.text), Some(("TRUE" | "FALSE", _))),
            Kind::QuotedIdent if t.unterminated => return Err(Unreadable::UnclosedName(start)),
            Kind::Comment | Kind::Hint if t.unterminated => {
                return Err(Unreadable::UnclosedComment(start));
            }
            Kind::Other if t.text.chars().any(|c| c.is_control() || c == '\u{fffd}') => {
                return Err(Unreadable::Control(start));
            }
            _ => false,
        };
        out.push_str(if literal { "?" } else { t.text });
    }
    Ok(out)
}

/// Fields whose text is SQL (or SQL's values) in the records of the built-in formats.
const SQL_FIELDS: [&str; 3] = ["statement", "plan", "action"];

/// Redacts a record's statement fields and, where they appear in it, its content. The dialect
/// is the record's engine's (MySQL's when it has none: it reads both quote kinds as strings).
pub fn record(r: &mut Record) {
    let dialect = r
        .tag("engine")
        .and_then(Dialect::of_engine)
        .unwrap_or(Dialect::MySql);
    let mut problem: Option<String> = None;
    let mut content_found = true;
    for key in SQL_FIELDS {
        let Some(FieldValue::Text(value)) = r.field(key).cloned() else {
            continue;
        };
        let redacted = match literals(&value, dialect) {
            Ok(t) => t,
            Err(e) => {
                problem.get_or_insert_with(|| format!("{key} withheld: {e}"));
                WITHHELD.to_owned()
            }
        };
        if redacted == value {
            continue;
        }
        match replace_in(&r.content, &value, &redacted) {
            Some(content) => r.content = content,
            None => content_found = false,
        }
        r.set_field(key, FieldValue::Text(redacted));
    }
    // pgaudit's bound parameters are values only.
    if let Some(FieldValue::Text(p)) = r.field("parameter").cloned()
        && !matches!(p.as_str(), "<not logged>" | "<none>")
    {
        // The last field of the line: only its last occurrence is it.
        match r.content.rfind(p.as_str()) {
            Some(at) => r.content.replace_range(at..at + p.len(), "?"),
            None => content_found = false,
        }
        r.set_field("parameter", FieldValue::Text("?".to_owned()));
    }
    if !content_found {
        r.content = format!("{WITHHELD}: the statement could not be found in the content");
        problem.get_or_insert_with(|| "content withheld: statement not found in it".to_owned());
    }
    if let Some(p) = problem {
        r.set_field("redaction", FieldValue::Text(p));
    }
}

/// `content` with every occurrence of `from` as `to`, as written or as the log writes quotes
/// inside a quoted field (`\'` in the MySQL audit log, `""` in pgaudit's CSV); `None` if it
/// is not there at all.
fn replace_in(content: &str, from: &str, to: &str) -> Option<String> {
    if content.contains(from) {
        return Some(content.replace(from, to));
    }
    for (quote, escaped) in [("'", "\\'"), ("\"", "\"\"")] {
        let f = from.replace(quote, escaped);
        if f != from && content.contains(&f) {
            return Some(content.replace(&f, &to.replace(quote, escaped)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_literal_goes_and_nothing_else() {
        assert_eq!(
            literals(
                r"SELECT /* c */ a, 'x''y', 3.5e2, 0x1F, X'AB', TRUE FROM `t` WHERE b = 'it\'s' AND c IS NULL AND d = ?",
                Dialect::MySql
            )
            .unwrap(),
            "SELECT /* ? */ a, ?, ?, ?, ?, ? FROM `t` WHERE b = ? AND c IS NULL AND d = ?"
        );
        assert_eq!(
            literals(
                "SELECT $q$secret$q$, E'a\\'b', $1 FROM \"T\"",
                Dialect::Postgres
            )
            .unwrap(),
            "SELECT ?, ?, $1 FROM \"T\""
        );
        assert_eq!(
            literals("SELECT q'[it's]', :id FROM dual", Dialect::Oracle).unwrap(),
            "SELECT ?, :id FROM dual"
        );
        assert_eq!(
            literals("SELECT N'Zoë', @p1 FROM [t]", Dialect::SqlServer).unwrap(),
            "SELECT ?, @p1 FROM [t]"
        );
        assert_eq!(
            literals(
                "CREATE USER 'bob'@'10.0.0.%' IDENTIFIED BY 'pw'",
                Dialect::MySql
            )
            .unwrap(),
            "CREATE USER ?? IDENTIFIED BY ?"
        );
        // A truncated literal runs to the end, and all of it goes.
        assert_eq!(literals("SELECT 'abc", Dialect::MySql).unwrap(), "SELECT ?");
    }

    #[test]
    fn fails_closed() {
        assert_eq!(
            literals("SELECT \"abc", Dialect::Postgres),
            Err(Unreadable::UnclosedName(7))
        );
        assert_eq!(
            literals("SELECT 1 /* 'x", Dialect::MySql),
            Err(Unreadable::UnclosedComment(9))
        );
        assert_eq!(
            literals("SELECT \u{1}\u{2}", Dialect::MySql),
            Err(Unreadable::Control(7))
        );
    }

    fn rec(content: &str, fields: &[(&'static str, &str)]) -> Record {
        let mut r = Record::new("#RDS_LOG", 1, content.to_owned());
        r.set_tag("engine", "postgresql");
        for (k, v) in fields {
            r.set_field(*k, FieldValue::Text(v.to_string()));
        }
        r
    }

    #[test]
    fn content_as_written_and_as_escaped() {
        let mut r = rec(
            "LOG:  statement: SELECT * FROM t WHERE a = 'bob'",
            &[("statement", "SELECT * FROM t WHERE a = 'bob'")],
        );
        record(&mut r);
        assert_eq!(r.content, "LOG:  statement: SELECT * FROM t WHERE a = ?");
        assert_eq!(
            r.field("statement"),
            Some(&FieldValue::Text("SELECT * FROM t WHERE a = ?".into()))
        );
        let mut r = rec(
            r#"AUDIT: SESSION,1,1,READ,SELECT,,,"SELECT ""x"" FROM t WHERE a = 'bob'",42"#,
            &[
                ("statement", r#"SELECT "x" FROM t WHERE a = 'bob'"#),
                ("parameter", "42"),
            ],
        );
        record(&mut r);
        assert_eq!(
            r.content,
            r#"AUDIT: SESSION,1,1,READ,SELECT,,,"SELECT ""x"" FROM t WHERE a = ?",?"#
        );
        assert_eq!(r.field("redaction"), None);
    }

    #[test]
    fn content_without_the_statement_is_withheld() {
        let mut r = rec(
            "mangled: SELECT 'bob",
            &[("statement", "SELECT 'bob' FROM t")],
        );
        record(&mut r);
        assert!(r.content.starts_with(WITHHELD), "{}", r.content);
        assert!(!r.content.contains("bob"));
        assert_eq!(
            r.field("redaction"),
            Some(&FieldValue::Text(
                "content withheld: statement not found in it".into()
            ))
        );
        let mut r = rec("statement: SELECT \"bob", &[("statement", "SELECT \"bob")]);
        record(&mut r);
        assert_eq!(
            r.field("statement"),
            Some(&FieldValue::Text(WITHHELD.into()))
        );
        assert!(!r.content.contains("bob"), "{}", r.content);
        assert_eq!(
            r.field("redaction"),
            Some(&FieldValue::Text(
                "statement withheld: a quoted name is not closed (byte 7)".into()
            ))
        );
    }
}
