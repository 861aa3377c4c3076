//! The WhaTap sink: the host's TCP send capability behind the mapper's `sink.send`.
//!
//! A batch is encoded once, then attempted until it is delivered, the attempts run out, or the
//! time budget does. Each failure drops the connection; the next attempt connects to the next
//! host in the list with a fresh handshake. `send` fails only when the batch was not delivered,
//! so the invocation fails and Lambda retries the event (at-least-once: a retried batch may
//! arrive twice).

use std::time::{Duration, Instant};

use super::config::WhatapConfig;
use super::connection::{ConnError, Connection, now_ms};
use super::encode::zip_packs;
use super::handshake::Identity;
use super::pack::Header;
use crate::sink::Batch;
use crate::sink::{RecordSink, SinkError, SinkFuture};

/// First pause after every host failed once; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the sink has done, for the invocation summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SinkStats {
    pub records: u64,
    pub packs: u64,
    pub connects: u64,
    pub failed_attempts: u64,
}

pub struct WhatapSink {
    config: WhatapConfig,
    who: Identity,
    conn: Option<Connection>,
    /// Index of the host the next connection goes to.
    next_host: usize,
    /// Attempts stop at this instant too (the invocation's deadline), when set.
    deadline: Option<Instant>,
    pub stats: SinkStats,
}

impl WhatapSink {
    pub fn new(config: WhatapConfig) -> WhatapSink {
        let who = Identity::new(&config.license, &config.oname);
        WhatapSink {
            config,
            who,
            conn: None,
            next_host: 0,
            deadline: None,
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

    /// Delivers one batch of records.
    pub async fn deliver(&mut self, records: &Batch) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut deadline = started + self.config.send_budget;
        if let Some(outer) = self.deadline {
            deadline = deadline.min(outer);
        }
        let mut backoff = FIRST_BACKOFF;
        let mut attempt: u32 = 0;
        let hosts = self.config.hosts.len();
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let result = match tokio::time::timeout(remaining, self.attempt(records)).await {
                Ok(r) => r,
                Err(_) => Err(AttemptError::Budget),
            };
            let error = match result {
                Ok(()) => {
                    self.stats.records += records.len() as u64;
                    return Ok(());
                }
                Err(AttemptError::Encode(e)) => return Err(SinkError::Delivery(e)),
                Err(e) => e,
            };
            self.stats.failed_attempts += 1;
            if let Some(conn) = self.conn.take() {
                conn.close().await;
            }
            self.next_host = (self.next_host + 1) % hosts;
            tracing::warn!(attempt, error = %error, "WhaTap send attempt failed.");
            let elapsed = started.elapsed();
            if attempt >= self.config.max_attempts || Instant::now() >= deadline {
                return Err(SinkError::Delivery(format!(
                    "could not deliver {} records to WhaTap ({}) after {attempt} attempts in {} ms; last error: {error}",
                    records.len(),
                    self.config.hosts.join("/"),
                    elapsed.as_millis()
                )));
            }
            // After every host has failed once in a row, pause before the next round.
            if (attempt as usize).is_multiple_of(hosts) {
                let pause = backoff.min(deadline.saturating_duration_since(Instant::now()));
                tokio::time::sleep(pause).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    async fn attempt(&mut self, records: &Batch) -> Result<(), AttemptError> {
        if self.conn.is_none() {
            let host = &self.config.hosts[self.next_host];
            let conn = Connection::open(host, &self.config, &self.who).await?;
            tracing::info!(peer = conn.peer(), oname = %self.who.oname, "Connected to WhaTap.");
            self.stats.connects += 1;
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(AttemptError::Budget);
        };
        let header = Header {
            pcode: self.who.pcode,
            oid: self.who.oid,
            okind: 0,
            onode: 0,
            time: now_ms() + conn.clock_delta_ms,
        };
        let packs = zip_packs(records, header).map_err(|e| AttemptError::Encode(e.to_string()))?;
        let bytes: Vec<Vec<u8>> = packs.into_iter().map(|p| p.bytes).collect();
        conn.send_packs(&self.config, &self.who, &bytes, self.config.confirm)
            .await?;
        self.stats.packs += bytes.len() as u64;
        Ok(())
    }

    /// Closes the connection cleanly (end of a CLI run, or SIGTERM in Lambda).
    pub async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.close().await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("the send budget ran out")]
    Budget,
    #[error("{0}")]
    Encode(String),
}

impl RecordSink for WhatapSink {
    fn send(&mut self, batch: Batch) -> SinkFuture<'_> {
        Box::pin(async move { self.deliver(&batch).await })
    }

    fn set_deadline(&mut self, deadline: Option<Instant>) {
        WhatapSink::set_deadline(self, deadline);
    }

    fn close(&mut self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(WhatapSink::close(self))
    }
}
