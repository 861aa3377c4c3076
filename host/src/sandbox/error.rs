//! Why a mapper could not be loaded or run.

use thiserror::Error;

/// The engine itself could not be set up (a host bug or an unsupported machine).
#[derive(Debug, Error)]
#[error("cannot set up the WebAssembly engine: {0}")]
pub struct EngineError(pub String);

/// A mapper that cannot be used at all. Each message says what the file is and what was wanted.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("not a WebAssembly component: the file does not start with the wasm magic bytes")]
    NotWasm,
    #[error(
        "a core WebAssembly module, not a component: build the mapper with \
         `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    #[error("a precompiled core module (.cwasm), not a precompiled component")]
    PrecompiledModule,
    #[error(
        "the component does not export {}/{}@… (it exports: {exports})",
        super::contract::PACKAGE,
        super::contract::EXPORT_INTERFACE
    )]
    NotThisContract { exports: String },
    #[error(
        "the mapper was built for contract {}@{found}, but this host implements {}@{host} \
         (compatible: {compatible})",
        super::contract::PACKAGE,
        super::contract::PACKAGE,
        compatible = compatible_range(host)
    )]
    IncompatibleContract { found: String, host: String },
    #[error(
        "a precompiled mapper (.cwasm) that this host build cannot run; make it with this \
         version's `rds-forwarder compile --mapper FILE.wasm`, or upload the .wasm: {0}"
    )]
    PrecompiledMismatch(String),
    #[error(
        "a precompiled mapper (.cwasm) is native code and is loaded from MAPPER_URI only when \
         MAPPER_SHA256 pins it (this object's SHA-256 is {sha256}); pin it, or upload the .wasm"
    )]
    PrecompiledUnpinned { sha256: String },
    #[error(
        "this .cwasm is the default mapper precompiled for the Lambda package, which runs \
         without a time budget and only from beside the executable; for MAPPER_URI or --mapper, \
         make one with `rds-forwarder compile --mapper FILE.wasm`"
    )]
    PackagedArtifact,
    #[error("invalid WebAssembly component: {0}")]
    Compile(String),
    #[error("the component cannot be linked against this host: {0}")]
    Link(String),
    #[error("the mapper's describe() failed: {0}")]
    Describe(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The versions a host of contract `host` runs: its major version, minor versions up to its own.
fn compatible_range(host: &str) -> String {
    let mut parts = host.split('.');
    let (major, minor) = (parts.next().unwrap_or("?"), parts.next().unwrap_or("?"));
    if minor == "0" {
        format!("{major}.0.x")
    } else {
        format!("{major}.0.x to {major}.{minor}.x")
    }
}

/// A failure of one invocation of a loaded mapper. The mapper stays usable.
#[derive(Debug, Error)]
pub enum RunError {
    /// The mapper rejected the event (bad input, unsupported kind, config, or delivery).
    #[error("{message}")]
    Mapper {
        kind: super::bindings::ErrorKind,
        message: String,
    },
    #[error("the mapper ran past its time budget of {budget_ms} ms and was stopped")]
    Timeout { budget_ms: u64 },
    #[error("the mapper exceeded its memory limit of {limit_mb} MiB: {detail}")]
    OutOfMemory { limit_mb: u64, detail: String },
    #[error("the mapper trapped: {0}")]
    Trap(String),
    /// The host refused or abandoned a send, or could not confirm what was sent. Decided by
    /// the host from what its sink did, whatever the mapper returned: a mapper that ignores a
    /// refused send cannot make an undelivered event look delivered.
    #[error("delivery failed: {0}")]
    Delivery(String),
    /// The sandbox did not finish within its budget plus slack: a mapper blocked in a host
    /// call (a sleep on the WASI clock, say), which epoch interruption cannot stop.
    #[error(
        "the mapper did not return within {limit_ms} ms (its time budget and slack) and was stopped"
    )]
    Stalled { limit_ms: u64 },
}

impl RunError {
    /// Whether retrying the same event could succeed: only a delivery failure can.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RunError::Delivery(_)
                | RunError::Mapper {
                    kind: super::bindings::ErrorKind::Delivery,
                    ..
                }
        )
    }
}
