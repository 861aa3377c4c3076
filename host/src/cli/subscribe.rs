//! `subscribe`: subscribes every RDS log group of the account and region (and Enhanced
//! Monitoring's) to a destination ([`crate::subscribe`]), with the AWS credentials of the
//! environment. One JSON line per group on stdout.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::aws::{AwsJsonClient, CLOUDWATCH_LOGS};
use crate::subscribe::{DEFAULT_FILTER_NAME, DEFAULT_PREFIXES, Options, subscribe_all};

#[derive(Debug, clap::Args)]
pub(super) struct SubscribeArgs {
    /// The destination: the forwarder function's ARN (same account) or the central account's
    /// CloudWatch Logs destination (central.yaml's DestinationArn).
    #[arg(long, value_name = "ARN")]
    destination_arn: String,
    /// Log group name prefixes (repeatable); default `/aws/rds/` and `RDSOSMetrics`.
    #[arg(long = "prefix", value_name = "PREFIX")]
    prefixes: Vec<String>,
    /// Subscribe only groups whose name contains this (repeatable: any of them).
    #[arg(long = "include", value_name = "TEXT")]
    include: Vec<String>,
    /// Leave out groups whose name contains this (repeatable).
    #[arg(long = "exclude", value_name = "TEXT")]
    exclude: Vec<String>,
    /// The name of the filter made; only a filter of this name is ever changed.
    #[arg(long, default_value = DEFAULT_FILTER_NAME, value_name = "NAME")]
    filter_name: String,
    /// The filter pattern; empty forwards everything.
    #[arg(long, default_value = "", value_name = "PATTERN")]
    filter_pattern: String,
    /// A role for CloudWatch Logs to write to the destination, where it needs one (a Kinesis
    /// stream or Firehose in this account).
    #[arg(long, value_name = "ARN")]
    role_arn: Option<String>,
    /// Say what would be done, and do nothing.
    #[arg(long)]
    dry_run: bool,
}

pub(super) async fn subscribe(args: SubscribeArgs) -> Result<ExitCode> {
    let options = Options {
        destination_arn: args.destination_arn,
        prefixes: if args.prefixes.is_empty() {
            DEFAULT_PREFIXES.map(String::from).to_vec()
        } else {
            args.prefixes
        },
        include: args.include,
        exclude: args.exclude,
        filter_name: args.filter_name,
        filter_pattern: args.filter_pattern,
        role_arn: args.role_arn,
        dry_run: args.dry_run,
    };
    let client = AwsJsonClient::from_env(|k| std::env::var(k).ok(), &CLOUDWATCH_LOGS)?;
    let outcomes = tokio::task::spawn_blocking(move || subscribe_all(&client, &options))
        .await
        .context("the subscription task")??;
    let mut all_ok = true;
    for o in &outcomes {
        println!("{}", serde_json::to_string(o)?);
        if !o.ok() {
            all_ok = false;
            eprintln!(
                "error: {}: {}",
                o.log_group,
                o.detail.as_deref().unwrap_or("not subscribed")
            );
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
