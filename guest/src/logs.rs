//! CloudWatch Logs events to `#RDS_LOG` records.

use crate::awslogs::{LogData, LogEvent};
use crate::formats::parse_message;
use crate::log_source::{LogGroup, instance_from_stream};
use std::borrow::Cow;
use std::sync::Arc;

use crate::record::{CATEGORY_LOG, FieldValue, Record, Tags, Text};

/// Tags shared by every record of one payload (one log stream), computed once and shared by
/// the records, not copied into each.
#[derive(Debug, Clone)]
pub struct StreamTags {
    tags: Arc<Tags>,
    /// The log type from the group name, for choosing a parser.
    pub log_type: String,
    /// [`record_id`]'s state after the log group and stream.
    id_seed: RecordId,
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
        }
    }

    /// The records of one log event: one per entry in its message, each with the entry's
    /// text kept whole and the fields its format's parser read.
    ///
    /// An entry whose content exceeds `max_content_bytes` is split into parts (at character
    /// boundaries) that carry `part`, `parts` and `original_length`; the number of entries
    /// split is returned. Every record gets a `record_id` from log group, stream, CloudWatch
    /// event id and entry position: a redelivered event gives the same ids.
    pub fn records(
        &self,
        event: &LogEvent<'_>,
        max_content_bytes: usize,
        out: &mut impl FnMut(Record),
    ) -> u32 {
        let mut split = 0;
        let message = event.message();
        let message: &str = &message;
        let entries = parse_message(&self.log_type, message);
        let several = entries.len() > 1;
        for (i, entry) in entries.into_iter().enumerate() {
            let parsed = entry.parsed;
            // The entry's own time when it says more than CloudWatch's (a fraction of a
            // second, or one of several entries sharing one CloudWatch timestamp).
            let time = match parsed.time_ms {
                Some(t) if parsed.precise || several => t,
                _ => event.timestamp,
            };
            let content = if several { entry.text } else { message };
            let mut r = Record::new(CATEGORY_LOG, time, content.to_owned());
            r.line = i as i64 + 1;
            r.stream_tags = Arc::clone(&self.tags);
            r.tags.reserve(3);
            if let Some(engine) = parsed.engine {
                r.tags.push(("engine".into(), engine.into()));
            }
            r.tags.push(("level".into(), parsed.level.as_str().into()));
            let status = if parsed.unparsed.is_some() {
                "unparsed"
            } else {
                "parsed"
            };
            r.tags.push(("parse_status".into(), status.into()));
            r.fields = parsed.fields;
            r.fields.reserve(3);
            if let Some(reason) = parsed.unparsed {
                r.fields
                    .push(("parse_error".into(), FieldValue::Text(reason.to_owned())));
            }
            // A field, not a tag: it is unique per event, and WhaTap indexes tags (a unique
            // tag also makes every record's tag map, and its hash, different).
            r.fields
                .push(("cw_event_id".into(), FieldValue::Text(event.id.to_string())));
            let mut line = [0u8; 20];
            let id = self
                .id_seed
                .part(&event.id)
                .part(decimal(r.line as u64, &mut line))
                .finish();
            r.fields.push(("record_id".into(), FieldValue::Text(id)));
            if r.content.len() > max_content_bytes {
                split += 1;
                split_into_parts(r, max_content_bytes, out);
            } else {
                out(r);
            }
        }
        split
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

    /// Sixteen lowercase hex digits (written by hand: `format!` is slow in the guest, and
    /// this runs for every record).
    pub fn finish(self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(16);
        for shift in (0..16).rev() {
            out.push(HEX[(self.0 >> (shift * 4)) as usize & 0xf] as char);
        }
        out
    }
}

impl Default for RecordId {
    fn default() -> Self {
        RecordId::new()
    }
}

/// `n` in decimal, written into `buf` (no allocation: this runs once per record).
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
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

/// Emits `r` as parts of at most `max` content bytes each. The first part keeps the parsed
/// fields; every part names its place.
fn split_into_parts(r: Record, max: usize, out: &mut impl FnMut(Record)) {
    let max = max.max(4);
    let mut pieces = Vec::new();
    let mut rest = r.content.as_str();
    while !rest.is_empty() {
        let mut cut = rest.len().min(max);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    let parts = pieces.len() as i64;
    let original = r.content.len() as i64;
    for (i, piece) in pieces.iter().enumerate() {
        let mut p = Record::new(r.category.clone(), r.time, (*piece).to_owned());
        p.line = r.line;
        p.stream_tags = Arc::clone(&r.stream_tags);
        p.tags = r.tags.clone();
        p.fields = if i == 0 {
            r.fields.clone()
        } else {
            r.fields
                .iter()
                // What identifies the entry goes on every part.
                .filter(|(k, _)| k == "record_id" || k == "cw_event_id")
                .cloned()
                .collect()
        };
        p.fields
            .push(("part".into(), FieldValue::Integer(i as i64 + 1)));
        p.fields.push(("parts".into(), FieldValue::Integer(parts)));
        p.fields
            .push(("original_length".into(), FieldValue::Integer(original)));
        out(p);
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
        let mut parts = Vec::new();
        split_into_parts(r, 1000, &mut |p| parts.push(p));
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
