//! Realistic Lambda events for benchmarks and load tests, built from real sample logs: the
//! entries of a sample, one per CloudWatch event, repeated until the batch is as full as
//! CloudWatch makes it (or, for stress, as large as Lambda accepts), then wrapped as CloudWatch
//! delivers it (`{"awslogs":{"data": base64(gzip(json))}}`). RDS events are made from an
//! EventBridge template, each with its own id and time.
//!
//! No I/O, like the rest of the library: the caller reads the samples
//! (`guest/examples/generate.rs` writes events to files; the host's `bench` maps them).

use serde_json::{Value, json};

use crate::formats::parse_message;

/// CloudWatch Logs caps a batch at 1,048,576 bytes: the messages' UTF-8 bytes plus 26 per event.
pub const CLOUDWATCH_MAX_BATCH_BYTES: usize = 1_048_576;
/// Per-event overhead CloudWatch counts against [`CLOUDWATCH_MAX_BATCH_BYTES`].
pub const CLOUDWATCH_EVENT_OVERHEAD: usize = 26;
/// CloudWatch Logs caps a batch at 10,000 events.
pub const CLOUDWATCH_MAX_EVENTS: usize = 10_000;
/// Lambda's limit on an asynchronous invocation's event (the awslogs JSON as sent).
pub const LAMBDA_ASYNC_MAX_EVENT_BYTES: usize = 1_048_576;

/// How large a generated awslogs event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// One full CloudWatch batch: up to 1 MiB of messages (26 bytes per event counted) and
    /// 10,000 events, whichever comes first. What a subscription delivers at most.
    CloudWatchBatch,
    /// As many events as fit in Lambda's 1 MiB asynchronous event limit once compressed, and
    /// in `max_decompressed` bytes once decompressed (the mapper refuses more). For stress:
    /// CloudWatch itself never sends this much in one event.
    AsyncLimit { max_decompressed: usize },
    /// Exactly this many events.
    Events(usize),
}

/// One generated awslogs Lambda event.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The Lambda event JSON, as CloudWatch delivers it.
    pub event: Vec<u8>,
    /// Bytes of the decompressed subscription payload (JSON): the throughput denominator.
    pub payload_bytes: usize,
    /// CloudWatch events in it.
    pub events: usize,
    /// The messages' bytes (what CloudWatch counts, less the per-event overhead).
    pub message_bytes: usize,
    /// Bytes of the gzip'd payload (`awslogs.data` before base64): what CloudWatch sends for
    /// these events, against which the bytes a forwarder sends on are measured.
    pub data_bytes: usize,
}

/// How a sample file maps onto CloudWatch events (the `mode` column of
/// `fixtures/logs/MANIFEST.tsv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The file is one message the parser splits into entries; each entry becomes an event.
    Message,
    /// Every line is its own event.
    Lines,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "message" => Some(Mode::Message),
            "lines" => Some(Mode::Lines),
            _ => None,
        }
    }
}

/// One sample of `fixtures/logs/MANIFEST.tsv`: `file`, `log_type`, `mode`, … tab-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub file: String,
    pub log_type: String,
    pub mode: Mode,
}

impl Sample {
    /// The file name without `.log`: how benchmarks name the payload.
    pub fn name(&self) -> &str {
        self.file.strip_suffix(".log").unwrap_or(&self.file)
    }
}

/// Reads the manifest; a malformed row is an error naming its line.
pub fn manifest(text: &str) -> Result<Vec<Sample>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .map(|(i, l)| {
            let cols: Vec<&str> = l.split('\t').collect();
            match cols.as_slice() {
                [file, log_type, mode, ..] => Ok(Sample {
                    file: (*file).to_owned(),
                    log_type: (*log_type).to_owned(),
                    mode: Mode::parse(mode).ok_or_else(|| {
                        format!(
                            "line {}: mode {mode:?} is not \"message\" or \"lines\"",
                            i + 1
                        )
                    })?,
                }),
                _ => Err(format!(
                    "line {}: expected file, log_type and mode separated by tabs",
                    i + 1
                )),
            }
        })
        .collect()
}

/// The entries of a sample file, one per CloudWatch event, without its `#%` provenance lines.
pub fn sample_entries(log_type: &str, sample: &str, mode: Mode) -> Vec<String> {
    let body: Vec<&str> = sample.lines().filter(|l| !l.starts_with("#%")).collect();
    match mode {
        Mode::Lines => body
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        Mode::Message => parse_message(log_type, &body.join("\n"))
            .into_iter()
            .map(|e| e.text.to_owned())
            .filter(|t| !t.trim().is_empty())
            .collect(),
    }
}

/// An awslogs event of `entries`, repeated in order, from log group `log_group`.
///
/// Events get 56-digit ids and millisecond timestamps counting up from `start_ms`, as
/// CloudWatch's do. Returns `None` when `entries` is empty.
pub fn awslogs_event(
    log_group: &str,
    log_stream: &str,
    entries: &[String],
    size: Size,
    start_ms: i64,
) -> Option<Generated> {
    if entries.is_empty() {
        return None;
    }
    let make = |n: usize| build(log_group, log_stream, entries, n, start_ms);
    match size {
        Size::Events(n) => Some(make(n)),
        Size::CloudWatchBatch => {
            let mut bytes = 0;
            let mut n = 0;
            for entry in entries.iter().cycle() {
                let cost = entry.len() + CLOUDWATCH_EVENT_OVERHEAD;
                if n == CLOUDWATCH_MAX_EVENTS || bytes + cost > CLOUDWATCH_MAX_BATCH_BYTES {
                    break;
                }
                bytes += cost;
                n += 1;
            }
            Some(make(n.max(1)))
        }
        Size::AsyncLimit { max_decompressed } => {
            // The most events the decompressed limit allows, then fewer until the compressed
            // event fits: compression ratios vary by log type, so measure, not guess.
            let mut bytes = 0;
            let mut hi = 0;
            for entry in entries.iter().cycle() {
                // Each event adds its message (escaped, roughly) and ~110 bytes of JSON.
                let cost = entry.len() + entry.len() / 16 + 110;
                if bytes + cost > max_decompressed {
                    break;
                }
                bytes += cost;
                hi += 1;
            }
            let mut n = hi.max(1);
            loop {
                let g = make(n);
                let fits = g.event.len() <= LAMBDA_ASYNC_MAX_EVENT_BYTES
                    && g.payload_bytes <= max_decompressed;
                // A single event too large for the limits is as close as it gets.
                if fits || n == 1 {
                    return Some(g);
                }
                // Scale down by how far over it is, and 1% more so it converges from above.
                let over = (g.event.len() as f64 / LAMBDA_ASYNC_MAX_EVENT_BYTES as f64)
                    .max(g.payload_bytes as f64 / max_decompressed as f64);
                n = ((n as f64 / over) * 0.99)
                    .floor()
                    .clamp(1.0, (n - 1) as f64) as usize;
            }
        }
    }
}

fn build(
    log_group: &str,
    log_stream: &str,
    entries: &[String],
    n: usize,
    start_ms: i64,
) -> Generated {
    let mut message_bytes = 0;
    let events: Vec<Value> = entries
        .iter()
        .cycle()
        .take(n)
        .enumerate()
        .map(|(i, message)| {
            message_bytes += message.len();
            let timestamp = start_ms + i as i64;
            json!({"id": cloudwatch_event_id(timestamp, i as u64), "timestamp": timestamp, "message": message})
        })
        .collect();
    let payload = json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012",
        "logGroup": log_group, "logStream": log_stream,
        "subscriptionFilters": ["whatap"], "logEvents": events,
    })
    .to_string();
    let data = crate::awslogs::encode(payload.as_bytes());
    // Base64 of n bytes is 4 * ceil(n / 3) characters, the last group padded with `=`.
    let data_bytes = data.len() / 4 * 3 - data.bytes().rev().take_while(|b| *b == b'=').count();
    let event = json!({"awslogs": {"data": data}}).to_string().into_bytes();
    Generated {
        event,
        payload_bytes: payload.len(),
        events: n,
        message_bytes,
        data_bytes,
    }
}

/// An event id shaped as CloudWatch's: the decimal digits of `timestamp * 2^144` plus 144 bits
/// that differ from event to event (real ids carry ingestion details there). Ids of events a
/// millisecond apart share only their first digits, as real ones do; that entropy is what a
/// forwarder that copies the id onto every record pays for on the wire.
pub fn cloudwatch_event_id(timestamp: i64, seq: u64) -> String {
    // SplitMix64 of the sequence number: stable, and different in every bit from event to event.
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    // Little-endian 64-bit limbs of a 192-bit number: timestamp << 144 | low 144 bits.
    let ts = timestamp.max(0) as u64;
    let mut limbs = [
        mix(seq),
        mix(seq ^ 0x5555_5555_5555_5555),
        (ts << 16) | (mix(!seq) & 0xffff),
    ];
    // Decimal by repeated division by 10^19 (the largest power of ten in a u64).
    const TEN19: u64 = 10_000_000_000_000_000_000;
    let mut chunks = Vec::new();
    while limbs.iter().any(|l| *l != 0) {
        let mut rem: u128 = 0;
        for limb in limbs.iter_mut().rev() {
            let cur = (rem << 64) | u128::from(*limb);
            *limb = (cur / u128::from(TEN19)) as u64;
            rem = cur % u128::from(TEN19);
        }
        chunks.push(rem as u64);
    }
    let mut out = String::new();
    for (i, chunk) in chunks.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&chunk.to_string());
        } else {
            out.push_str(&format!("{chunk:019}"));
        }
    }
    // Real timestamps make 56 digits; an early one (a test's 0) is padded to the same width.
    format!("{out:0>56}")
}

/// `n` EventBridge RDS events made from `template` (one real event): see [`rds_event`].
pub fn rds_events(template: &Value, n: usize, start_ms: i64) -> Vec<Vec<u8>> {
    (0..n).map(|i| rds_event(template, i, start_ms)).collect()
}

/// The `i`th event made from `template`: its own `id`, `time` (`i` seconds after `start_ms`)
/// and source identifier, so that no two are copies.
pub fn rds_event(template: &Value, i: usize, start_ms: i64) -> Vec<u8> {
    let mut e = template.clone();
    if let Some(obj) = e.as_object_mut() {
        obj.insert(
            "id".into(),
            Value::String(format!("00000000-0000-4000-8000-{i:012}")),
        );
        obj.insert(
            "time".into(),
            Value::String(crate::time::format_rfc3339_ms(start_ms + 1000 * i as i64)),
        );
        if let Some(detail) = obj.get_mut("detail").and_then(Value::as_object_mut)
            && let Some(Value::String(id)) = detail.get("SourceIdentifier").cloned()
        {
            detail.insert(
                "SourceIdentifier".into(),
                Value::String(format!("{id}-{}", i % 16)),
            );
        }
    }
    e.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::awslogs;

    fn entries() -> Vec<String> {
        sample_entries(
            "error",
            "#% provenance line\n2024-01-01T00:00:00.000000Z 1 [Note] [MY-010000] [Server] one\n\
             2024-01-01T00:00:01.000000Z 2 [Warning] [MY-010001] [Server] two\n  continued",
            Mode::Message,
        )
    }

    fn decode(g: &Generated) -> (String, Vec<(String, String)>) {
        let v: Value = serde_json::from_slice(&g.event).unwrap();
        let json =
            awslogs::decode(v["awslogs"]["data"].as_str().unwrap(), usize::MAX >> 1).unwrap();
        assert_eq!(json.len(), g.payload_bytes);
        let p = awslogs::parse(&json).unwrap();
        let events = p
            .log_events
            .iter()
            .map(|e| (e.id.to_string(), e.message().into_owned()))
            .collect();
        (p.log_group.to_string(), events)
    }

    #[test]
    fn entries_are_split_without_provenance_lines() {
        assert_eq!(
            entries(),
            vec![
                "2024-01-01T00:00:00.000000Z 1 [Note] [MY-010000] [Server] one".to_string(),
                "2024-01-01T00:00:01.000000Z 2 [Warning] [MY-010001] [Server] two\n  continued"
                    .to_string(),
            ]
        );
        assert_eq!(
            sample_entries("alert", "#% p\na\n\nb\n", Mode::Lines),
            vec!["a".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn a_cloudwatch_batch_is_full_but_within_cloudwatchs_limits() {
        let e = entries();
        let g = awslogs_event(
            "/aws/rds/instance/db/error",
            "db",
            &e,
            Size::CloudWatchBatch,
            0,
        )
        .unwrap();
        let counted = g.message_bytes + g.events * CLOUDWATCH_EVENT_OVERHEAD;
        assert!(g.events == CLOUDWATCH_MAX_EVENTS || counted <= CLOUDWATCH_MAX_BATCH_BYTES);
        // Full: one more event would break a limit.
        assert!(
            g.events == CLOUDWATCH_MAX_EVENTS
                || counted + e[g.events % e.len()].len() + CLOUDWATCH_EVENT_OVERHEAD
                    > CLOUDWATCH_MAX_BATCH_BYTES
        );
        let (group, events) = decode(&g);
        assert_eq!(group, "/aws/rds/instance/db/error");
        assert_eq!(events.len(), g.events);
        assert_eq!(events[0].1, e[0]);
        assert_eq!(events[3].1, e[1]);
        assert_eq!(events[1].0.len(), 56);
        assert_ne!(events[0].0, events[1].0);
        // The gzip'd payload's size, as the event carries it.
        let v: Value = serde_json::from_slice(&g.event).unwrap();
        let data = v["awslogs"]["data"].as_str().unwrap();
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        assert_eq!(g.data_bytes, raw.len());
    }

    #[test]
    fn event_ids_are_shaped_as_cloudwatchs() {
        // A real id from CloudWatch's documentation: timestamp 1432826855000, shifted by 144.
        let real: &str = "31953106606966983378809025079804211143289615424298221568";
        let ours = cloudwatch_event_id(1_432_826_855_000, 0);
        assert_eq!(ours.len(), real.len());
        assert_eq!(&ours[..12], &real[..12]);
        // A millisecond later, the digits after the leading ones all differ in distribution.
        let next = cloudwatch_event_id(1_432_826_855_001, 1);
        assert_eq!(next.len(), 56);
        let same = ours
            .bytes()
            .zip(next.bytes())
            .filter(|(a, b)| a == b)
            .count();
        assert!(same < 20, "{ours} {next}");
        assert_eq!(cloudwatch_event_id(0, 0), cloudwatch_event_id(0, 0));
    }

    #[test]
    fn a_stress_event_fits_lambdas_async_limit_and_the_decompressed_limit() {
        let e = entries();
        let max = 4 << 20;
        let g = awslogs_event(
            "/aws/rds/instance/db/error",
            "db",
            &e,
            Size::AsyncLimit {
                max_decompressed: max,
            },
            0,
        )
        .unwrap();
        assert!(
            g.event.len() <= LAMBDA_ASYNC_MAX_EVENT_BYTES,
            "{}",
            g.event.len()
        );
        assert!(g.payload_bytes <= max);
        // Larger than one CloudWatch batch: that is the point of it.
        assert!(g.events > CLOUDWATCH_MAX_EVENTS, "{}", g.events);
        assert_eq!(decode(&g).1.len(), g.events);
    }

    #[test]
    fn rds_events_differ_in_id_time_and_source() {
        let t: Value = serde_json::from_str(
            r#"{"id":"x","time":"2024-01-01T00:00:00Z","source":"aws.rds","detail-type":"RDS DB Instance Event","detail":{"SourceIdentifier":"db","EventID":"RDS-EVENT-0088"}}"#,
        )
        .unwrap();
        let events = rds_events(&t, 3, 1_700_000_000_000);
        let parsed: Vec<Value> = events
            .iter()
            .map(|e| serde_json::from_slice(e).unwrap())
            .collect();
        assert_eq!(parsed[1]["id"], "00000000-0000-4000-8000-000000000001");
        assert_eq!(parsed[1]["time"], "2023-11-14T22:13:21.000Z");
        assert_eq!(parsed[2]["detail"]["SourceIdentifier"], "db-2");
        assert_eq!(parsed[2]["detail"]["EventID"], "RDS-EVENT-0088");
    }

    #[test]
    fn the_manifest_is_read_and_a_bad_row_named() {
        let m = manifest("# header\nmysql-error.log\terror\tmessage\t19\t0\na.log\talert\tlines\n")
            .unwrap();
        assert_eq!(m[0].name(), "mysql-error");
        assert_eq!((m[1].log_type.as_str(), m[1].mode), ("alert", Mode::Lines));
        assert_eq!(
            manifest("x.log\terror\tblob\n").unwrap_err(),
            "line 1: mode \"blob\" is not \"message\" or \"lines\""
        );
        assert_eq!(
            manifest("x.log error\n").unwrap_err(),
            "line 1: expected file, log_type and mode separated by tabs"
        );
    }

    #[test]
    fn no_entries_no_event() {
        assert!(awslogs_event("g", "s", &[], Size::Events(3), 0).is_none());
    }
}
