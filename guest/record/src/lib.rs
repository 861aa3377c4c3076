//! A record of the rds-forwarder mapper contract (`wit/mapper.wit`) as both sides borrow it, and
//! the packed layout of `sink.send-packed`. The mapping library writes that layout
//! (`rds_mapper::packed`); this crate reads it, for the host (which lends the result to its
//! record sinks) and for the library's own tests, so the layout is read in one place. No I/O,
//! no dependencies beyond `thiserror`: it builds for the guest and the host alike.

pub mod packed;

/// The override rule of both batch forms: the stream's tags, less those the record sets
/// itself, then the record's own.
pub fn wire_tags<'a, T: AsRef<str>>(
    stream: &'a [(T, T)],
    own: &'a [(T, T)],
) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a, T> {
    stream
        .iter()
        .filter(move |(k, _)| !own.iter().any(|(o, _)| o.as_ref() == k.as_ref()))
        .chain(own)
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
}

/// A field value as the mapper sent it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldRef<'a> {
    Text(&'a str),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

/// A record as the mapper sent it, borrowed from the sandbox's memory for the length of one
/// `send`: the host reads what it needs (to encode it) without copying every string first.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub category: &'a str,
    pub time: i64,
    /// The record's own tags (after the batch's stream tags).
    pub tags: &'a [(&'a str, &'a str)],
    pub fields: &'a [(&'a str, FieldRef<'a>)],
    pub content: &'a str,
    pub line: i64,
}

/// One `sink.send`, borrowed (the host's `sink::Batch` is the owned form).
#[derive(Debug, Clone, Copy)]
pub struct BatchRef<'a> {
    pub stream_tags: &'a [(&'a str, &'a str)],
    pub records: &'a [RecordRef<'a>],
}

impl<'a> BatchRef<'a> {
    #[inline]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// A record's tags as they go on the wire: the stream's, less those the record overrides,
    /// then the record's own. Inlined across crates: the encoder calls it for every record.
    #[inline]
    pub fn tags(&self, r: &RecordRef<'a>) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        wire_tags(self.stream_tags, r.tags)
    }
}
