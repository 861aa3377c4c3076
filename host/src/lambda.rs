//! Lambda mode: the Runtime API loop (`lambda_runtime` on tokio). Engine, mapper store and
//! WhaTap sink are built once per sandbox; each invocation runs the current mapper in a fresh
//! store, sends through the sink, and answers with a summary. Any failure is an invocation
//! error, so Lambda's async retries and the on-failure destination keep the event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use thiserror::Error;
use tracing::Instrument;

use crate::mapper_store::{MapperSettings, MapperStore, MapperUri, RulesStore};
use crate::s3::S3Client;
use crate::sandbox::bindings::{ErrorKind, Invocation};
use crate::sandbox::{RunError, Sandbox, SandboxLimits};
use crate::sink::RecordSink;
use crate::whatap::config::WhatapConfig;
use crate::whatap::connection::now_ms;
use crate::whatap::sink::WhatapSink;

/// Time kept back from the deadline to report the result: the sink gives up this long before
/// Lambda's timeout, so the event fails as `DeliveryFailed` (and is retried) instead of timing
/// out.
const RESPONSE_MARGIN: Duration = Duration::from_millis(250);
/// What the host itself needs of the function's memory: the sandbox, the engine and compiled
/// code, the WhaTap sink's unconfirmed packs, and headroom (a stress event peaks at 48 MiB of
/// resident memory all told).
pub const HOST_MEMORY_MB: usize = 64;
/// The least time an invocation is given, however close the deadline.
const MIN_BUDGET: Duration = Duration::from_millis(100);

/// Why the forwarder could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("WhaTap settings: {0}")]
    Whatap(#[from] crate::whatap::config::ConfigError),
    #[error("mapper settings: {0}")]
    Mapper(#[from] crate::mapper_store::SourceError),
    #[error("MAPPER_MEMORY_MB must be a number of MiB between 16 and 4096, got {0:?}")]
    Memory(String),
    #[error(
        "MAPPER_MEMORY_MB is {asked}, but a function of {function} MB leaves the mapper at most \
         {most} MiB beside the host's {HOST_MEMORY_MB} MiB: lower it or raise the function's memory"
    )]
    MemoryOverFunction {
        asked: usize,
        function: usize,
        most: usize,
    },
    #[error(
        "{0} lets records go unconfirmed or unsent; in Lambda this needs \
         RDS_FORWARDER_UNSAFE_DELIVERY=1"
    )]
    UnsafeDelivery(&'static str),
    #[error("the embedded mapper does not load: {0}")]
    Embedded(#[from] crate::sandbox::LoadError),
    #[error("MAPPER_SETTINGS: {0:?} is not KEY=VALUE")]
    Settings(String),
    #[error("WHATAP_LICENSE_SECRET_ARN: {0}")]
    Secret(#[from] crate::secrets::SecretError),
}

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

/// `KEY=VALUE` pairs separated by `,` or `;` (spaces around them ignored).
pub fn parse_settings(text: &str) -> Result<Vec<(String, String)>, StartError> {
    text.split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(StartError::Settings(pair.to_owned())),
        })
        .collect()
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
                    .map_err(|e| crate::secrets::SecretError::Call {
                        action: "GetSecretValue",
                        why: e.to_string(),
                    })??;
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
                Some(S3Client::from_env(var).map_err(crate::mapper_store::SourceError::from)?)
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
            true => Some(S3Client::from_env(var).map_err(crate::mapper_store::SourceError::from)?),
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
        // sandbox reports that one as failed): a fresh sink, with a fresh connection, serves.
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
                let kind = match &e {
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
                };
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

/// The settings a mapper runs with: `MAPPER_SETTINGS`, and the mapping config as `rules`.
fn live_config(settings: &[(String, String)], rules: Option<String>) -> Vec<(String, String)> {
    let mut config = settings.to_vec();
    if let Some(rules) = rules {
        config.push(("rules".into(), rules));
    }
    config
}

/// `MAPPER_MEMORY_MB`: by default what the function's memory leaves after the host's needs
/// (at most 4096, at least 16); a value above that is refused, since the sandbox could then
/// take the memory the host needs and the whole function would be killed.
pub fn mapper_memory_mb(asked: Option<&str>, function: Option<&str>) -> Result<usize, StartError> {
    let function = function.and_then(|f| f.trim().parse::<usize>().ok());
    let most = function.map_or(4096, |f| f.saturating_sub(HOST_MEMORY_MB).clamp(16, 4096));
    let Some(asked) = asked.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(most);
    };
    let mb = asked
        .parse::<usize>()
        .ok()
        .filter(|m| (16..=4096).contains(m))
        .ok_or_else(|| StartError::Memory(asked.to_owned()))?;
    match function {
        Some(function) if mb > most => Err(StartError::MemoryOverFunction {
            asked: mb,
            function,
            most,
        }),
        _ => Ok(mb),
    }
}

/// In Lambda, every record is confirmed by the collector before the event counts as done.
/// The settings that give that up (for a measurement, or a collector that cannot confirm) need
/// `RDS_FORWARDER_UNSAFE_DELIVERY=1`, and are logged as a warning when they have it.
fn check_delivery_is_safe(
    whatap: &WhatapConfig,
    settings: &[(String, String)],
    unsafe_delivery: Option<String>,
) -> Result<(), StartError> {
    let decode_only = settings
        .iter()
        .any(|(k, v)| k == "decode_only" && v.trim() == "true");
    let unsafe_setting = if whatap.transport == crate::whatap::config::Transport::OneWay {
        Some("WHATAP_TRANSPORT=oneway")
    } else if !whatap.confirm {
        Some("WHATAP_CONFIRM=off")
    } else if decode_only {
        Some("MAPPER_SETTINGS decode_only")
    } else {
        None
    };
    let Some(setting) = unsafe_setting else {
        return Ok(());
    };
    if unsafe_delivery.as_deref().map(str::trim) == Some("1") {
        tracing::warn!(
            setting,
            "Delivery is not confirmed (RDS_FORWARDER_UNSAFE_DELIVERY=1): records may be lost without an error."
        );
        Ok(())
    } else {
        Err(StartError::UnsafeDelivery(setting))
    }
}

/// Tells Lambda why the function could not start (`/sandbox/init/error`), so the failure shows
/// as an init error with its reason instead of an unexplained exit. Best effort.
async fn report_init_error(error: &StartError) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body = json!({"errorType": "Runtime.InitError", "errorMessage": error.to_string()});
    let posted = tokio::task::spawn_blocking(move || {
        ureq::post(format!("http://{api}/2018-06-01/sandbox/init/error"))
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

/// Serves the Runtime API until the sandbox shuts the process down.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    init_tracing();
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

    #[test]
    fn mapper_memory_defaults_to_what_the_function_leaves_and_refuses_more() {
        assert_eq!(mapper_memory_mb(None, Some("256")).unwrap(), 192);
        assert_eq!(mapper_memory_mb(None, Some("10240")).unwrap(), 4096);
        assert_eq!(mapper_memory_mb(None, Some("128")).unwrap(), 64);
        assert_eq!(mapper_memory_mb(None, None).unwrap(), 4096);
        assert_eq!(mapper_memory_mb(Some("100"), Some("256")).unwrap(), 100);
        assert_eq!(
            mapper_memory_mb(Some("512"), Some("256"))
                .unwrap_err()
                .to_string(),
            "MAPPER_MEMORY_MB is 512, but a function of 256 MB leaves the mapper at most 192 MiB \
             beside the host's 64 MiB: lower it or raise the function's memory"
        );
        assert_eq!(
            mapper_memory_mb(Some("lots"), Some("256"))
                .unwrap_err()
                .to_string(),
            "MAPPER_MEMORY_MB must be a number of MiB between 16 and 4096, got \"lots\""
        );
    }

    #[test]
    fn unconfirmed_delivery_needs_the_unsafe_switch() {
        let whatap = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("WHATAP_HOST", "127.0.0.1"),
                (
                    "WHATAP_LICENSE",
                    "x4c1p2g0g40o4-xa1g7104gk2oc-xq3gf208h44ok",
                ),
            ];
            vars.extend_from_slice(extra);
            WhatapConfig::from_lookup(
                |k| {
                    vars.iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| v.to_string())
                },
                "fn",
            )
            .unwrap()
        };
        let none: Vec<(String, String)> = Vec::new();
        assert!(check_delivery_is_safe(&whatap(&[]), &none, None).is_ok());
        let oneway = whatap(&[("WHATAP_TRANSPORT", "oneway")]);
        assert_eq!(
            check_delivery_is_safe(&oneway, &none, None)
                .unwrap_err()
                .to_string(),
            "WHATAP_TRANSPORT=oneway lets records go unconfirmed or unsent; in Lambda this needs \
             RDS_FORWARDER_UNSAFE_DELIVERY=1"
        );
        assert!(check_delivery_is_safe(&oneway, &none, Some("1".into())).is_ok());
        let unconfirmed = whatap(&[("WHATAP_CONFIRM", "off")]);
        assert!(matches!(
            check_delivery_is_safe(&unconfirmed, &none, Some("0".into())),
            Err(StartError::UnsafeDelivery("WHATAP_CONFIRM=off"))
        ));
        let decode_only = vec![("decode_only".to_owned(), "true".to_owned())];
        assert!(matches!(
            check_delivery_is_safe(&whatap(&[]), &decode_only, None),
            Err(StartError::UnsafeDelivery("MAPPER_SETTINGS decode_only"))
        ));
        let off = vec![("decode_only".to_owned(), "false".to_owned())];
        assert!(check_delivery_is_safe(&whatap(&[]), &off, None).is_ok());
    }

    #[test]
    fn settings_pairs() {
        assert_eq!(
            parse_settings(" batch_max_records=1 ; max_content_bytes = 500000,").unwrap(),
            vec![
                ("batch_max_records".to_owned(), "1".to_owned()),
                ("max_content_bytes".to_owned(), "500000".to_owned())
            ]
        );
        assert!(parse_settings("").unwrap().is_empty());
        assert_eq!(
            parse_settings("oops").unwrap_err().to_string(),
            "MAPPER_SETTINGS: \"oops\" is not KEY=VALUE"
        );
    }
}
