//! Backfill: a log group's history, read with `FilterLogEvents`, shaped per stream as the
//! CloudWatch Logs subscription payloads live delivery receives, and mapped and delivered by
//! the code of Lambda mode ([`Forwarder::process`]).
//!
//! Record ids come from log group, stream, CloudWatch event id and entry position, and the
//! event ids `FilterLogEvents` returns are the ones a subscription delivers: a backfill that
//! overlaps live delivery gives the same ids, so WhaTap can tell the two copies apart.
//!
//! A checkpoint (the query, and the page token after the last page whose records were all
//! confirmed delivered) is written after every page, so a stopped backfill goes on where it
//! stopped: nothing before the token is sent again, nothing after it is skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;

use crate::aws::{AwsError, AwsJsonClient};
use crate::lambda::Forwarder;
use crate::progress::{Progress, rate};

/// The subscription filter name backfilled payloads carry.
pub const FILTER_NAME: &str = "rds-forwarder-backfill";
/// Message bytes per payload at most: what one subscription delivery carries at most
/// (CloudWatch Logs batches up to 1 MiB of events).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Events per payload at most (CloudWatch Logs' own batch limit).
pub const MAX_PAYLOAD_EVENTS: usize = 10_000;
/// Waits for a page that stays throttled after the client's own retries: from
/// [`FIRST_THROTTLED_WAIT`], doubling, at most 60 s, this many times.
const THROTTLED_WAITS: u32 = 8;
const FIRST_THROTTLED_WAIT: Duration = Duration::from_secs(5);

/// What to backfill; a checkpoint belongs to one query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    pub log_group: String,
    /// `--start` and `--end` as given: a checkpoint resumes the backfill whose arguments
    /// these were, with the times they meant then (`now` or `7d` mean the first run's).
    pub start: String,
    pub end: String,
    /// Epoch ms, inclusive.
    pub start_ms: i64,
    /// Epoch ms, inclusive (as `FilterLogEvents` reads `endTime`).
    pub end_ms: i64,
    pub stream_prefix: Option<String>,
    pub filter_pattern: Option<String>,
}

/// Where a backfill stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub query: Query,
    /// The token of the next page to read; `None` before the first page, or when done.
    pub next_token: Option<String>,
    /// Events delivered so far, over all runs.
    pub events: u64,
    /// Payloads delivered so far.
    pub payloads: u64,
    /// The latest event time delivered (for progress).
    pub position_ms: Option<i64>,
    pub done: bool,
}

impl Checkpoint {
    fn new(query: Query) -> Checkpoint {
        Checkpoint {
            query,
            next_token: None,
            events: 0,
            payloads: 0,
            position_ms: None,
            done: false,
        }
    }

    /// The checkpoint in `path` for `query`, or a new one when there is no file.
    pub fn load(path: &Path, query: &Query) -> Result<Checkpoint, BackfillError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Checkpoint::new(query.clone()));
            }
            Err(e) => {
                return Err(BackfillError::Checkpoint {
                    path: path.into(),
                    why: e.to_string(),
                });
            }
        };
        let checkpoint: Checkpoint =
            serde_json::from_str(&text).map_err(|e| BackfillError::Checkpoint {
                path: path.into(),
                why: format!("not a backfill checkpoint: {e}"),
            })?;
        let same = Query {
            start_ms: query.start_ms,
            end_ms: query.end_ms,
            ..checkpoint.query.clone()
        } == *query;
        if !same {
            return Err(BackfillError::Checkpoint {
                path: path.into(),
                why: format!(
                    "it belongs to another backfill ({}); pass the same arguments, or another file",
                    serde_json::to_string(&checkpoint.query).unwrap_or_default()
                ),
            });
        }
        Ok(checkpoint)
    }

    /// Writes it whole or not at all (a temporary file renamed over the old one).
    pub fn save(&self, path: &Path) -> Result<(), BackfillError> {
        let failed = |e: std::io::Error| BackfillError::Checkpoint {
            path: path.into(),
            why: e.to_string(),
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let text = serde_json::to_string_pretty(self).expect("a checkpoint serializes");
        std::fs::write(&tmp, text).map_err(failed)?;
        std::fs::rename(&tmp, path).map_err(failed)
    }
}

#[derive(Debug, Error)]
pub enum BackfillError {
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("FilterLogEvents answered with an event that lacks what a log event has: {0}")]
    Page(String),
    #[error("log group {0} does not exist in this account and region")]
    NoLogGroup(String),
    #[error("checkpoint {}: {why}", path.display())]
    Checkpoint { path: PathBuf, why: String },
    #[error(
        "stream {stream}: {events} events (from {first_ms} ms) not delivered: {reason}; \
         the checkpoint stays before them"
    )]
    Delivery {
        stream: String,
        events: usize,
        first_ms: i64,
        reason: String,
    },
}

/// What one run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub log_group: String,
    /// Pages read in this run.
    pub pages: u64,
    /// Events and payloads delivered in this run.
    pub events: u64,
    pub payloads: u64,
    pub records: u64,
    /// Whether the whole range is delivered (now or by earlier runs).
    pub complete: bool,
}

/// How a backfill runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// `FilterLogEvents`' `limit` (at most 10,000).
    pub page_size: u32,
    /// Stop at the first page boundary after this many events (a checkpoint goes on later).
    pub max_events: Option<u64>,
    pub checkpoint: Option<PathBuf>,
    /// Each payload's time budget.
    pub timeout: Duration,
}

/// The account that owns `group` (the subscription payload's `owner`), from its ARN.
pub async fn owner(logs: &Arc<AwsJsonClient>, group: &str) -> Result<String, BackfillError> {
    let groups = logs
        .pages_async(
            "DescribeLogGroups",
            json!({"logGroupNamePrefix": group}),
            "logGroups",
        )
        .await?;
    let found = groups
        .iter()
        .find(|g| g["logGroupName"] == group)
        .ok_or_else(|| BackfillError::NoLogGroup(group.to_owned()))?;
    let arn = found["arn"]
        .as_str()
        .or(found["logGroupArn"].as_str())
        .unwrap_or("");
    Ok(arn.split(':').nth(4).unwrap_or_default().to_owned())
}

/// One `FilterLogEvents` page, waiting out throttling that outlasts the client's retries.
async fn page(
    logs: &Arc<AwsJsonClient>,
    query: &Query,
    token: Option<&str>,
    limit: u32,
    progress: &Progress,
    first_wait: Duration,
) -> Result<Value, AwsError> {
    let mut request = json!({
        "logGroupName": query.log_group,
        "startTime": query.start_ms,
        "endTime": query.end_ms,
        "limit": limit.clamp(1, 10_000),
    });
    if let Some(prefix) = &query.stream_prefix {
        request["logStreamNamePrefix"] = json!(prefix);
    }
    if let Some(pattern) = &query.filter_pattern {
        request["filterPattern"] = json!(pattern);
    }
    if let Some(t) = token {
        request["nextToken"] = json!(t);
    }
    let mut wait = first_wait;
    let mut waits = 0;
    loop {
        match logs.call_async("FilterLogEvents", request.clone()).await {
            Err(e) if e.retryable() && waits < THROTTLED_WAITS => {
                waits += 1;
                progress.println(&format!(
                    "backfill: {e}; waiting {} ms before trying again",
                    wait.as_millis()
                ));
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
            other => return other,
        }
    }
}

/// A log event as `FilterLogEvents` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredEvent {
    pub log_stream_name: String,
    pub event_id: String,
    pub timestamp: i64,
    pub message: String,
}

/// A page's events. One this cannot read stops the backfill by name, never skipped.
pub fn page_events(answer: &Value) -> Result<Vec<FilteredEvent>, BackfillError> {
    answer["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| serde_json::from_value(e.clone()))
        .collect::<Result<_, _>>()
        .map_err(|e| BackfillError::Page(e.to_string()))
}

/// A page's events by stream, each stream's in the order read, streams in order of first
/// appearance; events of streams outside `prefix` are left out (a service that ignores
/// `logStreamNamePrefix` must not widen the backfill).
pub fn by_stream(
    events: Vec<FilteredEvent>,
    prefix: Option<&str>,
) -> Vec<(String, Vec<FilteredEvent>)> {
    let mut streams: Vec<(String, Vec<FilteredEvent>)> = Vec::new();
    for e in events {
        if prefix.is_some_and(|p| !e.log_stream_name.starts_with(p)) {
            continue;
        }
        match streams.iter_mut().find(|(s, _)| *s == e.log_stream_name) {
            Some((_, list)) => list.push(e),
            None => streams.push((e.log_stream_name.clone(), vec![e])),
        }
    }
    streams
}

/// A stream's events as subscription payloads (`{"awslogs":{"data":…}}`), each within
/// [`MAX_PAYLOAD_BYTES`] of messages and [`MAX_PAYLOAD_EVENTS`] events.
pub fn payloads(
    owner: &str,
    group: &str,
    stream: &str,
    events: &[FilteredEvent],
) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < events.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < events.len()
            && end - start < MAX_PAYLOAD_EVENTS
            && (end == start || bytes + events[end].message.len() <= MAX_PAYLOAD_BYTES)
        {
            bytes += events[end].message.len();
            end += 1;
        }
        out.push((
            end - start,
            subscription_payload(owner, group, stream, &events[start..end]),
        ));
        start = end;
    }
    out
}

/// The event Lambda receives from a subscription: the DATA_MESSAGE, gzipped and base64'd.
pub fn subscription_payload(
    owner: &str,
    group: &str,
    stream: &str,
    events: &[FilteredEvent],
) -> Vec<u8> {
    let message = json!({
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": [FILTER_NAME],
        "logEvents": events
            .iter()
            .map(|e| json!({"id": e.event_id, "timestamp": e.timestamp, "message": e.message}))
            .collect::<Vec<_>>(),
    });
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(message.to_string().as_bytes())
        .expect("writing to memory");
    let data =
        base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("writing to memory"));
    json!({"awslogs": {"data": data}}).to_string().into_bytes()
}

/// Runs the backfill of `query` (from its checkpoint, if one is kept) until the range is
/// delivered, `max_events` is passed, or a delivery fails.
pub async fn backfill(
    logs: &Arc<AwsJsonClient>,
    forwarder: &Forwarder,
    query: &Query,
    options: &Options,
    progress: &mut Progress,
) -> Result<Report, BackfillError> {
    let mut checkpoint = match &options.checkpoint {
        Some(path) => Checkpoint::load(path, query)?,
        None => Checkpoint::new(query.clone()),
    };
    let mut report = Report {
        log_group: query.log_group.clone(),
        ..Report::default()
    };
    if checkpoint.done {
        report.complete = true;
        return Ok(report);
    }
    // A resumed backfill keeps the range its first run resolved.
    let query = &checkpoint.query.clone();
    let owner = owner(logs, &query.log_group).await?;
    let started = Instant::now();
    let span = (query.end_ms - query.start_ms).max(1) as u64;
    progress.set_len(span);
    loop {
        let answer = page(
            logs,
            query,
            checkpoint.next_token.as_deref(),
            options.page_size,
            progress,
            FIRST_THROTTLED_WAIT,
        )
        .await?;
        report.pages += 1;
        let events = page_events(&answer)?;
        for (stream, events) in by_stream(events, query.stream_prefix.as_deref()) {
            let mut at = 0;
            for (n, payload) in payloads(&owner, &query.log_group, &stream, &events) {
                let first = &events[at];
                let request_id = format!("backfill-{}-{}", first.timestamp, first.event_id);
                let processed = forwarder
                    .process_within(&payload, &request_id, options.timeout)
                    .await;
                if let Some(why) = processed.not_delivered() {
                    return Err(BackfillError::Delivery {
                        stream,
                        events: n,
                        first_ms: first.timestamp,
                        reason: why.reason,
                    });
                }
                report.records += processed.metrics.records;
                report.payloads += 1;
                report.events += n as u64;
                checkpoint.payloads += 1;
                checkpoint.events += n as u64;
                checkpoint.position_ms = checkpoint
                    .position_ms
                    .max(events[at..at + n].iter().map(|e| e.timestamp).max());
                at += n;
            }
        }
        // Every event of the page is delivered: the checkpoint moves past it.
        checkpoint.next_token = answer["nextToken"].as_str().map(str::to_owned);
        checkpoint.done = checkpoint.next_token.is_none();
        if let Some(path) = &options.checkpoint {
            checkpoint.save(path)?;
        }
        let position = checkpoint
            .position_ms
            .map_or(0, |t| (t - query.start_ms).max(0) as u64);
        progress.update(
            if checkpoint.done { span } else { position },
            &format!(
                "{} events, {} records ({}/s)",
                report.events,
                report.records,
                rate(report.events, started)
            ),
        );
        if checkpoint.done {
            report.complete = true;
            return Ok(report);
        }
        if options.max_events.is_some_and(|max| report.events >= max) {
            return Ok(report);
        }
    }
}

/// A time argument: RFC 3339 (`2026-11-01T00:00:00Z`), epoch milliseconds, `now`, or a
/// duration before now (`90m`, `36h`, `7d`), as `aws logs tail --since` reads one.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| format!("{t:?} is too large"));
    }
    let unit_ms = |u: &str| match u {
        "s" => Some(1_000),
        "m" | "min" => Some(60_000),
        "h" => Some(3_600_000),
        "d" => Some(86_400_000),
        "w" => Some(7 * 86_400_000),
        _ => None,
    };
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0
        && let Some(unit) = unit_ms(&t[digits..])
        && let Ok(n) = t[..digits].parse::<i64>()
    {
        return Ok(now_ms.saturating_sub(n.saturating_mul(unit)));
    }
    t.parse::<jiff::Timestamp>()
        .map(|ts| ts.as_millisecond())
        .map_err(|e| {
            format!("{t:?} is not RFC 3339, epoch milliseconds, `now` or a duration like 7d: {e}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stream: &str, id: &str, t: i64, message: &str) -> FilteredEvent {
        FilteredEvent {
            log_stream_name: stream.into(),
            event_id: id.into(),
            timestamp: t,
            message: message.into(),
        }
    }

    fn logs(url: &str) -> Arc<AwsJsonClient> {
        let env = [
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "example"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", url),
        ];
        let client = AwsJsonClient::from_env(
            |k| {
                env.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            },
            &crate::aws::CLOUDWATCH_LOGS,
        )
        .unwrap();
        Arc::new(client.with_backoff(Duration::from_millis(1)))
    }

    fn query() -> Query {
        Query {
            log_group: "g".into(),
            start: "1".into(),
            end: "2".into(),
            start_ms: 1,
            end_ms: 2,
            stream_prefix: Some("db".into()),
            filter_pattern: None,
        }
    }

    const THROTTLED: (u16, &str) = (400, r#"{"__type":"ThrottlingException"}"#);

    #[tokio::test]
    async fn a_page_throttled_past_the_clients_retries_is_waited_for() {
        // The client's six attempts, then two more after the backfill's own waits.
        let mut answers = vec![THROTTLED; 8];
        answers.push((200, r#"{"events":[],"nextToken":"t2"}"#));
        let (url, server) = crate::aws::test_server::server(answers);
        let page = page(
            &logs(&url),
            &query(),
            Some("t1"),
            50,
            &Progress::hidden(),
            Duration::from_millis(1),
        )
        .await
        .unwrap();
        assert_eq!(page["nextToken"], "t2");
        let requests = server.join().unwrap();
        assert_eq!(requests.len(), 9);
        let last = &requests[8];
        assert!(
            last.contains(r#""logStreamNamePrefix":"db""#) && last.contains(r#""nextToken":"t1""#),
            "{last}"
        );
    }

    #[tokio::test]
    async fn throttling_without_end_fails_the_page_by_name() {
        let answers = vec![THROTTLED; 6 * (THROTTLED_WAITS as usize + 1)];
        let (url, server) = crate::aws::test_server::server(answers);
        let e = page(
            &logs(&url),
            &query(),
            None,
            50,
            &Progress::hidden(),
            Duration::from_millis(1),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "CloudWatch Logs FilterLogEvents answered HTTP 400 (ThrottlingException)"
        );
        server.join().unwrap();
    }

    #[test]
    fn times() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("1700000000000", now), Ok(1_700_000_000_000));
        assert_eq!(parse_time("7d", now), Ok(now - 7 * 86_400_000));
        assert_eq!(parse_time("90m", now), Ok(now - 90 * 60_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z", now),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_time("2023-11-15T07:13:20+09:00", now),
            Ok(1_700_000_000_000)
        );
        let bad = parse_time("yesterday", now).unwrap_err();
        assert!(bad.starts_with("\"yesterday\" is not RFC 3339"), "{bad}");
    }

    #[test]
    fn an_event_that_is_not_one_stops_the_page_by_name() {
        let good = json!({"events": [{"logStreamName": "s", "eventId": "1", "timestamp": 5, "message": "m", "ingestionTime": 6}]});
        assert_eq!(page_events(&good).unwrap(), vec![event("s", "1", 5, "m")]);
        assert!(page_events(&json!({})).unwrap().is_empty());
        let bad = json!({"events": [{"logStreamName": "s", "eventId": "1", "timestamp": 5}]});
        assert_eq!(
            page_events(&bad).unwrap_err().to_string(),
            "FilterLogEvents answered with an event that lacks what a log event has: missing field `message`"
        );
    }

    #[test]
    fn events_go_by_stream_in_order_and_outside_the_prefix_stay_out() {
        let page = vec![
            event("a", "1", 1, "x"),
            event("b", "2", 2, "y"),
            event("a", "3", 3, "z"),
            event("other", "4", 4, "w"),
        ];
        let streams = by_stream(page.clone(), None);
        assert_eq!(
            streams
                .iter()
                .map(|(s, e)| (
                    s.as_str(),
                    e.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>()
                ))
                .collect::<Vec<_>>(),
            vec![
                ("a", vec!["1", "3"]),
                ("b", vec!["2"]),
                ("other", vec!["4"])
            ]
        );
        let prefixed = by_stream(page, Some("a"));
        assert_eq!(prefixed.len(), 1);
    }

    #[test]
    fn a_payload_is_a_subscription_delivery() {
        let events = [event("s", "3700", 5, "hello")];
        let payload =
            subscription_payload("111122223333", "/aws/rds/instance/db/error", "s", &events);
        let v: Value = serde_json::from_slice(&payload).unwrap();
        let gz = base64::engine::general_purpose::STANDARD
            .decode(v["awslogs"]["data"].as_str().unwrap())
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
            .unwrap();
        let message: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            message,
            json!({"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/aws/rds/instance/db/error",
                   "logStream":"s","subscriptionFilters":[FILTER_NAME],
                   "logEvents":[{"id":"3700","timestamp":5,"message":"hello"}]})
        );
    }

    #[test]
    fn payloads_stay_within_a_deliverys_size() {
        let big = "x".repeat(400 << 10);
        let events: Vec<FilteredEvent> = (0..5)
            .map(|i| event("s", &i.to_string(), i, &big))
            .collect();
        let sizes: Vec<usize> = payloads("1", "g", "s", &events)
            .iter()
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        // One event larger than the limit still goes, alone.
        let huge = [event("s", "1", 1, &"y".repeat(MAX_PAYLOAD_BYTES + 1))];
        assert_eq!(payloads("1", "g", "s", &huge).len(), 1);
    }

    #[test]
    fn a_checkpoint_of_another_query_is_refused_and_a_missing_one_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let q = Query {
            log_group: "g".into(),
            start: "7d".into(),
            end: "now".into(),
            start_ms: 1,
            end_ms: 2,
            stream_prefix: None,
            filter_pattern: None,
        };
        let fresh = Checkpoint::load(&path, &q).unwrap();
        assert_eq!(fresh, Checkpoint::new(q.clone()));
        let mut cp = fresh;
        cp.next_token = Some("t".into());
        cp.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path, &q).unwrap(), cp);
        // `now` later is still the first run's `now`.
        let later = Query {
            end_ms: 5,
            ..q.clone()
        };
        assert_eq!(Checkpoint::load(&path, &later).unwrap(), cp);
        let other = Query {
            end: "1d".into(),
            ..q
        };
        let refused = Checkpoint::load(&path, &other).unwrap_err().to_string();
        assert!(refused.contains("belongs to another backfill"), "{refused}");
    }
}
