//! Running mapper components: an [`Engine`] and [`Linker`] per process for each [`EpochChecks`],
//! one [`Mapper`] (a type-checked `InstancePre`) per component, and a fresh, limited `Store`
//! per invocation, so a guest's state never leaks from one event into the next.
//!
//! # Layout
//! - [`Origin`] and [`EpochChecks`] (`origin.rs`): where a mapper came from decides what it may
//!   be and how it runs.
//! - `engine.rs`: engine settings, the pooling allocator, precompiling, the epoch ticker.
//! - [`bindings`]: types generated from `wit/mapper.wit`.
//! - [`contract`]: which contract versions this host runs.
//! - [`state`]: the store data and the host side of the imports.
//! - [`error`]: [`LoadError`] and [`RunError`].

pub mod bindings;
pub mod contract;
mod engine;
pub mod error;
mod origin;
mod sink_import;
pub mod state;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, StoreLimitsBuilder, Trap};

use bindings::{Invocation, MapperInfo, RdsMapperPre, Summary};
pub use engine::{EPOCH_TICK, engine_config, precompile};
use engine::{compile, pool, spawn_epoch_ticker, ticks};
pub use error::{EngineError, LoadError, RunError};
pub use origin::{EpochChecks, Origin};
pub use state::FailedItem;
use state::{HostState, SharedSink};

use crate::compile_cache::CompileCache;
use crate::sink::RecordSink;

/// What the outer timeout of a run adds to the mapper's budget: room for the epoch
/// interruption to stop a computing mapper first, with its own clear error.
pub const STALL_SLACK: Duration = Duration::from_secs(1);

/// The sink back from a finished run. Every other holder (the store, a `send` stopped by the
/// outer timeout) is gone by then.
fn take_back(shared: SharedSink) -> Box<dyn RecordSink> {
    match Arc::try_unwrap(shared) {
        Ok(mutex) => mutex.into_inner(),
        // Unreachable: the store and its calls are dropped. Refusing every send makes a bug
        // here an error of each later event, never a silent loss.
        Err(_) => {
            tracing::error!(
                "the sink was still lent out after the mapper's run; sends are refused from now on"
            );
            Box::new(crate::sink::Discard)
        }
    }
}

/// The time budget of a mapper's `describe()` at load.
const DESCRIBE_BUDGET: Duration = Duration::from_secs(5);

/// Per-invocation sandbox limits.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Bounds a guest that allocates without end (`MAPPER_MEMORY_MB`).
    pub memory_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            memory_bytes: 256 << 20,
        }
    }
}

/// The process-wide engines and linkers, one per [`EpochChecks`], each built when first needed.
pub struct Sandbox {
    unchecked: OnceLock<EngineLinker>,
    checked: OnceLock<EngineLinker>,
    limits: SandboxLimits,
}

/// An engine and the linker holding the host's imports for it.
struct EngineLinker {
    engine: Engine,
    linker: Linker<HostState>,
}

impl EngineLinker {
    fn build(checks: EpochChecks, limits: &SandboxLimits) -> Result<EngineLinker, EngineError> {
        Self::try_build(checks, limits).map_err(|e| EngineError(format!("{e:#}")))
    }

    fn try_build(checks: EpochChecks, limits: &SandboxLimits) -> wasmtime::Result<EngineLinker> {
        let mut config = engine_config(checks);
        config.allocation_strategy(pool(limits));
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // The generated bindings for `types` and `diagnostics`; `sink` by hand (sink_import).
        bindings::whatap::rds_mapper::types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        bindings::whatap::rds_mapper::diagnostics::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )?;
        sink_import::add_to_linker(&mut linker)?;
        if checks == EpochChecks::On {
            spawn_epoch_ticker(&engine);
        }
        Ok(EngineLinker { engine, linker })
    }
}

/// A component ready to instantiate: compiled, contract-checked, linked, described.
pub struct Mapper {
    pre: RdsMapperPre<HostState>,
    /// The engine of its [`EpochChecks`], which its stores are made in.
    engine: Engine,
    pub epoch_checks: EpochChecks,
    pub info: MapperInfo,
    /// Where it came from, which decided its epoch checks.
    pub origin: Origin,
}

impl Mapper {
    /// `name@version`, as it appears in summaries and log lines.
    pub fn label(&self) -> String {
        format!("{}@{}", self.info.name, self.info.version)
    }

    /// Whether its sandbox interrupts it at the end of its time budget: every mapper but the
    /// built-in default (see [`EpochChecks`]). Logged when a mapper starts serving.
    pub fn has_time_budget(&self) -> bool {
        self.epoch_checks == EpochChecks::On
    }
}

/// A mapper being compiled on a blocking thread ([`Sandbox::start_compile`]).
pub struct Compiling {
    state: CompileState,
    checks: EpochChecks,
    origin: Origin,
    bytes: Arc<[u8]>,
}

enum CompileState {
    Running(tokio::task::JoinHandle<Result<Component, LoadError>>),
    Done(Result<Component, LoadError>),
}

impl Compiling {
    /// Waits at most `limit` for the compilation; whether it has finished. A compilation
    /// that is not finished goes on, and can be waited for again later.
    pub async fn wait(&mut self, limit: Duration) -> bool {
        if let CompileState::Running(handle) = &mut self.state {
            let finished = match tokio::time::timeout(limit, handle).await {
                Ok(joined) => joined.unwrap_or_else(|e| {
                    Err(LoadError::Compile(format!("the compilation stopped: {e}")))
                }),
                Err(_) => return false,
            };
            self.state = CompileState::Done(finished);
        }
        true
    }
}

/// The outcome of one invocation, with the sink handed back for the next one.
pub struct RunOutcome {
    pub sink: Box<dyn RecordSink>,
    pub result: Result<Summary, RunError>,
    /// The largest the guest's linear memory grew to (its peak memory), bytes.
    pub guest_peak_bytes: usize,
    /// Items of a batched event the mapper could not map (`sink.item-failed`).
    pub failed_items: Vec<FailedItem>,
    pub timings: RunTimings,
}

/// Where a run's time went, for the invocation's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTimings {
    /// Instantiating the mapper and its mapping, less the time its sends took.
    pub map: Duration,
    /// In the sink's `send`: reading, serializing and writing batches while the mapper ran.
    pub send: Duration,
    /// The sink's `finish`: the collector's confirmation of everything the event sent.
    pub confirm: Duration,
}

impl Sandbox {
    /// Builds nothing yet: each engine is set up by the first mapper that needs it, so a
    /// process that runs a mapper from S3 never builds the default's (a failure to set one
    /// up is the load's error, [`LoadError::Engine`]).
    pub fn new(limits: SandboxLimits) -> Sandbox {
        Sandbox {
            unchecked: OnceLock::new(),
            checked: OnceLock::new(),
            limits,
        }
    }

    fn lane(&self, checks: EpochChecks) -> Result<&EngineLinker, EngineError> {
        let cell = match checks {
            EpochChecks::Off => &self.unchecked,
            EpochChecks::On => &self.checked,
        };
        if let Some(lane) = cell.get() {
            return Ok(lane);
        }
        let lane = EngineLinker::build(checks, &self.limits)?;
        // Another thread may have won the race; its lane is as good as this one.
        Ok(cell.get_or_init(|| lane))
    }

    /// Compiles (or, where its origin allows, deserializes) a mapper and checks that it is a
    /// mapper of our contract. Its origin decides its [`EpochChecks`].
    pub async fn load(&self, bytes: &[u8], origin: Origin) -> Result<Arc<Mapper>, LoadError> {
        let mut compiling = self.start_compile(bytes.to_vec(), origin)?;
        compiling.wait(Duration::MAX).await;
        self.finish_load(compiling).await
    }

    /// Starts compiling a mapper on a blocking thread, so that whoever waits for it can stop
    /// waiting ([`Compiling::wait`]) while Cranelift goes on; [`finish_load`](Self::finish_load)
    /// takes it from there. Precompiled code is refused here when its origin does not allow it.
    pub fn start_compile(&self, bytes: Vec<u8>, origin: Origin) -> Result<Compiling, LoadError> {
        if Engine::detect_precompiled(&bytes).is_some() && !origin.may_load_precompiled() {
            return Err(LoadError::PrecompiledUnpinned {
                sha256: crate::source::sha256_hex(&bytes),
            });
        }
        let checks = origin.epoch_checks();
        let engine = self.lane(checks)?.engine.clone();
        let bytes: Arc<[u8]> = bytes.into();
        let input = bytes.clone();
        let handle = tokio::task::spawn_blocking(move || compile(&engine, &input));
        Ok(Compiling {
            state: CompileState::Running(handle),
            checks,
            origin,
            bytes,
        })
    }

    /// Checks, links and describes a compiled mapper (waiting for its compilation if need be).
    pub async fn finish_load(&self, compiling: Compiling) -> Result<Arc<Mapper>, LoadError> {
        let Compiling {
            state,
            checks,
            origin,
            bytes,
        } = compiling;
        let compiled = match state {
            CompileState::Done(result) => result,
            CompileState::Running(handle) => handle.await.unwrap_or_else(|e| {
                Err(LoadError::Compile(format!("the compilation stopped: {e}")))
            }),
        };
        let lane = self.lane(checks)?;
        let component = match compiled {
            // The package's own artifact anywhere else: say so, rather than wasmtime's words.
            Err(LoadError::PrecompiledMismatch(_))
                if checks == EpochChecks::On
                    && compile(&self.lane(EpochChecks::Off)?.engine, &bytes).is_ok() =>
            {
                return Err(LoadError::PackagedArtifact);
            }
            other => other?,
        };
        contract::check_exports(&lane.engine, &component)?;
        let pre = lane
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = RdsMapperPre::new(pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let mut store = self.store(
            &lane.engine,
            Arc::new(tokio::sync::Mutex::new(Box::new(crate::sink::Discard))),
            0,
            origin.to_string(),
            DESCRIBE_BUDGET,
        );
        let describe = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance
                .whatap_rds_mapper_mapper()
                .call_describe(&mut store)
                .await
        };
        let info = match tokio::time::timeout(DESCRIBE_BUDGET + STALL_SLACK, describe).await {
            Ok(described) => described.map_err(|e| LoadError::Describe(format!("{e:#}")))?,
            Err(_) => {
                return Err(LoadError::Describe(format!(
                    "it did not return within {} ms",
                    (DESCRIBE_BUDGET + STALL_SLACK).as_millis()
                )));
            }
        };
        let reported = semver::Version::parse(&info.contract).map_err(|_| {
            LoadError::Describe(format!(
                "contract version {:?} is not semver",
                info.contract
            ))
        })?;
        contract::check_version(&reported)?;
        Ok(Arc::new(Mapper {
            pre,
            engine: lane.engine.clone(),
            epoch_checks: checks,
            info,
            origin,
        }))
    }

    /// [`load`](Self::load), with compiled code kept in `cache` (the command line's
    /// [`CompileCache`]): a component compiled once for this engine is loaded from there next
    /// time, with no JIT. A precompiled `.cwasm` is loaded as [`load`](Self::load) does; an
    /// entry that does not load (another build wrote it, or it is damaged) is compiled again
    /// and replaced. The cache never makes a load fail: when it cannot be used, the reason is
    /// logged and the mapper compiled.
    pub async fn load_cached(
        &self,
        bytes: &[u8],
        origin: Origin,
        cache: &CompileCache,
    ) -> Result<Arc<Mapper>, LoadError> {
        if Engine::detect_precompiled(bytes).is_some() {
            return self.load(bytes, origin).await;
        }
        let checks = origin.epoch_checks();
        let engine = self.lane(checks)?.engine.clone();
        let key = CompileCache::key(bytes, &engine, checks);
        let done = |component| Compiling {
            state: CompileState::Done(Ok(component)),
            checks,
            origin: origin.clone(),
            bytes: bytes.into(),
        };
        match cache.lookup(&key) {
            Ok(Some(path)) => {
                // SAFETY: the entry is this user's own compilation of these very bytes (its
                // name carries their SHA-256), in a directory only they can write
                // (`CompileCache::lookup` checks); wasmtime checks the engine's version and
                // settings.
                match unsafe { Component::deserialize_file(&engine, &path) } {
                    Ok(component) => {
                        tracing::debug!(entry = %path.display(), "Mapper loaded from the compile cache.");
                        return self.finish_load(done(component)).await;
                    }
                    Err(e) => tracing::debug!(
                        entry = %path.display(), error = %format!("{e:#}"),
                        "A compiled mapper in the cache did not load; compiling it again."
                    ),
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "The compile cache is not used."),
        }
        let input: Arc<[u8]> = bytes.into();
        let component = tokio::task::spawn_blocking(move || compile(&engine, &input))
            .await
            .unwrap_or_else(|e| Err(LoadError::Compile(format!("the compilation stopped: {e}"))))?;
        match component.serialize() {
            Ok(code) => match cache.store(&key, &code) {
                Ok(path) => {
                    tracing::debug!(entry = %path.display(), "Compiled mapper cached.")
                }
                Err(e) => tracing::warn!(error = %e, "The compiled mapper was not cached."),
            },
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), "The compiled mapper could not be serialized.")
            }
        }
        self.finish_load(done(component)).await
    }

    /// [`load`](Self::load) for the component this binary carries.
    pub async fn load_embedded(&self) -> Result<Arc<Mapper>, LoadError> {
        self.load(crate::embedded::DEFAULT_MAPPER, Origin::Embedded)
            .await
    }

    fn store(
        &self,
        engine: &Engine,
        sink: SharedSink,
        frozen_ms: i64,
        mapper: String,
        budget: Duration,
    ) -> Store<HostState> {
        // One linear memory: the memory limit is per memory, so a component with several
        // could hold several times `MAPPER_MEMORY_MB`.
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .memories(1)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(engine, HostState::new(sink, limits, frozen_ms, mapper));
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(ticks(budget));
        store
    }

    /// Runs one event through a mapper in a fresh store. `budget` bounds the guest's run time:
    /// epoch interruption stops a mapper that computes past it, and an outer timeout of the
    /// budget plus [`STALL_SLACK`] stops one blocked in a host call, which no epoch reaches.
    ///
    /// Delivery is the host's call: when the sink refused any send of the event, the run is a
    /// [`RunError::Delivery`] whatever the mapper returned.
    pub async fn run(
        &self,
        mapper: &Mapper,
        event: &[u8],
        invocation: &Invocation,
        sink: Box<dyn RecordSink>,
        budget: Duration,
    ) -> RunOutcome {
        let shared: SharedSink = Arc::new(tokio::sync::Mutex::new(sink));
        let mut store = self.store(
            &mapper.engine,
            shared.clone(),
            invocation.received_ms,
            mapper.label(),
            budget,
        );
        let limit = budget.saturating_add(STALL_SLACK);
        let started = std::time::Instant::now();
        let call = async {
            let instance = mapper.pre.instantiate_async(&mut store).await?;
            instance
                .whatap_rds_mapper_mapper()
                .call_map_event(&mut store, event, invocation)
                .await
        };
        let result = match tokio::time::timeout(limit, call).await {
            Ok(Ok(Ok(summary))) => Ok(summary),
            Ok(Ok(Err(e))) => Err(RunError::Mapper {
                kind: e.kind,
                message: e.message,
            }),
            Ok(Err(e)) => Err(self.classify_trap(e, budget)),
            Err(_) => Err(RunError::Stalled {
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            }),
        };
        let ran = started.elapsed();
        let mut state = store.into_data();
        drop(state.sink);
        let mut sink = take_back(shared);
        let confirming = std::time::Instant::now();
        let result = match (state.refused.take(), result) {
            // A refused send fails the event, whatever the mapper made of the refusal.
            (Some(refused), _) => Err(RunError::Delivery(refused.to_string())),
            // What the mapper sent counts only once the sink has delivered it.
            (None, Ok(summary)) => match sink.finish().await {
                Ok(()) => Ok(summary),
                Err(e) => Err(RunError::Delivery(e.to_string())),
            },
            (None, Err(e)) => Err(e),
        };
        let timings = RunTimings {
            map: ran.saturating_sub(state.send_time),
            send: state.send_time,
            confirm: confirming.elapsed(),
        };
        if result.is_err() {
            sink.abandon();
        }
        RunOutcome {
            guest_peak_bytes: state.limits.peak_bytes,
            failed_items: std::mem::take(&mut state.failed_items),
            timings,
            sink,
            result,
        }
    }

    fn classify_trap(&self, e: wasmtime::Error, budget: Duration) -> RunError {
        let detail = format!("{e:#}");
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => RunError::Timeout {
                budget_ms: budget.as_millis() as u64,
            },
            _ if detail.contains("forcing trap when growing memory") => RunError::OutOfMemory {
                limit_mb: (self.limits.memory_bytes >> 20) as u64,
                detail,
            },
            _ => RunError::Trap(detail),
        }
    }
}
