//! The mapper in use, and how it is replaced without a redeploy.
//!
//! The source is `MAPPER_URI` (`s3://bucket/key` or a file path; unset = the embedded
//! default). At most every `MAPPER_REFRESH_SECONDS` the source is revalidated (a conditional
//! GET for S3, a hash comparison for a file). A new object is checked against `MAPPER_SHA256`
//! when set, compiled (a `.cwasm` is deserialized instead), contract-checked, described and so
//! test-instantiated, and only then swapped in for the next invocation. Any failure keeps the
//! mapper in use (the embedded default at worst) and logs one error line; the same bad object
//! is not fetched again, a new upload is.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::embedded;
use crate::runtime::{LoadError, Mapper, Runtime};
use crate::s3::{Fetched, S3Client, S3Error, parse_uri};

/// Where the mapper comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapperUri {
    Embedded,
    File(PathBuf),
    S3 { bucket: String, key: String },
}

impl MapperUri {
    pub fn parse(uri: Option<&str>) -> Result<MapperUri, SourceError> {
        match uri.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(MapperUri::Embedded),
            Some(u) if u.starts_with("s3://") => {
                let (bucket, key) = parse_uri(u)?;
                Ok(MapperUri::S3 { bucket, key })
            }
            Some(u) => Ok(MapperUri::File(PathBuf::from(u))),
        }
    }

    pub fn display(&self) -> String {
        match self {
            MapperUri::Embedded => embedded::ORIGIN.to_owned(),
            MapperUri::File(p) => p.display().to_string(),
            MapperUri::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }
}

#[derive(Debug, Error)]
pub enum SourceError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("MAPPER_SHA256 is not 64 hex digits")]
    BadSha256,
    #[error("the object's SHA-256 is {actual}, but MAPPER_SHA256 pins {expected}: not running it")]
    Sha256Mismatch { expected: String, actual: String },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("the mapper download task failed: {0}")]
    Task(String),
}

/// Mapper settings from the environment.
#[derive(Debug, Clone)]
pub struct MapperSettings {
    pub uri: MapperUri,
    pub refresh: Duration,
    pub sha256: Option<[u8; 32]>,
}

impl MapperSettings {
    pub fn from_lookup(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<MapperSettings, SourceError> {
        let uri = MapperUri::parse(var("MAPPER_URI").as_deref())?;
        let refresh = var("MAPPER_REFRESH_SECONDS")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(60);
        let sha256 = match var("MAPPER_SHA256")
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(hex) => Some(parse_sha256(&hex).ok_or(SourceError::BadSha256)?),
        };
        Ok(MapperSettings {
            uri,
            refresh: Duration::from_secs(refresh),
            sha256,
        })
    }
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An object's bytes and version (ETag for S3, SHA-256 for a file) if it changed since
/// `known`: what the mapper and the mapping-config stores both revalidate with.
async fn fetch(
    uri: &MapperUri,
    s3: Option<&Arc<S3Client>>,
    known: Option<&str>,
) -> Result<Option<(Vec<u8>, String)>, SourceError> {
    match uri {
        MapperUri::Embedded => Ok(None),
        MapperUri::File(path) => {
            let bytes = std::fs::read(path).map_err(|source| SourceError::File {
                path: path.display().to_string(),
                source,
            })?;
            let version = sha256_hex(&bytes);
            Ok((known != Some(version.as_str())).then_some((bytes, version)))
        }
        MapperUri::S3 { bucket, key } => {
            let Some(s3) = s3 else {
                return Err(S3Error::NoCredentials.into());
            };
            // ureq blocks: run it off the async worker.
            let (bucket, key, known, s3) = (
                bucket.clone(),
                key.clone(),
                known.map(str::to_owned),
                s3.clone(),
            );
            let fetched = tokio::task::spawn_blocking(move || {
                s3.get_if_changed(&bucket, &key, known.as_deref())
            })
            .await
            .map_err(|e| SourceError::Task(e.to_string()))??;
            Ok(match fetched {
                Fetched::NotModified => None,
                Fetched::Object { bytes, etag } => {
                    let version = etag.unwrap_or_else(|| sha256_hex(&bytes));
                    Some((bytes, version))
                }
            })
        }
    }
}

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

/// The event of a dry run: an RDS event, which every mapper maps and which needs no decoding.
const DRY_RUN_EVENT: &[u8] = br#"{"source":"aws.rds","detail-type":"RDS DB Instance Event","detail":{"Message":"mapping config check"}}"#;

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
            revalidation: tokio::sync::Mutex::new(Revalidation {
                last_check: None,
                version: None,
            }),
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
    /// dry run of `mapper` before it takes effect.
    pub async fn refresh_if_due(&self, runtime: &Runtime, mapper: &Mapper) {
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
        let invocation = crate::runtime::bindings::Invocation {
            request_id: "mapping-config-check".into(),
            function_name: String::new(),
            deadline_ms: i64::MAX,
            received_ms: 0,
            config: vec![("rules".into(), text.clone())],
        };
        let ran = runtime
            .run(
                mapper,
                DRY_RUN_EVENT,
                &invocation,
                Box::new(crate::sink::Memory::default()),
                Duration::from_secs(5),
            )
            .await;
        match ran.result {
            Ok(_) => {
                tracing::info!(origin = %origin, "Mapping config in force.");
                *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
            }
            Err(e) => {
                tracing::error!(origin = %origin, error = %e, "Mapping config refused; keeping the config in force.")
            }
        }
    }
}

/// Where a precompiled embedded mapper is looked for: next to the executable (the Lambda zip's
/// root), named by the embedded component's hash so a stale one is never used.
pub fn embedded_cwasm_name() -> String {
    format!(
        "rds-mapper-{}.cwasm",
        &sha256_hex(embedded::DEFAULT_MAPPER)[..16]
    )
}

fn embedded_cwasm_path() -> Option<PathBuf> {
    let dir = std::env::var_os("LAMBDA_TASK_ROOT")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::current_exe()
                .ok()?
                .parent()
                .map(Path::to_path_buf)
        })?;
    Some(dir.join(embedded_cwasm_name()))
}

/// The embedded mapper, from its precompiled artifact when one ships beside the binary (no JIT
/// on a cold start), else compiled now.
pub async fn load_embedded(runtime: &Runtime) -> Result<Arc<Mapper>, LoadError> {
    if let Some(path) = embedded_cwasm_path()
        && let Ok(bytes) = std::fs::read(&path)
    {
        match runtime.load_builtin(&bytes).await {
            Ok(mapper) => return Ok(mapper),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "Precompiled default mapper refused; compiling the embedded one.")
            }
        }
    }
    runtime.load_builtin(embedded::DEFAULT_MAPPER).await
}

struct Revalidation {
    last_check: Option<Instant>,
    /// ETag (S3) or SHA-256 (file) of the last object tried, good or bad.
    version: Option<String>,
}

impl Revalidation {
    /// Whether `refresh` has passed since the last check; if so, this is the check now.
    fn due(&mut self, refresh: Duration) -> bool {
        if self.last_check.is_some_and(|t| t.elapsed() < refresh) {
            return false;
        }
        self.last_check = Some(Instant::now());
        true
    }
}

pub struct MapperStore {
    settings: MapperSettings,
    s3: Option<Arc<S3Client>>,
    /// Always `Some` once `new` returns.
    current: Mutex<Option<Arc<Mapper>>>,
    revalidation: tokio::sync::Mutex<Revalidation>,
}

impl MapperStore {
    /// Loads the configured source; when there is none, or it fails (logged), the embedded
    /// default.
    pub async fn new(
        runtime: &Runtime,
        settings: MapperSettings,
        s3: Option<S3Client>,
    ) -> Result<MapperStore, LoadError> {
        let store = MapperStore {
            settings,
            s3: s3.map(Arc::new),
            current: Mutex::new(None),
            revalidation: tokio::sync::Mutex::new(Revalidation {
                last_check: None,
                version: None,
            }),
        };
        // The configured source first: the embedded default is compiled only when it fails,
        // so a cold start pays for one compilation, not two.
        store.refresh_if_due(runtime).await;
        if store.lock_current().is_none() {
            store.swap(load_embedded(runtime).await?);
        }
        Ok(store)
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Arc<Mapper>>> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What is in use, for log lines.
    fn current_label(&self) -> String {
        match self.lock_current().as_ref() {
            Some(m) => m.label(),
            None => "the embedded default".to_owned(),
        }
    }

    /// The mapper the next invocation runs.
    pub fn current(&self) -> Arc<Mapper> {
        self.lock_current()
            .clone()
            .expect("MapperStore::new always installs a mapper")
    }

    fn swap(&self, mapper: Arc<Mapper>) {
        *self.lock_current() = Some(mapper);
    }

    /// Revalidates the source if the refresh interval has passed; swaps in a new mapper when
    /// one loads, keeps the current one (and logs why) when it does not.
    pub async fn refresh_if_due(&self, runtime: &Runtime) {
        if self.settings.uri == MapperUri::Embedded {
            return;
        }
        let mut state = self.revalidation.lock().await;
        if !state.due(self.settings.refresh) {
            return;
        }
        let uri = self.settings.uri.display();
        match self.fetch(state.version.as_deref()).await {
            Ok(None) => {}
            Ok(Some((bytes, version))) => {
                state.version = Some(version.clone());
                match self.verify_and_load(runtime, &bytes, &uri).await {
                    Ok(mapper) => {
                        tracing::info!(mapper = %mapper.label(), origin = %uri, version = %version, time_budget = mapper.has_time_budget(), "Mapper swapped in.");
                        self.swap(mapper);
                    }
                    Err(e) => tracing::error!(
                        origin = %uri, error = %e, keeping = %self.current_label(),
                        "Mapper update refused; keeping the mapper in use."
                    ),
                }
            }
            Err(e) => {
                tracing::error!(origin = %uri, error = %e, keeping = %self.current_label(), "Mapper source unreadable; keeping the mapper in use.")
            }
        }
    }

    /// The object's bytes and version if it changed since `known`.
    async fn fetch(&self, known: Option<&str>) -> Result<Option<(Vec<u8>, String)>, SourceError> {
        fetch(&self.settings.uri, self.s3.as_ref(), known).await
    }

    async fn verify_and_load(
        &self,
        runtime: &Runtime,
        bytes: &[u8],
        origin: &str,
    ) -> Result<Arc<Mapper>, SourceError> {
        if let Some(expected) = &self.settings.sha256 {
            let actual: [u8; 32] = Sha256::digest(bytes).into();
            if &actual != expected {
                let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
                return Err(SourceError::Sha256Mismatch {
                    expected: hex(expected),
                    actual: hex(&actual),
                });
            }
        }
        Ok(runtime.load(bytes, origin).await?)
    }
}
