//! CloudWatch Logs events to `#RDS_LOG` records.
//!
//! Each entry's record is read in place from its parse ([`RecordParts`]) and handed to an
//! [`Emit`]: the default mapping packs it for the host as it is, so a record costs no
//! allocation; a custom mapper's hook gets it as a [`Record`].

use crate::awslogs::{LogData, LogEvent};
use crate::error::MapError;
use crate::formats::{Value, parse_entries};
use crate::log_source::{LogGroup, instance_from_stream};
use std::borrow::Cow;
use std::sync::Arc;

use crate::record::{CATEGORY_LOG, FieldRef, FieldValue, Record, RecordParts, Tags, Text};

/// Where mapped records go, one at a time, read in place.
pub trait Emit {
    fn emit(&mut self, record: &impl RecordParts) -> Result<(), MapError>;
}

/// Records collected as [`Record`]s; for tests.
impl Emit for Vec<Record> {
    fn emit(&mut self, record: &impl RecordParts) -> Result<(), MapError> {
        self.push(record.to_record());
        Ok(())
    }
}

/// Tags shared by every record of one payload (one log stream), computed once and shared by
/// the records, not copied into each.
#[derive(Debug, Clone)]
pub struct StreamTags {
    tags: Arc<Tags>,
    /// The log type from the group name, for choosing a parser.
    pub log_type: String,
    /// [`record_id`]'s state after the log group and stream.
    id_seed: RecordId,
    /// Whether records carry the CloudWatch event id (`cw_event_id`); see
    /// [`with_event_ids`](Self::with_event_ids).
    event_ids: bool,
    /// Entries that carry a statement get its SQL insight, from this memo of the payload's
    /// statements (`None`: SQL insight is off).
    sql: Option<std::cell::RefCell<crate::sql::Memo>>,
    /// The stream is Enhanced Monitoring's (`RDSOSMetrics`): JSON documents, not log lines.
    os_metrics: bool,
    /// The stream is a Multi-AZ standby's (its name ends in `-secondary`).
    standby: bool,
}

impl StreamTags {
    pub fn new(data: &LogData<'_>) -> StreamTags {
        let group = LogGroup::parse(&data.log_group);
        let owned = |s: &str| -> Text { Cow::Owned(s.to_owned()) };
        let mut tags: Tags = vec![
            ("logGroup".into(), owned(&data.log_group)),
            ("logStream".into(), owned(&data.log_stream)),
        ];
        if let Some(id) = group.db_identifier {
            tags.push(("db_identifier".into(), owned(id)));
            if group.scope == crate::log_source::Scope::Proxy {
                tags.push(("proxy_name".into(), owned(id)));
            }
        }
        tags.push(("scope".into(), group.scope.as_str().into()));
        tags.push(("log_type".into(), owned(group.log_type)));
        tags.push((
            "instance".into(),
            owned(instance_from_stream(&data.log_stream)),
        ));
        tags.push(("account".into(), owned(&data.owner)));
        if let Some(policy) = &data.policy_level {
            tags.push(("policy_level".into(), owned(policy)));
        }
        StreamTags {
            tags: Arc::new(tags),
            log_type: group.log_type.to_owned(),
            id_seed: RecordId::new().part(&data.log_group).part(&data.log_stream),
            event_ids: false,
            sql: Some(Default::default()),
            os_metrics: data.log_group.as_ref() == crate::os_metrics::LOG_GROUP,
            standby: data.log_stream.ends_with("-secondary"),
        }
    }

    /// Adds the CloudWatch event id to every record as the field `cw_event_id` (the setting
    /// `cw_event_id=true`). Off by default: `record_id` already tells a redelivered record
    /// (it hashes the event id), while the 56 digits of the event id, unique per event, were
    /// the record's most costly bytes on the wire after its content.
    pub fn with_event_ids(mut self, on: bool) -> StreamTags {
        self.event_ids = on;
        self
    }

    /// Whether entries that carry a statement get its SQL insight (the setting `sql_insight`,
    /// on by default), and whether repeated statements are looked up in a memo (`sql_memo`,
    /// on by default; off, every statement is fingerprinted anew).
    pub fn with_sql_insight(mut self, on: bool, memo: bool) -> StreamTags {
        self.sql = on.then(|| std::cell::RefCell::new(crate::sql::Memo::new(memo)));
        self
    }

    /// Emits the records of one log event: one per entry in its message, each with the
    /// entry's text kept whole and the fields its format's parser read.
    ///
    /// An entry whose content exceeds `max_content_bytes` is split into parts (at character
    /// boundaries) that carry `part`, `parts` and `original_length`; the number of entries
    /// split is returned. Every record gets a `record_id` from log group, stream, CloudWatch
    /// event id and entry position: a redelivered event gives the same ids.
    pub fn records(
        &self,
        event: &LogEvent<'_>,
        max_content_bytes: usize,
        out: &mut impl Emit,
    ) -> Result<u32, MapError> {
        let mut split = 0;
        let (message, repaired) = event.message_checked();
        let message: &str = &message;
        if self.os_metrics {
            return self.os_metrics_records(event, message, repaired, max_content_bytes, out);
        }
        let (format, entries) = parse_entries(&self.log_type, message);
        let several = entries.len() > 1;
        let event_seed = self.id_seed.part(&event.id);
        let dialect = format.and_then(crate::sql::dialect_of);
        for (i, entry) in entries.iter().enumerate() {
            let parsed = &entry.parsed;
            let sql = match (&self.sql, dialect) {
                (Some(memo), Some(dialect)) => crate::sql::statement(parsed)
                    .and_then(|s| memo.borrow_mut().insight(s, dialect)),
                _ => None,
            };
            let line = i as i64 + 1;
            let mut digits = [0u8; 20];
            let mut hex = [0u8; 16];
            let record = EntryRecord {
                stream: &self.tags,
                // The entry's own time when it says more than CloudWatch's (a fraction of a
                // second, or one of several entries sharing one CloudWatch timestamp).
                time: match parsed.time_ms {
                    Some(t) if parsed.precise || several => t,
                    _ => event.timestamp,
                },
                line,
                content: if several { entry.text } else { message },
                engine: parsed.engine,
                level: parsed.level.as_str(),
                parse_error: parsed.unparsed,
                repaired,
                parsed: &parsed.fields,
                sql: sql.as_deref(),
                cw_event_id: self.event_ids.then_some(&*event.id),
                record_id: event_seed
                    .part(decimal(line as u64, &mut digits))
                    .hex(&mut hex),
            };
            if record.content.len() > max_content_bytes {
                split += 1;
                emit_parts(&record, max_content_bytes, out)?;
            } else {
                out.emit(&record)?;
            }
        }
        Ok(split)
    }
}

impl StreamTags {
    /// The records of an Enhanced Monitoring event ([`crate::os_metrics`]): built whole, as
    /// they are few and small, and then treated as every record is (ids, repair, splitting).
    fn os_metrics_records(
        &self,
        event: &LogEvent<'_>,
        message: &str,
        repaired: bool,
        max_content_bytes: usize,
        out: &mut impl Emit,
    ) -> Result<u32, MapError> {
        let seed = self.id_seed.part(&event.id);
        let id = |line: usize| {
            let mut digits = [0u8; 20];
            seed.part(decimal(line as u64, &mut digits)).finish()
        };
        let mut split = 0;
        let records =
            crate::os_metrics::records(message, &self.tags, self.standby, event.timestamp, &id);
        for mut r in records {
            if repaired {
                r.set_tag("parse_status", "repaired");
                r.set_field(
                    "parse_error",
                    FieldValue::Text(crate::escapes::REPAIRED_ESCAPE.to_owned()),
                );
            }
            if self.event_ids {
                r.set_field("cw_event_id", FieldValue::Text(event.id.to_string()));
            }
            if r.content.len() > max_content_bytes {
                split += 1;
                emit_parts(&r, max_content_bytes, out)?;
            } else {
                out.emit(&r)?;
            }
        }
        Ok(split)
    }
}

/// One entry's record, read in place from its parse and its event.
struct EntryRecord<'r> {
    stream: &'r Arc<Tags>,
    time: i64,
    line: i64,
    content: &'r str,
    engine: Option<&'static str>,
    level: &'static str,
    /// Why the entry matched no known shape (`parse_status` unparsed, field `parse_error`).
    parse_error: Option<&'static str>,
    /// The message held an escape no text can hold, now U+FFFD (`parse_status` repaired).
    repaired: bool,
    parsed: &'r [(Text, Value<'r>)],
    /// The SQL insight of the entry's statement.
    sql: Option<&'r crate::sql::Insight>,
    /// A field, not a tag: it is unique per event, and WhaTap indexes tags (a unique tag also
    /// makes every record's tag map, and its hash, different). Only when asked for.
    cw_event_id: Option<&'r str>,
    record_id: &'r str,
}

impl EntryRecord<'_> {
    /// Whether the parse gave a field of this name.
    fn has_field(&self, key: &str) -> bool {
        self.parsed.iter().any(|(k, _)| k == key)
    }

    fn status(&self) -> &'static str {
        if self.parse_error.is_some() {
            "unparsed"
        } else if self.repaired {
            "repaired"
        } else {
            "parsed"
        }
    }

    /// What the `parse_error` field says: why the entry is unparsed, or what was repaired.
    fn problem(&self) -> Option<&'static str> {
        self.parse_error
            .or(self.repaired.then_some(crate::escapes::REPAIRED_ESCAPE))
    }
}

impl RecordParts for EntryRecord<'_> {
    fn category(&self) -> &str {
        CATEGORY_LOG
    }

    fn time(&self) -> i64 {
        self.time
    }

    fn line(&self) -> i64 {
        self.line
    }

    fn content(&self) -> &str {
        self.content
    }

    fn stream_tags(&self) -> &Arc<Tags> {
        self.stream
    }

    fn tags(&self) -> impl Iterator<Item = (&str, &str)> {
        self.engine
            .map(|e| ("engine", e))
            .into_iter()
            .chain([("level", self.level), ("parse_status", self.status())])
    }

    fn fields(&self) -> impl Iterator<Item = (&str, FieldRef<'_>)> {
        self.parsed
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_field_ref()))
            .chain(
                self.sql
                    .into_iter()
                    .flat_map(|i| i.fields(|k| self.has_field(k))),
            )
            .chain(self.problem().map(|e| ("parse_error", FieldValue::Text(e))))
            .chain(
                self.cw_event_id
                    .map(|id| ("cw_event_id", FieldValue::Text(id))),
            )
            .chain([("record_id", FieldValue::Text(self.record_id))])
    }

    fn to_record(&self) -> Record {
        let mut r = Record::new(CATEGORY_LOG, self.time, self.content.to_owned());
        r.line = self.line;
        r.stream_tags = Arc::clone(self.stream);
        r.tags.reserve(3);
        if let Some(engine) = self.engine {
            r.tags.push(("engine".into(), engine.into()));
        }
        r.tags.push(("level".into(), self.level.into()));
        r.tags.push(("parse_status".into(), self.status().into()));
        r.fields.reserve(self.parsed.len() + 3);
        r.fields.extend(
            self.parsed
                .iter()
                .map(|(k, v)| (k.clone(), v.to_owned_value())),
        );
        if let Some(i) = self.sql {
            r.fields.extend(
                i.fields(|k| self.has_field(k))
                    .map(|(k, v)| (Text::Owned(k.to_owned()), v.to_owned_value())),
            );
        }
        if let Some(reason) = self.problem() {
            r.fields
                .push(("parse_error".into(), FieldValue::Text(reason.to_owned())));
        }
        if let Some(id) = self.cw_event_id {
            r.fields
                .push(("cw_event_id".into(), FieldValue::Text(id.to_owned())));
        }
        r.fields.push((
            "record_id".into(),
            FieldValue::Text(self.record_id.to_owned()),
        ));
        r
    }
}

/// A stable id for a record: a 64-bit hash of its identifying parts. Enough to recognise a
/// redelivered record; not a security hash.
pub fn record_id(parts: &[&str]) -> String {
    parts
        .iter()
        .fold(RecordId::new(), |h, p| h.part(p))
        .finish()
}

/// [`record_id`] built part by part, so that the parts every record of a stream shares are
/// hashed once per stream, not once per record. Each part is hashed with XXH3-64 seeded with
/// the hash of the parts before it, so part boundaries count (`ab`,`c` ≠ `a`,`bc`). XXH3 takes
/// eight bytes a step; FNV-1a, a byte a step, had been a twentieth of the whole mapping.
#[derive(Debug, Clone, Copy)]
pub struct RecordId(u64);

impl RecordId {
    pub fn new() -> RecordId {
        RecordId(0)
    }

    pub fn part(self, part: &str) -> RecordId {
        RecordId(xxhash_rust::xxh3::xxh3_64_with_seed(
            part.as_bytes(),
            self.0,
        ))
    }

    /// Sixteen lowercase hex digits.
    pub fn finish(self) -> String {
        self.hex(&mut [0; 16]).to_owned()
    }

    /// [`finish`](Self::finish), written into `buf` (by hand, with no allocation: `format!`
    /// is slow in the guest, and this runs for every record).
    pub fn hex(self, buf: &mut [u8; 16]) -> &str {
        hex16(self.0, buf)
    }
}

impl Default for RecordId {
    fn default() -> Self {
        RecordId::new()
    }
}

/// `n` as sixteen lowercase hex digits, written into `buf`: record ids and SQL digests.
pub fn hex16(n: u64, buf: &mut [u8; 16]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, digit) in buf.iter_mut().enumerate() {
        *digit = HEX[(n >> ((15 - i) * 4)) as usize & 0xf];
    }
    std::str::from_utf8(buf).unwrap_or("")
}

/// `n` in decimal, written into `buf` (no allocation: this runs once per record, and for a
/// PostgreSQL fingerprint's `$n`).
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).unwrap_or("0")
}

/// Emits `r` as parts of at most `max` content bytes each, cut at character boundaries. The
/// first part keeps the parsed fields; every part names its place, and keeps what identifies
/// the entry.
fn emit_parts(r: &impl RecordParts, max: usize, out: &mut impl Emit) -> Result<(), MapError> {
    let content = r.content();
    let pieces = pieces(content, max.max(4));
    for (i, piece) in pieces.iter().enumerate() {
        out.emit(&Part {
            whole: r,
            piece,
            index: i,
            parts: pieces.len(),
        })?;
    }
    Ok(())
}

/// `content` cut into pieces of at most `max` bytes, at character boundaries.
fn pieces(content: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::with_capacity(content.len().div_ceil(max));
    let mut rest = content;
    while !rest.is_empty() {
        let mut cut = rest.len().min(max);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    pieces
}

/// One part of a record split for its size.
struct Part<'p, R> {
    whole: &'p R,
    piece: &'p str,
    index: usize,
    parts: usize,
}

impl<R: RecordParts> Part<'_, R> {
    /// What a part other than the first keeps of the entry's fields: what identifies it.
    fn kept(&self, key: &str) -> bool {
        self.index == 0 || key == "record_id" || key == "cw_event_id"
    }

    fn place(&self) -> [(&'static str, i64); 3] {
        [
            ("part", self.index as i64 + 1),
            ("parts", self.parts as i64),
            ("original_length", self.whole.content().len() as i64),
        ]
    }
}

impl<R: RecordParts> RecordParts for Part<'_, R> {
    fn category(&self) -> &str {
        self.whole.category()
    }

    fn time(&self) -> i64 {
        self.whole.time()
    }

    fn line(&self) -> i64 {
        self.whole.line()
    }

    fn content(&self) -> &str {
        self.piece
    }

    fn stream_tags(&self) -> &Arc<Tags> {
        self.whole.stream_tags()
    }

    fn tags(&self) -> impl Iterator<Item = (&str, &str)> {
        self.whole.tags()
    }

    fn fields(&self) -> impl Iterator<Item = (&str, FieldRef<'_>)> {
        self.whole.fields().filter(|(k, _)| self.kept(k)).chain(
            self.place()
                .into_iter()
                .map(|(k, n)| (k, FieldValue::Integer(n))),
        )
    }

    /// Copies only the part's piece: the whole record's content may be megabytes, once
    /// for each part.
    fn to_record(&self) -> Record {
        Record::from_parts(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_are_written_in_decimal() {
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), "0");
        assert_eq!(decimal(7, &mut buf), "7");
        assert_eq!(decimal(10_000, &mut buf), "10000");
        assert_eq!(decimal(u64::MAX, &mut buf), "18446744073709551615");
    }

    #[test]
    fn record_ids_are_stable_and_distinct() {
        let a = record_id(&["/aws/rds/instance/db/error", "db", "3700", "1"]);
        assert_eq!(
            a,
            record_id(&["/aws/rds/instance/db/error", "db", "3700", "1"])
        );
        assert_ne!(
            a,
            record_id(&["/aws/rds/instance/db/error", "db", "3700", "2"])
        );
        // Built part by part, the same id.
        assert_eq!(
            RecordId::new()
                .part("/aws/rds/instance/db/error")
                .part("db")
                .part("3700")
                .part("1")
                .finish(),
            a
        );
        // Part boundaries matter: "ab"+"c" is not "a"+"bc".
        assert_ne!(record_id(&["ab", "c"]), record_id(&["a", "bc"]));
        assert_eq!(a.len(), 16);
    }

    /// Ids must not change between versions of the forwarder: a retried event, or one
    /// redelivered after an upgrade, has to give the same ids. The value is what xxHash's
    /// reference C implementation gives for these parts, chained as `RecordId` does.
    #[test]
    fn record_ids_do_not_change_between_versions() {
        assert_eq!(
            record_id(&["/aws/rds/instance/db/error", "db", "3700", "1"]),
            "bd6d037e3629a385"
        );
    }

    #[test]
    fn oversize_content_is_split_at_char_boundaries_with_nothing_lost() {
        let content = "한".repeat(1000); // 3000 bytes
        let mut r = Record::new("#RDS_LOG", 5, content.clone());
        r.fields
            .push(("record_id".into(), FieldValue::Text("x".into())));
        r.fields.push(("user".into(), FieldValue::Text("u".into())));
        r.fields
            .push(("cw_event_id".into(), FieldValue::Text("3700".into())));
        let mut parts: Vec<Record> = Vec::new();
        emit_parts(&r, 1000, &mut parts).unwrap();
        assert_eq!(parts.len(), 4, "999 + 999 + 999 + 3 bytes");
        assert!(parts.iter().all(|p| p.content.len() <= 1000));
        assert_eq!(
            parts.iter().map(|p| p.content.as_str()).collect::<String>(),
            content
        );
        assert_eq!(parts[0].field("user"), Some(&FieldValue::Text("u".into())));
        assert_eq!(parts[1].field("user"), None);
        assert_eq!(
            parts[3].field("cw_event_id"),
            Some(&FieldValue::Text("3700".into()))
        );
        assert_eq!(parts[3].field("part"), Some(&FieldValue::Integer(4)));
        assert_eq!(parts[3].field("parts"), Some(&FieldValue::Integer(4)));
        assert_eq!(
            parts[2].field("original_length"),
            Some(&FieldValue::Integer(3000))
        );
        assert!(
            parts
                .iter()
                .all(|p| p.field("record_id") == Some(&FieldValue::Text("x".into())))
        );
    }
}
