//! WhaTap `Value`s: a type code byte, then the value. Only the types a log record uses are
//! written; the reader accepts the others it may meet and keeps them as text.

use crate::codec::{DecodeError, Reader, Writer};

pub const NULL: u8 = 0;
pub const BOOLEAN: u8 = 10;
pub const DECIMAL: u8 = 20;
pub const DECIMAL_INT: u8 = 21;
pub const DECIMAL_LONG: u8 = 22;
pub const FLOAT: u8 = 30;
pub const DOUBLE: u8 = 40;
pub const TEXT: u8 = 50;
pub const MAP: u8 = 80;

/// A value as it appears in a tag or field map.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Decimal(i64),
    Double(f64),
    Text(String),
}

/// A [`Value`] borrowing its text: what the encoder writes, straight from the records the
/// mapper sent, without copying them into owned values first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Bool(bool),
    Decimal(i64),
    Double(f64),
    Text(&'a str),
}

impl<'a> ValueRef<'a> {
    /// Reads a value in place: its text borrows from the bytes.
    pub fn read(r: &mut Reader<'a>) -> Result<ValueRef<'a>, DecodeError> {
        Ok(match r.byte()? {
            NULL => ValueRef::Null,
            BOOLEAN => ValueRef::Bool(r.bool()?),
            DECIMAL => ValueRef::Decimal(r.decimal()?),
            DECIMAL_INT => ValueRef::Decimal(r.int()? as i64),
            DECIMAL_LONG => ValueRef::Decimal(r.long()?),
            FLOAT => ValueRef::Double(r.float()? as f64),
            DOUBLE => ValueRef::Double(r.double()?),
            TEXT => ValueRef::Text(r.text()?),
            code => {
                return Err(DecodeError::invalid(
                    "value",
                    format!("type code {code} is not used in log records"),
                ));
            }
        })
    }

    pub fn to_owned(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Decimal(v) => Value::Decimal(v),
            ValueRef::Double(v) => Value::Double(v),
            ValueRef::Text(s) => Value::Text(s.to_owned()),
        }
    }

    pub fn write(self, w: &mut Writer) {
        match self {
            ValueRef::Null => {
                w.byte(NULL);
            }
            ValueRef::Bool(b) => {
                w.byte(BOOLEAN).bool(b);
            }
            ValueRef::Decimal(v) => {
                w.byte(DECIMAL).decimal(v);
            }
            ValueRef::Double(v) => {
                w.byte(DOUBLE).double(v);
            }
            ValueRef::Text(s) => {
                w.byte(TEXT).text(s);
            }
        }
    }
}

impl Value {
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Decimal(v) => ValueRef::Decimal(*v),
            Value::Double(v) => ValueRef::Double(*v),
            Value::Text(s) => ValueRef::Text(s),
        }
    }

    pub fn write(&self, w: &mut Writer) {
        self.as_ref().write(w)
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Value, DecodeError> {
        ValueRef::read(r).map(ValueRef::to_owned)
    }
}

/// Writes a MapValue (`80`, count, then text key + value per entry), keeping the given order.
pub fn write_map<'a>(
    w: &mut Writer,
    entries: impl ExactSizeIterator<Item = (&'a str, ValueRef<'a>)>,
) {
    w.byte(MAP).decimal(entries.len() as i64);
    for (k, v) in entries {
        w.text(k);
        v.write(w);
    }
}

/// Reads a MapValue, including its type code.
pub fn read_map(r: &mut Reader<'_>) -> Result<Vec<(String, Value)>, DecodeError> {
    MapRef::read(r).map(|m| m.to_owned())
}

/// A MapValue read in place: every entry checked once as it is read, then read again from
/// its bytes whenever asked, with nothing copied. A receiver that only checks and counts what
/// arrives (the collector emulator) never builds owned entries.
#[derive(Debug, Clone, Copy)]
pub struct MapRef<'a> {
    /// The map as encoded, type code included.
    raw: &'a [u8],
    len: usize,
}

impl<'a> MapRef<'a> {
    pub fn read(r: &mut Reader<'a>) -> Result<MapRef<'a>, DecodeError> {
        let start = r.position();
        let len = map_header(r)?;
        for _ in 0..len {
            r.text()?;
            ValueRef::read(r)?;
        }
        Ok(MapRef {
            raw: r.since(start),
            len,
        })
    }

    /// The map's encoding, as it arrived.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries, in order.
    pub fn entries(&self) -> impl Iterator<Item = (&'a str, ValueRef<'a>)> + use<'a> {
        let mut r = Reader::new(self.raw);
        // Checked when the map was read, so neither read below fails.
        let len = map_header(&mut r).unwrap_or(0);
        (0..len).map_while(move |_| Some((r.text().ok()?, ValueRef::read(&mut r).ok()?)))
    }

    pub fn to_owned(&self) -> Vec<(String, Value)> {
        self.entries()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// A MapValue's type code and entry count.
fn map_header(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let code = r.byte()?;
    if code != MAP {
        return Err(DecodeError::invalid(
            "map",
            format!("type code {code}, expected {MAP}"),
        ));
    }
    let n = r.decimal()?;
    if n < 0 || n as usize > r.remaining().len() {
        return Err(DecodeError::invalid(
            "map",
            format!("{n} entries in {} bytes", r.remaining().len()),
        ));
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::hex;

    #[test]
    fn map_keeps_insertion_order() {
        let mut w = Writer::new();
        write_map(
            &mut w,
            [("oname", ValueRef::Text("test-agent"))].into_iter(),
        );
        assert_eq!(hex(&w.buf), "500101056f6e616d65320a746573742d6167656e74");
        let mut w = Writer::new();
        let entries = vec![
            ("host", Value::Text("db-1".into())),
            ("n", Value::Decimal(300)),
            ("b", Value::Bool(true)),
        ];
        write_map(&mut w, entries.iter().map(|(k, v)| (*k, v.as_ref())));
        assert_eq!(
            hex(&w.buf),
            "50010304686f7374320464622d31016e1402012c01620a01"
        );
        let back = read_map(&mut Reader::new(&w.buf)).unwrap();
        let back: Vec<(&str, Value)> = back.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        assert_eq!(back, entries);
    }

    #[test]
    fn a_huge_entry_count_is_refused_before_allocating() {
        let mut w = Writer::new();
        w.byte(MAP).decimal(i64::MAX);
        assert!(matches!(
            read_map(&mut Reader::new(&w.buf)),
            Err(DecodeError::Invalid { .. })
        ));
    }
}
