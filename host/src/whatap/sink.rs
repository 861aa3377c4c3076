//! The WhaTap sink: the host's TCP send capability behind the mapper's `sink.send`.
//!
//! A batch's records are serialized while the mapper waits, then compressed on the
//! [`Compressor`]'s thread while it maps on, and written in order as they are ready; the
//! collector's confirmation of everything an invocation wrote is awaited once, at its end
//! (`finish`), so mapping is not stalled by compression or by a round trip per batch. What is
//! not yet confirmed is kept, and written again over the next connection when one fails. Each failure drops the connection; the next attempt connects to
//! the next host in the list with a fresh handshake, with pauses and a limit as the protocol's
//! delivery plan (`whatap_protocol::retry`) says. The invocation succeeds only when
//! everything was confirmed; otherwise it fails and Lambda retries the event (at-least-once: a
//! retried batch may arrive twice).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::compressor::{Compressor, Pending};
use super::config::WhatapConfig;
use super::connection::{ConnError, Connection, now_ms};
use super::encode::{MAX_PAYLOAD, raw_packs, zip_packs};
use super::gzip::Gzip;
use super::handshake::Identity;
use super::pack::Header;
use super::retry;
use crate::sink::{Batch, BatchRef};
use crate::sink::{RecordSink, SinkError, SinkFuture};

/// How long a clean close waits for the peer (end of a run, SIGTERM).
const CLEAN_CLOSE: Duration = Duration::from_secs(1);
/// How long closing a failed or idle connection may take: little, it is on the invocation's
/// time.
const FAILED_CLOSE: Duration = Duration::from_millis(100);
/// Queued bytes after which `queue` confirms before taking more, bounding what is kept for
/// re-sending.
pub const MAX_UNCONFIRMED_BYTES: usize = 2 << 20;
/// Uncompressed bytes waiting for the compressor after which `send` waits for it: bounds the
/// memory a fast mapper can fill ahead of compression.
pub const MAX_COMPRESSING_BYTES: usize = 8 << 20;

/// What the sink has done, for the invocation summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SinkStats {
    pub records: u64,
    pub packs: u64,
    pub connects: u64,
    /// Tries at writing or confirming, retries included.
    pub attempts: u64,
    pub failed_attempts: u64,
    /// Bytes of data frames written, re-sends included: what leaves the function (the
    /// handshake and the confirmations are a few dozen bytes per connection and batch, and
    /// not counted).
    pub wire_bytes: u64,
}

pub struct WhatapSink {
    config: WhatapConfig,
    who: Identity,
    conn: Option<Connection>,
    /// Index of the host the next connection goes to.
    next_host: usize,
    /// Attempts stop at this instant too (the invocation's deadline), when set.
    deadline: Option<Instant>,
    /// Packs written since the last confirmation, kept to re-send after a failure.
    unconfirmed: Vec<Vec<u8>>,
    unconfirmed_bytes: usize,
    unconfirmed_records: u64,
    /// The collector's clock minus ours, from the last confirmation: pack times are stamped
    /// with it.
    clock_delta_ms: i64,
    /// One compressor for the packs `encode` makes (see `gzip`).
    gzip: Gzip,
    /// The compression thread behind `send`, started with the first send.
    compressor: Option<Compressor>,
    /// Packs of this event being compressed, oldest first, with their records and
    /// uncompressed bytes.
    compressing: VecDeque<(Pending, usize, usize)>,
    compressing_bytes: usize,
    pub stats: SinkStats,
}

impl WhatapSink {
    pub fn new(config: WhatapConfig) -> WhatapSink {
        let who = Identity::new(&config.license, &config.oname);
        let gzip = Gzip::with_level(config.compression_level);
        WhatapSink {
            config,
            who,
            conn: None,
            next_host: 0,
            deadline: None,
            unconfirmed: Vec::new(),
            unconfirmed_bytes: 0,
            unconfirmed_records: 0,
            clock_delta_ms: 0,
            gzip,
            compressor: None,
            compressing: VecDeque::new(),
            compressing_bytes: 0,
            stats: SinkStats::default(),
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.who
    }

    /// Bounds every later send by an outside deadline (the Lambda invocation's).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Delivers one batch of records and waits for the collector's confirmation.
    pub async fn deliver(&mut self, batch: &Batch) -> Result<(), SinkError> {
        self.queue(batch).await?;
        self.confirm().await
    }

    /// [`queue_packs`](Self::queue_packs) for an owned batch.
    pub async fn queue(&mut self, batch: &Batch) -> Result<(), SinkError> {
        let packs = batch.with_ref(|b| self.encode(b))?;
        self.queue_packs(packs, batch.len()).await
    }

    /// The outer header of the packs made now: stamped with the collector's clock as last
    /// measured.
    fn header(&self) -> Header {
        Header {
            pcode: self.who.pcode,
            oid: self.who.oid,
            okind: 0,
            onode: 0,
            time: now_ms().saturating_add(self.clock_delta_ms),
        }
    }

    /// Serializes a batch's records now and hands their compression to the compressor; a
    /// single record that may not fit a frame is compressed here, so that a send of it fails
    /// at once, naming it.
    fn submit(&mut self, batch: &BatchRef<'_>) -> Result<(), SinkError> {
        let header = self.header();
        let level = self.config.compression_level;
        for raw in raw_packs(batch, self.config.zip_bytes) {
            let (records, bytes) = (raw.count, raw.records.len());
            let pending = if raw.count == 1 && bytes > MAX_PAYLOAD / 2 {
                let pack = super::encode::compress(raw, header, &mut self.gzip)
                    .map_err(|e| SinkError::Delivery(e.to_string()))?;
                let (done, pending) = tokio::sync::oneshot::channel();
                let _ = done.send(Ok(pack));
                pending
            } else {
                self.compressor
                    .get_or_insert_with(|| Compressor::new(level))
                    .submit(raw, header)
            };
            self.compressing.push_back((pending, records, bytes));
            self.compressing_bytes += bytes;
        }
        Ok(())
    }

    /// Queues the compressed packs, in order: those already done, or (with `all`) every one,
    /// waiting for them. More than [`MAX_COMPRESSING_BYTES`] waiting is waited for too.
    async fn drain(&mut self, all: bool) -> Result<(), SinkError> {
        while let Some((pending, records, bytes)) = self.compressing.front_mut() {
            let (records, bytes) = (*records, *bytes);
            let result = if all || self.compressing_bytes > MAX_COMPRESSING_BYTES {
                pending.await.ok()
            } else {
                match pending.try_recv() {
                    Ok(r) => Some(r),
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) => return Ok(()),
                    Err(tokio::sync::oneshot::error::TryRecvError::Closed) => None,
                }
            };
            self.compressing.pop_front();
            self.compressing_bytes -= bytes;
            let pack = match result {
                Some(Ok(pack)) => pack,
                Some(Err(e)) => return Err(SinkError::Delivery(e.to_string())),
                None => {
                    return Err(SinkError::Delivery(
                        "the compression thread stopped".to_owned(),
                    ));
                }
            };
            self.queue_packs(vec![pack.bytes], records).await?;
        }
        Ok(())
    }

    /// Encodes a batch into ZipPacks, stamped with the collector's clock as last measured.
    pub fn encode(&mut self, batch: &BatchRef<'_>) -> Result<Vec<Vec<u8>>, SinkError> {
        let header = self.header();
        Ok(
            zip_packs(batch, header, &mut self.gzip, self.config.zip_bytes)
                .map_err(|e| SinkError::Delivery(e.to_string()))?
                .into_iter()
                .map(|p| p.bytes)
                .collect(),
        )
    }

    /// Writes encoded packs without waiting for a confirmation, so that mapping goes on
    /// while the collector reads: [`confirm`](Self::confirm) (at the end of the invocation)
    /// proves delivery of everything queued. The packs are kept until then, to be written
    /// again on another connection if this one fails. Queuing more than
    /// [`MAX_UNCONFIRMED_BYTES`] confirms first.
    pub async fn queue_packs(
        &mut self,
        packs: Vec<Vec<u8>>,
        records: usize,
    ) -> Result<(), SinkError> {
        if packs.is_empty() {
            return Ok(());
        }
        if self.unconfirmed_bytes >= MAX_UNCONFIRMED_BYTES {
            self.confirm().await?;
        }
        let mut pending = Some((packs, records as u64));
        self.attempts(&mut pending, false).await
    }

    /// Waits until the collector has read everything queued, re-sending it over another
    /// connection when needed. `Err` means some of it is not known to be delivered.
    pub async fn confirm(&mut self) -> Result<(), SinkError> {
        if self.unconfirmed.is_empty() {
            return Ok(());
        }
        self.attempts(&mut None, true).await
    }

    /// Attempts until `pending` is written (and, when `confirm`, everything unconfirmed is
    /// confirmed), or the protocol's delivery plan ([`retry::Plan`]) gives up: attempts or time
    /// budget spent. This loop only does what the plan says, on this process's clock.
    async fn attempts(
        &mut self,
        pending: &mut Option<(Vec<Vec<u8>>, u64)>,
        confirm: bool,
    ) -> Result<(), SinkError> {
        let origin = Instant::now();
        let now = || origin.elapsed();
        let policy = retry::Policy {
            hosts: self.config.hosts.len(),
            max_attempts: self.config.max_attempts,
            budget: self.config.send_budget,
        };
        let outer = self.deadline.map(|d| d.saturating_duration_since(origin));
        let mut plan = retry::Plan::new(policy, now(), self.next_host, outer);
        loop {
            plan.attempting();
            self.stats.attempts += 1;
            let result =
                match tokio::time::timeout(plan.remaining(now()), self.attempt(pending, confirm))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(AttemptError::Budget),
                };
            let error = match result {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            self.stats.failed_attempts += 1;
            if let Some(conn) = self.conn.take() {
                // A failed connection gets little of the time left: the invocation must still
                // answer `DeliveryFailed` before Lambda's timeout.
                conn.close(FAILED_CLOSE.min(plan.remaining(now()))).await;
            }
            tracing::warn!(attempt = plan.attempts(), error = %error, "WhaTap send attempt failed.");
            match plan.failed(now()) {
                retry::Next::Attempt { host, pause } => {
                    self.next_host = host;
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
                retry::Next::GiveUp { attempts, elapsed } => {
                    self.next_host = plan.host();
                    let records =
                        self.unconfirmed_records + pending.as_ref().map_or(0, |(_, n)| *n);
                    // Given up: the invocation fails and Lambda retries the whole event.
                    self.abandon();
                    return Err(SinkError::Delivery(format!(
                        "could not deliver {records} records to WhaTap ({}) after {attempts} attempts in {} ms; last error: {error}",
                        self.config.hosts.join("/"),
                        elapsed.as_millis()
                    )));
                }
            }
        }
    }

    async fn attempt(
        &mut self,
        pending: &mut Option<(Vec<Vec<u8>>, u64)>,
        confirm: bool,
    ) -> Result<(), AttemptError> {
        // A warm connection idle for longer than the path may remember it is replaced before
        // it carries data: a flow forgotten silently would cost the whole write timeout.
        if let Some(conn) = self.conn.take_if(|c| c.idle() > self.config.idle_reconnect) {
            tracing::debug!(
                peer = conn.peer(),
                idle_ms = conn.idle().as_millis() as u64,
                "Replacing an idle WhaTap connection."
            );
            conn.close(FAILED_CLOSE).await;
        }
        if self.conn.is_none() {
            let host = &self.config.hosts[self.next_host];
            let mut conn = Connection::open(host, &self.config, &self.who).await?;
            tracing::info!(peer = conn.peer(), oname = %self.who.oname, "Connected to WhaTap.");
            self.stats.connects += 1;
            self.clock_delta_ms = conn.clock_delta_ms;
            // What an earlier connection took but never confirmed may be lost: send it again.
            if !self.unconfirmed.is_empty() {
                self.stats.wire_bytes += conn
                    .send_packs(&self.config, &self.who, &self.unconfirmed, false)
                    .await?;
            }
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(AttemptError::Budget);
        };
        if let Some((packs, records)) = pending.take() {
            // Kept before writing: from here on a failure re-sends them with the rest.
            let first = self.unconfirmed.len();
            self.unconfirmed_bytes += packs.iter().map(Vec::len).sum::<usize>();
            self.unconfirmed.extend(packs);
            self.unconfirmed_records += records;
            self.stats.wire_bytes += conn
                .send_packs(&self.config, &self.who, &self.unconfirmed[first..], false)
                .await?;
        }
        if confirm || !self.config.confirm {
            if self.config.confirm {
                conn.send_packs(&self.config, &self.who, &[], true).await?;
                self.clock_delta_ms = conn.clock_delta_ms;
            }
            // Confirmed, or written with confirmation turned off (one-way): done with them.
            // Packs still being compressed are the next ones to write, not done with.
            self.stats.records += self.unconfirmed_records;
            self.stats.packs += self.unconfirmed.len() as u64;
            self.forget_unconfirmed();
        }
        Ok(())
    }

    fn forget_unconfirmed(&mut self) {
        self.unconfirmed.clear();
        self.unconfirmed_bytes = 0;
        self.unconfirmed_records = 0;
    }

    /// Forgets what was queued and not confirmed (the invocation failed and will be retried
    /// whole, so sending it would only duplicate). A connection whose write was cut off (the
    /// run was stopped mid-send) is dropped: it may hold half a frame.
    pub fn abandon(&mut self) {
        if self.conn.as_ref().is_some_and(Connection::interrupted) {
            self.conn = None;
        }
        self.compressing.clear();
        self.compressing_bytes = 0;
        self.forget_unconfirmed();
    }

    /// Closes the connection cleanly (end of a CLI run, or SIGTERM in Lambda).
    pub async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.close(CLEAN_CLOSE).await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("the send budget ran out")]
    Budget,
}

impl RecordSink for WhatapSink {
    fn send(&mut self, batch: &BatchRef<'_>) -> SinkFuture<'_> {
        // Serialized now, while the batch is borrowed from the sandbox; compressed on the
        // compressor's thread; what is ready is written by the future.
        let submitted = self.submit(batch);
        Box::pin(async move {
            submitted?;
            self.drain(false).await
        })
    }

    fn finish(&mut self) -> SinkFuture<'_> {
        Box::pin(async move {
            self.drain(true).await?;
            self.confirm().await
        })
    }

    fn abandon(&mut self) {
        WhatapSink::abandon(self);
    }

    fn set_deadline(&mut self, deadline: Option<Instant>) {
        WhatapSink::set_deadline(self, deadline);
    }

    fn wire_bytes(&self) -> Option<u64> {
        Some(self.stats.wire_bytes)
    }

    fn delivery_attempts(&self) -> Option<crate::sink::Attempts> {
        Some(crate::sink::Attempts {
            made: self.stats.attempts,
            failed: self.stats.failed_attempts,
        })
    }

    fn close(&mut self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(WhatapSink::close(self))
    }
}
