//! The engines mappers are compiled for and run on: their settings (the same for `compile`, so
//! a `.cwasm` fits), the pooling allocator, precompiling, and the ticker that advances the epoch.

use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Engine, Precompiled};

use super::{EpochChecks, LoadError, SandboxLimits};

/// How often the epoch advances; the granularity of the guest's time budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Compiles (or deserializes) a component for `engine`.
pub(super) fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, LoadError> {
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
pub(super) fn pool(limits: &SandboxLimits) -> wasmtime::PoolingAllocationConfig {
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

pub(super) fn ticks(budget: Duration) -> u64 {
    (budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
}

/// Advances the engine's epoch until the engine is dropped.
pub(super) fn spawn_epoch_ticker(engine: &Engine) {
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
