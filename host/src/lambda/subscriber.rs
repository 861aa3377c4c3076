//! The subscriber function: the same bootstrap with `RDS_FORWARDER_MODE=subscriber`, its own
//! least-privilege role, invoked on a schedule (every matching group is checked) and on
//! CloudTrail's `CreateLogGroup` (the new group only), so a new database is forwarded minutes
//! after its first log line. What it does is [`crate::subscribe`]'s.
//!
//! Settings: `SUBSCRIBE_DESTINATION_ARN` (required), `SUBSCRIBE_PREFIXES`,
//! `SUBSCRIBE_INCLUDE`, `SUBSCRIBE_EXCLUDE` (comma-separated), `SUBSCRIBE_FILTER_NAME`,
//! `SUBSCRIBE_FILTER_PATTERN`, `SUBSCRIBE_ROLE_ARN`.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};

use crate::aws::{AwsJsonClient, CLOUDWATCH_LOGS};
use crate::subscribe::{
    DEFAULT_FILTER_NAME, DEFAULT_PREFIXES, GroupOutcome, Options, covers, created_log_group,
    subscribe_all, subscribe_group,
};

/// The subscription options of the environment.
pub fn options(var: impl Fn(&str) -> Option<String>) -> Result<Options, String> {
    let list = |k: &str| -> Vec<String> {
        var(k)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let destination_arn = var("SUBSCRIBE_DESTINATION_ARN")
        .filter(|d| !d.is_empty())
        .ok_or("SUBSCRIBE_DESTINATION_ARN is not set: the subscriber needs a destination")?;
    let prefixes = match list("SUBSCRIBE_PREFIXES") {
        p if p.is_empty() => DEFAULT_PREFIXES.map(String::from).to_vec(),
        p => p,
    };
    Ok(Options {
        destination_arn,
        prefixes,
        include: list("SUBSCRIBE_INCLUDE"),
        exclude: list("SUBSCRIBE_EXCLUDE"),
        filter_name: var("SUBSCRIBE_FILTER_NAME")
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_FILTER_NAME.to_owned()),
        filter_pattern: var("SUBSCRIBE_FILTER_PATTERN").unwrap_or_default(),
        role_arn: var("SUBSCRIBE_ROLE_ARN").filter(|r| !r.is_empty()),
        dry_run: false,
    })
}

/// One invocation: the group a `CreateLogGroup` event names, or every matching group.
pub fn handle(
    client: &AwsJsonClient,
    options: &Options,
    event: &Value,
) -> Result<Value, Diagnostic> {
    let outcomes: Vec<GroupOutcome> = match created_log_group(event) {
        Some(group) if covers(options, group) => vec![subscribe_group(client, options, group)],
        Some(group) => {
            tracing::debug!(log_group = group, "A new log group that is not ours.");
            Vec::new()
        }
        None => subscribe_all(client, options).map_err(|e| Diagnostic {
            error_type: "ListLogGroups".into(),
            error_message: e.to_string(),
        })?,
    };
    for o in &outcomes {
        if o.ok() {
            tracing::info!(log_group = %o.log_group, outcome = ?o.outcome, "Subscription checked.");
        } else {
            tracing::error!(log_group = %o.log_group, outcome = ?o.outcome, detail = o.detail.as_deref().unwrap_or(""), "Log group not subscribed.");
        }
    }
    let count = |f: &dyn Fn(&GroupOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    Ok(json!({
        "groups": outcomes.len(),
        "subscribed": count(&|o| matches!(o.outcome, crate::subscribe::Outcome::Subscribed | crate::subscribe::Outcome::Updated)),
        "not_subscribed": outcomes.iter().filter(|o| !o.ok()).collect::<Vec<_>>(),
    }))
}

pub async fn serve() -> Result<(), lambda_runtime::Error> {
    let var = |k: &str| std::env::var(k).ok();
    let options = Arc::new(options(var)?);
    let client = Arc::new(AwsJsonClient::from_env(var, &CLOUDWATCH_LOGS)?);
    tracing::info!(destination = %options.destination_arn, prefixes = ?options.prefixes, "Subscriber ready.");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (client, options) = (client.clone(), options.clone());
        async move {
            tokio::task::spawn_blocking(move || handle(&client, &options, &event.payload))
                .await
                .map_err(|e| Diagnostic {
                    error_type: "SubscriberTask".into(),
                    error_message: e.to_string(),
                })?
        }
    }))
    .await
}
