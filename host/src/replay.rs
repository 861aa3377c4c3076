//! Replaying the failed-event queue: each message's original event is mapped and delivered by
//! the code of Lambda mode ([`Forwarder::process`]), and the message is deleted only once
//! everything of it is confirmed delivered. A message that cannot be replayed stays in the
//! queue, with the reason; a failed delivery stops the run, leaving the rest untouched.
//!
//! A message is one of:
//! - a Lambda on-failure record of an asynchronous invocation (`requestContext`,
//!   `requestPayload`, `responsePayload`): the original event is `requestPayload`;
//! - an event source mapping's on-failure record of a Kinesis batch (`KinesisBatchInfo`),
//!   which holds only where the batch lies: its records are read back from the stream;
//! - an event itself (an EventBridge rule's dead-letter queue holds the event as it was).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use thiserror::Error;

use crate::aws::{AwsError, AwsJsonClient};
use crate::lambda::Forwarder;
use crate::progress::Progress;

/// How long a received message stays hidden from other consumers while it is replayed; a kept
/// message is made visible again at the end of the run.
const VISIBILITY_TIMEOUT_S: u64 = 300;
/// SQS returns at most this many messages per receive.
const RECEIVE_MAX: usize = 10;
/// A receive waits this long for messages (long polling: an empty answer means empty).
const RECEIVE_WAIT_S: u64 = 2;
/// GetRecords calls made to read one Kinesis batch back, at most.
const KINESIS_READS: usize = 100;

/// Why a message cannot be replayed; it stays in the queue.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Unreplayable {
    #[error("the message body is not JSON: {0}")]
    NotJson(String),
    #[error(
        "the message is neither a Lambda on-failure record (requestPayload, KinesisBatchInfo) \
         nor an event"
    )]
    NotARecord,
    #[error("the on-failure record has no requestPayload (the event was not kept with it)")]
    NoPayload,
    #[error("the Kinesis batch cannot be read back: {0}")]
    Kinesis(String),
}

/// A message's original event.
#[derive(Debug, Clone, PartialEq)]
pub enum Original {
    /// The event's bytes, as Lambda passed them; `request_id` of the failed invocation, if
    /// known.
    Event {
        bytes: Vec<u8>,
        request_id: Option<String>,
    },
    /// A Kinesis batch to read back from its stream.
    KinesisBatch(KinesisBatchInfo),
}

/// Where a failed Kinesis batch lies (the on-failure record's `KinesisBatchInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisBatchInfo {
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
    pub stream_arn: String,
}

/// What a message body holds.
pub fn original(body: &str) -> Result<Original, Unreplayable> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| Unreplayable::NotJson(e.to_string()))?;
    let Value::Object(record) = value else {
        return Err(Unreplayable::NotARecord);
    };
    let request_id = record
        .get("requestContext")
        .and_then(|c| c.get("requestId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(info) = record.get("KinesisBatchInfo") {
        return serde_json::from_value(info.clone())
            .map(Original::KinesisBatch)
            .map_err(|e| Unreplayable::Kinesis(format!("KinesisBatchInfo: {e}")));
    }
    if record.contains_key("requestContext") || record.contains_key("responsePayload") {
        return match record.get("requestPayload") {
            Some(payload) if !payload.is_null() => Ok(Original::Event {
                bytes: payload.to_string().into_bytes(),
                request_id,
            }),
            _ => Err(Unreplayable::NoPayload),
        };
    }
    // An event as an EventBridge dead-letter queue keeps it: a CloudWatch Logs delivery, an
    // RDS event, a Kinesis event.
    let is_event = record.contains_key("awslogs")
        || record.contains_key("Records")
        || (record.contains_key("detail-type") && record.contains_key("source"));
    if is_event {
        return Ok(Original::Event {
            bytes: body.as_bytes().to_vec(),
            request_id: None,
        });
    }
    Err(Unreplayable::NotARecord)
}

/// Orders Kinesis sequence numbers (decimal strings of up to 128 bits).
fn sequence_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Reads a failed batch back from its stream, as the Kinesis event Lambda gave the function.
/// Fails when the stream no longer holds the batch's first record (its retention passed).
pub async fn read_kinesis_batch(
    kinesis: &Arc<AwsJsonClient>,
    info: &KinesisBatchInfo,
) -> Result<Vec<u8>, Unreplayable> {
    let failed = |e: AwsError| Unreplayable::Kinesis(e.to_string());
    let iterator = kinesis
        .call_async(
            "GetShardIterator",
            json!({
                "StreamARN": info.stream_arn,
                "ShardId": info.shard_id,
                "ShardIteratorType": "AT_SEQUENCE_NUMBER",
                "StartingSequenceNumber": info.start_sequence_number,
            }),
        )
        .await
        .map_err(failed)?;
    let mut iterator = iterator["ShardIterator"].as_str().map(str::to_owned);
    let region = info.stream_arn.split(':').nth(3).unwrap_or_default();
    let mut records = Vec::new();
    let mut reads = 0;
    'reading: while let Some(it) = iterator.take() {
        reads += 1;
        if reads > KINESIS_READS {
            return Err(Unreplayable::Kinesis(format!(
                "the batch's last record {} was not reached in {KINESIS_READS} reads",
                info.end_sequence_number
            )));
        }
        let page = kinesis
            .call_async(
                "GetRecords",
                json!({"ShardIterator": it, "StreamARN": info.stream_arn, "Limit": 10000}),
            )
            .await
            .map_err(failed)?;
        let got = page["Records"].as_array().cloned().unwrap_or_default();
        for r in &got {
            let seq = r["SequenceNumber"].as_str().unwrap_or_default();
            if records.is_empty() && seq != info.start_sequence_number {
                return Err(Unreplayable::Kinesis(format!(
                    "the stream no longer holds the batch's first record {} (its retention may have passed)",
                    info.start_sequence_number
                )));
            }
            if sequence_cmp(seq, &info.end_sequence_number).is_gt() {
                break 'reading;
            }
            records.push(json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": seq,
                    "data": r["Data"],
                    "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"],
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{}:{seq}", info.shard_id),
                "eventName": "aws:kinesis:record",
                "eventSourceARN": info.stream_arn,
                "awsRegion": region,
            }));
            if seq == info.end_sequence_number {
                break 'reading;
            }
        }
        let caught_up = page["MillisBehindLatest"].as_u64() == Some(0);
        if got.is_empty() && caught_up {
            break;
        }
        iterator = page["NextShardIterator"].as_str().map(str::to_owned);
    }
    if records.is_empty() {
        return Err(Unreplayable::Kinesis(format!(
            "the stream holds no record from {}",
            info.start_sequence_number
        )));
    }
    Ok(json!({ "Records": records }).to_string().into_bytes())
}

/// The failed-event queue, through the host's AWS client.
pub struct Queue {
    sqs: Arc<AwsJsonClient>,
    url: String,
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub receipt: String,
    pub body: String,
}

impl Queue {
    pub fn new(sqs: AwsJsonClient, url: impl Into<String>) -> Queue {
        Queue {
            sqs: Arc::new(sqs),
            url: url.into(),
        }
    }

    /// About how many messages are waiting (SQS's `ApproximateNumberOfMessages`).
    pub async fn approximate_len(&self) -> Result<u64, AwsError> {
        let answer = self
            .sqs
            .call_async(
                "GetQueueAttributes",
                json!({"QueueUrl": self.url, "AttributeNames": ["ApproximateNumberOfMessages"]}),
            )
            .await?;
        Ok(answer["Attributes"]["ApproximateNumberOfMessages"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    pub async fn receive(&self, max: usize) -> Result<Vec<Message>, AwsError> {
        let answer = self
            .sqs
            .call_async(
                "ReceiveMessage",
                json!({
                    "QueueUrl": self.url,
                    "MaxNumberOfMessages": max.clamp(1, RECEIVE_MAX),
                    "VisibilityTimeout": VISIBILITY_TIMEOUT_S,
                    "WaitTimeSeconds": RECEIVE_WAIT_S,
                }),
            )
            .await?;
        Ok(answer["Messages"]
            .as_array()
            .map(|messages| {
                messages
                    .iter()
                    .filter_map(|m| {
                        Some(Message {
                            id: m["MessageId"].as_str()?.to_owned(),
                            receipt: m["ReceiptHandle"].as_str()?.to_owned(),
                            body: m["Body"].as_str().unwrap_or_default().to_owned(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    pub async fn delete(&self, message: &Message) -> Result<(), AwsError> {
        self.sqs
            .call_async(
                "DeleteMessage",
                json!({"QueueUrl": self.url, "ReceiptHandle": message.receipt}),
            )
            .await
            .map(drop)
    }

    /// Makes a kept message visible again at once, for the next replay.
    pub async fn release(&self, message: &Message) -> Result<(), AwsError> {
        self.sqs
            .call_async(
                "ChangeMessageVisibility",
                json!({"QueueUrl": self.url, "ReceiptHandle": message.receipt, "VisibilityTimeout": 0}),
            )
            .await
            .map(drop)
    }
}

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Messages to take from the queue at most.
    pub max: Option<usize>,
    /// Map, deliver nothing, delete nothing.
    pub dry_run: bool,
    /// Each event's time budget.
    pub timeout: Duration,
    /// Stop taking messages after this long (a scheduled drain must end before its Lambda
    /// timeout); the messages in hand are finished.
    pub stop_after: Option<Duration>,
}

/// A message left in the queue, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kept {
    pub message_id: String,
    pub reason: String,
}

/// What a replay did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    /// Messages taken from the queue.
    pub received: usize,
    /// Messages whose events were delivered (or, in a dry run, would be).
    pub replayed: usize,
    /// Messages deleted after their delivery was confirmed.
    pub deleted: usize,
    /// Records delivered (or, in a dry run, mapped).
    pub records: u64,
    pub kept: Vec<Kept>,
    /// Why the run stopped before the queue was empty, if it did.
    pub stopped: Option<String>,
    pub dry_run: bool,
}

impl Report {
    /// Whether messages remain that this run took and could not replay.
    pub fn complete(&self) -> bool {
        self.kept.is_empty() && self.stopped.is_none()
    }
}

/// Replays the queue's messages through `forwarder` until the queue is empty, `max` messages
/// were taken, or a delivery fails.
pub async fn replay(
    queue: &Queue,
    kinesis: Option<&Arc<AwsJsonClient>>,
    forwarder: &Forwarder,
    options: &Options,
    progress: &mut Progress,
) -> Result<Report, AwsError> {
    let started = Instant::now();
    let mut report = Report {
        dry_run: options.dry_run,
        ..Report::default()
    };
    let mut held: Vec<Message> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let max = options.max.unwrap_or(usize::MAX);
    'receiving: while report.received < max {
        if options
            .stop_after
            .is_some_and(|limit| started.elapsed() >= limit)
        {
            break;
        }
        let batch = match queue.receive(max - report.received).await {
            Ok(batch) => batch,
            Err(e) => {
                release(queue, &held).await;
                return Err(e);
            }
        };
        let fresh: Vec<Message> = batch
            .into_iter()
            .filter(|m| seen.insert(m.id.clone()))
            .collect();
        // Empty, or only messages this run already holds (their visibility ran out).
        if fresh.is_empty() {
            break;
        }
        let mut fresh = fresh.into_iter();
        while let Some(message) = fresh.next() {
            report.received += 1;
            let outcome = replay_one(&message, kinesis, forwarder, options).await;
            match outcome {
                Ok(records) => {
                    report.replayed += 1;
                    report.records += records;
                    if options.dry_run {
                        held.push(message);
                    } else {
                        match queue.delete(&message).await {
                            Ok(()) => report.deleted += 1,
                            Err(e) => {
                                let reason = format!(
                                    "delivered, but not deleted ({e}); a later replay sends it again"
                                );
                                progress.println(&format!("kept {}: {reason}", message.id));
                                report.kept.push(Kept {
                                    message_id: message.id.clone(),
                                    reason,
                                });
                                held.push(message);
                            }
                        }
                    }
                }
                Err(Failure { reason, stop }) => {
                    progress.println(&format!("kept {}: {reason}", message.id));
                    report.kept.push(Kept {
                        message_id: message.id.clone(),
                        reason: reason.clone(),
                    });
                    held.push(message);
                    if stop {
                        report.stopped = Some(format!(
                            "delivery failed, so the rest of the queue was left untouched: {reason}"
                        ));
                        // Received with this one and not tried: back in the queue too.
                        held.extend(fresh);
                        break 'receiving;
                    }
                }
            }
            progress.update(
                report.received as u64,
                &format!(
                    "{} messages: {} replayed, {} kept, {} records",
                    report.received,
                    report.replayed,
                    report.kept.len(),
                    report.records
                ),
            );
            if report.received >= max {
                held.extend(fresh);
                break 'receiving;
            }
        }
    }
    release(queue, &held).await;
    Ok(report)
}

/// Makes kept messages (all of them in a dry run), and any received but not tried, visible
/// again at once.
async fn release(queue: &Queue, held: &[Message]) {
    for message in held {
        if let Err(e) = queue.release(message).await {
            tracing::warn!(message_id = %message.id, error = %e, "A kept message stays hidden until its visibility timeout ends.");
        }
    }
}

/// Why one message was not replayed, and whether the run must stop (a delivery failure: the
/// next messages would fail the same way).
struct Failure {
    reason: String,
    stop: bool,
}

/// One message: its original event through the forwarder; the records delivered.
async fn replay_one(
    message: &Message,
    kinesis: Option<&Arc<AwsJsonClient>>,
    forwarder: &Forwarder,
    options: &Options,
) -> Result<u64, Failure> {
    let keep = |reason: String| Failure {
        reason,
        stop: false,
    };
    let (event, request_id) = match original(&message.body) {
        Ok(Original::Event { bytes, request_id }) => (bytes, request_id),
        Ok(Original::KinesisBatch(info)) => {
            let Some(kinesis) = kinesis else {
                return Err(keep("a Kinesis batch, and no Kinesis client".into()));
            };
            let bytes = read_kinesis_batch(kinesis, &info)
                .await
                .map_err(|e| keep(e.to_string()))?;
            (bytes, None)
        }
        Err(e) => return Err(keep(e.to_string())),
    };
    let request_id = format!(
        "replay-{}",
        request_id.as_deref().unwrap_or(message.id.as_str())
    );
    let processed = forwarder
        .process_within(&event, &request_id, options.timeout)
        .await;
    match processed.not_delivered() {
        None => Ok(processed.metrics.records),
        Some(why) => Err(Failure {
            reason: why.reason,
            stop: why.delivery_failed,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_on_failure_record_gives_its_request_payload() {
        let body = r#"{"version":"1.0","timestamp":"2026-01-01T00:00:00Z",
            "requestContext":{"requestId":"r-1","functionArn":"arn:aws:lambda:us-east-1:1:function:f","condition":"RetriesExhausted","approximateInvokeCount":3},
            "requestPayload":{"awslogs":{"data":"H4sI"}},
            "responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},
            "responsePayload":{"errorType":"DeliveryFailed","errorMessage":"x"}}"#;
        assert_eq!(
            original(body).unwrap(),
            Original::Event {
                bytes: br#"{"awslogs":{"data":"H4sI"}}"#.to_vec(),
                request_id: Some("r-1".into())
            }
        );
    }

    #[test]
    fn a_kinesis_batch_record_names_where_the_batch_lies() {
        let body = r#"{"requestContext":{"requestId":"r"},"KinesisBatchInfo":{"shardId":"shardId-000000000001","startSequenceNumber":"49","endSequenceNumber":"51","approximateArrivalOfFirstRecord":"x","batchSize":3,"streamArn":"arn:aws:kinesis:us-east-1:1:stream/s"}}"#;
        assert_eq!(
            original(body).unwrap(),
            Original::KinesisBatch(KinesisBatchInfo {
                shard_id: "shardId-000000000001".into(),
                start_sequence_number: "49".into(),
                end_sequence_number: "51".into(),
                stream_arn: "arn:aws:kinesis:us-east-1:1:stream/s".into(),
            })
        );
    }

    #[test]
    fn an_event_itself_is_replayed_as_it_is() {
        let body = r#"{"source":"aws.rds","detail-type":"RDS DB Instance Event","detail":{}}"#;
        assert!(
            matches!(original(body), Ok(Original::Event { bytes, request_id: None }) if bytes == body.as_bytes())
        );
    }

    #[test]
    fn what_cannot_be_replayed_says_why() {
        assert!(matches!(original("nope"), Err(Unreplayable::NotJson(_))));
        assert_eq!(original(r#"{"a":1}"#), Err(Unreplayable::NotARecord));
        assert_eq!(original("[1]"), Err(Unreplayable::NotARecord));
        assert_eq!(
            original(r#"{"requestContext":{},"requestPayload":null}"#),
            Err(Unreplayable::NoPayload)
        );
        assert_eq!(
            original(r#"{"requestContext":{}}"#)
                .unwrap_err()
                .to_string(),
            "the on-failure record has no requestPayload (the event was not kept with it)"
        );
    }

    #[test]
    fn sequence_numbers_order_as_numbers() {
        use std::cmp::Ordering::*;
        assert_eq!(sequence_cmp("9", "10"), Less);
        assert_eq!(sequence_cmp("49601", "49600"), Greater);
        assert_eq!(sequence_cmp("5", "5"), Equal);
    }
}
