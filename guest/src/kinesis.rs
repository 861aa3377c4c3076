//! Kinesis input: a Lambda Kinesis event whose records carry what a CloudWatch Logs
//! destination writes (the gzip'd subscription payload, the same bytes as `awslogs.data`
//! decoded from base64). Across accounts, a log group can be subscribed only to a destination,
//! and a destination delivers to Kinesis; the function reads the stream.
//!
//! Each item is decoded on its own: one that cannot be (bad base64, gzip or JSON) is reported
//! to the host by its sequence number ([`crate::Output::item_failed`]) and the others are
//! mapped, so the event source mapping retries only what failed.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::MapError;

/// What errors about an item's data name it.
pub const FIELD: &str = "kinesis.data";

/// One item of a Kinesis event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The item's id in a partial batch response.
    pub sequence_number: String,
    /// Base64 of the gzip'd CloudWatch Logs payload.
    pub data: String,
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "eventSource", default)]
    event_source: Option<String>,
    kinesis: Option<KinesisData>,
}

#[derive(Deserialize)]
struct KinesisData {
    #[serde(rename = "sequenceNumber")]
    sequence_number: String,
    data: String,
}

/// The items of a Kinesis event, or `None` if `root` is not a batched event (`Records`). An
/// event with `Records` from another source, or a Kinesis item without its sequence number
/// or data, is an error naming it: its items cannot even be named for a retry.
pub fn items(root: &mut Map<String, Value>) -> Option<Result<Vec<Item>, MapError>> {
    let records = root.remove("Records")?;
    Some(read(records))
}

fn read(records: Value) -> Result<Vec<Item>, MapError> {
    let records: Vec<Record> = serde_json::from_value(records).map_err(|e| {
        MapError::decode(format!(
            "Records is not a list of Kinesis records (kinesis.sequenceNumber and kinesis.data): {e}"
        ))
    })?;
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| match (r.kinesis, r.event_source.as_deref()) {
            (Some(k), None | Some("aws:kinesis")) => Ok(Item {
                sequence_number: k.sequence_number,
                data: k.data,
            }),
            (_, source) => Err(MapError::unsupported(format!(
                "Records[{i}] is not a Kinesis record (eventSource {}): this function maps \
                 CloudWatch Logs subscriptions, Kinesis streams fed by a CloudWatch Logs \
                 destination, and RDS events",
                source.map_or("missing".to_owned(), |s| format!("{s:?}"))
            ))),
        })
        .collect()
}

/// A Kinesis event of the given payloads (JSON, as CloudWatch Logs writes them), each item
/// gzip'd and base64'd as a destination delivers it; sequence numbers count from `first`.
/// For tests and the payload generator.
pub fn event(payloads: &[&[u8]], first: u64) -> String {
    let records: Vec<Value> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": format!("{i}"),
                    "sequenceNumber": (first + i as u64).to_string(),
                    "data": crate::awslogs::encode(p),
                    "approximateArrivalTimestamp": 1_700_000_000.0,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{}", first + i as u64),
                "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn kinesis_items_and_other_sources() {
        let mut r = root(&event(&[b"{}", b"[]"], 7));
        let found = items(&mut r).unwrap().unwrap();
        assert_eq!(
            found
                .iter()
                .map(|i| i.sequence_number.as_str())
                .collect::<Vec<_>>(),
            ["7", "8"]
        );
        assert_eq!(items(&mut root(r#"{"awslogs":{}}"#)), None);
        let e = items(&mut root(
            r#"{"Records":[{"eventSource":"aws:sqs","body":"x"}]}"#,
        ))
        .unwrap()
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Records[0] is not a Kinesis record (eventSource \"aws:sqs\"): this function maps \
             CloudWatch Logs subscriptions, Kinesis streams fed by a CloudWatch Logs \
             destination, and RDS events"
        );
        let e = items(&mut root(r#"{"Records":[{"kinesis":{"data":"x"}}]}"#))
            .unwrap()
            .unwrap_err();
        assert!(
            e.to_string().contains("missing field `sequenceNumber`"),
            "{e}"
        );
    }
}
