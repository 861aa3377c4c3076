//! RDS for Db2: `diag.log` (db2diag records) and `notify.log` (administration notifications).
//!
//! A db2diag record, its records separated by a blank line:
//!
//! ```text
//! 2025-09-01-04.03.37.960445+000 I468858E460           LEVEL: Error
//! PID     : 19112                TID : 140737381652352 PROC : db2bp
//! INSTANCE: db2inst1             NODE : 000            DB   : SAMPLE
//! APPID   : *LOCAL.db2inst1.250901040046
//! HOSTNAME: 2e62336d93c9
//! FUNCTION: DB2 UDB, base sys utilities, sqleriar_database, probe:9
//! RETCODE : ZRC=0x8005006D=-2147155859=SQLE_CA_BUILT
//!           "SQLCA has been built and saved in component specific control block."
//! ```
//!
//! The header's time is local, with its UTC offset **in minutes** (`+000`, `-420`, `+540`);
//! `KEY : value` pairs sit two or three to a line at fixed columns; `MESSAGE :` (often an
//! `ADMnnnnX` code) and `RETCODE :` (a `ZRC=0x…=-n=NAME`) may continue on indented lines;
//! `DATA #n`, `ARG #n`, `CALLSTCK` and the like follow, kept in the content.
//!
//! A notification (IBM documents it on one line, and on several):
//!
//! ```text
//! 2006-02-15-19.33.37.630000 Instance:DB2 Node:000 PID:940(db2syscs.exe) TID: 660 Appid:*LOCAL.DB2.060216003103 recovery manager sqlpresr Probe:1 Database:SAMPLE ADM1530E Crash recovery has been initiated.
//! ```
//!
//! its level from the ADM code's last letter (`E` error, `W` warning, `I` info, `C` critical).

use std::borrow::Cow;

use super::Parsed;
use super::scan;
use crate::level::Level;

/// Whether `line` starts with a Db2 timestamp, `YYYY-MM-DD-HH.MM.SS`: a record's first line.
pub fn is_start(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'-'
        && b[13] == b'.'
        && b[16] == b'.'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

/// `YYYY-MM-DD-HH.MM.SS[.ffffff][±MMM]` at the start of `s`: epoch ms (UTC), whether it has a
/// fraction, and the rest.
fn timestamp(s: &str) -> Option<(i64, bool, &str)> {
    if !is_start(s) {
        return None;
    }
    let b = s.as_bytes();
    let d = |at, n| crate::time::digits(b, at, n);
    let mut ms = crate::time::epoch_ms(
        i64::from(d(0, 4)?),
        d(5, 2)?,
        d(8, 2)?,
        d(11, 2)?,
        d(14, 2)?,
        d(17, 2)?,
        0,
    )?;
    let (frac, n, rest) = crate::time::parse_fraction(&s[19..]);
    ms += i64::from(frac);
    // The offset is in minutes: `+000`, `-420`, `+540`.
    let rb = rest.as_bytes();
    let rest = match rb.first() {
        Some(sign @ (b'+' | b'-')) => {
            let n = rb[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            let minutes: i64 = rest[1..1 + n].parse().ok()?;
            ms -= if *sign == b'-' { -minutes } else { minutes } * 60_000;
            &rest[1 + n..]
        }
        _ => rest,
    };
    Some((ms, n > 0, rest))
}

fn level_of(name: &str) -> Option<Level> {
    let is = |l: &str| name.eq_ignore_ascii_case(l);
    Some(if is("info") || is("event") {
        Level::Info
    } else if is("warning") {
        Level::Warning
    } else if is("error") {
        Level::Error
    } else if is("severe") || is("critical") || is("alert") {
        Level::Critical
    } else {
        return None;
    })
}

/// The labels of a db2diag record whose values become fields, and the fields' names.
const LABELS: &[(&str, &str)] = &[
    ("PID", "pid"),
    ("TID", "tid"),
    ("PROC", "proc"),
    ("INSTANCE", "db2_instance"),
    ("NODE", "node"),
    ("DB", "database"),
    ("APPHDL", "app_handle"),
    ("APPID", "app_id"),
    ("AUTHID", "auth_id"),
    ("HOSTNAME", "hostname"),
    ("EDUID", "edu_id"),
    ("EDUNAME", "edu_name"),
    ("FUNCTION", "function"),
    ("MESSAGE", "message"),
    ("RETCODE", "retcode"),
];

/// The `LABEL : value` pairs of one line: each label known, at the line's start or after
/// spaces, followed by spaces and a colon.
fn pairs(line: &str) -> Vec<(&'static str, &str)> {
    let b = line.as_bytes();
    let mut found: Vec<(usize, usize, &'static str)> = Vec::new(); // (label start, value start, field)
    for &(label, field) in LABELS {
        for at in scan::match_indices(line, label) {
            let word_start = at == 0 || b[at - 1] == b' ';
            let after = &line[at + label.len()..];
            let colon = after.len() - after.trim_start_matches(' ').len();
            if word_start && after[colon..].starts_with(':') {
                found.push((at, at + label.len() + colon + 1, field));
            }
        }
    }
    found.sort_unstable();
    found
        .iter()
        .enumerate()
        .map(|(i, &(_, value_at, field))| {
            let end = found.get(i + 1).map_or(line.len(), |next| next.0);
            (field, line[value_at..end.max(value_at)].trim())
        })
        .collect()
}

pub fn parse_diag(entry: &str) -> Parsed<'_> {
    let mut lines = scan::lines(entry);
    let first = lines.next().unwrap_or("");
    let Some((ms, precise, rest)) = timestamp(first) else {
        return Parsed::unparsed(
            Some("db2"),
            "the entry does not start with a db2diag timestamp",
            entry,
        );
    };
    let mut p = Parsed::new(Some("db2"));
    p.time(ms, precise);
    let mut words = rest.split_whitespace();
    if let Some(id) = words.next().filter(|w| !w.starts_with("LEVEL")) {
        p.text("diag_record", id);
    }
    let level = scan::split_once(rest, "LEVEL:").map(|(_, l)| l.trim());
    match level.map(|l| (l, level_of(l))) {
        Some((name, Some(level))) => {
            p.level = level;
            p.text("priority", name);
        }
        Some((name, None)) if !name.is_empty() => {
            p.text("priority", name);
            p.level = super::guess_level(entry);
        }
        _ => return Parsed::unparsed(Some("db2"), "no LEVEL: in the record's header", entry),
    }
    // The value being read, which indented lines continue (MESSAGE, RETCODE).
    let mut open: Option<(&'static str, Cow<'_, str>)> = None;
    let mut done: Vec<(&'static str, Cow<'_, str>)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, value)) = open.as_mut() {
                let more = line.trim();
                if !more.is_empty() {
                    let v = value.to_mut();
                    v.push(' ');
                    v.push_str(more);
                }
            }
            continue;
        }
        done.extend(open.take());
        let found = pairs(line);
        let n = found.len();
        for (i, (field, value)) in found.into_iter().enumerate() {
            let continues = i + 1 == n && matches!(field, "message" | "retcode");
            if continues {
                open = Some((field, Cow::Borrowed(value)));
            } else {
                done.push((field, Cow::Borrowed(value)));
            }
        }
    }
    done.extend(open.take());
    for (field, value) in done {
        if value.is_empty() {
            continue;
        }
        match field {
            "function" => function(&mut p, value),
            "message" => {
                if let Some(code) = adm_code(&value) {
                    p.text("message_code", code.to_owned());
                }
                zrc(&mut p, &value);
                p.text("message", value);
            }
            "retcode" => {
                zrc(&mut p, &value);
                p.text("retcode", value);
            }
            "pid" | "tid" | "node" | "edu_id" => match value.parse::<i64>() {
                Ok(n) => p.int(field, n),
                Err(_) => p.text(field, value),
            },
            _ => p.text(field, value),
        }
    }
    p
}

/// `DB2 UDB, base sys utilities, sqleriar_database, probe:9`: product, component, function,
/// probe.
fn function<'e>(p: &mut Parsed<'e>, value: Cow<'e, str>) {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let name = |i: usize| parts.get(i).copied().filter(|s| !s.is_empty());
    let owned = |s: &str| Cow::<'e, str>::Owned(s.to_owned());
    if let Some(product) = name(0) {
        p.text("product", owned(product));
    }
    if let Some(component) = name(1) {
        p.text("component", owned(component));
    }
    if let Some(f) = name(2) {
        p.text("function", owned(f));
    }
    if let Some(probe) = parts.iter().find_map(|s| s.strip_prefix("probe:")) {
        match probe.trim().parse::<i64>() {
            Ok(n) => p.int("probe", n),
            Err(_) => p.text("probe", owned(probe)),
        }
    }
}

/// An `ADMnnnnX` code at the start of a message (or after spaces).
fn adm_code(text: &str) -> Option<&str> {
    text.split_whitespace().find(|w| {
        let b = w.as_bytes();
        b.len() >= 8
            && w.starts_with("ADM")
            && b[3..b.len() - 1].iter().all(u8::is_ascii_digit)
            && b[b.len() - 1].is_ascii_uppercase()
    })
}

/// `ZRC=0x8005006D=-2147155859=SQLE_CA_BUILT`: the code and its name.
fn zrc<'e>(p: &mut Parsed<'e>, text: &str) {
    let Some((_, rest)) = scan::split_once(text, "ZRC=") else {
        return;
    };
    let token = rest.split_whitespace().next().unwrap_or("");
    let mut parts = token.split('=');
    if let Some(hex) = parts.next().filter(|h| h.starts_with("0x")) {
        p.text("zrc", Cow::<'e, str>::Owned(hex.to_owned()));
    }
    if let Some(name) = parts.nth(1).filter(|n| !n.is_empty()) {
        p.text("zrc_name", Cow::<'e, str>::Owned(name.to_owned()));
    }
}

/// The level an ADM code's last letter gives.
fn adm_level(code: &str) -> Level {
    match code.as_bytes().last() {
        Some(b'E') => Level::Error,
        Some(b'W') => Level::Warning,
        Some(b'C') => Level::Critical,
        _ => Level::Info,
    }
}

/// The notification keys, and the fields they become.
const NOTIFY_KEYS: &[(&str, &str)] = &[
    ("Instance:", "db2_instance"),
    ("Node:", "node"),
    ("PID:", "pid"),
    ("TID:", "tid"),
    ("Appid:", "app_id"),
    ("Probe:", "probe"),
    ("Database:", "database"),
];

pub fn parse_notify(entry: &str) -> Parsed<'_> {
    let Some((ms, precise, rest)) = timestamp(entry) else {
        return Parsed::unparsed(
            Some("db2"),
            "the entry does not start with a Db2 timestamp",
            entry,
        );
    };
    let mut p = Parsed::new(Some("db2"));
    p.time(ms, precise);
    // The message starts at its ADM code; the pairs and the component come before it.
    let code = adm_code(rest);
    let (head, message) = match code.and_then(|c| scan::find(rest, c)) {
        Some(at) => (&rest[..at], rest[at..].trim()),
        None => (rest, ""),
    };
    let mut words = head.split_whitespace().peekable();
    let mut free: Vec<&str> = Vec::new();
    while let Some(word) = words.next() {
        let Some(&(key, field)) = NOTIFY_KEYS.iter().find(|(k, _)| word.starts_with(k)) else {
            free.push(word);
            continue;
        };
        // `TID: 660`: the value may be the next word.
        let mut value = &word[key.len()..];
        if value.is_empty() {
            value = words.next().unwrap_or("");
        }
        match field {
            "pid" => {
                // `940(db2syscs.exe)`
                let (pid, proc) = value.split_once('(').unwrap_or((value, ""));
                p.number_or_text("pid", pid);
                if let Some(proc) = proc.strip_suffix(')').filter(|s| !s.is_empty()) {
                    p.text("proc", proc);
                }
            }
            "node" | "tid" | "probe" => p.number_or_text(field, value),
            _ => p.text(field, value),
        }
    }
    // `recovery manager sqlpresr`: the component's words, then the function.
    if let Some((function, component)) = free.split_last() {
        if !component.is_empty() {
            p.text("component", component.join(" "));
        }
        p.text("function", *function);
    }
    match code {
        Some(code) => {
            p.text("message_code", code);
            p.level = adm_level(code);
            p.text("message", message);
        }
        None => {
            p.level = super::guess_level(entry);
            if head.trim().is_empty() {
                return Parsed::unparsed(Some("db2"), "no ADM message in the notification", entry);
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;
    use crate::record::FieldValue::{Integer, Text};

    #[test]
    fn timestamps_with_their_minute_offsets() {
        let utc = timestamp("2025-09-01-04.03.37.960445+000 I1").unwrap();
        assert_eq!((utc.0, utc.1), (1_756_699_417_960, true));
        // 04:03:37 at -420 minutes (UTC-7) is 11:03:37 UTC.
        let west = timestamp("2025-09-01-04.03.37.960445-420").unwrap();
        assert_eq!(west.0, 1_756_699_417_960 + 7 * 3_600_000);
        let east = timestamp("2025-09-01-04.03.37.960445+540").unwrap();
        assert_eq!(east.0, 1_756_699_417_960 - 9 * 3_600_000);
        assert!(timestamp("2025-09-01 04:03:37").is_none());
    }

    #[test]
    fn a_record_with_three_pairs_a_line_and_a_continued_retcode() {
        let p = parse_diag(
            "2025-09-01-04.03.37.960445+000 I468858E460           LEVEL: Error\n\
             PID     : 19112                TID : 140737381652352 PROC : db2bp\n\
             INSTANCE: db2inst1             NODE : 000            DB   : SAMPLE  \n\
             APPID   : *LOCAL.db2inst1.250901040046\n\
             HOSTNAME: 2e62336d93c9\n\
             FUNCTION: DB2 UDB, base sys utilities, sqleriar_database, probe:9\n\
             RETCODE : ZRC=0x8005006D=-2147155859=SQLE_CA_BUILT\n          \"SQLCA has been built and saved in component specific control block.\"\n",
        );
        assert_eq!(p.unparsed, None);
        assert_eq!(
            (p.time_ms, p.precise, p.level, p.engine),
            (Some(1_756_699_417_960), true, Level::Error, Some("db2"))
        );
        assert_eq!(
            fields(&p),
            vec![
                ("diag_record", Text("I468858E460".into())),
                ("priority", Text("Error".into())),
                ("pid", Integer(19112)),
                ("tid", Integer(140737381652352)),
                ("proc", Text("db2bp".into())),
                ("db2_instance", Text("db2inst1".into())),
                ("node", Integer(0)),
                ("database", Text("SAMPLE".into())),
                ("app_id", Text("*LOCAL.db2inst1.250901040046".into())),
                ("hostname", Text("2e62336d93c9".into())),
                ("product", Text("DB2 UDB".into())),
                ("component", Text("base sys utilities".into())),
                ("function", Text("sqleriar_database".into())),
                ("probe", Integer(9)),
                ("zrc", Text("0x8005006D".into())),
                ("zrc_name", Text("SQLE_CA_BUILT".into())),
                (
                    "retcode",
                    Text("ZRC=0x8005006D=-2147155859=SQLE_CA_BUILT \"SQLCA has been built and saved in component specific control block.\"".into())
                ),
            ]
        );
    }

    #[test]
    fn an_adm_message_sets_its_code_and_levels_map() {
        let p = parse_diag(
            "2025-09-01-04.01.42.935663+000 I465616E393           LEVEL: Severe\n\
             PID     : 20648                TID : 1 PROC : \n\
             EDUID   : 22                   EDUNAME: db2sysc 0\n\
             FUNCTION: DB2 UDB, base sys utilities, DB2StartMain, probe:911\n\
             MESSAGE : ADM7513W  Database manager has started.\n\
             DATA #1 : String, 50 bytes\n/database/config\n",
        );
        assert_eq!(p.level, Level::Critical);
        assert_eq!(p.field("message_code"), Some(&Text("ADM7513W".into())));
        assert_eq!(
            p.field("message"),
            Some(&Text("ADM7513W  Database manager has started.".into()))
        );
        assert_eq!(p.field("edu_id"), Some(&Integer(22)));
        assert_eq!(p.field("edu_name"), Some(&Text("db2sysc 0".into())));
        // An empty PROC is no field.
        assert_eq!(p.field("proc"), None);
        for (name, level) in [
            ("Info", Level::Info),
            ("Event", Level::Info),
            ("Warning", Level::Warning),
            ("Critical", Level::Critical),
            ("Alert", Level::Critical),
        ] {
            assert_eq!(level_of(name), Some(level));
        }
    }

    #[test]
    fn a_record_cut_before_its_header_is_unparsed_not_lost() {
        let p = parse_diag("HOSTNAME: 2e62336d93c9\nFUNCTION: DB2 UDB, x, y, probe:1\n");
        assert_eq!(
            p.unparsed,
            Some("the entry does not start with a db2diag timestamp")
        );
    }

    #[test]
    fn notifications_on_one_line_and_on_several() {
        let one = parse_notify(
            "2006-02-15-19.33.37.630000 Instance:DB2 Node:000 PID:940(db2syscs.exe) TID: 660 Appid:*LOCAL.DB2.060216003103 recovery manager sqlpresr Probe:1 Database:SAMPLE ADM1530E Crash recovery has been initiated.",
        );
        assert_eq!(one.unparsed, None);
        assert_eq!(one.level, Level::Error);
        assert_eq!(one.time_ms, Some(1_140_032_017_630));
        assert_eq!(
            fields(&one),
            vec![
                ("db2_instance", Text("DB2".into())),
                ("node", Integer(0)),
                ("pid", Integer(940)),
                ("proc", Text("db2syscs.exe".into())),
                ("tid", Integer(660)),
                ("app_id", Text("*LOCAL.DB2.060216003103".into())),
                ("probe", Integer(1)),
                ("database", Text("SAMPLE".into())),
                ("component", Text("recovery manager".into())),
                ("function", Text("sqlpresr".into())),
                ("message_code", Text("ADM1530E".into())),
                (
                    "message",
                    Text("ADM1530E Crash recovery has been initiated.".into())
                ),
            ]
        );
        let several = parse_notify(
            "2006-02-15-19.33.37.630000   Instance:DB2   Node:000\nPID:940(db2syscs.exe)   TID:660   Appid:*LOCAL.DB2.060216003103\nrecovery manager  sqlpresr Probe:1   Database:SAMPLE\n\nADM1531W  Crash recovery has completed.\n",
        );
        assert_eq!(several.level, Level::Warning);
        assert_eq!(fields(&several)[..8], fields(&one)[..8]);
        assert_eq!(
            several.field("message_code"),
            Some(&Text("ADM1531W".into()))
        );
        assert_eq!(several.field("function"), Some(&Text("sqlpresr".into())));
        assert_eq!(
            parse_notify("not a notification").unparsed,
            Some("the entry does not start with a Db2 timestamp")
        );
    }
}
