//! Reading the batch of `sink.send-packed` (contract 1.2, laid out in `wit/mapper.wit`), and
//! the field kinds both the writer (`rds_mapper::packed`) and this reader use.
//!
//! The batch arrives as one string and two lists of numbers, all read in place in the guest's
//! memory. This module turns them into the borrowed records a sink takes, checking every
//! count and offset: a mapper that breaks the layout gets an error naming the word or string
//! at fault, never a panic of the host.

use std::ops::Range;

use thiserror::Error;

use crate::{BatchRef, FieldRef, RecordRef};

/// A text field: its value is the next string.
pub const KIND_TEXT: i64 = 0;
/// An integer field: its value is the next word.
pub const KIND_INTEGER: i64 = 1;
/// A float field: its value is the next word, the float's bits.
pub const KIND_FLOAT: i64 = 2;
/// A boolean field: its value is the next word, 0 or 1.
pub const KIND_BOOLEAN: i64 = 3;

/// How a packed batch breaks the layout. The mapper built it wrong; its data is not at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PackedError {
    #[error("the words end where {what} was due (word {index})")]
    NoWord { what: &'static str, index: usize },
    #[error("the strings end where {what} was due (string {index})")]
    NoString { what: &'static str, index: usize },
    #[error(
        "word {index}, the count of {what}, is {value}: negative, or more than the rest of the batch holds"
    )]
    BadCount {
        what: &'static str,
        index: usize,
        value: i64,
    },
    #[error("word {index} is field kind {value}, not 0 (text) to 3 (boolean)")]
    BadKind { index: usize, value: i64 },
    #[error("word {index} is boolean {value}, not 0 or 1")]
    BadBoolean { index: usize, value: i64 },
    #[error("string {index} ({what}) ends at {end}, before it starts at {start}")]
    Backwards {
        what: &'static str,
        index: usize,
        start: usize,
        end: usize,
    },
    #[error("string {index} ({what}) ends at {end}, past the text's {len} bytes")]
    PastText {
        what: &'static str,
        index: usize,
        end: usize,
        len: usize,
    },
    #[error("string {index} ({what}) ends at {end}, inside a character")]
    InsideCharacter {
        what: &'static str,
        index: usize,
        end: usize,
    },
    #[error("{words} words and {strings} strings are left over after the last record")]
    LeftOver { words: usize, strings: usize },
}

/// A batch read out of its packed form, borrowing the guest's text.
#[derive(Debug)]
pub struct Unpacked<'a> {
    stream_tags: Vec<(&'a str, &'a str)>,
    tags: Vec<(&'a str, &'a str)>,
    fields: Vec<(&'a str, FieldRef<'a>)>,
    records: Vec<Head<'a>>,
}

/// One record, its tags and fields as ranges of the batch-wide vectors.
#[derive(Debug)]
struct Head<'a> {
    category: &'a str,
    content: &'a str,
    time: i64,
    line: i64,
    tags: Range<usize>,
    fields: Range<usize>,
}

impl<'a> Unpacked<'a> {
    /// Reads a batch, checking it against the layout as it goes.
    pub fn read(text: &'a str, ends: &'a [u32], words: &'a [i64]) -> Result<Self, PackedError> {
        let mut c = Cursor {
            text,
            ends,
            words,
            word: 0,
            string: 0,
            start: 0,
        };
        let stream = c.count("stream tags", 0, 2)?;
        let mut stream_tags = Vec::with_capacity(stream);
        for _ in 0..stream {
            stream_tags.push((
                c.string("a stream tag's key")?,
                c.string("a stream tag's value")?,
            ));
        }
        // A record takes at least four words and two strings: no count can allocate more
        // than the batch could hold.
        let n = c.count("records", 4, 2)?;
        let mut records = Vec::with_capacity(n);
        let mut tags = Vec::new();
        let mut fields = Vec::new();
        for i in 0..n {
            let time = c.word("a record's time")?;
            let line = c.word("a record's line")?;
            let own_tags = c.count("a record's tags", 0, 2)?;
            let own_fields = c.count("a record's fields", 1, 1)?;
            if i == 0 {
                // The records of a batch are mostly alike: sized from the first, never past
                // what the strings left could fill.
                tags.reserve(own_tags.saturating_mul(n).min(c.strings_left() / 2));
                fields.reserve(own_fields.saturating_mul(n).min(c.strings_left()));
            }
            let category = c.string("a record's category")?;
            let content = c.string("a record's content")?;
            let t = tags.len();
            for _ in 0..own_tags {
                tags.push((c.string("a tag's key")?, c.string("a tag's value")?));
            }
            let f = fields.len();
            for _ in 0..own_fields {
                let index = c.word;
                let kind = c.word("a field's kind")?;
                let key = c.string("a field's key")?;
                let value = match kind {
                    KIND_TEXT => FieldRef::Text(c.string("a text field's value")?),
                    KIND_INTEGER => FieldRef::Integer(c.word("an integer field's value")?),
                    KIND_FLOAT => {
                        FieldRef::Float(f64::from_bits(c.word("a float field's value")? as u64))
                    }
                    KIND_BOOLEAN => {
                        let index = c.word;
                        match c.word("a boolean field's value")? {
                            0 => FieldRef::Boolean(false),
                            1 => FieldRef::Boolean(true),
                            value => return Err(PackedError::BadBoolean { index, value }),
                        }
                    }
                    value => return Err(PackedError::BadKind { index, value }),
                };
                fields.push((key, value));
            }
            records.push(Head {
                category,
                content,
                time,
                line,
                tags: t..tags.len(),
                fields: f..fields.len(),
            });
        }
        if c.word < words.len() || c.string < ends.len() {
            return Err(PackedError::LeftOver {
                words: words.len() - c.word,
                strings: ends.len() - c.string,
            });
        }
        Ok(Unpacked {
            stream_tags,
            tags,
            fields,
            records,
        })
    }

    /// The records, as a sink takes them; `stream_tags` goes with them into a [`BatchRef`].
    pub fn records(&self) -> Vec<RecordRef<'_>> {
        self.records
            .iter()
            .map(|h| RecordRef {
                category: h.category,
                time: h.time,
                tags: &self.tags[h.tags.clone()],
                fields: &self.fields[h.fields.clone()],
                content: h.content,
                line: h.line,
            })
            .collect()
    }

    /// The batch, given the vector [`records`](Self::records) made.
    pub fn batch<'r>(&'r self, records: &'r [RecordRef<'r>]) -> BatchRef<'r> {
        BatchRef {
            stream_tags: &self.stream_tags,
            records,
        }
    }
}

/// Where the reading is in the words and the strings.
struct Cursor<'a> {
    text: &'a str,
    ends: &'a [u32],
    words: &'a [i64],
    word: usize,
    string: usize,
    /// Where the next string starts in `text`.
    start: usize,
}

impl<'a> Cursor<'a> {
    fn word(&mut self, what: &'static str) -> Result<i64, PackedError> {
        let index = self.word;
        let w = *self
            .words
            .get(index)
            .ok_or(PackedError::NoWord { what, index })?;
        self.word += 1;
        // The canonical ABI's memory is little-endian; a no-op on every host Lambda runs.
        Ok(i64::from_le(w))
    }

    fn strings_left(&self) -> usize {
        self.ends.len() - self.string
    }

    /// A count, refused when it is negative or when its items (each at least `words` words
    /// and `strings` strings) could not fit in what is left.
    fn count(
        &mut self,
        what: &'static str,
        words: usize,
        strings: usize,
    ) -> Result<usize, PackedError> {
        let index = self.word;
        let value = self.word(what)?;
        let fits = |n: usize| {
            n.checked_mul(words)
                .is_some_and(|w| w <= self.words.len() - self.word)
                && n.checked_mul(strings)
                    .is_some_and(|s| s <= self.strings_left())
        };
        match usize::try_from(value) {
            Ok(n) if fits(n) => Ok(n),
            _ => Err(PackedError::BadCount { what, index, value }),
        }
    }

    fn string(&mut self, what: &'static str) -> Result<&'a str, PackedError> {
        let index = self.string;
        let end = u32::from_le(
            *self
                .ends
                .get(index)
                .ok_or(PackedError::NoString { what, index })?,
        ) as usize;
        let start = self.start;
        let Some(s) = self.text.get(start..end) else {
            return Err(if end < start {
                PackedError::Backwards {
                    what,
                    index,
                    start,
                    end,
                }
            } else if end > self.text.len() {
                PackedError::PastText {
                    what,
                    index,
                    end,
                    len: self.text.len(),
                }
            } else {
                PackedError::InsideCharacter { what, index, end }
            });
        };
        self.string += 1;
        self.start = end;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs strings the way the layout says: back to back, with their ends.
    fn text(strings: &[&str]) -> (String, Vec<u32>) {
        let mut text = String::new();
        let mut ends = Vec::new();
        for s in strings {
            text.push_str(s);
            ends.push(text.len() as u32);
        }
        (text, ends)
    }

    #[test]
    fn a_batch_reads_back_with_every_kind_of_field() {
        let (text, ends) = text(&[
            "log_group",
            "/aws/rds/db", // stream tag
            "#RDS_LOG",
            "first line",
            "level",
            "error", // record 1
            "msg",
            "é ok",
            "n",
            "ratio",
            "slow",
            "#RDS_EVENT",
            "", // record 2: empty content, no tags or fields
        ]);
        let words = [
            1, // stream tags
            2, // records
            1_700_000_000_000,
            7,
            1,
            4, // time, line, tags, fields
            0, // msg: text
            1,
            -42, // n: integer
            2,
            2.5f64.to_bits() as i64, // ratio: float
            3,
            1, // slow: boolean
            5,
            0,
            0,
            0,
        ];
        let u = Unpacked::read(&text, &ends, &words).unwrap();
        let records = u.records();
        let batch = u.batch(&records);
        assert_eq!(batch.stream_tags, [("log_group", "/aws/rds/db")]);
        assert_eq!(batch.records.len(), 2);
        let r = &batch.records[0];
        assert_eq!(
            (r.category, r.time, r.line, r.content),
            ("#RDS_LOG", 1_700_000_000_000, 7, "first line")
        );
        assert_eq!(r.tags, [("level", "error")]);
        assert_eq!(
            r.fields,
            [
                ("msg", FieldRef::Text("é ok")),
                ("n", FieldRef::Integer(-42)),
                ("ratio", FieldRef::Float(2.5)),
                ("slow", FieldRef::Boolean(true)),
            ]
        );
        let r = &batch.records[1];
        assert_eq!(
            (r.category, r.time, r.line, r.content),
            ("#RDS_EVENT", 5, 0, "")
        );
        assert!(r.tags.is_empty() && r.fields.is_empty());
    }

    #[test]
    fn an_empty_batch_is_two_zero_counts() {
        let u = Unpacked::read("", &[], &[0, 0]).unwrap();
        assert!(u.records().is_empty());
    }

    fn error(strings: &[&str], words: &[i64]) -> String {
        let (text, ends) = text(strings);
        Unpacked::read(&text, &ends, words).unwrap_err().to_string()
    }

    #[test]
    fn a_batch_that_breaks_the_layout_is_refused_naming_the_word_or_string() {
        assert_eq!(
            error(&[], &[]),
            "the words end where stream tags was due (word 0)"
        );
        assert_eq!(
            error(&["c", "x", "k"], &[0, 1, 0, 0, 0, 1, 1]),
            "the words end where an integer field's value was due (word 7)"
        );
        // A record takes four words and two strings at least.
        assert_eq!(
            error(&["c"], &[0, 1, 0, 0, 0, 0]),
            "word 1, the count of records, is 1: negative, or more than the rest of the batch holds"
        );
        assert_eq!(
            error(&[], &[-1]),
            "word 0, the count of stream tags, is -1: negative, or more than the rest of the batch holds"
        );
        assert_eq!(
            error(&["c", "x", "k"], &[0, 1, 0, 0, 0, 1, 7]),
            "word 6 is field kind 7, not 0 (text) to 3 (boolean)"
        );
        assert_eq!(
            error(&["c", "x", "k"], &[0, 1, 0, 0, 0, 1, 3, 2]),
            "word 7 is boolean 2, not 0 or 1"
        );
        assert_eq!(
            error(&["c", "x", "k"], &[0, 1, 0, 0, 0, 1, 0]),
            "the strings end where a text field's value was due (string 3)"
        );
        assert_eq!(
            error(&["c", "x", "extra"], &[0, 1, 0, 0, 0, 0, 9]),
            "1 words and 1 strings are left over after the last record"
        );
    }

    #[test]
    fn an_end_outside_the_text_or_inside_a_character_is_refused() {
        let words = [0, 1, 0, 0, 0, 0];
        assert_eq!(
            Unpacked::read("ab", &[2, 1], &words)
                .unwrap_err()
                .to_string(),
            "string 1 (a record's content) ends at 1, before it starts at 2"
        );
        assert_eq!(
            Unpacked::read("ab", &[1, 3], &words)
                .unwrap_err()
                .to_string(),
            "string 1 (a record's content) ends at 3, past the text's 2 bytes"
        );
        assert_eq!(
            Unpacked::read("aé", &[2, 3], &words)
                .unwrap_err()
                .to_string(),
            "string 0 (a record's category) ends at 2, inside a character"
        );
    }

    proptest::proptest! {
        /// Whatever a mapper sends, reading it gives records or an error, never a panic.
        #[test]
        fn any_words_and_ends_give_records_or_an_error(
            text in ".{0,40}",
            ends in proptest::collection::vec(0u32..48, 0..24),
            words in proptest::collection::vec(-2i64..6, 0..40),
        ) {
            let _ = Unpacked::read(&text, &ends, &words);
        }
    }
}
