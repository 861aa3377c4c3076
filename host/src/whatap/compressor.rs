//! Compressing ZipPacks on a thread of its own, so the mapper maps the next batch while the
//! last one is compressed: gzip at the default level took about a third of the pipeline's
//! time. With one vCPU (Lambda below 1,769 MB) the two share it and nothing is gained; with
//! more, compression leaves the critical path but for the last batch of an event.
//!
//! Jobs are done in the order given, by one [`Gzip`] state kept from pack to pack. Each
//! result comes back on its own channel; a result no one waits for any more (the event was
//! abandoned) is dropped.

use std::sync::mpsc;

use tokio::sync::oneshot;

use super::encode::{EncodeError, EncodedPack, RawPack, compress};
use super::gzip::Gzip;
use super::pack::Header;

/// A compressed pack, when it is done.
pub type Pending = oneshot::Receiver<Result<EncodedPack, EncodeError>>;

struct Job {
    raw: RawPack,
    header: Header,
    done: oneshot::Sender<Result<EncodedPack, EncodeError>>,
}

/// The compression thread. Dropping this ends the thread once its queue is done.
pub struct Compressor {
    jobs: Option<mpsc::Sender<Job>>,
    /// Compresses here when the thread could not be started.
    inline: Gzip,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("threaded", &self.jobs.is_some())
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// Starts the thread at gzip `level`; without a thread (spawning failed), packs are
    /// compressed in [`submit`](Self::submit) itself.
    pub fn new(level: u32) -> Compressor {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("whatap-gzip".into())
            .spawn(move || {
                let mut gzip = Gzip::with_level(level);
                while let Ok(job) = rx.recv() {
                    // The receiver may be gone (the event was abandoned): nothing to do then.
                    let _ = job.done.send(compress(job.raw, job.header, &mut gzip));
                }
            });
        if let Err(e) = &spawned {
            tracing::warn!(error = %e, "No compression thread; compressing inline.");
        }
        Compressor {
            jobs: spawned.ok().map(|_| tx),
            inline: Gzip::with_level(level),
        }
    }

    /// Queues `raw` for compression; the result arrives on the returned channel.
    pub fn submit(&mut self, raw: RawPack, header: Header) -> Pending {
        let (done, pending) = oneshot::channel();
        let job = Job { raw, header, done };
        let job = match &self.jobs {
            Some(jobs) => match jobs.send(job) {
                Ok(()) => return pending,
                // The thread is gone (it cannot panic short of a bug): compress here.
                Err(mpsc::SendError(job)) => {
                    self.jobs = None;
                    job
                }
            },
            None => job,
        };
        let _ = job
            .done
            .send(compress(job.raw, job.header, &mut self.inline));
        pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::bindings::LogRecord;
    use crate::sink::Batch;
    use crate::whatap::encode::{AGENT_ZIP_BYTES, raw_packs, zip_packs};

    #[tokio::test]
    async fn packs_come_back_in_order_and_equal_to_compressing_inline() {
        let records: Vec<LogRecord> = (0..4000)
            .map(|i| LogRecord {
                category: "#RDS_LOG".into(),
                time: 1_700_000_000_000 + i,
                tags: vec![("level".into(), "info".into())],
                fields: vec![],
                content: format!("entry {i} {}", "y".repeat(i as usize % 97)),
                line: 1,
            })
            .collect();
        let batch = Batch::new(records);
        let header = Header {
            pcode: 1,
            oid: 2,
            okind: 0,
            onode: 0,
            time: 3,
        };
        let expected = batch
            .with_ref(|b| zip_packs(b, header, &mut Gzip::with_level(6), AGENT_ZIP_BYTES))
            .unwrap();
        let mut compressor = Compressor::new(6);
        let pending: Vec<Pending> = batch
            .with_ref(|b| raw_packs(b, AGENT_ZIP_BYTES))
            .into_iter()
            .map(|raw| compressor.submit(raw, header))
            .collect();
        assert!(pending.len() > 1);
        let mut got = Vec::new();
        for p in pending {
            got.push(p.await.expect("a result").expect("compressed"));
        }
        assert_eq!(got, expected);
    }
}
