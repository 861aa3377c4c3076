//! A batch in the packed form of the contract's `sink.send-packed` (1.2; the layout is in
//! `wit/mapper.wit`): every string back to back in one text, and the batch's shape as numbers.
//!
//! Sent as `log-record`s, a batch costs the host a check for every string of every record,
//! and the guest a list allocated for every record's tags and fields. Packed, the guest copies
//! each string once, as the record is mapped, and the host checks the text once.
//!
//! A batch is built record by record ([`Packed::push`]) from anything that reads as
//! [`RecordParts`], so the default mapping packs an entry straight from its parse.

use std::sync::Arc;

use rds_record::FieldRef;
use rds_record::packed::{
    KIND_BOOLEAN, KIND_FLOAT, KIND_INTEGER, KIND_TEXT, PackedError, Unpacked,
};

use crate::record::{FieldValue, Record, RecordParts, Tags, Text};

/// A packed batch, built a record at a time. Kept between batches so that its buffers are
/// allocated once per call.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Packed {
    text: String,
    /// Where each string ends in `text`.
    ends: Vec<u32>,
    words: Vec<i64>,
    /// The stream tags every record of the batch shares, sent once at its head; `None` until
    /// the first record.
    stream: Option<Arc<Tags>>,
    records: usize,
}

/// Why a record could not be packed; the batch is as it was before.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    #[error("a batch's text passed 4 GiB, more than sink.send-packed's offsets can address")]
    TooLarge,
    #[error(
        "a record of another log stream's tags than its batch's (a batch sends one stream's tags)"
    )]
    OtherStream,
}

/// Where the layout puts the count of records: after the count of stream tags (the stream
/// tags themselves are strings).
const RECORD_COUNT_WORD: usize = 1;

impl Packed {
    /// The batch's strings, back to back (`text` of `send-packed`).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where each string ends in [`text`](Self::text) (`ends`).
    pub fn ends(&self) -> &[u32] {
        &self.ends
    }

    /// Counts, times, field kinds and values (`words`).
    pub fn words(&self) -> &[i64] {
        &self.words
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The bytes the batch takes crossing the boundary.
    pub fn size(&self) -> usize {
        self.text.len() + 4 * self.ends.len() + 8 * self.words.len()
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
        self.words.clear();
        self.stream = None;
        self.records = 0;
    }

    /// Makes room for about `records` more records like the ones already packed, so the
    /// buffers are not grown by doubling, but for no more than `max_size` bytes in all (the
    /// batch is sent by then): the records packed so far may be far larger than the rest.
    pub fn reserve(&mut self, records: usize, max_size: usize) {
        let Some(per) = self.text.len().checked_div(self.records) else {
            return;
        };
        let room = |used: usize, per_record: usize, width: usize| {
            per_record
                .saturating_mul(records)
                .min((max_size / width).saturating_sub(used))
        };
        let (text, ends, words) = (self.text.len(), self.ends.len(), self.words.len());
        self.text.reserve(room(text, per, 1));
        self.ends.reserve(room(ends, ends / self.records, 4));
        self.words.reserve(room(words, words / self.records, 8));
    }

    /// Bytes allocated for the batch's buffers, for tests of how much is reserved.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.text.capacity() + 4 * self.ends.capacity() + 8 * self.words.capacity()
    }

    /// Whether `r` can join the batch: it is empty, or `r` has its stream tags. The same
    /// list (the mapping's records share one) or an equal one: a hook may rebuild them.
    pub fn takes(&self, r: &impl RecordParts) -> bool {
        self.stream.as_ref().is_none_or(|s| {
            let theirs = r.stream_tags();
            Arc::ptr_eq(s, theirs) || **s == **theirs
        })
    }

    /// Adds a record. On an error the batch is as it was.
    pub fn push(&mut self, r: &impl RecordParts) -> Result<(), PackError> {
        if !self.takes(r) {
            return Err(PackError::OtherStream);
        }
        let (text, ends, words) = (self.text.len(), self.ends.len(), self.words.len());
        match self.write(r) {
            Ok(()) => {
                self.records += 1;
                self.words[RECORD_COUNT_WORD] = self.records as i64;
                Ok(())
            }
            Err(e) => {
                self.text.truncate(text);
                self.ends.truncate(ends);
                self.words.truncate(words);
                if self.records == 0 {
                    self.stream = None;
                }
                Err(e)
            }
        }
    }

    fn write(&mut self, r: &impl RecordParts) -> Result<(), PackError> {
        if self.stream.is_none() {
            let stream = Arc::clone(r.stream_tags());
            self.pairs(stream.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))?;
            self.words.push(0);
            self.stream = Some(stream);
        }
        self.words.extend([r.time(), r.line()]);
        self.string(r.category())?;
        self.string(r.content())?;
        // Words and strings are read in turn apart: the tag count goes before the field
        // count, which is filled in once the fields are written.
        self.pairs(r.tags())?;
        let fields_at = self.words.len();
        self.words.push(0);
        let mut fields = 0;
        for (k, v) in r.fields() {
            match v {
                FieldValue::Text(s) => {
                    self.words.push(KIND_TEXT);
                    self.string(k)?;
                    self.string(s)?;
                }
                FieldValue::Integer(i) => {
                    self.words.extend([KIND_INTEGER, i]);
                    self.string(k)?;
                }
                FieldValue::Float(f) => {
                    self.words.extend([KIND_FLOAT, f.to_bits() as i64]);
                    self.string(k)?;
                }
                FieldValue::Boolean(b) => {
                    self.words.extend([KIND_BOOLEAN, i64::from(b)]);
                    self.string(k)?;
                }
            }
            fields += 1;
        }
        self.words[fields_at] = fields;
        Ok(())
    }

    /// Tag pairs: their count as a word, then key and value as strings.
    fn pairs<'t>(
        &mut self,
        tags: impl Iterator<Item = (&'t str, &'t str)>,
    ) -> Result<(), PackError> {
        let at = self.words.len();
        self.words.push(0);
        let mut n = 0;
        for (k, v) in tags {
            self.string(k)?;
            self.string(v)?;
            n += 1;
        }
        self.words[at] = n;
        Ok(())
    }

    fn string(&mut self, s: &str) -> Result<(), PackError> {
        self.text.push_str(s);
        self.ends
            .push(u32::try_from(self.text.len()).map_err(|_| PackError::TooLarge)?);
        Ok(())
    }

    /// Packs `batch` in place of what this held; its records must share one stream's tags.
    pub fn pack(&mut self, batch: &[Record]) -> Result<(), PackError> {
        self.clear();
        if batch.is_empty() {
            self.words.extend([0, 0]);
        }
        batch.iter().try_for_each(|r| self.push(r))
    }

    /// The strings, cut at their ends: what the host reads back.
    pub fn strings(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let s = self.text.get(start..end as usize).unwrap_or("");
                start = end as usize;
                s
            })
            .collect()
    }

    /// The records, read back by the layout's one reader (`rds_record::packed`, which the host
    /// reads with); for tests and [`Collect`](crate::Collect). Records of one batch share one
    /// stream-tag list, as they did when packed.
    pub fn unpack(&self) -> Result<Vec<Record>, PackedError> {
        let unpacked = Unpacked::read(&self.text, &self.ends, &self.words)?;
        let records = unpacked.records();
        let batch = unpacked.batch(&records);
        let owned = |(k, v): &(&str, &str)| -> (Text, Text) {
            (Text::Owned((*k).to_owned()), Text::Owned((*v).to_owned()))
        };
        let stream = Arc::new(batch.stream_tags.iter().map(owned).collect::<Tags>());
        Ok(batch
            .records
            .iter()
            .map(|r| {
                let mut rec = Record::new(r.category.to_owned(), r.time, r.content.to_owned());
                rec.line = r.line;
                rec.stream_tags = Arc::clone(&stream);
                rec.tags = r.tags.iter().map(owned).collect();
                rec.fields = r
                    .fields
                    .iter()
                    .map(|(k, v)| {
                        let value = match *v {
                            FieldRef::Text(t) => FieldValue::Text(t.to_owned()),
                            FieldRef::Integer(i) => FieldValue::Integer(i),
                            FieldRef::Float(f) => FieldValue::Float(f),
                            FieldRef::Boolean(b) => FieldValue::Boolean(b),
                        };
                        (Text::Owned((*k).to_owned()), value)
                    })
                    .collect();
                rec
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Arc<Tags> {
        Arc::new(vec![("log_group".into(), "/aws/rds/db".into())])
    }

    fn record(stream: &Arc<Tags>, content: &str) -> Record {
        let mut r = Record::new("#RDS_LOG", 1_700_000_000_000, content.to_owned());
        r.stream_tags = Arc::clone(stream);
        r.line = 3;
        r.set_tag("level", "error");
        r.set_field("msg", FieldValue::Text("é".into()));
        r.set_field("n", FieldValue::Integer(-42));
        r.set_field("ratio", FieldValue::Float(2.5));
        r.set_field("slow", FieldValue::Boolean(true));
        r
    }

    #[test]
    fn a_batch_of_one_stream_sends_its_tags_once_then_each_record_in_turn() {
        let s = stream();
        let mut p = Packed::default();
        p.pack(&[record(&s, "one"), record(&s, "two")]).unwrap();
        let per_record = |content| {
            vec![
                "#RDS_LOG", content, "level", "error", "msg", "é", "n", "ratio", "slow",
            ]
        };
        let mut strings = vec!["log_group", "/aws/rds/db"];
        strings.extend(per_record("one"));
        strings.extend(per_record("two"));
        assert_eq!(p.strings(), strings);
        let record_words = [
            1_700_000_000_000,
            3,
            1,
            4,
            0,
            1,
            -42,
            2,
            2.5f64.to_bits() as i64,
            3,
            1,
        ];
        let mut words = vec![1, 2];
        words.extend(record_words);
        words.extend(record_words);
        assert_eq!(p.words(), words);
        assert_eq!((p.len(), p.size()), (2, p.text().len() + 4 * 20 + 8 * 24));
    }

    #[test]
    fn what_is_packed_unpacks_as_it_was() {
        let s = stream();
        let batch = [record(&s, "one"), record(&s, "two\nlines")];
        let mut p = Packed::default();
        p.pack(&batch).unwrap();
        let back = p.unpack().unwrap();
        assert_eq!(back, batch);
        assert!(Arc::ptr_eq(&back[0].stream_tags, &back[1].stream_tags));
    }

    #[test]
    fn a_record_of_another_stream_is_refused_and_leaves_the_batch_as_it_was() {
        let mut p = Packed::default();
        p.push(&record(&stream(), "one")).unwrap();
        // Equal stream tags in another list belong to the batch.
        p.push(&record(&stream(), "two")).unwrap();
        let before = p.clone();
        let other = record(
            &Arc::new(vec![("log_group".into(), "/aws/rds/other".into())]),
            "other",
        );
        assert!(!p.takes(&other));
        assert_eq!(p.push(&other), Err(PackError::OtherStream));
        assert_eq!(p, before);
        // Emptied, it takes any stream.
        p.clear();
        assert!(p.takes(&other));
        p.push(&other).unwrap();
        assert_eq!(p.unpack().unwrap(), [other]);
    }

    #[test]
    fn packing_again_replaces_the_last_batch() {
        let mut p = Packed::default();
        p.pack(&[record(&stream(), "one")]).unwrap();
        p.pack(&[]).unwrap();
        assert_eq!((p.words(), p.ends(), p.text()), (&[0, 0][..], &[][..], ""));
        assert_eq!(p.unpack().unwrap(), []);
    }

    #[test]
    fn a_batch_that_breaks_the_layout_is_named() {
        let mut p = Packed::default();
        p.pack(&[record(&stream(), "one")]).unwrap();
        p.words[5] = 9; // the field count: more fields than there are
        assert_eq!(
            p.unpack().unwrap_err(),
            PackedError::BadCount {
                what: "a record's fields",
                index: 5,
                value: 9
            }
        );
        p.words[5] = 4;
        p.words[6] = 7; // a field kind
        assert_eq!(
            p.unpack().unwrap_err(),
            PackedError::BadKind { index: 6, value: 7 }
        );
    }
}
