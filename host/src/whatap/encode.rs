//! Log records to ZipPacks, within WhaTap's limits: by default at most 64 KiB of records per
//! ZipPack (`logsink_max_buffer_size`, what WhaTap's agents send), at most [`MAX_ZIP_BYTES`]
//! when set larger, and never a frame payload over 5 MiB (`net_send_max_bytes`).

use thiserror::Error;

use super::codec::Writer;
use super::gzip::Gzip;
use super::pack::{Header, LogSinkPack, LogSinkRef, TagMap, ZipPack, write_log_sink};
use super::value::{Value, ValueRef};
use crate::sandbox::bindings::{FieldValue, LogRecord};
use crate::sink::{BatchRef, FieldRef};

/// Bytes of serialized records per ZipPack unless set otherwise (`WHATAP_ZIP_BYTES`). WhaTap's
/// agents send 64 KiB (`logsink_max_buffer_size`); on RDS logs, 1 MiB packs put a third fewer
/// bytes on the wire at the same level, and take less time (`rds-forwarder bench` measures
/// both), while a pack stays far below the frame limit.
pub const DEFAULT_ZIP_BYTES: usize = 1 << 20;
/// What WhaTap's agents put in a ZipPack.
pub const AGENT_ZIP_BYTES: usize = 64 << 10;
/// The largest ZipPack of records that may be set: compressed, even incompressible records
/// stay well below the frame limit.
pub const MAX_ZIP_BYTES: usize = 4 << 20;
/// The smallest that may be set: below it, per-pack overhead grows for nothing.
pub const MIN_ZIP_BYTES: usize = 4 << 10;
/// Distinct tag lists remembered while encoding a batch (see `zip_packs`).
const MAX_TAG_MAPS: usize = 4;
/// Largest frame payload WhaTap accepts without an overflow event.
pub const MAX_PAYLOAD: usize = 5 << 20;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    #[error("compressing a ZipPack failed: {0}")]
    Compress(String),
    #[error(
        "record {index} ({bytes} bytes encoded) does not fit WhaTap's {MAX_PAYLOAD}-byte frame \
         limit; the mapper must truncate or split it"
    )]
    TooLarge { index: usize, bytes: usize },
}

/// A received LogSinkPack as a record, as the collector emulator reports it.
pub fn log_record(p: &LogSinkPack) -> LogRecord {
    let text = |v: &Value| match v {
        Value::Text(s) => s.clone(),
        Value::Decimal(i) => i.to_string(),
        Value::Double(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
    };
    LogRecord {
        category: p.category.clone(),
        time: p.header.time,
        tags: p.tags.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        fields: p
            .fields
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::Text(s) => FieldValue::Text(s.clone()),
                    Value::Decimal(i) => FieldValue::Integer(*i),
                    Value::Double(f) => FieldValue::Float(*f),
                    Value::Bool(b) => FieldValue::Boolean(*b),
                    Value::Null => FieldValue::Text(String::new()),
                };
                (k.clone(), v)
            })
            .collect(),
        content: p.content.clone(),
        line: p.line,
    }
}

/// One ZipPack, serialized, and how many records it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPack {
    pub bytes: Vec<u8>,
    pub records: usize,
}

/// The serialized records of one ZipPack, not yet compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPack {
    pub records: Vec<u8>,
    pub count: usize,
    /// The batch index of its first record, for errors.
    pub first_index: usize,
}

/// Groups records into ZipPacks of at most `zip_bytes` bytes of records each (a single
/// larger record gets a ZipPack of its own), compressed with `gzip` (kept by the caller from
/// batch to batch).
pub fn zip_packs(
    batch: &BatchRef<'_>,
    header: Header,
    gzip: &mut Gzip,
    zip_bytes: usize,
) -> Result<Vec<EncodedPack>, EncodeError> {
    raw_packs(batch, zip_bytes)
        .into_iter()
        .map(|raw| compress(raw, header, gzip))
        .collect()
}

/// Compresses one pack's records into a serialized ZipPack, refused when it would not fit
/// a frame.
pub fn compress(raw: RawPack, header: Header, gzip: &mut Gzip) -> Result<EncodedPack, EncodeError> {
    let bytes = ZipPack::new(gzip, header, raw.count, raw.records)
        .map_err(|e| EncodeError::Compress(e.to_string()))?
        .to_bytes();
    if bytes.len() > MAX_PAYLOAD {
        return Err(EncodeError::TooLarge {
            index: raw.first_index,
            bytes: bytes.len(),
        });
    }
    Ok(EncodedPack {
        bytes,
        records: raw.count,
    })
}

/// The records of `batch` serialized as LogSinkPacks, grouped into ZipPacks of at most
/// `zip_bytes` bytes of records (clamped to the settable range; a single larger record gets
/// a pack of its own). This part needs the batch; compressing does not, so it can go on
/// elsewhere while the mapper goes on.
pub fn raw_packs(batch: &BatchRef<'_>, zip_bytes: usize) -> Vec<RawPack> {
    let zip_bytes = zip_bytes.clamp(MIN_ZIP_BYTES, MAX_ZIP_BYTES);
    let mut out = Vec::new();
    let mut buf = Writer::with_capacity(zip_bytes.min(batch.len() * 256 + 256));
    let mut count = 0usize;
    let mut first_index = 0usize;
    let mut flush = |buf: &mut Writer, count: &mut usize, first: usize| {
        if *count == 0 {
            return;
        }
        out.push(RawPack {
            records: std::mem::take(&mut buf.buf),
            count: *count,
            first_index: first,
        });
        *count = 0;
    };
    // Reused from record to record: the record's encoding, its tags and fields as values, and
    // the encoded maps.
    let mut one = Writer::new();
    let mut scratch = Writer::new();
    // A tag list is encoded and hashed once while it stays among the last MAX_TAG_MAPS used
    // (most recent first): a stream's records differ in a few own tags (level, parse status),
    // and re-encoding at every change was more than half of encoding a batch.
    let mut tags: Vec<(&str, &str)> = Vec::new();
    let mut seen: Vec<(Vec<(&str, &str)>, TagMap)> = Vec::new();
    let mut fields: Vec<(&str, ValueRef<'_>)> = Vec::new();
    for (i, r) in batch.records.iter().enumerate() {
        tags.clear();
        tags.extend(batch.tags(r));
        match seen.iter().position(|(t, _)| *t == tags) {
            Some(0) => {}
            Some(at) => seen[..=at].rotate_right(1),
            None => {
                let map = TagMap::encode(tags.iter().map(|(k, v)| (*k, ValueRef::Text(v))));
                seen.insert(0, (tags.clone(), map));
                seen.truncate(MAX_TAG_MAPS);
            }
        }
        let tag_map = &seen[0].1;
        fields.clear();
        fields.extend(r.fields.iter().map(|(k, v)| {
            let v = match *v {
                FieldRef::Text(s) => ValueRef::Text(s),
                FieldRef::Integer(i) => ValueRef::Decimal(i),
                FieldRef::Float(f) => ValueRef::Double(f),
                FieldRef::Boolean(b) => ValueRef::Bool(b),
            };
            (*k, v)
        }));
        one.buf.clear();
        // pcode and oid stay 0 inside a ZipPack: the outer pack carries them.
        write_log_sink(
            &mut one,
            &LogSinkRef {
                header: Header {
                    time: r.time,
                    ..Header::default()
                },
                category: r.category,
                tags: tag_map,
                line: r.line,
                content: r.content,
                fields: &fields,
            },
            &mut scratch,
        );
        if count > 0 && buf.buf.len() + one.buf.len() > zip_bytes {
            flush(&mut buf, &mut count, first_index);
        }
        if count == 0 {
            first_index = i;
        }
        buf.buf.extend_from_slice(&one.buf);
        count += 1;
    }
    flush(&mut buf, &mut count, first_index);
    out
}

#[cfg(test)]
mod tests {
    use super::super::pack::Pack;
    use super::*;
    use crate::sink::Batch;

    fn record(i: usize, content: String) -> LogRecord {
        LogRecord {
            category: "#RDS_LOG".into(),
            time: 1_700_000_000_000 + i as i64,
            // Runs of equal tags, tags seen a few records before, and more distinct tags than
            // the encoder remembers: each tag map is reused, encoded again after eviction.
            tags: vec![
                ("logGroup".into(), "/aws/rds/instance/db/error".into()),
                (
                    "level".into(),
                    [
                        "info", "info", "error", "info", "warning", "debug", "fatal", "notice",
                    ][i % 8]
                        .into(),
                ),
            ],
            fields: vec![
                ("n".into(), FieldValue::Integer(i as i64)),
                ("f".into(), FieldValue::Float(0.5)),
                ("b".into(), FieldValue::Boolean(true)),
                ("t".into(), FieldValue::Text("x".into())),
            ],
            content,
            line: i as i64,
        }
    }

    #[test]
    fn batches_respect_the_zip_limit_and_round_trip() {
        let records: Vec<LogRecord> = (0..3000)
            .map(|i| record(i, format!("line {i} {}", "x".repeat(i % 200))))
            .collect();
        let header = Header {
            pcode: 12345,
            oid: 7,
            okind: 0,
            onode: 0,
            time: 1,
        };
        // The stream's tags go on every record, before its own; an own tag replaces one.
        let batch = Batch {
            stream_tags: vec![
                ("logStream".into(), "db".into()),
                ("logGroup".into(), "replaced by the record's own".into()),
            ],
            records,
        };
        let packs = batch
            .with_ref(|b| zip_packs(b, header, &mut Gzip::new(), AGENT_ZIP_BYTES))
            .unwrap();
        assert!(packs.len() > 1);
        let mut back = Vec::new();
        for p in &packs {
            let Pack::Zip(z) = Pack::parse(&p.bytes).unwrap() else {
                panic!("not a zip pack")
            };
            let inner = z.unpack().unwrap();
            assert_eq!(inner.len(), p.records);
            // Re-encoded as sent: without the outer pcode/oid the receiver copies in.
            let raw: usize = inner
                .iter()
                .map(|r| {
                    LogSinkPack {
                        header: Header {
                            time: r.header.time,
                            ..Header::default()
                        },
                        ..r.clone()
                    }
                    .to_bytes()
                    .len()
                })
                .sum();
            assert!(raw <= AGENT_ZIP_BYTES, "{raw}");
            back.extend(inner.iter().map(|p| {
                assert_eq!((p.header.pcode, p.header.oid), (12345, 7));
                assert!(super::super::pack::tag_hash_ok(p), "tag hash of {p:?}");
                log_record(p)
            }));
        }
        assert_eq!(back[0].tags[0], ("logStream".into(), "db".into()));
        assert_eq!(back, batch.clone().into_records());

        // Larger packs hold more records each, and the same records; out of range is clamped.
        let count = |zip_bytes| {
            batch
                .with_ref(|b| zip_packs(b, header, &mut Gzip::new(), zip_bytes))
                .unwrap()
                .len()
        };
        assert!(count(1 << 20) < packs.len());
        assert_eq!(count(1), count(MIN_ZIP_BYTES));
        assert_eq!(count(usize::MAX), count(MAX_ZIP_BYTES));
    }

    #[test]
    fn an_oversized_record_is_an_error_naming_it() {
        // Incompressible content over 5 MiB.
        let mut x: u64 = 1;
        let noise: String = (0..(8 << 20))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (b'!' + (x % 90) as u8) as char
            })
            .collect();
        let records = vec![record(0, "small".into()), record(1, noise)];
        let err = Batch::new(records)
            .with_ref(|b| zip_packs(b, Header::default(), &mut Gzip::new(), MAX_ZIP_BYTES))
            .unwrap_err();
        assert!(
            matches!(err, EncodeError::TooLarge { index: 1, .. }),
            "{err}"
        );
    }
}
