//! MySQL / MariaDB / Aurora MySQL slow query log: one multi-line entry per query,
//!
//! ```text
//! # Time: 2023-05-01T09:57:34.360484Z            (MariaDB: `# Time: 230501  9:57:34`)
//! # User@Host: rdstopmgr[rdstopmgr] @ ip-10-1-0-158 [10.1.0.158]  Id:    16
//! # Query_time: 0.006554  Lock_time: 0.000000 Rows_sent: 1  Rows_examined: 1 [log_slow_extra pairs]
//! [# Thread_id: 5  Schema: db  QC_hit: No]        (MariaDB)
//! [use <db>;]
//! SET timestamp=1682935054;
//! <statement, possibly several lines>
//! ```
//!
//! and the banner RDS writes at every flush (`/rdsdbbin/…/mysqld, Version: …`), which ends an
//! entry and is an entry of its own.

use std::borrow::Cow;

use super::Parsed;
use super::scan::{self, Scan, short_date_time};

/// The first line of the banner mysqld writes when it opens a slow or general log.
pub fn is_banner(line: &str) -> bool {
    scan::contains(line, "mysqld, Version: ") && line.trim_end().ends_with("started with:")
}

/// The banner's second and third lines, when they arrive without the first.
fn is_banner_tail(prev: &str, line: &str) -> bool {
    (line.starts_with("Tcp port: ") && !is_banner(prev))
        || (line.starts_with("Time ")
            && scan::contains(line, " Id ")
            && scan::contains(line, "Command")
            && !prev.starts_with("Tcp port: "))
}

pub fn is_start(prev: &str, line: &str) -> bool {
    line.starts_with("# Time: ")
        || (line.starts_with("# User@Host: ") && !prev.starts_with("# Time: "))
        // A query's header lines come together; one after a statement line is the next query
        // (logged without a `# User@Host:` of its own).
        || (line.starts_with("# Query_time: ") && !prev.starts_with("# "))
        || is_banner(line)
        || is_banner_tail(prev, line)
}

/// Parses the banner block shared by the slow and general logs.
pub fn parse_banner(entry: &str) -> Option<Parsed<'_>> {
    let first = scan::lines(entry).next()?;
    if !is_banner(first) && !first.starts_with("Tcp port: ") && !first.starts_with("Time ") {
        return None;
    }
    let mut p = Parsed::new(Some("mysql"));
    p.text("entry_kind", "server_banner");
    if let Some((binary, rest)) = scan::split_once(first, ", Version: ") {
        if scan::contains(binary, "/oscar/") {
            p.engine = Some("aurora-mysql");
        }
        p.text("binary", binary);
        p.text("server_version", rest.split(' ').next().unwrap_or(""));
    }
    Some(p)
}

/// `user[current_user] @ host [ip]  Id: N` (host and ip may be empty, `Id:` absent on MariaDB).
fn user_host<'e>(p: &mut Parsed<'e>, line: &'e str) -> bool {
    let mut s = Scan::new(line);
    let (Some(user), Some(current)) = (s.until('['), s.until(']')) else {
        return false;
    };
    p.text("user", user.trim());
    if current != user.trim() && !current.is_empty() {
        p.text("current_user", current);
    }
    s.spaces();
    if !s.eat_char('@') {
        return false;
    }
    s.spaces();
    let Some(host) = s.until('[') else {
        return false;
    };
    let host = host.trim();
    let Some(ip) = s.until(']') else {
        return false;
    };
    if !host.is_empty() {
        p.text("client_host", host);
    }
    if !ip.is_empty() {
        p.text("client_ip", ip);
    }
    s.spaces();
    if s.eat("Id:") {
        s.spaces();
        if let Some(id) = s.number() {
            p.int("thread_id", id);
        }
    }
    true
}

/// `Key: value  Key: value …` pairs of a `# Query_time:` (or MariaDB `# Thread_id:`) line.
fn pairs<'e>(p: &mut Parsed<'e>, line: &'e str) {
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        let Some(key) = word.strip_suffix(':') else {
            continue;
        };
        // A key may have an empty value (`Schema:   QC_hit: No`).
        let value = match words.peek() {
            Some(v) if !v.ends_with(':') => words.next().unwrap_or(""),
            _ => "",
        };
        match key {
            "Query_time" | "Lock_time" => {
                if let Some(ms) = seconds_to_ms(value) {
                    let name = if key == "Query_time" {
                        "query_time_ms"
                    } else {
                        "lock_time_ms"
                    };
                    p.float(name, ms);
                }
            }
            "Schema" if !value.is_empty() => p.text("database", value),
            "Schema" => {}
            _ => p.number_or_text(Cow::Owned(key.to_ascii_lowercase()), value),
        }
    }
}

/// `2.000192` seconds → `2000.192` ms, by moving the decimal point in the text (a float
/// multiplication would give 2000.1920000000002).
pub fn seconds_to_ms(seconds: &str) -> Option<f64> {
    let (int, frac) = seconds.split_once('.').unwrap_or((seconds, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut shifted = String::with_capacity(seconds.len() + 4);
    shifted.push_str(int);
    shifted.push_str(&format!("{:0<3}", &frac[..frac.len().min(3)]));
    if frac.len() > 3 {
        shifted.push('.');
        shifted.push_str(&frac[3..]);
    }
    shifted.parse().ok()
}

pub fn parse(entry: &str) -> Parsed<'_> {
    if let Some(banner) = parse_banner(entry) {
        return banner;
    }
    let mut p = Parsed::new(Some("mysql"));
    let mut s = Scan::new(entry);
    let mut saw_header = false;
    let mut statement_start = None;
    while !s.rest.is_empty() {
        let at = entry.len() - s.rest.len();
        let line = s.line();
        if let Some(t) = line.strip_prefix("# Time: ") {
            let t = t.trim();
            if let Some(ms) = crate::time::parse_rfc3339(t) {
                p.time(ms, t.contains('.'));
            } else if let Some((ms, _)) = short_date_time(t) {
                p.engine = Some("mariadb");
                p.time(ms, false);
            }
            saw_header = true;
        } else if let Some(rest) = line.strip_prefix("# User@Host: ") {
            if !user_host(&mut p, rest) {
                return Parsed::unparsed(Some("mysql"), "malformed # User@Host: line", entry);
            }
            saw_header = true;
        } else if let Some(rest) = line
            .strip_prefix("# ")
            .filter(|_| statement_start.is_none())
        {
            // Header pairs; a `# ` line inside the statement is the statement's (a comment).
            if scan::contains(rest, ": ") || rest.ends_with(':') {
                pairs(&mut p, rest);
                // A query logged after another without a `# User@Host:` of its own.
                saw_header |= rest.starts_with("Query_time: ");
            }
        } else if let Some(db) = line
            .strip_prefix("use ")
            .and_then(|l| l.trim_end().strip_suffix(';'))
        {
            if statement_start.is_none() {
                p.text("database", db.trim_matches('`'));
            } else {
                continue;
            }
        } else if let Some(ts) = line
            .strip_prefix("SET timestamp=")
            .and_then(|l| l.trim_end().strip_suffix(';'))
        {
            if statement_start.is_none()
                && p.time_ms.is_none()
                && let Ok(secs) = ts.parse::<i64>()
            {
                p.time(secs * 1000, false);
            }
        } else if statement_start.is_none() {
            statement_start = Some(at);
        }
    }
    if !saw_header {
        return Parsed::unparsed(
            Some("mysql"),
            "no # Time:, # User@Host: or # Query_time: header",
            entry,
        );
    }
    if let Some(at) = statement_start {
        p.text("statement", entry[at..].trim_end());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;
    use crate::record::FieldValue::{Float, Integer, Text};

    #[test]
    fn rds_entry_with_host_name() {
        let p = parse(
            "# Time: 2023-05-01T09:57:34.360484Z\n# User@Host: rdstopmgr[rdstopmgr] @ ip-10-1-0-158 [10.1.0.158]  Id:    16\n\
             # Query_time: 0.006554  Lock_time: 0.000000 Rows_sent: 1  Rows_examined: 1\nSET timestamp=1682935054;\n\
             select gtid_subtract('a', 'b');",
        );
        assert_eq!(
            (p.unparsed, p.time_ms, p.precise),
            (None, Some(1_682_935_054_360), true)
        );
        assert_eq!(
            fields(&p),
            vec![
                ("user", Text("rdstopmgr".into())),
                ("client_host", Text("ip-10-1-0-158".into())),
                ("client_ip", Text("10.1.0.158".into())),
                ("thread_id", Integer(16)),
                ("query_time_ms", Float(6.554)),
                ("lock_time_ms", Float(0.0)),
                ("rows_sent", Integer(1)),
                ("rows_examined", Integer(1)),
                ("statement", Text("select gtid_subtract('a', 'b');".into())),
            ]
        );
    }

    #[test]
    fn use_db_and_multi_line_statement() {
        let p = parse(
            "# Time: 2024-01-03T07:17:20.525029Z\n# User@Host: admin[admin] @  [127.0.0.1]  Id:  7432\n\
             # Query_time: 2.002099 Lock_time: 0.000000 Rows_sent: 1 Rows_examined: 2\nuse audit;\nSET timestamp=1704266238;\n\
             with dataset as (\nselect sleep(2) as t)\nselect *\nfrom dataset;",
        );
        assert_eq!(p.field("database"), Some(&Text("audit".into())));
        assert_eq!(
            p.field("statement"),
            Some(&Text(
                "with dataset as (\nselect sleep(2) as t)\nselect *\nfrom dataset;".into()
            ))
        );
        assert_eq!(
            p.field("client_host"),
            None,
            "an empty host name adds no field"
        );
        assert_eq!(p.field("query_time_ms"), Some(&Float(2002.099)));
    }

    #[test]
    fn mariadb_and_slow_extra() {
        let p = parse(
            "# Time: 230501  9:57:34\n# User@Host: root[root] @ localhost []\n# Thread_id: 5  Schema: shop  QC_hit: No\n\
             # Query_time: 1.5  Lock_time: 0.1  Rows_sent: 0  Rows_examined: 10 Errno: 0 Bytes_sent: 52\nSET timestamp=1682935054;\nSELECT 1;",
        );
        assert_eq!(
            (p.engine, p.time_ms, p.precise),
            (Some("mariadb"), Some(1_682_935_054_000), false)
        );
        assert_eq!(p.field("thread_id"), Some(&Integer(5)));
        assert_eq!(p.field("database"), Some(&Text("shop".into())));
        assert_eq!(p.field("qc_hit"), Some(&Text("No".into())));
        assert_eq!(p.field("errno"), Some(&Integer(0)));
        assert_eq!(p.field("bytes_sent"), Some(&Integer(52)));
        assert_eq!(p.field("client_host"), Some(&Text("localhost".into())));
    }

    #[test]
    fn banners_split_and_parse() {
        let msg = "# Time: 2021-08-13T15:08:32.515111Z\n# User@Host: x[x] @ [10.1.20.17] Id: 9\n# Query_time: 11.5 Lock_time: 0 Rows_sent: 1 Rows_examined: 9\n\
                   SET timestamp=1628867312;\nselect count(*) from X;\n/rdsdbbin/mysql/bin/mysqld, Version: 5.7.28-log (Source distribution). started with:\n\
                   Tcp port: 3306 Unix socket: /tmp/mysql.sock\nTime Id Command Argument";
        let pieces: Vec<&str> = super::super::split(msg, is_start).collect();
        assert_eq!(pieces.len(), 2);
        assert_eq!(
            parse(pieces[0]).field("statement"),
            Some(&Text("select count(*) from X;".into()))
        );
        let b = parse(pieces[1]);
        assert_eq!(b.field("entry_kind"), Some(&Text("server_banner".into())));
        assert_eq!(b.field("server_version"), Some(&Text("5.7.28-log".into())));
        // `# User@Host:` after `# Time:` does not start an entry; without one it does.
        assert!(!is_start(
            "# Time: 2021-08-13T15:08:32.515111Z",
            "# User@Host: x[x] @ [1.2.3.4] Id: 9"
        ));
        assert!(is_start("select 1;", "# User@Host: x[x] @ [1.2.3.4] Id: 9"));
    }

    #[test]
    fn a_query_time_line_after_a_statement_starts_the_next_query() {
        let msg = "# Time: 2021-08-13T15:08:32.515111Z\n# User@Host: x[x] @ [10.1.20.17] Id: 9\n\
                   # Query_time: 11.5 Lock_time: 0 Rows_sent: 1 Rows_examined: 9\n\
                   SET timestamp=1628867312;\nselect count(*) from X;\n\
                   # Query_time: 2.25 Lock_time: 0.001 Rows_sent: 0 Rows_examined: 3\n\
                   SET timestamp=1628867313;\nupdate X set a = 1\n# not a header: 99\nwhere b = 2;";
        let pieces: Vec<&str> = super::super::split(msg, is_start).collect();
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        let first = parse(pieces[0]);
        assert_eq!(first.field("query_time_ms"), Some(&Float(11500.0)));
        assert_eq!(
            first.field("statement"),
            Some(&Text("select count(*) from X;".into()))
        );
        // The second query has its own time, and a `# ` line inside its statement stays there.
        let second = parse(pieces[1]);
        assert_eq!(second.unparsed, None);
        assert_eq!(second.field("query_time_ms"), Some(&Float(2250.0)));
        assert_eq!(second.field("lock_time_ms"), Some(&Float(1.0)));
        assert_eq!(second.time_ms, Some(1_628_867_313_000));
        assert_eq!(
            second.field("statement"),
            Some(&Text(
                "update X set a = 1\n# not a header: 99\nwhere b = 2;".into()
            ))
        );
        assert!(second.field("not").is_none());
        // Header lines together never split.
        assert!(!is_start(
            "# User@Host: x[x] @ [1.2.3.4] Id: 9",
            "# Query_time: 1"
        ));
        assert!(!is_start("# Thread_id: 5  Schema: db", "# Query_time: 1"));
    }

    #[test]
    fn seconds_become_exact_milliseconds() {
        assert_eq!(seconds_to_ms("2.000192"), Some(2000.192));
        assert_eq!(seconds_to_ms("11.5"), Some(11500.0));
        assert_eq!(seconds_to_ms("0.000074"), Some(0.074));
        assert_eq!(seconds_to_ms("7"), Some(7000.0));
        assert_eq!(seconds_to_ms("x.5"), None);
        assert_eq!(seconds_to_ms(""), None);
    }

    #[test]
    fn a_statement_alone_is_unparsed_not_lost() {
        let p = parse("select 1 from t\u{0};");
        assert_eq!(
            p.unparsed,
            Some("no # Time:, # User@Host: or # Query_time: header")
        );
    }
}
