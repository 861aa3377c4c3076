//! Running mapper components: an [`Engine`] and [`Linker`] per process for each [`EpochChecks`],
//! one [`Mapper`] (a type-checked `InstancePre`) per component, and a fresh, limited `Store`
//! per invocation, so a guest's state never leaks from one event into the next.
//!
//! # Layout
//! - [`bindings`]: types generated from `wit/mapper.wit`.
//! - [`contract`]: which contract versions this host runs.
//! - [`state`]: the store data and the host side of the imports.
//! - [`error`]: [`LoadError`] and [`RunError`].

pub mod bindings;
pub mod contract;
pub mod error;
mod packed;
mod sink_import;
pub mod state;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Precompiled, Store, StoreLimitsBuilder, Trap};

use bindings::{Invocation, MapperInfo, RdsMapperPre, Summary};
pub use error::{EngineError, LoadError, RunError};
use state::{HostState, SharedSink};

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

/// How often the epoch advances; the granularity of the guest's time budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

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

/// Whether a mapper's sandbox interrupts it at the end of its time budget, and so which
/// engine it is compiled for and runs on.
///
/// Epoch interruption, which stops a mapper that runs past its time budget, puts a check at
/// every function entry and loop back-edge: 15 % of the default mapper's time. The default
/// mapper is this host's own code, shipped with it; every loop in it is bounded by its input,
/// which the property tests and the fuzz targets exercise, and the Lambda timeout still bounds
/// it. So it is compiled without the checks. Every other mapper is compiled with them and
/// stopped with a clear error when it runs past its budget. Which applies follows from the
/// mapper's [`Origin`], never from what its bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochChecks {
    /// No time budget inside the sandbox: only for the default mapper this binary carries.
    Off,
    /// Interrupted when it runs past its time budget.
    On,
}

/// Where a mapper came from. The origin alone decides whether precompiled native code may be
/// loaded for it ([`Origin::may_load_precompiled`]) and its [`EpochChecks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The component carried inside this binary.
    Embedded,
    /// The embedded component precompiled, shipped beside the executable under a name that
    /// carries the component's hash (the Lambda package): as trusted as the executable.
    Packaged,
    /// `MAPPER_URI`: whoever can write that object or file. `pinned` when `MAPPER_SHA256`
    /// matched these very bytes.
    Uri { uri: String, pinned: bool },
    /// A file named on the command line by whoever runs the command.
    Local(String),
}

impl Origin {
    /// Precompiled code is native code that runs as it is, past every check of the sandbox.
    /// It is loaded only where the bytes are as trusted as this executable: the package's own
    /// artifact, a file the operator names on the command line, or an object from
    /// `MAPPER_URI` whose SHA-256 the deployer pinned.
    pub fn may_load_precompiled(&self) -> bool {
        match self {
            Origin::Embedded => false,
            Origin::Packaged | Origin::Local(_) => true,
            Origin::Uri { pinned, .. } => *pinned,
        }
    }

    /// Only this binary's own default mapper runs without a time budget.
    pub fn epoch_checks(&self) -> EpochChecks {
        match self {
            Origin::Embedded | Origin::Packaged => EpochChecks::Off,
            Origin::Uri { .. } | Origin::Local(_) => EpochChecks::On,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Embedded => f.write_str(crate::embedded::ORIGIN),
            Origin::Packaged => f.write_str("packaged"),
            Origin::Uri { uri, .. } => f.write_str(uri),
            Origin::Local(path) => f.write_str(path),
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
                sha256: crate::mapper_store::sha256_hex(&bytes),
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
        let mut state = store.into_data();
        drop(state.sink);
        let mut sink = take_back(shared);
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
        if result.is_err() {
            sink.abandon();
        }
        RunOutcome {
            guest_peak_bytes: state.limits.peak_bytes,
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

/// Compiles (or deserializes) a component for `engine`.
fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, LoadError> {
    match Engine::detect_precompiled(bytes) {
        Some(Precompiled::Component) => {
            // SAFETY: precompiled code runs as is. `Sandbox::load` lets it through only from an
            // origin as trusted as this executable (`Origin::may_load_precompiled`: the
            // package's own artifact, the operator's command line, or an object whose SHA-256
            // the deployer pinned), and wasmtime checks the engine version and settings.
            return unsafe { Component::deserialize(engine, bytes) }
                .map_err(|e| LoadError::PrecompiledMismatch(format!("{e:#}")));
        }
        Some(Precompiled::Module) => return Err(LoadError::PrecompiledModule),
        None => {}
    }
    match bytes {
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Err(LoadError::CoreModule),
        [0, b'a', b's', b'm', ..] => {
            Component::from_binary(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))
        }
        _ => Err(LoadError::NotWasm),
    }
}

/// The engine settings mappers with `checks` are compiled with. A `.cwasm` loads only into an
/// engine with the same settings, so `compile` uses this too.
pub fn engine_config(checks: EpochChecks) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Epoch interruption bounds a guest's run time for a fraction of what fuel costs (15 %
    // against 15–30 %); see [`EpochChecks`] for why the default mapper goes without.
    config.epoch_interruption(checks == EpochChecks::On);
    // For profiling the guest with `perf`: wasmtime writes /tmp/perf-<pid>.map so that JIT
    // frames get names (build the component unstripped to see the mapper's own functions).
    if std::env::var_os("RDS_FORWARDER_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// Sandboxes alive at once per engine. The forwarder runs one at a time (an event, or a
/// mapping config's dry run before it); the rest is room for a caller of the library that runs
/// a few at once. One more is refused with wasmtime's error naming the limit, never queued.
/// `MAPPER_MEMORY_MB` is at most 4096, so a slot never outgrows the 4 GiB reservation.
const POOL_SANDBOXES: u32 = 4;
/// The guest memory a sandbox's slot keeps resident between events: all of what a 1 MB
/// CloudWatch batch's sandbox touches.
const POOL_KEEP_RESIDENT: usize = 16 << 20;
/// The same for its tables (function references), which are small.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// The pooling allocator, sized for [`POOL_SANDBOXES`]. A fresh sandbox's memory came from a
/// new mapping, so the guest page-faulted on every page it touched, and the kernel unmapped it
/// after: 10 % of a batch's time and 16 % of an RDS event's. A slot of the pool keeps its
/// first [`POOL_KEEP_RESIDENT`] bytes mapped and zeroes them for the next sandbox, which
/// still starts from nothing. The pool does not change compiled code, so `precompile` leaves
/// it out and a `.cwasm` loads into either.
fn pool(limits: &SandboxLimits) -> wasmtime::PoolingAllocationConfig {
    let mut p = wasmtime::PoolingAllocationConfig::default();
    p.total_component_instances(POOL_SANDBOXES)
        .total_memories(POOL_SANDBOXES)
        .max_memories_per_component(1)
        // A component instantiates several core modules (the mapper and its shims).
        .total_core_instances(POOL_SANDBOXES * 8)
        .total_tables(POOL_SANDBOXES * 8)
        .total_stacks(POOL_SANDBOXES)
        .max_memory_size(limits.memory_bytes)
        .linear_memory_keep_resident(POOL_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT);
    p
}

/// Precompiles a component with `checks` for `target` (a target triple such as
/// `aarch64-unknown-linux-gnu`), or for this machine when `None`. With an explicit target,
/// Cranelift uses the baseline CPU features of that architecture, so the artifact loads on any
/// CPU of it (Lambda's included); another architecture than this machine's needs the host built
/// with the `cross-compile` feature.
pub fn precompile(
    bytes: &[u8],
    target: Option<&str>,
    checks: EpochChecks,
) -> wasmtime::Result<Vec<u8>> {
    let mut config = engine_config(checks);
    if let Some(t) = target {
        config.target(t)?;
    }
    Engine::new(&config)?.precompile_component(bytes)
}

fn ticks(budget: Duration) -> u64 {
    (budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
}

/// Advances the engine's epoch until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}
