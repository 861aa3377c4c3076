//! Decoding a CloudWatch Logs subscription payload: `awslogs.data` is base64 of a gzip of JSON.
//!
//! Written here rather than taken from `aws_lambda_events::cloudwatch_logs`, whose
//! deserializer inflates the payload with no size bound (a gzip bomb becomes an out-of-memory
//! trap) and requires fields that hand-built test payloads lack.

use std::borrow::Cow;
use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use flate2::read::{MultiGzDecoder, ZlibDecoder};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::MapError;

/// `messageType` of a health check CloudWatch sends when a subscription is created.
pub const CONTROL_MESSAGE: &str = "CONTROL_MESSAGE";

/// The decoded payload. Strings borrow from the inflated JSON where they have no escapes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogData<'a> {
    /// Absent in some hand-built payloads; CloudWatch always sends it.
    #[serde(default, borrow)]
    pub message_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub owner: Cow<'a, str>,
    #[serde(default, borrow)]
    pub log_group: Cow<'a, str>,
    #[serde(default, borrow)]
    pub log_stream: Cow<'a, str>,
    #[serde(default, borrow)]
    pub subscription_filters: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    pub log_events: Vec<LogEvent<'a>>,
    /// `ACCOUNT_LEVEL_POLICY` for account-level subscription filters (since 2024).
    #[serde(default, borrow)]
    pub policy_level: Option<Cow<'a, str>>,
}

/// One CloudWatch log event: one RDS log entry, possibly several lines.
///
/// The message is kept as its raw JSON string and unescaped by [`message`](Self::message)
/// when it is mapped: half of real messages hold an escape (a quote, a tab, a newline), and
/// unescaping them all up front put a second copy of the payload in memory.
#[derive(Debug, Deserialize)]
pub struct LogEvent<'a> {
    #[serde(default, borrow)]
    pub id: Cow<'a, str>,
    pub timestamp: i64,
    #[serde(borrow, rename = "message", deserialize_with = "json_string")]
    raw_message: &'a RawValue,
}

/// Accepts only a JSON string as a message (what unescaping needs), with the usual error.
fn json_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'de RawValue, D::Error> {
    let raw = <&RawValue>::deserialize(d)?;
    if raw.get().starts_with('"') {
        Ok(raw)
    } else {
        Err(serde::de::Error::custom(format!(
            "invalid type: {}, expected a string",
            raw.get().chars().take(32).collect::<String>()
        )))
    }
}

impl<'a> LogEvent<'a> {
    /// The message text, unescaped (borrowed when it has no escapes).
    pub fn message(&self) -> Cow<'a, str> {
        self.message_checked().0
    }

    /// The message text, and whether an escape in it could not be kept as it was: a `\uXXXX`
    /// naming half of a surrogate pair without the other half, which JSON's grammar allows
    /// but no UTF-8 text can hold. It becomes U+FFFD, and the rest of the message is kept.
    pub fn message_checked(&self) -> (Cow<'a, str>, bool) {
        // A JSON string the parser has validated: without a backslash, its text is what lies
        // between the quotes.
        let raw: &'a str = self.raw_message.get();
        match raw.get(1..raw.len().saturating_sub(1)) {
            // `memchr`: the standard library's byte search goes a word at a time in the guest.
            Some(text) if memchr::memchr(b'\\', text.as_bytes()).is_none() => {
                (Cow::Borrowed(text), false)
            }
            _ => match serde_json::from_str::<String>(raw) {
                Ok(text) => (Cow::Owned(text), false),
                Err(_) => (Cow::Owned(crate::escapes::unescape_lossy(raw)), true),
            },
        }
    }
}

impl LogData<'_> {
    pub fn is_control(&self) -> bool {
        self.message_type.as_deref() == Some(CONTROL_MESSAGE)
    }
}

/// Standard alphabet, padding optional: some producers strip it.
const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The field errors name: where the payload came from. The same bytes arrive as a Kinesis
/// record's `kinesis.data` ([`crate::kinesis`]).
pub const FIELD: &str = "awslogs.data";

/// Decodes base64 leniently as to whitespace (wrapped lines) and alphabet (URL-safe), strictly
/// as to everything else.
pub fn decode_base64(data: &str) -> Result<Vec<u8>, MapError> {
    base64_of(data, FIELD)
}

fn base64_of(data: &str, field: &str) -> Result<Vec<u8>, MapError> {
    let cleaned: Cow<str> = if data.bytes().any(|b| b.is_ascii_whitespace()) {
        Cow::Owned(data.split_ascii_whitespace().collect())
    } else {
        Cow::Borrowed(data)
    };
    let engine = if cleaned.bytes().any(|b| b == b'-' || b == b'_') {
        &URL_SAFE
    } else {
        &STANDARD
    };
    if cleaned.is_empty() {
        return Err(MapError::decode(format!("{field} is empty")));
    }
    engine.decode(cleaned.as_bytes()).map_err(|e| {
        let why = match e {
            base64::DecodeError::InvalidByte(at, byte) => {
                format!(
                    "invalid character {:?} (at offset {at} once whitespace is removed)",
                    byte as char
                )
            }
            base64::DecodeError::InvalidLength(n) => format!("invalid length {n}"),
            base64::DecodeError::InvalidLastSymbol { offset, symbol, .. } => {
                format!(
                    "invalid last character {:?} at offset {offset}",
                    symbol as char
                )
            }
            base64::DecodeError::InvalidPadding => "invalid padding".to_owned(),
        };
        MapError::decode(format!("{field} is not valid base64: {why}"))
    })
}

/// Inflates gzip (or zlib, which some test fixtures use) with a hard limit on the output.
pub fn inflate(compressed: &[u8], limit: usize) -> Result<Vec<u8>, MapError> {
    inflate_of(compressed, limit, FIELD)
}

fn inflate_of(compressed: &[u8], limit: usize, field: &str) -> Result<Vec<u8>, MapError> {
    let mut out = Vec::with_capacity(output_size_hint(compressed).min(limit));
    let reader: Box<dyn Read + '_> = match compressed {
        [0x1f, 0x8b, ..] => Box::new(MultiGzDecoder::new(compressed)),
        [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 => {
            Box::new(ZlibDecoder::new(compressed))
        }
        _ => {
            let head: Vec<String> = compressed
                .iter()
                .take(4)
                .map(|b| format!("{b:02x}"))
                .collect();
            return Err(MapError::decode(format!(
                "{field} is not gzip: it starts with bytes [{}], expected 1f 8b",
                head.join(" ")
            )));
        }
    };
    let read = reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            MapError::decode(format!("{field} gzip stream is truncated or corrupt: {e}"))
        })?;
    if read > limit {
        return Err(MapError::decode(format!(
            "{field} inflates to more than {limit} bytes (max_decompressed_bytes); \
             refusing it as a likely gzip bomb"
        )));
    }
    Ok(out)
}

/// How large the inflated output will be, to allocate it once: a growing vector doubles, and
/// while it moves both copies are live, which for a 30 MB payload is most of the peak memory.
/// A gzip member ends with its size (mod 2^32); it is only a hint (it may lie, and a
/// multi-member stream states its last member's), since the output is still read with the limit.
fn output_size_hint(compressed: &[u8]) -> usize {
    match compressed {
        [0x1f, 0x8b, .., a, b, c, d] if compressed.len() >= 18 => {
            // One byte more than the content, so reading to the end needs no growth.
            (u32::from_le_bytes([*a, *b, *c, *d]) as usize).saturating_add(1)
        }
        _ => compressed.len().saturating_mul(8),
    }
}

/// Parses the inflated JSON.
pub fn parse(json: &[u8]) -> Result<LogData<'_>, MapError> {
    parse_field(json, FIELD)
}

/// [`parse`], its errors naming `field`.
pub fn parse_field<'a>(json: &'a [u8], field: &str) -> Result<LogData<'a>, MapError> {
    serde_json::from_slice(json)
        .map_err(|e| MapError::decode(format!("{field} is not a CloudWatch Logs payload: {e}")))
}

/// base64 → inflate, the bytes `parse` reads.
pub fn decode(data: &str, limit: usize) -> Result<Vec<u8>, MapError> {
    decode_field(data, limit, FIELD)
}

/// [`decode`], its errors naming `field`.
pub fn decode_field(data: &str, limit: usize, field: &str) -> Result<Vec<u8>, MapError> {
    inflate_of(&base64_of(data, field)?, limit, field)
}

/// Encodes a payload the way CloudWatch does; for fixtures, tests and benchmarks.
pub fn encode(json: &[u8]) -> String {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(json);
    let bytes = gz.finish().unwrap_or_default();
    general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_is_allocated_once_from_the_gzip_trailer() {
        let json = br#"{"messageType":"DATA_MESSAGE"}"#.repeat(5000);
        let gz = general_purpose::STANDARD.decode(encode(&json)).unwrap();
        assert_eq!(output_size_hint(&gz), json.len() + 1);
        let out = inflate(&gz, 1 << 20).unwrap();
        assert_eq!(out, json);
        assert_eq!(out.capacity(), json.len() + 1, "no growth while inflating");
        // A lying trailer is only a hint: the limit still decides.
        let mut forged = gz.clone();
        let n = forged.len();
        forged[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            output_size_hint(&forged),
            (u32::MAX as usize).saturating_add(1)
        );
        assert!(
            inflate(&forged, 1000).is_err(),
            "the CRC/size check or the limit refuses it"
        );
    }

    const SAMPLE: &str = r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":5,"message":"a\nb"}]}"#;

    #[test]
    fn round_trips_through_encode() {
        let data = encode(SAMPLE.as_bytes());
        let json = decode(&data, 1 << 20).unwrap();
        let parsed = parse(&json).unwrap();
        assert_eq!(parsed.log_group, "g");
        assert_eq!(parsed.log_events[0].message(), "a\nb");
        assert!(!parsed.is_control());
    }

    #[test]
    fn accepts_wrapped_and_url_safe_base64() {
        let data = encode(SAMPLE.as_bytes());
        let wrapped: String = data
            .as_bytes()
            .chunks(20)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(decode(&wrapped, 1 << 20).unwrap(), SAMPLE.as_bytes());
        let url = data.replace('+', "-").replace('/', "_");
        assert_eq!(decode(&url, 1 << 20).unwrap(), SAMPLE.as_bytes());
    }

    #[test]
    fn names_bad_base64_and_non_gzip() {
        let e = decode("not base64!!", 1 << 20).unwrap_err().to_string();
        assert!(e.starts_with("awslogs.data is not valid base64"), "{e}");
        let e = decode("aGVsbG8=", 1 << 20).unwrap_err().to_string();
        assert_eq!(
            e,
            "awslogs.data is not gzip: it starts with bytes [68 65 6c 6c], expected 1f 8b"
        );
    }

    #[test]
    fn limit_stops_a_bomb() {
        let zeros = vec![0u8; 1 << 20];
        let data = encode(&zeros);
        let e = decode(&data, 1000).unwrap_err().to_string();
        assert!(e.contains("inflates to more than 1000 bytes"), "{e}");
        assert_eq!(decode(&data, 1 << 20).unwrap().len(), 1 << 20);
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let b = general_purpose::STANDARD
            .decode(encode(SAMPLE.as_bytes()))
            .unwrap();
        let cut = general_purpose::STANDARD.encode(&b[..b.len() - 10]);
        let e = decode(&cut, 1 << 20).unwrap_err().to_string();
        assert!(
            e.starts_with("awslogs.data gzip stream is truncated or corrupt"),
            "{e}"
        );
    }

    #[test]
    fn messages_are_unescaped_when_read_and_must_be_strings() {
        let json = br#"{"logEvents":[{"id":"1","timestamp":1,"message":"plain"},{"id":"2","timestamp":2,"message":"tab\there \"q\" \u00e9"}]}"#;
        let p = parse(json).unwrap();
        assert!(matches!(p.log_events[0].message(), Cow::Borrowed("plain")));
        assert_eq!(p.log_events[1].message(), "tab\there \"q\" é");
        let e = parse(br#"{"logEvents":[{"id":"1","timestamp":1,"message":5}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "awslogs.data is not a CloudWatch Logs payload: invalid type: 5, expected a string"
            ),
            "{e}"
        );
    }

    #[test]
    fn zlib_is_accepted() {
        use flate2::write::ZlibEncoder;
        use std::io::Write;
        let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(SAMPLE.as_bytes()).unwrap();
        let data = general_purpose::STANDARD.encode(z.finish().unwrap());
        assert_eq!(decode(&data, 1 << 20).unwrap(), SAMPLE.as_bytes());
    }

    #[test]
    fn a_lone_surrogate_becomes_a_replacement_character_and_the_rest_is_kept() {
        let payload = br#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":[],"logEvents":[
            {"id":"1","timestamp":1,"message":"before \ud800 after \"q\" \u00e9 \ud83d\ude00 \udc00\n"},
            {"id":"2","timestamp":1,"message":"pair \ud83d\ude00 only"}]}"#;
        let p = parse(payload).unwrap();
        let (text, repaired) = p.log_events[0].message_checked();
        assert_eq!(text, "before \u{fffd} after \"q\" é 😀 \u{fffd}\n");
        assert!(repaired);
        assert_eq!(
            p.log_events[1].message_checked(),
            (Cow::Borrowed("pair 😀 only"), false)
        );
    }
}
