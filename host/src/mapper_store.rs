//! The mapper in use, and how it is replaced without a redeploy.
//!
//! The source is `MAPPER_URI` (`s3://bucket/key` or a file path; unset = the embedded
//! default). At most every `MAPPER_REFRESH_SECONDS` the source is revalidated (a conditional
//! GET for S3, a hash comparison for a file). A new object is checked against `MAPPER_SHA256`
//! when set (a `.cwasm` is loaded only when it is pinned), compiled, contract-checked,
//! described, and dry-run over [`CANARY_EVENTS`] with the live settings and rules; only then is
//! it swapped in for the next invocation. A refused object keeps the mapper in use and logs one
//! error line; it is remembered by version (in `RDS_FORWARDER_STATE_DIR`, across cold starts
//! too), so it is not fetched again until a new upload replaces it.
//!
//! With `MAPPER_URI` set, nothing else maps in its place: until a mapper from it loads,
//! [`MapperStore::current`] is [`Unavailable`] and invocations fail (`MapperUnavailable`), so
//! events wait in Lambda's retries and the failed-event destination instead of being mapped
//! by a mapper the user did not choose (which would not, say, redact what theirs redacts).
//! `MAPPER_FALLBACK=embedded` opts in to mapping with the embedded default meanwhile.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::canary::dry_run;
use crate::embedded;
use crate::s3::S3Client;
use crate::sandbox::{Compiling, LoadError, Mapper, Origin, Sandbox};
use crate::source::{MapperUri, Revalidation, SourceError, fetch, parse_sha256, sha256_hex};

/// How long an invocation waits for a new mapper's compilation by default: well inside
/// Lambda's 10 s init phase, and short beside a typical invocation's budget.
pub const DEFAULT_COMPILE_WAIT: Duration = Duration::from_secs(5);

/// Where refusals are remembered when `RDS_FORWARDER_STATE_DIR` is unset: Lambda's writable
/// `/tmp`, which lives as long as the execution environment.
pub const DEFAULT_STATE_DIR: &str = "/tmp/rds-forwarder";

/// Mapper settings from the environment.
#[derive(Debug, Clone)]
pub struct MapperSettings {
    pub uri: MapperUri,
    pub refresh: Duration,
    pub sha256: Option<[u8; 32]>,
    /// `MAPPER_FALLBACK=embedded`: map with the embedded default while the mapper from
    /// `MAPPER_URI` cannot be loaded.
    pub fallback_embedded: bool,
    /// `RDS_FORWARDER_STATE_DIR` (default `/tmp/rds-forwarder`): where refusals are remembered.
    pub state_dir: PathBuf,
    /// `MAPPER_COMPILE_WAIT_SECONDS` (default 5): how long an invocation waits for a new
    /// mapper's compilation. A longer one goes on beside the invocations (the mapper in use
    /// serves meanwhile) and is picked up by the first invocation after it finishes.
    pub compile_wait: Duration,
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
        let fallback_embedded = match var("MAPPER_FALLBACK").as_deref().map(str::trim) {
            None | Some("") | Some("none") => false,
            Some("embedded") => true,
            Some(other) => return Err(SourceError::BadFallback(other.to_owned())),
        };
        let compile_wait = var("MAPPER_COMPILE_WAIT_SECONDS")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map_or(DEFAULT_COMPILE_WAIT, Duration::from_secs);
        let state_dir = var("RDS_FORWARDER_STATE_DIR")
            .filter(|d| !d.trim().is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_STATE_DIR), PathBuf::from);
        Ok(MapperSettings {
            uri,
            refresh: Duration::from_secs(refresh),
            sha256,
            fallback_embedded,
            state_dir,
            compile_wait,
        })
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

/// The default mapper: from its precompiled artifact when the package ships one beside the
/// binary (no JIT on a cold start; [`Origin::Packaged`]), else the embedded component compiled
/// now.
pub async fn load_embedded(sandbox: &Sandbox) -> Result<Arc<Mapper>, LoadError> {
    load_embedded_cached(sandbox, None).await
}

/// [`load_embedded`], with the command line's compile cache for the embedded component when
/// no package artifact is found.
pub async fn load_embedded_cached(
    sandbox: &Sandbox,
    cache: Option<&crate::compile_cache::CompileCache>,
) -> Result<Arc<Mapper>, LoadError> {
    if let Some(path) = embedded_cwasm_path()
        && let Ok(bytes) = std::fs::read(&path)
    {
        match sandbox.load(&bytes, Origin::Packaged).await {
            Ok(mapper) => return Ok(mapper),
            Err(e) => {
                tracing::warn!(file = %embedded_cwasm_name(), error = %e, "Precompiled default mapper refused; compiling the embedded one.")
            }
        }
    }
    match cache {
        Some(cache) => {
            sandbox
                .load_cached(crate::embedded::DEFAULT_MAPPER, Origin::Embedded, cache)
                .await
        }
        None => sandbox.load_embedded().await,
    }
}

/// Why no mapper serves: the configured one has not loaded, and no fallback is allowed.
#[derive(Debug, Clone, Error)]
#[error("the mapper from {uri} is unavailable ({reason}); not mapping with any other")]
pub struct Unavailable {
    pub uri: String,
    pub reason: String,
}

/// What serves invocations now.
enum Serving {
    Mapper(Arc<Mapper>),
    Nothing(Unavailable),
}

/// A refusal remembered across cold starts: the source, the version refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Refusal {
    uri: String,
    version: String,
    reason: String,
}

impl Refusal {
    /// One file per source, named by the hash of its URI.
    fn path(dir: &Path, uri: &str) -> PathBuf {
        dir.join(format!(
            "refused-{}.json",
            &sha256_hex(uri.as_bytes())[..16]
        ))
    }

    fn load(dir: &Path, uri: &str) -> Option<Refusal> {
        let text = std::fs::read(Self::path(dir, uri)).ok()?;
        serde_json::from_slice::<Refusal>(&text)
            .ok()
            .filter(|r| r.uri == uri)
    }

    /// Best effort: failing to remember costs one more download and compilation later.
    fn save(&self, dir: &Path) {
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            std::fs::write(
                Self::path(dir, &self.uri),
                serde_json::to_vec(self).unwrap_or_default(),
            )
        });
        if let Err(e) = written {
            tracing::warn!(error = %e, "Cannot remember the refused mapper; it will be tried again after a cold start.");
        }
    }

    fn forget(dir: &Path, uri: &str) {
        let _ = std::fs::remove_file(Self::path(dir, uri));
    }
}

pub struct MapperStore {
    settings: MapperSettings,
    s3: Option<Arc<S3Client>>,
    current: Mutex<Serving>,
    revalidation: tokio::sync::Mutex<Revalidation>,
}

impl MapperStore {
    /// Loads the configured source, dry-running it with `config` (the live settings and
    /// rules). Without `MAPPER_URI`, the embedded default. When the source fails, nothing
    /// serves (or, with `MAPPER_FALLBACK=embedded`, the embedded default) and the source is
    /// tried again at each refresh.
    pub async fn new(
        sandbox: &Sandbox,
        settings: MapperSettings,
        s3: Option<S3Client>,
        config: &[(String, String)],
    ) -> Result<MapperStore, LoadError> {
        if settings.uri == MapperUri::Embedded {
            let mapper = load_embedded(sandbox).await?;
            return Ok(MapperStore {
                settings,
                s3: None,
                current: Mutex::new(Serving::Mapper(mapper)),
                revalidation: tokio::sync::Mutex::new(Revalidation::new(None)),
            });
        }
        let uri = settings.uri.display();
        // A refusal from an earlier cold start: that version is not fetched again (the
        // conditional GET answers "not modified") until a new upload replaces it.
        let remembered = Refusal::load(&settings.state_dir, &uri);
        let reason = match &remembered {
            Some(r) => format!("version {} was refused: {}", r.version, r.reason),
            None => "not loaded yet".to_owned(),
        };
        let store = MapperStore {
            s3: s3.map(Arc::new),
            current: Mutex::new(Serving::Nothing(Unavailable {
                uri: uri.clone(),
                reason,
            })),
            revalidation: tokio::sync::Mutex::new(Revalidation::new(remembered.map(|r| r.version))),
            settings,
        };
        // The configured source first: the embedded default is compiled only when it fails
        // and the fallback is allowed, so a cold start pays for one compilation, not two.
        store.refresh_if_due(sandbox, config).await;
        let unavailable = match &*store.lock_current() {
            Serving::Mapper(_) => None,
            Serving::Nothing(why) => Some(why.clone()),
        };
        if let Some(why) = unavailable {
            if store.settings.fallback_embedded {
                tracing::error!(origin = %uri, error = %why.reason, "Mapper unavailable; mapping with the embedded default meanwhile (MAPPER_FALLBACK=embedded).");
                store.swap(load_embedded(sandbox).await?);
            } else {
                tracing::error!(origin = %uri, error = %why.reason, "Mapper unavailable; invocations fail with MapperUnavailable until it loads.");
            }
        }
        Ok(store)
    }

    /// A store that always serves `mapper` and never revalidates: the command line's
    /// `replay` and `backfill`, which map with the mapper they were given.
    pub fn fixed(mapper: Arc<Mapper>) -> MapperStore {
        MapperStore {
            settings: MapperSettings {
                uri: MapperUri::Embedded,
                refresh: Duration::MAX,
                sha256: None,
                fallback_embedded: false,
                state_dir: PathBuf::new(),
                compile_wait: Duration::ZERO,
            },
            s3: None,
            current: Mutex::new(Serving::Mapper(mapper)),
            revalidation: tokio::sync::Mutex::new(Revalidation::new(None)),
        }
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Serving> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What is in use, for log lines.
    fn current_label(&self) -> String {
        match &*self.lock_current() {
            Serving::Mapper(m) => m.label(),
            Serving::Nothing(_) => "nothing".to_owned(),
        }
    }

    /// The mapper the next invocation runs, or why there is none.
    pub fn current(&self) -> Result<Arc<Mapper>, Unavailable> {
        match &*self.lock_current() {
            Serving::Mapper(m) => Ok(m.clone()),
            Serving::Nothing(why) => Err(why.clone()),
        }
    }

    fn swap(&self, mapper: Arc<Mapper>) {
        *self.lock_current() = Serving::Mapper(mapper);
    }

    /// While nothing serves, the latest reason why.
    fn still_unavailable(&self, reason: String) {
        if let Serving::Nothing(why) = &mut *self.lock_current() {
            why.reason = reason;
        }
    }

    /// Revalidates the source if the refresh interval has passed; swaps in a new mapper when
    /// one loads and passes its dry run with `config`, keeps the current one (and logs why)
    /// when it does not. A compilation that outlasts the wait is picked up by a later call.
    pub async fn refresh_if_due(&self, sandbox: &Sandbox, config: &[(String, String)]) {
        if self.settings.uri == MapperUri::Embedded {
            return;
        }
        let mut state = self.revalidation.lock().await;
        let uri = self.settings.uri.display();
        if let Some((version, mut compiling)) = state.compiling.take() {
            if compiling.wait(Duration::ZERO).await {
                self.conclude(sandbox, &mut state, &uri, version, compiling, config)
                    .await;
            } else {
                state.compiling = Some((version, compiling));
            }
            return;
        }
        if !state.due(self.settings.refresh) {
            return;
        }
        match fetch(
            &self.settings.uri,
            self.s3.as_ref(),
            state.version.as_deref(),
        )
        .await
        {
            Ok(None) => {}
            Ok(Some((bytes, version))) => {
                state.version = Some(version.clone());
                let mut compiling = match self.verify_and_compile(sandbox, bytes, &uri) {
                    Ok(compiling) => compiling,
                    Err(e) => return self.refuse(&mut state, &uri, &version, e),
                };
                if compiling.wait(self.settings.compile_wait).await {
                    self.conclude(sandbox, &mut state, &uri, version, compiling, config)
                        .await;
                } else {
                    tracing::warn!(origin = %uri, version = %version, wait_s = self.settings.compile_wait.as_secs(), keeping = %self.current_label(), "Mapper still compiling; the mapper in use serves meanwhile.");
                    self.still_unavailable(format!("version {version} is still compiling"));
                    state.compiling = Some((version, compiling));
                }
            }
            Err(e) => {
                tracing::error!(origin = %uri, error = %e, keeping = %self.current_label(), "Mapper source unreadable; keeping the mapper in use.");
                self.still_unavailable(e.to_string());
            }
        }
    }

    /// A compiled candidate: linked, described and dry-run with `config`, then swapped in; or
    /// refused.
    async fn conclude(
        &self,
        sandbox: &Sandbox,
        state: &mut Revalidation,
        uri: &str,
        version: String,
        compiling: Compiling,
        config: &[(String, String)],
    ) {
        let loaded = match sandbox.finish_load(compiling).await {
            Ok(mapper) => dry_run(sandbox, &mapper, config).await.map(|()| mapper),
            Err(e) => Err(e.into()),
        };
        match loaded {
            Ok(mapper) => {
                tracing::info!(mapper = %mapper.label(), origin = %uri, version = %version, time_budget = mapper.has_time_budget(), "Mapper swapped in.");
                Refusal::forget(&self.settings.state_dir, uri);
                self.swap(mapper);
            }
            Err(e) => self.refuse(state, uri, &version, e),
        }
    }

    /// Logs a refused version and keeps the mapper in use; a refusal of the object itself is
    /// remembered, anything else is tried again at the next refresh.
    fn refuse(&self, state: &mut Revalidation, uri: &str, version: &str, e: SourceError) {
        tracing::error!(
            origin = %uri, version = %version, error = %e, keeping = %self.current_label(),
            "Mapper update refused; keeping the mapper in use."
        );
        if e.is_deterministic() {
            Refusal {
                uri: uri.to_owned(),
                version: version.to_owned(),
                reason: e.to_string(),
            }
            .save(&self.settings.state_dir);
        } else {
            state.version = None;
        }
        self.still_unavailable(format!("version {version} was refused: {e}"));
    }

    /// Checks the object against `MAPPER_SHA256` and starts its compilation.
    fn verify_and_compile(
        &self,
        sandbox: &Sandbox,
        bytes: Vec<u8>,
        uri: &str,
    ) -> Result<Compiling, SourceError> {
        let pinned = match &self.settings.sha256 {
            None => false,
            Some(expected) => {
                let actual: [u8; 32] = Sha256::digest(&bytes).into();
                if &actual != expected {
                    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
                    return Err(SourceError::Sha256Mismatch {
                        expected: hex(expected),
                        actual: hex(&actual),
                    });
                }
                true
            }
        };
        let origin = Origin::Uri {
            uri: uri.to_owned(),
            pinned,
        };
        Ok(sandbox.start_compile(bytes, origin)?)
    }
}
