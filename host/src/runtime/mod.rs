//! Running mapper components: an [`Engine`] and [`Linker`] per process for each [`Trust`],
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

use bindings::{ErrorKind, Invocation, MapperInfo, RdsMapperPre, Summary};
pub use error::{EngineError, LoadError, RunError};
use state::HostState;

use crate::sink::RecordSink;

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

/// Which engine a mapper is compiled for and runs on.
///
/// Epoch interruption, which stops a mapper that runs past its time budget, puts a check at
/// every function entry and loop back-edge: 15 % of the default mapper's time. The default
/// mapper is this host's own code, shipped with it; every loop in it is bounded by its input,
/// which the property tests and the fuzz targets exercise, and the Lambda timeout still bounds
/// it. So it is compiled without the checks. Every other mapper (a file, S3) is compiled with
/// them and stopped with a clear error when it runs past its budget. The sandbox is the same
/// for both: memory limit, no authority beyond the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The embedded default mapper, or its `.cwasm` from `rds-forwarder compile` without
    /// `--mapper`: no time budget inside the sandbox.
    Builtin,
    /// Any other mapper: interrupted when it runs past its time budget.
    Bounded,
}

/// The process-wide engines and linkers, one per [`Trust`], each built when first needed.
pub struct Runtime {
    builtin: OnceLock<Lane>,
    bounded: OnceLock<Lane>,
    limits: SandboxLimits,
}

/// An engine and the linker holding the host's imports for it.
struct Lane {
    engine: Engine,
    linker: Linker<HostState>,
}

impl Lane {
    fn build(trust: Trust, limits: &SandboxLimits) -> Result<Lane, EngineError> {
        Self::try_build(trust, limits).map_err(|e| EngineError(format!("{e:#}")))
    }

    fn try_build(trust: Trust, limits: &SandboxLimits) -> wasmtime::Result<Lane> {
        let mut config = engine_config(trust);
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
        if trust == Trust::Bounded {
            spawn_epoch_ticker(&engine);
        }
        Ok(Lane { engine, linker })
    }
}

/// A component ready to instantiate: compiled, contract-checked, linked, described.
pub struct Mapper {
    pre: RdsMapperPre<HostState>,
    /// The engine of its [`Trust`], which its stores are made in.
    engine: Engine,
    pub trust: Trust,
    pub info: MapperInfo,
    /// Where it came from (`embedded`, a path, an S3 URI), for logs and errors.
    pub origin: String,
}

impl Mapper {
    /// `name@version`, as it appears in summaries and log lines.
    pub fn label(&self) -> String {
        format!("{}@{}", self.info.name, self.info.version)
    }

    /// Whether its sandbox interrupts it at the end of its time budget: every mapper but the
    /// built-in default (see [`Trust`]). Logged when a mapper starts serving.
    pub fn has_time_budget(&self) -> bool {
        self.trust == Trust::Bounded
    }
}

/// The outcome of one invocation, with the sink handed back for the next one.
pub struct Ran {
    pub sink: Box<dyn RecordSink>,
    pub result: Result<Summary, RunError>,
    /// The largest the guest's linear memory grew to (its peak memory), bytes.
    pub guest_peak_bytes: usize,
}

impl Runtime {
    /// Builds nothing yet: each engine is set up by the first mapper that needs it, so a
    /// process that runs a mapper from S3 never builds the default's (a failure to set one
    /// up is the load's error, [`LoadError::Engine`]).
    pub fn new(limits: SandboxLimits) -> Runtime {
        Runtime {
            builtin: OnceLock::new(),
            bounded: OnceLock::new(),
            limits,
        }
    }

    fn lane(&self, trust: Trust) -> Result<&Lane, EngineError> {
        let cell = match trust {
            Trust::Builtin => &self.builtin,
            Trust::Bounded => &self.bounded,
        };
        if let Some(lane) = cell.get() {
            return Ok(lane);
        }
        let lane = Lane::build(trust, &self.limits)?;
        // Another thread may have won the race; its lane is as good as this one.
        Ok(cell.get_or_init(|| lane))
    }

    /// Compiles (or deserializes) a mapper from a file or S3 and checks that it is a mapper of
    /// our contract. It runs with a time budget ([`Trust::Bounded`]).
    pub async fn load(&self, bytes: &[u8], origin: &str) -> Result<Arc<Mapper>, LoadError> {
        self.load_as(bytes, origin, Trust::Bounded).await
    }

    /// [`load`](Self::load) for the default mapper: the embedded component, or its `.cwasm`
    /// made without `--mapper` ([`Trust::Builtin`]).
    pub async fn load_builtin(&self, bytes: &[u8]) -> Result<Arc<Mapper>, LoadError> {
        self.load_as(bytes, crate::embedded::ORIGIN, Trust::Builtin)
            .await
    }

    async fn load_as(
        &self,
        bytes: &[u8],
        origin: &str,
        trust: Trust,
    ) -> Result<Arc<Mapper>, LoadError> {
        let (lane, trust, component) = self.compile_for(bytes, trust)?;
        contract::check_exports(&lane.engine, &component)?;
        let pre = lane
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = RdsMapperPre::new(pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let mut store = self.store(
            &lane.engine,
            Box::new(crate::sink::Discard),
            0,
            origin.to_owned(),
            Duration::from_secs(5),
        );
        let info = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance
                .whatap_rds_mapper_mapper()
                .call_describe(&mut store)
                .await
        }
        .await
        .map_err(|e| LoadError::Describe(format!("{e:#}")))?;
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
            trust,
            info,
            origin: origin.to_owned(),
        }))
    }

    /// Compiles `bytes` for the engine of `trust`. A `.cwasm` of the default mapper (from
    /// `compile` without `--mapper`) is compiled for [`Trust::Builtin`] and runs so wherever it
    /// comes from: only this host's default mapper is ever precompiled that way.
    fn compile_for(
        &self,
        bytes: &[u8],
        trust: Trust,
    ) -> Result<(&Lane, Trust, Component), LoadError> {
        let lane = self.lane(trust)?;
        match compile(&lane.engine, bytes) {
            Err(LoadError::PrecompiledMismatch(e)) if trust == Trust::Bounded => {
                let builtin = self.lane(Trust::Builtin)?;
                match compile(&builtin.engine, bytes) {
                    Ok(component) => Ok((builtin, Trust::Builtin, component)),
                    // The first reason is the one that tells how to make a usable artifact.
                    Err(_) => Err(LoadError::PrecompiledMismatch(e)),
                }
            }
            other => other.map(|component| (lane, trust, component)),
        }
    }

    fn store(
        &self,
        engine: &Engine,
        sink: Box<dyn RecordSink>,
        frozen_ms: i64,
        mapper: String,
        budget: Duration,
    ) -> Store<HostState> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(engine, HostState::new(sink, limits, frozen_ms, mapper));
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(ticks(budget));
        store
    }

    /// Runs one event through a mapper in a fresh store. `budget` bounds the guest's run time.
    pub async fn run(
        &self,
        mapper: &Mapper,
        event: &[u8],
        invocation: &Invocation,
        sink: Box<dyn RecordSink>,
        budget: Duration,
    ) -> Ran {
        let mut store = self.store(
            &mapper.engine,
            sink,
            invocation.received_ms,
            mapper.label(),
            budget,
        );
        let outcome = async {
            let instance = mapper.pre.instantiate_async(&mut store).await?;
            instance
                .whatap_rds_mapper_mapper()
                .call_map_event(&mut store, event, invocation)
                .await
        }
        .await;
        let result = match outcome {
            Ok(Ok(summary)) => Ok(summary),
            Ok(Err(e)) => Err(RunError::Mapper {
                kind: e.kind,
                message: e.message,
            }),
            Err(e) => Err(self.classify_trap(e, budget)),
        };
        let mut state = store.into_data();
        // What the mapper sent counts only once the sink has delivered it.
        let result = match result {
            Ok(summary) => match state.sink.finish().await {
                Ok(()) => Ok(summary),
                Err(e) => Err(RunError::Mapper {
                    kind: ErrorKind::Delivery,
                    message: format!("delivery failed: {e}"),
                }),
            },
            Err(e) => {
                state.sink.abandon();
                Err(e)
            }
        };
        Ran {
            guest_peak_bytes: state.limits.peak_bytes,
            sink: state.sink,
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
            // SAFETY: precompiled code runs as is. Only artifacts made by this host's
            // `compile` command from a mapper the operator chose are loaded this way, and
            // wasmtime checks the engine version and settings before accepting them.
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

/// The engine settings mappers of `trust` are compiled with. A `.cwasm` loads only into an
/// engine with the same settings, so `compile` uses this too.
pub fn engine_config(trust: Trust) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Epoch interruption bounds a guest's run time for a fraction of what fuel costs (15 %
    // against 15–30 %); see [`Trust`] for why the default mapper goes without.
    config.epoch_interruption(trust == Trust::Bounded);
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
        // A component instantiates several core modules (the mapper and its shims).
        .total_core_instances(POOL_SANDBOXES * 8)
        .total_tables(POOL_SANDBOXES * 8)
        .total_stacks(POOL_SANDBOXES)
        .max_memory_size(limits.memory_bytes)
        .linear_memory_keep_resident(POOL_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT);
    p
}

/// Precompiles a component of `trust` for `target` (a target triple such as
/// `aarch64-unknown-linux-gnu`), or for this machine when `None`. With an explicit target,
/// Cranelift uses the baseline CPU features of that architecture, so the artifact loads on any
/// CPU of it (Lambda's included); another architecture than this machine's needs the host built
/// with the `cross-compile` feature.
pub fn precompile(bytes: &[u8], target: Option<&str>, trust: Trust) -> wasmtime::Result<Vec<u8>> {
    let mut config = engine_config(trust);
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
