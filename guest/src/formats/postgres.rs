//! RDS and Aurora PostgreSQL: the fixed prefix `%t:%r:%u@%d:[%p]:`, e.g.
//! `2022-04-01 20:17:33 UTC:140.247.116.218(51401):dvnapp@dvndb:[20768]:LOG:  duration: 1454.486 ms  statement: …`,
//! background processes with empty fields (`UTC::@:[5306]:`), the startup form before the
//! prefix is configured (`2024-03-27 01:35:26.270 GMT [394] LOG:  …`), an optional
//! CloudWatch-export timestamp in front, and unprefixed continuation lines. The message is
//! read for `duration:` (statement / execute / parse / bind / plain / auto_explain plan),
//! `statement:`, pgaudit `AUDIT:` and a verbose-mode SQLSTATE.

use super::scan::{self, Scan, starts_with_date_time};
use super::{Entry, Parsed};
use crate::level::Level;

/// Skips a `2019-08-09T18:00:00.000Z ` CloudWatch-export prefix.
fn strip_export_prefix(line: &str) -> &str {
    let b = line.as_bytes();
    if starts_with_date_time(line, b'T') && b.len() > 25 && b[23] == b'Z' && b[24] == b' ' {
        &line[25..]
    } else {
        line
    }
}

/// `YYYY-MM-DD HH:MM:SS[.fff] ZONE` followed by `:` (RDS prefix) or ` [` (startup form).
pub fn is_start(line: &str) -> bool {
    let line = strip_export_prefix(line);
    if !starts_with_date_time(line, b' ') {
        return false;
    }
    let mut s = Scan::new(&line[19..]);
    if s.eat_char('.') {
        s.number();
    }
    if !s.eat_char(' ') {
        return false;
    }
    let zone = s.rest.bytes().take_while(u8::is_ascii_uppercase).count();
    (2..=5).contains(&zone) && matches!(s.rest.as_bytes().get(zone), Some(b':') | Some(b' '))
}

fn severity_level(sev: &str) -> Option<Level> {
    Some(match sev {
        "LOG" | "INFO" | "NOTICE" => Level::Info,
        "WARNING" => Level::Warning,
        "ERROR" => Level::Error,
        "FATAL" | "PANIC" => Level::Critical,
        "DETAIL" | "HINT" | "STATEMENT" | "CONTEXT" | "QUERY" | "LOCATION" => Level::Info,
        s if s.starts_with("DEBUG") => Level::Debug,
        _ => return None,
    })
}

/// Severities that add to the entry before them rather than stand alone.
fn is_secondary(sev: &str) -> bool {
    matches!(
        sev,
        "DETAIL" | "HINT" | "STATEMENT" | "CONTEXT" | "QUERY" | "LOCATION"
    )
}

pub fn parse(entry: &str) -> Parsed<'_> {
    let body = strip_export_prefix(entry);
    let (mut p, mut s) = match Parsed::timed(
        "postgresql",
        body,
        "the entry does not start with a PostgreSQL log prefix",
    ) {
        Ok(started) => started,
        Err(unparsed) => return unparsed,
    };
    s.eat_char(' ');
    let zone = s.word_until(|c| !c.is_ascii_uppercase());
    if zone.is_empty() {
        return Parsed::unparsed(p.engine, "no time zone after the timestamp", entry);
    }
    let severity;
    if s.eat(" [") {
        // Startup form: `… GMT [394] LOG:  text`.
        let Some(pid) = s.until(']').and_then(|n| n.parse::<i64>().ok()) else {
            return Parsed::unparsed(p.engine, "malformed [pid]", entry);
        };
        p.int("pid", pid);
        s.spaces();
        severity = s.until(':');
    } else if s.eat_char(':') {
        // `%r:%u@%d:[%p]:` — find the `:[pid]:` anchor first; %r may hold colons (IPv6).
        let Some(anchor) = find_pid_anchor(s.rest) else {
            return Parsed::unparsed(p.engine, "no :[pid]: in the log prefix", entry);
        };
        let (who, after) = s.rest.split_at(anchor);
        let (remote, user_db) = who.rsplit_once(':').unwrap_or(("", who));
        remote_host(&mut p, remote);
        let (user, db) = user_db.split_once('@').unwrap_or((user_db, ""));
        if !user.is_empty() {
            p.text("user", user);
        }
        if !db.is_empty() {
            p.text("database", db);
        }
        let mut a = Scan::new(&after[2..]);
        let pid = a.number();
        a.eat("]:");
        if let Some(pid) = pid {
            p.int("pid", pid);
        }
        s = a;
        severity = s.until(':');
    } else {
        return Parsed::unparsed(
            p.engine,
            "neither the RDS prefix nor the startup form",
            entry,
        );
    }
    let Some(severity) = severity else {
        return Parsed::unparsed(p.engine, "no severity in the log prefix", entry);
    };
    let Some(level) = severity_level(severity) else {
        return Parsed::unparsed(p.engine, "unknown severity", entry);
    };
    p.text("severity", severity);
    p.level = level;
    s.spaces();
    message(&mut p, severity, s.rest);
    p
}

/// Position of `:[` followed by digits and `]:`.
fn find_pid_anchor(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = scan::find(&s[from..], ":[") {
        let at = from + i;
        let rest = &s[at + 2..];
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n > 0 && rest[n..].starts_with("]:") {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

/// `%r`: `host(port)`, `[local]`, or empty.
fn remote_host<'e>(p: &mut Parsed<'e>, remote: &'e str) {
    if remote.is_empty() {
        return;
    }
    match remote.strip_suffix(')').and_then(|r| r.rsplit_once('(')) {
        Some((host, port)) => {
            p.text("client_host", host);
            if let Ok(port) = port.parse::<i64>() {
                p.int("client_port", port);
            }
        }
        None => p.text("client_host", remote),
    }
}

fn message<'e>(p: &mut Parsed<'e>, severity: &'e str, msg: &'e str) {
    let mut s = Scan::new(msg);
    if s.eat("duration:") {
        s.spaces();
        if let Some(ms) = s.decimal() {
            p.float("duration_ms", ms);
        }
        s.spaces();
        s.eat("ms");
        s.spaces();
        if s.eat("plan:") {
            // auto_explain: `Query Text: …` then the plan, both indented.
            let plan = s.rest.trim_start_matches(['\r', '\n']);
            let mut lines = scan::lines(plan);
            if let Some(q) = lines
                .next()
                .map(str::trim)
                .and_then(|l| l.strip_prefix("Query Text:"))
            {
                p.text("statement", q.trim());
                let rest: Vec<&str> = lines.collect();
                p.text("plan", rest.join("\n"));
            } else {
                p.text("plan", plan);
            }
            return;
        }
        statement(p, s.rest);
        return;
    }
    if let Some(audit) = msg.strip_prefix("AUDIT: ") {
        pgaudit(p, audit);
        return;
    }
    if severity == "STATEMENT" || severity == "QUERY" {
        p.text("statement", without_console_marker(msg));
        return;
    }
    if statement(p, msg) {
        return;
    }
    // Verbose error verbosity puts the SQLSTATE first: `ERROR:  42P01: relation …`.
    let b = msg.as_bytes();
    if b.len() > 7
        && b[5] == b':'
        && b[..5]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        p.text("sql_state", &msg[..5]);
    }
    if let Some(rest) = msg.strip_prefix("automatic vacuum of table \"")
        && let Some((table, _)) = rest.split_once('"')
    {
        p.text("vacuum_table", table);
    }
}

/// The console's download adds `----------------------- END OF LOG ----------------------`
/// after the last entry (CloudWatch does not); it is not part of the SQL.
fn without_console_marker(sql: &str) -> &str {
    let sql = sql.trim();
    match sql.rsplit_once('\n') {
        Some((before, last)) if scan::contains(last, " END OF LOG ") && last.starts_with("---") => {
            before.trim_end()
        }
        _ => sql,
    }
}

/// `statement: SQL` or `execute|parse|bind <name>: SQL`; true when it was one.
fn statement<'e>(p: &mut Parsed<'e>, msg: &'e str) -> bool {
    let msg = msg.trim_start();
    if let Some(sql) = msg.strip_prefix("statement:") {
        p.text("statement", without_console_marker(sql));
        return true;
    }
    for step in ["execute", "parse", "bind"] {
        if let Some(rest) = msg.strip_prefix(step).and_then(|r| r.strip_prefix(' '))
            && let Some((name, sql)) = scan::split_once(rest, ": ")
            && !name.contains(' ')
        {
            p.text("protocol_step", step);
            p.text("prepared_statement", name);
            p.text("statement", sql.trim());
            return true;
        }
    }
    false
}

/// `AUDIT: SESSION,1,1,DDL,CREATE TABLE,TABLE,public.t1,CREATE TABLE t1 (id int),<not logged>`;
/// fields holding commas are double-quoted, with `""` for a quote.
fn pgaudit<'e>(p: &mut Parsed<'e>, line: &'e str) {
    let mut fields: Vec<String> = Vec::with_capacity(9);
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if field.is_empty() => quoted = true,
            ',' if !quoted && fields.len() < 8 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    const NAMES: [&str; 9] = [
        "audit_type",
        "statement_id",
        "substatement_id",
        "audit_class",
        "command",
        "object_type",
        "object_name",
        "statement",
        "parameter",
    ];
    for (name, value) in NAMES.iter().zip(fields) {
        match *name {
            "statement_id" | "substatement_id" => p.number_or_text(*name, value),
            _ if value.is_empty() => {}
            _ => p.text(*name, value),
        }
    }
}

/// DETAIL / HINT / STATEMENT / CONTEXT … lines take the level of the entry before them with
/// the same pid in the same message (an ERROR's STATEMENT is part of the error).
pub fn inherit_secondary_levels(entries: &mut [Entry<'_>]) {
    for i in 1..entries.len() {
        let sev = match entries[i].parsed.field("severity") {
            Some(crate::record::FieldValue::Text(s)) => s.clone(),
            _ => continue,
        };
        if !is_secondary(&sev) {
            continue;
        }
        let pid = entries[i].parsed.field("pid").cloned();
        if let Some(prev) = entries[..i]
            .iter()
            .rev()
            .find(|e| e.parsed.field("pid").cloned() == pid && e.parsed.unparsed.is_none())
        {
            entries[i].parsed.level = prev.parsed.level;
        }
    }
}

impl<'a> Scan<'a> {
    /// Takes characters until `stop` holds (not consumed).
    pub fn word_until(&mut self, stop: impl Fn(char) -> bool) -> &'a str {
        let n = self.rest.find(stop).unwrap_or(self.rest.len());
        let out = &self.rest[..n];
        self.rest = &self.rest[n..];
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;
    use crate::record::FieldValue::{Float, Integer, Text};

    #[test]
    fn duration_statement() {
        let p = parse(
            "2022-04-01 20:17:33 UTC:140.247.116.218(51401):dvnapp@dvndb:[20768]:LOG:  duration: 1454.486 ms  statement: SELECT COUNT(id) FROM guestbookresponse;",
        );
        assert_eq!(
            (p.unparsed, p.time_ms, p.precise, p.level),
            (None, Some(1_648_844_253_000), false, Level::Info)
        );
        assert_eq!(
            fields(&p),
            vec![
                ("client_host", Text("140.247.116.218".into())),
                ("client_port", Integer(51401)),
                ("user", Text("dvnapp".into())),
                ("database", Text("dvndb".into())),
                ("pid", Integer(20768)),
                ("severity", Text("LOG".into())),
                ("duration_ms", Float(1454.486)),
                (
                    "statement",
                    Text("SELECT COUNT(id) FROM guestbookresponse;".into())
                ),
            ]
        );
    }

    #[test]
    fn background_process_and_startup_form() {
        let p = parse(
            "2021-01-02 03:04:05 UTC::@:[5306]:LOG:  database system is ready to accept connections",
        );
        assert_eq!(
            fields(&p),
            vec![("pid", Integer(5306)), ("severity", Text("LOG".into()))]
        );
        let p = parse(
            "2024-03-27 01:35:26.270 GMT [394] LOG:  skipping missing configuration file \"/rdsdbdata/config/recovery.conf\"",
        );
        assert_eq!((p.time_ms, p.precise), (Some(1_711_503_326_270), true));
        assert_eq!(
            fields(&p),
            vec![("pid", Integer(394)), ("severity", Text("LOG".into()))]
        );
    }

    #[test]
    fn export_prefix_resolved_host_and_multi_line_statement() {
        let p = parse(
            "2019-08-08T00:49:34.000Z 2019-08-08 00:49:34 UTC:10.40.77.242(56266):xyz@xyz_db:[20474]:LOG:  duration: 5.076 ms  statement: SELECT col1, col2\n\tFROM sample1\n        ORDER BY 1",
        );
        assert_eq!(
            p.field("statement"),
            Some(&Text(
                "SELECT col1, col2\n\tFROM sample1\n        ORDER BY 1".into()
            ))
        );
        let p = parse(
            "2020-09-08 04:00:24 UTC:ec2-52-222-123-172.us-gov-west-1.compute.amazonaws.com(48501):fec_api@fec:[109708]:LOG: duration: 1.370 ms",
        );
        assert_eq!(
            p.field("client_host"),
            Some(&Text(
                "ec2-52-222-123-172.us-gov-west-1.compute.amazonaws.com".into()
            ))
        );
        assert_eq!(p.field("duration_ms"), Some(&Float(1.37)));
        assert_eq!(p.field("statement"), None);
    }

    #[test]
    fn severities_and_sqlstate() {
        let p = parse(
            "2024-01-21 17:56:55 UTC:3.92.54.14(57164):postgresql@postgresql:[43627]:FATAL:  password authentication failed for user \"postgresql\"",
        );
        assert_eq!(p.level, Level::Critical);
        let p = parse(
            "2023-11-29 09:24:09 UTC:10.0.2.55(57562):postgres@postgres:[29735]:ERROR:  42P01: relation \"x\" does not exist",
        );
        assert_eq!(
            (p.level, p.field("sql_state")),
            (Level::Error, Some(&Text("42P01".into())))
        );
        let p = parse(
            "2023-11-29 09:24:05 UTC:10.0.2.55(57562):postgres@postgres:[29735]:STATEMENT:  /h\n    LIst",
        );
        assert_eq!(p.field("statement"), Some(&Text("/h\n    LIst".into())));
        assert_eq!(
            parse("2023-11-29 09:24:05 UTC::@:[1]:WHATEVER:  x").unparsed,
            Some("unknown severity")
        );
    }

    #[test]
    fn execute_plan_and_pgaudit() {
        let p = parse(
            "2024-01-15 03:00:00 UTC:10.0.2.15(51234):app@appdb:[4242]:LOG:  duration: 0.051 ms  execute S_1: SELECT 1",
        );
        assert_eq!(p.field("protocol_step"), Some(&Text("execute".into())));
        assert_eq!(p.field("prepared_statement"), Some(&Text("S_1".into())));
        let p = parse(
            "2024-01-15 03:00:00 UTC:10.0.2.15(51234):app@appdb:[4242]:LOG:  duration: 1523.114 ms  plan:\n\tQuery Text: SELECT * FROM orders WHERE customer_id = $1\n\tSeq Scan on orders  (cost=0.00..35811.00 rows=98 width=120)\n\t  Filter: (customer_id = 42)",
        );
        assert_eq!(
            p.field("statement"),
            Some(&Text("SELECT * FROM orders WHERE customer_id = $1".into()))
        );
        assert_eq!(p.field("plan"), Some(&Text("\tSeq Scan on orders  (cost=0.00..35811.00 rows=98 width=120)\n\t  Filter: (customer_id = 42)".into())));
        let p = parse(
            "2024-01-15 03:00:05 UTC:10.0.2.15(51234):app@appdb:[4242]:LOG:  AUDIT: SESSION,1,1,DDL,CREATE TABLE,TABLE,public.t1,\"CREATE TABLE t1 (id int, \"\"x\"\" text)\",<not logged>",
        );
        assert_eq!(p.field("audit_class"), Some(&Text("DDL".into())));
        assert_eq!(p.field("statement_id"), Some(&Integer(1)));
        assert_eq!(p.field("object_name"), Some(&Text("public.t1".into())));
        assert_eq!(
            p.field("statement"),
            Some(&Text("CREATE TABLE t1 (id int, \"x\" text)".into()))
        );
        assert_eq!(p.field("parameter"), Some(&Text("<not logged>".into())));
    }

    #[test]
    fn starts_and_inheritance() {
        assert!(is_start(
            "2019-08-09T18:00:00.000Z 2019-08-09 18:00:00 UTC:10.50.72.222(33436):lmn@lmn_db:[26802]:LOG:  x"
        ));
        assert!(is_start("2024-03-27 01:35:26.270 GMT [394] LOG:  x"));
        assert!(!is_start("\tFROM sample1"));
        assert!(!is_start("! 0.017355 s user"));
        let entries = super::super::parse_message(
            "postgresql",
            "2023-11-29 09:24:05 UTC:h(1):u@d:[7]:ERROR:  syntax error\n2023-11-29 09:24:05 UTC:h(1):u@d:[7]:STATEMENT:  /h",
        );
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].parsed.level, Level::Error);
    }
}
