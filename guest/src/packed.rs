//! A batch in the packed form of the contract's `sink.send-packed` (1.2; the layout is in
//! `wit/mapper.wit`): every string back to back in one text, and the batch's shape as numbers.
//!
//! Sent as `log-record`s, a batch costs the host a check for every string of every record,
//! and the guest a list allocated for every record's tags and fields. Packed, the guest copies
//! the strings once and the host checks the text once.

use std::sync::Arc;

use crate::record::{FieldValue, Record};

/// A packed batch. Kept between batches so that its buffers are allocated once per call.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Packed {
    pub text: String,
    /// Where each string ends in `text`.
    pub ends: Vec<u32>,
    pub words: Vec<i64>,
}

/// The batch is too large for the layout's 32-bit offsets (wasm32 memory cannot hold one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a batch's text passed 4 GiB, more than sink.send-packed's offsets can address")]
pub struct TooLarge;

impl Packed {
    /// Packs `batch` in place of what this held. Records that share one stream's tags (a
    /// batch of the library's) send them once; records of several streams, a custom mapper's
    /// doing, each carry theirs among their own tags.
    pub fn pack(&mut self, batch: &[Record]) -> Result<(), TooLarge> {
        self.text.clear();
        self.ends.clear();
        self.words.clear();
        let Some(first) = batch.first() else {
            self.words.extend([0, 0]);
            return Ok(());
        };
        let shared = batch
            .iter()
            .all(|r| Arc::ptr_eq(&r.stream_tags, &first.stream_tags));
        // The buffers outlive the batch: sized once, on the first batch of a call, from its
        // own sizes, rather than grown by doubling; later batches find them large enough.
        if self.text.capacity() == 0 {
            self.text
                .reserve(batch.iter().map(Record::approx_size).sum::<usize>());
            let per = 2 + 2 * first.tags.len() + 2 * first.fields.len();
            self.ends.reserve(per * batch.len());
            self.words
                .reserve((4 + 2 * first.fields.len()) * batch.len() + 2);
        }

        let stream = first
            .stream_tags
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()));
        if shared {
            self.pairs(stream)?;
        } else {
            self.pairs(std::iter::empty())?;
        }
        self.words.push(batch.len() as i64);
        for r in batch {
            self.words.extend([r.time, r.line]);
            self.string(&r.category)?;
            self.string(&r.content)?;
            if shared {
                self.pairs(r.tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))?;
            } else {
                self.pairs(r.all_tags())?;
            }
            self.words.push(r.fields.len() as i64);
            for (k, v) in &r.fields {
                match v {
                    FieldValue::Text(s) => {
                        self.words.push(0);
                        self.string(k)?;
                        self.string(s)?;
                    }
                    FieldValue::Integer(i) => {
                        self.words.push(1);
                        self.string(k)?;
                        self.words.push(*i);
                    }
                    FieldValue::Float(f) => {
                        self.words.push(2);
                        self.string(k)?;
                        self.words.push(f.to_bits() as i64);
                    }
                    FieldValue::Boolean(b) => {
                        self.words.push(3);
                        self.string(k)?;
                        self.words.push(i64::from(*b));
                    }
                }
            }
        }
        Ok(())
    }

    /// Tag pairs: their count as a word, then key and value as strings. The count is written
    /// once the pairs are, so an iterator is walked once.
    fn pairs<'t>(
        &mut self,
        tags: impl Iterator<Item = (&'t str, &'t str)>,
    ) -> Result<(), TooLarge> {
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

    fn string(&mut self, s: &str) -> Result<(), TooLarge> {
        self.text.push_str(s);
        self.ends
            .push(u32::try_from(self.text.len()).map_err(|_| TooLarge)?);
        Ok(())
    }

    /// The strings, cut at their ends: what the host reads back.
    pub fn strings(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let s = &self.text[start..end as usize];
                start = end as usize;
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Arc<Vec<(crate::record::Text, crate::record::Text)>> {
        Arc::new(vec![("log_group".into(), "/aws/rds/db".into())])
    }

    fn record(
        stream: &Arc<Vec<(crate::record::Text, crate::record::Text)>>,
        content: &str,
    ) -> Record {
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
        assert_eq!(p.words, words);
    }

    #[test]
    fn records_of_several_streams_carry_their_stream_tags_among_their_own() {
        let other = Arc::new(vec![
            ("log_group".into(), "/aws/rds/other".into()),
            ("level".into(), "info".into()),
        ]);
        let mut p = Packed::default();
        let mut plain = Record::new("#RDS_LOG", 5, "x".to_owned());
        plain.stream_tags = other;
        plain.set_tag("level", "warn");
        p.pack(&[record(&stream(), "one"), plain]).unwrap();
        // The overridden stream tag (`level`) gives way to the record's own.
        assert_eq!(
            &p.strings()[11..],
            [
                "#RDS_LOG",
                "x",
                "log_group",
                "/aws/rds/other",
                "level",
                "warn"
            ]
        );
        assert_eq!(&p.words[..2], [0, 2]);
        assert_eq!(&p.words[2 + 11..], [5, 0, 2, 0]);
    }

    #[test]
    fn packing_again_replaces_the_last_batch() {
        let mut p = Packed::default();
        p.pack(&[record(&stream(), "one")]).unwrap();
        p.pack(&[]).unwrap();
        assert_eq!(
            p,
            Packed {
                words: vec![0, 0],
                ..Packed::default()
            }
        );
    }
}
