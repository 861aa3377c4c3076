//! Lambda mode: the Runtime API loop (`lambda_runtime` on tokio). Engine, mapper store and
//! WhaTap sink are built once per sandbox; each invocation runs the current mapper in a fresh
//! store, sends through the sink, answers with a summary and writes one metrics line
//! ([`crate::metrics`]). Any failure is an invocation error, so Lambda's async retries and the
//! on-failure destination keep the event. [`Forwarder::process`] is that path without the
//! Runtime API: `replay` and `backfill` send their events through it.
//!
//! [`settings`] says what the environment may ask for; [`subscriber`] and [`drain`] are the
//! bootstrap's other modes.

pub mod drain;
pub mod settings;
pub mod subscriber;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use thiserror::Error;
use tracing::Instrument;

use crate::mapper_store::{MapperSettings, MapperStore};
use crate::metrics::InvocationMetrics;
use crate::rules_store::RulesStore;
use crate::s3::S3Client;
use crate::sandbox::bindings::{ErrorKind, Invocation};
use crate::sandbox::{RunError, Sandbox, SandboxLimits};
use crate::sink::RecordSink;
use crate::source::MapperUri;
use crate::whatap::config::WhatapConfig;
use crate::whatap::connection::now_ms;
use crate::whatap::sink::WhatapSink;
pub use settings::{HOST_MEMORY_MB, StartError, mapper_memory_mb, parse_settings};
use settings::{check_delivery_is_safe, live_config, unconfirmed_setting};

/// Time kept back from the deadline to report the result: the sink gives up this long before
/// Lambda's timeout, so the event fails as `DeliveryFailed` (and is retried) instead of timing
/// out.
const RESPONSE_MARGIN: Duration = Duration::from_millis(250);
/// The least time an invocation is given, however close the deadline.
const MIN_BUDGET: Duration = Duration::from_millis(100);

/// An invocation that failed; its kind becomes Lambda's `errorType`.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct InvocationError {
    pub kind: &'static str,
    pub message: String,
}

impl From<InvocationError> for Diagnostic {
    fn from(e: InvocationError) -> Diagnostic {
        Diagnostic {
            error_type: e.kind.to_owned(),
            error_message: e.message,
        }
    }
}

pub struct Forwarder {
    sandbox: Sandbox,
    store: MapperStore,
    sink: tokio::sync::Mutex<Option<Box<dyn RecordSink>>>,
    /// To build the sink anew if an invocation lost it (a panic while it was lent out).
    delivery: Delivery,
    function_name: String,
    /// `MAPPER_SETTINGS`, passed to the mapper in every invocation.
    settings: Vec<(String, String)>,
    /// `MAPPER_CONFIG`, passed as the `rules` setting.
    rules: RulesStore,
    /// `METRICS_NAMESPACE`: where each invocation's EMF line puts its metrics; `None` writes
    /// none.
    metrics_namespace: Option<String>,
}

/// Where a forwarder delivers the records.
#[derive(Clone)]
pub enum Delivery {
    /// The WhaTap collector (Lambda mode, and `--sink whatap`).
    Whatap(WhatapConfig),
    /// JSON lines on stdout (`--sink stdout`).
    Stdout,
    /// Counted and dropped: a dry run, which must deliver nothing.
    DryRun,
}

impl Delivery {
    fn sink(&self) -> Box<dyn RecordSink> {
        match self {
            Delivery::Whatap(config) => Box::new(WhatapSink::new(config.clone())),
            Delivery::Stdout => Box::new(crate::sink::stdout::Stdout),
            Delivery::DryRun => Box::new(crate::sink::Count::default()),
        }
    }
}

/// What one event came to: Lambda's answer, and the numbers of its metrics line.
pub struct Processed {
    pub answer: Result<Value, InvocationError>,
    pub metrics: InvocationMetrics,
    /// The mapper that ran (`name@version`), or `none`.
    pub mapper: String,
    pub event_kind: Option<String>,
}

/// Why an event was not all delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDelivered {
    pub reason: String,
    /// Whether delivery itself failed (`DeliveryFailed`): the next event would fail the same
    /// way, unlike one the mapper refused.
    pub delivery_failed: bool,
}

impl Processed {
    /// Why not everything of the event was delivered, or `None` when it was: the answer is a
    /// success and (for a Kinesis event) names no item to retry.
    pub fn not_delivered(&self) -> Option<NotDelivered> {
        match &self.answer {
            Err(e) => Some(NotDelivered {
                reason: format!("{}: {}", e.kind, e.message),
                delivery_failed: e.kind == "DeliveryFailed",
            }),
            Ok(answer) => {
                let items: Vec<&str> = answer["batchItemFailures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["itemIdentifier"].as_str())
                    .collect();
                if items.is_empty() {
                    return None;
                }
                let why = answer["error"].as_str().unwrap_or("not mapped");
                Some(NotDelivered {
                    reason: format!(
                        "{} of the batch's Kinesis records were not delivered ({why}): {}",
                        items.len(),
                        items.join(", ")
                    ),
                    delivery_failed: answer["error_type"] == "DeliveryFailed",
                })
            }
        }
    }
}

impl Forwarder {
    /// Everything from the environment, once per sandbox.
    pub async fn from_env() -> Result<Forwarder, StartError> {
        let var = |k: &str| std::env::var(k).ok();
        let function_name =
            var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "rds-forwarder".to_owned());
        let memory_mb = mapper_memory_mb(
            var("MAPPER_MEMORY_MB").as_deref(),
            var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").as_deref(),
        )?;
        // The license from Secrets Manager when it is not in the environment.
        let license = match (
            var("WHATAP_LICENSE").filter(|l| !l.is_empty()),
            var("WHATAP_LICENSE_SECRET_ARN").filter(|a| !a.is_empty()),
        ) {
            (None, Some(arn)) => {
                let client = crate::secrets::SecretsClient::from_env(var)?;
                let license = tokio::task::spawn_blocking(move || client.license(&arn))
                    .await
                    .map_err(|e| crate::aws::AwsError::Call {
                        service: crate::aws::SECRETS_MANAGER.name,
                        action: "GetSecretValue",
                        why: e.to_string(),
                    })
                    .map_err(crate::secrets::SecretError::from)??;
                Some(license)
            }
            _ => None,
        };
        let sandbox = Sandbox::new(SandboxLimits {
            memory_bytes: memory_mb << 20,
        });
        let settings = MapperSettings::from_lookup(var)?;
        let s3 = match settings.uri {
            MapperUri::S3 { .. } => {
                Some(S3Client::from_env(var).map_err(crate::source::SourceError::from)?)
            }
            _ => None,
        };
        let whatap = WhatapConfig::from_lookup(
            |k| match (k, &license) {
                ("WHATAP_LICENSE", Some(from_secret)) => Some(from_secret.clone()),
                _ => var(k),
            },
            &function_name,
        )?;
        let mapper_settings = parse_settings(&var("MAPPER_SETTINGS").unwrap_or_default())?;
        check_delivery_is_safe(
            &whatap,
            &mapper_settings,
            var("RDS_FORWARDER_UNSAFE_DELIVERY"),
        )?;
        let refresh = settings.refresh;
        let config = var("MAPPER_CONFIG");
        let config_s3 = match RulesStore::needs_s3(config.as_deref()) {
            true => Some(S3Client::from_env(var).map_err(crate::source::SourceError::from)?),
            false => None,
        };
        let rules = RulesStore::new(config.as_deref(), refresh, config_s3)?;
        // A new mapper is dry-run with the settings and rules it will serve with (rules from a
        // file or S3 are read once a mapper serves: their own check needs one).
        let live = live_config(&mapper_settings, rules.current());
        let store = MapperStore::new(&sandbox, settings, s3, &live).await?;
        Ok(Forwarder {
            sandbox,
            store,
            sink: tokio::sync::Mutex::new(Some(Box::new(WhatapSink::new(whatap.clone())))),
            delivery: Delivery::Whatap(whatap),
            function_name,
            settings: mapper_settings,
            rules,
            metrics_namespace: crate::metrics::namespace(var("METRICS_NAMESPACE").as_deref()),
        })
    }

    /// A forwarder with a given mapper, settings and mapping config (inline JSON), delivering
    /// to `delivery`: what `replay` and `backfill` map and deliver with, the code of Lambda
    /// mode. It writes no metrics line.
    pub fn with_mapper(
        sandbox: Sandbox,
        mapper: Arc<crate::sandbox::Mapper>,
        delivery: Delivery,
        settings: Vec<(String, String)>,
        rules: Option<String>,
    ) -> Result<Forwarder, StartError> {
        let rules = RulesStore::new(rules.as_deref(), Duration::MAX, None)?;
        let forwarder = Forwarder {
            sandbox,
            store: MapperStore::fixed(mapper),
            sink: tokio::sync::Mutex::new(Some(delivery.sink())),
            delivery,
            function_name: "rds-forwarder-cli".to_owned(),
            settings,
            rules,
            metrics_namespace: None,
        };
        // What they deliver counts as done: a message is deleted, a checkpoint moves.
        match forwarder.unconfirmed() {
            Some(setting) => Err(StartError::Unconfirmed(setting)),
            None => Ok(forwarder),
        }
    }

    /// The setting, if any, under which what this forwarder delivers is not all confirmed
    /// (a dry run delivers nothing, and is never refused for it).
    pub fn unconfirmed(&self) -> Option<&'static str> {
        let whatap = match &self.delivery {
            Delivery::Whatap(config) => Some(config),
            Delivery::Stdout => None,
            Delivery::DryRun => return None,
        };
        unconfirmed_setting(whatap, &self.settings)
    }

    /// The sink's counters now: wire bytes and delivery attempts.
    async fn sink_counters(&self) -> (u64, crate::sink::Attempts) {
        match self.sink.lock().await.as_ref() {
            Some(sink) => (
                sink.wire_bytes().unwrap_or(0),
                sink.delivery_attempts().unwrap_or_default(),
            ),
            None => (0, crate::sink::Attempts::default()),
        }
    }

    /// One Lambda invocation: the raw event bytes in, a summary out, and one metrics line.
    pub async fn handle(
        &self,
        event: LambdaEvent<Box<RawValue>>,
    ) -> Result<Value, InvocationError> {
        let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        let request_id = &event.context.request_id;
        let processed = self
            .process(event.payload.get().as_bytes(), request_id, deadline_ms)
            .await;
        if let Some(namespace) = &self.metrics_namespace {
            let error_type = processed.answer.as_ref().err().map(|e| e.kind);
            let mut properties = vec![("RequestId", request_id.as_str())];
            if let Some(kind) = &processed.event_kind {
                properties.push(("EventKind", kind));
            }
            if let Some(kind) = error_type {
                properties.push(("ErrorType", kind));
            }
            let line = processed.metrics.emf(
                namespace,
                &self.function_name,
                &processed.mapper,
                now_ms(),
                &properties,
            );
            write_metrics_line(&line);
        }
        processed.answer
    }

    /// [`process`](Self::process) with `budget` from now: the command line's events, which
    /// have no Lambda deadline.
    pub async fn process_within(
        &self,
        payload: &[u8],
        request_id: &str,
        budget: Duration,
    ) -> Processed {
        let deadline =
            now_ms().saturating_add(i64::try_from(budget.as_millis()).unwrap_or(i64::MAX));
        self.process(payload, request_id, deadline).await
    }

    /// One event through the current mapper to the sink, as Lambda mode runs it: the raw
    /// event bytes in; the answer (a summary, or the typed error) and the metrics out.
    pub async fn process(&self, payload: &[u8], request_id: &str, deadline_ms: i64) -> Processed {
        let started = Instant::now();
        let live = live_config(&self.settings, self.rules.current());
        self.store.refresh_if_due(&self.sandbox, &live).await;
        let mut metrics = InvocationMetrics {
            input_bytes: payload.len() as u64,
            ..InvocationMetrics::default()
        };
        let mapper = match self.store.current() {
            Ok(mapper) => mapper,
            Err(unavailable) => {
                tracing::error!(request_id = %request_id, error_type = "MapperUnavailable", error = %unavailable, "Invocation failed.");
                metrics.failed = true;
                metrics.phases.refresh = started.elapsed();
                metrics.phases.total = started.elapsed();
                return Processed {
                    answer: Err(InvocationError {
                        kind: "MapperUnavailable",
                        message: unavailable.to_string(),
                    }),
                    metrics,
                    mapper: "none".to_owned(),
                    event_kind: None,
                };
            }
        };
        self.rules
            .refresh_if_due(&self.sandbox, &mapper, &self.settings)
            .await;
        metrics.phases.refresh = started.elapsed();
        let label = mapper.label();
        // Every line logged while this invocation runs (the sink's too) names it and its mapper.
        let span = tracing::info_span!("invocation", request_id = %request_id, mapper = %label);
        let (before_wire, before_attempts) = self.sink_counters().await;
        let (answer, event_kind) = self
            .process_with(
                payload,
                request_id,
                deadline_ms,
                mapper,
                &label,
                &mut metrics,
            )
            .instrument(span)
            .await;
        let (after_wire, after_attempts) = self.sink_counters().await;
        metrics.wire_bytes = after_wire.saturating_sub(before_wire);
        metrics.delivery_attempts = after_attempts.made.saturating_sub(before_attempts.made);
        metrics.failed_delivery_attempts =
            after_attempts.failed.saturating_sub(before_attempts.failed);
        metrics.failed = answer.is_err();
        metrics.phases.total = started.elapsed();
        let answer = answer.map(|mut summary| {
            if summary.get("records").is_some() {
                summary["input_bytes"] = json!(metrics.input_bytes);
                summary["wire_bytes"] = json!(metrics.wire_bytes);
                summary["delivery_attempts"] = json!(metrics.delivery_attempts);
                summary["failed_delivery_attempts"] = json!(metrics.failed_delivery_attempts);
            }
            summary
        });
        Processed {
            answer,
            metrics,
            mapper: label,
            event_kind,
        }
    }

    async fn process_with(
        &self,
        payload: &[u8],
        request_id: &str,
        deadline_ms: i64,
        mapper: Arc<crate::sandbox::Mapper>,
        label: &str,
        metrics: &mut InvocationMetrics,
    ) -> (Result<Value, InvocationError>, Option<String>) {
        let received = now_ms();
        let left = Duration::from_millis(deadline_ms.saturating_sub(received).max(0) as u64);
        let budget = left.saturating_sub(RESPONSE_MARGIN).max(MIN_BUDGET);
        let mut invocation = Invocation {
            request_id: request_id.to_owned(),
            function_name: self.function_name.clone(),
            deadline_ms,
            received_ms: received,
            config: self.settings.clone(),
        };
        match self.rules.current() {
            Some(rules) => invocation.config.push(("rules".into(), rules)),
            // Never run without the rules the user configured (they may redact secrets).
            None if self.rules.configured() => {
                let error = InvocationError {
                    kind: "MapperConfig",
                    message: "MAPPER_CONFIG has no valid version yet (see the log for why); not mapping without it".into(),
                };
                return (Err(error), None);
            }
            None => {}
        }
        let mut slot = self.sink.lock().await;
        // Lost only when an earlier invocation panicked while the sink was lent out (Lambda's
        // runtime reports that one as failed): a fresh sink, with a fresh connection, serves.
        let mut sink = slot.take().unwrap_or_else(|| {
            tracing::warn!("The sink was lost by an earlier invocation; starting a new one.");
            self.delivery.sink()
        });
        sink.set_deadline(Some(Instant::now() + budget));
        let ran = self
            .sandbox
            .run(&mapper, payload, &invocation, sink, budget)
            .await;
        *slot = Some(ran.sink);
        drop(slot);
        metrics.phases.map = ran.timings.map;
        metrics.phases.send = ran.timings.send;
        metrics.phases.confirm = ran.timings.confirm;
        if let Ok(summary) = &ran.result {
            metrics.count(summary);
        }
        let event_kind = ran.result.as_ref().ok().map(|s| s.event_kind.clone());
        let guest_memory_mib = ran.guest_peak_bytes >> 20;
        // A Kinesis event is answered with the items to retry, whatever happened.
        if let Some(items) = crate::partial_batch::kinesis_items(payload) {
            for f in &ran.failed_items {
                tracing::error!(request_id = %request_id, mapper = %label, item = %f.item, reason = %f.reason, "Kinesis item not mapped; it will be retried.");
            }
            let failures =
                crate::partial_batch::failures(&items, ran.result.is_ok(), &ran.failed_items);
            metrics.failed_items = failures.len() as u64;
            let mut answer = crate::partial_batch::response(&failures);
            answer["request_id"] = json!(request_id);
            answer["mapper"] = json!(label);
            match &ran.result {
                Ok(summary) => {
                    tracing::info!(
                        request_id = %request_id, mapper = %label, event_kind = %summary.event_kind,
                        records = summary.records, batches = summary.batches, guest_memory_mib,
                        items = items.len(), failed_items = failures.len(),
                        "Invocation mapped and delivered."
                    );
                    answer["records"] = json!(summary.records);
                }
                Err(e) => {
                    let kind = error_kind(e);
                    tracing::error!(request_id = %request_id, mapper = %label, error_type = kind, error = %e, items = items.len(), "Invocation failed; every Kinesis item will be retried.");
                    answer["error_type"] = json!(kind);
                    // The failure is answered as a partial batch; the message says why.
                    answer["error"] = json!(format!("{e} (mapper {label})"));
                }
            }
            return (Ok(answer), event_kind);
        }
        let answer = match ran.result {
            Ok(summary) => {
                tracing::info!(
                    request_id = %request_id, mapper = %label, event_kind = %summary.event_kind,
                    records = summary.records, batches = summary.batches, guest_memory_mib,
                    "Invocation mapped and delivered."
                );
                Ok(json!({
                    "request_id": request_id,
                    "event_kind": summary.event_kind,
                    "records": summary.records,
                    "batches": summary.batches,
                    "skipped": crate::metrics::skipped_json(&summary),
                    "split": summary.split,
                    "mapper": label,
                }))
            }
            Err(e) => {
                let kind = error_kind(&e);
                tracing::error!(request_id = %request_id, mapper = %label, error_type = kind, error = %e, "Invocation failed.");
                Err(InvocationError {
                    kind,
                    message: format!("{e} (mapper {label})"),
                })
            }
        };
        (answer, event_kind)
    }

    /// Closes the WhaTap connection cleanly (SIGTERM).
    pub async fn shutdown(&self) {
        if let Some(sink) = self.sink.lock().await.as_mut() {
            sink.close().await;
        }
    }
}

/// The error type an invocation that failed this way reports.
fn error_kind(e: &RunError) -> &'static str {
    match e {
        RunError::Delivery(_)
        | RunError::Mapper {
            kind: ErrorKind::Delivery,
            ..
        } => "DeliveryFailed",
        RunError::Mapper {
            kind: ErrorKind::Decode | ErrorKind::Unsupported,
            ..
        } => "BadEvent",
        RunError::Mapper {
            kind: ErrorKind::Config,
            ..
        } => "MapperConfig",
        RunError::Timeout { .. } | RunError::Stalled { .. } => "MapperTimeout",
        RunError::OutOfMemory { .. } => "MapperOutOfMemory",
        RunError::Trap(_) => "MapperTrap",
    }
}

/// Tells Lambda why the function could not start (`/runtime/init/error`), so the failure shows
/// as an init error with its reason instead of an unexplained exit. Best effort.
async fn report_init_error(error: &StartError) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body = json!({"errorType": "Runtime.InitError", "errorMessage": error.to_string()});
    let posted = tokio::task::spawn_blocking(move || {
        ureq::post(format!("http://{api}/2018-06-01/runtime/init/error"))
            .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
            .send(body.to_string())
            .map(|_| ())
    })
    .await;
    if !matches!(posted, Ok(Ok(()))) {
        tracing::warn!("Could not report the init error to the Runtime API.");
    }
}

/// Writes an invocation's EMF line to stdout, where Lambda's log capture reads it: one line,
/// whole, whatever the log level (a metric must not depend on how much is logged).
fn write_metrics_line(line: &Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The log lines' shape, from Lambda's advanced logging controls (`AWS_LAMBDA_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, with `timestamp`, `level` and `message` (Lambda's JSON
    /// format, which its log-level filtering reads). The default.
    Json,
    /// Plain text lines, without colour (`AWS_LAMBDA_LOG_FORMAT=Text`).
    Text,
}

/// The log format and level filter Lambda mode uses: `AWS_LAMBDA_LOG_FORMAT` (`JSON` or
/// `Text`; JSON when unset) and `AWS_LAMBDA_LOG_LEVEL` (Lambda's application log level: `TRACE`
/// … `FATAL`), which wins over `RUST_LOG` and the function's own `LOG_LEVEL`.
pub fn log_controls(var: impl Fn(&str) -> Option<String>) -> (LogFormat, String) {
    let format = match var("AWS_LAMBDA_LOG_FORMAT").as_deref().map(str::trim) {
        Some(f) if f.eq_ignore_ascii_case("text") => LogFormat::Text,
        _ => LogFormat::Json,
    };
    let level = var("AWS_LAMBDA_LOG_LEVEL")
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.trim().to_ascii_lowercase().as_str() {
            // tracing has no level above error.
            "fatal" => "error".to_owned(),
            other => other.to_owned(),
        })
        .or_else(|| var("RUST_LOG"))
        .or_else(|| var("LOG_LEVEL"))
        .unwrap_or_else(|| "info".into());
    (format, level.to_ascii_lowercase())
}

fn init_tracing() {
    let (format, level) = log_controls(|k| std::env::var(k).ok());
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Serves the Runtime API until Lambda shuts the process down.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    // The same bootstrap serves as the subscriber function (deploy/settings.yaml's option).
    match std::env::var("RDS_FORWARDER_MODE").as_deref() {
        Ok("subscriber") => return subscriber::serve().await,
        // The scheduled drain of the failed-event queue (install.yaml's ReplaySchedule).
        Ok("replay") => return drain::serve().await,
        _ => {}
    }
    let forwarder = match Forwarder::from_env().await {
        Ok(f) => Arc::new(f),
        Err(e) => {
            tracing::error!(error = %e, "The forwarder cannot start.");
            report_init_error(&e).await;
            return Err(e.into());
        }
    };
    match forwarder.store.current() {
        Ok(mapper) => {
            tracing::info!(mapper = %mapper.label(), origin = %mapper.origin, time_budget = mapper.has_time_budget(), "Forwarder ready.")
        }
        Err(unavailable) => {
            tracing::warn!(error = %unavailable, "Forwarder ready, without a mapper.")
        }
    }
    let on_term = forwarder.clone();
    tokio::spawn(async move {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            tracing::info!("SIGTERM: closing the WhaTap connection.");
            on_term.shutdown().await;
            std::process::exit(0);
        }
    });
    lambda_runtime::run(service_fn(move |event| {
        let f = forwarder.clone();
        async move { f.handle(event).await }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controls(vars: &[(&str, &str)]) -> (LogFormat, String) {
        log_controls(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn lambdas_logging_controls_win() {
        assert_eq!(controls(&[]), (LogFormat::Json, "info".into()));
        assert_eq!(
            controls(&[("AWS_LAMBDA_LOG_FORMAT", "Text"), ("LOG_LEVEL", "debug")]),
            (LogFormat::Text, "debug".into())
        );
        assert_eq!(
            controls(&[
                ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
                ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
                ("RUST_LOG", "trace"),
                ("LOG_LEVEL", "debug"),
            ]),
            (LogFormat::Json, "warn".into())
        );
        assert_eq!(
            controls(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).1,
            "error",
            "tracing has no level above error"
        );
        assert_eq!(controls(&[("RUST_LOG", "Debug")]).1, "debug");
    }
}
