//! MySQL / Aurora MySQL general query log: `<ISO time>\t<thread> <Command>\t<argument>`,
//! where a multi-line query continues on the following lines, plus the mysqld banner.

use super::Parsed;
use super::mysql_slow::{is_banner, parse_banner};
use super::scan::{self, starts_with_date_time};

pub fn is_start(prev: &str, line: &str) -> bool {
    starts_with_date_time(line, b'T') && line.contains('\t')
        || is_banner(line)
        || (line.starts_with("Tcp port: ") && !is_banner(prev))
        || (line.starts_with("Time ")
            && scan::contains(line, "Command")
            && !prev.starts_with("Tcp port: "))
}

pub fn parse(entry: &str) -> Parsed<'_> {
    if let Some(banner) = parse_banner(entry) {
        return banner;
    }
    let (mut p, mut s) = match Parsed::timed(
        "mysql",
        entry,
        "the entry does not start with a general-log timestamp",
    ) {
        Ok(started) => started,
        Err(unparsed) => return unparsed,
    };
    s.eat_char('Z');
    s.spaces();
    let Some(thread) = s.number() else {
        return Parsed::unparsed(Some("mysql"), "no thread id after the timestamp", entry);
    };
    p.int("thread_id", thread);
    s.spaces();
    // The command is one or two words (`Query`, `Init DB`), ended by a TAB.
    let (command, argument) = match s.rest.split_once('\t') {
        Some((c, a)) => (c.trim(), a),
        None => (s.rest.trim(), ""),
    };
    p.text("command", command);
    match command {
        "Query" | "Prepare" | "Execute" => p.text("statement", argument.trim_end()),
        "Init DB" => p.text("database", argument.trim()),
        "Connect" => connect(&mut p, argument.trim()),
        _ if !argument.trim().is_empty() => p.text("argument", argument.trim_end()),
        _ => {}
    }
    p
}

/// `user@host on db using TCP/IP` (database and transport optional).
fn connect<'e>(p: &mut Parsed<'e>, arg: &'e str) {
    let (who, rest) = scan::split_once(arg, " on ").unwrap_or((arg, ""));
    if let Some((user, host)) = who.split_once('@') {
        p.text("user", user);
        p.text("client_host", host);
    }
    let (db, transport) = scan::split_once(rest, " using ").unwrap_or((rest, ""));
    if !db.trim().is_empty() {
        p.text("database", db.trim());
    }
    if !transport.is_empty() {
        p.text("connection_type", transport.trim());
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;
    use crate::record::FieldValue::{Integer, Text};

    #[test]
    fn query_lines() {
        let p = parse(
            "2024-01-03T08:12:19.125290Z\t262325 Query\twith dataset as (\nselect sleep(2) as t)\nselect * from t",
        );
        assert_eq!(
            (p.unparsed, p.time_ms, p.precise),
            (None, Some(1_704_269_539_125), true)
        );
        assert_eq!(
            fields(&p),
            vec![
                ("thread_id", Integer(262325)),
                ("command", Text("Query".into())),
                (
                    "statement",
                    Text("with dataset as (\nselect sleep(2) as t)\nselect * from t".into())
                ),
            ]
        );
    }

    #[test]
    fn connect_and_init_db() {
        let p =
            parse("2024-01-03T08:12:19.125290Z\t77 Connect\tadmin@10.0.0.5 on shop using TCP/IP");
        assert_eq!(p.field("user"), Some(&Text("admin".into())));
        assert_eq!(p.field("client_host"), Some(&Text("10.0.0.5".into())));
        assert_eq!(p.field("database"), Some(&Text("shop".into())));
        assert_eq!(p.field("connection_type"), Some(&Text("TCP/IP".into())));
        let p = parse("2024-01-03T08:12:19.125290Z\t77 Init DB\tshop");
        assert_eq!(p.field("database"), Some(&Text("shop".into())));
        let p = parse("2024-01-03T08:12:19.125290Z\t77 Quit\t");
        assert_eq!(fields(&p).len(), 2);
    }
}
