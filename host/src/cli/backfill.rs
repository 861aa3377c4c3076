//! `backfill`: delivers a log group's history ([`crate::backfill`]) as live delivery would
//! have, resumable from a checkpoint. The report is one JSON line on stderr (stdout carries
//! the records with `--sink stdout`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::forwarding::{ForwardArgs, forwarder};
use crate::aws::{AwsJsonClient, CLOUDWATCH_LOGS};
use crate::backfill::{Options, Query, backfill as run, parse_time};
use crate::progress::Progress;
use crate::whatap::connection::now_ms;

#[derive(Debug, clap::Args)]
pub(super) struct BackfillArgs {
    /// The log group, e.g. /aws/rds/instance/mydb/postgresql.
    #[arg(long, value_name = "GROUP")]
    log_group: String,
    /// From (inclusive): RFC 3339, epoch ms, `now`, or a duration ago (`7d`, `36h`).
    #[arg(long, value_name = "TIME")]
    start: String,
    /// To (inclusive), as --start; e.g. when the subscription was made.
    #[arg(long, value_name = "TIME")]
    end: String,
    /// Only streams whose name starts with this.
    #[arg(long, value_name = "PREFIX")]
    stream_prefix: Option<String>,
    /// A CloudWatch Logs filter pattern; only matching events.
    #[arg(long, value_name = "PATTERN")]
    filter_pattern: Option<String>,
    /// Where progress is kept: a run with the same arguments goes on from there.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Stop at the first page boundary after this many events (with --checkpoint, the next
    /// run goes on from there).
    #[arg(long, value_name = "N")]
    max_events: Option<u64>,
    /// Events per FilterLogEvents page (1 to 10000).
    #[arg(long, default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    page_size: u32,
    #[command(flatten)]
    forward: ForwardArgs,
}

pub(super) async fn backfill(args: BackfillArgs) -> Result<ExitCode> {
    let now = now_ms();
    let start = parse_time(&args.start, now).map_err(|e| anyhow::anyhow!("--start: {e}"))?;
    let end = parse_time(&args.end, now).map_err(|e| anyhow::anyhow!("--end: {e}"))?;
    if end < start {
        anyhow::bail!("--end ({end} ms) is before --start ({start} ms)");
    }
    let query = Query {
        log_group: args.log_group.clone(),
        start: args.start.trim().to_owned(),
        end: args.end.trim().to_owned(),
        start_ms: start,
        end_ms: end,
        stream_prefix: args.stream_prefix.clone().filter(|p| !p.is_empty()),
        filter_pattern: args.filter_pattern.clone().filter(|p| !p.is_empty()),
    };
    let logs = Arc::new(AwsJsonClient::from_env(
        |k| std::env::var(k).ok(),
        &CLOUDWATCH_LOGS,
    )?);
    let forwarder = forwarder(&args.forward, false).await?;
    let options = Options {
        page_size: args.page_size,
        max_events: args.max_events,
        checkpoint: args.checkpoint.clone(),
        timeout: Duration::from_millis(args.forward.mapping.timeout_ms),
    };
    let mut progress = Progress::new("backfill", 1);
    let result = run(&logs, &forwarder, &query, &options, &mut progress).await;
    forwarder.shutdown().await;
    let report = result.with_context(|| format!("backfill of {}", args.log_group))?;
    progress.finish(&format!(
        "{} events in {} payloads, {} records{}",
        report.events,
        report.payloads,
        report.records,
        if report.complete { ", complete" } else { "" }
    ));
    eprintln!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}
