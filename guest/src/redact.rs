//! Redaction of secrets and personal data in log text: what the mapping config's `redact`
//! list and custom mappers use. Plain scanners (no regex) so they stay small in the guest.

/// Replaces the quoted secret after `IDENTIFIED BY` or `PASSWORD` (any case) with `***`. The
/// quote may be `'`, `"`, or escaped (`\'`, as the audit log writes quotes inside SQL).
pub fn passwords(text: &str) -> String {
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
        let quote = ["\\'", "\\\"", "'", "\""]
            .into_iter()
            .find(|q| text[open..].starts_with(q));
        match quote.and_then(|q| {
            text[open + q.len()..]
                .find(q)
                .map(|end| (q, open + q.len() + end))
        }) {
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

/// Rewrites each word for which `matches` holds (the word less surrounding punctuation) as
/// `replacement`; words are split at whitespace, quotes and commas.
fn words(text: &str, matches: impl Fn(&str) -> bool, replacement: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let core = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        if !core.is_empty() && matches(core) {
            out.push_str(&word.replacen(core, replacement, 1));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '\'' | '"' | ',' | '(' | ')' | '[' | ']') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Replaces e-mail addresses with `<email>`.
pub fn emails(text: &str) -> String {
    words(
        text,
        |w| {
            w.split_once('@')
                .is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !d.starts_with('.'))
        },
        "<email>",
    )
}

/// Replaces dotted IPv4 addresses with `<ip>`.
pub fn ipv4(text: &str) -> String {
    words(
        text,
        |w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 4
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok())
        },
        "<ip>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_sql_any_quote() {
        assert_eq!(
            passwords("CREATE USER 'bob'@'%' IDENTIFIED BY 'hunter2'"),
            "CREATE USER 'bob'@'%' IDENTIFIED BY '***'"
        );
        assert_eq!(
            passwords(r"IDENTIFIED BY \'s3cret\',0"),
            r"IDENTIFIED BY \'***\',0"
        );
        assert_eq!(
            passwords("SET PASSWORD = \"x y\"; password('z')"),
            "SET PASSWORD = \"***\"; password('***')"
        );
        assert_eq!(
            passwords("password authentication failed"),
            "password authentication failed"
        );
        assert_eq!(passwords("no secrets"), "no secrets");
    }

    #[test]
    fn emails_and_ips() {
        assert_eq!(
            emails("to 'jane.doe@example.com', x@y"),
            "to '<email>', x@y"
        );
        assert_eq!(
            ipv4("host: '10.0.3.7' (port 5432), 1.2.3.256, v1.2.3"),
            "host: '<ip>' (port 5432), 1.2.3.256, v1.2.3"
        );
        assert_eq!(ipv4("[CLIENT: 213.252.232.134]"), "[CLIENT: <ip>]");
    }
}
