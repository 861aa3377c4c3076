//! RDS Proxy logs (`/aws/rds/proxy/<proxy-name>`, enhanced logging), one line per entry:
//!
//! ```text
//! 2023-09-06T08:28:13.685Z [WARN] [proxyEndpoint=default] [clientConnection=51706963] text
//! ```
//!
//! The bracketed `key=value` pairs name the endpoint and the client and database connections;
//! the text says what happened: a client connected from an address, a TCP connection from the
//! proxy to the database, a connection closed or released (with a reason), a session pinned
//! (with a reason and the statement's digest), an authentication that failed for a user. A line
//! without the prefix (a credentials error has been seen so) is forwarded whole, unparsed.

use super::Parsed;
use super::scan::{self, Scan, starts_with_date_time};
use crate::level::Level;

pub fn is_start(line: &str) -> bool {
    starts_with_date_time(line, b'T')
}

fn level(name: &str) -> Option<Level> {
    let is = |l: &str| name.eq_ignore_ascii_case(l);
    Some(if is("INFO") || is("DEBUG") {
        Level::Info
    } else if is("WARN") || is("WARNING") {
        Level::Warning
    } else if is("ERROR") {
        Level::Error
    } else if is("FATAL") {
        Level::Critical
    } else {
        return None;
    })
}

pub fn parse(entry: &str) -> Parsed<'_> {
    let mut s = Scan::new(entry);
    let Some((ms, precise)) = s.date_time() else {
        return Parsed::unparsed(
            None,
            "the entry does not start with an RDS Proxy timestamp",
            entry,
        );
    };
    s.eat_char('Z');
    let mut p = Parsed::new(None);
    p.time(ms, precise);
    s.spaces();
    let Some(name) = s.eat_char('[').then(|| s.until(']')).flatten() else {
        return Parsed::unparsed(None, "no [level] after the timestamp", entry);
    };
    let Some(level) = level(name) else {
        return Parsed::unparsed(None, "unknown level", entry);
    };
    p.level = level;
    p.text("priority", name);
    // `[key=value]` pairs before the text.
    loop {
        s.spaces();
        let Some(inner) = s
            .rest
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .map(|(inner, _)| inner)
            .filter(|inner| inner.contains('='))
        else {
            break;
        };
        s.rest = &s.rest[inner.len() + 2..];
        if let Some((key, value)) = inner.split_once('=') {
            pair(&mut p, key, value);
        }
    }
    // The text itself stays in the content only.
    read_text(&mut p, s.rest.trim_end());
    p
}

/// One `[key=value]` pair, under a name of the record's own.
fn pair<'e>(p: &mut Parsed<'e>, key: &'e str, value: &'e str) {
    let name = match key {
        "proxyEndpoint" => "proxy_endpoint",
        "clientConnection" => "client_connection_id",
        "dbConnection" => "db_connection_id",
        "targetGroup" => "target_group",
        _ => {
            let mut snake = String::with_capacity(key.len() + 4);
            for c in key.chars() {
                if c.is_ascii_uppercase() {
                    snake.push('_');
                    snake.push(c.to_ascii_lowercase());
                } else {
                    snake.push(c);
                }
            }
            p.number_or_text(snake, value);
            return;
        }
    };
    p.number_or_text(name, value);
}

/// What the text says, in fields: the event, the addresses, the reason, the digest, the user.
fn read_text<'e>(p: &mut Parsed<'e>, text: &'e str) {
    let kind = if text.starts_with("A new client connected") {
        Some("client_connected")
    } else if text.starts_with("The client connection closed") {
        Some("client_closed")
    } else if text.starts_with("A TCP connection was established") {
        Some("db_connected")
    } else if text.starts_with("The database connection closed") {
        Some("db_closed")
    } else if text.starts_with("The database connection was released") {
        Some("db_released")
    } else if scan::contains(text, " was pinned to the database connection") {
        Some("session_pinned")
    } else if scan::contains(text, "authentication") && scan::contains(text, "failed") {
        Some("authentication_failed")
    } else {
        None
    };
    if let Some(kind) = kind {
        p.text("event", kind);
    }
    if let Some((ip, port)) = scan::split_once(text, "the proxy at ").and_then(|(_, r)| address(r))
    {
        p.text("proxy_ip", ip);
        p.int("proxy_port", port);
    }
    if let Some((ip, port)) =
        scan::split_once(text, "to the database at ").and_then(|(_, r)| address(r))
    {
        p.text("db_ip", ip);
        p.int("db_port", port);
    }
    if let Some((ip, port)) =
        scan::split_once(text, "client connected from ").and_then(|(_, r)| address(r))
    {
        p.text("client_ip", ip);
        p.int("client_port", port);
    }
    // `… pinned to the database connection [dbConnection=N] …`.
    if p.field("db_connection_id").is_none()
        && let Some((_, rest)) = scan::split_once(text, "[dbConnection=")
        && let Some(id) = rest.split(']').next()
    {
        p.number_or_text("db_connection_id", id);
    }
    let digest = scan::split_once(text, "Digest: \"").and_then(|(_, r)| {
        let end = scan::rfind(r, "\"")?;
        Some(&r[..end])
    });
    if let Some((_, rest)) = scan::split_once(text, "Reason: ") {
        let reason = match scan::find(rest, " Digest: ") {
            Some(end) => &rest[..end],
            None => rest,
        };
        p.text("reason", reason.trim_end());
    }
    if let Some(digest) = digest {
        p.text("digest", digest);
    }
    if let Some((_, rest)) = scan::split_once(text, "for user \"")
        && let Some(user) = rest.split('"').next()
    {
        p.text("user", user);
    }
}

/// `10.0.1.5:5432.` → (`10.0.1.5`, 5432): an IPv4 or bracketed IPv6 address and a port, at the
/// start of `s`, before the sentence's end.
fn address(s: &str) -> Option<(&str, i64)> {
    let run = s
        .bytes()
        .take_while(|b| b.is_ascii_hexdigit() || matches!(b, b'.' | b':' | b'[' | b']'))
        .count();
    let addr = s[..run].trim_end_matches('.');
    let (ip, port) = addr.rsplit_once(':')?;
    let port = port.parse::<i64>().ok()?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    (!ip.is_empty()).then_some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::*;
    use crate::record::FieldValue::{Integer, Text};

    #[test]
    fn a_pinned_session_with_reason_and_digest() {
        let p = parse(
            "2024-10-12T17:20:40 [WARN] [proxyEndpoint=default] [clientConnection=2125203372] The client session was pinned to the database connection [dbConnection=1953961465] for the remainder of the session. The proxy can't reuse this connection until the session ends. Reason: SQL changed session settings that the proxy doesn't track. Consider moving session configuration to the proxy's initialization query. Digest: \"set search_path to $1,$2,$3\".",
        );
        assert_eq!(p.unparsed, None);
        assert_eq!(
            (p.time_ms, p.precise, p.level),
            (Some(1_728_753_640_000), false, Level::Warning)
        );
        let f = fields(&p);
        assert_eq!(f[0], ("priority", Text("WARN".into())));
        assert_eq!(f[1], ("proxy_endpoint", Text("default".into())));
        assert_eq!(f[2], ("client_connection_id", Integer(2125203372)));
        assert_eq!(p.field("event"), Some(&Text("session_pinned".into())));
        assert_eq!(p.field("db_connection_id"), Some(&Integer(1953961465)));
        assert_eq!(
            p.field("reason"),
            Some(&Text("SQL changed session settings that the proxy doesn't track. Consider moving session configuration to the proxy's initialization query.".into()))
        );
        assert_eq!(
            p.field("digest"),
            Some(&Text("set search_path to $1,$2,$3".into()))
        );
    }

    #[test]
    fn connections_addresses_and_users() {
        let p = parse(
            "2023-09-06T08:28:13.685Z [INFO] [proxyEndpoint=default] [clientConnection=51706963] A new client connected from 10.0.1.25:48212.",
        );
        assert_eq!((p.time_ms, p.precise), (Some(1_693_988_893_685), true));
        assert_eq!(p.field("event"), Some(&Text("client_connected".into())));
        assert_eq!(p.field("client_ip"), Some(&Text("10.0.1.25".into())));
        assert_eq!(p.field("client_port"), Some(&Integer(48212)));
        let p = parse(
            "2023-09-06T08:28:13.702Z [INFO] [proxyEndpoint=default] [clientConnection=51706963] [dbConnection=771] A TCP connection was established from the proxy at 10.0.2.7:39982 to the database at 10.0.3.11:5432.",
        );
        assert_eq!(p.field("event"), Some(&Text("db_connected".into())));
        assert_eq!(p.field("db_connection_id"), Some(&Integer(771)));
        assert_eq!(p.field("proxy_ip"), Some(&Text("10.0.2.7".into())));
        assert_eq!(p.field("proxy_port"), Some(&Integer(39982)));
        assert_eq!(p.field("db_ip"), Some(&Text("10.0.3.11".into())));
        assert_eq!(p.field("db_port"), Some(&Integer(5432)));
        let p = parse(
            "2023-09-06T08:30:01.000Z [ERROR] [proxyEndpoint=default] [clientConnection=9] Proxy authentication with PostgreSQL native password authentication failed for user \"app_user\" with TLS on.",
        );
        assert_eq!(p.level, Level::Error);
        assert_eq!(
            p.field("event"),
            Some(&Text("authentication_failed".into()))
        );
        assert_eq!(p.field("user"), Some(&Text("app_user".into())));
        let p = parse(
            "2023-09-06T08:31:00.000Z [INFO] [proxyEndpoint=default] [clientConnection=9] The client connection closed. Reason: The client chose to close the connection.",
        );
        assert_eq!(p.field("event"), Some(&Text("client_closed".into())));
        assert_eq!(
            p.field("reason"),
            Some(&Text("The client chose to close the connection.".into()))
        );
    }

    #[test]
    fn a_line_without_the_prefix_is_unparsed_not_lost() {
        let line = "ERROR: Credentials couldn't be retrieved for the secret of user app.";
        let p = parse(line);
        assert_eq!(
            p.unparsed,
            Some("the entry does not start with an RDS Proxy timestamp")
        );
        assert_eq!(p.level, Level::Error);
        assert_eq!(
            parse("2023-09-06T08:31:00.000Z [LOUD] x").unparsed,
            Some("unknown level")
        );
        assert_eq!(address("nothing"), None);
        assert_eq!(address("[fd00::1]:5432."), Some(("fd00::1", 5432)));
    }
}
