//! The scheduled drain: the same bootstrap with `RDS_FORWARDER_MODE=replay`, invoked on a
//! schedule (install.yaml's `ReplaySchedule`), replays the failed-event queue as
//! `rds-forwarder replay` does ([`crate::replay`]), with the forwarder's own settings
//! (mapper, mapping config, WhaTap). It stops taking messages [`ROOM`] before its deadline,
//! or halfway through a shorter timeout.
//!
//! Settings: `REPLAY_QUEUE_URL` (required), and everything the forwarder reads.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use super::{Forwarder, StartError};
use crate::aws::{AwsJsonClient, KINESIS, SQS};
use crate::progress::Progress;
use crate::replay::{Options, Queue, replay};

/// Time kept back from the deadline when the drain stops taking messages: a message taken
/// just before may need its whole event budget ([`EVENT_BUDGET`]) and its deletion.
pub const ROOM: Duration = Duration::from_secs(75);
/// Each replayed event's time budget.
pub const EVENT_BUDGET: Duration = Duration::from_secs(60);

/// How long a drain with `left` until its deadline takes messages.
pub fn stop_after(left: Duration) -> Duration {
    left.saturating_sub(ROOM).max(left / 2)
}

pub async fn serve() -> Result<(), lambda_runtime::Error> {
    let var = |k: &str| std::env::var(k).ok();
    let url = var("REPLAY_QUEUE_URL")
        .filter(|u| !u.is_empty())
        .ok_or("REPLAY_QUEUE_URL is not set: the scheduled replay needs the failed-event queue")?;
    let queue = Arc::new(Queue::new(AwsJsonClient::from_env(var, &SQS)?, url.clone()));
    let kinesis = AwsJsonClient::from_env(var, &KINESIS).ok().map(Arc::new);
    // A replayed message is deleted once delivered: only confirmed delivery may say so, even
    // where RDS_FORWARDER_UNSAFE_DELIVERY lets the forwarder itself run without it.
    let started = Forwarder::from_env()
        .await
        .and_then(|f| match f.unconfirmed() {
            Some(setting) => Err(StartError::Unconfirmed(setting)),
            None => Ok(f),
        });
    let forwarder = match started {
        Ok(f) => Arc::new(f),
        Err(e) => {
            tracing::error!(error = %e, "The scheduled replay cannot start.");
            super::report_init_error(&e).await;
            return Err(e.into());
        }
    };
    tracing::info!(queue = %url, "Scheduled replay ready.");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (queue, kinesis, forwarder) = (queue.clone(), kinesis.clone(), forwarder.clone());
        async move {
            let deadline = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
            let left = deadline.saturating_sub(crate::whatap::connection::now_ms()).max(0);
            let options = Options {
                max: None,
                dry_run: false,
                timeout: EVENT_BUDGET,
                stop_after: Some(stop_after(Duration::from_millis(left as u64))),
            };
            let report = replay(&queue, kinesis.as_ref(), &forwarder, &options, &mut Progress::hidden())
                .await
                .map_err(|e| Diagnostic {
                    error_type: "FailedEventQueue".into(),
                    error_message: e.to_string(),
                })?;
            for kept in &report.kept {
                tracing::error!(message_id = %kept.message_id, reason = %kept.reason, "Failed event kept in the queue.");
            }
            tracing::info!(
                received = report.received, replayed = report.replayed, deleted = report.deleted,
                kept = report.kept.len(), stopped = report.stopped.as_deref().unwrap_or(""),
                "Scheduled replay done."
            );
            // A kept message is not this invocation's failure: the queue's alarm stays on
            // while it waits, and a retry of the drain would only try it again.
            serde_json::to_value(&report).map_err(|e| Diagnostic {
                error_type: "Report".into(),
                error_message: e.to_string(),
            })
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_leaves_room_for_its_last_message() {
        assert_eq!(
            stop_after(Duration::from_secs(900)),
            Duration::from_secs(825)
        );
        assert_eq!(stop_after(Duration::from_secs(30)), Duration::from_secs(15));
    }
}
