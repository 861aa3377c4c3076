//! The invocation's metrics as one CloudWatch Embedded Metric Format (EMF) line: CloudWatch
//! Logs extracts the metrics from the function's own log, so dashboards and alarms cost no API
//! call and no time of the invocation.
//!
//! The line follows the EMF specification: an `_aws` member with `Timestamp` (epoch ms) and
//! `CloudWatchMetrics` (namespace, dimension sets, metric definitions), and every metric and
//! dimension named there as a member of the root object. The dimension sets are the function
//! alone (stable for alarms) and the function with its mapper (`name@version`).

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::sandbox::bindings::Summary;

/// The namespace when `METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "RDSForwarder";

/// What one invocation did, as its EMF line reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvocationMetrics {
    /// Records handed to the sink (0 when the invocation failed: none is known delivered).
    pub records: u64,
    /// Bytes of the event as Lambda passed it.
    pub input_bytes: u64,
    /// Bytes the sink put on the network for this invocation, re-sends included.
    pub wire_bytes: u64,
    pub batches: u64,
    pub split: u64,
    /// Entries not turned into records, by reason (`control-message`, `filtered`, …).
    pub skipped: Vec<(String, u64)>,
    /// The sink's tries at writing or confirming, retries included.
    pub delivery_attempts: u64,
    /// Those of them that failed (and were retried, or failed the invocation).
    pub failed_delivery_attempts: u64,
    /// Whether the invocation failed (Lambda retries it).
    pub failed: bool,
    /// Items of a Kinesis batch reported for retry.
    pub failed_items: u64,
    pub phases: Phases,
}

/// Where the invocation's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Revalidating the mapper and the mapping config.
    pub refresh: Duration,
    /// Running the mapper, less its sends.
    pub map: Duration,
    /// The sink's sends while the mapper ran.
    pub send: Duration,
    /// Waiting for the collector's confirmation.
    pub confirm: Duration,
    /// The whole invocation.
    pub total: Duration,
}

impl InvocationMetrics {
    /// Takes the summary's counts.
    pub fn count(&mut self, summary: &Summary) {
        self.records = u64::from(summary.records);
        self.batches = u64::from(summary.batches);
        self.split = u64::from(summary.split);
        self.skipped = summary
            .skipped
            .iter()
            .map(|s| (s.reason.clone(), u64::from(s.count)))
            .collect();
    }

    /// The EMF document. `properties` are extra members (request id, event kind, error
    /// type) that Logs Insights can query but that are not metrics.
    pub fn emf(
        &self,
        namespace: &str,
        function: &str,
        mapper: &str,
        timestamp_ms: i64,
        properties: &[(&str, &str)],
    ) -> Value {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut values: Vec<(String, Value, &str)> = vec![
            ("Records".into(), json!(self.records), "Count"),
            ("InputBytes".into(), json!(self.input_bytes), "Bytes"),
            ("WireBytes".into(), json!(self.wire_bytes), "Bytes"),
            ("Batches".into(), json!(self.batches), "Count"),
            ("Split".into(), json!(self.split), "Count"),
            (
                "DeliveryAttempts".into(),
                json!(self.delivery_attempts),
                "Count",
            ),
            (
                "FailedDeliveryAttempts".into(),
                json!(self.failed_delivery_attempts),
                "Count",
            ),
            ("Failed".into(), json!(u64::from(self.failed)), "Count"),
            ("FailedItems".into(), json!(self.failed_items), "Count"),
            (
                "RefreshTime".into(),
                json!(ms(self.phases.refresh)),
                "Milliseconds",
            ),
            ("MapTime".into(), json!(ms(self.phases.map)), "Milliseconds"),
            (
                "SendTime".into(),
                json!(ms(self.phases.send)),
                "Milliseconds",
            ),
            (
                "ConfirmTime".into(),
                json!(ms(self.phases.confirm)),
                "Milliseconds",
            ),
            (
                "Duration".into(),
                json!(ms(self.phases.total)),
                "Milliseconds",
            ),
        ];
        values.extend(
            self.skipped
                .iter()
                .map(|(reason, n)| (skipped_metric(reason), json!(n), "Count")),
        );
        let definitions: Vec<Value> = values
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit}))
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["Function"], ["Function", "Mapper"]],
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert("Function".into(), json!(function));
        root.insert("Mapper".into(), json!(mapper));
        for (name, value, _) in values {
            root.insert(name, value);
        }
        for (k, v) in properties {
            root.entry(*k).or_insert_with(|| json!(v));
        }
        Value::Object(root)
    }
}

/// A summary's skipped entries as the JSON summaries show them: `{reason: count}`.
pub fn skipped_json(summary: &Summary) -> Map<String, Value> {
    summary
        .skipped
        .iter()
        .map(|s| (s.reason.clone(), json!(s.count)))
        .collect()
}

/// The metric of entries skipped for `reason`: `Skipped.<reason>`, with any character a metric
/// name should not carry replaced by `_` (reasons come from the mapper, which may be anyone's).
pub fn skipped_metric(reason: &str) -> String {
    let clean: String = reason
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("Skipped.{clean}")
}

/// `METRICS_NAMESPACE`: the namespace, or `None` when set to `off` (no metrics line).
pub fn namespace(setting: Option<&str>) -> Option<String> {
    match setting.map(str::trim) {
        None | Some("") => Some(DEFAULT_NAMESPACE.to_owned()),
        Some(off) if off.eq_ignore_ascii_case("off") => None,
        Some(name) => Some(name.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_defined_and_a_number_of_the_root() {
        let m = InvocationMetrics {
            records: 3,
            input_bytes: 1200,
            wire_bytes: 400,
            batches: 1,
            skipped: vec![("control message".into(), 2)],
            delivery_attempts: 2,
            phases: Phases {
                map: Duration::from_micros(1500),
                ..Phases::default()
            },
            ..InvocationMetrics::default()
        };
        let line = m.emf("NS", "fn", "rds-mapper@1", 5, &[("RequestId", "r1")]);
        let aws = &line["_aws"];
        assert_eq!(aws["Timestamp"], 5);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "NS");
        for name in directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["Name"].as_str().unwrap())
        {
            assert!(line[name].is_number(), "{name} is not a number");
        }
        for set in directive["Dimensions"].as_array().unwrap() {
            for d in set.as_array().unwrap() {
                assert!(line[d.as_str().unwrap()].is_string());
            }
        }
        assert_eq!(line["Skipped.control_message"], 2);
        assert_eq!(line["MapTime"], 1.5);
        assert_eq!(line["Records"], 3);
        assert_eq!(line["RequestId"], "r1");
    }

    #[test]
    fn a_property_never_replaces_a_metric() {
        let line = InvocationMetrics::default().emf("NS", "fn", "m", 1, &[("Records", "x")]);
        assert_eq!(line["Records"], 0);
    }

    #[test]
    fn the_namespace_setting() {
        assert_eq!(namespace(None).as_deref(), Some(DEFAULT_NAMESPACE));
        assert_eq!(namespace(Some(" ")).as_deref(), Some(DEFAULT_NAMESPACE));
        assert_eq!(namespace(Some("Ops")).as_deref(), Some("Ops"));
        assert_eq!(namespace(Some("OFF")), None);
    }
}
