//! Example custom mapper: the default mapping, with passwords and e-mail addresses redacted
//! from content and text fields, and RDS's own `rdsadmin` audit noise dropped (counted as
//! `dropped-by-mapper` in the summary).
#![cfg(target_family = "wasm")]

wit_bindgen::generate!({ world: "rds-mapper", path: "../../../../wit" });

const MAPPER_NAME: &str = "redact-drop-example";
const MAPPER_VERSION: &str = env!("CARGO_PKG_VERSION");

struct RedactDrop;

fn new_hook() -> RedactDrop {
    RedactDrop
}

/// Replaces the quoted secret after `IDENTIFIED BY` or `PASSWORD` (any case) with `***`. The
/// quote may be `'`, `"`, or escaped (`\'`, as the audit log writes quotes inside SQL).
fn redact_passwords(text: &str) -> String {
    // ASCII lower-casing keeps byte offsets, so indices into `lower` are indices into `text`.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(after) = ["identified by", "password"]
        .iter()
        .filter_map(|k| lower[at..].find(k).map(|i| at + i + k.len()))
        .min()
    {
        let rest = &text[after..];
        let open = after + (rest.len() - rest.trim_start_matches([' ', '=', '(']).len());
        let quote = ["\\'", "\\\"", "'", "\""].into_iter().find(|q| text[open..].starts_with(q));
        match quote.and_then(|q| text[open + q.len()..].find(q).map(|end| (q, open + q.len() + end))) {
            Some((q, close)) => {
                out.push_str(&text[at..open]);
                out.push_str(q);
                out.push_str("***");
                out.push_str(q);
                at = close + q.len();
            }
            None => {
                out.push_str(&text[at..after]);
                at = after;
            }
        }
    }
    out.push_str(&text[at..]);
    out
}

/// Replaces words that look like e-mail addresses with `<email>`.
fn redact_emails(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let core = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        let is_email = core.split_once('@').is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !d.starts_with('.'));
        if is_email {
            out.push_str(&word.replace(core, "<email>"));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || c == '\'' || c == '"' || c == ',' {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn redact(text: &str) -> String {
    redact_emails(&redact_passwords(text))
}

impl rds_mapper::Hook for RedactDrop {
    fn record(&mut self, mut r: rds_mapper::Record) -> Option<rds_mapper::Record> {
        let rdsadmin = matches!(r.field("user"), Some(rds_mapper::FieldValue::Text(u)) if u == "rdsadmin");
        if r.tag("log_type") == Some("audit") && rdsadmin {
            return None;
        }
        r.content = redact(&r.content);
        for (_, value) in r.fields.iter_mut() {
            if let rds_mapper::FieldValue::Text(t) = value {
                *t = redact(t);
            }
        }
        r.set_tag("redacted", "true");
        Some(r)
    }
}

include!("../../../../component/src/wrapper.rs");
