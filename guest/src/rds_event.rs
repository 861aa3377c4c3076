//! EventBridge `aws.rds` events to `#RDS_EVENT` records.
//!
//! The envelope and `detail` are read as loose JSON, not a strict struct: RDS events in the
//! wild lack `EventID`, carry `null`s and bare or `rds:`-prefixed identifiers, and a record
//! with the fields that are there beats an error that loses the event.

use serde_json::{Map, Value};

use crate::level::Level;
use crate::record::{CATEGORY_EVENT, Record};
use crate::time::parse_rfc3339;

/// The `detail-type`s RDS sends itself (rds-formats.md §8). Others under `aws.rds` (CloudTrail
/// API calls, future types) are still forwarded, as generic events.
pub const RDS_DETAIL_TYPES: &[&str] = &[
    "RDS DB Instance Event",
    "RDS DB Cluster Event",
    "RDS DB Snapshot Event",
    "RDS DB Cluster Snapshot Event",
    "RDS DB Parameter Group Event",
    "RDS DB Security Group Event",
    "RDS DB Proxy Event",
    "RDS Blue Green Deployment Event",
    "RDS Custom Engine Version Event",
    "RDS DB Shard Group Event",
    "RDS Zero ETL Event",
];

/// Builds the record for one RDS event. `received_ms` is the time of last resort.
pub fn map_rds_event(event: &Map<String, Value>, received_ms: i64) -> Record {
    let empty = Map::new();
    let detail = event
        .get("detail")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let text = |obj: &Map<String, Value>, key: &str| -> Option<String> {
        match obj.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };

    let time = text(detail, "Date")
        .and_then(|d| parse_rfc3339(&d))
        .or_else(|| text(event, "time").and_then(|t| parse_rfc3339(&t)))
        .unwrap_or(received_ms);
    // With no Message there is nothing better to show than the event itself: never lose it.
    let content = match detail.get("Message") {
        Some(Value::String(m)) => m.clone(),
        _ => Value::Object(event.clone()).to_string(),
    };
    let categories: Vec<String> = match detail.get("EventCategories") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let event_id = text(detail, "EventID");
    let source_type = text(detail, "SourceType");
    let detail_type = text(event, "detail-type").unwrap_or_default();

    let mut r = Record::new(CATEGORY_EVENT, time, content);
    if let Some(id) = &event_id {
        r.set_tag("event_id", id.clone());
    }
    if let Some(t) = &source_type {
        r.set_tag("source_type", t.clone());
    }
    if let Some(raw) = text(detail, "SourceIdentifier") {
        let bare = raw.strip_prefix("rds:").unwrap_or(&raw).to_owned();
        if matches!(source_type.as_deref(), Some("DB_INSTANCE" | "CLUSTER")) {
            // Lines the event up with the `#RDS_LOG` records of the same database.
            r.set_tag("db_identifier", bare.clone());
        }
        r.set_tag("source_identifier", bare);
        r.set_tag("source_identifier_raw", raw);
    }
    if !categories.is_empty() {
        r.set_tag("event_categories", categories.join(","));
    }
    r.set_tag("detail_type", detail_type.clone());
    for (tag, key) in [("region", "region"), ("account", "account")] {
        if let Some(v) = text(event, key) {
            r.set_tag(tag, v);
        }
    }
    if let Some(arn) = text(detail, "SourceArn").or_else(|| {
        event
            .get("resources")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_owned)
    }) {
        r.set_tag("source_arn", arn);
    }
    if let Some(id) = text(event, "id") {
        r.set_tag("eventbridge_id", id);
    }
    // CloudTrail-delivered API calls share the `aws.rds` source; their verb is the useful tag.
    if let Some(name) = text(detail, "eventName") {
        r.set_tag("event_name", name);
    }
    let level = if RDS_DETAIL_TYPES.contains(&detail_type.as_str()) {
        severity(&categories, event_id.as_deref(), &r.content)
    } else {
        Level::Info
    };
    r.set_tag("level", level.as_str());
    // EventBridge's event id is unique per event; a redelivery keeps it.
    let id = match r.tag("eventbridge_id") {
        Some(id) => crate::logs::record_id(&[id]),
        None => crate::logs::record_id(&[&r.content, &r.time.to_string()]),
    };
    r.set_field("record_id", crate::record::FieldValue::Text(id));
    r
}

/// Severity by category (the most severe of several), then the event-ID table, then message
/// keywords that make anything at least an error (rds-formats.md §8).
pub fn severity(categories: &[String], event_id: Option<&str>, message: &str) -> Level {
    let mut level = categories
        .iter()
        .map(|c| category_level(c))
        .max()
        .unwrap_or(Level::Info);
    if let Some(l) = event_id.and_then(id_level) {
        level = l;
    }
    if has_failure_word(message) {
        level = level.max(Level::Error);
    }
    level
}

/// Whether the message says something failed: words `fail…` (but not `failover`/`failback`,
/// which are operations), `error…`, `unable`, `cannot`, `exhausted`, or `shut down`.
fn has_failure_word(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    let mut previous = "";
    for word in lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let failed = (word.starts_with("fail")
            && !word.starts_with("failover")
            && !word.starts_with("failback"))
            || word.starts_with("error")
            || matches!(word, "unable" | "cannot" | "exhausted")
            || (previous == "shut" && word == "down");
        if failed {
            return true;
        }
        previous = word;
    }
    false
}

fn category_level(category: &str) -> Level {
    match category.trim().to_ascii_lowercase().as_str() {
        "failure" | "low storage" => Level::Error,
        "failover" | "global failover" | "availability" | "recovery" | "read replica" => {
            Level::Warning
        }
        "security" | "security patching" | "deletion" | "notification" => Level::Notice,
        _ => Level::Info,
    }
}

/// Severities that differ from their category's, from the RDS event message tables.
const ID_LEVELS: &[(u16, u16, Level)] = &[
    (1, 2, Level::Info),
    (3, 3, Level::Notice),
    (4, 4, Level::Warning),
    (5, 5, Level::Info),
    (6, 6, Level::Warning),
    (7, 7, Level::Critical),
    (13, 13, Level::Warning),
    (15, 15, Level::Warning),
    (16, 16, Level::Notice),
    (22, 22, Level::Error),
    (31, 31, Level::Critical),
    (34, 34, Level::Warning),
    (35, 36, Level::Error),
    (37, 37, Level::Info),
    (41, 41, Level::Info),
    (45, 45, Level::Error),
    (46, 47, Level::Info),
    (49, 49, Level::Warning),
    (57, 57, Level::Error),
    (69, 69, Level::Error),
    (71, 73, Level::Warning),
    (74, 75, Level::Info),
    (79, 80, Level::Warning),
    (87, 88, Level::Notice),
    (89, 89, Level::Warning),
    (143, 143, Level::Error),
    (150, 151, Level::Notice),
    (152, 152, Level::Error),
    (153, 154, Level::Notice),
    (170, 170, Level::Info),
    (171, 171, Level::Notice),
    (173, 173, Level::Info),
    (181, 186, Level::Warning),
    (187, 187, Level::Error),
    (189, 189, Level::Warning),
    (202, 202, Level::Error),
    (203, 208, Level::Info),
    (221, 222, Level::Critical),
    (223, 223, Level::Error),
    (224, 224, Level::Warning),
    (227, 227, Level::Critical),
    (230, 230, Level::Notice),
    (243, 243, Level::Error),
    (245, 245, Level::Error),
    (249, 249, Level::Error),
    (252, 252, Level::Error),
    (261, 261, Level::Error),
    (244, 261, Level::Info),
    (270, 270, Level::Error),
    (275, 275, Level::Warning),
];

fn id_level(event_id: &str) -> Option<Level> {
    let n: u16 = event_id.strip_prefix("RDS-EVENT-")?.parse().ok()?;
    ID_LEVELS
        .iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&n))
        .map(|(_, _, l)| *l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cats(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn category_then_id_then_keywords() {
        assert_eq!(
            severity(&cats(&["backup"]), None, "Finished DB Instance backup"),
            Level::Info
        );
        assert_eq!(
            severity(
                &cats(&["failover"]),
                Some("RDS-EVENT-0049"),
                "A Multi-AZ failover has completed."
            ),
            Level::Warning
        );
        assert_eq!(
            severity(
                &cats(&["low storage"]),
                Some("RDS-EVENT-0007"),
                "Allocated storage has been exhausted."
            ),
            Level::Critical
        );
        assert_eq!(
            severity(
                &cats(&["notification"]),
                Some("RDS-EVENT-0152"),
                "DB cluster stop failed"
            ),
            Level::Error
        );
        assert_eq!(
            severity(
                &cats(&["notification"]),
                Some("RDS-EVENT-0087"),
                "DB instance stopped."
            ),
            Level::Notice
        );
        // Blue/green: 0245 is a failure inside an otherwise informational range.
        assert_eq!(
            severity(
                &cats(&["creation"]),
                Some("RDS-EVENT-0244"),
                "Blue/green deployment tasks completed."
            ),
            Level::Info
        );
        assert_eq!(
            severity(&cats(&["failure"]), Some("RDS-EVENT-0245"), "x"),
            Level::Error
        );
        // Keywords raise an otherwise informational event.
        assert_eq!(
            severity(
                &cats(&["maintenance"]),
                None,
                "Patching was unable to complete"
            ),
            Level::Error
        );
        assert_eq!(
            severity(&cats(&["availability"]), None, "The database was shut down"),
            Level::Error
        );
        assert_eq!(
            severity(&cats(&["failover"]), None, "Started cross-AZ failover"),
            Level::Warning
        );
        // The most severe of several categories.
        assert_eq!(
            severity(&cats(&["maintenance", "failure"]), None, "x"),
            Level::Error
        );
        assert_eq!(severity(&[], None, "x"), Level::Info);
    }

    #[test]
    fn every_field_missing_still_gives_a_record() {
        let event: Map<String, Value> =
            serde_json::from_str(r#"{"source":"aws.rds","detail-type":"RDS DB Instance Event"}"#)
                .unwrap();
        let r = map_rds_event(&event, 42);
        assert_eq!(r.time, 42);
        assert_eq!(
            r.content,
            r#"{"source":"aws.rds","detail-type":"RDS DB Instance Event"}"#
        );
        assert_eq!(
            r.all_tags().collect::<Vec<_>>(),
            vec![("detail_type", "RDS DB Instance Event"), ("level", "info"),]
        );
    }

    #[test]
    fn null_event_id_and_bare_identifier() {
        let event: Map<String, Value> = serde_json::from_str(
            r#"{"source":"aws.rds","detail-type":"RDS DB Instance Event","time":"2020-01-01T00:00:00Z",
               "detail":{"EventID":null,"EventCategories":["empty"],"SourceType":"DB_INSTANCE",
               "SourceIdentifier":"db1","Message":"Finished moving DB instance to target VPC"}}"#,
        )
        .unwrap();
        let r = map_rds_event(&event, 0);
        assert_eq!(r.time, 1_577_836_800_000);
        assert_eq!(r.tag("event_id"), None);
        assert_eq!(r.tag("source_identifier"), Some("db1"));
        assert_eq!(r.tag("db_identifier"), Some("db1"));
        assert_eq!(r.tag("level"), Some("info"));
    }
}
