//! Records as JSON lines on stdout: what `invoke --sink stdout` prints.
//!
//! Each record is written straight from the borrowed batch, in the shape of
//! [`record_json::to_json`](crate::record_json::to_json): building an owned batch and a
//! `serde_json::Value` per record first took nine times as long as the mapping itself.

use std::io::{self, Write};

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::{BatchRef, FieldRef, RecordRef, RecordSink, SinkFuture};

pub struct Stdout;

impl RecordSink for Stdout {
    fn send(&mut self, batch: &BatchRef<'_>) -> SinkFuture<'_> {
        let written = write_batch(batch);
        Box::pin(async move {
            match written {
                // The reader went away (`| head`): stop quietly, as Unix tools do.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
                other => other.map_err(Into::into),
            }
        })
    }
}

fn write_batch(batch: &BatchRef<'_>) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(256 << 10, io::stdout().lock());
    write_json_lines(batch, &mut out)?;
    out.flush()
}

/// Writes each record of `batch` as one JSON line, its stream tags put in.
pub fn write_json_lines(batch: &BatchRef<'_>, out: &mut impl Write) -> io::Result<()> {
    let mut tags: Vec<(&str, &str)> = Vec::new();
    for record in batch.records {
        tags.clear();
        tags.extend(batch.tags(record));
        serde_json::to_writer(
            &mut *out,
            &RecordJson {
                record,
                tags: &tags,
            },
        )?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// One record as `{"category","time","tags","fields","content","line"}`.
struct RecordJson<'r> {
    record: &'r RecordRef<'r>,
    tags: &'r [(&'r str, &'r str)],
}

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut map = s.serialize_map(Some(6))?;
        map.serialize_entry("category", r.category)?;
        map.serialize_entry("time", &r.time)?;
        map.serialize_entry("tags", &Entries(self.tags))?;
        map.serialize_entry("fields", &Entries(r.fields))?;
        map.serialize_entry("content", r.content)?;
        map.serialize_entry("line", &r.line)?;
        map.end()
    }
}

/// Key-value pairs as a JSON object the way a `serde_json::Map` makes one: a key that comes
/// again keeps its first place and takes its last value, so every key appears once.
struct Entries<'e, V>(&'e [(&'e str, V)]);

impl<V: JsonValue> Serialize for Entries<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pairs = self.0;
        let mut map = s.serialize_map(None)?;
        for (i, (key, value)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(k, _)| k == key) {
                continue;
            }
            let last = pairs[i + 1..]
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map_or(value, |(_, v)| v);
            map.serialize_key(key)?;
            last.serialize_value(&mut map)?;
        }
        map.end()
    }
}

trait JsonValue {
    fn serialize_value<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error>;
}

impl JsonValue for &str {
    fn serialize_value<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_value(*self)
    }
}

impl JsonValue for FieldRef<'_> {
    fn serialize_value<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        match *self {
            FieldRef::Text(t) => map.serialize_value(t),
            FieldRef::Integer(i) => map.serialize_value(&i),
            // Not finite: null, as serde_json writes such a float.
            FieldRef::Float(f) => map.serialize_value(&f),
            FieldRef::Boolean(b) => map.serialize_value(&b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_json;
    use crate::sandbox::bindings::{FieldValue, LogRecord};
    use crate::sink::Batch;

    fn printed(batch: &Batch) -> String {
        let mut out = Vec::new();
        batch
            .with_ref(|b| write_json_lines(b, &mut out))
            .expect("writes");
        String::from_utf8(out).expect("UTF-8")
    }

    /// What the printer wrote before: each record owned, as a `serde_json::Value`.
    fn through_values(batch: &Batch) -> String {
        batch
            .clone()
            .into_records()
            .iter()
            .map(|r| format!("{}\n", record_json::to_json(r)))
            .collect()
    }

    #[test]
    fn lines_are_what_the_record_json_shape_gives() {
        let record = |i: i64| LogRecord {
            category: "#RDS_LOG".into(),
            time: 1_700_000_000_000 + i,
            tags: vec![
                ("level".into(), "error".into()),
                // Overrides the stream's tag of the same name.
                ("logStream".into(), format!("own-{i}")),
                // Twice: the first place, the last value.
                ("dup".into(), "first".into()),
                ("dup".into(), "last".into()),
            ],
            fields: vec![
                ("n".into(), FieldValue::Integer(-i)),
                ("f".into(), FieldValue::Float(0.25)),
                ("nan".into(), FieldValue::Float(f64::NAN)),
                ("inf".into(), FieldValue::Float(f64::INFINITY)),
                ("b".into(), FieldValue::Boolean(false)),
                (
                    "t".into(),
                    FieldValue::Text("quote \" backslash \\ nl \n tab \t \u{1} é 🎉".into()),
                ),
                ("n".into(), FieldValue::Integer(7)),
            ],
            content: format!("line {i}\r\n\u{7f}\u{2028}"),
            line: i,
        };
        let batch = Batch {
            stream_tags: vec![
                ("logGroup".into(), "/aws/rds/instance/db/error".into()),
                ("logStream".into(), "db".into()),
            ],
            records: (0..3).map(record).collect(),
        };
        let text = printed(&batch);
        assert_eq!(text, through_values(&batch));
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["tags"]["dup"], "last");
        assert_eq!(first["fields"]["n"], 7);
        assert!(first["fields"]["nan"].is_null());
        assert_eq!(text.lines().count(), 3);
        assert!(printed(&Batch::default()).is_empty());
    }
}
