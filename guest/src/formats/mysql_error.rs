//! MySQL, MariaDB and Aurora MySQL error logs.
//!
//! - 8.0 / Aurora 3: `2025-03-21T00:00:04.275032Z 4071946 [Warning] [MY-010055] [Server] text`
//!   (with `log_timestamps=SYSTEM` the time ends in an offset: `…04.275032+02:00`)
//! - 5.7 / Aurora 2: `2017-07-04T09:58:45.968034Z 703463 [Note] text`
//! - MariaDB: `2023-04-27 14:36:09 14487 [Warning] text`
//! - Aurora extras: `231128  9:13:22 server_audit: text`, `2023-11-28 09:13:22 22566174378368:[DAS][INFO]: text`,
//!   InnoDB monitor headers `2022-02-18 06:12:07 0x2b76b6e68700 …`.
//!
//! Lines without a timestamp (InnoDB dumps, SQL text, `. Ignored error …`) continue the entry.

use super::scan::{self, Scan, short_date_time, starts_with_date_time};
use super::{Parsed, guess_level};
use crate::level::Level;

pub fn is_start(line: &str) -> bool {
    starts_with_date_time(line, b'T')
        || starts_with_date_time(line, b' ')
        || short_date_time(line).is_some()
}

fn priority_level(p: &str) -> Option<Level> {
    // Compared in place: lowering a copy allocated for every entry.
    let is = |name: &str| p.eq_ignore_ascii_case(name);
    Some(if is("system") || is("note") || is("info") {
        Level::Info
    } else if is("warning") || is("warn") {
        Level::Warning
    } else if is("error") {
        Level::Error
    } else {
        return None;
    })
}

pub fn parse(entry: &str) -> Parsed<'_> {
    let first = scan::first_line(entry);
    if let Some((ms, rest)) = short_date_time(first) {
        // Aurora's server_audit plugin: `231128  9:13:22 server_audit: …`.
        let mut p = Parsed::new(Some("aurora-mysql"));
        p.time(ms, false);
        let mut s = Scan::new(rest.trim_start());
        match s.until(':') {
            Some(component) if !component.contains(' ') => p.text("component", component),
            _ => {}
        }
        p.level = guess_level(entry);
        return p;
    }
    let iso = starts_with_date_time(first, b'T');
    let mut s = Scan::new(first);
    let Some((ms, precise)) = s.date_time() else {
        return Parsed::unparsed(
            Some("mysql"),
            "the entry does not start with a MySQL error-log timestamp",
            entry,
        );
    };
    // UTC (`Z`), or local time with its offset (`log_timestamps=SYSTEM`).
    let ms = ms - s.utc_offset().unwrap_or(0);
    s.spaces();
    let thread = s.rest.split([' ', ':', '\t']).next().unwrap_or("");
    let mut p = Parsed::new(Some(if iso { "mysql" } else { "mariadb" }));
    p.time(ms, precise);
    if thread.starts_with("0x") {
        let hex = &s.rest[2..];
        // InnoDB monitor / deadlock output: `YYYY-MM-DD HH:MM:SS 0x<thread>` then a dump.
        let mut run = hex.bytes().take_while(u8::is_ascii_hexdigit).count();
        // Glued fragments: the next entry's date may follow at once (`…687002022-02-18 …`).
        if let Some(at) = (0..run).find(|&i| starts_with_date_time(&hex[i..], b' ')) {
            run = at;
        }
        let digits = &hex[..run];
        p.engine = Some("mysql");
        p.text("thread", format!("0x{digits}"));
        p.text("component", "InnoDB");
        p.level = if entry.to_ascii_lowercase().contains("deadlock")
            || scan::contains(entry, "*** (1) TRANSACTION")
        {
            Level::Warning
        } else {
            guess_level(entry)
        };
        return p;
    }
    let Some(thread_id) = s.number() else {
        return Parsed::unparsed(p.engine, "no thread id after the timestamp", entry);
    };
    p.int("thread_id", thread_id);
    if s.eat(":[") {
        // Aurora Database Activity Streams: `…:[DAS][INFO]: text`.
        p.engine = Some("aurora-mysql");
        if let Some(component) = s.until(']') {
            p.text("component", component);
        }
        if s.eat_char('[')
            && let Some(prio) = s.until(']')
        {
            p.text("priority", prio);
            p.level = priority_level(prio).unwrap_or(Level::Info);
        }
        return p;
    }
    s.spaces();
    let Some(prio) = s.eat_char('[').then(|| s.until(']')).flatten() else {
        return Parsed::unparsed(p.engine, "no [priority] after the thread id", entry);
    };
    let Some(level) = priority_level(prio) else {
        return Parsed::unparsed(p.engine, "unknown priority", entry);
    };
    p.text("priority", prio);
    p.level = level;
    s.spaces();
    if s.rest.starts_with("[MY-") {
        s.eat_char('[');
        if let Some(code) = s.until(']') {
            p.text("error_code", code);
        }
        s.spaces();
        if s.eat_char('[')
            && let Some(subsystem) = s.until(']')
        {
            p.text("subsystem", subsystem);
        }
    }
    // Aurora 8.0 appends the source location: `… (mysqld.cc:5965)`. The cheap test first:
    // searching every line backwards for ` (` was a twentieth of the mapping in the guest.
    let last = first.trim_end();
    if last.ends_with(')')
        && let Some(open) = scan::rfind(last, " (")
    {
        let loc = &last[open + 2..last.len() - 1];
        if let Some((file, line)) = loc.rsplit_once(':')
            && file.ends_with(".cc")
            && line.bytes().all(|b| b.is_ascii_digit())
        {
            p.text("source_location", loc);
        }
    }
    if scan::contains(entry, "*** (1) TRANSACTION")
        || scan::contains(entry, "LATEST DETECTED DEADLOCK")
    {
        p.level = p.level.max(Level::Warning);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;
    use crate::record::FieldValue::{Integer, Text};

    #[test]
    fn mysql_8_line() {
        let p = parse(
            "2025-03-21T00:00:04.275032Z 4071946 [Warning] [MY-010055] [Server] IP address '1.2.3.4' could not be resolved: Name or service not known",
        );
        assert_eq!(p.unparsed, None);
        assert_eq!(
            (p.time_ms, p.precise, p.level, p.engine),
            (Some(1_742_515_204_275), true, Level::Warning, Some("mysql"))
        );
        assert_eq!(
            fields(&p),
            vec![
                ("thread_id", Integer(4071946)),
                ("priority", Text("Warning".into())),
                ("error_code", Text("MY-010055".into())),
                ("subsystem", Text("Server".into())),
            ]
        );
    }

    #[test]
    fn aurora_8_line_with_source_location() {
        let p = parse(
            "2023-11-28T09:13:22.104678Z 0 [System] [MY-010116] [Server] /rdsdbbin/oscar/bin/mysqld (mysqld 8.0.28) starting as process 259 (mysqld.cc:5965)",
        );
        assert_eq!(p.level, Level::Info);
        assert_eq!(
            p.field("source_location"),
            Some(&Text("mysqld.cc:5965".into()))
        );
    }

    #[test]
    fn mysql_57_and_mariadb() {
        let p = parse(
            "2017-07-04T09:58:45.968034Z 703463 [Note] Aborted connection 703463 to db: 'mysql'",
        );
        assert_eq!(
            fields(&p),
            vec![
                ("thread_id", Integer(703463)),
                ("priority", Text("Note".into()))
            ]
        );
        let p = parse(
            "2023-04-27 14:36:09 14487 [Warning] Access denied for user 'dev'@'1.2.3.4' (using password: YES)",
        );
        assert_eq!(
            (p.engine, p.precise, p.level),
            (Some("mariadb"), false, Level::Warning)
        );
        assert_eq!(p.time_ms, Some(1_682_606_169_000));
        assert_eq!(p.field("thread_id"), Some(&Integer(14487)));
    }

    #[test]
    fn aurora_extras() {
        let p = parse(
            "231128  9:13:22 server_audit: Audit STARTED.\nFound DAS config file, trying to load DAS switcher from DAS config file.",
        );
        assert_eq!(
            (p.unparsed, p.engine, p.time_ms),
            (None, Some("aurora-mysql"), Some(1_701_162_802_000))
        );
        assert_eq!(fields(&p), vec![("component", Text("server_audit".into()))]);
        let p = parse(
            "2023-11-28 09:13:22 22566174378368:[DAS][INFO]: Calculated persistence threads 4",
        );
        assert_eq!(
            fields(&p),
            vec![
                ("thread_id", Integer(22566174378368)),
                ("component", Text("DAS".into())),
                ("priority", Text("INFO".into()))
            ]
        );
    }

    #[test]
    fn glued_innodb_fragments() {
        let p = parse(
            "2022-02-18 06:12:07 0x2b76b6e687002022-02-18 06:12:07 0x2b76b6e68700\n*** (1) TRANSACTION:\nTRANSACTION 1234, ACTIVE 0 sec",
        );
        assert_eq!(p.unparsed, None);
        assert_eq!(p.level, Level::Warning);
        assert_eq!(p.field("thread"), Some(&Text("0x2b76b6e68700".into())));
    }

    #[test]
    fn a_timestamp_with_an_offset_is_local_time() {
        let p = parse(
            "2023-03-15T05:08:37.642287+02:00 0 [System] [MY-010931] [Server] /rdsdbbin/mysql/bin/mysqld: ready for connections.",
        );
        assert_eq!(p.unparsed, None);
        // 05:08:37.642 at +02:00 is 03:08:37.642 UTC.
        assert_eq!(p.time_ms, Some(1_678_849_717_642));
        assert!(p.precise);
        assert_eq!(p.level, Level::Info);
        assert_eq!(
            fields(&p),
            vec![
                ("thread_id", Integer(0)),
                ("priority", Text("System".into())),
                ("error_code", Text("MY-010931".into())),
                ("subsystem", Text("Server".into())),
            ]
        );
        let west = parse("2023-03-15T05:08:37.642287-05:30 7 [Warning] [MY-000001] [Server] x");
        assert_eq!(west.time_ms, Some(1_678_876_717_642));
        assert_eq!(west.level, Level::Warning);
    }

    #[test]
    fn not_an_error_line() {
        let p = parse("2024-01-01T00:00:00.000000Z abc");
        assert_eq!(p.unparsed, Some("no thread id after the timestamp"));
        assert!(!is_start("InnoDB: continuation"));
    }
}
