//! The record a mapper produces: one WhaTap log record, independent of the WIT bindings so that
//! the mapping logic can be built, tested and benchmarked natively.

/// The WhaTap log category of RDS engine log records.
pub const CATEGORY_LOG: &str = "#RDS_LOG";
/// The WhaTap log category of RDS events.
pub const CATEGORY_EVENT: &str = "#RDS_EVENT";

/// A typed field value. Kept typed (not stringified) so that WhaTap can filter and chart on it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

/// One log record: what becomes one LogSinkPack on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub category: String,
    /// Epoch milliseconds.
    pub time: i64,
    /// Tags in insertion order; WhaTap indexes them, so they stay low-cardinality strings.
    pub tags: Vec<(String, String)>,
    /// Typed fields in insertion order.
    pub fields: Vec<(String, FieldValue)>,
    pub content: String,
    pub line: i64,
}

impl Record {
    pub fn new(category: &str, time: i64, content: String) -> Self {
        Record {
            category: category.to_owned(),
            time,
            tags: Vec::new(),
            fields: Vec::new(),
            content,
            line: 0,
        }
    }

    /// Sets a tag, replacing an existing value in place (WhaTap's MapValue keeps a key's first
    /// position, and so do we).
    pub fn set_tag(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.tags.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.tags.push((key.to_owned(), value)),
        }
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets a field, replacing an existing value in place.
    pub fn set_field(&mut self, key: &str, value: FieldValue) {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key.to_owned(), value)),
        }
    }

    pub fn field(&self, key: &str) -> Option<&FieldValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A rough size of the record on the wire, for batching by bytes.
    pub fn approx_size(&self) -> usize {
        let tags: usize = self.tags.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        let fields: usize = self
            .fields
            .iter()
            .map(|(k, v)| {
                k.len()
                    + 4
                    + match v {
                        FieldValue::Text(s) => s.len(),
                        _ => 9,
                    }
            })
            .sum();
        self.category.len() + self.content.len() + tags + fields + 32
    }
}
