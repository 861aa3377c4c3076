//! Where records go: the `Output` trait is the library's view of the host's `sink.send` and
//! `diagnostics.log` imports, so the same mapping code runs natively (tests, benchmarks) and in
//! the component.

use crate::config::Config;
use crate::error::MapError;
use crate::record::Record;

/// Severity of a diagnostic message to the host's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// The host side of a mapping call.
pub trait Output {
    /// Delivers a batch. An error means none of the batch is known to be delivered.
    fn send(&mut self, batch: Vec<Record>) -> Result<(), String>;

    /// Writes a diagnostic line to the host's log.
    fn log(&mut self, level: LogLevel, message: &str);
}

/// Collects every record in memory; for tests and benchmarks.
#[derive(Debug, Default)]
pub struct Collect {
    pub records: Vec<Record>,
    pub batches: usize,
    pub logs: Vec<(LogLevel, String)>,
}

impl Output for Collect {
    fn send(&mut self, mut batch: Vec<Record>) -> Result<(), String> {
        self.batches += 1;
        self.records.append(&mut batch);
        Ok(())
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.logs.push((level, message.to_owned()));
    }
}

/// Groups records into batches by count and size, so each `sink.send` crosses the component
/// boundary with enough records to amortize it.
pub struct Batcher<'o, O: Output + ?Sized> {
    output: &'o mut O,
    pending: Vec<Record>,
    pending_bytes: usize,
    max_records: usize,
    max_bytes: usize,
    /// How many records the caller expects in all: the size of the next batch's allocation.
    expected: usize,
    /// Records handed to `send` and accepted.
    pub records: u32,
    /// Successful `send` calls.
    pub batches: u32,
}

impl<'o, O: Output + ?Sized> Batcher<'o, O> {
    pub fn new(output: &'o mut O, config: &Config) -> Self {
        Batcher {
            output,
            pending: Vec::new(),
            pending_bytes: 0,
            max_records: config.batch_max_records,
            max_bytes: config.batch_max_bytes,
            expected: 0,
            records: 0,
            batches: 0,
        }
    }

    /// A batcher that expects about `records` records (a CloudWatch batch's event count): each
    /// batch is allocated once at the size it will likely reach, not grown by doubling.
    pub fn expecting(output: &'o mut O, config: &Config, records: usize) -> Self {
        Batcher {
            expected: records,
            ..Batcher::new(output, config)
        }
    }

    pub fn push(&mut self, record: Record) -> Result<(), MapError> {
        if self.pending.capacity() == 0 {
            let left = self.expected.saturating_sub(self.records as usize);
            self.pending = Vec::with_capacity(left.clamp(1, self.max_records.max(1)));
        }
        self.pending_bytes += record.approx_size();
        self.pending.push(record);
        if self.pending.len() >= self.max_records || self.pending_bytes >= self.max_bytes {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), MapError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let n = batch.len() as u32;
        self.pending_bytes = 0;
        self.output.send(batch).map_err(MapError::Delivery)?;
        self.records += n;
        self.batches += 1;
        Ok(())
    }

    pub fn log(&mut self, level: LogLevel, message: &str) {
        self.output.log(level, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: usize) -> Record {
        Record::new("c", 0, "x".repeat(n))
    }

    #[test]
    fn flushes_by_count_and_by_bytes() {
        let mut out = Collect::default();
        let config = Config {
            batch_max_records: 3,
            batch_max_bytes: 1000,
            ..Config::default()
        };
        let mut b = Batcher::new(&mut out, &config);
        for _ in 0..7 {
            b.push(rec(1)).unwrap();
        }
        b.push(rec(2000)).unwrap();
        b.flush().unwrap();
        assert_eq!((b.records, b.batches), (8, 3));
        assert_eq!(out.records.len(), 8);
    }

    struct Refuse;
    impl Output for Refuse {
        fn send(&mut self, _: Vec<Record>) -> Result<(), String> {
            Err("collector unreachable".into())
        }
        fn log(&mut self, _: LogLevel, _: &str) {}
    }

    #[test]
    fn a_refused_batch_is_an_error_and_not_counted() {
        let mut out = Refuse;
        let mut b = Batcher::new(&mut out, &Config::default());
        b.push(rec(1)).unwrap();
        assert_eq!(
            b.flush().unwrap_err(),
            MapError::Delivery("collector unreachable".into())
        );
        assert_eq!(b.records, 0);
    }
}
