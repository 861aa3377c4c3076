//! Rules without code: the mapping config a user changes instead of writing a mapper. JSON,
//! passed by the host as the `rules` setting (from `MAPPER_CONFIG`):
//!
//! ```json
//! {
//!   "include": {"slowquery": ["orders"]},           // per log type (or "*"): keep only matching
//!   "exclude": {"*": ["rds_heartbeat2", {"fingerprint": "SELECT ?"}],
//!               "audit": ["rdsadmin", {"digest": "8f3c0e9a1b2d4c5e"}]},  // drop matching
//!   "redact": ["passwords", "emails", "ipv4", "sql-literals", {"text": "secret-token", "replace": "***"}],
//!   "tags": {"team": "dba", "env": "prod"},          // added to every record
//!   "levels": [{"log_type": "error", "contains": "Aborted connection", "level": "info"}]
//! }
//! ```
//!
//! A pattern is a plain substring of the record's content, or `{"fingerprint": …}` /
//! `{"digest": …}`, equal to the record's `query_fingerprint` / `query_digest` ([`crate::sql`]);
//! a level rule has one of `contains`, `fingerprint` or `digest`. `sql-literals` replaces
//! every literal of the record's statement, in its fields and its content, failing closed
//! ([`crate::sql::redact`]). The log type is the record's
//! `log_type` tag (`rds-event` for RDS events). Levels: the first matching rule wins. A bad
//! config is refused whole, naming the line and the reason.

use serde::Deserialize;
use serde_json::Map;

use crate::error::MapError;
use crate::level::Level;
use crate::output::LogLevel;
use crate::record::{FieldValue, Record};
use crate::{Hook, redact};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    include: Map<String, serde_json::Value>,
    #[serde(default)]
    exclude: Map<String, serde_json::Value>,
    #[serde(default)]
    redact: Vec<Redaction>,
    #[serde(default)]
    tags: Map<String, serde_json::Value>,
    #[serde(default)]
    levels: Vec<LevelRule>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Redaction {
    Builtin(String),
    Literal {
        text: String,
        #[serde(default = "stars")]
        replace: String,
    },
}

/// What an include/exclude pattern or a level rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// A substring of the content.
    Contains(String),
    /// The record's `query_fingerprint`, whole.
    Fingerprint(String),
    /// The record's `query_digest`.
    Digest(String),
}

impl Pattern {
    fn matches(&self, r: &Record) -> bool {
        let field = |key| match r.field(key) {
            Some(FieldValue::Text(t)) => Some(t.as_str()),
            _ => None,
        };
        match self {
            Pattern::Contains(p) => r.content.contains(p.as_str()),
            Pattern::Fingerprint(f) => field("query_fingerprint") == Some(f.as_str()),
            Pattern::Digest(d) => field("query_digest") == Some(d.as_str()),
        }
    }

    /// A pattern from the config: a string, or an object with one of `fingerprint`,
    /// `digest`, `contains`. `at` names it in errors.
    fn from_json(v: serde_json::Value, at: &str) -> Result<Pattern, MapError> {
        let pattern = match v {
            serde_json::Value::String(s) => Pattern::Contains(s),
            serde_json::Value::Object(o) if o.len() == 1 => {
                let (k, v) = o
                    .into_iter()
                    .next()
                    .ok_or_else(|| bad(format!("{at} is empty")))?;
                let serde_json::Value::String(v) = v else {
                    return Err(bad(format!("{at}.{k} must be a string")));
                };
                match k.as_str() {
                    "contains" => Pattern::Contains(v),
                    "fingerprint" => Pattern::Fingerprint(v),
                    "digest"
                        if v.len() == 16
                            && v.bytes()
                                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) =>
                    {
                        Pattern::Digest(v)
                    }
                    "digest" => {
                        return Err(bad(format!(
                            "{at}.digest {v:?} is not 16 lowercase hex digits"
                        )));
                    }
                    other => {
                        return Err(bad(format!(
                            "{at} has unknown key {other:?} (known: contains, fingerprint, digest)"
                        )));
                    }
                }
            }
            _ => {
                return Err(bad(format!(
                    "{at} must be a string or one of {{\"contains\"|\"fingerprint\"|\"digest\": string}}"
                )));
            }
        };
        if matches!(&pattern, Pattern::Contains(p) | Pattern::Fingerprint(p) if p.is_empty()) {
            return Err(bad(format!(
                "{at} has an empty pattern (it would match everything)"
            )));
        }
        Ok(pattern)
    }
}

fn stars() -> String {
    "***".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelRule {
    #[serde(default)]
    log_type: Option<String>,
    #[serde(default)]
    contains: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    level: String,
}

enum Redactor {
    SqlLiterals,
    Passwords,
    Emails,
    Ipv4,
    Literal(String, String),
}

/// Validated rules, ready to apply as a [`Hook`].
pub struct Rules {
    include: Vec<(String, Vec<Pattern>)>,
    exclude: Vec<(String, Vec<Pattern>)>,
    redact: Vec<Redactor>,
    tags: Vec<(String, String)>,
    levels: Vec<(Option<String>, Pattern, Level)>,
}

fn bad(msg: impl std::fmt::Display) -> MapError {
    MapError::Config(format!("rules: {msg}"))
}

fn patterns(
    section: &str,
    map: Map<String, serde_json::Value>,
) -> Result<Vec<(String, Vec<Pattern>)>, MapError> {
    map.into_iter()
        .map(|(log_type, v)| {
            let serde_json::Value::Array(list) = v else {
                return Err(bad(format!(
                    "{section}.{log_type} must be a list of patterns"
                )));
            };
            let list = list
                .into_iter()
                .enumerate()
                .map(|(i, p)| Pattern::from_json(p, &format!("{section}.{log_type}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((log_type, list))
        })
        .collect()
}

impl Rules {
    /// Parses and validates a mapping config; the error names the line and the reason.
    pub fn parse(text: &str) -> Result<Rules, MapError> {
        let file: RulesFile = serde_json::from_str(text).map_err(|e| {
            let what = e.to_string();
            let what = what.split(" at line ").next().unwrap_or(&what).to_owned();
            bad(format!("line {} column {}: {what}", e.line(), e.column()))
        })?;
        let redact = file
            .redact
            .into_iter()
            .map(|r| match r {
                Redaction::Builtin(name) => match name.as_str() {
                    "sql-literals" => Ok(Redactor::SqlLiterals),
                    "passwords" => Ok(Redactor::Passwords),
                    "emails" => Ok(Redactor::Emails),
                    "ipv4" => Ok(Redactor::Ipv4),
                    other => Err(bad(format!("unknown redaction {other:?} (known: sql-literals, passwords, emails, ipv4, or {{\"text\": …}})"))),
                },
                Redaction::Literal { text, .. } if text.is_empty() => Err(bad("a redaction text is empty")),
                Redaction::Literal { text, replace } => Ok(Redactor::Literal(text, replace)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tags = file
            .tags
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                _ => Err(bad(format!("tags.{k} must be a string"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let levels = file
            .levels
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let level = Level::parse(&r.level)
                    .ok_or_else(|| bad(format!("levels[{i}].level {:?} is not one of critical, error, warning, notice, info, debug", r.level)))?;
                let at = format!("levels[{i}]");
                let pattern = match (r.contains, r.fingerprint, r.digest) {
                    (Some(c), None, None) => Pattern::from_json(c.into(), &at)?,
                    (None, Some(f), None) => Pattern::from_json(serde_json::json!({"fingerprint": f}), &at)?,
                    (None, None, Some(d)) => Pattern::from_json(serde_json::json!({"digest": d}), &at)?,
                    _ => return Err(bad(format!("{at} needs exactly one of contains, fingerprint, digest"))),
                };
                Ok((r.log_type, pattern, level))
            })
            .collect::<Result<Vec<_>, MapError>>()?;
        Ok(Rules {
            include: patterns("include", file.include)?,
            exclude: patterns("exclude", file.exclude)?,
            redact,
            tags,
            levels,
        })
    }

    fn redact_text(&self, text: &str) -> String {
        let mut t = text.to_owned();
        for r in &self.redact {
            t = match r {
                // Applied to the whole record first (`Hook::record`).
                Redactor::SqlLiterals => t,
                Redactor::Passwords => redact::passwords(&t),
                Redactor::Emails => redact::emails(&t),
                Redactor::Ipv4 => redact::ipv4(&t),
                Redactor::Literal(find, replace) => t.replace(find.as_str(), replace),
            };
        }
        t
    }
}

fn matching<'r>(
    rules: &'r [(String, Vec<Pattern>)],
    log_type: &str,
) -> impl Iterator<Item = &'r Pattern> {
    rules
        .iter()
        .filter(move |(t, _)| t == "*" || t == log_type)
        .flat_map(|(_, patterns)| patterns.iter())
}

impl Hook for Rules {
    fn record(&mut self, mut r: Record) -> Option<Record> {
        let log_type = r.tag("log_type").unwrap_or("rds-event").to_owned();
        let mut include = matching(&self.include, &log_type).peekable();
        if include.peek().is_some() && !include.any(|p| p.matches(&r)) {
            return None;
        }
        if matching(&self.exclude, &log_type).any(|p| p.matches(&r)) {
            return None;
        }
        if self
            .redact
            .iter()
            .any(|r| matches!(r, Redactor::SqlLiterals))
        {
            crate::sql::redact::record(&mut r);
        }
        if !self.redact.is_empty() {
            r.content = self.redact_text(&r.content);
            for (_, v) in r.fields.iter_mut() {
                if let FieldValue::Text(t) = v {
                    *t = self.redact_text(t);
                }
            }
        }
        for (k, v) in &self.tags {
            r.set_tag(k.clone(), v.clone());
        }
        if let Some((_, _, level)) = self.levels.iter().find(|(t, pattern, _)| {
            t.as_deref().is_none_or(|t| t == log_type) && pattern.matches(&r)
        }) {
            r.set_tag("level", level.as_str());
        }
        Some(r)
    }
}

/// The rules in an invocation's settings (`rules`), if any.
pub fn from_settings(settings: &[(String, String)]) -> Result<Option<Rules>, MapError> {
    match settings.iter().rev().find(|(k, _)| k == "rules") {
        Some((_, text)) if !text.trim().is_empty() => Rules::parse(text).map(Some),
        _ => Ok(None),
    }
}

/// Logged once per invocation that runs rules, so a user sees they are in force.
pub fn describe(rules: &Rules) -> (LogLevel, String) {
    (
        LogLevel::Debug,
        format!(
            "mapping rules: {} include, {} exclude, {} redactions, {} tags, {} level rules",
            rules.include.len(),
            rules.exclude.len(),
            rules.redact.len(),
            rules.tags.len(),
            rules.levels.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(log_type: &str, content: &str) -> Record {
        let mut r = Record::new("#RDS_LOG", 1, content.to_owned());
        r.set_tag("log_type", log_type.to_owned());
        r.set_tag("level", "info");
        r.set_field("statement", FieldValue::Text(content.to_owned()));
        r
    }

    const RULES: &str = r#"{
        "include": {"slowquery": ["orders"]},
        "exclude": {"*": ["rds_heartbeat2"], "audit": ["rdsadmin"]},
        "redact": ["passwords", "emails", "ipv4", {"text": "tok-123"}],
        "tags": {"team": "dba"},
        "levels": [{"log_type": "error", "contains": "Aborted connection", "level": "info"},
                   {"contains": "deadlock", "level": "critical"}]
    }"#;

    #[test]
    fn include_exclude_redact_tags_levels() {
        let mut rules = Rules::parse(RULES).unwrap();
        assert!(
            rules
                .record(rec("slowquery", "select * from users"))
                .is_none(),
            "not included"
        );
        assert!(
            rules
                .record(rec("slowquery", "select * from orders"))
                .is_some()
        );
        assert!(
            rules
                .record(rec("error", "INSERT INTO mysql.rds_heartbeat2"))
                .is_none(),
            "excluded everywhere"
        );
        assert!(rules.record(rec("audit", "rdsadmin,localhost")).is_none());
        assert!(
            rules
                .record(rec("error", "rdsadmin is fine here"))
                .is_some()
        );
        let r = rules
            .record(rec(
                "general",
                "IDENTIFIED BY 'hunter2' jane@example.com 10.0.0.1 tok-123",
            ))
            .unwrap();
        assert_eq!(r.content, "IDENTIFIED BY '***' <email> <ip> ***");
        assert_eq!(
            r.field("statement"),
            Some(&FieldValue::Text(
                "IDENTIFIED BY '***' <email> <ip> ***".into()
            ))
        );
        assert_eq!(r.tag("team"), Some("dba"));
        let r = rules.record(rec("error", "Aborted connection 7")).unwrap();
        assert_eq!(r.tag("level"), Some("info"));
        let r = rules
            .record(rec("postgresql", "deadlock detected"))
            .unwrap();
        assert_eq!(r.tag("level"), Some("critical"));
    }

    /// A record as the default mapping makes it from a MySQL general log `Query` line.
    fn query(sql: &str) -> Record {
        let mut r = rec("general", &format!("2024-01-03T08:00:01Z\t7 Query\t{sql}"));
        r.set_tag("engine", "mysql");
        r.set_field("statement", FieldValue::Text(sql.to_owned()));
        let i = crate::sql::insight(sql, crate::sql::Dialect::MySql).unwrap();
        r.set_field("query_fingerprint", FieldValue::Text(i.fingerprint));
        r.set_field("query_digest", FieldValue::Text(i.digest.to_string()));
        r
    }

    #[test]
    fn fingerprint_and_digest_patterns_and_sql_literals() {
        let digest = crate::sql::insight("SELECT 1", crate::sql::Dialect::MySql)
            .unwrap()
            .digest
            .to_string();
        let mut rules = Rules::parse(&format!(
            r#"{{"exclude": {{"*": [{{"fingerprint": "SELECT ?"}}], "general": [{{"digest": "{digest}"}}]}},
                "redact": ["sql-literals"],
                "levels": [{{"fingerprint": "SELECT sleep(?)", "level": "warning"}}]}}"#
        ))
        .unwrap();
        assert!(
            rules.record(query("select 42")).is_none(),
            "the health check is dropped"
        );
        assert!(rules.record(query("SELECT   'x'")).is_none());
        let r = rules
            .record(query("select sleep(2) from t where name = 'bob'"))
            .unwrap();
        assert_eq!(
            r.tag("level"),
            Some("info"),
            "another fingerprint: no level rule"
        );
        assert_eq!(
            r.content,
            "2024-01-03T08:00:01Z\t7 Query\tselect sleep(?) from t where name = ?"
        );
        let r = rules.record(query("SELECT sleep(5)")).unwrap();
        assert_eq!(r.tag("level"), Some("warning"));
        assert_eq!(
            r.field("statement"),
            Some(&FieldValue::Text("SELECT sleep(?)".into()))
        );
        let e = Rules::parse(r#"{"exclude": {"*": [{"digest": "XYZ"}]}}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.ends_with("exclude.*[0].digest \"XYZ\" is not 16 lowercase hex digits"),
            "{e}"
        );
        let e = Rules::parse(
            r#"{"levels": [{"contains": "a", "digest": "0123456789abcdef", "level": "info"}]}"#,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.ends_with("levels[0] needs exactly one of contains, fingerprint, digest"),
            "{e}"
        );
        let e = Rules::parse(r#"{"include": {"*": [{"regex": "a"}]}}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("unknown key \"regex\""), "{e}");
    }

    #[test]
    fn bad_configs_are_refused_with_line_and_reason() {
        let e = Rules::parse("{\n  \"incluude\": {}\n}")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with(
                "invalid mapper configuration: rules: line 2 column 12: unknown field `incluude`"
            ),
            "{e}"
        );
        let e = Rules::parse("{\"redact\": [\"ssn\"]}")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            "invalid mapper configuration: rules: unknown redaction \"ssn\" (known: sql-literals, passwords, emails, ipv4, or {\"text\": …})"
        );
        let e = Rules::parse("{\"levels\": [{\"contains\": \"x\", \"level\": \"loud\"}]}")
            .err()
            .unwrap()
            .to_string();
        assert!(e.ends_with("levels[0].level \"loud\" is not one of critical, error, warning, notice, info, debug"), "{e}");
        let e = Rules::parse("{\"exclude\": {\"*\": [\"\"]}}")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("empty pattern"), "{e}");
        let e = Rules::parse("{\"tags\": {\"n\": 1}}")
            .err()
            .unwrap()
            .to_string();
        assert!(e.ends_with("tags.n must be a string"), "{e}");
        let e = Rules::parse("not json").err().unwrap().to_string();
        assert!(
            e.starts_with("invalid mapper configuration: rules: line 1 column 2: expected ident"),
            "{e}"
        );
    }
}
