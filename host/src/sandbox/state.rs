//! The per-invocation store data: the sandbox's WASI context (bare: no files, env, network,
//! and a frozen clock) and the host's side of the contract's imports.

use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::bindings::Level;
use super::bindings::whatap::rds_mapper::{diagnostics, types};
use crate::sink::RecordSink;

/// The invocation's sink, lent to each `send` for its length.
pub type SharedSink = std::sync::Arc<tokio::sync::Mutex<Box<dyn RecordSink>>>;

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: PeakTracking,
    /// Shared with the runtime, which takes it back after the call: a call stopped while a
    /// send is under way (an outer timeout) drops that send, never the sink.
    pub(super) sink: SharedSink,
    /// The first send the sink refused, kept whole for the host (the guest only sees a
    /// string). Once set, every later send of the invocation is refused without reaching the
    /// sink, and the invocation fails as a delivery failure whatever the mapper returns: the
    /// sink may have given up and forgotten what it held, so a later success proves nothing.
    pub(super) refused: Option<crate::sink::SinkError>,
    /// Items of a batched event the mapper reported it could not map (`sink.item-failed`).
    pub(super) failed_items: Vec<FailedItem>,
    /// Time spent in the sink's `send` (serializing and writing batches) while the mapper
    /// ran: the delivery share of the run, reported apart from the mapping.
    pub(super) send_time: Duration,
    mapper: String,
}

/// An item of a batched event (a Kinesis record) that was not mapped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedItem {
    /// Its id in a partial batch response: a Kinesis sequence number.
    pub item: String,
    pub reason: String,
}

/// At most this many failed items are kept per invocation: more than Lambda's largest batch
/// (10,000 records), so a mapper reporting more is misbehaving and its extras are ignored.
pub(super) const MAX_FAILED_ITEMS: usize = 20_000;

impl HostState {
    pub fn new(sink: SharedSink, limits: StoreLimits, frozen_ms: i64, mapper: String) -> Self {
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(FrozenClock(frozen_ms))
            .monotonic_clock(FrozenClock(frozen_ms))
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limits: PeakTracking {
                limits,
                peak_bytes: 0,
            },
            sink,
            refused: None,
            failed_items: Vec::new(),
            send_time: Duration::ZERO,
            mapper,
        }
    }
}

/// The store's limits, remembering the largest linear memory the guest grew to: its peak
/// memory, since linear memory never shrinks. Reported per invocation, and by `bench`.
pub struct PeakTracking {
    limits: StoreLimits,
    pub(super) peak_bytes: usize,
}

impl ResourceLimiter for PeakTracking {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.peak_bytes = self.peak_bytes.max(desired);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The guest's clock stands still at the time the event was received: the contract grants
/// that time, and no other, so a mapper's output depends only on its inputs.
struct FrozenClock(i64);

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_millis(self.0.max(0) as u64)
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

impl types::Host for HostState {}

impl diagnostics::Host for HostState {
    async fn log(&mut self, level: Level, message: String) {
        let mapper = self.mapper.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "mapper", mapper, "{message}"),
            Level::Debug => tracing::debug!(target: "mapper", mapper, "{message}"),
            Level::Info => tracing::info!(target: "mapper", mapper, "{message}"),
            Level::Warn => tracing::warn!(target: "mapper", mapper, "{message}"),
            Level::Error => tracing::error!(target: "mapper", mapper, "{message}"),
        }
    }
}
