//! Where records go: the `Output` trait is the library's view of the host's `sink.send` and
//! `diagnostics.log` imports, so the same mapping code runs natively (tests, benchmarks) and in
//! the component.

use crate::config::Config;
use crate::error::MapError;
use crate::packed::Packed;
use crate::record::{Record, RecordParts};

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
    /// Delivers a batch, packed as `sink.send-packed` takes it. An error means none of the
    /// batch is known to be delivered.
    fn send(&mut self, batch: &Packed) -> Result<(), String>;

    /// Writes a diagnostic line to the host's log.
    fn log(&mut self, level: LogLevel, message: &str);

    /// An item of a batched event (a Kinesis record, named by its sequence number) could not
    /// be mapped, for `reason`: the host names it in the partial batch response, so the event
    /// source retries it.
    fn item_failed(&mut self, item: &str, reason: &str);
}

/// Collects every record in memory, read back from its batch as the host reads it; for tests.
#[derive(Debug, Default)]
pub struct Collect {
    pub records: Vec<Record>,
    pub batches: usize,
    pub logs: Vec<(LogLevel, String)>,
    /// Items reported failed: id, reason.
    pub failed_items: Vec<(String, String)>,
}

impl Output for Collect {
    fn send(&mut self, batch: &Packed) -> Result<(), String> {
        self.batches += 1;
        self.records
            .extend(batch.unpack().map_err(|e| e.to_string())?);
        Ok(())
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.logs.push((level, message.to_owned()));
    }

    fn item_failed(&mut self, item: &str, reason: &str) {
        self.failed_items.push((item.to_owned(), reason.to_owned()));
    }
}

/// Counts what it is sent and keeps nothing. A benchmark maps natively into it, so the native
/// figure is the component's own work, mapping and packing, as the host's count sink makes
/// the sandbox's figure.
#[derive(Debug, Default)]
pub struct Count {
    pub records: usize,
    pub batches: usize,
}

impl Output for Count {
    fn send(&mut self, batch: &Packed) -> Result<(), String> {
        self.records += batch.len();
        self.batches += 1;
        Ok(())
    }

    fn log(&mut self, _: LogLevel, _: &str) {}

    fn item_failed(&mut self, _: &str, _: &str) {}
}

/// Packs records into batches as they are mapped, and sends a batch when it is full by count
/// or size, so each `sink.send-packed` crosses the component boundary with enough records to
/// amortize it. A record of another log stream than the batch's starts a new batch.
pub struct Batcher<'o, O: Output + ?Sized> {
    output: &'o mut O,
    packed: Packed,
    max_records: usize,
    max_bytes: usize,
    /// How many records the caller expects in all: the batch buffers are sized for them (up to
    /// a batch) from the first record.
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
            packed: Packed::default(),
            max_records: config.batch_max_records.max(1),
            max_bytes: config.batch_max_bytes,
            expected: 0,
            records: 0,
            batches: 0,
        }
    }

    /// A batcher that expects about `records` records (a CloudWatch batch's event count): the
    /// batch buffers are sized once, from the first record, rather than grown by doubling.
    pub fn expecting(output: &'o mut O, config: &Config, records: usize) -> Self {
        Batcher {
            expected: records,
            ..Batcher::new(output, config)
        }
    }

    /// The output batches go to.
    pub fn output(&mut self) -> &mut O {
        self.output
    }

    /// Reports an item of a batched event that could not be mapped ([`Output::item_failed`]).
    pub fn item_failed(&mut self, item: &str, reason: &str) {
        self.output.item_failed(item, reason);
    }

    pub fn push(&mut self, record: &impl RecordParts) -> Result<(), MapError> {
        if !self.packed.takes(record) {
            self.flush()?;
        }
        let first = self.packed.is_empty() && self.batches == 0;
        self.packed
            .push(record)
            .map_err(|e| MapError::Delivery(e.to_string()))?;
        if first {
            // Later batches reuse the buffers.
            let left = self.expected.min(self.max_records).saturating_sub(1);
            self.packed.reserve(left, self.max_bytes);
        }
        if self.packed.len() >= self.max_records || self.packed.size() >= self.max_bytes {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), MapError> {
        if self.packed.is_empty() {
            return Ok(());
        }
        let n = self.packed.len() as u32;
        self.output.send(&self.packed).map_err(MapError::Delivery)?;
        self.packed.clear();
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
            b.push(&rec(1)).unwrap();
        }
        b.push(&rec(2000)).unwrap();
        b.flush().unwrap();
        assert_eq!((b.records, b.batches), (8, 3));
        assert_eq!(out.records.len(), 8);
    }

    #[test]
    fn a_record_of_another_stream_starts_a_batch() {
        let stream =
            |group: &str| std::sync::Arc::new(vec![("logGroup".into(), group.to_owned().into())]);
        let (a, b) = (stream("a"), stream("b"));
        let mut records = Vec::new();
        for (s, n) in [(&a, 1), (&a, 2), (&b, 3), (&stream("a"), 4)] {
            let mut r = rec(n);
            r.stream_tags = std::sync::Arc::clone(s);
            records.push(r);
        }
        let mut out = Collect::default();
        let mut batcher = Batcher::new(&mut out, &Config::default());
        for r in &records {
            batcher.push(r).unwrap();
        }
        batcher.flush().unwrap();
        assert_eq!((batcher.records, batcher.batches), (4, 3));
        assert_eq!(out.records, records, "each with its own stream's tags");
    }

    #[test]
    fn a_large_first_record_does_not_size_the_batch_for_a_thousand_like_it() {
        let mut out = Collect::default();
        let config = Config::default();
        let mut b = Batcher::expecting(&mut out, &config, 5000);
        b.push(&rec(900_000)).unwrap();
        assert!(
            b.packed.capacity() < 2 * config.batch_max_bytes,
            "{} bytes reserved",
            b.packed.capacity()
        );
        // Small records are sized for a whole batch of their kind.
        let mut out = Collect::default();
        let mut b = Batcher::expecting(&mut out, &config, 5000);
        b.push(&rec(100)).unwrap();
        assert!(b.packed.capacity() > 100 * config.batch_max_records);
    }

    struct Refuse;
    impl Output for Refuse {
        fn send(&mut self, _: &Packed) -> Result<(), String> {
            Err("collector unreachable".into())
        }
        fn log(&mut self, _: LogLevel, _: &str) {}
        fn item_failed(&mut self, _: &str, _: &str) {}
    }

    #[test]
    fn a_refused_batch_is_an_error_and_not_counted() {
        let mut out = Refuse;
        let mut b = Batcher::new(&mut out, &Config::default());
        b.push(&rec(1)).unwrap();
        assert_eq!(
            b.flush().unwrap_err(),
            MapError::Delivery("collector unreachable".into())
        );
        assert_eq!(b.records, 0);
    }
}
