//! sqlcommenter trace context: `/*traceparent='00-<trace>-<span>-01',controller='index'*/`.
//!
//! Applications (OpenTelemetry, Django, Rails, Spring, …) put this comment on the statements
//! they run, so a slow query in the database's log names the request that ran it. The format
//! (google.github.io/sqlcommenter/spec): `key='value'` pairs separated by commas, keys and
//! values URL-encoded, a `'` inside a value escaped as `\'`. A W3C `traceparent` becomes
//! `trace_id`, `span_id` and `trace_flags`; every other key is kept under its own name.

/// At most this many keys of one comment become fields; a comment with more is not taken
/// for sqlcommenter (it is the application's text, not a trace context).
const MAX_KEYS: usize = 16;
/// Longest key and value taken.
const MAX_KEY: usize = 64;
const MAX_VALUE: usize = 512;

/// The fields of a block comment (`/* … */`, markers included) if it is a sqlcommenter
/// comment: every part a `key='value'` pair.
pub fn parse(comment: &str) -> Option<Vec<(String, String)>> {
    let body = comment.strip_prefix("/*")?.strip_suffix("*/")?.trim();
    let mut fields = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("='")?;
        let key = decode(key.trim())?;
        let (value, after) = quoted_value(after)?;
        if key.is_empty() || key.len() > MAX_KEY || value.len() > MAX_VALUE {
            return None;
        }
        fields.push((key, decode(&value)?));
        if fields.len() > MAX_KEYS {
            return None;
        }
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return None,
        }
    }
    if fields.is_empty() {
        return None;
    }
    Some(expand(fields))
}

/// The value up to its closing quote (`\'` is a quote inside), and the text after it.
fn quoted_value(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '\'' => return Some((value, &s[i + 1..])),
            c => value.push(c),
        }
    }
    None
}

/// Percent-decoding; `None` when the result is not UTF-8.
fn decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Field names: a valid `traceparent` as its three parts; other keys lower-cased, with any
/// character other than a letter, digit or `_` as `_`.
fn expand(fields: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(fields.len() + 2);
    for (key, value) in fields {
        if key == "traceparent"
            && let Some([trace, span, flags]) = traceparent(&value)
        {
            out.push(("trace_id".to_owned(), trace.to_owned()));
            out.push(("span_id".to_owned(), span.to_owned()));
            out.push(("trace_flags".to_owned(), flags.to_owned()));
            continue;
        }
        let name = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        out.push((name, value));
    }
    out
}

/// W3C trace context `version-traceid-spanid-flags`, as 2, 32, 16 and 2 lowercase hex
/// digits; an all-zero trace or span id is invalid.
fn traceparent(value: &str) -> Option<[&str; 3]> {
    let mut parts = value.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    let zero = |s: &str| s.bytes().all(|c| c == b'0');
    (hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && !zero(trace)
        && !zero(span)
        && (version != "00" || parts.next().is_none()))
    .then_some([trace, span, flags])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_spec_example() {
        // From the sqlcommenter specification's worked example.
        let c = "/*action='%2Fparam*d',controller='index',framework='spring',\
                 traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01',\
                 tracestate='congo%3Dt61rcWkgMzE%2Crojo%3D00f067aa0ba902b7'*/";
        assert_eq!(
            parse(c).unwrap(),
            pairs(&[
                ("action", "/param*d"),
                ("controller", "index"),
                ("framework", "spring"),
                ("trace_id", "5bd66ef5095369c7b0d1f8f4bd33716a"),
                ("span_id", "c532cb4098ac3dd2"),
                ("trace_flags", "01"),
                ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
            ])
        );
    }

    #[test]
    fn escapes_odd_keys_and_bad_traceparents() {
        assert_eq!(
            parse(r"/* route='/it\'s', Db-Driver='pg' */").unwrap(),
            pairs(&[("route", "/it's"), ("db_driver", "pg")])
        );
        // An invalid traceparent stays whole under its own name.
        assert_eq!(
            parse("/*traceparent='00-0000-1-01'*/").unwrap(),
            pairs(&[("traceparent", "00-0000-1-01")])
        );
        assert_eq!(
            parse("/*traceparent='00-00000000000000000000000000000000-c532cb4098ac3dd2-01'*/")
                .unwrap()[0]
                .0,
            "traceparent"
        );
    }

    #[test]
    fn ordinary_comments_are_not_taken() {
        for c in [
            "/* just a note */",
            "/**/",
            "/* a='1' b='2' */",
            "/* a='unterminated */",
            "/* ApplicationName=DBeaver 21.0.0 - Main */",
            "/*+ INDEX(t i) */",
        ] {
            assert_eq!(parse(c), None, "{c}");
        }
    }
}
