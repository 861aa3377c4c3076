//! Where the records a mapper sends go: the host side of `sink.send`.
//!
//! A trait, so the CLI, the Lambda handler and the tests can swap stdout, WhaTap, or an
//! in-memory sink without the runtime knowing which.

pub mod stdout;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use thiserror::Error;

pub use rds_record::{BatchRef, FieldRef, RecordRef, wire_tags};

use crate::sandbox::bindings::{FieldValue, LogRecord};

/// A boxed future, so `RecordSink` stays object-safe.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Why a batch was not delivered. The message never contains a credential.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error("writing records failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Delivery(String),
}

/// One `sink.send` from a mapper: records, and the tags they all carry.
///
/// `sink.send-tagged` (contract 1.1) sends a log stream's tags once per batch instead of once
/// per record; the sinks put them on each record only as they write it. A 1.0 mapper's `send`
/// is a batch without stream tags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub stream_tags: Vec<(String, String)>,
    pub records: Vec<LogRecord>,
}

impl Batch {
    pub fn new(records: Vec<LogRecord>) -> Batch {
        Batch {
            stream_tags: Vec::new(),
            records,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A record's tags as they go on the wire: the stream's, less those the record overrides,
    /// then the record's own.
    pub fn tags<'a>(&'a self, r: &'a LogRecord) -> impl Iterator<Item = (&'a str, &'a str)> {
        wire_tags(&self.stream_tags, &r.tags)
    }

    /// The records, each with its stream tags put in (for JSON output and tests).
    pub fn into_records(self) -> Vec<LogRecord> {
        if self.stream_tags.is_empty() {
            return self.records;
        }
        let merged: Vec<Vec<(String, String)>> = self
            .records
            .iter()
            .map(|r| {
                self.tags(r)
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .collect();
        self.records
            .into_iter()
            .zip(merged)
            .map(|(r, tags)| LogRecord { tags, ..r })
            .collect()
    }

    /// A borrowed batch, owned (what the memory sink keeps).
    pub fn from_ref(batch: &BatchRef<'_>) -> Batch {
        let pairs = |t: &[(&str, &str)]| -> Vec<(String, String)> {
            t.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        Batch {
            stream_tags: pairs(batch.stream_tags),
            records: batch
                .records
                .iter()
                .map(|r| LogRecord {
                    category: r.category.to_owned(),
                    time: r.time,
                    tags: pairs(r.tags),
                    fields: r
                        .fields
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), owned_field(*v)))
                        .collect(),
                    content: r.content.to_owned(),
                    line: r.line,
                })
                .collect(),
        }
    }

    /// Runs `f` on this batch borrowed, as a sink receives it.
    pub fn with_ref<R>(&self, f: impl FnOnce(&BatchRef<'_>) -> R) -> R {
        fn pairs(t: &[(String, String)]) -> Vec<(&str, &str)> {
            t.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
        }
        let stream = pairs(&self.stream_tags);
        let tags: Vec<Vec<(&str, &str)>> = self.records.iter().map(|r| pairs(&r.tags)).collect();
        let fields: Vec<Vec<(&str, FieldRef<'_>)>> = self
            .records
            .iter()
            .map(|r| {
                r.fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), field_ref(v)))
                    .collect()
            })
            .collect();
        let records: Vec<RecordRef<'_>> = self
            .records
            .iter()
            .zip(tags.iter().zip(&fields))
            .map(|(r, (t, f))| RecordRef {
                category: &r.category,
                time: r.time,
                tags: t,
                fields: f,
                content: &r.content,
                line: r.line,
            })
            .collect();
        f(&BatchRef {
            stream_tags: &stream,
            records: &records,
        })
    }
}

/// A field value borrowed: the one place that maps the contract's owned form to the borrowed one.
pub fn field_ref(value: &FieldValue) -> FieldRef<'_> {
    match value {
        FieldValue::Text(s) => FieldRef::Text(s),
        FieldValue::Integer(i) => FieldRef::Integer(*i),
        FieldValue::Float(f) => FieldRef::Float(*f),
        FieldValue::Boolean(b) => FieldRef::Boolean(*b),
    }
}

/// A borrowed field value, owned: the one place that maps it back.
pub fn owned_field(value: FieldRef<'_>) -> FieldValue {
    match value {
        FieldRef::Text(s) => FieldValue::Text(s.to_owned()),
        FieldRef::Integer(i) => FieldValue::Integer(i),
        FieldRef::Float(f) => FieldValue::Float(f),
        FieldRef::Boolean(b) => FieldValue::Boolean(b),
    }
}

/// A sink's tries at writing or confirming batches: every first try and retry, and those that
/// failed (each failure is followed by a retry, or ends in a delivery error).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    pub made: u64,
    pub failed: u64,
}

pub trait RecordSink: Send + Any {
    /// Delivers a batch; `Err` means the batch is not known to be delivered. The batch is
    /// borrowed from the sandbox only until this returns: a sink takes what it needs (encodes
    /// it) before handing back the future.
    fn send(&mut self, batch: &BatchRef<'_>) -> SinkFuture<'_>;

    /// Called when the mapper has sent everything of an event: completes delivery (the WhaTap
    /// sink waits for the collector's confirmation here). `Err` fails the invocation.
    fn finish(&mut self) -> SinkFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    /// Called when the mapping of an event failed: forget what waits for `finish`, since the
    /// whole event will be retried.
    fn abandon(&mut self) {}

    /// Bounds later sends by an outside deadline (the Lambda invocation's); no-op by default.
    fn set_deadline(&mut self, _deadline: Option<std::time::Instant>) {}

    /// Bytes this sink has put on the network so far (data frames, re-sends included), for
    /// summaries; `None` for a sink that sends nothing over a network.
    fn wire_bytes(&self) -> Option<u64> {
        None
    }

    /// Delivery attempts so far, for metrics; `None` for a sink that does not retry.
    fn delivery_attempts(&self) -> Option<Attempts> {
        None
    }

    /// Flushes and closes whatever the sink holds open (end of a run, or shutdown).
    fn close(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// Recovers a [`Memory`] sink handed through the runtime (tests and benchmarks).
pub fn into_memory(sink: Box<dyn RecordSink>) -> Option<Box<Memory>> {
    let any: Box<dyn Any> = sink;
    any.downcast().ok()
}

/// Accepts nothing: the sink of `describe()` calls, which must not send.
pub struct Discard;

impl RecordSink for Discard {
    fn send(&mut self, _batch: &BatchRef<'_>) -> SinkFuture<'_> {
        Box::pin(async {
            Err(SinkError::Delivery(
                "this call may not send records".to_owned(),
            ))
        })
    }
}

/// Keeps every batch in memory, as received; for tests and benchmarks.
#[derive(Default)]
pub struct Memory {
    pub batches: Vec<Batch>,
}

impl Memory {
    /// Every record received, with its stream tags put in.
    pub fn records(&self) -> Vec<LogRecord> {
        self.batches
            .iter()
            .flat_map(|b| b.clone().into_records())
            .collect()
    }

    /// How many records were received.
    pub fn len(&self) -> usize {
        self.batches.iter().map(Batch::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RecordSink for Memory {
    fn send(&mut self, batch: &BatchRef<'_>) -> SinkFuture<'_> {
        self.batches.push(Batch::from_ref(batch));
        Box::pin(async { Ok(()) })
    }
}

/// Counts records and reads every string of them, keeping nothing: the end of the line for
/// measuring the mapping itself (`bench`).
#[derive(Default)]
pub struct Count {
    pub records: u64,
    pub bytes: u64,
}

impl RecordSink for Count {
    fn send(&mut self, batch: &BatchRef<'_>) -> SinkFuture<'_> {
        for r in batch.records {
            self.records += 1;
            let tags: usize = batch.tags(r).map(|(k, v)| k.len() + v.len()).sum();
            let fields: usize = r
                .fields
                .iter()
                .map(|(k, v)| {
                    k.len()
                        + match v {
                            FieldRef::Text(s) => s.len(),
                            _ => 8,
                        }
                })
                .sum();
            self.bytes += (r.category.len() + r.content.len() + tags + fields) as u64;
        }
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tags: &[(&str, &str)]) -> LogRecord {
        LogRecord {
            category: "#RDS_LOG".into(),
            time: 1,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            fields: Vec::new(),
            content: "x".into(),
            line: 1,
        }
    }

    #[test]
    fn stream_tags_come_first_and_an_own_tag_replaces_the_streams() {
        let batch = Batch {
            stream_tags: vec![
                ("logGroup".into(), "g".into()),
                ("log_type".into(), "error".into()),
            ],
            records: vec![
                record(&[("level", "info")]),
                record(&[("log_type", "custom"), ("level", "error")]),
            ],
        };
        let tags: Vec<Vec<(&str, &str)>> = batch
            .records
            .iter()
            .map(|r| batch.tags(r).collect())
            .collect();
        assert_eq!(
            tags,
            vec![
                vec![("logGroup", "g"), ("log_type", "error"), ("level", "info")],
                vec![
                    ("logGroup", "g"),
                    ("log_type", "custom"),
                    ("level", "error")
                ],
            ]
        );
        // Borrowed and back, the same batch.
        assert_eq!(batch.with_ref(Batch::from_ref), batch);
        let borrowed: Vec<Vec<(String, String)>> = batch.with_ref(|b| {
            b.records
                .iter()
                .map(|r| b.tags(r).map(|(k, v)| (k.into(), v.into())).collect())
                .collect()
        });
        assert_eq!(
            borrowed[1][1],
            ("log_type".to_string(), "custom".to_string())
        );
        let merged = batch.clone().into_records();
        assert_eq!(merged[1].tags.len(), 3);
        assert_eq!(merged[1].tags[0], ("logGroup".to_string(), "g".to_string()));
        assert_eq!(
            Batch::new(batch.records.clone()).into_records(),
            batch.records
        );
    }
}
