//! Packs: `LogSinkPack` (one log record) and `ZipPack` (a batch of them, gzip'd when it is
//! worth it). Encoding is deterministic so the protocol's hex vectors can be checked byte for
//! byte; decoding is what the collector emulator uses.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::GzDecoder;

use crate::codec::{DecodeError, Reader, Writer};
use crate::gzip::Gzip;
use crate::hash::hash64;
use crate::value::{MapRef, Value, ValueRef, write_map};

pub const LOGSINK: i16 = 0x170a;
pub const ZIP: i16 = 0x170b;
pub const LOGSINK_ZIP: i16 = 0x170d;

/// ZipPack status byte values.
pub const STATUS_RAW: u8 = 0;
pub const STATUS_GZIP: u8 = 1;
/// Records shorter than this stay uncompressed (`logsink_zip_min_size`).
pub const ZIP_MIN_SIZE: usize = 100;
/// Bounds what an inflated ZipPack may grow to in the collector (a hostile or broken sender).
pub const MAX_INFLATED: usize = 64 << 20;

/// The header every pack starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub pcode: i64,
    pub oid: i32,
    pub okind: i32,
    pub onode: i32,
    pub time: i64,
}

impl Header {
    fn write(&self, w: &mut Writer) {
        if self.okind == 0 && self.onode == 0 {
            w.decimal(self.pcode).int(self.oid).long(self.time);
        } else {
            w.byte(9)
                .decimal(self.pcode)
                .int(self.oid)
                .int(self.okind)
                .int(self.onode)
                .long(self.time);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Header, DecodeError> {
        // A first byte ≤ 8 is the pcode decimal's own length: the short form.
        let first = *r
            .remaining()
            .first()
            .ok_or(DecodeError::Incomplete("a pack header"))?;
        if first <= 8 {
            Ok(Header {
                pcode: r.decimal()?,
                oid: r.int()?,
                okind: 0,
                onode: 0,
                time: r.long()?,
            })
        } else {
            let version = r.byte()?;
            if version != 9 {
                return Err(DecodeError::invalid(
                    "pack header",
                    format!("version {version}"),
                ));
            }
            Ok(Header {
                pcode: r.decimal()?,
                oid: r.int()?,
                okind: r.int()?,
                onode: r.int()?,
                time: r.long()?,
            })
        }
    }
}

/// One log record on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSinkPack {
    pub header: Header,
    pub category: String,
    /// The legacy Hash64 of the encoded tag map; 0 for no tags.
    pub tag_hash: i64,
    pub tags: Vec<(String, Value)>,
    pub line: i64,
    pub content: String,
    pub fields: Vec<(String, Value)>,
}

/// A tag map, encoded, with the hash the pack carries. Records with the same tags (most of
/// one stream's) share one: encoding and hashing it was most of a record's cost.
#[derive(Debug, Default, Clone)]
pub struct TagMap {
    pub bytes: Vec<u8>,
    /// The legacy Hash64 of `bytes`; 0 for no tags.
    pub hash: i64,
}

impl TagMap {
    pub fn encode<'a>(tags: impl ExactSizeIterator<Item = (&'a str, ValueRef<'a>)>) -> TagMap {
        let mut map = TagMap::default();
        map.set(tags);
        map
    }

    /// Re-encodes in place, reusing the buffer.
    pub fn set<'a>(&mut self, tags: impl ExactSizeIterator<Item = (&'a str, ValueRef<'a>)>) {
        let empty = tags.len() == 0;
        let mut w = Writer {
            buf: std::mem::take(&mut self.bytes),
        };
        w.buf.clear();
        write_map(&mut w, tags);
        self.hash = if empty { 0 } else { hash64(&w.buf) };
        self.bytes = w.buf;
    }
}

/// A LogSinkPack's parts, borrowed: what [`write_log_sink`] serializes. The encoder builds it
/// from the records a mapper sent, the owned [`LogSinkPack`] (the decoder's) from its fields.
pub struct LogSinkRef<'a> {
    pub header: Header,
    pub category: &'a str,
    pub tags: &'a TagMap,
    pub line: i64,
    pub content: &'a str,
    pub fields: &'a [(&'a str, ValueRef<'a>)],
}

/// Serializes a LogSinkPack with its type code (`ToBytesPack`). `scratch` holds the encoded
/// fields (they go length-prefixed), reused from one record to the next.
pub fn write_log_sink(w: &mut Writer, p: &LogSinkRef<'_>, scratch: &mut Writer) {
    w.short(LOGSINK);
    p.header.write(w);
    w.byte(0)
        .text(p.category)
        .decimal(p.tags.hash)
        .bytes(&p.tags.bytes);
    w.decimal(p.line).text(p.content);
    w.bool(!p.fields.is_empty());
    if !p.fields.is_empty() {
        scratch.buf.clear();
        write_map(scratch, p.fields.iter().copied());
        w.bytes(&scratch.buf);
    }
}

impl LogSinkPack {
    /// Serializes the pack with its type code (`ToBytesPack`). The tag hash is computed from
    /// the tags as encoded, so it can never be stale.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.content.len());
        self.write(&mut w);
        w.into_bytes()
    }

    pub fn write(&self, w: &mut Writer) {
        let tags = TagMap::encode(self.tags.iter().map(|(k, v)| (k.as_str(), v.as_ref())));
        let fields: Vec<(&str, ValueRef<'_>)> = self
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_ref()))
            .collect();
        let parts = LogSinkRef {
            header: self.header,
            category: &self.category,
            tags: &tags,
            line: self.line,
            content: &self.content,
            fields: &fields,
        };
        write_log_sink(w, &parts, &mut Writer::new());
    }

    /// Reads the body after the type code.
    fn read_body(r: &mut Reader<'_>) -> Result<LogSinkPack, DecodeError> {
        LogSinkView::read_body(r).map(|v| v.to_owned())
    }
}

/// A LogSinkPack read in place, borrowing from the bytes it arrived in (a frame's, or an
/// inflated ZipPack's), every part checked. The collector emulator checks and counts what a
/// sender delivers this way; building an owned pack for every record had been most of its
/// work, and the bench's delivery figure waits for it.
#[derive(Debug, Clone, Copy)]
pub struct LogSinkView<'a> {
    pub header: Header,
    pub category: &'a str,
    pub tag_hash: i64,
    pub tags: MapRef<'a>,
    pub line: i64,
    pub content: &'a str,
    pub fields: Option<MapRef<'a>>,
}

impl<'a> LogSinkView<'a> {
    /// Reads the body after the type code.
    fn read_body(r: &mut Reader<'a>) -> Result<LogSinkView<'a>, DecodeError> {
        let header = Header::read(r)?;
        let _version = r.byte()?;
        let category = r.text()?;
        let tag_hash = r.decimal()?;
        let tags = MapRef::read(r)?;
        let line = r.decimal()?;
        let content = r.text()?;
        let fields = if r.bool()? {
            Some(MapRef::read(r)?)
        } else {
            None
        };
        Ok(LogSinkView {
            header,
            category,
            tag_hash,
            tags,
            line,
            content,
            fields,
        })
    }

    pub fn to_owned(&self) -> LogSinkPack {
        LogSinkPack {
            header: self.header,
            category: self.category.to_owned(),
            tag_hash: self.tag_hash,
            tags: self.tags.to_owned(),
            line: self.line,
            content: self.content.to_owned(),
            fields: self.fields.map_or_else(Vec::new, |f| f.to_owned()),
        }
    }
}

/// Every LogSinkPack in a pack's bytes (one, or a ZipPack's records), read in place and
/// handed to `each` in order.
pub fn read_records(
    bytes: &[u8],
    mut each: impl FnMut(LogSinkView<'_>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(bytes);
    match Pack::type_code(&mut r)? {
        LOGSINK => each(LogSinkView::read_body(&mut r)?),
        _ => {
            let zip = ZipPack::read_body(&mut r)?;
            zip.read_records(&zip.inflate()?, each)
        }
    }
}

/// Checks tag hashes as a receiver does: the hash a pack carries must be that of its tags,
/// encoded. The canonical hash of the last few distinct tag encodings is kept: a stream's
/// records repeat a handful of tag maps (they differ by level), and re-encoding every
/// record's tags had been a quarter of the collector emulator's work.
#[derive(Debug, Default)]
pub struct TagHashes {
    /// A tag map as it arrived, and the hash of its canonical encoding.
    kept: Vec<(Vec<u8>, i64)>,
    /// Where the next one goes once `kept` is full.
    next: usize,
}

/// Distinct tag encodings [`TagHashes`] remembers.
const TAG_HASHES_KEPT: usize = 8;

impl TagHashes {
    pub fn check(&mut self, p: &LogSinkView<'_>) -> Result<(), DecodeError> {
        let raw = p.tags.raw();
        let expected = match self.kept.iter().find(|(r, _)| r.as_slice() == raw) {
            Some((_, hash)) => *hash,
            None => {
                let hash = canonical_tag_hash(&p.tags);
                if self.kept.len() < TAG_HASHES_KEPT {
                    self.kept.push((raw.to_vec(), hash));
                } else {
                    self.kept[self.next] = (raw.to_vec(), hash);
                    self.next = (self.next + 1) % TAG_HASHES_KEPT;
                }
                hash
            }
        };
        if p.tag_hash == expected {
            Ok(())
        } else {
            Err(DecodeError::invalid(
                "tag hash",
                format!("{} does not match the tags", p.tag_hash),
            ))
        }
    }
}

/// The hash of a tag map as this encoder writes it; 0 for no tags.
fn canonical_tag_hash(tags: &MapRef<'_>) -> i64 {
    let entries: Vec<(&str, ValueRef<'_>)> = tags.entries().collect();
    TagMap::encode(entries.into_iter()).hash
}

/// A batch of LogSinkPacks.
#[derive(Debug, Clone, PartialEq)]
pub struct ZipPack {
    pub header: Header,
    pub status: u8,
    pub record_count: i64,
    /// Concatenated inner packs (type code + body each), compressed when `status` is 1.
    pub records: Vec<u8>,
}

impl ZipPack {
    /// Packs already-serialized LogSinkPacks, gzip'ing them when they reach `ZIP_MIN_SIZE`.
    pub fn new(
        gzip: &mut Gzip,
        header: Header,
        record_count: usize,
        records: Vec<u8>,
    ) -> Result<ZipPack, flate2::CompressError> {
        let (status, records) = if records.len() < ZIP_MIN_SIZE {
            (STATUS_RAW, records)
        } else {
            (STATUS_GZIP, gzip.compress(&records)?)
        };
        Ok(ZipPack {
            header,
            status,
            record_count: record_count as i64,
            records,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(32 + self.records.len());
        w.short(ZIP);
        self.header.write(&mut w);
        w.byte(self.status)
            .decimal(self.record_count)
            .blob(&self.records);
        w.into_bytes()
    }

    fn read_body(r: &mut Reader<'_>) -> Result<ZipPack, DecodeError> {
        Ok(ZipPack {
            header: Header::read(r)?,
            status: r.byte()?,
            record_count: r.decimal()?,
            records: r.blob()?.to_vec(),
        })
    }

    /// The inner records, inflated, with the outer pcode/oid/okind/onode copied into each
    /// (each keeps its own time), as WhaTap's receiver does.
    pub fn unpack(&self) -> Result<Vec<LogSinkPack>, DecodeError> {
        let mut packs = Vec::new();
        self.read_records(&self.inflate()?, |p| {
            packs.push(p.to_owned());
            Ok(())
        })?;
        Ok(packs)
    }

    /// The inner records' bytes: [`records`](Self::records), inflated when gzip'd.
    pub fn inflate(&self) -> Result<Cow<'_, [u8]>, DecodeError> {
        Ok(match self.status {
            STATUS_RAW => Cow::Borrowed(&self.records),
            STATUS_GZIP => {
                // Sized from the gzip trailer (the inflated length mod 2^32), within the limit.
                let size = self.records.len().checked_sub(4).map_or(0, |at| {
                    let mut n = [0u8; 4];
                    n.copy_from_slice(&self.records[at..]);
                    u32::from_le_bytes(n) as usize
                });
                let mut out = Vec::with_capacity(size.min(MAX_INFLATED));
                GzDecoder::new(&self.records[..])
                    .take(MAX_INFLATED as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| DecodeError::invalid("zip pack", format!("gzip: {e}")))?;
                if out.len() > MAX_INFLATED {
                    return Err(DecodeError::invalid("zip pack", "inflates past 64 MiB"));
                }
                Cow::Owned(out)
            }
            s => return Err(DecodeError::invalid("zip pack", format!("status {s}"))),
        })
    }

    /// The inner records of `raw` (this pack's [`inflate`](Self::inflate)d records), read in
    /// place, each with the outer header but its own time; their count must be the pack's.
    pub fn read_records<'r>(
        &self,
        raw: &'r [u8],
        mut each: impl FnMut(LogSinkView<'r>) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let mut r = Reader::new(raw);
        let mut count = 0i64;
        while !r.remaining().is_empty() {
            if Pack::type_code(&mut r)? != LOGSINK {
                // Read whole first, as any pack is, so a broken one is named as such.
                ZipPack::read_body(&mut r)?;
                return Err(DecodeError::invalid(
                    "zip pack",
                    "a zip pack inside a zip pack",
                ));
            }
            let mut p = LogSinkView::read_body(&mut r)?;
            p.header = Header {
                time: p.header.time,
                ..self.header
            };
            each(p)?;
            count += 1;
        }
        if count != self.record_count {
            return Err(DecodeError::invalid(
                "zip pack",
                format!("says {} records, holds {count}", self.record_count),
            ));
        }
        Ok(())
    }
}

/// Any pack this protocol implementation knows.
#[derive(Debug, Clone, PartialEq)]
pub enum Pack {
    LogSink(LogSinkPack),
    Zip(ZipPack),
}

impl Pack {
    /// Reads a type code and the pack after it.
    pub fn read(r: &mut Reader<'_>) -> Result<Pack, DecodeError> {
        match Pack::type_code(r)? {
            LOGSINK => Ok(Pack::LogSink(LogSinkPack::read_body(r)?)),
            _ => Ok(Pack::Zip(ZipPack::read_body(r)?)),
        }
    }

    /// A log pack's type code: a LogSinkPack's or a ZipPack's (either of its two codes).
    fn type_code(r: &mut Reader<'_>) -> Result<i16, DecodeError> {
        match r.short()? {
            t @ (LOGSINK | ZIP | LOGSINK_ZIP) => Ok(t),
            t => Err(DecodeError::invalid(
                "pack",
                format!("type 0x{:04x} is not a log pack", t as u16),
            )),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Pack, DecodeError> {
        Pack::read(&mut Reader::new(bytes))
    }
}

/// Whether a pack's tag hash matches its tags, as a receiver checks it.
pub fn tag_hash_ok(p: &LogSinkPack) -> bool {
    let tags = p.tags.iter().map(|(k, v)| (k.as_str(), v.as_ref()));
    p.tag_hash == TagMap::encode(tags).hash
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::codec::{hex, unhex};

    const OID: i32 = 0x6bbf965c;
    const T: i64 = 1_700_000_000_000;

    pub(crate) fn pack_a(pcode: i64, oid: i32) -> LogSinkPack {
        LogSinkPack {
            header: Header {
                pcode,
                oid,
                okind: 0,
                onode: 0,
                time: T,
            },
            category: "AppLog".into(),
            tag_hash: 0,
            tags: vec![("oname".into(), Value::Text("test-agent".into()))],
            line: 0,
            content: "hello".into(),
            fields: vec![],
        }
    }

    #[test]
    fn v1_log_sink_pack_a() {
        let want = "170a 023039 6bbf965c 0000018bcfe56800 00 064170704c6f67 08 00ffffff7ce5906a \
                    50 0101 056f6e616d65 32 0a746573742d6167656e74 00 0568656c6c6f 00";
        let bytes = pack_a(12345, OID).to_bytes();
        assert_eq!(hex(&bytes), hex(&unhex(want)));
        assert_eq!(bytes.len(), 63);
        let Pack::LogSink(back) = Pack::parse(&bytes).unwrap() else {
            panic!("not a LogSinkPack")
        };
        assert_eq!(back.tag_hash, 72057591838380138);
        assert!(tag_hash_ok(&back));
        assert_eq!(
            LogSinkPack {
                tag_hash: 0,
                ..back
            },
            pack_a(12345, OID)
        );
    }

    #[test]
    fn v2_log_sink_pack_b() {
        let p = LogSinkPack {
            header: Header {
                pcode: 12345,
                oid: OID,
                okind: crate::hash::hash32(b"kind"),
                onode: crate::hash::hash32(b"node"),
                time: 0x0000018bcfe5687b,
            },
            category: "#RDS_LOG".into(),
            tag_hash: 0,
            tags: vec![
                ("host".into(), Value::Text("db-1".into())),
                ("n".into(), Value::Decimal(300)),
                ("b".into(), Value::Bool(true)),
            ],
            line: 42,
            content: "slow query".into(),
            fields: vec![
                ("@txid".into(), Value::Text("123".into())),
                ("d".into(), Value::Double(1.5)),
            ],
        };
        let want = "170a 09 023039 6bbf965c 3bc4bcd9 857fe845 0000018bcfe5687b 00 08235244535f4c4f47 \
                    08 00ff0000643e8525 50 0103 04686f7374 32 0464622d31 016e 14 02012c 0162 0a 01 \
                    012a 0a736c6f77207175657279 01 50 0102 054074786964 32 03313233 0164 28 3ff8000000000000";
        let bytes = p.to_bytes();
        assert_eq!(hex(&bytes), hex(&unhex(want)));
        assert_eq!(bytes.len(), 108);
        let Pack::LogSink(back) = Pack::parse(&bytes).unwrap() else {
            panic!()
        };
        assert!(tag_hash_ok(&back));
        assert_eq!(
            LogSinkPack {
                tag_hash: 0,
                ..back
            },
            p
        );
    }

    #[test]
    fn v3_empty_log_sink_pack() {
        let p = LogSinkPack {
            header: Header {
                pcode: 5,
                oid: 0,
                okind: 0,
                onode: 0,
                time: 1,
            },
            category: String::new(),
            tag_hash: 0,
            tags: vec![],
            line: 0,
            content: String::new(),
            fields: vec![],
        };
        assert_eq!(
            hex(&p.to_bytes()),
            hex(&unhex(
                "170a 0105 00000000 0000000000000001 00 00 00 5000 00 00 00"
            ))
        );
        let Pack::LogSink(back) = Pack::parse(&p.to_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(back, p);
    }

    #[test]
    fn v4_zip_pack() {
        let inner = pack_a(0, 0).to_bytes();
        let z = ZipPack::new(
            &mut Gzip::new(),
            Header {
                pcode: 12345,
                oid: OID,
                okind: 0,
                onode: 0,
                time: 0x0000018bcfe569f4,
            },
            1,
            inner,
        )
        .unwrap();
        let want = "170b 023039 6bbf965c 0000018bcfe569f4 00 0101 3d \
                    170a 00 00000000 0000018bcfe56800 00 064170704c6f67 08 00ffffff7ce5906a \
                    50 0101 056f6e616d65 32 0a746573742d6167656e74 00 0568656c6c6f 00";
        let bytes = z.to_bytes();
        assert_eq!(hex(&bytes), hex(&unhex(want)));
        assert_eq!(bytes.len(), 82);
        let Pack::Zip(back) = Pack::parse(&bytes).unwrap() else {
            panic!()
        };
        let records = back.unpack().unwrap();
        assert_eq!(records.len(), 1);
        // The outer pcode/oid flow into the record; its own time stays.
        assert_eq!(
            records[0].header,
            Header {
                pcode: 12345,
                oid: OID,
                okind: 0,
                onode: 0,
                time: T
            }
        );
    }

    #[test]
    fn large_batches_are_gzipped_and_come_back() {
        let mut records = Vec::new();
        for _ in 0..50 {
            records.extend(pack_a(0, 0).to_bytes());
        }
        let z = ZipPack::new(
            &mut Gzip::new(),
            Header {
                pcode: 1,
                oid: 2,
                ..Header::default()
            },
            50,
            records,
        )
        .unwrap();
        assert_eq!(z.status, STATUS_GZIP);
        assert!(z.records.len() < 50 * 63 / 4);
        let Pack::Zip(back) = Pack::parse(&z.to_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(back.unpack().unwrap().len(), 50);
    }

    #[test]
    fn a_wrong_record_count_or_truncation_is_an_error() {
        let z = ZipPack::new(
            &mut Gzip::new(),
            Header::default(),
            2,
            pack_a(0, 0).to_bytes(),
        )
        .unwrap();
        assert!(
            z.unpack()
                .unwrap_err()
                .to_string()
                .contains("says 2 records, holds 1")
        );
        let bytes = pack_a(1, 1).to_bytes();
        for cut in 0..bytes.len() {
            assert!(Pack::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
