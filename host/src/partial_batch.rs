//! Lambda's partial batch response for a Kinesis event: the items to retry.
//!
//! With `ReportBatchItemFailures` on the event source mapping, the function answers
//! `{"batchItemFailures":[{"itemIdentifier":"<sequenceNumber>"}]}`, and Lambda retries those
//! items (for a stream, from the lowest one named; redelivered records keep their
//! `record_id`, so WhaTap can tell them). The mapper names the items it could not map; when
//! the invocation fails (delivery, a trap, a timeout), every item is named, as nothing of
//! the event is known to be delivered. The host reads only the envelope's sequence numbers,
//! never the items' data.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::sandbox::FailedItem;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Records")]
    records: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    kinesis: Kinesis,
}

#[derive(Deserialize)]
struct Kinesis {
    #[serde(rename = "sequenceNumber")]
    sequence_number: String,
}

/// The sequence numbers of a Kinesis event, in order, or `None` for any other event. Only an
/// event whose start names `Records` is parsed (a CloudWatch Logs or RDS event never is).
pub fn kinesis_items(event: &[u8]) -> Option<Vec<String>> {
    let head = &event[..event.len().min(256)];
    if !head.windows(9).any(|w| w == b"\"Records\"") {
        return None;
    }
    let envelope: Envelope = serde_json::from_slice(event).ok()?;
    Some(
        envelope
            .records
            .into_iter()
            .map(|i| i.kinesis.sequence_number)
            .collect(),
    )
}

/// The items to retry: on success, the ones the mapper reported, in the event's order; on
/// failure, all of them.
pub fn failures(items: &[String], succeeded: bool, failed: &[FailedItem]) -> Vec<String> {
    if !succeeded {
        return items.to_vec();
    }
    // A batch may hold 10,000 records, and a stream of garbage fails them all.
    let failed: std::collections::HashSet<&str> = failed.iter().map(|f| f.item.as_str()).collect();
    items
        .iter()
        .filter(|i| failed.contains(i.as_str()))
        .cloned()
        .collect()
}

/// `{"batchItemFailures":[{"itemIdentifier":…},…]}`.
pub fn response(failures: &[String]) -> Value {
    json!({
        "batchItemFailures": failures
            .iter()
            .map(|id| json!({"itemIdentifier": id}))
            .collect::<Vec<_>>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(item: &str) -> FailedItem {
        FailedItem {
            item: item.into(),
            reason: "bad gzip".into(),
        }
    }

    #[test]
    fn items_of_kinesis_events_only() {
        let kinesis = br#"{"Records":[{"kinesis":{"sequenceNumber":"49590","data":"eA=="},"eventSource":"aws:kinesis"},
                                      {"kinesis":{"sequenceNumber":"49591","data":"eA=="}}]}"#;
        assert_eq!(
            kinesis_items(kinesis),
            Some(vec!["49590".into(), "49591".into()])
        );
        assert_eq!(kinesis_items(br#"{"awslogs":{"data":"x"}}"#), None);
        assert_eq!(kinesis_items(br#"{"Records":[{"s3":{}}]}"#), None);
        assert_eq!(kinesis_items(b"not json \"Records\""), None);
    }

    #[test]
    fn failures_in_event_order_or_all() {
        let items: Vec<String> = ["1", "2", "3"].map(String::from).to_vec();
        // Reported out of order, one twice, one unknown: the event's order, each once.
        let reported = [failed("3"), failed("1"), failed("3"), failed("9")];
        assert_eq!(failures(&items, true, &reported), ["1", "3"]);
        assert_eq!(failures(&items, true, &[]), Vec::<String>::new());
        assert_eq!(failures(&items, false, &[]), ["1", "2", "3"]);
        assert_eq!(
            response(&["1".into()]),
            json!({"batchItemFailures": [{"itemIdentifier": "1"}]})
        );
        assert_eq!(response(&[]), json!({"batchItemFailures": []}));
    }
}
