//! Running mapper components: one [`Engine`] and [`Linker`] per process, one
//! [`Mapper`] (a type-checked `InstancePre`) per component, and a fresh, limited `Store` per
//! invocation, so a guest's state never leaks from one event into the next.
//!
//! # Layout
//! - [`bindings`]: types generated from `wit/mapper.wit`.
//! - [`contract`]: which contract versions this host runs.
//! - [`state`]: the store data and the host side of the imports.
//! - [`error`]: [`LoadError`] and [`RunError`].

pub mod bindings;
pub mod contract;
pub mod error;
mod sink_import;
pub mod state;

use std::sync::Arc;
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

/// The process-wide engine and linker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    limits: SandboxLimits,
}

/// A component ready to instantiate: compiled, contract-checked, linked, described.
pub struct Mapper {
    pre: RdsMapperPre<HostState>,
    pub info: MapperInfo,
    /// Where it came from (`embedded`, a path, an S3 URI), for logs and errors.
    pub origin: String,
}

impl Mapper {
    /// `name@version`, as it appears in summaries and log lines.
    pub fn label(&self) -> String {
        format!("{}@{}", self.info.name, self.info.version)
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
    pub fn new(limits: SandboxLimits) -> Result<Runtime, EngineError> {
        Self::build(limits).map_err(|e| EngineError(format!("{e:#}")))
    }

    fn build(limits: SandboxLimits) -> wasmtime::Result<Runtime> {
        let engine = Engine::new(&engine_config())?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // The generated bindings for `types` and `diagnostics`; `sink` by hand (sink_import).
        bindings::whatap::rds_mapper::types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        bindings::whatap::rds_mapper::diagnostics::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )?;
        sink_import::add_to_linker(&mut linker)?;
        spawn_epoch_ticker(&engine);
        Ok(Runtime {
            engine,
            linker,
            limits,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or deserializes) a component and checks that it is a mapper of our contract.
    pub async fn load(&self, bytes: &[u8], origin: &str) -> Result<Arc<Mapper>, LoadError> {
        let component = self.compile(bytes)?;
        contract::check_exports(&self.engine, &component)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = RdsMapperPre::new(pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let mut store = self.store(
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
            info,
            origin: origin.to_owned(),
        }))
    }

    fn compile(&self, bytes: &[u8]) -> Result<Component, LoadError> {
        match Engine::detect_precompiled(bytes) {
            Some(Precompiled::Component) => {
                // SAFETY: precompiled code runs as is. Only artifacts made by this host's
                // `compile` command from a mapper the operator chose are loaded this way, and
                // wasmtime checks the engine version and settings before accepting them.
                return unsafe { Component::deserialize(&self.engine, bytes) }
                    .map_err(|e| LoadError::PrecompiledMismatch(format!("{e:#}")));
            }
            Some(Precompiled::Module) => return Err(LoadError::PrecompiledModule),
            None => {}
        }
        match bytes {
            [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Err(LoadError::CoreModule),
            [0, b'a', b's', b'm', ..] => Component::from_binary(&self.engine, bytes)
                .map_err(|e| LoadError::Compile(format!("{e:#}"))),
            _ => Err(LoadError::NotWasm),
        }
    }

    fn store(
        &self,
        sink: Box<dyn RecordSink>,
        frozen_ms: i64,
        mapper: String,
        budget: Duration,
    ) -> Store<HostState> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            &self.engine,
            HostState::new(sink, limits, frozen_ms, mapper),
        );
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
        let mut store = self.store(sink, invocation.received_ms, mapper.label(), budget);
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

/// The engine settings every mapper is compiled with. A `.cwasm` loads only into an engine
/// with the same settings, so `compile` uses this too.
pub fn engine_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Epoch interruption bounds a guest's run time at almost no cost (fuel costs 15–30%).
    config.epoch_interruption(true);
    // For profiling the guest with `perf`: wasmtime writes /tmp/perf-<pid>.map so that JIT
    // frames get names (build the component unstripped to see the mapper's own functions).
    if std::env::var_os("RDS_FORWARDER_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// Precompiles a component for `target` (a target triple such as
/// `aarch64-unknown-linux-gnu`), or for this machine when `None`. With an explicit target,
/// Cranelift uses the baseline CPU features of that architecture, so the artifact loads on any
/// CPU of it (Lambda's included); another architecture than this machine's needs the host built
/// with the `cross-compile` feature.
pub fn precompile(bytes: &[u8], target: Option<&str>) -> wasmtime::Result<Vec<u8>> {
    let mut config = engine_config();
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
