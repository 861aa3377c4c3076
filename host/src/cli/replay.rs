//! `replay`: sends on what waits in the failed-event queue ([`crate::replay`]), deleting each
//! message only once its records are confirmed delivered. The report is one JSON line on
//! stderr (stdout carries the records with `--sink stdout`); exit 1 when a message remains.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::forwarding::{ForwardArgs, forwarder};
use crate::aws::{AwsJsonClient, KINESIS, SQS};
use crate::progress::Progress;
use crate::replay::{Options, Queue, replay as drain};

#[derive(Debug, clap::Args)]
pub(super) struct ReplayArgs {
    /// The failed-event queue (install.yaml's FailedEventQueueUrl output).
    #[arg(long, value_name = "URL")]
    queue_url: String,
    /// Take at most this many messages.
    #[arg(long, value_name = "N")]
    max: Option<usize>,
    /// Map every message and say what would be delivered; deliver nothing, delete nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    forward: ForwardArgs,
}

pub(super) async fn replay(args: ReplayArgs) -> Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let sqs = AwsJsonClient::from_env(env, &SQS).context("the failed-event queue")?;
    let kinesis = AwsJsonClient::from_env(env, &KINESIS).ok().map(Arc::new);
    let queue = Queue::new(sqs, &args.queue_url);
    let forwarder = forwarder(&args.forward, args.dry_run).await?;
    let waiting = queue
        .approximate_len()
        .await
        .with_context(|| format!("{}: cannot read the queue", args.queue_url))?;
    let len = args.max.map_or(waiting, |max| waiting.min(max as u64));
    let mut progress = Progress::new("replay", len);
    let options = Options {
        max: args.max,
        dry_run: args.dry_run,
        timeout: Duration::from_millis(args.forward.mapping.timeout_ms),
        stop_after: None,
    };
    let drained = drain(
        &queue,
        kinesis.as_ref(),
        &forwarder,
        &options,
        &mut progress,
    )
    .await;
    // The WhaTap connection closes cleanly however the run ended, as `backfill`'s does.
    forwarder.shutdown().await;
    let report = drained.with_context(|| format!("{}: replay stopped", args.queue_url))?;
    progress.finish(&format!(
        "{} messages: {} replayed, {} deleted, {} kept",
        report.received,
        report.replayed,
        report.deleted,
        report.kept.len()
    ));
    eprintln!("{}", serde_json::to_string(&report)?);
    if let Some(why) = &report.stopped {
        eprintln!("error: {why}");
    }
    Ok(if report.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
