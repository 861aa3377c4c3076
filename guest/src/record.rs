//! The record a mapper produces: one WhaTap log record, independent of the WIT bindings so that
//! the mapping logic can be built, tested and benchmarked natively.
//!
//! A record exists in two forms. [`Record`] owns its parts: a custom mapper's [`Hook`](crate::Hook)
//! changes it, and tests read it. [`RecordParts`] is any record as packing reads it, in place:
//! the default mapping packs each entry straight from its parse through it, so a 1 MB batch
//! of some 10,000 records costs no allocation per record (allocating and freeing each record's
//! strings had been a third of the mapping's time).
//!
//! Keys, the category and most tag values are `Cow<'static, str>`: they are fixed names. The
//! tags of a log stream are shared by its records ([`Record::stream_tags`]) and cross the
//! component boundary once per batch.

use std::borrow::Cow;
use std::sync::Arc;

/// A name or value that is usually a fixed string.
pub type Text = Cow<'static, str>;

/// Tags, in insertion order.
pub type Tags = Vec<(Text, Text)>;

/// The stream tags of a record that has none: one shared empty list, so a new record
/// allocates nothing for it, and records without stream tags still share theirs.
fn no_stream_tags() -> Arc<Tags> {
    static EMPTY: std::sync::OnceLock<Arc<Tags>> = std::sync::OnceLock::new();
    Arc::clone(EMPTY.get_or_init(|| Arc::new(Vec::new())))
}

/// The WhaTap log category of RDS engine log records.
pub const CATEGORY_LOG: &str = "#RDS_LOG";
/// The WhaTap log category of RDS events.
pub const CATEGORY_EVENT: &str = "#RDS_EVENT";

/// A typed field value. Kept typed (not stringified) so that WhaTap can filter and chart on it.
///
/// `T` is how text is held: owned in a [`Record`], borrowed from the entry in a parse
/// (`Cow<str>`) and when packed ([`FieldRef`]).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<T = String> {
    Text(T),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

/// A field value as packing reads it.
pub type FieldRef<'a> = FieldValue<&'a str>;

impl<T: AsRef<str>> FieldValue<T> {
    /// The value, its text borrowed.
    pub fn as_field_ref(&self) -> FieldRef<'_> {
        self.map_text(|t| t.as_ref())
    }

    /// The value with its text owned, as a [`Record`] holds it.
    pub fn to_owned_value(&self) -> FieldValue {
        self.map_text(|t| t.as_ref().to_owned())
    }

    fn map_text<'s, U>(&'s self, text: impl FnOnce(&'s T) -> U) -> FieldValue<U> {
        match self {
            FieldValue::Text(t) => FieldValue::Text(text(t)),
            FieldValue::Integer(i) => FieldValue::Integer(*i),
            FieldValue::Float(f) => FieldValue::Float(*f),
            FieldValue::Boolean(b) => FieldValue::Boolean(*b),
        }
    }
}

/// A record as it is packed for the host: read in place, whether it is a [`Record`] or an
/// entry straight from its parse. On the wire a record has its stream's tags first, then its
/// own ([`tags`](RecordParts::tags)), an own tag replacing a stream tag of the same key.
pub trait RecordParts {
    fn category(&self) -> &str;
    /// Epoch milliseconds.
    fn time(&self) -> i64;
    fn line(&self) -> i64;
    fn content(&self) -> &str;
    /// The tags every record of its log stream shares; records sharing them (the same `Arc`,
    /// or an equal list) are packed into one batch with them sent once.
    fn stream_tags(&self) -> &Arc<Tags>;
    /// The record's own tags, in order.
    fn tags(&self) -> impl Iterator<Item = (&str, &str)>;
    /// Typed fields, in order.
    fn fields(&self) -> impl Iterator<Item = (&str, FieldRef<'_>)>;
    /// The record as a [`Record`], for a hook to change.
    fn to_record(&self) -> Record;
}

/// One log record: what becomes one LogSinkPack on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub category: Text,
    /// Epoch milliseconds.
    pub time: i64,
    /// Tags every record of the same log stream carries, shared rather than copied. On the
    /// wire a record has these first, then its own [`tags`](Record::tags); an own tag with the
    /// same key replaces the stream's (use [`set_tag`](Record::set_tag), which does that).
    pub stream_tags: Arc<Tags>,
    /// The record's own tags in insertion order; WhaTap indexes tags, so they stay
    /// low-cardinality strings.
    pub tags: Tags,
    /// Typed fields in insertion order.
    pub fields: Vec<(Text, FieldValue)>,
    pub content: String,
    pub line: i64,
}

impl Record {
    pub fn new(category: impl Into<Text>, time: i64, content: String) -> Self {
        Record {
            category: category.into(),
            time,
            stream_tags: no_stream_tags(),
            tags: Vec::new(),
            fields: Vec::new(),
            content,
            line: 0,
        }
    }

    /// A copy of any record's parts.
    pub fn from_parts(r: &impl RecordParts) -> Record {
        let owned = |s: &str| -> Text { Cow::Owned(s.to_owned()) };
        Record {
            category: owned(r.category()),
            time: r.time(),
            stream_tags: Arc::clone(r.stream_tags()),
            tags: r.tags().map(|(k, v)| (owned(k), owned(v))).collect(),
            fields: r
                .fields()
                .map(|(k, v)| (owned(k), v.to_owned_value()))
                .collect(),
            content: r.content().to_owned(),
            line: r.line(),
        }
    }

    /// Sets a tag. An own tag is replaced in place (WhaTap's MapValue keeps a key's first
    /// position, and so do we); a stream tag of the same key is overridden.
    pub fn set_tag(&mut self, key: impl Into<Text>, value: impl Into<Text>) {
        let (key, value) = (key.into(), value.into());
        match self.tags.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.tags.push((key, value)),
        }
    }

    /// A tag's value: the record's own, else the stream's.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .chain(self.stream_tags.iter())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Every tag as it goes on the wire: the stream's (less those the record overrides), then
    /// the record's own.
    pub fn all_tags(&self) -> impl Iterator<Item = (&str, &str)> {
        self.stream_tags
            .iter()
            .filter(|(k, _)| !self.tags.iter().any(|(own, _)| own == k))
            .chain(self.tags.iter())
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// Sets a field, replacing an existing value in place.
    pub fn set_field(&mut self, key: impl Into<Text>, value: FieldValue) {
        let key = key.into();
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }

    pub fn field(&self, key: &str) -> Option<&FieldValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl RecordParts for Record {
    fn category(&self) -> &str {
        &self.category
    }

    fn time(&self) -> i64 {
        self.time
    }

    fn line(&self) -> i64 {
        self.line
    }

    fn content(&self) -> &str {
        &self.content
    }

    fn stream_tags(&self) -> &Arc<Tags> {
        &self.stream_tags
    }

    fn tags(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    fn fields(&self) -> impl Iterator<Item = (&str, FieldRef<'_>)> {
        self.fields
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_field_ref()))
    }

    fn to_record(&self) -> Record {
        self.clone()
    }
}
