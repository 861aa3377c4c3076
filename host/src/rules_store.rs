//! The mapping config (`MAPPER_CONFIG`): rules without code, passed to the mapper as its
//! `rules` setting and hot-swapped like the mapper.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::canary::dry_run;
use crate::s3::S3Client;
use crate::sandbox::{Mapper, Sandbox};
use crate::source::{MapperUri, Revalidation, SourceError, fetch};

/// The mapping config (`MAPPER_CONFIG`: inline JSON, a file path, or `s3://bucket/key`), passed
/// to the mapper as its `rules` setting and revalidated like the mapper. A new version is
/// checked by a dry run of the mapper in use; one it refuses (a bad config: the message names
/// the line and the reason) is logged and the previous config stays in force.
pub struct RulesStore {
    source: Option<MapperUri>,
    refresh: Duration,
    s3: Option<Arc<S3Client>>,
    current: Mutex<Option<String>>,
    revalidation: tokio::sync::Mutex<Revalidation>,
}

impl RulesStore {
    pub fn new(
        config: Option<&str>,
        refresh: Duration,
        s3: Option<S3Client>,
    ) -> Result<RulesStore, SourceError> {
        let text = config.map(str::trim).filter(|c| !c.is_empty());
        let (source, inline) = match text {
            None => (None, None),
            Some(t) if t.starts_with('{') => (None, Some(t.to_owned())),
            Some(t) => (Some(MapperUri::parse(Some(t))?), None),
        };
        Ok(RulesStore {
            source,
            refresh,
            s3: s3.map(Arc::new),
            current: Mutex::new(inline),
            revalidation: tokio::sync::Mutex::new(Revalidation::new(None)),
        })
    }

    /// Whether a config is configured at all (inline or from a source).
    pub fn configured(&self) -> bool {
        self.source.is_some() || self.current().is_some()
    }

    /// Whether an S3 source needs credentials.
    pub fn needs_s3(config: Option<&str>) -> bool {
        config.is_some_and(|c| c.trim().starts_with("s3://"))
    }

    /// The config in force, if any.
    pub fn current(&self) -> Option<String> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Revalidates the source (at most every refresh interval) and checks a new version with a
    /// dry run of `mapper` over the canned events, with the live `settings`, before it takes
    /// effect.
    pub async fn refresh_if_due(
        &self,
        sandbox: &Sandbox,
        mapper: &Mapper,
        settings: &[(String, String)],
    ) {
        let Some(source) = &self.source else {
            return;
        };
        let mut state = self.revalidation.lock().await;
        if !state.due(self.refresh) {
            return;
        }
        let origin = source.display();
        let fetched = match fetch(source, self.s3.as_ref(), state.version.as_deref()).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(origin = %origin, error = %e, "Mapping config unreadable; keeping the config in force.");
                return;
            }
        };
        let Some((bytes, version)) = fetched else {
            return;
        };
        state.version = Some(version);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut config = settings.to_vec();
        config.push(("rules".into(), text.clone()));
        match dry_run(sandbox, mapper, &config).await {
            Ok(()) => {
                tracing::info!(origin = %origin, "Mapping config in force.");
                *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
            }
            Err(e) => {
                tracing::error!(origin = %origin, error = %e, "Mapping config refused; keeping the config in force.")
            }
        }
    }
}
