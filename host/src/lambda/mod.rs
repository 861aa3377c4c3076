//! Lambda mode: the Runtime API loop (`lambda_runtime` on tokio). Engine, mapper store and
//! WhaTap sink are built once per sandbox; each invocation runs the current mapper in a fresh
//! store, sends through the sink, and answers with a summary. Any failure is an invocation
//! error, so Lambda's async retries and the on-failure destination keep the event.
//!
//! [`settings`] says what the environment may ask for.

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
use settings::{check_delivery_is_safe, live_config};

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
    whatap: WhatapConfig,
    function_name: String,
    /// `MAPPER_SETTINGS`, passed to the mapper in every invocation.
    settings: Vec<(String, String)>,
    /// `MAPPER_CONFIG`, passed as the `rules` setting.
    rules: RulesStore,
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
            whatap,
            function_name,
            settings: mapper_settings,
            rules,
        })
    }

    /// One invocation: the raw event bytes in, a summary out.
    pub async fn handle(
        &self,
        event: LambdaEvent<Box<RawValue>>,
    ) -> Result<Value, InvocationError> {
        let live = live_config(&self.settings, self.rules.current());
        self.store.refresh_if_due(&self.sandbox, &live).await;
        let mapper = match self.store.current() {
            Ok(mapper) => mapper,
            Err(unavailable) => {
                tracing::error!(request_id = %event.context.request_id, error_type = "MapperUnavailable", error = %unavailable, "Invocation failed.");
                return Err(InvocationError {
                    kind: "MapperUnavailable",
                    message: unavailable.to_string(),
                });
            }
        };
        self.rules
            .refresh_if_due(&self.sandbox, &mapper, &self.settings)
            .await;
        let label = mapper.label();
        // Every line logged while this invocation runs (the sink's too) names it and its mapper.
        let span = tracing::info_span!("invocation", request_id = %event.context.request_id, mapper = %label);
        self.handle_with(event, mapper, label)
            .instrument(span)
            .await
    }

    async fn handle_with(
        &self,
        event: LambdaEvent<Box<RawValue>>,
        mapper: Arc<crate::sandbox::Mapper>,
        label: String,
    ) -> Result<Value, InvocationError> {
        let received = now_ms();
        let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        let left = Duration::from_millis(deadline_ms.saturating_sub(received).max(0) as u64);
        let budget = left.saturating_sub(RESPONSE_MARGIN).max(MIN_BUDGET);
        let mut invocation = Invocation {
            request_id: event.context.request_id.clone(),
            function_name: self.function_name.clone(),
            deadline_ms,
            received_ms: received,
            config: self.settings.clone(),
        };
        match self.rules.current() {
            Some(rules) => invocation.config.push(("rules".into(), rules)),
            // Never run without the rules the user configured (they may redact secrets).
            None if self.rules.configured() => {
                return Err(InvocationError {
                    kind: "MapperConfig",
                    message: "MAPPER_CONFIG has no valid version yet (see the log for why); not mapping without it".into(),
                });
            }
            None => {}
        }
        let mut slot = self.sink.lock().await;
        // Lost only when an earlier invocation panicked while the sink was lent out (Lambda's
        // runtime reports that one as failed): a fresh sink, with a fresh connection, serves.
        let mut sink = slot.take().unwrap_or_else(|| {
            tracing::warn!(
                "The WhaTap sink was lost by an earlier invocation; starting a new one."
            );
            Box::new(WhatapSink::new(self.whatap.clone()))
        });
        sink.set_deadline(Some(Instant::now() + budget));
        let ran = self
            .sandbox
            .run(
                &mapper,
                event.payload.get().as_bytes(),
                &invocation,
                sink,
                budget,
            )
            .await;
        *slot = Some(ran.sink);
        drop(slot);
        let request_id = &invocation.request_id;
        let guest_memory_mib = ran.guest_peak_bytes >> 20;
        // A Kinesis event is answered with the items to retry, whatever happened.
        if let Some(items) = crate::partial_batch::kinesis_items(event.payload.get().as_bytes()) {
            for f in &ran.failed_items {
                tracing::error!(request_id = %request_id, mapper = %label, item = %f.item, reason = %f.reason, "Kinesis item not mapped; it will be retried.");
            }
            let failures =
                crate::partial_batch::failures(&items, ran.result.is_ok(), &ran.failed_items);
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
                }
            }
            return Ok(answer);
        }
        match ran.result {
            Ok(summary) => {
                let skipped: serde_json::Map<String, Value> = summary
                    .skipped
                    .iter()
                    .map(|s| (s.reason.clone(), json!(s.count)))
                    .collect();
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
                    "skipped": skipped,
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
        }
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

/// JSON log lines, as the Lambda log format expects; level from `LOG_LEVEL` or `RUST_LOG`.
fn init_tracing() {
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("LOG_LEVEL"))
        .unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            level.to_ascii_lowercase(),
        ))
        .try_init();
}

/// Serves the Runtime API until Lambda shuts the process down.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    // The same bootstrap serves as the subscriber function (deploy/settings.yaml's option).
    if std::env::var("RDS_FORWARDER_MODE").as_deref() == Ok("subscriber") {
        return subscriber::serve().await;
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
