//! WhaTap's primitive encodings (DataOutputX / DataInputX): big-endian integers, the
//! variable-length `decimal`, and length-prefixed `blob`/`text`. No I/O: a writer appends to a
//! `Vec<u8>`, a reader walks a slice and reports `Incomplete` when it runs out.

use thiserror::Error;

/// Why bytes could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended in the middle of a value: more bytes may complete it.
    #[error("input ended early, reading {0}")]
    Incomplete(&'static str),
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
}

impl DecodeError {
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        DecodeError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

/// Appends WhaTap encodings to a buffer.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.buf.push(b);
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.byte(v as u8)
    }

    pub fn short(&mut self, v: i16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn int(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn long(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn double(&mut self, v: f64) -> &mut Self {
        self.long(v.to_bits() as i64)
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// The shortest two's-complement form of 0, 1, 2, 3, 4, 5 or 8 bytes, after a length byte.
    pub fn decimal(&mut self, v: i64) -> &mut Self {
        let len: usize = match v {
            0 => 0,
            -0x80..=0x7f => 1,
            -0x8000..=0x7fff => 2,
            -0x80_0000..=0x7f_ffff => 3,
            -0x8000_0000..=0x7fff_ffff => 4,
            -0x80_0000_0000..=0x7f_ffff_ffff => 5,
            _ => 8,
        };
        self.byte(len as u8);
        self.buf.extend_from_slice(&v.to_be_bytes()[8 - len..]);
        self
    }

    /// Empty → `00`; up to 253 bytes → one length byte; up to 65535 → `FF` + u16; else `FE` + i32.
    pub fn blob(&mut self, b: &[u8]) -> &mut Self {
        match b.len() {
            0 => return self.byte(0),
            n @ 1..=253 => self.byte(n as u8),
            n @ 254..=65535 => self.byte(0xff).bytes(&(n as u16).to_be_bytes()),
            n => self.byte(0xfe).int(n as i32),
        };
        self.bytes(b)
    }

    pub fn text(&mut self, s: &str) -> &mut Self {
        self.blob(s.as_bytes())
    }

    /// An i32 length, then the bytes.
    pub fn int_bytes(&mut self, b: &[u8]) -> &mut Self {
        self.int(b.len() as i32).bytes(b)
    }
}

/// Reads WhaTap encodings from a slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// What was read since `start` (an earlier [`position`](Self::position)).
    pub fn since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError::Incomplete(what))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    pub fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1, "a byte")?[0])
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.byte()? == 1)
    }

    pub fn short(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array("a short")?))
    }

    pub fn int(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array("an int")?))
    }

    pub fn long(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array("a long")?))
    }

    pub fn float(&mut self) -> Result<f32, DecodeError> {
        Ok(f32::from_bits(self.int()? as u32))
    }

    pub fn double(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(self.long()? as u64))
    }

    /// Lengths 1..=5 are sign-extended; any other non-zero length reads 8 bytes (as WhaTap's
    /// reader does).
    pub fn decimal(&mut self) -> Result<i64, DecodeError> {
        let len = match self.byte()? {
            0 => return Ok(0),
            n @ 1..=5 => n as usize,
            _ => 8,
        };
        let b = self.take(len, "a decimal")?;
        let mut v: i64 = if b[0] & 0x80 != 0 { -1 } else { 0 };
        for &byte in b {
            v = (v << 8) | byte as i64;
        }
        Ok(v)
    }

    pub fn blob(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = match self.byte()? {
            0xff => u16::from_be_bytes(self.array("a blob length")?) as usize,
            0xfe => {
                let n = self.int()?;
                usize::try_from(n)
                    .map_err(|_| DecodeError::invalid("blob", format!("length {n}")))?
            }
            n => n as usize,
        };
        self.take(len, "a blob")
    }

    pub fn text(&mut self) -> Result<&'a str, DecodeError> {
        let b = self.blob()?;
        std::str::from_utf8(b).map_err(|e| DecodeError::invalid("text", e.to_string()))
    }

    pub fn int_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.int()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::invalid("length", format!("{n}")))?;
        self.take(n, "length-prefixed bytes")
    }
}

/// Lower-case hex, for tests and diagnostics.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_vectors_round_trip() {
        let vectors: [(i64, &str); 10] = [
            (0, "00"),
            (1, "0101"),
            (-1, "01ff"),
            (128, "020080"),
            (32768, "03008000"),
            (8388608, "0400800000"),
            (2147483648, "050080000000"),
            (549755813888, "080000008000000000"),
            (1700000000000, "080000018bcfe56800"),
            (i64::MIN, "088000000000000000"),
        ];
        for (v, h) in vectors {
            let mut w = Writer::new();
            w.decimal(v);
            assert_eq!(hex(&w.buf), h, "{v}");
            assert_eq!(Reader::new(&w.buf).decimal().unwrap(), v);
        }
    }

    #[test]
    fn blob_headers_and_text() {
        for (len, head) in [
            (253usize, "fd"),
            (254, "ff00fe"),
            (65535, "ffffff"),
            (65536, "fe00010000"),
        ] {
            let data = vec![7u8; len];
            let mut w = Writer::new();
            w.blob(&data);
            assert_eq!(hex(&w.buf[..head.len() / 2]), head, "{len}");
            assert_eq!(w.buf.len(), head.len() / 2 + len);
            assert_eq!(Reader::new(&w.buf).blob().unwrap(), &data[..]);
        }
        for (s, h) in [("", "00"), ("AppLog", "064170704c6f67"), ("한", "03ed959c")] {
            let mut w = Writer::new();
            w.text(s);
            assert_eq!(hex(&w.buf), h);
            assert_eq!(Reader::new(&w.buf).text().unwrap(), s);
        }
    }

    #[test]
    fn short_input_is_incomplete_not_a_panic() {
        assert_eq!(
            Reader::new(&[0x05, 1, 2]).decimal(),
            Err(DecodeError::Incomplete("a decimal"))
        );
        assert_eq!(
            Reader::new(&[0xff, 0]).blob(),
            Err(DecodeError::Incomplete("a blob length"))
        );
        assert_eq!(
            Reader::new(&[0x03, b'a']).blob(),
            Err(DecodeError::Incomplete("a blob"))
        );
        assert!(matches!(
            Reader::new(&[0xfe, 0xff, 0xff, 0xff, 0xff]).blob(),
            Err(DecodeError::Invalid { .. })
        ));
    }
}
