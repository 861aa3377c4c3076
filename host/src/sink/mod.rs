//! Where the records a mapper sends go: the host side of `sink.send`.
//!
//! A trait, so the CLI, the Lambda handler and the tests can swap stdout, WhaTap, or an
//! in-memory sink without the runtime knowing which.

pub mod stdout;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use thiserror::Error;

use crate::runtime::bindings::LogRecord;

/// A boxed future, so `RecordSink` stays object-safe.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Why a batch was not delivered. The message never contains a credential.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error("writing records failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Delivery(String),
}

pub trait RecordSink: Send + Any {
    /// Delivers a batch; `Err` means the batch is not known to be delivered.
    fn send(&mut self, batch: Vec<LogRecord>) -> SinkFuture<'_>;

    /// Bounds later sends by an outside deadline (the Lambda invocation's); no-op by default.
    fn set_deadline(&mut self, _deadline: Option<std::time::Instant>) {}

    /// Flushes and closes whatever the sink holds open (end of a run, or shutdown).
    fn close(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// Recovers a [`Memory`] sink handed through the runtime (tests and benchmarks).
pub fn into_memory(sink: Box<dyn RecordSink>) -> Option<Box<Memory>> {
    let any: Box<dyn Any> = sink;
    any.downcast().ok()
}

/// Accepts nothing: the sink of `describe()` calls, which must not send.
pub struct Discard;

impl RecordSink for Discard {
    fn send(&mut self, _batch: Vec<LogRecord>) -> SinkFuture<'_> {
        Box::pin(async {
            Err(SinkError::Delivery(
                "this call may not send records".to_owned(),
            ))
        })
    }
}

/// Keeps every record in memory; for tests and benchmarks.
#[derive(Default)]
pub struct Memory {
    pub records: Vec<LogRecord>,
    pub batches: usize,
}

impl RecordSink for Memory {
    fn send(&mut self, mut batch: Vec<LogRecord>) -> SinkFuture<'_> {
        self.batches += 1;
        self.records.append(&mut batch);
        Box::pin(async { Ok(()) })
    }
}
