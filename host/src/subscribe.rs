//! Subscriptions that follow the fleet: every RDS log group (instances, clusters, proxies,
//! and Enhanced Monitoring's `RDSOSMetrics`) subscribed to one destination, so a new database
//! is forwarded without a stack update. Run by `rds-forwarder subscribe` and, in Lambda, by the
//! subscriber function on a schedule and on CloudTrail's `CreateLogGroup`.
//!
//! It only ever adds or updates the filter it names (`rds-forwarder` by default): a filter
//! someone else made is never removed or replaced. A group already delivering to the
//! destination through another filter is left alone (a second filter would deliver twice), and
//! a group with CloudWatch's maximum of two filters is reported, not forced.

use serde::Serialize;
use serde_json::{Value, json};

use crate::aws::{AwsError, AwsJsonClient};

/// CloudWatch Logs allows this many subscription filters per log group.
pub const MAX_FILTERS: usize = 2;

/// What to subscribe, and to what.
#[derive(Debug, Clone)]
pub struct Options {
    pub destination_arn: String,
    /// Log group name prefixes to list.
    pub prefixes: Vec<String>,
    /// A group must contain one of these (when any is given)…
    pub include: Vec<String>,
    /// …and none of these.
    pub exclude: Vec<String>,
    /// The name of the filter this tool makes, and the only one it changes.
    pub filter_name: String,
    pub filter_pattern: String,
    /// For a destination that needs one (a Kinesis stream or Firehose in the same account).
    pub role_arn: Option<String>,
    pub dry_run: bool,
}

/// The default prefixes: every RDS group, and Enhanced Monitoring's.
pub const DEFAULT_PREFIXES: [&str; 2] = ["/aws/rds/", "RDSOSMetrics"];
pub const DEFAULT_FILTER_NAME: &str = "rds-forwarder";

/// What happened to one log group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Subscribed,
    /// Our filter was there with another destination or pattern, and now has ours.
    Updated,
    AlreadySubscribed,
    /// `--dry-run`: what would have been done.
    WouldSubscribe,
    WouldUpdate,
    /// Two filters of others: nothing done.
    Full,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupOutcome {
    pub log_group: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl GroupOutcome {
    /// Whether the group is (or, in a dry run, would be) subscribed.
    pub fn ok(&self) -> bool {
        !matches!(self.outcome, Outcome::Full | Outcome::Failed)
    }
}

/// One subscription filter of a group, as DescribeSubscriptionFilters gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub destination_arn: String,
    pub pattern: String,
}

/// What to do with a group that has `filters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Leave(Outcome, Option<String>),
    Put { update: bool },
}

/// Whether `group` is one of ours to subscribe (its prefix was listed already).
pub fn wanted(options: &Options, group: &str) -> bool {
    (options.include.is_empty() || options.include.iter().any(|i| group.contains(i.as_str())))
        && !options.exclude.iter().any(|e| group.contains(e.as_str()))
}

pub fn decide(options: &Options, filters: &[Filter]) -> Decision {
    if let Some(ours) = filters.iter().find(|f| f.name == options.filter_name) {
        if ours.destination_arn == options.destination_arn && ours.pattern == options.filter_pattern
        {
            return Decision::Leave(Outcome::AlreadySubscribed, None);
        }
        return Decision::Put { update: true };
    }
    if let Some(other) = filters
        .iter()
        .find(|f| f.destination_arn == options.destination_arn)
    {
        return Decision::Leave(
            Outcome::AlreadySubscribed,
            Some(format!("by the filter {:?}", other.name)),
        );
    }
    if filters.len() >= MAX_FILTERS {
        let names: Vec<&str> = filters.iter().map(|f| f.name.as_str()).collect();
        return Decision::Leave(
            Outcome::Full,
            Some(format!(
                "already has CloudWatch's maximum of {MAX_FILTERS} subscription filters ({}); remove one to forward it",
                names.join(", ")
            )),
        );
    }
    Decision::Put { update: false }
}

/// The matching log groups under every prefix, in name order.
pub fn log_groups(client: &AwsJsonClient, options: &Options) -> Result<Vec<String>, AwsError> {
    let mut groups = Vec::new();
    for prefix in &options.prefixes {
        for g in client.pages(
            "DescribeLogGroups",
            json!({ "logGroupNamePrefix": prefix }),
            "logGroups",
        )? {
            if let Some(name) = g["logGroupName"].as_str().filter(|g| wanted(options, g)) {
                groups.push(name.to_owned());
            }
        }
    }
    groups.sort();
    groups.dedup();
    Ok(groups)
}

fn filters(client: &AwsJsonClient, group: &str) -> Result<Vec<Filter>, AwsError> {
    let text = |f: &Value, k: &str| f[k].as_str().unwrap_or_default().to_owned();
    Ok(client
        .pages(
            "DescribeSubscriptionFilters",
            json!({ "logGroupName": group }),
            "subscriptionFilters",
        )?
        .iter()
        .map(|f| Filter {
            name: text(f, "filterName"),
            destination_arn: text(f, "destinationArn"),
            pattern: text(f, "filterPattern"),
        })
        .collect())
}

/// Subscribes one group (or says why not); a failed call is that group's outcome.
pub fn subscribe_group(client: &AwsJsonClient, options: &Options, group: &str) -> GroupOutcome {
    let outcome = |outcome, detail| GroupOutcome {
        log_group: group.to_owned(),
        outcome,
        detail,
    };
    let existing = match filters(client, group) {
        Ok(f) => f,
        Err(e) => return outcome(Outcome::Failed, Some(e.to_string())),
    };
    let update = match decide(options, &existing) {
        Decision::Leave(o, detail) => return outcome(o, detail),
        Decision::Put { update } => update,
    };
    if options.dry_run {
        let o = if update {
            Outcome::WouldUpdate
        } else {
            Outcome::WouldSubscribe
        };
        return outcome(o, None);
    }
    let mut request = json!({
        "logGroupName": group,
        "filterName": options.filter_name,
        "filterPattern": options.filter_pattern,
        "destinationArn": options.destination_arn,
    });
    if let Some(role) = &options.role_arn {
        request["roleArn"] = json!(role);
    }
    match client.call("PutSubscriptionFilter", &request) {
        Ok(_) if update => outcome(Outcome::Updated, None),
        Ok(_) => outcome(Outcome::Subscribed, None),
        Err(e) if e.code() == Some("LimitExceededException") => outcome(
            Outcome::Full,
            Some(format!(
                "already has CloudWatch's maximum of {MAX_FILTERS} subscription filters"
            )),
        ),
        Err(e) => outcome(Outcome::Failed, Some(e.to_string())),
    }
}

/// Subscribes every matching group. Listing the groups failing is an error; a group failing
/// is its outcome.
pub fn subscribe_all(
    client: &AwsJsonClient,
    options: &Options,
) -> Result<Vec<GroupOutcome>, AwsError> {
    Ok(log_groups(client, options)?
        .iter()
        .map(|g| subscribe_group(client, options, g))
        .collect())
}

/// The log group a CloudTrail `CreateLogGroup` event (through EventBridge) names, if the
/// event is one.
pub fn created_log_group(event: &Value) -> Option<&str> {
    let detail = &event["detail"];
    (detail["eventName"] == "CreateLogGroup")
        .then(|| detail["requestParameters"]["logGroupName"].as_str())
        .flatten()
}

/// Whether a group name falls under the options' prefixes and patterns.
pub fn covers(options: &Options, group: &str) -> bool {
    options
        .prefixes
        .iter()
        .any(|p| group.starts_with(p.as_str()))
        && wanted(options, group)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            destination_arn: "arn:dest".into(),
            prefixes: DEFAULT_PREFIXES.map(String::from).to_vec(),
            include: vec![],
            exclude: vec!["/audit".into()],
            filter_name: DEFAULT_FILTER_NAME.into(),
            filter_pattern: String::new(),
            role_arn: None,
            dry_run: false,
        }
    }

    fn filter(name: &str, dest: &str) -> Filter {
        Filter {
            name: name.into(),
            destination_arn: dest.into(),
            pattern: String::new(),
        }
    }

    #[test]
    fn decisions() {
        let o = options();
        assert_eq!(decide(&o, &[]), Decision::Put { update: false });
        assert_eq!(
            decide(&o, &[filter("rds-forwarder", "arn:dest")]),
            Decision::Leave(Outcome::AlreadySubscribed, None)
        );
        // Ours, pointing elsewhere: ours to update.
        assert_eq!(
            decide(
                &o,
                &[filter("rds-forwarder", "arn:old"), filter("x", "arn:y")]
            ),
            Decision::Put { update: true }
        );
        // Someone else's filter already delivers there: not twice.
        assert_eq!(
            decide(&o, &[filter("theirs", "arn:dest")]),
            Decision::Leave(
                Outcome::AlreadySubscribed,
                Some("by the filter \"theirs\"".into())
            )
        );
        let Decision::Leave(Outcome::Full, Some(why)) =
            decide(&o, &[filter("a", "arn:1"), filter("b", "arn:2")])
        else {
            panic!("full")
        };
        assert!(why.contains("(a, b)"), "{why}");
        assert_eq!(
            decide(&o, &[filter("a", "arn:1")]),
            Decision::Put { update: false }
        );
    }

    #[test]
    fn which_groups_and_events() {
        let o = options();
        assert!(covers(&o, "/aws/rds/instance/db-1/error"));
        assert!(covers(&o, "/aws/rds/proxy/p"));
        assert!(covers(&o, "RDSOSMetrics"));
        assert!(!covers(&o, "/aws/rds/instance/db-1/audit"), "excluded");
        assert!(!covers(&o, "/aws/lambda/f"));
        let event = json!({"source": "aws.logs", "detail-type": "AWS API Call via CloudTrail",
            "detail": {"eventSource": "logs.amazonaws.com", "eventName": "CreateLogGroup",
                       "requestParameters": {"logGroupName": "/aws/rds/instance/new/error"}}});
        assert_eq!(
            created_log_group(&event),
            Some("/aws/rds/instance/new/error")
        );
        assert_eq!(
            created_log_group(&json!({"detail-type": "Scheduled Event"})),
            None
        );
    }
}
