//! SQL insight: which query a record is about, not only which line.
//!
//! Every record whose entry carries a statement gets `query_fingerprint` (the statement with
//! its literals taken out, [`normalize`]), `query_digest` (16 hex digits: XXH3-64 of the
//! fingerprint's UTF-8 bytes, so `printf %s "$fingerprint" | xxhsum -H3` gives it too),
//! `query_command` and `query_tables`, and the fields of a sqlcommenter comment
//! ([`commenter`]). [`redact`] is the mapping config's `sql-literals`.
//!
//! The base is a tokenizer per dialect that never fails ([`lexer`]), not a parser: RDS cuts
//! long statements, and a parser (`sqlparser`) refuses a cut one. Datadog's
//! `libdd-trace-obfuscation` was the other candidate: it builds for wasm32-wasip2, but pulls
//! some 110 crates (an HTTP stack, `nix`, `prost`, `regex`) into a guest that does no I/O,
//! writes only `?`, returns errors on some input, and names neither command nor tables.

pub mod commenter;
mod keywords;
pub mod lexer;
pub mod normalize;
pub mod redact;

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

pub use lexer::Dialect;

use crate::formats::{Format, Parsed};
use crate::record::FieldValue;

/// Statements longer than this are fingerprinted from their first 64 KiB: a multi-megabyte
/// bulk INSERT says all it has to say about its structure by then.
pub const MAX_STATEMENT_BYTES: usize = 64 << 10;

/// The insight of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insight {
    pub fingerprint: String,
    pub digest: Digest,
    pub command: Cow<'static, str>,
    /// The tables as `query_tables` writes them: comma-separated, in order of first
    /// appearance.
    pub tables: String,
    /// sqlcommenter fields: the key, the key as `sql_<key>`, the value.
    pub comment_fields: Vec<(String, String, String)>,
}

/// The insight of `sql`, or `None` when it does not begin with a SQL command.
pub fn insight(sql: &str, dialect: Dialect) -> Option<Insight> {
    let mut end = sql.len().min(MAX_STATEMENT_BYTES);
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    let n = normalize::normalize(&sql[..end], dialect)?;
    Some(Insight {
        digest: digest(&n.fingerprint),
        fingerprint: n.fingerprint,
        command: n.command,
        tables: n.tables,
        comment_fields: n
            .comment_fields
            .into_iter()
            .map(|(k, v)| (format!("sql_{k}"), k, v))
            .map(|(prefixed, k, v)| (k, prefixed, v))
            .collect(),
    })
}

/// A fingerprint's digest: XXH3-64 of its bytes as 16 lowercase hex digits. XXH3's output
/// is fixed by its specification, so a digest is the same in every release (pinned by tests).
pub fn digest(fingerprint: &str) -> Digest {
    let mut hex = [0u8; 16];
    crate::logs::hex16(xxhash_rust::xxh3::xxh3_64(fingerprint.as_bytes()), &mut hex);
    Digest(hex)
}

/// A digest's 16 hex digits, held inline (one allocation fewer per statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest([u8; 16]);

impl Digest {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The dialect of a format's statements, for the formats that carry any.
pub fn dialect_of(format: Format) -> Option<Dialect> {
    Some(match format {
        Format::MysqlSlow | Format::MysqlGeneral | Format::MysqlAudit => Dialect::MySql,
        Format::Postgres => Dialect::Postgres,
        Format::OracleAudit => Dialect::Oracle,
        Format::SqlServerError | Format::SqlServerAgent => Dialect::SqlServer,
        _ => return None,
    })
}

/// The statement of a parsed entry: its `statement` field, or the SQL text Oracle's audit
/// writes as `ACTION` (a statement, not a single word such as `CONNECT`).
pub fn statement<'p>(p: &'p Parsed<'_>) -> Option<&'p str> {
    let text = |key| match p.field(key) {
        Some(FieldValue::Text(t)) => Some(t.as_ref()),
        _ => None,
    };
    text("statement").or_else(|| {
        text("action")
            .filter(|a| p.engine == Some("oracle") && a.trim().contains(char::is_whitespace))
    })
}

impl Insight {
    /// The record fields of this insight. A sqlcommenter key that names a field the record
    /// already has (`has_field`) is written as `sql_<key>`, so a comment from the application
    /// can never replace what the log line said.
    pub fn fields<'i>(
        &'i self,
        has_field: impl Fn(&str) -> bool + 'i,
    ) -> impl Iterator<Item = (&'i str, FieldValue<&'i str>)> + 'i {
        [
            ("query_fingerprint", self.fingerprint.as_str()),
            ("query_digest", self.digest.as_str()),
            ("query_command", self.command.as_ref()),
            ("query_tables", self.tables.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .chain(self.comment_fields.iter().map(move |(k, prefixed, v)| {
            (
                if has_field(k) {
                    prefixed.as_str()
                } else {
                    k.as_str()
                },
                v.as_str(),
            )
        }))
        .map(|(k, v)| (k, FieldValue::Text(v)))
    }
}

/// The insights of the statements one invocation has seen, by statement text: real logs
/// repeat statements word for word (a framework's `SELECT 1`, `SET autocommit=1`, a
/// heartbeat), and a repeated one costs a hash and a comparison instead of a fingerprint and
/// its strings. Bounded: past [`MEMO_BYTES`] of statements it starts over.
#[derive(Debug, Clone, Default)]
pub struct Memo {
    /// XXH3-64 of (dialect, statement) → what was found for it.
    map: HashMap<u64, Remembered, BuildHasherDefault<Prehashed>>,
    bytes: usize,
    /// Off: every statement is fingerprinted anew (the setting `sql_memo=false`).
    off: bool,
}

/// A statement and its insight (`None`: not SQL).
#[derive(Debug, Clone)]
struct Remembered {
    statement: Box<str>,
    dialect: Dialect,
    insight: Option<Rc<Insight>>,
}

/// What a memo may hold of statement text before it starts over.
pub const MEMO_BYTES: usize = 4 << 20;

impl Memo {
    pub fn new(on: bool) -> Memo {
        Memo {
            off: !on,
            ..Memo::default()
        }
    }

    /// The insight of `statement`, from the memo or made now.
    pub fn insight(&mut self, statement: &str, dialect: Dialect) -> Option<Rc<Insight>> {
        if self.off {
            return insight(statement, dialect).map(Rc::new);
        }
        let key = xxhash_rust::xxh3::xxh3_64_with_seed(statement.as_bytes(), dialect as u64);
        if let Some(r) = self.map.get(&key)
            && *r.statement == *statement
            && r.dialect == dialect
        {
            return r.insight.clone();
        }
        let found = insight(statement, dialect).map(Rc::new);
        if self.bytes + statement.len() > MEMO_BYTES {
            self.map.clear();
            self.bytes = 0;
        }
        self.bytes += statement.len();
        self.map.insert(
            key,
            Remembered {
                statement: statement.into(),
                dialect,
                insight: found.clone(),
            },
        );
        found
    }
}

/// The memo's keys are already hashes: the map uses them as they are.
#[derive(Debug, Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memo_gives_the_same_insight_and_keeps_dialects_apart() {
        let mut memo = Memo::new(true);
        let a = memo.insight("SELECT 1", Dialect::MySql).unwrap();
        let b = memo.insight("SELECT 1", Dialect::MySql).unwrap();
        assert!(Rc::ptr_eq(&a, &b), "a repeat comes from the memo");
        let pg = memo.insight("SELECT 1", Dialect::Postgres).unwrap();
        assert_eq!(
            (a.fingerprint.as_str(), pg.fingerprint.as_str()),
            ("SELECT ?", "SELECT $1")
        );
        assert_eq!(memo.insight("Quit", Dialect::MySql), None);
        assert_eq!(
            memo.insight("Quit", Dialect::MySql),
            None,
            "not SQL, remembered"
        );
        let mut off = Memo::new(false);
        let c = off.insight("SELECT 1", Dialect::MySql).unwrap();
        let d = off.insight("SELECT 1", Dialect::MySql).unwrap();
        assert!(!Rc::ptr_eq(&c, &d) && *c == *d, "off: made anew, the same");
    }

    #[test]
    fn the_memo_starts_over_past_its_budget() {
        let mut memo = Memo::new(true);
        let big = format!("SELECT '{}'", "x".repeat(MEMO_BYTES / 2));
        let first = memo.insight(&big, Dialect::MySql).unwrap();
        memo.insight(&format!("{big} "), Dialect::MySql).unwrap();
        assert!(
            memo.bytes <= MEMO_BYTES && memo.map.len() == 1,
            "{}",
            memo.map.len()
        );
        let again = memo.insight(&big, Dialect::MySql).unwrap();
        assert!(!Rc::ptr_eq(&first, &again) && *first == *again);
    }

    #[test]
    fn comment_keys_never_replace_a_field() {
        let i = insight("SELECT 1 /*user='app',controller='x'*/", Dialect::MySql).unwrap();
        let fields: Vec<(&str, &str)> = i
            .fields(|k| k == "user")
            .map(|(k, v)| match v {
                FieldValue::Text(t) => (k, t),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("query_fingerprint", "SELECT ?"),
                ("query_digest", "a3a8f2b7cf2a1b0e"),
                ("query_command", "SELECT"),
                ("sql_user", "app"),
                ("controller", "x"),
            ]
        );
    }
}
