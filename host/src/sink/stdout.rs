//! Records as JSON lines on stdout: what `invoke --sink stdout` prints.

use std::io::{self, Write};

use super::{Batch, BatchRef, RecordSink, SinkFuture};
use crate::record_json;
use crate::sandbox::bindings::LogRecord;

pub struct Stdout;

impl RecordSink for Stdout {
    fn send(&mut self, batch: &BatchRef<'_>) -> SinkFuture<'_> {
        let written = write_batch(&Batch::from_ref(batch).into_records());
        Box::pin(async move {
            match written {
                // The reader went away (`| head`): stop quietly, as Unix tools do.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
                other => other.map_err(Into::into),
            }
        })
    }
}

fn write_batch(batch: &[LogRecord]) -> io::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    for record in batch {
        serde_json::to_writer(&mut out, &record_json::to_json(record))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
