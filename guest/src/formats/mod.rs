//! Engine log parsing: one CloudWatch message → one or more entries → typed fields.
//!
//! RDS puts one log entry in one CloudWatch event, but the grouping is heuristic: a message may
//! hold several entries glued together, or start in the middle of one. So every format
//! supplies an entry-start test, a message is split at the lines that pass it (the first slice
//! begins at the message start, whatever it is), and each slice is parsed on its own. Slices
//! are contiguous: the content of every entry is kept whole and nothing is lost between them.
//!
//! # Layout
//! One module per format; each exports `is_start(line)` and `parse(entry) -> Parsed`.
//! - [`mysql_error`], [`mysql_slow`], [`mysql_general`], [`mysql_audit`] (MySQL, MariaDB, Aurora MySQL)
//! - [`postgres`] (RDS and Aurora PostgreSQL, incl. duration, auto_explain and pgaudit lines)
//! - [`oracle_alert`], [`oracle_listener`], [`oracle_audit`]
//! - [`sqlserver_error`], [`sqlserver_agent`]
//! - [`rds_proxy`] (RDS Proxy, `/aws/rds/proxy/<name>`)
//! - [`db2`] (RDS for Db2: `diag.log`, `notify.log`)
//! - [`scan`]: the small cursor the parsers share.

pub mod db2;
pub mod mysql_audit;
pub mod mysql_error;
pub mod mysql_general;
pub mod mysql_slow;
pub mod oracle_alert;
pub mod oracle_audit;
pub mod oracle_listener;
pub mod postgres;
pub mod rds_proxy;
pub mod scan;
pub mod sqlserver_agent;
pub mod sqlserver_error;

use std::borrow::Cow;

use crate::level::Level;
use crate::record::FieldValue;

/// Why an entry has no fields beyond its content.
pub type Reason = &'static str;

/// A parsed field's value: text borrowed from the entry where it is a slice of it.
pub type Value<'e> = FieldValue<Cow<'e, str>>;

/// The result of parsing one entry. Its text fields borrow from the entry where they are
/// slices of it (an unescaped or rebuilt value is owned), so a parse allocates little more
/// than its list of fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<'e> {
    /// The entry's own time, epoch ms, when its text has one.
    pub time_ms: Option<i64>,
    /// Whether that time has a fraction of a second (more precise than CloudWatch's, which
    /// RDS fills from the same text truncated to whole seconds for most engines).
    pub precise: bool,
    pub level: Level,
    /// `mysql`, `mariadb`, `aurora-mysql`, `postgresql`, `oracle`, `sqlserver`, when known.
    pub engine: Option<&'static str>,
    /// Keys are mostly fixed names; some formats carry open-ended ones (`log_slow_extra`).
    pub fields: Vec<(Cow<'static, str>, Value<'e>)>,
    /// `None` when parsed; the reason when the entry matched no known shape.
    pub unparsed: Option<Reason>,
}

impl<'e> Parsed<'e> {
    pub fn new(engine: Option<&'static str>) -> Parsed<'e> {
        Parsed {
            time_ms: None,
            precise: false,
            level: Level::Info,
            engine,
            // Room for a typical entry's fields and the two the record adds, so the vector is
            // allocated once (this runs for every entry).
            fields: Vec::with_capacity(8),
            unparsed: None,
        }
    }

    /// An entry no parser understood: forwarded whole, with the reason.
    pub fn unparsed(engine: Option<&'static str>, reason: Reason, text: &str) -> Parsed<'e> {
        Parsed {
            level: guess_level(text),
            unparsed: Some(reason),
            ..Parsed::new(engine)
        }
    }

    /// The common start of a parse: the entry must open with `YYYY-MM-DD?HH:MM:SS[.frac]`.
    /// Gives the parse with its time set and a cursor after the timestamp, or the unparsed
    /// entry with `reason`.
    pub fn timed(
        engine: &'static str,
        entry: &'e str,
        reason: Reason,
    ) -> Result<(Parsed<'e>, scan::Scan<'e>), Parsed<'e>> {
        let mut s = scan::Scan::new(entry);
        match s.date_time() {
            Some((ms, precise)) => {
                let mut p = Parsed::new(Some(engine));
                p.time(ms, precise);
                Ok((p, s))
            }
            None => Err(Parsed::unparsed(Some(engine), reason, entry)),
        }
    }

    /// A text field: a slice of the entry, or an owned string made from it.
    pub fn text(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Cow<'e, str>>) {
        self.fields
            .push((key.into(), FieldValue::Text(value.into())));
    }

    pub fn int(&mut self, key: impl Into<Cow<'static, str>>, value: i64) {
        self.fields.push((key.into(), FieldValue::Integer(value)));
    }

    pub fn float(&mut self, key: impl Into<Cow<'static, str>>, value: f64) {
        self.fields.push((key.into(), FieldValue::Float(value)));
    }

    /// Adds an integer, a float, or a text field, whichever `value` is.
    pub fn number_or_text(
        &mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'e, str>>,
    ) {
        let value = value.into();
        if let Ok(n) = value.parse::<i64>() {
            self.int(key, n)
        } else if let Ok(f) = value.parse::<f64>()
            && f.is_finite()
        {
            self.float(key, f)
        } else {
            self.text(key, value)
        }
    }

    pub fn field(&self, key: &str) -> Option<&Value<'e>> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn time(&mut self, ms: i64, precise: bool) {
        self.time_ms = Some(ms);
        self.precise = precise;
    }
}

/// The level of text no parser understood, from unmistakable severity words only.
pub fn guess_level(text: &str) -> Level {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    if scan::contains(head, "FATAL") || scan::contains(head, "PANIC") {
        Level::Critical
    } else if scan::contains(head, "[ERROR]")
        || scan::contains(head, "ERROR:")
        || scan::contains(head, "ORA-")
    {
        Level::Error
    } else if scan::contains(head, "[Warning]") || scan::contains(head, "WARNING:") {
        Level::Warning
    } else {
        Level::Info
    }
}

/// The formats a log type may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    MysqlError,
    MysqlSlow,
    MysqlGeneral,
    MysqlAudit,
    Postgres,
    OracleAlert,
    OracleListener,
    OracleAudit,
    SqlServerError,
    SqlServerAgent,
    RdsProxy,
    Db2Diag,
    Db2Notify,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::MysqlError => "mysql-error",
            Format::MysqlSlow => "mysql-slowquery",
            Format::MysqlGeneral => "mysql-general",
            Format::MysqlAudit => "mysql-audit",
            Format::Postgres => "postgresql",
            Format::OracleAlert => "oracle-alert",
            Format::OracleListener => "oracle-listener",
            Format::OracleAudit => "oracle-audit",
            Format::SqlServerError => "sqlserver-error",
            Format::SqlServerAgent => "sqlserver-agent",
            Format::RdsProxy => "rds-proxy",
            Format::Db2Diag => "db2-diag",
            Format::Db2Notify => "db2-notify",
        }
    }

    /// Whether `line` begins a new entry; `prev` is the line before it.
    fn is_start(self, prev: &str, line: &str) -> bool {
        match self {
            Format::MysqlError => mysql_error::is_start(line),
            Format::MysqlSlow => mysql_slow::is_start(prev, line),
            Format::MysqlGeneral => mysql_general::is_start(prev, line),
            Format::MysqlAudit => mysql_audit::is_start(line),
            Format::Postgres => postgres::is_start(line),
            Format::OracleAlert => oracle_alert::is_start(line),
            Format::OracleListener => oracle_listener::is_start(prev, line),
            Format::OracleAudit => oracle_audit::is_start(line),
            Format::SqlServerError => sqlserver_error::is_start(line),
            Format::SqlServerAgent => sqlserver_agent::is_start(line),
            Format::RdsProxy => rds_proxy::is_start(line),
            Format::Db2Diag | Format::Db2Notify => db2::is_start(line),
        }
    }

    fn parse(self, entry: &str) -> Parsed<'_> {
        match self {
            Format::MysqlError => mysql_error::parse(entry),
            Format::MysqlSlow => mysql_slow::parse(entry),
            Format::MysqlGeneral => mysql_general::parse(entry),
            Format::MysqlAudit => mysql_audit::parse(entry),
            Format::Postgres => postgres::parse(entry),
            Format::OracleAlert => oracle_alert::parse(entry),
            Format::OracleListener => oracle_listener::parse(entry),
            Format::OracleAudit => oracle_audit::parse(entry),
            Format::SqlServerError => sqlserver_error::parse(entry),
            Format::SqlServerAgent => sqlserver_agent::parse(entry),
            Format::RdsProxy => rds_proxy::parse(entry),
            Format::Db2Diag => db2::parse_diag(entry),
            Format::Db2Notify => db2::parse_notify(entry),
        }
    }
}

/// The format of a message of the given log type. `error` and `audit` are shared by several
/// engines, so their first line decides.
pub fn format_for(log_type: &str, message: &str) -> Option<Format> {
    let first = scan::lines(message)
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Some(match log_type {
        "error" if sqlserver_error::is_start(first) => Format::SqlServerError,
        "error" => Format::MysqlError,
        "slowquery" => Format::MysqlSlow,
        "general" => Format::MysqlGeneral,
        // A MySQL audit record starts with digits, which neither Oracle shape does: the cheap
        // test first, as it is most messages (the Oracle tests split the whole line).
        "audit" if mysql_audit::is_start(first) => Format::MysqlAudit,
        "audit" if oracle_audit::is_start(first) || oracle_audit::is_field_line(first) => {
            Format::OracleAudit
        }
        "audit" => Format::MysqlAudit,
        "postgresql" | "upgrade" => Format::Postgres,
        "alert" => Format::OracleAlert,
        "listener" => Format::OracleListener,
        "agent" => Format::SqlServerAgent,
        "proxy" => Format::RdsProxy,
        // The log type keeps its dot: the group is `/aws/rds/instance/<id>/diag.log`.
        "diag.log" => Format::Db2Diag,
        "notify.log" => Format::Db2Notify,
        _ => return None,
    })
}

/// One entry of a message: its text (a slice of the message) and what was parsed from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<'m> {
    pub text: &'m str,
    pub parsed: Parsed<'m>,
}

/// Splits a message into entries and parses each one. `log_type` chooses the format; a log
/// type without a parser gives one unparsed entry holding the whole message.
pub fn parse_message<'m>(log_type: &str, message: &'m str) -> Vec<Entry<'m>> {
    parse_entries(log_type, message).1
}

/// [`parse_message`], and the format it chose.
pub fn parse_entries<'m>(log_type: &str, message: &'m str) -> (Option<Format>, Vec<Entry<'m>>) {
    let Some(format) = format_for(log_type, message) else {
        return (
            None,
            vec![Entry {
                text: message,
                parsed: Parsed::unparsed(None, "no parser for this log type", message),
            }],
        );
    };
    let mut entries: Vec<Entry<'m>> = split(message, |prev, line| format.is_start(prev, line))
        .map(|text| Entry {
            text,
            parsed: format.parse(text),
        })
        .collect();
    match format {
        Format::Postgres => postgres::inherit_secondary_levels(&mut entries),
        Format::SqlServerError => sqlserver_error::attach_error_pairs(&mut entries),
        _ => {}
    }
    (Some(format), entries)
}

/// Cuts `message` before every line (other than the first) for which `is_start(previous
/// line, line)` holds. The pieces are contiguous slices; the newline between two pieces is not
/// part of either. An iterator, so the entries of a message are collected once.
pub fn split<'m, F: Fn(&str, &str) -> bool>(message: &'m str, is_start: F) -> Split<'m, F> {
    Split {
        message,
        ends: memchr::memchr_iter(b'\n', message.as_bytes()),
        is_start,
        begin: 0,
        offset: 0,
        prev: "",
        done: false,
    }
}

/// The iterator of [`split`].
pub struct Split<'m, F> {
    message: &'m str,
    /// The newlines, found by `memchr` (see `scan::find`).
    ends: memchr::Memchr<'m>,
    is_start: F,
    /// Where the current piece begins, and the next line.
    begin: usize,
    offset: usize,
    /// The line before the next one, without its terminator.
    prev: &'m str,
    done: bool,
}

impl<'m, F: Fn(&str, &str) -> bool> Iterator for Split<'m, F> {
    type Item = &'m str;

    fn next(&mut self) -> Option<&'m str> {
        if self.done {
            return None;
        }
        let message = self.message;
        // `split_inclusive('\n')`: every line ends after its newline, the last at the end.
        while self.offset < message.len() {
            let end = self.ends.next().map_or(message.len(), |at| at + 1);
            let line = trim_newline(&message[self.offset..end]);
            let cut = self.offset > self.begin && (self.is_start)(self.prev, line);
            let piece = trim_newline(&message[self.begin..self.offset]);
            if cut {
                self.begin = self.offset;
            }
            self.offset = end;
            self.prev = line;
            if cut {
                return Some(piece);
            }
        }
        self.done = true;
        Some(trim_newline(&message[self.begin..]))
    }
}

/// Drops one line terminator (LF or CRLF); a lone CR is content and stays.
fn trim_newline(s: &str) -> &str {
    match s.strip_suffix('\n') {
        Some(s) => s.strip_suffix('\r').unwrap_or(s),
        None => s,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The fields with plain keys, for terse assertions.
    pub(crate) fn fields<'p>(p: &'p Parsed<'_>) -> Vec<(&'p str, FieldValue)> {
        p.fields
            .iter()
            .map(|(k, v)| (k.as_ref(), v.to_owned_value()))
            .collect()
    }

    #[test]
    fn split_keeps_everything_and_cuts_only_at_starts() {
        let msg = "tail of something\nSTART a\n  more a\nSTART b\nSTART c\n";
        let pieces: Vec<&str> = split(msg, |_, l| l.starts_with("START")).collect();
        assert_eq!(
            pieces,
            [
                "tail of something",
                "START a\n  more a",
                "START b",
                "START c"
            ]
        );
        assert_eq!(split("", |_, _| true).collect::<Vec<_>>(), [""]);
        assert_eq!(
            split("START only", |_, l| l.starts_with("START")).collect::<Vec<_>>(),
            ["START only"]
        );
        // The previous line is offered, for context-dependent starts.
        let pieces: Vec<&str> = split("A\nB\nA\nC", |prev, l| l != "B" || prev != "A").collect();
        assert_eq!(pieces, ["A\nB", "A", "C"]);
    }

    #[test]
    fn unknown_log_types_are_forwarded_unparsed() {
        let e = parse_message("trace", "some trace text\nmore");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].text, "some trace text\nmore");
        assert_eq!(e[0].parsed.unparsed, Some("no parser for this log type"));
    }
}
