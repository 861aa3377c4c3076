//! The project access key (license): `-`-separated Hexa32 tokens whose bytes hold the project
//! code (pcode) and the security key from which the AES master key comes.
//!
//! The license is a credential: [`License`] never prints it, and no error names a token.

use std::fmt;

use thiserror::Error;

use crate::codec::{Reader, Writer};
use crate::hash::hash64;

/// Why a license was refused. Messages name positions, never the license text.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LicenseError {
    #[error("the license is empty")]
    Empty,
    #[error("the license is malformed: token {index} of {count} is not a Hexa32 or decimal number")]
    BadToken { index: usize, count: usize },
    #[error("the license is malformed: its bytes do not hold a project code and a key")]
    Truncated,
    #[error("the license holds project code 0, which is not a project")]
    ZeroPcode,
    #[error("the license holds an empty security key")]
    EmptyKey,
    #[error("WHATAP_PCODE is {given}, but the license is for project {licensed}")]
    PcodeMismatch { given: i64, licensed: i64 },
}

/// A parsed license. `Debug` shows the pcode only.
#[derive(Clone, PartialEq, Eq)]
pub struct License {
    text: String,
    pub pcode: i64,
    security_key: Vec<u8>,
}

impl fmt::Debug for License {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("License")
            .field("pcode", &self.pcode)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Reads one Hexa32 token: `x…` positive base 32, `z…` negative, else decimal. Stricter than
/// WhaTap's decoder, which turns garbage into 0: only `0-9a-v` digits, no overflow.
fn token_value(token: &str) -> Option<i64> {
    let base32 = |digits: &str| -> Option<u64> {
        if digits.is_empty() {
            return None;
        }
        digits.bytes().try_fold(0u64, |acc, c| {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'v' => c - b'a' + 10,
                _ => return None,
            } as u64;
            acc.checked_mul(32)?.checked_add(d)
        })
    };
    match token.as_bytes().first()? {
        b'x' => i64::try_from(base32(&token[1..])?).ok(),
        b'z' if &token[1..] == "8000000000000" => Some(i64::MIN),
        b'z' => i64::try_from(base32(&token[1..])?).ok().map(|v| -v),
        _ => token.parse::<i64>().ok(),
    }
}

/// Writes one value as a Hexa32 token (the inverse of `token_value`).
fn token_text(v: i64) -> String {
    fn base32(mut n: u64) -> String {
        const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
        let mut out = Vec::new();
        loop {
            out.push(DIGITS[(n % 32) as usize]);
            n /= 32;
            if n == 0 {
                break;
            }
        }
        out.reverse();
        String::from_utf8(out).unwrap_or_default()
    }
    match v {
        i64::MIN => "z8000000000000".to_owned(),
        v if v < 0 => format!("z{}", base32(v.unsigned_abs())),
        v => format!("x{}", base32(v as u64)),
    }
}

impl License {
    pub fn parse(text: &str) -> Result<License, LicenseError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(LicenseError::Empty);
        }
        let tokens: Vec<&str> = text.split(['-', '_']).collect();
        let mut w = Writer::with_capacity(tokens.len() * 8);
        for (i, token) in tokens.iter().enumerate() {
            let v = token_value(token).ok_or(LicenseError::BadToken {
                index: i + 1,
                count: tokens.len(),
            })?;
            w.long(v);
        }
        let mut r = Reader::new(&w.buf);
        let pcode = r.decimal().map_err(|_| LicenseError::Truncated)?;
        let key = r.blob().map_err(|_| LicenseError::Truncated)?.to_vec();
        if pcode == 0 {
            return Err(LicenseError::ZeroPcode);
        }
        if key.is_empty() {
            return Err(LicenseError::EmptyKey);
        }
        Ok(License {
            text: text.to_owned(),
            pcode,
            security_key: key,
        })
    }

    /// Builds a license from its parts (the inverse of `parse`): for the collector emulator's
    /// tests and for making test licenses. Pads with zero bytes to a multiple of 8.
    pub fn build(pcode: i64, key: &[u8]) -> String {
        let mut w = Writer::new();
        w.decimal(pcode).blob(key);
        while !w.buf.len().is_multiple_of(8) {
            w.byte(0);
        }
        w.buf
            .chunks(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                token_text(i64::from_be_bytes(a))
            })
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Checks an explicitly configured pcode against the license's.
    pub fn check_pcode(&self, given: Option<i64>) -> Result<(), LicenseError> {
        match given {
            Some(given) if given != self.pcode => Err(LicenseError::PcodeMismatch {
                given,
                licensed: self.pcode,
            }),
            _ => Ok(()),
        }
    }

    /// The AES-128 master key: the security key's first 16 bytes, zero-padded.
    pub fn master_key(&self) -> [u8; 16] {
        let mut k = [0u8; 16];
        let n = self.security_key.len().min(16);
        k[..n].copy_from_slice(&self.security_key[..n]);
        k
    }

    /// Legacy Hash64 of the license text, as one-way frames carry it.
    pub fn hash(&self) -> i64 {
        hash64(self.text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = "x4c1p2g0g40o4-xa1g7104gk2oc-xq3gf208h44ok";

    #[test]
    fn parses_the_protocol_vector() {
        let l = License::parse(VECTOR).unwrap();
        assert_eq!(l.pcode, 12345);
        assert_eq!(l.security_key, (1u8..=20).collect::<Vec<_>>());
        assert_eq!(
            l.master_key(),
            <[u8; 16]>::try_from((1u8..=16).collect::<Vec<_>>()).unwrap()
        );
        assert_eq!(l.hash() as u64, 0xffffffffc4719557);
    }

    #[test]
    fn build_is_the_inverse_of_parse() {
        let key: Vec<u8> = (1u8..=20).collect();
        assert_eq!(License::build(12345, &key), VECTOR);
        let other = License::build(987654321, b"0123456789abcdef");
        let l = License::parse(&other).unwrap();
        assert_eq!((l.pcode, l.master_key()), (987654321, *b"0123456789abcdef"));
    }

    #[test]
    fn hexa32_tokens() {
        for (v, t) in [
            (10i64, "xa"),
            (31, "xv"),
            (32, "x10"),
            (-1, "z1"),
            (12345, "xc1p"),
            (-743752992412427445, "zkkincvom0p5l"),
        ] {
            assert_eq!(token_text(v), t);
            assert_eq!(token_value(t), Some(v));
        }
        assert_eq!(token_value("z8000000000000"), Some(i64::MIN));
        assert_eq!(token_value("7"), Some(7));
        assert_eq!(token_value("xw"), None);
        assert_eq!(token_value("x"), None);
        assert_eq!(token_value("xvvvvvvvvvvvvvv"), None, "overflow");
    }

    #[test]
    fn refusals_never_show_the_license() {
        let cases = [
            ("", LicenseError::Empty),
            (
                "x4c1p2g0g40o4-not!hexa-xq3gf208h44ok",
                LicenseError::BadToken { index: 2, count: 3 },
            ),
            ("0", LicenseError::ZeroPcode),
            ("x4c1p2g0g40o4", LicenseError::Truncated),
        ];
        for (text, want) in cases {
            let err = License::parse(text).unwrap_err();
            assert_eq!(err, want, "{text:?}");
            if text.len() > 8 {
                assert!(!err.to_string().contains(text));
            }
        }
        // pcode 5, key of length 0.
        assert_eq!(
            License::parse(&License::build(5, b"")),
            Err(LicenseError::EmptyKey)
        );
        let l = License::parse(VECTOR).unwrap();
        assert!(!format!("{l:?}").contains("x4c1"));
        assert_eq!(l.check_pcode(Some(12345)), Ok(()));
        assert_eq!(l.check_pcode(None), Ok(()));
        assert_eq!(
            l.check_pcode(Some(1)).unwrap_err().to_string(),
            "WHATAP_PCODE is 1, but the license is for project 12345"
        );
    }
}
